/* auditor.c — admissions of auditors, relayed batches, followed feeds; see
 * auditor.h and docs/protocol.md, "Auditors". */
#include "auditor.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ entries */

int tl_auditor_event_decode(const struct tl_entry *e, struct tl_auditor_event *ev)
{
	static const size_t la = sizeof TL_AUDITOR_ADMIT - 1, lr = sizeof TL_AUDITOR_REVOKE - 1;
	int admit;
	if (e->kind_len == la && memcmp(e->kind, TL_AUDITOR_ADMIT, la) == 0)
		admit = 1;
	else if (e->kind_len == lr && memcmp(e->kind, TL_AUDITOR_REVOKE, lr) == 0)
		admit = 0;
	else
		return TL_ENOTFOUND;
	memset(ev, 0, sizeof *ev);
	ev->seq = e->seq;
	ev->time_ms = e->time_ms;
	ev->admit = admit;
	json_t *b = tl_mp_to_json(e->body, e->body_len);
	const char *key = json_string_value(json_object_get(b, "key"));
	json_t *name = json_object_get(b, "name");
	int rc = TL_EFORMAT;
	/* Lowercase only: one spelling per key, as in origins. */
	if (key && strlen(key) == 2 * TL_PUB_LEN &&
	    strspn(key, "0123456789abcdef") == 2 * TL_PUB_LEN &&
	    tl_hex_decode(ev->key, TL_PUB_LEN, key, 2 * TL_PUB_LEN) == 0 &&
	    (!name || (json_is_string(name) && json_string_length(name) <= TL_AUDITOR_NAME_MAX))) {
		if (name)
			snprintf(ev->name, sizeof ev->name, "%s", json_string_value(name));
		rc = 0;
	}
	json_decref(b);
	return rc;
}

struct scan_ctx {
	tl_auditor_fn cb;
	void *ctx;
};

static int scan_one(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                    const uint8_t leaf[TL_HASH_LEN])
{
	struct scan_ctx *sc = ctx;
	struct tl_entry e;
	struct tl_auditor_event ev;
	(void)seq;
	(void)leaf;
	if (tl_record_decode(&e, rec, len, NULL) != 0)
		return TL_ECORRUPT;
	if (tl_auditor_event_decode(&e, &ev) != 0)
		return 0;
	return sc->cb(sc->ctx, &ev);
}

int tl_auditor_scan(struct tl_store *s, const struct tl_feed *f, uint64_t from, uint64_t to,
                    tl_auditor_fn cb, void *ctx)
{
	struct scan_ctx sc = {cb, ctx};
	return tl_store_scan(s, f, from, to, scan_one, &sc);
}

/* ------------------------------------------------------- admissions */

struct adm {
	uint8_t key[TL_PUB_LEN];
	int admitted;
};

struct afeed {
	char origin[TL_ORIGIN_LEN + 1];
	char book[TL_BOOK_NAME_MAX + 1];
	uint8_t peer[TL_PUB_LEN];
	uint8_t channel[TL_CHANNEL_LEN];
	uint64_t scanned; /* entries [0, scanned) are read */
	struct adm *v;
	size_t n, cap;
};

struct tl_auditors {
	struct afeed *f;
	size_t n, cap;
};

int tl_auditors_new(struct tl_auditors **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : TL_ENOMEM;
}

void tl_auditors_free(struct tl_auditors *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->f[i].v);
	free(a->f);
	free(a);
}

static int adm_apply(void *ctx, const struct tl_auditor_event *ev)
{
	struct afeed *f = ctx;
	for (size_t i = 0; i < f->n; i++)
		if (memcmp(f->v[i].key, ev->key, TL_PUB_LEN) == 0) {
			f->v[i].admitted = ev->admit;
			return 0;
		}
	if (!ev->admit)
		return 0; /* revoking a key never admitted here: nothing to keep */
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 4;
		struct adm *nv = realloc(f->v, nc * sizeof *nv);
		if (!nv)
			return TL_ENOMEM;
		f->v = nv;
		f->cap = nc;
	}
	memcpy(f->v[f->n].key, ev->key, TL_PUB_LEN);
	f->v[f->n].admitted = 1;
	f->n++;
	return 0;
}

int tl_auditors_refresh(struct tl_auditors *a, struct tl_store *s)
{
	struct tl_feed *feeds = NULL;
	size_t nf = 0;
	int rc = tl_store_feed_list(s, &feeds, &nf);
	if (rc)
		return rc;
	for (size_t i = 0; i < nf && rc == 0; i++) {
		const struct tl_feed *sf = &feeds[i];
		struct afeed *f = NULL;
		if (!(sf->flags & TL_FEED_OWN))
			continue;
		for (size_t k = 0; k < a->n && !f; k++)
			if (strcmp(a->f[k].origin, sf->origin) == 0)
				f = &a->f[k];
		if (!f) {
			if (a->n == a->cap) {
				size_t nc = a->cap ? a->cap * 2 : 8;
				struct afeed *nv = realloc(a->f, nc * sizeof *nv);
				if (!nv) {
					rc = TL_ENOMEM;
					break;
				}
				a->f = nv;
				a->cap = nc;
			}
			f = &a->f[a->n++];
			memset(f, 0, sizeof *f);
			memcpy(f->origin, sf->origin, sizeof f->origin);
			memcpy(f->book, sf->book, sizeof f->book);
			memcpy(f->peer, sf->peer, TL_PUB_LEN);
			memcpy(f->channel, sf->o.channel, TL_CHANNEL_LEN);
		}
		if (sf->head.size <= f->scanned)
			continue;
		if ((rc = tl_auditor_scan(s, sf, f->scanned, sf->head.size, adm_apply, f)) == 0)
			f->scanned = sf->head.size;
	}
	free(feeds);
	return rc;
}

