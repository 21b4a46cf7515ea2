/*
 * test_people.c — end-to-end tests of tally key new|grant|revoke, confirm,
 * dispute and view on the real binary: one data directory holding both
 * books (supplier and customer), offline, and the channel state they lead to.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "node/tl_node.h"

#define PASS        "correct horse battery staple"
#define PERSON_PASS "person passphrase"

struct fx {
	char *dir;
	char home_env[4300];
	char home[4200];
	char ch[33];
	char sup_origin[256], cus_origin[256];
	char leaf[65];
	char alice[65], ken[65]; /* person public keys */
	char alice_key[4300], ken_key[4300];
	struct th_run r;
};

static int tally(struct fx *x, const char *const *argv)
{
	const char *env[] = {x->home_env, "TALLY_PASSPHRASE=" PASS,
	                     "TALLY_PERSON_PASSPHRASE=" PERSON_PASS, NULL};
	return th_tally_env(&x->r, env, argv, 300);
}

/* Runs argv, requires exit 0 and copies the first stdout line to out. */
static void tally_line(struct fx *x, const char *const *argv, char *out, size_t cap)
{
	tally(x, argv);
	th_first_line(&x->r, argv, out, cap);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	char sup[65], cus[65], line[512];
	x->dir = th_tmpdir("people");
	snprintf(x->home, sizeof x->home, "%s/home", x->dir);
	snprintf(x->home_env, sizeof x->home_env, "TALLY_HOME=%s", x->home);

	const char *a1[] = {"tally", "init", "--book", "sup", NULL};
	tally_line(x, a1, sup, sizeof sup);
	const char *a2[] = {"tally", "init", "--book", "cus", NULL};
	tally_line(x, a2, cus, sizeof cus);
	const char *a3[] = {"tally", "channel", "open", "--book", "sup", "--peer", cus, NULL};
	tally_line(x, a3, x->sup_origin, sizeof x->sup_origin);
	const char *a4[] = {"tally", "channel", "open", "--book", "cus", "--peer", sup, NULL};
	tally_line(x, a4, x->cus_origin, sizeof x->cus_origin);
	const char *slash = strrchr(x->sup_origin, '/');
	assert_non_null(slash);
	assert_int_equal(strlen(slash + 1), 32);
	memcpy(x->ch, slash + 1, 33);

	const char *a5[] = {"tally",      "statement",   "import", "examples/statement.csv",
	                    "--channel",  x->sup_origin, "--id",   "ST-1",
	                    "--currency", "CNY",         "--from", "2026-11-01",
	                    "--to",       "2026-11-30",  NULL};
	tally_line(x, a5, line, sizeof line);
	/* "seq leaf" */
	const char *sp = strchr(line, ' ');
	assert_non_null(sp);
	assert_int_equal(strlen(sp + 1), 64);
	memcpy(x->leaf, sp + 1, 65);

	const char *a6[] = {"tally", "key", "new", "--name", "alice", NULL};
	tally_line(x, a6, x->alice, sizeof x->alice);
	const char *a7[] = {"tally", "key", "new", "--name", "ken", NULL};
	tally_line(x, a7, x->ken, sizeof x->ken);
	assert_int_equal(strlen(x->alice), 64);
	snprintf(x->alice_key, sizeof x->alice_key, "%s/people/alice.key", x->home);
	snprintf(x->ken_key, sizeof x->ken_key, "%s/people/ken.key", x->home);
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

static void grant(struct fx *x, const char *key, const char *role, const char *name)
{
	char line[256];
	const char *a[] = {"tally", "key", "grant",  "--book", "cus",    "--channel", x->ch,
	                   "--key", key,   "--role", role,     "--name", name,        NULL};
	tally_line(x, a, line, sizeof line);
}

static void confirm(struct fx *x, const char *keyfile)
{
	char line[256];
	const char *a[] = {"tally", "confirm", x->leaf, "--channel", x->ch, "--key", keyfile, NULL};
	tally_line(x, a, line, sizeof line);
}

/* The text state's statement line, copied. */
static void state_text(struct fx *x, char *stmt, size_t cap)
{
	const char *a[] = {"tally", "channel", "state", x->cus_origin, NULL};
	assert_int_equal(tally(x, a), 0);
	const char *p = strstr(x->r.out, "ST-1");
	assert_non_null(p);
	size_t n = strcspn(p, "\n");
	assert_true(n < cap);
	memcpy(stmt, p, n);
	stmt[n] = 0;
}

/* The JSON state's only statement (a new reference); the state must have no
 * findings. */
static json_t *state_json(struct fx *x)
{
	const char *a[] = {"tally", "--json", "channel", "state", x->cus_origin, NULL};
	assert_int_equal(tally(x, a), 0);
	json_t *j = json_loads(x->r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "findings")), 0);
	json_t *s = json_array_get(json_object_get(j, "statements"), 0);
	assert_non_null(s);
	json_incref(s);
	json_decref(j);
	return s;
}

