/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "cli.h"
#include "daemon.h"
#include "keyloader.h"
#include "cli/secretskey.h"
#include "connectors/connector.h"
#include "http/api.h"
#include "http/est.h"
#include "lib/base64.h"
#include "lib/limits.h"
#include "lib/x509.h"
#include "http/server.h"
#include "lib/log.h"
#include "service/service.h"
#include "config.h"
#include "lib/banned.h"

/* bodies of the ingest routes (a whole manifest), and of every other route */
#define SERVE_DEFAULT_MAX_INGEST_BODY ((size_t)256 << 20)
#define SERVE_DEFAULT_MAX_BODY ((size_t)1 << 20)
/* seconds between two sweeps of expired uploads, and the longest an upload may wait */
#define UPLOAD_SWEEP_SECS 60
#define UPLOAD_MAX_TTL 2592000
/* claims per token and per address, counted in the database by every server of it */
#define CLAIM_INTERVAL_MS 500 /* one more claim every half second (2 a second) ... */
#define CLAIM_BURST 20 /* ... after a burst of 20 */

static const char serve_usage[] =
    "usage: devid serve --db URL [--listen ADDR:PORT] [--threads N] [--max-body BYTES]\n"
    "                   [--max-ingest-body BYTES] [--max-connections N]\n"
    "                   [--max-client-connections N] [--max-client-requests N]\n"
    "                   [--header-timeout SECS] [--request-timeout SECS]\n"
    "                   [--tls-cert PEM --tls-key PEM] [--device-listen ADDR:PORT]\n"
    "                   [--workers N] [--job-lease SECS] [--max-attempts N]\n"
    "                   [--interop-key PEM] [--log-level debug|info|warn|error]\n"
    "                   [--log-format logfmt|json]\n"
    "                   [--public-url URL] [--claim-burst N] [--claim-interval MS]\n"
    "                   [--secrets-key file:PATH|pkcs11:URI] [--session-ttl SECS]\n"
    "                   [--upload-ttl SECS] [--config FILE] [--check-config]\n"
    "\n"
    "Serves the REST API (docs/api.md). --db defaults to $DEVID_DB; the schema is migrated\n"
    "at start. --listen defaults to 127.0.0.1:8443 (loopback: bind other addresses only with\n"
    "TLS or behind a proxy); with --tls-cert and --tls-key it speaks HTTPS.\n"
    "Request bodies are capped per route: --max-ingest-body (default 268435456) for a\n"
    "vendor's publish and an OEM's import in one body, 16777216 (or --max-ingest-body when\n"
    "smaller) for a page of an upload, --max-body (default 1048576) for every other\n"
    "route; over it: 413 before the body is read. Each port takes --max-connections open\n"
    "connections (default 1024), --max-client-connections from one address and\n"
    "--max-client-requests being handled at once for one address (default: no limit, as\n"
    "behind a load balancer every client has its address); over them: 503 or 429. A\n"
    "request's headers must arrive within --header-timeout seconds (default 10) and all of\n"
    "it within --request-timeout (default 300), else the connection is closed.\n"
    "--device-listen adds the device port: EST (RFC 7030, RFC 8951) at\n"
    "/.well-known/est/[TENANT/]cacerts, simpleenroll, simplereenroll and csrattrs, over TLS\n"
    "with the same --tls-cert and --tls-key (required) and the same --threads. Devices\n"
    "authenticate with a TLS client certificate (the birth certificate to enroll, the\n"
    "operational one to re-enroll), checked against the database's trust on each request;\n"
    "bodies are capped at 16384 bytes. ADDR:PORT or PORT (binds 127.0.0.1) as for --listen.\n"
    "Operational CA keys (devid admin ca init) are opened from their file: or pkcs11: URI.\n"
    "--workers (default 2) deliver provisioning jobs to product clouds; several servers on\n"
    "one PostgreSQL share the jobs. A job a worker took is taken again after --job-lease\n"
    "seconds (default 120) if that worker died with it. A job is dead after --max-attempts\n"
    "failed deliveries of one chunk (default 10, 1 to 100), retried with backoff between.\n"
    "--interop-key holds the P-256 key that signs the cirrent connector's JWTs and the\n"
    "batches' custody records (docs/custody.md) (created, 0600, if missing; give every server\n"
    "of one database the same file); without it, each run makes its own, and custody chains\n"
    "then do not verify across restarts. Receivers fetch the public key at\n"
    "/api/v1/interop-key.\n"
    "--public-url is the base URL devices and clouds reach this service at (http:// or\n"
    "https://, no query or fragment): operational certificates then carry a CRL distribution\n"
    "point, URL/api/v1/tenants/TENANT/crl; without it they carry none.\n"
    "Claims are rate-limited per token and per address, in the database (every server of it\n"
    "counts against the same limit): --claim-burst N at once (default 20), then one every\n"
    "--claim-interval MS milliseconds (default 500); --claim-burst 0 turns the limit off.\n"
    "--secrets-key encrypts connector secrets (a webhook's secret) in the database with\n"
    "AES-256-GCM: file:PATH (32 random bytes, mode 0600) or an AES key in a PKCS#11 token;\n"
    "make one with devid admin secrets-key init URI and give every server of one database\n"
    "the same key. Without it, connectors with secrets are refused (409) (docs/secrets.md).\n"
    "--session-ttl is how long a web console session lasts, in seconds (default 28800, 8\n"
    "hours; 1 to 2592000): from sign-in, not renewed by use (docs/console.md).\n"
    "--upload-ttl is how long an upload (a batch sent in pages, docs/api.md) waits for its\n"
    "next page or its commit, in seconds (default 86400; 1 to 2592000); then it and what it\n"
    "stored are deleted, checked every minute and whenever an upload is opened.\n"
    "--config names the configuration file (default $DEVID_CONFIG, else /etc/devid/devid.conf\n"
    "if it exists): its [serve] section takes these options as keys (listen = ...), and\n"
    "flags and DEVID_DB override it (man 5 devid.conf). --check-config checks the file and\n"
    "the options, opens what serve would open (TLS certificate and key, secrets key, interop\n"
    "key, database) without creating or changing anything, and exits 0 when all is well.\n"
    "Stops cleanly on SIGINT or SIGTERM; on SIGHUP reads its TLS certificate and key again\n"
    "for new connections (open ones keep theirs).\n";

