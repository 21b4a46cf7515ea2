/*
 * bench_witness.c — add-checkpoint throughput of `tallyd --witness` with
 * persistence (every 200 is in a committed, fsynced LMDB transaction), and
 * its latency (p50, p99), on loopback.
 *
 * It registers 64 logs in a fresh witness home (through the witness store
 * API), starts the real build/tallyd (found next to this program's
 * directory, build/bench/..), and runs concurrent keep-alive clients
 * (threads with one libcurl easy handle each) that submit growing
 * checkpoints with real RFC 6962 consistency proofs, signed by each log's
 * key. Request bodies are made before the clock starts.
 *
 * Usage: bench_witness [DIR] [--quick]   (DIR: scratch directory; a
 * "witness" directory is made in it and removed after)
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto/tl_crypto.h"
#include "node/witness.h"

#define PASSPHRASE "bench-witness-passphrase"
#define NLOGS      64
#define NLEAVES    8192

static char g_dir[PATH_MAX / 2], g_tally[PATH_MAX + 16], g_tallyd[PATH_MAX + 16];
static pid_t g_pid;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void stop_witness(void)
{
	int st;
	if (g_pid <= 0)
		return;
	kill(g_pid, SIGTERM);
	double end = now() + 15;
	while (waitpid(g_pid, &st, WNOHANG) != g_pid) {
		if (now() > end) {
			kill(g_pid, SIGKILL);
			waitpid(g_pid, &st, 0);
			break;
		}
		usleep(10000);
	}
	g_pid = 0;
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 32];
	stop_witness();
	if (g_dir[0] && !getenv("BENCH_KEEP")) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_witness: could not remove %s\n", g_dir);
	}
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "bench_witness: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

static void on_signal(int sig)
{
	if (g_pid > 0) {
		kill(g_pid, SIGTERM);
		waitpid(g_pid, NULL, 0);
	}
	_exit(128 + sig);
}

/* ------------------------------------------------------------- logs */

struct blog {
	char origin[64];
	struct tl_keypair kp;
	struct tl_merkle_mem mem;
	/* prepared requests */
	char **bodies;
	size_t *lens;
	int nreq, next;
};

static void blog_prepare(struct blog *l, int i, int nreq, unsigned *seed)
{
	uint8_t(*leaves)[TL_HASH_LEN] = malloc((size_t)NLEAVES * TL_HASH_LEN);
	uint8_t proof[TL_MERKLE_MAX_PROOF][TL_HASH_LEN];
	struct tl_checkpoint cp;
	struct tl_buf text, note, body;
	char b64[64];
	if (!leaves)
		die("out of memory");
	snprintf(l->origin, sizeof l->origin, "bench.test/log-%02d", i);
	if (tl_key_generate(&l->kp) != 0)
		die("key generation failed");
	for (int k = 0; k < NLEAVES; k++) {
		char d[96];
		int n = snprintf(d, sizeof d, "%s %d", l->origin, k);
		tl_merkle_leaf_hash(leaves[k], (const uint8_t *)d, (size_t)n);
	}
	if (tl_merkle_mem_build(&l->mem, (const uint8_t(*)[TL_HASH_LEN])leaves, NLEAVES) != 0)
		die("out of memory");
	free(leaves);
	struct tl_merkle_src src = tl_merkle_mem_src(&l->mem);
	l->bodies = calloc((size_t)nreq, sizeof *l->bodies);
	l->lens = calloc((size_t)nreq, sizeof *l->lens);
	if (!l->bodies || !l->lens)
		die("out of memory");
	uint64_t old = 0;
	tl_buf_init(&text, 4096);
	tl_buf_init(&note, 4096);
	tl_buf_init(&body, 16384);
	for (int r = 0; r < nreq; r++) {
		uint64_t size = old + 1 + (uint64_t)(rand_r(seed) % 4);
		size_t n = 0;
		if (size > NLEAVES)
			die("too many requests per log for %d leaves", NLEAVES);
		memset(&cp, 0, sizeof cp);
		snprintf(cp.origin, sizeof cp.origin, "%s", l->origin);
		cp.size = size;
		tl_buf_reset(&text);
		tl_buf_reset(&note);
		tl_buf_reset(&body);
		if (tl_merkle_root(&src, size, cp.root) != 0 ||
		    (old && tl_merkle_consistency_proof(&src, old, size, proof, TL_MERKLE_MAX_PROOF,
		                                        &n) != 0) ||
		    tl_checkpoint_format(&cp, &text) != 0 ||
		    tl_note_sign(&note, (const char *)text.data, text.len, l->origin, &l->kp) != 0 ||
		    tl_buf_printf(&body, "old %llu\n", (unsigned long long)old) != 0)
			die("cannot build a request");
		for (size_t k = 0; k < n; k++) {
			tl_b64_encode(b64, proof[k], TL_HASH_LEN);
			if (tl_buf_printf(&body, "%s\n", b64) != 0)
				die("cannot build a request");
		}
		if (tl_buf_addc(&body, '\n') != 0 || tl_buf_add(&body, note.data, note.len) != 0)
			die("cannot build a request");
		l->bodies[r] = malloc(body.len);
		if (!l->bodies[r])
			die("out of memory");
		memcpy(l->bodies[r], body.data, body.len);
		l->lens[r] = body.len;
		old = size;
	}
	l->nreq = nreq;
	tl_buf_release(&text);
	tl_buf_release(&note);
	tl_buf_release(&body);
	tl_merkle_mem_release(&l->mem);
}

