/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

static const char usage[] =
    "usage: devid [--server URL] [--token TOKEN] [--cacert PEM] [-o json|table] [--quiet]\n"
    "             [--db URL] <command> [options]\n"
    "\n"
    "the chip vendor (offline):\n"
    "  vendor init|mint|verify|convert  PKI, reels, their checks and forms (devid vendor --help)\n"
    "  vendor publish OUT        publish a reel to a devid server (vendor token)\n"
    "the server:\n"
    "  admin ...                 administer the database directly (devid admin --help)\n"
    "  serve                     the REST API and EST (devid serve --help)\n"
    "  gateway                   the reference product cloud (devid gateway --help)\n"
    "the REST API (an OEM token; devid COMMAND --help for each):\n"
    "  claim CODE                claim a batch with the code of its QR label\n"
    "  batches                   your batches\n"
    "  devices                   your devices (--batch, --state, --search)\n"
    "  device UDID|SERIAL        one device, by UDID or chip serial\n"
    "  manifest V/B              a batch's manifest (--format json|pem|csv)\n"
    "  revoke UDID|SERIAL        revoke a device (--reason)\n"
    "  transfer V/B, release V/B hand a batch on, or give it back\n"
    "  custody get V/B|verify   a batch's chain of custody; verify it offline\n"
    "  import --batch NAME FILE  import a manifest (JSON or XML) of a vendor outside devid\n"
    "  audit [list|verify]       the audit trail and its hash chain\n"
    "  jobs [list|devices ID]    delivery jobs and each device's outcome\n"
    "  connectors [list|show|add|put|delete|test]   product clouds\n"
    "  provision                 push a batch or devices to a connector\n"
    "  quota [show|set]          devices that may hold an operational certificate\n"
    "  clone-policy [show|set]   what a suspected clone does (flag, quarantine)\n"
    "  suspicions                your devices suspected of being cloned\n"
    "  tokens [list|add|revoke]  your tenant's API tokens\n"
    "  trust [list|add|remove]   your own trust for imports\n"
    "\n"
    "Global options go before or after the command. --server, --token and --cacert default to\n"
    "$DEVID_SERVER, $DEVID_TOKEN and $DEVID_CACERT, --db to $DEVID_DB; a flag beats the\n"
    "environment. --output (-o) is table on a terminal and json otherwise; tables show times\n"
    "in RFC 3339 UTC, json is the API's own answer. Usage errors exit with status 2.\n";

/* Options every command takes, before or after its name: those with a value, then flags. */
static const char *const global_valued[] = {
    "--server", "--token", "--cacert", "--output", "-o", "--db"};
static const char *const global_flags[] = {"--quiet", "-q"};

static const char *const commands[] = {"vendor", "admin", "serve", "gateway", "claim", "batches",
    "devices", "device", "manifest", "revoke", "transfer", "release", "custody", "import", "audit",
    "jobs", "connectors", "provision", "quota", "clone-policy", "suspicions", "tokens", "trust",
    "help"};

/* arg is the global option name, or name=value: its length up to '=' matches name. */
static bool
is_option(const char *arg, const char *name, bool valued)
{
	size_t n = strlen(name);

	return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || (valued && arg[n] == '='));
}

/* How many words the global option at argv[i] takes (1 or 2), or 0 when it is none. */
static int
global_option(int argc, char **argv, int i)
{
	for (size_t k = 0; k < sizeof(global_valued) / sizeof(global_valued[0]); k++)
		if (is_option(argv[i], global_valued[k], argv[i][1] == '-'))
			return strchr(argv[i], '=') != NULL ? 1 : i + 1 < argc ? 2 : -1;
	for (size_t k = 0; k < sizeof(global_flags) / sizeof(global_flags[0]); k++)
		if (strcmp(argv[i], global_flags[k]) == 0)
			return 1;
	return 0;
}

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
cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "devid%s%s: ", cmd[0] ? " " : "", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see 'devid%s%s --help'\n", cmd[0] ? " " : "", cmd);
	return EXIT_USAGE;
}

int
cli_bad_option(const char *cmd, int c, char *const *argv)
{
	const char *word = argv[optind - 1];
	size_t n = strcspn(word, "=");

	if (c == '?' && optopt > 0 && optopt < 128 && strncmp(word, "--", 2) != 0)
		return cli_usage(cmd, "unknown option '-%c'", optopt);
	if (c == ':')
		return cli_usage(cmd, "option '%.*s' needs a value", (int)n, word);
	return cli_usage(cmd, "unknown option '%.*s'", (int)n, word);
}

/* Levenshtein distance of two short words, capped at 3 (farther is no suggestion). */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[33], prev, tmp;

	if (la > 32 || lb > 32)
		return 3;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = prev + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	return row[lb] < 3 ? row[lb] : 3;
}

const char *
cli_suggest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t d, bestd = 3;

	for (size_t i = 0; i < n; i++)
		if ((d = distance(word, cands[i])) < bestd && d < strlen(word)) {
			best = cands[i];
			bestd = d;
		}
	return best;
}

/*
 * Global options before the command move to just after its name, where every command's own
 * parser takes them (so `devid --server URL batches` is `devid batches --server URL`, and
 * an option after the command, read later, wins).
 */
int
main(int argc, char **argv)
{
	char **args;
	const char *cmd, *near;
	int i = 1, k, n, nglobal, rc;

	while (i < argc && argv[i][0] == '-' && (k = global_option(argc, argv, i)) != 0) {
		if (k < 0)
			return cli_usage("", "option '%s' needs a value", argv[i]);
		i += k;
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	cmd = argv[i];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("devid %s\n", DEVID_VERSION);
		return 0;
	}
	if (cmd[0] == '-')
		return cli_usage(
		    "", "unknown option '%.*s' before the command", (int)strcspn(cmd, "="), cmd);
	nglobal = i - 1;
	args = xcalloc((size_t)argc + 1, sizeof(*args));
	args[0] = argv[i];
	memcpy(args + 1, argv + 1, (size_t)nglobal * sizeof(*args));
	memcpy(args + 1 + nglobal, argv + i + 1, (size_t)(argc - i - 1) * sizeof(*args));
	n = argc - i + nglobal;
	if (strcmp(cmd, "vendor") == 0 && i + 1 < argc && strcmp(argv[i + 1], "publish") == 0)
		rc = cmd_client(n, args);
	else if (strcmp(cmd, "vendor") == 0)
		rc = cmd_vendor(n, args);
	else if (strcmp(cmd, "admin") == 0)
		rc = cmd_admin(n, args);
	else if (strcmp(cmd, "serve") == 0)
		rc = cmd_serve(n, args);
	else if (strcmp(cmd, "gateway") == 0)
		rc = cmd_gateway(n, args);
	else if (client_is_command(cmd))
		rc = cmd_client(n, args);
	else
		rc = -1;
	free(args);
	if (rc >= 0)
		return rc;
	if ((near = cli_suggest(cmd, commands, sizeof(commands) / sizeof(commands[0]))) != NULL)
		return cli_usage("", "unknown command '%s' (did you mean '%s'?)", cmd, near);
	return cli_usage("", "unknown command '%s'", cmd);
}
