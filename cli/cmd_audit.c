/*
 * cmd_audit.c — tally audit: verify a channel bundle and report, for each
 * statement, what the authors claim and what the witnesses prove (DESIGN §4).
 * Also the channel evaluation (witnessed times, both states, lateness)
 * that `tally channel state` shares (cli_chan_eval).
 *
 * The audit verifies first (tl_verify_bundle: every record, checkpoint and
 * cosignature) and stops with exit 1 if anything fails. Lateness is a
 * finding, not a failure: a bundle that verifies exits 0 whatever it shows.
 */
#include "cli.h"
#include "consensus/state.h"
#include "consensus/wtime.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUDIT_INPUT_MAX ((size_t)16 << 30)
#define AUDIT_SKEW_MAX  (366ull * 86400) /* a year */

/* ------------------------------------------------------ witness keys */

int cli_witness_keys(struct cli *c, struct tl_vkey **out, size_t *n)
{
	struct tl_vkey *v = NULL;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	for (int i = 0; i < c->nopts; i++) {
		const char *s = c->opts[i].val;
		struct tl_vkey *nv;

		if (strcmp(c->opts[i].name, "--witness") != 0)
			continue;
		nv = realloc(v, (k + 1) * sizeof *nv);
		if (!nv) {
			free(v);
			return cli_fail(c, EXIT_ENV, "out of memory");
		}
		v = nv;
		if (tl_vkey_parse(&v[k], s, strlen(s)) != 0) {
			free(v);
			return cli_usage(c, "--witness '%s' is not a valid C2SP vkey", s);
		}
		if (v[k].type != TL_SIGTYPE_COSIG) {
			unsigned type = v[k].type;
			free(v);
			return cli_usage(
			        c, "--witness '%s' has key type 0x%02x; a witness key is 0x04", s,
			        type);
		}
		k++;
	}
	*out = v;
	*n = k;
	return 0;
}

/* ------------------------------------------------------ channel eval */

void cli_chan_eval_release(struct cli_chan_eval *e)
{
	if (!e)
		return;
	for (int k = 0; k < 2; k++) {
		tl_wtime_free(e->wt[k]);
		free(e->wit[k]);
	}
	tl_state_free(e->ws);
	tl_state_free(e->cs);
	free(e->late);
	memset(e, 0, sizeof *e);
}

int cli_chan_eval(struct cli_chan_eval *e, const struct cli_feed_in *feeds, size_t nfeeds,
                  const struct tl_wtime_opts *wo, uint64_t now_ms)
{
	struct tl_state_builder *bw = NULL, *bc = NULL;
	int rc = 0;

	memset(e, 0, sizeof *e);
	if (nfeeds > 2)
		return TL_EINVAL;
	e->nfeeds = nfeeds;
	for (size_t k = 0; k < nfeeds; k++) {
		const struct cli_feed_in *f = &feeds[k];

		if ((rc = tl_wtime_build(&e->wt[k], f->origin, f->notes, f->nlens, f->nnotes,
		                         wo)) != 0 ||
		    (rc = tl_wtime_add_seen(e->wt[k], f->recs, f->lens, f->n)) != 0)
			goto fail;
		e->wit[k] = calloc(f->n ? f->n : 1, sizeof *e->wit[k]);
		if (!e->wit[k]) {
			rc = TL_ENOMEM;
			goto fail;
		}
		if ((rc = tl_wtime_existed_all(e->wt[k], e->wit[k], f->n, 1000)) != 0)
			goto fail;
	}
	if ((rc = tl_state_builder_new(&bw, NULL)) != 0 ||
	    (rc = tl_state_builder_new(&bc, NULL)) != 0)
		goto fail;
	for (size_t k = 0; k < nfeeds; k++)
		for (size_t i = 0; i < feeds[k].n; i++) {
			if ((rc = tl_state_add(bw, feeds[k].recs[i], feeds[k].lens[i],
			                       e->wit[k][i])) != 0 ||
			    (rc = tl_state_add(bc, feeds[k].recs[i], feeds[k].lens[i], 0)) != 0) {
				e->bad_feed = k;
				e->bad_seq = i;
				goto fail;
			}
		}
	if ((rc = tl_state_build(bw, now_ms, &e->ws)) != 0 ||
	    (rc = tl_state_build(bc, now_ms, &e->cs)) != 0)
		goto fail;
	for (size_t k = 0; k < nfeeds; k++) {
		if (strcmp(feeds[k].origin, e->ws->origin[TL_ROLE_SUPPLIER]) == 0)
			e->role[k] = TL_ROLE_SUPPLIER, e->by_role[TL_ROLE_SUPPLIER] = e->wt[k];
		else
			e->role[k] = TL_ROLE_CUSTOMER, e->by_role[TL_ROLE_CUSTOMER] = e->wt[k];
	}
	rc = tl_late_eval(&e->late, e->ws, e->cs, e->by_role[TL_ROLE_SUPPLIER],
	                  e->by_role[TL_ROLE_CUSTOMER], now_ms);
	if (rc)
		goto fail;
	tl_state_builder_free(bw);
	tl_state_builder_free(bc);
	return 0;
fail:
	tl_state_builder_free(bw);
	tl_state_builder_free(bc);
	{
		size_t bf = e->bad_feed, bs = e->bad_seq;
		cli_chan_eval_release(e);
		e->bad_feed = bf;
		e->bad_seq = bs;
	}
	return rc;
}

