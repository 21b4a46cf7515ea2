/*
 * codec.c — canonical MessagePack and the entry/record codec (DESIGN §3).
 *
 * Every byte of an entry is signed and hashed, and independent verifiers
 * check it byte for byte, so the decoder accepts exactly one encoding of a
 * value: the one the encoder writes. Input is untrusted: every declared
 * length or count is checked against the bytes that remain before it is
 * used, nothing is allocated from a declared size, and nesting is walked
 * with an explicit stack capped at TL_MP_DEPTH_MAX.
 */
#include <msgpack/pack.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/tl_consensus.h"

#define CTX_LEN (sizeof(TL_ENTRY_SIG_CONTEXT) - 1)

/* Entries up to this size are verified without touching the heap. */
#define VERIFY_STACK_BUF 4096

static uint64_t load_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned k = 0; k < n; k++)
		v = v << 8 | p[k];
	return v;
}

/* Two's complement of an n-byte field, without implementation-defined casts. */
static int64_t load_be_signed(const uint8_t *p, unsigned n)
{
	uint64_t v = load_be(p, n);
	unsigned bits = 8 * n;

	if (!(v >> (bits - 1) & 1))
		return (int64_t)v;
	if (bits < 64)
		v |= ~UINT64_C(0) << bits;
	return -(int64_t)~v - 1;
}

/*
 * Reads the item at *pos: its header and, for str and bin, its payload. On
 * success *pos is past what was read (a container's elements are not). On
 * failure *pos is the offset of the faulty header.
 */
int tl_mp_next(const uint8_t *p, size_t len, size_t *pos, struct tl_mp_item *it)
{
	/* Smallest value each wider form may carry; below it a shorter form exists. */
	static const uint64_t umin[4] = {0x80, 0x100, 0x10000, UINT64_C(0x100000000)};
	static const int64_t imax[4] = {-33, -129, -32769, -INT64_C(2147483649)};
	static const uint64_t strmin[3] = {32, 0x100, 0x10000};
	static const uint64_t binmin[3] = {0, 0x100, 0x10000};
	size_t at = *pos, left;
	unsigned w;
	uint8_t b;

	if (at >= len)
		return TL_EFORMAT;
	b = p[at];
	left = len - at - 1;
	memset(it, 0, sizeof *it);

	if (b <= 0x7f) {
		it->type = TL_MP_UINT;
		it->u = b;
		*pos = at + 1;
		return 0;
	}
	if (b >= 0xe0) {
		it->type = TL_MP_INT;
		it->i = (int64_t)b - 256;
		*pos = at + 1;
		return 0;
	}
	if (b <= 0x8f || (b >= 0x90 && b <= 0x9f)) {
		it->type = b <= 0x8f ? TL_MP_MAP : TL_MP_ARRAY;
		it->u = b & 0x0f;
		w = 0;
		goto container;
	}
	if (b >= 0xa0 && b <= 0xbf) {
		it->type = TL_MP_STR;
		it->u = b & 0x1f;
		w = 0;
		goto bytes;
	}

	switch (b) {
	case 0xc0:
		it->type = TL_MP_NIL;
		*pos = at + 1;
		return 0;
	case 0xc2:
	case 0xc3:
		it->type = TL_MP_BOOL;
		it->u = b == 0xc3;
		*pos = at + 1;
		return 0;
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		w = 1u << (b - 0xcc);
		if (w > left)
			return TL_EFORMAT;
		it->type = TL_MP_UINT;
		it->u = load_be(p + at + 1, w);
		if (it->u < umin[b - 0xcc])
			return TL_ENONCANON;
		*pos = at + 1 + w;
		return 0;
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3:
		w = 1u << (b - 0xd0);
		if (w > left)
			return TL_EFORMAT;
		it->type = TL_MP_INT;
		it->i = load_be_signed(p + at + 1, w);
		/* Non-negative values must be unsigned; others as short as possible. */
		if (it->i > imax[b - 0xd0])
			return TL_ENONCANON;
		*pos = at + 1 + w;
		return 0;
	case 0xd9:
	case 0xda:
	case 0xdb:
		w = 1u << (b - 0xd9);
		if (w > left)
			return TL_EFORMAT;
		it->type = TL_MP_STR;
		it->u = load_be(p + at + 1, w);
		if (it->u < strmin[b - 0xd9])
			return TL_ENONCANON;
		goto bytes;
	case 0xc4:
	case 0xc5:
	case 0xc6:
		w = 1u << (b - 0xc4);
		if (w > left)
			return TL_EFORMAT;
		it->type = TL_MP_BIN;
		it->u = load_be(p + at + 1, w);
		if (it->u < binmin[b - 0xc4])
			return TL_ENONCANON;
		goto bytes;
	case 0xdc:
	case 0xdd:
	case 0xde:
	case 0xdf:
		w = (b & 1) ? 4 : 2;
		if (w > left)
			return TL_EFORMAT;
		it->type = b <= 0xdd ? TL_MP_ARRAY : TL_MP_MAP;
		it->u = load_be(p + at + 1, w);
		if (it->u < (w == 2 ? 16 : 0x10000))
			return TL_ENONCANON;
		goto container;
	case 0xca: /* float 32 */
	case 0xcb: /* float 64 */
	case 0xc7: /* ext 8/16/32 */
	case 0xc8:
	case 0xc9:
	case 0xd4: /* fixext 1..16 */
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		return TL_ENONCANON;
	default: /* 0xc1: never used */
		return TL_EFORMAT;
	}

bytes:
	if (it->u > left - w)
		return TL_EFORMAT;
	it->data = p + at + 1 + w;
	if (it->type == TL_MP_STR && !tl_utf8_valid(it->data, (size_t)it->u))
		return TL_EFORMAT;
	*pos = at + 1 + w + (size_t)it->u;
	return 0;

container:
	/* Every element takes at least one byte: a bound that needs no allocation. */
	if (it->u > (left - w) / (it->type == TL_MP_MAP ? 2 : 1))
		return TL_EFORMAT;
	*pos = at + 1 + w;
	return 0;
}

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

