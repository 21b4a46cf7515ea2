/*
 * test_wclient.c — the pure parts of the witness client and of fork
 * handling: tlog-witness request bodies and 409 sizes, cosignature
 * filtering against configured keys, the merge of signature lines into
 * stored checkpoint notes, halted feeds refusing appends, fork evidence
 * (records and checkpoints) in the store and its verification, and
 * `tally forks verify` on a checkpoint proof file.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/tl_daemon.h"
#include "node/tl_node.h"
#include "node/wclient.h"

struct fx {
	char *dir;
	struct tl_store *s;
	struct tl_keypair kp, peer, w1, w2;
	struct tl_vkey vbook, vw1, vw2;
	struct tl_feed f;
};

static void key(struct tl_keypair *kp, uint8_t fill)
{
	uint8_t seed[32];
	memset(seed, fill, sizeof seed);
	assert_int_equal(tl_key_from_seed(kp, seed), 0);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	char err[256];
	assert_int_equal(tl_init(), 0);
	x->dir = th_tmpdir("wclient");
	key(&x->kp, 7);
	key(&x->peer, 9);
	key(&x->w1, 11);
	key(&x->w2, 12);
	assert_int_equal(tl_store_open(&x->s, x->dir, 0, 0, err, sizeof err), 0);
	struct tl_book b = {.name = "acme"};
	memcpy(b.pk, x->kp.pk, 32);
	assert_int_equal(tl_store_book_add(x->s, &b), 0);
	tl_channel_id(x->f.o.channel, x->kp.pk, x->peer.pk, "default", 7);
	tl_origin_format(x->f.origin, x->kp.pk, x->f.o.channel);
	memcpy(x->f.peer, x->peer.pk, 32);
	strcpy(x->f.book, "acme");
	strcpy(x->f.label, "default");
	x->f.flags = TL_FEED_OWN;
	assert_int_equal(tl_store_feed_add(x->s, &x->f), 0);
	assert_int_equal(tl_vkey_from_pub(&x->vbook, x->f.origin, TL_SIGTYPE_ED25519, x->kp.pk), 0);
	assert_int_equal(tl_vkey_from_pub(&x->vw1, "w1", TL_SIGTYPE_COSIG, x->w1.pk), 0);
	assert_int_equal(tl_vkey_from_pub(&x->vw2, "w2", TL_SIGTYPE_COSIG, x->w2.pk), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	tl_store_close(x->s);
	th_rmtree(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

/* Checkpoint text of origin at size with a root made of fill bytes. */
static void cp_text(struct tl_buf *out, const char *origin, uint64_t size, uint8_t fill)
{
	struct tl_checkpoint cp;
	memset(&cp, 0, sizeof cp);
	snprintf(cp.origin, sizeof cp.origin, "%s", origin);
	cp.size = size;
	memset(cp.root, fill, sizeof cp.root);
	tl_buf_reset(out);
	assert_int_equal(tl_checkpoint_format(&cp, out), 0);
}

/* A signed checkpoint note by kp under origin. */
static void cp_note(struct tl_buf *note, const char *origin, uint64_t size, uint8_t fill,
                    const struct tl_keypair *kp)
{
	struct tl_buf t;
	tl_buf_init(&t, 4096);
	cp_text(&t, origin, size, fill);
	tl_buf_reset(note);
	assert_int_equal(tl_note_sign(note, (const char *)t.data, t.len, origin, kp), 0);
	tl_buf_release(&t);
}

/* note text + "\n" + one cosignature line by kp named name at time t. */
static void cosig_only(struct tl_buf *out, const struct tl_buf *note, uint64_t t, const char *name,
                       const struct tl_keypair *kp)
{
	struct tl_note n;
	assert_int_equal(tl_note_parse(&n, (const char *)note->data, note->len), 0);
	tl_buf_reset(out);
	assert_int_equal(tl_buf_add(out, n.raw, n.text_len), 0);
	assert_int_equal(tl_buf_addc(out, '\n'), 0);
	assert_int_equal(tl_cosig_sign(out, n.raw, n.text_len, t, name, kp), 0);
	tl_note_release(&n);
}

/* The signature lines of the stored note of x->f at size. */
static size_t stored_lines(struct fx *x, uint64_t size, struct tl_buf *out)
{
	struct tl_note n;
	assert_int_equal(tl_store_checkpoint_get(x->s, &x->f, size, out, NULL), 0);
	assert_int_equal(tl_note_parse(&n, (const char *)out->data, out->len), 0);
	size_t k = n.nsigs;
	tl_note_release(&n);
	return k;
}

