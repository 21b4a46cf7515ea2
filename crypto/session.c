/*
 * session.c — peer sessions: a three-message mutually authenticated key
 * exchange (ephemeral X25519, Ed25519 signatures over the transcript) and
 * the encrypted, counter-nonced frames that follow it.
 *
 * Exact layouts, key schedule and security argument: docs/session.md.
 * Summary:
 *
 *   m1 = "TLY1" || e_I                                   36 bytes
 *   m2 = e_R || AEAD(k1, 0, T0; pk_R || sig_R)           144 bytes
 *   m3 = AEAD(k2, 0, T2; pk_I || sig_I)                  112 bytes
 *
 *   T0 = SHA-256(m1 || e_R)        H1 = SHA-256(m1 || e_R || pk_R)
 *   T2 = SHA-256(m1 || m2)         H2 = SHA-256(m1 || m2 || pk_R || pk_I)
 *   T3 = SHA-256(m1 || m2 || m3)
 *   sig_R = Ed25519(sk_R, "tally/hs/v1/R" || H1)
 *   sig_I = Ed25519(sk_I, "tally/hs/v1/I" || H2)
 *   prk = HMAC-SHA256(key = T0, X25519(e, e'))         HKDF-Extract
 *   k1  = HMAC-SHA256(prk, "tally/hs/v1/k1"  || T0 || 0x01)   HKDF-Expand
 *   k2  = HMAC-SHA256(prk, "tally/hs/v1/k2"  || T2 || 0x01)
 *   i2r = HMAC-SHA256(prk, "tally/hs/v1/i2r" || T3 || 0x01)
 *   r2i = HMAC-SHA256(prk, "tally/hs/v1/r2i" || T3 || 0x01)
 *
 * Everything secret in a handshake lives in one sodium_malloc block; the
 * ephemeral secret is wiped as soon as prk exists, prk as soon as the
 * session keys exist, and the signing key as soon as our signature is made.
 */
#include "crypto/tl_crypto.h"

#include <sodium.h>
#include <string.h>

#define HS_MAGIC     "TLY1"
#define HS_MAGIC_LEN 4
#define HS_KEY_LEN   32 /* X25519 points and scalars, AEAD and HKDF keys */
#define HS_TAG_LEN   crypto_aead_xchacha20poly1305_ietf_ABYTES
#define HS_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define HS_ID_LEN    (TL_PUB_LEN + TL_SIG_LEN) /* pk || sig, the AEAD plaintext */
#define HS_CTX_LEN   13                        /* "tally/hs/v1/R" and ".../I" */

#define HS_M1_LEN (HS_MAGIC_LEN + HS_KEY_LEN)           /* 36 */
#define HS_M2_LEN (HS_KEY_LEN + HS_ID_LEN + HS_TAG_LEN) /* 144 */
#define HS_M3_LEN (HS_ID_LEN + HS_TAG_LEN)              /* 112 */

/* Offsets in the transcript m1 || m2 || m3. */
#define TR_EI  HS_MAGIC_LEN
#define TR_M2  HS_M1_LEN
#define TR_ER  TR_M2
#define TR_C2  (TR_M2 + HS_KEY_LEN)
#define TR_M3  (TR_M2 + HS_M2_LEN)
#define TR_MAX (TR_M3 + HS_M3_LEN) /* 292 */

#define FRAME_HDR 4
#define FRAME_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES

enum hs_state {
	HS_START,   /* initiator before tl_hs_start */
	HS_WAIT_M1, /* responder */
	HS_WAIT_M2, /* initiator */
	HS_WAIT_M3, /* responder */
	HS_DONE,
	HS_FAILED,
};

/*
 * The whole handshake sits in sodium_malloc memory (guard pages, locked,
 * wiped by sodium_free); fields are wiped again as soon as they are no
 * longer needed, so a handshake that lingers holds as little as possible.
 */
