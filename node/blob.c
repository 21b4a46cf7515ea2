/*
 * blob.c — the content-addressed blob store (blob.h, docs/storage.md
 * section 9): files named by their SHA-256 under HOME/blobs, written
 * atomically through a staging directory, verified on every read.
 */
#include "blob.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_BUF (256u << 10)

/* memmem is a GNU extension; this is the only search needed. */
static int contains(const uint8_t *h, size_t hl, const char *n, size_t nl)
{
	if (nl == 0 || hl < nl)
		return nl == 0;
	for (const uint8_t *p = h, *end = h + hl - nl; p <= end; p++) {
		p = memchr(p, (unsigned char)n[0], (size_t)(end - p) + 1);
		if (!p)
			return 0;
		if (memcmp(p, n, nl) == 0)
			return 1;
	}
	return 0;
}

int tl_blobs_init(struct tl_blobs *b, const char *home, uint64_t max)
{
	memset(b, 0, sizeof *b);
	if ((size_t)snprintf(b->dir, sizeof b->dir, "%s/blobs", home) >= sizeof b->dir)
		return TL_ETOOBIG;
	b->max = max ? max : TL_BLOB_MAX_DEFAULT;
	return 0;
}

int tl_blob_hex_parse(const char *hex, uint8_t hash[32])
{
	if (!hex || strlen(hex) != TL_BLOB_HEX)
		return TL_EFORMAT;
	for (size_t i = 0; i < TL_BLOB_HEX; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return TL_EFORMAT;
	return tl_hex_decode(hash, 32, hex, TL_BLOB_HEX) == 0 ? 0 : TL_EFORMAT;
}

void tl_blob_path(const struct tl_blobs *b, const uint8_t hash[32], char *out, size_t cap)
{
	char hex[TL_BLOB_HEX + 1];
	tl_hex_encode(hex, hash, 32);
	snprintf(out, cap, "%s/%.2s/%s", b->dir, hex, hex);
}

static int mkdir_one(const char *p)
{
	return mkdir(p, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ----------------------------------------------------------- staging */

int tl_blob_stage_begin(const struct tl_blobs *b, struct tl_blob_stage *s, const uint8_t want[32],
                        uint64_t total, char *err, size_t errcap)
{
	char dir[4200], hex[TL_BLOB_HEX + 1];
	uint8_t rnd[8];
	char rh[17];
	memset(s, 0, sizeof *s);
	s->fd = -1;
	if (total > b->max) {
		snprintf(err, errcap, "blob of %llu bytes is over the cap of %llu bytes",
		         (unsigned long long)total, (unsigned long long)b->max);
		return TL_ETOOBIG;
	}
	snprintf(dir, sizeof dir, "%s/staging", b->dir);
	if (mkdir_one(b->dir) != 0 || mkdir_one(dir) != 0) {
		snprintf(err, errcap, "cannot create %s: %s", dir, strerror(errno));
		return TL_EIO;
	}
	tl_hex_encode(hex, want, 32);
	randombytes_buf(rnd, sizeof rnd);
	tl_hex_encode(rh, rnd, sizeof rnd);
	snprintf(s->path, sizeof s->path, "%s/%s.%s.part", dir, hex, rh);
	s->fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s->fd < 0) {
		snprintf(err, errcap, "cannot create %s: %s", s->path, strerror(errno));
		s->path[0] = 0;
		return TL_EIO;
	}
	/* Held while the stage is open: tl_blob_stage_sweep leaves it alone
	 * (a `tally blob put` may run while tallyd starts). */
	(void)flock(s->fd, LOCK_EX | LOCK_NB);
	memcpy(s->want, want, 32);
	s->total = total;
	crypto_hash_sha256_init(&s->st);
	return 0;
}

int tl_blob_stage_write(struct tl_blob_stage *s, uint64_t offset, const void *data, size_t len,
                        char *err, size_t errcap)
{
	if (s->fd < 0 || offset != s->got || len > s->total - s->got) {
		snprintf(err, errcap,
		         "chunk at offset %llu of %zu bytes does not continue %llu of %llu",
		         (unsigned long long)offset, len, (unsigned long long)s->got,
		         (unsigned long long)s->total);
		return TL_ERANGE;
	}
	crypto_hash_sha256_update(&s->st, data, len);
	if (write_all(s->fd, data, len) != 0) {
		snprintf(err, errcap, "cannot write %s: %s", s->path, strerror(errno));
		return TL_EIO;
	}
	s->got += len;
	return 0;
}

void tl_blob_stage_abort(struct tl_blob_stage *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->path[0])
		unlink(s->path);
	s->path[0] = 0;
	sodium_memzero(&s->st, sizeof s->st);
}

/* The content hashed to got: keep it under want's name if they agree. */
static int stage_finish(const struct tl_blobs *b, struct tl_blob_stage *s, const uint8_t got[32],
                        char *err, size_t errcap)
{
	char dest[4400], dir[4200], hex[TL_BLOB_HEX + 1];
	tl_hex_encode(hex, s->want, 32);
	if (sodium_memcmp(got, s->want, 32) != 0) {
		char gh[TL_BLOB_HEX + 1];
		tl_hex_encode(gh, got, 32);
		snprintf(err, errcap,
		         "integrity failure: content received for blob %s hashes to %s; "
		         "discarded",
		         hex, gh);
		tl_blob_stage_abort(s);
		return TL_ECORRUPT;
	}
	snprintf(dir, sizeof dir, "%s/%.2s", b->dir, hex);
	snprintf(dest, sizeof dest, "%s/%s", dir, hex);
	if (fsync(s->fd) != 0) {
		snprintf(err, errcap, "cannot write %s: %s", s->path, strerror(errno));
		tl_blob_stage_abort(s);
		return TL_EIO;
	}
	close(s->fd);
	s->fd = -1;
	/* A new fan-out directory is an entry of b->dir: synced too, or a
	 * power loss could drop the directory with the blob in it. */
	int made = mkdir(dir, 0700) == 0;
	if ((!made && errno != EEXIST) || rename(s->path, dest) != 0) {
		snprintf(err, errcap, "cannot store %s: %s", dest, strerror(errno));
		tl_blob_stage_abort(s);
		return TL_EIO;
	}
	s->path[0] = 0;
	if (fsync_dir(dir) != 0 || (made && fsync_dir(b->dir) != 0)) {
		snprintf(err, errcap, "cannot sync %s: %s", dir, strerror(errno));
		return TL_EIO;
	}
	return 0;
}

int tl_blob_stage_commit(const struct tl_blobs *b, struct tl_blob_stage *s, char *err,
                         size_t errcap)
{
	uint8_t got[32];
	char hex[TL_BLOB_HEX + 1];
	if (s->fd < 0) {
		snprintf(err, errcap, "no download in progress");
		return TL_EINVAL;
	}
	tl_hex_encode(hex, s->want, 32);
	if (s->got != s->total) {
		snprintf(err, errcap, "blob %s: only %llu of %llu bytes received", hex,
		         (unsigned long long)s->got, (unsigned long long)s->total);
		tl_blob_stage_abort(s);
		return TL_ERANGE;
	}
	crypto_hash_sha256_final(&s->st, got);
	return stage_finish(b, s, got, err, errcap);
}

void tl_blob_stage_sweep(const struct tl_blobs *b)
{
	char dir[4300], p[4600];
	snprintf(dir, sizeof dir, "%s/staging", b->dir);
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 5 && strcmp(de->d_name + l - 5, ".part") == 0) {
			snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
			/* A stage still open in some process holds its lock. */
			int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
				close(fd);
				continue;
			}
			unlink(p);
			if (fd >= 0)
				close(fd);
		}
	}
	closedir(d);
}

