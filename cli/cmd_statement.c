/*
 * cmd_statement.c — statements of account on the command line (issue 4):
 *   tally statement import   an ERP's CSV export (docs/statement-csv.md)
 *   tally statement adjust   the next version: previous lines + added lines
 *   tally statement list     the inbox / outbox with status and deadline
 *   tally statement show     one statement: lines, aging, status, timeline
 *   tally statement export   a self-contained file for air-gapped signing
 * and the plumbing the other reconciliation commands share (statement
 * lookup, times and amounts; the channel state is cli/chanstate.c). Nothing is appended while any input
 * is wrong: every problem is listed first.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "consensus/state.h"
#include "node/statement.h"

/* ------------------------------------------------------------ plumbing */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* n digits at s, as a number; -1 when not all digits. */
static long num(const char *s, size_t n)
{
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int cli_parse_time(struct cli *c, const char *what, const char *s, uint64_t *out)
{
	size_t n = strlen(s), i;
	long y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
	int fixed;
	int32_t off = 0;
	char date[11];

	if (n > 0 && n == strspn(s, "0123456789"))
		return cli_u64(c, what, s, out);
	if (n < 10 || tl_date_parse(s, 10, date) != 0 || s[4] != '-')
		goto bad;
	y = num(s, 4);
	mo = num(s + 5, 2);
	d = num(s + 8, 2);
	i = 10;
	if (i < n) {
		if ((s[i] != 'T' && s[i] != ' ') || n < i + 6 || s[i + 3] != ':')
			goto bad;
		h = num(s + i + 1, 2);
		mi = num(s + i + 4, 2);
		i += 6;
		if (i < n && s[i] == ':') {
			if (n < i + 3 || (sec = num(s + i + 1, 2)) < 0)
				goto bad;
			i += 3;
			if (i < n && s[i] == '.') {
				if (n < i + 4 || (ms = num(s + i + 1, 3)) < 0)
					goto bad;
				i += 4;
			}
		}
		if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec > 59)
			goto bad;
		if (i < n && (tl_tz_parse(s + i, n - i, &fixed, &off) != 0 || !fixed))
			goto bad;
	}
	{
		int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000 +
		            ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + ms - (int64_t)off * 60000;
		if (t < 0)
			goto bad;
		*out = (uint64_t)t;
	}
	return 0;
bad:
	return cli_usage(c,
	                 "%s must be a date (2026-12-10), a date and time (2026-12-10T09:30Z, "
	                 "2026-12-10T17:30+08:00) or Unix milliseconds, not '%s'",
	                 what, s);
}

void cli_amount(char out[40], int64_t v, const char *currency)
{
	unsigned exp = 2;
	uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, p = 1;
	if (!currency || tl_currency_exponent(currency, &exp) != 0)
		exp = 0; /* unknown: minor units as they are */
	for (unsigned i = 0; i < exp; i++)
		p *= 10;
	if (exp)
		snprintf(out, 40, "%s%llu.%0*llu", v < 0 ? "-" : "", (unsigned long long)(a / p),
		         (int)exp, (unsigned long long)(a % p));
	else
		snprintf(out, 40, "%s%llu", v < 0 ? "-" : "", (unsigned long long)a);
}

const struct tl_stmt *cli_state_stmt(const struct tl_state *st, const char *leaf_hex)
{
	for (size_t i = 0; i < st->nstmts; i++)
		if (strcmp(st->stmts[i].leaf_hex, leaf_hex) == 0)
			return &st->stmts[i];
	return NULL;
}

