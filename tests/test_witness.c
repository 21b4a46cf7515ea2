/*
 * test_witness.c — end-to-end tests of the witness (`tallyd --witness`,
 * C2SP tlog-witness v1.0.0) and of `tally witness`: real processes on
 * 127.0.0.1 with kernel-picked ports (read back from HOME/witness.addr),
 * requests with libcurl, and a log side built here with the crypto module
 * (an in-memory RFC 6962 tree, checkpoints signed by a book key).
 *
 * Every process started here is stopped and reaped by teardown, also when
 * an assertion fails. TALLY_TEST_KEEP=1 keeps each test's directory.
 */
#include "nodes.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto/tl_crypto.h"

#define PASS     "witness test passphrase"
#define WNAME    "witness.test/w1"
#define NLEAVES  512
#define POLL_MS  20
#define MAX_LOGS 4

/* ------------------------------------------------------------ log side */

struct tlog {
	char origin[128];
	char vkey[512];
	struct tl_keypair kp;
	struct tl_merkle_mem mem;
	struct tl_merkle_src src;
};

static void tlog_init(struct tlog *l, const char *origin)
{
	uint8_t(*leaves)[TL_HASH_LEN] = calloc(NLEAVES, TL_HASH_LEN);
	struct tl_vkey vk;
	struct tl_buf b;
	assert_non_null(leaves);
	snprintf(l->origin, sizeof l->origin, "%s", origin);
	assert_int_equal(tl_key_generate(&l->kp), 0);
	for (int i = 0; i < NLEAVES; i++) {
		char d[160];
		int n = snprintf(d, sizeof d, "%s leaf %d", origin, i);
		tl_merkle_leaf_hash(leaves[i], (const uint8_t *)d, (size_t)n);
	}
	assert_int_equal(
	        tl_merkle_mem_build(&l->mem, (const uint8_t(*)[TL_HASH_LEN])leaves, NLEAVES), 0);
	free(leaves);
	l->src = tl_merkle_mem_src(&l->mem);
	assert_int_equal(tl_vkey_from_pub(&vk, origin, TL_SIGTYPE_ED25519, l->kp.pk), 0);
	tl_buf_init(&b, 1024);
	assert_int_equal(tl_vkey_format(&vk, &b), 0);
	snprintf(l->vkey, sizeof l->vkey, "%s", tl_buf_cstr(&b));
	tl_buf_release(&b);
}

static void tlog_free(struct tlog *l)
{
	if (l->origin[0])
		tl_merkle_mem_release(&l->mem);
	tl_key_wipe(&l->kp);
	memset(l, 0, sizeof *l);
}

static void tlog_root(struct tlog *l, uint64_t size, uint8_t root[TL_HASH_LEN])
{
	if (size == 0)
		tl_merkle_empty_root(root);
	else
		assert_int_equal(tl_merkle_root(&l->src, size, root), 0);
}

/* Checkpoint text of size (root overridable), signed by kp under name. */
static void checkpoint_note(struct tlog *l, uint64_t size, const uint8_t *root_override,
                            const struct tl_keypair *kp, const char *name, struct tl_buf *out)
{
	struct tl_checkpoint cp = {0};
	struct tl_buf text;
	snprintf(cp.origin, sizeof cp.origin, "%s", l->origin);
	cp.size = size;
	if (root_override)
		memcpy(cp.root, root_override, TL_HASH_LEN);
	else
		tlog_root(l, size, cp.root);
	tl_buf_init(&text, 4096);
	assert_int_equal(tl_checkpoint_format(&cp, &text), 0);
	assert_int_equal(tl_note_sign(out, (const char *)text.data, text.len,
	                              name ? name : l->origin, kp ? kp : &l->kp),
	                 0);
	tl_buf_release(&text);
}

/* "old N\n" + proof lines + "\n" + note. */
static void body_build(struct tl_buf *out, uint64_t old, const uint8_t (*proof)[TL_HASH_LEN],
                       size_t n, const struct tl_buf *note)
{
	char b64[64];
	assert_int_equal(tl_buf_printf(out, "old %llu\n", (unsigned long long)old), 0);
	for (size_t i = 0; i < n; i++) {
		tl_b64_encode(b64, proof[i], TL_HASH_LEN);
		assert_int_equal(tl_buf_printf(out, "%s\n", b64), 0);
	}
	assert_int_equal(tl_buf_addc(out, '\n'), 0);
	assert_int_equal(tl_buf_add(out, note->data, note->len), 0);
}

/* A correct request growing the log from old to size. */
static void body_grow(struct tlog *l, uint64_t old, uint64_t size, struct tl_buf *out)
{
	uint8_t proof[TL_MERKLE_MAX_PROOF][TL_HASH_LEN];
	size_t n = 0;
	struct tl_buf note;
	if (old > 0 && old < size)
		assert_int_equal(tl_merkle_consistency_proof(&l->src, old, size, proof,
		                                             TL_MERKLE_MAX_PROOF, &n),
		                 0);
	tl_buf_init(&note, 1 << 16);
	checkpoint_note(l, size, NULL, NULL, NULL, &note);
	body_build(out, old, (const uint8_t(*)[TL_HASH_LEN])proof, n, &note);
	tl_buf_release(&note);
}

/* ------------------------------------------------------------- HTTP */

struct resp {
	long code;
	char ctype[128];
	char body[8192];
	size_t len;
};

static size_t on_body(char *p, size_t sz, size_t nm, void *ctx)
{
	struct resp *r = ctx;
	size_t n = sz * nm, room = sizeof r->body - 1 - r->len;
	memcpy(r->body + r->len, p, n < room ? n : room);
	r->len += n < room ? n : room;
	r->body[r->len] = 0;
	return n;
}