/* --------------------------------------------------------------- put */

/* Content from fd into staging, hashed as it goes; the hash is known only
 * at the end, so the stage is begun with a placeholder and renamed to the
 * computed name. */
static int put_stream(const struct tl_blobs *b, int fd, const void *mem, size_t memlen,
                      uint8_t hash[32], int *existed, const char *what, char *err, size_t errcap)
{
	struct tl_blob_stage s;
	uint8_t zero[32] = {0};
	uint8_t *buf = NULL;
	uint64_t n = 0;
	int rc;
	if (existed)
		*existed = 0;
	if ((rc = tl_blob_stage_begin(b, &s, zero, b->max, err, errcap)) != 0)
		return rc;
	if (mem) {
		if (memlen > b->max) {
			rc = TL_ETOOBIG;
		} else {
			rc = tl_blob_stage_write(&s, 0, mem, memlen, err, errcap);
			n = memlen;
		}
	} else {
		if (!(buf = malloc(IO_BUF))) {
			tl_blob_stage_abort(&s);
			return TL_ENOMEM;
		}
		for (;;) {
			ssize_t r = read(fd, buf, IO_BUF);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				snprintf(err, errcap, "cannot read %s: %s", what, strerror(errno));
				rc = TL_EIO;
				break;
			}
			if (r == 0)
				break;
			if ((uint64_t)r > b->max - n) {
				rc = TL_ETOOBIG;
				break;
			}
			if ((rc = tl_blob_stage_write(&s, n, buf, (size_t)r, err, errcap)) != 0)
				break;
			n += (uint64_t)r;
		}
		free(buf);
	}
	if (rc == TL_ETOOBIG)
		snprintf(err, errcap, "%s is larger than the blob cap of %llu bytes", what,
		         (unsigned long long)b->max);
	if (rc) {
		tl_blob_stage_abort(&s);
		return rc;
	}
	crypto_hash_sha256_final(&s.st, hash);
	/* The name is known only now. A stored copy that verifies is kept; a
	 * damaged one is replaced by this content. */
	memcpy(s.want, hash, 32);
	uint64_t have;
	char e2[512];
	if (tl_blob_verify(b, hash, &have, e2, sizeof e2) == 0) {
		if (existed)
			*existed = 1;
		tl_blob_stage_abort(&s);
		return 0;
	}
	return stage_finish(b, &s, hash, err, errcap);
}

