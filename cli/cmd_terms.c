/*
 * cmd_terms.c — the terms of a channel and closing a statement (issue 4):
 *   tally terms propose|accept|show
 *   tally close STATEMENT_LEAF --channel C
 * Terms are proposed by one side and accepted by the other; until then the
 * documented defaults apply and are shown as unilateral (docs/protocol.md,
 * "Reconciliation entries"). Every body is checked with the state machine's
 * own reader (tl_terms_parse) before it is appended, and every refusal is
 * decided on the channel state as both nodes compute it.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "consensus/state.h"

static const char *const weekdays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

/* --cycle monthly:N | weekly:DAY | cron:RULE into the "cycle" map. */
static int cycle_opt(struct cli *c, const char *v, json_t *cycle)
{
	const char *colon = strchr(v, ':');
	uint64_t n;
	if (!colon)
		goto bad;
	if (strncmp(v, "monthly:", 8) == 0) {
		if (cli_u64(c, "--cycle monthly:DAY", colon + 1, &n) != 0)
			return EXIT_USAGE;
		if (n < 1 || n > 31)
			return cli_usage(c,
			                 "--cycle monthly:DAY takes a day 1..31 (a shorter month "
			                 "uses its last day), not %llu",
			                 (unsigned long long)n);
		json_object_set_new(cycle, "every", json_string("month"));
		json_object_set_new(cycle, "day", json_integer((json_int_t)n));
		return 0;
	}
	if (strncmp(v, "weekly:", 7) == 0) {
		for (int i = 0; i < 7; i++)
			if (strcasecmp(colon + 1, weekdays[i]) == 0 ||
			    (colon[1] == '1' + i && colon[2] == 0)) {
				json_object_set_new(cycle, "every", json_string("week"));
				json_object_set_new(cycle, "day", json_integer(i + 1));
				return 0;
			}
		return cli_usage(c,
		                 "--cycle weekly:DAY takes mon, tue, wed, thu, fri, sat, sun (or "
		                 "1..7, Monday 1), not '%s'",
		                 colon + 1);
	}
	if (strncmp(v, "cron:", 5) == 0) {
		if (tl_cron_valid(colon + 1, strlen(colon + 1)) != 0)
			return cli_usage(c,
			                 "--cycle cron:RULE takes five fields \"m h dom mon dow\", "
			                 "each *, N, N-M, lists with ',' and steps with /S (e.g. "
			                 "cron:\"0 9 1 * *\"), not '%s'",
			                 colon + 1);
		json_object_set_new(cycle, "every", json_string("cron"));
		json_object_set_new(cycle, "rule", json_string(colon + 1));
		return 0;
	}
bad:
	return cli_usage(c,
	                 "--cycle must be monthly:DAY, weekly:DAY or cron:\"m h dom mon dow\", "
	                 "not '%s'",
	                 v);
}

static int escalate_opt(struct cli *c, const char *v, json_t *arr)
{
	char days[16], level[16];
	const char *a = strchr(v, ':'), *b = a ? strchr(a + 1, ':') : NULL;
	uint64_t d, l;
	if (!a || !b || (size_t)(a - v) >= sizeof days || (size_t)(b - a - 1) >= sizeof level ||
	    !b[1])
		return cli_usage(
		        c, "--escalate must be DAYS:LEVEL:TO (e.g. 5:1:ap-manager), not '%s'", v);
	memcpy(days, v, (size_t)(a - v));
	days[a - v] = 0;
	memcpy(level, a + 1, (size_t)(b - a - 1));
	level[b - a - 1] = 0;
	if (cli_u64(c, "--escalate DAYS", days, &d) != 0 ||
	    cli_u64(c, "--escalate LEVEL", level, &l) != 0)
		return EXIT_USAGE;
	json_t *step = json_pack("{s:I,s:I,s:s}", "after_days", (json_int_t)d, "level",
	                         (json_int_t)l, "to", b + 1);
	/* json_pack refuses a TO that is not UTF-8: never drop the step silently */
	if (!step || json_array_append_new(arr, step) != 0)
		return cli_usage(c, "--escalate TO must be UTF-8 text, not '%s'", b + 1);
	return 0;
}