static void test_request_body_and_409_size(void **state)
{
	(void)state;
	struct tl_buf b;
	uint8_t proof[2][32];
	uint64_t size = 0;
	const char note[] = "o\n1\nAAAA\n\n\xe2\x80\x94 o x\n";
	memset(proof[0], 0, 32);
	memset(proof[1], 0xff, 32);
	tl_buf_init(&b, 1 << 16);
	assert_int_equal(tl_wc_body(&b, 0, NULL, 0, note, strlen(note)), 0);
	assert_int_equal(b.len, strlen("old 0\n\n") + strlen(note));
	assert_memory_equal(b.data, "old 0\n\no\n1\n", 11);
	tl_buf_reset(&b);
	assert_int_equal(tl_wc_body(&b, 17, (const uint8_t(*)[32])proof, 2, note, strlen(note)), 0);
	const char *want = "old 17\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	                   "//////////////////////////////////////////8=\n\no\n";
	assert_memory_equal(b.data, want, strlen(want));
	/* A proof with old 0, or more than 63 lines, is refused. */
	tl_buf_reset(&b);
	assert_int_equal(tl_wc_body(&b, 0, (const uint8_t(*)[32])proof, 1, note, strlen(note)),
	                 TL_EINVAL);
	assert_int_equal(tl_wc_body(&b, 5, (const uint8_t(*)[32])proof, 64, note, strlen(note)),
	                 TL_EINVAL);
	tl_buf_release(&b);

	assert_int_equal(tl_wc_parse_size((const uint8_t *)"12\n", 3, &size), 0);
	assert_int_equal(size, 12);
	assert_int_equal(tl_wc_parse_size((const uint8_t *)"0\n", 2, &size), 0);
	assert_int_equal(size, 0);
	assert_int_equal(tl_wc_parse_size((const uint8_t *)"12", 2, &size), TL_EFORMAT);
	assert_int_equal(tl_wc_parse_size((const uint8_t *)"012\n", 4, &size), TL_EFORMAT);
	assert_int_equal(tl_wc_parse_size((const uint8_t *)"\n", 1, &size), TL_EFORMAT);
	assert_int_equal(tl_wc_parse_size((const uint8_t *)"1 2\n", 4, &size), TL_EFORMAT);
	assert_int_equal(tl_wc_parse_size((const uint8_t *)"18446744073709551616\n", 21, &size),
	                 TL_EFORMAT);
}

/* A witness's answer counts only with lines that verify under the key
 * configured for that witness; other keys' lines are ignored. */
static void test_accept_and_filter(void **state)
{
	struct fx *x = *state;
	struct tl_buf note, resp, tmp, out;
	size_t nc = 0, kept = 0, cos = 0;
	uint64_t t = 0;
	tl_buf_init(&note, TL_NOTE_MAX);
	tl_buf_init(&resp, TL_NOTE_MAX);
	tl_buf_init(&tmp, TL_NOTE_MAX);
	tl_buf_init(&out, TL_NOTE_MAX);
	cp_note(&note, x->f.origin, 5, 1, &x->kp);
	struct tl_note n;
	assert_int_equal(tl_note_parse(&n, (const char *)note.data, note.len), 0);
	assert_int_equal(tl_cosig_sign(&resp, n.raw, n.text_len, 1000, "w2", &x->w2), 0);
	assert_int_equal(tl_cosig_sign(&resp, n.raw, n.text_len, 1001, "w1", &x->w1), 0);

	assert_int_equal(tl_wc_accept((const char *)note.data, note.len, resp.data, resp.len,
	                              &x->vw1, &out, &nc, &t),
	                 0);
	assert_int_equal(nc, 1);
	assert_int_equal(t, 1001);
	assert_null(strstr((const char *)tl_buf_cstr(&out), "w2 "));
	assert_non_null(strstr((const char *)tl_buf_cstr(&out), "w1 "));
	/* Only w2 answered: nothing by w1. */
	tl_buf_reset(&tmp);
	assert_int_equal(tl_cosig_sign(&tmp, n.raw, n.text_len, 1000, "w2", &x->w2), 0);
	assert_int_equal(tl_wc_accept((const char *)note.data, note.len, tmp.data, tmp.len, &x->vw1,
	                              &out, &nc, &t),
	                 TL_ESIG);
	/* A w1 line signed by another key (a forged answer). */
	tl_buf_reset(&tmp);
	assert_int_equal(tl_cosig_sign(&tmp, n.raw, n.text_len, 1000, "w1", &x->w2), 0);
	assert_int_equal(tl_wc_accept((const char *)note.data, note.len, tmp.data, tmp.len, &x->vw1,
	                              &out, &nc, &t),
	                 TL_ESIG);
	/* Not signature lines at all. */
	assert_int_equal(tl_wc_accept((const char *)note.data, note.len, (const uint8_t *)"hello\n",
	                              6, &x->vw1, &out, &nc, &t),
	                 TL_EFORMAT);
	assert_int_equal(tl_wc_accept((const char *)note.data, note.len, resp.data, resp.len - 1,
	                              &x->vw1, &out, &nc, &t),
	                 TL_EFORMAT);

	/* A counterparty's note: the book line and known witnesses' lines stay. */
	tl_buf_reset(&tmp);
	assert_int_equal(tl_buf_add(&tmp, note.data, note.len), 0);
	assert_int_equal(tl_buf_add(&tmp, resp.data, resp.len), 0);
	struct tl_vkey keys[2] = {x->vbook, x->vw1};
	assert_int_equal(
	        tl_wc_filter((const char *)tmp.data, tmp.len, keys, 2, &out, &kept, &cos, &t), 0);
	assert_int_equal(kept, 2);
	assert_int_equal(cos, 1);
	assert_int_equal(t, 1001);
	keys[1] = x->vw2;
	assert_int_equal(
	        tl_wc_filter((const char *)tmp.data, tmp.len, keys, 2, &out, &kept, &cos, &t), 0);
	assert_int_equal(kept, 2);
	assert_int_equal(t, 1000);
	tl_note_release(&n);
	tl_buf_release(&note);
	tl_buf_release(&resp);
	tl_buf_release(&tmp);
	tl_buf_release(&out);
}