int cli_stmt_load(struct cli *c, const char *leaf_hex, struct cli_stmt *s)
{
	uint8_t leaf[TL_HASH_LEN];
	struct tl_feed f;
	struct tl_entry e;
	size_t where;
	int rc;

	memset(s, 0, sizeof *s);
	tl_buf_init(&s->rec, TL_RECORD_MAX);
	if (strlen(leaf_hex) != 2 * TL_HASH_LEN ||
	    tl_hex_decode(leaf, TL_HASH_LEN, leaf_hex, 2 * TL_HASH_LEN) != 0)
		return cli_usage(c, "STATEMENT must be a leaf hash (64 hex digits), not '%s'",
		                 leaf_hex);
	tl_hex_encode(s->leaf, leaf, TL_HASH_LEN);
	rc = tl_store_find_leaf(c->store, leaf, s->origin, &s->seq);
	if (rc == TL_ENOTFOUND)
		return cli_fail(c, EXIT_INVALID,
		                "no entry with leaf %s here (has the statement arrived? see tally "
		                "statement list)",
		                s->leaf);
	if (rc || (rc = tl_store_feed_get(c->store, s->origin, &f)) != 0 ||
	    (rc = tl_store_record(c->store, &f, s->seq, &s->rec)) != 0)
		return cli_store_fail(c, rc);
	if ((rc = tl_record_decode(&e, s->rec.data, s->rec.len, &where)) != 0)
		return cli_fail(c, EXIT_INVALID, "entry %s is malformed: %s", s->leaf,
		                tl_strerror(rc));
	if (e.kind_len != 9 || memcmp(e.kind, "statement", 9) != 0)
		return cli_fail(c, EXIT_INVALID, "entry %s is a '%.*s', not a statement", s->leaf,
		                (int)e.kind_len, (const char *)e.kind);
	s->body = tl_mp_to_json(e.body, e.body_len);
	if (!json_is_integer(json_object_get(s->body, "closing")))
		return cli_fail(c, EXIT_INVALID, "statement %s has no integer closing", s->leaf);
	return 0;
}

void cli_stmt_release(struct cli_stmt *s)
{
	tl_buf_release(&s->rec);
	json_decref(s->body);
	s->body = NULL;
}

static int at_opt(struct cli *c, uint64_t *at)
{
	*at = cli_now_ms();
	return cli_opt(c, "--at") ? cli_parse_time(c, "--at", cli_opt(c, "--at"), at) : 0;
}

static void print_json(json_t *o)
{
	char *js = json_dumps(o, JSON_COMPACT);
	if (js)
		printf("%s\n", js);
	free(js);
	json_decref(o);
}

/* -------------------------------------------------------------- import */

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

/* ---------------------------------------------------------------- send */

/*
 * tally statement send FILE.json --channel C: a statement body as JSON (as
 * `statement import --dry-run` prints it, or as an ERP integration writes
 * it), checked as every reader will check it, then appended and sent.
 */
static int statement_send(struct cli *c)
{
	const char *channel = cli_opt(c, "--channel");
	struct tl_buf file, mp;
	struct tl_feed f;
	json_error_t je;
	json_t *body = NULL;
	char err[256], why[256];
	int rc;

	if (c->npos != 1 || !channel)
		return cli_usage(c, "usage: tally statement send FILE.json --channel C");
	tl_buf_init(&file, TL_ENTRY_MAX * 8);
	tl_buf_init(&mp, TL_ENTRY_MAX);
	if ((rc = cli_read_file(c, c->pos[0], TL_ENTRY_MAX * 8, &file)) != 0)
		goto out;
	body = json_loadb((const char *)file.data, file.len, JSON_REJECT_DUPLICATES, &je);
	if (!body || !json_is_object(body)) {
		rc = cli_fail(c, EXIT_INVALID, "%s:%d:%d: %s", c->pos[0], je.line, je.column,
		              body ? "a statement must be a JSON object" : je.text);
		goto out;
	}
	if (tl_json_to_mp(body, &mp, err, sizeof err) != 0) {
		rc = cli_fail(c, EXIT_INVALID, "%s: %s", c->pos[0], err);
		goto out;
	}
	if (tl_statement_body_check(mp.data, mp.len, why, sizeof why) != 0) {
		rc = cli_fail(c, EXIT_INVALID, "%s: the statement %s; nothing was sent", c->pos[0],
		              why);
		goto out;
	}
	if ((rc = cli_open_store(c, 0)) != 0 || (rc = cli_own_feed(c, channel, NULL, NULL, &f)) != 0)
		goto out;
	rc = cli_append_one(c, f.origin, "statement", body);
	if (rc == 0 && !c->json)
		fprintf(stderr, "statement %s v%lld sent on %s\n",
		        json_string_value(json_object_get(body, "id")),
		        (long long)json_integer_value(json_object_get(body, "version")), f.origin);
out:
	json_decref(body);
	tl_buf_release(&mp);
	tl_buf_release(&file);
	return rc;
}

/* -------------------------------------------------------------- adjust */

#define ADJ_LINES_MAX 32

