/*
 * tl_node.h — the node module: the LMDB store, local feed appends, and the
 * JSON <-> canonical MessagePack bridge used by the CLI and (later) the
 * control and HTTP APIs. Layout of the store: docs/storage.md.
 *
 * Threading: a struct tl_store may be used from several threads; write
 * transactions are serialised by LMDB. Pointers handed to scan callbacks are
 * valid only during the callback (they point into the LMDB map).
 */
#ifndef TL_NODE_H
#define TL_NODE_H

#include <jansson.h>
#include <stdio.h>

#include "../consensus/tl_consensus.h"

/* ------------------------------------------------------------- store */

#define TL_STORE_FORMAT  1
#define TL_BOOK_NAME_MAX 63
#define TL_STORE_RDONLY  0x1u

struct tl_store;

/* Opens (creating if needed) the store in directory dir (created 0700).
 * mapsize 0 = default (64 GiB of address space; the file grows on demand).
 * On failure err (if not NULL) receives a sentence saying why. */
int tl_store_open(struct tl_store **out, const char *dir, unsigned flags, size_t mapsize, char *err,
                  size_t errcap) TL_WUR;
void tl_store_close(struct tl_store *s);
/* Detail of the last failed store call on this thread, e.g. "feed
 * tally.v1/...: seq 17: stored record does not match its leaf hash". Kept
 * per thread, so threads calling the store at once do not overwrite each
 * other's message; read it right after the failed call. */
const char *tl_store_errmsg(struct tl_store *s);

struct tl_book {
	char name[TL_BOOK_NAME_MAX + 1];
	uint8_t pk[TL_PUB_LEN];
	uint64_t created_ms;
};

/* Book names: 1..63 bytes of [A-Za-z0-9._-]. */
int tl_book_name_valid(const char *name);
int tl_store_book_add(struct tl_store *s, const struct tl_book *b) TL_WUR;
int tl_store_book_get(struct tl_store *s, const char *name, struct tl_book *b) TL_WUR;
/* *out is malloc'd (free it); sorted by name. */
int tl_store_book_list(struct tl_store *s, struct tl_book **out, size_t *n) TL_WUR;

#define TL_FEED_OWN    0x1u /* written by a book of this store */
#define TL_FEED_FORKED 0x2u /* equivocation evidence is held */
/* An own feed of which others hold a later (or a different) state than this
 * store: this data directory may be restored from an old copy. Appends are
 * refused (TL_EFORK) until an operator clears it: `tally forks resolve`. */
#define TL_FEED_HALTED 0x4u
/* A feed this store follows read-only as an auditor (`tally auditor follow`):
 * replicated from the book that admitted this store's book, verified like a
 * counterparty's feed, never appended to and never acknowledged. The feed's
 * book is the following (auditor) book, its peer the admitting book. */
#define TL_FEED_AUDIT 0x8u

struct tl_feed {
	char origin[TL_ORIGIN_LEN + 1];
	uint64_t id;                     /* store-local */
	struct tl_origin o;              /* author key and channel */
	struct tl_feed_head head;        /* size and last leaf hash */
	uint8_t peer[TL_PUB_LEN];        /* the counterparty book */
	char book[TL_BOOK_NAME_MAX + 1]; /* owning book name when OWN */
	char label[TL_LABEL_MAX + 1];
	uint32_t flags;
	uint64_t created_ms;
};

/* f->origin, o, peer, book, label, flags, created_ms are read; id and head
 * are assigned. TL_EEXIST if the origin is known. */
int tl_store_feed_add(struct tl_store *s, struct tl_feed *f) TL_WUR;
int tl_store_feed_get(struct tl_store *s, const char *origin, struct tl_feed *f) TL_WUR;
int tl_store_feed_list(struct tl_store *s, struct tl_feed **out, size_t *n) TL_WUR;

struct tl_rec {
	const uint8_t *data;
	size_t len;
};