static int feed_admits(const struct afeed *f, const char *book, const uint8_t key[TL_PUB_LEN])
{
	if (strcmp(f->book, book) != 0)
		return 0;
	for (size_t i = 0; i < f->n; i++)
		if (memcmp(f->v[i].key, key, TL_PUB_LEN) == 0)
			return f->v[i].admitted;
	return 0;
}

void tl_auditors_skip(struct tl_auditors *a, const char *origin, uint64_t from, uint64_t to)
{
	for (size_t k = 0; k < a->n; k++)
		if (strcmp(a->f[k].origin, origin) == 0) {
			if (a->f[k].scanned == from && to > from)
				a->f[k].scanned = to;
			return;
		}
}

size_t tl_auditors_admitted(const struct tl_auditors *a, const char *book,
                            const uint8_t key[TL_PUB_LEN])
{
	size_t k = 0;
	for (size_t i = 0; i < a->n; i++)
		k += (size_t)feed_admits(&a->f[i], book, key);
	return k;
}

int tl_auditors_feeds(const struct tl_auditors *a, struct tl_store *s, const char *book,
                      const uint8_t key[TL_PUB_LEN], struct tl_feed **out, size_t *n)
{
	size_t k = 0;
	struct tl_feed *v = calloc(2 * a->n + 1, sizeof *v);
	if (!v)
		return TL_ENOMEM;
	for (size_t i = 0; i < a->n; i++) {
		const struct afeed *f = &a->f[i];
		char po[TL_ORIGIN_LEN + 1];
		if (!feed_admits(f, book, key))
			continue;
		if (tl_store_feed_get(s, f->origin, &v[k]) == 0)
			k++;
		/* The counterparty's feed as stored here; when both books live in
		 * this store it is the other book's own feed. */
		tl_origin_format(po, f->peer, f->channel);
		if (tl_store_feed_get(s, po, &v[k]) == 0)
			k++;
	}
	*out = v;
	*n = k;
	return 0;
}

/* ------------------------------------------------------------ relaying */

struct cp_sizes {
	uint64_t lo, hi;
	uint64_t v[TL_AUDITOR_RELAY_COUNT];
	size_t n;
};

static int cp_size(void *ctx, uint64_t size, const char *note, size_t len)
{
	struct cp_sizes *c = ctx;
	(void)note;
	(void)len;
	if (size > c->hi)
		return 1; /* sizes ascend */
	if (size > c->lo && c->n < TL_AUDITOR_RELAY_COUNT)
		c->v[c->n++] = size;
	return 0;
}

struct gather {
	struct tl_buf *data;
	size_t *off; /* count + 1 entries */
	size_t n, budget;
};

static int gather_rec(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                      const uint8_t leaf[TL_HASH_LEN])
{
	struct gather *g = ctx;
	(void)seq;
	(void)leaf;
	if (g->data->len + len > g->budget)
		return 1; /* full */
	if (tl_buf_add(g->data, rec, len) != 0)
		return TL_ENOMEM;
	g->off[++g->n] = g->data->len;
	return 0;
}

static int pack_write(void *data, const char *buf, size_t len)
{
	return tl_buf_add(data, buf, len) == 0 ? 0 : -1;
}

