/*
 * test_proven.c — end-to-end: `tally statement show|list` and `tally channel
 * state` report claimed and proven (witnessed) times side by side, from the
 * stored checkpoints with cosignatures merged in (as a node does when its
 * witnesses answer), under the witness set of --witness/--quorum or of the
 * agreed terms.
 *
 * One home, one statement ST-1 confirmed by the customer. Every claimed time
 * is "now" (the customer's clock says it answered at once: on time). Every
 * witness cosigned the supplier's checkpoint holding ST-1 at s1 (60 days
 * ago), so the proven deadline is D = s1 + 10 days. Pairs of witnesses then
 * saw the customer's feed at different times, so that choosing a pair with
 * --witness chooses the evidence:
 *
 *   pair   size 2 (no confirm yet)   size 3 (with the confirm)   proven verdict
 *   P0     D           (absent at D)  D + 3 days                  late (absent exactly at D)
 *   P1     D + 4 d + 1 s              D + 6 days                  late by more than 4 d 0 h
 *   P2     D - 1 s                    D + 1 s                     not proven
 *   P3     D - 2 days                 D           (existed by D)  on time
 *
 * P0 and P2 are the two sides of the "late" boundary (absent_at >= D), P3
 * and P2 the two sides of the "on time" one (existed_by <= D). A second
 * channel has terms that name a witness pair, used without any flag.
 */
#include "harness.h"
#include "nodes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "node/tl_node.h"

#define PASS        "correct horse battery staple"
#define PERSON_PASS "person passphrase"
#define NW          12 /* w0..w7: the pairs; w8: the supplier only; w9..w11: never */
#define DAY_S       86400ull

struct chan {
	char sup_origin[256], cus_origin[256];
	char ch[33];
	char leaf[65];
};

struct fx {
	char *dir;
	char home_env[4300];
	char home[4200];
	char alice_key[4300], alice[65];
	struct chan a, t; /* a: witnesses by flags; t: witnesses by the terms */
	struct chan a2;   /* channel a's second statement (leaf only) */
	struct tl_keypair wk[NW];
	struct tl_vkey wv[NW];
	char wstr[NW][512];
	uint64_t s1, d; /* unix s: the statement witnessed, the proven deadline */
	char at[32];    /* --at, ms */
	struct th_run r;
};

static int tally(struct fx *x, const char *const *argv)
{
	const char *env[] = {x->home_env, "TALLY_PASSPHRASE=" PASS,
	                     "TALLY_PERSON_PASSPHRASE=" PERSON_PASS, NULL};
	return th_tally_env(&x->r, env, argv, 300);
}

static void tally_line(struct fx *x, const char *const *argv, char *out, size_t cap)
{
	tally(x, argv);
	th_first_line(&x->r, argv, out, cap);
}

static void import(struct fx *x, struct chan *c, const char *id)
{
	char line[512];
	const char *a[] = {"tally",      "statement",   "import", "examples/statement.csv",
	                   "--channel",  c->sup_origin, "--id",   id,
	                   "--currency", "CNY",         "--from", "2026-11-01",
	                   "--to",       "2026-11-30",  NULL};
	tally_line(x, a, line, sizeof line);
	const char *sp = strchr(line, ' ');
	assert_non_null(sp);
	assert_int_equal(strlen(sp + 1), 64);
	memcpy(c->leaf, sp + 1, 65);
}

static void checkpoint(struct fx *x, const char *origin)
{
	const char *a[] = {"tally", "feed", "checkpoint", origin, NULL};
	assert_int_equal(tally(x, a), 0);
}

static void grant_confirm(struct fx *x, struct chan *c)
{
	char line[256];
	const char *g[] = {"tally", "key",    "grant",  "--book",   "cus",    "--channel", c->ch,
	                   "--key", x->alice, "--role", "approver", "--name", "alice",     NULL};
	tally_line(x, g, line, sizeof line);
	checkpoint(x, c->cus_origin); /* without the confirm */
	const char *a[] = {"tally", "confirm", c->leaf,      "--channel",
	                   c->ch,   "--key",   x->alice_key, NULL};
	tally_line(x, a, line, sizeof line);
	checkpoint(x, c->cus_origin); /* with it */
}

