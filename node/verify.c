/*
 * verify.c — independent verification of tally-bundle/v1 files, single entry
 * tlog-proofs and signed notes (DESIGN §3). Pure functions of their input.
 *
 * A bundle is checked in windows of records: worker threads do the costly,
 * independent part of each record (strict base64, strict decode, Ed25519,
 * leaf hash) into a per-record result slot, then the calling thread walks the
 * window in order for what is sequential (seq, prev, the Merkle frontier and
 * the roots checkpoints name). Findings are collected, never fatal, so an
 * auditor sees every problem at once.
 */
#include "node/tl_node.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERIFY_MAX_ISSUES      1000
#define VERIFY_MAX_FEEDS       10000
#define VERIFY_MAX_CHECKPOINTS 100000 /* per feed */
#define VERIFY_MAX_WITNESSES   1024
#define VERIFY_SKEW_S          600   /* cosignatures dated later than now + this are invalid */
#define VERIFY_WINDOW          16384 /* records per parallel window */
#define VERIFY_CHUNK           64    /* records a worker takes at a time */
#define VERIFY_MAX_THREADS     64
#define VERIFY_DEFAULT_THREADS 2
#define BUNDLE_FORMAT          "tally-bundle/v1"

/* ------------------------------------------------------------ findings */

struct vctx {
	struct tl_verify_report *r;
	int first; /* code of the first finding */
};

static void vissue(struct vctx *v, int code, const char *origin, int64_t seq, int64_t size,
                   const char *fmt, ...) TL_PRINTF(6, 7);

static void vissue(struct vctx *v, int code, const char *origin, int64_t seq, int64_t size,
                   const char *fmt, ...)
{
	struct tl_verify_report *r = v->r;
	struct tl_verify_issue *is;
	va_list ap;

	if (v->first == 0)
		v->first = code;
	r->nissues++;
	if (r->nissues > VERIFY_MAX_ISSUES)
		return;
	if (r->nissues > r->issues_cap) {
		size_t ncap = r->issues_cap ? r->issues_cap * 2 : 16;
		struct tl_verify_issue *ni;

		if (ncap > VERIFY_MAX_ISSUES)
			ncap = VERIFY_MAX_ISSUES;
		ni = realloc(r->issues, ncap * sizeof *ni);
		if (!ni)
			return; /* counted but not kept; the call still fails */
		r->issues = ni;
		r->issues_cap = ncap;
	}
	is = &r->issues[r->nissues - 1];
	memset(is, 0, sizeof *is);
	if (origin)
		snprintf(is->origin, sizeof is->origin, "%s", origin);
	is->seq = seq;
	is->size = size;
	va_start(ap, fmt);
	vsnprintf(is->reason, sizeof is->reason, fmt, ap);
	va_end(ap);
}

static int64_t i64(uint64_t x)
{
	return x > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)x;
}

void tl_verify_report_release(struct tl_verify_report *r)
{
	if (!r)
		return;
	free(r->feeds);
	free(r->issues);
	memset(r, 0, sizeof *r);
}

static void report_init(struct tl_verify_report *r)
{
	memset(r, 0, sizeof *r);
}

static int finish(struct vctx *v)
{
	return v->first;
}

static int copy_origin(char dst[TL_ORIGIN_TEXT_MAX + 1], const char *s, size_t len)
{
	if (len > TL_ORIGIN_TEXT_MAX) {
		memcpy(dst, s, TL_ORIGIN_TEXT_MAX);
		dst[TL_ORIGIN_TEXT_MAX] = 0;
		return TL_ETOOBIG;
	}
	memcpy(dst, s, len);
	dst[len] = 0;
	return 0;
}

/* ------------------------------------------------- witnesses and quorum */

struct wset {
	const struct tl_vkey **w; /* distinct public keys, type 0x04 */
	size_t n;
	struct tl_vkey *owned; /* parsed from a bundle */
};

static void wset_release(struct wset *ws)
{
	free(ws->w);
	free(ws->owned);
	memset(ws, 0, sizeof *ws);
}

/* Adds vk unless it is not a cosignature key or its public key is already in
 * the set: one witness counts once toward a quorum whatever names it uses. */
static void wset_add(struct vctx *v, struct wset *ws, const struct tl_vkey *vk)
{
	if (vk->type != TL_SIGTYPE_COSIG) {
		vissue(v, TL_EKEY, NULL, -1, -1,
		       "witness key %s is not a cosignature key (type 0x04)", vk->name);
		return;
	}
	for (size_t i = 0; i < ws->n; i++)
		if (memcmp(ws->w[i]->pk, vk->pk, TL_PUB_LEN) == 0)
			return;
	ws->w[ws->n++] = vk;
}

static int wset_from_opts(struct vctx *v, struct wset *ws, const struct tl_verify_opts *o)
{
	size_t n = o->nwitnesses;

	memset(ws, 0, sizeof *ws);
	if (!o->witnesses || n == 0)
		return 0;
	if (n > VERIFY_MAX_WITNESSES) {
		vissue(v, TL_ETOOBIG, NULL, -1, -1, "%zu witness keys given; at most %d are used",
		       n, VERIFY_MAX_WITNESSES);
		n = VERIFY_MAX_WITNESSES;
	}
	ws->w = calloc(n, sizeof *ws->w);
	if (!ws->w)
		return TL_ENOMEM;
	for (size_t i = 0; i < n; i++)
		wset_add(v, ws, &o->witnesses[i]);
	return 0;
}

