/*
 * bench_state.c — figure for issue 4 item 6: the channel state over 100,000
 * entries (10,000 statements, each with its receipt, view, reminder,
 * comments, a person-signed confirm or dispute and a close: one person
 * signature to verify per ten entries), from the records in memory to the
 * evaluated state and its digest. Prints one line with its goal.
 *
 * Usage: bench_state [DIR] [--quick]   (DIR unused: everything is in memory)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consensus/state.h"
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

struct feed {
	struct tl_keypair kp;
	char origin[TL_ORIGIN_LEN + 1];
	uint8_t **recs;
	size_t *lens;
	size_t n, cap;
	uint8_t last[TL_HASH_LEN];
};

static void body_json(struct tl_buf *b, const char *js)
{
	char err[128];
	json_t *j = json_loads(js, 0, NULL);
	tl_buf_reset(b);
	if (!j || tl_json_to_mp(j, b, err, sizeof err) != 0)
		die("body", TL_EFORMAT);
	json_decref(j);
}

static uint8_t *append(struct feed *f, uint64_t t, const char *kind, const struct tl_buf *body)
{
	struct tl_buf rec;
	int rc;

	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 1024;
		f->recs = realloc(f->recs, f->cap * sizeof *f->recs);
		f->lens = realloc(f->lens, f->cap * sizeof *f->lens);
		if (!f->recs || !f->lens)
			die("alloc", TL_ENOMEM);
	}
	tl_buf_init(&rec, TL_RECORD_MAX);
	if ((rc = tl_entry_encode(&rec, f->origin, f->n, f->last, t, kind, strlen(kind), body->data,
	                          body->len)) != 0 ||
	    (rc = tl_record_sign(&rec, f->kp.sk)) != 0)
		die("record", rc);
	tl_record_leaf_hash(f->last, rec.data, rec.len);
	f->recs[f->n] = rec.data;
	f->lens[f->n++] = rec.len;
	return f->last;
}

static void key(struct tl_keypair *kp, uint8_t b)
{
	uint8_t seed[TL_SEED_LEN];
	memset(seed, b, sizeof seed);
	if (tl_key_from_seed(kp, seed) != 0)
		die("key", TL_ECRYPTO);
}

/* confirm or dispute signed by person over the body without person_sig. */
static void answer(struct feed *c, uint64_t t, const char *leaf, int64_t bal,
                   const struct tl_keypair *person, int dispute, struct tl_buf *b)
{
	char js[600], ph[65], b64[100];
	const char *kind = dispute ? "dispute" : "confirm";
	const char *lines =
	        dispute ? ",\"lines\":[{\"doc\":\"INV-1\",\"their_amount\":1,\"reason\":\"other\"}]"
	                : "";
	struct tl_buf msg;
	uint8_t sig[TL_SIG_LEN];

	tl_hex_encode(ph, person->pk, TL_PUB_LEN);
	snprintf(js, sizeof js, "{\"statement\":\"%s\",\"balance\":%lld,\"person\":\"%s\"%s}", leaf,
	         (long long)bal, ph, lines);
	body_json(b, js);
	tl_buf_init(&msg, TL_RECORD_MAX);
	if (tl_person_sig_message(&msg, kind, strlen(kind), b->data, b->len) != 0)
		die("person message", TL_EFORMAT);
	tl_sign(sig, msg.data, msg.len, person->sk);
	tl_buf_release(&msg);
	tl_b64_encode(b64, sig, TL_SIG_LEN);
	snprintf(
	        js, sizeof js,
	        "{\"statement\":\"%s\",\"balance\":%lld,\"person\":\"%s\",\"person_sig\":\"%s\"%s}",
	        leaf, (long long)bal, ph, b64, lines);
	body_json(b, js);
	append(c, t, kind, b);
}