/* Cosigns the stored checkpoint of (origin, size) by witness w at time t
 * and merges the line into the store, as a node does. */
static void cosign(struct fx *x, const char *origin, uint64_t size, uint64_t t, int w)
{
	th_cosign_stored(x->home, origin, size, t, &x->wv[w], &x->wk[w], 1);
}

static void open_channel(struct fx *x, struct chan *c, const char *sup, const char *cus,
                         const char *label)
{
	const char *a3[] = {"tally",  "channel", "open",    "--book", "sup",
	                    "--peer", cus,       "--label", label,    NULL};
	tally_line(x, a3, c->sup_origin, sizeof c->sup_origin);
	const char *a4[] = {"tally",  "channel", "open",    "--book", "cus",
	                    "--peer", sup,       "--label", label,    NULL};
	tally_line(x, a4, c->cus_origin, sizeof c->cus_origin);
	memcpy(c->ch, strrchr(c->sup_origin, '/') + 1, 33);
	assert_string_equal(c->ch, strrchr(c->cus_origin, '/') + 1);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	char sup[65], cus[65], line[512];
	uint64_t now = (uint64_t)time(NULL);

	assert_int_equal(tl_init(), 0);
	x->dir = th_tmpdir("proven");
	snprintf(x->home, sizeof x->home, "%s/home", x->dir);
	snprintf(x->home_env, sizeof x->home_env, "TALLY_HOME=%s", x->home);
	for (int w = 0; w < NW; w++) {
		uint8_t seed[TL_SEED_LEN];
		char name[64];
		struct tl_buf b;
		memset(seed, 0x30 + w, sizeof seed);
		assert_int_equal(tl_key_from_seed(&x->wk[w], seed), 0);
		snprintf(name, sizeof name, "w%d.witness.example", w);
		assert_int_equal(tl_vkey_from_pub(&x->wv[w], name, TL_SIGTYPE_COSIG, x->wk[w].pk),
		                 0);
		tl_buf_init(&b, 512);
		assert_int_equal(tl_vkey_format(&x->wv[w], &b), 0);
		snprintf(x->wstr[w], sizeof x->wstr[w], "%s", tl_buf_cstr(&b));
		tl_buf_release(&b);
	}
	/* Witnessed times in the past (cosignatures may not be dated after the
	 * verifier's clock); --at is a day from now, so the claimed deadline
	 * (now + 10 days) is not yet due either. */
	x->s1 = now - 60 * DAY_S;
	x->d = x->s1 + 10 * DAY_S;
	snprintf(x->at, sizeof x->at, "%llu", (unsigned long long)(now + DAY_S) * 1000);

	const char *a1[] = {"tally", "init", "--book", "sup", NULL};
	tally_line(x, a1, sup, sizeof sup);
	const char *a2[] = {"tally", "init", "--book", "cus", NULL};
	tally_line(x, a2, cus, sizeof cus);
	const char *a6[] = {"tally", "key", "new", "--name", "alice", NULL};
	tally_line(x, a6, x->alice, sizeof x->alice);
	snprintf(x->alice_key, sizeof x->alice_key, "%s/people/alice.key", x->home);

	/* Channel a: supplier feed.open 0, ST-1 1 (checkpoint 2); customer
	 * feed.open 0, key.grant 1 (checkpoint 2), confirm 2 (checkpoint 3). */
	open_channel(x, &x->a, sup, cus, "flags");
	import(x, &x->a, "ST-1");
	checkpoint(x, x->a.sup_origin);
	grant_confirm(x, &x->a);
	for (int w = 0; w < 9; w++)
		cosign(x, x->a.sup_origin, 2, x->s1, w);
	static const struct {
		int64_t absent, existed; /* seconds relative to D */
	} pair[4] = {
	        {0, 3 * (int64_t)DAY_S},
	        {4 * (int64_t)DAY_S + 1, 6 * (int64_t)DAY_S},
	        {-1, 1},
	        {-2 * (int64_t)DAY_S, 0},
	};
	for (int p = 0; p < 4; p++)
		for (int w = 2 * p; w < 2 * p + 2; w++) {
			cosign(x, x->a.cus_origin, 2, (uint64_t)((int64_t)x->d + pair[p].absent),
			       w);
			cosign(x, x->a.cus_origin, 3, (uint64_t)((int64_t)x->d + pair[p].existed),
			       w);
		}

	/* ST-2 (supplier seq 2, checkpoint 3), witnessed at s1 + 100 s by all,
	 * never answered: its proven deadline D + 100 s; P0 saw the customer's
	 * feed (size 3, no answer to it) at D + 3 days. */
	x->a2 = x->a;
	import(x, &x->a2, "ST-2");
	checkpoint(x, x->a.sup_origin);
	for (int w = 0; w < 9; w++)
		cosign(x, x->a.sup_origin, 3, x->s1 + 100, w);

	/* Channel t: the supplier proposes terms naming w0 and w1, quorum 2,
	 * the customer accepts; then ST-T as above. Supplier: feed.open 0,
	 * terms.propose 1, ST-T 2 (checkpoint 3); customer: feed.open 0,
	 * terms.accept 1 (checkpoint 2), key.grant 2 (checkpoint 3), confirm 3
	 * (checkpoint 4). */
	open_channel(x, &x->t, sup, cus, "terms");
	const char *tp[] = {"tally",
	                    "terms",
	                    "propose",
	                    "--channel",
	                    x->t.sup_origin,
	                    "--response-days",
	                    "10",
	                    "--procedure",
	                    "confirmation",
	                    "--currency",
	                    "CNY",
	                    "--witness",
	                    x->wstr[0],
	                    "--witness",
	                    x->wstr[1],
	                    "--quorum",
	                    "2",
	                    "--id",
	                    "T-witnessed",
	                    NULL};
	tally_line(x, tp, line, sizeof line);
	char pleaf[65];
	const char *sp = strchr(line, ' ');
	assert_non_null(sp);
	memcpy(pleaf, sp + 1, 65);
	const char *ta[] = {"tally", "terms", "accept", "--channel", x->t.cus_origin, pleaf, NULL};
	tally_line(x, ta, line, sizeof line);
	checkpoint(x, x->t.cus_origin); /* size 2: the accept */
	import(x, &x->t, "ST-T");
	checkpoint(x, x->t.sup_origin); /* size 3 */
	grant_confirm(x, &x->t);        /* sizes 3 and 4 */
	for (int w = 0; w < 2; w++) {
		cosign(x, x->t.sup_origin, 3, x->s1, w);
		cosign(x, x->t.cus_origin, 2, x->s1 - DAY_S, w);
		cosign(x, x->t.cus_origin, 3, x->d + 4 * DAY_S + 1, w);
		cosign(x, x->t.cus_origin, 4, x->d + 6 * DAY_S, w);
	}
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	th_run_free(&x->r);
	th_rmtree(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

/* `statement show --json` of channel c with the given witnesses (indexes,
 * -1 ends) and quorum (NULL: none given); the parsed output. */
static json_t *show(struct fx *x, struct chan *c, const int *w, const char *quorum)
{
	const char *a[40] = {"tally",     "--json",      "statement", "show", c->leaf,
	                     "--channel", c->cus_origin, "--at",      x->at};
	int n = 9;
	for (int i = 0; w && w[i] >= 0; i++) {
		a[n++] = "--witness";
		a[n++] = x->wstr[w[i]];
	}
	if (quorum) {
		a[n++] = "--quorum";
		a[n++] = quorum;
	}
	a[n] = NULL;
	int rc = tally(x, a);
	if (rc)
		fprintf(stderr, "statement show: exit %d: %s\n", rc, x->r.err);
	assert_int_equal(rc, 0);
	json_t *j = json_loads(x->r.out, 0, NULL);
	assert_non_null(j);
	return j;
}

static json_t *late_of(json_t *j, const char *part)
{
	json_t *p = json_object_get(json_object_get(j, "lateness"), part);
	assert_non_null(p);
	return p;
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	if (!s)
		fail_msg("no string %s", k);
	return s;
}

static json_int_t num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_integer(v))
		fail_msg("no integer %s", k);
	return json_integer_value(v);
}

