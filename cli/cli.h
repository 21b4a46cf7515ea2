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
uint64_t cli_now_ms(void);

/* Appends one entry to an own feed, through the running node if there is
 * one; prints "seq leaf" once durable. Returns an exit code. */
int cli_append_one(struct cli *c, const char *origin, const char *kind, const json_t *body);

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
int cmd_fsck(int argc, char **argv);    /* cmd_fsck.c */

/* The control socket of a running tallyd: a connected fd, or -1 when no
 * node runs on this home. call sends one JSON request line and returns the
 * parsed reply (NULL after printing an error). */
int cli_control_connect(struct cli *c);
json_t *cli_control_call(struct cli *c, int fd, json_t *req);

#endif
