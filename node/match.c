/*
 * match.c — a supplier's statement against the customer's ledger. The rules,
 * their order, the bounds and the determinism contract are in match.h.
 *
 * Shape: both inputs are copied and sorted canonically; each side then gets
 * two index orders. "byk" (family, key, amount, date, index) lines up equal
 * document numbers for rule a as a merge join. "av" (family, date, amount,
 * doc, index) holds the lines rule a left free; rules b and c binary-search
 * it for a (family, date, amount) and walk it outwards. "am" holds the same
 * lines by (family, amount, date): it tells rule b how near a line's
 * nearest possible partner is, so that a line is tried only at distances
 * where it can succeed. Both skip consumed positions through union-find
 * arrays, so no walk revisits a consumed line.
 */
#include "match.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE      SIZE_MAX
#define CMP(a, b) (((a) > (b)) - ((a) < (b)))

enum { FAM_CHARGE, FAM_CREDIT, FAM_PAYMENT, FAM_ADJUST };

enum {
	ST_FREE,    /* not consumed yet */
	ST_MATCHED, /* in a group */
	ST_DIFFERS, /* in a differs pair */
	ST_HELD,    /* its number is on the other side, no partner left: rule a only */
	ST_OUT,     /* ledger line of another period: not reported */
};

struct mline {
	char key[TL_MATCH_DOC_MAX + 1]; /* tl_match_doc_key */
	uint8_t fam;
	uint8_t st;
	uint8_t dup; /* statement: a repeat of a number (reason duplicate) */
};

/* Positions of the free lines in one order, with consumed positions skipped
 * through two union-find arrays: nx[p] leads to the first free position
 * >= p (n = none), pv[p + 1] to the last free position <= p (slot 0 =
 * none). Consumed lines are never visited again by any walk. */
struct order {
	size_t *ix;  /* position -> line */
	size_t *pos; /* line -> position, NONE if absent or consumed */
	size_t *nx, *pv;
	size_t n;
};

struct side {
	const struct tl_match_line *ln; /* the report's canonical copy */
	struct mline *m;
	size_t n;
	size_t *byk; /* lines with a key, (fam, key, amount, date, idx) */
	size_t nk;
	struct order av; /* free after rule a, (fam, date, amount, doc, idx) */
	struct order am; /* the same lines, (fam, amount, date, doc, idx) */
	int32_t *nd;     /* rule b: no partner is closer than nd days */
};

struct ctx {
	struct tl_match_report *r;
	const struct tl_match_opts *o;
	struct side s, l;
	size_t pool_used;
	long steps_run;
};

/* For qsort, which passes no context: each element carries its own. */
struct ent {
	const struct tl_match_line *ln;
	const struct mline *m;
	size_t i;
};

static const char *const type_names[] = {
        NULL, "invoice", "credit_note", "debit_note", "payment", "adjustment",
};
static const char *const reason_names[] = {
        NULL,        "price", "quantity", "quality", "not_received", "payment_not_recorded",
        "duplicate", "tax",   "fx",       "cut_off", "other",
};
static const char *const rule_names[] = {
        NULL, "doc", "amount", "sum_of_ledger", "sum_of_statement",
};

static int seterr(char *err, size_t cap, int rc, const char *fmt, ...) TL_PRINTF(4, 5);
static int seterr(char *err, size_t cap, int rc, const char *fmt, ...)
{
	va_list ap;
	if (err && cap) {
		va_start(ap, fmt);
		vsnprintf(err, cap, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int64_t abs64(int64_t v)
{
	return v < 0 ? -v : v; /* callers stay within TL_MATCH_*_MAX */
}

/* ------------------------------------------------------------- names, dates, keys */

const char *tl_match_type_name(enum tl_match_type t)
{
	if ((int)t < TL_MATCH_INVOICE || (int)t > TL_MATCH_ADJUSTMENT)
		return "unknown";
	return type_names[t];
}

enum tl_match_type tl_match_type_parse(const char *s)
{
	for (int t = TL_MATCH_INVOICE; s && t <= TL_MATCH_ADJUSTMENT; t++)
		if (strcmp(s, type_names[t]) == 0)
			return (enum tl_match_type)t;
	return (enum tl_match_type)0;
}

const char *tl_match_reason_name(enum tl_match_reason r)
{
	if ((int)r < TL_MATCH_R_PRICE || (int)r > TL_MATCH_R_OTHER)
		return "unknown";
	return reason_names[r];
}

const char *tl_match_rule_name(enum tl_match_rule r)
{
	if ((int)r < TL_MATCH_BY_DOC || (int)r > TL_MATCH_BY_SUM_STATEMENT)
		return "unknown";
	return rule_names[r];
}

static int fam_of(enum tl_match_type t)
{
	switch (t) {
	case TL_MATCH_INVOICE:
	case TL_MATCH_DEBIT_NOTE:
		return FAM_CHARGE;
	case TL_MATCH_CREDIT_NOTE:
		return FAM_CREDIT;
	case TL_MATCH_PAYMENT:
		return FAM_PAYMENT;
	case TL_MATCH_ADJUSTMENT:
		break;
	}
	return FAM_ADJUST;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's method). */
static int32_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int era = (y >= 0 ? y : y - 399) / 400;
	int yoe = y - era * 400;
	int doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int32_t)(era * 146097 + doe - 719468);
}

int tl_match_date_parse(const char *s, int32_t *days)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int v[3] = {0, 0, 0};
	static const int at[3] = {0, 5, 8}, len[3] = {4, 2, 2};
	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return TL_EFORMAT;
	for (int f = 0; f < 3; f++)
		for (int k = 0; k < len[f]; k++) {
			char c = s[at[f] + k];
			if (c < '0' || c > '9')
				return TL_EFORMAT;
			v[f] = v[f] * 10 + (c - '0');
		}
	int y = v[0], m = v[1], d = v[2];
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return TL_EFORMAT;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[m - 1] + (m == 2 && leap))
		return TL_EFORMAT;
	*days = days_from_civil(y, m, d);
	return 0;
}

/* Writes v as exactly `width` decimal digits (v is known to fit). */
static void put_digits(char *out, long v, int width)
{
	for (int k = width; k-- > 0; v /= 10)
		out[k] = (char)('0' + v % 10);
}

