/*
 * test_state.c — the channel state machine (issue 4 item 6): statuses over
 * the whole cycle, authority of person keys on both sides of a revocation,
 * person signatures, deadlines on both sides of the boundary, terms,
 * invalid bodies as findings, and the property that the state depends only
 * on the two feeds' contents, never on how their records were presented.
 */
#include "tests/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/state.h"
#include "consensus/tl_consensus.h"
#include "node/tl_node.h"

#define T0  1790000000000ull /* a claimed time, ms */
#define DAY TL_DAY_MS

/* ------------------------------------------------------------ fixture */

struct tfeed {
	struct tl_keypair kp;
	char origin[TL_ORIGIN_LEN + 1];
	size_t n, cap;
	uint8_t **recs;
	size_t *lens;
	uint64_t *wit;
	uint8_t (*leaf)[TL_HASH_LEN];
};

struct chan {
	struct tfeed s, c;
	struct tl_keypair approver, clerk, director, other;
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
	key(&ch->clerk, 4);
	key(&ch->director, 5);
	key(&ch->other, 6);
	tl_channel_id(id, ch->s.kp.pk, ch->c.kp.pk, "default", 7);
	tl_origin_format(ch->s.origin, ch->s.kp.pk, id);
	tl_origin_format(ch->c.origin, ch->c.kp.pk, id);
}

static void feed_free(struct tfeed *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->recs[i]);
	free(f->recs);
	free(f->lens);
	free(f->wit);
	free(f->leaf);
}

static void chan_free(struct chan *ch)
{
	feed_free(&ch->s);
	feed_free(&ch->c);
}

/* Appends a record with a canonical body; returns its seq. */
static uint64_t append_mp(struct tfeed *f, uint64_t t, const char *kind, const uint8_t *body,
                          size_t body_len)
{
	struct tl_buf rec;
	static const uint8_t zero[TL_HASH_LEN];

	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 64;
		f->recs = realloc(f->recs, f->cap * sizeof *f->recs);
		f->lens = realloc(f->lens, f->cap * sizeof *f->lens);
		f->wit = realloc(f->wit, f->cap * sizeof *f->wit);
		f->leaf = realloc(f->leaf, f->cap * sizeof *f->leaf);
		assert_non_null(f->recs);
		assert_non_null(f->lens);
		assert_non_null(f->wit);
		assert_non_null(f->leaf);
	}
	tl_buf_init(&rec, TL_RECORD_MAX);
	assert_int_equal(tl_entry_encode(&rec, f->origin, f->n, f->n ? f->leaf[f->n - 1] : zero, t,
	                                 kind, strlen(kind), body, body_len),
	                 0);
	assert_int_equal(tl_record_sign(&rec, f->kp.sk), 0);
	f->recs[f->n] = rec.data; /* owned from here on */
	f->lens[f->n] = rec.len;
	f->wit[f->n] = 0;
	tl_record_leaf_hash(f->leaf[f->n], rec.data, rec.len);
	return f->n++;
}

static void to_mp(const char *js, struct tl_buf *out)
{
	char err[200];
	json_error_t je;
	json_t *j = json_loads(js, 0, &je);
	if (!j)
		fail_msg("bad test JSON: %s: %s", je.text, js);
	tl_buf_init(out, TL_ENTRY_MAX);
	if (tl_json_to_mp(j, out, err, sizeof err) != 0)
		fail_msg("tl_json_to_mp: %s", err);
	json_decref(j);
}

static uint64_t append_json(struct tfeed *f, uint64_t t, const char *kind, const char *js)
{
	struct tl_buf b;
	uint64_t seq;
	to_mp(js, &b);
	seq = append_mp(f, t, kind, b.data, b.len);
	tl_buf_release(&b);
	return seq;
}

static void leaf_hex(const struct tfeed *f, uint64_t seq, char out[65])
{
	tl_hex_encode(out, f->leaf[seq], TL_HASH_LEN);
}

static void pk_hex(const struct tl_keypair *kp, char out[65])
{
	tl_hex_encode(out, kp->pk, TL_PUB_LEN);
}

/* A statement of one invoice of amount (opening 0), optionally superseding. */
static uint64_t statement(struct chan *ch, uint64_t t, const char *id, int version, int64_t amount,
                          const char *supersedes_hex)
{
	char js[1024], sup[100] = "";
	if (supersedes_hex)
		snprintf(sup, sizeof sup, "\"supersedes\":\"%s\",", supersedes_hex);
	snprintf(js, sizeof js,
	         "{\"id\":\"%s\",\"version\":%d,%s\"date\":\"2026-11-30\","
	         "\"period\":{\"from\":\"2026-11-01\",\"to\":\"2026-11-30\"},"
	         "\"currency\":\"CNY\",\"opening\":0,"
	         "\"lines\":[{\"date\":\"2026-11-03\",\"type\":\"invoice\",\"doc\":\"INV-1\","
	         "\"amount\":%lld,\"due\":\"2026-12-03\"}],\"closing\":%lld,"
	         "\"aging\":{\"current\":%lld,\"d1_30\":0,\"d31_60\":0,\"d61_90\":0,\"d90_plus\":0}"
	         "}",
	         id, version, sup, (long long)amount, (long long)amount, (long long)amount);
	return append_json(&ch->s, t, "statement", js);
}

static uint64_t grant(struct chan *ch, uint64_t t, const struct tl_keypair *p, const char *role)
{
	char js[256], h[65];
	pk_hex(p, h);
	snprintf(js, sizeof js, "{\"key\":\"%s\",\"role\":\"%s\",\"name\":\"P\"}", h, role);
	return append_json(&ch->c, t, "key.grant", js);
}

static uint64_t revoke(struct chan *ch, uint64_t t, const struct tl_keypair *p)
{
	char js[256], h[65];
	pk_hex(p, h);
	snprintf(js, sizeof js, "{\"key\":\"%s\"}", h);
	return append_json(&ch->c, t, "key.revoke", js);
}

static uint64_t seen(struct chan *ch, uint64_t t, uint64_t size)
{
	char js[512];
	snprintf(js, sizeof js, "{\"feed\":\"%s\",\"size\":%llu,\"checkpoint\":\"cp\"}",
	         ch->s.origin, (unsigned long long)size);
	return append_json(&ch->c, t, "seen", js);
}

static uint64_t ref(struct tfeed *f, uint64_t t, const char *kind, const struct tfeed *sf,
                    uint64_t sseq)
{
	char js[256], h[65];
	leaf_hex(sf, sseq, h);
	snprintf(js, sizeof js, "{\"statement\":\"%s\"}", h);
	return append_json(f, t, kind, js);
}

enum sigmode { SIG_OK, SIG_FLIP, SIG_OTHER_KEY, SIG_OTHER_BODY };

/*
 * A confirm (lines == NULL) or dispute by person, signed as the protocol
 * says: over context || kind || "\n" || the body without person_sig, here
 * built independently of tl_person_sig_message by encoding the JSON body
 * before person_sig is added.
 */
static uint64_t answer(struct chan *ch, uint64_t t, uint64_t sseq, int64_t balance,
                       const struct tl_keypair *person, const char *lines, enum sigmode mode)
{
	const char *kind = lines ? "dispute" : "confirm";
	char js[2048], h[65], ph[65], b64[100];
	struct tl_buf body, msg;
	uint8_t sig[TL_SIG_LEN];
	json_t *j;
	uint64_t seq;
	char err[200];

	leaf_hex(&ch->s, sseq, h);
	pk_hex(person, ph);
	snprintf(js, sizeof js, "{\"statement\":\"%s\",\"balance\":%lld,\"person\":\"%s\"%s%s%s}",
	         h, (long long)(mode == SIG_OTHER_BODY ? balance + 1 : balance), ph,
	         lines ? ",\"lines\":" : "", lines ? lines : "", "");
	to_mp(js, &body);
	tl_buf_init(&msg, TL_ENTRY_MAX);
	assert_int_equal(tl_buf_adds(&msg, "tally/person/v1\n"), 0);
	assert_int_equal(tl_buf_adds(&msg, kind), 0);
	assert_int_equal(tl_buf_addc(&msg, '\n'), 0);
	assert_int_equal(tl_buf_add(&msg, body.data, body.len), 0);
	tl_sign(sig, msg.data, msg.len, mode == SIG_OTHER_KEY ? ch->other.sk : person->sk);
	if (mode == SIG_FLIP)
		sig[7] ^= 1;
	tl_b64_encode(b64, sig, TL_SIG_LEN);
	tl_buf_release(&msg);
	tl_buf_release(&body);

	snprintf(js, sizeof js, "{\"statement\":\"%s\",\"balance\":%lld,\"person\":\"%s\"%s%s}", h,
	         (long long)balance, ph, lines ? ",\"lines\":" : "", lines ? lines : "");
	j = json_loads(js, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_set_new(j, "person_sig", json_string(b64)), 0);
	tl_buf_init(&body, TL_ENTRY_MAX);
	assert_int_equal(tl_json_to_mp(j, &body, err, sizeof err), 0);
	json_decref(j);
	seq = append_mp(&ch->c, t, kind, body.data, body.len);
	tl_buf_release(&body);
	return seq;
}

