/*
 * daemon.c — tallyd: control socket, peer sessions, replication, receipts.
 *
 * Threads: the libuv loop thread owns every handle and all in-memory state.
 * Store writes and bulk signature checks run as jobs on the thread pool, one
 * at a time (LMDB has one writer anyway), and finish on the loop. Reads of
 * the store on the loop are short LMDB read transactions.
 *
 * Replication (docs/protocol.md, "Replication"): after the session opens,
 * each side announces the sizes of the feeds of their channels ("heads").
 * Each author keeps, per peer, a cursor into its own feed and pushes records
 * from there in batches, each with a checkpoint it signs for the batch end,
 * whenever the peer's write queue has room: on connect, on append, and as
 * writes drain. The receiver verifies everything off the loop before it
 * stores a batch in one transaction.
 */
#include "blob_repl.h"
#include "tl_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "auditor.h"
#include "wclient.h"

#define BATCH_RECORDS       2048
#define BATCH_BYTES         (1u << 20)
#define MAX_PENDING_INGEST  4 /* per peer; reading pauses beyond it */
#define CTL_LINE_MAX        (64u << 20)
#define CTL_INLINE_MAX      (64u << 10) /* larger requests are parsed off the loop */
#define RECEIPT_INTERVAL_MS 1000
#define BACKOFF_MIN_MS      200
#define BACKOFF_MAX_MS      30000
#define HELLO_MAGIC         "TLYH"
#define HOLD_MAX            16
#define RETURNS_MAX         8 /* feeds sent back to one peer per session */
#define HOLD_MS             10000
#define HELLO_LEN           (4 + TL_PUB_LEN)

struct node;

struct book {
	char name[TL_BOOK_NAME_MAX + 1];
	struct tl_keypair kp;
};

/* ------------------------------------------------------------ logging */

static int g_log_level = 2; /* set once at start, before any thread */

TL_PRINTF(2, 3)
static void logm(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	if (level > g_log_level)
		return;
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ tallyd %s: ", when, ts.tv_nsec / 1000000, names[level]);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void short_hex(char out[17], const uint8_t *pk)
{
	tl_hex_encode(out, pk, 8);
}

/* ------------------------------------------------------------- config */

void tl_node_config_defaults(struct tl_node_config *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->listen, sizeof c->listen, "127.0.0.1:0");
	c->log_level = 2;
	c->idle_timeout_ms = 60000;
	c->handshake_timeout_ms = 10000;
	c->keepalive_ms = 15000;
	c->peer_wq_max = 8u << 20;
	c->blob_max = TL_BLOB_MAX_DEFAULT;
	c->witness_heartbeat_s = 60;
	c->witness_timeout_ms = 10000;
}

int tl_node_config_load(struct tl_node_config *c, const char *path, char *err, size_t errcap)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int lineno = 0;
	if (!f) {
		snprintf(err, errcap, "cannot open config '%s': %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *p = line, *eq, *k, *v, *end;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errcap, "%s:%d: line too long", path, lineno);
			goto bad;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == 0)
			continue;
		if (!(eq = strchr(p, '='))) {
			snprintf(err, errcap, "%s:%d: expected 'key = value'", path, lineno);
			goto bad;
		}
		k = p;
		end = eq;
		while (end > k && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		*end = 0;
		v = eq + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		end = v + strlen(v);
		while (end > v && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
			end--;
		*end = 0;
		if (strcmp(k, "home") == 0) {
			snprintf(c->home, sizeof c->home, "%s", v);
		} else if (strcmp(k, "listen") == 0) {
			snprintf(c->listen, sizeof c->listen, "%s", v);
		} else if (strcmp(k, "log") == 0) {
			static const char *const lv[] = {"error", "warn", "info", "debug"};
			int found = -1;
			for (int i = 0; i < 4; i++)
				if (strcmp(v, lv[i]) == 0)
					found = i;
			if (found < 0) {
				snprintf(err, errcap,
				         "%s:%d: log must be error, warn, info or debug", path,
				         lineno);
				goto bad;
			}
			c->log_level = found;
		} else if (strcmp(k, "idle_timeout_ms") == 0 ||
		           strcmp(k, "handshake_timeout_ms") == 0 ||
		           strcmp(k, "keepalive_ms") == 0) {
			uint64_t n;
			if (tl_parse_u64(v, strlen(v), &n) != 0 || n == 0 || n > 86400000) {
				snprintf(err, errcap, "%s:%d: %s must be 1..86400000", path, lineno,
				         k);
				goto bad;
			}
			unsigned *slot = strcmp(k, "idle_timeout_ms") == 0 ? &c->idle_timeout_ms
			                 : strcmp(k, "keepalive_ms") == 0
			                         ? &c->keepalive_ms
			                         : &c->handshake_timeout_ms;
			*slot = (unsigned)n;
		} else if (strcmp(k, "witness") == 0) {
			/* "URL VKEY": the URL has no spaces; the key is checked now so
			 * that a typo stops the node at start, not at the first append. */
			char *sp = v + strcspn(v, " \t");
			char *key = sp;
			struct tl_vkey wk;
			while (*key == ' ' || *key == '\t')
				key++;
			*sp = 0;
			if (c->nwitnesses == TL_NODE_WITNESS_MAX) {
				snprintf(err, errcap, "%s:%d: more than %d witnesses", path, lineno,
				         TL_NODE_WITNESS_MAX);
				goto bad;
			}
			if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
			    strlen(v) >= sizeof c->witness[0].url) {
				snprintf(err, errcap,
				         "%s:%d: witness needs 'URL VKEY' with an http:// or "
				         "https:// URL",
				         path, lineno);
				goto bad;
			}
			if (strlen(key) >= sizeof c->witness[0].vkey ||
			    tl_vkey_parse(&wk, key, strlen(key)) != 0 ||
			    wk.type != TL_SIGTYPE_COSIG) {
				snprintf(err, errcap,
				         "%s:%d: witness key '%.80s' is not a cosignature (type "
				         "0x04) verifier key",
				         path, lineno, key);
				goto bad;
			}
			snprintf(c->witness[c->nwitnesses].url, sizeof c->witness[0].url, "%s", v);
			snprintf(c->witness[c->nwitnesses].vkey, sizeof c->witness[0].vkey, "%s",
			         key);
			c->nwitnesses++;
		} else if (strcmp(k, "witness_heartbeat") == 0 ||
		           strcmp(k, "witness_timeout_ms") == 0) {
			uint64_t n;
			int hb = strcmp(k, "witness_heartbeat") == 0;
			if (tl_parse_u64(v, strlen(v), &n) != 0 || n == 0 ||
			    n > (hb ? 86400u : 600000u)) {
				snprintf(err, errcap, "%s:%d: %s must be 1..%u", path, lineno, k,
				         hb ? 86400u : 600000u);
				goto bad;
			}
			if (hb)
				c->witness_heartbeat_s = (unsigned)n;
			else
				c->witness_timeout_ms = (unsigned)n;
		} else if (strcmp(k, "blob_max") == 0) {
			uint64_t n;
			if (tl_parse_u64(v, strlen(v), &n) != 0 || n == 0 || n > TL_BLOB_MAX_LIMIT) {
				snprintf(err, errcap, "%s:%d: blob_max must be 1..%llu bytes", path,
				         lineno, (unsigned long long)TL_BLOB_MAX_LIMIT);
				goto bad;
			}
			c->blob_max = n;
		} else {
			snprintf(err, errcap, "%s:%d: unknown setting '%s'", path, lineno, k);
			goto bad;
		}
	}
	fclose(f);
	return 0;
bad:
	fclose(f);
	return -1;
}

/* ------------------------------------------------------- structures */

enum peer_state { P_CONNECTING, P_HELLO, P_HANDSHAKE, P_OPEN, P_CLOSING };

struct cursor {
	char origin[TL_ORIGIN_LEN + 1]; /* one of our own feeds in this channel */
	uint64_t sent;                  /* the peer has (or will have) [0, sent) */
	int known;                      /* set once the peer's heads arrived */
};

struct peer {
	struct node *n;
	uv_tcp_t tcp;
	struct peer *next;
	enum peer_state state;
	int outbound;
	struct target *target; /* outbound: what we dialled */
	struct book *book;     /* our side */
	uint8_t remote[TL_PUB_LEN];
	char addr[TL_ADDR_MAX + 1];
	struct tl_hs *hs;
	struct tl_session sess;
	struct tl_buf rbuf;
	size_t wqueued;
	int pending_ingest;                  /* batches received, not yet stored */
	struct job *inq[MAX_PENDING_INGEST]; /* being verified, in arrival order */
	int inq_n;
	int reading;
	uint64_t last_rx, opened_at, last_ping;
	struct cursor *cursors;
	size_t ncursors;
	int audit;  /* inbound, read-only: an auditor this book admitted (auditor.c) */
	int follow; /* outbound: we are the auditor; the peer relays followed feeds */
	/* Its own feeds we sent entries of back this session (return_push):
	 * one batch each per session, whatever its heads say. */
	char returned[RETURNS_MAX][TL_ORIGIN_LEN + 1];
	int nreturned;
};

/* A remote book we should keep a session with (from the peers table). */
struct target {
	struct target *next;
	struct tl_peer p;
	struct book *book;
	struct peer *conn;
	uint64_t next_try;
	unsigned backoff;
	int dialing;
};

struct ctl {
	struct node *n;
	uv_pipe_t pipe;
	struct ctl *next;
	struct tl_buf rbuf;
	int watching;
	int closing;
	int busy; /* a request is being served */
	char watch_channel[TL_CHANNEL_LEN * 2 + 1];
};

enum job_type { J_APPEND, J_INGEST, J_CHANNEL_OPEN, J_CP, J_FORK };

struct job {
	uv_work_t req;  /* the store stage (serialised) */
	uv_work_t vreq; /* the verification stage (parallel) */
	int verified, vrc;
	size_t vbad;
	struct node *n;
	struct job *next;
	enum job_type type;
	int rc;
	char err[512];
	/* who asked */
	struct ctl *ctl;
	struct peer *peer;
	json_t *reply_id;
	/* J_APPEND */
	struct tl_buf raw; /* a large request, parsed on the thread pool */
	char origin[TL_ORIGIN_LEN + 1];
	struct book *book;
	struct tl_item *items;
	struct tl_buf kinds, bodies;
	size_t nitems;
	struct tl_appended *out;
	/* J_INGEST */
	struct tl_buf recbuf;
	size_t *recoff;
	size_t nrec;
	uint64_t first;
	struct tl_buf note;
	uint64_t new_size, stored;
	int forked;
	int has_content; /* some record is not a "seen" receipt */
	/* J_INGEST / J_CP finding a fork, J_FORK receiving one: the two signed
	 * objects (records, or checkpoint notes when fork_cp) and where. */
	struct tl_buf fa, fb, fx; /* fx: root and proof (TL_FORK_CONSISTENCY) */
	int fork_cp;              /* 0 records, 1 checkpoints, 3 consistency */
	uint64_t fork_at;
	int halted_now; /* J_INGEST: this batch proved the own feed is behind */
	/* J_CP: the note verified and filtered off the loop (in note) */
	int cp_bad;
	size_t cp_added;
	int own_return; /* J_INGEST of our own records sent back by the peer */
	/* J_CHANNEL_OPEN */
	uint8_t peer_pk[TL_PUB_LEN];
	char label[TL_LABEL_MAX + 1];
	char addr[TL_ADDR_MAX + 1];
	char peer_origin[TL_ORIGIN_LEN + 1];
};

struct receipt {
	struct receipt *next;
	char own[TL_ORIGIN_LEN + 1];  /* our feed that gets the `seen` entry */
	char seen[TL_ORIGIN_LEN + 1]; /* the counterparty feed */
	uint64_t due;
};

struct node {
	struct tl_node_config cfg;
	uv_loop_t loop;
	struct tl_store *store;
	struct book *books;
	size_t nbooks;
	uv_tcp_t listener;
	uv_pipe_t control;
	uv_signal_t sigterm, sigint;
	uv_timer_t tick;
	uv_async_t kick; /* a batch of a local append is durable: push it */
	struct peer *peers;
	struct target *targets;
	struct ctl *ctls;
	struct job *jobs_head, *jobs_tail;
	int job_running;
	struct receipt *receipts;
	/* witnesses (docs/operations.md, "Witnesses") */
	struct tl_vkey wkeys[TL_NODE_WITNESS_MAX];
	struct wsub *wsubs;
	int w_inflight;
	uint64_t w_refreshed;
	atomic_int w_cancel; /* set at shutdown: requests in flight give up */
	/* Local appends wait until every witness answered once (or the gate
	 * times out): a node restored from an old copy learns it first. */
	int gate_open, probes_pending;
	uint64_t gate_deadline;
	/* Own feeds a counterparty says it holds more of: appends wait (refused
	 * for HOLD_MS) while it sends them back. Read by append_prepare, which
	 * may run on the thread pool: hence the mutex. */
	pthread_mutex_t hold_mu;
	struct hold {
		char origin[TL_ORIGIN_LEN + 1];
		/* until: 0 released (the peer sent entries back; a later claim may
		 * hold again), else the end of the hold. One that ran out without
		 * entries coming back is not armed again for that origin in this
		 * run: a lying peer gets one hold, not an endless series. */
		uint64_t until, others;
	} holds[HOLD_MAX];
	int stopping;
	int lockfd;
	char sock_path[4200];
	char addr_path[4200];
	struct tl_blob_repl *blobs;   /* blob_repl.c: vouchers on demand */
	struct tl_auditors *auditors; /* admissions of auditors to own feeds */
};

static void pump(struct peer *p);
static void peer_close(struct peer *p, const char *why);
static void job_submit(struct node *n, struct job *j);
static void emit(struct node *n, const char *event, const char *origin, uint64_t seq,
                 uint64_t count, const char *kind, const uint8_t *leaf);

static struct book *book_by_pk(struct node *n, const uint8_t pk[TL_PUB_LEN])
{
	for (size_t i = 0; i < n->nbooks; i++)
		if (memcmp(n->books[i].kp.pk, pk, TL_PUB_LEN) == 0)
			return &n->books[i];
	return NULL;
}

static struct book *book_by_name(struct node *n, const char *name)
{
	for (size_t i = 0; i < n->nbooks; i++)
		if (strcmp(n->books[i].name, name) == 0)
			return &n->books[i];
	return NULL;
}

/* ------------------------------------------------------- frames out */

struct wreq {
	uv_write_t req;
	struct peer *p;
	size_t len;
	uint8_t data[];
};

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct peer *p = w->p;
	p->wqueued -= w->len;
	free(w);
	if (status < 0) {
		if (p->state != P_CLOSING)
			peer_close(p, uv_strerror(status));
		return;
	}
	if (p->state == P_OPEN)
		pump(p);
	if (p->state == P_OPEN)
		tl_blob_repl_drain(p->n->blobs, p);
}

static int send_raw(struct peer *p, const uint8_t *data, size_t len)
{
	struct wreq *w = malloc(sizeof *w + len);
	if (!w)
		return TL_ENOMEM;
	w->p = p;
	w->len = len;
	memcpy(w->data, data, len);
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
	int rc = uv_write(&w->req, (uv_stream_t *)&p->tcp, &b, 1, on_write);
	if (rc < 0) {
		free(w);
		return TL_EIO;
	}
	p->wqueued += len;
	return 0;
}

/* Seals one message and queues it. A peer that lets far more than its cap
 * pile up is not reading: it is dropped instead of growing our memory. */
static int send_msg(struct peer *p, const uint8_t *msg, size_t len)
{
	struct tl_buf f;
	int rc;
	if (p->wqueued > 2 * p->n->cfg.peer_wq_max) {
		peer_close(p, "peer is not reading; write queue over its cap");
		return TL_ETOOBIG;
	}
	tl_buf_init(&f, TL_FRAME_MAX + TL_FRAME_OVERHEAD);
	if ((rc = tl_session_seal(&p->sess, msg, len, &f)) == 0)
		rc = send_raw(p, f.data, f.len);
	tl_buf_release(&f);
	return rc;
}

static int pack_write(void *data, const char *buf, size_t len)
{
	return tl_buf_add(data, buf, len) == 0 ? 0 : -1;
}

/* ["heads", [[origin, size], ...]]: our own feeds of the channel and our
 * copies of the peer's feeds. */
/* ask: the peer should answer with its own heads (sent when a channel is
 * opened on a live session, so that both sides learn where the other is). */
static void send_heads(struct peer *p, int ask)
{
	struct tl_feed *feeds = NULL;
	size_t nf = 0, k = 0;
	struct tl_buf m;
	msgpack_packer pk;
	/* An auditor gets, per channel that admits it, both feeds (a cursor
	 * each: the counterparty's feed is relayed). */
	if (p->audit) {
		if (tl_auditors_feeds(p->n->auditors, p->n->store, p->book->name, p->remote, &feeds,
		                      &nf) != 0)
			return;
		k = nf;
	} else if (tl_store_feed_list(p->n->store, &feeds, &nf) != 0)
		return;
	for (size_t i = 0; i < nf && !p->audit; i++) {
		const struct tl_feed *f = &feeds[i];
		int own = (f->flags & TL_FEED_OWN) && strcmp(f->book, p->book->name) == 0 &&
		          memcmp(f->peer, p->remote, TL_PUB_LEN) == 0;
		int theirs = !(f->flags & TL_FEED_OWN) && memcmp(f->o.pk, p->remote, 32) == 0 &&
		             memcmp(f->peer, p->book->kp.pk, TL_PUB_LEN) == 0;
		int followed = p->follow && (f->flags & TL_FEED_AUDIT) &&
		               strcmp(f->book, p->book->name) == 0 &&
		               memcmp(f->peer, p->remote, TL_PUB_LEN) == 0;
		if (own || theirs || followed)
			feeds[k++] = *f;
	}
	tl_buf_init(&m, TL_FRAME_MAX);
	msgpack_packer_init(&pk, &m, pack_write);
	msgpack_pack_array(&pk, ask ? 3 : 2);
	msgpack_pack_str_with_body(&pk, "heads", 5);
	msgpack_pack_array(&pk, (uint32_t)k);
	for (size_t i = 0; i < k; i++) {
		msgpack_pack_array(&pk, 2);
		msgpack_pack_str_with_body(&pk, feeds[i].origin, TL_ORIGIN_LEN);
		msgpack_pack_uint64(&pk, feeds[i].head.size);
	}
	if (ask)
		msgpack_pack_true(&pk);
	/* A cursor for each of our own feeds: kept where one exists already; a
	 * new one is unknown until the peer's heads say where the peer is. */
	struct cursor *nc = calloc(k ? k : 1, sizeof *nc);
	size_t nn = 0;
	for (size_t i = 0; i < k && nc; i++) {
		if (!(feeds[i].flags & TL_FEED_OWN) && !p->audit)
			continue;
		memcpy(nc[nn].origin, feeds[i].origin, TL_ORIGIN_LEN + 1);
		for (size_t c = 0; c < p->ncursors; c++)
			if (strcmp(p->cursors[c].origin, nc[nn].origin) == 0)
				nc[nn] = p->cursors[c];
		nn++;
	}
	if (nc) {
		free(p->cursors);
		p->cursors = nc;
		p->ncursors = nn;
	}
	send_msg(p, m.data, m.len);
	tl_buf_release(&m);
	free(feeds);
}

