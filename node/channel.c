/* channel.c — opening a channel: the book's feed, its feed.open entry, the
 * counterparty's feed registered for replication, and its address. */
#include "tl_node.h"

#include <string.h>

int tl_channel_open(struct tl_store *s, const char *book, const struct tl_keypair *kp,
                    const uint8_t peer[TL_PUB_LEN], const char *label, const char *addr,
                    int peer_is_local, uint64_t time_ms, struct tl_channel *out)
{
	struct tl_feed f, pf;
	int rc;
	memset(out, 0, sizeof *out);
	memset(&f, 0, sizeof f);
	tl_channel_id(f.o.channel, kp->pk, peer, label, strlen(label));
	tl_origin_format(f.origin, kp->pk, f.o.channel);
	memcpy(f.peer, peer, TL_PUB_LEN);
	snprintf(f.book, sizeof f.book, "%s", book);
	snprintf(f.label, sizeof f.label, "%s", label);
	f.flags = TL_FEED_OWN;
	if ((rc = tl_store_feed_add(s, &f)) != 0 && rc != TL_EEXIST)
		return rc;
	memcpy(out->origin, f.origin, sizeof out->origin);
	memcpy(out->channel, f.o.channel, TL_CHANNEL_LEN);
	/* The counterparty's feed: registered empty so that its records are
	 * accepted from its author and nobody else. When both books live in
	 * this store, it is the other book's own feed already. */
	memset(&pf, 0, sizeof pf);
	memcpy(pf.o.channel, f.o.channel, TL_CHANNEL_LEN);
	tl_origin_format(pf.origin, peer, f.o.channel);
	memcpy(pf.peer, kp->pk, TL_PUB_LEN);
	snprintf(pf.label, sizeof pf.label, "%s", label);
	if (!peer_is_local && (rc = tl_store_feed_add(s, &pf)) != 0 && rc != TL_EEXIST)
		return rc;
	memcpy(out->peer_origin, pf.origin, sizeof out->peer_origin);
	if (addr && *addr) {
		struct tl_peer p;
		memset(&p, 0, sizeof p);
		memcpy(p.pk, peer, TL_PUB_LEN);
		snprintf(p.book, sizeof p.book, "%s", book);
		snprintf(p.addr, sizeof p.addr, "%s", addr);
		if ((rc = tl_store_peer_put(s, &p)) != 0)
			return rc;
	}
	if ((rc = tl_store_feed_get(s, f.origin, &f)) != 0)
		return rc;
	if (f.head.size > 0)
		return 0; /* opened before: feed.open is its first entry already */
	char pkh[TL_PUB_LEN * 2 + 1], peerh[TL_PUB_LEN * 2 + 1], err[128];
	struct tl_buf body;
	tl_hex_encode(pkh, kp->pk, TL_PUB_LEN);
	tl_hex_encode(peerh, peer, TL_PUB_LEN);
	json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "label", label, "author", pkh, "peer", peerh,
	                      "peer_origin", pf.origin);
	tl_buf_init(&body, 4096);
	rc = j ? tl_json_to_mp(j, &body, err, sizeof err) : TL_ENOMEM;
	json_decref(j);
	if (rc == 0) {
		struct tl_item it = {"feed.open", 9, body.data, body.len};
		rc = tl_feed_append_local(s, f.origin, kp, &it, 1, 1, time_ms, NULL, NULL, NULL,
		                          NULL);
	}
	tl_buf_release(&body);
	return rc;
}
