/*
 * test_wtime.c — witnessed time (DESIGN §4): the per-witness staircases and
 * the k-of-n quorum over hand-made cosigned checkpoints, witnesses with
 * wrong clocks, the future-skew boundary, rejected and equivocating
 * checkpoints, the one-sweep array against the point queries, not-before
 * from seen receipts, and the lateness verdicts on both sides of each
 * boundary, with claimed and witnessed times side by side.
 */
#include "tests/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/state.h"
#include "consensus/wtime.h"
#include "node/tl_node.h"

#define T0  1790000000ull /* seconds */
#define DAY TL_DAY_MS
#define NW  3

/* ------------------------------------------------------------ fixture */

struct tfeed {
	struct tl_keypair kp;
	char origin[TL_ORIGIN_LEN + 1];
	size_t n, cap;
	uint8_t **recs;
	size_t *lens;
	uint8_t (*leaf)[TL_HASH_LEN];
};

struct chan {
	struct tfeed s, c;
	struct tl_keypair approver;
	struct tl_keypair wk[NW];
	struct tl_vkey wv[NW];
};

/* Checkpoint notes of one feed, as a bundle would carry them. */
struct notes {
	char *v[256];
	size_t len[256];
	size_t n;
};

static void key(struct tl_keypair *kp, uint8_t b)
{
	uint8_t seed[TL_SEED_LEN];
	memset(seed, b, sizeof seed);
	assert_int_equal(tl_key_from_seed(kp, seed), 0);
}

static void chan_init(struct chan *ch)
{
	uint8_t id[TL_CHANNEL_LEN];
	memset(ch, 0, sizeof *ch);
	key(&ch->s.kp, 1);
	key(&ch->c.kp, 2);
	key(&ch->approver, 3);
	tl_channel_id(id, ch->s.kp.pk, ch->c.kp.pk, "default", 7);
	tl_origin_format(ch->s.origin, ch->s.kp.pk, id);
	tl_origin_format(ch->c.origin, ch->c.kp.pk, id);
	for (int i = 0; i < NW; i++) {
		char name[32];
		key(&ch->wk[i], (uint8_t)(40 + i));
		snprintf(name, sizeof name, "witness-%c.example", 'a' + i);
		assert_int_equal(tl_vkey_from_pub(&ch->wv[i], name, TL_SIGTYPE_COSIG, ch->wk[i].pk),
		                 0);
	}
}

static void feed_free(struct tfeed *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->recs[i]);
	free(f->recs);
	free(f->lens);
	free(f->leaf);
}

static void notes_free(struct notes *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	ns->n = 0;
}

static void chan_free(struct chan *ch)
{
	feed_free(&ch->s);
	feed_free(&ch->c);
}

static uint64_t append_mp(struct tfeed *f, uint64_t t_ms, const char *kind, const uint8_t *body,
                          size_t body_len)
{
	struct tl_buf rec;
	static const uint8_t zero[TL_HASH_LEN];

	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 64;
		f->recs = realloc(f->recs, f->cap * sizeof *f->recs);
		f->lens = realloc(f->lens, f->cap * sizeof *f->lens);
		f->leaf = realloc(f->leaf, f->cap * sizeof *f->leaf);
		assert_non_null(f->recs);
		assert_non_null(f->lens);
		assert_non_null(f->leaf);
	}
	tl_buf_init(&rec, TL_RECORD_MAX);
	assert_int_equal(tl_entry_encode(&rec, f->origin, f->n, f->n ? f->leaf[f->n - 1] : zero,
	                                 t_ms, kind, strlen(kind), body, body_len),
	                 0);
	assert_int_equal(tl_record_sign(&rec, f->kp.sk), 0);
	f->recs[f->n] = rec.data;
	f->lens[f->n] = rec.len;
	tl_record_leaf_hash(f->leaf[f->n], rec.data, rec.len);
	return f->n++;
}

static uint64_t append_jv(struct tfeed *f, uint64_t t_ms, const char *kind, json_t *j)
{
	struct tl_buf b;
	char err[200];
	uint64_t seq;

	tl_buf_init(&b, TL_ENTRY_MAX);
	if (tl_json_to_mp(j, &b, err, sizeof err) != 0)
		fail_msg("tl_json_to_mp: %s", err);
	json_decref(j);
	seq = append_mp(f, t_ms, kind, b.data, b.len);
	tl_buf_release(&b);
	return seq;
}

static uint64_t append_json(struct tfeed *f, uint64_t t_ms, const char *kind, const char *js)
{
	json_error_t je;
	json_t *j = json_loads(js, 0, &je);

	if (!j)
		fail_msg("bad test JSON: %s: %s", je.text, js);
	return append_jv(f, t_ms, kind, j);
}

/* Root of the first size records. */
static void root_of(const struct tfeed *f, uint64_t size, uint8_t root[TL_HASH_LEN])
{
	struct tl_merkle_mem m;
	struct tl_merkle_src src;

	if (size == 0) {
		tl_merkle_empty_root(root);
		return;
	}
	assert_int_equal(tl_merkle_mem_build(&m, (const uint8_t(*)[TL_HASH_LEN])f->leaf, size), 0);
	src = tl_merkle_mem_src(&m);
	assert_int_equal(tl_merkle_root(&src, size, root), 0);
	tl_merkle_mem_release(&m);
}

