/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "gateway/gateway.h"
#include "lib/log.h"
#include "lib/x509.h"
#include "lib/banned.h"

static const char gateway_usage[] =
    "usage: devid gateway --tls-cert PEM --tls-key PEM (--trust PEM | --ldevid-ca PEM) ...\n"
    "                     (--secret S | --secret-file F) --db PATH\n"
    "                     [--listen ADDR:PORT] [--admin-listen ADDR:PORT] [--threads N]\n"
    "                     [--report-url URL [--report-interval SECS] [--report-ca PEM]]\n"
    "                     [--log-level debug|info|warn|error] [--log-format logfmt|json]\n"
    "                     [--config FILE]\n"
    "\n"
    "The reference product cloud (docs/gateway.md). The device port (--listen, default\n"
    "127.0.0.1:9443) speaks TLS and requires a client certificate that chains to a --trust\n"
    "certificate (vendor roots, issuing or operational CAs; each file may hold several) or to\n"
    "an --ldevid-ca certificate; a device whose UDID is on the ACL and not removed gets a 200\n"
    "JSON greeting, any other a 403. The UDID is the SHA-256 of the certificate's key, but a\n"
    "certificate issued through an --ldevid-ca (an OEM's operational CA, as `devid admin ca\n"
    "show` prints it; each is a trust anchor too) is known by its subject: its CN must be the\n"
    "UDID (64 lowercase hex digits) and its O the tenant that owns the device on the ACL.\n"
    "That admits TPM devices by their LDevIDs, whose key is not the EK the UDID hashes.\n"
    "--trust and --ldevid-ca may each be given up to 32 times, one at least.\n"
    "The admin port (--admin-listen, default 127.0.0.1:9080, plain HTTP: keep it on\n"
    "loopback or behind a TLS proxy) takes devid's webhook at POST /devid/events, signed with\n"
    "X-Devid-Signature: sha256=<hex HMAC-SHA256(secret, body)>, and lists the ACL at\n"
    "GET /devid/acl, signed the same way over the empty body. The secret is 16 to 1024 bytes;\n"
    "--secret-file reads it from a file (one trailing newline is dropped), which keeps it out\n"
    "of the process list. The ACL is kept in the SQLite file --db (created if absent).\n"
    "A port 0 picks a free port; the ports bound are printed on stdout. Stops cleanly on\n"
    "SIGINT or SIGTERM; on SIGHUP reads the --trust and --ldevid-ca files and its TLS\n"
    "certificate and key again for new device connections (open ones keep their handshake's\n"
    "trust; which CAs name devices by subject changes for their next request too).\n"
    "--report-url (off when absent) makes it report the devices it admits to devid, for clone\n"
    "detection: every --report-interval seconds (default 10, 1 to 3600) it POSTs to the URL\n"
    "one report per tenant of who was seen (UDID, peer address, certificate hash, first and\n"
    "last time, count), signed as the webhook is, X-Devid-Signature: sha256=<hex\n"
    "HMAC-SHA256(secret, body)>, and resends a report devid could not take (5xx, 429, no\n"
    "answer) at the next one. --report-ca holds the trust anchors of an https URL (default\n"
    "the system's).\n"
    "--config names the configuration file (default $DEVID_CONFIG, else /etc/devid/devid.conf\n"
    "if it exists): its [gateway] section takes these options as keys (trust = ... and\n"
    "ldevid-ca = ... once per file), and flags override it (man 5 devid.conf).\n";

static void
gateway_stop_cb(void *arg)
{
	gateway_stop(arg);
}

/* SIGHUP: the trust and LDevID CA files and the device port's certificate and key */
static void
gateway_reload_cb(void *arg)
{
	struct devid_error e;

	devid_error_clear(&e);
	if (gateway_reload(arg, &e) != 0)
		log_error("reload failed: the gateway keeps its trust and certificate",
		    LOG_STR("error", e.msg));
	else
		log_info("reloaded trust and certificate");
}

static int
usage_error(const char *msg)
{
	return cli_usage("gateway", "%s", msg);
}

/* The secret from a file: its bytes, less one trailing "\n" or "\r\n". */
static int
secret_read(const char *path, uint8_t **out, size_t *len)
{
	struct devid_error e;
	struct stat st;

	devid_error_clear(&e);
	if (file_read_all(path, GATEWAY_MAX_SECRET_LEN + 2, out, len, &e) != 0) {
		fprintf(stderr, "devid gateway: --secret-file: %s\n", e.msg);
		return -1;
	}
	if (*len > 0 && (*out)[*len - 1] == '\n')
		(*len)--;
	if (*len > 0 && (*out)[*len - 1] == '\r')
		(*len)--;
	if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		log_warn("gateway secret file can be read by other users (chmod 600 it)",
		    LOG_STR("path", path));
	return 0;
}

