/*
 * cmd_node.c — commands that involve tallyd: channel open|list|show, watch,
 * status, and the control-socket client other commands use.
 *
 * While tallyd runs on a data directory it is the only writer: commands that
 * write (feed append, channel open) send their request over the control
 * socket DIR/tallyd.sock, so that the node signs, stores and pushes the
 * entries to peers at once. Reads go to the store directly (LMDB readers
 * never block the writer). Without a running node, the same commands work
 * offline on the store.
 */
#include "cli.h"
#include "consensus/state.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int cli_control_connect(struct cli *c)
{
	struct sockaddr_un sa;
	char path[4200];
	snprintf(path, sizeof path, "%s/tallyd.sock", c->home);
	if (strlen(path) >= sizeof sa.sun_path)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

json_t *cli_control_call(struct cli *c, int fd, json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT);
	struct tl_buf line, pending;
	json_t *resp = NULL;
	if (!s)
		return NULL;
	size_t len = strlen(s), off = 0;
	s[len] = 0;
	while (off < len) {
		ssize_t w = write(fd, s + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out;
		off += (size_t)w;
	}
	if (write(fd, "\n", 1) != 1)
		goto out;
	tl_buf_init(&line, (size_t)1 << 30);
	tl_buf_init(&pending, (size_t)1 << 30);
	if (cli_read_line(fd, &line, &pending, -1) == 0)
		resp = json_loads((const char *)line.data, 0, NULL);
	tl_buf_release(&line);
	tl_buf_release(&pending);
out:
	free(s);
	if (!resp)
		cli_fail(c, EXIT_ENV, "tallyd did not answer on %s/tallyd.sock", c->home);
	return resp;
}

/* ------------------------------------------------------------ channel */

static int parse_peer(struct cli *c, const char *arg, uint8_t pk[TL_PUB_LEN], char *addr,
                      size_t addrcap)
{
	const char *at = strchr(arg, '@');
	size_t hl = at ? (size_t)(at - arg) : strlen(arg);
	if (hl != 64 || tl_hex_decode(pk, TL_PUB_LEN, arg, 64) != 0)
		return cli_usage(c, "--peer must be PUBKEY_HEX[@HOST:PORT], not '%s'", arg);
	snprintf(addr, addrcap, "%s", at ? at + 1 : "");
	if (at && (!strchr(addr, ':') || strlen(addr) > TL_ADDR_MAX))
		return cli_usage(c, "--peer address must be HOST:PORT, not '%s'", addr);
	return 0;
}

static int channel_open(struct cli *c)
{
	const char *book = cli_opt(c, "--book"), *peer = cli_opt(c, "--peer");
	const char *label = cli_opt(c, "--label");
	uint8_t pk[TL_PUB_LEN];
	char addr[TL_ADDR_MAX + 1], hex[65];
	struct tl_channel ch;
	int rc;
	if (!book || !peer || c->npos)
		return cli_usage(c, "usage: tally channel open --book B --peer PUBKEY[@HOST:PORT] "
		                    "[--label L]");
	if (!label)
		label = "default";
	if ((rc = parse_peer(c, peer, pk, addr, sizeof addr)) != 0)
		return rc;
	if (!*label || strlen(label) > TL_LABEL_MAX)
		return cli_usage(c, "--label must be 1-%d bytes", TL_LABEL_MAX);
	tl_hex_encode(hex, pk, 32);
	int fd = cli_control_connect(c);
	if (fd >= 0) {
		json_t *req = json_pack("{s:s,s:s,s:s,s:s,s:s}", "op", "channel_open", "book", book,
		                        "peer", hex, "label", label, "addr", addr);
		json_t *resp = cli_control_call(c, fd, req);
		json_decref(req);
		close(fd);
		if (!resp)
			return EXIT_ENV;
		if (!json_is_true(json_object_get(resp, "ok"))) {
			rc = cli_fail(c, EXIT_INVALID, "%s",
			              json_string_value(json_object_get(resp, "error")));
			json_decref(resp);
			return rc;
		}
		json_t *r = json_object_get(resp, "result");
		snprintf(ch.origin, sizeof ch.origin, "%s",
		         json_string_value(json_object_get(r, "origin")));
		snprintf(ch.peer_origin, sizeof ch.peer_origin, "%s",
		         json_string_value(json_object_get(r, "peer_origin")));
		json_decref(resp);
	} else {
		struct tl_keypair kp;
		struct tl_book b;
		int lockfd = -1;
		if ((rc = cli_open_store(c, 0)) != 0)
			return rc;
		if (tl_store_book_get(c->store, book, &b) != 0)
			return cli_fail(c, EXIT_INVALID, "%s", tl_store_errmsg(c->store));
		if (memcmp(b.pk, pk, 32) == 0)
			return cli_usage(c, "--peer is book %s's own key", book);
		int local = 0;
		struct tl_book *all;
		size_t nb;
		if (tl_store_book_list(c->store, &all, &nb) == 0) {
			for (size_t i = 0; i < nb; i++)
				local |= memcmp(all[i].pk, pk, 32) == 0;
			free(all);
		}
		if ((rc = cli_load_key(c, book, &kp)) != 0)
			return rc;
		if ((rc = cli_lock(c, &lockfd)) == 0) {
			rc = tl_channel_open(c->store, book, &kp, pk, label, addr, local,
			                     cli_now_ms(), &ch);
			if (rc)
				rc = cli_store_fail(c, rc);
		}
		cli_unlock(lockfd);
		tl_key_wipe(&kp);
		if (rc)
			return rc;
	}
	if (c->json)
		printf("{\"origin\":\"%s\",\"peer_origin\":\"%s\",\"label\":\"%s\"}\n", ch.origin,
		       ch.peer_origin, label);
	else
		printf("%s\n", ch.origin);
	if (!c->json)
		fprintf(stderr, "channel '%s' with %.16s…: our feed %s; theirs %s%s\n", label, hex,
		        ch.origin, ch.peer_origin,
		        fd >= 0 ? "" : " (tallyd is not running: replication starts with it)");
	return 0;
}

static int channel_list(struct cli *c, const char *only)
{
	struct tl_feed *feeds;
	size_t n;
	int rc, shown = 0;
	if ((rc = cli_open_store(c, 0)) != 0)
		return rc;
	if (tl_store_feed_list(c->store, &feeds, &n) != 0)
		return cli_store_fail(c, TL_ESTORE);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct tl_feed *f = &feeds[i];
		char ch[33], peer_origin[TL_ORIGIN_LEN + 1], ph[65];
		if (!(f->flags & TL_FEED_OWN))
			continue;
		tl_hex_encode(ch, f->o.channel, TL_CHANNEL_LEN);
		if (only && strcmp(only, ch) != 0 && strcmp(only, f->origin) != 0)
			continue;
		tl_origin_format(peer_origin, f->peer, f->o.channel);
		tl_hex_encode(ph, f->peer, 32);
		struct tl_feed pf;
		uint64_t psize = 0;
		int have = tl_store_feed_get(c->store, peer_origin, &pf) == 0;
		if (have)
			psize = pf.head.size;
		shown++;
		if (c->json) {
			json_array_append_new(
			        arr,
			        json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:b}", "channel", ch,
			                  "book", f->book, "label", f->label, "origin", f->origin,
			                  "size", (json_int_t)f->head.size, "peer_origin",
			                  peer_origin, "peer_size", (json_int_t)psize, "forked",
			                  have && (pf.flags & TL_FEED_FORKED)));
		} else {
			printf("channel %s  book %s  label %s\n  ours   %s  %llu entries\n  theirs "
			       "%s  %llu entries%s\n",
			       ch, f->book, f->label, f->origin, (unsigned long long)f->head.size,
			       peer_origin, (unsigned long long)psize,
			       have && (pf.flags & TL_FEED_FORKED) ? "  FORKED: see tally forks"
			                                           : "");
		}
	}
	if (c->json) {
		char *s = json_dumps(arr, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	} else if (!shown) {
		fprintf(stderr, only ? "no such channel\n"
		                     : "no channels yet: tally channel open --book B --peer "
		                       "KEY@HOST:PORT\n");
	}
	json_decref(arr);
	free(feeds);
	return only && !shown ? EXIT_INVALID : 0;
}

