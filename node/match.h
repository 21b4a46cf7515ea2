/*
 * match.h — automatic matching of a supplier's statement of account against
 * the customer's own payables ledger (issue 4, item 4: `tally match`).
 *
 * The customer's node holds two lists of lines: the statement's lines (as
 * sent by the supplier) and the customer's ledger lines for that supplier.
 * Both must use the statement's sign convention (docs/protocol.md,
 * "Reconciliation entries"): the sign of amount is the effect on what the
 * customer owes, so invoices and debit notes are positive, credit notes and
 * payments negative. Whoever loads the ledger converts its signs (the CSV
 * loader, or TL_MATCH_LOAD_NEGATE below).
 *
 * The matcher is a pure function: arrays in, a report out, no I/O, no
 * global state. Rules, applied in this order, each to the lines the earlier
 * ones left over:
 *
 *   (a) document number. Lines of the same type family (below) whose
 *       normalised numbers (tl_match_doc_key) are equal are paired: equal
 *       amounts first, then amounts within the tolerance; pairs left with
 *       amounts further apart than the tolerance are "differs" lines. A
 *       line whose number occurs on the other side but found no partner
 *       (one side has more copies) takes no part in (b) and (c): the number
 *       says what it is, an amount coincidence must not hide it.
 *   (b) amount and date. One-to-one, same type family, amounts within the
 *       tolerance and dates at most `window` days apart. Closest date
 *       first (globally: every pair 0 days apart is made before any pair 1
 *       day apart), then closest amount (on a tie, the amount above), then
 *       the lower document number and canonical index.
 *   (c) sums (many-to-one and one-to-many), when opts.many_to_one is set.
 *       One line on one side equals, within the tolerance, the sum of 2 or
 *       more lines of the same type family and sign on the other side, each
 *       dated within `window` days of the one line: one payment received
 *       that the customer booked as several (one per invoice it settles),
 *       or the reverse, one payment the customer booked that the supplier
 *       received in instalments. First every statement line is tried
 *       against the ledger, then every ledger line against the statement.
 *       The search is bounded: at most TL_MATCH_SUBSET_MAX candidates (the
 *       closest by date among the first TL_MATCH_SCAN_MAX lines looked at),
 *       a depth-first search over them that visits at most
 *       TL_MATCH_STEPS_LINE nodes per line and TL_MATCH_STEPS_RUN nodes per
 *       run; a line whose search was cut short is counted in
 *       n_search_truncated and stays unmatched. Equal amounts are tried
 *       once per level, so many equal candidates cost no more than one.
 *   (d) the rest is missing: in the statement only ("missing in ledger") or
 *       in the ledger only ("missing in statement").
 *
 * Type families: invoice and debit note (charges), credit note, payment,
 * adjustment. Rule (a) too stays within a family because customers often
 * give a payment line the number of the invoice it settles.
 *
 * Determinism: the report depends only on the multiset of lines and the
 * options, never on their order in the input arrays. Both inputs are first
 * copied and sorted into a canonical order (date, type, doc, amount, ref);
 * every "index" in the report refers to that order.
 *
 * Complexity: sorting and binary searches, never a scan of one side per
 * line of the other: O((n + m) log(n + m)), plus for rule (b) at most
 * (window + 1) tries per line (in practice one or two: a line is tried only
 * at distances where a partner can exist) and the bounded searches of rule
 * (c). 10,000 against 50,000 lines: ~50 ms (bench/bench_match.c).
 * Memory: O(n + m), allocated up front; n, m <= TL_MATCH_LINES_MAX. With
 * |amount| <= 10^12, every sum over a side fits in int64_t.
 */
#ifndef TL_MATCH_H
#define TL_MATCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../crypto/tl_base.h"

#define TL_MATCH_DOC_MAX     63                 /* bytes of a document number */
#define TL_MATCH_LINES_MAX   1000000            /* lines per side */
#define TL_MATCH_AMOUNT_MAX  1000000000000LL    /* |amount|, |tolerance| (minor units) */
#define TL_MATCH_OPENING_MAX 1000000000000000LL /* |opening balance| */
#define TL_MATCH_WINDOW_MAX  366                /* days */
#define TL_MATCH_SUBSET_MAX  20                 /* candidates per sum search (rule c) */
#define TL_MATCH_SCAN_MAX    1024               /* lines looked at to find them */
#define TL_MATCH_STEPS_LINE  65536              /* search nodes per line */
#define TL_MATCH_STEPS_RUN   (1L << 25)         /* search nodes per run */
#define TL_MATCH_DATE_MIN    (-719162)          /* 0001-01-01 in days since 1970-01-01 */
#define TL_MATCH_DATE_MAX    2932896            /* 9999-12-31 */

enum tl_match_type {
	TL_MATCH_INVOICE = 1,
	TL_MATCH_CREDIT_NOTE,
	TL_MATCH_DEBIT_NOTE,
	TL_MATCH_PAYMENT,
	TL_MATCH_ADJUSTMENT,
};

