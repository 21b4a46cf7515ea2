/* test_ledger.c — the payables ledger loader (node/ledger.h): signs in the
 * statement's convention, header and type spellings, every error with its
 * line and column, GB18030; and `tally match` end to end on the real
 * binary: exit 0 to confirm, 1 to dispute (with the dispute lines in
 * --json), 2 for usage and unusable input. */
#include "harness.h"

#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/ledger.h"
#include "node/tl_node.h"

static const struct tl_ledger_opts cny = {.currency = "CNY"};

static struct tl_errlist *errs_new(void)
{
	struct tl_errlist *e = malloc(sizeof *e);
	assert_non_null(e);
	return e;
}

static int load(const char *csv, size_t len, const struct tl_ledger_opts *o,
                struct tl_match_line **out, size_t *n, struct tl_errlist *e)
{
	return tl_ledger_from_csv_mem((const uint8_t *)csv, len, o, out, n, e);
}

/* Loads csv, which must be fine; returns the lines (*n of them). */
static struct tl_match_line *load_ok(const char *csv, const struct tl_ledger_opts *o, size_t *n)
{
	struct tl_errlist *e = errs_new();
	struct tl_match_line *l = NULL;
	int rc = load(csv, strlen(csv), o ? o : &cny, &l, n, e);
	if (rc)
		tl_errlist_print(e, stderr);
	assert_int_equal(rc, 0);
	assert_int_equal(e->total, 0);
	free(e);
	return l;
}

static void line_is(const struct tl_match_line *l, const char *date, enum tl_match_type t,
                    const char *doc, int64_t amount)
{
	char d[11];
	tl_match_date_format(d, l->date);
	assert_string_equal(d, date);
	assert_int_equal(l->type, t);
	assert_string_equal(l->doc, doc);
	assert_true(l->amount == amount);
}

/* Positive amounts; the type gives the sign (invoices and debit notes +,
 * payments and credit notes -, adjustments as written). Lines in date
 * order, the other date forms accepted. */
static void test_signs(void **state)
{
	size_t n;
	(void)state;
	struct tl_match_line *l = load_ok("date,type,doc,amount,due,memo\n"
	                                  "2026-11-12,payment,PAY-1,\"12,500.00\",,bank\n"
	                                  "2026/11/3,invoice,INV-1,4520,2026-12-03,goods\n"
	                                  "20261115,credit_note,CN-1,300.00,,return\n"
	                                  "2026.11.18,debit_note,DN-1,150.5,,freight\n"
	                                  "2026-11-28,adjustment,ADJ-1,(0.50),,rounding\n"
	                                  "2026-11-29,adjustment,ADJ-2,0.25,,\n",
	                                  NULL, &n);
	assert_int_equal(n, 6);
	line_is(&l[0], "2026-11-03", TL_MATCH_INVOICE, "INV-1", 452000);
	line_is(&l[1], "2026-11-12", TL_MATCH_PAYMENT, "PAY-1", -1250000);
	line_is(&l[2], "2026-11-15", TL_MATCH_CREDIT_NOTE, "CN-1", -30000);
	line_is(&l[3], "2026-11-18", TL_MATCH_DEBIT_NOTE, "DN-1", 15050);
	line_is(&l[4], "2026-11-28", TL_MATCH_ADJUSTMENT, "ADJ-1", -50);
	line_is(&l[5], "2026-11-29", TL_MATCH_ADJUSTMENT, "ADJ-2", 25);
	free(l);

	/* Already signed in the statement's convention. */
	struct tl_ledger_opts o = cny;
	o.flags = TL_LEDGER_SIGNED;
	l = load_ok("date,type,doc,amount\n"
	            "2026-11-03,invoice,INV-1,4520.00\n"
	            "2026-11-12,payment,PAY-1,-12500.00\n",
	            &o, &n);
	assert_int_equal(n, 2);
	assert_true(l[0].amount == 452000 && l[1].amount == -1250000);
	free(l);

	/* The currency gives the decimals: JPY has none. */
	o = cny;
	o.currency = "JPY";
	l = load_ok("date,type,doc,amount\n2026-11-03,invoice,INV-1,\"45,200\"\n", &o, &n);
	assert_true(n == 1 && l[0].amount == 45200);
	free(l);

	/* A header with no lines is an empty ledger. */
	l = load_ok("date,type,doc,amount\n", NULL, &n);
	assert_null(l);
	assert_int_equal(n, 0);
}

