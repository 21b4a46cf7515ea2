/*
 * test_cli.c — end-to-end tests of the real `tally` binary: a data directory
 * on disk, real processes, exit codes and output as a script would see them.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node/tl_node.h"

#define PASS "correct horse battery staple"

struct fx {
	char *dir;
	char home_env[4200];
	char pass_env[128];
	char origin[TL_ORIGIN_LEN + 1];
	char peer_hex[65];
};

static const char *const *env_of(struct fx *x)
{
	static const char *env[3];
	env[0] = x->home_env;
	env[1] = x->pass_env;
	env[2] = NULL;
	return env;
}

/* Runs tally with argv and returns the exit status; out/err kept in r. */
static int tally(struct fx *x, struct th_run *r, const char *const *argv, const char *in)
{
	th_run_free(r);
	assert_int_equal(th_run(r, argv, env_of(x), in, in ? strlen(in) : 0, 300), 0);
	return r->status;
}

static void chomp(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = 0;
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	struct th_run r = {0};
	x->dir = th_tmpdir("cli");
	snprintf(x->home_env, sizeof x->home_env, "TALLY_HOME=%s/home", x->dir);
	snprintf(x->pass_env, sizeof x->pass_env, "TALLY_PASSPHRASE=%s", PASS);
	const char *a1[] = {"tally", "init", "--book", "acme", NULL};
	assert_int_equal(tally(x, &r, a1, NULL), 0);
	const char *a2[] = {"tally", "init", "--book", "buyer", NULL};
	assert_int_equal(tally(x, &r, a2, NULL), 0);
	chomp(r.out);
	assert_int_equal(strlen(r.out), 64);
	strcpy(x->peer_hex, r.out);
	const char *a3[] = {"tally", "feed", "new", "--book", "acme", "--peer", x->peer_hex, NULL};
	assert_int_equal(tally(x, &r, a3, NULL), 0);
	chomp(r.out);
	assert_int_equal(strlen(r.out), TL_ORIGIN_LEN);
	strcpy(x->origin, r.out);
	th_run_free(&r);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	th_rmtree(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

static char *jsonl_lines(size_t from, size_t n)
{
	size_t cap = n * 200 + 1, len = 0;
	char *s = malloc(cap);
	for (size_t i = from; i < from + n; i++)
		len += (size_t)snprintf(
		        s + len, cap - len,
		        "{\"kind\":\"statement\",\"body\":{\"id\":\"ST-%06zu\","
		        "\"amount\":%zu,\"currency\":\"CNY\",\"memo\":\"line %zu of "
		        "the bulk test, padded to a realistic size\"}}\n",
		        i, i * 100 + 7, i);
	return s;
}

static void append_bulk(struct fx *x, size_t from, size_t n)
{
	struct th_run r = {0};
	char *in = jsonl_lines(from, n);
	const char *a[] = {"tally", "feed", "append", x->origin, "--jsonl", "-", NULL};
	assert_int_equal(tally(x, &r, a, in), 0);
	/* One "seq leaf" line per entry, in order. */
	size_t lines = 0;
	for (char *p = r.out; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, n);
	free(in);
	th_run_free(&r);
}

static void test_usage_and_errors(void **state)
{
	struct fx *x = *state;
	struct th_run r = {0};
	const char *a1[] = {"tally", "feed", "append", x->origin, "--kind", "k", NULL};
	assert_int_equal(tally(x, &r, a1, NULL), 2);
	const char *a2[] = {"tally", "frobnicate", NULL};
	assert_int_equal(tally(x, &r, a2, NULL), 2);
	const char *a3[] = {"tally", "feed", "log", x->origin, "--bogus", NULL};
	assert_int_equal(tally(x, &r, a3, NULL), 2);
	assert_non_null(strstr(r.err, "--bogus"));
	const char *a4[] = {"tally", "feed", "prove", x->origin, "-1", NULL};
	assert_int_equal(tally(x, &r, a4, NULL), 2);
	/* A real number is refused, with the reason, and nothing is appended. */
	const char *a5[] = {"tally",  "feed",      "append", x->origin,
	                    "--kind", "statement", "--body", "{\"amount\": 12.50}",
	                    NULL};
	assert_int_equal(tally(x, &r, a5, NULL), 1);
	assert_non_null(strstr(r.err, "integer minor units"));
	/* An unknown origin is a clear error. */
	const char *a6[] = {"tally", "feed", "log", "tally.v1/nope", NULL};
	assert_int_equal(tally(x, &r, a6, NULL), 1);
	assert_non_null(strstr(r.err, "tally.v1/nope"));
	/* A book that exists already. */
	const char *a7[] = {"tally", "init", "--book", "acme", NULL};
	assert_int_equal(tally(x, &r, a7, NULL), 1);
	assert_non_null(strstr(r.err, "already exists"));
	/* A bad JSONL line names file and line; nothing of the file is stored. */
	char path[4200];
	snprintf(path, sizeof path, "%s/in.jsonl", x->dir);
	const char *bad = "{\"kind\":\"a\",\"body\":{\"x\":1}}\n"
	                  "{\"kind\":\"a\",\"body\":{\"x\":2}}\n"
	                  "{\"kind\":\"a\",\"body\":{\"x\":3.0}}\n";
	assert_int_equal(th_write_file(path, bad, strlen(bad)), 0);
	const char *a8[] = {"tally", "feed", "append", x->origin, "--jsonl", path, NULL};
	assert_int_equal(tally(x, &r, a8, NULL), 1);
	char want[4300];
	snprintf(want, sizeof want, "%s:3:", path);
	assert_non_null(strstr(r.err, want));
	const char *a9[] = {"tally", "--json", "feed", "list", NULL};
	assert_int_equal(tally(x, &r, a9, NULL), 0);
	assert_non_null(strstr(r.out, "\"size\":0"));
	th_run_free(&r);
}

static void test_wrong_passphrase(void **state)
{
	struct fx *x = *state;
	struct th_run r = {0};
	const char *env[] = {x->home_env, "TALLY_PASSPHRASE=not the passphrase", NULL};
	const char *a[] = {"tally", "feed",   "append", x->origin, "--kind",
	                   "k",     "--body", "{}",     NULL};
	assert_int_equal(th_run(&r, a, env, NULL, 0, 60), 0);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.err, "wrong passphrase"));
	th_run_free(&r);
}

