/*
 * cmd_auditor.c — tally auditor admit|revoke|list (the book's side) and
 * follow|following (the auditor's side). docs/protocol.md, "Auditors";
 * docs/operations.md, "Auditors".
 */
#include "cli.h"
#include "node/auditor.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUDITOR_USAGE                                                                    \
	"usage: tally auditor admit --channel C --key HEX [--name N] [--book B]\n"       \
	"       tally auditor revoke --channel C --key HEX [--book B]\n"                 \
	"       tally auditor list --channel C [--book B] [--json]\n"                    \
	"       tally auditor follow --book B --channel C --supplier PK --customer PK\n" \
	"                            --peer PK@HOST:PORT [--label L]\n"                  \
	"       tally auditor following [--json]"

/* 64 hex digits of a public key into pk; lower receives the lowercase form. */
static int key_arg(struct cli *c, const char *opt, const char *hex, uint8_t pk[TL_PUB_LEN],
                   char lower[2 * TL_PUB_LEN + 1])
{
	if (!hex || strlen(hex) != 2 * TL_PUB_LEN ||
	    strspn(hex, "0123456789abcdefABCDEF") != 2 * TL_PUB_LEN ||
	    tl_hex_decode(pk, TL_PUB_LEN, hex, 2 * TL_PUB_LEN) != 0)
		return cli_usage(c, "%s must be a book public key (64 hex digits), not '%s'", opt,
		                 hex ? hex : "");
	tl_hex_encode(lower, pk, TL_PUB_LEN);
	return 0;
}

/* ------------------------------------------------- the book's side */

struct who {
	uint8_t key[TL_PUB_LEN];
	char name[TL_AUDITOR_NAME_MAX + 1];
	int admitted;
	uint64_t admit_seq, admit_ms, revoke_seq, revoke_ms;
};

struct roll {
	struct who *v;
	size_t n, cap;
};

static int roll_add(void *ctx, const struct tl_auditor_event *ev)
{
	struct roll *r = ctx;
	struct who *w = NULL;
	for (size_t i = 0; i < r->n && !w; i++)
		if (memcmp(r->v[i].key, ev->key, TL_PUB_LEN) == 0)
			w = &r->v[i];
	if (!w) {
		if (!ev->admit)
			return 0;
		if (r->n == r->cap) {
			size_t nc = r->cap ? r->cap * 2 : 8;
			struct who *nv = realloc(r->v, nc * sizeof *nv);
			if (!nv)
				return TL_ENOMEM;
			r->v = nv;
			r->cap = nc;
		}
		w = &r->v[r->n++];
		memset(w, 0, sizeof *w);
		memcpy(w->key, ev->key, TL_PUB_LEN);
	}
	w->admitted = ev->admit;
	if (ev->admit) {
		w->admit_seq = ev->seq;
		w->admit_ms = ev->time_ms;
		snprintf(w->name, sizeof w->name, "%s", ev->name);
	} else {
		w->revoke_seq = ev->seq;
		w->revoke_ms = ev->time_ms;
	}
	return 0;
}

/* Who the own feed f admits or admitted, from its auditor.* entries. */
static int roll_read(struct cli *c, const struct tl_feed *f, struct roll *r)
{
	memset(r, 0, sizeof *r);
	int rc = tl_auditor_scan(c->store, f, 0, f->head.size, roll_add, r);
	if (rc == TL_ENOMEM)
		return cli_fail(c, EXIT_ENV, "out of memory");
	if (rc)
		return cli_store_fail(c, rc);
	return 0;
}

static const struct who *roll_find(const struct roll *r, const uint8_t key[TL_PUB_LEN])
{
	for (size_t i = 0; i < r->n; i++)
		if (memcmp(r->v[i].key, key, TL_PUB_LEN) == 0)
			return &r->v[i];
	return NULL;
}