/* One line of either side. doc is NUL-terminated UTF-8 without control
 * characters; "" when the line has no number (it then skips rule a). ref is
 * the caller's own tag (a CSV row number, say; 0 = none): it is copied into
 * the report and shown, and never used for matching except as the last
 * tie-break of the canonical order. */
struct tl_match_line {
	int32_t date; /* days since 1970-01-01 */
	enum tl_match_type type;
	int64_t amount; /* minor units, statement sign convention */
	uint32_t ref;
	char doc[TL_MATCH_DOC_MAX + 1];
};

struct tl_match_opts {
	int64_t tolerance; /* |a - b| <= tolerance counts as equal; default 0 */
	int32_t window;    /* max days between dates in rules b, c; default 3 */
	int many_to_one;   /* rule c on (default) or off */
	/* Statement period (inclusive), when has_period: a statement line outside
	 * it that is missing gets reason cut_off; an unmatched ledger line within
	 * `window` days outside it gets cut_off, one further outside belongs to
	 * another period and is left out of the report (n_ledger_out_of_period). */
	int has_period;
	int32_t period_from, period_to;
	/* Opening balances; closing = opening + sum of lines, per side. */
	int64_t stmt_opening, ledger_opening;
};

/* Fills the defaults listed above. */
void tl_match_opts_init(struct tl_match_opts *o);

enum tl_match_rule {
	TL_MATCH_BY_DOC = 1,       /* rule a */
	TL_MATCH_BY_AMOUNT,        /* rule b */
	TL_MATCH_BY_SUM_LEDGER,    /* rule c: one statement line = several ledger lines */
	TL_MATCH_BY_SUM_STATEMENT, /* rule c: one ledger line = several statement lines */
};

/* Dispute reason codes (docs/protocol.md; `tally dispute --reason`). */
enum tl_match_reason {
	TL_MATCH_R_PRICE = 1,
	TL_MATCH_R_QUANTITY,
	TL_MATCH_R_QUALITY,
	TL_MATCH_R_NOT_RECEIVED,
	TL_MATCH_R_PAYMENT_NOT_RECORDED,
	TL_MATCH_R_DUPLICATE,
	TL_MATCH_R_TAX,
	TL_MATCH_R_FX,
	TL_MATCH_R_CUT_OFF,
	TL_MATCH_R_OTHER,
};

enum tl_match_proposal {
	TL_MATCH_CONFIRM = 1, /* everything matched and the closing balances are equal */
	TL_MATCH_DISPUTE,
};

/* Indices refer to report->stmt and report->ledger; lists are ascending. */
struct tl_match_group {
	enum tl_match_rule rule;
	const size_t *stmt;
	size_t n_stmt;
	const size_t *ledger;
	size_t n_ledger;
	int64_t stmt_sum, ledger_sum;
};

/* Same document number, amounts further apart than the tolerance. */
struct tl_match_diff {
	size_t stmt, ledger;
	int64_t stmt_amount, ledger_amount;
	int64_t difference; /* stmt_amount - ledger_amount */
};

struct tl_match_missing {
	size_t line; /* into report->stmt (missing in ledger) or report->ledger */
	enum tl_match_reason reason;
};

/*
 * A pre-filled line of the proposed dispute. their_amount is the supplier's
 * figure (the statement line; 0 when the line is in the ledger only);
 * our_amount is the customer's (0 when in the statement only). Reasons:
 * differs -> price; in the statement only: a number the statement repeats
 * -> duplicate, dated outside the period -> cut_off, invoice or debit note
 * -> not_received, else other (a payment the customer has no record of is
 * not "payment not recorded": the supplier did record it); in the ledger
 * only: outside the period -> cut_off, a payment -> payment_not_recorded
 * (the customer has it as paid, the supplier does not), else other.
 */
struct tl_match_dispute {
	const char *doc; /* points into report->stmt or report->ledger */
	int64_t their_amount, our_amount;
	enum tl_match_reason reason;
	size_t stmt, ledger; /* SIZE_MAX where absent */
};

struct tl_match_totals {
	int64_t stmt_sum;       /* all statement lines */
	int64_t ledger_sum;     /* ledger lines, less those out of period */
	int64_t stmt_closing;   /* stmt_opening + stmt_sum */
	int64_t ledger_closing; /* ledger_opening + ledger_sum */
	int64_t difference;     /* stmt_closing - ledger_closing */
	size_t matched_stmt_lines, matched_ledger_lines;
	int64_t matched_stmt_sum, matched_ledger_sum;
	int64_t differs_sum; /* sum of differences */
	int64_t missing_in_ledger_sum, missing_in_stmt_sum;
	int balanced; /* difference == 0 */
};

/*
 * The result of tl_match_run. Everything it points to is owned by the
 * report and lives until tl_match_report_free; it holds its own copies of
 * both inputs (stmt, ledger: canonical order), so the caller's arrays may be
 * freed as soon as tl_match_run returns. Read-only for callers.
 */
