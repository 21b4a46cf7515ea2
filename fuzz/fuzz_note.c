/*
 * fuzz_note.c — signed notes, checkpoints and vkeys from untrusted bytes.
 *
 * Besides not crashing, whatever parses must survive its own round trip:
 * a checkpoint without extensions formats back to the same text, and a
 * vkey formats to a string that parses to the same key.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/tl_crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed pair of keys, so verification paths run on every parsed note. */
static const char log_vkey[] =
        "example.com/ledger-test+303f2c27+AcLZk8HI2i1QbsLNym594VwLDrGZ/O5QybfOmZZXxdA/";
static const char wit_vkey[] =
        "witness.example.com/w-test+526c3c3f+BJBz38QxWAJCC61IBrppVosBrOf45i8mzCaIAZwSr3UD";

static void check_checkpoint(const char *text, size_t len)
{
	struct tl_checkpoint cp, again;
	struct tl_buf b;

	if (tl_checkpoint_parse(&cp, text, len) != 0)
		return;
	if (cp.origin[0] == '\0')
		abort();
	tl_buf_init(&b, TL_NOTE_MAX);
	if (tl_checkpoint_format(&cp, &b) != 0)
		abort();
	if (cp.nextensions == 0 && (b.len != len || memcmp(b.data, text, len) != 0))
		abort();
	if (tl_checkpoint_parse(&again, (const char *)b.data, b.len) != 0 ||
	    again.size != cp.size || memcmp(again.root, cp.root, TL_HASH_LEN) != 0 ||
	    strcmp(again.origin, cp.origin) != 0)
		abort();
	tl_buf_release(&b);
}

static void check_vkey(const char *s, size_t len)
{
	struct tl_vkey vk, again;
	struct tl_buf b;

	if (tl_vkey_parse(&vk, s, len) != 0)
		return;
	tl_buf_init(&b, 1024);
	if (tl_vkey_format(&vk, &b) != 0)
		abort();
	if (tl_vkey_parse(&again, (const char *)b.data, b.len) != 0 ||
	    memcmp(&again, &vk, sizeof(vk)) != 0)
		abort();
	tl_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static struct tl_vkey lvk, wvk;
	const char *s = (const char *)data;
	struct tl_note n;
	uint64_t t;
	size_t i;
	int rc;

	if (!ready) {
		if (tl_init() != 0 || tl_vkey_parse(&lvk, log_vkey, strlen(log_vkey)) != 0 ||
		    tl_vkey_parse(&wvk, wit_vkey, strlen(wit_vkey)) != 0)
			abort();
		ready = 1;
	}

	rc = tl_note_parse(&n, s, size);
	if (rc == 0) {
		if (n.nsigs == 0 || n.nsigs > TL_NOTE_MAX_SIGS || n.text_len == 0 ||
		    n.text_len >= size || n.raw[n.text_len - 1] != '\n')
			abort();
		for (i = 0; i < n.nsigs; i++)
			/* bloblen 0 marks a signature longer than Tally can use (an
			 * unknown key's, ignored): its base64 alone is over 172
			 * characters ("— " and a name come before it). */
			if ((n.sigs[i].bloblen == 0 && n.sigs[i].linelen < 4 + 1 + 1 + 172) ||
			    n.sigs[i].bloblen > TL_NOTE_SIG_MAX - 4 ||
			    n.sigs[i].line < n.raw ||
			    n.sigs[i].line + n.sigs[i].linelen > n.raw + size)
				abort();
		rc = tl_note_verify(&n, &lvk);
		if (rc != 0 && rc != TL_ENOTFOUND && rc != TL_ESIG)
			abort();
		rc = tl_cosig_verify(&n, &wvk, &t);
		if (rc != 0 && rc != TL_ENOTFOUND && rc != TL_ESIG)
			abort();
		check_checkpoint(n.raw, n.text_len);
		tl_note_release(&n);
	} else if (n.raw || n.sigs || n.nsigs) {
		abort();
	}
	check_checkpoint(s, size);
	check_vkey(s, size);
	return 0;
}
