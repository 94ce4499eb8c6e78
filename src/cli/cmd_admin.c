/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cli.h"
#include "output.h"
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
    "       devid admin [--db URL] tenant list [--json]\n"
    "       devid admin [--db URL] token add TENANT --role admin|operator|vendor [--name N]\n"
    "                                        [--expires 90d|12h|RFC3339-DATE]\n"
    "       devid admin [--db URL] token list TENANT [--json]\n"
    "       devid admin [--db URL] token revoke TENANT NAME|ID\n"
    "       devid admin [--db URL] trust add (--vendor NAME | --tenant OEM) --root ROOT.pem\n"
    "                                        --signer SIGNER.pem\n"
    "       devid admin [--db URL] trust list [--vendor NAME | --tenant OEM] [--json]\n"
    "       devid admin [--db URL] trust remove ID\n"
    "       devid admin [--db URL] audit verify TENANT [--checkpoint FILE --pub PUB.pem]\n"
    "       devid admin [--db URL] audit checkpoint TENANT --key URI\n"
    "       devid admin audit key init --key URI       (devid admin audit --help)\n"
    "       devid admin secrets-key init file:PATH|pkcs11:URI  (for devid serve --secrets-key)\n"
    "       devid admin [--db URL] backup FILE       (a SQLite database, while serve runs)\n"
    "       devid admin [--db URL] ca init --tenant NAME (--pkcs11 URI | --key-file PATH)\n"
    "                                      [--validity-days N] [--out CA.pem]\n"
    "       devid admin [--db URL] ca rotate --tenant NAME (--pkcs11 URI | --key-file PATH)\n"
    "                                        [--out CA.pem]\n"
    "       devid admin [--db URL] ca show --tenant NAME\n"
    "       devid admin [--db URL] ca set --tenant NAME --validity-days N\n"
    "       devid admin [--db URL] quota set --tenant NAME --max N|none\n"
    "\n"
    "Administers the database directly (no server needed). --db defaults to $DEVID_DB;\n"
    "URLs are sqlite:PATH or postgres://...\n"
    "token add prints the new token once; only its SHA-256 is stored. --expires takes a\n"
    "lifetime (s, m, h, d) or an RFC 3339 date. token list never shows a secret; a revoked or\n"
    "expired token is refused at once. trust add --vendor trusts a devid vendor's manifest\n"
    "signer (its publishes); trust add --tenant an OEM's own import trust for a vendor outside\n"
    "devid (refused for a devid vendor's signer or root: its chips go by claim code). The\n"
    "signer must not be a CA and must have keyUsage digitalSignature. trust remove retires a\n"
    "signer: its future manifests are refused, the batches it admitted stay. Every change is\n"
    "in the affected tenant's audit trail.\n"
    "ca init makes an OEM tenant's operational CA, which signs the devices' operational\n"
    "certificates (EST): --pkcs11 generates the key inside a PKCS#11 token (RFC 7512 URI\n"
    "naming token and object; the PIN from pin-source=FILE, pin-value or $DEVID_PKCS11_PIN;\n"
    "the module from module-path, $DEVID_PKCS11_MODULE or p11-kit), sensitive and not\n"
    "extractable; --key-file writes a PEM key file instead, for development only. Issued\n"
    "certificates are valid --validity-days (default 30). ca rotate makes the tenant's next\n"
    "CA (a new key, given as for ca init) the one that issues; the previous CA stays trusted,\n"
    "in /cacerts and with its own CRL until the last certificate it issued expires. ca show\n"
    "prints the CA certificates to trust: the current one first, then the retired ones that\n"
    "still have unexpired certificates.\n"
    "quota set limits how many devices may hold an operational certificate.\n";

struct admin_args {
	const char *db, *kind, *role, *vendor, *root, *signer;
	const char *tenant, *pkcs11, *key_file, *out, *max;
	int validity_days;
	const char *name, *expires; /* token add */
	bool json; /* list commands: JSON instead of a table */
};

