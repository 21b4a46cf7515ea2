/*
 * tl_consensus.h — the rules every honest party computes identically:
 * origins and channel ids, the canonical MessagePack entry codec of
 * DESIGN §3, record signing and validation, feed append rules.
 *
 * Pure: no I/O, no clock, no libuv, no LMDB. Depends on crypto and msgpack-c.
 */
#ifndef TL_CONSENSUS_H
#define TL_CONSENSUS_H

#include "../crypto/tl_crypto.h"

#define TL_ENTRY_VERSION     1
#define TL_ENTRY_MAX         (4u << 20) /* entry bytes, without the signature */
#define TL_RECORD_MAX        (TL_ENTRY_MAX + TL_SIG_LEN)
#define TL_MP_DEPTH_MAX      32 /* nesting of arrays and maps in a body */
#define TL_KIND_MAX          64 /* bytes */
#define TL_CHANNEL_LEN       16
#define TL_ORIGIN_LEN        106 /* "tally.v1/" + 64 hex + "/" + 32 hex */
#define TL_LABEL_MAX         128
#define TL_ENTRY_SIG_CONTEXT "tally/entry/v1\n"
#define TL_CHANNEL_CONTEXT   "tally/channel/v1\n"

/* -------------------------------------------------- origins and channels */

struct tl_origin {
	uint8_t pk[TL_PUB_LEN];
	uint8_t channel[TL_CHANNEL_LEN];
};

/* SHA-256(context || lo || hi || label)[0:16]; a, b in any order. */
void tl_channel_id(uint8_t out[TL_CHANNEL_LEN], const uint8_t a[TL_PUB_LEN],
                   const uint8_t b[TL_PUB_LEN], const char *label, size_t label_len);
/* out must hold TL_ORIGIN_LEN + 1 bytes. */
void tl_origin_format(char *out, const uint8_t pk[TL_PUB_LEN],
                      const uint8_t channel[TL_CHANNEL_LEN]);
/* Exactly "tally.v1/<64 lowercase hex>/<32 lowercase hex>". */
int tl_origin_parse(struct tl_origin *o, const char *s, size_t len) TL_WUR;

/* ------------------------------------------------ canonical MessagePack */

/*
 * Validates that [p, p+len) is exactly one canonical MessagePack object:
 * shortest integer forms, str (valid UTF-8) vs bin, map keys str, sorted
 * bytewise ascending, no duplicates, no float, no ext, no nil-free rules
 * beyond that (nil, bool allowed), depth <= TL_MP_DEPTH_MAX, every declared
 * length within the bytes remaining, no trailing bytes.
 * On failure *where (if not NULL) receives the byte offset of the fault.
 */
int tl_mp_check(const uint8_t *p, size_t len, size_t *where) TL_WUR;
/* As tl_mp_check, and also requires the object to be a map. */
int tl_mp_check_map(const uint8_t *p, size_t len, size_t *where) TL_WUR;

/*
 * One canonical MessagePack item at *pos: its header and, for str and bin,
 * its payload (data points into p). Containers are not descended into:
 * *pos moves past the header, and u says how many elements (arrays) or
 * key/value pairs (maps) follow. Strict as tl_mp_check (shortest forms,
 * UTF-8, no float or ext); map key order is checked by tl_mp_check only.
 * For walking input that tl_mp_check has accepted.
 */
enum tl_mp_type {
	TL_MP_NIL,
	TL_MP_BOOL,
	TL_MP_UINT,
	TL_MP_INT,
	TL_MP_STR,
	TL_MP_BIN,
	TL_MP_ARRAY,
	TL_MP_MAP
};

struct tl_mp_item {
	enum tl_mp_type type;
	uint64_t u;          /* UINT and BOOL value; STR/BIN length; ARRAY/MAP count */
	int64_t i;           /* INT value (negative) */
	const uint8_t *data; /* STR/BIN payload */
};

int tl_mp_next(const uint8_t *p, size_t len, size_t *pos, struct tl_mp_item *it) TL_WUR;

/* ------------------------------------------------------------- entries */

/*
 * A decoded record. Every pointer borrows from the record buffer passed to
 * tl_record_decode and lives as long as it.
 */
struct tl_entry {
	uint64_t seq;
	uint64_t time_ms;
	struct tl_origin origin;
	const char *origin_str; /* not NUL-terminated; TL_ORIGIN_LEN bytes */
	const char *kind;       /* not NUL-terminated */
	size_t kind_len;
	uint8_t prev[TL_HASH_LEN];
	const uint8_t *body; /* canonical MessagePack map */
	size_t body_len;
	const uint8_t *entry; /* the signed entry bytes */
	size_t entry_len;
	const uint8_t *sig; /* TL_SIG_LEN bytes, right after entry */
};

/* Encodes the 7-element entry array. body must pass tl_mp_check_map. */
int tl_entry_encode(struct tl_buf *out, const char *origin, uint64_t seq,
                    const uint8_t prev[TL_HASH_LEN], uint64_t time_ms, const char *kind,
                    size_t kind_len, const uint8_t *body, size_t body_len) TL_WUR;
/* Appends the signature over context || out->data to out (entry -> record). */
int tl_record_sign(struct tl_buf *rec, const uint8_t sk[TL_SEC_LEN]) TL_WUR;
/* The same with a streaming signer (bulk appends; see tl_signer_new). */
int tl_record_sign_with(struct tl_buf *rec, struct tl_signer *signer) TL_WUR;

/*
 * Strict decode of a record (entry bytes || 64-byte signature). Checks the
 * canonical encoding, the version, the origin syntax, kind (non-empty, <=
 * TL_KIND_MAX, printable ASCII), prev length. Does not verify the signature.
 * *where receives the byte offset of a fault (may be NULL).
 */
int tl_record_decode(struct tl_entry *e, const uint8_t *rec, size_t len, size_t *where) TL_WUR;
/* Verifies the signature with the origin's public key. */
int tl_record_verify_sig(const struct tl_entry *e) TL_WUR;
/* Leaf hash of a whole record (= the entry's id). */
void tl_record_leaf_hash(uint8_t out[TL_HASH_LEN], const uint8_t *rec, size_t len);

/* State of a feed needed to accept its next record. */
struct tl_feed_head {
	uint64_t size;
	uint8_t last_leaf[TL_HASH_LEN]; /* zero when size == 0 */
};

/*
 * Append rule: e belongs to origin, e->seq == head->size, e->prev ==
 * head->last_leaf. TL_ECHAIN otherwise. On success head advances with the
 * record's leaf hash (leaf, computed by the caller).
 */
int tl_feed_check_next(const struct tl_feed_head *head, const struct tl_origin *origin,
                       const struct tl_entry *e) TL_WUR;
void tl_feed_advance(struct tl_feed_head *head, const uint8_t leaf[TL_HASH_LEN]);

#endif
