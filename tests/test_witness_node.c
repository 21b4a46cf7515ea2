/*
 * test_witness_node.c — tallyd as a witness client, end to end: real node
 * processes and real witness processes (`tallyd --witness`) on 127.0.0.1
 * with kernel-picked ports. Cosignatures land merged in the stored
 * checkpoint notes of both sides; heartbeats re-cosign; a witness restart
 * and a node restart resynchronise (409); a node restored from an old copy
 * halts and catches up from its counterparty; one that appended before it
 * could know is caught as a fork whose proof verifies offline; and a hanging
 * witness does not stall the event loop.
 *
 * State is read from the stores opened read-only. Every wait is a bounded
 * poll; every process is stopped by teardown. TALLY_TEST_KEEP=1 keeps the
 * directory (logs, stores) and prints its path.
 */
#include "nodes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "node/tl_node.h"
#include "node/wclient.h"

#define PASS    "correct horse battery staple"
#define POLL_MS 50
#define MAXP    8

struct proc {
	char name[32];
	char home[4096];
	char log[4200];
	char home_env[4200];
	char addr[64];
	char key[256]; /* book public key hex, or the witness vkey */
	pid_t pid;
};

struct fx {
	char *dir;
	struct proc p[MAXP];
	int np;
	int lfd; /* a listener that never answers */
};

static unsigned limit(unsigned ms)
{
	return getenv("TALLY_ASAN") ? ms * 3 : ms;
}

static int wait_for(int (*cond)(void *), void *ctx, unsigned timeout_ms)
{
	return th_wait_every(cond, ctx, limit(timeout_ms), POLL_MS);
}

static int log_has(const struct proc *p, const char *needle)
{
	char *text = th_read_file(p->log, NULL);
	int found = text && strstr(text, needle) != NULL;
	free(text);
	return found;
}

/* --------------------------------------------------------- processes */

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	assert_non_null(x);
	x->dir = th_tmpdir("wnode");
	assert_non_null(x->dir);
	x->lfd = -1;
	*state = x;
	return 0;
}

static void proc_stop(struct proc *p, int sig)
{
	th_stop_pid(p->pid, sig, limit(30000));
	p->pid = 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	for (int i = 0; i < x->np; i++)
		proc_stop(&x->p[i], SIGTERM);
	if (x->lfd >= 0)
		close(x->lfd);
	th_tmpdir_done(x->dir);
	free(x);
	return 0;
}

static int tally_in(const char *home, struct th_run *r, const char *const *argv)
{
	char he[4200];
	const char *env[] = {he, "TALLY_PASSPHRASE=" PASS, NULL};
	snprintf(he, sizeof he, "TALLY_HOME=%s", home);
	th_run_free(r);
	assert_int_equal(th_run(r, argv, env, NULL, 0, 600), 0);
	return r->status;
}

static struct proc *proc_new(struct fx *x, const char *name)
{
	assert_true(x->np < MAXP);
	struct proc *p = &x->p[x->np++];
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", name);
	snprintf(p->home, sizeof p->home, "%s/%s", x->dir, name);
	snprintf(p->log, sizeof p->log, "%s/%s.log", x->dir, name);
	return p;
}

/* A node's data directory with one book (not started). */
static struct proc *node_new(struct fx *x, const char *name)
{
	struct th_run r = {0};
	struct proc *p = proc_new(x, name);
	const char *a[] = {"tally", "init", "--book", name, NULL};
	if (tally_in(p->home, &r, a) != 0)
		fail_msg("tally init %s: %s", name, r.err);
	th_chomp(r.out);
	assert_int_equal(strlen(r.out), 64);
	snprintf(p->key, sizeof p->key, "%s", r.out);
	th_run_free(&r);
	return p;
}

