/*
 * test_session.c — peer handshake and frames (crypto/session.c).
 *
 * Two in-memory endpoints exchange bytes through buffers, whole or one byte
 * at a time. The "spec" helpers below re-derive the handshake from
 * docs/session.md with plain libsodium calls, independently of session.c:
 * they check that the document describes the code, and they give the tests
 * an active attacker who can do everything the protocol lets a
 * key-holder do (run ephemerals, derive keys, re-encrypt what it relays).
 */
#include "harness.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/tl_crypto.h"

#define M1_LEN 36
#define M2_LEN 144
#define M3_LEN 112
#define IO_MAX (TL_FRAME_MAX + 64)

static void keypair(struct tl_keypair *kp, uint8_t tag)
{
	uint8_t seed[TL_SEED_LEN];

	memset(seed, tag, sizeof(seed));
	assert_int_equal(tl_key_from_seed(kp, seed), 0);
}

/* ------------------------------------------------------------ plumbing */

/*
 * Feeds hs the bytes waiting in in, chunk bytes per call, until it fails,
 * finishes or runs out; consumed bytes leave in, output lands in out. While
 * the handshake is not done every byte of a call must be consumed.
 */
static int feed(struct tl_hs *hs, struct tl_buf *in, size_t chunk, struct tl_buf *out)
{
	size_t off = 0, used, n;
	int rc = 0;

	while (off < in->len && !tl_hs_done(hs)) {
		n = in->len - off < chunk ? in->len - off : chunk;
		rc = tl_hs_step(hs, in->data + off, n, &used, out);
		if (rc)
			break;
		assert_true(used <= n);
		if (!tl_hs_done(hs))
			assert_int_equal(used, n);
		off += used;
	}
	memmove(in->data, in->data + off, in->len - off);
	in->len -= off;
	return rc;
}

struct pair {
	struct tl_keypair ki, kr;
	struct tl_hs *i, *r;
	struct tl_buf i2r, r2i; /* bytes in flight */
	int rci, rcr;
};

static void pair_new(struct pair *p, uint8_t ti, uint8_t tr, const uint8_t *expect)
{
	keypair(&p->ki, ti);
	keypair(&p->kr, tr);
	assert_int_equal(tl_hs_new(&p->i, TL_HS_INITIATOR, &p->ki, expect), 0);
	assert_int_equal(tl_hs_new(&p->r, TL_HS_RESPONDER, &p->kr, NULL), 0);
	tl_buf_init(&p->i2r, IO_MAX);
	tl_buf_init(&p->r2i, IO_MAX);
	p->rci = p->rcr = 0;
	assert_int_equal(tl_hs_start(p->i, &p->i2r), 0);
	assert_int_equal(tl_hs_start(p->r, &p->r2i), 0);
	assert_int_equal(p->i2r.len, M1_LEN);
	assert_int_equal(p->r2i.len, 0);
}

static void pair_free(struct pair *p)
{
	tl_hs_free(p->i);
	tl_hs_free(p->r);
	tl_buf_release(&p->i2r);
	tl_buf_release(&p->r2i);
}

/* Runs the exchange to its end, chunk bytes per step. */
static void pair_run(struct pair *p, size_t chunk)
{
	for (int round = 0; round < 3; round++) {
		p->rcr = feed(p->r, &p->i2r, chunk, &p->r2i);
		if (p->rcr)
			return;
		p->rci = feed(p->i, &p->r2i, chunk, &p->i2r);
		if (p->rci)
			return;
	}
}

/* Both sides done, each names the other, keys cross over. */
static void pair_sessions(struct pair *p, struct tl_session *si, struct tl_session *sr)
{
	assert_int_equal(p->rci, 0);
	assert_int_equal(p->rcr, 0);
	assert_true(tl_hs_done(p->i));
	assert_true(tl_hs_done(p->r));
	assert_memory_equal(tl_hs_peer(p->i), p->kr.pk, TL_PUB_LEN);
	assert_memory_equal(tl_hs_peer(p->r), p->ki.pk, TL_PUB_LEN);
	assert_int_equal(tl_hs_session(p->i, si), 0);
	assert_int_equal(tl_hs_session(p->r, sr), 0);
	assert_memory_equal(si->tx_key, sr->rx_key, 32);
	assert_memory_equal(si->rx_key, sr->tx_key, 32);
	assert_memory_not_equal(si->tx_key, si->rx_key, 32);
	assert_memory_equal(si->peer, p->kr.pk, TL_PUB_LEN);
	assert_memory_equal(sr->peer, p->ki.pk, TL_PUB_LEN);
	assert_true(si->tx_ctr == 0 && si->rx_ctr == 0 && sr->tx_ctr == 0 && sr->rx_ctr == 0);
}

/* Seals msg on a, opens it on b: same bytes, whole frame consumed. */
static void roundtrip(struct tl_session *a, struct tl_session *b, const void *msg, size_t len)
{
	struct tl_buf wire, pt;
	size_t used;

	tl_buf_init(&wire, IO_MAX);
	tl_buf_init(&pt, IO_MAX);
	assert_int_equal(tl_session_seal(a, msg, len, &wire), 0);
	assert_int_equal(wire.len, len + TL_FRAME_OVERHEAD);
	assert_int_equal(tl_session_open(b, wire.data, wire.len, &used, &pt), 0);
	assert_int_equal(used, wire.len);
	assert_int_equal(pt.len, len);
	if (len)
		assert_memory_equal(pt.data, msg, len);
	tl_buf_release(&wire);
	tl_buf_release(&pt);
}

/* A finished pair of sessions between two fixed identities. */
static void sessions(struct tl_session *si, struct tl_session *sr)
{
	struct pair p;

	pair_new(&p, 1, 2, NULL);
	pair_run(&p, SIZE_MAX);
	pair_sessions(&p, si, sr);
	pair_free(&p);
}

/* ------------------------------------------- the spec, re-derived here */

static void spec_hash(uint8_t out[32], const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	uint8_t buf[512];

	assert_true(al + bl <= sizeof(buf));
	memcpy(buf, a, al);
	if (bl)
		memcpy(buf + al, b, bl);
	crypto_hash_sha256(out, buf, al + bl);
}

