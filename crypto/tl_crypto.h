/*
 * tl_crypto.h — the crypto module: SHA-256, Ed25519 book keys and encrypted
 * key files, the RFC 6962 Merkle tree and its proofs, C2SP signed notes,
 * checkpoints, cosignatures (type 0x04) and tlog-proof files.
 *
 * Depends on libsodium only. No global mutable state: every function may be
 * called from any thread once tl_init() has returned 0.
 */
#ifndef TL_CRYPTO_H
#define TL_CRYPTO_H

#include "tl_base.h"

#define TL_HASH_LEN 32
#define TL_PUB_LEN  32
#define TL_SEC_LEN  64 /* libsodium layout: seed || public key */
#define TL_SEED_LEN 32
#define TL_SIG_LEN  64

/* ------------------------------------------------------------------ hashing */

void tl_sha256(uint8_t out[TL_HASH_LEN], const void *data, size_t len);

/* ---------------------------------------------------------------- Ed25519 */

struct tl_keypair {
	uint8_t pk[TL_PUB_LEN];
	uint8_t sk[TL_SEC_LEN];
};

int tl_key_generate(struct tl_keypair *kp) TL_WUR;
int tl_key_from_seed(struct tl_keypair *kp, const uint8_t seed[TL_SEED_LEN]) TL_WUR;
void tl_key_wipe(struct tl_keypair *kp);

void tl_sign(uint8_t sig[TL_SIG_LEN], const uint8_t *msg, size_t len, const uint8_t sk[TL_SEC_LEN]);
/* 0 when valid, TL_ESIG otherwise (libsodium 1.0.18 strict rules). */
int tl_verify(const uint8_t sig[TL_SIG_LEN], const uint8_t *msg, size_t len,
              const uint8_t pk[TL_PUB_LEN]) TL_WUR;

/* ------------------------------------------------- streaming signer */

/*
 * A signer for long runs of signatures by one key (bulk appends). Ed25519's
 * cost is the nonce commitment R = r*B; this signer computes (r, R) pairs
 * ahead of time on `workers` threads, so that signing a message on the
 * caller's thread costs one SHA-512 over R || A || M and a scalar
 * multiply-add. The signatures are standard Ed25519 (any verifier accepts
 * them) but hedged rather than deterministic: r = SHA-512(prefix || 32
 * random bytes || counter) mod L, where prefix is the secret half of the
 * expanded key, so r stays secret even if the system RNG were predictable.
 * When the pool is empty the caller computes a pair itself: never waits.
 * All secret state lives in sodium_malloc memory and is wiped by free.
 */
struct tl_signer;

int tl_signer_new(struct tl_signer **out, const struct tl_keypair *kp, unsigned workers) TL_WUR;
/* Signs the concatenation m1 || m2 (context and message, no copy). */
void tl_signer_sign(struct tl_signer *s, uint8_t sig[TL_SIG_LEN], const uint8_t *m1, size_t l1,
                    const uint8_t *m2, size_t l2);
void tl_signer_free(struct tl_signer *s);

/* ---------------------------------------------------------- key files */

/*
 * Key files hold a seed sealed with XSalsa20-Poly1305 under a key derived by
 * Argon2id from a passphrase. Format in docs/storage.md. The public key and a
 * label are stored in clear so that listing needs no passphrase.
 *
 * ops/mem: Argon2id limits; 0 means libsodium's INTERACTIVE defaults.
 * The file is written atomically (temp file, fsync, rename), mode 0600.
 */
int tl_keyfile_write(const char *path, const struct tl_keypair *kp, const char *label,
                     const char *pass, size_t passlen, unsigned long long ops, size_t mem) TL_WUR;
/* TL_EPASS: wrong passphrase or sealed data damaged; TL_EFORMAT: not a key
 * file or damaged header; TL_EIO: cannot read (errno set). */
int tl_keyfile_read(const char *path, const char *pass, size_t passlen,
                    struct tl_keypair *kp) TL_WUR;
/* Reads only the clear public key (and label, if label != NULL). */
int tl_keyfile_read_public(const char *path, uint8_t pk[TL_PUB_LEN], char *label,
                           size_t labelcap) TL_WUR;

/*
 * Passphrase from $TALLY_PASSPHRASE if set, else the first line of the file
 * named by $TALLY_PASSPHRASE_FILE, else from the terminal (echo off)
 * with prompt; when confirm is set the terminal asks twice. buf is wiped by
 * the caller with sodium_memzero. Returns length in *len.
 */
int tl_passphrase_get(char *buf, size_t cap, size_t *len, const char *prompt, int confirm) TL_WUR;

