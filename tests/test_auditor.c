/*
 * test_auditor.c — end-to-end tests of read-only auditors (docs/protocol.md,
 * "Auditors"): real tallyd processes for a supplier, a customer and an
 * auditor on 127.0.0.1 with kernel-picked ports; `tally auditor admit`,
 * `revoke`, `list` and `follow`; and a hand-made auditor that speaks the
 * wire protocol (hello, handshake, frames) to see exactly what the admitting
 * node sends and what it does with records sent on a read-only session.
 *
 * The process and wire helpers are those of tests/test_node.c. Every wait is
 * a bounded poll of a condition; every process is stopped by teardown.
 * TALLY_TEST_KEEP=1 keeps each test's directory (logs, stores).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "node/auditor.h"
#include "node/tl_node.h"

#define PASS      "correct horse battery staple"
#define MAX_NODES 3
#define MAX_PIDS  16
#define MAX_FDS   16
#define MAX_WATCH 8
#define POLL_MS   20

struct node {
	char name[32];
	char home[4096];
	char log[4200];
	char home_env[4200];
	char pass_env[128];
	char pkhex[65];
	uint8_t pk[TL_PUB_LEN];
	char addr[64]; /* "127.0.0.1:PORT" once started; kept for restarts */
	pid_t pid;
};

struct fx {
	char *dir;
	struct node nodes[MAX_NODES];
	int nnodes;
	pid_t bg[MAX_PIDS]; /* tally commands run in the background */
	int nbg;
	int fds[MAX_FDS]; /* client sockets */
	int nfds;
};

static int asan(void)
{
	const char *a = getenv("TALLY_ASAN");
	return a && *a && strcmp(a, "0") != 0;
}

/* Entry counts: a fifth under ASan (about 3x slower, on 2 cores). */
static size_t count(size_t n)
{
	return asan() ? n / 5 : n;
}

/* Time limits: three times longer under ASan. */
static unsigned limit(unsigned ms)
{
	return asan() ? ms * 3 : ms;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Polls cond every every_ms until it returns non-zero or timeout_ms pass. */
static int wait_every(int (*cond)(void *), void *ctx, unsigned timeout_ms, unsigned every_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	for (;;) {
		if (cond(ctx))
			return 1;
		if (mono_ms() >= end)
			return 0;
		nap(every_ms);
	}
}

static int wait_for(int (*cond)(void *), void *ctx, unsigned timeout_ms)
{
	return wait_every(cond, ctx, timeout_ms, POLL_MS);
}

/* waitpid with a deadline: 1 and *st when the process ended. */
static int reap(pid_t pid, int *st, unsigned timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1;
		if (mono_ms() >= end)
			return 0;
		nap(POLL_MS);
	}
}

/* Stops a process: sig, then SIGKILL if it has not ended in time. Returns
 * the wait status. */
static int stop_pid(pid_t pid, int sig, unsigned timeout_ms)
{
	int st = 0;
	if (pid <= 0)
		return -1;
	kill(pid, sig);
	if (!reap(pid, &st, timeout_ms)) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	return st;
}

/* How many times the node's log says it stopped. */
static int stops_logged(const struct node *nd)
{
	int k = 0;
	char *text = th_read_file(nd->log, NULL);
	for (char *p = text; p && (p = strstr(p, "tallyd info: stopped")); p++)
		k++;
	free(text);
	return k;
}

/*
 * Signals a node and reaps it: its wait status, or -1 if it had to be
 * killed. Under ASan, LeakSanitizer's stop-the-world at exit now and then
 * never returns (google/sanitizers#777; seen here about once in 20 exits,
 * main thread spinning, its tracer asleep): once the node has logged
 * "stopped" (tl_node_run returned, everything released), 10 s of that
 * counts as a clean exit.
 */