/* Merging keeps one copy of each line, per witness the earliest and the
 * latest cosignature, and refuses another root at the same size. */
static void test_checkpoint_merge(void **state)
{
	struct fx *x = *state;
	struct tl_buf note, add, got, other;
	size_t added = 99;
	tl_buf_init(&note, TL_NOTE_MAX);
	tl_buf_init(&add, TL_NOTE_MAX);
	tl_buf_init(&got, TL_NOTE_MAX);
	tl_buf_init(&other, TL_NOTE_MAX);
	cp_note(&note, x->f.origin, 3, 1, &x->kp);
	assert_int_equal(tl_store_checkpoint_merge(x->s, &x->f, 3, (const char *)note.data,
	                                           note.len, &added, NULL),
	                 0);
	assert_int_equal(added, 1);
	assert_int_equal(tl_store_checkpoint_merge(x->s, &x->f, 3, (const char *)note.data,
	                                           note.len, &added, NULL),
	                 0);
	assert_int_equal(added, 0);
	assert_int_equal(stored_lines(x, 3, &got), 1);

	static const struct {
		uint64_t t;
		size_t added, lines;
	} steps[] = {
	        {100, 1, 2}, /* first w1 */
	        {100, 0, 2}, /* the same line again */
	        {200, 1, 3}, /* later: kept as the latest */
	        {150, 0, 3}, /* inside the span: nothing new */
	        {50, 1, 3},  /* earlier: replaces the earliest */
	        {300, 1, 3}, /* later: replaces the latest */
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		cosig_only(&add, &note, steps[i].t, "w1", &x->w1);
		assert_int_equal(tl_store_checkpoint_merge(x->s, &x->f, 3, (const char *)add.data,
		                                           add.len, &added, NULL),
		                 0);
		assert_int_equal(added, steps[i].added);
		assert_int_equal(stored_lines(x, 3, &got), steps[i].lines);
	}
	/* The stored note verifies: book signature, w1's 50 and 300. */
	struct tl_note n;
	uint64_t t = 0;
	assert_int_equal(tl_note_parse(&n, (const char *)got.data, got.len), 0);
	assert_int_equal(tl_note_verify(&n, &x->vbook), 0);
	assert_int_equal(tl_cosig_verify(&n, &x->vw1, &t), 0);
	int saw50 = 0, saw300 = 0;
	for (size_t i = 0; i < n.nsigs; i++)
		if (n.sigs[i].bloblen == 72) {
			uint64_t ts = 0;
			for (int k = 0; k < 8; k++)
				ts = ts << 8 | n.sigs[i].blob[k];
			saw50 |= ts == 50;
			saw300 |= ts == 300;
		}
	assert_true(saw50 && saw300);
	tl_note_release(&n);
	cosig_only(&add, &note, 120, "w2", &x->w2);
	assert_int_equal(tl_store_checkpoint_merge(x->s, &x->f, 3, (const char *)add.data, add.len,
	                                           &added, NULL),
	                 0);
	assert_int_equal(stored_lines(x, 3, &got), 4);

	/* Another root at the same size: TL_EFORK and the stored note back. */
	cp_note(&other, x->f.origin, 3, 2, &x->kp);
	assert_int_equal(tl_store_checkpoint_merge(x->s, &x->f, 3, (const char *)other.data,
	                                           other.len, &added, &add),
	                 TL_EFORK);
	assert_int_equal(add.len, got.len);
	assert_memory_equal(add.data, got.data, got.len);
	assert_int_equal(stored_lines(x, 3, &got), 4);

	/* At most TL_NOTE_MAX_SIGS lines, however many witnesses answer. */
	for (int i = 0; i < TL_NOTE_MAX_SIGS + 6; i++) {
		struct tl_keypair wk;
		char name[16];
		key(&wk, (uint8_t)(100 + i));
		snprintf(name, sizeof name, "x%d", i);
		cosig_only(&add, &note, 500, name, &wk);
		assert_int_equal(tl_store_checkpoint_merge(x->s, &x->f, 3, (const char *)add.data,
		                                           add.len, &added, NULL),
		                 0);
	}
	assert_int_equal(stored_lines(x, 3, &got), TL_NOTE_MAX_SIGS);
	tl_buf_release(&note);
	tl_buf_release(&add);
	tl_buf_release(&got);
	tl_buf_release(&other);
}