/* The statement importer's header and type spellings, Chinese included;
 * unknown columns are ignored; the ledger's dates need no period. */
static void test_aliases(void **state)
{
	size_t n;
	(void)state;
	struct tl_match_line *l = load_ok("Doc Date,Document-Type,Document No,AMOUNT,Due Date,"
	                                  "Description,Cost Centre\n"
	                                  "2025-01-02,invoice,INV-9,1.00,,old,CC1\n"
	                                  "2027-03-04,payment,PAY-9,1.00,,,CC2\n",
	                                  NULL, &n);
	assert_int_equal(n, 2);
	line_is(&l[0], "2025-01-02", TL_MATCH_INVOICE, "INV-9", 100);
	line_is(&l[1], "2027-03-04", TL_MATCH_PAYMENT, "PAY-9", -100);
	free(l);

	l = load_ok("单据日期,单据类型,凭证号,金额,到期日,摘要,备注\n"
	            "2026年11月3日,发票,INV-1,\"4,520.00\",,采购入库,第1批\n"
	            "2026-11-05,付款,FK-1,100.00,,,\n"
	            "2026-11-06,收款,FK-2,1.00,,,\n"
	            "2026-11-07,红字发票,CN-1,20.00,,,\n"
	            "2026-11-08,贷项通知单,CN-2,2.00,,,\n"
	            "2026-11-09,借项通知单,DN-1,3.00,,,\n"
	            "2026-11-10,调整,ADJ-1,-0.10,,,\n",
	            NULL, &n);
	assert_int_equal(n, 7);
	line_is(&l[0], "2026-11-03", TL_MATCH_INVOICE, "INV-1", 452000);
	line_is(&l[1], "2026-11-05", TL_MATCH_PAYMENT, "FK-1", -10000);
	line_is(&l[2], "2026-11-06", TL_MATCH_PAYMENT, "FK-2", -100);
	line_is(&l[3], "2026-11-07", TL_MATCH_CREDIT_NOTE, "CN-1", -2000);
	line_is(&l[4], "2026-11-08", TL_MATCH_CREDIT_NOTE, "CN-2", -200);
	line_is(&l[5], "2026-11-09", TL_MATCH_DEBIT_NOTE, "DN-1", 300);
	line_is(&l[6], "2026-11-10", TL_MATCH_ADJUSTMENT, "ADJ-1", -10);
	free(l);
}

static int has_msg(const struct tl_errlist *e, const char *want)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->msg[i], want))
			return 1;
	return 0;
}

