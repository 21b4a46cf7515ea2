/* test_merkle.c — RFC 6962 hashing, proofs, accumulator and in-memory source,
 * against the RFC 6962 8-leaf vectors, every transparency-dev/merkle
 * inclusion and consistency case, and exhaustive small-tree properties. */
#include <dirent.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/tl_crypto.h"
#include "tests/harness.h"

#define VEC_DIR   "tests/vectors/merkle/testdata"
#define PROP_MAX  130
#define MAX_FILES 512

typedef uint8_t hash_t[TL_HASH_LEN];

/* ------------------------------------------------------------- helpers */

static void hex32(hash_t out, const char *hex)
{
	assert_int_equal(th_unhex(out, TL_HASH_LEN, hex), TL_HASH_LEN);
}

/* Decodes base64 into a zero-padded 32-byte hash; returns the true length.
 * The API takes fixed-size hashes, so vectors with other lengths are run
 * padded (they are all expected to fail, except equal-root cases). */
static size_t b64_hash(hash_t out, const char *s)
{
	uint8_t buf[256];
	size_t n = 0;

	memset(out, 0, TL_HASH_LEN);
	assert_int_equal(tl_b64_decode(buf, sizeof(buf), &n, s, strlen(s)), 0);
	memcpy(out, buf, n < TL_HASH_LEN ? n : TL_HASH_LEN);
	return n;
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void collect_json(const char *dir, char **files, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char path[1024];

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			collect_json(path, files, n);
		} else if (strlen(e->d_name) > 5 &&
		           strcmp(e->d_name + strlen(e->d_name) - 5, ".json") == 0) {
			assert_true(*n < MAX_FILES);
			files[(*n)++] = strdup(path);
		}
	}
	closedir(d);
}

/* Proof array of exactly n hashes, so ASan catches any read past n. */
static hash_t *json_proof(json_t *arr, size_t *n, int *odd)
{
	hash_t *p;
	size_t i;

	*n = 0;
	*odd = 0;
	if (!arr || json_is_null(arr))
		return NULL;
	assert_true(json_is_array(arr));
	*n = json_array_size(arr);
	if (*n == 0)
		return NULL;
	p = malloc(*n * sizeof(hash_t));
	assert_non_null(p);
	for (i = 0; i < *n; i++)
		if (b64_hash(p[i], json_string_value(json_array_get(arr, i))) != TL_HASH_LEN)
			*odd = 1;
	return p;
}

/*
 * jansson's integers are signed 64-bit and the vectors use sizes up to
 * 2^64 - 1, so the size fields are read from the text and blanked to 0
 * before the JSON parse.
 */
static uint64_t take_u64_field(char *text, const char *key)
{
	char pat[64], *p, *end;
	uint64_t v;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(text, pat);
	assert_non_null(p);
	p += strlen(pat);
	while (*p == ' ')
		p++;
	end = p;
	while (*end >= '0' && *end <= '9')
		end++;
	assert_true(end > p);
	assert_int_equal(tl_parse_u64(p, (size_t)(end - p), &v), 0);
	*p++ = '0';
	while (p < end)
		*p++ = ' ';
	return v;
}

static int is_verify_error(int rc)
{
	return rc == TL_EPROOF || rc == TL_ERANGE || rc == TL_EINVAL;
}

/* Leaf hashes of "leaf <i>" for the property tests. */
static hash_t *make_leaves(size_t n)
{
	hash_t *l = malloc(n * sizeof(hash_t));
	char buf[32];
	size_t i;

	assert_non_null(l);
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "leaf %zu", i);
		tl_merkle_leaf_hash(l[i], (const uint8_t *)buf, strlen(buf));
	}
	return l;
}

