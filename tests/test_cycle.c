/*
 * test_cycle.c — the whole reconciliation cycle between two real tallyd
 * processes (issue 4 item 8): terms proposed and accepted; a statement
 * imported from CSV, received (seen), viewed, disputed by an approver,
 * adjusted and re-issued, confirmed offline (air-gapped sign and submit)
 * and closed; a revoked person's confirmation refused; close refused before
 * confirmation; the notification procedure reaching "deemed confirmed"
 * exactly at its deadline (the clock is --at); a 10,000-line statement
 * through import, replication, match and confirmation. After each step both
 * nodes must compute the same channel state digest.
 */
#include "nodes.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PASS        "correct horse battery staple"
#define PERSON_PASS "person passphrase"
#define WAIT_MS     60000u

struct node {
	char name[32];
	char home[4096];
	char log[4200];
	char home_env[4200];
	char pkhex[65];
	char addr[64];
	char origin[256], peer_origin[256]; /* own feed and the other's, in the channel */
	pid_t pid;
};

struct fx {
	char *dir;
	struct node sup, cus;
	char ch[33];
	struct th_run r;
};

/* ------------------------------------------------------------ running */

/* Runs tally as nd; the exit status is returned, output kept in x->r. */
static int tally(struct fx *x, const struct node *nd, const char *const *argv)
{
	const char *env[] = {nd->home_env, "TALLY_PASSPHRASE=" PASS,
	                     "TALLY_PERSON_PASSPHRASE=" PERSON_PASS, NULL};
	return th_tally_env(&x->r, env, argv, 600);
}

/* As tally, requiring exit 0; returns the first stdout line (static). */
static const char *tally_ok(struct fx *x, const struct node *nd, const char *const *argv)
{
	static char line[4096];
	int rc = tally(x, nd, argv);
	if (rc != 0)
		fail_msg("%s %s %s on %s: exit %d\n%s", argv[1], argv[2] ? argv[2] : "",
		         argv[2] && argv[3] ? argv[3] : "", nd->name, rc, x->r.err);
	size_t n = strcspn(x->r.out, "\n");
	assert_true(n < sizeof line);
	memcpy(line, x->r.out, n);
	line[n] = 0;
	return line;
}

/* The leaf printed by an append ("seq leaf"). */
static void leaf_of(const char *line, char out[65])
{
	const char *sp = strchr(line, ' ');
	assert_non_null(sp);
	assert_int_equal(strlen(sp + 1), 64);
	memcpy(out, sp + 1, 65);
}

static json_t *tally_json(struct fx *x, const struct node *nd, const char *const *argv)
{
	const char *line = tally_ok(x, nd, argv);
	json_error_t je;
	json_t *j = json_loads(line, 0, &je);
	if (!j)
		fail_msg("not JSON from %s: %s", argv[1], line);
	return j;
}

static void node_init(struct fx *x, struct node *nd, const char *name)
{
	snprintf(nd->name, sizeof nd->name, "%s", name);
	snprintf(nd->home, sizeof nd->home, "%s/%s", x->dir, name);
	snprintf(nd->log, sizeof nd->log, "%s/%s.log", x->dir, name);
	snprintf(nd->home_env, sizeof nd->home_env, "TALLY_HOME=%s", nd->home);
	const char *a[] = {"tally", "init", "--book", name, NULL};
	snprintf(nd->pkhex, sizeof nd->pkhex, "%s", tally_ok(x, nd, a));
	assert_int_equal(strlen(nd->pkhex), 64);
}

static void node_start(struct node *nd)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/tallyd.addr", nd->home);
	const char *argv[] = {"tallyd", "--home", nd->home, "--listen", "127.0.0.1:0", NULL};
	nd->pid = th_spawn_tallyd(nd->log, nd->home, PASS, argv);
	if (th_wait_addr(&nd->pid, path, nd->addr, sizeof nd->addr, WAIT_MS, 50, NULL) != 1)
		fail_msg("tallyd for %s did not start; log:\n%s", nd->name, th_file_tail(nd->log));
}

