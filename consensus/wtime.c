/*
 * wtime.c — witnessed time from cosigned checkpoints, and lateness verdicts
 * (DESIGN §4). Contract and definitions in wtime.h; the argument for the
 * quorum rules in docs/protocol.md, "Witnessed time".
 */
#include "wtime.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNKNOWN UINT64_MAX /* internal: no value for this witness */

/* ------------------------------------------------------------ issues */

static void issue(struct tl_wtime *wt, enum tl_wtime_issue_kind kind, size_t note, uint64_t size,
                  size_t witness, const char *fmt, ...) TL_PRINTF(6, 7);

static void issue(struct tl_wtime *wt, enum tl_wtime_issue_kind kind, size_t note, uint64_t size,
                  size_t witness, const char *fmt, ...)
{
	struct tl_wtime_issue *is;
	va_list ap;

	wt->nissues++;
	if (wt->issues_kept >= TL_WTIME_ISSUES_MAX)
		return;
	if (!wt->issues) {
		wt->issues = calloc(TL_WTIME_ISSUES_MAX, sizeof *wt->issues);
		if (!wt->issues)
			return; /* counted, not kept */
	}
	is = &wt->issues[wt->issues_kept++];
	is->kind = kind;
	is->note = note;
	is->size = size;
	is->witness = witness;
	va_start(ap, fmt);
	vsnprintf(is->msg, sizeof is->msg, fmt, ap);
	va_end(ap);
}

/* -------------------------------------------------------------- build */

struct cp {
	uint64_t size;
	uint8_t root[TL_HASH_LEN];
	size_t note;
	size_t idx; /* position in cps (note order) */
	int forked;
};

struct vote {
	uint64_t size;
	uint64_t time; /* earliest valid cosignature on the checkpoint */
	uint64_t late; /* latest */
	size_t cp;     /* index into cps (note order) */
};

struct votes {
	struct vote *v;
	size_t n, cap;
};

static int votes_push(struct votes *vs, uint64_t size, uint64_t time, uint64_t late, size_t cp)
{
	if (vs->n == vs->cap) {
		size_t nc = vs->cap ? vs->cap * 2 : 16;
		struct vote *nv = realloc(vs->v, nc * sizeof *nv);

		if (!nv)
			return TL_ENOMEM;
		vs->v = nv;
		vs->cap = nc;
	}
	vs->v[vs->n++] = (struct vote){size, time, late, cp};
	return 0;
}

static int cmp_cp(const void *a, const void *b)
{
	const struct cp *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return x->note < y->note ? -1 : x->note > y->note;
}

