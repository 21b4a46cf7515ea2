/*
 * cmd_sign.c — air-gapped signing (issue 4):
 *   tally sign STMT.json --key PERSON.key --confirm|--dispute ... [-o ANSWER.json]
 *       on an offline machine, with no data directory: checks the exported
 *       statement (the supplier's signature, its leaf), shows it, and writes
 *       the person-signed confirm or dispute body;
 *   tally submit ANSWER.json --channel C
 *       on the online machine: checks the person signature and that the
 *       statement is the one in the channel, then appends the answer (via
 *       the running node, like `tally confirm`).
 * The body is built by the same code as `tally confirm` / `tally dispute`
 * (cli_answer_body in cmd_people.c).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "consensus/state.h"

#define STMT_FILE_MAX ((size_t)4 * TL_RECORD_MAX + ((size_t)1 << 20))

static int read_json(struct cli *c, const char *path, json_t **out)
{
	struct tl_buf b;
	json_error_t je;
	int rc;
	tl_buf_init(&b, STMT_FILE_MAX);
	if ((rc = cli_read_file(c, path, STMT_FILE_MAX, &b)) != 0) {
		tl_buf_release(&b);
		return rc;
	}
	*out = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, &je);
	tl_buf_release(&b);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return cli_fail(c, EXIT_INVALID, "%s: not a JSON object (line %d: %s)", path,
		                je.line, je.text);
	}
	return 0;
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ----------------------------------------------------------------- sign */

static void summary(FILE *fp, const json_t *st, const char *leaf, const char *supplier)
{
	const char *cur = jstr(st, "currency");
	const json_t *ag = json_object_get(st, "aging"), *period = json_object_get(st, "period");
	char a[40], b[40];
	cli_amount(a, (int64_t)json_integer_value(json_object_get(st, "opening")), cur);
	cli_amount(b, (int64_t)json_integer_value(json_object_get(st, "closing")), cur);
	fprintf(fp, "statement %s version %lld, as of %s, period %s to %s\n", jstr(st, "id"),
	        (long long)json_integer_value(json_object_get(st, "version")), jstr(st, "date"),
	        jstr(period, "from"), jstr(period, "to"));
	fprintf(fp, "  from the supplier feed %s\n  leaf %s\n", supplier, leaf);
	fprintf(fp, "  %s: opening %s, %zu lines, closing %s\n", cur, a,
	        json_array_size(json_object_get(st, "lines")), b);
	cli_amount(a, (int64_t)json_integer_value(json_object_get(ag, "current")), cur);
	fprintf(fp, "  aging: current %s", a);
	static const char *const k[] = {"d1_30", "d31_60", "d61_90", "d90_plus"};
	static const char *const l[] = {"1-30", "31-60", "61-90", "90+"};
	for (int i = 0; i < 4; i++) {
		cli_amount(a, (int64_t)json_integer_value(json_object_get(ag, k[i])), cur);
		fprintf(fp, ", %s %s", l[i], a);
	}
	fprintf(fp, "\n");
}