/* TYPE:DOC:AMOUNT[:DATE[:MEMO]] split in place (the memo keeps its colons). */
static int adj_split(struct cli *c, char *v, struct tl_adjust_line *l)
{
	char *f[5] = {0};
	int n = 0;
	f[n++] = v;
	for (char *p = v; *p && n < 5; p++)
		if (*p == ':') {
			*p = 0;
			f[n++] = p + 1;
		}
	if (n < 3)
		return cli_usage(c,
		                 "--line must be TYPE:DOC:AMOUNT[:DATE[:MEMO]] (e.g. "
		                 "credit_note:CN-7:1,200.00:2026-11-30:price correction), not '%s'",
		                 v);
	memset(l, 0, sizeof *l);
	l->type = f[0];
	l->doc = f[1];
	l->amount = f[2];
	l->date = n > 3 && *f[3] ? f[3] : NULL;
	l->memo = n > 4 && *f[4] ? f[4] : NULL;
	return 0;
}

static int statement_adjust(struct cli *c)
{
	const char *channel = cli_opt(c, "--channel");
	char *copies[ADJ_LINES_MAX] = {0};
	struct tl_adjust_line add[ADJ_LINES_MAX];
	struct tl_errlist *errs = NULL;
	struct cli_stmt s = {0};
	struct tl_state *st = NULL;
	struct tl_feed own;
	const struct tl_stmt *t;
	json_t *body = NULL;
	size_t n = 0;
	int rc;

	tl_buf_init(&s.rec, 0);
	if (c->npos != 1 || !channel)
		return cli_usage(c, "usage: tally statement adjust STATEMENT_LEAF --channel C "
		                    "--line TYPE:DOC:AMOUNT[:DATE[:MEMO]]... [--date D]");
	for (int i = 0; i < c->nopts; i++) {
		if (strcmp(c->opts[i].name, "--line") != 0)
			continue;
		if (n == ADJ_LINES_MAX) {
			rc = cli_usage(c, "at most %d --line per adjustment", ADJ_LINES_MAX);
			goto out;
		}
		if (!(copies[n] = strdup(c->opts[i].val))) {
			rc = cli_fail(c, EXIT_ENV, "out of memory");
			goto out;
		}
		if ((rc = adj_split(c, copies[n], &add[n])) != 0)
			goto out;
		n++;
	}
	if (n == 0) {
		rc = cli_usage(c, "give at least one --line TYPE:DOC:AMOUNT[:DATE[:MEMO]]");
		goto out;
	}
	if ((rc = cli_open_store(c, 0)) != 0 || (rc = cli_stmt_load(c, c->pos[0], &s)) != 0 ||
	    (rc = cli_channel_state(c, channel, cli_now_ms(), &own, &st)) != 0)
		goto out;
	if (strcmp(s.origin, own.origin) != 0) {
		rc = cli_fail(c, EXIT_INVALID,
		              "statement %s is not in this book's feed %s: only its supplier "
		              "adjusts it",
		              s.leaf, own.origin);
		goto out;
	}
	if (!(t = cli_state_stmt(st, s.leaf))) {
		rc = cli_fail(c, EXIT_INVALID,
		              "statement %s is not a valid statement of the channel (see tally "
		              "channel state)",
		              s.leaf);
		goto out;
	}
	if (t->superseded_by != SIZE_MAX) {
		rc = cli_fail(c, EXIT_INVALID,
		              "statement %s v%llu was already re-issued as v%llu (leaf %s); adjust "
		              "that version",
		              t->id, (unsigned long long)t->version,
		              (unsigned long long)st->stmts[t->superseded_by].version,
		              st->stmts[t->superseded_by].leaf_hex);
		goto out;
	}
	if (t->status == TL_STMT_CLOSED) {
		rc = cli_fail(c, EXIT_INVALID,
		              "statement %s v%llu is closed; it cannot be adjusted", t->id,
		              (unsigned long long)t->version);
		goto out;
	}
	if (!(errs = malloc(sizeof *errs))) {
		rc = cli_fail(c, EXIT_ENV, "out of memory");
		goto out;
	}
	rc = tl_statement_adjust(s.body, s.leaf, add, n, cli_opt(c, "--date"), &body, errs);
	if (rc) {
		tl_errlist_print(errs, stderr);
		fprintf(stderr, "tally statement adjust: nothing was appended\n");
		rc = rc == TL_ENOMEM ? EXIT_ENV : EXIT_INVALID;
		goto out;
	}
	rc = cli_append_one(c, own.origin, "statement", body);
	if (rc == 0 && !c->json) {
		char was[40], now[40];
		const char *cur = json_string_value(json_object_get(body, "currency"));
		cli_amount(was, t->closing, cur);
		cli_amount(now, (int64_t)json_integer_value(json_object_get(body, "closing")), cur);
		fprintf(stderr,
		        "statement %s v%lld re-issued: %zu line%s added, closing %s -> %s %s; it "
		        "supersedes v%llu\n",
		        t->id, (long long)json_integer_value(json_object_get(body, "version")), n,
		        n == 1 ? "" : "s", was, now, cur, (unsigned long long)t->version);
	}
out:
	for (size_t i = 0; i < ADJ_LINES_MAX; i++)
		free(copies[i]);
	free(errs);
	json_decref(body);
	cli_stmt_release(&s);
	tl_state_free(st);
	return rc;
}