static void test_approver_confirm(void **state)
{
	struct fx *x = *state;
	char st[512];
	grant(x, x->alice, "approver", "Alice");
	const char *v[] = {"tally", "view", x->leaf, "--channel", x->ch, NULL};
	assert_int_equal(tally(x, v), 0);
	state_text(x, st, sizeof st);
	assert_non_null(strstr(st, " viewed "));
	confirm(x, x->alice_key);
	state_text(x, st, sizeof st);
	assert_non_null(strstr(st, " confirmed "));
	json_t *s = state_json(x);
	assert_string_equal(json_string_value(json_object_get(s, "status")), "confirmed");
	assert_string_equal(json_string_value(json_object_get(s, "leaf")), x->leaf);
	assert_int_equal(json_integer_value(json_object_get(s, "agreed_balance")),
	                 json_integer_value(json_object_get(s, "closing")));
	json_decref(s);
}

static void test_clerk_refused(void **state)
{
	struct fx *x = *state;
	char st[512];
	grant(x, x->ken, "clerk", "Ken");
	confirm(x, x->ken_key); /* appended: the state machine refuses it */
	state_text(x, st, sizeof st);
	assert_null(strstr(st, "confirmed"));
	assert_non_null(strstr(x->r.out, "finding:"));
	assert_non_null(strstr(x->r.out, "not an approver"));
}

static void test_revoked_refused(void **state)
{
	struct fx *x = *state;
	char st[512], line[256];
	grant(x, x->alice, "approver", "Alice");
	const char *a[] = {"tally",     "key", "revoke", "--book", "cus",
	                   "--channel", x->ch, "--key",  x->alice, NULL};
	tally_line(x, a, line, sizeof line);
	confirm(x, x->alice_key);
	state_text(x, st, sizeof st);
	assert_null(strstr(st, "confirmed"));
	assert_non_null(strstr(x->r.out, "revoked"));
}

static void test_dispute_two_lines(void **state)
{
	struct fx *x = *state;
	char line[256];
	grant(x, x->alice, "approver", "Alice");
	const char *a[] = {"tally",       "dispute",  x->leaf,      "--channel",
	                   x->ch,         "--key",    x->alice_key, "--balance",
	                   "-280000",     "--line",   "INV-88017",  "--their-amount",
	                   "400000",      "--reason", "price",      "--note",
	                   "agreed 4000", "--line",   "CN-0091",    "--their-amount",
	                   "-45000",      "--reason", "quantity",   NULL};
	tally_line(x, a, line, sizeof line);
	json_t *s = state_json(x);
	assert_string_equal(json_string_value(json_object_get(s, "status")), "disputed");
	assert_int_equal(json_integer_value(json_object_get(s, "their_balance")), -280000);
	json_decref(s);
	/* The lines as written in the customer's feed. */
	const char *l[] = {"tally", "--json", "feed", "log", x->cus_origin, NULL};
	assert_int_equal(tally(x, l), 0);
	json_t *j = json_loads(x->r.out, 0, NULL);
	assert_non_null(j);
	json_t *e = json_array_get(j, json_array_size(j) - 1);
	assert_string_equal(json_string_value(json_object_get(e, "kind")), "dispute");
	json_t *lines = json_object_get(json_object_get(e, "body"), "lines");
	assert_int_equal(json_array_size(lines), 2);
	json_t *l0 = json_array_get(lines, 0), *l1 = json_array_get(lines, 1);
	assert_string_equal(json_string_value(json_object_get(l0, "doc")), "INV-88017");
	assert_int_equal(json_integer_value(json_object_get(l0, "their_amount")), 400000);
	assert_string_equal(json_string_value(json_object_get(l0, "reason")), "price");
	assert_string_equal(json_string_value(json_object_get(l0, "note")), "agreed 4000");
	assert_string_equal(json_string_value(json_object_get(l1, "doc")), "CN-0091");
	assert_int_equal(json_integer_value(json_object_get(l1, "their_amount")), -45000);
	assert_string_equal(json_string_value(json_object_get(l1, "reason")), "quantity");
	assert_null(json_object_get(l1, "note"));
	json_decref(j);
}

