/*
 * cmd_match.c — tally match STATEMENT --ledger PAYABLES.csv: the customer's
 * payables ledger matched against a supplier's statement of account
 * (node/match.h), with a proposal: confirm, or a pre-filled line-level
 * dispute.
 *
 * STATEMENT is the leaf hash of a `statement` entry in the store, or a JSON
 * file holding a statement body (or an entry {"kind": "statement", "body":
 * {...}} as `tally feed log --json` prints it), for use without a store.
 * The ledger CSV is read like a statement export (node/ledger.h), in the
 * statement's currency.
 *
 * Exit codes: 0 the proposal is to confirm, 1 to dispute, so scripts can
 * branch on it; 2 usage, and inputs that cannot be matched (no such entry,
 * not a statement, problems in the ledger file), so that 1 never means
 * anything but a dispute; 3 environment (store, I/O, memory).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "node/ledger.h"
#include "node/match.h"
#include "node/statement.h"

#define STMT_JSON_MAX ((size_t)512 << 20) /* bytes of a statement JSON file */

static int is_leaf_hex(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') ||
		      (s[n] >= 'A' && s[n] <= 'F')))
			return 0;
	return n == 2 * TL_HASH_LEN;
}

/* The body of the statement entry with this leaf hash, from the store. */
static int stmt_from_store(struct cli *c, const char *hex, json_t **out)
{
	uint8_t leaf[TL_HASH_LEN];
	char origin[TL_ORIGIN_LEN + 1], kind[TL_KIND_MAX + 1];
	uint64_t seq;
	struct tl_feed f;
	struct tl_buf rec;
	struct tl_entry e;
	size_t where;
	int rc;

	if (tl_hex_decode(leaf, TL_HASH_LEN, hex, strlen(hex)) != 0)
		return cli_usage(c, "'%s' is not a leaf hash", hex);
	if ((rc = cli_open_store(c, 0)) != 0)
		return rc;
	rc = tl_store_find_leaf(c->store, leaf, origin, &seq);
	if (rc == TL_ENOTFOUND)
		return cli_fail(c, EXIT_USAGE,
		                "no entry with leaf %s here (the leaf hashes are in tally feed log "
		                "ORIGIN); a statement saved as JSON can be given as a file",
		                hex);
	if (rc)
		return cli_fail(c, EXIT_ENV, "%s", tl_store_errmsg(c->store));
	if ((rc = cli_feed(c, origin, &f)) != 0)
		return EXIT_ENV; /* the entry was just found: the store is inconsistent */
	tl_buf_init(&rec, TL_RECORD_MAX);
	if ((rc = tl_store_record(c->store, &f, seq, &rec)) != 0) {
		tl_buf_release(&rec);
		return cli_fail(c, EXIT_ENV, "reading seq %llu of %s: %s", (unsigned long long)seq,
		                origin, tl_store_errmsg(c->store));
	}
	if ((rc = tl_record_decode(&e, rec.data, rec.len, &where)) != 0) {
		tl_buf_release(&rec);
		return cli_fail(c, EXIT_ENV, "seq %llu of %s: stored record is malformed: %s",
		                (unsigned long long)seq, origin, tl_strerror(rc));
	}
	memcpy(kind, e.kind, e.kind_len);
	kind[e.kind_len] = 0;
	if (strcmp(kind, "statement") != 0) {
		tl_buf_release(&rec);
		return cli_fail(c, EXIT_USAGE,
		                "leaf %s is a '%s' entry (seq %llu of %s), not a "
		                "statement",
		                hex, kind, (unsigned long long)seq, origin);
	}
	*out = tl_mp_to_json(e.body, e.body_len);
	tl_buf_release(&rec);
	if (!*out)
		return cli_fail(c, EXIT_ENV, "out of memory");
	return 0;
}

/* A statement body from a JSON file. */
static int stmt_from_file(struct cli *c, const char *path, json_t **out)
{
	struct tl_buf b;
	json_error_t je;
	json_t *j, *body;
	int rc = cli_read_file(c, path, STMT_JSON_MAX, &b);
	if (rc)
		return rc == EXIT_INVALID ? EXIT_USAGE : rc;
	j = json_loadb((const char *)b.data, b.len, 0, &je);
	tl_buf_release(&b);
	if (!j)
		return cli_fail(c, EXIT_USAGE, "%s:%d:%d: not JSON: %s", path, je.line, je.column,
		                je.text);
	body = j;
	if (json_is_object(j) && json_is_object(json_object_get(j, "body")) &&
	    json_is_string(json_object_get(j, "kind"))) {
		const char *kind = json_string_value(json_object_get(j, "kind"));
		if (strcmp(kind, "statement") != 0) {
			json_decref(j);
			return cli_fail(c, EXIT_USAGE, "%s holds a '%s' entry, not a statement",
			                path, kind);
		}
		body = json_incref(json_object_get(j, "body"));
		json_decref(j);
	}
	*out = body;
	return 0;
}

