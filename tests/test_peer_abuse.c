/*
 * test_peer_abuse.c — what a lying or abusive counterparty can and cannot
 * do to a node (review H10): a real tallyd and a hand-made counterparty
 * (tests/nodes.h) that opened a channel with it and speaks the wire
 * protocol.
 *
 * - Its word alone ("heads" claiming more of our feed than we hold) holds
 *   our appends once, for HOLD_MS (10 s), not again and again;
 * - while the hold lasts, the node does not write `seen` receipts to the
 *   held feed either (a restored node would fork it);
 * - signature lines in a batch checkpoint by keys the node does not know
 *   are not stored (they could crowd out real cosignatures);
 * - a checkpoint with the stored root but another text is not a fork;
 * - heads saying it lost its own feed get one batch back per session, not
 *   one per heads message;
 * - another record signed by our own key for a stored seq of our feed
 *   halts it (a restored copy appended), as a `fork` message would;
 * - fork evidence that proves nothing closes the session (each piece is
 *   verified on the writer thread; a peer must not queue them unchecked).
 */
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodes.h"

static int setup(void **state)
{
	return th_fx_setup(state, "peer_abuse");
}

static int teardown(void **state)
{
	return th_fx_teardown(state);
}

/* The counterparty's own feed, written in a scratch store of its own. */
struct cpty {
	struct tl_keypair k;
	struct tl_store *s;
	char origin[TL_ORIGIN_LEN + 1];
	struct tl_feed f;
};

static void cpty_open(struct th_fx *x, struct cpty *c, const uint8_t node_pk[TL_PUB_LEN])
{
	char dir[4200], err[256];
	struct tl_book b;
	struct tl_channel ch;
	assert_int_equal(tl_key_generate(&c->k), 0);
	snprintf(dir, sizeof dir, "%s/cpty-store", x->dir);
	assert_int_equal(tl_store_open(&c->s, dir, 0, 1u << 26, err, sizeof err), 0);
	memset(&b, 0, sizeof b);
	snprintf(b.name, sizeof b.name, "cpty");
	memcpy(b.pk, c->k.pk, TL_PUB_LEN);
	assert_int_equal(tl_store_book_add(c->s, &b), 0);
	assert_int_equal(
	        tl_channel_open(c->s, "cpty", &c->k, node_pk, "default", NULL, 0, 1000, &ch), 0);
	memcpy(c->origin, ch.origin, sizeof c->origin);
	assert_int_equal(tl_store_feed_get(c->s, c->origin, &c->f), 0);
}

static void cpty_close(struct cpty *c)
{
	tl_store_close(c->s);
	tl_key_wipe(&c->k);
}

/* The text of the counterparty's checkpoint of its whole feed. */
static void cp_text(struct cpty *c, struct tl_checkpoint *cp, struct tl_buf *text)
{
	assert_int_equal(tl_store_feed_get(c->s, c->origin, &c->f), 0);
	memset(cp, 0, sizeof *cp);
	memcpy(cp->origin, c->origin, TL_ORIGIN_LEN + 1);
	cp->size = c->f.head.size;
	assert_int_equal(tl_store_root(c->s, &c->f, cp->size, cp->root), 0);
	assert_int_equal(tl_checkpoint_format(cp, text), 0);
}

/* ["recs", origin, 0, [every record], note]: note is the counterparty's
 * checkpoint of its whole feed plus a line by a key nobody configured. */
static void send_all_recs(struct th_wire *w, struct cpty *c)
{
	struct tl_buf m, rec, text, note, junk;
	struct tl_checkpoint cp;
	struct tl_keypair jk;
	msgpack_packer pk;
	tl_buf_init(&text, 1024);
	tl_buf_init(&note, TL_NOTE_MAX);
	tl_buf_init(&junk, TL_NOTE_MAX);
	cp_text(c, &cp, &text);
	assert_int_equal(tl_note_sign(&note, (const char *)text.data, text.len, c->origin, &c->k),
	                 0);
	assert_int_equal(tl_key_generate(&jk), 0);
	assert_int_equal(
	        tl_note_sign(&junk, (const char *)text.data, text.len, "junk.example/unknown", &jk),
	        0);
	/* junk = text "\n" line: its last line goes after the author's. */
	assert_int_equal(tl_buf_add(&note, junk.data + text.len + 1, junk.len - text.len - 1), 0);
	tl_key_wipe(&jk);

	tl_buf_init(&m, TL_FRAME_MAX);
	tl_buf_init(&rec, TL_RECORD_MAX);
	msgpack_packer_init(&pk, &m, th_pack_write);
	msgpack_pack_array(&pk, 5);
	msgpack_pack_str_with_body(&pk, "recs", 4);
	msgpack_pack_str_with_body(&pk, c->origin, TL_ORIGIN_LEN);
	msgpack_pack_uint64(&pk, 0);
	msgpack_pack_array(&pk, (uint32_t)cp.size);
	for (uint64_t i = 0; i < cp.size; i++) {
		assert_int_equal(tl_store_record(c->s, &c->f, i, &rec), 0);
		msgpack_pack_bin_with_body(&pk, rec.data, rec.len);
	}
	msgpack_pack_str_with_body(&pk, (const char *)note.data, note.len);
	th_send_frame(w, m.data, m.len, NULL);
	tl_buf_release(&m);
	tl_buf_release(&rec);
	tl_buf_release(&text);
	tl_buf_release(&note);
	tl_buf_release(&junk);
}

