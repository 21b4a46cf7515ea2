/*
 * test_audit.c — end-to-end: `tally audit` on a channel bundle exported by
 * the real binary, with cosignatures by test witnesses merged into the
 * store's checkpoints (as a node does when its witnesses answer). One
 * statement is confirmed on time and one late, both proven by witnessed
 * time, while the customer's claimed times say both were on time; a
 * tampered cosignature fails verification naming it; too small a witness
 * set leaves everything "not proven". Also `tally feed prove` picking the
 * cosigned checkpoint, `tally verify` of that proof showing the witnessed
 * time, and `tally channel state` with witnesses.
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
#define NW          4 /* witnesses a, b, c cosign; d never does */
#define DAY_S       86400ull

struct fx {
	char *dir;
	char home_env[4300];
	char home[4200];
	char ch[33];
	char sup_origin[256], cus_origin[256];
	char leaf1[65], leaf2[65];
	char alice_key[4300];
	char bundle[4300];
	struct tl_keypair wk[NW];
	struct tl_vkey wv[NW];
	char wstr[NW][512];
	uint64_t s1, s2; /* when the witnesses saw statement 1 and 2 (unix s) */
	char at[32];     /* --at, ms */
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

static void import(struct fx *x, const char *id, char leaf[65])
{
	char line[512];
	const char *a[] = {"tally",      "statement",   "import", "examples/statement.csv",
	                   "--channel",  x->sup_origin, "--id",   id,
	                   "--currency", "CNY",         "--from", "2026-11-01",
	                   "--to",       "2026-11-30",  NULL};
	tally_line(x, a, line, sizeof line);
	const char *sp = strchr(line, ' ');
	assert_non_null(sp);
	assert_int_equal(strlen(sp + 1), 64);
	memcpy(leaf, sp + 1, 65);
}

static void checkpoint(struct fx *x, const char *origin)
{
	const char *a[] = {"tally", "feed", "checkpoint", origin, NULL};
	assert_int_equal(tally(x, a), 0);
}

static void confirm(struct fx *x, const char *leaf)
{
	char line[256];
	const char *a[] = {"tally", "confirm", leaf,         "--channel",
	                   x->ch,   "--key",   x->alice_key, NULL};
	tally_line(x, a, line, sizeof line);
}

/* Cosigns the stored checkpoint of (origin, size) by witnesses [0, nw) at
 * time t and merges the lines into the store, as a node does. */
static void cosign(struct fx *x, const char *origin, uint64_t size, uint64_t t, int nw)
{
	th_cosign_stored(x->home, origin, size, t, x->wv, x->wk, nw);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	char sup[65], cus[65], alice[65], line[512];
	uint64_t now = (uint64_t)time(NULL);

	assert_int_equal(tl_init(), 0);
	x->dir = th_tmpdir("audit");
	snprintf(x->home, sizeof x->home, "%s/home", x->dir);
	snprintf(x->home_env, sizeof x->home_env, "TALLY_HOME=%s", x->home);
	snprintf(x->bundle, sizeof x->bundle, "%s/bundle.json", x->dir);
	for (int w = 0; w < NW; w++) {
		uint8_t seed[TL_SEED_LEN];
		char name[64];
		struct tl_buf b;
		memset(seed, 0x70 + w, sizeof seed);
		assert_int_equal(tl_key_from_seed(&x->wk[w], seed), 0);
		snprintf(name, sizeof name, "witness-%c.example", 'a' + w);
		assert_int_equal(tl_vkey_from_pub(&x->wv[w], name, TL_SIGTYPE_COSIG, x->wk[w].pk),
		                 0);
		tl_buf_init(&b, 512);
		assert_int_equal(tl_vkey_format(&x->wv[w], &b), 0);
		snprintf(x->wstr[w], sizeof x->wstr[w], "%s", tl_buf_cstr(&b));
		tl_buf_release(&b);
	}
	/* Witnessed times in the past, so that `tally verify` (which checks
	 * against the real clock) accepts them; --at is a day from now. */
	x->s1 = now - 60 * DAY_S;
	x->s2 = x->s1 + 1000;
	snprintf(x->at, sizeof x->at, "%llu", (unsigned long long)(now + DAY_S) * 1000);

	const char *a1[] = {"tally", "init", "--book", "sup", NULL};
	tally_line(x, a1, sup, sizeof sup);
	const char *a2[] = {"tally", "init", "--book", "cus", NULL};
	tally_line(x, a2, cus, sizeof cus);
	const char *a3[] = {"tally", "channel", "open", "--book", "sup", "--peer", cus, NULL};
	tally_line(x, a3, x->sup_origin, sizeof x->sup_origin);
	const char *a4[] = {"tally", "channel", "open", "--book", "cus", "--peer", sup, NULL};
	tally_line(x, a4, x->cus_origin, sizeof x->cus_origin);
	memcpy(x->ch, strrchr(x->sup_origin, '/') + 1, 33);

	/* supplier: feed.open 0, ST-1 1, ST-2 2; customer: feed.open 0,
	 * key.grant 1, confirm ST-1 2, confirm ST-2 3; a checkpoint after each. */
	import(x, "ST-1", x->leaf1);
	checkpoint(x, x->sup_origin); /* size 2 */
	const char *a6[] = {"tally", "key", "new", "--name", "alice", NULL};
	tally_line(x, a6, alice, sizeof alice);
	snprintf(x->alice_key, sizeof x->alice_key, "%s/people/alice.key", x->home);
	const char *a7[] = {"tally", "key", "grant",  "--book",   "cus",    "--channel", x->ch,
	                    "--key", alice, "--role", "approver", "--name", "alice",     NULL};
	tally_line(x, a7, line, sizeof line);
	confirm(x, x->leaf1);
	checkpoint(x, x->cus_origin); /* size 3 */
	import(x, "ST-2", x->leaf2);
	checkpoint(x, x->sup_origin); /* size 3 */
	confirm(x, x->leaf2);
	checkpoint(x, x->cus_origin); /* size 4 */

	/* The witnesses (a, b, c; never d): ST-1 at s1, ST-2 at s2; the
	 * customer's feed with the ST-1 confirm a day after s1, a heartbeat of
	 * that same size 15 days after s2 (still without the ST-2 confirm:
	 * 5 days past its deadline), the ST-2 confirm at s2 + 16 days. */
	cosign(x, x->sup_origin, 2, x->s1, 3);
	cosign(x, x->sup_origin, 3, x->s2, 3);
	cosign(x, x->cus_origin, 3, x->s1 + DAY_S, 3);
	cosign(x, x->cus_origin, 3, x->s2 + 15 * DAY_S, 3);
	cosign(x, x->cus_origin, 4, x->s2 + 16 * DAY_S, 3);

	const char *a8[] = {"tally",     "export",    "--channel", x->ch,       "-o",
	                    x->bundle,   "--witness", x->wstr[0],  "--witness", x->wstr[1],
	                    "--witness", x->wstr[2],  "--quorum",  "2",         NULL};
	if (tally(x, a8) != 0)
		fprintf(stderr, "export: %s\n", x->r.err);
	assert_int_equal(x->r.status, 0);
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

/* The stdout text after the line that starts the statement's section. */
static const char *section(const struct fx *x, const char *id)
{
	char needle[64];
	snprintf(needle, sizeof needle, "statement %s ", id);
	const char *p = strstr(x->r.out, needle);
	if (!p)
		fail_msg("no section for %s in:\n%s", id, x->r.out);
	return p;
}

/* The text of one statement's section, up to the next one. */
static void section_text(const struct fx *x, const char *id, char *out, size_t cap)
{
	const char *p = section(x, id), *end = strstr(p + 1, "\nstatement ");
	size_t n = end ? (size_t)(end - p) : strlen(p);
	assert_true(n < cap);
	memcpy(out, p, n);
	out[n] = 0;
}

static void test_bundle_carries_witnesses(void **state)
{
	struct fx *x = *state;
	size_t len;
	char *s = th_read_file(x->bundle, &len);
	json_t *j = json_loadb(s, len, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "feeds")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "quorum")), 2);
	assert_int_equal(json_array_size(json_object_get(j, "witnesses")), 3);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "witnesses"), 0)),
	                    x->wstr[0]);
	/* The merged cosignatures are in the exported checkpoints. */
	assert_non_null(strstr(s, "witness-c.example"));
	json_decref(j);
	free(s);
}

