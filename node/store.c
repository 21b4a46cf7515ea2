/*
 * store.c — the LMDB store. Layout and invariants: docs/storage.md.
 *
 * Every append is one write transaction, and LMDB's commit fsyncs before it
 * returns, so a record is acknowledged only once durable. Records live in one
 * table keyed by a global, increasing row number so that every record insert
 * is an MDB_APPEND (full pages); the per-feed position table carries each
 * record's leaf hash and the perfect-subtree hashes it completes, which makes
 * roots and proofs O(log n) lookups with no record read.
 */
#include "tl_node.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DEFAULT_MAPSIZE ((size_t)64 << 30)
/*
 * The leaf-hash index is a B-tree keyed by random hashes: inserting a batch
 * of 1024 into a large index dirties ~1024 pages (4 MiB per commit). New
 * leaves therefore go first to an append-only queue (row -> leaf, id, seq),
 * and are merged into the index, sorted, once the queue holds this many;
 * lookups consult the index, then scan the queue.
 */
#define LEAFQ_MERGE     65536
#define FEEDROW_VERSION 1

struct tl_store {
	MDB_env *env;
	MDB_dbi meta, books, feeds, feedids, records, pos, leaves, leafq, cps, peers, forks;
	unsigned flags;
	char dir[4096];
};

/* The detail of the last failure, per thread: the node calls the store from
 * its writer job and from witness requests on the thread pool at once, and
 * each reads the message on its own thread right after its failed call. */
static _Thread_local char errmsg[512];

/* ------------------------------------------------------------ helpers */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

TL_PRINTF(3, 4)
static int fail(struct tl_store *s, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	(void)s;
	vsnprintf(errmsg, sizeof errmsg, fmt, ap);
	va_end(ap);
	return err;
}

/* Translates an LMDB status at the module boundary. */
static int lmdb_err(struct tl_store *s, int rc, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return fail(s, TL_ENOTFOUND, "%s: not found", what);
	case MDB_KEYEXIST:
		return fail(s, TL_EEXIST, "%s: already exists", what);
	case MDB_MAP_FULL:
		return fail(s, TL_EFULL, "%s: store map is full (%s)", what, mdb_strerror(rc));
	case ENOSPC:
	case EDQUOT:
		return fail(s, TL_EFULL, "%s: disk full (%s); nothing of this batch was stored",
		            what, mdb_strerror(rc));
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		return fail(s, TL_ECORRUPT, "%s: store file is damaged (%s)", what,
		            mdb_strerror(rc));
	case MDB_VERSION_MISMATCH:
		return fail(s, TL_EVERSION, "%s: %s", what, mdb_strerror(rc));
	default:
		if (rc > 0)
			return fail(s, TL_EIO, "%s: %s", what, strerror(rc));
		return fail(s, TL_ESTORE, "%s: %s", what, mdb_strerror(rc));
	}
}

static int halt_get_txn(struct tl_store *s, MDB_txn *txn, const char *origin, uint64_t *others,
                        char *why, size_t cap);

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *tl_store_errmsg(struct tl_store *s)
{
	(void)s;
	return errmsg[0] ? errmsg : "no error";
}

/* ------------------------------------------------------ open / close */

int tl_store_open(struct tl_store **out, const char *dir, unsigned flags, size_t mapsize, char *err,
                  size_t errcap)
{
	struct tl_store *s = calloc(1, sizeof *s);
	MDB_txn *txn = NULL;
	int rc;

	*out = NULL;
	if (!s)
		return TL_ENOMEM;
	s->flags = flags;
	if (strlen(dir) >= sizeof s->dir) {
		free(s);
		return TL_EINVAL;
	}
	strcpy(s->dir, dir);
	if (!(flags & TL_STORE_RDONLY) && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = fail(s, TL_EIO, "cannot create store directory '%s': %s", dir,
		          strerror(errno));
		goto fail_early;
	}
	if ((rc = mdb_env_create(&s->env)) != 0) {
		rc = lmdb_err(s, rc, "mdb_env_create");
		goto fail_early;
	}
	mdb_env_set_maxdbs(s->env, 16);
	mdb_env_set_mapsize(s->env, mapsize ? mapsize : DEFAULT_MAPSIZE);
	mdb_env_set_maxreaders(s->env, 126);
	unsigned eflags = MDB_NOTLS | (flags & TL_STORE_RDONLY ? MDB_RDONLY : 0);
	rc = mdb_env_open(s->env, dir, eflags, 0600);
	if (rc != 0) {
		if (rc == ENOENT)
			rc = fail(s, TL_ENOTFOUND, "no store in '%s'", dir);
		else
			rc = lmdb_err(s, rc, "opening the store");
		goto fail;
	}

	rc = mdb_txn_begin(s->env, NULL, flags & TL_STORE_RDONLY ? MDB_RDONLY : 0, &txn);
	if (rc) {
		rc = lmdb_err(s, rc, "opening the store");
		goto fail;
	}
	unsigned cf = flags & TL_STORE_RDONLY ? 0 : MDB_CREATE;
	struct {
		const char *name;
		MDB_dbi *dbi;
	} dbs[] = {{"meta", &s->meta},       {"books", &s->books},     {"feeds", &s->feeds},
	           {"feedids", &s->feedids}, {"records", &s->records}, {"pos", &s->pos},
	           {"leaves", &s->leaves},   {"checkpoints", &s->cps}, {"leafq", &s->leafq},
	           {"peers", &s->peers},     {"forks", &s->forks}};
	for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
		rc = mdb_dbi_open(txn, dbs[i].name, cf, dbs[i].dbi);
		if (rc) {
			rc = rc == MDB_NOTFOUND
			             ? fail(s, TL_ECORRUPT, "store '%s' lacks table '%s'", dir,
			                    dbs[i].name)
			             : lmdb_err(s, rc, "opening tables");
			goto fail;
		}
	}

	/* The format version is written once and checked on every open. */
	MDB_val k = {6, "format"}, v;
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !(flags & TL_STORE_RDONLY)) {
		uint8_t buf[4];
		put_be32(buf, TL_STORE_FORMAT);
		v = (MDB_val){4, buf};
		if ((rc = mdb_put(txn, s->meta, &k, &v, 0)) != 0) {
			rc = lmdb_err(s, rc, "writing format version");
			goto fail;
		}
	} else if (rc) {
		rc = lmdb_err(s, rc, "reading format version");
		goto fail;
	} else if (v.mv_size != 4 || get_be32(v.mv_data) != TL_STORE_FORMAT) {
		rc = fail(s, TL_EVERSION, "store '%s' has format %u; this tally reads format %u",
		          dir, v.mv_size == 4 ? get_be32(v.mv_data) : 0, TL_STORE_FORMAT);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		rc = lmdb_err(s, rc, "opening the store");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(s->env);
fail_early:
	if (err && errcap)
		snprintf(err, errcap, "%s", errmsg);
	free(s);
	return rc;
}

void tl_store_close(struct tl_store *s)
{
	if (!s)
		return;
	mdb_env_close(s->env);
	free(s);
}

static int rtxn(struct tl_store *s, MDB_txn **txn)
{
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
	return rc ? lmdb_err(s, rc, "read transaction") : 0;
}

/* -------------------------------------------------------------- books */

int tl_book_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > TL_BOOK_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return name[0] != '.' && name[0] != '-';
}