static void send_simple(struct peer *p, const char *what)
{
	uint8_t m[16];
	size_t l = strlen(what);
	m[0] = 0x91;
	m[1] = (uint8_t)(0xa0 | l);
	memcpy(m + 2, what, l);
	send_msg(p, m, 2 + l);
}

/* --------------------------------------------------- push (the pump) */

struct collect {
	struct tl_buf *out;
	msgpack_packer *pk;
	size_t bytes;
	uint64_t *seq; /* next seq to send, advanced per record taken */
};

#define COLLECT_FULL 1 /* stops the scan: the batch's byte budget is spent */

static int collect_rec(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                       const uint8_t leaf[TL_HASH_LEN])
{
	struct collect *c = ctx;
	(void)leaf;
	if (c->bytes && c->bytes + len > BATCH_BYTES)
		return COLLECT_FULL;
	c->bytes += len;
	*c->seq = seq + 1;
	return msgpack_pack_bin_with_body(c->pk, rec, len) == 0 ? 0 : TL_ENOMEM;
}

/* Signs a checkpoint of an own feed at size with the book key. */
static int sign_checkpoint(struct node *n, struct book *b, const struct tl_feed *f, uint64_t size,
                           struct tl_buf *note)
{
	struct tl_checkpoint cp;
	struct tl_buf text;
	int rc;
	memset(&cp, 0, sizeof cp);
	memcpy(cp.origin, f->origin, TL_ORIGIN_LEN + 1);
	cp.size = size;
	tl_buf_init(&text, 1024);
	if ((rc = tl_store_root(n->store, f, size, cp.root)) == 0 &&
	    (rc = tl_checkpoint_format(&cp, &text)) == 0)
		rc = tl_note_sign(note, (const char *)text.data, text.len, f->origin, &b->kp);
	tl_buf_release(&text);
	return rc;
}

/* One batch of a feed this node does not write, to an auditor: it ends at
 * a checkpoint its author signed (auditor.c). 0 when sent. */
static int relay(struct peer *p, struct cursor *c, const struct tl_feed *f)
{
	struct tl_buf m;
	uint64_t end = 0;
	tl_buf_init(&m, TL_FRAME_MAX);
	int rc = tl_auditor_relay(p->n->store, f, c->sent, &m, &end);
	if (rc == 0) {
		logm(3, "auditor %s: relaying %s [%llu, %llu)", p->addr, f->origin,
		     (unsigned long long)c->sent, (unsigned long long)end);
		c->sent = end;
		send_msg(p, m.data, m.len);
	} else if (rc != TL_ENOTFOUND) {
		logm(0, "feed %s: cannot relay entries from seq %llu to auditor %s: %s", f->origin,
		     (unsigned long long)c->sent, p->addr,
		     rc == TL_ETOOBIG ? "the batch up to the next stored checkpoint exceeds a frame"
		                      : tl_store_errmsg(p->n->store));
	}
	tl_buf_release(&m);
	return rc;
}

/* Pushes records of our feeds while the peer's queue has room. */
static void pump(struct peer *p)
{
	struct node *n = p->n;
	for (size_t i = 0; i < p->ncursors && p->state == P_OPEN; i++) {
		struct cursor *c = &p->cursors[i];
		struct tl_feed f;
		if (!c->known || tl_store_feed_get(n->store, c->origin, &f) != 0)
			continue;
		/* The book that signs batch checkpoints; none: relayed (auditors). */
		struct book *signer = (f.flags & TL_FEED_OWN) ? book_by_name(n, f.book) : NULL;
		while (c->sent < f.head.size && p->wqueued < n->cfg.peer_wq_max &&
		       p->state == P_OPEN) {
			if (!signer) {
				if (relay(p, c, &f) != 0)
					break;
				continue;
			}
			uint64_t end = c->sent + BATCH_RECORDS;
			struct tl_buf m, note;
			msgpack_packer pk;
			if (end > f.head.size)
				end = f.head.size;
			tl_buf_init(&m, TL_FRAME_MAX);
			tl_buf_init(&note, TL_NOTE_MAX);
			msgpack_packer_init(&pk, &m, pack_write);
			/* ["recs", origin, first, [rec...], checkpoint note] */
			msgpack_pack_array(&pk, 5);
			msgpack_pack_str_with_body(&pk, "recs", 4);
			msgpack_pack_str_with_body(&pk, f.origin, TL_ORIGIN_LEN);
			msgpack_pack_uint64(&pk, c->sent);
			/* The count is patched below once the byte budget is known. */
			size_t count_at = m.len;
			msgpack_pack_array(&pk, 0xffff);
			struct collect col = {&m, &pk, 0, NULL};
			uint64_t seq = c->sent;
			int rc = 0;
			col.seq = &seq;
			rc = tl_store_scan(n->store, &f, seq, end, collect_rec, &col);
			if (rc == COLLECT_FULL)
				rc = 0;
			if (rc == 0)
				rc = sign_checkpoint(n, signer, &f, seq, &note);
			if (rc) {
				logm(0, "feed %s: cannot read records to send: %s", f.origin,
				     tl_store_errmsg(n->store));
				tl_buf_release(&m);
				tl_buf_release(&note);
				return;
			}
			uint16_t cnt = (uint16_t)(seq - c->sent);
			m.data[count_at + 1] = (uint8_t)(cnt >> 8);
			m.data[count_at + 2] = (uint8_t)cnt;
			/* array16 for < 16 elements is not canonical: re-pack small ones. */
			if (cnt < 16) {
				m.data[count_at] = (uint8_t)(0x90 | cnt);
				memmove(m.data + count_at + 1, m.data + count_at + 3,
				        m.len - count_at - 3);
				m.len -= 2;
			}
			msgpack_pack_str_with_body(&pk, (const char *)note.data, note.len);
			logm(3, "peer %s: sending %s [%llu, %llu)", p->addr, f.origin,
			     (unsigned long long)c->sent, (unsigned long long)seq);
			c->sent = seq;
			send_msg(p, m.data, m.len);
			tl_buf_release(&m);
			tl_buf_release(&note);
		}
	}
}

static void pump_all(struct node *n)
{
	for (struct peer *p = n->peers; p; p = p->next)
		if (p->state == P_OPEN)
			pump(p);
}

/* ------------------------------------------------------- frames in */

/* Looks up the peer-side feed for an origin the remote may write. */
static int remote_feed(struct peer *p, const char *origin, size_t len, struct tl_feed *f)
{
	char o[TL_ORIGIN_LEN + 1];
	if (len != TL_ORIGIN_LEN)
		return -1;
	memcpy(o, origin, len);
	o[len] = 0;
	if (tl_store_feed_get(p->n->store, o, f) != 0)
		return -1;
	if ((f->flags & TL_FEED_OWN) || memcmp(f->o.pk, p->remote, 32) != 0 ||
	    memcmp(f->peer, p->book->kp.pk, 32) != 0)
		return -1;
	return 0;
}

struct cp_pick {
	uint64_t lo, hi, best; /* the largest stored size in (lo, hi] */
};

static int pick_cp(void *ctx, uint64_t size, const char *note, size_t len)
{
	struct cp_pick *c = ctx;
	(void)note;
	(void)len;
	if (size > c->lo && size <= c->hi)
		c->best = size;
	return size > c->hi; /* sizes ascend: stop past hi */
}

/*
 * The peer's node holds less of its own feed than we do: restored from an
 * old copy. Its own records go back to it (one batch per session, ending at
 * a checkpoint it signed), so that it can catch up instead of forking.
 */
static void return_push(struct peer *p, const struct tl_feed *f, uint64_t their)
{
	struct node *n = p->n;
	struct cp_pick cpk = {their, their, 0};
	struct tl_buf m, note;
	msgpack_packer pk;
	uint64_t seq = their;
	/* One batch per feed per session (a heads message is a few bytes; the
	 * batch up to a MiB), and never past the peer's write queue limit. */
	if (p->wqueued >= n->cfg.peer_wq_max || p->nreturned == RETURNS_MAX)
		return;
	for (int i = 0; i < p->nreturned; i++)
		if (strcmp(p->returned[i], f->origin) == 0)
			return;
	/* How far one batch reaches (records and bytes), then the largest size
	 * within it at which we hold the author's signed checkpoint. */
	tl_buf_init(&m, TL_FRAME_MAX);
	msgpack_packer_init(&pk, &m, pack_write);
	struct collect probe = {&m, &pk, 0, &seq};
	if (tl_store_scan(n->store, f, their, their + BATCH_RECORDS, collect_rec, &probe) < 0) {
		tl_buf_release(&m);
		return;
	}
	cpk.hi = seq;
	tl_buf_release(&m);
	if (tl_store_checkpoint_scan_from(n->store, f, their + 1, pick_cp, &cpk) < 0 ||
	    cpk.best == 0 ||
	    cpk.best > f->head.size)
		return;
	tl_buf_init(&m, TL_FRAME_MAX);
	tl_buf_init(&note, TL_NOTE_MAX);
	msgpack_packer_init(&pk, &m, pack_write);
	seq = their;
	size_t cnt = (size_t)(cpk.best - their);
	struct collect col = {&m, &pk, 0, &seq};
	msgpack_pack_array(&pk, 5);
	msgpack_pack_str_with_body(&pk, "recs", 4);
	msgpack_pack_str_with_body(&pk, f->origin, TL_ORIGIN_LEN);
	msgpack_pack_uint64(&pk, their);
	msgpack_pack_array(&pk, (uint32_t)cnt);
	/* The whole range or nothing: the checkpoint is for its end. */
	int rc = tl_store_scan(n->store, f, their, cpk.best, collect_rec, &col);
	if (rc == 0 && seq == cpk.best &&
	    tl_store_checkpoint_get(n->store, f, cpk.best, &note, NULL) == 0 &&
	    m.len + note.len + 16 <= TL_FRAME_MAX) {
		msgpack_pack_str_with_body(&pk, (const char *)note.data, note.len);
		logm(1,
		     "peer %s holds %llu entries of its own feed %s, we hold %llu: sending "
		     "[%llu, %llu) back to it",
		     p->addr, (unsigned long long)their, f->origin,
		     (unsigned long long)f->head.size, (unsigned long long)their,
		     (unsigned long long)cpk.best);
		send_msg(p, m.data, m.len);
		memcpy(p->returned[p->nreturned++], f->origin, TL_ORIGIN_LEN + 1);
	}
	tl_buf_release(&m);
	tl_buf_release(&note);
}

/*
 * The peer says it holds more of our own feed than we do. Its word alone
 * does not halt the feed (a counterparty must not be able to block our
 * appends): appends to it are refused for HOLD_MS while the peer sends our
 * entries back with our own signed checkpoint (return_push). That either
 * catches us up or, if they do not fit, proves we are behind and halts the
 * feed (ingest).
 */
static void hold_feed(struct peer *p, const struct tl_feed *f, uint64_t others)
{
	struct node *n = p->n;
	size_t slot = HOLD_MAX;
	uint64_t now = now_ms();
	int armed = 0;
	pthread_mutex_lock(&n->hold_mu);
	for (size_t i = 0; i < HOLD_MAX; i++)
		if (strcmp(n->holds[i].origin, f->origin) == 0)
			slot = i;
	for (size_t i = 0; i < HOLD_MAX && slot == HOLD_MAX; i++)
		if (!n->holds[i].origin[0] || n->holds[i].until == 0)
			slot = i;
	if (slot < HOLD_MAX && (!n->holds[slot].origin[0] || n->holds[slot].until == 0 ||
	                        strcmp(n->holds[slot].origin, f->origin) != 0)) {
		memcpy(n->holds[slot].origin, f->origin, sizeof n->holds[slot].origin);
		n->holds[slot].until = now + HOLD_MS;
		n->holds[slot].others = others;
		armed = 1;
	} else if (slot < HOLD_MAX && n->holds[slot].until > now) {
		armed = 1; /* running: not extended */
	}
	pthread_mutex_unlock(&n->hold_mu);
	if (armed)
		logm(1,
		     "peer %s holds %llu entries of our feed %s but we have %llu: this node may "
		     "be restored from an old copy; appends to it wait for the peer to send them "
		     "back",
		     p->addr, (unsigned long long)others, f->origin,
		     (unsigned long long)f->head.size);
	else
		logm(1,
		     "peer %s claims %llu entries of our feed %s (we have %llu) but sent none "
		     "back when asked before: appends are not held again",
		     p->addr, (unsigned long long)others, f->origin,
		     (unsigned long long)f->head.size);
}

/* Entries of origin came back from the counterparty: stored (ok), or not
 * (the hold ends now and is not armed again). */
static void hold_release(struct node *n, const char *origin, int ok)
{
	pthread_mutex_lock(&n->hold_mu);
	for (size_t i = 0; i < HOLD_MAX; i++)
		if (strcmp(n->holds[i].origin, origin) == 0)
			n->holds[i].until = ok ? 0 : 1;
	pthread_mutex_unlock(&n->hold_mu);
}

/* Any thread. Non-zero (and *others) while appends to origin are held. */
static int held(struct node *n, const char *origin, uint64_t *others)
{
	int h = 0;
	uint64_t now = now_ms();
	pthread_mutex_lock(&n->hold_mu);
	for (size_t i = 0; i < HOLD_MAX && !h; i++)
		if (n->holds[i].until > now && strcmp(n->holds[i].origin, origin) == 0) {
			h = 1;
			*others = n->holds[i].others;
		}
	pthread_mutex_unlock(&n->hold_mu);
	return h;
}

/* Any thread. Non-zero while appends to f are held; err says why. */
static int held_msg(struct node *n, const struct tl_feed *f, char *err, size_t errcap)
{
	uint64_t others = 0;
	if (!held(n, f->origin, &others))
		return 0;
	snprintf(err, errcap,
	         "feed %s: the counterparty reports %llu entries of it but this node has "
	         "%llu (restored from an old copy?); waiting for it to send them back — "
	         "retry in a few seconds",
	         f->origin, (unsigned long long)others, (unsigned long long)f->head.size);
	return 1;
}

static void share_cp_peer(struct peer *p, const struct cursor *c, uint64_t size);

/* One of our own feeds in a channel with the peer. */
static int own_feed(struct peer *p, const char *origin, size_t len, struct tl_feed *f)
{
	char o[TL_ORIGIN_LEN + 1];
	if (len != TL_ORIGIN_LEN)
		return -1;
	memcpy(o, origin, len);
	o[len] = 0;
	if (tl_store_feed_get(p->n->store, o, f) != 0)
		return -1;
	return (f->flags & TL_FEED_OWN) && strcmp(f->book, p->book->name) == 0 &&
	                       memcmp(f->peer, p->remote, TL_PUB_LEN) == 0
	               ? 0
	               : -1;
}

/* A feed this peer may send us records, checkpoints or fork evidence of:
 * its own feed in a channel with us, a feed we follow read-only from it
 * (we are its auditor), or with own also our own feed in the channel (sent
 * back to a restored node, return_push; or a fork proof about it). */
static int peer_feed(struct peer *p, const char *origin, size_t len, int own, struct tl_feed *f)
{
	if (remote_feed(p, origin, len, f) == 0 || (own && own_feed(p, origin, len, f) == 0))
		return 0;
	return p->follow && tl_auditor_followed(p->n->store, p->book->name, p->remote, origin,
	                                        len, f) == 0
	               ? 0
	               : -1;
}

static void handle_heads(struct peer *p, const msgpack_object *list)
{
	if (list->type != MSGPACK_OBJECT_ARRAY) {
		peer_close(p, "malformed heads");
		return;
	}
	for (uint32_t i = 0; i < list->via.array.size; i++) {
		const msgpack_object *h = &list->via.array.ptr[i];
		if (h->type != MSGPACK_OBJECT_ARRAY || h->via.array.size != 2 ||
		    h->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
		    h->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
			peer_close(p, "malformed heads");
			return;
		}
		const msgpack_object_str *o = &h->via.array.ptr[0].via.str;
		uint64_t size = h->via.array.ptr[1].via.u64;
		for (size_t c = 0; c < p->ncursors; c++) {
			if (o->size != TL_ORIGIN_LEN ||
			    memcmp(p->cursors[c].origin, o->ptr, TL_ORIGIN_LEN) != 0)
				continue;
			struct tl_feed f;
			if (tl_store_feed_get(p->n->store, p->cursors[c].origin, &f) != 0)
				continue;
			if (size > f.head.size && !p->audit)
				hold_feed(p, &f, size);
			p->cursors[c].sent = size < f.head.size ? size : f.head.size;
			/* The last record the peer holds is sent again: identical, it
			 * is skipped; different, it is the proof that this feed forked
			 * (a node restored from an old copy that appended since). */
			if (p->cursors[c].sent > 0)
				p->cursors[c].sent--;
			p->cursors[c].known = 1;
		}
		struct tl_feed rf;
		if (remote_feed(p, o->ptr, o->size, &rf) == 0 && size < rf.head.size)
			return_push(p, &rf, size);
	}
	pump(p);
	/* Then the latest checkpoint of each own feed, cosignatures included:
	 * the peer keeps the cosignatures, and checks the root against the
	 * records it holds. */
	for (size_t c = 0; c < p->ncursors && p->state == P_OPEN; c++)
		if (p->cursors[c].known)
			share_cp_peer(p, &p->cursors[c], UINT64_MAX);
}

