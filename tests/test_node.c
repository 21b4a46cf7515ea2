/*
 * test_node.c — end-to-end tests of tallyd: real daemons on 127.0.0.1 with
 * kernel-picked ports, replication between them, crashes and restarts, and
 * hostile peers that speak the wire protocol by hand (hello, tl_hs_*
 * handshake, tl_session frames carrying canonical MessagePack).
 *
 * State is read from each node's store opened read-only (LMDB readers never
 * block the daemon's writer). Every wait is a bounded poll of a condition;
 * every process started here is stopped and reaped by teardown, also when an
 * assertion fails. With TALLY_ASAN set, counts shrink and time limits grow.
 *
 * TALLY_TEST_FILTER=test_hostile* runs matching tests only; TALLY_TEST_KEEP=1
 * keeps each test's directory (node logs, stores) and prints its path.
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

#include "node/tl_node.h"

static int setup(void **state)
{
	return th_fx_setup(state, "node");
}

static int teardown(void **state)
{
	return th_fx_teardown(state);
}

/* ------------------------------------------------------ tally commands */

static void channel_open(struct th_node *nd, const struct th_node *peer, int with_addr,
                         char *origin, char *peer_origin)
{
	th_channel_open_full(nd, peer, with_addr, NULL, origin, peer_origin);
}

static void channel_open_label(struct th_node *nd, const struct th_node *peer, const char *label,
                               char *origin, char *peer_origin)
{
	th_channel_open_full(nd, peer, 1, label, origin, peer_origin);
}

/* th_append_file in the background; reap it with bg_wait. */
static pid_t append_bg(struct th_fx *x, struct th_node *nd, const char *origin, const char *path)
{
	assert_true(x->nbg < TH_MAX_PIDS);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		int lf = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (nul < 0 || lf < 0)
			_exit(126);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(lf, 2);
		setenv("TALLY_HOME", nd->home, 1);
		setenv("TALLY_PASSPHRASE", TH_PASS, 1);
		execl(th_tally(), "tally", "feed", "append", origin, "--jsonl", path, (char *)NULL);
		_exit(127);
	}
	x->bg[x->nbg++] = pid;
	return pid;
}

static void bg_wait(struct th_fx *x, pid_t pid)
{
	int st = 0;
	int done = th_reap(pid, &st, th_limit(120000));
	for (int i = 0; i < x->nbg; i++)
		if (x->bg[i] == pid && done)
			x->bg[i] = 0;
	if (!done)
		fail_msg("background tally %d did not finish in time", (int)pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("background tally %d failed with status %d", (int)pid, st);
}

/* --------------------------------------------------------- store reads */

/* What a feed holds: statements (numbered n = 0, 1, ... in order, each
 * once) and seen receipts about a given counterparty feed. */
struct census {
	const char *seen_feed;
	uint64_t statements;
	int out_of_order;
	uint64_t seen;      /* receipts naming seen_feed */
	uint64_t seen_size; /* the largest size they acknowledge */
	int receipt_ok;     /* every receipt carries a checkpoint */
	uint64_t records;
};

static int census_rec(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                      const uint8_t leaf[TL_HASH_LEN])
{
	struct census *c = ctx;
	struct tl_entry e;
	(void)seq;
	(void)leaf;
	if (tl_record_decode(&e, rec, len, NULL) != 0)
		return TL_EFORMAT;
	c->records++;
	json_t *b = tl_mp_to_json(e.body, e.body_len);
	if (!b)
		return TL_EFORMAT;
	if (e.kind_len == 4 && memcmp(e.kind, "seen", 4) == 0) {
		const char *feed = json_string_value(json_object_get(b, "feed"));
		json_int_t size = json_integer_value(json_object_get(b, "size"));
		const char *cp = json_string_value(json_object_get(b, "checkpoint"));
		if (feed && c->seen_feed && strcmp(feed, c->seen_feed) == 0) {
			c->seen++;
			if ((uint64_t)size > c->seen_size)
				c->seen_size = (uint64_t)size;
			if (!cp || !strstr(cp, c->seen_feed))
				c->receipt_ok = 0;
		}
	} else if (e.kind_len == 9 && memcmp(e.kind, "statement", 9) == 0) {
		json_int_t n = json_integer_value(json_object_get(b, "n"));
		if ((uint64_t)n != c->statements)
			c->out_of_order = 1;
		c->statements++;
	}
	json_decref(b);
	return 0;
}

static void census(const struct th_node *nd, const char *origin, const char *seen_feed,
                   struct census *c)
{
	struct tl_feed f;
	memset(c, 0, sizeof *c);
	c->seen_feed = seen_feed;
	c->receipt_ok = 1;
	struct tl_store *s = th_store_ro(nd);
	assert_non_null(s);
	assert_int_equal(tl_store_feed_get(s, origin, &f), 0);
	assert_int_equal(tl_store_scan(s, &f, 0, f.head.size, census_rec, c), 0);
	tl_store_close(s);
	assert_int_equal(c->records, f.head.size);
}

/* Every feed of a store with its size and root, to show nothing changed. */
struct snap {
	size_t n;
	char origin[16][TL_ORIGIN_LEN + 1];
	uint64_t size[16];
	uint8_t root[16][TL_HASH_LEN];
	size_t npeers;
};

static void snapshot(const struct th_node *nd, struct snap *sn)
{
	struct tl_feed *feeds = NULL;
	struct tl_peer *peers = NULL;
	size_t nf = 0;
	memset(sn, 0, sizeof *sn);
	struct tl_store *s = th_store_ro(nd);
	assert_non_null(s);
	assert_int_equal(tl_store_feed_list(s, &feeds, &nf), 0);
	assert_true(nf <= 16);
	for (size_t i = 0; i < nf; i++) {
		memcpy(sn->origin[i], feeds[i].origin, TL_ORIGIN_LEN + 1);
		sn->size[i] = feeds[i].head.size;
		assert_int_equal(tl_store_root(s, &feeds[i], feeds[i].head.size, sn->root[i]), 0);
	}
	sn->n = nf;
	assert_int_equal(tl_store_peer_list(s, &peers, &sn->npeers), 0);
	free(peers);
	free(feeds);
	tl_store_close(s);
}

static void snap_equal(const struct snap *a, const struct snap *b)
{
	assert_int_equal(a->n, b->n);
	assert_int_equal(a->npeers, b->npeers);
	for (size_t i = 0; i < a->n; i++) {
		assert_string_equal(a->origin[i], b->origin[i]);
		assert_int_equal(a->size[i], b->size[i]);
		assert_memory_equal(a->root[i], b->root[i], TL_HASH_LEN);
	}
}

/* ------------------------------------------------------- convergence */

/* A side's own feed after the exchange: its n statements in order, and
 * seen receipts acknowledging at least peer_min entries of peer_origin. */
static void assert_feed(struct th_node *nd, const char *origin, uint64_t n, const char *peer_origin,
                        uint64_t peer_min)
{
	struct census c;
	census(nd, origin, peer_origin, &c);
	assert_int_equal(c.statements, n);
	assert_false(c.out_of_order);
	if (peer_origin) {
		if (c.seen == 0 || c.seen_size < peer_min)
			fail_msg("%s: %llu seen receipts up to size %llu, want >= %llu", nd->name,
			         (unsigned long long)c.seen, (unsigned long long)c.seen_size,
			         (unsigned long long)peer_min);
		assert_true(c.receipt_ok);
	}
}

/* ------------------------------------------------- a hand-made peer */

/* "127.0.0.1:PORT" of our end, as the node logs it. */
static void local_name(int fd, char *out, size_t cap)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(out, cap, "127.0.0.1:%d", ntohs(sa.sin_port));
}