int tl_blob_put_file(const struct tl_blobs *b, const char *path, uint8_t hash[32], int *existed,
                     char *err, size_t errcap)
{
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errcap, "cannot open %s: %s", path, strerror(errno));
		return TL_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errcap, "%s is a directory", path);
		if (fd)
			close(fd);
		return TL_EIO;
	}
	int rc = put_stream(b, fd, NULL, 0, hash, existed, path, err, errcap);
	if (fd)
		close(fd);
	return rc;
}

int tl_blob_put_mem(const struct tl_blobs *b, const void *data, size_t len, uint8_t hash[32],
                    int *existed, char *err, size_t errcap)
{
	return put_stream(b, -1, data ? data : "", len, hash, existed, "content", err, errcap);
}

/* --------------------------------------------------------------- get */

int tl_blob_has(const struct tl_blobs *b, const uint8_t hash[32], uint64_t *size)
{
	char path[4300];
	struct stat st;
	tl_blob_path(b, hash, path, sizeof path);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return TL_ENOTFOUND;
	if (size)
		*size = (uint64_t)st.st_size;
	return 0;
}

/* Streams the blob through the hash, and to out_fd when >= 0. */
static int read_check(const struct tl_blobs *b, const uint8_t hash[32], int out_fd, uint64_t *size,
                      char *err, size_t errcap)
{
	char path[4300];
	uint8_t got[32];
	crypto_hash_sha256_state st;
	uint64_t n = 0;
	int rc = 0;
	tl_blob_path(b, hash, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			snprintf(err, errcap, "blob not stored here");
			return TL_ENOTFOUND;
		}
		snprintf(err, errcap, "cannot open %s: %s", path, strerror(errno));
		return TL_EIO;
	}
	uint8_t *buf = malloc(IO_BUF);
	if (!buf) {
		close(fd);
		return TL_ENOMEM;
	}
	crypto_hash_sha256_init(&st);
	for (;;) {
		ssize_t r = read(fd, buf, IO_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errcap, "cannot read %s: %s", path, strerror(errno));
			rc = TL_EIO;
			break;
		}
		if (r == 0)
			break;
		crypto_hash_sha256_update(&st, buf, (size_t)r);
		n += (uint64_t)r;
		if (out_fd >= 0 && write_all(out_fd, buf, (size_t)r) != 0) {
			snprintf(err, errcap, "cannot write the copy: %s", strerror(errno));
			rc = TL_EIO;
			break;
		}
	}
	free(buf);
	close(fd);
	if (rc)
		return rc;
	crypto_hash_sha256_final(&st, got);
	if (sodium_memcmp(got, hash, 32) != 0) {
		snprintf(err, errcap,
		         "blob %s is damaged: its content no longer hashes to its name (delete "
		         "it and fetch it again)",
		         path);
		return TL_ECORRUPT;
	}
	if (size)
		*size = n;
	return 0;
}

