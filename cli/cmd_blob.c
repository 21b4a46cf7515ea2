/*
 * cmd_blob.c — vouchers: tally blob put|get|list, and --attach of
 * tally dispute (cli_blob_attach). The store is node/blob.c; fetching from
 * counterparties is the node's job (node/blob_repl.c), asked for over the
 * control socket with {"op": "blob_get", "hash": HEX}.
 */
#include "cli.h"
#include "node/blob.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTL_WAIT_MS (15 * 60 * 1000) /* the node always answers; this is a backstop */

static int blob_fail(struct cli *c, int rc, const char *err)
{
	int code = rc == TL_ECORRUPT || rc == TL_ETOOBIG || rc == TL_ENOTFOUND ? EXIT_INVALID
	                                                                       : EXIT_ENV;
	return cli_fail(c, code, "%s", err[0] ? err : tl_strerror(rc));
}

static int blobs_for(struct cli *c, struct tl_blobs *b)
{
	const char *max = cli_opt(c, "--max");
	uint64_t m = 0;
	int rc;
	if (max) {
		if ((rc = cli_u64(c, "--max", max, &m)) != 0)
			return rc;
		if (m == 0 || m > TL_BLOB_MAX_LIMIT)
			return cli_usage(c, "--max must be 1..%llu bytes",
			                 (unsigned long long)TL_BLOB_MAX_LIMIT);
	}
	if (tl_blobs_init(b, c->home, m) != 0)
		return cli_fail(c, EXIT_ENV, "home path too long: %s", c->home);
	return 0;
}

/* ---------------------------------------------------------------- put */

static int blob_put(struct cli *c)
{
	struct tl_blobs b;
	uint8_t hash[32];
	char hex[TL_BLOB_HEX + 1], err[700] = "";
	int existed = 0, rc;
	uint64_t size = 0;
	if (c->npos != 1)
		return cli_usage(c, "usage: tally blob put FILE [--max BYTES]");
	if ((rc = blobs_for(c, &b)) != 0)
		return rc;
	if ((rc = tl_blob_put_file(&b, c->pos[0], hash, &existed, err, sizeof err)) != 0)
		return blob_fail(c, rc, err);
	if (tl_blob_has(&b, hash, &size) != 0)
		return cli_fail(c, EXIT_ENV, "blob vanished after it was stored");
	tl_hex_encode(hex, hash, 32);
	if (c->json)
		printf("{\"hash\":\"%s\",\"size\":%llu,\"new\":%s}\n", hex,
		       (unsigned long long)size, existed ? "false" : "true");
	else
		printf("%s\n", hex);
	return EXIT_OK;
}

/* ---------------------------------------------------------------- get */

/* Is the hash referenced by any entry of a feed in this store? */
static int referenced_here(struct cli *c, const uint8_t hash[32], int *found)
{
	struct tl_feed *feeds = NULL;
	size_t nf = 0;
	int rc;
	*found = 0;
	if ((rc = tl_store_feed_list(c->store, &feeds, &nf)) != 0)
		return cli_store_fail(c, rc);
	for (size_t i = 0; i < nf && !*found; i++)
		if ((rc = tl_blob_feed_refs(c->store, &feeds[i], hash, found)) != 0) {
			free(feeds);
			return cli_store_fail(c, rc);
		}
	free(feeds);
	return 0;
}