static void test_audit_on_time_and_late(void **state)
{
	struct fx *x = *state;
	char sec[8192];
	const char *a[] = {"tally",     "audit",    x->bundle,   "--witness", x->wstr[0],
	                   "--witness", x->wstr[1], "--witness", x->wstr[2],  "--quorum",
	                   "2",         "--at",     x->at,       NULL};
	int rc = tally(x, a);
	if (rc)
		fprintf(stderr, "%s\n%s\n", x->r.out, x->r.err);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(x->r.out, "VALID"));
	assert_non_null(strstr(x->r.out, "witness witness-a.example: 2 checkpoint size(s)"));
	section_text(x, "ST-1", sec, sizeof sec);
	assert_non_null(strstr(sec, "ON TIME (proven)"));
	assert_non_null(strstr(sec, "claimed: on time"));
	section_text(x, "ST-2", sec, sizeof sec);
	assert_non_null(strstr(sec, "LATE by more than 5 d 0 h (proven"));
	/* The customer's own clock says it answered at once: shown, not believed. */
	assert_non_null(strstr(sec, "claimed: on time"));
	assert_null(strstr(sec, "ON TIME"));
}

static void test_audit_json(void **state)
{
	struct fx *x = *state;
	const char *a[] = {"tally",    "--json",    "audit",    x->bundle,   "--witness",
	                   x->wstr[0], "--witness", x->wstr[1], "--witness", x->wstr[2],
	                   "--quorum", "2",         "--at",     x->at,       NULL};
	assert_int_equal(tally(x, a), 0);
	json_t *j = json_loads(x->r.out, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "valid")));
	json_t *st = json_object_get(j, "statements");
	assert_int_equal(json_array_size(st), 2);
	json_t *s1 = json_array_get(st, 0), *s2 = json_array_get(st, 1);
	assert_string_equal(json_string_value(json_object_get(s1, "id")), "ST-1");
	json_t *w1 = json_object_get(s1, "witnessed"), *w2 = json_object_get(s2, "witnessed");
	assert_string_equal(json_string_value(json_object_get(w1, "verdict")), "on time");
	assert_true(json_is_true(json_object_get(w1, "proven")));
	assert_string_equal(json_string_value(json_object_get(w2, "verdict")), "late");
	assert_true(json_is_true(json_object_get(w2, "proven")));
	assert_int_equal(json_integer_value(json_object_get(w2, "days_late")), 5);
	assert_int_equal(json_integer_value(json_object_get(w2, "evidence_ms")),
	                 (json_int_t)(x->s2 + 15 * DAY_S) * 1000);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(s2, "claimed"), "verdict")),
	        "on time");
	/* Witnessed times of the facts: sent at s1 / s2, ST-1's confirm by s1 + 1 day. */
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(s1, "sent"), "witnessed_ms")),
	        (json_int_t)x->s1 * 1000);
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(s1, "answer"), "witnessed_ms")),
	        (json_int_t)(x->s1 + DAY_S) * 1000);
	assert_int_equal(json_integer_value(
	                         json_object_get(json_object_get(s2, "deadline"), "witnessed_ms")),
	                 (json_int_t)(x->s2 + 10 * DAY_S) * 1000);
	json_t *feeds = json_object_get(j, "feeds");
	assert_int_equal(json_array_size(feeds), 2);
	assert_int_equal(
	        json_array_size(json_object_get(json_array_get(feeds, 0), "equivocations")), 0);
	json_decref(j);
}