/* Every problem, each with FILE:LINE:COLUMN, and no line returned. */
static void test_errors(void **state)
{
	struct tl_errlist *e = errs_new();
	struct tl_match_line *l = (struct tl_match_line *)1;
	size_t n = 99;
	struct tl_ledger_opts o = cny;
	(void)state;
	o.name = "payables.csv";
	const char *csv = "date,type,doc,amount\n"
	                  "2026-11-03,invoice,INV-1,10.00\n"
	                  "2026-11-04,invoice,INV-2,12.345\n"
	                  "2026-02-30,invoice,INV-3,1.00\n"
	                  "2026-11-05,bill,INV-4,1.00\n"
	                  "2026-11-06,payment,PAY-1,-5.00\n"
	                  "2026-11-07,invoice,,1.00\n"
	                  "2026-11-08,invoice,\"INV-5\"x,1.00\n";
	assert_int_equal(load(csv, strlen(csv), &o, &l, &n, e), TL_EFORMAT);
	assert_null(l);
	assert_int_equal(n, 0);
	if (e->total != 6)
		tl_errlist_print(e, stderr);
	assert_int_equal(e->total, 6);
	assert_true(has_msg(e, "payables.csv:3:4 (amount): '12.345' has more decimals than CNY"));
	assert_true(has_msg(e, "payables.csv:4:1 (date): '2026-02-30' is not a calendar date"));
	assert_true(has_msg(e, "payables.csv:5:2 (type): 'bill' is not a document type"));
	assert_true(has_msg(e, "payables.csv:6:4 (amount): '-5.00' is negative on a payment"));
	assert_true(has_msg(e, "payables.csv:7:3 (doc): the document number is empty"));
	assert_true(has_msg(e, "payables.csv:8:3 (doc): text after the closing quote"));

	/* A missing column; the default name in messages. */
	csv = "date,doc,amount\n2026-11-03,INV-1,1.00\n";
	assert_int_equal(load(csv, strlen(csv), &cny, &l, &n, e), TL_EFORMAT);
	assert_true(has_msg(e, "ledger.csv:1: missing column 'type'"));

	/* Beyond what the matcher takes: a long number, a huge amount. */
	char big[512];
	snprintf(big, sizeof big,
	         "date,type,doc,amount\n2026-11-03,invoice,%s,1.00\n"
	         "2026-11-04,invoice,INV-2,\"10,000,000,000.01\"\n",
	         "INV-0123456789012345678901234567890123456789012345678901234567890");
	assert_int_equal(load(big, strlen(big), &cny, &l, &n, e), TL_EFORMAT);
	assert_int_equal(e->total, 2);
	assert_true(has_msg(e, "document number is 65 bytes long; matching compares at most 63"));
	assert_true(has_msg(e, "the amount (1000000000001 minor units) is beyond"));
	assert_null(l);

	/* An unknown currency, and a file that cannot be read. */
	o.currency = "XYZ";
	csv = "date,type,doc,amount\n";
	assert_int_equal(load(csv, strlen(csv), &o, &l, &n, e), TL_EFORMAT);
	assert_true(has_msg(e, "currency 'XYZ' is not a known ISO 4217 code"));
	assert_int_equal(tl_ledger_from_csv("/nonexistent/payables.csv", &cny, &l, &n, e), TL_EIO);
	assert_true(has_msg(e, "/nonexistent/payables.csv: cannot open"));
	assert_int_equal(tl_ledger_from_csv_mem(NULL, 0, NULL, &l, &n, e), TL_EINVAL);
	free(e);
}

/* Converts UTF-8 text to GB18030 (malloc'd, *len bytes). */
static char *to_gb18030(const char *s, size_t *len)
{
	iconv_t cd = iconv_open("GB18030", "UTF-8");
	assert_true(cd != (iconv_t)-1);
	size_t inleft = strlen(s), cap = 4 * inleft + 4, outleft = cap;
	char *out = malloc(cap), *in = (char *)s, *o = out;
	assert_non_null(out);
	assert_true(iconv(cd, &in, &inleft, &o, &outleft) != (size_t)-1);
	iconv_close(cd);
	*len = cap - outleft;
	return out;
}

