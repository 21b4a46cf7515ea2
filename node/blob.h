/*
 * blob.h — vouchers: a content-addressed blob store in the home directory,
 * and their replication on demand between nodes (docs/storage.md section 9,
 * docs/protocol.md "Blobs").
 *
 * A blob is a file named by the lowercase hex of its SHA-256 under
 * HOME/blobs/<first two hex>/<hex>. Blobs are written atomically (staging
 * file, fsync, rename, fsync of the directory) and verified on every read: a
 * blob whose bytes no longer hash to its name is reported (TL_ECORRUPT, the
 * path in err) and never returned. Partial content (a download in progress)
 * lives in HOME/blobs/staging/ and becomes a blob only once the whole content
 * hashes to the requested hash.
 *
 * Threading: the functions below are blocking file I/O; the node calls them
 * on the libuv thread pool. A struct tl_blobs is a plain value (directory and
 * cap) and may be shared between threads. Concurrent puts of the same blob
 * are safe: each writes its own staging file and the rename is atomic.
 */
#ifndef TL_BLOB_H
#define TL_BLOB_H

#include <sodium.h>
#include <stdint.h>

#include "tl_node.h"

#define TL_BLOB_MAX_DEFAULT 20000000ull  /* 20 MB (decimal), the default cap */
#define TL_BLOB_MAX_LIMIT   (1ull << 32) /* the largest cap a config may set */
#define TL_BLOB_CHUNK       (256u << 10) /* bytes per blob.chunk message */
#define TL_BLOB_HEX         64

struct tl_blobs {
	char dir[4096]; /* HOME/blobs */
	uint64_t max;   /* size cap in bytes */
};

/* Sets up b for the home directory (nothing is created yet). max 0 = the
 * default cap. TL_ETOOBIG if the path is too long. */
int tl_blobs_init(struct tl_blobs *b, const char *home, uint64_t max) TL_WUR;

/* Path of the blob file (whether it exists or not). */
void tl_blob_path(const struct tl_blobs *b, const uint8_t hash[32], char *out, size_t cap);

/* Stores a file's content (path "-" = stdin), hashing while copying into
 * staging. TL_ETOOBIG when the content exceeds b->max (nothing stored).
 * Idempotent: *existed (may be NULL) is 1 when the blob was already stored
 * (a damaged stored copy is replaced by the good content). */
int tl_blob_put_file(const struct tl_blobs *b, const char *path, uint8_t hash[32], int *existed,
                     char *err, size_t errcap) TL_WUR;
int tl_blob_put_mem(const struct tl_blobs *b, const void *data, size_t len, uint8_t hash[32],
                    int *existed, char *err, size_t errcap) TL_WUR;

/* 0 and *size when a file of that name is stored (content not checked);
 * TL_ENOTFOUND when not. */
int tl_blob_has(const struct tl_blobs *b, const uint8_t hash[32], uint64_t *size) TL_WUR;

/* Reads the whole blob and checks its hash: 0 and *size; TL_ENOTFOUND;
 * TL_ECORRUPT with err naming the path; TL_EIO. */
int tl_blob_verify(const struct tl_blobs *b, const uint8_t hash[32], uint64_t *size, char *err,
                   size_t errcap) TL_WUR;

/* Copies a blob to dest atomically (temp file next to dest, fsync, rename,
 * fsync of the directory), verifying the hash while copying: on a mismatch
 * the temp file is removed, dest is untouched and TL_ECORRUPT is returned. */
int tl_blob_copy_out(const struct tl_blobs *b, const uint8_t hash[32], const char *dest,
                     uint64_t *size, char *err, size_t errcap) TL_WUR;

struct tl_blob_info {
	uint8_t hash[32];
	uint64_t size;
	uint64_t mtime_ms;
};
/* Every stored blob (not checked), sorted by hash; *out malloc'd. */
int tl_blob_list(const struct tl_blobs *b, struct tl_blob_info **out, size_t *n) TL_WUR;

/* ----------------------------------------------------------- staging */

/* A download in progress: content is appended in order, hashed as it goes,
 * and committed only if the whole hashes to want. */
struct tl_blob_stage {
	int fd;
	char path[4400];
	uint8_t want[32];
	uint64_t total, got;
	crypto_hash_sha256_state st;
};

int tl_blob_stage_begin(const struct tl_blobs *b, struct tl_blob_stage *s, const uint8_t want[32],
                        uint64_t total, char *err, size_t errcap) TL_WUR;
/* Appends at offset (must equal s->got; got + len <= total): TL_ERANGE
 * otherwise. */
int tl_blob_stage_write(struct tl_blob_stage *s, uint64_t offset, const void *data, size_t len,
                        char *err, size_t errcap) TL_WUR;
/* got == total and the content hashes to want: fsync, rename into place,
 * fsync of the directory. Otherwise TL_ECORRUPT (or TL_ERANGE when short)
 * and the staging file is removed. The stage is finished either way. */
int tl_blob_stage_commit(const struct tl_blobs *b, struct tl_blob_stage *s, char *err,
                         size_t errcap) TL_WUR;
/* Discards the staging file (safe on a finished or never begun stage). */
void tl_blob_stage_abort(struct tl_blob_stage *s);
/* Removes staging files left by a process that died mid-download. */
void tl_blob_stage_sweep(const struct tl_blobs *b);

/* Checks one blob.chunk against what the requester expects: the hash it
 * asked for, the next offset in order, a total within the cap and equal to
 * earlier chunks' (*total 0 unknown: set from this chunk), and exactly
 * min(TL_BLOB_CHUNK, total - offset) bytes. 0, or TL_ERANGE / TL_ETOOBIG /
 * TL_EINVAL with why filled in. */
int tl_blob_chunk_check(const uint8_t want[32], uint64_t next_offset, int total_known,
                        uint64_t known_total, uint64_t cap, const uint8_t hash[32], uint64_t offset,
                        uint64_t total, size_t len, char *why, size_t whycap) TL_WUR;

/* -------------------------------------------------------- references */

/* 1 if an entry body (canonical MessagePack map) references the blob: a map
 * key "blobs" at any depth whose value is an array holding the hash as a
 * 64-digit lowercase hex string. */
int tl_blob_body_refs(const uint8_t *body, size_t len, const char hex[TL_BLOB_HEX + 1]);
/* *found = 1 when some entry of feed f references the blob. */
int tl_blob_feed_refs(struct tl_store *s, const struct tl_feed *f, const uint8_t hash[32],
                      int *found) TL_WUR;

/* Hex name <-> hash. Parsing accepts exactly 64 lowercase hex digits. */
int tl_blob_hex_parse(const char *hex, uint8_t hash[32]) TL_WUR;

#endif
