/*
 * witness.c — the Tally witness (docs/witness.md): its LMDB state and the
 * C2SP tlog-witness v1.0.0 HTTP server run by `tallyd --witness`.
 *
 * Request path of POST /add-checkpoint: an HTTP thread (libmicrohttpd's
 * pool) parses the body, reads the origin's registered keys, verifies the
 * log's signature and makes the cosignature (all independent of the
 * per-origin state), then suspends the connection and queues a job for the
 * single writer thread. The writer takes every queued job, decides each in
 * queue order inside one LMDB write transaction (old size against the
 * stored size, the consistency proof against the stored root, then the
 * update), commits once (one fsync), and only then publishes the results
 * and resumes the connections. So the check and the update of one origin are
 * atomic (LMDB has one writer; the decisions read the transaction's own
 * writes), and nothing is answered 200 before it is durable.
 */
#include "witness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tl_daemon.h"

#define WSTORE_FORMAT   1
#define WSTORE_MAPSIZE  ((size_t)16 << 30)
#define STATE_HDR       (8 + TL_HASH_LEN + 8) /* size, root, time; then the note */
#define REC_KEY_LEN     (16 + 8)              /* H(origin)[0:16] || size */
#define REC_VAL_LEN     (TL_HASH_LEN + 8 + 8 + 8)
#define QUEUE_MAX       8192 /* jobs waiting for the writer before 503 */
#define CONN_TIMEOUT_S  60

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

static void origin_hash(uint8_t out[16], const char *origin, size_t len)
{
	uint8_t h[TL_HASH_LEN];
	tl_sha256(h, origin, len);
	memcpy(out, h, 16);
}

int tl_witness_origin_valid(const char *origin, size_t len)
{
	if (!origin || len == 0 || len > TL_ORIGIN_TEXT_MAX)
		return TL_EFORMAT;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)origin[i] < 0x20 || origin[i] == 0x7f)
			return TL_EFORMAT;
	return tl_utf8_valid((const uint8_t *)origin, len) ? 0 : TL_EFORMAT;
}

/* ---------------------------------------------------------- the store */

struct tl_wstore {
	MDB_env *env;
	MDB_dbi meta, logs, state, cosigned;
};

/* The detail of the last failure, per thread: HTTP threads and the writer
 * use the store at once (as node/store.c). */
static _Thread_local char werrmsg[512];

TL_PRINTF(3, 4)
static int sfail(struct tl_wstore *s, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	(void)s;
	vsnprintf(werrmsg, sizeof werrmsg, fmt, ap);
	va_end(ap);
	return err;
}

/* An LMDB status as a TL_E code (no message). */
static int lmdb_code(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return TL_ENOTFOUND;
	case MDB_KEYEXIST:
		return TL_EEXIST;
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT:
		return TL_EFULL;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		return TL_ECORRUPT;
	case MDB_VERSION_MISMATCH:
		return TL_EVERSION;
	default:
		return rc > 0 ? TL_EIO : TL_ESTORE;
	}
}

static int slmdb(struct tl_wstore *s, int rc, const char *what)
{
	if (rc == 0)
		return 0;
	return sfail(s, lmdb_code(rc), "%s: %s", what, mdb_strerror(rc));
}

const char *tl_wstore_errmsg(struct tl_wstore *s)
{
	(void)s;
	return werrmsg[0] ? werrmsg : "no error";
}

int tl_wstore_open(struct tl_wstore **out, const char *home, int create, char *err,
                   size_t errcap)
{
	struct tl_wstore *s = calloc(1, sizeof *s);
	char dir[4200];
	MDB_txn *txn = NULL;
	int rc, dead;

	*out = NULL;
	if (!s)
		return TL_ENOMEM;
	snprintf(dir, sizeof dir, "%s/witness.lmdb", home);
	if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errcap, "cannot create %s: %s", dir, strerror(errno));
		free(s);
		return TL_EIO;
	}
	if ((rc = mdb_env_create(&s->env)) != 0) {
		snprintf(err, errcap, "mdb_env_create: %s", mdb_strerror(rc));
		free(s);
		return lmdb_code(rc);
	}
	mdb_env_set_maxdbs(s->env, 8);
	mdb_env_set_mapsize(s->env, WSTORE_MAPSIZE);
	mdb_env_set_maxreaders(s->env, 126);
	rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600);
	if (rc) {
		if (rc == ENOENT)
			snprintf(err, errcap,
			         "no witness in '%s' (run 'tally witness init --name NAME' first)",
			         home);
		else
			snprintf(err, errcap, "cannot open %s: %s", dir, mdb_strerror(rc));
		rc = rc == ENOENT ? TL_ENOTFOUND : lmdb_code(rc);
		goto fail;
	}
	mdb_reader_check(s->env, &dead); /* slots of crashed processes */
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		snprintf(err, errcap, "cannot open %s: %s", dir, mdb_strerror(rc));
		rc = lmdb_code(rc);
		goto fail;
	}
	struct {
		const char *name;
		MDB_dbi *dbi;
	} dbs[] = {{"meta", &s->meta},
	           {"logs", &s->logs},
	           {"state", &s->state},
	           {"cosigned", &s->cosigned}};
	for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++)
		if ((rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi)) != 0) {
			snprintf(err, errcap, "%s: table %s: %s", dir, dbs[i].name,
			         mdb_strerror(rc));
			rc = lmdb_code(rc);
			goto fail;
		}
	MDB_val k = {6, "format"}, v;
	uint8_t fv[8];
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		put_be64(fv, WSTORE_FORMAT);
		v = (MDB_val){8, fv};
		rc = mdb_put(txn, s->meta, &k, &v, 0);
	} else if (rc == 0 && (v.mv_size != 8 || get_be64(v.mv_data) != WSTORE_FORMAT)) {
		snprintf(err, errcap, "%s: unsupported witness store format", dir);
		rc = TL_EVERSION;
		goto fail;
	}
	if (rc || (rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		snprintf(err, errcap, "%s: %s", dir, mdb_strerror(rc));
		rc = lmdb_code(rc);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(s->env);
	free(s);
	return rc;
}

void tl_wstore_close(struct tl_wstore *s)
{
	if (!s)
		return;
	mdb_env_close(s->env);
	free(s);
}

/* Registered keys of origin: newline-separated vkey texts. */
static int logs_read(MDB_txn *txn, MDB_dbi dbi, const char *origin, struct tl_vkey *vk,
                     size_t *n)
{
	MDB_val k = {strlen(origin), (void *)origin}, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	*n = 0;
	if (rc)
		return lmdb_code(rc);
	const char *p = v.mv_data, *end = p + v.mv_size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (*n == TL_WITNESS_VKEYS_MAX || tl_vkey_parse(&vk[*n], p, ll) != 0)
			return TL_ECORRUPT;
		(*n)++;
		p += ll + (nl ? 1 : 0);
	}
	return 0;
}