/*
 * A checkpoint note of f at size signed by signer (the feed key unless
 * another is given), root (the real one unless given), cosigned by the
 * witnesses in mask at times[w] (0 = no cosignature from w).
 */
static char *note_ex(const struct chan *ch, const struct tfeed *f, uint64_t size,
                     const struct tl_keypair *signer, const uint8_t *root_in,
                     const uint64_t times[NW], size_t *len)
{
	struct tl_checkpoint cp;
	struct tl_buf text, out;
	char *s;

	memset(&cp, 0, sizeof cp);
	snprintf(cp.origin, sizeof cp.origin, "%s", f->origin);
	cp.size = size;
	if (root_in)
		memcpy(cp.root, root_in, TL_HASH_LEN);
	else
		root_of(f, size, cp.root);
	tl_buf_init(&text, 4096);
	tl_buf_init(&out, TL_NOTE_MAX);
	assert_int_equal(tl_checkpoint_format(&cp, &text), 0);
	assert_int_equal(tl_note_sign(&out, (const char *)text.data, text.len, f->origin,
	                              signer ? signer : &f->kp),
	                 0);
	for (int w = 0; w < NW; w++)
		if (times && times[w])
			assert_int_equal(tl_cosig_sign(&out, (const char *)text.data, text.len,
			                               times[w], ch->wv[w].name, &ch->wk[w]),
			                 0);
	s = malloc(out.len + 1);
	assert_non_null(s);
	memcpy(s, out.data, out.len);
	s[out.len] = 0;
	*len = out.len;
	tl_buf_release(&text);
	tl_buf_release(&out);
	return s;
}

static void add_note(struct notes *ns, const struct chan *ch, const struct tfeed *f, uint64_t size,
                     uint64_t ta, uint64_t tb, uint64_t tc)
{
	uint64_t t[NW] = {ta, tb, tc};

	assert_true(ns->n < 256);
	ns->v[ns->n] = note_ex(ch, f, size, NULL, NULL, t, &ns->len[ns->n]);
	ns->n++;
}

static struct tl_wtime *wbuild(const struct chan *ch, const struct tfeed *f, const struct notes *ns,
                               unsigned k, uint64_t now_s)
{
	struct tl_wtime_opts o = {ch->wv, NW, k, TL_WTIME_SKEW_DEFAULT, now_s};
	struct tl_wtime *wt = NULL;

	assert_int_equal(
	        tl_wtime_build(&wt, f->origin, (const char *const *)ns->v, ns->len, ns->n, &o), 0);
	assert_non_null(wt);
	assert_int_equal(tl_wtime_add_seen(wt, (const uint8_t *const *)f->recs, f->lens, f->n), 0);
	return wt;
}

static int has_issue(const struct tl_wtime *wt, enum tl_wtime_issue_kind kind, const char *needle)
{
	for (size_t i = 0; i < wt->issues_kept; i++)
		if (wt->issues[i].kind == kind && (!needle || strstr(wt->issues[i].msg, needle)))
			return 1;
	return 0;
}

/* n filler entries. */
static void fill(struct tfeed *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		append_json(f, 1000 * T0, "comment", "{\"text\":\"x\"}");
}

/* ------------------------------------------------------- staircases */

static void test_staircase_one_witness(void **state)
{
	struct chan ch;
	struct notes ns = {0};
	struct tl_wtime *wt;
	uint64_t all[8];
	(void)state;

	chan_init(&ch);
	fill(&ch.s, 7);
	add_note(&ns, &ch, &ch.s, 5, T0 + 200, 0, 0);
	add_note(&ns, &ch, &ch.s, 2, T0 + 100, 0, 0);
	add_note(&ns, &ch, &ch.s, 5, T0 + 150, 0, 0); /* the same size, earlier */
	add_note(&ns, &ch, &ch.s, 7, T0 + 120, 0, 0); /* a larger one, earlier still */
	wt = wbuild(&ch, &ch.s, &ns, 1, 0);
	assert_int_equal(wt->ncheckpoints, 4);
	assert_int_equal(wt->nissues, 0);
	assert_int_equal(tl_wtime_witness_steps(wt, 0), 3);
	/* existed_by(i): earliest over sizes > i. */
	assert_int_equal(tl_wtime_existed_by(wt, 0), T0 + 100);
	assert_int_equal(tl_wtime_existed_by(wt, 1), T0 + 100);
	assert_int_equal(tl_wtime_existed_by(wt, 2), T0 + 120); /* size 7 at 120 < size 5 at 150 */
	assert_int_equal(tl_wtime_existed_by(wt, 6), T0 + 120);
	assert_int_equal(tl_wtime_existed_by(wt, 7), 0); /* no checkpoint covers it */
	/* absent_at(i): latest over sizes <= i. */
	assert_int_equal(tl_wtime_absent_at(wt, 1), 0);
	assert_int_equal(tl_wtime_absent_at(wt, 2), T0 + 100);
	assert_int_equal(tl_wtime_absent_at(wt, 4), T0 + 100);
	assert_int_equal(tl_wtime_absent_at(wt, 5), T0 + 200);
	assert_int_equal(tl_wtime_absent_at(wt, 7), T0 + 200);
	assert_int_equal(tl_wtime_existed_all(wt, all, 8, 1), 0);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(all[i], tl_wtime_existed_by(wt, i));
	assert_int_equal(tl_wtime_existed_all(wt, all, 8, 1000), 0);
	assert_int_equal(all[0], (T0 + 100) * 1000);
	tl_wtime_free(wt);
	notes_free(&ns);
	chan_free(&ch);
}

