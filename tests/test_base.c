/* test_base.c — bounded buffers, hex, strict base64, decimal and UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "crypto/tl_base.h"
#include "tests/harness.h"

static void buf_starts_empty_and_never_null(void **state)
{
	struct tl_buf b;

	(void)state;
	tl_buf_init(&b, 16);
	assert_non_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(tl_buf_cstr(&b), "");
	tl_buf_reset(&b);
	tl_buf_release(&b);
	assert_non_null(b.data);
	assert_int_equal(b.max, 16);
	tl_buf_wipe(&b);
	assert_non_null(b.data);
}

static void buf_cap_boundary_both_sides(void **state)
{
	struct tl_buf b;
	char sixteen[16];

	(void)state;
	memset(sixteen, 'a', sizeof(sixteen));
	tl_buf_init(&b, 16);
	/* Exactly max fits. */
	assert_int_equal(tl_buf_add(&b, sixteen, 15), 0);
	assert_int_equal(tl_buf_addc(&b, 'z'), 0);
	assert_int_equal(b.len, 16);
	/* One more byte does not, and leaves the buffer unchanged. */
	assert_int_equal(tl_buf_addc(&b, 'y'), TL_ETOOBIG);
	assert_int_equal(tl_buf_add(&b, "y", 1), TL_ETOOBIG);
	assert_int_equal(tl_buf_printf(&b, "%d", 7), TL_ETOOBIG);
	assert_int_equal(b.len, 16);
	assert_true(b.len <= b.cap);
	assert_int_equal(tl_buf_reserve(&b, SIZE_MAX), TL_ETOOBIG);
	assert_int_equal(strlen(tl_buf_cstr(&b)), 16);
	assert_int_equal(b.data[15], 'z');
	tl_buf_release(&b);

	tl_buf_init(&b, 16);
	assert_int_equal(tl_buf_add(&b, sixteen, 16), 0);
	tl_buf_release(&b);
	tl_buf_init(&b, 16);
	assert_int_equal(tl_buf_add(&b, "0123456789abcdefg", 17), TL_ETOOBIG);
	assert_int_equal(b.len, 0);
	tl_buf_release(&b);
}

static void buf_printf_and_reset(void **state)
{
	struct tl_buf b;
	int i;

	(void)state;
	tl_buf_init(&b, 1 << 20);
	for (i = 0; i < 1000; i++)
		assert_int_equal(tl_buf_printf(&b, "%d,", i), 0);
	assert_int_equal(memcmp(b.data, "0,1,2,", 6), 0);
	assert_int_equal(b.data[b.len - 1], ',');
	assert_int_equal(tl_buf_adds(&b, "end"), 0);
	assert_string_equal(tl_buf_cstr(&b) + b.len - 3, "end");
	tl_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(tl_buf_cstr(&b), "");
	tl_buf_wipe(&b);
	assert_int_equal(b.cap, 0);
}

static void hex_round_trip_and_strict(void **state)
{
	const uint8_t in[] = {0x00, 0x01, 0xab, 0xff};
	char out[9];
	uint8_t back[4];

	(void)state;
	tl_hex_encode(out, in, 4);
	assert_string_equal(out, "0001abff");
	assert_int_equal(tl_hex_decode(back, 4, out, 8), 0);
	assert_memory_equal(back, in, 4);
	assert_int_equal(tl_hex_decode(back, 4, "0001ABFF", 8), 0);
	assert_memory_equal(back, in, 4);
	assert_int_equal(tl_hex_decode(back, 4, "0001abf", 7), TL_EFORMAT);
	assert_int_equal(tl_hex_decode(back, 4, "0001abfff", 9), TL_EFORMAT);
	assert_int_equal(tl_hex_decode(back, 4, "0001abfg", 8), TL_EFORMAT);
	assert_int_equal(tl_hex_decode(back, 4, "0001 bff", 8), TL_EFORMAT);
}

static int b64(const char *s, uint8_t *out, size_t cap, size_t *n)
{
	return tl_b64_decode(out, cap, n, s, strlen(s));
}