int tl_store_book_add(struct tl_store *s, const struct tl_book *b)
{
	MDB_txn *txn;
	uint8_t row[TL_PUB_LEN + 8];
	int rc;

	if (!tl_book_name_valid(b->name))
		return fail(s, TL_EINVAL, "invalid book name '%s'", b->name);
	memcpy(row, b->pk, TL_PUB_LEN);
	put_be64(row + TL_PUB_LEN, b->created_ms ? b->created_ms : now_ms());
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_err(s, rc, "write transaction");
	MDB_val k = {strlen(b->name), (void *)b->name}, v = {sizeof row, row};
	rc = mdb_put(txn, s->books, &k, &v, MDB_NOOVERWRITE);
	if (rc) {
		mdb_txn_abort(txn);
		if (rc == MDB_KEYEXIST)
			return fail(s, TL_EEXIST, "book '%s' already exists", b->name);
		return lmdb_err(s, rc, "adding book");
	}
	rc = mdb_txn_commit(txn);
	return rc ? lmdb_err(s, rc, "adding book") : 0;
}

static int book_decode(struct tl_store *s, const MDB_val *k, const MDB_val *v, struct tl_book *b)
{
	if (k->mv_size == 0 || k->mv_size > TL_BOOK_NAME_MAX || v->mv_size != TL_PUB_LEN + 8)
		return fail(s, TL_ECORRUPT, "damaged book row");
	memset(b, 0, sizeof *b);
	memcpy(b->name, k->mv_data, k->mv_size);
	memcpy(b->pk, v->mv_data, TL_PUB_LEN);
	b->created_ms = get_be64((const uint8_t *)v->mv_data + TL_PUB_LEN);
	return 0;
}

int tl_store_book_get(struct tl_store *s, const char *name, struct tl_book *b)
{
	MDB_txn *txn;
	int rc;
	if (!tl_book_name_valid(name))
		return fail(s, TL_EINVAL, "invalid book name '%s'", name);
	if ((rc = rtxn(s, &txn)) != 0)
		return rc;
	MDB_val k = {strlen(name), (void *)name}, v;
	rc = mdb_get(txn, s->books, &k, &v);
	if (rc == MDB_NOTFOUND)
		rc = fail(s, TL_ENOTFOUND, "no book named '%s'", name);
	else if (rc)
		rc = lmdb_err(s, rc, "reading book");
	else
		rc = book_decode(s, &k, &v, b);
	mdb_txn_abort(txn);
	return rc;
}

/* Collects every row of a table through a decoder into a malloc'd array. */
typedef int (*row_fn)(struct tl_store *s, const MDB_val *k, const MDB_val *v, void *out);

static int list_table(struct tl_store *s, MDB_dbi dbi, size_t elem, row_fn dec, void **out,
                      size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t *arr = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = rtxn(s, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
		rc = lmdb_err(s, rc, "cursor");
		goto done;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			uint8_t *na = realloc(arr, cap * elem);
			if (!na) {
				rc = TL_ENOMEM;
				goto done;
			}
			arr = na;
		}
		if ((rc = dec(s, &k, &v, arr + cnt * elem)) != 0)
			goto done;
		cnt++;
	}
	rc = rc == MDB_NOTFOUND ? 0 : lmdb_err(s, rc, "listing");
done:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc) {
		free(arr);
		return rc;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

static int book_row(struct tl_store *s, const MDB_val *k, const MDB_val *v, void *out)
{
	return book_decode(s, k, v, out);
}

int tl_store_book_list(struct tl_store *s, struct tl_book **out, size_t *n)
{
	void *arr;
	int rc = list_table(s, s->books, sizeof **out, book_row, &arr, n);
	*out = arr;
	return rc;
}

/* -------------------------------------------------------------- feeds */

/*
 * Feed row: version(1) flags(4) id(8) size(8) last_leaf(32) peer(32)
 * created_ms(8) book_len(1) book label_len(1) label. Big-endian integers.
 */
#define FEEDROW_FIXED (1 + 4 + 8 + 8 + 32 + 32 + 8)

static size_t feed_encode(const struct tl_feed *f, uint8_t *row)
{
	uint8_t *p = row;
	size_t bl = strlen(f->book), ll = strlen(f->label);
	*p++ = FEEDROW_VERSION;
	put_be32(p, f->flags);
	p += 4;
	put_be64(p, f->id);
	p += 8;
	put_be64(p, f->head.size);
	p += 8;
	memcpy(p, f->head.last_leaf, 32);
	p += 32;
	memcpy(p, f->peer, 32);
	p += 32;
	put_be64(p, f->created_ms);
	p += 8;
	*p++ = (uint8_t)bl;
	memcpy(p, f->book, bl);
	p += bl;
	*p++ = (uint8_t)ll;
	memcpy(p, f->label, ll);
	p += ll;
	return (size_t)(p - row);
}

static int feed_decode(struct tl_store *s, const MDB_val *k, const MDB_val *v, struct tl_feed *f)
{
	const uint8_t *p = v->mv_data, *end = p + v->mv_size;
	memset(f, 0, sizeof *f);
	if (k->mv_size != TL_ORIGIN_LEN || v->mv_size < FEEDROW_FIXED + 2 ||
	    p[0] != FEEDROW_VERSION)
		goto bad;
	memcpy(f->origin, k->mv_data, TL_ORIGIN_LEN);
	if (tl_origin_parse(&f->o, f->origin, TL_ORIGIN_LEN) != 0)
		goto bad;
	p++;
	f->flags = get_be32(p);
	p += 4;
	f->id = get_be64(p);
	p += 8;
	f->head.size = get_be64(p);
	p += 8;
	memcpy(f->head.last_leaf, p, 32);
	p += 32;
	memcpy(f->peer, p, 32);
	p += 32;
	f->created_ms = get_be64(p);
	p += 8;
	size_t bl = *p++;
	if (bl > TL_BOOK_NAME_MAX || (size_t)(end - p) < bl + 1)
		goto bad;
	memcpy(f->book, p, bl);
	p += bl;
	size_t ll = *p++;
	if (ll > TL_LABEL_MAX || (size_t)(end - p) != ll)
		goto bad;
	memcpy(f->label, p, ll);
	return 0;
bad:
	return fail(s, TL_ECORRUPT, "damaged feed row for '%.*s'", (int)k->mv_size,
	            (const char *)k->mv_data);
}

static int feed_get_txn(struct tl_store *s, MDB_txn *txn, const char *origin, struct tl_feed *f)
{
	char key[TL_ORIGIN_LEN]; /* origin may point into *f, which decode clears */
	size_t ol = strlen(origin);
	if (ol != TL_ORIGIN_LEN)
		return fail(s, TL_ENOTFOUND, "'%s' is not a feed origin", origin);
	memcpy(key, origin, ol);
	MDB_val k = {ol, key}, v;
	int rc = mdb_get(txn, s->feeds, &k, &v);
	if (rc == MDB_NOTFOUND)
		return fail(s, TL_ENOTFOUND, "no feed with origin %s in this store", origin);
	if (rc)
		return lmdb_err(s, rc, "reading feed");
	return feed_decode(s, &k, &v, f);
}

static int feed_put_txn(struct tl_store *s, MDB_txn *txn, const struct tl_feed *f)
{
	uint8_t row[FEEDROW_FIXED + 2 + TL_BOOK_NAME_MAX + TL_LABEL_MAX];
	MDB_val k = {TL_ORIGIN_LEN, (void *)f->origin}, v = {feed_encode(f, row), row};
	int rc = mdb_put(txn, s->feeds, &k, &v, 0);
	return rc ? lmdb_err(s, rc, "writing feed") : 0;
}

int tl_store_feed_add(struct tl_store *s, struct tl_feed *f)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc;

	if (strlen(f->origin) != TL_ORIGIN_LEN ||
	    tl_origin_parse(&f->o, f->origin, TL_ORIGIN_LEN) != 0)
		return fail(s, TL_EINVAL, "invalid origin '%s'", f->origin);
	if (strlen(f->label) > TL_LABEL_MAX || strlen(f->book) > TL_BOOK_NAME_MAX)
		return fail(s, TL_EINVAL, "label or book name too long");
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_err(s, rc, "write transaction");
	k = (MDB_val){TL_ORIGIN_LEN, f->origin};
	rc = mdb_get(txn, s->feeds, &k, &v);
	if (rc == 0) {
		rc = fail(s, TL_EEXIST, "feed %s already exists", f->origin);
		goto fail;
	}
	/* Feed ids are dense and never reused: last id + 1. */
	if ((rc = mdb_cursor_open(txn, s->feedids, &cur)) != 0) {
		rc = lmdb_err(s, rc, "cursor");
		goto fail;
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8)
		f->id = get_be64(k.mv_data) + 1;
	else if (rc == MDB_NOTFOUND)
		f->id = 1;
	else {
		rc = rc ? lmdb_err(s, rc, "feed ids") : fail(s, TL_ECORRUPT, "damaged feed id");
		goto fail;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	memset(&f->head, 0, sizeof f->head);
	if (!f->created_ms)
		f->created_ms = now_ms();
	uint8_t idk[8];
	put_be64(idk, f->id);
	k = (MDB_val){8, idk};
	v = (MDB_val){TL_ORIGIN_LEN, f->origin};
	if ((rc = mdb_put(txn, s->feedids, &k, &v, MDB_APPEND)) != 0) {
		rc = lmdb_err(s, rc, "feed ids");
		goto fail;
	}
	if ((rc = feed_put_txn(s, txn, f)) != 0)
		goto fail;
	rc = mdb_txn_commit(txn);
	return rc ? lmdb_err(s, rc, "adding feed") : 0;
fail:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc;
}

int tl_store_feed_get(struct tl_store *s, const char *origin, struct tl_feed *f)
{
	MDB_txn *txn;
	int rc = rtxn(s, &txn);
	if (rc)
		return rc;
	rc = feed_get_txn(s, txn, origin, f);
	mdb_txn_abort(txn);
	return rc;
}

static int feed_row(struct tl_store *s, const MDB_val *k, const MDB_val *v, void *out)
{
	return feed_decode(s, k, v, out);
}

int tl_store_feed_list(struct tl_store *s, struct tl_feed **out, size_t *n)
{
	void *arr;
	int rc = list_table(s, s->feeds, sizeof **out, feed_row, &arr, n);
	*out = arr;
	return rc;
}

/* ------------------------------------------------- positions and Merkle */

/*
 * pos row for (feed id, seq): record row(8) || leaf(32) || hashes of the
 * perfect subtrees of levels 1..k ending at this leaf, k = ctz(seq + 1).
 */
struct pos_view {
	uint64_t row;
	const uint8_t *leaf;
	const uint8_t *levels; /* level l at levels + (l - 1) * 32 */
	unsigned nlevels;
};

static unsigned ctz64(uint64_t x)
{
	return x ? (unsigned)__builtin_ctzll(x) : 64;
}

static int pos_get(struct tl_store *s, MDB_txn *txn, const struct tl_feed *f, uint64_t seq,
                   struct pos_view *pv)
{
	uint8_t key[16];
	put_be64(key, f->id);
	put_be64(key + 8, seq);
	MDB_val k = {16, key}, v;
	int rc = mdb_get(txn, s->pos, &k, &v);
	if (rc == MDB_NOTFOUND)
		return fail(s, TL_ECORRUPT, "feed %s: seq %llu: position missing from the store",
		            f->origin, (unsigned long long)seq);
	if (rc)
		return lmdb_err(s, rc, "reading position");
	unsigned k_levels = ctz64(seq + 1);
	if (v.mv_size != 8 + 32 + (size_t)k_levels * 32)
		return fail(s, TL_ECORRUPT, "feed %s: seq %llu: damaged position row", f->origin,
		            (unsigned long long)seq);
	pv->row = get_be64(v.mv_data);
	pv->leaf = (const uint8_t *)v.mv_data + 8;
	pv->levels = pv->leaf + 32;
	pv->nlevels = k_levels;
	return 0;
}

struct src_ctx {
	struct tl_store *s;
	MDB_txn *txn;
	const struct tl_feed *f;
};

static int src_get(void *ctx, unsigned level, uint64_t index, uint8_t out[TL_HASH_LEN])
{
	struct src_ctx *c = ctx;
	struct pos_view pv;
	if (level >= 64 || index >= (c->f->head.size >> level))
		return fail(c->s, TL_ERANGE, "subtree beyond the feed size");
	uint64_t end = ((index + 1) << level) - 1;
	int rc = pos_get(c->s, c->txn, c->f, end, &pv);
	if (rc)
		return rc;
	if (level == 0)
		memcpy(out, pv.leaf, TL_HASH_LEN);
	else
		memcpy(out, pv.levels + (size_t)(level - 1) * 32, TL_HASH_LEN);
	return 0;
}

/* Reads the feed fresh inside txn so that the size matches what is there. */
static int merkle_begin(struct tl_store *s, const struct tl_feed *in, MDB_txn **txn,
                        struct tl_feed *f, struct src_ctx *c, struct tl_merkle_src *src)
{
	int rc = rtxn(s, txn);
	if (rc)
		return rc;
	if ((rc = feed_get_txn(s, *txn, in->origin, f)) != 0) {
		mdb_txn_abort(*txn);
		return rc;
	}
	*c = (struct src_ctx){s, *txn, f};
	*src = (struct tl_merkle_src){src_get, c};
	return 0;
}

int tl_store_frontier(struct tl_store *s, const struct tl_feed *in, struct tl_merkle_acc *acc)
{
	MDB_txn *txn;
	struct tl_feed f;
	struct src_ctx c;
	struct tl_merkle_src src;
	int rc = merkle_begin(s, in, &txn, &f, &c, &src);
	if (rc)
		return rc;
	rc = tl_merkle_acc_load(acc, &src, f.head.size);
	mdb_txn_abort(txn);
	return rc;
}

int tl_store_root(struct tl_store *s, const struct tl_feed *in, uint64_t size,
                  uint8_t root[TL_HASH_LEN])
{
	MDB_txn *txn;
	struct tl_feed f;
	struct src_ctx c;
	struct tl_merkle_src src;
	int rc = merkle_begin(s, in, &txn, &f, &c, &src);
	if (rc)
		return rc;
	if (size > f.head.size)
		rc = fail(s, TL_ERANGE, "feed %s has %llu entries, not %llu", f.origin,
		          (unsigned long long)f.head.size, (unsigned long long)size);
	else
		rc = tl_merkle_root(&src, size, root);
	mdb_txn_abort(txn);
	return rc;
}

int tl_store_inclusion(struct tl_store *s, const struct tl_feed *in, uint64_t seq, uint64_t size,
                       uint8_t (*proof)[TL_HASH_LEN], size_t cap, size_t *n)
{
	MDB_txn *txn;
	struct tl_feed f;
	struct src_ctx c;
	struct tl_merkle_src src;
	int rc = merkle_begin(s, in, &txn, &f, &c, &src);
	if (rc)
		return rc;
	if (size > f.head.size || seq >= size)
		rc = fail(s, TL_ERANGE,
		          "feed %s: no seq %llu in a tree of size %llu (feed has %llu)", f.origin,
		          (unsigned long long)seq, (unsigned long long)size,
		          (unsigned long long)f.head.size);
	else
		rc = tl_merkle_inclusion_proof(&src, seq, size, proof, cap, n);
	mdb_txn_abort(txn);
	return rc;
}

int tl_store_consistency(struct tl_store *s, const struct tl_feed *in, uint64_t old_size,
                         uint64_t new_size, uint8_t (*proof)[TL_HASH_LEN], size_t cap, size_t *n)
{
	MDB_txn *txn;
	struct tl_feed f;
	struct src_ctx c;
	struct tl_merkle_src src;
	int rc = merkle_begin(s, in, &txn, &f, &c, &src);
	if (rc)
		return rc;
	if (new_size > f.head.size || old_size > new_size || old_size == 0)
		rc = fail(s, TL_ERANGE,
		          "feed %s: no consistency proof from %llu to %llu (feed has %llu)",
		          f.origin, (unsigned long long)old_size, (unsigned long long)new_size,
		          (unsigned long long)f.head.size);
	else
		rc = tl_merkle_consistency_proof(&src, old_size, new_size, proof, cap, n);
	mdb_txn_abort(txn);
	return rc;
}

/* ------------------------------------------------------------- append */

static int meta_add(struct tl_store *s, MDB_txn *txn, const char *key, uint64_t delta)
{
	MDB_val k = {strlen(key), (void *)key}, v;
	uint64_t cur = 0;
	uint8_t buf[8];
	int rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		cur = get_be64(v.mv_data);
	else if (rc && rc != MDB_NOTFOUND)
		return lmdb_err(s, rc, "meta");
	put_be64(buf, cur + delta);
	v = (MDB_val){8, buf};
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	return rc ? lmdb_err(s, rc, "meta") : 0;
}

/* Last key of a table, or 0 bytes if empty. */
static int last_key(struct tl_store *s, MDB_txn *txn, MDB_dbi dbi, uint8_t *out, size_t len,
                    int *empty)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return lmdb_err(s, rc, "cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	mdb_cursor_close(cur);
	*empty = rc == MDB_NOTFOUND;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return lmdb_err(s, rc, "cursor");
	if (k.mv_size != len)
		return fail(s, TL_ECORRUPT, "damaged key in store");
	memcpy(out, k.mv_data, len);
	return 0;
}

struct qleaf {
	uint8_t leaf[32];
	uint8_t where[16];
};

static int qleaf_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* Moves the queued leaves into the index, in key order, when the queue is
 * long enough (or always, with force). Part of the caller's transaction. */
static int leafq_merge(struct tl_store *s, MDB_txn *txn, int force)
{
	MDB_stat st;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	struct qleaf *q = NULL;
	size_t n = 0;
	int rc = mdb_stat(txn, s->leafq, &st);
	if (rc)
		return lmdb_err(s, rc, "leaf queue");
	if (st.ms_entries == 0 || (!force && st.ms_entries < LEAFQ_MERGE))
		return 0;
	q = malloc(st.ms_entries * sizeof *q);
	if (!q)
		return fail(s, TL_ENOMEM, "merging the leaf index: out of memory");
	if ((rc = mdb_cursor_open(txn, s->leafq, &cur)) != 0) {
		rc = lmdb_err(s, rc, "leaf queue");
		goto done;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < st.ms_entries;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (v.mv_size != sizeof *q) {
			rc = fail(s, TL_ECORRUPT, "damaged leaf queue row");
			goto done;
		}
		memcpy(&q[n++], v.mv_data, sizeof *q);
	}
	if (rc != MDB_NOTFOUND && rc != 0) {
		rc = lmdb_err(s, rc, "leaf queue");
		goto done;
	}
	qsort(q, n, sizeof *q, qleaf_cmp);
	for (size_t i = 0; i < n; i++) {
		k = (MDB_val){32, q[i].leaf};
		v = (MDB_val){16, q[i].where};
		/* Distinct (origin, seq) give distinct records and so distinct
		 * leaves; an existing key can only be this very row again. */
		rc = mdb_put(txn, s->leaves, &k, &v, MDB_NOOVERWRITE);
		if (rc && rc != MDB_KEYEXIST) {
			rc = lmdb_err(s, rc, "merging the leaf index");
			goto done;
		}
	}
	rc = mdb_drop(txn, s->leafq, 0);
	rc = rc ? lmdb_err(s, rc, "emptying the leaf queue") : 0;
done:
	if (cur)
		mdb_cursor_close(cur);
	free(q);
	return rc;
}

int tl_store_append(struct tl_store *s, const char *origin, const struct tl_rec *recs, size_t n,
                    unsigned flags, size_t *bad, struct tl_feed *after)
{
	return tl_store_append_cp(s, origin, recs, n, flags, bad, after, NULL, 0);
}

int tl_store_append_cp(struct tl_store *s, const char *origin, const struct tl_rec *recs, size_t n,
                       unsigned flags, size_t *bad, struct tl_feed *after, const char *note,
                       size_t note_len)
{
	MDB_txn *txn = NULL;
	struct tl_feed f;
	struct tl_merkle_acc acc;
	struct src_ctx c;
	struct tl_merkle_src src;
	uint8_t lastrow[8], lastpos[16], key[16];
	uint8_t val[8 + 32 + 64 * 32];
	uint64_t row, bytes = 0;
	int rc, empty, pos_append;
	size_t i = 0;

	if (bad)
		*bad = 0;
	if (s->flags & TL_STORE_RDONLY)
		return fail(s, TL_EINVAL, "store opened read-only");
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_err(s, rc, "write transaction");
	if ((rc = feed_get_txn(s, txn, origin, &f)) != 0)
		goto fail;
	if ((f.flags & TL_FEED_HALTED) && n > 0 && !(flags & TL_APPEND_RESTORE)) {
		uint64_t others = 0;
		char why[TL_HALT_WHY_MAX + 1] = "";
		(void)halt_get_txn(s, txn, f.origin, &others, why, sizeof why);
		rc = fail(s, TL_EFORK,
		          "feed %s is halted: %s (others hold %llu entries, this store has %llu); "
		          "appending could fork it. See `tally forks` and docs/operations.md, "
		          "\"Restored nodes\"",
		          f.origin, why[0] ? why : "a later state of it exists elsewhere",
		          (unsigned long long)others, (unsigned long long)f.head.size);
		goto fail;
	}
	c = (struct src_ctx){s, txn, &f};
	src = (struct tl_merkle_src){src_get, &c};
	if ((rc = tl_merkle_acc_load(&acc, &src, f.head.size)) != 0)
		goto fail;
	if ((rc = last_key(s, txn, s->records, lastrow, 8, &empty)) != 0)
		goto fail;
	row = empty ? 1 : get_be64(lastrow) + 1;
	/* Position keys of this batch are increasing; if they also sort after
	 * every key in the table, MDB_APPEND keeps the pages full. */
	if ((rc = last_key(s, txn, s->pos, lastpos, 16, &empty)) != 0)
		goto fail;
	put_be64(key, f.id);
	put_be64(key + 8, f.head.size);
	pos_append = empty || memcmp(lastpos, key, 16) < 0;

	for (i = 0; i < n; i++) {
		struct tl_entry e;
		size_t where = 0;
		uint8_t leaf[32];
		unsigned ncomp = 0;
		uint64_t seq = f.head.size;

		rc = tl_record_decode(&e, recs[i].data, recs[i].len, &where);
		if (rc) {
			rc = fail(s, rc, "feed %s: seq %llu: record is malformed at byte %zu: %s",
			          origin, (unsigned long long)seq, where, tl_strerror(rc));
			goto fail;
		}
		if ((rc = tl_feed_check_next(&f.head, &f.o, &e)) != 0) {
			rc = fail(s, rc,
			          "feed %s: record claims seq %llu but the feed expects seq %llu "
			          "with the previous leaf hash (or it names another origin)",
			          origin, (unsigned long long)e.seq, (unsigned long long)seq);
			goto fail;
		}
		if ((flags & TL_APPEND_VERIFY) && (rc = tl_record_verify_sig(&e)) != 0) {
			rc = fail(s, rc, "feed %s: seq %llu: signature does not verify", origin,
			          (unsigned long long)seq);
			goto fail;
		}
		tl_record_leaf_hash(leaf, recs[i].data, recs[i].len);
		put_be64(val, row);
		memcpy(val + 8, leaf, 32);
		tl_merkle_acc_push(&acc, leaf, (uint8_t(*)[32])(val + 40), &ncomp);

		uint8_t rowk[8];
		put_be64(rowk, row);
		MDB_val k = {8, rowk}, v = {recs[i].len, (void *)recs[i].data};
		if ((rc = mdb_put(txn, s->records, &k, &v, MDB_APPEND)) != 0) {
			rc = lmdb_err(s, rc, "storing record");
			goto fail;
		}
		put_be64(key + 8, seq);
		k = (MDB_val){16, key};
		v = (MDB_val){40 + (size_t)ncomp * 32, val};
		if ((rc = mdb_put(txn, s->pos, &k, &v, pos_append ? MDB_APPEND : 0)) != 0) {
			rc = lmdb_err(s, rc, "storing position");
			goto fail;
		}
		uint8_t q[32 + 16];
		memcpy(q, leaf, 32);
		put_be64(q + 32, f.id);
		put_be64(q + 40, seq);
		k = (MDB_val){8, rowk};
		v = (MDB_val){sizeof q, q};
		if ((rc = mdb_put(txn, s->leafq, &k, &v, MDB_APPEND)) != 0) {
			rc = lmdb_err(s, rc, "queueing leaf index");
			goto fail;
		}
		tl_feed_advance(&f.head, leaf);
		row++;
		bytes += recs[i].len;
	}
	if ((rc = feed_put_txn(s, txn, &f)) != 0 || (rc = meta_add(s, txn, "records", n)) != 0 ||
	    (rc = meta_add(s, txn, "record_bytes", bytes)) != 0 ||
	    (rc = leafq_merge(s, txn, 0)) != 0)
		goto fail;
	if (note) {
		uint8_t ck[16];
		put_be64(ck, f.id);
		put_be64(ck + 8, f.head.size);
		MDB_val k = {16, ck}, v = {note_len, (void *)note};
		if (note_len == 0 || note_len > TL_NOTE_MAX) {
			rc = fail(s, TL_ETOOBIG, "checkpoint note too large");
			goto fail;
		}
		if ((rc = mdb_put(txn, s->cps, &k, &v, 0)) != 0) {
			rc = lmdb_err(s, rc, "storing checkpoint");
			goto fail;
		}
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc) {
		rc = lmdb_err(s, rc, "committing appends");
		goto fail;
	}
	if (after)
		*after = f;
	return 0;
fail:
	if (txn)
		mdb_txn_abort(txn);
	if (bad)
		*bad = i;
	return rc;
}

/* --------------------------------------------------------------- reads */

static int record_get(struct tl_store *s, MDB_txn *txn, const struct tl_feed *f, uint64_t seq,
                      MDB_val *rec, const uint8_t **leaf)
{
	struct pos_view pv;
	uint8_t rowk[8], h[32];
	int rc;

	if (seq >= f->head.size)
		return fail(s, TL_ERANGE, "feed %s has %llu entries; there is no seq %llu",
		            f->origin, (unsigned long long)f->head.size, (unsigned long long)seq);
	if ((rc = pos_get(s, txn, f, seq, &pv)) != 0)
		return rc;
	put_be64(rowk, pv.row);
	MDB_val k = {8, rowk};
	rc = mdb_get(txn, s->records, &k, rec);
	if (rc == MDB_NOTFOUND)
		return fail(s, TL_ECORRUPT, "feed %s: seq %llu: record missing from the store",
		            f->origin, (unsigned long long)seq);
	if (rc)
		return lmdb_err(s, rc, "reading record");
	tl_record_leaf_hash(h, rec->mv_data, rec->mv_size);
	if (memcmp(h, pv.leaf, 32) != 0)
		return fail(s, TL_ECORRUPT,
		            "feed %s: seq %llu: stored record does not match its leaf hash "
		            "(the store is damaged)",
		            f->origin, (unsigned long long)seq);
	*leaf = pv.leaf;
	return 0;
}

int tl_store_record(struct tl_store *s, const struct tl_feed *in, uint64_t seq, struct tl_buf *out)
{
	MDB_txn *txn;
	struct tl_feed f;
	MDB_val rec;
	const uint8_t *leaf;
	int rc = rtxn(s, &txn);
	if (rc)
		return rc;
	if ((rc = feed_get_txn(s, txn, in->origin, &f)) == 0 &&
	    (rc = record_get(s, txn, &f, seq, &rec, &leaf)) == 0) {
		tl_buf_reset(out);
		rc = tl_buf_add(out, rec.mv_data, rec.mv_size);
	}
	mdb_txn_abort(txn);
	return rc;
}

int tl_store_leaf(struct tl_store *s, const struct tl_feed *in, uint64_t seq,
                  uint8_t leaf[TL_HASH_LEN])
{
	MDB_txn *txn;
	struct tl_feed f;
	struct pos_view pv;
	int rc = rtxn(s, &txn);
	if (rc)
		return rc;
	if ((rc = feed_get_txn(s, txn, in->origin, &f)) == 0) {
		if (seq >= f.head.size)
			rc = fail(s, TL_ERANGE, "feed %s has no seq %llu", f.origin,
			          (unsigned long long)seq);
		else if ((rc = pos_get(s, txn, &f, seq, &pv)) == 0)
			memcpy(leaf, pv.leaf, 32);
	}
	mdb_txn_abort(txn);
	return rc;
}

/* Linear scan of the not yet merged leaves; v points at (id, seq). */
static int leafq_find(struct tl_store *s, MDB_txn *txn, const uint8_t leaf[TL_HASH_LEN],
                      MDB_val *out)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, s->leafq, &cur);
	if (rc)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (v.mv_size == 48 && memcmp(v.mv_data, leaf, 32) == 0) {
			*out = (MDB_val){16, (uint8_t *)v.mv_data + 32};
			break;
		}
	}
	mdb_cursor_close(cur);
	return rc;
}

