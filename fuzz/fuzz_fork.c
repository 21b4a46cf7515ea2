/*
 * fuzz_fork.c — libFuzzer target for fork proof files (tally-fork/v1,
 * docs/protocol.md) and their verifier tl_fork_verify (node/wclient.h).
 *
 * The input is a proof file. The harness decodes it the way `tally forks
 * verify` does (cli/cmd_forks.c: format, type, origin, a vkey that must be
 * the origin's key, seq or size, a and b, root and proof) and hands the
 * fields to tl_fork_verify, the code under test. An input starting with
 * 0xff is instead the raw fields of a peer's `fork` message (type, at, a,
 * b, extra: see decode_bin), as daemon.c passes them for the feed's origin.
 *
 * A fuzzer cannot forge Ed25519 signatures. The harness signs, at start-up
 * and deterministically, a small set of objects with one feed key: records
 * (two different ones for seq 2), checkpoint notes (two roots for size 4),
 * and a larger checkpoint whose tree disagrees with one of them. Properties
 * besides "no crash":
 *   - an accepted proof names that feed, and a and b are two DISTINCT
 *     signed objects from that set that verify on their own (record
 *     signature, note signature), for the right seq or size; checkpoints
 *     have different roots; for consistency the root differs from a's and
 *     the proof checks independently (tl_merkle_verify_consistency);
 *   - swapping a and b (records, checkpoints) does not change the verdict;
 *   - the verdict is deterministic and a refusal always gives a reason.
 *
 * Seeds: TALLY_FUZZ_FORK_SEEDS=DIR ./fuzz_fork writes the three valid
 * proofs (records, checkpoints, consistency), as files and as raw fields,
 * to DIR, checks that each
 * verifies and that every single-byte change of each file (all 255 other
 * values at every position) is refused or decodes to the same proof, and
 * exits (status 0 when all holds).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "node/wclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define NKNOWN 16
#define LEAVES 8

static struct tl_keypair feed_kp;
static char origin[TL_ORIGIN_LEN + 1];
static char vkey_text[TL_NAME_MAX + 128];

/* What the feed key signed: record entries and checkpoint texts. */
static struct tl_buf known[NKNOWN];
static size_t nknown;

/* The three valid proof files, and the same proofs as raw fields. */
static char *seed_file[3];
static struct tl_buf seed_bin[3];

/* A proof file's content after decoding. */
struct proof {
	int type;
	uint64_t at;
	struct tl_buf a, b, x;
};

static void proof_init(struct proof *p)
{
	p->type = 0;
	p->at = 0;
	tl_buf_init(&p->a, TL_NOTE_MAX);
	tl_buf_init(&p->b, TL_NOTE_MAX);
	tl_buf_init(&p->x, TL_HASH_LEN * (TL_MERKLE_MAX_PROOF + 1));
}

static void proof_release(struct proof *p)
{
	tl_buf_release(&p->a);
	tl_buf_release(&p->b);
	tl_buf_release(&p->x);
}

static int same_buf(const struct tl_buf *x, const struct tl_buf *y)
{
	return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
}

static int same_proof(const struct proof *p, const struct proof *q)
{
	return p->type == q->type && p->at == q->at && same_buf(&p->a, &q->a) &&
	       same_buf(&p->b, &q->b) && same_buf(&p->x, &q->x);
}

/* ------------------------------------------------------------ decoding */

static int decode_object(int type, json_t *v, struct tl_buf *out)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v), n = 0;

	if (!s)
		return -1;
	if (type != TL_FORK_RECORDS)
		return tl_buf_add(out, s, len);
	if (tl_buf_reserve(out, len) != 0 || tl_b64_decode(out->data, out->cap, &n, s, len) != 0)
		return -1;
	out->len = n;
	return 0;
}

static int decode_hash(json_t *v, struct tl_buf *out)
{
	uint8_t h[TL_HASH_LEN + 2];
	size_t n = 0;
	const char *s = json_string_value(v);

	if (!s || tl_b64_decode(h, sizeof h, &n, s, json_string_length(v)) != 0 || n != TL_HASH_LEN)
		return -1;
	return tl_buf_add(out, h, n);
}