static int wset_from_json(struct vctx *v, struct wset *ws, const json_t *arr)
{
	size_t n;

	memset(ws, 0, sizeof *ws);
	if (!arr)
		return 0;
	if (!json_is_array(arr)) {
		vissue(v, TL_EPROOF, NULL, -1, -1, "\"witnesses\" is not an array of vkeys");
		return 0;
	}
	n = json_array_size(arr);
	if (n > VERIFY_MAX_WITNESSES) {
		vissue(v, TL_ETOOBIG, NULL, -1, -1, "%zu witnesses listed; at most %d are read", n,
		       VERIFY_MAX_WITNESSES);
		n = VERIFY_MAX_WITNESSES;
	}
	if (n == 0)
		return 0;
	ws->w = calloc(n, sizeof *ws->w);
	ws->owned = calloc(n, sizeof *ws->owned);
	if (!ws->w || !ws->owned)
		return TL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *s = json_array_get(arr, i);
		struct tl_vkey *vk = &ws->owned[i];

		if (!json_is_string(s) ||
		    tl_vkey_parse(vk, json_string_value(s), json_string_length(s)) != 0) {
			vissue(v, TL_EKEY, NULL, -1, -1, "witness %zu is not a valid vkey", i);
			continue;
		}
		wset_add(v, ws, vk);
	}
	return 0;
}

/* Applies a quorum to a witness set; an impossible quorum is a finding. */
static void check_quorum(struct vctx *v, int quorum, size_t nw)
{
	if (quorum > 0 && (size_t)quorum > nw)
		vissue(v, TL_EQUORUM, NULL, -1, -1, "quorum %d exceeds the %zu witness keys",
		       quorum, nw);
}

/* The cosignature time t is acceptable against the verifier's clock now. */
static int cosig_time_ok(uint64_t t, int64_t now)
{
	int64_t limit;

	if (now == 0)
		return 1;
	if (t > (uint64_t)INT64_MAX)
		return 0;
	limit = now > INT64_MAX - VERIFY_SKEW_S ? INT64_MAX : now + VERIFY_SKEW_S;
	return (int64_t)t <= limit;
}

/*
 * Counts the witnesses of ws with a valid cosignature on note n (a
 * checkpoint). Lines by unknown keys are ignored, as C2SP asks; a line by a
 * known witness that fails, or is dated too far in the future, is a finding.
 */
static unsigned cosig_count_t(struct vctx *v, const struct tl_note *n, const struct wset *ws,
                              int64_t now, const char *origin, int64_t size, uint64_t *times);

static unsigned cosig_count(struct vctx *v, const struct tl_note *n, const struct wset *ws,
                            int64_t now, const char *origin, int64_t size)
{
	return cosig_count_t(v, n, ws, now, origin, size, NULL);
}