int cmd_sign(int argc, char **argv)
{
	static const char *const allowed[] = {"--key",    "--balance", "--line", "--their-amount",
	                                      "--reason", "--note",    "-o",     NULL};
	static const char *const flags[] = {"--confirm", "--dispute", NULL};
	struct cli c = {.cmd = "sign"};
	json_t *f = NULL, *st = NULL, *body = NULL, *ans = NULL;
	struct tl_buf rec;
	struct tl_entry e;
	uint8_t leaf[TL_HASH_LEN];
	char lh[2 * TL_HASH_LEN + 1], ch[TL_CHANNEL_LEN * 2 + 1];
	const char *keyfile, *rb64, *out;
	size_t got = 0;
	int rc, confirm, dispute;

	tl_buf_init(&rec, TL_RECORD_MAX);
	if ((rc = cli_parse(&c, argc, argv, allowed, flags)) != 0)
		return rc;
	keyfile = cli_opt(&c, "--key");
	out = cli_opt(&c, "-o");
	confirm = cli_has(&c, "--confirm");
	dispute = cli_has(&c, "--dispute");
	if (c.npos != 1 || !keyfile || confirm == dispute) {
		rc = cli_usage(&c, "usage: tally sign STMT.json --key PERSON.key --confirm "
		                   "[--balance X] | --dispute --balance X --line DOC "
		                   "--their-amount X --reason CODE [--note T]... [-o ANSWER.json]");
		goto done;
	}
	if ((rc = read_json(&c, c.pos[0], &f)) != 0)
		goto done;
	rb64 = jstr(f, "record");
	if (!jstr(f, "format") || strcmp(jstr(f, "format"), "tally-statement/v1") != 0 || !rb64 ||
	    !jstr(f, "leaf") || !jstr(f, "supplier") || !jstr(f, "channel")) {
		rc = cli_fail(&c, EXIT_INVALID,
		              "%s is not a tally-statement/v1 export (tally statement export)",
		              c.pos[0]);
		goto done;
	}
	if ((rc = tl_buf_reserve(&rec, TL_RECORD_MAX)) != 0 ||
	    tl_b64_decode(rec.data, TL_RECORD_MAX, &got, rb64, strlen(rb64)) != 0 ||
	    (rec.len = got, tl_record_decode(&e, rec.data, rec.len, NULL) != 0)) {
		rc = cli_fail(&c, EXIT_INVALID, "%s: the record is not a valid tally record",
		              c.pos[0]);
		goto done;
	}
	tl_record_leaf_hash(leaf, rec.data, rec.len);
	tl_hex_encode(lh, leaf, TL_HASH_LEN);
	tl_hex_encode(ch, e.origin.channel, TL_CHANNEL_LEN);
	if (e.kind_len != 9 || memcmp(e.kind, "statement", 9) != 0 ||
	    strcmp(lh, jstr(f, "leaf")) != 0 || strlen(jstr(f, "supplier")) != TL_ORIGIN_LEN ||
	    memcmp(jstr(f, "supplier"), e.origin_str, TL_ORIGIN_LEN) != 0 ||
	    strcmp(ch, jstr(f, "channel")) != 0) {
		rc = cli_fail(&c, EXIT_INVALID,
		              "%s: the record is not the statement the file names (leaf, supplier "
		              "or channel differ); refusing to sign",
		              c.pos[0]);
		goto done;
	}
	if (tl_record_verify_sig(&e) != 0) {
		rc = cli_fail(&c, EXIT_INVALID,
		              "%s: the supplier's signature on the statement does not verify; "
		              "refusing to sign",
		              c.pos[0]);
		goto done;
	}
	/* What a person signs must be a statement every party accepts: the
	 * channel state's own checks (fields, totals), before it is shown. */
	char why[256];
	if (tl_statement_body_check(e.body, e.body_len, why, sizeof why) != 0) {
		rc = cli_fail(&c, EXIT_INVALID,
		              "%s: the statement %s; refusing to sign what no party would accept",
		              c.pos[0], why);
		goto done;
	}
	st = tl_mp_to_json(e.body, e.body_len);
	if (!st) {
		rc = cli_fail(&c, EXIT_ENV, "out of memory");
		goto done;
	}
	summary(out ? stdout : stderr, st, lh, jstr(f, "supplier"));
	if ((rc = cli_answer_body(&c, confirm ? "confirm" : "dispute", lh,
	                          (int64_t)json_integer_value(json_object_get(st, "closing")),
	                          keyfile, &body)) != 0)
		goto done;
	ans = json_pack("{s:s,s:s,s:s,s:s,s:s,s:O}", "format", "tally-answer/v1", "kind",
	                confirm ? "confirm" : "dispute", "channel", ch, "supplier",
	                jstr(f, "supplier"), "statement", lh, "body", body);
	char *js = ans ? json_dumps(ans, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
	if (!js) {
		rc = cli_fail(&c, EXIT_ENV, "out of memory");
		goto done;
	}
	if (out) {
		rc = cli_write_atomic(&c, out, js, strlen(js));
		if (rc == 0)
			printf("signed %s of statement %s by person %s; written to %s — carry it "
			       "to "
			       "the online machine and run tally submit %s --channel %s\n",
			       confirm ? "confirmation" : "dispute", jstr(st, "id"),
			       jstr(body, "person"), out, out, ch);
	} else {
		printf("%s\n", js);
	}
	free(js);
done:
	tl_buf_release(&rec);
	json_decref(f);
	json_decref(st);
	json_decref(body);
	json_decref(ans);
	cli_close(&c);
	return rc;
}

/* --------------------------------------------------------------- submit */

int cmd_submit(int argc, char **argv)
{
	static const char *const allowed[] = {"--channel", NULL};
	struct cli c = {.cmd = "submit"};
	struct cli_stmt s = {0};
	struct tl_buf mp, msg;
	struct tl_feed own;
	json_t *f = NULL, *body;
	const char *kind, *leaf, *person, *sig64;
	uint8_t pk[TL_PUB_LEN], sig[TL_SIG_LEN];
	char err[256];
	size_t got = 0;
	int rc;

	tl_buf_init(&s.rec, 0);
	tl_buf_init(&mp, TL_ENTRY_MAX);
	tl_buf_init(&msg, TL_ENTRY_MAX + 64);
	if ((rc = cli_parse(&c, argc, argv, allowed, NULL)) != 0)
		goto done;
	if (c.npos != 1 || !cli_opt(&c, "--channel")) {
		rc = cli_usage(&c, "usage: tally submit ANSWER.json --channel C");
		goto done;
	}
	if ((rc = read_json(&c, c.pos[0], &f)) != 0)
		goto done;
	kind = jstr(f, "kind");
	leaf = jstr(f, "statement");
	body = json_object_get(f, "body");
	if (!jstr(f, "format") || strcmp(jstr(f, "format"), "tally-answer/v1") != 0 || !kind ||
	    (strcmp(kind, "confirm") != 0 && strcmp(kind, "dispute") != 0) || !leaf ||
	    !json_is_object(body) || !jstr(body, "statement") ||
	    strcmp(jstr(body, "statement"), leaf) != 0) {
		rc = cli_fail(&c, EXIT_INVALID,
		              "%s is not a tally-answer/v1 file (tally sign writes them)",
		              c.pos[0]);
		goto done;
	}
	person = jstr(body, "person");
	sig64 = jstr(body, "person_sig");
	if (!person || strlen(person) != 2 * TL_PUB_LEN ||
	    tl_hex_decode(pk, TL_PUB_LEN, person, strlen(person)) != 0 || !sig64 ||
	    tl_b64_decode(sig, sizeof sig, &got, sig64, strlen(sig64)) != 0 || got != TL_SIG_LEN) {
		rc = cli_fail(&c, EXIT_INVALID, "%s: the answer has no valid person or person_sig",
		              c.pos[0]);
		goto done;
	}
	if (tl_json_to_mp(body, &mp, err, sizeof err) != 0 ||
	    tl_person_sig_message(&msg, kind, strlen(kind), mp.data, mp.len) != 0 ||
	    tl_verify(sig, msg.data, msg.len, pk) != 0) {
		rc = cli_fail(
		        &c, EXIT_INVALID,
		        "%s: the person signature does not verify (the file was changed after "
		        "signing?); nothing was appended",
		        c.pos[0]);
		goto done;
	}
	if ((rc = cli_open_store(&c, 0)) != 0 || (rc = cli_stmt_load(&c, leaf, &s)) != 0)
		goto done;
	if (jstr(f, "supplier") && strcmp(jstr(f, "supplier"), s.origin) != 0) {
		rc = cli_fail(
		        &c, EXIT_INVALID,
		        "%s: statement %s here is from %s, but the answer says %s; nothing was "
		        "appended",
		        c.pos[0], leaf, s.origin, jstr(f, "supplier"));
		goto done;
	}
	if ((rc = cli_own_feed(&c, cli_opt(&c, "--channel"), NULL, s.origin, &own)) != 0)
		goto done;
	{
		char ch[TL_CHANNEL_LEN * 2 + 1];
		struct tl_origin so;
		tl_hex_encode(ch, own.o.channel, TL_CHANNEL_LEN);
		if (tl_origin_parse(&so, s.origin, strlen(s.origin)) != 0 ||
		    memcmp(so.channel, own.o.channel, TL_CHANNEL_LEN) != 0 ||
		    memcmp(so.pk, own.peer, TL_PUB_LEN) != 0) {
			rc = cli_fail(
			        &c, EXIT_INVALID,
			        "statement %s is not from the other side of channel %s; nothing "
			        "was appended",
			        leaf, ch);
			goto done;
		}
	}
	rc = cli_append_one(&c, own.origin, kind, body);
done:
	tl_buf_release(&mp);
	tl_buf_release(&msg);
	cli_stmt_release(&s);
	json_decref(f);
	cli_close(&c);
	return rc;
}