/* the options of devid gateway, which devid.conf's [gateway] section mirrors (config.h) */
enum {
	OPT_LISTEN = 1,
	OPT_ADMIN_LISTEN,
	OPT_CERT,
	OPT_KEY,
	OPT_TRUST,
	OPT_LDEVID_CA,
	OPT_SECRET,
	OPT_SECRET_FILE,
	OPT_DB,
	OPT_THREADS,
	OPT_REPORT_URL,
	OPT_REPORT_INTERVAL,
	OPT_REPORT_CA,
	OPT_LOG,
	OPT_LOG_FORMAT,
	OPT_CONFIG,
	OPT_HELP
};

static const struct option gateway_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN},
    {"tls-cert", required_argument, NULL, OPT_CERT},
    {"tls-key", required_argument, NULL, OPT_KEY},
    {"trust", required_argument, NULL, OPT_TRUST},
    {"ldevid-ca", required_argument, NULL, OPT_LDEVID_CA},
    {"secret", required_argument, NULL, OPT_SECRET},
    {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
    {"db", required_argument, NULL, OPT_DB},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"report-url", required_argument, NULL, OPT_REPORT_URL},
    {"report-interval", required_argument, NULL, OPT_REPORT_INTERVAL},
    {"report-ca", required_argument, NULL, OPT_REPORT_CA},
    {"log-level", required_argument, NULL, OPT_LOG},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* options an environment variable sets too: the variable wins over the file */
static const struct config_env gateway_env[] = {{"log-format", "DEVID_LOG_FORMAT"}, {NULL, NULL}};

