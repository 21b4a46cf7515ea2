/*
 * state.c — the channel state machine. See state.h for the rules.
 *
 * Bodies reach us as bytes that tl_record_decode already proved to be one
 * canonical MessagePack map, so the reader below only has to be strict
 * about types and bounds, never about canonical form. It is iterative: no
 * recursion on input depth.
 */
#include "state.h"

#include <msgpack/pack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ reader */

struct rd {
	const uint8_t *p;
	size_t len, pos;
};

enum { MT_NIL, MT_BOOL, MT_UINT, MT_NINT, MT_STR, MT_BIN, MT_ARR, MT_MAP, MT_BAD };

struct mh {
	int t;
	uint64_t u;          /* MT_UINT */
	int64_t i;           /* MT_NINT */
	size_t n;            /* str/bin bytes, array items, map pairs */
	const uint8_t *data; /* str/bin payload */
};

static uint64_t load_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Reads one header; str/bin payloads are consumed too, containers are not.
 * Bodies come from records tl_record_decode accepted, so tl_mp_next's
 * strictness costs nothing and its bounds checks still hold. */
static int rd_head(struct rd *r, struct mh *h)
{
	static const int types[] = {
	        [TL_MP_NIL] = MT_NIL,   [TL_MP_BOOL] = MT_BOOL, [TL_MP_UINT] = MT_UINT,
	        [TL_MP_INT] = MT_NINT,  [TL_MP_STR] = MT_STR,   [TL_MP_BIN] = MT_BIN,
	        [TL_MP_ARRAY] = MT_ARR, [TL_MP_MAP] = MT_MAP,
	};
	struct tl_mp_item it;
	memset(h, 0, sizeof *h);
	h->t = MT_BAD;
	if (r->pos >= r->len || tl_mp_next(r->p, r->len, &r->pos, &it) != 0)
		return -1;
	h->t = types[it.type];
	h->u = it.u;
	h->i = it.i;
	h->data = it.data;
	if (it.type >= TL_MP_STR)
		h->n = (size_t)it.u;
	/* every item takes at least one byte */
	if ((h->t == MT_ARR || h->t == MT_MAP) && h->n > r->len - r->pos)
		return -1;
	return 0;
}

