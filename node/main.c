/* main.c — tallyd. Options in docs/operations.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_daemon.h"

static const char usage[] =
        "usage: tallyd [--config FILE] [--home DIR] [--listen HOST:PORT] [--log LEVEL]\n"
        "  --home DIR          data directory (default $TALLY_HOME, else ~/.tally)\n"
        "  --listen HOST:PORT  peer listener (default 127.0.0.1:0; port 0 picks one,\n"
        "                      written to DIR/tallyd.addr)\n"
        "  --log LEVEL         error, warn, info (default) or debug\n"
        "Book keys are unlocked with $TALLY_PASSPHRASE (or the terminal).\n";

int main(int argc, char **argv)
{
	struct tl_node_config c;
	char err[512];
	const char *config = NULL, *home = NULL, *listen = NULL, *log = NULL;

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
		if (strcmp(a, "--config") == 0)
			slot = &config;
		else if (strcmp(a, "--home") == 0)
			slot = &home;
		else if (strcmp(a, "--listen") == 0)
			slot = &listen;
		else if (strcmp(a, "--log") == 0)
			slot = &log;
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
	return tl_node_run(&c);
}
