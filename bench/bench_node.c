/*
 * bench_node.c — figures for tallyd: replication entries/s between two nodes
 * on loopback (verified and stored by the receiver), append-to-visible latency
 * at the peer (p50, p99), and the resident memory of a node holding many
 * channels. Prints one line per figure with its goal.
 *
 * It runs the real binaries: build/tally and build/tallyd, found next to this
 * program's directory (build/bench/..), and talks to the control sockets
 * (DIR/tallyd.sock, JSON lines) directly.
 *
 * Usage: bench_node [DIR] [--quick]   (DIR: scratch directory, removed after)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PASSPHRASE "bench-node-passphrase"
/* node/daemon.c reads a control request line into a buffer capped at
 * CTL_LINE_MAX (64 MiB) and reserves 64 KiB per read: stay clearly below. */
#define CTL_REQUEST_MAX ((size_t)(64u << 20) - (256u << 10))
#define START_TIMEOUT_S 15.0
#define STOP_TIMEOUT_S  15.0
#define CMD_TIMEOUT_S   120.0
#define MAX_CHILDREN    8

static char g_base[PATH_MAX / 2]; /* room for the names appended to it */
static char g_tally[PATH_MAX + 16], g_tallyd[PATH_MAX + 16];
static pid_t g_children[MAX_CHILDREN];
static int g_nchildren;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ cleanup */

static void rmrf(const char *dir)
{
	char cmd[PATH_MAX + 32];
	if (!dir[0])
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", dir);
}

static void child_forget(pid_t pid)
{
	for (int i = 0; i < g_nchildren; i++)
		if (g_children[i] == pid) {
			g_children[i] = g_children[--g_nchildren];
			return;
		}
}

/* SIGTERM, then up to timeout for it to exit, then SIGKILL. Returns the
 * wait status, or -1 if it had to be killed. */
static int child_stop(pid_t pid, double timeout)
{
	int st = 0;
	kill(pid, SIGTERM);
	double end = now() + timeout;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			break;
		if (now() > end) {
			fprintf(stderr, "bench: pid %d ignored SIGTERM for %.0f s: killing it\n",
			        (int)pid, timeout);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			st = -1;
			break;
		}
		usleep(10000);
	}
	child_forget(pid);
	return st;
}

static void cleanup(void)
{
	while (g_nchildren > 0)
		child_stop(g_children[g_nchildren - 1], STOP_TIMEOUT_S);
	if (!getenv("BENCH_KEEP"))
		rmrf(g_base);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "bench_node: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

static void on_signal(int sig)
{
	/* Only async-signal-safe calls: the scratch directory stays. */
	for (int i = 0; i < g_nchildren; i++)
		kill(g_children[i], SIGTERM);
	for (int i = 0; i < g_nchildren; i++)
		waitpid(g_children[i], NULL, 0);
	_exit(128 + sig);
}

/* Prints the tail of a log file (a node's or a command's stderr). */
static void show_log(const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	long skip = 0;
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	skip = ftell(f) - 4000;
	fseek(f, skip > 0 ? skip : 0, SEEK_SET);
	fprintf(stderr, "---- %s (tail)\n", path);
	while (fgets(line, sizeof line, f))
		fputs(line, stderr);
	fprintf(stderr, "----\n");
	fclose(f);
}

/* ----------------------------------------------------------- processes */

static pid_t spawn(char *const argv[], const char *out_path, const char *err_path)
{
	if (g_nchildren == MAX_CHILDREN)
		die("too many child processes");
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
		    dup2(err, 2) < 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	g_children[g_nchildren++] = pid;
	return pid;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *s = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (s = malloc((size_t)n + 1)) != NULL) {
		if (fread(s, 1, (size_t)n, f) != (size_t)n) {
			free(s);
			s = NULL;
		} else {
			s[n] = 0;
			if (len)
				*len = (size_t)n;
		}
	}
	fclose(f);
	return s;
}

/* Runs `tally --home HOME --json ARGS...` to completion (bounded); returns
 * its stdout (caller frees) or dies with its stderr. keep_out=0 discards it. */