/* ------------------------------------------------------ RFC 6962 Merkle */

#define TL_MERKLE_MAX_PROOF 128 /* >= 2 * 64: any proof for 64-bit sizes */

void tl_merkle_leaf_hash(uint8_t out[TL_HASH_LEN], const uint8_t *data, size_t len);
void tl_merkle_node_hash(uint8_t out[TL_HASH_LEN], const uint8_t left[TL_HASH_LEN],
                         const uint8_t right[TL_HASH_LEN]);
/* Root of the empty tree: SHA-256 of the empty string. */
void tl_merkle_empty_root(uint8_t out[TL_HASH_LEN]);

/*
 * A source of complete-subtree hashes: get(ctx, level, index, out) stores the
 * hash of the perfect subtree over leaves [index << level, (index + 1) << level).
 * level 0 is a leaf hash. Proof generation asks only for subtrees inside the
 * tree size it was given. Returns 0 or a TL_E code, which is passed through.
 */
struct tl_merkle_src {
	int (*get)(void *ctx, unsigned level, uint64_t index, uint8_t out[TL_HASH_LEN]);
	void *ctx;
};

int tl_merkle_root(const struct tl_merkle_src *src, uint64_t size,
                   uint8_t root[TL_HASH_LEN]) TL_WUR;
/* Hash of the leaf range [lo, hi) as RFC 6962 MTH(D[lo:hi]) (hi > lo). */
int tl_merkle_range_hash(const struct tl_merkle_src *src, uint64_t lo, uint64_t hi,
                         uint8_t out[TL_HASH_LEN]) TL_WUR;
/* RFC 6962 PATH(index, D[0:size]); *n hashes written, leaf sibling first. */
int tl_merkle_inclusion_proof(const struct tl_merkle_src *src, uint64_t index, uint64_t size,
                              uint8_t (*proof)[TL_HASH_LEN], size_t cap, size_t *n) TL_WUR;
/* RFC 6962 PROOF(old, D[0:new]); 0 < old <= new. */
int tl_merkle_consistency_proof(const struct tl_merkle_src *src, uint64_t old_size,
                                uint64_t new_size, uint8_t (*proof)[TL_HASH_LEN], size_t cap,
                                size_t *n) TL_WUR;

/* Verification: 0 when valid, TL_EPROOF when not, TL_EINVAL/TL_ERANGE for
 * impossible parameters. Never reads past n hashes. */
int tl_merkle_verify_inclusion(const uint8_t leaf[TL_HASH_LEN], uint64_t index, uint64_t size,
                               const uint8_t (*proof)[TL_HASH_LEN], size_t n,
                               const uint8_t root[TL_HASH_LEN]) TL_WUR;
int tl_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
                                 const uint8_t old_root[TL_HASH_LEN],
                                 const uint8_t new_root[TL_HASH_LEN],
                                 const uint8_t (*proof)[TL_HASH_LEN], size_t n) TL_WUR;

/*
 * Compact range accumulator (the tree's right frontier): push leaves in order,
 * read the root at any size in O(log n). push reports the perfect subtrees the
 * leaf completed: completed[k] is the hash at level k+1 ending at this leaf,
 * *ncompleted = number of trailing one bits of the old size.
 */
struct tl_merkle_acc {
	uint64_t size;
	uint8_t frontier[64][TL_HASH_LEN]; /* frontier[l] valid when bit l of size set */
};

void tl_merkle_acc_init(struct tl_merkle_acc *acc);
void tl_merkle_acc_push(struct tl_merkle_acc *acc, const uint8_t leaf[TL_HASH_LEN],
                        uint8_t (*completed)[TL_HASH_LEN], unsigned *ncompleted);
void tl_merkle_acc_root(const struct tl_merkle_acc *acc, uint8_t root[TL_HASH_LEN]);
/* Rebuild the frontier of a tree of size from a subtree source. */
int tl_merkle_acc_load(struct tl_merkle_acc *acc, const struct tl_merkle_src *src,
                       uint64_t size) TL_WUR;

/*
 * In-memory source over an array of leaf hashes (tests, small verifiers).
 * Keeps every level, so any subtree costs O(1). Caller owns leaves.
 */
struct tl_merkle_mem {
	uint8_t (*levels[65])[TL_HASH_LEN]; /* levels[l][i]; l = 0 are leaves */
	uint64_t counts[65];
};
int tl_merkle_mem_build(struct tl_merkle_mem *m, const uint8_t (*leaves)[TL_HASH_LEN],
                        uint64_t n) TL_WUR;
