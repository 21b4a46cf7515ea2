/*
 * cli.h — shared plumbing of the `tally` commands: argument parsing, the
 * home directory, opening the store and book keys, and output helpers.
 *
 * Exit codes (docs/cli.md): 0 success; 1 the thing checked is not valid or
 * the operation failed; 2 usage error; 3 environment error (store, key file,
 * passphrase, I/O).
 */
#ifndef TL_CLI_H
#define TL_CLI_H

#include <stdio.h>

#include "node/tl_node.h"

enum { EXIT_OK = 0, EXIT_INVALID = 1, EXIT_USAGE = 2, EXIT_ENV = 3 };

#define CLI_MAX_ARGS 64

struct cli_opt {
	const char *name; /* "--kind" */
	const char *val;  /* NULL for flags */
};

struct cli {
	const char *home; /* resolved home directory */
	char home_buf[4096];
	int json;        /* --json */
	const char *cmd; /* "feed append", for messages */
	const char *pos[CLI_MAX_ARGS];
	int npos;
	struct cli_opt opts[CLI_MAX_ARGS];
	int nopts;
	struct tl_store *store;
};

/* Parses argv after the command words. flags lists options that take no
 * value (NULL-terminated); allowed lists every accepted option. Prints a
 * usage error and returns EXIT_USAGE on anything unknown. */
int cli_parse(struct cli *c, int argc, char **argv, const char *const *allowed,
              const char *const *flags);
const char *cli_opt(const struct cli *c, const char *name);
int cli_has(const struct cli *c, const char *name);
/* Strict decimal; prints a usage error naming the option on failure. */
int cli_u64(const struct cli *c, const char *what, const char *s, uint64_t *out);

/* Error output: "tally <cmd>: <message>" on stderr. Return the exit code. */
int cli_fail(const struct cli *c, int code, const char *fmt, ...) TL_PRINTF(3, 4);
int cli_usage(const struct cli *c, const char *fmt, ...) TL_PRINTF(2, 3);

/* A store failure as a message and exit code: damaged or inconsistent data
 * (TL_ECORRUPT, TL_ECHAIN, TL_ERANGE, TL_ENOTFOUND) is EXIT_INVALID, the
 * rest (I/O, disk full, database) EXIT_ENV. */
int cli_store_fail(struct cli *c, int rc);
/* Writes data to path atomically: temp file (mode 0600), fsync, rename,
 * fsync of the directory. */
int cli_write_atomic(struct cli *c, const char *path, const void *data, size_t len);
/* The directory part of the same procedure, for streamed writers. */
int cli_fsync_dir(const char *path);

/* Opens the store under home/store (creating home when create is set). */
int cli_open_store(struct cli *c, int create);
void cli_close(struct cli *c);
/* Path of a book's key file. */
void cli_key_path(const struct cli *c, const char *book, char *out, size_t cap);
/* Loads the secret key of a book (asks for the passphrase). */
int cli_load_key(struct cli *c, const char *book, struct tl_keypair *kp);
/* Exclusive lock on home/append.lock while appending to own feeds. */
int cli_lock(struct cli *c, int *fd);
void cli_unlock(int fd);

/* The own feed named by a channel id (32 hex) or an own feed origin,
 * optionally only of book, never the feed skip; a clear error when none or
 * several match (then a feed origin is needed). Store must be open. */
int cli_own_feed(struct cli *c, const char *which, const char *book, const char *skip,
                 struct tl_feed *out);

/* Feed by origin, with a clear error when missing. */
int cli_feed(struct cli *c, const char *origin, struct tl_feed *f);
/* Ensures a signed checkpoint of the feed's current size is stored (signs
 * one with the book key if the feed is own and the latest is older).
 * note receives the latest checkpoint; *size its size. */
int cli_checkpoint_current(struct cli *c, const struct tl_feed *f, struct tl_buf *note,
                           uint64_t *size, int may_sign);

/* Reads a whole file ("-" = stdin), capped at max bytes. */
int cli_read_file(struct cli *c, const char *path, size_t max, struct tl_buf *out);

void cli_time_iso(char out[32], uint64_t ms);
/* A duration for people, truncated to its two largest units: "4 d 0 h",
 * "5 h 3 min", "12 min", "42 s". */
void cli_duration(char out[32], uint64_t ms);
/* How late, by the witnesses: "LATE" or "LATE by more than <duration>"
 * when the evidence time is after the deadline (a lower bound). */
void cli_late_words(char out[64], uint64_t deadline_ms, uint64_t evidence_ms);
uint64_t cli_now_ms(void);

/* Appends one entry to an own feed, through the running node if there is
 * one; prints "seq leaf" once durable. Returns an exit code. */
int cli_append_one(struct cli *c, const char *origin, const char *kind, const json_t *body);

/* ------------------------------------------ reconciliation plumbing */

struct tl_state;
struct tl_stmt;