/* The witness set and quorum of the agreed terms in force, if they name
 * one (terms.propose "witnesses" and "quorum"). Keys that do not parse as
 * type 0x04 vkeys are skipped. */
int cli_terms_witnesses(const struct tl_state *st, struct tl_vkey **out, size_t *n, int *quorum)
{
	const struct tl_terms *t = &st->in_force;
	struct tl_vkey *v;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	*quorum = 0;
	if (t->unilateral || t->nwitnesses == 0)
		return 0;
	v = calloc(t->nwitnesses, sizeof *v);
	if (!v)
		return TL_ENOMEM;
	for (size_t i = 0; i < t->nwitnesses; i++)
		if (tl_vkey_parse(&v[k], t->witnesses[i], strlen(t->witnesses[i])) == 0 &&
		    v[k].type == TL_SIGTYPE_COSIG)
			k++;
	*out = v;
	*n = k;
	*quorum = (int)t->quorum;
	return 0;
}

/* ------------------------------------------------------------ output */

static const char *role_name(enum tl_role r)
{
	return r == TL_ROLE_SUPPLIER ? "supplier" : "customer";
}

static json_t *jtime(uint64_t ms)
{
	char iso[32];

	if (!ms)
		return json_null();
	cli_time_iso(iso, ms);
	return json_string(iso);
}

static json_t *jfact(const struct tl_fact *f)
{
	json_t *o;

	if (!f->present)
		return json_null();
	o = json_pack("{s:s,s:I,s:I}", "feed", role_name(f->feed), "seq", (json_int_t)f->seq,
	              "claimed_ms", (json_int_t)f->claimed_ms);
	json_object_set_new(o, "claimed", jtime(f->claimed_ms));
	json_object_set_new(o, "witnessed_ms",
	                    f->existed_by_ms ? json_integer((json_int_t)f->existed_by_ms)
	                                     : json_null());
	json_object_set_new(o, "witnessed", jtime(f->existed_by_ms));
	json_object_set_new(o, "not_before_ms",
	                    f->not_before_ms ? json_integer((json_int_t)f->not_before_ms)
	                                     : json_null());
	json_object_set_new(o, "proven", json_boolean(f->existed_by_ms != 0));
	return o;
}

static void print_fact(const char *what, const struct tl_fact *f)
{
	char c[32], w[32], nb[32];

	if (!f->present) {
		printf("    %-10s -\n", what);
		return;
	}
	cli_time_iso(c, f->claimed_ms);
	if (f->existed_by_ms)
		cli_time_iso(w, f->existed_by_ms);
	printf("    %-10s %-8s seq %-6" PRIu64 " claimed %s   witnessed %s%s", what,
	       role_name(f->feed), f->seq, c, f->existed_by_ms ? "by " : "",
	       f->existed_by_ms ? w : "not proven");
	if (f->not_before_ms) {
		cli_time_iso(nb, f->not_before_ms);
		printf(", not before %s", nb);
	}
	printf("\n");
}

static void claimed_text(const struct tl_late *l, int answered, char *out, size_t cap)
{
	switch (l->claimed) {
	case TL_VERDICT_ON_TIME:
		snprintf(out, cap, "on time");
		break;
	case TL_VERDICT_LATE:
		if (answered)
			snprintf(out, cap, "late by %" PRIu64 " day(s)", l->claimed_days_late);
		else
			snprintf(out, cap, "unanswered, %" PRIu64 " day(s) past the deadline",
			         l->claimed_days_late);
		break;
	default:
		snprintf(out, cap, answered ? "-" : "no answer, not due");
		break;
	}
}

