/* test_statement.c — the CSV statement importer: exact amounts, dates,
 * RFC 4180 quoting, encodings (UTF-8, BOM, GB18030, GBK), every malformed
 * file refused with its line and column, closing balance and aging. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/statement.h"
#include "node/tl_node.h"

static const struct tl_statement_opts cny = {
        .id = "ST-2026-11-0042",
        .currency = "CNY",
        .from = "2026-11-01",
        .to = "2026-11-30",
        .date = "2026-11-30",
        .opening = "12,500.00",
};

static struct tl_errlist *errs_new(void)
{
	struct tl_errlist *e = malloc(sizeof *e);
	assert_non_null(e);
	return e;
}

static int import(const char *csv, const struct tl_statement_opts *o, json_t **out,
                  struct tl_errlist *e)
{
	return tl_statement_from_csv_mem((const uint8_t *)csv, strlen(csv), o, out, e);
}

/* Imports csv (which must be fine) with o (cny when NULL); len SIZE_MAX
 * means strlen(csv). */
static json_t *import_ok(const char *csv, size_t len, const struct tl_statement_opts *o)
{
	struct tl_errlist *e = errs_new();
	json_t *st = NULL;
	int rc;
	if (len == SIZE_MAX)
		len = strlen(csv);
	rc = tl_statement_from_csv_mem((const uint8_t *)csv, len, o ? o : &cny, &st, e);
	if (rc != 0)
		tl_errlist_print(e, stderr);
	assert_int_equal(rc, 0);
	assert_int_equal(e->total, 0);
	assert_non_null(st);
	free(e);
	return st;
}

/* Imports csv, which must be refused with first message want (exact). */
static void refused(const char *csv, size_t len, const struct tl_statement_opts *o,
                    const char *want)
{
	struct tl_errlist *e = errs_new();
	json_t *st = (json_t *)1;
	int rc;
	if (len == SIZE_MAX)
		len = strlen(csv);
	rc = tl_statement_from_csv_mem((const uint8_t *)csv, len, o ? o : &cny, &st, e);
	assert_int_equal(rc, TL_EFORMAT);
	assert_null(st);
	assert_true(e->n >= 1);
	if (strcmp(e->msg[0], want) != 0) {
		fprintf(stderr, "want: %s\ngot:  %s\n", want, e->msg[0]);
		fail();
	}
	free(e);
}

static void refused_s(const char *csv, const char *want)
{
	refused(csv, strlen(csv), NULL, want);
}

