/* test_match.c — statement against ledger matching (node/match.h): every rule
 * on both sides of its boundary, document-number normalisation, sums in both
 * directions and their bound, duplicates, missing lines both ways, the
 * proposal and its reason codes, order independence, and 10,000 statement
 * lines against 50,000 ledger lines. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/match.h"

static int32_t day(const char *s)
{
	int32_t d = 0;
	assert_int_equal(tl_match_date_parse(s, &d), 0);
	return d;
}

static struct tl_match_line mk(const char *date, enum tl_match_type t, const char *doc,
                               int64_t amount)
{
	struct tl_match_line l;
	memset(&l, 0, sizeof l);
	l.date = day(date);
	l.type = t;
	l.amount = amount;
	snprintf(l.doc, sizeof l.doc, "%s", doc);
	return l;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define INV  TL_MATCH_INVOICE
#define PAY  TL_MATCH_PAYMENT
#define CN   TL_MATCH_CREDIT_NOTE
#define DN   TL_MATCH_DEBIT_NOTE

static struct tl_match_report *run(const struct tl_match_line *s, size_t ns,
                                   const struct tl_match_line *l, size_t nl,
                                   const struct tl_match_opts *o)
{
	struct tl_match_report *r = NULL;
	char err[256] = "";
	int rc = tl_match_run(&r, s, ns, l, nl, o, err, sizeof err);
	if (rc)
		fail_msg("tl_match_run: %s: %s", tl_strerror(rc), err);
	assert_non_null(r);
	return r;
}

static size_t count_rule(const struct tl_match_report *r, enum tl_match_rule rule)
{
	size_t n = 0;
	for (size_t k = 0; k < r->n_matched; k++)
		n += r->matched[k].rule == rule;
	return n;
}

/* The group holding the statement line with this document number, or NULL. */
static const struct tl_match_group *group_of(const struct tl_match_report *r, const char *doc)
{
	for (size_t k = 0; k < r->n_matched; k++)
		for (size_t i = 0; i < r->matched[k].n_stmt; i++)
			if (strcmp(r->stmt[r->matched[k].stmt[i]].doc, doc) == 0)
				return &r->matched[k];
	return NULL;
}

/* Reason of the missing line with this number (side 's' or 'l'); 0 if none. */
static int missing(const struct tl_match_report *r, char side, const char *doc)
{
	const struct tl_match_missing *m = side == 's' ? r->missing_in_ledger : r->missing_in_stmt;
	size_t n = side == 's' ? r->n_missing_in_ledger : r->n_missing_in_stmt;
	const struct tl_match_line *base = side == 's' ? r->stmt : r->ledger;
	for (size_t k = 0; k < n; k++)
		if (strcmp(base[m[k].line].doc, doc) == 0)
			return (int)m[k].reason;
	return 0;
}

static char *dump(const struct tl_match_report *r)
{
	json_t *j = NULL;
	assert_int_equal(tl_match_report_json(r, 0, &j), 0);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(s);
	json_decref(j);
	return s;
}

static char *text(const struct tl_match_report *r, unsigned flags)
{
	struct tl_buf b;
	tl_buf_init(&b, 64u << 20);
	assert_int_equal(tl_match_report_text(r, flags, 2, &b), 0);
	char *s = strdup(tl_buf_cstr(&b));
	tl_buf_release(&b);
	return s;
}

/* ------------------------------------------------------------- helpers */

static void test_dates(void **state)
{
	(void)state;
	int32_t d;
	char out[11];
	assert_int_equal(day("1970-01-01"), 0);
	assert_int_equal(day("1970-01-02"), 1);
	assert_int_equal(day("1969-12-31"), -1);
	assert_int_equal(day("2000-03-01") - day("2000-02-28"), 2); /* 2000 is leap */
	assert_int_equal(day("2100-03-01") - day("2100-02-28"), 1); /* 2100 is not */
	assert_int_equal(day("0001-01-01"), TL_MATCH_DATE_MIN);
	assert_int_equal(day("9999-12-31"), TL_MATCH_DATE_MAX);
	const char *bad[] = {"2026-02-29", "2026-13-01", "2026-00-10",  "2026-04-31", "0000-01-01",
	                     "2026-1-01",  "2026/01/01", "2026-01-01T", "",           "20260101x"};
	for (size_t i = 0; i < N(bad); i++)
		assert_int_equal(tl_match_date_parse(bad[i], &d), TL_EFORMAT);
	assert_int_equal(tl_match_date_parse("2024-02-29", &d), 0);
	const char *rt[] = {"2024-02-29", "1999-12-31", "0001-01-01", "9999-12-31", "2026-11-30"};
	for (size_t i = 0; i < N(rt); i++) {
		tl_match_date_format(out, day(rt[i]));
		assert_string_equal(out, rt[i]);
	}
}

static void test_doc_key(void **state)
{
	(void)state;
	char k[TL_MATCH_DOC_MAX + 1];
	const char *same[] = {"INV-00123", "inv 123", "Inv/0123", "INV123", " inv - 00123 "};
	for (size_t i = 0; i < N(same); i++) {
		tl_match_doc_key(k, same[i]);
		assert_string_equal(k, "INV123");
	}
	assert_int_equal(tl_match_doc_key(k, "INV-000"), 4);
	assert_string_equal(k, "INV0");
	/* separators end a numeric part, each part loses its padding */
	const char *parts[] = {"INV-2026-0042", "inv 2026/42", "INV/2026/000042", "Inv2026-42"};
	for (size_t i = 0; i < N(parts); i++) {
		tl_match_doc_key(k, parts[i]);
		assert_string_equal(k, "INV202642");
	}
	tl_match_doc_key(k, "INV20260042"); /* written without separators: one part */
	assert_string_equal(k, "INV20260042");
	tl_match_doc_key(k, "A-0-0-B");
	assert_string_equal(k, "A00B");
	tl_match_doc_key(k, "A-007-B-0009");
	assert_string_equal(k, "A7B9");
	tl_match_doc_key(k, "发票-0007");
	assert_string_equal(k, "发票7");
	assert_int_equal(tl_match_doc_key(k, " - / "), 0);
	tl_match_doc_key(k, "INV-1234");
	assert_string_not_equal(k, "INV123");
	char longdoc[200];
	memset(longdoc, 'a', sizeof longdoc - 1);
	longdoc[sizeof longdoc - 1] = 0;
	assert_int_equal(tl_match_doc_key(k, longdoc), TL_MATCH_DOC_MAX);

	/* Through the matcher: formatting differences and a date far apart. */
	struct tl_match_line s[] = {mk("2026-11-03", INV, "INV-00042", 10000),
	                            mk("2026-11-04", INV, "SO/2026/7", 2000),
	                            mk("2026-11-03", INV, "INV-2026-0102", 350050)};
	struct tl_match_line l[] = {mk("2026-12-20", INV, "inv 42", 10000),
	                            mk("2026-11-04", INV, "SO2026007", 2000),
	                            mk("2026-11-04", INV, "INV/2026/102", 305050)};
	struct tl_match_report *r = run(s, N(s), l, N(l), NULL);
	/* a mistyped amount on a differently written number: differs, not missing */
	assert_int_equal(r->n_differs, 1);
	assert_string_equal(r->ledger[r->differs[0].ledger].doc, "INV/2026/102");
	assert_int_equal(r->differs[0].difference, 45000);
	assert_int_equal(count_rule(r, TL_MATCH_BY_DOC), 1);
	assert_non_null(group_of(r, "INV-00042"));
	assert_int_equal(group_of(r, "INV-00042")->rule, TL_MATCH_BY_DOC);
	/* "SO20267" vs "SO2026007": different numbers; they still match by amount. */
	assert_int_equal(group_of(r, "SO/2026/7")->rule, TL_MATCH_BY_AMOUNT);
	tl_match_report_free(r);
}