static void test_audit_uses_bundle_witnesses(void **state)
{
	struct fx *x = *state;
	const char *a[] = {"tally", "--json", "audit", x->bundle, "--at", x->at, NULL};
	assert_int_equal(tally(x, a), 0);
	json_t *j = json_loads(x->r.out, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "witnesses_from_bundle")));
	assert_int_equal(json_integer_value(json_object_get(j, "quorum")), 2);
	json_t *s2 = json_array_get(json_object_get(j, "statements"), 1);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(s2, "witnessed"), "verdict")),
	        "late");
	json_decref(j);
}

/* A bundle whose own quorum exceeds its own witness list is an invalid file
 * (exit 1), not a usage error; with --quorum on the command line it is usage. */
static void test_bundle_quorum_too_large(void **state)
{
	struct fx *x = *state;
	char path[4400];
	size_t len;
	char *s = th_read_file(x->bundle, &len);
	assert_non_null(s);
	json_t *j = json_loadb(s, len, 0, NULL);
	free(s);
	assert_non_null(j);
	assert_true(json_array_size(json_object_get(j, "witnesses")) < 50);
	json_object_set_new(j, "quorum", json_integer(50));
	snprintf(path, sizeof path, "%s/big-quorum.json", x->dir);
	assert_int_equal(json_dump_file(j, path, 0), 0);
	json_decref(j);
	const char *a[] = {"tally", "audit", path, "--at", x->at, NULL};
	assert_int_equal(tally(x, a), 1);
	assert_non_null(strstr(x->r.err, "usable witness key"));
	const char *b[] = {"tally", "audit", x->bundle, "--quorum", "50", "--at", x->at, NULL};
	assert_int_equal(tally(x, b), 2);
}

