/*
 * fuzz_bundle.c — libFuzzer target for the independent verifiers: the same
 * bytes are read as a tally-bundle/v1 JSON file, as a tlog-proof and as a
 * signed note. Whatever the input, each call must return with a report that
 * releases cleanly (no crash, leak or undefined behaviour), and the verdict
 * must agree with the report: 0 exactly when no finding was made.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "node/tl_node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, struct tl_verify_report *r)
{
	if ((rc == 0) != (r->nissues == 0))
		abort();
	if (r->nissues && !r->issues)
		abort();
	tl_verify_report_release(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tl_verify_opts o = {.quorum = -1, .threads = 1, .now = 1700000000};
	struct tl_verify_report r;
	const char *text = (const char *)data;
	int rc;

	if (tl_init() != 0)
		return 0;
	rc = tl_verify_bundle(text, size, &o, &r);
	check(rc, &r);
	rc = tl_verify_tlog_proof(text, size, &o, &r);
	check(rc, &r);
	rc = tl_verify_note(text, size, &o, &r);
	check(rc, &r);
	return 0;
}
