/*
 * test_verify.c — independent verification (node/verify.c): tally-bundle/v1
 * files, single entry tlog-proofs and signed notes. Each bundle is built here
 * from fixed seeds, then tampered with one way at a time; every tampering
 * must be reported naming the right feed, seq or checkpoint size and reason.
 */
#include "tests/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/tl_node.h"

#define T0 1700000000u /* cosignature time used throughout */
#define NA 150         /* records of feed A: several worker chunks */
#define NB 7           /* records of feed B */

#define W1 "witness.example/w1"
#define W2 "witness.example/w2"
#define W3 "witness.example/w3"

/* ------------------------------------------------------------ fixture */

struct tfeed {
	struct tl_keypair kp;
	char origin[TL_ORIGIN_LEN + 1];
	struct tl_vkey vk;
	size_t n;
	struct tl_buf *rec;
	uint8_t (*leaf)[TL_HASH_LEN];
};

struct world {
	struct tfeed a, b;
	struct tl_keypair w1, w2, w3;
	struct tl_vkey wv1, wv2, wv3;
};

struct cosig {
	const struct tl_keypair *kp;
	const char *name;
	uint64_t time;
};

static void seeded(struct tl_keypair *kp, uint8_t b)
{
	uint8_t seed[TL_SEED_LEN];

	memset(seed, b, sizeof seed);
	assert_int_equal(tl_key_from_seed(kp, seed), 0);
}

/* Canonical body {"n": i}. */
static size_t body_of(uint8_t *out, uint64_t i)
{
	size_t n = 0;

	out[n++] = 0x81;
	out[n++] = 0xa1;
	out[n++] = 'n';
	if (i < 128) {
		out[n++] = (uint8_t)i;
	} else if (i < 256) {
		out[n++] = 0xcc;
		out[n++] = (uint8_t)i;
	} else {
		out[n++] = 0xcd;
		out[n++] = (uint8_t)(i >> 8);
		out[n++] = (uint8_t)i;
	}
	return n;
}

static void feed_build(struct tfeed *f, uint8_t seed, const uint8_t peer[TL_PUB_LEN], size_t n)
{
	uint8_t ch[TL_CHANNEL_LEN], prev[TL_HASH_LEN] = {0}, body[8];

	seeded(&f->kp, seed);
	tl_channel_id(ch, f->kp.pk, peer, "default", 7);
	tl_origin_format(f->origin, f->kp.pk, ch);
	assert_int_equal(tl_vkey_from_pub(&f->vk, f->origin, TL_SIGTYPE_ED25519, f->kp.pk), 0);
	f->n = n;
	f->rec = calloc(n ? n : 1, sizeof *f->rec);
	f->leaf = calloc(n ? n : 1, sizeof *f->leaf);
	assert_non_null(f->rec);
	assert_non_null(f->leaf);
	for (size_t i = 0; i < n; i++) {
		size_t blen = body_of(body, i);

		tl_buf_init(&f->rec[i], TL_RECORD_MAX);
		assert_int_equal(tl_entry_encode(&f->rec[i], f->origin, i, prev,
		                                 1700000000000ull + i, "statement", 9, body, blen),
		                 0);
		assert_int_equal(tl_record_sign(&f->rec[i], f->kp.sk), 0);
		tl_record_leaf_hash(f->leaf[i], f->rec[i].data, f->rec[i].len);
		memcpy(prev, f->leaf[i], TL_HASH_LEN);
	}
}

static void feed_free(struct tfeed *f)
{
	for (size_t i = 0; i < f->n; i++)
		tl_buf_release(&f->rec[i]);
	free(f->rec);
	free(f->leaf);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof *w);

	if (!w || tl_init() != 0)
		return -1;
	seeded(&w->a.kp, 0xa1);
	seeded(&w->b.kp, 0xb2);
	feed_build(&w->a, 0xa1, w->b.kp.pk, NA);
	feed_build(&w->b, 0xb2, w->a.kp.pk, NB);
	seeded(&w->w1, 0x11);
	seeded(&w->w2, 0x22);
	seeded(&w->w3, 0x33);
	assert_int_equal(tl_vkey_from_pub(&w->wv1, W1, TL_SIGTYPE_COSIG, w->w1.pk), 0);
	assert_int_equal(tl_vkey_from_pub(&w->wv2, W2, TL_SIGTYPE_COSIG, w->w2.pk), 0);
	assert_int_equal(tl_vkey_from_pub(&w->wv3, W3, TL_SIGTYPE_COSIG, w->w3.pk), 0);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	feed_free(&w->a);
	feed_free(&w->b);
	free(w);
	return 0;
}

/* ----------------------------------------------------------- builders */

static char *b64_of(const uint8_t *p, size_t n)
{
	char *s = malloc(tl_b64_encoded_len(n) + 1);

	assert_non_null(s);
	tl_b64_encode(s, p, n);
	return s;
}

static char *vkey_str(const struct tl_vkey *vk)
{
	struct tl_buf b;
	char *s;

	tl_buf_init(&b, 4096);
	assert_int_equal(tl_vkey_format(vk, &b), 0);
	s = strdup(tl_buf_cstr(&b));
	tl_buf_release(&b);
	return s;
}

static void root_at(const struct tfeed *f, uint64_t size, uint8_t root[TL_HASH_LEN])
{
	struct tl_merkle_acc *acc = malloc(sizeof *acc);

	assert_non_null(acc);
	tl_merkle_acc_init(acc);
	for (uint64_t i = 0; i < size; i++)
		tl_merkle_acc_push(acc, f->leaf[i], NULL, NULL);
	tl_merkle_acc_root(acc, root);
	free(acc);
}

/*
 * A signed checkpoint note of f at size with root (NULL: the true root),
 * signed under f's origin by signer (NULL: f's key), with cosignatures.
 */
static char *cp_note(const struct tfeed *f, uint64_t size, const uint8_t *root,
                     const struct tl_keypair *signer, const struct cosig *cs, size_t ncs)
{
	struct tl_checkpoint c;
	struct tl_buf text, note;
	char *s;

	memset(&c, 0, sizeof c);
	snprintf(c.origin, sizeof c.origin, "%s", f->origin);
	c.size = size;
	if (root)
		memcpy(c.root, root, TL_HASH_LEN);
	else
		root_at(f, size, c.root);
	tl_buf_init(&text, TL_NOTE_MAX);
	tl_buf_init(&note, TL_NOTE_MAX);
	assert_int_equal(tl_checkpoint_format(&c, &text), 0);
	assert_int_equal(tl_note_sign(&note, (const char *)text.data, text.len, f->origin,
	                              signer ? signer : &f->kp),
	                 0);
	for (size_t i = 0; i < ncs; i++)
		assert_int_equal(tl_cosig_sign(&note, (const char *)text.data, text.len, cs[i].time,
		                               cs[i].name, cs[i].kp),
		                 0);
	s = strdup(tl_buf_cstr(&note));
	tl_buf_release(&text);
	tl_buf_release(&note);
	return s;
}

static json_t *feed_json(const struct tfeed *f)
{
	json_t *o = json_object(), *recs = json_array();
	char *vk = vkey_str(&f->vk);

	for (size_t i = 0; i < f->n; i++) {
		char *s = b64_of(f->rec[i].data, f->rec[i].len);
		json_array_append_new(recs, json_string(s));
		free(s);
	}
	json_object_set_new(o, "origin", json_string(f->origin));
	json_object_set_new(o, "vkey", json_string(vk));
	json_object_set_new(o, "records", recs);
	json_object_set_new(o, "checkpoints", json_array());
	free(vk);
	return o;
}