struct mp_frame {
	uint64_t left;      /* items still to read; a map counts keys and values */
	const uint8_t *key; /* previous key of a map, NULL before the first */
	size_t keylen;
	int map;
};

static int mp_walk(const uint8_t *p, size_t len, int want_map, size_t *where)
{
	struct mp_frame st[TL_MP_DEPTH_MAX];
	struct mp_frame *f;
	struct tl_mp_item it;
	size_t depth = 0, pos = 0, at;
	int rc;

	do {
		f = depth ? &st[depth - 1] : NULL;
		at = pos;
		rc = tl_mp_next(p, len, &pos, &it);
		if (rc)
			goto fail;
		if (!f && want_map && it.type != TL_MP_MAP) {
			rc = TL_EFORMAT;
			goto fail;
		}
		if (f && f->map && f->left % 2 == 0) {
			if (it.type != TL_MP_STR) {
				rc = TL_ENONCANON;
				goto fail;
			}
			/* Strictly ascending also rules out duplicates. */
			if (f->key && key_cmp(f->key, f->keylen, it.data, (size_t)it.u) >= 0) {
				rc = TL_ENONCANON;
				goto fail;
			}
			f->key = it.data;
			f->keylen = (size_t)it.u;
		}
		if (f)
			f->left--;
		if (it.type == TL_MP_ARRAY || it.type == TL_MP_MAP) {
			/* An empty container is a level of nesting too. */
			if (depth >= TL_MP_DEPTH_MAX) {
				rc = TL_ETOOBIG;
				goto fail;
			}
			if (it.u) {
				st[depth].left = it.type == TL_MP_MAP ? 2 * it.u : it.u;
				st[depth].key = NULL;
				st[depth].keylen = 0;
				st[depth].map = it.type == TL_MP_MAP;
				depth++;
			}
		}
		while (depth && st[depth - 1].left == 0)
			depth--;
	} while (depth);

	if (pos != len) {
		at = pos;
		rc = TL_EFORMAT;
		goto fail;
	}
	return 0;
fail:
	if (where)
		*where = at;
	return rc;
}

int tl_mp_check(const uint8_t *p, size_t len, size_t *where)
{
	return mp_walk(p, len, 0, where);
}

int tl_mp_check_map(const uint8_t *p, size_t len, size_t *where)
{
	return mp_walk(p, len, 1, where);
}

/* ------------------------------------------------------------- entries */

static int kind_valid(const char *kind, size_t len)
{
	if (len == 0 || len > TL_KIND_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)kind[i];
		if (c < 0x21 || c > 0x7e)
			return 0;
	}
	return 1;
}

static size_t uint_size(uint64_t v)
{
	if (v < 0x80)
		return 1;
	if (v < 0x100)
		return 2;
	if (v < 0x10000)
		return 3;
	if (v < UINT64_C(0x100000000))
		return 5;
	return 9;
}

static int pack_to_buf(void *data, const char *buf, size_t len)
{
	return tl_buf_add(data, buf, len);
}