static void test_quorum_k_of_n(void **state)
{
	struct chan ch;
	struct notes ns = {0};
	struct tl_wtime *wt;
	(void)state;

	chan_init(&ch);
	fill(&ch.s, 4);
	/* a and b cosign; c is missing. */
	add_note(&ns, &ch, &ch.s, 3, T0 + 100, T0 + 110, 0);
	add_note(&ns, &ch, &ch.s, 4, T0 + 300, 0, 0);
	wt = wbuild(&ch, &ch.s, &ns, 2, 0);
	assert_int_equal(tl_wtime_existed_by(wt, 0), T0 + 110); /* 2nd smallest of 100, 110 */
	assert_int_equal(tl_wtime_existed_by(wt, 3), 0);        /* only a covers seq 3 */
	assert_int_equal(tl_wtime_absent_at(wt, 3), T0 + 100);  /* 2nd largest of 100, 110 */
	assert_int_equal(tl_wtime_absent_at(wt, 4), T0 + 110);  /* a: 300, b: 110 */
	tl_wtime_free(wt);
	wt = wbuild(&ch, &ch.s, &ns, 1, 0);
	assert_int_equal(tl_wtime_existed_by(wt, 0), T0 + 100);
	assert_int_equal(tl_wtime_existed_by(wt, 3), T0 + 300);
	assert_int_equal(tl_wtime_absent_at(wt, 4), T0 + 300);
	tl_wtime_free(wt);
	/* k = 3 with one witness missing: nothing is witnessed. */
	wt = wbuild(&ch, &ch.s, &ns, 3, 0);
	assert_int_equal(tl_wtime_existed_by(wt, 0), 0);
	assert_int_equal(tl_wtime_absent_at(wt, 4), 0);
	tl_wtime_free(wt);
	/* k = 0: never witnessed. */
	wt = wbuild(&ch, &ch.s, &ns, 0, 0);
	assert_int_equal(tl_wtime_existed_by(wt, 0), 0);
	tl_wtime_free(wt);
	notes_free(&ns);
	chan_free(&ch);
}

static void test_wrong_clock_does_not_move_quorum(void **state)
{
	struct chan ch;
	struct notes ns = {0};
	struct tl_wtime *wt;
	uint64_t now = T0 + 10000;
	(void)state;

	chan_init(&ch);
	fill(&ch.s, 3);
	/* c's clock is far in the past: it would backdate alone, not in a 2-of-3. */
	add_note(&ns, &ch, &ch.s, 2, T0 + 500, T0 + 500, T0 - 5000000);
	add_note(&ns, &ch, &ch.s, 3, T0 + 900, T0 + 900, T0 - 4000000);
	wt = wbuild(&ch, &ch.s, &ns, 2, now);
	assert_int_equal(tl_wtime_existed_by(wt, 0), T0 + 500);
	assert_int_equal(tl_wtime_existed_by(wt, 2), T0 + 900);
	assert_int_equal(tl_wtime_absent_at(wt, 2), T0 + 500);
	assert_int_equal(tl_wtime_absent_at(wt, 3), T0 + 900);
	assert_int_equal(wt->nissues, 0);
	tl_wtime_free(wt);
	/* With k = 1 the past clock does move it: the documented limit. */
	wt = wbuild(&ch, &ch.s, &ns, 1, now);
	assert_int_equal(tl_wtime_existed_by(wt, 0), T0 - 5000000);
	tl_wtime_free(wt);
	notes_free(&ns);

	/* c's clock is far in the future: rejected and reported; the quorum
	 * time of a and b stands, for existed_by and absent_at alike. */
	add_note(&ns, &ch, &ch.s, 2, T0 + 500, T0 + 500, now + 3000000);
	add_note(&ns, &ch, &ch.s, 3, T0 + 900, T0 + 900, now + 3000000);
	wt = wbuild(&ch, &ch.s, &ns, 2, now);
	assert_int_equal(tl_wtime_existed_by(wt, 0), T0 + 500);
	assert_int_equal(tl_wtime_absent_at(wt, 3), T0 + 900);
	assert_true(has_issue(wt, TL_WT_FUTURE, "witness-c.example"));
	assert_int_equal(wt->w[2].ncosigs, 0);
	assert_int_equal(wt->w[2].nbad, 2);
	tl_wtime_free(wt);
	/* Without a "now" nothing is in the future: c then counts, and a 2-of-3
	 * absent_at still ignores one liar. */
	wt = wbuild(&ch, &ch.s, &ns, 2, 0);
	assert_int_equal(tl_wtime_absent_at(wt, 3), T0 + 900);
	assert_int_equal(tl_wtime_existed_by(wt, 0), T0 + 500);
	tl_wtime_free(wt);
	notes_free(&ns);
	chan_free(&ch);
}