struct sizes {
	uint64_t v[8];
	size_t n;
};

static int note_size(void *ctx, uint64_t size, const char *note, size_t len)
{
	struct sizes *z = ctx;
	(void)note;
	(void)len;
	if (z->n < 8)
		z->v[z->n++] = size;
	return 0;
}

/* A checkpoint scan from a size starts there (both sides of it), not at 0. */
static void test_checkpoint_scan_from(void **state)
{
	struct fx *x = *state;
	struct tl_buf note;
	struct sizes z;
	tl_buf_init(&note, TL_NOTE_MAX);
	for (uint64_t size = 2; size <= 4; size++) {
		cp_note(&note, x->f.origin, size, 1, &x->kp);
		assert_int_equal(tl_store_checkpoint_merge(x->s, &x->f, size,
		                                           (const char *)note.data, note.len, NULL,
		                                           NULL),
		                 0);
	}
	memset(&z, 0, sizeof z);
	assert_int_equal(tl_store_checkpoint_scan_from(x->s, &x->f, 3, note_size, &z), 0);
	assert_int_equal(z.n, 2);
	assert_int_equal(z.v[0], 3);
	assert_int_equal(z.v[1], 4);
	memset(&z, 0, sizeof z);
	assert_int_equal(tl_store_checkpoint_scan_from(x->s, &x->f, 5, note_size, &z), 0);
	assert_int_equal(z.n, 0);
	memset(&z, 0, sizeof z);
	assert_int_equal(tl_store_checkpoint_scan(x->s, &x->f, note_size, &z), 0);
	assert_int_equal(z.n, 3);
	assert_int_equal(z.v[0], 2);
	tl_buf_release(&note);
}

static void append1(struct fx *x, int expect)
{
	struct tl_item it = {"statement", 9, (const uint8_t *)"\x81\xa1n\x01", 4};
	struct tl_appended out;
	size_t done = 0;
	assert_int_equal(tl_feed_append_local(x->s, x->f.origin, &x->kp, &it, 1, 0, 1000, &out,
	                                      &done, NULL, NULL),
	                 expect);
}

/* A halted feed refuses appends with a message naming feed and sizes,
 * until the halt is cleared. */
static void test_halt(void **state)
{
	struct fx *x = *state;
	struct tl_feed f;
	uint64_t others = 0;
	char why[TL_HALT_WHY_MAX + 1];
	append1(x, 0);
	assert_int_equal(tl_store_halt_get(x->s, x->f.origin, &others, why, sizeof why),
	                 TL_ENOTFOUND);
	assert_int_equal(tl_store_halt_set(x->s, x->f.origin, 7, "peer 10.0.0.1:7400 holds 7"), 0);
	assert_int_equal(tl_store_feed_get(x->s, x->f.origin, &f), 0);
	assert_true(f.flags & TL_FEED_HALTED);
	assert_true(f.flags & TL_FEED_OWN);
	assert_int_equal(tl_store_halt_get(x->s, x->f.origin, &others, why, sizeof why), 0);
	assert_int_equal(others, 7);
	assert_string_equal(why, "peer 10.0.0.1:7400 holds 7");
	append1(x, TL_EFORK);
	const char *msg = tl_store_errmsg(x->s);
	assert_non_null(strstr(msg, x->f.origin));
	assert_non_null(strstr(msg, "others hold 7 entries, this store has 1"));
	assert_int_equal(tl_store_feed_get(x->s, x->f.origin, &f), 0);
	assert_int_equal(f.head.size, 1);
	assert_int_equal(tl_store_halt_clear(x->s, x->f.origin), 0);
	assert_int_equal(tl_store_feed_get(x->s, x->f.origin, &f), 0);
	assert_false(f.flags & TL_FEED_HALTED);
	append1(x, 0);
	assert_int_equal(tl_store_halt_get(x->s, x->f.origin, &others, why, sizeof why),
	                 TL_ENOTFOUND);
}