void tl_match_date_format(char out[11], int32_t days)
{
	if (days < TL_MATCH_DATE_MIN || days > TL_MATCH_DATE_MAX)
		days = 0; /* callers pass validated dates; never print garbage */
	long z = (long)days + 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	long doe = z - era * 146097;
	long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long mp = (5 * doy + 2) / 153;
	long d = doy - (153 * mp + 2) / 5 + 1;
	long m = mp < 10 ? mp + 3 : mp - 9;
	long y = yoe + era * 400 + (m <= 2);
	put_digits(out, y, 4);
	out[4] = '-';
	put_digits(out + 5, m, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = 0;
}

size_t tl_match_doc_key(char out[TL_MATCH_DOC_MAX + 1], const char *doc)
{
	size_t o = 0;
	int in_run = 0, nonzero = 0;
	/* Never longer than the bytes consumed: a held-back zero is written
	 * only for zeros already read. */
	for (const unsigned char *p = (const unsigned char *)doc; *p && o < TL_MATCH_DOC_MAX; p++) {
		unsigned c = *p;
		if (c >= '0' && c <= '9') {
			if (!in_run) {
				in_run = 1;
				nonzero = 0;
			}
			if (c == '0' && !nonzero)
				continue;
			nonzero = 1;
			out[o++] = (char)c;
			continue;
		}
		if (in_run && !nonzero)
			out[o++] = '0'; /* a run of zeros keeps one */
		in_run = 0;
		if (c == ' ' || c == '\t' || c == '-' || c == '/')
			continue; /* after ending the run: "2026-0042" is 2026, 42 */
		if (o == TL_MATCH_DOC_MAX)
			break;
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		out[o++] = (char)c;
	}
	if (in_run && !nonzero && o < TL_MATCH_DOC_MAX)
		out[o++] = '0';
	out[o] = 0;
	return o;
}

/* ------------------------------------------------------------- validation */

void tl_match_opts_init(struct tl_match_opts *o)
{
	memset(o, 0, sizeof *o);
	o->tolerance = 0;
	o->window = 3;
	o->many_to_one = 1;
}

static int opts_check(const struct tl_match_opts *o, char *err, size_t cap)
{
	if (o->tolerance < 0 || o->tolerance > TL_MATCH_AMOUNT_MAX)
		return seterr(err, cap, TL_EINVAL, "tolerance %lld is out of range 0..%lld",
		              (long long)o->tolerance, (long long)TL_MATCH_AMOUNT_MAX);
	if (o->window < 0 || o->window > TL_MATCH_WINDOW_MAX)
		return seterr(err, cap, TL_EINVAL, "date window %ld days is out of range 0..%d",
		              (long)o->window, TL_MATCH_WINDOW_MAX);
	if (o->has_period && (o->period_from < TL_MATCH_DATE_MIN ||
	                      o->period_to > TL_MATCH_DATE_MAX || o->period_from > o->period_to))
		return seterr(err, cap, TL_EINVAL, "the period must run forward within 0001..9999");
	if (abs64(o->stmt_opening) > TL_MATCH_OPENING_MAX ||
	    abs64(o->ledger_opening) > TL_MATCH_OPENING_MAX)
		return seterr(err, cap, TL_EINVAL,
		              "an opening balance is out of range (|x| <= %lld)",
		              (long long)TL_MATCH_OPENING_MAX);
	return 0;
}

/* NULL if the line is acceptable, else what is wrong with it. */
static const char *line_problem(const struct tl_match_line *l)
{
	size_t len = strnlen(l->doc, sizeof l->doc);
	if ((int)l->type < TL_MATCH_INVOICE || (int)l->type > TL_MATCH_ADJUSTMENT)
		return "unknown type";
	if (l->date < TL_MATCH_DATE_MIN || l->date > TL_MATCH_DATE_MAX)
		return "date out of range (0001-01-01..9999-12-31)";
	if (l->amount < -TL_MATCH_AMOUNT_MAX || l->amount > TL_MATCH_AMOUNT_MAX)
		return "amount out of range (|amount| <= 10^12 minor units)";
	if (len == sizeof l->doc)
		return "document number not NUL-terminated within 63 bytes";
	if (!tl_utf8_valid((const uint8_t *)l->doc, len))
		return "document number is not valid UTF-8";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)l->doc[i] < 0x20 || l->doc[i] == 0x7f)
			return "document number holds a control character";
	return NULL;
}

static int lines_check(const struct tl_match_line *v, size_t n, const char *what, char *err,
                       size_t cap)
{
	for (size_t i = 0; i < n; i++) {
		const char *why = line_problem(&v[i]);
		if (why)
			return seterr(err, cap, TL_EINVAL, "%s line %zu (ref %lu): %s", what, i + 1,
			              (unsigned long)v[i].ref, why);
	}
	return 0;
}

/* ------------------------------------------------------------- orders */

static int cmp_line(const void *a, const void *b)
{
	const struct tl_match_line *x = a, *y = b;
	int c;
	if ((c = CMP(x->date, y->date)) != 0)
		return c;
	if ((c = CMP((int)x->type, (int)y->type)) != 0)
		return c;
	if ((c = strcmp(x->doc, y->doc)) != 0)
		return c;
	if ((c = CMP(x->amount, y->amount)) != 0)
		return c;
	return CMP(x->ref, y->ref);
}

static int cmp_bykey(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	int c;
	if ((c = CMP(x->m->fam, y->m->fam)) != 0)
		return c;
	if ((c = strcmp(x->m->key, y->m->key)) != 0)
		return c;
	if ((c = CMP(x->ln->amount, y->ln->amount)) != 0)
		return c;
	if ((c = CMP(x->ln->date, y->ln->date)) != 0)
		return c;
	return CMP(x->i, y->i);
}

static int cmp_av(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	int c;
	if ((c = CMP(x->m->fam, y->m->fam)) != 0)
		return c;
	if ((c = CMP(x->ln->date, y->ln->date)) != 0)
		return c;
	if ((c = CMP(x->ln->amount, y->ln->amount)) != 0)
		return c;
	if ((c = strcmp(x->ln->doc, y->ln->doc)) != 0)
		return c;
	return CMP(x->i, y->i);
}

static int cmp_am(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	int c;
	if ((c = CMP(x->m->fam, y->m->fam)) != 0)
		return c;
	if ((c = CMP(x->ln->amount, y->ln->amount)) != 0)
		return c;
	if ((c = CMP(x->ln->date, y->ln->date)) != 0)
		return c;
	if ((c = strcmp(x->ln->doc, y->ln->doc)) != 0)
		return c;
	return CMP(x->i, y->i);
}

/* Sum candidates: largest magnitude first, then date, number, index. */
static int cmp_cand(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	int c;
	if ((c = CMP(abs64(y->ln->amount), abs64(x->ln->amount))) != 0)
		return c;
	if ((c = CMP(x->ln->date, y->ln->date)) != 0)
		return c;
	if ((c = strcmp(x->ln->doc, y->ln->doc)) != 0)
		return c;
	return CMP(x->i, y->i);
}

static int cmp_size(const void *a, const void *b)
{
	return CMP(*(const size_t *)a, *(const size_t *)b);
}

static int cmp_group(const void *a, const void *b)
{
	const struct tl_match_group *x = a, *y = b;
	return CMP(x->stmt[0], y->stmt[0]);
}

static int cmp_diff(const void *a, const void *b)
{
	const struct tl_match_diff *x = a, *y = b;
	return CMP(x->stmt, y->stmt);
}

/* ------------------------------------------------------------- sides */

static int order_alloc(struct order *o, size_t n)
{
	o->ix = calloc(n + 1, sizeof *o->ix);
	o->pos = calloc(n + 1, sizeof *o->pos);
	o->nx = calloc(n + 1, sizeof *o->nx);
	o->pv = calloc(n + 1, sizeof *o->pv);
	return o->ix && o->pos && o->nx && o->pv ? 0 : TL_ENOMEM;
}

static void order_release(struct order *o)
{
	free(o->ix);
	free(o->pos);
	free(o->nx);
	free(o->pv);
}

static int side_init(struct side *sd, const struct tl_match_line *ln, size_t n, struct ent *tmp)
{
	size_t k = 0;
	sd->ln = ln;
	sd->n = n;
	sd->m = calloc(n + 1, sizeof *sd->m);
	sd->byk = calloc(n + 1, sizeof *sd->byk);
	sd->nd = calloc(n + 1, sizeof *sd->nd);
	if (!sd->m || !sd->byk || !sd->nd || order_alloc(&sd->av, n) != 0 ||
	    order_alloc(&sd->am, n) != 0)
		return TL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		sd->m[i].fam = (uint8_t)fam_of(ln[i].type);
		if (tl_match_doc_key(sd->m[i].key, ln[i].doc) > 0)
			tmp[k++] = (struct ent){&ln[i], &sd->m[i], i};
	}
	qsort(tmp, k, sizeof *tmp, cmp_bykey);
	for (size_t i = 0; i < k; i++)
		sd->byk[i] = tmp[i].i;
	sd->nk = k;
	return 0;
}

static void side_release(struct side *sd)
{
	free(sd->m);
	free(sd->byk);
	free(sd->nd);
	order_release(&sd->av);
	order_release(&sd->am);
}

/* Indexes the lines still free in order cmp, for rules b and c. */
static void order_build(struct side *sd, struct order *o, struct ent *tmp,
                        int (*cmp)(const void *, const void *))
{
	size_t k = 0;
	for (size_t i = 0; i < sd->n; i++) {
		o->pos[i] = NONE;
		if (sd->m[i].st == ST_FREE)
			tmp[k++] = (struct ent){&sd->ln[i], &sd->m[i], i};
	}
	qsort(tmp, k, sizeof *tmp, cmp);
	for (size_t p = 0; p < k; p++) {
		o->ix[p] = tmp[p].i;
		o->pos[tmp[p].i] = p;
	}
	o->n = k;
	for (size_t p = 0; p <= k; p++)
		o->nx[p] = o->pv[p] = p;
}

static size_t uf_find(size_t *a, size_t p)
{
	while (a[p] != p) {
		a[p] = a[a[p]];
		p = a[p];
	}
	return p;
}