static int
gateway_main(int argc, char **argv)
{
	const char *trust[GATEWAY_MAX_TRUST_FILES], *ldevid_ca[GATEWAY_MAX_LDEVID_CA_FILES];
	struct gateway_opts go = {.trust = trust, .ldevid_ca = ldevid_ca};
	struct gateway *g = NULL;
	struct daemon_signals sigs = {0};
	char status[160];
	struct devid_error e;
	const char *secret_file = NULL;
	uint8_t *secret = NULL;
	size_t secret_len = 0;
	bool secret_arg = false;
	enum log_level level;
	const char *log_format = getenv("DEVID_LOG_FORMAT");
	enum log_format format;
	unsigned long n;
	char *end;
	int c, rc = 1;

	devid_error_clear(&e);
	optind = 1;
	opterr = 0; /* cli_bad_option says it, on one line */
	while ((c = getopt_long(argc, argv, ":h", gateway_opts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			go.listen = optarg;
			break;
		case OPT_ADMIN_LISTEN:
			go.admin_listen = optarg;
			break;
		case OPT_CERT:
			go.tls_cert = optarg;
			break;
		case OPT_KEY:
			go.tls_key = optarg;
			break;
		case OPT_TRUST:
			if (go.ntrust == GATEWAY_MAX_TRUST_FILES) {
				rc = usage_error("too many --trust files (put several "
						 "certificates in one file)");
				goto out;
			}
			trust[go.ntrust++] = optarg;
			break;
		case OPT_LDEVID_CA:
			if (go.nldevid_ca == GATEWAY_MAX_LDEVID_CA_FILES) {
				rc = usage_error("too many --ldevid-ca files (put several "
						 "certificates in one file)");
				goto out;
			}
			ldevid_ca[go.nldevid_ca++] = optarg;
			break;
		case OPT_SECRET:
			if (secret_arg || secret_file != NULL) {
				rc = usage_error("give the secret once");
				goto out;
			}
			secret_len = strlen(optarg);
			if ((secret = malloc(secret_len + 1)) == NULL) {
				fprintf(stderr, "devid gateway: out of memory\n");
				goto out;
			}
			memcpy(secret, optarg, secret_len + 1);
			/* out of /proc/PID/cmdline from now on (it was there until now) */
			OPENSSL_cleanse(optarg, secret_len);
			secret_arg = true;
			break;
		case OPT_SECRET_FILE:
			if (secret_arg || secret_file != NULL) {
				rc = usage_error("give the secret once");
				goto out;
			}
			secret_file = optarg;
			break;
		case OPT_DB:
			go.db_path = optarg;
			break;
		case OPT_THREADS:
			n = strtoul(optarg, &end, 10);
			if (*end != '\0' || n < 1 || n > 32) {
				rc = usage_error("--threads is 1 to 32");
				goto out;
			}
			go.threads = (unsigned)n;
			break;
		case OPT_REPORT_URL:
			if (strncmp(optarg, "http://", 7) != 0 &&
			    strncmp(optarg, "https://", 8) != 0) {
				rc = usage_error("--report-url is an http:// or https:// URL");
				goto out;
			}
			go.report_url = optarg;
			break;
		case OPT_REPORT_INTERVAL:
			n = strtoul(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end != '\0' ||
			    n < GATEWAY_MIN_REPORT_INTERVAL || n > GATEWAY_MAX_REPORT_INTERVAL) {
				rc = usage_error("--report-interval is 1 to 3600 (seconds)");
				goto out;
			}
			go.report_interval = (unsigned)n;
			break;
		case OPT_REPORT_CA:
			go.report_ca = optarg;
			break;
		case OPT_LOG:
			if (log_level_parse(optarg, &level) != 0) {
				rc = usage_error("unknown --log-level");
				goto out;
			}
			log_set_level(level);
			break;
		case OPT_LOG_FORMAT:
			log_format = optarg;
			break;
		case OPT_CONFIG:
			break; /* read before the command line (config.h) */
		case 'h':
		case OPT_HELP:
			fputs(gateway_usage, stdout);
			rc = 0;
			goto out;
		default:
			rc = cli_bad_option("gateway", c, argv);
			goto out;
		}
	}
	if (optind != argc) {
		rc = usage_error("unexpected arguments");
		goto out;
	}
	if (log_format != NULL) {
		if (log_format_parse(log_format, &format) != 0) {
			rc = usage_error("unknown log format (--log-format or DEVID_LOG_FORMAT: "
					 "logfmt or json)");
			goto out;
		}
		log_set_format(format);
	}
	if (go.tls_cert == NULL || go.tls_key == NULL || go.ntrust + go.nldevid_ca == 0 ||
	    go.db_path == NULL || (!secret_arg && secret_file == NULL)) {
		rc = usage_error("--tls-cert, --tls-key, --trust or --ldevid-ca, --db and a secret "
				 "(--secret or --secret-file) are required");
		goto out;
	}
	if (go.report_url == NULL && (go.report_interval != 0 || go.report_ca != NULL)) {
		rc = usage_error("--report-interval and --report-ca go with --report-url");
		goto out;
	}
	if (go.report_ca != NULL && strncmp(go.report_url, "https://", 8) != 0) {
		rc = usage_error("--report-ca goes with an https:// --report-url");
		goto out;
	}
	if (strncmp(go.db_path, "postgres", 8) == 0) {
		rc = usage_error("--db is the path of a SQLite file");
		goto out;
	}
	if (strncmp(go.db_path, "sqlite:", 7) == 0)
		go.db_path += 7;
	if (secret_file != NULL && secret_read(secret_file, &secret, &secret_len) != 0)
		goto out;
	if (secret_len < GATEWAY_MIN_SECRET_LEN || secret_len > GATEWAY_MAX_SECRET_LEN) {
		rc = cli_usage("gateway", "the secret must be %d to %d bytes, not %zu",
		    GATEWAY_MIN_SECRET_LEN, GATEWAY_MAX_SECRET_LEN, secret_len);
		goto out;
	}
	go.secret = secret;
	go.secret_len = secret_len;
	if (go.threads == 0)
		go.threads = cli_ncpus() > 16 ? 32 : (unsigned)cli_ncpus() * 2;
	if ((g = gateway_new(&go, &e)) == NULL) {
		fprintf(stderr, "devid gateway: %s\n", e.msg);
		goto out;
	}
	if (strncmp(gateway_admin_address(g), "127.", 4) != 0 &&
	    strncmp(gateway_admin_address(g), "[::1]:", 6) != 0)
		log_warn("gateway admin port is plain HTTP off loopback: event bodies and the ACL "
			 "cross the network in clear (the secret never does)",
		    LOG_STR("admin", gateway_admin_address(g)));
	signal(SIGPIPE, SIG_IGN);
	/* before the gateway's threads start, so that all of them leave the signals to it */
	if (daemon_signals_start(&sigs, gateway_stop_cb, gateway_reload_cb, g) != 0) {
		fprintf(stderr, "devid gateway: cannot start the signal thread\n");
		goto out;
	}
	printf("devid gateway: devices on https://%s, admin on http://%s\n",
	    gateway_device_address(g), gateway_admin_address(g));
	fflush(stdout);
	log_info("gateway started", LOG_STR("devices", gateway_device_address(g)),
	    LOG_STR("admin", gateway_admin_address(g)), LOG_INT("threads", go.threads),
	    LOG_STR("reports", go.report_url != NULL ? "on" : "off"));
	snprintf(status, sizeof(status), "devices on %s, admin on %s", gateway_device_address(g),
	    gateway_admin_address(g));
	daemon_ready(status);
	if (gateway_run(g) != 0) {
		fprintf(stderr, "devid gateway: a server could not run\n");
		goto out;
	}
	log_info("gateway stopped");
	rc = 0;
out:
	daemon_signals_finish(&sigs);
	gateway_free(g);
	if (secret != NULL)
		OPENSSL_clear_free(secret, secret_len);
	return rc;
}

int
cmd_gateway(int argc, char **argv)
{
	struct config_args ca;
	struct devid_error e;
	int rc;

	if (config_args("gateway", gateway_opts, gateway_env, argc, argv, &ca, &e) != 0) {
		return cli_usage("gateway", "%s", e.msg);
	}
	rc = gateway_main(ca.argc, ca.argv);
	config_args_free(&ca);
	return rc;
}