#define TL_APPEND_VERIFY 0x1u /* verify each signature before storing */
#define TL_APPEND_RESTORE 0x2u /* allowed while the feed is TL_FEED_HALTED (catch-up) */

/*
 * Appends n signed records to a feed in one write transaction with one
 * fsync: all or nothing. Each record is decoded strictly and must continue
 * the chain (origin, seq, prev). On failure *bad (if not NULL) is the index
 * of the offending record and tl_store_errmsg() says why. On success *after
 * (if not NULL) is the feed as committed. The call returns only after the
 * data is durable.
 */
int tl_store_append(struct tl_store *s, const char *origin, const struct tl_rec *recs, size_t n,
                    unsigned flags, size_t *bad, struct tl_feed *after) TL_WUR;

/* The same, and in the same transaction the signed checkpoint note of the
 * feed at its new size (the caller has verified it). */
int tl_store_append_cp(struct tl_store *s, const char *origin, const struct tl_rec *recs, size_t n,
                       unsigned flags, size_t *bad, struct tl_feed *after, const char *note,
                       size_t note_len) TL_WUR;

/* Copies record seq into out (reset first) after checking it against its
 * stored leaf hash: TL_ECORRUPT names feed and seq in tl_store_errmsg(). */
int tl_store_record(struct tl_store *s, const struct tl_feed *f, uint64_t seq,
                    struct tl_buf *out) TL_WUR;
int tl_store_leaf(struct tl_store *s, const struct tl_feed *f, uint64_t seq,
                  uint8_t leaf[TL_HASH_LEN]) TL_WUR;
/* Finds an entry by its leaf hash. origin must hold TL_ORIGIN_LEN + 1. */
int tl_store_find_leaf(struct tl_store *s, const uint8_t leaf[TL_HASH_LEN], char *origin,
                       uint64_t *seq) TL_WUR;

/* Calls cb for seq in [from, to) (to clamped to the size) inside one read
 * transaction; rec and leaf are valid during the call only. The record is
 * checked against its leaf hash first. A non-zero return from cb stops the
 * scan and is returned. */
typedef int (*tl_scan_fn)(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                          const uint8_t leaf[TL_HASH_LEN]);
int tl_store_scan(struct tl_store *s, const struct tl_feed *f, uint64_t from, uint64_t to,
                  tl_scan_fn cb, void *ctx) TL_WUR;

/* Merkle views over the stored subtree hashes: O(log n) each. */
int tl_store_root(struct tl_store *s, const struct tl_feed *f, uint64_t size,
                  uint8_t root[TL_HASH_LEN]) TL_WUR;
int tl_store_inclusion(struct tl_store *s, const struct tl_feed *f, uint64_t seq, uint64_t size,
                       uint8_t (*proof)[TL_HASH_LEN], size_t cap, size_t *n) TL_WUR;
int tl_store_consistency(struct tl_store *s, const struct tl_feed *f, uint64_t old_size,
                         uint64_t new_size, uint8_t (*proof)[TL_HASH_LEN], size_t cap,
                         size_t *n) TL_WUR;

/* The compact range (right frontier) of the feed at its current size, to
 * compute the root after records that are not stored yet. */
int tl_store_frontier(struct tl_store *s, const struct tl_feed *f,
                      struct tl_merkle_acc *acc) TL_WUR;

/* Signed checkpoints (full note text, cosignatures included), by size. */
int tl_store_checkpoint_put(struct tl_store *s, const struct tl_feed *f, uint64_t size,
                            const char *note, size_t len) TL_WUR;
/* size == UINT64_MAX: the latest. *got_size receives its size. */
int tl_store_checkpoint_get(struct tl_store *s, const struct tl_feed *f, uint64_t size,
                            struct tl_buf *out, uint64_t *got_size) TL_WUR;