/* prk = HMAC-SHA256(key = T0, X25519(sk, pk)); 0 or -1 for a zero secret. */
static int spec_prk(uint8_t prk[32], const uint8_t sk[32], const uint8_t pk[32],
                    const uint8_t t0[32])
{
	uint8_t dh[32];

	if (crypto_scalarmult(dh, sk, pk) != 0)
		return -1;
	crypto_auth_hmacsha256(prk, dh, 32, t0);
	return 0;
}

/* HKDF-Expand, one block: HMAC-SHA256(prk, label || th || 0x01). */
static void spec_key(uint8_t out[32], const uint8_t prk[32], const char *label,
                     const uint8_t th[32])
{
	uint8_t info[64];
	size_t n = strlen(label);

	memcpy(info, label, n);
	memcpy(info + n, th, 32);
	info[n + 32] = 1;
	crypto_auth_hmacsha256(out, info, n + 33, prk);
}

static void spec_seal(uint8_t c[112], const uint8_t pt[96], const uint8_t ad[32],
                      const uint8_t k[32])
{
	static const uint8_t zero[24];

	crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, pt, 96, ad, 32, NULL, zero, k);
}

static int spec_open(uint8_t pt[96], const uint8_t c[112], const uint8_t ad[32],
                     const uint8_t k[32])
{
	static const uint8_t zero[24];

	return crypto_aead_xchacha20poly1305_ietf_decrypt(pt, NULL, NULL, c, 112, ad, 32, zero, k);
}

/* ctx || h, the 45 signed bytes. */
static void spec_sign(uint8_t sig[64], const char *ctx, const uint8_t h[32],
                      const struct tl_keypair *kp)
{
	uint8_t msg[45];

	memcpy(msg, ctx, 13);
	memcpy(msg + 13, h, 32);
	tl_sign(sig, msg, sizeof(msg), kp->sk);
}

static int spec_verify(const uint8_t sig[64], const char *ctx, const uint8_t h[32],
                       const uint8_t pk[32])
{
	uint8_t msg[45];

	memcpy(msg, ctx, 13);
	memcpy(msg + 13, h, 32);
	return tl_verify(sig, msg, sizeof(msg), pk);
}

/* An endpoint run from the document: its ephemeral, transcript and prk. */
struct spec {
	uint8_t e_sk[32], e_pk[32];
	uint8_t tr[292];
	uint8_t prk[32];
};

static void spec_ephemeral(struct spec *s)
{
	randombytes_buf(s->e_sk, 32);
	assert_int_equal(crypto_scalarmult_base(s->e_pk, s->e_sk), 0);
}

/* As responder: m2 for m1, carrying id = pk || sig (made by the caller or
 * relayed from someone else). tr[0, 180) holds m1 || m2 afterwards. */
static void spec_m2(struct spec *s, const uint8_t m1[36], const uint8_t id[96], uint8_t m2[144])
{
	uint8_t t0[32], k1[32];

	memcpy(s->tr, m1, 36);
	memcpy(s->tr + 36, s->e_pk, 32);
	spec_hash(t0, s->tr, 68, NULL, 0);
	assert_int_equal(spec_prk(s->prk, s->e_sk, m1 + 4, t0), 0);
	spec_key(k1, s->prk, "tally/hs/v1/k1", t0);
	spec_seal(s->tr + 68, id, t0, k1);
	memcpy(m2, s->tr + 36, 144);
}

/* The responder's identity block, signed as the spec says. */
static void spec_id_r(uint8_t id[96], const struct spec *s_with_m1_er, const struct tl_keypair *kp)
{
	uint8_t h1[32];

	spec_hash(h1, s_with_m1_er->tr, 68, kp->pk, 32);
	memcpy(id, kp->pk, 32);
	spec_sign(id + 32, "tally/hs/v1/R", h1, kp);
}

/* As initiator: m1 into tr. */
static void spec_m1(struct spec *s, uint8_t m1[36])
{
	memcpy(s->tr, "TLY1", 4);
	memcpy(s->tr + 4, s->e_pk, 32);
	memcpy(m1, s->tr, 36);
}

/* As initiator: opens m2 into id (pk || sig); 0 or -1. */
static int spec_read_m2(struct spec *s, const uint8_t m2[144], uint8_t id[96])
{
	uint8_t t0[32], k1[32];

	memcpy(s->tr + 36, m2, 144);
	spec_hash(t0, s->tr, 68, NULL, 0);
	if (spec_prk(s->prk, s->e_sk, m2, t0) != 0)
		return -1;
	spec_key(k1, s->prk, "tally/hs/v1/k1", t0);
	return spec_open(id, s->tr + 68, t0, k1);
}

/* Per-direction keys from the full transcript. */
static void spec_session_keys(const struct spec *s, uint8_t i2r[32], uint8_t r2i[32])
{
	uint8_t t3[32];

	spec_hash(t3, s->tr, 292, NULL, 0);
	spec_key(i2r, s->prk, "tally/hs/v1/i2r", t3);
	spec_key(r2i, s->prk, "tally/hs/v1/r2i", t3);
}

/* ------------------------------------------------------------ handshake */

/* Whole messages, then one byte per call: both sides finish, name each
 * other, agree on two distinct keys, and frames flow both ways. */
static void check_handshake(size_t chunk)
{
	struct pair p;
	struct tl_session si, sr;
	uint8_t big[5000];

	pair_new(&p, 1, 2, NULL);
	pair_run(&p, chunk);
	pair_sessions(&p, &si, &sr);
	assert_int_equal(p.i2r.len, 0);
	assert_int_equal(p.r2i.len, 0);
	randombytes_buf(big, sizeof(big));
	for (int k = 0; k < 5; k++) {
		roundtrip(&si, &sr, "hello", 5);
		roundtrip(&sr, &si, big, sizeof(big) - (size_t)k);
		roundtrip(&sr, &si, "", 0);
	}
	assert_true(si.tx_ctr == 5 && sr.rx_ctr == 5 && sr.tx_ctr == 10 && si.rx_ctr == 10);
	tl_session_wipe(&si);
	tl_session_wipe(&sr);
	pair_free(&p);
}

static void test_handshake_whole_messages(void **state)
{
	(void)state;
	check_handshake(SIZE_MAX);
}

static void test_handshake_one_byte_at_a_time(void **state)
{
	(void)state;
	check_handshake(1);
	check_handshake(7);
}

