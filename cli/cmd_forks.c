/*
 * cmd_forks.c — tally forks: the fork evidence a store holds, halted feeds,
 * self-contained proof files (tally-fork/v1) and their offline check, and
 * the operator's way out of a halt. docs/cli.md, "Forks".
 */
#include "cli.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/wclient.h"

#define FORK_FILE_MAX ((size_t)4 << 20)

static const char forks_usage[] = "usage: tally forks [--json]\n"
                                  "       tally forks show N -o FILE\n"
                                  "       tally forks verify FILE [--json]\n"
                                  "       tally forks resolve ORIGIN --i-understand";

static const char *type_name(int type)
{
	return type == TL_FORK_RECORDS       ? "records"
	       : type == TL_FORK_CHECKPOINTS ? "checkpoints"
	                                     : "consistency";
}

static const char *type_text(int type)
{
	return type == TL_FORK_RECORDS       ? "two different signed records"
	       : type == TL_FORK_CHECKPOINTS ? "two signed checkpoints with different roots"
	                                     : "a signed checkpoint that is not a prefix of a "
	                                       "larger signed one";
}

static json_t *b64_json(const uint8_t *p, size_t len)
{
	char *b64 = malloc(tl_b64_encoded_len(len) + 1);
	if (!b64)
		return NULL;
	tl_b64_encode(b64, p, len);
	json_t *s = json_string(b64);
	free(b64);
	return s;
}

/* ---------------------------------------------------------------- list */

struct list_ctx {
	json_t *arr;
	size_t n;
};

static int list_one(void *ctx, const struct tl_fork *fk)
{
	struct list_ctx *l = ctx;
	l->n++;
	if (l->arr)
		json_array_append_new(l->arr,
		                      json_pack("{s:I,s:s,s:s,s:I}", "n", (json_int_t)fk->index,
		                                "origin", fk->origin, "type", type_name(fk->type),
		                                fk->type == TL_FORK_RECORDS ? "seq" : "size",
		                                (json_int_t)fk->at));
	else
		printf("%3llu  %s  %s %llu  %s\n", (unsigned long long)fk->index, fk->origin,
		       fk->type == TL_FORK_RECORDS ? "seq" : "size", (unsigned long long)fk->at,
		       type_text(fk->type));
	return 0;
}

static int forks_list(struct cli *c)
{
	struct list_ctx l = {c->json ? json_array() : NULL, 0};
	struct tl_feed *feeds = NULL;
	size_t nf = 0, nh = 0;
	json_t *halted = c->json ? json_array() : NULL;
	int rc;
	if (c->npos != 0)
		return cli_usage(c, "%s", forks_usage);
	if ((rc = cli_open_store(c, 0)) != 0)
		goto out;
	if (!c->json)
		printf("fork evidence:\n");
	if ((rc = tl_store_fork_scan(c->store, list_one, &l)) != 0) {
		rc = cli_store_fail(c, rc);
		goto out;
	}
	if (!c->json && l.n == 0)
		printf("  none\n");
	if ((rc = tl_store_feed_list(c->store, &feeds, &nf)) != 0) {
		rc = cli_store_fail(c, rc);
		goto out;
	}
	if (!c->json)
		printf("halted feeds:\n");
	for (size_t i = 0; i < nf; i++) {
		uint64_t others = 0;
		char why[TL_HALT_WHY_MAX + 1] = "";
		if (!(feeds[i].flags & TL_FEED_HALTED))
			continue;
		nh++;
		if (tl_store_halt_get(c->store, feeds[i].origin, &others, why, sizeof why) != 0)
			snprintf(why, sizeof why, "(no reason recorded)");
		if (halted)
			json_array_append_new(
			        halted,
			        json_pack("{s:s,s:I,s:I,s:s,s:b}", "origin", feeds[i].origin,
			                  "size", (json_int_t)feeds[i].head.size, "others_size",
			                  (json_int_t)others, "reason", why, "forked",
			                  (feeds[i].flags & TL_FEED_FORKED) != 0));
		else
			printf("  %s  has %llu entries; %s\n", feeds[i].origin,
			       (unsigned long long)feeds[i].head.size, why);
	}
	if (!c->json && nh == 0)
		printf("  none\n");
	if (c->json) {
		json_t *o = json_pack("{s:O,s:O}", "forks", l.arr, "halted", halted);
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(o);
	}
	rc = 0;
out:
	free(feeds);
	json_decref(l.arr);
	json_decref(halted);
	return rc;
}