/* The claimed side of every case: the customer's clock says on time. */
static void claimed_on_time(json_t *j)
{
	json_t *cl = late_of(j, "claimed"), *dl = late_of(j, "deadline");
	assert_string_equal(str(cl, "verdict"), "on time");
	/* claimed deadline: the statement's claimed time (about now) + 10 days */
	json_int_t sent_claimed = num(late_of(j, "sent"), "claimed_ms");
	assert_int_equal(num(dl, "claimed_ms"), sent_claimed + 10 * (json_int_t)DAY_S * 1000);
	assert_true(sent_claimed > (json_int_t)(time(NULL) - 3600) * 1000);
}

static void test_late_proven_at_the_boundary(void **state)
{
	struct fx *x = *state;
	const int p0[] = {0, 1, -1};
	json_t *j = show(x, &x->a, p0, "2");
	json_t *w = late_of(j, "witnessed"), *dl = late_of(j, "deadline");

	claimed_on_time(j);
	/* The deadline is proven, from the statement's witnessed time. */
	assert_true(json_is_true(json_object_get(dl, "proven")));
	assert_string_equal(str(dl, "source"), "witnessed");
	assert_int_equal(num(dl, "witnessed_ms"), (json_int_t)x->d * 1000);
	assert_int_equal(num(late_of(j, "sent"), "witnessed_ms"), (json_int_t)x->s1 * 1000);
	assert_true(json_is_true(json_object_get(late_of(j, "sent"), "proven")));
	/* The confirm existed by D + 3 days; the quorum saw the feed without it
	 * exactly at D: late (absent at >= deadline), at least 1 day. */
	json_t *ans = late_of(j, "answer");
	assert_string_equal(str(ans, "kind"), "confirm");
	assert_int_equal(num(ans, "seq"), 2);
	assert_int_equal(num(ans, "witnessed_ms"), (json_int_t)(x->d + 3 * DAY_S) * 1000);
	assert_string_equal(str(w, "verdict"), "late");
	assert_true(json_is_true(json_object_get(w, "proven")));
	assert_int_equal(num(w, "days_late"), 1);
	assert_int_equal(num(w, "evidence_ms"), (json_int_t)x->d * 1000);
	assert_int_equal(num(w, "absent_at_ms"), (json_int_t)x->d * 1000);
	/* The state itself counts the deadline from the witnessed time. */
	assert_string_equal(str(j, "deadline_from"), "witnessed");
	assert_int_equal(num(j, "deadline_ms"), (json_int_t)x->d * 1000);
	json_t *ws = json_object_get(j, "witnesses");
	assert_string_equal(str(ws, "source"), "flags");
	assert_int_equal(num(ws, "quorum"), 2);
	json_decref(j);
}

