/*
 * nodes.c — real tallyd processes for the end-to-end tests; see nodes.h.
 *
 * Moved here from tests/test_node.c, whose copies had spread to other test
 * programs; the behaviour is unchanged.
 */
#include "nodes.h"

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

/* ------------------------------------------------------------- timing */

int th_asan(void)
{
	const char *a = getenv("TALLY_ASAN");
	return a && *a && strcmp(a, "0") != 0;
}

/* Entry counts: a fifth under ASan (about 3x slower, on 2 cores). */
size_t th_count(size_t n)
{
	return th_asan() ? n / 5 : n;
}

/* Time limits: three times longer under ASan. */
unsigned th_limit(unsigned ms)
{
	return th_asan() ? ms * 3 : ms;
}

uint64_t th_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void th_nap(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Polls cond every every_ms until it returns non-zero or timeout_ms pass. */
int th_wait_every(int (*cond)(void *), void *ctx, unsigned timeout_ms, unsigned every_ms)
{
	uint64_t end = th_mono_ms() + timeout_ms;
	for (;;) {
		if (cond(ctx))
			return 1;
		if (th_mono_ms() >= end)
			return 0;
		th_nap(every_ms);
	}
}

int th_wait_for(int (*cond)(void *), void *ctx, unsigned timeout_ms)
{
	return th_wait_every(cond, ctx, timeout_ms, TH_POLL_MS);
}

/* waitpid with a deadline: 1 and *st when the process ended. */
int th_reap(pid_t pid, int *st, unsigned timeout_ms)
{
	uint64_t end = th_mono_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1;
		if (th_mono_ms() >= end)
			return 0;
		th_nap(TH_POLL_MS);
	}
}

/* Stops a process: sig, then SIGKILL if it has not ended in time. Returns
 * the wait status. */
int th_stop_pid(pid_t pid, int sig, unsigned timeout_ms)
{
	int st = 0;
	if (pid <= 0)
		return -1;
	kill(pid, sig);
	if (!th_reap(pid, &st, timeout_ms)) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	return st;
}

/* How many times the node's log says it stopped. */
static int stops_logged(const struct th_node *nd)
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
int th_node_halt(struct th_node *nd, int sig)
{
	int st = 0, before = stops_logged(nd);
	uint64_t start = th_mono_ms(), end = start + th_limit(30000);
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
		uint64_t now = th_mono_ms();
		int lsan_hang = sig == SIGTERM && th_asan() && now - start > 10000 &&
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
		th_nap(TH_POLL_MS);
	}
}

/* ------------------------------------------------------------ fixture */

int th_fx_setup(void **state, const char *tag)
{
	struct th_fx *x = calloc(1, sizeof *x);
	assert_non_null(x);
	x->dir = th_tmpdir(tag);
	assert_non_null(x->dir);
	for (int i = 0; i < TH_MAX_FDS; i++)
		x->fds[i] = -1;
	*state = x;
	return 0;
}

int th_fx_teardown(void **state)
{
	struct th_fx *x = *state;
	for (int i = 0; i < x->nnodes; i++)
		th_node_halt(&x->nodes[i], SIGTERM);
	for (int i = 0; i < x->nbg; i++)
		if (x->bg[i] > 0)
			th_stop_pid(x->bg[i], SIGTERM, 10000);
	for (int i = 0; i < x->nfds; i++)
		if (x->fds[i] >= 0)
			close(x->fds[i]);
	th_tmpdir_done(x->dir);
	free(x);
	return 0;
}

/* ------------------------------------------------------------ processes */

const char *th_tallyd(void)
{
	const char *t = getenv("TALLYD_BIN");
	return t && *t ? t : "build/tallyd";
}

void th_chomp(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = 0;
}

/* The last lines of a node's log, for failure messages (static buffer). */
const char *th_log_tail(const struct th_node *nd)
{
	return th_file_tail(nd->log);
}

int th_log_has(const struct th_node *nd, const char *needle)
{
	char *text = th_read_file(nd->log, NULL);
	int found = text && strstr(text, needle) != NULL;
	free(text);
	return found;
}

struct log_wait {
	const struct th_node *nd;
	const char *needle;
};

static int log_cond(void *ctx)
{
	struct log_wait *w = ctx;
	return th_log_has(w->nd, w->needle);
}

void th_expect_log(const struct th_node *nd, const char *needle)
{
	struct log_wait w = {nd, needle};
	if (!th_wait_for(log_cond, &w, th_limit(10000)))
		fail_msg("'%s' not in the log of %s:\n%s", needle, nd->name, th_log_tail(nd));
}

