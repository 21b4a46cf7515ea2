/* signer.c — Ed25519 with precomputed nonce commitments; see tl_crypto.h. */
#include "tl_crypto.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define POOL 1024 /* precomputed pairs kept ready */

struct pair {
	uint8_t r[32]; /* secret nonce scalar, reduced */
	uint8_t R[32]; /* r * B, encoded */
};

struct secrets {
	uint8_t a[32];      /* secret scalar, clamped then reduced mod L */
	uint8_t prefix[32]; /* second half of SHA-512(seed) */
	struct pair pool[POOL];
};

struct tl_signer {
	struct secrets *sec; /* sodium_malloc */
	uint8_t pk[32];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t head, count; /* ring of ready pairs */
	uint64_t counter;   /* nonce derivation counter, under mu */
	int stop;
	unsigned nworkers;
	pthread_t workers[8];
};

/* r = SHA-512(prefix || random || counter) mod L; R = r * B. */
static void make_pair(const struct secrets *sec, uint64_t counter, struct pair *p)
{
	crypto_hash_sha512_state st;
	uint8_t rnd[32], ctr[8], h[64];
	for (;;) {
		randombytes_buf(rnd, sizeof rnd);
		for (int i = 0; i < 8; i++)
			ctr[i] = (uint8_t)(counter >> (8 * i));
		crypto_hash_sha512_init(&st);
		crypto_hash_sha512_update(&st, sec->prefix, 32);
		crypto_hash_sha512_update(&st, rnd, sizeof rnd);
		crypto_hash_sha512_update(&st, ctr, sizeof ctr);
		crypto_hash_sha512_final(&st, h);
		crypto_core_ed25519_scalar_reduce(p->r, h);
		/* Fails only for r = 0 (probability 2^-252): draw again. */
		if (crypto_scalarmult_ed25519_base_noclamp(p->R, p->r) == 0)
			break;
		counter++;
	}
	sodium_memzero(h, sizeof h);
	sodium_memzero(rnd, sizeof rnd);
	sodium_memzero(&st, sizeof st);
}

static void *worker(void *arg)
{
	struct tl_signer *s = arg;
	struct pair p;
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		if (s->count == POOL) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		uint64_t ctr = s->counter++;
		pthread_mutex_unlock(&s->mu);
		make_pair(s->sec, ctr, &p);
		pthread_mutex_lock(&s->mu);
		if (s->count < POOL) {
			s->sec->pool[(s->head + s->count) % POOL] = p;
			s->count++;
		}
	}
	pthread_mutex_unlock(&s->mu);
	sodium_memzero(&p, sizeof p);
	return NULL;
}

int tl_signer_new(struct tl_signer **out, const struct tl_keypair *kp, unsigned workers)
{
	struct tl_signer *s = calloc(1, sizeof *s);
	uint8_t az[64], a64[64] = {0};
	*out = NULL;
	if (!s)
		return TL_ENOMEM;
	s->sec = sodium_malloc(sizeof *s->sec);
	if (!s->sec) {
		free(s);
		return TL_ENOMEM;
	}
	/* The expanded key of RFC 8032 §5.1.5 from the seed (first half of sk). */
	crypto_hash_sha512(az, kp->sk, 32);
	az[0] &= 248;
	az[31] &= 127;
	az[31] |= 64;
	memcpy(a64, az, 32);
	crypto_core_ed25519_scalar_reduce(s->sec->a, a64);
	memcpy(s->sec->prefix, az + 32, 32);
	sodium_memzero(az, sizeof az);
	sodium_memzero(a64, sizeof a64);
	memcpy(s->pk, kp->pk, 32);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (workers > 8)
		workers = 8;
	for (unsigned i = 0; i < workers; i++) {
		if (pthread_create(&s->workers[i], NULL, worker, s) != 0)
			break;
		s->nworkers++;
	}
	*out = s;
	return 0;
}

void tl_signer_sign(struct tl_signer *s, uint8_t sig[TL_SIG_LEN], const uint8_t *m1, size_t l1,
                    const uint8_t *m2, size_t l2)
{
	struct pair p;
	crypto_hash_sha512_state st;
	uint8_t h[64], k[32], ka[32];

	pthread_mutex_lock(&s->mu);
	if (s->count) {
		p = s->sec->pool[s->head];
		sodium_memzero(&s->sec->pool[s->head], sizeof p);
		s->head = (s->head + 1) % POOL;
		s->count--;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
	} else {
		uint64_t ctr = s->counter++;
		pthread_mutex_unlock(&s->mu);
		make_pair(s->sec, ctr, &p);
	}
	/* k = SHA-512(R || A || M) mod L; S = r + k * a mod L. */
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, p.R, 32);
	crypto_hash_sha512_update(&st, s->pk, 32);
	crypto_hash_sha512_update(&st, m1, l1);
	crypto_hash_sha512_update(&st, m2, l2);
	crypto_hash_sha512_final(&st, h);
	crypto_core_ed25519_scalar_reduce(k, h);
	crypto_core_ed25519_scalar_mul(ka, k, s->sec->a);
	memcpy(sig, p.R, 32);
	crypto_core_ed25519_scalar_add(sig + 32, p.r, ka);
	sodium_memzero(&p, sizeof p);
	sodium_memzero(ka, sizeof ka);
}

void tl_signer_free(struct tl_signer *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	sodium_free(s->sec); /* wipes */
	free(s);
}
