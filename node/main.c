/* main.c — tallyd. Options in docs/operations.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_daemon.h"
#include "witness.h"

static const char usage[] =
        "usage: tallyd [--config FILE] [--home DIR] [--listen HOST:PORT] [--log LEVEL]\n"
        "  --home DIR          data directory (default $TALLY_HOME, else ~/.tally)\n"
        "  --listen HOST:PORT  peer listener (default 127.0.0.1:0; port 0 picks one,\n"
        "                      written to DIR/tallyd.addr)\n"
        "  --log LEVEL         error, warn, info (default) or debug\n"
        "Book keys are unlocked with $TALLY_PASSPHRASE (or the terminal).\n"
        "\n"
        "usage: tallyd --witness [--home DIR] [--listen HOST:PORT] [--log LEVEL]\n"
        "              [--threads N] [--clock-offset SECONDS]\n"
        "  --witness           run a C2SP tlog-witness HTTP server (docs/witness.md)\n"
        "                      on the witness home made by 'tally witness init';\n"
        "                      the bound address is written to DIR/witness.addr\n"
        "  --threads N         HTTP threads (default: one per CPU, 2..8)\n"
        "  --clock-offset S    add S seconds (may be negative) to the clock used in\n"
        "                      cosignatures: FOR TESTING ONLY\n"
        "The witness key is unlocked with $TALLY_PASSPHRASE (or the terminal).\n";

int main(int argc, char **argv)
{
	struct tl_node_config c;
	char err[512];
	const char *config = NULL, *home = NULL, *listen = NULL, *log = NULL;
	const char *clock_offset = NULL, *threads = NULL;
	int witness = 0;

	tl_node_config_defaults(&c);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;
		if (strcmp(a, "--version") == 0) {
			printf("tallyd %s\n", TL_VERSION);
			return 0;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(a, "--witness") == 0) {
			witness = 1;
			continue;
		}
		if (strcmp(a, "--config") == 0)
			slot = &config;
		else if (strcmp(a, "--home") == 0)
			slot = &home;
		else if (strcmp(a, "--listen") == 0)
			slot = &listen;
		else if (strcmp(a, "--log") == 0)
			slot = &log;
		else if (strcmp(a, "--clock-offset") == 0)
			slot = &clock_offset;
		else if (strcmp(a, "--threads") == 0)
			slot = &threads;
		if (!slot || i + 1 >= argc) {
			fprintf(stderr, "tallyd: %s '%s'\n%s",
			        slot ? "missing value for" : "unknown option", a, usage);
			return 2;
		}
		*slot = argv[++i];
	}
	if (tl_init() != 0) {
		fprintf(stderr, "tallyd: cannot initialise libsodium\n");
		return 3;
	}
	if (!home && !config) {
		const char *h = getenv("TALLY_HOME"), *u = getenv("HOME");
		if (h && *h)
			snprintf(c.home, sizeof c.home, "%s", h);
		else
			snprintf(c.home, sizeof c.home, "%s/.tally", u && *u ? u : ".");
	}
	/* The file first, then flags override it. */
	if (config && tl_node_config_load(&c, config, err, sizeof err) != 0) {
		fprintf(stderr, "tallyd: %s\n", err);
		return 2;
	}
	if (home)
		snprintf(c.home, sizeof c.home, "%s", home);
	if (listen)
		snprintf(c.listen, sizeof c.listen, "%s", listen);
	if (log) {
		static const char *const levels[] = {"error", "warn", "info", "debug"};
		int lv = -1;
		for (int i = 0; i < 4; i++)
			if (strcmp(log, levels[i]) == 0)
				lv = i;
		if (lv < 0) {
			fprintf(stderr, "tallyd: --log must be error, warn, info or debug\n");
			return 2;
		}
		c.log_level = lv;
	}
	if ((clock_offset || threads) && !witness) {
		fprintf(stderr, "tallyd: --clock-offset and --threads need --witness\n");
		return 2;
	}
	if (witness) {
		struct tl_witness_config wc;
		tl_witness_config_defaults(&wc);
		snprintf(wc.home, sizeof wc.home, "%s", c.home);
		if (listen || config)
			snprintf(wc.listen, sizeof wc.listen, "%s", c.listen);
		wc.log_level = c.log_level;
		if (clock_offset) {
			uint64_t v;
			int neg = clock_offset[0] == '-';
			const char *d = clock_offset + (neg || clock_offset[0] == '+');
			if (tl_parse_u64(d, strlen(d), &v) != 0 || v > (uint64_t)1 << 40) {
				fprintf(stderr, "tallyd: --clock-offset must be whole seconds, "
				                "e.g. 3600 or -60\n");
				return 2;
			}
			wc.clock_offset = neg ? -(int64_t)v : (int64_t)v;
		}
		if (threads) {
			uint64_t v;
			if (tl_parse_u64(threads, strlen(threads), &v) != 0 || v == 0 || v > 64) {
				fprintf(stderr, "tallyd: --threads must be 1 to 64\n");
				return 2;
			}
			wc.threads = (unsigned)v;
		}
		return tl_witness_run(&wc);
	}
	return tl_node_run(&c);
}