int tl_entry_encode(struct tl_buf *out, const char *origin, uint64_t seq,
                    const uint8_t prev[TL_HASH_LEN], uint64_t time_ms, const char *kind,
                    size_t kind_len, const uint8_t *body, size_t body_len)
{
	struct tl_origin o;
	msgpack_packer pk;
	size_t start, olen, size;
	int rc;

	if (!out || !origin || !prev || !kind || !body)
		return TL_EINVAL;
	start = out->len;
	olen = strnlen(origin, TL_ORIGIN_LEN + 1);
	if (tl_origin_parse(&o, origin, olen) != 0 || !kind_valid(kind, kind_len))
		return TL_EINVAL;
	rc = tl_mp_check_map(body, body_len, NULL);
	if (rc)
		return rc;
	if (body_len > TL_ENTRY_MAX)
		return TL_ETOOBIG;
	/* Exact size, so a too-big entry fails before anything is written. */
	size = 1 + 1 + 2 + TL_ORIGIN_LEN + uint_size(seq) + 2 + TL_HASH_LEN + uint_size(time_ms) +
	       (kind_len < 32 ? 1 : 2) + kind_len + body_len;
	if (size > TL_ENTRY_MAX)
		return TL_ETOOBIG;
	rc = tl_buf_reserve(out, size);
	if (rc)
		return rc;

	msgpack_packer_init(&pk, out, pack_to_buf);
	if ((rc = msgpack_pack_array(&pk, 7)) ||
	    (rc = msgpack_pack_uint64(&pk, TL_ENTRY_VERSION)) ||
	    (rc = msgpack_pack_str_with_body(&pk, origin, olen)) ||
	    (rc = msgpack_pack_uint64(&pk, seq)) ||
	    (rc = msgpack_pack_bin_with_body(&pk, prev, TL_HASH_LEN)) ||
	    (rc = msgpack_pack_uint64(&pk, time_ms)) ||
	    (rc = msgpack_pack_str_with_body(&pk, kind, kind_len)) ||
	    (rc = tl_buf_add(out, body, body_len)))
		goto fail;
	if (out->len - start != size) {
		rc = TL_EINVAL; /* the packer disagrees with our size arithmetic */
		goto fail;
	}
	return 0;
fail:
	out->len = start;
	return rc < 0 ? rc : TL_ENOMEM;
}

int tl_record_sign(struct tl_buf *rec, const uint8_t sk[TL_SEC_LEN])
{
	uint8_t sig[TL_SIG_LEN];
	size_t n;
	int rc;

	if (!rec || !sk || rec->len == 0 || rec->len > TL_ENTRY_MAX)
		return TL_EINVAL;
	n = rec->len;
	rc = tl_buf_reserve(rec, TL_SIG_LEN);
	if (rc)
		return rc;
	/*
	 * Sign context || entry in place: the room reserved for the signature
	 * (64 bytes) also holds the 15-byte context while signing, so no second
	 * copy of a possibly large entry is allocated.
	 */
	memmove(rec->data + CTX_LEN, rec->data, n);
	memcpy(rec->data, TL_ENTRY_SIG_CONTEXT, CTX_LEN);
	tl_sign(sig, rec->data, CTX_LEN + n, sk);
	memmove(rec->data, rec->data + CTX_LEN, n);
	memcpy(rec->data + n, sig, TL_SIG_LEN);
	rec->len = n + TL_SIG_LEN;
	return 0;
}

int tl_record_sign_with(struct tl_buf *rec, struct tl_signer *signer)
{
	uint8_t sig[TL_SIG_LEN];
	if (!rec || !signer || rec->len == 0 || rec->len > TL_ENTRY_MAX)
		return TL_EINVAL;
	tl_signer_sign(signer, sig, (const uint8_t *)TL_ENTRY_SIG_CONTEXT, CTX_LEN, rec->data,
	               rec->len);
	return tl_buf_add(rec, sig, TL_SIG_LEN);
}

/* Reads the next entry field, which must be of type t. */
static int entry_field(const uint8_t *p, size_t len, size_t *pos, struct tl_mp_item *it,
                       enum tl_mp_type t)
{
	size_t at = *pos;
	int rc = tl_mp_next(p, len, pos, it);

	if (rc)
		return rc;
	if (it->type != t) {
		*pos = at;
		return TL_EFORMAT;
	}
	return 0;
}