static int auditor_admit(struct cli *c, int admit)
{
	const char *channel = cli_opt(c, "--channel"), *book = cli_opt(c, "--book");
	const char *name = cli_opt(c, "--name");
	uint8_t key[TL_PUB_LEN];
	char hex[2 * TL_PUB_LEN + 1];
	struct tl_feed f;
	struct roll r;
	int rc;
	if (c->npos || !channel || !cli_opt(c, "--key") || (!admit && name))
		return cli_usage(c, AUDITOR_USAGE);
	if ((rc = key_arg(c, "--key", cli_opt(c, "--key"), key, hex)) != 0)
		return rc;
	if (name && (!*name || strlen(name) > TL_AUDITOR_NAME_MAX))
		return cli_usage(c, "--name must be 1-%d bytes", TL_AUDITOR_NAME_MAX);
	if ((rc = cli_open_store(c, 0)) != 0 ||
	    (rc = cli_own_feed(c, channel, book, NULL, &f)) != 0)
		return rc;
	if (memcmp(key, f.o.pk, TL_PUB_LEN) == 0 || memcmp(key, f.peer, TL_PUB_LEN) == 0)
		return cli_fail(c, EXIT_INVALID,
		                "%s is a party to channel %s (book %s or its counterparty); an "
		                "auditor is a third book",
		                hex, channel, f.book);
	if ((rc = roll_read(c, &f, &r)) != 0)
		return rc;
	const struct who *w = roll_find(&r, key);
	int now = w && w->admitted;
	free(r.v);
	if (admit && now) {
		fprintf(stderr, "tally %s: %s is admitted to %s already; nothing appended\n",
		        c->cmd, hex, f.origin);
		return 0;
	}
	if (!admit && !now)
		return cli_fail(c, EXIT_INVALID, "%s is not an admitted auditor of %s", hex,
		                f.origin);
	json_t *body = json_pack("{s:s}", "key", hex);
	if (body && name)
		json_object_set_new(body, "name", json_string(name));
	if (!body)
		return cli_fail(c, EXIT_ENV, "out of memory");
	rc = cli_append_one(c, f.origin, admit ? TL_AUDITOR_ADMIT : TL_AUDITOR_REVOKE, body);
	json_decref(body);
	if (rc == 0 && !c->json)
		fprintf(stderr,
		        admit ? "auditor %.16s… admitted to %s: its node may now replicate both "
		                "feeds of the channel, read-only\n"
		              : "auditor %.16s… revoked from %s: new sessions are refused and a "
		                "live one is closed\n",
		        hex, f.origin);
	return rc;
}

static int auditor_list(struct cli *c)
{
	const char *channel = cli_opt(c, "--channel"), *book = cli_opt(c, "--book");
	struct tl_feed f;
	struct roll r;
	char hex[2 * TL_PUB_LEN + 1], a[32], v[32];
	int rc;
	if (c->npos || !channel)
		return cli_usage(c, AUDITOR_USAGE);
	if ((rc = cli_open_store(c, 0)) != 0 ||
	    (rc = cli_own_feed(c, channel, book, NULL, &f)) != 0)
		return rc;
	if ((rc = roll_read(c, &f, &r)) != 0)
		return rc;
	json_t *arr = c->json ? json_array() : NULL;
	if (!c->json && r.n == 0)
		fprintf(stderr, "no auditor was ever admitted to %s\n", f.origin);
	for (size_t i = 0; i < r.n; i++) {
		const struct who *w = &r.v[i];
		tl_hex_encode(hex, w->key, TL_PUB_LEN);
		cli_time_iso(a, w->admit_ms);
		if (c->json) {
			json_t *o = json_pack("{s:s,s:s,s:b,s:I,s:I}", "key", hex, "name", w->name,
			                      "admitted", w->admitted, "admit_seq",
			                      (json_int_t)w->admit_seq, "admit_time_ms",
			                      (json_int_t)w->admit_ms);
			if (!w->admitted)
				json_object_set_new(o, "revoke_seq",
				                    json_integer((json_int_t)w->revoke_seq));
			if (!w->admitted)
				json_object_set_new(o, "revoke_time_ms",
				                    json_integer((json_int_t)w->revoke_ms));
			json_array_append_new(arr, o);
		} else if (w->admitted) {
			printf("%s  admitted  since %s (seq %llu)  %s\n", hex, a,
			       (unsigned long long)w->admit_seq, w->name);
		} else {
			cli_time_iso(v, w->revoke_ms);
			printf("%s  revoked   %s (seq %llu), admitted %s  %s\n", hex, v,
			       (unsigned long long)w->revoke_seq, a, w->name);
		}
	}
	if (c->json) {
		char *s = json_dumps(arr, JSON_COMPACT);
		printf("%s\n", s ? s : "[]");
		free(s);
		json_decref(arr);
	}
	free(r.v);
	return 0;
}

