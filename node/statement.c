/*
 * statement.c — CSV statement importer; see statement.h and
 * docs/statement-csv.md.
 *
 * The CSV tokenizer works on the raw bytes: in UTF-8, GBK and GB18030 the
 * bytes '"', ',', CR and LF never occur inside a multi-byte character, so
 * the record structure is found first and each field is then decoded (and
 * its encoding checked) on its own. That gives every encoding error a line
 * and a column, and lets the import go on to report the other problems.
 */
#include "statement.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ errors */

void tl_errlist_init(struct tl_errlist *e)
{
	e->n = 0;
	e->total = 0;
}

static void errlist_vadd(struct tl_errlist *e, const char *prefix, const char *fmt, va_list ap)
{
	e->total++;
	if (e->n >= TL_ERRLIST_MAX)
		return;
	char *m = e->msg[e->n++];
	int k = snprintf(m, TL_ERRLIST_MSG, "%s", prefix);
	if (k < 0)
		k = 0;
	if ((size_t)k < TL_ERRLIST_MSG)
		vsnprintf(m + k, TL_ERRLIST_MSG - (size_t)k, fmt, ap);
}

void tl_errlist_add(struct tl_errlist *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errlist_vadd(e, "", fmt, ap);
	va_end(ap);
}

void tl_errlist_print(const struct tl_errlist *e, FILE *fp)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(fp, "%s\n", e->msg[i]);
	if (e->total > e->n)
		fprintf(fp, "... and %zu more problems\n", e->total - e->n);
}

/* ------------------------------------------------------------ amounts */

enum amt_err {
	AMT_OK,
	AMT_EMPTY,
	AMT_SPACE,
	AMT_EXPNOT,
	AMT_CHAR,
	AMT_GROUP,
	AMT_POINT,
	AMT_DECIMALS,
	AMT_PAREN,
	AMT_RANGE,
};

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* The whole grammar; see tl_amount_parse(). exponent <= TL_AMOUNT_EXP_MAX. */
static enum amt_err amount_parse(const char *s, size_t len, unsigned exponent, int64_t *out)
{
	int neg = 0;
	size_t i, int_end, nfrac;
	uint64_t mag = 0;

	if (len == 0)
		return AMT_EMPTY;
	for (i = 0; i < len; i++) {
		char c = s[i];
		if (c == ' ' || c == '\t')
			return AMT_SPACE;
		if (c == 'e' || c == 'E')
			return AMT_EXPNOT;
		if (!is_digit(c) && c != ',' && c != '.' && c != '-' && c != '(' && c != ')')
			return AMT_CHAR;
	}
	if (s[0] == '(' || s[len - 1] == ')') {
		if (len < 2 || s[0] != '(' || s[len - 1] != ')')
			return AMT_PAREN;
		s++;
		len -= 2;
		neg = 1;
	}
	if (len > 0 && s[0] == '-') {
		if (neg)
			return AMT_CHAR; /* "(-5)" */
		s++;
		len--;
		neg = 1;
	}
	if (len == 0)
		return AMT_CHAR; /* "-", "()" */
	for (int_end = 0; int_end < len && s[int_end] != '.'; int_end++)
		if (s[int_end] != ',' && !is_digit(s[int_end]))
			return AMT_CHAR; /* '-', '(' or ')' inside */
	if (int_end == 0)
		return AMT_POINT; /* ".5" */
	if (memchr(s, ',', int_end)) {
		/* Groups: 1..3 digits (no leading zero), then ",ddd" each. */
		size_t g = 0;
		while (g < int_end && s[g] != ',')
			g++;
		if (g == 0 || g > 3 || (s[0] == '0'))
			return AMT_GROUP;
		while (g < int_end) {
			if (g + 4 > int_end || s[g] != ',' || !is_digit(s[g + 1]) ||
			    !is_digit(s[g + 2]) || !is_digit(s[g + 3]))
				return AMT_GROUP;
			g += 4;
		}
	}
	nfrac = 0;
	if (int_end < len) {
		nfrac = len - int_end - 1;
		if (nfrac == 0)
			return AMT_POINT; /* "5." */
		for (i = int_end + 1; i < len; i++)
			if (!is_digit(s[i]))
				return s[i] == ',' ? AMT_GROUP : AMT_CHAR;
		if (nfrac > exponent)
			return AMT_DECIMALS;
	}
	for (i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			continue;
		unsigned d = (unsigned)(s[i] - '0');
		if (mag > (UINT64_MAX - d) / 10)
			return AMT_RANGE;
		mag = mag * 10 + d;
	}
	for (i = nfrac; i < exponent; i++) {
		if (mag > UINT64_MAX / 10)
			return AMT_RANGE;
		mag *= 10;
	}
	if (neg) {
		if (mag > (uint64_t)INT64_MAX + 1)
			return AMT_RANGE;
		*out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	} else {
		if (mag > (uint64_t)INT64_MAX)
			return AMT_RANGE;
		*out = (int64_t)mag;
	}
	return AMT_OK;
}

int tl_amount_parse(const char *s, size_t len, unsigned exponent, int64_t *out)
{
	if (!s || !out || exponent > TL_AMOUNT_EXP_MAX)
		return TL_EINVAL;
	switch (amount_parse(s, len, exponent, out)) {
	case AMT_OK:
		return 0;
	case AMT_RANGE:
		return TL_ERANGE;
	default:
		return TL_EFORMAT;
	}
}

/* ISO 4217 minor units, sorted by code for bsearch. */
static const struct currency {
	char code[4];
	unsigned char exp;
} currencies[] = {
        {"AED", 2}, {"ARS", 2}, {"AUD", 2}, {"BDT", 2}, {"BGN", 2}, {"BHD", 3}, {"BIF", 0},
        {"BND", 2}, {"BRL", 2}, {"CAD", 2}, {"CHF", 2}, {"CLP", 0}, {"CNY", 2}, {"COP", 2},
        {"CZK", 2}, {"DJF", 0}, {"DKK", 2}, {"EGP", 2}, {"EUR", 2}, {"GBP", 2}, {"GNF", 0},
        {"HKD", 2}, {"HUF", 2}, {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"ISK", 0},
        {"JOD", 3}, {"JPY", 0}, {"KES", 2}, {"KHR", 2}, {"KMF", 0}, {"KRW", 0}, {"KWD", 3},
        {"KZT", 2}, {"LAK", 2}, {"LKR", 2}, {"LYD", 3}, {"MAD", 2}, {"MMK", 2}, {"MNT", 2},
        {"MOP", 2}, {"MXN", 2}, {"MYR", 2}, {"NGN", 2}, {"NOK", 2}, {"NPR", 2}, {"NZD", 2},
        {"OMR", 3}, {"PEN", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0}, {"QAR", 2},
        {"RON", 2}, {"RSD", 2}, {"RUB", 2}, {"RWF", 0}, {"SAR", 2}, {"SEK", 2}, {"SGD", 2},
        {"THB", 2}, {"TND", 3}, {"TRY", 2}, {"TWD", 2}, {"UAH", 2}, {"UGX", 0}, {"USD", 2},
        {"UZS", 2}, {"VND", 0}, {"VUV", 0}, {"XAF", 0}, {"XOF", 0}, {"XPF", 0}, {"ZAR", 2},
};

static int currency_cmp(const void *a, const void *b)
{
	return strcmp(((const struct currency *)a)->code, ((const struct currency *)b)->code);
}

int tl_currency_exponent(const char *code, unsigned *exp)
{
	struct currency key;
	const struct currency *c;
	if (!code || !exp)
		return TL_EINVAL;
	if (strnlen(code, 4) != 3)
		return TL_ENOTFOUND;
	memcpy(key.code, code, 4);
	c = bsearch(&key, currencies, sizeof currencies / sizeof currencies[0],
	            sizeof currencies[0], currency_cmp);
	if (!c)
		return TL_ENOTFOUND;
	*exp = c->exp;
	return 0;
}

/* -------------------------------------------------------------- dates */

#define NO_DATE INT32_MIN