static int verify_sigs(const struct tl_rec *recs, size_t m, size_t *bad);
static void job_free(struct job *j);
static void job_submit(struct node *n, struct job *j);

static void verify_work(uv_work_t *req)
{
	struct job *j = req->data;
	struct tl_rec *recs = calloc(j->nrec ? j->nrec : 1, sizeof *recs);
	if (!recs) {
		j->vrc = TL_ENOMEM;
		return;
	}
	for (size_t i = 0; i < j->nrec; i++)
		recs[i] = (struct tl_rec){j->recbuf.data + j->recoff[i],
		                          j->recoff[i + 1] - j->recoff[i]};
	j->vrc = verify_sigs(recs, j->nrec, &j->vbad);
	free(recs);
}

static void verify_done(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct peer *p = j->peer;
	(void)status;
	j->verified = 1;
	if (!p) { /* the peer went away meanwhile */
		job_free(j);
		return;
	}
	while (p->inq_n && p->inq[0]->verified) {
		struct job *h = p->inq[0];
		memmove(p->inq, p->inq + 1, (size_t)(p->inq_n - 1) * sizeof *p->inq);
		p->inq_n--;
		if (h->vrc) {
			logm(1, "refused records from peer %s: feed %s: seq %llu: %s", p->addr,
			     h->origin, (unsigned long long)(h->first + h->vbad),
			     h->vrc == TL_ESIG ? "signature does not verify or record malformed"
			                       : tl_strerror(h->vrc));
			p->pending_ingest--;
			job_free(h);
			peer_close(p, "sent records that do not verify");
			return;
		}
		job_submit(p->n, h);
	}
}

/* A job of this peer's (batch, checkpoint, fork evidence) is queued:
 * reading pauses while MAX_PENDING_INGEST of them wait. */
static void peer_job_queued(struct peer *p)
{
	p->pending_ingest++;
	if (p->pending_ingest >= MAX_PENDING_INGEST && p->reading) {
		uv_read_stop((uv_stream_t *)&p->tcp);
		p->reading = 0;
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void process_input(struct peer *p);

/* ... and done: reading resumes, frames buffered meanwhile are handled. */
static void peer_job_done(struct peer *p)
{
	if (!p || p->state == P_CLOSING)
		return;
	p->pending_ingest--;
	if (!p->reading && p->pending_ingest < MAX_PENDING_INGEST) {
		uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
		p->reading = 1;
	}
	process_input(p); /* frames that arrived while paused */
}

static void handle_recs(struct peer *p, const msgpack_object *a)
{
	struct tl_feed f;
	const msgpack_object *o = &a[1], *first = &a[2], *recs = &a[3], *note = &a[4];
	if (p->audit) {
		logm(1, "auditor %s sent records on its read-only session: dropping it", p->addr);
		peer_close(p, "records on a read-only auditor session");
		return;
	}
	if (o->type != MSGPACK_OBJECT_STR || first->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    recs->type != MSGPACK_OBJECT_ARRAY || note->type != MSGPACK_OBJECT_STR ||
	    recs->via.array.size == 0 || recs->via.array.size > 4096) {
		peer_close(p, "malformed records message");
		return;
	}
	/* Records of the peer's feed; or of our own feed in the channel, sent
	 * back to a node restored from an old copy (return_push). */
	if (peer_feed(p, o->via.str.ptr, o->via.str.size, 1, &f) != 0) {
		logm(1, "peer %s sent records of %.*s, which is not its feed in a channel with us",
		     p->addr, (int)(o->via.str.size > 120 ? 120 : o->via.str.size), o->via.str.ptr);
		{
			peer_close(p, "records for a feed the peer does not write");
			return;
		}
	}
	struct job *j = calloc(1, sizeof *j);
	if (!j) {
		peer_close(p, "out of memory");
		return;
	}
	j->type = J_INGEST;
	j->peer = p;
	j->own_return = (f.flags & TL_FEED_OWN) != 0;
	memcpy(j->origin, f.origin, TL_ORIGIN_LEN + 1);
	j->first = first->via.u64;
	j->nrec = recs->via.array.size;
	j->recoff = calloc(j->nrec + 1, sizeof *j->recoff);
	tl_buf_init(&j->recbuf, TL_FRAME_MAX);
	tl_buf_init(&j->note, TL_NOTE_MAX);
	int rc = j->recoff ? 0 : TL_ENOMEM;
	for (size_t i = 0; i < j->nrec && rc == 0; i++) {
		const msgpack_object *r = &recs->via.array.ptr[i];
		if (r->type != MSGPACK_OBJECT_BIN) {
			rc = TL_EFORMAT;
			break;
		}
		j->recoff[i] = j->recbuf.len;
		rc = tl_buf_add(&j->recbuf, r->via.bin.ptr, r->via.bin.size);
	}
	if (rc == 0) {
		j->recoff[j->nrec] = j->recbuf.len;
		rc = tl_buf_add(&j->note, note->via.str.ptr, note->via.str.size);
	}
	if (rc) {
		tl_buf_release(&j->recbuf);
		tl_buf_release(&j->note);
		free(j->recoff);
		free(j);
		{
			peer_close(p, "malformed records message");
			return;
		}
	}
	peer_job_queued(p);
	/* Signatures are checked now, in parallel with whatever the writer is
	 * storing; batches then enter the writer queue in arrival order. */
	j->n = p->n;
	j->vreq.data = j;
	if (p->inq_n >= MAX_PENDING_INGEST) { /* process_input keeps this from happening */
		p->pending_ingest--;
		job_free(j);
		peer_close(p, "too many batches in flight");
		return;
	}
	p->inq[p->inq_n++] = j;
	uv_queue_work(&p->n->loop, &j->vreq, verify_work, verify_done);
}

/* ------------------------------------- checkpoints, cosignatures, forks */

/* ["cp", origin, size, note]: a checkpoint of the sender's own feed with the
 * cosignatures it holds. Sent only once the records up to size are queued
 * to this peer. size UINT64_MAX: the latest stored. */
static void share_cp_peer(struct peer *p, const struct cursor *c, uint64_t size)
{
	struct tl_feed f;
	struct tl_buf note, m;
	uint64_t got = 0;
	msgpack_packer pk;
	if (tl_store_feed_get(p->n->store, c->origin, &f) != 0)
		return;
	tl_buf_init(&note, TL_NOTE_MAX);
	if (tl_store_checkpoint_get(p->n->store, &f, size, &note, &got) == 0 && got > 0 &&
	    got <= c->sent) {
		tl_buf_init(&m, TL_FRAME_MAX);
		msgpack_packer_init(&pk, &m, pack_write);
		msgpack_pack_array(&pk, 4);
		msgpack_pack_str_with_body(&pk, "cp", 2);
		msgpack_pack_str_with_body(&pk, f.origin, TL_ORIGIN_LEN);
		msgpack_pack_uint64(&pk, got);
		msgpack_pack_str_with_body(&pk, (const char *)note.data, note.len);
		send_msg(p, m.data, m.len);
		tl_buf_release(&m);
	}
	tl_buf_release(&note);
}

static void share_cp(struct node *n, const char *origin, uint64_t size)
{
	for (struct peer *p = n->peers; p; p = p->next)
		for (size_t c = 0; p->state == P_OPEN && c < p->ncursors; c++)
			if (p->cursors[c].known && strcmp(p->cursors[c].origin, origin) == 0)
				share_cp_peer(p, &p->cursors[c], size);
}

/* ["fork", origin, "records"|"checkpoints", seq|size, a, b]: the two signed
 * objects, records as bin, checkpoint notes as str. */
static const char *const fork_names[] = {"", "records", "checkpoints", "consistency"};

/* Evidence kind of a job's fork_cp. */
static int fork_type(const struct job *j)
{
	return j->fork_cp == 0   ? TL_FORK_RECORDS
	       : j->fork_cp == 1 ? TL_FORK_CHECKPOINTS
	                         : TL_FORK_CONSISTENCY;
}

static void send_fork(struct peer *p, const char *origin, int type, uint64_t at,
                      const struct tl_buf *a, const struct tl_buf *b, const struct tl_buf *x)
{
	struct tl_buf m;
	msgpack_packer pk;
	const char *name = fork_names[type];
	tl_buf_init(&m, TL_FRAME_MAX);
	msgpack_packer_init(&pk, &m, pack_write);
	msgpack_pack_array(&pk, type == TL_FORK_CONSISTENCY ? 7 : 6);
	msgpack_pack_str_with_body(&pk, "fork", 4);
	msgpack_pack_str_with_body(&pk, origin, TL_ORIGIN_LEN);
	msgpack_pack_str_with_body(&pk, name, strlen(name));
	msgpack_pack_uint64(&pk, at);
	if (type != TL_FORK_RECORDS) {
		msgpack_pack_str_with_body(&pk, (const char *)a->data, a->len);
		msgpack_pack_str_with_body(&pk, (const char *)b->data, b->len);
	} else {
		msgpack_pack_bin_with_body(&pk, a->data, a->len);
		msgpack_pack_bin_with_body(&pk, b->data, b->len);
	}
	if (type == TL_FORK_CONSISTENCY)
		msgpack_pack_bin_with_body(&pk, x->data, x->len);
	send_msg(p, m.data, m.len);
	tl_buf_release(&m);
}

/* Any thread. Keeps of note's signature lines those that verify: by the
 * feed's author, and cosignatures by witnesses this node is configured
 * with. Lines of other keys are dropped, so that a peer cannot fill the
 * stored note (TL_NOTE_MAX_SIGS lines) with lines nobody checked. */
static int keep_known_sigs(struct node *n, const struct tl_vkey *author, struct tl_buf *note)
{
	struct tl_vkey keys[1 + TL_NODE_WITNESS_MAX];
	struct tl_buf out;
	int rc;
	keys[0] = *author;
	for (size_t i = 0; i < n->cfg.nwitnesses; i++)
		keys[1 + i] = n->wkeys[i];
	tl_buf_init(&out, TL_NOTE_MAX);
	rc = tl_wc_filter((const char *)note->data, note->len, keys, 1 + n->cfg.nwitnesses, &out,
	                  NULL, NULL, NULL);
	if (rc == 0) {
		tl_buf_release(note);
		*note = out;
	} else
		tl_buf_release(&out);
	return rc;
}

/* Off the loop: the note must be a checkpoint of exactly (origin, size)
 * signed by the origin's key; of its other lines only cosignatures by
 * witnesses this node knows are kept. */
static void cp_verify_work(uv_work_t *req)
{
	struct job *j = req->data;
	struct node *n = j->n;
	struct tl_note nt;
	struct tl_checkpoint cp;
	struct tl_origin og;
	struct tl_vkey keys[1];
	j->vrc = 0;
	j->cp_bad = 1;
	if (tl_note_parse(&nt, (const char *)j->note.data, j->note.len) != 0) {
		snprintf(j->err, sizeof j->err, "not a signed note");
		return;
	}
	if (tl_checkpoint_parse(&cp, nt.raw, nt.text_len) != 0 ||
	    strcmp(cp.origin, j->origin) != 0 || cp.size != j->new_size) {
		snprintf(j->err, sizeof j->err, "not a checkpoint of this feed and size");
		goto out;
	}
	if (tl_origin_parse(&og, j->origin, TL_ORIGIN_LEN) != 0 ||
	    tl_vkey_from_pub(&keys[0], j->origin, TL_SIGTYPE_ED25519, og.pk) != 0 ||
	    tl_note_verify(&nt, &keys[0]) != 0) {
		snprintf(j->err, sizeof j->err, "not signed by the feed's key");
		goto out;
	}
	if (keep_known_sigs(n, &keys[0], &j->note) == 0)
		j->cp_bad = 0;
	else
		snprintf(j->err, sizeof j->err, "signature lines do not parse");
out:
	tl_note_release(&nt);
}

static void handle_cp(struct peer *p, const msgpack_object *a)
{
	struct tl_feed f;
	const msgpack_object *o = &a[1], *size = &a[2], *note = &a[3];
	if (p->audit) {
		logm(1, "auditor %s sent a checkpoint on its read-only session: dropping it",
		     p->addr);
		peer_close(p, "checkpoint on a read-only auditor session");
		return;
	}
	if (o->type != MSGPACK_OBJECT_STR || size->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    note->type != MSGPACK_OBJECT_STR || note->via.str.size > TL_NOTE_MAX) {
		peer_close(p, "malformed checkpoint message");
		return;
	}
	if (peer_feed(p, o->via.str.ptr, o->via.str.size, 0, &f) != 0) {
		peer_close(p, "checkpoint of a feed the peer does not write");
		return;
	}
	struct job *j = calloc(1, sizeof *j);
	if (!j) {
		peer_close(p, "out of memory");
		return;
	}
	j->type = J_CP;
	j->peer = p;
	j->n = p->n;
	memcpy(j->origin, f.origin, TL_ORIGIN_LEN + 1);
	j->new_size = size->via.u64;
	tl_buf_init(&j->note, TL_NOTE_MAX);
	if (tl_buf_add(&j->note, note->via.str.ptr, note->via.str.size) != 0 ||
	    p->inq_n >= MAX_PENDING_INGEST) {
		job_free(j);
		peer_close(p, "too many messages in flight");
		return;
	}
	/* In the same queue as record batches: it is stored after the records
	 * that came before it. */
	peer_job_queued(p);
	j->vreq.data = j;
	p->inq[p->inq_n++] = j;
	uv_queue_work(&p->n->loop, &j->vreq, cp_verify_work, verify_done);
}

/* Fork evidence from the peer about a feed of our channel with it (ours or
 * its own): verified and stored by the writer (fork_store). */
static void handle_fork(struct peer *p, const msgpack_object *a, uint32_t n)
{
	const msgpack_object *o = &a[1], *t = &a[2], *at = &a[3], *x = &a[4], *y = &a[5];
	struct tl_feed f;
	char origin[TL_ORIGIN_LEN + 1];
	int type = 0;
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size != TL_ORIGIN_LEN ||
	    t->type != MSGPACK_OBJECT_STR || at->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		peer_close(p, "malformed fork message");
		return;
	}
	for (int k = 1; k <= 3; k++)
		if (t->via.str.size == strlen(fork_names[k]) &&
		    memcmp(t->via.str.ptr, fork_names[k], t->via.str.size) == 0)
			type = k;
	if (!type || (type == TL_FORK_CONSISTENCY) != (n == 7)) {
		peer_close(p, "malformed fork message");
		return;
	}
	int cp = type != TL_FORK_RECORDS;
	msgpack_object_type want = cp ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN;
	size_t cap = cp ? TL_NOTE_MAX : TL_RECORD_MAX;
	const size_t xcap = TL_HASH_LEN * (TL_MERKLE_MAX_PROOF + 1);
	if (x->type != want || y->type != want || x->via.bin.size > cap || y->via.bin.size > cap ||
	    (n == 7 && (a[6].type != MSGPACK_OBJECT_BIN || a[6].via.bin.size > xcap))) {
		peer_close(p, "malformed fork message");
		return;
	}
	memcpy(origin, o->via.str.ptr, TL_ORIGIN_LEN);
	origin[TL_ORIGIN_LEN] = 0;
	if (peer_feed(p, origin, TL_ORIGIN_LEN, 1, &f) != 0) {
		logm(1, "peer %s sent fork evidence about a feed not in a channel with it",
		     p->addr);
		return;
	}
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return;
	j->type = J_FORK;
	j->peer = p;
	memcpy(j->origin, origin, sizeof j->origin);
	j->fork_cp = type == TL_FORK_RECORDS ? 0 : type == TL_FORK_CHECKPOINTS ? 1 : 3;
	j->fork_at = at->via.u64;
	tl_buf_init(&j->fa, cap);
	tl_buf_init(&j->fb, cap);
	tl_buf_init(&j->fx, xcap);
	/* str and bin share the layout of msgpack_object_bin. */
	if (tl_buf_add(&j->fa, x->via.bin.ptr, x->via.bin.size) != 0 ||
	    tl_buf_add(&j->fb, y->via.bin.ptr, y->via.bin.size) != 0 ||
	    (n == 7 && tl_buf_add(&j->fx, a[6].via.bin.ptr, a[6].via.bin.size) != 0)) {
		job_free(j);
		return;
	}
	/* Counted with the record batches: a peer cannot queue evidence (each
	 * verified on the writer) faster than it is checked. */
	peer_job_queued(p);
	job_submit(p->n, j);
}

static void handle_msg(struct peer *p, const uint8_t *m, size_t len)
{
	msgpack_unpacked u;
	size_t off = 0, where = 0;
	if (tl_mp_check(m, len, &where) != 0) {
		peer_close(p, "malformed message (not canonical MessagePack)");
		return;
	}
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)m, len, &off) != MSGPACK_UNPACK_SUCCESS) {
		msgpack_unpacked_destroy(&u);
		{
			peer_close(p, "malformed message");
			return;
		}
	}
	const msgpack_object *o = &u.data;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
	    o->via.array.ptr[0].type != MSGPACK_OBJECT_STR) {
		msgpack_unpacked_destroy(&u);
		{
			peer_close(p, "malformed message");
			return;
		}
	}
	const msgpack_object *a = o->via.array.ptr;
	const msgpack_object_str *t = &a[0].via.str;