struct wstate {
	uint64_t size, time;
	uint8_t root[TL_HASH_LEN];
	const char *note; /* in LMDB memory: valid until the transaction ends */
	size_t note_len;
};

static int state_read(MDB_txn *txn, MDB_dbi dbi, const char *origin, struct wstate *st)
{
	MDB_val k = {strlen(origin), (void *)origin}, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc)
		return lmdb_code(rc);
	if (v.mv_size < STATE_HDR)
		return TL_ECORRUPT;
	const uint8_t *p = v.mv_data;
	st->size = get_be64(p);
	memcpy(st->root, p + 8, TL_HASH_LEN);
	st->time = get_be64(p + 8 + TL_HASH_LEN);
	st->note = (const char *)p + STATE_HDR;
	st->note_len = v.mv_size - STATE_HDR;
	return 0;
}

int tl_wstore_allow(struct tl_wstore *s, const char *origin, const struct tl_vkey *vk)
{
	struct tl_vkey have[TL_WITNESS_VKEYS_MAX];
	size_t n = 0;
	MDB_txn *txn = NULL;
	struct tl_buf b;
	int rc;

	if (tl_witness_origin_valid(origin, strlen(origin)) != 0)
		return sfail(s, TL_EFORMAT, "origin '%s' is not valid", origin);
	if (vk->type != TL_SIGTYPE_ED25519)
		return sfail(s, TL_EINVAL, "a log key must be an Ed25519 (type 0x01) vkey");
	tl_buf_init(&b, TL_WITNESS_VKEYS_MAX * (TL_WITNESS_VKEY_TEXT + 1));
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		rc = slmdb(s, rc, "starting a write");
		goto out;
	}
	rc = logs_read(txn, s->logs, origin, have, &n);
	if (rc && rc != TL_ENOTFOUND) {
		rc = sfail(s, rc, "the keys of '%s' are damaged in the store", origin);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (have[i].type == vk->type && memcmp(have[i].pk, vk->pk, TL_PUB_LEN) == 0 &&
		    strcmp(have[i].name, vk->name) == 0) {
			rc = sfail(s, TL_EEXIST, "this key is already registered for '%s'", origin);
			goto out;
		}
	if (n == TL_WITNESS_VKEYS_MAX) {
		rc = sfail(s, TL_ETOOBIG, "'%s' already has %d keys", origin, TL_WITNESS_VKEYS_MAX);
		goto out;
	}
	have[n++] = *vk;
	for (size_t i = 0; i < n; i++)
		if ((rc = tl_vkey_format(&have[i], &b)) != 0 ||
		    (i + 1 < n && (rc = tl_buf_addc(&b, '\n')) != 0)) {
			rc = sfail(s, rc, "cannot format a vkey");
			goto out;
		}
	MDB_val k = {strlen(origin), (void *)origin}, v = {b.len, b.data};
	if ((rc = mdb_put(txn, s->logs, &k, &v, 0)) != 0) {
		rc = slmdb(s, rc, "registering the log");
		goto out;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	rc = slmdb(s, rc, "committing");
out:
	if (txn)
		mdb_txn_abort(txn);
	tl_buf_release(&b);
	return rc;
}

int tl_wstore_deny(struct tl_wstore *s, const char *origin)
{
	MDB_txn *txn = NULL;
	int rc;
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return slmdb(s, rc, "starting a write");
	MDB_val k = {strlen(origin), (void *)origin};
	rc = mdb_del(txn, s->logs, &k, NULL);
	if (rc) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND)
			return sfail(s, TL_ENOTFOUND, "'%s' is not registered", origin);
		return slmdb(s, rc, "removing the log");
	}
	return slmdb(s, mdb_txn_commit(txn), "committing");
}

static int wlog_fill(struct tl_wstore *s, MDB_txn *txn, const char *origin, struct tl_wlog *l)
{
	struct wstate st;
	memset(l, 0, sizeof *l);
	snprintf(l->origin, sizeof l->origin, "%s", origin);
	int rc = logs_read(txn, s->logs, origin, l->vkeys, &l->nvkeys);
	if (rc == 0)
		l->allowed = 1;
	else if (rc != TL_ENOTFOUND)
		return sfail(s, rc, "the keys of '%s' are damaged in the store", origin);
	rc = state_read(txn, s->state, origin, &st);
	if (rc == 0) {
		l->has_state = 1;
		l->size = st.size;
		l->time = st.time;
		memcpy(l->root, st.root, TL_HASH_LEN);
	} else if (rc != TL_ENOTFOUND) {
		return sfail(s, rc, "the state of '%s' is damaged in the store", origin);
	}
	if (!l->allowed && !l->has_state)
		return sfail(s, TL_ENOTFOUND, "'%s' is not registered", origin);
	return 0;
}

int tl_wstore_get(struct tl_wstore *s, const char *origin, struct tl_wlog *out)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return slmdb(s, rc, "starting a read");
	rc = wlog_fill(s, txn, origin, out);
	mdb_txn_abort(txn);
	return rc;
}

static int cmp_wlog(const void *a, const void *b)
{
	return strcmp(((const struct tl_wlog *)a)->origin, ((const struct tl_wlog *)b)->origin);
}

/* Origins that are keys of dbi, added to names (deduplicated later). */
static int collect_keys(MDB_txn *txn, MDB_dbi dbi, char (**names)[TL_ORIGIN_TEXT_MAX + 1],
                        size_t *n, size_t *cap)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return lmdb_code(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size == 0 || k.mv_size > TL_ORIGIN_TEXT_MAX)
			continue;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			void *p = realloc(*names, nc * sizeof **names);
			if (!p) {
				mdb_cursor_close(cur);
				return TL_ENOMEM;
			}
			*names = p;
			*cap = nc;
		}
		memcpy((*names)[*n], k.mv_data, k.mv_size);
		(*names)[*n][k.mv_size] = 0;
		(*n)++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : lmdb_code(rc);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