static void test_late_by_days(void **state)
{
	struct fx *x = *state;
	const int p1[] = {2, 3, -1};
	json_t *j = show(x, &x->a, p1, "2");
	json_t *w = late_of(j, "witnessed");
	claimed_on_time(j);
	/* absent at D + 4 days + 1 s: ceil(4 days + 1 s) = 5 days */
	assert_string_equal(str(w, "verdict"), "late");
	assert_int_equal(num(w, "days_late"), 5);
	assert_int_equal(num(w, "evidence_ms"), (json_int_t)(x->d + 4 * DAY_S + 1) * 1000);
	json_decref(j);
}

static void test_just_inside_both_boundaries_not_proven(void **state)
{
	struct fx *x = *state;
	const int p2[] = {4, 5, -1};
	json_t *j = show(x, &x->a, p2, "2");
	json_t *w = late_of(j, "witnessed");
	claimed_on_time(j);
	/* absent at D - 1 s (not >= D), existed by D + 1 s (not <= D) */
	assert_string_equal(str(w, "verdict"), "not proven");
	assert_false(json_is_true(json_object_get(w, "proven")));
	assert_int_equal(num(w, "absent_at_ms"), (json_int_t)(x->d - 1) * 1000);
	assert_int_equal(num(late_of(j, "answer"), "witnessed_ms"), (json_int_t)(x->d + 1) * 1000);
	/* the deadline itself is still proven */
	assert_true(json_is_true(json_object_get(late_of(j, "deadline"), "proven")));
	json_decref(j);
}

