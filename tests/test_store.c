/* test_store.c — the LMDB store: books, feeds, group-committed appends,
 * Merkle views against an in-memory tree, damage detection, versioning. */
#define _GNU_SOURCE /* memmem */
#include "harness.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/tl_node.h"

struct fx {
	char *dir;
	struct tl_store *s;
	struct tl_keypair kp, peer;
	struct tl_feed f;
};

static void make_body(struct tl_buf *b, uint64_t i)
{
	char js[128];
	json_t *j;
	char err[128];
	snprintf(js, sizeof js, "{\"amount\": %llu, \"marker\": \"MARK%06llu\"}",
	         (unsigned long long)(i * 100), (unsigned long long)i);
	j = json_loads(js, 0, NULL);
	assert_non_null(j);
	tl_buf_reset(b);
	assert_int_equal(tl_json_to_mp(j, b, err, sizeof err), 0);
	json_decref(j);
}

/* Appends n entries through the local append path, batch entries a batch. */
static void append_n(struct fx *x, size_t n, size_t batch)
{
	struct tl_item *items = calloc(n, sizeof *items);
	struct tl_buf *bodies = calloc(n, sizeof *bodies);
	size_t done = 0;
	for (size_t i = 0; i < n; i++) {
		tl_buf_init(&bodies[i], 4096);
		make_body(&bodies[i], x->f.head.size + i);
		items[i] = (struct tl_item){"statement", 9, bodies[i].data, bodies[i].len};
	}
	assert_int_equal(tl_feed_append_local(x->s, x->f.origin, &x->kp, items, n, batch,
	                                      1700000000000ull, NULL, &done, NULL, NULL),
	                 0);
	assert_int_equal(done, n);
	for (size_t i = 0; i < n; i++)
		tl_buf_release(&bodies[i]);
	free(bodies);
	free(items);
	assert_int_equal(tl_store_feed_get(x->s, x->f.origin, &x->f), 0);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof *x);
	uint8_t seed[32];
	char err[256];
	assert_int_equal(tl_init(), 0);
	x->dir = th_tmpdir("store");
	memset(seed, 7, sizeof seed);
	assert_int_equal(tl_key_from_seed(&x->kp, seed), 0);
	memset(seed, 9, sizeof seed);
	assert_int_equal(tl_key_from_seed(&x->peer, seed), 0);
	assert_int_equal(tl_store_open(&x->s, x->dir, 0, 0, err, sizeof err), 0);
	struct tl_book b = {.name = "acme"};
	memcpy(b.pk, x->kp.pk, 32);
	assert_int_equal(tl_store_book_add(x->s, &b), 0);
	tl_channel_id(x->f.o.channel, x->kp.pk, x->peer.pk, "default", 7);
	tl_origin_format(x->f.origin, x->kp.pk, x->f.o.channel);
	memcpy(x->f.peer, x->peer.pk, 32);
	strcpy(x->f.book, "acme");
	strcpy(x->f.label, "default");
	x->f.flags = TL_FEED_OWN;
	assert_int_equal(tl_store_feed_add(x->s, &x->f), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	tl_store_close(x->s);
	th_rmtree(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

static void test_books_and_feeds(void **state)
{
	struct fx *x = *state;
	struct tl_book b, *list;
	struct tl_feed f, *feeds;
	size_t n;
	assert_int_equal(tl_store_book_get(x->s, "acme", &b), 0);
	assert_memory_equal(b.pk, x->kp.pk, 32);
	assert_int_equal(tl_store_book_get(x->s, "nobody", &b), TL_ENOTFOUND);
	assert_int_equal(tl_store_book_add(x->s, &b), TL_EEXIST);
	strcpy(b.name, "bad/name");
	assert_int_equal(tl_store_book_add(x->s, &b), TL_EINVAL);
	assert_int_equal(tl_store_book_list(x->s, &list, &n), 0);
	assert_int_equal(n, 1);
	free(list);
	/* Book names: 63 bytes accepted, 64 refused. */
	char name[80];
	memset(name, 'a', 63);
	name[63] = 0;
	assert_true(tl_book_name_valid(name));
	name[63] = 'a';
	name[64] = 0;
	assert_false(tl_book_name_valid(name));
	assert_false(tl_book_name_valid(""));

	f = x->f;
	assert_int_equal(tl_store_feed_add(x->s, &f), TL_EEXIST);
	assert_int_equal(tl_store_feed_get(x->s, x->f.origin, &f), 0);
	assert_int_equal(f.id, 1);
	assert_int_equal(f.head.size, 0);
	assert_string_equal(f.book, "acme");
	assert_int_equal(tl_store_feed_list(x->s, &feeds, &n), 0);
	assert_int_equal(n, 1);
	free(feeds);
	assert_int_equal(tl_store_feed_get(x->s, "tally.v1/00", &f), TL_ENOTFOUND);
}

/* Roots and proofs from the store equal those of an in-memory tree over the
 * same leaves, for every size and index around power-of-two boundaries. */
static void test_merkle_matches_memory(void **state)
{
	struct fx *x = *state;
	const size_t n = 70;
	append_n(x, n, 16);
	assert_int_equal(x->f.head.size, n);
	uint8_t(*leaves)[32] = calloc(n, 32);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(tl_store_leaf(x->s, &x->f, i, leaves[i]), 0);
	struct tl_merkle_mem m;
	assert_int_equal(tl_merkle_mem_build(&m, (const uint8_t(*)[32])leaves, n), 0);
	struct tl_merkle_src src = tl_merkle_mem_src(&m);
	for (uint64_t size = 1; size <= n; size++) {
		uint8_t r1[32], r2[32];
		assert_int_equal(tl_store_root(x->s, &x->f, size, r1), 0);
		assert_int_equal(tl_merkle_root(&src, size, r2), 0);
		assert_memory_equal(r1, r2, 32);
		for (uint64_t i = 0; i < size; i += (size > 20 ? 7 : 1)) {
			uint8_t p[TL_MERKLE_MAX_PROOF][32];
			size_t np;
			assert_int_equal(tl_store_inclusion(x->s, &x->f, i, size, p,
			                                    TL_MERKLE_MAX_PROOF, &np),
			                 0);
			assert_int_equal(tl_merkle_verify_inclusion(leaves[i], i, size,
			                                            (const uint8_t(*)[32])p, np,
			                                            r1),
			                 0);
		}
		for (uint64_t old = 1; old <= size; old += (size > 20 ? 5 : 1)) {
			uint8_t p[TL_MERKLE_MAX_PROOF][32], ro[32];
			size_t np;
			assert_int_equal(tl_store_root(x->s, &x->f, old, ro), 0);
			assert_int_equal(tl_store_consistency(x->s, &x->f, old, size, p,
			                                      TL_MERKLE_MAX_PROOF, &np),
			                 0);
			assert_int_equal(tl_merkle_verify_consistency(old, size, ro, r1,
			                                              (const uint8_t(*)[32])p, np),
			                 0);
		}
	}
	/* Out of range on both sides. */
	uint8_t r[32], p[TL_MERKLE_MAX_PROOF][32];
	size_t np;
	assert_int_equal(tl_store_root(x->s, &x->f, n, r), 0);
	assert_int_equal(tl_store_root(x->s, &x->f, n + 1, r), TL_ERANGE);
	assert_int_equal(tl_store_inclusion(x->s, &x->f, n, n, p, TL_MERKLE_MAX_PROOF, &np),
	                 TL_ERANGE);
	assert_int_equal(tl_store_consistency(x->s, &x->f, 0, n, p, TL_MERKLE_MAX_PROOF, &np),
	                 TL_ERANGE);
	tl_merkle_mem_release(&m);
	free(leaves);
}

/* A batch with one bad record stores nothing; the error names the record. */
static void test_append_all_or_nothing(void **state)
{
	struct fx *x = *state;
	struct tl_buf body, r0, r1, r2;
	uint8_t zero[32] = {0}, leaf0[32], leaf1[32];
	size_t bad = 99;
	tl_buf_init(&body, 4096);
	tl_buf_init(&r0, TL_RECORD_MAX);
	tl_buf_init(&r1, TL_RECORD_MAX);
	tl_buf_init(&r2, TL_RECORD_MAX);
	make_body(&body, 1);
	assert_int_equal(tl_entry_encode(&r0, x->f.origin, 0, zero, 1, "a", 1, body.data, body.len),
	                 0);
	assert_int_equal(tl_record_sign(&r0, x->kp.sk), 0);
	tl_record_leaf_hash(leaf0, r0.data, r0.len);
	assert_int_equal(
	        tl_entry_encode(&r1, x->f.origin, 1, leaf0, 2, "a", 1, body.data, body.len), 0);
	assert_int_equal(tl_record_sign(&r1, x->kp.sk), 0);
	tl_record_leaf_hash(leaf1, r1.data, r1.len);
	/* r2 skips seq 2. */
	assert_int_equal(
	        tl_entry_encode(&r2, x->f.origin, 3, leaf1, 3, "a", 1, body.data, body.len), 0);
	assert_int_equal(tl_record_sign(&r2, x->kp.sk), 0);
	struct tl_rec recs[3] = {{r0.data, r0.len}, {r1.data, r1.len}, {r2.data, r2.len}};
	assert_int_equal(tl_store_append(x->s, x->f.origin, recs, 3, TL_APPEND_VERIFY, &bad, NULL),
	                 TL_ECHAIN);
	assert_int_equal(bad, 2);
	assert_non_null(strstr(tl_store_errmsg(x->s), "seq 3"));
	struct tl_feed f;
	assert_int_equal(tl_store_feed_get(x->s, x->f.origin, &f), 0);
	assert_int_equal(f.head.size, 0);

	/* A bad signature is refused when verification is asked for. */
	r1.data[r1.len - 1] ^= 1;
	assert_int_equal(tl_store_append(x->s, x->f.origin, recs, 2, TL_APPEND_VERIFY, &bad, NULL),
	                 TL_ESIG);
	assert_int_equal(bad, 1);
	r1.data[r1.len - 1] ^= 1;
	assert_int_equal(tl_store_append(x->s, x->f.origin, recs, 2, TL_APPEND_VERIFY, &bad, &f),
	                 0);
	assert_int_equal(f.head.size, 2);
	assert_memory_equal(f.head.last_leaf, leaf1, 32);
	/* The same records again: they no longer continue the chain. */
	assert_int_equal(tl_store_append(x->s, x->f.origin, recs, 1, 0, &bad, NULL), TL_ECHAIN);
	char origin[TL_ORIGIN_LEN + 1];
	uint64_t seq = 0;
	assert_int_equal(tl_store_find_leaf(x->s, leaf1, origin, &seq), 0);
	assert_string_equal(origin, x->f.origin);
	assert_int_equal(seq, 1);
	tl_buf_release(&body);
	tl_buf_release(&r0);
	tl_buf_release(&r1);
	tl_buf_release(&r2);
}

/* A byte flipped inside the data file is caught on read, naming feed and seq. */
static void test_damage_detected(void **state)
{
	struct fx *x = *state;
	char path[4200], err[256];
	size_t len;
	append_n(x, 10, 0);
	tl_store_close(x->s);
	x->s = NULL;
	snprintf(path, sizeof path, "%s/data.mdb", x->dir);
	char *data = th_read_file(path, &len);
	assert_non_null(data);
	char *hit = memmem(data, len, "MARK000007", 10);
	assert_non_null(hit);
	hit[9] ^= 0x01; /* MARK000007 -> MARK000006 */
	assert_int_equal(th_write_file(path, data, len), 0);
	free(data);
	assert_int_equal(tl_store_open(&x->s, x->dir, 0, 0, err, sizeof err), 0);
	struct tl_buf rec;
	tl_buf_init(&rec, TL_RECORD_MAX);
	assert_int_equal(tl_store_record(x->s, &x->f, 6, &rec), 0);
	assert_int_equal(tl_store_record(x->s, &x->f, 7, &rec), TL_ECORRUPT);
	assert_non_null(strstr(tl_store_errmsg(x->s), "seq 7"));
	assert_non_null(strstr(tl_store_errmsg(x->s), x->f.origin));
	tl_buf_release(&rec);
}

static void test_reopen_and_version(void **state)
{
	struct fx *x = *state;
	char err[256];
	append_n(x, 5, 2);
	uint8_t root[32], root2[32];
	assert_int_equal(tl_store_root(x->s, &x->f, 5, root), 0);
	tl_store_close(x->s);
	assert_int_equal(tl_store_open(&x->s, x->dir, 0, 0, err, sizeof err), 0);
	struct tl_feed f;
	assert_int_equal(tl_store_feed_get(x->s, x->f.origin, &f), 0);
	assert_int_equal(f.head.size, 5);
	assert_int_equal(tl_store_root(x->s, &f, 5, root2), 0);
	assert_memory_equal(root, root2, 32);
	/* Appending after a reopen continues the same tree. */
	append_n(x, 3, 0);
	assert_int_equal(x->f.head.size, 8);
	struct tl_store_stats st;
	assert_int_equal(tl_store_stats(x->s, &st), 0);
	assert_int_equal(st.records, 8);
	assert_true(st.record_bytes > 8 * 100);

	/* Opening a missing directory read-only fails with a sentence. */
	struct tl_store *s2 = NULL;
	char missing[4200];
	snprintf(missing, sizeof missing, "%s/nope", x->dir);
	assert_int_not_equal(tl_store_open(&s2, missing, TL_STORE_RDONLY, 0, err, sizeof err), 0);
	assert_null(s2);
	assert_true(strlen(err) > 0);
}

static void test_checkpoints(void **state)
{
	struct fx *x = *state;
	struct tl_buf out;
	uint64_t size = 0;
	tl_buf_init(&out, TL_NOTE_MAX);
	assert_int_equal(tl_store_checkpoint_get(x->s, &x->f, UINT64_MAX, &out, &size),
	                 TL_ENOTFOUND);
	assert_int_equal(tl_store_checkpoint_put(x->s, &x->f, 3, "three\n", 6), 0);
	assert_int_equal(tl_store_checkpoint_put(x->s, &x->f, 10, "ten\n", 4), 0);
	assert_int_equal(tl_store_checkpoint_get(x->s, &x->f, UINT64_MAX, &out, &size), 0);
	assert_int_equal(size, 10);
	assert_memory_equal(out.data, "ten\n", 4);
	assert_int_equal(tl_store_checkpoint_get(x->s, &x->f, 3, &out, &size), 0);
	assert_int_equal(size, 3);
	assert_int_equal(tl_store_checkpoint_get(x->s, &x->f, 4, &out, &size), TL_ENOTFOUND);
	tl_buf_release(&out);
}

/* Leaves are found by hash both while queued and after the bulk merge into
 * the index (which happens once 65536 are queued). */
static void test_find_leaf_across_merge(void **state)
{
	struct fx *x = *state;
	char origin[TL_ORIGIN_LEN + 1];
	uint8_t leaf[32];
	uint64_t seq;
	append_n(x, 70000, 4096);
	static const uint64_t probes[] = {0, 1, 65535, 65536, 69999};
	for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
		assert_int_equal(tl_store_leaf(x->s, &x->f, probes[i], leaf), 0);
		assert_int_equal(tl_store_find_leaf(x->s, leaf, origin, &seq), 0);
		assert_int_equal(seq, probes[i]);
		assert_string_equal(origin, x->f.origin);
	}
	leaf[0] ^= 1;
	assert_int_equal(tl_store_find_leaf(x->s, leaf, origin, &seq), TL_ENOTFOUND);
}

/* A second thread's failure, read after the main thread failed too. */
struct err_thread {
	struct fx *x;
	sem_t failed, go_on;
	char msg[512];
	int rc;
};

static void *err_thread_main(void *arg)
{
	struct err_thread *t = arg;
	uint8_t leaf[32];
	t->rc = tl_store_leaf(t->x->s, &t->x->f, 1000, leaf);
	sem_post(&t->failed);
	sem_wait(&t->go_on); /* the main thread fails meanwhile */
	snprintf(t->msg, sizeof t->msg, "%s", tl_store_errmsg(t->x->s));
	return NULL;
}

/*
 * The node calls the store from its writer job and from witness requests
 * on other threads at once: each thread reads the detail of its own failed
 * call, never the other's (a store-wide buffer would say "seq 2000" here).
 */
static void test_errmsg_per_thread(void **state)
{
	struct fx *x = *state;
	struct err_thread t = {.x = x};
	pthread_t th;
	uint8_t leaf[32];
	append_n(x, 3, 3);
	assert_int_equal(sem_init(&t.failed, 0, 0), 0);
	assert_int_equal(sem_init(&t.go_on, 0, 0), 0);
	assert_int_equal(pthread_create(&th, NULL, err_thread_main, &t), 0);
	sem_wait(&t.failed);
	assert_int_equal(tl_store_leaf(x->s, &x->f, 2000, leaf), TL_ERANGE);
	sem_post(&t.go_on);
	pthread_join(th, NULL);
	assert_int_equal(t.rc, TL_ERANGE);
	assert_non_null(strstr(t.msg, "seq 1000"));
	assert_non_null(strstr(tl_store_errmsg(x->s), "seq 2000"));
	sem_destroy(&t.failed);
	sem_destroy(&t.go_on);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_books_and_feeds, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_merkle_matches_memory, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_append_all_or_nothing, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_damage_detected, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reopen_and_version, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_checkpoints, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_find_leaf_across_merge, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_errmsg_per_thread, setup, teardown),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