static int leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int y, unsigned m)
{
	static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm). */
static int32_t days_from_civil(int y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int32_t)(era * 146097 + (int)doe - 719468);
}

static void civil_from_days(int32_t days, char out[11])
{
	int z = days + 719468;
	int era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	int y = (int)yoe + era * 400 + (m <= 2);
	unsigned v[3] = {(unsigned)y % 10000, m, d}, w[3] = {4, 2, 2};
	size_t k = 0;
	for (int i = 0; i < 3; i++) {
		for (unsigned j = w[i], x = v[i]; j-- > 0; x /= 10)
			out[k + j] = (char)('0' + x % 10);
		k += w[i];
		out[k++] = i < 2 ? '-' : 0;
	}
}

/* Reads 1..max digits at s[*i]; returns the count read (0 = none). */
static size_t digits(const char *s, size_t len, size_t *i, size_t max, unsigned *v)
{
	size_t n = 0;
	*v = 0;
	while (*i < len && n < max && is_digit(s[*i])) {
		*v = *v * 10 + (unsigned)(s[*i] - '0');
		(*i)++;
		n++;
	}
	return n;
}

static int lit(const char *s, size_t len, size_t *i, const char *w)
{
	size_t n = strlen(w);
	if (len - *i < n || memcmp(s + *i, w, n) != 0)
		return 0;
	*i += n;
	return 1;
}

enum date_err { DATE_OK, DATE_FORM, DATE_CAL };

static enum date_err date_parse(const char *s, size_t len, int32_t *days)
{
	size_t i = 0;
	unsigned y, m, d;
	if (len == 8) {
		if (digits(s, len, &i, 4, &y) != 4 || digits(s, len, &i, 2, &m) != 2 ||
		    digits(s, len, &i, 2, &d) != 2)
			return DATE_FORM;
	} else {
		if (digits(s, len, &i, 4, &y) != 4 || i == len)
			return DATE_FORM;
		if (s[i] == '-' || s[i] == '/' || s[i] == '.') {
			char sep = s[i++];
			if (digits(s, len, &i, 2, &m) == 0 || i == len || s[i++] != sep ||
			    digits(s, len, &i, 2, &d) == 0)
				return DATE_FORM;
		} else if (!lit(s, len, &i, "\xe5\xb9\xb4") || digits(s, len, &i, 2, &m) == 0 ||
		           !lit(s, len, &i, "\xe6\x9c\x88") || digits(s, len, &i, 2, &d) == 0 ||
		           !lit(s, len, &i, "\xe6\x97\xa5")) {
			return DATE_FORM; /* 年 月 日 */
		}
		if (i != len)
			return DATE_FORM;
	}
	if (y == 0 || m < 1 || m > 12 || d < 1 || d > days_in_month((int)y, m))
		return DATE_CAL;
	*days = days_from_civil((int)y, m, d);
	return DATE_OK;
}

int tl_date_parse(const char *s, size_t len, char out[11])
{
	int32_t days;
	if (!s || !out)
		return TL_EINVAL;
	if (date_parse(s, len, &days) != DATE_OK)
		return TL_EFORMAT;
	civil_from_days(days, out);
	return 0;
}

/* ---------------------------------------------------------- the import */

enum col { COL_DATE, COL_TYPE, COL_DOC, COL_AMOUNT, COL_DUE, COL_MEMO, NCOL };
#define MEMO_COLS_MAX 4

static const char *const col_name[NCOL] = {"date", "type", "doc", "amount", "due", "memo"};
static const char *const col_hint[NCOL] = {"日期", "类型", "单据号", "金额", "到期日", "摘要"};

/* Header spellings: English compared case-insensitively with ' ' and '-'
 * read as '_'; Chinese exactly. */
static const struct alias {
	const char *name;
	enum col col;
} aliases[] = {
        {"date", COL_DATE},
        {"doc_date", COL_DATE},
        {"document_date", COL_DATE},
        {"\xe6\x97\xa5\xe6\x9c\x9f", COL_DATE},                         /* 日期 */
        {"\xe5\x8d\x95\xe6\x8d\xae\xe6\x97\xa5\xe6\x9c\x9f", COL_DATE}, /* 单据日期 */
        {"type", COL_TYPE},
        {"doc_type", COL_TYPE},
        {"document_type", COL_TYPE},
        {"\xe7\xb1\xbb\xe5\x9e\x8b", COL_TYPE},                         /* 类型 */
        {"\xe5\x8d\x95\xe6\x8d\xae\xe7\xb1\xbb\xe5\x9e\x8b", COL_TYPE}, /* 单据类型 */
        {"doc", COL_DOC},
        {"doc_no", COL_DOC},
        {"document", COL_DOC},
        {"document_no", COL_DOC},
        {"document_number", COL_DOC},
        {"\xe5\x8d\x95\xe6\x8d\xae\xe5\x8f\xb7", COL_DOC},             /* 单据号 */
        {"\xe5\x8d\x95\xe5\x8f\xb7", COL_DOC},                         /* 单号 */
        {"\xe5\x87\xad\xe8\xaf\x81\xe5\x8f\xb7", COL_DOC},             /* 凭证号 */
        {"\xe5\x8d\x95\xe6\x8d\xae\xe7\xbc\x96\xe5\x8f\xb7", COL_DOC}, /* 单据编号 */
        {"amount", COL_AMOUNT},
        {"\xe9\x87\x91\xe9\xa2\x9d", COL_AMOUNT}, /* 金额 */
        {"due", COL_DUE},
        {"due_date", COL_DUE},
        {"\xe5\x88\xb0\xe6\x9c\x9f\xe6\x97\xa5", COL_DUE},             /* 到期日 */
        {"\xe5\x88\xb0\xe6\x9c\x9f\xe6\x97\xa5\xe6\x9c\x9f", COL_DUE}, /* 到期日期 */
        {"memo", COL_MEMO},
        {"description", COL_MEMO},
        {"note", COL_MEMO},
        {"\xe6\x91\x98\xe8\xa6\x81", COL_MEMO}, /* 摘要 */
        {"\xe5\xa4\x87\xe6\xb3\xa8", COL_MEMO}, /* 备注 */
};

enum ltype { T_INVOICE, T_CREDIT, T_DEBIT, T_PAYMENT, T_ADJUST, NTYPE };

static const char *const type_name[NTYPE] = {"invoice", "credit_note", "debit_note", "payment",
                                             "adjustment"};

static const struct talias {
	const char *name;
	enum ltype t;
} type_aliases[] = {
        {"invoice", T_INVOICE},
        {"\xe5\x8f\x91\xe7\xa5\xa8", T_INVOICE}, /* 发票 */
        {"credit_note", T_CREDIT},
        {"\xe8\xb4\xb7\xe9\xa1\xb9\xe9\x80\x9a\xe7\x9f\xa5\xe5\x8d\x95", T_CREDIT}, /* 贷项通知单 */
        {"\xe7\xba\xa2\xe5\xad\x97\xe5\x8f\x91\xe7\xa5\xa8", T_CREDIT}, /* 红字发票 */
        {"debit_note", T_DEBIT},
        {"\xe5\x80\x9f\xe9\xa1\xb9\xe9\x80\x9a\xe7\x9f\xa5\xe5\x8d\x95", T_DEBIT}, /* 借项通知单 */
        {"payment", T_PAYMENT},
        {"\xe4\xbb\x98\xe6\xac\xbe", T_PAYMENT}, /* 付款 */
        {"\xe6\x94\xb6\xe6\xac\xbe", T_PAYMENT}, /* 收款 */
        {"adjustment", T_ADJUST},
        {"\xe8\xb0\x83\xe6\x95\xb4", T_ADJUST}, /* 调整 */
};

enum enc { ENC_UTF8, ENC_GB18030, ENC_GBK };
static const char *const enc_name[] = {"UTF-8", "GB18030", "GBK"};

#define HNAME_MAX 40 /* bytes of a header name kept for messages */
#define QUOTE_MAX 40 /* bytes of a value quoted in a message */