/* ------------------------------------------------------------- rule a */

static void test_doc_exact_and_differs(void **state)
{
	(void)state;
	struct tl_match_line s[] = {mk("2026-11-03", INV, "INV-1", 100000),
	                            mk("2026-11-05", INV, "INV-2", 120000)};
	struct tl_match_line l[] = {mk("2026-11-04", INV, "INV-1", 100000),
	                            mk("2026-11-05", INV, "INV-2", 115000)};
	struct tl_match_report *r = run(s, N(s), l, N(l), NULL);
	assert_int_equal(r->n_matched, 1);
	assert_int_equal(r->matched[0].rule, TL_MATCH_BY_DOC);
	assert_int_equal(r->n_differs, 1);
	const struct tl_match_diff *d = &r->differs[0];
	assert_string_equal(r->stmt[d->stmt].doc, "INV-2");
	assert_string_equal(r->ledger[d->ledger].doc, "INV-2");
	assert_int_equal(d->stmt_amount, 120000);
	assert_int_equal(d->ledger_amount, 115000);
	assert_int_equal(d->difference, 5000);
	assert_int_equal(r->n_missing_in_ledger, 0);
	assert_int_equal(r->n_missing_in_stmt, 0);
	assert_int_equal(r->proposal, TL_MATCH_DISPUTE);
	assert_int_equal(r->n_dispute, 1);
	assert_string_equal(r->dispute[0].doc, "INV-2");
	assert_int_equal(r->dispute[0].their_amount, 120000);
	assert_int_equal(r->dispute[0].our_amount, 115000);
	assert_int_equal(r->dispute[0].reason, TL_MATCH_R_PRICE);
	assert_int_equal(r->totals.differs_sum, 5000);
	assert_int_equal(r->totals.difference, 5000);
	tl_match_report_free(r);
}

static void test_doc_tolerance_boundary(void **state)
{
	(void)state;
	struct tl_match_opts o;
	tl_match_opts_init(&o);
	o.tolerance = 5;
	/* exactly the tolerance apart: matched */
	struct tl_match_line s[] = {mk("2026-11-03", INV, "INV-1", 1005)};
	struct tl_match_line l[] = {mk("2026-11-03", INV, "INV-1", 1000)};
	struct tl_match_report *r = run(s, 1, l, 1, &o);
	assert_int_equal(r->n_matched, 1);
	assert_int_equal(r->n_differs, 0);
	/* matched, but the balances differ by 5: a balance-only dispute */
	assert_int_equal(r->proposal, TL_MATCH_DISPUTE);
	assert_int_equal(r->n_dispute, 0);
	assert_false(r->totals.balanced);
	tl_match_report_free(r);
	/* one minor unit over: differs */
	s[0].amount = 1006;
	r = run(s, 1, l, 1, &o);
	assert_int_equal(r->n_matched, 0);
	assert_int_equal(r->n_differs, 1);
	assert_int_equal(r->differs[0].difference, 6);
	tl_match_report_free(r);
	/* tolerance 0 (default): one unit differs */
	s[0].amount = 1001;
	r = run(s, 1, l, 1, NULL);
	assert_int_equal(r->n_differs, 1);
	tl_match_report_free(r);
}

/* Equal amounts pair before near ones; a number stays within its family. */
static void test_doc_pairing_and_family(void **state)
{
	(void)state;
	struct tl_match_opts o;
	tl_match_opts_init(&o);
	o.tolerance = 5;
	/* statement 100 (INV-9) could take 98 within tolerance, but the exact 100
	 * goes first and 98 is left over. */
	struct tl_match_line s[] = {mk("2026-11-03", INV, "INV-9", 100),
	                            mk("2026-11-10", PAY, "BANK-77", -5000)};
	struct tl_match_line l[] = {mk("2026-11-03", INV, "INV-9", 98),
	                            mk("2026-11-03", INV, "INV-9", 100),
	                            /* the customer named its payment after the invoice */
	                            mk("2026-11-11", PAY, "INV-9", -5000)};
	struct tl_match_report *r = run(s, N(s), l, N(l), &o);
	const struct tl_match_group *g = group_of(r, "INV-9");
	assert_non_null(g);
	assert_int_equal(g->rule, TL_MATCH_BY_DOC);
	assert_int_equal(r->ledger[g->ledger[0]].amount, 100);
	g = group_of(r, "BANK-77");
	assert_non_null(g);
	assert_int_equal(g->rule, TL_MATCH_BY_AMOUNT);
	assert_int_equal(r->ledger[g->ledger[0]].type, PAY);
	/* the extra ledger INV-9 (98) is held by its number: in the ledger only */
	assert_int_equal(r->n_missing_in_stmt, 1);
	assert_int_equal(r->ledger[r->missing_in_stmt[0].line].amount, 98);
	assert_int_equal(r->missing_in_stmt[0].reason, TL_MATCH_R_OTHER);
	tl_match_report_free(r);
}

/* ------------------------------------------------------------- rule b */

static void test_amount_window_boundary(void **state)
{
	(void)state;
	struct tl_match_line s[] = {mk("2026-11-10", PAY, "RCPT-1", -50000)};
	struct tl_match_line l[] = {mk("2026-11-13", PAY, "PAY-1", -50000)};
	struct tl_match_report *r = run(s, 1, l, 1, NULL); /* window 3 */
	assert_int_equal(r->n_matched, 1);
	assert_int_equal(r->matched[0].rule, TL_MATCH_BY_AMOUNT);
	assert_int_equal(r->proposal, TL_MATCH_CONFIRM);
	tl_match_report_free(r);
	l[0] = mk("2026-11-06", PAY, "PAY-1", -50000); /* 4 days earlier */
	r = run(s, 1, l, 1, NULL);
	assert_int_equal(r->n_matched, 0);
	assert_int_equal(r->n_missing_in_ledger, 1);
	assert_int_equal(r->n_missing_in_stmt, 1);
	tl_match_report_free(r);
	struct tl_match_opts o;
	tl_match_opts_init(&o);
	o.window = 4;
	r = run(s, 1, l, 1, &o);
	assert_int_equal(r->n_matched, 1);
	tl_match_report_free(r);
	o.window = 0; /* same day only */
	l[0] = mk("2026-11-10", PAY, "PAY-1", -50000);
	r = run(s, 1, l, 1, &o);
	assert_int_equal(r->n_matched, 1);
	tl_match_report_free(r);
}

