/*
 * json.c — the bridge between JSON (what people and scripts write) and the
 * canonical MessagePack bodies that are signed (DESIGN §3).
 *
 * JSON -> MessagePack must produce the one canonical encoding, so that the
 * same JSON always signs to the same bytes. MessagePack -> JSON and the
 * summary only ever run on bytes that tl_mp_check accepted, which bounds
 * every length and the nesting before anything is read or allocated.
 */
#include <inttypes.h>
#include <jansson.h>
#include <msgpack/pack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/tl_node.h"

#define PATH_CAP    256 /* JSON path in error messages; longer paths are cut */
#define SUMMARY_STR 48  /* bytes of a string shown in a summary before "…" */
#define ELLIPSIS    "\xe2\x80\xa6"

/* ------------------------------------------------- JSON -> MessagePack */

struct j2m {
	msgpack_packer pk;
	char path[PATH_CAP];
	size_t plen;
	char *err;
	size_t errcap;
};

struct j2m_member {
	const char *key;
	size_t keylen;
	json_t *value;
};

static int pack_to_buf(void *data, const char *buf, size_t len)
{
	return tl_buf_add(data, buf, len);
}

static void path_add(struct j2m *c, const char *s, size_t n)
{
	if (n > PATH_CAP - 1 - c->plen)
		n = PATH_CAP - 1 - c->plen;
	memcpy(c->path + c->plen, s, n);
	c->plen += n;
	c->path[c->plen] = '\0';
}

