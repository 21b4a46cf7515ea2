/*
 * tl_base.h — errors, bounded buffers and encodings shared by every module.
 *
 * Conventions (see docs/architecture.md):
 *   - functions return int: 0 on success, a negative TL_E* code on failure;
 *   - outputs come last in ordinary calls, first in crypto calls (libsodium style);
 *   - a struct tl_buf never grows past its max; data is never NULL after init.
 */
#ifndef TL_BASE_H
#define TL_BASE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define TL_WUR          __attribute__((warn_unused_result))
#define TL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TL_WUR
#define TL_PRINTF(a, b)
#endif

enum {
	TL_OK = 0,
	TL_ENOMEM = -1,     /* out of memory */
	TL_EINVAL = -2,     /* invalid argument (caller error) */
	TL_EFORMAT = -3,    /* malformed input */
	TL_ENONCANON = -4,  /* well-formed but not canonical */
	TL_ETOOBIG = -5,    /* exceeds a size or count limit */
	TL_ESIG = -6,       /* signature does not verify */
	TL_EPROOF = -7,     /* Merkle proof does not verify */
	TL_ECHAIN = -8,     /* seq / prev / origin chain broken */
	TL_EIO = -9,        /* operating system I/O error (see errno) */
	TL_ENOTFOUND = -10, /* no such object */
	TL_EEXIST = -11,    /* object already exists */
	TL_EPASS = -12,     /* wrong passphrase or damaged key file */
	TL_ECORRUPT = -13,  /* stored data is damaged */
	TL_EVERSION = -14,  /* unsupported format version */
	TL_ESTORE = -15,    /* database error */
	TL_EQUORUM = -16,   /* not enough valid cosignatures */
	TL_EFULL = -17,     /* disk or map full */
	TL_ELOCKED = -18,   /* resource in use by another process */
	TL_EKEY = -19,      /* unknown or mismatched key */
	TL_EFORK = -20,     /* two different signed histories */
	TL_ERANGE = -21,    /* index or size out of range */
	TL_ECRYPTO = -22,   /* crypto library failure */
};

/* A sentence fragment for an error code; never NULL. */
const char *tl_strerror(int err);

/*
 * Growable byte buffer with a hard cap. Invariants: data != NULL after
 * tl_buf_init (it points at a static empty string until the first growth),
 * len <= cap <= max. A growth past max fails with TL_ETOOBIG and leaves the
 * buffer unchanged.
 */
struct tl_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
};

void tl_buf_init(struct tl_buf *b, size_t max);
void tl_buf_release(struct tl_buf *b); /* frees; buffer is re-initialised */
void tl_buf_reset(struct tl_buf *b);   /* len = 0, keeps memory */
void tl_buf_wipe(struct tl_buf *b);    /* zeroes memory, then releases */
int tl_buf_reserve(struct tl_buf *b, size_t extra) TL_WUR;
int tl_buf_add(struct tl_buf *b, const void *p, size_t n) TL_WUR;
int tl_buf_addc(struct tl_buf *b, uint8_t c) TL_WUR;
int tl_buf_adds(struct tl_buf *b, const char *s) TL_WUR;
int tl_buf_printf(struct tl_buf *b, const char *fmt, ...) TL_PRINTF(2, 3) TL_WUR;
/* Makes data NUL-terminated (not counted in len) and returns it as a string. */
const char *tl_buf_cstr(struct tl_buf *b);

/* Lowercase hex. out must hold 2*n+1 bytes. */
void tl_hex_encode(char *out, const uint8_t *in, size_t n);
/* Decodes exactly n bytes from exactly 2n hex digits (either case). */
int tl_hex_decode(uint8_t *out, size_t n, const char *in, size_t inlen) TL_WUR;

/* RFC 4648 standard base64 with padding. */
size_t tl_b64_encoded_len(size_t n);                        /* without NUL */
void tl_b64_encode(char *out, const uint8_t *in, size_t n); /* writes NUL */
/* Strict decode: padding required, no whitespace, canonical trailing bits.
 * *outlen receives the decoded length; fails with TL_ETOOBIG if > cap. */
int tl_b64_decode(uint8_t *out, size_t cap, size_t *outlen, const char *in, size_t inlen) TL_WUR;

/* Strict unsigned decimal: no sign, no leading zeros (except "0"), no overflow. */
int tl_parse_u64(const char *s, size_t len, uint64_t *out) TL_WUR;

/* UTF-8 validity (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
int tl_utf8_valid(const uint8_t *s, size_t len);

/* Library initialisation (libsodium); safe to call more than once. */
int tl_init(void) TL_WUR;

#endif