static char *tally(const char *home, int keep_out, ...)
{
	char *argv[16], out_path[PATH_MAX + 16], err_path[PATH_MAX + 16];
	int argc = 0;
	va_list ap;
	argv[argc++] = g_tally;
	argv[argc++] = "--home";
	argv[argc++] = (char *)home;
	argv[argc++] = "--json";
	va_start(ap, keep_out);
	for (char *a; argc < 15 && (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	snprintf(out_path, sizeof out_path, "%s/cmd.out", g_base);
	snprintf(err_path, sizeof err_path, "%s/cmd.err", g_base);
	unlink(err_path);
	pid_t pid = spawn(argv, keep_out ? out_path : "/dev/null", err_path);
	double end = now() + CMD_TIMEOUT_S;
	int st = 0;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			die("waitpid: %s", strerror(errno));
		if (now() > end) {
			show_log(err_path);
			die("'tally %s %s' did not finish within %.0f s", argv[4],
			    argc > 5 ? argv[5] : "", CMD_TIMEOUT_S);
		}
		usleep(2000);
	}
	child_forget(pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		show_log(err_path);
		die("'tally %s %s' failed (status %d)", argv[4], argc > 5 ? argv[5] : "", st);
	}
	return keep_out ? slurp(out_path, NULL) : NULL;
}

/* --------------------------------------------------- control sockets */

struct conn {
	int fd;
	char *buf;
	size_t start, len, cap, scanned; /* bytes [start, len) are unread */
	const char *home;
};

static void conn_open(struct conn *c, const char *home)
{
	struct sockaddr_un sa;
	char path[PATH_MAX + 16];
	memset(c, 0, sizeof *c);
	c->home = home;
	snprintf(path, sizeof path, "%s/tallyd.sock", home);
	if (strlen(path) >= sizeof sa.sun_path)
		die("control socket path too long for AF_UNIX: %s (use a shorter DIR)", path);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		die("cannot connect to %s: %s", path, strerror(errno));
	c->cap = 1 << 16;
	if (!(c->buf = malloc(c->cap)))
		die("out of memory");
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
}

static void conn_write(struct conn *c, const char *s, size_t len)
{
	while (len) {
		ssize_t w = write(c->fd, s, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write to %s/tallyd.sock: %s", c->home, strerror(errno));
		s += w;
		len -= (size_t)w;
	}
}

/* Returns the next complete line (NUL-terminated, in the buffer, valid until
 * the next read), or NULL if none is buffered. */
static char *conn_line(struct conn *c, size_t *len)
{
	char *nl =
	        c->len > c->scanned ? memchr(c->buf + c->scanned, '\n', c->len - c->scanned) : NULL;
	if (!nl) {
		c->scanned = c->len;
		return NULL;
	}
	char *line = c->buf + c->start;
	*nl = 0;
	if (len)
		*len = (size_t)(nl - line);
	c->start = c->scanned = (size_t)(nl - c->buf) + 1;
	return line;
}

/* One read of what is available; dies on EOF. */
static void conn_read(struct conn *c)
{
	if (c->start > 0 && (c->start == c->len || c->start > c->cap / 2)) {
		memmove(c->buf, c->buf + c->start, c->len - c->start);
		c->len -= c->start;
		c->scanned -= c->start;
		c->start = 0;
	}
	if (c->cap - c->len < (1 << 16)) {
		c->cap *= 2;
		if (!(c->buf = realloc(c->buf, c->cap)))
			die("out of memory");
	}
	ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r <= 0)
		die("tallyd on %s closed its control connection (%s)", c->home,
		    r == 0 ? "EOF" : strerror(errno));
	c->len += (size_t)r;
}

/* Waits until c or d (may be NULL) is readable or the deadline passes;
 * returns a bit mask (1: c, 2: d), 0 on timeout. */
static int conn_wait(struct conn *c, struct conn *d, double deadline)
{
	struct pollfd p[2];
	int np = 0, rc;
	if (c)
		p[np++] = (struct pollfd){c->fd, POLLIN, 0};
	if (d)
		p[np++] = (struct pollfd){d->fd, POLLIN, 0};
	double left = deadline - now();
	if (left <= 0)
		return 0;
	rc = poll(p, (nfds_t)np, (int)(left * 1000) + 1);
	if (rc < 0 && errno == EINTR)
		return 0;
	if (rc < 0)
		die("poll: %s", strerror(errno));
	int mask = 0;
	if (c && p[0].revents)
		mask |= 1;
	if (d && p[np - 1].revents)
		mask |= 2;
	return mask;
}

/* Sends one request and returns its "result" (owned by *resp); dies if the
 * node refuses or does not answer within timeout. */
static json_t *call(struct conn *c, json_t *req, json_t **resp, double timeout)
{
	char *s = json_dumps(req, JSON_COMPACT);
	const char *op = json_string_value(json_object_get(req, "op"));
	size_t len;
	if (!s)
		die("out of memory");
	conn_write(c, s, strlen(s));
	conn_write(c, "\n", 1);
	free(s);
	double end = now() + timeout;
	char *line;
	while (!(line = conn_line(c, &len))) {
		if (!conn_wait(c, NULL, end))
			die("tallyd on %s did not answer '%s' within %.0f s", c->home, op, timeout);
		conn_read(c);
	}
	*resp = json_loadb(line, len, 0, NULL);
	if (!*resp || !json_is_true(json_object_get(*resp, "ok")))
		die("tallyd on %s refused '%s': %s", c->home, op,
		    *resp ? json_string_value(json_object_get(*resp, "error")) : line);
	return json_object_get(*resp, "result");
}

/* A watch stream: follows how much of one feed the node holds. */
struct watch {
	struct conn c;
	const char *origin;
	uint64_t have; /* the node's copy covers [0, have) */
	uint64_t events;
	uint64_t first_count; /* entries in the first ingest event */
};

static void watch_open(struct watch *w, const char *home, const char *origin)
{
	json_t *resp, *req = json_pack("{s:i,s:s}", "id", 1, "op", "watch");
	memset(w, 0, sizeof *w);
	conn_open(&w->c, home);
	w->origin = origin;
	call(&w->c, req, &resp, 10);
	json_decref(req);
	json_decref(resp);
}

/* Consumes buffered events; returns 1 if any line was consumed. */
static int watch_drain(struct watch *w)
{
	char *line;
	size_t len;
	int any = 0;
	while ((line = conn_line(&w->c, &len)) != NULL) {
		any = 1;
		/* Only ingests of the followed feed matter: skip the rest cheaply. */
		if (!strstr(line, "\"ingest\"") || !strstr(line, w->origin))
			continue;
		json_t *e = json_loadb(line, len, 0, NULL);
		const char *ev = json_string_value(json_object_get(e, "event"));
		const char *o = json_string_value(json_object_get(e, "origin"));
		if (ev && o && strcmp(ev, "ingest") == 0 && strcmp(o, w->origin) == 0) {
			uint64_t end = (uint64_t)json_integer_value(json_object_get(e, "seq")) +
			               (uint64_t)json_integer_value(json_object_get(e, "count"));
			if (end > w->have)
				w->have = end;
			if (w->events++ == 0)
				w->first_count = end;
		}
		json_decref(e);
	}
	return any;
}

/* --------------------------------------------------------------- nodes */

struct node {
	char home[PATH_MAX];
	char log[PATH_MAX + 16];
	char addr[64];
	char pk[65];
	pid_t pid;
};

static void node_init(struct node *n, const char *name, const char *book)
{
	memset(n, 0, sizeof *n);
	snprintf(n->home, sizeof n->home, "%s/%s", g_base, name);
	snprintf(n->log, sizeof n->log, "%s/%s.log", g_base, name);
	char *out = tally(n->home, 1, "init", "--book", book, (char *)NULL);
	json_t *j = json_loads(out ? out : "", 0, NULL);
	const char *pk = json_string_value(json_object_get(j, "public_key"));
	if (!pk || strlen(pk) != 64)
		die("tally init printed no public key: %s", out ? out : "(nothing)");
	memcpy(n->pk, pk, 65);
	json_decref(j);
	free(out);
}

static void node_start(struct node *n)
{
	char addr_path[PATH_MAX + 16], sock_path[PATH_MAX + 16];
	char *argv[] = {g_tallyd, "--home", n->home, "--listen", "127.0.0.1:0", NULL};
	snprintf(addr_path, sizeof addr_path, "%s/tallyd.addr", n->home);
	snprintf(sock_path, sizeof sock_path, "%s/tallyd.sock", n->home);
	unlink(addr_path);
	n->pid = spawn(argv, "/dev/null", n->log);
	double end = now() + START_TIMEOUT_S;
	for (;;) {
		int st;
		struct stat sb;
		char *a = NULL;
		if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
			child_forget(n->pid);
			show_log(n->log);
			die("tallyd on %s exited at start (status %d)", n->home, st);
		}
		/* The address file is written after the control socket is bound. */
		if (stat(sock_path, &sb) == 0 && (a = slurp(addr_path, NULL)) != NULL &&
		    strchr(a, '\n')) {
			a[strcspn(a, "\n")] = 0;
			snprintf(n->addr, sizeof n->addr, "%s", a);
			free(a);
			return;
		}
		free(a);
		if (now() > end) {
			show_log(n->log);
			die("tallyd on %s did not write tallyd.addr within %.0f s", n->home,
			    START_TIMEOUT_S);
		}
		usleep(10000);
	}
}