/* The checks of `tally forks verify` before tl_fork_verify; *origin_out
 * points into *j. 0 when the fields reach the verifier. */
static int decode(const uint8_t *data, size_t size, json_t **j, const char **origin_out,
                  struct proof *p)
{
	json_error_t je;
	struct tl_vkey vk;
	struct tl_origin og;
	const char *fmt, *ts, *vks, *org;
	json_t *atj, *pr, *h;
	size_t i;

	*j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
	fmt = json_string_value(json_object_get(*j, "format"));
	ts = json_string_value(json_object_get(*j, "type"));
	vks = json_string_value(json_object_get(*j, "vkey"));
	org = json_string_value(json_object_get(*j, "origin"));
	if (ts)
		p->type = strcmp(ts, "records") == 0       ? TL_FORK_RECORDS
		          : strcmp(ts, "checkpoints") == 0 ? TL_FORK_CHECKPOINTS
		          : strcmp(ts, "consistency") == 0 ? TL_FORK_CONSISTENCY
		                                           : 0;
	atj = json_object_get(*j, p->type == TL_FORK_RECORDS ? "seq" : "size");
	if (!*j || !fmt || strcmp(fmt, "tally-fork/v1") != 0 || !org || !p->type || !vks ||
	    !json_is_integer(atj) || json_integer_value(atj) < 0)
		return -1;
	p->at = (uint64_t)json_integer_value(atj);
	if (tl_vkey_parse(&vk, vks, strlen(vks)) != 0 || vk.type != TL_SIGTYPE_ED25519 ||
	    strcmp(vk.name, org) != 0 || strlen(org) != TL_ORIGIN_LEN ||
	    tl_origin_parse(&og, org, TL_ORIGIN_LEN) != 0 ||
	    sodium_memcmp(vk.pk, og.pk, TL_PUB_LEN) != 0)
		return -1;
	if (decode_object(p->type, json_object_get(*j, "a"), &p->a) != 0 ||
	    decode_object(p->type, json_object_get(*j, "b"), &p->b) != 0)
		return -1;
	if (p->type == TL_FORK_CONSISTENCY) {
		pr = json_object_get(*j, "proof");
		if (decode_hash(json_object_get(*j, "root"), &p->x) != 0 || !json_is_array(pr) ||
		    json_array_size(pr) > TL_MERKLE_MAX_PROOF)
			return -1;
		json_array_foreach(pr, i, h)
		{
			if (decode_hash(h, &p->x) != 0)
				return -1;
		}
	}
	*origin_out = org;
	return 0;
}

/* ---------------------------------------------- independent re-checks */

static int is_known(const void *p, size_t len)
{
	for (size_t i = 0; i < nknown; i++)
		if (known[i].len == len && memcmp(known[i].data, p, len) == 0)
			return (int)i;
	return -1;
}

/* The record's signed entry, if it is one the feed key signed and its
 * signature verifies: the index in known[], else -1. */
static int signed_record(const struct tl_buf *r, uint64_t seq)
{
	struct tl_entry e;

	if (tl_record_decode(&e, r->data, r->len, NULL) != 0 || e.seq != seq ||
	    memcmp(e.origin.pk, feed_kp.pk, TL_PUB_LEN) != 0 || tl_record_verify_sig(&e) != 0)
		return -1;
	return is_known(e.entry, e.entry_len);
}

static int signed_note(const struct tl_buf *t, uint64_t *size, uint8_t root[TL_HASH_LEN])
{
	struct tl_note n;
	struct tl_checkpoint cp;
	struct tl_vkey vk;
	int k = -1;

	if (tl_note_parse(&n, (const char *)t->data, t->len) != 0)
		return -1;
	if (tl_checkpoint_parse(&cp, n.raw, n.text_len) == 0 && strcmp(cp.origin, origin) == 0 &&
	    tl_vkey_from_pub(&vk, origin, TL_SIGTYPE_ED25519, feed_kp.pk) == 0 &&
	    tl_note_verify(&n, &vk) == 0) {
		k = is_known(n.raw, n.text_len);
		*size = cp.size;
		memcpy(root, cp.root, TL_HASH_LEN);
	}
	tl_note_release(&n);
	return k;
}

