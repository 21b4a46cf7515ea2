/* cmd_verify.c — tally export, tally verify, tally checkpoint verify. */
#include "cli.h"
#include "consensus/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERIFY_INPUT_MAX ((size_t)8 << 30)

/* ------------------------------------------------------------- export */

/* Every stored feed of the channel named by which (32 hex, or the origin of
 * a feed of it): the own feed(s) and the counterparty's copy. */
static int channel_feeds(struct cli *c, const char *which, struct tl_feed **out, int *n)
{
	struct tl_feed *all, *sel;
	size_t na;
	char ch[TL_CHANNEL_LEN * 2 + 1], want[TL_CHANNEL_LEN * 2 + 1] = "";
	int k = 0;

	if (tl_store_feed_list(c->store, &all, &na) != 0)
		return cli_store_fail(c, TL_ESTORE);
	for (size_t i = 0; i < na; i++)
		if (strcmp(all[i].origin, which) == 0)
			tl_hex_encode(want, all[i].o.channel, TL_CHANNEL_LEN);
	if (!want[0] && strlen(which) == TL_CHANNEL_LEN * 2)
		snprintf(want, sizeof want, "%s", which);
	sel = calloc(na ? na : 1, sizeof *sel);
	if (!sel) {
		free(all);
		return cli_fail(c, EXIT_ENV, "out of memory");
	}
	for (size_t i = 0; i < na; i++) {
		tl_hex_encode(ch, all[i].o.channel, TL_CHANNEL_LEN);
		if (strcmp(ch, want) == 0)
			sel[k++] = all[i];
	}
	free(all);
	if (k == 0) {
		free(sel);
		return cli_fail(c, EXIT_INVALID,
		                "no feeds of channel %s here (see tally channel list)", which);
	}
	*out = sel;
	*n = k;
	return 0;
}

/* The witness set of the channel's agreed terms, as vkey strings. */
static int terms_witnesses(struct cli *c, const struct tl_feed *feeds, int n, char ***out,
                           size_t *nw, int *quorum)
{
	struct cli_chanstate cs;
	const struct tl_terms *t;
	int rc = 0;

	*out = NULL;
	*nw = 0;
	*quorum = 0;
	rc = cli_chanstate_feeds(c, feeds, n < 2 ? (size_t)n : 2, cli_now_ms(),
	                         CLI_CS_CLAIMED | CLI_CS_QUIET, &cs);
	if (rc == EXIT_INVALID)
		return 0; /* a channel whose state cannot be computed names no witnesses */
	if (rc)
		return rc;
	t = &cs.claimed->in_force;
	if (!t->unilateral && t->nwitnesses) {
		*out = calloc(t->nwitnesses, sizeof **out);
		if (!*out) {
			rc = cli_fail(c, EXIT_ENV, "out of memory");
			goto out;
		}
		*nw = t->nwitnesses;
		for (size_t i = 0; i < t->nwitnesses; i++)
			if (!((*out)[i] = strdup(t->witnesses[i])))
				rc = cli_fail(c, EXIT_ENV, "out of memory");
		*quorum = (int)t->quorum;
	}
out:
	cli_chanstate_release(&cs);
	return rc;
}

