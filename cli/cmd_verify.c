/* cmd_verify.c — tally export, tally verify, tally checkpoint verify. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERIFY_INPUT_MAX ((size_t)8 << 30)

/* ------------------------------------------------------------- export */

struct export_ctx {
	FILE *fp;
	int first;
	struct tl_buf b64;
};

/* Writes a JSON string; our strings are base64, origins, vkeys and notes,
 * so only the note's newlines and the U+2014 dash need care (UTF-8 passes
 * through as JSON allows). */
static int put_json_str(FILE *fp, const char *s, size_t len)
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
	return fputc('"', fp) == EOF ? -1 : 0;
}

static int export_rec(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                      const uint8_t leaf[TL_HASH_LEN])
{
	struct export_ctx *x = ctx;
	(void)seq;
	(void)leaf;
	tl_buf_reset(&x->b64);
	if (tl_buf_reserve(&x->b64, tl_b64_encoded_len(len) + 1) != 0)
		return TL_ENOMEM;
	tl_b64_encode((char *)x->b64.data, rec, len);
	fputs(x->first ? "\n    \"" : ",\n    \"", x->fp);
	fputs((const char *)x->b64.data, x->fp);
	x->first = 0;
	return fputc('"', x->fp) == EOF ? TL_EIO : 0;
}

static int export_cp(void *ctx, uint64_t size, const char *note, size_t len)
{
	struct export_ctx *x = ctx;
	(void)size;
	fputs(x->first ? "\n    " : ",\n    ", x->fp);
	x->first = 0;
	return put_json_str(x->fp, note, len) ? TL_EIO : 0;
}

int cmd_export(int argc, char **argv)
{
	static const char *const allowed[] = {"-o", NULL};
	static const char *const flags[] = {"--no-sign", NULL};
	struct cli c = {.cmd = "export"};
	struct export_ctx x = {0};
	struct tl_buf note, vk;
	char tmp[4200];
	int rc;

	if ((rc = cli_parse(&c, argc, argv, allowed, flags)) != 0)
		return rc;
	const char *path = cli_opt(&c, "-o");
	if (!path || c.npos < 1)
		return cli_usage(&c, "usage: tally export ORIGIN... -o FILE [--no-sign]");
	if ((rc = cli_open_store(&c, 0)) != 0)
		return rc;
	struct tl_feed *feeds = calloc((size_t)c.npos, sizeof *feeds);
	tl_buf_init(&note, TL_NOTE_MAX);
	tl_buf_init(&vk, 1024);
	tl_buf_init(&x.b64, TL_RECORD_MAX * 2);
	tmp[0] = 0;
	if (!feeds) {
		rc = cli_fail(&c, EXIT_ENV, "out of memory");
		goto out;
	}
	/* Sign a checkpoint of each own feed's current size first, so that the
	 * bundle commits to every record it carries. */
	for (int i = 0; i < c.npos; i++) {
		uint64_t size;
		if ((rc = cli_feed(&c, c.pos[i], &feeds[i])) != 0)
			goto out;
		rc = cli_checkpoint_current(&c, &feeds[i], &note, &size, !cli_has(&c, "--no-sign"));
		if (rc && rc != EXIT_INVALID)
			goto out;
		rc = 0;
		if ((rc = cli_feed(&c, c.pos[i], &feeds[i])) != 0)
			goto out;
	}
	/* Written to a temporary file and renamed: a reader never sees half. */
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	x.fp = fopen(tmp, "wb");
	if (!x.fp) {
		rc = cli_fail(&c, EXIT_ENV, "cannot write '%s': %s", tmp, strerror(errno));
		tmp[0] = 0;
		goto out;
	}
	fputs("{\n  \"format\": \"tally-bundle/v1\",\n  \"feeds\": [", x.fp);
	uint64_t total = 0;
	for (int i = 0; i < c.npos; i++) {
		struct tl_vkey v;
		const struct tl_feed *f = &feeds[i];
		tl_buf_reset(&vk);
		if (tl_vkey_from_pub(&v, f->origin, TL_SIGTYPE_ED25519, f->o.pk) != 0 ||
		    tl_vkey_format(&v, &vk) != 0) {
			rc = cli_fail(&c, EXIT_ENV, "cannot format vkey of %s", f->origin);
			goto out;
		}
		fprintf(x.fp, "%s\n  {\n   \"origin\": \"%s\",\n   \"vkey\": \"%s\",\n",
		        i ? "," : "", f->origin, tl_buf_cstr(&vk));
		fputs("   \"records\": [", x.fp);
		x.first = 1;
		rc = tl_store_scan(c.store, f, 0, f->head.size, export_rec, &x);
		if (rc) {
			rc = cli_fail(&c, rc == TL_ECORRUPT ? EXIT_INVALID : EXIT_ENV, "%s",
			              rc == TL_EIO ? strerror(errno) : tl_store_errmsg(c.store));
			goto out;
		}
		fputs("\n   ],\n   \"checkpoints\": [", x.fp);
		x.first = 1;
		if ((rc = tl_store_checkpoint_scan(c.store, f, export_cp, &x)) != 0) {
			rc = cli_fail(&c, EXIT_ENV, "%s", tl_store_errmsg(c.store));
			goto out;
		}
		fputs("\n   ]\n  }", x.fp);
		total += f->head.size;
	}
	fputs("\n  ],\n  \"witnesses\": [],\n  \"quorum\": 0\n}\n", x.fp);
	if (fflush(x.fp) != 0 || fsync(fileno(x.fp)) != 0 || ferror(x.fp)) {
		rc = cli_fail(&c, EXIT_ENV, "writing '%s': %s", tmp, strerror(errno));
		goto out;
	}
	fclose(x.fp);
	x.fp = NULL;
	if (rename(tmp, path) != 0) {
		rc = cli_fail(&c, EXIT_ENV, "cannot rename '%s' to '%s': %s", tmp, path,
		              strerror(errno));
		goto out;
	}
	tmp[0] = 0;
	if (c.json)
		printf("{\"file\":\"%s\",\"feeds\":%d,\"records\":%llu}\n", path, c.npos,
		       (unsigned long long)total);
	else
		fprintf(stderr, "wrote %s: %d feed(s), %llu records\n", path, c.npos,
		        (unsigned long long)total);
out:
	if (x.fp)
		fclose(x.fp);
	if (tmp[0])
		unlink(tmp);
	free(feeds);
	tl_buf_release(&note);
	tl_buf_release(&vk);
	tl_buf_release(&x.b64);
	cli_close(&c);
	return rc;
}