int tl_store_find_leaf(struct tl_store *s, const uint8_t leaf[TL_HASH_LEN], char *origin,
                       uint64_t *seq)
{
	MDB_txn *txn;
	int rc = rtxn(s, &txn);
	if (rc)
		return rc;
	MDB_val k = {32, (void *)leaf}, v;
	rc = mdb_get(txn, s->leaves, &k, &v);
	if (rc == MDB_NOTFOUND)
		rc = leafq_find(s, txn, leaf, &v);
	if (rc == MDB_NOTFOUND) {
		rc = fail(s, TL_ENOTFOUND, "no entry with that leaf hash");
	} else if (rc) {
		rc = lmdb_err(s, rc, "leaf index");
	} else if (v.mv_size != 16) {
		rc = fail(s, TL_ECORRUPT, "damaged leaf index row");
	} else {
		uint8_t idk[8];
		memcpy(idk, v.mv_data, 8);
		*seq = get_be64((const uint8_t *)v.mv_data + 8);
		MDB_val ik = {8, idk}, ov;
		rc = mdb_get(txn, s->feedids, &ik, &ov);
		if (rc || ov.mv_size != TL_ORIGIN_LEN)
			rc = fail(s, TL_ECORRUPT, "leaf index names an unknown feed");
		else {
			memcpy(origin, ov.mv_data, TL_ORIGIN_LEN);
			origin[TL_ORIGIN_LEN] = 0;
		}
	}
	mdb_txn_abort(txn);
	return rc;
}