/* A witness home with its key (not started); p->key is its vkey. */
static struct proc *witness_new(struct fx *x, const char *name)
{
	struct th_run r = {0};
	struct proc *p = proc_new(x, name);
	const char *a[] = {"tally", "witness", "init", "--name", name, NULL};
	if (tally_in(p->home, &r, a) != 0)
		fail_msg("tally witness init %s: %s", name, r.err);
	char *nl = strchr(r.out, '\n');
	if (nl)
		*nl = 0;
	snprintf(p->key, sizeof p->key, "%s", r.out);
	th_run_free(&r);
	struct tl_vkey vk;
	assert_int_equal(tl_vkey_parse(&vk, p->key, strlen(p->key)), 0);
	assert_int_equal(vk.type, TL_SIGTYPE_COSIG);
	return p;
}

static void witness_allow(struct proc *w, const char *origin, const char *vkey)
{
	struct th_run r = {0};
	const char *a[] = {"tally", "witness", "allow", origin, vkey, NULL};
	if (tally_in(w->home, &r, a) != 0)
		fail_msg("witness allow on %s: %s", w->name, r.err);
	th_run_free(&r);
}

/* Starts tallyd (conf NULL: as a witness) on p's home; listen NULL keeps
 * p->addr if set (a restart on the same port), else port 0. */
static void proc_start(struct proc *p, const char *conf)
{
	char listen[64], cpath[4300], path[4300];
	snprintf(listen, sizeof listen, "%s", p->addr[0] ? p->addr : "127.0.0.1:0");
	snprintf(path, sizeof path, "%s/%s", p->home, conf ? "tallyd.addr" : "witness.addr");
	unlink(path);
	if (conf) {
		snprintf(cpath, sizeof cpath, "%s.conf", p->home);
		assert_int_equal(th_write_file(cpath, conf, strlen(conf)), 0);
		const char *argv[] = {"tallyd",   "--config", cpath,   "--home", p->home,
		                      "--listen", listen,     "--log", "debug",  NULL};
		p->pid = th_spawn_tallyd(p->log, NULL, PASS, argv);
	} else {
		const char *argv[] = {"tallyd", "--witness", "--home", p->home, "--listen",
		                      listen,   "--log",     "debug",  NULL};
		p->pid = th_spawn_tallyd(p->log, NULL, PASS, argv);
	}
	if (th_wait_addr(&p->pid, path, p->addr, sizeof p->addr, limit(30000), POLL_MS, NULL) != 1)
		fail_msg("%s did not start; log:\n%s", p->name, th_file_tail(p->log));
}

/* Node config naming witnesses ws[0..n). */
static void node_conf(char *out, size_t cap, struct proc *const *ws, int n, unsigned heartbeat,
                      unsigned timeout_ms)
{
	size_t o = (size_t)snprintf(out, cap,
	                            "handshake_timeout_ms = 600000\nwitness_heartbeat = %u\n"
	                            "witness_timeout_ms = %u\n",
	                            heartbeat, timeout_ms);
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(out + o, cap - o, "witness = http://%s %s\n", ws[i]->addr,
		                      ws[i]->key);
}

/* Opens the channel of a's book with b's on a (through its running node). */
static void channel_open(struct proc *a, const struct proc *b, char *origin)
{
	struct th_run r = {0};
	char peer[400];
	snprintf(peer, sizeof peer, "%s@%s", b->key, b->addr);
	const char *argv[] = {"tally", "--json", "channel", "open", "--book",
	                      a->name, "--peer", peer,      NULL};
	if (tally_in(a->home, &r, argv) != 0)
		fail_msg("channel open on %s: %s", a->name, r.err);
	json_t *j = json_loads(r.out, 0, NULL);
	const char *o = json_string_value(json_object_get(j, "origin"));
	assert_non_null(o);
	assert_int_equal(strlen(o), TL_ORIGIN_LEN);
	memcpy(origin, o, TL_ORIGIN_LEN + 1);
	json_decref(j);
	th_run_free(&r);
}

static void feed_vkey(struct proc *p, const char *origin, char *out, size_t cap)
{
	struct th_run r = {0};
	const char *a[] = {"tally", "feed", "vkey", origin, NULL};
	if (tally_in(p->home, &r, a) != 0)
		fail_msg("feed vkey: %s", r.err);
	th_chomp(r.out);
	snprintf(out, cap, "%s", r.out);
	th_run_free(&r);
}