/* ---------------------------------------------------------------- list */

static const char *time_src_name(enum tl_time_src s)
{
	static const char *const n[] = {"the supplier's claimed time", "the customer's receipt",
	                                "the customer's witnessed receipt",
	                                "the statement's witnessed time"};
	return (unsigned)s <= TL_TIME_WITNESSED ? n[s] : "?";
}

static json_t *stmt_json(const struct tl_state *st, const struct tl_stmt *t, int incoming)
{
	char dl[32];
	cli_time_iso(dl, t->deadline_ms);
	json_t *o = json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:I,s:s,s:s,s:b,s:I}", "id",
	                      t->id, "version", (json_int_t)t->version, "leaf", t->leaf_hex,
	                      "direction", incoming ? "incoming" : "outgoing", "date", t->date,
	                      "currency", t->currency, "opening", (json_int_t)t->opening, "closing",
	                      (json_int_t)t->closing, "status", tl_stmt_status_name(t->status),
	                      "deadline_ms", (json_int_t)t->deadline_ms, "deadline", dl,
	                      "deadline_from", cli_time_src_code(t->deadline_src), "late", t->late,
	                      "lines", (json_int_t)t->nlines);
	json_object_set_new(o, "supplier", json_string(st->origin[TL_ROLE_SUPPLIER]));
	if (t->superseded_by != SIZE_MAX)
		json_object_set_new(o, "superseded_by",
		                    json_string(st->stmts[t->superseded_by].leaf_hex));
	if (t->supersedes != SIZE_MAX)
		json_object_set_new(o, "supersedes",
		                    json_string(st->stmts[t->supersedes].leaf_hex));
	if (t->has_agreed)
		json_object_set_new(o, "agreed_balance", json_integer(t->agreed_balance));
	if (t->has_their_balance)
		json_object_set_new(o, "their_balance", json_integer(t->their_balance));
	return o;
}

