#!/bin/sh
# The offline walk-through: two books, a channel feed, signed entries, a
# single-entry proof, an auditor's bundle, verification, and a tampered copy
# that verification rejects. Everything happens in a scratch home under
# build/demo; the passphrase is set here so that nothing prompts.
set -eu
tally=${1:-build/tally}
root=$(cd "$(dirname "$0")/.." && pwd)
demo=$root/build/demo
rm -rf "$demo"
mkdir -p "$demo"
export TALLY_HOME="$demo/home" TALLY_PASSPHRASE="demo passphrase, not for production"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

step "1. The supplier and the customer each create a book (an Ed25519 key, encrypted at rest)"
supplier=$(run "$tally" init --book supplier-sh)
customer=$(run "$tally" init --book customer-bj)
echo "supplier key $supplier"
echo "customer key $customer"

step "2. The supplier opens its feed in the channel with the customer"
origin=$(run "$tally" feed new --book supplier-sh --peer "$customer")
echo "feed origin  $origin"

step "3. It appends a statement of account, a reminder and a comment (signed, hash-chained)"
run "$tally" feed append "$origin" --jsonl "$root/examples/statement.jsonl"
run "$tally" feed log "$origin"

step "4. A signed checkpoint (C2SP tlog-checkpoint) and the feed's verifier key"
run "$tally" feed checkpoint "$origin"
vkey=$(run "$tally" feed vkey "$origin")
echo "$vkey"

step "5. A self-contained proof of the statement (c2sp.org/tlog-proof@v1, record as extra)"
run "$tally" feed prove "$origin" 0 -o "$demo/statement.tlog-proof"
run "$tally" verify "$demo/statement.tlog-proof" --vkey "$vkey"

step "6. An auditor's bundle of the feed, verified without the data directory"
run "$tally" export "$origin" -o "$demo/bundle.json"
run "$tally" verify "$demo/bundle.json" --vkey "$vkey"

step "7. Someone alters the statement inside the bundle: verification names the entry"
# Change one base64 character inside the first record (100 characters in).
awk '!done && /^    "/ { c = substr($0, 100, 1); r = (c == "A") ? "B" : "A";
	$0 = substr($0, 1, 99) r substr($0, 101); done = 1 } { print }' \
	"$demo/bundle.json" >"$demo/tampered.json"
if run "$tally" verify "$demo/tampered.json" --vkey "$vkey"; then
	echo "demo: the tampered bundle verified — this is a bug" >&2
	exit 1
fi
printf '\nThe demo home is %s (TALLY_HOME); the passphrase is "%s".\n' "$TALLY_HOME" "$TALLY_PASSPHRASE"