/* An argument as a POSIX shell word: as is when safe, else single-quoted. */
static void shell_word(FILE *fp, const char *s)
{
	int safe = *s != 0;
	for (const char *p = s; *p && safe; p++) {
		unsigned char ch = (unsigned char)*p;
		safe = ch >= 0x80 || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		       (ch >= 'A' && ch <= 'Z') || strchr("-_./:,+=@%", ch);
	}
	if (safe) {
		fputs(s, fp);
		return;
	}
	fputc('\'', fp);
	for (const char *p = s; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", fp);
		else
			fputc(*p, fp);
	}
	fputc('\'', fp);
}

/* What to do next, for people: the arguments of the confirmation or the
 * dispute (those commands are still being built, issue 4). */
/* The signing commands take integer minor units, so amounts are printed so. */
static void print_next(const struct tl_match_report *r, const char *stmt)
{
	if (r->proposal == TL_MATCH_CONFIRM) {
		printf("\nNext: an approver confirms the statement (minor units):\n  tally "
		       "confirm ");
		shell_word(stdout, stmt);
		printf(" --channel CHANNEL --key PERSON_KEY_FILE --balance %lld\n",
		       (long long)r->totals.ledger_closing);
		return;
	}
	printf("\nNext: an approver disputes the statement (check each reason; amounts in minor "
	       "units; add --note TEXT where useful):\n  tally dispute ");
	shell_word(stdout, stmt);
	printf(" --channel CHANNEL --key PERSON_KEY_FILE --balance %lld",
	       (long long)r->totals.ledger_closing);
	for (size_t i = 0; i < r->n_dispute; i++) {
		const struct tl_match_dispute *d = &r->dispute[i];
		printf(" \\\n    --line ");
		shell_word(stdout, d->doc);
		printf(" --their-amount %lld --reason %s", (long long)d->their_amount,
		       tl_match_reason_name(d->reason));
	}
	printf("\n");
}

/* A decimal option in the statement's currency into minor units. */
static int amount_opt(struct cli *c, const char *name, const char *v, const char *cur, unsigned exp,
                      int64_t min, int64_t *out)
{
	if (tl_amount_parse(v, strlen(v), exp, out) != 0 || *out < min ||
	    *out > TL_MATCH_AMOUNT_MAX * (min < 0 ? 1000 : 1))
		return cli_usage(c, "%s '%s' is not %s amount in %s (at most %u decimals)", name, v,
		                 min < 0 ? "an" : "a non-negative", cur, exp);
	return 0;
}

struct job {
	json_t *stmt;
	struct tl_match_line *sl, *ll;
	size_t ns, nl;
	struct tl_errlist *errs;
	struct tl_match_report *rep;
	json_t *out;
	struct tl_buf text;
};