void tl_merkle_mem_release(struct tl_merkle_mem *m);
struct tl_merkle_src tl_merkle_mem_src(struct tl_merkle_mem *m);

/* ------------------------------------------------------ peer sessions */

/*
 * Authenticated key exchange and encrypted framing for peer connections,
 * written as step functions that do no I/O: bytes in, bytes out. The event
 * loop, the tests and the fuzzer drive the same code. Protocol and security
 * argument: docs/protocol.md, "Peer sessions".
 *
 * Handshake (initiator I, responder R; e = ephemeral X25519, s = Ed25519 book
 * key; H = SHA-256 over the transcript so far):
 *   1. I -> R: magic "TLY1" || e_I
 *   2. R -> I: e_R || AEAD_k1(s_R.pk || Sig_R("tally/hs/v1/R" || H1))
 *   3. I -> R: AEAD_k2(s_I.pk || Sig_I("tally/hs/v1/I" || H2))
 * where the keys derive from X25519(e_I, e_R) and the transcript, and the
 * final per-direction keys from the whole transcript (forward secrecy: the
 * ephemerals are wiped once the keys exist).
 */

#define TL_FRAME_MAX      (8u << 20) /* plaintext bytes in one frame */
#define TL_FRAME_OVERHEAD (4 + 16)   /* length prefix + AEAD tag */

enum tl_hs_role { TL_HS_INITIATOR, TL_HS_RESPONDER };

struct tl_hs; /* opaque; allocate with tl_hs_new */

/* expected_peer: for an initiator, the key it means to reach (the handshake
 * fails with TL_EKEY if another key answers); NULL to accept any (then the
 * caller checks tl_hs_peer). Responders learn the peer at step 3. */
int tl_hs_new(struct tl_hs **out, enum tl_hs_role role, const struct tl_keypair *me,
              const uint8_t expected_peer[TL_PUB_LEN]) TL_WUR;
void tl_hs_free(struct tl_hs *hs); /* wipes */
/* Bytes to send first (initiator: message 1); appended to out. */
int tl_hs_start(struct tl_hs *hs, struct tl_buf *out) TL_WUR;
/*
 * Feeds received bytes. *used receives how many were consumed (the rest
 * belongs to later steps or to the first frames). Messages to send are
 * appended to out. Returns 0 while more is needed or when done (check
 * tl_hs_done); TL_EFORMAT / TL_ESIG / TL_EKEY / TL_EPROOF on any failure,
 * after which the connection must be dropped.
 */
int tl_hs_step(struct tl_hs *hs, const uint8_t *in, size_t len, size_t *used,
               struct tl_buf *out) TL_WUR;
int tl_hs_done(const struct tl_hs *hs);
const uint8_t *tl_hs_peer(const struct tl_hs *hs); /* valid once done */

/* An established session: per-direction keys and counters. */
struct tl_session {
	uint8_t tx_key[32], rx_key[32];
	uint64_t tx_ctr, rx_ctr;
	uint8_t peer[TL_PUB_LEN];
};

/* Moves the keys out of a finished handshake (then free the handshake). */
int tl_hs_session(struct tl_hs *hs, struct tl_session *out) TL_WUR;
void tl_session_wipe(struct tl_session *s);
/* Appends one frame: 4-byte big-endian ciphertext length, then the AEAD
 * (XChaCha20-Poly1305) of pt with nonce = tx counter, AD = the length. */
int tl_session_seal(struct tl_session *s, const uint8_t *pt, size_t len, struct tl_buf *out) TL_WUR;
/*
 * Opens the next frame from in: 0 with *used = 0 if incomplete; 0 with the
 * plaintext appended to pt and *used = frame size; TL_ETOOBIG if the length
 * exceeds TL_FRAME_MAX (before reading more); TL_ESIG if authentication
 * fails (tampering, replay, reordering — the counter is the nonce).
 */
int tl_session_open(struct tl_session *s, const uint8_t *in, size_t len, size_t *used,
                    struct tl_buf *pt) TL_WUR;

/* ---------------------------------------------------- C2SP signed notes */

#define TL_NOTE_MAX      (1u << 20) /* whole note, bytes */
#define TL_NOTE_MAX_SIGS 64
#define TL_NAME_MAX      255 /* key name, bytes */
#define TL_NOTE_SIG_MAX  128 /* decoded signature blob incl. key id */

#define TL_SIGTYPE_ED25519 0x01
#define TL_SIGTYPE_COSIG   0x04