/* ----------------------------------------------------- channel state */

/* The state of a channel as both nodes compute it from the two feeds
 * (cli_chanstate_load): statements with witnessed times where proven, the
 * digest over the authors' claimed times (what both sides compare), and the
 * claimed and witnessed times side by side. */
static int channel_state(struct cli *c, const char *which)
{
	struct cli_chanstate cs;
	const struct tl_state *st;
	uint64_t at = cli_now_ms();
	uint8_t digest[32];
	char ch[33], dh[65];
	int rc;

	if (cli_opt(c, "--at") && (rc = cli_parse_time(c, "--at", cli_opt(c, "--at"), &at)) != 0)
		return rc;
	if ((rc = cli_open_store(c, 0)) != 0)
		return rc;
	if ((rc = cli_chanstate_load(c, which, at, &cs)) != 0)
		return rc;
	st = cs.st;
	if ((rc = tl_state_digest(cs.claimed, digest)) != 0) {
		rc = cli_fail(c, EXIT_ENV, "computing the channel state: %s", tl_strerror(rc));
		goto out;
	}
	tl_hex_encode(dh, digest, 32);
	tl_hex_encode(ch, cs.own.o.channel, TL_CHANNEL_LEN);
	if (c->json) {
		json_t *arr = json_array(), *fnd = json_array();
		for (size_t i = 0; i < st->nstmts; i++) {
			const struct tl_stmt *t = &st->stmts[i];
			json_t *o = json_pack(
			        "{s:s,s:I,s:s,s:s,s:s,s:I,s:I,s:I,s:b,s:b,s:s}", "id", t->id,
			        "version", (json_int_t)t->version, "leaf", t->leaf_hex, "status",
			        tl_stmt_status_name(t->status), "currency", t->currency, "closing",
			        (json_int_t)t->closing, "deadline_ms", (json_int_t)t->deadline_ms,
			        "seq", (json_int_t)t->seq, "late", t->late, "closed", t->closed,
			        "deadline_from", cli_time_src_code(t->deadline_src));
			if (t->has_agreed)
				json_object_set_new(o, "agreed_balance",
				                    json_integer(t->agreed_balance));
			if (t->has_their_balance)
				json_object_set_new(o, "their_balance",
				                    json_integer(t->their_balance));
			if (t->ndlines) {
				json_t *dl = json_array();
				for (size_t k = 0; k < t->ndlines; k++) {
					json_t *l = json_pack("{s:s,s:I,s:s}", "doc",
					                      t->lines[k].doc, "their_amount",
					                      (json_int_t)t->lines[k].their_amount,
					                      "reason",
					                      tl_reason_name(t->lines[k].reason));
					if (t->lines[k].note)
						json_object_set_new(l, "note",
						                    json_string(t->lines[k].note));
					json_array_append_new(dl, l);
				}
				json_object_set_new(o, "dispute_lines", dl);
			}
			json_object_set_new(o, "lateness", cli_late_json(&cs, i));
			json_array_append_new(arr, o);
		}
		for (size_t i = 0; i < st->nfindings; i++)
			json_array_append_new(
			        fnd, json_pack("{s:s,s:I,s:s}", "feed",
			                       st->findings[i].feed ? "customer" : "supplier",
			                       "seq", (json_int_t)st->findings[i].seq, "finding",
			                       st->findings[i].msg));
		json_t *o = json_pack("{s:s,s:I,s:s,s:b,s:o,s:o,s:o}", "channel", ch, "at_ms",
		                      (json_int_t)at, "digest", dh, "terms_unilateral",
		                      st->in_force.unilateral, "statements", arr, "findings", fnd,
		                      "witness_set", cli_witnesses_json(&cs));
		if (cs.wsrc == CLI_WSRC_NONE) {
			json_object_set_new(o, "witnessed", json_null());
		} else {
			/* The audit's per-statement report, as tally audit prints it. */
			json_t *w =
			        json_pack("{s:i,s:i,s:b}", "quorum", (int)cs.quorum, "witnesses",
			                  (int)cs.nwits, "from_terms", cs.wsrc == CLI_WSRC_TERMS);
			cli_chan_eval_print(&cs.e, 1, w);
			json_object_set_new(o, "witnessed", w);
		}
		char *js = json_dumps(o, JSON_COMPACT);
		printf("%s\n", js);
		free(js);
		json_decref(o);
	} else {
		printf("channel %s — terms: %s, respond within %u days%s\n", ch,
		       st->in_force.procedure == TL_PROC_NOTIFICATION ? "notification"
		       : st->in_force.procedure == TL_PROC_BALANCE    ? "balance request"
		                                                      : "confirmation",
		       st->in_force.response_days,
		       st->in_force.unilateral ? " (defaults, not agreed by both sides)" : "");
		if (!st->nstmts)
			printf("  no statements yet\n");
		for (size_t i = 0; i < st->nstmts; i++) {
			const struct tl_stmt *t = &st->stmts[i];
			char dl[32];
			cli_time_iso(dl, t->deadline_ms);
			printf("  %-20s v%-3llu %-16s closing %lld %s  deadline %s (%s)%s  leaf "
			       "%.12s\n",
			       t->id, (unsigned long long)t->version,
			       tl_stmt_status_name(t->status), (long long)t->closing, t->currency,
			       dl, cli_time_src_code(t->deadline_src),
			       t->late ? " (answered late)" : "", t->leaf_hex);
		}
		for (size_t i = 0; i < st->nfindings; i++)
			printf("  finding: %s\n", st->findings[i].msg);
		printf("state digest %s (over the authors' claimed times)\n", dh);
		if (cs.wsrc == CLI_WSRC_NONE) {
			printf("witnessed times: no witness set (agree on one in the terms, or "
			       "give --witness V... --quorum K): every time above is claimed, "
			       "nothing is proven\n");
		} else {
			printf("\nclaimed and witnessed times (%u of %zu witnesses%s):", cs.quorum,
			       cs.nwits,
			       cs.wsrc == CLI_WSRC_TERMS ? ", from the agreed terms" : "");
			for (size_t k = 0; k < 2; k++)
				for (size_t i = 0; cs.e.wt[k] && i < cs.e.wt[k]->issues_kept; i++)
					printf("\n  note: %s", cs.e.wt[k]->issues[i].msg);
			cli_chan_eval_print(&cs.e, 0, NULL);
		}
	}
	rc = 0;
out:
	cli_chanstate_release(&cs);
	return rc;
}