/* A signed record of x->f at seq with prev zero (enough for evidence). */
static void record(struct tl_buf *rec, struct fx *x, uint64_t seq, uint8_t marker,
                   const struct tl_keypair *kp)
{
	uint8_t prev[32] = {0};
	uint8_t body[4] = {0x81, 0xa1, 'n', marker};
	tl_buf_reset(rec);
	assert_int_equal(tl_entry_encode(rec, x->f.origin, seq, prev, 1000, "statement", 9, body,
	                                 sizeof body),
	                 0);
	assert_int_equal(tl_record_sign(rec, kp->sk), 0);
}

struct scan {
	int n, records, checkpoints;
	uint64_t at[8];
};

static int scan_one(void *ctx, const struct tl_fork *fk)
{
	struct scan *s = ctx;
	char why[200];
	assert_int_equal(tl_fork_verify(fk->origin, fk->type, fk->at, fk->a, fk->alen, fk->b,
	                                fk->blen, fk->extra, fk->elen, why, sizeof why),
	                 0);
	s->at[s->n++] = fk->at;
	s->records += fk->type == TL_FORK_RECORDS;
	if (fk->type == TL_FORK_CONSISTENCY)
		assert_int_equal(fk->elen % 32, 0);
	s->checkpoints += fk->type == TL_FORK_CHECKPOINTS;
	assert_int_equal((int)fk->index, s->n);
	return 0;
}

/* Fork evidence: what proves a fork verifies, everything else does not;
 * both kinds are kept in the store and scanned back. */