static void node_stop(struct node *nd)
{
	th_stop_pid(nd->pid, SIGTERM, 20000);
	nd->pid = 0;
}

static void channel_open(struct fx *x, struct node *nd, const struct node *peer)
{
	char peer_arg[200];
	snprintf(peer_arg, sizeof peer_arg, "%s@%s", peer->pkhex, peer->addr);
	const char *a[] = {"tally",  "--json", "channel", "open", "--book",
	                   nd->name, "--peer", peer_arg,  NULL};
	json_t *j = tally_json(x, nd, a);
	snprintf(nd->origin, sizeof nd->origin, "%s",
	         json_string_value(json_object_get(j, "origin")));
	snprintf(nd->peer_origin, sizeof nd->peer_origin, "%s",
	         json_string_value(json_object_get(j, "peer_origin")));
	assert_int_equal(strlen(nd->origin), 106);
	json_decref(j);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	assert_non_null(x);
	x->dir = th_tmpdir("cycle");
	node_init(x, &x->sup, "sup");
	node_init(x, &x->cus, "cus");
	node_start(&x->sup);
	node_start(&x->cus);
	channel_open(x, &x->sup, &x->cus);
	channel_open(x, &x->cus, &x->sup);
	assert_string_equal(x->sup.peer_origin, x->cus.origin);
	memcpy(x->ch, strrchr(x->sup.origin, '/') + 1, 33);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	node_stop(&x->sup);
	node_stop(&x->cus);
	th_run_free(&x->r);
	th_tmpdir_done(x->dir);
	free(x);
	return 0;
}

/* ----------------------------------------------------------- polling */

