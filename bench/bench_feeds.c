/*
 * bench_feeds.c — figures for the feeds issue: durable appends/s at batch
 * sizes 1, 64 and 1024 (~300-byte bodies), bundle verification entries/s,
 * inclusion proofs/s and root computation at 1,000,000 entries, and store
 * bytes per record. Prints one line per figure with its goal.
 *
 * Usage: bench_feeds [DIR] [--quick]   (DIR: scratch directory, removed after)
 */
#define _GNU_SOURCE
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "node/tl_node.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench: %s: %s\n", what, tl_strerror(rc));
	exit(1);
}

/* A ~300-byte statement-like body. */
static void body_for(struct tl_buf *b, uint64_t i)
{
	char js[512], err[128];
	snprintf(js, sizeof js,
	         "{\"id\":\"ST-2026-%08llu\",\"version\":1,\"period\":\"2026-11\","
	         "\"currency\":\"CNY\",\"opening\":1250000,\"closing\":%llu,"
	         "\"lines\":[{\"date\":\"2026-11-03\",\"type\":\"invoice\",\"doc\":\"INV-%llu\","
	         "\"amount\":%llu,\"due\":\"2026-12-03\"}],"
	         "\"memo\":\"monthly statement of account for November; goods delivered per "
	         "framework contract FC-2026-017, benchmark body of realistic size\"}",
	         (unsigned long long)i, (unsigned long long)(1250000 + i * 3),
	         (unsigned long long)i, (unsigned long long)(i * 3));
	json_t *j = json_loads(js, 0, NULL);
	tl_buf_reset(b);
	if (!j || tl_json_to_mp(j, b, err, sizeof err) != 0)
		die("body", TL_EFORMAT);
	json_decref(j);
}

struct feedfx {
	struct tl_store *s;
	struct tl_feed f;
	struct tl_keypair kp;
	char dir[4096];
};

static void feed_open(struct feedfx *x, const char *base, const char *name, uint8_t seedb)
{
	uint8_t seed[32], peer[32];
	char err[256];
	if ((size_t)snprintf(x->dir, sizeof x->dir, "%.3900s/%.64s", base, name) >= sizeof x->dir)
		die("scratch path too long", TL_EINVAL);
	memset(seed, seedb, 32);
	memset(peer, 0xee, 32);
	if (tl_key_from_seed(&x->kp, seed) != 0)
		die("key", TL_ECRYPTO);
	int rc = tl_store_open(&x->s, x->dir, 0, 0, err, sizeof err);
	if (rc) {
		fprintf(stderr, "bench: %s\n", err);
		exit(1);
	}
	memset(&x->f, 0, sizeof x->f);
	tl_channel_id(x->f.o.channel, x->kp.pk, peer, "default", 7);
	tl_origin_format(x->f.origin, x->kp.pk, x->f.o.channel);
	memcpy(x->f.peer, peer, 32);
	strcpy(x->f.book, "bench");
	strcpy(x->f.label, "default");
	x->f.flags = TL_FEED_OWN;
	if ((rc = tl_store_feed_add(x->s, &x->f)) != 0)
		die(tl_store_errmsg(x->s), rc);
}

/* Appends n entries in batches; returns entries per second. */
static double append(struct feedfx *x, uint64_t n, size_t batch, uint64_t *body_bytes)
{
	struct tl_item *items = calloc(n, sizeof *items);
	struct tl_buf all;
	size_t *off = calloc(n + 1, sizeof *off);
	tl_buf_init(&all, (size_t)1 << 34);
	struct tl_buf b;
	tl_buf_init(&b, 4096);
	for (uint64_t i = 0; i < n; i++) {
		body_for(&b, i);
		off[i] = all.len;
		if (tl_buf_add(&all, b.data, b.len) != 0)
			die("oom", TL_ENOMEM);
	}
	off[n] = all.len;
	for (uint64_t i = 0; i < n; i++)
		items[i] = (struct tl_item){"statement", 9, all.data + off[i], off[i + 1] - off[i]};
	if (body_bytes)
		*body_bytes = all.len;
	size_t done = 0;
	double t0 = now();
	int rc = tl_feed_append_local(x->s, x->f.origin, &x->kp, items, n, batch, 1764720000000ull,
	                              NULL, &done, NULL, NULL);
	double dt = now() - t0;
	if (rc)
		die(tl_store_errmsg(x->s), rc);
	tl_buf_release(&b);
	tl_buf_release(&all);
	free(items);
	free(off);
	if ((rc = tl_store_feed_get(x->s, x->f.origin, &x->f)) != 0)
		die("feed", rc);
	return (double)n / dt;
}

static void machine(void)
{
	char model[256] = "unknown", line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof line, f)) {
		if (strncmp(line, "model name", 10) == 0) {
			char *p = strchr(line, ':');
			if (p) {
				snprintf(model, sizeof model, "%s", p + 2);
				model[strcspn(model, "\n")] = 0;
			}
			break;
		}
	}
	if (f)
		fclose(f);
	printf("machine: %s, %ld cores online, libsodium %s\n", model,
	       sysconf(_SC_NPROCESSORS_ONLN), sodium_version_string());
}