static void terms_line(const struct tl_terms *t, char *out, size_t cap)
{
	char cyc[200];
	if (t->every == TL_CYCLE_MONTH)
		snprintf(cyc, sizeof cyc, "monthly on day %u", t->day);
	else if (t->every == TL_CYCLE_WEEK)
		snprintf(cyc, sizeof cyc, "weekly on %s",
		         t->day >= 1 && t->day <= 7 ? weekdays[t->day - 1] : "?");
	else
		snprintf(cyc, sizeof cyc, "cron \"%s\"", t->rule);
	snprintf(out, cap, "%s (%s), %s, respond within %u days, currency %s", cyc,
	         t->tz[0] ? t->tz : "UTC", tl_procedure_name(t->procedure), t->response_days,
	         t->currency[0] ? t->currency : "any");
}

static json_t *terms_json(const struct tl_state *st, const struct tl_terms *t)
{
	json_t *esc = json_array(), *wit = json_array();
	json_t *o = json_pack(
	        "{s:s,s:s,s:s,s:b,s:I,s:s,s:I,s:s,s:b}", "terms_id", t->terms_id, "cycle",
	        t->every == TL_CYCLE_MONTH  ? "month"
	        : t->every == TL_CYCLE_WEEK ? "week"
	                                    : "cron",
	        "tz", t->tz, "tz_fixed", t->tz_fixed, "tz_offset_min", (json_int_t)t->tz_offset_min,
	        "procedure", tl_procedure_name(t->procedure), "response_days",
	        (json_int_t)t->response_days, "currency", t->currency, "unilateral", t->unilateral);
	if (t->every == TL_CYCLE_CRON)
		json_object_set_new(o, "rule", json_string(t->rule));
	else
		json_object_set_new(o, "day", json_integer(t->day));
	for (size_t i = 0; i < t->nescalation; i++)
		json_array_append_new(esc, json_pack("{s:I,s:I,s:s}", "after_days",
		                                     (json_int_t)t->escalation[i].after_days,
		                                     "level", (json_int_t)t->escalation[i].level,
		                                     "to", t->escalation[i].to));
	for (size_t i = 0; i < t->nwitnesses; i++)
		json_array_append_new(wit, json_string(t->witnesses[i]));
	json_object_set_new(o, "escalation", esc);
	json_object_set_new(o, "witnesses", wit);
	json_object_set_new(o, "quorum", json_integer(t->quorum));
	if (!t->unilateral || strcmp(t->terms_id, "default") != 0) {
		json_object_set_new(o, "proposed_by", json_string(st->origin[t->proposer]));
		json_object_set_new(o, "propose_seq", json_integer((json_int_t)t->propose_seq));
	}
	if (!t->unilateral) {
		json_object_set_new(o, "accept_seq", json_integer((json_int_t)t->accept_seq));
		json_object_set_new(o, "accept_time_ms",
		                    json_integer((json_int_t)t->accept_time_ms));
	}
	return o;
}

/* -------------------------------------------------------------- propose */