static struct tl_state *build(const struct chan *ch, uint64_t now)
{
	struct tl_state_feed a = {(const uint8_t *const *)ch->s.recs, ch->s.lens, ch->s.wit,
	                          ch->s.n};
	struct tl_state_feed b = {(const uint8_t *const *)ch->c.recs, ch->c.lens, ch->c.wit,
	                          ch->c.n};
	struct tl_state *st = NULL;
	assert_int_equal(tl_state_compute(&st, &a, &b, NULL, now), 0);
	assert_non_null(st);
	return st;
}

static const struct tl_stmt *find_stmt(const struct tl_state *s, const char *id, uint64_t ver)
{
	for (size_t i = 0; i < s->nstmts; i++)
		if (strcmp(s->stmts[i].id, id) == 0 && s->stmts[i].version == ver)
			return &s->stmts[i];
	fail_msg("no statement %s v%llu", id, (unsigned long long)ver);
	return NULL;
}

static enum tl_stmt_status status_at(const struct chan *ch, uint64_t now, const char *id,
                                     uint64_t ver)
{
	struct tl_state *s = build(ch, now);
	enum tl_stmt_status st = find_stmt(s, id, ver)->status;
	tl_state_free(s);
	return st;
}

static void expect_status(const struct chan *ch, uint64_t now, const char *id, uint64_t ver,
                          enum tl_stmt_status want)
{
	enum tl_stmt_status got = status_at(ch, now, id, ver);
	if (got != want)
		fail_msg("%s v%llu at %llu: status %s, want %s", id, (unsigned long long)ver,
		         (unsigned long long)now, tl_stmt_status_name(got),
		         tl_stmt_status_name(want));
}

/* A finding whose text contains needle, of kind; returns it or fails. */
static const struct tl_finding *expect_finding(const struct tl_state *s, enum tl_finding_kind kind,
                                               const char *needle)
{
	for (size_t i = 0; i < s->nfindings; i++)
		if (s->findings[i].kind == kind && strstr(s->findings[i].msg, needle))
			return &s->findings[i];
	for (size_t i = 0; i < s->nfindings; i++)
		fprintf(stderr, "finding: %s\n", s->findings[i].msg);
	fail_msg("no finding containing \"%s\"", needle);
	return NULL;
}

/* ---------------------------------------------------------- the cycle */

static void test_full_cycle(void **state)
{
	struct chan ch;
	char l1[65];
	uint64_t s1, s2, now = T0 + DAY;
	struct tl_state *s;
	const struct tl_stmt *v1, *v2;
	(void)state;

	chan_init(&ch);
	grant(&ch, T0 - 1000, &ch.approver, "approver");
	s1 = statement(&ch, T0, "ST-1", 1, 10000, NULL);
	expect_status(&ch, now, "ST-1", 1, TL_STMT_SENT);
	seen(&ch, T0 + 1000, 1);
	expect_status(&ch, now, "ST-1", 1, TL_STMT_SEEN);
	ref(&ch.c, T0 + 2000, "view", &ch.s, s1);
	expect_status(&ch, now, "ST-1", 1, TL_STMT_VIEWED);
	answer(&ch, T0 + 3000, s1, 9000, &ch.approver,
	       "[{\"doc\":\"INV-1\",\"their_amount\":9000,\"reason\":\"price\",\"note\":\"list "
	       "price\",\"blobs\":[\"" /* a voucher */
	       "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"]}]",
	       SIG_OK);
	expect_status(&ch, now, "ST-1", 1, TL_STMT_DISPUTED);
	s = build(&ch, now);
	v1 = find_stmt(s, "ST-1", 1);
	assert_int_equal(v1->ndlines, 1);
	assert_string_equal(v1->lines[0].doc, "INV-1");
	assert_int_equal(v1->lines[0].their_amount, 9000);
	assert_int_equal(v1->lines[0].reason, TL_REASON_PRICE);
	assert_string_equal(v1->lines[0].note, "list price");
	assert_int_equal(v1->lines[0].nblobs, 1);
	assert_true(v1->has_their_balance);
	assert_int_equal(v1->their_balance, 9000);
	assert_int_equal(s->nfindings, 0);
	tl_state_free(s);

	leaf_hex(&ch.s, s1, l1);
	s2 = statement(&ch, T0 + 4000, "ST-1", 2, 9000, l1);
	expect_status(&ch, now, "ST-1", 1, TL_STMT_REISSUED);
	expect_status(&ch, now, "ST-1", 2, TL_STMT_SENT);
	seen(&ch, T0 + 5000, 2);
	expect_status(&ch, now, "ST-1", 2, TL_STMT_SEEN);
	answer(&ch, T0 + 6000, s2, 9000, &ch.approver, NULL, SIG_OK);
	expect_status(&ch, now, "ST-1", 2, TL_STMT_CONFIRMED);
	ref(&ch.s, T0 + 7000, "close", &ch.s, s2);

	s = build(&ch, now);
	assert_int_equal(s->nfindings, 0);
	assert_int_equal(s->nstmts, 2);
	v1 = find_stmt(s, "ST-1", 1);
	v2 = find_stmt(s, "ST-1", 2);
	assert_int_equal(v1->status, TL_STMT_REISSUED);
	assert_int_equal(v2->status, TL_STMT_CLOSED);
	assert_true(v2->has_agreed);
	assert_int_equal(v2->agreed_balance, 9000);
	assert_int_equal(v2->supersedes, 0);
	assert_int_equal(v1->superseded_by, 1);
	assert_false(v2->late);
	/* timelines, by time */
	{
		static const enum tl_event w1[] = {TL_EV_SENT, TL_EV_SEEN, TL_EV_VIEWED,
		                                   TL_EV_DISPUTED, TL_EV_REISSUED};
		static const enum tl_event w2[] = {TL_EV_SENT, TL_EV_SEEN, TL_EV_CONFIRMED,
		                                   TL_EV_CLOSED};
		assert_int_equal(v1->ntimeline, 5);
		for (size_t i = 0; i < 5; i++)
			assert_int_equal(v1->timeline[i].event, w1[i]);
		assert_int_equal(v2->ntimeline, 4);
		for (size_t i = 0; i < 4; i++)
			assert_int_equal(v2->timeline[i].event, w2[i]);
		assert_true(v2->timeline[2].has_person);
		assert_memory_equal(v2->timeline[2].person, ch.approver.pk, TL_PUB_LEN);
		assert_int_equal(v2->timeline[2].feed, TL_ROLE_CUSTOMER);
		assert_int_equal(v2->timeline[2].claimed_ms, T0 + 6000);
		assert_int_equal(v2->timeline[2].witnessed_ms, 0);
		assert_int_equal(v2->timeline[3].feed, TL_ROLE_SUPPLIER);
	}
	/* the statement is named by leaf */
	leaf_hex(&ch.s, s2, l1);
	assert_string_equal(v2->leaf_hex, l1);
	assert_string_equal(s->origin[TL_ROLE_SUPPLIER], ch.s.origin);
	assert_string_equal(s->origin[TL_ROLE_CUSTOMER], ch.c.origin);
	assert_int_equal(s->count[TL_STMT_CLOSED], 1);
	assert_int_equal(s->count[TL_STMT_REISSUED], 1);
	assert_true(s->in_force.unilateral);
	tl_state_free(s);
	chan_free(&ch);
}

