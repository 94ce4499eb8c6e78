/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - devid.conf(5): an INI file (read with inih) whose sections are commands and
 * whose keys are their long options, so that the file mirrors the flags exactly:
 *
 *   [serve]
 *   db = sqlite:/var/lib/devid/devid.db
 *   listen = 127.0.0.1:8443
 *
 * The file's settings come first and the command line after them, so a flag overrides the
 * file; an option with an environment variable (db: DEVID_DB) takes the variable over the
 * file when it is set. A repeatable option adds up across file and flags.
 */
#ifndef DEVID_CLI_CONFIG_H
#define DEVID_CLI_CONFIG_H

#include <getopt.h>
#include <stdbool.h>

#include "lib/error.h"

#define CONFIG_DEFAULT_PATH "/etc/devid/devid.conf"

/* An option whose environment variable, when set, wins over the file. */
struct config_env {
	const char *option, *variable;
};

/* argv with the file's settings of one section before the command's own arguments. */
struct config_args {
	int argc;
	char **argv; /* argv[0], the file's nfile arguments (owned), the command's own */
	int nfile;
	const char *path; /* the file read, or NULL when there was none */
};

/*
 * Reads the configuration for `section` (the command: "serve", "gateway"): the file named by
 * --config FILE (or --config=FILE) in argv, else $DEVID_CONFIG, else CONFIG_DEFAULT_PATH if it
 * exists. A file named by flag or variable must exist. Every key must be a long option of
 * opts that takes a value, other than config; a key outside
 * a section, an unknown section or key, or a line inih cannot read fails with DEVID_EINVAL
 * naming the file, the line and the key, and nothing is returned. --config itself stays in
 * out->argv: the command accepts and ignores it.
 */
int config_args(const char *section, const struct option *opts, const struct config_env *env,
    int argc, char **argv, struct config_args *out, struct devid_error *e);
void config_args_free(struct config_args *a);

#endif
