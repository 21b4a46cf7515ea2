/* test_signer.c — the streaming signer makes standard Ed25519 signatures. */
#include "harness.h"

#include <sodium.h>
#include <string.h>

#include "consensus/tl_consensus.h"

/* Every signature verifies under libsodium's strict verifier, over the
 * concatenation of the two parts, whether the pair came from the pool or
 * was computed inline (0 workers). */
static void check_signer(unsigned workers)
{
	struct tl_keypair kp, other;
	struct tl_signer *s;
	uint8_t seed[32], msg[600], sig[64], cat[700];
	memset(seed, 0x42, 32);
	assert_int_equal(tl_key_from_seed(&kp, seed), 0);
	memset(seed, 0x43, 32);
	assert_int_equal(tl_key_from_seed(&other, seed), 0);
	assert_int_equal(tl_signer_new(&s, &kp, workers), 0);
	for (size_t i = 0; i < 3000; i++) {
		size_t l1 = i % 17, l2 = (i * 7) % 580;
		randombytes_buf(msg, l1 + l2);
		tl_signer_sign(s, sig, msg, l1, msg + l1, l2);
		memcpy(cat, msg, l1 + l2);
		assert_int_equal(crypto_sign_verify_detached(sig, cat, l1 + l2, kp.pk), 0);
		if (i % 100 == 0) {
			/* Not valid for another key, nor for another message. */
			assert_int_not_equal(
			        crypto_sign_verify_detached(sig, cat, l1 + l2, other.pk), 0);
			cat[0] ^= 1;
			if (l1 + l2 > 0)
				assert_int_not_equal(
				        crypto_sign_verify_detached(sig, cat, l1 + l2, kp.pk), 0);
		}
	}
	tl_signer_free(s);
}

static void test_pool_signatures_verify(void **state)
{
	(void)state;
	check_signer(1);
	check_signer(2);
}

static void test_inline_signatures_verify(void **state)
{
	(void)state;
	check_signer(0);
}

/* Hedged nonces: the same message signed twice gives two different, valid
 * signatures (a deterministic signer would repeat itself). */
static void test_nonces_differ(void **state)
{
	(void)state;
	struct tl_keypair kp;
	struct tl_signer *s;
	uint8_t seed[32] = {9}, a[64], b[64];
	const uint8_t m[] = "statement";
	assert_int_equal(tl_key_from_seed(&kp, seed), 0);
	assert_int_equal(tl_signer_new(&s, &kp, 1), 0);
	tl_signer_sign(s, a, m, 4, m + 4, sizeof m - 5);
	tl_signer_sign(s, b, m, 4, m + 4, sizeof m - 5);
	assert_memory_not_equal(a, b, 64);
	assert_int_equal(crypto_sign_verify_detached(a, m, sizeof m - 1, kp.pk), 0);
	assert_int_equal(crypto_sign_verify_detached(b, m, sizeof m - 1, kp.pk), 0);
	tl_signer_free(s);
}

/* Records signed with the signer decode and verify like any other. */
static void test_record_sign_with(void **state)
{
	(void)state;
	struct tl_keypair kp;
	struct tl_signer *s;
	struct tl_buf rec;
	struct tl_entry e;
	uint8_t seed[32] = {5}, ch[16] = {1}, zero[32] = {0};
	char origin[TL_ORIGIN_LEN + 1];
	const uint8_t body[] = {0x81, 0xa1, 'a', 0x01}; /* {"a": 1} */
	assert_int_equal(tl_key_from_seed(&kp, seed), 0);
	tl_origin_format(origin, kp.pk, ch);
	assert_int_equal(tl_signer_new(&s, &kp, 1), 0);
	tl_buf_init(&rec, TL_RECORD_MAX);
	assert_int_equal(tl_entry_encode(&rec, origin, 0, zero, 1, "k", 1, body, sizeof body), 0);
	assert_int_equal(tl_record_sign_with(&rec, s), 0);
	assert_int_equal(tl_record_decode(&e, rec.data, rec.len, NULL), 0);
	assert_int_equal(tl_record_verify_sig(&e), 0);
	rec.data[rec.len - 40] ^= 1;
	assert_int_equal(tl_record_decode(&e, rec.data, rec.len, NULL), 0);
	assert_int_not_equal(tl_record_verify_sig(&e), 0);
	tl_buf_release(&rec);
	tl_signer_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pool_signatures_verify),
	        cmocka_unit_test(test_inline_signatures_verify),
	        cmocka_unit_test(test_nonces_differ),
	        cmocka_unit_test(test_record_sign_with),
	};
	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests_name("signer", tests, NULL, NULL);
}