static int statement_list(struct cli *c)
{
	const char *channel = cli_opt(c, "--channel");
	int in = cli_has(c, "--incoming"), outg = cli_has(c, "--outgoing");
	struct tl_feed *feeds = NULL;
	size_t nf = 0, shown = 0;
	uint64_t at;
	json_t *arr = c->json ? json_array() : NULL;
	int rc;

	if (c->npos || (in && outg))
		return cli_usage(c, "usage: tally statement list [--incoming|--outgoing] "
		                    "[--channel C] [--at TIME] [--witness VKEY... --quorum K] "
		                    "[--json]");
	if ((rc = at_opt(c, &at)) != 0 || (rc = cli_open_store(c, 0)) != 0)
		goto out;
	if (tl_store_feed_list(c->store, &feeds, &nf) != 0) {
		rc = cli_store_fail(c, TL_ESTORE);
		goto out;
	}
	if (!c->json)
		printf("%-9s %-20s %4s %-10s %16s %-4s %-17s %-20s %-14s %-13s %-13s %s\n",
		       "DIRECTION", "ID", "VER", "DATE", "CLOSING", "CUR", "STATUS",
		       "DEADLINE (UTC)", "DEADLINE FROM", "CLAIMED", "PROVEN", "LEAF");
	for (size_t i = 0; i < nf; i++) {
		char ch[TL_CHANNEL_LEN * 2 + 1];
		struct cli_chanstate cs;
		if (!(feeds[i].flags & TL_FEED_OWN))
			continue;
		tl_hex_encode(ch, feeds[i].o.channel, TL_CHANNEL_LEN);
		if (channel && strcmp(channel, ch) != 0 && strcmp(channel, feeds[i].origin) != 0)
			continue;
		if ((rc = cli_chanstate_load(c, feeds[i].origin, at, &cs)) != 0)
			goto out;
		const struct tl_state *st = cs.st;
		for (size_t k = 0; k < st->nstmts; k++) {
			const struct tl_stmt *t = &st->stmts[k];
			int incoming = strcmp(st->origin[TL_ROLE_SUPPLIER], cs.own.origin) != 0;
			if ((in && !incoming) || (outg && incoming))
				continue;
			shown++;
			if (arr) {
				json_t *o = stmt_json(st, t, incoming);
				json_object_set_new(o, "channel", json_string(ch));
				json_object_set_new(o, "feed", json_string(cs.own.origin));
				json_object_set_new(o, "lateness", cli_late_json(&cs, k));
				json_object_set_new(o, "witnesses", cli_witnesses_json(&cs));
				json_array_append_new(arr, o);
			} else {
				char dl[32], amt[40], cv[32], pv[32];
				cli_time_iso(dl, t->deadline_ms);
				dl[19] = 0; /* to the second */
				cli_amount(amt, t->closing, t->currency);
				cli_late_short(&cs.e.late[k], cv, pv, sizeof cv);
				printf("%-9s %-20s %4llu %-10s %16s %-4s %-17s %-20s %-14s %-13s "
				       "%-13s %.16s\n",
				       incoming ? "incoming" : "outgoing", t->id,
				       (unsigned long long)t->version, t->date, amt, t->currency,
				       tl_stmt_status_name(t->status), dl,
				       cli_time_src_code(t->deadline_src), cv, pv, t->leaf_hex);
			}
		}
		cli_chanstate_release(&cs);
	}
	if (arr) {
		print_json(arr);
		arr = NULL;
	} else if (!shown) {
		printf("(no %sstatements%s)\n",
		       in     ? "incoming "
		       : outg ? "outgoing "
		              : "",
		       channel ? " in this channel" : "");
	} else {
		printf("(CLAIMED: by the authors' own clocks; PROVEN: by the witnesses' "
		       "cosignatures, a lower bound; tally statement show LEAF has the "
		       "times)\n");
	}
	rc = 0;
out:
	json_decref(arr);
	free(feeds);
	return rc;
}

/* ---------------------------------------------------------------- show */

/* The lines of the dispute in force, as written in the customer's feed
 * (same order as t->lines), for their voucher hashes; NULL when none. */
static json_t *dispute_body_lines(struct cli *c, const struct tl_state *st, const struct tl_stmt *t)
{
	struct tl_feed f;
	struct tl_buf rec;
	struct tl_entry e;
	json_t *body = NULL, *lines = NULL;

	if (t->answered != 2 || !t->ndlines ||
	    tl_store_feed_get(c->store, st->origin[TL_ROLE_CUSTOMER], &f) != 0)
		return NULL;
	tl_buf_init(&rec, TL_RECORD_MAX);
	if (tl_store_record(c->store, &f, t->answer_seq, &rec) == 0 &&
	    tl_record_decode(&e, rec.data, rec.len, NULL) == 0 &&
	    (body = tl_mp_to_json(e.body, e.body_len)) != NULL) {
		lines = json_object_get(body, "lines");
		json_incref(lines);
	}
	json_decref(body);
	tl_buf_release(&rec);
	if (json_array_size(lines) != t->ndlines) {
		json_decref(lines);
		return NULL;
	}
	return lines;
}