/* One request on handle h (reused: keep-alive); 0 or a curl error. */
static int http_do(CURL *h, const char *addr, const char *path, const void *body, size_t len,
                   struct resp *r)
{
	char url[512];
	char *ct = NULL;
	memset(r, 0, sizeof *r);
	snprintf(url, sizeof url, "http://%s%s", addr, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	CURLcode rc = curl_easy_perform(h);
	if (rc != CURLE_OK)
		return (int)rc;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->code);
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(r->ctype, sizeof r->ctype, "%s", ct ? ct : "");
	return 0;
}

static long post(const char *addr, const struct tl_buf *body, struct resp *r)
{
	CURL *h = curl_easy_init();
	assert_non_null(h);
	int rc = http_do(h, addr, "/add-checkpoint", body->data, body->len, r);
	curl_easy_cleanup(h);
	if (rc)
		fail_msg("POST to %s failed: %s", addr, curl_easy_strerror((CURLcode)rc));
	return r->code;
}

static long post_raw(const char *addr, const char *body, struct resp *r)
{
	struct tl_buf b;
	tl_buf_init(&b, 1 << 20);
	assert_int_equal(tl_buf_add(&b, body, strlen(body)), 0);
	long code = post(addr, &b, r);
	tl_buf_release(&b);
	return code;
}

static long get(const char *addr, const char *path, struct resp *r)
{
	CURL *h = curl_easy_init();
	assert_non_null(h);
	int rc = http_do(h, addr, path, NULL, 0, r);
	curl_easy_cleanup(h);
	if (rc)
		fail_msg("GET %s failed: %s", path, curl_easy_strerror((CURLcode)rc));
	return r->code;
}

/* ------------------------------------------------------------ fixture */

struct fx {
	char *dir;
	char home[4096], log[4200], home_env[4200];
	char vkey[512]; /* the witness's, type 0x04 */
	struct tl_vkey wvk;
	char addr[64];
	pid_t pid;
	struct tlog logs[MAX_LOGS];
};

/* Runs tally on the witness home; status returned, output in r. */
static int tally(struct fx *x, struct th_run *r, const char *const *argv)
{
	static char pass_env[] = "TALLY_PASSPHRASE=" PASS;
	const char *env[] = {x->home_env, pass_env, NULL};
	th_run_free(r);
	assert_int_equal(th_run(r, argv, env, NULL, 0, 120), 0);
	return r->status;
}

static void allow(struct fx *x, const char *origin, const char *vkey)
{
	struct th_run r = {0};
	const char *a[] = {"tally", "witness", "allow", origin, vkey, NULL};
	if (tally(x, &r, a) != 0)
		fail_msg("witness allow %s: %s", origin, r.err);
	th_run_free(&r);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	struct th_run r = {0};
	assert_non_null(x);
	x->dir = th_tmpdir("witness");
	assert_non_null(x->dir);
	snprintf(x->home, sizeof x->home, "%s/w", x->dir);
	snprintf(x->log, sizeof x->log, "%s/w.log", x->dir);
	snprintf(x->home_env, sizeof x->home_env, "TALLY_HOME=%s", x->home);
	*state = x;
	const char *a[] = {"tally", "witness", "init", "--name", WNAME, NULL};
	if (tally(x, &r, a) != 0)
		fail_msg("witness init: %s", r.err);
	th_chomp(r.out);
	snprintf(x->vkey, sizeof x->vkey, "%s", r.out);
	assert_int_equal(tl_vkey_parse(&x->wvk, x->vkey, strlen(x->vkey)), 0);
	assert_int_equal(x->wvk.type, TL_SIGTYPE_COSIG);
	assert_string_equal(x->wvk.name, WNAME);
	th_run_free(&r);
	return 0;
}

static int stop_witness(struct fx *x, int sig)
{
	int st = th_stop_pid(x->pid, sig, 30000);
	x->pid = 0;
	return st;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	stop_witness(x, SIGTERM);
	for (int i = 0; i < MAX_LOGS; i++)
		tlog_free(&x->logs[i]);
	th_tmpdir_done(x->dir);
	free(x);
	return 0;
}

/* Starts the witness; extra: NULL or one more option and its value. */
static pid_t spawn_witness(struct fx *x, const char *opt, const char *val)
{
	const char *argv[] = {"tallyd", "--witness", "--home", x->home, "--listen", "127.0.0.1:0",
	                      "--log",  "debug",     opt,      val,     NULL};
	return th_spawn_tallyd(x->log, NULL, PASS, argv); /* opt NULL ends argv there */
}

static void start_witness(struct fx *x, const char *opt, const char *val)
{
	char path[4200];
	int st = 0;
	snprintf(path, sizeof path, "%s/witness.addr", x->home);
	unlink(path);
	x->pid = spawn_witness(x, opt, val);
	int rc = th_wait_addr(&x->pid, path, x->addr, sizeof x->addr, 30000, POLL_MS, &st);
	if (rc < 0)
		fail_msg("tallyd --witness exited (status %d); log:\n%s", st, th_file_tail(x->log));
	if (rc == 0)
		fail_msg("tallyd --witness wrote no witness.addr; log:\n%s", th_file_tail(x->log));
	assert_non_null(strstr(x->addr, "127.0.0.1:"));
}

static void restart_clean(struct fx *x, const char *opt, const char *val)
{
	int st = stop_witness(x, SIGTERM);
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("the witness did not stop cleanly (status %d); log:\n%s", st,
		         th_file_tail(x->log));
	start_witness(x, opt, val);
}