/* Asks the node to fetch; 0 once the node says the blob is stored. */
static int fetch_via_node(struct cli *c, int fd, const char *hex)
{
	struct tl_buf line, pending;
	json_t *req = json_pack("{s:i,s:s,s:s}", "id", 1, "op", "blob_get", "hash", hex);
	char *s = json_dumps(req, JSON_COMPACT);
	int rc = EXIT_ENV;
	json_decref(req);
	if (!s)
		return cli_fail(c, EXIT_ENV, "out of memory");
	size_t len = strlen(s), off = 0;
	while (off < len) {
		ssize_t w = write(fd, s + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	free(s);
	if (off < len || write(fd, "\n", 1) != 1)
		return cli_fail(c, EXIT_ENV, "cannot talk to tallyd on %s/tallyd.sock", c->home);
	tl_buf_init(&line, 1u << 20);
	tl_buf_init(&pending, 1u << 20);
	for (;;) {
		if (cli_read_line(fd, &line, &pending, CTL_WAIT_MS) != 0) {
			rc = cli_fail(c, EXIT_ENV, "tallyd stopped answering on %s/tallyd.sock",
			              c->home);
			break;
		}
		json_t *r = json_loads((const char *)line.data, 0, NULL);
		json_t *pg = json_object_get(r, "progress");
		if (pg) {
			double got = (double)json_integer_value(json_object_get(pg, "received"));
			double tot = (double)json_integer_value(json_object_get(pg, "total"));
			fprintf(stderr, "tally blob get: %.1f of %.1f MB\n", got / 1e6, tot / 1e6);
			json_decref(r);
			continue;
		}
		if (!r || !json_is_boolean(json_object_get(r, "ok"))) {
			json_decref(r);
			rc = cli_fail(c, EXIT_ENV, "tallyd sent an unexpected answer");
			break;
		}
		if (json_is_true(json_object_get(r, "ok"))) {
			json_decref(r);
			rc = 0;
			break;
		}
		const char *reason = json_string_value(json_object_get(r, "reason"));
		const char *err = json_string_value(json_object_get(r, "error"));
		int code = EXIT_INVALID;
		if (!reason || strcmp(reason, "offline") == 0 || strcmp(reason, "io") == 0 ||
		    strcmp(reason, "busy") == 0)
			code = EXIT_ENV;
		else if (strcmp(reason, "bad_request") == 0)
			code = EXIT_USAGE;
		rc = cli_fail(c, code, "%s", err ? err : "tallyd could not fetch the blob");
		json_decref(r);
		break;
	}
	tl_buf_release(&line);
	tl_buf_release(&pending);
	return rc;
}

static void print_blob_json(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	printf("%s\n", s ? s : "{}");
	free(s);
	json_decref(o);
}

static int blob_get(struct cli *c)
{
	const char *out = cli_opt(c, "-o");
	struct tl_blobs b;
	uint8_t hash[32];
	char err[700] = "";
	uint64_t size = 0;
	int rc, from_peer = 0;
	if (c->npos != 1 || !out)
		return cli_usage(c, "usage: tally blob get HASH -o FILE");
	if (tl_blob_hex_parse(c->pos[0], hash) != 0)
		return cli_usage(c, "'%s' is not a blob hash (64 lowercase hex digits)", c->pos[0]);
	if ((rc = blobs_for(c, &b)) != 0)
		return rc;
	if (tl_blob_has(&b, hash, NULL) != 0) {
		int fd = cli_control_connect(c);
		if (fd < 0) {
			int found = 0;
			if ((rc = cli_open_store(c, 0)) != 0 ||
			    (rc = referenced_here(c, hash, &found)) != 0)
				return rc;
			if (!found)
				return cli_fail(
				        c, EXIT_INVALID,
				        "unknown blob %s: it is not stored here and no entry "
				        "in your channels references it",
				        c->pos[0]);
			return cli_fail(c, EXIT_ENV,
			                "blob %s is not stored here; start tallyd so that it can "
			                "fetch it from your counterparty",
			                c->pos[0]);
		}
		rc = fetch_via_node(c, fd, c->pos[0]);
		close(fd);
		if (rc)
			return rc;
		from_peer = 1;
	}
	if ((rc = tl_blob_copy_out(&b, hash, out, &size, err, sizeof err)) != 0)
		return blob_fail(c, rc, err);
	if (c->json) /* the file name may hold any byte: escaped by jansson */
		print_blob_json(json_pack("{s:s,s:I,s:s,s:b}", "hash", c->pos[0], "size",
		                          (json_int_t)size, "file", out, "fetched", from_peer));
	else
		printf("%s: %llu bytes, SHA-256 verified%s\n", out, (unsigned long long)size,
		       from_peer ? " (fetched from the counterparty)" : "");
	return EXIT_OK;
}

/* --------------------------------------------------------------- list */

static int blob_list(struct cli *c)
{
	struct tl_blobs b;
	struct tl_blob_info *v = NULL;
	size_t n = 0;
	char hex[TL_BLOB_HEX + 1], when[32];
	int rc;
	if (c->npos != 0)
		return cli_usage(c, "usage: tally blob list [--json]");
	if ((rc = blobs_for(c, &b)) != 0)
		return rc;
	if ((rc = tl_blob_list(&b, &v, &n)) != 0)
		return cli_fail(c, EXIT_ENV, "cannot list %s: %s", b.dir, tl_strerror(rc));
	json_t *arr = c->json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		tl_hex_encode(hex, v[i].hash, 32);
		cli_time_iso(when, v[i].mtime_ms);
		if (arr)
			json_array_append_new(arr,
			                      json_pack("{s:s,s:I,s:s}", "hash", hex, "size",
			                                (json_int_t)v[i].size, "stored", when));
		else
			printf("%s %12llu %s\n", hex, (unsigned long long)v[i].size, when);
	}
	if (arr) {
		char *s = json_dumps(arr, JSON_COMPACT);
		printf("%s\n", s ? s : "[]");
		free(s);
		json_decref(arr);
	}
	free(v);
	return EXIT_OK;
}

int cmd_blob(int argc, char **argv)
{
	static const char *const allowed[] = {"-o", "--max", NULL};
	struct cli c = {.cmd = "blob"};
	int rc;
	if (argc < 1)
		return cli_usage(&c, "usage: tally blob put|get|list ...");
	const char *sub = argv[0];
	if ((rc = cli_parse(&c, argc - 1, argv + 1, allowed, NULL)) != 0)
		return rc;
	if (strcmp(sub, "put") == 0) {
		c.cmd = "blob put";
		rc = blob_put(&c);
	} else if (strcmp(sub, "get") == 0) {
		c.cmd = "blob get";
		rc = blob_get(&c);
	} else if (strcmp(sub, "list") == 0) {
		c.cmd = "blob list";
		rc = blob_list(&c);
	} else {
		rc = cli_usage(&c, "usage: tally blob put|get|list ...");
	}
	cli_close(&c);
	return rc;
}

/* ------------------------------------------------------------ --attach */

int cli_blob_attach(struct cli *c, json_t *lines)
{
	struct tl_blobs b;
	char err[700] = "", hex[TL_BLOB_HEX + 1];
	uint8_t hash[32];
	int rc;
	if (tl_blobs_init(&b, c->home, 0) != 0)
		return cli_fail(c, EXIT_ENV, "home path too long: %s", c->home);
	for (int i = 0; i < c->nopts; i++) {
		if (strcmp(c->opts[i].name, "--attach") != 0)
			continue;
		const char *v = c->opts[i].val, *file = v, *eq = strchr(v, '=');
		json_t *line = NULL;
		/* DOC=FILE when the part before '=' names one of the --line docs. */
		if (eq) {
			for (size_t k = 0; k < json_array_size(lines); k++) {
				json_t *l = json_array_get(lines, k);
				const char *doc = json_string_value(json_object_get(l, "doc"));
				if (doc && strlen(doc) == (size_t)(eq - v) &&
				    memcmp(doc, v, (size_t)(eq - v)) == 0) {
					line = l;
					file = eq + 1;
				}
			}
		}
		if (!line) {
			if (json_array_size(lines) != 1)
				return cli_usage(c,
				                 "--attach %s: with several --line, name the line: "
				                 "--attach DOC=FILE",
				                 v);
			line = json_array_get(lines, 0);
		}
		if (!*file)
			return cli_usage(c, "--attach needs a file");
		if ((rc = tl_blob_put_file(&b, file, hash, NULL, err, sizeof err)) != 0)
			return blob_fail(c, rc, err);
		tl_hex_encode(hex, hash, 32);
		json_t *blobs = json_object_get(line, "blobs");
		if (!blobs) {
			blobs = json_array();
			json_object_set_new(line, "blobs", blobs);
		}
		int dup = 0;
		for (size_t k = 0; k < json_array_size(blobs); k++)
			dup |= strcmp(json_string_value(json_array_get(blobs, k)), hex) == 0;
		if (!dup)
			json_array_append_new(blobs, json_string(hex));
		fprintf(stderr, "tally %s: attached %s to line %s as blob %s\n", c->cmd, file,
		        json_string_value(json_object_get(line, "doc")), hex);
	}
	return 0;
}