struct field {
	const uint8_t *p; /* raw bytes (unescaped), in the input or rec scratch */
	size_t len;
	size_t line;        /* physical line where the field starts */
	const uint8_t *txt; /* UTF-8 text after decoding; NULL when undecodable */
	size_t txt_len;
};

struct rec {
	struct field f[TL_STMT_FIELDS_MAX];
	size_t n;     /* fields kept (<= TL_STMT_FIELDS_MAX) */
	size_t nall;  /* fields seen */
	size_t line;  /* first physical line */
	int hard;     /* fields unusable (unterminated quote, too long) */
	uint8_t *scr; /* unescaped quoted fields, TL_STMT_RECORD_MAX bytes */
	size_t scr_len;
};

struct sline {
	int64_t amount;
	uint32_t idx; /* row order, for a stable sort */
	uint32_t doc_off, memo_off;
	uint16_t doc_len, memo_len;
	int32_t date, due;
	uint8_t type;
};

struct imp {
	const struct tl_statement_opts *o;
	const char *name;
	struct tl_errlist *errs;
	unsigned exp;
	int have_exp, have_period, hinted;
	int32_t from, to, asof;
	int64_t opening;
	enum enc enc;
	iconv_t cd;

	const uint8_t *p, *end;
	size_t line;

	int have_header;
	size_t ncols;
	long col[NCOL];
	long memo_col[MEMO_COLS_MAX];
	size_t nmemo;
	char (*hname)[HNAME_MAX + 4]; /* TL_STMT_FIELDS_MAX names, clipped */

	struct rec *r;
	uint8_t *dec; /* decoded GB text of the current record */
	size_t dec_len, dec_cap;

	struct sline *lines;
	size_t nlines, lines_cap, rows;
	struct tl_buf str; /* doc and memo text */
	int64_t closing;
	int overflow;
};

/* Copies at most max bytes of UTF-8 text into out (max + 4 bytes), cut at
 * a character boundary with "…" appended when cut. */
static const char *clip(char *out, size_t max, const uint8_t *s, size_t len)
{
	size_t n = len;
	if (n > max) {
		n = max;
		while (n > 0 && (s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	if (n < len) {
		memcpy(out + n, "\xe2\x80\xa6", 3);
		n += 3;
	}
	out[n] = 0;
	return out;
}

/* A value quoted in a message. */
static const char *quote(char out[QUOTE_MAX + 4], const uint8_t *s, size_t len)
{
	return clip(out, QUOTE_MAX, s, len);
}

/* Reports a problem at line (0 = the file as a whole) and field (0-based;
 * < 0 = the line as a whole). */
static void TL_PRINTF(4, 5) ferr(struct imp *c, size_t line, long field, const char *fmt, ...)
{
	char prefix[TL_ERRLIST_MSG];
	va_list ap;
	if (line == 0)
		snprintf(prefix, sizeof prefix, "%s: ", c->name);
	else if (field < 0)
		snprintf(prefix, sizeof prefix, "%s:%zu: ", c->name, line);
	else if (c->have_header && (size_t)field < c->ncols && c->hname[field][0])
		snprintf(prefix, sizeof prefix, "%s:%zu:%ld (%s): ", c->name, line, field + 1,
		         c->hname[field]);
	else
		snprintf(prefix, sizeof prefix, "%s:%zu:%ld: ", c->name, line, field + 1);
	va_start(ap, fmt);
	errlist_vadd(c->errs, prefix, fmt, ap);
	va_end(ap);
}

/* Line breaks (CRLF, LF or a lone CR) in s[0..len). */
static size_t breaks(const uint8_t *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\n' || (s[i] == '\r' && (i + 1 == len || s[i + 1] != '\n')))
			n++;
	return n;
}

/* ----------------------------------------------------- CSV tokenizer */

static void rec_add(struct imp *c, const uint8_t *p, size_t len, size_t line)
{
	struct rec *r = c->r;
	if (r->n < TL_STMT_FIELDS_MAX)
		r->f[r->n++] = (struct field){.p = p, .len = len, .line = line};
	r->nall++;
}

/*
 * Reads one RFC 4180 record at c->p into c->r. Returns 0 at the end of the
 * input, 1 when a record was read. Problems are reported as found; a record
 * whose fields cannot be trusted gets r->hard set.
 */
static int csv_next(struct imp *c)
{
	struct rec *r = c->r;
	const uint8_t *start = c->p;
	int stray = 0;

	if (c->p >= c->end)
		return 0;
	r->n = r->nall = 0;
	r->line = c->line;
	r->hard = 0;
	r->scr_len = 0;
	for (;;) {
		size_t fline = c->line;
		long fi = (long)r->nall;
		if (c->p < c->end && *c->p == '"') {
			const uint8_t *s = ++c->p, *q;
			int esc = 0;
			for (;;) {
				q = memchr(c->p, '"', (size_t)(c->end - c->p));
				if (!q) {
					ferr(c, fline, fi,
					     "the quoted field is not closed: a '\"' is missing "
					     "before the end of the file");
					c->line += breaks(s, (size_t)(c->end - s));
					c->p = c->end;
					r->hard = 1;
					return 1;
				}
				if (q + 1 < c->end && q[1] == '"') {
					esc = 1;
					c->p = q + 2;
					continue;
				}
				break;
			}
			c->line += breaks(s, (size_t)(q - s));
			c->p = q + 1;
			if (!esc) {
				rec_add(c, s, (size_t)(q - s), fline);
			} else if ((size_t)(q - s) > TL_STMT_RECORD_MAX - r->scr_len) {
				r->hard = 1; /* reported below as a long record */
				rec_add(c, s, 0, fline);
			} else {
				uint8_t *o = r->scr + r->scr_len;
				size_t k = 0;
				for (const uint8_t *t = s; t < q; t++) {
					o[k++] = *t;
					if (*t == '"')
						t++;
				}
				r->scr_len += k;
				rec_add(c, o, k, fline);
			}
			if (c->p < c->end && *c->p != ',' && *c->p != '\r' && *c->p != '\n') {
				ferr(c, fline, fi,
				     "text after the closing quote; a quote inside a quoted field "
				     "is written twice (\"\")");
				while (c->p < c->end && *c->p != ',' && *c->p != '\r' &&
				       *c->p != '\n')
					c->p++;
			}
		} else {
			const uint8_t *s = c->p;
			while (c->p < c->end && *c->p != ',' && *c->p != '\r' && *c->p != '\n') {
				if (*c->p == '"' && !stray) {
					ferr(c, fline, fi,
					     "a '\"' inside an unquoted field; quote the whole "
					     "field and write the quote twice (\"\")");
					stray = 1;
				}
				c->p++;
			}
			rec_add(c, s, (size_t)(c->p - s), fline);
		}
		if (c->p >= c->end)
			break;
		if (*c->p == ',') {
			c->p++;
			continue;
		}
		if (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')
			c->p++;
		c->p++;
		c->line++;
		break;
	}
	if ((size_t)(c->p - start) > TL_STMT_RECORD_MAX) {
		ferr(c, r->line, -1, "the line is longer than %u bytes", TL_STMT_RECORD_MAX);
		r->hard = 1;
	} else if (r->nall > TL_STMT_FIELDS_MAX) {
		ferr(c, r->line, -1, "the line has %zu fields; at most %u are read", r->nall,
		     TL_STMT_FIELDS_MAX);
		r->hard = 1;
	}
	return 1;
}

/* ------------------------------------------------------ text decoding */

/* Offset of the first byte that is not valid UTF-8 (RFC 3629), or len. */
static size_t utf8_bad(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t b = s[i];
		size_t n;
		uint8_t lo = 0x80, hi = 0xbf;
		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf)
			n = 1;
		else if (b >= 0xe0 && b <= 0xef)
			n = 2, lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;
		else if (b >= 0xf0 && b <= 0xf4)
			n = 3, lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;
		else
			return i;
		if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
		i += n + 1;
	}
	return i;
}

/* Up to 4 bytes as "0xB7 0xA2". */
static void hexbytes(char out[20], const uint8_t *s, size_t len)
{
	size_t n = len < 4 ? len : 4, k = 0;
	out[0] = 0;
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(out + k, 20 - k, i ? " 0x%02X" : "0x%02X", s[i]);
}

/* Sets f->txt to the field's text in UTF-8, or reports where it is not
 * valid in the file's encoding (then f->txt stays NULL). */
static void decode(struct imp *c, struct field *f, long fi)
{
	size_t bad, i;
	char hex[20];
	f->txt = NULL;
	for (i = 0; i < f->len && f->p[i] < 0x80; i++)
		;
	if (i == f->len) {
		f->txt = f->p;
		f->txt_len = f->len;
		return;
	}
	if (c->enc == ENC_UTF8) {
		bad = utf8_bad(f->p, f->len);
		if (bad == f->len) {
			f->txt = f->p;
			f->txt_len = f->len;
			return;
		}
		hexbytes(hex, f->p + bad, f->len - bad > 1 ? 2 : 1);
		ferr(c, f->line + breaks(f->p, bad), fi,
		     "invalid UTF-8 (%s at byte %zu of the field)%s", hex, bad + 1,
		     c->hinted ? ""
		               : "; if the file is a GB18030 or GBK export, import it with "
		                 "that encoding");
		c->hinted = 1;
		return;
	}
	char *in = (char *)f->p, *out = (char *)c->dec + c->dec_len;
	size_t inleft = f->len, outleft = c->dec_cap - c->dec_len;
	iconv(c->cd, NULL, NULL, NULL, NULL);
	if (iconv(c->cd, &in, &inleft, &out, &outleft) == (size_t)-1) {
		int e = errno;
		bad = (size_t)((const uint8_t *)in - f->p);
		hexbytes(hex, f->p + bad, f->len - bad);
		if (e == E2BIG)
			ferr(c, f->line, fi, "the field is too long to decode");
		else
			ferr(c, f->line + breaks(f->p, bad), fi,
			     "%s byte sequence %s at byte %zu of the field is %s", enc_name[c->enc],
			     hex, bad + 1, e == EINVAL ? "incomplete" : "not valid");
		return;
	}
	f->txt = c->dec + c->dec_len;
	f->txt_len = (size_t)((uint8_t *)out - f->txt);
	c->dec_len += f->txt_len;
}

static void trim(const uint8_t **s, size_t *len)
{
	while (*len > 0 && ((*s)[0] == ' ' || (*s)[0] == '\t'))
		(*s)++, (*len)--;
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

/* Lowercases ASCII and reads ' ' and '-' as '_'; 0 when too long. */
static size_t normalise(char *out, size_t cap, const uint8_t *s, size_t len)
{
	if (len >= cap)
		return 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t b = s[i];
		if (b >= 'A' && b <= 'Z')
			b = (uint8_t)(b - 'A' + 'a');
		else if (b == ' ' || b == '-')
			b = '_';
		out[i] = (char)b;
	}
	out[len] = 0;
	return len;
}

/* ------------------------------------------------------------- header */

static void header(struct imp *c)
{
	struct rec *r = c->r;
	c->ncols = r->n;
	c->have_header = 1; /* messages about the header name its cells */
	for (size_t i = 0; i < r->n; i++)
		c->hname[i][0] = 0;
	for (int k = 0; k < NCOL; k++)
		c->col[k] = -1;
	c->nmemo = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct field *f = &r->f[i];
		const uint8_t *t;
		size_t tl, k;
		char norm[64];
		decode(c, f, (long)i);
		if (!f->txt)
			continue;
		t = f->txt;
		tl = f->txt_len;
		trim(&t, &tl);
		clip(c->hname[i], HNAME_MAX, t, tl);
		if (!normalise(norm, sizeof norm, t, tl))
			continue;
		for (k = 0; k < sizeof aliases / sizeof aliases[0]; k++)
			if (strcmp(norm, aliases[k].name) == 0)
				break;
		if (k == sizeof aliases / sizeof aliases[0])
			continue; /* other columns are ignored */
		enum col col = aliases[k].col;
		if (col == COL_MEMO) {
			if (c->nmemo == MEMO_COLS_MAX)
				ferr(c, f->line, (long)i, "more than %d memo columns",
				     MEMO_COLS_MAX);
			else
				c->memo_col[c->nmemo++] = (long)i;
			continue;
		}
		if (c->col[col] >= 0) {
			ferr(c, f->line, (long)i, "column '%s' appears twice (also column %ld)",
			     col_name[col], c->col[col] + 1);
			continue;
		}
		c->col[col] = (long)i;
	}
	for (int k = 0; k <= COL_AMOUNT; k++)
		if (c->col[k] < 0)
			ferr(c, r->line, -1,
			     "missing column '%s' (or %s); columns are named in the first line, "
			     "see docs/statement-csv.md",
			     col_name[k], col_hint[k]);
}

/* --------------------------------------------------------------- rows */

/* Trimmed text of column k and the line it starts on, or NULL (absent
 * column, missing field, or not decodable: already reported). */
static const uint8_t *cell(struct imp *c, long k, size_t *len, size_t *line)
{
	struct rec *r = c->r;
	if (k < 0 || (size_t)k >= r->n || !r->f[k].txt)
		return NULL;
	const uint8_t *t = r->f[k].txt;
	*len = r->f[k].txt_len;
	*line = r->f[k].line;
	trim(&t, len);
	return t;
}

/* Control characters (other than those allowed) at offset, or -1. */
static long control_at(const uint8_t *s, size_t len, int allow_breaks)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t b = s[i];
		if (b == 0x7f ||
		    (b < 0x20 && !(allow_breaks && (b == '\t' || b == '\n' || b == '\r'))))
			return (long)i;
	}
	return -1;
}