static void test_on_time_proven_at_the_boundary(void **state)
{
	struct fx *x = *state;
	const int p3[] = {6, 7, -1};
	json_t *j = show(x, &x->a, p3, "2");
	json_t *w = late_of(j, "witnessed");
	claimed_on_time(j);
	assert_string_equal(str(w, "verdict"), "on time");
	assert_true(json_is_true(json_object_get(w, "proven")));
	assert_int_equal(num(late_of(j, "answer"), "witnessed_ms"), (json_int_t)x->d * 1000);
	assert_int_equal(num(w, "days_late"), 0);
	json_decref(j);
}

static void test_not_proven_without_cosignatures_or_quorum(void **state)
{
	struct fx *x = *state;

	/* No witness set at all (the default terms name none). */
	json_t *j = show(x, &x->a, NULL, NULL);
	claimed_on_time(j);
	assert_string_equal(str(late_of(j, "witnessed"), "verdict"), "not proven");
	assert_false(json_is_true(json_object_get(late_of(j, "deadline"), "proven")));
	assert_true(json_is_null(json_object_get(late_of(j, "answer"), "witnessed_ms")));
	assert_string_equal(str(json_object_get(j, "witnesses"), "source"), "none");
	assert_string_equal(str(j, "deadline_from"), "claimed");
	json_decref(j);

	/* Witnesses that never cosigned anything, even at quorum 1. */
	const int never[] = {9, 10, -1};
	j = show(x, &x->a, never, "1");
	assert_string_equal(str(late_of(j, "witnessed"), "verdict"), "not proven");
	assert_true(json_is_null(json_object_get(late_of(j, "sent"), "witnessed_ms")));
	assert_false(json_is_true(json_object_get(late_of(j, "deadline"), "proven")));
	json_decref(j);

	/* A quorum not met: w0 and w1 prove late, w8 saw only the supplier's
	 * feed; 3 of 3 proves the deadline but nothing about the answer. */
	const int three[] = {0, 1, 8, -1};
	j = show(x, &x->a, three, "3");
	assert_true(json_is_true(json_object_get(late_of(j, "deadline"), "proven")));
	assert_string_equal(str(late_of(j, "witnessed"), "verdict"), "not proven");
	assert_true(json_is_null(json_object_get(late_of(j, "answer"), "witnessed_ms")));
	json_decref(j);
	/* ... while 2 of the same 3 is met again. */
	j = show(x, &x->a, three, "2");
	assert_string_equal(str(late_of(j, "witnessed"), "verdict"), "late");
	json_decref(j);

	/* One cosigning witness and one that never did, quorum 2: the
	 * statement's own time is not proven either. */
	const int half[] = {0, 9, -1};
	j = show(x, &x->a, half, "2");
	assert_false(json_is_true(json_object_get(late_of(j, "deadline"), "proven")));
	assert_string_equal(str(late_of(j, "witnessed"), "verdict"), "not proven");
	json_decref(j);
}