static int node_halt(struct node *nd, int sig)
{
	int st = 0, before = stops_logged(nd);
	uint64_t start = mono_ms(), end = start + limit(30000);
	pid_t pid = nd->pid;
	if (pid <= 0)
		return -1;
	kill(pid, sig);
	kill(pid, SIGCONT); /* in case a test left it stopped */
	nd->pid = 0;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return st;
		uint64_t now = mono_ms();
		int lsan_hang = sig == SIGTERM && asan() && now - start > 10000 &&
		                stops_logged(nd) > before;
		if (lsan_hang || now >= end) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			if (lsan_hang)
				print_message("%s: stopped, but LeakSanitizer hung at exit\n",
				              nd->name);
			return lsan_hang ? 0 : -1;
		}
		nap(POLL_MS);
	}
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	assert_non_null(x);
	x->dir = th_tmpdir("auditor");
	assert_non_null(x->dir);
	for (int i = 0; i < MAX_FDS; i++)
		x->fds[i] = -1;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	for (int i = 0; i < x->nnodes; i++)
		node_halt(&x->nodes[i], SIGTERM);
	for (int i = 0; i < x->nbg; i++)
		if (x->bg[i] > 0)
			stop_pid(x->bg[i], SIGTERM, 10000);
	for (int i = 0; i < x->nfds; i++)
		if (x->fds[i] >= 0)
			close(x->fds[i]);
	if (getenv("TALLY_TEST_KEEP")) /* logs and stores, for a post-mortem */
		fprintf(stderr, "kept %s\n", x->dir);
	else
		th_rmtree(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

static const char *tallyd_bin(void)
{
	const char *t = getenv("TALLYD_BIN");
	return t && *t ? t : "build/tallyd";
}

static void chomp(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = 0;
}

/* The last lines of a node's log, for failure messages (static buffer). */
static const char *log_tail(const struct node *nd)
{
	static char tail[6000];
	size_t len = 0;
	char *text = th_read_file(nd->log, &len);
	if (!text)
		return "(no log)";
	size_t from = len > sizeof tail - 1 ? len - (sizeof tail - 1) : 0;
	snprintf(tail, sizeof tail, "%s", text + from);
	free(text);
	return tail;
}

static int log_has(const struct node *nd, const char *needle)
{
	char *text = th_read_file(nd->log, NULL);
	int found = text && strstr(text, needle) != NULL;
	free(text);
	return found;
}

struct log_wait {
	const struct node *nd;
	const char *needle;
};

static int log_cond(void *ctx)
{
	struct log_wait *w = ctx;
	return log_has(w->nd, w->needle);
}

static void expect_log(const struct node *nd, const char *needle)
{
	struct log_wait w = {nd, needle};
	if (!wait_for(log_cond, &w, limit(10000)))
		fail_msg("'%s' not in the log of %s:\n%s", needle, nd->name, log_tail(nd));
}

/* Runs tally as node nd's user; the status is returned, output kept in r. */
static int tally(struct node *nd, struct th_run *r, const char *const *argv, const char *in)
{
	const char *env[] = {nd->home_env, nd->pass_env, NULL};
	th_run_free(r);
	assert_int_equal(th_run(r, argv, env, in, in ? strlen(in) : 0, 600), 0);
	return r->status;
}

/* A data directory with one book named name (not started). */
static struct node *node_add(struct fx *x, const char *name)
{
	struct th_run r = {0};
	assert_true(x->nnodes < MAX_NODES);
	struct node *nd = &x->nodes[x->nnodes++];
	memset(nd, 0, sizeof *nd);
	snprintf(nd->name, sizeof nd->name, "%s", name);
	snprintf(nd->home, sizeof nd->home, "%s/%s", x->dir, name);
	snprintf(nd->log, sizeof nd->log, "%s/%s.log", x->dir, name);
	snprintf(nd->home_env, sizeof nd->home_env, "TALLY_HOME=%s/%s", x->dir, name);
	snprintf(nd->pass_env, sizeof nd->pass_env, "TALLY_PASSPHRASE=%s", PASS);
	const char *a[] = {"tally", "init", "--book", name, NULL};
	if (tally(nd, &r, a, NULL) != 0)
		fail_msg("tally init %s: %s", name, r.err);
	chomp(r.out);
	assert_int_equal(strlen(r.out), 64);
	snprintf(nd->pkhex, sizeof nd->pkhex, "%s", r.out);
	assert_int_equal(th_unhex(nd->pk, sizeof nd->pk, nd->pkhex), TL_PUB_LEN);
	th_run_free(&r);
	return nd;
}

struct start_wait {
	struct node *nd;
	char path[4200];
	int died;
};

static int started(void *ctx)
{
	struct start_wait *w = ctx;
	int st;
	if (waitpid(w->nd->pid, &st, WNOHANG) == w->nd->pid) {
		w->nd->pid = 0;
		w->died = 1;
		return 1;
	}
	size_t len = 0;
	char *text = th_read_file(w->path, &len);
	char *nl = text ? strchr(text, '\n') : NULL;
	if (nl && nl != text && (size_t)(nl - text) < sizeof w->nd->addr) {
		*nl = 0;
		snprintf(w->nd->addr, sizeof w->nd->addr, "%s", text);
	}
	free(text);
	return nl != NULL;
}

/*
 * Starts tallyd on nd's directory, stderr appended to nd->log. listen NULL:
 * 127.0.0.1:0, the bound address read back from DIR/tallyd.addr (written
 * after the control socket listens). A restart passes nd->addr to keep the
 * port the counterparty dials.
 */
static void node_start(struct node *nd, const char *listen)
{
	char listen_arg[64];
	struct start_wait w = {.nd = nd};
	snprintf(listen_arg, sizeof listen_arg, "%s", listen ? listen : "127.0.0.1:0");
	snprintf(w.path, sizeof w.path, "%s/tallyd.addr", nd->home);
	unlink(w.path); /* left behind by a SIGKILL */
	/* A handshake timeout far beyond any wait here: a connection the node
	 * drops, it drops for what it received, not for the timer. */
	char conf[4200];
	static const char settings[] = "handshake_timeout_ms = 600000\n";
	snprintf(conf, sizeof conf, "%s.conf", nd->home);
	assert_int_equal(th_write_file(conf, settings, strlen(settings)), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int lf = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDWR);
		if (lf < 0 || nul < 0)
			_exit(126);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(lf, 2);
		setenv("TALLY_HOME", nd->home, 1);
		setenv("TALLY_PASSPHRASE", PASS, 1);
		execl(tallyd_bin(), "tallyd", "--config", conf, "--home", nd->home, "--listen",
		      listen_arg, "--log", "debug", (char *)NULL);
		_exit(127);
	}
	nd->pid = pid;
	if (!wait_for(started, &w, limit(30000)) || w.died)
		fail_msg("tallyd for %s did not start (%s); log:\n%s", nd->name,
		         w.died ? "exited" : "no tallyd.addr", log_tail(nd));
	assert_non_null(strstr(nd->addr, "127.0.0.1:"));
}

/*
 * Opens the channel of nd's book with peer's (through the control socket
 * when nd runs), label NULL for the default. with_addr: record where peer
 * listens (the lower key dials).
 */
static void channel_open_full(struct node *nd, const struct node *peer, int with_addr,
                              const char *label, char *origin, char *peer_origin)
{
	struct th_run r = {0};
	char peer_arg[200];
	if (with_addr)
		snprintf(peer_arg, sizeof peer_arg, "%s@%s", peer->pkhex, peer->addr);
	else
		snprintf(peer_arg, sizeof peer_arg, "%s", peer->pkhex);
	const char *a[] = {"tally",  "--json", "channel", "open",    "--book",
	                   nd->name, "--peer", peer_arg,  "--label", label ? label : "default",
	                   NULL};
	if (tally(nd, &r, a, NULL) != 0)
		fail_msg("channel open on %s: %s", nd->name, r.err);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	const char *o = json_string_value(json_object_get(j, "origin"));
	const char *po = json_string_value(json_object_get(j, "peer_origin"));
	assert_non_null(o);
	assert_non_null(po);
	assert_int_equal(strlen(o), TL_ORIGIN_LEN);
	assert_int_equal(strlen(po), TL_ORIGIN_LEN);
	memcpy(origin, o, TL_ORIGIN_LEN + 1);
	memcpy(peer_origin, po, TL_ORIGIN_LEN + 1);
	json_decref(j);
	th_run_free(&r);
}

/* Writes n "memo" entries (a kind the channel state ignores) numbered
 * from..from+n-1 ("n" in the body) to a JSONL file; returns its path. */
static char *jsonl_file(struct fx *x, const char *tag, size_t from, size_t n)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s-%zu-%zu.jsonl", x->dir, tag, from, n);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = from; i < from + n; i++)
		fprintf(f,
		        "{\"kind\":\"memo\",\"body\":{\"n\":%zu,\"tag\":\"%s\","
		        "\"amount\":%zu,\"currency\":\"EUR\",\"memo\":\"line %zu from %s, "
		        "padded towards the size of a real statement line\"}}\n",
		        i, tag, i * 100 + 7, i, tag);
	assert_int_equal(fclose(f), 0);
	return strdup(path);
}