static void test_too_few_witnesses_not_proven(void **state)
{
	struct fx *x = *state;
	char sec[8192];
	/* a, b, c cosigned; with d in the set a quorum of 4 is never reached. */
	const char *a[] = {"tally",    "audit",     x->bundle,  "--witness",
	                   x->wstr[0], "--witness", x->wstr[1], "--witness",
	                   x->wstr[2], "--witness", x->wstr[3], "--quorum",
	                   "4",        "--at",      x->at,      NULL};
	assert_int_equal(tally(x, a), 0);
	section_text(x, "ST-1", sec, sizeof sec);
	assert_non_null(strstr(sec, "witnessed: not proven"));
	section_text(x, "ST-2", sec, sizeof sec);
	assert_non_null(strstr(sec, "witnessed: not proven"));
	assert_null(strstr(x->r.out, "(proven"));
	/* A quorum of 3 of the same four is reached again. */
	a[12] = "3";
	assert_int_equal(tally(x, a), 0);
	section_text(x, "ST-2", sec, sizeof sec);
	assert_non_null(strstr(sec, "LATE by more than 5 d 0 h"));
	/* More than the keys given is a usage error. */
	a[12] = "5";
	assert_int_equal(tally(x, a), 2);
}

static void test_tampered_cosignature_fails(void **state)
{
	struct fx *x = *state;
	size_t len;
	char *s = th_read_file(x->bundle, &len), path[4400];
	/* A signature character of a cosignature line by witness b. */
	char *p = strstr(s, "witness-b.example ");
	assert_non_null(p);
	p += strlen("witness-b.example ") + 40;
	*p = *p == 'A' ? 'B' : 'A';
	snprintf(path, sizeof path, "%s/tampered.json", x->dir);
	assert_int_equal(th_write_file(path, s, len), 0);
	free(s);
	const char *a[] = {"tally",     "audit",    path,        "--witness", x->wstr[0],
	                   "--witness", x->wstr[1], "--witness", x->wstr[2],  "--quorum",
	                   "2",         "--at",     x->at,       NULL};
	assert_int_equal(tally(x, a), 1);
	assert_non_null(strstr(x->r.err, "cosignature by witness-b.example does not verify"));
	assert_non_null(strstr(x->r.err, "INVALID: feed tally.v1/"));
	assert_non_null(strstr(x->r.err, "does not verify"));
	assert_null(strstr(x->r.out, "statement ST-1"));
}

static void test_equivocation_reported(void **state)
{
	struct fx *x = *state;
	struct tl_keypair kp;
	struct tl_checkpoint cp;
	struct tl_buf text, note;
	char keyfile[4300], path[4400];
	size_t len;

	/* The supplier signs a second checkpoint of size 2 with another root. */
	snprintf(keyfile, sizeof keyfile, "%s/keys/sup.key", x->home);
	assert_int_equal(tl_keyfile_read(keyfile, PASS, strlen(PASS), &kp), 0);
	memset(&cp, 0, sizeof cp);
	snprintf(cp.origin, sizeof cp.origin, "%s", x->sup_origin);
	cp.size = 2;
	memset(cp.root, 0x42, sizeof cp.root);
	tl_buf_init(&text, 4096);
	tl_buf_init(&note, TL_NOTE_MAX);
	assert_int_equal(tl_checkpoint_format(&cp, &text), 0);
	assert_int_equal(tl_note_sign(&note, (const char *)text.data, text.len, x->sup_origin, &kp),
	                 0);
	tl_key_wipe(&kp);
	char *s = th_read_file(x->bundle, &len);
	json_t *j = json_loadb(s, len, 0, NULL);
	free(s);
	assert_non_null(j);
	json_t *feeds = json_object_get(j, "feeds");
	for (size_t i = 0; i < json_array_size(feeds); i++) {
		json_t *f = json_array_get(feeds, i);
		if (strcmp(json_string_value(json_object_get(f, "origin")), x->sup_origin) == 0)
			json_array_append_new(json_object_get(f, "checkpoints"),
			                      json_stringn((const char *)note.data, note.len));
	}
	snprintf(path, sizeof path, "%s/forked.json", x->dir);
	assert_int_equal(json_dump_file(j, path, 0), 0);
	json_decref(j);
	tl_buf_release(&text);
	tl_buf_release(&note);
	const char *a[] = {"tally",     "audit",    path,        "--witness", x->wstr[0],
	                   "--witness", x->wstr[1], "--witness", x->wstr[2],  "--quorum",
	                   "2",         "--at",     x->at,       NULL};
	assert_int_equal(tally(x, a), 1);
	assert_non_null(strstr(x->r.err, "EQUIVOCATION: feed "));
	assert_non_null(
	        strstr(x->r.err, "checkpoint size 2: two checkpoints signed by the feed key"));
	assert_non_null(strstr(x->r.err, "4242424242"));
}