static json_t *feed_at(json_t *b, size_t i)
{
	return json_array_get(json_object_get(b, "feeds"), i);
}

static json_t *recs_of(json_t *b, size_t i)
{
	return json_object_get(feed_at(b, i), "records");
}

static json_t *cps_of(json_t *b, size_t i)
{
	return json_object_get(feed_at(b, i), "checkpoints");
}

static void add_cp(json_t *b, size_t feed, char *note)
{
	json_array_append_new(cps_of(b, feed), json_string(note));
	free(note);
}

static void set_witnesses(json_t *b, const struct tl_vkey *const *wv, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		char *s = vkey_str(wv[i]);
		json_array_append_new(arr, json_string(s));
		free(s);
	}
	json_object_set_new(b, "witnesses", arr);
}

/* Two feeds without checkpoints; witnesses w1, w2; quorum q. */
static json_t *bundle_bare(const struct world *w, int q)
{
	json_t *b = json_object(), *feeds = json_array();
	const struct tl_vkey *wv[] = {&w->wv1, &w->wv2};

	json_object_set_new(b, "format", json_string("tally-bundle/v1"));
	json_array_append_new(feeds, feed_json(&w->a));
	json_array_append_new(feeds, feed_json(&w->b));
	json_object_set_new(b, "feeds", feeds);
	set_witnesses(b, wv, 2);
	json_object_set_new(b, "quorum", json_integer(q));
	return b;
}

/* The reference bundle: A checkpointed at 5 and NA, B at NB, each cosigned by
 * w1 at T0; quorum 1 of {w1, w2}. */
static json_t *bundle_std(const struct world *w)
{
	json_t *b = bundle_bare(w, 1);
	struct cosig c1 = {&w->w1, W1, T0};

	add_cp(b, 0, cp_note(&w->a, 5, NULL, NULL, &c1, 1));
	add_cp(b, 0, cp_note(&w->a, NA, NULL, NULL, &c1, 1));
	add_cp(b, 1, cp_note(&w->b, NB, NULL, NULL, &c1, 1));
	return b;
}

/* Replaces record i of feed with a copy whose byte off (from the end when
 * negative) is xor-ed with 0x01. */
static void rec_flip(json_t *b, size_t feed, size_t i, long off)
{
	json_t *recs = recs_of(b, feed);
	const char *s = json_string_value(json_array_get(recs, i));
	size_t n = 0, cap = strlen(s);
	uint8_t *p = malloc(cap);
	char *e;

	assert_non_null(p);
	assert_int_equal(tl_b64_decode(p, cap, &n, s, strlen(s)), 0);
	p[off < 0 ? n - (size_t)(-off) : (size_t)off] ^= 0x01;
	e = b64_of(p, n);
	json_array_set_new(recs, i, json_string(e));
	free(e);
	free(p);
}

/* ----------------------------------------------------------- checking */

static const struct tl_verify_opts OPTS = {.quorum = -1, .threads = 2};

static void dump(const struct tl_verify_report *r)
{
	size_t n = r->nissues < 1000 ? r->nissues : 1000;

	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  issue: [%.20s...] seq %lld size %lld: %s\n", r->issues[i].origin,
		        (long long)r->issues[i].seq, (long long)r->issues[i].size,
		        r->issues[i].reason);
}

static int run_bundle(json_t *b, const struct tl_verify_opts *o, struct tl_verify_report *r)
{
	char *s = json_dumps(b, JSON_COMPACT);
	int rc;

	assert_non_null(s);
	rc = tl_verify_bundle(s, strlen(s), o, r);
	free(s);
	json_decref(b);
	return rc;
}

/* The issue about origin (NULL: any) at seq and size whose reason contains
 * needle, or NULL. */
static const struct tl_verify_issue *find(const struct tl_verify_report *r, const char *origin,
                                          int64_t seq, int64_t size, const char *needle)
{
	size_t n = r->nissues < 1000 ? r->nissues : 1000;

	for (size_t i = 0; i < n; i++) {
		const struct tl_verify_issue *is = &r->issues[i];

		if (origin && strcmp(is->origin, origin) != 0)
			continue;
		if (is->seq == seq && is->size == size && strstr(is->reason, needle))
			return is;
	}
	return NULL;
}

#define assert_issue(r, origin, seq, size, needle)                                          \
	do {                                                                                \
		if (!find((r), (origin), (seq), (size), (needle))) {                        \
			dump(r);                                                            \
			fail_msg("no issue seq %d size %d \"%s\"", (int)(seq), (int)(size), \
			         (needle));                                                 \
		}                                                                           \
	} while (0)

static size_t issues_for(const struct tl_verify_report *r, const char *origin)
{
	size_t n = r->nissues < 1000 ? r->nissues : 1000, k = 0;

	for (size_t i = 0; i < n; i++)
		k += strcmp(r->issues[i].origin, origin) == 0;
	return k;
}

#define assert_clean(rc, r)                                                               \
	do {                                                                              \
		if ((rc) != 0 || (r)->nissues != 0) {                                     \
			dump(r);                                                          \
			fail_msg("expected a clean result, got %d with %zu issues", (rc), \
			         (r)->nissues);                                           \
		}                                                                         \
	} while (0)

/* ------------------------------------------------------- bundle: valid */

static void check_std_report(const struct world *w, const struct tl_verify_report *r)
{
	uint8_t ra[TL_HASH_LEN], rb[TL_HASH_LEN];

	root_at(&w->a, NA, ra);
	root_at(&w->b, NB, rb);
	assert_int_equal(r->nfeeds, 2);
	assert_string_equal(r->feeds[0].origin, w->a.origin);
	assert_string_equal(r->feeds[1].origin, w->b.origin);
	assert_int_equal(r->feeds[0].records, NA);
	assert_int_equal(r->feeds[0].verified, NA);
	assert_int_equal(r->feeds[0].checkpoints, 2);
	assert_int_equal(r->feeds[0].max_checkpoint, NA);
	assert_int_equal(r->feeds[0].witnessed_size, NA);
	assert_memory_equal(r->feeds[0].root, ra, TL_HASH_LEN);
	assert_int_equal(r->feeds[1].records, NB);
	assert_int_equal(r->feeds[1].verified, NB);
	assert_int_equal(r->feeds[1].checkpoints, 1);
	assert_int_equal(r->feeds[1].max_checkpoint, NB);
	assert_int_equal(r->feeds[1].witnessed_size, NB);
	assert_memory_equal(r->feeds[1].root, rb, TL_HASH_LEN);
	assert_int_equal(r->quorum, 1);
	assert_int_equal(r->nwitnesses, 2);
	assert_int_equal(r->witnesses_from_bundle, 1);
}

static void test_bundle_valid(void **state)
{
	struct world *w = *state;
	static const unsigned threads[] = {0, 1, 2, 3, 64, 1000};

	for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
		struct tl_verify_opts o = OPTS;
		struct tl_verify_report r;
		int rc;

		o.threads = threads[i];
		rc = run_bundle(bundle_std(w), &o, &r);
		assert_clean(rc, &r);
		check_std_report(w, &r);
		tl_verify_report_release(&r);
	}
}

static void test_bundle_valid_no_opts(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	int rc = run_bundle(bundle_std(w), NULL, &r);

	assert_clean(rc, &r);
	check_std_report(w, &r);
	tl_verify_report_release(&r);
}