static void test_future_skew_boundary(void **state)
{
	struct chan ch;
	struct notes ns = {0};
	struct tl_wtime *wt;
	uint64_t now = T0;
	(void)state;

	chan_init(&ch);
	fill(&ch.s, 2);
	add_note(&ns, &ch, &ch.s, 1, now + TL_WTIME_SKEW_DEFAULT, 0, 0);     /* at the limit */
	add_note(&ns, &ch, &ch.s, 2, now + TL_WTIME_SKEW_DEFAULT + 1, 0, 0); /* one beyond */
	wt = wbuild(&ch, &ch.s, &ns, 1, now);
	assert_int_equal(tl_wtime_existed_by(wt, 0), now + TL_WTIME_SKEW_DEFAULT);
	assert_int_equal(tl_wtime_existed_by(wt, 1), 0);
	assert_int_equal(wt->nissues, 1);
	assert_true(has_issue(wt, TL_WT_FUTURE, "size 2"));
	tl_wtime_free(wt);
	notes_free(&ns);
	chan_free(&ch);
}

static void test_rejected_checkpoints(void **state)
{
	struct chan ch;
	struct notes ns = {0};
	struct tl_wtime *wt;
	uint64_t t[NW] = {T0 + 10, T0 + 10, T0 + 10};
	char *p;
	(void)state;

	chan_init(&ch);
	fill(&ch.s, 3);
	fill(&ch.c, 3);
	/* signed by the customer's key, not the feed's */
	ns.v[ns.n] = note_ex(&ch, &ch.s, 1, &ch.c.kp, NULL, t, &ns.len[ns.n]);
	ns.n++;
	/* a checkpoint of the other feed */
	ns.v[ns.n] = note_ex(&ch, &ch.c, 1, NULL, NULL, t, &ns.len[ns.n]);
	ns.n++;
	/* a cosignature by b that does not verify (one signature byte changed) */
	add_note(&ns, &ch, &ch.s, 2, T0 + 20, T0 + 20, 0);
	p = strstr(ns.v[ns.n - 1], "witness-b.example ");
	assert_non_null(p);
	p += strlen("witness-b.example ") + 30;
	*p = *p == 'A' ? 'B' : 'A';
	/* not a note */
	ns.v[ns.n] = strdup("hello\n");
	ns.len[ns.n++] = 6;
	wt = wbuild(&ch, &ch.s, &ns, 1, 0);
	assert_true(has_issue(wt, TL_WT_UNSIGNED, "not signed by the feed key"));
	assert_true(has_issue(wt, TL_WT_ORIGIN, "checkpoint 1"));
	assert_true(has_issue(wt, TL_WT_COSIG, "witness-b.example"));
	assert_true(has_issue(wt, TL_WT_NOTE, "checkpoint 3"));
	assert_int_equal(wt->ncheckpoints, 1);
	/* Only a's cosignature on size 2 counts; the rejected ones give nothing. */
	assert_int_equal(tl_wtime_existed_by(wt, 0), T0 + 20);
	assert_int_equal(wt->w[0].ncosigs, 1);
	assert_int_equal(wt->w[1].ncosigs, 0);
	assert_int_equal(wt->w[1].nbad, 1);
	tl_wtime_free(wt);
	notes_free(&ns);
	chan_free(&ch);
}

static void test_equivocation_reported(void **state)
{
	struct chan ch;
	struct notes ns = {0};
	struct tl_wtime *wt;
	uint64_t t[NW] = {T0 + 5, T0 + 5, T0 + 5};
	uint8_t fake[TL_HASH_LEN];
	(void)state;

	chan_init(&ch);
	fill(&ch.s, 4);
	add_note(&ns, &ch, &ch.s, 4, T0 + 50, T0 + 50, T0 + 50);
	add_note(&ns, &ch, &ch.s, 3, T0 + 40, T0 + 40, T0 + 40);
	memset(fake, 0x5a, sizeof fake);
	ns.v[ns.n] = note_ex(&ch, &ch.s, 3, NULL, fake, t, &ns.len[ns.n]);
	ns.n++;
	wt = wbuild(&ch, &ch.s, &ns, 2, 0);
	assert_int_equal(wt->nforks, 1);
	assert_int_equal(wt->forks[0].size, 3);
	assert_true((wt->forks[0].a == 1 && wt->forks[0].b == 2) ||
	            (wt->forks[0].a == 2 && wt->forks[0].b == 1));
	assert_true(has_issue(wt, TL_WT_EQUIVOCAL, "size 3"));
	/* Neither size-3 checkpoint is used: seq 0 existed by size 4's time,
	 * not by the earlier (forked) ones. */
	assert_int_equal(tl_wtime_existed_by(wt, 0), T0 + 50);
	assert_int_equal(tl_wtime_absent_at(wt, 3), 0);
	assert_int_equal(wt->max_size, 4);
	tl_wtime_free(wt);
	notes_free(&ns);
	chan_free(&ch);
}