/* ["heads", [[origin, size]]] */
static void send_heads(struct th_wire *w, const char *origin, uint64_t size)
{
	struct tl_buf m;
	msgpack_packer pk;
	tl_buf_init(&m, 4096);
	msgpack_packer_init(&pk, &m, th_pack_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, "heads", 5);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, origin, strlen(origin));
	msgpack_pack_uint64(&pk, size);
	th_send_frame(w, m.data, m.len, NULL);
	tl_buf_release(&m);
}

/* ["recs", origin, first, [rec...], note] */
static void send_recs(struct th_wire *w, const char *origin, uint64_t first, struct tl_buf *recs,
                      size_t n, const struct tl_buf *note)
{
	struct tl_buf m;
	msgpack_packer pk;
	tl_buf_init(&m, TL_FRAME_MAX);
	msgpack_packer_init(&pk, &m, th_pack_write);
	msgpack_pack_array(&pk, 5);
	msgpack_pack_str_with_body(&pk, "recs", 4);
	msgpack_pack_str_with_body(&pk, origin, strlen(origin));
	msgpack_pack_uint64(&pk, first);
	msgpack_pack_array(&pk, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		msgpack_pack_bin_with_body(&pk, recs[i].data, recs[i].len);
	msgpack_pack_str_with_body(&pk, (const char *)note->data, note->len);
	size_t where = 0;
	assert_int_equal(tl_mp_check(m.data, m.len, &where), 0); /* canonical */
	th_send_frame(w, m.data, m.len, NULL);
	tl_buf_release(&m);
}

static void read_key(const struct th_node *nd, struct tl_keypair *kp)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/keys/%s.key", nd->home, nd->name);
	assert_int_equal(tl_keyfile_read(path, TH_PASS, strlen(TH_PASS), kp), 0);
}

/* VmRSS of a process in KiB, 0 if unknown. */
static unsigned long rss_kib(pid_t pid)
{
	char path[64], *text, *p;
	unsigned long kb = 0;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	text = th_read_file(path, NULL);
	if (text && (p = strstr(text, "VmRSS:")))
		kb = strtoul(p + 6, NULL, 10);
	free(text);
	return kb;
}

/* ---------------------------------------------------------------- tests */

/* Two running nodes with a channel opened on both sides. */
static void pair_up(struct th_fx *x, struct th_node **a, struct th_node **b, char *oa, char *ob)
{
	*a = th_node_add(x, "alpha");
	*b = th_node_add(x, "bravo");
	th_node_start(*a, NULL);
	th_node_start(*b, NULL);
	th_open_pair(*a, *b, NULL, oa, ob);
	/* Both feed.open entries cross once the session is up. */
	struct th_conv c = {0};
	th_conv_add(&c, oa, 1, *a, *b);
	th_conv_add(&c, ob, 1, *a, *b);
	th_converge(&c, 0, 30000, "channel set-up");
}

