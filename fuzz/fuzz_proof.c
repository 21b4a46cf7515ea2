/*
 * fuzz_proof.c — tlog-proof files and Merkle proof verification from
 * untrusted bytes.
 *
 * A parsed tlog-proof must format back to the same bytes, and its
 * inclusion proof is checked against its checkpoint with the extra data as
 * the leaf. The same input also drives the verifiers directly, with the
 * proof in an allocation of exactly n hashes so that any read past n is
 * caught, and drives generation on a small tree whose proofs must verify.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/tl_crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void check_tlog_proof(const uint8_t *data, size_t size)
{
	struct tl_tlog_proof *p = malloc(sizeof(*p));
	uint8_t leaf[TL_HASH_LEN];
	struct tl_buf b;
	int rc;

	if (!p)
		abort();
	if (tl_tlog_proof_parse(p, (const char *)data, size) != 0) {
		if (p->extra || p->note.raw)
			abort();
		free(p);
		return;
	}
	tl_merkle_leaf_hash(leaf, p->extra ? p->extra : (const uint8_t *)"", p->extra_len);
	rc = tl_merkle_verify_inclusion(leaf, p->index, p->cp.size,
	                                (const uint8_t(*)[TL_HASH_LEN])p->proof, p->nproof,
	                                p->cp.root);
	if (rc != 0 && rc != TL_EPROOF && rc != TL_ERANGE)
		abort();
	tl_buf_init(&b, 4 * (size_t)TL_NOTE_MAX);
	if (tl_tlog_proof_format(&b, p->extra, p->extra_len, p->index,
	                         (const uint8_t(*)[TL_HASH_LEN])p->proof, p->nproof, p->note.raw,
	                         strlen(p->note.raw)) != 0)
		abort();
	if (b.len != size || memcmp(b.data, data, size) != 0)
		abort();
	tl_buf_release(&b);
	tl_tlog_proof_release(p);
	free(p);
}

static void check_verifiers(const uint8_t *data, size_t size)
{
	uint8_t(*proof)[TL_HASH_LEN];
	uint64_t a, b;
	size_t n;
	int rc;

	if (size < 16 + 2 * TL_HASH_LEN)
		return;
	a = be64(data);
	b = be64(data + 8);
	n = (size - 16 - 2 * TL_HASH_LEN) / TL_HASH_LEN;
	proof = malloc(n ? n * TL_HASH_LEN : 1);
	if (!proof)
		abort();
	memcpy(proof, data + 16 + 2 * TL_HASH_LEN, n * TL_HASH_LEN);
	rc = tl_merkle_verify_consistency(a, b, data + 16, data + 16 + TL_HASH_LEN,
	                                  (const uint8_t(*)[TL_HASH_LEN])proof, n);
	if (rc != 0 && rc != TL_EPROOF && rc != TL_ERANGE && rc != TL_EINVAL)
		abort();
	rc = tl_merkle_verify_inclusion(data + 16, a, b, (const uint8_t(*)[TL_HASH_LEN])proof, n,
	                                data + 16 + TL_HASH_LEN);
	if (rc != 0 && rc != TL_EPROOF && rc != TL_ERANGE)
		abort();
	free(proof);
}

/* Sizes from the first bytes, a tree of up to 255 leaves from the rest. */
static void check_generation(const uint8_t *data, size_t size)
{
	uint8_t leaves[255][TL_HASH_LEN], proof[TL_MERKLE_MAX_PROOF][TL_HASH_LEN];
	uint8_t r_old[TL_HASH_LEN], r_new[TL_HASH_LEN];
	struct tl_merkle_mem m;
	struct tl_merkle_src src;
	uint64_t tree, old, idx, i;
	size_t n;

	if (size < 3 || data[0] == 0)
		return;
	tree = data[0];
	old = data[1] % tree + 1;
	idx = data[2] % tree;
	for (i = 0; i < tree; i++)
		tl_merkle_leaf_hash(leaves[i], data + (i % size), size - (i % size));
	if (tl_merkle_mem_build(&m, (const uint8_t(*)[TL_HASH_LEN])leaves, tree) != 0)
		abort();
	src = tl_merkle_mem_src(&m);
	if (tl_merkle_root(&src, tree, r_new) != 0 || tl_merkle_root(&src, old, r_old) != 0)
		abort();
	if (tl_merkle_inclusion_proof(&src, idx, tree, proof, TL_MERKLE_MAX_PROOF, &n) != 0 ||
	    tl_merkle_verify_inclusion(leaves[idx], idx, tree, (const uint8_t(*)[TL_HASH_LEN])proof,
	                               n, r_new) != 0)
		abort();
	if (tl_merkle_consistency_proof(&src, old, tree, proof, TL_MERKLE_MAX_PROOF, &n) != 0 ||
	    tl_merkle_verify_consistency(old, tree, r_old, r_new,
	                                 (const uint8_t(*)[TL_HASH_LEN])proof, n) != 0)
		abort();
	tl_merkle_mem_release(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready) {
		if (tl_init() != 0)
			abort();
		ready = 1;
	}
	check_tlog_proof(data, size);
	check_verifiers(data, size);
	check_generation(data, size);
	return 0;
}
