/*
 * harness.h — helpers shared by the cmocka test programs.
 *
 * Tests run from the repository root (tests/run.sh does that); known-answer
 * vectors live in tests/vectors/. End-to-end tests run the real `tally`
 * binary named by $TALLY_BIN.
 */
#ifndef TL_HARNESS_H
#define TL_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first. */
#include <cmocka.h>

/* Reads a whole file; NULL if missing. *len receives the size. Caller frees. */
char *th_read_file(const char *path, size_t *len);
/* Writes a whole file; returns 0 or -1. */
int th_write_file(const char *path, const void *data, size_t len);
/* A fresh empty directory under $TMPDIR (or /tmp); caller frees the string
 * and removes it with th_rmtree. */
char *th_tmpdir(const char *tag);
void th_rmtree(const char *path);
/* Ends a test's th_tmpdir: removes it, or keeps it and prints its path when
 * TALLY_TEST_KEEP is set (logs and stores, for a post-mortem); frees dir. */
void th_tmpdir_done(char *dir);
/* The last 6000 bytes or so of a file (a log), for failure messages; "(no
 * log)" if it cannot be read. A static buffer, overwritten by each call. */
const char *th_file_tail(const char *path);

/* Result of running a program. out/err are NUL-terminated, caller frees via
 * th_run_free. status: exit code, or 128 + signal number. */
struct th_run {
	char *out;
	size_t out_len;
	char *err;
	size_t err_len;
	int status;
};
/*
 * Runs argv (argv[0] "tally" is replaced by $TALLY_BIN) with optional stdin
 * data, extra environment entries ("K=V", NULL-terminated, may be NULL) and
 * a time limit in seconds (killed after it; status 128+9).
 */
int th_run(struct th_run *r, const char *const *argv, const char *const *env, const void *in,
           size_t in_len, unsigned timeout_s);
void th_run_free(struct th_run *r);
/* Runs tally with env ("K=V", NULL-terminated) and no stdin, killed after
 * timeout_s; output in r (freed first). Fails the test if it cannot run;
 * returns the exit status. */
int th_tally_env(struct th_run *r, const char *const *env, const char *const *argv,
                 unsigned timeout_s);
/* Requires r, the result of running argv, to have exited 0 (else prints the
 * command, status and stderr, and fails); copies its first stdout line to
 * out (cap bytes, which it must fit). */
void th_first_line(const struct th_run *r, const char *const *argv, char *out, size_t cap);
/* Path of the tally binary ($TALLY_BIN or build/tally). */
const char *th_tally(void);

/* Decodes lowercase/uppercase hex into out (cap bytes); returns length or -1. */
long th_unhex(uint8_t *out, size_t cap, const char *hex);

#endif
