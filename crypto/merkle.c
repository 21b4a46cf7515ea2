/*
 * merkle.c — RFC 6962 / RFC 9162 Merkle tree: hashing, proof generation
 * from a complete-subtree source, proof verification, the compact-range
 * accumulator and an in-memory source.
 *
 * Generation works on the tree's perfect aligned subtrees: every proof node
 * is either a perfect subtree (one source call) or the right-border range
 * [start, size) with an aligned start, which folds from at most 64 perfect
 * subtrees. So a proof costs O(log n) source calls.
 */
#include "crypto/tl_crypto.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */

static unsigned bit_len(uint64_t x)
{
	unsigned n = 0;

	while (x) {
		n++;
		x >>= 1;
	}
	return n;
}

static unsigned trailing_zeros(uint64_t x)
{
	unsigned n = 0;

	if (!x)
		return 64;
	while (!(x & 1)) {
		n++;
		x >>= 1;
	}
	return n;
}

static unsigned popcount(uint64_t x)
{
	unsigned n = 0;

	while (x) {
		x &= x - 1;
		n++;
	}
	return n;
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
	return (uint64_t)1 << (bit_len(n - 1) - 1);
}

/* ------------------------------------------------------------- hashing */

void tl_merkle_leaf_hash(uint8_t out[TL_HASH_LEN], const uint8_t *data, size_t len)
{
	crypto_hash_sha256_state st;
	static const uint8_t prefix = 0x00;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &prefix, 1);
	crypto_hash_sha256_update(&st, data, len);
	crypto_hash_sha256_final(&st, out);
}

void tl_merkle_node_hash(uint8_t out[TL_HASH_LEN], const uint8_t left[TL_HASH_LEN],
                         const uint8_t right[TL_HASH_LEN])
{
	uint8_t buf[1 + 2 * TL_HASH_LEN];

	/* Copy first: out may alias left or right. */
	buf[0] = 0x01;
	memcpy(buf + 1, left, TL_HASH_LEN);
	memcpy(buf + 1 + TL_HASH_LEN, right, TL_HASH_LEN);
	crypto_hash_sha256(out, buf, sizeof(buf));
}

void tl_merkle_empty_root(uint8_t out[TL_HASH_LEN])
{
	crypto_hash_sha256(out, (const uint8_t *)"", 0);
}

/* ---------------------------------------------------------- generation */

static int get_node(const struct tl_merkle_src *src, unsigned level, uint64_t index,
                    uint8_t out[TL_HASH_LEN])
{
	return src->get(src->ctx, level, index, out);
}

/*
 * MTH(D[lo:hi]). When lo is aligned to the largest power of two below the
 * length (always so for proof and root ranges) the left half is one perfect
 * subtree and only the right half recurses, so the cost is O(log n) calls.
 * Unaligned ranges are still answered correctly, at a higher cost.
 */
static int range_hash(const struct tl_merkle_src *src, uint64_t lo, uint64_t hi,
                      uint8_t out[TL_HASH_LEN])
{
	uint8_t left[TL_HASH_LEN], right[TL_HASH_LEN];
	uint64_t len = hi - lo, k;
	unsigned level;
	int err;

	if ((len & (len - 1)) == 0) {
		level = trailing_zeros(len);
		if ((lo & (len - 1)) == 0)
			return get_node(src, level, lo >> level, out);
	}
	k = split_point(len);
	err = range_hash(src, lo, lo + k, left);
	if (!err)
		err = range_hash(src, lo + k, hi, right);
	if (!err)
		tl_merkle_node_hash(out, left, right);
	return err;
}

int tl_merkle_range_hash(const struct tl_merkle_src *src, uint64_t lo, uint64_t hi,
                         uint8_t out[TL_HASH_LEN])
{
	if (!src || !src->get || !out)
		return TL_EINVAL;
	if (hi <= lo)
		return TL_ERANGE;
	return range_hash(src, lo, hi, out);
}

int tl_merkle_root(const struct tl_merkle_src *src, uint64_t size, uint8_t root[TL_HASH_LEN])
{
	if (!src || !src->get || !root)
		return TL_EINVAL;
	if (size == 0) {
		tl_merkle_empty_root(root);
		return 0;
	}
	return range_hash(src, 0, size, root);
}

/*
 * Appends the audit path of the level-`level` node `index` in a tree of
 * `size` leaves, from `level` upwards. Below `inner` the node and the last
 * leaf are in different subtrees, so its siblings are perfect, except the
 * topmost one which runs into the right border. From `inner` up the node
 * is on the right border and its siblings are the perfect left subtrees
 * given by the set bits of its index.
 */