/* First free position >= p, or o->n. */
static size_t next_free(struct order *o, size_t p)
{
	return uf_find(o->nx, p);
}

/* Last free position < p, or NONE. */
static size_t prev_free(struct order *o, size_t p)
{
	size_t q = uf_find(o->pv, p);
	return q ? q - 1 : NONE;
}

static void order_remove(struct order *o, size_t line)
{
	size_t p = o->pos[line];
	if (p == NONE)
		return;
	o->nx[p] = p + 1;
	o->pv[p + 1] = p;
	o->pos[line] = NONE;
}

/* First position in av not before (fam, date, amount). */
static size_t av_lower(const struct side *sd, int fam, int32_t date, int64_t amount)
{
	size_t lo = 0, hi = sd->av.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, i = sd->av.ix[mid];
		int f = sd->m[i].fam, less;
		if (f != fam)
			less = f < fam;
		else if (sd->ln[i].date != date)
			less = sd->ln[i].date < date;
		else
			less = sd->ln[i].amount < amount;
		if (less)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First position in am not before (fam, amount, date). */
static size_t am_lower(const struct side *sd, int fam, int64_t amount, int32_t date)
{
	size_t lo = 0, hi = sd->am.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, i = sd->am.ix[mid];
		int f = sd->m[i].fam, less;
		if (f != fam)
			less = f < fam;
		else if (sd->ln[i].amount != amount)
			less = sd->ln[i].amount < amount;
		else
			less = sd->ln[i].date < date;
		if (less)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int av_at(const struct side *sd, size_t p, int fam, int32_t date)
{
	size_t i = sd->av.ix[p];
	return sd->m[i].fam == fam && sd->ln[i].date == date;
}

static int am_at(const struct side *sd, size_t p, int fam, int64_t amount)
{
	size_t i = sd->am.ix[p];
	return sd->m[i].fam == fam && sd->ln[i].amount == amount;
}

/* ------------------------------------------------------------- results */

static void consume(struct side *sd, size_t line, int st)
{
	sd->m[line].st = (uint8_t)st;
	order_remove(&sd->av, line);
	order_remove(&sd->am, line);
}

static void add_group(struct ctx *x, enum tl_match_rule rule, const size_t *si, size_t ns,
                      const size_t *li, size_t nl)
{
	struct tl_match_report *r = x->r;
	struct tl_match_group *g = &r->matched[r->n_matched++];
	size_t *p = r->pool + x->pool_used;
	x->pool_used += ns + nl;
	memcpy(p, si, ns * sizeof *p);
	memcpy(p + ns, li, nl * sizeof *p);
	qsort(p, ns, sizeof *p, cmp_size);
	qsort(p + ns, nl, sizeof *p, cmp_size);
	*g = (struct tl_match_group){rule, p, ns, p + ns, nl, 0, 0};
	for (size_t k = 0; k < ns; k++) {
		g->stmt_sum += x->s.ln[p[k]].amount;
		consume(&x->s, p[k], ST_MATCHED);
	}
	for (size_t k = 0; k < nl; k++) {
		g->ledger_sum += x->l.ln[p[ns + k]].amount;
		consume(&x->l, p[ns + k], ST_MATCHED);
	}
}

static void add_pair(struct ctx *x, enum tl_match_rule rule, size_t s, size_t l)
{
	add_group(x, rule, &s, 1, &l, 1);
}

static void add_diff(struct ctx *x, size_t s, size_t l)
{
	struct tl_match_diff *d = &x->r->differs[x->r->n_differs++];
	d->stmt = s;
	d->ledger = l;
	d->stmt_amount = x->s.ln[s].amount;
	d->ledger_amount = x->l.ln[l].amount;
	d->difference = d->stmt_amount - d->ledger_amount;
	consume(&x->s, s, ST_DIFFERS);
	consume(&x->l, l, ST_DIFFERS);
}

/* ------------------------------------------------------------- rule a */

static int same_key(const struct side *a, size_t i, const struct side *b, size_t j)
{
	return a->m[i].fam == b->m[j].fam && strcmp(a->m[i].key, b->m[j].key) == 0;
}

static size_t group_end(const struct side *sd, size_t k)
{
	size_t e = k + 1;
	while (e < sd->nk && same_key(sd, sd->byk[k], sd, sd->byk[e]))
		e++;
	return e;
}

/* One number, lines [i, ie) of the statement and [j, je) of the ledger, each
 * in amount order: equal amounts pair first, then amounts within the
 * tolerance (two pointers, optimal for intervals), then what is left pairs
 * up in amount order as differs; any excess is held. */
static void doc_group(struct ctx *x, size_t i, size_t ie, size_t j, size_t je)
{
	struct side *S = &x->s, *L = &x->l;
	int64_t tol = x->o->tolerance;
	for (int pass = 0; pass < (tol > 0 ? 2 : 1); pass++) {
		int64_t t = pass ? tol : 0;
		size_t p = i, q = j;
		while (p < ie && q < je) {
			size_t a = S->byk[p], b = L->byk[q];
			if (S->m[a].st != ST_FREE) {
				p++;
				continue;
			}
			if (L->m[b].st != ST_FREE) {
				q++;
				continue;
			}
			int64_t d = S->ln[a].amount - L->ln[b].amount;
			if (d >= -t && d <= t) {
				add_pair(x, TL_MATCH_BY_DOC, a, b);
				p++;
				q++;
			} else if (d < 0) {
				p++;
			} else {
				q++;
			}
		}
	}
	size_t p = i, q = j;
	for (;;) {
		while (p < ie && S->m[S->byk[p]].st != ST_FREE)
			p++;
		while (q < je && L->m[L->byk[q]].st != ST_FREE)
			q++;
		if (p == ie || q == je)
			break;
		add_diff(x, S->byk[p++], L->byk[q++]);
	}
	for (; p < ie; p++)
		if (S->m[S->byk[p]].st == ST_FREE)
			S->m[S->byk[p]].st = ST_HELD;
	for (; q < je; q++)
		if (L->m[L->byk[q]].st == ST_FREE)
			L->m[L->byk[q]].st = ST_HELD;
}

static void rule_doc(struct ctx *x)
{
	struct side *S = &x->s, *L = &x->l;
	size_t i = 0, j = 0;
	while (i < S->nk && j < L->nk) {
		size_t a = S->byk[i], b = L->byk[j];
		int c = CMP(S->m[a].fam, L->m[b].fam);
		if (c == 0)
			c = strcmp(S->m[a].key, L->m[b].key);
		if (c < 0) {
			i = group_end(S, i);
		} else if (c > 0) {
			j = group_end(L, j);
		} else {
			size_t ie = group_end(S, i), je = group_end(L, j);
			doc_group(x, i, ie, j, je);
			i = ie;
			j = je;
		}
	}
}

/* ------------------------------------------------------------- rule b */

/* The free line of sd dated `date`, same family, whose amount is closest to
 * amt within tol (on a tie the one at or above amt; among equal amounts the
 * first in av order). *dist receives |difference|. */
static size_t closest_at(struct side *sd, int fam, int32_t date, int64_t amt, int64_t tol,
                         int64_t *dist)
{
	struct order *o = &sd->av;
	size_t lo = av_lower(sd, fam, date, amt), best = NONE;
	size_t q = next_free(o, lo);
	if (q < o->n && av_at(sd, q, fam, date) && sd->ln[o->ix[q]].amount - amt <= tol) {
		best = o->ix[q];
		*dist = sd->ln[best].amount - amt;
	}
	if (tol > 0) {
		size_t r = prev_free(o, lo);
		if (r != NONE && av_at(sd, r, fam, date)) {
			int64_t ra = sd->ln[o->ix[r]].amount;
			if (amt - ra <= tol && (best == NONE || amt - ra < *dist)) {
				best = o->ix[next_free(o, av_lower(sd, fam, date, ra))];
				*dist = amt - ra;
			}
		}
	}
	return best;
}

/*
 * A lower bound on the days between `date` and the nearest free line of sd
 * of family fam whose amount is within tol of amt: exact when at most
 * NEAR_VALUES distinct amounts lie within the tolerance (always, when tol
 * is 0), else 0. w + 1 means none within the window. It lets rule b skip a
 * line at every distance where it cannot succeed; consuming lines only
 * moves the true distance up, so an old bound stays a bound.
 */
#define NEAR_VALUES 32
static int32_t nearest(struct side *sd, int fam, int32_t date, int64_t amt, int64_t tol, int32_t w)
{
	struct order *o = &sd->am;
	int32_t best = w + 1;
	size_t q = next_free(o, am_lower(sd, fam, amt - tol, INT32_MIN));
	for (int values = 0; q < o->n; values++) {
		size_t i = o->ix[q], lb, r;
		int64_t v = sd->ln[i].amount;
		if (sd->m[i].fam != fam || v > amt + tol)
			break;
		if (values == NEAR_VALUES)
			return 0;
		lb = am_lower(sd, fam, v, date);
		r = next_free(o, lb);
		if (r < o->n && am_at(sd, r, fam, v) && sd->ln[o->ix[r]].date - date < best)
			best = sd->ln[o->ix[r]].date - date;
		r = prev_free(o, lb);
		if (r != NONE && am_at(sd, r, fam, v) && date - sd->ln[o->ix[r]].date < best)
			best = date - sd->ln[o->ix[r]].date;
		if (best == 0)
			break;
		q = next_free(o, am_lower(sd, fam, v + 1, INT32_MIN));
	}
	return best;
}

/* The tie-break between equally good candidates: document number, then index. */
static int doc_before(const struct tl_match_line *a, size_t ai, const struct tl_match_line *b,
                      size_t bi)
{
	int c = strcmp(a->doc, b->doc);
	return c ? c < 0 : ai < bi;
}

/* Pass d pairs every line that has a partner d days away, in av order;
 * lines whose bound says "not yet" are skipped, which changes nothing but
 * the time taken. */
static void rule_amount(struct ctx *x)
{
	struct side *S = &x->s, *L = &x->l;
	int64_t tol = x->o->tolerance;
	int32_t w = x->o->window;
	for (size_t p = 0; p < S->av.n; p++) {
		size_t si = S->av.ix[p];
		S->nd[si] = nearest(L, S->m[si].fam, S->ln[si].date, S->ln[si].amount, tol, w);
	}
	for (int32_t d = 0; d <= w; d++) {
		for (size_t p = 0; p < S->av.n; p++) {
			size_t si = S->av.ix[p], best, later;
			int64_t d1 = 0, d2 = 0;
			if (S->m[si].st != ST_FREE || S->nd[si] > d)
				continue;
			const struct tl_match_line *sl = &S->ln[si];
			int fam = S->m[si].fam;
			best = closest_at(L, fam, sl->date - d, sl->amount, tol, &d1);
			if (d > 0) {
				later = closest_at(L, fam, sl->date + d, sl->amount, tol, &d2);
				if (later != NONE && (best == NONE || d2 < d1 ||
				                      (d2 == d1 && doc_before(&L->ln[later], later,
				                                              &L->ln[best], best))))
					best = later;
			}
			if (best != NONE) {
				add_pair(x, TL_MATCH_BY_AMOUNT, si, best);
				continue;
			}
			S->nd[si] = nearest(L, fam, sl->date, sl->amount, tol, w);
			if (S->nd[si] <= d)
				S->nd[si] = d + 1;
		}
	}
}

/* ------------------------------------------------------------- rule c */

struct subset {
	int64_t a[TL_MATCH_SUBSET_MAX]; /* magnitudes, non-increasing */
	int64_t suf[TL_MATCH_SUBSET_MAX + 1];
	size_t n;
	int64_t lo, hi; /* accepted sums */
	size_t pick[TL_MATCH_SUBSET_MAX];
	size_t npick;
	long steps, budget;
};

/* 1 found (pick[0..npick)), 0 none, -1 budget spent. Equal magnitudes are
 * interchangeable, so each level tries a value once: the first of a run. */
static int subset_dfs(struct subset *s, size_t i, int64_t sum, size_t k)
{
	if (++s->steps > s->budget)
		return -1;
	if (k >= 2 && sum >= s->lo && sum <= s->hi) {
		s->npick = k;
		return 1;
	}
	for (size_t j = i; j < s->n; j++) {
		if (j > i && s->a[j] == s->a[j - 1])
			continue;
		if (sum + s->suf[j] < s->lo)
			break;
		if (sum + s->a[j] > s->hi)
			continue;
		s->pick[k] = j;
		int rc = subset_dfs(s, j + 1, sum + s->a[j], k + 1);
		if (rc)
			return rc;
	}
	return 0;
}

/* Up to TL_MATCH_SUBSET_MAX free lines of `many` usable in a sum for line t
 * of `one`: same family and sign, magnitude not above |t| + tol, dated
 * within the window; the closest dates first (earlier on a tie). */
static size_t gather(struct ctx *x, struct side *one, size_t t, struct side *many,
                     struct ent c[TL_MATCH_SUBSET_MAX], int64_t *total)
{
	const struct tl_match_line *tl = &one->ln[t];
	int fam = one->m[t].fam, neg = tl->amount < 0;
	int32_t w = x->o->window;
	int64_t cap = abs64(tl->amount) + x->o->tolerance;
	size_t start = av_lower(many, fam, tl->date, INT64_MIN);
	struct order *o = &many->av;
	size_t rgt = next_free(o, start), lft = prev_free(o, start);
	size_t nc = 0;
	*total = 0;
	for (size_t scanned = 0; nc < TL_MATCH_SUBSET_MAX && scanned < TL_MATCH_SCAN_MAX;
	     scanned++) {
		int32_t dr = 0, dl = 0;
		int rv = 0, lv = 0;
		size_t take, li;
		if (rgt < o->n && many->m[o->ix[rgt]].fam == fam) {
			dr = many->ln[o->ix[rgt]].date - tl->date;
			rv = dr <= w;
		}
		if (lft != NONE && many->m[o->ix[lft]].fam == fam) {
			dl = tl->date - many->ln[o->ix[lft]].date;
			lv = dl <= w;
		}
		if (!rv && !lv)
			break;
		if (rv && (!lv || dr < dl)) {
			take = rgt;
			rgt = next_free(o, rgt + 1);
		} else {
			take = lft;
			lft = prev_free(o, lft);
		}
		li = o->ix[take];
		int64_t a = many->ln[li].amount;
		if (a == 0 || (a < 0) != neg || abs64(a) > cap)
			continue;
		c[nc++] = (struct ent){&many->ln[li], &many->m[li], li};
		*total += abs64(a);
	}
	return nc;
}

static void rule_sum(struct ctx *x, struct side *one, struct side *many, enum tl_match_rule rule)
{
	struct ent c[TL_MATCH_SUBSET_MAX];
	struct subset s;
	size_t idx[TL_MATCH_SUBSET_MAX];
	int64_t tol = x->o->tolerance, total;
	for (size_t p = 0; p < one->av.n; p++) {
		size_t t = one->av.ix[p], nc;
		if (one->m[t].st != ST_FREE || one->ln[t].amount == 0)
			continue;
		int64_t want = abs64(one->ln[t].amount);
		nc = gather(x, one, t, many, c, &total);
		if (nc < 2 || total < want - tol)
			continue;
		if (x->steps_run >= TL_MATCH_STEPS_RUN) {
			x->r->n_search_truncated++;
			continue;
		}
		qsort(c, nc, sizeof *c, cmp_cand);
		s.n = nc;
		s.suf[nc] = 0;
		for (size_t k = nc; k-- > 0;) {
			s.a[k] = abs64(c[k].ln->amount);
			s.suf[k] = s.suf[k + 1] + s.a[k];
		}
		s.lo = want - tol;
		s.hi = want + tol;
		s.npick = 0;
		s.steps = 0;
		s.budget = TL_MATCH_STEPS_RUN - x->steps_run;
		if (s.budget > TL_MATCH_STEPS_LINE)
			s.budget = TL_MATCH_STEPS_LINE;
		int rc = subset_dfs(&s, 0, 0, 0);
		x->steps_run += s.steps;
		if (rc < 0)
			x->r->n_search_truncated++;
		if (rc <= 0)
			continue;
		for (size_t k = 0; k < s.npick; k++)
			idx[k] = c[s.pick[k]].i;
		if (rule == TL_MATCH_BY_SUM_LEDGER)
			add_group(x, rule, &t, 1, idx, s.npick);
		else
			add_group(x, rule, idx, s.npick, &t, 1);
	}
}

/* ------------------------------------------------------------- rule d, totals */

/* A statement number seen more than once: every unconsumed copy is a
 * duplicate when some copy was matched; otherwise all but the first. */
static void mark_dups(struct ctx *x)
{
	struct side *S = &x->s;
	for (size_t i = 0, e; i < S->nk; i = e) {
		e = group_end(S, i);
		if (e - i < 2)
			continue;
		int used = 0;
		size_t first = NONE;
		for (size_t k = i; k < e; k++) {
			size_t ln = S->byk[k];
			if (S->m[ln].st == ST_MATCHED || S->m[ln].st == ST_DIFFERS)
				used = 1;
			else if (first == NONE || ln < first)
				first = ln;
		}
		for (size_t k = i; k < e; k++) {
			size_t ln = S->byk[k];
			int st = S->m[ln].st;
			if ((st == ST_FREE || st == ST_HELD) && (used || ln != first))
				S->m[ln].dup = 1;
		}
	}
}

static int outside(const struct tl_match_opts *o, int32_t date)
{
	return o->has_period && (date < o->period_from || date > o->period_to);
}

static enum tl_match_reason stmt_reason(const struct ctx *x, size_t i)
{
	if (x->s.m[i].dup)
		return TL_MATCH_R_DUPLICATE;
	if (outside(x->o, x->s.ln[i].date))
		return TL_MATCH_R_CUT_OFF;
	if (x->s.m[i].fam == FAM_CHARGE)
		return TL_MATCH_R_NOT_RECEIVED;
	return TL_MATCH_R_OTHER;
}

static enum tl_match_reason ledger_reason(const struct ctx *x, size_t i)
{
	if (outside(x->o, x->l.ln[i].date))
		return TL_MATCH_R_CUT_OFF;
	if (x->l.ln[i].type == TL_MATCH_PAYMENT)
		return TL_MATCH_R_PAYMENT_NOT_RECORDED;
	return TL_MATCH_R_OTHER;
}

static void add_dispute(struct tl_match_report *r, const char *doc, int64_t theirs, int64_t ours,
                        enum tl_match_reason why, size_t s, size_t l)
{
	r->dispute[r->n_dispute++] = (struct tl_match_dispute){doc, theirs, ours, why, s, l};
}

static void finish(struct ctx *x)
{
	struct tl_match_report *r = x->r;
	struct tl_match_totals *t = &r->totals;
	const struct tl_match_opts *o = x->o;

	mark_dups(x);
	for (size_t i = 0; i < x->s.n; i++) {
		int st = x->s.m[i].st;
		t->stmt_sum += x->s.ln[i].amount;
		if (st == ST_FREE || st == ST_HELD) {
			r->missing_in_ledger[r->n_missing_in_ledger++] =
			        (struct tl_match_missing){i, stmt_reason(x, i)};
			t->missing_in_ledger_sum += x->s.ln[i].amount;
		}
	}
	for (size_t i = 0; i < x->l.n; i++) {
		struct mline *m = &x->l.m[i];
		int32_t d = x->l.ln[i].date;
		if (m->st == ST_FREE || m->st == ST_HELD) {
			if (o->has_period &&
			    (d < o->period_from - o->window || d > o->period_to + o->window)) {
				m->st = ST_OUT;
				r->n_ledger_out_of_period++;
				continue;
			}
			r->missing_in_stmt[r->n_missing_in_stmt++] =
			        (struct tl_match_missing){i, ledger_reason(x, i)};
			t->missing_in_stmt_sum += x->l.ln[i].amount;
		}
		t->ledger_sum += x->l.ln[i].amount;
	}
	for (size_t k = 0; k < r->n_matched; k++) {
		t->matched_stmt_lines += r->matched[k].n_stmt;
		t->matched_ledger_lines += r->matched[k].n_ledger;
		t->matched_stmt_sum += r->matched[k].stmt_sum;
		t->matched_ledger_sum += r->matched[k].ledger_sum;
	}
	if (r->n_matched)
		qsort(r->matched, r->n_matched, sizeof *r->matched, cmp_group);
	if (r->n_differs)
		qsort(r->differs, r->n_differs, sizeof *r->differs, cmp_diff);
	for (size_t k = 0; k < r->n_differs; k++)
		t->differs_sum += r->differs[k].difference;
	t->stmt_closing = o->stmt_opening + t->stmt_sum;
	t->ledger_closing = o->ledger_opening + t->ledger_sum;
	t->difference = t->stmt_closing - t->ledger_closing;
	t->balanced = t->difference == 0;

	for (size_t k = 0; k < r->n_differs; k++) {
		const struct tl_match_diff *d = &r->differs[k];
		add_dispute(r, r->stmt[d->stmt].doc, d->stmt_amount, d->ledger_amount,
		            TL_MATCH_R_PRICE, d->stmt, d->ledger);
	}
	for (size_t k = 0; k < r->n_missing_in_ledger; k++) {
		const struct tl_match_missing *m = &r->missing_in_ledger[k];
		add_dispute(r, r->stmt[m->line].doc, r->stmt[m->line].amount, 0, m->reason, m->line,
		            NONE);
	}
	for (size_t k = 0; k < r->n_missing_in_stmt; k++) {
		const struct tl_match_missing *m = &r->missing_in_stmt[k];
		add_dispute(r, r->ledger[m->line].doc, 0, r->ledger[m->line].amount, m->reason,
		            NONE, m->line);
	}
	r->proposal = r->n_dispute == 0 && t->balanced ? TL_MATCH_CONFIRM : TL_MATCH_DISPUTE;
}

/* ------------------------------------------------------------- run */

void tl_match_report_free(struct tl_match_report *r)
{
	if (!r)
		return;
	free(r->stmt);
	free(r->ledger);
	free(r->matched);
	free(r->differs);
	free(r->missing_in_ledger);
	free(r->missing_in_stmt);
	free(r->dispute);
	free(r->pool);
	free(r);
}

int tl_match_run(struct tl_match_report **out, const struct tl_match_line *stmt, size_t n_stmt,
                 const struct tl_match_line *ledger, size_t n_ledger,
                 const struct tl_match_opts *opts, char *err, size_t errcap)
{
	struct tl_match_opts def;
	struct tl_match_report *r = NULL;
	struct ctx x;
	struct ent *tmp = NULL;
	int rc;

	if (!out)
		return TL_EINVAL;
	*out = NULL;
	memset(&x, 0, sizeof x);
	if (!opts) {
		tl_match_opts_init(&def);
		opts = &def;
	}
	if ((rc = opts_check(opts, err, errcap)) != 0)
		return rc;
	if (n_stmt > TL_MATCH_LINES_MAX || n_ledger > TL_MATCH_LINES_MAX)
		return seterr(err, errcap, TL_ETOOBIG,
		              "%zu statement and %zu ledger lines: the limit is %d per side",
		              n_stmt, n_ledger, TL_MATCH_LINES_MAX);
	if ((n_stmt && !stmt) || (n_ledger && !ledger))
		return seterr(err, errcap, TL_EINVAL, "no lines given for a non-zero count");
	if ((rc = lines_check(stmt, n_stmt, "statement", err, errcap)) != 0 ||
	    (rc = lines_check(ledger, n_ledger, "ledger", err, errcap)) != 0)
		return rc;

	size_t n_min = n_stmt < n_ledger ? n_stmt : n_ledger;
	size_t n_max = n_stmt > n_ledger ? n_stmt : n_ledger;
	rc = TL_ENOMEM;
	if (!(r = calloc(1, sizeof *r)))
		goto fail;
	r->opts = *opts;
	r->n_stmt = n_stmt;
	r->n_ledger = n_ledger;
	r->stmt = calloc(n_stmt + 1, sizeof *r->stmt);
	r->ledger = calloc(n_ledger + 1, sizeof *r->ledger);
	r->matched = calloc(n_min + 1, sizeof *r->matched);
	r->differs = calloc(n_min + 1, sizeof *r->differs);
	r->missing_in_ledger = calloc(n_stmt + 1, sizeof *r->missing_in_ledger);
	r->missing_in_stmt = calloc(n_ledger + 1, sizeof *r->missing_in_stmt);
	r->dispute = calloc(n_stmt + n_ledger + 1, sizeof *r->dispute);
	r->pool = calloc(n_stmt + n_ledger + 1, sizeof *r->pool);
	tmp = calloc(n_max + 1, sizeof *tmp);
	if (!r->stmt || !r->ledger || !r->matched || !r->differs || !r->missing_in_ledger ||
	    !r->missing_in_stmt || !r->dispute || !r->pool || !tmp)
		goto fail;
	if (n_stmt)
		memcpy(r->stmt, stmt, n_stmt * sizeof *stmt);
	if (n_ledger)
		memcpy(r->ledger, ledger, n_ledger * sizeof *ledger);
	qsort(r->stmt, n_stmt, sizeof *r->stmt, cmp_line);
	qsort(r->ledger, n_ledger, sizeof *r->ledger, cmp_line);

	x.r = r;
	x.o = &r->opts;
	if (side_init(&x.s, r->stmt, n_stmt, tmp) != 0 ||
	    side_init(&x.l, r->ledger, n_ledger, tmp) != 0)
		goto fail;
	rule_doc(&x);
	order_build(&x.s, &x.s.av, tmp, cmp_av);
	order_build(&x.l, &x.l.av, tmp, cmp_av);
	order_build(&x.s, &x.s.am, tmp, cmp_am);
	order_build(&x.l, &x.l.am, tmp, cmp_am);
	rule_amount(&x);
	if (opts->many_to_one) {
		rule_sum(&x, &x.s, &x.l, TL_MATCH_BY_SUM_LEDGER);
		rule_sum(&x, &x.l, &x.s, TL_MATCH_BY_SUM_STATEMENT);
	}
	finish(&x);
	side_release(&x.s);
	side_release(&x.l);
	free(tmp);
	*out = r;
	return 0;
fail:
	side_release(&x.s);
	side_release(&x.l);
	free(tmp);
	tl_match_report_free(r);
	return seterr(err, errcap, rc, "out of memory matching %zu against %zu lines", n_stmt,
	              n_ledger);
}

/* ------------------------------------------------------------- JSON */

static json_t *line_json(const struct tl_match_line *l)
{
	char d[11];
	json_t *o;
	tl_match_date_format(d, l->date);
	o = json_pack("{s:s, s:s, s:s, s:I}", "date", d, "type", tl_match_type_name(l->type), "doc",
	              l->doc, "amount", (json_int_t)l->amount);
	if (o && l->ref && json_object_set_new(o, "ref", json_integer((json_int_t)l->ref)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *lines_json(const struct tl_match_line *base, const size_t *idx, size_t n)
{
	json_t *a = json_array();
	for (size_t k = 0; a && k < n; k++)
		if (json_array_append_new(a, line_json(&base[idx[k]])) != 0) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

static json_t *missing_json(const struct tl_match_line *base, const struct tl_match_missing *m,
                            size_t n)
{
	json_t *a = json_array();
	for (size_t k = 0; a && k < n; k++) {
		json_t *o = line_json(&base[m[k].line]);
		if (!o ||
		    json_object_set_new(o, "reason",
		                        json_string(tl_match_reason_name(m[k].reason))) != 0 ||
		    json_array_append_new(a, o) != 0) {
			json_decref(a);
			a = NULL;
		}
	}
	return a;
}

static json_t *groups_json(const struct tl_match_report *r, unsigned flags)
{
	json_t *a = json_array();
	for (size_t k = 0; a && k < r->n_matched; k++) {
		const struct tl_match_group *g = &r->matched[k];
		if ((flags & TL_MATCH_BRIEF) && g->n_stmt == 1 && g->n_ledger == 1)
			continue;
		json_t *o = json_pack("{s:s, s:o, s:o}", "rule", tl_match_rule_name(g->rule),
		                      "statement", lines_json(r->stmt, g->stmt, g->n_stmt),
		                      "ledger", lines_json(r->ledger, g->ledger, g->n_ledger));
		if (json_array_append_new(a, o) != 0) {
			json_decref(a);
			a = NULL;
		}
	}
	return a;
}

static json_t *differs_json(const struct tl_match_report *r)
{
	json_t *a = json_array();
	for (size_t k = 0; a && k < r->n_differs; k++) {
		const struct tl_match_diff *d = &r->differs[k];
		json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:o, s:o}", "doc", r->stmt[d->stmt].doc,
		                      "statement_amount", (json_int_t)d->stmt_amount,
		                      "ledger_amount", (json_int_t)d->ledger_amount, "difference",
		                      (json_int_t)d->difference, "statement",
		                      line_json(&r->stmt[d->stmt]), "ledger",
		                      line_json(&r->ledger[d->ledger]));
		if (json_array_append_new(a, o) != 0) {
			json_decref(a);
			a = NULL;
		}
	}
	return a;
}

static json_t *dispute_json(const struct tl_match_report *r)
{
	json_t *a = json_array();
	for (size_t k = 0; a && k < r->n_dispute; k++) {
		const struct tl_match_dispute *d = &r->dispute[k];
		json_t *o = json_pack("{s:s, s:I, s:I, s:s}", "doc", d->doc, "their_amount",
		                      (json_int_t)d->their_amount, "our_amount",
		                      (json_int_t)d->our_amount, "reason",
		                      tl_match_reason_name(d->reason));
		if (json_array_append_new(a, o) != 0) {
			json_decref(a);
			a = NULL;
		}
	}
	return a;
}

static json_t *options_json(const struct tl_match_opts *o)
{
	char from[11], to[11];
	json_t *j = json_pack("{s:I, s:i, s:b, s:{s:I, s:I}}", "tolerance",
	                      (json_int_t)o->tolerance, "window", (int)o->window, "many_to_one",
	                      o->many_to_one != 0, "opening", "statement",
	                      (json_int_t)o->stmt_opening, "ledger", (json_int_t)o->ledger_opening);
	if (j && o->has_period) {
		tl_match_date_format(from, o->period_from);
		tl_match_date_format(to, o->period_to);
		if (json_object_set_new(j, "period",
		                        json_pack("{s:s, s:s}", "from", from, "to", to)) != 0) {
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

static json_t *totals_json(const struct tl_match_report *r)
{
	const struct tl_match_totals *t = &r->totals;
	return json_pack(
	        "{s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I}, s:I, s:b,"
	        " s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}}",
	        "statement", "lines", (json_int_t)r->n_stmt, "sum", (json_int_t)t->stmt_sum,
	        "opening", (json_int_t)r->opts.stmt_opening, "closing", (json_int_t)t->stmt_closing,
	        "ledger", "lines", (json_int_t)(r->n_ledger - r->n_ledger_out_of_period),
	        "out_of_period", (json_int_t)r->n_ledger_out_of_period, "sum",
	        (json_int_t)t->ledger_sum, "opening", (json_int_t)r->opts.ledger_opening, "closing",
	        (json_int_t)t->ledger_closing, "difference", (json_int_t)t->difference, "balanced",
	        t->balanced, "matched", "groups", (json_int_t)r->n_matched, "statement_lines",
	        (json_int_t)t->matched_stmt_lines, "ledger_lines",
	        (json_int_t)t->matched_ledger_lines, "statement_sum",
	        (json_int_t)t->matched_stmt_sum, "ledger_sum", (json_int_t)t->matched_ledger_sum,
	        "differs", "lines", (json_int_t)r->n_differs, "sum", (json_int_t)t->differs_sum,
	        "missing_in_ledger", "lines", (json_int_t)r->n_missing_in_ledger, "sum",
	        (json_int_t)t->missing_in_ledger_sum, "missing_in_statement", "lines",
	        (json_int_t)r->n_missing_in_stmt, "sum", (json_int_t)t->missing_in_stmt_sum);
}

int tl_match_report_json(const struct tl_match_report *r, unsigned flags, json_t **out)
{
	if (!r || !out)
		return TL_EINVAL;
	/* json_pack releases the "o" values it was given when it fails. */
	*out = json_pack(
	        "{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "options", options_json(&r->opts),
	        "proposal", r->proposal == TL_MATCH_CONFIRM ? "confirm" : "dispute", "totals",
	        totals_json(r), "matched", groups_json(r, flags), "differs", differs_json(r),
	        "missing_in_ledger",
	        missing_json(r->stmt, r->missing_in_ledger, r->n_missing_in_ledger),
	        "missing_in_statement",
	        missing_json(r->ledger, r->missing_in_stmt, r->n_missing_in_stmt), "dispute",
	        dispute_json(r), "search_truncated", (json_int_t)r->n_search_truncated);
	return *out ? 0 : TL_ENOMEM;
}

/* ------------------------------------------------------------- text */

struct txt {
	struct tl_buf *b;
	int rc; /* first failure; later writes are skipped */
	int digits;
};

static void tput(struct txt *t, const char *fmt, ...) TL_PRINTF(2, 3);
static void tput(struct txt *t, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int k;
	if (t->rc)
		return;
	va_start(ap, fmt);
	k = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (k < 0) {
		t->rc = TL_EINVAL;
		return;
	}
	if ((size_t)k >= sizeof line)
		k = (int)sizeof line - 1;
	t->rc = tl_buf_add(t->b, line, (size_t)k);
}

/* Terminal columns of UTF-8 text: East Asian wide ranges count two. */
static size_t dwidth(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0;
	while (*p) {
		uint32_t c = *p;
		size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		c &= k == 1 ? 0x7f : k == 2 ? 0x1f : k == 3 ? 0x0f : 0x07;
		for (size_t i = 1; i < k && p[i]; i++)
			c = c << 6 | (p[i] & 0x3fu);
		for (size_t i = 0; i < k && *p; i++)
			p++;
		w += (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) ||
		                     (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
		                     (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
		                     (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x20000 && c <= 0x3fffd)
		             ? 2
		             : 1;
	}
	return w;
}

/* s, left-aligned (right = 0) or right-aligned, in `width` columns, then a gap. */
static void tcol(struct txt *t, const char *s, size_t width, int right)
{
	size_t w = dwidth(s), pad = w < width ? width - w : 0;
	if (right)
		tput(t, "%*s%s  ", (int)pad, "", s);
	else
		tput(t, "%s%*s  ", s, (int)pad, "");
}

static const char *amt(char out[40], int64_t v, int digits)
{
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, p = 1;
	char ib[24], *o = out;
	int n;
	for (int i = 0; i < digits; i++)
		p *= 10;
	n = snprintf(ib, sizeof ib, "%llu", (unsigned long long)(u / p));
	if (v < 0)
		*o++ = '-';
	for (int k = 0; k < n; k++) {
		if (k && (n - k) % 3 == 0)
			*o++ = ',';
		*o++ = ib[k];
	}
	if (digits)
		snprintf(o, 8, ".%0*llu", digits, (unsigned long long)(u % p));
	else
		*o = 0;
	return out;
}

static void tline(struct txt *t, const char *lead, const struct tl_match_line *l)
{
	char d[11], a[40];
	tl_match_date_format(d, l->date);
	tput(t, "  ");
	if (lead)
		tcol(t, lead, 9, 0);
	tcol(t, d, 10, 0);
	tcol(t, tl_match_type_name(l->type), 11, 0);
	tcol(t, l->doc[0] ? l->doc : "(none)", 20, 0);
	tput(t, "%16s", amt(a, l->amount, t->digits)); /* amounts are ASCII */
}

static void text_matched(struct txt *t, const struct tl_match_report *r, unsigned flags)
{
	size_t by[5] = {0, 0, 0, 0, 0}, sums = 0;
	for (size_t k = 0; k < r->n_matched; k++)
		by[r->matched[k].rule]++;
	sums = by[TL_MATCH_BY_SUM_LEDGER] + by[TL_MATCH_BY_SUM_STATEMENT];
	tput(t,
	     "\nMatched: %zu statement lines with %zu ledger lines (by document number %zu, by "
	     "amount and date %zu, by sum %zu)\n",
	     r->totals.matched_stmt_lines, r->totals.matched_ledger_lines, by[TL_MATCH_BY_DOC],
	     by[TL_MATCH_BY_AMOUNT], sums);
	if (sums) {
		tput(t, "\nMatched by sum, %zu (inferred from amounts: please check):\n", sums);
		for (size_t k = 0; k < r->n_matched; k++) {
			const struct tl_match_group *g = &r->matched[k];
			if (g->rule != TL_MATCH_BY_SUM_LEDGER &&
			    g->rule != TL_MATCH_BY_SUM_STATEMENT)
				continue;
			tput(t, "  %zu statement line%s = %zu ledger lines\n", g->n_stmt,
			     g->n_stmt == 1 ? "" : "s", g->n_ledger);
			for (size_t i = 0; i < g->n_stmt; i++) {
				tline(t, "statement", &r->stmt[g->stmt[i]]);
				tput(t, "\n");
			}
			for (size_t i = 0; i < g->n_ledger; i++) {
				tline(t, "ledger", &r->ledger[g->ledger[i]]);
				tput(t, "\n");
			}
		}
	}
	if ((flags & TL_MATCH_BRIEF) || by[TL_MATCH_BY_DOC] + by[TL_MATCH_BY_AMOUNT] == 0)
		return;
	tput(t, "\nMatched one to one, %zu:\n  ", by[TL_MATCH_BY_DOC] + by[TL_MATCH_BY_AMOUNT]);
	tcol(t, "DATE", 10, 0);
	tcol(t, "TYPE", 11, 0);
	tcol(t, "DOCUMENT", 20, 0);
	tcol(t, "AMOUNT", 16, 1);
	tcol(t, "LEDGER DATE", 11, 0);
	tcol(t, "LEDGER DOCUMENT", 20, 0);
	tput(t, "BY\n");
	for (size_t k = 0; k < r->n_matched; k++) {
		const struct tl_match_group *g = &r->matched[k];
		const struct tl_match_line *l;
		char d[11];
		if (g->rule != TL_MATCH_BY_DOC && g->rule != TL_MATCH_BY_AMOUNT)
			continue;
		l = &r->ledger[g->ledger[0]];
		tline(t, NULL, &r->stmt[g->stmt[0]]);
		tput(t, "  ");
		tl_match_date_format(d, l->date);
		tcol(t, d, 11, 0);
		tcol(t, l->doc[0] ? l->doc : "(none)", 20, 0);
		tput(t, "%s\n", g->rule == TL_MATCH_BY_DOC ? "number" : "amount");
	}
}

static void text_missing(struct txt *t, const char *title, const struct tl_match_line *base,
                         const struct tl_match_missing *m, size_t n)
{
	if (!n)
		return;
	tput(t, "\n%s, %zu:\n  ", title, n);
	tcol(t, "DATE", 10, 0);
	tcol(t, "TYPE", 11, 0);
	tcol(t, "DOCUMENT", 20, 0);
	tcol(t, "AMOUNT", 16, 1);
	tput(t, "REASON\n");
	for (size_t k = 0; k < n; k++) {
		tline(t, NULL, &base[m[k].line]);
		tput(t, "  %s\n", tl_match_reason_name(m[k].reason));
	}
}

int tl_match_report_text(const struct tl_match_report *r, unsigned flags, int digits,
                         struct tl_buf *b)
{
	struct txt t = {b, 0, digits};
	const struct tl_match_totals *tt;
	char a1[40], a2[40], a3[40];
	if (!r || !b || digits < 0 || digits > 4)
		return TL_EINVAL;
	tt = &r->totals;
	tput(&t, "Statement: %zu lines. Ledger: %zu lines", r->n_stmt, r->n_ledger);
	if (r->n_ledger_out_of_period)
		tput(&t, " (%zu of another period, left out)", r->n_ledger_out_of_period);
	tput(&t, ".\nTolerance %s, date window %d days, sums %s.\n",
	     amt(a1, r->opts.tolerance, digits), (int)r->opts.window,
	     r->opts.many_to_one ? "on" : "off");
	if (r->proposal == TL_MATCH_CONFIRM)
		tput(&t,
		     "\nProposal: CONFIRM. Every line matched and the closing balances agree.\n");
	else if (r->n_dispute)
		tput(&t, "\nProposal: DISPUTE, %zu line%s (below).\n", r->n_dispute,
		     r->n_dispute == 1 ? "" : "s");
	else
		tput(&t, "\nProposal: DISPUTE the balance. Every line matched, but the closing "
		         "balances "
		         "differ (opening balances, or amounts matched within the tolerance).\n");
	tput(&t, "Closing balance: statement %s, ledger %s, difference %s.\n",
	     amt(a1, tt->stmt_closing, digits), amt(a2, tt->ledger_closing, digits),
	     amt(a3, tt->difference, digits));
	if (r->n_search_truncated)
		tput(&t, "Note: %zu sum searches were cut short at their bound.\n",
		     r->n_search_truncated);

	text_matched(&t, r, flags);
	if (r->n_differs) {
		tput(&t, "\nAmounts differ, %zu:\n  ", r->n_differs);
		tcol(&t, "DOCUMENT", 20, 0);
		tcol(&t, "STATEMENT", 16, 1);
		tcol(&t, "LEDGER", 16, 1);
		tput(&t, "%16s\n", "DIFFERENCE");
		for (size_t k = 0; k < r->n_differs; k++) {
			const struct tl_match_diff *d = &r->differs[k];
			tput(&t, "  ");
			tcol(&t, r->stmt[d->stmt].doc, 20, 0);
			tcol(&t, amt(a1, d->stmt_amount, digits), 16, 1);
			tcol(&t, amt(a2, d->ledger_amount, digits), 16, 1);
			tput(&t, "%16s\n", amt(a3, d->difference, digits));
		}
	}
	text_missing(&t, "In the statement only, not in our ledger", r->stmt, r->missing_in_ledger,
	             r->n_missing_in_ledger);
	text_missing(&t, "In our ledger only, not in the statement", r->ledger, r->missing_in_stmt,
	             r->n_missing_in_stmt);
	if (r->n_dispute) {
		tput(&t, "\nProposed dispute, %zu line%s:\n  ", r->n_dispute,
		     r->n_dispute == 1 ? "" : "s");
		tcol(&t, "DOCUMENT", 20, 0);
		tcol(&t, "THEIR AMOUNT", 16, 1);
		tcol(&t, "OUR AMOUNT", 16, 1);
		tput(&t, "REASON\n");
		for (size_t k = 0; k < r->n_dispute; k++) {
			const struct tl_match_dispute *d = &r->dispute[k];
			tput(&t, "  ");
			tcol(&t, d->doc[0] ? d->doc : "(none)", 20, 0);
			tcol(&t, amt(a1, d->their_amount, digits), 16, 1);
			tcol(&t, amt(a2, d->our_amount, digits), 16, 1);
			tput(&t, "%s\n", tl_match_reason_name(d->reason));
		}
	}
	return t.rc;
}

/* ------------------------------------------------------------- JSON input */

static int line_from_json(const json_t *o, size_t i, unsigned flags, struct tl_match_line *l,
                          char *err, size_t cap)
{
	const json_t *v;
	json_int_t n;
	if (!json_is_object(o))
		return seterr(err, cap, TL_EFORMAT, "lines[%zu]: not an object", i);
	v = json_object_get(o, "date");
	if (json_is_string(v)) {
		if (tl_match_date_parse(json_string_value(v), &l->date) != 0)
			return seterr(err, cap, TL_EFORMAT,
			              "lines[%zu].date: \"%.16s\" is not a YYYY-MM-DD date", i,
			              json_string_value(v));
	} else if (json_is_integer(v)) {
		n = json_integer_value(v);
		if (n < TL_MATCH_DATE_MIN || n > TL_MATCH_DATE_MAX)
			return seterr(err, cap, TL_EFORMAT,
			              "lines[%zu].date: %lld days is out of range", i,
			              (long long)n);
		l->date = (int32_t)n;
	} else {
		return seterr(err, cap, TL_EFORMAT, "lines[%zu].date: missing, or not a date", i);
	}
	v = json_object_get(o, "type");
	if (!json_is_string(v))
		return seterr(err, cap, TL_EFORMAT, "lines[%zu].type: missing, or not a string", i);
	if (!(l->type = tl_match_type_parse(json_string_value(v))))
		return seterr(err, cap, TL_EFORMAT, "lines[%zu].type: unknown type \"%.24s\"", i,
		              json_string_value(v));
	v = json_object_get(o, "doc");
	if (!json_is_string(v))
		return seterr(err, cap, TL_EFORMAT, "lines[%zu].doc: missing, or not a string", i);
	size_t len = json_string_length(v);
	const char *s = json_string_value(v);
	if (len > TL_MATCH_DOC_MAX)
		return seterr(err, cap, TL_ETOOBIG, "lines[%zu].doc: longer than %d bytes", i,
		              TL_MATCH_DOC_MAX);
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
			return seterr(err, cap, TL_EFORMAT,
			              "lines[%zu].doc: holds a control character", i);
	memcpy(l->doc, s, len);
	l->doc[len] = 0;
	v = json_object_get(o, "amount");
	if (!json_is_integer(v))
		return seterr(err, cap, TL_EFORMAT,
		              "lines[%zu].amount: missing, or not an integer (minor units)", i);
	n = json_integer_value(v);
	if (n < -TL_MATCH_AMOUNT_MAX || n > TL_MATCH_AMOUNT_MAX)
		return seterr(err, cap, TL_EFORMAT, "lines[%zu].amount: %lld is out of range", i,
		              (long long)n);
	l->amount = (flags & TL_MATCH_LOAD_NEGATE) ? -(int64_t)n : (int64_t)n;
	v = json_object_get(o, "ref");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > (json_int_t)UINT32_MAX)
			return seterr(err, cap, TL_EFORMAT,
			              "lines[%zu].ref: not an integer in 0..4294967295", i);
		l->ref = (uint32_t)json_integer_value(v);
	}
	return 0;
}

int tl_match_lines_from_json(const json_t *j, unsigned flags, struct tl_match_line **out, size_t *n,
                             char *err, size_t errcap)
{
	const json_t *arr = json_is_object(j) ? json_object_get(j, "lines") : j;
	struct tl_match_line *v;
	size_t cnt;
	int rc;
	if (!out || !n)
		return TL_EINVAL;
	*out = NULL;
	*n = 0;
	if (!json_is_array(arr))
		return seterr(err, errcap, TL_EFORMAT,
		              "expected an array of lines, or a statement with a \"lines\" array");
	cnt = json_array_size(arr);
	if (cnt > TL_MATCH_LINES_MAX)
		return seterr(err, errcap, TL_ETOOBIG, "%zu lines: the limit is %d", cnt,
		              TL_MATCH_LINES_MAX);
	if (cnt == 0)
		return 0;
	if (!(v = calloc(cnt, sizeof *v)))
		return seterr(err, errcap, TL_ENOMEM, "out of memory for %zu lines", cnt);
	for (size_t i = 0; i < cnt; i++)
		if ((rc = line_from_json(json_array_get(arr, i), i, flags, &v[i], err, errcap)) !=
		    0) {
			free(v);
			return rc;
		}
	*out = v;
	*n = cnt;
	return 0;
}

int tl_match_opts_from_statement(struct tl_match_opts *o, const json_t *stmt, char *err,
                                 size_t errcap)
{
	const json_t *p, *v;
	int32_t from, to;
	if (!o || !json_is_object(stmt))
		return seterr(err, errcap, TL_EINVAL, "the statement is not a JSON object");
	if ((p = json_object_get(stmt, "period")) != NULL) {
		if (!json_is_object(p) ||
		    tl_match_date_parse(json_string_value(json_object_get(p, "from")), &from) !=
		            0 ||
		    tl_match_date_parse(json_string_value(json_object_get(p, "to")), &to) != 0 ||
		    from > to)
			return seterr(
			        err, errcap, TL_EFORMAT,
			        "period: expected {\"from\": date, \"to\": date}, from <= to");
		o->has_period = 1;
		o->period_from = from;
		o->period_to = to;
	}
	if ((v = json_object_get(stmt, "opening")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < -TL_MATCH_OPENING_MAX ||
		    json_integer_value(v) > TL_MATCH_OPENING_MAX)
			return seterr(err, errcap, TL_EFORMAT,
			              "opening: not an integer within +-10^15 minor units");
		o->stmt_opening = json_integer_value(v);
	}
	return 0;
}