static int cmp_vote(const void *a, const void *b)
{
	const struct vote *x = a, *y = b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return x->time < y->time ? -1 : x->time > y->time;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void tl_wtime_free(struct tl_wtime *wt)
{
	if (!wt)
		return;
	for (size_t i = 0; i < wt->nw; i++) {
		free(wt->w[i].first);
		free(wt->w[i].last);
		free(wt->w[i].suffix_min);
		free(wt->w[i].prefix_max);
	}
	free(wt->w);
	free(wt->forks);
	free(wt->issues);
	free(wt->nb);
	free(wt);
}

/* The cosignature time t may be used: not after now + skew. */
static int time_ok(const struct tl_wtime *wt, uint64_t t)
{
	if (t > TL_WTIME_TIME_MAX)
		return 0;
	if (wt->now_s == 0)
		return 1;
	return t <= wt->now_s || t - wt->now_s <= wt->skew_s;
}

/*
 * The valid cosignature lines by one witness on note n: a note may carry
 * several by one key (a node keeps the earliest and the latest), so each
 * line is checked on its own (tl_cosig_verify reports only the first).
 * *lo, *hi: the earliest and latest valid time, UNKNOWN when none; *bad:
 * lines that failed; *future: lines dated after now + skew (latest such).
 */
static int cosig_lines(const struct tl_wtime *wt, const struct tl_note *n, const struct tl_vkey *vk,
                       struct tl_buf *msg, uint64_t *lo, uint64_t *hi, size_t *bad,
                       uint64_t *future)
{
	*lo = *hi = UNKNOWN;
	*bad = 0;
	*future = 0;
	for (size_t i = 0; i < n->nsigs; i++) {
		const struct tl_note_sig *sg = &n->sigs[i];
		uint64_t t = 0;

		if (strcmp(sg->name, vk->name) != 0 || memcmp(sg->id, vk->id, 4) != 0)
			continue;
		if (sg->bloblen != 8 + TL_SIG_LEN) {
			(*bad)++;
			continue;
		}
		for (int k = 0; k < 8; k++)
			t = t << 8 | sg->blob[k];
		tl_buf_reset(msg);
		if (tl_buf_printf(msg, "cosignature/v1\ntime %llu\n", (unsigned long long)t) != 0 ||
		    tl_buf_add(msg, n->raw, n->text_len) != 0)
			return TL_ENOMEM;
		if (tl_verify(sg->blob + 8, msg->data, msg->len, vk->pk) != 0) {
			(*bad)++;
			continue;
		}
		if (!time_ok(wt, t)) {
			if (t > *future)
				*future = t;
			continue;
		}
		if (*lo == UNKNOWN || t < *lo)
			*lo = t;
		if (*hi == UNKNOWN || t > *hi)
			*hi = t;
	}
	return 0;
}

/* Valid cosignature times on note n by each witness: lo[w]/hi[w] the
 * earliest/latest, UNKNOWN when w has none. Rejected lines are counted and,
 * when note != SIZE_MAX, reported. */
static int cosig_times(struct tl_wtime *wt, const struct tl_note *n, uint64_t *lo, uint64_t *hi,
                       size_t note, uint64_t size)
{
	struct tl_buf msg;
	int err = 0;

	tl_buf_init(&msg, TL_NOTE_MAX + 64);
	for (size_t w = 0; w < wt->nw; w++) {
		struct tl_wtime_witness *ww = &wt->w[w];
		uint64_t future;
		size_t bad;

		err = cosig_lines(wt, n, &ww->vk, &msg, &lo[w], &hi[w], &bad, &future);
		if (err)
			break;
		/* Counted for this feed's checkpoints only (note != SIZE_MAX): a
		 * note embedded in a seen entry is the other feed's, and its lines
		 * are merely not used. */
		if (bad && note != SIZE_MAX) {
			ww->nbad += bad;
			issue(wt, TL_WT_COSIG, note, size, w,
			      "checkpoint %zu (size %" PRIu64
			      "): cosignature by witness %s does not verify",
			      note, size, ww->vk.name);
		}
		if (future && note != SIZE_MAX) {
			ww->nbad++;
			issue(wt, TL_WT_FUTURE, note, size, w,
			      "checkpoint %zu (size %" PRIu64
			      "): cosignature by witness %s "
			      "is dated %" PRIu64 ", more than %" PRIu64
			      " s after the verifier's time %" PRIu64,
			      note, size, ww->vk.name, future, wt->skew_s, wt->now_s);
		}
	}
	tl_buf_release(&msg);
	return err;
}

static int witnesses_init(struct tl_wtime *wt, const struct tl_wtime_opts *o)
{
	size_t n = o->nwitnesses;

	if (n > TL_WTIME_WITNESSES_MAX)
		return TL_ETOOBIG;
	if (n == 0)
		return 0;
	wt->w = calloc(n, sizeof *wt->w);
	if (!wt->w)
		return TL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct tl_vkey *vk = &o->witnesses[i];
		int dup = 0;

		if (vk->type != TL_SIGTYPE_COSIG) {
			issue(wt, TL_WT_WITNESS, SIZE_MAX, 0, SIZE_MAX,
			      "witness key %s is not a cosignature key (type 0x04); ignored",
			      vk->name);
			continue;
		}
		/* One public key, one vote, whatever names it goes by. */
		for (size_t j = 0; j < wt->nw; j++)
			dup |= memcmp(wt->w[j].vk.pk, vk->pk, TL_PUB_LEN) == 0;
		if (!dup)
			wt->w[wt->nw++].vk = *vk;
	}
	return 0;
}