int tl_blob_verify(const struct tl_blobs *b, const uint8_t hash[32], uint64_t *size, char *err,
                   size_t errcap)
{
	return read_check(b, hash, -1, size, err, errcap);
}

int tl_blob_copy_out(const struct tl_blobs *b, const uint8_t hash[32], const char *dest,
                     uint64_t *size, char *err, size_t errcap)
{
	char tmp[4300], dir[4300], rh[17];
	uint8_t rnd[8];
	/* An unpredictable name, created exclusively and never through a
	 * link: dest's directory may be shared (/tmp), and a link planted
	 * at a guessable name would make us write through it. */
	randombytes_buf(rnd, sizeof rnd);
	tl_hex_encode(rh, rnd, sizeof rnd);
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.%s.tmp", dest, rh) >= sizeof tmp) {
		snprintf(err, errcap, "path too long: %s", dest);
		return TL_ETOOBIG;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errcap, "cannot create %s: %s", tmp, strerror(errno));
		return TL_EIO;
	}
	int rc = read_check(b, hash, fd, size, err, errcap);
	if (rc == 0 && fsync(fd) != 0) {
		snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
		rc = TL_EIO;
	}
	if (close(fd) != 0 && rc == 0) {
		snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
		rc = TL_EIO;
	}
	if (rc == 0 && rename(tmp, dest) != 0) {
		snprintf(err, errcap, "cannot rename %s to %s: %s", tmp, dest, strerror(errno));
		rc = TL_EIO;
	}
	if (rc) {
		unlink(tmp);
		return rc;
	}
	snprintf(dir, sizeof dir, "%s", dest);
	char *sl = strrchr(dir, '/');
	if (!sl)
		snprintf(dir, sizeof dir, ".");
	else if (sl == dir)
		dir[1] = 0;
	else
		*sl = 0;
	fsync_dir(dir);
	return 0;
}

static int info_cmp(const void *a, const void *b)
{
	return memcmp(((const struct tl_blob_info *)a)->hash,
	              ((const struct tl_blob_info *)b)->hash, 32);
}

int tl_blob_list(const struct tl_blobs *b, struct tl_blob_info **out, size_t *n)
{
	size_t cap = 0, k = 0;
	struct tl_blob_info *v = NULL;
	char sub[4400], p[4700];
	*out = NULL;
	*n = 0;
	DIR *d = opendir(b->dir);
	if (!d)
		return errno == ENOENT ? 0 : TL_EIO;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strlen(de->d_name) != 2 || !isxdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(sub, sizeof sub, "%s/%s", b->dir, de->d_name);
		DIR *s = opendir(sub);
		struct dirent *fe;
		if (!s)
			continue;
		while ((fe = readdir(s))) {
			uint8_t h[32];
			struct stat st;
			if (tl_blob_hex_parse(fe->d_name, h) != 0 ||
			    memcmp(fe->d_name, de->d_name, 2) != 0)
				continue;
			snprintf(p, sizeof p, "%s/%s", sub, fe->d_name);
			if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			if (k == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct tl_blob_info *nv = realloc(v, nc * sizeof *nv);
				if (!nv) {
					closedir(s);
					closedir(d);
					free(v);
					return TL_ENOMEM;
				}
				v = nv;
				cap = nc;
			}
			memcpy(v[k].hash, h, 32);
			v[k].size = (uint64_t)st.st_size;
			v[k].mtime_ms = (uint64_t)st.st_mtim.tv_sec * 1000 +
			                (uint64_t)st.st_mtim.tv_nsec / 1000000;
			k++;
		}
		closedir(s);
	}
	closedir(d);
	if (k)
		qsort(v, k, sizeof *v, info_cmp);
	*out = v;
	*n = k;
	return 0;
}

