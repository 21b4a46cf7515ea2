/*
 * bench_match.c — the matching figure of issue 4: a 10,000-line statement
 * against a 50,000-line ledger (goal: under 1 s). The data is the same
 * shape as test_10k_vs_50k in tests/test_match.c: 6,000 lines that match by
 * a differently written document number, 1,000 differing amounts, 1,000
 * receipts matched by amount and date, 1,000 receipts the ledger split in
 * three (sums), 1,000 invoices missing from the ledger, 9,000 ledger-only
 * invoices in the period (each one a sum search over ~20 candidates) and
 * 30,000 ledger lines of earlier periods. The time covers everything
 * tl_match_run does (copy, canonical sort, all rules, totals); rendering
 * is timed on its own line.
 *
 * Usage: bench_match [DIR] [--quick]   (DIR is unused: nothing touches disk)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/match.h"

#define NS 10000
#define NL 50000

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static _Noreturn void die(const char *what, int rc, const char *err)
{
	fprintf(stderr, "bench_match: %s: %s%s%s\n", what, tl_strerror(rc), err ? ": " : "",
	        err ? err : "");
	exit(1);
}

static struct tl_match_line *add(struct tl_match_line *v, size_t *k, int32_t date,
                                 enum tl_match_type t, int64_t amount)
{
	struct tl_match_line *y = &v[(*k)++];
	memset(y, 0, sizeof *y);
	y->date = date;
	y->type = t;
	y->amount = amount;
	return y;
}

/* Statement line i by i % 10; see tests/test_match.c (big_data) for why
 * no accidental sum can form. */
static size_t make_data(struct tl_match_line *s, struct tl_match_line *l, int32_t b)
{
	static const int low[3] = {1, 21, 441};
	size_t ks = 0, kl = 0;
	struct tl_match_line *x, *y;
	for (uint32_t i = 0; i < NS; i++) {
		int32_t d = b + (int32_t)(i / 30);
		int64_t a = 10000 + (int64_t)((i * 7919u) % 900000u);
		int64_t g = i / 10, u = (g + 1000) * (g + 1000);
		x = add(s, &ks, d, TL_MATCH_INVOICE, a);
		snprintf(x->doc, sizeof x->doc, "INV-%07u", i);
		switch (i % 10) {
		case 6:
			y = add(l, &kl, d + 1, TL_MATCH_INVOICE, a - 100);
			snprintf(y->doc, sizeof y->doc, "INV%u", i);
			break;
		case 7:
			x->type = TL_MATCH_PAYMENT;
			x->amount = -(10000000 + (int64_t)i);
			snprintf(x->doc, sizeof x->doc, "RC%u", i);
			y = add(l, &kl, d + 1, TL_MATCH_PAYMENT, x->amount);
			snprintf(y->doc, sizeof y->doc, "PAY%u", i);
			break;
		case 8:
			x->type = TL_MATCH_PAYMENT;
			x->amount = -(3 * u * 10000 + 463);
			snprintf(x->doc, sizeof x->doc, "RC%u", i);
			for (int p = 0; p < 3; p++) {
				y = add(l, &kl, d, TL_MATCH_PAYMENT, -(u * 10000 + low[p]));
				snprintf(y->doc, sizeof y->doc, "PAY%u-%d", i, p);
			}
			break;
		case 9:
			x->amount = 1000 * (500 + i % 499) + 7;
			break;
		default:
			y = add(l, &kl, d + 2, TL_MATCH_INVOICE, a);
			snprintf(y->doc, sizeof y->doc, "inv %u", i);
			break;
		}
	}
	for (uint32_t j = 0; j < 9000; j++) {
		y = add(l, &kl, b + (int32_t)(j % 334), TL_MATCH_INVOICE,
		        1000 * (500 + (j * 31) % 499));
		snprintf(y->doc, sizeof y->doc, "X%u", j);
	}
	for (uint32_t j = 0; j < 30000; j++) {
		int64_t a = 1000 + (int64_t)j;
		y = add(l, &kl, b - 30 - (int32_t)(j % 700),
		        j % 2 ? TL_MATCH_PAYMENT : TL_MATCH_INVOICE, j % 2 ? -a : a);
		snprintf(y->doc, sizeof y->doc, "OLD%u", j);
	}
	return kl;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int quick = argc > 2 && strcmp(argv[2], "--quick") == 0;
	int reps = quick ? 3 : 7;
	struct tl_match_line *s = calloc(NS, sizeof *s), *l = calloc(NL, sizeof *l);
	struct tl_match_report *r = NULL;
	struct tl_match_opts o;
	double t[7], t0;
	char err[256] = "";
	int32_t b, e;
	int rc;

	if (!s || !l)
		die("allocating the data", TL_ENOMEM, NULL);
	if (tl_match_date_parse("2026-01-01", &b) != 0 ||
	    tl_match_date_parse("2026-12-31", &e) != 0)
		die("dates", TL_EFORMAT, NULL);
	if (make_data(s, l, b) != NL)
		die("data shape", TL_EINVAL, NULL);
	tl_match_opts_init(&o);
	o.has_period = 1;
	o.period_from = b;
	o.period_to = e;

	for (int i = 0; i < reps; i++) {
		tl_match_report_free(r);
		t0 = now();
		rc = tl_match_run(&r, s, NS, l, NL, &o, err, sizeof err);
		t[i] = now() - t0;
		if (rc)
			die("tl_match_run", rc, err);
	}
	qsort(t, (size_t)reps, sizeof t[0], cmp_double);
	size_t groups = 0;
	for (size_t k = 0; k < r->n_matched; k++)
		groups += r->matched[k].n_stmt + r->matched[k].n_ledger > 2;
	printf("match.10k_vs_50k       %8.1f ms   goal < 1000 ms   (median of %d; %zu matched "
	       "incl. %zu sums, %zu differ, %zu + %zu missing, %zu sum searches cut short)\n",
	       t[reps / 2] * 1e3, reps, r->n_matched, groups, r->n_differs, r->n_missing_in_ledger,
	       r->n_missing_in_stmt, r->n_search_truncated);

	/* Renderings of the same report, for `tally match` and `--json`. */
	struct tl_buf txt;
	json_t *j = NULL;
	tl_buf_init(&txt, (size_t)256 << 20);
	t0 = now();
	if ((rc = tl_match_report_text(r, 0, 2, &txt)) != 0)
		die("text", rc, NULL);
	double dt_text = now() - t0;
	t0 = now();
	if ((rc = tl_match_report_json(r, 0, &j)) != 0)
		die("json", rc, NULL);
	char *dumped = json_dumps(j, JSON_COMPACT);
	double dt_json = now() - t0;
	if (!dumped)
		die("json_dumps", TL_ENOMEM, NULL);
	printf("match.render           %8.1f ms text (%.1f MB), %.1f ms JSON (%.1f MB), full "
	       "report   (no goal)\n",
	       dt_text * 1e3, (double)txt.len / 1e6, dt_json * 1e3, (double)strlen(dumped) / 1e6);
	free(dumped);
	json_decref(j);
	tl_buf_release(&txt);
	tl_match_report_free(r);
	free(s);
	free(l);
	return 0;
}