/* A close before the version is confirmed is refused, and the state says so. */
static void test_close_unconfirmed_refused(void **state)
{
	struct chan ch;
	struct tl_state *s;
	uint64_t s1;
	(void)state;

	chan_init(&ch);
	s1 = statement(&ch, T0, "ST-1", 1, 500, NULL);
	ref(&ch.s, T0 + 1, "close", &ch.s, s1);
	s = build(&ch, T0 + 2);
	assert_int_equal(find_stmt(s, "ST-1", 1)->status, TL_STMT_SENT);
	expect_finding(s, TL_FIND_RULE, "not confirmed");
	tl_state_free(s);
	chan_free(&ch);
}

/* A confirm with another balance is a dispute of the balance. */
static void test_confirm_other_balance_is_dispute(void **state)
{
	struct chan ch;
	struct tl_state *s;
	const struct tl_stmt *st;
	uint64_t s1;
	(void)state;

	chan_init(&ch);
	grant(&ch, T0, &ch.director, "director");
	s1 = statement(&ch, T0, "ST-1", 1, 500, NULL);
	answer(&ch, T0 + 1, s1, 499, &ch.director, NULL, SIG_OK);
	s = build(&ch, T0 + 2);
	st = find_stmt(s, "ST-1", 1);
	assert_int_equal(st->status, TL_STMT_DISPUTED);
	assert_false(st->has_agreed);
	assert_int_equal(st->their_balance, 499);
	tl_state_free(s);
	chan_free(&ch);
}

/* ------------------------------------------------------------ people */

static void test_clerk_refused(void **state)
{
	struct chan ch;
	struct tl_state *s;
	uint64_t s1, cs;
	char want[100], ph[65];
	(void)state;

	chan_init(&ch);
	grant(&ch, T0, &ch.clerk, "clerk");
	s1 = statement(&ch, T0, "ST-1", 1, 500, NULL);
	cs = answer(&ch, T0 + 1, s1, 500, &ch.clerk, NULL, SIG_OK);
	s = build(&ch, T0 + 2);
	assert_int_equal(find_stmt(s, "ST-1", 1)->status, TL_STMT_SENT);
	pk_hex(&ch.clerk, ph);
	snprintf(want, sizeof want, "person key %.16s... was not an approver at seq %llu", ph,
	         (unsigned long long)cs);
	assert_int_equal(expect_finding(s, TL_FIND_AUTHORITY, want)->seq, cs);
	assert_int_equal(find_stmt(s, "ST-1", 1)->timeline[1].event, TL_EV_REFUSED);
	tl_state_free(s);

	/* a key never granted: the same */
	answer(&ch, T0 + 3, s1, 500, &ch.other, NULL, SIG_OK);
	s = build(&ch, T0 + 4);
	assert_int_equal(find_stmt(s, "ST-1", 1)->status, TL_STMT_SENT);
	assert_int_equal(s->nfindings, 2);
	tl_state_free(s);
	chan_free(&ch);
}

/* Revocation: a confirm just before the revoke counts, just after it does not. */
static void test_revoked_boundary(void **state)
{
	struct chan ch;
	struct tl_state *s;
	uint64_t s1, s2;
	(void)state;

	chan_init(&ch);
	grant(&ch, T0, &ch.approver, "approver");
	s1 = statement(&ch, T0, "ST-1", 1, 500, NULL);
	s2 = statement(&ch, T0, "ST-2", 1, 700, NULL);
	answer(&ch, T0 + 1, s1, 500, &ch.approver, NULL, SIG_OK); /* C seq 1 */
	revoke(&ch, T0 + 2, &ch.approver);                        /* C seq 2 */
	answer(&ch, T0 + 3, s2, 700, &ch.approver, NULL, SIG_OK); /* C seq 3 */
	s = build(&ch, T0 + 4);
	assert_int_equal(find_stmt(s, "ST-1", 1)->status, TL_STMT_CONFIRMED);
	assert_int_equal(find_stmt(s, "ST-2", 1)->status, TL_STMT_SENT);
	assert_int_equal(expect_finding(s, TL_FIND_AUTHORITY, "was revoked before seq 3")->seq, 3);
	assert_int_equal(s->nfindings, 1);
	tl_state_free(s);

	/* granted again later: signs again from the new grant on */
	grant(&ch, T0 + 5, &ch.approver, "approver");
	answer(&ch, T0 + 6, s2, 700, &ch.approver, NULL, SIG_OK);
	expect_status(&ch, T0 + 7, "ST-2", 1, TL_STMT_CONFIRMED);
	chan_free(&ch);
}

/* A grant takes effect only after its own seq: a confirm written earlier fails. */
static void test_grant_after_confirm(void **state)
{
	struct chan ch;
	uint64_t s1;
	(void)state;

	chan_init(&ch);
	s1 = statement(&ch, T0, "ST-1", 1, 500, NULL);
	answer(&ch, T0 + 1, s1, 500, &ch.approver, NULL, SIG_OK);
	grant(&ch, T0 + 2, &ch.approver, "approver");
	expect_status(&ch, T0 + 3, "ST-1", 1, TL_STMT_SENT);
	/* the supplier's grants give no authority on the customer's side */
	{
		char js[256], h[65];
		pk_hex(&ch.other, h);
		snprintf(js, sizeof js, "{\"key\":\"%s\",\"role\":\"approver\",\"name\":\"X\"}", h);
		append_json(&ch.s, T0 + 3, "key.grant", js);
		answer(&ch, T0 + 4, s1, 500, &ch.other, NULL, SIG_OK);
		expect_status(&ch, T0 + 5, "ST-1", 1, TL_STMT_SENT);
	}
	chan_free(&ch);
}

static void test_bad_person_sig(void **state)
{
	static const enum sigmode modes[] = {SIG_FLIP, SIG_OTHER_KEY, SIG_OTHER_BODY};
	(void)state;

	for (size_t m = 0; m < 3; m++) {
		struct chan ch;
		struct tl_state *s;
		uint64_t s1;

		chan_init(&ch);
		grant(&ch, T0, &ch.approver, "approver");
		s1 = statement(&ch, T0, "ST-1", 1, 500, NULL);
		answer(&ch, T0 + 1, s1, 500, &ch.approver, NULL, modes[m]);
		answer(&ch, T0 + 2, s1, 400, &ch.approver,
		       "[{\"doc\":\"INV-1\",\"their_amount\":400,\"reason\":\"duplicate\"}]",
		       modes[m]);
		s = build(&ch, T0 + 3);
		assert_int_equal(find_stmt(s, "ST-1", 1)->status, TL_STMT_SENT);
		expect_finding(s, TL_FIND_AUTHORITY,
		               "confirm of ST-1 refused: bad person signature");
		expect_finding(s, TL_FIND_AUTHORITY,
		               "dispute of ST-1 refused: bad person signature");
		tl_state_free(s);
		chan_free(&ch);
	}
}

/* The signed message helper equals an independent encoding without the key. */
static void test_person_sig_message(void **state)
{
	struct tl_buf a, b, m;
	(void)state;

	to_mp("{\"balance\":5,\"person\":\"ab\",\"person_sig\":\"xx\",\"statement\":\"cd\"}", &a);
	to_mp("{\"balance\":5,\"person\":\"ab\",\"statement\":\"cd\"}", &b);
	tl_buf_init(&m, 1 << 20);
	assert_int_equal(tl_person_sig_message(&m, "confirm", 7, a.data, a.len), 0);
	assert_int_equal(m.len, 16 + 8 + b.len);
	assert_memory_equal(m.data, "tally/person/v1\nconfirm\n", 24);
	assert_memory_equal(m.data + 24, b.data, b.len);
	/* without the key: the body unchanged */
	tl_buf_reset(&m);
	assert_int_equal(tl_person_sig_message(&m, "confirm", 7, b.data, b.len), 0);
	assert_memory_equal(m.data + 24, b.data, b.len);
	/* a map of 16 keys: header goes from map16 to fixmap */
	tl_buf_release(&a);
	tl_buf_release(&b);
	to_mp("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,"
	      "\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"person_sig\":\"s\"}",
	      &a);
	to_mp("{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,"
	      "\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15}",
	      &b);
	assert_int_equal(a.data[0], 0xde);
	tl_buf_reset(&m);
	assert_int_equal(tl_person_sig_message(&m, "dispute", 7, a.data, a.len), 0);
	assert_int_equal(m.len, 24 + b.len);
	assert_memory_equal(m.data + 24, b.data, b.len);
	/* not a map */
	tl_buf_reset(&m);
	assert_int_equal(tl_person_sig_message(&m, "x", 1, (const uint8_t *)"\x91\x01", 2),
	                 TL_EFORMAT);
	tl_buf_release(&a);
	tl_buf_release(&b);
	tl_buf_release(&m);
}

