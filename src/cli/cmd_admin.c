#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cli.h"
#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/manifest.h"
#include "lib/x509.h"
#include "service/service.h"
#include "store/store.h"
#include "lib/banned.h"

static const char admin_usage[] =
    "usage: devid admin [--db URL] migrate\n"
    "       devid admin [--db URL] tenant add NAME --kind vendor|oem\n"
    "       devid admin [--db URL] token add TENANT --role admin|operator|vendor\n"
    "       devid admin [--db URL] trust add --vendor NAME --root ROOT.pem --signer SIGNER.pem\n"
    "       devid admin [--db URL] audit verify TENANT\n"
    "\n"
    "Administers the database directly (no server needed). --db defaults to $DEVID_DB;\n"
    "URLs are sqlite:PATH or postgres://...\n"
    "token add prints the new token once; only its SHA-256 is stored.\n";

struct admin_args {
	const char *db, *kind, *role, *vendor, *root, *signer;
};

static int
admin_usage_error(const char *msg)
{
	fprintf(stderr, "devid admin: %s\n\n%s", msg, admin_usage);
	return EXIT_USAGE;
}

static int
admin_migrate(struct db *db)
{
	struct devid_error e;
	int v;

	devid_error_clear(&e);
	if (store_migrate(db, &e) != 0 || store_schema_version(db, &v, &e) != 0) {
		fprintf(stderr, "devid admin migrate: %s\n", e.msg);
		return 1;
	}
	printf("database schema at version %d\n", v);
	return 0;
}

static int
admin_tenant_add(struct db *db, const char *name, const struct admin_args *a)
{
	enum tenant_kind kind;
	struct devid_error e;

	devid_error_clear(&e);
	if (a->kind == NULL || tenant_kind_parse(a->kind, &kind) != 0)
		return admin_usage_error("tenant add needs --kind vendor or --kind oem");
	if (!claim_name_valid(name, strlen(name)))
		return admin_usage_error("tenant names match [A-Z0-9.-]{1,64}");
	if (store_tenant_add(db, name, kind, NULL, &e) != 0) {
		fprintf(stderr, "devid admin tenant add: %s\n", e.msg);
		return 1;
	}
	printf("tenant %s (%s) added\n", name, a->kind);
	return 0;
}

static int
admin_token_add(struct db *db, const char *tenant, const struct admin_args *a)
{
	uint8_t raw[32], md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1], *token = NULL;
	struct devid_error e;
	struct tenant t;
	enum role role;
	int rc = 1;

	devid_error_clear(&e);
	if (a->role == NULL || role_parse(a->role, &role) != 0)
		return admin_usage_error("token add needs --role admin, operator or vendor");
	if (store_tenant_get(db, tenant, &t, &e) != 0) {
		fprintf(stderr, "devid admin token add: %s\n", e.msg);
		return 1;
	}
	if ((role == ROLE_VENDOR) != (t.kind == TENANT_VENDOR)) {
		fprintf(stderr, "devid admin token add: a %s tenant cannot have a %s token\n",
		    tenant_kind_name(t.kind), a->role);
		return 1;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1 ||
	    (token = b64url_encode(raw, sizeof(raw))) == NULL) {
		fprintf(stderr, "devid admin token add: no randomness\n");
		goto out;
	}
	SHA256((const uint8_t *)token, strlen(token), md);
	hex_encode(md, sizeof(md), hex);
	if (store_token_add(db, t.id, role, hex, &e) != 0) {
		fprintf(stderr, "devid admin token add: %s\n", e.msg);
		goto out;
	}
	printf("%s\n", token);
	rc = 0;
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	if (token != NULL)
		OPENSSL_cleanse(token, strlen(token));
	free(token);
	return rc;
}