static int date_cell(struct imp *c, long k, const char *what, int32_t *days)
{
	char q[QUOTE_MAX + 4];
	size_t len = 0, line = 0;
	const uint8_t *t = cell(c, k, &len, &line);
	if (!t)
		return -1;
	if (len == 0) {
		ferr(c, line, k, "the %s is empty", what);
		return -1;
	}
	switch (date_parse((const char *)t, len, days)) {
	case DATE_OK:
		return 0;
	case DATE_CAL:
		ferr(c, line, k, "'%s' is not a calendar date", quote(q, t, len));
		return -1;
	default:
		ferr(c, line, k,
		     "'%s' is not a date (write YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, YYYYMMDD "
		     "or 2026年11月3日)",
		     quote(q, t, len));
		return -1;
	}
}

/* lead: "" for a cell, "opening balance " for the caller's value. */
static void amount_error(struct imp *c, size_t line, long k, const char *lead, enum amt_err e,
                         const uint8_t *t, size_t len)
{
	char q[QUOTE_MAX + 4];
	quote(q, t, len);
	switch (e) {
	case AMT_EMPTY:
		ferr(c, line, k, "the %s is empty", *lead ? "opening balance" : "amount");
		break;
	case AMT_SPACE:
		ferr(c, line, k, "%s'%s' contains a space (write 1234.50 or 1,234.50)", lead, q);
		break;
	case AMT_EXPNOT:
		ferr(c, line, k, "%s'%s' uses exponent notation; write the number in full", lead,
		     q);
		break;
	case AMT_GROUP:
		ferr(c, line, k,
		     "%s'%s' has a misplaced thousands separator (groups of 3: 1,234.50)", lead, q);
		break;
	case AMT_POINT:
		ferr(c, line, k, "%s'%s' needs digits before and after the decimal point", lead, q);
		break;
	case AMT_DECIMALS:
		ferr(c, line, k, "%s'%s' has more decimals than %s allows (%u)", lead, q,
		     c->o->currency, c->exp);
		break;
	case AMT_PAREN:
		ferr(c, line, k, "%s'%s' has an unbalanced parenthesis", lead, q);
		break;
	case AMT_RANGE:
		ferr(c, line, k, "%s'%s' is too large", lead, q);
		break;
	default:
		ferr(c, line, k,
		     "%s'%s' is not an amount (digits, one '.', ',' between groups of three, a "
		     "leading '-' or parentheses for negatives)",
		     lead, q);
		break;
	}
}

