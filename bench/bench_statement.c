/*
 * bench_statement.c — CSV statement import: rows/s over a generated
 * 100,000-row ERP export (UTF-8, and the same rows in GB18030), parsing,
 * checking, sorting, aging and building the JSON body. Prints one line per
 * figure; the best of three runs.
 *
 * Usage: bench_statement [DIR] [--quick]   (DIR is unused: all in memory)
 */
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/statement.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench: %s: %s\n", what, tl_strerror(rc));
	exit(1);
}

/* n rows of a realistic export: quoted thousands, mixed types, due dates,
 * a Chinese memo with a quoted comma every tenth row. */
static void generate(struct tl_buf *b, size_t n)
{
	static const char *const types[] = {"invoice",     "invoice",    "invoice",   "payment",
	                                    "credit_note", "debit_note", "adjustment"};
	if (tl_buf_adds(b, "date,type,doc,amount,due,memo\r\n") != 0)
		die("generate", TL_ENOMEM);
	for (size_t i = 0; i < n; i++) {
		unsigned long units = (unsigned long)(i * 7919 % 10000000) + 100;
		char amt[32];
		if (units >= 100000)
			snprintf(amt, sizeof amt, "\"%lu,%03lu.%02lu\"", units / 100000,
			         units / 100 % 1000, units % 100);
		else
			snprintf(amt, sizeof amt, "%lu.%02lu", units / 100, units % 100);
		int rc = tl_buf_printf(
		        b, "2026-11-%02zu,%s,DOC-%08zu,%s,2026-12-%02zu,%s\r\n", 1 + i % 30,
		        types[i % 7], i, amt, 1 + i % 31,
		        i % 10 ? "\xe8\xb4\xa7\xe6\xac\xbe" /* 货款 */
		               : "\"\xe8\xb4\xa7\xe6\xac\xbe, FC-2026-017 \"\"batch\"\"\"");
		if (rc != 0)
			die("generate", rc);
	}
}

static void to_gb18030(struct tl_buf *out, const struct tl_buf *in)
{
	iconv_t cd = iconv_open("GB18030", "UTF-8");
	char *ip = (char *)in->data, *op;
	size_t il = in->len, ol;
	if (cd == (iconv_t)-1 || tl_buf_reserve(out, in->len * 2) != 0)
		die("iconv", TL_EINVAL);
	op = (char *)out->data;
	ol = out->cap - 1;
	if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1)
		die("iconv", TL_EFORMAT);
	out->len = (size_t)((uint8_t *)op - out->data);
	iconv_close(cd);
}

/* Best rows/s of three imports; checks the line count each time. */
static double import(const struct tl_buf *csv, size_t n, const char *encoding)
{
	struct tl_statement_opts o = {
	        .id = "ST-BENCH",
	        .currency = "CNY",
	        .from = "2026-11-01",
	        .to = "2026-11-30",
	        .date = "2026-11-30",
	        .opening = "1,250,000.00",
	        .encoding = encoding,
	};
	struct tl_errlist *e = malloc(sizeof *e);
	double best = 0;
	if (!e)
		die("errlist", TL_ENOMEM);
	for (int r = 0; r < 3; r++) {
		json_t *st = NULL;
		double t0 = now();
		int rc = tl_statement_from_csv_mem(csv->data, csv->len, &o, &st, e);
		double dt = now() - t0;
		if (rc != 0) {
			tl_errlist_print(e, stderr);
			die("import", rc);
		}
		if (json_array_size(json_object_get(st, "lines")) != n)
			die("line count", TL_ECORRUPT);
		json_decref(st);
		if ((double)n / dt > best)
			best = (double)n / dt;
	}
	free(e);
	return best;
}

int main(int argc, char **argv)
{
	int quick = argc > 2 && strcmp(argv[2], "--quick") == 0;
	size_t n = quick ? 20000 : 100000;
	struct tl_buf csv, gb;

	tl_buf_init(&csv, TL_STMT_FILE_MAX);
	tl_buf_init(&gb, TL_STMT_FILE_MAX);
	generate(&csv, n);
	to_gb18030(&gb, &csv);
	printf("csv.import %10.0f rows/s (%zu rows, %.1f MB UTF-8, checked and built into a "
	       "statement body)\n",
	       import(&csv, n, NULL), n, (double)csv.len / 1e6);
	printf("csv.import.gb18030 %10.0f rows/s (%zu rows, %.1f MB GB18030)\n",
	       import(&gb, n, "gb18030"), n, (double)gb.len / 1e6);
	tl_buf_release(&csv);
	tl_buf_release(&gb);
	return 0;
}