static void witnessed_text(const struct tl_late *l, char *out, size_t cap)
{
	char t[32], words[64];

	switch (l->witnessed) {
	case TL_VERDICT_ON_TIME:
		snprintf(out, cap, "ON TIME (proven)");
		break;
	case TL_VERDICT_LATE:
		cli_time_iso(t, l->late_by_ms);
		cli_late_words(words, l->deadline_ms, l->late_by_ms);
		snprintf(out, cap, "%s (proven: %s at %s, after the deadline)", words,
		         l->answer_kind ? "not yet written" : "still unanswered", t);
		break;
	case TL_VERDICT_NOT_PROVEN:
		snprintf(out, cap, "not proven%s%s",
		         l->conflict ? " (the witnesses contradict each other)" : "",
		         !l->conflict && !l->deadline_ms ? " (the deadline itself is not witnessed)"
		                                         : "");
		break;
	default:
		snprintf(out, cap, "no answer, not due");
		break;
	}
}

static json_t *jfeed(const struct cli_chan_eval *e, size_t k, const struct tl_verify_feed *vf)
{
	const struct tl_wtime *wt = e->wt[k];
	json_t *ws = json_array(), *eq = json_array(), *is = json_array(), *o;
	char ra[65], rb[65];

	for (size_t w = 0; w < wt->nw; w++)
		json_array_append_new(ws, json_pack("{s:s,s:I,s:I,s:I}", "name", wt->w[w].vk.name,
		                                    "checkpoints",
		                                    (json_int_t)tl_wtime_witness_steps(wt, w),
		                                    "cosignatures", (json_int_t)wt->w[w].ncosigs,
		                                    "rejected", (json_int_t)wt->w[w].nbad));
	for (size_t i = 0; i < wt->nforks; i++) {
		tl_hex_encode(ra, wt->forks[i].root_a, TL_HASH_LEN);
		tl_hex_encode(rb, wt->forks[i].root_b, TL_HASH_LEN);
		json_array_append_new(eq, json_pack("{s:I,s:I,s:I,s:s,s:s}", "size",
		                                    (json_int_t)wt->forks[i].size, "checkpoint_a",
		                                    (json_int_t)wt->forks[i].a, "checkpoint_b",
		                                    (json_int_t)wt->forks[i].b, "root_a", ra,
		                                    "root_b", rb));
	}
	for (size_t i = 0; i < wt->issues_kept; i++)
		json_array_append_new(is, json_string(wt->issues[i].msg));
	o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:o,s:o}", "origin", wt->origin, "role",
	              role_name(e->role[k]), "records", (json_int_t)(vf ? vf->records : 0),
	              "checkpoints", (json_int_t)wt->ncheckpoints, "max_checkpoint",
	              (json_int_t)wt->max_size, "witnesses", ws, "equivocations", eq, "issues", is);
	return o;
}

/* Largest n such that entry n-1 has a witnessed time (the witnessed prefix). */
static uint64_t witnessed_prefix(const struct cli_chan_eval *e, size_t k, uint64_t n)
{
	while (n > 0 && e->wit[k][n - 1] == 0)
		n--;
	return n;
}