/* Runs tally as node nd's user; the status is returned, output kept in r. */
int th_node_tally(struct th_node *nd, struct th_run *r, const char *const *argv, const char *in)
{
	const char *env[] = {nd->home_env, nd->pass_env, NULL};
	th_run_free(r);
	assert_int_equal(th_run(r, argv, env, in, in ? strlen(in) : 0, 600), 0);
	return r->status;
}

/* A data directory with one book named name (not started). */
struct th_node *th_node_add(struct th_fx *x, const char *name)
{
	struct th_run r = {0};
	assert_true(x->nnodes < TH_MAX_NODES);
	struct th_node *nd = &x->nodes[x->nnodes++];
	memset(nd, 0, sizeof *nd);
	snprintf(nd->name, sizeof nd->name, "%s", name);
	snprintf(nd->home, sizeof nd->home, "%s/%s", x->dir, name);
	snprintf(nd->log, sizeof nd->log, "%s/%s.log", x->dir, name);
	snprintf(nd->home_env, sizeof nd->home_env, "TALLY_HOME=%s/%s", x->dir, name);
	snprintf(nd->pass_env, sizeof nd->pass_env, "TALLY_PASSPHRASE=%s", TH_PASS);
	const char *a[] = {"tally", "init", "--book", name, NULL};
	if (th_node_tally(nd, &r, a, NULL) != 0)
		fail_msg("tally init %s: %s", name, r.err);
	th_chomp(r.out);
	assert_int_equal(strlen(r.out), 64);
	snprintf(nd->pkhex, sizeof nd->pkhex, "%s", r.out);
	assert_int_equal(th_unhex(nd->pk, sizeof nd->pk, nd->pkhex), TL_PUB_LEN);
	th_run_free(&r);
	return nd;
}

pid_t th_spawn_tallyd(const char *log, const char *home, const char *pass, const char *const *argv)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDWR);
		if (lf < 0 || nul < 0)
			_exit(126);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(lf, 2);
		if (home)
			setenv("TALLY_HOME", home, 1);
		if (pass)
			setenv("TALLY_PASSPHRASE", pass, 1);
		execv(th_tallyd(), (char *const *)argv);
		_exit(127);
	}
	return pid;
}

struct addr_wait {
	pid_t *pid;
	const char *path;
	char *addr;
	size_t cap;
	int *st;
	int died;
};

static int addr_written(void *ctx)
{
	struct addr_wait *w = ctx;
	int st = 0;
	if (waitpid(*w->pid, &st, WNOHANG) == *w->pid) {
		*w->pid = 0;
		w->died = 1;
		if (w->st)
			*w->st = st;
		return 1;
	}
	char *text = th_read_file(w->path, NULL);
	char *nl = text ? strchr(text, '\n') : NULL;
	if (nl && nl != text && (size_t)(nl - text) < w->cap) {
		*nl = 0;
		snprintf(w->addr, w->cap, "%s", text);
	}
	free(text);
	return nl != NULL;
}

int th_wait_addr(pid_t *pid, const char *path, char *addr, size_t cap, unsigned timeout_ms,
                 unsigned every_ms, int *st)
{
	struct addr_wait w = {pid, path, addr, cap, st, 0};
	if (!th_wait_every(addr_written, &w, timeout_ms, every_ms))
		return 0;
	return w.died ? -1 : 1;
}

/*
 * Starts tallyd on nd's directory, stderr appended to nd->log. listen NULL:
 * 127.0.0.1:0, the bound address read back from DIR/tallyd.addr (written
 * after the control socket listens). A restart passes nd->addr to keep the
 * port the counterparty dials.
 */
void th_node_start(struct th_node *nd, const char *listen)
{
	char listen_arg[64], path[4200];
	snprintf(listen_arg, sizeof listen_arg, "%s", listen ? listen : "127.0.0.1:0");
	snprintf(path, sizeof path, "%s/tallyd.addr", nd->home);
	unlink(path); /* left behind by a SIGKILL */
	/* A handshake timeout far beyond any wait here: a connection the node
	 * drops, it drops for what it received, not for the timer. */
	char conf[4200];
	static const char settings[] = "handshake_timeout_ms = 600000\n";
	snprintf(conf, sizeof conf, "%s.conf", nd->home);
	assert_int_equal(th_write_file(conf, settings, strlen(settings)), 0);
	const char *argv[] = {"tallyd",   "--config", conf,    "--home", nd->home,
	                      "--listen", listen_arg, "--log", "debug",  NULL};
	nd->pid = th_spawn_tallyd(nd->log, nd->home, TH_PASS, argv);
	int rc = th_wait_addr(&nd->pid, path, nd->addr, sizeof nd->addr, th_limit(30000),
	                      TH_POLL_MS, NULL);
	if (rc != 1)
		fail_msg("tallyd for %s did not start (%s); log:\n%s", nd->name,
		         rc < 0 ? "exited" : "no tallyd.addr", th_log_tail(nd));
	assert_non_null(strstr(nd->addr, "127.0.0.1:"));
}

