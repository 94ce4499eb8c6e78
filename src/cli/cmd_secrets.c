/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_secrets.c - `devid admin secrets-key init URI`: makes the key `devid serve --secrets-key`
 * encrypts connector secrets with (secretskey.h, docs/secrets.md). Needs no database.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli/secretskey.h"
#include "lib/banned.h"

static const char secrets_usage[] =
    "usage: devid admin secrets-key init file:PATH\n"
    "       devid admin secrets-key init 'pkcs11:token=...;object=...?pin-source=FILE'\n"
    "\n"
    "Makes the key that devid serve --secrets-key encrypts connector secrets with\n"
    "(AES-256-GCM): a new file of 32 random bytes, mode 0600, or a new AES-256 key inside\n"
    "a PKCS#11 token, sensitive and not extractable. Never replaces a key: the secrets\n"
    "encrypted under it would be lost. Prints the key id that stored secrets carry.\n";

int
cmd_admin_secrets(int argc, char **argv)
{
	struct secrets_key *k = NULL;
	struct devid_error e;
	const char *w[4];
	int n = admin_words(argc, argv, w, 4);

	if (n < 1 || strcmp(w[0], "secrets-key") != 0)
		return -1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(secrets_usage, stdout);
			return 0;
		}
	if (n != 3 || strcmp(w[1], "init") != 0) {
		return cli_usage("admin secrets-key", "which key? (file:PATH or pkcs11:URI)");
	}
	devid_error_clear(&e);
	if (secrets_key_create(w[2], &e) != 0 || secrets_key_load(w[2], &k, &e) != 0) {
		fprintf(stderr, "devid admin secrets-key init: %s\n", e.msg);
		return 1;
	}
	printf("secrets key %s made; start devid serve with --secrets-key and keep a copy "
	       "(without it the connector secrets cannot be read)\n",
	    k->id);
	secrets_key_free(k);
	return 0;
}