static int append(struct proc *p, const char *origin, int n, struct th_run *r)
{
	char body[64];
	snprintf(body, sizeof body, "{\"id\":\"ST-%d\",\"closing\":%d}", n, n * 100);
	const char *a[] = {"tally",     "feed",   "append", origin, "--kind",
	                   "statement", "--body", body,     NULL};
	return tally_in(p->home, r, a);
}

static void append_ok(struct proc *p, const char *origin, int n)
{
	struct th_run r = {0};
	if (append(p, origin, n, &r) != 0)
		fail_msg("append on %s failed (%d): %s", p->name, r.status, r.err);
	th_run_free(&r);
}

/* --------------------------------------------------------- store reads */

static struct tl_store *store_ro(const struct proc *p)
{
	char sp[4300], err[256];
	struct tl_store *s = NULL;
	snprintf(sp, sizeof sp, "%s/store", p->home);
	if (tl_store_open(&s, sp, TL_STORE_RDONLY, 0, err, sizeof err) != 0)
		return NULL;
	return s;
}

static uint64_t feed_size(const struct proc *p, const char *origin, uint32_t *flags)
{
	struct tl_feed f;
	uint64_t n = 0;
	struct tl_store *s = store_ro(p);
	if (flags)
		*flags = 0;
	if (s && tl_store_feed_get(s, origin, &f) == 0) {
		n = f.head.size;
		if (flags)
			*flags = f.flags;
	}
	tl_store_close(s);
	return n;
}

/* Cosignatures by w in the stored checkpoint of origin at size (or the
 * latest when size is UINT64_MAX), each verified: count and latest time. */
struct cosigs {
	uint64_t size;
	size_t n;
	uint64_t latest;
	int book_signed;
};

static void stored_cosigs(const struct proc *p, const char *origin, uint64_t size,
                          const struct proc *w, struct cosigs *out)
{
	struct tl_feed f;
	struct tl_buf note, kept;
	struct tl_vkey keys[2];
	struct tl_origin og;
	memset(out, 0, sizeof *out);
	struct tl_store *s = store_ro(p);
	tl_buf_init(&note, TL_NOTE_MAX);
	tl_buf_init(&kept, TL_NOTE_MAX);
	if (s && tl_store_feed_get(s, origin, &f) == 0 &&
	    tl_store_checkpoint_get(s, &f, size, &note, &out->size) == 0 &&
	    tl_vkey_parse(&keys[0], w->key, strlen(w->key)) == 0 &&
	    tl_origin_parse(&og, origin, TL_ORIGIN_LEN) == 0 &&
	    tl_vkey_from_pub(&keys[1], origin, TL_SIGTYPE_ED25519, og.pk) == 0) {
		size_t k = 0, c = 0;
		if (tl_wc_filter((const char *)note.data, note.len, keys, 2, &kept, &k, &c,
		                 &out->latest) == 0) {
			out->n = c;
			out->book_signed = k > c;
		}
	}
	tl_buf_release(&note);
	tl_buf_release(&kept);
	tl_store_close(s);
}

struct cosig_wait {
	const struct proc *p, *w;
	const char *origin;
	uint64_t size;  /* the checkpoint wanted; UINT64_MAX: of the current size */
	uint64_t after; /* a cosignature later than this */
	struct cosigs got;
};

static int cosigned(void *ctx)
{
	struct cosig_wait *c = ctx;
	stored_cosigs(c->p, c->origin, c->size, c->w, &c->got);
	/* Receipts grow the feeds meanwhile: "current" is rechecked each poll. */
	if (c->size == UINT64_MAX && c->got.size != feed_size(c->p, c->origin, NULL))
		return 0;
	return c->got.n > 0 && c->got.book_signed && c->got.latest > c->after;
}

static void expect_cosigned(const struct proc *p, const char *origin, uint64_t size,
                            const struct proc *w, uint64_t after, struct cosigs *got)
{
	struct cosig_wait c = {p, w, origin, size, after, {0}};
	if (!wait_for(cosigned, &c, 20000))
		fail_msg("%s: checkpoint %llu of %s has no cosignature by %s after %llu; log:\n%s",
		         p->name, (unsigned long long)size, origin, w->name,
		         (unsigned long long)after, th_file_tail(p->log));
	if (got)
		*got = c.got;
}