struct tl_match_report {
	struct tl_match_opts opts;
	struct tl_match_line *stmt;
	size_t n_stmt;
	struct tl_match_line *ledger;
	size_t n_ledger;
	struct tl_match_group *matched; /* by first statement index */
	size_t n_matched;
	struct tl_match_diff *differs; /* by statement index */
	size_t n_differs;
	struct tl_match_missing *missing_in_ledger; /* statement lines, by index */
	size_t n_missing_in_ledger;
	struct tl_match_missing *missing_in_stmt; /* ledger lines, by index */
	size_t n_missing_in_stmt;
	size_t n_ledger_out_of_period;
	size_t n_search_truncated;
	struct tl_match_totals totals;
	enum tl_match_proposal proposal;
	/* differs, then missing in ledger, then missing in statement */
	struct tl_match_dispute *dispute;
	size_t n_dispute;
	size_t *pool; /* storage of the groups' index lists */
};

/*
 * Matches stmt[0..n_stmt) against ledger[0..n_ledger) (either may be empty;
 * the arrays are only read during the call). opts NULL = defaults. On
 * success *out is a new report. Fails with TL_EINVAL (bad option or line,
 * err says which: "statement line 7 (ref 12): amount ... out of range"),
 * TL_ETOOBIG (more than TL_MATCH_LINES_MAX lines) or TL_ENOMEM; *out is then
 * NULL. err may be NULL.
 */
int tl_match_run(struct tl_match_report **out, const struct tl_match_line *stmt, size_t n_stmt,
                 const struct tl_match_line *ledger, size_t n_ledger,
                 const struct tl_match_opts *opts, char *err, size_t errcap) TL_WUR;
void tl_match_report_free(struct tl_match_report *r); /* NULL is fine */

#define TL_MATCH_BRIEF 0x1u /* renderings: leave out one-to-one matches */

/*
 * JSON rendering for `tally match --json`: a new reference in *out (caller
 * json_decref's it). Keys: options, proposal ("confirm"|"dispute"), totals,
 * matched, differs, missing_in_ledger, missing_in_statement, dispute
 * [{doc, their_amount, our_amount, reason}], search_truncated. Lines render
 * as {date "YYYY-MM-DD", type, doc, amount, ref (when not 0)}.
 */
int tl_match_report_json(const struct tl_match_report *r, unsigned flags, json_t **out) TL_WUR;

/*
 * Plain-text rendering for people, appended to b: the proposal, the
 * balances, the grouped matches (always: they are inferred, a person should
 * look), every one-to-one match unless TL_MATCH_BRIEF, differing lines,
 * missing lines both ways and the proposed dispute. Amounts are shown with
 * `digits` decimals (the currency's ISO 4217 exponent, 0..4).
 */
int tl_match_report_text(const struct tl_match_report *r, unsigned flags, int digits,
                         struct tl_buf *b) TL_WUR;

/* ------------------------------------------------------------- helpers */

/*
 * Normalised document number: ASCII letters upper-cased; the leading
 * zeros of every numeric part dropped (a part of only zeros keeps one);
 * spaces, tabs, '-' and '/' dropped after they end a numeric part. So
 * "INV-00123", "inv 123" and "Inv/0123" all give "INV123", and
 * "INV-2026-0042" and "inv 2026/42" both give "INV202642" (ERPs differ in
 * padding far more often than in where they put separators; the price is
 * that "INV20260042", written without separators, is a different number).
 * Other bytes (UTF-8 included) are kept. out receives at most
 * TL_MATCH_DOC_MAX bytes and a NUL; returns the length.
 */
size_t tl_match_doc_key(char out[TL_MATCH_DOC_MAX + 1], const char *doc);

/* "YYYY-MM-DD" (exactly, a real calendar day in years 0001..9999) <-> days
 * since 1970-01-01. format writes 11 bytes. */
int tl_match_date_parse(const char *s, int32_t *days) TL_WUR;
void tl_match_date_format(char out[11], int32_t days);

/* Names as in the statement schema and the CLI; parse returns 0 if unknown. */
const char *tl_match_type_name(enum tl_match_type t);
enum tl_match_type tl_match_type_parse(const char *s);
const char *tl_match_reason_name(enum tl_match_reason r); /* "not_received", ... */
const char *tl_match_rule_name(enum tl_match_rule r);     /* "doc", "amount", ... */

#define TL_MATCH_LOAD_NEGATE 0x1u /* flip every amount's sign */

/*
 * Lines from JSON, for tests and tools: j is an array of line objects, or
 * a statement body whose "lines" member is one. A line: {"date": "YYYY-MM-DD"
 * or integer days, "type": "invoice"|..., "doc": str, "amount": int,
 * "ref": int (optional)}; other members (due, memo) are ignored. On success
 * *out is malloc'd (free() it; NULL when *n == 0). On failure err names the
 * line and member: "lines[3].amount: not an integer".
 */
int tl_match_lines_from_json(const json_t *j, unsigned flags, struct tl_match_line **out, size_t *n,
                             char *err, size_t errcap) TL_WUR;

/* Period and opening balance of a statement body (both optional) into o. */
int tl_match_opts_from_statement(struct tl_match_opts *o, const json_t *stmt, char *err,
                                 size_t errcap) TL_WUR;

#endif
