/*
 * test_json.c — the JSON <-> canonical MessagePack bridge and body summaries.
 */
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

#include "node/tl_node.h"

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

	if (!j)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	return j;
}

/* JSON text -> MessagePack hex must be exactly want_hex (hand-derived). */
static void expect_mp(const char *text, const char *want_hex)
{
	uint8_t want[512];
	long n = th_unhex(want, sizeof want, want_hex);
	json_t *j = parse(text);
	struct tl_buf out;
	char err[256];

	assert_true(n >= 0);
	tl_buf_init(&out, 1 << 20);
	if (tl_json_to_mp(j, &out, err, sizeof err) != 0)
		fail_msg("%s: %s", text, err);
	assert_int_equal(out.len, (size_t)n);
	assert_memory_equal(out.data, want, (size_t)n);
	assert_int_equal(tl_mp_check(out.data, out.len, NULL), 0);
	json_decref(j);
	tl_buf_release(&out);
}

static void test_key_order(void **state)
{
	(void)state;
	/* fixmap 4; keys "", "a", "aa", "b": shorter prefix first */
	expect_mp("{\"b\":1,\"aa\":3,\"a\":2,\"\":4}", "84a004a16102a2616103a16201");
	/* uppercase before lowercase: 'Z' = 0x5a < 'a' = 0x61 */
	expect_mp("{\"a\":true,\"Z\":false,\"_\":null}", "83a15ac2a15fc0a161c3");
}

static void test_nested(void **state)
{
	(void)state;
	/*
	 * {"lines": [{"doc": "INV-1", "amount": 100}], "n": -1}
	 * 82                  map 2
	 *   a5 "lines"        91 (array 1)  82 a6 "amount" 64  a3 "doc" a5 "INV-1"
	 *   a1 "n"            ff
	 */
	expect_mp("{\"n\":-1,\"lines\":[{\"doc\":\"INV-1\",\"amount\":100}]}",
	          "82a56c696e6573"
	          "9182a6616d6f756e7464a3646f63a5494e562d31"
	          "a16eff");
	expect_mp("[]", "90");
	expect_mp("{}", "80");
	expect_mp("[[],{},[null]]", "939080"
	                            "91c0");
}

static void test_unicode_keys_bytewise(void **state)
{
	(void)state;
	/*
	 * UTF-8 bytes: "z" 7a < "é" c3a9 < "人" e4baba < "～" (U+FF5E) efbd9e
	 * < "😀" (U+1F600) f09f9880. In UTF-16 order 😀 (d83d...) would come
	 * before ～ (ff5e); canonical order is by the UTF-8 bytes.
	 */
	expect_mp("{\"\\ud83d\\ude00\":5,\"\\uff5e\":4,\"\\u4eba\":3,\"\\u00e9\":2,\"z\":1}",
	          "85a17a01a2c3a902a3e4baba03a3efbd9e04a4f09f988005");
	/* an embedded NUL sorts after its prefix: "a" < "a\0" < "ab" (the
	 * parser refuses NUL in keys; the API accepts them) */
	{
		json_t *o = json_object();
		struct tl_buf out;
		uint8_t want[32];
		long n = th_unhex(want, sizeof want, "83a16101a2610002a2616203");

		assert_int_equal(json_object_setn_new(o, "ab", 2, json_integer(3)), 0);
		assert_int_equal(json_object_setn_new(o, "a\0", 2, json_integer(2)), 0);
		assert_int_equal(json_object_setn_new(o, "a", 1, json_integer(1)), 0);
		tl_buf_init(&out, 1024);
		assert_int_equal(tl_json_to_mp(o, &out, NULL, 0), 0);
		assert_int_equal(out.len, (size_t)n);
		assert_memory_equal(out.data, want, (size_t)n);
		tl_buf_release(&out);
		json_decref(o);
	}
	/* strings are str, UTF-8 as is */
	expect_mp("{\"currency\":\"\\u4eba\\u6c11\\u5e01\"}",
	          "81a863757272656e6379a9e4babae6b091e5b881");
}

