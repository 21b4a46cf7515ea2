/*
 * test_codec.c — canonical MessagePack validation, origins and channel ids,
 * the entry/record codec, signatures and feed chain rules (DESIGN §2, §3).
 */
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

#include "consensus/tl_consensus.h"

/* ------------------------------------------------------------ helpers */

/* Bytes from hex; the buffer is owned by the caller. */
static uint8_t *unhex(const char *hex, size_t *len)
{
	size_t cap = strlen(hex) / 2 + 1;
	uint8_t *b = malloc(cap);
	long n;

	assert_non_null(b);
	n = th_unhex(b, cap, hex);
	assert_true(n >= 0);
	*len = (size_t)n;
	return b;
}

static int check_hex(const char *hex, size_t *where)
{
	size_t len;
	uint8_t *b = unhex(hex, &len);
	int rc = tl_mp_check(b, len, where);

	free(b);
	return rc;
}

struct mp_case {
	const char *hex;
	int rc;
};

static void run_cases(const struct mp_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = check_hex(c[i].hex, NULL);
		if (rc != c[i].rc)
			fail_msg("%s: got %d, want %d", c[i].hex, rc, c[i].rc);
	}
}

/* A header (hex) followed by n copies of byte fill. */
static uint8_t *with_payload(const char *hdr, size_t n, uint8_t fill, size_t *len)
{
	size_t h;
	uint8_t *hb = unhex(hdr, &h);
	uint8_t *b = malloc(h + n + 1);

	assert_non_null(b);
	memcpy(b, hb, h);
	memset(b + h, fill, n);
	free(hb);
	*len = h + n;
	return b;
}

static int check_payload(const char *hdr, size_t n, uint8_t fill)
{
	size_t len;
	uint8_t *b = with_payload(hdr, n, fill, &len);
	int rc = tl_mp_check(b, len, NULL);

	free(b);
	return rc;
}

/* ------------------------------------------------------ integers */

static void test_uint_boundaries(void **state)
{
	static const struct mp_case c[] = {
	        {"00", 0},
	        {"7f", 0},                            /* 127: positive fixint */
	        {"cc7f", TL_ENONCANON},               /* 127 as uint8 */
	        {"cc80", 0},                          /* 128 */
	        {"ccff", 0},                          /* 255 */
	        {"cd00ff", TL_ENONCANON},             /* 255 as uint16 */
	        {"cd0100", 0},                        /* 256 */
	        {"cdffff", 0},                        /* 65535 */
	        {"ce0000ffff", TL_ENONCANON},         /* 65535 as uint32 */
	        {"ce00010000", 0},                    /* 65536 */
	        {"ceffffffff", 0},                    /* 2^32-1 */
	        {"cf00000000ffffffff", TL_ENONCANON}, /* 2^32-1 as uint64 */
	        {"cf0000000100000000", 0},            /* 2^32 */
	        {"cfffffffffffffffff", 0},            /* 2^64-1 */
	        {"cc00", TL_ENONCANON},               /* 0 as uint8 */
	        {"cf0000000000000000", TL_ENONCANON}, /* 0 as uint64 */
	        {"cc", TL_EFORMAT},                   /* truncated */
	        {"cd01", TL_EFORMAT},
	        {"ce000100", TL_EFORMAT},
	        {"cf00000001000000", TL_EFORMAT},
	};
	(void)state;
	run_cases(c, sizeof c / sizeof c[0]);
}

static void test_int_boundaries(void **state)
{
	static const struct mp_case c[] = {
	        {"ff", 0},                            /* -1 */
	        {"e0", 0},                            /* -32: negative fixint */
	        {"d0e0", TL_ENONCANON},               /* -32 as int8 */
	        {"d0ff", TL_ENONCANON},               /* -1 as int8 */
	        {"d0df", 0},                          /* -33 */
	        {"d080", 0},                          /* -128 */
	        {"d1ff80", TL_ENONCANON},             /* -128 as int16 */
	        {"d1ff7f", 0},                        /* -129 */
	        {"d18000", 0},                        /* -32768 */
	        {"d2ffff8000", TL_ENONCANON},         /* -32768 as int32 */
	        {"d2ffff7fff", 0},                    /* -32769 */
	        {"d280000000", 0},                    /* -2^31 */
	        {"d3ffffffff80000000", TL_ENONCANON}, /* -2^31 as int64 */
	        {"d3ffffffff7fffffff", 0},            /* -2^31-1 */
	        {"d38000000000000000", 0},            /* INT64_MIN */
	        /* non-negative values must use the unsigned forms */
	        {"d000", TL_ENONCANON},
	        {"d07f", TL_ENONCANON},
	        {"d10080", TL_ENONCANON},
	        {"d17fff", TL_ENONCANON},
	        {"d200010000", TL_ENONCANON},
	        {"d37fffffffffffffff", TL_ENONCANON},
	        {"d30000000100000000", TL_ENONCANON},
	        {"d0", TL_EFORMAT},
	        {"d1ff", TL_EFORMAT},
	        {"d2ffffff", TL_EFORMAT},
	        {"d3ffffffffffffff", TL_EFORMAT},
	};
	(void)state;
	run_cases(c, sizeof c / sizeof c[0]);
}

/* ------------------------------------------------------ str and bin */

static void test_str_forms(void **state)
{
	(void)state;
	assert_int_equal(check_payload("a0", 0, 'a'), 0);
	assert_int_equal(check_payload("bf", 31, 'a'), 0);              /* fixstr 31 */
	assert_int_equal(check_payload("d91f", 31, 'a'), TL_ENONCANON); /* str8 for 31 */
	assert_int_equal(check_payload("d900", 0, 'a'), TL_ENONCANON);
	assert_int_equal(check_payload("d920", 32, 'a'), 0); /* str8 32 */
	assert_int_equal(check_payload("d9ff", 255, 'a'), 0);
	assert_int_equal(check_payload("da00ff", 255, 'a'), TL_ENONCANON);
	assert_int_equal(check_payload("da0100", 256, 'a'), 0);
	assert_int_equal(check_payload("daffff", 65535, 'a'), 0);
	assert_int_equal(check_payload("db0000ffff", 65535, 'a'), TL_ENONCANON);
	assert_int_equal(check_payload("db00010000", 65536, 'a'), 0);
	/* declared longer than the input */
	assert_int_equal(check_payload("a5", 4, 'a'), TL_EFORMAT);
	assert_int_equal(check_payload("d920", 31, 'a'), TL_EFORMAT);
	assert_int_equal(check_payload("dbffffffff", 8, 'a'), TL_EFORMAT);
	assert_int_equal(check_hex("d9", NULL), TL_EFORMAT);
}

