#!/bin/sh
# The walk-through: a supplier's node, a customer's node and a witness on
# loopback, a channel between them, a reconciliation cycle (terms, statement
# from CSV, match, dispute with a voucher, re-issue, air-gapped confirmation,
# close), then an auditor's bundle of both feeds: `tally audit` proves from
# the witness's cosignatures one confirmation on time and one late; a
# single-entry proof; a tampered copy that verification rejects.
#
# Time: a real reconciliation takes weeks. To show three weeks in a minute,
# the demo's witness first runs with its clock set 20 days back (the
# test-only --clock-offset of tallyd --witness), then is restarted with the
# true clock: everything cosigned before the restart is witnessed "20 days
# ago". Production witnesses never do this; verifiers refuse cosignatures
# from the future, not from the past.
#
# Everything lives in build/demo; the passphrase is set here so that nothing
# prompts.
set -eu
bin=$(cd "$(dirname "${1:-build/tally}")" && pwd)
tally=$bin/tally
tallyd=$bin/tallyd
root=$(cd "$(dirname "$0")/.." && pwd)
demo=${TALLY_DEMO_DIR:-$root/build/demo}
rm -rf "$demo"
mkdir -p "$demo"
export TALLY_PASSPHRASE="demo passphrase, not for production"
S="$demo/supplier" C="$demo/customer" W="$demo/witness"
pids=""
wpid=""
cleanup() {
	for p in $pids $wpid; do kill "$p" 2>/dev/null || true; done
	for p in $pids $wpid; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }
wait_file() { i=0; while [ ! -s "$1" ]; do i=$((i + 1)); [ $i -gt 200 ] && { echo "timeout waiting for $1" >&2; exit 1; }; sleep 0.05; done; }
feed_size() { # home origin
	"$tally" --home "$1" --json feed list | tr '{' '\n' | grep "\"$2\"" | sed 's/.*"size":\([0-9]*\).*/\1/'
}
wait_size() { # home origin size
	i=0
	while :; do
		n=$("$tally" --home "$1" --json feed list | tr '{' '\n' | grep "\"$2\"" | sed 's/.*"size":\([0-9]*\).*/\1/')
		[ "${n:-0}" -ge "$3" ] && return 0
		i=$((i + 1)); [ $i -gt 400 ] && { echo "timeout: $2 has ${n:-0} of $3 at $1" >&2; exit 1; }
		sleep 0.05
	done
}

# The witness's latest cosigned size of a feed (0 when none).
wsize() { "$tally" --home "$W" --json witness list | tr '{' '\n' | grep "\"$1\"" |
	sed 's/.*"size":\([0-9]*\).*/\1/'; }
wait_cosigned() { # origin size: the witness has cosigned at least size
	i=0
	while [ "$(wsize "$1")" -lt "$2" ] 2>/dev/null || [ -z "$(wsize "$1")" ]; do
		i=$((i + 1)); [ $i -gt 600 ] && { echo "timeout: witness has not cosigned $1 at $2" >&2; exit 1; }
		sleep 0.05
	done
}
start_witness() { # listen clock-offset
	"$tallyd" --witness --home "$W" --listen "$1" --clock-offset "$2" 2>>"$demo/witness.log" &
	wpid=$!
	wait_file "$W/witness.addr"
}

step "1. A witness starts (its clock 20 days back: see the top of this script)"
wkey=$(run "$tally" --home "$W" witness init --name witness.demo | head -1)
start_witness 127.0.0.1:0 -1728000
waddr=$(cat "$W/witness.addr")
echo "witness key $wkey at $waddr"

step "2. Each company creates its book (an Ed25519 key, encrypted at rest) and starts its node"
supplier=$(run "$tally" --home "$S" init --book supplier-sh)
customer=$(run "$tally" --home "$C" init --book customer-bj)
for h in "$S" "$C"; do
	printf 'home = %s\nlisten = 127.0.0.1:0\nwitness = http://%s %s\nwitness_heartbeat = 1\n' \
		"$h" "$waddr" "$wkey" >"$h.conf"
done
"$tallyd" --config "$S.conf" 2>"$demo/supplier.log" & pids="$pids $!"
"$tallyd" --config "$C.conf" 2>"$demo/customer.log" & pids="$pids $!"
wait_file "$S/tallyd.addr"; wait_file "$C/tallyd.addr"
echo "supplier $supplier  node at $(cat "$S/tallyd.addr")"
echo "customer $customer  node at $(cat "$C/tallyd.addr")"