static void test_integers(void **state)
{
	(void)state;
	expect_mp("[0,127,128,255,256,65535,65536,4294967295,4294967296]", "99"
	                                                                   "00"
	                                                                   "7f"
	                                                                   "cc80"
	                                                                   "ccff"
	                                                                   "cd0100"
	                                                                   "cdffff"
	                                                                   "ce00010000"
	                                                                   "ceffffffff"
	                                                                   "cf0000000100000000");
	expect_mp("[-1,-32,-33,-128,-129,-32768,-32769,-2147483648,-2147483649]",
	          "99"
	          "ff"
	          "e0"
	          "d0df"
	          "d080"
	          "d1ff7f"
	          "d18000"
	          "d2ffff7fff"
	          "d280000000"
	          "d3ffffffff7fffffff");
	/* INT64_MAX is written unsigned; INT64_MIN as int64 */
	expect_mp("[9223372036854775807,-9223372036854775808]", "92"
	                                                        "cf7fffffffffffffff"
	                                                        "d38000000000000000");
}

static void test_strings(void **state)
{
	char text[128];

	(void)state;
	expect_mp("\"\"", "a0");
	/* 31 bytes: fixstr; 32 bytes: str8 */
	snprintf(text, sizeof text, "\"%031d\"", 0);
	expect_mp(text, "bf"
	                "30303030303030303030303030303030303030303030303030303030303030");
	snprintf(text, sizeof text, "\"%032d\"", 0);
	expect_mp(text, "d920"
	                "3030303030303030303030303030303030303030303030303030303030303030");
}

static void expect_refused(const char *text, int want_rc, const char *want_err)
{
	json_t *j = parse(text);
	struct tl_buf out;
	char err[256];

	tl_buf_init(&out, 1 << 20);
	assert_int_equal(tl_buf_adds(&out, "keep"), 0);
	assert_int_equal(tl_json_to_mp(j, &out, err, sizeof err), want_rc);
	assert_string_equal(err, want_err);
	/* out is appended to, so a failure leaves what was there */
	assert_int_equal(out.len, 4);
	assert_memory_equal(out.data, "keep", 4);
	json_decref(j);
	tl_buf_release(&out);
}

static void test_reals_refused(void **state)
{
	(void)state;
	expect_refused("{\"lines\":[{\"amount\":1},{\"amount\":2},{\"amount\":12.5}]}", TL_EFORMAT,
	               "$.lines[2].amount: 12.5 is not an integer: amounts are integer minor units "
	               "(e.g. fen)");
	expect_refused(
	        "{\"amount\":1.5}", TL_EFORMAT,
	        "$.amount: 1.5 is not an integer: amounts are integer minor units (e.g. fen)");
	expect_refused("{\"total\":1e3}", TL_EFORMAT,
	               "$.total: 1000.0 is not an integer: amounts are integer minor units (e.g. "
	               "fen)");
	expect_refused("[1.0]", TL_EFORMAT,
	               "$[0]: 1.0 is not an integer: amounts are integer minor units (e.g. fen)");
	expect_refused("-0.25", TL_EFORMAT,
	               "$: -0.25 is not an integer: amounts are integer minor units (e.g. fen)");
	expect_refused("{\"a b\":{\"c\\\"\":[0.1]}}", TL_EFORMAT,
	               "$[\"a b\"][\"c\\\"\"][0]: 0.1 is not an integer: amounts are integer minor "
	               "units (e.g. fen)");
}

static json_t *nested_arrays(int depth)
{
	json_t *j = json_integer(0);

	for (int i = 0; i < depth; i++) {
		json_t *a = json_array();
		assert_int_equal(json_array_append_new(a, j), 0);
		j = a;
	}
	return j;
}

static void test_depth_cap(void **state)
{
	struct tl_buf out;
	char err[256];
	json_t *j;

	(void)state;
	tl_buf_init(&out, 1 << 20);
	j = nested_arrays(TL_MP_DEPTH_MAX);
	assert_int_equal(tl_json_to_mp(j, &out, err, sizeof err), 0);
	assert_int_equal(tl_mp_check(out.data, out.len, NULL), 0);
	json_decref(j);
	tl_buf_reset(&out);
	j = nested_arrays(TL_MP_DEPTH_MAX + 1);
	assert_int_equal(tl_json_to_mp(j, &out, err, sizeof err), TL_ETOOBIG);
	assert_non_null(strstr(err, "nested deeper than 32 levels"));
	assert_int_equal(out.len, 0);
	json_decref(j);
	tl_buf_release(&out);
}

static void test_output_cap(void **state)
{
	struct tl_buf out;
	char err[256];
	json_t *j = parse("{\"note\":\"0123456789abcdef\"}");

	(void)state;
	tl_buf_init(&out, 10);
	assert_int_equal(tl_json_to_mp(j, &out, err, sizeof err), TL_ETOOBIG);
	assert_int_equal(out.len, 0);
	/* NULL err is allowed */
	assert_int_equal(tl_json_to_mp(j, &out, NULL, 0), TL_ETOOBIG);
	json_decref(j);
	tl_buf_release(&out);
}