static void rmrf(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
	int quick = argc > 2 && strcmp(argv[2], "--quick") == 0;
	char base[4096];
	if (tl_init() != 0)
		return 1;
	snprintf(base, sizeof base, "%s", argc > 1 ? argv[1] : "/tmp/tally-bench");
	rmrf(base);
	mkdir(base, 0700);
	machine();
	const uint64_t big = quick ? 100000 : 1000000;

	/* 1. Durable appends at batch 1, 64, 1024. */
	static const struct {
		size_t batch;
		uint64_t n;
	} runs[] = {{1, 2000}, {64, 64 * 500}, {1024, 0}};
	for (size_t i = 0; i < 3; i++) {
		struct feedfx x;
		char name[32];
		uint64_t n = runs[i].n ? runs[i].n : big;
		uint64_t body_bytes;
		snprintf(name, sizeof name, "append-%zu", runs[i].batch);
		feed_open(&x, base, name, (uint8_t)(i + 1));
		double rate = append(&x, n, runs[i].batch, &body_bytes);
		printf("append.batch%-5zu %10.0f entries/s durable (%llu entries, body %.0f B "
		       "avg)%s\n",
		       runs[i].batch, rate, (unsigned long long)n, (double)body_bytes / (double)n,
		       runs[i].batch == 1024 ? "   goal >= 50000" : "");
		if (runs[i].batch != 1024) {
			tl_store_close(x.s);
			continue;
		}

		/* 2. Store size per record, on the big feed. */
		struct tl_store_stats st;
		if (tl_store_stats(x.s, &st) != 0)
			die("stats", TL_ESTORE);
		printf("store.bytes_per_record %6.0f B on disk, %.0f B raw record (ratio %.2f)   "
		       "goal ratio <= 2.0\n",
		       (double)st.used_bytes / (double)st.records,
		       (double)st.record_bytes / (double)st.records,
		       (double)st.used_bytes / (double)st.record_bytes);

		/* 3. Root and inclusion proofs at the big size. */
		uint8_t root[32], p[TL_MERKLE_MAX_PROOF][32];
		size_t np;
		double t0 = now();
		int reps = 2000;
		for (int r = 0; r < reps; r++)
			if (tl_store_root(x.s, &x.f, x.f.head.size - (uint64_t)r, root) != 0)
				die("root", TL_ESTORE);
		double dt = now() - t0;
		printf("merkle.root@%llu       %8.1f us per root (any size, from stored "
		       "subtrees)\n",
		       (unsigned long long)x.f.head.size, dt / reps * 1e6);
		uint64_t seed = 88172645463325252ull;
		reps = quick ? 20000 : 100000;
		t0 = now();
		for (int r = 0; r < reps; r++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			uint64_t idx = seed % x.f.head.size;
			if (tl_store_inclusion(x.s, &x.f, idx, x.f.head.size, p,
			                       TL_MERKLE_MAX_PROOF, &np) != 0)
				die("proof", TL_ESTORE);
		}
		dt = now() - t0;
		printf("merkle.inclusion@%llu  %8.0f proofs/s (random index, %zu hashes)   goal >= "
		       "50000\n",
		       (unsigned long long)x.f.head.size, reps / dt, np);

		/* 4. Bundle verification. */
		char path[4200];
		snprintf(path, sizeof path, "%s/bundle.json", base);
		FILE *fp = fopen(path, "wb");
		uint64_t recs = 0;
		struct tl_buf note, text;
		struct tl_checkpoint cp = {0};
		tl_buf_init(&note, TL_NOTE_MAX);
		tl_buf_init(&text, TL_NOTE_MAX);
		memcpy(cp.origin, x.f.origin, TL_ORIGIN_LEN + 1);
		cp.size = x.f.head.size;
		if (tl_store_root(x.s, &x.f, cp.size, cp.root) != 0 ||
		    tl_checkpoint_format(&cp, &text) != 0 ||
		    tl_note_sign(&note, (const char *)text.data, text.len, x.f.origin, &x.kp) !=
		            0 ||
		    tl_store_checkpoint_put(x.s, &x.f, cp.size, (const char *)note.data,
		                            note.len) != 0)
			die("checkpoint", TL_ESTORE);
		if (!fp || tl_bundle_write(x.s, fp, &x.f, 1, NULL, 0, 0, &recs) != 0)
			die("bundle", TL_EIO);
		fclose(fp);
		size_t len = 0;
		FILE *in = fopen(path, "rb");
		fseek(in, 0, SEEK_END);
		len = (size_t)ftell(in);
		fseek(in, 0, SEEK_SET);
		char *json = malloc(len + 1);
		if (fread(json, 1, len, in) != len)
			die("read bundle", TL_EIO);
		fclose(in);
		struct tl_verify_report rep = {0};
		struct tl_verify_opts o = {.quorum = -1, .threads = 2};
		t0 = now();
		int rc = tl_verify_bundle(json, len, &o, &rep);
		dt = now() - t0;
		if (rc)
			die("verify", rc);
		printf("bundle.verify          %8.0f entries/s (%llu entries, %.0f MB JSON, 2 "
		       "threads)   goal >= 20000\n",
		       (double)recs / dt, (unsigned long long)recs, (double)len / 1e6);
		tl_verify_report_release(&rep);
		free(json);
		tl_buf_release(&note);
		tl_buf_release(&text);
		tl_store_close(x.s);
	}
	rmrf(base);
	return 0;
}