#define IS(s) (t->size == strlen(s) && memcmp(t->ptr, s, t->size) == 0)
	if (IS("heads") && o->via.array.size == 2)
		handle_heads(p, &a[1]);
	else if (IS("heads") && o->via.array.size == 3 && a[2].type == MSGPACK_OBJECT_BOOLEAN) {
		if (a[2].via.boolean)
			send_heads(p, 0); /* answer first: it refreshes our cursors */
		handle_heads(p, &a[1]);
	} else if (IS("recs") && o->via.array.size == 5)
		handle_recs(p, a);
	else if (IS("cp") && o->via.array.size == 4)
		handle_cp(p, a);
	else if (IS("fork") && (o->via.array.size == 6 || o->via.array.size == 7))
		handle_fork(p, a, o->via.array.size);
	else if (IS("ping") && o->via.array.size == 1)
		send_simple(p, "pong");
	else if (IS("pong") && o->via.array.size == 1)
		;
	else if (t->size > 5 && memcmp(t->ptr, "blob.", 5) == 0) {
		if (tl_blob_repl_msg(p->n->blobs, p, a, o->via.array.size) != 0)
			peer_close(p, "malformed or abusive blob message");
	} else
		peer_close(p, "unknown message type");
#undef IS
	msgpack_unpacked_destroy(&u);
}

/* ------------------------------------------------- connection set-up */

static int admitted(struct node *n, struct book *b, const uint8_t remote[TL_PUB_LEN])
{
	struct tl_feed *feeds = NULL;
	size_t nf = 0;
	int ok = 0;
	if (tl_store_feed_list(n->store, &feeds, &nf) != 0)
		return 0;
	for (size_t i = 0; i < nf && !ok; i++)
		ok = (feeds[i].flags & TL_FEED_OWN) && strcmp(feeds[i].book, b->name) == 0 &&
		     memcmp(feeds[i].peer, remote, TL_PUB_LEN) == 0;
	free(feeds);
	return ok;
}

/* A peer that shares no channel with the book: dialled by us, the book
 * whose feeds we follow as an auditor; inbound, an auditor the book admitted
 * (read-only). docs/protocol.md, "Auditors". */
static int auditor_admit(struct peer *p)
{
	struct node *n = p->n;
	char rh[17];
	short_hex(rh, p->remote);
	if (p->outbound) {
		if (!tl_auditor_follows(n->store, p->book->name, p->remote))
			return 0;
		p->follow = 1;
		logm(2, "following feeds of %s… read-only, for book %s", rh, p->book->name);
		return 1;
	}
	if (tl_auditors_refresh(n->auditors, n->store) != 0)
		logm(0, "cannot read auditor admissions: %s", tl_store_errmsg(n->store));
	size_t k = tl_auditors_admitted(n->auditors, p->book->name, p->remote);
	if (k == 0)
		return 0;
	p->audit = 1;
	logm(2, "auditor %s… (%s) admitted read-only to %zu channel(s) of book %s", rh, p->addr, k,
	     p->book->name);
	return 1;
}

/* After a local append of auditor.* entries: a live auditor session whose
 * admission is gone is closed; the others learn about added channels. */
static void auditors_changed(struct node *n, const char *origin, const struct tl_item *items,
                             const struct tl_appended *out, size_t nitems)
{
	int any = 0;
	char rh[17];
	for (size_t i = 0; i < nitems; i++)
		any |= items[i].kind_len > 8 && memcmp(items[i].kind, "auditor.", 8) == 0;
	if (!any) {
		if (nitems)
			tl_auditors_skip(n->auditors, origin, out[0].seq, out[nitems - 1].seq + 1);
		return;
	}
	if (tl_auditors_refresh(n->auditors, n->store) != 0)
		logm(0, "cannot read auditor admissions: %s", tl_store_errmsg(n->store));
	for (struct peer *p = n->peers; p; p = p->next) {
		if (p->state != P_OPEN || !p->audit)
			continue;
		short_hex(rh, p->remote);
		if (tl_auditors_admitted(n->auditors, p->book->name, p->remote) == 0) {
			logm(1,
			     "auditor %s… (%s): admission to book %s revoked: closing its session",
			     rh, p->addr, p->book->name);
			peer_close(p, "auditor admission revoked");
		} else {
			send_heads(p, 1);
		}
	}
}

static void session_open(struct peer *p)
{
	char rh[17];
	if (tl_hs_session(p->hs, &p->sess) != 0) {
		peer_close(p, "handshake state lost");
		return;
	}
	memcpy(p->remote, tl_hs_peer(p->hs), TL_PUB_LEN);
	tl_hs_free(p->hs);
	p->hs = NULL;
	short_hex(rh, p->remote);
	if (!admitted(p->n, p->book, p->remote) && !auditor_admit(p)) {
		logm(1, "refused peer %s… from %s: it shares no channel with book %s", rh, p->addr,
		     p->book->name);
		{
			peer_close(p, "no shared channel");
			return;
		}
	}
	/* One session per pair of books: a newer one replaces an older one. */
	for (struct peer *q = p->n->peers; q; q = q->next)
		if (q != p && q->state == P_OPEN && q->book == p->book &&
		    memcmp(q->remote, p->remote, 32) == 0)
			peer_close(q, "replaced by a newer session");
	p->state = P_OPEN;
	p->opened_at = now_ms();
	if (p->target) {
		p->target->backoff = 0;
		p->target->conn = p;
	}
	logm(2, "session open with %s… (%s) for book %s", rh, p->addr, p->book->name);
	send_heads(p, 0);
}

static void process_input(struct peer *p)
{
	struct node *n = p->n;
	size_t off = 0;
	while (p->state != P_CLOSING && off < p->rbuf.len) {
		const uint8_t *in = p->rbuf.data + off;
		size_t len = p->rbuf.len - off, used = 0;
		if (p->state == P_HELLO) {
			/* Inbound: "TLYH" || the book key the dialler wants. */
			if (len < HELLO_LEN)
				break;
			if (memcmp(in, HELLO_MAGIC, 4) != 0) {
				peer_close(p, "not a Tally peer (bad hello)");
				return;
			}
			p->book = book_by_pk(n, in + 4);
			if (!p->book) {
				peer_close(p, "hello names a book this node does not host");
				return;
			}
			if (tl_hs_new(&p->hs, TL_HS_RESPONDER, &p->book->kp, NULL) != 0) {
				peer_close(p, "out of memory");
				return;
			}
			p->state = P_HANDSHAKE;
			off += HELLO_LEN;
			continue;
		}
		if (p->state == P_HANDSHAKE) {
			struct tl_buf out;
			tl_buf_init(&out, 4096);
			int rc = tl_hs_step(p->hs, in, len, &used, &out);
			if (rc == 0 && out.len)
				send_raw(p, out.data, out.len);
			tl_buf_release(&out);
			if (rc) {
				logm(1, "handshake with %s failed: %s", p->addr, tl_strerror(rc));
				{
					peer_close(p, "handshake failed");
					return;
				}
			}
			off += used;
			if (tl_hs_done(p->hs))
				session_open(p);
			else if (used == 0)
				break;
			continue;
		}
		/* P_OPEN: frames. Batches waiting to be stored are capped: the
		 * rest stays buffered (and reading stops) until they drain. */
		if (p->pending_ingest >= MAX_PENDING_INGEST)
			break;
		struct tl_buf pt;
		tl_buf_init(&pt, TL_FRAME_MAX);
		int rc = tl_session_open(&p->sess, in, len, &used, &pt);
		if (rc) {
			tl_buf_release(&pt);
			logm(1, "peer %s: %s frame: dropping the connection", p->addr,
			     rc == TL_ETOOBIG ? "oversized" : "unauthenticated or replayed");
			{
				peer_close(p, "bad frame");
				return;
			}
		}
		if (used == 0) {
			tl_buf_release(&pt);
			break;
		}
		off += used;
		p->last_rx = now_ms();
		handle_msg(p, pt.data, pt.len);
		tl_buf_release(&pt);
	}
	if (p->state == P_CLOSING)
		return;
	memmove(p->rbuf.data, p->rbuf.data + off, p->rbuf.len - off);
	p->rbuf.len -= off;
}

/* libuv reads into the free tail of a connection's buffer (64 KiB more at a
 * time, never past the buffer's hard maximum; NULL when full: libuv then
 * reports UV_ENOBUFS and the connection is closed). */