/* Skips one whole object, iteratively. */
static int rd_skip(struct rd *r)
{
	uint64_t pending = 1;
	struct mh h;

	while (pending) {
		if (rd_head(r, &h) != 0)
			return -1;
		pending--;
		if (h.t == MT_ARR)
			pending += h.n;
		else if (h.t == MT_MAP)
			pending += 2 * (uint64_t)h.n;
		if (pending > r->len - r->pos)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------ schema fields */

enum ft { FT_STR, FT_INT, FT_HEX32, FT_DATE, FT_SIG, FT_MAP, FT_ARR };

struct fld {
	const char *name;
	enum ft t;
	int req;
};

struct val {
	int present;
	const char *s; /* FT_STR, FT_DATE: not NUL-terminated */
	size_t n;
	int64_t i;
	uint8_t h[TL_SIG_LEN]; /* FT_HEX32: 32 bytes; FT_SIG: 64 */
	struct rd sub;         /* FT_MAP, FT_ARR: positioned at the object */
};

static int is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* "YYYY-MM-DD" with month 1..12 and day 1..31 (calendar checks are the
 * importer's; here the form only). */
static int date_ok(const char *s, size_t n)
{
	int m, d;
	if (n != 10 || s[4] != '-' || s[7] != '-' || !is_digits(s, 4) || !is_digits(s + 5, 2) ||
	    !is_digits(s + 8, 2))
		return 0;
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static int hex32_ok(const char *s, size_t n, uint8_t out[TL_HASH_LEN])
{
	if (n != 2 * TL_HASH_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return tl_hex_decode(out, TL_HASH_LEN, s, n) == 0;
}

/*
 * Reads a map whose keys must all be in f (nf entries) with the given
 * types; fills v[] by index. On failure writes the reason to why.
 */
static int parse_map(struct rd *r, const struct fld *f, size_t nf, struct val *v, char *why,
                     size_t whycap)
{
	struct mh h, k, x;

	memset(v, 0, nf * sizeof *v);
	if (rd_head(r, &h) != 0 || h.t != MT_MAP) {
		snprintf(why, whycap, "is not a map");
		return -1;
	}
	for (size_t i = 0; i < h.n; i++) {
		size_t j, start;
		if (rd_head(r, &k) != 0 || k.t != MT_STR) {
			snprintf(why, whycap, "has a key that is not a string");
			return -1;
		}
		for (j = 0; j < nf; j++)
			if (strlen(f[j].name) == k.n && memcmp(f[j].name, k.data, k.n) == 0)
				break;
		if (j == nf) {
			snprintf(why, whycap, "has an unknown field \"%.*s\"",
			         (int)(k.n > 40 ? 40 : k.n), (const char *)k.data);
			return -1;
		}
		start = r->pos;
		if (rd_head(r, &x) != 0)
			goto bad;
		v[j].present = 1;
		switch (f[j].t) {
		case FT_STR:
			if (x.t != MT_STR)
				goto bad;
			v[j].s = (const char *)x.data;
			v[j].n = x.n;
			break;
		case FT_DATE:
			if (x.t != MT_STR || !date_ok((const char *)x.data, x.n))
				goto bad;
			v[j].s = (const char *)x.data;
			v[j].n = x.n;
			break;
		case FT_INT:
			if (x.t == MT_UINT && x.u <= INT64_MAX)
				v[j].i = (int64_t)x.u;
			else if (x.t == MT_NINT)
				v[j].i = x.i;
			else
				goto bad;
			break;
		case FT_HEX32:
			if (x.t != MT_STR || !hex32_ok((const char *)x.data, x.n, v[j].h))
				goto bad;
			break;
		case FT_SIG: {
			size_t got = 0;
			if (x.t != MT_STR ||
			    tl_b64_decode(v[j].h, sizeof v[j].h, &got, (const char *)x.data, x.n) !=
			            0 ||
			    got != TL_SIG_LEN)
				goto bad;
			break;
		}
		case FT_MAP:
		case FT_ARR:
			if (x.t != (f[j].t == FT_MAP ? MT_MAP : MT_ARR))
				goto bad;
			r->pos = start;
			if (rd_skip(r) != 0)
				goto bad;
			v[j].sub.p = r->p;
			v[j].sub.len = r->pos;
			v[j].sub.pos = start;
			break;
		}
		continue;
	bad:
		snprintf(why, whycap, "field \"%s\" has the wrong type or form", f[j].name);
		return -1;
	}
	for (size_t j = 0; j < nf; j++) {
		if (f[j].req && !v[j].present) {
			snprintf(why, whycap, "lacks the field \"%s\"", f[j].name);
			return -1;
		}
	}
	return 0;
}

static int str_is(const struct val *v, const char *s)
{
	return v->present && v->n == strlen(s) && memcmp(v->s, s, v->n) == 0;
}

/* Index of v's string in names[], or -1. */
static int str_pick(const struct val *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (str_is(v, names[i]))
			return i;
	return -1;
}

static int add_overflows(int64_t a, int64_t b, int64_t *out)
{
	if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b))
		return 1;
	*out = a + b;
	return 0;
}

/* ---------------------------------------------------------- key table */

/*
 * Open addressing over 32-byte keys that are SHA-256 outputs (leaf hashes,
 * or hashes of person keys and statement ids), so their first bytes are a
 * good hash and cannot be steered cheaply.
 */
struct tab {
	uint8_t (*k)[TL_HASH_LEN];
	size_t *v; /* SIZE_MAX: empty slot */
	size_t cap, n;
};

static size_t tab_slot(const struct tab *t, const uint8_t k[TL_HASH_LEN])
{
	return (size_t)load_be(k, 8) & (t->cap - 1);
}

static size_t *tab_get(const struct tab *t, const uint8_t k[TL_HASH_LEN])
{
	if (!t->cap)
		return NULL;
	for (size_t i = tab_slot(t, k);; i = (i + 1) & (t->cap - 1)) {
		if (t->v[i] == SIZE_MAX)
			return NULL;
		if (memcmp(t->k[i], k, TL_HASH_LEN) == 0)
			return &t->v[i];
	}
}

static int tab_put(struct tab *t, const uint8_t k[TL_HASH_LEN], size_t v);

static int tab_grow(struct tab *t)
{
	struct tab nt = {0};
	nt.cap = t->cap ? 2 * t->cap : 64;
	nt.k = malloc(nt.cap * sizeof *nt.k);
	nt.v = malloc(nt.cap * sizeof *nt.v);
	if (!nt.k || !nt.v) {
		free(nt.k);
		free(nt.v);
		return TL_ENOMEM;
	}
	for (size_t i = 0; i < nt.cap; i++)
		nt.v[i] = SIZE_MAX;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i] != SIZE_MAX && tab_put(&nt, t->k[i], t->v[i]) != 0)
			return TL_ENOMEM; /* cannot happen: nt has room */
	free(t->k);
	free(t->v);
	*t = nt;
	return 0;
}

/* Inserts or replaces. */
static int tab_put(struct tab *t, const uint8_t k[TL_HASH_LEN], size_t v)
{
	size_t *old = tab_get(t, k);
	if (old) {
		*old = v;
		return 0;
	}
	if (2 * (t->n + 1) > t->cap && tab_grow(t) != 0)
		return TL_ENOMEM;
	for (size_t i = tab_slot(t, k);; i = (i + 1) & (t->cap - 1)) {
		if (t->v[i] == SIZE_MAX) {
			memcpy(t->k[i], k, TL_HASH_LEN);
			t->v[i] = v;
			t->n++;
			return 0;
		}
	}
}

static void tab_free(struct tab *t)
{
	free(t->k);
	free(t->v);
	memset(t, 0, sizeof *t);
}

static int grow(void *pp, size_t *cap, size_t need, size_t elsz)
{
	void **p = pp;
	size_t nc = *cap ? *cap : 16;
	void *np;
	if (need <= *cap)
		return 0;
	while (nc < need)
		nc *= 2;
	np = realloc(*p, nc * elsz);
	if (!np)
		return TL_ENOMEM;
	*p = np;
	*cap = nc;
	return 0;
}

/* ------------------------------------------------------------ builder */

struct ent {
	const uint8_t *rec;
	size_t len;
	const uint8_t *body;
	size_t body_len;
	const char *kind;
	size_t kind_len;
	uint64_t time_ms;
	uint64_t witnessed;
	uint8_t leaf[TL_HASH_LEN];
};

struct bfeed {
	int used;
	struct tl_origin o;
	char origin[TL_ORIGIN_LEN + 1];
	struct ent *e;
	size_t n, cap;
};

struct tl_state_builder {
	int has_hint;
	uint8_t hint[TL_PUB_LEN];
	struct bfeed f[2];
};

int tl_state_builder_new(struct tl_state_builder **out, const uint8_t *supplier_pk)
{
	struct tl_state_builder *b;
	if (!out)
		return TL_EINVAL;
	b = calloc(1, sizeof *b);
	if (!b)
		return TL_ENOMEM;
	if (supplier_pk) {
		b->has_hint = 1;
		memcpy(b->hint, supplier_pk, TL_PUB_LEN);
	}
	*out = b;
	return 0;
}

void tl_state_builder_free(struct tl_state_builder *b)
{
	if (!b)
		return;
	free(b->f[0].e);
	free(b->f[1].e);
	free(b);
}

int tl_state_add(struct tl_state_builder *b, const uint8_t *rec, size_t len, uint64_t witnessed_ms)
{
	struct tl_entry e;
	struct bfeed *f = NULL;
	struct ent *x;
	static const uint8_t zero[TL_HASH_LEN];

	if (!b || !rec)
		return TL_EINVAL;
	if (tl_record_decode(&e, rec, len, NULL) != 0)
		return TL_EFORMAT;
	for (int i = 0; i < 2 && !f; i++)
		if (b->f[i].used && memcmp(&b->f[i].o, &e.origin, sizeof e.origin) == 0)
			f = &b->f[i];
	if (!f) {
		if (b->f[0].used && b->f[1].used)
			return TL_EINVAL;
		if (b->f[0].used &&
		    memcmp(b->f[0].o.channel, e.origin.channel, TL_CHANNEL_LEN) != 0)
			return TL_EINVAL;
		f = b->f[0].used ? &b->f[1] : &b->f[0];
	}
	if (e.seq != f->n || memcmp(e.prev, f->n ? f->e[f->n - 1].leaf : zero, TL_HASH_LEN) != 0)
		return TL_ECHAIN;
	if (f->n >= TL_STATE_ENTRIES_MAX)
		return TL_ETOOBIG;
	if (grow(&f->e, &f->cap, f->n + 1, sizeof *f->e) != 0)
		return TL_ENOMEM;
	x = &f->e[f->n];
	x->rec = rec;
	x->len = len;
	x->body = e.body;
	x->body_len = e.body_len;
	x->kind = e.kind;
	x->kind_len = e.kind_len;
	x->time_ms = e.time_ms;
	x->witnessed = witnessed_ms;
	tl_record_leaf_hash(x->leaf, rec, len);
	if (!f->used) {
		f->used = 1;
		f->o = e.origin;
		memcpy(f->origin, e.origin_str, TL_ORIGIN_LEN);
		f->origin[TL_ORIGIN_LEN] = 0;
	}
	f->n++;
	return 0;
}

/* ------------------------------------------------------------- kinds */

enum kind {
	K_OTHER,
	K_TERMS_PROPOSE,
	K_TERMS_ACCEPT,
	K_KEY_GRANT,
	K_KEY_REVOKE,
	K_STATEMENT,
	K_SEEN,
	K_VIEW,
	K_CONFIRM,
	K_DISPUTE,
	K_REMINDER,
	K_ESCALATE,
	K_COMMENT,
	K_CLOSE,
};

static const char *const kind_names[] = {
        "",     "terms.propose", "terms.accept", "key.grant", "key.revoke", "statement", "seen",
        "view", "confirm",       "dispute",      "reminder",  "escalate",   "comment",   "close",
};

static enum kind kind_of(const struct ent *x)
{
	for (int k = 1; k <= K_CLOSE; k++)
		if (strlen(kind_names[k]) == x->kind_len &&
		    memcmp(kind_names[k], x->kind, x->kind_len) == 0)
			return (enum kind)k;
	return K_OTHER;
}

static const char *const line_types[] = {"invoice", "credit_note", "debit_note", "payment",
                                         "adjustment"};
static const char *const reasons[] = {
        "price",     "quantity", "quality", "not_received", "payment_not_recorded",
        "duplicate", "tax",      "fx",      "cut_off",      "other"};
static const char *const person_roles[] = {"clerk", "approver", "director"};
static const char *const procedures[] = {"confirmation", "notification", "balance"};
static const char *const cycles[] = {"month", "week", "cron"};

/* ------------------------------------------------------------- build */

enum { P_NONE, P_CLERK, P_APPROVER, P_DIRECTOR, P_REVOKED };

struct accept {
	enum tl_role by;
	uint64_t seq;
	uint64_t time_ms;
	uint8_t leaf[TL_HASH_LEN];
};

/* Per statement facts gathered while reading, used by the evaluation. */
struct aux {
	uint64_t seen_claimed, seen_witnessed;
	int has_dispute; /* a valid dispute (or balance-differing confirm) */
	uint64_t first_dispute_ms;
	uint64_t answer_ms;
	int has_close;
	uint64_t close_seq, close_claimed, close_witnessed;
};

struct ctx {
	struct tl_state *s;
	const struct bfeed *feed[2]; /* by role; NULL when absent */
	struct aux *aux;
	size_t stmt_cap, aux_cap, find_cap;
	struct tab by_leaf, by_id, prop_leaf, people;
	uint8_t *prole; /* P_* by people index */
	size_t nprole, prole_cap;
	size_t props_cap; /* of s->proposals */
	struct accept *accs;
	size_t naccs, accs_cap;
	size_t seen_upto; /* statements [0, seen_upto) are seen */
	uint64_t seen_size;
	struct tl_buf msg; /* person signature message scratch */
	int oom;
};

static const char *role_name(enum tl_role r)
{
	return r == TL_ROLE_SUPPLIER ? "supplier" : "customer";
}

/* Cuts a UTF-8 sequence left incomplete by truncation at the end of s, so
 * that messages (which quote ids) stay valid UTF-8 in the serialisation. */
static void utf8_trim(char *s)
{
	size_t len = strlen(s), j, need;
	uint8_t lead;

	if (!len)
		return;
	j = len - 1;
	while (j > 0 && ((uint8_t)s[j] & 0xc0) == 0x80)
		j--;
	lead = (uint8_t)s[j];
	need = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	if (j + need > len)
		s[j] = 0;
}

static void finding(struct ctx *c, enum tl_finding_kind kind, enum tl_role feed, uint64_t seq,
                    const char *fmt, ...) TL_PRINTF(5, 6);

static void finding(struct ctx *c, enum tl_finding_kind kind, enum tl_role feed, uint64_t seq,
                    const char *fmt, ...)
{
	struct tl_state *s = c->s;
	struct tl_finding *f;
	va_list ap;
	int n;

	if (s->nfindings >= TL_STATE_FINDINGS_MAX) {
		s->findings_dropped++;
		return;
	}
	if (grow(&s->findings, &c->find_cap, s->nfindings + 1, sizeof *s->findings) != 0) {
		c->oom = 1;
		return;
	}
	f = &s->findings[s->nfindings++];
	f->kind = kind;
	f->feed = feed;
	f->seq = seq;
	n = snprintf(f->msg, sizeof f->msg, "%s feed seq %llu: ", role_name(feed),
	             (unsigned long long)seq);
	va_start(ap, fmt);
	vsnprintf(f->msg + n, sizeof f->msg - (size_t)n, fmt, ap);
	va_end(ap);
	utf8_trim(f->msg);
}

static void key_digest(uint8_t out[TL_HASH_LEN], const void *k, size_t n)
{
	tl_sha256(out, k, n);
}

static void event(struct ctx *c, struct tl_stmt *st, enum tl_event ev, enum tl_role feed,
                  uint64_t seq, const struct ent *x, const uint8_t *person)
{
	size_t cap = st->ntimeline; /* capacity tracked by powers of two */
	struct tl_state_event *e;

	if (st->ntimeline >= TL_STATE_TIMELINE_MAX) {
		st->timeline_dropped++;
		return;
	}
	if (cap == 0 || (cap & (cap - 1)) == 0) {
		size_t nc = cap ? 2 * cap : 4;
		void *np = realloc(st->timeline, nc * sizeof *st->timeline);
		if (!np) {
			c->oom = 1;
			return;
		}
		st->timeline = np;
	}
	e = &st->timeline[st->ntimeline++];
	e->event = ev;
	e->feed = feed;
	e->seq = seq;
	e->claimed_ms = x->time_ms;
	e->witnessed_ms = x->witnessed;
	e->has_person = person != NULL;
	if (person)
		memcpy(e->person, person, TL_PUB_LEN);
	else
		memset(e->person, 0, TL_PUB_LEN);
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

/* Length of an id quoted in a message: at most 48 bytes, cut on a UTF-8
 * character boundary. */
static int idlen_of(const char *s, size_t n)
{
	if (n <= 48)
		return (int)n;
	n = 48;
	while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80)
		n--;
	return (int)n;
}

/* The statement named by leaf, or NULL with a finding. */
static struct tl_stmt *named(struct ctx *c, const uint8_t leaf[TL_HASH_LEN], enum tl_role feed,
                             uint64_t seq, const char *kind)
{
	uint8_t d[TL_HASH_LEN];
	size_t *i;
	char hex[17];

	key_digest(d, leaf, TL_HASH_LEN);
	i = tab_get(&c->by_leaf, d);
	if (i)
		return &c->s->stmts[*i];
	tl_hex_encode(hex, leaf, 8);
	finding(c, TL_FIND_REF, feed, seq,
	        "%s names %s..., which is not a statement of the supplier", kind, hex);
	return NULL;
}

/* -------------------------------------------------------- statements */

static const struct fld f_period[] = {{"from", FT_DATE, 1}, {"to", FT_DATE, 1}};
static const struct fld f_aging[] = {{"current", FT_INT, 1},
                                     {"d1_30", FT_INT, 1},
                                     {"d31_60", FT_INT, 1},
                                     {"d61_90", FT_INT, 1},
                                     {"d90_plus", FT_INT, 1}};
static const struct fld f_line[] = {{"amount", FT_INT, 1}, {"date", FT_DATE, 1},
                                    {"doc", FT_STR, 1},    {"due", FT_DATE, 0},
                                    {"memo", FT_STR, 0},   {"type", FT_STR, 1}};
enum { SL_AMOUNT, SL_DATE, SL_DOC, SL_DUE, SL_MEMO, SL_TYPE };
static const struct fld f_stmt[] = {{"aging", FT_MAP, 1},        {"closing", FT_INT, 1},
                                    {"currency", FT_STR, 1},     {"date", FT_DATE, 1},
                                    {"id", FT_STR, 1},           {"lines", FT_ARR, 1},
                                    {"opening", FT_INT, 1},      {"period", FT_MAP, 1},
                                    {"supersedes", FT_HEX32, 0}, {"version", FT_INT, 1}};
enum {
	S_AGING,
	S_CLOSING,
	S_CURRENCY,
	S_DATE,
	S_ID,
	S_LINES,
	S_OPENING,
	S_PERIOD,
	S_SUPERSEDES,
	S_VERSION
};

static int currency_ok(const struct val *v)
{
	if (v->n != 3)
		return 0;
	for (int i = 0; i < 3; i++)
		if (v->s[i] < 'A' || v->s[i] > 'Z')
			return 0;
	return 1;
}

/* Checks a statement body; *nlines receives the number of lines. */
static int check_statement(const struct ent *x, struct val *v, size_t *nlines, char *why,
                           size_t cap)
{
	struct rd r = {x->body, x->body_len, 0};
	struct val pv[2], av[5], lv[6];
	struct mh h;
	int64_t sum;

	if (parse_map(&r, f_stmt, 10, v, why, cap) != 0)
		return -1;
	if (v[S_ID].n < 1 || v[S_ID].n > TL_STATE_STR_MAX) {
		snprintf(why, cap, "has an id of %zu bytes (1 to %u)", v[S_ID].n, TL_STATE_STR_MAX);
		return -1;
	}
	if (v[S_VERSION].i < 1) {
		snprintf(why, cap, "has version %lld (must be >= 1)", (long long)v[S_VERSION].i);
		return -1;
	}
	if (!currency_ok(&v[S_CURRENCY])) {
		snprintf(why, cap, "has a currency that is not three capital letters");
		return -1;
	}
	if (parse_map(&v[S_PERIOD].sub, f_period, 2, pv, why, cap) != 0) {
		return -1;
	} else if (memcmp(pv[0].s, pv[1].s, 10) > 0) {
		snprintf(why, cap, "has a period that ends before it starts");
		return -1;
	}
	if (parse_map(&v[S_AGING].sub, f_aging, 5, av, why, cap) != 0)
		return -1;
	if (rd_head(&v[S_LINES].sub, &h) != 0 || h.n > TL_STATE_LINES_MAX) {
		snprintf(why, cap, "has more than %u lines", TL_STATE_LINES_MAX);
		return -1;
	}
	sum = v[S_OPENING].i;
	for (size_t i = 0; i < h.n; i++) {
		char sub[120];
		if (parse_map(&v[S_LINES].sub, f_line, 6, lv, sub, sizeof sub) != 0) {
			snprintf(why, cap, "line %zu %s", i + 1, sub);
			return -1;
		}
		if (str_pick(&lv[SL_TYPE], line_types, 5) < 0 || lv[SL_DOC].n < 1 ||
		    lv[SL_DOC].n > TL_STATE_STR_MAX) {
			snprintf(why, cap, "line %zu has a bad type or document number", i + 1);
			return -1;
		}
		if (add_overflows(sum, lv[SL_AMOUNT].i, &sum)) {
			snprintf(why, cap, "has amounts too large to total");
			return -1;
		}
	}
	if (sum != v[S_CLOSING].i) {
		snprintf(why, cap, "has closing %lld, but opening + lines = %lld",
		         (long long)v[S_CLOSING].i, (long long)sum);
		return -1;
	}
	*nlines = h.n;
	return 0;
}

int tl_statement_body_check(const uint8_t *body, size_t len, char *why, size_t cap)
{
	struct ent x = {.body = body, .body_len = len};
	struct val v[10];
	size_t n;

	if (tl_mp_check_map(body, len, NULL) != 0) {
		snprintf(why, cap, "is not a canonical MessagePack map");
		return TL_EFORMAT;
	}
	return check_statement(&x, v, &n, why, cap) == 0 ? 0 : TL_EFORMAT;
}

static void do_statement(struct ctx *c, const struct ent *x, uint64_t seq)
{
	struct tl_state *s = c->s;
	struct val v[10];
	char why[160];
	size_t nlines = 0, prev = SIZE_MAX, *hit;
	uint8_t idd[TL_HASH_LEN], ld[TL_HASH_LEN];
	struct tl_stmt *st;

	if (check_statement(x, v, &nlines, why, sizeof why) != 0) {
		finding(c, TL_FIND_INVALID, TL_ROLE_SUPPLIER, seq, "statement %s; ignored", why);
		return;
	}
	key_digest(idd, v[S_ID].s, v[S_ID].n);
	hit = tab_get(&c->by_id, idd);
	if (!v[S_SUPERSEDES].present) {
		if (hit) {
			finding(c, TL_FIND_RULE, TL_ROLE_SUPPLIER, seq,
			        "statement %.*s was already issued at seq %llu; a re-issue must "
			        "name it "
			        "in supersedes; ignored",
			        idlen_of(v[S_ID].s, v[S_ID].n), v[S_ID].s,
			        (unsigned long long)s->stmts[*hit].seq);
			return;
		}
	} else {
		size_t *pi;
		key_digest(ld, v[S_SUPERSEDES].h, TL_HASH_LEN);
		pi = tab_get(&c->by_leaf, ld);
		if (!pi || !hit || *pi != *hit) {
			finding(c, TL_FIND_REF, TL_ROLE_SUPPLIER, seq,
			        "statement %.*s supersedes %s; ignored",
			        idlen_of(v[S_ID].s, v[S_ID].n), v[S_ID].s,
			        !pi ? "an unknown entry"
			        : (!hit || strlen(s->stmts[*pi].id) != v[S_ID].n ||
			           memcmp(s->stmts[*pi].id, v[S_ID].s, v[S_ID].n) != 0)
			                ? "a statement with another id"
			                : "a version that was already re-issued");
			return;
		}
		if ((uint64_t)v[S_VERSION].i <= s->stmts[*pi].version) {
			finding(c, TL_FIND_RULE, TL_ROLE_SUPPLIER, seq,
			        "statement %.*s version %lld does not follow version %llu; ignored",
			        idlen_of(v[S_ID].s, v[S_ID].n), v[S_ID].s,
			        (long long)v[S_VERSION].i,
			        (unsigned long long)s->stmts[*pi].version);
			return;
		}
		prev = *pi;
	}
	if (s->nstmts >= TL_STATE_STMTS_MAX) {
		finding(c, TL_FIND_LIMIT, TL_ROLE_SUPPLIER, seq,
		        "more than %u statements in the channel; ignored", TL_STATE_STMTS_MAX);
		return;
	}
	if (grow(&s->stmts, &c->stmt_cap, s->nstmts + 1, sizeof *s->stmts) != 0 ||
	    grow(&c->aux, &c->aux_cap, s->nstmts + 1, sizeof *c->aux) != 0) {
		c->oom = 1;
		return;
	}
	st = &s->stmts[s->nstmts];
	memset(st, 0, sizeof *st);
	memset(&c->aux[s->nstmts], 0, sizeof *c->aux);
	st->id = dupn(v[S_ID].s, v[S_ID].n);
	if (!st->id) {
		c->oom = 1;
		return;
	}
	st->version = (uint64_t)v[S_VERSION].i;
	st->seq = seq;
	memcpy(st->leaf, x->leaf, TL_HASH_LEN);
	tl_hex_encode(st->leaf_hex, x->leaf, TL_HASH_LEN);
	st->supersedes = prev;
	st->superseded_by = SIZE_MAX;
	memcpy(st->currency, v[S_CURRENCY].s, 3);
	memcpy(st->date, v[S_DATE].s, 10);
	st->opening = v[S_OPENING].i;
	st->closing = v[S_CLOSING].i;
	st->nlines = nlines;
	st->terms = SIZE_MAX;
	st->claimed_ms = x->time_ms;
	st->witnessed_ms = x->witnessed;
	key_digest(ld, x->leaf, TL_HASH_LEN);
	if (tab_put(&c->by_leaf, ld, s->nstmts) != 0 || tab_put(&c->by_id, idd, s->nstmts) != 0) {
		free(st->id);
		c->oom = 1;
		return;
	}
	s->nstmts++;
	event(c, st, TL_EV_SENT, TL_ROLE_SUPPLIER, seq, x, NULL);
	if (prev != SIZE_MAX) {
		s->stmts[prev].superseded_by = s->nstmts - 1;
		event(c, &s->stmts[prev], TL_EV_REISSUED, TL_ROLE_SUPPLIER, seq, x, NULL);
	}
}

/* ------------------------------------------------------------- terms */

static const struct fld f_cycle[] = {
        {"day", FT_INT, 0}, {"every", FT_STR, 1}, {"rule", FT_STR, 0}, {"tz", FT_STR, 1}};
enum { CY_DAY, CY_EVERY, CY_RULE, CY_TZ };
static const struct fld f_propose[] = {{"currency", FT_STR, 1},   {"cycle", FT_MAP, 1},
                                       {"escalation", FT_ARR, 0}, {"procedure", FT_STR, 1},
                                       {"quorum", FT_INT, 0},     {"response_days", FT_INT, 1},
                                       {"terms_id", FT_STR, 1},   {"witnesses", FT_ARR, 0}};
enum { TP_CURRENCY, TP_CYCLE, TP_ESC, TP_PROC, TP_QUORUM, TP_DAYS, TP_ID, TP_WITNESSES, TP_N };
static const struct fld f_esc[] = {
        {"after_days", FT_INT, 1}, {"level", FT_INT, 1}, {"to", FT_STR, 1}};
static const struct fld f_accept[] = {{"terms", FT_HEX32, 1}};

static void default_terms(struct tl_terms *t)
{
	memset(t, 0, sizeof *t);
	strcpy(t->terms_id, "default");
	t->every = TL_CYCLE_MONTH;
	t->day = 1;
	t->tz_fixed = 1;
	t->response_days = 10;
	t->procedure = TL_PROC_CONFIRMATION;
	t->unilateral = 1;
}

/* ---- time zones and cron rules (pure; no tz database) */

int tl_tz_parse(const char *s, size_t n, int *fixed, int32_t *off)
{
	*fixed = 1;
	*off = 0;
	if (n == 0 || (n == 3 && memcmp(s, "UTC", 3) == 0) || (n == 1 && s[0] == 'Z'))
		return 0;
	if ((s[0] == '+' || s[0] == '-') && n == 6 && s[3] == ':' && is_digits(s + 1, 2) &&
	    is_digits(s + 4, 2)) {
		int h = (s[1] - '0') * 10 + (s[2] - '0'), m = (s[4] - '0') * 10 + (s[5] - '0');
		if (m > 59 || h * 60 + m > TL_TZ_OFFSET_MAX)
			return -1;
		*off = (s[0] == '-' ? -1 : 1) * (h * 60 + m);
		return 0;
	}
	/* An IANA name: "Area/Location[/More]", ASCII letters, digits, '_', '-',
	 * '+', '/'; starting with a letter. Kept as a label. */
	if (n > 64 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return -1;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '+' || ch == '/'))
			return -1;
		if (ch == '/' && (i + 1 == n || s[i + 1] == '/'))
			return -1;
	}
	*fixed = 0;
	return 0;
}