/* A feed with no records and a size-0 checkpoint: the empty tree root. */
static void test_bundle_empty_feed(void **state)
{
	struct world *w = *state;
	struct tfeed e;
	struct tl_verify_report r;
	uint8_t empty[TL_HASH_LEN];
	json_t *b = bundle_bare(w, 0);
	int rc;

	memset(&e, 0, sizeof e);
	feed_build(&e, 0xe0, w->a.kp.pk, 0);
	json_array_append_new(json_object_get(b, "feeds"), feed_json(&e));
	add_cp(b, 2, cp_note(&e, 0, NULL, NULL, NULL, 0));
	rc = run_bundle(b, &OPTS, &r);
	assert_clean(rc, &r);
	tl_merkle_empty_root(empty);
	assert_int_equal(r.nfeeds, 3);
	assert_int_equal(r.feeds[2].records, 0);
	assert_int_equal(r.feeds[2].checkpoints, 1);
	assert_int_equal(r.feeds[2].max_checkpoint, 0);
	assert_memory_equal(r.feeds[2].root, empty, TL_HASH_LEN);
	tl_verify_report_release(&r);
	feed_free(&e);
}

/* ----------------------------------------------------- bundle: records */

static void test_bundle_flipped_signature_byte(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_std(w);
	int rc;

	rec_flip(b, 0, 3, -1);
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_ESIG);
	assert_issue(&r, w->a.origin, 3, -1, "signature does not verify");
	assert_issue(&r, w->a.origin, 4, -1, "prev does not match the leaf hash of seq 3");
	assert_issue(&r, w->a.origin, -1, 5,
	             "checkpoint root for size 5 does not match the records");
	assert_null(find(&r, w->a.origin, 2, -1, ""));
	assert_null(find(&r, w->a.origin, 5, -1, ""));
	assert_int_equal(issues_for(&r, w->b.origin), 0);
	assert_int_equal(r.feeds[0].verified, NA - 2);
	assert_int_equal(r.feeds[0].checkpoints, 0);
	assert_int_equal(r.feeds[1].verified, NB);
	tl_verify_report_release(&r);
}

/* A byte inside prev (entry offset 120): still decodes, but neither the
 * chain nor the signature holds for that seq. */
static void test_bundle_flipped_entry_byte(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_std(w);
	int rc;

	rec_flip(b, 0, 3, 120);
	rc = run_bundle(b, &OPTS, &r);
	assert_int_not_equal(rc, 0);
	assert_issue(&r, w->a.origin, 3, -1, "prev does not match the leaf hash of seq 2");
	assert_issue(&r, w->a.origin, 3, -1, "signature does not verify");
	assert_int_equal(r.feeds[0].verified, NA - 2);
	tl_verify_report_release(&r);
}

static void test_bundle_records_reordered(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_std(w), *recs = recs_of(b, 0);
	json_t *r3 = json_incref(json_array_get(recs, 3));
	int rc;

	json_array_set(recs, 3, json_array_get(recs, 4));
	json_array_set_new(recs, 4, r3);
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_ECHAIN);
	assert_issue(&r, w->a.origin, 3, -1, "seq is 4 but the record is at position 3");
	assert_issue(&r, w->a.origin, 4, -1, "seq is 3 but the record is at position 4");
	assert_issue(&r, w->a.origin, 5, -1, "prev does not match the leaf hash of seq 4");
	assert_null(find(&r, w->a.origin, 3, -1, "signature"));
	assert_int_equal(issues_for(&r, w->b.origin), 0);
	tl_verify_report_release(&r);
}

static void test_bundle_record_removed(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_std(w);
	char want[128];
	int rc;

	json_array_remove(recs_of(b, 1), 4);
	rc = run_bundle(b, &OPTS, &r);
	assert_int_not_equal(rc, 0);
	assert_issue(&r, w->b.origin, 4, -1, "seq is 5 but the record is at position 4");
	assert_issue(&r, w->b.origin, 5, -1, "seq is 6 but the record is at position 5");
	snprintf(want, sizeof want, "checkpoint size %d exceeds the %d records in the bundle", NB,
	         NB - 1);
	assert_issue(&r, w->b.origin, -1, NB, want);
	assert_int_equal(r.feeds[1].records, NB - 1);
	assert_int_equal(r.feeds[1].verified, 4);
	assert_int_equal(issues_for(&r, w->a.origin), 0);
	tl_verify_report_release(&r);
}

static void test_bundle_record_garbage(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_std(w), *recs = recs_of(b, 0);
	int rc;

	json_array_set_new(recs, 1, json_string("not base64!"));
	json_array_set_new(recs, 2, json_integer(7));
	json_array_set_new(recs, 7, json_string("AAAA")); /* 3 zero bytes */
	rc = run_bundle(b, &OPTS, &r);
	assert_int_not_equal(rc, 0);
	assert_issue(&r, w->a.origin, 1, -1, "record is not valid base64");
	assert_issue(&r, w->a.origin, 2, -1, "record is not a JSON string");
	assert_issue(&r, w->a.origin, 3, -1, "prev cannot be checked");
	assert_issue(&r, w->a.origin, 7, -1, "record is malformed at byte");
	assert_issue(&r, w->a.origin, -1, NA, "cannot be checked: the record at position 1");
	/* Records before the damage still prove the size-5 root? No: 1 is unreadable. */
	assert_issue(&r, w->a.origin, -1, 5, "cannot be checked");
	assert_int_equal(issues_for(&r, w->b.origin), 0);
	tl_verify_report_release(&r);
}

/* A record of feed B placed in feed A. */
static void test_bundle_record_from_other_feed(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_std(w);
	char *s = b64_of(w->b.rec[2].data, w->b.rec[2].len);
	char want[256];
	int rc;

	json_array_set_new(recs_of(b, 0), 2, json_string(s));
	free(s);
	rc = run_bundle(b, &OPTS, &r);
	assert_int_not_equal(rc, 0);
	snprintf(want, sizeof want, "record belongs to feed %s", w->b.origin);
	assert_issue(&r, w->a.origin, 2, -1, want);
	assert_null(find(&r, w->a.origin, 2, -1, "signature does not verify"));
	tl_verify_report_release(&r);
}

/* ---------------------------------------------------- bundle: not JSON */

static void test_bundle_truncated(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_std(w);
	char *s = json_dumps(b, JSON_COMPACT);
	size_t len = strlen(s);

	assert_int_equal(tl_verify_bundle(s, len / 2, &OPTS, &r), TL_EFORMAT);
	assert_int_equal(r.nissues, 1);
	assert_non_null(strstr(r.issues[0].reason, "line 1, column"));
	assert_int_equal(r.nfeeds, 0);
	tl_verify_report_release(&r);
	/* Every strict prefix fails as not JSON, sampled. */
	for (size_t n = 0; n < len; n += 997) {
		assert_int_equal(tl_verify_bundle(s, n, &OPTS, &r), TL_EFORMAT);
		tl_verify_report_release(&r);
	}
	assert_int_equal(tl_verify_bundle(s, len - 1, &OPTS, &r), TL_EFORMAT);
	tl_verify_report_release(&r);
	free(s);
	json_decref(b);
}