static int cmp_time(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The k-th earliest of the valid cosignature times on a proof's checkpoint:
 * the witnessed time of the entry it proves (DESIGN §4); 0 below k. */
static uint64_t quorum_time(uint64_t *times, unsigned n, int k)
{
	if (k <= 0 || (unsigned)k > n)
		return 0;
	qsort(times, n, sizeof *times, cmp_time);
	return times[k - 1];
}

/* As cosig_count; times (may be NULL, ws->n slots) receives the valid
 * cosignature times in order found. */
static unsigned cosig_count_t(struct vctx *v, const struct tl_note *n, const struct wset *ws,
                              int64_t now, const char *origin, int64_t size, uint64_t *times)
{
	unsigned ok = 0;

	for (size_t i = 0; i < ws->n; i++) {
		const struct tl_vkey *w = ws->w[i];
		uint64_t t = 0;
		int rc = tl_cosig_verify(n, w, &t);

		if (rc == TL_ENOTFOUND)
			continue;
		if (rc == TL_ESIG) {
			vissue(v, TL_ESIG, origin, -1, size, "cosignature by %s does not verify",
			       w->name);
			continue;
		}
		if (rc != 0) {
			vissue(v, rc, origin, -1, size, "cosignature by %s cannot be checked: %s",
			       w->name, tl_strerror(rc));
			continue;
		}
		if (!cosig_time_ok(t, now)) {
			vissue(v, TL_ESIG, origin, -1, size,
			       "cosignature by %s is dated %" PRIu64 ", more than %d s after the "
			       "verifier's clock (%" PRId64 ")",
			       w->name, t, VERIFY_SKEW_S, now);
			continue;
		}
		if (times)
			times[ok] = t;
		ok++;
	}
	return ok;
}

/* vk is in the trusted list (same name, type and public key). */
static int key_trusted(const struct tl_verify_opts *o, const struct tl_vkey *vk)
{
	for (size_t i = 0; i < o->nlogs; i++) {
		const struct tl_vkey *l = &o->logs[i];

		if (l->type == vk->type && memcmp(l->pk, vk->pk, TL_PUB_LEN) == 0 &&
		    strcmp(l->name, vk->name) == 0)
			return 1;
	}
	return 0;
}

/* -------------------------------------------------- bundle: structures */

struct vcp {
	uint64_t size;
	uint8_t root[TL_HASH_LEN];
	uint8_t acc_root[TL_HASH_LEN];
	int usable;   /* parsed and of this feed: its root is compared */
	int sig_ok;   /* signed by the feed key */
	int have_acc; /* acc_root holds the records' root at size */
	unsigned ncosig;
};

struct vord {
	uint64_t size;
	size_t i;
};

struct vfeed {
	struct tl_verify_feed *out;
	const char *origin; /* NUL-terminated, from the JSON */
	size_t origin_len;
	int key_ok;
	struct tl_vkey vk;
	const json_t *records;
	size_t nrec;
	struct vcp *cps;
	size_t ncps;
	struct vord *order; /* checkpoints within the records, by size */
	size_t norder;
	/* sequential state */
	size_t next; /* next entry of order to capture */
	int broken;  /* a record before the current position is unreadable */
	uint64_t broken_at;
};

enum {
	J_NOTSTR = 1u << 0,                   /* not a JSON string */
	J_B64 = 1u << 1,                      /* not strict base64 */
	J_TOOBIG = 1u << 2,                   /* over TL_RECORD_MAX */
	J_NOMEM = 1u << 3,                    /* scratch could not grow */
	J_DECODE = 1u << 4,                   /* tl_record_decode failed */
	J_ORIGIN = 1u << 5,                   /* entry origin is not the feed's */
	J_SIG = 1u << 6,                      /* signature does not verify */
	J_LEAF = J_DECODE | J_ORIGIN | J_SIG, /* any of these still has a leaf */
};

struct vjob {
	/* in */
	const char *b64;
	size_t b64len;
	const struct vfeed *feed;
	uint64_t pos;
	/* out */
	unsigned flags;
	int err;
	size_t where;
	size_t len;
	uint64_t seq;
	uint8_t prev[TL_HASH_LEN];
	uint8_t leaf[TL_HASH_LEN];
	char other[TL_ORIGIN_LEN + 1]; /* the entry's origin when J_ORIGIN */
};

struct vpool {
	struct vjob *jobs;
	size_t njobs;
	atomic_size_t next;
};

/* ------------------------------------------- bundle: the parallel part */

static void job_run(struct vjob *j, uint8_t **scratch, size_t *scap)
{
	struct tl_entry e;
	size_t need, len = 0;
	int rc;

	if (!j->b64) {
		j->flags = J_NOTSTR;
		return;
	}
	need = j->b64len / 4 * 3;
	if (need > (size_t)TL_RECORD_MAX + 2) {
		j->flags = J_TOOBIG;
		j->len = need;
		return;
	}
	if (need > *scap) {
		size_t ncap = *scap ? *scap : 1024;
		uint8_t *ns;

		while (ncap < need)
			ncap *= 2;
		ns = realloc(*scratch, ncap);
		if (!ns) {
			j->flags = J_NOMEM;
			return;
		}
		*scratch = ns;
		*scap = ncap;
	}
	rc = tl_b64_decode(*scratch, *scap, &len, j->b64, j->b64len);
	if (rc == TL_ENOMEM) {
		j->flags = J_NOMEM;
		return;
	}
	if (rc != 0) {
		j->flags = J_B64;
		return;
	}
	if (len > TL_RECORD_MAX) {
		j->flags = J_TOOBIG;
		j->len = len;
		return;
	}
	j->len = len;
	tl_record_leaf_hash(j->leaf, *scratch, len);
	rc = tl_record_decode(&e, *scratch, len, &j->where);
	if (rc != 0) {
		j->flags = J_DECODE;
		j->err = rc;
		return;
	}
	j->seq = e.seq;
	memcpy(j->prev, e.prev, TL_HASH_LEN);
	if (j->feed->origin_len != TL_ORIGIN_LEN ||
	    memcmp(e.origin_str, j->feed->origin, TL_ORIGIN_LEN) != 0) {
		j->flags |= J_ORIGIN;
		memcpy(j->other, e.origin_str, TL_ORIGIN_LEN);
		j->other[TL_ORIGIN_LEN] = 0;
	}
	rc = tl_record_verify_sig(&e);
	if (rc == TL_ENOMEM)
		j->flags = J_NOMEM;
	else if (rc != 0)
		j->flags |= J_SIG;
}

static void *pool_worker(void *arg)
{
	struct vpool *p = arg;
	uint8_t *scratch = NULL;
	size_t scap = 0;

	for (;;) {
		size_t i = atomic_fetch_add(&p->next, VERIFY_CHUNK);
		size_t end;

		if (i >= p->njobs)
			break;
		end = p->njobs - i < VERIFY_CHUNK ? p->njobs : i + VERIFY_CHUNK;
		for (; i < end; i++)
			job_run(&p->jobs[i], &scratch, &scap);
	}
	free(scratch);
	return NULL;
}

/* Runs every job on up to threads threads, the caller being one of them. A
 * thread that cannot be created just leaves more work to the others. */
static void pool_run(struct vjob *jobs, size_t n, unsigned threads)
{
	pthread_t tid[VERIFY_MAX_THREADS];
	struct vpool p;
	size_t want = (n + VERIFY_CHUNK - 1) / VERIFY_CHUNK;
	unsigned started = 0;

	p.jobs = jobs;
	p.njobs = n;
	atomic_init(&p.next, 0);
	if (want < threads)
		threads = (unsigned)want;
	for (unsigned t = 1; t < threads; t++) {
		if (pthread_create(&tid[started], NULL, pool_worker, &p) != 0)
			break;
		started++;
	}
	pool_worker(&p);
	for (unsigned t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
}

/* --------------------------------------------- bundle: the sequential part */

struct vseq {
	struct vctx *v;
	struct vfeed *cur;
	struct tl_merkle_acc acc;
	uint8_t last[TL_HASH_LEN]; /* leaf hash of the previous record */
	int last_known;
};

static void feed_capture(struct vfeed *f, const struct tl_merkle_acc *acc)
{
	while (f->next < f->norder && f->order[f->next].size == acc->size) {
		struct vcp *c = &f->cps[f->order[f->next].i];

		if (!f->broken) {
			tl_merkle_acc_root(acc, c->acc_root);
			c->have_acc = 1;
		}
		f->next++;
	}
}

static void seq_switch(struct vseq *s, struct vfeed *f)
{
	if (s->cur == f)
		return;
	s->cur = f;
	tl_merkle_acc_init(&s->acc);
	s->last_known = 1;
	memset(s->last, 0, sizeof s->last);
}

static void seq_step(struct vseq *s, const struct vjob *j)
{
	struct vctx *v = s->v;
	struct vfeed *f = (struct vfeed *)j->feed;
	const char *og = f->out->origin;
	int64_t pos = i64(j->pos);
	int ok = 1;

	seq_switch(s, f);
	if ((j->flags & ~(unsigned)J_LEAF) == 0) {
		if (!f->broken) {
			tl_merkle_acc_push(&s->acc, j->leaf, NULL, NULL);
			feed_capture(f, &s->acc);
		}
	} else {
		if (j->flags & J_NOTSTR)
			vissue(v, TL_EPROOF, og, pos, -1, "record is not a JSON string");
		else if (j->flags & J_B64)
			vissue(v, TL_EPROOF, og, pos, -1, "record is not valid base64");
		else if (j->flags & J_TOOBIG)
			vissue(v, TL_ETOOBIG, og, pos, -1,
			       "record is %zu bytes, more than the limit of %u", j->len,
			       (unsigned)TL_RECORD_MAX);
		else
			vissue(v, TL_ENOMEM, og, pos, -1, "record could not be checked: %s",
			       tl_strerror(TL_ENOMEM));
		if (!f->broken) {
			f->broken = 1;
			f->broken_at = j->pos;
		}
		s->last_known = 0;
		return;
	}
	if (j->flags & J_DECODE) {
		vissue(v, TL_EPROOF, og, pos, -1, "record is malformed at byte %zu: %s", j->where,
		       tl_strerror(j->err));
		memcpy(s->last, j->leaf, TL_HASH_LEN);
		s->last_known = 1;
		return;
	}
	if (j->flags & J_ORIGIN) {
		vissue(v, TL_ECHAIN, og, pos, -1, "record belongs to feed %s, not to this one",
		       j->other);
		ok = 0;
	}
	if (j->seq != j->pos) {
		/* A misplaced record's prev would only repeat the finding. */
		vissue(v, TL_ECHAIN, og, pos, -1,
		       "seq is %" PRIu64 " but the record is at position %" PRIu64, j->seq, j->pos);
		ok = 0;
	} else if (!s->last_known) {
		vissue(v, TL_ECHAIN, og, pos, -1,
		       "prev cannot be checked: the record at position %" PRIu64 " is unreadable",
		       j->pos - 1);
		ok = 0;
	} else if (memcmp(j->prev, s->last, TL_HASH_LEN) != 0) {
		if (j->pos == 0)
			vissue(v, TL_ECHAIN, og, pos, -1, "prev of seq 0 is not 32 zero bytes");
		else
			vissue(v, TL_ECHAIN, og, pos, -1,
			       "prev does not match the leaf hash of seq %" PRIu64, j->pos - 1);
		ok = 0;
	}
	if (j->flags & J_SIG) {
		vissue(v, TL_ESIG, og, pos, -1, "signature does not verify");
		ok = 0;
	}
	if (ok)
		f->out->verified++;
	memcpy(s->last, j->leaf, TL_HASH_LEN);
	s->last_known = 1;
}

/* Root over all records of the current feed, once its last record is in. */
static void seq_close(struct vseq *s)
{
	if (s->cur && !s->cur->broken)
		tl_merkle_acc_root(&s->acc, s->cur->out->root);
}

/* ------------------------------------------------ bundle: feed headers */

static int cmp_ord(const void *a, const void *b)
{
	const struct vord *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static int feed_checkpoints(struct vctx *v, struct vfeed *f, const json_t *arr,
                            const struct wset *ws, int64_t now)
{
	const char *og = f->out->origin;
	size_t n = json_array_size(arr);
	int err = 0;

	if (n > VERIFY_MAX_CHECKPOINTS) {
		vissue(v, TL_ETOOBIG, og, -1, -1, "%zu checkpoints; at most %d per feed are read",
		       n, VERIFY_MAX_CHECKPOINTS);
		n = VERIFY_MAX_CHECKPOINTS;
	}
	if (n == 0)
		return 0;
	f->cps = calloc(n, sizeof *f->cps);
	f->order = calloc(n, sizeof *f->order);
	if (!f->cps || !f->order) {
		err = TL_ENOMEM;
		goto fail;
	}
	f->ncps = n;
	for (size_t i = 0; i < n; i++) {
		const json_t *s = json_array_get(arr, i);
		struct vcp *c = &f->cps[i];
		struct tl_checkpoint cp;
		struct tl_note note;
		int64_t sz;
		int rc;

		if (!json_is_string(s)) {
			vissue(v, TL_EPROOF, og, -1, -1, "checkpoint %zu is not a JSON string", i);
			continue;
		}
		memset(&note, 0, sizeof note);
		rc = tl_note_parse(&note, json_string_value(s), json_string_length(s));
		if (rc == TL_ENOMEM) {
			err = rc;
			goto fail;
		}
		if (rc != 0) {
			vissue(v, TL_EPROOF, og, -1, -1, "checkpoint %zu is not a signed note: %s",
			       i, tl_strerror(rc));
			continue;
		}
		rc = tl_checkpoint_parse(&cp, note.raw, note.text_len);
		if (rc != 0) {
			vissue(v, TL_EPROOF, og, -1, -1, "checkpoint %zu does not parse: %s", i,
			       tl_strerror(rc));
			tl_note_release(&note);
			continue;
		}
		sz = i64(cp.size);
		c->size = cp.size;
		memcpy(c->root, cp.root, TL_HASH_LEN);
		if (strcmp(cp.origin, f->origin) != 0) {
			vissue(v, TL_ECHAIN, og, -1, sz, "checkpoint origin %s is not the feed's",
			       cp.origin);
			tl_note_release(&note);
			continue;
		}
		if (cp.nextensions)
			vissue(v, TL_EPROOF, og, -1, sz, "checkpoint has %zu extension lines",
			       cp.nextensions);
		if (f->key_ok) {
			rc = tl_note_verify(&note, &f->vk);
			if (rc == TL_ENOTFOUND)
				vissue(v, TL_ESIG, og, -1, sz,
				       "checkpoint is not signed by the feed key");
			else if (rc != 0)
				vissue(v, TL_ESIG, og, -1, sz,
				       "checkpoint signature does not verify");
			else
				c->sig_ok = 1;
		}
		if (cp.size > f->nrec) {
			vissue(v, TL_ERANGE, og, -1, sz,
			       "checkpoint size %" PRIu64 " exceeds the %zu records in the bundle",
			       cp.size, f->nrec);
		} else if (cp.size == 0) {
			tl_merkle_empty_root(c->acc_root);
			c->have_acc = 1;
		} else {
			f->order[f->norder++] = (struct vord){.size = cp.size, .i = i};
		}
		c->usable = 1;
		c->ncosig = cosig_count(v, &note, ws, now, og, sz);
		tl_note_release(&note);
	}
	qsort(f->order, f->norder, sizeof *f->order, cmp_ord);
	return 0;
fail:
	return err;
}

static int feed_open(struct vctx *v, struct vfeed *f, const json_t *fo, size_t idx,
                     const struct tl_verify_opts *o, const struct wset *ws)
{
	const json_t *jo, *jv, *jr, *jc;
	struct tl_origin og;
	const char *name;

	f->records = NULL;
	if (!json_is_object(fo)) {
		vissue(v, TL_EPROOF, NULL, -1, -1, "feed %zu is not a JSON object", idx);
		return 0;
	}
	jo = json_object_get(fo, "origin");
	if (!json_is_string(jo)) {
		vissue(v, TL_EPROOF, NULL, -1, -1, "feed %zu has no \"origin\" string", idx);
		return 0;
	}
	f->origin = json_string_value(jo);
	f->origin_len = json_string_length(jo);
	if (copy_origin(f->out->origin, f->origin, f->origin_len) != 0)
		vissue(v, TL_EPROOF, NULL, -1, -1, "feed %zu: origin is longer than %d bytes", idx,
		       TL_ORIGIN_TEXT_MAX);
	name = f->out->origin;

	f->key_ok = 0;
	if (tl_origin_parse(&og, f->origin, f->origin_len) != 0) {
		vissue(v, TL_EKEY, name, -1, -1,
		       "origin is not a Tally origin (tally.v1/<key hex>/<channel hex>)");
	} else {
		jv = json_object_get(fo, "vkey");
		if (!json_is_string(jv) ||
		    tl_vkey_parse(&f->vk, json_string_value(jv), json_string_length(jv)) != 0)
			vissue(v, TL_EKEY, name, -1, -1, "vkey is missing or does not parse");
		else if (f->vk.type != TL_SIGTYPE_ED25519)
			vissue(v, TL_EKEY, name, -1, -1, "vkey is not an Ed25519 (type 0x01) key");
		else if (strcmp(f->vk.name, f->origin) != 0)
			vissue(v, TL_EKEY, name, -1, -1, "vkey name %s is not the origin",
			       f->vk.name);
		else if (memcmp(f->vk.pk, og.pk, TL_PUB_LEN) != 0)
			vissue(v, TL_EKEY, name, -1, -1,
			       "vkey public key is not the key the origin names");
		else if (o->logs && !key_trusted(o, &f->vk))
			vissue(v, TL_EKEY, name, -1, -1, "key not trusted");
		else
			f->key_ok = 1;
	}

	jr = json_object_get(fo, "records");
	if (jr && !json_is_array(jr))
		vissue(v, TL_EPROOF, name, -1, -1, "\"records\" is not an array");
	else if (!jr)
		vissue(v, TL_EPROOF, name, -1, -1, "feed has no \"records\" array");
	else
		f->records = jr;
	f->nrec = f->records ? json_array_size(f->records) : 0;
	f->out->records = f->nrec;
	tl_merkle_empty_root(f->out->root);

	jc = json_object_get(fo, "checkpoints");
	if (jc && !json_is_array(jc)) {
		vissue(v, TL_EPROOF, name, -1, -1, "\"checkpoints\" is not an array");
		return 0;
	}
	return jc ? feed_checkpoints(v, f, jc, ws, o->now) : 0;
}

/* Compares each checkpoint with the records and settles the feed's counts. */
static void feed_close(struct vctx *v, struct vfeed *f, int quorum)
{
	const char *og = f->out->origin;
	int witnessed = 0;

	for (size_t i = 0; i < f->ncps; i++) {
		struct vcp *c = &f->cps[i];
		int64_t sz = i64(c->size);

		if (!c->usable || c->size > f->nrec)
			continue;
		if (!c->have_acc) {
			vissue(v, TL_EPROOF, og, -1, sz,
			       "checkpoint root for size %" PRIu64
			       " cannot be checked: the record at position %" PRIu64
			       " is unreadable",
			       c->size, f->broken_at);
			continue;
		}
		if (memcmp(c->root, c->acc_root, TL_HASH_LEN) != 0) {
			vissue(v, TL_EPROOF, og, -1, sz,
			       "checkpoint root for size %" PRIu64 " does not match the records",
			       c->size);
			continue;
		}
		if (!c->sig_ok)
			continue;
		f->out->checkpoints++;
		if (c->size > f->out->max_checkpoint)
			f->out->max_checkpoint = c->size;
		if (c->ncosig >= (unsigned)quorum) {
			witnessed = 1;
			if (c->size > f->out->witnessed_size)
				f->out->witnessed_size = c->size;
		}
	}
	if (quorum > 0 && !witnessed)
		vissue(v, TL_EQUORUM, og, -1, -1,
		       "no checkpoint has a quorum of %d valid cosignatures", quorum);
}

static int cmp_origin(const void *a, const void *b)
{
	const struct vfeed *x = *(const struct vfeed *const *)a;
	const struct vfeed *y = *(const struct vfeed *const *)b;
	int c;

	if (!x->origin || !y->origin)
		return !x->origin - !y->origin;
	c = strcmp(x->origin, y->origin);
	return c ? c : (x < y ? -1 : x > y);
}

static int check_duplicates(struct vctx *v, struct vfeed *feeds, size_t n)
{
	struct vfeed **p = calloc(n ? n : 1, sizeof *p);

	if (!p)
		return TL_ENOMEM;
	for (size_t i = 0; i < n; i++)
		p[i] = &feeds[i];
	qsort(p, n, sizeof *p, cmp_origin);
	for (size_t i = 1; i < n; i++)
		if (p[i]->origin && p[i - 1]->origin && strcmp(p[i]->origin, p[i - 1]->origin) == 0)
			vissue(v, TL_EFORK, p[i]->out->origin, -1, -1,
			       "the feed appears more than once in the bundle");
	free(p);
	return 0;
}

/* --------------------------------------------------------- bundle: main */

static int bundle_records(struct vctx *v, struct vfeed *feeds, size_t nfeeds, unsigned threads)
{
	struct vjob *jobs = calloc(VERIFY_WINDOW, sizeof *jobs);
	struct vseq *s = calloc(1, sizeof *s);
	size_t fi = 0, ri = 0;
	int err = 0;

	if (!jobs || !s) {
		err = TL_ENOMEM;
		goto fail;
	}
	s->v = v;
	for (;;) {
		size_t n = 0;

		while (n < VERIFY_WINDOW && fi < nfeeds) {
			struct vfeed *f = &feeds[fi];
			struct vjob *j;
			const json_t *js;

			if (ri >= f->nrec) {
				fi++;
				ri = 0;
				continue;
			}
			js = json_array_get(f->records, ri);
			j = &jobs[n++];
			memset(j, 0, sizeof *j);
			j->feed = f;
			j->pos = ri++;
			if (json_is_string(js)) {
				j->b64 = json_string_value(js);
				j->b64len = json_string_length(js);
			}
		}
		if (n == 0)
			break;
		pool_run(jobs, n, threads);
		for (size_t k = 0; k < n; k++) {
			if (s->cur && s->cur != jobs[k].feed)
				seq_close(s);
			seq_step(s, &jobs[k]);
		}
	}
	seq_close(s);
fail:
	free(jobs);
	free(s);
	return err;
}

int tl_verify_bundle(const char *json, size_t len, const struct tl_verify_opts *o,
                     struct tl_verify_report *r)
{
	static const struct tl_verify_opts defaults = {.quorum = -1};
	struct vctx v = {.r = r, .first = 0};
	struct vfeed *feeds = NULL;
	struct wset ws = {0};
	json_t *root = NULL;
	const json_t *jf, *jfeeds, *jq;
	json_error_t je;
	size_t nfeeds = 0;
	unsigned threads;
	int quorum = 0, err = 0;

	if (!r)
		return TL_EINVAL;
	report_init(r);
	if (!json)
		return TL_EINVAL;
	if (!o)
		o = &defaults;
	threads = o->threads ? o->threads : VERIFY_DEFAULT_THREADS;
	if (threads > VERIFY_MAX_THREADS)
		threads = VERIFY_MAX_THREADS;

	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		vissue(&v, TL_EFORMAT, NULL, -1, -1, "not JSON: line %d, column %d: %s", je.line,
		       je.column, je.text);
		goto out;
	}
	jf = json_object_get(root, "format");
	if (!json_is_object(root) || !json_is_string(jf) ||
	    strcmp(json_string_value(jf), BUNDLE_FORMAT) != 0) {
		vissue(&v, TL_EFORMAT, NULL, -1, -1, "not a bundle: \"format\" is not \"%s\"",
		       BUNDLE_FORMAT);
		goto out;
	}
	jfeeds = json_object_get(root, "feeds");
	if (!json_is_array(jfeeds)) {
		vissue(&v, TL_EFORMAT, NULL, -1, -1, "not a bundle: no \"feeds\" array");
		goto out;
	}
	nfeeds = json_array_size(jfeeds);
	if (nfeeds > VERIFY_MAX_FEEDS) {
		vissue(&v, TL_ETOOBIG, NULL, -1, -1,
		       "%zu feeds in the bundle; at most %d are allowed", nfeeds, VERIFY_MAX_FEEDS);
		goto out;
	}

	/* Witnesses and quorum first: checkpoints are checked as feeds are read. */
	if (o->witnesses) {
		err = wset_from_opts(&v, &ws, o);
	} else {
		err = wset_from_json(&v, &ws, json_object_get(root, "witnesses"));
		r->witnesses_from_bundle = 1;
	}
	if (err)
		goto out;
	if (o->quorum >= 0) {
		quorum = o->quorum;
	} else {
		jq = json_object_get(root, "quorum");
		if (jq && (!json_is_integer(jq) || json_integer_value(jq) < 0 ||
		           json_integer_value(jq) > INT_MAX))
			vissue(&v, TL_EQUORUM, NULL, -1, -1,
			       "\"quorum\" is not a non-negative integer");
		else if (jq)
			quorum = (int)json_integer_value(jq);
	}
	check_quorum(&v, quorum, ws.n);
	r->quorum = quorum;
	r->nwitnesses = ws.n;

	if (nfeeds) {
		feeds = calloc(nfeeds, sizeof *feeds);
		r->feeds = calloc(nfeeds, sizeof *r->feeds);
		if (!feeds || !r->feeds) {
			err = TL_ENOMEM;
			goto out;
		}
	}
	r->nfeeds = nfeeds;
	for (size_t i = 0; i < nfeeds; i++) {
		feeds[i].out = &r->feeds[i];
		err = feed_open(&v, &feeds[i], json_array_get(jfeeds, i), i, o, &ws);
		if (err)
			goto out;
	}
	err = check_duplicates(&v, feeds, nfeeds);
	if (err)
		goto out;
	err = bundle_records(&v, feeds, nfeeds, threads);
	if (err)
		goto out;
	for (size_t i = 0; i < nfeeds; i++)
		feed_close(&v, &feeds[i], quorum);
out:
	if (err)
		vissue(&v, err, NULL, -1, -1, "verification stopped: %s", tl_strerror(err));
	for (size_t i = 0; i < nfeeds && feeds; i++) {
		free(feeds[i].cps);
		free(feeds[i].order);
	}
	free(feeds);
	wset_release(&ws);
	json_decref(root);
	return finish(&v);
}

/* ---------------------------------------------------------- tlog-proof */

int tl_verify_tlog_proof(const char *text, size_t len, const struct tl_verify_opts *o,
                         struct tl_verify_report *r)
{
	static const struct tl_verify_opts defaults = {.quorum = -1};
	struct vctx v = {.r = r, .first = 0};
	struct tl_tlog_proof *p = NULL;
	struct tl_verify_feed *f;
	struct wset ws = {0};
	struct tl_entry e;
	struct tl_origin og;
	struct tl_vkey vk;
	const char *name;
	int64_t sz, idx;
	int quorum, rc, have_rec = 0, have_key = 0, rec_ok = 1, cp_ok = 1, err = 0;
	size_t where = 0;
	unsigned n;

	if (!r)
		return TL_EINVAL;
	report_init(r);
	if (!text)
		return TL_EINVAL;
	if (!o)
		o = &defaults;
	p = calloc(1, sizeof *p);
	r->feeds = calloc(1, sizeof *r->feeds);
	if (!p || !r->feeds) {
		err = TL_ENOMEM;
		goto out;
	}
	rc = tl_tlog_proof_parse(p, text, len);
	if (rc != 0) {
		vissue(&v, rc == TL_ENOMEM ? rc : TL_EFORMAT, NULL, -1, -1, "not a tlog-proof: %s",
		       tl_strerror(rc));
		goto out_parsed;
	}
	r->nfeeds = 1;
	f = &r->feeds[0];
	copy_origin(f->origin, p->cp.origin, strlen(p->cp.origin));
	name = f->origin;
	f->records = 1;
	f->max_checkpoint = p->cp.size;
	memcpy(f->root, p->cp.root, TL_HASH_LEN);
	sz = i64(p->cp.size);
	idx = i64(p->index);

	/* The record, and the key its origin names. */
	if (!p->extra) {
		vissue(&v, TL_EFORMAT, name, idx, sz,
		       "the proof has no extra line with the record");
		rec_ok = 0;
	} else if (p->extra_len > TL_RECORD_MAX) {
		vissue(&v, TL_ETOOBIG, name, idx, sz,
		       "record is %zu bytes, more than the limit of %u", p->extra_len,
		       (unsigned)TL_RECORD_MAX);
		rec_ok = 0;
	} else if ((rc = tl_record_decode(&e, p->extra, p->extra_len, &where)) != 0) {
		vissue(&v, TL_EPROOF, name, idx, sz, "record is malformed at byte %zu: %s", where,
		       tl_strerror(rc));
		rec_ok = 0;
	} else {
		have_rec = 1;
		if (tl_record_verify_sig(&e) != 0) {
			vissue(&v, TL_ESIG, name, idx, sz, "signature does not verify");
			rec_ok = 0;
		}
		if (strlen(p->cp.origin) != TL_ORIGIN_LEN ||
		    memcmp(e.origin_str, p->cp.origin, TL_ORIGIN_LEN) != 0) {
			vissue(&v, TL_ECHAIN, name, idx, sz,
			       "record origin %.*s is not the checkpoint origin",
			       (int)TL_ORIGIN_LEN, e.origin_str);
			rec_ok = 0;
		}
		if (e.seq != p->index) {
			vissue(&v, TL_ECHAIN, name, idx, sz,
			       "index %" PRIu64 " is not the record's seq %" PRIu64, p->index,
			       e.seq);
			rec_ok = 0;
		}
	}
	if (have_rec) {
		og = e.origin;
		have_key = 1;
	} else if (tl_origin_parse(&og, p->cp.origin, strlen(p->cp.origin)) == 0) {
		have_key = 1;
	} else {
		vissue(&v, TL_EKEY, name, -1, sz, "checkpoint origin is not a Tally origin");
	}

	/* The checkpoint: signed by the origin's key. */
	cp_ok = 0;
	if (have_key) {
		rc = tl_vkey_from_pub(&vk, p->cp.origin, TL_SIGTYPE_ED25519, og.pk);
		if (rc != 0) {
			vissue(&v, TL_EKEY, name, -1, sz, "no verifier key for the origin: %s",
			       tl_strerror(rc));
		} else if (o->logs && !key_trusted(o, &vk)) {
			vissue(&v, TL_EKEY, name, -1, sz, "key not trusted");
		} else {
			rc = tl_note_verify(&p->note, &vk);
			if (rc == TL_ENOTFOUND)
				vissue(&v, TL_ESIG, name, -1, sz,
				       "checkpoint is not signed by the feed key");
			else if (rc != 0)
				vissue(&v, TL_ESIG, name, -1, sz,
				       "checkpoint signature does not verify");
			else
				cp_ok = 1;
		}
	}
	if (p->cp.nextensions) {
		vissue(&v, TL_EPROOF, name, -1, sz, "checkpoint has %zu extension lines",
		       p->cp.nextensions);
		cp_ok = 0;
	}

	/* Inclusion of SHA-256(0x00 || record) at index. */
	if (p->extra) {
		uint8_t leaf[TL_HASH_LEN];

		tl_record_leaf_hash(leaf, p->extra, p->extra_len);
		rc = tl_merkle_verify_inclusion(leaf, p->index, p->cp.size,
		                                (const uint8_t(*)[TL_HASH_LEN])p->proof, p->nproof,
		                                p->cp.root);
		if (rc != 0) {
			vissue(&v, TL_EPROOF, name, idx, sz,
			       "inclusion proof of index %" PRIu64 " in size %" PRIu64
			       " does not verify: %s",
			       p->index, p->cp.size, tl_strerror(rc));
			rec_ok = 0;
			cp_ok = 0;
		}
	} else {
		cp_ok = 0;
	}
	f->verified = rec_ok ? 1 : 0;
	f->checkpoints = cp_ok ? 1 : 0;

	/* Cosignatures. */
	err = wset_from_opts(&v, &ws, o);
	if (err)
		goto out_parsed;
	quorum = o->quorum < 0 ? 0 : o->quorum;
	r->quorum = quorum;
	r->nwitnesses = ws.n;
	check_quorum(&v, quorum, ws.n);
	{
		uint64_t *times = calloc(ws.n ? ws.n : 1, sizeof *times);

		if (!times) {
			err = TL_ENOMEM;
			goto out_parsed;
		}
		n = cosig_count_t(&v, &p->note, &ws, o->now, name, sz, times);
		if (cp_ok && rec_ok)
			f->witnessed_time = quorum_time(times, n, quorum);
		free(times);
	}
	if (n >= (unsigned)quorum) {
		if (cp_ok)
			f->witnessed_size = p->cp.size;
	} else {
		vissue(&v, TL_EQUORUM, name, -1, sz,
		       "%u valid cosignatures on the checkpoint, quorum is %d", n, quorum);
	}
out_parsed:
	tl_tlog_proof_release(p);
out:
	if (err)
		vissue(&v, err, NULL, -1, -1, "verification stopped: %s", tl_strerror(err));
	free(p);
	wset_release(&ws);
	return finish(&v);
}

/* --------------------------------------------------------------- notes */

int tl_verify_note(const char *text, size_t len, const struct tl_verify_opts *o,
                   struct tl_verify_report *r)
{
	static const struct tl_verify_opts defaults = {.quorum = -1};
	struct vctx v = {.r = r, .first = 0};
	struct tl_note note;
	struct tl_checkpoint cp;
	struct wset ws = {0};
	const char *name = NULL;
	int64_t sz = -1;
	int quorum, rc, err = 0, is_cp, signed_ok = 0;
	unsigned n;

	if (!r)
		return TL_EINVAL;
	report_init(r);
	if (!text)
		return TL_EINVAL;
	if (!o)
		o = &defaults;
	memset(&note, 0, sizeof note);
	rc = tl_note_parse(&note, text, len);
	if (rc != 0) {
		vissue(&v, rc == TL_ENOMEM ? rc : TL_EFORMAT, NULL, -1, -1, "not a signed note: %s",
		       tl_strerror(rc));
		return finish(&v);
	}
	is_cp = tl_checkpoint_parse(&cp, note.raw, note.text_len) == 0;
	if (is_cp) {
		r->feeds = calloc(1, sizeof *r->feeds);
		if (!r->feeds) {
			err = TL_ENOMEM;
			goto out;
		}
		r->nfeeds = 1;
		copy_origin(r->feeds[0].origin, cp.origin, strlen(cp.origin));
		r->feeds[0].max_checkpoint = cp.size;
		memcpy(r->feeds[0].root, cp.root, TL_HASH_LEN);
		name = r->feeds[0].origin;
		sz = i64(cp.size);
	}

	for (size_t i = 0; o->logs && i < o->nlogs; i++) {
		const struct tl_vkey *k = &o->logs[i];

		if (k->type != TL_SIGTYPE_ED25519)
			continue;
		rc = tl_note_verify(&note, k);
		if (rc == 0)
			signed_ok = 1;
		else if (rc != TL_ENOTFOUND)
			vissue(&v, TL_ESIG, name, -1, sz, "signature by %s does not verify",
			       k->name);
	}
	if (!signed_ok)
		vissue(&v, TL_EKEY, name, -1, sz, "no signature by a trusted key");
	if (!is_cp)
		goto out;
	if (signed_ok)
		r->feeds[0].checkpoints = 1;

	err = wset_from_opts(&v, &ws, o);
	if (err)
		goto out;
	quorum = o->quorum < 0 ? 0 : o->quorum;
	r->quorum = quorum;
	r->nwitnesses = ws.n;
	check_quorum(&v, quorum, ws.n);
	n = cosig_count(&v, &note, &ws, o->now, name, sz);
	if (n >= (unsigned)quorum) {
		if (signed_ok)
			r->feeds[0].witnessed_size = cp.size;
	} else {
		vissue(&v, TL_EQUORUM, name, -1, sz,
		       "%u valid cosignatures on the checkpoint, quorum is %d", n, quorum);
	}
out:
	if (err)
		vissue(&v, err, NULL, -1, -1, "verification stopped: %s", tl_strerror(err));
	tl_note_release(&note);
	wset_release(&ws);
	return finish(&v);
}
