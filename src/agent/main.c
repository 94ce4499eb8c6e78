/*
 * main.c - devid-agent, what a device runs: `hello` proves its identity to a product cloud.
 * Uses only the public API of libdevid-agent (and the HOST:PORT splitter of the agent).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devid/agent.h"
#include "internal.h"
#include "lib/banned.h"

#ifndef DEVID_VERSION
#define DEVID_VERSION "unknown"
#endif

/* exit statuses (docs/agent.md) */
#define EXIT_ADMITTED 0
#define EXIT_REFUSED 1 /* the server answered and did not admit the device */
#define EXIT_USAGE 2 /* bad command line or local files: nothing was sent */
#define EXIT_NETWORK 3 /* no connection, TLS handshake failed, timeout, broken response */

#define DEFAULT_TIMEOUT_S 10
#define MAX_TIMEOUT_S 3600

static const char usage[] =
    "usage: devid-agent <command> [options]\n"
    "\n"
    "  devid-agent hello --key URI --cert PEM --connect HOST:PORT --ca PEM [--timeout S]\n"
    "      prove this device's identity to a product cloud over mutual TLS; print its\n"
    "      greeting. --cert may hold the device certificate followed by its chain; --ca\n"
    "      holds the CA certificates that the server's certificate must chain to; HOST is\n"
    "      checked against the server's certificate (an IPv6 address in brackets).\n"
    "      --timeout bounds the whole exchange (default 10 s)\n"
    "  devid-agent enroll --key URI --cert PEM --est URL --ca PEM --out PEM\n"
    "  devid-agent renew  --key URI --cert PEM --est URL --ca PEM --out PEM\n"
    "      operational certificates over EST: not implemented yet\n"
    "\n"
    "key URIs: file:PATH (an unencrypted PEM key: a development stand-in for a secure\n"
    "element); pkcs11: (RFC 7512) and tpm2: are not supported yet.\n"
    "\n"
    "exit status: 0 admitted, 1 refused by the server, 2 usage or local error (nothing was\n"
    "sent), 3 connection, TLS or protocol failure.\n";

static int
usage_error(const char *cmd, const char *msg)
{
	fprintf(stderr, "devid-agent%s%s: %s\n\n%s", cmd != NULL ? " " : "", cmd != NULL ? cmd : "",
	    msg, usage);
	return EXIT_USAGE;
}

static int
parse_timeout(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > MAX_TIMEOUT_S)
		return -1;
	*out = (int)v;
	return 0;
}

enum { OPT_KEY = 256, OPT_CERT, OPT_CONNECT, OPT_CA, OPT_TIMEOUT, OPT_HELP };

static const struct option hello_opts[] = {
    {"key", required_argument, NULL, OPT_KEY},
    {"cert", required_argument, NULL, OPT_CERT},
    {"connect", required_argument, NULL, OPT_CONNECT},
    {"ca", required_argument, NULL, OPT_CA},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int
exit_status(const struct devid_hello_result *r)
{
	switch (r->outcome) {
	case DEVID_HELLO_ADMITTED:
		return EXIT_ADMITTED;
	case DEVID_HELLO_REFUSED:
		return EXIT_REFUSED;
	case DEVID_HELLO_TLS_FAILED:
	case DEVID_HELLO_CONNECT_FAILED:
		return EXIT_NETWORK;
	default:
		return EXIT_USAGE;
	}
}

static int
cmd_hello(int argc, char **argv)
{
	const char *key = NULL, *cert = NULL, *connect_to = NULL, *ca = NULL;
	char host[AGENT_MAX_HOST_LEN + 1], port[6], msg[300];
	struct devid_identity *id = NULL;
	struct devid_hello_result r;
	struct devid_error e;
	int c, timeout_s = DEFAULT_TIMEOUT_S, status;

	devid_error_clear(&e);
	devid_hello_result_init(&r);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", hello_opts, NULL)) != -1) {
		switch (c) {
		case OPT_KEY:
			key = optarg;
			break;
		case OPT_CERT:
			cert = optarg;
			break;
		case OPT_CONNECT:
			connect_to = optarg;
			break;
		case OPT_CA:
			ca = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_timeout(optarg, &timeout_s) != 0) {
				snprintf(msg, sizeof(msg),
				    "--timeout \"%s\": expected whole seconds from 1 to %d", optarg,
				    MAX_TIMEOUT_S);
				return usage_error("hello", msg);
			}
			break;
		case 'h':
		case OPT_HELP:
			fputs(usage, stdout);
			return 0;
		default:
			snprintf(msg, sizeof(msg), "unknown option or missing value: %s",
			    argv[optind - 1]);
			return usage_error("hello", msg);
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof(msg), "unexpected argument \"%s\"", argv[optind]);
		return usage_error("hello", msg);
	}
	if (key == NULL || cert == NULL || connect_to == NULL || ca == NULL)
		return usage_error("hello", "needs --key, --cert, --connect and --ca");
	if (agent_split_host_port(connect_to, host, port, &e) != 0)
		return usage_error("hello", e.msg);

	/* everything local is checked before anything is sent */
	if (devid_identity_load(key, cert, &id, &e) != 0) {
		fprintf(stderr, "devid-agent hello: %s\n", e.msg);
		return EXIT_USAGE;
	}
	devid_hello(id, host, port, ca, timeout_s * 1000, &r);
	status = exit_status(&r);
	if (r.outcome == DEVID_HELLO_ADMITTED) {
		if (r.body_len > 0) {
			fwrite(r.body, 1, r.body_len, stdout);
			if (r.body[r.body_len - 1] != '\n')
				putchar('\n');
		}
		if (r.body_truncated)
			fprintf(stderr, "devid-agent hello: the greeting was cut at %d bytes\n",
			    DEVID_HELLO_MAX_BODY);
		if (fflush(stdout) != 0) {
			fprintf(stderr, "devid-agent hello: stdout: %s\n", strerror(errno));
			status = EXIT_USAGE;
		}
	} else {
		fprintf(stderr, "devid-agent hello: %s\n", r.error.msg);
	}
	devid_hello_result_release(&r);
	devid_identity_free(id);
	return status;
}

static int
cmd_not_yet(const char *cmd, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
	}
	fprintf(
	    stderr, "devid-agent %s: not implemented yet (issue: operational certificates)\n", cmd);
	return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return usage_error(NULL, "no command");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("devid-agent %s\n", DEVID_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "hello") == 0)
		return cmd_hello(argc - 1, argv + 1);
	if (strcmp(argv[1], "enroll") == 0 || strcmp(argv[1], "renew") == 0)
		return cmd_not_yet(argv[1], argc - 1, argv + 1);
	fprintf(stderr, "devid-agent: unknown command \"%s\"\n\n%s", argv[1], usage);
	return EXIT_USAGE;
}