static int terms_propose(struct cli *c)
{
	const char *channel = cli_opt(c, "--channel"), *days = cli_opt(c, "--response-days");
	const char *proc = cli_opt(c, "--procedure"), *cur = cli_opt(c, "--currency");
	const char *id = cli_opt(c, "--id"), *tz = cli_opt(c, "--tz");
	json_t *body = NULL, *cycle, *esc, *wit;
	struct tl_buf mp;
	struct tl_terms t;
	struct tl_feed f;
	char err[256], why[200], idbuf[40];
	uint64_t n;
	int rc;

	tl_buf_init(&mp, TL_ENTRY_MAX);
	if (c->npos || !channel || !days || !proc || !cur)
		return cli_usage(c, "usage: tally terms propose --channel C [--cycle monthly:1|"
		                    "weekly:mon|cron:\"m h dom mon dow\"] [--tz +08:00] "
		                    "--response-days N --procedure confirmation|notification|"
		                    "balance --currency CUR [--escalate DAYS:LEVEL:TO]... "
		                    "[--witness VKEY]... [--quorum K] [--id TERMS_ID]");
	if (!id) {
		char iso[32];
		cli_time_iso(iso, cli_now_ms());
		snprintf(idbuf, sizeof idbuf, "T-%.10s", iso);
		id = idbuf;
	}
	body = json_object();
	cycle = json_object();
	esc = json_array();
	wit = json_array();
	json_object_set_new(body, "terms_id", json_string(id));
	json_object_set_new(body, "cycle", cycle);
	if ((rc = cycle_opt(c, cli_opt(c, "--cycle") ? cli_opt(c, "--cycle") : "monthly:1",
	                    cycle)) != 0)
		goto out;
	json_object_set_new(cycle, "tz", json_string(tz ? tz : "UTC"));
	if ((rc = cli_u64(c, "--response-days", days, &n)) != 0)
		goto out;
	json_object_set_new(body, "response_days", json_integer((json_int_t)n));
	json_object_set_new(body, "procedure", json_string(proc));
	json_object_set_new(body, "currency", json_string(cur));
	for (int i = 0; i < c->nopts; i++) {
		if (strcmp(c->opts[i].name, "--escalate") == 0 &&
		    (rc = escalate_opt(c, c->opts[i].val, esc)) != 0)
			goto out;
		if (strcmp(c->opts[i].name, "--witness") == 0 &&
		    json_array_append_new(wit, json_string(c->opts[i].val)) != 0) {
			/* not UTF-8: refused, never dropped (the quorum would shrink) */
			rc = cli_usage(c, "--witness '%s' is not a verifier key", c->opts[i].val);
			goto out;
		}
	}
	if (json_array_size(esc))
		json_object_set(body, "escalation", esc);
	if (json_array_size(wit))
		json_object_set(body, "witnesses", wit);
	if (cli_opt(c, "--quorum")) {
		if ((rc = cli_u64(c, "--quorum", cli_opt(c, "--quorum"), &n)) != 0)
			goto out;
		json_object_set_new(body, "quorum", json_integer((json_int_t)n));
	}
	/* The state machine's own reader decides what is valid. */
	if (tl_json_to_mp(body, &mp, err, sizeof err) != 0) {
		rc = cli_fail(c, EXIT_INVALID, "terms: %s", err);
		goto out;
	}
	if (tl_terms_parse(mp.data, mp.len, &t, why, sizeof why) != 0) {
		rc = cli_fail(c, EXIT_INVALID, "the proposal %s; nothing was appended", why);
		goto out;
	}
	if ((rc = cli_open_store(c, 0)) != 0 ||
	    (rc = cli_own_feed(c, channel, NULL, NULL, &f)) != 0)
		goto out;
	rc = cli_append_one(c, f.origin, "terms.propose", body);
	if (rc == 0 && !c->json) {
		char line[640];
		terms_line(&t, line, sizeof line);
		fprintf(stderr,
		        "proposed terms %s: %s; they apply once the other side runs tally terms "
		        "accept with the leaf above\n",
		        t.terms_id, line);
	}
out:
	json_decref(body);
	json_decref(esc);
	json_decref(wit);
	tl_buf_release(&mp);
	return rc;
}

/* --------------------------------------------------------------- accept */

static int terms_accept(struct cli *c)
{
	const char *channel = cli_opt(c, "--channel");
	struct tl_state *st = NULL;
	struct tl_feed own;
	const struct tl_proposal *p = NULL;
	char leaf[2 * TL_HASH_LEN + 1];
	uint8_t raw[TL_HASH_LEN];
	int rc;

	if (c->npos != 1 || !channel)
		return cli_usage(c, "usage: tally terms accept --channel C PROPOSAL_LEAF");
	if (strlen(c->pos[0]) != 2 * TL_HASH_LEN ||
	    tl_hex_decode(raw, TL_HASH_LEN, c->pos[0], 2 * TL_HASH_LEN) != 0)
		return cli_usage(c, "PROPOSAL_LEAF must be a leaf hash (64 hex digits), not '%s'",
		                 c->pos[0]);
	tl_hex_encode(leaf, raw, TL_HASH_LEN);
	if ((rc = cli_open_store(c, 0)) != 0 ||
	    (rc = cli_channel_state(c, channel, cli_now_ms(), &own, &st)) != 0)
		goto out;
	for (size_t i = 0; i < st->nproposals; i++)
		if (memcmp(st->proposals[i].leaf, raw, TL_HASH_LEN) == 0)
			p = &st->proposals[i];
	if (!p) {
		rc = cli_fail(c, EXIT_INVALID,
		              "%s is not a valid terms proposal in this channel (has it arrived? "
		              "see tally terms show)",
		              leaf);
		goto out;
	}
	if (strcmp(st->origin[p->t.proposer], own.origin) == 0) {
		rc = cli_fail(c, EXIT_INVALID,
		              "proposal %s is this book's own; the other side must accept it",
		              leaf);
		goto out;
	}
	if (p->accepted) {
		rc = cli_fail(c, EXIT_INVALID, "proposal %s (%s) was already accepted", leaf,
		              p->t.terms_id);
		goto out;
	}
	json_t *body = json_pack("{s:s}", "terms", leaf);
	rc = cli_append_one(c, own.origin, "terms.accept", body);
	json_decref(body);
	if (rc == 0 && !c->json) {
		char line[640];
		terms_line(&p->t, line, sizeof line);
		fprintf(stderr, "accepted terms %s: %s\n", p->t.terms_id, line);
	}
out:
	tl_state_free(st);
	return rc;
}