/* The cosignature in a 200 body verifies on the checkpoint; its time. */
static uint64_t check_cosig(const struct fx *x, const struct tl_buf *note, const struct resp *r)
{
	struct tl_buf all;
	struct tl_note n;
	uint64_t t = 0;
	assert_int_equal(r->code, 200);
	assert_true(r->len > 4);
	assert_int_equal(r->body[r->len - 1], '\n');
	assert_int_equal(memcmp(r->body, "\xe2\x80\x94 " WNAME " ", 4 + strlen(WNAME) + 1), 0);
	/* exactly one line */
	assert_ptr_equal(strchr(r->body, '\n'), r->body + r->len - 1);
	tl_buf_init(&all, 1 << 17);
	assert_int_equal(tl_buf_add(&all, note->data, note->len), 0);
	assert_int_equal(tl_buf_add(&all, r->body, r->len), 0);
	assert_int_equal(tl_note_parse(&n, (const char *)all.data, all.len), 0);
	assert_int_equal(tl_cosig_verify(&n, &x->wvk, &t), 0);
	tl_note_release(&n);
	tl_buf_release(&all);
	/* The same, independently of the crypto module that signed it (a
	 * shared mistake would pass above): tlog-cosignature v1.0.1 key id
	 * SHA-256(name || "\n" || 0x04 || pk)[:4], a big-endian timestamp, and
	 * Ed25519 over "cosignature/v1\ntime <t>\n" || checkpoint text. */
	{
		const char *b64 = r->body + 4 + strlen(WNAME) + 1;
		uint8_t raw[4 + 8 + 64], pre[TL_NAME_MAX + 40], id[32];
		size_t rl = 0, pl = strlen(WNAME);
		char hdr[64];
		assert_int_equal(tl_b64_decode(raw, sizeof raw, &rl, b64,
		                               (size_t)(r->body + r->len - 1 - b64)),
		                 0);
		assert_int_equal(rl, sizeof raw);
		memcpy(pre, WNAME, pl);
		pre[pl++] = '\n';
		pre[pl++] = 0x04;
		memcpy(pre + pl, x->wvk.pk, 32);
		crypto_hash_sha256(id, pre, pl + 32);
		assert_memory_equal(raw, id, 4);
		uint64_t ts = 0;
		for (int i = 0; i < 8; i++)
			ts = ts << 8 | raw[4 + i];
		assert_int_equal(ts, t);
		const char *sep = strstr((const char *)note->data, "\n\n");
		assert_non_null(sep);
		int hl = snprintf(hdr, sizeof hdr, "cosignature/v1\ntime %llu\n",
		                  (unsigned long long)ts);
		tl_buf_init(&all, 1 << 17);
		assert_int_equal(tl_buf_add(&all, hdr, (size_t)hl), 0);
		assert_int_equal(
		        tl_buf_add(&all, note->data, (size_t)(sep + 1 - (const char *)note->data)),
		        0);
		assert_int_equal(
		        crypto_sign_verify_detached(raw + 12, all.data, all.len, x->wvk.pk), 0);
		tl_buf_release(&all);
	}
	return t;
}

/* Grows l from old to size; asserts 200 and a valid cosignature in
 * [now - 2, now + 2] + offset. Returns the cosignature time. */
static uint64_t grow_ok(struct fx *x, struct tlog *l, uint64_t old, uint64_t size, long offset)
{
	struct tl_buf body, note;
	struct resp r;
	tl_buf_init(&body, 1 << 17);
	tl_buf_init(&note, 1 << 16);
	body_grow(l, old, size, &body);
	checkpoint_note(l, size, NULL, NULL, NULL, &note);
	uint64_t before = (uint64_t)time(NULL);
	if (post(x->addr, &body, &r) != 200)
		fail_msg("%s %llu -> %llu: %ld %s", l->origin, (unsigned long long)old,
		         (unsigned long long)size, r.code, r.body);
	uint64_t after = (uint64_t)time(NULL);
	uint64_t t = check_cosig(x, &note, &r);
	assert_true(t + 1 >= before + (uint64_t)offset);
	assert_true(t <= after + (uint64_t)offset + 1);
	tl_buf_release(&body);
	tl_buf_release(&note);
	return t;
}

/* The persisted size, as a 409 to an "old 0" probe reveals it. */
static uint64_t probe_size(struct fx *x, struct tlog *l, uint64_t guess)
{
	struct tl_buf body;
	struct resp r;
	tl_buf_init(&body, 1 << 17);
	body_grow(l, 0, guess, &body);
	long code = post(x->addr, &body, &r);
	tl_buf_release(&body);
	if (code == 200)
		return 0; /* was empty; now grown to guess */
	assert_int_equal(code, 409);
	assert_string_equal(r.ctype, "text/x.tlog.size");
	uint64_t v;
	assert_true(r.len >= 2 && r.body[r.len - 1] == '\n');
	assert_int_equal(tl_parse_u64(r.body, r.len - 1, &v), 0);
	return v;
}

static void expect(struct fx *x, const char *what, const struct tl_buf *body, long code)
{
	struct resp r;
	long got = post(x->addr, body, &r);
	if (got != code)
		fail_msg("%s: expected %ld, got %ld: %s", what, code, got, r.body);
}

static void expect_raw(struct fx *x, const char *what, const char *body, long code)
{
	struct resp r;
	long got = post_raw(x->addr, body, &r);
	if (got != code)
		fail_msg("%s: expected %ld, got %ld: %s", what, code, got, r.body);
}

/* ------------------------------------------------------------- tests */