/* Reference RFC 6962 MTH, PATH and SUBPROOF, straight from section 2.1. */
static void ref_mth(hash_t out, hash_t *d, uint64_t n)
{
	hash_t l, r;
	uint64_t k = 1;

	if (n == 1) {
		memcpy(out, d[0], TL_HASH_LEN);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	ref_mth(l, d, k);
	ref_mth(r, d + k, n - k);
	tl_merkle_node_hash(out, l, r);
}

static void ref_path(hash_t *out, size_t *n, uint64_t m, hash_t *d, uint64_t len)
{
	uint64_t k = 1;

	if (len == 1)
		return;
	while (k * 2 < len)
		k *= 2;
	if (m < k) {
		ref_path(out, n, m, d, k);
		ref_mth(out[(*n)++], d + k, len - k);
	} else {
		ref_path(out, n, m - k, d + k, len - k);
		ref_mth(out[(*n)++], d, k);
	}
}

static void ref_subproof(hash_t *out, size_t *n, uint64_t m, hash_t *d, uint64_t len, int b)
{
	uint64_t k = 1;

	if (m == len) {
		if (!b)
			ref_mth(out[(*n)++], d, len);
		return;
	}
	while (k * 2 < len)
		k *= 2;
	if (m <= k) {
		ref_subproof(out, n, m, d, k, b);
		ref_mth(out[(*n)++], d + k, len - k);
	} else {
		ref_subproof(out, n, m - k, d + k, len - k, 0);
		ref_mth(out[(*n)++], d, k);
	}
}

/* A source that counts calls and checks they stay inside `size`. */
struct counting {
	struct tl_merkle_src inner;
	uint64_t size;
	unsigned long calls;
};

static int counting_get(void *ctx, unsigned level, uint64_t index, uint8_t out[TL_HASH_LEN])
{
	struct counting *c = ctx;

	c->calls++;
	assert_true(level < 64);
	assert_true(index < (c->size >> level));
	return c->inner.get(c->inner.ctx, level, index, out);
}

/* A tree of 2^64 - 1 identical leaves: level l's hash is the same for
 * every index, so any subtree is O(1) and huge sizes are testable. */
struct uniform {
	hash_t level[64];
	uint64_t size;
	unsigned long calls;
};

static int uniform_get(void *ctx, unsigned level, uint64_t index, uint8_t out[TL_HASH_LEN])
{
	struct uniform *u = ctx;

	u->calls++;
	assert_true(level < 64);
	assert_true(index < (u->size >> level));
	memcpy(out, u->level[level], TL_HASH_LEN);
	return 0;
}

static void uniform_init(struct uniform *u, uint64_t size)
{
	unsigned l;

	tl_merkle_leaf_hash(u->level[0], (const uint8_t *)"x", 1);
	for (l = 1; l < 64; l++)
		tl_merkle_node_hash(u->level[l], u->level[l - 1], u->level[l - 1]);
	u->size = size;
	u->calls = 0;
}

static int failing_get(void *ctx, unsigned level, uint64_t index, uint8_t out[TL_HASH_LEN])
{
	(void)ctx;
	(void)level;
	(void)index;
	memset(out, 0, TL_HASH_LEN);
	return TL_ECORRUPT;
}

/* ---------------------------------------------------------- RFC 6962 */

static void hashes_known_answers(void **state)
{
	hash_t h, e;

	(void)state;
	tl_merkle_empty_root(h);
	hex32(e, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_memory_equal(h, e, TL_HASH_LEN);
	tl_merkle_leaf_hash(h, (const uint8_t *)"", 0);
	hex32(e, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
	assert_memory_equal(h, e, TL_HASH_LEN);
	/* node_hash may write over an input. */
	tl_merkle_node_hash(h, h, h);
	tl_merkle_leaf_hash(e, (const uint8_t *)"", 0);
	tl_merkle_node_hash(e, e, e);
	assert_memory_equal(h, e, TL_HASH_LEN);
}

static void rfc6962_eight_leaves(void **state)
{
	json_error_t jerr;
	json_t *root = json_load_file("tests/vectors/rfc6962-8leaf.json", 0, &jerr);
	json_t *leaves, *roots, *cases, *c;
	hash_t lh[8], want, got, gen[TL_MERKLE_MAX_PROOF], *proof;
	struct tl_merkle_mem mem;
	struct tl_merkle_src src;
	uint8_t data[64];
	size_t i, n, gn;
	long dl;

	(void)state;
	assert_non_null(root);
	leaves = json_object_get(root, "leaves_hex");
	roots = json_object_get(root, "roots_hex");
	assert_int_equal(json_array_size(leaves), 8);
	assert_int_equal(json_array_size(roots), 9);
	for (i = 0; i < 8; i++) {
		dl = th_unhex(data, sizeof(data), json_string_value(json_array_get(leaves, i)));
		assert_true(dl >= 0);
		tl_merkle_leaf_hash(lh[i], data, (size_t)dl);
	}
	assert_int_equal(tl_merkle_mem_build(&mem, (const hash_t *)lh, 8), 0);
	src = tl_merkle_mem_src(&mem);
	for (i = 0; i <= 8; i++) {
		hex32(want, json_string_value(json_array_get(roots, i)));
		assert_int_equal(tl_merkle_root(&src, i, got), 0);
		assert_memory_equal(got, want, TL_HASH_LEN);
	}

	cases = json_object_get(root, "inclusion");
	assert_true(json_array_size(cases) > 0);
	json_array_foreach(cases, i, c)
	{
		uint64_t idx = (uint64_t)json_integer_value(json_object_get(c, "index"));
		uint64_t size = (uint64_t)json_integer_value(json_object_get(c, "size"));
		hash_t leaf, r;
		size_t k;

		hex32(leaf, json_string_value(json_object_get(c, "leaf_hash")));
		hex32(r, json_string_value(json_object_get(c, "root")));
		n = json_array_size(json_object_get(c, "proof"));
		proof = malloc((n ? n : 1) * sizeof(hash_t));
		assert_non_null(proof);
		for (k = 0; k < n; k++)
			hex32(proof[k],
			      json_string_value(json_array_get(json_object_get(c, "proof"), k)));
		assert_memory_equal(leaf, lh[idx], TL_HASH_LEN);
		assert_int_equal(
		        tl_merkle_verify_inclusion(leaf, idx, size, (const hash_t *)proof, n, r),
		        0);
		assert_int_equal(
		        tl_merkle_inclusion_proof(&src, idx, size, gen, TL_MERKLE_MAX_PROOF, &gn),
		        0);
		assert_int_equal(gn, n);
		if (n)
			assert_memory_equal(gen, proof, n * sizeof(hash_t));
		free(proof);
	}

	cases = json_object_get(root, "consistency");
	assert_true(json_array_size(cases) > 0);
	json_array_foreach(cases, i, c)
	{
		uint64_t o = (uint64_t)json_integer_value(json_object_get(c, "old"));
		uint64_t nw = (uint64_t)json_integer_value(json_object_get(c, "new"));
		hash_t r1, r2;
		size_t k;

		hex32(r1, json_string_value(json_object_get(c, "old_root")));
		hex32(r2, json_string_value(json_object_get(c, "new_root")));
		n = json_array_size(json_object_get(c, "proof"));
		proof = malloc((n ? n : 1) * sizeof(hash_t));
		assert_non_null(proof);
		for (k = 0; k < n; k++)
			hex32(proof[k],
			      json_string_value(json_array_get(json_object_get(c, "proof"), k)));
		assert_int_equal(
		        tl_merkle_verify_consistency(o, nw, r1, r2, (const hash_t *)proof, n), 0);
		assert_int_equal(
		        tl_merkle_consistency_proof(&src, o, nw, gen, TL_MERKLE_MAX_PROOF, &gn), 0);
		assert_int_equal(gn, n);
		if (n)
			assert_memory_equal(gen, proof, n * sizeof(hash_t));
		free(proof);
	}
	tl_merkle_mem_release(&mem);
	json_decref(root);
}

/* ------------------------------------------------ transparency-dev cases */

/*
 * The API takes 32-byte hashes, so a caller rejects any other length while
 * decoding, before verifying: such a case counts as failed. It is still run
 * zero-padded, to show the verifier copes. The one passing case with short
 * hashes (equal sizes, equal 12-byte roots, no proof) passes padded too.
 */
static void run_inclusion_file(const char *path, json_t *j, int want_err, uint64_t idx,
                               uint64_t size)
{
	hash_t leaf, root, *proof;
	size_t n, ll, rl;
	int odd, rc;

	ll = b64_hash(leaf, json_string_value(json_object_get(j, "leafHash")));
	rl = b64_hash(root, json_string_value(json_object_get(j, "root")));
	proof = json_proof(json_object_get(j, "proof"), &n, &odd);
	rc = tl_merkle_verify_inclusion(leaf, idx, size, (const hash_t *)proof, n, root);
	if (rc)
		assert_true(is_verify_error(rc));
	if (odd || ll != TL_HASH_LEN || rl != TL_HASH_LEN)
		rc = TL_EFORMAT;
	if (want_err != (rc != 0))
		fail_msg("%s: wantErr=%d got %d (%s)", path, want_err, rc, tl_strerror(rc));
	free(proof);
}

static void run_consistency_file(const char *path, json_t *j, int want_err, uint64_t s1,
                                 uint64_t s2)
{
	hash_t r1, r2, *proof;
	size_t n, l1, l2;
	int odd, rc;

	l1 = b64_hash(r1, json_string_value(json_object_get(j, "root1")));
	l2 = b64_hash(r2, json_string_value(json_object_get(j, "root2")));
	proof = json_proof(json_object_get(j, "proof"), &n, &odd);
	rc = tl_merkle_verify_consistency(s1, s2, r1, r2, (const hash_t *)proof, n);
	if (rc)
		assert_true(is_verify_error(rc));
	if ((odd || l1 != TL_HASH_LEN || l2 != TL_HASH_LEN) && !(s1 == s2 && l1 == l2 && n == 0))
		rc = TL_EFORMAT;
	if (want_err != (rc != 0))
		fail_msg("%s: wantErr=%d got %d (%s)", path, want_err, rc, tl_strerror(rc));
	free(proof);
}

static void transparency_dev_vectors(void **state)
{
	char *files[MAX_FILES];
	size_t n = 0, i, ninc = 0, ncons = 0, nfail = 0;
	json_error_t jerr;
	uint64_t a, b;
	json_t *j;
	char *text;
	int want, inc;

	(void)state;
	collect_json(VEC_DIR, files, &n);
	qsort(files, n, sizeof(files[0]), path_cmp);
	for (i = 0; i < n; i++) {
		text = th_read_file(files[i], NULL);
		assert_non_null(text);
		inc = strstr(files[i], "/inclusion/") != NULL;
		a = take_u64_field(text, inc ? "leafIdx" : "size1");
		b = take_u64_field(text, inc ? "treeSize" : "size2");
		j = json_loads(text, 0, &jerr);
		free(text);
		if (!j)
			fail_msg("%s: %s", files[i], jerr.text);
		want = json_is_true(json_object_get(j, "wantErr"));
		assert_true(json_is_boolean(json_object_get(j, "wantErr")));
		nfail += (size_t)want;
		if (inc) {
			run_inclusion_file(files[i], j, want, a, b);
			ninc++;
		} else if (strstr(files[i], "/consistency/")) {
			run_consistency_file(files[i], j, want, a, b);
			ncons++;
		} else {
			fail_msg("unexpected vector %s", files[i]);
		}
		json_decref(j);
		free(files[i]);
	}
	/* The vendored set: every file was seen. */
	print_message("merkle vectors: %zu inclusion, %zu consistency, %zu expected failures\n",
	              ninc, ncons, nfail);
	assert_true(ninc >= 90);
	assert_true(ncons >= 90);
}

/* -------------------------------------------------------- properties */

static void flip_fails_inclusion(const hash_t leaf, uint64_t idx, uint64_t size, hash_t *proof,
                                 size_t n, const hash_t root)
{
	hash_t bad;
	size_t k;

	for (k = 0; k < n; k++) {
		proof[k][k % TL_HASH_LEN] ^= (uint8_t)(1u << (k % 8));
		assert_int_equal(
		        tl_merkle_verify_inclusion(leaf, idx, size, (const hash_t *)proof, n, root),
		        TL_EPROOF);
		proof[k][k % TL_HASH_LEN] ^= (uint8_t)(1u << (k % 8));
	}
	memcpy(bad, leaf, TL_HASH_LEN);
	bad[31] ^= 0x80;
	assert_int_equal(tl_merkle_verify_inclusion(bad, idx, size, (const hash_t *)proof, n, root),
	                 TL_EPROOF);
	memcpy(bad, root, TL_HASH_LEN);
	bad[0] ^= 1;
	assert_int_equal(tl_merkle_verify_inclusion(leaf, idx, size, (const hash_t *)proof, n, bad),
	                 TL_EPROOF);
	/* Dropping the last hash or adding one never verifies. */
	if (n)
		assert_int_not_equal(tl_merkle_verify_inclusion(leaf, idx, size,
		                                                (const hash_t *)proof, n - 1, root),
		                     0);
}

static void every_inclusion_proof_up_to_130(void **state)
{
	hash_t *leaves = make_leaves(PROP_MAX), *roots, proof[TL_MERKLE_MAX_PROOF],
	       ref[TL_MERKLE_MAX_PROOF];
	struct tl_merkle_mem mem;
	struct counting cnt;
	struct tl_merkle_src src = {counting_get, &cnt};
	uint64_t size, idx;
	size_t n, rn;

	(void)state;
	roots = malloc((PROP_MAX + 1) * sizeof(hash_t));
	assert_non_null(roots);
	assert_int_equal(tl_merkle_mem_build(&mem, (const hash_t *)leaves, PROP_MAX), 0);
	cnt.inner = tl_merkle_mem_src(&mem);
	for (size = 1; size <= PROP_MAX; size++) {
		cnt.size = size;
		assert_int_equal(tl_merkle_root(&src, size, roots[size]), 0);
		ref_mth(proof[0], leaves, size);
		assert_memory_equal(roots[size], proof[0], TL_HASH_LEN);
		for (idx = 0; idx < size; idx++) {
			cnt.calls = 0;
			assert_int_equal(tl_merkle_inclusion_proof(&src, idx, size, proof,
			                                           TL_MERKLE_MAX_PROOF, &n),
			                 0);
			/* O(log n) subtree lookups. */
			assert_true(cnt.calls <= 2 * 8 + 2);
			rn = 0;
			ref_path(ref, &rn, idx, leaves, size);
			assert_int_equal(n, rn);
			if (n)
				assert_memory_equal(proof, ref, n * sizeof(hash_t));
			assert_int_equal(tl_merkle_verify_inclusion(leaves[idx], idx, size,
			                                            (const hash_t *)proof, n,
			                                            roots[size]),
			                 0);
			flip_fails_inclusion(leaves[idx], idx, size, proof, n, roots[size]);
			if (size > 1)
				assert_int_not_equal(tl_merkle_verify_inclusion(
				                             leaves[idx], (idx + 1) % size, size,
				                             (const hash_t *)proof, n, roots[size]),
				                     0);
		}
	}
	tl_merkle_mem_release(&mem);
	free(roots);
	free(leaves);
}

static void every_consistency_proof_up_to_130(void **state)
{
	hash_t *leaves = make_leaves(PROP_MAX), *roots, proof[TL_MERKLE_MAX_PROOF],
	       ref[TL_MERKLE_MAX_PROOF];
	struct tl_merkle_mem mem;
	struct counting cnt;
	struct tl_merkle_src src = {counting_get, &cnt};
	uint64_t size, old;
	size_t n, rn, k;

	(void)state;
	roots = malloc((PROP_MAX + 1) * sizeof(hash_t));
	assert_non_null(roots);
	assert_int_equal(tl_merkle_mem_build(&mem, (const hash_t *)leaves, PROP_MAX), 0);
	cnt.inner = tl_merkle_mem_src(&mem);
	cnt.size = PROP_MAX;
	for (size = 0; size <= PROP_MAX; size++)
		assert_int_equal(tl_merkle_root(&src, size, roots[size]), 0);
	for (size = 1; size <= PROP_MAX; size++) {
		cnt.size = size;
		for (old = 1; old <= size; old++) {
			cnt.calls = 0;
			assert_int_equal(tl_merkle_consistency_proof(&src, old, size, proof,
			                                             TL_MERKLE_MAX_PROOF, &n),
			                 0);
			assert_true(cnt.calls <= 2 * 8 + 3);
			rn = 0;
			if (old < size)
				ref_subproof(ref, &rn, old, leaves, size, 1);
			assert_int_equal(n, rn);
			if (n)
				assert_memory_equal(proof, ref, n * sizeof(hash_t));
			assert_int_equal(tl_merkle_verify_consistency(old, size, roots[old],
			                                              roots[size],
			                                              (const hash_t *)proof, n),
			                 0);
			for (k = 0; k < n; k++) {
				proof[k][(k * 7) % TL_HASH_LEN] ^= 0x10;
				assert_int_equal(tl_merkle_verify_consistency(
				                         old, size, roots[old], roots[size],
				                         (const hash_t *)proof, n),
				                 TL_EPROOF);
				proof[k][(k * 7) % TL_HASH_LEN] ^= 0x10;
			}
			if (n) {
				assert_int_not_equal(tl_merkle_verify_consistency(
				                             old, size, roots[old], roots[size],
				                             (const hash_t *)proof, n - 1),
				                     0);
				assert_int_not_equal(tl_merkle_verify_consistency(
				                             old, size, roots[size], roots[old],
				                             (const hash_t *)proof, n),
				                     0);
			}
			if (old < size)
				assert_int_not_equal(tl_merkle_verify_consistency(
				                             old, size, roots[old], roots[size - 1],
				                             (const hash_t *)proof, n),
				                     0);
		}
	}
	tl_merkle_mem_release(&mem);
	free(roots);
	free(leaves);
}

static void accumulator_matches_tree(void **state)
{
	hash_t *leaves = make_leaves(PROP_MAX), completed[64], r1, r2;
	struct tl_merkle_acc *acc = malloc(sizeof(*acc)), *loaded = malloc(sizeof(*loaded));
	struct tl_merkle_mem mem;
	struct tl_merkle_src src;
	uint64_t i, newsize;
	unsigned nc, k, l;

	(void)state;
	assert_non_null(acc);
	assert_non_null(loaded);
	assert_int_equal(tl_merkle_mem_build(&mem, (const hash_t *)leaves, PROP_MAX), 0);
	src = tl_merkle_mem_src(&mem);
	tl_merkle_acc_init(acc);
	tl_merkle_acc_root(acc, r1);
	tl_merkle_empty_root(r2);
	assert_memory_equal(r1, r2, TL_HASH_LEN);
	for (i = 0; i < PROP_MAX; i++) {
		tl_merkle_acc_push(acc, leaves[i], completed, &nc);
		newsize = i + 1;
		assert_true(acc->size == newsize);
		/* Trailing ones of the old size. */
		for (k = 0; (i >> k) & 1; k++)
			;
		assert_int_equal(nc, k);
		for (k = 0; k < nc; k++)
			assert_memory_equal(completed[k],
			                    mem.levels[k + 1][(newsize >> (k + 1)) - 1],
			                    TL_HASH_LEN);
		tl_merkle_acc_root(acc, r1);
		assert_int_equal(tl_merkle_root(&src, newsize, r2), 0);
		assert_memory_equal(r1, r2, TL_HASH_LEN);
		assert_int_equal(tl_merkle_acc_load(loaded, &src, newsize), 0);
		assert_true(loaded->size == newsize);
		for (l = 0; l < 64; l++)
			if ((newsize >> l) & 1)
				assert_memory_equal(loaded->frontier[l], acc->frontier[l],
				                    TL_HASH_LEN);
		tl_merkle_acc_root(loaded, r2);
		assert_memory_equal(r1, r2, TL_HASH_LEN);
	}
	/* A push without an output array still advances. */
	tl_merkle_acc_push(acc, leaves[0], NULL, NULL);
	assert_true(acc->size == PROP_MAX + 1);
	tl_merkle_mem_release(&mem);
	free(acc);
	free(loaded);
	free(leaves);
}

static void huge_trees_cost_log_n(void **state)
{
	static const uint64_t sizes[] = {
	        (uint64_t)1 << 63, ((uint64_t)1 << 63) + 1, ((uint64_t)1 << 63) + 12345, UINT64_MAX,
	        UINT64_MAX - 1,    ((uint64_t)1 << 40) + 3, 0x5555555555555555ULL};
	struct uniform *u = malloc(sizeof(*u));
	struct tl_merkle_src src = {uniform_get, u};
	struct tl_merkle_acc *acc = malloc(sizeof(*acc));
	hash_t root, oldroot, ar, proof[TL_MERKLE_MAX_PROOF];
	uint64_t size, idxs[4], old;
	size_t i, j, n;

	(void)state;
	assert_non_null(u);
	assert_non_null(acc);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size = sizes[i];
		uniform_init(u, size);
		assert_int_equal(tl_merkle_root(&src, size, root), 0);
		assert_true(u->calls <= 64);
		assert_int_equal(tl_merkle_acc_load(acc, &src, size), 0);
		tl_merkle_acc_root(acc, ar);
		assert_memory_equal(ar, root, TL_HASH_LEN);
		idxs[0] = 0;
		idxs[1] = size - 1;
		idxs[2] = size / 2;
		idxs[3] = size / 3 + 7;
		for (j = 0; j < 4; j++) {
			u->calls = 0;
			assert_int_equal(tl_merkle_inclusion_proof(&src, idxs[j], size, proof,
			                                           TL_MERKLE_MAX_PROOF, &n),
			                 0);
			assert_true(u->calls <= 2 * 64 + 2);
			assert_true(n <= 64);
			assert_int_equal(tl_merkle_verify_inclusion(u->level[0], idxs[j], size,
			                                            (const hash_t *)proof, n, root),
			                 0);
			proof[n / 2][3] ^= 4;
			assert_int_equal(tl_merkle_verify_inclusion(u->level[0], idxs[j], size,
			                                            (const hash_t *)proof, n, root),
			                 TL_EPROOF);
			/* Too small an output array is refused, not overrun. */
			assert_int_equal(
			        tl_merkle_inclusion_proof(&src, idxs[j], size, proof, n - 1, &n),
			        TL_ETOOBIG);
		}
		old = size / 2 + 1;
		u->size = old;
		assert_int_equal(tl_merkle_root(&src, old, oldroot), 0);
		u->size = size;
		u->calls = 0;
		assert_int_equal(tl_merkle_consistency_proof(&src, old, size, proof,
		                                             TL_MERKLE_MAX_PROOF, &n),
		                 0);
		assert_true(u->calls <= 2 * 64 + 3);
		assert_int_equal(tl_merkle_verify_consistency(old, size, oldroot, root,
		                                              (const hash_t *)proof, n),
		                 0);
	}
	free(acc);
	free(u);
}

static void bad_parameters_fail_cleanly(void **state)
{
	hash_t h, e, proof[TL_MERKLE_MAX_PROOF];
	struct tl_merkle_src bad = {failing_get, NULL};
	struct tl_merkle_mem mem;
	struct tl_merkle_src src;
	size_t n = 7;

	(void)state;
	memset(h, 0, sizeof(h));
	memset(proof, 0xab, sizeof(proof));
	/* index >= size, including size 0 and the top of the range. */
	assert_int_equal(tl_merkle_verify_inclusion(h, 0, 0, NULL, 0, h), TL_ERANGE);
	assert_int_equal(tl_merkle_verify_inclusion(h, 5, 5, NULL, 0, h), TL_ERANGE);
	assert_int_equal(tl_merkle_verify_inclusion(h, UINT64_MAX, UINT64_MAX, NULL, 0, h),
	                 TL_ERANGE);
	assert_int_equal(tl_merkle_verify_inclusion(h, 0, 1, NULL, 3, h), TL_EINVAL);
	/* A huge claimed n is never read past what the size allows. */
	assert_int_equal(tl_merkle_verify_inclusion(h, 3, (uint64_t)1 << 63, (const hash_t *)proof,
	                                            TL_MERKLE_MAX_PROOF, h),
	                 TL_EPROOF);
	assert_int_equal(tl_merkle_verify_inclusion(h, UINT64_MAX - 1, UINT64_MAX,
	                                            (const hash_t *)proof, TL_MERKLE_MAX_PROOF, h),
	                 TL_EPROOF);
	assert_int_equal(tl_merkle_verify_consistency(5, 4, h, h, NULL, 0), TL_ERANGE);
	assert_int_equal(tl_merkle_verify_consistency(0, 4, h, h, NULL, 0), TL_EINVAL);
	assert_int_equal(tl_merkle_verify_consistency(3, (uint64_t)1 << 63, h, h,
	                                              (const hash_t *)proof, TL_MERKLE_MAX_PROOF),
	                 TL_EPROOF);
	assert_int_equal(tl_merkle_verify_consistency(UINT64_MAX - 1, UINT64_MAX, h, h,
	                                              (const hash_t *)proof, TL_MERKLE_MAX_PROOF),
	                 TL_EPROOF);
	assert_int_equal(tl_merkle_verify_consistency(1, 2, h, h, NULL, 0), TL_EPROOF);
	tl_merkle_empty_root(e);
	assert_int_equal(tl_merkle_verify_consistency(0, 0, e, e, NULL, 0), 0);
	assert_int_equal(tl_merkle_verify_consistency(0, 0, h, h, NULL, 0), TL_EPROOF);

	/* Generation. */
	assert_int_equal(tl_merkle_mem_build(&mem, NULL, 0), 0);
	src = tl_merkle_mem_src(&mem);
	assert_int_equal(tl_merkle_root(&src, 0, h), 0);
	assert_memory_equal(h, e, TL_HASH_LEN);
	assert_int_equal(tl_merkle_root(&src, 1, h), TL_ERANGE);
	assert_int_equal(tl_merkle_inclusion_proof(&src, 0, 0, proof, 8, &n), TL_ERANGE);
	assert_int_equal(n, 0);
	assert_int_equal(tl_merkle_inclusion_proof(&bad, 9, 9, proof, 8, &n), TL_ERANGE);
	assert_int_equal(tl_merkle_inclusion_proof(&bad, 3, 9, proof, 8, &n), TL_ECORRUPT);
	assert_int_equal(tl_merkle_consistency_proof(&bad, 0, 9, proof, 8, &n), TL_ERANGE);
	assert_int_equal(tl_merkle_consistency_proof(&bad, 10, 9, proof, 8, &n), TL_ERANGE);
	assert_int_equal(tl_merkle_consistency_proof(&bad, 3, 9, proof, 8, &n), TL_ECORRUPT);
	assert_int_equal(tl_merkle_consistency_proof(&bad, 9, 9, proof, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(tl_merkle_consistency_proof(&bad, 3, 9, proof, 0, &n), TL_ETOOBIG);
	assert_int_equal(tl_merkle_range_hash(&bad, 3, 3, h), TL_ERANGE);
	assert_int_equal(tl_merkle_range_hash(&bad, 3, 4, h), TL_ECORRUPT);
	assert_int_equal(tl_merkle_root(&bad, 5, h), TL_ECORRUPT);
	tl_merkle_mem_release(&mem);
}

static void range_hash_any_range(void **state)
{
	hash_t *leaves = make_leaves(40), got, want;
	struct tl_merkle_mem mem;
	struct tl_merkle_src src;
	uint64_t lo, hi;

	(void)state;
	assert_int_equal(tl_merkle_mem_build(&mem, (const hash_t *)leaves, 40), 0);
	src = tl_merkle_mem_src(&mem);
	for (lo = 0; lo < 40; lo++) {
		for (hi = lo + 1; hi <= 40; hi++) {
			assert_int_equal(tl_merkle_range_hash(&src, lo, hi, got), 0);
			ref_mth(want, leaves + lo, hi - lo);
			assert_memory_equal(got, want, TL_HASH_LEN);
		}
	}
	tl_merkle_mem_release(&mem);
	free(leaves);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(hashes_known_answers),
	        cmocka_unit_test(rfc6962_eight_leaves),
	        cmocka_unit_test(transparency_dev_vectors),
	        cmocka_unit_test(every_inclusion_proof_up_to_130),
	        cmocka_unit_test(every_consistency_proof_up_to_130),
	        cmocka_unit_test(accumulator_matches_tree),
	        cmocka_unit_test(huge_trees_cost_log_n),
	        cmocka_unit_test(bad_parameters_fail_cleanly),
	        cmocka_unit_test(range_hash_any_range),
	};

	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