int cmd_export(int argc, char **argv)
{
	static const char *const allowed[] = {"-o", "--channel", "--witness", "--quorum", NULL};
	static const char *const flags[] = {"--no-sign", NULL};
	struct cli c = {.cmd = "export"};
	FILE *fp = NULL;
	int lockfd = -1;
	struct tl_buf note;
	char tmp[4200];
	int rc;

	if ((rc = cli_parse(&c, argc, argv, allowed, flags)) != 0)
		return rc;
	const char *path = cli_opt(&c, "-o"), *chan = cli_opt(&c, "--channel");
	struct tl_vkey *wkeys = NULL;
	const char **wstr = NULL;
	char **twit = NULL;
	size_t nwk = 0, ntw = 0;
	int quorum = 0, nfeeds = c.npos;
	uint64_t q;
	if (!path || (c.npos < 1 && !chan) || (chan && c.npos))
		return cli_usage(&c, "usage: tally export ORIGIN... -o FILE [--no-sign]\n"
		                     "       tally export --channel C -o FILE [--witness V]... "
		                     "[--quorum K] [--no-sign]");
	if ((rc = cli_witness_keys(&c, &wkeys, &nwk)) != 0)
		return rc;
	if (cli_opt(&c, "--quorum")) {
		if ((rc = cli_u64(&c, "--quorum", cli_opt(&c, "--quorum"), &q)) != 0) {
			free(wkeys);
			return rc;
		}
		if (q > nwk) {
			free(wkeys);
			return cli_usage(&c, "--quorum %llu is more than the %zu --witness key(s)",
			                 (unsigned long long)q, nwk);
		}
		quorum = (int)q;
	}
	if ((rc = cli_open_store(&c, 0)) != 0) {
		free(wkeys);
		return rc;
	}
	struct tl_feed *feeds = NULL;
	tl_buf_init(&note, TL_NOTE_MAX);
	tmp[0] = 0;
	if (chan) {
		if ((rc = channel_feeds(&c, chan, &feeds, &nfeeds)) != 0)
			goto out;
	} else {
		feeds = calloc((size_t)c.npos, sizeof *feeds);
		if (!feeds) {
			rc = cli_fail(&c, EXIT_ENV, "out of memory");
			goto out;
		}
	}
	/* Witnesses: the flags, else (for a channel) its agreed terms. */
	if (nwk) {
		wstr = calloc(nwk, sizeof *wstr);
		if (!wstr) {
			rc = cli_fail(&c, EXIT_ENV, "out of memory");
			goto out;
		}
		for (int i = 0, k = 0; i < c.nopts; i++)
			if (strcmp(c.opts[i].name, "--witness") == 0)
				wstr[k++] = c.opts[i].val;
		ntw = nwk;
	} else if (chan) {
		if ((rc = terms_witnesses(&c, feeds, nfeeds, &twit, &ntw, &quorum)) != 0)
			goto out;
		wstr = (const char **)twit;
	}
	/* Appends wait while the bundle is written, so that no checkpoint in it
	 * is newer than its records. */
	if ((rc = cli_lock(&c, &lockfd)) != 0)
		goto out;
	/* Sign a checkpoint of each own feed's current size first, so that the
	 * bundle commits to every record it carries. */
	for (int i = 0; i < nfeeds; i++) {
		uint64_t size;
		if (!chan && (rc = cli_feed(&c, c.pos[i], &feeds[i])) != 0)
			goto out;
		if (!(feeds[i].flags & TL_FEED_OWN) || cli_has(&c, "--no-sign"))
			continue;
		if ((rc = cli_checkpoint_current(&c, &feeds[i], &note, &size, 1)) != 0)
			goto out;
	}
	/* Written to a temporary file and renamed: a reader never sees half. */
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!fp) {
		if (fd >= 0)
			close(fd);
		rc = cli_fail(&c, EXIT_ENV, "cannot write '%s': %s", tmp, strerror(errno));
		tmp[0] = 0;
		goto out;
	}
	uint64_t total = 0;
	rc = tl_bundle_write(c.store, fp, feeds, (size_t)nfeeds, wstr, ntw, quorum, &total);
	if (rc) {
		rc = cli_fail(&c, rc == TL_ECORRUPT ? EXIT_INVALID : EXIT_ENV, "%s",
		              rc == TL_EIO ? strerror(errno) : tl_store_errmsg(c.store));
		goto out;
	}
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0 || ferror(fp)) {
		rc = cli_fail(&c, EXIT_ENV, "writing '%s': %s", tmp, strerror(errno));
		goto out;
	}
	fclose(fp);
	fp = NULL;
	if (rename(tmp, path) != 0) {
		rc = cli_fail(&c, EXIT_ENV, "cannot rename '%s' to '%s': %s", tmp, path,
		              strerror(errno));
		goto out;
	}
	tmp[0] = 0;
	cli_fsync_dir(path);
	if (c.json)
		printf("{\"file\":\"%s\",\"feeds\":%d,\"records\":%llu,\"witnesses\":%zu,"
		       "\"quorum\":%d}\n",
		       path, nfeeds, (unsigned long long)total, ntw, quorum);
	else
		fprintf(stderr, "wrote %s: %d feed(s), %llu records, %zu witness(es), quorum %d\n",
		        path, nfeeds, (unsigned long long)total, ntw, quorum);
out:
	if (fp)
		fclose(fp);
	if (tmp[0])
		unlink(tmp);
	cli_unlock(lockfd);
	free(feeds);
	free(wkeys);
	for (size_t i = 0; twit && i < ntw; i++)
		free(twit[i]);
	free(twit);
	if (nwk)
		free(wstr);
	tl_buf_release(&note);
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
			json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:s}", "origin", f->origin,
			                      "records", (json_int_t)f->records, "verified",
			                      (json_int_t)f->verified, "checkpoints",
			                      (json_int_t)f->checkpoints, "max_checkpoint",
			                      (json_int_t)f->max_checkpoint, "root", hex);
			json_object_set_new(o, "witnessed_time",
			                    f->witnessed_time
			                            ? json_integer((json_int_t)f->witnessed_time)
			                            : json_null());
			/* Without a quorum nothing is witnessed: null, not a size. */
			json_object_set_new(o, "witnessed_size",
			                    r->quorum > 0
			                            ? json_integer((json_int_t)f->witnessed_size)
			                            : json_null());
			json_array_append_new(feeds, o);
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
		       "%llu)\n  root %s\n",
		       f->origin, (unsigned long long)f->records, (unsigned long long)f->verified,
		       (unsigned long long)f->checkpoints, (unsigned long long)f->max_checkpoint,
		       hex);
		if (r->quorum > 0)
			printf("  witnessed size %llu (quorum %d)\n",
			       (unsigned long long)f->witnessed_size, r->quorum);
		if (f->witnessed_time) {
			char iso[32];
			cli_time_iso(iso, f->witnessed_time * 1000);
			printf("  witnessed time: the entry existed by %s (%d of %zu witnesses "
			       "cosigned by then)\n",
			       iso, r->quorum, r->nwitnesses);
		}
		if (f->verified == f->records && f->max_checkpoint < f->records)
			printf("  note: seq %llu..%llu are signed but no checkpoint covers them: "
			       "dropping them from the end could not be detected\n",
			       (unsigned long long)f->max_checkpoint,
			       (unsigned long long)f->records - 1);
	}
	if (!r->quorum)
		printf("witnesses: none required (quorum 0): times are the authors' claims only\n");
	else
		printf("witnesses: %zu key(s)%s, quorum %d\n", r->nwitnesses,
		       r->witnesses_from_bundle ? " taken from the bundle itself (pass --witness "
		                                  "to use keys you trust)"
		                                : "",
		       r->quorum);
	size_t kept = r->nissues < r->issues_cap ? r->nissues : r->issues_cap;
	for (size_t i = 0; i < kept; i++) {
		const struct tl_verify_issue *is = &r->issues[i];
		if (is->origin[0])
			printf("INVALID: feed %s", is->origin);
		else
			printf("INVALID");
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
