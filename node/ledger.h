/*
 * ledger.h — the customer's payables ledger (应付账款明细) from an ERP CSV
 * export, as lines for the matching engine (match.h; `tally match`).
 *
 * The file is read exactly like a statement export (docs/statement-csv.md):
 * the same CSV dialect, encodings (UTF-8 with or without BOM, GB18030, GBK),
 * columns and header spellings (date/日期, type/类型, doc/单据号, amount/金额,
 * and the optional due/到期日 and memo/摘要, which the matcher does not use),
 * document types, amount and date forms, and the same error list: every
 * problem as "FILE:LINE:COLUMN (name): what is wrong", all of them, and no
 * line returned while there is any. The parsing is the statement importer's
 * own (tl_statement_from_csv with an unbounded period), not a copy of it.
 *
 * Signs end up in the statement's convention (docs/protocol.md), the effect
 * on what the customer owes the supplier: invoices and debit notes +,
 * payments and credit notes −, adjustments as written. By default amounts
 * are written positive and the type gives the sign, as in a statement
 * export; with TL_LEDGER_SIGNED they already carry that sign.
 *
 * Lines come back in date order (lines of one date in file order); ref is 0
 * (the CSV line is not carried through the importer).
 */
#ifndef TL_LEDGER_H
#define TL_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "match.h"
#include "statement.h"

#define TL_LEDGER_SIGNED 0x1u /* amounts already carry the statement's sign */

struct tl_ledger_opts {
	const char *currency; /* ISO 4217 code giving the decimals: the statement's */
	const char *encoding; /* NULL or "utf-8", "gb18030", "gbk" (any case) */
	unsigned flags;       /* TL_LEDGER_* */
	const char *name;     /* the file name used in messages; NULL = path */
};

/*
 * Loads the CSV file at path. On success returns 0, *out is a malloc'd
 * array of *n lines (free() it; NULL when the file has no lines). Otherwise
 * *out is NULL, *n is 0 and:
 *   TL_EFORMAT  the file has problems (or the currency is unknown), all
 *               listed in errs; a document number longer than
 *               TL_MATCH_DOC_MAX bytes or an amount beyond
 *               TL_MATCH_AMOUNT_MAX minor units is one too;
 *   TL_ETOOBIG  the file is over TL_STMT_FILE_MAX (said in errs);
 *   TL_EIO      the file cannot be read (said in errs);
 *   TL_ENOMEM   out of memory;
 *   TL_EINVAL   a NULL argument.
 * errs is initialised by the call.
 */
int tl_ledger_from_csv(const char *path, const struct tl_ledger_opts *o, struct tl_match_line **out,
                       size_t *n, struct tl_errlist *errs) TL_WUR;

/* The same from bytes in memory; messages name o->name, or "ledger.csv". */
int tl_ledger_from_csv_mem(const uint8_t *data, size_t len, const struct tl_ledger_opts *o,
                           struct tl_match_line **out, size_t *n, struct tl_errlist *errs) TL_WUR;

#endif