/* SIGTERM (clean stop, exit status 0 expected) or SIGKILL. */
void th_node_stop(struct th_node *nd, int sig)
{
	int st = th_node_halt(nd, sig);
	if (sig == SIGKILL) {
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		return;
	}
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("tallyd %s did not stop cleanly on signal %d (status %d); log:\n%s",
		         nd->name, sig, st, th_log_tail(nd));
}

/* ---------------------------------------------------- tally commands */

/*
 * Opens the channel of nd's book with peer's (through the control socket
 * when nd runs), label NULL for the default. with_addr: record where peer
 * listens (the lower key dials).
 */
void th_channel_open_full(struct th_node *nd, const struct th_node *peer, int with_addr,
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
	if (th_node_tally(nd, &r, a, NULL) != 0)
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

/*
 * Opens the channel between two running nodes on both sides, the side with
 * the higher key first: the lower key dials once its own side is open, so
 * the session starts with both sides complete and the set-up of the other
 * tests is the same every run. (The other order lets the dial race the
 * channel_open job; test_channel_on_open_session covers live sessions.)
 */
void th_open_pair(struct th_node *p, struct th_node *q, const char *label, char *op, char *oq)
{
	char t[TL_ORIGIN_LEN + 1];
	struct th_node *hi = memcmp(p->pk, q->pk, TL_PUB_LEN) > 0 ? p : q;
	struct th_node *lo = hi == p ? q : p;
	char *ohi = hi == p ? op : oq, *olo = hi == p ? oq : op;
	th_channel_open_full(hi, lo, 1, label, ohi, t);
	th_channel_open_full(lo, hi, 1, label, olo, t);
	assert_string_equal(t, ohi);
}

/* Writes n statement lines numbered from..from+n-1 ("n" in the body) to a
 * JSONL file; returns its path (free it). */
char *th_jsonl_file(struct th_fx *x, const char *kind, const char *tag, size_t from, size_t n)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s-%zu-%zu.jsonl", x->dir, tag, from, n);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = from; i < from + n; i++)
		fprintf(f,
		        "{\"kind\":\"%s\",\"body\":{\"n\":%zu,\"tag\":\"%s\","
		        "\"amount\":%zu,\"currency\":\"EUR\",\"memo\":\"line %zu from %s, "
		        "padded towards the size of a real statement line\"}}\n",
		        kind, i, tag, i * 100 + 7, i, tag);
	assert_int_equal(fclose(f), 0);
	return strdup(path);
}

/* Appends the JSONL file to origin, in the foreground; one ack line each. */
void th_append_file(struct th_node *nd, const char *origin, const char *path, size_t n)
{
	struct th_run r = {0};
	const char *a[] = {"tally", "feed", "append", origin, "--jsonl", path, NULL};
	if (th_node_tally(nd, &r, a, NULL) != 0)
		fail_msg("append on %s failed (%d): %s", nd->name, r.status, r.err);
	size_t lines = 0;
	for (char *p = r.out; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, n);
	th_run_free(&r);
}

/* ------------------------------------------------------- store reads */

struct tl_store *th_store_ro(const struct th_node *nd)
{
	char sp[4200], err[256];
	struct tl_store *s = NULL;
	snprintf(sp, sizeof sp, "%s/store", nd->home);
	if (tl_store_open(&s, sp, TL_STORE_RDONLY, 0, err, sizeof err) != 0)
		return NULL;
	return s;
}

void th_feed_state(const struct th_node *nd, const char *origin, struct th_fstate *st)
{
	struct tl_feed f;
	memset(st, 0, sizeof *st);
	struct tl_store *s = th_store_ro(nd);
	if (!s)
		return;
	if (tl_store_feed_get(s, origin, &f) == 0 &&
	    tl_store_root(s, &f, f.head.size, st->root) == 0) {
		st->ok = 1;
		st->size = f.head.size;
	}
	tl_store_close(s);
}