/* ["cp", origin, size, note]: the counterparty's checkpoint of its whole
 * feed with the right root, but one extension line in the text. */
static void send_cp_ext(struct th_wire *w, struct cpty *c)
{
	struct tl_buf m, text, note;
	struct tl_checkpoint cp;
	msgpack_packer pk;
	tl_buf_init(&text, 1024);
	tl_buf_init(&note, TL_NOTE_MAX);
	cp_text(c, &cp, &text);
	assert_int_equal(tl_buf_add(&text, "extension\n", 10), 0);
	assert_int_equal(tl_note_sign(&note, (const char *)text.data, text.len, c->origin, &c->k),
	                 0);
	tl_buf_init(&m, TL_FRAME_MAX);
	msgpack_packer_init(&pk, &m, th_pack_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_str_with_body(&pk, "cp", 2);
	msgpack_pack_str_with_body(&pk, c->origin, TL_ORIGIN_LEN);
	msgpack_pack_uint64(&pk, cp.size);
	msgpack_pack_str_with_body(&pk, (const char *)note.data, note.len);
	th_send_frame(w, m.data, m.len, NULL);
	tl_buf_release(&m);
	tl_buf_release(&text);
	tl_buf_release(&note);
}

static unsigned feed_flags(const struct th_node *nd, const char *origin)
{
	struct tl_store *s = th_store_ro(nd);
	struct tl_feed f;
	unsigned fl = 0;
	assert_non_null(s);
	if (tl_store_feed_get(s, origin, &f) == 0)
		fl = f.flags;
	tl_store_close(s);
	return fl;
}

/* ["heads", [[a, sa], [b, sb]]] */
static void send_heads(struct th_wire *w, const char *a, uint64_t sa, const char *b, uint64_t sb)
{
	struct tl_buf m;
	msgpack_packer pk;
	tl_buf_init(&m, 4096);
	msgpack_packer_init(&pk, &m, th_pack_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, "heads", 5);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, a, TL_ORIGIN_LEN);
	msgpack_pack_uint64(&pk, sa);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, b, TL_ORIGIN_LEN);
	msgpack_pack_uint64(&pk, sb);
	th_send_frame(w, m.data, m.len, NULL);
	tl_buf_release(&m);
}

/* Reads (and drops) what the node sent, for up to ms. */
static void drain(struct th_wire *w, unsigned ms)
{
	struct tl_buf pt;
	tl_buf_init(&pt, TL_FRAME_MAX);
	uint64_t end = th_mono_ms() + ms;
	while (th_next_frame(w, &pt, end))
		;
	tl_buf_release(&pt);
}

/* Reads what the node sends for up to ms: how many recs batches of origin. */
static int count_recs(struct th_wire *w, const char *origin, unsigned ms)
{
	struct tl_buf pt;
	int k = 0;
	tl_buf_init(&pt, TL_FRAME_MAX);
	uint64_t end = th_mono_ms() + ms;
	while (th_next_frame(w, &pt, end)) {
		msgpack_unpacked u;
		size_t off = 0;
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, (const char *)pt.data, pt.len, &off) ==
		            MSGPACK_UNPACK_SUCCESS &&
		    u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 5) {
			const msgpack_object *a = u.data.via.array.ptr;
			if (a[0].type == MSGPACK_OBJECT_STR && a[0].via.str.size == 4 &&
			    memcmp(a[0].via.str.ptr, "recs", 4) == 0 &&
			    a[1].type == MSGPACK_OBJECT_STR && a[1].via.str.size == TL_ORIGIN_LEN &&
			    memcmp(a[1].via.str.ptr, origin, TL_ORIGIN_LEN) == 0)
				k++;
		}
		msgpack_unpacked_destroy(&u);
	}
	tl_buf_release(&pt);
	return k;
}

