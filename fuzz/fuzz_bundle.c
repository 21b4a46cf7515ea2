/*
 * fuzz_bundle.c — libFuzzer target for the independent verifiers: the same
 * bytes are read as a tally-bundle/v1 JSON file, as a tlog-proof and as a
 * signed note. Whatever the input, each call must return with a report that
 * releases cleanly (no crash, leak or undefined behaviour).
 */
#include <stddef.h>
#include <stdint.h>

#include "node/tl_node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tl_verify_opts o = {.quorum = -1, .threads = 1, .now = 1700000000};
	struct tl_verify_report r;
	const char *text = (const char *)data;

	if (tl_init() != 0)
		return 0;
	(void)tl_verify_bundle(text, size, &o, &r);
	tl_verify_report_release(&r);
	(void)tl_verify_tlog_proof(text, size, &o, &r);
	tl_verify_report_release(&r);
	(void)tl_verify_note(text, size, &o, &r);
	tl_verify_report_release(&r);
	return 0;
}
