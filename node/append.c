/*
 * append.c — building, signing and committing entries of an own feed.
 *
 * Entry seq+1 names the leaf hash of entry seq, and that hash covers the
 * signature, so entries are signed one after another. Two things overlap:
 * a committer thread writes and fsyncs batch k while the caller's thread
 * encodes and signs batch k+1 (two batch slots bound the memory), and for
 * long runs a tl_signer thread precomputes the Ed25519 nonce commitments,
 * the expensive half of each signature.
 */
#include "tl_node.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define SIGNER_MIN 256 /* entries in one call before a nonce thread is started */

struct batch {
	struct tl_buf bytes;
	struct tl_rec *recs;
	size_t *offs;
	size_t n, cap;
	size_t first; /* index of its first item */
};

struct pipe {
	struct tl_store *s;
	const char *origin;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *pending; /* handed to the committer, not yet taken */
	int stop;              /* no more batches will come */
	int busy;              /* committer is working on a batch */
	int err;               /* first commit error; sticky */
	size_t done;           /* items durably appended */
	tl_durable_fn on_durable;
	void *ctx;
};

static void batch_release(struct batch *b)
{
	tl_buf_release(&b->bytes);
	free(b->recs);
	free(b->offs);
	memset(b, 0, sizeof *b);
}

static int batch_reserve(struct batch *b, size_t n)
{
	if (n <= b->cap)
		return 0;
	struct tl_rec *r = realloc(b->recs, n * sizeof *r);
	if (!r)
		return TL_ENOMEM;
	b->recs = r;
	size_t *o = realloc(b->offs, n * sizeof *o);
	if (!o)
		return TL_ENOMEM;
	b->offs = o;
	b->cap = n;
	return 0;
}

static int commit(struct pipe *p, struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		b->recs[i].data = b->bytes.data + b->offs[i];
	int rc = tl_store_append(p->s, p->origin, b->recs, b->n, 0, NULL, NULL);
	if (rc == 0 && p->on_durable)
		p->on_durable(p->ctx, b->first, b->n);
	return rc;
}

static void *committer(void *arg)
{
	struct pipe *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->pending && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->pending)
			break;
		struct batch *b = p->pending;
		p->pending = NULL;
		p->busy = 1;
		pthread_mutex_unlock(&p->mu);
		int rc = p->err ? p->err : commit(p, b);
		pthread_mutex_lock(&p->mu);
		if (rc && !p->err)
			p->err = rc;
		if (!rc)
			p->done += b->n;
		p->busy = 0;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Waits until the committer has taken the pending batch and finished the
 * one before it, so the slot the producer is about to refill is free. */
static int handoff(struct pipe *p, struct batch *b)
{
	pthread_mutex_lock(&p->mu);
	while (p->pending || p->busy)
		pthread_cond_wait(&p->cv, &p->mu);
	int err = p->err;
	if (!err)
		p->pending = b;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return err;
}

int tl_feed_append_local(struct tl_store *s, const char *origin, const struct tl_keypair *kp,
                         const struct tl_item *items, size_t n, size_t batch, uint64_t time_ms,
                         struct tl_appended *out, size_t *done, tl_durable_fn on_durable, void *ctx)
{
	struct tl_feed f;
	struct tl_buf scratch;
	struct batch slots[2];
	struct pipe p = {.s = s, .origin = origin, .on_durable = on_durable, .ctx = ctx};
	struct tl_signer *signer = NULL;
	pthread_t thr;
	int rc, threaded = 0, cur = 0;

	if (done)
		*done = 0;
	memset(slots, 0, sizeof slots);
	tl_buf_init(&scratch, TL_RECORD_MAX);
	tl_buf_init(&slots[0].bytes, (size_t)1 << 34);
	tl_buf_init(&slots[1].bytes, (size_t)1 << 34);
	if ((rc = tl_store_feed_get(s, origin, &f)) != 0)
		goto out;
	if (!(f.flags & TL_FEED_OWN) || sodium_memcmp(f.o.pk, kp->pk, TL_PUB_LEN) != 0) {
		rc = TL_EKEY;
		goto out;
	}
	if (batch == 0 || batch > n)
		batch = n ? n : 1;
	/* Past a few batches, precomputed nonces pay for their thread. */
	if (n >= SIGNER_MIN && (rc = tl_signer_new(&signer, kp, 1)) != 0)
		goto out;
	if (n > batch) {
		pthread_mutex_init(&p.mu, NULL);
		pthread_cond_init(&p.cv, NULL);
		if (pthread_create(&thr, NULL, committer, &p) != 0) {
			rc = TL_ENOMEM;
			goto out;
		}
		threaded = 1;
	}

	struct tl_feed_head head = f.head;
	for (size_t i = 0; i < n;) {
		struct batch *b = &slots[cur];
		size_t m = n - i < batch ? n - i : batch;
		tl_buf_reset(&b->bytes);
		b->n = 0;
		b->first = i;
		if ((rc = batch_reserve(b, m)) != 0)
			goto out;
		for (size_t j = 0; j < m; j++, i++) {
			uint8_t leaf[TL_HASH_LEN];
			tl_buf_reset(&scratch);
			rc = tl_entry_encode(&scratch, origin, head.size, head.last_leaf, time_ms,
			                     items[i].kind, items[i].kind_len, items[i].body,
			                     items[i].body_len);
			if (rc || (rc = signer ? tl_record_sign_with(&scratch, signer)
			                       : tl_record_sign(&scratch, kp->sk)) != 0)
				goto out;
			tl_record_leaf_hash(leaf, scratch.data, scratch.len);
			if (out) {
				out[i].seq = head.size;
				memcpy(out[i].leaf, leaf, TL_HASH_LEN);
			}
			tl_feed_advance(&head, leaf);
			b->offs[j] = b->bytes.len;
			b->recs[j].len = scratch.len;
			if ((rc = tl_buf_add(&b->bytes, scratch.data, scratch.len)) != 0)
				goto out;
			b->n++;
		}
		if (threaded) {
			if ((rc = handoff(&p, b)) != 0)
				goto out;
			cur ^= 1;
		} else {
			if ((rc = commit(&p, b)) != 0)
				goto out;
			p.done += b->n;
		}
	}
out:
	if (threaded) {
		pthread_mutex_lock(&p.mu);
		p.stop = 1;
		pthread_cond_broadcast(&p.cv);
		pthread_mutex_unlock(&p.mu);
		pthread_join(thr, NULL);
		if (!rc)
			rc = p.err;
		pthread_mutex_destroy(&p.mu);
		pthread_cond_destroy(&p.cv);
	}
	if (done)
		*done = p.done;
	tl_signer_free(signer);
	tl_buf_release(&scratch);
	batch_release(&slots[0]);
	batch_release(&slots[1]);
	return rc;
}