/* `tally feed append` of one memo: its exit status; stderr in err. */
static int append_one(struct th_fx *x, struct th_node *nd, const char *origin, const char *tag,
                      char *err, size_t cap)
{
	struct th_run r = {0};
	char *path = th_jsonl_file(x, "memo", tag, 0, 1);
	const char *a[] = {"tally", "feed", "append", origin, "--jsonl", path, NULL};
	int rc = th_node_tally(nd, &r, a, NULL);
	snprintf(err, cap, "%s", r.err ? r.err : "");
	th_run_free(&r);
	free(path);
	return rc;
}

struct note_has {
	struct th_node *nd;
	const char *origin;
	uint64_t size;
	const char *needle;
	int found, stored;
};

static void stored_note(struct note_has *h)
{
	struct tl_store *s = th_store_ro(h->nd);
	struct tl_feed f;
	struct tl_buf note;
	uint64_t got = 0;
	h->found = h->stored = 0;
	assert_non_null(s);
	tl_buf_init(&note, TL_NOTE_MAX);
	if (tl_store_feed_get(s, h->origin, &f) == 0 &&
	    tl_store_checkpoint_get(s, &f, h->size, &note, &got) == 0 && got == h->size) {
		h->stored = 1;
		assert_int_equal(tl_buf_addc(&note, 0), 0);
		h->found = strstr((const char *)note.data, h->needle) != NULL;
	}
	tl_buf_release(&note);
	tl_store_close(s);
}

