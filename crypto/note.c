/*
 * note.c — C2SP signed notes (signed-note v1.0.0), verifier keys,
 * checkpoints (tlog-checkpoint v1.0.0), cosignatures (tlog-cosignature
 * v1.0.1) and tlog-proof files (c2sp.org/tlog-proof@v1).
 *
 * Parsers take untrusted bytes with an explicit length: they never read
 * past it, never rely on a NUL terminator and bound every count.
 */
#include "crypto/tl_crypto.h"

#include <stdlib.h>
#include <string.h>

#define EM_DASH        "\xe2\x80\x94"
#define SIG_PREFIX     EM_DASH " "
#define SIG_PREFIX_LEN 4
#define KEYID_LEN      4
#define COSIG_LEN      (8 + TL_SIG_LEN)
#define COSIG_HEADER   "cosignature/v1\ntime "
#define TIME_MAX       ((uint64_t)INT64_MAX) /* tlog-cosignature: <= 2^63 - 1 */
#define PROOF_MAGIC    "c2sp.org/tlog-proof@v1"
/* A tlog-proof carries a note plus extra data (a record) and the path. */
#define TLOG_PROOF_MAX (2 * (size_t)TL_NOTE_MAX)
#define VKEY_B64_LEN   44 /* base64 of type byte || 32-byte key */

/* ------------------------------------------------------ text and names */

/* Decodes one code point of already validated UTF-8; returns its length. */
static size_t utf8_next(const uint8_t *s, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xe0) {
		*cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		return 2;
	}
	if (s[0] < 0xf0) {
		*cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		return 3;
	}
	*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
	      (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
	return 4;
}

/* Unicode White_Space: what "MUST NOT contain any Unicode spaces" excludes. */
static int is_unicode_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
	       c == 0x205f || c == 0x3000;
}

/* Note bytes: valid UTF-8 and no control character other than newline. */
static int note_text_valid(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\n')
			return 0;
	return tl_utf8_valid((const uint8_t *)s, len);
}

/* 0, TL_EFORMAT (empty, space, '+', control, bad UTF-8) or TL_ETOOBIG. */
static int name_check(const char *s, size_t len)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t i = 0;
	uint32_t cp;

	if (len == 0)
		return TL_EFORMAT;
	if (len > TL_NAME_MAX)
		return TL_ETOOBIG;
	if (!tl_utf8_valid(u, len))
		return TL_EFORMAT;
	while (i < len) {
		i += utf8_next(u + i, &cp);
		if (cp < 0x20 || cp == 0x7f || cp == '+' || is_unicode_space(cp))
			return TL_EFORMAT;
	}
	return 0;
}

/* ---------------------------------------------------------- key ids */

void tl_key_id(uint8_t id[4], const char *name, uint8_t type, const uint8_t pk[TL_PUB_LEN])
{
	uint8_t buf[TL_NAME_MAX + 2 + TL_PUB_LEN];
	uint8_t h[TL_HASH_LEN];
	size_t n = strlen(name);

	/* Names are capped everywhere they enter; a longer one here is a bug,
	 * and hashing a truncated name would silently give a wrong id. */
	if (n > TL_NAME_MAX) {
		memset(id, 0, 4);
		return;
	}
	memcpy(buf, name, n);
	buf[n] = '\n';
	buf[n + 1] = type;
	memcpy(buf + n + 2, pk, TL_PUB_LEN);
	tl_sha256(h, buf, n + 2 + TL_PUB_LEN);
	memcpy(id, h, 4);
}

int tl_vkey_from_pub(struct tl_vkey *vk, const char *name, uint8_t type,
                     const uint8_t pk[TL_PUB_LEN])
{
	size_t n;
	int err;

	if (!vk || !name || !pk)
		return TL_EINVAL;
	if (type != TL_SIGTYPE_ED25519 && type != TL_SIGTYPE_COSIG)
		return TL_EINVAL;
	n = strlen(name);
	err = name_check(name, n);
	if (err)
		return err == TL_ETOOBIG ? err : TL_EINVAL;
	memset(vk, 0, sizeof(*vk));
	memcpy(vk->name, name, n);
	vk->type = type;
	memcpy(vk->pk, pk, TL_PUB_LEN);
	tl_key_id(vk->id, vk->name, type, pk);
	return 0;
}