/*
 * Merges the signature lines of note (a signed checkpoint of f at size,
 * verified by the caller) into the stored note of (f, size) in one write
 * transaction; stores note as is when none is stored. The result keeps every
 * distinct plain signature and, per cosigning key, the earliest and the
 * latest cosignature, at most TL_NOTE_MAX_SIGS lines. *added (may be NULL)
 * counts the lines that were new. TL_EFORK when the stored note has another
 * text (another root): stored (may be NULL) then receives the stored note.
 */
int tl_store_checkpoint_merge(struct tl_store *s, const struct tl_feed *f, uint64_t size,
                              const char *note, size_t len, size_t *added,
                              struct tl_buf *stored) TL_WUR;
typedef int (*tl_cp_fn)(void *ctx, uint64_t size, const char *note, size_t len);
int tl_store_checkpoint_scan(struct tl_store *s, const struct tl_feed *f, tl_cp_fn cb,
                             void *ctx) TL_WUR;
/* The same from size from on (sizes ascend): O(log n) to the start, so that
 * the event loop can look near one size of a long feed. */
int tl_store_checkpoint_scan_from(struct tl_store *s, const struct tl_feed *f, uint64_t from,
                                  tl_cp_fn cb, void *ctx) TL_WUR;

/* Store statistics for `tally status` and benchmarks. */
struct tl_store_stats {
	uint64_t file_bytes; /* size of data.mdb on disk */
	uint64_t used_bytes; /* pages in use * page size */
	uint64_t records;
	uint64_t record_bytes; /* sum of record lengths */
};
int tl_store_stats(struct tl_store *s, struct tl_store_stats *st) TL_WUR;

/* Known counterparties: which local book talks to which remote book where. */
#define TL_ADDR_MAX 255
struct tl_peer {
	uint8_t pk[TL_PUB_LEN];          /* the remote book */
	char book[TL_BOOK_NAME_MAX + 1]; /* the local book */
	char addr[TL_ADDR_MAX + 1];      /* "host:port" */
};
int tl_store_peer_put(struct tl_store *s, const struct tl_peer *p) TL_WUR;
int tl_store_peer_list(struct tl_store *s, struct tl_peer **out, size_t *n) TL_WUR;

/* Keeps two different records for one (origin, seq) as an equivocation
 * proof and marks the feed TL_FEED_FORKED. */
int tl_store_fork_put(struct tl_store *s, const struct tl_feed *f, uint64_t seq, const uint8_t *a,
                      size_t alen, const uint8_t *b, size_t blen) TL_WUR;
/* Keeps two checkpoint notes of one origin and size with different roots
 * (the caller verified both signatures) and marks the feed forked. */
int tl_store_fork_cp_put(struct tl_store *s, const struct tl_feed *f, uint64_t size, const char *a,
                         size_t alen, const char *b, size_t blen) TL_WUR;

/* Keeps a checkpoint note a of size N whose root is not the root at N of a
 * larger signed checkpoint b of the same feed: extra is the true root at N
 * (32 bytes) and the RFC 6962 consistency proof from N to b's size. */
int tl_store_fork_cpx_put(struct tl_store *s, const struct tl_feed *f, uint64_t size,
                          const char *a, size_t alen, const char *b, size_t blen,
                          const uint8_t *extra, size_t elen) TL_WUR;

#define TL_FORK_RECORDS     1 /* a, b: two records for one (origin, seq = at) */
#define TL_FORK_CHECKPOINTS 2 /* a, b: two checkpoint notes for one (origin, size = at) */
#define TL_FORK_CONSISTENCY 3 /* a: note of size at; b: larger note; extra: root at, proof */
struct tl_fork {
	uint64_t index; /* 1-based position in the scan: `tally forks show N` */
	char origin[TL_ORIGIN_LEN + 1];
	int type;
	uint64_t at;
	const uint8_t *a, *b, *extra; /* valid during the callback only */
	size_t alen, blen, elen;
};
typedef int (*tl_fork_fn)(void *ctx, const struct tl_fork *fk);
/* Every piece of fork evidence, ordered by feed id then seq/size. */
int tl_store_fork_scan(struct tl_store *s, tl_fork_fn cb, void *ctx) TL_WUR;

