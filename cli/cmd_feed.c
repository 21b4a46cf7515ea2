/* cmd_feed.c — tally feed new|list|append|log|checkpoint|vkey|prove|consistency. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JSONL_MAX    ((size_t)1 << 32) /* 4 GiB of input lines */
#define APPEND_BATCH 1024

static int feed_new(struct cli *c)
{
	struct tl_book b;
	struct tl_feed f;
	uint8_t peer[TL_PUB_LEN];
	const char *book = cli_opt(c, "--book"), *peer_hex = cli_opt(c, "--peer");
	const char *label = cli_opt(c, "--label");
	int rc;

	if (!book || !peer_hex || c->npos)
		return cli_usage(c, "usage: tally feed new --book NAME --peer PUBKEY_HEX "
		                    "[--label L]");
	if (!label)
		label = "default";
	if (strlen(peer_hex) != 64 || tl_hex_decode(peer, TL_PUB_LEN, peer_hex, 64) != 0)
		return cli_usage(c, "--peer must be a 64-digit hex public key, not '%s'", peer_hex);
	if (!*label || strlen(label) > TL_LABEL_MAX ||
	    !tl_utf8_valid((const uint8_t *)label, strlen(label)))
		return cli_usage(c, "--label must be 1-%d bytes of UTF-8", TL_LABEL_MAX);
	if ((rc = cli_open_store(c, 0)) != 0)
		return rc;
	if ((rc = tl_store_book_get(c->store, book, &b)) != 0)
		return cli_fail(c, rc == TL_ENOTFOUND ? EXIT_INVALID : EXIT_ENV, "%s",
		                tl_store_errmsg(c->store));
	if (memcmp(peer, b.pk, TL_PUB_LEN) == 0)
		return cli_usage(c, "--peer is book %s's own key; a channel needs two books", book);
	memset(&f, 0, sizeof f);
	tl_channel_id(f.o.channel, b.pk, peer, label, strlen(label));
	tl_origin_format(f.origin, b.pk, f.o.channel);
	memcpy(f.peer, peer, TL_PUB_LEN);
	memcpy(f.book, b.name, sizeof f.book);
	memcpy(f.label, label, strlen(label) + 1);
	f.flags = TL_FEED_OWN;
	rc = tl_store_feed_add(c->store, &f);
	if (rc == TL_EEXIST)
		return cli_fail(c, EXIT_INVALID, "book %s already has a feed in this channel: %s",
		                book, f.origin);
	if (rc)
		return cli_fail(c, EXIT_ENV, "%s", tl_store_errmsg(c->store));
	if (c->json)
		printf("{\"origin\":\"%s\",\"book\":\"%s\",\"label\":\"%s\"}\n", f.origin, book,
		       label);
	else
		printf("%s\n", f.origin);
	return 0;
}

static int feed_list(struct cli *c)
{
	struct tl_feed *feeds;
	size_t n;
	int rc;
	if ((rc = cli_open_store(c, 0)) != 0)
		return rc;
	if (tl_store_feed_list(c->store, &feeds, &n) != 0)
		return cli_fail(c, EXIT_ENV, "%s", tl_store_errmsg(c->store));
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct tl_feed *f = &feeds[i];
		if (c->json)
			json_array_append_new(
			        arr, json_pack("{s:s,s:s,s:s,s:I,s:b,s:b,s:b}", "origin", f->origin,
			                       "book", f->book, "label", f->label, "size",
			                       (json_int_t)f->head.size, "own",
			                       (f->flags & TL_FEED_OWN) != 0, "forked",
			                       (f->flags & TL_FEED_FORKED) != 0, "halted",
			                       (f->flags & TL_FEED_HALTED) != 0));
		else
			printf("%s  %-12s %-10s %llu entries%s%s\n", f->origin,
			       f->flags & TL_FEED_OWN ? f->book : "(peer)", f->label,
			       (unsigned long long)f->head.size,
			       f->flags & TL_FEED_FORKED ? "  FORKED" : "",
			       f->flags & TL_FEED_HALTED ? "  HALTED" : "");
	}
	if (c->json) {
		char *s = json_dumps(arr, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	}
	json_decref(arr);
	free(feeds);
	return 0;
}

/* ------------------------------------------------------------- append */

static int kind_valid(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > TL_KIND_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			return 0;
	return 1;
}