int tl_store_scan(struct tl_store *s, const struct tl_feed *in, uint64_t from, uint64_t to,
                  tl_scan_fn cb, void *ctx)
{
	MDB_txn *txn;
	struct tl_feed f;
	int rc = rtxn(s, &txn);
	if (rc)
		return rc;
	if ((rc = feed_get_txn(s, txn, in->origin, &f)) != 0)
		goto done;
	if (to > f.head.size)
		to = f.head.size;
	for (uint64_t seq = from; seq < to; seq++) {
		MDB_val rec;
		const uint8_t *leaf;
		if ((rc = record_get(s, txn, &f, seq, &rec, &leaf)) != 0)
			break;
		if ((rc = cb(ctx, seq, rec.mv_data, rec.mv_size, leaf)) != 0)
			break;
	}
done:
	mdb_txn_abort(txn);
	return rc;
}

/* --------------------------------------------------------- checkpoints */

int tl_store_checkpoint_put(struct tl_store *s, const struct tl_feed *f, uint64_t size,
                            const char *note, size_t len)
{
	MDB_txn *txn;
	uint8_t key[16];
	int rc;
	if (len == 0 || len > TL_NOTE_MAX)
		return fail(s, TL_ETOOBIG, "checkpoint note too large");
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_err(s, rc, "write transaction");
	put_be64(key, f->id);
	put_be64(key + 8, size);
	MDB_val k = {16, key}, v = {len, (void *)note};
	if ((rc = mdb_put(txn, s->cps, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_err(s, rc, "storing checkpoint");
	}
	rc = mdb_txn_commit(txn);
	return rc ? lmdb_err(s, rc, "storing checkpoint") : 0;
}

int tl_store_checkpoint_get(struct tl_store *s, const struct tl_feed *f, uint64_t size,
                            struct tl_buf *out, uint64_t *got_size)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	uint8_t key[16];
	MDB_val k, v;
	int rc = rtxn(s, &txn);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->cps, &cur)) != 0) {
		rc = lmdb_err(s, rc, "cursor");
		goto done;
	}
	put_be64(key, f->id);
	put_be64(key + 8, size);
	k = (MDB_val){16, key};
	if (size != UINT64_MAX) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	} else {
		/* The latest: position after this feed's range and step back. */
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
		else if (rc == MDB_NOTFOUND)
			rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
		if (rc == 0 && (k.mv_size != 16 || get_be64(k.mv_data) != f->id))
			rc = MDB_NOTFOUND;
	}
	if (rc == MDB_NOTFOUND) {
		rc = fail(s, TL_ENOTFOUND, "feed %s: no stored checkpoint", f->origin);
		goto done;
	}
	if (rc) {
		rc = lmdb_err(s, rc, "reading checkpoint");
		goto done;
	}
	if (got_size)
		*got_size = get_be64((const uint8_t *)k.mv_data + 8);
	tl_buf_reset(out);
	rc = tl_buf_add(out, v.mv_data, v.mv_size);
done:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc;
}

int tl_store_checkpoint_scan(struct tl_store *s, const struct tl_feed *f, tl_cp_fn cb, void *ctx)
{
	return tl_store_checkpoint_scan_from(s, f, 0, cb, ctx);
}

int tl_store_checkpoint_scan_from(struct tl_store *s, const struct tl_feed *f, uint64_t from,
                                  tl_cp_fn cb, void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	uint8_t key[16];
	MDB_val k, v;
	int rc = rtxn(s, &txn);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->cps, &cur)) != 0) {
		rc = lmdb_err(s, rc, "cursor");
		goto done;
	}
	put_be64(key, f->id);
	put_be64(key + 8, from);
	k = (MDB_val){16, key};
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 16 || get_be64(k.mv_data) != f->id)
			break;
		if ((rc = cb(ctx, get_be64((const uint8_t *)k.mv_data + 8), v.mv_data,
		             v.mv_size)) != 0)
			goto done;
	}
	rc = (rc == 0 || rc == MDB_NOTFOUND) ? 0 : lmdb_err(s, rc, "scanning checkpoints");
done:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc;
}

/* --------------------------------------------------------------- stats */

int tl_store_stats(struct tl_store *s, struct tl_store_stats *st)
{
	MDB_envinfo info;
	MDB_stat ms;
	MDB_txn *txn;
	char path[4200];
	struct stat sb;
	int rc;

	memset(st, 0, sizeof *st);
	snprintf(path, sizeof path, "%s/data.mdb", s->dir);
	if (stat(path, &sb) == 0)
		st->file_bytes = (uint64_t)sb.st_size;
	mdb_env_info(s->env, &info);
	mdb_env_stat(s->env, &ms);
	st->used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	if ((rc = rtxn(s, &txn)) != 0)
		return rc;
	MDB_val k = {7, "records"}, v;
	if (mdb_get(txn, s->meta, &k, &v) == 0 && v.mv_size == 8)
		st->records = get_be64(v.mv_data);
	k = (MDB_val){12, "record_bytes"};
	if (mdb_get(txn, s->meta, &k, &v) == 0 && v.mv_size == 8)
		st->record_bytes = get_be64(v.mv_data);
	mdb_txn_abort(txn);
	return 0;
}

/* --------------------------------------------------------------- peers */