static void test_gb18030(void **state)
{
	const char *utf8 = "日期,类型,单据号,金额,摘要\r\n"
	                   "2026-11-03,发票,发票-001,\"1,000.00\",采购\r\n"
	                   "2026-11-04,付款,付款-001,400.00,银行转账\r\n";
	size_t len, n = 0;
	char *gb = to_gb18030(utf8, &len);
	struct tl_errlist *e = errs_new();
	struct tl_match_line *l = NULL;
	struct tl_ledger_opts o = cny;
	(void)state;
	assert_true(len != strlen(utf8)); /* really re-encoded */
	o.encoding = "gb18030";
	assert_int_equal(load(gb, len, &o, &l, &n, e), 0);
	assert_int_equal(n, 2);
	line_is(&l[0], "2026-11-03", TL_MATCH_INVOICE, "发票-001", 100000);
	line_is(&l[1], "2026-11-04", TL_MATCH_PAYMENT, "付款-001", -40000);
	free(l);

	/* Read as UTF-8 it is refused where it goes wrong, with a hint. */
	assert_int_equal(load(gb, len, &cny, &l, &n, e), TL_EFORMAT);
	assert_non_null(strstr(e->msg[0], "ledger.csv:1:1: invalid UTF-8"));
	assert_non_null(strstr(e->msg[0], "GB18030"));

	/* The same file on disk. */
	char *dir = th_tmpdir("ledger");
	char path[4200];
	snprintf(path, sizeof path, "%s/payables.csv", dir);
	assert_int_equal(th_write_file(path, gb, len), 0);
	assert_int_equal(tl_ledger_from_csv(path, &o, &l, &n, e), 0);
	assert_int_equal(n, 2);
	free(l);
	th_rmtree(dir);
	free(dir);
	free(gb);
	free(e);
}

/* ------------------------------------------------- tally match, end to end */

struct fx {
	char *dir;
	char home_env[4200];
	char pass_env[64];
	char stmt[4200], good[4200], bad[4200], broken[4200];
};

#define STATEMENT                                                                        \
	"{\"id\": \"ST-2026-11\", \"version\": 1, \"date\": \"2026-11-30\", "            \
	"\"period\": {\"from\": \"2026-11-01\", \"to\": \"2026-11-30\"}, \"currency\": " \
	"\"CNY\", \"opening\": 1250000, \"lines\": ["                                    \
	"{\"date\": \"2026-11-03\", \"type\": \"invoice\", \"doc\": \"INV-88017\", "     \
	"\"amount\": 452000},"                                                           \
	"{\"date\": \"2026-11-05\", \"type\": \"invoice\", \"doc\": \"INV-88031\", "     \
	"\"amount\": 200000},"                                                           \
	"{\"date\": \"2026-11-12\", \"type\": \"payment\", \"doc\": \"PAY-5531\", "      \
	"\"amount\": -1250000},"                                                         \
	"{\"date\": \"2026-11-20\", \"type\": \"invoice\", \"doc\": \"INV-88102\", "     \
	"\"amount\": 318050}], \"closing\": 970050}"

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	assert_non_null(x);
	x->dir = th_tmpdir("match");
	snprintf(x->home_env, sizeof x->home_env, "TALLY_HOME=%s/home", x->dir);
	snprintf(x->pass_env, sizeof x->pass_env, "TALLY_PASSPHRASE=pw");
	snprintf(x->stmt, sizeof x->stmt, "%s/statement.json", x->dir);
	snprintf(x->good, sizeof x->good, "%s/good.csv", x->dir);
	snprintf(x->bad, sizeof x->bad, "%s/payables.csv", x->dir);
	snprintf(x->broken, sizeof x->broken, "%s/broken.csv", x->dir);
	const char *good = "日期,类型,单据号,金额\n"
	                   "2026-11-04,发票,inv 88017,\"4,520.00\"\n"
	                   "2026-11-05,发票,INV-88031,\"2,000.00\"\n"
	                   "2026-11-11,付款,FK-1108,\"12,500.00\"\n"
	                   "2026-11-21,发票,INV-88102,\"3,180.50\"\n";
	/* INV-88031 booked at 1,950.00; INV-88102 not received. */
	const char *bad = "date,type,doc,amount\n"
	                  "2026-11-04,invoice,INV-88017,\"4,520.00\"\n"
	                  "2026-11-05,invoice,INV-88031,\"1,950.00\"\n"
	                  "2026-11-11,payment,FK-1108,\"12,500.00\"\n";
	const char *broken = "date,type,doc,amount\n2026-11-04,invoice,INV-88017,4.520,00\n";
	assert_int_equal(th_write_file(x->stmt, STATEMENT, strlen(STATEMENT)), 0);
	assert_int_equal(th_write_file(x->good, good, strlen(good)), 0);
	assert_int_equal(th_write_file(x->bad, bad, strlen(bad)), 0);
	assert_int_equal(th_write_file(x->broken, broken, strlen(broken)), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	th_rmtree(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

static int tally(struct fx *x, struct th_run *r, const char *const *argv)
{
	const char *env[] = {x->home_env, x->pass_env, NULL};
	th_run_free(r);
	assert_int_equal(th_run(r, argv, env, NULL, 0, 300), 0);
	return r->status;
}

static void test_match_confirm(void **state)
{
	struct fx *x = *state;
	struct th_run r = {0};
	const char *a[] = {"tally", "match", x->stmt, "--ledger", x->good, NULL};
	assert_int_equal(tally(x, &r, a), 0);
	assert_non_null(strstr(r.out, "Proposal: CONFIRM"));
	assert_non_null(strstr(r.out, "--balance 970050"));
	const char *b[] = {"tally", "match", x->stmt, "--ledger", x->good, "--json", NULL};
	assert_int_equal(tally(x, &r, b), 0);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "proposal")), "confirm");
	assert_int_equal(json_array_size(json_object_get(j, "dispute")), 0);
	json_decref(j);
	th_run_free(&r);
}

