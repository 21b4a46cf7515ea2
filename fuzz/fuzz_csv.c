/*
 * fuzz_csv.c — libFuzzer target for the CSV readers: statements (UTF-8 and
 * GB18030) and the customer's ledger.
 *
 * Properties checked besides "no crash":
 *   - success and failure are exclusive: a body exactly when there is no
 *     error, at least one message whenever the import fails with TL_EFORMAT;
 *   - every message is a NUL-terminated sentence that starts with the file
 *     name (the user is told where);
 *   - an accepted statement balances: closing == opening + sum of lines;
 *   - the same bytes give the same result twice (no hidden state).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/ledger.h"
#include "node/statement.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tl_errlist errs, again;

static void check_messages(const struct tl_errlist *e, const char *name)
{
	if (e->n > TL_ERRLIST_MAX || e->total < e->n)
		abort();
	for (size_t i = 0; i < e->n; i++) {
		if (memchr(e->msg[i], '\0', TL_ERRLIST_MSG) == NULL)
			abort();
		if (strncmp(e->msg[i], name, strlen(name)) != 0)
			abort();
	}
}

static void check_balance(const json_t *body)
{
	json_int_t sum = json_integer_value(json_object_get(body, "opening"));
	const json_t *lines = json_object_get(body, "lines");
	size_t i;
	const json_t *l;

	if (!json_is_array(lines))
		abort();
	json_array_foreach(lines, i, l)
	{
		const json_t *a = json_object_get(l, "amount");
		if (!json_is_integer(a))
			abort();
		sum += json_integer_value(a);
	}
	if (sum != json_integer_value(json_object_get(body, "closing")))
		abort();
}

static void statement(const uint8_t *data, size_t size, const char *encoding)
{
	struct tl_statement_opts o = {
	        .id = "S-1",
	        .currency = (size & 1) ? "CNY" : "JPY",
	        .from = "2026-01-01",
	        .to = "2026-01-31",
	        .date = "2026-02-01",
	        .opening = "100.5",
	        .encoding = encoding,
	        .name = "fuzz.csv",
	};
	json_t *body = NULL, *body2 = NULL;
	int rc = tl_statement_from_csv_mem(data, size, &o, &body, &errs);
	int rc2 = tl_statement_from_csv_mem(data, size, &o, &body2, &again);

	if (rc != rc2 || errs.total != again.total)
		abort();
	check_messages(&errs, "fuzz.csv");
	if (rc == 0) {
		if (!body || errs.total != 0 || !json_equal(body, body2))
			abort();
		check_balance(body);
	} else {
		if (body || body2)
			abort();
		if (rc == TL_EFORMAT && errs.total == 0)
			abort();
	}
	json_decref(body);
	json_decref(body2);
}

static void ledger(const uint8_t *data, size_t size)
{
	struct tl_ledger_opts o = {.currency = "USD", .name = "ledger.csv"};
	struct tl_match_line *lines = NULL;
	size_t n = 0;
	int rc = tl_ledger_from_csv_mem(data, size, &o, &lines, &n, &errs);

	check_messages(&errs, "ledger.csv");
	if (rc != 0 && (lines || n))
		abort();
	if (rc == TL_EFORMAT && errs.total == 0)
		abort();
	free(lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	statement(data, size, NULL);
	statement(data, size, "gb18030");
	ledger(data, size);
	return 0;
}
