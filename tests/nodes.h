/*
 * nodes.h — real tallyd processes for the end-to-end test programs.
 *
 * A fixture (struct th_fx) owns a temp directory with one data directory
 * per node, the nodes started in it, background tally commands and client
 * sockets; th_fx_teardown stops and reaps all of them, also when an
 * assertion failed. Every wait is a bounded poll of a condition. With
 * TALLY_ASAN set, counts shrink and time limits grow; TALLY_TEST_KEEP=1
 * keeps each test's directory (node logs, stores) and prints its path.
 *
 * Also here: reads of a node's store opened read-only (LMDB readers never
 * block the daemon's writer), convergence of feeds across nodes, and a
 * hand-made peer that speaks the wire protocol (hello, tl_hs_* handshake,
 * tl_session frames).
 */
#ifndef TL_NODES_H
#define TL_NODES_H

#include <sys/types.h>

#include "harness.h"
#include "node/tl_node.h"

#define TH_PASS      "correct horse battery staple" /* every book's passphrase */
#define TH_MAX_NODES 3
#define TH_MAX_PIDS  16
#define TH_MAX_FDS   16
#define TH_MAX_WATCH 8
#define TH_POLL_MS   20

/* ------------------------------------------------------------- timing */

/* 1 when TALLY_ASAN is set (and not "0"). */
int th_asan(void);
/* Entry counts: a fifth under ASan (about 3x slower, on 2 cores). */
size_t th_count(size_t n);
/* Time limits: three times longer under ASan. */
unsigned th_limit(unsigned ms);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t th_mono_ms(void);
/* Sleeps ms milliseconds (resumed after signals). */
void th_nap(unsigned ms);
/* Polls cond every every_ms until it returns non-zero (1) or timeout_ms
 * pass (0). */
int th_wait_every(int (*cond)(void *), void *ctx, unsigned timeout_ms, unsigned every_ms);
/* th_wait_every at TH_POLL_MS. */
int th_wait_for(int (*cond)(void *), void *ctx, unsigned timeout_ms);
/* waitpid with a deadline: 1 and *st when the process ended, 0 on timeout. */
int th_reap(pid_t pid, int *st, unsigned timeout_ms);
/* Stops a process: sig, then SIGKILL if it has not ended in timeout_ms.
 * Returns the wait status, -1 if it had to be killed. */
int th_stop_pid(pid_t pid, int sig, unsigned timeout_ms);

/* ------------------------------------------------------------ fixture */

/* A node: a data directory with one book of the same name. */
struct th_node {
	char name[32];
	char home[4096];
	char log[4200]; /* tallyd's stderr (and background tally commands') */
	char home_env[4200];
	char pass_env[128];
	char pkhex[65];
	uint8_t pk[TL_PUB_LEN];
	char addr[64]; /* "127.0.0.1:PORT" once started; kept for restarts */
	pid_t pid;
};

struct th_fx {
	char *dir;
	struct th_node nodes[TH_MAX_NODES];
	int nnodes;
	pid_t bg[TH_MAX_PIDS]; /* tally commands run in the background */
	int nbg;
	int fds[TH_MAX_FDS]; /* client sockets */
	int nfds;
};

/* cmocka setup: a fresh fixture in *state, its directory named after tag. */
int th_fx_setup(void **state, const char *tag);
/* cmocka teardown: stops every node (SIGTERM) and background command,
 * closes the sockets, removes the directory (unless TALLY_TEST_KEEP). */
int th_fx_teardown(void **state);

/* ---------------------------------------------------------- processes */

/* Path of the tallyd binary ($TALLYD_BIN or build/tallyd). */
const char *th_tallyd(void);
/* Strips trailing newlines (and carriage returns) in place. */
void th_chomp(char *s);
/* The last lines of a node's log, for failure messages (static buffer). */
const char *th_log_tail(const struct th_node *nd);
/* 1 if the node's log contains needle. */
int th_log_has(const struct th_node *nd, const char *needle);
/* Waits (10 s, th_limit) for needle in the node's log; fails the test with
 * the log's tail otherwise. */