/* A `seen` receipt in p's feed origin that embeds a checkpoint carrying a
 * valid cosignature by w (a not-before proof). */
struct seen_scan {
	struct tl_vkey wk;
	int found;
};

static int seen_one(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                    const uint8_t leaf[TL_HASH_LEN])
{
	struct seen_scan *ss = ctx;
	struct tl_entry e;
	(void)seq;
	(void)leaf;
	if (tl_record_decode(&e, rec, len, NULL) != 0 || e.kind_len != 4 ||
	    memcmp(e.kind, "seen", 4) != 0)
		return 0;
	json_t *b = tl_mp_to_json(e.body, e.body_len);
	const char *cp = json_string_value(json_object_get(b, "checkpoint"));
	struct tl_buf out;
	size_t cos = 0;
	tl_buf_init(&out, TL_NOTE_MAX);
	if (cp && tl_wc_filter(cp, strlen(cp), &ss->wk, 1, &out, NULL, &cos, NULL) == 0 && cos)
		ss->found = 1;
	tl_buf_release(&out);
	json_decref(b);
	return 0;
}

static int has_cosigned_seen(const struct proc *p, const char *origin, const struct proc *w)
{
	struct seen_scan ss = {.found = 0};
	struct tl_feed f;
	struct tl_store *s = store_ro(p);
	if (tl_vkey_parse(&ss.wk, w->key, strlen(w->key)) == 0 && s &&
	    tl_store_feed_get(s, origin, &f) == 0 &&
	    tl_store_scan(s, &f, 0, f.head.size, seen_one, &ss) != 0)
		ss.found = 0;
	tl_store_close(s);
	return ss.found;
}

struct size_wait {
	const struct proc *p;
	const char *origin;
	uint64_t want;
};

static int has_size(void *ctx)
{
	struct size_wait *s = ctx;
	return feed_size(s->p, s->origin, NULL) >= s->want;
}

static void expect_size(const struct proc *p, const char *origin, uint64_t want)
{
	struct size_wait s = {p, origin, want};
	if (!wait_for(has_size, &s, 20000))
		fail_msg("%s holds %llu of %s, not %llu; log:\n%s", p->name,
		         (unsigned long long)feed_size(p, origin, NULL), origin,
		         (unsigned long long)want, th_file_tail(p->log));
}

struct log_wait {
	const struct proc *p;
	const char *needle;
};

static int log_cond(void *ctx)
{
	struct log_wait *w = ctx;
	return log_has(w->p, w->needle);
}

static void expect_log(const struct proc *p, const char *needle)
{
	struct log_wait w = {p, needle};
	if (!wait_for(log_cond, &w, 20000))
		fail_msg("'%s' not in the log of %s:\n%s", needle, p->name, th_file_tail(p->log));
}

/* Two started nodes a (supplier) and b with a channel; origins out. */
static void pair(struct proc *a, struct proc *b, const char *conf, char *oa, char *ob)
{
	proc_start(a, conf);
	proc_start(b, conf);
	channel_open(a, b, oa);
	channel_open(b, a, ob);
	expect_size(b, oa, 1);
	expect_size(a, ob, 1);
}

static void allow_both(struct proc *w, struct proc *a, const char *oa, struct proc *b,
                       const char *ob)
{
	char vk[512];
	feed_vkey(a, oa, vk, sizeof vk);
	witness_allow(w, oa, vk);
	feed_vkey(b, ob, vk, sizeof vk);
	witness_allow(w, ob, vk);
}

static void copy_tree(const char *from, const char *to)
{
	struct th_run r = {0};
	const char *a[] = {"/bin/cp", "-a", from, to, NULL};
	assert_int_equal(th_run(&r, a, NULL, NULL, 0, 60), 0);
	assert_int_equal(r.status, 0);
	th_run_free(&r);
}

/* ------------------------------------------------------------- tests */