/* ------------------------------------------------------------- verify */

struct keylist {
	struct tl_vkey *v;
	size_t n;
};

static int collect_keys(struct cli *c, const char *opt, uint8_t type, struct keylist *kl)
{
	kl->v = NULL;
	kl->n = 0;
	for (int i = 0; i < c->nopts; i++) {
		if (strcmp(c->opts[i].name, opt) != 0)
			continue;
		const char *s = c->opts[i].val;
		struct tl_vkey *nv = realloc(kl->v, (kl->n + 1) * sizeof *nv);
		if (!nv)
			return cli_fail(c, EXIT_ENV, "out of memory");
		kl->v = nv;
		if (tl_vkey_parse(&kl->v[kl->n], s, strlen(s)) != 0)
			return cli_usage(c, "%s '%s' is not a valid C2SP vkey", opt, s);
		if (kl->v[kl->n].type != type)
			return cli_usage(c, "%s '%s' has key type 0x%02x; expected 0x%02x", opt, s,
			                 kl->v[kl->n].type, type);
		kl->n++;
	}
	return 0;
}

static void print_report(const struct cli *c, const char *what, int valid,
                         const struct tl_verify_report *r)
{
	char hex[TL_HASH_LEN * 2 + 1];
	if (c->json) {
		json_t *feeds = json_array(), *issues = json_array();
		for (size_t i = 0; i < r->nfeeds; i++) {
			const struct tl_verify_feed *f = &r->feeds[i];
			tl_hex_encode(hex, f->root, TL_HASH_LEN);
			json_array_append_new(
			        feeds, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:s}", "origin",
			                         f->origin, "records", (json_int_t)f->records,
			                         "verified", (json_int_t)f->verified, "checkpoints",
			                         (json_int_t)f->checkpoints, "max_checkpoint",
			                         (json_int_t)f->max_checkpoint, "witnessed_size",
			                         (json_int_t)f->witnessed_size, "root", hex));
		}
		size_t kept = r->nissues < r->issues_cap ? r->nissues : r->issues_cap;
		for (size_t i = 0; i < kept; i++) {
			const struct tl_verify_issue *is = &r->issues[i];
			json_t *o =
			        json_pack("{s:s,s:s}", "origin", is->origin, "reason", is->reason);
			json_object_set_new(o, "seq",
			                    is->seq >= 0 ? json_integer(is->seq) : json_null());
			json_object_set_new(o, "size",
			                    is->size >= 0 ? json_integer(is->size) : json_null());
			json_array_append_new(issues, o);
		}
		json_t *o = json_pack("{s:s,s:b,s:o,s:o,s:I,s:i,s:i,s:b}", "file", what, "valid",
		                      valid, "feeds", feeds, "issues", issues, "issue_count",
		                      (json_int_t)r->nissues, "quorum", r->quorum, "witnesses",
		                      (int)r->nwitnesses, "witnesses_from_bundle",
		                      r->witnesses_from_bundle);
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(o);
		return;
	}
	for (size_t i = 0; i < r->nfeeds; i++) {
		const struct tl_verify_feed *f = &r->feeds[i];
		tl_hex_encode(hex, f->root, TL_HASH_LEN);
		printf("feed %s\n  records %llu, verified %llu; checkpoints %llu (largest size "
		       "%llu); witnessed size %llu\n  root %s\n",
		       f->origin, (unsigned long long)f->records, (unsigned long long)f->verified,
		       (unsigned long long)f->checkpoints, (unsigned long long)f->max_checkpoint,
		       (unsigned long long)f->witnessed_size, hex);
	}
	if (r->nwitnesses || r->quorum)
		printf("witnesses: %zu key(s)%s, quorum %d\n", r->nwitnesses,
		       r->witnesses_from_bundle ? " taken from the bundle itself (pass --witness "
		                                  "to use keys you trust)"
		                                : "",
		       r->quorum);
	size_t kept = r->nissues < r->issues_cap ? r->nissues : r->issues_cap;
	for (size_t i = 0; i < kept; i++) {
		const struct tl_verify_issue *is = &r->issues[i];
		printf("INVALID: %s%s", is->origin[0] ? "feed " : "", is->origin);
		if (is->seq >= 0)
			printf(": seq %lld", (long long)is->seq);
		if (is->size >= 0)
			printf(": checkpoint size %lld", (long long)is->size);
		printf(": %s\n", is->reason);
	}
	if (r->nissues > kept)
		printf("... and %zu more problems\n", r->nissues - kept);
	printf("%s: %s\n", what, valid ? "VALID" : "NOT VALID");
}