static void test_str_utf8(void **state)
{
	static const struct mp_case c[] = {
	        {"a3e4baba", 0},            /* U+4EBA */
	        {"a4f09f9880", 0},          /* U+1F600 */
	        {"a100", 0},                /* U+0000 is valid UTF-8 */
	        {"a1ff", TL_EFORMAT},       /* never valid */
	        {"a180", TL_EFORMAT},       /* lone continuation */
	        {"a2c080", TL_EFORMAT},     /* overlong NUL */
	        {"a3eda080", TL_EFORMAT},   /* surrogate U+D800 */
	        {"a4f4908080", TL_EFORMAT}, /* > U+10FFFF */
	        {"a2e4ba", TL_EFORMAT},     /* truncated sequence */
	};
	(void)state;
	run_cases(c, sizeof c / sizeof c[0]);
}

static void test_bin_forms(void **state)
{
	(void)state;
	assert_int_equal(check_payload("c400", 0, 0), 0);
	assert_int_equal(check_payload("c401", 1, 0xff), 0); /* bin needs no UTF-8 */
	assert_int_equal(check_payload("c4ff", 255, 0), 0);
	assert_int_equal(check_payload("c50000", 0, 0), TL_ENONCANON);
	assert_int_equal(check_payload("c500ff", 255, 0), TL_ENONCANON);
	assert_int_equal(check_payload("c50100", 256, 0), 0);
	assert_int_equal(check_payload("c5ffff", 65535, 0), 0);
	assert_int_equal(check_payload("c60000ffff", 65535, 0), TL_ENONCANON);
	assert_int_equal(check_payload("c600010000", 65536, 0), 0);
	assert_int_equal(check_payload("c420", 31, 0), TL_EFORMAT);
	assert_int_equal(check_payload("c6ffffffff", 0, 0), TL_EFORMAT);
}

/* -------------------------------------------------- arrays and maps */

static void test_array_forms(void **state)
{
	(void)state;
	/* elements are nil (0xc0) */
	assert_int_equal(check_payload("90", 0, 0xc0), 0);
	assert_int_equal(check_payload("9f", 15, 0xc0), 0);
	assert_int_equal(check_payload("dc000f", 15, 0xc0), TL_ENONCANON);
	assert_int_equal(check_payload("dc0000", 0, 0xc0), TL_ENONCANON);
	assert_int_equal(check_payload("dc0010", 16, 0xc0), 0);
	assert_int_equal(check_payload("dcffff", 65535, 0xc0), 0);
	assert_int_equal(check_payload("dd0000ffff", 65535, 0xc0), TL_ENONCANON);
	assert_int_equal(check_payload("dd00010000", 65536, 0xc0), 0);
	assert_int_equal(check_payload("dc0010", 15, 0xc0), TL_EFORMAT);
	assert_int_equal(check_payload("93", 2, 0xc0), TL_EFORMAT);
}

/* A map of n entries "0000".."ffff" (4 hex digit keys sort bytewise) -> nil. */
static uint8_t *make_map(size_t n, size_t *len)
{
	size_t cap = 5 + n * 6, off = 0;
	uint8_t *b = malloc(cap);
	static const char hexd[] = "0123456789abcdef";

	assert_non_null(b);
	if (n < 16) {
		b[off++] = (uint8_t)(0x80 | n);
	} else if (n < 65536) {
		b[off++] = 0xde;
		b[off++] = (uint8_t)(n >> 8);
		b[off++] = (uint8_t)n;
	} else {
		b[off++] = 0xdf;
		b[off++] = (uint8_t)(n >> 24);
		b[off++] = (uint8_t)(n >> 16);
		b[off++] = (uint8_t)(n >> 8);
		b[off++] = (uint8_t)n;
	}
	for (size_t i = 0; i < n; i++) {
		b[off++] = 0xa4;
		for (int s = 12; s >= 0; s -= 4)
			b[off++] = (uint8_t)hexd[(i >> s) & 0xf];
		b[off++] = 0xc0;
	}
	*len = off;
	return b;
}

static void test_map_forms(void **state)
{
	static const size_t sizes[] = {0, 15, 16, 65535, 65536};
	size_t len;
	uint8_t *b;

	(void)state;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		b = make_map(sizes[i], &len);
		assert_int_equal(tl_mp_check(b, len, NULL), 0);
		assert_int_equal(tl_mp_check_map(b, len, NULL), 0);
		free(b);
	}
	/* the same maps in a header one size too wide */
	b = make_map(15, &len);
	{
		size_t l2 = len + 2;
		uint8_t *w = malloc(l2);
		assert_non_null(w);
		w[0] = 0xde;
		w[1] = 0x00;
		w[2] = 0x0f;
		memcpy(w + 3, b + 1, len - 1);
		assert_int_equal(tl_mp_check(w, l2, NULL), TL_ENONCANON);
		free(w);
	}
	free(b);
	b = make_map(65535, &len);
	{
		size_t l2 = len + 2;
		uint8_t *w = malloc(l2);
		assert_non_null(w);
		w[0] = 0xdf;
		w[1] = 0x00;
		w[2] = 0x00;
		w[3] = 0xff;
		w[4] = 0xff;
		memcpy(w + 5, b + 3, len - 3);
		assert_int_equal(tl_mp_check(w, l2, NULL), TL_ENONCANON);
		free(w);
	}
	free(b);
	assert_int_equal(check_hex("de0000", NULL), TL_ENONCANON);
	assert_int_equal(check_hex("81a161", NULL), TL_EFORMAT); /* value missing */
}