/* ------------------------------------------------------ time and terms */

static uint64_t propose(struct tfeed *f, uint64_t t, const char *procedure, int days)
{
	char js[512];
	snprintf(js, sizeof js,
	         "{\"terms_id\":\"T-1\",\"cycle\":{\"every\":\"month\",\"day\":5,\"tz\":"
	         "\"Asia/"
	         "Shanghai\"},\"response_days\":%d,\"procedure\":\"%s\",\"currency\":\"CNY\"}",
	         days, procedure);
	return append_json(f, t, "terms.propose", js);
}

static void accept_terms(struct tfeed *f, uint64_t t, const struct tfeed *pf, uint64_t pseq)
{
	char js[200], h[65];
	leaf_hex(pf, pseq, h);
	snprintf(js, sizeof js, "{\"terms\":\"%s\"}", h);
	append_json(f, t, "terms.accept", js);
}

static void test_notification_deemed_at_deadline(void **state)
{
	struct chan ch;
	struct tl_state *s;
	uint64_t p, dl, s1;
	const struct tl_stmt *st;
	(void)state;

	chan_init(&ch);
	p = propose(&ch.s, T0 - 10 * DAY, "notification", 7);
	accept_terms(&ch.c, T0 - 9 * DAY, &ch.s, p);
	s1 = statement(&ch, T0, "ST-1", 1, 500, NULL);
	seen(&ch, T0 + 3600000, 2); /* S size 2: propose + statement */
	dl = T0 + 3600000 + 7 * DAY;

	s = build(&ch, T0 + DAY);
	st = find_stmt(s, "ST-1", 1);
	assert_int_equal(st->status, TL_STMT_SEEN);
	assert_int_equal(st->deadline_ms, dl);
	assert_int_equal(st->deadline_src, TL_TIME_SEEN_CLAIMED);
	assert_int_equal(st->terms, 0);
	assert_false(s->in_force.unilateral);
	assert_int_equal(s->in_force.procedure, TL_PROC_NOTIFICATION);
	assert_int_equal(s->in_force.response_days, 7);
	assert_string_equal(s->in_force.tz, "Asia/Shanghai");
	assert_int_equal(s->nterms, 1);
	tl_state_free(s);
	expect_status(&ch, dl - 1, "ST-1", 1, TL_STMT_SEEN);
	expect_status(&ch, dl, "ST-1", 1, TL_STMT_DEEMED);
	expect_status(&ch, dl + 1, "ST-1", 1, TL_STMT_DEEMED);

	/* a dispute after the deadline does not undo it; one before does */
	{
		struct chan ch2;
		uint64_t q, t1;
		chan_init(&ch2);
		grant(&ch2, T0 - 11 * DAY, &ch2.approver, "approver");
		q = propose(&ch2.s, T0 - 10 * DAY, "notification", 7);
		accept_terms(&ch2.c, T0 - 9 * DAY, &ch2.s, q);
		t1 = statement(&ch2, T0, "ST-1", 1, 500, NULL);
		answer(&ch2, T0 + 7 * DAY + 1, t1, 1, &ch2.approver, "[]", SIG_OK);
		expect_status(&ch2, T0 + 8 * DAY, "ST-1", 1, TL_STMT_DEEMED);
		chan_free(&ch2);

		chan_init(&ch2);
		grant(&ch2, T0 - 11 * DAY, &ch2.approver, "approver");
		q = propose(&ch2.s, T0 - 10 * DAY, "notification", 7);
		accept_terms(&ch2.c, T0 - 9 * DAY, &ch2.s, q);
		t1 = statement(&ch2, T0, "ST-1", 1, 500, NULL);
		answer(&ch2, T0 + 7 * DAY, t1, 1, &ch2.approver, "[]", SIG_OK);
		expect_status(&ch2, T0 + 8 * DAY, "ST-1", 1, TL_STMT_DISPUTED);
		chan_free(&ch2);
	}

	/* witnessed time wins over the receipt */
	ch.s.wit[s1] = T0 + 5000;
	s = build(&ch, T0);
	st = find_stmt(s, "ST-1", 1);
	assert_int_equal(st->deadline_ms, T0 + 5000 + 7 * DAY);
	assert_int_equal(st->deadline_src, TL_TIME_WITNESSED);
	tl_state_free(s);
	chan_free(&ch);
}

static void test_confirmation_overdue(void **state)
{
	struct chan ch;
	uint64_t dl = T0 + 10 * DAY;
	(void)state;

	chan_init(&ch);
	statement(&ch, T0, "ST-1", 1, 500, NULL);
	expect_status(&ch, dl - 1, "ST-1", 1, TL_STMT_SENT);
	expect_status(&ch, dl, "ST-1", 1, TL_STMT_SENT);
	expect_status(&ch, dl + 1, "ST-1", 1, TL_STMT_OVERDUE);
	/* a late confirmation still confirms, marked late */
	grant(&ch, T0, &ch.approver, "approver");
	answer(&ch, dl + 5, 0, 500, &ch.approver, NULL, SIG_OK);
	{
		struct tl_state *s = build(&ch, dl + 10);
		assert_int_equal(find_stmt(s, "ST-1", 1)->status, TL_STMT_CONFIRMED);
		assert_true(find_stmt(s, "ST-1", 1)->late);
		tl_state_free(s);
	}
	chan_free(&ch);
}

static void test_terms_unaccepted_stay_unilateral(void **state)
{
	struct chan ch;
	struct tl_state *s;
	uint64_t p;
	(void)state;

	chan_init(&ch);
	p = propose(&ch.s, T0 - DAY, "notification", 3);
	accept_terms(&ch.s, T0 - DAY + 1, &ch.s, p); /* its own proposal */
	statement(&ch, T0, "ST-1", 1, 500, NULL);
	s = build(&ch, T0 + 20 * DAY);
	assert_true(s->in_force.unilateral);
	assert_string_equal(s->in_force.terms_id, "default");
	assert_int_equal(s->in_force.procedure, TL_PROC_CONFIRMATION);
	assert_int_equal(s->in_force.response_days, 10);
	assert_int_equal(s->nterms, 0);
	assert_int_equal(find_stmt(s, "ST-1", 1)->status, TL_STMT_OVERDUE);
	assert_int_equal(find_stmt(s, "ST-1", 1)->terms, SIZE_MAX);
	expect_finding(s, TL_FIND_AUTHOR, "own proposal");
	tl_state_free(s);

	/* accepted by the customer after the statement: applies from the accept on */
	accept_terms(&ch.c, T0 + DAY, &ch.s, p);
	s = build(&ch, T0 + 2 * DAY);
	assert_false(s->in_force.unilateral);
	assert_int_equal(find_stmt(s, "ST-1", 1)->terms, SIZE_MAX);
	tl_state_free(s);
	chan_free(&ch);
}

/* ------------------------------------------------ terms: new fields */

/* A C2SP verifier key string of the given type for key k. */
static void vkey_str(const struct tl_keypair *k, const char *name, uint8_t type, char *out,
                     size_t cap)
{
	struct tl_vkey vk;
	struct tl_buf b;
	assert_int_equal(tl_vkey_from_pub(&vk, name, type, k->pk), 0);
	tl_buf_init(&b, 1024);
	assert_int_equal(tl_vkey_format(&vk, &b), 0);
	assert_true(b.len < cap);
	memcpy(out, b.data, b.len);
	out[b.len] = 0;
	tl_buf_release(&b);
}

/* The body of a proposal with the given cycle map and extra fields. */
static void propose_body(char *js, size_t cap, const char *cycle, const char *extra)
{
	snprintf(js, cap,
	         "{\"terms_id\":\"T-9\",\"cycle\":%s,\"response_days\":5,\"procedure\":"
	         "\"balance\",\"currency\":\"USD\"%s%s}",
	         cycle, *extra ? "," : "", extra);
}

static int parse_js(const char *js, struct tl_terms *t, char *why, size_t cap)
{
	struct tl_buf m;
	int rc;
	to_mp(js, &m);
	rc = tl_terms_parse(m.data, m.len, t, why, cap);
	tl_buf_release(&m);
	return rc;
}

