/*
 * bench_blob.c — voucher transfer between two tallyd processes on loopback:
 * a blob stored at the customer's node is fetched by the supplier's node
 * (`tally blob get`, chunked pull inside the encrypted session, SHA-256
 * checked, fsynced), in MB/s end to end; and a local `tally blob put` and
 * `tally blob get` (hash while copying, fsync, rename) for comparison.
 *
 * Runs the real binaries next to this program's directory (BUILD/bench/..).
 * Usage: bench_blob [DIR] [--quick]   (DIR: scratch directory, removed after)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define PASSPHRASE "bench-blob-passphrase"

static char g_base[PATH_MAX / 2], g_tally[PATH_MAX + 16], g_tallyd[PATH_MAX + 16];
static pid_t g_pids[2];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cleanup(void)
{
	for (int i = 0; i < 2; i++)
		if (g_pids[i] > 0) {
			int st;
			kill(g_pids[i], SIGTERM);
			waitpid(g_pids[i], &st, 0);
			g_pids[i] = 0;
		}
	if (g_base[0] && !getenv("BENCH_KEEP")) {
		char cmd[PATH_MAX];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_base);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_blob: could not remove %s\n", g_base);
	}
}

static void die(const char *what)
{
	fprintf(stderr, "bench_blob: %s\n", what);
	cleanup();
	exit(1);
}

/* Runs tally with --home home and the given argument string; stdout of the
 * command's first line into out (may be NULL). */
