/*
 * test_demo.c — `make demo` is a deliverable: the walk-through in
 * scripts/demo.sh runs supplier, customer and witness processes through a
 * whole reconciliation and an audit. This runs it in a temporary directory
 * with the binaries under test and checks what it must show: both sides'
 * state digests equal, the voucher fetched intact, one confirmation proven
 * on time and one proven late by the witness's cosignatures while the
 * customer's own clock claims on time, the proof file valid with its
 * witnessed time, and the tampered bundle refused.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The value after "state digest " on the line following the n-th "$ ...
 * channel state" command. */
static void digests(const char *out, char a[65], char b[65])
{
	const char *p = strstr(out, "state digest ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "state digest %64s", a), 1);
	p = strstr(p + 1, "state digest ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "state digest %64s", b), 1);
}

static void test_demo_runs(void **state)
{
	struct th_run r = {0};
	char *dir = th_tmpdir("demo");
	char env_dir[4200], a[65], b[65];
	(void)state;

	snprintf(env_dir, sizeof env_dir, "TALLY_DEMO_DIR=%s/demo", dir);
	const char *env[] = {env_dir, NULL};
	/* demo.sh takes the tally binary; tallyd is found next to it. */
	const char *argv[] = {"/bin/sh", "scripts/demo.sh", th_tally(), NULL};
	assert_int_equal(th_run(&r, argv, env, NULL, 0, 240), 0);
	if (r.status != 0)
		fprintf(stderr, "%s\n%s\n", r.out, r.err);
	assert_int_equal(r.status, 0);

	digests(r.out, a, b);
	assert_string_equal(a, b);
	/* The voucher crossed intact. */
	assert_non_null(strstr(r.out, "SHA-256 verified (fetched from the counterparty)"));
	assert_non_null(strstr(r.out, "unit price 1,950.00 CNY"));
	/* The audit: ST-...-0042 answered on time, ST-...-0043 proven late
	 * although every claimed time says on time. */
	const char *audit = strstr(r.out, "audit of ");
	assert_non_null(audit);
	assert_non_null(strstr(audit, ": VALID"));
	const char *late = strstr(audit, "statement ST-2026-11-0043 v1");
	assert_non_null(late);
	assert_non_null(strstr(late, "witnessed: LATE by"));
	assert_true(count(audit, "witnessed: ON TIME (proven)") >= 2);
	assert_int_equal(count(audit, "claimed: late"), 0);
	/* The single-entry proof carries its witnessed time. */
	assert_non_null(strstr(r.out, "witnessed time: the entry existed by"));
	assert_non_null(strstr(r.out, "statement.tlog-proof: VALID"));
	/* The tampered bundle is refused, naming feed and seq. */
	assert_non_null(strstr(r.out, "tampered.json: NOT VALID"));
	assert_non_null(strstr(r.out, "INVALID: feed tally.v1/"));
	assert_non_null(strstr(r.out, ": seq 0: "));

	th_run_free(&r);
	th_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_demo_runs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