static void test_unanswered_overdue_proven(void **state)
{
	struct fx *x = *state;
	const int p0[] = {0, 1, -1}, p3[] = {6, 7, -1};
	json_t *j = show(x, &x->a2, p0, "2");
	json_t *w = late_of(j, "witnessed");

	assert_string_equal(str(j, "id"), "ST-2");
	assert_true(json_is_null(late_of(j, "answer")));
	/* The claimed deadline (now + 10 days) is not due at --at (now + 1 day). */
	assert_string_equal(str(late_of(j, "claimed"), "verdict"), "none");
	assert_int_equal(num(late_of(j, "deadline"), "witnessed_ms"),
	                 (json_int_t)(x->d + 100) * 1000);
	/* The quorum saw the customer's feed without an answer at D + 3 days:
	 * ceil((3 days - 100 s) / 1 day) = 3. */
	assert_string_equal(str(w, "verdict"), "late");
	assert_int_equal(num(w, "days_late"), 3);
	assert_int_equal(num(w, "evidence_ms"), (json_int_t)(x->d + 3 * DAY_S) * 1000);
	assert_non_null(strstr(str(w, "text"), "still without an answer"));
	json_decref(j);
	/* P3 last saw the feed at D, before this deadline: not proven. */
	j = show(x, &x->a2, p3, "2");
	assert_string_equal(str(late_of(j, "witnessed"), "verdict"), "not proven");
	json_decref(j);
}

static void test_flag_errors(void **state)
{
	struct fx *x = *state;
	const char *noq[] = {"tally",         "statement", "show",     x->a.leaf, "--channel",
	                     x->a.cus_origin, "--witness", x->wstr[0], NULL};
	assert_int_equal(tally(x, noq), 2);
	assert_non_null(strstr(x->r.err, "--quorum"));
	const char *big[] = {
	        "tally",     "statement", "show",     x->a.leaf, "--channel", x->a.cus_origin,
	        "--witness", x->wstr[0],  "--quorum", "2",       NULL};
	assert_int_equal(tally(x, big), 2);
	const char *bad[] = {
	        "tally",     "statement", "show",     x->a.leaf, "--channel", x->a.cus_origin,
	        "--witness", "nonsense",  "--quorum", "1",       NULL};
	assert_int_equal(tally(x, bad), 2);
	assert_non_null(strstr(x->r.err, "nonsense"));
}

static void test_show_text(void **state)
{
	struct fx *x = *state;
	const char *a[] = {"tally",         "statement", "show",     x->a.leaf,   "--channel",
	                   x->a.cus_origin, "--at",      x->at,      "--witness", x->wstr[2],
	                   "--witness",     x->wstr[3],  "--quorum", "2",         NULL};
	assert_int_equal(tally(x, a), 0);
	const char *out = x->r.out;
	assert_non_null(strstr(out, "claimed and proven times:"));
	assert_non_null(strstr(out, "proven = witnessed by at least 2 of 2 witnesses (given with "
	                            "--witness)"));
	assert_non_null(strstr(out, "verdict, claimed: on time"));
	assert_non_null(strstr(out, "verdict, proven:  LATE by more than 4 d 0 h, proven: the "
	                            "witnesses saw the customer's feed without the answer at"));
	assert_non_null(strstr(out, "the deadline counts from the statement's witnessed time"));
	assert_non_null(strstr(out, "(counted from the statement's witnessed time: proven)"));
	/* Without witnesses it says nothing is proven. */
	const char *b[] = {"tally",     "statement",     "show", x->a.leaf,
	                   "--channel", x->a.cus_origin, NULL};
	assert_int_equal(tally(x, b), 0);
	assert_non_null(strstr(x->r.out, "nothing is proven"));
	assert_non_null(strstr(x->r.out, "verdict, proven:  not proven"));
	assert_null(strstr(x->r.out, "LATE"));
}