static int text_cell(struct imp *c, long k, const char *what, size_t max, int allow_breaks,
                     const uint8_t **t, size_t *len)
{
	size_t line = 0;
	long at;
	*t = cell(c, k, len, &line);
	if (!*t)
		return -1;
	if (*len > max) {
		ferr(c, line, k, "the %s is %zu bytes long; at most %zu are allowed", what, *len,
		     max);
		return -1;
	}
	if ((at = control_at(*t, *len, allow_breaks)) >= 0) {
		ferr(c, line + breaks(*t, (size_t)at), k,
		     "the %s contains control character 0x%02X", what, (*t)[at]);
		return -1;
	}
	return 0;
}

static int lines_push(struct imp *c, const struct sline *l)
{
	if (c->nlines == c->lines_cap) {
		size_t cap = c->lines_cap ? c->lines_cap * 2 : 256;
		if (cap > TL_STMT_ROWS_MAX)
			cap = TL_STMT_ROWS_MAX;
		struct sline *n = realloc(c->lines, cap * sizeof *n);
		if (!n)
			return TL_ENOMEM;
		c->lines = n;
		c->lines_cap = cap;
	}
	c->lines[c->nlines++] = *l;
	return 0;
}

static int row(struct imp *c)
{
	struct rec *r = c->r;
	struct sline l = {.due = NO_DATE};
	const uint8_t *t;
	size_t len, i, line;
	int ok = 1, have_type = 0, rc;
	long k;
	char q[QUOTE_MAX + 4];

	if (r->nall > c->ncols) {
		for (i = c->ncols; i < r->n; i++)
			if (r->f[i].len > 0)
				break;
		if (i < r->n) {
			ferr(c, r->f[i].line, (long)i,
			     "extra field: the header has %zu columns, this line has %zu", c->ncols,
			     r->nall);
			ok = 0;
		}
	} else if (r->nall < c->ncols) {
		ferr(c, r->f[r->n - 1].line, (long)r->nall,
		     "missing field: this line has %zu fields, the header has %zu", r->nall,
		     c->ncols);
		ok = 0;
	}
	for (i = 0; i < r->n; i++) {
		decode(c, &r->f[i], (long)i);
		if (!r->f[i].txt)
			ok = 0;
	}

	if ((k = c->col[COL_DATE]) >= 0 && (size_t)k < r->n) {
		if (date_cell(c, k, "date", &l.date) != 0) {
			ok = 0;
		} else if (c->have_period && (l.date < c->from || l.date > c->to)) {
			char d[11], f[11], to[11];
			civil_from_days(l.date, d);
			civil_from_days(c->from, f);
			civil_from_days(c->to, to);
			ferr(c, r->f[k].line, k, "%s is outside the statement period %s to %s", d,
			     f, to);
			ok = 0;
		}
	}
	if ((k = c->col[COL_TYPE]) >= 0 && (t = cell(c, k, &len, &line))) {
		char norm[64];
		size_t j = sizeof type_aliases / sizeof type_aliases[0];
		if (normalise(norm, sizeof norm, t, len))
			for (j = 0; j < sizeof type_aliases / sizeof type_aliases[0]; j++)
				if (strcmp(norm, type_aliases[j].name) == 0)
					break;
		if (len == 0) {
			ferr(c, line, k, "the document type is empty");
			ok = 0;
		} else if (j == sizeof type_aliases / sizeof type_aliases[0]) {
			ferr(c, line, k,
			     "'%s' is not a document type (invoice/发票, credit_note/贷项通知单/"
			     "红字发票, debit_note/借项通知单, payment/付款/收款, adjustment/调整)",
			     quote(q, t, len));
			ok = 0;
		} else {
			l.type = (uint8_t)type_aliases[j].t;
			have_type = 1;
		}
	} else {
		ok = 0;
	}
	if ((k = c->col[COL_DOC]) >= 0 && (size_t)k < r->n) {
		if (text_cell(c, k, "document number", TL_STMT_DOC_MAX, 0, &t, &len) != 0) {
			ok = 0;
		} else if (len == 0) {
			ferr(c, r->f[k].line, k, "the document number is empty");
			ok = 0;
		} else if (ok) {
			l.doc_off = (uint32_t)c->str.len;
			l.doc_len = (uint16_t)len;
			if ((rc = tl_buf_add(&c->str, t, len)) != 0)
				return rc;
		}
	}
	if ((k = c->col[COL_AMOUNT]) >= 0 && (t = cell(c, k, &len, &line))) {
		enum amt_err e = c->have_exp ? amount_parse((const char *)t, len, c->exp, &l.amount)
		                             : AMT_OK;
		if (e != AMT_OK) {
			amount_error(c, line, k, "", e, t, len);
			ok = 0;
		} else if (!c->have_exp || !have_type) {
			ok = 0;
		} else if (c->o->flags & TL_STMT_SIGNED) {
			int pos = l.type == T_INVOICE || l.type == T_DEBIT;
			int negt = l.type == T_CREDIT || l.type == T_PAYMENT;
			if ((pos && l.amount < 0) || (negt && l.amount > 0)) {
				ferr(c, line, k,
				     "'%s' on a %s line: with signed amounts, invoices and debit "
				     "notes are positive, credit notes and payments negative",
				     quote(q, t, len), type_name[l.type]);
				ok = 0;
			}
		} else if (l.amount < 0 && l.type != T_ADJUST) {
			ferr(c, line, k,
			     "'%s' is negative on a %s line: write amounts as positive numbers "
			     "(the type gives the sign), or import with signed amounts",
			     quote(q, t, len), type_name[l.type]);
			ok = 0;
		} else if (l.type == T_CREDIT || l.type == T_PAYMENT) {
			l.amount = -l.amount;
		}
		if (ok && __builtin_add_overflow(c->closing, l.amount, &c->closing)) {
			ferr(c, line, k, "the running balance overflows at this line");
			c->overflow = 1;
			ok = 0;
		}
	} else {
		ok = 0;
	}
	if ((k = c->col[COL_DUE]) >= 0 && (t = cell(c, k, &len, &line)) && len > 0) {
		if (date_cell(c, k, "due date", &l.due) != 0)
			ok = 0;
	}
	l.memo_off = (uint32_t)c->str.len;
	for (i = 0; i < c->nmemo; i++) {
		k = c->memo_col[i];
		if ((size_t)k >= r->n)
			continue;
		if (text_cell(c, k, "memo", TL_STMT_MEMO_MAX, 1, &t, &len) != 0) {
			ok = 0;
			continue;
		}
		if (len == 0 || !ok)
			continue;
		size_t have = c->str.len - l.memo_off;
		if (have + (have ? 2 : 0) + len > TL_STMT_MEMO_MAX) {
			ferr(c, r->f[k].line, k, "the memo columns together exceed %u bytes",
			     TL_STMT_MEMO_MAX);
			ok = 0;
			continue;
		}
		if ((have > 0 && (rc = tl_buf_add(&c->str, "; ", 2)) != 0) ||
		    (rc = tl_buf_add(&c->str, t, len)) != 0)
			return rc;
	}
	l.memo_len = (uint16_t)(c->str.len - l.memo_off);
	if (!ok)
		return 0;
	l.idx = (uint32_t)c->nlines;
	return lines_push(c, &l);
}

/* Whether the record is a blank line or a row of empty fields (Excel). */
static int blank(const struct rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->f[i].len > 0)
			return 0;
	return 1;
}

/* --------------------------------------------------- options and aging */

static int opt_date(struct imp *c, const char *v, const char *what, int32_t *days)
{
	char q[QUOTE_MAX + 4];
	if (!v || !*v) {
		ferr(c, 0, -1, "the %s is not given", what);
		return -1;
	}
	size_t len = strnlen(v, 64);
	enum date_err e = date_parse(v, len, days);
	if (e == DATE_OK)
		return 0;
	ferr(c, 0, -1, "the %s '%s' is not a %s", what, quote(q, (const uint8_t *)v, len),
	     e == DATE_CAL ? "calendar date" : "date (YYYY-MM-DD)");
	return -1;
}