struct pending {
	struct tl_buf kinds; /* NUL-separated kinds */
	size_t *kind_off;
	struct tl_buf bodies; /* concatenated MessagePack bodies */
	size_t *body_off;
	size_t n, cap;
};

static int pending_add(struct pending *p, const char *kind, const json_t *body, char *err,
                       size_t errcap)
{
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 64;
		size_t *ko = realloc(p->kind_off, nc * sizeof *ko);
		if (!ko)
			return TL_ENOMEM;
		p->kind_off = ko;
		size_t *bo = realloc(p->body_off, (nc + 1) * sizeof *bo);
		if (!bo)
			return TL_ENOMEM;
		p->body_off = bo;
		p->cap = nc;
	}
	p->kind_off[p->n] = p->kinds.len;
	if (tl_buf_add(&p->kinds, kind, strlen(kind) + 1) != 0)
		return TL_ENOMEM;
	p->body_off[p->n] = p->bodies.len;
	int rc = tl_json_to_mp(body, &p->bodies, err, errcap);
	if (rc)
		return rc;
	if (p->bodies.len - p->body_off[p->n] > TL_ENTRY_MAX - 512) {
		snprintf(err, errcap, "body is larger than the %u-byte entry limit",
		         TL_ENTRY_MAX - 512);
		return TL_ETOOBIG;
	}
	p->n++;
	p->body_off[p->n] = p->bodies.len;
	return 0;
}

static void pending_release(struct pending *p)
{
	tl_buf_release(&p->kinds);
	free(p->kind_off);
	free(p->body_off);
	tl_buf_release(&p->bodies);
}

/* Parses --jsonl input: every line must be valid before anything is signed. */
static int parse_jsonl(struct cli *c, const char *path, struct pending *p)
{
	struct tl_buf in;
	int rc = cli_read_file(c, path, JSONL_MAX, &in);
	if (rc)
		return rc;
	const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
	char *s = (char *)in.data, *end = s + in.len;
	size_t line = 0;
	for (char *l = s; l < end; line++) {
		char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t len = nl ? (size_t)(nl - l) : (size_t)(end - l);
		char *next = nl ? nl + 1 : end;
		if (len && l[len - 1] == '\r')
			len--;
		size_t ws = 0;
		while (ws < len && (l[ws] == ' ' || l[ws] == '\t'))
			ws++;
		if (ws == len) { /* blank lines are skipped */
			l = next;
			continue;
		}
		json_error_t je;
		json_t *j = json_loadb(l, len, JSON_REJECT_DUPLICATES, &je);
		const char *kind;
		json_t *body;
		char err[256];
		if (!j) {
			rc = cli_fail(c, EXIT_INVALID, "%s:%zu:%d: invalid JSON: %s", name,
			              line + 1, je.column, je.text);
			goto out;
		}
		if (json_unpack(j, "{s:s,s:o}", "kind", &kind, "body", &body) != 0 ||
		    !json_is_object(body) || json_object_size(j) != 2) {
			json_decref(j);
			rc = cli_fail(c, EXIT_INVALID,
			              "%s:%zu: each line must be {\"kind\": STRING, \"body\": "
			              "OBJECT} and nothing else",
			              name, line + 1);
			goto out;
		}
		if (!kind_valid(kind)) {
			json_decref(j);
			rc = cli_fail(c, EXIT_INVALID,
			              "%s:%zu: kind must be 1-%d printable ASCII characters", name,
			              line + 1, TL_KIND_MAX);
			goto out;
		}
		rc = pending_add(p, kind, body, err, sizeof err);
		json_decref(j);
		if (rc) {
			rc = cli_fail(c, EXIT_INVALID, "%s:%zu: %s", name, line + 1,
			              rc == TL_ENOMEM ? "out of memory" : err);
			goto out;
		}
		l = next;
	}
	if (p->n == 0)
		rc = cli_fail(c, EXIT_INVALID, "%s: no entries to append", name);
out:
	tl_buf_release(&in);
	return rc;
}

struct ack {
	struct cli *c;
	const struct tl_appended *out;
};

/* Runs on the committer thread: prints entries once they are durable, so
 * that whatever a caller has read is guaranteed to be stored. */
