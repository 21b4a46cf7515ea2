/*
 * cmd_witness.c — tally witness init|vkey|allow|deny|list|log: administration
 * of a witness home (docs/witness.md). Works offline on the home's LMDB
 * state, also while `tallyd --witness` runs there (LMDB is multi-process;
 * the server reads the registered logs on every request).
 */
#include "cli.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/witness.h"

static const char witness_usage[] =
        "usage: tally witness init --name NAME | vkey | allow ORIGIN VKEY | deny ORIGIN |\n"
        "       list [--json] | log [ORIGIN] [--json]";

static void key_path(const struct cli *c, char *out, size_t cap)
{
	snprintf(out, cap, "%s/witness.key", c->home);
}

/* The witness vkey (type 0x04) from the key file's clear half. */
static int witness_vkey(struct cli *c, struct tl_buf *out, char *name, size_t namecap)
{
	char path[4200];
	uint8_t pk[TL_PUB_LEN];
	struct tl_vkey vk;
	key_path(c, path, sizeof path);
	int rc = tl_keyfile_read_public(path, pk, name, namecap);
	if (rc)
		return cli_fail(c, EXIT_ENV,
		                "cannot read the witness key %s: %s (run 'tally witness init "
		                "--name NAME' first, or pass --home)",
		                path, rc == TL_EIO ? strerror(errno) : tl_strerror(rc));
	if (tl_vkey_from_pub(&vk, name, TL_SIGTYPE_COSIG, pk) != 0 || tl_vkey_format(&vk, out) != 0)
		return cli_fail(c, EXIT_ENV, "%s: the witness name '%s' is not a valid key name", path,
		                name);
	return 0;
}

static void print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(o);
}

static int open_store(struct cli *c, int create, struct tl_wstore **st)
{
	char err[512];
	if (tl_wstore_open(st, c->home, create, err, sizeof err) != 0)
		return cli_fail(c, EXIT_ENV, "%s", err);
	return 0;
}

static int w_init(struct cli *c)
{
	const char *name = cli_opt(c, "--name");
	char path[4200], label[TL_NAME_MAX + 1];
	struct tl_keypair kp;
	struct tl_vkey vk;
	struct tl_wstore *st = NULL;
	struct tl_buf vt;
	char *pass = NULL;
	size_t plen = 0;
	int rc;

	if (!name || c->npos)
		return cli_usage(c, "usage: tally witness init --name NAME");
	/* The name is a note key name: no spaces, no '+', 1-255 bytes. */
	if (tl_vkey_from_pub(&vk, name, TL_SIGTYPE_COSIG, (const uint8_t[TL_PUB_LEN]){0}) != 0)
		return cli_usage(c,
		                 "witness name '%s' is not valid: 1-255 bytes, no spaces, no '+' "
		                 "(e.g. witness.example.com/w1)",
		                 name);
	if (mkdir(c->home, 0700) != 0 && errno != EEXIST)
		return cli_fail(c, EXIT_ENV, "cannot create '%s': %s", c->home, strerror(errno));
	key_path(c, path, sizeof path);
	if (access(path, F_OK) == 0) {
		if (tl_keyfile_read_public(path, vk.pk, label, sizeof label) == 0)
			return cli_fail(c, EXIT_INVALID,
			                "%s already holds the key of witness '%s'; refusing to "
			                "overwrite a key",
			                path, label);
		return cli_fail(c, EXIT_INVALID, "%s already exists; refusing to overwrite it",
		                path);
	}
	pass = sodium_malloc(1024);
	if (!pass || tl_passphrase_get(pass, 1024, &plen, "New passphrase for the witness key: ",
	                               1) != 0) {
		rc = cli_fail(c, EXIT_ENV,
		              "no passphrase: set TALLY_PASSPHRASE or run on a terminal (the two "
		              "entries must match)");
		goto out;
	}
	if (plen == 0) {
		rc = cli_fail(c, EXIT_USAGE, "an empty passphrase would leave the key unprotected");
		goto out;
	}
	if ((rc = open_store(c, 1, &st)) != 0)
		goto out;
	if ((rc = tl_key_generate(&kp)) != 0) {
		rc = cli_fail(c, EXIT_ENV, "key generation failed: %s", tl_strerror(rc));
		goto out;
	}
	rc = tl_keyfile_write(path, &kp, name, pass, plen, 0, 0);
	int vrc = tl_vkey_from_pub(&vk, name, TL_SIGTYPE_COSIG, kp.pk);
	tl_key_wipe(&kp);
	if (rc) {
		rc = cli_fail(c, EXIT_ENV, "cannot write key file %s: %s", path,
		              rc == TL_EIO ? strerror(errno) : tl_strerror(rc));
		goto out;
	}
	tl_buf_init(&vt, TL_WITNESS_VKEY_TEXT);
	if (vrc || tl_vkey_format(&vk, &vt) != 0) {
		tl_buf_release(&vt);
		rc = cli_fail(c, EXIT_ENV, "cannot format the witness vkey");
		goto out;
	}
	if (c->json)
		print_json(json_pack("{s:s,s:s,s:s}", "name", name, "vkey", tl_buf_cstr(&vt),
		                     "key_file", path));
	else {
		printf("%s\n", tl_buf_cstr(&vt));
		fprintf(stderr,
		        "created witness %s; key file %s (encrypted)\n"
		        "register logs with 'tally witness allow ORIGIN VKEY', then run "
		        "'tallyd --witness'\n",
		        name, path);
	}
	tl_buf_release(&vt);
	rc = 0;
out:
	if (pass)
		sodium_free(pass);
	tl_wstore_close(st);
	return rc;
}

