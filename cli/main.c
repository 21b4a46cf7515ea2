/* main.c — the tally command line. Commands are documented in docs/cli.md. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef TALLY_VERSION
#define TALLY_VERSION "0.1.0"
#endif

static const char usage_text[] =
        "usage: tally [--home DIR] [--json] COMMAND ...\n"
        "\n"
        "books and feeds (offline, on the data directory --home, $TALLY_HOME or ~/.tally):\n"
        "  init --book NAME                       create a book (key pair); prints its key\n"
        "  book list | book show NAME\n"
        "  feed new --book NAME --peer PUBKEY_HEX [--label L]   prints the feed origin\n"
        "  feed list\n"
        "  feed append ORIGIN --kind K --body JSON\n"
        "  feed append ORIGIN --jsonl FILE|-      one {\"kind\":..,\"body\":{..}} per line\n"
        "  feed log ORIGIN [--from N] [--to M]\n"
        "  feed checkpoint ORIGIN                 signed checkpoint of the current size\n"
        "  feed vkey ORIGIN                       the feed's C2SP verifier key\n"
        "  feed prove ORIGIN SEQ [-o FILE]        c2sp.org/tlog-proof@v1 of one entry\n"
        "  feed consistency ORIGIN OLD [NEW]      consistency proof, base64 lines\n"
        "  export ORIGIN... -o FILE [--no-sign]   tally-bundle/v1 for auditors\n"
        "  export --channel C -o FILE [--witness V]... [--quorum K]   both feeds of a channel\n"
        "\n"
        "with the node (tallyd); they work offline too where they can:\n"
        "  channel open --book B --peer PUBKEY[@HOST:PORT] [--label L]\n"
        "  channel list | channel show CHANNEL|ORIGIN\n"
        "  channel state CHANNEL|ORIGIN [--at UNIX_MS] [--witness V]... [--quorum K]\n"
        "  watch [--channel CHANNEL]              appends and ingests as they happen\n"
        "  status                                 the running node, its books and peers\n"
        "\n"
        "auditors (docs/operations.md, \"Auditors\"): read-only replication of a channel\n"
        "  auditor admit --channel C --key HEX [--name N] [--book B]   logged in our feed\n"
        "  auditor revoke --channel C --key HEX [--book B]\n"
        "  auditor list --channel C [--book B] [--json]\n"
        "  auditor follow --book B --channel C --supplier PK --customer PK\n"
        "          --peer PK@HOST:PORT [--label L]   on the auditor's home: both feeds\n"
        "  auditor following [--json]             followed feeds here, read-only\n"
        "\n";

/* The rest, apart: ISO C caps one string literal at 4095 bytes. */
static const char usage_text2[] =
        "reconciliation (docs/workflow.md; TIME: 2026-12-10, 2026-12-10T09:30+08:00 or ms):\n"
        "  terms propose --channel C [--cycle monthly:1|weekly:mon|cron:\"m h dom mon dow\"]\n"
        "          [--tz +08:00] --response-days N --procedure confirmation|notification|\n"
        "          balance --currency CUR [--escalate DAYS:LEVEL:TO]... [--witness VKEY]...\n"
        "          [--quorum K] [--id ID]          prints the proposal's seq and leaf\n"
        "  terms accept --channel C PROPOSAL_LEAF\n"
        "  terms show --channel C [--at TIME] [--json]   in force (or defaults), pending\n"
        "  statement import FILE --channel C --id ID --currency CUR --from D --to D\n"
        "                   [--date D] [--opening X] [--encoding gb18030] [--dry-run]\n"
        "  statement send FILE.json --channel C   a reviewed body (import --dry-run), checked\n"
        "  statement adjust STATEMENT_LEAF --channel C --line TYPE:DOC:AMOUNT[:DATE[:MEMO]]...\n"
        "                   [--date D]            re-issue: version + 1 with the added lines\n"
        "  statement list [--incoming|--outgoing] [--channel C] [--at TIME]\n"
        "        [--witness V... --quorum K] [--json]\n"
        "  statement show STATEMENT_LEAF --channel C [--at TIME] [--witness V... --quorum K]\n"
        "        [--json]   claimed and proven times side by side\n"
        "  statement export STATEMENT_LEAF --channel C -o STMT.json   for air-gapped signing\n"
        "  sign STMT.json --key PERSON_KEY_FILE --confirm [--balance X] | --dispute\n"
        "          --balance X --line DOC ... [-o ANSWER.json]   offline, no data directory\n"
        "  submit ANSWER.json --channel C         checks and appends a signed answer\n"
        "  close STATEMENT_LEAF --channel C       supplier; once confirmed or deemed\n"
        "  match STATEMENT --ledger PAYABLES.csv [--tolerance X] [--window DAYS]\n"
        "                   [--encoding gb18030] [--json]   exit 0 confirm, 1 dispute\n"
        "  key new --name NAME [-o FILE]          a person key; prints its public key\n"
        "  key grant --book B --channel C --key HEX --role clerk|approver|director --name N\n"
        "  key revoke --book B --channel C --key HEX\n"
        "  view STATEMENT_LEAF --channel C\n"
        "  confirm STATEMENT_LEAF --channel C --key PERSON_KEY_FILE [--balance X]\n"
        "  dispute STATEMENT_LEAF --channel C --key PERSON_KEY_FILE --balance X\n"
        "          --line DOC --their-amount X --reason CODE [--note TEXT]\n"
        "          [--attach [DOC=]FILE] ...      vouchers, stored as blobs, hash in the line\n"
        "          (reasons: price quantity quality not_received payment_not_recorded\n"
        "           duplicate tax fx cut_off other; amounts in minor units)\n"
        "  blob put FILE [--max BYTES]            store a voucher; prints its SHA-256\n"
        "  blob get HASH -o FILE                  local, else fetched by the node from the\n"
        "                                         counterparty (exit 1 refused/integrity,\n"
        "                                         3 offline)\n"
        "  blob list\n"
        "Person key passphrases come from $TALLY_PERSON_PASSPHRASE, else as below.\n"
        "\n"
        "witness administration (on a witness home; works while tallyd --witness runs):\n"
        "  witness init --name NAME               witness key; prints its vkey (type 0x04)\n"
        "  witness vkey\n"
        "  witness allow ORIGIN VKEY              register a log key ('tally feed vkey')\n"
        "  witness deny ORIGIN                    unregister (its state is kept)\n"
        "  witness list [--json] | witness log [ORIGIN] [--json]\n"
        "\n"
        "forks and halted feeds (docs/operations.md, \"Restored nodes\"):\n"
        "  forks [--json]                         fork evidence held, halted feeds\n"
        "  forks show N -o FILE                   self-contained proof (tally-fork/v1)\n"
        "  forks resolve ORIGIN --i-understand    clear a halt (node stopped)\n"
        "\n"
        "verification (needs no data directory):\n"
        "  forks verify FILE [--json]             exit 0 when it proves a fork\n"
        "  verify FILE [--vkey V]... [--witness V]... [--quorum K]\n"
        "  audit BUNDLE [--witness V]... [--quorum K] [--skew S] [--at UNIX_MS] [--json]\n"
        "                   claimed vs witnessed times, proven lateness (docs/audit.md)\n"
        "  checkpoint verify --vkey V [--vkey V]... [--witness V]... [--quorum K] < NOTE\n"
        "\n"
        "Passphrases come from the terminal or $TALLY_PASSPHRASE.\n"
        "Exit codes: 0 ok, 1 not valid / failed, 2 usage, 3 environment (store, key, I/O).\n";