/* ------------------------------------------------------------ chunks */

int tl_blob_chunk_check(const uint8_t want[32], uint64_t next_offset, int total_known,
                        uint64_t known_total, uint64_t cap, const uint8_t hash[32], uint64_t offset,
                        uint64_t total, size_t len, char *why, size_t whycap)
{
	if (sodium_memcmp(want, hash, 32) != 0) {
		snprintf(why, whycap, "chunk of a blob that was not asked for");
		return TL_EINVAL;
	}
	if (total > cap) {
		snprintf(why, whycap, "announced size %llu is over the cap of %llu bytes",
		         (unsigned long long)total, (unsigned long long)cap);
		return TL_ETOOBIG;
	}
	if (total_known && total != known_total) {
		snprintf(why, whycap, "announced size changed from %llu to %llu",
		         (unsigned long long)known_total, (unsigned long long)total);
		return TL_ERANGE;
	}
	if (offset != next_offset || (offset >= total && !(offset == 0 && total == 0))) {
		snprintf(why, whycap, "chunk at offset %llu, expected %llu of %llu",
		         (unsigned long long)offset, (unsigned long long)next_offset,
		         (unsigned long long)total);
		return TL_ERANGE;
	}
	uint64_t expect = total - offset < TL_BLOB_CHUNK ? total - offset : TL_BLOB_CHUNK;
	if (len != expect) {
		snprintf(why, whycap, "chunk at offset %llu has %zu bytes, expected %llu",
		         (unsigned long long)offset, len, (unsigned long long)expect);
		return TL_ERANGE;
	}
	return 0;
}

/* -------------------------------------------------------- references */

static int obj_refs(const msgpack_object *o, const char *hex, int depth)
{
	if (depth > TL_MP_DEPTH_MAX)
		return 0;
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (obj_refs(&o->via.array.ptr[i], hex, depth + 1))
				return 1;
	} else if (o->type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 5 &&
			    memcmp(kv->key.via.str.ptr, "blobs", 5) == 0 &&
			    kv->val.type == MSGPACK_OBJECT_ARRAY) {
				const msgpack_object_array *a = &kv->val.via.array;
				for (uint32_t k = 0; k < a->size; k++)
					if (a->ptr[k].type == MSGPACK_OBJECT_STR &&
					    a->ptr[k].via.str.size == TL_BLOB_HEX &&
					    memcmp(a->ptr[k].via.str.ptr, hex, TL_BLOB_HEX) == 0)
						return 1;
			}
			if (obj_refs(&kv->val, hex, depth + 1))
				return 1;
		}
	}
	return 0;
}

int tl_blob_body_refs(const uint8_t *body, size_t len, const char hex[TL_BLOB_HEX + 1])
{
	msgpack_unpacked u;
	size_t off = 0;
	int found = 0;
	/* Cheap filter first: the hex string must occur in the bytes. */
	if (len < TL_BLOB_HEX || !contains(body, len, hex, TL_BLOB_HEX))
		return 0;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)body, len, &off) == MSGPACK_UNPACK_SUCCESS)
		found = obj_refs(&u.data, hex, 0);
	msgpack_unpacked_destroy(&u);
	return found;
}

struct refscan {
	char hex[TL_BLOB_HEX + 1];
	int found;
};

static int ref_cb(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                  const uint8_t leaf[TL_HASH_LEN])
{
	struct refscan *r = ctx;
	struct tl_entry e;
	(void)seq;
	(void)leaf;
	if (len < TL_BLOB_HEX || !contains(rec, len, r->hex, TL_BLOB_HEX))
		return 0;
	if (tl_record_decode(&e, rec, len, NULL) == 0 &&
	    tl_blob_body_refs(e.body, e.body_len, r->hex)) {
		r->found = 1;
		return 1;
	}
	return 0;
}

int tl_blob_feed_refs(struct tl_store *s, const struct tl_feed *f, const uint8_t hash[32],
                      int *found)
{
	struct refscan r;
	tl_hex_encode(r.hex, hash, 32);
	r.found = 0;
	int rc = tl_store_scan(s, f, 0, UINT64_MAX, ref_cb, &r);
	*found = r.found;
	return rc < 0 ? rc : 0;
}
