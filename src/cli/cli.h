/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - the subcommands of `devid`. Each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit status.
 */
#ifndef DEVID_CLI_H
#define DEVID_CLI_H

#include <stddef.h>

#define EXIT_USAGE 2 /* bad command line */

int cmd_vendor(int argc, char **argv);
int cmd_admin(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_gateway(int argc, char **argv);
/*
 * The client of the REST API: claim, batches, devices, device, manifest, revoke, transfer,
 * release, import, audit, jobs, connectors, quota, provision, tokens, trust, vendor publish.
 */
int cmd_client(int argc, char **argv);
/* Whether name is one of cmd_client's commands (a singular like "connector" too). */
int client_is_command(const char *name);

/*
 * A usage error on one line of stderr: "devid CMD: MESSAGE; see 'devid CMD --help'" (CMD
 * may be several words, or "" for devid itself). Returns EXIT_USAGE.
 */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * The usage error for what getopt_long just refused: c is '?' (an unknown option) or ':' (an
 * option without its value); call getopt_long with opterr = 0 and an optstring starting with
 * ':'. Names the option as it was written. Returns EXIT_USAGE.
 */
int cli_bad_option(const char *cmd, int c, char *const *argv);
/* The word of cands nearest to word (edit distance at most 2, and less than its length), or NULL.
 */
const char *cli_suggest(const char *word, const char *const *cands, size_t n);

/* Number of online processors, at least 1. */
int cli_ncpus(void);
/* A decimal integer in [min, max], all of s: 0, or -1 (nothing stored). */
int cli_parse_int(const char *s, long min, long max, int *out);

/*
 * The words of a `devid admin` command line that are neither options nor their values (every
 * admin option takes a value except --help); at most max. For the admin commands that live in
 * files of their own.
 */
int admin_words(int argc, char **argv, const char **words, int max);
/* `devid admin audit ...` (cmd_audit.c): the exit status, or -1 when argv is another command. */
int cmd_admin_audit(int argc, char **argv);
/* `devid admin secrets-key init URI` (cmd_secrets.c), likewise. */
int cmd_admin_secrets(int argc, char **argv);
/* `devid admin backup FILE` (cmd_backup.c), likewise. */
int cmd_admin_backup(int argc, char **argv);

/* What `devid serve --check-config` checks (serve_check.c); NULL members are not set. */
struct serve_check {
	const char *config; /* the configuration file read, for the report */
	const char *db, *tls_cert, *tls_key, *secrets_key, *interop_key;
};
/*
 * Opens what devid serve would open and closes it again, creating and changing nothing: the
 * TLS certificate and key (and that they match), the secrets key, the interop key, the
 * database (reachable, its schema not newer than this devid). Reports each on stdout; exit
 * status 0 when all is well, 1 if not.
 */
int serve_check(const struct serve_check *c);

#endif