/* ----------------------------------------------------------------- show */

static int terms_show(struct cli *c)
{
	const char *channel = cli_opt(c, "--channel");
	struct tl_state *st = NULL;
	struct tl_feed own;
	uint64_t at = cli_now_ms();
	int rc;

	if (c->npos || !channel)
		return cli_usage(c, "usage: tally terms show --channel C [--at TIME] [--json]");
	if ((cli_opt(c, "--at") &&
	     (rc = cli_parse_time(c, "--at", cli_opt(c, "--at"), &at)) != 0) ||
	    (rc = cli_open_store(c, 0)) != 0 ||
	    (rc = cli_channel_state(c, channel, at, &own, &st)) != 0)
		goto out;
	if (c->json) {
		json_t *hist = json_array(), *pend = json_array();
		for (size_t i = 0; i < st->nterms; i++)
			json_array_append_new(hist, terms_json(st, &st->terms[i]));
		for (size_t i = 0; i < st->nproposals; i++) {
			if (st->proposals[i].accepted)
				continue;
			char lh[2 * TL_HASH_LEN + 1];
			json_t *o = terms_json(st, &st->proposals[i].t);
			tl_hex_encode(lh, st->proposals[i].leaf, TL_HASH_LEN);
			json_object_set_new(o, "leaf", json_string(lh));
			json_object_set_new(
			        o, "awaiting",
			        json_string(strcmp(st->origin[st->proposals[i].t.proposer],
			                           own.origin) == 0
			                            ? "the other side"
			                            : "this side"));
			json_array_append_new(pend, o);
		}
		json_t *o =
		        json_pack("{s:I,s:o,s:o,s:o}", "at_ms", (json_int_t)at, "in_force",
		                  terms_json(st, &st->in_force), "agreed", hist, "pending", pend);
		char *js = json_dumps(o, JSON_COMPACT);
		printf("%s\n", js);
		free(js);
		json_decref(o);
	} else {
		char line[640];
		uint64_t next;
		terms_line(&st->in_force, line, sizeof line);
		printf("terms in force: %s\n  %s\n",
		       st->in_force.unilateral
		               ? "unilateral defaults (no terms agreed by both sides)"
		               : st->in_force.terms_id,
		       line);
		if (st->in_force.nescalation) {
			printf("  escalation:");
			for (size_t i = 0; i < st->in_force.nescalation; i++)
				printf("%s after %u days -> level %u (%s)", i ? ";" : "",
				       st->in_force.escalation[i].after_days,
				       st->in_force.escalation[i].level,
				       st->in_force.escalation[i].to);
			printf("\n");
		}
		if (st->in_force.nwitnesses) {
			printf("  witnesses (quorum %u of %zu):\n", st->in_force.quorum,
			       st->in_force.nwitnesses);
			for (size_t i = 0; i < st->in_force.nwitnesses; i++)
				printf("    %s\n", st->in_force.witnesses[i]);
		}
		if (tl_terms_next_cycle(&st->in_force, at, &next) == 0) {
			char iso[32];
			cli_time_iso(iso, next);
			printf("  next cycle date: %s%s\n", iso,
			       st->in_force.tz_fixed ? "" : " (UTC: an IANA zone is a label here)");
		}
		if (!st->in_force.unilateral) {
			char iso[32];
			cli_time_iso(iso, st->in_force.accept_time_ms);
			printf("  proposed by %s (seq %llu), accepted %s (seq %llu)\n",
			       strcmp(st->origin[st->in_force.proposer], own.origin) == 0
			               ? "this book"
			               : "the other side",
			       (unsigned long long)st->in_force.propose_seq, iso,
			       (unsigned long long)st->in_force.accept_seq);
		}
		for (size_t i = 0; i < st->nproposals; i++) {
			const struct tl_proposal *p = &st->proposals[i];
			char lh[2 * TL_HASH_LEN + 1];
			if (p->accepted)
				continue;
			tl_hex_encode(lh, p->leaf, TL_HASH_LEN);
			terms_line(&p->t, line, sizeof line);
			printf("pending proposal %s: %s\n  leaf %s — %s\n", p->t.terms_id, line, lh,
			       strcmp(st->origin[p->t.proposer], own.origin) == 0
			               ? "waiting for the other side to accept"
			               : "accept with: tally terms accept --channel C LEAF");
		}
	}
	rc = 0;
out:
	tl_state_free(st);
	return rc;
}