static void test_map_keys(void **state)
{
	static const struct mp_case c[] = {
	        {"82a16101a16202", 0},              /* {"a":1,"b":2} */
	        {"82a16201a16102", TL_ENONCANON},   /* unsorted */
	        {"82a16101a16102", TL_ENONCANON},   /* duplicate */
	        {"82a16101a2616202", 0},            /* "a" < "ab": prefix first */
	        {"82a2616201a16102", TL_ENONCANON}, /* "ab" before "a" */
	        {"82a001a16102", 0},                /* "" sorts first */
	        {"82a16102a001", TL_ENONCANON},
	        {"82a15a01a16102", 0},                /* "Z" (0x5a) < "a" (0x61) */
	        {"82a3e4baba01a16102", TL_ENONCANON}, /* bytes, not text: 0xe4 > "a" */
	        {"82a16101a3e4baba02", 0},
	        {"810101", TL_ENONCANON},               /* int key */
	        {"81c40161c0", TL_ENONCANON},           /* bin key */
	        {"81c0c0", TL_ENONCANON},               /* nil key */
	        {"8190c0", TL_ENONCANON},               /* array key */
	        {"81a16182a16201a16102", TL_ENONCANON}, /* nested map unsorted */
	        {"92 81a16101 81a16101", 0},            /* sibling maps: own key order */
	};
	size_t where = 999;

	(void)state;
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		char h[64];
		size_t k = 0;
		for (const char *s = c[i].hex; *s; s++)
			if (*s != ' ')
				h[k++] = *s;
		h[k] = 0;
		if (check_hex(h, NULL) != c[i].rc)
			fail_msg("%s: want %d", c[i].hex, c[i].rc);
	}
	/* the fault is the second key's header */
	assert_int_equal(check_hex("82a16201a16102", &where), TL_ENONCANON);
	assert_int_equal(where, 4);
}

static void test_nil_bool(void **state)
{
	static const struct mp_case c[] = {
	        {"c0", 0}, {"c2", 0}, {"c3", 0}, {"93c0c2c3", 0}, {"c1", TL_EFORMAT},
	};
	(void)state;
	run_cases(c, sizeof c / sizeof c[0]);
}

static void test_float_ext_rejected(void **state)
{
	static const struct mp_case c[] = {
	        {"ca00000000", TL_ENONCANON},
	        {"cb0000000000000000", TL_ENONCANON},
	        {"81a161ca3f800000", TL_ENONCANON}, /* float inside a map */
	        {"c70101", TL_ENONCANON},
	        {"c8000101", TL_ENONCANON},
	        {"c90000000101", TL_ENONCANON},
	        {"d40100", TL_ENONCANON},
	        {"d5010000", TL_ENONCANON},
	        {"d601000000", TL_ENONCANON},
	        {"d7010000000000000000", TL_ENONCANON},
	        {"d801"
	         "00000000000000000000000000000000",
	         TL_ENONCANON},
	        {"91c1", TL_EFORMAT},
	};
	(void)state;
	run_cases(c, sizeof c / sizeof c[0]);
}

static void test_trailing_and_empty(void **state)
{
	size_t where = 999;

	(void)state;
	assert_int_equal(check_hex("0000", &where), TL_EFORMAT);
	assert_int_equal(where, 1);
	assert_int_equal(check_hex("80c0", &where), TL_EFORMAT);
	assert_int_equal(where, 1);
	assert_int_equal(check_hex("91c0c0", &where), TL_EFORMAT);
	assert_int_equal(where, 2);
	assert_int_equal(tl_mp_check((const uint8_t *)"", 0, &where), TL_EFORMAT);
	assert_int_equal(where, 0);
}

static void test_declared_length_beyond_input(void **state)
{
	/* Each would ask for gigabytes if a count were trusted. */
	static const struct mp_case c[] = {
	        {"ddffffffff", TL_EFORMAT},   {"dfffffffff", TL_EFORMAT},
	        {"dbffffffff", TL_EFORMAT},   {"c6ffffffff", TL_EFORMAT},
	        {"dcffff", TL_EFORMAT},       {"deffff", TL_EFORMAT},
	        {"dd", TL_EFORMAT},           {"dd0001", TL_EFORMAT},
	        {"9fc0c0c0", TL_EFORMAT},     {"8f", TL_EFORMAT},
	        {"82a161c0", TL_EFORMAT}, /* 2 pairs need >= 4 bytes */
	        {"91ddffffffff", TL_EFORMAT},
	};
	size_t where = 999;

	(void)state;
	run_cases(c, sizeof c / sizeof c[0]);
	assert_int_equal(check_hex("9291ddffffffff", &where), TL_EFORMAT);
	assert_int_equal(where, 2);
}

/* depth nested arrays, the innermost holding one 0 (or empty if empty). */
static int check_nested(size_t depth, int map, int empty)
{
	size_t len = 0;
	uint8_t b[256];
	int rc;

	for (size_t i = 0; i < depth; i++) {
		int last = i + 1 == depth;
		if (map) {
			b[len++] = last && empty ? 0x80 : 0x81;
			if (!(last && empty)) {
				b[len++] = 0xa1;
				b[len++] = 'k';
			}
		} else {
			b[len++] = last && empty ? 0x90 : 0x91;
		}
	}
	if (!empty)
		b[len++] = 0x00;
	rc = tl_mp_check(b, len, NULL);
	return rc;
}

static void test_depth_cap(void **state)
{
	(void)state;
	assert_int_equal(TL_MP_DEPTH_MAX, 32);
	for (int map = 0; map < 2; map++) {
		for (int empty = 0; empty < 2; empty++) {
			assert_int_equal(check_nested(1, map, empty), 0);
			assert_int_equal(check_nested(32, map, empty), 0);
			assert_int_equal(check_nested(33, map, empty), TL_ETOOBIG);
			assert_int_equal(check_nested(60, map, empty), TL_ETOOBIG);
		}
	}
}

static void test_check_map_requires_map(void **state)
{
	uint8_t arr[] = {0x90}, map[] = {0x80}, num[] = {0x01};
	size_t where = 999;

	(void)state;
	assert_int_equal(tl_mp_check_map(map, 1, NULL), 0);
	assert_int_equal(tl_mp_check_map(arr, 1, &where), TL_EFORMAT);
	assert_int_equal(where, 0);
	assert_int_equal(tl_mp_check_map(num, 1, NULL), TL_EFORMAT);
	assert_int_equal(tl_mp_check(arr, 1, NULL), 0);
}

/* ------------------------------------------------ origins and channels */

static void test_channel_id(void **state)
{
	uint8_t a[TL_PUB_LEN], b[TL_PUB_LEN], x[TL_CHANNEL_LEN], y[TL_CHANNEL_LEN];

	(void)state;
	memset(a, 0x01, sizeof a);
	memset(b, 0x02, sizeof b);
	tl_channel_id(x, a, b, "default", 7);
	tl_channel_id(y, b, a, "default", 7);
	assert_memory_equal(x, y, TL_CHANNEL_LEN); /* both sides agree */
	tl_channel_id(y, a, b, "other", 5);
	assert_memory_not_equal(x, y, TL_CHANNEL_LEN);
	/* SHA-256("tally/channel/v1\n" || 01*32 || 02*32 || "default")[0:16],
	 * computed with Python's hashlib. */
	{
		uint8_t want[TL_CHANNEL_LEN];
		assert_int_equal(th_unhex(want, sizeof want, "9ce81261079f69512e424d478d6fc89e"),
		                 16);
		assert_memory_equal(x, want, TL_CHANNEL_LEN);
	}
}

