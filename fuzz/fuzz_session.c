/*
 * fuzz_session.c — the peer handshake and frame layer on untrusted bytes.
 *
 * The first input byte picks a fragment size (1..256), so the fuzzer also
 * explores reads split at every position. The rest is fed:
 *   - to a responder's tl_hs_step (as messages 1 and 3),
 *   - to an initiator's tl_hs_step after it sent message 1 (as message 2),
 *   - to tl_session_open on a session with fixed keys, frame after frame.
 * Besides not crashing: *used never exceeds what was given, a step that has
 * not finished consumes everything, no handshake completes (completing would
 * need a signature by a key the fuzzer does not hold), and a failure sticks.
 * Finally the input is sealed and opened again on a matching session pair
 * and must come back unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/tl_crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tl_keypair me, them;

static void run_hs(enum tl_hs_role role, const uint8_t *in, size_t len, size_t chunk)
{
	struct tl_hs *hs;
	struct tl_buf out;
	size_t off = 0, used, n;
	int rc = 0;

	tl_buf_init(&out, 4096);
	if (tl_hs_new(&hs, role, &me, role == TL_HS_INITIATOR ? them.pk : NULL) != 0)
		abort();
	if (tl_hs_start(hs, &out) != 0)
		abort();
	while (off < len) {
		n = len - off < chunk ? len - off : chunk;
		rc = tl_hs_step(hs, in + off, n, &used, &out);
		if (used > n)
			abort();
		if (rc != 0)
			break;
		if (tl_hs_done(hs))
			abort(); /* a forged peer signature */
		if (used != n)
			abort();
		off += used;
	}
	if (rc != 0) {
		if (rc != TL_EFORMAT && rc != TL_ESIG && rc != TL_EKEY)
			abort();
		if (tl_hs_step(hs, in, len, &used, &out) != rc || tl_hs_done(hs) || tl_hs_peer(hs))
			abort();
	}
	/* at most message 1 (initiator) or message 2 (responder) went out */
	if (out.len > 144)
		abort();
	tl_hs_free(hs);
	tl_buf_release(&out);
}

static void run_open(const uint8_t *in, size_t len, size_t chunk)
{
	struct tl_session s;
	struct tl_buf pt;
	size_t off = 0, avail, used;
	int rc;

	memset(&s, 0, sizeof(s));
	memset(s.rx_key, 0x2a, sizeof(s.rx_key));
	tl_buf_init(&pt, TL_FRAME_MAX);
	/* Bytes arrive chunk at a time into a window [off, avail). */
	for (avail = 0; avail < len;) {
		avail += len - avail < chunk ? len - avail : chunk;
		for (;;) {
			rc = tl_session_open(&s, in + off, avail - off, &used, &pt);
			if (rc != 0) {
				if (rc != TL_ESIG && rc != TL_ETOOBIG && rc != TL_EFORMAT)
					abort();
				goto out;
			}
			if (used == 0)
				break;
			if (used > avail - off || used < TL_FRAME_OVERHEAD)
				abort();
			off += used;
			pt.len = 0;
		}
	}
out:
	tl_session_wipe(&s);
	tl_buf_release(&pt);
}

static void run_roundtrip(const uint8_t *in, size_t len)
{
	struct tl_session a, b;
	struct tl_buf wire, pt;
	size_t used;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(a.tx_key, 0x17, sizeof(a.tx_key));
	memset(b.rx_key, 0x17, sizeof(b.rx_key));
	tl_buf_init(&wire, TL_FRAME_MAX + TL_FRAME_OVERHEAD);
	tl_buf_init(&pt, TL_FRAME_MAX);
	if (tl_session_seal(&a, in, len, &wire) != 0 || wire.len != len + TL_FRAME_OVERHEAD)
		abort();
	if (tl_session_open(&b, wire.data, wire.len - 1, &used, &pt) != 0 || used != 0)
		abort();
	if (tl_session_open(&b, wire.data, wire.len, &used, &pt) != 0 || used != wire.len ||
	    pt.len != len || (len && memcmp(pt.data, in, len) != 0))
		abort();
	tl_buf_release(&wire);
	tl_buf_release(&pt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	uint8_t seed[TL_SEED_LEN];
	size_t chunk;

	if (!ready) {
		if (tl_init() != 0)
			abort();
		memset(seed, 1, sizeof(seed));
		if (tl_key_from_seed(&me, seed) != 0)
			abort();
		memset(seed, 2, sizeof(seed));
		if (tl_key_from_seed(&them, seed) != 0)
			abort();
		ready = 1;
	}
	if (size == 0)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	run_hs(TL_HS_RESPONDER, data, size, chunk);
	run_hs(TL_HS_INITIATOR, data, size, chunk);
	run_open(data, size, chunk);
	run_roundtrip(data, size);
	return 0;
}