static void alloc_into(struct tl_buf *b, uv_buf_t *buf)
{
	if (tl_buf_reserve(b, 65536) != 0) {
		buf->base = NULL;
		buf->len = 0;
		return;
	}
	buf->base = (char *)b->data + b->len;
	buf->len = b->cap - b->len - 1;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct peer *p = h->data;
	(void)suggested;
	alloc_into(&p->rbuf, buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct peer *p = s->data;
	(void)buf;
	if (nread < 0) {
		peer_close(p, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
		return;
	}
	if (nread == 0) {
		if (!buf->base)
			peer_close(p, "receive buffer over its cap");
		return;
	}
	p->rbuf.len += (size_t)nread;
	p->last_rx = now_ms();
	process_input(p);
}

static void on_peer_closed(uv_handle_t *h)
{
	struct peer *p = h->data;
	struct node *n = p->n;
	for (struct peer **pp = &n->peers; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	tl_buf_release(&p->rbuf);
	tl_session_wipe(&p->sess);
	if (p->hs)
		tl_hs_free(p->hs);
	free(p->cursors);
	free(p);
}

static void peer_close(struct peer *p, const char *why)
{
	if (p->state == P_CLOSING)
		return;
	logm(p->state == P_OPEN ? 2 : 3, "connection %s closed: %s", p->addr, why);
	p->state = P_CLOSING;
	tl_blob_repl_peer_gone(p->n->blobs, p);
	if (p->target) {
		struct target *t = p->target;
		if (t->conn == p)
			t->conn = NULL;
		t->dialing = 0;
		t->backoff = t->backoff ? t->backoff * 2 : BACKOFF_MIN_MS;
		if (t->backoff > BACKOFF_MAX_MS)
			t->backoff = BACKOFF_MAX_MS;
		/* Jitter: a random point in [backoff/2, backoff]. */
		t->next_try = now_ms() + t->backoff / 2 + randombytes_uniform(t->backoff / 2 + 1);
	}
	/* Jobs still running for this peer must not call back into it; those
	 * still in verification are freed when it ends. */
	for (struct job *j = p->n->jobs_head; j; j = j->next)
		if (j->peer == p)
			j->peer = NULL;
	for (int i = 0; i < p->inq_n; i++) {
		if (p->inq[i]->verified)
			job_free(p->inq[i]);
		else
			p->inq[i]->peer = NULL;
	}
	p->inq_n = 0;
	uv_close((uv_handle_t *)&p->tcp, on_peer_closed);
}

static struct peer *peer_new(struct node *n)
{
	struct peer *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n = n;
	tl_buf_init(&p->rbuf, TL_FRAME_MAX + TL_FRAME_OVERHEAD + 65536);
	uv_tcp_init(&n->loop, &p->tcp);
	p->tcp.data = p;
	p->last_rx = now_ms();
	p->opened_at = p->last_rx;
	p->next = n->peers;
	n->peers = p;
	return p;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct node *n = server->data;
	if (status < 0 || n->stopping)
		return;
	struct peer *p = peer_new(n);
	if (!p)
		return;
	p->state = P_HELLO;
	if (uv_accept(server, (uv_stream_t *)&p->tcp) != 0) {
		peer_close(p, "accept failed");
		return;
	}
	struct sockaddr_storage ss;
	int sl = sizeof ss;
	if (uv_tcp_getpeername(&p->tcp, (struct sockaddr *)&ss, &sl) == 0) {
		char ip[48] = "?";
		if (ss.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
		else
			uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
		snprintf(p->addr, sizeof p->addr, "%s:%d", ip,
		         ntohs(((struct sockaddr_in *)&ss)->sin_port));
	}
	uv_tcp_nodelay(&p->tcp, 1);
	uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
	p->reading = 1;
}

static void on_connect(uv_connect_t *req, int status)
{
	struct peer *p = req->data;
	free(req);
	if (p->state == P_CLOSING)
		return;
	if (status < 0) {
		peer_close(p, uv_strerror(status));
		return;
	}
	uint8_t hello[HELLO_LEN];
	struct tl_buf out;
	memcpy(hello, HELLO_MAGIC, 4);
	memcpy(hello + 4, p->remote, TL_PUB_LEN);
	send_raw(p, hello, sizeof hello);
	tl_buf_init(&out, 4096);
	if (tl_hs_new(&p->hs, TL_HS_INITIATOR, &p->book->kp, p->remote) != 0 ||
	    tl_hs_start(p->hs, &out) != 0) {
		tl_buf_release(&out);
		peer_close(p, "handshake set-up failed");
		return;
	}
	send_raw(p, out.data, out.len);
	tl_buf_release(&out);
	p->state = P_HANDSHAKE;
	uv_tcp_nodelay(&p->tcp, 1);
	uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
	p->reading = 1;
}

static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
	char host[TL_ADDR_MAX + 1];
	const char *colon = strrchr(s, ':');
	uint64_t port;
	if (!colon || (size_t)(colon - s) >= sizeof host ||
	    tl_parse_u64(colon + 1, strlen(colon + 1), &port) != 0 || port > 65535)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	if (host[0] == '[') { /* [v6]:port */
		size_t hl = strlen(host);
		if (hl < 2 || host[hl - 1] != ']')
			return -1;
		host[hl - 1] = 0;
		return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -1;
	}
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ? 0 : -1;
}

static void dial(struct node *n, struct target *t)
{
	struct sockaddr_storage ss;
	char rh[17];
	if (parse_addr(t->p.addr, &ss) != 0) {
		logm(0, "peer address '%s' is not HOST:PORT with a numeric IP", t->p.addr);
		t->next_try = now_ms() + BACKOFF_MAX_MS;
		return;
	}
	struct peer *p = peer_new(n);
	uv_connect_t *req = malloc(sizeof *req);
	if (!p || !req) {
		free(req);
		return;
	}
	p->outbound = 1;
	p->target = t;
	p->book = t->book;
	memcpy(p->remote, t->p.pk, TL_PUB_LEN);
	snprintf(p->addr, sizeof p->addr, "%s", t->p.addr);
	p->state = P_CONNECTING;
	req->data = p;
	t->dialing = 1;
	t->conn = p;
	short_hex(rh, t->p.pk);
	logm(3, "dialling %s… at %s for book %s", rh, t->p.addr, t->book->name);
	if (uv_tcp_connect(req, &p->tcp, (struct sockaddr *)&ss, on_connect) != 0) {
		free(req);
		peer_close(p, "connect failed");
	}
}

/* Refreshes the dial list from the peers table. The side with the lower
 * key dials, so a pair of nodes keeps one session per pair of books. */
static void load_targets(struct node *n)
{
	struct tl_peer *ps = NULL;
	size_t np = 0;
	if (tl_store_peer_list(n->store, &ps, &np) != 0)
		return;
	for (size_t i = 0; i < np; i++) {
		struct book *b = book_by_name(n, ps[i].book);
		/* An auditor always dials the book it follows. */
		if (!b || (memcmp(b->kp.pk, ps[i].pk, 32) >= 0 &&
		           !tl_auditor_follows(n->store, b->name, ps[i].pk)))
			continue;
		struct target *t;
		for (t = n->targets; t; t = t->next)
			if (t->book == b && memcmp(t->p.pk, ps[i].pk, 32) == 0)
				break;
		if (t) {
			memcpy(t->p.addr, ps[i].addr, sizeof t->p.addr);
			continue;
		}
		if (!(t = calloc(1, sizeof *t)))
			break;
		t->p = ps[i];
		t->book = b;
		t->next = n->targets;
		n->targets = t;
	}
	free(ps);
}

/* ------------------------------------------------------------ jobs */

/* Ed25519 checks of a batch split over two threads (this pool thread and
 * one more): verification is the dominant cost of replication. */
struct vslice {
	const struct tl_rec *recs;
	size_t from, to;
	size_t bad; /* first failing index, or SIZE_MAX */
};

static void *verify_slice(void *arg)
{
	struct vslice *v = arg;
	v->bad = SIZE_MAX;
	for (size_t i = v->from; i < v->to; i++) {
		struct tl_entry e;
		if (tl_record_decode(&e, v->recs[i].data, v->recs[i].len, NULL) != 0 ||
		    tl_record_verify_sig(&e) != 0) {
			v->bad = i;
			break;
		}
	}
	return NULL;
}

static int verify_sigs(const struct tl_rec *recs, size_t m, size_t *bad)
{
	struct vslice a = {recs, 0, m / 2, SIZE_MAX}, b = {recs, m / 2, m, SIZE_MAX};
	pthread_t t;
	int threaded = m >= 64 && pthread_create(&t, NULL, verify_slice, &b) == 0;
	verify_slice(&a);
	if (threaded)
		pthread_join(t, NULL);
	else
		verify_slice(&b);
	*bad = a.bad != SIZE_MAX ? a.bad : b.bad;
	return *bad == SIZE_MAX ? 0 : TL_ESIG;
}

static int ingest(struct node *n, struct job *j)
{
	struct tl_feed f;
	struct tl_note note;
	struct tl_checkpoint cp;
	struct tl_vkey vk;
	int rc;

	if ((rc = tl_store_feed_get(n->store, j->origin, &f)) != 0)
		return snprintf(j->err, sizeof j->err, "%s", tl_store_errmsg(n->store)), rc;
	/* A counterparty feed with fork evidence: which history would we be
	 * extending? Nothing more of it is stored (the evidence stays). */
	if ((f.flags & TL_FEED_FORKED) && !(f.flags & TL_FEED_OWN)) {
		j->new_size = f.head.size;
		return 0;
	}
	/* Records we have already: identical ones are duplicates to skip; a
	 * different record for a stored seq is an equivocation proof. */
	size_t skip = 0;
	if (j->first > f.head.size) {
		snprintf(j->err, sizeof j->err,
		         "feed %s: batch starts at seq %llu but we have %llu", j->origin,
		         (unsigned long long)j->first, (unsigned long long)f.head.size);
		return TL_ECHAIN;
	}
	struct tl_buf mine;
	tl_buf_init(&mine, TL_RECORD_MAX);
	for (; skip < j->nrec && j->first + skip < f.head.size; skip++) {
		uint8_t leaf[32], have[32];
		const uint8_t *r = j->recbuf.data + j->recoff[skip];
		size_t rl = j->recoff[skip + 1] - j->recoff[skip];
		uint64_t seq = j->first + skip;
		tl_record_leaf_hash(leaf, r, rl);
		if ((rc = tl_store_leaf(n->store, &f, seq, have)) != 0)
			break;
		if (memcmp(leaf, have, 32) == 0)
			continue;
		struct tl_entry e;
		if (tl_record_decode(&e, r, rl, NULL) == 0 && tl_record_verify_sig(&e) == 0 &&
		    e.seq == seq && tl_store_record(n->store, &f, seq, &mine) == 0 &&
		    tl_store_fork_put(n->store, &f, seq, mine.data, mine.len, r, rl) == 0) {
			j->forked = 1;
			j->fork_at = seq;
			tl_buf_init(&j->fa, TL_RECORD_MAX);
			tl_buf_init(&j->fb, TL_RECORD_MAX);
			if (tl_buf_add(&j->fa, mine.data, mine.len) != 0 ||
			    tl_buf_add(&j->fb, r, rl) != 0)
				j->forked = 0; /* kept in the store; just not sent back */
			snprintf(j->err, sizeof j->err,
			         "feed %s: seq %llu: FORK — the author signed two different "
			         "records; both kept as evidence",
			         j->origin, (unsigned long long)seq);
			/* Our own key signed both: the same proof as a `fork` message
			 * about our feed (fork_store), and the same consequence. */
			if ((f.flags & TL_FEED_OWN) && !(f.flags & TL_FEED_HALTED)) {
				char why[TL_HALT_WHY_MAX];
				snprintf(why, sizeof why,
				         "the counterparty sent another record signed by this book "
				         "for seq %llu",
				         (unsigned long long)seq);
				if (tl_store_halt_set(n->store, f.origin, f.head.size, why) == 0)
					j->halted_now = 1;
			}
			tl_buf_release(&mine);
			return TL_EFORK;
		}
		snprintf(j->err, sizeof j->err,
		         "feed %s: seq %llu: a different record that does not verify", j->origin,
		         (unsigned long long)seq);
		tl_buf_release(&mine);
		return TL_ESIG;
	}
	tl_buf_release(&mine);
	if (rc)
		return snprintf(j->err, sizeof j->err, "%s", tl_store_errmsg(n->store)), rc;
	size_t m = j->nrec - skip;
	j->new_size = f.head.size;
	if (m == 0)
		return 0;

	/* The batch's checkpoint: signed by the feed key, for exactly the new
	 * size, and its root must be the root after these records. */
	memset(&note, 0, sizeof note);
	if ((rc = tl_note_parse(&note, (const char *)j->note.data, j->note.len)) != 0 ||
	    (rc = tl_checkpoint_parse(&cp, note.raw, note.text_len)) != 0 ||
	    strcmp(cp.origin, f.origin) != 0 || cp.size != j->first + j->nrec) {
		snprintf(j->err, sizeof j->err,
		         "feed %s: batch checkpoint is malformed or names "
		         "another size",
		         j->origin);
		tl_note_release(&note);
		return rc ? rc : TL_EPROOF;
	}
	if ((rc = tl_vkey_from_pub(&vk, f.origin, TL_SIGTYPE_ED25519, f.o.pk)) != 0 ||
	    (rc = tl_note_verify(&note, &vk)) != 0) {
		snprintf(j->err, sizeof j->err,
		         "feed %s: batch checkpoint signature does not verify", j->origin);
		tl_note_release(&note);
		return TL_ESIG;
	}
	/* Stored with the batch: the author's line and cosignatures by our own
	 * witnesses only, as for `cp` (a returned batch carries a stored note,
	 * cosignatures too). A feed followed as an auditor keeps the relayed
	 * note whole: its cosignatures are checked against the channel terms'
	 * witnesses when audited (tally audit), which this node's
	 * configuration need not list. */
	if (!(f.flags & TL_FEED_AUDIT) && (rc = keep_known_sigs(n, &vk, &j->note)) != 0) {
		snprintf(j->err, sizeof j->err, "feed %s: batch checkpoint signature lines: %s",
		         j->origin, tl_strerror(rc));
		tl_note_release(&note);
		return rc;
	}
	struct tl_rec *recs = calloc(m, sizeof *recs);
	struct tl_merkle_acc acc;
	uint8_t root[32];
	if (!recs) {
		tl_note_release(&note);
		return TL_ENOMEM;
	}
	/* Root of the stored prefix plus these records, before anything is
	 * stored: the stored hashes give the frontier in O(log n). */
	struct tl_feed_head head = f.head;
	rc = tl_store_frontier(n->store, &f, &acc);
	for (size_t i = 0; i < m && rc == 0; i++) {
		const uint8_t *r = j->recbuf.data + j->recoff[skip + i];
		size_t rl = j->recoff[skip + i + 1] - j->recoff[skip + i];
		struct tl_entry e;
		uint8_t leaf[32];
		unsigned nc;
		uint8_t comp[64][32];
		recs[i] = (struct tl_rec){r, rl};
		if ((rc = tl_record_decode(&e, r, rl, NULL)) != 0 ||
		    (rc = tl_feed_check_next(&head, &f.o, &e)) != 0) {
			snprintf(j->err, sizeof j->err, "feed %s: seq %llu: %s", j->origin,
			         (unsigned long long)head.size, tl_strerror(rc));
			break;
		}
		if (!(e.kind_len == 4 && memcmp(e.kind, "seen", 4) == 0))
			j->has_content = 1;
		tl_record_leaf_hash(leaf, r, rl);
		tl_merkle_acc_push(&acc, leaf, comp, &nc);
		tl_feed_advance(&head, leaf);
	}
	if (rc == 0) {
		tl_merkle_acc_root(&acc, root);
		if (sodium_memcmp(root, cp.root, 32) != 0) {
			snprintf(j->err, sizeof j->err,
			         "feed %s: batch checkpoint root does not match the records",
			         j->origin);
			rc = TL_EPROOF;
		}
	}
	size_t bad = 0;
	/* Signatures were verified in the verification stage. */
	/* Our own records coming back (a restored node catching up) may be
	 * stored while the feed is halted: they are ours, chained and signed. */
	unsigned own = (f.flags & TL_FEED_OWN) ? TL_APPEND_RESTORE : 0;
	if (rc == 0 && (rc = tl_store_append_cp(n->store, f.origin, recs, m, own, &bad, &f,
	                                        (const char *)j->note.data, j->note.len)) != 0)
		snprintf(j->err, sizeof j->err, "%s", tl_store_errmsg(n->store));
	/* Our own signed checkpoint of a larger size, with records that do not
	 * continue our chain: proof that this node is behind its own past (a
	 * restored copy that appended since). */
	if ((rc == TL_ECHAIN || rc == TL_EPROOF) && own && cp.size > f.head.size) {
		char why[TL_HALT_WHY_MAX];
		snprintf(why, sizeof why,
		         "the counterparty holds this feed's own signed checkpoint of size %llu, "
		         "whose entries do not continue the ones here",
		         (unsigned long long)cp.size);
		if (!(f.flags & TL_FEED_HALTED) &&
		    tl_store_halt_set(n->store, f.origin, cp.size, why) == 0)
			j->halted_now = 1;
	}
	if (rc == 0 && own && (f.flags & TL_FEED_HALTED) && !(f.flags & TL_FEED_FORKED)) {
		uint64_t others = UINT64_MAX;
		if (tl_store_halt_get(n->store, f.origin, &others, NULL, 0) == 0 &&
		    f.head.size >= others && tl_store_halt_clear(n->store, f.origin) == 0)
			j->cp_added = 1; /* caught up: the halt is lifted */
	}
	if (rc == 0) {
		j->new_size = f.head.size;
		j->stored = m;
		j->first = j->first + skip;
	}
	free(recs);
	tl_note_release(&note);
	return rc;
}

static int cp_inconsistent(struct node *n, struct job *j, const struct tl_feed *f,
                           const uint8_t root[TL_HASH_LEN]);

/* A counterparty's checkpoint (J_CP, verified in cp_verify_work): its root
 * must match the records stored for that size; then its cosignatures are
 * merged into the stored note. A root that differs from a stored signed
 * checkpoint of the same size is fork evidence. */
static int cp_store(struct node *n, struct job *j)
{
	struct tl_feed f;
	struct tl_note nt;
	struct tl_checkpoint cp;
	uint8_t root[TL_HASH_LEN];
	int rc;
	if (j->cp_bad) {
		char why[200];
		snprintf(why, sizeof why, "%.150s", j->err);
		snprintf(j->err, sizeof j->err, "feed %s: checkpoint %llu refused: %s", j->origin,
		         (unsigned long long)j->new_size, why);
		return TL_ESIG;
	}
	if ((rc = tl_store_feed_get(n->store, j->origin, &f)) != 0)
		return snprintf(j->err, sizeof j->err, "%s", tl_store_errmsg(n->store)), rc;
	if (j->new_size > f.head.size || j->new_size == 0)
		return 0; /* records not here (yet): nothing to check it against */
	if ((rc = tl_note_parse(&nt, (const char *)j->note.data, j->note.len)) != 0)
		return rc;
	rc = tl_checkpoint_parse(&cp, nt.raw, nt.text_len);
	tl_note_release(&nt);
	if (rc)
		return rc;
	if ((rc = tl_store_root(n->store, &f, j->new_size, root)) != 0)
		return snprintf(j->err, sizeof j->err, "%s", tl_store_errmsg(n->store)), rc;
	tl_buf_init(&j->fa, TL_NOTE_MAX);
	if (sodium_memcmp(root, cp.root, TL_HASH_LEN) != 0) {
		if (tl_store_checkpoint_get(n->store, &f, j->new_size, &j->fa, NULL) != 0)
			return cp_inconsistent(n, j, &f, root);
		rc = TL_EFORK;
	} else {
		rc = tl_store_checkpoint_merge(n->store, &f, j->new_size,
		                               (const char *)j->note.data, j->note.len,
		                               &j->cp_added, &j->fa);
		/* The same root in another text (extension lines): not two
		 * histories, and not evidence anyone could verify. */
		if (rc == TL_EFORK) {
			snprintf(j->err, sizeof j->err,
			         "feed %s: checkpoint %llu refused: same root as the stored one "
			         "but another text",
			         j->origin, (unsigned long long)j->new_size);
			return TL_EFORMAT;
		}
		if (rc)
			return snprintf(j->err, sizeof j->err, "%s", tl_store_errmsg(n->store)), rc;
	}
	if (rc == TL_EFORK) {
		tl_buf_init(&j->fb, TL_NOTE_MAX);
		j->fork_cp = 1;
		j->fork_at = j->new_size;
		if (tl_buf_add(&j->fb, j->note.data, j->note.len) != 0 ||
		    tl_store_fork_cp_put(n->store, &f, j->new_size, (const char *)j->fa.data,
		                         j->fa.len, (const char *)j->fb.data, j->fb.len) != 0) {
			snprintf(j->err, sizeof j->err, "feed %s: cannot store fork evidence: %s",
			         j->origin, tl_store_errmsg(n->store));
			return TL_ESTORE;
		}
		j->forked = 1;
		snprintf(j->err, sizeof j->err,
		         "feed %s: size %llu: FORK — the author signed two checkpoints with "
		         "different roots; both kept as evidence",
		         j->origin, (unsigned long long)j->new_size);
	}
	return rc;
}

struct cp_above {
	uint64_t above, got; /* the first stored size > above */
};

static int first_above(void *ctx, uint64_t size, const char *note, size_t len)
{
	struct cp_above *c = ctx;
	(void)note;
	(void)len;
	if (size > c->above) {
		c->got = size;
		return 1;
	}
	return 0;
}

/*
 * The author's checkpoint of size N (j->note) does not match the records
 * stored here, and no signed checkpoint of size N is stored. A stored one of
 * a larger size M, the root at N computed here and the consistency proof
 * from N to M make the proof (TL_FORK_CONSISTENCY): the author signed M's
 * root, which provably contains another root at N than the one it signed.
 */
static int cp_inconsistent(struct node *n, struct job *j, const struct tl_feed *f,
                           const uint8_t root[TL_HASH_LEN])
{
	struct cp_above ca = {j->new_size, 0};
	uint8_t proof[TL_MERKLE_MAX_PROOF][TL_HASH_LEN];
	size_t np = 0;
	tl_buf_init(&j->fb, TL_NOTE_MAX);
	tl_buf_init(&j->fx, TL_HASH_LEN * (TL_MERKLE_MAX_PROOF + 1));
	if (tl_store_checkpoint_scan_from(n->store, f, j->new_size + 1, first_above, &ca) < 0 ||
	    ca.got == 0 ||
	    ca.got > f->head.size ||
	    tl_store_checkpoint_get(n->store, f, ca.got, &j->fb, NULL) != 0 ||
	    tl_store_consistency(n->store, f, j->new_size, ca.got, proof, TL_MERKLE_MAX_PROOF,
	                         &np) != 0 ||
	    tl_buf_add(&j->fx, root, TL_HASH_LEN) != 0 ||
	    tl_buf_add(&j->fx, proof, np * TL_HASH_LEN) != 0) {
		snprintf(j->err, sizeof j->err,
		         "feed %s: the author's checkpoint of size %llu does not match the "
		         "records stored here (no signed checkpoint of that size or larger is "
		         "stored to prove it)",
		         j->origin, (unsigned long long)j->new_size);
		return TL_EPROOF;
	}
	tl_buf_reset(&j->fa);
	if (tl_buf_add(&j->fa, j->note.data, j->note.len) != 0 ||
	    tl_store_fork_cpx_put(n->store, f, j->new_size, (const char *)j->fa.data, j->fa.len,
	                          (const char *)j->fb.data, j->fb.len, j->fx.data,
	                          j->fx.len) != 0) {
		snprintf(j->err, sizeof j->err, "feed %s: cannot store fork evidence: %s",
		         j->origin, tl_store_errmsg(n->store));
		return TL_ESTORE;
	}
	j->forked = 1;
	j->fork_cp = 3;
	j->fork_at = j->new_size;
	snprintf(j->err, sizeof j->err,
	         "feed %s: size %llu: FORK — the author's checkpoint is not a prefix of its "
	         "signed checkpoint of size %llu; both kept as evidence",
	         j->origin, (unsigned long long)j->new_size, (unsigned long long)ca.got);
	return TL_EFORK;
}

/* Fork evidence sent by the peer (J_FORK): kept only if it proves a fork;
 * a fork of one of our own feeds also halts it. */
static int fork_store(struct node *n, struct job *j)
{
	struct tl_feed f;
	char why[256];
	int rc = tl_fork_verify(j->origin, fork_type(j), j->fork_at, j->fa.data, j->fa.len,
	                        j->fb.data, j->fb.len, j->fx.data, j->fx.len, why, sizeof why);
	if (rc) {
		snprintf(j->err, sizeof j->err, "feed %s: fork evidence refused: %s", j->origin,
		         why);
		j->cp_bad = 1; /* the peer sent evidence that proves nothing */
		return rc;
	}
	if ((rc = tl_store_feed_get(n->store, j->origin, &f)) != 0)
		return snprintf(j->err, sizeof j->err, "%s", tl_store_errmsg(n->store)), rc;
	switch (fork_type(j)) {
	case TL_FORK_RECORDS:
		rc = tl_store_fork_put(n->store, &f, j->fork_at, j->fa.data, j->fa.len, j->fb.data,
		                       j->fb.len);
		break;
	case TL_FORK_CHECKPOINTS:
		rc = tl_store_fork_cp_put(n->store, &f, j->fork_at, (const char *)j->fa.data,
		                          j->fa.len, (const char *)j->fb.data, j->fb.len);
		break;
	default:
		rc = tl_store_fork_cpx_put(n->store, &f, j->fork_at, (const char *)j->fa.data,
		                           j->fa.len, (const char *)j->fb.data, j->fb.len,
		                           j->fx.data, j->fx.len);
	}
	if (rc == 0 && (f.flags & TL_FEED_OWN) && !(f.flags & TL_FEED_HALTED)) {
		snprintf(why, sizeof why, "the counterparty holds proof that it forked at %s %llu",
		         j->fork_cp ? "size" : "seq", (unsigned long long)j->fork_at);
		rc = tl_store_halt_set(n->store, f.origin, f.head.size, why);
		j->has_content = 1; /* halted */
	}
	if (rc)
		return snprintf(j->err, sizeof j->err, "%s", tl_store_errmsg(n->store)), rc;
	j->forked = 1;
	snprintf(j->err, sizeof j->err, "feed %s: %s: FORK evidence received and kept", j->origin,
	         why);
	return 0;
}

static int channel_open(struct node *n, struct job *j)
{
	struct tl_channel ch;
	int rc = tl_channel_open(n->store, j->book->name, &j->book->kp, j->peer_pk, j->label,
	                         j->addr, book_by_pk(n, j->peer_pk) != NULL, now_ms(), &ch);
	if (rc) {
		snprintf(j->err, sizeof j->err, "%s", tl_store_errmsg(n->store));
		return rc;
	}
	memcpy(j->origin, ch.origin, sizeof j->origin);
	memcpy(j->peer_origin, ch.peer_origin, sizeof j->peer_origin);
	return 0;
}

static const char *append_prepare(struct node *n, struct job *j, json_t *req, char *err,
                                  size_t errcap);

/* Committer thread of a local append: each durable batch is pushed to the
 * peers at once, not only when the whole request is done. */
static void on_batch_durable(void *ctx, size_t first, size_t count)
{
	struct node *n = ctx;
	(void)first;
	(void)count;
	uv_async_send(&n->kick);
}

static void on_kick(uv_async_t *a)
{
	pump_all(a->data);
}

static void job_work(uv_work_t *req)
{
	struct job *j = req->data;
	struct node *n = j->n;
	switch (j->type) {
	case J_APPEND: {
		if (j->raw.len) {
			/* A large request: parsing and converting it here keeps the
			 * event loop free for peers meanwhile. */
			json_error_t je;
			json_t *r = json_loadb((const char *)j->raw.data, j->raw.len,
			                       JSON_REJECT_DUPLICATES, &je);
			const char *e = r ? NULL : "request is not JSON";
			if (r) {
				j->reply_id = json_incref(json_object_get(r, "id"));
				const char *op = json_string_value(json_object_get(r, "op"));
				if (!op || strcmp(op, "append") != 0)
					e = "only append requests may be this large";
				else
					e = append_prepare(n, j, r, j->err, sizeof j->err);
			}
			if (e) {
				if (e != j->err)
					snprintf(j->err, sizeof j->err, "%s", e);
				j->rc = TL_EINVAL;
				json_decref(r);
				break;
			}
			json_decref(r);
		}
		/* Checked again here, where the append happens: a hold may have
		 * begun while the job waited (and receipts skip append_prepare). */
		struct tl_feed hf;
		if (tl_store_feed_get(n->store, j->origin, &hf) == 0 &&
		    held_msg(n, &hf, j->err, sizeof j->err)) {
			j->rc = TL_ELOCKED;
			break;
		}
		j->rc = tl_feed_append_local(n->store, j->origin, &j->book->kp, j->items, j->nitems,
		                             1024, now_ms(), j->out, NULL, on_batch_durable, n);
		if (j->rc)
			snprintf(j->err, sizeof j->err, "%s",
			         j->rc == TL_EINVAL || j->rc == TL_ETOOBIG
			                 ? tl_strerror(j->rc)
			                 : tl_store_errmsg(n->store));
		break;
	}
	case J_INGEST:
		j->rc = ingest(n, j);
		break;
	case J_CHANNEL_OPEN:
		j->rc = channel_open(n, j);
		break;
	case J_CP:
		j->rc = cp_store(n, j);
		break;
	case J_FORK:
		j->rc = fork_store(n, j);
		break;
	}
}

static void job_free(struct job *j)
{
	tl_buf_release(&j->raw);
	tl_buf_release(&j->kinds);
	tl_buf_release(&j->bodies);
	tl_buf_release(&j->recbuf);
	tl_buf_release(&j->note);
	tl_buf_release(&j->fa);
	tl_buf_release(&j->fb);
	tl_buf_release(&j->fx);
	free(j->items);
	free(j->out);
	free(j->recoff);
	json_decref(j->reply_id);
	free(j);
}

static void ctl_reply(struct ctl *c, json_t *id, json_t *result, const char *error);
static void job_start_next(struct node *n);
static void receipt_schedule(struct node *n, const char *seen_origin);

static void job_done(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct node *n = j->n;
	(void)status;
	n->jobs_head = j->next;
	if (!n->jobs_head)
		n->jobs_tail = NULL;
	n->job_running = 0;

	if (j->type == J_APPEND) {
		if (j->ctl) {
			json_t *arr = json_array();
			char hex[65];
			for (size_t i = 0; j->rc == 0 && i < j->nitems; i++) {
				tl_hex_encode(hex, j->out[i].leaf, 32);
				json_array_append_new(arr, json_pack("{s:I,s:s}", "seq",
				                                     (json_int_t)j->out[i].seq,
				                                     "leaf", hex));
			}
			ctl_reply(j->ctl, j->reply_id,
			          j->rc ? NULL
			                : json_pack("{s:s,s:o}", "origin", j->origin, "appended",
			                            arr),
			          j->rc ? j->err : NULL);
			if (j->rc)
				json_decref(arr);
			j->ctl->busy = 0;
		}
		if (j->rc == 0) {
			for (size_t i = 0; i < j->nitems; i++)
				emit(n, "append", j->origin, j->out[i].seq, 1, j->items[i].kind,
				     j->out[i].leaf);
			pump_all(n);
			auditors_changed(n, j->origin, j->items, j->out, j->nitems);
		}
	} else if (j->type == J_INGEST) {
		struct peer *p = j->peer;
		if (j->own_return)
			hold_release(n, j->origin, j->rc == 0 && j->stored);
		if (j->halted_now) {
			logm(0,
			     "feed %s HALTED: the counterparty sent back entries of it signed by "
			     "this book that %s. Local appends are refused; see "
			     "docs/operations.md, \"Restored nodes\"",
			     j->origin,
			     j->rc == TL_EFORK ? "differ from the ones stored here"
			                       : "do not continue this store's feed");
			emit(n, "halt", j->origin, j->first, 0, NULL, NULL);
		}
		if (j->rc == 0 && j->stored) {
			logm(3, "ingested %s [%llu, %llu)", j->origin, (unsigned long long)j->first,
			     (unsigned long long)j->new_size);
			if (j->cp_added)
				logm(1,
				     "feed %s caught up to %llu entries from its counterparty; "
				     "no longer halted",
				     j->origin, (unsigned long long)j->new_size);
			emit(n, "ingest", j->origin, j->first, j->stored, NULL, NULL);
			pump_all(n); /* auditors get the counterparty's entries too */
			if (j->has_content)
				receipt_schedule(n, j->origin);
		} else if (j->rc) {
			logm(j->rc == TL_EFORK ? 0 : 1, "refused records from peer %s: %s",
			     p ? p->addr : "(gone)", j->err);
			if (j->rc == TL_EFORK) {
				emit(n, "fork", j->origin, j->fork_at, 0, NULL, NULL);
				/* The author learns that its feed forked. */
				if (p && j->forked)
					send_fork(p, j->origin, TL_FORK_RECORDS, j->fork_at, &j->fa,
					          &j->fb, NULL);
			}
			/* Our own records sent back that do not fit (this node forked
			 * meanwhile): the session stays, so the fork proof gets here.
			 * A fork found here keeps the session too, so that the proof
			 * just queued reaches the author; the feed's later records are
			 * ignored (ingest). */
			if (p && !j->own_return && j->rc != TL_EFORK)
				peer_close(p, "sent records that do not verify");
		}
		peer_job_done(p);
	} else if (j->type == J_CP) {
		struct peer *p = j->peer;
		if (j->rc == TL_EFORK) {
			logm(0, "peer %s: %s", p ? p->addr : "(gone)", j->err);
			emit(n, "fork", j->origin, j->fork_at, 0, NULL, NULL);
			if (p && p->state == P_OPEN)
				send_fork(p, j->origin, fork_type(j), j->fork_at, &j->fa, &j->fb,
				          &j->fx);
		} else if (j->rc) {
			logm(1, "peer %s: %s", p ? p->addr : "(gone)", j->err);
		} else if (j->cp_added) {
			logm(3, "feed %s: %zu signature(s) of checkpoint %llu stored", j->origin,
			     j->cp_added, (unsigned long long)j->new_size);
		}
		peer_job_done(p);
	} else if (j->type == J_FORK) {
		struct peer *p = j->peer;
		if (j->rc) {
			logm(1, "peer %s: %s", p ? p->addr : "(gone)", j->err);
			if (p && j->cp_bad)
				peer_close(p, "sent fork evidence that proves nothing");
		} else {
			logm(0, "peer %s: %s%s", p ? p->addr : "(gone)", j->err,
			     j->has_content ? "; our feed is HALTED (see tally forks)" : "");
			emit(n, "fork", j->origin, j->fork_at, 0, NULL, NULL);
		}
		peer_job_done(p);
	} else if (j->type == J_CHANNEL_OPEN) {
		if (j->ctl) {
			ctl_reply(j->ctl, j->reply_id,
			          j->rc ? NULL
			                : json_pack("{s:s,s:s}", "origin", j->origin, "peer_origin",
			                            j->peer_origin),
			          j->rc ? j->err : NULL);
			j->ctl->busy = 0;
		}
		if (j->rc == 0) {
			load_targets(n);
			/* Sessions already open learn about the new channel. */
			for (struct peer *p = n->peers; p; p = p->next)
				if (p->state == P_OPEN && p->book == j->book &&
				    memcmp(p->remote, j->peer_pk, 32) == 0)
					send_heads(p, 1);
			emit(n, "channel", j->origin, 0, 0, NULL, NULL);
		}
	}
	job_free(j);
	job_start_next(n);
}

static void job_start_next(struct node *n)
{
	/* Shutting down: the job in flight finishes (commits or fails whole);
	 * queued ones are refused, and their requesters see the socket close. */
	while (n->stopping && !n->job_running && n->jobs_head) {
		struct job *j = n->jobs_head;
		n->jobs_head = j->next;
		if (!n->jobs_head)
			n->jobs_tail = NULL;
		if (j->peer)
			j->peer->pending_ingest--;
		job_free(j);
	}
	if (n->job_running || !n->jobs_head)
		return;
	/* Until the witnesses answered once, local appends wait (and what is
	 * queued behind them). */
	if (!n->gate_open && n->jobs_head->type == J_APPEND)
		return;
	n->job_running = 1;
	n->jobs_head->req.data = n->jobs_head;
	uv_queue_work(&n->loop, &n->jobs_head->req, job_work, job_done);
}

static void job_submit(struct node *n, struct job *j)
{
	j->n = n;
	j->next = NULL;
	if (n->jobs_tail)
		n->jobs_tail->next = j;
	else
		n->jobs_head = j;
	n->jobs_tail = j;
	job_start_next(n);
}

/* ----------------------------------------------------------- receipts */

/* After ingesting a counterparty's entries, our feed in that channel gets a
 * `seen` entry with the checkpoint we verified — at most once a second. */
static void receipt_schedule(struct node *n, const char *seen_origin)
{
	for (struct receipt *r = n->receipts; r; r = r->next)
		if (strcmp(r->seen, seen_origin) == 0)
			return;
	struct tl_feed pf, *feeds = NULL;
	size_t nf = 0;
	if (tl_store_feed_get(n->store, seen_origin, &pf) != 0 ||
	    tl_store_feed_list(n->store, &feeds, &nf) != 0)
		return;
	for (size_t i = 0; i < nf; i++) {
		if (!(feeds[i].flags & TL_FEED_OWN) ||
		    memcmp(feeds[i].o.channel, pf.o.channel, TL_CHANNEL_LEN) != 0 ||
		    memcmp(feeds[i].o.pk, pf.o.pk, 32) == 0)
			continue;
		struct receipt *r = calloc(1, sizeof *r);
		if (!r)
			break;
		memcpy(r->own, feeds[i].origin, sizeof r->own);
		memcpy(r->seen, seen_origin, sizeof r->seen);
		r->due = now_ms() + RECEIPT_INTERVAL_MS;
		r->next = n->receipts;
		n->receipts = r;
		break;
	}
	free(feeds);
}

static void receipts_flush(struct node *n)
{
	uint64_t now = now_ms();
	for (struct receipt **rp = &n->receipts; *rp;) {
		struct receipt *r = *rp;
		if (r->due > now) {
			rp = &r->next;
			continue;
		}
		uint64_t others = 0;
		if (held(n, r->own, &others)) {
			/* Our feed may be behind what the counterparty holds: a
			 * receipt appended now could sign a second record for a seq
			 * it already has. It waits for the hold to end. */
			r->due = now + RECEIPT_INTERVAL_MS;
			rp = &r->next;
			continue;
		}
		*rp = r->next;
		struct tl_feed own, seen;
		struct tl_buf note;
		uint64_t size = 0;
		tl_buf_init(&note, TL_NOTE_MAX);
		if (tl_store_feed_get(n->store, r->own, &own) == 0 &&
		    tl_store_feed_get(n->store, r->seen, &seen) == 0 &&
		    tl_store_checkpoint_get(n->store, &seen, UINT64_MAX, &note, &size) == 0) {
			struct book *b = book_by_name(n, own.book);
			json_t *body = json_pack("{s:s,s:I,s:s%}", "feed", seen.origin, "size",
			                         (json_int_t)size, "checkpoint",
			                         (const char *)note.data, note.len);
			struct job *j = calloc(1, sizeof *j);
			char err[128];
			if (b && body && j) {
				j->type = J_APPEND;
				j->book = b;
				memcpy(j->origin, own.origin, sizeof j->origin);
				tl_buf_init(&j->bodies, TL_ENTRY_MAX);
				tl_buf_init(&j->kinds, 64);
				j->items = calloc(1, sizeof *j->items);
				j->out = calloc(1, sizeof *j->out);
				if (j->items && j->out && tl_buf_add(&j->kinds, "seen", 5) == 0 &&
				    tl_json_to_mp(body, &j->bodies, err, sizeof err) == 0) {
					j->nitems = 1;
					j->items[0] =
					        (struct tl_item){(const char *)j->kinds.data, 4,
					                         j->bodies.data, j->bodies.len};
					job_submit(n, j);
					j = NULL;
				}
			}
			if (j)
				job_free(j);
			json_decref(body);
		}
		tl_buf_release(&note);
		free(r);
	}
}

/* Receipts owed from before a restart: for each of our feeds, if the
 * counterparty's feed holds entries other than receipts beyond what our
 * last `seen` covers, a receipt is due. Scans back from the end of our
 * feed to the last `seen`, and forward over the counterparty's unreceipted
 * tail only. */
struct last_seen {
	const char *peer_origin;
	uint64_t size;
	int found;
};

static int find_seen(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                     const uint8_t leaf[TL_HASH_LEN])
{
	struct last_seen *ls = ctx;
	struct tl_entry e;
	(void)seq;
	(void)leaf;
	if (tl_record_decode(&e, rec, len, NULL) != 0 || e.kind_len != 4 ||
	    memcmp(e.kind, "seen", 4) != 0)
		return 0;
	json_t *b = tl_mp_to_json(e.body, e.body_len);
	const char *f = json_string_value(json_object_get(b, "feed"));
	if (f && strcmp(f, ls->peer_origin) == 0) {
		ls->size = (uint64_t)json_integer_value(json_object_get(b, "size"));
		ls->found = 1;
	}
	json_decref(b);
	return 0;
}

static int has_content(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                       const uint8_t leaf[TL_HASH_LEN])
{
	struct tl_entry e;
	(void)seq;
	(void)leaf;
	if (tl_record_decode(&e, rec, len, NULL) == 0 &&
	    !(e.kind_len == 4 && memcmp(e.kind, "seen", 4) == 0)) {
		*(int *)ctx = 1;
		return 1; /* stop the scan */
	}
	return 0;
}

static void receipts_recover(struct node *n)
{
	struct tl_feed *feeds = NULL;
	size_t nf = 0;
	if (tl_store_feed_list(n->store, &feeds, &nf) != 0)
		return;
	for (size_t i = 0; i < nf; i++) {
		struct tl_feed *own = &feeds[i], pf;
		char po[TL_ORIGIN_LEN + 1];
		/* Two books of this node share one store: no receipts between them. */
		if (!(own->flags & TL_FEED_OWN) || book_by_pk(n, own->peer))
			continue;
		tl_origin_format(po, own->peer, own->o.channel);
		if (tl_store_feed_get(n->store, po, &pf) != 0 || pf.head.size == 0)
			continue;
		struct last_seen ls = {po, 0, 0};
		/* Receipts are frequent: the last one is near the end. */
		uint64_t from = own->head.size;
		while (from > 0 && !ls.found) {
			uint64_t lo = from > 256 ? from - 256 : 0;
			if (tl_store_scan(n->store, own, lo, from, find_seen, &ls) != 0)
				break;
			from = lo;
		}
		int content = 0;
		/* A scan stopped early (1) found content; an error leaves 0. */
		if (ls.size < pf.head.size &&
		    tl_store_scan(n->store, &pf, ls.size, pf.head.size, has_content, &content) < 0)
			content = 0;
		if (content)
			receipt_schedule(n, po);
	}
	free(feeds);
}

/* ------------------------------------------------------ control socket */

static void ctl_written(uv_write_t *w, int status)
{
	(void)status;
	free(w);
}

static void ctl_write(struct ctl *c, const char *line)
{
	size_t len = strlen(line);
	uv_write_t *w = malloc(sizeof *w + len + 1);
	if (!w || c->closing) {
		free(w);
		return;
	}
	char *data = (char *)(w + 1);
	memcpy(data, line, len);
	data[len] = '\n';
	uv_buf_t b = uv_buf_init(data, (unsigned)len + 1);
	w->data = w;
	if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, ctl_written) != 0)
		free(w);
}

static void ctl_reply(struct ctl *c, json_t *id, json_t *result, const char *error)
{
	json_t *o = json_object();
	json_object_set(o, "id", id ? id : json_null());
	json_object_set_new(o, "ok", json_boolean(error == NULL));
	if (error)
		json_object_set_new(o, "error", json_string(error));
	else if (result)
		json_object_set_new(o, "result", result);
	char *s = json_dumps(o, JSON_COMPACT);
	if (s)
		ctl_write(c, s);
	free(s);
	json_decref(o);
}

static void emit(struct node *n, const char *event, const char *origin, uint64_t seq,
                 uint64_t count, const char *kind, const uint8_t *leaf)
{
	char hex[65], ch[TL_CHANNEL_LEN * 2 + 1];
	json_t *o = NULL;
	struct tl_origin og;
	if (tl_origin_parse(&og, origin, strlen(origin)) != 0)
		return;
	tl_hex_encode(ch, og.channel, TL_CHANNEL_LEN);
	for (struct ctl *c = n->ctls; c; c = c->next) {
		if (!c->watching || c->closing ||
		    (c->watch_channel[0] && strcmp(c->watch_channel, ch) != 0))
			continue;
		if (!o) {
			o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I}", "event", event, "origin", origin,
			              "channel", ch, "seq", (json_int_t)seq, "count",
			              (json_int_t)count, "time_ms", (json_int_t)now_ms());
			if (kind)
				json_object_set_new(o, "kind", json_string(kind));
			if (leaf) {
				tl_hex_encode(hex, leaf, 32);
				json_object_set_new(o, "leaf", json_string(hex));
			}
		}
		char *s = json_dumps(o, JSON_COMPACT);
		if (s)
			ctl_write(c, s);
		free(s);
	}
	json_decref(o);
}