static void test_origin_format_parse(void **state)
{
	uint8_t pk[TL_PUB_LEN], ch[TL_CHANNEL_LEN];
	char s[TL_ORIGIN_LEN + 1], t[TL_ORIGIN_LEN + 2];
	struct tl_origin o;

	(void)state;
	for (size_t i = 0; i < sizeof pk; i++)
		pk[i] = (uint8_t)(0xa0 + i);
	for (size_t i = 0; i < sizeof ch; i++)
		ch[i] = (uint8_t)(0xf0 - i);
	tl_origin_format(s, pk, ch);
	s[TL_ORIGIN_LEN] = 0;
	assert_int_equal(strlen(s), TL_ORIGIN_LEN);
	assert_int_equal(strncmp(s, "tally.v1/a0a1a2", 15), 0);
	assert_int_equal(s[9 + 64], '/');
	assert_int_equal(tl_origin_parse(&o, s, TL_ORIGIN_LEN), 0);
	assert_memory_equal(o.pk, pk, TL_PUB_LEN);
	assert_memory_equal(o.channel, ch, TL_CHANNEL_LEN);

	assert_int_equal(tl_origin_parse(&o, s, TL_ORIGIN_LEN - 1), TL_EFORMAT);
	memcpy(t, s, TL_ORIGIN_LEN);
	t[TL_ORIGIN_LEN] = '0';
	assert_int_equal(tl_origin_parse(&o, t, TL_ORIGIN_LEN + 1), TL_EFORMAT);
	memcpy(t, s, TL_ORIGIN_LEN);
	t[9] = 'A'; /* uppercase hex in the key */
	assert_int_equal(tl_origin_parse(&o, t, TL_ORIGIN_LEN), TL_EFORMAT);
	memcpy(t, s, TL_ORIGIN_LEN);
	t[TL_ORIGIN_LEN - 1] = 'F'; /* uppercase hex in the channel */
	assert_int_equal(tl_origin_parse(&o, t, TL_ORIGIN_LEN), TL_EFORMAT);
	memcpy(t, s, TL_ORIGIN_LEN);
	t[9 + 64] = ':';
	assert_int_equal(tl_origin_parse(&o, t, TL_ORIGIN_LEN), TL_EFORMAT);
	memcpy(t, s, TL_ORIGIN_LEN);
	t[5] = 'V';
	assert_int_equal(tl_origin_parse(&o, t, TL_ORIGIN_LEN), TL_EFORMAT);
	memcpy(t, s, TL_ORIGIN_LEN);
	t[20] = 'g';
	assert_int_equal(tl_origin_parse(&o, t, TL_ORIGIN_LEN), TL_EFORMAT);
	memcpy(t, s, TL_ORIGIN_LEN);
	t[20] = ' ';
	assert_int_equal(tl_origin_parse(&o, t, TL_ORIGIN_LEN), TL_EFORMAT);
	assert_int_equal(tl_origin_parse(&o, NULL, 0), TL_EFORMAT);
}

/* ----------------------------------------------------------- entries */

struct fixture {
	struct tl_keypair kp;
	char origin[TL_ORIGIN_LEN + 1];
	struct tl_origin o;
};

/* Seed 32 x 0x01, peer key 32 x 0x02, label "default". */
static void fixture_make(struct fixture *f)
{
	uint8_t seed[TL_SEED_LEN], peer[TL_PUB_LEN], ch[TL_CHANNEL_LEN];

	memset(seed, 0x01, sizeof seed);
	memset(peer, 0x02, sizeof peer);
	assert_int_equal(tl_key_from_seed(&f->kp, seed), 0);
	tl_channel_id(ch, f->kp.pk, peer, "default", 7);
	tl_origin_format(f->origin, f->kp.pk, ch);
	f->origin[TL_ORIGIN_LEN] = 0;
	assert_int_equal(tl_origin_parse(&f->o, f->origin, TL_ORIGIN_LEN), 0);
}

/* {"amount": 12345, "currency": "CNY"} */
static const char kat_body_hex[] = "82a6616d6f756e74cd3039a863757272656e6379a3434e59";

static void make_record(const struct fixture *f, struct tl_buf *rec, uint64_t seq,
                        const uint8_t prev[TL_HASH_LEN], const char *body_hex)
{
	size_t blen;
	uint8_t *body = unhex(body_hex, &blen);

	tl_buf_reset(rec);
	assert_int_equal(tl_entry_encode(rec, f->origin, seq, prev, 1700000000000ull, "statement",
	                                 9, body, blen),
	                 0);
	assert_int_equal(tl_record_sign(rec, f->kp.sk), 0);
	free(body);
}