int tl_wstore_list(struct tl_wstore *s, struct tl_wlog **out, size_t *n)
{
	char (*names)[TL_ORIGIN_TEXT_MAX + 1] = NULL;
	size_t nn = 0, cap = 0;
	MDB_txn *txn;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return slmdb(s, rc, "starting a read");
	if ((rc = collect_keys(txn, s->logs, &names, &nn, &cap)) != 0 ||
	    (rc = collect_keys(txn, s->state, &names, &nn, &cap)) != 0) {
		rc = sfail(s, rc, "listing the logs: %s", tl_strerror(rc));
		goto out;
	}
	if (nn)
		qsort(names, nn, sizeof *names, cmp_name);
	struct tl_wlog *ls = calloc(nn ? nn : 1, sizeof *ls);
	if (!ls) {
		rc = sfail(s, TL_ENOMEM, "out of memory");
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < nn; i++) {
		if (i && strcmp(names[i], names[i - 1]) == 0)
			continue;
		if ((rc = wlog_fill(s, txn, names[i], &ls[k])) != 0) {
			free(ls);
			goto out;
		}
		k++;
	}
	qsort(ls, k, sizeof *ls, cmp_wlog);
	*out = ls;
	*n = k;
out:
	mdb_txn_abort(txn);
	free(names);
	return rc;
}

int tl_wstore_latest(struct tl_wstore *s, const char *origin, struct tl_buf *out)
{
	struct wstate st;
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return slmdb(s, rc, "starting a read");
	rc = state_read(txn, s->state, origin, &st);
	if (rc == 0)
		rc = tl_buf_add(out, st.note, st.note_len);
	else if (rc == TL_ENOTFOUND)
		sfail(s, rc, "nothing cosigned for '%s'", origin);
	else
		sfail(s, rc, "the state of '%s' is damaged in the store", origin);
	mdb_txn_abort(txn);
	return rc;
}

struct hname {
	uint8_t h[16];
	char origin[TL_ORIGIN_TEXT_MAX + 1];
};

static int cmp_hname(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

static int cmp_wrecord(const void *a, const void *b)
{
	const struct tl_wrecord *x = a, *y = b;
	int c = strcmp(x->origin, y->origin);
	return c ? c : x->size < y->size ? -1 : x->size > y->size;
}

int tl_wstore_records(struct tl_wstore *s, const char *origin, struct tl_wrecord **out,
                      size_t *n)
{
	char (*names)[TL_ORIGIN_TEXT_MAX + 1] = NULL;
	struct hname *hn = NULL;
	struct tl_wrecord *rs = NULL;
	size_t nn = 0, cap = 0, nr = 0, rcap = 0;
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t want[16];
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return slmdb(s, rc, "starting a read");
	/* Record keys carry a hash of the origin; the state table names them. */
	if ((rc = collect_keys(txn, s->state, &names, &nn, &cap)) != 0) {
		rc = sfail(s, rc, "reading the state: %s", tl_strerror(rc));
		goto out;
	}
	hn = calloc(nn ? nn : 1, sizeof *hn);
	if (!hn) {
		rc = sfail(s, TL_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nn; i++) {
		origin_hash(hn[i].h, names[i], strlen(names[i]));
		memcpy(hn[i].origin, names[i], sizeof hn[i].origin);
	}
	qsort(hn, nn, sizeof *hn, cmp_hname);
	if (origin)
		origin_hash(want, origin, strlen(origin));
	if ((rc = mdb_cursor_open(txn, s->cosigned, &cur)) != 0) {
		rc = slmdb(s, rc, "reading the record");
		goto out;
	}
	k = (MDB_val){16, want};
	rc = origin ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
	            : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != REC_KEY_LEN || v.mv_size != REC_VAL_LEN) {
			rc = sfail(s, TL_ECORRUPT, "a record of the witness is damaged");
			goto out;
		}
		if (origin && memcmp(k.mv_data, want, 16) != 0)
			break;
		struct hname *h = bsearch(k.mv_data, hn, nn, sizeof *hn, cmp_hname);
		if (nr == rcap) {
			size_t nc = rcap ? rcap * 2 : 64;
			void *p = realloc(rs, nc * sizeof *rs);
			if (!p) {
				rc = sfail(s, TL_ENOMEM, "out of memory");
				goto out;
			}
			rs = p;
			rcap = nc;
		}
		struct tl_wrecord *r = &rs[nr++];
		const uint8_t *kv = k.mv_data, *vv = v.mv_data;
		snprintf(r->origin, sizeof r->origin, "%s",
		         h ? h->origin : origin ? origin : "(unknown origin)");
		r->size = get_be64(kv + 16);
		memcpy(r->root, vv, TL_HASH_LEN);
		r->first_time = get_be64(vv + TL_HASH_LEN);
		r->last_time = get_be64(vv + TL_HASH_LEN + 8);
		r->count = get_be64(vv + TL_HASH_LEN + 16);
	}
	if (rc == MDB_NOTFOUND || rc == 0) {
		rc = 0;
		if (!origin && nr > 1) /* keys are ordered by origin hash */
			qsort(rs, nr, sizeof *rs, cmp_wrecord);
		*out = rs;
		*n = nr;
		rs = NULL;
	} else {
		rc = slmdb(s, rc, "reading the record");
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	free(names);
	free(hn);
	free(rs);
	return rc;
}

/* ----------------------------------------------------------- logging */

static int g_wlog_level = 2; /* set once at start, before any thread */

TL_PRINTF(2, 3)
static void wlog(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	if (level > g_wlog_level)
		return;
	struct timespec ts;
	struct tm tm;
	char when[32], line[1200];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	int k = snprintf(line, sizeof line, "%s.%03ldZ tallyd %s: ", when, ts.tv_nsec / 1000000,
	                 names[level]);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + k, sizeof line - (size_t)k, fmt, ap);
	va_end(ap);
	/* One write per line: several threads log. */
	fprintf(stderr, "%s\n", line);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	wlog(3, "http: %s", msg);
}

/* ------------------------------------------------------------ server */

enum job_status { J_PENDING = 0, J_DONE = 1 };