int cmd_channel(int argc, char **argv)
{
	static const char *const allowed[] = {"--book",    "--peer",   "--label", "--at",
	                                      "--witness", "--quorum", NULL};
	struct cli c = {.cmd = "channel"};
	int rc;
	if (argc < 1)
		return cli_usage(&c, "usage: tally channel open|list|show ...");
	const char *sub = argv[0];
	if ((rc = cli_parse(&c, argc - 1, argv + 1, allowed, NULL)) != 0)
		return rc;
	if (strcmp(sub, "open") == 0) {
		c.cmd = "channel open";
		rc = channel_open(&c);
	} else if (strcmp(sub, "list") == 0 && c.npos == 0) {
		c.cmd = "channel list";
		rc = channel_list(&c, NULL);
	} else if (strcmp(sub, "state") == 0 && c.npos == 1) {
		c.cmd = "channel state";
		rc = channel_state(&c, c.pos[0]);
	} else if (strcmp(sub, "show") == 0 && c.npos == 1) {
		c.cmd = "channel show";
		rc = channel_list(&c, c.pos[0]);
	} else {
		rc = cli_usage(&c, "usage: tally channel open|list|show ...");
	}
	cli_close(&c);
	return rc;
}

/* -------------------------------------------------------------- watch */

static volatile sig_atomic_t g_stop;

