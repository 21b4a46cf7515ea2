#!/bin/sh
# Runs every test program in DIR from the repository root and prints, last,
# the total as "N passed, N failed". Exit status 0 only if nothing failed.
set -u
dir=${1:-build/tests}
cd "$(dirname "$0")/.." || exit 2
passed=0; failed=0; broken=""
for t in "$dir"/test_*; do
	[ -x "$t" ] || continue
	case "$t" in *.o|*.d) continue;; esac
	name=$(basename "$t")
	log=$(mktemp)
	CMOCKA_MESSAGE_OUTPUT=STDOUT "$t" >"$log" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # crashed or failed outside a test case
	fi
	if [ "$f" -ne 0 ]; then
		cat "$log"
		broken="$broken $name"
	else
		printf '%-28s %4d passed\n' "$name" "$p"
	fi
	passed=$((passed + p)); failed=$((failed + f))
	rm -f "$log"
done
[ -n "$broken" ] && echo "failing programs:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