/* Halting an own feed (TL_FEED_HALTED): others_size is the size others are
 * known to hold, why a sentence for people (at most TL_HALT_WHY_MAX bytes
 * kept). get: TL_ENOTFOUND when the feed is not halted. */
#define TL_HALT_WHY_MAX 300
int tl_store_halt_set(struct tl_store *s, const char *origin, uint64_t others_size,
                      const char *why) TL_WUR;
int tl_store_halt_get(struct tl_store *s, const char *origin, uint64_t *others_size, char *why,
                      size_t cap) TL_WUR;
int tl_store_halt_clear(struct tl_store *s, const char *origin) TL_WUR;

/* --------------------------------------------------- local appends */

struct tl_item {
	const char *kind;
	size_t kind_len;
	const uint8_t *body; /* canonical MessagePack map */
	size_t body_len;
};

struct tl_appended {
	uint64_t seq;
	uint8_t leaf[TL_HASH_LEN];
};

/*
 * Builds, signs and durably appends n entries to an own feed with the book's
 * key, in batches of at most batch entries per transaction (0 = all in one).
 * time_ms is the claimed time of every entry. out (may be NULL) receives one
 * tl_appended per item. Signing of batch k+1 overlaps the commit of batch k.
 * On failure, batches already committed stay committed; *done (may be NULL)
 * says how many items were durably appended.
 */
typedef void (*tl_durable_fn)(void *ctx, size_t first, size_t n);
/* on_durable (may be NULL) is called, from another thread, after each batch
 * of items [first, first + n) is committed and durable: the moment an append
 * may be acknowledged. */
int tl_feed_append_local(struct tl_store *s, const char *origin, const struct tl_keypair *kp,
                         const struct tl_item *items, size_t n, size_t batch, uint64_t time_ms,
                         struct tl_appended *out, size_t *done, tl_durable_fn on_durable,
                         void *ctx) TL_WUR;

/* ------------------------------------------------------- verification */

/*
 * Independent verification of bundles (DESIGN §3, tally-bundle/v1), single
 * entry proofs (c2sp.org/tlog-proof@v1 with the record as extra) and signed
 * notes. Pure functions of their input: they never touch a store.
 */

#define TL_VERIFY_REASON_MAX 256

struct tl_verify_opts {
	const struct tl_vkey *logs; /* accepted feed keys; NULL = any key bound by origin */
	size_t nlogs;
	const struct tl_vkey *witnesses; /* NULL = the bundle's own list (reported as such) */
	size_t nwitnesses;
	int quorum;       /* < 0 = the bundle's quorum (0 for proofs/notes) */
	unsigned threads; /* signature checks in parallel; 0 = 2 */
	int64_t now;      /* unix seconds for the cosignature skew check; 0 = none */
};

struct tl_verify_issue {
	char origin[TL_ORIGIN_TEXT_MAX + 1]; /* empty when not about one feed */
	int64_t seq;                         /* -1 when not about one entry */
	int64_t size;                        /* checkpoint size, -1 when n/a */
	char reason[TL_VERIFY_REASON_MAX];
};

struct tl_verify_feed {
	char origin[TL_ORIGIN_TEXT_MAX + 1];
	uint64_t records;          /* records in the bundle */
	uint64_t verified;         /* records whose signature, seq and prev verified */
	uint64_t checkpoints;      /* checkpoints whose signature and root verified */
	uint64_t max_checkpoint;   /* largest verified checkpoint size */
	uint64_t witnessed_size;   /* largest checkpoint size with >= quorum cosignatures */
	uint64_t witnessed_time;   /* proofs: the quorum-th earliest valid cosignature time on
	                              the checkpoint (unix s): the entry existed by then; 0 none */
	uint8_t root[TL_HASH_LEN]; /* root over all records */
};

