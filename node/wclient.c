/*
 * wclient.c — the witness client (wclient.h). Blocking by design: tallyd
 * runs these on the thread pool, at most one request per (witness, feed).
 */
#include "wclient.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tl_wc_conn {
	CURL *h;
};

int tl_wc_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : TL_ECRYPTO;
}

int tl_wc_conn_new(struct tl_wc_conn **out)
{
	struct tl_wc_conn *c = calloc(1, sizeof *c);
	*out = NULL;
	if (!c)
		return TL_ENOMEM;
	if (!(c->h = curl_easy_init())) {
		free(c);
		return TL_ENOMEM;
	}
	*out = c;
	return 0;
}

void tl_wc_conn_free(struct tl_wc_conn *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->h);
	free(c);
}

void tl_wc_resp_init(struct tl_wc_resp *r)
{
	memset(r, 0, sizeof *r);
	tl_buf_init(&r->body, TL_WC_RESP_MAX);
}

void tl_wc_resp_release(struct tl_wc_resp *r)
{
	tl_buf_release(&r->body);
}

/* A body over the cap aborts the transfer (returning less than given). */
static size_t on_body(char *p, size_t sz, size_t nm, void *ctx)
{
	struct tl_buf *b = ctx;
	size_t n = sz * nm;
	return tl_buf_add(b, p, n) == 0 ? n : 0;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const atomic_int *cancel = ctx;
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return cancel && atomic_load(cancel) ? 1 : 0;
}

