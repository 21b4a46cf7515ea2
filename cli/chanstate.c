/*
 * chanstate.c — the channel state as every command computes it from the
 * store (DESIGN §4 and §6, issue 5 item 3): the channel's two feeds as
 * stored, the witnessed time of every entry from the stored (cosigned)
 * checkpoints under the channel's witness set and quorum, the state built
 * with those times, the state of the authors' claims alone, and the
 * lateness verdicts. `tally channel state`, `tally statement
 * list|show|adjust|export`, `tally terms` and `tally close` all use
 * cli_chanstate_load (or its wrapper cli_channel_state), so that they agree.
 *
 * The witness set: the --witness keys and --quorum when the command was
 * given them, else those of the agreed terms in force (terms.propose
 * "witnesses" and "quorum"; --quorum alone overrides the terms' quorum),
 * else none — then every time is the author's claim and nothing is proven.
 * Clock skew: cosignatures dated more than TL_WTIME_SKEW_DEFAULT (600 s)
 * after the later of the evaluation time and this machine's clock are
 * refused (docs/protocol.md, "Witnessed time"); with --at in the past the
 * state is evaluated then, but cosignatures made since are still evidence.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/state.h"
#include "consensus/wtime.h"

#define CS_QUORUM_MAX 1000u

void cli_chanstate_release(struct cli_chanstate *cs)
{
	if (!cs)
		return;
	cli_chan_eval_release(&cs->e);
	cli_loaded_release(&cs->feed[0]);
	cli_loaded_release(&cs->feed[1]);
	free(cs->wits);
	memset(cs, 0, sizeof *cs);
}

/* The state of the authors' claims (no witnessed times), with the place
 * of a record the builder refuses. Exit code. */
static int build_claimed(struct cli *c, struct cli_chanstate *cs, unsigned how,
                         struct tl_state **out)
{
	struct tl_state_builder *b = NULL;
	int rc;

	*out = NULL;
	if ((rc = tl_state_builder_new(&b, NULL)) != 0)
		return cli_fail(c, EXIT_ENV, "computing the channel state: %s", tl_strerror(rc));
	for (int k = 0; k < 1 + cs->have_peer; k++)
		for (size_t i = 0; i < cs->feed[k].n; i++)
			if ((rc = tl_state_add(b, cs->feed[k].recs[i], cs->feed[k].lens[i], 0)) !=
			    0) {
				tl_state_builder_free(b);
				if (rc == TL_ENOMEM)
					return cli_fail(c, EXIT_ENV, "out of memory");
				if (how & CLI_CS_QUIET)
					return EXIT_INVALID;
				return cli_fail(c, EXIT_INVALID, "feed %s: seq %zu: %s",
				                cs->feed[k].origin, i, tl_strerror(rc));
			}
	rc = tl_state_build(b, cs->at_ms, out);
	tl_state_builder_free(b);
	if (rc)
		return cli_fail(c, EXIT_ENV, "computing the channel state: %s", tl_strerror(rc));
	return 0;
}

/* --witness and --quorum, if the command takes them and was given them. */
static int witness_flags(struct cli *c, struct cli_chanstate *cs, int *quorum)
{
	uint64_t q;
	int rc;

	*quorum = -1;
	if ((rc = cli_witness_keys(c, &cs->wits, &cs->nwits)) != 0)
		return rc;
	if (cli_opt(c, "--quorum")) {
		if ((rc = cli_u64(c, "--quorum", cli_opt(c, "--quorum"), &q)) != 0)
			return rc;
		if (q > CS_QUORUM_MAX)
			return cli_usage(c, "--quorum %" PRIu64 " is larger than any witness set",
			                 q);
		*quorum = (int)q;
	}
	if (cs->nwits && *quorum < 0)
		return cli_usage(c, "give --quorum K with the --witness keys (K of the %zu)",
		                 cs->nwits);
	if (cs->nwits && (size_t)*quorum > cs->nwits)
		return cli_usage(c, "--quorum %d is more than the %zu --witness key(s)", *quorum,
		                 cs->nwits);
	if (cs->nwits)
		cs->wsrc = CLI_WSRC_FLAGS;
	return 0;
}

static int load_feed(struct cli *c, const struct tl_feed *f, struct cli_loaded *l)
{
	int rc = cli_loaded_read(c->store, f, l);

	if (rc == TL_ENOMEM)
		return cli_fail(c, EXIT_ENV, "out of memory reading feed %s", f->origin);
	return rc ? cli_store_fail(c, rc) : 0;
}