static int match(struct cli *c, struct job *j)
{
	const char *ledger = cli_opt(c, "--ledger"), *tol = cli_opt(c, "--tolerance");
	const char *win = cli_opt(c, "--window"), *opening = cli_opt(c, "--opening");
	const char *cur;
	struct tl_match_opts mo;
	struct tl_ledger_opts lo = {0};
	char err[256];
	unsigned exp;
	uint64_t window = 0;
	int64_t tolerance = 0, ledger_opening = 0;
	int rc;

	if (c->npos != 1 || !ledger)
		return cli_usage(c, "usage: tally match STATEMENT --ledger PAYABLES.csv "
		                    "[--tolerance AMOUNT] [--window DAYS] [--opening AMOUNT] "
		                    "[--encoding gb18030] [--signed] [--json]");
	if (win && ((rc = cli_u64(c, "--window", win, &window)) != 0))
		return rc;
	if (win && window > TL_MATCH_WINDOW_MAX)
		return cli_usage(c, "--window is at most %d days", TL_MATCH_WINDOW_MAX);

	const char *s = c->pos[0];
	rc = is_leaf_hex(s) ? stmt_from_store(c, s, &j->stmt) : stmt_from_file(c, s, &j->stmt);
	if (rc)
		return rc;
	if (!json_is_object(j->stmt))
		return cli_fail(c, EXIT_USAGE, "%s: a statement is a JSON object", s);
	cur = json_string_value(json_object_get(j->stmt, "currency"));
	if (!cur || tl_currency_exponent(cur, &exp) != 0)
		return cli_fail(c, EXIT_USAGE, "%s: the statement has no known currency", s);
	if (tol && (rc = amount_opt(c, "--tolerance", tol, cur, exp, 0, &tolerance)) != 0)
		return rc;
	if (opening && (rc = amount_opt(c, "--opening", opening, cur, exp,
	                                -TL_MATCH_AMOUNT_MAX * 1000, &ledger_opening)) != 0)
		return rc;
	if (tl_match_lines_from_json(j->stmt, 0, &j->sl, &j->ns, err, sizeof err) != 0)
		return cli_fail(c, EXIT_USAGE, "%s: the statement cannot be matched: %s", s, err);
	tl_match_opts_init(&mo);
	if (tl_match_opts_from_statement(&mo, j->stmt, err, sizeof err) != 0)
		return cli_fail(c, EXIT_USAGE, "%s: %s", s, err);
	if (tol)
		mo.tolerance = tolerance;
	if (win)
		mo.window = (int32_t)window;
	/* Without --opening the customer's opening balance is taken to be the
	 * statement's: the balance both agreed at the last reconciliation. */
	mo.ledger_opening = opening ? ledger_opening : mo.stmt_opening;

	if (!(j->errs = malloc(sizeof *j->errs)))
		return cli_fail(c, EXIT_ENV, "out of memory");
	lo.currency = cur;
	lo.encoding = cli_opt(c, "--encoding");
	lo.flags = cli_has(c, "--signed") ? TL_LEDGER_SIGNED : 0;
	rc = tl_ledger_from_csv(ledger, &lo, &j->ll, &j->nl, j->errs);
	if (rc == TL_ENOMEM)
		return cli_fail(c, EXIT_ENV, "out of memory");
	if (rc) {
		tl_errlist_print(j->errs, stderr);
		if (rc == TL_EIO)
			return EXIT_ENV;
		return cli_fail(c, EXIT_USAGE,
		                "nothing was matched; fix the %zu problem%s above and run it again",
		                j->errs->total, j->errs->total == 1 ? "" : "s");
	}

	rc = tl_match_run(&j->rep, j->sl, j->ns, j->ll, j->nl, &mo, err, sizeof err);
	if (rc == TL_ENOMEM)
		return cli_fail(c, EXIT_ENV, "out of memory");
	if (rc)
		return cli_fail(c, EXIT_USAGE, "%s", err);

	if (c->json) {
		json_t *info;
		if (tl_match_report_json(j->rep, 0, &j->out) != 0)
			return cli_fail(c, EXIT_ENV, "out of memory");
		info = json_pack("{s:O?,s:O?,s:s,s:s}", "id", json_object_get(j->stmt, "id"),
		                 "version", json_object_get(j->stmt, "version"), "currency", cur,
		                 is_leaf_hex(s) ? "leaf" : "file", s);
		if (!info || json_object_set_new(j->out, "statement", info) != 0)
			return cli_fail(c, EXIT_ENV, "out of memory");
		char *js = json_dumps(j->out, JSON_COMPACT);
		if (!js)
			return cli_fail(c, EXIT_ENV, "out of memory");
		printf("%s\n", js);
		free(js);
	} else {
		const char *id = json_string_value(json_object_get(j->stmt, "id"));
		json_int_t v = json_integer_value(json_object_get(j->stmt, "version"));
		printf("statement %s v%lld (%s) against ledger %s\n\n", id ? id : "(no id)",
		       (long long)(v ? v : 1), cur, ledger);
		tl_buf_init(&j->text, (size_t)1 << 30);
		if (tl_match_report_text(j->rep, 0, exp > 4 ? 4 : (int)exp, &j->text) != 0)
			return cli_fail(c, EXIT_ENV, "out of memory");
		fwrite(j->text.data, 1, j->text.len, stdout);
		print_next(j->rep, s);
	}
	if (fflush(stdout) != 0)
		return cli_fail(c, EXIT_ENV, "writing the report failed");
	return j->rep->proposal == TL_MATCH_CONFIRM ? EXIT_OK : EXIT_INVALID;
}

int cmd_match(int argc, char **argv)
{
	static const char *const allowed[] = {"--ledger",  "--tolerance", "--window",
	                                      "--opening", "--encoding",  NULL};
	static const char *const flags[] = {"--signed", NULL};
	struct cli c = {.cmd = "match"};
	struct job j = {0};
	int rc;
	if ((rc = cli_parse(&c, argc, argv, allowed, flags)) != 0)
		return rc;
	tl_buf_init(&j.text, 0);
	rc = match(&c, &j);
	json_decref(j.out);
	tl_match_report_free(j.rep);
	free(j.sl);
	free(j.ll);
	free(j.errs);
	json_decref(j.stmt);
	tl_buf_release(&j.text);
	cli_close(&c);
	return rc;
}