struct job {
	struct job *next;
	struct MHD_Connection *conn;
	char origin[TL_ORIGIN_TEXT_MAX + 1];
	uint64_t old, size, time;
	uint8_t root[TL_HASH_LEN];
	uint8_t proof[TL_WITNESS_PROOF_MAX][TL_HASH_LEN];
	size_t nproof;
	struct tl_buf note; /* text, the log's verified lines, our cosignature */
	/* results, written by the writer before done is set */
	unsigned http;
	uint64_t conflict;
	char why[320];
	atomic_int done;
};

struct witness {
	struct tl_witness_config cfg;
	struct tl_wstore *st;
	struct tl_keypair *kp; /* sodium_malloc */
	char name[TL_NAME_MAX + 1];
	char vkey[TL_WITNESS_VKEY_TEXT + 1];
	struct MHD_Daemon *mhd;
	int lsock;
	/* writer queue */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	size_t queued;
	int closing;
	pthread_t writer;
	/* queued requests not yet answered (their response not yet sent) */
	atomic_int inflight;
	/* counters for /status */
	atomic_ullong n_ok, n_400, n_403, n_404, n_409, n_422, n_5xx, n_batches;
};

struct req {
	int add; /* enum route (below) */
	struct tl_buf body;
	int too_big;
	struct job *job;
	int queued;
};

static uint64_t witness_now(const struct witness *w)
{
	int64_t t = (int64_t)time(NULL) + w->cfg.clock_offset;
	return t < 0 ? 0 : (uint64_t)t;
}

static void count_status(struct witness *w, unsigned code)
{
	switch (code) {
	case 200: atomic_fetch_add(&w->n_ok, 1); break;
	case 400: atomic_fetch_add(&w->n_400, 1); break;
	case 403: atomic_fetch_add(&w->n_403, 1); break;
	case 404: atomic_fetch_add(&w->n_404, 1); break;
	case 409: atomic_fetch_add(&w->n_409, 1); break;
	case 422: atomic_fetch_add(&w->n_422, 1); break;
	default:
		if (code >= 500)
			atomic_fetch_add(&w->n_5xx, 1);
	}
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned code, const char *ctype,
                               const void *data, size_t len, const char *allow)
{
	struct MHD_Response *r =
	        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

TL_PRINTF(4, 5)
static enum MHD_Result respond_text(struct witness *w, struct MHD_Connection *conn, unsigned code,
                                    const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(msg, sizeof msg - 1, fmt, ap);
	va_end(ap);
	if (k < 0)
		k = 0;
	if ((size_t)k > sizeof msg - 2)
		k = (int)sizeof msg - 2;
	msg[k++] = '\n';
	msg[k] = 0;
	if (w)
		count_status(w, code);
	return respond(conn, code, "text/plain; charset=utf-8", msg, (size_t)k, NULL);
}

/* An add-checkpoint body into rq, note and cp (witness.h). */
const char *tl_witness_parse_request(const char *b, size_t len, struct tl_witness_request *rq,
                                     struct tl_note *note, struct tl_checkpoint *cp, char *why,
                                     size_t whycap)
{
	const char *p = b, *end = b + len, *nl;
	size_t got;
	int rc;

	memset(rq, 0, sizeof *rq);
	memset(note, 0, sizeof *note);
	nl = len ? memchr(p, '\n', len) : NULL; /* an empty body may have no buffer */
	if (!nl || (size_t)(nl - p) < 5 || memcmp(p, "old ", 4) != 0 ||
	    tl_parse_u64(p + 4, (size_t)(nl - p) - 4, &rq->old) != 0)
		return "the first line must be 'old <size>' (decimal, no leading zeros) ending in a "
		       "newline";
	p = nl + 1;
	for (;;) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return "no empty line between the consistency proof and the checkpoint";
		if (nl == p)
			break;
		if (rq->nproof == TL_WITNESS_PROOF_MAX)
			return "more than 63 consistency proof lines";
		if (tl_b64_decode(rq->proof[rq->nproof], TL_HASH_LEN, &got, p, (size_t)(nl - p)) !=
		            0 ||
		    got != TL_HASH_LEN) {
			snprintf(why, whycap,
			         "consistency proof line %zu is not the base64 of a 32-byte hash",
			         rq->nproof + 1);
			return why;
		}
		rq->nproof++;
		p = nl + 1;
	}
	p = nl + 1;
	if (p == end)
		return "no checkpoint after the empty line";
	if ((rc = tl_note_parse(note, p, (size_t)(end - p))) != 0) {
		snprintf(why, whycap, "the checkpoint is not a signed note: %s", tl_strerror(rc));
		return why;
	}
	if ((rc = tl_checkpoint_parse(cp, note->raw, note->text_len)) != 0) {
		snprintf(why, whycap, "the note is not a checkpoint: %s", tl_strerror(rc));
		return why;
	}
	return NULL;
}

static int sig_is_of(const struct tl_note_sig *s, const struct tl_vkey *vk)
{
	return strcmp(s->name, vk->name) == 0 && memcmp(s->id, vk->id, 4) == 0;
}

/*
 * Everything of add-checkpoint that does not depend on the stored state.
 * Returns 0 with the job ready to queue, or an HTTP code with the response
 * already queued.
 */