/* ---------------------------------------------------------------- show */

struct show_ctx {
	uint64_t want;
	json_t *proof;
	int err;
};

static json_t *object_json(int type, const uint8_t *p, size_t len)
{
	if (type != TL_FORK_RECORDS)
		return json_stringn((const char *)p, len);
	return b64_json(p, len);
}

static int show_one(void *ctx, const struct tl_fork *fk)
{
	struct show_ctx *s = ctx;
	struct tl_origin o;
	struct tl_vkey vk;
	struct tl_buf vks;
	if (fk->index != s->want)
		return 0;
	tl_buf_init(&vks, 1024);
	if (tl_origin_parse(&o, fk->origin, TL_ORIGIN_LEN) != 0 ||
	    tl_vkey_from_pub(&vk, fk->origin, TL_SIGTYPE_ED25519, o.pk) != 0 ||
	    tl_vkey_format(&vk, &vks) != 0) {
		s->err = TL_ECORRUPT;
		tl_buf_release(&vks);
		return 1;
	}
	s->proof = json_pack("{s:s,s:s,s:s%,s:s,s:I,s:o,s:o}", "format", "tally-fork/v1", "origin",
	                     fk->origin, "vkey", (const char *)vks.data, vks.len, "type",
	                     type_name(fk->type), fk->type == TL_FORK_RECORDS ? "seq" : "size",
	                     (json_int_t)fk->at, "a", object_json(fk->type, fk->a, fk->alen), "b",
	                     object_json(fk->type, fk->b, fk->blen));
	tl_buf_release(&vks);
	if (s->proof && fk->type == TL_FORK_CONSISTENCY && fk->elen >= TL_HASH_LEN) {
		json_t *pr = json_array();
		for (size_t off = TL_HASH_LEN; off + TL_HASH_LEN <= fk->elen; off += TL_HASH_LEN)
			json_array_append_new(pr, b64_json(fk->extra + off, TL_HASH_LEN));
		json_object_set_new(s->proof, "root", b64_json(fk->extra, TL_HASH_LEN));
		json_object_set_new(s->proof, "proof", pr);
	}
	return 1;
}

static int forks_show(struct cli *c)
{
	const char *path = cli_opt(c, "-o");
	struct show_ctx s = {0, NULL, 0};
	int rc;
	if (c->npos != 1 || !path)
		return cli_usage(c, "usage: tally forks show N -o FILE");
	if ((rc = cli_u64(c, "N", c->pos[0], &s.want)) != 0)
		return rc;
	if ((rc = cli_open_store(c, 0)) != 0)
		return rc;
	rc = tl_store_fork_scan(c->store, show_one, &s);
	if (rc < 0)
		return cli_store_fail(c, rc);
	if (s.err || !s.proof) {
		json_decref(s.proof);
		return cli_fail(c, EXIT_INVALID, "no fork evidence number %llu (see 'tally forks')",
		                (unsigned long long)s.want);
	}
	char *text = json_dumps(s.proof, JSON_INDENT(2));
	json_decref(s.proof);
	if (!text)
		return cli_fail(c, EXIT_ENV, "out of memory");
	size_t len = strlen(text);
	text[len] = 0;
	char *t2 = realloc(text, len + 2);
	if (!t2) {
		free(text);
		return cli_fail(c, EXIT_ENV, "out of memory");
	}
	t2[len] = '\n';
	rc = cli_write_atomic(c, path, t2, len + 1);
	free(t2);
	if (rc == 0 && !c->json)
		fprintf(stderr, "wrote %s\n", path);
	return rc;
}

/* -------------------------------------------------------------- verify */