/* ----------------------------------------------------------- clients */

struct client {
	pthread_t th;
	int id, nclients;
	struct blog *logs;
	const char *addr;
	double *lat; /* seconds, one per request */
	size_t nlat, cap;
	long errors;
	char err[256];
};

static size_t discard(char *p, size_t sz, size_t nm, void *ctx)
{
	(void)p;
	(void)ctx;
	return sz * nm;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	char url[128];
	CURL *h = curl_easy_init();
	struct curl_slist *hd = curl_slist_append(NULL, "Expect:");
	if (!h)
		return NULL;
	snprintf(url, sizeof url, "http://%s/add-checkpoint", c->addr);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	/* Round robin over this client's logs, each in order. */
	for (int more = 1; more;) {
		more = 0;
		for (int i = c->id; i < NLOGS; i += c->nclients) {
			struct blog *l = &c->logs[i];
			if (l->next >= l->nreq)
				continue;
			more = 1;
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, l->bodies[l->next]);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)l->lens[l->next]);
			double t0 = now();
			CURLcode rc = curl_easy_perform(h);
			long code = 0;
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
			if (rc != CURLE_OK || code != 200) {
				if (!c->errors)
					snprintf(c->err, sizeof c->err, "%s request %d: %s %ld", l->origin,
					         l->next, curl_easy_strerror(rc), code);
				c->errors++;
				l->next = l->nreq; /* the chain is broken: stop this log */
				continue;
			}
			if (c->nlat < c->cap)
				c->lat[c->nlat++] = now() - t0;
			l->next++;
		}
	}
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------- setup */

static void find_binaries(const char *argv0)
{
	char self[PATH_MAX], *slash;
	if (!realpath(argv0, self)) {
		ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
		if (l <= 0)
			die("cannot locate this program (%s)", argv0);
		self[l] = 0;
	}
	if ((slash = strrchr(self, '/')) != NULL)
		*slash = 0;
	snprintf(g_tally, sizeof g_tally, "%s/../tally", self);
	snprintf(g_tallyd, sizeof g_tallyd, "%s/../tallyd", self);
	if (access(g_tally, X_OK) != 0 || access(g_tallyd, X_OK) != 0)
		die("%s and %s must exist: run make first", g_tally, g_tallyd);
}

static int run_wait(char *const argv[], const char *out_path)
{
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void start_witness(const char *home, const char *log, char *addr, size_t cap)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/witness.addr", home);
	g_pid = fork();
	if (g_pid < 0)
		die("fork: %s", strerror(errno));
	if (g_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execl(g_tallyd, "tallyd", "--witness", "--home", home, "--listen", "127.0.0.1:0",
		      "--log", "warn", (char *)NULL);
		_exit(127);
	}
	double end = now() + 15;
	for (;;) {
		FILE *f = fopen(path, "r");
		if (f) {
			char line[128] = "";
			int ok = fgets(line, sizeof line, f) != NULL && strchr(line, '\n');
			fclose(f);
			if (ok) {
				line[strcspn(line, "\n")] = 0;
				snprintf(addr, cap, "%s", line);
				return;
			}
		}
		int st;
		if (waitpid(g_pid, &st, WNOHANG) == g_pid) {
			g_pid = 0;
			die("tallyd --witness exited at start (see %s)", log);
		}
		if (now() > end)
			die("tallyd --witness wrote no witness.addr within 15 s (see %s)", log);
		usleep(10000);
	}
}

/* "commits N" from /status: write transactions so far. */
static long status_commits(const char *addr)
{
	char url[128], buf[4096] = "";
	FILE *mem = fmemopen(buf, sizeof buf - 1, "w");
	CURL *h = curl_easy_init();
	long n = -1;
	if (!mem || !h)
		return -1;
	snprintf(url, sizeof url, "http://%s/status", addr);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
	if (curl_easy_perform(h) == CURLE_OK) {
		fflush(mem);
		const char *p = strstr(buf, "\ncommits ");
		if (p)
			n = strtol(p + 9, NULL, 10);
	}
	fclose(mem);
	curl_easy_cleanup(h);
	return n;
}