/* Sorts a witness's votes into its staircase. */
static int staircase(struct tl_wtime_witness *w, struct vote *v, size_t n)
{
	size_t k = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_vote);
	w->first = calloc(n, sizeof *w->first);
	w->last = calloc(n, sizeof *w->last);
	w->suffix_min = calloc(n, sizeof *w->suffix_min);
	w->prefix_max = calloc(n, sizeof *w->prefix_max);
	if (!w->first || !w->last || !w->suffix_min || !w->prefix_max)
		return TL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (k && w->first[k - 1].size == v[i].size) {
			if (v[i].late > w->last[k - 1].time)
				w->last[k - 1].time = v[i].late;
			continue; /* sorted: first[k - 1] has the earliest already */
		}
		w->first[k] = (struct tl_wtime_step){v[i].size, v[i].time};
		w->last[k] = (struct tl_wtime_step){v[i].size, v[i].late};
		k++;
	}
	w->nsteps = k;
	for (size_t j = k; j-- > 0;)
		w->suffix_min[j] = j + 1 < k && w->suffix_min[j + 1] < w->first[j].time
		                           ? w->suffix_min[j + 1]
		                           : w->first[j].time;
	for (size_t j = 0; j < k; j++)
		w->prefix_max[j] = j && w->prefix_max[j - 1] > w->last[j].time
		                           ? w->prefix_max[j - 1]
		                           : w->last[j].time;
	return 0;
}