static void test_two_nodes(void **state)
{
	struct th_fx *x = *state;
	struct th_node *a, *b;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1];
	const size_t n = th_count(10000);
	pair_up(x, &a, &b, oa, ob);

	char *fa = th_jsonl_file(x, "statement", "alpha", 0, n),
	     *fb = th_jsonl_file(x, "statement", "bravo", 0, n);
	pid_t pa = append_bg(x, a, oa, fa), pb = append_bg(x, b, ob, fb);
	bg_wait(x, pa);
	bg_wait(x, pb);
	free(fa);
	free(fb);

	/* feed.open + n statements + at least one seen receipt on each side. */
	struct th_conv c = {0};
	th_conv_add(&c, oa, n + 2, a, b);
	th_conv_add(&c, ob, n + 2, a, b);
	th_converge(&c, 1, 60000, "two nodes");
	th_assert_same(a, b, oa);
	th_assert_same(a, b, ob);
	/* Each side acknowledged everything the other wrote, in its own feed. */
	assert_feed(a, oa, n, ob, n + 1);
	assert_feed(b, ob, n, oa, n + 1);
	/* The copies hold the same statements, once each, in order. */
	assert_feed(b, oa, n, NULL, 0);
	assert_feed(a, ob, n, NULL, 0);
	assert_false(th_log_has(a, "FORK"));
	assert_false(th_log_has(b, "refused records"));
}

static void test_three_nodes(void **state)
{
	struct th_fx *x = *state;
	char ab[TL_ORIGIN_LEN + 1], ac[TL_ORIGIN_LEN + 1], ba[TL_ORIGIN_LEN + 1],
	        ca[TL_ORIGIN_LEN + 1];
	const size_t n = th_count(3000);
	struct th_node *a = th_node_add(x, "alpha");
	struct th_node *b = th_node_add(x, "bravo");
	struct th_node *c = th_node_add(x, "charlie");
	th_node_start(a, NULL);
	th_node_start(b, NULL);
	th_node_start(c, NULL);
	/* One book on A, two channels. */
	th_open_pair(a, b, NULL, ab, ba);
	th_open_pair(a, c, NULL, ac, ca);
	assert_string_not_equal(ab, ac);

	char *f1 = th_jsonl_file(x, "statement", "ab", 0, n),
	     *f2 = th_jsonl_file(x, "statement", "ac", 0, n);
	char *f3 = th_jsonl_file(x, "statement", "ba", 0, n),
	     *f4 = th_jsonl_file(x, "statement", "ca", 0, n);
	pid_t p1 = append_bg(x, a, ab, f1), p2 = append_bg(x, a, ac, f2);
	pid_t p3 = append_bg(x, b, ba, f3), p4 = append_bg(x, c, ca, f4);
	bg_wait(x, p1);
	bg_wait(x, p2);
	bg_wait(x, p3);
	bg_wait(x, p4);
	free(f1);
	free(f2);
	free(f3);
	free(f4);

	struct th_conv cv = {0};
	th_conv_add(&cv, ab, n + 2, a, b);
	th_conv_add(&cv, ba, n + 2, a, b);
	th_conv_add(&cv, ac, n + 2, a, c);
	th_conv_add(&cv, ca, n + 2, a, c);
	th_converge(&cv, 1, 60000, "three nodes");
	th_assert_same(a, b, ab);
	th_assert_same(a, b, ba);
	th_assert_same(a, c, ac);
	th_assert_same(a, c, ca);
	assert_feed(a, ab, n, ba, n + 1);
	assert_feed(a, ac, n, ca, n + 1);
	assert_feed(b, ba, n, ab, n + 1);
	assert_feed(c, ca, n, ac, n + 1);
	/* Each channel stays between its two books. */
	struct th_fstate st;
	th_feed_state(b, ac, &st);
	assert_false(st.ok);
	th_feed_state(b, ca, &st);
	assert_false(st.ok);
	th_feed_state(c, ab, &st);
	assert_false(st.ok);
	th_feed_state(c, ba, &st);
	assert_false(st.ok);
}

struct partial {
	struct th_node *nd;
	const char *origin;
	uint64_t lo, hi; /* lo < size < hi */
	uint64_t seen;
};

static int partial_cond(void *ctx)
{
	struct partial *p = ctx;
	p->seen = th_feed_size(p->nd, p->origin);
	return p->seen > p->lo && p->seen < p->hi;
}

/*
 * Puts n entries on the wire from a to b and returns once b has stored
 * part of them (more than lo entries of origin, fewer than half): b is
 * frozen (SIGSTOP) during the append, so a's pushes wait in the socket
 * buffers and a's write queue, then thawed and watched closely.
 */
static void stream_partly(struct th_fx *x, struct th_node *a, struct th_node *b, const char *origin,
                          size_t from, size_t n, uint64_t lo)
{
	struct partial p = {b, origin, lo, lo + n / 2, 0};
	char *f = th_jsonl_file(x, "statement", a->name, from, n);
	assert_int_equal(kill(b->pid, SIGSTOP), 0);
	th_append_file(a, origin, f, n);
	free(f);
	assert_int_equal(kill(b->pid, SIGCONT), 0);
	if (!th_wait_every(partial_cond, &p, th_limit(60000), 1))
		fail_msg("%s never held part of the stream (it has %llu; wanted %llu..%llu)",
		         b->name, (unsigned long long)p.seen, (unsigned long long)lo,
		         (unsigned long long)(lo + n / 2));
}