static void test_bad_reason(void **state)
{
	struct fx *x = *state;
	grant(x, x->alice, "approver", "Alice");
	const char *a[] = {"tally", "dispute",  x->leaf,      "--channel",
	                   x->ch,   "--key",    x->alice_key, "--balance",
	                   "1",     "--line",   "INV-1",      "--their-amount",
	                   "1",     "--reason", "cheaper",    NULL};
	assert_int_equal(tally(x, a), 2);
	assert_non_null(strstr(x->r.err, "cheaper"));
	const char *b[] = {"tally",      "dispute",   x->leaf, "--channel", x->ch,   "--key",
	                   x->alice_key, "--balance", "1",     "--line",    "INV-1", NULL};
	assert_int_equal(tally(x, b), 2); /* a line without amount and reason */
	char st[512];
	state_text(x, st, sizeof st);
	assert_null(strstr(st, "disputed"));
}

/* terms propose / accept / show in one data directory holding both books */
static void test_terms_cli(void **state)
{
	struct fx *x = *state;
	char line[8192], prop[65];
	const char *bad_cycle[] = {
	        "tally",       "terms",       "propose",        "--channel",
	        x->sup_origin, "--cycle",     "weekly:someday", "--response-days",
	        "7",           "--procedure", "confirmation",   "--currency",
	        "CNY",         NULL};
	assert_int_equal(tally(x, bad_cycle), 2);
	assert_non_null(strstr(x->r.err, "weekly:DAY"));
	static const struct {
		const char *opt, *val, *why;
	} bad[] = {
	        {"--tz", "08:00", "time zone"},
	        {"--witness", "not-a-key", "witness 1"},
	        {"--quorum", "1", "quorum"},
	        {"--procedure", "maybe", "procedure"},
	        {"--escalate", "3:0:cfo", "escalation step 1"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *a[] = {
		        "tally",       "terms",        "propose",    "--channel", x->sup_origin,
		        "--procedure", "notification", "--currency", "CNY",       "--response-days",
		        "7",           bad[i].opt,     bad[i].val,   NULL};
		int rc = tally(x, a);
		if (rc != 1 || !strstr(x->r.err, bad[i].why))
			fail_msg("%s %s: exit %d: %s", bad[i].opt, bad[i].val, rc, x->r.err);
	}
	/* Arguments that are not UTF-8 are refused, never silently dropped (a
	 * dropped witness would leave a smaller set, and the quorum with it). */
	{
		char w1[400], w2[400], wbad[420];
		struct tl_keypair wk;
		struct tl_vkey vk;
		struct tl_buf vb;
		for (int i = 0; i < 2; i++) {
			assert_int_equal(tl_key_generate(&wk), 0);
			assert_int_equal(tl_vkey_from_pub(&vk, i ? "w2.example" : "w1.example",
			                                  TL_SIGTYPE_COSIG, wk.pk),
			                 0);
			tl_buf_init(&vb, 400);
			assert_int_equal(tl_vkey_format(&vk, &vb), 0);
			assert_true(vb.len < sizeof w1);
			memcpy(i ? w2 : w1, vb.data, vb.len);
			(i ? w2 : w1)[vb.len] = 0;
			tl_buf_release(&vb);
			tl_key_wipe(&wk);
		}
		snprintf(wbad, sizeof wbad, "%s\xff", w2);
		const char *a[] = {"tally",         "terms",       "propose",        "--channel",
		                   x->sup_origin,   "--procedure", "notification",   "--currency",
		                   "CNY",           "--response-days", "7",          "--witness",
		                   w1,              "--witness",   wbad,             NULL};
		assert_int_equal(tally(x, a), 2);
		assert_non_null(strstr(x->r.err, "--witness"));
		const char *e[] = {"tally",       "terms",           "propose",    "--channel",
		                   x->sup_origin, "--procedure",     "notification", "--currency",
		                   "CNY",         "--response-days", "7",          "--escalate",
		                   "3:1:cfo\xff", NULL};
		assert_int_equal(tally(x, e), 2);
		assert_non_null(strstr(x->r.err, "--escalate TO"));
	}
	const char *p[] = {"tally",        "terms",           "propose",    "--channel",
	                   x->sup_origin,  "--cycle",         "weekly:wed", "--tz",
	                   "-05:00",       "--response-days", "7",          "--procedure",
	                   "notification", "--currency",      "CNY",        NULL};
	tally_line(x, p, line, sizeof line);
	const char *sp = strchr(line, ' ');
	assert_non_null(sp);
	memcpy(prop, sp + 1, 65);
	const char *show[] = {"tally", "--json", "terms", "show", "--channel", x->cus_origin, NULL};
	tally_line(x, show, line, sizeof line);
	json_t *j = json_loads(line, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(json_object_get(j, "in_force"), "unilateral")));
	json_t *pend = json_array_get(json_object_get(j, "pending"), 0);
	assert_string_equal(json_string_value(json_object_get(pend, "leaf")), prop);
	assert_string_equal(json_string_value(json_object_get(pend, "awaiting")), "this side");
	json_decref(j);
	const char *own[] = {"tally", "terms", "accept", "--channel", x->sup_origin, prop, NULL};
	assert_int_equal(tally(x, own), 1);
	assert_non_null(strstr(x->r.err, "own"));
	const char *acc[] = {"tally", "terms", "accept", "--channel", x->cus_origin, prop, NULL};
	tally_line(x, acc, line, sizeof line);
	assert_int_equal(tally(x, acc), 1);
	assert_non_null(strstr(x->r.err, "already accepted"));
	tally_line(x, show, line, sizeof line);
	j = json_loads(line, 0, NULL);
	json_t *f = json_object_get(j, "in_force");
	assert_false(json_is_true(json_object_get(f, "unilateral")));
	assert_string_equal(json_string_value(json_object_get(f, "cycle")), "week");
	assert_int_equal(json_integer_value(json_object_get(f, "day")), 3);
	assert_int_equal(json_integer_value(json_object_get(f, "tz_offset_min")), -300);
	assert_string_equal(json_string_value(json_object_get(f, "procedure")), "notification");
	assert_int_equal(json_array_size(json_object_get(j, "pending")), 0);
	json_decref(j);
}