static void test_bundle_not_a_bundle(void **state)
{
	static const char *bad[] = {
	        "[]",
	        "{}",
	        "{\"format\":\"tally-bundle/v2\",\"feeds\":[]}",
	        "{\"format\":\"tally-bundle/v1\"}",
	        "{\"format\":\"tally-bundle/v1\",\"feeds\":{}}",
	        "{\"format\":\"tally-bundle/v1\",\"format\":\"tally-bundle/v1\",\"feeds\":[]}",
	        "{\"format\":\"tally-bundle/v1\",\"feeds\":[]} x",
	        "",
	};
	struct tl_verify_report r;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = tl_verify_bundle(bad[i], strlen(bad[i]), &OPTS, &r);

		if (rc != TL_EFORMAT || r.nissues != 1)
			fail_msg("%s: got %d with %zu issues", bad[i], rc, r.nissues);
		tl_verify_report_release(&r);
	}
	/* The smallest bundle is valid. */
	{
		static const char *min = "{\"format\":\"tally-bundle/v1\",\"feeds\":[]}";

		assert_int_equal(tl_verify_bundle(min, strlen(min), &OPTS, &r), 0);
	}
	assert_int_equal(r.nfeeds, 0);
	tl_verify_report_release(&r);
}

static void test_bundle_feed_limit(void **state)
{
	struct tl_verify_report r;
	json_t *b = json_object(), *feeds = json_array();
	int rc;

	(void)state;
	for (int i = 0; i < 10000; i++)
		json_array_append_new(feeds, json_object());
	json_object_set_new(b, "format", json_string("tally-bundle/v1"));
	json_object_set_new(b, "feeds", feeds);
	json_incref(b);
	/* 10000 feeds are read (each a finding: no origin), 10001 are refused. */
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EPROOF);
	assert_int_equal(r.nfeeds, 10000);
	assert_null(find(&r, "", -1, -1, "feeds in the bundle"));
	tl_verify_report_release(&r);
	json_array_append_new(feeds, json_object());
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_ETOOBIG);
	assert_int_equal(r.nissues, 1);
	assert_non_null(find(&r, "", -1, -1, "10001 feeds"));
	tl_verify_report_release(&r);
}

/* Malformed feed objects are findings, not a reason to stop. */
static void test_bundle_bad_feed_objects(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_std(w), *feeds = json_object_get(b, "feeds");
	int rc;

	json_array_append_new(feeds, json_integer(1));
	json_array_append_new(feeds, json_object());
	json_array_append_new(feeds, json_pack("{s:s}", "origin", "example.com/log"));
	rc = run_bundle(b, &OPTS, &r);
	assert_int_not_equal(rc, 0);
	assert_int_equal(r.nfeeds, 5);
	assert_issue(&r, "", -1, -1, "feed 2 is not a JSON object");
	assert_issue(&r, "", -1, -1, "feed 3 has no \"origin\"");
	assert_issue(&r, "example.com/log", -1, -1, "origin is not a Tally origin");
	assert_issue(&r, "example.com/log", -1, -1, "no \"records\" array");
	assert_int_equal(issues_for(&r, w->a.origin), 0);
	assert_int_equal(r.feeds[0].verified, NA);
	tl_verify_report_release(&r);
}

static void test_bundle_duplicate_feed(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_std(w);
	int rc;

	json_array_append_new(json_object_get(b, "feeds"), feed_json(&w->b));
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EFORK);
	assert_issue(&r, w->b.origin, -1, -1, "appears more than once");
	tl_verify_report_release(&r);
}

/* ------------------------------------------------- bundle: checkpoints */

static void test_bundle_checkpoint_root_lies(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	uint8_t root4[TL_HASH_LEN];
	json_t *b = bundle_std(w);
	int rc;

	root_at(&w->a, 4, root4);
	add_cp(b, 0, cp_note(&w->a, 6, root4, NULL, NULL, 0));
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EPROOF);
	assert_int_equal(r.nissues, 1);
	assert_issue(&r, w->a.origin, -1, 6,
	             "checkpoint root for size 6 does not match the records");
	assert_int_equal(r.feeds[0].checkpoints, 2);
	assert_int_equal(r.feeds[0].verified, NA);
	tl_verify_report_release(&r);
}

/* Size = records is fine (the reference bundle); records + 1 is not. */
static void test_bundle_checkpoint_beyond_records(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	uint8_t root[TL_HASH_LEN] = {1};
	json_t *b = bundle_std(w);
	char want[128];
	int rc;

	add_cp(b, 1, cp_note(&w->b, NB + 1, root, NULL, NULL, 0));
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_ERANGE);
	snprintf(want, sizeof want, "checkpoint size %d exceeds the %d records in the bundle",
	         NB + 1, NB);
	assert_issue(&r, w->b.origin, -1, NB + 1, want);
	assert_int_equal(r.nissues, 1);
	assert_int_equal(r.feeds[1].max_checkpoint, NB);
	tl_verify_report_release(&r);
}

static void test_bundle_checkpoint_other_key(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_bare(w, 0);
	int rc;

	add_cp(b, 0, cp_note(&w->a, 8, NULL, &w->b.kp, NULL, 0));
	add_cp(b, 0, cp_note(&w->a, 9, NULL, NULL, NULL, 0));
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_ESIG);
	assert_int_equal(r.nissues, 1);
	assert_issue(&r, w->a.origin, -1, 8, "checkpoint is not signed by the feed key");
	assert_int_equal(r.feeds[0].checkpoints, 1);
	assert_int_equal(r.feeds[0].max_checkpoint, 9);
	tl_verify_report_release(&r);
}

/* The signature line names the feed key but the signature is wrong. */
static void test_bundle_checkpoint_bad_signature(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_bare(w, 0);
	char *note = cp_note(&w->a, 8, NULL, NULL, NULL, 0);
	char *line = strstr(note, "\n\xe2\x80\x94 ");
	int rc;

	assert_non_null(line);
	line += 6 + strlen(w->a.origin) + 20; /* "\n— origin " then inside the signature */
	*line = *line == 'A' ? 'B' : 'A';
	add_cp(b, 0, note);
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_ESIG);
	assert_issue(&r, w->a.origin, -1, 8, "checkpoint signature does not verify");
	assert_int_equal(r.feeds[0].checkpoints, 0);
	tl_verify_report_release(&r);
}

static void test_bundle_checkpoint_garbage(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_bare(w, 0);
	int rc;

	json_array_append_new(cps_of(b, 0), json_string("hello"));
	json_array_append_new(cps_of(b, 0), json_integer(3));
	add_cp(b, 0, cp_note(&w->b, 3, NULL, NULL, NULL, 0)); /* B's checkpoint in A */
	rc = run_bundle(b, &OPTS, &r);
	assert_int_not_equal(rc, 0);
	assert_issue(&r, w->a.origin, -1, -1, "checkpoint 0 is not a signed note");
	assert_issue(&r, w->a.origin, -1, -1, "checkpoint 1 is not a JSON string");
	assert_issue(&r, w->a.origin, -1, 3, "checkpoint origin");
	assert_int_equal(r.feeds[0].checkpoints, 0);
	assert_int_equal(r.feeds[0].verified, NA);
	tl_verify_report_release(&r);
}

/* ------------------------------------------------------ bundle: keys */