/* The initiator's first frame may share a read with message 3, and what
 * follows message 2 is not the handshake's: *used stops at the message. */
static void test_handshake_leaves_trailing_bytes(void **state)
{
	(void)state;
	struct pair p;
	struct tl_session si, sr;
	struct tl_buf wire, pt, extra;
	size_t used;

	pair_new(&p, 1, 2, NULL);
	assert_int_equal(feed(p.r, &p.i2r, SIZE_MAX, &p.r2i), 0);
	assert_int_equal(p.r2i.len, M2_LEN);
	/* message 2 followed by 10 stray bytes */
	tl_buf_init(&extra, 4096);
	assert_int_equal(tl_buf_add(&extra, p.r2i.data, p.r2i.len), 0);
	assert_int_equal(tl_buf_add(&extra, "0123456789", 10), 0);
	assert_int_equal(tl_hs_step(p.i, extra.data, extra.len, &used, &p.i2r), 0);
	assert_int_equal(used, M2_LEN);
	assert_true(tl_hs_done(p.i));
	assert_int_equal(p.i2r.len, M3_LEN);
	/* after done, step consumes nothing */
	assert_int_equal(tl_hs_step(p.i, extra.data + used, 10, &used, &p.i2r), 0);
	assert_int_equal(used, 0);
	assert_int_equal(p.i2r.len, M3_LEN);

	/* message 3 and the initiator's first frame in one read */
	assert_int_equal(tl_hs_session(p.i, &si), 0);
	assert_int_equal(tl_session_seal(&si, (const uint8_t *)"first", 5, &p.i2r), 0);
	tl_buf_init(&wire, 4096);
	assert_int_equal(tl_buf_add(&wire, p.i2r.data, p.i2r.len), 0);
	assert_int_equal(tl_hs_step(p.r, wire.data, wire.len, &used, &p.r2i), 0);
	assert_int_equal(used, M3_LEN);
	assert_true(tl_hs_done(p.r));
	assert_int_equal(tl_hs_session(p.r, &sr), 0);
	tl_buf_init(&pt, 64);
	assert_int_equal(tl_session_open(&sr, wire.data + used, wire.len - used, &used, &pt), 0);
	assert_int_equal(used, 5 + TL_FRAME_OVERHEAD);
	assert_memory_equal(pt.data, "first", 5);

	tl_buf_release(&pt);
	tl_buf_release(&wire);
	tl_buf_release(&extra);
	pair_free(&p);
}

/* Message 3 padded with junk: the junk is left for the frame layer, which
 * refuses it (0xffffffff is far beyond TL_FRAME_MAX). */
static void test_handshake_long_message3(void **state)
{
	(void)state;
	struct pair p;
	struct tl_session sr;
	struct tl_buf pt;
	uint8_t junk[8];
	size_t used;

	memset(junk, 0xff, sizeof(junk));
	pair_new(&p, 1, 2, NULL);
	assert_int_equal(feed(p.r, &p.i2r, SIZE_MAX, &p.r2i), 0);
	assert_int_equal(feed(p.i, &p.r2i, SIZE_MAX, &p.i2r), 0);
	assert_int_equal(tl_buf_add(&p.i2r, junk, sizeof(junk)), 0);
	assert_int_equal(tl_hs_step(p.r, p.i2r.data, p.i2r.len, &used, &p.r2i), 0);
	assert_int_equal(used, M3_LEN);
	assert_true(tl_hs_done(p.r));
	assert_int_equal(tl_hs_session(p.r, &sr), 0);
	tl_buf_init(&pt, IO_MAX);
	assert_int_equal(tl_session_open(&sr, p.i2r.data + used, sizeof(junk), &used, &pt),
	                 TL_ETOOBIG);
	tl_buf_release(&pt);
	pair_free(&p);
}

/* A message cut short waits (0, everything consumed, no output, not done);
 * nothing is sent on a partial message. */
static void test_handshake_short_message_waits(void **state)
{
	(void)state;
	struct pair p;
	size_t used;

	pair_new(&p, 1, 2, NULL);
	assert_int_equal(tl_hs_step(p.r, p.i2r.data, M1_LEN - 1, &used, &p.r2i), 0);
	assert_int_equal(used, M1_LEN - 1);
	assert_int_equal(p.r2i.len, 0);
	assert_false(tl_hs_done(p.r));
	assert_null(tl_hs_peer(p.r));
	assert_int_equal(tl_hs_step(p.r, p.i2r.data + M1_LEN - 1, 1, &used, &p.r2i), 0);
	assert_int_equal(p.r2i.len, M2_LEN);
	assert_int_equal(tl_hs_step(p.i, p.r2i.data, M2_LEN - 1, &used, &p.i2r), 0);
	assert_int_equal(used, M2_LEN - 1);
	assert_false(tl_hs_done(p.i));
	assert_null(tl_hs_peer(p.i));
	pair_free(&p);
}

/* Every byte of message 1 flipped: a bad magic is refused by the responder
 * at once; a changed ephemeral goes unnoticed by the responder (any 32
 * bytes are an X25519 input) but message 2 then fails at the initiator,
 * since both hash the transcript into k1. Nobody finishes. */
static void test_altered_message1(void **state)
{
	(void)state;
	for (size_t pos = 0; pos < M1_LEN; pos++) {
		struct pair p;
		pair_new(&p, 1, 2, NULL);
		p.i2r.data[pos] ^= 0x01;
		p.rcr = feed(p.r, &p.i2r, SIZE_MAX, &p.r2i);
		if (pos < 4) {
			assert_int_equal(p.rcr, TL_EFORMAT);
			assert_int_equal(p.r2i.len, 0);
		} else if (p.rcr == 0) {
			assert_int_equal(feed(p.i, &p.r2i, SIZE_MAX, &p.i2r), TL_ESIG);
			assert_int_equal(p.i2r.len, 0); /* no message 3 */
		} else {
			assert_int_equal(p.rcr, TL_EFORMAT); /* a small-order point */
		}
		assert_false(tl_hs_done(p.i));
		assert_false(tl_hs_done(p.r));
		pair_free(&p);
	}
}

/* A wrong magic is refused on its first byte, even fed one byte at a time,
 * and the failure sticks. */