/* ---------------------------------------------- the auditor's side */

static int auditor_follow(struct cli *c)
{
	const char *book = cli_opt(c, "--book"), *channel = cli_opt(c, "--channel");
	const char *peer = cli_opt(c, "--peer"), *label = cli_opt(c, "--label");
	uint8_t ch[TL_CHANNEL_LEN], sup[TL_PUB_LEN], cus[TL_PUB_LEN], src[TL_PUB_LEN];
	char hex[2 * TL_PUB_LEN + 1], origins[2][TL_ORIGIN_LEN + 1];
	struct tl_book b;
	int rc;
	if (c->npos || !book || !channel || !peer || !cli_opt(c, "--supplier") ||
	    !cli_opt(c, "--customer"))
		return cli_usage(c, AUDITOR_USAGE);
	if (strlen(channel) != 2 * TL_CHANNEL_LEN ||
	    strspn(channel, "0123456789abcdef") != 2 * TL_CHANNEL_LEN ||
	    tl_hex_decode(ch, TL_CHANNEL_LEN, channel, 2 * TL_CHANNEL_LEN) != 0)
		return cli_usage(c, "--channel must be a channel id (32 lowercase hex digits)");
	if ((rc = key_arg(c, "--supplier", cli_opt(c, "--supplier"), sup, hex)) != 0 ||
	    (rc = key_arg(c, "--customer", cli_opt(c, "--customer"), cus, hex)) != 0)
		return rc;
	const char *at = strchr(peer, '@');
	char pk[2 * TL_PUB_LEN + 1];
	if (!at || at - peer != 2 * TL_PUB_LEN || !strchr(at + 1, ':') ||
	    strlen(at + 1) > TL_ADDR_MAX)
		return cli_usage(c, "--peer must be PUBKEY_HEX@HOST:PORT, not '%s'", peer);
	memcpy(pk, peer, 2 * TL_PUB_LEN);
	pk[2 * TL_PUB_LEN] = 0;
	if ((rc = key_arg(c, "--peer", pk, src, hex)) != 0)
		return rc;
	if (memcmp(sup, cus, TL_PUB_LEN) == 0)
		return cli_usage(c, "--supplier and --customer must be two different books");
	if (memcmp(src, sup, TL_PUB_LEN) != 0 && memcmp(src, cus, TL_PUB_LEN) != 0)
		return cli_usage(c, "--peer must be the supplier's or the customer's book (the one "
		                    "that admitted you)");
	if (label) {
		uint8_t want[TL_CHANNEL_LEN];
		tl_channel_id(want, sup, cus, label, strlen(label));
		if (memcmp(want, ch, TL_CHANNEL_LEN) != 0)
			return cli_fail(
			        c, EXIT_INVALID,
			        "channel %s is not the channel of these two books with label "
			        "'%s'",
			        channel, label);
	}
	if ((rc = cli_open_store(c, 0)) != 0)
		return rc;
	if ((rc = tl_store_book_get(c->store, book, &b)) != 0)
		return cli_store_fail(c, rc);
	if (memcmp(b.pk, sup, TL_PUB_LEN) == 0 || memcmp(b.pk, cus, TL_PUB_LEN) == 0)
		return cli_fail(c, EXIT_INVALID,
		                "book %s is a party to this channel: it replicates it as such "
		                "(tally channel open), not as an auditor",
		                book);
	rc = tl_auditor_follow(c->store, book, ch, sup, cus, src, at + 1, origins);
	if (rc == TL_EEXIST)
		return cli_fail(c, EXIT_INVALID,
		                "a feed of channel %s is stored here already, and not as followed "
		                "by book %s from %.16s…",
		                channel, book, hex);
	if (rc)
		return cli_store_fail(c, rc);
	/* A running node dials the new source at once. */
	int fd = cli_control_connect(c);
	if (fd >= 0) {
		json_t *req = json_pack("{s:s}", "op", "reload_peers");
		json_t *resp = cli_control_call(c, fd, req);
		json_decref(req);
		json_decref(resp);
		close(fd);
	}
	if (c->json) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "channel", channel, "supplier_origin",
		                      origins[0], "customer_origin", origins[1], "peer", peer);
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	} else {
		printf("%s\n%s\n", origins[0], origins[1]);
		fprintf(stderr, "book %s follows channel %s read-only from %.16s… at %s%s\n", book,
		        channel, hex, at + 1,
		        fd >= 0 ? "" : " (tallyd is not running: replication starts with it)");
	}
	return 0;
}