struct cron {
	uint64_t min;  /* bit per minute 0..59 */
	uint32_t hour; /* 0..23 */
	uint32_t dom;  /* 1..31 */
	uint32_t mon;  /* 1..12 */
	uint32_t dow;  /* 0..6, Sunday 0 (7 read as 0) */
	int dom_any, dow_any;
};

static int cron_num(const char **p, const char *end, unsigned *v)
{
	unsigned x = 0;
	const char *q = *p;
	if (q >= end || *q < '0' || *q > '9')
		return -1;
	while (q < end && *q >= '0' && *q <= '9' && x < 1000)
		x = x * 10 + (unsigned)(*q++ - '0');
	*p = q;
	*v = x;
	return 0;
}

/* One field: items separated by ','; an item is '*', N or N-M, optionally
 * followed by /STEP. Sets bits lo..hi of *bits. */
static int cron_field(const char *s, const char *end, unsigned lo, unsigned hi, uint64_t *bits,
                      int *any)
{
	*bits = 0;
	*any = end - s == 1 && s[0] == '*';
	while (s < end) {
		unsigned a, b, step = 1;
		if (*s == '*') {
			a = lo;
			b = hi;
			s++;
		} else {
			if (cron_num(&s, end, &a) != 0)
				return -1;
			b = a;
			if (s < end && *s == '-') {
				s++;
				if (cron_num(&s, end, &b) != 0)
					return -1;
			}
		}
		if (s < end && *s == '/') {
			s++;
			if (cron_num(&s, end, &step) != 0 || step == 0)
				return -1;
		}
		if (a < lo || b > hi || a > b)
			return -1;
		for (unsigned i = a; i <= b; i += step)
			*bits |= (uint64_t)1 << i;
		if (s < end && *s != ',')
			return -1;
		if (s < end && ++s == end)
			return -1; /* trailing ',' */
	}
	return *bits ? 0 : -1;
}