struct tl_hs {
	enum tl_hs_role role;
	enum hs_state state;
	int err;        /* sticky, when state == HS_FAILED */
	int want_peer;  /* expected is set */
	int keys_moved; /* tl_hs_session has run */
	size_t trlen;   /* transcript bytes held */
	size_t need;    /* transcript length at the end of the awaited message */
	struct tl_keypair me;
	uint8_t expected[TL_PUB_LEN];
	uint8_t peer[TL_PUB_LEN];
	uint8_t e_pk[HS_KEY_LEN], e_sk[HS_KEY_LEN];
	uint8_t prk[HS_KEY_LEN];
	uint8_t k2[HS_KEY_LEN]; /* responder: from message 1 to message 3 */
	uint8_t tx_key[HS_KEY_LEN], rx_key[HS_KEY_LEN];
	uint8_t tr[TR_MAX]; /* m1 || m2 || m3, received bytes land here directly */
};

static const uint8_t ctx_r[HS_CTX_LEN] = "tally/hs/v1/R";
static const uint8_t ctx_i[HS_CTX_LEN] = "tally/hs/v1/I";

/* ------------------------------------------------------------- helpers */

/* SHA-256(a || b || c); b and c may be NULL. */
static void hash3(uint8_t out[TL_HASH_LEN], const uint8_t *a, size_t al, const uint8_t *b,
                  size_t bl, const uint8_t *c, size_t cl)
{
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, a, al);
	if (b)
		crypto_hash_sha256_update(&st, b, bl);
	if (c)
		crypto_hash_sha256_update(&st, c, cl);
	crypto_hash_sha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

/* HKDF-Expand (RFC 5869) for one 32-byte block: HMAC(prk, label || th || 0x01). */
static void hkdf_expand(uint8_t out[HS_KEY_LEN], const uint8_t prk[HS_KEY_LEN], const char *label,
                        const uint8_t th[TL_HASH_LEN])
{
	crypto_auth_hmacsha256_state st;
	const uint8_t one = 1;

	crypto_auth_hmacsha256_init(&st, prk, HS_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, strlen(label));
	crypto_auth_hmacsha256_update(&st, th, TL_HASH_LEN);
	crypto_auth_hmacsha256_update(&st, &one, 1);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

/*
 * prk = HKDF-Extract(salt = T0, ikm = X25519(e_sk, peer_e)); then the
 * ephemeral secret is gone. A peer ephemeral of small order gives an
 * all-zero shared secret, which libsodium reports: TL_EFORMAT.
 */
static int hs_extract(struct tl_hs *hs, const uint8_t peer_e[HS_KEY_LEN],
                      const uint8_t t0[TL_HASH_LEN])
{
	uint8_t dh[HS_KEY_LEN];
	int rc = crypto_scalarmult(dh, hs->e_sk, peer_e);

	sodium_memzero(hs->e_sk, sizeof(hs->e_sk));
	if (rc != 0) {
		sodium_memzero(dh, sizeof(dh));
		return TL_EFORMAT;
	}
	crypto_auth_hmacsha256(hs->prk, dh, sizeof(dh), t0);
	sodium_memzero(dh, sizeof(dh));
	return 0;
}

/* Fixed all-zero nonce: k1 and k2 each encrypt exactly one message. */
static void hs_seal(uint8_t *c, const uint8_t pt[HS_ID_LEN], const uint8_t ad[TL_HASH_LEN],
                    const uint8_t key[HS_KEY_LEN])
{
	static const uint8_t zero[HS_NONCE_LEN];

	crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, pt, HS_ID_LEN, ad, TL_HASH_LEN, NULL,
	                                           zero, key);
}

static int hs_open(uint8_t pt[HS_ID_LEN], const uint8_t *c, const uint8_t ad[TL_HASH_LEN],
                   const uint8_t key[HS_KEY_LEN])
{
	static const uint8_t zero[HS_NONCE_LEN];

	if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, NULL, NULL, c, HS_ID_LEN + HS_TAG_LEN,
	                                               ad, TL_HASH_LEN, zero, key) != 0)
		return TL_ESIG;
	return 0;
}