static int tally(const char *home, const char *args, char *out, size_t cap)
{
	char cmd[PATH_MAX * 6];
	snprintf(cmd, sizeof cmd, "'%s' --home '%s' %s 2>>'%s/cli.err'", g_tally, home, args,
	         g_base);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	char line[4096] = "";
	if (!fgets(line, sizeof line, p))
		line[0] = 0;
	char rest[4096];
	while (fgets(rest, sizeof rest, p))
		;
	int st = pclose(p);
	line[strcspn(line, "\n")] = 0;
	if (out)
		snprintf(out, cap, "%s", line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void start(int i, const char *home, char *addr, size_t cap)
{
	char path[PATH_MAX], log[PATH_MAX];
	snprintf(path, sizeof path, "%s/tallyd.addr", home);
	snprintf(log, sizeof log, "%s.log", home);
	pid_t pid = fork();
	if (pid < 0)
		die("fork failed");
	if (pid == 0) {
		if (!freopen(log, "a", stderr) || !freopen("/dev/null", "w", stdout))
			_exit(126);
		execl(g_tallyd, "tallyd", "--home", home, "--listen", "127.0.0.1:0", "--log",
		      "warn", (char *)NULL);
		_exit(127);
	}
	g_pids[i] = pid;
	double end = now() + 20;
	for (;;) {
		FILE *f = fopen(path, "r");
		if (f) {
			char line[128] = "";
			int ok = fgets(line, sizeof line, f) && strchr(line, '\n');
			fclose(f);
			if (ok) {
				line[strcspn(line, "\n")] = 0;
				snprintf(addr, cap, "%s", line);
				return;
			}
		}
		if (now() > end)
			die("tallyd did not start");
		usleep(10000);
	}
}

static void write_random(const char *path, size_t n, char hex[65])
{
	uint8_t *d = malloc(n), h[32];
	if (!d)
		die("out of memory");
	randombytes_buf(d, n);
	crypto_hash_sha256(h, d, n);
	sodium_bin2hex(hex, 65, h, 32);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0)
		die("cannot write the test file");
	free(d);
}

int main(int argc, char **argv)
{
	int quick = 0;
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
		else
			dir = argv[i];
	}
	if (sodium_init() < 0)
		return 1;
	char self[PATH_MAX];
	snprintf(self, sizeof self, "%s", argv[0]);
	char *sl = strrchr(self, '/');
	if (sl)
		*sl = 0;
	else
		snprintf(self, sizeof self, ".");
	snprintf(g_tally, sizeof g_tally, "%s/../tally", self);
	snprintf(g_tallyd, sizeof g_tallyd, "%s/../tallyd", self);
	snprintf(g_base, sizeof g_base, "%s-blob", dir ? dir : "/tmp/tally-bench");
	cleanup();
	if (mkdir(g_base, 0700) != 0 && errno != EEXIST)
		die("cannot create the scratch directory");
	setenv("TALLY_PASSPHRASE", PASSPHRASE, 1);
	unsetenv("TALLY_HOME");
	signal(SIGPIPE, SIG_IGN);

	char sup[PATH_MAX], cus[PATH_MAX], spk[80], cpk[80], sa[64], ca[64];
	char args[PATH_MAX * 3], sorig[256], corig[256], hex[65], file[PATH_MAX], out[PATH_MAX];
	snprintf(sup, sizeof sup, "%s/sup", g_base);
	snprintf(cus, sizeof cus, "%s/cus", g_base);
	if (tally(sup, "init --book sup", spk, sizeof spk) != 0 ||
	    tally(cus, "init --book cus", cpk, sizeof cpk) != 0)
		die("tally init failed");
	start(0, sup, sa, sizeof sa);
	start(1, cus, ca, sizeof ca);
	snprintf(args, sizeof args, "channel open --book sup --peer %s@%s", cpk, ca);
	if (tally(sup, args, sorig, sizeof sorig) != 0)
		die("channel open failed");
	snprintf(args, sizeof args, "channel open --book cus --peer %s@%s", spk, sa);
	if (tally(cus, args, corig, sizeof corig) != 0)
		die("channel open failed");

	size_t n = quick ? 4000000 : 19000000;
	int rounds = quick ? 1 : 3;
	double best = 0, put_s = 0, get_s = 0;
	for (int r = 0; r < rounds; r++) {
		char line[256];
		snprintf(file, sizeof file, "%s/voucher-%d.pdf", g_base, r);
		write_random(file, n, hex);
		double t0 = now();
		snprintf(args, sizeof args, "blob put '%s'", file);
		if (tally(cus, args, line, sizeof line) != 0 || strcmp(line, hex) != 0)
			die("blob put failed");
		put_s = now() - t0;
		snprintf(args, sizeof args,
		         "feed append %s --kind x.blobref --body '{\"blobs\":[\"%s\"]}'", corig,
		         hex);
		if (tally(cus, args, NULL, 0) != 0)
			die("feed append failed");
		/* Wait until the reference reached the supplier's node. */
		double end = now() + 30;
		for (;;) {
			char big[PATH_MAX * 3];
			snprintf(big, sizeof big,
			         "'%s' --home '%s' --json feed log %s | grep -q %s", g_tally, sup,
			         corig, hex);
			if (system(big) == 0)
				break;
			if (now() > end)
				die("the reference did not replicate");
			usleep(50000);
		}
		snprintf(out, sizeof out, "%s/out-%d.pdf", g_base, r);
		snprintf(args, sizeof args, "blob get %s -o '%s'", hex, out);
		t0 = now();
		if (tally(sup, args, NULL, 0) != 0)
			die("blob get failed (see cli.err)");
		double dt = now() - t0;
		if (dt > 0 && (double)n / dt > best)
			best = (double)n / dt;
		/* Local get of the now-stored blob. */
		snprintf(args, sizeof args, "blob get %s -o '%s.2'", hex, out);
		t0 = now();
		if (tally(sup, args, NULL, 0) != 0)
			die("local blob get failed");
		get_s = now() - t0;
	}
	printf("blob fetch between two nodes (%zu bytes, best of %d): %.1f MB/s\n", n, rounds,
	       best / 1e6);
	printf("blob put (local, hash + fsync): %.1f MB/s\n",
	       put_s > 0 ? (double)n / put_s / 1e6 : 0);
	printf("blob get (local, verify + copy + fsync): %.1f MB/s\n",
	       get_s > 0 ? (double)n / get_s / 1e6 : 0);
	cleanup();
	return 0;
}
