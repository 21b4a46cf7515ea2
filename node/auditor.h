/*
 * auditor.h — read-only replication to an auditor (docs/protocol.md,
 * "Auditors").
 *
 * The book's side: a book admits an auditor's book key to a channel by
 * appending `auditor.admit {key, name}` to its own feed of that channel, and
 * takes it back with `auditor.revoke {key}`; the latest of the two for a key
 * in a feed decides. The admission is in the log, so the counterparty and any
 * later auditor see who was given access and when. tl_auditors keeps, per own
 * feed, the admissions read so far and reads only entries appended since on
 * each refresh.
 *
 * The auditor's side: `tally auditor follow` registers both feeds of the
 * channel as TL_FEED_AUDIT feeds of the auditor's book, with the admitting
 * book as their peer, and records where that book's node listens.
 *
 * No I/O besides the store; everything runs on the caller's thread.
 */
#ifndef TL_AUDITOR_H
#define TL_AUDITOR_H

#include "tl_node.h"

#define TL_AUDITOR_ADMIT       "auditor.admit"
#define TL_AUDITOR_REVOKE      "auditor.revoke"
#define TL_AUDITOR_NAME_MAX    128
#define TL_AUDITOR_RELAY_COUNT 2048 /* records in one relayed batch, at most */

/* One auditor.admit or auditor.revoke entry of an own feed. */
struct tl_auditor_event {
	uint64_t seq, time_ms;
	uint8_t key[TL_PUB_LEN];
	int admit;                          /* 1 admit, 0 revoke */
	char name[TL_AUDITOR_NAME_MAX + 1]; /* admit only; may be empty */
};

/* Decodes an auditor.* entry: 0 and *ev filled; TL_ENOTFOUND for any other
 * kind; TL_EFORMAT for an auditor.* entry whose body is not {key: 64 lowercase
 * hex[, name: str]} (such an entry admits nobody). */
int tl_auditor_event_decode(const struct tl_entry *e, struct tl_auditor_event *ev);

typedef int (*tl_auditor_fn)(void *ctx, const struct tl_auditor_event *ev);
/* Calls cb for each valid auditor.* entry of f in [from, to), in seq order.
 * A non-zero return from cb stops the scan and is returned. */
int tl_auditor_scan(struct tl_store *s, const struct tl_feed *f, uint64_t from, uint64_t to,
                    tl_auditor_fn cb, void *ctx) TL_WUR;

/* ----------------------------------------------------- the book's side */

struct tl_auditors;

int tl_auditors_new(struct tl_auditors **out) TL_WUR;
void tl_auditors_free(struct tl_auditors *a);
/* Reads the auditor.* entries appended to own feeds since the last call
 * (the first call reads every own feed whole). */
int tl_auditors_refresh(struct tl_auditors *a, struct tl_store *s) TL_WUR;
/* After a refresh: how many own feeds of book currently admit key (0: the
 * key is no admitted auditor of this book). */
/* Entries [from, to) of own feed origin, just appended locally, hold no
 * auditor.* entry: the next refresh need not read them. Only moves the
 * feed's watermark when it stood at from (nothing unread before them), so
 * the start-up scan and appends made while the node was down are still
 * read. Keeps an auditor handshake from scanning a busy feed on the loop. */
void tl_auditors_skip(struct tl_auditors *a, const char *origin, uint64_t from, uint64_t to);
size_t tl_auditors_admitted(const struct tl_auditors *a, const char *book,
                            const uint8_t key[TL_PUB_LEN]);
/*
 * After a refresh: the feeds an admitted auditor key receives from book —
 * per channel that admits it, the book's own feed and the stored copy of
 * the counterparty's feed. *out is malloc'd (free it), *n may be 0.
 */
int tl_auditors_feeds(const struct tl_auditors *a, struct tl_store *s, const char *book,
                      const uint8_t key[TL_PUB_LEN], struct tl_feed **out, size_t *n) TL_WUR;

/*
 * One `recs` message (docs/protocol.md, "Replication") relaying records of a
 * feed this node does not write, from seq from: the batch ends at a stored
 * checkpoint of that feed (signed by its author; the note as stored, with
 * its cosignatures), the largest one within TL_AUDITOR_RELAY_COUNT records
 * whose records fit in a frame. msg is reset first; *end receives the batch
 * end. TL_ENOTFOUND when no stored checkpoint lies in (from, from + count]
 * (nothing to relay yet); TL_ETOOBIG when even the smallest such batch does
 * not fit in a frame.
 */
int tl_auditor_relay(struct tl_store *s, const struct tl_feed *f, uint64_t from, struct tl_buf *msg,
                     uint64_t *end) TL_WUR;

/* ---------------------------------------------------- the auditor's side */

/* 1 when book follows some feed read-only from the book with key src. */
int tl_auditor_follows(struct tl_store *s, const char *book, const uint8_t src[TL_PUB_LEN]);
/* 0 and *f when origin (len bytes, not NUL-terminated) is a feed that book
 * follows from src; -1 otherwise. */
int tl_auditor_followed(struct tl_store *s, const char *book, const uint8_t src[TL_PUB_LEN],
                        const char *origin, size_t len, struct tl_feed *f);
/*
 * Registers, for book, the two feeds of channel written by keys a and b as
 * read-only followed feeds (idempotent), replicated from src (a or b) at
 * addr ("host:port"). origins receives the two origins (a's, then b's).
 * TL_EEXIST when one of them is stored here as something else (an own feed
 * or a counterparty's: this store is a party to the channel).
 */
int tl_auditor_follow(struct tl_store *s, const char *book, const uint8_t channel[TL_CHANNEL_LEN],
                      const uint8_t a[TL_PUB_LEN], const uint8_t b[TL_PUB_LEN],
                      const uint8_t src[TL_PUB_LEN], const char *addr,
                      char origins[2][TL_ORIGIN_LEN + 1]) TL_WUR;

#endif