/* Three witnesses, one of them down: both feeds get cosignatures from the
 * two live ones, merged into the stored notes on both sides; the down one
 * contributes nothing; heartbeats re-cosign the unchanged checkpoint with a
 * later time, keeping the earliest too. */
static void test_cosign_two_of_three(void **state)
{
	struct fx *x = *state;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1], conf[4096];
	struct proc *w[3] = {witness_new(x, "w1"), witness_new(x, "w2"), witness_new(x, "w3")};
	for (int i = 0; i < 3; i++)
		proc_start(w[i], NULL);
	proc_stop(w[2], SIGTERM); /* down from here on; its address stays configured */
	struct proc *a = node_new(x, "supplier"), *b = node_new(x, "customer");
	node_conf(conf, sizeof conf, w, 3, 2, 5000);
	pair(a, b, conf, oa, ob);
	allow_both(w[0], a, oa, b, ob);
	allow_both(w[1], a, oa, b, ob);
	for (int i = 0; i < 3; i++)
		append_ok(a, oa, i);
	expect_size(b, oa, 4);
	struct cosigs c1, c2, c3;
	for (int i = 0; i < 2; i++) {
		expect_cosigned(a, oa, UINT64_MAX, w[i], 0, NULL);
		expect_cosigned(b, ob, UINT64_MAX, w[i], 0, NULL);
		/* The counterparty holds the supplier's cosigned checkpoint too. */
		expect_cosigned(b, oa, UINT64_MAX, w[i], 0, NULL);
	}
	expect_cosigned(a, oa, UINT64_MAX, w[0], 0, &c1);
	assert_true(c1.size >= 4);
	stored_cosigs(a, oa, c1.size, w[2], &c3);
	assert_int_equal(c3.n, 0);
	assert_true(log_has(a, w[2]->addr)); /* the failure is logged with the URL */

	/* Heartbeat: nothing changes, the same checkpoint is cosigned later. */
	uint64_t size = c1.size;
	expect_cosigned(a, oa, size, w[0], c1.latest, &c2);
	assert_true(c2.latest > c1.latest);
	assert_int_equal(c2.n, 2); /* the earliest and the latest */
	assert_int_equal(feed_size(a, oa, NULL), size);
	/* The customer's view follows the heartbeat too. */
	expect_cosigned(b, oa, size, w[0], c1.latest, NULL);

	/* The customer's `seen` receipts embed the supplier's checkpoint with
	 * its cosignatures once they are there (receipts wait 1 s; the
	 * cosignatures usually come first: a few more appends make sure). */
	int found = 0;
	for (int i = 10; i < 16 && !found; i++) {
		found = has_cosigned_seen(b, ob, w[0]);
		if (!found) {
			append_ok(a, oa, i);
			th_nap(3000);
		}
	}
	assert_true(found || has_cosigned_seen(b, ob, w[0]));
}

/* A witness restarted with its state, and a node restarted (forgetting
 * what each witness holds), both keep working: the node resynchronises on
 * the 409 and sends a consistency proof from the witness's size. */
static void test_witness_and_node_restart(void **state)
{
	struct fx *x = *state;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1], conf[4096];
	struct proc *w = witness_new(x, "w1");
	proc_start(w, NULL);
	struct proc *a = node_new(x, "supplier"), *b = node_new(x, "customer");
	node_conf(conf, sizeof conf, &w, 1, 60, 5000);
	pair(a, b, conf, oa, ob);
	allow_both(w, a, oa, b, ob);
	struct cosigs c1, c2, c3;
	append_ok(a, oa, 1);
	expect_cosigned(a, oa, UINT64_MAX, w, 0, &c1);

	proc_stop(w, SIGTERM);
	proc_start(w, NULL); /* same port, same state */
	append_ok(a, oa, 2);
	append_ok(a, oa, 3);
	expect_cosigned(a, oa, UINT64_MAX, w, 0, &c2);
	assert_true(c2.size >= c1.size + 2);

	proc_stop(a, SIGTERM);
	proc_start(a, conf);
	append_ok(a, oa, 4);
	expect_cosigned(a, oa, UINT64_MAX, w, 0, &c3);
	assert_true(c3.size >= c2.size + 1);
	expect_log(a, "resending from there");
	assert_false(log_has(a, "HALTED"));
}

