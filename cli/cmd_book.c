/* cmd_book.c — tally init, tally book list|show. */
#include "cli.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_init(int argc, char **argv)
{
	static const char *const allowed[] = {"--book", NULL};
	struct cli c = {.cmd = "init"};
	struct tl_keypair kp;
	struct tl_book b;
	char path[4200], hex[TL_PUB_LEN * 2 + 1];
	char *pass = NULL;
	size_t plen = 0;
	int rc;

	if ((rc = cli_parse(&c, argc, argv, allowed, NULL)) != 0)
		return rc;
	const char *name = cli_opt(&c, "--book");
	if (!name || c.npos)
		return cli_usage(&c, "usage: tally init --book NAME");
	if (!tl_book_name_valid(name))
		return cli_usage(&c,
		                 "book name '%s' is not valid: use 1-63 letters, digits, '.', "
		                 "'_' or '-', not starting with '.' or '-'",
		                 name);
	cli_key_path(&c, name, path, sizeof path);
	if (access(path, F_OK) == 0)
		return cli_fail(&c, EXIT_INVALID,
		                "key file %s already exists; refusing to overwrite a key", path);
	pass = sodium_malloc(1024);
	char prompt[128];
	snprintf(prompt, sizeof prompt, "New passphrase for book %s: ", name);
	if (!pass || tl_passphrase_get(pass, 1024, &plen, prompt, 1) != 0) {
		rc = cli_fail(&c, EXIT_ENV,
		              "no passphrase: set TALLY_PASSPHRASE or run on a terminal (the two "
		              "entries must match)");
		goto out;
	}
	if (plen == 0) {
		rc = cli_fail(&c, EXIT_USAGE,
		              "an empty passphrase would leave the key unprotected");
		goto out;
	}
	if ((rc = cli_open_store(&c, 1)) != 0)
		goto out;
	if (tl_store_book_get(c.store, name, &b) == 0) {
		rc = cli_fail(&c, EXIT_INVALID, "book '%s' already exists in %s", name, c.home);
		goto out;
	}
	if ((rc = tl_key_generate(&kp)) != 0) {
		rc = cli_fail(&c, EXIT_ENV, "key generation failed: %s", tl_strerror(rc));
		goto out;
	}
	rc = tl_keyfile_write(path, &kp, name, pass, plen, 0, 0);
	memset(&b, 0, sizeof b);
	memcpy(b.name, name, strlen(name) + 1);
	memcpy(b.pk, kp.pk, TL_PUB_LEN);
	tl_key_wipe(&kp);
	if (rc) {
		rc = cli_fail(&c, EXIT_ENV, "cannot write key file %s: %s", path,
		              rc == TL_EIO ? strerror(errno) : tl_strerror(rc));
		goto out;
	}
	if ((rc = tl_store_book_add(c.store, &b)) != 0) {
		unlink(path);
		rc = cli_fail(&c, EXIT_ENV, "%s", tl_store_errmsg(c.store));
		goto out;
	}
	tl_hex_encode(hex, b.pk, TL_PUB_LEN);
	if (c.json)
		printf("{\"book\":\"%s\",\"public_key\":\"%s\",\"key_file\":\"%s\"}\n", name, hex,
		       path);
	else {
		printf("%s\n", hex);
		fprintf(stderr, "created book %s; key file %s (encrypted)\n", name, path);
	}
	rc = 0;
out:
	if (pass)
		sodium_free(pass);
	cli_close(&c);
	return rc;
}

static int count_feeds(const struct tl_feed *feeds, size_t n, const char *book)
{
	int k = 0;
	for (size_t i = 0; i < n; i++)
		k += (feeds[i].flags & TL_FEED_OWN) && strcmp(feeds[i].book, book) == 0;
	return k;
}

