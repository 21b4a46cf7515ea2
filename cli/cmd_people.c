/*
 * cmd_people.c — people and their answers (issue 4): tally key new|grant|
 * revoke, tally confirm, tally dispute, tally view. A person key is an
 * Ed25519 key pair of its own (not a book key); a book grants it a role in
 * a channel with `key.grant`, and the customer's approvers sign `confirm`
 * and `dispute` bodies with it (docs/protocol.md, "Other reconciliation
 * entries"; consensus/state.c checks role and signature).
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consensus/state.h"

#define PASS_CAP 1024

static const char *const reason_codes[] = {
        "price",     "quantity", "quality", "not_received", "payment_not_recorded",
        "duplicate", "tax",      "fx",      "cut_off",      "other",
        NULL};

/* Strict signed decimal (minor units). */
static int parse_i64(const struct cli *c, const char *what, const char *s, int64_t *out)
{
	char *end;
	long long v;
	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		goto bad;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		goto bad;
	*out = (int64_t)v;
	return 0;
bad:
	return cli_usage(c, "%s must be an integer in minor units, not '%s'", what, s ? s : "");
}

static int hex32_valid(const char *s)
{
	uint8_t b[32];
	return strlen(s) == 64 && tl_hex_decode(b, sizeof b, s, 64) == 0;
}

/*
 * An own feed in a channel: which is a channel id (32 hex) or an own feed
 * origin. book, when set, restricts to that book's feeds; skip, when set,
 * excludes that origin (the statement's author, when the customer answers
 * from a data directory that holds both books).
 */

/* ------------------------------------------------------------- key new */

static int person_pass(struct cli *c, char *pass, size_t *plen, const char *prompt, int confirm)
{
	const char *env = getenv("TALLY_PERSON_PASSPHRASE");
	if (env) {
		size_t n = strlen(env);
		if (n >= PASS_CAP)
			return cli_fail(c, EXIT_ENV, "TALLY_PERSON_PASSPHRASE is too long");
		memcpy(pass, env, n + 1);
		*plen = n;
		return 0;
	}
	if (tl_passphrase_get(pass, PASS_CAP, plen, prompt, confirm) != 0)
		return cli_fail(c, EXIT_ENV,
		                "no passphrase for the person key: set TALLY_PERSON_PASSPHRASE "
		                "(or TALLY_PASSPHRASE) or run on a terminal");
	return 0;
}

static int key_new(struct cli *c)
{
	const char *name = cli_opt(c, "--name");
	const char *file = cli_opt(c, "-o");
	char path[8448], dir[4200], prompt[160], hex[TL_PUB_LEN * 2 + 1];
	struct tl_keypair kp;
	size_t plen = 0;
	int rc;

	if (!name || c->npos)
		return cli_usage(c, "usage: tally key new --name NAME [-o FILE]");
	if (!tl_book_name_valid(name))
		return cli_usage(c,
		                 "name '%s' is not valid: use 1-63 letters, digits, '.', '_' or "
		                 "'-', not starting with '.' or '-'",
		                 name);
	if (file) {
		snprintf(path, sizeof path, "%s", file);
	} else {
		snprintf(dir, sizeof dir, "%s/people", c->home);
		if ((mkdir(c->home, 0700) != 0 && errno != EEXIST) ||
		    (mkdir(dir, 0700) != 0 && errno != EEXIST))
			return cli_fail(c, EXIT_ENV, "cannot create %s: %s", dir, strerror(errno));
		snprintf(path, sizeof path, "%s/%s.key", dir, name);
	}
	if (access(path, F_OK) == 0)
		return cli_fail(c, EXIT_INVALID,
		                "key file %s already exists; refusing to overwrite a key", path);
	char *pass = sodium_malloc(PASS_CAP);
	if (!pass)
		return cli_fail(c, EXIT_ENV, "out of memory");
	snprintf(prompt, sizeof prompt, "New passphrase for person key %s: ", name);
	if ((rc = person_pass(c, pass, &plen, prompt, 1)) != 0)
		goto out;
	if (plen == 0) {
		rc = cli_fail(c, EXIT_USAGE, "an empty passphrase would leave the key unprotected");
		goto out;
	}
	if ((rc = tl_key_generate(&kp)) != 0) {
		rc = cli_fail(c, EXIT_ENV, "key generation failed: %s", tl_strerror(rc));
		goto out;
	}
	rc = tl_keyfile_write(path, &kp, name, pass, plen, 0, 0);
	tl_hex_encode(hex, kp.pk, TL_PUB_LEN);
	tl_key_wipe(&kp);
	if (rc) {
		rc = cli_fail(c, EXIT_ENV, "cannot write key file %s: %s", path,
		              rc == TL_EIO ? strerror(errno) : tl_strerror(rc));
		goto out;
	}
	if (c->json) {
		json_t *o = json_pack("{s:s,s:s,s:s}", "name", name, "public_key", hex, "key_file",
		                      path);
		char *js = json_dumps(o, JSON_COMPACT);
		printf("%s\n", js);
		free(js);
		json_decref(o);
	} else {
		printf("%s\n", hex);
		fprintf(stderr, "created person key %s; key file %s (encrypted)\n", name, path);
	}
	rc = 0;
out:
	sodium_free(pass);
	return rc;
}