/* An accepted proof must stand on its own. */
static void check_accepted(const char *org, const struct proof *p)
{
	uint8_t ra[TL_HASH_LEN], rb[TL_HASH_LEN];
	uint64_t sa = 0, sb = 0;
	int ka, kb;

	if (strcmp(org, origin) != 0)
		abort(); /* a proof about a key nobody here signed with */
	if (p->type == TL_FORK_RECORDS) {
		ka = signed_record(&p->a, p->at);
		kb = signed_record(&p->b, p->at);
		if (ka < 0 || kb < 0 || ka == kb)
			abort();
		return;
	}
	ka = signed_note(&p->a, &sa, ra);
	kb = signed_note(&p->b, &sb, rb);
	if (ka < 0 || kb < 0 || ka == kb || sa != p->at)
		abort();
	if (p->type == TL_FORK_CHECKPOINTS) {
		if (sb != p->at || memcmp(ra, rb, TL_HASH_LEN) == 0)
			abort();
		return;
	}
	if (p->type != TL_FORK_CONSISTENCY || sb <= sa || p->x.len < TL_HASH_LEN ||
	    p->x.len % TL_HASH_LEN != 0 || memcmp(p->x.data, ra, TL_HASH_LEN) == 0 ||
	    tl_merkle_verify_consistency(sa, sb, p->x.data, rb,
	                                 (const uint8_t(*)[TL_HASH_LEN])(p->x.data + TL_HASH_LEN),
	                                 p->x.len / TL_HASH_LEN - 1) != 0)
		abort();
}

static int verify(const char *org, const struct proof *p, int swap, char *why, size_t cap)
{
	const struct tl_buf *a = swap ? &p->b : &p->a, *b = swap ? &p->a : &p->b;

	return tl_fork_verify(org, p->type, p->at, a->data, a->len, b->data, b->len, p->x.data,
	                      p->x.len, why, cap);
}

/* A fork message's fields as raw bytes (a peer's `fork`, daemon.c): 0xff,
 * type, 8-byte at, then a, b and extra, each a 2-byte length and bytes.
 * The origin is the feed's (the node knows whose feed it is). */
static int decode_bin(const uint8_t *d, size_t n, const char **origin_out, struct proof *p)
{
	struct tl_buf *f[3] = {&p->a, &p->b, &p->x};
	size_t pos = 10;

	if (n < pos)
		return -1;
	p->type = d[1];
	for (int i = 0; i < 8; i++)
		p->at = p->at << 8 | d[2 + i];
	for (int k = 0; k < 3; k++) {
		size_t len = pos + 2 <= n ? (size_t)d[pos] << 8 | d[pos + 1] : 0;
		pos = pos + 2 <= n ? pos + 2 : n;
		if (len > n - pos)
			len = n - pos;
		if (tl_buf_add(f[k], d + pos, len) != 0)
			return -1;
		pos += len;
	}
	*origin_out = origin;
	return 0;
}