static void test_sweep_equals_point_queries(void **state)
{
	struct chan ch;
	struct notes ns = {0};
	struct tl_wtime *wt;
	uint64_t *all;
	uint32_t x = 12345;
	(void)state;

	chan_init(&ch);
	fill(&ch.s, 300);
	for (int i = 0; i < 60; i++) {
		uint64_t t[NW];
		x = x * 1103515245u + 12345u;
		uint64_t size = (x >> 8) % 301;
		for (int w = 0; w < NW; w++) {
			x = x * 1103515245u + 12345u;
			t[w] = (x >> 9) % 4 == 0 ? 0 : T0 + (x >> 12) % 5000;
		}
		add_note(&ns, &ch, &ch.s, size, t[0], t[1], t[2]);
	}
	all = calloc(320, sizeof *all);
	assert_non_null(all);
	for (unsigned k = 1; k <= NW; k++) {
		wt = wbuild(&ch, &ch.s, &ns, k, 0);
		assert_int_equal(tl_wtime_existed_all(wt, all, 320, 1), 0);
		for (uint64_t i = 0; i < 320; i++) {
			/* brute force from the definition */
			uint64_t tw[NW], v;
			for (int w = 0; w < NW; w++) {
				tw[w] = UINT64_MAX;
				for (size_t j = 0; j < ns.n; j++) {
					struct tl_note n;
					struct tl_checkpoint cp;
					uint64_t tt;
					assert_int_equal(tl_note_parse(&n, ns.v[j], ns.len[j]), 0);
					assert_int_equal(
					        tl_checkpoint_parse(&cp, n.raw, n.text_len), 0);
					if (cp.size > i &&
					    tl_cosig_verify(&n, &ch.wv[w], &tt) == 0 && tt < tw[w])
						tw[w] = tt;
					tl_note_release(&n);
				}
			}
			/* k-th smallest */
			for (int a = 0; a < NW; a++)
				for (int b = a + 1; b < NW; b++)
					if (tw[b] < tw[a]) {
						v = tw[a];
						tw[a] = tw[b];
						tw[b] = v;
					}
			v = tw[k - 1] == UINT64_MAX ? 0 : tw[k - 1];
			assert_int_equal(all[i], v);
			assert_int_equal(tl_wtime_existed_by(wt, i), v);
		}
		tl_wtime_free(wt);
	}
	free(all);
	notes_free(&ns);
	chan_free(&ch);
}

/* ------------------------------------------------------------ lateness */

static void pk_hex(const struct tl_keypair *kp, char out[65])
{
	tl_hex_encode(out, kp->pk, TL_PUB_LEN);
}

static uint64_t statement(struct chan *ch, uint64_t t_ms, const char *id)
{
	char js[1024];
	snprintf(
	        js, sizeof js,
	        "{\"id\":\"%s\",\"version\":1,\"date\":\"2026-11-30\","
	        "\"period\":{\"from\":\"2026-11-01\",\"to\":\"2026-11-30\"},"
	        "\"currency\":\"CNY\",\"opening\":0,"
	        "\"lines\":[{\"date\":\"2026-11-03\",\"type\":\"invoice\",\"doc\":\"INV-1\","
	        "\"amount\":500,\"due\":\"2026-12-03\"}],\"closing\":500,"
	        "\"aging\":{\"current\":500,\"d1_30\":0,\"d31_60\":0,\"d61_90\":0,\"d90_plus\":0}}",
	        id);
	return append_json(&ch->s, t_ms, "statement", js);
}

static void grant(struct chan *ch, uint64_t t_ms)
{
	char js[256], h[65];
	pk_hex(&ch->approver, h);
	snprintf(js, sizeof js, "{\"key\":\"%s\",\"role\":\"approver\",\"name\":\"A\"}", h);
	append_json(&ch->c, t_ms, "key.grant", js);
}

/* A confirm of the statement at sseq, signed by the approver. */
static uint64_t confirm(struct chan *ch, uint64_t t_ms, uint64_t sseq)
{
	char h[65], ph[65], b64[100];
	struct tl_buf body, msg;
	uint8_t sig[TL_SIG_LEN];
	char err[200];
	json_t *j;

	tl_hex_encode(h, ch->s.leaf[sseq], TL_HASH_LEN);
	pk_hex(&ch->approver, ph);
	j = json_pack("{s:s,s:I,s:s}", "statement", h, "balance", (json_int_t)500, "person", ph);
	tl_buf_init(&body, TL_ENTRY_MAX);
	assert_int_equal(tl_json_to_mp(j, &body, err, sizeof err), 0);
	tl_buf_init(&msg, TL_ENTRY_MAX);
	assert_int_equal(tl_buf_adds(&msg, "tally/person/v1\nconfirm\n"), 0);
	assert_int_equal(tl_buf_add(&msg, body.data, body.len), 0);
	tl_sign(sig, msg.data, msg.len, ch->approver.sk);
	tl_b64_encode(b64, sig, TL_SIG_LEN);
	tl_buf_release(&msg);
	tl_buf_release(&body);
	json_object_set_new(j, "person_sig", json_string(b64));
	return append_jv(&ch->c, t_ms, "confirm", j);
}

struct eval {
	struct tl_wtime *sup, *cus;
	struct tl_state *ws, *cs;
	struct tl_late *late;
};

/* What the audit does: witnessed times from the checkpoints, two states
 * (witnessed and claimed), the verdicts. */