uint64_t th_feed_size(const struct th_node *nd, const char *origin)
{
	struct th_fstate st;
	th_feed_state(nd, origin, &st);
	return st.ok ? st.size : 0;
}

/* ------------------------------------------------------- convergence */

void th_conv_add(struct th_conv *c, const char *origin, uint64_t min, struct th_node *a,
                 struct th_node *b)
{
	assert_true(c->nw < TH_MAX_WATCH);
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
	struct th_conv *c = ctx;
	int ok = 1, same = 1;
	for (int i = 0; i < c->nw; i++) {
		struct th_fstate a, b;
		th_feed_state(c->w[i].on[0], c->w[i].origin, &a);
		if (!a.ok || a.size < c->w[i].min)
			ok = 0;
		for (int k = 1; k < c->w[i].n && ok; k++) {
			th_feed_state(c->w[i].on[k], c->w[i].origin, &b);
			if (!b.ok || b.size != a.size || memcmp(a.root, b.root, TL_HASH_LEN) != 0)
				ok = 0;
		}
		if (a.size != c->w[i].last)
			same = 0;
		c->w[i].last = a.size;
	}
	uint64_t now = th_mono_ms();
	if (!ok || !same) {
		c->since = now;
		return 0;
	}
	return now - c->since >= c->stable_ms;
}

static void conv_fail(struct th_conv *c, const char *what)
{
	char msg[4096];
	size_t len = 0;
	for (int i = 0; i < c->nw && len < sizeof msg - 200; i++)
		for (int k = 0; k < c->w[i].n && len < sizeof msg - 200; k++)
			len += (size_t)snprintf(
			        msg + len, sizeof msg - len,
			        "  feed %.16s…/%.8s… on %s: %llu entries (want >= %llu)\n",
			        c->w[i].origin + 9, c->w[i].origin + 9 + 65, c->w[i].on[k]->name,
			        (unsigned long long)th_feed_size(c->w[i].on[k], c->w[i].origin),
			        (unsigned long long)c->w[i].min);
	fail_msg("%s: no convergence\n%s--- log of %s:\n%s", what, msg, c->w[0].on[0]->name,
	         th_log_tail(c->w[0].on[0]));
}

/* Waits until the watched feeds agree everywhere; stable: also unchanged
 * for longer than a receipt interval (1 s) so that the state is final. */
void th_converge(struct th_conv *c, int stable, unsigned timeout_ms, const char *what)
{
	c->stable_ms = stable ? (th_asan() ? 3000 : 1500) : 0;
	c->since = th_mono_ms();
	for (int i = 0; i < c->nw; i++)
		c->w[i].last = UINT64_MAX;
	if (!th_wait_for(conv_check, c, th_limit(timeout_ms)))
		conv_fail(c, what);
}

/* The four comparisons: both feeds of a channel, same size and root on
 * both nodes. */
void th_assert_same(struct th_node *a, struct th_node *b, const char *origin)
{
	struct th_fstate sa, sb;
	th_feed_state(a, origin, &sa);
	th_feed_state(b, origin, &sb);
	assert_true(sa.ok && sb.ok);
	assert_int_equal(sa.size, sb.size);
	assert_memory_equal(sa.root, sb.root, TL_HASH_LEN);
}

/* -------------------------------------------------- a hand-made peer */

int th_tcp_connect(struct th_fx *x, const char *addr)
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
	assert_true(x->nfds < TH_MAX_FDS);
	x->fds[x->nfds++] = fd;
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

void th_fd_close(struct th_fx *x, int fd)
{
	for (int i = 0; i < x->nfds; i++)
		if (x->fds[i] == fd)
			x->fds[i] = -1;
	close(fd);
}

