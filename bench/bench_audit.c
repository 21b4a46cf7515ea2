/*
 * bench_audit.c — figure for issue 5: `tally audit` of a channel bundle of
 * 1,000,000 entries (two feeds of 500,000: 500 statements, each confirmed
 * by a person-signed confirm, the rest comments), with a checkpoint every
 * 5,000 entries of each feed cosigned by 3 witnesses, audited with a
 * 2-of-3 quorum. Generating the bundle is not timed; the figure is the
 * wall-clock time of the real binary (verification of every signature,
 * the witnessed-time tables, both channel states, the verdicts, the JSON
 * report). Goal: <= 60 s on 2 cores.
 *
 * Usage: bench_audit DIR [--quick]   (--quick: 100,000 entries)
 * The tally binary: $TALLY_BIN, else ../tally next to this program.
 */
#define _GNU_SOURCE
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "consensus/state.h"
#include "node/tl_node.h"

#define NWIT       3
#define CP_EVERY   5000
#define STMT_EVERY 1000
#define T0_S       1790000000ull

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_audit: %s: %s\n", what, tl_strerror(rc));
	exit(1);
}

struct feed {
	struct tl_keypair kp;
	struct tl_signer *signer;
	char origin[TL_ORIGIN_LEN + 1];
	uint8_t last[TL_HASH_LEN];
	uint64_t n;
	struct tl_merkle_acc acc;
	FILE *recs;  /* JSON array items, base64 */
	FILE *notes; /* JSON array items */
	uint8_t (*stmt_leaf)[TL_HASH_LEN];
	size_t nstmt;
};

static struct tl_keypair wk[NWIT];
static char wname[NWIT][64];
static char wvkey[NWIT][512];

static void body_json(struct tl_buf *b, json_t *j)
{
	char err[128];
	tl_buf_reset(b);
	if (!j || tl_json_to_mp(j, b, err, sizeof err) != 0)
		die("body", TL_EFORMAT);
	json_decref(j);
}

static void put_json_str(FILE *fp, const char *s, size_t len, int first)
{
	if (!first)
		fputc(',', fp);
	fputc('"', fp);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			fprintf(fp, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", fp);
		else
			fputc(ch, fp);
	}
	fputc('"', fp);
}

/* A checkpoint of the feed at its current size, cosigned by every witness. */
static void checkpoint(struct feed *f, uint64_t t)
{
	struct tl_checkpoint cp;
	struct tl_buf text, note;
	int rc;

	memset(&cp, 0, sizeof cp);
	snprintf(cp.origin, sizeof cp.origin, "%s", f->origin);
	cp.size = f->n;
	tl_merkle_acc_root(&f->acc, cp.root);
	tl_buf_init(&text, 4096);
	tl_buf_init(&note, TL_NOTE_MAX);
	if ((rc = tl_checkpoint_format(&cp, &text)) != 0 ||
	    (rc = tl_note_sign(&note, (const char *)text.data, text.len, f->origin, &f->kp)) != 0)
		die("checkpoint", rc);
	for (int w = 0; w < NWIT; w++)
		if ((rc = tl_cosig_sign(&note, (const char *)text.data, text.len, t + (uint64_t)w,
		                        wname[w], &wk[w])) != 0)
			die("cosign", rc);
	put_json_str(f->notes, (const char *)note.data, note.len, f->n == CP_EVERY);
	tl_buf_release(&text);
	tl_buf_release(&note);
}

static void append(struct feed *f, uint64_t t_ms, const char *kind, const struct tl_buf *body,
                   struct tl_buf *rec, struct tl_buf *b64)
{
	uint8_t leaf[TL_HASH_LEN];
	int rc;

	tl_buf_reset(rec);
	if ((rc = tl_entry_encode(rec, f->origin, f->n, f->last, t_ms, kind, strlen(kind),
	                          body->data, body->len)) != 0 ||
	    (rc = tl_record_sign_with(rec, f->signer)) != 0)
		die("append", rc);
	tl_record_leaf_hash(leaf, rec->data, rec->len);
	memcpy(f->last, leaf, TL_HASH_LEN);
	tl_merkle_acc_push(&f->acc, leaf, NULL, NULL);
	if (!strcmp(kind, "statement"))
		memcpy(f->stmt_leaf[f->nstmt++], leaf, TL_HASH_LEN);
	tl_buf_reset(b64);
	if (tl_buf_reserve(b64, tl_b64_encoded_len(rec->len) + 1) != 0)
		die("b64", TL_ENOMEM);
	tl_b64_encode((char *)b64->data, rec->data, rec->len);
	fprintf(f->recs, "%s\"%s\"", f->n ? "," : "", (const char *)b64->data);
	f->n++;
	/* The witnesses see each feed every CP_EVERY entries, 1 s per entry. */
	if (f->n % CP_EVERY == 0)
		checkpoint(f, T0_S + f->n + 600);
}