int tl_vkey_parse(struct tl_vkey *vk, const char *s, size_t len)
{
	const char *plus1, *plus2;
	uint8_t key[1 + TL_PUB_LEN], id[4];
	size_t nlen, klen;
	struct tl_vkey tmp;
	int err;

	if (!vk || (!s && len))
		return TL_EINVAL;
	if (len > TL_NAME_MAX + 2 + 8 + VKEY_B64_LEN)
		return TL_ETOOBIG;
	/* Names hold no '+', so the first two split the fields; the base64
	 * part may itself contain '+'. */
	plus1 = memchr(s, '+', len);
	if (!plus1)
		return TL_EFORMAT;
	nlen = (size_t)(plus1 - s);
	if (len - nlen - 1 < 9)
		return TL_EFORMAT;
	plus2 = plus1 + 9;
	if (*plus2 != '+')
		return TL_EFORMAT;
	err = name_check(s, nlen);
	if (err)
		return err;
	if (tl_hex_decode(id, 4, plus1 + 1, 8) != 0)
		return TL_EFORMAT;
	if (tl_b64_decode(key, sizeof(key), &klen, plus2 + 1, len - nlen - 10) != 0 ||
	    klen != sizeof(key))
		return TL_EFORMAT;
	if (key[0] != TL_SIGTYPE_ED25519 && key[0] != TL_SIGTYPE_COSIG)
		return TL_EFORMAT;
	memset(&tmp, 0, sizeof(tmp));
	memcpy(tmp.name, s, nlen);
	tmp.type = key[0];
	memcpy(tmp.pk, key + 1, TL_PUB_LEN);
	tl_key_id(tmp.id, tmp.name, tmp.type, tmp.pk);
	if (memcmp(tmp.id, id, 4) != 0)
		return TL_EKEY;
	*vk = tmp;
	return 0;
}

int tl_vkey_format(const struct tl_vkey *vk, struct tl_buf *out)
{
	uint8_t key[1 + TL_PUB_LEN];
	char hex[9], b64[VKEY_B64_LEN + 1];
	size_t mark;
	int err;

	if (!vk || !out)
		return TL_EINVAL;
	if (name_check(vk->name, strnlen(vk->name, sizeof(vk->name))) != 0 ||
	    (vk->type != TL_SIGTYPE_ED25519 && vk->type != TL_SIGTYPE_COSIG))
		return TL_EINVAL;
	key[0] = vk->type;
	memcpy(key + 1, vk->pk, TL_PUB_LEN);
	tl_hex_encode(hex, vk->id, 4);
	tl_b64_encode(b64, key, sizeof(key));
	mark = out->len;
	err = tl_buf_printf(out, "%s+%s+%s", vk->name, hex, b64);
	if (err)
		out->len = mark;
	return err;
}

/* ---------------------------------------------------------- notes */

