/*
 * test_blob.c — vouchers: the blob store (node/blob.c) at unit level, the
 * `tally blob` commands' errors, and end to end with two real tallyd
 * processes: a customer disputes lines with vouchers attached, the supplier
 * fetches them from the customer's node in chunks; unreferenced hashes are
 * refused by the holder; the requester's cap and an offline peer give clear
 * errors.
 *
 * A hostile peer that sends content not matching the requested hash is
 * tested at unit level (tl_blob_chunk_check and tl_blob_stage_commit, the
 * two checks the requester applies to every chunk and to the whole), not
 * with a forged peer process.
 */
#include "nodes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "node/blob.h"
#include "node/blob_repl.h"

static int blob_pack_write(void *data, const char *buf, size_t len)
{
	return tl_buf_add(data, buf, len) == 0 ? 0 : -1;
}

#define PASS        "correct horse battery staple"
#define PERSON_PASS "person passphrase"

/* ------------------------------------------------------------ helpers */

static size_t count_files(const char *dir)
{
	char cmd[4400];
	snprintf(cmd, sizeof cmd, "find '%s' -type f 2>/dev/null | wc -l", dir);
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	if (p) {
		if (fscanf(p, "%zu", &n) != 1)
			n = 0;
		pclose(p);
	}
	return n;
}

/* ------------------------------------------------------------- unit */

struct ufx {
	char *dir;
	struct tl_blobs b;
};

static int usetup(void **state)
{
	struct ufx *x = calloc(1, sizeof *x);
	assert_non_null(x);
	assert_int_equal(tl_init(), 0);
	x->dir = th_tmpdir("blob");
	assert_int_equal(tl_blobs_init(&x->b, x->dir, 1000), 0);
	*state = x;
	return 0;
}