/* MessagePack hex -> JSON -> MessagePack is the identity. */
static void expect_round_trip(const char *hex)
{
	uint8_t in[512];
	long n = th_unhex(in, sizeof in, hex);
	struct tl_buf out;
	char err[256];
	json_t *j;

	assert_true(n >= 0);
	assert_int_equal(tl_mp_check(in, (size_t)n, NULL), 0);
	j = tl_mp_to_json(in, (size_t)n);
	assert_non_null(j);
	tl_buf_init(&out, 1 << 20);
	if (tl_json_to_mp(j, &out, err, sizeof err) != 0)
		fail_msg("%s: %s", hex, err);
	if (out.len != (size_t)n || memcmp(out.data, in, out.len) != 0)
		fail_msg("%s does not round trip", hex);
	json_decref(j);
	tl_buf_release(&out);
}

static void test_round_trip(void **state)
{
	(void)state;
	expect_round_trip("84a004a16102a2616103a16201");
	expect_round_trip("85a17a01a2c3a902a3e4baba03a3efbd9e04a4f09f988005");
	expect_round_trip("83a16101a2610002a2616203");
	expect_round_trip("99"
	                  "00"
	                  "7f"
	                  "cc80"
	                  "ccff"
	                  "cd0100"
	                  "cdffff"
	                  "ce00010000"
	                  "ceffffffff"
	                  "cf0000000100000000");
	expect_round_trip("99"
	                  "ff"
	                  "e0"
	                  "d0df"
	                  "d080"
	                  "d1ff7f"
	                  "d18000"
	                  "d2ffff7fff"
	                  "d280000000"
	                  "d3ffffffff7fffffff");
	expect_round_trip("92"
	                  "cf7fffffffffffffff"
	                  "d38000000000000000");
	expect_round_trip("82a56c696e6573"
	                  "9182a6616d6f756e7464a3646f63a5494e562d31"
	                  "a16eff");
	expect_round_trip("93c0c2c3");
	expect_round_trip("a3610062"); /* "a\0b" */
	expect_round_trip("81a0"
	                  "81a0"
	                  "90");
}

static void test_mp_to_json_special(void **state)
{
	static const uint8_t bin[] = {0x81, 0xa1, 'h', 0xc4, 0x03, 0x01, 0x02, 0x03};
	static const uint8_t big[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t noncanon[] = {0x81, 0xa1, 'h', 0xcc, 0x01};
	static const uint8_t trailing[] = {0x80, 0x80};
	json_t *j;
	char *s;

	(void)state;
	j = tl_mp_to_json(bin, sizeof bin);
	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"h\":{\"$bin\":\"AQID\"}}");
	free(s);
	json_decref(j);

	/* beyond jansson's signed 64-bit integers: tagged, not rounded */
	j = tl_mp_to_json(big, sizeof big);
	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"$u64\":\"18446744073709551615\"}");
	free(s);
	json_decref(j);

	assert_null(tl_mp_to_json(noncanon, sizeof noncanon));
	assert_null(tl_mp_to_json(trailing, sizeof trailing));
	assert_null(tl_mp_to_json(trailing, 0));
	assert_null(tl_mp_to_json(NULL, 0));
}

static void summary_of(const char *json_text, size_t cap, char *out)
{
	json_t *j = parse(json_text);
	struct tl_buf mp;
	char err[256];

	tl_buf_init(&mp, 1 << 20);
	if (tl_json_to_mp(j, &mp, err, sizeof err) != 0)
		fail_msg("%s", err);
	tl_mp_summary(mp.data, mp.len, out, cap);
	json_decref(j);
	tl_buf_release(&mp);
}