static void test_amount_tolerance_boundary(void **state)
{
	(void)state;
	struct tl_match_opts o;
	tl_match_opts_init(&o);
	o.tolerance = 10;
	struct tl_match_line s[] = {mk("2026-11-10", PAY, "RCPT-1", -50000)};
	struct tl_match_line l[] = {mk("2026-11-11", PAY, "PAY-1", -49990)};
	struct tl_match_report *r = run(s, 1, l, 1, &o);
	assert_int_equal(r->n_matched, 1);
	assert_int_equal(r->matched[0].rule, TL_MATCH_BY_AMOUNT);
	tl_match_report_free(r);
	l[0].amount = -50010; /* the other direction, exactly 10 */
	r = run(s, 1, l, 1, &o);
	assert_int_equal(r->n_matched, 1);
	tl_match_report_free(r);
	l[0].amount = -49989; /* 11 over */
	r = run(s, 1, l, 1, &o);
	assert_int_equal(r->n_matched, 0);
	tl_match_report_free(r);
	l[0].amount = -50011;
	r = run(s, 1, l, 1, &o);
	assert_int_equal(r->n_matched, 0);
	tl_match_report_free(r);
}

static void test_amount_closest_date_then_doc(void **state)
{
	(void)state;
	/* -500 on the 10th: candidates on the 8th (2 days) and 11th (1 day). */
	struct tl_match_line s[] = {mk("2026-11-10", PAY, "R1", -500)};
	struct tl_match_line l[] = {mk("2026-11-08", PAY, "P-early", -500),
	                            mk("2026-11-11", PAY, "P-late", -500)};
	struct tl_match_report *r = run(s, 1, l, N(l), NULL);
	assert_int_equal(r->n_matched, 1);
	assert_string_equal(r->ledger[r->matched[0].ledger[0]].doc, "P-late");
	assert_int_equal(missing(r, 'l', "P-early"), TL_MATCH_R_PAYMENT_NOT_RECORDED);
	tl_match_report_free(r);
	/* same distance, same amount: the lower document number wins */
	struct tl_match_line l2[] = {mk("2026-11-11", PAY, "PAY-B", -500),
	                             mk("2026-11-11", PAY, "PAY-A", -500)};
	r = run(s, 1, l2, N(l2), NULL);
	assert_string_equal(r->ledger[r->matched[0].ledger[0]].doc, "PAY-A");
	tl_match_report_free(r);
	/* as close before as after: the lower document number, not the date */
	struct tl_match_line l4[] = {mk("2026-11-09", PAY, "PAY-Z", -500),
	                             mk("2026-11-11", PAY, "PAY-A", -500)};
	r = run(s, 1, l4, N(l4), NULL);
	assert_string_equal(r->ledger[r->matched[0].ledger[0]].doc, "PAY-A");
	tl_match_report_free(r);
	l4[1] = mk("2026-11-11", PAY, "PAY-ZZ", -500);
	r = run(s, 1, l4, N(l4), NULL);
	assert_string_equal(r->ledger[r->matched[0].ledger[0]].doc, "PAY-Z");
	tl_match_report_free(r);
	/* globally closest first: S1 (10th) could take L (11th) at 1 day, but S2
	 * (11th) is 0 days from it; S1 then takes the one on the 9th. */
	struct tl_match_line s3[] = {mk("2026-11-10", PAY, "S1", -700),
	                             mk("2026-11-11", PAY, "S2", -700)};
	struct tl_match_line l3[] = {mk("2026-11-11", PAY, "L11", -700),
	                             mk("2026-11-09", PAY, "L09", -700)};
	r = run(s3, 2, l3, 2, NULL);
	assert_int_equal(r->n_matched, 2);
	assert_string_equal(r->ledger[group_of(r, "S2")->ledger[0]].doc, "L11");
	assert_string_equal(r->ledger[group_of(r, "S1")->ledger[0]].doc, "L09");
	tl_match_report_free(r);
}

static void test_amount_type_family(void **state)
{
	(void)state;
	struct tl_match_line s[] = {mk("2026-11-10", INV, "A", 3000),
	                            mk("2026-11-10", INV, "B", 4000),
	                            mk("2026-11-10", CN, "C", -200)};
	struct tl_match_line l[] = {mk("2026-11-10", DN, "X", 3000), /* same family */
	                            mk("2026-11-10", TL_MATCH_ADJUSTMENT, "Y", 4000),
	                            mk("2026-11-10", PAY, "Z", -200)};
	struct tl_match_report *r = run(s, N(s), l, N(l), NULL);
	assert_int_equal(r->n_matched, 1);
	assert_non_null(group_of(r, "A"));
	assert_int_equal(missing(r, 's', "B"), TL_MATCH_R_NOT_RECEIVED);
	assert_int_equal(missing(r, 's', "C"), TL_MATCH_R_OTHER);
	assert_int_equal(missing(r, 'l', "Y"), TL_MATCH_R_OTHER);
	assert_int_equal(missing(r, 'l', "Z"), TL_MATCH_R_PAYMENT_NOT_RECORDED);
	tl_match_report_free(r);
}

/* ------------------------------------------------------------- rule c */

static void test_many_to_one(void **state)
{
	(void)state;
	/* One payment received for three invoices; the customer booked one
	 * payment line per invoice, named after it. */
	struct tl_match_line s[] = {
	        mk("2026-11-01", INV, "INV-1", 100000), mk("2026-11-02", INV, "INV-2", 120000),
	        mk("2026-11-03", INV, "INV-3", 80000), mk("2026-11-20", PAY, "RCPT-77", -300000)};
	struct tl_match_line l[] = {
	        mk("2026-11-01", INV, "INV-1", 100000),  mk("2026-11-02", INV, "INV-2", 120000),
	        mk("2026-11-03", INV, "INV-3", 80000),   mk("2026-11-19", PAY, "INV-1", -100000),
	        mk("2026-11-19", PAY, "INV-2", -120000), mk("2026-11-19", PAY, "INV-3", -80000)};
	struct tl_match_report *r = run(s, N(s), l, N(l), NULL);
	assert_int_equal(count_rule(r, TL_MATCH_BY_DOC), 3);
	const struct tl_match_group *g = group_of(r, "RCPT-77");
	assert_non_null(g);
	assert_int_equal(g->rule, TL_MATCH_BY_SUM_LEDGER);
	assert_int_equal(g->n_stmt, 1);
	assert_int_equal(g->n_ledger, 3);
	assert_int_equal(g->stmt_sum, -300000);
	assert_int_equal(g->ledger_sum, -300000);
	for (size_t i = 1; i < g->n_ledger; i++)
		assert_true(g->ledger[i - 1] < g->ledger[i]);
	assert_int_equal(r->totals.matched_stmt_lines, 4);
	assert_int_equal(r->totals.matched_ledger_lines, 6);
	assert_int_equal(r->proposal, TL_MATCH_CONFIRM);
	tl_match_report_free(r);

	/* within the tolerance: exactly reached vs one unit over */
	struct tl_match_opts o;
	tl_match_opts_init(&o);
	o.tolerance = 3;
	s[3].amount = -300003;
	r = run(s, N(s), l, N(l), &o);
	assert_int_equal(group_of(r, "RCPT-77")->rule, TL_MATCH_BY_SUM_LEDGER);
	tl_match_report_free(r);
	s[3].amount = -300004;
	r = run(s, N(s), l, N(l), &o);
	assert_null(group_of(r, "RCPT-77"));
	assert_int_equal(r->n_missing_in_stmt, 3);
	tl_match_report_free(r);
}