/* The receiver is SIGKILLed while records stream in, then restarted. */
static void test_receiver_killed(void **state)
{
	struct th_fx *x = *state;
	struct th_node *a, *b;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1];
	const size_t n = th_count(20000);
	pair_up(x, &a, &b, oa, ob);

	/* Kill once some batches are in, well before the end. */
	stream_partly(x, a, b, oa, 0, n, 1);
	th_node_stop(b, SIGKILL);
	uint64_t at_kill = th_feed_size(b, oa);
	print_message("receiver killed holding %llu of %zu entries\n", (unsigned long long)at_kill,
	              n + 1);
	assert_true(at_kill > 1 && at_kill < n + 1);

	th_node_start(b, b->addr);
	struct th_conv c = {0};
	th_conv_add(&c, oa, n + 1, a, b);
	th_conv_add(&c, ob, 2, a, b); /* feed.open + the receipt */
	th_converge(&c, 1, 60000, "catch-up after SIGKILL");
	th_assert_same(a, b, oa);
	th_assert_same(a, b, ob);
	/* Exactly the sender's entries: each once, in order. */
	assert_int_equal(th_feed_size(b, oa), th_feed_size(a, oa));
	assert_feed(b, oa, n, NULL, 0);
	assert_feed(b, ob, 0, oa, n + 1);
	assert_false(th_log_has(b, "FORK"));
}

/* The sender stops (SIGTERM) mid-stream and comes back later with more. */
static void test_sender_restarted(void **state)
{
	struct th_fx *x = *state;
	struct th_node *a, *b;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1];
	const size_t n = th_count(20000), more = th_count(5000);
	pair_up(x, &a, &b, oa, ob);

	stream_partly(x, a, b, oa, 0, n, 1);
	th_node_stop(a, SIGTERM);
	print_message("sender stopped; the receiver holds %llu of %zu entries\n",
	              (unsigned long long)th_feed_size(b, oa), n + 1);
	/* While it is down its author writes more, offline: the receiver
	 * certainly lacks entries when the sender comes back. */
	char *f = th_jsonl_file(x, "statement", "alpha", n, more);
	th_append_file(a, oa, f, more);
	free(f);
	assert_true(th_feed_size(b, oa) < th_feed_size(a, oa));

	th_node_start(a, a->addr);
	struct th_conv c = {0};
	th_conv_add(&c, oa, n + more + 1, a, b);
	th_conv_add(&c, ob, 2, a, b);
	th_converge(&c, 1, 60000, "catch-up after the sender's restart");
	th_assert_same(a, b, oa);
	th_assert_same(a, b, ob);
	assert_feed(b, oa, n + more, NULL, 0);
	assert_feed(b, ob, 0, oa, n + more + 1);
}

/* A node with one book alpha and a channel to bravo, whose data directory
 * exists (its key file) but whose node does not run. */
static void lone_node(struct th_fx *x, struct th_node **a, struct th_node **b, char *oa, char *ob)
{
	char t[TL_ORIGIN_LEN + 1];
	*a = th_node_add(x, "alpha");
	*b = th_node_add(x, "bravo");
	channel_open(*a, *b, 0, oa, ob); /* offline; no address: nobody dials */
	channel_open(*b, *a, 0, ob, t);
	assert_string_equal(t, oa);
}

static void test_unknown_key_refused(void **state)
{
	struct th_fx *x = *state;
	struct th_node *a, *b;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1], hex[17], want[128];
	struct snap before, after;
	lone_node(x, &a, &b, oa, ob);
	th_node_start(a, NULL);
	snapshot(a, &before);

	struct tl_keypair stranger;
	assert_int_equal(tl_key_generate(&stranger), 0);
	struct th_wire w;
	th_wire_init(&w, th_tcp_connect(x, a->addr));
	/* The handshake itself completes (the node proves its key) ... */
	assert_int_equal(th_handshake(&w, &stranger, a->pk), 0);
	/* ... then the node refuses the session without sending a frame. */
	size_t got = 0;
	assert_true(th_wait_closed(w.fd, th_limit(10000), &got));
	assert_int_equal(w.in.len + got, 0);
	tl_hex_encode(hex, stranger.pk, 8);
	snprintf(want, sizeof want, "refused peer %s", hex);
	th_expect_log(a, want);
	th_fd_close(x, w.fd);
	th_wire_release(&w);
	tl_key_wipe(&stranger);

	snapshot(a, &after);
	snap_equal(&before, &after);
	/* The node is still there for everybody else. */
	struct th_run r = {0};
	const char *st[] = {"tally", "--json", "status", NULL};
	assert_int_equal(th_node_tally(a, &r, st, NULL), 0);
	assert_non_null(strstr(r.out, "\"peers\":[]"));
	th_run_free(&r);
}

