/*
 * fuzz_blob.c — libFuzzer target for what a peer's bytes reach in blob
 * replication (vouchers; node/blob.h, node/blob_repl.h) without a live
 * session. The first byte picks one of three parts:
 *
 * 0: peer messages. The rest is frames (a 2-byte big-endian length, then
 *    a message), each handled as daemon.c's handle_msg does (canonical, an
 *    array whose first element is a str starting "blob.") by
 *    tl_blob_repl_msg, on a real module whose host never lets a want be
 *    served (its write queue is always "full"). Properties: the verdict (0,
 *    or drop the session) is exactly the message shape of docs/protocol.md
 *    ("Blobs") plus the cap of SERVE_QMAX (16) queued wants per peer;
 *    nothing is ever sent; chunks and refusals for blobs nobody fetches
 *    are ignored.
 *
 * 1: a download. A requester asks for one blob (hash want) under a cap and
 *    receives a script of blob.chunk headers (offset, total, length, hash,
 *    each the expected value, an off-by-one, or raw from the input), checked
 *    by tl_blob_chunk_check and tracked as blob_repl.c's on_chunk does.
 *    Properties: an accepted chunk names want, continues exactly where the
 *    last one ended at a multiple of 256 KiB, keeps the total first
 *    announced, which is within the cap, and has exactly min(256 KiB,
 *    total - offset) bytes; nothing is accepted after the end; a refusal
 *    gives a reason. With the small cap (3 chunks) the accepted chunks are
 *    also written to a real staging file (in /dev/shm when present):
 *    tl_blob_stage_write accepts every one of them, accepts a direct write
 *    exactly when it continues the content within the total, and
 *    tl_blob_stage_commit stores the blob exactly when the bytes written
 *    hash to want, leaving no staging file behind either way.
 *
 * 2: an entry body. For bytes that are a canonical map (what a decoded
 *    record holds), tl_blob_body_refs for a fixed hash must equal a search
 *    of the body's JSON form (a key "blobs", at any depth, whose value is an array
 *    holding the hash's hex as a string).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/blob_repl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHUNK      TL_BLOB_CHUNK
#define SMALL_CAP  ((uint64_t)3 * CHUNK)
#define SERVE_QMAX 16 /* blob_repl.c */
#define REASON_MAX 64 /* blob_repl.c */
#define MAXOPS     16

static struct tl_blobs blobs;
static char staging[4200];
static uv_loop_t loop;
static struct tl_blob_repl *repl;
static int peer_token;
static uint8_t content[SMALL_CAP + 1];
static char ref_hex[TL_BLOB_HEX + 1];

/* --------------------------------------------------------------- host */

static int host_send(void *peer, const uint8_t *msg, size_t len)
{
	(void)peer;
	(void)msg;
	(void)len;
	abort(); /* nothing is fetched and no want may be served */
}

static size_t host_queued(void *peer)
{
	(void)peer;
	return 1; /* always over wq_max (0): wants stay queued */
}

static void host_peer_info(void *peer, struct tl_blob_peer *out)
{
	static const uint8_t remote[32] = {1};
	(void)peer;
	out->book = "fuzz";
	out->remote = remote;
	out->addr = "fuzz-peer";
}

static void *host_find_peer(void *node, const char *book, const uint8_t remote[32])
{
	(void)node;
	(void)book;
	(void)remote;
	return NULL;
}

static void host_ctl_line(void *ctl, const char *line)
{
	(void)ctl;
	(void)line;
	abort();
}

static int host_local_book(void *node, const uint8_t pk[32])
{
	(void)node;
	(void)pk;
	return 0;
}