step "3. Both open the channel; the witness operator registers both feeds' keys"
sfeed=$(run "$tally" --home "$S" channel open --book supplier-sh --peer "$customer@$(cat "$C/tallyd.addr")")
cfeed=$(run "$tally" --home "$C" channel open --book customer-bj --peer "$supplier@$(cat "$S/tallyd.addr")")
run "$tally" --home "$W" witness allow "$sfeed" "$("$tally" feed vkey "$sfeed")"
run "$tally" --home "$W" witness allow "$cfeed" "$("$tally" feed vkey "$cfeed")"
wait_size "$C" "$sfeed" 1; wait_size "$S" "$cfeed" 1
run "$tally" --home "$S" status

step "4. The terms: the supplier proposes, the customer accepts (until then, defaults apply)"
terms=$(run "$tally" --home "$S" terms propose --channel "$sfeed" --cycle monthly:1 --tz +08:00 \
	--response-days 10 --procedure confirmation --currency CNY --escalate 5:1:ap-manager \
	--witness "$wkey" --quorum 1 |
	cut -d' ' -f2)
i=0
until "$tally" --home "$C" terms accept --channel "$cfeed" "$terms" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 200 ] && { echo "timeout: the proposal did not reach the customer" >&2; exit 1; }
	sleep 0.05
done
echo "$ $tally --home $C terms accept --channel $cfeed $terms"
run "$tally" --home "$C" terms show --channel "$cfeed"

step "5. The customer watches; the supplier imports its statements of account from the ERP's CSV"
"$tally" --home "$C" watch >"$demo/watch.txt" 2>/dev/null & pids="$pids $!"
sleep 0.3
out=$(run "$tally" --home "$S" statement import "$root/examples/statement.csv" --channel "$sfeed" \
	--id ST-2026-11-0042 --currency CNY --from 2026-11-01 --to 2026-11-30 --opening 12500.00)
leaf=$(echo "$out" | cut -d' ' -f2)
stmt_seq=$(echo "$out" | cut -d' ' -f1)
echo "statement entry (leaf hash) $leaf"
# A second, small statement (maintenance services) that the customer will leave unanswered.
printf 'date,type,doc,amount,due,memo\n2026-11-10,invoice,SVC-7001,"1,200.00",2026-12-10,Maintenance November 2026\n' \
	>"$demo/services.csv"
out2=$(run "$tally" --home "$S" statement import "$demo/services.csv" --channel "$sfeed" \
	--id ST-2026-11-0043 --currency CNY --from 2026-11-01 --to 2026-11-30)
svc=$(echo "$out2" | cut -d' ' -f2)
out=$out2
wait_size "$C" "$sfeed" $(($(echo "$out" | cut -d' ' -f1) + 1))
sleep 1.2 # receipts (`seen`) are batched once a second
echo "-- what the customer's watch printed, as it happened:"
cat "$demo/watch.txt"

step "6. The customer's inbox, the statement, and the automatic match (exit 1: differences)"
run "$tally" --home "$C" statement list --incoming
run "$tally" --home "$C" statement show "$leaf" --channel "$cfeed"
run "$tally" --home "$C" match "$leaf" --ledger "$root/examples/payables.csv" || true

step "7. The customer's approver disputes the two lines, signing with a person key, with a voucher"
export TALLY_PERSON_PASSPHRASE="approver passphrase, demo only"
approver=$(run "$tally" --home "$C" key new --name li.approver)
run "$tally" --home "$C" key grant --book customer-bj --channel "$cfeed" --key "$approver" \
	--role approver --name "Li (AP approver)"
run "$tally" --home "$C" view "$leaf" --channel "$cfeed"
printf 'Framework contract FC-2026-017, annex 2: spare parts, unit price 1,950.00 CNY\n' \
	>"$demo/contract-annex-2.txt"
seq=$(run "$tally" --home "$C" dispute "$leaf" --channel "$cfeed" \
	--key "$C/people/li.approver.key" --balance 631950 \
	--line INV-88031 --their-amount 195000 --reason price --note "contract price 1950.00" \
	--attach "INV-88031=$demo/contract-annex-2.txt" \
	--line INV-88102 --their-amount 0 --reason not_received | cut -d' ' -f1)
wait_size "$S" "$cfeed" $((seq + 1))