/* statement list: both directions in a two-book home, and --at as the clock */
static void test_statement_list_at(void **state)
{
	struct fx *x = *state;
	const char *all[] = {"tally", "--json", "statement", "list", NULL};
	assert_int_equal(tally(x, all), 0);
	json_t *j = json_loads(x->r.out, 0, NULL);
	assert_int_equal(json_array_size(j), 2);
	json_decref(j);
	const char *in[] = {"tally",      "--json", "statement",  "list",
	                    "--incoming", "--at",   "2030-01-01", NULL};
	assert_int_equal(tally(x, in), 0);
	j = json_loads(x->r.out, 0, NULL);
	assert_int_equal(json_array_size(j), 1);
	json_t *s = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(s, "direction")), "incoming");
	assert_string_equal(json_string_value(json_object_get(s, "leaf")), x->leaf);
	assert_string_equal(json_string_value(json_object_get(s, "status")), "overdue");
	uint64_t dl = (uint64_t)json_integer_value(json_object_get(s, "deadline_ms"));
	json_decref(j);
	/* default terms: confirmation, 10 days; overdue only after the deadline */
	char at[32];
	snprintf(at, sizeof at, "%llu", (unsigned long long)dl);
	const char *at_dl[] = {"tally",      "--json", "statement", "list",
	                       "--outgoing", "--at",   at,          NULL};
	assert_int_equal(tally(x, at_dl), 0);
	assert_non_null(strstr(x->r.out, "\"status\":\"sent\""));
	snprintf(at, sizeof at, "%llu", (unsigned long long)dl + 1);
	assert_int_equal(tally(x, at_dl), 0);
	assert_non_null(strstr(x->r.out, "\"status\":\"overdue\""));
	/* the customer cannot close the supplier's statement */
	const char *cl[] = {"tally", "close", x->leaf, "--channel", x->cus_origin, NULL};
	assert_int_equal(tally(x, cl), 1);
	assert_non_null(strstr(x->r.err, "other side's"));
}

/*
 * statement send: a body reviewed as JSON (from import --dry-run) is sent
 * as is; one whose closing does not add up is refused with the reason and
 * nothing is appended; a file that is not JSON names line and column.
 */