/* Witness set, witnessed times, both states, lateness: the feeds are loaded. */
static int evaluate(struct cli *c, struct cli_chanstate *cs, int quorum, unsigned how)
{
	struct tl_wtime_opts wo = {0};
	struct cli_feed_in fin[2];
	struct tl_state *claimed = NULL;
	uint64_t now = cli_now_ms();
	int rc;

	/* The witness set: the flags, else the agreed terms in force. */
	if (cs->wsrc == CLI_WSRC_NONE) {
		int tq = 0;
		if ((rc = build_claimed(c, cs, how, &claimed)) != 0)
			return rc;
		if (!(how & CLI_CS_CLAIMED) &&
		    cli_terms_witnesses(claimed, &cs->wits, &cs->nwits, &tq) != 0) {
			tl_state_free(claimed);
			return cli_fail(c, EXIT_ENV, "out of memory");
		}
		if (cs->nwits) {
			cs->wsrc = CLI_WSRC_TERMS;
			if (quorum > (int)cs->nwits) {
				tl_state_free(claimed);
				return cli_usage(
				        c,
				        "--quorum %d is more than the %zu witness key(s) of "
				        "the agreed terms",
				        quorum, cs->nwits);
			}
			quorum = quorum >= 0 ? quorum : tq;
		}
	}
	if (cs->wsrc == CLI_WSRC_NONE) {
		/* Nothing can be witnessed: the claims are the state. */
		cs->e.nfeeds = 1 + (size_t)cs->have_peer;
		cs->e.ws = claimed;
		if ((rc = tl_late_eval(&cs->e.late, cs->e.ws, cs->e.ws, NULL, NULL, cs->at_ms)) !=
		    0)
			return cli_fail(c, EXIT_ENV, "computing lateness: %s", tl_strerror(rc));
		return 0;
	}
	tl_state_free(claimed);
	cs->quorum = quorum > 0 ? (unsigned)quorum : 0;
	wo.witnesses = cs->wits;
	wo.nwitnesses = cs->nwits;
	wo.quorum = cs->quorum;
	wo.skew_s = cs->skew_s;
	wo.now_s = (cs->at_ms > now ? cs->at_ms : now) / 1000;
	fin[0] = cs->feed[0].in;
	fin[1] = cs->feed[1].in;
	if ((rc = cli_chan_eval(&cs->e, fin, 1 + (size_t)cs->have_peer, &wo, cs->at_ms)) != 0) {
		if (rc == TL_ENOMEM)
			return cli_fail(c, EXIT_ENV, "out of memory computing witnessed times");
		if (how & CLI_CS_QUIET)
			return EXIT_INVALID;
		return cli_fail(c, EXIT_INVALID, "feed %s: seq %zu: %s", fin[cs->e.bad_feed].origin,
		                cs->e.bad_seq, tl_strerror(rc));
	}
	return 0;
}

int cli_chanstate_feeds(struct cli *c, const struct tl_feed *feeds, size_t n, uint64_t at_ms,
                        unsigned how, struct cli_chanstate *cs)
{
	int rc, quorum = -1;

	memset(cs, 0, sizeof *cs);
	cs->at_ms = at_ms;
	cs->skew_s = TL_WTIME_SKEW_DEFAULT;
	if (!(how & CLI_CS_CLAIMED) && (rc = witness_flags(c, cs, &quorum)) != 0)
		goto fail;
	if (n < 1 || n > 2) {
		rc = cli_fail(c, EXIT_INVALID, "a channel has two feeds, not %zu", n);
		goto fail;
	}
	cs->own = feeds[0];
	if (n == 2)
		memcpy(cs->peer_origin, feeds[1].origin, sizeof cs->peer_origin);
	else
		tl_origin_format(cs->peer_origin, feeds[0].peer, feeds[0].o.channel);
	if ((rc = load_feed(c, &feeds[0], &cs->feed[0])) != 0)
		goto fail;
	if (n == 2) {
		cs->have_peer = 1;
		if ((rc = load_feed(c, &feeds[1], &cs->feed[1])) != 0)
			goto fail;
	}
	if ((rc = evaluate(c, cs, quorum, how)) != 0)
		goto fail;
	cs->st = cs->e.ws;
	cs->claimed = cs->e.cs ? cs->e.cs : cs->e.ws;
	return 0;
fail:
	cli_chanstate_release(cs);
	return rc;
}