static int
admin_usage_error(const char *msg)
{
	return cli_usage("admin", "%s", msg);
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

/* A service over one connection, for the commands the domain implements. */
static int
admin_service(const char *url, struct service *svc, struct devid_error *e)
{
	memset(svc, 0, sizeof(*svc));
	svc->keys = &devid_key_loader;
	return store_open(url, 1, &svc->store, e);
}

/*
 * The URI of a new CA key from --pkcs11 or --key-file (made absolute: it is stored for
 * `devid serve`, which may run elsewhere); 0, or the exit status after a message.
 */
static int
admin_ca_key_uri(const struct admin_args *a, const char *verb, char uri[PATH_MAX + 8])
{
	char cwd[PATH_MAX];

	if (a->tenant == NULL || (a->pkcs11 == NULL) == (a->key_file == NULL))
		return cli_usage(
		    "admin", "ca %s needs --tenant and one of --pkcs11 or --key-file", verb);
	if (a->pkcs11 != NULL) {
		snprintf(uri, PATH_MAX + 8, "%s", a->pkcs11);
		if (strncmp(uri, "pkcs11:", 7) != 0)
			return admin_usage_error(
			    "--pkcs11 takes an RFC 7512 URI: pkcs11:token=...");
		return 0;
	}
	if (a->key_file[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) {
		fprintf(stderr, "devid admin ca %s: cannot read the working directory\n", verb);
		return 1;
	}
	if ((size_t)snprintf(uri, PATH_MAX + 8, "file:%s%s%s", a->key_file[0] == '/' ? "" : cwd,
		a->key_file[0] == '/' ? "" : "/", a->key_file) >= PATH_MAX + 8)
		return admin_usage_error("--key-file: path too long");
	fprintf(stderr,
	    "devid admin ca %s: --key-file keeps the CA key in a file: for development only; "
	    "use --pkcs11 in production\n",
	    verb);
	return 0;
}

/* ca init and ca rotate: a new CA key, and its certificate written to --out if given. */
static int
admin_ca_new(const struct admin_args *a, bool rotate)
{
	const char *verb = rotate ? "rotate" : "init";
	char uri[PATH_MAX + 8];
	struct service svc = {0};
	struct devid_error e;
	X509 *ca = NULL;
	int rc;

	devid_error_clear(&e);
	if (rotate && a->validity_days != 0)
		return admin_usage_error(
		    "ca rotate keeps the CA's --validity-days; change it with ca set");
	if ((rc = admin_ca_key_uri(a, verb, uri)) != 0)
		return rc;
	rc = 1;
	if (admin_service(a->db, &svc, &e) != 0)
		goto out;
	if ((rotate ? service_ca_rotate(&svc, a->tenant, uri, &ca, &e)
		    : service_ca_init(&svc, a->tenant, uri, a->validity_days, &ca, &e)) != 0 ||
	    (a->out != NULL && x509_write_pem_file(a->out, ca, &e) != 0))
		goto out;
	if (rotate)
		printf("tenant %s: the next operational CA issues from now on, key in %s; the "
		       "previous one stays trusted until its certificates expire (ca show)\n",
		    a->tenant, a->pkcs11 ? "the PKCS#11 token" : "a file");
	else
		printf("tenant %s: operational CA created, key in %s, certificates valid %d days\n",
		    a->tenant, a->pkcs11 ? "the PKCS#11 token" : "a file",
		    a->validity_days ? a->validity_days : CA_DEFAULT_VALIDITY_DAYS);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "devid admin ca %s: %s\n", verb, e.msg);
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
	STACK_OF(X509) *cas = NULL;
	int rc = 1;

	devid_error_clear(&e);
	if (a->tenant == NULL)
		return admin_usage_error("ca show needs --tenant");
	if (admin_service(a->db, &svc, &e) == 0 && service_ca_get(&svc, a->tenant, &cas, &e) == 0) {
		rc = 0;
		for (int i = 0; i < sk_X509_num(cas) && rc == 0; i++)
			rc = PEM_write_X509(stdout, sk_X509_value(cas, i)) == 1 ? 0 : 1;
	}
	if (rc != 0)
		fprintf(stderr, "devid admin ca show: %s\n", e.msg[0] ? e.msg : "cannot write");
	sk_X509_pop_free(cas, X509_free);
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

/* --- issue 10: tenants, tokens and trust, listed and undone -------------------------------- */

static const char *
admin_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "-";
}

/* A list as a table, or as JSON with --output json (--json). */
static void
admin_print_list(const struct admin_args *a, json_t *j, const struct output_view *view)
{
	output_show(a->json ? OUTPUT_JSON : OUTPUT_TABLE, j, view);
}

/* Reads a PEM file named by an option as text (NUL-terminated); NULL after a message. */
static char *
admin_read_pem(const char *path, struct devid_error *e)
{
	uint8_t *buf = NULL;
	size_t n;

	if (file_read_all(path, MAX_PEM_FILE, &buf, &n, e) != 0)
		return NULL;
	return (char *)buf;
}

/*
 * tenant add|list, token add|list|revoke, trust add|list|remove. Every usage is checked
 * before the database is opened, so a wrong command line never touches it.
 */
static int
admin_accounts(const struct admin_args *a, char **rest, int nrest)
{
	const char *obj = rest[0], *verb = nrest > 1 ? rest[1] : "";
	char token[TOKEN_TEXT_MAX] = "", *root = NULL, *signer = NULL;
	enum tenant_kind kind = TENANT_OEM;
	enum role role = ROLE_ADMIN;
	int64_t expires_at = 0, trust_id = 0;
	struct devid_error e;
	struct service svc;
	json_t *j = NULL;
	int rc = 1, n;

	devid_error_clear(&e);
	memset(&svc, 0, sizeof(svc));
	if (strcmp(obj, "tenant") == 0 && strcmp(verb, "add") == 0 && nrest == 3) {
		if (a->kind == NULL || tenant_kind_parse(a->kind, &kind) != 0)
			return admin_usage_error("tenant add needs --kind vendor or --kind oem");
		if (!claim_name_valid(rest[2], strlen(rest[2])))
			return admin_usage_error("tenant names match [A-Z0-9.-]{1,64}");
	} else if (strcmp(obj, "tenant") == 0 && strcmp(verb, "list") == 0 && nrest == 2) {
	} else if (strcmp(obj, "token") == 0 && strcmp(verb, "add") == 0 && nrest == 3) {
		if (a->role == NULL || role_parse(a->role, &role) != 0)
			return admin_usage_error(
			    "token add needs --role admin, operator or vendor");
		if (a->name != NULL && !token_name_valid(a->name))
			return admin_usage_error(
			    "--name: [A-Za-z0-9._-]{1,64}, not all digits (that is an id)");
		if (a->expires != NULL &&
		    token_expiry_parse(a->expires, time(NULL), &expires_at, &e) != 0)
			return admin_usage_error(e.msg);
	} else if (strcmp(obj, "token") == 0 && strcmp(verb, "list") == 0 && nrest == 3) {
	} else if (strcmp(obj, "token") == 0 && strcmp(verb, "revoke") == 0 && nrest == 4) {
	} else if (strcmp(obj, "trust") == 0 && strcmp(verb, "add") == 0 && nrest == 2) {
		if ((a->vendor == NULL) == (a->tenant == NULL) || a->root == NULL ||
		    a->signer == NULL)
			return admin_usage_error(
			    "trust add needs --vendor NAME or --tenant OEM, --root and --signer");
	} else if (strcmp(obj, "trust") == 0 && strcmp(verb, "list") == 0 && nrest == 2) {
		if (a->vendor != NULL && a->tenant != NULL)
			return admin_usage_error("trust list takes --vendor or --tenant, not both");
	} else if (strcmp(obj, "trust") == 0 && strcmp(verb, "remove") == 0 && nrest == 3) {
		if (cli_parse_int(rest[2], 1, INT_MAX, &n) != 0)
			return admin_usage_error("trust remove takes the trust's id (trust list)");
		trust_id = n;
	} else if (strcmp(verb, "add") == 0 || strcmp(verb, "list") == 0 ||
	    (strcmp(verb, "revoke") == 0 && strcmp(obj, "token") == 0) ||
	    (strcmp(verb, "remove") == 0 && strcmp(obj, "trust") == 0)) {
		return cli_usage("admin", "%s %s: missing or extra arguments", obj, verb);
	} else {
		return cli_usage("admin", "unknown %s subcommand '%s'", obj, verb);
	}
	if (strcmp(obj, "trust") == 0 && strcmp(verb, "add") == 0 &&
	    ((root = admin_read_pem(a->root, &e)) == NULL ||
		(signer = admin_read_pem(a->signer, &e)) == NULL))
		goto out;
	if (admin_service(a->db, &svc, &e) != 0)
		goto out;
	if (strcmp(obj, "tenant") == 0 && strcmp(verb, "add") == 0) {
		if (service_tenant_add(&svc, rest[2], kind, &e) == 0) {
			printf("tenant %s (%s) added\n", rest[2], a->kind);
			rc = 0;
		}
	} else if (strcmp(obj, "tenant") == 0) {
		if (service_tenants(&svc, &j, &e) == 0) {
			admin_print_list(a, j, &output_tenants_view);
			rc = 0;
		}
	} else if (strcmp(obj, "token") == 0 && strcmp(verb, "add") == 0) {
		if (service_token_add_admin(
			&svc, rest[2], role, a->name, expires_at, token, NULL, &e) == 0) {
			printf("%s\n", token); /* only the token, once */
			rc = 0;
		}
	} else if (strcmp(obj, "token") == 0 && strcmp(verb, "list") == 0) {
		if (service_tokens_admin(&svc, rest[2], &j, &e) == 0) {
			admin_print_list(a, j, &output_tokens_view);
			rc = 0;
		}
	} else if (strcmp(obj, "token") == 0) {
		if (service_token_revoke_admin(&svc, rest[2], rest[3], &e) == 0) {
			printf("tenant %s: token %s revoked\n", rest[2], rest[3]);
			rc = 0;
		}
	} else if (strcmp(verb, "add") == 0) {
		if (service_trust_add_admin(&svc, a->vendor, a->tenant, root, signer, &j, &e) ==
		    0) {
			printf("%s %s: manifest signer %s trusted (trust %lld)\n",
			    a->vendor != NULL ? "vendor" : "tenant",
			    a->vendor != NULL ? a->vendor : a->tenant, admin_str(j, "sha256"),
			    (long long)json_integer_value(json_object_get(j, "id")));
			rc = 0;
		}
	} else if (strcmp(verb, "list") == 0) {
		if (service_trust_list_admin(&svc, a->vendor, a->tenant, &j, &e) == 0) {
			admin_print_list(a, j, &output_trust_view);
			rc = 0;
		}
	} else if (service_trust_remove_admin(&svc, trust_id, &j, &e) == 0) {
		printf("trust %lld removed: manifests of signer %s are refused from now on\n",
		    (long long)trust_id, admin_str(j, "sha256"));
		rc = 0;
	}
out:
	if (rc != 0)
		fprintf(stderr, "devid admin %s %s: %s\n", obj, verb, e.msg);
	OPENSSL_cleanse(token, sizeof(token));
	json_decref(j);
	free(root);
	free(signer);
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
	OPT_NAME,
	OPT_EXPIRES,
	OPT_JSON,
	OPT_OUTPUT,
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
    {"name", required_argument, NULL, OPT_NAME},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"json", no_argument, NULL, OPT_JSON},
    {"output", required_argument, NULL, OPT_OUTPUT},
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
	if ((rc = cmd_admin_audit(argc, argv)) >= 0 || (rc = cmd_admin_secrets(argc, argv)) >= 0 ||
	    (rc = cmd_admin_backup(argc, argv)) >= 0)
		return rc;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:", admin_opts, NULL)) != -1) {
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
		case OPT_NAME:
			a.name = optarg;
			break;
		case OPT_EXPIRES:
			a.expires = optarg;
			break;
		case OPT_JSON:
			a.json = true;
			break;
		case 'o':
		case OPT_OUTPUT:
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0)
				return cli_usage(
				    "admin", "--output '%s': expected json or table", optarg);
			a.json = strcmp(optarg, "json") == 0;
			break;
		case 'h':
		case OPT_HELP:
			fputs(admin_usage, stdout);
			return 0;
		default:
			return cli_bad_option("admin", c, argv);
		}
	}
	rest = argv + optind;
	nrest = argc - optind;
	if (nrest == 0)
		return admin_usage_error("which command?");
	if (a.db == NULL)
		return admin_usage_error("no database: give --db URL or set DEVID_DB");
	if (nrest == 2 && strcmp(rest[0], "ca") == 0) {
		if (strcmp(rest[1], "init") == 0 || strcmp(rest[1], "rotate") == 0)
			return admin_ca_new(&a, strcmp(rest[1], "rotate") == 0);
		if (strcmp(rest[1], "show") == 0)
			return admin_ca_show(&a);
		if (strcmp(rest[1], "set") == 0)
			return admin_ca_set(&a);
	}
	if (nrest == 2 && strcmp(rest[0], "quota") == 0 && strcmp(rest[1], "set") == 0)
		return admin_quota_set(&a);
	if (nrest >= 1 &&
	    (strcmp(rest[0], "tenant") == 0 || strcmp(rest[0], "token") == 0 ||
		strcmp(rest[0], "trust") == 0))
		return admin_accounts(&a, rest, nrest);
	/* a usage error never creates or migrates a database */
	if (nrest != 1 || strcmp(rest[0], "migrate") != 0) {
		static const char *const cmds[] = {
		    "migrate", "tenant", "token", "trust", "audit", "secrets-key", "ca", "quota"};
		const char *near = cli_suggest(rest[0], cmds, sizeof(cmds) / sizeof(cmds[0]));

		if (strcmp(rest[0], "migrate") == 0 || strcmp(rest[0], "ca") == 0 ||
		    strcmp(rest[0], "quota") == 0)
			return cli_usage("admin", "%s: missing or extra arguments", rest[0]);
		if (near != NULL)
			return cli_usage(
			    "admin", "unknown command '%s' (did you mean '%s'?)", rest[0], near);
		return cli_usage("admin", "unknown command '%s'", rest[0]);
	}
	if (db_open(a.db, &db, &e) != 0) {
		fprintf(stderr, "devid admin: %s\n", e.msg);
		return 1;
	}
	rc = admin_migrate(db);
	db_close(db);
	return rc;
}
