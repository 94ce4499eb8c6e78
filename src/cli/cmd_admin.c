#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cli.h"
#include "cli/keyloader.h"
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
    "       devid admin [--db URL] audit verify TENANT [--checkpoint FILE --pub PUB.pem]\n"
    "       devid admin [--db URL] audit checkpoint TENANT --key URI\n"
    "       devid admin audit key init --key URI       (devid admin audit --help)\n"
    "       devid admin secrets-key init file:PATH|pkcs11:URI  (for devid serve --secrets-key)\n"
    "       devid admin [--db URL] ca init --tenant NAME (--pkcs11 URI | --key-file PATH)\n"
    "                                      [--validity-days N] [--out CA.pem]\n"
    "       devid admin [--db URL] ca show --tenant NAME\n"
    "       devid admin [--db URL] ca set --tenant NAME --validity-days N\n"
    "       devid admin [--db URL] quota set --tenant NAME --max N|none\n"
    "\n"
    "Administers the database directly (no server needed). --db defaults to $DEVID_DB;\n"
    "URLs are sqlite:PATH or postgres://...\n"
    "token add prints the new token once; only its SHA-256 is stored.\n"
    "ca init makes an OEM tenant's operational CA, which signs the devices' operational\n"
    "certificates (EST): --pkcs11 generates the key inside a PKCS#11 token (RFC 7512 URI\n"
    "naming token and object; the PIN from pin-source=FILE, pin-value or $DEVID_PKCS11_PIN;\n"
    "the module from module-path, $DEVID_PKCS11_MODULE or p11-kit), sensitive and not\n"
    "extractable; --key-file writes a PEM key file instead, for development only. Issued\n"
    "certificates are valid --validity-days (default 30). ca show prints the CA certificate.\n"
    "quota set limits how many devices may hold an operational certificate.\n";