static int cron_parse(const char *s, size_t n, struct cron *c)
{
	static const unsigned lo[5] = {0, 0, 1, 1, 0}, hi[5] = {59, 23, 31, 12, 7};
	const char *p = s, *end = s + n;
	uint64_t bits[5];
	int any[5];

	if (n == 0 || n > TL_STATE_STR_MAX)
		return -1;
	for (int f = 0; f < 5; f++) {
		const char *q;
		while (p < end && *p == ' ')
			p++;
		q = p;
		while (q < end && *q != ' ')
			q++;
		if (q == p || cron_field(p, q, lo[f], hi[f], &bits[f], &any[f]) != 0)
			return -1;
		p = q;
	}
	while (p < end && *p == ' ')
		p++;
	if (p != end)
		return -1;
	c->min = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->mon = (uint32_t)bits[3];
	c->dow = (uint32_t)((bits[4] | (bits[4] >> 7)) & 0x7f);
	c->dom_any = any[2];
	c->dow_any = any[4];
	return 0;
}

int tl_cron_valid(const char *rule, size_t len)
{
	struct cron c;
	return rule && cron_parse(rule, len, &c) == 0 ? 0 : -1;
}

/* Civil date of a day number (days since 1970-01-01). */
static void civil_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned month_len(int64_t y, unsigned m)
{
	static const unsigned n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : n[m - 1];
}

int tl_terms_next_cycle(const struct tl_terms *t, uint64_t after_ms, uint64_t *out)
{
	const int64_t day_ms = (int64_t)TL_DAY_MS;
	int64_t off, local, day0;
	struct cron cr;

	if (!t || !out || after_ms > (uint64_t)INT64_MAX / 2)
		return TL_EINVAL;
	off = t->tz_fixed ? (int64_t)t->tz_offset_min * 60000 : 0;
	local = (int64_t)after_ms + off; /* local wall clock, as ms */
	day0 = (local >= 0 ? local : local - day_ms + 1) / day_ms;
	if (t->every == TL_CYCLE_CRON && cron_parse(t->rule, strlen(t->rule), &cr) != 0)
		return TL_EINVAL;
	if ((t->every == TL_CYCLE_MONTH && (t->day < 1 || t->day > 31)) ||
	    (t->every == TL_CYCLE_WEEK && (t->day < 1 || t->day > 7)))
		return TL_EINVAL;
	for (int64_t dn = day0; dn <= day0 + 5 * 366; dn++) {
		int64_t y;
		unsigned m, d, wd = (unsigned)(((dn % 7) + 7 + 4) % 7); /* 1970-01-01: Thursday */
		int hit;
		civil_days(dn, &y, &m, &d);
		if (t->every == TL_CYCLE_MONTH) {
			unsigned want = t->day > month_len(y, m) ? month_len(y, m) : t->day;
			hit = d == want;
		} else if (t->every == TL_CYCLE_WEEK) {
			hit = (wd == 0 ? 7u : wd) == t->day;
		} else {
			int dom = (cr.dom >> d) & 1, dow = (cr.dow >> wd) & 1;
			hit = ((cr.mon >> m) & 1) && (cr.dom_any && cr.dow_any ? 1
			                              : cr.dom_any             ? dow
			                              : cr.dow_any             ? dom
			                                                       : (dom || dow));
		}
		if (!hit)
			continue;
		for (unsigned mi = 0; mi < 24 * 60; mi++) {
			int64_t at;
			if (t->every == TL_CYCLE_CRON &&
			    !(((cr.hour >> (mi / 60)) & 1) && ((cr.min >> (mi % 60)) & 1)))
				continue;
			at = dn * day_ms + (int64_t)mi * 60000 - off;
			if (at > (int64_t)after_ms) {
				*out = (uint64_t)at;
				return 0;
			}
			if (t->every != TL_CYCLE_CRON)
				break; /* month and week: 00:00 only */
		}
	}
	return TL_ENOTFOUND;
}

/* Reads the optional escalation ladder and witness set into t. */
static int propose_extras(struct val *v, struct tl_terms *t, char *why, size_t cap)
{
	struct mh h;
	if (v[TP_ESC].present) {
		struct rd r = v[TP_ESC].sub;
		if (rd_head(&r, &h) != 0 || h.n > TL_TERMS_ESC_MAX) {
			snprintf(why, cap, "has more than %u escalation steps", TL_TERMS_ESC_MAX);
			return -1;
		}
		for (size_t i = 0; i < h.n; i++) {
			struct val ev[3];
			char sub[120];
			struct tl_escalation *e = &t->escalation[i];
			if (parse_map(&r, f_esc, 3, ev, sub, sizeof sub) != 0) {
				snprintf(why, cap, "escalation step %zu %s", i + 1, sub);
				return -1;
			}
			if (ev[0].i < 0 || ev[0].i > TL_STATE_RESPONSE_DAYS_MAX || ev[1].i < 1 ||
			    ev[1].i > 100 || ev[2].n < 1 || ev[2].n > TL_STATE_STR_MAX ||
			    (i > 0 && (uint64_t)ev[0].i <= t->escalation[i - 1].after_days)) {
				snprintf(
				        why, cap,
				        "escalation step %zu is out of range (after_days 0..%u and "
				        "increasing, level 1..100, to 1..%u bytes)",
				        i + 1, TL_STATE_RESPONSE_DAYS_MAX, TL_STATE_STR_MAX);
				return -1;
			}
			e->after_days = (uint32_t)ev[0].i;
			e->level = (uint32_t)ev[1].i;
			memcpy(e->to, ev[2].s, ev[2].n);
			e->to[ev[2].n] = 0;
		}
		t->nescalation = h.n;
	}
	if (v[TP_WITNESSES].present) {
		struct rd r = v[TP_WITNESSES].sub;
		if (rd_head(&r, &h) != 0 || h.n < 1 || h.n > TL_TERMS_WITNESSES_MAX) {
			snprintf(why, cap, "has a witness list of 0 or more than %u keys",
			         TL_TERMS_WITNESSES_MAX);
			return -1;
		}
		uint8_t pks[TL_TERMS_WITNESSES_MAX][TL_PUB_LEN];
		for (size_t i = 0; i < h.n; i++) {
			struct mh x;
			struct tl_vkey vk;
			if (rd_head(&r, &x) != 0 || x.t != MT_STR || x.n > TL_TERMS_VKEY_MAX ||
			    tl_vkey_parse(&vk, (const char *)x.data, x.n) != 0 ||
			    vk.type != TL_SIGTYPE_COSIG) {
				snprintf(why, cap,
				         "witness %zu is not a C2SP cosignature verifier key (type "
				         "0x04)",
				         i + 1);
				return -1;
			}
			memcpy(t->witnesses[i], x.data, x.n);
			t->witnesses[i][x.n] = 0;
			memcpy(pks[i], vk.pk, TL_PUB_LEN);
			/* One key, one vote (wtime.h): the same public key under
			 * another name would make the quorum unreachable. */
			for (size_t j = 0; j < i; j++)
				if (memcmp(pks[j], pks[i], TL_PUB_LEN) == 0) {
					snprintf(why, cap, "names witness %zu twice", j + 1);
					return -1;
				}
		}
		t->nwitnesses = h.n;
	}
	if (v[TP_QUORUM].present &&
	    (!t->nwitnesses || v[TP_QUORUM].i < 1 || (uint64_t)v[TP_QUORUM].i > t->nwitnesses)) {
		snprintf(why, cap, "has quorum %lld, not 1..%zu (the number of witnesses)",
		         (long long)v[TP_QUORUM].i, t->nwitnesses);
		return -1;
	}
	t->quorum = v[TP_QUORUM].present ? (uint32_t)v[TP_QUORUM].i : (uint32_t)t->nwitnesses;
	return 0;
}

int tl_terms_parse(const uint8_t *body, size_t len, struct tl_terms *t, char *why, size_t cap)
{
	struct rd r = {body, len, 0};
	struct val v[TP_N], cv[4];
	int every, proc;

	memset(t, 0, sizeof *t);
	if (!body || parse_map(&r, f_propose, TP_N, v, why, cap) != 0 ||
	    parse_map(&v[TP_CYCLE].sub, f_cycle, 4, cv, why, cap) != 0)
		return TL_EFORMAT;
	every = str_pick(&cv[CY_EVERY], cycles, 3);
	proc = str_pick(&v[TP_PROC], procedures, 3);
	if (every < 0) {
		snprintf(why, cap, "has a cycle that is not month, week or cron");
		return TL_EFORMAT;
	}
	if (every == TL_CYCLE_CRON ? (cv[CY_DAY].present || !cv[CY_RULE].present ||
	                              cron_parse(cv[CY_RULE].s, cv[CY_RULE].n, &(struct cron){0}))
	                           : (cv[CY_RULE].present || !cv[CY_DAY].present ||
	                              cv[CY_DAY].i < 1 || cv[CY_DAY].i > (every ? 7 : 31))) {
		if (every == TL_CYCLE_CRON)
			snprintf(
			        why, cap,
			        "has a cron cycle without a valid rule (5 fields m h dom mon dow)");
		else
			snprintf(why, cap, "has a %s cycle without a day in 1..%d", cycles[every],
			         every ? 7 : 31);
		return TL_EFORMAT;
	}
	if (proc < 0) {
		snprintf(why, cap,
		         "has a procedure that is not confirmation, notification or balance");
		return TL_EFORMAT;
	}
	if (v[TP_DAYS].i < 0 || v[TP_DAYS].i > TL_STATE_RESPONSE_DAYS_MAX) {
		snprintf(why, cap, "has response_days %lld, not 0..%u", (long long)v[TP_DAYS].i,
		         TL_STATE_RESPONSE_DAYS_MAX);
		return TL_EFORMAT;
	}
	if (v[TP_ID].n < 1 || v[TP_ID].n > TL_STATE_STR_MAX || !currency_ok(&v[TP_CURRENCY])) {
		snprintf(why, cap,
		         "has an empty or long terms_id, or a currency that is not three "
		         "capital letters");
		return TL_EFORMAT;
	}
	if (cv[CY_TZ].n > TL_STATE_STR_MAX ||
	    tl_tz_parse(cv[CY_TZ].s, cv[CY_TZ].n, &t->tz_fixed, &t->tz_offset_min) != 0) {
		snprintf(why, cap,
		         "has a time zone that is not UTC, an offset like +08:00 or an IANA name");
		return TL_EFORMAT;
	}
	if (propose_extras(v, t, why, cap) != 0)
		return TL_EFORMAT;
	memcpy(t->terms_id, v[TP_ID].s, v[TP_ID].n);
	t->every = (enum tl_cycle)every;
	t->day = every == TL_CYCLE_CRON ? 0 : (uint32_t)cv[CY_DAY].i;
	if (every == TL_CYCLE_CRON)
		memcpy(t->rule, cv[CY_RULE].s, cv[CY_RULE].n);
	memcpy(t->tz, cv[CY_TZ].s, cv[CY_TZ].n);
	t->response_days = (uint32_t)v[TP_DAYS].i;
	t->procedure = (enum tl_procedure)proc;
	memcpy(t->currency, v[TP_CURRENCY].s, 3);
	t->unilateral = 1; /* until accepted */
	return 0;
}