/* Appends the JSONL file to origin, in the foreground; one ack line each. */
static void append_file(struct node *nd, const char *origin, const char *path, size_t n)
{
	struct th_run r = {0};
	const char *a[] = {"tally", "feed", "append", origin, "--jsonl", path, NULL};
	if (tally(nd, &r, a, NULL) != 0)
		fail_msg("append on %s failed (%d): %s", nd->name, r.status, r.err);
	size_t lines = 0;
	for (char *p = r.out; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, n);
	th_run_free(&r);
}

struct fstate {
	int ok;
	uint64_t size;
	uint8_t root[TL_HASH_LEN];
};

static struct tl_store *store_ro(const struct node *nd)
{
	char sp[4200], err[256];
	struct tl_store *s = NULL;
	snprintf(sp, sizeof sp, "%s/store", nd->home);
	if (tl_store_open(&s, sp, TL_STORE_RDONLY, 0, err, sizeof err) != 0)
		return NULL;
	return s;
}

static void feed_state(const struct node *nd, const char *origin, struct fstate *st)
{
	struct tl_feed f;
	memset(st, 0, sizeof *st);
	struct tl_store *s = store_ro(nd);
	if (!s)
		return;
	if (tl_store_feed_get(s, origin, &f) == 0 &&
	    tl_store_root(s, &f, f.head.size, st->root) == 0) {
		st->ok = 1;
		st->size = f.head.size;
	}
	tl_store_close(s);
}

static uint64_t feed_size(const struct node *nd, const char *origin)
{
	struct fstate st;
	feed_state(nd, origin, &st);
	return st.ok ? st.size : 0;
}

/* Feeds that must be identical (size and root) on every listed node, at
 * least min entries, and unchanged for stable_ms. */
struct conv {
	int nw;
	struct {
		const char *origin;
		struct node *on[MAX_NODES];
		int n;
		uint64_t min;
		uint64_t last;
	} w[MAX_WATCH];
	unsigned stable_ms;
	uint64_t since;
};

static void conv_add(struct conv *c, const char *origin, uint64_t min, struct node *a,
                     struct node *b)
{
	assert_true(c->nw < MAX_WATCH);
	c->w[c->nw].origin = origin;
	c->w[c->nw].on[0] = a;
	c->w[c->nw].on[1] = b;
	c->w[c->nw].n = 2;
	c->w[c->nw].min = min;
	c->w[c->nw].last = UINT64_MAX;
	c->nw++;
}

static int conv_check(void *ctx)
{
	struct conv *c = ctx;
	int ok = 1, same = 1;
	for (int i = 0; i < c->nw; i++) {
		struct fstate a, b;
		feed_state(c->w[i].on[0], c->w[i].origin, &a);
		if (!a.ok || a.size < c->w[i].min)
			ok = 0;
		for (int k = 1; k < c->w[i].n && ok; k++) {
			feed_state(c->w[i].on[k], c->w[i].origin, &b);
			if (!b.ok || b.size != a.size || memcmp(a.root, b.root, TL_HASH_LEN) != 0)
				ok = 0;
		}
		if (a.size != c->w[i].last)
			same = 0;
		c->w[i].last = a.size;
	}
	uint64_t now = mono_ms();
	if (!ok || !same) {
		c->since = now;
		return 0;
	}
	return now - c->since >= c->stable_ms;
}

static void conv_fail(struct conv *c, const char *what)
{
	char msg[4096];
	size_t len = 0;
	for (int i = 0; i < c->nw && len < sizeof msg - 200; i++)
		for (int k = 0; k < c->w[i].n && len < sizeof msg - 200; k++)
			len += (size_t)snprintf(
			        msg + len, sizeof msg - len,
			        "  feed %.16s…/%.8s… on %s: %llu entries (want >= %llu)\n",
			        c->w[i].origin + 9, c->w[i].origin + 9 + 65, c->w[i].on[k]->name,
			        (unsigned long long)feed_size(c->w[i].on[k], c->w[i].origin),
			        (unsigned long long)c->w[i].min);
	fail_msg("%s: no convergence\n%s--- log of %s:\n%s", what, msg, c->w[0].on[0]->name,
	         log_tail(c->w[0].on[0]));
}

/* Waits until the watched feeds agree everywhere; stable: also unchanged
 * for longer than a receipt interval (1 s) so that the state is final. */
static void converge(struct conv *c, int stable, unsigned timeout_ms, const char *what)
{
	c->stable_ms = stable ? (asan() ? 3000 : 1500) : 0;
	c->since = mono_ms();
	for (int i = 0; i < c->nw; i++)
		c->w[i].last = UINT64_MAX;
	if (!wait_for(conv_check, c, limit(timeout_ms)))
		conv_fail(c, what);
}

/* The four comparisons: both feeds of a channel, same size and root on
 * both nodes. */
static void assert_same(struct node *a, struct node *b, const char *origin)
{
	struct fstate sa, sb;
	feed_state(a, origin, &sa);
	feed_state(b, origin, &sb);
	assert_true(sa.ok && sb.ok);
	assert_int_equal(sa.size, sb.size);
	assert_memory_equal(sa.root, sb.root, TL_HASH_LEN);
}

struct wire {
	int fd;
	struct tl_session s;
	struct tl_buf in;
	int have_session;
};