static int ident_key(const char *k, size_t n)
{
	if (n == 0 || (k[0] >= '0' && k[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = k[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			return 0;
	}
	return 1;
}

/* ".key" for identifiers, ["key"] (JSON-escaped) for anything else. */
static void path_key(struct j2m *c, const char *k, size_t n)
{
	char esc[8];

	if (ident_key(k, n)) {
		path_add(c, ".", 1);
		path_add(c, k, n);
		return;
	}
	path_add(c, "[\"", 2);
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = (uint8_t)k[i];
		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			path_add(c, esc, 2);
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(esc, sizeof esc, "\\u%04x", ch);
			path_add(c, esc, 6);
		} else {
			path_add(c, k + i, 1);
		}
	}
	path_add(c, "\"]", 2);
}

static void path_index(struct j2m *c, size_t i)
{
	char s[32];
	int n = snprintf(s, sizeof s, "[%zu]", i);

	path_add(c, s, (size_t)n);
}

static int j2m_fail(struct j2m *c, int rc, const char *what)
{
	if (c->err && c->errcap)
		snprintf(c->err, c->errcap, "%s: %s", c->path, what);
	return rc;
}

/* Shortest text that reads back as v, with a ".0" when it looks integral,
 * so the message shows the number as a person would have typed it. */
static void real_text(char *s, size_t cap, double v)
{
	if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) {
		snprintf(s, cap, "%.1f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(s, cap, "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			break;
	}
}

static int member_cmp(const void *a, const void *b)
{
	const struct j2m_member *x = a, *y = b;
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c = memcmp(x->key, y->key, n);

	if (c)
		return c;
	return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

static int j2m_value(struct j2m *c, const json_t *j, unsigned depth);

static int j2m_object(struct j2m *c, const json_t *j, unsigned depth)
{
	struct j2m_member *m = NULL;
	size_t n = json_object_size(j), i = 0, plen = c->plen;
	void *it;
	int rc;

	if (n) {
		m = calloc(n, sizeof *m);
		if (!m)
			return j2m_fail(c, TL_ENOMEM, "out of memory");
	}
	for (it = json_object_iter((json_t *)j); it && i < n;
	     it = json_object_iter_next((json_t *)j, it), i++) {
		m[i].key = json_object_iter_key(it);
		m[i].keylen = json_object_iter_key_len(it);
		m[i].value = json_object_iter_value(it);
	}
	/* Bytewise order of the UTF-8 keys, which is not code point order
	 * for every pair nor jansson's insertion order. */
	if (n > 1)
		qsort(m, n, sizeof *m, member_cmp);
	rc = msgpack_pack_map(&c->pk, n);
	if (rc) {
		rc = j2m_fail(c, rc, "body too big");
		goto fail;
	}
	for (i = 0; i < n; i++) {
		path_key(c, m[i].key, m[i].keylen);
		if (!tl_utf8_valid((const uint8_t *)m[i].key, m[i].keylen)) {
			rc = j2m_fail(c, TL_EFORMAT, "key is not valid UTF-8");
			goto fail;
		}
		rc = msgpack_pack_str_with_body(&c->pk, m[i].key, m[i].keylen);
		if (rc) {
			rc = j2m_fail(c, rc, "body too big");
			goto fail;
		}
		rc = j2m_value(c, m[i].value, depth + 1);
		if (rc)
			goto fail;
		c->plen = plen;
		c->path[plen] = '\0';
	}
	rc = 0;
fail:
	free(m);
	return rc;
}

static int j2m_array(struct j2m *c, const json_t *j, unsigned depth)
{
	size_t n = json_array_size(j), plen = c->plen;
	int rc;

	rc = msgpack_pack_array(&c->pk, n);
	if (rc)
		return j2m_fail(c, rc, "body too big");
	for (size_t i = 0; i < n; i++) {
		path_index(c, i);
		rc = j2m_value(c, json_array_get(j, i), depth + 1);
		if (rc)
			return rc;
		c->plen = plen;
		c->path[plen] = '\0';
	}
	return 0;
}

/* depth: number of containers enclosing j. */
static int j2m_value(struct j2m *c, const json_t *j, unsigned depth)
{
	char num[64], msg[160];
	json_int_t v;
	int rc;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (depth >= TL_MP_DEPTH_MAX) {
			snprintf(msg, sizeof msg, "nested deeper than %d levels", TL_MP_DEPTH_MAX);
			return j2m_fail(c, TL_ETOOBIG, msg);
		}
		return json_is_object(j) ? j2m_object(c, j, depth) : j2m_array(c, j, depth);
	case JSON_STRING:
		if (!tl_utf8_valid((const uint8_t *)json_string_value(j), json_string_length(j)))
			return j2m_fail(c, TL_EFORMAT, "string is not valid UTF-8");
		rc = msgpack_pack_str_with_body(&c->pk, json_string_value(j),
		                                json_string_length(j));
		break;
	case JSON_INTEGER:
		/* Non-negative values are always written unsigned (canonical form). */
		v = json_integer_value(j);
		rc = v < 0 ? msgpack_pack_int64(&c->pk, (int64_t)v)
		           : msgpack_pack_uint64(&c->pk, (uint64_t)v);
		break;
	case JSON_REAL:
		real_text(num, sizeof num, json_real_value(j));
		snprintf(msg, sizeof msg,
		         "%s is not an integer: amounts are integer minor units (e.g. fen)", num);
		return j2m_fail(c, TL_EFORMAT, msg);
	case JSON_TRUE:
		rc = msgpack_pack_true(&c->pk);
		break;
	case JSON_FALSE:
		rc = msgpack_pack_false(&c->pk);
		break;
	case JSON_NULL:
		rc = msgpack_pack_nil(&c->pk);
		break;
	default:
		return j2m_fail(c, TL_EINVAL, "unknown JSON type");
	}
	if (rc)
		return j2m_fail(c, rc, "body too big");
	return 0;
}

int tl_json_to_mp(const json_t *j, struct tl_buf *out, char *err, size_t errcap)
{
	struct j2m c;
	size_t start;
	int rc;

	if (err && errcap)
		err[0] = '\0';
	if (!j || !out)
		return TL_EINVAL;
	c.plen = 0;
	c.path[0] = '\0';
	c.err = err;
	c.errcap = errcap;
	path_add(&c, "$", 1);
	msgpack_packer_init(&c.pk, out, pack_to_buf);
	start = out->len;
	rc = j2m_value(&c, j, 0);
	if (rc) {
		out->len = start;
		return rc < 0 ? rc : TL_ENOMEM;
	}
	return 0;
}

/* ------------------------------------------------- MessagePack reading */

/*
 * A reader for bytes tl_mp_check has accepted: canonical form and bounds
 * are already proven, yet every read stays bounded so a misuse cannot read
 * outside the input.
 */

struct mp_rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

/* The next item of checked input (see tl_mp_next). */
static int rd_next(struct mp_rd *r, struct tl_mp_item *v)
{
	return tl_mp_next(r->p, r->len, &r->pos, v) ? -1 : 0;
}

/* Skips the value whose header v was just read. */
static int rd_skip(struct mp_rd *r, const struct tl_mp_item *v)
{
	uint64_t todo = 0;
	struct tl_mp_item x;

	if (v->type == TL_MP_ARRAY || v->type == TL_MP_MAP)
		todo = v->type == TL_MP_MAP ? 2 * v->u : v->u;
	while (todo) {
		if (rd_next(r, &x))
			return -1;
		todo--;
		if (x.type == TL_MP_ARRAY || x.type == TL_MP_MAP) {
			/* Checked input: each element has a byte, so todo <= len. */
			todo += x.type == TL_MP_MAP ? 2 * x.u : x.u;
		}
	}
	return 0;
}

/* ------------------------------------------------- MessagePack -> JSON */

static json_t *m2j_value(struct mp_rd *r, unsigned depth);

static json_t *m2j_bin(const uint8_t *data, size_t n)
{
	json_t *o = NULL;
	char *s = malloc(tl_b64_encoded_len(n) + 1);

	if (!s)
		return NULL;
	tl_b64_encode(s, data, n);
	o = json_pack("{s:s}", "$bin", s);
	free(s);
	return o;
}

static json_t *m2j_uint(uint64_t u)
{
	char s[24];

	if (u <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)u);
	/* jansson integers are signed 64-bit: tag the value instead of
	 * silently rounding it through a double. */
	snprintf(s, sizeof s, "%" PRIu64, u);
	return json_pack("{s:s}", "$u64", s);
}