static void node_stop(struct node *n)
{
	if (n->pid <= 0)
		return;
	int st = child_stop(n->pid, STOP_TIMEOUT_S);
	if (st != 0)
		fprintf(stderr, "bench_node: tallyd on %s stopped with status %d\n", n->home, st);
	n->pid = 0;
}

/* Opens a channel through the node; returns our feed's origin (caller frees). */
static char *channel_open(struct node *n, const char *book, const struct node *peer)
{
	struct conn c;
	json_t *resp,
	        *req = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s}", "id", 1, "op", "channel_open", "book",
	                         book, "peer", peer->pk, "addr", peer->addr, "label", "bench");
	conn_open(&c, n->home);
	json_t *r = call(&c, req, &resp, 30);
	char *origin = strdup(json_string_value(json_object_get(r, "origin")));
	json_decref(req);
	json_decref(resp);
	conn_close(&c);
	return origin;
}

/* Waits until the node reports an open session with peer. */
static void wait_session(const struct node *n, const struct node *peer, double timeout)
{
	struct conn c;
	double end = now() + timeout;
	conn_open(&c, n->home);
	for (;;) {
		json_t *resp, *req = json_pack("{s:i,s:s}", "id", 1, "op", "status");
		json_t *r = call(&c, req, &resp, 10);
		json_t *v;
		size_t i;
		int open = 0;
		json_array_foreach(json_object_get(r, "peers"), i, v) open |=
		        strcmp(json_string_value(json_object_get(v, "peer")), peer->pk) == 0;
		json_decref(req);
		json_decref(resp);
		if (open)
			break;
		if (now() > end) {
			show_log(n->log);
			die("no session between %s and %s within %.0f s", n->home, peer->home,
			    timeout);
		}
		usleep(20000);
	}
	conn_close(&c);
}