int tl_record_decode(struct tl_entry *e, const uint8_t *rec, size_t len, size_t *where)
{
	struct tl_mp_item it;
	size_t n, pos = 0, at = 0, off = 0;
	int rc;

	if (!e || !rec || len <= TL_SIG_LEN) {
		at = len;
		rc = TL_EFORMAT;
		goto fail;
	}
	if (len > TL_RECORD_MAX) {
		at = TL_RECORD_MAX;
		rc = TL_ETOOBIG;
		goto fail;
	}
	n = len - TL_SIG_LEN;

	/*
	 * Field by field rather than one tl_mp_check over the whole array, so
	 * the body's nesting is counted from the body (as tl_json_to_mp does).
	 * Each field is read in canonical form and the body must end exactly
	 * at the signature, so the entry is exactly one canonical array.
	 */
	rc = entry_field(rec, n, &pos, &it, TL_MP_ARRAY);
	if (rc)
		goto fail_pos;
	if (it.u != 7) {
		rc = TL_EFORMAT;
		goto fail;
	}
	at = pos;
	rc = entry_field(rec, n, &pos, &it, TL_MP_UINT);
	if (rc)
		goto fail_pos;
	if (it.u != TL_ENTRY_VERSION) {
		rc = TL_EVERSION;
		goto fail;
	}
	at = pos;
	rc = entry_field(rec, n, &pos, &it, TL_MP_STR);
	if (rc)
		goto fail_pos;
	if (tl_origin_parse(&e->origin, (const char *)it.data, (size_t)it.u) != 0) {
		rc = TL_EFORMAT;
		goto fail;
	}
	e->origin_str = (const char *)it.data;
	rc = entry_field(rec, n, &pos, &it, TL_MP_UINT);
	if (rc)
		goto fail_pos;
	e->seq = it.u;
	at = pos;
	rc = entry_field(rec, n, &pos, &it, TL_MP_BIN);
	if (rc)
		goto fail_pos;
	if (it.u != TL_HASH_LEN) {
		rc = TL_EFORMAT;
		goto fail;
	}
	memcpy(e->prev, it.data, TL_HASH_LEN);
	rc = entry_field(rec, n, &pos, &it, TL_MP_UINT);
	if (rc)
		goto fail_pos;
	e->time_ms = it.u;
	at = pos;
	rc = entry_field(rec, n, &pos, &it, TL_MP_STR);
	if (rc)
		goto fail_pos;
	if (!kind_valid((const char *)it.data, (size_t)it.u)) {
		rc = TL_EFORMAT;
		goto fail;
	}
	e->kind = (const char *)it.data;
	e->kind_len = (size_t)it.u;
	rc = tl_mp_check_map(rec + pos, n - pos, &off);
	if (rc) {
		at = pos + off;
		goto fail;
	}
	e->body = rec + pos;
	e->body_len = n - pos;
	e->entry = rec;
	e->entry_len = n;
	e->sig = rec + n;
	return 0;
fail_pos:
	at = pos;
fail:
	if (where)
		*where = at;
	return rc;
}

int tl_record_verify_sig(const struct tl_entry *e)
{
	uint8_t stackbuf[VERIFY_STACK_BUF];
	uint8_t *m = stackbuf;
	size_t n;
	int rc;

	if (!e || !e->entry || !e->sig || e->entry_len > TL_ENTRY_MAX)
		return TL_EINVAL;
	n = CTX_LEN + e->entry_len;
	/* Ed25519 has no streaming form, so the signed message must be contiguous. */
	if (n > sizeof stackbuf) {
		m = malloc(n);
		if (!m)
			return TL_ENOMEM;
	}
	memcpy(m, TL_ENTRY_SIG_CONTEXT, CTX_LEN);
	memcpy(m + CTX_LEN, e->entry, e->entry_len);
	rc = tl_verify(e->sig, m, n, e->origin.pk);
	if (m != stackbuf)
		free(m);
	return rc;
}

void tl_record_leaf_hash(uint8_t out[TL_HASH_LEN], const uint8_t *rec, size_t len)
{
	/* Streaming, so a 4 MiB record is not copied just to prepend one byte. */
	static const uint8_t leaf_prefix = 0x00;
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &leaf_prefix, 1);
	if (len)
		crypto_hash_sha256_update(&st, rec, len);
	crypto_hash_sha256_final(&st, out);
}

/* ------------------------------------------------------------- feeds */

int tl_feed_check_next(const struct tl_feed_head *head, const struct tl_origin *origin,
                       const struct tl_entry *e)
{
	if (!head || !origin || !e)
		return TL_EINVAL;
	if (memcmp(e->origin.pk, origin->pk, TL_PUB_LEN) != 0 ||
	    memcmp(e->origin.channel, origin->channel, TL_CHANNEL_LEN) != 0)
		return TL_ECHAIN;
	if (e->seq != head->size)
		return TL_ECHAIN;
	if (memcmp(e->prev, head->last_leaf, TL_HASH_LEN) != 0)
		return TL_ECHAIN;
	return 0;
}

void tl_feed_advance(struct tl_feed_head *head, const uint8_t leaf[TL_HASH_LEN])
{
	head->size++;
	memcpy(head->last_leaf, leaf, TL_HASH_LEN);
}