void th_expect_log(const struct th_node *nd, const char *needle);
/* Runs tally as node nd's user (TALLY_HOME, TALLY_PASSPHRASE) with optional
 * stdin text; the exit status is returned, output kept in r (freed first). */
int th_node_tally(struct th_node *nd, struct th_run *r, const char *const *argv, const char *in);
/* A data directory with one book named name (not started): `tally init`,
 * pkhex and pk filled in. */
struct th_node *th_node_add(struct th_fx *x, const char *name);
/*
 * Forks tallyd ($TALLYD_BIN) with argv (argv[0] "tallyd", NULL-terminated):
 * stdin and stdout on /dev/null, stderr appended to log, and in the child
 * TALLY_HOME=home and TALLY_PASSPHRASE=pass unless NULL. Returns the pid.
 */
pid_t th_spawn_tallyd(const char *log, const char *home, const char *pass, const char *const *argv);
/*
 * Polls (every every_ms, up to timeout_ms) for the address file a starting
 * tallyd writes (tallyd.addr, witness.addr: "HOST:PORT\n"): 1 when it has a
 * first line, copied to addr if it fits cap; 0 on timeout; -1 if *pid
 * exited first (reaped: *pid set to 0, its wait status in *st if not NULL).
 */
int th_wait_addr(pid_t *pid, const char *path, char *addr, size_t cap, unsigned timeout_ms,
                 unsigned every_ms, int *st);
/*
 * Starts tallyd on nd's directory, stderr appended to nd->log, with a
 * handshake timeout far beyond any wait here (a connection the node drops,
 * it drops for what it received, not for the timer). listen NULL:
 * 127.0.0.1:0, the bound address read back from DIR/tallyd.addr (written
 * after the control socket listens) into nd->addr. A restart passes
 * nd->addr to keep the port the counterparty dials.
 */
void th_node_start(struct th_node *nd, const char *listen);
/*
 * Signals a node and reaps it: its wait status, or -1 if it had to be
 * killed. Under ASan a LeakSanitizer hang at exit after the node logged
 * "stopped" counts as a clean exit (see nodes.c).
 */
int th_node_halt(struct th_node *nd, int sig);
/* SIGTERM (clean stop, exit status 0 required) or SIGKILL. */
void th_node_stop(struct th_node *nd, int sig);

/* ------------------------------------------------------ tally commands */

/*
 * Opens the channel of nd's book with peer's (through the control socket
 * when nd runs), label NULL for the default. with_addr: record where peer
 * listens (the lower key dials). origin and peer_origin receive
 * TL_ORIGIN_LEN + 1 bytes.
 */
void th_channel_open_full(struct th_node *nd, const struct th_node *peer, int with_addr,
                          const char *label, char *origin, char *peer_origin);
/*
 * Opens the channel between two running nodes on both sides, the side with
 * the higher key first: the lower key dials once its own side is open, so
 * the session starts with both sides complete and the set-up is the same
 * every run. op and oq receive p's and q's own origins.
 */
void th_open_pair(struct th_node *p, struct th_node *q, const char *label, char *op, char *oq);
/* Writes n entries of kind numbered from..from+n-1 ("n" in the body) to a
 * JSONL file in the fixture's directory; returns its path (free it). */
char *th_jsonl_file(struct th_fx *x, const char *kind, const char *tag, size_t from, size_t n);
/* Appends the JSONL file (n entries) to origin, in the foreground; requires
 * exit 0 and one ack line each. */
void th_append_file(struct th_node *nd, const char *origin, const char *path, size_t n);

/* --------------------------------------------------------- store reads */

struct th_fstate {
	int ok;
	uint64_t size;
	uint8_t root[TL_HASH_LEN];
};