static void feed_init(struct feed *f, uint8_t seed_byte, const uint8_t peer[TL_PUB_LEN],
                      const char *dir, const char *tag, size_t n)
{
	uint8_t seed[TL_SEED_LEN], ch[TL_CHANNEL_LEN];
	char path[4200];
	int rc;

	memset(seed, seed_byte, sizeof seed);
	if ((rc = tl_key_from_seed(&f->kp, seed)) != 0)
		die("key", rc);
	(void)peer;
	tl_merkle_acc_init(&f->acc);
	memset(f->last, 0, sizeof f->last);
	f->n = 0;
	f->stmt_leaf = calloc(n / STMT_EVERY + 2, sizeof *f->stmt_leaf);
	snprintf(path, sizeof path, "%s/%s.recs", dir, tag);
	f->recs = fopen(path, "w+");
	snprintf(path, sizeof path, "%s/%s.notes", dir, tag);
	f->notes = fopen(path, "w+");
	if (!f->recs || !f->notes || !f->stmt_leaf)
		die("tmp files", TL_EIO);
	(void)ch;
}

static void feed_origin(struct feed *f, const struct tl_keypair *other)
{
	uint8_t ch[TL_CHANNEL_LEN];
	tl_channel_id(ch, f->kp.pk, other->pk, "default", 7);
	tl_origin_format(f->origin, f->kp.pk, ch);
}

static void copy_file(FILE *dst, FILE *src)
{
	char buf[1 << 16];
	size_t n;
	rewind(src);
	while ((n = fread(buf, 1, sizeof buf, src)) > 0)
		fwrite(buf, 1, n, dst);
}