static int w_vkey(struct cli *c)
{
	char name[TL_NAME_MAX + 1];
	struct tl_buf vt;
	int rc;
	if (c->npos)
		return cli_usage(c, "usage: tally witness vkey");
	tl_buf_init(&vt, TL_WITNESS_VKEY_TEXT);
	if ((rc = witness_vkey(c, &vt, name, sizeof name)) == 0) {
		if (c->json)
			print_json(json_pack("{s:s,s:s}", "name", name, "vkey", tl_buf_cstr(&vt)));
		else
			printf("%s\n", tl_buf_cstr(&vt));
	}
	tl_buf_release(&vt);
	return rc;
}

static int w_allow(struct cli *c)
{
	struct tl_vkey vk;
	struct tl_wstore *st = NULL;
	int rc;
	if (c->npos != 2)
		return cli_usage(c, "usage: tally witness allow ORIGIN VKEY");
	const char *origin = c->pos[0], *vks = c->pos[1];
	if (tl_witness_origin_valid(origin, strlen(origin)) != 0)
		return cli_usage(c, "origin '%s' is not valid: 1-255 bytes of UTF-8, no control "
		                    "characters",
		                 origin);
	rc = tl_vkey_parse(&vk, vks, strlen(vks));
	if (rc)
		return cli_usage(c, "'%s' is not a vkey (NAME+HEXID+BASE64, e.g. from 'tally feed "
		                    "vkey ORIGIN'): %s",
		                 vks, rc == TL_EKEY ? "its key id does not match" : tl_strerror(rc));
	if (vk.type != TL_SIGTYPE_ED25519)
		return cli_usage(c, "a log key must be an Ed25519 note key (type 0x01), not a "
		                    "cosigner key");
	if (strcmp(vk.name, origin) != 0)
		fprintf(stderr,
		        "tally witness allow: warning: the key's name '%s' is not the origin; "
		        "only signature lines named '%s' will count\n",
		        vk.name, vk.name);
	if ((rc = open_store(c, 0, &st)) != 0)
		return rc;
	rc = tl_wstore_allow(st, origin, &vk);
	if (rc == TL_EEXIST) {
		fprintf(stderr, "tally witness allow: %s (nothing changed)\n", tl_wstore_errmsg(st));
		rc = 0;
	} else if (rc) {
		rc = cli_fail(c, rc == TL_ETOOBIG ? EXIT_INVALID : EXIT_ENV, "%s",
		              tl_wstore_errmsg(st));
	} else if (!c->json) {
		fprintf(stderr, "registered %s\n", origin);
	}
	if (!rc && c->json)
		print_json(json_pack("{s:s,s:s}", "origin", origin, "vkey", vks));
	tl_wstore_close(st);
	return rc;
}

static int w_deny(struct cli *c)
{
	struct tl_wstore *st = NULL;
	int rc;
	if (c->npos != 1)
		return cli_usage(c, "usage: tally witness deny ORIGIN");
	if ((rc = open_store(c, 0, &st)) != 0)
		return rc;
	rc = tl_wstore_deny(st, c->pos[0]);
	if (rc)
		rc = cli_fail(c, rc == TL_ENOTFOUND ? EXIT_INVALID : EXIT_ENV, "%s",
		              tl_wstore_errmsg(st));
	else if (!c->json)
		fprintf(stderr, "%s is no longer witnessed (its state is kept)\n", c->pos[0]);
	else
		print_json(json_pack("{s:s,s:b}", "origin", c->pos[0], "denied", 1));
	tl_wstore_close(st);
	return rc;
}

static void root_b64(char out[45], const uint8_t root[TL_HASH_LEN])
{
	tl_b64_encode(out, root, TL_HASH_LEN);
}