static void do_propose(struct ctx *c, const struct ent *x, enum tl_role by, uint64_t seq)
{
	struct tl_state *s = c->s;
	struct tl_proposal *p;
	char why[160] = "";
	uint8_t d[TL_HASH_LEN];

	if (s->nproposals >= TL_STATE_TERMS_MAX) {
		finding(c, TL_FIND_LIMIT, by, seq, "more than %u terms proposals; ignored",
		        TL_STATE_TERMS_MAX);
		return;
	}
	if (grow(&s->proposals, &c->props_cap, s->nproposals + 1, sizeof *s->proposals) != 0) {
		c->oom = 1;
		return;
	}
	p = &s->proposals[s->nproposals];
	memset(p, 0, sizeof *p);
	if (tl_terms_parse(x->body, x->body_len, &p->t, why, sizeof why) != 0) {
		finding(c, TL_FIND_INVALID, by, seq, "terms.propose %s; ignored", why);
		return;
	}
	memcpy(p->leaf, x->leaf, TL_HASH_LEN);
	p->t.proposer = by;
	p->t.propose_seq = seq;
	key_digest(d, x->leaf, TL_HASH_LEN);
	if (tab_put(&c->prop_leaf, d, s->nproposals) != 0) {
		c->oom = 1;
		return;
	}
	s->nproposals++;
}

static void do_accept(struct ctx *c, const struct ent *x, enum tl_role by, uint64_t seq)
{
	struct rd r = {x->body, x->body_len, 0};
	struct val v[1];
	char why[160];

	if (parse_map(&r, f_accept, 1, v, why, sizeof why) != 0) {
		finding(c, TL_FIND_INVALID, by, seq, "terms.accept %s; ignored", why);
		return;
	}
	if (grow(&c->accs, &c->accs_cap, c->naccs + 1, sizeof *c->accs) != 0) {
		c->oom = 1;
		return;
	}
	c->accs[c->naccs].by = by;
	c->accs[c->naccs].seq = seq;
	c->accs[c->naccs].time_ms = x->witnessed ? x->witnessed : x->time_ms;
	memcpy(c->accs[c->naccs].leaf, v[0].h, TL_HASH_LEN);
	c->naccs++;
}

static int terms_cmp(const void *a, const void *b)
{
	const struct tl_terms *x = a, *y = b;
	if (x->accept_time_ms != y->accept_time_ms)
		return x->accept_time_ms < y->accept_time_ms ? -1 : 1;
	if (x->proposer != y->proposer) /* accepter is the other side */
		return x->proposer > y->proposer ? -1 : 1;
	if (x->accept_seq != y->accept_seq)
		return x->accept_seq < y->accept_seq ? -1 : 1;
	return 0;
}

/* Resolves accepts after both feeds are read (a proposal may be in either). */
static void resolve_terms(struct ctx *c)
{
	struct tl_state *s = c->s;
	for (size_t i = 0; i < c->naccs; i++) {
		const struct accept *a = &c->accs[i];
		uint8_t d[TL_HASH_LEN];
		size_t *pi;
		struct tl_proposal *p;

		key_digest(d, a->leaf, TL_HASH_LEN);
		pi = tab_get(&c->prop_leaf, d);
		if (!pi) {
			finding(c, TL_FIND_REF, a->by, a->seq,
			        "terms.accept names no terms.propose of this channel; ignored");
			continue;
		}
		p = &s->proposals[*pi];
		if (p->t.proposer == a->by) {
			finding(c, TL_FIND_AUTHOR, a->by, a->seq,
			        "terms.accept of the %s's own proposal (seq %llu); ignored",
			        role_name(a->by), (unsigned long long)p->t.propose_seq);
			continue;
		}
		if (p->accepted) {
			finding(c, TL_FIND_RULE, a->by, a->seq,
			        "terms.accept of proposal seq %llu, accepted before; ignored",
			        (unsigned long long)p->t.propose_seq);
			continue;
		}
		p->accepted = 1;
		p->t.accept_seq = a->seq;
		p->t.accept_time_ms = a->time_ms;
		p->t.unilateral = 0;
		s->terms[s->nterms++] = p->t;
	}
	qsort(s->terms, s->nterms, sizeof *s->terms, terms_cmp);
}

/* Index of the last agreement accepted at or before t, SIZE_MAX if none. */
static size_t terms_at(const struct tl_state *s, uint64_t t)
{
	size_t lo = 0, hi = s->nterms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->terms[mid].accept_time_ms <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : SIZE_MAX;
}

/* ------------------------------------------------------------ people */

static const struct fld f_grant[] = {
        {"key", FT_HEX32, 1}, {"name", FT_STR, 1}, {"role", FT_STR, 1}};
static const struct fld f_revoke[] = {{"key", FT_HEX32, 1}};

static void do_key(struct ctx *c, const struct ent *x, enum tl_role by, uint64_t seq, int grant)
{
	struct rd r = {x->body, x->body_len, 0};
	struct val v[3];
	char why[160];
	int role = P_REVOKED;
	uint8_t d[TL_HASH_LEN];
	size_t *pi;

	if (parse_map(&r, grant ? f_grant : f_revoke, grant ? 3 : 1, v, why, sizeof why) != 0 ||
	    (grant && (role = str_pick(&v[2], person_roles, 3) + 1) == 0 &&
	     snprintf(why, sizeof why, "has an unknown role") > 0)) {
		finding(c, TL_FIND_INVALID, by, seq, "%s %s; ignored",
		        grant ? "key.grant" : "key.revoke", why);
		return;
	}
	if (by != TL_ROLE_CUSTOMER)
		return; /* the supplier's people answer nothing in this state */
	key_digest(d, v[0].h, TL_PUB_LEN);
	pi = tab_get(&c->people, d);
	if (!pi) {
		if (c->nprole >= TL_STATE_PEOPLE_MAX) {
			finding(c, TL_FIND_LIMIT, by, seq, "more than %u person keys; ignored",
			        TL_STATE_PEOPLE_MAX);
			return;
		}
		if (grow(&c->prole, &c->prole_cap, c->nprole + 1, 1) != 0 ||
		    tab_put(&c->people, d, c->nprole) != 0) {
			c->oom = 1;
			return;
		}
		c->prole[c->nprole++] = (uint8_t)role;
		return;
	}
	c->prole[*pi] = (uint8_t)role;
}

/* ------------------------------------------------------ customer acts */

static const struct fld f_seen[] = {
        {"checkpoint", FT_STR, 1}, {"feed", FT_STR, 1}, {"size", FT_INT, 1}};
static const struct fld f_view[] = {{"person", FT_HEX32, 0}, {"statement", FT_HEX32, 1}};
static const struct fld f_confirm[] = {{"balance", FT_INT, 1},
                                       {"person", FT_HEX32, 1},
                                       {"person_sig", FT_SIG, 1},
                                       {"statement", FT_HEX32, 1}};
static const struct fld f_dispute[] = {{"balance", FT_INT, 1},
                                       {"lines", FT_ARR, 1},
                                       {"person", FT_HEX32, 1},
                                       {"person_sig", FT_SIG, 1},
                                       {"statement", FT_HEX32, 1}};
static const struct fld f_dline[] = {{"blobs", FT_ARR, 0},
                                     {"doc", FT_STR, 1},
                                     {"note", FT_STR, 0},
                                     {"reason", FT_STR, 1},
                                     {"their_amount", FT_INT, 1}};
enum { DL_BLOBS, DL_DOC, DL_NOTE, DL_REASON, DL_AMOUNT };

static void do_seen(struct ctx *c, const struct ent *x, enum tl_role by, uint64_t seq)
{
	struct tl_state *s = c->s;
	struct rd r = {x->body, x->body_len, 0};
	struct val v[3];
	char why[160];

	if (parse_map(&r, f_seen, 3, v, why, sizeof why) != 0 || v[2].i < 0) {
		if (v[2].present && v[2].i < 0)
			snprintf(why, sizeof why, "has a negative size");
		finding(c, TL_FIND_INVALID, by, seq, "seen %s; ignored", why);
		return;
	}
	if (by != TL_ROLE_CUSTOMER || !c->feed[TL_ROLE_SUPPLIER] || v[1].n != TL_ORIGIN_LEN ||
	    memcmp(v[1].s, c->feed[TL_ROLE_SUPPLIER]->origin, TL_ORIGIN_LEN) != 0)
		return;
	if ((uint64_t)v[2].i <= c->seen_size)
		return;
	c->seen_size = (uint64_t)v[2].i;
	while (c->seen_upto < s->nstmts && s->stmts[c->seen_upto].seq < c->seen_size) {
		struct tl_stmt *st = &s->stmts[c->seen_upto];
		st->seen = 1;
		st->seen_seq = seq;
		c->aux[c->seen_upto].seen_claimed = x->time_ms;
		c->aux[c->seen_upto].seen_witnessed = x->witnessed;
		event(c, st, TL_EV_SEEN, TL_ROLE_CUSTOMER, seq, x, NULL);
		c->seen_upto++;
	}
}

static void do_view(struct ctx *c, const struct ent *x, uint64_t seq)
{
	struct rd r = {x->body, x->body_len, 0};
	struct val v[2];
	char why[160];
	struct tl_stmt *st;

	if (parse_map(&r, f_view, 2, v, why, sizeof why) != 0) {
		finding(c, TL_FIND_INVALID, TL_ROLE_CUSTOMER, seq, "view %s; ignored", why);
		return;
	}
	st = named(c, v[1].h, TL_ROLE_CUSTOMER, seq, "view");
	if (!st)
		return;
	st->viewed = 1;
	event(c, st, TL_EV_VIEWED, TL_ROLE_CUSTOMER, seq, x, v[0].present ? v[0].h : NULL);
}