static void test_bad_magic_refused_early(void **state)
{
	(void)state;
	struct tl_keypair kr;
	struct tl_hs *r;
	struct tl_buf out;
	size_t used;

	keypair(&kr, 2);
	tl_buf_init(&out, 4096);
	assert_int_equal(tl_hs_new(&r, TL_HS_RESPONDER, &kr, NULL), 0);
	assert_int_equal(tl_hs_step(r, (const uint8_t *)"T", 1, &used, &out), 0);
	assert_int_equal(tl_hs_step(r, (const uint8_t *)"LX", 2, &used, &out), TL_EFORMAT);
	assert_int_equal(tl_hs_step(r, (const uint8_t *)"TLY1", 4, &used, &out), TL_EFORMAT);
	assert_int_equal(used, 0);
	assert_int_equal(out.len, 0);
	tl_hs_free(r);
	assert_int_equal(tl_hs_new(&r, TL_HS_RESPONDER, &kr, NULL), 0);
	assert_int_equal(tl_hs_step(r, (const uint8_t *)"TLY2", 4, &used, &out), TL_EFORMAT);
	tl_hs_free(r);
	tl_buf_release(&out);
}

static void test_altered_message2(void **state)
{
	(void)state;
	for (size_t pos = 0; pos < M2_LEN; pos++) {
		struct pair p;
		pair_new(&p, 1, 2, NULL);
		assert_int_equal(feed(p.r, &p.i2r, SIZE_MAX, &p.r2i), 0);
		p.r2i.data[pos] ^= 0x01;
		p.rci = feed(p.i, &p.r2i, SIZE_MAX, &p.i2r);
		assert_true(p.rci == TL_ESIG || p.rci == TL_EFORMAT);
		assert_int_equal(p.i2r.len, 0);
		assert_false(tl_hs_done(p.i));
		assert_false(tl_hs_done(p.r));
		pair_free(&p);
	}
}

static void test_altered_message3(void **state)
{
	(void)state;
	for (size_t pos = 0; pos < M3_LEN; pos++) {
		struct pair p;
		pair_new(&p, 1, 2, NULL);
		assert_int_equal(feed(p.r, &p.i2r, SIZE_MAX, &p.r2i), 0);
		assert_int_equal(feed(p.i, &p.r2i, SIZE_MAX, &p.i2r), 0);
		p.i2r.data[pos] ^= 0x80;
		assert_int_equal(feed(p.r, &p.i2r, SIZE_MAX, &p.r2i), TL_ESIG);
		assert_false(tl_hs_done(p.r));
		assert_null(tl_hs_peer(p.r));
		pair_free(&p);
	}
}

/* Message 2 from another session fails at an initiator with a fresh
 * ephemeral; messages 1 and 3 from another session get a replayer nowhere
 * with a fresh responder. */
static void test_replayed_messages(void **state)
{
	(void)state;
	struct pair a, b;
	uint8_t m1[M1_LEN], m2[M2_LEN], m3[M3_LEN];

	pair_new(&a, 1, 2, NULL);
	memcpy(m1, a.i2r.data, M1_LEN);
	assert_int_equal(feed(a.r, &a.i2r, SIZE_MAX, &a.r2i), 0);
	memcpy(m2, a.r2i.data, M2_LEN);
	assert_int_equal(feed(a.i, &a.r2i, SIZE_MAX, &a.i2r), 0);
	memcpy(m3, a.i2r.data, M3_LEN);
	assert_int_equal(feed(a.r, &a.i2r, SIZE_MAX, &a.r2i), 0);
	assert_true(tl_hs_done(a.i) && tl_hs_done(a.r));

	pair_new(&b, 1, 2, NULL);
	a.r2i.len = 0;
	assert_int_equal(tl_buf_add(&a.r2i, m2, M2_LEN), 0);
	assert_int_equal(feed(b.i, &a.r2i, SIZE_MAX, &b.i2r), TL_ESIG);
	assert_false(tl_hs_done(b.i));

	b.i2r.len = 0;
	assert_int_equal(tl_buf_add(&b.i2r, m1, M1_LEN), 0);
	assert_int_equal(feed(b.r, &b.i2r, SIZE_MAX, &b.r2i), 0);
	assert_int_equal(b.r2i.len, M2_LEN); /* a fresh e_R: not the old m2 */
	assert_memory_not_equal(b.r2i.data, m2, 32);
	assert_int_equal(tl_buf_add(&b.i2r, m3, M3_LEN), 0);
	assert_int_equal(feed(b.r, &b.i2r, SIZE_MAX, &b.r2i), TL_ESIG);
	assert_false(tl_hs_done(b.r));
	pair_free(&a);
	pair_free(&b);
}

/* A third key answers where the initiator expected R: TL_EKEY, no message 3
 * (the initiator's identity is not revealed). Without an expectation the
 * handshake completes and tl_hs_peer names the key that answered. */
static void test_substituted_responder_key(void **state)
{
	(void)state;
	struct tl_keypair expected;
	struct pair p;

	keypair(&expected, 9);
	pair_new(&p, 1, 3, expected.pk);
	pair_run(&p, SIZE_MAX);
	assert_int_equal(p.rci, TL_EKEY);
	assert_int_equal(p.i2r.len, 0);
	assert_false(tl_hs_done(p.i));
	assert_false(tl_hs_done(p.r));
	pair_free(&p);

	pair_new(&p, 1, 3, NULL);
	pair_run(&p, SIZE_MAX);
	assert_true(tl_hs_done(p.i));
	assert_memory_equal(tl_hs_peer(p.i), p.kr.pk, TL_PUB_LEN);
	pair_free(&p);

	/* with the right expectation it completes */
	keypair(&expected, 3);
	pair_new(&p, 1, 3, expected.pk);
	pair_run(&p, SIZE_MAX);
	assert_true(tl_hs_done(p.i) && tl_hs_done(p.r));
	pair_free(&p);
}

/* A responder given an expected peer holds the initiator to it. */
static void test_responder_expected_peer(void **state)
{
	(void)state;
	struct tl_keypair ki, kr, other;
	struct pair p;

	keypair(&ki, 1);
	keypair(&kr, 2);
	keypair(&other, 4);
	pair_new(&p, 1, 2, NULL);
	tl_hs_free(p.r);
	assert_int_equal(tl_hs_new(&p.r, TL_HS_RESPONDER, &kr, other.pk), 0);
	pair_run(&p, SIZE_MAX);
	assert_int_equal(p.rcr, TL_EKEY);
	assert_false(tl_hs_done(p.r));
	pair_free(&p);

	pair_new(&p, 1, 2, NULL);
	tl_hs_free(p.r);
	assert_int_equal(tl_hs_new(&p.r, TL_HS_RESPONDER, &kr, ki.pk), 0);
	pair_run(&p, SIZE_MAX);
	assert_true(tl_hs_done(p.r));
	pair_free(&p);
}