/* Signs ctx || h with our book key, then forgets the key. */
static void hs_sign(struct tl_hs *hs, uint8_t sig[TL_SIG_LEN], const uint8_t ctx[HS_CTX_LEN],
                    const uint8_t h[TL_HASH_LEN])
{
	uint8_t msg[HS_CTX_LEN + TL_HASH_LEN];

	memcpy(msg, ctx, HS_CTX_LEN);
	memcpy(msg + HS_CTX_LEN, h, TL_HASH_LEN);
	tl_sign(sig, msg, sizeof(msg), hs->me.sk);
	sodium_memzero(hs->me.sk, sizeof(hs->me.sk));
}

static int hs_verify(const uint8_t sig[TL_SIG_LEN], const uint8_t ctx[HS_CTX_LEN],
                     const uint8_t h[TL_HASH_LEN], const uint8_t pk[TL_PUB_LEN])
{
	uint8_t msg[HS_CTX_LEN + TL_HASH_LEN];

	memcpy(msg, ctx, HS_CTX_LEN);
	memcpy(msg + HS_CTX_LEN, h, TL_HASH_LEN);
	return tl_verify(sig, msg, sizeof(msg), pk);
}

/*
 * The peer's identity, once its signature verified: never our own key (a
 * reflected or looped connection), and the expected key when one was given.
 */
static int hs_check_peer(const struct tl_hs *hs, const uint8_t pk[TL_PUB_LEN])
{
	if (sodium_memcmp(pk, hs->me.pk, TL_PUB_LEN) == 0)
		return TL_EKEY;
	if (hs->want_peer && sodium_memcmp(pk, hs->expected, TL_PUB_LEN) != 0)
		return TL_EKEY;
	return 0;
}

/* Session keys from the complete transcript; prk is no longer needed. */
static void hs_finish(struct tl_hs *hs)
{
	uint8_t t3[TL_HASH_LEN], i2r[HS_KEY_LEN], r2i[HS_KEY_LEN];

	hash3(t3, hs->tr, TR_MAX, NULL, 0, NULL, 0);
	hkdf_expand(i2r, hs->prk, "tally/hs/v1/i2r", t3);
	hkdf_expand(r2i, hs->prk, "tally/hs/v1/r2i", t3);
	if (hs->role == TL_HS_INITIATOR) {
		memcpy(hs->tx_key, i2r, HS_KEY_LEN);
		memcpy(hs->rx_key, r2i, HS_KEY_LEN);
	} else {
		memcpy(hs->tx_key, r2i, HS_KEY_LEN);
		memcpy(hs->rx_key, i2r, HS_KEY_LEN);
	}
	sodium_memzero(i2r, sizeof(i2r));
	sodium_memzero(r2i, sizeof(r2i));
	sodium_memzero(hs->prk, sizeof(hs->prk));
	sodium_memzero(hs->k2, sizeof(hs->k2));
	hs->state = HS_DONE;
}

/* ------------------------------------------------------ the three steps */

/* Responder, m1 complete in tr[0, 36): answer with m2, keep k2 for m3. */
static int hs_on_m1(struct tl_hs *hs, struct tl_buf *out)
{
	uint8_t t0[TL_HASH_LEN], h1[TL_HASH_LEN], t2[TL_HASH_LEN];
	uint8_t k1[HS_KEY_LEN], id[HS_ID_LEN];
	int err;

	/* The magic was checked byte by byte as it arrived. */
	memcpy(hs->tr + TR_ER, hs->e_pk, HS_KEY_LEN);
	hash3(t0, hs->tr, TR_C2, NULL, 0, NULL, 0);
	err = hs_extract(hs, hs->tr + TR_EI, t0);
	if (err)
		goto fail;
	hkdf_expand(k1, hs->prk, "tally/hs/v1/k1", t0);

	hash3(h1, hs->tr, TR_C2, hs->me.pk, TL_PUB_LEN, NULL, 0);
	memcpy(id, hs->me.pk, TL_PUB_LEN);
	hs_sign(hs, id + TL_PUB_LEN, ctx_r, h1);
	hs_seal(hs->tr + TR_C2, id, t0, k1);

	hash3(t2, hs->tr, TR_M3, NULL, 0, NULL, 0);
	hkdf_expand(hs->k2, hs->prk, "tally/hs/v1/k2", t2);

	err = tl_buf_add(out, hs->tr + TR_M2, HS_M2_LEN);
	if (err)
		goto fail;
	hs->trlen = TR_M3;
	hs->need = TR_MAX;
	hs->state = HS_WAIT_M3;
fail:
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(id, sizeof(id));
	return err;
}