/* cmd_statement.c. A time as "YYYY-MM-DD" (00:00 UTC), "YYYY-MM-DDTHH:MM[:SS[.mmm]]"
 * with "Z", "+08:00" or nothing (UTC), or Unix ms (digits only). */
int cli_parse_time(struct cli *c, const char *what, const char *s, uint64_t *out);
/* chanstate.c: the channel state of an own feed's channel (which: channel
 * id or own feed origin) from the own feed and the peer's, as stored, at
 * at_ms, with witnessed times (cli_chanstate_load; the state is its st).
 * *own receives the own feed; *out is the caller's (tl_state_free). Store
 * must be open. Returns an exit code (errors printed). */
int cli_channel_state(struct cli *c, const char *which, uint64_t at_ms, struct tl_feed *own,
                      struct tl_state **out);
/* The statement of st whose leaf is leaf_hex (lowercase), or NULL. */
const struct tl_stmt *cli_state_stmt(const struct tl_state *st, const char *leaf_hex);
/* A stored statement entry: its record, decoded body and where it is. */
struct cli_stmt {
	char leaf[TL_HASH_LEN * 2 + 1];
	char origin[TL_ORIGIN_LEN + 1]; /* the supplier's feed */
	uint64_t seq;
	struct tl_buf rec;
	json_t *body;
};
int cli_stmt_load(struct cli *c, const char *leaf_hex, struct cli_stmt *s);
void cli_stmt_release(struct cli_stmt *s);
/* Minor units as a decimal in the currency's exponent ("-1234.50"). */
void cli_amount(char out[40], int64_t v, const char *currency);

/* cmd_people.c: the confirm or dispute body for a statement, from the
 * options in c (--balance; --line, --their-amount, --reason, --note, ...),
 * signed by the person key in keyfile. closing: the balance a confirm
 * without --balance states. *out is the caller's. Returns an exit code. */
int cli_answer_body(struct cli *c, const char *kind, const char *leaf_hex, int64_t closing,
                    const char *keyfile, json_t **out);