static int book_list(struct cli *c)
{
	struct tl_book *books = NULL;
	struct tl_feed *feeds = NULL;
	size_t nb = 0, nf = 0;
	char hex[TL_PUB_LEN * 2 + 1];
	if (tl_store_book_list(c->store, &books, &nb) != 0 ||
	    tl_store_feed_list(c->store, &feeds, &nf) != 0) {
		free(books);
		return cli_fail(c, EXIT_ENV, "%s", tl_store_errmsg(c->store));
	}
	json_t *arr = json_array();
	if (!c->json && nb)
		printf("%-24s %-64s %s\n", "BOOK", "PUBLIC KEY", "FEEDS");
	for (size_t i = 0; i < nb; i++) {
		tl_hex_encode(hex, books[i].pk, TL_PUB_LEN);
		int k = count_feeds(feeds, nf, books[i].name);
		if (c->json)
			json_array_append_new(arr, json_pack("{s:s,s:s,s:i}", "book", books[i].name,
			                                     "public_key", hex, "feeds", k));
		else
			printf("%-24s %s %d\n", books[i].name, hex, k);
	}
	if (c->json) {
		char *s = json_dumps(arr, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	} else if (!nb) {
		fprintf(stderr, "no books yet: create one with 'tally init --book NAME'\n");
	}
	json_decref(arr);
	free(books);
	free(feeds);
	return 0;
}

static int book_show(struct cli *c, const char *name)
{
	struct tl_book b;
	struct tl_feed *feeds = NULL;
	size_t nf = 0;
	char hex[TL_PUB_LEN * 2 + 1], phex[TL_PUB_LEN * 2 + 1], when[32], path[4200];
	int rc = tl_store_book_get(c->store, name, &b);
	if (rc == TL_ENOTFOUND || rc == TL_EINVAL)
		return cli_fail(c, EXIT_INVALID, "%s", tl_store_errmsg(c->store));
	if (rc || tl_store_feed_list(c->store, &feeds, &nf) != 0)
		return cli_fail(c, EXIT_ENV, "%s", tl_store_errmsg(c->store));
	tl_hex_encode(hex, b.pk, TL_PUB_LEN);
	cli_time_iso(when, b.created_ms);
	cli_key_path(c, name, path, sizeof path);
	json_t *jf = json_array();
	if (!c->json)
		printf("book        %s\npublic key  %s\ncreated     %s\nkey file    %s\nfeeds\n",
		       b.name, hex, when, path);
	for (size_t i = 0; i < nf; i++) {
		if (!(feeds[i].flags & TL_FEED_OWN) || strcmp(feeds[i].book, name) != 0)
			continue;
		tl_hex_encode(phex, feeds[i].peer, TL_PUB_LEN);
		if (c->json)
			json_array_append_new(jf, json_pack("{s:s,s:s,s:s,s:I}", "origin",
			                                    feeds[i].origin, "peer", phex, "label",
			                                    feeds[i].label, "size",
			                                    (json_int_t)feeds[i].head.size));
		else
			printf("  %s  label=%s size=%llu\n    peer %s\n", feeds[i].origin,
			       feeds[i].label, (unsigned long long)feeds[i].head.size, phex);
	}
	if (c->json) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o}", "book", b.name, "public_key", hex,
		                      "created", when, "key_file", path, "feeds", jf);
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		json_decref(jf);
	}
	free(feeds);
	return 0;
}

int cmd_book(int argc, char **argv)
{
	struct cli c = {.cmd = "book"};
	int rc;
	if (argc < 1)
		return cli_usage(&c, "usage: tally book list | tally book show NAME");
	const char *sub = argv[0];
	if ((rc = cli_parse(&c, argc - 1, argv + 1, NULL, NULL)) != 0)
		return rc;
	if (strcmp(sub, "list") == 0 && c.npos == 0) {
		c.cmd = "book list";
		if ((rc = cli_open_store(&c, 0)) == 0)
			rc = book_list(&c);
	} else if (strcmp(sub, "show") == 0 && c.npos == 1) {
		c.cmd = "book show";
		if ((rc = cli_open_store(&c, 0)) == 0)
			rc = book_show(&c, c.pos[0]);
	} else {
		return cli_usage(&c, "usage: tally book list | tally book show NAME");
	}
	cli_close(&c);
	return rc;
}