static void write_feed(FILE *out, struct feed *f, int first)
{
	struct tl_vkey vk;
	struct tl_buf b;
	tl_buf_init(&b, 1024);
	if (tl_vkey_from_pub(&vk, f->origin, TL_SIGTYPE_ED25519, f->kp.pk) != 0 ||
	    tl_vkey_format(&vk, &b) != 0)
		die("vkey", TL_EINVAL);
	fprintf(out, "%s{\"origin\":\"%s\",\"vkey\":\"%s\",\"records\":[", first ? "" : ",",
	        f->origin, tl_buf_cstr(&b));
	copy_file(out, f->recs);
	fputs("],\"checkpoints\":[", out);
	copy_file(out, f->notes);
	fputs("]}", out);
	tl_buf_release(&b);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 && argv[1][0] != '-' ? argv[1] : "/tmp/tally-bench-audit";
	int quick = 0;
	size_t per_feed;
	struct feed s, c;
	struct tl_keypair approver;
	struct tl_buf body, rec, b64, msg;
	char bundle[4200], tally[4200], at[32], ph[65], leafhex[65], sigb64[100];
	uint8_t seed[TL_SEED_LEN], sig[TL_SIG_LEN];
	double t0, t1, gen;
	int rc;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
	per_feed = quick ? 50000 : 500000;
	if (tl_init() != 0)
		die("init", TL_ECRYPTO);
	mkdir(dir, 0700);
	snprintf(bundle, sizeof bundle, "%s/audit-bundle.json", dir);
	if (getenv("TALLY_BIN")) {
		snprintf(tally, sizeof tally, "%s", getenv("TALLY_BIN"));
	} else {
		char self[4096];
		snprintf(self, sizeof self, "%s", argv[0]);
		snprintf(tally, sizeof tally, "%s/../tally", dirname(self));
	}
	for (int w = 0; w < NWIT; w++) {
		struct tl_vkey vk;
		struct tl_buf b;
		memset(seed, 0x90 + w, sizeof seed);
		if (tl_key_from_seed(&wk[w], seed) != 0)
			die("witness key", TL_ECRYPTO);
		snprintf(wname[w], sizeof wname[w], "witness-%c.example", 'a' + w);
		tl_buf_init(&b, 512);
		if (tl_vkey_from_pub(&vk, wname[w], TL_SIGTYPE_COSIG, wk[w].pk) != 0 ||
		    tl_vkey_format(&vk, &b) != 0)
			die("witness vkey", TL_EINVAL);
		snprintf(wvkey[w], sizeof wvkey[w], "%s", tl_buf_cstr(&b));
		tl_buf_release(&b);
	}
	memset(seed, 0x33, sizeof seed);
	if (tl_key_from_seed(&approver, seed) != 0)
		die("approver", TL_ECRYPTO);
	tl_hex_encode(ph, approver.pk, TL_PUB_LEN);

	t0 = now();
	feed_init(&s, 1, NULL, dir, "s", per_feed);
	feed_init(&c, 2, NULL, dir, "c", per_feed);
	feed_origin(&s, &c.kp);
	feed_origin(&c, &s.kp);
	if ((rc = tl_signer_new(&s.signer, &s.kp, 1)) != 0 ||
	    (rc = tl_signer_new(&c.signer, &c.kp, 1)) != 0)
		die("signer", rc);
	tl_buf_init(&body, TL_ENTRY_MAX);
	tl_buf_init(&rec, TL_RECORD_MAX);
	tl_buf_init(&b64, TL_RECORD_MAX * 2);
	tl_buf_init(&msg, TL_ENTRY_MAX);

	/* Supplier: a statement every STMT_EVERY entries, comments between. */
	for (size_t i = 0; i < per_feed; i++) {
		uint64_t t = (T0_S + i) * 1000;
		if (i % STMT_EVERY == 1) {
			char id[32];
			snprintf(id, sizeof id, "ST-%zu", i / STMT_EVERY);
			body_json(&body,
			          json_pack("{s:s,s:i,s:s,s:{s:s,s:s},s:s,s:i,s:[{s:s,s:s,s:s,s:i,"
			                    "s:s}],"
			                    "s:i,s:{s:i,s:i,s:i,s:i,s:i}}",
			                    "id", id, "version", 1, "date", "2026-11-30", "period",
			                    "from", "2026-11-01", "to", "2026-11-30", "currency",
			                    "CNY", "opening", 0, "lines", "date", "2026-11-03",
			                    "type", "invoice", "doc", "INV-1", "amount", 500, "due",
			                    "2026-12-03", "closing", 500, "aging", "current", 500,
			                    "d1_30", 0, "d31_60", 0, "d61_90", 0, "d90_plus", 0));
			append(&s, t, "statement", &body, &rec, &b64);
		} else {
			body_json(&body, json_pack("{s:s}", "text", "reminder sent by e-mail"));
			append(&s, t, "comment", &body, &rec, &b64);
		}
	}
	/* Customer: grant, then a confirm of each statement, comments between. */
	size_t next = 0;
	for (size_t i = 0; i < per_feed; i++) {
		uint64_t t = (T0_S + i) * 1000 + 500;
		if (i == 0) {
			body_json(&body, json_pack("{s:s,s:s,s:s}", "key", ph, "role", "approver",
			                           "name", "A"));
			append(&c, t, "key.grant", &body, &rec, &b64);
		} else if (i % STMT_EVERY == 2 && next < s.nstmt) {
			json_t *j;
			tl_hex_encode(leafhex, s.stmt_leaf[next++], TL_HASH_LEN);
			j = json_pack("{s:s,s:i,s:s}", "statement", leafhex, "balance", 500,
			              "person", ph);
			body_json(&body, json_incref(j));
			tl_buf_reset(&msg);
			if (tl_person_sig_message(&msg, "confirm", 7, body.data, body.len) != 0)
				die("person msg", TL_EINVAL);
			tl_sign(sig, msg.data, msg.len, approver.sk);
			tl_b64_encode(sigb64, sig, TL_SIG_LEN);
			json_object_set_new(j, "person_sig", json_string(sigb64));
			body_json(&body, j);
			append(&c, t, "confirm", &body, &rec, &b64);
		} else {
			body_json(&body, json_pack("{s:s}", "text", "checked"));
			append(&c, t, "comment", &body, &rec, &b64);
		}
	}
	FILE *out = fopen(bundle, "w");
	if (!out)
		die("bundle", TL_EIO);
	fputs("{\"format\":\"tally-bundle/v1\",\"feeds\":[", out);
	write_feed(out, &s, 1);
	write_feed(out, &c, 0);
	fprintf(out, "],\"witnesses\":[\"%s\",\"%s\",\"%s\"],\"quorum\":2}\n", wvkey[0], wvkey[1],
	        wvkey[2]);
	fclose(out);
	gen = now() - t0;
	struct stat stt;
	stat(bundle, &stt);

	/* The figure: the real binary, JSON report to /dev/null. */
	snprintf(at, sizeof at, "%llu", (unsigned long long)(T0_S + per_feed + 100000) * 1000);
	t1 = now();
	pid_t pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(3);
		execl(tally, "tally", "--json", "audit", bundle, "--witness", wvkey[0], "--witness",
		      wvkey[1], "--witness", wvkey[2], "--quorum", "2", "--at", at, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	double secs = now() - t1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench_audit: %s audit exited %d\n", tally,
		        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return 1;
	}
	uint64_t total = 2 * per_feed;
	printf("audit                  %8.0f entries/s (%llu entries, %zu statements, %.0f MB "
	       "bundle, %llu cosigned checkpoints, 2-of-3): %.1f s (goal <= 60 s for 1M)\n",
	       (double)total / secs, (unsigned long long)total, s.nstmt, (double)stt.st_size / 1e6,
	       (unsigned long long)(total / CP_EVERY), secs);
	fprintf(stderr, "(generation %.1f s, not timed)\n", gen);
	if (!getenv("BENCH_AUDIT_KEEP")) /* to profile: keep the bundle */
		unlink(bundle);
	else
		fprintf(stderr, "kept %s (--at %s)\n", bundle, at);
	fclose(s.recs);
	fclose(s.notes);
	fclose(c.recs);
	fclose(c.notes);
	char path[4300];
	snprintf(path, sizeof path, "%s/s.recs", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/s.notes", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/c.recs", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/c.notes", dir);
	unlink(path);
	rmdir(dir); /* only if empty: run.sh may share it with other benchmarks */
	tl_signer_free(s.signer);
	tl_signer_free(c.signer);
	free(s.stmt_leaf);
	free(c.stmt_leaf);
	tl_buf_release(&body);
	tl_buf_release(&rec);
	tl_buf_release(&b64);
	tl_buf_release(&msg);
	return 0;
}