static void free_lines(struct tl_stmt *st)
{
	for (size_t i = 0; i < st->ndlines; i++) {
		free(st->lines[i].doc);
		free(st->lines[i].note);
	}
	free(st->lines);
	st->lines = NULL;
	st->ndlines = 0;
}

/*
 * Checks the lines of a dispute; when out is set, also copies them (*out
 * owned by the caller, *n lines). Returns -1 with why on a schema fault.
 */
static int dispute_lines(struct rd sub, struct tl_dispute_line **out, size_t *n, char *why,
                         size_t cap)
{
	struct mh h, b;
	struct val v[5];
	struct tl_dispute_line *l = NULL;

	if (rd_head(&sub, &h) != 0 || h.n > TL_STATE_LINES_MAX) {
		snprintf(why, cap, "has more than %u lines", TL_STATE_LINES_MAX);
		return -1;
	}
	if (out && h.n && !(l = calloc(h.n, sizeof *l)))
		return -2;
	for (size_t i = 0; i < h.n; i++) {
		char sub_why[120];
		int reason;
		if (parse_map(&sub, f_dline, 5, v, sub_why, sizeof sub_why) != 0) {
			snprintf(why, cap, "line %zu %s", i + 1, sub_why);
			goto bad;
		}
		reason = str_pick(&v[DL_REASON], reasons, 10);
		if (reason < 0 || v[DL_DOC].n < 1 || v[DL_DOC].n > TL_STATE_STR_MAX) {
			snprintf(why, cap,
			         "line %zu has an unknown reason code or a bad document number",
			         i + 1);
			goto bad;
		}
		if (v[DL_BLOBS].present) {
			struct rd br = v[DL_BLOBS].sub;
			uint8_t tmp[TL_HASH_LEN];
			if (rd_head(&br, &b) != 0)
				goto bad;
			for (size_t k = 0; k < b.n; k++) {
				struct mh e;
				if (rd_head(&br, &e) != 0 || e.t != MT_STR ||
				    !hex32_ok((const char *)e.data, e.n, tmp)) {
					snprintf(why, cap,
					         "line %zu has a blob that is not a SHA-256 hex",
					         i + 1);
					goto bad;
				}
			}
		}
		if (l) {
			size_t nn =
			        v[DL_NOTE].n > TL_STATE_NOTE_MAX ? TL_STATE_NOTE_MAX : v[DL_NOTE].n;
			l[i].doc = dupn(v[DL_DOC].s, v[DL_DOC].n);
			l[i].their_amount = v[DL_AMOUNT].i;
			l[i].reason = (enum tl_reason)reason;
			l[i].note = v[DL_NOTE].present ? dupn(v[DL_NOTE].s, nn) : NULL;
			l[i].nblobs = v[DL_BLOBS].present ? b.n : 0;
			if (!l[i].doc || (v[DL_NOTE].present && !l[i].note)) {
				struct tl_stmt tmp = {.lines = l, .ndlines = i + 1};
				free_lines(&tmp);
				return -2;
			}
		}
	}
	if (out) {
		*out = l;
		*n = h.n;
	}
	return 0;
bad:
	if (l) {
		struct tl_stmt tmp = {.lines = l, .ndlines = h.n};
		free_lines(&tmp);
	}
	return -1;
}

static void short_hex(char out[17], const uint8_t *k)
{
	tl_hex_encode(out, k, 8);
}

/* confirm (dispute = 0) or dispute (dispute = 1). */
static void do_answer(struct ctx *c, const struct ent *x, uint64_t seq, int dispute)
{
	struct tl_state *s = c->s;
	struct rd r = {x->body, x->body_len, 0};
	struct val v[5];
	char why[160], ph[17];
	const char *kind = dispute ? "dispute" : "confirm";
	const struct val *bal, *person, *sig, *stmt;
	struct tl_stmt *st;
	struct aux *ax;
	uint8_t d[TL_HASH_LEN];
	size_t *pi;
	int role;
	uint64_t t = x->witnessed ? x->witnessed : x->time_ms;

	if (parse_map(&r, dispute ? f_dispute : f_confirm, dispute ? 5 : 4, v, why, sizeof why) !=
	            0 ||
	    (dispute && dispute_lines(v[1].sub, NULL, NULL, why, sizeof why) != 0)) {
		finding(c, TL_FIND_INVALID, TL_ROLE_CUSTOMER, seq, "%s %s; ignored", kind, why);
		return;
	}
	bal = &v[0];
	person = &v[dispute ? 2 : 1];
	sig = &v[dispute ? 3 : 2];
	stmt = &v[dispute ? 4 : 3];
	st = named(c, stmt->h, TL_ROLE_CUSTOMER, seq, kind);
	if (!st)
		return;
	short_hex(ph, person->h);
	key_digest(d, person->h, TL_PUB_LEN);
	pi = tab_get(&c->people, d);
	role = pi ? c->prole[*pi] : P_NONE;
	if (role == P_REVOKED) {
		finding(c, TL_FIND_AUTHORITY, TL_ROLE_CUSTOMER, seq,
		        "%s of %s refused: person key %s... was revoked before seq %llu", kind,
		        st->id, ph, (unsigned long long)seq);
		goto refused;
	}
	if (role != P_APPROVER && role != P_DIRECTOR) {
		finding(c, TL_FIND_AUTHORITY, TL_ROLE_CUSTOMER, seq,
		        "%s of %s refused: person key %s... was not an approver at seq %llu", kind,
		        st->id, ph, (unsigned long long)seq);
		goto refused;
	}
	tl_buf_reset(&c->msg);
	if (tl_person_sig_message(&c->msg, kind, strlen(kind), x->body, x->body_len) != 0 ||
	    tl_verify(sig->h, c->msg.data, c->msg.len, person->h) != 0) {
		finding(c, TL_FIND_AUTHORITY, TL_ROLE_CUSTOMER, seq,
		        "%s of %s refused: bad person signature by %s...", kind, st->id, ph);
		goto refused;
	}
	ax = &c->aux[st - s->stmts];
	free_lines(st);
	st->answer_seq = seq;
	ax->answer_ms = t;
	st->has_agreed = st->has_their_balance = 0;
	if (!dispute && bal->i == st->closing) {
		st->answered = 1;
		st->has_agreed = 1;
		st->agreed_balance = bal->i;
		event(c, st, TL_EV_CONFIRMED, TL_ROLE_CUSTOMER, seq, x, person->h);
		return;
	}
	st->answered = 2;
	st->has_their_balance = 1;
	st->their_balance = bal->i;
	if (!ax->has_dispute) {
		ax->has_dispute = 1;
		ax->first_dispute_ms = t;
	}
	if (dispute) {
		int rc = dispute_lines(v[1].sub, &st->lines, &st->ndlines, why, sizeof why);
		if (rc == -2)
			c->oom = 1;
	}
	event(c, st, TL_EV_DISPUTED, TL_ROLE_CUSTOMER, seq, x, person->h);
	return;
refused:
	event(c, st, TL_EV_REFUSED, TL_ROLE_CUSTOMER, seq, x, person->h);
}

/* ------------------------------------------------------ supplier acts */

static const struct fld f_reminder[] = {
        {"level", FT_INT, 1}, {"statement", FT_HEX32, 1}, {"via", FT_STR, 1}};
static const struct fld f_escalate[] = {
        {"level", FT_INT, 1}, {"statement", FT_HEX32, 1}, {"to", FT_STR, 1}};
static const struct fld f_comment[] = {{"statement", FT_HEX32, 0}, {"text", FT_STR, 1}};
static const struct fld f_close[] = {{"statement", FT_HEX32, 1}};

static void do_ref(struct ctx *c, const struct ent *x, enum tl_role by, uint64_t seq, enum kind k)
{
	struct rd r = {x->body, x->body_len, 0};
	struct val v[3];
	char why[160];
	const struct fld *f = k == K_REMINDER   ? f_reminder
	                      : k == K_ESCALATE ? f_escalate
	                      : k == K_COMMENT  ? f_comment
	                                        : f_close;
	size_t nf = k == K_CLOSE ? 1 : k == K_COMMENT ? 2 : 3;
	const struct val *sv = &v[k == K_CLOSE ? 0 : 1];
	struct tl_stmt *st;

	if (parse_map(&r, f, nf, v, why, sizeof why) != 0 ||
	    ((k == K_REMINDER || k == K_ESCALATE) && (v[0].i < 0 || v[0].i > UINT32_MAX) &&
	     snprintf(why, sizeof why, "has a level out of range") > 0)) {
		finding(c, TL_FIND_INVALID, by, seq, "%s %s; ignored", kind_names[k], why);
		return;
	}
	if (k == K_COMMENT && !v[0].present)
		return; /* a comment on the channel, not on a statement */
	st = named(c, k == K_COMMENT ? v[0].h : sv->h, by, seq, kind_names[k]);
	if (!st)
		return;
	switch (k) {
	case K_REMINDER:
		event(c, st, TL_EV_REMINDER, by, seq, x, NULL);
		break;
	case K_ESCALATE:
		if ((uint32_t)v[0].i > st->escalation)
			st->escalation = (uint32_t)v[0].i;
		event(c, st, TL_EV_ESCALATED, by, seq, x, NULL);
		break;
	case K_COMMENT:
		event(c, st, TL_EV_COMMENT, by, seq, x, NULL);
		break;
	default: {
		struct aux *ax = &c->aux[st - c->s->stmts];
		if (!ax->has_close) {
			ax->has_close = 1;
			ax->close_seq = seq;
			ax->close_claimed = x->time_ms;
			ax->close_witnessed = x->witnessed;
		}
		break;
	}
	}
}

/* ---------------------------------------------------------- per feed */

static void read_feed(struct ctx *c, enum tl_role role)
{
	const struct bfeed *f = c->feed[role];
	if (!f)
		return;
	for (size_t i = 0; i < f->n && !c->oom; i++) {
		const struct ent *x = &f->e[i];
		enum kind k = kind_of(x);
		int s_only = k == K_STATEMENT || k == K_REMINDER || k == K_ESCALATE || k == K_CLOSE;
		int c_only = k == K_VIEW || k == K_CONFIRM || k == K_DISPUTE;

		if ((s_only && role != TL_ROLE_SUPPLIER) || (c_only && role != TL_ROLE_CUSTOMER)) {
			finding(c, TL_FIND_AUTHOR, role, i, "%s written by the %s; ignored",
			        kind_names[k], role_name(role));
			continue;
		}
		switch (k) {
		case K_STATEMENT:
			do_statement(c, x, i);
			break;
		case K_TERMS_PROPOSE:
			do_propose(c, x, role, i);
			break;
		case K_TERMS_ACCEPT:
			do_accept(c, x, role, i);
			break;
		case K_KEY_GRANT:
		case K_KEY_REVOKE:
			do_key(c, x, role, i, k == K_KEY_GRANT);
			break;
		case K_SEEN:
			do_seen(c, x, role, i);
			break;
		case K_VIEW:
			do_view(c, x, i);
			break;
		case K_CONFIRM:
		case K_DISPUTE:
			do_answer(c, x, i, k == K_DISPUTE);
			break;
		case K_REMINDER:
		case K_ESCALATE:
		case K_COMMENT:
		case K_CLOSE:
			do_ref(c, x, role, i, k);
			break;
		case K_OTHER:
			break;
		}
	}
}