/* -------------------------------------------------------------- bodies */

/* The ~300-byte statement-like body of bench_feeds, as JSON. */
static int body_json(char *out, size_t cap, uint64_t i)
{
	return snprintf(
	        out, cap,
	        "{\"id\":\"ST-2026-%08llu\",\"version\":1,\"period\":\"2026-11\","
	        "\"currency\":\"CNY\",\"opening\":1250000,\"closing\":%llu,"
	        "\"lines\":[{\"date\":\"2026-11-03\",\"type\":\"invoice\",\"doc\":\"INV-%llu\","
	        "\"amount\":%llu,\"due\":\"2026-12-03\"}],"
	        "\"memo\":\"monthly statement of account for November; goods delivered per "
	        "framework contract FC-2026-017, benchmark body of realistic size\"}",
	        (unsigned long long)i, (unsigned long long)(1250000 + i * 3), (unsigned long long)i,
	        (unsigned long long)(i * 3));
}

struct text {
	char *s;
	size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		while (t->len + n + 1 > t->cap)
			t->cap = t->cap ? t->cap * 2 : 1 << 20;
		if (!(t->s = realloc(t->s, t->cap)))
			die("out of memory");
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = 0;
}

#define ITEM_HEAD "{\"kind\":\"statement\",\"body\":"

/* An append request for entries [from, to), ending in a newline. */
static void append_request(struct text *t, const char *origin, uint64_t id, uint64_t from,
                           uint64_t to, size_t *body_bytes)
{
	char head[256], body[512];
	t->len = 0;
	text_add(t, head,
	         (size_t)snprintf(head, sizeof head,
	                          "{\"id\":%llu,\"op\":\"append\",\"origin\":\"%s\",\"items\":[",
	                          (unsigned long long)id, origin));
	for (uint64_t i = from; i < to; i++) {
		int bl = body_json(body, sizeof body, i);
		if (i > from)
			text_add(t, ",", 1);
		text_add(t, ITEM_HEAD, sizeof ITEM_HEAD - 1);
		text_add(t, body, (size_t)bl);
		text_add(t, "}", 1);
		if (body_bytes)
			*body_bytes += (size_t)bl;
	}
	text_add(t, "]}\n", 3);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void loadavg(const char *when)
{
	char line[256] = "?";
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (!fgets(line, sizeof line, f))
			strcpy(line, "?");
		fclose(f);
	}
	line[strcspn(line, "\n")] = 0;
	printf("load %s: %s (%ld cores online)\n", when, line, sysconf(_SC_NPROCESSORS_ONLN));
	fflush(stdout);
}

