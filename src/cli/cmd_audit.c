/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_audit.c - `devid admin audit ...`: verify a tenant's chain, sign checkpoints of its head
 * and check the chain against one (docs/audit.md). Reads the database, never writes it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "cli.h"
#include "cli/keyloader.h"
#include "lib/x509.h"
#include "service/service.h"
#include "store/store.h"
#include "lib/banned.h"

static const char audit_usage[] =
    "usage: devid admin [--db URL] audit verify TENANT\n"
    "       devid admin [--db URL] audit verify TENANT --checkpoint FILE\n"
    "                                (--pub PUB.pem | --key-cert CERT.pem | --key URI)\n"
    "       devid admin [--db URL] audit checkpoint TENANT --key URI\n"
    "       devid admin audit key init --key URI\n"
    "\n"
    "verify recomputes the tenant's hash-chained audit trail. A chain that verifies may still\n"
    "have lost its newest records; with --checkpoint it also fails (exit 1) unless the trail\n"
    "reaches the checkpoint's record and that record is the one it signed.\n"
    "checkpoint prints a signed head of the trail (a compact JWS, ES256: tenant, seq, hash of\n"
    "record seq, time) to keep outside the database: docs/audit.md.\n"
    "key init makes the checkpoint key, EC P-256: --key file:PATH (a new PEM file, 0600) or\n"
    "--key pkcs11:token=...;object=... (made inside the token, not extractable), and prints\n"
    "its public key (PEM) for --pub.\n";

struct audit_args {
	const char *db, *key, *checkpoint, *pub, *key_cert;
};

static int
audit_usage_error(const char *msg)
{
	return cli_usage("admin audit", "%s", msg);
}

int
admin_words(int argc, char **argv, const char **words, int max)
{
	int n = 0;

	/* every option of devid admin takes a value except --help and --json: the rest are words */
	for (int i = 1; i < argc && n < max; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			while (++i < argc && n < max)
				words[n++] = argv[i];
			break;
		}
		if (a[0] == '-') {
			if (strcmp(a, "--help") != 0 && strcmp(a, "-h") != 0 &&
			    strcmp(a, "--json") != 0 && a[1] == '-' && strchr(a, '=') == NULL)
				i++;
			continue;
		}
		words[n++] = a;
	}
	return n;
}

/* The public key a checkpoint is checked with: --pub, --key-cert or --key. */
static EVP_PKEY *
audit_pub(const struct audit_args *a, void **handle, struct devid_error *e)
{
	EVP_PKEY *pk = NULL, *borrowed = NULL;
	X509 *x;
	FILE *fp;

	*handle = NULL;
	if (a->pub != NULL) {
		if ((fp = fopen(a->pub, "r")) == NULL) {
			devid_error_set(e, DEVID_EIO, "%s: cannot open", a->pub);
			return NULL;
		}
		if ((pk = PEM_read_PUBKEY(fp, NULL, NULL, NULL)) == NULL)
			devid_error_ssl(e, DEVID_EINVAL, "%s: not a PEM public key", a->pub);
		fclose(fp);
		return pk;
	}
	if (a->key_cert != NULL) {
		if ((x = x509_load_pem_file(a->key_cert, e)) == NULL)
			return NULL;
		if ((pk = X509_get_pubkey(x)) == NULL)
			devid_error_ssl(e, DEVID_EINVAL, "%s: no public key", a->key_cert);
		X509_free(x);
		return pk;
	}
	if (devid_key_loader.open(a->key, handle, &borrowed, e) != 0)
		return NULL;
	if (EVP_PKEY_up_ref(borrowed) != 1) {
		devid_error_set(e, DEVID_ENOMEM, "out of memory");
		return NULL;
	}
	return borrowed;
}

static const char *
utc(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "%lld", (long long)t);
	return buf;
}

static int
audit_verify_cmd(struct db *db, const char *tenant, const struct audit_args *a)
{
	struct audit_checkpoint cp;
	struct devid_error e;
	struct tenant t;
	EVP_PKEY *pub = NULL;
	uint8_t *text = NULL;
	void *handle = NULL;
	char when[32];
	size_t len;
	int64_t n = 0;
	int rc = 1;

	devid_error_clear(&e);
	if (a->checkpoint == NULL) {
		if (store_tenant_get(db, tenant, &t, &e) != 0 ||
		    audit_verify(db, t.id, &n, &e) != 0)
			goto out;
		printf(
		    "audit trail of %s: %lld records, chain intact (no checkpoint given: records "
		    "cut off at the end would not show)\n",
		    tenant, (long long)n);
		rc = 0;
		goto out;
	}
	if (file_read_all(a->checkpoint, AUDIT_CHECKPOINT_MAX, &text, &len, &e) != 0 ||
	    (pub = audit_pub(a, &handle, &e)) == NULL)
		goto out;
	if (audit_checkpoint_verify(db, tenant, text, len, pub, &cp, &n, &e) != 0)
		goto out;
	printf("audit trail of %s: %lld records, chain intact, checkpoint seq %lld of %s matches "
	       "(%lld records since)\n",
	    tenant, (long long)n, (long long)cp.seq, utc(cp.at, when, sizeof(when)),
	    (long long)(n - cp.seq));
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "devid admin audit verify: %s\n", e.msg);
	free(text);
	EVP_PKEY_free(pub);
	devid_key_loader.close(handle);
	return rc;
}