static int run_verify(struct cli *c, const char *what, const struct tl_buf *in, int note_only)
{
	struct keylist logs, wits;
	struct tl_verify_report r;
	struct tl_verify_opts o = {0};
	int rc;
	uint64_t q = 0;

	memset(&r, 0, sizeof r);
	if ((rc = collect_keys(c, "--vkey", TL_SIGTYPE_ED25519, &logs)) != 0)
		return rc;
	if ((rc = collect_keys(c, "--witness", TL_SIGTYPE_COSIG, &wits)) != 0) {
		free(logs.v);
		return rc;
	}
	o.logs = logs.n ? logs.v : NULL;
	o.nlogs = logs.n;
	o.witnesses = wits.n ? wits.v : NULL;
	o.nwitnesses = wits.n;
	o.quorum = -1;
	o.now = (int64_t)(cli_now_ms() / 1000);
	if (cli_opt(c, "--quorum")) {
		if ((rc = cli_u64(c, "--quorum", cli_opt(c, "--quorum"), &q)) != 0)
			goto out;
		if (q > 1000) {
			rc = cli_usage(c, "--quorum %llu is larger than any witness set",
			               (unsigned long long)q);
			goto out;
		}
		o.quorum = (int)q;
	}
	const char *text = (const char *)in->data;
	if (note_only) {
		if (!logs.n) {
			rc = cli_usage(c, "give at least one --vkey to verify a note against");
			goto out;
		}
		rc = tl_verify_note(text, in->len, &o, &r);
	} else if (in->len >= 22 && memcmp(text, "c2sp.org/tlog-proof@v1", 22) == 0) {
		rc = tl_verify_tlog_proof(text, in->len, &o, &r);
	} else {
		rc = tl_verify_bundle(text, in->len, &o, &r);
	}
	print_report(c, what, rc == 0, &r);
	rc = rc == 0 ? EXIT_OK : EXIT_INVALID;
out:
	tl_verify_report_release(&r);
	free(logs.v);
	free(wits.v);
	return rc;
}

int cmd_verify(int argc, char **argv)
{
	static const char *const allowed[] = {"--vkey", "--witness", "--quorum", NULL};
	struct cli c = {.cmd = "verify"};
	struct tl_buf in;
	int rc;
	if ((rc = cli_parse(&c, argc, argv, allowed, NULL)) != 0)
		return rc;
	if (c.npos != 1)
		return cli_usage(&c, "usage: tally verify FILE [--vkey V]... [--witness V]... "
		                     "[--quorum K]");
	if ((rc = cli_read_file(&c, c.pos[0], VERIFY_INPUT_MAX, &in)) != 0)
		return rc;
	rc = run_verify(&c, c.pos[0], &in, 0);
	tl_buf_release(&in);
	return rc;
}

int cmd_checkpoint(int argc, char **argv)
{
	static const char *const allowed[] = {"--vkey", "--witness", "--quorum", NULL};
	struct cli c = {.cmd = "checkpoint verify"};
	struct tl_buf in;
	int rc;
	if (argc < 1 || strcmp(argv[0], "verify") != 0)
		return cli_usage(&c, "usage: tally checkpoint verify --vkey V [--vkey V]... "
		                     "[--witness V]... [--quorum K] < NOTE");
	if ((rc = cli_parse(&c, argc - 1, argv + 1, allowed, NULL)) != 0)
		return rc;
	const char *path = c.npos == 1 ? c.pos[0] : "-";
	if (c.npos > 1)
		return cli_usage(&c, "usage: tally checkpoint verify --vkey V ... [FILE] < NOTE");
	if ((rc = cli_read_file(&c, path, TL_NOTE_MAX, &in)) != 0)
		return rc;
	rc = run_verify(&c, strcmp(path, "-") == 0 ? "<stdin>" : path, &in, 1);
	tl_buf_release(&in);
	return rc;
}