static int w_list(struct cli *c)
{
	struct tl_wstore *st = NULL;
	struct tl_wlog *ls = NULL;
	size_t n = 0;
	char when[32], root[45];
	int rc;
	if (c->npos)
		return cli_usage(c, "usage: tally witness list [--json]");
	if ((rc = open_store(c, 0, &st)) != 0)
		return rc;
	if (tl_wstore_list(st, &ls, &n) != 0) {
		rc = cli_fail(c, EXIT_ENV, "%s", tl_wstore_errmsg(st));
		goto out;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct tl_wlog *l = &ls[i];
		if (l->has_state)
			cli_time_iso(when, l->time * 1000);
		root_b64(root, l->root);
		if (c->json) {
			json_t *keys = json_array();
			for (size_t k = 0; k < l->nvkeys; k++) {
				struct tl_buf b;
				tl_buf_init(&b, TL_WITNESS_VKEY_TEXT);
				if (tl_vkey_format(&l->vkeys[k], &b) == 0)
					json_array_append_new(keys, json_string(tl_buf_cstr(&b)));
				tl_buf_release(&b);
			}
			json_t *o = json_pack("{s:s,s:b,s:o}", "origin", l->origin, "allowed",
			                      l->allowed, "vkeys", keys);
			if (l->has_state) {
				json_object_set_new(o, "size", json_integer((json_int_t)l->size));
				json_object_set_new(o, "root", json_string(root));
				json_object_set_new(o, "time", json_integer((json_int_t)l->time));
			} else {
				json_object_set_new(o, "size", json_null());
			}
			json_array_append_new(arr, o);
		} else {
			if (i == 0)
				printf("%-10s %-24s %-6s %s\n", "SIZE", "COSIGNED", "KEYS", "ORIGIN");
			char sz[24] = "-", keys[16] = "denied";
			if (l->has_state)
				snprintf(sz, sizeof sz, "%llu", (unsigned long long)l->size);
			if (l->allowed)
				snprintf(keys, sizeof keys, "%zu", l->nvkeys);
			printf("%-10s %-24s %-6s %s\n", sz, l->has_state ? when : "-", keys,
			       l->origin);
		}
	}
	if (c->json)
		print_json(arr);
	else {
		json_decref(arr);
		if (!n)
			fprintf(stderr, "no logs registered: add one with 'tally witness allow ORIGIN "
			                "VKEY'\n");
	}
	rc = 0;
out:
	free(ls);
	tl_wstore_close(st);
	return rc;
}

static int w_log(struct cli *c)
{
	struct tl_wstore *st = NULL;
	struct tl_wrecord *rs = NULL;
	size_t n = 0;
	char first[32], last[32], root[45];
	int rc;
	if (c->npos > 1)
		return cli_usage(c, "usage: tally witness log [ORIGIN] [--json]");
	const char *origin = c->npos ? c->pos[0] : NULL;
	if ((rc = open_store(c, 0, &st)) != 0)
		return rc;
	if (origin) {
		struct tl_wlog l;
		if (tl_wstore_get(st, origin, &l) != 0) {
			rc = cli_fail(c, EXIT_INVALID, "%s", tl_wstore_errmsg(st));
			goto out;
		}
	}
	if (tl_wstore_records(st, origin, &rs, &n) != 0) {
		rc = cli_fail(c, EXIT_ENV, "%s", tl_wstore_errmsg(st));
		goto out;
	}
	json_t *arr = json_array();
	if (!c->json && n)
		printf("%-24s %-24s %-6s %-10s %-44s %s\n", "FIRST COSIGNED", "LAST COSIGNED", "TIMES",
		       "SIZE", "ROOT", "ORIGIN");
	for (size_t i = 0; i < n; i++) {
		const struct tl_wrecord *r = &rs[i];
		root_b64(root, r->root);
		if (c->json) {
			json_array_append_new(
			        arr, json_pack("{s:s,s:I,s:s,s:I,s:I,s:I}", "origin", r->origin,
			                       "size", (json_int_t)r->size, "root", root, "first_time",
			                       (json_int_t)r->first_time, "last_time",
			                       (json_int_t)r->last_time, "count", (json_int_t)r->count));
		} else {
			cli_time_iso(first, r->first_time * 1000);
			cli_time_iso(last, r->last_time * 1000);
			printf("%-24s %-24s %-6llu %-10llu %-44s %s\n", first, last,
			       (unsigned long long)r->count, (unsigned long long)r->size, root,
			       r->origin);
		}
	}
	if (c->json)
		print_json(arr);
	else {
		json_decref(arr);
		if (!n)
			fprintf(stderr, "nothing cosigned yet\n");
	}
	rc = 0;
out:
	free(rs);
	tl_wstore_close(st);
	return rc;
}

int cmd_witness(int argc, char **argv)
{
	static const char *const allowed[] = {"--name", NULL};
	static const struct {
		const char *name, *cmd;
		int (*fn)(struct cli *);
	} subs[] = {
	        {"init", "witness init", w_init}, {"vkey", "witness vkey", w_vkey},
	        {"allow", "witness allow", w_allow}, {"deny", "witness deny", w_deny},
	        {"list", "witness list", w_list}, {"log", "witness log", w_log},
	};
	struct cli c = {.cmd = "witness"};
	int rc;
	if (argc < 1)
		return cli_usage(&c, "%s", witness_usage);
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		if (strcmp(argv[0], subs[i].name) != 0)
			continue;
		c.cmd = subs[i].cmd;
		if ((rc = cli_parse(&c, argc - 1, argv + 1, allowed, NULL)) != 0)
			return rc;
		if (cli_opt(&c, "--name") && subs[i].fn != w_init)
			return cli_usage(&c, "--name is only for 'tally witness init'");
		return subs[i].fn(&c);
	}
	return cli_usage(&c, "%s", witness_usage);
}