static int
audit_checkpoint_cmd(struct db *db, const char *tenant, const struct audit_args *a)
{
	struct audit_checkpoint cp;
	struct devid_error e;
	EVP_PKEY *key = NULL;
	void *handle = NULL;
	char *jws = NULL;
	int rc = 1;

	devid_error_clear(&e);
	if (devid_key_loader.open(a->key, &handle, &key, &e) != 0 ||
	    audit_checkpoint_make(db, tenant, key, &jws, &cp, &e) != 0) {
		fprintf(stderr, "devid admin audit checkpoint: %s\n", e.msg);
		goto out;
	}
	printf("%s\n", jws);
	fprintf(stderr,
	    "devid admin audit checkpoint: %s at seq %lld: keep this line outside the "
	    "database\n",
	    tenant, (long long)cp.seq);
	rc = 0;
out:
	free(jws);
	devid_key_loader.close(handle);
	return rc;
}

static int
audit_key_init(const struct audit_args *a)
{
	struct devid_error e;
	EVP_PKEY *key = NULL;
	void *handle = NULL;
	int rc = 1;

	devid_error_clear(&e);
	if (devid_key_loader.generate(a->key, &handle, &key, &e) != 0) {
		fprintf(stderr, "devid admin audit key init: %s\n", e.msg);
		return 1;
	}
	if (PEM_write_PUBKEY(stdout, key) == 1)
		rc = 0;
	else
		fprintf(stderr, "devid admin audit key init: cannot write the public key\n");
	devid_key_loader.close(handle);
	return rc;
}

int
cmd_admin_audit(int argc, char **argv)
{
	enum { OPT_DB = 1, OPT_KEY, OPT_CHECKPOINT, OPT_PUB, OPT_KEY_CERT, OPT_HELP };
	static const struct option opts[] = {
	    {"db", required_argument, NULL, OPT_DB},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
	    {"pub", required_argument, NULL, OPT_PUB},
	    {"key-cert", required_argument, NULL, OPT_KEY_CERT},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct audit_args a = {.db = getenv("DEVID_DB")};
	const char *w[4];
	struct devid_error e;
	struct db *db = NULL;
	int c, n, rc;

	if (admin_words(argc, argv, w, 4) < 1 || strcmp(w[0], "audit") != 0)
		return -1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_DB:
			a.db = optarg;
			break;
		case OPT_KEY:
			a.key = optarg;
			break;
		case OPT_CHECKPOINT:
			a.checkpoint = optarg;
			break;
		case OPT_PUB:
			a.pub = optarg;
			break;
		case OPT_KEY_CERT:
			a.key_cert = optarg;
			break;
		case 'h':
		case OPT_HELP:
			fputs(audit_usage, stdout);
			return 0;
		default:
			return cli_bad_option("admin audit", c, argv);
		}
	}
	n = argc - optind;
	argv += optind;
	if (n == 3 && strcmp(argv[1], "key") == 0 && strcmp(argv[2], "init") == 0) {
		if (a.key == NULL)
			return audit_usage_error(
			    "key init needs --key file:PATH or --key pkcs11:...");
		return audit_key_init(&a);
	}
	if (n != 3 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "checkpoint") != 0))
		return audit_usage_error("unknown audit command");
	if (argv[1][0] == 'c' && a.key == NULL)
		return audit_usage_error("checkpoint needs --key URI (the checkpoint key)");
	if (argv[1][0] == 'v' && a.checkpoint != NULL &&
	    (a.pub != NULL) + (a.key_cert != NULL) + (a.key != NULL) != 1)
		return audit_usage_error("verify --checkpoint needs the checkpoint key: one of "
					 "--pub, --key-cert, --key");
	if (argv[1][0] == 'v' && a.checkpoint == NULL &&
	    (a.pub != NULL || a.key_cert != NULL || a.key != NULL))
		return audit_usage_error("--pub, --key-cert and --key go with --checkpoint");
	if (a.db == NULL)
		return audit_usage_error("no database: give --db URL or set DEVID_DB");
	devid_error_clear(&e);
	/* read only: no migration, but no schema newer than this devid knows either */
	if (db_open(a.db, &db, &e) != 0 || store_schema_check(db, &e) != 0) {
		fprintf(stderr, "devid admin: %s\n", e.msg);
		db_close(db);
		return 1;
	}
	if (argv[1][0] == 'v')
		rc = audit_verify_cmd(db, argv[2], &a);
	else
		rc = audit_checkpoint_cmd(db, argv[2], &a);
	db_close(db);
	return rc;
}