static int tcp_connect(struct fx *x, const char *addr)
{
	struct sockaddr_in sa;
	const char *colon = strrchr(addr, ':');
	char host[64];
	assert_non_null(colon);
	snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_true(x->nfds < MAX_FDS);
	x->fds[x->nfds++] = fd;
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

static void fd_close(struct fx *x, int fd)
{
	for (int i = 0; i < x->nfds; i++)
		if (x->fds[i] == fd)
			x->fds[i] = -1;
	close(fd);
}

static int send_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Reads what is there (waiting until deadline): > 0 bytes, 0 at EOF or on a
 * reset, -1 on timeout. */
static ssize_t recv_some(int fd, struct tl_buf *in, uint64_t deadline)
{
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= deadline)
			return -1;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, (int)(deadline - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return -1;
		if (tl_buf_reserve(in, 65536) != 0)
			return -1;
		ssize_t r = recv(fd, in->data + in->len, 65536, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return 0; /* ECONNRESET: dropped too */
		in->len += (size_t)r;
		return r;
	}
}

/* 1 if the node closes the connection within timeout_ms; whatever it sends
 * meanwhile is discarded and counted in *got (may be NULL). */
static int wait_closed(int fd, unsigned timeout_ms, size_t *got)
{
	struct tl_buf in;
	uint64_t end = mono_ms() + timeout_ms;
	int closed = 0;
	tl_buf_init(&in, 1u << 30);
	if (got)
		*got = 0;
	for (;;) {
		ssize_t r = recv_some(fd, &in, end);
		if (r < 0)
			break;
		if (r == 0) {
			closed = 1;
			break;
		}
		if (got)
			*got += (size_t)r;
		in.len = 0;
	}
	tl_buf_release(&in);
	return closed;
}

static void wire_init(struct wire *w, int fd)
{
	memset(w, 0, sizeof *w);
	w->fd = fd;
	tl_buf_init(&w->in, TL_FRAME_MAX + TL_FRAME_OVERHEAD + (1u << 20));
}

static void wire_release(struct wire *w)
{
	tl_buf_release(&w->in);
	tl_session_wipe(&w->s);
}

static void hello(uint8_t out[4 + TL_PUB_LEN], const uint8_t target[TL_PUB_LEN])
{
	memcpy(out, "TLYH", 4);
	memcpy(out + 4, target, TL_PUB_LEN);
}

/*
 * Dials as book me toward target's book on the node: hello, then the three
 * handshake messages. 0 when our side is done (the session keys are in
 * w->s); what the node sent after its m2 stays in w->in.
 */
static int handshake(struct wire *w, const struct tl_keypair *me, const uint8_t target[TL_PUB_LEN])
{
	uint8_t h[4 + TL_PUB_LEN];
	struct tl_hs *hs = NULL;
	struct tl_buf out;
	int rc;
	hello(h, target);
	tl_buf_init(&out, 4096);
	if ((rc = tl_hs_new(&hs, TL_HS_INITIATOR, me, target)) != 0 ||
	    (rc = tl_hs_start(hs, &out)) != 0)
		goto done;
	if (send_all(w->fd, h, sizeof h) != 0 || send_all(w->fd, out.data, out.len) != 0) {
		rc = TL_EIO;
		goto done;
	}
	uint64_t end = mono_ms() + limit(10000);
	while (!tl_hs_done(hs)) {
		size_t used = 0;
		tl_buf_reset(&out);
		if (w->in.len) {
			if ((rc = tl_hs_step(hs, w->in.data, w->in.len, &used, &out)) != 0)
				goto done;
			memmove(w->in.data, w->in.data + used, w->in.len - used);
			w->in.len -= used;
			if (out.len && send_all(w->fd, out.data, out.len) != 0) {
				rc = TL_EIO;
				goto done;
			}
			if (tl_hs_done(hs))
				break;
		}
		if (recv_some(w->fd, &w->in, end) <= 0) {
			rc = TL_EIO;
			goto done;
		}
	}
	assert_memory_equal(tl_hs_peer(hs), target, TL_PUB_LEN);
	rc = tl_hs_session(hs, &w->s);
	w->have_session = rc == 0;
done:
	tl_hs_free(hs);
	tl_buf_release(&out);
	return rc;
}

/* Seals msg as the next frame; the sealed bytes also land in copy (if not
 * NULL) so that a test can replay them. */
static void send_frame(struct wire *w, const uint8_t *msg, size_t len, struct tl_buf *copy)
{
	struct tl_buf f;
	tl_buf_init(&f, TL_FRAME_MAX + TL_FRAME_OVERHEAD);
	assert_int_equal(tl_session_seal(&w->s, msg, len, &f), 0);
	assert_int_equal(send_all(w->fd, f.data, f.len), 0);
	if (copy) {
		tl_buf_reset(copy);
		assert_int_equal(tl_buf_add(copy, f.data, f.len), 0);
	}
	tl_buf_release(&f);
}

/* The next frame from the node, opened: 1; 0 on close or timeout. */
static int next_frame(struct wire *w, struct tl_buf *pt, uint64_t deadline)
{
	for (;;) {
		size_t used = 0;
		tl_buf_reset(pt);
		int rc = tl_session_open(&w->s, w->in.data, w->in.len, &used, pt);
		assert_int_equal(rc, 0);
		if (used) {
			memmove(w->in.data, w->in.data + used, w->in.len - used);
			w->in.len -= used;
			return 1;
		}
		if (recv_some(w->fd, &w->in, deadline) <= 0)
			return 0;
	}
}

static int pack_write(void *data, const char *buf, size_t len)
{
	return tl_buf_add(data, buf, len) == 0 ? 0 : -1;
}

/*
 * Opens the channel between two running nodes on both sides, the side with
 * the higher key first: the lower key dials once its own side is open, so
 * the session starts with both sides complete and the set-up of the other
 * tests is the same every run. (The other order lets the dial race the
 * channel_open job; test_channel_on_open_session covers live sessions.)
 */
static void open_pair(struct node *p, struct node *q, const char *label, char *op, char *oq)
{
	char t[TL_ORIGIN_LEN + 1];
	struct node *hi = memcmp(p->pk, q->pk, TL_PUB_LEN) > 0 ? p : q;
	struct node *lo = hi == p ? q : p;
	char *ohi = hi == p ? op : oq, *olo = hi == p ? oq : op;
	channel_open_full(hi, lo, 1, label, ohi, t);
	channel_open_full(lo, hi, 1, label, olo, t);
	assert_string_equal(t, ohi);
}

/* SIGTERM (clean stop, exit status 0 expected) or SIGKILL. */
static void node_stop(struct node *nd, int sig)
{
	int st = node_halt(nd, sig);
	if (sig == SIGKILL) {
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		return;
	}
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("tallyd %s did not stop cleanly on signal %d (status %d); log:\n%s",
		         nd->name, sig, st, log_tail(nd));
}

/* ------------------------------------------------------ auditor helpers */

/* Runs argv as nd's user, requires exit 0, returns stdout (kept in r). */
static const char *ok_out(struct node *nd, struct th_run *r, const char *const *argv)
{
	int rc = tally(nd, r, argv, NULL);
	if (rc != 0)
		fail_msg("tally %s %s on %s: exit %d: %s", argv[1], argv[2], nd->name, rc, r->err);
	return r->out;
}

/* The channel id: the last 32 hex digits of an origin. */
static void channel_of(const char *origin, char ch[33])
{
	assert_int_equal(strlen(origin), TL_ORIGIN_LEN);
	memcpy(ch, origin + TL_ORIGIN_LEN - 32, 33);
}

static int admit_key(struct node *nd, const char *ch, const char *keyhex, const char *name)
{
	struct th_run r = {0};
	const char *a[] = {"tally", "auditor", "admit",  "--channel", ch,
	                   "--key", keyhex,    "--name", name,        NULL};
	int rc = tally(nd, &r, a, NULL);
	th_run_free(&r);
	return rc;
}

static int revoke_key(struct node *nd, const char *ch, const char *keyhex)
{
	struct th_run r = {0};
	const char *a[] = {"tally", "auditor", "revoke", "--channel", ch, "--key", keyhex, NULL};
	int rc = tally(nd, &r, a, NULL);
	th_run_free(&r);
	return rc;
}

/* On the auditor's home: follow channel ch of sup and cus, from src. */
static void follow(struct node *aud, const char *ch, const struct node *sup, const struct node *cus,
                   const struct node *src, const char *os, const char *oc)
{
	struct th_run r = {0};
	char peer[200];
	snprintf(peer, sizeof peer, "%s@%s", src->pkhex, src->addr);
	const char *a[] = {"tally",     "auditor", "follow",     "--book",   aud->name,
	                   "--channel", ch,        "--supplier", sup->pkhex, "--customer",
	                   cus->pkhex,  "--peer",  peer,         NULL};
	const char *out = ok_out(aud, &r, a);
	/* The two origins, the supplier's first: derived, not typed. */
	char want[2 * (TL_ORIGIN_LEN + 1) + 1];
	snprintf(want, sizeof want, "%s\n%s\n", os, oc);
	assert_string_equal(out, want);
	th_run_free(&r);
}

static int log_count(const struct node *nd, const char *needle)
{
	int k = 0;
	char *text = th_read_file(nd->log, NULL);
	for (char *p = text; p && (p = strstr(p, needle)); p++)
		k++;
	free(text);
	return k;
}

struct more_logged {
	const struct node *nd;
	const char *needle;
	int than;
};

static int more_cond(void *ctx)
{
	struct more_logged *m = ctx;
	return log_count(m->nd, m->needle) > m->than;
}

/* Waits until needle is in nd's log more than `than` times. */
static void expect_more(const struct node *nd, const char *needle, int than)
{
	struct more_logged m = {nd, needle, than};
	if (!wait_for(more_cond, &m, limit(60000)))
		fail_msg("'%s' not logged more than %d times by %s:\n%s", needle, than, nd->name,
		         log_tail(nd));
}

/* "refused peer <first 16 hex digits>": the admission refusal line. */
static void refused_needle(const struct node *nd, char *out, size_t cap)
{
	snprintf(out, cap, "refused peer %.16s", nd->pkhex);
}

/* Three nodes: supplier and customer with a channel (and entries both
 * ways), the auditor with its own book and no channel. */
static void three(struct fx *x, struct node **sup, struct node **cus, struct node **aud, char *os,
                  char *oc, char ch[33])
{
	*sup = node_add(x, "sup");
	*cus = node_add(x, "cus");
	*aud = node_add(x, "aud");
	node_start(*sup, NULL);
	node_start(*cus, NULL);
	node_start(*aud, NULL);
	open_pair(*sup, *cus, NULL, os, oc);
	channel_of(os, ch);
	struct conv c = {0};
	conv_add(&c, os, 1, *sup, *cus);
	conv_add(&c, oc, 1, *sup, *cus);
	converge(&c, 0, 30000, "channel set-up");
}

static void append_n(struct fx *x, struct node *nd, const char *origin, const char *tag,
                     size_t from, size_t n)
{
	char *f = jsonl_file(x, tag, from, n);
	append_file(nd, origin, f, n);
	free(f);
}

/* Both feeds of the channel identical (size and root) on a, b and c. */
static void converge3(struct node *a, struct node *b, struct node *c, const char *os,
                      const char *oc, uint64_t min_s, uint64_t min_c, const char *what)
{
	struct conv v = {0};
	conv_add(&v, os, min_s, a, b);
	conv_add(&v, oc, min_c, a, b);
	conv_add(&v, os, min_s, a, c);
	conv_add(&v, oc, min_c, a, c);
	converge(&v, 1, 90000, what);
}

/* --------------------------------------------------------------- tests */

static void test_follow_both_feeds(void **state)
{
	struct fx *x = *state;
	struct node *sup, *cus, *aud;
	char os[TL_ORIGIN_LEN + 1], oc[TL_ORIGIN_LEN + 1], ch[33], path[4200];
	struct th_run r = {0};
	/* More than one relay batch of the customer's feed (2,048 records). */
	const size_t ns = count(40), nc = count(3000);
	three(x, &sup, &cus, &aud, os, oc, ch);
	append_n(x, sup, os, "sup", 0, ns);
	append_n(x, cus, oc, "cus", 0, nc);

	assert_int_equal(admit_key(sup, ch, aud->pkhex, "Audit Firm"), 0);
	/* Admitting again appends nothing. */
	uint64_t before = feed_size(sup, os);
	assert_int_equal(admit_key(sup, ch, aud->pkhex, "Audit Firm"), 0);
	assert_int_equal(feed_size(sup, os), before);
	const char *la[] = {"tally", "--json", "auditor", "list", "--channel", ch, NULL};
	json_t *j = json_loads(ok_out(sup, &r, la), 0, NULL);
	assert_int_equal(json_array_size(j), 1);
	json_t *e = json_array_get(j, 0);
	assert_string_equal(json_string_value(json_object_get(e, "key")), aud->pkhex);
	assert_string_equal(json_string_value(json_object_get(e, "name")), "Audit Firm");
	assert_true(json_is_true(json_object_get(e, "admitted")));
	json_decref(j);

	/* The auditor's node is running: follow makes it dial at once. */
	follow(aud, ch, sup, cus, sup, os, oc);
	converge3(sup, cus, aud, os, oc, ns + 2, nc + 1, "auditor catch-up");
	assert_same(sup, aud, os);
	assert_same(sup, aud, oc);
	assert_same(cus, aud, oc);
	expect_log(sup, "admitted read-only to 1 channel(s) of book sup");
	const char *stj[] = {"tally", "--json", "status", NULL};
	assert_non_null(strstr(ok_out(sup, &r, stj), "\"session\":\"auditor\""));
	assert_non_null(strstr(ok_out(aud, &r, stj), "\"session\":\"following\""));

	/* The auditor's copies are followed feeds: not its own, no receipts. */
	struct tl_store *s = store_ro(aud);
	struct tl_feed *feeds = NULL;
	size_t nf = 0;
	assert_non_null(s);
	assert_int_equal(tl_store_feed_list(s, &feeds, &nf), 0);
	assert_int_equal(nf, 2);
	for (size_t i = 0; i < nf; i++) {
		assert_true(feeds[i].flags & TL_FEED_AUDIT);
		assert_false(feeds[i].flags & TL_FEED_OWN);
		assert_string_equal(feeds[i].book, "aud");
		assert_memory_equal(feeds[i].peer, sup->pk, TL_PUB_LEN);
	}
	free(feeds);
	tl_store_close(s);

	/* Live: new entries on both sides keep arriving. */
	uint64_t s0 = feed_size(sup, os), c0 = feed_size(sup, oc);
	append_n(x, sup, os, "sup2", 0, 5);
	append_n(x, cus, oc, "cus2", 0, 7);
	converge3(sup, cus, aud, os, oc, s0 + 5, c0 + 7, "live entries");

	/* Restarted, the auditor's node dials again and catches up from the
	 * sizes it holds (the relayed feed from a non-zero cursor). */
	node_stop(aud, SIGTERM);
	s0 = feed_size(sup, os);
	c0 = feed_size(sup, oc);
	append_n(x, sup, os, "sup3", 0, 3);
	append_n(x, cus, oc, "cus3", 0, 4);
	node_start(aud, NULL);
	converge3(sup, cus, aud, os, oc, s0 + 3, c0 + 4, "after the auditor's restart");

	/* Read-only: the CLI refuses appends to either followed feed. */
	const char *ap1[] = {"tally",   "feed",   "append", os,  "--kind",
	                     "comment", "--body", "{}",     NULL};
	const char *ap2[] = {"tally",   "feed",   "append", oc,  "--kind",
	                     "comment", "--body", "{}",     NULL};
	assert_int_equal(tally(aud, &r, ap1, NULL), 1);
	assert_non_null(strstr(r.err, os));
	assert_int_equal(tally(aud, &r, ap2, NULL), 1);
	assert_non_null(strstr(r.err, oc));

	/* The admission entry breaks nobody's channel state. */
	const char *st[] = {"tally", "channel", "state", ch, NULL};
	assert_null(strstr(ok_out(cus, &r, st), "finding:"));
	assert_null(strstr(ok_out(sup, &r, st), "finding:"));

	/* The auditor's export verifies on its own. */
	snprintf(path, sizeof path, "%s/audit.json", x->dir);
	const char *ex[] = {"tally", "export", "--channel", ch, "-o", path, NULL};
	ok_out(aud, &r, ex);
	const char *ve[] = {"tally", "--json", "verify", path, NULL};
	assert_int_equal(tally(aud, &r, ve, NULL), 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	char *dump = json_dumps(j, JSON_COMPACT);
	assert_non_null(strstr(dump, os));
	assert_non_null(strstr(dump, oc));
	free(dump);
	json_decref(j);
	const char *vt[] = {"tally", "verify", path, NULL};
	assert_non_null(strstr(ok_out(aud, &r, vt), "VALID"));

	assert_false(log_has(aud, "refused records"));
	assert_false(log_has(aud, "FORK"));
	assert_false(log_has(sup, "cannot relay"));
	th_run_free(&r);
}

static void test_refused_admitted_revoked(void **state)
{
	struct fx *x = *state;
	struct node *sup, *cus, *aud;
	char os[TL_ORIGIN_LEN + 1], oc[TL_ORIGIN_LEN + 1], ch[33], refused[64];
	struct th_run r = {0};
	three(x, &sup, &cus, &aud, os, oc, ch);
	append_n(x, cus, oc, "cus", 0, 10);
	refused_needle(aud, refused, sizeof refused);

	/* Not admitted: each session is refused, nothing is replicated. */
	follow(aud, ch, sup, cus, sup, os, oc);
	expect_more(sup, refused, 1); /* twice: refused, dialled again, refused */
	assert_int_equal(feed_size(aud, os), 0);
	assert_int_equal(feed_size(aud, oc), 0);
	assert_false(log_has(aud, "ingested"));

	/* Admitted: the next session replicates both feeds. */
	assert_int_equal(admit_key(sup, ch, aud->pkhex, "Firm"), 0);
	converge3(sup, cus, aud, os, oc, 3, 11, "after admission");

	/* Revoked: the live session is closed and new ones are refused. */
	int before = log_count(sup, refused);
	assert_int_equal(revoke_key(sup, ch, aud->pkhex), 0);
	expect_log(sup, "admission to book sup revoked: closing its session");
	expect_more(sup, refused, before);
	uint64_t had = feed_size(aud, os);
	append_n(x, sup, os, "late", 0, 3);
	uint64_t now = feed_size(sup, os);
	assert_true(now >= had + 3);
	/* Another refused attempt after the append: it got nothing of it. */
	expect_more(sup, refused, log_count(sup, refused));
	assert_true(feed_size(aud, os) < now);
	assert_true(feed_size(aud, os) <= had);

	/* The log says who had access and when; revoking twice is an error. */
	const char *la[] = {"tally", "--json", "auditor", "list", "--channel", ch, NULL};
	json_t *j = json_loads(ok_out(sup, &r, la), 0, NULL);
	json_t *e = json_array_get(j, 0);
	assert_false(json_is_true(json_object_get(e, "admitted")));
	assert_true(json_integer_value(json_object_get(e, "revoke_seq")) >
	            json_integer_value(json_object_get(e, "admit_seq")));
	json_decref(j);
	assert_int_equal(revoke_key(sup, ch, aud->pkhex), 1);
	/* A party to the channel cannot be admitted as its auditor. */
	assert_int_equal(admit_key(sup, ch, cus->pkhex, "Self"), 1);
	th_run_free(&r);
}

/* ["heads", [[origin, size], ...]] with two feeds. */
static void send_heads2(struct wire *w, const char *o1, uint64_t s1, const char *o2, uint64_t s2)
{
	struct tl_buf m;
	msgpack_packer pk;
	tl_buf_init(&m, 4096);
	msgpack_packer_init(&pk, &m, pack_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, "heads", 5);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, o1, strlen(o1));
	msgpack_pack_uint64(&pk, s1);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, o2, strlen(o2));
	msgpack_pack_uint64(&pk, s2);
	send_frame(w, m.data, m.len, NULL);
	tl_buf_release(&m);
}