static void test_terms_new_fields(void **state)
{
	struct chan ch;
	struct tl_state *s;
	struct tl_terms t;
	char w1[400], w2[400], extra[1200], js[2000], why[200];
	uint64_t p;
	(void)state;

	chan_init(&ch);
	vkey_str(&ch.other, "witness-a.example", TL_SIGTYPE_COSIG, w1, sizeof w1);
	vkey_str(&ch.director, "witness-b.example", TL_SIGTYPE_COSIG, w2, sizeof w2);
	snprintf(extra, sizeof extra,
	         "\"escalation\":[{\"after_days\":3,\"level\":1,\"to\":\"ap-lead\"},"
	         "{\"after_days\":10,\"level\":2,\"to\":\"cfo\"}],"
	         "\"witnesses\":[\"%s\",\"%s\"],\"quorum\":2",
	         w1, w2);
	propose_body(js, sizeof js,
	             "{\"every\":\"cron\",\"rule\":\"30 9 1-7 * 1\",\"tz\":\"+08:00\"}", extra);
	assert_int_equal(parse_js(js, &t, why, sizeof why), 0);
	assert_int_equal(t.every, TL_CYCLE_CRON);
	assert_string_equal(t.rule, "30 9 1-7 * 1");
	assert_int_equal(t.day, 0);
	assert_true(t.tz_fixed);
	assert_int_equal(t.tz_offset_min, 480);
	assert_int_equal(t.procedure, TL_PROC_BALANCE);
	assert_string_equal(t.currency, "USD");
	assert_int_equal(t.nescalation, 2);
	assert_int_equal(t.escalation[1].after_days, 10);
	assert_int_equal(t.escalation[1].level, 2);
	assert_string_equal(t.escalation[1].to, "cfo");
	assert_int_equal(t.nwitnesses, 2);
	assert_string_equal(t.witnesses[1], w2);
	assert_int_equal(t.quorum, 2);

	/* through the feeds: pending, then in force once the other side accepts */
	p = append_json(&ch.c, T0 - 2 * DAY, "terms.propose", js);
	s = build(&ch, T0);
	assert_int_equal(s->nproposals, 1);
	assert_false(s->proposals[0].accepted);
	assert_memory_equal(s->proposals[0].leaf, ch.c.leaf[p], TL_HASH_LEN);
	assert_true(s->in_force.unilateral);
	tl_state_free(s);
	accept_terms(&ch.s, T0 - DAY, &ch.c, p);
	s = build(&ch, T0);
	assert_true(s->proposals[0].accepted);
	assert_false(s->in_force.unilateral);
	assert_int_equal(s->in_force.every, TL_CYCLE_CRON);
	assert_int_equal(s->in_force.quorum, 2);
	assert_int_equal(s->in_force.nescalation, 2);
	assert_string_equal(s->in_force.witnesses[0], w1);
	tl_state_free(s);

	/* quorum defaults to all witnesses */
	snprintf(extra, sizeof extra, "\"witnesses\":[\"%s\",\"%s\"]", w1, w2);
	propose_body(js, sizeof js, "{\"every\":\"week\",\"day\":7,\"tz\":\"-05:30\"}", extra);
	assert_int_equal(parse_js(js, &t, why, sizeof why), 0);
	assert_int_equal(t.quorum, 2);
	assert_int_equal(t.tz_offset_min, -330);
	assert_int_equal(t.day, 7);
	chan_free(&ch);
}

static void test_terms_old_proposal_and_defaults(void **state)
{
	struct chan ch;
	struct tl_state *s;
	uint64_t p;
	(void)state;

	chan_init(&ch);
	s = build(&ch, T0);
	assert_true(s->in_force.unilateral);
	assert_int_equal(s->in_force.every, TL_CYCLE_MONTH);
	assert_int_equal(s->in_force.day, 1);
	assert_true(s->in_force.tz_fixed);
	assert_int_equal(s->in_force.tz_offset_min, 0);
	assert_int_equal(s->in_force.nescalation, 0);
	assert_int_equal(s->in_force.nwitnesses, 0);
	assert_int_equal(s->in_force.quorum, 0);
	assert_int_equal(s->nproposals, 0);
	tl_state_free(s);

	/* a proposal written before the new fields existed stays valid */
	p = propose(&ch.s, T0 - 10 * DAY, "confirmation", 7);
	accept_terms(&ch.c, T0 - 9 * DAY, &ch.s, p);
	s = build(&ch, T0);
	assert_int_equal(s->nfindings, 0);
	assert_false(s->in_force.unilateral);
	assert_int_equal(s->in_force.day, 5);
	assert_string_equal(s->in_force.tz, "Asia/Shanghai");
	assert_false(s->in_force.tz_fixed); /* an IANA name: a label */
	assert_int_equal(s->in_force.nwitnesses, 0);
	assert_int_equal(s->in_force.quorum, 0);
	assert_string_equal(s->in_force.rule, "");
	tl_state_free(s);
	chan_free(&ch);
}

