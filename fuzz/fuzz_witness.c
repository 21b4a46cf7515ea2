/*
 * fuzz_witness.c — libFuzzer target for the witness's add-checkpoint
 * request body parser (tl_witness_parse_request, node/witness.h) and the
 * client's parser of a 409 body (tl_wc_parse_size, node/wclient.h).
 *
 * Properties besides "no crash":
 *   - an accepted body re-serialises byte for byte from its parsed fields
 *     ("old N", the proof hashes in base64, the empty line, the note), and
 *     the client's serialiser tl_wc_body writes the very same bytes whenever
 *     it accepts the fields (it refuses proof lines with old 0);
 *   - never more than TL_WITNESS_PROOF_MAX proof lines: one more line put in
 *     front of the proof of an accepted body is accepted (with that hash
 *     first) below the cap and refused at it;
 *   - the parsed checkpoint is the note's text (same origin, size, root);
 *   - a rejection always gives a reason, and parsing is deterministic;
 *   - a 409 body that parses is exactly "<size>\n".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/wclient.h"
#include "node/witness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fields written back as a body, by hand. */
static void serialise(struct tl_buf *out, const struct tl_witness_request *rq,
                      const struct tl_note *note)
{
	char b64[48];

	if (tl_buf_printf(out, "old %llu\n", (unsigned long long)rq->old) != 0)
		abort();
	for (size_t i = 0; i < rq->nproof; i++) {
		tl_b64_encode(b64, rq->proof[i], TL_HASH_LEN);
		if (tl_buf_printf(out, "%s\n", b64) != 0)
			abort();
	}
	if (tl_buf_addc(out, '\n') != 0 || tl_buf_add(out, note->raw, strlen(note->raw)) != 0)
		abort();
}

/* One more proof line (an arbitrary hash) after the first line of an
 * accepted body. */
static void check_one_more_line(const char *b, size_t len, const struct tl_witness_request *rq)
{
	static struct tl_witness_request more;
	struct tl_note note;
	struct tl_checkpoint cp;
	struct tl_buf body;
	uint8_t h[TL_HASH_LEN];
	char b64[48], why[200];
	const char *nl = memchr(b, '\n', len), *bad;

	memset(h, 0xa5, sizeof h);
	tl_b64_encode(b64, h, sizeof h);
	tl_buf_init(&body, TL_WITNESS_BODY_MAX + 64);
	if (tl_buf_add(&body, b, (size_t)(nl + 1 - b)) != 0 ||
	    tl_buf_printf(&body, "%s\n", b64) != 0 ||
	    tl_buf_add(&body, nl + 1, len - (size_t)(nl + 1 - b)) != 0)
		abort();
	bad = tl_witness_parse_request((const char *)body.data, body.len, &more, &note, &cp, why,
	                               sizeof why);
	if (rq->nproof < TL_WITNESS_PROOF_MAX) {
		if (bad || more.nproof != rq->nproof + 1 || more.old != rq->old ||
		    memcmp(more.proof[0], h, TL_HASH_LEN) != 0 ||
		    memcmp(more.proof + 1, rq->proof, rq->nproof * TL_HASH_LEN) != 0)
			abort();
	} else if (!bad || more.nproof > TL_WITNESS_PROOF_MAX) {
		abort(); /* a 64th proof line was accepted */
	}
	tl_note_release(&note);
	tl_buf_release(&body);
}

static void check_body(const char *b, size_t len)
{
	static struct tl_witness_request rq, again;
	struct tl_note note, note2;
	struct tl_checkpoint cp, cp2;
	struct tl_buf out, wc;
	char why[200], why2[200];
	const char *bad, *bad2;

	memset(why, 0x55, sizeof why);
	bad = tl_witness_parse_request(b, len, &rq, &note, &cp, why, sizeof why);
	bad2 = tl_witness_parse_request(b, len, &again, &note2, &cp2, why2, sizeof why2);
	if (!bad != !bad2)
		abort(); /* not deterministic */
	if (bad) {
		if (bad == why && memchr(why, '\0', sizeof why) == NULL)
			abort(); /* an unterminated reason */
		if (strcmp(bad, bad2) != 0 || bad[0] == '\0')
			abort();
		tl_note_release(&note);
		tl_note_release(&note2);
		return;
	}
	if (rq.nproof > TL_WITNESS_PROOF_MAX || memcmp(&rq, &again, sizeof rq) != 0)
		abort();
	if (!note.raw || note.text_len == 0 || note.nsigs == 0 || cp.origin[0] == '\0')
		abort();
	/* The checkpoint is the note's text. */
	if (tl_checkpoint_parse(&cp2, note.raw, note.text_len) != 0 ||
	    strcmp(cp2.origin, cp.origin) != 0 || cp2.size != cp.size ||
	    memcmp(cp2.root, cp.root, TL_HASH_LEN) != 0)
		abort();

	tl_buf_init(&out, TL_WITNESS_BODY_MAX + 1024);
	serialise(&out, &rq, &note);
	if (out.len != len || memcmp(out.data, b, len) != 0)
		abort(); /* accepted bytes the fields do not account for */
	tl_buf_release(&out);

	tl_buf_init(&wc, TL_WITNESS_BODY_MAX + 1024);
	if (tl_wc_body(&wc, rq.old, (const uint8_t(*)[TL_HASH_LEN])rq.proof, rq.nproof, note.raw,
	               strlen(note.raw)) == 0) {
		if (wc.len != len || memcmp(wc.data, b, len) != 0)
			abort(); /* client and witness disagree on the format */
	} else if (rq.old != 0 || rq.nproof == 0) {
		abort(); /* the client refuses fields a witness accepts */
	}
	tl_buf_release(&wc);
	check_one_more_line(b, len, &rq);
	tl_note_release(&note);
	tl_note_release(&note2);
}

static void check_size(const uint8_t *data, size_t size)
{
	uint64_t v = 0;
	char s[32];

	if (tl_wc_parse_size(data, size, &v) != 0)
		return;
	int k = snprintf(s, sizeof s, "%llu\n", (unsigned long long)v);
	if (k < 0 || (size_t)k != size || memcmp(s, data, size) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready) {
		if (tl_init() != 0)
			abort();
		ready = 1;
	}
	if (size > TL_WITNESS_BODY_MAX)
		return 0; /* the server refuses larger bodies before parsing */
	check_body((const char *)data, size);
	check_size(data, size);
	return 0;
}
