#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lib/banned.h"

static const char usage[] =
    "usage: devid <command> [options]\n"
    "\n"
    "commands:\n"
    "  vendor init|mint|verify   the chip vendor's tools: PKI, reels, checks\n"
    "  admin migrate|tenant|token|trust|ca|quota   administer the database\n"
    "  serve                     the REST API (devid serve --help)\n"
    "  gateway                   the reference product cloud (devid gateway --help)\n"
    "  vendor publish OUT        publish a reel to a devid server (vendor token)\n"
    "  claim CODE | batches | devices | device | manifest | revoke | transfer | release |\n"
    "  import                    the REST API from the command line (devid claim --help)\n"
    "\n"
    "Run `devid <command> --help` for a command's options.\n";

static const char *const client_cmds[] = {
    "claim", "batches", "devices", "device", "manifest", "revoke", "transfer", "release", "import"};

int
cli_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int
cli_parse_int(const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("devid %s\n", DEVID_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "vendor") == 0 && argc > 2 && strcmp(argv[2], "publish") == 0)
		return cmd_client(argc - 1, argv + 1);
	if (strcmp(argv[1], "vendor") == 0)
		return cmd_vendor(argc - 1, argv + 1);
	if (strcmp(argv[1], "admin") == 0)
		return cmd_admin(argc - 1, argv + 1);
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "gateway") == 0)
		return cmd_gateway(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(client_cmds) / sizeof(client_cmds[0]); i++)
		if (strcmp(argv[1], client_cmds[i]) == 0)
			return cmd_client(argc - 1, argv + 1);
	fprintf(stderr, "devid: unknown command \"%s\"\n%s", argv[1], usage);
	return EXIT_USAGE;
}