static void on_durable(void *ctx, size_t first, size_t n)
{
	struct ack *a = ctx;
	char hex[TL_HASH_LEN * 2 + 1];
	for (size_t i = first; i < first + n; i++) {
		tl_hex_encode(hex, a->out[i].leaf, TL_HASH_LEN);
		if (a->c->json)
			printf("{\"seq\":%llu,\"leaf\":\"%s\"}\n",
			       (unsigned long long)a->out[i].seq, hex);
		else
			printf("%llu %s\n", (unsigned long long)a->out[i].seq, hex);
	}
	fflush(stdout);
}

/*
 * Sends the entries to the running node in requests of at most
 * NODE_REQ_ITEMS entries or NODE_REQ_BYTES of bodies (the node caps a
 * control line at 64 MiB), one after another; each request is one or more
 * durable batches, acknowledged as it completes. A failure stops there:
 * what was acknowledged before it is stored.
 */
#define NODE_REQ_ITEMS 16384
#define NODE_REQ_BYTES ((size_t)16 << 20)

static int append_via_node(struct cli *c, int fd, const char *origin, const struct pending *p)
{
	size_t i = 0, acked = 0;
	int rc = 0;
	while (i < p->n && rc == 0) {
		json_t *items = json_array();
		size_t first = i, bytes = 0;
		for (; i < p->n && i - first < NODE_REQ_ITEMS &&
		       (bytes < NODE_REQ_BYTES || i == first);
		     i++) {
			size_t bl = p->body_off[i + 1] - p->body_off[i];
			json_t *body = tl_mp_to_json(p->bodies.data + p->body_off[i], bl);
			bytes += bl;
			json_array_append_new(
			        items, json_pack("{s:s,s:o}", "kind",
			                         (const char *)p->kinds.data + p->kind_off[i],
			                         "body", body ? body : json_object()));
		}
		json_t *req = json_pack("{s:s,s:s,s:o}", "op", "append", "origin", origin, "items",
		                        items);
		json_t *resp = cli_control_call(c, fd, req);
		json_decref(req);
		if (!resp)
			return EXIT_ENV;
		if (!json_is_true(json_object_get(resp, "ok"))) {
			rc = cli_fail(c, EXIT_INVALID,
			              "tallyd refused the append after %zu of %zu entries: %s",
			              acked, p->n,
			              json_string_value(json_object_get(resp, "error")));
		} else {
			size_t k;
			json_t *v;
			json_array_foreach(
			        json_object_get(json_object_get(resp, "result"), "appended"), k, v)
			{
				long long seq =
				        (long long)json_integer_value(json_object_get(v, "seq"));
				const char *leaf = json_string_value(json_object_get(v, "leaf"));
				if (c->json)
					printf("{\"seq\":%lld,\"leaf\":\"%s\"}\n", seq, leaf);
				else
					printf("%lld %s\n", seq, leaf);
				acked++;
			}
			fflush(stdout);
		}
		json_decref(resp);
	}
	return rc;
}

/* Appends what p holds to origin: through the running node if there is one,
 * else signed and stored here, acknowledged line by line once durable. */