static int statement_show(struct cli *c)
{
	const char *channel = cli_opt(c, "--channel");
	struct cli_stmt s = {0};
	struct cli_chanstate cs;
	const struct tl_state *st;
	const struct tl_stmt *t;
	uint64_t at;
	size_t ti;
	int rc, incoming;

	tl_buf_init(&s.rec, 0);
	memset(&cs, 0, sizeof cs);
	if (c->npos != 1 || !channel)
		return cli_usage(c, "usage: tally statement show STATEMENT_LEAF --channel C "
		                    "[--at TIME] [--witness VKEY... --quorum K] [--json]");
	if ((rc = at_opt(c, &at)) != 0 || (rc = cli_open_store(c, 0)) != 0 ||
	    (rc = cli_stmt_load(c, c->pos[0], &s)) != 0 ||
	    (rc = cli_chanstate_load(c, channel, at, &cs)) != 0)
		goto out;
	st = cs.st;
	if (!(t = cli_state_stmt(st, s.leaf))) {
		rc = cli_fail(c, EXIT_INVALID,
		              "entry %s is not a valid statement of channel %s (see tally channel "
		              "state for findings)",
		              s.leaf, channel);
		goto out;
	}
	ti = (size_t)(t - st->stmts);
	incoming = strcmp(st->origin[TL_ROLE_SUPPLIER], cs.own.origin) != 0;
	json_t *body = s.body;
	json_t *tl = json_array(), *dl = json_array();
	for (size_t i = 0; i < t->ntimeline; i++) {
		const struct tl_state_event *e = &t->timeline[i];
		char when[32], ph[TL_PUB_LEN * 2 + 1];
		cli_time_iso(when, e->claimed_ms);
		json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:s}", "event", tl_event_name(e->event),
		                      "feed", e->feed == TL_ROLE_SUPPLIER ? "supplier" : "customer",
		                      "seq", (json_int_t)e->seq, "claimed_ms",
		                      (json_int_t)e->claimed_ms, "claimed", when);
		/* existed_by under the witness quorum; null: not proven */
		json_object_set_new(o, "witnessed_ms",
		                    e->witnessed_ms ? json_integer((json_int_t)e->witnessed_ms)
		                                    : json_null());
		if (e->has_person) {
			tl_hex_encode(ph, e->person, TL_PUB_LEN);
			json_object_set_new(o, "person", json_string(ph));
		}
		json_array_append_new(tl, o);
	}
	json_t *dbl = dispute_body_lines(c, st, t);
	for (size_t k = 0; k < t->ndlines; k++) {
		json_t *l = json_pack("{s:s,s:I,s:s,s:I}", "doc", t->lines[k].doc, "their_amount",
		                      (json_int_t)t->lines[k].their_amount, "reason",
		                      tl_reason_name(t->lines[k].reason), "vouchers",
		                      (json_int_t)t->lines[k].nblobs);
		json_t *blobs = json_object_get(json_array_get(dbl, k), "blobs");
		if (t->lines[k].note)
			json_object_set_new(l, "note", json_string(t->lines[k].note));
		/* fetch each with: tally blob get HASH -o FILE */
		json_object_set_new(l, "blobs", blobs ? json_incref(blobs) : json_array());
		json_array_append_new(dl, l);
	}
	json_decref(dbl);
	if (c->json) {
		json_t *o = stmt_json(st, t, incoming);
		json_object_set_new(o, "at_ms", json_integer((json_int_t)at));
		json_object_set(o, "period", json_object_get(body, "period"));
		json_object_set(o, "statement_lines", json_object_get(body, "lines"));
		json_object_set(o, "aging", json_object_get(body, "aging"));
		json_object_set_new(o, "dispute_lines", dl);
		json_object_set_new(o, "timeline", tl);
		json_object_set_new(o, "lateness", cli_late_json(&cs, ti));
		json_object_set_new(o, "witnesses", cli_witnesses_json(&cs));
		print_json(o);
		rc = 0;
		goto out;
	}
	{
		char a[40], b[40], when[32];
		const char *cur = t->currency;
		json_t *period = json_object_get(body, "period"), *lines, *l, *ag;
		size_t i;
		cli_time_iso(when, t->deadline_ms);
		printf("statement %s version %llu (%s)  leaf %s\n", t->id,
		       (unsigned long long)t->version, incoming ? "incoming" : "outgoing",
		       t->leaf_hex);
		printf("  supplier feed %s\n", st->origin[TL_ROLE_SUPPLIER]);
		printf("  as of %s, period %s to %s, currency %s\n", t->date,
		       json_string_value(json_object_get(period, "from")),
		       json_string_value(json_object_get(period, "to")), cur);
		cli_amount(a, t->opening, cur);
		cli_amount(b, t->closing, cur);
		printf("  opening %s  closing %s  (%zu lines)\n", a, b, t->nlines);
		{
			const struct tl_late *lt = &cs.e.late[ti];
			printf("  status: %s%s\n", tl_stmt_status_name(t->status),
			       lt->witnessed == TL_VERDICT_LATE ? " (late: proven)"
			       : lt->claimed == TL_VERDICT_LATE
			               ? " (late by the claimed times; not proven)"
			       : t->late ? " (witnessed after the deadline; lateness not proven)"
			                 : "");
		}
		printf("  deadline: %s (counted from %s%s)\n", when, time_src_name(t->deadline_src),
		       t->deadline_src == TL_TIME_WITNESSED ||
		                       t->deadline_src == TL_TIME_SEEN_WITNESSED
		               ? ": proven"
		               : ": claimed, not proven");
		if (t->supersedes != SIZE_MAX)
			printf("  supersedes v%llu (leaf %s)\n",
			       (unsigned long long)st->stmts[t->supersedes].version,
			       st->stmts[t->supersedes].leaf_hex);
		if (t->superseded_by != SIZE_MAX)
			printf("  re-issued as v%llu (leaf %s)\n",
			       (unsigned long long)st->stmts[t->superseded_by].version,
			       st->stmts[t->superseded_by].leaf_hex);
		if (t->has_agreed) {
			cli_amount(a, t->agreed_balance, cur);
			printf("  confirmed balance %s\n", a);
		}
		if (t->has_their_balance) {
			cli_amount(a, t->their_balance, cur);
			printf("  the customer's balance %s\n", a);
		}
		printf("\n  %-10s %-11s %-20s %16s %-10s %s\n", "DATE", "TYPE", "DOC", "AMOUNT",
		       "DUE", "MEMO");
		lines = json_object_get(body, "lines");
		json_array_foreach(lines, i, l)
		{
			if (i == 200 && json_array_size(lines) > 220) {
				printf("  ... %zu more lines (--json lists them all)\n",
				       json_array_size(lines) - 200);
				break;
			}
			cli_amount(a, (int64_t)json_integer_value(json_object_get(l, "amount")),
			           cur);
			const char *due = json_string_value(json_object_get(l, "due"));
			const char *memo = json_string_value(json_object_get(l, "memo"));
			printf("  %-10s %-11s %-20s %16s %-10s %s\n",
			       json_string_value(json_object_get(l, "date")),
			       json_string_value(json_object_get(l, "type")),
			       json_string_value(json_object_get(l, "doc")), a, due ? due : "",
			       memo ? memo : "");
		}
		ag = json_object_get(body, "aging");
		static const char *const bk[] = {"current", "d1_30", "d31_60", "d61_90",
		                                 "d90_plus"};
		static const char *const bl[] = {"current", "1-30", "31-60", "61-90", "90+"};
		printf("\n  aging at %s:", t->date);
		for (int k = 0; k < 5; k++) {
			cli_amount(a, (int64_t)json_integer_value(json_object_get(ag, bk[k])), cur);
			printf("  %s %s", bl[k], a);
		}
		printf("\n");
		if (t->ndlines) {
			printf("\n  disputed lines:\n");
			for (size_t k = 0; k < t->ndlines; k++) {
				const struct tl_dispute_line *d = &t->lines[k];
				cli_amount(a, d->their_amount, cur);
				printf("    %-20s their amount %s  reason %s%s%s", d->doc, a,
				       tl_reason_name(d->reason), d->note ? "  note: " : "",
				       d->note ? d->note : "");
				printf("\n");
				json_t *vb = json_object_get(json_array_get(dl, k), "blobs"), *h;
				size_t bi;
				json_array_foreach(vb, bi, h)
				        printf("      voucher %s  (tally blob get %s -o FILE)\n",
				               json_string_value(h), json_string_value(h));
			}
		}
		printf("\n  claimed and proven times:\n");
		cli_witnesses_print(&cs, "    ");
		cli_late_print(&cs, ti, "    ");
		printf("\n  timeline (claimed: each side's own clock; witnessed: proven to "
		       "exist by then):\n");
		for (size_t k = 0; k < t->ntimeline; k++) {
			const struct tl_state_event *e = &t->timeline[k];
			char wt[32], ph[17] = "";
			cli_time_iso(when, e->claimed_ms);
			if (e->witnessed_ms)
				cli_time_iso(wt, e->witnessed_ms);
			if (e->has_person)
				tl_hex_encode(ph, e->person, 8);
			printf("    %s  %-10s %-8s seq %-6llu%s%s%s%s\n", when,
			       tl_event_name(e->event),
			       e->feed == TL_ROLE_SUPPLIER ? "supplier" : "customer",
			       (unsigned long long)e->seq, e->has_person ? "  person " : "", ph,
			       e->witnessed_ms ? "  witnessed " : "", e->witnessed_ms ? wt : "");
		}
		json_decref(tl);
		json_decref(dl);
	}
	rc = 0;