static unsigned add_prepare(struct witness *w, struct MHD_Connection *conn, struct req *rq)
{
	struct tl_note note = {0};
	struct tl_checkpoint cp;
	struct tl_witness_request pr;
	struct tl_vkey vks[TL_WITNESS_VKEYS_MAX];
	size_t nvk = 0;
	char why[200];
	const char *bad;
	unsigned code = 0;
	MDB_txn *txn = NULL;
	int rc, ok[TL_WITNESS_VKEYS_MAX] = {0}, any = 0;

	struct job *j = calloc(1, sizeof *j);
	if (!j) {
		respond_text(w, conn, 503, "out of memory");
		return 503;
	}
	rq->job = j;
	tl_buf_init(&j->note, TL_WITNESS_BODY_MAX + 1024);
	bad = tl_witness_parse_request((const char *)rq->body.data, rq->body.len, &pr, &note, &cp,
	                               why, sizeof why);
	if (bad) {
		respond_text(w, conn, 400, "%s", bad);
		code = 400;
		goto out;
	}
	j->old = pr.old;
	memcpy(j->proof, pr.proof, sizeof j->proof);
	j->nproof = pr.nproof;
	memcpy(j->origin, cp.origin, sizeof j->origin);
	j->size = cp.size;
	memcpy(j->root, cp.root, TL_HASH_LEN);
	if ((rc = mdb_txn_begin(w->st->env, NULL, MDB_RDONLY, &txn)) != 0) {
		wlog(0, "cannot read the witness store: %s", mdb_strerror(rc));
		respond_text(w, conn, 503, "the witness cannot read its store");
		code = 503;
		goto out;
	}
	rc = logs_read(txn, w->st->logs, cp.origin, vks, &nvk);
	mdb_txn_abort(txn);
	if (rc == TL_ENOTFOUND) {
		respond_text(w, conn, 404, "unknown origin '%s'", cp.origin);
		code = 404;
		goto out;
	}
	if (rc) {
		wlog(0, "the keys of '%s' are damaged in the witness store", cp.origin);
		respond_text(w, conn, 500, "the witness store is damaged");
		code = 500;
		goto out;
	}
	/* Signatures by unknown keys are ignored; one good signature by a
	 * registered key is enough (a key whose line fails does not count). */
	for (size_t i = 0; i < nvk; i++)
		if (tl_note_verify(&note, &vks[i]) == 0)
			ok[i] = any = 1;
	if (!any) {
		respond_text(w, conn, 403, "no signature by a key registered for '%s' verifies",
		             cp.origin);
		code = 403;
		goto out;
	}
	if (j->old > j->size) {
		respond_text(w, conn, 400, "old size %llu is larger than the checkpoint size %llu",
		             (unsigned long long)j->old, (unsigned long long)j->size);
		code = 400;
		goto out;
	}
	/* The note to keep: text, the log's verified lines, our cosignature. */
	j->time = witness_now(w);
	rc = tl_buf_add(&j->note, note.raw, note.text_len);
	rc = rc ? rc : tl_buf_addc(&j->note, '\n');
	for (size_t s = 0; s < note.nsigs && !rc; s++)
		for (size_t i = 0; i < nvk; i++)
			if (ok[i] && sig_is_of(&note.sigs[s], &vks[i])) {
				rc = tl_buf_add(&j->note, note.sigs[s].line, note.sigs[s].linelen);
				rc = rc ? rc : tl_buf_addc(&j->note, '\n');
				break;
			}
	rc = rc ? rc : tl_cosig_sign(&j->note, note.raw, note.text_len, j->time, w->name, w->kp);
	if (rc) {
		respond_text(w, conn, 500, "cannot cosign: %s", tl_strerror(rc));
		code = 500;
		goto out;
	}
out:
	tl_note_release(&note);
	return code;
}

/* The last line of the stored note: our cosignature line, newline included. */
static void cosig_line(const struct job *j, const char **line, size_t *len)
{
	const char *s = (const char *)j->note.data;
	size_t n = j->note.len;
	size_t i = n - 1; /* the final newline */
	while (i > 0 && s[i - 1] != '\n')
		i--;
	*line = s + i;
	*len = n - i;
}

/* Decides one job inside the writer's transaction. 0, or an LMDB code that
 * aborts the whole batch. */
static int decide(struct witness *w, MDB_txn *txn, struct job *j)
{
	struct wstate st;
	uint8_t empty[TL_HASH_LEN], key[REC_KEY_LEN], val[REC_VAL_LEN];
	MDB_val k, v;
	int rc, have;

	k = (MDB_val){strlen(j->origin), j->origin};
	rc = mdb_get(txn, w->st->logs, &k, &v);
	if (rc == MDB_NOTFOUND) { /* denied meanwhile */
		j->http = 404;
		snprintf(j->why, sizeof j->why, "unknown origin '%s'", j->origin);
		return 0;
	}
	if (rc)
		return rc;
	tl_merkle_empty_root(empty);
	rc = state_read(txn, w->st->state, j->origin, &st);
	if (rc == TL_ENOTFOUND) {
		have = 0;
		memset(&st, 0, sizeof st);
		memcpy(st.root, empty, TL_HASH_LEN);
	} else if (rc) {
		wlog(0, "the state of '%s' is damaged in the witness store", j->origin);
		j->http = 500;
		snprintf(j->why, sizeof j->why, "the witness store is damaged");
		return 0;
	} else {
		have = 1;
	}
	if (j->old != st.size) {
		j->http = 409;
		j->conflict = st.size;
		return 0;
	}
	if (j->size == 0 && sodium_memcmp(j->root, empty, TL_HASH_LEN) != 0) {
		j->http = 422;
		snprintf(j->why, sizeof j->why, "a checkpoint of size 0 must have the empty root");
		return 0;
	}
	if (j->old == j->size) {
		if (memcmp(j->root, st.root, TL_HASH_LEN) != 0) {
			wlog(1, "%s: a signed checkpoint of size %llu with a root other than the one "
			        "cosigned: the log may have forked",
			     j->origin, (unsigned long long)j->size);
			j->http = 409;
			j->conflict = st.size;
			return 0;
		}
		if (j->nproof) {
			j->http = 422;
			snprintf(j->why, sizeof j->why,
			         "the consistency proof between equal sizes must be empty");
			return 0;
		}
	} else if (j->old == 0) {
		if (j->nproof) {
			j->http = 422;
			snprintf(j->why, sizeof j->why,
			         "the consistency proof from size 0 must be empty");
			return 0;
		}
	} else if (tl_merkle_verify_consistency(j->old, j->size, st.root, j->root,
	                                        (const uint8_t(*)[TL_HASH_LEN])j->proof,
	                                        j->nproof) != 0) {
		wlog(1, "%s: consistency proof %llu -> %llu does not verify",
		     j->origin, (unsigned long long)j->old, (unsigned long long)j->size);
		j->http = 422;
		snprintf(j->why, sizeof j->why, "the consistency proof from %llu to %llu does not verify",
		         (unsigned long long)j->old, (unsigned long long)j->size);
		return 0;
	}

	/* Cosign: keep the note with the latest timestamp (two heartbeats
	 * racing within one batch may arrive in either order). */
	if (!(have && j->size == st.size && j->time < st.time)) {
		size_t vl = STATE_HDR + j->note.len;
		v = (MDB_val){vl, NULL};
		if ((rc = mdb_put(txn, w->st->state, &k, &v, MDB_RESERVE)) != 0)
			return rc;
		uint8_t *p = v.mv_data;
		put_be64(p, j->size);
		memcpy(p + 8, j->root, TL_HASH_LEN);
		put_be64(p + 8 + TL_HASH_LEN, j->time);
		memcpy(p + STATE_HDR, j->note.data, j->note.len);
	}
	origin_hash(key, j->origin, strlen(j->origin));
	put_be64(key + 16, j->size);
	MDB_val rk = {REC_KEY_LEN, key}, rv;
	rc = mdb_get(txn, w->st->cosigned, &rk, &rv);
	if (rc == 0 && rv.mv_size == REC_VAL_LEN) {
		memcpy(val, rv.mv_data, REC_VAL_LEN);
		if (j->time > get_be64(val + TL_HASH_LEN + 8))
			put_be64(val + TL_HASH_LEN + 8, j->time);
		if (j->time < get_be64(val + TL_HASH_LEN))
			put_be64(val + TL_HASH_LEN, j->time);
		put_be64(val + TL_HASH_LEN + 16, get_be64(val + TL_HASH_LEN + 16) + 1);
	} else if (rc == MDB_NOTFOUND || rc == 0) {
		memcpy(val, j->root, TL_HASH_LEN);
		put_be64(val + TL_HASH_LEN, j->time);
		put_be64(val + TL_HASH_LEN + 8, j->time);
		put_be64(val + TL_HASH_LEN + 16, 1);
	} else {
		return rc;
	}
	rv = (MDB_val){REC_VAL_LEN, val};
	if ((rc = mdb_put(txn, w->st->cosigned, &rk, &rv, 0)) != 0)
		return rc;
	j->http = 200;
	return 0;
}

