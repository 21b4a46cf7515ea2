/*
 * statement.h — statements of account (往来对账单) from ERP CSV exports.
 *
 * Reads a CSV file (UTF-8 with or without BOM, or GB18030/GBK), checks every
 * line and builds the `statement` entry body of docs/protocol.md as a jansson
 * object. The column set, the accepted spellings, the sign convention and the
 * aging rule are documented in docs/statement-csv.md.
 *
 * Nothing here keeps global state: every call is independent and calls may
 * run on several threads at once. Only tl_statement_from_csv() does I/O (it
 * reads the named file).
 */
#ifndef TL_STATEMENT_H
#define TL_STATEMENT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "../crypto/tl_base.h"

/* Bounds of an import; exceeding any is an error that says which. */
#define TL_STMT_FILE_MAX   ((size_t)64 << 20) /* bytes of CSV */
#define TL_STMT_ROWS_MAX   1000000u           /* data rows (lines of the statement) */
#define TL_STMT_RECORD_MAX 65536u             /* bytes of one CSV record */
#define TL_STMT_FIELDS_MAX 256u               /* fields of one CSV record */
#define TL_STMT_DOC_MAX    128u               /* bytes of a document number */
#define TL_STMT_MEMO_MAX   1024u              /* bytes of a memo */
#define TL_STMT_ID_MAX     128u               /* bytes of a statement id */
#define TL_AMOUNT_EXP_MAX  18u                /* largest exponent tl_amount_parse takes */

/* ------------------------------------------------------------ values */

/*
 * Converts a decimal string exactly to integer minor units at the given
 * exponent: "12" at 2 -> 1200, "0.5" -> 50, "1,234.56" -> 123456,
 * "-7" -> -700, "(1,234.50)" -> -123450 (ERP style negative). Refused with
 * TL_EFORMAT: empty, spaces, exponent notation, '+', thousands separators
 * not in groups of three, no digit before or after '.', more fraction digits
 * than exponent (never rounds). TL_ERANGE when the value does not fit an
 * int64_t; TL_EINVAL when exponent > TL_AMOUNT_EXP_MAX. *out is written only
 * on success.
 */
int tl_amount_parse(const char *s, size_t len, unsigned exponent, int64_t *out) TL_WUR;

/* ISO 4217 minor-unit exponent of an uppercase three-letter code (CNY 2,
 * JPY 0, KWD 3, ...). TL_ENOTFOUND for a code not in the table. */
int tl_currency_exponent(const char *code, unsigned *exp) TL_WUR;

/*
 * Parses a date written YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD (month and day
 * of one or two digits), YYYYMMDD or 2026年11月3日, checks that it is a
 * calendar date (leap years included) and writes it as "YYYY-MM-DD" into
 * out. TL_EFORMAT otherwise.
 */
int tl_date_parse(const char *s, size_t len, char out[11]) TL_WUR;

/* ------------------------------------------------------------ errors */

#define TL_ERRLIST_MAX 100 /* messages kept */
#define TL_ERRLIST_MSG 320 /* bytes of one message, NUL included */

/*
 * Every problem found in one pass, each a sentence "FILE:LINE:COLUMN (name):
 * what is wrong". total counts all problems; only the first TL_ERRLIST_MAX
 * are kept. The struct is plain memory (about 32 KiB): no release needed.
 */
struct tl_errlist {
	size_t n;     /* messages kept in msg[] */
	size_t total; /* problems found; total > n when some were not kept */
	char msg[TL_ERRLIST_MAX][TL_ERRLIST_MSG];
};

void tl_errlist_init(struct tl_errlist *e);
void tl_errlist_add(struct tl_errlist *e, const char *fmt, ...) TL_PRINTF(2, 3);
/* One message per line, then "... and N more problems" if some were dropped. */
void tl_errlist_print(const struct tl_errlist *e, FILE *fp);

/* -------------------------------------------------------- statements */

#define TL_STMT_SIGNED 0x1u /* amounts in the file already carry their sign */

/*
 * Statement-level values, supplied by the caller (the CLI's flags). Strings
 * are read during the call only.
 */
struct tl_statement_opts {
	const char *id;         /* statement number: 1..TL_STMT_ID_MAX bytes of UTF-8 */
	unsigned version;       /* >= 1; 0 means 1 */
	const char *supersedes; /* leaf hash, 64 lowercase hex digits; NULL = none */
	const char *currency;   /* ISO 4217 code known to tl_currency_exponent() */
	const char *from, *to;  /* the period, any form tl_date_parse() takes */
	const char *date;       /* the as-of date (aging), not before to */
	const char *opening;    /* opening balance as a decimal string; NULL = 0 */
	const char *encoding;   /* NULL or "utf-8", "gb18030", "gbk" (any case) */
	unsigned flags;         /* TL_STMT_* */
	const char *name;       /* the file name used in messages; NULL = path */
};

/*
 * Imports the CSV file at path. On success returns 0 and *out is a new
 * reference to the statement body (fields in schema order; canonical
 * MessagePack via tl_json_to_mp()). Otherwise *out is NULL and:
 *   TL_EFORMAT  the file or the options have problems, all listed in errs;
 *   TL_ETOOBIG  the file is over TL_STMT_FILE_MAX (said in errs);
 *   TL_EIO      the file cannot be read (said in errs, with errno's text);
 *   TL_ENOMEM   out of memory;
 *   TL_EINVAL   o, out or errs is NULL.
 * errs is initialised by the call.
 */
int tl_statement_from_csv(const char *path, const struct tl_statement_opts *o, json_t **out,
                          struct tl_errlist *errs) TL_WUR;

/* The same from bytes in memory (len <= TL_STMT_FILE_MAX); messages name
 * o->name, or "statement.csv" when it is NULL. */
int tl_statement_from_csv_mem(const uint8_t *data, size_t len, const struct tl_statement_opts *o,
                              json_t **out, struct tl_errlist *errs) TL_WUR;

/*
 * A line added by `tally statement adjust`: strings as the user typed them.
 * type: a document type as in the CSV; amount: a decimal in major units,
 * positive (the type gives the sign; an adjustment may be negative); date:
 * NULL = the previous version's period end; due and memo may be NULL.
 */
struct tl_adjust_line {
	const char *type, *doc, *amount, *date, *due, *memo;
};

/*
 * The next version of statement prev (a statement body as stored, leaf
 * prev_leaf in lowercase hex): the same id, version + 1, supersedes
 * prev_leaf, the previous lines plus add[0..n), the period end moved to the
 * latest line date if later, the as-of date `date` (NULL: the later of the
 * previous one and the latest line), closing and aging recomputed. Returns
 * as tl_statement_from_csv_mem (problems listed in errs, naming "added line
 * N").
 */
int tl_statement_adjust(const json_t *prev, const char *prev_leaf, const struct tl_adjust_line *add,
                        size_t n, const char *date, json_t **out, struct tl_errlist *errs) TL_WUR;

#endif