/* ------------------------------------------------- 1 and 2: two nodes */

static void bench_pair(int quick)
{
	const uint64_t n_bulk = quick ? 50000 : 200000;
	const int n_single = quick ? 2000 : 10000;
	struct node a, b;
	struct text req = {0};

	node_init(&a, "A", "alice");
	node_init(&b, "B", "bob");
	node_start(&a);
	node_start(&b);
	char *origin = channel_open(&a, "alice", &b);
	free(channel_open(&b, "bob", &a));
	wait_session(&a, &b, 30);
	wait_session(&b, &a, 30);

	struct watch w;
	struct conn ctl;
	watch_open(&w, b.home, origin);
	conn_open(&ctl, a.home);

	/* 1. Bulk replication: as few requests as the control line cap allows,
	 * one after another on one connection. */
	size_t per_item = 0, nreq = 1;
	append_request(&req, origin, 0, 0, 1, &per_item);
	size_t est = req.len + (per_item + 48) * (size_t)n_bulk;
	while (est / nreq > CTL_REQUEST_MAX)
		nreq++;
	size_t body_bytes = 0;
	struct text *reqs = calloc(nreq, sizeof *reqs);
	if (!reqs)
		die("out of memory");
	for (size_t k = 0; k < nreq; k++) {
		append_request(&reqs[k], origin, k + 1, n_bulk * k / nreq, n_bulk * (k + 1) / nreq,
		               &body_bytes);
		if (reqs[k].len > CTL_REQUEST_MAX)
			die("append request %zu is %zu bytes, over the control line cap", k,
			    reqs[k].len);
	}
	double deadline = now() + 30 + (double)n_bulk / 2000;
	double t0 = now(), acked = 0, acked1 = 0, first_at_b = 0;
	size_t next = 0, replies = 0;
	conn_write(&ctl, reqs[next].s, reqs[next].len);
	next++;
	while (replies < nreq || w.have < n_bulk) {
		int m = conn_wait(replies < nreq ? &ctl : NULL, &w.c, deadline);
		if (!m) {
			show_log(a.log);
			show_log(b.log);
			die("replication: after %.0f s B holds %llu of %llu entries (%zu of %zu "
			    "append requests answered)",
			    now() - t0, (unsigned long long)w.have, (unsigned long long)n_bulk,
			    replies, nreq);
		}
		if (m & 2) {
			conn_read(&w.c);
			watch_drain(&w);
			if (w.have && !first_at_b)
				first_at_b = now() - t0;
		}
		if (m & 1) {
			char *line;
			size_t len;
			conn_read(&ctl);
			if ((line = conn_line(&ctl, &len)) != NULL) {
				/* Check cheaply: the reply lists every entry. */
				if (strncmp(line, "{\"id\":", 6) != 0 ||
				    !strstr(line, "\"ok\":true"))
					die("A refused the bulk append: %.300s", line);
				if (replies++ == 0)
					acked1 = now() - t0;
				if (next < nreq) {
					conn_write(&ctl, reqs[next].s, reqs[next].len);
					next++;
				} else {
					acked = now() - t0;
				}
			}
		}
	}
	double dt = now() - t0;
	/* The replication rate is what B verifies and stores while entries
	 * stream in (first to last arrival); the end-to-end figure also counts
	 * A parsing the JSON request and signing. */
	printf("node.replicate         %8.0f entries/s A->B while streaming, verified and stored "
	       "by B (%llu entries between its first and last ingest)   goal >= 20000\n",
	       (double)(n_bulk - w.first_count) / (dt - first_at_b), (unsigned long long)n_bulk);
	printf("node.replicate.e2e     %8.0f entries/s from A's append request to all stored at B "
	       "(%.0f B JSON bodies, %zu request%s; A acked the first/all at %.2f/%.2f s, B had "
	       "its first entry at %.2f s and all at %.2f s in %llu ingest events)\n",
	       (double)n_bulk / dt, (double)body_bytes / (double)n_bulk, nreq,
	       nreq > 1 ? "s (64 MiB line cap)" : "", acked1, acked, first_at_b, dt,
	       (unsigned long long)w.events);
	fflush(stdout);
	for (size_t k = 0; k < nreq; k++)
		free(reqs[k].s);
	free(reqs);

	/* 2. Append-to-visible latency, one append at a time. */
	double *lat = calloc((size_t)n_single, sizeof *lat);
	if (!lat)
		die("out of memory");
	for (int i = 0; i < n_single; i++) {
		uint64_t seq = UINT64_MAX;
		char *line;
		size_t len;
		append_request(&req, origin, 100 + (uint64_t)i, n_bulk + (uint64_t)i,
		               n_bulk + (uint64_t)i + 1, NULL);
		double end = now() + 10, t1 = now();
		conn_write(&ctl, req.s, req.len);
		while (seq == UINT64_MAX || w.have <= seq) {
			int m = conn_wait(seq == UINT64_MAX ? &ctl : NULL, &w.c, end);
			if (!m) {
				show_log(a.log);
				show_log(b.log);
				die("append %d (seq %lld): not visible at B within 10 s (B holds "
				    "%llu)",
				    i, seq == UINT64_MAX ? -1LL : (long long)seq,
				    (unsigned long long)w.have);
			}
			if (m & 2) {
				conn_read(&w.c);
				watch_drain(&w);
			}
			if ((m & 1) && (conn_read(&ctl), (line = conn_line(&ctl, &len)) != NULL)) {
				json_t *resp = json_loadb(line, len, 0, NULL);
				json_t *ap = json_array_get(
				        json_object_get(json_object_get(resp, "result"),
				                        "appended"),
				        0);
				if (!json_is_true(json_object_get(resp, "ok")) || !ap)
					die("A refused append %d: %.300s", i, line);
				seq = (uint64_t)json_integer_value(json_object_get(ap, "seq"));
				json_decref(resp);
			}
		}
		lat[i] = (now() - t1) * 1e3;
	}
	qsort(lat, (size_t)n_single, sizeof *lat, cmp_double);
	double sum = 0;
	for (int i = 0; i < n_single; i++)
		sum += lat[i];
	printf("node.visible.p50       %8.2f ms append request at A to ingest event at B (%d "
	       "single appends, mean %.2f ms, max %.1f ms)   goal <= 5\n",
	       lat[n_single / 2], n_single, sum / n_single, lat[n_single - 1]);
	printf("node.visible.p99       %8.2f ms   goal <= 50\n",
	       lat[(size_t)((double)n_single * 0.99)]);
	fflush(stdout);
	free(lat);
	free(req.s);
	conn_close(&ctl);
	conn_close(&w.c);

	/* 1b. Catch-up: B is down while A appends; from B's restart to the
	 * last entry stored is pure replication (A does nothing else). */
	uint64_t before = w.have;
	node_stop(&b);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/catchup.jsonl", g_base);
	FILE *fp = fopen(path, "w");
	char body[1024];
	if (!fp)
		die("cannot write %s", path);
	for (uint64_t i = 0; i < n_bulk; i++) {
		body_json(body, sizeof body, i);
		fprintf(fp, "{\"kind\":\"statement\",\"body\":%s}\n", body);
	}
	fclose(fp);
	free(tally(a.home, 0, "feed", "append", origin, "--jsonl", path, (char *)NULL));
	uint64_t target = before + n_bulk;
	double t2 = now();
	node_start(&b);
	watch_open(&w, b.home, origin);
	w.have = before;
	double cdeadline = now() + 60 + (double)n_bulk / 2000;
	while (w.have < target) {
		if (!conn_wait(NULL, &w.c, cdeadline)) {
			show_log(b.log);
			die("catch-up: B holds %llu of %llu", (unsigned long long)w.have,
			    (unsigned long long)target);
		}
		conn_read(&w.c);
		watch_drain(&w);
	}
	double ct = now() - t2;
	printf("node.catchup           %8.0f entries/s B restarted and caught up %llu entries "
	       "(verified and stored; %.2f s including B's start and handshake)   goal >= 20000\n",
	       (double)n_bulk / ct, (unsigned long long)n_bulk, ct);
	fflush(stdout);
	conn_close(&w.c);
	node_stop(&a);
	node_stop(&b);
	free(origin);
}

