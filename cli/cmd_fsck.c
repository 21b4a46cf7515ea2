/*
 * cmd_fsck.c — tally fsck: re-verify everything a data directory holds,
 * from the bytes up, without trusting any derived value the store keeps.
 *
 * For each feed (or the ones named): every record is read and checked
 * against its stored leaf hash, decoded, its signature verified with the
 * origin's key, its seq and prev link followed; the Merkle tree is rebuilt
 * from the records (compact range) and compared, at every stored
 * checkpoint, with the checkpoint's root, with the root the store derives
 * from its subtree hashes (what new checkpoints and proofs are made from),
 * and the checkpoint's signature is verified. Witness cosignature lines in
 * stored notes are not judged here (`tally audit` does that with the
 * witness keys).
 *
 * Exit 0: every feed sound; 1: a problem, each reported with feed and seq;
 * 3: the store cannot be opened.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FSCK_PROBLEMS_MAX 20 /* reported per feed; the rest counted */

struct cp_ref {
	uint64_t size;
	uint8_t root[TL_HASH_LEN];
	int sig_ok;
};

struct fsck_feed {
	struct cli *c;
	const struct tl_feed *f;
	struct tl_merkle_acc acc;
	uint8_t prev[TL_HASH_LEN];
	struct cp_ref *cps;
	size_t ncps, cap, next_cp;
	uint64_t records, checkpoints;
	size_t problems;
	json_t *jproblems; /* --json */
	int progress;
};

static void problem(struct fsck_feed *x, uint64_t seq, const char *fmt, ...) TL_PRINTF(3, 4);

static void problem(struct fsck_feed *x, uint64_t seq, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (x->problems++ >= FSCK_PROBLEMS_MAX)
		return;
	if (x->jproblems) {
		json_array_append_new(x->jproblems,
		                      json_pack("{s:I,s:s}", "seq", (json_int_t)seq, "problem", msg));
	} else {
		if (seq == UINT64_MAX)
			fprintf(stderr, "  %s: %s\n", x->f->origin, msg);
		else
			fprintf(stderr, "  %s seq %llu: %s\n", x->f->origin, (unsigned long long)seq,
			        msg);
	}
}

static int cp_cmp(const void *a, const void *b)
{
	const struct cp_ref *x = a, *y = b;
	return x->size < y->size ? -1 : x->size > y->size;
}

static int collect_cp(void *ctx, uint64_t size, const char *text, size_t len)
{
	struct fsck_feed *x = ctx;
	struct tl_note n;
	struct tl_checkpoint cp;
	struct tl_vkey vk;

	if (x->ncps == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 16;
		struct cp_ref *p = realloc(x->cps, cap * sizeof *p);
		if (!p)
			return TL_ENOMEM;
		x->cps = p;
		x->cap = cap;
	}
	if (tl_note_parse(&n, text, len) != 0) {
		problem(x, UINT64_MAX, "stored checkpoint of size %llu is not a signed note",
		        (unsigned long long)size);
		return 0;
	}
	if (tl_checkpoint_parse(&cp, n.raw, n.text_len) != 0 || strcmp(cp.origin, x->f->origin) != 0 ||
	    cp.size != size) {
		problem(x, UINT64_MAX,
		        "stored checkpoint of size %llu does not parse as this feed's checkpoint",
		        (unsigned long long)size);
		tl_note_release(&n);
		return 0;
	}
	struct cp_ref *r = &x->cps[x->ncps++];
	r->size = size;
	memcpy(r->root, cp.root, TL_HASH_LEN);
	r->sig_ok = tl_vkey_from_pub(&vk, x->f->origin, TL_SIGTYPE_ED25519, x->f->o.pk) == 0 &&
	            tl_note_verify(&n, &vk) == 0;
	tl_note_release(&n);
	return 0;
}

/* The tree of the first acc->size records is complete: judge the
 * checkpoints of that size. */