static void usage(FILE *fp)
{
	fputs(usage_text, fp);
	fputs(usage_text2, fp);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
	        {"init", cmd_init},       {"book", cmd_book},
	        {"feed", cmd_feed},       {"export", cmd_export},
	        {"verify", cmd_verify},   {"checkpoint", cmd_checkpoint},
	        {"channel", cmd_channel}, {"watch", cmd_watch},
	        {"status", cmd_status},   {"statement", cmd_statement},
	        {"match", cmd_match},     {"key", cmd_key},
	        {"confirm", cmd_confirm}, {"dispute", cmd_dispute},
	        {"view", cmd_view},       {"witness", cmd_witness},
	        {"audit", cmd_audit},     {"forks", cmd_forks},
	        {"terms", cmd_terms},     {"sign", cmd_sign},
	        {"submit", cmd_submit},   {"close", cmd_close},
	        {"blob", cmd_blob},       {"fsck", cmd_fsck},
	        {"auditor", cmd_auditor},
	};
	if (tl_init() != 0) {
		fprintf(stderr, "tally: cannot initialise libsodium\n");
		return EXIT_ENV;
	}
	/* Global options may come before the command; they are re-parsed by the
	 * command, so move them after it. */
	int i = 1;
	const char *global[8];
	int ng = 0;
	while (i < argc && argv[i][0] == '-' && ng < 6) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("tally %s\n", TALLY_VERSION);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--json") == 0) {
			global[ng++] = argv[i++];
		} else if (strcmp(argv[i], "--home") == 0 && i + 1 < argc) {
			global[ng++] = argv[i++];
			global[ng++] = argv[i++];
		} else if (strncmp(argv[i], "--home=", 7) == 0) {
			global[ng++] = argv[i++];
		} else {
			fprintf(stderr, "tally: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc || strcmp(argv[i], "help") == 0) {
		usage(i >= argc ? stderr : stdout);
		return i >= argc ? EXIT_USAGE : EXIT_OK;
	}
	const char *cmd = argv[i];
	/* argv[i+1..] then the globals: rebuild in place-compatible order. */
	char *args[CLI_MAX_ARGS * 2];
	int n = 0;
	for (int k = i + 1; k < argc && n < CLI_MAX_ARGS * 2 - 8; k++)
		args[n++] = argv[k];
	if (argc - i - 1 > n) {
		fprintf(stderr, "tally: too many arguments\n");
		return EXIT_USAGE;
	}
	/* Globals go last so that "feed append" still sees its subcommand first. */
	for (int k = 0; k < ng; k++)
		args[n++] = (char *)global[k];
	args[n] = NULL;
	for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++)
		if (strcmp(cmd, cmds[k].name) == 0)
			return cmds[k].fn(n, args);
	fprintf(stderr, "tally: unknown command '%s'\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