/* 1 accepted, 0 refused; *p the decoded fields (valid when decoded). */
static int run_one(const uint8_t *data, size_t size, struct proof *p)
{
	json_t *j = NULL;
	const char *org = NULL;
	char why[300], why2[300];
	int rc, rc2, ok = 0;

	if (size && data[0] == 0xff ? decode_bin(data, size, &org, p) == 0
	                            : decode(data, size, &j, &org, p) == 0) {
		why[0] = why2[0] = '\0';
		rc = verify(org, p, 0, why, sizeof why);
		rc2 = verify(org, p, 0, why2, sizeof why2);
		if (rc != rc2 || strcmp(why, why2) != 0 || why[0] == '\0' ||
		    memchr(why, '\0', sizeof why) == NULL)
			abort();
		if (rc > 0)
			abort(); /* 0 or a negative TL_E code */
		if (p->type != TL_FORK_CONSISTENCY &&
		    (verify(org, p, 1, why2, sizeof why2) == 0) != (rc == 0))
			abort(); /* the order of a and b decided */
		if (rc == 0) {
			check_accepted(org, p);
			ok = 1;
		}
	}
	json_decref(j);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proof p;

	if (size > (4u << 20))
		return 0;
	proof_init(&p);
	(void)run_one(data, size, &p);
	proof_release(&p);
	return 0;
}

/* ----------------------------------------------------------- the seeds */

static void add_known(const void *p, size_t len)
{
	if (nknown == NKNOWN)
		abort();
	tl_buf_init(&known[nknown], TL_NOTE_MAX);
	if (tl_buf_add(&known[nknown], p, len) != 0)
		abort();
	nknown++;
}

static void make_record(struct tl_buf *rec, uint64_t seq, const uint8_t prev[TL_HASH_LEN],
                        const char *note)
{
	struct tl_buf mp;
	char err[128];
	json_t *body = json_pack("{s:s,s:I}", "note", note, "seq", (json_int_t)seq);

	tl_buf_init(&mp, TL_ENTRY_MAX);
	tl_buf_init(rec, TL_RECORD_MAX);
	if (!body || tl_json_to_mp(body, &mp, err, sizeof err) != 0 ||
	    tl_entry_encode(rec, origin, seq, prev, 1790000000000ull + seq * 1000, "memo", 4,
	                    mp.data, mp.len) != 0)
		abort();
	add_known(rec->data, rec->len);
	if (tl_record_sign(rec, feed_kp.sk) != 0)
		abort();
	tl_buf_release(&mp);
	json_decref(body);
}

static void make_note(struct tl_buf *note, uint64_t size, const uint8_t root[TL_HASH_LEN])
{
	struct tl_checkpoint cp;
	struct tl_buf text;

	memset(&cp, 0, sizeof cp);
	snprintf(cp.origin, sizeof cp.origin, "%s", origin);
	cp.size = size;
	memcpy(cp.root, root, TL_HASH_LEN);
	tl_buf_init(&text, 4096);
	tl_buf_init(note, 4096);
	if (tl_checkpoint_format(&cp, &text) != 0 ||
	    tl_note_sign(note, (const char *)text.data, text.len, origin, &feed_kp) != 0)
		abort();
	add_known(text.data, text.len);
	tl_buf_release(&text);
}

static json_t *b64(const uint8_t *p, size_t len)
{
	char *s = malloc(tl_b64_encoded_len(len) + 1);
	json_t *j;

	if (!s)
		abort();
	tl_b64_encode(s, p, len);
	j = json_string(s);
	free(s);
	return j;
}

static char *file_of(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));
	char *t;

	json_decref(j);
	if (!s || !(t = realloc(s, strlen(s) + 2)))
		abort();
	strcat(t, "\n");
	return t;
}

static json_t *head(const char *type, const char *atname, uint64_t at)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:I}", "format", "tally-fork/v1", "origin", origin,
	                 "vkey", vkey_text, "type", type, atname, (json_int_t)at);
}

static void tree_root(const uint8_t (*leaves)[TL_HASH_LEN], uint64_t n, uint64_t size,
                      uint8_t root[TL_HASH_LEN], uint64_t old, uint8_t (*proof)[TL_HASH_LEN],
                      size_t *np)
{
	struct tl_merkle_mem m;
	struct tl_merkle_src src;

	if (tl_merkle_mem_build(&m, leaves, n) != 0)
		abort();
	src = tl_merkle_mem_src(&m);
	if (tl_merkle_root(&src, size, root) != 0)
		abort();
	if (proof && tl_merkle_consistency_proof(&src, old, size, proof, TL_MERKLE_MAX_PROOF, np))
		abort();
	tl_merkle_mem_release(&m);
}