static int auditor_following(struct cli *c)
{
	struct tl_feed *feeds = NULL;
	size_t nf = 0, shown = 0;
	char src[2 * TL_PUB_LEN + 1], ch[2 * TL_CHANNEL_LEN + 1];
	int rc;
	if (c->npos)
		return cli_usage(c, AUDITOR_USAGE);
	if ((rc = cli_open_store(c, 0)) != 0)
		return rc;
	if ((rc = tl_store_feed_list(c->store, &feeds, &nf)) != 0)
		return cli_store_fail(c, rc);
	json_t *arr = c->json ? json_array() : NULL;
	for (size_t i = 0; i < nf; i++) {
		const struct tl_feed *f = &feeds[i];
		if (!(f->flags & TL_FEED_AUDIT))
			continue;
		shown++;
		tl_hex_encode(src, f->peer, TL_PUB_LEN);
		tl_hex_encode(ch, f->o.channel, TL_CHANNEL_LEN);
		if (c->json)
			json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:I,s:b}", "origin",
			                                     f->origin, "channel", ch, "book",
			                                     f->book, "from", src, "size",
			                                     (json_int_t)f->head.size, "forked",
			                                     (f->flags & TL_FEED_FORKED) != 0));
		else
			printf("%s  %llu entries  book %s  from %.16s…%s\n", f->origin,
			       (unsigned long long)f->head.size, f->book, src,
			       f->flags & TL_FEED_FORKED ? "  FORKED: see tally forks" : "");
	}
	if (c->json) {
		char *s = json_dumps(arr, JSON_COMPACT);
		printf("%s\n", s ? s : "[]");
		free(s);
		json_decref(arr);
	} else if (!shown) {
		fprintf(stderr, "this home follows no feeds (tally auditor follow ...)\n");
	}
	free(feeds);
	return 0;
}

int cmd_auditor(int argc, char **argv)
{
	static const char *const allowed[] = {"--channel", "--key",      "--name",
	                                      "--book",    "--supplier", "--customer",
	                                      "--peer",    "--label",    NULL};
	struct cli c = {.cmd = "auditor"};
	int rc;
	if (argc < 1)
		return cli_usage(&c, AUDITOR_USAGE);
	const char *sub = argv[0];
	if ((rc = cli_parse(&c, argc - 1, argv + 1, allowed, NULL)) != 0)
		return rc;
	if (strcmp(sub, "admit") == 0) {
		c.cmd = "auditor admit";
		rc = auditor_admit(&c, 1);
	} else if (strcmp(sub, "revoke") == 0) {
		c.cmd = "auditor revoke";
		rc = auditor_admit(&c, 0);
	} else if (strcmp(sub, "list") == 0) {
		c.cmd = "auditor list";
		rc = auditor_list(&c);
	} else if (strcmp(sub, "follow") == 0) {
		c.cmd = "auditor follow";
		rc = auditor_follow(&c);
	} else if (strcmp(sub, "following") == 0) {
		c.cmd = "auditor following";
		rc = auditor_following(&c);
	} else {
		rc = cli_usage(&c, AUDITOR_USAGE);
	}
	cli_close(&c);
	return rc;
}