static atomic_bool stopping;

/* the ports a signal stops or reloads (daemon_signals_start) */
struct serve_ports {
	struct http_server *api, *device;
};

static void
serve_stop(void *arg)
{
	struct serve_ports *p = arg;

	atomic_store(&stopping, true);
	http_server_stop(p->api);
	if (p->device != NULL)
		http_server_stop(p->device);
}

/*
 * SIGHUP: both ports read their TLS certificate and key again, for the connections that come
 * next (a renewed certificate); open connections are left alone. The trust devices and vendors
 * are checked against is the database's, read on each request, so there is nothing to reload.
 */
static void
serve_reload(void *arg)
{
	struct serve_ports *p = arg;
	struct http_server *s[] = {p->api, p->device};
	struct devid_error e;

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		if (s[i] == NULL)
			continue;
		devid_error_clear(&e);
		if (http_server_reload_tls(s[i], NULL, &e) != 0)
			log_error("reload failed: the port keeps its certificate",
			    LOG_STR("port", i == 0 ? "api" : "device"), LOG_STR("error", e.msg));
		else
			log_info("reloaded", LOG_STR("port", i == 0 ? "api" : "device"));
	}
}

/* The device port runs on a thread of its own; if it cannot run, the API server stops too. */
struct device_run {
	struct http_server *srv, *api;
	int rc;
};

static void *
device_server_thread(void *arg)
{
	struct device_run *d = arg;

	if ((d->rc = http_server_run(d->srv)) != 0)
		http_server_stop(d->api);
	return NULL;
}

/*
 * The interop signing key (cirrent connector JWTs): read from path, or created there (0600)
 * when missing; without a path, a key for this run only. Its JWK set goes in *jwks.
 */