static void test_known_answer(void **state)
{
	/*
	 * Derived by hand from the MessagePack spec (not from our encoder):
	 *   97                    fixarray, 7 elements
	 *   01                    positive fixint 1: version
	 *   d9 6a <106 bytes>     str8, 106 >= 32: the origin
	 *   00                    positive fixint 0: seq
	 *   c4 20 <32 x 00>       bin8, 32 bytes: prev
	 *   cf 00 00 01 8b cf e5 68 00
	 *                         uint64: 1700000000000 = 0x18bcfe56800 > 2^32-1
	 *   a9 "statement"        fixstr, 9 bytes: kind
	 *   82                    fixmap, 2 pairs: body, keys in byte order
	 *     a6 "amount"   cd 30 39     12345 = 0x3039 > 255: uint16
	 *     a8 "currency" a3 "CNY"
	 * The public key of seed 01*32 (8a88...) and the channel id, SHA-256 of
	 * "tally/channel/v1\n" || 02*32 || pk || "default" (lo = the peer key,
	 * 0x02 < 0x8a), were computed independently with Python's cryptography
	 * and hashlib, as were the signature and the leaf hash
	 * SHA-256(0x00 || entry || sig).
	 */
	static const char origin[] =
	        "tally.v1/"
	        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	        "/0e3fc0ec7baa2ecd21b5612d07cbf0df";
	static const char sig_hex[] =
	        "d56c010873688671656cd4bf6ce7c217085193c091c5d4ad124e86af0a7ad749"
	        "e7aa26e3e0935be4bc6f5ef1dfa65ee3bf111e80030e1e3f07da27362e4bfc01";
	static const char leaf_hex[] =
	        "88dcde2dcf1f6a90ac47019b182a9f1cdb3e3f72b22f96e20138d9ba0a02976d";
	struct fixture f;
	struct tl_buf want, rec;
	uint8_t zero[TL_HASH_LEN] = {0}, leaf[TL_HASH_LEN], want_leaf[TL_HASH_LEN];
	uint8_t sig[TL_SIG_LEN], tmp[64];
	struct tl_entry e;
	long n;

	(void)state;
	fixture_make(&f);
	assert_string_equal(f.origin, origin);

	tl_buf_init(&want, 1024);
	n = th_unhex(tmp, sizeof tmp, "9701d96a");
	assert_int_equal(tl_buf_add(&want, tmp, (size_t)n), 0);
	assert_int_equal(tl_buf_add(&want, origin, 106), 0);
	n = th_unhex(tmp, sizeof tmp, "00c420");
	assert_int_equal(tl_buf_add(&want, tmp, (size_t)n), 0);
	assert_int_equal(tl_buf_add(&want, zero, 32), 0);
	n = th_unhex(tmp, sizeof tmp, "cf0000018bcfe56800a9");
	assert_int_equal(tl_buf_add(&want, tmp, (size_t)n), 0);
	assert_int_equal(tl_buf_adds(&want, "statement"), 0);
	n = th_unhex(tmp, sizeof tmp, "82a6");
	assert_int_equal(tl_buf_add(&want, tmp, (size_t)n), 0);
	assert_int_equal(tl_buf_adds(&want, "amount"), 0);
	n = th_unhex(tmp, sizeof tmp, "cd3039a8");
	assert_int_equal(tl_buf_add(&want, tmp, (size_t)n), 0);
	assert_int_equal(tl_buf_adds(&want, "currency"), 0);
	n = th_unhex(tmp, sizeof tmp, "a3");
	assert_int_equal(tl_buf_add(&want, tmp, (size_t)n), 0);
	assert_int_equal(tl_buf_adds(&want, "CNY"), 0);
	assert_int_equal(want.len, 188);

	tl_buf_init(&rec, TL_RECORD_MAX);
	make_record(&f, &rec, 0, zero, kat_body_hex);
	assert_int_equal(rec.len, want.len + TL_SIG_LEN);
	assert_memory_equal(rec.data, want.data, want.len);
	assert_int_equal(th_unhex(sig, sizeof sig, sig_hex), 64);
	assert_memory_equal(rec.data + want.len, sig, TL_SIG_LEN);

	tl_record_leaf_hash(leaf, rec.data, rec.len);
	assert_int_equal(th_unhex(want_leaf, sizeof want_leaf, leaf_hex), 32);
	assert_memory_equal(leaf, want_leaf, TL_HASH_LEN);

	assert_int_equal(tl_record_decode(&e, rec.data, rec.len, NULL), 0);
	assert_int_equal(tl_record_verify_sig(&e), 0);
	tl_buf_release(&want);
	tl_buf_release(&rec);
}

static void test_entry_round_trip(void **state)
{
	static const uint64_t values[] = {
	        0, 127, 128, 255, 256, 65535, 65536, 0xffffffffull, 0x100000000ull, UINT64_MAX,
	};
	struct fixture f;
	struct tl_buf rec;
	struct tl_entry e;
	uint8_t prev[TL_HASH_LEN], body[] = {0x81, 0xa1, 'x', 0xc3};
	char kind[TL_KIND_MAX + 1];

	(void)state;
	fixture_make(&f);
	tl_buf_init(&rec, TL_RECORD_MAX);
	memset(kind, 'k', sizeof kind);
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		uint64_t seq = values[i], t = values[sizeof values / sizeof values[0] - 1 - i];
		size_t klen = i % 2 ? TL_KIND_MAX : 1 + i; /* str8 kinds too */
		memset(prev, (int)i, sizeof prev);
		tl_buf_reset(&rec);
		assert_int_equal(tl_entry_encode(&rec, f.origin, seq, prev, t, kind, klen, body,
		                                 sizeof body),
		                 0);
		assert_int_equal(tl_mp_check(rec.data, rec.len, NULL), 0);
		assert_int_equal(tl_record_sign(&rec, f.kp.sk), 0);
		assert_int_equal(tl_record_decode(&e, rec.data, rec.len, NULL), 0);
		assert_true(e.seq == seq);
		assert_true(e.time_ms == t);
		assert_memory_equal(e.prev, prev, TL_HASH_LEN);
		assert_int_equal(e.kind_len, klen);
		assert_memory_equal(e.kind, kind, klen);
		assert_memory_equal(e.origin_str, f.origin, TL_ORIGIN_LEN);
		assert_memory_equal(e.origin.pk, f.kp.pk, TL_PUB_LEN);
		assert_memory_equal(e.origin.channel, f.o.channel, TL_CHANNEL_LEN);
		assert_int_equal(e.body_len, sizeof body);
		assert_memory_equal(e.body, body, sizeof body);
		assert_ptr_equal(e.entry, rec.data);
		assert_int_equal(e.entry_len, rec.len - TL_SIG_LEN);
		assert_ptr_equal(e.sig, rec.data + rec.len - TL_SIG_LEN);
		assert_int_equal(tl_record_verify_sig(&e), 0);
	}
	tl_buf_release(&rec);
}

/* A body bigger than the verifier's stack buffer takes the heap path. */
static void test_large_entry_signature(void **state)
{
	struct fixture f;
	struct tl_buf rec;
	struct tl_entry e;
	uint8_t zero[TL_HASH_LEN] = {0};
	size_t blen;
	uint8_t *body;

	(void)state;
	fixture_make(&f);
	body = with_payload("81a161da4e20", 20000, 'z', &blen);
	tl_buf_init(&rec, TL_RECORD_MAX);
	assert_int_equal(tl_entry_encode(&rec, f.origin, 5, zero, 1, "blob", 4, body, blen), 0);
	assert_int_equal(tl_record_sign(&rec, f.kp.sk), 0);
	assert_int_equal(tl_record_decode(&e, rec.data, rec.len, NULL), 0);
	assert_int_equal(tl_record_verify_sig(&e), 0);
	rec.data[rec.len - TL_SIG_LEN - 1] ^= 0x01; /* 'z' -> '{' keeps it canonical */
	assert_int_equal(tl_record_decode(&e, rec.data, rec.len, NULL), 0);
	assert_int_equal(tl_record_verify_sig(&e), TL_ESIG);
	free(body);
	tl_buf_release(&rec);
}