/* Every status code of add-checkpoint, in the order of the spec. */
static void test_status_codes(void **state)
{
	struct fx *x = *state;
	struct tlog *a = &x->logs[0], *b = &x->logs[1], *other = &x->logs[2];
	struct tl_buf body, note;
	struct resp r;
	uint8_t proof[TL_MERKLE_MAX_PROOF][TL_HASH_LEN], root[TL_HASH_LEN];
	size_t n;

	tlog_init(a, "example.test/log-a");
	tlog_init(b, "example.test/log-b");
	tlog_init(other, "example.test/unregistered");
	allow(x, a->origin, a->vkey);
	allow(x, b->origin, b->vkey);
	start_witness(x, NULL, NULL);
	tl_buf_init(&body, 1 << 18);
	tl_buf_init(&note, 1 << 16);

	/* 404: an origin nobody registered (correctly signed by its own key). */
	body_grow(other, 0, 3, &body);
	expect(x, "unknown origin", &body, 404);

	/* 403: only a signature by a key not registered for the origin. */
	tl_buf_reset(&body);
	tl_buf_reset(&note);
	checkpoint_note(a, 3, NULL, &other->kp, a->origin, &note);
	body_build(&body, 0, NULL, 0, &note);
	expect(x, "signature by an unregistered key under the origin's name", &body, 403);
	tl_buf_reset(&body);
	tl_buf_reset(&note);
	checkpoint_note(a, 3, NULL, &other->kp, other->origin, &note);
	body_build(&body, 0, NULL, 0, &note);
	expect(x, "signature by another log's key", &body, 403);
	/* 403: the registered key's line, with a damaged signature. */
	tl_buf_reset(&body);
	tl_buf_reset(&note);
	checkpoint_note(a, 3, NULL, NULL, NULL, &note);
	{
		char *sp = strrchr((char *)note.data, ' ');
		assert_non_null(sp);
		sp[10] = sp[10] == 'A' ? 'B' : 'A'; /* inside the signature's base64 */
	}
	body_build(&body, 0, NULL, 0, &note);
	expect(x, "damaged signature", &body, 403);

	/* 400: old size larger than the checkpoint's. */
	tl_buf_reset(&body);
	tl_buf_reset(&note);
	checkpoint_note(a, 3, NULL, NULL, NULL, &note);
	body_build(&body, 4, NULL, 0, &note);
	expect(x, "old 4 > size 3", &body, 400);

	/* 400: malformed bodies. */
	char cp3[2048];
	snprintf(cp3, sizeof cp3, "%.*s", (int)note.len, (const char *)note.data);
	char buf[16384];
	static const char *const bad_old[] = {"old 03\n\n", "old x\n\n",  "old -1\n\n",
	                                      "old  3\n\n", "Old 3\n\n",  "old 3 \n\n",
	                                      "old\n\n",    "old 3\r\n\n"};
	for (size_t i = 0; i < sizeof bad_old / sizeof bad_old[0]; i++) {
		snprintf(buf, sizeof buf, "%s%s", bad_old[i], cp3);
		expect_raw(x, bad_old[i], buf, 400);
	}
	snprintf(buf, sizeof buf, "old 0\n%s", cp3); /* no empty line after the proof */
	expect_raw(x, "missing empty line", buf, 400);
	snprintf(buf, sizeof buf, "old 0\n");
	expect_raw(x, "no checkpoint", buf, 400);
	expect_raw(x, "empty body", "", 400);
	snprintf(buf, sizeof buf, "old 0\nnot base64!\n\n%s", cp3);
	expect_raw(x, "bad base64 proof line", buf, 400);
	snprintf(buf, sizeof buf, "old 0\nAAAA\n\n%s", cp3);
	expect_raw(x, "proof line of 3 bytes", buf, 400);
	snprintf(buf, sizeof buf, "old 0\n\n%.*s\n", (int)(strchr(cp3, '\n') - cp3 + 1), cp3);
	expect_raw(x, "truncated checkpoint", buf, 400);
	snprintf(buf, sizeof buf, "old 0\n\nexample.test/log-a\n3\nroot\n\n");
	expect_raw(x, "a note without signatures", buf, 400);
	/* 64 proof lines: 400; 63 lines pass the parser (the proof fails later:
	 * 422 would need old > 0, here the log is empty so 409 first). */
	for (int lines = 63; lines <= 64; lines++) {
		size_t k = (size_t)snprintf(buf, sizeof buf, "old 3\n");
		for (int i = 0; i < lines; i++)
			k += (size_t)snprintf(buf + k, sizeof buf - k,
			                      "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
		snprintf(buf + k, sizeof buf - k, "\n%s", cp3);
		expect_raw(x, lines == 64 ? "64 proof lines" : "63 proof lines", buf,
		           lines == 64 ? 400 : 409);
	}

	/* Size 0: the empty tree, then growth from it needs no proof. */
	tl_buf_reset(&body);
	body_grow(a, 0, 0, &body);
	tl_buf_reset(&note);
	checkpoint_note(a, 0, NULL, NULL, NULL, &note);
	assert_int_equal(post(x->addr, &body, &r), 200);
	check_cosig(x, &note, &r);
	/* A size-0 checkpoint with another root can match no tree: 422. */
	memset(root, 7, sizeof root);
	tl_buf_reset(&note);
	checkpoint_note(a, 0, root, NULL, NULL, &note);
	tl_buf_reset(&body);
	body_build(&body, 0, NULL, 0, &note);
	expect(x, "size 0 with a non-empty root", &body, 422);

	grow_ok(x, a, 0, 5, 0);

	/* 409: stale old size; the exact content type and body. */
	tl_buf_reset(&body);
	body_grow(a, 0, 7, &body);
	assert_int_equal(post(x->addr, &body, &r), 409);
	assert_string_equal(r.ctype, "text/x.tlog.size");
	assert_string_equal(r.body, "5\n");
	tl_buf_reset(&body);
	body_grow(a, 3, 7, &body);
	assert_int_equal(post(x->addr, &body, &r), 409);
	assert_string_equal(r.body, "5\n");

	/* 422: a proof that does not verify (one byte flipped), and one for
	 * other sizes; the state does not move. */
	assert_int_equal(tl_merkle_consistency_proof(&a->src, 5, 8, proof, TL_MERKLE_MAX_PROOF, &n),
	                 0);
	assert_true(n > 0);
	proof[0][3] ^= 1;
	tl_buf_reset(&note);
	checkpoint_note(a, 8, NULL, NULL, NULL, &note);
	tl_buf_reset(&body);
	body_build(&body, 5, (const uint8_t(*)[TL_HASH_LEN])proof, n, &note);
	expect(x, "damaged proof", &body, 422);
	assert_int_equal(tl_merkle_consistency_proof(&a->src, 4, 8, proof, TL_MERKLE_MAX_PROOF, &n),
	                 0);
	tl_buf_reset(&body);
	body_build(&body, 5, (const uint8_t(*)[TL_HASH_LEN])proof, n, &note);
	expect(x, "proof from another size", &body, 422);
	tl_buf_reset(&body);
	body_build(&body, 5, NULL, 0, &note);
	expect(x, "missing proof", &body, 422);

	/* 200: growth with a real consistency proof. */
	uint64_t t1 = grow_ok(x, a, 5, 8, 0);

	/* Same size, same root: a fresh cosignature (heartbeat), not older. */
	uint64_t t2 = grow_ok(x, a, 8, 8, 0);
	assert_true(t2 >= t1);
	/* Same size with a proof: there is none between equal sizes. */
	assert_int_equal(tl_merkle_consistency_proof(&a->src, 4, 8, proof, TL_MERKLE_MAX_PROOF, &n),
	                 0);
	tl_buf_reset(&note);
	checkpoint_note(a, 8, NULL, NULL, NULL, &note);
	tl_buf_reset(&body);
	body_build(&body, 8, (const uint8_t(*)[TL_HASH_LEN])proof, 1, &note);
	expect(x, "proof between equal sizes", &body, 422);

	/* Same size, another root (a fork signed by the log): 409 with the size. */
	memset(root, 9, sizeof root);
	tl_buf_reset(&note);
	checkpoint_note(a, 8, root, NULL, NULL, &note);
	tl_buf_reset(&body);
	body_build(&body, 8, NULL, 0, &note);
	assert_int_equal(post(x->addr, &body, &r), 409);
	assert_string_equal(r.ctype, "text/x.tlog.size");
	assert_string_equal(r.body, "8\n");
	assert_int_equal(probe_size(x, a, 9), 8);

	/* Old 0 with a non-empty proof on a log never cosigned: 422, and the
	 * log stays empty (then the same without the proof is accepted). */
	assert_int_equal(tl_merkle_consistency_proof(&b->src, 2, 4, proof, TL_MERKLE_MAX_PROOF, &n),
	                 0);
	tl_buf_reset(&note);
	checkpoint_note(b, 4, NULL, NULL, NULL, &note);
	tl_buf_reset(&body);
	body_build(&body, 0, (const uint8_t(*)[TL_HASH_LEN])proof, n, &note);
	expect(x, "old 0 with a proof", &body, 422);
	grow_ok(x, b, 0, 4, 0);

	/* Methods and paths. */
	assert_int_equal(get(x->addr, "/add-checkpoint", &r), 405);
	assert_int_equal(get(x->addr, "/no-such-thing", &r), 404);

	/* A checkpoint with two signatures, one by an unknown key: accepted. */
	tl_buf_reset(&note);
	checkpoint_note(b, 6, NULL, NULL, NULL, &note);
	{
		struct tl_buf extra;
		tl_buf_init(&extra, 1 << 16);
		char text[512];
		size_t tl = (size_t)(strstr((char *)note.data, "\n\n") - (char *)note.data) + 1;
		memcpy(text, note.data, tl);
		assert_int_equal(tl_note_sign(&extra, text, tl, "someone.else", &other->kp), 0);
		/* note + the other line */
		const char *line = strstr((char *)extra.data, "\n\n") + 2;
		assert_int_equal(
		        tl_buf_add(&note, line, extra.len - (size_t)(line - (char *)extra.data)),
		        0);
		tl_buf_release(&extra);
	}
	assert_int_equal(tl_merkle_consistency_proof(&b->src, 4, 6, proof, TL_MERKLE_MAX_PROOF, &n),
	                 0);
	tl_buf_reset(&body);
	body_build(&body, 4, (const uint8_t(*)[TL_HASH_LEN])proof, n, &note);
	assert_int_equal(post(x->addr, &body, &r), 200);
	check_cosig(x, &note, &r);

	/* The status page counts what happened. */
	assert_int_equal(get(x->addr, "/status", &r), 200);
	assert_non_null(strstr(r.body, x->vkey));
	assert_non_null(strstr(r.body, "logs 2\n"));

	tl_buf_release(&body);
	tl_buf_release(&note);
}

/* State survives a restart: 409 reveals the size, /latest serves the note. */
static void test_restart_keeps_state(void **state)
{
	struct fx *x = *state;
	struct tlog *a = &x->logs[0];
	struct resp r;
	struct th_run tr = {0};

	tlog_init(a, "tally.v1/aa/bb");
	allow(x, a->origin, a->vkey);
	start_witness(x, NULL, NULL);
	assert_int_equal(get(x->addr, "/latest/tally.v1%2Faa%2Fbb", &r), 404);
	grow_ok(x, a, 0, 10, 0);
	uint64_t t = grow_ok(x, a, 10, 21, 0);
	restart_clean(x, NULL, NULL);
	assert_int_equal(probe_size(x, a, 30), 21);

	/* /latest: the checkpoint, the log's signature, our cosignature. */
	assert_int_equal(get(x->addr, "/latest/tally.v1%2Faa%2Fbb", &r), 200);
	struct tl_note n;
	struct tl_checkpoint cp;
	struct tl_vkey lvk;
	uint64_t ct = 0;
	assert_int_equal(tl_note_parse(&n, r.body, r.len), 0);
	assert_int_equal(tl_checkpoint_parse(&cp, n.raw, n.text_len), 0);
	assert_int_equal(cp.size, 21);
	assert_int_equal(n.nsigs, 2);
	assert_int_equal(tl_vkey_parse(&lvk, a->vkey, strlen(a->vkey)), 0);
	assert_int_equal(tl_note_verify(&n, &lvk), 0);
	assert_int_equal(tl_cosig_verify(&n, &x->wvk, &ct), 0);
	assert_int_equal(ct, t);
	tl_note_release(&n);
	/* The unescaped path works too. */
	assert_int_equal(get(x->addr, "/latest/tally.v1/aa/bb", &r), 200);
	assert_int_equal(get(x->addr, "/latest/tally.v1%2Fzz", &r), 404);

	/* The CLI reads the same state, also while the witness runs. */
	const char *l[] = {"tally", "--json", "witness", "list", NULL};
	assert_int_equal(tally(x, &tr, l), 0);
	json_t *j = json_loads(tr.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 1);
	json_t *o = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(o, "origin")), a->origin);
	assert_int_equal(json_integer_value(json_object_get(o, "size")), 21);
	assert_int_equal(json_integer_value(json_object_get(o, "time")), (json_int_t)t);
	json_decref(j);
	const char *lg[] = {"tally", "--json", "witness", "log", a->origin, NULL};
	assert_int_equal(tally(x, &tr, lg), 0);
	j = json_loads(tr.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(j), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "size")), 10);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 1), "size")), 21);
	json_decref(j);
	th_run_free(&tr);
	/* SIGKILL: nothing answered 200 is lost (it was committed first). */
	grow_ok(x, a, 21, 22, 0);
	assert_true(stop_witness(x, SIGKILL) != 0);
	start_witness(x, NULL, NULL);
	assert_int_equal(probe_size(x, a, 30), 22);
}