/* Picks the supplier's feed; returns 0/1 (slot) or -1 when unknown. */
static int pick_supplier(struct ctx *c, const struct tl_state_builder *b)
{
	int first[2] = {-1, -1};
	uint64_t t[2] = {0, 0}, sq[2] = {0, 0};

	if (b->has_hint) {
		for (int i = 0; i < 2; i++)
			if (b->f[i].used && memcmp(b->f[i].o.pk, b->hint, TL_PUB_LEN) == 0)
				return i;
		if (!b->f[1].used)
			return b->f[0].used ? -2 : -1; /* the one feed is the customer's */
		finding(c, TL_FIND_ROLES, TL_ROLE_SUPPLIER, 0,
		        "neither feed is the named supplier's; the supplier is inferred");
	}
	for (int i = 0; i < 2; i++) {
		for (size_t j = 0; b->f[i].used && j < b->f[i].n; j++) {
			const struct ent *x = &b->f[i].e[j];
			if (kind_of(x) == K_STATEMENT) {
				first[i] = 1;
				t[i] = x->witnessed ? x->witnessed : x->time_ms;
				sq[i] = j;
				break;
			}
		}
	}
	if (first[0] < 0 && first[1] < 0)
		return -1;
	if (first[0] < 0 || first[1] < 0)
		return first[0] < 0 ? 1 : 0;
	{
		int w;
		if (t[0] != t[1])
			w = t[0] < t[1] ? 0 : 1;
		else if (sq[0] != sq[1])
			w = sq[0] < sq[1] ? 0 : 1;
		else
			w = memcmp(&b->f[0].o, &b->f[1].o, sizeof b->f[0].o) < 0 ? 0 : 1;
		finding(c, TL_FIND_ROLES, TL_ROLE_SUPPLIER, sq[w],
		        "both feeds hold statements; the author of the earlier one is taken as the "
		        "supplier");
		return w;
	}
}

/* ------------------------------------------------------- evaluation */

static int ev_cmp(const void *a, const void *b)
{
	const struct tl_state_event *x = a, *y = b;
	uint64_t tx = x->witnessed_ms ? x->witnessed_ms : x->claimed_ms;
	uint64_t ty = y->witnessed_ms ? y->witnessed_ms : y->claimed_ms;
	if (tx != ty)
		return tx < ty ? -1 : 1;
	if (x->feed != y->feed)
		return x->feed < y->feed ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	if (x->event != y->event)
		return x->event < y->event ? -1 : 1;
	return 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void evaluate(struct ctx *c)
{
	struct tl_state *s = c->s;
	size_t k = terms_at(s, s->now_ms);

	if (k == SIZE_MAX)
		default_terms(&s->in_force);
	else
		s->in_force = s->terms[k];
	struct tl_terms def;

	default_terms(&def); /* once: the struct is a few KiB */
	for (size_t i = 0; i < s->nstmts; i++) {
		struct tl_stmt *st = &s->stmts[i];
		struct aux *ax = &c->aux[i];
		const struct tl_terms *t;
		uint64_t base, eff = st->witnessed_ms ? st->witnessed_ms : st->claimed_ms;
		enum tl_stmt_status b;

		st->terms = terms_at(s, eff);
		if (st->terms == SIZE_MAX) {
			t = &def;
		} else {
			t = &s->terms[st->terms];
		}
		if (st->witnessed_ms) {
			base = st->witnessed_ms;
			st->deadline_src = TL_TIME_WITNESSED;
		} else if (st->seen && ax->seen_witnessed) {
			base = ax->seen_witnessed;
			st->deadline_src = TL_TIME_SEEN_WITNESSED;
		} else if (st->seen) {
			base = ax->seen_claimed;
			st->deadline_src = TL_TIME_SEEN_CLAIMED;
		} else {
			base = st->claimed_ms;
			st->deadline_src = TL_TIME_CLAIMED;
		}
		st->deadline_ms = add_sat(base, (uint64_t)t->response_days * TL_DAY_MS);
		st->late = st->answered && ax->answer_ms > st->deadline_ms;

		if (st->answered == 1) {
			b = TL_STMT_CONFIRMED;
		} else if (st->answered == 2) {
			b = TL_STMT_DISPUTED;
			if (t->procedure == TL_PROC_NOTIFICATION && s->now_ms >= st->deadline_ms &&
			    ax->first_dispute_ms > st->deadline_ms) {
				b = TL_STMT_DEEMED;
				finding(c, TL_FIND_RULE, TL_ROLE_CUSTOMER, st->answer_seq,
				        "dispute of %s came after its deadline; the statement "
				        "stands as "
				        "deemed confirmed",
				        st->id);
			}
		} else if (t->procedure == TL_PROC_NOTIFICATION && s->now_ms >= st->deadline_ms) {
			b = TL_STMT_DEEMED;
		} else if (t->procedure != TL_PROC_NOTIFICATION && s->now_ms > st->deadline_ms) {
			b = TL_STMT_OVERDUE;
		} else {
			b = st->viewed ? TL_STMT_VIEWED : st->seen ? TL_STMT_SEEN : TL_STMT_SENT;
		}
		if (ax->has_close) {
			if (b == TL_STMT_CONFIRMED || b == TL_STMT_DEEMED) {
				struct ent fake = {.time_ms = ax->close_claimed,
				                   .witnessed = ax->close_witnessed};
				st->closed = 1;
				st->close_seq = ax->close_seq;
				b = TL_STMT_CLOSED;
				event(c, st, TL_EV_CLOSED, TL_ROLE_SUPPLIER, ax->close_seq, &fake,
				      NULL);
			} else {
				finding(c, TL_FIND_RULE, TL_ROLE_SUPPLIER, ax->close_seq,
				        "close of %s version %llu, which is %s, not confirmed; "
				        "ignored",
				        st->id, (unsigned long long)st->version,
				        tl_stmt_status_name(b));
			}
		}
		if (b != TL_STMT_CLOSED && st->superseded_by != SIZE_MAX)
			b = TL_STMT_REISSUED;
		st->status = b;
		s->count[b]++;
		qsort(st->timeline, st->ntimeline, sizeof *st->timeline, ev_cmp);
	}
}

void tl_state_free(struct tl_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nstmts; i++) {
		free(s->stmts[i].id);
		free(s->stmts[i].timeline);
		free_lines(&s->stmts[i]);
	}
	free(s->stmts);
	free(s->terms);
	free(s->proposals);
	free(s->findings);
	free(s);
}

int tl_state_build(const struct tl_state_builder *b, uint64_t now_ms, struct tl_state **out)
{
	struct ctx c;
	struct tl_state *s;
	int sup;

	if (!b || !out)
		return TL_EINVAL;
	*out = NULL;
	memset(&c, 0, sizeof c);
	s = calloc(1, sizeof *s);
	if (!s)
		return TL_ENOMEM;
	c.s = s;
	s->now_ms = now_ms;
	tl_buf_init(&c.msg, TL_RECORD_MAX + 64);
	sup = pick_supplier(&c, b);
	if (sup >= 0) {
		s->supplier_known = 1;
		c.feed[TL_ROLE_SUPPLIER] = &b->f[sup];
		c.feed[TL_ROLE_CUSTOMER] = b->f[!sup].used ? &b->f[!sup] : NULL;
	} else if (sup == -2) {
		c.feed[TL_ROLE_CUSTOMER] = &b->f[0];
		s->supplier_known = 1;
	} else {
		/* no statement: roles by origin order, only so the output is stable */
		int lo = !b->f[1].used                                          ? 0
		         : !b->f[0].used                                        ? 1
		         : memcmp(&b->f[0].o, &b->f[1].o, sizeof b->f[0].o) < 0 ? 0
		                                                                : 1;
		c.feed[TL_ROLE_SUPPLIER] = b->f[lo].used ? &b->f[lo] : NULL;
		c.feed[TL_ROLE_CUSTOMER] = b->f[!lo].used ? &b->f[!lo] : NULL;
	}
	for (int r = 0; r < 2; r++) {
		if (c.feed[r]) {
			memcpy(s->origin[r], c.feed[r]->origin, TL_ORIGIN_LEN + 1);
			s->size[r] = c.feed[r]->n;
		}
	}
	read_feed(&c, TL_ROLE_SUPPLIER);
	read_feed(&c, TL_ROLE_CUSTOMER);
	if (!c.oom && c.naccs) {
		s->terms = calloc(c.naccs, sizeof *s->terms);
		if (!s->terms)
			c.oom = 1;
		else
			resolve_terms(&c);
	}
	if (!c.oom)
		evaluate(&c);
	tab_free(&c.by_leaf);
	tab_free(&c.by_id);
	tab_free(&c.prop_leaf);
	tab_free(&c.people);
	free(c.prole);
	free(c.accs);
	free(c.aux);
	tl_buf_release(&c.msg);
	if (c.oom) {
		tl_state_free(s);
		return TL_ENOMEM;
	}
	*out = s;
	return 0;
}

int tl_state_compute(struct tl_state **out, const struct tl_state_feed *a,
                     const struct tl_state_feed *b, const uint8_t *supplier_pk, uint64_t now_ms)
{
	struct tl_state_builder *bl;
	const struct tl_state_feed *fs[2] = {a, b};
	int rc;

	if (!out)
		return TL_EINVAL;
	*out = NULL;
	if ((rc = tl_state_builder_new(&bl, supplier_pk)) != 0)
		return rc;
	for (int f = 0; f < 2; f++) {
		for (size_t i = 0; fs[f] && i < fs[f]->n; i++) {
			rc = tl_state_add(bl, fs[f]->recs[i], fs[f]->lens[i],
			                  fs[f]->witnessed ? fs[f]->witnessed[i] : 0);
			if (rc)
				goto done;
		}
	}
	rc = tl_state_build(bl, now_ms, out);
done:
	tl_state_builder_free(bl);
	return rc;
}

/* ------------------------------------------------ person signatures */

static int put_map_header(struct tl_buf *out, size_t n)
{
	uint8_t h[5];
	size_t hl;
	if (n < 16) {
		h[0] = (uint8_t)(0x80 | n);
		hl = 1;
	} else if (n <= 0xffff) {
		h[0] = 0xde;
		h[1] = (uint8_t)(n >> 8);
		h[2] = (uint8_t)n;
		hl = 3;
	} else {
		h[0] = 0xdf;
		h[1] = (uint8_t)(n >> 24);
		h[2] = (uint8_t)(n >> 16);
		h[3] = (uint8_t)(n >> 8);
		h[4] = (uint8_t)n;
		hl = 5;
	}
	return tl_buf_add(out, h, hl);
}