static int path_from(const struct tl_merkle_src *src, unsigned level, uint64_t index, uint64_t size,
                     uint8_t (*proof)[TL_HASH_LEN], size_t cap, size_t *n)
{
	uint64_t last = (size - 1) >> level, sib, lo, hi;
	unsigned inner = bit_len(index ^ last), l;
	size_t need = inner;
	int err;

	if (inner < 64)
		need += popcount(index >> inner);

	if (need > cap - *n)
		return TL_ETOOBIG;
	for (l = 0; l < inner; l++) {
		sib = (index >> l) ^ 1;
		if (l + 1 < inner) {
			err = get_node(src, level + l, sib, proof[(*n)++]);
		} else {
			/* Right sibling truncated by the tree size. */
			lo = sib << (level + l);
			hi = size;
			if (hi - lo > ((uint64_t)1 << (level + l)))
				hi = lo + ((uint64_t)1 << (level + l));
			err = range_hash(src, lo, hi, proof[(*n)++]);
		}
		if (err)
			return err;
	}
	for (l = inner; level + l < 64; l++) {
		if ((index >> l) & 1) {
			err = get_node(src, level + l, (index >> l) ^ 1, proof[(*n)++]);
			if (err)
				return err;
		}
	}
	return 0;
}

int tl_merkle_inclusion_proof(const struct tl_merkle_src *src, uint64_t index, uint64_t size,
                              uint8_t (*proof)[TL_HASH_LEN], size_t cap, size_t *n)
{
	int err;

	if (!src || !src->get || !n || (!proof && cap))
		return TL_EINVAL;
	*n = 0;
	if (index >= size)
		return TL_ERANGE;
	err = path_from(src, 0, index, size, proof, cap, n);
	if (err)
		*n = 0;
	return err;
}

int tl_merkle_consistency_proof(const struct tl_merkle_src *src, uint64_t old_size,
                                uint64_t new_size, uint8_t (*proof)[TL_HASH_LEN], size_t cap,
                                size_t *n)
{
	unsigned shift;
	uint64_t node;
	int err;

	if (!src || !src->get || !n || (!proof && cap))
		return TL_EINVAL;
	*n = 0;
	if (old_size == 0 || old_size > new_size)
		return TL_ERANGE;
	if (old_size == new_size)
		return 0;
	/*
	 * The old tree's last leaf sits in a perfect subtree of 2^shift leaves
	 * that both trees share; the proof is that subtree (omitted when it is
	 * the whole old tree, which the verifier already has) followed by its
	 * audit path in the new tree.
	 */
	shift = trailing_zeros(old_size);
	node = (old_size - 1) >> shift;
	if (node != 0) {
		if (cap == 0)
			return TL_ETOOBIG;
		err = get_node(src, shift, node, proof[0]);
		if (err)
			return err;
		*n = 1;
	}
	err = path_from(src, shift, node, new_size, proof, cap, n);
	if (err)
		*n = 0;
	return err;
}

/* -------------------------------------------------------- verification */

