/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secretskey.h - the key `devid serve --secrets-key URI` encrypts connector secrets with
 * (struct secrets_key, service.h; docs/secrets.md):
 *
 *   file:PATH     exactly 32 random bytes, a regular file that only its owner may read
 *                 (mode 0600 or 0400; anything looser is refused)
 *   pkcs11:...    an AES-256 secret key object in a PKCS#11 token (RFC 7512 URI naming
 *                 token and object, PIN as for CA keys); AES-GCM runs inside the token
 *
 * `devid admin secrets-key init URI` makes either (a new file, 0600, never replacing one; or a
 * new key in the token, sensitive and not extractable).
 */
#ifndef DEVID_CLI_SECRETSKEY_H
#define DEVID_CLI_SECRETSKEY_H

#include "service/service.h"

#define SECRETS_KEY_LEN 32

/* Opens the key; *out is new (secrets_key_free), its id set. */
int secrets_key_load(const char *uri, struct secrets_key **out, struct devid_error *e);
/* Makes a new key at uri; DEVID_ECONFLICT if the file or object exists. */
int secrets_key_create(const char *uri, struct devid_error *e);
/* Wipes and frees; accepts NULL. */
void secrets_key_free(struct secrets_key *k);

#endif