/* A node restored from an old copy of its home learns from the witness
 * that its feed went further, refuses appends (exit 1, feed and sizes
 * named), and catches up when the counterparty sends its entries back. */
static void test_restored_node_halts_then_catches_up(void **state)
{
	struct fx *x = *state;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1], conf[4096], bak[4300];
	struct th_run r = {0};
	uint32_t flags = 0;
	struct proc *w = witness_new(x, "w1");
	proc_start(w, NULL);
	struct proc *a = node_new(x, "supplier"), *b = node_new(x, "customer");
	node_conf(conf, sizeof conf, &w, 1, 60, 5000);
	pair(a, b, conf, oa, ob);
	allow_both(w, a, oa, b, ob);
	append_ok(a, oa, 1);
	expect_cosigned(a, oa, UINT64_MAX, w, 0, NULL);
	expect_size(b, oa, 2);

	proc_stop(a, SIGTERM);
	snprintf(bak, sizeof bak, "%s.bak", a->home);
	copy_tree(a->home, bak);
	proc_start(a, conf);
	append_ok(a, oa, 2);
	append_ok(a, oa, 3);
	expect_size(b, oa, 4);
	struct cosigs c;
	expect_cosigned(a, oa, UINT64_MAX, w, 0, &c);
	uint64_t high = feed_size(b, oa, NULL);
	char want[128];

	/* Restore the old copy while the customer is down. */
	proc_stop(b, SIGTERM);
	proc_stop(a, SIGTERM);
	high = feed_size(b, oa, NULL);
	th_rmtree(a->home);
	copy_tree(bak, a->home);
	uint64_t low = feed_size(a, oa, NULL);
	assert_true(low >= 2 && low < c.size);
	proc_start(a, conf);
	expect_log(a, "HALTED");
	feed_size(a, oa, &flags);
	assert_true(flags & TL_FEED_HALTED);
	assert_int_equal(append(a, oa, 9, &r), 1);
	assert_non_null(strstr(r.err, oa));
	assert_non_null(strstr(r.err, "halted"));
	snprintf(want, sizeof want, "others hold %llu entries, this store has %llu",
	         (unsigned long long)c.size, (unsigned long long)low);
	if (!strstr(r.err, want))
		fail_msg("'%s' not in: %s", want, r.err);
	assert_int_equal(feed_size(a, oa, NULL), low);
	const char *fl[] = {"tally", "forks", "--json", NULL};
	assert_int_equal(tally_in(a->home, &r, fl), 0);
	json_t *j = json_loads(r.out, 0, NULL);
	json_t *h = json_array_get(json_object_get(j, "halted"), 0);
	assert_string_equal(json_string_value(json_object_get(h, "origin")), oa);
	assert_int_equal(json_integer_value(json_object_get(h, "others_size")), c.size);
	json_decref(j);
	/* Offline too: the store itself refuses. */
	proc_stop(a, SIGTERM);
	assert_int_equal(append(a, oa, 10, &r), 1);
	if (!strstr(r.err, want) || !strstr(r.err, oa))
		fail_msg("offline append on a halted feed: %s", r.err);
	assert_int_equal(feed_size(a, oa, NULL), low);
	proc_start(a, conf);

	/* The customer comes back: it sends the supplier's entries back. */
	proc_start(b, conf);
	expect_size(a, oa, high);
	expect_log(a, "no longer halted");
	feed_size(a, oa, &flags);
	assert_false(flags & TL_FEED_HALTED);
	append_ok(a, oa, 4);
	expect_size(b, oa, high + 1);
	expect_cosigned(a, oa, UINT64_MAX, w, 0, NULL);
	uint32_t bflags = 0;
	feed_size(b, oa, &bflags);
	assert_false(bflags & TL_FEED_FORKED);
	th_run_free(&r);
}

/* No witnesses: the counterparty's heads show the restored node is behind
 * on its own feed; the counterparty sends the entries back, the node takes
 * them (its own signatures, its chain) and appends after them: no fork, no
 * halt. */
