/*
 * blob_repl.h — blob replication on demand inside peer sessions, and the
 * control-socket op blob_get (docs/protocol.md "Blobs").
 *
 * The module keeps its own state (downloads, per-peer serve queues) and
 * talks to the node only through struct tl_blob_host, so that daemon.c needs
 * a few dispatch lines: peers and control connections are opaque pointers.
 * Everything here runs on the loop thread; file I/O and reference scans run
 * on the libuv thread pool.
 *
 * Lifetimes: the node calls tl_blob_repl_peer_gone() when a session closes
 * and tl_blob_repl_ctl_gone() when a control connection closes; after that
 * the module never uses the pointer again. tl_blob_repl_free() after the
 * loop has run to completion.
 */
#ifndef TL_BLOB_REPL_H
#define TL_BLOB_REPL_H

#include <jansson.h>
#include <msgpack.h>
#include <uv.h>

#include "blob.h"

struct tl_blob_peer {
	const char *book;      /* our book in this session */
	const uint8_t *remote; /* the counterparty book key (32 bytes) */
	const char *addr;      /* for logs */
};

struct tl_blob_host {
	void *node;
	uv_loop_t *loop;
	struct tl_store *store;
	struct tl_blobs blobs;
	size_t wq_max; /* bytes queued to a peer above which nothing more is sent */
	/* Seals and queues one message to an open session. */
	int (*send)(void *peer, const uint8_t *msg, size_t len);
	/* Bytes queued to the peer and not yet written. */
	size_t (*queued)(void *peer);
	void (*peer_info)(void *peer, struct tl_blob_peer *out);
	/* An open session of our book with remote, or NULL. */
	void *(*find_peer)(void *node, const char *book, const uint8_t remote[32]);
	/* Writes one line (without newline) to a control connection. */
	void (*ctl_line)(void *ctl, const char *line);
	/* 1 if pk is a book of this node (a channel between two local books
	 * needs no replication). */
	int (*local_book)(void *node, const uint8_t pk[32]);
	void (*log)(int level, const char *fmt, ...) TL_PRINTF(2, 3);
};

struct tl_blob_repl;

int tl_blob_repl_new(struct tl_blob_repl **out, const struct tl_blob_host *h) TL_WUR;
void tl_blob_repl_free(struct tl_blob_repl *r);

/* A "blob.*" message from an open session (a the message array, n its
 * size). Non-zero: malformed or abusive, the node drops the session. */
int tl_blob_repl_msg(struct tl_blob_repl *r, void *peer, const msgpack_object *a, uint32_t n);
/* The peer's write queue drained a little: more chunks may go out. */
void tl_blob_repl_drain(struct tl_blob_repl *r, void *peer);
void tl_blob_repl_peer_gone(struct tl_blob_repl *r, void *peer);

/* {"op": "blob_get", "hash": hex}: answers on ctl when the blob is stored
 * or the fetch failed; progress lines meanwhile. */
void tl_blob_repl_ctl_get(struct tl_blob_repl *r, void *ctl, json_t *id, json_t *req);
void tl_blob_repl_ctl_gone(struct tl_blob_repl *r, void *ctl);

#endif