/* Two clients race on one origin: no roll-back, every 200 chains. */
struct racer {
	struct fx *x;
	struct tlog *l;
	unsigned seed;
	int rounds;
	uint64_t ok_old[400], ok_size[400];
	int nok;
	int errors;
	char err[256];
};

static void *race(void *arg)
{
	struct racer *rc = arg;
	CURL *h = curl_easy_init();
	struct tl_buf body;
	struct resp r;
	uint64_t known = 0;
	tl_buf_init(&body, 1 << 17);
	for (int i = 0; i < rc->rounds && known < NLEAVES - 4; i++) {
		uint64_t size = known + 1 + (uint64_t)(rand_r(&rc->seed) % 3);
		tl_buf_reset(&body);
		body_grow(rc->l, known, size, &body);
		if (http_do(h, rc->x->addr, "/add-checkpoint", body.data, body.len, &r) != 0) {
			rc->errors++;
			continue;
		}
		if (r.code == 200) {
			if (rc->nok < 400) {
				rc->ok_old[rc->nok] = known;
				rc->ok_size[rc->nok] = size;
				rc->nok++;
			}
			known = size;
		} else if (r.code == 409) {
			if (tl_parse_u64(r.body, r.len ? r.len - 1 : 0, &known) != 0) {
				snprintf(rc->err, sizeof rc->err, "bad 409 body '%.200s'", r.body);
				rc->errors++;
				break;
			}
		} else {
			snprintf(rc->err, sizeof rc->err, "unexpected %ld: %.200s", r.code, r.body);
			rc->errors++;
			break;
		}
	}
	tl_buf_release(&body);
	curl_easy_cleanup(h);
	return NULL;
}