/* The node's store opened read-only, NULL if it cannot be opened. */
struct tl_store *th_store_ro(const struct th_node *nd);
/* Size and root of a feed on the node; st->ok 0 if it has none. */
void th_feed_state(const struct th_node *nd, const char *origin, struct th_fstate *st);
/* A feed's size on the node, 0 if it has none. */
uint64_t th_feed_size(const struct th_node *nd, const char *origin);

/* ------------------------------------------------------- convergence */

/* Feeds that must be identical (size and root) on every listed node, at
 * least min entries, and unchanged for stable_ms. Zero-initialise, then
 * th_conv_add each feed. */
struct th_conv {
	int nw;
	struct {
		const char *origin;
		struct th_node *on[TH_MAX_NODES];
		int n;
		uint64_t min;
		uint64_t last;
	} w[TH_MAX_WATCH];
	unsigned stable_ms;
	uint64_t since;
};

/* Watches origin: at least min entries, the same on a and b. */
void th_conv_add(struct th_conv *c, const char *origin, uint64_t min, struct th_node *a,
                 struct th_node *b);
/* Waits until the watched feeds agree everywhere; stable: also unchanged
 * for longer than a receipt interval (1 s) so that the state is final.
 * Fails the test (what, sizes, log) after timeout_ms (th_limit). */
void th_converge(struct th_conv *c, int stable, unsigned timeout_ms, const char *what);
/* The feed has the same size and root on both nodes. */
void th_assert_same(struct th_node *a, struct th_node *b, const char *origin);

/* ------------------------------------------------- a hand-made peer */

struct th_wire {
	int fd;
	struct tl_session s;
	struct tl_buf in;
	int have_session;
};

/* A TCP connection to "HOST:PORT", closed by teardown. */
int th_tcp_connect(struct th_fx *x, const char *addr);
/* Closes a connection from th_tcp_connect (and forgets it). */
void th_fd_close(struct th_fx *x, int fd);
/* Sends all of data (no SIGPIPE): 0, or -1. */
int th_send_all(int fd, const void *data, size_t len);
/* Reads what is there into in (waiting until deadline, th_mono_ms): > 0
 * bytes, 0 at EOF or on a reset, -1 on timeout. */
ssize_t th_recv_some(int fd, struct tl_buf *in, uint64_t deadline);
/* 1 if the node closes the connection within timeout_ms; whatever it sends
 * meanwhile is discarded and counted in *got (may be NULL). */
int th_wait_closed(int fd, unsigned timeout_ms, size_t *got);
void th_wire_init(struct th_wire *w, int fd);
void th_wire_release(struct th_wire *w);
/* The hello a dialer sends first: "TLYH" and the target book's key. */
void th_hello(uint8_t out[4 + TL_PUB_LEN], const uint8_t target[TL_PUB_LEN]);
/*
 * Dials as book me toward target's book on the node: hello, then the three
 * handshake messages. 0 when our side is done (the session keys are in
 * w->s); what the node sent after its m2 stays in w->in.
 */
int th_handshake(struct th_wire *w, const struct tl_keypair *me, const uint8_t target[TL_PUB_LEN]);
/* Seals msg as the next frame; the sealed bytes also land in copy (if not
 * NULL) so that a test can replay them. */
void th_send_frame(struct th_wire *w, const uint8_t *msg, size_t len, struct tl_buf *copy);
/* The next frame from the node, opened into pt: 1; 0 on close or timeout. */
int th_next_frame(struct th_wire *w, struct tl_buf *pt, uint64_t deadline);
/* msgpack_packer write callback appending to a struct tl_buf. */
int th_pack_write(void *data, const char *buf, size_t len);

/*
 * Cosigns the stored checkpoint of (origin, size) in the store under home
 * with n witness keys (wv[i] names wk[i]) at time t, and merges the lines
 * into the store as a node does with a witness's answer.
 */
void th_cosign_stored(const char *home, const char *origin, uint64_t size, uint64_t t,
                      const struct tl_vkey *wv, const struct tl_keypair *wk, int n);

#endif
