/*
 * blob_repl.c — blobs replicated on demand inside peer sessions
 * (blob_repl.h, docs/protocol.md "Blobs").
 *
 * Pull, chunk by chunk: the requester sends ["blob.want", hash, offset] and
 * the holder answers each with ["blob.chunk", hash, offset, total, bytes] of
 * exactly min(256 KiB, total - offset) bytes, or ["blob.none", hash,
 * reason]. The requester keeps at most FETCH_WINDOW wants (1 MiB) in flight
 * per download, so its memory is bounded whatever the blob size; the holder
 * reads one chunk at a time per peer, on the thread pool, and only while the
 * peer's write queue is under its cap.
 *
 * Authorization (holder side): a blob is served to a peer only if an entry
 * of one of OUR OWN feeds in a channel with that peer references it — our
 * own act of disclosure to that counterparty. A reference written by the
 * peer itself does not count: otherwise anyone who knew (or guessed) the
 * hash of a document held here could make it servable to themselves.
 */
#include "blob_repl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVE_QMAX    16 /* wants queued per peer; more is abuse */
#define SERVE_OKCACHE 8  /* hashes already authorized per peer */
#define FETCH_WINDOW  4  /* chunks asked for and not yet written, per download */
#define FETCH_MAX     16 /* downloads at once per node */
#define WAITERS_MAX   8
#define CANDS_MAX     16
#define REASON_MAX    64
#define WHY_MAX       1024
#define PROGRESS_STEP (1u << 20)
#define STALL_MS      60000 /* no chunk for this long while waiting: next peer */

struct want {
	uint8_t hash[32];
	uint64_t offset;
};

struct serve {
	struct serve *next;
	struct tl_blob_repl *r;
	void *peer; /* NULL once the session closed */
	struct want q[SERVE_QMAX];
	int qn;
	int busy;
	uint8_t ok[SERVE_OKCACHE][32];
	int nok, okpos;
};

struct chunk {
	struct chunk *next;
	uint64_t offset;
	size_t len;
	uint8_t data[];
};

struct cand {
	char book[TL_BOOK_NAME_MAX + 1];
	uint8_t remote[32];
};

struct waiter {
	void *ctl;
	json_t *id;
};

struct fetch {
	struct fetch *next;
	struct tl_blob_repl *r;
	uint8_t hash[32];
	char hex[TL_BLOB_HEX + 1];
	struct waiter w[WAITERS_MAX];
	int nw;
	struct cand c[CANDS_MAX];
	int nc, ci;
	void *peer;
	char addr[TL_ADDR_MAX + 1];
	char peer_hex[17];
	int total_known;
	uint64_t total, next_want, rx_next, written, last_progress;
	uint64_t last_rx_ms; /* last want sent or chunk received */
	int inflight;
	struct chunk *qh, *qt;
	int qn;
	int busy;  /* a thread-pool job (scan, write, commit) is running */
	int reset; /* give up on the current peer once not busy */
	int staged;
	struct tl_blob_stage st;
	int n_offline, n_refused, n_integrity;
	char why[WHY_MAX];
};

struct tl_blob_repl {
	struct tl_blob_host h;
	uv_timer_t stall; /* unref'd: never keeps the loop alive */
	struct serve *serves;
	struct fetch *fetches;
	int nfetch;
};

static void fetch_step(struct fetch *f);
static int fetch_want(struct fetch *f, uint64_t off);

/* ------------------------------------------------------------ packing */

static int pack_write(void *data, const char *buf, size_t len)
{
	return tl_buf_add(data, buf, len) == 0 ? 0 : -1;
}

