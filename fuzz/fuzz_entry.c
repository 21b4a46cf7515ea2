/*
 * fuzz_entry.c — libFuzzer target for the record decoder, the canonical
 * MessagePack validator and the JSON bridge.
 *
 * Besides "no crash", it checks two differential properties:
 *   - a record that decodes re-encodes, from its decoded fields, to the very
 *     same entry bytes (the decoder accepts only what the encoder writes);
 *   - any object tl_mp_check accepts survives tl_mp_to_json -> tl_json_to_mp
 *     byte for byte, unless it holds bin or an integer above INT64_MAX (JSON
 *     has no bytes type and jansson no unsigned 64-bit integers; both come
 *     back as tagged objects by design).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/tl_node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned k = 0; k < n; k++)
		v = v << 8 | p[k];
	return v;
}

/* Input already accepted by tl_mp_check: no bounds surprises, no floats. */
static int has_bin_or_big_uint(const uint8_t *p, size_t len)
{
	uint64_t todo = 1;
	size_t pos = 0;

	while (todo && pos < len) {
		uint8_t b = p[pos++];
		uint64_t n = 0;
		todo--;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			continue;
		if (b <= 0x8f) {
			todo += 2 * (uint64_t)(b & 0x0f);
		} else if (b <= 0x9f) {
			todo += b & 0x0f;
		} else if (b <= 0xbf) {
			pos += b & 0x1f;
		} else if (b >= 0xc4 && b <= 0xc6) {
			return 1;
		} else if (b == 0xcf && (p[pos] & 0x80)) {
			return 1;
		} else if (b >= 0xcc && b <= 0xcf) {
			pos += 1u << (b - 0xcc);
		} else if (b >= 0xd0 && b <= 0xd3) {
			pos += 1u << (b - 0xd0);
		} else if (b >= 0xd9 && b <= 0xdb) {
			unsigned w = 1u << (b - 0xd9);
			n = be(p + pos, w);
			pos += w + (size_t)n;
		} else if (b == 0xdc || b == 0xdd) {
			unsigned w = b == 0xdc ? 2 : 4;
			todo += be(p + pos, w);
			pos += w;
		} else if (b == 0xde || b == 0xdf) {
			unsigned w = b == 0xde ? 2 : 4;
			todo += 2 * be(p + pos, w);
			pos += w;
		} else {
			abort(); /* tl_mp_check let something through it must not */
		}
	}
	return 0;
}

static void check_round_trip(const uint8_t *data, size_t size)
{
	struct tl_buf out;
	char err[256];
	json_t *j = tl_mp_to_json(data, size);

	if (!j)
		abort(); /* canonical input must convert */
	/* A tagged object is one level deeper than the value it stands for,
	 * so such input may not even convert back: nothing to compare. */
	if (!has_bin_or_big_uint(data, size)) {
		tl_buf_init(&out, TL_ENTRY_MAX);
		if (tl_json_to_mp(j, &out, err, sizeof err) != 0)
			abort();
		if (out.len != size || memcmp(out.data, data, size) != 0)
			abort();
		tl_buf_release(&out);
	}
	json_decref(j);
}

static void check_record(const uint8_t *data, size_t size)
{
	struct tl_entry e;
	struct tl_buf again;
	char origin[TL_ORIGIN_LEN + 1];
	char line[200];
	size_t where = 0;

	if (tl_record_decode(&e, data, size, &where) != 0) {
		if (size > TL_SIG_LEN && size <= TL_RECORD_MAX && where > size)
			abort(); /* a fault offset outside the input */
		return;
	}
	if (tl_mp_check_map(e.body, e.body_len, NULL) != 0)
		abort();
	(void)tl_record_verify_sig(&e);

	memcpy(origin, e.origin_str, TL_ORIGIN_LEN);
	origin[TL_ORIGIN_LEN] = '\0';
	tl_buf_init(&again, TL_ENTRY_MAX);
	if (tl_entry_encode(&again, origin, e.seq, e.prev, e.time_ms, e.kind, e.kind_len, e.body,
	                    e.body_len) != 0)
		abort();
	if (again.len != e.entry_len || memcmp(again.data, e.entry, e.entry_len) != 0)
		abort();
	tl_buf_release(&again);

	tl_mp_summary(e.body, e.body_len, line, sizeof line);
	if (strlen(line) >= sizeof line)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char line[64];
	size_t where = 0;

	if (!ready) {
		if (tl_init() != 0)
			abort();
		ready = 1;
	}
	check_record(data, size);
	if (tl_mp_check(data, size, &where) == 0)
		check_round_trip(data, size);
	else if (size && where > size)
		abort();
	/* must be safe on anything */
	tl_mp_summary(data, size, line, sizeof line);
	return 0;
}