static json_t *m2j_value(struct mp_rd *r, unsigned depth)
{
	struct tl_mp_item v, k;
	json_t *c = NULL, *x;

	if (depth > TL_MP_DEPTH_MAX || rd_next(r, &v))
		return NULL;
	switch (v.type) {
	case TL_MP_NIL:
		return json_null();
	case TL_MP_BOOL:
		return json_boolean(v.u);
	case TL_MP_UINT:
		return m2j_uint(v.u);
	case TL_MP_INT:
		return json_integer((json_int_t)v.i);
	case TL_MP_STR:
		return json_stringn((const char *)v.data, (size_t)v.u);
	case TL_MP_BIN:
		return m2j_bin(v.data, (size_t)v.u);
	case TL_MP_ARRAY:
		c = json_array();
		if (!c)
			return NULL;
		for (uint64_t i = 0; i < v.u; i++) {
			x = m2j_value(r, depth + 1);
			if (!x || json_array_append_new(c, x))
				goto fail;
		}
		return c;
	case TL_MP_MAP:
		c = json_object();
		if (!c)
			return NULL;
		for (uint64_t i = 0; i < v.u; i++) {
			if (rd_next(r, &k) || k.type != TL_MP_STR)
				goto fail;
			x = m2j_value(r, depth + 1);
			if (!x || json_object_setn_new(c, (const char *)k.data, (size_t)k.u, x))
				goto fail;
		}
		return c;
	}
fail:
	json_decref(c);
	return NULL;
}