static void test_one_to_many(void **state)
{
	(void)state;
	/* The customer paid one invoice once; the supplier received it in three
	 * instalments (it was split by the bank). */
	struct tl_match_line s[] = {
	        mk("2026-11-05", INV, "INV-5", 250000), mk("2026-11-21", PAY, "R-1", -100000),
	        mk("2026-11-22", PAY, "R-2", -100000), mk("2026-11-23", PAY, "R-3", -50000)};
	struct tl_match_line l[] = {mk("2026-11-05", INV, "INV-5", 250000),
	                            mk("2026-11-20", PAY, "PAY-5", -250000)};
	struct tl_match_report *r = run(s, N(s), l, N(l), NULL);
	const struct tl_match_group *g = group_of(r, "R-2");
	assert_non_null(g);
	assert_int_equal(g->rule, TL_MATCH_BY_SUM_STATEMENT);
	assert_int_equal(g->n_stmt, 3);
	assert_int_equal(g->n_ledger, 1);
	assert_ptr_equal(group_of(r, "R-1"), g);
	assert_ptr_equal(group_of(r, "R-3"), g);
	assert_int_equal(r->proposal, TL_MATCH_CONFIRM);
	tl_match_report_free(r);
}

static void test_sum_window_and_switch(void **state)
{
	(void)state;
	struct tl_match_line s[] = {mk("2026-11-20", PAY, "RCPT-1", -600)};
	struct tl_match_line l[] = {mk("2026-11-17", PAY, "P1", -100),  /* 3 days: in */
	                            mk("2026-11-23", PAY, "P2", -200),  /* 3 days: in */
	                            mk("2026-11-16", PAY, "P3", -300)}; /* 4 days: out */
	struct tl_match_report *r = run(s, 1, l, N(l), NULL);
	assert_int_equal(r->n_matched, 0);
	assert_int_equal(r->n_missing_in_stmt, 3);
	tl_match_report_free(r);
	l[2] = mk("2026-11-17", PAY, "P3", -300);
	r = run(s, 1, l, N(l), NULL);
	assert_int_equal(r->n_matched, 1);
	assert_int_equal(r->matched[0].n_ledger, 3);
	tl_match_report_free(r);
	struct tl_match_opts o;
	tl_match_opts_init(&o);
	o.many_to_one = 0;
	r = run(s, 1, l, N(l), &o);
	assert_int_equal(r->n_matched, 0);
	tl_match_report_free(r);
	/* signs never mix: +100 cannot make up for part of a payment */
	struct tl_match_line l2[] = {mk("2026-11-20", PAY, "P1", -700),
	                             mk("2026-11-20", PAY, "P2", 100)};
	r = run(s, 1, l2, N(l2), NULL);
	assert_int_equal(r->n_matched, 0);
	tl_match_report_free(r);
}

static void test_subset_cap(void **state)
{
	(void)state;
	/* 25 equal payments of -100 near a -2,500 receipt: only the 20 closest
	 * are candidates, so 2,500 is out of reach and nothing is grouped. */
	struct tl_match_line s[1], l[25];
	char doc[32];
	s[0] = mk("2026-11-20", PAY, "RCPT-25", -2500);
	for (int i = 0; i < 25; i++) {
		snprintf(doc, sizeof doc, "P%02d", i);
		l[i] = mk("2026-11-20", PAY, doc, -100);
	}
	struct tl_match_report *r = run(s, 1, l, 25, NULL);
	assert_int_equal(r->n_matched, 0);
	assert_int_equal(r->n_missing_in_stmt, 25);
	assert_int_equal(r->n_search_truncated, 0);
	tl_match_report_free(r);
	/* -1,050 is below the candidates' total but no count of -100s makes it:
	 * equal amounts are tried once per level, so this is a short search
	 * rather than C(20, 10) of them. */
	s[0].amount = -1050;
	r = run(s, 1, l, 25, NULL);
	assert_int_equal(r->n_matched, 0);
	assert_int_equal(r->n_search_truncated, 0);
	tl_match_report_free(r);
	/* -1,500 is within reach: 15 lines, the first 15 in canonical order */
	s[0].amount = -1500;
	r = run(s, 1, l, 25, NULL);
	assert_int_equal(r->n_matched, 1);
	assert_int_equal(r->matched[0].n_ledger, 15);
	assert_int_equal(r->n_missing_in_stmt, 10);
	assert_string_equal(r->ledger[r->missing_in_stmt[0].line].doc, "P15");
	tl_match_report_free(r);
	/* A hard instance: 20 distinct even amounts, an odd target. No subset
	 * works; the search stops at its bound and says so. */
	struct tl_match_line l2[20];
	s[0].amount = -1000001;
	for (int i = 0; i < 20; i++) {
		snprintf(doc, sizeof doc, "Q%02d", i);
		l2[i] = mk("2026-11-20", PAY, doc, -(100000 + 2 * i));
	}
	r = run(s, 1, l2, 20, NULL);
	assert_int_equal(r->n_matched, 0);
	assert_int_equal(r->n_search_truncated, 1);
	tl_match_report_free(r);
}

/* ------------------------------------------------------------- rule d, reasons */

static void test_duplicates(void **state)
{
	(void)state;
	struct tl_match_line s[] = {mk("2026-11-03", INV, "INV-5", 7000),
	                            mk("2026-11-04", INV, "inv-005", 7000)};
	struct tl_match_line l[] = {mk("2026-11-03", INV, "INV-5", 7000)};
	struct tl_match_report *r = run(s, 2, l, 1, NULL);
	assert_int_equal(r->n_matched, 1);
	assert_int_equal(r->n_missing_in_ledger, 1);
	assert_int_equal(r->missing_in_ledger[0].reason, TL_MATCH_R_DUPLICATE);
	assert_int_equal(r->proposal, TL_MATCH_DISPUTE);
	assert_int_equal(r->n_dispute, 1);
	assert_int_equal(r->dispute[0].reason, TL_MATCH_R_DUPLICATE);
	assert_int_equal(r->dispute[0].their_amount, 7000);
	assert_int_equal(r->dispute[0].our_amount, 0);
	tl_match_report_free(r);
	/* neither copy in the ledger: the first is not received, the second a duplicate */
	struct tl_match_line l2[] = {mk("2026-11-30", INV, "OTHER", 1)};
	r = run(s, 2, l2, 1, NULL);
	assert_int_equal(r->n_missing_in_ledger, 2);
	assert_string_equal(r->stmt[r->missing_in_ledger[0].line].doc, "INV-5");
	assert_int_equal(r->missing_in_ledger[0].reason, TL_MATCH_R_NOT_RECEIVED);
	assert_int_equal(r->missing_in_ledger[1].reason, TL_MATCH_R_DUPLICATE);
	tl_match_report_free(r);
	/* the same number on an invoice and a payment is not a duplicate */
	struct tl_match_line s3[] = {mk("2026-11-03", INV, "INV-5", 7000),
	                             mk("2026-11-25", PAY, "INV-5", -7000)};
	r = run(s3, 2, l2, 1, NULL);
	assert_int_equal(missing(r, 's', "INV-5"), TL_MATCH_R_NOT_RECEIVED);
	assert_int_equal(r->missing_in_ledger[1].reason, TL_MATCH_R_OTHER);
	tl_match_report_free(r);
}