int cli_chanstate_load(struct cli *c, const char *which, uint64_t at_ms, struct cli_chanstate *cs)
{
	struct tl_feed f[2];
	char peer[TL_ORIGIN_LEN + 1];
	size_t n = 1;
	int rc;

	memset(cs, 0, sizeof *cs);
	if ((rc = cli_own_feed(c, which, NULL, NULL, &f[0])) != 0)
		return rc;
	tl_origin_format(peer, f[0].peer, f[0].o.channel);
	rc = tl_store_feed_get(c->store, peer, &f[1]);
	if (rc == 0)
		n = 2;
	else if (rc != TL_ENOTFOUND) /* not found: nothing received from the other side yet */
		return cli_store_fail(c, rc);
	return cli_chanstate_feeds(c, f, n, at_ms, 0, cs);
}

int cli_channel_state(struct cli *c, const char *which, uint64_t at_ms, struct tl_feed *own,
                      struct tl_state **out)
{
	struct cli_chanstate cs;
	int rc;

	*out = NULL;
	if ((rc = cli_chanstate_load(c, which, at_ms, &cs)) != 0)
		return rc;
	*own = cs.own;
	*out = cs.e.ws; /* the state owns everything it points to */
	cs.e.ws = NULL;
	cli_chanstate_release(&cs);
	return 0;
}

/* ------------------------------------------------------------ output */

static const char *role_name(enum tl_role r)
{
	return r == TL_ROLE_SUPPLIER ? "supplier" : "customer";
}

const char *cli_time_src_code(enum tl_time_src s)
{
	switch (s) {
	case TL_TIME_CLAIMED:
		return "claimed";
	case TL_TIME_SEEN_CLAIMED:
		return "seen_claimed";
	case TL_TIME_SEEN_WITNESSED:
		return "seen_witnessed";
	case TL_TIME_WITNESSED:
		return "witnessed";
	}
	return "?";
}

static const char *src_text(enum tl_time_src s)
{
	switch (s) {
	case TL_TIME_CLAIMED:
		return "the statement's claimed time";
	case TL_TIME_SEEN_CLAIMED:
		return "the claimed time of the customer's receipt";
	case TL_TIME_SEEN_WITNESSED:
		return "the witnessed time of the customer's receipt";
	case TL_TIME_WITNESSED:
		return "the statement's witnessed time";
	}
	return "?";
}

static json_t *jtime(uint64_t ms)
{
	char iso[32];

	if (!ms)
		return json_null();
	cli_time_iso(iso, ms);
	return json_string(iso);
}

static json_t *jms(uint64_t ms)
{
	return ms ? json_integer((json_int_t)ms) : json_null();
}

static json_t *jfact(const struct tl_fact *f)
{
	json_t *o;

	if (!f->present)
		return json_null();
	o = json_pack("{s:s,s:I,s:I}", "feed", role_name(f->feed), "seq", (json_int_t)f->seq,
	              "claimed_ms", (json_int_t)f->claimed_ms);
	json_object_set_new(o, "claimed", jtime(f->claimed_ms));
	json_object_set_new(o, "witnessed_ms", jms(f->existed_by_ms));
	json_object_set_new(o, "witnessed", jtime(f->existed_by_ms));
	json_object_set_new(o, "not_before_ms", jms(f->not_before_ms));
	json_object_set_new(o, "proven", json_boolean(f->existed_by_ms != 0));
	return o;
}