static void eval(struct eval *e, const struct chan *ch, const struct notes *sn,
                 const struct notes *cn, unsigned k, uint64_t now_ms)
{
	uint64_t *ws_s, *ws_c;
	memset(e, 0, sizeof *e);
	e->sup = wbuild(ch, &ch->s, sn, k, now_ms / 1000);
	e->cus = wbuild(ch, &ch->c, cn, k, now_ms / 1000);
	ws_s = calloc(ch->s.n + 1, sizeof *ws_s);
	ws_c = calloc(ch->c.n + 1, sizeof *ws_c);
	assert_int_equal(tl_wtime_existed_all(e->sup, ws_s, ch->s.n, 1000), 0);
	assert_int_equal(tl_wtime_existed_all(e->cus, ws_c, ch->c.n, 1000), 0);
	struct tl_state_feed a = {(const uint8_t *const *)ch->s.recs, ch->s.lens, ws_s, ch->s.n};
	struct tl_state_feed b = {(const uint8_t *const *)ch->c.recs, ch->c.lens, ws_c, ch->c.n};
	struct tl_state_feed a0 = {(const uint8_t *const *)ch->s.recs, ch->s.lens, NULL, ch->s.n};
	struct tl_state_feed b0 = {(const uint8_t *const *)ch->c.recs, ch->c.lens, NULL, ch->c.n};
	assert_int_equal(tl_state_compute(&e->ws, &a, &b, NULL, now_ms), 0);
	assert_int_equal(tl_state_compute(&e->cs, &a0, &b0, NULL, now_ms), 0);
	assert_int_equal(tl_late_eval(&e->late, e->ws, e->cs, e->sup, e->cus, now_ms), 0);
	free(ws_s);
	free(ws_c);
}

static void eval_free(struct eval *e)
{
	tl_wtime_free(e->sup);
	tl_wtime_free(e->cus);
	tl_state_free(e->ws);
	tl_state_free(e->cs);
	free(e->late);
}

/*
 * Supplier: statement at seq 0, witnessed (2-of-3) at T0 + 100, so the
 * deadline (10 default response days) is D = (T0 + 100) s + 10 days.
 * Customer: grant at seq 0, confirm at seq 1 claiming time claim_ms.
 * cus_ta/cus_tb: a and b cosign the customer's checkpoint of size 2 (with
 * the confirm) at these times; abs_t: they cosign size 1 (without it).
 */
static void lateness_case(struct eval *e, struct chan *ch, uint64_t claim_ms, uint64_t with_t,
                          uint64_t without_t, uint64_t now_ms)
{
	struct notes sn = {0}, cn = {0};

	chan_init(ch);
	grant(ch, 1000 * T0);
	statement(ch, 1000 * T0, "ST-1");
	confirm(ch, claim_ms, 0);
	add_note(&sn, ch, &ch->s, 1, T0 + 100, T0 + 100, 0);
	if (with_t)
		add_note(&cn, ch, &ch->c, 2, with_t, with_t, 0);
	if (without_t)
		add_note(&cn, ch, &ch->c, 1, without_t, without_t, 0);
	eval(e, ch, &sn, &cn, 2, now_ms);
	notes_free(&sn);
	notes_free(&cn);
}

#define D_S (T0 + 100 + 10 * 86400ull) /* the deadline, seconds */

static void test_on_time_at_deadline_late_one_second_after(void **state)
{
	struct chan ch;
	struct eval e;
	const struct tl_late *l;
	(void)state;

	/* The confirm existed by exactly the deadline: on time, proven. */
	lateness_case(&e, &ch, 1000 * T0 + 5000, D_S, 0, 1000 * D_S + 1000);
	l = &e.late[0];
	assert_int_equal(l->deadline_src, TL_TIME_WITNESSED);
	assert_int_equal(l->deadline_ms, 1000 * D_S);
	assert_int_equal(l->sent.existed_by_ms, 1000 * (T0 + 100));
	assert_int_equal(l->answer.existed_by_ms, 1000 * D_S);
	assert_int_equal(l->answer_kind, 1);
	assert_int_equal(l->witnessed, TL_VERDICT_ON_TIME);
	assert_int_equal(l->claimed, TL_VERDICT_ON_TIME);
	eval_free(&e);
	chan_free(&ch);

	/* Existed by one second later, and a quorum saw the feed without it at
	 * the deadline: late, proven, 1 day. */
	lateness_case(&e, &ch, 1000 * T0 + 5000, D_S + 1, D_S, 1000 * D_S + 5000);
	l = &e.late[0];
	assert_int_equal(l->answer.existed_by_ms, 1000 * (D_S + 1));
	assert_int_equal(l->absent_at_ms, 1000 * D_S);
	assert_int_equal(l->witnessed, TL_VERDICT_LATE);
	assert_int_equal(l->days_late, 1);
	/* The customer's claim says on time: shown side by side, not believed. */
	assert_int_equal(l->claimed, TL_VERDICT_ON_TIME);
	eval_free(&e);
	chan_free(&ch);

	/* Absent at the deadline's second and present by that same second
	 * (honest witnesses, the answer written within it): exactly at the
	 * deadline is on time, not a conflict between the witnesses. */
	lateness_case(&e, &ch, 1000 * T0 + 5000, D_S, D_S, 1000 * D_S + 5000);
	l = &e.late[0];
	assert_int_equal(l->answer.existed_by_ms, 1000 * D_S);
	assert_int_equal(l->absent_at_ms, 1000 * D_S);
	assert_int_equal(l->witnessed, TL_VERDICT_ON_TIME);
	assert_int_equal(l->conflict, 0);
	assert_false(e.ws->stmts[0].late);
	eval_free(&e);
	chan_free(&ch);

	/* Absent one second after the deadline, yet present by it: that is a
	 * real contradiction, reported as such. */
	lateness_case(&e, &ch, 1000 * T0 + 5000, D_S, D_S + 1, 1000 * D_S + 5000);
	assert_int_equal(e.late[0].witnessed, TL_VERDICT_NOT_PROVEN);
	assert_int_equal(e.late[0].conflict, 1);
	eval_free(&e);
	chan_free(&ch);

	/* Absent one second before the deadline only: neither is proven. */
	lateness_case(&e, &ch, 1000 * T0 + 5000, D_S + 1, D_S - 1, 1000 * D_S + 5000);
	assert_int_equal(e.late[0].witnessed, TL_VERDICT_NOT_PROVEN);
	eval_free(&e);
	chan_free(&ch);
}

