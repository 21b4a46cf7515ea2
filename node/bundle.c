/* bundle.c — streaming writer of tally-bundle/v1 (DESIGN §3). */
#include "tl_node.h"

#include <errno.h>
#include <string.h>

struct wctx {
	FILE *fp;
	int first;
	struct tl_buf b64;
};

/* JSON string writer for what bundles hold: base64, origins, vkeys and
 * notes. UTF-8 (the note's U+2014 dash) passes through as JSON allows. */
static int put_str(FILE *fp, const char *s, size_t len)
{
	fputc('"', fp);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			fprintf(fp, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", fp);
		else if (ch < 0x20)
			fprintf(fp, "\\u%04x", ch);
		else
			fputc(ch, fp);
	}
	return fputc('"', fp) == EOF ? TL_EIO : 0;
}

static int put_rec(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                   const uint8_t leaf[TL_HASH_LEN])
{
	struct wctx *w = ctx;
	(void)seq;
	(void)leaf;
	tl_buf_reset(&w->b64);
	if (tl_buf_reserve(&w->b64, tl_b64_encoded_len(len) + 1) != 0)
		return TL_ENOMEM;
	tl_b64_encode((char *)w->b64.data, rec, len);
	fputs(w->first ? "\n    \"" : ",\n    \"", w->fp);
	fputs((const char *)w->b64.data, w->fp);
	w->first = 0;
	return fputc('"', w->fp) == EOF ? TL_EIO : 0;
}

static int put_cp(void *ctx, uint64_t size, const char *note, size_t len)
{
	struct wctx *w = ctx;
	(void)size;
	fputs(w->first ? "\n    " : ",\n    ", w->fp);
	w->first = 0;
	return put_str(w->fp, note, len);
}

int tl_bundle_write(struct tl_store *s, FILE *fp, const struct tl_feed *feeds, size_t n,
                    const char *const *witnesses, size_t nwitnesses, int quorum, uint64_t *records)
{
	struct wctx w = {.fp = fp};
	struct tl_buf vk;
	int rc = 0;

	*records = 0;
	tl_buf_init(&vk, 1024);
	tl_buf_init(&w.b64, TL_RECORD_MAX * 2);
	fputs("{\n  \"format\": \"tally-bundle/v1\",\n  \"feeds\": [", fp);
	for (size_t i = 0; i < n; i++) {
		const struct tl_feed *f = &feeds[i];
		struct tl_vkey v;
		tl_buf_reset(&vk);
		if ((rc = tl_vkey_from_pub(&v, f->origin, TL_SIGTYPE_ED25519, f->o.pk)) != 0 ||
		    (rc = tl_vkey_format(&v, &vk)) != 0)
			goto out;
		fprintf(fp,
		        "%s\n  {\n   \"origin\": \"%s\",\n   \"vkey\": \"%s\",\n   \"records\": [",
		        i ? "," : "", f->origin, tl_buf_cstr(&vk));
		w.first = 1;
		if ((rc = tl_store_scan(s, f, 0, f->head.size, put_rec, &w)) != 0)
			goto out;
		fputs("\n   ],\n   \"checkpoints\": [", fp);
		w.first = 1;
		if ((rc = tl_store_checkpoint_scan(s, f, put_cp, &w)) != 0)
			goto out;
		fputs("\n   ]\n  }", fp);
		*records += f->head.size;
	}
	fputs("\n  ],\n  \"witnesses\": [", fp);
	for (size_t i = 0; i < nwitnesses; i++) {
		fputs(i ? ", " : "", fp);
		if ((rc = put_str(fp, witnesses[i], strlen(witnesses[i]))) != 0)
			goto out;
	}
	fprintf(fp, "],\n  \"quorum\": %d\n}\n", quorum);
	if (ferror(fp))
		rc = TL_EIO;
out:
	tl_buf_release(&vk);
	tl_buf_release(&w.b64);
	return rc;
}