int tl_auditor_relay(struct tl_store *s, const struct tl_feed *f, uint64_t from, struct tl_buf *msg,
                     uint64_t *end)
{
	struct cp_sizes *cs = calloc(1, sizeof *cs);
	struct tl_buf data, note;
	size_t *off = calloc(TL_AUDITOR_RELAY_COUNT + 1, sizeof *off);
	int rc;
	tl_buf_init(&data, TL_FRAME_MAX);
	tl_buf_init(&note, TL_NOTE_MAX);
	if (!cs || !off) {
		rc = TL_ENOMEM;
		goto out;
	}
	cs->lo = from;
	cs->hi = from + TL_AUDITOR_RELAY_COUNT;
	if (cs->hi > f->head.size)
		cs->hi = f->head.size;
	rc = tl_store_checkpoint_scan_from(s, f, from + 1, cp_size, cs); /* sizes in (from, hi] */
	if (rc < 0)
		goto out;
	if (cs->n == 0) {
		rc = TL_ENOTFOUND;
		goto out;
	}
	/* The records up to the largest candidate, as many as fit in a frame
	 * next to the note and the framing (5 bytes of bin header a record). */
	struct gather g = {&data, off, 0,
	                   TL_FRAME_MAX - TL_NOTE_MAX - 5 * TL_AUDITOR_RELAY_COUNT - 4096};
	rc = tl_store_scan(s, f, from, cs->v[cs->n - 1], gather_rec, &g);
	if (rc < 0)
		goto out;
	uint64_t stop = 0;
	for (size_t i = cs->n; i-- > 0 && !stop;)
		if (cs->v[i] <= from + g.n)
			stop = cs->v[i];
	if (!stop) {
		rc = TL_ETOOBIG;
		goto out;
	}
	uint64_t got = 0;
	if ((rc = tl_store_checkpoint_get(s, f, stop, &note, &got)) != 0)
		goto out;
	if (got != stop || note.len > TL_NOTE_MAX) {
		rc = TL_ECORRUPT;
		goto out;
	}
	size_t cnt = (size_t)(stop - from);
	msgpack_packer pk;
	tl_buf_reset(msg);
	msgpack_packer_init(&pk, msg, pack_write);
	/* ["recs", origin, first, [rec...], checkpoint note] */
	if (msgpack_pack_array(&pk, 5) || msgpack_pack_str_with_body(&pk, "recs", 4) ||
	    msgpack_pack_str_with_body(&pk, f->origin, TL_ORIGIN_LEN) ||
	    msgpack_pack_uint64(&pk, from) || msgpack_pack_array(&pk, (uint32_t)cnt)) {
		rc = TL_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cnt; i++)
		if (msgpack_pack_bin_with_body(&pk, data.data + off[i], off[i + 1] - off[i])) {
			rc = TL_ENOMEM;
			goto out;
		}
	if (msgpack_pack_str_with_body(&pk, (const char *)note.data, note.len)) {
		rc = TL_ENOMEM;
		goto out;
	}
	*end = stop;
	rc = 0;
out:
	tl_buf_release(&data);
	tl_buf_release(&note);
	free(off);
	free(cs);
	return rc;
}

/* ---------------------------------------------------- followed feeds */

static int is_followed(const struct tl_feed *f, const char *book, const uint8_t src[TL_PUB_LEN])
{
	return (f->flags & TL_FEED_AUDIT) && !(f->flags & TL_FEED_OWN) &&
	       strcmp(f->book, book) == 0 && memcmp(f->peer, src, TL_PUB_LEN) == 0;
}

int tl_auditor_follows(struct tl_store *s, const char *book, const uint8_t src[TL_PUB_LEN])
{
	struct tl_feed *feeds = NULL;
	size_t nf = 0;
	int yes = 0;
	if (tl_store_feed_list(s, &feeds, &nf) != 0)
		return 0;
	for (size_t i = 0; i < nf && !yes; i++)
		yes = is_followed(&feeds[i], book, src);
	free(feeds);
	return yes;
}

int tl_auditor_followed(struct tl_store *s, const char *book, const uint8_t src[TL_PUB_LEN],
                        const char *origin, size_t len, struct tl_feed *f)
{
	char o[TL_ORIGIN_LEN + 1];
	if (len != TL_ORIGIN_LEN)
		return -1;
	memcpy(o, origin, len);
	o[len] = 0;
	if (tl_store_feed_get(s, o, f) != 0 || !is_followed(f, book, src))
		return -1;
	return 0;
}

int tl_auditor_follow(struct tl_store *s, const char *book, const uint8_t channel[TL_CHANNEL_LEN],
                      const uint8_t a[TL_PUB_LEN], const uint8_t b[TL_PUB_LEN],
                      const uint8_t src[TL_PUB_LEN], const char *addr,
                      char origins[2][TL_ORIGIN_LEN + 1])
{
	const uint8_t *keys[2] = {a, b};
	int rc;
	if (memcmp(a, b, TL_PUB_LEN) == 0 ||
	    (memcmp(src, a, TL_PUB_LEN) != 0 && memcmp(src, b, TL_PUB_LEN) != 0))
		return TL_EINVAL;
	for (int i = 0; i < 2; i++) {
		struct tl_feed f;
		memset(&f, 0, sizeof f);
		tl_origin_format(f.origin, keys[i], channel);
		tl_origin_format(origins[i], keys[i], channel);
		if (tl_store_feed_get(s, f.origin, &f) == 0) {
			if (!is_followed(&f, book, src))
				return TL_EEXIST;
			continue;
		}
		memset(&f, 0, sizeof f);
		tl_origin_format(f.origin, keys[i], channel);
		memcpy(f.peer, src, TL_PUB_LEN);
		snprintf(f.book, sizeof f.book, "%s", book);
		snprintf(f.label, sizeof f.label, "audit");
		f.flags = TL_FEED_AUDIT;
		if ((rc = tl_store_feed_add(s, &f)) != 0)
			return rc;
	}
	struct tl_peer p;
	memset(&p, 0, sizeof p);
	memcpy(p.pk, src, TL_PUB_LEN);
	snprintf(p.book, sizeof p.book, "%s", book);
	snprintf(p.addr, sizeof p.addr, "%s", addr);
	return tl_store_peer_put(s, &p);
}