static void test_hostile_bytes(void **state)
{
	struct th_fx *x = *state;
	struct th_node *a, *b;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1], me[64], want[256];
	struct snap before, after;
	struct tl_keypair kb, eph;
	uint8_t h[4 + TL_PUB_LEN];
	struct tl_buf m1;
	struct tl_hs *hs = NULL;
	size_t got;
	pair_up(x, &a, &b, oa, ob);
	/* Quiet: the receipts for the feed.open entries are in. */
	struct th_conv c = {0};
	th_conv_add(&c, oa, 1, a, b);
	th_conv_add(&c, ob, 1, a, b);
	th_converge(&c, 1, 30000, "quiet before the attack");
	snapshot(a, &before);
	read_key(b, &kb);
	assert_int_equal(tl_key_generate(&eph), 0);
	tl_buf_init(&m1, 4096);
	assert_int_equal(tl_hs_new(&hs, TL_HS_INITIATOR, &eph, a->pk), 0);
	assert_int_equal(tl_hs_start(hs, &m1), 0);
	tl_hs_free(hs);

	/* 1. Garbage before an otherwise valid hello: no answer, dropped. */
	int fd = th_tcp_connect(x, a->addr);
	th_hello(h, a->pk);
	assert_int_equal(th_send_all(fd, "GET / HTTP/1.1\r\n\r\n", 18), 0);
	assert_int_equal(th_send_all(fd, h, sizeof h), 0);
	assert_int_equal(th_send_all(fd, m1.data, m1.len), 0);
	assert_true(th_wait_closed(fd, th_limit(10000), &got));
	assert_int_equal(got, 0);
	th_fd_close(x, fd);

	/* 2. Bad hellos: wrong magic; a book this node does not host. */
	fd = th_tcp_connect(x, a->addr);
	memcpy(h, "TLYX", 4);
	assert_int_equal(th_send_all(fd, h, sizeof h), 0);
	assert_true(th_wait_closed(fd, th_limit(10000), &got));
	assert_int_equal(got, 0);
	th_fd_close(x, fd);
	fd = th_tcp_connect(x, a->addr);
	th_hello(h, eph.pk);
	assert_int_equal(th_send_all(fd, h, sizeof h), 0);
	assert_int_equal(th_send_all(fd, m1.data, m1.len), 0);
	assert_true(th_wait_closed(fd, th_limit(10000), &got));
	assert_int_equal(got, 0);
	th_fd_close(x, fd);
	th_expect_log(a, "not a Tally peer (bad hello)");
	th_expect_log(a, "hello names a book this node does not host");

	/* 3. Truncated handshakes, then we close: half of m1; all of m1 and
	 * half of m3 (as the legitimate bravo). */
	fd = th_tcp_connect(x, a->addr);
	local_name(fd, me, sizeof me);
	th_hello(h, a->pk);
	assert_int_equal(th_send_all(fd, h, sizeof h), 0);
	assert_int_equal(th_send_all(fd, m1.data, m1.len / 2), 0);
	th_fd_close(x, fd);
	snprintf(want, sizeof want, "connection %s closed: closed by peer", me);
	th_expect_log(a, want);
	{
		struct tl_buf out, in;
		size_t used = 0;
		tl_buf_init(&out, 4096);
		tl_buf_init(&in, 65536);
		fd = th_tcp_connect(x, a->addr);
		local_name(fd, me, sizeof me);
		assert_int_equal(tl_hs_new(&hs, TL_HS_INITIATOR, &kb, a->pk), 0);
		assert_int_equal(tl_hs_start(hs, &out), 0);
		assert_int_equal(th_send_all(fd, h, sizeof h), 0);
		assert_int_equal(th_send_all(fd, out.data, out.len), 0);
		tl_buf_reset(&out);
		uint64_t end = th_mono_ms() + th_limit(10000);
		while (!tl_hs_done(hs)) {
			assert_true(th_recv_some(fd, &in, end) > 0);
			assert_int_equal(tl_hs_step(hs, in.data, in.len, &used, &out), 0);
			memmove(in.data, in.data + used, in.len - used);
			in.len -= used;
		}
		assert_true(out.len > 8);
		assert_int_equal(th_send_all(fd, out.data, out.len / 2), 0);
		th_fd_close(x, fd);
		tl_hs_free(hs);
		tl_buf_release(&out);
		tl_buf_release(&in);
		snprintf(want, sizeof want, "connection %s closed: closed by peer", me);
		th_expect_log(a, want);
	}

	/* 4. An oversized frame length after a valid handshake as bravo. */
	struct th_wire w;
	th_wire_init(&w, th_tcp_connect(x, a->addr));
	local_name(w.fd, me, sizeof me);
	assert_int_equal(th_handshake(&w, &kb, a->pk), 0);
	static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
	assert_int_equal(th_send_all(w.fd, huge, sizeof huge), 0);
	assert_true(th_wait_closed(w.fd, th_limit(10000), NULL));
	snprintf(want, sizeof want, "peer %s: oversized frame", me);
	th_expect_log(a, want);
	th_fd_close(x, w.fd);
	th_wire_release(&w);

	/* 5. A replayed frame: a ping is answered, the same bytes again are
	 * not a frame of this session any more. */
	static const uint8_t ping[] = {0x91, 0xa4, 'p', 'i', 'n', 'g'};
	static const uint8_t pong[] = {0x91, 0xa4, 'p', 'o', 'n', 'g'};
	struct tl_buf copy, pt;
	tl_buf_init(&copy, TL_FRAME_MAX + TL_FRAME_OVERHEAD);
	tl_buf_init(&pt, TL_FRAME_MAX);
	th_wire_init(&w, th_tcp_connect(x, a->addr));
	local_name(w.fd, me, sizeof me);
	assert_int_equal(th_handshake(&w, &kb, a->pk), 0);
	th_send_frame(&w, ping, sizeof ping, &copy);
	int ponged = 0;
	uint64_t end = th_mono_ms() + th_limit(10000);
	while (!ponged && th_next_frame(&w, &pt, end))
		ponged = pt.len == sizeof pong && memcmp(pt.data, pong, sizeof pong) == 0;
	assert_true(ponged);
	assert_int_equal(th_send_all(w.fd, copy.data, copy.len), 0);
	assert_true(th_wait_closed(w.fd, th_limit(10000), NULL));
	snprintf(want, sizeof want, "peer %s: unauthenticated or replayed frame", me);
	th_expect_log(a, want);
	th_fd_close(x, w.fd);
	th_wire_release(&w);
	tl_buf_release(&copy);
	tl_buf_release(&pt);
	tl_buf_release(&m1);
	tl_key_wipe(&kb);
	tl_key_wipe(&eph);

	/* Nothing of it was stored ... */
	snapshot(a, &after);
	snap_equal(&before, &after);
	/* ... and the two real nodes go on replicating. */
	const size_t n = th_count(500);
	char *fa = th_jsonl_file(x, "statement", "alpha", 0, n),
	     *fb = th_jsonl_file(x, "statement", "bravo", 0, n);
	th_append_file(a, oa, fa, n);
	th_append_file(b, ob, fb, n);
	free(fa);
	free(fb);
	struct th_conv c2 = {0};
	th_conv_add(&c2, oa, n + 2, a, b);
	th_conv_add(&c2, ob, n + 2, a, b);
	th_converge(&c2, 1, 60000, "replication after the attack");
	th_assert_same(a, b, oa);
	th_assert_same(a, b, ob);
	assert_feed(a, oa, n, ob, n + 1);
	assert_feed(b, ob, n, oa, n + 1);
}