int tl_wtime_build(struct tl_wtime **out, const char *origin, const char *const *notes,
                   const size_t *lens, size_t n, const struct tl_wtime_opts *o)
{
	struct tl_wtime *wt = NULL;
	struct tl_origin og;
	struct tl_vkey fvk;
	struct cp *cps = NULL;
	struct votes *vs = NULL;
	uint64_t *times = NULL, *lates = NULL;
	size_t ncp = 0, nw = 0;
	int err = 0;

	if (!out || !origin || !o || (n && (!notes || !lens)))
		return TL_EINVAL;
	*out = NULL;
	if (strlen(origin) != TL_ORIGIN_LEN || tl_origin_parse(&og, origin, TL_ORIGIN_LEN) != 0)
		return TL_EINVAL;
	if (n > TL_WTIME_CHECKPOINTS_MAX)
		return TL_ETOOBIG;
	if (o->nwitnesses && !o->witnesses)
		return TL_EINVAL;
	if ((err = tl_vkey_from_pub(&fvk, origin, TL_SIGTYPE_ED25519, og.pk)) != 0)
		return err;
	wt = calloc(1, sizeof *wt);
	if (!wt)
		return TL_ENOMEM;
	memcpy(wt->origin, origin, TL_ORIGIN_LEN + 1);
	wt->quorum = o->quorum;
	wt->skew_s = o->skew_s;
	wt->now_s = o->now_s;
	wt->nnotes = n;
	if ((err = witnesses_init(wt, o)) != 0)
		goto fail;
	nw = wt->nw;
	cps = calloc(n ? n : 1, sizeof *cps);
	vs = calloc(nw ? nw : 1, sizeof *vs);
	times = calloc(wt->nw ? wt->nw : 1, sizeof *times);
	lates = calloc(wt->nw ? wt->nw : 1, sizeof *lates);
	if (!cps || !vs || !times || !lates) {
		err = TL_ENOMEM;
		goto fail;
	}

	/* Pass 1: each note once — parse, feed signature, cosignatures. */
	for (size_t i = 0; i < n; i++) {
		struct tl_note note;
		struct tl_checkpoint c;
		int rc;

		memset(&note, 0, sizeof note);
		rc = tl_note_parse(&note, notes[i], lens[i]);
		if (rc == TL_ENOMEM) {
			err = rc;
			goto fail;
		}
		if (rc != 0) {
			issue(wt, TL_WT_NOTE, i, 0, SIZE_MAX,
			      "checkpoint %zu is not a signed note: %s", i, tl_strerror(rc));
			continue;
		}
		if (tl_checkpoint_parse(&c, note.raw, note.text_len) != 0) {
			issue(wt, TL_WT_NOTE, i, 0, SIZE_MAX, "note %zu is not a checkpoint", i);
			tl_note_release(&note);
			continue;
		}
		if (strcmp(c.origin, origin) != 0) {
			issue(wt, TL_WT_ORIGIN, i, c.size, SIZE_MAX,
			      "checkpoint %zu is of feed %.120s, not of this one", i, c.origin);
			tl_note_release(&note);
			continue;
		}
		rc = tl_note_verify(&note, &fvk);
		if (rc != 0) {
			issue(wt, TL_WT_UNSIGNED, i, c.size, SIZE_MAX,
			      "checkpoint %zu (size %" PRIu64 ") %s", i, c.size,
			      rc == TL_ENOTFOUND ? "is not signed by the feed key"
			                         : "has a feed signature that does not verify");
			tl_note_release(&note);
			continue;
		}
		cps[ncp].size = c.size;
		memcpy(cps[ncp].root, c.root, TL_HASH_LEN);
		cps[ncp].note = i;
		err = cosig_times(wt, &note, times, lates, i, c.size);
		for (size_t w = 0; !err && w < wt->nw; w++)
			if (times[w] != UNKNOWN &&
			    (err = votes_push(&vs[w], c.size, times[w], lates[w], ncp)))
				break;
		tl_note_release(&note);
		if (err)
			goto fail;
		ncp++;
	}
	wt->ncheckpoints = ncp;

	/* Pass 2: one root per size; two are equivocation evidence. */
	{
		struct cp *sorted = malloc((ncp ? ncp : 1) * sizeof *sorted);

		if (!sorted) {
			err = TL_ENOMEM;
			goto fail;
		}
		for (size_t k = 0; k < ncp; k++)
			cps[k].idx = k;
		memcpy(sorted, cps, ncp * sizeof *cps);
		qsort(sorted, ncp, sizeof *sorted, cmp_cp);
		for (size_t i = 0, j; i < ncp; i = j) {
			int forked = 0;

			for (j = i + 1; j < ncp && sorted[j].size == sorted[i].size; j++) {
				struct tl_wtime_fork *nf;

				if (memcmp(sorted[j].root, sorted[i].root, TL_HASH_LEN) == 0 ||
				    forked)
					continue;
				forked = 1;
				nf = realloc(wt->forks, (wt->nforks + 1) * sizeof *nf);
				if (!nf) {
					free(sorted);
					err = TL_ENOMEM;
					goto fail;
				}
				wt->forks = nf;
				nf = &wt->forks[wt->nforks++];
				nf->size = sorted[i].size;
				nf->a = sorted[i].note;
				nf->b = sorted[j].note;
				memcpy(nf->root_a, sorted[i].root, TL_HASH_LEN);
				memcpy(nf->root_b, sorted[j].root, TL_HASH_LEN);
				issue(wt, TL_WT_EQUIVOCAL, sorted[j].note, sorted[i].size, SIZE_MAX,
				      "equivocation: checkpoints %zu and %zu are both signed by "
				      "the "
				      "feed key for size %" PRIu64 " with different roots",
				      sorted[i].note, sorted[j].note, sorted[i].size);
			}
			if (forked)
				for (size_t k = i; k < j; k++)
					cps[sorted[k].idx].forked = 1;
			else if (sorted[i].size > wt->max_size)
				wt->max_size = sorted[i].size;
		}
		free(sorted);
	}

	/* Pass 3: staircases, without forked sizes. */
	for (size_t w = 0; w < wt->nw; w++) {
		size_t k = 0;

		for (size_t i = 0; i < vs[w].n; i++)
			if (!cps[vs[w].v[i].cp].forked)
				vs[w].v[k++] = vs[w].v[i];
		wt->w[w].ncosigs = k;
		if ((err = staircase(&wt->w[w], vs[w].v, k)) != 0)
			goto fail;
	}
	goto done;
fail:
	tl_wtime_free(wt);
	wt = NULL;
done:
	for (size_t w = 0; vs && w < nw; w++)
		free(vs[w].v);
	free(vs);
	free(cps);
	free(times);
	free(lates);
	*out = wt;
	return err;
}