static void publish(struct job *j)
{
	struct MHD_Connection *conn = j->conn;
	/* After done is set the request thread may free the job. */
	atomic_store_explicit(&j->done, J_DONE, memory_order_release);
	MHD_resume_connection(conn);
}

static void *writer_main(void *arg)
{
	struct witness *w = arg;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (!w->head && !w->closing)
			pthread_cond_wait(&w->cv, &w->mu);
		struct job *batch = w->head;
		size_t nb = w->queued;
		w->head = w->tail = NULL;
		w->queued = 0;
		int last = w->closing && !batch;
		pthread_mutex_unlock(&w->mu);
		if (last)
			break;

		MDB_txn *txn = NULL;
		int rc = mdb_txn_begin(w->st->env, NULL, 0, &txn);
		for (struct job *j = batch; j && !rc; j = j->next)
			rc = decide(w, txn, j);
		if (!rc) {
			rc = mdb_txn_commit(txn);
			txn = NULL;
		}
		if (txn)
			mdb_txn_abort(txn);
		if (rc) {
			/* Nothing of this batch is stored: none of it is cosigned. */
			wlog(0, "cannot store the witness state (%zu requests refused): %s", nb,
			     mdb_strerror(rc));
			for (struct job *j = batch; j; j = j->next) {
				j->http = 503;
				snprintf(j->why, sizeof j->why, "the witness cannot store its state: %s",
				         mdb_strerror(rc));
			}
		}
		atomic_fetch_add(&w->n_batches, 1);
		while (batch) {
			struct job *next = batch->next;
			publish(batch);
			batch = next;
		}
	}
	return NULL;
}

static enum MHD_Result add_finish(struct witness *w, struct MHD_Connection *conn, struct job *j)
{
	char num[32];
	const char *line;
	size_t len;
	count_status(w, j->http);
	switch (j->http) {
	case 200:
		wlog(3, "cosigned %s size %llu (old %llu) at %llu", j->origin,
		     (unsigned long long)j->size, (unsigned long long)j->old,
		     (unsigned long long)j->time);
		cosig_line(j, &line, &len);
		return respond(conn, 200, "text/plain; charset=utf-8", line, len, NULL);
	case 409:
		wlog(3, "%s: old size %llu, latest cosigned %llu: 409", j->origin,
		     (unsigned long long)j->old, (unsigned long long)j->conflict);
		snprintf(num, sizeof num, "%llu\n", (unsigned long long)j->conflict);
		return respond(conn, 409, "text/x.tlog.size", num, strlen(num), NULL);
	default: {
		char msg[200];
		int k = snprintf(msg, sizeof msg, "%s\n", j->why);
		return respond(conn, j->http, "text/plain; charset=utf-8", msg,
		               k < 0 ? 0 : (size_t)k >= sizeof msg ? sizeof msg - 1 : (size_t)k,
		               NULL);
	}
	}
}

static enum MHD_Result handle_add(struct witness *w, struct MHD_Connection *conn,
                                  struct req *rq, const char *upload, size_t *upload_size)
{
	if (*upload_size) {
		if (!rq->too_big && tl_buf_add(&rq->body, upload, *upload_size) != 0)
			rq->too_big = 1; /* keep reading to the end, keep nothing */
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->queued) {
		if (atomic_load_explicit(&rq->job->done, memory_order_acquire) != J_DONE)
			return MHD_YES; /* not resumed by the writer: cannot happen */
		return add_finish(w, conn, rq->job);
	}
	if (rq->too_big)
		return respond_text(w, conn, 400, "request body larger than %u bytes",
		                    TL_WITNESS_BODY_MAX);
	if (add_prepare(w, conn, rq) != 0)
		return MHD_YES;
	struct job *j = rq->job;
	j->conn = conn;
	pthread_mutex_lock(&w->mu);
	if (w->closing || w->queued >= QUEUE_MAX) {
		int closing = w->closing;
		pthread_mutex_unlock(&w->mu);
		return respond_text(w, conn, 503, "%s",
		                    closing ? "the witness is shutting down"
		                            : "the witness is busy; retry shortly");
	}
	/* Suspend before the writer can see the job, so its resume always
	 * follows this suspend. */
	MHD_suspend_connection(conn);
	rq->queued = 1;
	atomic_fetch_add(&w->inflight, 1);
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	w->queued++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return MHD_YES;
}