static void test_match_dispute(void **state)
{
	struct fx *x = *state;
	struct th_run r = {0};
	const char *a[] = {"tally", "match", x->stmt, "--ledger", x->bad, "--json", NULL};
	assert_int_equal(tally(x, &r, a), 1);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "proposal")), "dispute");
	json_t *d = json_object_get(j, "dispute");
	assert_int_equal(json_array_size(d), 2);
	json_t *d0 = json_array_get(d, 0), *d1 = json_array_get(d, 1);
	assert_string_equal(json_string_value(json_object_get(d0, "doc")), "INV-88031");
	assert_int_equal(json_integer_value(json_object_get(d0, "their_amount")), 200000);
	assert_int_equal(json_integer_value(json_object_get(d0, "our_amount")), 195000);
	assert_string_equal(json_string_value(json_object_get(d0, "reason")), "price");
	assert_string_equal(json_string_value(json_object_get(d1, "doc")), "INV-88102");
	assert_int_equal(json_integer_value(json_object_get(d1, "their_amount")), 318050);
	assert_string_equal(json_string_value(json_object_get(d1, "reason")), "not_received");
	json_decref(j);

	/* For people: the report and the arguments of the dispute. */
	const char *b[] = {"tally", "match", x->stmt, "--ledger", x->bad, NULL};
	assert_int_equal(tally(x, &r, b), 1);
	assert_non_null(strstr(r.out, "Proposal: DISPUTE"));
	assert_non_null(strstr(r.out, "--line INV-88031 --their-amount 200000 --reason price"));
	assert_non_null(
	        strstr(r.out, "--line INV-88102 --their-amount 318050 --reason not_received"));

	/* Within a tolerance of 50.00 the price difference goes away. */
	const char *c[] = {"tally",  "match",       x->stmt, "--ledger", x->bad,
	                   "--json", "--tolerance", "50",    NULL};
	assert_int_equal(tally(x, &r, c), 1);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "dispute")), 1);
	json_decref(j);
	th_run_free(&r);
}