static int
admin_trust_add(struct db *db, const struct admin_args *a)
{
	STACK_OF(X509) *roots = NULL, *signers = NULL;
	struct vendor_trust *vt = NULL;
	uint8_t *root_pem = NULL, *signer_pem = NULL, md[32];
	char hex[65];
	size_t n;
	struct devid_error e;
	struct tenant t;
	int rc = 1;

	devid_error_clear(&e);
	if (a->vendor == NULL || a->root == NULL || a->signer == NULL)
		return admin_usage_error("trust add needs --vendor, --root and --signer");
	/* the same checks ingest makes: P-256 signer that chains to the root */
	if ((roots = x509_load_pem_file_all(a->root, &e)) == NULL ||
	    (signers = x509_load_pem_file_all(a->signer, &e)) == NULL ||
	    (vt = vendor_trust_new(roots, signers, &e)) == NULL ||
	    file_read_all(a->root, MAX_PEM_FILE, &root_pem, &n, &e) != 0 ||
	    file_read_all(a->signer, MAX_PEM_FILE, &signer_pem, &n, &e) != 0)
		goto fail;
	if (sk_X509_num(signers) != 1) {
		devid_error_set(
		    &e, DEVID_EINVAL, "%s: give one signer certificate per trust add", a->signer);
		goto fail;
	}
	if (x509_sha256(sk_X509_value(signers, 0), md) != 0) {
		devid_error_set(&e, DEVID_ECRYPTO, "%s: cannot hash", a->signer);
		goto fail;
	}
	hex_encode(md, sizeof(md), hex);
	if (store_tenant_get(db, a->vendor, &t, &e) != 0)
		goto fail;
	if (t.kind != TENANT_VENDOR) {
		devid_error_set(&e, DEVID_EINVAL, "tenant %s is not a vendor", a->vendor);
		goto fail;
	}
	if (store_trust_add(db, t.id, (const char *)root_pem, (const char *)signer_pem, hex, &e) !=
	    0)
		goto fail;
	printf("vendor %s: manifest signer %s trusted\n", a->vendor, hex);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "devid admin trust add: %s\n", e.msg);
out:
	free(root_pem);
	free(signer_pem);
	vendor_trust_free(vt);
	sk_X509_pop_free(roots, X509_free);
	sk_X509_pop_free(signers, X509_free);
	return rc;
}

static int
admin_audit_verify(struct db *db, const char *tenant)
{
	struct devid_error e;
	struct tenant t;
	int64_t n = 0;

	devid_error_clear(&e);
	if (store_tenant_get(db, tenant, &t, &e) != 0 || audit_verify(db, t.id, &n, &e) != 0) {
		fprintf(stderr, "devid admin audit verify: %s\n", e.msg);
		return 1;
	}
	printf("audit trail of %s: %lld records, chain intact\n", tenant, (long long)n);
	return 0;
}

enum { OPT_DB = 1, OPT_KIND, OPT_ROLE, OPT_VENDOR, OPT_ROOT, OPT_SIGNER, OPT_HELP };

static const struct option admin_opts[] = {
    {"db", required_argument, NULL, OPT_DB},
    {"kind", required_argument, NULL, OPT_KIND},
    {"role", required_argument, NULL, OPT_ROLE},
    {"vendor", required_argument, NULL, OPT_VENDOR},
    {"root", required_argument, NULL, OPT_ROOT},
    {"signer", required_argument, NULL, OPT_SIGNER},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

int
cmd_admin(int argc, char **argv)
{
	struct admin_args a = {.db = getenv("DEVID_DB")};
	struct devid_error e;
	struct db *db = NULL;
	char **rest;
	int c, nrest, rc;

	devid_error_clear(&e);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", admin_opts, NULL)) != -1) {
		switch (c) {
		case OPT_DB:
			a.db = optarg;
			break;
		case OPT_KIND:
			a.kind = optarg;
			break;
		case OPT_ROLE:
			a.role = optarg;
			break;
		case OPT_VENDOR:
			a.vendor = optarg;
			break;
		case OPT_ROOT:
			a.root = optarg;
			break;
		case OPT_SIGNER:
			a.signer = optarg;
			break;
		case 'h':
		case OPT_HELP:
			fputs(admin_usage, stdout);
			return 0;
		default:
			return admin_usage_error("bad option");
		}
	}
	rest = argv + optind;
	nrest = argc - optind;
	if (nrest == 0)
		return admin_usage_error("which command?");
	if (a.db == NULL)
		return admin_usage_error("no database: give --db URL or set DEVID_DB");
	if (db_open(a.db, &db, &e) != 0) {
		fprintf(stderr, "devid admin: %s\n", e.msg);
		return 1;
	}
	if (strcmp(rest[0], "migrate") != 0 && store_migrate(db, &e) != 0) {
		fprintf(stderr, "devid admin: %s\n", e.msg);
		db_close(db);
		return 1;
	}
	if (nrest == 1 && strcmp(rest[0], "migrate") == 0)
		rc = admin_migrate(db);
	else if (nrest == 3 && strcmp(rest[0], "tenant") == 0 && strcmp(rest[1], "add") == 0)
		rc = admin_tenant_add(db, rest[2], &a);
	else if (nrest == 3 && strcmp(rest[0], "token") == 0 && strcmp(rest[1], "add") == 0)
		rc = admin_token_add(db, rest[2], &a);
	else if (nrest == 2 && strcmp(rest[0], "trust") == 0 && strcmp(rest[1], "add") == 0)
		rc = admin_trust_add(db, &a);
	else if (nrest == 3 && strcmp(rest[0], "audit") == 0 && strcmp(rest[1], "verify") == 0)
		rc = admin_audit_verify(db, rest[2]);
	else
		rc = admin_usage_error("unknown command");
	db_close(db);
	return rc;
}
