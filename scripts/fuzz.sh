#!/bin/sh
# Builds each libFuzzer target with ASan+UBSan and runs it for SECONDS.
# usage: fuzz.sh CC SECONDS "PKGS" fuzz/fuzz_a.c ...
# Seeds: fuzz/corpus/<target>/ (checked in); findings land in build-fuzz/.
set -eu
cc=$1; secs=$2; pkgs=$3; shift 3
TALLY_FUZZ_DEPS=1 scripts/deps.sh
out=build-fuzz
mkdir -p "$out"
lib_src=$(ls crypto/*.c consensus/*.c node/*.c | grep -v '/main\.c$')
flags="-std=c11 -g -O1 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -I. -pthread
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
status=0
for src in "$@"; do
	name=$(basename "$src" .c)
	echo "== $name (${secs}s)"
	# shellcheck disable=SC2086
	$cc $flags $(pkg-config --cflags $pkgs) "$src" $lib_src -o "$out/$name" \
		$(pkg-config --libs $pkgs)
	corpus="$out/corpus-$name"
	mkdir -p "$corpus"
	[ -d "fuzz/corpus/$name" ] && cp -n fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
	if ! "$out/$name" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$out/$name-" "$corpus" >"$out/$name.log" 2>&1; then
		echo "$name: FAILED — see $out/$name.log and $out/$name-crash-*"
		tail -40 "$out/$name.log"
		status=1
	else
		grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$out/$name.log" | tail -1
	fi
done
exit $status