static void test_append_log_prove(void **state)
{
	struct fx *x = *state;
	struct th_run r = {0};
	const char *a1[] = {"tally",  "feed",
	                    "append", x->origin,
	                    "--kind", "statement",
	                    "--body", "{\"currency\":\"CNY\",\"amount\":12345,\"lines\":[1,2,3]}",
	                    NULL};
	assert_int_equal(tally(x, &r, a1, NULL), 0);
	assert_true(strncmp(r.out, "0 ", 2) == 0);
	append_bulk(x, 1, 20);
	const char *a2[] = {"tally", "feed", "log", x->origin, "--from", "0", "--to", "0", NULL};
	assert_int_equal(tally(x, &r, a2, NULL), 0);
	assert_non_null(strstr(r.out, "amount=12345"));
	assert_non_null(strstr(r.out, "statement"));
	assert_null(strstr(r.out, "ST-000001"));
	const char *a3[] = {"tally",  "--json", "feed", "log", x->origin,
	                    "--from", "3",      "--to", "4",   NULL};
	assert_int_equal(tally(x, &r, a3, NULL), 0);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "seq")), 3);
	assert_string_equal(json_string_value(json_object_get(
	                            json_object_get(json_array_get(j, 0), "body"), "id")),
	                    "ST-000003");
	json_decref(j);

	/* A proof of seq 7 verifies, and fails once its record is altered. */
	char proof[4200];
	snprintf(proof, sizeof proof, "%s/seven.tlog-proof", x->dir);
	const char *a4[] = {"tally", "feed", "prove", x->origin, "7", "-o", proof, NULL};
	assert_int_equal(tally(x, &r, a4, NULL), 0);
	const char *a5[] = {"tally", "verify", proof, NULL};
	assert_int_equal(tally(x, &r, a5, NULL), 0);
	size_t len;
	char *text = th_read_file(proof, &len);
	assert_non_null(text);
	assert_true(strncmp(text, "c2sp.org/tlog-proof@v1\nextra ", 29) == 0);
	assert_non_null(strstr(text, "\nindex 7\n"));
	text[40] = text[40] == 'A' ? 'B' : 'A';
	assert_int_equal(th_write_file(proof, text, len), 0);
	assert_int_equal(tally(x, &r, a5, NULL), 1);
	free(text);

	/* The vkey verifies the checkpoint; another feed's vkey does not. */
	const char *a6[] = {"tally", "feed", "vkey", x->origin, NULL};
	assert_int_equal(tally(x, &r, a6, NULL), 0);
	char vkey[512];
	snprintf(vkey, sizeof vkey, "%s", r.out);
	chomp(vkey);
	const char *a7[] = {"tally", "feed", "checkpoint", x->origin, NULL};
	assert_int_equal(tally(x, &r, a7, NULL), 0);
	char *cp = strdup(r.out);
	assert_non_null(strstr(cp, "\n21\n"));
	const char *a8[] = {"tally", "checkpoint", "verify", "--vkey", vkey, NULL};
	assert_int_equal(tally(x, &r, a8, cp), 0);
	const char *a9[] = {"tally",
	                    "checkpoint",
	                    "verify",
	                    "--vkey",
	                    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
	                    NULL};
	assert_int_equal(tally(x, &r, a9, cp), 1);

	/* Consistency 5 -> 21 verifies against the roots of the two sizes. */
	const char *a10[] = {"tally", "feed", "consistency", x->origin, "5", NULL};
	assert_int_equal(tally(x, &r, a10, NULL), 0);
	uint8_t p[TL_MERKLE_MAX_PROOF][32], r5[32], r21[32];
	size_t np = 0;
	for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
		size_t got;
		assert_int_equal(tl_b64_decode(p[np], 32, &got, line, strlen(line)), 0);
		np++;
	}
	assert_true(np > 0);
	char sp[4200];
	snprintf(sp, sizeof sp, "%s/home/store", x->dir);
	struct tl_store *s;
	char err[256];
	assert_int_equal(tl_store_open(&s, sp, TL_STORE_RDONLY, 0, err, sizeof err), 0);
	struct tl_feed f;
	assert_int_equal(tl_store_feed_get(s, x->origin, &f), 0);
	assert_int_equal(tl_store_root(s, &f, 5, r5), 0);
	assert_int_equal(tl_store_root(s, &f, 21, r21), 0);
	tl_store_close(s);
	assert_int_equal(tl_merkle_verify_consistency(5, 21, r5, r21, (const uint8_t(*)[32])p, np),
	                 0);
	r5[0] ^= 1;
	assert_int_not_equal(
	        tl_merkle_verify_consistency(5, 21, r5, r21, (const uint8_t(*)[32])p, np), 0);
	free(cp);
	th_run_free(&r);
}