int tl_wc_post(struct tl_wc_conn *c, const char *url, const uint8_t *body, size_t len,
               unsigned timeout_ms, const atomic_int *cancel, struct tl_wc_resp *r)
{
	char full[TL_WC_URL_MAX + 32];
	size_t ul = strlen(url);
	struct curl_slist *hdr = NULL;
	CURLcode cc;
	char *ct = NULL;

	r->status = 0;
	r->err[0] = 0;
	r->content_type[0] = 0;
	tl_buf_reset(&r->body);
	while (ul && url[ul - 1] == '/')
		ul--;
	if (ul > TL_WC_URL_MAX) {
		snprintf(r->err, sizeof r->err, "witness URL too long");
		return TL_EINVAL;
	}
	snprintf(full, sizeof full, "%.*s/add-checkpoint", (int)ul, url);
	curl_easy_reset(c->h); /* keeps the connection cache */
	hdr = curl_slist_append(hdr, "Content-Type: text/plain; charset=utf-8");
	if (hdr)
		hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
	if (!hdr) {
		snprintf(r->err, sizeof r->err, "out of memory");
		return TL_ENOMEM;
	}
	curl_easy_setopt(c->h, CURLOPT_URL, full);
	curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->h, CURLOPT_POST, 1L);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, (const char *)body);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM */
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(c->h, CURLOPT_USERAGENT, "tallyd");
	curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, (void *)cancel);
	cc = curl_easy_perform(c->h);
	curl_slist_free_all(hdr);
	if (cc != CURLE_OK) {
		if (cc == CURLE_WRITE_ERROR)
			snprintf(r->err, sizeof r->err, "answer larger than %u bytes",
			         TL_WC_RESP_MAX);
		else if (cc == CURLE_ABORTED_BY_CALLBACK)
			snprintf(r->err, sizeof r->err, "cancelled: the node is stopping");
		else if (cc == CURLE_OPERATION_TIMEDOUT)
			snprintf(r->err, sizeof r->err, "no answer within %u ms", timeout_ms);
		else
			snprintf(r->err, sizeof r->err, "%s", curl_easy_strerror(cc));
		return TL_EIO;
	}
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &r->status);
	if (curl_easy_getinfo(c->h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		snprintf(r->content_type, sizeof r->content_type, "%s", ct);
	return 0;
}

int tl_wc_body(struct tl_buf *out, uint64_t old_size, const uint8_t (*proof)[TL_HASH_LEN], size_t n,
               const char *note, size_t note_len)
{
	char b64[48];
	int rc;
	if (n > TL_WC_MAX_PROOF || (old_size == 0 && n))
		return TL_EINVAL;
	if ((rc = tl_buf_printf(out, "old %llu\n", (unsigned long long)old_size)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		tl_b64_encode(b64, proof[i], TL_HASH_LEN);
		if ((rc = tl_buf_printf(out, "%s\n", b64)) != 0)
			return rc;
	}
	if ((rc = tl_buf_addc(out, '\n')) != 0)
		return rc;
	return tl_buf_add(out, note, note_len);
}

int tl_wc_parse_size(const uint8_t *body, size_t len, uint64_t *size)
{
	if (len < 2 || body[len - 1] != '\n')
		return TL_EFORMAT;
	return tl_parse_u64((const char *)body, len - 1, size) == 0 ? 0 : TL_EFORMAT;
}

/* One line of n as a note of its own, to verify lines one by one (the
 * crypto module's verifiers reject a note when any line of a key fails). */
static int verify_line(const struct tl_note *n, size_t i, const struct tl_vkey *k, uint64_t *t)
{
	struct tl_buf one;
	struct tl_note sn;
	int rc;
	tl_buf_init(&one, TL_NOTE_MAX);
	if ((rc = tl_buf_add(&one, n->raw, n->text_len)) == 0 &&
	    (rc = tl_buf_addc(&one, '\n')) == 0 &&
	    (rc = tl_buf_add(&one, n->sigs[i].line, n->sigs[i].linelen)) == 0 &&
	    (rc = tl_buf_addc(&one, '\n')) == 0 &&
	    (rc = tl_note_parse(&sn, (const char *)one.data, one.len)) == 0) {
		rc = k->type == TL_SIGTYPE_COSIG ? tl_cosig_verify(&sn, k, t)
		                                 : tl_note_verify(&sn, k);
		tl_note_release(&sn);
	}
	tl_buf_release(&one);
	return rc;
}

int tl_wc_filter(const char *note, size_t len, const struct tl_vkey *keys, size_t nkeys,
                 struct tl_buf *out, size_t *kept, size_t *cosigs, uint64_t *latest)
{
	struct tl_note n;
	size_t nk = 0, nc = 0;
	uint64_t last = 0;
	int rc;
	if (tl_note_parse(&n, note, len) != 0)
		return TL_EFORMAT;
	tl_buf_reset(out);
	if ((rc = tl_buf_add(out, n.raw, n.text_len)) != 0 || (rc = tl_buf_addc(out, '\n')) != 0)
		goto done;
	for (size_t i = 0; i < n.nsigs; i++) {
		const struct tl_note_sig *g = &n.sigs[i];
		for (size_t k = 0; k < nkeys; k++) {
			uint64_t t = 0;
			if (memcmp(g->id, keys[k].id, 4) != 0 || strcmp(g->name, keys[k].name) != 0)
				continue;
			if (verify_line(&n, i, &keys[k], &t) != 0)
				continue;
			if ((rc = tl_buf_add(out, g->line, g->linelen)) != 0 ||
			    (rc = tl_buf_addc(out, '\n')) != 0)
				goto done;
			nk++;
			if (keys[k].type == TL_SIGTYPE_COSIG) {
				nc++;
				if (t > last)
					last = t;
			}
			break;
		}
	}
	rc = 0;
	if (kept)
		*kept = nk;
	if (cosigs)
		*cosigs = nc;
	if (latest)
		*latest = last;
done:
	tl_note_release(&n);
	return rc;
}

int tl_wc_accept(const char *note, size_t note_len, const uint8_t *resp, size_t resp_len,
                 const struct tl_vkey *w, struct tl_buf *out, size_t *ncosigs, uint64_t *time)
{
	struct tl_note n;
	struct tl_buf all;
	size_t nc = 0;
	int rc;
	/* Only the text of our note counts; its own signature lines are not the
	 * witness's answer. */
	if (tl_note_parse(&n, note, note_len) != 0)
		return TL_EFORMAT;
	tl_buf_init(&all, TL_NOTE_MAX);
	if (resp_len == 0 || resp[resp_len - 1] != '\n')
		rc = TL_EFORMAT;
	else if ((rc = tl_buf_add(&all, n.raw, n.text_len)) == 0 &&
	         (rc = tl_buf_addc(&all, '\n')) == 0 &&
	         (rc = tl_buf_add(&all, resp, resp_len)) == 0)
		rc = tl_wc_filter((const char *)all.data, all.len, w, 1, out, NULL, &nc, time);
	if (rc == 0 && nc == 0)
		rc = TL_ESIG;
	if (ncosigs)
		*ncosigs = nc;
	tl_buf_release(&all);
	tl_note_release(&n);
	return rc;
}

/* ----------------------------------------------------- fork evidence */

static int fork_record(const struct tl_origin *o, const char *origin, uint64_t at, const uint8_t *r,
                       size_t len, const char *which, char *why, size_t cap)
{
	struct tl_entry e;
	if (tl_record_decode(&e, r, len, NULL) != 0) {
		snprintf(why, cap, "record %s is malformed", which);
		return TL_EFORMAT;
	}
	if (memcmp(e.origin_str, origin, TL_ORIGIN_LEN) != 0 ||
	    memcmp(e.origin.pk, o->pk, TL_PUB_LEN) != 0) {
		snprintf(why, cap, "record %s belongs to another feed", which);
		return TL_EPROOF;
	}
	if (e.seq != at) {
		snprintf(why, cap, "record %s has seq %llu, not %llu", which,
		         (unsigned long long)e.seq, (unsigned long long)at);
		return TL_EPROOF;
	}
	if (tl_record_verify_sig(&e) != 0) {
		snprintf(why, cap, "record %s: the signature does not verify", which);
		return TL_ESIG;
	}
	return 0;
}

static int fork_note(const struct tl_vkey *vk, const char *origin, uint64_t at, const uint8_t *t,
                     size_t len, const char *which, struct tl_checkpoint *cp, char *why, size_t cap)
{
	struct tl_note n;
	int rc;
	if (tl_note_parse(&n, (const char *)t, len) != 0 ||
	    tl_checkpoint_parse(cp, n.raw, n.text_len) != 0) {
		if (n.raw)
			tl_note_release(&n);
		snprintf(why, cap, "checkpoint %s is not a signed checkpoint note", which);
		return TL_EFORMAT;
	}
	rc = tl_note_verify(&n, vk);
	tl_note_release(&n);
	if (strcmp(cp->origin, origin) != 0) {
		snprintf(why, cap, "checkpoint %s belongs to another feed", which);
		return TL_EPROOF;
	}
	if (cp->size != at) {
		snprintf(why, cap, "checkpoint %s has size %llu, not %llu", which,
		         (unsigned long long)cp->size, (unsigned long long)at);
		return TL_EPROOF;
	}
	if (rc) {
		snprintf(why, cap, "checkpoint %s is not signed by the feed's key", which);
		return TL_ESIG;
	}
	return 0;
}

int tl_fork_verify(const char *origin, int type, uint64_t at, const uint8_t *a, size_t alen,
                   const uint8_t *b, size_t blen, const uint8_t *extra, size_t elen, char *why,
                   size_t cap)
{
	struct tl_origin o;
	int rc;
	if (strlen(origin) != TL_ORIGIN_LEN || tl_origin_parse(&o, origin, TL_ORIGIN_LEN) != 0) {
		snprintf(why, cap, "'%.120s' is not a feed origin", origin);
		return TL_EFORMAT;
	}
	if (type == TL_FORK_RECORDS) {
		if ((rc = fork_record(&o, origin, at, a, alen, "a", why, cap)) != 0 ||
		    (rc = fork_record(&o, origin, at, b, blen, "b", why, cap)) != 0)
			return rc;
		if (alen == blen && memcmp(a, b, alen) == 0) {
			snprintf(why, cap, "the two records are identical");
			return TL_EPROOF;
		}
		snprintf(why, cap, "two different records signed for seq %llu",
		         (unsigned long long)at);
		return 0;
	}
	if (type == TL_FORK_CHECKPOINTS || type == TL_FORK_CONSISTENCY) {
		struct tl_vkey vk;
		struct tl_checkpoint ca, cb;
		if (tl_vkey_from_pub(&vk, origin, TL_SIGTYPE_ED25519, o.pk) != 0) {
			snprintf(why, cap, "cannot derive the feed's key");
			return TL_EKEY;
		}
		if ((rc = fork_note(&vk, origin, at, a, alen, "a", &ca, why, cap)) != 0)
			return rc;
		if (type == TL_FORK_CONSISTENCY) {
			/* b's size is its own; it must be larger than a's. */
			struct tl_checkpoint probe;
			struct tl_note nb;
			uint64_t bsize = 0;
			if (tl_note_parse(&nb, (const char *)b, blen) == 0) {
				if (tl_checkpoint_parse(&probe, nb.raw, nb.text_len) == 0)
					bsize = probe.size;
				tl_note_release(&nb);
			}
			if (bsize <= at) {
				snprintf(why, cap, "checkpoint b must be larger than a (size %llu)",
				         (unsigned long long)at);
				return TL_EPROOF;
			}
			if ((rc = fork_note(&vk, origin, bsize, b, blen, "b", &cb, why, cap)) != 0)
				return rc;
			if (!extra || elen < TL_HASH_LEN ||
			    (elen - TL_HASH_LEN) % TL_HASH_LEN != 0 ||
			    (elen - TL_HASH_LEN) / TL_HASH_LEN > TL_MERKLE_MAX_PROOF) {
				snprintf(why, cap, "the root and consistency proof are malformed");
				return TL_EFORMAT;
			}
			if (memcmp(extra, ca.root, TL_HASH_LEN) == 0) {
				snprintf(why, cap, "the root given is a's own root");
				return TL_EPROOF;
			}
			if (tl_merkle_verify_consistency(
			            at, bsize, extra, cb.root,
			            (const uint8_t(*)[TL_HASH_LEN])(extra + TL_HASH_LEN),
			            (elen - TL_HASH_LEN) / TL_HASH_LEN) != 0) {
				snprintf(why, cap,
				         "the consistency proof from size %llu to %llu does not "
				         "verify",
				         (unsigned long long)at, (unsigned long long)bsize);
				return TL_EPROOF;
			}
			snprintf(why, cap,
			         "checkpoint of size %llu is not a prefix of the signed checkpoint "
			         "of size %llu",
			         (unsigned long long)at, (unsigned long long)bsize);
			return 0;
		}
		if ((rc = fork_note(&vk, origin, at, b, blen, "b", &cb, why, cap)) != 0)
			return rc;
		if (memcmp(ca.root, cb.root, TL_HASH_LEN) == 0) {
			snprintf(why, cap, "the two checkpoints have the same root");
			return TL_EPROOF;
		}
		snprintf(why, cap, "two checkpoints signed for size %llu with different roots",
		         (unsigned long long)at);
		return 0;
	}
	snprintf(why, cap, "unknown kind of fork evidence");
	return TL_EFORMAT;
}