out:
	cli_stmt_release(&s);
	cli_chanstate_release(&cs);
	return rc;
}

/* -------------------------------------------------------------- export */

static int statement_export(struct cli *c)
{
	const char *channel = cli_opt(c, "--channel"), *file = cli_opt(c, "-o");
	struct cli_stmt s = {0};
	struct tl_state *st = NULL;
	struct tl_feed own;
	const struct tl_stmt *t;
	char *b64 = NULL, ch[TL_CHANNEL_LEN * 2 + 1];
	int rc;

	tl_buf_init(&s.rec, 0);
	if (c->npos != 1 || !channel || !file)
		return cli_usage(c, "usage: tally statement export STATEMENT_LEAF --channel C "
		                    "-o STMT.json");
	if ((rc = cli_open_store(c, 0)) != 0 || (rc = cli_stmt_load(c, c->pos[0], &s)) != 0 ||
	    (rc = cli_channel_state(c, channel, cli_now_ms(), &own, &st)) != 0)
		goto out;
	if (!(t = cli_state_stmt(st, s.leaf))) {
		rc = cli_fail(c, EXIT_INVALID, "entry %s is not a valid statement of channel %s",
		              s.leaf, channel);
		goto out;
	}
	if (!(b64 = malloc(tl_b64_encoded_len(s.rec.len) + 1))) {
		rc = cli_fail(c, EXIT_ENV, "out of memory");
		goto out;
	}
	tl_b64_encode(b64, s.rec.data, s.rec.len);
	tl_hex_encode(ch, own.o.channel, TL_CHANNEL_LEN);
	/* The signer trusts only "record" (it carries the supplier's signature
	 * and is checked against "leaf"); the rest is for people and tools. */
	json_t *o = json_pack(
	        "{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:I,s:s,s:O}", "format", "tally-statement/v1",
	        "channel", ch, "supplier", s.origin, "leaf", s.leaf, "seq", (json_int_t)s.seq,
	        "record", b64, "status", tl_stmt_status_name(t->status), "deadline_ms",
	        (json_int_t)t->deadline_ms, "version", (json_int_t)t->version, "current",
	        t->superseded_by == SIZE_MAX ? "yes" : "no (re-issued)", "statement", s.body);
	char *js = o ? json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!js) {
		rc = cli_fail(c, EXIT_ENV, "out of memory");
		goto out;
	}
	rc = cli_write_atomic(c, file, js, strlen(js));
	free(js);
	if (rc == 0 && !c->json)
		fprintf(stderr,
		        "exported statement %s v%llu to %s; sign it offline with tally sign %s "
		        "--key PERSON.key --confirm|--dispute ...\n",
		        t->id, (unsigned long long)t->version, file, file);