/* Initiator, m2 complete in tr[36, 180): check R, answer with m3, done. */
static int hs_on_m2(struct tl_hs *hs, struct tl_buf *out)
{
	uint8_t t0[TL_HASH_LEN], h1[TL_HASH_LEN], t2[TL_HASH_LEN], h2[TL_HASH_LEN];
	uint8_t k1[HS_KEY_LEN], k2[HS_KEY_LEN], id[HS_ID_LEN], mine[HS_ID_LEN];
	int err;

	hash3(t0, hs->tr, TR_C2, NULL, 0, NULL, 0);
	err = hs_extract(hs, hs->tr + TR_ER, t0);
	if (err)
		goto fail;
	hkdf_expand(k1, hs->prk, "tally/hs/v1/k1", t0);
	err = hs_open(id, hs->tr + TR_C2, t0, k1);
	if (err)
		goto fail;
	hash3(h1, hs->tr, TR_C2, id, TL_PUB_LEN, NULL, 0);
	err = hs_verify(id + TL_PUB_LEN, ctx_r, h1, id);
	if (err)
		goto fail;
	err = hs_check_peer(hs, id);
	if (err)
		goto fail;
	memcpy(hs->peer, id, TL_PUB_LEN);

	hash3(t2, hs->tr, TR_M3, NULL, 0, NULL, 0);
	hkdf_expand(k2, hs->prk, "tally/hs/v1/k2", t2);
	hash3(h2, hs->tr, TR_M3, hs->peer, TL_PUB_LEN, hs->me.pk, TL_PUB_LEN);
	memcpy(mine, hs->me.pk, TL_PUB_LEN);
	hs_sign(hs, mine + TL_PUB_LEN, ctx_i, h2);
	hs_seal(hs->tr + TR_M3, mine, t2, k2);

	err = tl_buf_add(out, hs->tr + TR_M3, HS_M3_LEN);
	if (err)
		goto fail;
	hs->trlen = TR_MAX;
	hs_finish(hs);
fail:
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	sodium_memzero(id, sizeof(id));
	sodium_memzero(mine, sizeof(mine));
	return err;
}

/* Responder, m3 complete in tr[180, 292): check I, done. */
static int hs_on_m3(struct tl_hs *hs)
{
	uint8_t t2[TL_HASH_LEN], h2[TL_HASH_LEN], id[HS_ID_LEN];
	int err;

	hash3(t2, hs->tr, TR_M3, NULL, 0, NULL, 0);
	err = hs_open(id, hs->tr + TR_M3, t2, hs->k2);
	if (err)
		goto fail;
	hash3(h2, hs->tr, TR_M3, hs->me.pk, TL_PUB_LEN, id, TL_PUB_LEN);
	err = hs_verify(id + TL_PUB_LEN, ctx_i, h2, id);
	if (err)
		goto fail;
	err = hs_check_peer(hs, id);
	if (err)
		goto fail;
	memcpy(hs->peer, id, TL_PUB_LEN);
	hs_finish(hs);
fail:
	sodium_memzero(id, sizeof(id));
	return err;
}

/* ------------------------------------------------------------- the API */

int tl_hs_new(struct tl_hs **out, enum tl_hs_role role, const struct tl_keypair *me,
              const uint8_t expected_peer[TL_PUB_LEN])
{
	struct tl_hs *hs;

	if (!out)
		return TL_EINVAL;
	*out = NULL;
	if (!me || (role != TL_HS_INITIATOR && role != TL_HS_RESPONDER))
		return TL_EINVAL;
	/* libsodium's secret key is seed || pk: a pair that disagrees would sign
	 * for a key other than the one we announce. */
	if (sodium_memcmp(me->sk + TL_SEED_LEN, me->pk, TL_PUB_LEN) != 0)
		return TL_EKEY;
	hs = sodium_malloc(sizeof(*hs));
	if (!hs)
		return TL_ENOMEM;
	sodium_memzero(hs, sizeof(*hs));
	hs->role = role;
	hs->me = *me;
	if (expected_peer) {
		memcpy(hs->expected, expected_peer, TL_PUB_LEN);
		hs->want_peer = 1;
	}
	randombytes_buf(hs->e_sk, sizeof(hs->e_sk));
	if (crypto_scalarmult_base(hs->e_pk, hs->e_sk) != 0) {
		tl_hs_free(hs);
		return TL_ECRYPTO;
	}
	if (role == TL_HS_INITIATOR) {
		hs->state = HS_START;
	} else {
		hs->state = HS_WAIT_M1;
		hs->need = HS_M1_LEN;
	}
	*out = hs;
	return 0;
}