static void test_missing_both_ways(void **state)
{
	(void)state;
	struct tl_match_line s[] = {
	        mk("2026-11-03", INV, "INV-1", 1000), mk("2026-11-04", INV, "INV-2", 2000),
	        mk("2026-11-05", DN, "DN-1", 300), mk("2026-11-06", PAY, "RCPT-1", -900),
	        mk("2026-11-07", CN, "CN-1", -50)};
	struct tl_match_line l[] = {mk("2026-11-03", INV, "INV-1", 1000),
	                            mk("2026-11-15", PAY, "PAY-9", -1500),
	                            mk("2026-11-16", INV, "INV-8", 4000)};
	struct tl_match_report *r = run(s, N(s), l, N(l), NULL);
	assert_int_equal(r->n_matched, 1);
	assert_int_equal(r->n_missing_in_ledger, 4);
	assert_int_equal(r->n_missing_in_stmt, 2);
	assert_int_equal(missing(r, 's', "INV-2"), TL_MATCH_R_NOT_RECEIVED);
	assert_int_equal(missing(r, 's', "DN-1"), TL_MATCH_R_NOT_RECEIVED);
	assert_int_equal(missing(r, 's', "RCPT-1"), TL_MATCH_R_OTHER);
	assert_int_equal(missing(r, 's', "CN-1"), TL_MATCH_R_OTHER);
	assert_int_equal(missing(r, 'l', "PAY-9"), TL_MATCH_R_PAYMENT_NOT_RECORDED);
	assert_int_equal(missing(r, 'l', "INV-8"), TL_MATCH_R_OTHER);
	assert_int_equal(r->totals.missing_in_ledger_sum, 2000 + 300 - 900 - 50);
	assert_int_equal(r->totals.missing_in_stmt_sum, -1500 + 4000);
	/* dispute lines: statement-only lines first (in date order), then ledger-only */
	assert_int_equal(r->n_dispute, 6);
	assert_string_equal(r->dispute[0].doc, "INV-2");
	assert_int_equal(r->dispute[0].their_amount, 2000);
	assert_string_equal(r->dispute[4].doc, "PAY-9");
	assert_int_equal(r->dispute[4].their_amount, 0);
	assert_int_equal(r->dispute[4].our_amount, -1500);
	assert_int_equal(r->dispute[4].reason, TL_MATCH_R_PAYMENT_NOT_RECORDED);
	tl_match_report_free(r);
	/* empty sides */
	r = run(s, N(s), NULL, 0, NULL);
	assert_int_equal(r->n_missing_in_ledger, N(s));
	tl_match_report_free(r);
	r = run(NULL, 0, NULL, 0, NULL);
	assert_int_equal(r->proposal, TL_MATCH_CONFIRM);
	tl_match_report_free(r);
}

static void test_cut_off_and_period(void **state)
{
	(void)state;
	struct tl_match_opts o;
	tl_match_opts_init(&o);
	o.has_period = 1;
	o.period_from = day("2026-11-01");
	o.period_to = day("2026-11-30");
	struct tl_match_line s[] = {mk("2026-11-10", INV, "INV-1", 1000),
	                            mk("2026-12-01", INV, "INV-2", 2000)}; /* after the period */
	struct tl_match_line l[] = {
	        mk("2026-11-10", INV, "INV-1", 1000),
	        mk("2026-12-03", PAY, "PAY-1", -500),  /* 3 days after: cut-off */
	        mk("2026-12-04", PAY, "PAY-2", -600),  /* 4 days after: next period */
	        mk("2026-10-01", INV, "INV-0", 9000),  /* long before: previous period */
	        mk("2026-11-29", PAY, "PAY-3", -700)}; /* inside: not recorded */
	struct tl_match_report *r = run(s, N(s), l, N(l), &o);
	assert_int_equal(missing(r, 's', "INV-2"), TL_MATCH_R_CUT_OFF);
	assert_int_equal(missing(r, 'l', "PAY-1"), TL_MATCH_R_CUT_OFF);
	assert_int_equal(missing(r, 'l', "PAY-2"), 0);
	assert_int_equal(missing(r, 'l', "INV-0"), 0);
	assert_int_equal(missing(r, 'l', "PAY-3"), TL_MATCH_R_PAYMENT_NOT_RECORDED);
	assert_int_equal(r->n_ledger_out_of_period, 2);
	assert_int_equal(r->n_missing_in_stmt, 2);
	assert_int_equal(r->totals.ledger_sum, 1000 - 500 - 700);
	tl_match_report_free(r);
}

static void test_proposal(void **state)
{
	(void)state;
	struct tl_match_line s[] = {mk("2026-11-03", INV, "INV-1", 1000),
	                            mk("2026-11-20", PAY, "RCPT-1", -1000)};
	struct tl_match_line l[] = {mk("2026-11-03", INV, "INV-1", 1000),
	                            mk("2026-11-21", PAY, "PAY-1", -1000)};
	struct tl_match_opts o;
	tl_match_opts_init(&o);
	o.stmt_opening = 5000;
	o.ledger_opening = 5000;
	struct tl_match_report *r = run(s, 2, l, 2, &o);
	assert_int_equal(r->proposal, TL_MATCH_CONFIRM);
	assert_int_equal(r->n_dispute, 0);
	assert_true(r->totals.balanced);
	assert_int_equal(r->totals.stmt_closing, 5000);
	tl_match_report_free(r);
	/* every line matched but the opening balances differ */
	o.ledger_opening = 4000;
	r = run(s, 2, l, 2, &o);
	assert_int_equal(r->proposal, TL_MATCH_DISPUTE);
	assert_int_equal(r->n_dispute, 0);
	assert_int_equal(r->totals.difference, 1000);
	tl_match_report_free(r);
	/* each kind of problem with its reason code, in dispute order */
	struct tl_match_line s2[] = {mk("2026-11-03", INV, "INV-1", 1100), /* price */
	                             mk("2026-11-04", INV, "INV-2", 500),  /* not received */
	                             mk("2026-11-05", INV, "INV-2", 500)}; /* duplicate */
	struct tl_match_line l2[] = {mk("2026-11-03", INV, "INV-1", 1000),
	                             mk("2026-11-21", PAY, "PAY-1", -800)}; /* not recorded */
	tl_match_opts_init(&o);
	r = run(s2, N(s2), l2, N(l2), &o);
	assert_int_equal(r->proposal, TL_MATCH_DISPUTE);
	assert_int_equal(r->n_dispute, 4);
	const int want[] = {TL_MATCH_R_PRICE, TL_MATCH_R_NOT_RECEIVED, TL_MATCH_R_DUPLICATE,
	                    TL_MATCH_R_PAYMENT_NOT_RECORDED};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(r->dispute[i].reason, want[i]);
	assert_string_equal(tl_match_reason_name(TL_MATCH_R_PAYMENT_NOT_RECORDED),
	                    "payment_not_recorded");
	assert_string_equal(tl_match_reason_name(TL_MATCH_R_CUT_OFF), "cut_off");
	tl_match_report_free(r);
}

/* ------------------------------------------------------------- determinism */

static uint64_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static void shuffle(struct tl_match_line *v, size_t n, uint64_t *seed)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(rnd(seed) % i);
		struct tl_match_line t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* A bit of everything, with ties that only the tie-breaks settle. */