int tl_person_sig_message(struct tl_buf *out, const char *kind, size_t kind_len,
                          const uint8_t *body, size_t body_len)
{
	struct rd r = {body, body_len, 0};
	struct mh h, k;
	size_t start, cut_a = 0, cut_b = 0;
	int found = 0, rc;

	if (!out || !kind || !body)
		return TL_EINVAL;
	if (rd_head(&r, &h) != 0 || h.t != MT_MAP)
		return TL_EFORMAT;
	start = r.pos;
	for (size_t i = 0; i < h.n; i++) {
		size_t a = r.pos;
		if (rd_head(&r, &k) != 0 || k.t != MT_STR || rd_skip(&r) != 0)
			return TL_EFORMAT;
		if (k.n == 10 && memcmp(k.data, "person_sig", 10) == 0) {
			found = 1;
			cut_a = a;
			cut_b = r.pos;
		}
	}
	if (r.pos != body_len)
		return TL_EFORMAT;
	if (!found)
		cut_a = cut_b = body_len;
	if ((rc = tl_buf_adds(out, TL_PERSON_SIG_CONTEXT)) ||
	    (rc = tl_buf_add(out, kind, kind_len)) || (rc = tl_buf_addc(out, '\n')) ||
	    (rc = put_map_header(out, h.n - (size_t)found)) ||
	    (rc = tl_buf_add(out, body + start, cut_a - start)) ||
	    (rc = tl_buf_add(out, body + cut_b, body_len - cut_b)))
		return rc;
	return 0;
}

/* ---------------------------------------------------- serialisation */

static int pack_to_buf(void *data, const char *buf, size_t len)
{
	return tl_buf_add(data, buf, len) == 0 ? 0 : -1;
}

static int pack_str(msgpack_packer *pk, const char *s)
{
	return msgpack_pack_str_with_body(pk, s, strlen(s));
}

static int pack_idx(msgpack_packer *pk, size_t i)
{
	return i == SIZE_MAX ? msgpack_pack_nil(pk) : msgpack_pack_uint64(pk, i);
}

static int pack_terms(msgpack_packer *pk, const struct tl_terms *t)
{
	if (msgpack_pack_array(pk, 18) || pack_str(pk, t->terms_id) ||
	    msgpack_pack_uint8(pk, (uint8_t)t->every) || msgpack_pack_uint32(pk, t->day) ||
	    pack_str(pk, t->rule) || pack_str(pk, t->tz) ||
	    msgpack_pack_uint8(pk, (uint8_t)t->tz_fixed) ||
	    msgpack_pack_int32(pk, t->tz_offset_min) || msgpack_pack_uint32(pk, t->response_days) ||
	    msgpack_pack_uint8(pk, (uint8_t)t->procedure) || pack_str(pk, t->currency) ||
	    msgpack_pack_array(pk, t->nescalation))
		return -1;
	for (size_t i = 0; i < t->nescalation; i++)
		if (msgpack_pack_array(pk, 3) ||
		    msgpack_pack_uint32(pk, t->escalation[i].after_days) ||
		    msgpack_pack_uint32(pk, t->escalation[i].level) ||
		    pack_str(pk, t->escalation[i].to))
			return -1;
	if (msgpack_pack_array(pk, t->nwitnesses))
		return -1;
	for (size_t i = 0; i < t->nwitnesses; i++)
		if (pack_str(pk, t->witnesses[i]))
			return -1;
	return msgpack_pack_uint32(pk, t->quorum) ||
	       msgpack_pack_uint8(pk, (uint8_t)t->unilateral) ||
	       msgpack_pack_uint8(pk, (uint8_t)t->proposer) ||
	       msgpack_pack_uint64(pk, t->propose_seq) || msgpack_pack_uint64(pk, t->accept_seq) ||
	       msgpack_pack_uint64(pk, t->accept_time_ms);
}

static int pack_stmt(msgpack_packer *pk, const struct tl_stmt *st)
{
	if (msgpack_pack_array(pk, 31) || pack_str(pk, st->id) ||
	    msgpack_pack_uint64(pk, st->version) || msgpack_pack_uint64(pk, st->seq) ||
	    msgpack_pack_bin_with_body(pk, st->leaf, TL_HASH_LEN) || pack_idx(pk, st->supersedes) ||
	    pack_idx(pk, st->superseded_by) || msgpack_pack_uint8(pk, (uint8_t)st->status) ||
	    pack_str(pk, st->currency) || pack_str(pk, st->date) ||
	    msgpack_pack_int64(pk, st->opening) || msgpack_pack_int64(pk, st->closing) ||
	    msgpack_pack_uint64(pk, st->nlines) || pack_idx(pk, st->terms) ||
	    msgpack_pack_uint64(pk, st->claimed_ms) || msgpack_pack_uint64(pk, st->witnessed_ms) ||
	    msgpack_pack_uint64(pk, st->deadline_ms) ||
	    msgpack_pack_uint8(pk, (uint8_t)st->deadline_src) ||
	    msgpack_pack_uint8(pk, (uint8_t)st->seen) || msgpack_pack_uint64(pk, st->seen_seq) ||
	    msgpack_pack_uint8(pk, (uint8_t)st->viewed) ||
	    msgpack_pack_uint8(pk, (uint8_t)st->answered) ||
	    msgpack_pack_uint64(pk, st->answer_seq) || msgpack_pack_uint8(pk, (uint8_t)st->late) ||
	    (st->has_agreed ? msgpack_pack_int64(pk, st->agreed_balance) : msgpack_pack_nil(pk)) ||
	    (st->has_their_balance ? msgpack_pack_int64(pk, st->their_balance)
	                           : msgpack_pack_nil(pk)) ||
	    msgpack_pack_uint8(pk, (uint8_t)st->closed) || msgpack_pack_uint64(pk, st->close_seq) ||
	    msgpack_pack_uint32(pk, st->escalation))
		return -1;
	if (msgpack_pack_array(pk, st->ndlines))
		return -1;
	for (size_t i = 0; i < st->ndlines; i++) {
		const struct tl_dispute_line *l = &st->lines[i];
		if (msgpack_pack_array(pk, 5) || pack_str(pk, l->doc) ||
		    msgpack_pack_int64(pk, l->their_amount) ||
		    msgpack_pack_uint8(pk, (uint8_t)l->reason) ||
		    (l->note ? pack_str(pk, l->note) : msgpack_pack_nil(pk)) ||
		    msgpack_pack_uint64(pk, l->nblobs))
			return -1;
	}
	if (msgpack_pack_array(pk, st->ntimeline))
		return -1;
	for (size_t i = 0; i < st->ntimeline; i++) {
		const struct tl_state_event *e = &st->timeline[i];
		if (msgpack_pack_array(pk, 6) || msgpack_pack_uint8(pk, (uint8_t)e->event) ||
		    msgpack_pack_uint8(pk, (uint8_t)e->feed) || msgpack_pack_uint64(pk, e->seq) ||
		    msgpack_pack_uint64(pk, e->claimed_ms) ||
		    msgpack_pack_uint64(pk, e->witnessed_ms) ||
		    (e->has_person ? msgpack_pack_bin_with_body(pk, e->person, TL_PUB_LEN)
		                   : msgpack_pack_nil(pk)))
			return -1;
	}
	return msgpack_pack_uint64(pk, st->timeline_dropped);
}

int tl_state_serialise(const struct tl_state *s, struct tl_buf *out)
{
	msgpack_packer pk;
	size_t before;

	if (!s || !out)
		return TL_EINVAL;
	before = out->len;
	msgpack_packer_init(&pk, out, pack_to_buf);
	if (msgpack_pack_array(&pk, 13) || pack_str(&pk, "tally/state/v1") ||
	    msgpack_pack_uint64(&pk, s->now_ms) ||
	    msgpack_pack_uint8(&pk, (uint8_t)s->supplier_known) || pack_str(&pk, s->origin[0]) ||
	    pack_str(&pk, s->origin[1]) || msgpack_pack_uint64(&pk, s->size[0]) ||
	    msgpack_pack_uint64(&pk, s->size[1]) || pack_terms(&pk, &s->in_force) ||
	    msgpack_pack_array(&pk, s->nterms))
		goto fail;
	for (size_t i = 0; i < s->nterms; i++)
		if (pack_terms(&pk, &s->terms[i]))
			goto fail;
	if (msgpack_pack_array(&pk, s->nstmts))
		goto fail;
	for (size_t i = 0; i < s->nstmts; i++)
		if (pack_stmt(&pk, &s->stmts[i]))
			goto fail;
	if (msgpack_pack_array(&pk, s->nfindings))
		goto fail;
	for (size_t i = 0; i < s->nfindings; i++) {
		const struct tl_finding *f = &s->findings[i];
		if (msgpack_pack_array(&pk, 4) || msgpack_pack_uint8(&pk, (uint8_t)f->kind) ||
		    msgpack_pack_uint8(&pk, (uint8_t)f->feed) || msgpack_pack_uint64(&pk, f->seq) ||
		    pack_str(&pk, f->msg))
			goto fail;
	}
	/* 12th element */
	if (msgpack_pack_uint64(&pk, s->findings_dropped) || msgpack_pack_array(&pk, s->nproposals))
		goto fail;
	for (size_t i = 0; i < s->nproposals; i++) {
		const struct tl_proposal *p = &s->proposals[i];
		if (msgpack_pack_array(&pk, 3) ||
		    msgpack_pack_bin_with_body(&pk, p->leaf, TL_HASH_LEN) ||
		    msgpack_pack_uint8(&pk, (uint8_t)p->accepted) || pack_terms(&pk, &p->t))
			goto fail;
	}
	return 0;
fail:
	out->len = before;
	return TL_ETOOBIG;
}

int tl_state_digest(const struct tl_state *s, uint8_t out[TL_HASH_LEN])
{
	struct tl_buf b;
	int rc;

	tl_buf_init(&b, (size_t)1 << 34);
	rc = tl_state_serialise(s, &b);
	if (rc == 0)
		tl_sha256(out, b.data, b.len);
	tl_buf_release(&b);
	return rc;
}

/* -------------------------------------------------------------- names */

const char *tl_stmt_status_name(enum tl_stmt_status st)
{
	static const char *const n[] = {
	        "sent",     "seen",      "viewed",    "overdue", "deemed confirmed",
	        "disputed", "confirmed", "re-issued", "closed"};
	return (unsigned)st <= TL_STMT_CLOSED ? n[st] : "?";
}

const char *tl_event_name(enum tl_event ev)
{
	static const char *const n[] = {"sent",      "seen",    "viewed",    "confirmed",
	                                "disputed",  "refused", "re-issued", "reminder",
	                                "escalated", "comment", "closed"};
	return (unsigned)ev <= TL_EV_CLOSED ? n[ev] : "?";
}

const char *tl_procedure_name(enum tl_procedure p)
{
	return (unsigned)p <= TL_PROC_BALANCE ? procedures[p] : "?";
}

const char *tl_reason_name(enum tl_reason r)
{
	return (unsigned)r <= TL_REASON_OTHER ? reasons[r] : "?";
}