static void test_terms_invalid_values(void **state)
{
	struct chan ch;
	struct tl_terms t;
	char w1[400], w1b[400], ed[400], extra[3000], js[4000], why[200];
	(void)state;

	chan_init(&ch);
	vkey_str(&ch.other, "witness-a.example", TL_SIGTYPE_COSIG, w1, sizeof w1);
	vkey_str(&ch.director, "witness-b.example", TL_SIGTYPE_COSIG, w1b, sizeof w1b);
	vkey_str(&ch.other, "log.example", TL_SIGTYPE_ED25519, ed, sizeof ed);
	static const struct {
		const char *cycle, *extra, *why;
		int ok;
	} cases[] = {
	        {"{\"every\":\"cron\",\"rule\":\"59 23 31 12 0-7\",\"tz\":\"UTC\"}", "", "", 1},
	        {"{\"every\":\"cron\",\"rule\":\"60 * * * *\",\"tz\":\"UTC\"}", "", "cron", 0},
	        {"{\"every\":\"cron\",\"rule\":\"* * * *\",\"tz\":\"UTC\"}", "", "cron", 0},
	        {"{\"every\":\"cron\",\"rule\":\"*/0 * * * *\",\"tz\":\"UTC\"}", "", "cron", 0},
	        {"{\"every\":\"cron\",\"rule\":\"0 0 1 * *\",\"day\":1,\"tz\":\"UTC\"}", "", "cron",
	         0},
	        {"{\"every\":\"month\",\"tz\":\"UTC\"}", "", "day in 1..31", 0},
	        {"{\"every\":\"month\",\"day\":31,\"tz\":\"UTC\"}", "", "", 1},
	        {"{\"every\":\"month\",\"day\":32,\"tz\":\"UTC\"}", "", "day in 1..31", 0},
	        {"{\"every\":\"week\",\"day\":8,\"tz\":\"UTC\"}", "", "day in 1..7", 0},
	        {"{\"every\":\"week\",\"day\":0,\"tz\":\"UTC\"}", "", "day in 1..7", 0},
	        {"{\"every\":\"year\",\"day\":1,\"tz\":\"UTC\"}", "", "month, week or cron", 0},
	        {"{\"every\":\"month\",\"day\":1,\"tz\":\"+14:00\"}", "", "", 1},
	        {"{\"every\":\"month\",\"day\":1,\"tz\":\"+14:01\"}", "", "time zone", 0},
	        {"{\"every\":\"month\",\"day\":1,\"tz\":\"08:00\"}", "", "time zone", 0},
	        {"{\"every\":\"month\",\"day\":1,\"tz\":\"Asia//Shanghai\"}", "", "time zone", 0},
	        {"{\"every\":\"month\",\"day\":1,\"tz\":\"UTC\"}",
	         "\"escalation\":[{\"after_days\":3,\"level\":1,\"to\":\"a\"},{\"after_days\":3,"
	         "\"level\":2,\"to\":\"b\"}]",
	         "escalation step 2", 0},
	        {"{\"every\":\"month\",\"day\":1,\"tz\":\"UTC\"}",
	         "\"escalation\":[{\"after_days\":3,\"level\":0,\"to\":\"a\"}]",
	         "escalation step 1", 0},
	        {"{\"every\":\"month\",\"day\":1,\"tz\":\"UTC\"}",
	         "\"escalation\":[{\"after_days\":3,\"level\":1}]", "lacks the field \"to\"", 0},
	        {"{\"every\":\"month\",\"day\":1,\"tz\":\"UTC\"}", "\"quorum\":1", "quorum", 0},
	        {"{\"every\":\"month\",\"day\":1,\"tz\":\"UTC\"}", "\"witnesses\":[]", "witness",
	         0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		propose_body(js, sizeof js, cases[i].cycle, cases[i].extra);
		int rc = parse_js(js, &t, why, sizeof why);
		if (cases[i].ok) {
			if (rc != 0)
				fail_msg("case %zu refused: %s", i, why);
		} else {
			if (rc == 0)
				fail_msg("case %zu accepted: %s", i, js);
			if (!strstr(why, cases[i].why))
				fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, cases[i].why);
		}
	}
	/* witnesses: type 0x01 refused, duplicates refused, quorum 1..n */
	const char *cyc = "{\"every\":\"month\",\"day\":1,\"tz\":\"UTC\"}";
	snprintf(extra, sizeof extra, "\"witnesses\":[\"%s\"]", ed);
	propose_body(js, sizeof js, cyc, extra);
	assert_int_equal(parse_js(js, &t, why, sizeof why), TL_EFORMAT);
	assert_non_null(strstr(why, "type 0x04"));
	snprintf(extra, sizeof extra, "\"witnesses\":[\"%s\",\"%s\"]", w1, w1);
	propose_body(js, sizeof js, cyc, extra);
	assert_int_equal(parse_js(js, &t, why, sizeof why), TL_EFORMAT);
	assert_non_null(strstr(why, "twice"));
	/* one public key under two names is one witness: refused too */
	{
		char w1n[400];
		vkey_str(&ch.other, "witness-a-alias.example", TL_SIGTYPE_COSIG, w1n, sizeof w1n);
		assert_string_not_equal(w1n, w1);
		snprintf(extra, sizeof extra, "\"witnesses\":[\"%s\",\"%s\"],\"quorum\":2", w1,
		         w1n);
		propose_body(js, sizeof js, cyc, extra);
		assert_int_equal(parse_js(js, &t, why, sizeof why), TL_EFORMAT);
		assert_non_null(strstr(why, "twice"));
	}
	snprintf(extra, sizeof extra, "\"witnesses\":[\"%s\",\"%s\"],\"quorum\":3", w1, w1b);
	propose_body(js, sizeof js, cyc, extra);
	assert_int_equal(parse_js(js, &t, why, sizeof why), TL_EFORMAT);
	assert_non_null(strstr(why, "quorum 3"));
	snprintf(extra, sizeof extra, "\"witnesses\":[\"%s\",\"%s\"],\"quorum\":0", w1, w1b);
	propose_body(js, sizeof js, cyc, extra);
	assert_int_equal(parse_js(js, &t, why, sizeof why), TL_EFORMAT);
	snprintf(extra, sizeof extra, "\"witnesses\":[\"%s\",\"%s\"],\"quorum\":1", w1, w1b);
	propose_body(js, sizeof js, cyc, extra);
	assert_int_equal(parse_js(js, &t, why, sizeof why), 0);
	assert_int_equal(t.quorum, 1);

	/* in a feed, an invalid proposal is a finding, and accepting it refers to nothing */
	{
		struct tl_state *s;
		uint64_t p;
		propose_body(js, sizeof js, "{\"every\":\"week\",\"day\":8,\"tz\":\"UTC\"}", "");
		p = append_json(&ch.s, T0, "terms.propose", js);
		accept_terms(&ch.c, T0 + 1, &ch.s, p);
		s = build(&ch, T0 + 2);
		assert_int_equal(s->nproposals, 0);
		assert_true(s->in_force.unilateral);
		assert_int_equal(expect_finding(s, TL_FIND_INVALID, "day in 1..7")->seq, p);
		expect_finding(s, TL_FIND_REF, "names no terms.propose");
		tl_state_free(s);
	}
	chan_free(&ch);
}