static void test_concurrent_no_rollback(void **state)
{
	struct fx *x = *state;
	struct tlog *a = &x->logs[0];
	struct racer rs[2];
	pthread_t th[2];

	tlog_init(a, "example.test/raced");
	allow(x, a->origin, a->vkey);
	start_witness(x, NULL, NULL);
	for (int i = 0; i < 2; i++) {
		memset(&rs[i], 0, sizeof rs[i]);
		rs[i].x = x;
		rs[i].l = a;
		rs[i].seed = 1234u + (unsigned)i;
		rs[i].rounds = 150;
		assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	uint64_t max = 0;
	int total = 0;
	/* Every success chains from the previous one: sorted by old size, each
	 * old is the size before it (a roll-back would repeat an old size). */
	uint64_t olds[800], sizes[800];
	for (int i = 0; i < 2; i++) {
		if (rs[i].errors)
			fail_msg("racer %d: %s", i, rs[i].err);
		for (int k = 0; k < rs[i].nok; k++) {
			olds[total] = rs[i].ok_old[k];
			sizes[total] = rs[i].ok_size[k];
			if (sizes[total] > max)
				max = sizes[total];
			total++;
		}
	}
	assert_true(rs[0].nok > 0 && rs[1].nok > 0); /* both won some */
	for (int i = 0; i < total; i++)              /* selection sort by old */
		for (int k = i + 1; k < total; k++)
			if (olds[k] < olds[i]) {
				uint64_t t = olds[i];
				olds[i] = olds[k];
				olds[k] = t;
				t = sizes[i];
				sizes[i] = sizes[k];
				sizes[k] = t;
			}
	uint64_t at = 0;
	for (int i = 0; i < total; i++) {
		if (olds[i] != at)
			fail_msg("success %d: old %llu but the cosigned size was %llu", i,
			         (unsigned long long)olds[i], (unsigned long long)at);
		assert_true(sizes[i] > olds[i]);
		at = sizes[i];
	}
	assert_int_equal(at, max);
	assert_int_equal(probe_size(x, a, max + 1), max);
}

/* SIGTERM while requests are in flight (docs/witness.md: "answer every
 * request already queued for the writer"): after the stop and a restart,
 * each log's stored size is the last size its client saw acknowledged — no
 * state was committed whose 200 was then dropped by the closing server. */
struct grower {
	struct fx *x;
	struct tlog *l;
	uint64_t acked;
};

static void *grow_until_refused(void *arg)
{
	struct grower *g = arg;
	CURL *h = curl_easy_init();
	struct tl_buf body;
	struct resp r;
	tl_buf_init(&body, 1 << 17);
	while (h && g->acked < NLEAVES - 1) {
		tl_buf_reset(&body);
		body_grow(g->l, g->acked, g->acked + 1, &body);
		if (http_do(h, g->x->addr, "/add-checkpoint", body.data, body.len, &r) != 0 ||
		    r.code != 200)
			break;
		g->acked++;
	}
	tl_buf_release(&body);
	curl_easy_cleanup(h);
	return NULL;
}

static void test_shutdown_answers(void **state)
{
	struct fx *x = *state;
	struct grower g[MAX_LOGS];
	pthread_t th[MAX_LOGS];
	for (int i = 0; i < MAX_LOGS; i++) {
		char origin[64];
		snprintf(origin, sizeof origin, "example.test/stop-%d", i);
		tlog_init(&x->logs[i], origin);
		allow(x, origin, x->logs[i].vkey);
	}
	start_witness(x, NULL, NULL);
	for (int i = 0; i < MAX_LOGS; i++) {
		grow_ok(x, &x->logs[i], 0, 1, 0);
		g[i] = (struct grower){x, &x->logs[i], 1};
	}
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < MAX_LOGS; i++)
			assert_int_equal(pthread_create(&th[i], NULL, grow_until_refused, &g[i]),
			                 0);
		th_nap(150 + 50 * (unsigned)round);
		int st = stop_witness(x, SIGTERM);
		if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("the witness did not stop cleanly (status %d); log:\n%s", st,
			         th_file_tail(x->log));
		for (int i = 0; i < MAX_LOGS; i++)
			pthread_join(th[i], NULL);
		start_witness(x, NULL, NULL);
		for (int i = 0; i < MAX_LOGS; i++) {
			uint64_t stored = probe_size(x, &x->logs[i], NLEAVES - 1);
			if (stored != g[i].acked)
				fail_msg("round %d, log %d: stored size %llu, last acknowledged "
				         "%llu",
				         round, i, (unsigned long long)stored,
				         (unsigned long long)g[i].acked);
		}
	}
}