void cli_late_text(const struct tl_late *l, char *claimed, char *proven, size_t cap)
{
	char t[32], d[32], words[64];

	switch (l->claimed) {
	case TL_VERDICT_ON_TIME:
		snprintf(claimed, cap, "on time");
		break;
	case TL_VERDICT_LATE:
		if (l->answer_kind)
			snprintf(claimed, cap, "late by %" PRIu64 " day(s)", l->claimed_days_late);
		else
			snprintf(claimed, cap, "unanswered, %" PRIu64 " day(s) past the deadline",
			         l->claimed_days_late);
		break;
	default:
		snprintf(claimed, cap, "%s", l->answer_kind ? "-" : "no answer, not late");
		break;
	}
	switch (l->witnessed) {
	case TL_VERDICT_ON_TIME:
		cli_time_iso(t, l->answer.existed_by_ms);
		cli_time_iso(d, l->deadline_ms);
		snprintf(proven, cap, "ON TIME, proven: the answer existed by %s, deadline %s", t,
		         d);
		break;
	case TL_VERDICT_LATE:
		cli_time_iso(t, l->late_by_ms);
		cli_late_words(words, l->deadline_ms, l->late_by_ms);
		if (!l->answer_kind)
			snprintf(proven, cap,
			         "%s, proven: the witnesses saw the customer's feed still without "
			         "an answer at %s",
			         words, t);
		else if (l->late_by_ms == l->absent_at_ms)
			snprintf(proven, cap,
			         "%s, proven: the witnesses saw the customer's feed without the "
			         "answer at %s",
			         words, t);
		else
			snprintf(proven, cap, "%s, proven: the answer was written after %s", words, t);
		break;
	case TL_VERDICT_NOT_PROVEN:
		snprintf(proven, cap, "not proven (%s)",
		         l->conflict       ? "the witnesses contradict each other"
		         : !l->deadline_ms ? "the deadline itself is not witnessed"
		         : l->answer_kind  ? "the answer has no witnessed time, and no quorum "
		                             "saw the feed without it after the deadline"
		                           : "no quorum has seen the customer's feed since the "
		                             "deadline");
		break;
	default:
		snprintf(proven, cap, "-");
		break;
	}
}

/* Short forms for the list: "on time", "late 3d" (claimed: started days
 * past the deadline), "late >4d" (proven: more than 4 whole days past the
 * deadline, a lower bound; "late" when under a day), "not proven", "-". */
static void short_text(enum tl_verdict v, uint64_t days, int answered, int bound, char *out,
                       size_t cap)
{
	const char *what = answered ? "late" : "overdue";

	switch (v) {
	case TL_VERDICT_ON_TIME:
		snprintf(out, cap, "on time");
		break;
	case TL_VERDICT_LATE:
		if (bound && days == 0)
			snprintf(out, cap, "%s", what);
		else
			snprintf(out, cap, "%s %s%" PRIu64 "d", what, bound ? ">" : "", days);
		break;
	case TL_VERDICT_NOT_PROVEN:
		snprintf(out, cap, "not proven");
		break;
	default:
		snprintf(out, cap, "-");
		break;
	}
}

void cli_late_short(const struct tl_late *l, char *claimed, char *proven, size_t cap)
{
	short_text(l->claimed, l->claimed_days_late, l->answer_kind != 0, 0, claimed, cap);
	uint64_t whole = l->late_by_ms > l->deadline_ms
	                         ? (l->late_by_ms - l->deadline_ms) / TL_DAY_MS
	                         : 0;
	short_text(l->witnessed, whole, l->answer_kind != 0, 1, proven, cap);
}

json_t *cli_late_json(const struct cli_chanstate *cs, size_t i)
{
	const struct tl_late *l = &cs->e.late[i];
	char ct[256], wt[256];
	json_t *o = json_object(), *ans = jfact(&l->answer), *dl, *w;

	cli_late_text(l, ct, wt, sizeof ct);
	if (l->answer.present)
		json_object_set_new(ans, "kind",
		                    json_string(l->answer_kind == 1 ? "confirm" : "dispute"));
	json_object_set_new(o, "sent", jfact(&l->sent));
	json_object_set_new(o, "seen", jfact(&l->seen));
	json_object_set_new(o, "viewed", jfact(&l->viewed));
	json_object_set_new(o, "answer", ans);
	dl = json_pack("{s:I,s:s,s:b}", "claimed_ms", (json_int_t)l->claimed_deadline_ms, "source",
	               cli_time_src_code(l->deadline_src), "proven", l->deadline_ms != 0);
	json_object_set_new(dl, "claimed", jtime(l->claimed_deadline_ms));
	json_object_set_new(dl, "witnessed_ms", jms(l->deadline_ms));
	json_object_set_new(dl, "witnessed", jtime(l->deadline_ms));
	json_object_set_new(o, "deadline", dl);
	json_object_set_new(o, "claimed",
	                    json_pack("{s:s,s:I,s:s}", "verdict", tl_verdict_name(l->claimed),
	                              "days_late", (json_int_t)l->claimed_days_late, "text", ct));
	w = json_pack("{s:s,s:b,s:I,s:b,s:s}", "verdict", tl_verdict_name(l->witnessed), "proven",
	              l->witnessed == TL_VERDICT_ON_TIME || l->witnessed == TL_VERDICT_LATE,
	              "days_late", (json_int_t)l->days_late, "conflict", l->conflict, "text", wt);
	json_object_set_new(w, "evidence_ms", jms(l->late_by_ms));
	json_object_set_new(w, "absent_at_ms", jms(l->absent_at_ms));
	json_object_set_new(o, "witnessed", w);
	return o;
}