static int append_pending(struct cli *c, const char *origin, struct pending *pp)
{
	struct pending p = *pp; /* borrowed, released by the caller */
	struct tl_feed f;
	struct tl_keypair kp;
	struct tl_item *items = NULL;
	struct tl_appended *out = NULL;
	size_t done = 0;
	int rc, lockfd = -1, have_key = 0;

	if ((rc = cli_open_store(c, 0)) != 0 || (rc = cli_feed(c, origin, &f)) != 0)
		goto out;
	if (!(f.flags & TL_FEED_OWN)) {
		rc = cli_fail(c, EXIT_INVALID,
		              (f.flags & TL_FEED_AUDIT)
		                      ? "feed %s is followed read-only for an audit; only its author "
		                        "appends"
		                      : "feed %s belongs to the counterparty; only its author appends",
		              f.origin);
		goto out;
	}
	/* A running node is the writer: it signs, stores and pushes to peers. */
	int fd = cli_control_connect(c);
	if (fd >= 0) {
		rc = append_via_node(c, fd, f.origin, &p);
		close(fd);
		goto out;
	}
	items = calloc(p.n, sizeof *items);
	out = calloc(p.n, sizeof *out);
	if (!items || !out) {
		rc = cli_fail(c, EXIT_ENV, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p.n; i++) {
		items[i].kind = (const char *)p.kinds.data + p.kind_off[i];
		items[i].kind_len = strlen(items[i].kind);
		items[i].body = p.bodies.data + p.body_off[i];
		items[i].body_len = p.body_off[i + 1] - p.body_off[i];
	}
	if ((rc = cli_load_key(c, f.book, &kp)) != 0)
		goto out;
	have_key = 1;
	if ((rc = cli_lock(c, &lockfd)) != 0)
		goto out;
	struct ack a = {c, out};
	rc = tl_feed_append_local(c->store, f.origin, &kp, items, p.n, APPEND_BATCH, cli_now_ms(),
	                          out, &done, on_durable, &a);
	if (rc == TL_EKEY)
		rc = cli_fail(c, EXIT_ENV, "the key of book %s does not match feed %s", f.book,
		              f.origin);
	else if (rc == TL_EINVAL || rc == TL_ETOOBIG || rc == TL_ENOMEM)
		rc = cli_fail(c, EXIT_INVALID, "append stopped after %zu of %zu entries: %s", done,
		              p.n, tl_strerror(rc));
	else if (rc)
		rc = cli_fail(c,
		              rc == TL_ECHAIN || rc == TL_ECORRUPT || rc == TL_EFORK ? EXIT_INVALID
		                                                                     : EXIT_ENV,
		              "append stopped after %zu of %zu entries (all %zu acknowledged are "
		              "stored): %s",
		              done, p.n, done, tl_store_errmsg(c->store));
	if (!rc && !c->json && p.n > 1)
		fprintf(stderr, "appended %zu entries to %s\n", p.n, f.origin);
out:
	cli_unlock(lockfd);
	if (have_key)
		tl_key_wipe(&kp);
	free(items);
	free(out);
	return rc;
}

static int feed_append(struct cli *c)
{
	const char *kind = cli_opt(c, "--kind"), *body = cli_opt(c, "--body");
	const char *jsonl = cli_opt(c, "--jsonl");
	struct pending p;
	int rc;

	memset(&p, 0, sizeof p);
	tl_buf_init(&p.bodies, JSONL_MAX);
	tl_buf_init(&p.kinds, JSONL_MAX);
	if (c->npos != 1 || (!jsonl && (!kind || !body)) || (jsonl && (kind || body))) {
		rc = cli_usage(c, "usage: tally feed append ORIGIN --kind K --body JSON\n"
		                  "       tally feed append ORIGIN --jsonl FILE|-");
		goto out;
	}
	if (jsonl) {
		if ((rc = parse_jsonl(c, jsonl, &p)) != 0)
			goto out;
	} else {
		json_error_t je;
		char err[256];
		if (!kind_valid(kind)) {
			rc = cli_usage(c, "--kind must be 1-%d printable ASCII characters",
			               TL_KIND_MAX);
			goto out;
		}
		json_t *j = json_loads(body, JSON_REJECT_DUPLICATES, &je);
		if (!j || !json_is_object(j)) {
			rc = j ? cli_fail(c, EXIT_INVALID, "--body must be a JSON object")
			       : cli_fail(c, EXIT_INVALID,
			                  "--body is not valid JSON: %s (column %d)", je.text,
			                  je.column);
			json_decref(j);
			goto out;
		}
		rc = pending_add(&p, kind, j, err, sizeof err);
		json_decref(j);
		if (rc) {
			rc = cli_fail(c, EXIT_INVALID, "--body: %s", err);
			goto out;
		}
	}
	rc = append_pending(c, c->pos[0], &p);
out:
	pending_release(&p);
	return rc;
}

int cli_append_one(struct cli *c, const char *origin, const char *kind, const json_t *body)
{
	struct pending p;
	char err[256];
	int rc;
	memset(&p, 0, sizeof p);
	tl_buf_init(&p.bodies, JSONL_MAX);
	tl_buf_init(&p.kinds, JSONL_MAX);
	if ((rc = pending_add(&p, kind, body, err, sizeof err)) != 0)
		rc = cli_fail(c, EXIT_INVALID, "%s", rc == TL_ENOMEM ? "out of memory" : err);
	else
		rc = append_pending(c, origin, &p);
	pending_release(&p);
	return rc;
}

/* ---------------------------------------------------------------- log */

struct log_ctx {
	struct cli *c;
	json_t *arr;
};

static int log_one(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                   const uint8_t leaf[TL_HASH_LEN])
{
	struct log_ctx *lc = ctx;
	struct tl_entry e;
	char when[32], hex[TL_HASH_LEN * 2 + 1], kind[TL_KIND_MAX + 1], summary[160];
	size_t where;
	int rc = tl_record_decode(&e, rec, len, &where);
	if (rc)
		return cli_fail(lc->c, EXIT_INVALID, "seq %llu: stored record is malformed: %s",
		                (unsigned long long)seq, tl_strerror(rc));
	tl_hex_encode(hex, leaf, TL_HASH_LEN);
	cli_time_iso(when, e.time_ms);
	memcpy(kind, e.kind, e.kind_len);
	kind[e.kind_len] = 0;
	if (lc->arr) {
		json_t *body = tl_mp_to_json(e.body, e.body_len);
		json_array_append_new(
		        lc->arr, json_pack("{s:I,s:I,s:s,s:s,s:s,s:o}", "seq", (json_int_t)seq,
		                           "time_ms", (json_int_t)e.time_ms, "time", when, "kind",
		                           kind, "leaf", hex, "body", body ? body : json_null()));
	} else {
		tl_mp_summary(e.body, e.body_len, summary, sizeof summary);
		printf("%6llu  %s  %-12s %.12s  %s\n", (unsigned long long)seq, when, kind, hex,
		       summary);
	}
	return 0;
}

static int feed_log(struct cli *c)
{
	struct tl_feed f;
	uint64_t from = 0, to = UINT64_MAX;
	int rc;
	if (c->npos != 1)
		return cli_usage(c, "usage: tally feed log ORIGIN [--from N] [--to M] [--json]");
	if ((cli_opt(c, "--from") && (rc = cli_u64(c, "--from", cli_opt(c, "--from"), &from))) ||
	    (cli_opt(c, "--to") && (rc = cli_u64(c, "--to", cli_opt(c, "--to"), &to))))
		return rc;
	if ((rc = cli_open_store(c, 0)) != 0 || (rc = cli_feed(c, c->pos[0], &f)) != 0)
		return rc;
	struct log_ctx lc = {c, c->json ? json_array() : NULL};
	if (!c->json)
		printf("feed %s (%llu entries)\n", f.origin, (unsigned long long)f.head.size);
	/* --to is inclusive for people: "--from 3 --to 5" shows 3, 4 and 5. */
	uint64_t end = to == UINT64_MAX ? to : to + 1;
	rc = tl_store_scan(c->store, &f, from, end, log_one, &lc);
	if (rc < 0)
		rc = cli_store_fail(c, rc);
	if (!rc && lc.arr) {
		char *s = json_dumps(lc.arr, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	}
	json_decref(lc.arr);
	return rc;
}

/* ------------------------------------------------ checkpoints and proofs */

static int feed_checkpoint(struct cli *c)
{
	struct tl_feed f;
	struct tl_buf note;
	uint64_t size;
	int rc;
	if (c->npos != 1)
		return cli_usage(c, "usage: tally feed checkpoint ORIGIN");
	if ((rc = cli_open_store(c, 0)) != 0 || (rc = cli_feed(c, c->pos[0], &f)) != 0)
		return rc;
	tl_buf_init(&note, TL_NOTE_MAX);
	if ((rc = cli_checkpoint_current(c, &f, &note, &size, 1)) == 0 && !c->json) {
		fwrite(note.data, 1, note.len, stdout);
	} else if (rc == 0) {
		json_t *o = json_pack("{s:s,s:I,s:s%}", "origin", f.origin, "size",
		                      (json_int_t)size, "note", (const char *)note.data, note.len);
		char *js = json_dumps(o, JSON_COMPACT);
		printf("%s\n", js);
		free(js);
		json_decref(o);
	}
	tl_buf_release(&note);
	return rc;
}

static int feed_vkey(struct cli *c)
{
	struct tl_origin o;
	struct tl_vkey vk;
	struct tl_buf out;
	const char *origin = c->npos == 1 ? c->pos[0] : NULL;
	if (!origin)
		return cli_usage(c, "usage: tally feed vkey ORIGIN");
	if (tl_origin_parse(&o, origin, strlen(origin)) != 0)
		return cli_usage(c, "'%s' is not a feed origin (tally.v1/<key hex>/<channel hex>)",
		                 origin);
	tl_buf_init(&out, 1024);
	if (tl_vkey_from_pub(&vk, origin, TL_SIGTYPE_ED25519, o.pk) != 0 ||
	    tl_vkey_format(&vk, &out) != 0) {
		tl_buf_release(&out);
		return cli_fail(c, EXIT_ENV, "cannot format the vkey");
	}
	if (c->json)
		printf("{\"origin\":\"%s\",\"vkey\":\"%s\"}\n", origin, tl_buf_cstr(&out));
	else
		printf("%s\n", tl_buf_cstr(&out));
	tl_buf_release(&out);
	return 0;
}

/* The smallest stored checkpoint with size > seq that carries cosignatures
 * (type 0x04 lines: 8-byte time + signature), so that a proof shows the
 * entry's earliest witnessed time. */
struct cosigned_pick {
	uint64_t seq, size;
	struct tl_buf *note;
	int found;
};

static int pick_cosigned(void *ctx, uint64_t size, const char *note, size_t len)
{
	struct cosigned_pick *p = ctx;
	struct tl_note n;
	int cosigned = 0;

	if (size <= p->seq || (p->found && size >= p->size))
		return 0;
	memset(&n, 0, sizeof n);
	if (tl_note_parse(&n, note, len) != 0)
		return 0;
	for (size_t i = 0; i < n.nsigs; i++)
		cosigned |= n.sigs[i].bloblen == 8 + TL_SIG_LEN;
	tl_note_release(&n);
	if (!cosigned)
		return 0;
	tl_buf_reset(p->note);
	if (tl_buf_add(p->note, note, len) != 0)
		return TL_ENOMEM;
	p->size = size;
	p->found = 1;
	return 0;
}

static int feed_prove(struct cli *c)
{
	struct tl_feed f;
	struct tl_buf note, rec, out;
	uint8_t proof[TL_MERKLE_MAX_PROOF][TL_HASH_LEN];
	uint64_t seq, size;
	size_t n;
	const char *path = cli_opt(c, "-o");
	int rc;

	if (c->npos != 2)
		return cli_usage(c, "usage: tally feed prove ORIGIN SEQ [-o FILE]");
	if ((rc = cli_u64(c, "SEQ", c->pos[1], &seq)) != 0)
		return rc;
	if ((rc = cli_open_store(c, 0)) != 0 || (rc = cli_feed(c, c->pos[0], &f)) != 0)
		return rc;
	if (seq >= f.head.size)
		return cli_fail(c, EXIT_INVALID, "feed %s has %llu entries; there is no seq %llu",
		                f.origin, (unsigned long long)f.head.size, (unsigned long long)seq);
	tl_buf_init(&note, TL_NOTE_MAX);
	tl_buf_init(&rec, TL_RECORD_MAX);
	tl_buf_init(&out, TL_RECORD_MAX * 2 + TL_NOTE_MAX + 65536);
	struct cosigned_pick pick = {.seq = seq, .note = &note};
	if ((rc = tl_store_checkpoint_scan(c->store, &f, pick_cosigned, &pick)) != 0) {
		rc = cli_store_fail(c, rc);
		goto out;
	}
	if (pick.found)
		size = pick.size;
	else if ((rc = cli_checkpoint_current(c, &f, &note, &size, 1)) != 0)
		goto out;
	if (size <= seq) {
		rc = cli_fail(c, EXIT_INVALID,
		              "feed %s: the latest checkpoint (size %llu) does not cover seq %llu",
		              f.origin, (unsigned long long)size, (unsigned long long)seq);
		goto out;
	}
	if ((rc = tl_store_inclusion(c->store, &f, seq, size, proof, TL_MERKLE_MAX_PROOF, &n)) !=
	            0 ||
	    (rc = tl_store_record(c->store, &f, seq, &rec)) != 0) {
		rc = cli_store_fail(c, rc);
		goto out;
	}
	if ((rc = tl_tlog_proof_format(&out, rec.data, rec.len, seq,
	                               (const uint8_t(*)[TL_HASH_LEN])proof, n,
	                               (const char *)note.data, note.len)) != 0) {
		rc = cli_fail(c, EXIT_ENV, "formatting the proof: %s", tl_strerror(rc));
		goto out;
	}
	if (path) {
		if ((rc = cli_write_atomic(c, path, out.data, out.len)) != 0)
			goto out;
		fprintf(stderr, "wrote proof of seq %llu (tree size %llu) to %s\n",
		        (unsigned long long)seq, (unsigned long long)size, path);
	} else if (c->json) {
		json_t *o = json_pack("{s:s,s:I,s:I,s:s%}", "origin", f.origin, "seq",
		                      (json_int_t)seq, "size", (json_int_t)size, "proof",
		                      (const char *)out.data, out.len);
		char *js = json_dumps(o, JSON_COMPACT);
		printf("%s\n", js);
		free(js);
		json_decref(o);
	} else {
		fwrite(out.data, 1, out.len, stdout);
	}
out:
	tl_buf_release(&note);
	tl_buf_release(&rec);
	tl_buf_release(&out);
	return rc;
}

static int feed_consistency(struct cli *c)
{
	struct tl_feed f;
	uint8_t proof[TL_MERKLE_MAX_PROOF][TL_HASH_LEN];
	char b64[64];
	uint64_t old, new_size;
	size_t n;
	int rc;
	if (c->npos != 2 && c->npos != 3)
		return cli_usage(c, "usage: tally feed consistency ORIGIN OLD [NEW]");
	if ((rc = cli_u64(c, "OLD", c->pos[1], &old)) != 0)
		return rc;
	if ((rc = cli_open_store(c, 0)) != 0 || (rc = cli_feed(c, c->pos[0], &f)) != 0)
		return rc;
	new_size = f.head.size;
	if (c->npos == 3 && (rc = cli_u64(c, "NEW", c->pos[2], &new_size)) != 0)
		return rc;
	if (old == 0 || old > new_size || new_size > f.head.size)
		return cli_fail(
		        c, EXIT_INVALID,
		        "need 0 < OLD <= NEW <= %llu (the feed size); got OLD=%llu NEW=%llu",
		        (unsigned long long)f.head.size, (unsigned long long)old,
		        (unsigned long long)new_size);
	if (tl_store_consistency(c->store, &f, old, new_size, proof, TL_MERKLE_MAX_PROOF, &n) != 0)
		return cli_fail(c, EXIT_ENV, "%s", tl_store_errmsg(c->store));
	json_t *arr = c->json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		tl_b64_encode(b64, proof[i], TL_HASH_LEN);
		if (arr)
			json_array_append_new(arr, json_string(b64));
		else
			printf("%s\n", b64);
	}
	if (arr) {
		json_t *o = json_pack("{s:s,s:I,s:I,s:o}", "origin", f.origin, "old",
		                      (json_int_t)old, "new", (json_int_t)new_size, "proof", arr);
		char *js = json_dumps(o, JSON_COMPACT);
		printf("%s\n", js);
		free(js);
		json_decref(o);
	}
	return 0;
}

int cmd_feed(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct cli *);
		const char *const allowed[6];
	} subs[] = {
	        {"new", feed_new, {"--book", "--peer", "--label", NULL}},
	        {"list", feed_list, {NULL}},
	        {"append", feed_append, {"--kind", "--body", "--jsonl", NULL}},
	        {"log", feed_log, {"--from", "--to", NULL}},
	        {"checkpoint", feed_checkpoint, {NULL}},
	        {"vkey", feed_vkey, {NULL}},
	        {"prove", feed_prove, {"-o", NULL}},
	        {"consistency", feed_consistency, {NULL}},
	};
	struct cli c = {.cmd = "feed"};
	char cmdname[64];
	if (argc < 1)
		return cli_usage(&c, "usage: tally feed new|list|append|log|checkpoint|vkey|prove|"
		                     "consistency ...");
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		if (strcmp(argv[0], subs[i].name) != 0)
			continue;
		snprintf(cmdname, sizeof cmdname, "feed %s", subs[i].name);
		c.cmd = cmdname;
		int rc = cli_parse(&c, argc - 1, argv + 1, subs[i].allowed, NULL);
		if (rc == 0)
			rc = subs[i].fn(&c);
		cli_close(&c);
		return rc;
	}
	return cli_usage(&c, "unknown subcommand 'feed %s'", argv[0]);
}