static void put16(struct tl_buf *b, const void *p, size_t len)
{
	uint8_t h[2] = {(uint8_t)(len >> 8), (uint8_t)len};

	if (len > 0xffff || tl_buf_add(b, h, 2) != 0 || tl_buf_add(b, p, len) != 0)
		abort();
}

static void bin_seed(struct tl_buf *out, int type, uint64_t at, const struct tl_buf *a,
                     const struct tl_buf *b, const uint8_t *x, size_t xlen)
{
	uint8_t h[10] = {0xff, (uint8_t)type};

	for (int i = 0; i < 8; i++)
		h[2 + i] = (uint8_t)(at >> (56 - 8 * i));
	tl_buf_init(out, 1u << 20);
	if (tl_buf_add(out, h, sizeof h) != 0)
		abort();
	put16(out, a->data, a->len);
	put16(out, b->data, b->len);
	put16(out, x, xlen);
}

static void make_seeds(void)
{
	uint8_t seed[TL_SEED_LEN], ch[TL_CHANNEL_LEN], prev[TL_HASH_LEN];
	uint8_t la[LEAVES][TL_HASH_LEN], lb[LEAVES][TL_HASH_LEN];
	uint8_t ra4[TL_HASH_LEN], rb4[TL_HASH_LEN], rb8[TL_HASH_LEN];
	uint8_t proof[TL_MERKLE_MAX_PROOF][TL_HASH_LEN];
	struct tl_buf r0, r1, r2a, r2b, na, nb, n8, vks;
	struct tl_vkey vk;
	size_t np = 0;
	json_t *j, *arr;

	memset(seed, 7, sizeof seed);
	if (tl_key_from_seed(&feed_kp, seed) != 0)
		abort();
	memset(ch, 0x42, sizeof ch);
	tl_origin_format(origin, feed_kp.pk, ch);
	tl_buf_init(&vks, 1024);
	if (tl_vkey_from_pub(&vk, origin, TL_SIGTYPE_ED25519, feed_kp.pk) != 0 ||
	    tl_vkey_format(&vk, &vks) != 0 || vks.len >= sizeof vkey_text)
		abort();
	memcpy(vkey_text, vks.data, vks.len);
	vkey_text[vks.len] = '\0';
	tl_buf_release(&vks);

	/* Records 0, 1, then two different records 2. */
	memset(prev, 0, sizeof prev);
	make_record(&r0, 0, prev, "zero");
	tl_record_leaf_hash(prev, r0.data, r0.len);
	make_record(&r1, 1, prev, "one");
	tl_record_leaf_hash(prev, r1.data, r1.len);
	make_record(&r2a, 2, prev, "two");
	make_record(&r2b, 2, prev, "two, again");

	/* Trees A and B differ in leaf 1. */
	for (int i = 0; i < LEAVES; i++) {
		char s[8];
		snprintf(s, sizeof s, "leaf%d", i);
		tl_merkle_leaf_hash(la[i], (const uint8_t *)s, strlen(s));
		memcpy(lb[i], la[i], TL_HASH_LEN);
	}
	tl_merkle_leaf_hash(lb[1], (const uint8_t *)"other", 5);
	tree_root((const uint8_t(*)[TL_HASH_LEN])la, LEAVES, 4, ra4, 0, NULL, NULL);
	tree_root((const uint8_t(*)[TL_HASH_LEN])lb, LEAVES, 4, rb4, 0, NULL, NULL);
	tree_root((const uint8_t(*)[TL_HASH_LEN])lb, LEAVES, 8, rb8, 4, proof, &np);
	make_note(&na, 4, ra4);
	make_note(&nb, 4, rb4);
	make_note(&n8, 8, rb8);

	j = head("records", "seq", 2);
	json_object_set_new(j, "a", b64(r2a.data, r2a.len));
	json_object_set_new(j, "b", b64(r2b.data, r2b.len));
	seed_file[0] = file_of(j);

	j = head("checkpoints", "size", 4);
	json_object_set_new(j, "a", json_stringn((const char *)na.data, na.len));
	json_object_set_new(j, "b", json_stringn((const char *)nb.data, nb.len));
	seed_file[1] = file_of(j);

	j = head("consistency", "size", 4);
	json_object_set_new(j, "a", json_stringn((const char *)na.data, na.len));
	json_object_set_new(j, "b", json_stringn((const char *)n8.data, n8.len));
	json_object_set_new(j, "root", b64(rb4, TL_HASH_LEN));
	arr = json_array();
	for (size_t i = 0; i < np; i++)
		json_array_append_new(arr, b64(proof[i], TL_HASH_LEN));
	json_object_set_new(j, "proof", arr);
	seed_file[2] = file_of(j);

	bin_seed(&seed_bin[0], TL_FORK_RECORDS, 2, &r2a, &r2b, NULL, 0);
	bin_seed(&seed_bin[1], TL_FORK_CHECKPOINTS, 4, &na, &nb, NULL, 0);
	{
		uint8_t x[TL_HASH_LEN * (1 + TL_MERKLE_MAX_PROOF)];
		memcpy(x, rb4, TL_HASH_LEN);
		memcpy(x + TL_HASH_LEN, proof, np * TL_HASH_LEN);
		bin_seed(&seed_bin[2], TL_FORK_CONSISTENCY, 4, &na, &n8, x, (np + 1) * TL_HASH_LEN);
	}

	tl_buf_release(&r0);
	tl_buf_release(&r1);
	tl_buf_release(&r2a);
	tl_buf_release(&r2b);
	tl_buf_release(&na);
	tl_buf_release(&nb);
	tl_buf_release(&n8);
}