static void test_lying_counterparty(void **state)
{
	struct th_fx *x = *state;
	struct th_node *sup = th_node_add(x, "sup");
	struct th_node fake;
	struct cpty c;
	struct th_wire w;
	char os[TL_ORIGIN_LEN + 1], ok[TL_ORIGIN_LEN + 1], err[4096];
	th_node_start(sup, NULL);
	cpty_open(x, &c, sup->pk);
	memset(&fake, 0, sizeof fake);
	tl_hex_encode(fake.pkhex, c.k.pk, TL_PUB_LEN);
	th_channel_open_full(sup, &fake, 0, NULL, os, ok);
	assert_string_equal(ok, c.origin);
	/* The counterparty's feed: feed.open and one memo. */
	{
		struct tl_item it = {"memo", 4, (const uint8_t *)"\x81\xa1n\x01", 4};
		assert_int_equal(tl_feed_append_local(c.s, c.origin, &c.k, &it, 1, 1, 2000, NULL,
		                                      NULL, NULL, NULL),
		                 0);
	}
	char *one = th_jsonl_file(x, "memo", "sup", 0, 1);
	th_append_file(sup, os, one, 1);
	free(one);
	uint64_t mine = th_feed_size(sup, os);
	assert_int_equal(mine, 2);

	th_wire_init(&w, th_tcp_connect(x, sup->addr));
	assert_int_equal(th_handshake(&w, &c.k, sup->pk), 0);
	drain(&w, 300);
	/* The lie: we hold 5 more of its feed than it does. */
	uint64_t t0 = th_mono_ms();
	send_heads(&w, os, mine + 5, ok, 0);
	th_expect_log(sup, "appends to it wait for the peer to send them back");
	send_all_recs(&w, &c);
	uint64_t end = th_mono_ms() + th_limit(10000);
	while (th_feed_size(sup, ok) < 2 && th_mono_ms() < end)
		drain(&w, 50);
	assert_int_equal(th_feed_size(sup, ok), 2);

	/* Only the author's line of the batch checkpoint is stored. */
	struct note_has h = {sup, ok, 2, "junk.example/unknown", 0, 0};
	stored_note(&h);
	assert_true(h.stored);
	assert_false(h.found);
	h.needle = "\n\xe2\x80\x94 tally.v1/";
	stored_note(&h);
	assert_true(h.found);

	/* A checkpoint with the stored root in another text is no fork. */
	send_cp_ext(&w, &c);
	th_expect_log(sup, "same root as the stored one but another text");
	assert_int_equal(feed_flags(sup, ok) & TL_FEED_FORKED, 0);

	/* Held: appends refused, and no `seen` receipt either (due 1 s after
	 * the ingest above). */
	assert_int_equal(append_one(x, sup, os, "held", err, sizeof err), 1);
	assert_non_null(strstr(err, "waiting for it to send them back"));
	drain(&w, 2500);
	assert_int_equal(th_feed_size(sup, os), mine);

	/* The lie repeated: it does not hold appends beyond the first hold. */
	while (th_mono_ms() < t0 + 12000) {
		send_heads(&w, os, mine + 5, ok, 2);
		drain(&w, 1000);
	}
	send_heads(&w, os, mine + 5, ok, 2);
	th_expect_log(sup, "appends are not held again");
	assert_int_equal(append_one(x, sup, os, "after", err, sizeof err), 0);
	/* ... and the receipt that waited is written. */
	end = th_mono_ms() + th_limit(10000);
	while (th_feed_size(sup, os) < mine + 2 && th_mono_ms() < end)
		drain(&w, 100);
	assert_true(th_feed_size(sup, os) >= mine + 2);

	/* Heads saying it lost its own feed get it back once a session, not
	 * once a heads message (each a few bytes, each batch up to a MiB). */
	for (int i = 0; i < 3; i++)
		send_heads(&w, os, th_feed_size(sup, os), ok, 0);
	assert_int_equal(count_recs(&w, ok, 1500), 1);
	th_expect_log(sup, "back to it");

	/* Another record for seq 1 of our own feed, signed by our own key (as
	 * a restored copy would have): proof that halts the feed, whichever
	 * message carries it. */
	{
		struct tl_keypair me;
		struct tl_buf rec, m;
		char kp[4200];
		uint8_t prev[TL_HASH_LEN] = {0};
		msgpack_packer pk;
		snprintf(kp, sizeof kp, "%s/keys/sup.key", sup->home);
		assert_int_equal(tl_keyfile_read(kp, TH_PASS, strlen(TH_PASS), &me), 0);
		tl_buf_init(&rec, TL_RECORD_MAX);
		assert_int_equal(tl_entry_encode(&rec, os, 1, prev, 5000, "memo", 4,
		                                 (const uint8_t *)"\x81\xa1n\x02", 4),
		                 0);
		assert_int_equal(tl_record_sign(&rec, me.sk), 0);
		tl_key_wipe(&me);
		tl_buf_init(&m, TL_FRAME_MAX);
		msgpack_packer_init(&pk, &m, th_pack_write);
		msgpack_pack_array(&pk, 5);
		msgpack_pack_str_with_body(&pk, "recs", 4);
		msgpack_pack_str_with_body(&pk, os, TL_ORIGIN_LEN);
		msgpack_pack_uint64(&pk, 1);
		msgpack_pack_array(&pk, 1);
		msgpack_pack_bin_with_body(&pk, rec.data, rec.len);
		msgpack_pack_str_with_body(&pk, "-", 1);
		th_send_frame(&w, m.data, m.len, NULL);
		tl_buf_release(&m);
		tl_buf_release(&rec);
		th_expect_log(sup, "that differ from the ones stored here");
		unsigned fl = feed_flags(sup, os);
		assert_true(fl & TL_FEED_FORKED);
		assert_true(fl & TL_FEED_HALTED);
		assert_int_equal(append_one(x, sup, os, "forked", err, sizeof err), 1);
		assert_non_null(strstr(err, "is halted"));
	}

	/* Fork evidence that proves nothing: the session is dropped. */
	{
		struct tl_buf m;
		msgpack_packer pk;
		tl_buf_init(&m, 4096);
		msgpack_packer_init(&pk, &m, th_pack_write);
		msgpack_pack_array(&pk, 6);
		msgpack_pack_str_with_body(&pk, "fork", 4);
		msgpack_pack_str_with_body(&pk, ok, TL_ORIGIN_LEN);
		msgpack_pack_str_with_body(&pk, "records", 7);
		msgpack_pack_uint64(&pk, 1);
		msgpack_pack_bin_with_body(&pk, "a", 1);
		msgpack_pack_bin_with_body(&pk, "b", 1);
		th_send_frame(&w, m.data, m.len, NULL);
		tl_buf_release(&m);
	}
	assert_true(th_wait_closed(w.fd, th_limit(10000), NULL));
	th_expect_log(sup, "sent fork evidence that proves nothing");
	th_fd_close(x, w.fd);
	th_wire_release(&w);
	cpty_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_lying_counterparty, setup, teardown),
	};
	if (tl_init() != 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("peer_abuse", tests, NULL, NULL);
}