void cli_chan_eval_print(const struct cli_chan_eval *e, int json_mode, json_t *into)
{
	const struct tl_state *s = e->ws;
	json_t *arr = json_mode ? json_array() : NULL, *fnd = json_mode ? json_array() : NULL;

	for (size_t i = 0; i < s->nstmts; i++) {
		const struct tl_stmt *st = &s->stmts[i];
		const struct tl_late *l = &e->late[i];
		const char *ak = l->answer_kind == 1 ? "confirmed" : "disputed";
		char ct[160], wt[256], d1[32], d2[32];

		claimed_text(l, l->answer_kind != 0, ct, sizeof ct);
		witnessed_text(l, wt, sizeof wt);
		if (json_mode) {
			json_t *o = json_pack("{s:s,s:I,s:I,s:s,s:s}", "id", st->id, "version",
			                      (json_int_t)st->version, "seq", (json_int_t)st->seq,
			                      "leaf", st->leaf_hex, "status",
			                      tl_stmt_status_name(st->status));
			json_t *ans = jfact(&l->answer);
			if (l->answer.present)
				json_object_set_new(
				        ans, "kind",
				        json_string(l->answer_kind == 1 ? "confirm" : "dispute"));
			json_object_set_new(o, "sent", jfact(&l->sent));
			json_object_set_new(o, "seen", jfact(&l->seen));
			json_object_set_new(o, "viewed", jfact(&l->viewed));
			json_object_set_new(o, "answer", ans);
			json_t *dl = json_pack("{s:I,s:s}", "claimed_ms",
			                       (json_int_t)l->claimed_deadline_ms, "source",
			                       tl_time_src_name(l->deadline_src));
			json_object_set_new(dl, "claimed", jtime(l->claimed_deadline_ms));
			json_object_set_new(dl, "witnessed_ms",
			                    l->deadline_ms
			                            ? json_integer((json_int_t)l->deadline_ms)
			                            : json_null());
			json_object_set_new(dl, "witnessed", jtime(l->deadline_ms));
			json_object_set_new(o, "deadline", dl);
			json_object_set_new(o, "claimed",
			                    json_pack("{s:s,s:I,s:s}", "verdict",
			                              tl_verdict_name(l->claimed), "days_late",
			                              (json_int_t)l->claimed_days_late, "text",
			                              ct));
			json_t *w = json_pack("{s:s,s:b,s:I,s:b,s:s}", "verdict",
			                      tl_verdict_name(l->witnessed), "proven",
			                      l->witnessed == TL_VERDICT_ON_TIME ||
			                              l->witnessed == TL_VERDICT_LATE,
			                      "days_late", (json_int_t)l->days_late, "conflict",
			                      l->conflict, "text", wt);
			json_object_set_new(w, "evidence_ms",
			                    l->late_by_ms ? json_integer((json_int_t)l->late_by_ms)
			                                  : json_null());
			json_object_set_new(w, "absent_at_ms",
			                    l->absent_at_ms
			                            ? json_integer((json_int_t)l->absent_at_ms)
			                            : json_null());
			json_object_set_new(o, "witnessed", w);
			json_array_append_new(arr, o);
			continue;
		}
		printf("\nstatement %s v%" PRIu64 " (supplier seq %" PRIu64 ", leaf %.12s): %s\n",
		       st->id, st->version, st->seq, st->leaf_hex, tl_stmt_status_name(st->status));
		print_fact("sent", &l->sent);
		print_fact("seen", &l->seen);
		print_fact("viewed", &l->viewed);
		print_fact(l->answer.present ? ak : "answer", &l->answer);
		cli_time_iso(d1, l->claimed_deadline_ms);
		if (l->deadline_ms)
			cli_time_iso(d2, l->deadline_ms);
		printf("    %-10s claimed %s   witnessed %s (from the %s time)\n", "deadline", d1,
		       l->deadline_ms ? d2 : "not proven", tl_time_src_name(l->deadline_src));
		printf("    %-10s claimed: %s\n", "verdict", ct);
		printf("    %-10s witnessed: %s\n", "", wt);
	}
	for (size_t i = 0; i < s->nfindings; i++) {
		if (json_mode)
			json_array_append_new(fnd, json_pack("{s:s,s:I,s:s}", "feed",
			                                     role_name(s->findings[i].feed), "seq",
			                                     (json_int_t)s->findings[i].seq,
			                                     "finding", s->findings[i].msg));
		else
			printf("finding: %s feed seq %" PRIu64 ": %s\n",
			       role_name(s->findings[i].feed), s->findings[i].seq,
			       s->findings[i].msg);
	}
	if (json_mode) {
		json_object_set_new(into, "statements", arr);
		json_object_set_new(into, "findings", fnd);
	}
}

/* ------------------------------------------------------------ bundle */

struct bfeed {
	const char *origin;
	uint8_t *buf; /* decoded records, concatenated */
	size_t *off;
	const uint8_t **recs;
	size_t *lens;
	size_t n;
	const char **notes;
	size_t *nlens;
	size_t nnotes;
};

static void bfeed_release(struct bfeed *f)
{
	free(f->buf);
	free(f->off);
	free(f->recs);
	free(f->lens);
	free(f->notes);
	free(f->nlens);
}

/* Decodes a feed of a bundle that tl_verify_bundle has accepted. */
static int bfeed_load(struct bfeed *f, const json_t *fo)
{
	const json_t *jr = json_object_get(fo, "records"), *jc = json_object_get(fo, "checkpoints");
	size_t total = 0, pos = 0;

	memset(f, 0, sizeof *f);
	f->origin = json_string_value(json_object_get(fo, "origin"));
	f->n = json_array_size(jr);
	f->nnotes = json_array_size(jc);
	for (size_t i = 0; i < f->n; i++)
		total += json_string_length(json_array_get(jr, i)) / 4 * 3;
	f->buf = malloc(total ? total : 1);
	f->off = calloc(f->n + 1, sizeof *f->off);
	f->recs = calloc(f->n + 1, sizeof *f->recs);
	f->lens = calloc(f->n + 1, sizeof *f->lens);
	f->notes = calloc(f->nnotes + 1, sizeof *f->notes);
	f->nlens = calloc(f->nnotes + 1, sizeof *f->nlens);
	if (!f->buf || !f->off || !f->recs || !f->lens || !f->notes || !f->nlens)
		return TL_ENOMEM;
	for (size_t i = 0; i < f->n; i++) {
		const json_t *s = json_array_get(jr, i);
		size_t len = 0;
		int rc = tl_b64_decode(f->buf + pos, total - pos, &len, json_string_value(s),
		                       json_string_length(s));

		if (rc)
			return rc;
		f->lens[i] = len;
		pos += len;
	}
	for (size_t i = 0, p = 0; i < f->n; i++) {
		f->recs[i] = f->buf + p;
		p += f->lens[i];
	}
	for (size_t i = 0; i < f->nnotes; i++) {
		const json_t *s = json_array_get(jc, i);
		f->notes[i] = json_string_value(s);
		f->nlens[i] = json_string_length(s);
	}
	return 0;
}