static void test_restored_node_catches_up_from_peer(void **state)
{
	struct fx *x = *state;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1], conf[4096], bak[4300];
	uint32_t flags = 0;
	struct proc *a = node_new(x, "supplier"), *b = node_new(x, "customer");
	node_conf(conf, sizeof conf, NULL, 0, 60, 5000);
	pair(a, b, conf, oa, ob);
	append_ok(a, oa, 1);
	expect_size(b, oa, 2);
	proc_stop(a, SIGTERM);
	snprintf(bak, sizeof bak, "%s.bak", a->home);
	copy_tree(a->home, bak);
	proc_start(a, conf);
	for (int i = 2; i < 6; i++)
		append_ok(a, oa, i);
	expect_size(b, oa, 6);
	proc_stop(a, SIGTERM);
	uint64_t high = feed_size(b, oa, NULL);
	th_rmtree(a->home);
	copy_tree(bak, a->home);
	uint64_t low = feed_size(a, oa, NULL);
	assert_true(low < high);
	proc_start(a, conf);
	expect_size(a, oa, high);
	expect_log(a, "appends to it wait for the peer to send them back");
	expect_log(b, "back to it");
	feed_size(a, oa, &flags);
	assert_false(flags & (TL_FEED_HALTED | TL_FEED_FORKED));
	append_ok(a, oa, 6);
	expect_size(b, oa, high + 1);
	feed_size(b, oa, &flags);
	assert_false(flags & TL_FEED_FORKED);
	assert_false(log_has(a, "HALTED"));
}

/* A restored copy that appended before any node could tell it (offline,
 * the documented window): the counterparty holds the other record for that
 * seq, detects the fork, keeps and returns the proof; the proof file
 * verifies offline with no data directory, and fails once altered. */
static void test_restored_node_fork_is_proven(void **state)
{
	struct fx *x = *state;
	char oa[TL_ORIGIN_LEN + 1], ob[TL_ORIGIN_LEN + 1], conf[4096], bak[4300], proof[4300];
	char empty[4300];
	struct th_run r = {0};
	uint32_t flags = 0;
	struct proc *a = node_new(x, "supplier"), *b = node_new(x, "customer");
	node_conf(conf, sizeof conf, NULL, 0, 60, 5000);
	pair(a, b, conf, oa, ob);
	append_ok(a, oa, 1);
	expect_size(b, oa, 2);
	proc_stop(a, SIGTERM);
	snprintf(bak, sizeof bak, "%s.bak", a->home);
	copy_tree(a->home, bak);
	proc_start(a, conf);
	append_ok(a, oa, 2);
	append_ok(a, oa, 3);
	expect_size(b, oa, 4);
	proc_stop(b, SIGTERM);
	proc_stop(a, SIGTERM);
	th_rmtree(a->home);
	copy_tree(bak, a->home);
	append_ok(a, oa, 77); /* offline: seq 2 now differs from the customer's */
	assert_int_equal(feed_size(a, oa, NULL), 3);

	proc_start(b, conf);
	proc_start(a, conf);
	expect_log(b, "FORK");
	feed_size(b, oa, &flags);
	assert_true(flags & TL_FEED_FORKED);
	/* The supplier is told, verifies, keeps the proof and halts. */
	expect_log(a, "FORK evidence received and kept");
	feed_size(a, oa, &flags);
	assert_true(flags & TL_FEED_FORKED);
	assert_true(flags & TL_FEED_HALTED);
	assert_int_equal(append(a, oa, 78, &r), 1);

	const char *fl[] = {"tally", "forks", "--json", NULL};
	assert_int_equal(tally_in(b->home, &r, fl), 0);
	json_t *j = json_loads(r.out, 0, NULL);
	json_t *f0 = json_array_get(json_object_get(j, "forks"), 0);
	assert_non_null(f0);
	assert_string_equal(json_string_value(json_object_get(f0, "origin")), oa);
	assert_string_equal(json_string_value(json_object_get(f0, "type")), "records");
	assert_int_equal(json_integer_value(json_object_get(f0, "seq")), 2);
	json_decref(j);

	snprintf(proof, sizeof proof, "%s/fork.json", x->dir);
	const char *show[] = {"tally", "forks", "show", "1", "-o", proof, NULL};
	if (tally_in(b->home, &r, show) != 0)
		fail_msg("forks show: %s", r.err);
	/* Offline, no data directory at all. */
	snprintf(empty, sizeof empty, "%s/nowhere", x->dir);
	const char *ver[] = {"tally", "forks", "verify", proof, NULL};
	assert_int_equal(tally_in(empty, &r, ver), 0);
	assert_non_null(strstr(r.out, "valid fork proof"));

	/* Both records the same: not a proof. */
	size_t len = 0;
	char *text = th_read_file(proof, &len);
	json_t *pj = json_loadb(text, len, 0, NULL);
	assert_non_null(pj);
	json_object_set(pj, "b", json_object_get(pj, "a"));
	char *same = json_dumps(pj, 0);
	char bad[4300];
	snprintf(bad, sizeof bad, "%s/same.json", x->dir);
	assert_int_equal(th_write_file(bad, same, strlen(same)), 0);
	const char *ver2[] = {"tally", "forks", "verify", bad, NULL};
	assert_int_equal(tally_in(empty, &r, ver2), 1);
	free(same);
	json_decref(pj);
	/* One byte of a record changed: its signature fails. */
	pj = json_loadb(text, len, 0, NULL);
	const char *b64 = json_string_value(json_object_get(pj, "b"));
	char *mod = strdup(b64);
	mod[10] = mod[10] == 'A' ? 'B' : 'A';
	json_object_set_new(pj, "b", json_string(mod));
	char *altered = json_dumps(pj, 0);
	assert_int_equal(th_write_file(bad, altered, strlen(altered)), 0);
	assert_int_equal(tally_in(empty, &r, ver2), 1);
	free(altered);
	free(mod);
	json_decref(pj);
	free(text);
	th_run_free(&r);
}