/* Talking to one's own key (a reflected or looped connection) is refused. */
static void test_own_key_refused(void **state)
{
	(void)state;
	struct pair p;

	pair_new(&p, 5, 5, NULL);
	pair_run(&p, SIZE_MAX);
	assert_int_equal(p.rci, TL_EKEY);
	assert_false(tl_hs_done(p.i) || tl_hs_done(p.r));
	pair_free(&p);
}

/* The spec in docs/session.md, run by hand as the responder against the
 * real initiator: the initiator accepts it, its message 3 opens and
 * verifies as documented, and both arrive at the same session keys. */
static void test_spec_responder_matches(void **state)
{
	(void)state;
	struct tl_keypair ki, kr;
	struct tl_hs *i;
	struct tl_buf out;
	struct tl_session si;
	struct spec s;
	uint8_t id[96], m2[M2_LEN], pti[96], t2[32], k2[32], h2[32], i2r[32], r2i[32];
	size_t used;

	keypair(&ki, 1);
	keypair(&kr, 2);
	tl_buf_init(&out, 4096);
	assert_int_equal(tl_hs_new(&i, TL_HS_INITIATOR, &ki, kr.pk), 0);
	assert_int_equal(tl_hs_start(i, &out), 0);
	assert_int_equal(out.len, M1_LEN);
	assert_memory_equal(out.data, "TLY1", 4);

	spec_ephemeral(&s);
	memcpy(s.tr, out.data, M1_LEN);
	memcpy(s.tr + 36, s.e_pk, 32);
	spec_id_r(id, &s, &kr);
	spec_m2(&s, out.data, id, m2);
	out.len = 0;
	assert_int_equal(tl_hs_step(i, m2, M2_LEN, &used, &out), 0);
	assert_true(tl_hs_done(i));
	assert_int_equal(out.len, M3_LEN);

	memcpy(s.tr + 180, out.data, M3_LEN);
	spec_hash(t2, s.tr, 180, NULL, 0);
	spec_key(k2, s.prk, "tally/hs/v1/k2", t2);
	assert_int_equal(spec_open(pti, out.data, t2, k2), 0);
	assert_memory_equal(pti, ki.pk, 32);
	{
		uint8_t buf[244];
		memcpy(buf, s.tr, 180);
		memcpy(buf + 180, kr.pk, 32);
		memcpy(buf + 212, ki.pk, 32);
		crypto_hash_sha256(h2, buf, sizeof(buf));
	}
	assert_int_equal(spec_verify(pti + 32, "tally/hs/v1/I", h2, ki.pk), 0);
	spec_session_keys(&s, i2r, r2i);
	assert_int_equal(tl_hs_session(i, &si), 0);
	assert_memory_equal(si.tx_key, i2r, 32);
	assert_memory_equal(si.rx_key, r2i, 32);
	tl_hs_free(i);
	tl_buf_release(&out);
}

/* The spec run by hand as the initiator against the real responder. */
static void test_spec_initiator_matches(void **state)
{
	(void)state;
	struct tl_keypair ki, kr;
	struct tl_hs *r;
	struct tl_buf out;
	struct tl_session sr;
	struct spec s;
	uint8_t m1[M1_LEN], idr[96], h1[32], t2[32], k2[32], h2[32], mine[96], i2r[32], r2i[32];
	size_t used;

	keypair(&ki, 1);
	keypair(&kr, 2);
	tl_buf_init(&out, 4096);
	assert_int_equal(tl_hs_new(&r, TL_HS_RESPONDER, &kr, NULL), 0);
	spec_ephemeral(&s);
	spec_m1(&s, m1);
	assert_int_equal(tl_hs_step(r, m1, M1_LEN, &used, &out), 0);
	assert_int_equal(out.len, M2_LEN);
	assert_int_equal(spec_read_m2(&s, out.data, idr), 0);
	assert_memory_equal(idr, kr.pk, 32);
	spec_hash(h1, s.tr, 68, kr.pk, 32);
	assert_int_equal(spec_verify(idr + 32, "tally/hs/v1/R", h1, kr.pk), 0);

	spec_hash(t2, s.tr, 180, NULL, 0);
	spec_key(k2, s.prk, "tally/hs/v1/k2", t2);
	{
		uint8_t buf[244];
		memcpy(buf, s.tr, 180);
		memcpy(buf + 180, kr.pk, 32);
		memcpy(buf + 212, ki.pk, 32);
		crypto_hash_sha256(h2, buf, sizeof(buf));
	}
	memcpy(mine, ki.pk, 32);
	spec_sign(mine + 32, "tally/hs/v1/I", h2, &ki);
	spec_seal(s.tr + 180, mine, t2, k2);
	out.len = 0;
	assert_int_equal(tl_hs_step(r, s.tr + 180, M3_LEN, &used, &out), 0);
	assert_true(tl_hs_done(r));
	assert_int_equal(out.len, 0);
	assert_memory_equal(tl_hs_peer(r), ki.pk, 32);
	spec_session_keys(&s, i2r, r2i);
	assert_int_equal(tl_hs_session(r, &sr), 0);
	assert_memory_equal(sr.rx_key, i2r, 32);
	assert_memory_equal(sr.tx_key, r2i, 32);
	tl_hs_free(r);
	tl_buf_release(&out);
}

/*
 * M sits on the wire between I and R, relays, and puts its own ephemerals
 * in: e_M1 towards R, e_M2 towards I. M learns R's signed identity block
 * (it can decrypt m2 from R) and re-encrypts it for I, but R signed a
 * transcript with e_M1, not e_I: I refuses with TL_ESIG and sends nothing.
 * M can finish with R only as itself (R then names M, not I).
 */