static void test_bundle_vkey_not_origin(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	struct tl_vkey vk;
	json_t *b;
	char *s;
	int rc;

	/* B's vkey on feed A: another name. */
	b = bundle_std(w);
	s = vkey_str(&w->b.vk);
	json_object_set_new(feed_at(b, 0), "vkey", json_string(s));
	free(s);
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EKEY);
	assert_issue(&r, w->a.origin, -1, -1, "is not the origin");
	assert_int_equal(r.feeds[0].checkpoints, 0);
	assert_int_equal(issues_for(&r, w->b.origin), 0);
	tl_verify_report_release(&r);

	/* A's name with B's key: the origin binds the key. */
	b = bundle_std(w);
	assert_int_equal(tl_vkey_from_pub(&vk, w->a.origin, TL_SIGTYPE_ED25519, w->b.kp.pk), 0);
	s = vkey_str(&vk);
	json_object_set_new(feed_at(b, 0), "vkey", json_string(s));
	free(s);
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EKEY);
	assert_issue(&r, w->a.origin, -1, -1, "vkey public key is not the key the origin names");
	assert_int_equal(r.feeds[0].checkpoints, 0);
	tl_verify_report_release(&r);

	/* A witness key where the feed key belongs. */
	b = bundle_std(w);
	assert_int_equal(tl_vkey_from_pub(&vk, w->a.origin, TL_SIGTYPE_COSIG, w->a.kp.pk), 0);
	s = vkey_str(&vk);
	json_object_set_new(feed_at(b, 0), "vkey", json_string(s));
	free(s);
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EKEY);
	assert_issue(&r, w->a.origin, -1, -1, "not an Ed25519 (type 0x01) key");
	tl_verify_report_release(&r);

	/* No vkey at all. */
	b = bundle_std(w);
	json_object_del(feed_at(b, 1), "vkey");
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EKEY);
	assert_issue(&r, w->b.origin, -1, -1, "vkey is missing");
	tl_verify_report_release(&r);
}

static void test_bundle_trusted_logs(void **state)
{
	struct world *w = *state;
	struct tl_verify_opts o = OPTS;
	struct tl_verify_report r;
	struct tl_vkey both[2] = {w->a.vk, w->b.vk};
	int rc;

	o.logs = &w->b.vk;
	o.nlogs = 1;
	rc = run_bundle(bundle_std(w), &o, &r);
	assert_int_equal(rc, TL_EKEY);
	assert_issue(&r, w->a.origin, -1, -1, "key not trusted");
	assert_null(find(&r, w->a.origin, 0, -1, ""));
	assert_int_equal(issues_for(&r, w->b.origin), 0);
	assert_int_equal(r.feeds[0].checkpoints, 0);
	assert_int_equal(r.feeds[1].checkpoints, 1);
	tl_verify_report_release(&r);

	o.logs = both;
	o.nlogs = 2;
	rc = run_bundle(bundle_std(w), &o, &r);
	assert_clean(rc, &r);
	tl_verify_report_release(&r);
}

/* ------------------------------------------------ bundle: cosignatures */

static void test_bundle_bad_cosignature(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	struct cosig c1 = {&w->w1, W1, T0};
	json_t *b = bundle_bare(w, 1);
	char *note = cp_note(&w->a, NA, NULL, NULL, &c1, 1);
	char *line = strstr(note, "\xe2\x80\x94 " W1 " ");
	int rc;

	assert_non_null(line);
	line += 4 + strlen(W1) + 1 + 30; /* inside the Ed25519 signature */
	*line = *line == 'A' ? 'B' : 'A';
	add_cp(b, 0, cp_note(&w->a, 5, NULL, NULL, &c1, 1));
	add_cp(b, 0, note);
	add_cp(b, 1, cp_note(&w->b, NB, NULL, NULL, &c1, 1));
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_ESIG);
	assert_int_equal(r.nissues, 1);
	assert_issue(&r, w->a.origin, -1, NA, "cosignature by " W1 " does not verify");
	assert_int_equal(r.feeds[0].checkpoints, 2);
	assert_int_equal(r.feeds[0].witnessed_size, 5);
	tl_verify_report_release(&r);
}

/* A bundle whose checkpoints carry the cosignatures cs. */
static json_t *bundle_cosigned(const struct world *w, int q, const struct cosig *cs, size_t n)
{
	json_t *b = bundle_bare(w, q);

	add_cp(b, 0, cp_note(&w->a, NA, NULL, NULL, cs, n));
	add_cp(b, 1, cp_note(&w->b, NB, NULL, NULL, cs, n));
	return b;
}

static void test_bundle_quorum(void **state)
{
	struct world *w = *state;
	struct tl_verify_opts o = OPTS;
	struct tl_verify_report r;
	struct cosig one[] = {{&w->w1, W1, T0}};
	struct cosig two[] = {{&w->w1, W1, T0}, {&w->w2, W2, T0 + 1}};
	struct cosig stranger[] = {{&w->w1, W1, T0}, {&w->w3, W3, T0}};
	struct cosig twice[] = {{&w->w1, W1, T0}, {&w->w1, W1, T0 + 5}};
	int rc;

	/* quorum 2 by option, one valid cosignature: one short. */
	o.quorum = 2;
	rc = run_bundle(bundle_cosigned(w, 1, one, 1), &o, &r);
	assert_int_equal(rc, TL_EQUORUM);
	assert_int_equal(r.quorum, 2);
	assert_issue(&r, w->a.origin, -1, -1, "no checkpoint has a quorum of 2");
	assert_issue(&r, w->b.origin, -1, -1, "no checkpoint has a quorum of 2");
	assert_int_equal(r.feeds[0].witnessed_size, 0);
	assert_int_equal(r.feeds[0].checkpoints, 1);
	tl_verify_report_release(&r);

	/* Exactly reached. */
	rc = run_bundle(bundle_cosigned(w, 1, two, 2), &o, &r);
	assert_clean(rc, &r);
	assert_int_equal(r.feeds[0].witnessed_size, NA);
	assert_int_equal(r.feeds[1].witnessed_size, NB);
	tl_verify_report_release(&r);

	/* The bundle's own quorum when the option is < 0. */
	rc = run_bundle(bundle_cosigned(w, 2, one, 1), &OPTS, &r);
	assert_int_equal(rc, TL_EQUORUM);
	assert_int_equal(r.quorum, 2);
	tl_verify_report_release(&r);
	rc = run_bundle(bundle_cosigned(w, 2, two, 2), &OPTS, &r);
	assert_clean(rc, &r);
	tl_verify_report_release(&r);

	/* A cosigner outside the witness set does not count. */
	rc = run_bundle(bundle_cosigned(w, 2, stranger, 2), &OPTS, &r);
	assert_int_equal(rc, TL_EQUORUM);
	tl_verify_report_release(&r);

	/* One witness signing twice is still one. */
	rc = run_bundle(bundle_cosigned(w, 2, twice, 2), &OPTS, &r);
	assert_int_equal(rc, TL_EQUORUM);
	tl_verify_report_release(&r);

	/* The caller's witnesses replace the bundle's. */
	{
		struct tl_vkey mine[2] = {w->wv1, w->wv3};

		o.witnesses = mine;
		o.nwitnesses = 2;
		rc = run_bundle(bundle_cosigned(w, 0, stranger, 2), &o, &r);
		assert_clean(rc, &r);
		assert_int_equal(r.witnesses_from_bundle, 0);
		assert_int_equal(r.nwitnesses, 2);
		tl_verify_report_release(&r);
		o.witnesses = NULL;
		o.nwitnesses = 0;
	}

	/* quorum 0: no cosignature needed at all. */
	o.quorum = 0;
	rc = run_bundle(bundle_cosigned(w, 2, NULL, 0), &o, &r);
	assert_clean(rc, &r);
	assert_int_equal(r.feeds[0].witnessed_size, NA);
	tl_verify_report_release(&r);
}