/* Records 0..n-1 of a feed, read from a store. */
static size_t read_records(const struct th_node *nd, const char *origin, struct tl_buf *recs,
                           size_t cap)
{
	struct tl_feed f;
	struct tl_store *s = th_store_ro(nd);
	assert_non_null(s);
	assert_int_equal(tl_store_feed_get(s, origin, &f), 0);
	assert_true(f.head.size <= cap);
	for (uint64_t i = 0; i < f.head.size; i++) {
		tl_buf_init(&recs[i], TL_RECORD_MAX);
		assert_int_equal(tl_store_record(s, &f, i, &recs[i]), 0);
	}
	tl_store_close(s);
	return (size_t)f.head.size;
}

/* A checkpoint of records[0..n) signed with the feed key. */
static void sign_batch(struct tl_buf *note, const char *origin, const struct tl_buf *recs, size_t n,
                       const struct tl_keypair *kp)
{
	struct tl_merkle_acc acc;
	struct tl_checkpoint cp;
	struct tl_buf text;
	tl_merkle_acc_init(&acc);
	for (size_t i = 0; i < n; i++) {
		uint8_t leaf[TL_HASH_LEN], comp[64][TL_HASH_LEN];
		unsigned nc;
		tl_record_leaf_hash(leaf, recs[i].data, recs[i].len);
		tl_merkle_acc_push(&acc, leaf, comp, &nc);
	}
	memset(&cp, 0, sizeof cp);
	snprintf(cp.origin, sizeof cp.origin, "%s", origin);
	cp.size = n;
	tl_merkle_acc_root(&acc, cp.root);
	tl_buf_init(&text, 4096);
	assert_int_equal(tl_checkpoint_format(&cp, &text), 0);
	tl_buf_reset(note);
	assert_int_equal(tl_note_sign(note, (const char *)text.data, text.len, origin, kp), 0);
	tl_buf_release(&text);
}

static void test_tampered_record(void **state)
{
	struct th_fx *x = *state;
	struct th_node *a, *b;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1], me[64], want[256];
	struct tl_buf recs[16], note;
	struct tl_keypair kb;
	lone_node(x, &a, &b, oa, ob);
	/* bravo's feed, written offline: feed.open and five statements. */
	char *f = th_jsonl_file(x, "statement", "bravo", 0, 5);
	th_append_file(b, ob, f, 5);
	free(f);
	size_t n = read_records(b, ob, recs, 16);
	assert_int_equal(n, 6);
	th_node_start(a, NULL);
	read_key(b, &kb);
	tl_buf_init(&note, TL_NOTE_MAX);

	/* The last record's body altered ("line" -> "Line"): its prev still
	 * chains, its signature no longer verifies; the checkpoint is signed
	 * by the real key over exactly these bytes. */
	struct tl_buf bad[16];
	for (size_t i = 0; i < n; i++) {
		tl_buf_init(&bad[i], TL_RECORD_MAX);
		assert_int_equal(tl_buf_add(&bad[i], recs[i].data, recs[i].len), 0);
	}
	size_t at = 0;
	for (size_t i = 0; i + 4 <= bad[n - 1].len && !at; i++)
		if (memcmp(bad[n - 1].data + i, "line", 4) == 0)
			at = i;
	assert_true(at > 0);
	bad[n - 1].data[at] = 'L';
	struct tl_entry e;
	assert_int_equal(tl_record_decode(&e, bad[n - 1].data, bad[n - 1].len, NULL), 0);
	assert_int_not_equal(tl_record_verify_sig(&e), 0);
	sign_batch(&note, ob, bad, n, &kb);

	struct th_wire w;
	th_wire_init(&w, th_tcp_connect(x, a->addr));
	local_name(w.fd, me, sizeof me);
	assert_int_equal(th_handshake(&w, &kb, a->pk), 0);
	send_recs(&w, ob, 0, bad, n, &note);
	assert_true(th_wait_closed(w.fd, th_limit(10000), NULL));
	snprintf(want, sizeof want, "refused records from peer %s", me);
	th_expect_log(a, want);
	th_fd_close(x, w.fd);
	th_wire_release(&w);
	assert_int_equal(th_feed_size(a, ob), 0);

	/* The same batch untampered is taken: the refusal was the record. */
	sign_batch(&note, ob, recs, n, &kb);
	th_wire_init(&w, th_tcp_connect(x, a->addr));
	assert_int_equal(th_handshake(&w, &kb, a->pk), 0);
	send_recs(&w, ob, 0, recs, n, &note);
	struct th_conv c = {0};
	th_conv_add(&c, ob, n, a, b);
	th_converge(&c, 0, 10000, "the untampered batch");
	th_assert_same(a, b, ob);
	th_fd_close(x, w.fd);
	th_wire_release(&w);

	for (size_t i = 0; i < n; i++) {
		tl_buf_release(&recs[i]);
		tl_buf_release(&bad[i]);
	}
	tl_buf_release(&note);
	tl_key_wipe(&kb);
}