/* ------------------------------------------------ key grant / revoke */

static int key_grant(struct cli *c, int grant)
{
	const char *book = cli_opt(c, "--book"), *channel = cli_opt(c, "--channel");
	const char *key = cli_opt(c, "--key"), *role = cli_opt(c, "--role");
	const char *name = cli_opt(c, "--name");
	struct tl_feed f;
	int rc;

	if (c->npos || !book || !channel || !key || (grant && (!role || !name)))
		return cli_usage(c,
		                 grant ? "usage: tally key grant --book B --channel C --key HEX "
		                         "--role clerk|approver|director --name NAME"
		                       : "usage: tally key revoke --book B --channel C --key HEX");
	if (!hex32_valid(key))
		return cli_usage(c, "--key must be a person public key (64 hex digits)");
	if (grant && strcmp(role, "clerk") != 0 && strcmp(role, "approver") != 0 &&
	    strcmp(role, "director") != 0)
		return cli_usage(c, "--role must be clerk, approver or director, not '%s'", role);
	if (grant && !*name)
		return cli_usage(c, "--name must not be empty");
	if ((rc = cli_open_store(c, 0)) != 0 ||
	    (rc = cli_own_feed(c, channel, book, NULL, &f)) != 0)
		return rc;
	char lower[65];
	for (int i = 0; i < 64; i++)
		lower[i] = (char)((key[i] >= 'A' && key[i] <= 'F') ? key[i] - 'A' + 'a' : key[i]);
	lower[64] = 0;
	json_t *body = grant ? json_pack("{s:s,s:s,s:s}", "key", lower, "role", role, "name", name)
	                     : json_pack("{s:s}", "key", lower);
	if (!body)
		return cli_fail(c, EXIT_ENV, "out of memory");
	rc = cli_append_one(c, f.origin, grant ? "key.grant" : "key.revoke", body);
	json_decref(body);
	return rc;
}

/* ------------------------------------------------- confirm / dispute */

/* Adds "person" and "person_sig" to body, signing it as kind. */
static int person_sign(struct cli *c, const char *keyfile, const char *kind, json_t *body)
{
	struct tl_keypair kp;
	struct tl_buf mp, msg;
	char err[256], prompt[160], hex[TL_PUB_LEN * 2 + 1];
	char sig64[128];
	uint8_t sig[TL_SIG_LEN], pk[TL_PUB_LEN];
	size_t plen = 0;
	int rc;

	if ((rc = tl_keyfile_read_public(keyfile, pk, NULL, 0)) != 0)
		return cli_fail(c, EXIT_ENV, "key file %s: %s", keyfile,
		                rc == TL_EIO ? strerror(errno) : tl_strerror(rc));
	char *pass = sodium_malloc(PASS_CAP);
	if (!pass)
		return cli_fail(c, EXIT_ENV, "out of memory");
	snprintf(prompt, sizeof prompt, "Passphrase for person key %s: ", keyfile);
	rc = person_pass(c, pass, &plen, prompt, 0);
	if (rc == 0 && (rc = tl_keyfile_read(keyfile, pass, plen, &kp)) != 0)
		rc = cli_fail(c, EXIT_ENV, "key file %s: %s", keyfile,
		              rc == TL_EPASS ? "wrong passphrase, or the sealed key is damaged"
		              : rc == TL_EIO ? strerror(errno)
		                             : tl_strerror(rc));
	sodium_free(pass);
	if (rc)
		return rc;
	tl_hex_encode(hex, kp.pk, TL_PUB_LEN);
	json_object_set_new(body, "person", json_string(hex));
	tl_buf_init(&mp, TL_ENTRY_MAX);
	tl_buf_init(&msg, TL_ENTRY_MAX + 64);
	if ((rc = tl_json_to_mp(body, &mp, err, sizeof err)) != 0) {
		rc = cli_fail(c, EXIT_INVALID, "body: %s", err);
	} else if ((rc = tl_person_sig_message(&msg, kind, strlen(kind), mp.data, mp.len)) != 0) {
		rc = cli_fail(c, EXIT_INVALID, "body: %s", tl_strerror(rc));
	} else {
		tl_sign(sig, msg.data, msg.len, kp.sk);
		tl_b64_encode(sig64, sig, TL_SIG_LEN);
		json_object_set_new(body, "person_sig", json_string(sig64));
	}
	tl_key_wipe(&kp);
	tl_buf_release(&mp);
	tl_buf_release(&msg);
	return rc;
}