static void test_bundle_quorum_invalid(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	struct cosig two[] = {{&w->w1, W1, T0}, {&w->w2, W2, T0}};
	const struct tl_vkey *dup[] = {&w->wv1, &w->wv1};
	json_t *b;
	int rc;

	/* 3 of 2 witnesses. */
	rc = run_bundle(bundle_cosigned(w, 3, two, 2), &OPTS, &r);
	assert_int_equal(rc, TL_EQUORUM);
	assert_issue(&r, "", -1, -1, "quorum 3 exceeds the 2 witness keys");
	tl_verify_report_release(&r);

	/* The same key listed twice is one witness. */
	b = bundle_cosigned(w, 2, two, 2);
	set_witnesses(b, dup, 2);
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EQUORUM);
	assert_issue(&r, "", -1, -1, "quorum 2 exceeds the 1 witness keys");
	tl_verify_report_release(&r);

	/* Not an integer. */
	b = bundle_cosigned(w, 1, two, 2);
	json_object_set_new(b, "quorum", json_real(1.0));
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EQUORUM);
	assert_issue(&r, "", -1, -1, "\"quorum\" is not a non-negative integer");
	tl_verify_report_release(&r);

	b = bundle_cosigned(w, 1, two, 2);
	json_object_set_new(b, "quorum", json_integer(-1));
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EQUORUM);
	tl_verify_report_release(&r);

	/* A caller's witness key of the wrong type is refused, not used. */
	{
		struct tl_verify_opts o = OPTS;
		struct tl_vkey mine[2] = {w->a.vk, w->wv1};

		o.witnesses = mine;
		o.nwitnesses = 2;
		o.quorum = 1;
		rc = run_bundle(bundle_cosigned(w, 1, two, 2), &o, &r);
		assert_int_equal(rc, TL_EKEY);
		assert_issue(&r, "", -1, -1, "is not a cosignature key (type 0x04)");
		assert_int_equal(r.nwitnesses, 1);
		assert_int_equal(r.feeds[0].witnessed_size, NA);
		tl_verify_report_release(&r);
	}

	/* A witness entry that is not a cosignature vkey. */
	b = bundle_cosigned(w, 1, two, 2);
	json_array_append_new(json_object_get(b, "witnesses"), json_string("nonsense"));
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EKEY);
	assert_issue(&r, "", -1, -1, "witness 2 is not a valid vkey");
	assert_int_equal(r.nwitnesses, 2);
	tl_verify_report_release(&r);
}

/* Skew: a cosignature dated now + 600 s is valid, now + 601 s is not. */
static void test_bundle_cosignature_future(void **state)
{
	struct world *w = *state;
	struct tl_verify_opts o = OPTS;
	struct tl_verify_report r;
	struct cosig late[] = {{&w->w1, W1, T0 + 3600}};
	int rc;

	o.now = T0;
	rc = run_bundle(bundle_cosigned(w, 1, late, 1), &o, &r);
	assert_int_equal(rc, TL_ESIG);
	assert_issue(&r, w->a.origin, -1, NA, "more than 600 s after the verifier's clock");
	assert_issue(&r, w->a.origin, -1, -1, "no checkpoint has a quorum of 1");
	assert_int_equal(r.feeds[0].witnessed_size, 0);
	tl_verify_report_release(&r);

	o.now = T0 + 3000; /* exactly 600 s ahead */
	rc = run_bundle(bundle_cosigned(w, 1, late, 1), &o, &r);
	assert_clean(rc, &r);
	assert_int_equal(r.feeds[0].witnessed_size, NA);
	tl_verify_report_release(&r);

	o.now = T0 + 2999; /* 601 s ahead */
	rc = run_bundle(bundle_cosigned(w, 1, late, 1), &o, &r);
	assert_int_not_equal(rc, 0);
	assert_issue(&r, w->b.origin, -1, NB, "more than 600 s");
	tl_verify_report_release(&r);

	o.now = 0; /* no clock: no skew check */
	rc = run_bundle(bundle_cosigned(w, 1, late, 1), &o, &r);
	assert_clean(rc, &r);
	tl_verify_report_release(&r);
}

/* Findings past the cap are counted, not kept. */
static void test_bundle_issue_cap(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	json_t *b = bundle_bare(w, 0);
	json_t *recs = recs_of(b, 0);
	int rc;

	for (int i = 0; i < 1200; i++)
		json_array_append_new(recs, json_string("@@@@"));
	rc = run_bundle(b, &OPTS, &r);
	assert_int_equal(rc, TL_EPROOF);
	assert_int_equal(r.nissues, 1200);
	assert_true(r.issues_cap <= 1000);
	assert_issue(&r, w->a.origin, NA + 999, -1, "not valid base64");
	assert_null(find(&r, w->a.origin, NA + 1000, -1, ""));
	tl_verify_report_release(&r);
}

/* ----------------------------------------------------------- tlog-proof */

static char *proof_text(const struct world *w, size_t idx, uint64_t claim_idx, int alter,
                        int flip_extra)
{
	struct cosig c1 = {&w->w1, W1, T0};
	char *note = cp_note(&w->a, 10, NULL, NULL, &c1, 1);
	uint8_t(*proof)[TL_HASH_LEN] = calloc(TL_MERKLE_MAX_PROOF, TL_HASH_LEN);
	struct tl_merkle_mem m;
	struct tl_merkle_src src;
	struct tl_buf out;
	uint8_t *rec = malloc(w->a.rec[idx].len);
	size_t n = 0;
	char *s;

	assert_non_null(proof);
	assert_non_null(rec);
	memcpy(rec, w->a.rec[idx].data, w->a.rec[idx].len);
	if (flip_extra)
		rec[w->a.rec[idx].len / 2] ^= 0x01;
	assert_int_equal(tl_merkle_mem_build(&m, (const uint8_t(*)[TL_HASH_LEN])w->a.leaf, 10), 0);
	src = tl_merkle_mem_src(&m);
	assert_int_equal(tl_merkle_inclusion_proof(&src, idx, 10, proof, TL_MERKLE_MAX_PROOF, &n),
	                 0);
	if (alter)
		proof[n - 1][7] ^= 0x80;
	tl_buf_init(&out, TL_NOTE_MAX * 2);
	assert_int_equal(tl_tlog_proof_format(&out, rec, w->a.rec[idx].len, claim_idx,
	                                      (const uint8_t(*)[TL_HASH_LEN])proof, n, note,
	                                      strlen(note)),
	                 0);
	s = strdup(tl_buf_cstr(&out));
	tl_buf_release(&out);
	tl_merkle_mem_release(&m);
	free(proof);
	free(rec);
	free(note);
	return s;
}