static json_t *witness_status(struct node *n);

static json_t *status_json(struct node *n)
{
	json_t *books = json_array(), *peers = json_array();
	char hex[65];
	for (size_t i = 0; i < n->nbooks; i++) {
		tl_hex_encode(hex, n->books[i].kp.pk, 32);
		json_array_append_new(
		        books, json_pack("{s:s,s:s}", "book", n->books[i].name, "public_key", hex));
	}
	for (struct peer *p = n->peers; p; p = p->next) {
		if (p->state != P_OPEN)
			continue;
		tl_hex_encode(hex, p->remote, 32);
		json_array_append_new(
		        peers, json_pack("{s:s,s:s,s:s,s:b,s:I,s:s}", "peer", hex, "book",
		                         p->book->name, "addr", p->addr, "outbound", p->outbound,
		                         "queued", (json_int_t)p->wqueued, "session",
		                         p->audit    ? "auditor"   /* read-only, served by us */
		                         : p->follow ? "following" /* we are the auditor */
		                                     : "channel"));
	}
	return json_pack("{s:s,s:o,s:o,s:o,s:b}", "version", TL_VERSION, "books", books, "peers",
	                 peers, "witnesses", witness_status(n), "appends_open", n->gate_open);
}

/* Validates an append request and converts its items to canonical
 * MessagePack into the job. Runs on the loop for small requests and on the
 * thread pool for large ones. Returns NULL or a sentence. */