static int decode_object(int type, json_t *v, struct tl_buf *out)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (!s)
		return TL_EFORMAT;
	if (type != TL_FORK_RECORDS)
		return tl_buf_add(out, s, len);
	size_t n = 0;
	int rc = tl_buf_reserve(out, len);
	if (rc)
		return rc;
	rc = tl_b64_decode(out->data, out->cap, &n, s, len);
	out->len = rc ? 0 : n;
	return rc;
}

static int decode_hash(json_t *v, struct tl_buf *out)
{
	uint8_t h[TL_HASH_LEN + 2];
	size_t n = 0;
	const char *s = json_string_value(v);
	if (!s || tl_b64_decode(h, sizeof h, &n, s, json_string_length(v)) != 0 || n != TL_HASH_LEN)
		return TL_EFORMAT;
	return tl_buf_add(out, h, n);
}

static int forks_verify(struct cli *c)
{
	struct tl_buf file, a, b, x;
	json_t *j = NULL;
	json_error_t je;
	char why[300] = "";
	int rc, type = 0, ok = 0;
	uint64_t at = 0;
	const char *origin = NULL;
	if (c->npos != 1)
		return cli_usage(c, "usage: tally forks verify FILE [--json]");
	tl_buf_init(&file, FORK_FILE_MAX);
	tl_buf_init(&a, TL_NOTE_MAX);
	tl_buf_init(&b, TL_NOTE_MAX);
	tl_buf_init(&x, TL_HASH_LEN * (TL_MERKLE_MAX_PROOF + 1));
	if ((rc = cli_read_file(c, c->pos[0], FORK_FILE_MAX, &file)) != 0)
		goto out;
	j = json_loadb((const char *)file.data, file.len, JSON_REJECT_DUPLICATES, &je);
	const char *fmt = json_string_value(json_object_get(j, "format"));
	const char *ts = json_string_value(json_object_get(j, "type"));
	const char *vks = json_string_value(json_object_get(j, "vkey"));
	origin = json_string_value(json_object_get(j, "origin"));
	if (ts)
		type = strcmp(ts, "records") == 0       ? TL_FORK_RECORDS
		       : strcmp(ts, "checkpoints") == 0 ? TL_FORK_CHECKPOINTS
		       : strcmp(ts, "consistency") == 0 ? TL_FORK_CONSISTENCY
		                                        : 0;
	json_t *atj = json_object_get(j, type == TL_FORK_RECORDS ? "seq" : "size");
	if (!j || !fmt || strcmp(fmt, "tally-fork/v1") != 0 || !origin || !type || !vks ||
	    !json_is_integer(atj) || json_integer_value(atj) < 0) {
		snprintf(why, sizeof why, "not a tally-fork/v1 file");
		goto report;
	}
	at = (uint64_t)json_integer_value(atj);
	/* The key named in the file must be the one the origin binds: a proof
	 * is about one book's key, whatever the file claims. */
	struct tl_vkey vk;
	struct tl_origin og;
	if (tl_vkey_parse(&vk, vks, strlen(vks)) != 0 || vk.type != TL_SIGTYPE_ED25519 ||
	    strcmp(vk.name, origin) != 0 || strlen(origin) != TL_ORIGIN_LEN ||
	    tl_origin_parse(&og, origin, TL_ORIGIN_LEN) != 0 ||
	    sodium_memcmp(vk.pk, og.pk, TL_PUB_LEN) != 0) {
		snprintf(why, sizeof why, "vkey is not the key of origin %.120s", origin);
		goto report;
	}
	if (decode_object(type, json_object_get(j, "a"), &a) != 0 ||
	    decode_object(type, json_object_get(j, "b"), &b) != 0) {
		snprintf(why, sizeof why, "a and b must be %s",
		         type == TL_FORK_RECORDS ? "base64 records" : "checkpoint notes");
		goto report;
	}
	/* consistency: the root at the smaller size, then the proof hashes. */
	if (type == TL_FORK_CONSISTENCY) {
		json_t *pr = json_object_get(j, "proof"), *h;
		size_t i;
		if (decode_hash(json_object_get(j, "root"), &x) != 0 || !json_is_array(pr) ||
		    json_array_size(pr) > TL_MERKLE_MAX_PROOF) {
			snprintf(why, sizeof why, "root and proof must be base64 hashes");
			goto report;
		}
		json_array_foreach(pr, i, h)
		{
			if (decode_hash(h, &x) != 0) {
				snprintf(why, sizeof why, "proof[%zu] is not a base64 hash", i);
				goto report;
			}
		}
	}
	ok = tl_fork_verify(origin, type, at, a.data, a.len, b.data, b.len, x.data, x.len, why,
	                    sizeof why) == 0;
report:
	if (c->json) {
		json_t *o = json_pack("{s:b,s:s,s:s}", "valid", ok, "origin", origin ? origin : "",
		                      "reason", why);
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else if (ok) {
		printf("valid fork proof: feed %s: %s\n", origin, why);
	}
	if (ok)
		rc = EXIT_OK;
	else if (c->json)
		rc = EXIT_INVALID;
	else
		rc = cli_fail(c, EXIT_INVALID, "%s: not a valid fork proof: %s", c->pos[0], why);
out:
	json_decref(j);
	tl_buf_release(&file);
	tl_buf_release(&a);
	tl_buf_release(&b);
	tl_buf_release(&x);
	return rc;
}

/* ------------------------------------------------------------- resolve */

/*
 * Clears a halt by the operator's decision, after the feed caught up (the
 * node does that itself when the counterparty sends the missing entries
 * back) or after restoring a newer copy. Refused while the node runs: the
 * node would only halt it again from what it knows.
 */
static int forks_resolve(struct cli *c)
{
	struct tl_feed f;
	uint64_t others = 0;
	char why[TL_HALT_WHY_MAX + 1] = "";
	int rc;
	if (c->npos != 1)
		return cli_usage(c, "usage: tally forks resolve ORIGIN --i-understand");
	if (!cli_has(c, "--i-understand"))
		return cli_usage(c,
		                 "resolving a halt may let this node fork its feed: read "
		                 "docs/operations.md, \"Restored nodes\", then add --i-understand");
	int fd = cli_control_connect(c);
	if (fd >= 0) {
		close(fd);
		return cli_fail(c, EXIT_ENV, "tallyd is running on %s: stop it first", c->home);
	}
	if ((rc = cli_open_store(c, 0)) != 0 || (rc = cli_feed(c, c->pos[0], &f)) != 0)
		return rc;
	if (!(f.flags & TL_FEED_HALTED))
		return cli_fail(c, EXIT_INVALID, "feed %s is not halted", f.origin);
	if (tl_store_halt_get(c->store, f.origin, &others, why, sizeof why) != 0)
		snprintf(why, sizeof why, "(no reason recorded)");
	if ((rc = tl_store_halt_clear(c->store, f.origin)) != 0)
		return cli_store_fail(c, rc);
	if (!c->json)
		fprintf(stderr,
		        "feed %s: halt cleared (it was: %s; this store has %llu entries, others "
		        "held %llu)\n",
		        f.origin, why, (unsigned long long)f.head.size, (unsigned long long)others);
	else
		printf("{\"origin\":\"%s\",\"cleared\":true}\n", f.origin);
	return 0;
}

int cmd_forks(int argc, char **argv)
{
	static const char *const allowed[] = {"-o", NULL};
	static const char *const flags[] = {"--i-understand", NULL};
	struct cli c = {.cmd = "forks"};
	int rc;
	const char *sub = argc > 0 && argv[0][0] != '-' ? argv[0] : NULL;
	int (*fn)(struct cli *) = forks_list;
	if (sub && strcmp(sub, "show") == 0)
		fn = forks_show, c.cmd = "forks show";
	else if (sub && strcmp(sub, "verify") == 0)
		fn = forks_verify, c.cmd = "forks verify";
	else if (sub && strcmp(sub, "resolve") == 0)
		fn = forks_resolve, c.cmd = "forks resolve";
	else if (sub && strcmp(sub, "list") != 0)
		return cli_usage(&c, "%s", forks_usage);
	if (sub) {
		argc--;
		argv++;
	}
	if ((rc = cli_parse(&c, argc, argv, allowed, flags)) != 0)
		return rc;
	rc = fn(&c);
	cli_close(&c);
	return rc;
}