size_t tl_wtime_witness_steps(const struct tl_wtime *wt, size_t w)
{
	return wt && w < wt->nw ? wt->w[w].nsteps : 0;
}

/* ------------------------------------------------------------ queries */

/* k-th smallest of v[0..n) (UNKNOWN sorts last), or 0 when it is UNKNOWN. */
static uint64_t kth_smallest(uint64_t *v, size_t n, unsigned k)
{
	if (k == 0 || k > n)
		return 0;
	qsort(v, n, sizeof *v, cmp_u64);
	return v[k - 1] == UNKNOWN ? 0 : v[k - 1];
}

/* k-th largest of the known values of v[0..n) (UNKNOWN = none), or 0. */
static uint64_t kth_largest(uint64_t *v, size_t n, unsigned k)
{
	size_t known = 0;

	if (k == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] != UNKNOWN)
			v[known++] = v[i];
	if (k > known)
		return 0;
	qsort(v, known, sizeof *v, cmp_u64);
	return v[known - k];
}

/* First step with size > i. */
static size_t first_above(const struct tl_wtime_witness *w, uint64_t i)
{
	size_t lo = 0, hi = w->nsteps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->first[mid].size > i)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

uint64_t tl_wtime_existed_by(const struct tl_wtime *wt, uint64_t i)
{
	uint64_t v[TL_WTIME_WITNESSES_MAX];

	if (!wt || wt->quorum == 0 || wt->quorum > wt->nw)
		return 0;
	for (size_t w = 0; w < wt->nw; w++) {
		size_t j = first_above(&wt->w[w], i);

		v[w] = j < wt->w[w].nsteps ? wt->w[w].suffix_min[j] : UNKNOWN;
	}
	return kth_smallest(v, wt->nw, wt->quorum);
}

uint64_t tl_wtime_absent_at(const struct tl_wtime *wt, uint64_t i)
{
	uint64_t v[TL_WTIME_WITNESSES_MAX];

	if (!wt || wt->quorum == 0 || wt->quorum > wt->nw)
		return 0;
	for (size_t w = 0; w < wt->nw; w++) {
		size_t j = first_above(&wt->w[w], i); /* steps [0, j) have size <= i */

		v[w] = j ? wt->w[w].prefix_max[j - 1] : UNKNOWN;
	}
	return kth_largest(v, wt->nw, wt->quorum);
}