static void at_str(char out[24], uint64_t at)
{
	snprintf(out, 24, "%" PRIu64, at);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* `statement show --json` on nd at `at` (0: now), or at the time written
 * as at_text when that is set; NULL when not there. */
static json_t *show_text(struct fx *x, const struct node *nd, const char *leaf, uint64_t at,
                         const char *at_text)
{
	char a_s[24];
	at_str(a_s, at ? at : now_ms());
	const char *a[] = {"tally",    "--json", "statement",
	                   "show",     leaf,     "--channel",
	                   nd->origin, "--at",   at_text ? at_text : a_s,
	                   NULL};
	if (tally(x, nd, a) != 0)
		return NULL;
	return json_loads(x->r.out, 0, NULL);
}

static json_t *show(struct fx *x, const struct node *nd, const char *leaf, uint64_t at)
{
	return show_text(x, nd, leaf, at, NULL);
}

/* ISO 8601 UTC with milliseconds, as --at takes it. */
static void iso_ms(char out[40], uint64_t ms, int offset_h)
{
	time_t t = (time_t)(ms / 1000) + offset_h * 3600;
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%03u%s", (unsigned)(ms % 1000), offset_h ? "+08:00" : "Z");
}

static void expect_status_iso(struct fx *x, const struct node *nd, const char *leaf,
                              const char *iso, const char *want)
{
	json_t *j = show_text(x, nd, leaf, 0, iso);
	if (!j)
		fail_msg("statement show --at %s: exit %d: %s", iso, x->r.status, x->r.err);
	assert_string_equal(json_string_value(json_object_get(j, "status")), want);
	json_decref(j);
}

static char *status_of(struct fx *x, const struct node *nd, const char *leaf, uint64_t at)
{
	json_t *j = show(x, nd, leaf, at);
	const char *s = j ? json_string_value(json_object_get(j, "status")) : NULL;
	char *d = s ? strdup(s) : NULL;
	json_decref(j);
	return d;
}

struct want {
	struct fx *x;
	const struct node *nd;
	const char *leaf, *status;
	uint64_t at;
	char got[64];
};

static int status_is(void *ctx)
{
	struct want *w = ctx;
	char *s = status_of(w->x, w->nd, w->leaf, w->at);
	snprintf(w->got, sizeof w->got, "%s", s ? s : "(not there)");
	int ok = s && strcmp(s, w->status) == 0;
	free(s);
	return ok;
}

static void expect_status(struct fx *x, const struct node *nd, const char *leaf, const char *status)
{
	struct want w = {x, nd, leaf, status, 0, ""};
	if (!th_wait_every(status_is, &w, WAIT_MS, 50))
		fail_msg("statement %.12s on %s: status '%s', expected '%s'; log:\n%s", leaf,
		         nd->name, w.got, status, th_file_tail(nd->log));
}

static void digest(struct fx *x, const struct node *nd, uint64_t at, char out[65])
{
	char a_s[24];
	at_str(a_s, at);
	const char *a[] = {"tally", "--json", "channel", "state", nd->origin, "--at", a_s, NULL};
	json_t *j = tally_json(x, nd, a);
	snprintf(out, 65, "%s", json_string_value(json_object_get(j, "digest")));
	json_decref(j);
}

struct agree_ctx {
	struct fx *x;
	uint64_t at;
	char a[65], b[65];
};

static int agree_cond(void *ctx)
{
	struct agree_ctx *g = ctx;
	digest(g->x, &g->x->sup, g->at, g->a);
	digest(g->x, &g->x->cus, g->at, g->b);
	return strcmp(g->a, g->b) == 0;
}

/* Polls until both nodes compute the same state (evaluated at one time). */
static void agree(struct fx *x, const char *step)
{
	struct agree_ctx g = {.x = x, .at = now_ms()};
	if (!th_wait_every(agree_cond, &g, WAIT_MS, 50))
		fail_msg("after %s the nodes disagree: supplier %s, customer %s", step, g.a, g.b);
}

/* Entries of a kind in nd's copy of a feed. The nodes append receipts
 * (`seen`) on their own, so "nothing appended" is checked by kind. */
static size_t count_kind(struct fx *x, const struct node *nd, const char *origin, const char *kind)
{
	const char *a[] = {"tally", "--json", "feed", "log", origin, NULL};
	json_t *j, *e;
	size_t i, n = 0;
	if (tally(x, nd, a) != 0)
		fail_msg("feed log on %s: %s", nd->name, x->r.err);
	j = json_loads(x->r.out, 0, NULL);
	assert_true(json_is_array(j));
	json_array_foreach(j, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "kind")), kind) == 0)
			n++;
	}
	json_decref(j);
	return n;
}

/* ---------------------------------------------------------- the steps */

static void person(struct fx *x, const char *name, char pk[65], char keyfile[4300],
                   const char *role)
{
	const char *a[] = {"tally", "key", "new", "--name", name, NULL};
	snprintf(pk, 65, "%s", tally_ok(x, &x->cus, a));
	snprintf(keyfile, 4300, "%s/people/%s.key", x->cus.home, name);
	const char *g[] = {"tally", "key", "grant",  "--book", "cus",    "--channel", x->ch,
	                   "--key", pk,    "--role", role,     "--name", name,        NULL};
	tally_ok(x, &x->cus, g);
}

static void import(struct fx *x, const char *file, const char *id, char leaf[65])
{
	const char *a[] = {"tally",       "statement",  "import", file,         "--channel",
	                   x->sup.origin, "--id",       id,       "--currency", "CNY",
	                   "--from",      "2026-11-01", "--to",   "2026-11-30", "--opening",
	                   "12500.00",    NULL};
	leaf_of(tally_ok(x, &x->sup, a), leaf);
}

static int has_finding(json_t *st, const char *needle)
{
	size_t i;
	json_t *f;
	json_array_foreach(
	        json_object_get(st, "findings"), i,
	        f) if (strstr(json_string_value(json_object_get(f, "finding")), needle)) return 1;
	return 0;
}