static enum MHD_Result handle_status(struct witness *w, struct MHD_Connection *conn)
{
	MDB_txn *txn;
	MDB_stat ms;
	size_t nlogs = 0;
	char body[2048];
	if (mdb_txn_begin(w->st->env, NULL, MDB_RDONLY, &txn) == 0) {
		if (mdb_stat(txn, w->st->logs, &ms) == 0)
			nlogs = ms.ms_entries;
		mdb_txn_abort(txn);
	}
	int k = snprintf(body, sizeof body,
	                 "tally witness (tallyd %s)\nname %s\nvkey %s\nlogs %zu\ntime %llu\n"
	                 "cosigned %llu\nrefused 400=%llu 403=%llu 404=%llu 409=%llu 422=%llu "
	                 "5xx=%llu\ncommits %llu\n",
	                 TL_VERSION, w->name, w->vkey, nlogs, (unsigned long long)witness_now(w),
	                 (unsigned long long)atomic_load(&w->n_ok),
	                 (unsigned long long)atomic_load(&w->n_400),
	                 (unsigned long long)atomic_load(&w->n_403),
	                 (unsigned long long)atomic_load(&w->n_404),
	                 (unsigned long long)atomic_load(&w->n_409),
	                 (unsigned long long)atomic_load(&w->n_422),
	                 (unsigned long long)atomic_load(&w->n_5xx),
	                 (unsigned long long)atomic_load(&w->n_batches));
	return respond(conn, 200, "text/plain; charset=utf-8", body,
	               k < 0 ? 0 : (size_t)k >= sizeof body ? sizeof body - 1 : (size_t)k, NULL);
}

static enum MHD_Result handle_latest(struct witness *w, struct MHD_Connection *conn,
                                     const char *origin)
{
	struct wstate st;
	MDB_txn *txn;
	int rc;
	if (tl_witness_origin_valid(origin, strlen(origin)) != 0)
		return respond_text(NULL, conn, 404, "unknown origin");
	if ((rc = mdb_txn_begin(w->st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return respond_text(NULL, conn, 503, "the witness cannot read its store");
	rc = state_read(txn, w->st->state, origin, &st);
	enum MHD_Result ret;
	if (rc == 0)
		ret = respond(conn, 200, "text/plain; charset=utf-8", st.note, st.note_len, NULL);
	else if (rc == TL_ENOTFOUND)
		ret = respond_text(NULL, conn, 404, "nothing cosigned for '%s'", origin);
	else
		ret = respond_text(NULL, conn, 500, "the witness store is damaged");
	mdb_txn_abort(txn);
	return ret;
}

/* Routes. A response is queued only once the request is complete (the
 * second call at the earliest): answering earlier makes libmicrohttpd close
 * the connection, which is wanted only for a body announced too large. */
enum route { R_ADD = 1, R_STATUS, R_LATEST, R_NOTFOUND, R_METHOD };

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	struct witness *w = cls;
	struct req *rq = *con_cls;
	(void)version;

	if (!rq) {
		int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
		int route;
		if (strcmp(url, "/add-checkpoint") == 0) {
			route = strcmp(method, "POST") == 0 ? R_ADD : R_METHOD;
			const char *cl =
			        MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
			                                    MHD_HTTP_HEADER_CONTENT_LENGTH);
			uint64_t n;
			if (route == R_ADD && cl && tl_parse_u64(cl, strlen(cl), &n) == 0 &&
			    n > TL_WITNESS_BODY_MAX)
				return respond_text(w, conn, 400, "request body larger than %u bytes",
				                    TL_WITNESS_BODY_MAX);
		} else if (strcmp(url, "/") == 0 || strcmp(url, "/status") == 0) {
			route = is_get ? R_STATUS : R_METHOD;
		} else if (strncmp(url, "/latest/", 8) == 0) {
			route = is_get ? R_LATEST : R_METHOD;
		} else {
			route = R_NOTFOUND;
		}
		rq = calloc(1, sizeof *rq);
		if (!rq)
			return MHD_NO;
		rq->add = route;
		tl_buf_init(&rq->body, TL_WITNESS_BODY_MAX);
		*con_cls = rq;
		return MHD_YES;
	}
	if (rq->add == R_ADD)
		return handle_add(w, conn, rq, upload, upload_size);
	if (*upload_size) { /* a body where none belongs: read and dropped */
		*upload_size = 0;
		return MHD_YES;
	}
	switch (rq->add) {
	case R_STATUS:
		return handle_status(w, conn);
	case R_LATEST:
		return handle_latest(w, conn, url + 8);
	case R_METHOD: {
		int add = strcmp(url, "/add-checkpoint") == 0;
		return respond(conn, 405, "text/plain; charset=utf-8", add ? "use POST\n" : "use GET\n",
		               add ? 9 : 8, add ? "POST" : "GET, HEAD");
	}
	default:
		return respond(conn, 404, "text/plain; charset=utf-8", "not found\n", 10, NULL);
	}
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;
	struct witness *w = cls;
	(void)conn;
	(void)toe;
	if (!rq)
		return;
	if (rq->queued)
		atomic_fetch_sub(&w->inflight, 1);
	if (rq->job) {
		tl_buf_release(&rq->job->note);
		free(rq->job);
	}
	tl_buf_release(&rq->body);
	free(rq);
	*con_cls = NULL;
}

/* ------------------------------------------------------------- start */

void tl_witness_config_defaults(struct tl_witness_config *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->listen, sizeof c->listen, "127.0.0.1:0");
	c->log_level = 2;
}