static void on_sig(int s)
{
	(void)s;
	g_stop = 1;
}

int cmd_watch(int argc, char **argv)
{
	static const char *const allowed[] = {"--channel", NULL};
	struct cli c = {.cmd = "watch"};
	struct tl_buf line, pending;
	int rc;
	if ((rc = cli_parse(&c, argc, argv, allowed, NULL)) != 0)
		return rc;
	int fd = cli_control_connect(&c);
	if (fd < 0)
		return cli_fail(&c, EXIT_ENV,
		                "tallyd is not running on %s (start it with: tallyd "
		                "--home %s)",
		                c.home, c.home);
	json_t *req = json_pack("{s:s}", "op", "watch");
	if (cli_opt(&c, "--channel"))
		json_object_set_new(req, "channel", json_string(cli_opt(&c, "--channel")));
	json_t *resp = cli_control_call(&c, fd, req);
	json_decref(req);
	if (!resp) {
		close(fd);
		return EXIT_ENV;
	}
	json_decref(resp);
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	tl_buf_init(&line, (size_t)1 << 30);
	tl_buf_init(&pending, (size_t)1 << 30);
	if (!c.json)
		fprintf(stderr, "watching %s (Ctrl-C to stop)\n", c.home);
	while (!g_stop && cli_read_line(fd, &line, &pending, -1) == 0) {
		if (c.json) {
			printf("%s\n", (const char *)line.data);
		} else {
			json_t *e = json_loads((const char *)line.data, 0, NULL);
			char when[32];
			cli_time_iso(when,
			             (uint64_t)json_integer_value(json_object_get(e, "time_ms")));
			const char *ev = json_string_value(json_object_get(e, "event"));
			const char *kind = json_string_value(json_object_get(e, "kind"));
			printf("%s  %-7s %s seq %lld%s%s", when, ev ? ev : "?",
			       json_string_value(json_object_get(e, "origin")),
			       (long long)json_integer_value(json_object_get(e, "seq")),
			       kind ? "  " : "", kind ? kind : "");
			json_int_t cnt = json_integer_value(json_object_get(e, "count"));
			if (ev && strcmp(ev, "ingest") == 0)
				printf("  (+%lld from the counterparty)", (long long)cnt);
			printf("\n");
			json_decref(e);
		}
		fflush(stdout);
	}
	tl_buf_release(&line);
	tl_buf_release(&pending);
	close(fd);
	return 0;
}