static void test_full_cycle(void **state)
{
	struct fx *x = *state;
	char prop[65], leaf1[65], leaf2[65], ali[65], ali_key[4300], ken[65], ken_key[4300];
	char path[4300], ans[4300];
	(void)ken;

	/* 1. terms: proposed by the supplier, accepted by the customer */
	const char *tp[] = {"tally",           "terms",       "propose",
	                    "--channel",       x->sup.origin, "--cycle",
	                    "monthly:5",       "--tz",        "+08:00",
	                    "--response-days", "10",          "--procedure",
	                    "confirmation",    "--currency",  "CNY",
	                    "--escalate",      "3:1:ap-lead", NULL};
	leaf_of(tally_ok(x, &x->sup, tp), prop);
	const char *acc_own[] = {"tally",       "terms", "accept", "--channel",
	                         x->sup.origin, prop,    NULL};
	assert_int_equal(tally(x, &x->sup, acc_own), 1); /* one's own proposal */
	assert_non_null(strstr(x->r.err, "the other side must accept"));
	{
		const char *ta[] = {"tally",       "terms", "accept", "--channel",
		                    x->cus.origin, prop,    NULL};
		uint64_t end = th_mono_ms() + WAIT_MS;
		while (tally(x, &x->cus, ta) != 0) { /* until the proposal has arrived */
			assert_true(th_mono_ms() < end);
			th_nap(100);
		}
	}
	agree(x, "terms");
	{
		const char *ts[] = {"tally",     "--json",      "terms", "show",
		                    "--channel", x->sup.origin, NULL};
		json_t *j = tally_json(x, &x->sup, ts), *f = json_object_get(j, "in_force");
		assert_false(json_is_true(json_object_get(f, "unilateral")));
		assert_int_equal(json_integer_value(json_object_get(f, "day")), 5);
		assert_int_equal(json_integer_value(json_object_get(f, "tz_offset_min")), 480);
		assert_int_equal(json_array_size(json_object_get(f, "escalation")), 1);
		assert_int_equal(json_array_size(json_object_get(j, "pending")), 0);
		json_decref(j);
	}

	/* 2. people on the customer's side */
	person(x, "ali", ali, ali_key, "approver");
	person(x, "ken", ken, ken_key, "approver");

	/* 3. the statement from CSV; the customer's node receives it (seen) */
	import(x, "examples/statement.csv", "ST-2026-11", leaf1);
	expect_status(x, &x->cus, leaf1, "seen");
	expect_status(x, &x->sup, leaf1, "seen");
	agree(x, "import");
	{
		const char *l[] = {"tally", "--json", "statement", "list", "--incoming", NULL};
		json_t *j = tally_json(x, &x->cus, l);
		assert_int_equal(json_array_size(j), 1);
		assert_string_equal(
		        json_string_value(json_object_get(json_array_get(j, 0), "leaf")), leaf1);
		json_decref(j);
		const char *o[] = {"tally", "--json", "statement", "list", "--outgoing", NULL};
		j = tally_json(x, &x->cus, o);
		assert_int_equal(json_array_size(j), 0);
		json_decref(j);
	}

	/* 4. close before any confirmation: refused, nothing appended */
	{
		const char *c[] = {"tally", "close", leaf1, "--channel", x->sup.origin, NULL};
		assert_int_equal(tally(x, &x->sup, c), 1);
		assert_non_null(strstr(x->r.err, "not confirmed"));
		assert_int_equal(count_kind(x, &x->sup, x->sup.origin, "close"), 0);
	}

	/* 5. view, then a dispute by an approver */
	const char *v[] = {"tally", "view", leaf1, "--channel", x->cus.origin, NULL};
	tally_ok(x, &x->cus, v);
	expect_status(x, &x->sup, leaf1, "viewed");
	char voucher[4300], vattach[4400], vout[4300];
	snprintf(voucher, sizeof voucher, "%s/contract-page-3.txt", x->dir);
	snprintf(vattach, sizeof vattach, "INV-88031=%s", voucher);
	snprintf(vout, sizeof vout, "%s/voucher-at-supplier.txt", x->dir);
	static const char vtext[] = "Contract FC-2026-017, page 3: spare parts at 1,950.00\n";
	assert_int_equal(th_write_file(voucher, vtext, strlen(vtext)), 0);
	const char *d[] = {"tally",     "dispute",        leaf1,       "--channel", x->cus.origin,
	                   "--key",     ali_key,          "--balance", "631950",    "--line",
	                   "INV-88031", "--their-amount", "195000",    "--reason",  "price",
	                   "--note",    "contract price", "--attach",  vattach,     "--line",
	                   "INV-88102", "--their-amount", "0",         "--reason",  "not_received",
	                   NULL};
	tally_ok(x, &x->cus, d);
	expect_status(x, &x->sup, leaf1, "disputed");
	agree(x, "dispute");
	{
		json_t *j = show(x, &x->sup, leaf1, 0), *dl = json_object_get(j, "dispute_lines");
		assert_int_equal(json_array_size(dl), 2);
		assert_string_equal(
		        json_string_value(json_object_get(json_array_get(dl, 0), "doc")),
		        "INV-88031");
		assert_int_equal(json_integer_value(json_object_get(j, "their_balance")), 631950);
		/* the voucher: its hash in the signed line, fetched by the supplier's node */
		json_t *blobs = json_object_get(json_array_get(dl, 0), "blobs");
		assert_int_equal(json_array_size(blobs), 1);
		assert_int_equal(json_array_size(json_object_get(json_array_get(dl, 1), "blobs")),
		                 0);
		char hash[65];
		snprintf(hash, sizeof hash, "%s", json_string_value(json_array_get(blobs, 0)));
		json_decref(j);
		const char *bg[] = {"tally", "blob", "get", hash, "-o", vout, NULL};
		tally_ok(x, &x->sup, bg);
		size_t vlen = 0;
		char *got = th_read_file(vout, &vlen);
		assert_non_null(got);
		assert_int_equal(vlen, strlen(vtext));
		assert_memory_equal(got, vtext, vlen);
		free(got);
	}

	/* 6. the supplier adjusts and re-issues; a bad line first: nothing appended */
	{
		size_t n = count_kind(x, &x->sup, x->sup.origin, "statement");
		const char *bad[] = {
		        "tally",     "statement",       "adjust", leaf1,
		        "--channel", x->sup.origin,     "--line", "credit_note:CN-9:-5.00",
		        "--line",    "refund:R-1:5.00", NULL};
		assert_int_equal(tally(x, &x->sup, bad), 1);
		assert_non_null(strstr(x->r.err, "added line 1: write the amount as a positive"));
		assert_non_null(strstr(x->r.err, "added line 2: 'refund' is not a document type"));
		assert_int_equal(count_kind(x, &x->sup, x->sup.origin, "statement"), n);
		const char *other[] = {
		        "tally",     "statement",   "adjust", leaf1,
		        "--channel", x->cus.origin, "--line", "credit_note:CN-9:5.00",
		        NULL};
		assert_int_equal(tally(x, &x->cus, other), 1);
		assert_non_null(strstr(x->r.err, "only its supplier adjusts it"));
	}
	const char *adj[] = {"tally",     "statement",
	                     "adjust",    leaf1,
	                     "--channel", x->sup.origin,
	                     "--line",    "credit_note:CN-0120:50.00:2026-11-30:contract price",
	                     "--line",    "credit_note:CN-0121:3180.50::not delivered",
	                     NULL};
	leaf_of(tally_ok(x, &x->sup, adj), leaf2);
	expect_status(x, &x->cus, leaf2, "seen");
	expect_status(x, &x->cus, leaf1, "re-issued");
	agree(x, "re-issue");
	{
		json_t *j = show(x, &x->cus, leaf2, 0);
		assert_int_equal(json_integer_value(json_object_get(j, "version")), 2);
		assert_int_equal(json_integer_value(json_object_get(j, "closing")),
		                 955000 - 5000 - 318050);
		assert_string_equal(json_string_value(json_object_get(j, "supersedes")), leaf1);
		assert_int_equal(json_array_size(json_object_get(j, "statement_lines")), 9);
		json_decref(j);
	}
	/* adjusting the old version again is refused */
	const char *adj_old[] = {"tally",     "statement",   "adjust", leaf1,
	                         "--channel", x->sup.origin, "--line", "debit_note:DN-1:1.00",
	                         NULL};
	assert_int_equal(tally(x, &x->sup, adj_old), 1);
	assert_non_null(strstr(x->r.err, "already re-issued"));

	/* 7. a revoked approver's confirmation is refused: a finding, status unchanged */
	const char *rv[] = {"tally",     "key", "revoke", "--book", "cus",
	                    "--channel", x->ch, "--key",  ken,      NULL};
	tally_ok(x, &x->cus, rv);
	const char *kc[] = {"tally",       "confirm", leaf2,   "--channel",
	                    x->cus.origin, "--key",   ken_key, NULL};
	tally_ok(x, &x->cus, kc);
	agree(x, "revoked confirmation");
	{
		char a_s[24];
		at_str(a_s, now_ms());
		const char *cs[] = {"tally",       "--json", "channel", "state",
		                    x->sup.origin, "--at",   a_s,       NULL};
		json_t *j = tally_json(x, &x->sup, cs);
		assert_true(has_finding(j, "was revoked"));
		json_decref(j);
		char *s = status_of(x, &x->sup, leaf2, 0);
		assert_string_equal(s, "seen");
		free(s);
	}

	/* 8. air-gapped: export, sign with no data directory, submit */
	snprintf(path, sizeof path, "%s/stmt.json", x->dir);
	snprintf(ans, sizeof ans, "%s/answer.json", x->dir);
	const char *ex[] = {"tally",       "statement", "export", leaf2, "--channel",
	                    x->cus.origin, "-o",        path,     NULL};
	tally_ok(x, &x->cus, ex);
	{
		char nohome[4300], nohome_env[4400];
		snprintf(nohome, sizeof nohome, "%s/offline-machine", x->dir);
		snprintf(nohome_env, sizeof nohome_env, "TALLY_HOME=%s", nohome);
		const char *env[] = {nohome_env, "TALLY_PERSON_PASSPHRASE=" PERSON_PASS, NULL};
		const char *sg[] = {"tally",     "sign", path, "--key", ali_key,
		                    "--confirm", "-o",   ans,  NULL};
		th_run_free(&x->r);
		assert_int_equal(th_run(&x->r, sg, env, NULL, 0, 600), 0);
		if (x->r.status != 0)
			fail_msg("sign: %s", x->r.err);
		assert_non_null(strstr(x->r.out, "statement ST-2026-11 version 2"));
		assert_int_equal(access(nohome, F_OK), -1); /* no data directory was made */
	}
	{
		/* a changed answer is refused */
		size_t len;
		char *text = th_read_file(ans, &len), bad[4400];
		char *p = strstr(text, "\"balance\": ");
		assert_non_null(p);
		p += strlen("\"balance\": ");
		*p = *p == '1' ? '2' : '1';
		snprintf(bad, sizeof bad, "%s/bad-answer.json", x->dir);
		assert_int_equal(th_write_file(bad, text, len), 0);
		free(text);
		const char *sb[] = {"tally", "submit", bad, "--channel", x->cus.origin, NULL};
		assert_int_equal(tally(x, &x->cus, sb), 1);
		assert_non_null(strstr(x->r.err, "does not verify"));
	}
	{
		/* a file with a key twice is refused, by sign and by submit (JSON
		 * from files is read strictly: which value would count?) */
		size_t len;
		char *text = th_read_file(ans, &len), bad[4400], *dup;
		assert_non_null(text);
		assert_int_equal(text[0], '{');
		dup = malloc(len + 64);
		assert_non_null(dup);
		int n = snprintf(dup, len + 64, "{\"format\": \"tally-answer/v1\",%s", text + 1);
		snprintf(bad, sizeof bad, "%s/dup-answer.json", x->dir);
		assert_int_equal(th_write_file(bad, dup, (size_t)n), 0);
		const char *sb[] = {"tally", "submit", bad, "--channel", x->cus.origin, NULL};
		assert_int_equal(tally(x, &x->cus, sb), 1);
		assert_non_null(strstr(x->r.err, "duplicate"));
		free(text);
		text = th_read_file(path, &len);
		assert_non_null(text);
		assert_int_equal(text[0], '{');
		free(dup);
		dup = malloc(len + 64);
		assert_non_null(dup);
		n = snprintf(dup, len + 64, "{\"format\": \"tally-statement/v1\",%s", text + 1);
		snprintf(bad, sizeof bad, "%s/dup-stmt.json", x->dir);
		assert_int_equal(th_write_file(bad, dup, (size_t)n), 0);
		char ans2[4400];
		snprintf(ans2, sizeof ans2, "%s/answer2.json", x->dir);
		const char *sg[] = {"tally",     "sign", bad, "--key", ali_key,
		                    "--confirm", "-o",   ans2, NULL};
		assert_int_equal(tally(x, &x->cus, sg), 1);
		assert_non_null(strstr(x->r.err, "duplicate"));
		assert_null(th_read_file(ans2, NULL));
		free(text);
		free(dup);
	}
	const char *sb[] = {"tally", "submit", ans, "--channel", x->cus.origin, NULL};
	tally_ok(x, &x->cus, sb);
	expect_status(x, &x->sup, leaf2, "confirmed");
	agree(x, "confirmation");

	/* 9. the supplier closes */
	const char *cl[] = {"tally", "close", leaf2, "--channel", x->sup.origin, NULL};
	tally_ok(x, &x->sup, cl);
	expect_status(x, &x->cus, leaf2, "closed");
	expect_status(x, &x->sup, leaf2, "closed");
	agree(x, "close");
	assert_int_equal(tally(x, &x->sup, cl), 1);
	assert_non_null(strstr(x->r.err, "already closed"));
}