static void check_cps(struct fsck_feed *x)
{
	uint8_t root[TL_HASH_LEN], derived[TL_HASH_LEN];

	while (x->next_cp < x->ncps && x->cps[x->next_cp].size <= x->acc.size) {
		const struct cp_ref *r = &x->cps[x->next_cp++];
		if (r->size < x->acc.size)
			continue; /* a size 0 checkpoint when the feed has records */
		x->checkpoints++;
		tl_merkle_acc_root(&x->acc, root);
		if (!r->sig_ok)
			problem(x, r->size, "checkpoint of size %llu: signature by the feed key does not verify",
			        (unsigned long long)r->size);
		if (memcmp(root, r->root, TL_HASH_LEN) != 0)
			problem(x, r->size,
			        "checkpoint of size %llu names a root the records do not give",
			        (unsigned long long)r->size);
		if (tl_store_root(x->c->store, x->f, r->size, derived) != 0 ||
		    memcmp(root, derived, TL_HASH_LEN) != 0)
			problem(x, r->size,
			        "stored subtree hashes give another root at size %llu (derived data damaged)",
			        (unsigned long long)r->size);
	}
}

static int check_record(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                        const uint8_t leaf[TL_HASH_LEN])
{
	struct fsck_feed *x = ctx;
	struct tl_entry e;
	size_t where = 0;

	x->records++;
	if (tl_record_decode(&e, rec, len, &where) != 0) {
		problem(x, seq, "record does not decode (byte %zu)", where);
	} else {
		if (e.seq != seq)
			problem(x, seq, "record says seq %llu", (unsigned long long)e.seq);
		if (memcmp(e.origin_str, x->f->origin, TL_ORIGIN_LEN) != 0)
			problem(x, seq, "record names another origin");
		if (memcmp(e.prev, x->prev, TL_HASH_LEN) != 0)
			problem(x, seq, "prev does not name the leaf hash of seq %llu",
			        (unsigned long long)(seq ? seq - 1 : 0));
		if (tl_record_verify_sig(&e) != 0)
			problem(x, seq, "signature does not verify with the origin's key");
	}
	memcpy(x->prev, leaf, TL_HASH_LEN);
	tl_merkle_acc_push(&x->acc, leaf, NULL, NULL);
	check_cps(x);
	if (x->progress && (seq + 1) % 100000 == 0)
		fprintf(stderr, "\r  %s: %llu / %llu", x->f->book[0] ? x->f->book : "peer",
		        (unsigned long long)(seq + 1), (unsigned long long)x->f->head.size);
	return 0;
}

