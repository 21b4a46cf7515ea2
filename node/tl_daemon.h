/*
 * tl_daemon.h — tallyd: the node. One libuv loop thread owns every handle;
 * store writes (appends, ingests, channel opens) run one at a time on the
 * libuv thread pool and report back on the loop. See docs/operations.md.
 */
#ifndef TL_DAEMON_H
#define TL_DAEMON_H

#include "tl_node.h"

#define TL_VERSION "0.2.0"
#define TL_NODE_WITNESS_MAX 16

struct tl_node_config {
	char home[4096];
	char listen[TL_ADDR_MAX + 1]; /* "127.0.0.1:0" by default */
	int log_level;                /* 0 error, 1 warn, 2 info, 3 debug */
	unsigned idle_timeout_ms;     /* no frame from a peer for this long: drop */
	unsigned handshake_timeout_ms;
	unsigned keepalive_ms;
	size_t peer_wq_max; /* bytes queued to one peer before pausing it */
	uint64_t blob_max;  /* largest blob stored or served (blob_max =) */
	/* Witnesses this node asks to cosign its own feeds' checkpoints
	 * ("witness = URL VKEY" lines; docs/operations.md, "Witnesses"). */
	struct tl_node_witness {
		char url[512];  /* http://host:port, the submission prefix */
		char vkey[512]; /* type 0x04 verifier key */
	} witness[TL_NODE_WITNESS_MAX];
	size_t nwitnesses;
	unsigned witness_heartbeat_s; /* re-submit an unchanged checkpoint this often */
	unsigned witness_timeout_ms;  /* one add-checkpoint request */
};

void tl_node_config_defaults(struct tl_node_config *c);
/* Reads "key = value" lines (docs/operations.md); err gets file:line. */
int tl_node_config_load(struct tl_node_config *c, const char *path, char *err, size_t errcap);

/* Runs the node until SIGTERM/SIGINT; returns a process exit code. */
int tl_node_run(const struct tl_node_config *c);

#endif