struct tl_vkey {
	char name[TL_NAME_MAX + 1];
	uint8_t id[4];
	uint8_t type;
	uint8_t pk[TL_PUB_LEN];
};

/* key id = SHA-256(name || 0x0A || type || pk)[0:4] */
void tl_key_id(uint8_t id[4], const char *name, uint8_t type, const uint8_t pk[TL_PUB_LEN]);
/* Accepts "name+hexid+base64(type||pk)" for types 0x01 and 0x04; checks the id. */
int tl_vkey_parse(struct tl_vkey *vk, const char *s, size_t len) TL_WUR;
int tl_vkey_from_pub(struct tl_vkey *vk, const char *name, uint8_t type,
                     const uint8_t pk[TL_PUB_LEN]) TL_WUR;
int tl_vkey_format(const struct tl_vkey *vk, struct tl_buf *out) TL_WUR;

struct tl_note_sig {
	char name[TL_NAME_MAX + 1];
	uint8_t id[4];
	uint8_t blob[TL_NOTE_SIG_MAX]; /* after the key id */
	size_t bloblen; /* 0: longer than TL_NOTE_SIG_MAX, by a key Tally cannot use (ignored) */
	const char *line; /* points into tl_note.raw: the whole "— ..." line */
	size_t linelen;   /* without the newline */
};

struct tl_note {
	char *raw;       /* owned copy of the input */
	size_t text_len; /* the signed text: raw[0 .. text_len), ends in '\n' */
	struct tl_note_sig *sigs;
	size_t nsigs;
};

/* Parses per C2SP signed-note: text, blank line, one or more signature lines.
 * Lines with unparseable signatures are an error (TL_EFORMAT). */
int tl_note_parse(struct tl_note *n, const char *buf, size_t len) TL_WUR;
void tl_note_release(struct tl_note *n);

/* Appends "— name base64(id||sig)\n" for an Ed25519 (type 0x01) key. text
 * must end in '\n'. out receives text + "\n" + the signature line. */
int tl_note_sign(struct tl_buf *out, const char *text, size_t len, const char *name,
                 const struct tl_keypair *kp) TL_WUR;

/* 0: a type-0x01 signature by vk verifies; TL_ENOTFOUND: no signature line
 * with vk's name and id; TL_ESIG: such a line exists and does not verify. */
int tl_note_verify(const struct tl_note *n, const struct tl_vkey *vk) TL_WUR;

/* Cosignature line for checkpoint text (C2SP tlog-cosignature v1.0.1):
 * signs "cosignature/v1\ntime <t>\n" || text; appends the "— name ..." line
 * (with trailing newline) to out. */
int tl_cosig_sign(struct tl_buf *out, const char *text, size_t len, uint64_t time, const char *name,
                  const struct tl_keypair *kp) TL_WUR;
/* Like tl_note_verify for type 0x04; *time receives the timestamp. */
int tl_cosig_verify(const struct tl_note *n, const struct tl_vkey *vk, uint64_t *time) TL_WUR;

/* ---------------------------------------------------------- checkpoints */

#define TL_ORIGIN_TEXT_MAX 255

struct tl_checkpoint {
	char origin[TL_ORIGIN_TEXT_MAX + 1];
	uint64_t size;
	uint8_t root[TL_HASH_LEN];
	size_t nextensions; /* extension lines present (Tally writes none) */
};

/* Parses the checkpoint body (the signed text of a note). */
int tl_checkpoint_parse(struct tl_checkpoint *c, const char *text, size_t len) TL_WUR;
/* Writes "origin\nsize\nbase64(root)\n". */
int tl_checkpoint_format(const struct tl_checkpoint *c, struct tl_buf *out) TL_WUR;

/* ---------------------------------------------------------- tlog-proof */

struct tl_tlog_proof {
	uint8_t *extra; /* owned, may be NULL */
	size_t extra_len;
	uint64_t index;
	uint8_t proof[TL_MERKLE_MAX_PROOF][TL_HASH_LEN];
	size_t nproof;
	struct tl_note note; /* the checkpoint with its signatures */
	struct tl_checkpoint cp;
};

int tl_tlog_proof_parse(struct tl_tlog_proof *p, const char *buf, size_t len) TL_WUR;
void tl_tlog_proof_release(struct tl_tlog_proof *p);
/* note_text: the full signed checkpoint note (text, blank line, signatures). */
int tl_tlog_proof_format(struct tl_buf *out, const uint8_t *extra, size_t extra_len, uint64_t index,
                         const uint8_t (*proof)[TL_HASH_LEN], size_t n, const char *note_text,
                         size_t note_len) TL_WUR;

#endif