static void test_fork_evidence(void **state)
{
	struct fx *x = *state;
	struct tl_buf a, b, c;
	char why[256];
	tl_buf_init(&a, TL_NOTE_MAX);
	tl_buf_init(&b, TL_NOTE_MAX);
	tl_buf_init(&c, TL_NOTE_MAX);
	record(&a, x, 4, 1, &x->kp);
	record(&b, x, 4, 2, &x->kp);
#define FV(t, at, p, q)                                                                        \
	tl_fork_verify(x->f.origin, t, at, (p).data, (p).len, (q).data, (q).len, NULL, 0, why, \
	               sizeof why)
	assert_int_equal(FV(TL_FORK_RECORDS, 4, a, b), 0);
	assert_int_equal(FV(TL_FORK_RECORDS, 4, a, a), TL_EPROOF); /* identical */
	assert_int_equal(FV(TL_FORK_RECORDS, 5, a, b), TL_EPROOF); /* another seq */
	record(&c, x, 5, 2, &x->kp);
	assert_int_equal(FV(TL_FORK_RECORDS, 4, a, c), TL_EPROOF); /* seqs differ */
	record(&c, x, 4, 2, &x->peer);                             /* signed by another key */
	assert_int_equal(FV(TL_FORK_RECORDS, 4, a, c), TL_ESIG);
	c.data[c.len - 1] ^= 1;
	assert_int_equal(FV(TL_FORK_RECORDS, 4, a, c), TL_ESIG);
	assert_int_equal(tl_store_fork_put(x->s, &x->f, 4, a.data, a.len, b.data, b.len), 0);

	cp_note(&a, x->f.origin, 6, 1, &x->kp);
	cp_note(&b, x->f.origin, 6, 2, &x->kp);
	assert_int_equal(FV(TL_FORK_CHECKPOINTS, 6, a, b), 0);
	assert_int_equal(FV(TL_FORK_CHECKPOINTS, 6, a, a), TL_EPROOF); /* same root */
	assert_int_equal(FV(TL_FORK_CHECKPOINTS, 7, a, b), TL_EPROOF);
	cp_note(&c, x->f.origin, 7, 2, &x->kp);
	assert_int_equal(FV(TL_FORK_CHECKPOINTS, 6, a, c), TL_EPROOF); /* sizes differ */
	cp_note(&c, x->f.origin, 6, 2, &x->peer);
	assert_int_equal(FV(TL_FORK_CHECKPOINTS, 6, a, c), TL_ESIG);
	assert_int_equal(FV(TL_FORK_RECORDS, 6, a, b), TL_EFORMAT); /* notes are not records */
	assert_int_equal(tl_store_fork_cp_put(x->s, &x->f, 6, (const char *)a.data, a.len,
	                                      (const char *)b.data, b.len),
	                 0);
#undef FV
	/* A checkpoint of size 3 with a root that the signed checkpoint of size
	 * 5 provably does not contain at 3. */
	struct tl_buf ex, t5;
	uint8_t r3[32], r5[32], proof[TL_MERKLE_MAX_PROOF][32];
	size_t np = 0;
	struct tl_feed f5;
	tl_buf_init(&ex, 32 * (TL_MERKLE_MAX_PROOF + 1));
	tl_buf_init(&t5, 4096);
	for (int i = 0; i < 5; i++)
		append1(x, 0);
	assert_int_equal(tl_store_feed_get(x->s, x->f.origin, &f5), 0);
	assert_int_equal(tl_store_root(x->s, &f5, 3, r3), 0);
	assert_int_equal(tl_store_root(x->s, &f5, 5, r5), 0);
	assert_int_equal(tl_store_consistency(x->s, &f5, 3, 5, proof, TL_MERKLE_MAX_PROOF, &np), 0);
	struct tl_checkpoint c5 = {.size = 5};
	snprintf(c5.origin, sizeof c5.origin, "%s", x->f.origin);
	memcpy(c5.root, r5, 32);
	assert_int_equal(tl_checkpoint_format(&c5, &t5), 0);
	tl_buf_reset(&b);
	assert_int_equal(tl_note_sign(&b, (const char *)t5.data, t5.len, x->f.origin, &x->kp), 0);
	cp_note(&a, x->f.origin, 3, 9, &x->kp); /* root 0x09...: not r3 */
	assert_int_equal(tl_buf_add(&ex, r3, 32), 0);
	assert_int_equal(tl_buf_add(&ex, proof, np * 32), 0);
#define FX(at, p, q, e)                                                                            \
	tl_fork_verify(x->f.origin, TL_FORK_CONSISTENCY, at, (p).data, (p).len, (q).data, (q).len, \
	               (e).data, (e).len, why, sizeof why)
	assert_int_equal(FX(3, a, b, ex), 0);
	assert_int_equal(FX(3, b, a, ex), TL_EPROOF); /* b must be the larger */
	/* a with the true root at 3 is no fork. */
	struct tl_checkpoint c3 = {.size = 3};
	snprintf(c3.origin, sizeof c3.origin, "%s", x->f.origin);
	memcpy(c3.root, r3, 32);
	tl_buf_reset(&t5);
	assert_int_equal(tl_checkpoint_format(&c3, &t5), 0);
	tl_buf_reset(&c);
	assert_int_equal(tl_note_sign(&c, (const char *)t5.data, t5.len, x->f.origin, &x->kp), 0);
	assert_int_equal(FX(3, c, b, ex), TL_EPROOF);
	ex.data[40] ^= 1; /* a proof hash altered */
	assert_int_equal(FX(3, a, b, ex), TL_EPROOF);
	ex.data[40] ^= 1;
	ex.data[0] ^= 1; /* a root that the proof does not bind */
	assert_int_equal(FX(3, a, b, ex), TL_EPROOF);
	ex.data[0] ^= 1;
	ex.len = 31;
	assert_int_equal(FX(3, a, b, ex), TL_EFORMAT);
	ex.len = 32 + np * 32;
#undef FX
	assert_int_equal(tl_store_fork_cpx_put(x->s, &x->f, 3, (const char *)a.data, a.len,
	                                       (const char *)b.data, b.len, ex.data, ex.len),
	                 0);
	tl_buf_release(&ex);
	tl_buf_release(&t5);
	struct scan s = {0};
	assert_int_equal(tl_store_fork_scan(x->s, scan_one, &s), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.records, 1);
	assert_int_equal(s.checkpoints, 1);
	struct tl_feed f;
	assert_int_equal(tl_store_feed_get(x->s, x->f.origin, &f), 0);
	assert_true(f.flags & TL_FEED_FORKED);
	tl_buf_release(&a);
	tl_buf_release(&b);
	tl_buf_release(&c);
}

/* `tally forks verify` on a consistency proof written as `tally forks show`
 * writes it: 0, then 1 once a proof hash is altered. */