/* peers: remote book key (32) || local book name -> "host:port" */
int tl_store_peer_put(struct tl_store *s, const struct tl_peer *p)
{
	MDB_txn *txn;
	uint8_t key[32 + TL_BOOK_NAME_MAX];
	size_t bl = strlen(p->book), al = strlen(p->addr);
	int rc;
	if (!tl_book_name_valid(p->book) || al == 0 || al > TL_ADDR_MAX)
		return fail(s, TL_EINVAL, "invalid peer entry");
	memcpy(key, p->pk, 32);
	memcpy(key + 32, p->book, bl);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_err(s, rc, "write transaction");
	MDB_val k = {32 + bl, key}, v = {al, (void *)p->addr};
	if ((rc = mdb_put(txn, s->peers, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		return lmdb_err(s, rc, "storing peer");
	}
	rc = mdb_txn_commit(txn);
	return rc ? lmdb_err(s, rc, "storing peer") : 0;
}

static int peer_row(struct tl_store *s, const MDB_val *k, const MDB_val *v, void *out)
{
	struct tl_peer *p = out;
	memset(p, 0, sizeof *p);
	if (k->mv_size <= 32 || k->mv_size > 32 + TL_BOOK_NAME_MAX || v->mv_size == 0 ||
	    v->mv_size > TL_ADDR_MAX)
		return fail(s, TL_ECORRUPT, "damaged peer row");
	memcpy(p->pk, k->mv_data, 32);
	memcpy(p->book, (const uint8_t *)k->mv_data + 32, k->mv_size - 32);
	memcpy(p->addr, v->mv_data, v->mv_size);
	return 0;
}

int tl_store_peer_list(struct tl_store *s, struct tl_peer **out, size_t *n)
{
	void *arr;
	int rc = list_table(s, s->peers, sizeof **out, peer_row, &arr, n);
	*out = arr;
	return rc;
}

/* --------------------------------------------------------------- forks */

/* One row of fork evidence, key feed id (8) || at (8) [|| tag], value the
 * concatenation of parts, and the feed marked forked: one write transaction. */
struct fork_part {
	const void *p;
	size_t len;
};

static int fork_row_put(struct tl_store *s, const struct tl_feed *f, uint64_t at, uint8_t tag,
                        const struct fork_part *parts, size_t np)
{
	MDB_txn *txn;
	MDB_val k, v;
	uint8_t key[17];
	struct tl_feed cur;
	int rc;
	v.mv_size = 0;
	for (size_t i = 0; i < np; i++)
		v.mv_size += parts[i].len;
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_err(s, rc, "write transaction");
	put_be64(key, f->id);
	put_be64(key + 8, at);
	key[16] = tag;
	k = (MDB_val){tag ? 17 : 16, key};
	if ((rc = mdb_put(txn, s->forks, &k, &v, MDB_RESERVE)) != 0) {
		rc = lmdb_err(s, rc, "storing fork evidence");
		goto fail;
	}
	uint8_t *w = v.mv_data;
	for (size_t i = 0; i < np; i++)
		if (parts[i].len) {
			memcpy(w, parts[i].p, parts[i].len);
			w += parts[i].len;
		}
	if ((rc = feed_get_txn(s, txn, f->origin, &cur)) != 0)
		goto fail;
	cur.flags |= TL_FEED_FORKED;
	if ((rc = feed_put_txn(s, txn, &cur)) != 0)
		goto fail;
	rc = mdb_txn_commit(txn);
	return rc ? lmdb_err(s, rc, "storing fork evidence") : 0;
fail:
	mdb_txn_abort(txn);
	return rc;
}

/*
 * forks: feed id (8) || seq (8) -> len_a (4) || record a || record b. Two
 * records signed by one key for one (origin, seq): the equivocation proof.
 */
int tl_store_fork_put(struct tl_store *s, const struct tl_feed *f, uint64_t seq, const uint8_t *a,
                      size_t alen, const uint8_t *b, size_t blen)
{
	uint8_t la[4];
	if (alen > TL_RECORD_MAX || blen > TL_RECORD_MAX)
		return fail(s, TL_ETOOBIG, "fork evidence too large");
	put_be32(la, (uint32_t)alen);
	const struct fork_part parts[] = {{la, 4}, {a, alen}, {b, blen}};
	return fork_row_put(s, f, seq, 0, parts, 3);
}

/*
 * Checkpoint-level evidence: feed id (8) || size (8) || 'c' -> len_a u32 ||
 * note a || note b. Two checkpoint notes validly signed by the origin's key
 * for one size with different roots. The 17-byte key keeps these apart from
 * the record proofs (16 bytes) in the same table.
 */
int tl_store_fork_cp_put(struct tl_store *s, const struct tl_feed *f, uint64_t size, const char *a,
                         size_t alen, const char *b, size_t blen)
{
	uint8_t la[4];
	if (alen == 0 || blen == 0 || alen > TL_NOTE_MAX || blen > TL_NOTE_MAX)
		return fail(s, TL_ETOOBIG, "fork evidence too large");
	put_be32(la, (uint32_t)alen);
	const struct fork_part parts[] = {{la, 4}, {a, alen}, {b, blen}};
	return fork_row_put(s, f, size, 'c', parts, 3);
}

/* ... || 'x' -> len_a u32 || note a || len_b u32 || note b || extra
 * (TL_FORK_CONSISTENCY: the root at size and the consistency proof). */
int tl_store_fork_cpx_put(struct tl_store *s, const struct tl_feed *f, uint64_t size,
                          const char *a, size_t alen, const char *b, size_t blen,
                          const uint8_t *extra, size_t elen)
{
	uint8_t la[4], lb[4];
	if (alen == 0 || blen == 0 || alen > TL_NOTE_MAX || blen > TL_NOTE_MAX ||
	    elen > 32 * (TL_MERKLE_MAX_PROOF + 1))
		return fail(s, TL_ETOOBIG, "fork evidence too large");
	put_be32(la, (uint32_t)alen);
	put_be32(lb, (uint32_t)blen);
	const struct fork_part parts[] = {{la, 4}, {a, alen}, {lb, 4}, {b, blen}, {extra, elen}};
	return fork_row_put(s, f, size, 'x', parts, 5);
}

int tl_store_fork_scan(struct tl_store *s, tl_fork_fn cb, void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint64_t n = 0;
	int rc = rtxn(s, &txn);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, s->forks, &cur)) != 0) {
		rc = lmdb_err(s, rc, "cursor");
		goto done;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct tl_fork fk;
		const uint8_t *kp = k.mv_data, *vp = v.mv_data;
		uint8_t idk[8];
		MDB_val ik, iv;
		memset(&fk, 0, sizeof fk);
		if ((k.mv_size != 16 && !(k.mv_size == 17 && (kp[16] == 'c' || kp[16] == 'x'))) ||
		    v.mv_size < 4 || get_be32(vp) > v.mv_size - 4) {
			rc = fail(s, TL_ECORRUPT, "damaged row in the forks table");
			goto done;
		}
		memcpy(idk, kp, 8);
		ik = (MDB_val){8, idk};
		if ((rc = mdb_get(txn, s->feedids, &ik, &iv)) != 0 || iv.mv_size != TL_ORIGIN_LEN) {
			rc = rc ? lmdb_err(s, rc, "fork evidence names an unknown feed")
			        : fail(s, TL_ECORRUPT, "damaged feed id row");
			goto done;
		}
		memcpy(fk.origin, iv.mv_data, TL_ORIGIN_LEN);
		fk.index = ++n;
		fk.type = k.mv_size == 16 ? TL_FORK_RECORDS
		          : kp[16] == 'c' ? TL_FORK_CHECKPOINTS
		                          : TL_FORK_CONSISTENCY;
		fk.at = get_be64(kp + 8);
		fk.alen = get_be32(vp);
		fk.a = vp + 4;
		fk.b = vp + 4 + fk.alen;
		fk.blen = v.mv_size - 4 - fk.alen;
		if (fk.type == TL_FORK_CONSISTENCY) {
			size_t rest = v.mv_size - 4 - fk.alen;
			if (rest < 4 || get_be32(fk.b) > rest - 4) {
				rc = fail(s, TL_ECORRUPT, "damaged row in the forks table");
				goto done;
			}
			fk.blen = get_be32(fk.b);
			fk.b += 4;
			fk.extra = fk.b + fk.blen;
			fk.elen = rest - 4 - fk.blen;
		}
		if ((rc = cb(ctx, &fk)) != 0)
			goto done;
	}
	rc = rc == MDB_NOTFOUND ? 0 : lmdb_err(s, rc, "scanning forks");
done:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc;
}

/* ------------------------------------------------------ halted feeds */

/* meta "halt/<origin>" -> others' size u64 || reason (UTF-8, no NUL). */
static void halt_key(char *out, const char *origin)
{
	memcpy(out, "halt/", 5);
	memcpy(out + 5, origin, TL_ORIGIN_LEN);
}

int tl_store_halt_set(struct tl_store *s, const char *origin, uint64_t others_size, const char *why)
{
	MDB_txn *txn;
	struct tl_feed f;
	char key[5 + TL_ORIGIN_LEN];
	uint8_t val[8 + TL_HALT_WHY_MAX];
	size_t wl = why ? strlen(why) : 0;
	int rc;
	if (wl > TL_HALT_WHY_MAX)
		wl = TL_HALT_WHY_MAX;
	if (s->flags & TL_STORE_RDONLY)
		return fail(s, TL_EINVAL, "store opened read-only");
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_err(s, rc, "write transaction");
	if ((rc = feed_get_txn(s, txn, origin, &f)) != 0)
		goto fail;
	halt_key(key, f.origin);
	put_be64(val, others_size);
	memcpy(val + 8, why, wl);
	MDB_val k = {sizeof key, key}, v = {8 + wl, val};
	if ((rc = mdb_put(txn, s->meta, &k, &v, 0)) != 0) {
		rc = lmdb_err(s, rc, "storing halt");
		goto fail;
	}
	f.flags |= TL_FEED_HALTED;
	if ((rc = feed_put_txn(s, txn, &f)) != 0)
		goto fail;
	rc = mdb_txn_commit(txn);
	return rc ? lmdb_err(s, rc, "storing halt") : 0;
fail:
	mdb_txn_abort(txn);
	return rc;
}

static int halt_get_txn(struct tl_store *s, MDB_txn *txn, const char *origin, uint64_t *others,
                        char *why, size_t cap)
{
	char key[5 + TL_ORIGIN_LEN];
	if (strlen(origin) != TL_ORIGIN_LEN)
		return fail(s, TL_ENOTFOUND, "'%s' is not a feed origin", origin);
	halt_key(key, origin);
	MDB_val k = {sizeof key, key}, v;
	int rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return fail(s, TL_ENOTFOUND, "feed %s is not halted", origin);
	if (rc)
		return lmdb_err(s, rc, "reading halt");
	if (v.mv_size < 8 || v.mv_size > 8 + TL_HALT_WHY_MAX)
		return fail(s, TL_ECORRUPT, "damaged halt row for %s", origin);
	if (others)
		*others = get_be64(v.mv_data);
	if (why && cap) {
		size_t l = v.mv_size - 8 < cap - 1 ? v.mv_size - 8 : cap - 1;
		memcpy(why, (const uint8_t *)v.mv_data + 8, l);
		why[l] = 0;
	}
	return 0;
}