void tl_hs_free(struct tl_hs *hs)
{
	if (!hs)
		return;
	sodium_memzero(hs, sizeof(*hs));
	sodium_free(hs);
}

int tl_hs_start(struct tl_hs *hs, struct tl_buf *out)
{
	int err;

	if (!hs || !out)
		return TL_EINVAL;
	if (hs->role == TL_HS_RESPONDER)
		return hs->state == HS_WAIT_M1 && hs->trlen == 0 ? 0 : TL_EINVAL;
	if (hs->state != HS_START)
		return TL_EINVAL;
	memcpy(hs->tr, HS_MAGIC, HS_MAGIC_LEN);
	memcpy(hs->tr + TR_EI, hs->e_pk, HS_KEY_LEN);
	/* Nothing changes unless m1 made it into out: the caller may retry. */
	err = tl_buf_add(out, hs->tr, HS_M1_LEN);
	if (err)
		return err;
	hs->trlen = HS_M1_LEN;
	hs->need = TR_M3;
	hs->state = HS_WAIT_M2;
	return 0;
}

static int hs_fail(struct tl_hs *hs, int err)
{
	sodium_memzero(hs->e_sk, sizeof(hs->e_sk));
	sodium_memzero(hs->prk, sizeof(hs->prk));
	sodium_memzero(hs->k2, sizeof(hs->k2));
	sodium_memzero(hs->me.sk, sizeof(hs->me.sk));
	hs->state = HS_FAILED;
	hs->err = err;
	return err;
}

int tl_hs_step(struct tl_hs *hs, const uint8_t *in, size_t len, size_t *used, struct tl_buf *out)
{
	size_t off = 0, n;
	int err = 0;

	if (used)
		*used = 0;
	if (!hs || !used || !out || (!in && len))
		return TL_EINVAL;
	if (hs->state == HS_FAILED)
		return hs->err;
	if (hs->state == HS_START)
		return TL_EINVAL; /* tl_hs_start first */

	while (hs->state != HS_DONE && off < len) {
		n = hs->need - hs->trlen;
		if (n > len - off)
			n = len - off;
		memcpy(hs->tr + hs->trlen, in + off, n);
		off += n;
		/* A wrong magic is refused on its first byte, not after 36. */
		if (hs->state == HS_WAIT_M1 && hs->trlen < HS_MAGIC_LEN) {
			size_t m = hs->trlen + n < HS_MAGIC_LEN ? hs->trlen + n : HS_MAGIC_LEN;
			if (memcmp(hs->tr, HS_MAGIC, m) != 0) {
				err = TL_EFORMAT;
				break;
			}
		}
		hs->trlen += n;
		if (hs->trlen < hs->need)
			break;
		switch (hs->state) {
		case HS_WAIT_M1:
			err = hs_on_m1(hs, out);
			break;
		case HS_WAIT_M2:
			err = hs_on_m2(hs, out);
			break;
		case HS_WAIT_M3:
			err = hs_on_m3(hs);
			break;
		default:
			err = TL_EINVAL;
			break;
		}
		if (err)
			break;
	}
	*used = off;
	if (err)
		return hs_fail(hs, err);
	return 0;
}

int tl_hs_done(const struct tl_hs *hs)
{
	return hs && hs->state == HS_DONE;
}

const uint8_t *tl_hs_peer(const struct tl_hs *hs)
{
	return tl_hs_done(hs) ? hs->peer : NULL;
}