/* A log allowed while the witness runs is witnessed at once; deny stops it. */
static void test_allow_while_running(void **state)
{
	struct fx *x = *state;
	struct tlog *a = &x->logs[0];
	struct tl_buf body;
	struct th_run r = {0};
	tlog_init(a, "example.test/late");
	start_witness(x, NULL, NULL);
	tl_buf_init(&body, 1 << 17);
	body_grow(a, 0, 2, &body);
	expect(x, "before allow", &body, 404);
	allow(x, a->origin, a->vkey);
	expect(x, "after allow", &body, 200);
	/* Repeating the same key is harmless; a second key adds up. */
	allow(x, a->origin, a->vkey);
	const char *d[] = {"tally", "witness", "deny", a->origin, NULL};
	assert_int_equal(tally(x, &r, d), 0);
	tl_buf_reset(&body);
	body_grow(a, 2, 3, &body);
	expect(x, "after deny", &body, 404);
	assert_int_equal(tally(x, &r, d), 1); /* not registered any more */
	/* Re-allowing continues from the kept state: no roll-back to 0. */
	allow(x, a->origin, a->vkey);
	assert_int_equal(probe_size(x, a, 3), 2);
	expect(x, "re-allowed", &body, 200);
	th_run_free(&r);
	tl_buf_release(&body);
}

/* The clock offset moves the cosignature time. */
static void test_clock_offset(void **state)
{
	struct fx *x = *state;
	struct tlog *a = &x->logs[0];
	tlog_init(a, "example.test/clock");
	allow(x, a->origin, a->vkey);
	start_witness(x, "--clock-offset", "-86400");
	grow_ok(x, a, 0, 1, -86400);
	restart_clean(x, "--clock-offset", "3600");
	grow_ok(x, a, 1, 2, 3600);
	restart_clean(x, NULL, NULL);
	grow_ok(x, a, 2, 3, 0);
}

static int raw_exchange(const char *addr, const void *data, size_t len, char *out, size_t cap)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *colon = strrchr(addr, ':');
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
	(void)w;
	shutdown(fd, SHUT_WR);
	size_t got = 0;
	struct pollfd p = {fd, POLLIN, 0};
	while (got + 1 < cap && poll(&p, 1, 10000) > 0) {
		ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = 0;
	close(fd);
	return (int)got;
}

/* Oversized and garbage input is refused and the witness keeps serving. */
static void test_hostile_input(void **state)
{
	struct fx *x = *state;
	struct tlog *a = &x->logs[0];
	struct resp r;
	char out[4096];
	tlog_init(a, "example.test/hostile");
	allow(x, a->origin, a->vkey);
	start_witness(x, NULL, NULL);

	/* A body over the cap: announced (refused before it is read) ... */
	size_t big = 200000;
	char *junk = malloc(big + 1);
	assert_non_null(junk);
	memset(junk, 'A', big);
	junk[big] = 0;
	assert_int_equal(post_raw(x->addr, junk, &r), 400);
	assert_non_null(strstr(r.body, "larger than 65536"));
	/* ... and chunked (read to the end, nothing kept). */
	{
		CURL *h = curl_easy_init();
		struct curl_slist *hd = curl_slist_append(NULL, "Transfer-Encoding: chunked");
		char url[128];
		snprintf(url, sizeof url, "http://%s/add-checkpoint", x->addr);
		memset(&r, 0, sizeof r);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, junk);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
		assert_int_equal(curl_easy_perform(h), CURLE_OK);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.code);
		assert_int_equal(r.code, 400);
		curl_slist_free_all(hd);
		curl_easy_cleanup(h);
	}
	/* Exactly at the cap is still parsed (and refused for its content). */
	memcpy(junk, "old 0\n\n", 7);
	junk[65536] = 0;
	assert_int_equal(post_raw(x->addr, junk, &r), 400);
	assert_null(strstr(r.body, "larger than"));
	free(junk);

	/* Binary garbage in the body and as the whole request. */
	uint8_t bin[3000];
	for (size_t i = 0; i < sizeof bin; i++)
		bin[i] = (uint8_t)(i * 131 + 7);
	{
		struct tl_buf b;
		tl_buf_init(&b, sizeof bin);
		assert_int_equal(tl_buf_add(&b, bin, sizeof bin), 0);
		assert_int_equal(post(x->addr, &b, &r), 400);
		tl_buf_release(&b);
	}
	raw_exchange(x->addr, bin, sizeof bin, out, sizeof out);
	static const char nonsense[] = "POST /add-checkpoint HTTP/1.1\r\nHost: x\r\n"
	                               "Content-Length: -5\r\n\r\nold 0\n";
	raw_exchange(x->addr, nonsense, sizeof nonsense - 1, out, sizeof out);
	assert_null(strstr(out, " 200 "));
	static const char nul[] = "GET /latest/a%00b HTTP/1.1\r\nHost: x\r\n\r\n";
	raw_exchange(x->addr, nul, sizeof nul - 1, out, sizeof out);
	assert_null(strstr(out, " 200 "));
	/* Still serving, and correctly. */
	grow_ok(x, a, 0, 3, 0);
	assert_int_equal(get(x->addr, "/status", &r), 200);
	assert_true(x->pid > 0 && waitpid(x->pid, NULL, WNOHANG) == 0);
}