static void test_forks_verify_cli_consistency(void **state)
{
	struct fx *x = *state;
	struct tl_buf a, b, t, vk;
	uint8_t r3[32], r5[32], proof[TL_MERKLE_MAX_PROOF][32];
	size_t np = 0;
	struct tl_feed f;
	char path[4300], home[4300], b64[64];
	struct th_run r = {0};
	tl_buf_init(&a, TL_NOTE_MAX);
	tl_buf_init(&b, TL_NOTE_MAX);
	tl_buf_init(&t, 4096);
	tl_buf_init(&vk, 1024);
	for (int i = 0; i < 7; i++)
		append1(x, 0);
	assert_int_equal(tl_store_feed_get(x->s, x->f.origin, &f), 0);
	assert_int_equal(tl_store_root(x->s, &f, 3, r3), 0);
	assert_int_equal(tl_store_root(x->s, &f, 7, r5), 0);
	assert_int_equal(tl_store_consistency(x->s, &f, 3, 7, proof, TL_MERKLE_MAX_PROOF, &np), 0);
	assert_true(np > 0);
	struct tl_checkpoint c7 = {.size = 7};
	snprintf(c7.origin, sizeof c7.origin, "%s", x->f.origin);
	memcpy(c7.root, r5, 32);
	assert_int_equal(tl_checkpoint_format(&c7, &t), 0);
	assert_int_equal(tl_note_sign(&b, (const char *)t.data, t.len, x->f.origin, &x->kp), 0);
	cp_note(&a, x->f.origin, 3, 9, &x->kp);
	assert_int_equal(tl_vkey_format(&x->vbook, &vk), 0);
	snprintf(path, sizeof path, "%s/cpx.json", x->dir);
	snprintf(home, sizeof home, "TALLY_HOME=%s/none", x->dir);
	const char *env[] = {home, NULL};
	const char *argv[] = {"tally", "forks", "verify", path, NULL};
	for (int round = 0; round < 2; round++) {
		json_t *pr = json_array();
		for (size_t i = 0; i < np; i++) {
			if (round == 1 && i == 0)
				proof[0][5] ^= 1;
			tl_b64_encode(b64, proof[i], 32);
			json_array_append_new(pr, json_string(b64));
		}
		tl_b64_encode(b64, r3, 32);
		json_t *j = json_pack("{s:s,s:s,s:s%,s:s,s:i,s:s%,s:s%,s:s,s:o}", "format",
		                      "tally-fork/v1", "origin", x->f.origin, "vkey",
		                      (const char *)vk.data, vk.len, "type", "consistency", "size",
		                      3, "a", (const char *)a.data, a.len, "b",
		                      (const char *)b.data, b.len, "root", b64, "proof", pr);
		char *text = json_dumps(j, 0);
		assert_int_equal(th_write_file(path, text, strlen(text)), 0);
		free(text);
		json_decref(j);
		th_run_free(&r);
		assert_int_equal(th_run(&r, argv, env, NULL, 0, 60), 0);
		if (r.status != round)
			fail_msg("round %d: status %d: %s%s", round, r.status, r.out, r.err);
	}
	th_run_free(&r);
	tl_buf_release(&a);
	tl_buf_release(&b);
	tl_buf_release(&t);
	tl_buf_release(&vk);
}

/* `tally forks verify` on a checkpoint proof file, with no data directory:
 * 0 for the proof, 1 once its key is not the origin's or a note is
 * altered. */
static void test_forks_verify_cli(void **state)
{
	struct fx *x = *state;
	struct tl_buf a, b, vk;
	char path[4300], home[4300];
	struct th_run r = {0};
	tl_buf_init(&a, TL_NOTE_MAX);
	tl_buf_init(&b, TL_NOTE_MAX);
	tl_buf_init(&vk, 1024);
	cp_note(&a, x->f.origin, 6, 1, &x->kp);
	cp_note(&b, x->f.origin, 6, 2, &x->kp);
	assert_int_equal(tl_vkey_format(&x->vbook, &vk), 0);
	snprintf(path, sizeof path, "%s/fork.json", x->dir);
	snprintf(home, sizeof home, "TALLY_HOME=%s/none", x->dir);
	const char *env[] = {home, NULL};
	const char *argv[] = {"tally", "forks", "verify", path, NULL};
	for (int round = 0; round < 3; round++) {
		json_t *j = json_pack("{s:s,s:s,s:s%,s:s,s:i,s:s%,s:s%}", "format", "tally-fork/v1",
		                      "origin", x->f.origin, "vkey", (const char *)vk.data, vk.len,
		                      "type", "checkpoints", "size", 6, "a", (const char *)a.data,
		                      a.len, "b", (const char *)b.data, b.len);
		if (round == 1) { /* the peer's key under this origin's name */
			struct tl_vkey other;
			struct tl_buf os;
			tl_buf_init(&os, 1024);
			assert_int_equal(tl_vkey_from_pub(&other, x->f.origin, TL_SIGTYPE_ED25519,
			                                  x->peer.pk),
			                 0);
			assert_int_equal(tl_vkey_format(&other, &os), 0);
			json_object_set_new(j, "vkey", json_stringn((const char *)os.data, os.len));
			tl_buf_release(&os);
		}
		if (round == 2) { /* b's root changed after signing */
			char *t = strndup((const char *)b.data, b.len);
			char *line3 = strchr(strchr(t, '\n') + 1, '\n') + 1;
			line3[0] = line3[0] == 'A' ? 'B' : 'A';
			json_object_set_new(j, "b", json_string(t));
			free(t);
		}
		char *text = json_dumps(j, 0);
		assert_int_equal(th_write_file(path, text, strlen(text)), 0);
		free(text);
		json_decref(j);
		th_run_free(&r);
		assert_int_equal(th_run(&r, argv, env, NULL, 0, 60), 0);
		if (r.status != (round == 0 ? 0 : 1))
			fail_msg("round %d: status %d: %s%s", round, r.status, r.out, r.err);
	}
	th_run_free(&r);
	tl_buf_release(&a);
	tl_buf_release(&b);
	tl_buf_release(&vk);
}