static uint64_t ms_of(int y, int mo, int d, int h, int mi)
{
	/* days from civil, as in the state machine; tested against known dates */
	int yy = y - (mo <= 2);
	int era = yy / 400;
	unsigned yoe = (unsigned)(yy - era * 400);
	unsigned doy = (unsigned)((153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1);
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
	return (uint64_t)(days * 86400000 + (int64_t)h * 3600000 + (int64_t)mi * 60000);
}

static void test_next_cycle(void **state)
{
	struct tl_terms t;
	uint64_t n;
	(void)state;

	assert_int_equal(ms_of(2026, 12, 3, 0, 0), 1796256000000ull); /* known: Thu 2026-12-03 */
	memset(&t, 0, sizeof t);
	t.tz_fixed = 1;
	/* monthly on the 31st: February uses its last day */
	t.every = TL_CYCLE_MONTH;
	t.day = 31;
	assert_int_equal(tl_terms_next_cycle(&t, ms_of(2027, 2, 1, 0, 0), &n), 0);
	assert_int_equal(n, ms_of(2027, 2, 28, 0, 0));
	/* strictly after: exactly on a cycle date gives the next one */
	assert_int_equal(tl_terms_next_cycle(&t, ms_of(2027, 2, 28, 0, 0), &n), 0);
	assert_int_equal(n, ms_of(2027, 3, 31, 0, 0));
	assert_int_equal(tl_terms_next_cycle(&t, ms_of(2027, 2, 28, 0, 0) - 1, &n), 0);
	assert_int_equal(n, ms_of(2027, 2, 28, 0, 0));
	/* weekly on Friday at +08:00: Friday 00:00 local is Thursday 16:00 UTC */
	t.every = TL_CYCLE_WEEK;
	t.day = 5;
	t.tz_offset_min = 480;
	assert_int_equal(tl_terms_next_cycle(&t, ms_of(2026, 12, 3, 0, 0), &n), 0);
	assert_int_equal(n, ms_of(2026, 12, 3, 16, 0));
	assert_int_equal(tl_terms_next_cycle(&t, ms_of(2026, 12, 3, 16, 0), &n), 0);
	assert_int_equal(n, ms_of(2026, 12, 10, 16, 0));
	/* an IANA name is a label: UTC */
	t.tz_fixed = 0;
	assert_int_equal(tl_terms_next_cycle(&t, ms_of(2026, 12, 3, 0, 0), &n), 0);
	assert_int_equal(n, ms_of(2026, 12, 4, 0, 0));
	/* cron: 09:30 on weekdays, at -05:00 */
	t.every = TL_CYCLE_CRON;
	t.day = 0;
	t.tz_fixed = 1;
	t.tz_offset_min = -300;
	strcpy(t.rule, "30 9 * * 1-5");
	assert_int_equal(tl_terms_next_cycle(&t, ms_of(2026, 12, 4, 14, 30), &n), 0); /* Fri */
	assert_int_equal(n, ms_of(2026, 12, 7, 14, 30));                              /* Mon */
	assert_int_equal(tl_terms_next_cycle(&t, ms_of(2026, 12, 4, 14, 29), &n), 0);
	assert_int_equal(n, ms_of(2026, 12, 4, 14, 30));
	/* dom and dow both restricted: either matches (cron semantics) */
	strcpy(t.rule, "0 0 13 * 5");
	t.tz_offset_min = 0;
	assert_int_equal(tl_terms_next_cycle(&t, ms_of(2026, 12, 3, 0, 0), &n), 0);
	assert_int_equal(n, ms_of(2026, 12, 4, 0, 0)); /* a Friday before the 13th */
	/* a rule that never matches */
	strcpy(t.rule, "0 0 31 2 *");
	assert_int_equal(tl_terms_next_cycle(&t, ms_of(2026, 12, 3, 0, 0), &n), TL_ENOTFOUND);
	strcpy(t.rule, "bad");
	assert_int_equal(tl_terms_next_cycle(&t, 0, &n), TL_EINVAL);
}

/* ------------------------------------------------------- bad bodies */

static void test_wrong_field_type(void **state)
{
	struct chan ch;
	struct tl_state *s;
	char js[300], h[65];
	uint64_t bad, s1;
	(void)state;

	chan_init(&ch);
	bad = append_json(&ch.s, T0, "statement",
	                  "{\"id\":\"ST-9\",\"version\":1,\"date\":\"2026-11-30\",\"period\":{"
	                  "\"from\":\"2026-11-01\",\"to\":\"2026-11-30\"},\"currency\":\"CNY\","
	                  "\"opening\":0,\"lines\":[],\"closing\":\"0\",\"aging\":{\"current\":0,"
	                  "\"d1_30\":0,\"d31_60\":0,\"d61_90\":0,\"d90_plus\":0}}");
	s1 = statement(&ch, T0, "ST-1", 1, 500, NULL);
	grant(&ch, T0, &ch.approver, "approver");
	leaf_hex(&ch.s, s1, h);
	snprintf(js, sizeof js, "{\"statement\":\"%s\",\"balance\":\"500\"}", h);
	append_json(&ch.c, T0 + 1, "confirm", js);
	append_json(&ch.c, T0 + 2, "view", "{\"statement\":42}");
	append_json(&ch.c, T0 + 3, "seen", "{\"feed\":\"x\",\"size\":-1,\"checkpoint\":\"\"}");
	append_json(&ch.c, T0 + 4, "key.grant",
	            "{\"key\":\"00\",\"role\":\"approver\",\"name\":\"\"}");
	append_json(&ch.c, T0 + 5, "dispute", "{\"unknown\":1}");
	append_json(&ch.c, T0 + 6, "future.kind", "{\"anything\":[1,2,3]}");
	append_json(&ch.s, T0 + 7, "statement", "{}");
	append_json(&ch.s, T0 + 8, "terms.propose", "{\"terms_id\":1}");
	append_json(&ch.c, T0 + 9, "statement", "{}");

	s = build(&ch, T0 + 10);
	assert_int_equal(s->nstmts, 1);
	assert_int_equal(find_stmt(s, "ST-1", 1)->status, TL_STMT_SENT);
	assert_int_equal(
	        expect_finding(s, TL_FIND_INVALID, "field \"closing\" has the wrong type")->seq,
	        bad);
	assert_int_equal(expect_finding(s, TL_FIND_INVALID, "field \"balance\"")->feed,
	                 TL_ROLE_CUSTOMER);
	expect_finding(s, TL_FIND_INVALID, "view field \"statement\"");
	expect_finding(s, TL_FIND_INVALID, "seen has a negative size");
	expect_finding(s, TL_FIND_INVALID, "key.grant field \"key\"");
	expect_finding(s, TL_FIND_INVALID, "dispute has an unknown field \"unknown\"");
	expect_finding(s, TL_FIND_INVALID, "statement lacks the field");
	expect_finding(s, TL_FIND_INVALID, "terms.propose");
	expect_finding(s, TL_FIND_AUTHOR, "statement written by the customer");
	/* the customer's statement also makes the supplier a choice, said once */
	expect_finding(s, TL_FIND_ROLES, "both feeds hold statements");
	assert_string_equal(s->origin[TL_ROLE_SUPPLIER], ch.s.origin);
	assert_int_equal(s->nfindings, 10);
	tl_state_free(s);
	chan_free(&ch);
}

/* Mutating bytes of valid bodies: every variant that still decodes gives a
 * state or findings, never a crash (ASan/UBSan watch). */
static void test_mutated_bodies_no_crash(void **state)
{
	struct chan ch;
	uint64_t s1;
	uint32_t x = 12345;
	(void)state;

	chan_init(&ch);
	grant(&ch, T0, &ch.approver, "approver");
	s1 = statement(&ch, T0, "ST-1", 1, 500, NULL);
	answer(&ch, T0 + 1, s1, 400, &ch.approver,
	       "[{\"doc\":\"INV-1\",\"their_amount\":400,\"reason\":\"price\"}]", SIG_OK);
	for (int round = 0; round < 400; round++) {
		struct tfeed *f = (round & 1) ? &ch.c : &ch.s;
		size_t which = (round & 1) ? 1 : s1;
		struct tl_entry e;
		uint8_t *body;
		size_t blen;
		assert_int_equal(tl_record_decode(&e, f->recs[which], f->lens[which], NULL), 0);
		blen = e.body_len;
		body = malloc(blen);
		memcpy(body, e.body, blen);
		for (int k = 0; k < 3; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			body[x % blen] ^= (uint8_t)(1u << (x >> 8) % 8);
		}
		if (tl_mp_check_map(body, blen, NULL) == 0) {
			struct tl_state *s;
			append_mp(f, T0 + 2, (round & 1) ? "dispute" : "statement", body, blen);
			s = build(&ch, T0 + 3);
			assert_true(s->nstmts >= 1);
			tl_state_free(s);
		}
		free(body);
	}
	chan_free(&ch);
}

/* ------------------------------------------------- determinism property */

static uint32_t rnd(uint64_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return (uint32_t)(*st >> 11);
}

/* A random channel: statements, re-issues, people, answers good and bad. */
static void random_scenario(struct chan *ch, uint64_t seed, size_t steps)
{
	uint64_t r = seed * 0x9e3779b97f4a7c15ull + 1;
	const struct tl_keypair *people[4] = {&ch->approver, &ch->clerk, &ch->director, &ch->other};
	uint64_t t = T0;
	size_t nids = 0;
	uint64_t head[16]; /* latest version seq per id */
	int ver[16];
	int64_t amt[16]; /* closing of the latest version */
	uint64_t props[16];
	size_t nprops = 0;

	chan_init(ch);
	for (size_t i = 0; i < steps; i++) {
		uint32_t op = rnd(&r) % 16, a = rnd(&r);
		t += rnd(&r) % (2 * DAY);
		if (nids == 0)
			op = 0;
		switch (op) {
		case 0:
		case 1:
			if (nids < 16) {
				char id[16];
				snprintf(id, sizeof id, "ST-%zu", nids);
				amt[nids] = (int64_t)(a % 100000);
				head[nids] = statement(ch, t, id, 1, amt[nids], NULL);
				ver[nids++] = 1;
				break;
			}
			/* fall through */
		case 2: {
			size_t k = a % nids;
			char id[16], h[65];
			snprintf(id, sizeof id, "ST-%zu", k);
			leaf_hex(&ch->s, head[k], h);
			amt[k] = (int64_t)(a % 1000);
			head[k] = statement(ch, t, id, ++ver[k], amt[k], h);
			break;
		}
		case 3:
			grant(ch, t, people[a % 4], (a >> 4) % 3 == 0 ? "clerk" : "approver");
			break;
		case 4:
			if (a % 4 == 0)
				revoke(ch, t, people[(a >> 3) % 4]);
			break;
		case 5:
			seen(ch, t, ch->s.n - (a % 2 && ch->s.n ? 1 : 0));
			break;
		case 6:
			ref(&ch->c, t, "view", &ch->s, head[a % nids]);
			break;
		case 7:
		case 8: {
			size_t k = a % nids;
			answer(ch, t, head[k], (a >> 5) % 3 ? amt[k] : amt[k] + 7,
			       people[(a >> 2) % 4], NULL, (a >> 9) % 5 == 0 ? SIG_FLIP : SIG_OK);
			break;
		}
		case 9:
			answer(ch, t, head[a % nids], -5, people[(a >> 2) % 4],
			       "[{\"doc\":\"INV-1\",\"their_amount\":1,\"reason\":\"tax\"}]",
			       SIG_OK);
			break;
		case 10:
			ref(&ch->s, t, "close", &ch->s, head[a % nids]);
			break;
		case 11:
			if (nprops < 16)
				props[nprops++] = propose(
				        &ch->s, t, (a >> 3) % 2 ? "notification" : "confirmation",
				        (int)(a % 15));
			break;
		case 12:
			if (nprops)
				accept_terms(&ch->c, t, &ch->s, props[a % nprops]);
			break;
		case 13:
			append_json((a & 1) ? &ch->s : &ch->c, t, "comment",
			            "{\"text\":\"hello\"}");
			break;
		case 14:
			append_json(&ch->c, t, "confirm", "{\"balance\":true}");
			break;
		default: {
			char js[200], h[65];
			leaf_hex(&ch->s, head[a % nids], h);
			snprintf(js, sizeof js, "{\"statement\":\"%s\",\"level\":%u,\"to\":\"x\"}",
			         h, a % 4);
			append_json(&ch->s, t, "escalate", js);
			break;
		}
		}
	}
	for (size_t i = 0; i < ch->s.n; i++)
		ch->s.wit[i] = rnd(&r) % 3 ? 0 : T0 + i * 1000;
	for (size_t i = 0; i < ch->c.n; i++)
		ch->c.wit[i] = rnd(&r) % 3 ? 0 : T0 + i * 1500;
}

static void digest_of(const struct tl_state_builder *b, uint64_t now, uint8_t d[32])
{
	struct tl_state *s = NULL;
	assert_int_equal(tl_state_build(b, now, &s), 0);
	assert_int_equal(tl_state_digest(s, d), 0);
	tl_state_free(s);
}

static void add_rec(struct tl_state_builder *b, const struct tfeed *f, size_t i)
{
	assert_int_equal(tl_state_add(b, f->recs[i], f->lens[i], f->wit[i]), 0);
}

static void test_property_order_independent(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 40; seed++) {
		struct chan ch;
		uint8_t want[32], got[32];
		uint64_t r = seed;
		uint64_t now = T0 + (seed % 5) * 20 * DAY;
		struct tl_state_builder *b;
		struct tl_state *s;

		random_scenario(&ch, seed, 60 + seed * 3);
		/* reference: supplier's feed first */
		assert_int_equal(tl_state_builder_new(&b, NULL), 0);
		for (size_t i = 0; i < ch.s.n; i++)
			add_rec(b, &ch.s, i);
		for (size_t i = 0; i < ch.c.n; i++)
			add_rec(b, &ch.c, i);
		digest_of(b, now, want);
		assert_int_equal(tl_state_build(b, now, &s), 0);
		assert_true(s->nstmts > 0);
		{
			/* the serialisation is one well-formed MessagePack object */
			struct tl_buf ser;
			uint8_t d[32];
			tl_buf_init(&ser, (size_t)1 << 30);
			assert_int_equal(tl_state_serialise(s, &ser), 0);
			assert_int_equal(tl_mp_check(ser.data, ser.len, NULL), 0);
			tl_sha256(d, ser.data, ser.len);
			assert_memory_equal(d, want, 32);
			tl_buf_release(&ser);
		}
		tl_state_free(s);
		tl_state_builder_free(b);

		/* customer's feed first, and with the supplier named */
		for (int hint = 0; hint < 2; hint++) {
			assert_int_equal(tl_state_builder_new(&b, hint ? ch.s.kp.pk : NULL), 0);
			for (size_t i = 0; i < ch.c.n; i++)
				add_rec(b, &ch.c, i);
			for (size_t i = 0; i < ch.s.n; i++)
				add_rec(b, &ch.s, i);
			digest_of(b, now, got);
			assert_memory_equal(got, want, 32);
			tl_state_builder_free(b);
		}

		/* random merges, with intermediate builds from prefixes */
		for (int perm = 0; perm < 8; perm++) {
			size_t i = 0, j = 0;
			assert_int_equal(tl_state_builder_new(&b, NULL), 0);
			while (i < ch.s.n || j < ch.c.n) {
				int take_s = j == ch.c.n || (i < ch.s.n && rnd(&r) % 2);
				if (take_s)
					add_rec(b, &ch.s, i++);
				else
					add_rec(b, &ch.c, j++);
				if (rnd(&r) % 17 == 0)
					digest_of(b, now, got); /* a prefix: must not disturb */
			}
			digest_of(b, now, got);
			assert_memory_equal(got, want, 32);
			tl_state_builder_free(b);
		}

		/* a record out of order is refused and changes nothing */
		if (ch.s.n > 2) {
			assert_int_equal(tl_state_builder_new(&b, NULL), 0);
			add_rec(b, &ch.s, 0);
			assert_int_equal(tl_state_add(b, ch.s.recs[2], ch.s.lens[2], 0), TL_ECHAIN);
			tl_state_builder_free(b);
		}
		chan_free(&ch);
	}
}