int th_send_all(int fd, const void *data, size_t len)
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
ssize_t th_recv_some(int fd, struct tl_buf *in, uint64_t deadline)
{
	for (;;) {
		uint64_t now = th_mono_ms();
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
int th_wait_closed(int fd, unsigned timeout_ms, size_t *got)
{
	struct tl_buf in;
	uint64_t end = th_mono_ms() + timeout_ms;
	int closed = 0;
	tl_buf_init(&in, 1u << 30);
	if (got)
		*got = 0;
	for (;;) {
		ssize_t r = th_recv_some(fd, &in, end);
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

void th_wire_init(struct th_wire *w, int fd)
{
	memset(w, 0, sizeof *w);
	w->fd = fd;
	tl_buf_init(&w->in, TL_FRAME_MAX + TL_FRAME_OVERHEAD + (1u << 20));
}

void th_wire_release(struct th_wire *w)
{
	tl_buf_release(&w->in);
	tl_session_wipe(&w->s);
}

void th_hello(uint8_t out[4 + TL_PUB_LEN], const uint8_t target[TL_PUB_LEN])
{
	memcpy(out, "TLYH", 4);
	memcpy(out + 4, target, TL_PUB_LEN);
}

/*
 * Dials as book me toward target's book on the node: hello, then the three
 * handshake messages. 0 when our side is done (the session keys are in
 * w->s); what the node sent after its m2 stays in w->in.
 */
int th_handshake(struct th_wire *w, const struct tl_keypair *me, const uint8_t target[TL_PUB_LEN])
{
	uint8_t h[4 + TL_PUB_LEN];
	struct tl_hs *hs = NULL;
	struct tl_buf out;
	int rc;
	th_hello(h, target);
	tl_buf_init(&out, 4096);
	if ((rc = tl_hs_new(&hs, TL_HS_INITIATOR, me, target)) != 0 ||
	    (rc = tl_hs_start(hs, &out)) != 0)
		goto done;
	if (th_send_all(w->fd, h, sizeof h) != 0 || th_send_all(w->fd, out.data, out.len) != 0) {
		rc = TL_EIO;
		goto done;
	}
	uint64_t end = th_mono_ms() + th_limit(10000);
	while (!tl_hs_done(hs)) {
		size_t used = 0;
		tl_buf_reset(&out);
		if (w->in.len) {
			if ((rc = tl_hs_step(hs, w->in.data, w->in.len, &used, &out)) != 0)
				goto done;
			memmove(w->in.data, w->in.data + used, w->in.len - used);
			w->in.len -= used;
			if (out.len && th_send_all(w->fd, out.data, out.len) != 0) {
				rc = TL_EIO;
				goto done;
			}
			if (tl_hs_done(hs))
				break;
		}
		if (th_recv_some(w->fd, &w->in, end) <= 0) {
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
void th_send_frame(struct th_wire *w, const uint8_t *msg, size_t len, struct tl_buf *copy)
{
	struct tl_buf f;
	tl_buf_init(&f, TL_FRAME_MAX + TL_FRAME_OVERHEAD);
	assert_int_equal(tl_session_seal(&w->s, msg, len, &f), 0);
	assert_int_equal(th_send_all(w->fd, f.data, f.len), 0);
	if (copy) {
		tl_buf_reset(copy);
		assert_int_equal(tl_buf_add(copy, f.data, f.len), 0);
	}
	tl_buf_release(&f);
}

/* The next frame from the node, opened: 1; 0 on close or timeout. */
int th_next_frame(struct th_wire *w, struct tl_buf *pt, uint64_t deadline)
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
		if (th_recv_some(w->fd, &w->in, deadline) <= 0)
			return 0;
	}
}

int th_pack_write(void *data, const char *buf, size_t len)
{
	return tl_buf_add(data, buf, len) == 0 ? 0 : -1;
}

void th_cosign_stored(const char *home, const char *origin, uint64_t size, uint64_t t,
                      const struct tl_vkey *wv, const struct tl_keypair *wk, int n)
{
	struct tl_store *s;
	struct tl_feed f;
	struct tl_buf note, out;
	struct tl_note nt;
	uint64_t got;
	char dir[4300], err[256];

	snprintf(dir, sizeof dir, "%s/store", home);
	assert_int_equal(tl_store_open(&s, dir, 0, 0, err, sizeof err), 0);
	assert_int_equal(tl_store_feed_get(s, origin, &f), 0);
	tl_buf_init(&note, TL_NOTE_MAX);
	tl_buf_init(&out, TL_NOTE_MAX);
	assert_int_equal(tl_store_checkpoint_get(s, &f, size, &note, &got), 0);
	assert_int_equal(got, size);
	memset(&nt, 0, sizeof nt);
	assert_int_equal(tl_note_parse(&nt, (const char *)note.data, note.len), 0);
	assert_int_equal(tl_buf_add(&out, note.data, note.len), 0);
	for (int w = 0; w < n; w++)
		assert_int_equal(tl_cosig_sign(&out, nt.raw, nt.text_len, t, wv[w].name, &wk[w]), 0);
	tl_note_release(&nt);
	assert_int_equal(
	        tl_store_checkpoint_merge(s, &f, size, (const char *)out.data, out.len, NULL, NULL),
	        0);
	tl_buf_release(&note);
	tl_buf_release(&out);
	tl_store_close(s);
}