TL_PRINTF(2, 3)
static void host_log(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

static char home_dir[64];

/* Removes dir and what is in it, two levels deep (blobs/xx/hash). */
static void remove_tree(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4400];

	while (d && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (unlink(p) != 0 && depth < 3)
			remove_tree(p, depth + 1);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void cleanup(void)
{
	remove_tree(home_dir, 0);
}

static void setup(void)
{
	char home[] = "/dev/shm/tally-fuzz-blob-XXXXXX";
	char home2[] = "/tmp/tally-fuzz-blob-XXXXXX";
	const char *h;
	struct tl_blob_host host;
	uint8_t hh[32];

	if (tl_init() != 0)
		abort();
	h = mkdtemp(home);
	if (!h)
		h = mkdtemp(home2);
	if (!h || tl_blobs_init(&blobs, h, SMALL_CAP) != 0)
		abort();
	snprintf(home_dir, sizeof home_dir, "%s", h);
	atexit(cleanup);
	snprintf(staging, sizeof staging, "%s/staging", blobs.dir);
	for (size_t i = 0; i < sizeof content; i++)
		content[i] = (uint8_t)(i * 131 + 7);
	if (uv_loop_init(&loop) != 0)
		abort();
	memset(&host, 0, sizeof host);
	host.loop = &loop;
	host.blobs = blobs;
	host.wq_max = 0;
	host.send = host_send;
	host.queued = host_queued;
	host.peer_info = host_peer_info;
	host.find_peer = host_find_peer;
	host.ctl_line = host_ctl_line;
	host.local_book = host_local_book;
	host.log = host_log;
	if (tl_blob_repl_new(&repl, &host) != 0)
		abort();
	tl_sha256(hh, "a voucher", 9);
	tl_hex_encode(ref_hex, hh, 32);
}

struct rd {
	const uint8_t *p;
	size_t n;
};

static unsigned rd8(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static uint64_t rd64(struct rd *r)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | rd8(r);
	return v;
}

/* ----------------------------------------------------- 0: peer messages */

static int is_bin32(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == 32;
}

static int is_uint(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

static int type_is(const msgpack_object *o, const char *s)
{
	return o->via.str.size == strlen(s) && memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* The rest is frames: a 2-byte big-endian length, then the message. */
static void peer_messages(const uint8_t *data, size_t size)
{
	size_t off = 0;
	int queued = 0;

	while (size - off >= 2) {
		size_t len = (size_t)data[off] << 8 | data[off + 1];
		const uint8_t *m = data + off + 2;
		msgpack_unpacked u;
		size_t pos = 0;

		if (len > size - off - 2)
			len = size - off - 2;
		off += 2 + len;
		/* handle_msg: canonical first, so no declared size outruns the bytes */
		if (tl_mp_check(m, len, NULL) != 0)
			continue;
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, (const char *)m, len, &pos) != MSGPACK_UNPACK_SUCCESS)
			abort(); /* canonical yet not MessagePack */
		const msgpack_object *o = &u.data;
		if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size > 0 &&
		    o->via.array.ptr[0].type == MSGPACK_OBJECT_STR &&
		    o->via.array.ptr[0].via.str.size > 5 &&
		    memcmp(o->via.array.ptr[0].via.str.ptr, "blob.", 5) == 0) {
			const msgpack_object *a = o->via.array.ptr;
			uint32_t n = o->via.array.size;
			int want = 0, expect;
			if (type_is(&a[0], "blob.want")) {
				want = n == 3 && is_bin32(&a[1]) && is_uint(&a[2]);
				expect = want && queued < SERVE_QMAX ? 0 : -1;
			} else if (type_is(&a[0], "blob.chunk")) {
				expect = n == 5 && is_bin32(&a[1]) && is_uint(&a[2]) &&
				                         is_uint(&a[3]) &&
				                         a[4].type == MSGPACK_OBJECT_BIN &&
				                         a[4].via.bin.size <= CHUNK
				                 ? 0
				                 : -1;
			} else if (type_is(&a[0], "blob.none")) {
				expect = n == 3 && is_bin32(&a[1]) &&
				                         a[2].type == MSGPACK_OBJECT_STR &&
				                         a[2].via.str.size <= REASON_MAX
				                 ? 0
				                 : -1;
			} else {
				expect = -1;
			}
			int rc = tl_blob_repl_msg(repl, &peer_token, a, n);
			if ((rc != 0) != (expect != 0))
				abort();
			if (rc == 0 && want)
				queued++;
		}
		msgpack_unpacked_destroy(&u);
	}
	tl_blob_repl_peer_gone(repl, &peer_token);
}

/* ---------------------------------------------------------- 1: download */

static size_t staging_files(void)
{
	DIR *d = opendir(staging);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void download(struct rd *r)
{
	unsigned sel = rd8(r), nops = rd8(r) % MAXOPS + 1;
	static const uint64_t caps[4] = {SMALL_CAP, TL_BLOB_MAX_DEFAULT, TL_BLOB_MAX_LIMIT,
	                                 UINT64_MAX};
	uint64_t cap = caps[sel & 3], truth, rx_next = 0, known_total = 0, naccepted = 0;
	int small = cap == SMALL_CAP, total_known = 0, done = 0, staged = 0;
	uint8_t want[32], other[32];
	struct tl_blob_stage st;
	crypto_hash_sha256_state hs;
	char why[256], err[600];

	/* The blob a honest holder would send: the first `truth` bytes of
	 * content (small cap), or just a size. */
	truth = small ? (rd8(r) << 16 | rd8(r) << 8 | rd8(r)) % (SMALL_CAP + 1) : rd64(r);
	if (small)
		crypto_hash_sha256(want, content, truth);
	else
		tl_sha256(want, &truth, sizeof truth);
	memcpy(other, want, 32);
	other[31] ^= 1;
	crypto_hash_sha256_init(&hs);

	for (unsigned k = 0; k < nops && !done; k++) {
		unsigned m = rd8(r);
		uint64_t off, total, expect_len;
		size_t len;
		const uint8_t *hash = m & 0x40 ? other : want;

		switch (m & 3) {
		case 0:
			off = rx_next;
			break;
		case 1:
			off = rx_next + CHUNK;
			break;
		case 2:
			off = rd64(r);
			break;
		default:
			off = rx_next - 1;
			break;
		}
		switch ((m >> 2) & 3) {
		case 0:
			total = total_known ? known_total : truth;
			break;
		case 1:
			total = rd64(r);
			break;
		case 2:
			total = cap;
			break;
		default:
			total = cap + 1;
			break;
		}
		expect_len = total >= off ? (total - off < CHUNK ? total - off : CHUNK) : 0;
		switch ((m >> 4) & 3) {
		case 0:
			len = (size_t)expect_len;
			break;
		case 1:
			len = (size_t)expect_len - 1;
			break;
		case 2:
			len = (size_t)expect_len + 1;
			break;
		default:
			len = (size_t)(rd64(r) % (CHUNK + 2));
			break;
		}
		why[0] = '\0';
		int rc = tl_blob_chunk_check(want, rx_next, total_known, known_total, cap, hash,
		                             off, total, len, why, sizeof why);
		if (rc != 0) {
			if (why[0] == '\0' ||
			    (rc != TL_ERANGE && rc != TL_ETOOBIG && rc != TL_EINVAL))
				abort();
			/* A direct write that does not continue the content is refused. */
			if (staged && (m & 0x80) && len <= CHUNK) {
				int ok = off == st.got && len <= st.total - st.got;
				const uint8_t *src =
				        off < sizeof content && len <= sizeof content - off
				                ? content + off
				                : content;
				int wrc = tl_blob_stage_write(&st, off, src, len, err, sizeof err);
				if ((wrc == 0) != ok)
					abort();
				if (wrc == 0) {
					/* The stage moved on without the requester: the
					 * script ends (the commit below still checks). */
					crypto_hash_sha256_update(&hs, src, len);
					break;
				}
			}
			continue;
		}
		/* Accepted: everything the protocol promises. */
		if (memcmp(hash, want, 32) != 0 || total > cap ||
		    (total_known && total != known_total) || off != rx_next || off % CHUNK != 0 ||
		    len > CHUNK || len != (total - off < CHUNK ? total - off : CHUNK) ||
		    off + len > total || (off >= total && !(off == 0 && total == 0)))
			abort();
		if (++naccepted > total / CHUNK + 1)
			abort();
		total_known = 1;
		known_total = total;
		if (small && !staged) {
			if (tl_blob_stage_begin(&blobs, &st, want, total, err, sizeof err) != 0)
				abort();
			staged = 1;
		}
		if (staged) {
			/* The holder's bytes: content, or content with one byte off. */
			uint8_t *buf = malloc(len ? len : 1);
			if (!buf)
				abort();
			for (size_t i = 0; i < len; i++)
				buf[i] = off + i < sizeof content ? content[off + i] : 0;
			if (len && (m & 0x80))
				buf[len / 2] ^= 0x20;
			if (tl_blob_stage_write(&st, off, buf, len, err, sizeof err) != 0)
				abort(); /* a chunk the check accepted does not fit the stage */
			crypto_hash_sha256_update(&hs, buf, len);
			free(buf);
		}
		rx_next = off + len;
		if (rx_next == total)
			done = 1;
	}
	if (done && total_known) {
		/* Nothing more may be accepted after the end. */
		uint64_t end = rx_next;
		if (!(end == 0 && known_total == 0) &&
		    tl_blob_chunk_check(want, end, 1, known_total, cap, want, end, known_total, 0,
		                        why, sizeof why) == 0)
			abort();
	}
	if (staged) {
		uint8_t got[32];
		crypto_hash_sha256_final(&hs, got);
		int complete = st.got == st.total;
		int rc = tl_blob_stage_commit(&blobs, &st, err, sizeof err);
		if (complete && memcmp(got, want, 32) == 0) {
			uint64_t sz = 0;
			char path[4400];
			if (rc != 0 || tl_blob_verify(&blobs, want, &sz, err, sizeof err) != 0 ||
			    sz != st.total)
				abort();
			tl_blob_path(&blobs, want, path, sizeof path);
			unlink(path);
		} else if (rc == 0) {
			abort(); /* stored content that does not hash to its name */
		}
		if (staging_files() != 0)
			abort(); /* a staging file left behind */
	}
}

/* ---------------------------------------------------------- 2: body refs */

static int json_refs(const json_t *j, int depth)
{
	const char *k;
	json_t *v;
	size_t i;

	if (depth > TL_MP_DEPTH_MAX)
		return 0;
	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
		{
			if (json_refs(v, depth + 1))
				return 1;
		}
	} else if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v)
		{
			if (strcmp(k, "blobs") == 0 && json_is_array(v)) {
				json_t *x;
				json_array_foreach(v, i, x)
				{
					if (json_is_string(x) &&
					    json_string_length(x) == TL_BLOB_HEX &&
					    strcmp(json_string_value(x), ref_hex) == 0)
						return 1;
				}
			}
			if (json_refs(v, depth + 1))
				return 1;
		}
	}
	return 0;
}

/* Bodies reach tl_blob_body_refs only from decoded records: canonical maps. */
static void body_refs(const uint8_t *data, size_t size)
{
	if (tl_mp_check_map(data, size, NULL) != 0)
		return;
	int got = tl_blob_body_refs(data, size, ref_hex);
	json_t *j = tl_mp_to_json(data, size);
	if (!j)
		abort();
	if (json_refs(j, 0) != got)
		abort();
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct rd r = {data + 1, size ? size - 1 : 0};

	if (!ready) {
		setup();
		ready = 1;
	}
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		peer_messages(data + 1, size - 1);
		break;
	case 1:
		download(&r);
		break;
	default:
		body_refs(data + 1, size - 1);
		break;
	}
	return 0;
}