static const char *append_prepare(struct node *n, struct job *j, json_t *req, char *err,
                                  size_t errcap)
{
	const char *e = NULL;
	const char *origin = json_string_value(json_object_get(req, "origin"));
	json_t *items = json_object_get(req, "items");
	struct tl_feed f;
	if (!origin || tl_store_feed_get(n->store, origin, &f) != 0)
		e = "no such feed";
	else if (!(f.flags & TL_FEED_OWN) || !(j->book = book_by_name(n, f.book)))
		e = "only the author of a feed appends to it";
	else if (held_msg(n, &f, err, errcap))
		e = err;
	else if (!json_is_array(items) || json_array_size(items) == 0)
		e = "items must be a non-empty array";
	else {
		size_t k = json_array_size(items);
		memcpy(j->origin, f.origin, sizeof j->origin);
		j->items = calloc(k, sizeof *j->items);
		j->out = calloc(k, sizeof *j->out);
		size_t *koff = calloc(k, sizeof *koff), *boff = calloc(k + 1, sizeof *boff);
		if (!j->items || !j->out || !koff || !boff)
			e = "out of memory";
		for (size_t i = 0; !e && i < k; i++) {
			json_t *it = json_array_get(items, i);
			const char *kind = json_string_value(json_object_get(it, "kind"));
			json_t *body = json_object_get(it, "body");
			if (!kind || !*kind || strlen(kind) > TL_KIND_MAX ||
			    !json_is_object(body)) {
				e = "each item needs a kind and an object body";
				break;
			}
			koff[i] = j->kinds.len;
			boff[i] = j->bodies.len;
			if (tl_buf_add(&j->kinds, kind, strlen(kind) + 1) != 0 ||
			    tl_json_to_mp(body, &j->bodies, err, errcap) != 0) {
				e = err;
				break;
			}
		}
		if (!e) {
			boff[k] = j->bodies.len;
			for (size_t i = 0; i < k; i++)
				j->items[i] = (struct tl_item){
				        (const char *)j->kinds.data + koff[i],
				        strlen((const char *)j->kinds.data + koff[i]),
				        j->bodies.data + boff[i], boff[i + 1] - boff[i]};
			j->nitems = k;
		}
		free(koff);
		free(boff);
	}
	return e;
}

static void ctl_request(struct ctl *c, const char *line, size_t len)
{
	struct node *n = c->n;
	json_error_t je;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	json_t *id = req ? json_object_get(req, "id") : NULL;
	const char *op = req ? json_string_value(json_object_get(req, "op")) : NULL;
	char err[256];
	if (!req || !op) {
		ctl_reply(c, NULL, NULL, req ? "missing \"op\"" : "request is not JSON");
		goto out;
	}
	if (strcmp(op, "status") == 0) {
		ctl_reply(c, id, status_json(n), NULL);
	} else if (strcmp(op, "watch") == 0) {
		const char *ch = json_string_value(json_object_get(req, "channel"));
		c->watching = 1;
		snprintf(c->watch_channel, sizeof c->watch_channel, "%s", ch ? ch : "");
		ctl_reply(c, id, json_pack("{s:b}", "watching", 1), NULL);
	} else if (strcmp(op, "append") == 0 || strcmp(op, "channel_open") == 0) {
		if (c->busy) {
			ctl_reply(c, id, NULL, "one request at a time per connection");
			goto out;
		}
		struct job *j = calloc(1, sizeof *j);
		if (!j)
			goto out;
		j->ctl = c;
		j->reply_id = json_incref(id);
		tl_buf_init(&j->kinds, CTL_LINE_MAX);
		tl_buf_init(&j->bodies, CTL_LINE_MAX);
		tl_buf_init(&j->recbuf, 0);
		tl_buf_init(&j->note, 0);
		const char *e = NULL;
		if (strcmp(op, "channel_open") == 0) {
			const char *book = json_string_value(json_object_get(req, "book"));
			const char *peer = json_string_value(json_object_get(req, "peer"));
			const char *label = json_string_value(json_object_get(req, "label"));
			const char *addr = json_string_value(json_object_get(req, "addr"));
			j->type = J_CHANNEL_OPEN;
			if (!book || !(j->book = book_by_name(n, book)))
				e = "no such book on this node";
			else if (!peer || strlen(peer) != 64 ||
			         tl_hex_decode(j->peer_pk, 32, peer, 64) != 0)
				e = "peer must be a 64-digit hex public key";
			else if (memcmp(j->peer_pk, j->book->kp.pk, 32) == 0)
				e = "a channel needs two different books";
			else if (label && (strlen(label) == 0 || strlen(label) > TL_LABEL_MAX))
				e = "label must be 1-128 bytes";
			else if (addr && strlen(addr) > TL_ADDR_MAX)
				e = "address too long";
			else {
				struct sockaddr_storage ss;
				if (addr && *addr && parse_addr(addr, &ss) != 0)
					e = "address must be HOST:PORT with a numeric IP or "
					    "localhost";
			}
			snprintf(j->label, sizeof j->label, "%s", label ? label : "default");
			snprintf(j->addr, sizeof j->addr, "%s", addr ? addr : "");
		} else {
			j->type = J_APPEND;
			e = append_prepare(n, j, req, err, sizeof err);
		}
		if (e) {
			ctl_reply(c, id, NULL, e);
			job_free(j);
			goto out;
		}
		c->busy = 1;
		job_submit(n, j);
	} else if (strcmp(op, "reload_peers") == 0) {
		load_targets(n); /* e.g. after `tally auditor follow` */
		ctl_reply(c, id, json_pack("{s:b}", "reloaded", 1), NULL);
	} else if (strcmp(op, "blob_get") == 0) {
		tl_blob_repl_ctl_get(n->blobs, c, id, req);
	} else {
		snprintf(err, sizeof err, "unknown op '%s'", op);
		ctl_reply(c, id, NULL, err);
	}
out:
	json_decref(req);
}

/* Requests over CTL_INLINE_MAX (bulk appends) are parsed on the thread pool
 * as part of their job, never on the loop. */
static void ctl_request_big(struct ctl *c, const char *line, size_t len)
{
	struct job *j;
	if (c->busy) {
		ctl_reply(c, NULL, NULL, "one request at a time per connection");
		return;
	}
	if (!(j = calloc(1, sizeof *j)))
		return;
	j->type = J_APPEND;
	j->ctl = c;
	tl_buf_init(&j->raw, CTL_LINE_MAX);
	tl_buf_init(&j->kinds, CTL_LINE_MAX);
	tl_buf_init(&j->bodies, CTL_LINE_MAX);
	if (tl_buf_add(&j->raw, line, len) != 0) {
		ctl_reply(c, NULL, NULL, "out of memory");
		job_free(j);
		return;
	}
	c->busy = 1;
	job_submit(c->n, j);
}

static void on_ctl_closed(uv_handle_t *h)
{
	struct ctl *c = h->data;
	struct node *n = c->n;
	for (struct ctl **cp = &n->ctls; *cp; cp = &(*cp)->next)
		if (*cp == c) {
			*cp = c->next;
			break;
		}
	for (struct job *j = n->jobs_head; j; j = j->next)
		if (j->ctl == c)
			j->ctl = NULL;
	tl_buf_release(&c->rbuf);
	free(c);
}

static void ctl_close(struct ctl *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	tl_blob_repl_ctl_gone(c->n->blobs, c);
	for (struct job *j = c->n->jobs_head; j; j = j->next)
		if (j->ctl == c)
			j->ctl = NULL;
	uv_close((uv_handle_t *)&c->pipe, on_ctl_closed);
}

static void ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ctl *c = h->data;
	(void)suggested;
	alloc_into(&c->rbuf, buf);
}

static void ctl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct ctl *c = s->data;
	(void)buf;
	if (nread < 0 || (nread == 0 && !buf->base)) {
		ctl_close(c);
		return;
	}
	c->rbuf.len += (size_t)nread;
	size_t off = 0;
	for (;;) {
		uint8_t *nl = memchr(c->rbuf.data + off, '\n', c->rbuf.len - off);
		if (!nl)
			break;
		size_t l = (size_t)(nl - (c->rbuf.data + off));
		if (l > CTL_INLINE_MAX)
			ctl_request_big(c, (const char *)c->rbuf.data + off, l);
		else if (l)
			ctl_request(c, (const char *)c->rbuf.data + off, l);
		off += l + 1;
		if (c->closing)
			return;
	}
	memmove(c->rbuf.data, c->rbuf.data + off, c->rbuf.len - off);
	c->rbuf.len -= off;
}

static void on_ctl_connection(uv_stream_t *server, int status)
{
	struct node *n = server->data;
	if (status < 0)
		return;
	struct ctl *c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->n = n;
	tl_buf_init(&c->rbuf, CTL_LINE_MAX);
	uv_pipe_init(&n->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = n->ctls;
	n->ctls = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
		ctl_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, ctl_alloc, ctl_read);
}

/* ---------------------------------------------------------- witnesses */

/*
 * For each (witness, own feed) one submission state. Requests run on the
 * thread pool (libcurl blocks), at most one per pair and W_INFLIGHT_MAX in
 * all, so that a hanging witness can hold only that many pool threads and
 * never the loop. After an append the latest size is sent W_COALESCE_MS
 * later; when nothing changed the same checkpoint is sent again every
 * witness_heartbeat seconds, for a fresh timestamp.
 */
#define W_COALESCE_MS    200
#define W_INFLIGHT_MAX   2
#define W_BACKOFF_MIN_MS 1000
#define W_BACKOFF_MAX_MS 300000
#define W_REFRESH_MS     1000

struct wsub {
	struct wsub *next;
	struct node *n;
	size_t w; /* index into cfg.witness and n->wkeys */
	char origin[TL_ORIGIN_LEN + 1];
	struct book *book;
	struct tl_wc_conn *conn; /* keep-alive connection, used by one request at a time */
	uv_work_t req;
	int busy;
	int probed; /* answered (or failed) once since start */
	int known;  /* wsize is the witness's latest cosigned size */
	uint64_t wsize;
	uint64_t dirty_since, next_try, last_ok_ms;
	unsigned backoff;
	/* one request's outcome: written on the pool, read in wsub_done */
	uint64_t size, old, got, cosig_time;
	long status;
	int rc, halt;
	size_t added;
	char err[400];
	char shown[400]; /* err as of the last wsub_done: status reads this, on
	                    the loop, never err (written on the pool meanwhile) */
};

static void wsub_halt(struct wsub *w, const struct tl_feed *f, uint64_t others, const char *what)
{
	char why[TL_HALT_WHY_MAX];
	snprintf(why, sizeof why, "witness %.200s %s", w->n->cfg.witness[w->w].url, what);
	if (tl_store_halt_set(w->n->store, f->origin, others, why) == 0)
		w->halt = 1;
	snprintf(w->err, sizeof w->err, "%s", why);
}

/* Thread pool: one add-checkpoint round trip, and what follows from it. */
static void wsub_work(uv_work_t *req)
{
	struct wsub *w = req->data;
	struct node *n = w->n;
	struct tl_feed f;
	struct tl_buf note, send, body, merged;
	struct tl_wc_resp r;
	struct tl_vkey bk;
	uint8_t proof[TL_WC_MAX_PROOF][TL_HASH_LEN];
	size_t np = 0, kept = 0;
	const char *url = n->cfg.witness[w->w].url;
	int rc;

	w->rc = 0;
	w->status = 0;
	w->halt = 0;
	w->added = 0;
	w->err[0] = 0;
	w->size = 0;
	tl_buf_init(&note, TL_NOTE_MAX);
	tl_buf_init(&send, TL_NOTE_MAX);
	tl_buf_init(&body, TL_NOTE_MAX + 4096);
	tl_buf_init(&merged, TL_NOTE_MAX);
	tl_wc_resp_init(&r);
	if (!w->conn && (rc = tl_wc_conn_new(&w->conn)) != 0) {
		snprintf(w->err, sizeof w->err, "cannot set up an HTTP client");
		goto out;
	}
	if ((rc = tl_store_feed_get(n->store, w->origin, &f)) != 0) {
		snprintf(w->err, sizeof w->err, "%s", tl_store_errmsg(n->store));
		goto out;
	}
	if (f.flags & TL_FEED_HALTED) {
		rc = TL_EFORK;
		snprintf(w->err, sizeof w->err, "feed is halted");
		goto out;
	}
	w->size = f.head.size;
	if (f.head.size == 0)
		goto out;
	/* The checkpoint of the current size: stored (perhaps cosigned
	 * already), else signed now and stored, so that cosignatures have a
	 * note to be merged into. */
	rc = tl_store_checkpoint_get(n->store, &f, f.head.size, &note, NULL);
	if (rc == TL_ENOTFOUND) {
		rc = sign_checkpoint(n, w->book, &f, f.head.size, &note);
		if (rc == 0)
			rc = tl_store_checkpoint_merge(n->store, &f, f.head.size,
			                               (const char *)note.data, note.len, NULL,
			                               NULL);
	}
	if (rc) {
		snprintf(w->err, sizeof w->err, "cannot sign or read the checkpoint: %s",
		         tl_store_errmsg(n->store));
		goto out;
	}
	/* Only the book's own signature goes to the witness. */
	if ((rc = tl_vkey_from_pub(&bk, f.origin, TL_SIGTYPE_ED25519, f.o.pk)) != 0 ||
	    (rc = tl_wc_filter((const char *)note.data, note.len, &bk, 1, &send, &kept, NULL,
	                       NULL)) != 0 ||
	    kept == 0) {
		rc = rc ? rc : TL_ESIG;
		snprintf(w->err, sizeof w->err, "stored checkpoint %llu is not signed by the book",
		         (unsigned long long)f.head.size);
		goto out;
	}
	w->old = w->known ? w->wsize : 0;
	if (w->old > f.head.size) {
		wsub_halt(w, &f, w->old, "has cosigned a larger size of this feed");
		goto out;
	}
	if (w->old > 0 && w->old < f.head.size &&
	    (rc = tl_store_consistency(n->store, &f, w->old, f.head.size, proof, TL_WC_MAX_PROOF,
	                               &np)) != 0) {
		snprintf(w->err, sizeof w->err, "consistency proof: %s", tl_store_errmsg(n->store));
		goto out;
	}
	if ((rc = tl_wc_body(&body, w->old, (const uint8_t(*)[TL_HASH_LEN])proof, np,
	                     (const char *)send.data, send.len)) != 0) {
		snprintf(w->err, sizeof w->err, "request too large");
		goto out;
	}
	if ((rc = tl_wc_post(w->conn, url, body.data, body.len, n->cfg.witness_timeout_ms,
	                     &n->w_cancel, &r)) != 0) {
		snprintf(w->err, sizeof w->err, "%s", r.err);
		goto out;
	}
	w->status = r.status;
	if (r.status == 200) {
		rc = tl_wc_accept((const char *)send.data, send.len, r.body.data, r.body.len,
		                  &n->wkeys[w->w], &merged, NULL, &w->cosig_time);
		if (rc) {
			snprintf(w->err, sizeof w->err,
			         "answer 200 carries no valid cosignature by the configured key");
			goto out;
		}
		rc = tl_store_checkpoint_merge(n->store, &f, f.head.size, (const char *)merged.data,
		                               merged.len, &w->added, NULL);
		if (rc)
			snprintf(w->err, sizeof w->err, "storing the cosignature: %s",
			         tl_store_errmsg(n->store));
	} else if (r.status == 409) {
		if ((rc = tl_wc_parse_size(r.body.data, r.body.len, &w->got)) != 0) {
			snprintf(w->err, sizeof w->err, "409 without a text/x.tlog.size body");
			goto out;
		}
		if (w->got > f.head.size) {
			char what[120];
			snprintf(what, sizeof what, "has cosigned %llu entries of this feed",
			         (unsigned long long)w->got);
			wsub_halt(w, &f, w->got, what);
		} else if (w->got == f.head.size && w->old == f.head.size) {
			wsub_halt(w, &f, w->got,
			          "has cosigned a different checkpoint of the same size: the feed "
			          "forked");
		}
	} else if (r.status == 422 && w->old > 0) {
		char what[160];
		snprintf(what, sizeof what,
		         "refuses the consistency proof from its size %llu: the feed differs "
		         "from what it cosigned",
		         (unsigned long long)w->old);
		wsub_halt(w, &f, w->old, what);
	} else {
		/* The first line of the answer, printable ASCII only, for the log. */
		char line[121];
		size_t k = 0;
		for (; k < r.body.len && k < sizeof line - 1 && r.body.data[k] != '\n'; k++)
			line[k] = r.body.data[k] >= 0x20 && r.body.data[k] < 0x7f
			                  ? (char)r.body.data[k]
			                  : '?';
		line[k] = 0;
		snprintf(w->err, sizeof w->err, "HTTP %ld%s%s", r.status, k ? ": " : "", line);
		rc = TL_EIO;
	}
out:
	w->rc = rc;
	tl_buf_release(&note);
	tl_buf_release(&send);
	tl_buf_release(&body);
	tl_buf_release(&merged);
	tl_wc_resp_release(&r);
}