json_t *cli_witnesses_json(const struct cli_chanstate *cs)
{
	json_t *keys = json_array(), *issues = json_array();

	for (size_t i = 0; i < cs->nwits; i++)
		json_array_append_new(keys, json_string(cs->wits[i].name));
	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; cs->e.wt[k] && i < cs->e.wt[k]->issues_kept; i++)
			json_array_append_new(issues, json_string(cs->e.wt[k]->issues[i].msg));
	return json_pack("{s:s,s:I,s:o,s:I,s:o}", "source",
	                 cs->wsrc == CLI_WSRC_FLAGS   ? "flags"
	                 : cs->wsrc == CLI_WSRC_TERMS ? "terms"
	                                              : "none",
	                 "quorum", (json_int_t)cs->quorum, "keys", keys, "skew_s",
	                 (json_int_t)cs->skew_s, "issues", issues);
}

void cli_witnesses_print(const struct cli_chanstate *cs, const char *indent)
{
	if (cs->wsrc == CLI_WSRC_NONE) {
		printf("%sno witness set (the agreed terms name none; give --witness VKEY... "
		       "--quorum K): every time is the author's own claim, nothing is proven\n",
		       indent);
		return;
	}
	printf("%sproven = witnessed by at least %u of %zu witnesses (%s); claimed = the "
	       "author's own clock, not evidence\n",
	       indent, cs->quorum, cs->nwits,
	       cs->wsrc == CLI_WSRC_TERMS ? "from the agreed terms" : "given with --witness");
	if (cs->quorum == 0)
		printf("%squorum 0: nothing is proven\n", indent);
	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; cs->e.wt[k] && i < cs->e.wt[k]->issues_kept; i++)
			printf("%snote: %s\n", indent, cs->e.wt[k]->issues[i].msg);
}

static void print_fact(const char *what, const struct tl_fact *f, const char *indent)
{
	char c[32], w[48], nb[32];

	if (!f->present) {
		printf("%s%-10s -\n", indent, what);
		return;
	}
	cli_time_iso(c, f->claimed_ms);
	if (f->existed_by_ms) {
		cli_time_iso(nb, f->existed_by_ms);
		snprintf(w, sizeof w, "by %s", nb);
	} else {
		snprintf(w, sizeof w, "not proven");
	}
	printf("%s%-10s %-8s %-6" PRIu64 " %-24s  %s", indent, what, role_name(f->feed), f->seq, c,
	       w);
	if (f->not_before_ms) {
		cli_time_iso(nb, f->not_before_ms);
		printf(", not before %s", nb);
	}
	printf("\n");
}

void cli_late_print(const struct cli_chanstate *cs, size_t i, const char *indent)
{
	const struct tl_late *l = &cs->e.late[i];
	char ct[256], wt[256], d1[32], d2[48];

	cli_late_text(l, ct, wt, sizeof ct);
	printf("%s%-10s %-8s %-6s %-24s  %s\n", indent, "EVENT", "FEED", "SEQ", "CLAIMED",
	       "PROVEN (existed by)");
	print_fact("sent", &l->sent, indent);
	print_fact("seen", &l->seen, indent);
	print_fact("viewed", &l->viewed, indent);
	print_fact(!l->answer.present    ? "answer"
	           : l->answer_kind == 1 ? "confirmed"
	                                 : "disputed",
	           &l->answer, indent);
	cli_time_iso(d1, l->claimed_deadline_ms);
	if (l->deadline_ms)
		cli_time_iso(d2, l->deadline_ms);
	else
		snprintf(d2, sizeof d2, "not proven");
	printf("%s%-10s %-8s %-6s %-24s  %s\n", indent, "deadline", "", "", d1, d2);
	printf("%s           the deadline counts from %s\n", indent, src_text(l->deadline_src));
	printf("%sverdict, claimed: %s\n", indent, ct);
	printf("%sverdict, proven:  %s\n", indent, wt);
}