static int reason_valid(const char *r)
{
	for (size_t i = 0; reason_codes[i]; i++)
		if (strcmp(r, reason_codes[i]) == 0)
			return 1;
	return 0;
}

/* Lines of a dispute from the repeated --line/--their-amount/--reason/--note. */
static int dispute_lines(struct cli *c, json_t *lines)
{
	size_t nl = 0, na = 0, nr = 0, nn = 0;
	json_t *l;
	int rc;
	for (int i = 0; i < c->nopts; i++) {
		const char *n = c->opts[i].name, *v = c->opts[i].val;
		if (strcmp(n, "--line") == 0) {
			if (!*v)
				return cli_usage(c, "--line must name a document");
			json_array_append_new(lines, json_pack("{s:s}", "doc", v));
			nl++;
		}
	}
	for (int i = 0; i < c->nopts; i++) {
		const char *n = c->opts[i].name, *v = c->opts[i].val;
		if (strcmp(n, "--their-amount") == 0) {
			int64_t a;
			if ((rc = parse_i64(c, "--their-amount", v, &a)) != 0)
				return rc;
			if (!(l = json_array_get(lines, na++)))
				break;
			json_object_set_new(l, "their_amount", json_integer((json_int_t)a));
		} else if (strcmp(n, "--reason") == 0) {
			if (!reason_valid(v))
				return cli_usage(
				        c,
				        "--reason '%s' is not a reason code (price, quantity, "
				        "quality, not_received, payment_not_recorded, "
				        "duplicate, tax, fx, cut_off, other)",
				        v);
			if (!(l = json_array_get(lines, nr++)))
				break;
			json_object_set_new(l, "reason", json_string(v));
		} else if (strcmp(n, "--note") == 0) {
			if (!(l = json_array_get(lines, nn++)))
				break;
			json_object_set_new(l, "note", json_string(v));
		}
	}
	if (nl == 0 || na != nl || nr != nl || nn > nl)
		return cli_usage(c,
		                 "each --line needs one --their-amount and one --reason (and at "
		                 "most one --note), in the same order; got %zu lines, %zu "
		                 "amounts, %zu reasons, %zu notes",
		                 nl, na, nr, nn);
	return 0;
}

int cli_answer_body(struct cli *c, const char *kind, const char *leaf_hex, int64_t closing,
                    const char *keyfile, json_t **out)
{
	const char *bal = cli_opt(c, "--balance");
	int dispute = strcmp(kind, "dispute") == 0;
	int64_t balance = closing;
	json_t *body;
	int rc;

	*out = NULL;
	if (bal && (rc = parse_i64(c, "--balance", bal, &balance)) != 0)
		return rc;
	if (dispute && !bal)
		return cli_usage(c, "a dispute states the customer's balance: give --balance X "
		                    "(minor units)");
	if (!(body = json_object()))
		return cli_fail(c, EXIT_ENV, "out of memory");
	if (dispute) {
		json_t *lines = json_array();
		json_object_set_new(body, "lines", lines);
		if ((rc = dispute_lines(c, lines)) != 0 || (rc = cli_blob_attach(c, lines)) != 0)
			goto fail;
	}
	json_object_set_new(body, "statement", json_string(leaf_hex));
	json_object_set_new(body, "balance", json_integer((json_int_t)balance));
	if ((rc = person_sign(c, keyfile, kind, body)) != 0)
		goto fail;
	*out = body;
	return 0;
fail:
	json_decref(body);
	return rc;
}