int main(int argc, char **argv)
{
	int quick = 0;
	const char *dir = NULL;
	char home[PATH_MAX + 16], log[PATH_MAX + 32], out[PATH_MAX + 32], err[512], addr[128];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
		else
			dir = argv[i];
	}
	find_binaries(argv[0]);
	if (tl_init() != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		die("cannot initialise libsodium / libcurl");
	const char *base = dir ? dir : "/tmp/tally-bench";
	mkdir(base, 0700);
	snprintf(g_dir, sizeof g_dir, "%s/witness", base);
	cleanup();
	if (mkdir(g_dir, 0700) != 0)
		die("mkdir %s: %s", g_dir, strerror(errno));
	setenv("TALLY_PASSPHRASE", PASSPHRASE, 1);
	unsetenv("TALLY_HOME");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	int per_log = quick ? 40 : 400, nclients = quick ? 16 : 32;
	const char *e = getenv("BENCH_WITNESS_CLIENTS");
	if (e && atoi(e) > 0 && atoi(e) <= NLOGS)
		nclients = atoi(e);

	snprintf(home, sizeof home, "%s/home", g_dir);
	snprintf(log, sizeof log, "%s/tallyd.log", g_dir);
	snprintf(out, sizeof out, "%s/init.out", g_dir);
	char *init[] = {g_tally, "--home", home, "witness", "init", "--name", "bench.test/witness",
	                NULL};
	if (run_wait(init, out) != 0)
		die("tally witness init failed (see %s)", out);

	/* The logs: keys, registration, and every request body. */
	double t0 = now();
	struct blog *logs = calloc(NLOGS, sizeof *logs);
	struct tl_wstore *st;
	unsigned seed = 42;
	if (!logs)
		die("out of memory");
	if (tl_wstore_open(&st, home, 0, err, sizeof err) != 0)
		die("%s", err);
	for (int i = 0; i < NLOGS; i++) {
		struct tl_vkey vk;
		blog_prepare(&logs[i], i, per_log, &seed);
		if (tl_vkey_from_pub(&vk, logs[i].origin, TL_SIGTYPE_ED25519, logs[i].kp.pk) != 0 ||
		    tl_wstore_allow(st, logs[i].origin, &vk) != 0)
			die("cannot register %s: %s", logs[i].origin, tl_wstore_errmsg(st));
	}
	tl_wstore_close(st);
	double prep = now() - t0;

	start_witness(home, log, addr, sizeof addr);
	struct client *cs = calloc((size_t)nclients, sizeof *cs);
	if (!cs)
		die("out of memory");
	long commits0 = status_commits(addr);
	double start = now();
	for (int i = 0; i < nclients; i++) {
		cs[i].id = i;
		cs[i].nclients = nclients;
		cs[i].logs = logs;
		cs[i].addr = addr;
		cs[i].cap = (size_t)per_log * NLOGS;
		cs[i].lat = malloc(cs[i].cap * sizeof *cs[i].lat);
		if (!cs[i].lat || pthread_create(&cs[i].th, NULL, client_main, &cs[i]) != 0)
			die("cannot start client %d", i);
	}
	for (int i = 0; i < nclients; i++)
		pthread_join(cs[i].th, NULL);
	double wall = now() - start;
	long commits1 = status_commits(addr);

	size_t total = 0;
	long errors = 0;
	for (int i = 0; i < nclients; i++) {
		total += cs[i].nlat;
		errors += cs[i].errors;
		if (cs[i].errors)
			fprintf(stderr, "bench_witness: client %d: %ld errors, first: %s\n", i,
			        cs[i].errors, cs[i].err);
	}
	double *all = malloc((total ? total : 1) * sizeof *all);
	if (!all)
		die("out of memory");
	size_t k = 0;
	for (int i = 0; i < nclients; i++) {
		memcpy(all + k, cs[i].lat, cs[i].nlat * sizeof *all);
		k += cs[i].nlat;
	}
	qsort(all, total, sizeof *all, cmp_double);
	double p50 = total ? all[total / 2] : 0, p99 = total ? all[(size_t)((double)total * 0.99)] : 0;
	long commits = commits0 >= 0 && commits1 >= 0 ? commits1 - commits0 : -1;

	printf("witness.add_checkpoint %8.0f req/s  200s with fsynced state, %d logs, %d keep-alive "
	       "clients, %zu requests in %.2f s   goal >= 2000\n",
	       (double)total / wall, NLOGS, nclients, total, wall);
	printf("witness.latency_p50    %8.2f ms\n", p50 * 1000);
	printf("witness.latency_p99    %8.2f ms\n", p99 * 1000);
	if (commits > 0)
		printf("witness.group_commit   %8.1f requests per LMDB commit (%ld commits)\n",
		       (double)total / (double)commits, commits);
	printf("witness.errors         %8ld non-200 answers or transport errors   goal 0\n", errors);
	printf("witness.setup          %8.1f s to make %d signed requests with proofs\n", prep,
	       per_log * NLOGS);
	fflush(stdout);

	for (int i = 0; i < nclients; i++)
		free(cs[i].lat);
	free(cs);
	free(all);
	for (int i = 0; i < NLOGS; i++) {
		for (int r = 0; r < logs[i].nreq; r++)
			free(logs[i].bodies[r]);
		free(logs[i].bodies);
		free(logs[i].lens);
		tl_key_wipe(&logs[i].kp);
	}
	free(logs);
	cleanup();
	curl_global_cleanup();
	return errors ? 1 : 0;
}