static void test_summary(void **state)
{
	char out[256];

	(void)state;
	summary_of("{\"currency\":\"CNY\",\"amount\":12345,"
	           "\"lines\":[1,2,3,4,5,6,7,8,9,10,11,12],\"terms\":{\"days\":30},"
	           "\"note\":\"paid in full\",\"ok\":true,\"gone\":null,\"neg\":-5,\"e\":{},"
	           "\"payer\":\"\\u4e0a\\u6d77\"}",
	           sizeof out, out);
	assert_string_equal(out, "amount=12345 currency=CNY e={} gone=null lines=[12] neg=-5 "
	                         "note=\"paid in full\" ok=true payer=\xe4\xb8\x8a\xe6\xb5\xb7 "
	                         "terms={\xe2\x80\xa6}");
	summary_of("{}", sizeof out, out);
	assert_string_equal(out, "");
	/* a line break cannot break the line */
	summary_of("{\"n\":\"a\\nb\"}", sizeof out, out);
	assert_string_equal(out, "n=\"a\\nb\"");
	/* long strings are cut, on a character boundary */
	summary_of("{\"s\":\"\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a"
	           "\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\\u4e0a\"}",
	           sizeof out, out);
	assert_string_equal(out, "s=\xe4\xb8\x8a\xe4\xb8\x8a\xe4\xb8\x8a\xe4\xb8\x8a\xe4\xb8\x8a"
	                         "\xe4\xb8\x8a\xe4\xb8\x8a\xe4\xb8\x8a\xe4\xb8\x8a\xe4\xb8\x8a"
	                         "\xe4\xb8\x8a\xe4\xb8\x8a\xe4\xb8\x8a\xe4\xb8\x8a\xe4\xb8\x8a"
	                         "\xe4\xb8\x8a\xe2\x80\xa6");
}

static void test_summary_truncation(void **state)
{
	char out[64];

	(void)state;
	/* "amount=12345 currency=CNY" is 25 bytes: cap 26 fits it exactly */
	summary_of("{\"amount\":12345,\"currency\":\"CNY\"}", 26, out);
	assert_string_equal(out, "amount=12345 currency=CNY");
	summary_of("{\"amount\":12345,\"currency\":\"CNY\"}", 25, out);
	assert_string_equal(out, "amount=12345 currency\xe2\x80\xa6");
	assert_true(strlen(out) <= 24);
	/* never cut inside a UTF-8 sequence: 4 x 3-byte characters, cap 10 */
	summary_of("{\"k\":\"\\u4e0a\\u4e0a\\u4e0a\\u4e0a\"}", 10, out);
	assert_string_equal(out, "k=\xe4\xb8\x8a\xe2\x80\xa6");
	summary_of("{\"k\":\"\\u4e0a\\u4e0a\\u4e0a\\u4e0a\"}", 11, out);
	assert_string_equal(out, "k=\xe4\xb8\x8a\xe2\x80\xa6");
	summary_of("{\"k\":\"\\u4e0a\\u4e0a\\u4e0a\\u4e0a\"}", 12, out);
	assert_string_equal(out, "k=\xe4\xb8\x8a\xe4\xb8\x8a\xe2\x80\xa6");
	assert_true(tl_utf8_valid((const uint8_t *)out, strlen(out)));
	/* tiny caps */
	summary_of("{\"amount\":12345}", 1, out);
	assert_string_equal(out, "");
	summary_of("{\"amount\":12345}", 3, out);
	assert_string_equal(out, "");
	summary_of("{\"amount\":12345}", 5, out);
	assert_string_equal(out, "a\xe2\x80\xa6");
	/* cap 0 writes nothing */
	out[0] = 'x';
	tl_mp_summary((const uint8_t *)"\x80", 1, out, 0);
	assert_int_equal(out[0], 'x');
}

static void test_summary_invalid(void **state)
{
	static const uint8_t bad[][8] = {
	        {0x81, 0xa1, 'a', 0xca, 0, 0, 0, 0}, /* float */
	        {0x82, 0xa1, 'b', 0x01, 0xa1, 'a'},  /* unsorted, truncated */
	        {0x91, 0x01},                        /* not a map */
	        {0xdf, 0xff, 0xff, 0xff, 0xff},      /* huge declared count */
	};
	static const size_t lens[] = {8, 6, 2, 5};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		tl_mp_summary(bad[i], lens[i], out, sizeof out);
		assert_string_equal(out, "<invalid body>");
	}
	tl_mp_summary(NULL, 0, out, sizeof out);
	assert_string_equal(out, "<invalid body>");
	tl_mp_summary(bad[0], 8, out, 8);
	assert_string_equal(out, "<inv\xe2\x80\xa6");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_key_order),
	        cmocka_unit_test(test_nested),
	        cmocka_unit_test(test_unicode_keys_bytewise),
	        cmocka_unit_test(test_integers),
	        cmocka_unit_test(test_strings),
	        cmocka_unit_test(test_reals_refused),
	        cmocka_unit_test(test_depth_cap),
	        cmocka_unit_test(test_output_cap),
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_mp_to_json_special),
	        cmocka_unit_test(test_summary),
	        cmocka_unit_test(test_summary_truncation),
	        cmocka_unit_test(test_summary_invalid),
	};

	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
