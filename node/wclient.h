/*
 * wclient.h — the witness client: C2SP tlog-witness v1.0.0 requests
 * (POST <prefix>/add-checkpoint) made with libcurl, and the checks of what
 * comes back. Every function here blocks (network) or is pure: tallyd calls
 * them on the libuv thread pool, never on the event loop (daemon.c).
 *
 * A struct tl_wc_conn is one libcurl easy handle (its connection is kept
 * alive between requests); use it from one thread at a time.
 */
#ifndef TL_WCLIENT_H
#define TL_WCLIENT_H

#include <stdatomic.h>

#include "tl_node.h"

#define TL_WC_URL_MAX          511
#define TL_WC_RESP_MAX         (64u << 10) /* a response body over this is refused */
#define TL_WC_MAX_PROOF        63          /* the spec's cap on consistency proof lines */
#define TL_WC_CONTENT_TYPE_MAX 127

struct tl_wc_conn;

/* Once per process, before any thread makes a request (curl_global_init). */
int tl_wc_global_init(void) TL_WUR;
int tl_wc_conn_new(struct tl_wc_conn **out) TL_WUR;
void tl_wc_conn_free(struct tl_wc_conn *c);

struct tl_wc_resp {
	long status;        /* HTTP status; 0 when no answer came (err says why) */
	struct tl_buf body; /* at most TL_WC_RESP_MAX bytes */
	char content_type[TL_WC_CONTENT_TYPE_MAX + 1];
	char err[256]; /* transport error, e.g. "timed out after 10000 ms" */
};
void tl_wc_resp_init(struct tl_wc_resp *r);
void tl_wc_resp_release(struct tl_wc_resp *r);

/* POSTs body to url + "/add-checkpoint" (a trailing '/' of url is dropped)
 * with a total timeout. Returns 0 when an HTTP answer arrived (any status),
 * TL_EIO when none did (r->err says why). cancel (may be NULL) is polled
 * during the transfer: non-zero aborts it (a node shutting down). */
int tl_wc_post(struct tl_wc_conn *c, const char *url, const uint8_t *body, size_t len,
               unsigned timeout_ms, const atomic_int *cancel, struct tl_wc_resp *r) TL_WUR;

/* The request body: "old N\n", one base64 line per proof hash, "\n", then
 * the checkpoint note. At most TL_WC_MAX_PROOF proof lines. */
int tl_wc_body(struct tl_buf *out, uint64_t old_size, const uint8_t (*proof)[TL_HASH_LEN], size_t n,
               const char *note, size_t note_len) TL_WUR;

/* The body of a 409: "<size>\n", strictly. */
int tl_wc_parse_size(const uint8_t *body, size_t len, uint64_t *size) TL_WUR;

/*
 * Keeps the signature lines of a note that verify: type 0x01 lines against
 * the 0x01 keys of keys[], cosignatures (0x04) against the 0x04 keys; lines
 * of unknown keys and lines that do not verify are dropped. out receives the
 * note text, the blank line and the kept lines; *kept their count, *cosigs
 * how many of them are cosignatures, *latest the latest cosignature time
 * (each may be NULL). TL_EFORMAT when note is not a signed note.
 */
int tl_wc_filter(const char *note, size_t len, const struct tl_vkey *keys, size_t nkeys,
                 struct tl_buf *out, size_t *kept, size_t *cosigs, uint64_t *latest) TL_WUR;

/* A 200 answer: note text + resp (signature lines) filtered by w alone.
 * TL_EFORMAT when resp is not signature lines; TL_ESIG when no line by w
 * verifies. out as for tl_wc_filter. */
int tl_wc_accept(const char *note, size_t note_len, const uint8_t *resp, size_t resp_len,
                 const struct tl_vkey *w, struct tl_buf *out, size_t *ncosigs,
                 uint64_t *time) TL_WUR;

/*
 * Fork evidence (DESIGN §5), pure: type TL_FORK_RECORDS — a and b are two
 * different records of origin for seq at, each validly signed by the
 * origin's key; TL_FORK_CHECKPOINTS — a and b are two checkpoint notes of
 * origin for size at, each validly signed by the origin's key, with
 * different roots; TL_FORK_CONSISTENCY — a is such a note for size at, b
 * one for a larger size, and extra (root || proof hashes) is a root r at
 * size at that differs from a's root together with an RFC 6962 consistency
 * proof from (at, r) to b's root: the key signed two views that cannot
 * both hold. extra is ignored for the other types. 0 when the evidence
 * proves the fork; otherwise a TL_E code, and why (a sentence) says what
 * is wrong.
 */
int tl_fork_verify(const char *origin, int type, uint64_t at, const uint8_t *a, size_t alen,
                   const uint8_t *b, size_t blen, const uint8_t *extra, size_t elen, char *why,
                   size_t cap) TL_WUR;

#endif