static json_int_t ival(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static const char *sval(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

/* ------------------------------------------------------------ amounts */

static void amount_is(const char *s, unsigned exp, int64_t want)
{
	int64_t v = 42;
	int rc = tl_amount_parse(s, strlen(s), exp, &v);
	if (rc != 0)
		fprintf(stderr, "'%s' at %u refused\n", s, exp);
	assert_int_equal(rc, 0);
	assert_true(v == want);
}

static void amount_bad(const char *s, unsigned exp, int want_rc)
{
	int64_t v = 42;
	int rc = tl_amount_parse(s, strlen(s), exp, &v);
	if (rc != want_rc)
		fprintf(stderr, "'%s' at %u: rc %d\n", s, exp, rc);
	assert_int_equal(rc, want_rc);
	assert_true(v == 42);
}

/* Exact conversion; every refusal on the other side of its boundary. */
static void test_amount_parse(void **state)
{
	(void)state;
	amount_is("1.23", 2, 123);
	amount_bad("1.234", 2, TL_EFORMAT);
	amount_is("12", 2, 1200);
	amount_is("0.5", 2, 50);
	amount_is("0.05", 2, 5);
	amount_is("0", 2, 0);
	amount_is("-0", 2, 0);
	amount_is("007", 0, 7);
	amount_is("-7", 2, -700);
	amount_is("1.234", 3, 1234);
	amount_bad("1.2345", 3, TL_EFORMAT);
	amount_is("12", 0, 12);
	amount_bad("12.0", 0, TL_EFORMAT); /* never drops digits, even zeros */
	amount_is("9223372036854775807", 0, INT64_MAX);
	amount_bad("9223372036854775808", 0, TL_ERANGE);
	amount_is("-9223372036854775808", 0, INT64_MIN);
	amount_bad("-9223372036854775809", 0, TL_ERANGE);
	amount_is("92233720368547758.07", 2, INT64_MAX);
	amount_bad("92233720368547758.08", 2, TL_ERANGE);
	amount_bad("92233720368547758", 3, TL_ERANGE); /* the scaling overflows */
	amount_bad("99999999999999999999999", 0, TL_ERANGE);
	amount_is("1,234.56", 2, 123456);
	amount_is("1,234,567", 0, 1234567);
	amount_is("123,456.7", 2, 12345670);
	amount_bad("1,23.45", 2, TL_EFORMAT);
	amount_bad("1234,567", 0, TL_EFORMAT);
	amount_bad(",123", 0, TL_EFORMAT);
	amount_bad("1,,234", 0, TL_EFORMAT);
	amount_bad("1,234,", 0, TL_EFORMAT);
	amount_bad("0,123", 0, TL_EFORMAT);
	amount_bad("1.234,5", 3, TL_EFORMAT);
	amount_is("(5.00)", 2, -500);
	amount_is("(1,234.50)", 2, -123450);
	amount_bad("(5.00", 2, TL_EFORMAT);
	amount_bad("5.00)", 2, TL_EFORMAT);
	amount_bad("(-5)", 2, TL_EFORMAT);
	amount_bad("()", 2, TL_EFORMAT);
	amount_bad("", 2, TL_EFORMAT);
	amount_bad("-", 2, TL_EFORMAT);
	amount_bad("1e3", 2, TL_EFORMAT);
	amount_bad("1E3", 2, TL_EFORMAT);
	amount_bad("+5", 2, TL_EFORMAT);
	amount_bad("--5", 2, TL_EFORMAT);
	amount_bad("5-", 2, TL_EFORMAT);
	amount_bad(" 5", 2, TL_EFORMAT);
	amount_bad("1 234", 2, TL_EFORMAT);
	amount_bad(".5", 2, TL_EFORMAT);
	amount_bad("5.", 2, TL_EFORMAT);
	amount_bad("1.2.3", 2, TL_EFORMAT);
	amount_bad("\xef\xbf\xa5"
	           "5",
	           2, TL_EFORMAT); /* ￥5 */
	amount_bad("0x10", 2, TL_EFORMAT);
	amount_bad("1", TL_AMOUNT_EXP_MAX + 1, TL_EINVAL);
	amount_is("1", TL_AMOUNT_EXP_MAX, 1000000000000000000);
	/* Length is respected: no NUL needed. */
	int64_t v;
	assert_int_equal(tl_amount_parse("12.345", 4, 2, &v), 0);
	assert_true(v == 1230);
}

static void test_currency(void **state)
{
	unsigned e = 99;
	(void)state;
	static const struct {
		const char *code;
		unsigned exp;
	} known[] = {{"CNY", 2}, {"USD", 2}, {"EUR", 2}, {"JPY", 0}, {"KRW", 0}, {"HKD", 2},
	             {"TWD", 2}, {"GBP", 2}, {"CHF", 2}, {"SGD", 2}, {"AUD", 2}, {"CAD", 2},
	             {"KWD", 3}, {"BHD", 3}, {"OMR", 3}, {"JOD", 3}, {"TND", 3}, {"VND", 0},
	             {"ISK", 0}, {"CLP", 0}, {"AED", 2}, {"ZAR", 2}};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		assert_int_equal(tl_currency_exponent(known[i].code, &e), 0);
		assert_int_equal(e, known[i].exp);
	}
	assert_int_equal(tl_currency_exponent("QQQ", &e), TL_ENOTFOUND);
	assert_int_equal(tl_currency_exponent("cny", &e), TL_ENOTFOUND);
	assert_int_equal(tl_currency_exponent("CNYX", &e), TL_ENOTFOUND);
	assert_int_equal(tl_currency_exponent("", &e), TL_ENOTFOUND);
}

/* -------------------------------------------------------------- dates */

static void date_is(const char *s, const char *want)
{
	char out[11];
	int rc = tl_date_parse(s, strlen(s), out);
	if (rc != 0)
		fprintf(stderr, "'%s' refused\n", s);
	assert_int_equal(rc, 0);
	assert_string_equal(out, want);
}

static void date_bad(const char *s)
{
	char out[11];
	if (tl_date_parse(s, strlen(s), out) != TL_EFORMAT) {
		fprintf(stderr, "'%s' accepted\n", s);
		fail();
	}
}

static void test_dates(void **state)
{
	(void)state;
	date_is("2024-02-29", "2024-02-29");
	date_bad("2023-02-29");
	date_is("2000-02-29", "2000-02-29");
	date_bad("1900-02-29");
	date_is("2026/11/3", "2026-11-03");
	date_is("2026.11.03", "2026-11-03");
	date_is("20261103", "2026-11-03");
	date_is("2026\xe5\xb9\xb4"
	        "11\xe6\x9c\x88"
	        "3\xe6\x97\xa5",
	        "2026-11-03"); /* 2026年11月3日 */
	date_is("2026-12-31", "2026-12-31");
	date_is("0001-01-01", "0001-01-01");
	date_is("9999-12-31", "9999-12-31");
	date_bad("2026-12-32");
	date_bad("2026-11-31");
	date_bad("2026-13-01");
	date_bad("2026-00-10");
	date_bad("2026-11-00");
	date_bad("0000-01-01");
	date_bad("20230229");
	date_bad("2026-11/03");
	date_bad("2026-11-3x");
	date_bad("26-11-03");
	date_bad("2026-011-03");
	date_bad("2026-11-03 00:00:00");
	date_bad("2026\xe5\xb9\xb4"
	         "11\xe6\x9c\x88"
	         "3"); /* no 日 */
	date_bad("");
	date_bad("2026113");
	date_bad("2026--11");
}

/* ---------------------------------------------------- whole statements */

/* The sample in examples/, computed by hand (docs/statement-csv.md):
 * opening 12,500.00 and payments/credits 12,800.50 leave 1,699.50 of
 * INV-88031 (due 11-10, 20 days late) and DN-0040 (due 11-25, 5 days) in
 * 1-30 days; INV-88017 and INV-88102 are not yet due. */
static const char sample_json[] =
        "{\"id\":\"ST-2026-11-0042\",\"version\":1,\"date\":\"2026-11-30\","
        "\"period\":{\"from\":\"2026-11-01\",\"to\":\"2026-11-30\"},\"currency\":\"CNY\","
        "\"opening\":1250000,\"lines\":["
        "{\"date\":\"2026-11-03\",\"type\":\"invoice\",\"doc\":\"INV-88017\",\"amount\":452000,"
        "\"due\":\"2026-12-03\",\"memo\":\"Goods per FC-2026-017, batch 1\"},"
        "{\"date\":\"2026-11-05\",\"type\":\"invoice\",\"doc\":\"INV-88031\",\"amount\":200000,"
        "\"due\":\"2026-11-10\",\"memo\":\"Spare parts\"},"
        "{\"date\":\"2026-11-12\",\"type\":\"payment\",\"doc\":\"PAY-5531\",\"amount\":-1250000,"
        "\"memo\":\"Bank transfer\"},"
        "{\"date\":\"2026-11-15\",\"type\":\"credit_note\",\"doc\":\"CN-0091\",\"amount\":-30000,"
        "\"memo\":\"Return of 3 units, \\\"damaged in transit\\\"\"},"
        "{\"date\":\"2026-11-18\",\"type\":\"debit_note\",\"doc\":\"DN-0040\",\"amount\":15000,"
        "\"due\":\"2026-11-25\",\"memo\":\"Freight surcharge\"},"
        "{\"date\":\"2026-11-20\",\"type\":\"invoice\",\"doc\":\"INV-88102\",\"amount\":318050,"
        "\"due\":\"2026-12-20\",\"memo\":\"Goods per FC-2026-017, batch 2\"},"
        "{\"date\":\"2026-11-28\",\"type\":\"adjustment\",\"doc\":\"ADJ-0007\",\"amount\":-50,"
        "\"memo\":\"Rounding difference\"}],"
        "\"closing\":955000,"
        "\"aging\":{\"current\":770050,\"d1_30\":184950,\"d31_60\":0,\"d61_90\":0,"
        "\"d90_plus\":0}}";

static void test_sample_file(void **state)
{
	struct tl_errlist *e = errs_new();
	json_t *st = NULL, *want = json_loads(sample_json, 0, NULL);
	struct tl_buf mp;
	char err[128];
	(void)state;
	assert_non_null(want);
	assert_int_equal(tl_statement_from_csv("examples/statement.csv", &cny, &st, e), 0);
	assert_int_equal(e->total, 0);
	if (!json_equal(st, want)) {
		char *d = json_dumps(st, JSON_COMPACT);
		fprintf(stderr, "got %s\n", d);
		free(d);
		fail();
	}
	/* The body is canonical MessagePack material: integers only. */
	tl_buf_init(&mp, 1 << 20);
	assert_int_equal(tl_json_to_mp(st, &mp, err, sizeof err), 0);
	tl_buf_release(&mp);
	json_decref(st);

	/* The GB18030 sample (Chinese headers, types and dates, CRLF, an
	 * extra column) says the same thing with Chinese memos. */
	struct tl_statement_opts o = cny;
	o.encoding = "gb18030";
	assert_int_equal(tl_statement_from_csv("examples/statement-gb18030.csv", &o, &st, e), 0);
	json_t *lines = json_object_get(st, "lines"), *wl = json_object_get(want, "lines");
	assert_int_equal(json_array_size(lines), 7);
	for (size_t i = 0; i < 7; i++) {
		json_t *l = json_array_get(lines, i), *w = json_array_get(wl, i);
		assert_string_equal(sval(l, "type"), sval(w, "type"));
		assert_string_equal(sval(l, "doc"), sval(w, "doc"));
		assert_string_equal(sval(l, "date"), sval(w, "date"));
		assert_true(ival(l, "amount") == ival(w, "amount"));
	}
	assert_string_equal(sval(json_array_get(lines, 1), "memo"),
	                    "\xe5\xa4\x87\xe4\xbb\xb6"); /* 备件 */
	assert_true(json_equal(json_object_get(st, "aging"), json_object_get(want, "aging")));
	assert_true(ival(st, "closing") == 955000);
	json_decref(st);

	/* The same file read as UTF-8 is refused with a hint. */
	assert_int_equal(tl_statement_from_csv("examples/statement-gb18030.csv", &cny, &st, e),
	                 TL_EFORMAT);
	assert_non_null(strstr(e->msg[0], "examples/statement-gb18030.csv:1:1: invalid UTF-8"));
	assert_non_null(strstr(e->msg[0], "GB18030"));
	json_decref(want);
	free(e);
}

static void test_quoting_crlf(void **state)
{
	(void)state;
	/* CRLF endings, a quoted comma, "" escapes, a line break inside a
	 * quoted memo, an empty quoted due date and no final newline. */
	static const char csv[] =
	        "date,type,doc,amount,due,memo\r\n"
	        "2026-11-03,invoice,\"INV,1\",\"1,000.00\",\"\",\"say \"\"hi\"\"\"\r\n"
	        "2026-11-04,invoice,INV-2,5,,\"two\r\nlines\"\r\n"
	        "2026-11-05,payment,PAY-1,1.5,,last";
	json_t *st = import_ok(csv, sizeof csv - 1, NULL);
	json_t *l = json_object_get(st, "lines");
	assert_int_equal(json_array_size(l), 3);
	assert_string_equal(sval(json_array_get(l, 0), "doc"), "INV,1");
	assert_true(ival(json_array_get(l, 0), "amount") == 100000);
	assert_null(json_object_get(json_array_get(l, 0), "due"));
	assert_string_equal(sval(json_array_get(l, 0), "memo"), "say \"hi\"");
	assert_string_equal(sval(json_array_get(l, 1), "memo"), "two\r\nlines");
	assert_string_equal(sval(json_array_get(l, 2), "memo"), "last");
	assert_true(ival(json_array_get(l, 2), "amount") == -150);
	assert_true(ival(st, "closing") == 1250000 + 100000 + 500 - 150);
	json_decref(st);

	/* Line numbers count the physical lines a quoted field spans. */
	refused_s("date,type,doc,amount,due,memo\n"
	          "2026-11-04,invoice,INV-2,5,,\"two\nlines\"\n"
	          "2026-11-05,invoice,INV-3,x,,\n",
	          "statement.csv:4:4 (amount): 'x' is not an amount (digits, one '.', ',' "
	          "between groups of three, a leading '-' or parentheses for negatives)");
}

/* Headers in any order and case, Chinese aliases, unknown columns ignored,
 * blank lines and Excel's empty rows skipped, two memo columns joined. */
static void test_header_forms(void **state)
{
	(void)state;
	static const char csv[] =
	        "Customer,AMOUNT,Doc No,Due Date,\xe6\x91\x98\xe8\xa6\x81,Type,Date,"
	        "\xe5\xa4\x87\xe6\xb3\xa8\n" /* 摘要 ... 备注 */
	        "\n"
	        ",,,,,,,\n"
	        "ACME,100.00,INV-1,20261201,first,Invoice,2026/11/02,note\n"
	        "ACME,40,PAY-1,,,PAYMENT,2026.11.03,\n"
	        "ACME,5,ADJ-1,,,\xe8\xb0\x83\xe6\x95\xb4,2026-11-04,only note\n"; /* 调整 */
	json_t *st = import_ok(csv, sizeof csv - 1, NULL);
	json_t *l = json_object_get(st, "lines");
	assert_int_equal(json_array_size(l), 3);
	assert_string_equal(sval(json_array_get(l, 0), "memo"), "first; note");
	assert_string_equal(sval(json_array_get(l, 0), "due"), "2026-12-01");
	assert_string_equal(sval(json_array_get(l, 0), "date"), "2026-11-02");
	assert_null(json_object_get(json_array_get(l, 1), "memo"));
	assert_string_equal(sval(json_array_get(l, 1), "type"), "payment");
	assert_string_equal(sval(json_array_get(l, 2), "type"), "adjustment");
	assert_string_equal(sval(json_array_get(l, 2), "memo"), "only note");
	assert_true(ival(st, "closing") == 1250000 + 10000 - 4000 + 500);
	json_decref(st);
}

static void test_bom(void **state)
{
	(void)state;
	static const char csv[] = "\xef\xbb\xbf"
	                          "date,type,doc,amount\n2026-11-03,invoice,I-1,1\n";
	json_t *st = import_ok(csv, sizeof csv - 1, NULL);
	assert_int_equal(json_array_size(json_object_get(st, "lines")), 1);
	json_decref(st);

	struct tl_statement_opts o = cny;
	o.encoding = "GB18030";
	refused(csv, sizeof csv - 1, &o,
	        "statement.csv: the file starts with a UTF-8 byte order mark but GB18030 was "
	        "asked for; import it as utf-8");
	refused("\xff\xfe"
	        "d\0a\0",
	        6, NULL, "statement.csv: the file is UTF-16; export it as UTF-8 or GB18030");
}

/* GB18030 bytes written by hand: 日期,类型,单号,金额,摘要 then 发票/付款
 * lines, one memo holding a four-byte sequence (U+1F600). */
static const char gb_csv[] = "\xc8\xd5\xc6\xda,\xc0\xe0\xd0\xcd,\xb5\xa5\xba\xc5,"
                             "\xbd\xf0\xb6\xee,\xd5\xaa\xd2\xaa\r\n"
                             "2026-11-03,\xb7\xa2\xc6\xb1,INV-1,10.00,\xb7\xa2\xc6\xb1\r\n"
                             "2026-11-04,\xb8\xb6\xbf\xee,PAY-1,3.00,\x94\x39\xfc\x36\r\n";

static void test_gb18030(void **state)
{
	struct tl_statement_opts o = cny;
	(void)state;
	o.encoding = "gb18030";
	json_t *st = import_ok(gb_csv, sizeof gb_csv - 1, &o);
	json_t *l = json_object_get(st, "lines");
	assert_int_equal(json_array_size(l), 2);
	assert_string_equal(sval(json_array_get(l, 0), "type"), "invoice");
	assert_string_equal(sval(json_array_get(l, 0), "memo"), "\xe5\x8f\x91\xe7\xa5\xa8");
	assert_string_equal(sval(json_array_get(l, 1), "type"), "payment");
	assert_string_equal(sval(json_array_get(l, 1), "memo"), "\xf0\x9f\x98\x80");
	assert_true(ival(st, "closing") == 1250000 + 1000 - 300);
	json_decref(st);

	/* GBK has no four-byte sequences. */
	o.encoding = "gbk";
	refused(gb_csv, sizeof gb_csv - 1, &o,
	        "statement.csv:3:5 (\xe6\x91\x98\xe8\xa6\x81): GBK byte sequence 0x94 0x39 0xFC "
	        "0x36 at byte 1 of the field is not valid");

	o.encoding = "latin1";
	refused(gb_csv, sizeof gb_csv - 1, &o,
	        "statement.csv: encoding 'latin1' is not supported (utf-8, gb18030 or gbk)");
}

/* ---------------------------------------------------- refusals, one by one */

#define HDR "date,type,doc,amount,due,memo\n"

static void test_malformed(void **state)
{
	(void)state;
	refused_s(HDR "2026-11-03,invoice,I-1,1.00,,\n"
	              "2026-11-03,invoice,I-2,12.345,,\n",
	          "statement.csv:3:4 (amount): '12.345' has more decimals than CNY allows (2)");
	refused_s(HDR "2026-11-31,invoice,I-1,1.00,,\n",
	          "statement.csv:2:1 (date): '2026-11-31' is not a calendar date");
	refused_s(HDR "3/11/2026,invoice,I-1,1.00,,\n",
	          "statement.csv:2:1 (date): '3/11/2026' is not a date (write YYYY-MM-DD, "
	          "YYYY/MM/DD, YYYY.MM.DD, YYYYMMDD or 2026年11月3日)");
	refused_s(HDR "2026-11-03,invoice,I-1,1.00,2026-02-30,\n",
	          "statement.csv:2:5 (due): '2026-02-30' is not a calendar date");
	refused_s(HDR "2026-12-01,invoice,I-1,1.00,,\n",
	          "statement.csv:2:1 (date): 2026-12-01 is outside the statement period "
	          "2026-11-01 to 2026-11-30");
	refused_s(HDR "2026-11-03,receipt,I-1,1.00,,\n",
	          "statement.csv:2:2 (type): 'receipt' is not a document type (invoice/发票, "
	          "credit_note/贷项通知单/红字发票, debit_note/借项通知单, payment/付款/收款, "
	          "adjustment/调整)");
	refused_s(HDR "2026-11-03,invoice,,1.00,,\n",
	          "statement.csv:2:3 (doc): the document number is empty");
	refused_s(HDR "2026-11-03,invoice,I-1,,,\n",
	          "statement.csv:2:4 (amount): the amount is empty");
	refused_s(HDR "2026-11-03,payment,P-1,-5.00,,\n",
	          "statement.csv:2:4 (amount): '-5.00' is negative on a payment line: write "
	          "amounts as positive numbers (the type gives the sign), or import with signed "
	          "amounts");
	refused_s(HDR "2026-11-03,invoice,I-1,1e3,,\n",
	          "statement.csv:2:4 (amount): '1e3' uses exponent notation; write the number in "
	          "full");
	refused_s(HDR "2026-11-03,invoice,I-1,\"1,23.45\",,\n",
	          "statement.csv:2:4 (amount): '1,23.45' has a misplaced thousands separator "
	          "(groups of 3: 1,234.50)");
	refused_s("date,type,doc,due\n2026-11-03,invoice,I-1,\n",
	          "statement.csv:1: missing column 'amount' (or 金额); columns are named in the "
	          "first line, see docs/statement-csv.md");
	refused_s("date,type,doc,amount,Amount\n2026-11-03,invoice,I-1,1,1\n",
	          "statement.csv:1:5 (Amount): column 'amount' appears twice (also column 4)");
	refused_s(HDR "2026-11-03,invoice,I-1,1.00,,memo,surplus\n",
	          "statement.csv:2:7: extra field: the header has 6 columns, this line has 7");
	refused_s(HDR "2026-11-03,invoice,I-1,1.00\n",
	          "statement.csv:2:5 (due): missing field: this line has 4 fields, the header "
	          "has 6");
	refused_s(HDR "2026-11-03,invoice,I-1,1.00,,\n"
	              "2026-11-04,invoice,I-2,1.00,,\"never closed\n"
	              "2026-11-05,invoice,I-3,1.00,,\n",
	          "statement.csv:3:6 (memo): the quoted field is not closed: a '\"' is missing "
	          "before the end of the file");
	refused_s(HDR "2026-11-03,invoice,I-1,1.00,,say \"hi\"\n",
	          "statement.csv:2:6 (memo): a '\"' inside an unquoted field; quote the whole "
	          "field and write the quote twice (\"\")");
	refused_s(HDR "2026-11-03,invoice,\"I-1\"x,1.00,,\n",
	          "statement.csv:2:3 (doc): text after the closing quote; a quote inside a "
	          "quoted field is written twice (\"\")");
	refused_s(HDR "2026-11-03,invoice,I-1,1.00,,caf\xc3(\n",
	          "statement.csv:2:6 (memo): invalid UTF-8 (0xC3 0x28 at byte 4 of the field); "
	          "if the file is a GB18030 or GBK export, import it with that encoding");
	refused_s(HDR "2026-11-03,invoice,I-1,1.00,,\xed\xa0\x80\n", /* a surrogate */
	          "statement.csv:2:6 (memo): invalid UTF-8 (0xED 0xA0 at byte 1 of the field); "
	          "if the file is a GB18030 or GBK export, import it with that encoding");
	refused_s(HDR "2026-11-03,invoice,I-1,1.00,,bell\a\n",
	          "statement.csv:2:6 (memo): the memo contains control character 0x07");
	refused_s("", "statement.csv: no header line: the file is empty");

	/* A bad GB18030 byte names its line and column; so does a sequence
	 * cut short by the end of the field. */
	struct tl_statement_opts o = cny;
	o.encoding = "gb18030";
	static const char bad_gb[] = "\xc8\xd5\xc6\xda,\xc0\xe0\xd0\xcd,\xb5\xa5\xba\xc5,"
	                             "\xbd\xf0\xb6\xee\n"
	                             "2026-11-03,\xb7\xa2\xc6\xb1,INV-1,10.00\n"
	                             "2026-11-04,\xb7\xa2\xff,INV-2,10.00\n"
	                             "2026-11-05,\xb7\xa2\xc6,INV-3,10.00\n";
	refused(bad_gb, sizeof bad_gb - 1, &o,
	        "statement.csv:3:2 (\xe7\xb1\xbb\xe5\x9e\x8b): GB18030 byte sequence 0xFF at byte "
	        "3 of the field is not valid");
	struct tl_errlist *e = errs_new();
	json_t *st;
	assert_int_equal(
	        tl_statement_from_csv_mem((const uint8_t *)bad_gb, sizeof bad_gb - 1, &o, &st, e),
	        TL_EFORMAT);
	assert_int_equal(e->total, 2);
	assert_string_equal(e->msg[1], "statement.csv:4:2 (\xe7\xb1\xbb\xe5\x9e\x8b): GB18030 "
	                               "byte sequence 0xC6 at byte 3 of the field is incomplete");
	free(e);
}

static void test_options_refused(void **state)
{
	struct tl_errlist *e = errs_new();
	struct tl_statement_opts o = cny;
	json_t *st;
	(void)state;
	o.id = "";
	o.currency = "RMB";
	o.from = "2026-12-01";
	o.date = "2026-02-30";
	o.supersedes = "ABCD";
	assert_int_equal(import(HDR, &o, &st, e), TL_EFORMAT);
	assert_null(st);
	assert_int_equal(e->total, 4);
	assert_string_equal(e->msg[0], "statement.csv: the statement id is not given");
	assert_string_equal(
	        e->msg[1],
	        "statement.csv: supersedes must be a leaf hash of 64 lowercase hex digits");
	assert_string_equal(e->msg[2], "statement.csv: currency 'RMB' is not a known ISO 4217 code "
	                               "(uppercase, e.g. CNY, USD, JPY)");
	assert_string_equal(
	        e->msg[3], "statement.csv: the statement date '2026-02-30' is not a calendar date");

	o = cny;
	o.opening = "12,500.005";
	assert_int_equal(import(HDR, &o, &st, e), TL_EFORMAT);
	assert_string_equal(e->msg[0], "statement.csv: opening balance '12,500.005' has more "
	                               "decimals than CNY allows (2)");
	o = cny;
	o.to = "2026-10-31";
	assert_int_equal(import(HDR, &o, &st, e), TL_EFORMAT);
	assert_string_equal(e->msg[0], "statement.csv: the period starts after it ends");
	o = cny;
	o.date = "2026-11-29";
	assert_int_equal(import(HDR, &o, &st, e), TL_EFORMAT);
	assert_string_equal(e->msg[0],
	                    "statement.csv: the statement date is before the end of the period");

	/* A header and no line is a statement of the opening balance alone. */
	o = cny;
	o.version = 2;
	o.supersedes = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	assert_int_equal(import(HDR, &o, &st, e), 0);
	assert_true(ival(st, "version") == 2);
	assert_string_equal(sval(st, "supersedes"), o.supersedes);
	assert_true(ival(st, "closing") == 1250000);
	assert_true(ival(json_object_get(st, "aging"), "d1_30") == 1250000);
	json_decref(st);

	assert_int_equal(tl_statement_from_csv("tests/no-such-file.csv", &cny, &st, e), TL_EIO);
	assert_string_equal(e->msg[0],
	                    "tests/no-such-file.csv: cannot open: No such file or directory");
	free(e);
}

/* Every problem in one pass, in file order; the list keeps 100. */
static void test_all_errors_reported(void **state)
{
	struct tl_errlist *e = errs_new();
	json_t *st;
	(void)state;
	assert_int_equal(import(HDR "2026-11-03,invoice,I-1,1.00,,\n"
	                            "2026-11-31,invoice,I-2,1.00,,\n"
	                            "2026-11-03,bill,I-3,1.00,,\n"
	                            "2026-11-03,invoice,I-4,1.001,2026-11-31,\n",
	                        &cny, &st, e),
	                 TL_EFORMAT);
	assert_null(st);
	assert_int_equal(e->total, 4);
	assert_int_equal(e->n, 4);
	assert_non_null(strstr(e->msg[0], "statement.csv:3:1 (date): "));
	assert_non_null(strstr(e->msg[1], "statement.csv:4:2 (type): 'bill'"));
	assert_non_null(strstr(e->msg[2], "statement.csv:5:4 (amount): '1.001'"));
	assert_non_null(strstr(e->msg[3], "statement.csv:5:5 (due): '2026-11-31'"));

	struct tl_buf b;
	tl_buf_init(&b, 1 << 20);
	assert_int_equal(tl_buf_adds(&b, HDR), 0);
	for (int i = 0; i < 150; i++)
		assert_int_equal(tl_buf_printf(&b, "2026-11-03,invoice,I-%d,x%d,,\n", i, i), 0);
	assert_int_equal(import(tl_buf_cstr(&b), &cny, &st, e), TL_EFORMAT);
	assert_int_equal(e->total, 150);
	assert_int_equal(e->n, TL_ERRLIST_MAX);
	assert_non_null(strstr(e->msg[99], "statement.csv:101:4 (amount): 'x99'"));
	tl_buf_release(&b);
	free(e);
}

/* ------------------------------------------------- balances and aging */

static void test_signed_mode(void **state)
{
	struct tl_statement_opts o = cny;
	(void)state;
	o.flags = TL_STMT_SIGNED;
	o.opening = "0";
	json_t *st = import_ok(HDR "2026-11-03,invoice,I-1,100,,\n"
	                           "2026-11-04,payment,P-1,-30,,\n"
	                           "2026-11-05,credit_note,C-1,(20),,\n"
	                           "2026-11-06,adjustment,A-1,-1,,\n"
	                           "2026-11-07,adjustment,A-2,2,,\n",
	                       SIZE_MAX, &o);
	assert_true(ival(st, "closing") == 5100);
	json_decref(st);
	refused(HDR "2026-11-04,payment,P-1,30,,\n", SIZE_MAX, &o,
	        "statement.csv:2:4 (amount): '30' on a payment line: with signed amounts, invoices "
	        "and debit notes are positive, credit notes and payments negative");
	o.flags = 0;
	st = import_ok(HDR "2026-11-03,credit_note,C-1,20,,\n"
	                   "2026-11-06,adjustment,A-1,-1,,\n"
	                   "2026-11-07,adjustment,A-2,(2),,\n",
	               SIZE_MAX, &o);
	assert_true(ival(st, "closing") == -2300);
	json_decref(st);
}

/* Lines are sorted by date; lines of one date keep their file order. */
static void test_sorted_stable(void **state)
{
	(void)state;
	json_t *st = import_ok(HDR "2026-11-09,invoice,B,1,,\n"
	                           "2026-11-02,invoice,A,1,,\n"
	                           "2026-11-09,invoice,C,1,,\n"
	                           "2026-11-09,payment,D,1,,\n"
	                           "2026-11-01,invoice,E,1,,\n",
	                       SIZE_MAX, NULL);
	json_t *l = json_object_get(st, "lines");
	const char *want[] = {"E", "A", "B", "C", "D"};
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(sval(json_array_get(l, i), "doc"), want[i]);
	json_decref(st);
}

static void aging_is(const json_t *st, int64_t cur, int64_t a, int64_t b, int64_t c, int64_t d)
{
	const json_t *ag = json_object_get(st, "aging");
	assert_true(ival(ag, "current") == cur);
	assert_true(ival(ag, "d1_30") == a);
	assert_true(ival(ag, "d31_60") == b);
	assert_true(ival(ag, "d61_90") == c);
	assert_true(ival(ag, "d90_plus") == d);
}

/*
 * Hand-computed at 2026-11-30, JPY (exponent 0), opening 1000 (due at
 * period.from 2026-08-01: 121 days late):
 *   invoices due 2026-08-15 (107 days) 500, 2026-09-10 (81) 400,
 *   2026-10-20 (41) 300, 2026-11-10 (20) 200, 2026-12-10 (not due) 100,
 *   an invoice with no due date (current) 50; payments 1000 + 300.
 * The 1300 paid clears the opening (1000) and the 2026-08-15 invoice's
 * first 300, leaving 200 of it 90+ days late.
 */
static void test_aging(void **state)
{
	struct tl_statement_opts o = cny;
	(void)state;
	o.currency = "JPY";
	o.from = "2026-08-01";
	o.opening = "1,000";
	json_t *st = import_ok(HDR "2026-08-05,invoice,I-1,500,2026-08-15,\n"
	                           "2026-08-10,invoice,I-2,400,2026-09-10,\n"
	                           "2026-09-20,invoice,I-3,300,2026-10-20,\n"
	                           "2026-10-10,invoice,I-4,200,2026-11-10,\n"
	                           "2026-11-10,invoice,I-5,100,2026-12-10,\n"
	                           "2026-11-11,invoice,I-6,50,,\n"
	                           "2026-09-01,payment,P-1,1000,,\n"
	                           "2026-11-20,payment,P-2,300,,\n",
	                       SIZE_MAX, &o);
	assert_true(ival(st, "closing") == 1250);
	aging_is(st, 150, 200, 300, 400, 200);
	json_decref(st);

	/* Boundaries: 0, 1, 30, 31, 60, 61, 90, 91 days past due. */
	o.opening = "0";
	st = import_ok(HDR "2026-08-01,invoice,I-0,1,2026-11-30,\n"
	                   "2026-08-01,invoice,I-1,10,2026-11-29,\n"
	                   "2026-08-01,invoice,I-30,100,2026-10-31,\n"
	                   "2026-08-01,invoice,I-31,1000,2026-10-30,\n"
	                   "2026-08-01,invoice,I-60,10000,2026-10-01,\n"
	                   "2026-08-01,invoice,I-61,100000,2026-09-30,\n"
	                   "2026-08-01,invoice,I-90,1000000,2026-09-01,\n"
	                   "2026-08-01,invoice,I-91,10000000,2026-08-31,\n",
	               SIZE_MAX, &o);
	aging_is(st, 1, 110, 11000, 1100000, 10000000);
	json_decref(st);

	/* A debit note and a positive adjustment are open items; a credit
	 * note and a negative adjustment pay the oldest first. */
	st = import_ok(HDR "2026-08-01,debit_note,D-1,70,2026-09-15,\n"
	                   "2026-08-01,adjustment,A-1,30,,\n"
	                   "2026-11-01,invoice,I-1,100,2026-11-15,\n"
	                   "2026-11-02,credit_note,C-1,60,,\n"
	                   "2026-11-03,adjustment,A-2,-20,,\n",
	               SIZE_MAX, &o);
	/* open items by due (else date): A-1 (08-01, no due: current) 30,
	 * D-1 (09-15) 70, I-1 (11-15) 100; 80 credited clears A-1, 50 of D-1. */
	aging_is(st, 0, 100, 0, 20, 0);
	json_decref(st);

	/* A customer in credit: all buckets 0. A negative opening is a credit. */
	o.opening = "-500";
	st = import_ok(HDR "2026-08-01,invoice,I-1,300,2026-08-02,\n", SIZE_MAX, &o);
	assert_true(ival(st, "closing") == -200);
	aging_is(st, 0, 0, 0, 0, 0);
	json_decref(st);
	o.opening = "-100";
	st = import_ok(HDR "2026-08-01,invoice,I-1,300,2026-08-02,\n", SIZE_MAX, &o);
	aging_is(st, 0, 0, 0, 0, 200);
	json_decref(st);
}

/* closing = opening + sum of lines, over varied lines, and the 10,000-line
 * statement of the issue. */
static void test_closing_and_10000_lines(void **state)
{
	struct tl_buf b;
	static const char *const types[] = {"invoice", "payment", "credit_note", "debit_note",
	                                    "adjustment"};
	int64_t sum = 0, n[5] = {0};
	(void)state;
	tl_buf_init(&b, 8 << 20);
	assert_int_equal(tl_buf_adds(&b, "Date,Type,Doc,Amount,Due,Memo\r\n"), 0);
	for (int i = 0; i < 10000; i++) {
		int t = i % 5;
		int64_t units = (int64_t)(i * 7919 % 100000) * 100 + i % 100;
		char amt[40];
		if (t == 4 && i % 2) /* a negative adjustment, ERP style */
			snprintf(amt, sizeof amt, "\"(%lld.%02lld)\"", (long long)(units / 100),
			         (long long)(units % 100));
		else
			snprintf(amt, sizeof amt, "%lld.%02lld", (long long)(units / 100),
			         (long long)(units % 100));
		int64_t signed_units = t == 1 || t == 2 || (t == 4 && i % 2) ? -units : units;
		sum += signed_units;
		n[t]++;
		assert_int_equal(tl_buf_printf(&b,
		                               "2026-11-%02d,%s,D-%05d,%s,2026-12-%02d,line %d\r\n",
		                               1 + i % 30, types[t], i, amt, 1 + i % 31, i),
		                 0);
	}
	json_t *st = import_ok((const char *)b.data, b.len, NULL);
	json_t *l = json_object_get(st, "lines");
	assert_int_equal(json_array_size(l), 10000);
	int64_t total = 0, cnt[5] = {0};
	for (size_t i = 0; i < 10000; i++) {
		json_t *x = json_array_get(l, i);
		total += ival(x, "amount");
		for (int t = 0; t < 5; t++)
			if (strcmp(sval(x, "type"), types[t]) == 0)
				cnt[t]++;
		if (i > 0)
			assert_true(strcmp(sval(json_array_get(l, i - 1), "date"),
			                   sval(x, "date")) <= 0);
	}
	assert_true(total == sum);
	for (int t = 0; t < 5; t++)
		assert_true(cnt[t] == n[t]);
	assert_true(ival(st, "closing") == 1250000 + sum);
	const json_t *ag = json_object_get(st, "aging");
	int64_t buckets = ival(ag, "current") + ival(ag, "d1_30") + ival(ag, "d31_60") +
	                  ival(ag, "d61_90") + ival(ag, "d90_plus");
	assert_true(buckets == (1250000 + sum > 0 ? 1250000 + sum : 0));
	json_decref(st);

	/* Written to disk and read back through the file API. */
	char *dir = th_tmpdir("statement"), path[4096];
	snprintf(path, sizeof path, "%s/big.csv", dir);
	assert_int_equal(th_write_file(path, b.data, b.len), 0);
	struct tl_errlist *e = errs_new();
	assert_int_equal(tl_statement_from_csv(path, &cny, &st, e), 0);
	assert_true(ival(st, "closing") == 1250000 + sum);
	json_decref(st);

	/* Over the size limit: refused before parsing. */
	snprintf(path, sizeof path, "%s/huge.csv", dir);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(ftruncate(fileno(fp), (off_t)TL_STMT_FILE_MAX + 1), 0);
	fclose(fp);
	assert_int_equal(tl_statement_from_csv(path, &cny, &st, e), TL_ETOOBIG);
	assert_null(st);
	assert_non_null(strstr(e->msg[0], "huge.csv: the file is larger than 64 MiB"));
	free(e);
	th_rmtree(dir);
	free(dir);
	tl_buf_release(&b);
}

/* A running balance past int64 is refused, not wrapped. */
static void test_overflow(void **state)
{
	struct tl_statement_opts o = cny;
	(void)state;
	o.currency = "JPY";
	o.opening = "9,223,372,036,854,775,000";
	refused(HDR "2026-11-03,invoice,I-1,807,,\n2026-11-04,invoice,I-2,1,,\n", SIZE_MAX, &o,
	        "statement.csv:3:4 (amount): the running balance overflows at this line");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_amount_parse),
	        cmocka_unit_test(test_currency),
	        cmocka_unit_test(test_dates),
	        cmocka_unit_test(test_sample_file),
	        cmocka_unit_test(test_quoting_crlf),
	        cmocka_unit_test(test_header_forms),
	        cmocka_unit_test(test_bom),
	        cmocka_unit_test(test_gb18030),
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_options_refused),
	        cmocka_unit_test(test_all_errors_reported),
	        cmocka_unit_test(test_signed_mode),
	        cmocka_unit_test(test_sorted_stable),
	        cmocka_unit_test(test_aging),
	        cmocka_unit_test(test_closing_and_10000_lines),
	        cmocka_unit_test(test_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