/* Config lines: witnesses with http(s) URLs and type 0x04 keys, the
 * heartbeat and timeout in range; anything else names file and line. */
static void test_config_witness(void **state)
{
	struct fx *x = *state;
	struct tl_node_config c;
	struct tl_buf vk1, vk0;
	char path[4300], text[2048], err[512];
	tl_buf_init(&vk1, 1024);
	tl_buf_init(&vk0, 1024);
	assert_int_equal(tl_vkey_format(&x->vw1, &vk1), 0);
	assert_int_equal(tl_vkey_format(&x->vbook, &vk0), 0);
	snprintf(path, sizeof path, "%s/t.conf", x->dir);
	tl_node_config_defaults(&c);
	assert_int_equal(c.witness_heartbeat_s, 60);
	assert_int_equal(c.nwitnesses, 0);
	snprintf(text, sizeof text,
	         "witness = http://127.0.0.1:9 %s\nwitness = https://w.example/sub/  %s\n"
	         "witness_heartbeat = 5\nwitness_timeout_ms = 1500\n",
	         tl_buf_cstr(&vk1), tl_buf_cstr(&vk1));
	assert_int_equal(th_write_file(path, text, strlen(text)), 0);
	assert_int_equal(tl_node_config_load(&c, path, err, sizeof err), 0);
	assert_int_equal(c.nwitnesses, 2);
	assert_string_equal(c.witness[0].url, "http://127.0.0.1:9");
	assert_string_equal(c.witness[1].url, "https://w.example/sub/");
	assert_string_equal(c.witness[1].vkey, tl_buf_cstr(&vk1));
	assert_int_equal(c.witness_heartbeat_s, 5);
	assert_int_equal(c.witness_timeout_ms, 1500);
	const char *bad[] = {"witness = ftp://x:1 %s\n",    "witness = http://x:1\n",
	                     "witness = http://x:1 %s\n",   "witness_heartbeat = 0\n",
	                     "witness_heartbeat = 86401\n", "witness_timeout_ms = x\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* the third one names the book's key: type 0x01, not a witness */
		snprintf(text, sizeof text, bad[i], i == 2 ? tl_buf_cstr(&vk0) : tl_buf_cstr(&vk1));
		assert_int_equal(th_write_file(path, text, strlen(text)), 0);
		tl_node_config_defaults(&c);
		err[0] = 0;
		assert_int_equal(tl_node_config_load(&c, path, err, sizeof err), -1);
		assert_non_null(strstr(err, ":1:"));
	}
	text[0] = 0;
	for (int i = 0; i <= TL_NODE_WITNESS_MAX; i++) {
		size_t l = strlen(text);
		snprintf(text + l, sizeof text - l, "witness = http://h:%d %s\n", i + 1,
		         tl_buf_cstr(&vk1));
	}
	assert_int_equal(th_write_file(path, text, strlen(text)), 0);
	tl_node_config_defaults(&c);
	assert_int_equal(tl_node_config_load(&c, path, err, sizeof err), -1);
	assert_non_null(strstr(err, "more than 16 witnesses"));
	tl_buf_release(&vk1);
	tl_buf_release(&vk0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_request_body_and_409_size),
	        cmocka_unit_test_setup_teardown(test_accept_and_filter, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_checkpoint_merge, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_checkpoint_scan_from, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_halt, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_fork_evidence, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_forks_verify_cli, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_forks_verify_cli_consistency, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_config_witness, setup, teardown),
	};
	return cmocka_run_group_tests_name("wclient", tests, NULL, NULL);
}