int tl_store_halt_get(struct tl_store *s, const char *origin, uint64_t *others_size, char *why,
                      size_t cap)
{
	MDB_txn *txn;
	int rc = rtxn(s, &txn);
	if (rc)
		return rc;
	rc = halt_get_txn(s, txn, origin, others_size, why, cap);
	mdb_txn_abort(txn);
	return rc;
}

int tl_store_halt_clear(struct tl_store *s, const char *origin)
{
	MDB_txn *txn;
	struct tl_feed f;
	char key[5 + TL_ORIGIN_LEN];
	int rc;
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_err(s, rc, "write transaction");
	if ((rc = feed_get_txn(s, txn, origin, &f)) != 0)
		goto fail;
	halt_key(key, f.origin);
	MDB_val k = {sizeof key, key};
	rc = mdb_del(txn, s->meta, &k, NULL);
	if (rc && rc != MDB_NOTFOUND) {
		rc = lmdb_err(s, rc, "clearing halt");
		goto fail;
	}
	f.flags &= ~TL_FEED_HALTED;
	if ((rc = feed_put_txn(s, txn, &f)) != 0)
		goto fail;
	rc = mdb_txn_commit(txn);
	return rc ? lmdb_err(s, rc, "clearing halt") : 0;
fail:
	mdb_txn_abort(txn);
	return rc;
}

/* ------------------------------------------------ cosignature merging */

/* Time of a cosignature line (type 0x04 blob: time u64 || signature), or
 * UINT64_MAX for any other signature line. */
static uint64_t sig_time(const struct tl_note_sig *g)
{
	if (g->bloblen != 8 + 64)
		return UINT64_MAX;
	return get_be64(g->blob);
}

static int same_key(const struct tl_note_sig *a, const struct tl_note_sig *b)
{
	return memcmp(a->id, b->id, 4) == 0 && strcmp(a->name, b->name) == 0;
}

/*
 * The union of the signature lines of two notes over the same text: every
 * distinct non-cosignature line, and per cosigning key the earliest and the
 * latest cosignature (witnessed time is the earliest; "nothing more by D"
 * needs the latest), at most TL_NOTE_MAX_SIGS lines, the stored ones first.
 */
static int merge_lines(const struct tl_note *old, const struct tl_note *add, struct tl_buf *out,
                       size_t *added)
{
	const struct tl_note_sig *pick[TL_NOTE_MAX_SIGS];
	size_t np = 0;
	*added = 0;
	for (int pass = 0; pass < 2; pass++) {
		const struct tl_note *n = pass ? add : old;
		for (size_t i = 0; n && i < n->nsigs; i++) {
			const struct tl_note_sig *g = &n->sigs[i];
			uint64_t t = sig_time(g);
			size_t lo = SIZE_MAX, hi = SIZE_MAX, dup = 0;
			for (size_t j = 0; j < np; j++) {
				if (pick[j]->linelen == g->linelen &&
				    memcmp(pick[j]->line, g->line, g->linelen) == 0)
					dup = 1;
				if (t != UINT64_MAX && same_key(pick[j], g) &&
				    sig_time(pick[j]) != UINT64_MAX) {
					if (lo == SIZE_MAX ||
					    sig_time(pick[j]) < sig_time(pick[lo]))
						lo = j;
					if (hi == SIZE_MAX ||
					    sig_time(pick[j]) >= sig_time(pick[hi]))
						hi = j;
				}
			}
			if (dup)
				continue;
			if (t != UINT64_MAX && lo != SIZE_MAX && lo != hi) {
				/* Two of this key already: g replaces one if it widens the span. */
				size_t r = t < sig_time(pick[lo])   ? lo
				           : t > sig_time(pick[hi]) ? hi
				                                    : SIZE_MAX;
				if (r == SIZE_MAX)
					continue;
				pick[r] = g;
				if (pass)
					(*added)++;
				continue;
			}
			if (np == TL_NOTE_MAX_SIGS)
				continue;
			pick[np++] = g;
			if (pass)
				(*added)++;
		}
	}
	for (size_t j = 0; j < np; j++) {
		int rc;
		if ((rc = tl_buf_add(out, pick[j]->line, pick[j]->linelen)) != 0 ||
		    (rc = tl_buf_addc(out, '\n')) != 0)
			return rc;
	}
	return 0;
}

int tl_store_checkpoint_merge(struct tl_store *s, const struct tl_feed *f, uint64_t size,
                              const char *note, size_t len, size_t *added, struct tl_buf *stored)
{
	MDB_txn *txn = NULL;
	struct tl_note nn, on;
	struct tl_buf out;
	uint8_t key[16];
	int rc, have_old = 0;
	size_t add = 0;

	memset(&on, 0, sizeof on);
	if (added)
		*added = 0;
	if (s->flags & TL_STORE_RDONLY)
		return fail(s, TL_EINVAL, "store opened read-only");
	if ((rc = tl_note_parse(&nn, note, len)) != 0)
		return fail(s, rc, "feed %s: checkpoint %llu to merge is not a signed note",
		            f->origin, (unsigned long long)size);
	tl_buf_init(&out, TL_NOTE_MAX);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		rc = lmdb_err(s, rc, "write transaction");
		goto done;
	}
	put_be64(key, f->id);
	put_be64(key + 8, size);
	MDB_val k = {16, key}, v;
	rc = mdb_get(txn, s->cps, &k, &v);
	if (rc == 0) {
		if ((rc = tl_note_parse(&on, v.mv_data, v.mv_size)) != 0) {
			rc = fail(s, TL_ECORRUPT, "feed %s: stored checkpoint %llu is damaged",
			          f->origin, (unsigned long long)size);
			goto done;
		}
		have_old = 1;
		if (on.text_len != nn.text_len || memcmp(on.raw, nn.raw, nn.text_len) != 0) {
			if (stored) {
				tl_buf_reset(stored);
				rc = tl_buf_add(stored, v.mv_data, v.mv_size);
				if (rc)
					goto done;
			}
			rc = fail(
			        s, TL_EFORK,
			        "feed %s: two different checkpoints of size %llu (different roots)",
			        f->origin, (unsigned long long)size);
			goto done;
		}
	} else if (rc != MDB_NOTFOUND) {
		rc = lmdb_err(s, rc, "reading checkpoint");
		goto done;
	}
	if ((rc = tl_buf_add(&out, nn.raw, nn.text_len)) != 0 ||
	    (rc = tl_buf_addc(&out, '\n')) != 0 ||
	    (rc = merge_lines(have_old ? &on : NULL, &nn, &out, &add)) != 0) {
		rc = fail(s, rc, "feed %s: merged checkpoint %llu too large", f->origin,
		          (unsigned long long)size);
		goto done;
	}
	if (have_old && add == 0) {
		rc = 0; /* nothing new: no write */
		goto done;
	}
	v = (MDB_val){out.len, out.data};
	if ((rc = mdb_put(txn, s->cps, &k, &v, 0)) != 0) {
		rc = lmdb_err(s, rc, "storing checkpoint");
		goto done;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc)
		rc = lmdb_err(s, rc, "storing checkpoint");
	else if (added)
		*added = add;
done:
	if (txn)
		mdb_txn_abort(txn);
	tl_note_release(&nn);
	tl_note_release(&on);
	tl_buf_release(&out);
	return rc;
}