static void options(struct imp *c)
{
	const struct tl_statement_opts *o = c->o;
	int dates = 1;
	size_t len;
	char q[QUOTE_MAX + 4];

	len = o->id ? strnlen(o->id, TL_STMT_ID_MAX + 1) : 0;
	if (len == 0)
		ferr(c, 0, -1, "the statement id is not given");
	else if (len > TL_STMT_ID_MAX)
		ferr(c, 0, -1, "the statement id is longer than %u bytes", TL_STMT_ID_MAX);
	else if (utf8_bad((const uint8_t *)o->id, len) != len ||
	         control_at((const uint8_t *)o->id, len, 0) >= 0)
		ferr(c, 0, -1, "the statement id is not printable UTF-8 text");
	if (o->supersedes) {
		uint8_t h[32];
		len = strnlen(o->supersedes, 65);
		int lower = 1;
		for (size_t i = 0; i < len; i++)
			if (o->supersedes[i] >= 'A' && o->supersedes[i] <= 'F')
				lower = 0;
		if (len != 64 || !lower || tl_hex_decode(h, 32, o->supersedes, len) != 0)
			ferr(c, 0, -1, "supersedes must be a leaf hash of 64 lowercase hex digits");
	}
	if (!o->currency || !*o->currency) {
		ferr(c, 0, -1, "the currency is not given");
	} else if (tl_currency_exponent(o->currency, &c->exp) != 0) {
		len = strnlen(o->currency, 16);
		ferr(c, 0, -1,
		     "currency '%s' is not a known ISO 4217 code (uppercase, e.g. CNY, USD, JPY)",
		     quote(q, (const uint8_t *)o->currency, len));
	} else {
		c->have_exp = 1;
	}
	dates &= opt_date(c, o->from, "period start", &c->from) == 0;
	dates &= opt_date(c, o->to, "period end", &c->to) == 0;
	dates &= opt_date(c, o->date, "statement date", &c->asof) == 0;
	if (dates && c->from > c->to)
		ferr(c, 0, -1, "the period starts after it ends");
	else if (dates && c->asof < c->to)
		ferr(c, 0, -1, "the statement date is before the end of the period");
	else if (dates)
		c->have_period = 1;
	c->opening = 0;
	if (o->opening && c->have_exp) {
		len = strnlen(o->opening, 65);
		enum amt_err e =
		        len > 64 ? AMT_RANGE : amount_parse(o->opening, len, c->exp, &c->opening);
		if (e != AMT_OK)
			amount_error(c, 0, -1, "opening balance ", e, (const uint8_t *)o->opening,
			             len);
	}
	c->closing = c->opening;
}

struct open_item {
	int64_t amt;
	int32_t key, date, due;
	uint32_t idx;
};