static void test_future_cosignature_fails(void **state)
{
	struct fx *x = *state;
	/* Audited "now", before the witnesses' times: their cosignatures are
	 * dated in the future beyond the skew, which is invalid. */
	char early[32];
	snprintf(early, sizeof early, "%llu", (unsigned long long)(x->s1 - 700) * 1000);
	const char *a[] = {"tally",     "audit",    x->bundle,   "--witness", x->wstr[0],
	                   "--witness", x->wstr[1], "--witness", x->wstr[2],  "--quorum",
	                   "2",         "--at",     early,       NULL};
	assert_int_equal(tally(x, a), 1);
	assert_non_null(strstr(x->r.err, "after the verifier's clock"));
}

static void test_prove_shows_witnessed_time(void **state)
{
	struct fx *x = *state;
	char proof[4400], iso[32];
	snprintf(proof, sizeof proof, "%s/st2.tlog-proof", x->dir);
	const char *a[] = {"tally", "feed", "prove", x->sup_origin, "2", "-o", proof, NULL};
	assert_int_equal(tally(x, a), 0);
	size_t len;
	char *s = th_read_file(proof, &len);
	assert_non_null(s);
	/* The cosigned checkpoint of size 3, not a fresh uncosigned one. */
	assert_non_null(strstr(s, "\n3\n"));
	assert_non_null(strstr(s, "witness-a.example"));
	free(s);
	const char *v[] = {"tally",    "verify",    proof,      "--witness",
	                   x->wstr[0], "--witness", x->wstr[1], "--witness",
	                   x->wstr[2], "--quorum",  "2",        NULL};
	if (tally(x, v) != 0)
		fprintf(stderr, "%s%s", x->r.out, x->r.err);
	assert_int_equal(x->r.status, 0);
	time_t t = (time_t)x->s2;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(strstr(x->r.out, "witnessed time: the entry existed by"));
	assert_non_null(strstr(x->r.out, iso));
}

static void test_channel_state_witnessed(void **state)
{
	struct fx *x = *state;
	char sec[8192];
	const char *a[] = {"tally",    "channel",   "state",    x->cus_origin, "--witness",
	                   x->wstr[0], "--witness", x->wstr[1], "--witness",   x->wstr[2],
	                   "--quorum", "2",         "--at",     x->at,         NULL};
	int rc = tally(x, a);
	if (rc)
		fprintf(stderr, "%s\n", x->r.err);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(x->r.out, "claimed and witnessed times (2 of 3 witnesses"));
	section_text(x, "ST-2", sec, sizeof sec);
	assert_non_null(strstr(sec, "LATE by more than 5 d 0 h"));
	/* Without a witness set it says so instead. */
	const char *b[] = {"tally", "channel", "state", x->cus_origin, NULL};
	assert_int_equal(tally(x, b), 0);
	assert_non_null(strstr(x->r.out, "witnessed times: no witness set"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bundle_carries_witnesses),
	        cmocka_unit_test(test_audit_on_time_and_late),
	        cmocka_unit_test(test_audit_json),
	        cmocka_unit_test(test_audit_uses_bundle_witnesses),
	        cmocka_unit_test(test_bundle_quorum_too_large),
	        cmocka_unit_test(test_too_few_witnesses_not_proven),
	        cmocka_unit_test(test_tampered_cosignature_fails),
	        cmocka_unit_test(test_equivocation_reported),
	        cmocka_unit_test(test_future_cosignature_fails),
	        cmocka_unit_test(test_prove_shows_witnessed_time),
	        cmocka_unit_test(test_channel_state_witnessed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