static int answer(struct cli *c, const char *kind)
{
	const char *channel = cli_opt(c, "--channel"), *keyfile = cli_opt(c, "--key");
	int dispute = strcmp(kind, "dispute") == 0, view = strcmp(kind, "view") == 0;
	struct cli_stmt s = {0};
	struct tl_feed f;
	json_t *body = NULL;
	int rc;

	tl_buf_init(&s.rec, 0);
	if (c->npos != 1 || !channel || (!view && !keyfile) ||
	    (dispute && !cli_opt(c, "--balance"))) {
		if (view)
			return cli_usage(c, "usage: tally view STATEMENT_LEAF --channel C");
		return cli_usage(c,
		                 dispute ? "usage: tally dispute STATEMENT_LEAF --channel C --key "
		                           "PERSON_KEY_FILE --balance X --line DOC "
		                           "--their-amount X --reason CODE [--note TEXT] "
		                           "[--attach [DOC=]FILE] ..."
		                         : "usage: tally confirm STATEMENT_LEAF --channel C --key "
		                           "PERSON_KEY_FILE [--balance X]");
	}
	if ((rc = cli_open_store(c, 0)) != 0 || (rc = cli_stmt_load(c, c->pos[0], &s)) != 0 ||
	    (rc = cli_own_feed(c, channel, NULL, s.origin, &f)) != 0)
		goto out;
	if (view) {
		body = json_pack("{s:s}", "statement", s.leaf);
	} else if ((rc = cli_answer_body(
	                    c, kind, s.leaf,
	                    (int64_t)json_integer_value(json_object_get(s.body, "closing")),
	                    keyfile, &body)) != 0) {
		goto out;
	}
	rc = body ? cli_append_one(c, f.origin, kind, body)
	          : cli_fail(c, EXIT_ENV, "out of memory");
out:
	json_decref(body);
	cli_stmt_release(&s);
	return rc;
}

/* ----------------------------------------------------------- commands */

int cmd_key(int argc, char **argv)
{
	static const char *const allowed[] = {"--name", "-o",     "--book", "--channel",
	                                      "--key",  "--role", NULL};
	struct cli c = {.cmd = "key"};
	int rc;
	if (argc < 1)
		return cli_usage(&c, "usage: tally key new|grant|revoke ...");
	const char *sub = argv[0];
	if ((rc = cli_parse(&c, argc - 1, argv + 1, allowed, NULL)) != 0)
		return rc;
	if (strcmp(sub, "new") == 0) {
		c.cmd = "key new";
		rc = key_new(&c);
	} else if (strcmp(sub, "grant") == 0) {
		c.cmd = "key grant";
		rc = key_grant(&c, 1);
	} else if (strcmp(sub, "revoke") == 0) {
		c.cmd = "key revoke";
		rc = key_grant(&c, 0);
	} else {
		rc = cli_usage(&c, "usage: tally key new|grant|revoke ...");
	}
	cli_close(&c);
	return rc;
}

int cmd_confirm(int argc, char **argv)
{
	static const char *const allowed[] = {"--channel", "--key", "--balance", NULL};
	struct cli c = {.cmd = "confirm"};
	int rc;
	if ((rc = cli_parse(&c, argc, argv, allowed, NULL)) != 0)
		return rc;
	rc = answer(&c, "confirm");
	cli_close(&c);
	return rc;
}

int cmd_dispute(int argc, char **argv)
{
	static const char *const allowed[] = {"--channel", "--key",          "--balance",
	                                      "--line",    "--their-amount", "--reason",
	                                      "--note",    "--attach",       NULL};
	struct cli c = {.cmd = "dispute"};
	int rc;
	if ((rc = cli_parse(&c, argc, argv, allowed, NULL)) != 0)
		return rc;
	rc = answer(&c, "dispute");
	cli_close(&c);
	return rc;
}

int cmd_view(int argc, char **argv)
{
	static const char *const allowed[] = {"--channel", NULL};
	struct cli c = {.cmd = "view"};
	int rc;
	if ((rc = cli_parse(&c, argc, argv, allowed, NULL)) != 0)
		return rc;
	rc = answer(&c, "view");
	cli_close(&c);
	return rc;
}