static void test_every_flipped_byte_fails(void **state)
{
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	struct fixture f;
	struct tl_buf rec;
	struct tl_entry e;
	uint8_t zero[TL_HASH_LEN] = {0};

	(void)state;
	fixture_make(&f);
	tl_buf_init(&rec, TL_RECORD_MAX);
	make_record(&f, &rec, 0, zero, kat_body_hex);
	for (size_t i = 0; i < rec.len; i++) {
		for (size_t m = 0; m < sizeof masks; m++) {
			rec.data[i] ^= masks[m];
			if (tl_record_decode(&e, rec.data, rec.len, NULL) == 0 &&
			    tl_record_verify_sig(&e) == 0)
				fail_msg("byte %zu ^ 0x%02x still verifies", i, masks[m]);
			rec.data[i] ^= masks[m];
		}
	}
	assert_int_equal(tl_record_decode(&e, rec.data, rec.len, NULL), 0);
	assert_int_equal(tl_record_verify_sig(&e), 0);
	/* truncation and extension */
	assert_true(tl_record_decode(&e, rec.data, rec.len - 1, NULL) != 0 ||
	            tl_record_verify_sig(&e) != 0);
	tl_buf_release(&rec);
}

/*
 * A hand-assembled record (hex pieces) with 64 zero bytes of signature:
 * decode never looks at the signature.
 */
static int decode_parts(const char *const *parts, size_t *where)
{
	struct tl_buf b;
	struct tl_entry e;
	uint8_t tmp[512], sig[TL_SIG_LEN] = {0};
	int rc;

	tl_buf_init(&b, TL_RECORD_MAX);
	for (; *parts; parts++) {
		const char *p = *parts;
		if (p[0] == '=') {
			assert_int_equal(tl_buf_adds(&b, p + 1), 0);
		} else {
			long n = th_unhex(tmp, sizeof tmp, p);
			assert_true(n >= 0);
			assert_int_equal(tl_buf_add(&b, tmp, (size_t)n), 0);
		}
	}
	assert_int_equal(tl_buf_add(&b, sig, sizeof sig), 0);
	rc = tl_record_decode(&e, b.data, b.len, where);
	tl_buf_release(&b);
	return rc;
}

#define ORIGIN_OK                                                                     \
	"=tally.v1/8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c/" \
	"0e3fc0ec7baa2ecd21b5612d07cbf0df"
#define PREV_OK "c4200000000000000000000000000000000000000000000000000000000000000000"