static size_t mixed(struct tl_match_line *s, struct tl_match_line *l, size_t *nl)
{
	size_t ns = 0, k = 0;
	char doc[32], date[32];
	for (int i = 0; i < 12; i++) {
		snprintf(date, sizeof date, "2026-11-%02d", 1 + i);
		snprintf(doc, sizeof doc, "INV-%04d", i);
		s[ns++] = mk(date, INV, doc, 1000 + 100 * i);
		snprintf(doc, sizeof doc, "inv %d", i);
		if (i % 4 != 3)
			l[k++] = mk(date, INV, doc, 1000 + 100 * i + (i % 4 == 2 ? 7 : 0));
	}
	/* same amount, same day, several payments each side */
	for (int i = 0; i < 4; i++) {
		snprintf(doc, sizeof doc, "R%d", i);
		s[ns++] = mk("2026-11-15", PAY, doc, -2000);
		snprintf(doc, sizeof doc, "P%d", i);
		l[k++] = mk(i < 2 ? "2026-11-15" : "2026-11-17", PAY, doc, -2000);
	}
	l[k++] = mk("2026-11-16", PAY, "P9", -2000);
	/* sums both ways */
	s[ns++] = mk("2026-11-25", PAY, "RG", -3000);
	l[k++] = mk("2026-11-24", PAY, "G1", -1000);
	l[k++] = mk("2026-11-25", PAY, "G2", -1000);
	l[k++] = mk("2026-11-26", PAY, "G3", -1000);
	l[k++] = mk("2026-11-26", PAY, "G4", -1000);
	l[k++] = mk("2026-11-28", PAY, "LB", -5000);
	s[ns++] = mk("2026-11-27", PAY, "S1", -2500);
	s[ns++] = mk("2026-11-28", PAY, "S2", -2500);
	s[ns++] = mk("2026-11-28", PAY, "S3", -2500);
	/* duplicates and strays */
	s[ns++] = mk("2026-11-02", INV, "INV-0001", 1100);
	s[ns++] = mk("2026-11-29", TL_MATCH_ADJUSTMENT, "ADJ", 5);
	l[k++] = mk("2026-11-29", CN, "CN-1", -40);
	*nl = k;
	return ns;
}

static void test_determinism(void **state)
{
	(void)state;
	struct tl_match_line s[64], l[64];
	size_t nl, ns = mixed(s, l, &nl);
	struct tl_match_report *r = run(s, ns, l, nl, NULL);
	char *want = dump(r), *want_txt = text(r, 0);
	/* sanity: every rule took part */
	assert_true(count_rule(r, TL_MATCH_BY_DOC) > 0);
	assert_true(count_rule(r, TL_MATCH_BY_AMOUNT) > 0);
	assert_int_equal(count_rule(r, TL_MATCH_BY_SUM_LEDGER), 1);
	assert_int_equal(count_rule(r, TL_MATCH_BY_SUM_STATEMENT), 1);
	assert_true(r->n_differs > 0 && r->n_missing_in_ledger > 0 && r->n_missing_in_stmt > 0);
	tl_match_report_free(r);
	uint64_t seed = 42;
	for (int round = 0; round < 20; round++) {
		shuffle(s, ns, &seed);
		shuffle(l, nl, &seed);
		r = run(s, ns, l, nl, NULL);
		char *got = dump(r), *got_txt = text(r, 0);
		assert_string_equal(got, want);
		assert_string_equal(got_txt, want_txt);
		free(got);
		free(got_txt);
		tl_match_report_free(r);
	}
	free(want);
	free(want_txt);
}

/* ------------------------------------------------------------- I/O */

static void test_json_loader(void **state)
{
	(void)state;
	const char *js =
	        "{\"id\": \"ST-1\", \"period\": {\"from\": \"2026-11-01\", \"to\": "
	        "\"2026-11-30\"}, \"opening\": 12500, \"lines\": ["
	        "{\"date\": \"2026-11-03\", \"type\": \"invoice\", \"doc\": \"INV-1\", "
	        "\"amount\": 100000, \"due\": \"2026-12-03\", \"memo\": \"goods\"},"
	        "{\"date\": 20412, \"type\": \"payment\", \"doc\": \"R-1\", \"amount\": -5, "
	        "\"ref\": 7}]}";
	json_error_t je;
	json_t *j = json_loads(js, 0, &je);
	assert_non_null(j);
	struct tl_match_line *v = NULL;
	size_t n = 0;
	char err[256];
	assert_int_equal(tl_match_lines_from_json(j, 0, &v, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].date, day("2026-11-03"));
	assert_int_equal(v[0].type, INV);
	assert_string_equal(v[0].doc, "INV-1");
	assert_int_equal(v[0].amount, 100000);
	assert_int_equal(v[1].date, 20412);
	assert_int_equal(v[1].ref, 7);
	free(v);
	assert_int_equal(tl_match_lines_from_json(json_object_get(j, "lines"), TL_MATCH_LOAD_NEGATE,
	                                          &v, &n, err, sizeof err),
	                 0);
	assert_int_equal(v[0].amount, -100000);
	assert_int_equal(v[1].amount, 5);
	free(v);
	struct tl_match_opts o;
	tl_match_opts_init(&o);
	assert_int_equal(tl_match_opts_from_statement(&o, j, err, sizeof err), 0);
	assert_true(o.has_period);
	assert_int_equal(o.period_from, day("2026-11-01"));
	assert_int_equal(o.period_to, day("2026-11-30"));
	assert_int_equal(o.stmt_opening, 12500);
	json_decref(j);

	static const struct {
		const char *js, *msg;
		int rc;
	} bad[] = {
	        {"{}", "expected an array", TL_EFORMAT},
	        {"[1]", "lines[0]: not an object", TL_EFORMAT},
	        {"[{\"date\": \"2026-02-30\", \"type\": \"invoice\", \"doc\": \"a\", \"amount\": "
	         "1}]",
	         "lines[0].date", TL_EFORMAT},
	        {"[{\"date\": \"2026-02-03\", \"type\": \"bill\", \"doc\": \"a\", \"amount\": 1}]",
	         "unknown type \"bill\"", TL_EFORMAT},
	        {"[{\"date\": \"2026-02-03\", \"type\": \"invoice\", \"doc\": \"a\", \"amount\": "
	         "1.5}]",
	         "lines[0].amount", TL_EFORMAT},
	        {"[{\"date\": \"2026-02-03\", \"type\": \"invoice\", \"doc\": \"a\", \"amount\": "
	         "1000000000001}]",
	         "out of range", TL_EFORMAT},
	        {"[{\"date\": \"2026-02-03\", \"type\": \"invoice\", \"doc\": \"a\\u0007\", "
	         "\"amount\": 1}]",
	         "control character", TL_EFORMAT},
	        {"[{\"date\": \"2026-02-03\", \"type\": \"invoice\", \"doc\": "
	         "\"0123456789012345678901234567890123456789012345678901234567890123\", "
	         "\"amount\": 1}]",
	         "longer than 63", TL_ETOOBIG},
	        {"[{\"date\": \"2026-02-03\", \"type\": \"invoice\", \"amount\": 1}]",
	         "lines[0].doc", TL_EFORMAT},
	        {"[{\"date\": \"2026-02-03\", \"type\": \"invoice\", \"doc\": \"a\", \"amount\": "
	         "1, "
	         "\"ref\": -1}]",
	         "lines[0].ref", TL_EFORMAT},
	};
	for (size_t i = 0; i < N(bad); i++) {
		j = json_loads(bad[i].js, 0, &je);
		assert_non_null(j);
		err[0] = 0;
		v = (struct tl_match_line *)&n; /* must be reset to NULL */
		assert_int_equal(tl_match_lines_from_json(j, 0, &v, &n, err, sizeof err),
		                 bad[i].rc);
		assert_null(v);
		assert_int_equal(n, 0);
		if (!strstr(err, bad[i].msg))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].msg);
		json_decref(j);
	}
}