/* A peer that asks for everything and then does not read. */
static void test_peer_never_reads(void **state)
{
	struct th_fx *x = *state;
	struct th_node *a, *b;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1];
	struct tl_keypair kb;
	const size_t n = 50000; /* ~18 MB: more than sockets and queue hold */
	const unsigned long max_kib = th_asan() ? 300ul << 10 : 150ul << 10;
	lone_node(x, &a, &b, oa, ob);
	/* Written offline before the node starts: its memory is the pump's. */
	char *f = th_jsonl_file(x, "statement", "alpha", 0, n);
	th_append_file(a, oa, f, n);
	free(f);
	th_node_start(a, NULL);
	read_key(b, &kb);
	unsigned long base = rss_kib(a->pid);
	assert_true(base > 0);

	struct th_wire w;
	int fd = th_tcp_connect(x, a->addr);
	int small = 16384;
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
	th_wire_init(&w, fd);
	assert_int_equal(th_handshake(&w, &kb, a->pk), 0);
	send_heads(&w, oa, 0);

	/* Not reading: memory stays bounded and the node answers. */
	unsigned long peak = 0;
	uint64_t end = th_mono_ms() + 4000, worst_status = 0;
	json_int_t queued = -1;
	while (th_mono_ms() < end) {
		unsigned long r = rss_kib(a->pid);
		if (r > peak)
			peak = r;
		struct th_run sr = {0};
		const char *st[] = {"tally", "--json", "status", NULL};
		uint64_t t0 = th_mono_ms();
		assert_int_equal(th_node_tally(a, &sr, st, NULL), 0);
		uint64_t took = th_mono_ms() - t0;
		if (took > worst_status)
			worst_status = took;
		json_t *j = json_loads(sr.out, 0, NULL);
		json_t *p0 = json_array_get(json_object_get(j, "peers"), 0);
		if (p0)
			queued = json_integer_value(json_object_get(p0, "queued"));
		json_decref(j);
		th_run_free(&sr);
		th_nap(100);
	}
	print_message("never-reading peer: RSS %lu KiB before, peak %lu KiB; status in <= %llu "
	              "ms; %lld bytes queued\n",
	              base, peak, (unsigned long long)worst_status, (long long)queued);
	if (peak >= max_kib)
		fail_msg("tallyd RSS reached %lu KiB (bound %lu KiB)", peak, max_kib);
	assert_true(worst_status < th_limit(2000));
	/* The session is paused, not dropped, and its queue is capped (8 MiB
	 * plus one batch). */
	assert_true(queued >= 0 && queued <= (json_int_t)(10u << 20));

	/* Reading again, the whole feed arrives in order and complete. */
	struct tl_buf pt;
	uint64_t next = 0;
	tl_buf_init(&pt, TL_FRAME_MAX);
	end = th_mono_ms() + th_limit(60000);
	while (next < n + 1 && th_next_frame(&w, &pt, end)) {
		msgpack_unpacked u;
		size_t off = 0;
		msgpack_unpacked_init(&u);
		assert_int_equal(msgpack_unpack_next(&u, (const char *)pt.data, pt.len, &off),
		                 MSGPACK_UNPACK_SUCCESS);
		const msgpack_object *o = &u.data;
		assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
		const msgpack_object *el = o->via.array.ptr;
		if (o->via.array.size == 5 && el[0].via.str.size == 4 &&
		    memcmp(el[0].via.str.ptr, "recs", 4) == 0) {
			assert_int_equal(el[1].via.str.size, TL_ORIGIN_LEN);
			assert_memory_equal(el[1].via.str.ptr, oa, TL_ORIGIN_LEN);
			assert_int_equal(el[2].via.u64, next);
			next += el[3].via.array.size;
		}
		msgpack_unpacked_destroy(&u);
	}
	assert_int_equal(next, n + 1);
	tl_buf_release(&pt);
	th_fd_close(x, w.fd);
	th_wire_release(&w);
	tl_key_wipe(&kb);
}

/*
 * More channels between two books whose session is already open, opened in
 * both orders (the higher key first, as pair_up does, and the lower key
 * first): entries on all six feeds still cross, the old channel's included.
 */
