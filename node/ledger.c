/*
 * ledger.c — the customer's payables CSV as matcher lines; see ledger.h.
 *
 * The file goes through the statement importer (statement.c) unchanged:
 * the same tokenizer, decoding, header and type spellings, amount and date
 * grammar and error list. The period is set to every date the importer
 * accepts, so no ledger line is refused for its date (the matcher leaves
 * out those of other periods itself); the statement-only results (aging,
 * closing) are dropped. What is left here is what the matcher takes beyond
 * a statement: shorter document numbers and a bound on amounts.
 */
#include "ledger.h"

#include <stdlib.h>
#include <string.h>

#define ALL_FROM "0001-01-01" /* TL_MATCH_DATE_MIN */
#define ALL_TO   "9999-12-31" /* TL_MATCH_DATE_MAX */

static void stmt_opts(struct tl_statement_opts *so, const struct tl_ledger_opts *o,
                      const char *name)
{
	memset(so, 0, sizeof *so);
	so->id = "ledger";
	so->version = 1;
	so->currency = o->currency;
	so->from = ALL_FROM;
	so->to = ALL_TO;
	so->date = ALL_TO;
	so->encoding = o->encoding;
	so->flags = (o->flags & TL_LEDGER_SIGNED) ? TL_STMT_SIGNED : 0;
	so->name = name;
}

/* The imported body's lines as matcher lines, after the matcher's own
 * bounds are checked (all problems listed, as for the CSV itself). */
static int to_lines(const json_t *body, const char *name, struct tl_match_line **out, size_t *n,
                    struct tl_errlist *errs)
{
	const json_t *lines = json_object_get(body, "lines"), *l;
	char err[TL_ERRLIST_MSG];
	size_t i;
	int rc;

	json_array_foreach(lines, i, l)
	{
		const json_t *doc = json_object_get(l, "doc");
		const char *date = json_string_value(json_object_get(l, "date"));
		json_int_t a = json_integer_value(json_object_get(l, "amount"));
		if (json_string_length(doc) > TL_MATCH_DOC_MAX)
			tl_errlist_add(errs,
			               "%s: the %s line of %s, document '%s': the document number "
			               "is %zu bytes long; matching compares at most %d",
			               name, json_string_value(json_object_get(l, "type")), date,
			               json_string_value(doc), json_string_length(doc),
			               TL_MATCH_DOC_MAX);
		if (a < -TL_MATCH_AMOUNT_MAX || a > TL_MATCH_AMOUNT_MAX)
			tl_errlist_add(
			        errs,
			        "%s: the %s line of %s, document '%s': the amount (%lld minor "
			        "units) is beyond the 10^12 matching takes",
			        name, json_string_value(json_object_get(l, "type")), date,
			        json_string_value(doc), (long long)a);
	}
	if (errs->total > 0)
		return TL_EFORMAT;
	rc = tl_match_lines_from_json(body, 0, out, n, err, sizeof err);
	if (rc == 0)
		return 0;
	tl_errlist_add(errs, "%s: %s", name, err);
	return rc == TL_ENOMEM ? TL_ENOMEM : TL_EFORMAT;
}

int tl_ledger_from_csv_mem(const uint8_t *data, size_t len, const struct tl_ledger_opts *o,
                           struct tl_match_line **out, size_t *n, struct tl_errlist *errs)
{
	struct tl_statement_opts so;
	json_t *body = NULL;
	int rc;

	if (!o || !out || !n || !errs)
		return TL_EINVAL;
	*out = NULL;
	*n = 0;
	stmt_opts(&so, o, o->name ? o->name : "ledger.csv");
	if ((rc = tl_statement_from_csv_mem(data, len, &so, &body, errs)) != 0)
		return rc;
	rc = to_lines(body, so.name, out, n, errs);
	json_decref(body);
	return rc;
}

int tl_ledger_from_csv(const char *path, const struct tl_ledger_opts *o, struct tl_match_line **out,
                       size_t *n, struct tl_errlist *errs)
{
	struct tl_statement_opts so;
	json_t *body = NULL;
	int rc;

	if (!path || !o || !out || !n || !errs)
		return TL_EINVAL;
	*out = NULL;
	*n = 0;
	stmt_opts(&so, o, o->name ? o->name : path);
	if ((rc = tl_statement_from_csv(path, &so, &body, errs)) != 0)
		return rc;
	rc = to_lines(body, so.name, out, n, errs);
	json_decref(body);
	return rc;
}
