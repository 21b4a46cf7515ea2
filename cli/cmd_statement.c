/*
 * cmd_statement.c — tally statement import: a statement of account from an
 * ERP's CSV export (docs/statement-csv.md) appended, signed, to the book's
 * feed in a channel. Nothing is appended while any line is wrong: every
 * problem is listed with file, line and column first.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "node/statement.h"

static int statement_import(struct cli *c)
{
	struct tl_statement_opts o = {0};
	struct tl_errlist *errs = malloc(sizeof *errs);
	struct tl_feed f;
	json_t *body = NULL;
	uint64_t version = 1;
	int rc;

	if (!errs)
		return cli_fail(c, EXIT_ENV, "out of memory");
	const char *channel = cli_opt(c, "--channel");
	o.id = cli_opt(c, "--id");
	o.currency = cli_opt(c, "--currency");
	o.from = cli_opt(c, "--from");
	o.to = cli_opt(c, "--to");
	o.date = cli_opt(c, "--date") ? cli_opt(c, "--date") : o.to;
	o.opening = cli_opt(c, "--opening");
	o.encoding = cli_opt(c, "--encoding");
	o.supersedes = cli_opt(c, "--supersedes");
	o.flags = cli_has(c, "--signed") ? TL_STMT_SIGNED : 0;
	if (c->npos != 1 || !channel || !o.id || !o.currency || !o.from || !o.to) {
		free(errs);
		return cli_usage(c, "usage: tally statement import FILE --channel C --id ID "
		                    "--currency CUR --from DATE --to DATE [--date DATE] "
		                    "[--opening AMOUNT] [--encoding gb18030] [--signed] "
		                    "[--version N --supersedes LEAF] [--dry-run]");
	}
	if (cli_opt(c, "--version") &&
	    (rc = cli_u64(c, "--version", cli_opt(c, "--version"), &version)) != 0) {
		free(errs);
		return rc;
	}
	o.version = (unsigned)version;
	rc = tl_statement_from_csv(c->pos[0], &o, &body, errs);
	if (rc) {
		tl_errlist_print(errs, stderr);
		fprintf(stderr,
		        "tally statement import: nothing was appended; fix the %zu problem%s "
		        "above and import again\n",
		        errs->total, errs->total == 1 ? "" : "s");
		free(errs);
		return rc == TL_EIO ? EXIT_ENV : EXIT_INVALID;
	}
	free(errs);
	json_t *lines = json_object_get(body, "lines");
	if (cli_has(c, "--dry-run")) {
		char *s = json_dumps(body, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
		json_decref(body);
		return 0;
	}
	if ((rc = cli_open_store(c, 0)) != 0 ||
	    (rc = cli_own_feed(c, channel, NULL, NULL, &f)) != 0) {
		json_decref(body);
		return rc;
	}
	rc = cli_append_one(c, f.origin, "statement", body);
	if (rc == 0 && !c->json)
		fprintf(stderr,
		        "statement %s v%llu: %zu lines, closing %lld (minor units of %s) "
		        "appended to %s\n",
		        o.id, (unsigned long long)version, json_array_size(lines),
		        (long long)json_integer_value(json_object_get(body, "closing")), o.currency,
		        f.origin);
	json_decref(body);
	return rc;
}

int cmd_statement(int argc, char **argv)
{
	static const char *const allowed[] = {
	        "--channel", "--id",       "--currency",   "--from",    "--to", "--date",
	        "--opening", "--encoding", "--supersedes", "--version", NULL};
	static const char *const flags[] = {"--signed", "--dry-run", NULL};
	struct cli c = {.cmd = "statement import"};
	int rc;
	if (argc < 1 || strcmp(argv[0], "import") != 0)
		return cli_usage(&c, "usage: tally statement import FILE --channel C ...");
	if ((rc = cli_parse(&c, argc - 1, argv + 1, allowed, flags)) != 0)
		return rc;
	rc = statement_import(&c);
	cli_close(&c);
	return rc;
}