/* Notification: silence until the deadline is a confirmation, from the
 * deadline's millisecond on (the state machine's rule: now >= deadline). */
static void test_notification_deemed(void **state)
{
	struct fx *x = *state;
	char prop[65], leaf[65];
	const char *tp[] = {"tally",       "terms",       "propose",      "--channel",
	                    x->cus.origin, "--cycle",     "weekly:fri",   "--response-days",
	                    "7",           "--procedure", "notification", "--currency",
	                    "CNY",         NULL};
	leaf_of(tally_ok(x, &x->cus, tp), prop);
	const char *ta[] = {"tally", "terms", "accept", "--channel", x->sup.origin, prop, NULL};
	uint64_t end = th_mono_ms() + WAIT_MS;
	while (tally(x, &x->sup, ta) != 0) {
		assert_true(th_mono_ms() < end);
		th_nap(100);
	}
	agree(x, "notification terms");
	th_nap(5); /* the statement's time must be after the accept's */
	import(x, "examples/statement.csv", "ST-N-1", leaf);
	expect_status(x, &x->cus, leaf, "seen");
	agree(x, "statement under notification terms");

	json_t *j = show(x, &x->sup, leaf, 0);
	uint64_t dl = (uint64_t)json_integer_value(json_object_get(j, "deadline_ms"));
	assert_string_equal(json_string_value(json_object_get(j, "deadline_from")), "seen_claimed");
	json_decref(j);
	assert_true(dl > now_ms() + 6 * 86400000ull);
	const struct node *both[2] = {&x->sup, &x->cus};
	for (int i = 0; i < 2; i++) {
		char *before = status_of(x, both[i], leaf, dl - 1);
		char *at = status_of(x, both[i], leaf, dl);
		assert_string_equal(before, "seen");
		assert_string_equal(at, "deemed confirmed");
		free(before);
		free(at);
	}
	/* the same boundary with --at written as a date and time, in UTC and at +08:00 */
	{
		char iso[40];
		iso_ms(iso, dl - 1, 0);
		expect_status_iso(x, &x->cus, leaf, iso, "seen");
		iso_ms(iso, dl, 0);
		expect_status_iso(x, &x->cus, leaf, iso, "deemed confirmed");
		iso_ms(iso, dl - 1, 8);
		expect_status_iso(x, &x->sup, leaf, iso, "seen");
		iso_ms(iso, dl, 8);
		expect_status_iso(x, &x->sup, leaf, iso, "deemed confirmed");
		const char *bad[] = {"tally",       "statement", "show",       leaf, "--channel",
		                     x->sup.origin, "--at",      "2026-13-01", NULL};
		assert_int_equal(tally(x, &x->sup, bad), 2);
		assert_non_null(strstr(x->r.err, "--at must be a date"));
	}
	/* closing needs the deadline to have passed: refused now */
	const char *cl[] = {"tally", "close", leaf, "--channel", x->sup.origin, NULL};
	assert_int_equal(tally(x, &x->sup, cl), 1);
	assert_non_null(strstr(x->r.err, "not confirmed"));
}