static void test_proof_valid(void **state)
{
	struct world *w = *state;
	struct tl_verify_opts o = OPTS;
	struct tl_verify_report r;
	uint8_t root[TL_HASH_LEN];
	char *p = proof_text(w, 6, 6, 0, 0);
	int rc;

	rc = tl_verify_tlog_proof(p, strlen(p), &OPTS, &r);
	assert_clean(rc, &r);
	root_at(&w->a, 10, root);
	assert_int_equal(r.nfeeds, 1);
	assert_string_equal(r.feeds[0].origin, w->a.origin);
	assert_int_equal(r.feeds[0].records, 1);
	assert_int_equal(r.feeds[0].verified, 1);
	assert_int_equal(r.feeds[0].checkpoints, 1);
	assert_int_equal(r.feeds[0].max_checkpoint, 10);
	assert_int_equal(r.feeds[0].witnessed_size, 10);
	assert_int_equal(r.quorum, 0);
	assert_memory_equal(r.feeds[0].root, root, TL_HASH_LEN);
	tl_verify_report_release(&r);

	/* Witnessed: quorum 1 of {w1, w2} reached, quorum 2 one short. */
	{
		struct tl_vkey ws[2] = {w->wv1, w->wv2};

		o.witnesses = ws;
		o.nwitnesses = 2;
		o.quorum = 1;
		rc = tl_verify_tlog_proof(p, strlen(p), &o, &r);
		assert_clean(rc, &r);
		assert_int_equal(r.feeds[0].witnessed_size, 10);
		tl_verify_report_release(&r);
		o.quorum = 2;
		rc = tl_verify_tlog_proof(p, strlen(p), &o, &r);
		assert_int_equal(rc, TL_EQUORUM);
		assert_issue(&r, w->a.origin, -1, 10, "1 valid cosignatures on the checkpoint");
		assert_int_equal(r.feeds[0].witnessed_size, 0);
		tl_verify_report_release(&r);
		/* And the cosignature's clock. */
		o.quorum = 1;
		o.now = T0 - 600;
		rc = tl_verify_tlog_proof(p, strlen(p), &o, &r);
		assert_clean(rc, &r);
		tl_verify_report_release(&r);
		o.now = T0 - 601;
		rc = tl_verify_tlog_proof(p, strlen(p), &o, &r);
		assert_int_not_equal(rc, 0);
		assert_issue(&r, w->a.origin, -1, 10, "more than 600 s");
		tl_verify_report_release(&r);
	}

	/* Trusted logs. */
	o = OPTS;
	o.logs = &w->b.vk;
	o.nlogs = 1;
	rc = tl_verify_tlog_proof(p, strlen(p), &o, &r);
	assert_int_equal(rc, TL_EKEY);
	assert_issue(&r, w->a.origin, -1, 10, "key not trusted");
	tl_verify_report_release(&r);
	o.logs = &w->a.vk;
	rc = tl_verify_tlog_proof(p, strlen(p), &o, &r);
	assert_clean(rc, &r);
	tl_verify_report_release(&r);
	free(p);

	/* First and last leaf. */
	for (size_t i = 0; i < 10; i += 9) {
		p = proof_text(w, i, i, 0, 0);
		rc = tl_verify_tlog_proof(p, strlen(p), &OPTS, &r);
		assert_clean(rc, &r);
		tl_verify_report_release(&r);
		free(p);
	}
}

static void test_proof_extra_flipped(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	char *p = proof_text(w, 6, 6, 0, 1);
	int rc = tl_verify_tlog_proof(p, strlen(p), &OPTS, &r);

	assert_int_not_equal(rc, 0);
	assert_true(find(&r, w->a.origin, 6, 10, "signature does not verify") ||
	            find(&r, w->a.origin, 6, 10, "malformed"));
	assert_issue(&r, w->a.origin, 6, 10,
	             "inclusion proof of index 6 in size 10 does not verify");
	assert_int_equal(r.feeds[0].verified, 0);
	assert_int_equal(r.feeds[0].checkpoints, 0);
	tl_verify_report_release(&r);
	free(p);
}

static void test_proof_wrong_index(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	char *p = proof_text(w, 6, 5, 0, 0);
	int rc = tl_verify_tlog_proof(p, strlen(p), &OPTS, &r);

	assert_int_equal(rc, TL_ECHAIN);
	assert_issue(&r, w->a.origin, 5, 10, "index 5 is not the record's seq 6");
	assert_issue(&r, w->a.origin, 5, 10, "inclusion proof of index 5");
	tl_verify_report_release(&r);
	free(p);
}

static void test_proof_hash_altered(void **state)
{
	struct world *w = *state;
	struct tl_verify_report r;
	char *p = proof_text(w, 6, 6, 1, 0);
	int rc = tl_verify_tlog_proof(p, strlen(p), &OPTS, &r);

	assert_int_equal(rc, TL_EPROOF);
	assert_int_equal(r.nissues, 1);
	assert_issue(&r, w->a.origin, 6, 10,
	             "inclusion proof of index 6 in size 10 does not verify");
	assert_int_equal(r.feeds[0].verified, 0);
	tl_verify_report_release(&r);
	free(p);
}

/* A tlog-proof without a Tally record in extra, and non-proofs. */
static void test_proof_not_tally(void **state)
{
	struct world *w = *state;
	struct tl_verify_opts o = OPTS;
	struct tl_verify_report r;
	struct tl_vkey witness[2];
	size_t len, vlen;
	char *p = th_read_file("tests/vectors/notes/leaf5.tlog-proof", &len);
	char *vk = th_read_file("tests/vectors/notes/cosigned-checkpoint.vkeys", &vlen);
	char *nl;
	int rc;

	assert_non_null(p);
	assert_non_null(vk);
	nl = strchr(vk, '\n');
	assert_non_null(nl);
	assert_int_equal(tl_vkey_parse(&witness[0], nl + 1, strcspn(nl + 1, "\n")), 0);
	o.witnesses = witness;
	o.nwitnesses = 1;
	o.quorum = 1;
	rc = tl_verify_tlog_proof(p, len, &o, &r);
	assert_int_not_equal(rc, 0);
	assert_issue(&r, "example.com/ledger-test", 5, 8, "no extra line");
	assert_issue(&r, "example.com/ledger-test", -1, 8, "not a Tally origin");
	/* The cosignature itself is fine. */
	assert_null(find(&r, NULL, -1, 8, "cosignature"));
	tl_verify_report_release(&r);
	free(p);
	free(vk);

	(void)w;
	rc = tl_verify_tlog_proof("hello\n", 6, &OPTS, &r);
	assert_int_equal(rc, TL_EFORMAT);
	assert_int_equal(r.nfeeds, 0);
	assert_issue(&r, "", -1, -1, "not a tlog-proof");
	tl_verify_report_release(&r);
}

/* Every strict prefix of a witnessed proof fails cleanly. */
static void test_proof_prefixes(void **state)
{
	struct world *w = *state;
	struct tl_verify_opts o = OPTS;
	struct tl_verify_report r;
	char *p = proof_text(w, 3, 3, 0, 0);
	size_t len = strlen(p);

	o.witnesses = &w->wv1;
	o.nwitnesses = 1;
	o.quorum = 1;
	assert_int_equal(tl_verify_tlog_proof(p, len, &o, &r), 0);
	tl_verify_report_release(&r);
	for (size_t n = 0; n < len; n++) {
		int rc = tl_verify_tlog_proof(p, n, &o, &r);

		if (rc == 0)
			fail_msg("prefix of %zu bytes verified", n);
		tl_verify_report_release(&r);
	}
	free(p);
}

/* ---------------------------------------------------------------- notes */

static char *vec(const char *name, size_t *len)
{
	char path[256];
	char *s;

	snprintf(path, sizeof path, "tests/vectors/notes/%s", name);
	s = th_read_file(path, len);
	if (!s)
		fail_msg("missing %s (run from the repository root)", path);
	return s;
}

static void vkey_line(struct tl_vkey *vk, const char *file, int line)
{
	size_t len;
	char *s = vec(file, &len), *p = s;

	for (int i = 0; i < line; i++) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	assert_int_equal(tl_vkey_parse(vk, p, strcspn(p, "\n")), 0);
	free(s);
}