static int open_cmp(const void *a, const void *b)
{
	const struct open_item *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int line_cmp(const void *a, const void *b)
{
	const struct sline *x = a, *y = b;
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Aging (docs/statement-csv.md): negative items are set against positive
 * ones oldest first (by due date, else document date); what stays open is
 * bucketed by days past due at the statement date.
 */
static int aging(struct imp *c, int64_t b[5])
{
	struct open_item *it = malloc((c->nlines + 1) * sizeof *it);
	uint64_t credit = 0;
	size_t n = 0;
	memset(b, 0, 5 * sizeof b[0]);
	if (!it)
		return TL_ENOMEM;
	if (c->opening > 0)
		it[n++] = (struct open_item){c->opening, c->from, c->from, c->from, 0};
	else
		credit = (uint64_t)0 - (uint64_t)c->opening;
	for (size_t i = 0; i < c->nlines; i++) {
		const struct sline *l = &c->lines[i];
		if (l->amount > 0) {
			int32_t key = l->due != NO_DATE ? l->due : l->date;
			it[n++] = (struct open_item){l->amount, key, l->date, l->due, l->idx + 1};
		} else if (__builtin_add_overflow(credit, (uint64_t)0 - (uint64_t)l->amount,
		                                  &credit)) {
			free(it);
			return TL_ERANGE;
		}
	}
	qsort(it, n, sizeof *it, open_cmp);
	for (size_t i = 0; i < n; i++) {
		uint64_t a = (uint64_t)it[i].amt;
		if (credit >= a) {
			credit -= a;
			continue;
		}
		a -= credit;
		credit = 0;
		int64_t days = it[i].due == NO_DATE ? 0 : (int64_t)c->asof - it[i].due;
		int k = days <= 0 ? 0 : days <= 30 ? 1 : days <= 60 ? 2 : days <= 90 ? 3 : 4;
		b[k] += (int64_t)a; /* the sum is at most the closing balance */
	}
	free(it);
	return 0;
}

/* ------------------------------------------------------------- output */

static int put(json_t *o, const char *k, json_t *v)
{
	return v && json_object_set_new(o, k, v) == 0 ? 0 : -1;
}

static json_t *date_json(int32_t days)
{
	char d[11];
	civil_from_days(days, d);
	return json_string(d);
}

static int build(struct imp *c, json_t **out)
{
	json_t *st = json_object(), *lines = json_array(), *period = json_object(),
	       *ag = json_object();
	int64_t b[5];
	int rc = TL_ENOMEM;

	if (!st || !lines || !period || !ag)
		goto fail;
	if ((rc = aging(c, b)) != 0) {
		if (rc == TL_ERANGE) {
			ferr(c, 0, -1, "the amounts are too large to total");
			rc = TL_EFORMAT;
		}
		goto fail;
	}
	rc = TL_ENOMEM;
	for (size_t i = 0; i < c->nlines; i++) {
		const struct sline *l = &c->lines[i];
		json_t *jl = json_object();
		if (!jl || json_array_append_new(lines, jl) != 0)
			goto fail;
		if (put(jl, "date", date_json(l->date)) ||
		    put(jl, "type", json_string(type_name[l->type])) ||
		    put(jl, "doc",
		        json_stringn((const char *)c->str.data + l->doc_off, l->doc_len)) ||
		    put(jl, "amount", json_integer(l->amount)))
			goto fail;
		if (l->due != NO_DATE && put(jl, "due", date_json(l->due)))
			goto fail;
		if (l->memo_len &&
		    put(jl, "memo",
		        json_stringn((const char *)c->str.data + l->memo_off, l->memo_len)))
			goto fail;
	}
	if (put(period, "from", date_json(c->from)) || put(period, "to", date_json(c->to)))
		goto fail;
	if (put(ag, "current", json_integer(b[0])) || put(ag, "d1_30", json_integer(b[1])) ||
	    put(ag, "d31_60", json_integer(b[2])) || put(ag, "d61_90", json_integer(b[3])) ||
	    put(ag, "d90_plus", json_integer(b[4])))
		goto fail;
	if (put(st, "id", json_string(c->o->id)) ||
	    put(st, "version", json_integer(c->o->version ? c->o->version : 1)))
		goto fail;
	if (c->o->supersedes && put(st, "supersedes", json_string(c->o->supersedes)))
		goto fail;
	if (put(st, "date", date_json(c->asof)))
		goto fail;
	rc = put(st, "period", period);
	period = NULL;
	if (rc || put(st, "currency", json_string(c->o->currency)) ||
	    put(st, "opening", json_integer(c->opening)))
		goto fail_nomem;
	rc = put(st, "lines", lines);
	lines = NULL;
	if (rc || put(st, "closing", json_integer(c->closing)))
		goto fail_nomem;
	rc = put(st, "aging", ag);
	ag = NULL;
	if (rc)
		goto fail_nomem;
	*out = st;
	return 0;
fail_nomem:
	rc = TL_ENOMEM;
fail:
	json_decref(st);
	json_decref(lines);
	json_decref(period);
	json_decref(ag);
	return rc;
}

/* ----------------------------------------------------------- driver */

static int encoding(struct imp *c)
{
	const char *e = c->o->encoding;
	if (!e || !*e || strcasecmp(e, "utf-8") == 0 || strcasecmp(e, "utf8") == 0)
		c->enc = ENC_UTF8;
	else if (strcasecmp(e, "gb18030") == 0)
		c->enc = ENC_GB18030;
	else if (strcasecmp(e, "gbk") == 0)
		c->enc = ENC_GBK;
	else {
		char q[QUOTE_MAX + 4];
		ferr(c, 0, -1, "encoding '%s' is not supported (utf-8, gb18030 or gbk)",
		     quote(q, (const uint8_t *)e, strnlen(e, 32)));
		return TL_EFORMAT;
	}
	if (c->enc != ENC_UTF8) {
		c->cd = iconv_open("UTF-8", enc_name[c->enc]);
		if (c->cd == (iconv_t)-1) {
			ferr(c, 0, -1, "this system's iconv cannot decode %s", enc_name[c->enc]);
			return TL_EFORMAT;
		}
	}
	return 0;
}

/* Strips a byte order mark, refusing one that contradicts the encoding. */
static int bom(struct imp *c)
{
	size_t len = (size_t)(c->end - c->p);
	if (len >= 2 &&
	    ((c->p[0] == 0xff && c->p[1] == 0xfe) || (c->p[0] == 0xfe && c->p[1] == 0xff))) {
		ferr(c, 0, -1, "the file is UTF-16; export it as UTF-8 or GB18030");
		return TL_EFORMAT;
	}
	if (len >= 3 && memcmp(c->p, "\xef\xbb\xbf", 3) == 0) {
		if (c->enc != ENC_UTF8) {
			ferr(c, 0, -1,
			     "the file starts with a UTF-8 byte order mark but %s was asked for; "
			     "import it as utf-8",
			     enc_name[c->enc]);
			return TL_EFORMAT;
		}
		c->p += 3;
	} else if (len >= 4 && c->enc == ENC_GB18030 && memcmp(c->p, "\x84\x31\x95\x33", 4) == 0) {
		c->p += 4;
	}
	return 0;
}

int tl_statement_from_csv_mem(const uint8_t *data, size_t len, const struct tl_statement_opts *o,
                              json_t **out, struct tl_errlist *errs)
{
	struct imp c = {.o = o, .errs = errs, .cd = (iconv_t)-1, .line = 1};
	int rc;

	if (!o || !out || !errs || (!data && len))
		return TL_EINVAL;
	*out = NULL;
	tl_errlist_init(errs);
	c.name = o->name ? o->name : "statement.csv";
	if (len > TL_STMT_FILE_MAX) {
		ferr(&c, 0, -1, "the file is %zu bytes; the limit is %zu MiB", len,
		     TL_STMT_FILE_MAX >> 20);
		return TL_ETOOBIG;
	}
	tl_buf_init(&c.str, 2 * TL_STMT_FILE_MAX);
	options(&c);
	if ((rc = encoding(&c)) != 0)
		goto done;
	c.p = data ? data : (const uint8_t *)"";
	c.end = c.p + len;
	if ((rc = bom(&c)) != 0)
		goto done;
	rc = TL_ENOMEM;
	c.r = malloc(sizeof *c.r);
	c.hname = malloc(TL_STMT_FIELDS_MAX * sizeof *c.hname);
	c.dec_cap = 2 * (size_t)TL_STMT_RECORD_MAX + 16;
	c.dec = malloc(c.dec_cap);
	if (!c.r || !c.hname || !c.dec || !(c.r->scr = malloc(TL_STMT_RECORD_MAX)))
		goto done;
	while (csv_next(&c)) {
		c.dec_len = 0;
		if (c.r->hard || blank(c.r))
			continue;
		if (!c.have_header) {
			header(&c);
			continue;
		}
		if (++c.rows > TL_STMT_ROWS_MAX) {
			ferr(&c, c.r->line, -1, "more than %u rows; split the statement",
			     TL_STMT_ROWS_MAX);
			break;
		}
		if ((rc = row(&c)) != 0)
			goto done;
		if (c.overflow)
			break;
	}
	if (!c.have_header && errs->total == 0)
		ferr(&c, 0, -1, "no header line: the file is empty");
	rc = TL_EFORMAT;
	if (errs->total > 0)
		goto done;
	if (c.nlines > 1)
		qsort(c.lines, c.nlines, sizeof *c.lines, line_cmp);
	rc = build(&c, out);
done:
	if (c.r)
		free(c.r->scr);
	free(c.r);
	free(c.hname);
	free(c.dec);
	free(c.lines);
	tl_buf_release(&c.str);
	if (c.cd != (iconv_t)-1)
		iconv_close(c.cd);
	return rc;
}

int tl_statement_from_csv(const char *path, const struct tl_statement_opts *o, json_t **out,
                          struct tl_errlist *errs)
{
	uint8_t *d = NULL;
	size_t len = 0, cap = 0;
	FILE *fp;
	int rc;
	const char *name;

	if (!path || !o || !out || !errs)
		return TL_EINVAL;
	*out = NULL;
	tl_errlist_init(errs);
	name = o->name ? o->name : path;
	if (!(fp = fopen(path, "rb"))) {
		tl_errlist_add(errs, "%s: cannot open: %s", name, strerror(errno));
		return TL_EIO;
	}
	/* Reads at most one byte past the limit: enough to know it is over. */
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 65536;
			uint8_t *nd;
			if (cap > TL_STMT_FILE_MAX)
				break;
			if (ncap > TL_STMT_FILE_MAX + 1)
				ncap = TL_STMT_FILE_MAX + 1;
			if (!(nd = realloc(d, ncap))) {
				rc = TL_ENOMEM;
				goto done;
			}
			d = nd;
			cap = ncap;
		}
		size_t got = fread(d + len, 1, cap - len, fp);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		tl_errlist_add(errs, "%s: cannot read: %s", name, strerror(errno));
		rc = TL_EIO;
	} else if (len > TL_STMT_FILE_MAX) {
		tl_errlist_add(errs, "%s: the file is larger than %zu MiB", name,
		               TL_STMT_FILE_MAX >> 20);
		rc = TL_ETOOBIG;
	} else {
		struct tl_statement_opts o2 = *o;
		o2.name = name;
		rc = tl_statement_from_csv_mem(d, len, &o2, out, errs);
	}
done:
	fclose(fp);
	free(d);
	return rc;
}

/* ------------------------------------------------------------ adjust */

/* A string member of o, or NULL. */
static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int jdate(struct imp *c, const json_t *o, const char *k, const char *what, int32_t *days)
{
	const char *v = jstr(o, k);
	if (!v || date_parse(v, strlen(v), days) != DATE_OK) {
		ferr(c, 0, -1, "the previous version's %s is missing or not a date", what);
		return -1;
	}
	return 0;
}

/* Pushes one line with its doc and memo copied into c->str. */
static int adj_push(struct imp *c, struct sline *l, const char *doc, size_t doc_len,
                    const char *memo, size_t memo_len)
{
	int rc;
	l->doc_off = (uint32_t)c->str.len;
	l->doc_len = (uint16_t)doc_len;
	if ((rc = tl_buf_add(&c->str, doc, doc_len)) != 0)
		return rc;
	l->memo_off = (uint32_t)c->str.len;
	l->memo_len = (uint16_t)memo_len;
	if (memo_len && (rc = tl_buf_add(&c->str, memo, memo_len)) != 0)
		return rc;
	l->idx = (uint32_t)c->nlines;
	return lines_push(c, l);
}

static int adj_type(const char *s)
{
	char norm[64];
	if (!s || !normalise(norm, sizeof norm, (const uint8_t *)s, strlen(s)))
		return -1;
	for (size_t j = 0; j < sizeof type_aliases / sizeof type_aliases[0]; j++)
		if (strcmp(norm, type_aliases[j].name) == 0)
			return (int)type_aliases[j].t;
	return -1;
}