struct admin_args {
	const char *db, *kind, *role, *vendor, *root, *signer;
	const char *tenant, *pkcs11, *key_file, *out, *max;
	int validity_days;
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
	if (store_token_add(db, t.id, role, hex, NULL, 0, NULL, &e) != 0) {
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

/* A service over one connection, for the commands the domain implements. */
static int
admin_service(const char *url, struct service *svc, struct devid_error *e)
{
	memset(svc, 0, sizeof(*svc));
	svc->keys = &devid_key_loader;
	return store_open(url, 1, &svc->store, e);
}

static int
admin_ca_init(const struct admin_args *a)
{
	char uri[PATH_MAX + 8], cwd[PATH_MAX];
	struct service svc;
	struct devid_error e;
	X509 *ca = NULL;
	int rc = 1;

	devid_error_clear(&e);
	if (a->tenant == NULL || (a->pkcs11 == NULL) == (a->key_file == NULL))
		return admin_usage_error(
		    "ca init needs --tenant and one of --pkcs11 or --key-file");
	if (a->pkcs11 != NULL) {
		snprintf(uri, sizeof(uri), "%s", a->pkcs11);
		if (strncmp(uri, "pkcs11:", 7) != 0)
			return admin_usage_error(
			    "--pkcs11 takes an RFC 7512 URI: pkcs11:token=...");
	} else {
		/* stored for `devid serve`, which may run elsewhere: an absolute path */
		if (a->key_file[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) {
			fprintf(stderr, "devid admin ca init: cannot read the working directory\n");
			return 1;
		}
		if ((size_t)snprintf(uri, sizeof(uri), "file:%s%s%s",
			a->key_file[0] == '/' ? "" : cwd, a->key_file[0] == '/' ? "" : "/",
			a->key_file) >= sizeof(uri))
			return admin_usage_error("--key-file: path too long");
		fprintf(stderr,
		    "devid admin ca init: --key-file keeps the CA key in a file: for "
		    "development only; use --pkcs11 in production\n");
	}
	if (admin_service(a->db, &svc, &e) != 0)
		goto out;
	if (service_ca_init(&svc, a->tenant, uri, a->validity_days, &ca, &e) != 0 ||
	    (a->out != NULL && x509_write_pem_file(a->out, ca, &e) != 0))
		goto out;
	printf("tenant %s: operational CA created, key in %s, certificates valid %d days\n",
	    a->tenant, a->pkcs11 ? "the PKCS#11 token" : "a file",
	    a->validity_days ? a->validity_days : CA_DEFAULT_VALIDITY_DAYS);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "devid admin ca init: %s\n", e.msg);
	OPENSSL_cleanse(uri, sizeof(uri)); /* a pin-value may be in it */
	X509_free(ca);
	store_close(svc.store);
	return rc;
}

static int
admin_ca_show(const struct admin_args *a)
{
	struct service svc;
	struct devid_error e;
	X509 *ca = NULL;
	int rc = 1;

	devid_error_clear(&e);
	if (a->tenant == NULL)
		return admin_usage_error("ca show needs --tenant");
	if (admin_service(a->db, &svc, &e) == 0 && service_ca_get(&svc, a->tenant, &ca, &e) == 0 &&
	    PEM_write_X509(stdout, ca) == 1)
		rc = 0;
	else
		fprintf(stderr, "devid admin ca show: %s\n", e.msg[0] ? e.msg : "cannot write");
	X509_free(ca);
	store_close(svc.store);
	return rc;
}

static int
admin_ca_set(const struct admin_args *a)
{
	struct service svc;
	struct devid_error e;
	int rc = 1;

	devid_error_clear(&e);
	if (a->tenant == NULL || a->validity_days == 0)
		return admin_usage_error("ca set needs --tenant and --validity-days");
	if (admin_service(a->db, &svc, &e) == 0 &&
	    service_ca_set_validity(&svc, a->tenant, a->validity_days, &e) == 0) {
		printf("tenant %s: operational certificates valid %d days\n", a->tenant,
		    a->validity_days);
		rc = 0;
	} else {
		fprintf(stderr, "devid admin ca set: %s\n", e.msg);
	}
	store_close(svc.store);
	return rc;
}

static int
admin_quota_set(const struct admin_args *a)
{
	struct service svc;
	struct devid_error e;
	long long max = -1;
	char *end;
	int rc = 1;

	devid_error_clear(&e);
	if (a->tenant == NULL || a->max == NULL)
		return admin_usage_error("quota set needs --tenant and --max");
	if (strcmp(a->max, "none") != 0) {
		errno = 0;
		max = strtoll(a->max, &end, 10);
		if (errno != 0 || end == a->max || *end != '\0' || max < 0)
			return admin_usage_error("--max is a whole number >= 0, or none");
	}
	if (admin_service(a->db, &svc, &e) == 0 &&
	    service_quota_set_admin(&svc, a->tenant, max, &e) == 0) {
		if (max < 0)
			printf("tenant %s: no quota\n", a->tenant);
		else
			printf("tenant %s: at most %lld devices with an operational certificate\n",
			    a->tenant, max);
		rc = 0;
	} else {
		fprintf(stderr, "devid admin quota set: %s\n", e.msg);
	}
	store_close(svc.store);
	return rc;
}

enum {
	OPT_DB = 1,
	OPT_KIND,
	OPT_ROLE,
	OPT_VENDOR,
	OPT_ROOT,
	OPT_SIGNER,
	OPT_TENANT,
	OPT_PKCS11,
	OPT_KEY_FILE,
	OPT_OUT,
	OPT_MAX,
	OPT_VALIDITY,
	OPT_HELP
};

static const struct option admin_opts[] = {
    {"db", required_argument, NULL, OPT_DB},
    {"kind", required_argument, NULL, OPT_KIND},
    {"role", required_argument, NULL, OPT_ROLE},
    {"vendor", required_argument, NULL, OPT_VENDOR},
    {"root", required_argument, NULL, OPT_ROOT},
    {"signer", required_argument, NULL, OPT_SIGNER},
    {"tenant", required_argument, NULL, OPT_TENANT},
    {"pkcs11", required_argument, NULL, OPT_PKCS11},
    {"key-file", required_argument, NULL, OPT_KEY_FILE},
    {"out", required_argument, NULL, OPT_OUT},
    {"max", required_argument, NULL, OPT_MAX},
    {"validity-days", required_argument, NULL, OPT_VALIDITY},
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
	/* commands with options of their own, in files of their own */
	if ((rc = cmd_admin_audit(argc, argv)) >= 0 || (rc = cmd_admin_secrets(argc, argv)) >= 0)
		return rc;
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
		case OPT_TENANT:
			a.tenant = optarg;
			break;
		case OPT_PKCS11:
			a.pkcs11 = optarg;
			break;
		case OPT_KEY_FILE:
			a.key_file = optarg;
			break;
		case OPT_OUT:
			a.out = optarg;
			break;
		case OPT_MAX:
			a.max = optarg;
			break;
		case OPT_VALIDITY:
			if (cli_parse_int(optarg, 1, CA_MAX_VALIDITY_DAYS, &a.validity_days) != 0)
				return admin_usage_error("--validity-days is 1 to 3650");
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
	if (nrest == 2 && strcmp(rest[0], "ca") == 0) {
		if (strcmp(rest[1], "init") == 0)
			return admin_ca_init(&a);
		if (strcmp(rest[1], "show") == 0)
			return admin_ca_show(&a);
		if (strcmp(rest[1], "set") == 0)
			return admin_ca_set(&a);
	}
	if (nrest == 2 && strcmp(rest[0], "quota") == 0 && strcmp(rest[1], "set") == 0)
		return admin_quota_set(&a);
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
	else
		rc = admin_usage_error("unknown command");
	db_close(db);
	return rc;
}