/* ------------------------------------------------------- 3: memory */

static long status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	long kb = -1;
	size_t kl = strlen(key);
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			kb = strtol(line + kl + 1, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

static void bench_rss(int quick)
{
	const int nch = quick ? 20 : 100, per = quick ? 2000 : 10000;
	struct node h;
	char jsonl[PATH_MAX + 16], body[512], hex[65], mdb[PATH_MAX + 32];
	uint8_t rnd[32];

	double t0 = now();
	node_init(&h, "H", "hub");
	snprintf(jsonl, sizeof jsonl, "%s/entries.jsonl", g_base);
	FILE *f = fopen(jsonl, "w");
	if (!f)
		die("cannot write %s: %s", jsonl, strerror(errno));
	for (int i = 0; i < per; i++) {
		body_json(body, sizeof body, (uint64_t)i);
		fprintf(f, "{\"kind\":\"statement\",\"body\":%s}\n", body);
	}
	if (fclose(f) != 0)
		die("cannot write %s", jsonl);
	int ur = open("/dev/urandom", O_RDONLY);
	if (ur < 0)
		die("/dev/urandom: %s", strerror(errno));
	for (int c = 0; c < nch; c++) {
		if (read(ur, rnd, sizeof rnd) != (ssize_t)sizeof rnd)
			die("/dev/urandom: short read");
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
		char *out = tally(h.home, 1, "channel", "open", "--book", "hub", "--peer", hex,
		                  (char *)NULL);
		json_t *j = json_loads(out ? out : "", 0, NULL);
		const char *origin = json_string_value(json_object_get(j, "origin"));
		if (!origin)
			die("tally channel open printed no origin: %s", out ? out : "(nothing)");
		tally(h.home, 0, "feed", "append", origin, "--jsonl", jsonl, (char *)NULL);
		json_decref(j);
		free(out);
	}
	close(ur);
	double setup = now() - t0;

	node_start(&h);
	sleep(2);
	int st;
	if (waitpid(h.pid, &st, WNOHANG) == h.pid) {
		child_forget(h.pid);
		show_log(h.log);
		die("tallyd on %s exited while settling (status %d)", h.home, st);
	}
	long rss = status_kb(h.pid, "VmRSS"), anon = status_kb(h.pid, "RssAnon");
	long file = status_kb(h.pid, "RssFile"), hwm = status_kb(h.pid, "VmHWM");
	struct stat sb;
	snprintf(mdb, sizeof mdb, "%s/store/data.mdb", h.home);
	if (stat(mdb, &sb) != 0)
		die("%s: %s", mdb, strerror(errno));
	if (rss < 0 || anon < 0)
		die("cannot read VmRSS/RssAnon of pid %d", (int)h.pid);
	printf("node.rss               %8.1f MB VmRSS of tallyd, %d channels x %d entries, 2 s "
	       "after start (RssFile %.1f MB, VmHWM %.1f MB; setup %.0f s)\n",
	       (double)rss / 1024, nch, per, (double)file / 1024, (double)hwm / 1024, setup);
	printf("node.rss_anon          %8.1f MB RssAnon (excludes LMDB's file-mapped pages)   goal "
	       "<= 64\n",
	       (double)anon / 1024);
	printf("node.lmdb_file         %8.1f MB data.mdb on disk (%.1f MB apparent size)\n",
	       (double)sb.st_blocks * 512 / 1048576.0, (double)sb.st_size / 1048576.0);
	fflush(stdout);
	node_stop(&h);
}

/* --------------------------------------------------------------- main */

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
	find_binaries(argv[0]);
	snprintf(g_base, sizeof g_base, "%s", dir ? dir : "/tmp/tally-bench-node");
	if (!getenv("BENCH_KEEP"))
		rmrf(g_base);
	if (mkdir(g_base, 0700) != 0)
		die("mkdir %s: %s", g_base, strerror(errno));
	setenv("TALLY_PASSPHRASE", PASSPHRASE, 1);
	unsetenv("TALLY_HOME");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	loadavg("before");
	bench_pair(quick);
	bench_rss(quick);
	loadavg("after");
	cleanup();
	return 0;
}