int tl_hs_session(struct tl_hs *hs, struct tl_session *out)
{
	if (!hs || !out || hs->state != HS_DONE || hs->keys_moved)
		return TL_EINVAL;
	memcpy(out->tx_key, hs->tx_key, HS_KEY_LEN);
	memcpy(out->rx_key, hs->rx_key, HS_KEY_LEN);
	out->tx_ctr = 0;
	out->rx_ctr = 0;
	memcpy(out->peer, hs->peer, TL_PUB_LEN);
	sodium_memzero(hs->tx_key, sizeof(hs->tx_key));
	sodium_memzero(hs->rx_key, sizeof(hs->rx_key));
	hs->keys_moved = 1;
	return 0;
}

/* ------------------------------------------------------------- frames */

void tl_session_wipe(struct tl_session *s)
{
	if (s)
		sodium_memzero(s, sizeof(*s));
}

/* 16 zero bytes || the 64-bit counter, big-endian. Each direction has its
 * own key, so the two counters never share a (key, nonce) pair. */
static void frame_nonce(uint8_t nonce[HS_NONCE_LEN], uint64_t ctr)
{
	memset(nonce, 0, HS_NONCE_LEN);
	for (int i = 0; i < 8; i++)
		nonce[HS_NONCE_LEN - 1 - i] = (uint8_t)(ctr >> (8 * i));
}

int tl_session_seal(struct tl_session *s, const uint8_t *pt, size_t len, struct tl_buf *out)
{
	uint8_t nonce[HS_NONCE_LEN], *p;
	uint32_t clen;
	int err;

	if (!s || !out || (!pt && len))
		return TL_EINVAL;
	if (len > TL_FRAME_MAX)
		return TL_ETOOBIG;
	/* The last counter value is never used: after 2^64 - 1 frames the
	 * session is spent and a new handshake is needed. */
	if (s->tx_ctr == UINT64_MAX)
		return TL_ERANGE;
	clen = (uint32_t)(len + FRAME_TAG);
	err = tl_buf_reserve(out, FRAME_HDR + (size_t)clen);
	if (err)
		return err;
	p = out->data + out->len;
	p[0] = (uint8_t)(clen >> 24);
	p[1] = (uint8_t)(clen >> 16);
	p[2] = (uint8_t)(clen >> 8);
	p[3] = (uint8_t)clen;
	frame_nonce(nonce, s->tx_ctr);
	crypto_aead_xchacha20poly1305_ietf_encrypt(p + FRAME_HDR, NULL, pt, len, p, FRAME_HDR, NULL,
	                                           nonce, s->tx_key);
	out->len += FRAME_HDR + (size_t)clen;
	s->tx_ctr++;
	return 0;
}

int tl_session_open(struct tl_session *s, const uint8_t *in, size_t len, size_t *used,
                    struct tl_buf *pt)
{
	uint8_t nonce[HS_NONCE_LEN];
	uint32_t clen;
	size_t mlen;
	int err;

	if (used)
		*used = 0;
	if (!s || !used || !pt || (!in && len))
		return TL_EINVAL;
	if (len < FRAME_HDR)
		return 0;
	clen = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
	if (clen > TL_FRAME_MAX + FRAME_TAG)
		return TL_ETOOBIG;
	if (clen < FRAME_TAG)
		return TL_EFORMAT; /* no frame is shorter than its tag */
	if (len - FRAME_HDR < clen)
		return 0;
	if (s->rx_ctr == UINT64_MAX)
		return TL_ERANGE;
	mlen = clen - FRAME_TAG;
	err = tl_buf_reserve(pt, mlen);
	if (err)
		return err;
	frame_nonce(nonce, s->rx_ctr);
	/* Verifies before it decrypts: nothing unauthenticated reaches pt. */
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt->data + pt->len, NULL, NULL,
	                                               in + FRAME_HDR, clen, in, FRAME_HDR, nonce,
	                                               s->rx_key) != 0)
		return TL_ESIG;
	pt->len += mlen;
	s->rx_ctr++;
	*used = FRAME_HDR + (size_t)clen;
	return 0;
}