/* 10,000 lines: import, replication, match (everything agrees), confirm. */
static void test_ten_thousand_lines(void **state)
{
	struct fx *x = *state;
	char csv[4300], ledger[4300], leaf[65], key[4300], pk[65];
	size_t cap = 10001 * 80, len = 0;
	char *s = malloc(cap), *l = malloc(cap);
	size_t llen = 0;
	assert_non_null(s);
	assert_non_null(l);
	len += (size_t)snprintf(s + len, cap - len, "date,type,doc,amount,due,memo\n");
	llen += (size_t)snprintf(l + llen, cap - llen, "date,type,doc,amount,due,memo\n");
	for (int i = 0; i < 10000; i++) {
		int day = 1 + i % 28;
		len += (size_t)snprintf(
		        s + len, cap - len,
		        "2026-11-%02d,invoice,INV-%05d,%d.%02d,2026-12-%02d,line %d\n", day, i,
		        100 + i, i % 100, day, i);
		llen += (size_t)snprintf(l + llen, cap - llen,
		                         "2026-11-%02d,invoice,INV-%05d,%d.%02d,2026-12-%02d,\n",
		                         day, i, 100 + i, i % 100, day);
	}
	snprintf(csv, sizeof csv, "%s/big.csv", x->dir);
	snprintf(ledger, sizeof ledger, "%s/ledger.csv", x->dir);
	assert_int_equal(th_write_file(csv, s, len), 0);
	assert_int_equal(th_write_file(ledger, l, llen), 0);
	free(s);
	free(l);

	const char *a[] = {"tally",       "statement",  "import", csv,          "--channel",
	                   x->sup.origin, "--id",       "BIG-1",  "--currency", "CNY",
	                   "--from",      "2026-11-01", "--to",   "2026-11-30", NULL};
	leaf_of(tally_ok(x, &x->sup, a), leaf);
	expect_status(x, &x->cus, leaf, "seen");
	const char *m[] = {"tally", "match", leaf, "--ledger", ledger, NULL};
	if (tally(x, &x->cus, m) != 0)
		fail_msg("match of 10,000 lines: exit %d\n%s%s", x->r.status, x->r.out, x->r.err);
	person(x, "big.approver", pk, key, "approver");
	const char *c[] = {"tally",       "confirm", leaf, "--channel",
	                   x->cus.origin, "--key",   key,  NULL};
	tally_ok(x, &x->cus, c);
	expect_status(x, &x->sup, leaf, "confirmed");
	agree(x, "10,000-line confirmation");
	json_t *j = show(x, &x->cus, leaf, 0);
	assert_int_equal(json_integer_value(json_object_get(j, "lines")), 10000);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_full_cycle, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_notification_deemed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ten_thousand_lines, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