static void test_confirm_after_deadline_claims_on_time(void **state)
{
	struct chan ch;
	struct eval e;
	const struct tl_late *l;
	(void)state;

	/* Written 3 days and a bit after the deadline (witnesses saw the feed
	 * without it then), claiming a time 2 days after the statement. */
	lateness_case(&e, &ch, 1000 * T0 + 2 * DAY, D_S + 3 * 86400 + 60, D_S + 3 * 86400 + 10,
	              1000 * (D_S + 5 * 86400));
	l = &e.late[0];
	assert_int_equal(l->claimed, TL_VERDICT_ON_TIME);
	assert_int_equal(l->answer.claimed_ms, 1000 * T0 + 2 * DAY);
	assert_int_equal(l->witnessed, TL_VERDICT_LATE);
	assert_int_equal(l->days_late, 4); /* ceil(3 days + 10 s) */
	assert_int_equal(l->late_by_ms, 1000 * (D_S + 3 * 86400 + 10));
	/* The state machine itself, given witnessed times, agrees. */
	assert_true(e.ws->stmts[0].late);
	assert_false(e.cs->stmts[0].late);
	eval_free(&e);
	chan_free(&ch);
}

static void test_late_without_answer(void **state)
{
	struct chan ch;
	struct notes sn = {0}, cn = {0};
	struct eval e;
	(void)state;

	chan_init(&ch);
	grant(&ch, 1000 * T0);
	statement(&ch, 1000 * T0, "ST-1");
	add_note(&sn, &ch, &ch.s, 1, T0 + 100, T0 + 100, T0 + 100);
	/* heartbeats of the customer's feed (size 1: only the grant) */
	add_note(&cn, &ch, &ch.c, 1, T0 + 200, T0 + 200, T0 + 200);
	add_note(&cn, &ch, &ch.c, 1, D_S + 5 * 86400, D_S + 5 * 86400, 0);

	eval(&e, &ch, &sn, &cn, 2, 1000 * (D_S + 6 * 86400));
	assert_int_equal(e.late[0].answer_kind, 0);
	assert_int_equal(e.late[0].witnessed, TL_VERDICT_LATE);
	assert_int_equal(e.late[0].days_late, 5);
	assert_int_equal(e.late[0].claimed, TL_VERDICT_LATE);
	eval_free(&e);

	/* With a quorum of 3 the last heartbeat has only two: the deadline is
	 * witnessed but the absence after it is not. */
	eval(&e, &ch, &sn, &cn, 3, 1000 * (D_S + 6 * 86400));
	assert_int_equal(e.late[0].deadline_ms, 1000 * D_S);
	assert_int_equal(e.late[0].witnessed, TL_VERDICT_NOT_PROVEN);
	eval_free(&e);

	/* Before the deadline, nothing is due on either side. */
	eval(&e, &ch, &sn, &cn, 2, 1000 * (T0 + 300));
	assert_int_equal(e.late[0].witnessed, TL_VERDICT_NONE);
	assert_int_equal(e.late[0].claimed, TL_VERDICT_NONE);
	eval_free(&e);
	notes_free(&sn);
	notes_free(&cn);
	chan_free(&ch);
}

static void test_deadline_not_witnessed(void **state)
{
	struct chan ch;
	struct notes sn = {0}, cn = {0};
	struct eval e;
	(void)state;

	chan_init(&ch);
	grant(&ch, 1000 * T0);
	statement(&ch, 1000 * T0, "ST-1");
	confirm(&ch, 1000 * T0 + 1000, 0);
	/* Only one witness for the supplier: with k = 2 the statement has no
	 * witnessed time, so no deadline is proven and neither is the verdict,
	 * even though the confirm is witnessed. */
	add_note(&sn, &ch, &ch.s, 1, T0 + 100, 0, 0);
	add_note(&cn, &ch, &ch.c, 2, T0 + 200, T0 + 200, 0);
	eval(&e, &ch, &sn, &cn, 2, 1000 * (T0 + 300));
	assert_int_equal(e.late[0].sent.existed_by_ms, 0);
	assert_int_equal(e.late[0].answer.existed_by_ms, 1000 * (T0 + 200));
	assert_int_equal(e.late[0].deadline_ms, 0);
	assert_int_equal(e.late[0].witnessed, TL_VERDICT_NOT_PROVEN);
	assert_int_equal(e.late[0].claimed, TL_VERDICT_ON_TIME);
	eval_free(&e);
	notes_free(&sn);
	notes_free(&cn);
	chan_free(&ch);
}