static EVP_PKEY *
interop_key_load(const char *path, json_t **jwks, struct devid_error *e)
{
	uint8_t pt[65], md[32];
	size_t n = 0;
	char *x = NULL, *y = NULL, *kid = NULL;
	unsigned char *der = NULL;
	int len;
	EVP_PKEY *k = NULL;

	*jwks = NULL;
	if (path != NULL && access(path, F_OK) == 0)
		k = pkey_load_pem_file(path, e);
	else if ((k = pkey_new_p256(e)) != NULL && path != NULL &&
	    pkey_write_pem_file(path, k, e) != 0) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	if (k == NULL)
		return NULL;
	if (EVP_PKEY_get_octet_string_param(
		k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &n) != 1 ||
	    n != 65 || (len = i2d_PUBKEY(k, &der)) <= 0) {
		devid_error_set(e, DEVID_EINVAL, "the interop key is not a P-256 key");
		EVP_PKEY_free(k);
		return NULL;
	}
	SHA256(der, (size_t)len, md);
	OPENSSL_free(der);
	x = b64url_encode(pt + 1, 32);
	y = b64url_encode(pt + 33, 32);
	kid = b64url_encode(md, 12);
	*jwks = json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s}]}", "keys", "kty", "EC", "crv",
	    "P-256", "x", x, "y", y, "kid", kid, "alg", "ES256", "use", "sig");
	if (*jwks != NULL)
		connectors_set_interop_key(k, kid);
	free(x);
	free(y);
	free(kid);
	return k;
}

/*
 * Deletes the uploads that expired (and what they stored) every UPLOAD_SWEEP_SECS, beside
 * the purge an opening upload runs, so a server that no one uploads to still cleans up.
 */
static void *
upload_sweeper(void *arg)
{
	struct service *svc = arg;
	struct devid_error e;
	size_t n = 0;

	while (!atomic_load(&stopping)) {
		devid_error_clear(&e);
		if (service_upload_purge(svc, time(NULL), &n, &e) != 0)
			log_warn("upload purge failed", LOG_STR("error", e.msg));
		else if (n > 0)
			log_info("expired uploads deleted", LOG_INT("uploads", (int64_t)n));
		for (int i = 0; i < UPLOAD_SWEEP_SECS * 10 && !atomic_load(&stopping); i++)
			usleep(100000);
	}
	return NULL;
}

/* A delivery worker: works on due jobs, and looks again every second when none is due. */
static void *
outbox_worker(void *arg)
{
	struct service *svc = arg;
	struct devid_error e;
	int rc;

	while (!atomic_load(&stopping)) {
		devid_error_clear(&e);
		if ((rc = service_outbox_step(svc, &e)) < 0)
			log_warn("outbox step failed", LOG_STR("error", e.msg));
		if (rc != 1)
			for (int i = 0; i < 10 && !atomic_load(&stopping); i++)
				usleep(100000);
	}
	return NULL;
}

/* the options of devid serve, which devid.conf's [serve] section mirrors (config.h) */
enum {
	OPT_DB = 1,
	OPT_LISTEN,
	OPT_THREADS,
	OPT_MAX_BODY,
	OPT_MAX_INGEST_BODY,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_CLIENT_CONNECTIONS,
	OPT_MAX_CLIENT_REQUESTS,
	OPT_HEADER_TIMEOUT,
	OPT_REQUEST_TIMEOUT,
	OPT_CERT,
	OPT_KEY,
	OPT_LOG,
	OPT_LOG_FORMAT,
	OPT_WORKERS,
	OPT_LEASE,
	OPT_MAX_ATTEMPTS,
	OPT_INTEROP,
	OPT_DEVICE_LISTEN,
	OPT_PUBLIC_URL,
	OPT_CLAIM_BURST,
	OPT_CLAIM_INTERVAL,
	OPT_SECRETS_KEY,
	OPT_SESSION_TTL,
	OPT_UPLOAD_TTL,
	OPT_CONFIG,
	OPT_CHECK_CONFIG,
	OPT_HELP
};