static void test_mitm_substituting_ephemerals(void **state)
{
	(void)state;
	struct pair p;
	struct spec to_r, to_i;
	uint8_t m1x[M1_LEN], idr[96], m2x[M2_LEN], h2[32], t2[32], k2[32], mine[96];
	struct tl_keypair km;
	size_t used;

	keypair(&km, 7);
	pair_new(&p, 1, 2, NULL); /* even an initiator that accepts any key */
	/* towards R: M's own m1 */
	spec_ephemeral(&to_r);
	spec_m1(&to_r, m1x);
	assert_int_equal(tl_hs_step(p.r, m1x, M1_LEN, &used, &p.r2i), 0);
	assert_int_equal(spec_read_m2(&to_r, p.r2i.data, idr), 0);
	assert_memory_equal(idr, p.kr.pk, 32);
	/* towards I: R's identity block re-encrypted under M's ephemeral */
	spec_ephemeral(&to_i);
	spec_m2(&to_i, p.i2r.data, idr, m2x);
	p.r2i.len = 0;
	assert_int_equal(tl_buf_add(&p.r2i, m2x, M2_LEN), 0);
	p.i2r.len = 0;
	assert_int_equal(feed(p.i, &p.r2i, SIZE_MAX, &p.i2r), TL_ESIG);
	assert_int_equal(p.i2r.len, 0);
	assert_false(tl_hs_done(p.i));

	/* M completes with R, but only under its own name */
	spec_hash(t2, to_r.tr, 180, NULL, 0);
	spec_key(k2, to_r.prk, "tally/hs/v1/k2", t2);
	{
		uint8_t buf[244];
		memcpy(buf, to_r.tr, 180);
		memcpy(buf + 180, p.kr.pk, 32);
		memcpy(buf + 212, km.pk, 32);
		crypto_hash_sha256(h2, buf, sizeof(buf));
	}
	memcpy(mine, km.pk, 32);
	spec_sign(mine + 32, "tally/hs/v1/I", h2, &km);
	spec_seal(to_r.tr + 180, mine, t2, k2);
	assert_int_equal(tl_hs_step(p.r, to_r.tr + 180, M3_LEN, &used, &p.r2i), 0);
	assert_true(tl_hs_done(p.r));
	assert_memory_equal(tl_hs_peer(p.r), km.pk, 32);
	assert_memory_not_equal(tl_hs_peer(p.r), p.ki.pk, 32);

	/* and it cannot claim I's name: I's signature over M's transcript does
	 * not exist, and one over I's own transcript does not verify for R. */
	pair_free(&p);
}

/* Two sessions between the same identities share no key: fresh ephemerals
 * each time, so old traffic stays sealed if the book keys leak later. */
static void test_sessions_have_fresh_keys(void **state)
{
	(void)state;
	struct tl_session a1, a2, b1, b2;

	sessions(&a1, &a2);
	sessions(&b1, &b2);
	assert_memory_not_equal(a1.tx_key, b1.tx_key, 32);
	assert_memory_not_equal(a1.rx_key, b1.rx_key, 32);
	assert_memory_not_equal(a1.tx_key, b1.rx_key, 32);
	assert_memory_equal(a1.peer, b1.peer, TL_PUB_LEN);
}

/* Caller errors: step before start, keys before done, keys twice, a key
 * pair whose halves disagree, an output buffer too small. */
static void test_api_misuse(void **state)
{
	(void)state;
	struct tl_keypair ki, kr, bad;
	struct tl_hs *i, *r;
	struct tl_buf small, out;
	struct tl_session s;
	struct pair p;
	size_t used = 99;

	keypair(&ki, 1);
	keypair(&kr, 2);
	bad = ki;
	bad.pk[0] ^= 1;
	assert_int_equal(tl_hs_new(&i, TL_HS_INITIATOR, &bad, NULL), TL_EKEY);
	assert_null(i);
	assert_int_equal(tl_hs_new(&i, (enum tl_hs_role)7, &ki, NULL), TL_EINVAL);
	assert_int_equal(tl_hs_new(&i, TL_HS_INITIATOR, NULL, NULL), TL_EINVAL);

	tl_buf_init(&out, 4096);
	tl_buf_init(&small, 10);
	assert_int_equal(tl_hs_new(&i, TL_HS_INITIATOR, &ki, NULL), 0);
	assert_int_equal(tl_hs_step(i, (const uint8_t *)"x", 1, &used, &out), TL_EINVAL);
	assert_int_equal(used, 0);
	assert_int_equal(tl_hs_session(i, &s), TL_EINVAL);
	assert_int_equal(tl_hs_start(i, &small), TL_ETOOBIG); /* may retry */
	assert_int_equal(tl_hs_start(i, &out), 0);
	assert_int_equal(tl_hs_start(i, &out), TL_EINVAL);
	assert_int_equal(out.len, M1_LEN);

	/* a responder that cannot send message 2 fails, and stays failed */
	assert_int_equal(tl_hs_new(&r, TL_HS_RESPONDER, &kr, NULL), 0);
	assert_int_equal(tl_hs_step(r, out.data, out.len, &used, &small), TL_ETOOBIG);
	assert_int_equal(tl_hs_step(r, out.data, out.len, &used, &out), TL_ETOOBIG);
	assert_false(tl_hs_done(r));
	tl_hs_free(r);
	tl_hs_free(i);
	tl_hs_free(NULL);

	pair_new(&p, 1, 2, NULL);
	pair_run(&p, SIZE_MAX);
	assert_int_equal(tl_hs_session(p.i, &s), 0);
	assert_int_equal(tl_hs_session(p.i, &s), TL_EINVAL); /* keys moved out */
	pair_free(&p);
	tl_buf_release(&small);
	tl_buf_release(&out);
}

/* --------------------------------------------------------------- frames */

static void seal_one(struct tl_session *s, const char *msg, struct tl_buf *wire)
{
	assert_int_equal(tl_session_seal(s, (const uint8_t *)msg, strlen(msg), wire), 0);
}

/* Flipping any byte of the ciphertext or tag: TL_ESIG, nothing appended,
 * the counter unchanged (the genuine frame still opens afterwards). A
 * flipped length byte never yields plaintext either. */
