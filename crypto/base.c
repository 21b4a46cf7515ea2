/*
 * base.c — error strings, bounded buffers, hex, strict base64, strict
 * decimal and UTF-8 validation.
 */
#include "crypto/tl_base.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shared empty string a fresh buffer points at; never written or freed. */
static uint8_t tl_buf_empty[1];

const char *tl_strerror(int err)
{
	switch (err) {
	case TL_OK:
		return "success";
	case TL_ENOMEM:
		return "out of memory";
	case TL_EINVAL:
		return "invalid argument";
	case TL_EFORMAT:
		return "malformed input";
	case TL_ENONCANON:
		return "input is not in canonical form";
	case TL_ETOOBIG:
		return "size or count limit exceeded";
	case TL_ESIG:
		return "signature does not verify";
	case TL_EPROOF:
		return "Merkle proof does not verify";
	case TL_ECHAIN:
		return "sequence, previous hash or origin chain broken";
	case TL_EIO:
		return "I/O error";
	case TL_ENOTFOUND:
		return "not found";
	case TL_EEXIST:
		return "already exists";
	case TL_EPASS:
		return "wrong passphrase or damaged key file";
	case TL_ECORRUPT:
		return "stored data is damaged";
	case TL_EVERSION:
		return "unsupported format version";
	case TL_ESTORE:
		return "database error";
	case TL_EQUORUM:
		return "not enough valid cosignatures";
	case TL_EFORK:
		return "two different signed histories";
	case TL_EFULL:
		return "disk or map full";
	case TL_ELOCKED:
		return "resource in use by another process";
	case TL_EKEY:
		return "unknown or mismatched key";
	case TL_ERANGE:
		return "index or size out of range";
	case TL_ECRYPTO:
		return "crypto library failure";
	default:
		return "unknown error";
	}
}

/* ------------------------------------------------------------- buffers */

void tl_buf_init(struct tl_buf *b, size_t max)
{
	b->data = tl_buf_empty;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void tl_buf_release(struct tl_buf *b)
{
	if (b->cap)
		free(b->data);
	tl_buf_init(b, b->max);
}

void tl_buf_reset(struct tl_buf *b)
{
	b->len = 0;
}

void tl_buf_wipe(struct tl_buf *b)
{
	if (b->cap)
		sodium_memzero(b->data, b->cap);
	tl_buf_release(b);
}

int tl_buf_reserve(struct tl_buf *b, size_t extra)
{
	size_t need, ncap;
	uint8_t *p;

	/* One spare byte keeps room for tl_buf_cstr's terminator. */
	if (extra > b->max - b->len || extra == SIZE_MAX - b->len)
		return TL_ETOOBIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	/* The cap also bounds memory, not only len (+1 for the NUL). */
	if (b->max < SIZE_MAX && ncap > b->max + 1)
		ncap = b->max + 1;
	if (ncap < need)
		ncap = need;
	if (b->cap) {
		p = realloc(b->data, ncap);
	} else {
		p = malloc(ncap);
	}
	if (!p)
		return TL_ENOMEM;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int tl_buf_add(struct tl_buf *b, const void *p, size_t n)
{
	int err;

	if (n == 0)
		return 0;
	err = tl_buf_reserve(b, n);
	if (err)
		return err;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int tl_buf_addc(struct tl_buf *b, uint8_t c)
{
	return tl_buf_add(b, &c, 1);
}

int tl_buf_adds(struct tl_buf *b, const char *s)
{
	return tl_buf_add(b, s, strlen(s));
}

int tl_buf_printf(struct tl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return TL_EINVAL;
	if (n == 0)
		return 0;
	err = tl_buf_reserve(b, (size_t)n);
	if (err)
		return err;
	va_start(ap, fmt);
	/* reserve left room for n bytes plus the terminator vsnprintf writes. */
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *tl_buf_cstr(struct tl_buf *b)
{
	/* An unallocated buffer is empty and its static data is already "". */
	if (b->cap == 0)
		return (const char *)b->data;
	/* reserve always keeps len < cap. */
	b->data[b->len] = '\0';
	return (const char *)b->data;
}

/* ----------------------------------------------------------------- hex */

void tl_hex_encode(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int tl_hex_decode(uint8_t *out, size_t n, const char *in, size_t inlen)
{
	size_t i;
	int hi, lo;

	if (n > SIZE_MAX / 2 || inlen != 2 * n)
		return TL_EFORMAT;
	for (i = 0; i < n; i++) {
		hi = hexval(in[2 * i]);
		lo = hexval(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return TL_EFORMAT;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* -------------------------------------------------------------- base64 */

size_t tl_b64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

void tl_b64_encode(char *out, const uint8_t *in, size_t n)
{
	sodium_bin2base64(out, tl_b64_encoded_len(n) + 1, in, n, sodium_base64_VARIANT_ORIGINAL);
}

static int b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int tl_b64_decode(uint8_t *out, size_t cap, size_t *outlen, const char *in, size_t inlen)
{
	size_t i, pad = 0, dlen, got = 0, q;
	const char *end = NULL;
	char re[5];

	*outlen = 0;
	/* Validate the alphabet and the padding shape before libsodium sees it,
	 * so that no separator, whitespace or NUL can slip through. */
	if (inlen % 4 != 0)
		return TL_EFORMAT;
	if (inlen == 0)
		return 0;
	if (in[inlen - 1] == '=')
		pad++;
	if (in[inlen - 2] == '=')
		pad++;
	for (i = 0; i < inlen - pad; i++)
		if (!b64_char(in[i]))
			return TL_EFORMAT;
	dlen = inlen / 4 * 3 - pad;
	if (dlen > cap)
		return TL_ETOOBIG;
	if (sodium_base642bin(out, dlen, in, inlen, NULL, &got, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != in + inlen || got != dlen)
		goto fail;
	/* Canonical trailing bits: re-encode the final group (the only one
	 * that can carry padding) and require the same characters. */
	q = got - (got - 1) / 3 * 3;
	sodium_bin2base64(re, sizeof(re), out + got - q, q, sodium_base64_VARIANT_ORIGINAL);
	if (memcmp(re, in + inlen - 4, 4) != 0)
		goto fail;
	*outlen = got;
	return 0;
fail:
	memset(out, 0, dlen);
	return TL_EFORMAT;
}

/* ------------------------------------------------------------- decimal */

int tl_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;
	unsigned d;

	if (len == 0)
		return TL_EFORMAT;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return TL_EFORMAT;
	if (s[0] == '0' && len > 1)
		return TL_ENONCANON;
	for (i = 0; i < len; i++) {
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return TL_ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* --------------------------------------------------------------- UTF-8 */

int tl_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0, k, n;
	uint32_t cp, min;
	uint8_t c;

	while (i < len) {
		c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (n > len - i - 1)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* -------------------------------------------------------------- init */

int tl_init(void)
{
	/* sodium_init returns 1 when already initialised. */
	return sodium_init() < 0 ? TL_ECRYPTO : 0;
}