static const struct option serve_opts[] = {
    {"db", required_argument, NULL, OPT_DB},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"max-ingest-body", required_argument, NULL, OPT_MAX_INGEST_BODY},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"max-client-connections", required_argument, NULL, OPT_MAX_CLIENT_CONNECTIONS},
    {"max-client-requests", required_argument, NULL, OPT_MAX_CLIENT_REQUESTS},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
    {"tls-cert", required_argument, NULL, OPT_CERT},
    {"tls-key", required_argument, NULL, OPT_KEY},
    {"log-level", required_argument, NULL, OPT_LOG},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"job-lease", required_argument, NULL, OPT_LEASE},
    {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
    {"interop-key", required_argument, NULL, OPT_INTEROP},
    {"device-listen", required_argument, NULL, OPT_DEVICE_LISTEN},
    {"public-url", required_argument, NULL, OPT_PUBLIC_URL},
    {"claim-burst", required_argument, NULL, OPT_CLAIM_BURST},
    {"claim-interval", required_argument, NULL, OPT_CLAIM_INTERVAL},
    {"secrets-key", required_argument, NULL, OPT_SECRETS_KEY},
    {"session-ttl", required_argument, NULL, OPT_SESSION_TTL},
    {"upload-ttl", required_argument, NULL, OPT_UPLOAD_TTL},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* options an environment variable sets too: the variable wins over the file */
static const struct config_env serve_env[] = {
    {"db", "DEVID_DB"}, {"log-format", "DEVID_LOG_FORMAT"}, {NULL, NULL}};

static int
serve(int argc, char **argv, const char *config_path)
{
	struct http_server_opts ho = {.listen = "127.0.0.1:8443",
	    .name = "api",
	    .max_body = SERVE_DEFAULT_MAX_BODY,
	    .max_response = (size_t)1 << 30};
	struct http_server_opts dev = {
	    .name = "est", .max_body = MAX_EST_BODY, .client_auth = HTTP_CLIENT_AUTH_ANY};
	struct service svc = {.verify_threads = cli_ncpus(),
	    .keys = &devid_key_loader,
	    .claim_limit = {.interval_ms = CLAIM_INTERVAL_MS, .burst = CLAIM_BURST}};
	struct devid_error e;
	struct metrics *m = NULL;
	struct api *api = NULL;
	struct est *est = NULL;
	struct http_server *srv = NULL, *dsrv = NULL;
	struct device_run drun = {0};
	struct serve_ports ports = {0};
	struct daemon_signals sigs = {0};
	char status[160];
	pthread_t dthread, sweeper;
	bool dthread_started = false, sweeper_started = false;
	const char *db = getenv("DEVID_DB");
	enum log_level level;
	const char *log_format = getenv("DEVID_LOG_FORMAT");
	enum log_format format;
	pthread_t workers[16];
	const char *interop_path = NULL, *secrets_uri = NULL;
	struct secrets_key *secrets = NULL;
	EVP_PKEY *interop = NULL;
	json_t *jwks = NULL;
	int nworkers = 0, want_workers = 2;
	long ttl;
	char *end;
	size_t max_ingest_body = SERVE_DEFAULT_MAX_INGEST_BODY;
	int guard, pool;
	bool check = false;
	int c, rc = 1;

	devid_error_clear(&e);
	optind = 1;
	opterr = 0; /* cli_bad_option says it, on one line */
	while ((c = getopt_long(argc, argv, ":h", serve_opts, NULL)) != -1) {
		switch (c) {
		case OPT_DB:
			db = optarg;
			break;
		case OPT_LISTEN:
			ho.listen = optarg;
			break;
		case OPT_THREADS:
			ho.threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end != '\0' || ho.threads < 1 || ho.threads > 64) {
				return cli_usage("serve", "--threads is 1 to 64");
			}
			break;
		case OPT_MAX_BODY:
			ho.max_body = (size_t)strtoull(optarg, &end, 10);
			if (*end != '\0' || ho.max_body < 1024) {
				return cli_usage("serve", "--max-body is a byte count >= 1024");
			}
			break;
		case OPT_MAX_INGEST_BODY:
			max_ingest_body = (size_t)strtoull(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end != '\0' ||
			    max_ingest_body < 1024) {
				return cli_usage(
				    "serve", "--max-ingest-body is a byte count >= 1024");
			}
			break;
		case OPT_MAX_CONNECTIONS:
			if (cli_parse_int(optarg, 1, 1000000, &guard) != 0)
				return cli_usage("serve", "--max-connections is 1 to 1000000");
			ho.max_connections = dev.max_connections = (unsigned)guard;
			break;
		case OPT_MAX_CLIENT_CONNECTIONS:
			if (cli_parse_int(optarg, 0, 1000000, &guard) != 0)
				return cli_usage(
				    "serve", "--max-client-connections is 0 (none) to 1000000");
			ho.max_client_connections = dev.max_client_connections = (unsigned)guard;
			break;
		case OPT_MAX_CLIENT_REQUESTS:
			if (cli_parse_int(optarg, 0, 1000000, &guard) != 0)
				return cli_usage(
				    "serve", "--max-client-requests is 0 (none) to 1000000");
			ho.max_client_requests = dev.max_client_requests = (unsigned)guard;
			break;
		case OPT_HEADER_TIMEOUT:
			if (cli_parse_int(optarg, 1, 3600, &guard) != 0)
				return cli_usage("serve", "--header-timeout is 1 to 3600 seconds");
			ho.header_timeout_secs = dev.header_timeout_secs = (unsigned)guard;
			break;
		case OPT_REQUEST_TIMEOUT:
			if (cli_parse_int(optarg, 1, 86400, &guard) != 0)
				return cli_usage(
				    "serve", "--request-timeout is 1 to 86400 seconds");
			ho.request_timeout_secs = dev.request_timeout_secs = (unsigned)guard;
			break;
		case OPT_CERT:
			ho.tls_cert = optarg;
			break;
		case OPT_KEY:
			ho.tls_key = optarg;
			break;
		case OPT_WORKERS:
			want_workers = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || want_workers < 0 || want_workers > 16) {
				return cli_usage("serve", "--workers is 0 to 16");
			}
			break;
		case OPT_INTEROP:
			interop_path = optarg;
			break;
		case OPT_DEVICE_LISTEN:
			dev.listen = optarg;
			break;
		case OPT_SECRETS_KEY:
			secrets_uri = optarg;
			break;
		case OPT_MAX_ATTEMPTS:
			if (cli_parse_int(optarg, 1, 100, &svc.max_attempts) != 0) {
				return cli_usage("serve", "--max-attempts is 1 to 100");
			}
			break;
		case OPT_LEASE:
			svc.job_lease = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || svc.job_lease < 1 || svc.job_lease > 86400) {
				return cli_usage("serve", "--job-lease is 1 to 86400 seconds");
			}
			break;
		case OPT_PUBLIC_URL:
			if (public_url_check(optarg, &e) != 0) {
				return cli_usage("serve", "--public-url: %s", e.msg);
			}
			svc.public_url = optarg;
			break;
		case OPT_CLAIM_BURST:
			svc.claim_limit.burst = (int64_t)strtoll(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end != '\0' ||
			    svc.claim_limit.burst > 1000000) {
				return cli_usage("serve", "--claim-burst is 0 to 1000000");
			}
			break;
		case OPT_CLAIM_INTERVAL:
			svc.claim_limit.interval_ms = (int64_t)strtoll(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end != '\0' ||
			    svc.claim_limit.interval_ms < 1 ||
			    svc.claim_limit.interval_ms > 86400000) {
				return cli_usage(
				    "serve", "--claim-interval is 1 to 86400000 milliseconds");
			}
			break;
		case OPT_SESSION_TTL:
			ttl = strtol(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end != '\0' || ttl < 1 ||
			    ttl > SESSION_MAX_TTL) {
				return cli_usage(
				    "serve", "--session-ttl is 1 to %d seconds", SESSION_MAX_TTL);
			}
			svc.session_ttl = (int)ttl;
			break;
		case OPT_UPLOAD_TTL:
			ttl = strtol(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end != '\0' || ttl < 1 ||
			    ttl > UPLOAD_MAX_TTL) {
				return cli_usage(
				    "serve", "--upload-ttl is 1 to %d seconds", UPLOAD_MAX_TTL);
			}
			svc.upload_ttl = (int)ttl;
			break;
		case OPT_LOG:
			if (log_level_parse(optarg, &level) != 0) {
				return cli_usage("serve", "unknown log level \"%s\"", optarg);
			}
			log_set_level(level);
			break;
		case OPT_LOG_FORMAT:
			log_format = optarg;
			break;
		case OPT_CONFIG:
			break; /* read before the command line (config.h) */
		case OPT_CHECK_CONFIG:
			check = true;
			break;
		case 'h':
		case OPT_HELP:
			fputs(serve_usage, stdout);
			return 0;
		default:
			return cli_bad_option("serve", c, argv);
		}
	}
	if (db == NULL)
		return cli_usage("serve", "no database: give --db URL or set DEVID_DB");
	if (optind != argc)
		return cli_usage(
		    "serve", "'%s': serve takes no arguments, only options", argv[optind]);
	if ((ho.tls_cert == NULL) != (ho.tls_key == NULL))
		return cli_usage("serve", "--tls-cert and --tls-key go together");
	/* a usage error never creates or migrates the database */
	if (http_listen_check(ho.listen, &e) != 0 ||
	    (dev.listen != NULL && http_listen_check(dev.listen, &e) != 0)) {
		return cli_usage("serve", "%s", e.msg);
	}
	if (dev.listen != NULL && ho.tls_cert == NULL) {
		return cli_usage("serve",
		    "--device-listen needs --tls-cert and --tls-key (EST runs "
		    "over TLS, with client certificates)");
	}
	if (log_format != NULL) {
		if (log_format_parse(log_format, &format) != 0) {
			return cli_usage("serve",
			    "unknown log format '%s' (--log-format or DEVID_LOG_FORMAT: logfmt or "
			    "json)",
			    log_format);
		}
		log_set_format(format);
	}
	if (check)
		return serve_check(&(struct serve_check){.config = config_path,
		    .db = db,
		    .tls_cert = ho.tls_cert,
		    .tls_key = ho.tls_key,
		    .secrets_key = secrets_uri,
		    .interop_key = interop_path});
	if (ho.threads == 0)
		ho.threads = (unsigned)cli_ncpus() * 2;
	/* before the database: a server that cannot read its key changes nothing */
	if (secrets_uri != NULL) {
		if (secrets_key_load(secrets_uri, &secrets, &e) != 0) {
			fprintf(stderr, "devid serve: --secrets-key: %s\n", e.msg);
			return 1;
		}
		svc.secrets = secrets;
		log_info("connector secrets encrypted at rest", LOG_STR("key", secrets->id));
	}
	/* a connection per request thread and one for the workers, at most STORE_MAX_CONNS
	 * (threads then wait for one: --threads 64 with --device-listen is 129 threads) */
	pool = (int)ho.threads * (dev.listen != NULL ? 2 : 1) + 1;
	if (store_open(db, pool < STORE_MAX_CONNS ? pool : STORE_MAX_CONNS, &svc.store, &e) != 0) {
		fprintf(stderr, "devid serve: %s\n", e.msg);
		secrets_key_free(secrets);
		return 1;
	}
	if (svc.claim_limit.burst == 0)
		svc.claim_limit.interval_ms = 0; /* no claim limit */
	if ((m = metrics_new()) == NULL) {
		fprintf(stderr, "devid serve: out of memory\n");
		goto out;
	}
	ho.metrics = m;
	svc.prov = connectors_provisioner();
	if ((svc.cas = service_ca_cache_new()) == NULL) {
		fprintf(stderr, "devid serve: out of memory\n");
		goto out;
	}
	if ((interop = interop_key_load(interop_path, &jwks, &e)) == NULL)
		goto fail;
	svc.custody_key = interop;
	if ((api = api_new(&svc, m, jwks, &e)) == NULL)
		goto fail;
	api_set_max_ingest_body(api, max_ingest_body);
	ho.handler = api_handle;
	ho.handler_arg = api;
	ho.body_limit = api_body_limit;
	ho.body_limit_arg = api;
	if ((srv = http_server_new(&ho, &e)) == NULL)
		goto fail;
	if (dev.listen != NULL) {
		if ((est = est_new(&svc, &e)) == NULL)
			goto fail;
		dev.threads = ho.threads;
		dev.tls_cert = ho.tls_cert;
		dev.tls_key = ho.tls_key;
		dev.metrics = m;
		dev.handler = est_handle;
		dev.handler_arg = est;
		if ((dsrv = http_server_new(&dev, &e)) == NULL) {
			devid_error_prefix(&e, "device port");
			goto fail;
		}
	}
	ports.api = srv;
	ports.device = dsrv;
	signal(SIGPIPE, SIG_IGN);
	/* before any other thread starts, so that all of them leave the signals to it */
	if (daemon_signals_start(&sigs, serve_stop, serve_reload, &ports) != 0) {
		fprintf(stderr, "devid serve: cannot start the signal thread\n");
		goto out;
	}
	printf("devid serve: listening on %s://%s\n", ho.tls_cert ? "https" : "http",
	    http_server_address(srv));
	if (dsrv != NULL)
		printf(
		    "devid serve: EST on https://%s/.well-known/est/\n", http_server_address(dsrv));
	fflush(stdout);
	log_info("serve started", LOG_STR("listen", http_server_address(srv)),
	    LOG_STR("device_listen", dsrv != NULL ? http_server_address(dsrv) : NULL),
	    LOG_INT("threads", ho.threads));
	/* the ports are bound and listening: connections wait in their backlogs from now on */
	snprintf(status, sizeof(status), "API on %s%s%s", http_server_address(srv),
	    dsrv != NULL ? ", EST on " : "", dsrv != NULL ? http_server_address(dsrv) : "");
	daemon_ready(status);
	if (dsrv != NULL) {
		drun.srv = dsrv;
		drun.api = srv;
		if (pthread_create(&dthread, NULL, device_server_thread, &drun) != 0) {
			fprintf(stderr, "devid serve: the device port could not start\n");
			goto out;
		}
		dthread_started = true;
	}
	for (; nworkers < (int)(sizeof(workers) / sizeof(workers[0])) && nworkers < want_workers;
	     nworkers++)
		if (pthread_create(&workers[nworkers], NULL, outbox_worker, &svc) != 0)
			break;
	if (pthread_create(&sweeper, NULL, upload_sweeper, &svc) == 0)
		sweeper_started = true;
	if (http_server_run(srv) != 0) {
		fprintf(stderr, "devid serve: the server could not run\n");
		goto out;
	}
	if (dthread_started) {
		http_server_stop(dsrv);
		pthread_join(dthread, NULL);
		dthread_started = false;
		if (drun.rc != 0) {
			fprintf(stderr, "devid serve: the device port could not run\n");
			goto out;
		}
	}
	log_info("serve stopped");
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "devid serve: %s\n", e.msg);
out:
	atomic_store(&stopping, true);
	if (dthread_started) {
		http_server_stop(dsrv);
		pthread_join(dthread, NULL);
	}
	for (int i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	if (sweeper_started)
		pthread_join(sweeper, NULL);
	daemon_signals_finish(&sigs);
	http_server_free(dsrv);
	http_server_free(srv);
	est_free(est);
	api_free(api);
	metrics_free(m);
	json_decref(jwks);
	EVP_PKEY_free(interop);
	service_ca_cache_free(svc.cas, svc.keys);
	store_close(svc.store);
	secrets_key_free(secrets);
	return rc;
}

int
cmd_serve(int argc, char **argv)
{
	struct config_args ca;
	struct devid_error e;
	int rc;

	if (config_args("serve", serve_opts, serve_env, argc, argv, &ca, &e) != 0) {
		return cli_usage("serve", "%s", e.msg);
	}
	rc = serve(ca.argc, ca.argv, ca.path);
	config_args_free(&ca);
	return rc;
}