/* What the hand-made auditor received of one feed: contiguous records from
 * 0, each batch's checkpoint checked against the author's key. */
struct got {
	const char *origin;
	const uint8_t *author;
	uint64_t size; /* records received, contiguous from 0 */
	int bad;       /* a batch that did not verify */
	int heads;     /* the origin was announced in heads */
	struct tl_merkle_acc acc;
};

static int str_is(const msgpack_object *o, const char *s)
{
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* Checks one recs batch the way a receiver must: chain, signatures, and a
 * checkpoint signed by the author for exactly the batch end whose root is
 * the root of everything so far. */
static void take_recs(struct got *g, const msgpack_object *a)
{
	uint64_t first = a[2].via.u64;
	const msgpack_object *recs = &a[3];
	struct tl_note nt;
	struct tl_checkpoint cp;
	struct tl_vkey vk;
	uint8_t root[TL_HASH_LEN];
	if (first > g->size) {
		g->bad = 1;
		return;
	}
	for (uint32_t i = 0; i < recs->via.array.size; i++) {
		const msgpack_object_bin *b = &recs->via.array.ptr[i].via.bin;
		struct tl_entry e;
		uint8_t leaf[TL_HASH_LEN], comp[64][TL_HASH_LEN];
		unsigned nc;
		if (first + i < g->size)
			continue; /* the overlap record: already held */
		if (tl_record_decode(&e, (const uint8_t *)b->ptr, b->size, NULL) != 0 ||
		    tl_record_verify_sig(&e) != 0 || e.seq != g->size ||
		    memcmp(e.origin.pk, g->author, TL_PUB_LEN) != 0) {
			g->bad = 1;
			return;
		}
		tl_record_leaf_hash(leaf, (const uint8_t *)b->ptr, b->size);
		tl_merkle_acc_push(&g->acc, leaf, comp, &nc);
		g->size++;
	}
	tl_merkle_acc_root(&g->acc, root);
	if (tl_note_parse(&nt, a[4].via.str.ptr, a[4].via.str.size) != 0) {
		g->bad = 1;
		return;
	}
	if (tl_checkpoint_parse(&cp, nt.raw, nt.text_len) != 0 || cp.size != g->size ||
	    strcmp(cp.origin, g->origin) != 0 || memcmp(cp.root, root, TL_HASH_LEN) != 0 ||
	    tl_vkey_from_pub(&vk, g->origin, TL_SIGTYPE_ED25519, g->author) != 0 ||
	    tl_note_verify(&nt, &vk) != 0)
		g->bad = 1;
	tl_note_release(&nt);
}

static void test_readonly_wire(void **state)
{
	struct fx *x = *state;
	struct node *sup, *cus;
	char os[TL_ORIGIN_LEN + 1], oc[TL_ORIGIN_LEN + 1], ch[33], hex[65], want[128];
	struct tl_keypair aud;
	struct wire w;
	size_t got = 0;
	sup = node_add(x, "sup");
	cus = node_add(x, "cus");
	node_start(sup, NULL);
	node_start(cus, NULL);
	open_pair(sup, cus, NULL, os, oc);
	channel_of(os, ch);
	append_n(x, cus, oc, "cus", 0, 20);
	append_n(x, sup, os, "sup", 0, 4);
	struct conv c = {0};
	conv_add(&c, os, 5, sup, cus);
	conv_add(&c, oc, 21, sup, cus);
	converge(&c, 1, 60000, "set-up");

	/* A key not admitted: refused at admission, not one frame sent. */
	assert_int_equal(tl_key_generate(&aud), 0);
	tl_hex_encode(hex, aud.pk, TL_PUB_LEN);
	wire_init(&w, tcp_connect(x, sup->addr));
	assert_int_equal(handshake(&w, &aud, sup->pk), 0);
	assert_true(wait_closed(w.fd, limit(10000), &got));
	assert_int_equal(w.in.len + got, 0);
	snprintf(want, sizeof want, "refused peer %.16s", hex);
	expect_log(sup, want);
	fd_close(x, w.fd);
	wire_release(&w);

	/* Admitted: heads name both feeds; from size 0 both arrive, the
	 * customer's relayed with checkpoints the customer signed. */
	assert_int_equal(admit_key(sup, ch, hex, "hand-made"), 0);
	uint64_t ws = feed_size(sup, os), wc = feed_size(sup, oc);
	wire_init(&w, tcp_connect(x, sup->addr));
	assert_int_equal(handshake(&w, &aud, sup->pk), 0);
	struct got g[2];
	memset(g, 0, sizeof g);
	g[0].origin = os;
	g[0].author = sup->pk;
	g[1].origin = oc;
	g[1].author = cus->pk;
	struct tl_buf pt;
	tl_buf_init(&pt, TL_FRAME_MAX);
	uint64_t end = mono_ms() + limit(30000);
	int sent_heads = 0;
	while ((g[0].size < ws || g[1].size < wc) && next_frame(&w, &pt, end)) {
		msgpack_unpacked u;
		size_t off = 0;
		msgpack_unpacked_init(&u);
		assert_int_equal(msgpack_unpack_next(&u, (const char *)pt.data, pt.len, &off),
		                 MSGPACK_UNPACK_SUCCESS);
		const msgpack_object *o = &u.data;
		assert_true(o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size >= 1);
		const msgpack_object *a = o->via.array.ptr;
		if (str_is(&a[0], "heads")) {
			const msgpack_object *l = &a[1];
			for (uint32_t i = 0; i < l->via.array.size; i++)
				for (int k = 0; k < 2; k++)
					if (str_is(&l->via.array.ptr[i].via.array.ptr[0],
					           g[k].origin))
						g[k].heads = 1;
			assert_int_equal(l->via.array.size, 2);
			if (!sent_heads)
				send_heads2(&w, os, 0, oc, 0);
			sent_heads = 1;
		} else if (str_is(&a[0], "recs")) {
			assert_int_equal(o->via.array.size, 5);
			for (int k = 0; k < 2; k++)
				if (str_is(&a[1], g[k].origin))
					take_recs(&g[k], a);
		}
		msgpack_unpacked_destroy(&u);
	}
	tl_buf_release(&pt);
	assert_true(g[0].heads && g[1].heads);
	assert_false(g[0].bad);
	assert_false(g[1].bad);
	assert_true(g[0].size >= ws);
	assert_true(g[1].size >= wc);
	expect_log(sup, "admitted read-only to 1 channel(s)");

	/* Records on the read-only session: dropped, and logged; the node
	 * stores nothing of them. */
	uint64_t before = feed_size(sup, oc);
	struct tl_buf m;
	msgpack_packer pk;
	tl_buf_init(&m, 4096);
	msgpack_packer_init(&pk, &m, pack_write);
	msgpack_pack_array(&pk, 5);
	msgpack_pack_str_with_body(&pk, "recs", 4);
	msgpack_pack_str_with_body(&pk, oc, TL_ORIGIN_LEN);
	msgpack_pack_uint64(&pk, before);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_bin_with_body(&pk, "x", 1);
	msgpack_pack_str_with_body(&pk, "note", 4);
	send_frame(&w, m.data, m.len, NULL);
	tl_buf_release(&m);
	assert_true(wait_closed(w.fd, limit(10000), NULL));
	expect_log(sup, "sent records on its read-only session: dropping it");
	assert_int_equal(feed_size(sup, oc), before);
	fd_close(x, w.fd);
	wire_release(&w);
	tl_key_wipe(&aud);
}

/* ------------------------------------------- admissions, in the store */

static void append_json(struct tl_store *s, const char *origin, const struct tl_keypair *kp,
                        const char *kind, const char *body_json)
{
	struct tl_buf body;
	char err[128];
	json_t *j = json_loads(body_json, 0, NULL);
	assert_non_null(j);
	tl_buf_init(&body, 4096);
	assert_int_equal(tl_json_to_mp(j, &body, err, sizeof err), 0);
	struct tl_item it = {kind, strlen(kind), body.data, body.len};
	assert_int_equal(
	        tl_feed_append_local(s, origin, kp, &it, 1, 1, 1000, NULL, NULL, NULL, NULL), 0);
	tl_buf_release(&body);
	json_decref(j);
}

/* The latest auditor.* entry for a key decides; malformed ones admit nobody;
 * reading only what was appended since gives what a full read gives. */
static void test_admissions_in_store(void **state)
{
	struct fx *x = *state;
	char sp[4200], err[256], hex[65], upper[65], body[200];
	struct tl_store *s = NULL;
	struct tl_keypair book, other, aud;
	struct tl_auditors *a = NULL, *fresh = NULL;
	struct tl_channel chn;
	struct tl_book b;
	assert_int_equal(tl_key_generate(&book), 0);
	assert_int_equal(tl_key_generate(&other), 0);
	assert_int_equal(tl_key_generate(&aud), 0);
	snprintf(sp, sizeof sp, "%s/store", x->dir);
	assert_int_equal(tl_store_open(&s, sp, 0, 0, err, sizeof err), 0);
	memset(&b, 0, sizeof b);
	snprintf(b.name, sizeof b.name, "sup");
	memcpy(b.pk, book.pk, TL_PUB_LEN);
	assert_int_equal(tl_store_book_add(s, &b), 0);
	assert_int_equal(tl_channel_open(s, "sup", &book, other.pk, "default", NULL, 0, 1000, &chn),
	                 0);
	assert_int_equal(tl_auditors_new(&a), 0);
	assert_int_equal(tl_auditors_refresh(a, s), 0);
	assert_int_equal(tl_auditors_admitted(a, "sup", aud.pk), 0);

	tl_hex_encode(hex, aud.pk, TL_PUB_LEN);
	for (int i = 0; i < 64; i++)
		upper[i] = (char)(hex[i] >= 'a' ? hex[i] - 'a' + 'A' : hex[i]);
	upper[64] = 0;
	/* Malformed admissions: an uppercase key, a short key, a number. */
	snprintf(body, sizeof body, "{\"key\":\"%s\"}", upper);
	append_json(s, chn.origin, &book, TL_AUDITOR_ADMIT, body);
	snprintf(body, sizeof body, "{\"key\":\"%.62s\"}", hex);
	append_json(s, chn.origin, &book, TL_AUDITOR_ADMIT, body);
	append_json(s, chn.origin, &book, TL_AUDITOR_ADMIT, "{\"key\":7}");
	assert_int_equal(tl_auditors_refresh(a, s), 0);
	assert_int_equal(tl_auditors_admitted(a, "sup", aud.pk), 0);

	snprintf(body, sizeof body, "{\"key\":\"%s\",\"name\":\"Firm\"}", hex);
	append_json(s, chn.origin, &book, TL_AUDITOR_ADMIT, body);
	assert_int_equal(tl_auditors_refresh(a, s), 0);
	assert_int_equal(tl_auditors_admitted(a, "sup", aud.pk), 1);
	assert_int_equal(tl_auditors_admitted(a, "other", aud.pk), 0);
	assert_int_equal(tl_auditors_admitted(a, "sup", other.pk), 0);
	struct tl_feed *fv = NULL;
	size_t nf = 0;
	assert_int_equal(tl_auditors_feeds(a, s, "sup", aud.pk, &fv, &nf), 0);
	assert_int_equal(nf, 2);
	assert_string_equal(fv[0].origin, chn.origin);
	assert_string_equal(fv[1].origin, chn.peer_origin);
	free(fv);
	assert_int_equal(tl_auditors_feeds(a, s, "sup", other.pk, &fv, &nf), 0);
	assert_int_equal(nf, 0);
	free(fv);

	snprintf(body, sizeof body, "{\"key\":\"%s\"}", hex);
	append_json(s, chn.origin, &book, TL_AUDITOR_REVOKE, body);
	assert_int_equal(tl_auditors_refresh(a, s), 0);
	assert_int_equal(tl_auditors_admitted(a, "sup", aud.pk), 0);
	snprintf(body, sizeof body, "{\"key\":\"%s\"}", hex);
	append_json(s, chn.origin, &book, TL_AUDITOR_ADMIT, body);
	assert_int_equal(tl_auditors_refresh(a, s), 0);
	assert_int_equal(tl_auditors_admitted(a, "sup", aud.pk), 1);
	/* A full read from scratch agrees with the incremental one. */
	assert_int_equal(tl_auditors_new(&fresh), 0);
	assert_int_equal(tl_auditors_refresh(fresh, s), 0);
	assert_int_equal(tl_auditors_admitted(fresh, "sup", aud.pk), 1);
	tl_auditors_free(fresh);
	tl_auditors_free(a);
	tl_store_close(s);
	tl_key_wipe(&book);
	tl_key_wipe(&other);
	tl_key_wipe(&aud);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_admissions_in_store, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_follow_both_feeds, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_refused_admitted_revoked, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_readonly_wire, setup, teardown),
	};
	if (tl_init() != 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (getenv("TALLY_TEST_FILTER"))
		cmocka_set_test_filter(getenv("TALLY_TEST_FILTER"));
	return cmocka_run_group_tests_name("auditor", tests, NULL, NULL);
}