json_t *tl_mp_to_json(const uint8_t *p, size_t len)
{
	struct mp_rd r = {.p = p, .len = len, .pos = 0};
	json_t *j;

	if (!p || tl_mp_check(p, len, NULL) != 0)
		return NULL;
	j = m2j_value(&r, 0);
	if (j && r.pos != len) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* ------------------------------------------------------------ summary */

struct sw {
	char *out;
	size_t cap; /* bytes of out, NUL included */
	size_t len;
	int cut;
};

static void sw_put(struct sw *w, const char *s, size_t n)
{
	size_t room = w->cap - 1 - w->len;

	if (w->cut)
		return;
	if (n > room) {
		n = room;
		w->cut = 1;
	}
	memcpy(w->out + w->len, s, n);
	w->len += n;
}

static void sw_puts(struct sw *w, const char *s)
{
	sw_put(w, s, strlen(s));
}

/* Longest prefix of at most max bytes that ends on a UTF-8 boundary. */
static size_t utf8_prefix(const uint8_t *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && (s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

static void sw_finish(struct sw *w)
{
	static const char ell[] = ELLIPSIS;
	const size_t elen = sizeof ell - 1;

	if (w->cut) {
		w->len = w->cap - 1 >= elen
		                 ? utf8_prefix((const uint8_t *)w->out, w->len, w->cap - 1 - elen)
		                 : 0;
		if (w->cap - 1 - w->len >= elen) {
			memcpy(w->out + w->len, ell, elen);
			w->len += elen;
		}
	}
	w->out[w->len] = '\0';
}

/*
 * Strings appear bare unless they contain a space (or something that would
 * break the line or the k=v shape), then quoted with C-like escapes.
 */
static void sw_str(struct sw *w, const uint8_t *s, size_t n)
{
	size_t show = utf8_prefix(s, n, SUMMARY_STR);
	int quote = n == 0;
	char esc[8];

	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] <= 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\' || s[i] == '=';
	if (quote)
		sw_put(w, "\"", 1);
	for (size_t i = 0; i < show; i++) {
		uint8_t c = s[i];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			sw_put(w, esc, 2);
		} else if (c == '\n') {
			sw_put(w, "\\n", 2);
		} else if (c == '\t') {
			sw_put(w, "\\t", 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof esc, "\\x%02x", c);
			sw_put(w, esc, 4);
		} else {
			sw_put(w, (const char *)s + i, 1);
		}
	}
	if (show < n)
		sw_puts(w, ELLIPSIS);
	if (quote)
		sw_put(w, "\"", 1);
}

static void sw_value(struct sw *w, const struct tl_mp_item *v)
{
	char s[32];

	switch (v->type) {
	case TL_MP_NIL:
		sw_puts(w, "null");
		return;
	case TL_MP_BOOL:
		sw_puts(w, v->u ? "true" : "false");
		return;
	case TL_MP_UINT:
		snprintf(s, sizeof s, "%" PRIu64, v->u);
		break;
	case TL_MP_INT:
		snprintf(s, sizeof s, "%" PRId64, v->i);
		break;
	case TL_MP_STR:
		sw_str(w, v->data, (size_t)v->u);
		return;
	case TL_MP_BIN:
		snprintf(s, sizeof s, "bin[%" PRIu64 "]", v->u);
		break;
	case TL_MP_ARRAY:
		snprintf(s, sizeof s, "[%" PRIu64 "]", v->u);
		break;
	case TL_MP_MAP:
		sw_puts(w, v->u ? "{" ELLIPSIS "}" : "{}");
		return;
	}
	sw_puts(w, s);
}

void tl_mp_summary(const uint8_t *p, size_t len, char *out, size_t cap)
{
	struct mp_rd r = {.p = p, .len = len, .pos = 0};
	struct sw w = {.out = out, .cap = cap, .len = 0, .cut = 0};
	struct tl_mp_item m, k, v;

	if (!out || cap == 0)
		return;
	if (!p || tl_mp_check_map(p, len, NULL) != 0 || rd_next(&r, &m) || m.type != TL_MP_MAP)
		goto invalid;
	for (uint64_t i = 0; i < m.u && !w.cut; i++) {
		if (rd_next(&r, &k) || k.type != TL_MP_STR || rd_next(&r, &v) || rd_skip(&r, &v))
			goto invalid;
		if (i)
			sw_put(&w, " ", 1);
		sw_str(&w, k.data, (size_t)k.u);
		sw_put(&w, "=", 1);
		sw_value(&w, &v);
	}
	sw_finish(&w);
	return;
invalid:
	w.len = 0;
	w.cut = 0;
	sw_puts(&w, "<invalid body>");
	sw_finish(&w);
}