static void test_frame_tampered(void **state)
{
	(void)state;
	struct tl_session si, sr;
	struct tl_buf wire, pt;
	size_t used;
	int rc;

	sessions(&si, &sr);
	tl_buf_init(&wire, 4096);
	tl_buf_init(&pt, IO_MAX);
	seal_one(&si, "pay 100 to acme", &wire);
	for (size_t pos = 0; pos < wire.len; pos++) {
		wire.data[pos] ^= 0x04;
		rc = tl_session_open(&sr, wire.data, wire.len, &used, &pt);
		if (pos >= 4)
			assert_int_equal(rc, TL_ESIG);
		else
			assert_true(rc < 0 || (rc == 0 && used == 0));
		assert_int_equal(pt.len, 0);
		assert_true(sr.rx_ctr == 0);
		wire.data[pos] ^= 0x04;
	}
	assert_int_equal(tl_session_open(&sr, wire.data, wire.len, &used, &pt), 0);
	assert_memory_equal(pt.data, "pay 100 to acme", 15);
	tl_buf_release(&wire);
	tl_buf_release(&pt);
}

static void test_frame_replayed(void **state)
{
	(void)state;
	struct tl_session si, sr;
	struct tl_buf wire, pt;
	size_t used;

	sessions(&si, &sr);
	tl_buf_init(&wire, 4096);
	tl_buf_init(&pt, 4096);
	seal_one(&si, "once", &wire);
	assert_int_equal(tl_session_open(&sr, wire.data, wire.len, &used, &pt), 0);
	assert_int_equal(tl_session_open(&sr, wire.data, wire.len, &used, &pt), TL_ESIG);
	assert_int_equal(pt.len, 4);
	/* nor does a frame come back the other way: distinct direction keys */
	assert_int_equal(tl_session_open(&si, wire.data, wire.len, &used, &pt), TL_ESIG);
	tl_buf_release(&wire);
	tl_buf_release(&pt);
}

static void test_frame_reordered(void **state)
{
	(void)state;
	struct tl_session si, sr;
	struct tl_buf a, b, pt;
	size_t used;

	sessions(&si, &sr);
	tl_buf_init(&a, 4096);
	tl_buf_init(&b, 4096);
	tl_buf_init(&pt, 4096);
	seal_one(&si, "first", &a);
	seal_one(&si, "second", &b);
	assert_int_equal(tl_session_open(&sr, b.data, b.len, &used, &pt), TL_ESIG);
	assert_int_equal(tl_session_open(&sr, a.data, a.len, &used, &pt), 0);
	assert_int_equal(tl_session_open(&sr, b.data, b.len, &used, &pt), 0);
	assert_memory_equal(pt.data, "firstsecond", 11);
	tl_buf_release(&a);
	tl_buf_release(&b);
	tl_buf_release(&pt);
}

/* Every proper prefix is "incomplete" (0, used 0); the whole frame opens.
 * Two frames in one buffer open one after the other. */
static void test_frame_truncated_then_completed(void **state)
{
	(void)state;
	struct tl_session si, sr;
	struct tl_buf wire, pt;
	size_t used, off;

	sessions(&si, &sr);
	tl_buf_init(&wire, 4096);
	tl_buf_init(&pt, 4096);
	seal_one(&si, "partial reads", &wire);
	seal_one(&si, "again", &wire);
	off = 13 + TL_FRAME_OVERHEAD;
	for (size_t n = 0; n < off; n++) {
		used = 99;
		assert_int_equal(tl_session_open(&sr, wire.data, n, &used, &pt), 0);
		assert_int_equal(used, 0);
		assert_int_equal(pt.len, 0);
	}
	assert_int_equal(tl_session_open(&sr, wire.data, wire.len, &used, &pt), 0);
	assert_int_equal(used, off);
	assert_int_equal(tl_session_open(&sr, wire.data + off, wire.len - off, &used, &pt), 0);
	assert_int_equal(used, wire.len - off);
	assert_int_equal(pt.len, 18);
	assert_memory_equal(pt.data, "partial readsagain", 18);
	/* a cut-off frame whose rest never comes cannot be passed off as a
	 * shorter frame: the length is authenticated as AD */
	wire.len = 0;
	seal_one(&si, "transfer 1000", &wire);
	wire.data[3] -= 3;
	assert_int_equal(tl_session_open(&sr, wire.data, wire.len - 3, &used, &pt), TL_ESIG);
	tl_buf_release(&wire);
	tl_buf_release(&pt);
}

/* Length limits: TL_FRAME_MAX bytes of plaintext seal and open; one more
 * is refused by seal; a header announcing more is refused from its four
 * bytes alone, and one announcing less than a tag is malformed. */
static void test_frame_size_limits(void **state)
{
	(void)state;
	struct tl_session si, sr;
	struct tl_buf wire, pt;
	uint8_t *big, hdr[4];
	size_t used;
	uint32_t n;

	sessions(&si, &sr);
	big = malloc(TL_FRAME_MAX + 1);
	assert_non_null(big);
	memset(big, 0x5a, TL_FRAME_MAX + 1);
	tl_buf_init(&wire, IO_MAX);
	tl_buf_init(&pt, IO_MAX);
	assert_int_equal(tl_session_seal(&si, big, TL_FRAME_MAX + 1, &wire), TL_ETOOBIG);
	assert_int_equal(wire.len, 0);
	assert_true(si.tx_ctr == 0);
	assert_int_equal(tl_session_seal(&si, big, TL_FRAME_MAX, &wire), 0);
	assert_int_equal(wire.len, TL_FRAME_MAX + TL_FRAME_OVERHEAD);
	/* the header of the largest frame is not refused: it waits */
	assert_int_equal(tl_session_open(&sr, wire.data, 4, &used, &pt), 0);
	assert_int_equal(used, 0);
	assert_int_equal(tl_session_open(&sr, wire.data, wire.len, &used, &pt), 0);
	assert_int_equal(pt.len, TL_FRAME_MAX);
	assert_memory_equal(pt.data, big, TL_FRAME_MAX);

	n = TL_FRAME_MAX + 16 + 1;
	hdr[0] = (uint8_t)(n >> 24);
	hdr[1] = (uint8_t)(n >> 16);
	hdr[2] = (uint8_t)(n >> 8);
	hdr[3] = (uint8_t)n;
	assert_int_equal(tl_session_open(&sr, hdr, 4, &used, &pt), TL_ETOOBIG);
	memset(hdr, 0xff, 4);
	assert_int_equal(tl_session_open(&sr, hdr, 4, &used, &pt), TL_ETOOBIG);
	memset(hdr, 0, 4);
	hdr[3] = 15;
	assert_int_equal(tl_session_open(&sr, hdr, 4, &used, &pt), TL_EFORMAT);
	free(big);
	tl_buf_release(&wire);
	tl_buf_release(&pt);
}