/* One witness per home; the CLI's refusals. */
static void test_cli_and_lock(void **state)
{
	struct fx *x = *state;
	struct th_run r = {0};
	struct tlog *a = &x->logs[0];
	tlog_init(a, "example.test/cli");
	start_witness(x, NULL, NULL);

	/* A second server on the same home exits at once with a reason. */
	pid_t p2 = spawn_witness(x, NULL, NULL);
	int st = 0;
	uint64_t end = th_mono_ms() + 30000;
	while (waitpid(p2, &st, WNOHANG) != p2) {
		if (th_mono_ms() > end) {
			kill(p2, SIGKILL);
			waitpid(p2, &st, 0);
			fail_msg("a second witness on one home kept running");
		}
		th_nap(POLL_MS);
	}
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	char *text = th_read_file(x->log, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, "another witness is running"));
	free(text);

	const char *vk[] = {"tally", "witness", "vkey", NULL};
	assert_int_equal(tally(x, &r, vk), 0);
	th_chomp(r.out);
	assert_string_equal(r.out, x->vkey);
	const char *init2[] = {"tally", "witness", "init", "--name", "other.name", NULL};
	assert_int_equal(tally(x, &r, init2), 1);
	const char *badname[] = {"tally", "--home", "/nonexistent-h1/x", "witness",
	                         "init",  "--name", "has space",         NULL};
	assert_int_equal(tally(x, &r, badname), 2);
	/* A cosigner key, a damaged key id, garbage: usage errors. */
	const char *cosig[] = {"tally", "witness", "allow", "o", x->vkey, NULL};
	assert_int_equal(tally(x, &r, cosig), 2);
	char damaged[600];
	snprintf(damaged, sizeof damaged, "%s", a->vkey);
	char *plus = strchr(damaged, '+');
	plus[1] = plus[1] == '0' ? '1' : '0';
	const char *dk[] = {"tally", "witness", "allow", a->origin, damaged, NULL};
	assert_int_equal(tally(x, &r, dk), 2);
	const char *gk[] = {"tally", "witness", "allow", a->origin, "nonsense", NULL};
	assert_int_equal(tally(x, &r, gk), 2);
	const char *deny[] = {"tally", "witness", "deny", "never.registered", NULL};
	assert_int_equal(tally(x, &r, deny), 1);
	const char *logu[] = {"tally", "witness", "log", "never.registered", NULL};
	assert_int_equal(tally(x, &r, logu), 1);
	const char *sub[] = {"tally", "witness", "frobnicate", NULL};
	assert_int_equal(tally(x, &r, sub), 2);
	const char *nohome[] = {"tally", "--home", "/nonexistent-h1/x", "witness", "list", NULL};
	assert_int_equal(tally(x, &r, nohome), 3);

	/* The vkey that 'tally feed vkey' prints is accepted as is. */
	char nhome[4200], henv[4300];
	snprintf(nhome, sizeof nhome, "%s/node", x->dir);
	snprintf(henv, sizeof henv, "TALLY_HOME=%s", nhome);
	static char pass_env[] = "TALLY_PASSPHRASE=" PASS;
	const char *env[] = {henv, pass_env, NULL};
	const char *ini[] = {"tally", "init", "--book", "acme", NULL};
	th_run_free(&r);
	assert_int_equal(th_run(&r, ini, env, NULL, 0, 120), 0);
	assert_int_equal(r.status, 0);
	th_run_free(&r);
	const char *fnew[] = {"tally",
	                      "feed",
	                      "new",
	                      "--book",
	                      "acme",
	                      "--peer",
	                      "0101010101010101010101010101010101010101010101010101010101010101",
	                      NULL};
	assert_int_equal(th_run(&r, fnew, env, NULL, 0, 120), 0);
	if (r.status != 0)
		fail_msg("feed new: %s", r.err);
	char origin[300];
	th_chomp(r.out);
	snprintf(origin, sizeof origin, "%s", r.out);
	th_run_free(&r);
	const char *fvk[] = {"tally", "feed", "vkey", origin, NULL};
	assert_int_equal(th_run(&r, fvk, env, NULL, 0, 120), 0);
	assert_int_equal(r.status, 0);
	char fvkey[600];
	th_chomp(r.out);
	snprintf(fvkey, sizeof fvkey, "%s", r.out);
	th_run_free(&r);
	allow(x, origin, fvkey);
	const char *ls[] = {"tally", "witness", "list", NULL};
	assert_int_equal(tally(x, &r, ls), 0);
	assert_non_null(strstr(r.out, origin));
	th_run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_status_codes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_restart_keeps_state, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_concurrent_no_rollback, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_shutdown_answers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_allow_while_running, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_clock_offset, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hostile_input, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cli_and_lock, setup, teardown),
	};
	if (tl_init() != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return 1;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