static int uteardown(void **state)
{
	struct ufx *x = *state;
	th_rmtree(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

static void test_put_get_roundtrip(void **state)
{
	struct ufx *x = *state;
	uint8_t data[700], h[32], h2[32], want[32];
	char err[700], out[4400];
	int existed = -1;
	uint64_t size = 0;
	randombytes_buf(data, sizeof data);
	crypto_hash_sha256(want, data, sizeof data);
	assert_int_equal(tl_blob_put_mem(&x->b, data, sizeof data, h, &existed, err, sizeof err),
	                 0);
	assert_memory_equal(h, want, 32);
	assert_int_equal(existed, 0);
	assert_int_equal(tl_blob_has(&x->b, h, &size), 0);
	assert_int_equal(size, sizeof data);
	/* Idempotent: the same content again is the same blob, reported as such. */
	assert_int_equal(tl_blob_put_mem(&x->b, data, sizeof data, h2, &existed, err, sizeof err),
	                 0);
	assert_memory_equal(h2, want, 32);
	assert_int_equal(existed, 1);
	struct tl_blob_info *v = NULL;
	size_t n = 0;
	assert_int_equal(tl_blob_list(&x->b, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(v[0].hash, want, 32);
	assert_int_equal(v[0].size, sizeof data);
	free(v);
	/* From a file too, and out again byte for byte. */
	snprintf(out, sizeof out, "%s/in.bin", x->dir);
	assert_int_equal(th_write_file(out, data, 300), 0);
	assert_int_equal(tl_blob_put_file(&x->b, out, h2, &existed, err, sizeof err), 0);
	crypto_hash_sha256(want, data, 300);
	assert_memory_equal(h2, want, 32);
	snprintf(out, sizeof out, "%s/out.bin", x->dir);
	assert_int_equal(tl_blob_copy_out(&x->b, h, out, &size, err, sizeof err), 0);
	size_t len = 0;
	char *got = th_read_file(out, &len);
	assert_int_equal(len, sizeof data);
	assert_memory_equal(got, data, sizeof data);
	free(got);
	/* The empty blob is a blob. */
	assert_int_equal(tl_blob_put_mem(&x->b, NULL, 0, h2, NULL, err, sizeof err), 0);
	crypto_hash_sha256(want, (const uint8_t *)"", 0);
	assert_memory_equal(h2, want, 32);
	assert_int_equal(tl_blob_verify(&x->b, h2, &size, err, sizeof err), 0);
	assert_int_equal(size, 0);
}

static void test_cap_boundary(void **state)
{
	struct ufx *x = *state;
	uint8_t data[1001], h[32];
	char err[700], path[4400];
	memset(data, 'a', sizeof data);
	/* cap = 1000: exactly 1000 bytes are accepted, 1001 refused. */
	assert_int_equal(tl_blob_put_mem(&x->b, data, 1000, h, NULL, err, sizeof err), 0);
	assert_int_equal(tl_blob_has(&x->b, h, NULL), 0);
	assert_int_equal(tl_blob_put_mem(&x->b, data, 1001, h, NULL, err, sizeof err), TL_ETOOBIG);
	assert_non_null(strstr(err, "cap of 1000 bytes"));
	/* Streaming from a file too; nothing is left behind. */
	snprintf(path, sizeof path, "%s/big", x->dir);
	assert_int_equal(th_write_file(path, data, 1001), 0);
	assert_int_equal(tl_blob_put_file(&x->b, path, h, NULL, err, sizeof err), TL_ETOOBIG);
	assert_int_equal(th_write_file(path, data, 999), 0);
	assert_int_equal(tl_blob_put_file(&x->b, path, h, NULL, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/blobs", x->dir);
	assert_int_equal(count_files(path), 2); /* 1000 and 999 bytes; no staging left */
	/* A download announcing more than the cap is refused before any byte. */
	struct tl_blob_stage s;
	assert_int_equal(tl_blob_stage_begin(&x->b, &s, h, 1001, err, sizeof err), TL_ETOOBIG);
	assert_int_equal(tl_blob_stage_begin(&x->b, &s, h, 1000, err, sizeof err), 0);
	tl_blob_stage_abort(&s);
}

static void test_damaged_detected(void **state)
{
	struct ufx *x = *state;
	uint8_t data[500], h[32];
	char err[700], path[4400], out[4400];
	uint64_t size;
	randombytes_buf(data, sizeof data);
	assert_int_equal(tl_blob_put_mem(&x->b, data, sizeof data, h, NULL, err, sizeof err), 0);
	tl_blob_path(&x->b, h, path, sizeof path);
	/* One bit flipped on disk. */
	data[123] ^= 1;
	assert_int_equal(th_write_file(path, data, sizeof data), 0);
	data[123] ^= 1;
	assert_int_equal(tl_blob_verify(&x->b, h, &size, err, sizeof err), TL_ECORRUPT);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "damaged"));
	/* Never returned: the copy is not created. */
	snprintf(out, sizeof out, "%s/out", x->dir);
	assert_int_equal(tl_blob_copy_out(&x->b, h, out, &size, err, sizeof err), TL_ECORRUPT);
	assert_int_equal(access(out, F_OK), -1);
	/* Putting the good content again repairs it. */
	int existed = -1;
	assert_int_equal(tl_blob_put_mem(&x->b, data, sizeof data, h, &existed, err, sizeof err),
	                 0);
	assert_int_equal(existed, 0);
	assert_int_equal(tl_blob_verify(&x->b, h, &size, err, sizeof err), 0);
	/* A truncated file is damaged too. */
	assert_int_equal(th_write_file(path, data, 10), 0);
	assert_int_equal(tl_blob_verify(&x->b, h, &size, err, sizeof err), TL_ECORRUPT);
}

static void test_staging_invisible(void **state)
{
	struct ufx *x = *state;
	uint8_t data[600], h[32], other[600];
	char err[700], staging[4400];
	struct tl_blob_stage s;
	struct tl_blob_info *v = NULL;
	size_t n = 9;
	randombytes_buf(data, sizeof data);
	crypto_hash_sha256(h, data, sizeof data);
	snprintf(staging, sizeof staging, "%s/blobs/staging", x->dir);

	/* Half written: not a blob, not listed. */
	assert_int_equal(tl_blob_stage_begin(&x->b, &s, h, sizeof data, err, sizeof err), 0);
	assert_int_equal(tl_blob_stage_write(&s, 0, data, 300, err, sizeof err), 0);
	assert_int_equal(tl_blob_has(&x->b, h, NULL), TL_ENOTFOUND);
	assert_int_equal(tl_blob_list(&x->b, &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
	/* Out of order or past the total: refused. */
	assert_int_equal(tl_blob_stage_write(&s, 0, data, 300, err, sizeof err), TL_ERANGE);
	assert_int_equal(tl_blob_stage_write(&s, 300, data, 301, err, sizeof err), TL_ERANGE);
	/* Short: refused at commit, staging removed. */
	assert_int_equal(tl_blob_stage_commit(&x->b, &s, err, sizeof err), TL_ERANGE);
	assert_int_equal(count_files(staging), 0);
	assert_int_equal(tl_blob_has(&x->b, h, NULL), TL_ENOTFOUND);

	/* Whole but different content (a hostile or broken peer): an integrity
	 * failure, nothing stored, staging removed. */
	memcpy(other, data, sizeof other);
	other[599] ^= 0x80;
	assert_int_equal(tl_blob_stage_begin(&x->b, &s, h, sizeof data, err, sizeof err), 0);
	assert_int_equal(tl_blob_stage_write(&s, 0, other, sizeof other, err, sizeof err), 0);
	assert_int_equal(tl_blob_stage_commit(&x->b, &s, err, sizeof err), TL_ECORRUPT);
	assert_non_null(strstr(err, "integrity failure"));
	assert_int_equal(count_files(staging), 0);
	assert_int_equal(tl_blob_has(&x->b, h, NULL), TL_ENOTFOUND);

	/* The right content in two chunks: now it is a blob. */
	assert_int_equal(tl_blob_stage_begin(&x->b, &s, h, sizeof data, err, sizeof err), 0);
	assert_int_equal(tl_blob_stage_write(&s, 0, data, 250, err, sizeof err), 0);
	assert_int_equal(tl_blob_stage_write(&s, 250, data + 250, 350, err, sizeof err), 0);
	assert_int_equal(tl_blob_stage_commit(&x->b, &s, err, sizeof err), 0);
	assert_int_equal(count_files(staging), 0);
	assert_int_equal(tl_blob_verify(&x->b, h, NULL, err, sizeof err), 0);

	/* A crashed download's leftovers are swept. */
	assert_int_equal(tl_blob_stage_begin(&x->b, &s, h, sizeof data, err, sizeof err), 0);
	close(s.fd);
	assert_int_equal(count_files(staging), 1);
	tl_blob_stage_sweep(&x->b);
	assert_int_equal(count_files(staging), 0);
}

/* A stage still open (another process: `tally blob put` while tallyd
 * starts and sweeps) survives the sweep; copy_out never writes through a
 * link planted at a name its temp file could take. */
static void test_sweep_and_links(void **state)
{
	struct ufx *x = *state;
	uint8_t data[400], h[32];
	char err[700], staging[4400], out[4400], lnk[4500], victim[4400];
	struct tl_blob_stage s;
	struct stat st;
	uint64_t size = 0;
	size_t len = 0;
	randombytes_buf(data, sizeof data);
	crypto_hash_sha256(h, data, sizeof data);
	snprintf(staging, sizeof staging, "%s/blobs/staging", x->dir);
	assert_int_equal(tl_blob_stage_begin(&x->b, &s, h, sizeof data, err, sizeof err), 0);
	assert_int_equal(tl_blob_stage_write(&s, 0, data, 100, err, sizeof err), 0);
	tl_blob_stage_sweep(&x->b);
	assert_int_equal(count_files(staging), 1);
	assert_int_equal(tl_blob_stage_write(&s, 100, data + 100, 300, err, sizeof err), 0);
	assert_int_equal(tl_blob_stage_commit(&x->b, &s, err, sizeof err), 0);
	assert_int_equal(tl_blob_verify(&x->b, h, &size, err, sizeof err), 0);
	assert_int_equal(size, sizeof data);
	assert_int_equal(count_files(staging), 0);

	snprintf(victim, sizeof victim, "%s/victim", x->dir);
	assert_int_equal(th_write_file(victim, "precious", 8), 0);
	snprintf(out, sizeof out, "%s/out.pdf", x->dir);
	snprintf(lnk, sizeof lnk, "%s.tmp.%ld", out, (long)getpid());
	assert_int_equal(symlink(victim, lnk), 0);
	assert_int_equal(tl_blob_copy_out(&x->b, h, out, &size, err, sizeof err), 0);
	char *got = th_read_file(victim, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(got, "precious", 8);
	free(got);
	assert_int_equal(lstat(out, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	got = th_read_file(out, &len);
	assert_int_equal(len, sizeof data);
	assert_memory_equal(got, data, sizeof data);
	free(got);
}

/* ------------------------------------------- blob_repl with a fake host */

/* One fake session. Its send can close it the way the node's send_msg does
 * for a peer over its write cap: peer_close -> tl_blob_repl_peer_gone, from
 * inside the send. */
struct fk {
	struct tl_blob_repl *r;
	int peer; /* its address is the session pointer */
	int ctl;  /* its address is the control connection */
	int open, close_on_send, sends, lines;
	uint8_t remote[32];
	char last[2048];
};
static struct fk *g_fake;

static int fk_send(void *peer, const uint8_t *msg, size_t len)
{
	(void)msg;
	(void)len;
	if (!g_fake->open)
		return TL_EIO;
	g_fake->sends++;
	if (g_fake->close_on_send) {
		g_fake->open = 0;
		tl_blob_repl_peer_gone(g_fake->r, peer);
		return TL_ETOOBIG;
	}
	return 0;
}

static size_t fk_queued(void *peer)
{
	(void)peer;
	return 0;
}

static void fk_info(void *peer, struct tl_blob_peer *out)
{
	(void)peer;
	out->book = "acme";
	out->remote = g_fake->remote;
	out->addr = "fake:1";
}

static void *fk_find(void *node, const char *book, const uint8_t remote[32])
{
	(void)node;
	(void)book;
	(void)remote;
	return g_fake->open ? &g_fake->peer : NULL;
}

static void fk_line(void *ctl, const char *line)
{
	(void)ctl;
	g_fake->lines++;
	snprintf(g_fake->last, sizeof g_fake->last, "%s", line);
}

static int fk_local(void *node, const uint8_t pk[32])
{
	(void)node;
	(void)pk;
	return 0;
}

static void fk_log(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

static void fk_close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* A send that closes the session re-enters the module (peer_gone) while it
 * is using the serve or the download being closed: neither may be freed
 * under it (a use-after-free, caught by the ASan build). */
static void test_repl_close_on_send(void **state)
{
	struct ufx *x = *state;
	struct fk k = {.open = 1, .close_on_send = 1};
	struct tl_keypair kp, peer;
	struct tl_store *st = NULL;
	struct tl_feed f = {0};
	uint8_t seed[32], ref[32], unref[32];
	char err[256], hex[TL_BLOB_HEX + 1], dir[4400];
	uv_loop_t loop;

	g_fake = &k;
	memset(seed, 7, sizeof seed);
	assert_int_equal(tl_key_from_seed(&kp, seed), 0);
	memset(seed, 9, sizeof seed);
	assert_int_equal(tl_key_from_seed(&peer, seed), 0);
	memcpy(k.remote, peer.pk, 32);
	snprintf(dir, sizeof dir, "%s/store", x->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(tl_store_open(&st, dir, 0, 0, err, sizeof err), 0);
	struct tl_book b = {.name = "acme"};
	memcpy(b.pk, kp.pk, 32);
	assert_int_equal(tl_store_book_add(st, &b), 0);
	tl_channel_id(f.o.channel, kp.pk, peer.pk, "default", 7);
	tl_origin_format(f.origin, kp.pk, f.o.channel);
	memcpy(f.peer, peer.pk, 32);
	strcpy(f.book, "acme");
	strcpy(f.label, "default");
	f.flags = TL_FEED_OWN;
	assert_int_equal(tl_store_feed_add(st, &f), 0);
	/* One own entry references blob ref (not stored here). */
	memset(ref, 0x5a, 32);
	memset(unref, 0xa5, 32);
	tl_hex_encode(hex, ref, 32);
	{
		struct tl_buf body;
		msgpack_packer pk;
		size_t done = 0;
		tl_buf_init(&body, 256);
		msgpack_packer_init(&pk, &body, blob_pack_write);
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str_with_body(&pk, "blobs", 5);
		msgpack_pack_array(&pk, 1);
		msgpack_pack_str_with_body(&pk, hex, TL_BLOB_HEX);
		struct tl_item it = {"statement", 9, body.data, body.len};
		assert_int_equal(tl_feed_append_local(st, f.origin, &kp, &it, 1, 1,
		                                      1700000000000ull, NULL, &done, NULL, NULL),
		                 0);
		assert_int_equal(done, 1);
		tl_buf_release(&body);
	}

	assert_int_equal(uv_loop_init(&loop), 0);
	struct tl_blob_host h = {
	        .node = &k,
	        .loop = &loop,
	        .store = st,
	        .blobs = x->b,
	        .wq_max = 1u << 20,
	        .send = fk_send,
	        .queued = fk_queued,
	        .peer_info = fk_info,
	        .find_peer = fk_find,
	        .ctl_line = fk_line,
	        .local_book = fk_local,
	        .log = fk_log,
	};
	assert_int_equal(tl_blob_repl_new(&k.r, &h), 0);

	/* Serving: a want for a hash we never disclosed is answered blob.none;
	 * that send closes the session. */
	{
		struct tl_buf m;
		msgpack_packer pk;
		msgpack_unpacked u;
		tl_buf_init(&m, 128);
		msgpack_packer_init(&pk, &m, blob_pack_write);
		msgpack_pack_array(&pk, 3);
		msgpack_pack_str_with_body(&pk, "blob.want", 9);
		msgpack_pack_bin_with_body(&pk, unref, 32);
		msgpack_pack_uint64(&pk, 0);
		msgpack_unpacked_init(&u);
		assert_int_equal(msgpack_unpack_next(&u, (const char *)m.data, m.len, NULL),
		                 MSGPACK_UNPACK_SUCCESS);
		assert_int_equal(tl_blob_repl_msg(k.r, &k.peer, u.data.via.array.ptr, 3), 0);
		msgpack_unpacked_destroy(&u);
		tl_buf_release(&m);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(k.sends, 1);
	assert_int_equal(k.open, 0);

	/* Fetching: the first want to the only candidate closes its session;
	 * the download moves on (no one else) and answers "offline". */
	k.open = 1;
	k.sends = 0;
	json_t *id = json_integer(7), *req = json_pack("{s:s}", "hash", hex);
	tl_blob_repl_ctl_get(k.r, &k.ctl, id, req);
	json_decref(id);
	json_decref(req);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(k.sends, 1);
	assert_int_equal(k.open, 0);
	assert_int_equal(k.lines, 1);
	assert_non_null(strstr(k.last, "\"ok\":false"));
	assert_non_null(strstr(k.last, "\"reason\":\"offline\""));
	assert_non_null(strstr(k.last, "closed during the transfer"));
	assert_int_equal(tl_blob_has(&x->b, ref, NULL), TL_ENOTFOUND);

	uv_walk(&loop, fk_close_walk, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	tl_blob_repl_free(k.r);
	assert_int_equal(uv_loop_close(&loop), 0);
	tl_store_close(st);
	g_fake = NULL;
}

static void test_chunk_check(void **state)
{
	uint8_t h[32], g[32];
	char why[256];
	const uint64_t C = TL_BLOB_CHUNK, cap = 20000000;
	(void)state;
	memset(h, 1, 32);
	memset(g, 2, 32);
	/* First chunk of a 1.5 MB blob: full chunk. */
	assert_int_equal(tl_blob_chunk_check(h, 0, 0, 0, cap, h, 0, 1500000, C, why, sizeof why),
	                 0);
	/* Wrong hash. */
	assert_int_equal(tl_blob_chunk_check(h, 0, 0, 0, cap, g, 0, 1500000, C, why, sizeof why),
	                 TL_EINVAL);
	/* Total over the cap: cap accepted, cap + 1 refused. */
	assert_int_equal(tl_blob_chunk_check(h, 0, 0, 0, cap, h, 0, cap, C, why, sizeof why), 0);
	assert_int_equal(tl_blob_chunk_check(h, 0, 0, 0, cap, h, 0, cap + 1, C, why, sizeof why),
	                 TL_ETOOBIG);
	/* Total changed between chunks. */
	assert_int_equal(
	        tl_blob_chunk_check(h, C, 1, 1500000, cap, h, C, 1500001, C, why, sizeof why),
	        TL_ERANGE);
	/* Out of order: a skipped or repeated offset. */
	assert_int_equal(
	        tl_blob_chunk_check(h, C, 1, 1500000, cap, h, 2 * C, 1500000, C, why, sizeof why),
	        TL_ERANGE);
	assert_int_equal(
	        tl_blob_chunk_check(h, C, 1, 1500000, cap, h, 0, 1500000, C, why, sizeof why),
	        TL_ERANGE);
	/* The last chunk has exactly the rest; one byte more or less is refused. */
	uint64_t last = 5 * C, rest = 1500000 - last;
	assert_int_equal(tl_blob_chunk_check(h, last, 1, 1500000, cap, h, last, 1500000,
	                                     (size_t)rest, why, sizeof why),
	                 0);
	assert_int_equal(tl_blob_chunk_check(h, last, 1, 1500000, cap, h, last, 1500000,
	                                     (size_t)rest + 1, why, sizeof why),
	                 TL_ERANGE);
	assert_int_equal(tl_blob_chunk_check(h, last, 1, 1500000, cap, h, last, 1500000,
	                                     (size_t)rest - 1, why, sizeof why),
	                 TL_ERANGE);
	/* A short middle chunk is refused. */
	assert_int_equal(
	        tl_blob_chunk_check(h, 0, 0, 0, cap, h, 0, 1500000, C - 1, why, sizeof why),
	        TL_ERANGE);
	/* The empty blob: one chunk of 0 bytes at offset 0. */
	assert_int_equal(tl_blob_chunk_check(h, 0, 0, 0, cap, h, 0, 0, 0, why, sizeof why), 0);
}

static void test_body_refs(void **state)
{
	char hex[65], other[65], err[256];
	uint8_t h[32];
	(void)state;
	memset(h, 0xab, 32);
	tl_hex_encode(hex, h, 32);
	memset(h, 0xcd, 32);
	tl_hex_encode(other, h, 32);
	struct {
		const char *fmt;
		int refs;
	} cases[] = {
	        {"{\"lines\":[{\"doc\":\"A\",\"blobs\":[\"%s\"]}]}", 1},
	        {"{\"blobs\":[\"x\",\"%s\"]}", 1},
	        {"{\"note\":\"%s\"}", 0},                   /* the hex, but not in "blobs" */
	        {"{\"blobs\":\"%s\"}", 0},                  /* "blobs" not an array */
	        {"{\"lines\":[{\"blobs\":[\"%s0\"]}]}", 0}, /* a longer string */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char js[512];
		snprintf(js, sizeof js, cases[i].fmt, hex);
		json_t *j = json_loads(js, 0, NULL);
		assert_non_null(j);
		struct tl_buf mp;
		tl_buf_init(&mp, 4096);
		assert_int_equal(tl_json_to_mp(j, &mp, err, sizeof err), 0);
		assert_int_equal(tl_blob_body_refs(mp.data, mp.len, hex), cases[i].refs);
		assert_int_equal(tl_blob_body_refs(mp.data, mp.len, other), 0);
		tl_buf_release(&mp);
		json_decref(j);
	}
}

/* -------------------------------------------------------- processes */

struct node {
	char name[32];
	char home[4096];
	char log[4200];
	char conf[4200];
	char home_env[4200];
	char pkhex[65];
	char addr[64];
	pid_t pid;
};

struct fx {
	char *dir;
	struct node sup, cus;
	struct th_run r;
	char sup_origin[128], cus_origin[128], ch[33], leaf[65];
};

static int tally(struct fx *x, struct node *nd, const char *const *argv)
{
	const char *env[] = {nd->home_env, "TALLY_PASSPHRASE=" PASS,
	                     "TALLY_PERSON_PASSPHRASE=" PERSON_PASS, NULL};
	return th_tally_env(&x->r, env, argv, 300);
}

static void tally_ok(struct fx *x, struct node *nd, const char *const *argv, char *out, size_t cap)
{
	int rc = tally(x, nd, argv);
	if (rc != 0)
		fail_msg("tally %s %s on %s: exit %d: %s", argv[1], argv[2] ? argv[2] : "",
		         nd->name, rc, x->r.err);
	if (out) {
		size_t n = strcspn(x->r.out, "\n");
		assert_true(n < cap);
		memcpy(out, x->r.out, n);
		out[n] = 0;
	}
}

static int log_has(const struct node *nd, const char *needle)
{
	char *t = th_read_file(nd->log, NULL);
	int f = t && strstr(t, needle);
	free(t);
	return f;
}

static void node_init(struct fx *x, struct node *nd, const char *name)
{
	snprintf(nd->name, sizeof nd->name, "%s", name);
	snprintf(nd->home, sizeof nd->home, "%s/%s", x->dir, name);
	snprintf(nd->log, sizeof nd->log, "%s/%s.log", x->dir, name);
	snprintf(nd->conf, sizeof nd->conf, "%s/%s.conf", x->dir, name);
	snprintf(nd->home_env, sizeof nd->home_env, "TALLY_HOME=%s", nd->home);
	const char *a[] = {"tally", "init", "--book", name, NULL};
	tally_ok(x, nd, a, nd->pkhex, sizeof nd->pkhex);
	assert_int_equal(strlen(nd->pkhex), 64);
}

/* Starts tallyd with extra config lines; listen NULL = a fresh port. */
static void node_start(struct node *nd, const char *listen, const char *extra)
{
	char settings[512], path[4200];
	snprintf(settings, sizeof settings, "handshake_timeout_ms = 600000\n%s",
	         extra ? extra : "");
	assert_int_equal(th_write_file(nd->conf, settings, strlen(settings)), 0);
	snprintf(path, sizeof path, "%s/tallyd.addr", nd->home);
	unlink(path);
	const char *at = listen ? listen : "127.0.0.1:0";
	const char *argv[] = {"tallyd",   "--config", nd->conf, "--home", nd->home,
	                      "--listen", at,         "--log",  "debug",  NULL};
	nd->pid = th_spawn_tallyd(nd->log, NULL, PASS, argv);
	if (th_wait_addr(&nd->pid, path, nd->addr, sizeof nd->addr, th_limit(30000), TH_POLL_MS,
	                 NULL) != 1) {
		nd->pid = 0;
		fail_msg("tallyd %s did not start:\n%s", nd->name, th_file_tail(nd->log));
	}
}

/* SIGTERM; the wait status (-1 if it had to be killed). */
static int node_stop(struct node *nd)
{
	int st = th_stop_pid(nd->pid, SIGTERM, th_limit(30000));
	nd->pid = 0;
	return st;
}

/* Polls `tally feed log ORIGIN` on nd until it mentions needle. */
static void wait_feed(struct fx *x, struct node *nd, const char *origin, const char *needle)
{
	uint64_t end = th_mono_ms() + th_limit(30000);
	const char *a[] = {"tally", "--json", "feed", "log", origin, NULL};
	for (;;) {
		if (tally(x, nd, a) == 0 && strstr(x->r.out, needle))
			return;
		if (th_mono_ms() > end)
			fail_msg("'%s' never reached %s's copy of %s:\n%s", needle, nd->name,
			         origin, th_file_tail(nd->log));
		th_nap(100);
	}
}

static int esetup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	char line[512];
	assert_non_null(x);
	assert_int_equal(tl_init(), 0);
	x->dir = th_tmpdir("blob-e2e");
	node_init(x, &x->sup, "sup");
	node_init(x, &x->cus, "cus");
	*state = x;
	node_start(&x->sup, NULL, NULL);
	node_start(&x->cus, NULL, NULL);
	char peer[256], po[128];
	snprintf(peer, sizeof peer, "%s@%s", x->cus.pkhex, x->cus.addr);
	const char *a1[] = {"tally", "channel", "open", "--book", "sup", "--peer", peer, NULL};
	tally_ok(x, &x->sup, a1, x->sup_origin, sizeof x->sup_origin);
	snprintf(peer, sizeof peer, "%s@%s", x->sup.pkhex, x->sup.addr);
	const char *a2[] = {"tally", "channel", "open", "--book", "cus", "--peer", peer, NULL};
	tally_ok(x, &x->cus, a2, x->cus_origin, sizeof x->cus_origin);
	const char *slash = strrchr(x->sup_origin, '/');
	assert_non_null(slash);
	snprintf(x->ch, sizeof x->ch, "%s", slash + 1);
	(void)po;

	const char *a3[] = {"tally",      "statement",   "import", "examples/statement.csv",
	                    "--channel",  x->sup_origin, "--id",   "ST-1",
	                    "--currency", "CNY",         "--from", "2026-11-01",
	                    "--to",       "2026-11-30",  NULL};
	tally_ok(x, &x->sup, a3, line, sizeof line);
	const char *sp = strchr(line, ' ');
	assert_non_null(sp);
	snprintf(x->leaf, sizeof x->leaf, "%s", sp + 1);
	wait_feed(x, &x->cus, x->sup_origin, "statement");

	char alice[65], key[4300];
	const char *a4[] = {"tally", "key", "new", "--name", "alice", NULL};
	tally_ok(x, &x->cus, a4, alice, sizeof alice);
	const char *a5[] = {"tally", "key", "grant",  "--book",   "cus",    "--channel", x->ch,
	                    "--key", alice, "--role", "approver", "--name", "Alice",     NULL};
	tally_ok(x, &x->cus, a5, line, sizeof line);
	(void)key;
	return 0;
}

static int eteardown(void **state)
{
	struct fx *x = *state;
	node_stop(&x->sup);
	node_stop(&x->cus);
	th_run_free(&x->r);
	th_tmpdir_done(x->dir);
	free(x);
	return 0;
}

static void random_file(const char *path, size_t n, uint8_t hash[32], char hex[65])
{
	uint8_t *d = malloc(n ? n : 1);
	assert_non_null(d);
	randombytes_buf(d, n);
	assert_int_equal(th_write_file(path, d, n), 0);
	crypto_hash_sha256(hash, d, n);
	tl_hex_encode(hex, hash, 32);
	free(d);
}

static int same_files(const char *a, const char *b)
{
	size_t la = 0, lb = 0;
	char *da = th_read_file(a, &la), *db = th_read_file(b, &lb);
	int same = da && db && la == lb && memcmp(da, db, la) == 0;
	free(da);
	free(db);
	return same;
}

static void test_e2e_voucher(void **state)
{
	struct fx *x = *state;
	char big[4300], small[4300], out[4300], key[4300], line[512];
	char hbig[65], hsmall[65];
	uint8_t h[32];
	snprintf(big, sizeof big, "%s/voucher.pdf", x->dir);
	snprintf(small, sizeof small, "%s/delivery-note.txt", x->dir);
	random_file(big, 1500000, h, hbig); /* six chunks, the last one partial */
	random_file(small, 5000, h, hsmall);
	snprintf(key, sizeof key, "%s/people/alice.key", x->cus.home);
	char att1[4400], att2[4400];
	snprintf(att1, sizeof att1, "INV-88017=%s", big);
	snprintf(att2, sizeof att2, "CN-0091=%s", small);
	const char *d[] = {
	        "tally",  "dispute",   x->leaf,    "--channel", x->ch,       "--key",
	        key,      "--balance", "-280000",  "--line",    "INV-88017", "--their-amount",
	        "400000", "--reason",  "price",    "--line",    "CN-0091",   "--their-amount",
	        "-45000", "--reason",  "quantity", "--attach",  att1,        "--attach",
	        att2,     NULL};
	tally_ok(x, &x->cus, d, line, sizeof line);
	/* The dispute names each blob in its line, and reaches the supplier. */
	wait_feed(x, &x->sup, x->cus_origin, hbig);
	wait_feed(x, &x->sup, x->cus_origin, hsmall);

	/* Not on the supplier's node yet: fetched from the customer's. */
	snprintf(out, sizeof out, "%s/out.pdf", x->dir);
	const char *g[] = {"tally", "blob", "get", hbig, "-o", out, NULL};
	if (tally(x, &x->sup, g) != 0) {
		/* th_file_tail returns one static buffer: print the two logs apart. */
		fprintf(stderr, "sup log:\n%s\n", th_file_tail(x->sup.log));
		fail_msg("blob get: exit %d: %s\ncus log:\n%s", x->r.status, x->r.err,
		         th_file_tail(x->cus.log));
	}
	assert_true(same_files(big, out));
	assert_non_null(strstr(x->r.err, "MB")); /* progress for a big blob */
	assert_true(log_has(&x->cus, "serving blob"));
	assert_true(log_has(&x->sup, "stored blob"));
	/* Now local: served from the supplier's own store. */
	unlink(out);
	assert_int_equal(tally(x, &x->sup, g), 0);
	assert_true(same_files(big, out));
	assert_null(strstr(x->r.out, "fetched"));
	const char *l[] = {"tally", "blob", "list", NULL};
	assert_int_equal(tally(x, &x->sup, l), 0);
	assert_non_null(strstr(x->r.out, hbig));
	assert_null(strstr(x->r.out, hsmall));

	/* The small one too. */
	snprintf(out, sizeof out, "%s/out.txt", x->dir);
	const char *g2[] = {"tally", "blob", "get", hsmall, "-o", out, NULL};
	assert_int_equal(tally(x, &x->sup, g2), 0);
	assert_true(same_files(small, out));
}

/* The holder serves only blobs its own feed references in that channel. */
static void test_e2e_refused(void **state)
{
	struct fx *x = *state;
	char secret[4300], out[4300], body[256], line[512], hs[65], hn[65];
	uint8_t h[32];
	snprintf(secret, sizeof secret, "%s/secret.txt", x->dir);
	random_file(secret, 3000, h, hs);
	/* The customer holds it but never referenced it. */
	const char *p[] = {"tally", "blob", "put", secret, NULL};
	tally_ok(x, &x->cus, p, line, sizeof line);
	assert_string_equal(line, hs);
	/* A hash referenced nowhere: nobody to ask. */
	memset(h, 0x5a, 32);
	tl_hex_encode(hn, h, 32);
	snprintf(out, sizeof out, "%s/out", x->dir);
	const char *g0[] = {"tally", "blob", "get", hn, "-o", out, NULL};
	assert_int_equal(tally(x, &x->sup, g0), 1);
	assert_non_null(strstr(x->r.err, "not referenced"));
	/* The supplier references it in its own feed and asks: the customer's
	 * node refuses, because the customer's feed never disclosed it. */
	snprintf(body, sizeof body, "{\"text\":\"please send\",\"blobs\":[\"%s\"]}", hs);
	const char *a[] = {"tally",     "feed",   "append", x->sup_origin, "--kind",
	                   "x.blobref", "--body", body,     NULL};
	tally_ok(x, &x->sup, a, line, sizeof line);
	const char *g[] = {"tally", "blob", "get", hs, "-o", out, NULL};
	assert_int_equal(tally(x, &x->sup, g), 1);
	assert_non_null(strstr(x->r.err, "not_referenced"));
	assert_int_equal(access(out, F_OK), -1);
	assert_true(log_has(&x->cus, "refused (not_referenced)"));
	const char *l[] = {"tally", "blob", "list", NULL};
	assert_int_equal(tally(x, &x->sup, l), 0);
	assert_null(strstr(x->r.out, hs));

	/* The counterparty offline: a clear environment error (exit 3). */
	node_stop(&x->cus);
	assert_int_equal(tally(x, &x->sup, g), 3);
	assert_non_null(strstr(x->r.err, "offline"));
}

/* The requester's cap (blob_max in tallyd.conf) is applied to what peers
 * announce: a blob over it is refused, within it fetched. */
static void test_e2e_cap(void **state)
{
	struct fx *x = *state;
	char big[4300], out[4300], key[4300], line[512], hbig[65], addr[64];
	uint8_t h[32];
	snprintf(big, sizeof big, "%s/scan.pdf", x->dir);
	random_file(big, 600000, h, hbig);
	snprintf(key, sizeof key, "%s/people/alice.key", x->cus.home);
	const char *d[] = {
	        "tally", "dispute",   x->leaf,   "--channel", x->ch,       "--key",
	        key,     "--balance", "1",       "--line",    "INV-88017", "--their-amount",
	        "1",     "--reason",  "quality", "--attach",  big,         NULL};
	tally_ok(x, &x->cus, d, line, sizeof line);
	wait_feed(x, &x->sup, x->cus_origin, hbig);
	/* Restart the supplier with a cap below the blob's size. */
	snprintf(addr, sizeof addr, "%s", x->sup.addr);
	/* A clean stop (exit 0): the blob module holds nothing that keeps the
	 * loop from ending. */
	int st = node_stop(&x->sup);
	assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	node_start(&x->sup, addr, "blob_max = 599999\n");
	snprintf(out, sizeof out, "%s/out.pdf", x->dir);
	const char *g[] = {"tally", "blob", "get", hbig, "-o", out, NULL};
	uint64_t end = th_mono_ms() + th_limit(30000);
	int rc;
	/* Until the session is back, the answer is "offline" (3). */
	while ((rc = tally(x, &x->sup, g)) == 3 && th_mono_ms() < end)
		th_nap(200);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(x->r.err, "over the cap"));
	assert_int_equal(access(out, F_OK), -1);
	/* The exact size is within a cap of exactly that size. */
	node_stop(&x->sup);
	node_start(&x->sup, addr, "blob_max = 600000\n");
	end = th_mono_ms() + th_limit(30000);
	while ((rc = tally(x, &x->sup, g)) == 3 && th_mono_ms() < end)
		th_nap(200);
	if (rc != 0)
		fail_msg("blob get: exit %d: %s", rc, x->r.err);
	assert_true(same_files(big, out));
}

/* ------------------------------------------------------- hostile peer */

/* A fake customer node: it holds the customer's book key, dials the
 * supplier's node, completes the handshake, and answers blob.want with
 * chunks that are wrong in a chosen way. Runs in a thread; no asserts. */
enum lie { LIE_CONTENT, LIE_SHORT };

struct fake {
	char addr[64];
	struct tl_keypair kp;
	uint8_t target[32];
	const uint8_t *data;
	size_t len;
	enum lie lie;
	volatile int stop;
	int wants; /* blob.want messages answered */
	int rc;
};

/* Reads more into in within ms: > 0, 0 closed, -1 timeout. */
static ssize_t fk_recv(int fd, struct tl_buf *in, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int pr = poll(&p, 1, ms);
	if (pr <= 0 || tl_buf_reserve(in, 65536) != 0)
		return -1;
	ssize_t r = recv(fd, in->data + in->len, 65536, 0);
	if (r <= 0)
		return 0;
	in->len += (size_t)r;
	return r;
}

static int fk_pack(void *data, const char *buf, size_t len)
{
	return tl_buf_add(data, buf, len) == 0 ? 0 : -1;
}

static void *fake_run(void *arg)
{
	struct fake *fk = arg;
	struct tl_hs *hs = NULL;
	struct tl_session sess;
	struct tl_buf in, out, pt;
	struct sockaddr_in sa;
	int fd = -1, have = 0;
	fk->rc = -1;
	tl_buf_init(&in, TL_FRAME_MAX + TL_FRAME_OVERHEAD + (1u << 20));
	tl_buf_init(&out, TL_FRAME_MAX + TL_FRAME_OVERHEAD);
	tl_buf_init(&pt, TL_FRAME_MAX);
	const char *colon = strrchr(fk->addr, ':');
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto done;
	uint8_t hello[36];
	memcpy(hello, "TLYH", 4);
	memcpy(hello + 4, fk->target, 32);
	if (tl_hs_new(&hs, TL_HS_INITIATOR, &fk->kp, fk->target) != 0 ||
	    tl_hs_start(hs, &out) != 0 || th_send_all(fd, hello, 36) != 0 ||
	    th_send_all(fd, out.data, out.len) != 0)
		goto done;
	while (!tl_hs_done(hs)) {
		size_t used = 0;
		tl_buf_reset(&out);
		if (in.len) {
			if (tl_hs_step(hs, in.data, in.len, &used, &out) != 0)
				goto done;
			memmove(in.data, in.data + used, in.len - used);
			in.len -= used;
			if (out.len && th_send_all(fd, out.data, out.len) != 0)
				goto done;
			if (tl_hs_done(hs))
				break;
		}
		if (fk_recv(fd, &in, 10000) <= 0)
			goto done;
	}
	if (tl_hs_session(hs, &sess) != 0)
		goto done;
	have = 1;
	while (!fk->stop) {
		size_t used = 0;
		tl_buf_reset(&pt);
		if (tl_session_open(&sess, in.data, in.len, &used, &pt) != 0)
			goto done;
		if (!used) {
			ssize_t r = fk_recv(fd, &in, 100);
			if (r == 0)
				goto done;
			continue;
		}
		memmove(in.data, in.data + used, in.len - used);
		in.len -= used;
		msgpack_unpacked u;
		size_t off = 0;
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, (const char *)pt.data, pt.len, &off) ==
		            MSGPACK_UNPACK_SUCCESS &&
		    u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 3 &&
		    u.data.via.array.ptr[0].type == MSGPACK_OBJECT_STR &&
		    u.data.via.array.ptr[0].via.str.size == 9 &&
		    memcmp(u.data.via.array.ptr[0].via.str.ptr, "blob.want", 9) == 0) {
			const msgpack_object *a = u.data.via.array.ptr;
			uint64_t o = a[2].via.u64;
			size_t n = fk->len - o < TL_BLOB_CHUNK ? fk->len - o : TL_BLOB_CHUNK;
			uint8_t *chunk = malloc(n ? n : 1);
			memcpy(chunk, fk->data + o, n);
			if (fk->lie == LIE_CONTENT && o + n == fk->len)
				chunk[n - 1] ^= 1; /* right size, wrong last byte */
			if (fk->lie == LIE_SHORT)
				n--; /* one byte short */
			struct tl_buf m, f;
			msgpack_packer pk;
			tl_buf_init(&m, TL_FRAME_MAX);
			tl_buf_init(&f, TL_FRAME_MAX + TL_FRAME_OVERHEAD);
			msgpack_packer_init(&pk, &m, fk_pack);
			msgpack_pack_array(&pk, 5);
			msgpack_pack_str_with_body(&pk, "blob.chunk", 10);
			msgpack_pack_bin_with_body(&pk, a[1].via.bin.ptr, 32);
			msgpack_pack_uint64(&pk, o);
			msgpack_pack_uint64(&pk, fk->len);
			msgpack_pack_bin_with_body(&pk, chunk, n);
			int ok = tl_session_seal(&sess, m.data, m.len, &f) == 0 &&
			         th_send_all(fd, f.data, f.len) == 0;
			tl_buf_release(&m);
			tl_buf_release(&f);
			free(chunk);
			fk->wants++;
			if (!ok) {
				msgpack_unpacked_destroy(&u);
				goto done;
			}
		}
		msgpack_unpacked_destroy(&u);
	}
	fk->rc = 0;
done:
	if (hs)
		tl_hs_free(hs);
	if (have)
		tl_session_wipe(&sess);
	if (fd >= 0)
		close(fd);
	tl_buf_release(&in);
	tl_buf_release(&out);
	tl_buf_release(&pt);
	return NULL;
}

/* A counterparty that sends content not matching the hash, or a chunk of
 * the wrong size: caught, logged with the peer, nothing stored. */
static void test_e2e_hostile(void **state)
{
	struct fx *x = *state;
	char file[4300], out[4300], key[4300], line[512], hex[65], path[4400];
	uint8_t h[32];
	snprintf(file, sizeof file, "%s/invoice-scan.pdf", x->dir);
	random_file(file, 600000, h, hex); /* chunks of 256 KiB, 256 KiB, 88 KiB */
	snprintf(key, sizeof key, "%s/people/alice.key", x->cus.home);
	const char *d[] = {
	        "tally", "dispute",   x->leaf,   "--channel", x->ch,       "--key",
	        key,     "--balance", "1",       "--line",    "INV-88017", "--their-amount",
	        "1",     "--reason",  "quality", "--attach",  file,        NULL};
	tally_ok(x, &x->cus, d, line, sizeof line);
	wait_feed(x, &x->sup, x->cus_origin, hex);
	/* The real customer node goes away; the fake takes its place. */
	node_stop(&x->cus);
	struct fake fk;
	memset(&fk, 0, sizeof fk);
	snprintf(fk.addr, sizeof fk.addr, "%s", x->sup.addr);
	snprintf(path, sizeof path, "%s/keys/cus.key", x->cus.home);
	assert_int_equal(tl_keyfile_read(path, PASS, strlen(PASS), &fk.kp), 0);
	assert_int_equal(th_unhex(fk.target, 32, x->sup.pkhex), 32);
	size_t flen = 0;
	char *fdata = th_read_file(file, &flen);
	assert_non_null(fdata);
	fk.data = (const uint8_t *)fdata;
	fk.len = flen;
	snprintf(out, sizeof out, "%s/out.pdf", x->dir);
	const char *g[] = {"tally", "blob", "get", hex, "-o", out, NULL};
	struct tl_blobs b;
	assert_int_equal(tl_blobs_init(&b, x->sup.home, 0), 0);
	char staging[4400];
	snprintf(staging, sizeof staging, "%s/blobs/staging", x->sup.home);

	for (int mode = 0; mode < 2; mode++) {
		pthread_t t;
		fk.lie = mode == 0 ? LIE_CONTENT : LIE_SHORT;
		fk.stop = 0;
		fk.wants = 0;
		assert_int_equal(pthread_create(&t, NULL, fake_run, &fk), 0);
		uint64_t end = th_mono_ms() + th_limit(30000);
		int rc;
		while ((rc = tally(x, &x->sup, g)) == 3 && th_mono_ms() < end)
			th_nap(100); /* until the fake's session is open */
		fk.stop = 1;
		pthread_join(t, NULL);
		assert_int_equal(rc, 1);
		assert_true(fk.wants >= 1);
		if (mode == 0) {
			assert_int_equal(fk.wants, 3); /* the whole, then the hash is checked */
			assert_non_null(strstr(x->r.err, "integrity failure"));
			assert_true(
			        log_has(&x->sup, "integrity failure: content received for blob"));
		} else {
			assert_int_equal(fk.wants, 1); /* refused at the first chunk */
			assert_non_null(strstr(x->r.err, "sent a bad chunk"));
			assert_true(log_has(&x->sup, "expected 262144"));
		}
		assert_int_equal(access(out, F_OK), -1);
		assert_int_equal(tl_blob_has(&b, h, NULL), TL_ENOTFOUND);
		assert_int_equal(count_files(staging), 0);
	}
	free(fdata);
	tl_key_wipe(&fk.kp);
}

/* ------------------------------------------------------------ the CLI */

static void test_cli_errors(void **state)
{
	struct fx *x = *state;
	char f[4300], hex[65];
	uint8_t h[32];
	/* Usage errors: 2. */
	const char *a1[] = {"tally", "blob", "get", "ABCD", "-o", "x", NULL};
	assert_int_equal(tally(x, &x->sup, a1), 2);
	assert_non_null(strstr(x->r.err, "not a blob hash"));
	memset(h, 7, 32);
	tl_hex_encode(hex, h, 32);
	const char *a2[] = {"tally", "blob", "get", hex, NULL};
	assert_int_equal(tally(x, &x->sup, a2), 2);
	const char *a3[] = {"tally", "blob", "frob", NULL};
	assert_int_equal(tally(x, &x->sup, a3), 2);
	/* A missing file: 3; over the cap: 1. */
	const char *a4[] = {"tally", "blob", "put", "/nonexistent/voucher.pdf", NULL};
	assert_int_equal(tally(x, &x->sup, a4), 3);
	assert_non_null(strstr(x->r.err, "/nonexistent/voucher.pdf"));
	snprintf(f, sizeof f, "%s/ten", x->dir);
	assert_int_equal(th_write_file(f, "0123456789", 10), 0);
	const char *a5[] = {"tally", "blob", "put", f, "--max", "9", NULL};
	assert_int_equal(tally(x, &x->sup, a5), 1);
	assert_non_null(strstr(x->r.err, "cap of 9 bytes"));
	const char *a6[] = {"tally", "blob", "put", f, "--max", "10", NULL};
	assert_int_equal(tally(x, &x->sup, a6), 0);
	/* --json output is JSON whatever the file name holds. */
	{
		char qout[4400];
		crypto_hash_sha256(h, (const uint8_t *)"0123456789", 10);
		tl_hex_encode(hex, h, 32);
		snprintf(qout, sizeof qout, "%s/a \"quoted\" \\name.pdf", x->dir);
		const char *gq[] = {"tally", "blob", "get", hex, "-o", qout, "--json", NULL};
		assert_int_equal(tally(x, &x->sup, gq), 0);
		json_t *j = json_loads(x->r.out, 0, NULL);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "file")), qout);
		assert_int_equal(json_integer_value(json_object_get(j, "size")), 10);
		json_decref(j);
	}
	/* --attach with several lines must name the line. */
	char key[4300];
	snprintf(key, sizeof key, "%s/people/alice.key", x->cus.home);
	const char *d[] = {
	        "tally", "dispute",   x->leaf, "--channel", x->ch,       "--key",
	        key,     "--balance", "1",     "--line",    "INV-88017", "--their-amount",
	        "1",     "--reason",  "price", "--line",    "CN-0091",   "--their-amount",
	        "1",     "--reason",  "price", "--attach",  f,           NULL};
	assert_int_equal(tally(x, &x->cus, d), 2);
	assert_non_null(strstr(x->r.err, "DOC=FILE"));
	/* A damaged local blob is reported with its path, exit 1. */
	char path[4400], out[4300];
	struct tl_blobs b;
	uint8_t hh[32];
	crypto_hash_sha256(hh, (const uint8_t *)"0123456789", 10);
	tl_hex_encode(hex, hh, 32);
	assert_int_equal(tl_blobs_init(&b, x->sup.home, 0), 0);
	tl_blob_path(&b, hh, path, sizeof path);
	assert_int_equal(th_write_file(path, "0123456780", 10), 0);
	snprintf(out, sizeof out, "%s/o", x->dir);
	const char *g[] = {"tally", "blob", "get", hex, "-o", out, NULL};
	assert_int_equal(tally(x, &x->sup, g), 1);
	assert_non_null(strstr(x->r.err, path));
	assert_non_null(strstr(x->r.err, "damaged"));
	assert_int_equal(access(out, F_OK), -1);
}

/* blob_max in tallyd.conf: a bad value stops the start with file and line. */
static void test_config_blob_max(void **state)
{
	struct ufx *x = *state;
	char conf[4400], home[4400];
	const char *bin = getenv("TALLYD_BIN");
	struct th_run r = {0};
	snprintf(conf, sizeof conf, "%s/tallyd.conf", x->dir);
	snprintf(home, sizeof home, "%s/home", x->dir);
	const char *bad[] = {"blob_max = 0\n", "blob_max = 4294967297\n", "blob_max = 20MB\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(th_write_file(conf, bad[i], strlen(bad[i])), 0);
		const char *a[] = {
		        bin && *bin ? bin : "build/tallyd", "--config", conf, "--home", home, NULL};
		assert_int_equal(th_run(&r, a, NULL, NULL, 0, 60), 0);
		assert_int_equal(r.status, 2);
		assert_non_null(strstr(r.err, ":1: blob_max must be 1..4294967296 bytes"));
		th_run_free(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_put_get_roundtrip, usetup, uteardown),
	        cmocka_unit_test_setup_teardown(test_cap_boundary, usetup, uteardown),
	        cmocka_unit_test_setup_teardown(test_damaged_detected, usetup, uteardown),
	        cmocka_unit_test_setup_teardown(test_staging_invisible, usetup, uteardown),
	        cmocka_unit_test_setup_teardown(test_sweep_and_links, usetup, uteardown),
	        cmocka_unit_test_setup_teardown(test_repl_close_on_send, usetup, uteardown),
	        cmocka_unit_test(test_chunk_check),
	        cmocka_unit_test(test_body_refs),
	        cmocka_unit_test_setup_teardown(test_config_blob_max, usetup, uteardown),
	        cmocka_unit_test_setup_teardown(test_cli_errors, esetup, eteardown),
	        cmocka_unit_test_setup_teardown(test_e2e_voucher, esetup, eteardown),
	        cmocka_unit_test_setup_teardown(test_e2e_refused, esetup, eteardown),
	        cmocka_unit_test_setup_teardown(test_e2e_cap, esetup, eteardown),
	        cmocka_unit_test_setup_teardown(test_e2e_hostile, esetup, eteardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