uint64_t tl_wtime_not_before(const struct tl_wtime *wt, uint64_t i)
{
	size_t lo = 0, hi;

	if (!wt || !wt->nnb)
		return 0;
	hi = wt->nnb;
	while (lo < hi) { /* first bound with seq > i */
		size_t mid = lo + (hi - lo) / 2;

		if (wt->nb[mid].seq > i)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo ? wt->nb[lo - 1].time : 0;
}

int tl_wtime_existed_all(const struct tl_wtime *wt, uint64_t *out, size_t n, uint64_t scale)
{
	uint64_t v[TL_WTIME_WITNESSES_MAX];
	size_t *cur;
	uint64_t i = 0;

	if (!wt || (n && !out) || scale == 0)
		return TL_EINVAL;
	if (n == 0)
		return 0;
	if (wt->quorum == 0 || wt->quorum > wt->nw) {
		memset(out, 0, n * sizeof *out);
		return 0;
	}
	cur = calloc(wt->nw, sizeof *cur);
	if (!cur)
		return TL_ENOMEM;
	for (size_t w = 0; w < wt->nw; w++)
		cur[w] = first_above(&wt->w[w], 0);
	while (i < n) {
		/* t_w is constant on [i, end): until the next size a cursor sits on. */
		uint64_t end = n, t;

		for (size_t w = 0; w < wt->nw; w++) {
			const struct tl_wtime_witness *ww = &wt->w[w];

			if (cur[w] < ww->nsteps) {
				v[w] = ww->suffix_min[cur[w]];
				if (ww->first[cur[w]].size < end)
					end = ww->first[cur[w]].size;
			} else {
				v[w] = UNKNOWN;
			}
		}
		t = kth_smallest(v, wt->nw, wt->quorum);
		if (t && t > UINT64_MAX / scale)
			t = UINT64_MAX;
		else
			t *= scale;
		if (end <= i) /* cannot happen: cursors sit on sizes > i */
			end = i + 1;
		for (; i < end; i++)
			out[i] = t;
		for (size_t w = 0; w < wt->nw; w++)
			while (cur[w] < wt->w[w].nsteps && wt->w[w].first[cur[w]].size <= i)
				cur[w]++;
	}
	free(cur);
	return 0;
}

/* ---------------------------------------------------------- not-before */

/* The "checkpoint" string of a seen body (a canonical map), or -1. */
static int seen_note(const uint8_t *body, size_t len, const char **note, size_t *nlen)
{
	struct tl_mp_item it;
	size_t pos = 0;
	uint64_t pairs;

	if (tl_mp_next(body, len, &pos, &it) != 0 || it.type != TL_MP_MAP)
		return -1;
	pairs = it.u;
	for (uint64_t k = 0; k < pairs; k++) {
		struct tl_mp_item key, val;
		int want;

		if (tl_mp_next(body, len, &pos, &key) != 0 || key.type != TL_MP_STR)
			return -1;
		want = key.u == 10 && memcmp(key.data, "checkpoint", 10) == 0;
		if (tl_mp_next(body, len, &pos, &val) != 0)
			return -1;
		if (want) {
			if (val.type != TL_MP_STR)
				return -1;
			*note = (const char *)val.data;
			*nlen = (size_t)val.u;
			return 0;
		}
		/* Skip containers' contents: seen bodies hold none we need. */
		if (val.type == TL_MP_ARRAY || val.type == TL_MP_MAP)
			return -1;
	}
	return -1;
}

int tl_wtime_add_seen(struct tl_wtime *wt, const uint8_t *const *recs, const size_t *lens, size_t n)
{
	uint64_t *times = NULL, *lates = NULL;
	size_t cap = 0;
	int err = 0;

	if (!wt || (n && (!recs || !lens)))
		return TL_EINVAL;
	free(wt->nb);
	wt->nb = NULL;
	wt->nnb = 0;
	if (wt->quorum == 0 || wt->quorum > wt->nw)
		return 0;
	times = calloc(wt->nw, sizeof *times);
	lates = calloc(wt->nw, sizeof *lates);
	if (!times || !lates) {
		free(times);
		free(lates);
		return TL_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct tl_entry e;
		struct tl_note note;
		const char *s;
		size_t slen;
		uint64_t t;
		int rc;

		if (!recs[i] || lens[i] < 16)
			continue;
		if (tl_record_decode(&e, recs[i], lens[i], NULL) != 0 || e.kind_len != 4 ||
		    memcmp(e.kind, "seen", 4) != 0 || e.seq != i)
			continue;
		if (seen_note(e.body, e.body_len, &s, &slen) != 0)
			continue;
		memset(&note, 0, sizeof note);
		rc = tl_note_parse(&note, s, slen);
		if (rc == TL_ENOMEM) {
			err = rc;
			break;
		}
		if (rc != 0)
			continue;
		rc = cosig_times(wt, &note, times, lates, SIZE_MAX, 0);
		tl_note_release(&note);
		if (rc) {
			err = rc;
			break;
		}
		/* A cosignature exists no earlier than its time, and the entry
		 * follows every line it embeds: per witness the latest counts. */
		t = kth_largest(lates, wt->nw, wt->quorum);
		if (!t)
			continue;
		if (wt->nnb == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct tl_wtime_nb *nn = realloc(wt->nb, nc * sizeof *nn);

			if (!nn) {
				err = TL_ENOMEM;
				break;
			}
			wt->nb = nn;
			cap = nc;
		}
		/* Running maximum: everything after a seen entry is after it too. */
		if (wt->nnb && wt->nb[wt->nnb - 1].time > t)
			t = wt->nb[wt->nnb - 1].time;
		wt->nb[wt->nnb++] = (struct tl_wtime_nb){(uint64_t)i, t};
	}
	free(times);
	free(lates);
	return err;
}

/* ------------------------------------------------------------ lateness */

uint64_t tl_days_late(uint64_t t_ms, uint64_t deadline_ms)
{
	uint64_t d;

	if (t_ms <= deadline_ms)
		return 0;
	d = t_ms - deadline_ms;
	return d / TL_DAY_MS + (d % TL_DAY_MS != 0);
}

static uint64_t ms(uint64_t s)
{
	return s > TL_WTIME_TIME_MAX ? UINT64_MAX : s * 1000u;
}

static void fact(struct tl_fact *f, enum tl_role role, uint64_t seq, uint64_t claimed,
                 const struct tl_wtime *wt)
{
	f->present = 1;
	f->feed = role;
	f->seq = seq;
	f->claimed_ms = claimed;
	f->existed_by_ms = wt ? ms(tl_wtime_existed_by(wt, seq)) : 0;
	f->not_before_ms = wt ? ms(tl_wtime_not_before(wt, seq)) : 0;
}

/* The first event of kind ev in a statement's timeline (or the one at seq). */
static const struct tl_state_event *find_event(const struct tl_stmt *st, enum tl_event ev,
                                               int by_seq, uint64_t seq)
{
	const struct tl_state_event *best = NULL;

	for (size_t i = 0; i < st->ntimeline; i++) {
		const struct tl_state_event *e = &st->timeline[i];

		if (e->event != ev)
			continue;
		if (by_seq) {
			if (e->feed == TL_ROLE_CUSTOMER && e->seq == seq)
				return e;
			continue;
		}
		if (!best || e->seq < best->seq)
			best = e;
	}
	return best;
}

static int owes_answer(const struct tl_state *s, const struct tl_stmt *st)
{
	enum tl_procedure p =
	        st->terms < s->nterms ? s->terms[st->terms].procedure : TL_PROC_CONFIRMATION;

	/* A re-issued or closed version is not waiting; under notification,
	 * silence is acceptance. */
	return st->superseded_by == SIZE_MAX && !st->closed && p != TL_PROC_NOTIFICATION;
}

static void judge_claimed(struct tl_late *l, const struct tl_state *cs, size_t i,
                          const struct tl_stmt *wst, uint64_t now_ms)
{
	const struct tl_stmt *st;

	if (!cs || i >= cs->nstmts || cs->stmts[i].seq != wst->seq ||
	    memcmp(cs->stmts[i].leaf, wst->leaf, TL_HASH_LEN) != 0)
		return;
	st = &cs->stmts[i];
	l->claimed_deadline_ms = st->deadline_ms;
	if (st->answered) {
		l->claimed = st->late ? TL_VERDICT_LATE : TL_VERDICT_ON_TIME;
		if (st->late && l->answer.present)
			l->claimed_days_late = tl_days_late(l->answer.claimed_ms, st->deadline_ms);
	} else if (owes_answer(cs, st) && now_ms > st->deadline_ms) {
		l->claimed = TL_VERDICT_LATE;
		l->claimed_days_late = tl_days_late(now_ms, st->deadline_ms);
	}
}

static void judge_witnessed(struct tl_late *l, const struct tl_state *ws, const struct tl_stmt *st,
                            const struct tl_wtime *cus, uint64_t now_ms)
{
	uint64_t d, ev = 0;
	int on = 0, late = 0;

	l->deadline_src = st->deadline_src;
	if (st->deadline_src != TL_TIME_WITNESSED && st->deadline_src != TL_TIME_SEEN_WITNESSED) {
		l->witnessed = st->answered || owes_answer(ws, st) ? TL_VERDICT_NOT_PROVEN
		                                                   : TL_VERDICT_NONE;
		return;
	}
	d = l->deadline_ms = st->deadline_ms;
	if (st->answered) {
		const struct tl_fact *a = &l->answer;

		l->absent_at_ms = cus ? ms(tl_wtime_absent_at(cus, st->answer_seq)) : 0;
		on = a->existed_by_ms && a->existed_by_ms <= d;
		if (l->absent_at_ms && l->absent_at_ms >= d) {
			late = 1;
			ev = l->absent_at_ms;
		}
		if (a->not_before_ms && a->not_before_ms > d) {
			late = 1;
			if (a->not_before_ms > ev)
				ev = a->not_before_ms;
		}
	} else if (owes_answer(ws, st)) {
		/* No answer at all: any quorum view of the customer's feed at or
		 * after the deadline shows it missing. */
		l->absent_at_ms = cus ? ms(tl_wtime_absent_at(cus, ws->size[TL_ROLE_CUSTOMER])) : 0;
		if (l->absent_at_ms && l->absent_at_ms >= d) {
			late = 1;
			ev = l->absent_at_ms;
		} else if (now_ms <= d) {
			l->witnessed = TL_VERDICT_NONE;
			return;
		}
	} else {
		l->witnessed = TL_VERDICT_NONE;
		return;
	}
	/* Cosignature times are whole seconds: a quorum that saw the feed
	 * without the answer at the deadline's second and with it by that same
	 * second is consistent (the answer came within that second), and
	 * exactly at the deadline is on time. */
	if (on && late && ev == d && l->answer.existed_by_ms == d)
		late = 0;
	if (on && late) {
		/* Only when witnesses beyond the quorum's tolerance disagree. */
		l->conflict = 1;
		l->witnessed = TL_VERDICT_NOT_PROVEN;
	} else if (on) {
		l->witnessed = TL_VERDICT_ON_TIME;
	} else if (late) {
		uint64_t days = tl_days_late(ev, d);

		l->witnessed = TL_VERDICT_LATE;
		l->late_by_ms = ev;
		l->days_late = days ? days : 1; /* the answer came strictly after ev >= d */
	} else {
		l->witnessed = TL_VERDICT_NOT_PROVEN;
	}
}

int tl_late_eval(struct tl_late **out, const struct tl_state *ws, const struct tl_state *cs,
                 const struct tl_wtime *sup, const struct tl_wtime *cus, uint64_t now_ms)
{
	struct tl_late *ls;

	if (!out || !ws)
		return TL_EINVAL;
	*out = NULL;
	ls = calloc(ws->nstmts ? ws->nstmts : 1, sizeof *ls);
	if (!ls)
		return TL_ENOMEM;
	for (size_t i = 0; i < ws->nstmts; i++) {
		const struct tl_stmt *st = &ws->stmts[i];
		struct tl_late *l = &ls[i];
		const struct tl_state_event *e;

		l->stmt = i;
		fact(&l->sent, TL_ROLE_SUPPLIER, st->seq, st->claimed_ms, sup);
		if (st->seen) {
			e = find_event(st, TL_EV_SEEN, 1, st->seen_seq);
			fact(&l->seen, TL_ROLE_CUSTOMER, st->seen_seq, e ? e->claimed_ms : 0, cus);
		}
		if (st->viewed && (e = find_event(st, TL_EV_VIEWED, 0, 0)) != NULL)
			fact(&l->viewed, e->feed, e->seq, e->claimed_ms, cus);
		l->answer_kind = st->answered;
		if (st->answered) {
			e = find_event(st, st->answered == 1 ? TL_EV_CONFIRMED : TL_EV_DISPUTED, 1,
			               st->answer_seq);
			fact(&l->answer, TL_ROLE_CUSTOMER, st->answer_seq, e ? e->claimed_ms : 0,
			     cus);
		}
		judge_claimed(l, cs, i, st, now_ms);
		judge_witnessed(l, ws, st, cus, now_ms);
	}
	*out = ls;
	return 0;
}

const char *tl_verdict_name(enum tl_verdict v)
{
	switch (v) {
	case TL_VERDICT_NONE:
		return "none";
	case TL_VERDICT_ON_TIME:
		return "on time";
	case TL_VERDICT_LATE:
		return "late";
	case TL_VERDICT_NOT_PROVEN:
		return "not proven";
	}
	return "?";
}

const char *tl_time_src_name(enum tl_time_src s)
{
	switch (s) {
	case TL_TIME_CLAIMED:
		return "claimed";
	case TL_TIME_SEEN_CLAIMED:
		return "seen receipt, claimed";
	case TL_TIME_SEEN_WITNESSED:
		return "seen receipt, witnessed";
	case TL_TIME_WITNESSED:
		return "witnessed";
	}
	return "?";
}