/* Every single-byte change of a valid proof is refused or means the same. */
static unsigned long sweep(const char *file, size_t len)
{
	uint8_t *m = malloc(len);
	struct proof orig, p;
	unsigned long same = 0;

	if (!m)
		abort();
	proof_init(&orig);
	if (!run_one((const uint8_t *)file, len, &orig))
		abort(); /* the seed itself must verify */
	memcpy(m, file, len);
	for (size_t i = 0; i < len; i++) {
		for (unsigned v = 0; v < 256; v++) {
			if (v == (uint8_t)file[i])
				continue;
			m[i] = (uint8_t)v;
			proof_init(&p);
			if (run_one(m, len, &p)) {
				if (!same_proof(&p, &orig)) {
					fprintf(stderr,
					        "byte %zu set to 0x%02x: a different proof "
					        "verifies\n",
					        i, v);
					abort();
				}
				same++;
			}
			proof_release(&p);
		}
		m[i] = (uint8_t)file[i];
	}
	proof_release(&orig);
	free(m);
	return same;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const names[6] = {"records.json", "checkpoints.json", "consistency.json",
	                                     "records.bin",  "checkpoints.bin",  "consistency.bin"};
	const char *dir = getenv("TALLY_FUZZ_FORK_SEEDS");

	(void)argc;
	(void)argv;
	if (tl_init() != 0)
		abort();
	make_seeds();
	if (!dir)
		return 0;
	for (int k = 0; k < 6; k++) {
		const char *bytes = k < 3 ? seed_file[k] : (const char *)seed_bin[k - 3].data;
		size_t len = k < 3 ? strlen(seed_file[k]) : seed_bin[k - 3].len;
		char path[4200];
		FILE *f;
		unsigned long same;

		snprintf(path, sizeof path, "%s/%s", dir, names[k]);
		f = fopen(path, "wb");
		if (!f || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
			fprintf(stderr, "cannot write %s\n", path);
			exit(3);
		}
		same = sweep(bytes, len);
		fprintf(stderr,
		        "%s: %zu bytes, verifies; all %zu single-byte changes checked, %lu of them "
		        "still verify with the same content\n",
		        path, len, len * 255, same);
	}
	exit(0);
}