static void progress(int on, const char *fmt, const char *a, uint64_t n)
{
	if (!on)
		return;
	fprintf(stderr, fmt, a, n);
	fflush(stderr);
}

static void print_issues(const struct tl_verify_report *r)
{
	size_t kept = r->nissues < r->issues_cap ? r->nissues : r->issues_cap;

	for (size_t i = 0; i < kept; i++) {
		const struct tl_verify_issue *is = &r->issues[i];
		fprintf(stderr, "INVALID");
		if (is->origin[0])
			fprintf(stderr, ": feed %s", is->origin);
		if (is->seq >= 0)
			fprintf(stderr, ": seq %lld", (long long)is->seq);
		if (is->size >= 0)
			fprintf(stderr, ": checkpoint size %lld", (long long)is->size);
		fprintf(stderr, ": %s\n", is->reason);
	}
	if (r->nissues > kept)
		fprintf(stderr, "... and %zu more problems\n", r->nissues - kept);
}

/* For a bundle that does not verify: two checkpoints of one size with
 * different roots, both signed by the feed key, are the equivocation proof
 * (DESIGN §5) the auditor should keep; say so, naming them. */
static void report_forks(const json_t *jfeeds, const struct tl_vkey *wits, size_t nw, int quorum,
                         uint64_t skew, uint64_t at_ms)
{
	struct tl_wtime_opts wo = {wits, nw, quorum > 0 ? (unsigned)quorum : 0, skew, at_ms / 1000};
	size_t nf = json_array_size(jfeeds);

	for (size_t k = 0; k < nf && k < 16; k++) {
		const json_t *fo = json_array_get(jfeeds, k),
		             *jc = json_object_get(fo, "checkpoints");
		const char *origin = json_string_value(json_object_get(fo, "origin"));
		size_t n = json_array_size(jc);
		const char **notes = calloc(n + 1, sizeof *notes);
		size_t *lens = calloc(n + 1, sizeof *lens), m = 0;
		struct tl_wtime *wt = NULL;

		for (size_t i = 0; notes && lens && i < n; i++) {
			const json_t *js = json_array_get(jc, i);
			if (!json_is_string(js))
				continue;
			notes[m] = json_string_value(js);
			lens[m++] = json_string_length(js);
		}
		if (origin && notes && lens &&
		    tl_wtime_build(&wt, origin, notes, lens, m, &wo) == 0) {
			for (size_t i = 0; i < wt->nforks; i++) {
				char ra[65], rb[65];
				tl_hex_encode(ra, wt->forks[i].root_a, TL_HASH_LEN);
				tl_hex_encode(rb, wt->forks[i].root_b, TL_HASH_LEN);
				fprintf(stderr,
				        "EQUIVOCATION: feed %s: checkpoint size %" PRIu64
				        ": two checkpoints signed by the feed key with different "
				        "roots "
				        "(%s, %s): keep this bundle, it proves the feed forked\n",
				        origin, wt->forks[i].size, ra, rb);
			}
		}
		tl_wtime_free(wt);
		free(notes);
		free(lens);
	}
}

