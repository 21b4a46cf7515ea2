#!/bin/sh
# Runs every benchmark in BUILD/bench and prints the figures with the machine.
# BENCH_QUICK=1 runs smaller sizes (for a smoke check, not for quoting).
set -eu
build=${1:-build}
echo "tally benchmarks — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -srm)"
for b in "$build"/bench/bench_*; do
	case "$b" in *.o|*.d) continue;; esac
	[ -x "$b" ] || continue
	echo "== $(basename "$b")"
	if [ "${BENCH_QUICK:-0}" = 1 ]; then
		"$b" "${TMPDIR:-/tmp}/tally-bench-$$" --quick
	else
		"$b" "${TMPDIR:-/tmp}/tally-bench-$$"
	fi
done