/* A record of a third feed or of another channel is refused. */
static void test_third_feed_refused(void **state)
{
	struct chan ch, other;
	struct tl_state_builder *b;
	(void)state;

	chan_init(&ch);
	chan_init(&other);
	key(&other.c.kp, 9);
	{
		uint8_t id[TL_CHANNEL_LEN];
		tl_channel_id(id, other.s.kp.pk, other.c.kp.pk, "default", 7);
		tl_origin_format(other.c.origin, other.c.kp.pk, id);
	}
	statement(&ch, T0, "ST-1", 1, 1, NULL);
	seen(&ch, T0, 1);
	append_json(&other.c, T0, "comment", "{\"text\":\"x\"}");
	assert_int_equal(tl_state_builder_new(&b, NULL), 0);
	add_rec(b, &ch.s, 0);
	assert_int_equal(tl_state_add(b, other.c.recs[0], other.c.lens[0], 0), TL_EINVAL);
	add_rec(b, &ch.c, 0);
	assert_int_equal(tl_state_add(b, (const uint8_t *)"\x01\x02", 2, 0), TL_EFORMAT);
	tl_state_builder_free(b);
	chan_free(&ch);
	chan_free(&other);
}

/* --------------------------------------------------------------- scale */

static void test_100k_entries(void **state)
{
	struct chan ch;
	struct tl_state *s;
	const size_t n = 10000; /* 10 entries each, + 1 grant */
	(void)state;

	chan_init(&ch);
	grant(&ch, T0, &ch.approver, "approver");
	for (size_t i = 0; i < n; i++) {
		char id[32];
		uint64_t t = T0 + i * 60000, sq;
		snprintf(id, sizeof id, "ST-%06zu", i);
		sq = statement(&ch, t, id, 1, (int64_t)(1000 + i), NULL);
		seen(&ch, t + 1, ch.s.n);
		ref(&ch.c, t + 2, "view", &ch.s, sq);
		append_json(&ch.c, t + 3, "comment", "{\"text\":\"checking\"}");
		{
			char js[200], h[65];
			leaf_hex(&ch.s, sq, h);
			snprintf(js, sizeof js,
			         "{\"statement\":\"%s\",\"level\":1,\"via\":\"email\"}", h);
			append_json(&ch.s, t + 4, "reminder", js);
			snprintf(js, sizeof js, "{\"statement\":\"%s\",\"text\":\"see lines\"}", h);
			append_json(&ch.s, t + 5, "comment", js);
			append_json(&ch.c, t + 6, "comment", js);
		}
		if (i % 10 == 0)
			answer(&ch, t + 7, sq, 1, &ch.approver,
			       "[{\"doc\":\"INV-1\",\"their_amount\":1,\"reason\":\"other\"}]",
			       SIG_OK);
		else
			answer(&ch, t + 7, sq, (int64_t)(1000 + i), &ch.approver, NULL, SIG_OK);
		append_json(&ch.s, t + 8, "comment", "{\"text\":\"thanks\"}");
		ref(&ch.s, t + 9, "close", &ch.s, sq);
	}
	assert_int_equal(ch.s.n + ch.c.n, 100001);
	s = build(&ch, T0 + n * 60000);
	assert_int_equal(s->nstmts, n);
	assert_int_equal(s->size[0] + s->size[1], 100001);
	assert_int_equal(s->count[TL_STMT_CLOSED], n - n / 10);
	assert_int_equal(s->count[TL_STMT_DISPUTED], n / 10);
	assert_int_equal(s->nfindings, n / 10); /* the closes of disputed statements */
	assert_int_equal(s->stmts[1].ntimeline, 8);
	tl_state_free(s);
	chan_free(&ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_full_cycle),
	        cmocka_unit_test(test_close_unconfirmed_refused),
	        cmocka_unit_test(test_confirm_other_balance_is_dispute),
	        cmocka_unit_test(test_clerk_refused),
	        cmocka_unit_test(test_revoked_boundary),
	        cmocka_unit_test(test_grant_after_confirm),
	        cmocka_unit_test(test_bad_person_sig),
	        cmocka_unit_test(test_person_sig_message),
	        cmocka_unit_test(test_notification_deemed_at_deadline),
	        cmocka_unit_test(test_confirmation_overdue),
	        cmocka_unit_test(test_terms_unaccepted_stay_unilateral),
	        cmocka_unit_test(test_wrong_field_type),
	        cmocka_unit_test(test_mutated_bodies_no_crash),
	        cmocka_unit_test(test_property_order_independent),
	        cmocka_unit_test(test_third_feed_refused),
	        cmocka_unit_test(test_100k_entries),
	        cmocka_unit_test(test_terms_new_fields),
	        cmocka_unit_test(test_terms_old_proposal_and_defaults),
	        cmocka_unit_test(test_terms_invalid_values),
	        cmocka_unit_test(test_next_cycle),
	};
	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