/* Bundle helpers: load, change, write back. */
static json_t *load_bundle(const char *path)
{
	json_t *j = json_load_file(path, 0, NULL);
	assert_non_null(j);
	return j;
}

static void save_bundle(json_t *j, const char *path)
{
	assert_int_equal(json_dump_file(j, path, JSON_COMPACT), 0);
}

static json_t *records_of(json_t *b)
{
	return json_object_get(json_array_get(json_object_get(b, "feeds"), 0), "records");
}

static void flip_record(json_t *recs, size_t seq, size_t byte)
{
	const char *s = json_string_value(json_array_get(recs, seq));
	uint8_t buf[4096];
	size_t n;
	char out[8192];
	assert_int_equal(tl_b64_decode(buf, sizeof buf, &n, s, strlen(s)), 0);
	buf[byte % n] ^= 0x01;
	tl_b64_encode(out, buf, n);
	json_array_set_new(recs, seq, json_string(out));
}

static void expect_invalid(struct fx *x, const char *path, const char *const *extra,
                           const char *needle)
{
	struct th_run r = {0};
	const char *a[16] = {"tally", "verify", path};
	int n = 3;
	for (; extra && *extra; extra++)
		a[n++] = *extra;
	a[n] = NULL;
	assert_int_equal(tally(x, &r, a, NULL), 1);
	if (!strstr(r.out, needle))
		fail_msg("expected '%s' in:\n%s%s", needle, r.out, r.err);
	th_run_free(&r);
}