static void gate_check(struct node *n)
{
	if (n->gate_open || (n->probes_pending > 0 && now_ms() < n->gate_deadline))
		return;
	n->gate_open = 1;
	if (n->probes_pending > 0)
		logm(1, "accepting local appends although %d witness probe(s) have not answered",
		     n->probes_pending);
	job_start_next(n);
}

static void wsub_done(uv_work_t *req, int status)
{
	struct wsub *w = req->data;
	struct node *n = w->n;
	const char *url = n->cfg.witness[w->w].url;
	uint64_t now = now_ms();
	(void)status;
	w->busy = 0;
	n->w_inflight--;
	memcpy(w->shown, w->err, sizeof w->shown);
	if (!w->probed) {
		w->probed = 1;
		n->probes_pending--;
		gate_check(n);
	}
	if (w->halt) {
		struct tl_feed f;
		logm(0,
		     "feed %s HALTED: %s. Local appends are refused; see docs/operations.md, "
		     "\"Restored nodes\"",
		     w->origin, w->err);
		if (tl_store_feed_get(n->store, w->origin, &f) == 0)
			emit(n, "halt", w->origin, f.head.size, w->got, NULL, NULL);
		return;
	}
	if (w->rc == 0 && w->status == 200) {
		w->known = 1;
		w->wsize = w->size;
		w->last_ok_ms = now;
		w->backoff = 0;
		w->dirty_since = 0;
		logm(3, "witness %s cosigned %s size %llu (time %llu)", url, w->origin,
		     (unsigned long long)w->size, (unsigned long long)w->cosig_time);
		if (w->added)
			share_cp(n, w->origin, w->size);
		return;
	}
	if (w->rc == 0 && w->status == 409 && !(w->known && w->wsize == w->got)) {
		/* Resynchronised: the next request goes out at once from its size. */
		logm(2, "witness %s holds %s at size %llu; resending from there", url, w->origin,
		     (unsigned long long)w->got);
		w->known = 1;
		w->wsize = w->got;
		w->next_try = now;
		return;
	}
	if (w->rc == TL_EFORK || (w->rc == 0 && w->size == 0))
		return;
	if (w->rc == 0) {
		snprintf(w->err, sizeof w->err, "HTTP %ld with size %llu again", w->status,
		         (unsigned long long)w->got);
		memcpy(w->shown, w->err, sizeof w->shown);
	}
	w->backoff = w->backoff ? w->backoff * 2 : W_BACKOFF_MIN_MS;
	if (w->backoff > W_BACKOFF_MAX_MS)
		w->backoff = W_BACKOFF_MAX_MS;
	w->next_try = now + w->backoff / 2 + randombytes_uniform(w->backoff / 2 + 1);
	logm(1, "witness %s: feed %s size %llu: %s; retrying in %u ms", url, w->origin,
	     (unsigned long long)w->size, w->err, (unsigned)(w->next_try - now));
}

/* One state per (witness, own feed), created as feeds appear. */
static void wsubs_refresh(struct node *n, int at_start)
{
	struct tl_feed *feeds = NULL;
	size_t nf = 0;
	if (tl_store_feed_list(n->store, &feeds, &nf) != 0)
		return;
	for (size_t i = 0; i < nf; i++) {
		struct book *b = book_by_name(n, feeds[i].book);
		if (!(feeds[i].flags & TL_FEED_OWN) || !b)
			continue;
		for (size_t k = 0; k < n->cfg.nwitnesses; k++) {
			struct wsub *w;
			for (w = n->wsubs; w; w = w->next)
				if (w->w == k && strcmp(w->origin, feeds[i].origin) == 0)
					break;
			if (w || !(w = calloc(1, sizeof *w)))
				continue;
			w->n = n;
			w->w = k;
			w->book = b;
			memcpy(w->origin, feeds[i].origin, sizeof w->origin);
			w->req.data = w;
			w->probed = !at_start;
			if (at_start)
				n->probes_pending++;
			w->next = n->wsubs;
			n->wsubs = w;
		}
	}
	free(feeds);
}

static void witness_tick(struct node *n)
{
	uint64_t now = now_ms();
	if (!n->cfg.nwitnesses || n->stopping)
		return;
	if (now - n->w_refreshed >= W_REFRESH_MS) {
		n->w_refreshed = now;
		wsubs_refresh(n, 0);
	}
	gate_check(n);
	for (struct wsub *w = n->wsubs; w && n->w_inflight < W_INFLIGHT_MAX; w = w->next) {
		struct tl_feed f;
		int go = 0;
		if (w->busy || now < w->next_try || tl_store_feed_get(n->store, w->origin, &f) != 0)
			continue;
		if ((f.flags & TL_FEED_HALTED) || f.head.size == 0) {
			if (!w->probed) { /* nothing to ask: not a reason to hold appends */
				w->probed = 1;
				n->probes_pending--;
			}
			continue;
		}
		if (!w->probed)
			go = 1;
		else if (!w->known || w->wsize != f.head.size) {
			if (!w->dirty_since)
				w->dirty_since = now;
			go = now - w->dirty_since >= W_COALESCE_MS;
		} else
			go = now - w->last_ok_ms >= (uint64_t)n->cfg.witness_heartbeat_s * 1000;
		if (!go)
			continue;
		w->busy = 1;
		n->w_inflight++;
		if (uv_queue_work(&n->loop, &w->req, wsub_work, wsub_done) != 0) {
			w->busy = 0;
			n->w_inflight--;
		}
	}
}

static json_t *witness_status(struct node *n)
{
	json_t *arr = json_array();
	for (struct wsub *w = n->wsubs; w; w = w->next)
		json_array_append_new(
		        arr, json_pack("{s:s,s:s,s:b,s:I,s:I,s:s}", "witness",
		                       n->cfg.witness[w->w].url, "origin", w->origin, "known",
		                       w->known, "size", (json_int_t)(w->known ? w->wsize : 0),
		                       "last_ok_ms", (json_int_t)w->last_ok_ms, "error",
		                       w->last_ok_ms && w->backoff == 0 ? "" : w->shown));
	return arr;
}

/* ------------------------------------------------------ timer, signals */

static void on_tick(uv_timer_t *t)
{
	struct node *n = t->data;
	uint64_t now = now_ms();
	if (n->stopping)
		return;
	for (struct peer *p = n->peers; p; p = p->next) {
		if (p->state == P_CLOSING)
			continue;
		if (p->state != P_OPEN && now - p->opened_at > n->cfg.handshake_timeout_ms)
			peer_close(p, "handshake timed out");
		else if (p->state == P_OPEN && now - p->last_rx > n->cfg.idle_timeout_ms)
			peer_close(p, "idle timeout");
		else if (p->state == P_OPEN && now - p->last_rx > n->cfg.keepalive_ms / 2 &&
		         now - p->last_ping > n->cfg.keepalive_ms / 2 && p->wqueued == 0) {
			p->last_ping = now;
			send_simple(p, "ping");
		}
	}
	for (struct target *tg = n->targets; tg; tg = tg->next)
		if (!tg->conn && !tg->dialing && now >= tg->next_try)
			dial(n, tg);
	receipts_flush(n);
	witness_tick(n);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct node *n = s->data;
	if (n->stopping)
		return;
	logm(2, "%s: shutting down (jobs in flight finish first)",
	     signum == SIGTERM ? "SIGTERM" : "SIGINT");
	n->stopping = 1;
	atomic_store(&n->w_cancel, 1);
	for (struct peer *p = n->peers; p; p = p->next)
		peer_close(p, "node shutting down");
	for (struct ctl *c = n->ctls; c; c = c->next)
		ctl_close(c);
	uv_close((uv_handle_t *)&n->listener, NULL);
	uv_close((uv_handle_t *)&n->control, NULL);
	uv_close((uv_handle_t *)&n->tick, NULL);
	uv_close((uv_handle_t *)&n->kick, NULL);
	uv_close((uv_handle_t *)&n->sigterm, NULL);
	uv_close((uv_handle_t *)&n->sigint, NULL);
}

/* ---------------------------------------------- blobs (blob_repl.c) */

static int blob_send(void *peer, const uint8_t *msg, size_t len)
{
	struct peer *p = peer;
	return p->state == P_OPEN ? send_msg(p, msg, len) : TL_EIO;
}

static size_t blob_queued(void *peer)
{
	return ((struct peer *)peer)->wqueued;
}

static void blob_peer_info(void *peer, struct tl_blob_peer *out)
{
	struct peer *p = peer;
	out->book = p->book->name;
	out->remote = p->remote;
	out->addr = p->addr;
}

static void *blob_find_peer(void *node, const char *book, const uint8_t remote[32])
{
	struct node *n = node;
	for (struct peer *p = n->peers; p; p = p->next)
		if (p->state == P_OPEN && strcmp(p->book->name, book) == 0 &&
		    memcmp(p->remote, remote, TL_PUB_LEN) == 0)
			return p;
	return NULL;
}

static void blob_ctl_line(void *ctl, const char *line)
{
	ctl_write(ctl, line);
}

static int blob_local_book(void *node, const uint8_t pk[32])
{
	return book_by_pk(node, pk) != NULL;
}

static int blobs_start(struct node *n)
{
	struct tl_blob_host h = {
	        .node = n,
	        .loop = &n->loop,
	        .store = n->store,
	        .wq_max = n->cfg.peer_wq_max,
	        .send = blob_send,
	        .queued = blob_queued,
	        .peer_info = blob_peer_info,
	        .find_peer = blob_find_peer,
	        .ctl_line = blob_ctl_line,
	        .local_book = blob_local_book,
	        .log = logm,
	};
	if (tl_blobs_init(&h.blobs, n->cfg.home, n->cfg.blob_max) != 0 ||
	    tl_blob_repl_new(&n->blobs, &h) != 0) {
		logm(0, "cannot set up the blob store under %s", n->cfg.home);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- start */

static int load_books(struct node *n)
{
	struct tl_book *bs = NULL;
	size_t nb = 0;
	char path[4400];
	char *pass = sodium_malloc(1024);
	size_t plen = 0;
	int rc = 0;
	if (!pass)
		return TL_ENOMEM;
	if (tl_store_book_list(n->store, &bs, &nb) != 0) {
		sodium_free(pass);
		return TL_ESTORE;
	}
	if (nb &&
	    tl_passphrase_get(pass, 1024, &plen, "Passphrase for this node's books: ", 0) != 0) {
		logm(0, "no passphrase: set TALLY_PASSPHRASE or start on a terminal");
		rc = TL_EPASS;
		goto out;
	}
	n->books = sodium_malloc(nb ? nb * sizeof *n->books : 1);
	if (!n->books) {
		rc = TL_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nb; i++) {
		struct book *b = &n->books[n->nbooks];
		snprintf(path, sizeof path, "%s/keys/%s.key", n->cfg.home, bs[i].name);
		memcpy(b->name, bs[i].name, sizeof b->name);
		int krc = tl_keyfile_read(path, pass, plen, &b->kp);
		if (krc) {
			logm(0, "book %s: cannot unlock %s: %s", bs[i].name, path,
			     krc == TL_EPASS ? "wrong passphrase or damaged key file"
			                     : tl_strerror(krc));
			rc = krc;
			goto out;
		}
		n->nbooks++;
	}
out:
	sodium_free(pass);
	free(bs);
	return rc;
}

int tl_node_run(const struct tl_node_config *cfg)
{
	struct node *n = calloc(1, sizeof *n);
	char path[4400], err[512];
	int rc, code = 3;
	if (!n)
		return 3;
	n->cfg = *cfg;
	n->lockfd = -1;
	pthread_mutex_init(&n->hold_mu, NULL);
	g_log_level = cfg->log_level;
	signal(SIGPIPE, SIG_IGN);

	/* One node per data directory. */
	mkdir(cfg->home, 0700);
	snprintf(path, sizeof path, "%s/tallyd.lock", cfg->home);
	n->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (n->lockfd < 0 || flock(n->lockfd, LOCK_EX | LOCK_NB) != 0) {
		logm(0, "%s: %s", path,
		     n->lockfd < 0 ? strerror(errno)
		                   : "another tallyd is running on this data directory");
		goto out;
	}
	snprintf(path, sizeof path, "%s/store", cfg->home);
	if (tl_store_open(&n->store, path, 0, 0, err, sizeof err) != 0) {
		logm(0, "cannot open the store: %s", err);
		goto out;
	}
	if (load_books(n) != 0)
		goto out;
	for (size_t i = 0; i < cfg->nwitnesses; i++)
		if (tl_vkey_parse(&n->wkeys[i], cfg->witness[i].vkey,
		                  strlen(cfg->witness[i].vkey)) != 0) {
			logm(0, "witness %s: bad verifier key", cfg->witness[i].url);
			code = 2;
			goto out;
		}
	if (cfg->nwitnesses && tl_wc_global_init() != 0) {
		logm(0, "cannot initialise libcurl");
		goto out;
	}
	uv_loop_init(&n->loop);

	struct sockaddr_storage ss;
	if (parse_addr(cfg->listen, &ss) != 0) {
		logm(0, "listen address '%s' is not HOST:PORT", cfg->listen);
		code = 2;
		goto out_loop;
	}
	uv_tcp_init(&n->loop, &n->listener);
	n->listener.data = n;
	if ((rc = uv_tcp_bind(&n->listener, (struct sockaddr *)&ss, 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&n->listener, 128, on_connection)) != 0) {
		logm(0, "cannot listen on %s: %s", cfg->listen, uv_strerror(rc));
		goto out_loop;
	}
	/* Port 0 picks a free port: the address actually bound is written down
	 * for tests and scripts. */
	int sl = sizeof ss;
	char ip[48] = "?", bound[80];
	uv_tcp_getsockname(&n->listener, (struct sockaddr *)&ss, &sl);
	if (ss.ss_family == AF_INET)
		uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
	else
		uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
	snprintf(bound, sizeof bound, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
	         ntohs(((struct sockaddr_in *)&ss)->sin_port));

	snprintf(n->sock_path, sizeof n->sock_path, "%s/tallyd.sock", cfg->home);
	unlink(n->sock_path);
	uv_pipe_init(&n->loop, &n->control, 0);
	n->control.data = n;
	mode_t old = umask(0077);
	rc = uv_pipe_bind(&n->control, n->sock_path);
	umask(old);
	if (rc != 0 || (rc = uv_listen((uv_stream_t *)&n->control, 16, on_ctl_connection)) != 0) {
		logm(0, "cannot create control socket %s: %s", n->sock_path, uv_strerror(rc));
		goto out_loop;
	}
	chmod(n->sock_path, 0600);

	snprintf(n->addr_path, sizeof n->addr_path, "%s/tallyd.addr", cfg->home);
	FILE *af = fopen(n->addr_path, "w");
	if (af) {
		fprintf(af, "%s\n", bound);
		fclose(af);
	}
	uv_async_init(&n->loop, &n->kick, on_kick);
	n->kick.data = n;
	uv_timer_init(&n->loop, &n->tick);
	n->tick.data = n;
	uv_timer_start(&n->tick, on_tick, 100, 100);
	uv_signal_init(&n->loop, &n->sigterm);
	uv_signal_init(&n->loop, &n->sigint);
	n->sigterm.data = n->sigint.data = n;
	uv_signal_start(&n->sigterm, on_signal, SIGTERM);
	uv_signal_start(&n->sigint, on_signal, SIGINT);
	if (blobs_start(n) != 0)
		goto out_loop;
	load_targets(n);
	receipts_recover(n);
	if (tl_auditors_new(&n->auditors) != 0 || tl_auditors_refresh(n->auditors, n->store) != 0) {
		logm(0, "cannot read auditor admissions: %s", tl_store_errmsg(n->store));
		goto out_loop;
	}
	/* Local appends wait for one answer from every witness about every own
	 * feed, or for the witness timeout plus a margin, whichever is first. */
	n->gate_open = cfg->nwitnesses == 0;
	n->gate_deadline = now_ms() + cfg->witness_timeout_ms + 2000;
	if (cfg->nwitnesses) {
		n->w_refreshed = now_ms();
		wsubs_refresh(n, 1);
	}
	logm(2, "tallyd %s listening on %s; %zu book(s); control %s", TL_VERSION, bound, n->nbooks,
	     n->sock_path);

	uv_run(&n->loop, UV_RUN_DEFAULT);
	code = 0;
	unlink(n->sock_path);
	unlink(n->addr_path);
out_loop:
	uv_walk(&n->loop, close_walk, NULL);
	uv_run(&n->loop, UV_RUN_DEFAULT);
	uv_loop_close(&n->loop);
out:
	while (n->targets) {
		struct target *t = n->targets;
		n->targets = t->next;
		free(t);
	}
	while (n->receipts) {
		struct receipt *r = n->receipts;
		n->receipts = r->next;
		free(r);
	}
	while (n->wsubs) {
		struct wsub *w = n->wsubs;
		n->wsubs = w->next;
		tl_wc_conn_free(w->conn);
		free(w);
	}
	if (n->books) {
		for (size_t i = 0; i < n->nbooks; i++)
			tl_key_wipe(&n->books[i].kp);
		sodium_free(n->books);
	}
	tl_blob_repl_free(n->blobs);
	tl_auditors_free(n->auditors);
	tl_store_close(n->store);
	if (n->lockfd >= 0)
		close(n->lockfd);
	if (code == 0)
		logm(2, "stopped");
	pthread_mutex_destroy(&n->hold_mu);
	free(n);
	return code;
}