static void send_want(struct tl_blob_repl *r, void *peer, const uint8_t hash[32], uint64_t off)
{
	struct tl_buf m;
	msgpack_packer pk;
	tl_buf_init(&m, 128);
	msgpack_packer_init(&pk, &m, pack_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_str_with_body(&pk, "blob.want", 9);
	msgpack_pack_bin_with_body(&pk, hash, 32);
	msgpack_pack_uint64(&pk, off);
	r->h.send(peer, m.data, m.len);
	tl_buf_release(&m);
}

static void send_none(struct tl_blob_repl *r, void *peer, const uint8_t hash[32],
                      const char *reason)
{
	struct tl_buf m;
	msgpack_packer pk;
	tl_buf_init(&m, 256);
	msgpack_packer_init(&pk, &m, pack_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_str_with_body(&pk, "blob.none", 9);
	msgpack_pack_bin_with_body(&pk, hash, 32);
	msgpack_pack_str_with_body(&pk, reason, strlen(reason));
	r->h.send(peer, m.data, m.len);
	tl_buf_release(&m);
}

static void send_chunk(struct tl_blob_repl *r, void *peer, const uint8_t hash[32], uint64_t off,
                       uint64_t total, const uint8_t *data, size_t len)
{
	struct tl_buf m;
	msgpack_packer pk;
	tl_buf_init(&m, TL_BLOB_CHUNK + 256);
	msgpack_packer_init(&pk, &m, pack_write);
	msgpack_pack_array(&pk, 5);
	msgpack_pack_str_with_body(&pk, "blob.chunk", 10);
	msgpack_pack_bin_with_body(&pk, hash, 32);
	msgpack_pack_uint64(&pk, off);
	msgpack_pack_uint64(&pk, total);
	msgpack_pack_bin_with_body(&pk, data, len);
	r->h.send(peer, m.data, m.len);
	tl_buf_release(&m);
}

/* ------------------------------------------------------ serving (holder) */

struct swork {
	uv_work_t req;
	struct serve *s;
	struct tl_blob_repl *r;
	struct want w;
	int need_auth;
	char book[TL_BOOK_NAME_MAX + 1];
	uint8_t remote[32];
	const char *reason; /* NULL: data holds the chunk */
	char err[600];
	uint64_t total;
	uint8_t *data;
	size_t len;
};

/* Thread pool: is the blob referenced by one of our own feeds in a channel
 * with the peer? */
static int authorized(struct tl_blob_repl *r, const char *book, const uint8_t remote[32],
                      const uint8_t hash[32])
{
	struct tl_feed *feeds = NULL;
	size_t nf = 0;
	int found = 0;
	if (tl_store_feed_list(r->h.store, &feeds, &nf) != 0)
		return 0;
	for (size_t i = 0; i < nf && !found; i++) {
		const struct tl_feed *f = &feeds[i];
		if (!(f->flags & TL_FEED_OWN) || strcmp(f->book, book) != 0 ||
		    memcmp(f->peer, remote, 32) != 0)
			continue;
		if (tl_blob_feed_refs(r->h.store, f, hash, &found) != 0)
			found = 0;
	}
	free(feeds);
	return found;
}

static void serve_work(uv_work_t *req)
{
	struct swork *w = req->data;
	const struct tl_blobs *b = &w->r->h.blobs;
	uint64_t size = 0;
	int rc;
	if (w->need_auth && !authorized(w->r, w->book, w->remote, w->w.hash)) {
		w->reason = "not_referenced";
		return;
	}
	/* The whole blob is checked when a transfer starts (offset 0): a
	 * damaged copy is never served. The requester checks the whole again. */
	rc = w->w.offset == 0 ? tl_blob_verify(b, w->w.hash, &size, w->err, sizeof w->err)
	                      : tl_blob_has(b, w->w.hash, &size);
	if (rc == TL_ENOTFOUND) {
		w->reason = "not_found";
		return;
	}
	if (rc == TL_ECORRUPT) {
		w->reason = "damaged";
		return;
	}
	if (rc) {
		w->reason = "io_error";
		return;
	}
	if (size > b->max) {
		w->reason = "too_large";
		return;
	}
	if (w->w.offset % TL_BLOB_CHUNK != 0 ||
	    (w->w.offset >= size && !(w->w.offset == 0 && size == 0))) {
		w->reason = "bad_offset";
		return;
	}
	w->total = size;
	w->len = size - w->w.offset < TL_BLOB_CHUNK ? (size_t)(size - w->w.offset) : TL_BLOB_CHUNK;
	char path[4400];
	tl_blob_path(b, w->w.hash, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !(w->data = malloc(w->len ? w->len : 1))) {
		if (fd >= 0)
			close(fd);
		w->reason = "io_error";
		return;
	}
	size_t got = 0;
	while (got < w->len) {
		ssize_t n = pread(fd, w->data + got, w->len - got, (off_t)(w->w.offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != w->len) {
		free(w->data);
		w->data = NULL;
		w->reason = "io_error";
	}
}

static void serve_free(struct serve *s)
{
	for (struct serve **sp = &s->r->serves; *sp; sp = &(*sp)->next)
		if (*sp == s) {
			*sp = s->next;
			break;
		}
	free(s);
}

static void serve_next(struct serve *s);

static void serve_done(uv_work_t *req, int status)
{
	struct swork *w = req->data;
	struct serve *s = w->s;
	struct tl_blob_repl *r = w->r;
	char hex[TL_BLOB_HEX + 1];
	(void)status;
	/* s stays busy while sending: a send may close the session (a peer
	 * over its write cap), which re-enters tl_blob_repl_peer_gone; that
	 * must not free s under us. */
	if (s->peer) {
		struct tl_blob_peer pi;
		r->h.peer_info(s->peer, &pi);
		tl_hex_encode(hex, w->w.hash, 32);
		if (w->reason) {
			if (strcmp(w->reason, "damaged") == 0)
				r->h.log(0, "%s", w->err);
			r->h.log(strcmp(w->reason, "not_referenced") == 0 ? 1 : 2,
			         "peer %s asked for blob %s: refused (%s)", pi.addr, hex,
			         w->reason);
			send_none(r, s->peer, w->w.hash, w->reason);
		} else {
			if (w->need_auth) {
				memcpy(s->ok[s->okpos], w->w.hash, 32);
				s->okpos = (s->okpos + 1) % SERVE_OKCACHE;
				if (s->nok < SERVE_OKCACHE)
					s->nok++;
			}
			if (w->w.offset == 0)
				r->h.log(2, "serving blob %s (%llu bytes) to peer %s", hex,
				         (unsigned long long)w->total, pi.addr);
			send_chunk(r, s->peer, w->w.hash, w->w.offset, w->total, w->data, w->len);
		}
	}
	s->busy = 0;
	if (!s->peer)
		serve_free(s);
	else
		serve_next(s);
	free(w->data);
	free(w);
}

static void serve_next(struct serve *s)
{
	struct tl_blob_repl *r = s->r;
	if (s->busy || !s->peer || s->qn == 0 || r->h.queued(s->peer) >= r->h.wq_max)
		return;
	struct swork *w = calloc(1, sizeof *w);
	if (!w)
		return;
	struct tl_blob_peer pi;
	r->h.peer_info(s->peer, &pi);
	w->s = s;
	w->r = r;
	w->w = s->q[0];
	memmove(s->q, s->q + 1, (size_t)(s->qn - 1) * sizeof *s->q);
	s->qn--;
	w->need_auth = 1;
	for (int i = 0; i < s->nok; i++)
		if (memcmp(s->ok[i], w->w.hash, 32) == 0)
			w->need_auth = 0;
	snprintf(w->book, sizeof w->book, "%s", pi.book);
	memcpy(w->remote, pi.remote, 32);
	w->req.data = w;
	s->busy = 1;
	uv_queue_work(r->h.loop, &w->req, serve_work, serve_done);
}

static struct serve *serve_of(struct tl_blob_repl *r, void *peer, int create)
{
	for (struct serve *s = r->serves; s; s = s->next)
		if (s->peer == peer)
			return s;
	if (!create)
		return NULL;
	struct serve *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->r = r;
	s->peer = peer;
	s->next = r->serves;
	r->serves = s;
	return s;
}

/* ---------------------------------------------------- fetching (requester) */

static void why_add(struct fetch *f, const char *fmt, ...) TL_PRINTF(2, 3);
static void why_add(struct fetch *f, const char *fmt, ...)
{
	size_t l = strlen(f->why);
	va_list ap;
	if (l && l + 2 < sizeof f->why) {
		memcpy(f->why + l, "; ", 3);
		l += 2;
	}
	va_start(ap, fmt);
	vsnprintf(f->why + l, sizeof f->why - l, fmt, ap);
	va_end(ap);
}

static void ctl_send(struct tl_blob_repl *r, void *ctl, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	if (s)
		r->h.ctl_line(ctl, s);
	free(s);
	json_decref(o);
}

static void reply_ok(struct tl_blob_repl *r, void *ctl, json_t *id, const char *hex, uint64_t size,
                     const char *source, const char *peer)
{
	json_t *res =
	        json_pack("{s:s,s:I,s:s}", "hash", hex, "size", (json_int_t)size, "source", source);
	if (peer)
		json_object_set_new(res, "peer", json_string(peer));
	ctl_send(r, ctl, json_pack("{s:O?,s:b,s:o}", "id", id, "ok", 1, "result", res));
}

static void reply_err(struct tl_blob_repl *r, void *ctl, json_t *id, const char *reason,
                      const char *msg)
{
	ctl_send(
	        r, ctl,
	        json_pack("{s:O?,s:b,s:s,s:s}", "id", id, "ok", 0, "error", msg, "reason", reason));
}

static void chunks_free(struct fetch *f)
{
	while (f->qh) {
		struct chunk *c = f->qh;
		f->qh = c->next;
		free(c);
	}
	f->qt = NULL;
	f->qn = 0;
}

/* Answers every waiter and frees the download (never while busy). */
static void fetch_finish(struct fetch *f, const char *reason, const char *msg)
{
	struct tl_blob_repl *r = f->r;
	for (int i = 0; i < f->nw; i++) {
		if (reason)
			reply_err(r, f->w[i].ctl, f->w[i].id, reason, msg);
		else
			reply_ok(r, f->w[i].ctl, f->w[i].id, f->hex, f->total, "peer", f->peer_hex);
		json_decref(f->w[i].id);
	}
	if (f->staged)
		tl_blob_stage_abort(&f->st);
	chunks_free(f);
	for (struct fetch **fp = &r->fetches; *fp; fp = &(*fp)->next)
		if (*fp == f) {
			*fp = f->next;
			break;
		}
	r->nfetch--;
	free(f);
}

/* Next candidate peer with an open session, or the final answer. */
static void fetch_next_peer(struct fetch *f)
{
	struct tl_blob_repl *r = f->r;
	char msg[WHY_MAX + 200];
	f->peer = NULL;
	f->total_known = 0;
	f->total = f->next_want = f->rx_next = f->written = f->last_progress = 0;
	f->inflight = 0;
	for (; f->ci < f->nc; f->ci++) {
		struct cand *c = &f->c[f->ci];
		char rh[17];
		tl_hex_encode(rh, c->remote, 8);
		void *p = r->h.find_peer(r->h.node, c->book, c->remote);
		if (!p) {
			f->n_offline++;
			why_add(f, "peer %s… is offline (no session with book %s)", rh, c->book);
			continue;
		}
		struct tl_blob_peer pi;
		r->h.peer_info(p, &pi);
		f->peer = p;
		snprintf(f->addr, sizeof f->addr, "%s", pi.addr);
		memcpy(f->peer_hex, rh, sizeof f->peer_hex);
		r->h.log(2, "fetching blob %s from peer %s… (%s)", f->hex, rh, pi.addr);
		f->last_rx_ms = uv_now(r->h.loop);
		f->inflight = 1;
		f->next_want = TL_BLOB_CHUNK;
		if (fetch_want(f, 0) != 0)
			fetch_step(f); /* the session closed on the send: next peer */
		return;
	}
	snprintf(msg, sizeof msg, "blob %s could not be fetched: %s", f->hex, f->why);
	fetch_finish(f, f->n_integrity ? "integrity" : f->n_refused ? "refused" : "offline", msg);
}

struct fwork {
	uv_work_t req;
	struct fetch *f;
	struct chunk *c; /* write job; NULL for a commit */
	int scan;
	int rc;
	char err[600];
};

/* Thread pool: the channels (ours and the peer's feed) that reference the
 * hash, as candidate peers. */
static void scan_work(uv_work_t *req)
{
	struct fwork *w = req->data;
	struct fetch *f = w->f;
	struct tl_blob_repl *r = f->r;
	struct tl_feed *feeds = NULL;
	size_t nf = 0;
	if ((w->rc = tl_store_feed_list(r->h.store, &feeds, &nf)) != 0) {
		snprintf(w->err, sizeof w->err, "cannot list feeds: %s", tl_strerror(w->rc));
		return;
	}
	for (size_t i = 0; i < nf && f->nc < CANDS_MAX; i++) {
		const struct tl_feed *own = &feeds[i];
		struct tl_feed pf;
		char po[TL_ORIGIN_LEN + 1];
		int found = 0;
		if (!(own->flags & TL_FEED_OWN) || r->h.local_book(r->h.node, own->peer))
			continue;
		if (tl_blob_feed_refs(r->h.store, own, f->hash, &found) != 0)
			found = 0;
		tl_origin_format(po, own->peer, own->o.channel);
		if (!found && tl_store_feed_get(r->h.store, po, &pf) == 0 &&
		    tl_blob_feed_refs(r->h.store, &pf, f->hash, &found) != 0)
			found = 0;
		if (!found)
			continue;
		int dup = 0;
		for (int k = 0; k < f->nc; k++)
			dup |= strcmp(f->c[k].book, own->book) == 0 &&
			       memcmp(f->c[k].remote, own->peer, 32) == 0;
		if (dup)
			continue;
		snprintf(f->c[f->nc].book, sizeof f->c[f->nc].book, "%s", own->book);
		memcpy(f->c[f->nc].remote, own->peer, 32);
		f->nc++;
	}
	free(feeds);
}

static void write_work(uv_work_t *req)
{
	struct fwork *w = req->data;
	struct fetch *f = w->f;
	const struct tl_blobs *b = &f->r->h.blobs;
	if (w->c) {
		if (!f->staged) {
			if ((w->rc = tl_blob_stage_begin(b, &f->st, f->hash, f->total, w->err,
			                                 sizeof w->err)) != 0)
				return;
			f->staged = 1;
		}
		w->rc = tl_blob_stage_write(&f->st, w->c->offset, w->c->data, w->c->len, w->err,
		                            sizeof w->err);
	} else {
		if (!f->staged) /* an empty blob: nothing was written */
			if ((w->rc = tl_blob_stage_begin(b, &f->st, f->hash, 0, w->err,
			                                 sizeof w->err)) != 0)
				return;
		f->staged = 0;
		w->rc = tl_blob_stage_commit(b, &f->st, w->err, sizeof w->err);
	}
}

static void progress(struct fetch *f)
{
	if (f->total <= PROGRESS_STEP ||
	    (f->written - f->last_progress < PROGRESS_STEP && f->written != f->total))
		return;
	f->last_progress = f->written;
	for (int i = 0; i < f->nw; i++)
		ctl_send(f->r, f->w[i].ctl,
		         json_pack("{s:O?,s:{s:s,s:I,s:I}}", "id", f->w[i].id, "progress", "hash",
		                   f->hex, "received", (json_int_t)f->written, "total",
		                   (json_int_t)f->total));
}

static void fwork_done(uv_work_t *req, int status)
{
	struct fwork *w = req->data;
	struct fetch *f = w->f;
	struct tl_blob_repl *r = f->r;
	char msg[WHY_MAX + 700];
	(void)status;
	f->busy = 0;
	if (w->scan) {
		if (w->rc)
			fetch_finish(f, "io", w->err);
		else if (f->nc == 0) {
			snprintf(msg, sizeof msg,
			         "blob %s is not referenced by any entry of your channels with "
			         "other nodes: there is no one to ask for it",
			         f->hex);
			fetch_finish(f, "not_referenced", msg);
		} else
			fetch_next_peer(f);
	} else if (w->c) {
		if (w->rc) {
			fetch_finish(f, "io", w->err);
		} else {
			f->written += w->c->len;
			progress(f);
			fetch_step(f);
		}
		free(w->c);
	} else if (w->rc == 0) {
		r->h.log(2, "stored blob %s (%llu bytes) from peer %s", f->hex,
		         (unsigned long long)f->total, f->addr);
		fetch_finish(f, NULL, NULL);
	} else if (w->rc == TL_ECORRUPT) {
		r->h.log(1, "peer %s: %s", f->addr, w->err);
		f->n_integrity++;
		why_add(f,
		        "peer %s… sent content that does not hash to the requested hash "
		        "(integrity failure; discarded)",
		        f->peer_hex);
		f->reset = 1;
		fetch_step(f);
	} else {
		fetch_finish(f, "io", w->err);
	}
	free(w);
}

/* Sends a want to f's peer. The send may close that session (a peer over
 * its write cap), which re-enters tl_blob_repl_peer_gone: f is marked busy
 * meanwhile so that it is neither stepped nor freed under the caller. 0 if
 * the peer is still there; -1 if it went away (f->reset is set: the caller
 * must return through fetch_step(f) without touching f afterwards). */
static int fetch_want(struct fetch *f, uint64_t off)
{
	int was = f->busy;
	f->busy = 1;
	send_want(f->r, f->peer, f->hash, off);
	f->busy = was;
	return f->reset ? -1 : 0;
}

static void fetch_queue(struct fetch *f, struct fwork *w, uv_work_cb fn)
{
	w->f = f;
	w->req.data = w;
	f->busy = 1;
	uv_queue_work(f->r->h.loop, &w->req, fn, fwork_done);
}

static void fetch_step(struct fetch *f)
{
	if (f->busy)
		return;
	if (f->reset) {
		f->reset = 0;
		if (f->staged)
			tl_blob_stage_abort(&f->st);
		f->staged = 0;
		chunks_free(f);
		f->ci++;
		fetch_next_peer(f);
		return;
	}
	if (f->qh) {
		struct fwork *w = calloc(1, sizeof *w);
		if (!w) {
			fetch_finish(f, "io", "out of memory");
			return;
		}
		w->c = f->qh;
		f->qh = w->c->next;
		if (!f->qh)
			f->qt = NULL;
		f->qn--;
		fetch_queue(f, w, write_work);
		return;
	}
	if (f->total_known && f->written == f->total) {
		struct fwork *w = calloc(1, sizeof *w);
		if (!w) {
			fetch_finish(f, "io", "out of memory");
			return;
		}
		fetch_queue(f, w, write_work);
		return;
	}
	while (f->peer && f->total_known && f->inflight + f->qn < FETCH_WINDOW &&
	       f->next_want < f->total) {
		uint64_t off = f->next_want;
		f->next_want += TL_BLOB_CHUNK;
		f->inflight++;
		if (fetch_want(f, off) != 0) {
			fetch_step(f); /* the session closed on the send: next peer */
			return;
		}
	}
}

static struct fetch *fetch_of(struct tl_blob_repl *r, void *peer, const uint8_t hash[32])
{
	for (struct fetch *f = r->fetches; f; f = f->next)
		if (f->peer == peer && !f->reset && memcmp(f->hash, hash, 32) == 0)
			return f;
	return NULL;
}

static void on_chunk(struct tl_blob_repl *r, void *peer, const uint8_t hash[32], uint64_t off,
                     uint64_t total, const uint8_t *data, size_t len)
{
	struct fetch *f = fetch_of(r, peer, hash);
	char why[256], hex[TL_BLOB_HEX + 1];
	struct tl_blob_peer pi;
	if (!f) {
		tl_hex_encode(hex, hash, 32);
		r->h.log(3, "ignored a chunk of blob %s nobody is fetching", hex);
		return;
	}
	if (f->inflight <= 0) {
		snprintf(why, sizeof why, "chunk at offset %llu that was not asked for",
		         (unsigned long long)off);
	} else if (tl_blob_chunk_check(f->hash, f->rx_next, f->total_known, f->total,
	                               r->h.blobs.max, hash, off, total, len, why,
	                               sizeof why) == 0) {
		struct chunk *c = malloc(sizeof *c + (len ? len : 1));
		if (!c) {
			f->reset = 1;
			why_add(f, "out of memory");
			fetch_step(f);
			return;
		}
		c->next = NULL;
		c->offset = off;
		c->len = len;
		memcpy(c->data, data, len);
		if (f->qt)
			f->qt->next = c;
		else
			f->qh = c;
		f->qt = c;
		f->qn++;
		f->inflight--;
		f->total_known = 1;
		f->total = total;
		f->rx_next = off + len;
		f->last_rx_ms = uv_now(r->h.loop);
		fetch_step(f);
		return;
	}
	r->h.peer_info(peer, &pi);
	r->h.log(1, "peer %s sent a bad chunk of blob %s: %s; partial data discarded", pi.addr,
	         f->hex, why);
	f->n_integrity++;
	why_add(f, "peer %s… sent a bad chunk (%s); discarded", f->peer_hex, why);
	f->reset = 1;
	fetch_step(f);
}

static void on_none(struct tl_blob_repl *r, void *peer, const uint8_t hash[32], const char *reason,
                    size_t rlen)
{
	struct fetch *f = fetch_of(r, peer, hash);
	if (!f)
		return;
	f->n_refused++;
	why_add(f, "peer %s… refused: %.*s%s", f->peer_hex, (int)rlen, reason,
	        rlen == 14 && memcmp(reason, "not_referenced", 14) == 0
	                ? " (none of its entries in your channel references this blob)"
	        : rlen == 9 && memcmp(reason, "not_found", 9) == 0 ? " (it does not hold it)"
	                                                           : "");
	r->h.log(1, "peer %s refused blob %s: %.*s", f->addr, f->hex, (int)rlen, reason);
	f->reset = 1;
	fetch_step(f);
}

/* --------------------------------------------------------------- API */

/* A peer that keeps the session alive but stops answering wants would stall
 * a download forever: after STALL_MS without a chunk, the next peer. */
static void on_stall_tick(uv_timer_t *t)
{
	struct tl_blob_repl *r = t->data;
	uint64_t now = uv_now(r->h.loop);
again:
	for (struct fetch *f = r->fetches; f; f = f->next) {
		if (!f->peer || f->busy || f->reset || f->inflight <= 0 ||
		    now - f->last_rx_ms < STALL_MS)
			continue;
		f->n_offline++;
		why_add(f, "peer %s… did not answer for %d s", f->peer_hex, STALL_MS / 1000);
		r->h.log(1, "peer %s did not answer for blob %s for %d s", f->addr, f->hex,
		         STALL_MS / 1000);
		f->reset = 1;
		fetch_step(f); /* may free f */
		goto again;
	}
}

int tl_blob_repl_new(struct tl_blob_repl **out, const struct tl_blob_host *h)
{
	struct tl_blob_repl *r = calloc(1, sizeof *r);
	if (!r)
		return TL_ENOMEM;
	r->h = *h;
	tl_blob_stage_sweep(&r->h.blobs);
	uv_timer_init(r->h.loop, &r->stall);
	r->stall.data = r;
	uv_timer_start(&r->stall, on_stall_tick, 1000, 1000);
	uv_unref((uv_handle_t *)&r->stall);
	*out = r;
	return 0;
}

void tl_blob_repl_free(struct tl_blob_repl *r)
{
	if (!r)
		return;
	while (r->fetches) {
		struct fetch *f = r->fetches;
		for (int i = 0; i < f->nw; i++) /* control connections are gone by now */
			json_decref(f->w[i].id);
		f->nw = 0;
		fetch_finish(f, "offline", "node stopping");
	}
	while (r->serves)
		serve_free(r->serves);
	free(r);
}

static int is_bin32(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == 32;
}

int tl_blob_repl_msg(struct tl_blob_repl *r, void *peer, const msgpack_object *a, uint32_t n)
{
	const msgpack_object_str *t = &a[0].via.str;
#define IS(s) (t->size == strlen(s) && memcmp(t->ptr, s, t->size) == 0)
	if (IS("blob.want")) {
		if (n != 3 || !is_bin32(&a[1]) || a[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
			return -1;
		struct serve *s = serve_of(r, peer, 1);
		if (!s || s->qn >= SERVE_QMAX)
			return -1; /* more wants than any honest window */
		memcpy(s->q[s->qn].hash, a[1].via.bin.ptr, 32);
		s->q[s->qn].offset = a[2].via.u64;
		s->qn++;
		serve_next(s);
		return 0;
	}
	if (IS("blob.chunk")) {
		if (n != 5 || !is_bin32(&a[1]) || a[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    a[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    a[4].type != MSGPACK_OBJECT_BIN || a[4].via.bin.size > TL_BLOB_CHUNK)
			return -1;
		on_chunk(r, peer, (const uint8_t *)a[1].via.bin.ptr, a[2].via.u64, a[3].via.u64,
		         (const uint8_t *)a[4].via.bin.ptr, a[4].via.bin.size);
		return 0;
	}
	if (IS("blob.none")) {
		if (n != 3 || !is_bin32(&a[1]) || a[2].type != MSGPACK_OBJECT_STR ||
		    a[2].via.str.size > REASON_MAX)
			return -1;
		on_none(r, peer, (const uint8_t *)a[1].via.bin.ptr, a[2].via.str.ptr,
		        a[2].via.str.size);
		return 0;
	}
#undef IS
	return -1;
}

void tl_blob_repl_drain(struct tl_blob_repl *r, void *peer)
{
	if (!r)
		return;
	struct serve *s = serve_of(r, peer, 0);
	if (s)
		serve_next(s);
}

void tl_blob_repl_peer_gone(struct tl_blob_repl *r, void *peer)
{
	if (!r)
		return;
	struct serve *s = serve_of(r, peer, 0);
	if (s) {
		s->peer = NULL;
		s->qn = 0;
		if (!s->busy)
			serve_free(s);
	}
	/* fetch_step may free f, or send to another peer whose close re-enters
	 * here: start over after each one (each is handled once: peer cleared). */
again:
	for (struct fetch *f = r->fetches; f; f = f->next) {
		if (f->peer != peer || f->reset)
			continue;
		f->n_offline++;
		why_add(f, "the session with peer %s… closed during the transfer", f->peer_hex);
		f->peer = NULL;
		f->reset = 1;
		fetch_step(f);
		goto again;
	}
}

void tl_blob_repl_ctl_get(struct tl_blob_repl *r, void *ctl, json_t *id, json_t *req)
{
	const char *hex = json_string_value(json_object_get(req, "hash"));
	uint8_t hash[32];
	uint64_t size;
	char msg[256];
	if (tl_blob_hex_parse(hex, hash) != 0) {
		reply_err(r, ctl, id, "bad_request", "hash must be 64 lowercase hex digits");
		return;
	}
	if (tl_blob_has(&r->h.blobs, hash, &size) == 0) {
		reply_ok(r, ctl, id, hex, size, "local", NULL);
		return;
	}
	for (struct fetch *f = r->fetches; f; f = f->next)
		if (memcmp(f->hash, hash, 32) == 0) {
			if (f->nw >= WAITERS_MAX) {
				reply_err(r, ctl, id, "busy", "too many requests for this blob");
				return;
			}
			f->w[f->nw].ctl = ctl;
			f->w[f->nw].id = json_incref(id);
			f->nw++;
			return;
		}
	if (r->nfetch >= FETCH_MAX) {
		snprintf(msg, sizeof msg, "%d downloads are running; try again later", FETCH_MAX);
		reply_err(r, ctl, id, "busy", msg);
		return;
	}
	struct fetch *f = calloc(1, sizeof *f);
	struct fwork *w = calloc(1, sizeof *w);
	if (!f || !w) {
		free(f);
		free(w);
		reply_err(r, ctl, id, "io", "out of memory");
		return;
	}
	f->r = r;
	memcpy(f->hash, hash, 32);
	memcpy(f->hex, hex, sizeof f->hex);
	f->st.fd = -1;
	f->w[0].ctl = ctl;
	f->w[0].id = json_incref(id);
	f->nw = 1;
	f->next = r->fetches;
	r->fetches = f;
	r->nfetch++;
	w->scan = 1;
	fetch_queue(f, w, scan_work);
}

void tl_blob_repl_ctl_gone(struct tl_blob_repl *r, void *ctl)
{
	if (!r)
		return;
	for (struct fetch *f = r->fetches; f; f = f->next)
		for (int i = 0; i < f->nw;) {
			if (f->w[i].ctl != ctl) {
				i++;
				continue;
			}
			json_decref(f->w[i].id);
			f->w[i] = f->w[--f->nw];
		}
}