static void test_not_before_from_seen(void **state)
{
	struct chan ch;
	struct notes sn = {0}, cn = {0};
	struct eval e;
	char *emb;
	size_t emb_len;
	uint64_t t[NW] = {D_S + 7200, D_S + 3600, D_S + 60}, seen_seq, cseq;
	json_t *j;
	(void)state;

	chan_init(&ch);
	grant(&ch, 1000 * T0);
	statement(&ch, 1000 * T0, "ST-1");
	fill(&ch.s, 1);
	add_note(&sn, &ch, &ch.s, 1, T0 + 100, T0 + 100, 0);
	/* The customer's seen receipt embeds the supplier's checkpoint of size
	 * 2 cosigned after the deadline; the confirm follows it. */
	emb = note_ex(&ch, &ch.s, 2, NULL, NULL, t, &emb_len);
	j = json_pack("{s:s,s:I,s:s%}", "feed", ch.s.origin, "size", (json_int_t)2, "checkpoint",
	              emb, emb_len);
	seen_seq = append_jv(&ch.c, 1000 * T0 + 1000, "seen", j);
	cseq = confirm(&ch, 1000 * T0 + 2000, 0);
	assert_int_equal(seen_seq, 1);
	assert_int_equal(cseq, 2);
	eval(&e, &ch, &sn, &cn, 2, 1000 * (D_S + 86400));
	/* k = 2: the 2nd largest of the three cosignature times. */
	assert_int_equal(tl_wtime_not_before(e.cus, 0), 0);
	assert_int_equal(tl_wtime_not_before(e.cus, 1), D_S + 3600);
	assert_int_equal(tl_wtime_not_before(e.cus, 2), D_S + 3600);
	assert_int_equal(e.late[0].answer.not_before_ms, 1000 * (D_S + 3600));
	assert_int_equal(e.late[0].witnessed, TL_VERDICT_LATE);
	assert_int_equal(e.late[0].days_late, 1);
	assert_int_equal(e.late[0].claimed, TL_VERDICT_ON_TIME);
	eval_free(&e);
	notes_free(&sn);
	notes_free(&cn);
	free(emb);
	chan_free(&ch);
}

/* Lines on a note embedded in a seen entry (the other feed's checkpoint)
 * that are dated in the future or do not verify are not used, and are not
 * counted against the witness on this feed's checkpoints. */
static void test_seen_note_lines_not_counted(void **state)
{
	struct chan ch;
	struct notes cn = {0};
	struct tl_wtime *wt;
	char *emb;
	size_t emb_len;
	uint64_t now = T0 + 1000, t[NW] = {now + TL_WTIME_SKEW_DEFAULT + 1, 0, 0};
	json_t *j;
	(void)state;

	chan_init(&ch);
	fill(&ch.s, 2);
	emb = note_ex(&ch, &ch.s, 2, NULL, NULL, t, &emb_len);
	j = json_pack("{s:s,s:I,s:s%}", "feed", ch.s.origin, "size", (json_int_t)2, "checkpoint",
	              emb, emb_len);
	append_jv(&ch.c, 1000 * T0, "seen", j);
	fill(&ch.c, 1);
	add_note(&cn, &ch, &ch.c, 2, T0 + 10, 0, 0); /* the customer's own, valid */
	wt = wbuild(&ch, &ch.c, &cn, 1, now);
	assert_int_equal(tl_wtime_not_before(wt, 1), 0); /* the future line is not used */
	assert_int_equal(wt->w[0].ncosigs, 1);
	assert_int_equal(wt->w[0].nbad, 0);
	assert_int_equal(wt->nissues, 0);
	tl_wtime_free(wt);
	/* the same line is used once it is no longer in the future */
	wt = wbuild(&ch, &ch.c, &cn, 1, now + 2);
	assert_int_equal(tl_wtime_not_before(wt, 1), now + TL_WTIME_SKEW_DEFAULT + 1);
	tl_wtime_free(wt);
	notes_free(&cn);
	free(emb);
	chan_free(&ch);
}

static void test_days_late(void **state)
{
	(void)state;
	assert_int_equal(tl_days_late(1000, 1000), 0);
	assert_int_equal(tl_days_late(999, 1000), 0);
	assert_int_equal(tl_days_late(1001, 1000), 1);
	assert_int_equal(tl_days_late(1000 + DAY, 1000), 1);
	assert_int_equal(tl_days_late(1001 + DAY, 1000), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_staircase_one_witness),
	        cmocka_unit_test(test_quorum_k_of_n),
	        cmocka_unit_test(test_wrong_clock_does_not_move_quorum),
	        cmocka_unit_test(test_future_skew_boundary),
	        cmocka_unit_test(test_rejected_checkpoints),
	        cmocka_unit_test(test_equivocation_reported),
	        cmocka_unit_test(test_sweep_equals_point_queries),
	        cmocka_unit_test(test_on_time_at_deadline_late_one_second_after),
	        cmocka_unit_test(test_confirm_after_deadline_claims_on_time),
	        cmocka_unit_test(test_late_without_answer),
	        cmocka_unit_test(test_deadline_not_witnessed),
	        cmocka_unit_test(test_not_before_from_seen),
	        cmocka_unit_test(test_seen_note_lines_not_counted),
	        cmocka_unit_test(test_days_late),
	};
	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
