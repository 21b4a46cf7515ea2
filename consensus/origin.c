/*
 * origin.c — channel ids and feed origins (DESIGN §2, §3).
 *
 * Both parties derive the channel id without talking, so the key order is
 * fixed by the bytes, never by who asks. Origins are compared as bytes by
 * every verifier, so exactly one spelling is accepted.
 */
#include <sodium.h>
#include <string.h>

#include "consensus/tl_consensus.h"

#define ORIGIN_PREFIX     "tally.v1/"
#define ORIGIN_PREFIX_LEN (sizeof(ORIGIN_PREFIX) - 1)

void tl_channel_id(uint8_t out[TL_CHANNEL_LEN], const uint8_t a[TL_PUB_LEN],
                   const uint8_t b[TL_PUB_LEN], const char *label, size_t label_len)
{
	/*
	 * Streaming hash: the label has no cap in this signature, so a
	 * concatenation buffer would need an allocation that could fail in a
	 * function that cannot report failure.
	 */
	crypto_hash_sha256_state st;
	uint8_t h[TL_HASH_LEN];
	const uint8_t *lo = a, *hi = b;

	if (memcmp(a, b, TL_PUB_LEN) > 0) {
		lo = b;
		hi = a;
	}
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)TL_CHANNEL_CONTEXT,
	                          sizeof(TL_CHANNEL_CONTEXT) - 1);
	crypto_hash_sha256_update(&st, lo, TL_PUB_LEN);
	crypto_hash_sha256_update(&st, hi, TL_PUB_LEN);
	if (label_len)
		crypto_hash_sha256_update(&st, (const uint8_t *)label, label_len);
	crypto_hash_sha256_final(&st, h);
	memcpy(out, h, TL_CHANNEL_LEN);
}

void tl_origin_format(char *out, const uint8_t pk[TL_PUB_LEN],
                      const uint8_t channel[TL_CHANNEL_LEN])
{
	memcpy(out, ORIGIN_PREFIX, ORIGIN_PREFIX_LEN);
	tl_hex_encode(out + ORIGIN_PREFIX_LEN, pk, TL_PUB_LEN);
	out[ORIGIN_PREFIX_LEN + 2 * TL_PUB_LEN] = '/';
	tl_hex_encode(out + ORIGIN_PREFIX_LEN + 2 * TL_PUB_LEN + 1, channel, TL_CHANNEL_LEN);
}

/* tl_hex_decode accepts either case; origins are lowercase only. */
static int lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return 1;
}

int tl_origin_parse(struct tl_origin *o, const char *s, size_t len)
{
	const char *pk_hex, *ch_hex;

	if (!s || len != TL_ORIGIN_LEN)
		return TL_EFORMAT;
	pk_hex = s + ORIGIN_PREFIX_LEN;
	ch_hex = pk_hex + 2 * TL_PUB_LEN + 1;
	if (memcmp(s, ORIGIN_PREFIX, ORIGIN_PREFIX_LEN) != 0 || pk_hex[2 * TL_PUB_LEN] != '/')
		return TL_EFORMAT;
	if (!lower_hex(pk_hex, 2 * TL_PUB_LEN) || !lower_hex(ch_hex, 2 * TL_CHANNEL_LEN))
		return TL_EFORMAT;
	if (tl_hex_decode(o->pk, TL_PUB_LEN, pk_hex, 2 * TL_PUB_LEN) != 0 ||
	    tl_hex_decode(o->channel, TL_CHANNEL_LEN, ch_hex, 2 * TL_CHANNEL_LEN) != 0)
		return TL_EFORMAT;
	return 0;
}