static int fsck_feed(struct cli *c, const struct tl_feed *f, json_t *jfeeds, size_t *bad)
{
	struct fsck_feed x = {.c = c, .f = f, .progress = !c->json && isatty(2)};
	int rc;

	if (c->json)
		x.jproblems = json_array();
	tl_merkle_acc_init(&x.acc);
	if ((rc = tl_store_checkpoint_scan(c->store, f, collect_cp, &x)) != 0) {
		problem(&x, UINT64_MAX, "reading checkpoints: %s", tl_store_errmsg(c->store));
	} else {
		qsort(x.cps, x.ncps, sizeof *x.cps, cp_cmp);
		check_cps(&x); /* size 0 */
		/* A damaged record stops a scan: note it, go on with its stored
		 * leaf hash (so the tree and the rest of the feed are still judged)
		 * and scan on from the next seq. */
		uint64_t from = 0;
		while ((rc = tl_store_scan(c->store, f, from, f->head.size, check_record, &x)) ==
		       TL_ECORRUPT) {
			uint8_t leaf[TL_HASH_LEN];
			uint64_t seq = x.records;
			problem(&x, seq, "record bytes do not match the stored leaf hash (damaged on disk)");
			if (tl_store_leaf(c->store, f, seq, leaf) != 0)
				break;
			x.records++;
			memcpy(x.prev, leaf, TL_HASH_LEN);
			tl_merkle_acc_push(&x.acc, leaf, NULL, NULL);
			check_cps(&x);
			from = seq + 1;
		}
		if (rc != 0 && rc != TL_ECORRUPT)
			problem(&x, x.records, "%s", tl_store_errmsg(c->store));
		else if (rc == 0 && x.records != f->head.size)
			problem(&x, x.records, "feed size is %llu but %llu records are stored",
			        (unsigned long long)f->head.size, (unsigned long long)x.records);
		else if (f->head.size && memcmp(x.prev, f->head.last_leaf, TL_HASH_LEN) != 0)
			problem(&x, f->head.size - 1, "the feed head names another last leaf");
		for (; x.next_cp < x.ncps; x.next_cp++)
			problem(&x, x.cps[x.next_cp].size,
			        "checkpoint of size %llu is beyond the stored records",
			        (unsigned long long)x.cps[x.next_cp].size);
	}
	if (x.progress)
		fprintf(stderr, "\r\033[K");
	if (x.problems)
		(*bad)++;
	if (c->json) {
		json_array_append_new(
		        jfeeds, json_pack("{s:s,s:s,s:I,s:I,s:I,s:b,s:o}", "origin", f->origin, "book",
		                          f->book, "records", (json_int_t)x.records, "checkpoints",
		                          (json_int_t)x.checkpoints, "problems", (json_int_t)x.problems,
		                          "ok", x.problems == 0, "details", x.jproblems));
	} else {
		printf("%-8s %s  %llu records, %llu checkpoints%s%s\n", x.problems ? "DAMAGED" : "ok",
		       f->origin, (unsigned long long)x.records, (unsigned long long)x.checkpoints,
		       f->book[0] ? ", book " : "", f->book);
		if (x.problems > FSCK_PROBLEMS_MAX)
			fprintf(stderr, "  ... and %zu more problems\n", x.problems - FSCK_PROBLEMS_MAX);
	}
	free(x.cps);
	return 0;
}

int cmd_fsck(int argc, char **argv)
{
	static const char *const allowed[] = {NULL};
	struct cli c = {.cmd = "fsck"};
	struct tl_feed *feeds = NULL;
	size_t n = 0, bad = 0, checked = 0;
	json_t *jfeeds = NULL;
	int rc;

	if ((rc = cli_parse(&c, argc, argv, allowed, NULL)) != 0)
		return rc;
	if ((rc = cli_open_store(&c, 0)) != 0)
		return rc;
	if ((rc = tl_store_feed_list(c.store, &feeds, &n)) != 0) {
		rc = cli_store_fail(&c, rc);
		goto out;
	}
	for (int i = 0; i < c.npos; i++) {
		size_t k = 0;
		while (k < n && strcmp(feeds[k].origin, c.pos[i]) != 0)
			k++;
		if (k == n) {
			rc = cli_usage(&c, "no feed %s in this data directory", c.pos[i]);
			goto out;
		}
	}
	jfeeds = c.json ? json_array() : NULL;
	for (size_t k = 0; k < n; k++) {
		int named = c.npos == 0;
		for (int i = 0; i < c.npos; i++)
			named |= strcmp(feeds[k].origin, c.pos[i]) == 0;
		if (!named)
			continue;
		checked++;
		fsck_feed(&c, &feeds[k], jfeeds, &bad);
	}
	if (c.json) {
		json_t *o = json_pack("{s:o,s:I,s:I}", "feeds", jfeeds, "checked", (json_int_t)checked,
		                      "damaged", (json_int_t)bad);
		jfeeds = NULL;
		char *s = json_dumps(o, JSON_INDENT(2));
		if (s)
			puts(s);
		free(s);
		json_decref(o);
	} else {
		printf("%zu feed%s checked, %zu damaged\n", checked, checked == 1 ? "" : "s", bad);
	}
	rc = bad ? EXIT_INVALID : EXIT_OK;
out:
	json_decref(jfeeds);
	free(feeds);
	cli_close(&c);
	return rc;
}