static void test_export_verify_tamper(void **state)
{
	struct fx *x = *state;
	struct th_run r = {0};
	char bundle[4200], bad[4200], want[512];
	append_bulk(x, 0, 10000);
	snprintf(bundle, sizeof bundle, "%s/bundle.json", x->dir);
	snprintf(bad, sizeof bad, "%s/bad.json", x->dir);
	const char *a1[] = {"tally", "export", x->origin, "-o", bundle, NULL};
	assert_int_equal(tally(x, &r, a1, NULL), 0);
	const char *a2[] = {"tally", "--json", "verify", bundle, NULL};
	assert_int_equal(tally(x, &r, a2, NULL), 0);
	json_t *rep = json_loads(r.out, 0, NULL);
	assert_non_null(rep);
	assert_true(json_is_true(json_object_get(rep, "valid")));
	json_t *f0 = json_array_get(json_object_get(rep, "feeds"), 0);
	assert_int_equal(json_integer_value(json_object_get(f0, "records")), 10000);
	assert_int_equal(json_integer_value(json_object_get(f0, "verified")), 10000);
	assert_int_equal(json_integer_value(json_object_get(f0, "max_checkpoint")), 10000);
	json_decref(rep);

	/* One flipped byte in the signature of record 4321. */
	json_t *b = load_bundle(bundle);
	flip_record(records_of(b), 4321, 100000);
	save_bundle(b, bad);
	json_decref(b);
	snprintf(want, sizeof want, "seq 4321");
	expect_invalid(x, bad, NULL, want);

	/* Two records swapped. */
	b = load_bundle(bundle);
	json_t *recs = records_of(b);
	json_t *r2 = json_incref(json_array_get(recs, 2));
	json_array_set(recs, 2, json_array_get(recs, 3));
	json_array_set_new(recs, 3, r2);
	save_bundle(b, bad);
	json_decref(b);
	expect_invalid(x, bad, NULL, "seq 2");

	/* The file cut short. */
	size_t len;
	char *text = th_read_file(bundle, &len);
	assert_int_equal(th_write_file(bad, text, len / 2), 0);
	free(text);
	expect_invalid(x, bad, NULL, "NOT VALID");

	/* A record missing from the middle: the checkpoint covers more. */
	b = load_bundle(bundle);
	json_array_remove(records_of(b), 5000);
	save_bundle(b, bad);
	json_decref(b);
	expect_invalid(x, bad, NULL, "seq 5000");

	/* A --vkey that is not the feed's key. */
	const char *extra[] = {
	        "--vkey", "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
	        NULL};
	expect_invalid(x, bundle, extra, "NOT VALID");

	/* A checkpoint validly signed by the book key whose root lies. */
	char keypath[4200];
	struct tl_keypair kp;
	snprintf(keypath, sizeof keypath, "%s/home/keys/acme.key", x->dir);
	assert_int_equal(tl_keyfile_read(keypath, PASS, strlen(PASS), &kp), 0);
	struct tl_checkpoint cp = {0};
	strcpy(cp.origin, x->origin);
	cp.size = 9000;
	memset(cp.root, 0x5a, 32);
	struct tl_buf t, note;
	tl_buf_init(&t, 4096);
	tl_buf_init(&note, 4096);
	assert_int_equal(tl_checkpoint_format(&cp, &t), 0);
	assert_int_equal(tl_note_sign(&note, (const char *)t.data, t.len, x->origin, &kp), 0);
	tl_key_wipe(&kp);
	b = load_bundle(bundle);
	json_t *cps =
	        json_object_get(json_array_get(json_object_get(b, "feeds"), 0), "checkpoints");
	json_array_append_new(cps, json_stringn((const char *)note.data, note.len));
	save_bundle(b, bad);
	json_decref(b);
	expect_invalid(x, bad, NULL, "checkpoint size 9000");
	tl_buf_release(&t);
	tl_buf_release(&note);
	th_run_free(&r);
}