static void test_statement_send(void **state)
{
	struct fx *x = *state;
	char path[4300], bad[4300], line[512];
	const char *dry[] = {"tally",      "statement",   "import",    "examples/statement.csv",
	                     "--channel",  x->sup_origin, "--id",      "ST-2",
	                     "--currency", "CNY",         "--from",    "2026-11-01",
	                     "--to",       "2026-11-30",  "--dry-run", NULL};
	assert_int_equal(tally(x, dry), 0);
	snprintf(path, sizeof path, "%s/st2.json", x->dir);
	assert_int_equal(th_write_file(path, x->r.out, x->r.out_len), 0);
	json_t *j = json_loads(x->r.out, 0, NULL);
	assert_non_null(j);

	/* Closing off by one minor unit: refused, nothing appended. */
	json_object_set_new(j, "closing",
	                    json_integer(json_integer_value(json_object_get(j, "closing")) + 1));
	snprintf(bad, sizeof bad, "%s/bad.json", x->dir);
	char *s = json_dumps(j, 0);
	assert_int_equal(th_write_file(bad, s, strlen(s)), 0);
	free(s);
	json_decref(j);
	const char *send_bad[] = {"tally",     "statement",   "send", bad,
	                          "--channel", x->sup_origin, NULL};
	assert_int_equal(tally(x, send_bad), 1);
	assert_non_null(strstr(x->r.err, "but opening + lines ="));
	assert_non_null(strstr(x->r.err, "nothing was sent"));
	assert_int_equal(th_write_file(bad, "{\"id\": \"x\",\n  oops}", 19), 0);
	assert_int_equal(tally(x, send_bad), 1);
	assert_non_null(strstr(x->r.err, "bad.json:2:"));

	const char *all[] = {"tally", "--json", "statement", "list", NULL};
	assert_int_equal(tally(x, all), 0);
	j = json_loads(x->r.out, 0, NULL);
	size_t before = json_array_size(j);
	json_decref(j);

	const char *send[] = {"tally", "statement", "send", path, "--channel", x->sup_origin, NULL};
	tally_line(x, send, line, sizeof line);
	assert_non_null(strchr(line, ' ')); /* "seq leaf" */
	assert_int_equal(tally(x, all), 0);
	j = json_loads(x->r.out, 0, NULL);
	assert_int_equal(json_array_size(j),
	                 before + 2); /* one row per side of the two-book home */
	json_decref(j);
}

/*
 * tally sign checks what it is asked to sign as the channel state will: a
 * statement validly signed by the supplier but whose closing does not add
 * up is refused (exit 1, the reason named), and nothing is written.
 */
static void test_sign_refuses_invalid_statement(void **state)
{
	struct fx *x = *state;
	char line[512], sp[4300], path[4300], ans[4300], err[256];
	const char *body = "{\"id\":\"BAD-1\",\"version\":1,\"date\":\"2026-11-30\","
	                   "\"period\":{\"from\":\"2026-11-01\",\"to\":\"2026-11-30\"},"
	                   "\"currency\":\"CNY\",\"opening\":0,\"lines\":[],\"closing\":5,"
	                   "\"aging\":{\"current\":0,\"d1_30\":0,\"d31_60\":0,\"d61_90\":0,"
	                   "\"d90_plus\":0}}";
	const char *ap[] = {"tally", "feed", "append", x->sup_origin, "--kind", "statement",
	                    "--body", body, NULL};
	tally_line(x, ap, line, sizeof line);
	unsigned long long seq;
	char leaf[65];
	assert_int_equal(sscanf(line, "%llu %64s", &seq, leaf), 2);

	/* The export file, made by hand from the stored record. */
	struct tl_store *s;
	struct tl_feed f;
	struct tl_buf rec;
	snprintf(sp, sizeof sp, "%s/store", x->home);
	assert_int_equal(tl_store_open(&s, sp, 0, 0, err, sizeof err), 0);
	assert_int_equal(tl_store_feed_get(s, x->sup_origin, &f), 0);
	tl_buf_init(&rec, TL_RECORD_MAX);
	assert_int_equal(tl_store_record(s, &f, seq, &rec), 0);
	char *b64 = malloc(tl_b64_encoded_len(rec.len) + 1);
	tl_b64_encode(b64, rec.data, rec.len);
	json_t *file = json_pack("{s:s,s:s,s:s,s:s,s:s}", "format", "tally-statement/v1", "record",
	                         b64, "leaf", leaf, "supplier", x->sup_origin, "channel", x->ch);
	char *text = json_dumps(file, 0);
	snprintf(path, sizeof path, "%s/bad-statement.json", x->dir);
	assert_int_equal(th_write_file(path, text, strlen(text)), 0);
	free(text);
	json_decref(file);
	free(b64);
	tl_buf_release(&rec);
	tl_store_close(s);

	snprintf(ans, sizeof ans, "%s/answer.json", x->dir);
	const char *sign[] = {"tally", "sign", path, "--key", x->alice_key, "--confirm", "-o", ans,
	                      NULL};
	assert_int_equal(tally(x, sign), 1);
	assert_non_null(strstr(x->r.err, "has closing 5, but opening + lines = 0"));
	assert_non_null(strstr(x->r.err, "refusing to sign"));
	assert_null(th_read_file(ans, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_approver_confirm, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_clerk_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_revoked_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dispute_two_lines, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_reason, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_terms_cli, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_statement_list_at, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_statement_send, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sign_refuses_invalid_statement, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