static int run_audit(struct cli *c, const char *path, const struct tl_buf *in, struct tl_vkey *wits,
                     size_t nw, int quorum, uint64_t skew, uint64_t at_ms)
{
	struct tl_verify_report r;
	struct tl_verify_opts vo = {0};
	struct tl_wtime_opts wo = {0};
	struct cli_chan_eval e;
	struct bfeed bf[2];
	struct cli_feed_in fin[2];
	struct tl_vkey *bw = NULL;
	json_t *root = NULL, *jfeeds;
	json_error_t je;
	size_t nfeeds = 0, nbw = 0;
	int tty = isatty(2) && !c->json, rc, from_bundle = 0;

	memset(&r, 0, sizeof r);
	memset(&e, 0, sizeof e);
	memset(bf, 0, sizeof bf);
	root = json_loadb((const char *)in->data, in->len, JSON_REJECT_DUPLICATES, &je);
	if (!root || !json_is_object(root)) {
		rc = cli_fail(c, EXIT_INVALID, "%s is not a bundle: line %d: %s", path, je.line,
		              root ? "not a JSON object" : je.text);
		goto out;
	}
	/* Witnesses: the flags, else the bundle's own list (self-asserted). */
	if (!nw) {
		const json_t *jw = json_object_get(root, "witnesses"), *jq;
		size_t idx;
		json_t *it;

		from_bundle = 1;
		bw = calloc(json_array_size(jw) + 1, sizeof *bw);
		if (!bw) {
			rc = cli_fail(c, EXIT_ENV, "out of memory");
			goto out;
		}
		json_array_foreach(jw, idx, it)
		{
			if (json_is_string(it) &&
			    tl_vkey_parse(&bw[nbw], json_string_value(it),
			                  json_string_length(it)) == 0 &&
			    bw[nbw].type == TL_SIGTYPE_COSIG)
				nbw++;
		}
		wits = bw;
		nw = nbw;
		jq = json_object_get(root, "quorum");
		if (quorum < 0) {
			from_bundle = 2; /* the quorum is the bundle's too */
			quorum = json_is_integer(jq) && json_integer_value(jq) >= 0 &&
			                         json_integer_value(jq) <= 1000
			                 ? (int)json_integer_value(jq)
			                 : 0;
		}
	}
	if (quorum < 0)
		quorum = nw ? (int)nw : 0;
	if ((size_t)quorum > nw) {
		/* the bundle's own numbers are its content (exit 1), flags are usage */
		rc = from_bundle == 2 ? cli_fail(c, EXIT_INVALID,
		                                 "%s: its quorum %d is more than its %zu usable "
		                                 "witness key(s) (type 0x04)",
		                                 path, quorum, nw)
		                      : cli_usage(c, "quorum %d is more than the %zu witness key(s)",
		                                  quorum, nw);
		goto out;
	}
	jfeeds = json_object_get(root, "feeds");
	nfeeds = json_array_size(jfeeds);

	/* 1. Verify everything; a quorum is not required here (too few
	 * cosignatures is "not proven", not invalid), but every cosignature by
	 * a given witness must verify and not be dated in the future. */
	progress(tty, "audit: verifying %s (%" PRIu64 " feeds)...\n", path, nfeeds);
	vo.witnesses = nw ? wits : NULL;
	vo.nwitnesses = nw;
	vo.quorum = 0;
	vo.now = (int64_t)(at_ms / 1000);
	rc = tl_verify_bundle((const char *)in->data, in->len, &vo, &r);
	if (rc == 0 && (nfeeds < 1 || nfeeds > 2)) {
		rc = cli_fail(c, EXIT_INVALID,
		              "%s holds %zu feeds; an audit takes the two feeds of one channel",
		              path, nfeeds);
		goto out;
	}
	if (rc) {
		print_issues(&r);
		report_forks(jfeeds, wits, nw, quorum, skew, at_ms);
		rc = cli_fail(c, EXIT_INVALID, "%s does not verify (%zu problem(s)); no audit",
		              path, r.nissues);
		goto out;
	}

	/* 2. Records and checkpoints, witnessed times, states, verdicts. */
	for (size_t k = 0; k < nfeeds; k++) {
		if ((rc = bfeed_load(&bf[k], json_array_get(jfeeds, k))) != 0) {
			rc = cli_fail(c, EXIT_ENV, "reading %s: %s", path, tl_strerror(rc));
			goto out;
		}
		fin[k] = (struct cli_feed_in){bf[k].origin, bf[k].recs,  bf[k].lens,  bf[k].n,
		                              bf[k].notes,  bf[k].nlens, bf[k].nnotes};
	}
	if (nfeeds == 2) {
		struct tl_origin a, b;
		if (tl_origin_parse(&a, fin[0].origin, strlen(fin[0].origin)) != 0 ||
		    tl_origin_parse(&b, fin[1].origin, strlen(fin[1].origin)) != 0 ||
		    memcmp(a.channel, b.channel, TL_CHANNEL_LEN) != 0) {
			rc = cli_fail(c, EXIT_INVALID, "the two feeds of %s are not of one channel",
			              path);
			goto out;
		}
	}
	wo.witnesses = wits;
	wo.nwitnesses = nw;
	wo.quorum = (unsigned)quorum;
	wo.skew_s = skew;
	wo.now_s = at_ms / 1000;
	progress(tty, "audit: %s%" PRIu64 " records: witnessed times and channel state...\n", "",
	         (uint64_t)(fin[0].n + (nfeeds > 1 ? fin[1].n : 0)));
	rc = cli_chan_eval(&e, fin, nfeeds, &wo, at_ms);
	if (rc) {
		if (rc == TL_ENOMEM)
			rc = cli_fail(c, EXIT_ENV, "out of memory computing the audit");
		else
			rc = cli_fail(c, EXIT_INVALID, "feed %s: seq %zu: %s",
			              fin[e.bad_feed].origin, e.bad_seq, tl_strerror(rc));
		goto out;
	}

	/* 3. Report. */
	if (c->json) {
		json_t *o = json_object(), *fa = json_array(), *wn = json_array();
		char *s;

		for (size_t i = 0; i < nw; i++)
			json_array_append_new(wn, json_string(wits[i].name));
		for (size_t k = 0; k < nfeeds; k++) {
			json_t *jf = jfeed(&e, k, k < r.nfeeds ? &r.feeds[k] : NULL);
			uint64_t wp = witnessed_prefix(&e, k, fin[k].n);
			json_object_set_new(jf, "witnessed_size", json_integer((json_int_t)wp));
			json_array_append_new(fa, jf);
		}
		json_object_set_new(o, "file", json_string(path));
		json_object_set_new(o, "valid", json_true());
		json_object_set_new(o, "at_ms", json_integer((json_int_t)at_ms));
		json_object_set_new(o, "quorum", json_integer(quorum));
		json_object_set_new(o, "skew_s", json_integer((json_int_t)skew));
		json_object_set_new(o, "witnesses", wn);
		json_object_set_new(o, "witnesses_from_bundle", json_boolean(from_bundle));
		json_object_set_new(o, "feeds", fa);
		cli_chan_eval_print(&e, 1, o);
		s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		char at[32];

		cli_time_iso(at, at_ms);
		printf("audit of %s at %s: VALID (every record, checkpoint and cosignature "
		       "verifies)\n",
		       path, at);
		if (!nw || !quorum)
			printf("witnesses: none (quorum 0): every time below is the author's claim "
			       "only\n");
		else
			printf("witnesses: %zu key(s)%s, quorum %d, clock skew allowed %" PRIu64
			       " s\n",
			       nw,
			       from_bundle ? " taken from the bundle itself (pass --witness to use "
			                     "keys you trust)"
			                   : "",
			       quorum, skew);
		for (size_t k = 0; k < nfeeds; k++) {
			const struct tl_wtime *wt = e.wt[k];
			printf("feed %s %s\n  %zu records, %zu checkpoints (largest size %" PRIu64
			       "), witnessed up to size %" PRIu64 "\n",
			       role_name(e.role[k]), wt->origin, fin[k].n, wt->ncheckpoints,
			       wt->max_size, witnessed_prefix(&e, k, fin[k].n));
			for (size_t w = 0; w < wt->nw; w++)
				printf("  witness %s: %zu checkpoint size(s) cosigned%s\n",
				       wt->w[w].vk.name, tl_wtime_witness_steps(wt, w),
				       wt->w[w].nbad ? " (some cosignatures rejected)" : "");
			for (size_t i = 0; i < wt->nforks; i++)
				printf("  EQUIVOCATION: checkpoints %zu and %zu are both signed "
				       "for size "
				       "%" PRIu64 " with different roots\n",
				       wt->forks[i].a, wt->forks[i].b, wt->forks[i].size);
			for (size_t i = 0; i < wt->issues_kept; i++)
				if (wt->issues[i].kind != TL_WT_EQUIVOCAL)
					printf("  note: %s\n", wt->issues[i].msg);
		}
		if (!e.ws->nstmts)
			printf("\nno statements in the channel\n");
		cli_chan_eval_print(&e, 0, NULL);
	}
	rc = EXIT_OK;
out:
	cli_chan_eval_release(&e);
	for (size_t k = 0; k < 2; k++)
		bfeed_release(&bf[k]);
	free(bw);
	json_decref(root);
	tl_verify_report_release(&r);
	return rc;
}