int main(int argc, char **argv)
{
	struct feed s = {0}, c = {0};
	struct tl_keypair approver;
	struct tl_buf b;
	uint8_t id[TL_CHANNEL_LEN], digest[TL_HASH_LEN];
	const uint64_t t0 = 1790000000000ull;
	size_t n = 10000, runs = 5;
	double best = 1e9;
	char js[700], leaf[65], ph[65];
	int quick = 0;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
	if (quick) {
		n = 1000;
		runs = 2;
	}
	if (tl_init() != 0)
		die("init", TL_ECRYPTO);
	key(&s.kp, 1);
	key(&c.kp, 2);
	key(&approver, 3);
	tl_channel_id(id, s.kp.pk, c.kp.pk, "default", 7);
	tl_origin_format(s.origin, s.kp.pk, id);
	tl_origin_format(c.origin, c.kp.pk, id);
	tl_buf_init(&b, TL_ENTRY_MAX);

	tl_hex_encode(ph, approver.pk, TL_PUB_LEN);
	snprintf(js, sizeof js, "{\"key\":\"%s\",\"role\":\"approver\",\"name\":\"A\"}", ph);
	body_json(&b, js);
	append(&c, t0, "key.grant", &b);
	for (size_t i = 0; i < n; i++) {
		uint64_t t = t0 + i * 60000;
		long long amt = 1000 + (long long)i;
		snprintf(js, sizeof js,
		         "{\"id\":\"ST-%06zu\",\"version\":1,\"date\":\"2026-11-30\","
		         "\"period\":{\"from\":\"2026-11-01\",\"to\":\"2026-11-30\"},"
		         "\"currency\":\"CNY\",\"opening\":0,"
		         "\"lines\":[{\"date\":\"2026-11-03\",\"type\":\"invoice\",\"doc\":\"INV-%"
		         "zu\","
		         "\"amount\":%lld,\"due\":\"2026-12-03\"}],\"closing\":%lld,"
		         "\"aging\":{\"current\":%lld,\"d1_30\":0,\"d31_60\":0,\"d61_90\":0,"
		         "\"d90_plus\":0}}",
		         i, i, amt, amt, amt);
		body_json(&b, js);
		tl_hex_encode(leaf, append(&s, t, "statement", &b), TL_HASH_LEN);
		snprintf(js, sizeof js, "{\"feed\":\"%s\",\"size\":%zu,\"checkpoint\":\"cp\"}",
		         s.origin, s.n);
		body_json(&b, js);
		append(&c, t + 1, "seen", &b);
		snprintf(js, sizeof js, "{\"statement\":\"%s\"}", leaf);
		body_json(&b, js);
		append(&c, t + 2, "view", &b);
		snprintf(js, sizeof js, "{\"statement\":\"%s\",\"level\":1,\"via\":\"email\"}",
		         leaf);
		body_json(&b, js);
		append(&s, t + 3, "reminder", &b);
		snprintf(js, sizeof js, "{\"statement\":\"%s\",\"text\":\"see lines\"}", leaf);
		body_json(&b, js);
		append(&s, t + 4, "comment", &b);
		append(&c, t + 5, "comment", &b);
		body_json(&b, "{\"text\":\"checking\"}");
		append(&c, t + 6, "comment", &b);
		answer(&c, t + 7, leaf, i % 10 ? amt : 1, &approver, i % 10 == 0, &b);
		body_json(&b, "{\"text\":\"thanks\"}");
		append(&s, t + 8, "comment", &b);
		snprintf(js, sizeof js, "{\"statement\":\"%s\"}", leaf);
		body_json(&b, js);
		append(&s, t + 9, "close", &b);
	}

	for (size_t r = 0; r < runs; r++) {
		struct tl_state_feed fs = {(const uint8_t *const *)s.recs, s.lens, NULL, s.n};
		struct tl_state_feed fc = {(const uint8_t *const *)c.recs, c.lens, NULL, c.n};
		struct tl_state *st;
		double t1 = now(), dt;
		int rc = tl_state_compute(&st, &fs, &fc, NULL, t0 + n * 60000);
		if (rc)
			die("state", rc);
		if ((rc = tl_state_digest(st, digest)) != 0)
			die("digest", rc);
		dt = now() - t1;
		if (st->count[TL_STMT_CLOSED] != n - (n + 9) / 10)
			die("closed count", TL_EFORMAT);
		tl_state_free(st);
		if (dt < best)
			best = dt;
	}
	printf("state.%s_entries %8.1f ms (%zu records, %zu person signatures, best of %zu)   "
	       "goal < 1000 ms\n",
	       quick ? "10k" : "100k", best * 1e3, s.n + c.n, n, runs);

	for (size_t i = 0; i < s.n; i++)
		free(s.recs[i]);
	for (size_t i = 0; i < c.n; i++)
		free(c.recs[i]);
	free(s.recs);
	free(s.lens);
	free(c.recs);
	free(c.lens);
	tl_buf_release(&b);
	return 0;
}