int cmd_terms(int argc, char **argv)
{
	static const char *const allowed[] = {
	        "--channel",   "--cycle",    "--tz",       "--response-days",
	        "--procedure", "--currency", "--escalate", "--witness",
	        "--quorum",    "--id",       "--at",       NULL};
	struct cli c = {.cmd = "terms"};
	int rc;
	if (argc < 1)
		return cli_usage(&c, "usage: tally terms propose|accept|show ...");
	const char *sub = argv[0];
	if ((rc = cli_parse(&c, argc - 1, argv + 1, allowed, NULL)) != 0)
		return rc;
	if (strcmp(sub, "propose") == 0) {
		c.cmd = "terms propose";
		rc = terms_propose(&c);
	} else if (strcmp(sub, "accept") == 0) {
		c.cmd = "terms accept";
		rc = terms_accept(&c);
	} else if (strcmp(sub, "show") == 0) {
		c.cmd = "terms show";
		rc = terms_show(&c);
	} else {
		rc = cli_usage(&c, "usage: tally terms propose|accept|show ... (not '%s')", sub);
	}
	cli_close(&c);
	return rc;
}

/* ---------------------------------------------------------------- close */

int cmd_close(int argc, char **argv)
{
	static const char *const allowed[] = {"--channel", NULL};
	struct cli c = {.cmd = "close"};
	struct tl_state *st = NULL;
	struct tl_feed own;
	const struct tl_stmt *t;
	char leaf[2 * TL_HASH_LEN + 1];
	uint8_t raw[TL_HASH_LEN];
	const char *channel;
	int rc;

	if ((rc = cli_parse(&c, argc, argv, allowed, NULL)) != 0)
		return rc;
	channel = cli_opt(&c, "--channel");
	if (c.npos != 1 || !channel) {
		rc = cli_usage(&c, "usage: tally close STATEMENT_LEAF --channel C");
		goto out;
	}
	if (strlen(c.pos[0]) != 2 * TL_HASH_LEN ||
	    tl_hex_decode(raw, TL_HASH_LEN, c.pos[0], 2 * TL_HASH_LEN) != 0) {
		rc = cli_usage(&c, "STATEMENT_LEAF must be a leaf hash (64 hex digits), not '%s'",
		               c.pos[0]);
		goto out;
	}
	tl_hex_encode(leaf, raw, TL_HASH_LEN);
	if ((rc = cli_open_store(&c, 0)) != 0 ||
	    (rc = cli_channel_state(&c, channel, cli_now_ms(), &own, &st)) != 0)
		goto out;
	if (!(t = cli_state_stmt(st, leaf))) {
		rc = cli_fail(&c, EXIT_INVALID, "%s is not a statement of this channel", leaf);
	} else if (strcmp(st->origin[TL_ROLE_SUPPLIER], own.origin) != 0) {
		rc = cli_fail(&c, EXIT_INVALID,
		              "statement %s is the other side's; only its supplier closes it",
		              t->id);
	} else if (t->superseded_by != SIZE_MAX) {
		rc = cli_fail(&c, EXIT_INVALID,
		              "statement %s v%llu was re-issued as v%llu (leaf %s); close the "
		              "current version once it is confirmed",
		              t->id, (unsigned long long)t->version,
		              (unsigned long long)st->stmts[t->superseded_by].version,
		              st->stmts[t->superseded_by].leaf_hex);
	} else if (t->status == TL_STMT_CLOSED) {
		rc = cli_fail(&c, EXIT_INVALID, "statement %s v%llu is already closed", t->id,
		              (unsigned long long)t->version);
	} else if (t->status != TL_STMT_CONFIRMED && t->status != TL_STMT_DEEMED) {
		rc = cli_fail(
		        &c, EXIT_INVALID,
		        "statement %s v%llu is %s, not confirmed: it closes once the customer "
		        "confirms it (or, under the notification procedure, once its "
		        "deadline passes); nothing was appended",
		        t->id, (unsigned long long)t->version, tl_stmt_status_name(t->status));
	} else {
		json_t *body = json_pack("{s:s}", "statement", leaf);
		rc = cli_append_one(&c, own.origin, "close", body);
		json_decref(body);
		if (rc == 0 && !c.json)
			fprintf(stderr, "statement %s v%llu closed (it was %s)\n", t->id,
			        (unsigned long long)t->version, tl_stmt_status_name(t->status));
	}
out:
	tl_state_free(st);
	cli_close(&c);
	return rc;
}