static int parse_sig_line(struct tl_note_sig *sig, const char *line, size_t len)
{
	uint8_t dec[TL_NOTE_SIG_MAX];
	const char *sp;
	size_t nlen, dlen;
	int err;

	if (len < SIG_PREFIX_LEN || memcmp(line, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
		return TL_EFORMAT;
	line += SIG_PREFIX_LEN;
	len -= SIG_PREFIX_LEN;
	sp = memchr(line, ' ', len);
	if (!sp)
		return TL_EFORMAT;
	nlen = (size_t)(sp - line);
	err = name_check(line, nlen);
	if (err)
		return err;
	err = tl_b64_decode(dec, sizeof(dec), &dlen, sp + 1, len - nlen - 1);
	if (err == TL_ETOOBIG) {
		/* A signature longer than any Tally knows (e.g. a post-quantum
		 * one): signed-note says signatures by unknown keys are ignored,
		 * so it must not fail the note. Check it is base64, keep its key
		 * id, and mark it unusable (bloblen 0: no verifier accepts it). */
		size_t cap = (len - nlen - 1) / 4 * 3 + 3;
		uint8_t *big = malloc(cap);
		if (!big)
			return TL_ENOMEM;
		err = tl_b64_decode(big, cap, &dlen, sp + 1, len - nlen - 1);
		if (!err)
			memcpy(dec, big, KEYID_LEN);
		free(big);
		if (err)
			return TL_EFORMAT;
		memcpy(sig->name, line, nlen);
		sig->name[nlen] = '\0';
		memcpy(sig->id, dec, KEYID_LEN);
		sig->bloblen = 0;
		return 0;
	}
	if (err)
		return TL_EFORMAT;
	if (dlen < KEYID_LEN + 1)
		return TL_EFORMAT;
	memcpy(sig->name, line, nlen);
	sig->name[nlen] = '\0';
	memcpy(sig->id, dec, KEYID_LEN);
	sig->bloblen = dlen - KEYID_LEN;
	memcpy(sig->blob, dec + KEYID_LEN, sig->bloblen);
	return 0;
}

void tl_note_release(struct tl_note *n)
{
	if (!n)
		return;
	free(n->raw);
	free(n->sigs);
	memset(n, 0, sizeof(*n));
}

int tl_note_parse(struct tl_note *n, const char *buf, size_t len)
{
	size_t p, i, start, nsigs = 0;
	const char *nl;
	int err;

	if (!n)
		return TL_EINVAL;
	memset(n, 0, sizeof(*n));
	if (!buf && len)
		return TL_EINVAL;
	if (len > TL_NOTE_MAX)
		return TL_ETOOBIG;
	/* Shortest note: "x\n\n" plus a signature line. */
	if (len < 3 || buf[len - 1] != '\n' || !note_text_valid(buf, len))
		return TL_EFORMAT;
	/* The text ends at the last empty line. */
	for (p = len - 2;; p--) {
		if (buf[p] == '\n' && buf[p + 1] == '\n')
			break;
		if (p == 0)
			return TL_EFORMAT;
	}
	start = p + 2;
	if (start == len)
		return TL_EFORMAT;
	for (i = start; i < len; i++)
		if (buf[i] == '\n')
			nsigs++;
	if (nsigs > TL_NOTE_MAX_SIGS)
		return TL_ETOOBIG;

	n->raw = malloc(len + 1);
	n->sigs = calloc(nsigs, sizeof(*n->sigs));
	if (!n->raw || !n->sigs) {
		err = TL_ENOMEM;
		goto fail;
	}
	memcpy(n->raw, buf, len);
	n->raw[len] = '\0';
	n->text_len = p + 1;
	for (i = 0; i < nsigs; i++) {
		struct tl_note_sig *sig = &n->sigs[i];

		nl = memchr(n->raw + start, '\n', len - start);
		sig->line = n->raw + start;
		sig->linelen = (size_t)(nl - sig->line);
		err = parse_sig_line(sig, sig->line, sig->linelen);
		if (err)
			goto fail;
		start += sig->linelen + 1;
	}
	n->nsigs = nsigs;
	return 0;
fail:
	tl_note_release(n);
	return err;
}

static int sig_line_append(struct tl_buf *out, const char *name, const uint8_t id[4],
                           const uint8_t *sig, size_t siglen)
{
	uint8_t blob[KEYID_LEN + COSIG_LEN];
	char b64[((KEYID_LEN + COSIG_LEN + 2) / 3) * 4 + 1];

	if (siglen > COSIG_LEN)
		return TL_EINVAL;
	memcpy(blob, id, KEYID_LEN);
	memcpy(blob + KEYID_LEN, sig, siglen);
	tl_b64_encode(b64, blob, KEYID_LEN + siglen);
	return tl_buf_printf(out, SIG_PREFIX "%s %s\n", name, b64);
}

static int text_check(const char *text, size_t len)
{
	if (!text || len == 0 || text[len - 1] != '\n')
		return TL_EINVAL;
	if (len > TL_NOTE_MAX)
		return TL_ETOOBIG;
	return note_text_valid(text, len) ? 0 : TL_EINVAL;
}

int tl_note_sign(struct tl_buf *out, const char *text, size_t len, const char *name,
                 const struct tl_keypair *kp)
{
	uint8_t sig[TL_SIG_LEN], id[4];
	size_t mark;
	int err;

	if (!out || !name || !kp)
		return TL_EINVAL;
	err = text_check(text, len);
	if (err)
		return err;
	err = name_check(name, strlen(name));
	if (err)
		return err == TL_ETOOBIG ? err : TL_EINVAL;
	tl_key_id(id, name, TL_SIGTYPE_ED25519, kp->pk);
	tl_sign(sig, (const uint8_t *)text, len, kp->sk);
	mark = out->len;
	err = tl_buf_add(out, text, len);
	if (!err)
		err = tl_buf_addc(out, '\n');
	if (!err)
		err = sig_line_append(out, name, id, sig, sizeof(sig));
	if (err)
		out->len = mark;
	return err;
}

static int sig_matches(const struct tl_note_sig *s, const struct tl_vkey *vk)
{
	return strcmp(s->name, vk->name) == 0 && memcmp(s->id, vk->id, 4) == 0;
}

int tl_note_verify(const struct tl_note *n, const struct tl_vkey *vk)
{
	size_t i;
	int found = 0;

	if (!n || !vk || !n->raw)
		return TL_EINVAL;
	if (vk->type != TL_SIGTYPE_ED25519)
		return TL_EINVAL;
	/* Every line that claims to be vk's must verify (signed-note: a bad
	 * signature from a known key rejects the whole note). */
	for (i = 0; i < n->nsigs; i++) {
		const struct tl_note_sig *s = &n->sigs[i];

		if (!sig_matches(s, vk))
			continue;
		if (s->bloblen != TL_SIG_LEN ||
		    tl_verify(s->blob, (const uint8_t *)n->raw, n->text_len, vk->pk) != 0)
			return TL_ESIG;
		found = 1;
	}
	return found ? 0 : TL_ENOTFOUND;
}

static int cosig_message(struct tl_buf *msg, const char *text, size_t len, uint64_t time)
{
	int err;

	err = tl_buf_printf(msg, COSIG_HEADER "%llu\n", (unsigned long long)time);
	if (!err)
		err = tl_buf_add(msg, text, len);
	return err;
}

int tl_cosig_sign(struct tl_buf *out, const char *text, size_t len, uint64_t time, const char *name,
                  const struct tl_keypair *kp)
{
	uint8_t ts[COSIG_LEN], id[4];
	struct tl_buf msg;
	size_t mark;
	int err, i;

	if (!out || !name || !kp || time > TIME_MAX)
		return TL_EINVAL;
	err = text_check(text, len);
	if (err)
		return err;
	err = name_check(name, strlen(name));
	if (err)
		return err == TL_ETOOBIG ? err : TL_EINVAL;
	tl_buf_init(&msg, TL_NOTE_MAX + 64);
	err = cosig_message(&msg, text, len, time);
	if (err)
		goto fail;
	for (i = 0; i < 8; i++)
		ts[i] = (uint8_t)(time >> (56 - 8 * i));
	tl_sign(ts + 8, msg.data, msg.len, kp->sk);
	tl_key_id(id, name, TL_SIGTYPE_COSIG, kp->pk);
	mark = out->len;
	err = sig_line_append(out, name, id, ts, sizeof(ts));
	if (err)
		out->len = mark;
fail:
	tl_buf_release(&msg);
	return err;
}

int tl_cosig_verify(const struct tl_note *n, const struct tl_vkey *vk, uint64_t *time)
{
	struct tl_buf msg;
	uint64_t t, first = 0;
	size_t i;
	int found = 0, err = 0, k;

	if (!n || !vk || !n->raw)
		return TL_EINVAL;
	if (vk->type != TL_SIGTYPE_COSIG)
		return TL_EINVAL;
	tl_buf_init(&msg, TL_NOTE_MAX + 64);
	for (i = 0; i < n->nsigs; i++) {
		const struct tl_note_sig *s = &n->sigs[i];

		if (!sig_matches(s, vk))
			continue;
		if (s->bloblen != COSIG_LEN) {
			err = TL_ESIG;
			goto out;
		}
		t = 0;
		for (k = 0; k < 8; k++)
			t = t << 8 | s->blob[k];
		if (t > TIME_MAX) {
			err = TL_ESIG;
			goto out;
		}
		tl_buf_reset(&msg);
		err = cosig_message(&msg, n->raw, n->text_len, t);
		if (err)
			goto out;
		if (tl_verify(s->blob + 8, msg.data, msg.len, vk->pk) != 0) {
			err = TL_ESIG;
			goto out;
		}
		if (!found)
			first = t;
		found = 1;
	}
	if (!found) {
		err = TL_ENOTFOUND;
		goto out;
	}
	if (time)
		*time = first;
out:
	tl_buf_release(&msg);
	return err;
}

/* ---------------------------------------------------------- checkpoints */

int tl_checkpoint_parse(struct tl_checkpoint *c, const char *text, size_t len)
{
	const char *p = text, *nl;
	size_t left = len, ll, got;
	struct tl_checkpoint tmp;
	int line;

	if (!c || (!text && len))
		return TL_EINVAL;
	if (len > TL_NOTE_MAX)
		return TL_ETOOBIG;
	if (len == 0 || text[len - 1] != '\n' || !note_text_valid(text, len))
		return TL_EFORMAT;
	memset(&tmp, 0, sizeof(tmp));
	for (line = 0; left > 0; line++) {
		nl = memchr(p, '\n', left);
		ll = (size_t)(nl - p);
		/* No empty line: not the origin, size or root, nor an extension. */
		if (ll == 0)
			return TL_EFORMAT;
		if (line == 0) {
			if (ll > TL_ORIGIN_TEXT_MAX)
				return TL_ETOOBIG;
			memcpy(tmp.origin, p, ll);
		} else if (line == 1) {
			if (tl_parse_u64(p, ll, &tmp.size) != 0)
				return TL_EFORMAT;
		} else if (line == 2) {
			if (tl_b64_decode(tmp.root, TL_HASH_LEN, &got, p, ll) != 0 ||
			    got != TL_HASH_LEN)
				return TL_EFORMAT;
		} else {
			tmp.nextensions++;
		}
		left -= ll + 1;
		p = nl + 1;
	}
	if (line < 3)
		return TL_EFORMAT;
	*c = tmp;
	return 0;
}

int tl_checkpoint_format(const struct tl_checkpoint *c, struct tl_buf *out)
{
	char b64[((TL_HASH_LEN + 2) / 3) * 4 + 1];
	size_t olen, mark;
	int err;

	if (!c || !out)
		return TL_EINVAL;
	olen = strnlen(c->origin, sizeof(c->origin));
	if (olen == 0 || olen > TL_ORIGIN_TEXT_MAX || !note_text_valid(c->origin, olen) ||
	    memchr(c->origin, '\n', olen))
		return TL_EINVAL;
	tl_b64_encode(b64, c->root, TL_HASH_LEN);
	mark = out->len;
	err = tl_buf_printf(out, "%s\n%llu\n%s\n", c->origin, (unsigned long long)c->size, b64);
	if (err)
		out->len = mark;
	return err;
}

/* ---------------------------------------------------------- tlog-proof */

void tl_tlog_proof_release(struct tl_tlog_proof *p)
{
	if (!p)
		return;
	free(p->extra);
	tl_note_release(&p->note);
	memset(p, 0, sizeof(*p));
}

/* Length of the line at cur (without its newline); TL_EFORMAT if unterminated. */
static int line_at(const char *cur, size_t left, size_t *ll)
{
	const char *nl = left ? memchr(cur, '\n', left) : NULL;

	if (!nl)
		return TL_EFORMAT;
	*ll = (size_t)(nl - cur);
	return 0;
}

static int has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

int tl_tlog_proof_parse(struct tl_tlog_proof *p, const char *buf, size_t len)
{
	const char *cur = buf;
	size_t left = len, ll, vl, got, cap;
	int err;

	if (!p)
		return TL_EINVAL;
	memset(p, 0, sizeof(*p));
	if (!buf && len)
		return TL_EINVAL;
	if (len > TLOG_PROOF_MAX)
		return TL_ETOOBIG;

	err = line_at(cur, left, &ll);
	if (err)
		goto fail;
	if (ll != strlen(PROOF_MAGIC) || memcmp(cur, PROOF_MAGIC, ll) != 0) {
		err = TL_EFORMAT;
		goto fail;
	}
	cur += ll + 1;
	left -= ll + 1;

	err = line_at(cur, left, &ll);
	if (err)
		goto fail;
	if (has_prefix(cur, ll, "extra ")) {
		vl = ll - 6;
		cap = vl / 4 * 3;
		/* An absent extra is written as no line, so an empty one is noise. */
		if (cap == 0) {
			err = TL_EFORMAT;
			goto fail;
		}
		p->extra = malloc(cap);
		if (!p->extra) {
			err = TL_ENOMEM;
			goto fail;
		}
		if (tl_b64_decode(p->extra, cap, &got, cur + 6, vl) != 0 || got == 0) {
			err = TL_EFORMAT;
			goto fail;
		}
		p->extra_len = got;
		cur += ll + 1;
		left -= ll + 1;
		err = line_at(cur, left, &ll);
		if (err)
			goto fail;
	}
	if (!has_prefix(cur, ll, "index ") || tl_parse_u64(cur + 6, ll - 6, &p->index) != 0) {
		err = TL_EFORMAT;
		goto fail;
	}
	cur += ll + 1;
	left -= ll + 1;

	/* Proof hashes up to the empty line that starts the checkpoint. */
	for (;;) {
		err = line_at(cur, left, &ll);
		if (err)
			goto fail;
		cur += ll + 1;
		left -= ll + 1;
		if (ll == 0)
			break;
		if (p->nproof == TL_MERKLE_MAX_PROOF) {
			err = TL_ETOOBIG;
			goto fail;
		}
		if (tl_b64_decode(p->proof[p->nproof], TL_HASH_LEN, &got, cur - ll - 1, ll) != 0 ||
		    got != TL_HASH_LEN) {
			err = TL_EFORMAT;
			goto fail;
		}
		p->nproof++;
	}

	err = tl_note_parse(&p->note, cur, left);
	if (err)
		goto fail;
	err = tl_checkpoint_parse(&p->cp, p->note.raw, p->note.text_len);
	if (err)
		goto fail;
	return 0;
fail:
	tl_tlog_proof_release(p);
	return err;
}

int tl_tlog_proof_format(struct tl_buf *out, const uint8_t *extra, size_t extra_len, uint64_t index,
                         const uint8_t (*proof)[TL_HASH_LEN], size_t n, const char *note_text,
                         size_t note_len)
{
	char h64[((TL_HASH_LEN + 2) / 3) * 4 + 1];
	struct tl_note note;
	struct tl_checkpoint cp;
	char *e64 = NULL;
	size_t mark, i;
	int err;

	if (!out || (!extra && extra_len) || (!proof && n) || !note_text)
		return TL_EINVAL;
	if (n > TL_MERKLE_MAX_PROOF || extra_len > TL_NOTE_MAX)
		return TL_ETOOBIG;
	/* Refuse to write a proof no parser would read back. */
	err = tl_note_parse(&note, note_text, note_len);
	if (!err)
		err = tl_checkpoint_parse(&cp, note.raw, note.text_len);
	tl_note_release(&note);
	if (err)
		return err;

	mark = out->len;
	err = tl_buf_printf(out, PROOF_MAGIC "\n");
	if (!err && extra_len) {
		e64 = malloc(tl_b64_encoded_len(extra_len) + 1);
		if (!e64) {
			err = TL_ENOMEM;
			goto fail;
		}
		tl_b64_encode(e64, extra, extra_len);
		err = tl_buf_printf(out, "extra %s\n", e64);
	}
	if (!err)
		err = tl_buf_printf(out, "index %llu\n", (unsigned long long)index);
	for (i = 0; !err && i < n; i++) {
		tl_b64_encode(h64, proof[i], TL_HASH_LEN);
		err = tl_buf_printf(out, "%s\n", h64);
	}
	if (!err)
		err = tl_buf_addc(out, '\n');
	if (!err)
		err = tl_buf_add(out, note_text, note_len);
fail:
	free(e64);
	if (err)
		out->len = mark;
	return err;
}