static void test_decode_rejects(void **state)
{
	static const char *const ok[] = {"9701d96a", ORIGIN_OK, "00", PREV_OK,
	                                 "00a1",     "=k",      "80", NULL};
	/* version 2, then 0 */
	static const char *const v2[] = {"9702d96a", ORIGIN_OK, "00", PREV_OK,
	                                 "00a1",     "=k",      "80", NULL};
	static const char *const v0[] = {"9700d96a", ORIGIN_OK, "00", PREV_OK,
	                                 "00a1",     "=k",      "80", NULL};
	static const char *const vstr[] = {"97a131d96a", ORIGIN_OK, "00", PREV_OK,
	                                   "00a1",       "=k",      "80", NULL};
	/* prev of 31 and 33 bytes, prev as str */
	static const char *const p31[] = {
	        "9701d96a", ORIGIN_OK,
	        "00",       "c41f00000000000000000000000000000000000000000000000000000000000000",
	        "00a1",     "=k",
	        "80",       NULL};
	static const char *const p33[] = {
	        "9701d96a",
	        ORIGIN_OK,
	        "00",
	        "c421000000000000000000000000000000000000000000000000000000000000000000",
	        "00a1",
	        "=k",
	        "80",
	        NULL};
	static const char *const pstr[] = {
	        "9701d96a", ORIGIN_OK,
	        "00",       "d9200000000000000000000000000000000000000000000000000000000000000000",
	        "00a1",     "=k",
	        "80",       NULL};
	/* origin: uppercase, 105 bytes, bin instead of str */
	static const char *const oup[] = {
	        "9701d96a",
	        "=tally.v1/8A88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3"
	        "748801b40f6f5c/0e3fc0ec7baa2ecd21b5612d07cbf0df",
	        "00",
	        PREV_OK,
	        "00a1",
	        "=k",
	        "80",
	        NULL};
	static const char *const oshort[] = {
	        "9701d969",
	        "=tally.v1/8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d9412"
	        "1bf3748801b40f6f5c/0e3fc0ec7baa2ecd21b5612d07cbf0d",
	        "00",
	        PREV_OK,
	        "00a1",
	        "=k",
	        "80",
	        NULL};
	static const char *const obin[] = {"9701c46a", ORIGIN_OK, "00", PREV_OK,
	                                   "00a1",     "=k",      "80", NULL};
	/* kind: empty, space, control, non-ASCII, 65 bytes */
	static const char *const k0[] = {"9701d96a", ORIGIN_OK, "00", PREV_OK, "00a0", "80", NULL};
	static const char *const ksp[] = {"9701d96a", ORIGIN_OK, "00", PREV_OK,
	                                  "00a3",     "=a b",    "80", NULL};
	static const char *const kctl[] = {"9701d96a", ORIGIN_OK, "00", PREV_OK,
	                                   "00a2610a", "80",      NULL};
	static const char *const kutf[] = {"9701d96a",   ORIGIN_OK, "00", PREV_OK,
	                                   "00a3e4baba", "80",      NULL};
	static const char *const k64[] = {
	        "9701d96a", ORIGIN_OK,
	        "00",       PREV_OK,
	        "00d940",   "=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
	        "80",       NULL};
	static const char *const k65[] = {
	        "9701d96a", ORIGIN_OK,
	        "00",       PREV_OK,
	        "00d941",   "=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
	        "80",       NULL};
	/* shape: 6 and 8 elements, array16 header, a map, body not a map,
	 * non-canonical seq, negative time, body with trailing byte */
	static const char *const a6[] = {"9601d96a", ORIGIN_OK, "00", PREV_OK, "00a1", "=k", NULL};
	static const char *const a8[] = {"9801d96a", ORIGIN_OK, "00", PREV_OK, "00a1",
	                                 "=k",       "80",      "80", NULL};
	static const char *const a16[] = {"dc000701d96a", ORIGIN_OK, "00", PREV_OK,
	                                  "00a1",         "=k",      "80", NULL};
	static const char *const bodyarr[] = {"9701d96a", ORIGIN_OK, "00", PREV_OK,
	                                      "00a1",     "=k",      "90", NULL};
	static const char *const seqnc[] = {"9701d96a", ORIGIN_OK, "cc05", PREV_OK,
	                                    "00a1",     "=k",      "80",   NULL};
	static const char *const tneg[] = {"9701d96a", ORIGIN_OK, "00", PREV_OK,
	                                   "ffa1",     "=k",      "80", NULL};
	static const char *const btrail[] = {"9701d96a", ORIGIN_OK, "00",   PREV_OK,
	                                     "00a1",     "=k",      "80c0", NULL};
	static const char *const bunsorted[] = {"9701d96a", ORIGIN_OK,        "00", PREV_OK, "00a1",
	                                        "=k",       "82a16201a16102", NULL};
	size_t where = 999;

	(void)state;
	assert_int_equal(decode_parts(ok, NULL), 0);
	assert_int_equal(decode_parts(k64, NULL), 0);
	assert_int_equal(decode_parts(v2, &where), TL_EVERSION);
	assert_int_equal(where, 1);
	assert_int_equal(decode_parts(v0, NULL), TL_EVERSION);
	assert_int_equal(decode_parts(vstr, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(p31, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(p33, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(pstr, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(oup, &where), TL_EFORMAT);
	assert_int_equal(where, 2);
	assert_int_equal(decode_parts(oshort, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(obin, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(k0, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(ksp, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(kctl, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(kutf, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(k65, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(a6, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(a8, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(a16, NULL), TL_ENONCANON);
	assert_int_equal(decode_parts(bodyarr, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(seqnc, &where), TL_ENONCANON);
	assert_int_equal(where, 110);
	assert_int_equal(decode_parts(tneg, NULL), TL_EFORMAT);
	assert_int_equal(decode_parts(btrail, &where), TL_EFORMAT);
	assert_int_equal(where, 149); /* the byte after the empty body map at 148 */
	assert_int_equal(decode_parts(bunsorted, &where), TL_ENONCANON);
	assert_int_equal(where, 152); /* the second key of the body at 148 */
}

static void test_decode_lengths(void **state)
{
	struct tl_entry e;
	uint8_t *big;
	size_t where = 999;

	(void)state;
	big = calloc(1, TL_RECORD_MAX + 1);
	assert_non_null(big);
	assert_int_equal(tl_record_decode(&e, big, 0, NULL), TL_EFORMAT);
	assert_int_equal(tl_record_decode(&e, big, TL_SIG_LEN, &where), TL_EFORMAT);
	assert_int_equal(tl_record_decode(&e, big, TL_SIG_LEN + 1, NULL), TL_EFORMAT);
	assert_int_equal(tl_record_decode(&e, big, TL_RECORD_MAX + 1, NULL), TL_ETOOBIG);
	assert_int_equal(tl_record_decode(&e, big, TL_RECORD_MAX, NULL), TL_EFORMAT);
	free(big);
}

/* The body nests from its own level: a 32-deep body is accepted inside the
 * entry array (which would be 33 levels if counted from the entry). */
static void test_decode_body_depth(void **state)
{
	struct fixture f;
	struct tl_buf rec;
	struct tl_entry e;
	uint8_t zero[TL_HASH_LEN] = {0}, body[100];
	size_t n = 0;

	(void)state;
	fixture_make(&f);
	body[n++] = 0x81;
	body[n++] = 0xa1;
	body[n++] = 'a';
	for (int i = 1; i < TL_MP_DEPTH_MAX; i++)
		body[n++] = 0x91;
	body[n++] = 0x00;
	assert_int_equal(tl_mp_check_map(body, n, NULL), 0);
	tl_buf_init(&rec, TL_RECORD_MAX);
	assert_int_equal(tl_entry_encode(&rec, f.origin, 0, zero, 0, "deep", 4, body, n), 0);
	assert_int_equal(tl_record_sign(&rec, f.kp.sk), 0);
	assert_int_equal(tl_record_decode(&e, rec.data, rec.len, NULL), 0);

	/* one level more is refused */
	memmove(body + 4, body + 3, n - 3);
	body[3] = 0x91;
	n++;
	tl_buf_reset(&rec);
	assert_int_equal(tl_entry_encode(&rec, f.origin, 0, zero, 0, "deep", 4, body, n),
	                 TL_ETOOBIG);
	assert_int_equal(rec.len, 0);
	assert_int_equal(tl_mp_check_map(body, n, NULL), TL_ETOOBIG);
	tl_buf_release(&rec);
}

static void test_encode_rejects(void **state)
{
	struct fixture f;
	struct tl_buf out;
	uint8_t zero[TL_HASH_LEN] = {0};
	uint8_t good[] = {0x80}, nonmap[] = {0x90}, noncanon[] = {0x81, 0xa1, 'a', 0xcc, 0x01};
	char bad_origin[TL_ORIGIN_LEN + 1];
	size_t blen;
	uint8_t *big;

	(void)state;
	fixture_make(&f);
	tl_buf_init(&out, TL_RECORD_MAX);
	assert_int_equal(tl_buf_adds(&out, "prefix"), 0);
	assert_int_equal(tl_entry_encode(&out, f.origin, 0, zero, 0, "k", 1, nonmap, 1),
	                 TL_EFORMAT);
	assert_int_equal(tl_entry_encode(&out, f.origin, 0, zero, 0, "k", 1, noncanon, 5),
	                 TL_ENONCANON);
	assert_int_equal(tl_entry_encode(&out, f.origin, 0, zero, 0, "", 0, good, 1), TL_EINVAL);
	assert_int_equal(tl_entry_encode(&out, f.origin, 0, zero, 0, "a b", 3, good, 1), TL_EINVAL);
	memcpy(bad_origin, f.origin, sizeof bad_origin);
	bad_origin[10] = 'X';
	assert_int_equal(tl_entry_encode(&out, bad_origin, 0, zero, 0, "k", 1, good, 1), TL_EINVAL);
	assert_int_equal(tl_entry_encode(&out, "tally.v1/", 0, zero, 0, "k", 1, good, 1),
	                 TL_EINVAL);
	/* output untouched by every failure */
	assert_int_equal(out.len, 6);

	/* a body that fits TL_ENTRY_MAX only without the entry header */
	big = with_payload("81a161db003ffff8", TL_ENTRY_MAX - 8, 'b', &blen);
	assert_int_equal(blen, TL_ENTRY_MAX);
	assert_int_equal(tl_mp_check_map(big, blen, NULL), 0);
	assert_int_equal(tl_entry_encode(&out, f.origin, 0, zero, 0, "k", 1, big, blen),
	                 TL_ETOOBIG);
	assert_int_equal(out.len, 6);
	free(big);

	/* a buffer cap is honoured too */
	tl_buf_release(&out);
	tl_buf_init(&out, 100);
	assert_int_equal(tl_entry_encode(&out, f.origin, 0, zero, 0, "k", 1, good, 1), TL_ETOOBIG);
	assert_int_equal(out.len, 0);
	tl_buf_release(&out);
}

static void test_sign_needs_room(void **state)
{
	struct fixture f;
	struct tl_buf rec;
	uint8_t zero[TL_HASH_LEN] = {0}, body[] = {0x80};
	size_t n;

	(void)state;
	fixture_make(&f);
	tl_buf_init(&rec, TL_RECORD_MAX);
	assert_int_equal(tl_entry_encode(&rec, f.origin, 0, zero, 0, "k", 1, body, 1), 0);
	n = rec.len;
	rec.max = n + TL_SIG_LEN - 1;
	assert_int_equal(tl_record_sign(&rec, f.kp.sk), TL_ETOOBIG);
	assert_int_equal(rec.len, n);
	rec.max = n + TL_SIG_LEN;
	assert_int_equal(tl_record_sign(&rec, f.kp.sk), 0);
	assert_int_equal(rec.len, n + TL_SIG_LEN);
	tl_buf_release(&rec);
}

/* ------------------------------------------------------------- chains */

static void test_chain_rules(void **state)
{
	struct fixture f, g;
	struct tl_buf r0, r1, bad;
	struct tl_feed_head head = {0};
	struct tl_entry e;
	uint8_t zero[TL_HASH_LEN] = {0}, leaf0[TL_HASH_LEN], leaf1[TL_HASH_LEN], peer[TL_PUB_LEN],
	        ch[TL_CHANNEL_LEN];

	(void)state;
	fixture_make(&f);
	tl_buf_init(&r0, TL_RECORD_MAX);
	tl_buf_init(&r1, TL_RECORD_MAX);
	tl_buf_init(&bad, TL_RECORD_MAX);

	make_record(&f, &r0, 0, zero, "80");
	assert_int_equal(tl_record_decode(&e, r0.data, r0.len, NULL), 0);
	assert_int_equal(tl_feed_check_next(&head, &f.o, &e), 0);
	tl_record_leaf_hash(leaf0, r0.data, r0.len);
	tl_feed_advance(&head, leaf0);
	assert_true(head.size == 1);
	assert_memory_equal(head.last_leaf, leaf0, TL_HASH_LEN);

	/* replaying seq 0 */
	assert_int_equal(tl_feed_check_next(&head, &f.o, &e), TL_ECHAIN);
	/* seq gap */
	make_record(&f, &bad, 2, leaf0, "80");
	assert_int_equal(tl_record_decode(&e, bad.data, bad.len, NULL), 0);
	assert_int_equal(tl_feed_check_next(&head, &f.o, &e), TL_ECHAIN);
	/* wrong prev */
	memcpy(leaf1, leaf0, sizeof leaf1);
	leaf1[31] ^= 1;
	make_record(&f, &bad, 1, leaf1, "80");
	assert_int_equal(tl_record_decode(&e, bad.data, bad.len, NULL), 0);
	assert_int_equal(tl_feed_check_next(&head, &f.o, &e), TL_ECHAIN);
	/* same key, other channel */
	g = f;
	memset(peer, 0x03, sizeof peer);
	tl_channel_id(ch, f.kp.pk, peer, "default", 7);
	tl_origin_format(g.origin, f.kp.pk, ch);
	make_record(&g, &bad, 1, leaf0, "80");
	assert_int_equal(tl_record_decode(&e, bad.data, bad.len, NULL), 0);
	assert_int_equal(tl_feed_check_next(&head, &f.o, &e), TL_ECHAIN);
	/* other key, same channel */
	{
		uint8_t seed[TL_SEED_LEN];
		memset(seed, 0x09, sizeof seed);
		assert_int_equal(tl_key_from_seed(&g.kp, seed), 0);
		tl_origin_format(g.origin, g.kp.pk, f.o.channel);
		make_record(&g, &bad, 1, leaf0, "80");
		assert_int_equal(tl_record_decode(&e, bad.data, bad.len, NULL), 0);
		assert_int_equal(tl_feed_check_next(&head, &f.o, &e), TL_ECHAIN);
	}
	/* the right next record */
	make_record(&f, &r1, 1, leaf0, "80");
	assert_int_equal(tl_record_decode(&e, r1.data, r1.len, NULL), 0);
	assert_int_equal(tl_feed_check_next(&head, &f.o, &e), 0);
	tl_record_leaf_hash(leaf1, r1.data, r1.len);
	tl_feed_advance(&head, leaf1);
	assert_true(head.size == 2);

	tl_buf_release(&r0);
	tl_buf_release(&r1);
	tl_buf_release(&bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_uint_boundaries),
	        cmocka_unit_test(test_int_boundaries),
	        cmocka_unit_test(test_str_forms),
	        cmocka_unit_test(test_str_utf8),
	        cmocka_unit_test(test_bin_forms),
	        cmocka_unit_test(test_array_forms),
	        cmocka_unit_test(test_map_forms),
	        cmocka_unit_test(test_map_keys),
	        cmocka_unit_test(test_nil_bool),
	        cmocka_unit_test(test_float_ext_rejected),
	        cmocka_unit_test(test_trailing_and_empty),
	        cmocka_unit_test(test_declared_length_beyond_input),
	        cmocka_unit_test(test_depth_cap),
	        cmocka_unit_test(test_check_map_requires_map),
	        cmocka_unit_test(test_channel_id),
	        cmocka_unit_test(test_origin_format_parse),
	        cmocka_unit_test(test_known_answer),
	        cmocka_unit_test(test_entry_round_trip),
	        cmocka_unit_test(test_large_entry_signature),
	        cmocka_unit_test(test_every_flipped_byte_fails),
	        cmocka_unit_test(test_decode_rejects),
	        cmocka_unit_test(test_decode_lengths),
	        cmocka_unit_test(test_decode_body_depth),
	        cmocka_unit_test(test_encode_rejects),
	        cmocka_unit_test(test_sign_needs_room),
	        cmocka_unit_test(test_chain_rules),
	};

	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