/*
 * SIGKILL during a bulk append: every entry the command acknowledged (printed)
 * is in the store after reopening, with the same leaf hash, and the chain
 * verifies end to end.
 */
static void test_crash_during_bulk_append(void **state)
{
	struct fx *x = *state;
	const size_t total = 300000;
	char inpath[4200];
	snprintf(inpath, sizeof inpath, "%s/bulk.jsonl", x->dir);
	char *in = jsonl_lines(0, total);
	assert_int_equal(th_write_file(inpath, in, strlen(in)), 0);
	free(in);

	int out[2];
	assert_int_equal(pipe(out), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		putenv(x->home_env);
		putenv(x->pass_env);
		execl(th_tally(), "tally", "feed", "append", x->origin, "--jsonl", inpath,
		      (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	/* Read acknowledgements until a few batches are in, then kill. */
	size_t cap = 1 << 20, len = 0, lines = 0;
	char *acks = malloc(cap);
	while (lines < 5000) {
		if (len + 65536 > cap)
			acks = realloc(acks, cap *= 2);
		ssize_t n = read(out[0], acks + len, 65536);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			lines += acks[len + (size_t)i] == '\n';
		len += (size_t)n;
	}
	kill(pid, SIGKILL);
	/* Whatever was already written to the pipe was acknowledged too. */
	for (;;) {
		if (len + 65536 > cap)
			acks = realloc(acks, cap *= 2);
		ssize_t n = read(out[0], acks + len, 65536);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(out[0]);
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	acks[len] = 0;
	/* Only complete lines count as acknowledged. */
	char *last_nl = strrchr(acks, '\n');
	assert_non_null(last_nl);
	last_nl[1] = 0;

	char sp[4200], err[256];
	snprintf(sp, sizeof sp, "%s/home/store", x->dir);
	struct tl_store *s;
	assert_int_equal(tl_store_open(&s, sp, 0, 0, err, sizeof err), 0);
	struct tl_feed f;
	assert_int_equal(tl_store_feed_get(s, x->origin, &f), 0);
	size_t acked = 0;
	for (char *line = strtok(acks, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long seq;
		char hex[65];
		uint8_t want[32], got[32];
		assert_int_equal(sscanf(line, "%llu %64s", &seq, hex), 2);
		assert_int_equal(seq, acked);
		assert_int_equal(th_unhex(want, 32, hex), 32);
		assert_int_equal(tl_store_leaf(s, &f, seq, got), 0);
		assert_memory_equal(want, got, 32);
		acked++;
	}
	assert_true(acked >= 5000);
	assert_true(f.head.size >= acked);
	assert_true(f.head.size < total); /* it really was interrupted */
	tl_store_close(s);
	free(acks);

	/* The store still accepts appends and the whole chain verifies. */
	struct th_run r = {0};
	const char *a1[] = {"tally", "feed",   "append", x->origin, "--kind",
	                    "after", "--body", "{}",     NULL};
	assert_int_equal(tally(x, &r, a1, NULL), 0);
	char bundle[4200];
	snprintf(bundle, sizeof bundle, "%s/after.json", x->dir);
	const char *a2[] = {"tally", "export", x->origin, "-o", bundle, NULL};
	assert_int_equal(tally(x, &r, a2, NULL), 0);
	const char *a3[] = {"tally", "verify", bundle, NULL};
	assert_int_equal(tally(x, &r, a3, NULL), 0);
	assert_non_null(strstr(r.out, "VALID"));
	th_run_free(&r);
}

/* Replaces every occurrence of needle in the file (LMDB keeps stale page
 * copies, so all of them) by repl of the same length; returns the count. */
static size_t patch_file(const char *path, const char *needle, const char *repl)
{
	size_t len, n = 0, k = strlen(needle);
	char *d = th_read_file(path, &len);
	assert_non_null(d);
	assert_int_equal(strlen(repl), k);
	for (size_t i = 0; i + k <= len; i++)
		if (memcmp(d + i, needle, k) == 0) {
			memcpy(d + i, repl, k);
			n++;
		}
	assert_int_equal(th_write_file(path, d, len), 0);
	free(d);
	return n;
}

/*
 * tally fsck re-verifies a data directory from the bytes up: sound feeds
 * pass (exit 0, both checkpoints judged); a record damaged on disk and a
 * checkpoint whose signature was altered are each reported with the feed
 * and seq (exit 1), and the scan goes on past the damage.
 */
static void test_fsck(void **state)
{
	struct fx *x = *state;
	struct th_run r = {0};
	char path[4200];

	append_bulk(x, 0, 20);
	const char *cp[] = {"tally", "feed", "checkpoint", x->origin, NULL};
	assert_int_equal(tally(x, &r, cp, NULL), 0);
	append_bulk(x, 20, 30);
	assert_int_equal(tally(x, &r, cp, NULL), 0);
	/* The signature line of the size-50 checkpoint, to alter later. */
	char *sig = strstr(r.out, "\n\xe2\x80\x94 ");
	assert_non_null(sig);
	sig = strrchr(sig, ' ') + 1;
	char sigtext[24];
	snprintf(sigtext, sizeof sigtext, "%.20s", sig);

	const char *fsck[] = {"tally", "fsck", NULL};
	assert_int_equal(tally(x, &r, fsck, NULL), 0);
	assert_non_null(strstr(r.out, "50 records, 2 checkpoints"));
	assert_non_null(strstr(r.out, "1 feed checked, 0 damaged"));
	const char *fsck_json[] = {"tally", "--json", "fsck", NULL};
	assert_int_equal(tally(x, &r, fsck_json, NULL), 0);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "damaged")), 0);
	json_decref(j);

	/* Damage record 7 and the size-50 checkpoint's signature on disk. */
	snprintf(path, sizeof path, "%s/home/store/data.mdb", x->dir);
	assert_true(patch_file(path, "line 7 of the bulk", "line 7 of the hulk") >= 1);
	char alt[24];
	strcpy(alt, sigtext);
	alt[5] = alt[5] == 'A' ? 'B' : 'A';
	assert_true(patch_file(path, sigtext, alt) >= 1);

	assert_int_equal(tally(x, &r, fsck, NULL), 1);
	assert_non_null(strstr(r.out, "DAMAGED"));
	assert_non_null(strstr(r.out, "50 records, 2 checkpoints"));
	assert_non_null(strstr(r.err, "seq 7: record bytes do not match the stored leaf hash"));
	assert_non_null(strstr(r.err, "checkpoint of size 50: signature by the feed key does not verify"));
	/* The sound checkpoint at 20 is not reported. */
	assert_null(strstr(r.err, "size 20"));
	const char *usage[] = {"tally", "fsck", "tally.v1/nosuchfeed", NULL};
	assert_int_equal(tally(x, &r, usage, NULL), 2);
	th_run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_usage_and_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wrong_passphrase, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_append_log_prove, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_export_verify_tamper, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_crash_during_bulk_append, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_fsck, setup, teardown),
	};
	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