static void test_match_usage(void **state)
{
	struct fx *x = *state;
	struct th_run r = {0};
	const char *a1[] = {"tally", "match", x->stmt, NULL};
	assert_int_equal(tally(x, &r, a1), 2);
	assert_non_null(strstr(r.err, "usage: tally match"));
	const char *a2[] = {"tally", "match", "--ledger", x->good, NULL};
	assert_int_equal(tally(x, &r, a2), 2);
	const char *a3[] = {"tally", "match",    x->stmt, "--ledger",
	                    x->good, "--window", "400",   NULL};
	assert_int_equal(tally(x, &r, a3), 2);
	const char *a4[] = {"tally", "match", x->stmt, "--ledger", x->good, "--window", "-1", NULL};
	assert_int_equal(tally(x, &r, a4), 2);
	const char *a5[] = {"tally", "match",       x->stmt, "--ledger",
	                    x->good, "--tolerance", "0.001", NULL};
	assert_int_equal(tally(x, &r, a5), 2);
	assert_non_null(strstr(r.err, "--tolerance"));
	const char *a6[] = {"tally", "match", x->stmt, "--ledger", x->good, "--bogus", NULL};
	assert_int_equal(tally(x, &r, a6), 2);
	/* A ledger with problems: each named, nothing matched, never 1. */
	const char *a7[] = {"tally", "match", x->stmt, "--ledger", x->broken, NULL};
	assert_int_equal(tally(x, &r, a7), 2);
	assert_non_null(strstr(r.err, "broken.csv:2:5: extra field"));
	assert_non_null(strstr(r.err, "nothing was matched"));
	/* Not a statement. */
	const char *a8[] = {"tally", "match", x->good, "--ledger", x->good, NULL};
	assert_int_equal(tally(x, &r, a8), 2);
	/* No such entry in the store. */
	char leaf[65];
	memset(leaf, 'a', 64);
	leaf[64] = 0;
	const char *init[] = {"tally", "init", "--book", "buyer", NULL};
	assert_int_equal(tally(x, &r, init), 0);
	const char *a9[] = {"tally", "match", leaf, "--ledger", x->good, NULL};
	assert_int_equal(tally(x, &r, a9), 2);
	assert_non_null(strstr(r.err, "no entry with leaf"));
	/* Environment: a ledger that cannot be read. */
	const char *a10[] = {"tally", "match", x->stmt, "--ledger", "/nonexistent.csv", NULL};
	assert_int_equal(tally(x, &r, a10), 3);
	th_run_free(&r);
}

/* The statement as a stored entry, found by its leaf hash. */
static void test_match_leaf(void **state)
{
	struct fx *x = *state;
	struct th_run r = {0};
	char peer[65], origin[TL_ORIGIN_LEN + 1], leaf[65], other[65];
	const char *a1[] = {"tally", "init", "--book", "acme", NULL};
	assert_int_equal(tally(x, &r, a1), 0);
	const char *a2[] = {"tally", "init", "--book", "buyer", NULL};
	assert_int_equal(tally(x, &r, a2), 0);
	assert_true(sscanf(r.out, "%64s", peer) == 1);
	const char *a3[] = {"tally", "feed", "new", "--book", "acme", "--peer", peer, NULL};
	assert_int_equal(tally(x, &r, a3), 0);
	assert_true(sscanf(r.out, "%106s", origin) == 1);
	const char *a4[] = {"tally",     "feed",   "append",  origin, "--kind",
	                    "statement", "--body", STATEMENT, NULL};
	assert_int_equal(tally(x, &r, a4), 0);
	assert_true(sscanf(r.out, "%*s %64s", leaf) == 1);
	const char *a5[] = {"tally", "feed",   "append", origin, "--kind",
	                    "note",  "--body", "{}",     NULL};
	assert_int_equal(tally(x, &r, a5), 0);
	assert_true(sscanf(r.out, "%*s %64s", other) == 1);

	const char *m1[] = {"tally", "match", leaf, "--ledger", x->bad, "--json", NULL};
	assert_int_equal(tally(x, &r, m1), 1);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "dispute")), 2);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(j, "statement"), "leaf")), leaf);
	json_decref(j);
	const char *m2[] = {"tally", "match", leaf, "--ledger", x->good, NULL};
	assert_int_equal(tally(x, &r, m2), 0);
	const char *m3[] = {"tally", "match", other, "--ledger", x->good, NULL};
	assert_int_equal(tally(x, &r, m3), 2);
	assert_non_null(strstr(r.err, "not a statement"));
	th_run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_signs),
	        cmocka_unit_test(test_aliases),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_gb18030),
	        cmocka_unit_test_setup_teardown(test_match_confirm, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_match_dispute, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_match_usage, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_match_leaf, setup, teardown),
	};
	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests_name("ledger", tests, NULL, NULL);
}