/* A witness that accepts connections and never answers: requests run off
 * the event loop, so `tally status` answers at once, and local appends wait
 * for the witness's first answer (the restore check), as documented. */
static void test_hanging_witness(void **state)
{
	struct fx *x = *state;
	char oa[TL_ORIGIN_LEN + 1], conf[4096];
	struct th_run r = {0};
	struct proc *wk = witness_new(x, "wkey"); /* only for a valid key */
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof sa;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	x->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(x->lfd >= 0);
	assert_int_equal(bind(x->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(x->lfd, 64), 0); /* the kernel accepts; nobody answers */
	assert_int_equal(getsockname(x->lfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(wk->addr, sizeof wk->addr, "127.0.0.1:%d", ntohs(sa.sin_port));

	struct proc *a = node_new(x, "supplier"), *b = node_new(x, "customer");
	node_conf(conf, sizeof conf, &wk, 1, 60, 60000);
	proc_start(a, conf);
	proc_start(b, conf);
	channel_open(a, b, oa);
	/* Restarted with an own feed: its first witness answer is awaited
	 * before local appends (and a stop cancels the hanging request). */
	proc_stop(a, SIGTERM);
	assert_true(log_has(a, "stopped"));
	proc_start(a, conf);
	th_nap(500);
	const char *st[] = {"tally", "--json", "status", NULL};
	uint64_t t0 = th_mono_ms();
	assert_int_equal(tally_in(a->home, &r, st), 0);
	uint64_t took = th_mono_ms() - t0;
	/* The request hangs for 60 s; a loop blocked by it could not answer
	 * within a fraction of that. */
	assert_true(took < 20000);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "appends_open")));
	json_decref(j);
	th_run_free(&r);
}

int main(void)
{
	if (tl_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_cosign_two_of_three, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_witness_and_node_restart, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_restored_node_halts_then_catches_up, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_restored_node_catches_up_from_peer, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_restored_node_fork_is_proven, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hanging_witness, setup, teardown),
	};
	return cmocka_run_group_tests_name("witness_node", tests, NULL, NULL);
}