static void test_renderings(void **state)
{
	(void)state;
	struct tl_match_line s[] = {
	        mk("2026-11-03", INV, "INV-1", 123456), mk("2026-11-04", INV, "INV-2", 50000),
	        mk("2026-11-20", PAY, "RCPT-1", -300000), mk("2026-11-21", INV, "发票-7", 100)};
	struct tl_match_line l[] = {
	        mk("2026-11-03", INV, "INV-1", 120000), mk("2026-11-19", PAY, "P-1", -100000),
	        mk("2026-11-19", PAY, "P-2", -200000), mk("2026-11-21", INV, "发票7", 100)};
	s[0].ref = 17;
	struct tl_match_report *r = run(s, N(s), l, N(l), NULL);
	json_t *j = NULL;
	assert_int_equal(tl_match_report_json(r, 0, &j), 0);
	assert_string_equal(json_string_value(json_object_get(j, "proposal")), "dispute");
	json_t *t = json_object_get(j, "totals");
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(t, "statement"), "sum")),
	        123456 + 50000 - 300000 + 100);
	assert_int_equal(json_integer_value(json_object_get(t, "difference")), 3456 + 50000);
	assert_true(json_is_false(json_object_get(t, "balanced")));
	json_t *d = json_object_get(j, "dispute");
	assert_int_equal(json_array_size(d), 2);
	json_t *d0 = json_array_get(d, 0);
	assert_string_equal(json_string_value(json_object_get(d0, "doc")), "INV-1");
	assert_int_equal(json_integer_value(json_object_get(d0, "their_amount")), 123456);
	assert_int_equal(json_integer_value(json_object_get(d0, "our_amount")), 120000);
	assert_string_equal(json_string_value(json_object_get(d0, "reason")), "price");
	assert_string_equal(json_string_value(json_object_get(json_array_get(d, 1), "reason")),
	                    "not_received");
	json_t *df = json_array_get(json_object_get(j, "differs"), 0);
	assert_int_equal(json_integer_value(json_object_get(df, "difference")), 3456);
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(df, "statement"), "ref")), 17);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(df, "statement"), "date")),
	        "2026-11-03");
	json_t *m = json_object_get(j, "matched");
	assert_int_equal(json_array_size(m), 2);
	json_t *mi = json_array_get(json_object_get(j, "missing_in_ledger"), 0);
	assert_string_equal(json_string_value(json_object_get(mi, "reason")), "not_received");
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(j, "options"), "window")), 3);
	json_decref(j);
	assert_int_equal(tl_match_report_json(r, TL_MATCH_BRIEF, &j), 0);
	m = json_object_get(j, "matched");
	assert_int_equal(json_array_size(m), 1); /* only the group */
	assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "rule")),
	                    "sum_of_ledger");
	json_decref(j);

	char *txt = text(r, 0);
	assert_non_null(strstr(txt, "Proposal: DISPUTE, 2 lines"));
	assert_non_null(strstr(txt, "1,234.56"));
	assert_non_null(strstr(txt, "-3,000.00"));
	assert_non_null(strstr(txt, "not_received"));
	assert_non_null(strstr(txt, "Matched by sum"));
	assert_non_null(strstr(txt, "Matched one to one"));
	assert_non_null(strstr(txt, "发票-7"));
	free(txt);
	txt = text(r, TL_MATCH_BRIEF);
	assert_null(strstr(txt, "Matched one to one"));
	free(txt);
	struct tl_buf b;
	tl_buf_init(&b, 64); /* too small: the cap is reported, not overrun */
	assert_int_equal(tl_match_report_text(r, 0, 2, &b), TL_ETOOBIG);
	assert_int_equal(tl_match_report_text(r, 0, 9, &b), TL_EINVAL);
	tl_buf_release(&b);
	tl_match_report_free(r);

	struct tl_match_line c[] = {mk("2026-11-03", INV, "INV-1", 100)};
	r = run(c, 1, c, 1, NULL);
	txt = text(r, 0);
	assert_non_null(strstr(txt, "Proposal: CONFIRM"));
	free(txt);
	tl_match_report_free(r);
}

static void test_bad_input(void **state)
{
	(void)state;
	struct tl_match_report *r = (struct tl_match_report *)&r;
	struct tl_match_line s[] = {mk("2026-11-03", INV, "INV-1", 100)};
	struct tl_match_opts o;
	char err[256];
	tl_match_opts_init(&o);
	o.window = TL_MATCH_WINDOW_MAX + 1;
	assert_int_equal(tl_match_run(&r, s, 1, s, 1, &o, err, sizeof err), TL_EINVAL);
	assert_null(r);
	assert_non_null(strstr(err, "window"));
	tl_match_opts_init(&o);
	o.tolerance = -1;
	assert_int_equal(tl_match_run(&r, s, 1, s, 1, &o, err, sizeof err), TL_EINVAL);
	tl_match_opts_init(&o);
	o.has_period = 1;
	o.period_from = 10;
	o.period_to = 9;
	assert_int_equal(tl_match_run(&r, s, 1, s, 1, &o, err, sizeof err), TL_EINVAL);

	struct tl_match_line bad = s[0];
	bad.amount = TL_MATCH_AMOUNT_MAX + 1;
	bad.ref = 42;
	assert_int_equal(tl_match_run(&r, s, 1, &bad, 1, NULL, err, sizeof err), TL_EINVAL);
	assert_non_null(strstr(err, "ledger line 1 (ref 42): amount"));
	bad = s[0];
	bad.type = (enum tl_match_type)9;
	assert_int_equal(tl_match_run(&r, &bad, 1, s, 1, NULL, err, sizeof err), TL_EINVAL);
	assert_non_null(strstr(err, "statement line 1"));
	bad = s[0];
	memset(bad.doc, 'x', sizeof bad.doc); /* not terminated */
	assert_int_equal(tl_match_run(&r, &bad, 1, s, 1, NULL, err, sizeof err), TL_EINVAL);
	bad = s[0];
	strcpy(bad.doc, "\xff\xfe");
	assert_int_equal(tl_match_run(&r, &bad, 1, s, 1, NULL, err, sizeof err), TL_EINVAL);
	assert_non_null(strstr(err, "UTF-8"));
	bad = s[0];
	bad.date = TL_MATCH_DATE_MAX + 1;
	assert_int_equal(tl_match_run(&r, &bad, 1, s, 1, NULL, err, sizeof err), TL_EINVAL);
	assert_int_equal(tl_match_run(&r, NULL, 1, s, 1, NULL, err, sizeof err), TL_EINVAL);
	assert_int_equal(tl_match_run(&r, s, TL_MATCH_LINES_MAX + 1, s, 1, NULL, err, sizeof err),
	                 TL_ETOOBIG);
	assert_null(r);
	assert_int_equal(tl_match_type_parse("credit_note"), CN);
	assert_int_equal(tl_match_type_parse("Invoice"), 0);
	assert_string_equal(tl_match_type_name(DN), "debit_note");
	assert_string_equal(tl_match_rule_name(TL_MATCH_BY_SUM_STATEMENT), "sum_of_statement");
}

/* ------------------------------------------------------------- 10,000 vs 50,000 */