static void test_list(void **state)
{
	struct fx *x = *state;
	const char *a[] = {"tally",     "--json",    "statement",  "list",
	                   "--channel", x->a.ch,     "--incoming", "--at",
	                   x->at,       "--witness", x->wstr[2],   "--witness",
	                   x->wstr[3],  "--quorum",  "2",          NULL};
	assert_int_equal(tally(x, a), 0);
	json_t *j = json_loads(x->r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 2);
	json_t *s = json_array_get(j, 0);
	assert_string_equal(str(s, "leaf"), x->a.leaf);
	assert_string_equal(str(json_array_get(j, 1), "leaf"), x->a2.leaf);
	json_t *l = json_object_get(s, "lateness");
	assert_string_equal(str(json_object_get(l, "witnessed"), "verdict"), "late");
	assert_int_equal(num(json_object_get(l, "witnessed"), "days_late"), 5);
	assert_string_equal(str(json_object_get(l, "claimed"), "verdict"), "on time");
	assert_int_equal(num(json_object_get(l, "deadline"), "witnessed_ms"),
	                 (json_int_t)x->d * 1000);
	json_decref(j);
	/* The table: deadline source, claimed and proven verdicts. */
	const char *b[] = {"tally",      "statement", "list",     "--channel", x->a.ch,
	                   "--incoming", "--at",      x->at,      "--witness", x->wstr[2],
	                   "--witness",  x->wstr[3],  "--quorum", "2",         NULL};
	assert_int_equal(tally(x, b), 0);
	const char *row = strstr(x->r.out, "incoming");
	assert_non_null(row);
	char line[512];
	size_t n = strcspn(row, "\n");
	assert_true(n < sizeof line);
	memcpy(line, row, n);
	line[n] = 0;
	assert_non_null(strstr(line, " witnessed "));
	assert_non_null(strstr(line, " on time "));
	assert_non_null(strstr(line, " late >4d "));
}

