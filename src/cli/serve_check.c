/* SPDX-License-Identifier: Apache-2.0 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cli/cli.h"
#include "cli/secretskey.h"
#include "lib/x509.h"
#include "store/db.h"
#include "store/store.h"
#include "lib/banned.h"

static int failures;

static void
report(bool ok, const char *what, const char *detail)
{
	printf("%-12s %s: %s\n", what, ok ? "ok" : "FAILED", detail);
	failures += !ok;
}

/* The certificate chain and key as TLS would load them, and that they belong together. */
static void
check_tls(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	struct devid_error e;
	EVP_PKEY *pk = NULL;
	char msg[512];

	if (ctx == NULL) {
		report(false, "tls", "out of memory");
		return;
	}
	devid_error_clear(&e);
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		snprintf(msg, sizeof(msg), "%s: no certificate chain (%s)", cert,
		    ERR_reason_error_string(ERR_peek_last_error()));
	else if ((pk = pkey_load_pem_file(key, &e)) == NULL)
		snprintf(msg, sizeof(msg), "%s", e.msg);
	else if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 || SSL_CTX_check_private_key(ctx) != 1)
		snprintf(msg, sizeof(msg), "%s is not the key of %s", key, cert);
	else
		msg[0] = '\0';
	report(msg[0] == '\0', "tls", msg[0] == '\0' ? cert : msg);
	EVP_PKEY_free(pk);
	SSL_CTX_free(ctx);
	ERR_clear_error();
}

/* The database: reachable and not newer than this build; a SQLite file may be still to come. */
static void
check_db(const char *url)
{
	char dir[PATH_MAX], msg[600];
	struct devid_error e;
	struct db *db;
	int version = 0;

	devid_error_clear(&e);
	if (strncmp(url, "sqlite:", 7) == 0 && access(url + 7, F_OK) != 0) {
		snprintf(dir, sizeof(dir), "%s", url + 7);
		if (access(dirname(dir), W_OK) != 0) {
			snprintf(msg, sizeof(msg), "%s does not exist and %s is not writable",
			    url + 7, dir);
			report(false, "database", msg);
		} else {
			snprintf(msg, sizeof(msg), "%s does not exist yet: serve creates it", url);
			report(true, "database", msg);
		}
		return;
	}
	if (db_open(url, &db, &e) != 0) {
		report(false, "database", e.msg);
		return;
	}
	if (store_schema_check(db, &e) != 0 || store_schema_version(db, &version, &e) != 0)
		report(false, "database", e.msg);
	else {
		snprintf(msg, sizeof(msg), "schema version %d of %d%s", version,
		    store_schema_latest(),
		    version < store_schema_latest() ? " (serve migrates it at start)" : "");
		report(true, "database", msg);
	}
	db_close(db);
}

int
serve_check(const struct serve_check *c)
{
	struct secrets_key *k = NULL;
	struct devid_error e;
	EVP_PKEY *pk;

	failures = 0;
	report(true, "config", c->config != NULL ? c->config : "no file: options only");
	if (c->tls_cert != NULL)
		check_tls(c->tls_cert, c->tls_key);
	devid_error_clear(&e);
	if (c->secrets_key != NULL) {
		report(secrets_key_load(c->secrets_key, &k, &e) == 0, "secrets-key",
		    k != NULL ? c->secrets_key : e.msg);
		secrets_key_free(k);
	}
	if (c->interop_key != NULL && access(c->interop_key, F_OK) == 0) {
		devid_error_clear(&e);
		pk = pkey_load_pem_file(c->interop_key, &e);
		report(pk != NULL, "interop-key", pk != NULL ? c->interop_key : e.msg);
		EVP_PKEY_free(pk);
	} else if (c->interop_key != NULL)
		report(true, "interop-key", "does not exist yet: serve creates it");
	check_db(c->db);
	printf(
	    "devid serve: %s\n", failures == 0 ? "configuration OK" : "configuration has errors");
	return failures == 0 ? 0 : 1;
}