static void test_note_c2sp_example(void **state)
{
	struct tl_verify_opts o = OPTS;
	struct tl_verify_report r;
	struct tl_vkey good, other;
	size_t len;
	char *n = vec("c2sp-example.note", &len);
	int rc;

	(void)state;
	vkey_line(&good, "c2sp-example.vkey", 0);
	vkey_line(&other, "xmod-peterneumann.vkey", 0);
	o.logs = &good;
	o.nlogs = 1;
	rc = tl_verify_note(n, len, &o, &r);
	assert_clean(rc, &r);
	assert_int_equal(r.nfeeds, 0);
	tl_verify_report_release(&r);

	o.logs = &other;
	rc = tl_verify_note(n, len, &o, &r);
	assert_int_equal(rc, TL_EKEY);
	assert_issue(&r, "", -1, -1, "no signature by a trusted key");
	tl_verify_report_release(&r);

	/* No keys at all: nothing to trust. */
	rc = tl_verify_note(n, len, &OPTS, &r);
	assert_int_equal(rc, TL_EKEY);
	tl_verify_report_release(&r);

	/* One trusted key fails, another verifies: still an error. */
	{
		char *bad = strdup(n);
		char *sig = strstr(bad, "Uw2QOkn8");
		struct tl_vkey two[2] = {other, good};

		sig[12] = sig[12] == 'A' ? 'B' : 'A';
		o.logs = &good;
		rc = tl_verify_note(bad, len, &o, &r);
		assert_int_equal(rc, TL_ESIG);
		assert_issue(&r, "", -1, -1, "signature by example.com/foo does not verify");
		tl_verify_report_release(&r);
		o.logs = two;
		o.nlogs = 2;
		rc = tl_verify_note(n, len, &o, &r);
		assert_clean(rc, &r);
		tl_verify_report_release(&r);
		free(bad);
	}

	rc = tl_verify_note("no signature\n", 13, &o, &r);
	assert_int_equal(rc, TL_EFORMAT);
	tl_verify_report_release(&r);
	free(n);
}

static void test_note_cosigned_checkpoint(void **state)
{
	struct tl_verify_opts o = OPTS;
	struct tl_verify_report r;
	struct tl_vkey log, wit, wrong_wit, wrong_log;
	struct tl_keypair kp;
	uint8_t root[TL_HASH_LEN];
	size_t len, rlen;
	char *n = vec("cosigned-checkpoint.txt", &len);
	int rc;

	(void)state;
	vkey_line(&log, "cosigned-checkpoint.vkeys", 0);
	vkey_line(&wit, "cosigned-checkpoint.vkeys", 1);
	seeded(&kp, 0x44);
	assert_int_equal(tl_vkey_from_pub(&wrong_wit, wit.name, TL_SIGTYPE_COSIG, kp.pk), 0);
	assert_int_equal(tl_vkey_from_pub(&wrong_log, log.name, TL_SIGTYPE_ED25519, kp.pk), 0);
	assert_int_equal(tl_b64_decode(root, sizeof root, &rlen,
	                               "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", 44),
	                 0);

	o.logs = &log;
	o.nlogs = 1;
	o.witnesses = &wit;
	o.nwitnesses = 1;
	o.quorum = 1;
	rc = tl_verify_note(n, len, &o, &r);
	assert_clean(rc, &r);
	assert_int_equal(r.nfeeds, 1);
	assert_string_equal(r.feeds[0].origin, "example.com/ledger-test");
	assert_int_equal(r.feeds[0].max_checkpoint, 8);
	assert_int_equal(r.feeds[0].witnessed_size, 8);
	assert_int_equal(r.feeds[0].checkpoints, 1);
	assert_memory_equal(r.feeds[0].root, root, TL_HASH_LEN);
	assert_int_equal(r.quorum, 1);
	assert_int_equal(r.nwitnesses, 1);
	tl_verify_report_release(&r);

	/* The cosignature is dated 1700000000: skew boundary. */
	o.now = 1700000000 - 600;
	rc = tl_verify_note(n, len, &o, &r);
	assert_clean(rc, &r);
	tl_verify_report_release(&r);
	o.now = 1700000000 - 601;
	rc = tl_verify_note(n, len, &o, &r);
	assert_int_equal(rc, TL_ESIG);
	assert_issue(&r, "example.com/ledger-test", -1, 8, "more than 600 s");
	assert_issue(&r, "example.com/ledger-test", -1, 8, "0 valid cosignatures");
	tl_verify_report_release(&r);
	o.now = 0;

	/* Wrong witness key: quorum 1 not reached; quorum 0 is fine. */
	o.witnesses = &wrong_wit;
	rc = tl_verify_note(n, len, &o, &r);
	assert_int_equal(rc, TL_EQUORUM);
	assert_int_equal(r.feeds[0].witnessed_size, 0);
	tl_verify_report_release(&r);
	o.quorum = 0;
	rc = tl_verify_note(n, len, &o, &r);
	assert_clean(rc, &r);
	tl_verify_report_release(&r);

	/* Wrong log key. */
	o.witnesses = &wit;
	o.quorum = 1;
	o.logs = &wrong_log;
	rc = tl_verify_note(n, len, &o, &r);
	assert_int_equal(rc, TL_EKEY);
	assert_issue(&r, "example.com/ledger-test", -1, 8, "no signature by a trusted key");
	assert_int_equal(r.feeds[0].checkpoints, 0);
	tl_verify_report_release(&r);
	free(n);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bundle_valid),
	        cmocka_unit_test(test_bundle_valid_no_opts),
	        cmocka_unit_test(test_bundle_empty_feed),
	        cmocka_unit_test(test_bundle_flipped_signature_byte),
	        cmocka_unit_test(test_bundle_flipped_entry_byte),
	        cmocka_unit_test(test_bundle_records_reordered),
	        cmocka_unit_test(test_bundle_record_removed),
	        cmocka_unit_test(test_bundle_record_garbage),
	        cmocka_unit_test(test_bundle_record_from_other_feed),
	        cmocka_unit_test(test_bundle_truncated),
	        cmocka_unit_test(test_bundle_not_a_bundle),
	        cmocka_unit_test(test_bundle_feed_limit),
	        cmocka_unit_test(test_bundle_bad_feed_objects),
	        cmocka_unit_test(test_bundle_duplicate_feed),
	        cmocka_unit_test(test_bundle_checkpoint_root_lies),
	        cmocka_unit_test(test_bundle_checkpoint_beyond_records),
	        cmocka_unit_test(test_bundle_checkpoint_other_key),
	        cmocka_unit_test(test_bundle_checkpoint_bad_signature),
	        cmocka_unit_test(test_bundle_checkpoint_garbage),
	        cmocka_unit_test(test_bundle_vkey_not_origin),
	        cmocka_unit_test(test_bundle_trusted_logs),
	        cmocka_unit_test(test_bundle_bad_cosignature),
	        cmocka_unit_test(test_bundle_quorum),
	        cmocka_unit_test(test_bundle_quorum_invalid),
	        cmocka_unit_test(test_bundle_cosignature_future),
	        cmocka_unit_test(test_bundle_issue_cap),
	        cmocka_unit_test(test_proof_valid),
	        cmocka_unit_test(test_proof_extra_flipped),
	        cmocka_unit_test(test_proof_wrong_index),
	        cmocka_unit_test(test_proof_hash_altered),
	        cmocka_unit_test(test_proof_not_tally),
	        cmocka_unit_test(test_proof_prefixes),
	        cmocka_unit_test(test_note_c2sp_example),
	        cmocka_unit_test(test_note_cosigned_checkpoint),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