static void test_channel_on_open_session(void **state)
{
	struct th_fx *x = *state;
	struct th_node *a, *b;
	char o[6][TL_ORIGIN_LEN + 1], t[TL_ORIGIN_LEN + 1];
	const size_t n = 10;
	pair_up(x, &a, &b, o[0], o[1]);
	th_open_pair(a, b, "second", o[2], o[3]);
	struct th_node *hi = memcmp(a->pk, b->pk, TL_PUB_LEN) > 0 ? a : b;
	struct th_node *lo = hi == a ? b : a;
	channel_open_label(lo, hi, "third", o[lo == a ? 4 : 5], t);
	channel_open_label(hi, lo, "third", o[hi == a ? 4 : 5], t);
	assert_string_equal(t, o[lo == a ? 4 : 5]);
	struct th_conv c = {0};
	for (int i = 0; i < 6; i++) {
		char tag[16];
		snprintf(tag, sizeof tag, "f%d", i);
		char *f = th_jsonl_file(x, "statement", tag, 0, n);
		th_append_file(i % 2 ? b : a, o[i], f, n);
		free(f);
		th_conv_add(&c, o[i], n + 1, a, b);
	}
	th_converge(&c, 0, 20000, "channels opened on an open session");
}

struct at_least {
	struct th_node *nd;
	const char *origin;
	uint64_t size;
};

static int at_least_cond(void *ctx)
{
	struct at_least *w = ctx;
	return th_feed_size(w->nd, w->origin) >= w->size;
}

/*
 * A receiver stopped (SIGTERM) right after storing content, before its
 * receipt timer (1 s) fired: once restarted it still owes the receipt.
 */
static void test_receipt_after_restart(void **state)
{
	struct th_fx *x = *state;
	struct th_node *a, *b;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1];
	const size_t n = 10;
	pair_up(x, &a, &b, oa, ob);
	struct th_conv c = {0};
	th_conv_add(&c, oa, 2, a, b); /* feed.open and the receipt of b's */
	th_conv_add(&c, ob, 2, a, b);
	th_converge(&c, 1, 30000, "receipts of the feed.open entries");
	uint64_t before = th_feed_size(a, oa);
	char *f = th_jsonl_file(x, "statement", "alpha", 0, n);
	th_append_file(a, oa, f, n);
	free(f);
	struct at_least w = {b, oa, before + n};
	assert_true(th_wait_every(at_least_cond, &w, th_limit(30000), 1));
	th_node_stop(b, SIGTERM);
	th_node_start(b, b->addr);
	struct th_conv c2 = {0};
	th_conv_add(&c2, oa, before + n, a, b);
	th_conv_add(&c2, ob, 2, a, b);
	th_converge(&c2, 1, 30000, "after the restart");
	assert_feed(b, ob, 0, oa, before + n);
}

struct unchanged {
	struct th_node *nd;
	const char *origin[2];
	uint64_t size[2];
};

static int changed_cond(void *ctx)
{
	struct unchanged *u = ctx;
	for (int i = 0; i < 2; i++)
		if (th_feed_size(u->nd, u->origin[i]) != u->size[i])
			return 1;
	return 0;
}

/*
 * Two books of one node: each book's feed is the other's counterparty feed,
 * and no `seen` receipts are written between them (docs/protocol.md), also
 * not when the node starts with entries it has never acknowledged.
 */
static void test_local_books_no_receipts(void **state)
{
	struct th_fx *x = *state;
	struct th_run r = {0};
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1], t[TL_ORIGIN_LEN + 1];
	struct th_node *a = th_node_add(x, "alpha");
	/* A second book in the same data directory. */
	struct th_node local = *a;
	snprintf(local.name, sizeof local.name, "bravo");
	const char *init[] = {"tally", "init", "--book", "bravo", NULL};
	assert_int_equal(th_node_tally(a, &r, init, NULL), 0);
	th_chomp(r.out);
	snprintf(local.pkhex, sizeof local.pkhex, "%s", r.out);
	th_run_free(&r);
	channel_open(a, &local, 0, oa, ob);
	channel_open(&local, a, 0, t, t);
	char *f = th_jsonl_file(x, "statement", "alpha", 0, 5);
	th_append_file(a, oa, f, 5);
	free(f);
	/* Signed checkpoints of both feeds are stored, as `feed checkpoint`,
	 * `feed prove` and `export` leave them. */
	const char *cp1[] = {"tally", "feed", "checkpoint", oa, NULL};
	const char *cp2[] = {"tally", "feed", "checkpoint", ob, NULL};
	assert_int_equal(th_node_tally(a, &r, cp1, NULL), 0);
	assert_int_equal(th_node_tally(a, &r, cp2, NULL), 0);
	th_run_free(&r);
	struct unchanged u = {a, {oa, ob}, {th_feed_size(a, oa), th_feed_size(a, ob)}};
	assert_int_equal(u.size[0], 6);
	assert_int_equal(u.size[1], 1);

	th_node_start(a, NULL);
	/* A receipt would be due 1 s after the start: watch for 2.5 s. */
	int changed = th_wait_for(changed_cond, &u, th_limit(2500));
	struct census ca, cb;
	census(a, oa, ob, &ca);
	census(a, ob, oa, &cb);
	if (ca.seen || cb.seen)
		fail_msg("receipts between two books of one node: %llu in alpha's feed, %llu in "
		         "bravo's",
		         (unsigned long long)ca.seen, (unsigned long long)cb.seen);
	assert_false(changed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_two_nodes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_three_nodes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_receiver_killed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sender_restarted, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_key_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hostile_bytes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_tampered_record, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_peer_never_reads, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_channel_on_open_session, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_receipt_after_restart, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_local_books_no_receipts, setup, teardown),
	};
	if (tl_init() != 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	/* TALLY_TEST_FILTER=test_hostile* runs the matching tests only. */
	if (getenv("TALLY_TEST_FILTER"))
		cmocka_set_test_filter(getenv("TALLY_TEST_FILTER"));
	return cmocka_run_group_tests_name("node", tests, NULL, NULL);
}