int tl_merkle_verify_inclusion(const uint8_t leaf[TL_HASH_LEN], uint64_t index, uint64_t size,
                               const uint8_t (*proof)[TL_HASH_LEN], size_t n,
                               const uint8_t root[TL_HASH_LEN])
{
	uint8_t r[TL_HASH_LEN];
	uint64_t fn = index, sn;
	size_t i;

	if (!leaf || !root || (!proof && n))
		return TL_EINVAL;
	if (index >= size)
		return TL_ERANGE;
	sn = size - 1;
	memcpy(r, leaf, TL_HASH_LEN);
	/* RFC 9162 section 2.1.3.2. Each step shifts sn, so at most 64 proof
	 * hashes are ever read, whatever n claims. */
	for (i = 0; i < n; i++) {
		if (sn == 0)
			return TL_EPROOF;
		if ((fn & 1) || fn == sn) {
			tl_merkle_node_hash(r, proof[i], r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			tl_merkle_node_hash(r, r, proof[i]);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(r, root, TL_HASH_LEN) != 0)
		return TL_EPROOF;
	return 0;
}

int tl_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
                                 const uint8_t old_root[TL_HASH_LEN],
                                 const uint8_t new_root[TL_HASH_LEN],
                                 const uint8_t (*proof)[TL_HASH_LEN], size_t n)
{
	uint8_t fr[TL_HASH_LEN], sr[TL_HASH_LEN], empty[TL_HASH_LEN];
	uint64_t fn, sn;
	size_t i;

	if (!old_root || !new_root || (!proof && n))
		return TL_EINVAL;
	if (old_size > new_size)
		return TL_ERANGE;
	if (old_size == new_size) {
		if (n != 0 || memcmp(old_root, new_root, TL_HASH_LEN) != 0)
			return TL_EPROOF;
		/* The empty tree has exactly one root. */
		if (old_size == 0) {
			tl_merkle_empty_root(empty);
			if (memcmp(old_root, empty, TL_HASH_LEN) != 0)
				return TL_EPROOF;
		}
		return 0;
	}
	/* Nothing binds an empty old tree to anything (RFC 9162 starts at 1);
	 * callers accept growth from size 0 on their own terms. */
	if (old_size == 0)
		return TL_EINVAL;
	if (n == 0)
		return TL_EPROOF;

	/* RFC 9162 section 2.1.4.2; a power-of-two old tree is its own first
	 * proof node, implied rather than sent. */
	i = 0;
	if ((old_size & (old_size - 1)) == 0) {
		memcpy(fr, old_root, TL_HASH_LEN);
	} else {
		memcpy(fr, proof[0], TL_HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, TL_HASH_LEN);
	fn = old_size - 1;
	sn = new_size - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < n; i++) {
		if (sn == 0)
			return TL_EPROOF;
		if ((fn & 1) || fn == sn) {
			tl_merkle_node_hash(fr, proof[i], fr);
			tl_merkle_node_hash(sr, proof[i], sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			tl_merkle_node_hash(sr, sr, proof[i]);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(fr, old_root, TL_HASH_LEN) != 0 ||
	    memcmp(sr, new_root, TL_HASH_LEN) != 0)
		return TL_EPROOF;
	return 0;
}

/* --------------------------------------------------------- accumulator */

void tl_merkle_acc_init(struct tl_merkle_acc *acc)
{
	memset(acc, 0, sizeof(*acc));
}

void tl_merkle_acc_push(struct tl_merkle_acc *acc, const uint8_t leaf[TL_HASH_LEN],
                        uint8_t (*completed)[TL_HASH_LEN], unsigned *ncompleted)
{
	uint8_t h[TL_HASH_LEN];
	unsigned l = 0;

	if (ncompleted)
		*ncompleted = 0;
	/* A 2^64 - 1 leaf tree cannot grow: the frontier has no 65th level. */
	if (acc->size == UINT64_MAX)
		return;
	memcpy(h, leaf, TL_HASH_LEN);
	while ((acc->size >> l) & 1) {
		tl_merkle_node_hash(h, acc->frontier[l], h);
		if (completed)
			memcpy(completed[l], h, TL_HASH_LEN);
		l++;
	}
	memcpy(acc->frontier[l], h, TL_HASH_LEN);
	acc->size++;
	if (ncompleted)
		*ncompleted = l;
}

void tl_merkle_acc_root(const struct tl_merkle_acc *acc, uint8_t root[TL_HASH_LEN])
{
	uint8_t h[TL_HASH_LEN];
	unsigned l;

	if (acc->size == 0) {
		tl_merkle_empty_root(root);
		return;
	}
	l = trailing_zeros(acc->size);
	memcpy(h, acc->frontier[l], TL_HASH_LEN);
	for (l++; l < 64; l++)
		if ((acc->size >> l) & 1)
			tl_merkle_node_hash(h, acc->frontier[l], h);
	memcpy(root, h, TL_HASH_LEN);
}

int tl_merkle_acc_load(struct tl_merkle_acc *acc, const struct tl_merkle_src *src, uint64_t size)
{
	struct tl_merkle_acc tmp;
	unsigned l;
	int err;

	if (!acc || !src || !src->get)
		return TL_EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	for (l = 0; l < 64; l++) {
		if (!((size >> l) & 1))
			continue;
		err = get_node(src, l, (size >> l) - 1, tmp.frontier[l]);
		if (err)
			return err;
	}
	tmp.size = size;
	*acc = tmp;
	return 0;
}

/* ---------------------------------------------------- in-memory source */

int tl_merkle_mem_build(struct tl_merkle_mem *m, const uint8_t (*leaves)[TL_HASH_LEN], uint64_t n)
{
	uint64_t i;
	unsigned l;

	memset(m, 0, sizeof(*m));
	if (n && !leaves)
		return TL_EINVAL;
	if (n > SIZE_MAX / TL_HASH_LEN)
		return TL_ETOOBIG;
	for (l = 0; l < 65 && n; l++, n /= 2) {
		m->levels[l] = malloc((size_t)n * TL_HASH_LEN);
		if (!m->levels[l]) {
			tl_merkle_mem_release(m);
			return TL_ENOMEM;
		}
		m->counts[l] = n;
		if (l == 0) {
			memcpy(m->levels[0], leaves, (size_t)n * TL_HASH_LEN);
			continue;
		}
		for (i = 0; i < n; i++)
			tl_merkle_node_hash(m->levels[l][i], m->levels[l - 1][2 * i],
			                    m->levels[l - 1][2 * i + 1]);
	}
	return 0;
}

void tl_merkle_mem_release(struct tl_merkle_mem *m)
{
	unsigned l;

	for (l = 0; l < 65; l++)
		free(m->levels[l]);
	memset(m, 0, sizeof(*m));
}

static int mem_get(void *ctx, unsigned level, uint64_t index, uint8_t out[TL_HASH_LEN])
{
	const struct tl_merkle_mem *m = ctx;

	if (level >= 65 || index >= m->counts[level])
		return TL_ERANGE;
	memcpy(out, m->levels[level][index], TL_HASH_LEN);
	return 0;
}

struct tl_merkle_src tl_merkle_mem_src(struct tl_merkle_mem *m)
{
	struct tl_merkle_src s;

	s.get = mem_get;
	s.ctx = m;
	return s;
}