int cmd_audit(int argc, char **argv)
{
	static const char *const allowed[] = {"--witness", "--quorum", "--skew", "--at", NULL};
	struct cli c = {.cmd = "audit"};
	struct tl_vkey *wits = NULL;
	struct tl_buf in;
	size_t nw = 0;
	uint64_t q = 0, skew = TL_WTIME_SKEW_DEFAULT, at = cli_now_ms();
	int quorum = -1, rc;

	tl_buf_init(&in, 1);
	if ((rc = cli_parse(&c, argc, argv, allowed, NULL)) != 0)
		return rc;
	if (c.npos != 1) {
		rc = cli_usage(&c, "usage: tally audit BUNDLE [--witness VKEY]... [--quorum K] "
		                   "[--skew SECONDS] [--at UNIX_MS] [--json]");
		goto out;
	}
	if ((rc = cli_witness_keys(&c, &wits, &nw)) != 0)
		goto out;
	if (cli_opt(&c, "--quorum")) {
		if ((rc = cli_u64(&c, "--quorum", cli_opt(&c, "--quorum"), &q)) != 0)
			goto out;
		if (q > 1000) {
			rc = cli_usage(&c, "--quorum %llu is larger than any witness set",
			               (unsigned long long)q);
			goto out;
		}
		quorum = (int)q;
	}
	if (cli_opt(&c, "--skew")) {
		if ((rc = cli_u64(&c, "--skew", cli_opt(&c, "--skew"), &skew)) != 0)
			goto out;
		if (skew > AUDIT_SKEW_MAX) {
			rc = cli_usage(&c, "--skew is at most %llu seconds",
			               (unsigned long long)AUDIT_SKEW_MAX);
			goto out;
		}
	}
	if (cli_opt(&c, "--at") && (rc = cli_u64(&c, "--at (Unix ms)", cli_opt(&c, "--at"), &at)))
		goto out;
	if (nw && quorum < 0) {
		rc = cli_usage(&c, "give --quorum K with --witness keys");
		goto out;
	}
	if ((rc = cli_read_file(&c, c.pos[0], AUDIT_INPUT_MAX, &in)) != 0)
		goto out;
	rc = run_audit(&c, c.pos[0], &in, wits, nw, quorum, skew, at);
out:
	tl_buf_release(&in);
	free(wits);
	cli_close(&c);
	return rc;
}