step "8. The supplier sees the dispute and re-issues with two credit notes (version 2)"
run "$tally" --home "$S" statement list --outgoing
run "$tally" --home "$S" statement show "$leaf" --channel "$sfeed" | sed -n '/disputed lines/,/^$/p'
voucher=$("$tally" --home "$S" --json statement show "$leaf" --channel "$sfeed" |
	sed 's/.*"blobs":\["\([0-9a-f]*\)".*/\1/')
run "$tally" --home "$S" blob get "$voucher" -o "$demo/voucher-received.txt"
cat "$demo/voucher-received.txt"
out=$(run "$tally" --home "$S" statement adjust "$leaf" --channel "$sfeed" \
	--line "credit_note:CN-0120:50.00:2026-11-30:price difference on INV-88031 (contract price)" \
	--line "credit_note:CN-0121:3180.50:2026-11-30:INV-88102 cancelled, goods not delivered")
leaf2=$(echo "$out" | cut -d' ' -f2)
wait_size "$C" "$sfeed" $(($(echo "$out" | cut -d' ' -f1) + 1))
echo "-- the customer's match now agrees on the balance (the credit notes are new documents to book):"
"$tally" --home "$C" match "$leaf2" --ledger "$root/examples/payables.csv" | grep "Closing balance" || true

step "9. The approver confirms on an offline machine: export, sign (no data directory), submit"
run "$tally" --home "$C" statement export "$leaf2" --channel "$cfeed" -o "$demo/statement-v2.json"
(unset TALLY_HOME; cd "$demo" && run "$tally" --home "$demo/offline-laptop" sign statement-v2.json \
	--key "$C/people/li.approver.key" --confirm -o answer.json)
seq=$(run "$tally" --home "$C" submit "$demo/answer.json" --channel "$cfeed" | cut -d' ' -f1)
wait_size "$S" "$cfeed" $((seq + 1))

step "10. The supplier closes the confirmed statement; both sides see the same status"
out=$(run "$tally" --home "$S" close "$leaf2" --channel "$sfeed")
wait_size "$C" "$sfeed" $(($(echo "$out" | cut -d' ' -f1) + 1))
sleep 1.2 # let the last receipts land
run "$tally" --home "$S" statement list --outgoing
run "$tally" --home "$C" statement list --incoming
at=$(($(date +%s) * 1000))
run "$tally" --home "$S" channel state "$sfeed" --at "$at" | grep "state digest"
run "$tally" --home "$C" channel state "$cfeed" --at "$at" | grep "state digest"

step "11. Three weeks later (the witness restarts with the true clock); the customer answers ST-2026-11-0043"
wait_cosigned "$sfeed" "$(feed_size "$S" "$sfeed")"
wait_cosigned "$cfeed" "$(feed_size "$C" "$cfeed")"
kill "$wpid"; wait "$wpid" 2>/dev/null || true
start_witness "$waddr" 0
# A heartbeat cosigns the customer's feed now, without the answer: the proof of lateness.
sleep 2.5
wait_cosigned "$cfeed" "$(feed_size "$C" "$cfeed")"
seq=$(run "$tally" --home "$C" confirm "$svc" --channel "$cfeed" --key "$C/people/li.approver.key" |
	cut -d' ' -f1)
wait_size "$S" "$cfeed" $((seq + 1))
wait_cosigned "$cfeed" $((seq + 1))
run "$tally" --home "$C" statement show "$svc" --channel "$cfeed"

step "12. The auditor's bundle of the channel: audit with the witness's key (one on time, one late)"
run "$tally" --home "$C" export --channel "$cfeed" -o "$demo/bundle.json"
run "$tally" verify "$demo/bundle.json"
run "$tally" audit "$demo/bundle.json" --witness "$wkey" --quorum 1

step "13. A self-contained proof of the statement, verified with the supplier's feed key"
run "$tally" --home "$S" feed prove "$sfeed" "$stmt_seq" -o "$demo/statement.tlog-proof"
run "$tally" verify "$demo/statement.tlog-proof" --vkey "$("$tally" feed vkey "$sfeed")" \
	--witness "$wkey" --quorum 1

step "14. Someone alters one character inside the bundle: verification names feed and seq"
awk '!done && /^    "/ { c = substr($0, 100, 1); r = (c == "A") ? "B" : "A";
	$0 = substr($0, 1, 99) r substr($0, 101); done = 1 } { print }' \
	"$demo/bundle.json" >"$demo/tampered.json"
if run "$tally" verify "$demo/tampered.json"; then
	echo "demo: the tampered bundle verified — this is a bug" >&2
	exit 1
fi
printf '\nDemo data: %s (homes supplier/ and customer/, logs *.log).\n' "$demo"