/*
 * Statement line i (10,000, 30 a day through 2026) by i % 10: 0-5 invoices the
 * ledger has under a differently written number (doc); 6 an invoice the
 * ledger has 1.00 lower (differs); 7 a receipt the ledger has under its own
 * number a day later (amount); 8 a receipt the ledger split in three (sum:
 * amounts u*10^4 + {1, 21, 441}, u = (g + 1000)^2, so no other three lines
 * in reach add up to it); 9 an invoice not in the ledger. The ledger adds
 * 9,000 invoices of its own in the period (multiples of 1,000, the
 * statement's missing ones are 7 mod 1,000, so no sum can pair them) and
 * 30,000 lines of earlier periods.
 */
static size_t big_data(struct tl_match_line *s, struct tl_match_line *l)
{
	int32_t b = day("2026-01-01");
	size_t k = 0;
	for (uint32_t i = 0; i < 10000; i++) {
		struct tl_match_line *x = &s[i];
		int32_t d = b + (int32_t)(i / 30);
		int64_t a = 10000 + (int64_t)((i * 7919u) % 900000u);
		int64_t g = i / 10, u = (g + 1000) * (g + 1000);
		memset(x, 0, sizeof *x);
		x->date = d;
		x->type = INV;
		x->amount = a;
		snprintf(x->doc, sizeof x->doc, "INV-%07u", i);
		struct tl_match_line *y = &l[k];
		memset(y, 0, sizeof *y);
		y->date = d;
		y->type = INV;
		switch (i % 10) {
		case 6:
			y->amount = a - 100;
			y->date = d + 1;
			snprintf(y->doc, sizeof y->doc, "INV%u", i);
			k++;
			break;
		case 7:
			x->type = y->type = PAY;
			x->amount = y->amount = -(10000000 + (int64_t)i);
			snprintf(x->doc, sizeof x->doc, "RC%u", i);
			snprintf(y->doc, sizeof y->doc, "PAY%u", i);
			y->date = d + 1;
			k++;
			break;
		case 8:
			x->type = PAY;
			x->amount = -(3 * u * 10000 + 463);
			snprintf(x->doc, sizeof x->doc, "RC%u", i);
			for (int p = 0; p < 3; p++) {
				static const int low[3] = {1, 21, 441};
				y = &l[k++];
				memset(y, 0, sizeof *y);
				y->date = d;
				y->type = PAY;
				y->amount = -(u * 10000 + low[p]);
				snprintf(y->doc, sizeof y->doc, "PAY%u-%d", i, p);
			}
			break;
		case 9:
			x->amount = 1000 * (500 + i % 499) + 7;
			break;
		default:
			y->amount = a;
			y->date = d + 2;
			snprintf(y->doc, sizeof y->doc, "inv %u", i);
			k++;
			break;
		}
	}
	for (uint32_t j = 0; j < 9000; j++) {
		struct tl_match_line *y = &l[k++];
		memset(y, 0, sizeof *y);
		y->date = b + (int32_t)(j % 334);
		y->type = INV;
		y->amount = 1000 * (500 + (j * 31) % 499);
		snprintf(y->doc, sizeof y->doc, "X%u", j);
	}
	for (uint32_t j = 0; j < 30000; j++) {
		struct tl_match_line *y = &l[k++];
		memset(y, 0, sizeof *y);
		y->date = b - 30 - (int32_t)(j % 700);
		y->type = j % 2 ? PAY : INV;
		y->amount = j % 2 ? -(1000 + (int64_t)j) : 1000 + (int64_t)j;
		snprintf(y->doc, sizeof y->doc, "OLD%u", j);
	}
	return k;
}

static void test_10k_vs_50k(void **state)
{
	(void)state;
	struct tl_match_line *s = calloc(10000, sizeof *s), *l = calloc(50000, sizeof *l);
	assert_non_null(s);
	assert_non_null(l);
	size_t nl = big_data(s, l);
	assert_int_equal(nl, 50000);
	struct tl_match_opts o;
	tl_match_opts_init(&o);
	o.has_period = 1;
	o.period_from = day("2026-01-01");
	o.period_to = day("2026-12-31");
	struct tl_match_report *r = run(s, 10000, l, nl, &o);
	assert_int_equal(count_rule(r, TL_MATCH_BY_DOC), 6000);
	assert_int_equal(count_rule(r, TL_MATCH_BY_AMOUNT), 1000);
	assert_int_equal(count_rule(r, TL_MATCH_BY_SUM_LEDGER), 1000);
	assert_int_equal(count_rule(r, TL_MATCH_BY_SUM_STATEMENT), 0);
	assert_int_equal(r->totals.matched_stmt_lines, 8000);
	assert_int_equal(r->totals.matched_ledger_lines, 10000);
	assert_int_equal(r->n_differs, 1000);
	assert_int_equal(r->totals.differs_sum, 1000 * 100);
	assert_int_equal(r->n_missing_in_ledger, 1000);
	assert_int_equal(r->n_missing_in_stmt, 9000);
	assert_int_equal(r->n_ledger_out_of_period, 30000);
	assert_int_equal(r->n_search_truncated, 0);
	for (size_t k = 0; k < r->n_missing_in_ledger; k++)
		assert_int_equal(r->missing_in_ledger[k].reason, TL_MATCH_R_NOT_RECEIVED);
	for (size_t k = 0; k < r->n_missing_in_stmt; k++)
		assert_int_equal(r->missing_in_stmt[k].reason, TL_MATCH_R_OTHER);
	for (size_t k = 0; k < r->n_matched; k++)
		if (r->matched[k].rule == TL_MATCH_BY_SUM_LEDGER)
			assert_int_equal(r->matched[k].n_ledger, 3);
	assert_int_equal(r->n_dispute, 11000);
	assert_int_equal(r->proposal, TL_MATCH_DISPUTE);
	char *want = dump(r);
	tl_match_report_free(r);

	uint64_t seed = 7;
	shuffle(s, 10000, &seed);
	shuffle(l, nl, &seed);
	r = run(s, 10000, l, nl, &o);
	char *got = dump(r);
	assert_true(strcmp(got, want) == 0);
	free(got);
	free(want);
	tl_match_report_free(r);
	free(s);
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_dates),
	        cmocka_unit_test(test_doc_key),
	        cmocka_unit_test(test_doc_exact_and_differs),
	        cmocka_unit_test(test_doc_tolerance_boundary),
	        cmocka_unit_test(test_doc_pairing_and_family),
	        cmocka_unit_test(test_amount_window_boundary),
	        cmocka_unit_test(test_amount_tolerance_boundary),
	        cmocka_unit_test(test_amount_closest_date_then_doc),
	        cmocka_unit_test(test_amount_type_family),
	        cmocka_unit_test(test_many_to_one),
	        cmocka_unit_test(test_one_to_many),
	        cmocka_unit_test(test_sum_window_and_switch),
	        cmocka_unit_test(test_subset_cap),
	        cmocka_unit_test(test_duplicates),
	        cmocka_unit_test(test_missing_both_ways),
	        cmocka_unit_test(test_cut_off_and_period),
	        cmocka_unit_test(test_proposal),
	        cmocka_unit_test(test_determinism),
	        cmocka_unit_test(test_json_loader),
	        cmocka_unit_test(test_renderings),
	        cmocka_unit_test(test_bad_input),
	        cmocka_unit_test(test_10k_vs_50k),
	};
	return cmocka_run_group_tests_name("match", tests, NULL, NULL);
}