out:
	free(b64);
	cli_stmt_release(&s);
	tl_state_free(st);
	return rc;
}

/* ------------------------------------------------------------ dispatch */

int cmd_statement(int argc, char **argv)
{
	static const char *const allowed[] = {
	        "--channel", "--id",       "--currency",   "--from",    "--to",   "--date",
	        "--opening", "--encoding", "--supersedes", "--version", "--line", "--at",
	        "-o",        "--witness",  "--quorum",     NULL};
	static const char *const flags[] = {"--signed", "--dry-run", "--incoming", "--outgoing",
	                                    NULL};
	static const struct {
		const char *name;
		int (*fn)(struct cli *);
	} subs[] = {{"import", statement_import},
	            {"send", statement_send},
	            {"adjust", statement_adjust},
	            {"list", statement_list},
	            {"show", statement_show},
	            {"export", statement_export}};
	static char names[6][24];
	struct cli c = {.cmd = "statement"};
	int rc;

	if (argc < 1)
		return cli_usage(&c, "usage: tally statement import|send|adjust|list|show|export ...");
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		if (strcmp(argv[0], subs[i].name) != 0)
			continue;
		snprintf(names[i], sizeof names[i], "statement %s", subs[i].name);
		c.cmd = names[i];
		if ((rc = cli_parse(&c, argc - 1, argv + 1, allowed, flags)) != 0)
			return rc;
		rc = subs[i].fn(&c);
		cli_close(&c);
		return rc;
	}
	return cli_usage(&c, "usage: tally statement import|send|adjust|list|show|export ... (not '%s')",
	                 argv[0]);
}