static void b64_accepts_canonical(void **state)
{
	/* RFC 4648 section 10. */
	static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
	                                  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	static const char *const dec[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	uint8_t out[16];
	char re[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < 7; i++) {
		assert_int_equal(b64(enc[i], out, sizeof(out), &n), 0);
		assert_int_equal(n, strlen(dec[i]));
		assert_memory_equal(out, dec[i], n);
		assert_int_equal(tl_b64_encoded_len(n), strlen(enc[i]));
		tl_b64_encode(re, out, n);
		assert_string_equal(re, enc[i]);
	}
	assert_int_equal(b64("+/+/", out, sizeof(out), &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(out[0], 0xfb);
}

static void b64_rejects_noncanonical(void **state)
{
	static const char *const bad[] = {
	        "Zg",           /* missing padding */
	        "Zg=",          /* short padding */
	        "Zm8",          /* missing padding */
	        "Zh==",         /* non-zero trailing bits */
	        "Zm9=",         /* non-zero trailing bits */
	        "Zm9v ",        /* trailing space */
	        " Zm9v",        /* leading space */
	        "Zm9v\n",       /* newline */
	        "Zm\n9v",       /* embedded newline */
	        "Zg==Zg==",     /* padding in the middle */
	        "Z===",         /* too much padding */
	        "====",         /* only padding */
	        "Zm9v-_==",     /* URL alphabet */
	        "Zm9vYg=\x3d=", /* excess padding */
	        "Zm9vYm=y",     /* padding before data */
	};
	uint8_t out[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 99;
		assert_int_not_equal(b64(bad[i], out, sizeof(out), &n), 0);
		assert_int_equal(n, 0);
	}
	/* Embedded NUL with an explicit length. */
	assert_int_not_equal(tl_b64_decode(out, sizeof(out), &n, "Zm\0v", 4), 0);
}

static void b64_cap(void **state)
{
	uint8_t out[6];
	size_t n;

	(void)state;
	assert_int_equal(b64("Zm9vYmFy", out, 6, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(b64("Zm9vYmFy", out, 5, &n), TL_ETOOBIG);
	assert_int_equal(b64("Zm9vYmE=", out, 5, &n), 0);
	assert_int_equal(n, 5);
}

static void parse_u64_strict(void **state)
{
	uint64_t v = 42;

	(void)state;
	assert_int_equal(tl_parse_u64("0", 1, &v), 0);
	assert_true(v == 0);
	assert_int_equal(tl_parse_u64("1", 1, &v), 0);
	assert_true(v == 1);
	assert_int_equal(tl_parse_u64("18446744073709551615", 20, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(tl_parse_u64("18446744073709551616", 20, &v), TL_ERANGE);
	assert_int_equal(tl_parse_u64("99999999999999999999", 20, &v), TL_ERANGE);
	assert_int_equal(tl_parse_u64("184467440737095516150", 21, &v), TL_ERANGE);
	assert_true(v == UINT64_MAX);
	assert_int_equal(tl_parse_u64("01", 2, &v), TL_ENONCANON);
	assert_int_equal(tl_parse_u64("00", 2, &v), TL_ENONCANON);
	assert_int_equal(tl_parse_u64("", 0, &v), TL_EFORMAT);
	assert_int_equal(tl_parse_u64("-1", 2, &v), TL_EFORMAT);
	assert_int_equal(tl_parse_u64("+1", 2, &v), TL_EFORMAT);
	assert_int_equal(tl_parse_u64(" 1", 2, &v), TL_EFORMAT);
	assert_int_equal(tl_parse_u64("1 ", 2, &v), TL_EFORMAT);
	assert_int_equal(tl_parse_u64("1a", 2, &v), TL_EFORMAT);
	/* Length is explicit: what follows is not read. */
	assert_int_equal(tl_parse_u64("123x", 3, &v), 0);
	assert_true(v == 123);
}

static void utf8_strict(void **state)
{
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
	        {"", 1},
	        {"plain ascii", 1},
	        {"\xc2\x80", 1},         /* U+0080 */
	        {"\xdf\xbf", 1},         /* U+07FF */
	        {"\xe0\xa0\x80", 1},     /* U+0800 */
	        {"\xe2\x80\x94", 1},     /* em dash */
	        {"\xed\x9f\xbf", 1},     /* U+D7FF */
	        {"\xee\x80\x80", 1},     /* U+E000 */
	        {"\xef\xbf\xbf", 1},     /* U+FFFF */
	        {"\xf0\x90\x80\x80", 1}, /* U+10000 */
	        {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF */
	        {"\xc0\x80", 0},         /* overlong NUL */
	        {"\xc1\xbf", 0},         /* overlong */
	        {"\xe0\x80\x80", 0},     /* overlong */
	        {"\xe0\x9f\xbf", 0},     /* overlong U+07FF */
	        {"\xf0\x80\x80\x80", 0}, /* overlong */
	        {"\xf0\x8f\xbf\xbf", 0}, /* overlong U+FFFF */
	        {"\xed\xa0\x80", 0},     /* U+D800 surrogate */
	        {"\xed\xbf\xbf", 0},     /* U+DFFF surrogate */
	        {"\xf4\x90\x80\x80", 0}, /* U+110000 */
	        {"\xf5\x80\x80\x80", 0}, /* lead byte > F4 */
	        {"\xff", 0},
	        {"\x80", 0},         /* lone continuation */
	        {"\xe2\x80", 0},     /* truncated */
	        {"a\xe2\x80", 0},    /* truncated at end */
	        {"\xe2\x28\xa1", 0}, /* bad continuation */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(!!tl_utf8_valid((const uint8_t *)cases[i].s, strlen(cases[i].s)),
		                 cases[i].ok);
	/* The length bounds the scan: a truncated sequence is caught even if
	 * the continuation bytes are in memory after it. */
	assert_false(tl_utf8_valid((const uint8_t *)"\xe2\x80\x94", 2));
}

static void strerror_covers_every_code(void **state)
{
	int e;

	(void)state;
	for (e = TL_ECRYPTO; e <= 0; e++) {
		assert_non_null(tl_strerror(e));
		assert_string_not_equal(tl_strerror(e), "unknown error");
	}
	assert_string_equal(tl_strerror(-999), "unknown error");
	assert_int_equal(tl_init(), 0);
	assert_int_equal(tl_init(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(buf_starts_empty_and_never_null),
	        cmocka_unit_test(buf_cap_boundary_both_sides),
	        cmocka_unit_test(buf_printf_and_reset),
	        cmocka_unit_test(hex_round_trip_and_strict),
	        cmocka_unit_test(b64_accepts_canonical),
	        cmocka_unit_test(b64_rejects_noncanonical),
	        cmocka_unit_test(b64_cap),
	        cmocka_unit_test(parse_u64_strict),
	        cmocka_unit_test(utf8_strict),
	        cmocka_unit_test(strerror_covers_every_code),
	};

	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