/* Commands. */
int cmd_init(int argc, char **argv);
int cmd_book(int argc, char **argv);
int cmd_feed(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_channel(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_statement(int argc, char **argv);
int cmd_match(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_confirm(int argc, char **argv);
int cmd_dispute(int argc, char **argv);
int cmd_view(int argc, char **argv);
int cmd_witness(int argc, char **argv); /* cmd_witness.c: witness administration */
int cmd_audit(int argc, char **argv);   /* cmd_audit.c */
int cmd_forks(int argc, char **argv);   /* cmd_forks.c */
int cmd_terms(int argc, char **argv);   /* cmd_terms.c */
int cmd_sign(int argc, char **argv);    /* cmd_sign.c: air-gapped signing */
int cmd_submit(int argc, char **argv);  /* cmd_sign.c */
int cmd_close(int argc, char **argv);   /* cmd_terms.c */
int cmd_blob(int argc, char **argv);    /* cmd_blob.c */
/* cmd_blob.c: stores each --attach [DOC=]FILE as a blob and adds its hash
 * to the "blobs" of that dispute line (the only line when DOC is omitted). */
int cli_blob_attach(struct cli *c, json_t *lines);
/* cmd_blob.c: stores each --attach [DOC=]FILE as a blob and adds its hash
 * to the "blobs" of that dispute line (the only line when DOC is omitted). */
int cli_blob_attach(struct cli *c, json_t *lines);
int cmd_fsck(int argc, char **argv);    /* cmd_fsck.c */
int cmd_auditor(int argc, char **argv); /* cmd_auditor.c: read-only auditors */

/* The control socket of a running tallyd: a connected fd, or -1 when no
 * node runs on this home. call sends one JSON request line and returns the
 * parsed reply (NULL after printing an error). */
int cli_control_connect(struct cli *c);
json_t *cli_control_call(struct cli *c, int fd, json_t *req);
/* Reads one '\n'-terminated line from fd into out (reset first; the newline
 * dropped, NUL-terminated); bytes read past it stay in pending for the next
 * call. timeout_ms < 0 blocks; otherwise each wait for more bytes gives up
 * after timeout_ms. 0, or -1 on EOF, error, timeout or a full buffer. */
int cli_read_line(int fd, struct tl_buf *out, struct tl_buf *pending, int timeout_ms);

/* ------------------------------------------ witnessed time (cmd_audit.c) */

#include "consensus/wtime.h"

/* One feed of a channel for cli_chan_eval: records in seq order and its
 * checkpoint notes (cosignatures included). All borrowed. */
struct cli_feed_in {
	const char *origin;
	const uint8_t *const *recs;
	const size_t *lens;
	size_t n;
	const char *const *notes;
	const size_t *nlens;
	size_t nnotes;
};

/* A channel evaluated with witnessed times: per feed (input order) the
 * witnessed-time tables and each entry's witnessed time in ms; the state
 * with witnessed times (ws) and without (cs, the authors' claims); the
 * lateness verdicts (one per ws statement). */
struct cli_chan_eval {
	size_t nfeeds;
	struct tl_wtime *wt[2];
	uint64_t *wit[2];
	enum tl_role role[2];
	const struct tl_wtime *by_role[2];
	struct tl_state *ws, *cs;
	struct tl_late *late;
	size_t bad_feed, bad_seq; /* where tl_state_add failed */
};

int cli_chan_eval(struct cli_chan_eval *e, const struct cli_feed_in *feeds, size_t nfeeds,
                  const struct tl_wtime_opts *wo, uint64_t now_ms) TL_WUR;
void cli_chan_eval_release(struct cli_chan_eval *e);
/* Per statement: claimed and witnessed times side by side, deadlines and
 * verdicts; printed, or (json_mode) set as "statements" and "findings" of into. */
void cli_chan_eval_print(const struct cli_chan_eval *e, int json_mode, json_t *into);
/* A feed read from the store (records and checkpoint notes), as input. */
struct cli_loaded {
	char origin[TL_ORIGIN_LEN + 1];
	struct tl_buf data, notes;
	size_t *off, *noff;
	size_t n, cap, nn, ncap;
	const uint8_t **recs;
	size_t *lens;
	const char **np;
	size_t *nl;
	struct cli_feed_in in;
};
int cli_loaded_read(struct tl_store *s, const struct tl_feed *f, struct cli_loaded *l) TL_WUR;
void cli_loaded_release(struct cli_loaded *l);
/* The --witness options as type 0x04 keys (*out malloc'd; usage error on a bad key). */
int cli_witness_keys(struct cli *c, struct tl_vkey **out, size_t *n);
/* The witness set and quorum named by the agreed terms in force (*n = 0 if none). */
int cli_terms_witnesses(const struct tl_state *st, struct tl_vkey **out, size_t *n, int *quorum);

/* ------------------------------ channel state from the store (chanstate.c) */

enum cli_wsrc { CLI_WSRC_NONE, CLI_WSRC_FLAGS, CLI_WSRC_TERMS };

/* A channel as stored, evaluated with witnessed times: the one way every
 * command computes a channel state (channel state, statement, terms,
 * close). */
struct cli_chanstate {
	struct tl_feed own;
	char peer_origin[TL_ORIGIN_LEN + 1];
	int have_peer;             /* the peer's feed is stored */
	struct cli_loaded feed[2]; /* [0] own, [1] the peer's (empty when absent) */
	enum cli_wsrc wsrc;        /* where the witness set came from */
	struct tl_vkey *wits;      /* the witness set (type 0x04) */
	size_t nwits;
	unsigned quorum;
	uint64_t at_ms, skew_s;
	/* e.wt[k]: feed[k]'s witnessed-time tables (NULL without a witness
	 * set); e.late[i]: claimed and proven lateness of st->stmts[i]. */
	struct cli_chan_eval e;
	const struct tl_state *st;      /* with witnessed times where proven (e.ws) */
	const struct tl_state *claimed; /* the authors' claims alone (== st without witnesses) */
};
/* Loads the channel (which: channel id or own feed origin) and evaluates
 * it at at_ms. The witness set: --witness/--quorum when the command takes
 * and was given them, else the agreed terms' (--quorum alone overrides their
 * quorum), else none. Store must be open. Exit code (errors printed); on
 * success release with cli_chanstate_release. */
int cli_chanstate_load(struct cli *c, const char *which, uint64_t at_ms, struct cli_chanstate *cs);
/* The same from the channel's stored feeds (n 1 or 2, any of them own or
 * not; feeds[0] becomes cs->own). how: CLI_CS_CLAIMED ignores witnesses
 * (the claims only: no flags read, nothing witnessed); CLI_CS_QUIET fails
 * with EXIT_INVALID and no message when the feeds do not build a state. */
#define CLI_CS_CLAIMED 1u
#define CLI_CS_QUIET   2u
int cli_chanstate_feeds(struct cli *c, const struct tl_feed *feeds, size_t n, uint64_t at_ms,
                        unsigned how, struct cli_chanstate *cs);
void cli_chanstate_release(struct cli_chanstate *cs);
/* "witnessed", "seen_witnessed", "seen_claimed", "claimed". */
const char *cli_time_src_code(enum tl_time_src s);
/* Statement i of cs->st: facts (claimed and witnessed times side by side),
 * deadline and its source, claimed and proven verdicts. */
json_t *cli_late_json(const struct cli_chanstate *cs, size_t i);
void cli_late_print(const struct cli_chanstate *cs, size_t i, const char *indent);
/* The verdicts as sentences (cap bytes each), or short (list columns). */
void cli_late_text(const struct tl_late *l, char *claimed, char *proven, size_t cap);
void cli_late_short(const struct tl_late *l, char *claimed, char *proven, size_t cap);
/* The witness set in use: {source, quorum, keys, skew_s, issues}, or a line. */
json_t *cli_witnesses_json(const struct cli_chanstate *cs);
void cli_witnesses_print(const struct cli_chanstate *cs, const char *indent);

#endif
