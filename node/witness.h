/*
 * witness.h — the Tally witness: a C2SP tlog-witness v1.0.0 server
 * (`tallyd --witness`) and its LMDB state, shared with `tally witness`.
 * Behaviour, layout and the group-commit argument: docs/witness.md.
 *
 * A witness home holds:
 *   witness.key   the Ed25519 witness key (encrypted key file, label = name)
 *   witness.lmdb/ the LMDB environment (tables meta, logs, state, cosigned)
 *   witness.lock  flock'd by the running server (one per home)
 *   witness.addr  "HOST:PORT\n" of the running server, written after bind
 *
 * The LMDB environment is safe to open from several processes at once: the
 * CLI registers logs while the server runs, and the server reads the logs
 * table on every request, so a change takes effect without a restart.
 */
#ifndef TL_WITNESS_H
#define TL_WITNESS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/tl_crypto.h"

#define TL_WITNESS_BODY_MAX   (64u << 10) /* add-checkpoint request body, bytes */
#define TL_WITNESS_PROOF_MAX  63          /* consistency proof lines (the spec's cap) */
#define TL_WITNESS_VKEYS_MAX  16          /* registered vkeys per origin */
#define TL_WITNESS_VKEY_TEXT  (TL_NAME_MAX + 64)

/* ------------------------------------------------------------ the store */

struct tl_wstore;

/* Opens (create: and creates) home/witness.lmdb. err receives a sentence. */
int tl_wstore_open(struct tl_wstore **out, const char *home, int create, char *err,
                   size_t errcap) TL_WUR;
void tl_wstore_close(struct tl_wstore *s);
const char *tl_wstore_errmsg(struct tl_wstore *s);

/* One registered log. */
struct tl_wlog {
	char origin[TL_ORIGIN_TEXT_MAX + 1];
	struct tl_vkey vkeys[TL_WITNESS_VKEYS_MAX];
	size_t nvkeys;
	int has_state;   /* a checkpoint was cosigned */
	uint64_t size;   /* latest cosigned size (0 without state) */
	uint8_t root[TL_HASH_LEN];
	uint64_t time;   /* timestamp of the latest cosignature, Unix seconds */
	int allowed;     /* registered now (a denied log keeps its state) */
};

/* 0 or TL_EFORMAT: 1-255 bytes of UTF-8, no control characters. */
int tl_witness_origin_valid(const char *origin, size_t len) TL_WUR;
/* Adds vk (type 0x01) to origin's keys; TL_EEXIST if it is already there
 * (not an error for callers that want idempotence); TL_ETOOBIG past the cap. */
int tl_wstore_allow(struct tl_wstore *s, const char *origin, const struct tl_vkey *vk) TL_WUR;
/* Removes origin's keys; its state stays (re-allowing cannot roll it back).
 * TL_ENOTFOUND if it was not registered. */
int tl_wstore_deny(struct tl_wstore *s, const char *origin) TL_WUR;
/* The log of origin: registered keys and state. TL_ENOTFOUND when neither. */
int tl_wstore_get(struct tl_wstore *s, const char *origin, struct tl_wlog *out) TL_WUR;
/* Every registered or stateful log, sorted by origin; caller frees *out. */
int tl_wstore_list(struct tl_wstore *s, struct tl_wlog **out, size_t *n) TL_WUR;
/* The latest cosigned checkpoint note of origin (its text, the log's
 * signature lines and the witness's cosignature) appended to out. */
int tl_wstore_latest(struct tl_wstore *s, const char *origin, struct tl_buf *out) TL_WUR;

/* One row of the record of cosigned checkpoints: one per distinct size;
 * same-size heartbeats raise last_time and count. */
struct tl_wrecord {
	char origin[TL_ORIGIN_TEXT_MAX + 1];
	uint64_t size;
	uint8_t root[TL_HASH_LEN];
	uint64_t first_time, last_time, count;
};

/* Records of origin (or of every log when origin is NULL), by origin then
 * size; caller frees *out. */
int tl_wstore_records(struct tl_wstore *s, const char *origin, struct tl_wrecord **out,
                      size_t *n) TL_WUR;

/* ------------------------------------------------------ request parsing */

/* An add-checkpoint request body, apart from its checkpoint note. */
struct tl_witness_request {
	uint64_t old;                                     /* the "old N" line */
	uint8_t proof[TL_WITNESS_PROOF_MAX][TL_HASH_LEN]; /* consistency proof hashes */
	size_t nproof;
};

/*
 * Parses an add-checkpoint body (C2SP tlog-witness: "old N\n" in canonical
 * decimal, at most TL_WITNESS_PROOF_MAX lines of base64 hashes, an empty
 * line, then the checkpoint as a signed note) into rq, note and cp. Syntax
 * only: signatures, old <= size and the proof are checked by the server.
 * Returns NULL, or the reason for a 400 (static text, or written to why).
 * note is set up either way: the caller releases it (tl_note_release).
 */
const char *tl_witness_parse_request(const char *body, size_t len, struct tl_witness_request *rq,
                                     struct tl_note *note, struct tl_checkpoint *cp, char *why,
                                     size_t whycap) TL_WUR;

/* --------------------------------------------------------------- server */

struct tl_witness_config {
	char home[4096];
	char listen[TL_NAME_MAX + 1]; /* "127.0.0.1:0" by default */
	int log_level;                /* 0 error, 1 warn, 2 info, 3 debug */
	int64_t clock_offset;         /* seconds added to the clock: testing only */
	unsigned threads;             /* HTTP threads; 0 = one per CPU (2..8) */
	unsigned max_conns;           /* concurrent connections; 0 = 1000 */
};

void tl_witness_config_defaults(struct tl_witness_config *c);
/* Runs the witness until SIGTERM/SIGINT; returns a process exit code. */
int tl_witness_run(const struct tl_witness_config *c);

#endif