struct tl_verify_report {
	struct tl_verify_feed *feeds;
	size_t nfeeds;
	struct tl_verify_issue *issues; /* at most 1000 kept; nissues counts all */
	size_t nissues, issues_cap;
	int quorum;                /* quorum applied */
	size_t nwitnesses;         /* witness keys applied */
	int witnesses_from_bundle; /* 1 when taken from the bundle itself */
};

void tl_verify_report_release(struct tl_verify_report *r);
/*
 * Returns 0 when everything verifies; TL_EPROOF (or the first specific code)
 * when anything does not, with every finding in r->issues. The bundle is
 * fully checked even after a failure so the report lists all findings (up
 * to the cap). TL_EFORMAT for input that is not a bundle at all.
 */
int tl_verify_bundle(const char *json, size_t len, const struct tl_verify_opts *o,
                     struct tl_verify_report *r) TL_WUR;
/* Verifies a .tlog-proof whose extra is a Tally record: record decode and
 * signature, leaf hash at index, inclusion in the checkpoint, checkpoint
 * signature by the origin's key (and o->logs if given), cosignatures. */
int tl_verify_tlog_proof(const char *text, size_t len, const struct tl_verify_opts *o,
                         struct tl_verify_report *r) TL_WUR;
/* Any C2SP signed note: at least one o->logs key must sign it validly (any
 * line of a given key that fails is an error); if the text is a checkpoint,
 * cosignatures by o->witnesses must reach o->quorum. feed[0] reports size
 * and root when it is a checkpoint. */
int tl_verify_note(const char *text, size_t len, const struct tl_verify_opts *o,
                   struct tl_verify_report *r) TL_WUR;

/* ------------------------------------------------------------ bundles */

/*
 * Writes a tally-bundle/v1 of the given feeds to fp, streaming (memory does
 * not grow with the feed): records in seq order and every stored checkpoint.
 * witnesses (vkey strings, may be NULL) and quorum are written as given.
 * *records receives the number of records written.
 */
int tl_bundle_write(struct tl_store *s, FILE *fp, const struct tl_feed *feeds, size_t n,
                    const char *const *witnesses, size_t nwitnesses, int quorum,
                    uint64_t *records) TL_WUR;

/* ----------------------------------------------------------- channels */

struct tl_channel {
	char origin[TL_ORIGIN_LEN + 1];      /* the book's own feed */
	char peer_origin[TL_ORIGIN_LEN + 1]; /* the counterparty's feed */
	uint8_t channel[TL_CHANNEL_LEN];
};

/*
 * Opens (or re-opens: idempotent) the channel between book and peer with
 * label: creates the book's feed and appends feed.open {label, author, peer,
 * peer_origin} as its first entry, registers the counterparty's feed so its
 * records can be replicated in, and records addr ("host:port", may be NULL)
 * as where the peer is reached. peer_is_local: both books live here.
 */
int tl_channel_open(struct tl_store *s, const char *book, const struct tl_keypair *kp,
                    const uint8_t peer[TL_PUB_LEN], const char *label, const char *addr,
                    int peer_is_local, uint64_t time_ms, struct tl_channel *out) TL_WUR;

/* ------------------------------------------ JSON <-> MessagePack bodies */

/*
 * Canonical MessagePack from JSON: objects become maps with keys sorted
 * bytewise, integers the shortest form, strings str, true/false/null as
 * such. A real number is refused (TL_EFORMAT) with err saying that amounts
 * are integer minor units and naming the JSON path, e.g. "$.lines[3].amount".
 * Depth is capped at TL_MP_DEPTH_MAX. out is appended to.
 */
int tl_json_to_mp(const json_t *j, struct tl_buf *out, char *err, size_t errcap) TL_WUR;
/* JSON value of a canonical MessagePack object (bin becomes {"$bin": base64}).
 * Returns a new reference or NULL if p is not canonical. */
json_t *tl_mp_to_json(const uint8_t *p, size_t len);
/* One line summary of a body for logs, at most cap-1 chars: "k=v k=v ...". */
void tl_mp_summary(const uint8_t *p, size_t len, char *out, size_t cap);

#endif