/* "HOST:PORT" or "[V6]:PORT", numeric. */
static int bind_listen(const char *spec, char *bound, size_t cap)
{
	char host[TL_NAME_MAX + 1];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = {0}, *ai = NULL;
	if (!colon || colon == spec || strlen(spec) >= sizeof host)
		return -2;
	size_t hl = (size_t)(colon - spec);
	if (spec[0] == '[') {
		if (hl < 3 || spec[hl - 1] != ']')
			return -2;
		memcpy(host, spec + 1, hl - 2);
		host[hl - 2] = 0;
	} else {
		memcpy(host, spec, hl);
		host[hl] = 0;
	}
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	uint64_t port;
	if (tl_parse_u64(colon + 1, strlen(colon + 1), &port) != 0 || port > 65535)
		return -2;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai)
		return -2;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0) {
		freeaddrinfo(ai);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		int e = errno;
		close(fd);
		freeaddrinfo(ai);
		errno = e;
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char ip[INET6_ADDRSTRLEN] = "?";
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
		snprintf(bound, cap, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		snprintf(bound, cap, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
	}
	return fd;
}

/* Writes path atomically: temp file, fsync, rename. */
static int write_atomic(const char *path, const char *data)
{
	char tmp[4500];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t n = strlen(data);
	if (write(fd, data, n) != (ssize_t)n || fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	return rename(tmp, path);
}

static int load_key(struct witness *w)
{
	char path[4400];
	uint8_t pk[TL_PUB_LEN];
	struct tl_vkey vk;
	struct tl_buf b;
	size_t plen = 0;
	int rc;
	snprintf(path, sizeof path, "%s/witness.key", w->cfg.home);
	if ((rc = tl_keyfile_read_public(path, pk, w->name, sizeof w->name)) != 0) {
		wlog(0, "%s: %s (create the witness with 'tally witness init --name NAME')", path,
		     rc == TL_EIO ? strerror(errno) : tl_strerror(rc));
		return rc;
	}
	char *pass = sodium_malloc(1024);
	w->kp = sodium_malloc(sizeof *w->kp);
	if (!pass || !w->kp) {
		if (pass)
			sodium_free(pass);
		return TL_ENOMEM;
	}
	if (tl_passphrase_get(pass, 1024, &plen, "Passphrase for the witness key: ", 0) != 0) {
		wlog(0, "no passphrase: set TALLY_PASSPHRASE or start on a terminal");
		sodium_free(pass);
		return TL_EPASS;
	}
	rc = tl_keyfile_read(path, pass, plen, w->kp);
	sodium_free(pass);
	if (rc) {
		wlog(0, "cannot unlock %s: %s", path,
		     rc == TL_EPASS ? "wrong passphrase or damaged key file" : tl_strerror(rc));
		return rc;
	}
	tl_buf_init(&b, sizeof w->vkey - 1);
	if ((rc = tl_vkey_from_pub(&vk, w->name, TL_SIGTYPE_COSIG, w->kp->pk)) != 0 ||
	    (rc = tl_vkey_format(&vk, &b)) != 0) {
		wlog(0, "witness name '%s' cannot be a key name: %s", w->name, tl_strerror(rc));
		tl_buf_release(&b);
		return rc;
	}
	snprintf(w->vkey, sizeof w->vkey, "%s", tl_buf_cstr(&b));
	tl_buf_release(&b);
	return 0;
}

int tl_witness_run(const struct tl_witness_config *cfg)
{
	struct witness *w = calloc(1, sizeof *w);
	char path[4400], addr_path[4400], err[512], bound[300];
	int lockfd = -1, code = 3, writer_started = 0, sig;
	sigset_t set;

	if (!w)
		return 3;
	w->cfg = *cfg;
	w->lsock = -1;
	g_wlog_level = cfg->log_level;
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	addr_path[0] = 0;

	/* Every thread started below inherits this mask; the main thread
	 * waits for the signals with sigwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	mkdir(cfg->home, 0700);
	snprintf(path, sizeof path, "%s/witness.lock", cfg->home);
	lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		wlog(0, "%s: %s", path,
		     lockfd < 0 ? strerror(errno) : "another witness is running on this directory");
		goto out;
	}
	if (tl_wstore_open(&w->st, cfg->home, 0, err, sizeof err) != 0) {
		wlog(0, "cannot open the witness store: %s", err);
		goto out;
	}
	if (load_key(w) != 0)
		goto out;
	w->lsock = bind_listen(cfg->listen, bound, sizeof bound);
	if (w->lsock < 0) {
		if (w->lsock == -2) {
			wlog(0, "listen address '%s' is not HOST:PORT with a numeric IP or localhost",
			     cfg->listen);
			code = 2;
		} else {
			wlog(0, "cannot listen on %s: %s", cfg->listen, strerror(errno));
		}
		goto out;
	}
	if (pthread_create(&w->writer, NULL, writer_main, w) != 0) {
		wlog(0, "cannot start the writer thread");
		goto out;
	}
	writer_started = 1;
	unsigned threads = cfg->threads;
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n < 2 ? 2 : n > 8 ? 8 : (unsigned)n;
	}
	w->mhd = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	                MHD_USE_ERROR_LOG,
	        0, NULL, NULL, on_request, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, w,
	        MHD_OPTION_LISTEN_SOCKET, w->lsock,
	        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
	        cfg->max_conns ? cfg->max_conns : 1000u, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)CONN_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
	        MHD_OPTION_END);
	if (!w->mhd) {
		wlog(0, "cannot start the HTTP server on %s", bound);
		goto out;
	}
	snprintf(addr_path, sizeof addr_path, "%s/witness.addr", cfg->home);
	char line[320];
	snprintf(line, sizeof line, "%s\n", bound);
	if (write_atomic(addr_path, line) != 0)
		wlog(1, "cannot write %s: %s", addr_path, strerror(errno));
	wlog(2, "witness %s (tallyd %s) listening on %s; %u HTTP threads%s", w->name, TL_VERSION,
	     bound, threads, cfg->clock_offset ? "; CLOCK OFFSET SET (testing only)" : "");
	wlog(2, "witness key %s", w->vkey);
	if (cfg->clock_offset)
		wlog(1, "the clock is offset by %lld s: cosignatures carry that time",
		     (long long)cfg->clock_offset);

	for (;;) {
		if (sigwait(&set, &sig) == 0 && (sig == SIGTERM || sig == SIGINT))
			break;
	}
	wlog(2, "%s: shutting down (requests in flight finish first)",
	     sig == SIGTERM ? "SIGTERM" : "SIGINT");
	code = 0;
	unlink(addr_path);
	/* Stop accepting; answer what is queued; then stop the HTTP threads
	 * (no connection is left suspended once the writer has drained). */
	int qfd = MHD_quiesce_daemon(w->mhd);
	if (qfd < 0)
		w->lsock = -1; /* still libmicrohttpd's: MHD_stop_daemon closes it */
	else if (qfd != w->lsock)
		close(qfd);
out:
	if (writer_started) {
		pthread_mutex_lock(&w->mu);
		w->closing = 1;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->writer, NULL);
	}
	/* Every queued job is decided and its connection resumed; let the
	 * HTTP threads send those answers (their state is committed) before
	 * the connections are closed. Bounded: a client that does not read
	 * cannot hold the exit. */
	for (int i = 0; w->mhd && i < 500 && atomic_load(&w->inflight) > 0; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (w->mhd)
		MHD_stop_daemon(w->mhd);
	if (w->lsock >= 0)
		close(w->lsock);
	if (w->kp) {
		tl_key_wipe(w->kp);
		sodium_free(w->kp);
	}
	tl_wstore_close(w->st);
	if (lockfd >= 0)
		close(lockfd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	if (code == 0)
		wlog(2, "stopped");
	free(w);
	return code;
}
