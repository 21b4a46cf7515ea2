/* harness.c — see harness.h. */
#define _GNU_SOURCE /* nftw */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

char *th_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

int th_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int rc = fwrite(data, 1, len, f) == len ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

char *th_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/tally-test-%s-XXXXXX", base ? base : "/tmp", tag);
	if (!mkdtemp(path))
		return NULL;
	return strdup(path);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void th_rmtree(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void th_tmpdir_done(char *dir)
{
	if (getenv("TALLY_TEST_KEEP"))
		fprintf(stderr, "kept %s\n", dir);
	else
		th_rmtree(dir);
	free(dir);
}

const char *th_file_tail(const char *path)
{
	static char tail[6000];
	size_t len = 0;
	char *text = th_read_file(path, &len);
	if (!text)
		return "(no log)";
	size_t from = len > sizeof tail - 1 ? len - (sizeof tail - 1) : 0;
	snprintf(tail, sizeof tail, "%s", text + from);
	free(text);
	return tail;
}

const char *th_tally(void)
{
	const char *t = getenv("TALLY_BIN");
	return t && *t ? t : "build/tally";
}

static int drain(int fd, char **buf, size_t *len, size_t *cap)
{
	if (*len + 4096 + 1 > *cap) {
		size_t ncap = (*cap ? *cap * 2 : 8192);
		while (ncap < *len + 4096 + 1)
			ncap *= 2;
		char *nb = realloc(*buf, ncap);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = ncap;
	}
	ssize_t r = read(fd, *buf + *len, 4096);
	if (r > 0)
		*len += (size_t)r;
	(*buf)[*len] = 0;
	return (int)r;
}

int th_run(struct th_run *r, const char *const *argv, const char *const *env, const void *in,
           size_t in_len, unsigned timeout_s)
{
	memset(r, 0, sizeof *r);
	int pin[2], pout[2], perr[2];
	if (pipe(pin) || pipe(pout) || pipe(perr))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		close(pin[0]);
		close(pin[1]);
		close(pout[0]);
		close(pout[1]);
		close(perr[0]);
		close(perr[1]);
		for (const char *const *e = env; e && *e; e++)
			putenv((char *)*e);
		const char *prog = strcmp(argv[0], "tally") == 0 ? th_tally() : argv[0];
		execvp(prog, (char *const *)argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	signal(SIGPIPE, SIG_IGN);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	const char *ip = in;
	size_t ioff = 0;
	if (!in || in_len == 0) {
		close(pin[1]);
		pin[1] = -1;
	}
	size_t ocap = 0, ecap = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int open_out = 1, open_err = 1, killed = 0;
	drain(-1, &r->out, &r->out_len, &ocap);
	drain(-1, &r->err, &r->err_len, &ecap);
	while (open_out || open_err) {
		struct pollfd p[3];
		int np = 0;
		p[np++] = (struct pollfd){.fd = open_out ? pout[0] : -1, .events = POLLIN};
		p[np++] = (struct pollfd){.fd = open_err ? perr[0] : -1, .events = POLLIN};
		p[np++] = (struct pollfd){.fd = pin[1], .events = POLLOUT};
		poll(p, (nfds_t)np, 100);
		if (p[0].revents && drain(pout[0], &r->out, &r->out_len, &ocap) <= 0)
			open_out = 0;
		if (p[1].revents && drain(perr[0], &r->err, &r->err_len, &ecap) <= 0)
			open_err = 0;
		if (pin[1] >= 0 && p[2].revents) {
			ssize_t w = write(pin[1], ip + ioff, in_len - ioff);
			if (w > 0)
				ioff += (size_t)w;
			if (w < 0 || ioff == in_len) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (!killed && timeout_s && (unsigned)(t.tv_sec - t0.tv_sec) >= timeout_s) {
			kill(pid, SIGKILL);
			killed = 1;
		}
	}
	if (pin[1] >= 0)
		close(pin[1]);
	close(pout[0]);
	close(perr[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

void th_run_free(struct th_run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

int th_tally_env(struct th_run *r, const char *const *env, const char *const *argv,
                 unsigned timeout_s)
{
	th_run_free(r);
	assert_int_equal(th_run(r, argv, env, NULL, 0, timeout_s), 0);
	return r->status;
}

void th_first_line(const struct th_run *r, const char *const *argv, char *out, size_t cap)
{
	if (r->status != 0)
		fprintf(stderr, "%s %s: exit %d: %s\n", argv[1], argv[1] && argv[2] ? argv[2] : "",
		        r->status, r->err);
	assert_int_equal(r->status, 0);
	size_t n = strcspn(r->out, "\n");
	assert_true(n < cap);
	memcpy(out, r->out, n);
	out[n] = 0;
}

long th_unhex(uint8_t *out, size_t cap, const char *hex)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return (long)(n / 2);
}