int cmd_status(int argc, char **argv)
{
	struct cli c = {.cmd = "status"};
	int rc;
	if ((rc = cli_parse(&c, argc, argv, NULL, NULL)) != 0)
		return rc;
	int fd = cli_control_connect(&c);
	if (fd < 0)
		return cli_fail(&c, EXIT_INVALID, "tallyd is not running on %s", c.home);
	json_t *req = json_pack("{s:s}", "op", "status");
	json_t *resp = cli_control_call(&c, fd, req);
	json_decref(req);
	close(fd);
	if (!resp)
		return EXIT_ENV;
	json_t *r = json_object_get(resp, "result");
	if (c.json) {
		char *s = json_dumps(r, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	} else {
		size_t i;
		json_t *v;
		printf("tallyd %s on %s\n", json_string_value(json_object_get(r, "version")),
		       c.home);
		json_array_foreach(json_object_get(r, "books"), i, v)
		        printf("  book %s  %s\n", json_string_value(json_object_get(v, "book")),
		               json_string_value(json_object_get(v, "public_key")));
		json_array_foreach(json_object_get(r, "peers"), i, v) printf(
		        "  peer %.16s…  %s  book %s  %s\n",
		        json_string_value(json_object_get(v, "peer")),
		        json_string_value(json_object_get(v, "addr")),
		        json_string_value(json_object_get(v, "book")),
		        json_is_true(json_object_get(v, "outbound")) ? "outbound" : "inbound");
	}
	json_decref(resp);
	return 0;
}