static void test_channel_state_same_evaluation(void **state)
{
	struct fx *x = *state;
	const char *a[] = {"tally",    "--json",   "channel",   "state",    x->a.cus_origin,
	                   "--at",     x->at,      "--witness", x->wstr[0], "--witness",
	                   x->wstr[1], "--quorum", "2",         NULL};
	assert_int_equal(tally(x, a), 0);
	json_t *j = json_loads(x->r.out, 0, NULL);
	assert_non_null(j);
	json_t *s = json_array_get(json_object_get(j, "statements"), 0);
	assert_non_null(s);
	assert_string_equal(str(s, "deadline_from"), "witnessed");
	json_t *w = json_object_get(json_object_get(s, "lateness"), "witnessed");
	assert_string_equal(str(w, "verdict"), "late");
	assert_int_equal(num(w, "days_late"), 1);
	assert_string_equal(str(json_object_get(j, "witness_set"), "source"), "flags");
	/* The digest is over the claimed times: the same with or without
	 * witnesses, so both sides compare it whatever cosignatures they hold. */
	char d1[65];
	snprintf(d1, sizeof d1, "%s", str(j, "digest"));
	json_decref(j);
	const char *b[] = {"tally",         "--json", "channel", "state",
	                   x->a.cus_origin, "--at",   x->at,     NULL};
	assert_int_equal(tally(x, b), 0);
	j = json_loads(x->r.out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(str(j, "digest"), d1);
	assert_true(json_is_null(json_object_get(j, "witnessed")));
	json_decref(j);
}

static void test_terms_witness_set(void **state)
{
	struct fx *x = *state;
	/* No flags: the agreed terms name w0 and w1, quorum 2. */
	json_t *j = show(x, &x->t, NULL, NULL);
	json_t *ws = json_object_get(j, "witnesses");
	assert_string_equal(str(ws, "source"), "terms");
	assert_int_equal(num(ws, "quorum"), 2);
	assert_int_equal(json_array_size(json_object_get(ws, "keys")), 2);
	claimed_on_time(j);
	json_t *w = late_of(j, "witnessed");
	assert_string_equal(str(w, "verdict"), "late");
	assert_int_equal(num(w, "days_late"), 5);
	assert_int_equal(num(late_of(j, "deadline"), "witnessed_ms"), (json_int_t)x->d * 1000);
	json_decref(j);
	/* --quorum alone overrides the terms' quorum, within their keys. */
	j = show(x, &x->t, NULL, "1");
	assert_int_equal(num(json_object_get(j, "witnesses"), "quorum"), 1);
	assert_string_equal(str(late_of(j, "witnessed"), "verdict"), "late");
	json_decref(j);
	const char *q3[] = {"tally",         "statement", "show", x->t.leaf, "--channel",
	                    x->t.cus_origin, "--quorum",  "3",    NULL};
	assert_int_equal(tally(x, q3), 2);
	/* Flags replace the terms' set: w2 and w3 never saw this channel. */
	const int other[] = {2, 3, -1};
	j = show(x, &x->t, other, "2");
	assert_string_equal(str(json_object_get(j, "witnesses"), "source"), "flags");
	assert_string_equal(str(late_of(j, "witnessed"), "verdict"), "not proven");
	json_decref(j);
	/* Channel state with no flags uses the terms too. */
	const char *cs[] = {"tally", "channel", "state", x->t.cus_origin, "--at", x->at, NULL};
	assert_int_equal(tally(x, cs), 0);
	assert_non_null(strstr(x->r.out, "claimed and witnessed times (2 of 2 witnesses, from the "
	                                 "agreed terms)"));
	assert_non_null(strstr(x->r.out, "LATE by more than 4 d 0 h"));
}

/* `tally export --channel` takes the terms' witness set through the same
 * evaluation, and `tally audit` of the bundle agrees with statement show. */
static void test_export_and_audit_agree(void **state)
{
	struct fx *x = *state;
	char path[4400];
	size_t len;

	snprintf(path, sizeof path, "%s/t.bundle", x->dir);
	const char *ex[] = {"tally", "export", "--channel", x->t.ch, "-o", path, NULL};
	if (tally(x, ex) != 0)
		fprintf(stderr, "export: %s\n", x->r.err);
	assert_int_equal(x->r.status, 0);
	char *b = th_read_file(path, &len);
	assert_non_null(b);
	json_t *j = json_loadb(b, len, 0, NULL);
	free(b);
	assert_non_null(j);
	assert_int_equal(num(j, "quorum"), 2);
	json_t *wl = json_object_get(j, "witnesses");
	assert_int_equal(json_array_size(wl), 2);
	assert_string_equal(json_string_value(json_array_get(wl, 0)), x->wstr[0]);
	json_decref(j);
	const char *au[] = {"tally", "--json", "audit", path, "--at", x->at, NULL};
	assert_int_equal(tally(x, au), 0);
	j = json_loads(x->r.out, 0, NULL);
	assert_non_null(j);
	json_t *s = json_array_get(json_object_get(j, "statements"), 0);
	assert_non_null(s);
	json_t *w = json_object_get(s, "witnessed");
	assert_string_equal(str(w, "verdict"), "late");
	assert_int_equal(num(w, "days_late"), 5);
	json_int_t ev = num(w, "evidence_ms");
	json_decref(j);
	j = show(x, &x->t, NULL, NULL);
	assert_int_equal(num(late_of(j, "witnessed"), "evidence_ms"), ev);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_late_proven_at_the_boundary),
	        cmocka_unit_test(test_late_by_days),
	        cmocka_unit_test(test_just_inside_both_boundaries_not_proven),
	        cmocka_unit_test(test_on_time_proven_at_the_boundary),
	        cmocka_unit_test(test_not_proven_without_cosignatures_or_quorum),
	        cmocka_unit_test(test_unanswered_overdue_proven),
	        cmocka_unit_test(test_flag_errors),
	        cmocka_unit_test(test_show_text),
	        cmocka_unit_test(test_list),
	        cmocka_unit_test(test_channel_state_same_evaluation),
	        cmocka_unit_test(test_terms_witness_set),
	        cmocka_unit_test(test_export_and_audit_agree),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