/* A plaintext buffer too small for the frame: TL_ETOOBIG, nothing used,
 * counter unchanged; the same frame opens into a larger buffer. */
static void test_frame_output_too_small(void **state)
{
	(void)state;
	struct tl_session si, sr;
	struct tl_buf wire, small, pt;
	size_t used = 99;

	sessions(&si, &sr);
	tl_buf_init(&wire, 4096);
	tl_buf_init(&small, 4);
	tl_buf_init(&pt, 4096);
	seal_one(&si, "too long for four", &wire);
	assert_int_equal(tl_session_open(&sr, wire.data, wire.len, &used, &small), TL_ETOOBIG);
	assert_int_equal(used, 0);
	assert_true(sr.rx_ctr == 0);
	assert_int_equal(tl_session_open(&sr, wire.data, wire.len, &used, &pt), 0);
	assert_int_equal(used, wire.len);
	tl_buf_release(&wire);
	tl_buf_release(&small);
	tl_buf_release(&pt);
}

/* The last counter value is never used: seal and open refuse with
 * TL_ERANGE instead of wrapping around to a used nonce. */
static void test_frame_counter_exhausted(void **state)
{
	(void)state;
	struct tl_session si, sr;
	struct tl_buf wire, pt;
	size_t used;

	sessions(&si, &sr);
	tl_buf_init(&wire, 4096);
	tl_buf_init(&pt, 4096);
	si.tx_ctr = sr.rx_ctr = UINT64_MAX - 1;
	seal_one(&si, "last", &wire);
	assert_true(si.tx_ctr == UINT64_MAX);
	assert_int_equal(tl_session_open(&sr, wire.data, wire.len, &used, &pt), 0);
	assert_true(sr.rx_ctr == UINT64_MAX);
	wire.len = 0;
	assert_int_equal(tl_session_seal(&si, (const uint8_t *)"x", 1, &wire), TL_ERANGE);
	assert_int_equal(wire.len, 0);
	/* a frame sealed at UINT64_MAX elsewhere is refused, not opened */
	si.tx_ctr = UINT64_MAX - 1;
	seal_one(&si, "z", &wire);
	assert_int_equal(tl_session_open(&sr, wire.data, wire.len, &used, &pt), TL_ERANGE);
	tl_buf_release(&wire);
	tl_buf_release(&pt);
}

/* The frame layout of docs/session.md, built by hand: be32(len(pt) + 16)
 * || XChaCha20-Poly1305(key, nonce = 16 zero bytes || be64(counter),
 * AD = the 4 length bytes). seal produces exactly it; open reads it. */
static void test_frame_format_matches_spec(void **state)
{
	(void)state;
	struct tl_session a, b;
	struct tl_buf wire, pt;
	uint8_t want[4 + 3 + 16], nonce[24] = {0};
	const uint64_t ctr = 0x0102030405060708ULL;
	size_t used;

	memset(&a, 0, sizeof(a));
	memset(a.tx_key, 0x11, 32);
	a.tx_ctr = ctr;
	memset(&b, 0, sizeof(b));
	memset(b.rx_key, 0x11, 32);
	b.rx_ctr = ctr;
	for (int i = 0; i < 8; i++)
		nonce[16 + i] = (uint8_t)(ctr >> (56 - 8 * i));
	memcpy(want, "\x00\x00\x00\x13", 4);
	crypto_aead_xchacha20poly1305_ietf_encrypt(want + 4, NULL, (const uint8_t *)"abc", 3, want,
	                                           4, NULL, nonce, a.tx_key);
	tl_buf_init(&wire, 4096);
	tl_buf_init(&pt, 4096);
	assert_int_equal(tl_session_seal(&a, (const uint8_t *)"abc", 3, &wire), 0);
	assert_int_equal(wire.len, sizeof(want));
	assert_memory_equal(wire.data, want, sizeof(want));
	assert_true(a.tx_ctr == ctr + 1);
	assert_int_equal(tl_session_open(&b, want, sizeof(want), &used, &pt), 0);
	assert_int_equal(used, sizeof(want));
	assert_memory_equal(pt.data, "abc", 3);
	tl_buf_release(&wire);
	tl_buf_release(&pt);
}

/* tl_session_wipe leaves nothing behind. */
static void test_session_wipe(void **state)
{
	(void)state;
	struct tl_session si, sr, zero;

	sessions(&si, &sr);
	memset(&zero, 0, sizeof(zero));
	tl_session_wipe(&si);
	assert_memory_equal(&si, &zero, sizeof(zero));
	tl_session_wipe(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_handshake_whole_messages),
	        cmocka_unit_test(test_handshake_one_byte_at_a_time),
	        cmocka_unit_test(test_handshake_leaves_trailing_bytes),
	        cmocka_unit_test(test_handshake_long_message3),
	        cmocka_unit_test(test_handshake_short_message_waits),
	        cmocka_unit_test(test_altered_message1),
	        cmocka_unit_test(test_bad_magic_refused_early),
	        cmocka_unit_test(test_altered_message2),
	        cmocka_unit_test(test_altered_message3),
	        cmocka_unit_test(test_replayed_messages),
	        cmocka_unit_test(test_substituted_responder_key),
	        cmocka_unit_test(test_responder_expected_peer),
	        cmocka_unit_test(test_own_key_refused),
	        cmocka_unit_test(test_spec_responder_matches),
	        cmocka_unit_test(test_spec_initiator_matches),
	        cmocka_unit_test(test_mitm_substituting_ephemerals),
	        cmocka_unit_test(test_sessions_have_fresh_keys),
	        cmocka_unit_test(test_api_misuse),
	        cmocka_unit_test(test_frame_tampered),
	        cmocka_unit_test(test_frame_replayed),
	        cmocka_unit_test(test_frame_reordered),
	        cmocka_unit_test(test_frame_truncated_then_completed),
	        cmocka_unit_test(test_frame_size_limits),
	        cmocka_unit_test(test_frame_output_too_small),
	        cmocka_unit_test(test_frame_counter_exhausted),
	        cmocka_unit_test(test_frame_format_matches_spec),
	        cmocka_unit_test(test_session_wipe),
	};
	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