/* The previous version's lines, as stored (signed amounts). */
static int adj_prev_lines(struct imp *c, const json_t *lines)
{
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l)
	{
		struct sline sl = {.due = NO_DATE};
		const char *doc = jstr(l, "doc"), *memo = jstr(l, "memo");
		json_t *amt = json_object_get(l, "amount");
		const char *d = jstr(l, "date"), *due = jstr(l, "due");
		int t = adj_type(jstr(l, "type")), rc;
		if (t < 0 || !doc || !*doc || strlen(doc) > TL_STMT_DOC_MAX ||
		    !json_is_integer(amt) || !d || date_parse(d, strlen(d), &sl.date) != DATE_OK ||
		    (due && date_parse(due, strlen(due), &sl.due) != DATE_OK) ||
		    (memo && strlen(memo) > TL_STMT_MEMO_MAX)) {
			ferr(c, 0, -1, "line %zu of the previous version is not a valid line",
			     i + 1);
			continue;
		}
		sl.type = (uint8_t)t;
		sl.amount = (int64_t)json_integer_value(amt);
		if (__builtin_add_overflow(c->closing, sl.amount, &c->closing)) {
			ferr(c, 0, -1, "the previous version's amounts are too large to total");
			return TL_EFORMAT;
		}
		if ((rc = adj_push(c, &sl, doc, strlen(doc), memo, memo ? strlen(memo) : 0)) != 0)
			return rc;
	}
	return 0;
}

/* The added lines: amounts as in the CSV (positive; the type gives the
 * sign, adjustments either sign). */
static int adj_new_lines(struct imp *c, const struct tl_adjust_line *add, size_t n, int32_t *latest)
{
	char q[QUOTE_MAX + 4];
	for (size_t i = 0; i < n; i++) {
		const struct tl_adjust_line *a = &add[i];
		struct sline sl = {.due = NO_DATE, .date = c->to};
		size_t dl = a->doc ? strlen(a->doc) : 0, ml = a->memo ? strlen(a->memo) : 0;
		int t = adj_type(a->type), ok = 1, rc;
		enum amt_err e;

		if (t < 0) {
			ferr(c, 0, -1,
			     "added line %zu: '%s' is not a document type (invoice, credit_note, "
			     "debit_note, payment, adjustment)",
			     i + 1,
			     quote(q, (const uint8_t *)(a->type ? a->type : ""),
			           a->type ? strnlen(a->type, 64) : 0));
			ok = 0;
		}
		if (dl == 0 || dl > TL_STMT_DOC_MAX ||
		    utf8_bad((const uint8_t *)a->doc, dl) != dl ||
		    control_at((const uint8_t *)a->doc, dl, 0) >= 0) {
			ferr(c, 0, -1,
			     "added line %zu: the document number is empty, longer than %u bytes "
			     "or not printable UTF-8",
			     i + 1, TL_STMT_DOC_MAX);
			ok = 0;
		}
		if (ml > TL_STMT_MEMO_MAX || (ml && utf8_bad((const uint8_t *)a->memo, ml) != ml)) {
			ferr(c, 0, -1,
			     "added line %zu: the memo is longer than %u bytes or not UTF-8", i + 1,
			     TL_STMT_MEMO_MAX);
			ok = 0;
		}
		e = a->amount && *a->amount
		            ? amount_parse(a->amount, strnlen(a->amount, 65), c->exp, &sl.amount)
		            : AMT_EMPTY;
		if (e == AMT_EMPTY) {
			ferr(c, 0, -1, "added line %zu: the amount is missing", i + 1);
			ok = 0;
		} else if (e != AMT_OK) {
			char lead[48];
			snprintf(lead, sizeof lead, "added line %zu: amount ", i + 1);
			amount_error(c, 0, -1, lead, e,
			             (const uint8_t *)(a->amount ? a->amount : ""),
			             a->amount ? strnlen(a->amount, 65) : 0);
			ok = 0;
		} else if (sl.amount < 0 && t != T_ADJUST) {
			ferr(c, 0, -1,
			     "added line %zu: write the amount as a positive number (the type "
			     "gives the sign; only adjustments take a sign)",
			     i + 1);
			ok = 0;
		} else if (t == T_CREDIT || t == T_PAYMENT) {
			sl.amount = -sl.amount;
		}
		if (a->date && date_parse(a->date, strnlen(a->date, 64), &sl.date) != DATE_OK) {
			ferr(c, 0, -1, "added line %zu: the date '%s' is not a calendar date",
			     i + 1, quote(q, (const uint8_t *)a->date, strnlen(a->date, 64)));
			ok = 0;
		} else if (sl.date < c->from) {
			ferr(c, 0, -1, "added line %zu: the date is before the statement period",
			     i + 1);
			ok = 0;
		}
		if (!ok)
			continue;
		sl.type = (uint8_t)t;
		if (sl.date > *latest)
			*latest = sl.date;
		if (__builtin_add_overflow(c->closing, sl.amount, &c->closing)) {
			ferr(c, 0, -1, "added line %zu: the running balance overflows", i + 1);
			return TL_EFORMAT;
		}
		if ((rc = adj_push(c, &sl, a->doc, dl, a->memo, ml)) != 0)
			return rc;
	}
	return 0;
}

int tl_statement_adjust(const json_t *prev, const char *prev_leaf, const struct tl_adjust_line *add,
                        size_t n, const char *date, json_t **out, struct tl_errlist *errs)
{
	struct imp c = {.errs = errs, .cd = (iconv_t)-1, .line = 1, .name = "adjust"};
	struct tl_statement_opts o = {0};
	const json_t *period = json_object_get(prev, "period");
	json_t *ver = json_object_get(prev, "version"), *op = json_object_get(prev, "opening");
	int32_t latest, asof;
	int rc = TL_EFORMAT;

	if (!prev || !prev_leaf || (!add && n) || !out || !errs)
		return TL_EINVAL;
	*out = NULL;
	tl_errlist_init(errs);
	c.o = &o;
	o.id = jstr(prev, "id");
	o.currency = jstr(prev, "currency");
	o.supersedes = prev_leaf;
	if (!o.id || !o.currency || !json_is_integer(ver) || json_integer_value(ver) < 1 ||
	    json_integer_value(ver) >= UINT32_MAX || !json_is_integer(op) ||
	    tl_currency_exponent(o.currency, &c.exp) != 0) {
		tl_errlist_add(errs,
		               "the previous version is not a statement this tool can adjust");
		return TL_EFORMAT;
	}
	o.version = (unsigned)json_integer_value(ver) + 1;
	c.have_exp = 1;
	if (jdate(&c, period, "from", "period start", &c.from) != 0 ||
	    jdate(&c, period, "to", "period end", &c.to) != 0 ||
	    jdate(&c, prev, "date", "statement date", &c.asof) != 0)
		return TL_EFORMAT;
	if (n == 0) {
		tl_errlist_add(errs, "no line to add: give at least one --line");
		return TL_EFORMAT;
	}
	c.opening = c.closing = (int64_t)json_integer_value(op);
	tl_buf_init(&c.str, 2 * TL_STMT_FILE_MAX);
	latest = c.to;
	if ((rc = adj_prev_lines(&c, json_object_get(prev, "lines"))) != 0 ||
	    (rc = adj_new_lines(&c, add, n, &latest)) != 0)
		goto done;
	asof = c.asof > latest ? c.asof : latest;
	if (date) {
		if (date_parse(date, strnlen(date, 64), &asof) != DATE_OK) {
			ferr(&c, 0, -1, "the statement date '%s' is not a calendar date", date);
		} else if (asof < latest) {
			ferr(&c, 0, -1, "the statement date is before the last line's date");
		}
	}
	rc = TL_EFORMAT;
	if (errs->total > 0)
		goto done;
	/* The period grows to the latest line; the as-of date follows it. */
	c.to = latest;
	c.asof = asof;
	if (c.nlines > 1)
		qsort(c.lines, c.nlines, sizeof *c.lines, line_cmp);
	rc = build(&c, out);
done:
	free(c.lines);
	tl_buf_release(&c.str);
	return rc;
}