/* ------------------------------------------------ feeds from the store */

static int load_rec(void *ctx, uint64_t seq, const uint8_t *rec, size_t len,
                    const uint8_t leaf[TL_HASH_LEN])
{
	struct cli_loaded *l = ctx;
	(void)seq;
	(void)leaf;
	if (l->n + 1 >= l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 1024;
		size_t *no = realloc(l->off, nc * sizeof *no);
		if (!no)
			return TL_ENOMEM;
		l->off = no;
		l->cap = nc;
	}
	l->off[l->n++] = l->data.len;
	l->off[l->n] = l->data.len + len;
	return tl_buf_add(&l->data, rec, len);
}

static int load_cp(void *ctx, uint64_t size, const char *note, size_t len)
{
	struct cli_loaded *l = ctx;
	(void)size;
	if (l->nn + 1 >= l->ncap) {
		size_t nc = l->ncap ? l->ncap * 2 : 64;
		size_t *no = realloc(l->noff, nc * sizeof *no);
		if (!no)
			return TL_ENOMEM;
		l->noff = no;
		l->ncap = nc;
	}
	l->noff[l->nn++] = l->notes.len;
	l->noff[l->nn] = l->notes.len + len;
	return tl_buf_add(&l->notes, note, len);
}

void cli_loaded_release(struct cli_loaded *l)
{
	tl_buf_release(&l->data);
	tl_buf_release(&l->notes);
	free(l->off);
	free(l->noff);
	free(l->recs);
	free(l->lens);
	free(l->np);
	free(l->nl);
	memset(l, 0, sizeof *l);
}

int cli_loaded_read(struct tl_store *s, const struct tl_feed *f, struct cli_loaded *l)
{
	int rc;

	memset(l, 0, sizeof *l);
	tl_buf_init(&l->data, (size_t)1 << 40);
	tl_buf_init(&l->notes, (size_t)1 << 36);
	memcpy(l->origin, f->origin, sizeof l->origin);
	if ((rc = tl_store_scan(s, f, 0, f->head.size, load_rec, l)) != 0 ||
	    (rc = tl_store_checkpoint_scan(s, f, load_cp, l)) != 0)
		return rc;
	l->recs = calloc(l->n + 1, sizeof *l->recs);
	l->lens = calloc(l->n + 1, sizeof *l->lens);
	l->np = calloc(l->nn + 1, sizeof *l->np);
	l->nl = calloc(l->nn + 1, sizeof *l->nl);
	if (!l->recs || !l->lens || !l->np || !l->nl)
		return TL_ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		l->recs[i] = l->data.data + l->off[i];
		l->lens[i] = l->off[i + 1] - l->off[i];
	}
	for (size_t i = 0; i < l->nn; i++) {
		l->np[i] = (const char *)l->notes.data + l->noff[i];
		l->nl[i] = l->noff[i + 1] - l->noff[i];
	}
	l->in = (struct cli_feed_in){l->origin, l->recs, l->lens, l->n, l->np, l->nl, l->nn};
	return 0;
}
