/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - devid-agent, what a device runs: `hello` proves its identity to a product cloud;
 * `enroll` and `renew` get it an operational certificate over EST; `tpm-enroll` gets a TPM
 * device its first one by credential activation.
 * Uses the public API of libdevid-agent, the HOST:PORT and URL checks of the agent, and
 * tpm_enroll.h.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/pem.h>

#include "devid/agent.h"
#include "internal.h"
#include "tpm_enroll.h"
#include "lib/banned.h"

#ifndef DEVID_VERSION
#define DEVID_VERSION "unknown"
#endif

/* exit statuses (docs/agent.md) */
#define EXIT_ADMITTED 0
#define EXIT_REFUSED 1 /* the server answered and did not admit the device */
#define EXIT_USAGE 2 /* bad command line or local files: nothing was sent */
#define EXIT_NETWORK 3 /* no connection, TLS handshake failed, timeout, broken response */
/* enroll and renew: 0 issued (or not due), 1 refused (HTTP 4xx), 2 as above, 3 any other */

#define DEFAULT_TIMEOUT_S 10
#define MAX_TIMEOUT_S 3600

static const char usage[] =
    "usage: devid-agent <command> [options]\n"
    "\n"
    "  devid-agent hello --key URI --cert PEM --connect HOST:PORT --ca PEM [--timeout S]\n"
    "      prove this device's identity to a product cloud over mutual TLS; print its\n"
    "      greeting. --cert may hold the device certificate followed by its chain; --ca\n"
    "      holds the CA certificates that the server's certificate must chain to; HOST is\n"
    "      checked against the server's certificate (an IPv6 address in brackets).\n"
    "      --timeout bounds the whole exchange (default 10 s)\n"
    "  devid-agent enroll --key URI --cert PEM --est URL --ca PEM --out PEM [--label TENANT]\n"
    "                     [--timeout S]\n"
    "      get an operational certificate over EST (RFC 7030): --cert is the birth\n"
    "      certificate (and chain), the TLS client certificate; the CSR is signed by the\n"
    "      same key. --est is https://HOST[:PORT][/PREFIX] (the agent appends\n"
    "      /.well-known/est/[TENANT/]...); --ca is what the EST server's certificate must\n"
    "      chain to. --out receives the issued certificate and its CA (PEM, written\n"
    "      atomically, mode 0644); one line on stdout says udid, serial and notAfter.\n"
    "      --timeout bounds each of the two exchanges (default 10 s)\n"
    "  devid-agent renew  --key URI --cert PEM --est URL --ca PEM --out PEM [--force]\n"
    "                     [--label TENANT] [--timeout S]\n"
    "      renew the operational certificate in --cert (simplereenroll, with it as the TLS\n"
    "      client certificate) once at most a third of its validity is left; before that\n"
    "      it prints \"not due: renews after DATE\" and exits 0 without connecting, unless\n"
    "      --force. An expired certificate cannot renew: enroll again. --out may be --cert.\n"
    "  devid-agent tpm-enroll --est URL --ca PEM --out PEM --key-handle HANDLE\n"
    "                     [--ek rsa|ecc] [--tcti CONF] [--label TENANT] [--timeout S]\n"
    "      a TPM 2.0 device's first operational certificate, by credential activation\n"
    "      (its EK cannot sign a CSR): reads the EK certificate from NV (--ek rsa,\n"
    "      the default: 0x01c00002; ecc: 0x01c0000a, P-256), creates an AK under the EK\n"
    "      and an ECC P-256 signing key under the owner's SRK, has the AK certify the\n"
    "      key, and runs tpm/activate, TPM2_ActivateCredential and tpm/enroll. The key\n"
    "      is made persistent at --key-handle (0x81000000 to 0x817fffff, empty), so that\n"
    "      hello and renew (with --label) use it as --key tpm2:handle=HANDLE. --tcti\n"
    "      names the TPM as tpm2-tss does (swtpm:host=H,port=P, device:/dev/tpmrm0;\n"
    "      default $TPM2OPENSSL_TCTI, else tpm2-tss's default). With --label, --out\n"
    "      also holds the CA from cacerts, which the certificate must chain to; without,\n"
    "      the certificate alone (the server answers cacerts to a device without a\n"
    "      certificate only for a label). --timeout bounds each exchange (default 10 s)\n"
    "\n"
    "key URIs: file:PATH (an unencrypted PEM key: a development stand-in for a secure\n"
    "element); pkcs11:token=T;object=O?pin-source=FILE (RFC 7512: the key stays in the\n"
    "token; module from module-path, $DEVID_PKCS11_MODULE or p11-kit; PIN from pin-value,\n"
    "pin-source or $DEVID_PKCS11_PIN); tpm2:handle=0x81000010 (a persistent key in a TPM\n"
    "2.0) or tpm2:file=PATH (a TSS2 PRIVATE KEY file of tpm2-openssl): the key stays in the\n"
    "TPM, reached through $TPM2OPENSSL_TCTI.\n"
    "\n"
    "exit status: 0 admitted, issued or not due; 1 refused by the server (hello: any answer\n"
    "but 200; enroll, renew, tpm-enroll: HTTP 4xx); 2 usage or local error, a TPM's too\n"
    "(nothing was sent); 3 connection, TLS or protocol failure, or any other failure.\n";

static int
usage_error(const char *cmd, const char *msg)
{
	fprintf(stderr, "devid-agent%s%s: %s\n\n%s", cmd != NULL ? " " : "", cmd != NULL ? cmd : "",
	    msg, usage);
	return EXIT_USAGE;
}

static int
parse_timeout(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > MAX_TIMEOUT_S)
		return -1;
	*out = (int)v;
	return 0;
}

enum {
	OPT_KEY = 256,
	OPT_CERT,
	OPT_CONNECT,
	OPT_CA,
	OPT_TIMEOUT,
	OPT_HELP,
	OPT_EST,
	OPT_OUT,
	OPT_LABEL,
	OPT_FORCE,
	OPT_KEY_HANDLE,
	OPT_EK,
	OPT_TCTI,
};

static const struct option hello_opts[] = {
    {"key", required_argument, NULL, OPT_KEY},
    {"cert", required_argument, NULL, OPT_CERT},
    {"connect", required_argument, NULL, OPT_CONNECT},
    {"ca", required_argument, NULL, OPT_CA},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int
exit_status(const struct devid_hello_result *r)
{
	switch (r->outcome) {
	case DEVID_HELLO_ADMITTED:
		return EXIT_ADMITTED;
	case DEVID_HELLO_REFUSED:
		return EXIT_REFUSED;
	case DEVID_HELLO_TLS_FAILED:
	case DEVID_HELLO_CONNECT_FAILED:
		return EXIT_NETWORK;
	default:
		return EXIT_USAGE;
	}
}

static int
cmd_hello(int argc, char **argv)
{
	const char *key = NULL, *cert = NULL, *connect_to = NULL, *ca = NULL;
	char host[AGENT_MAX_HOST_LEN + 1], port[6], msg[300];
	struct devid_identity *id = NULL;
	struct devid_hello_result r;
	struct devid_error e;
	int c, timeout_s = DEFAULT_TIMEOUT_S, status;

	devid_error_clear(&e);
	devid_hello_result_init(&r);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", hello_opts, NULL)) != -1) {
		switch (c) {
		case OPT_KEY:
			key = optarg;
			break;
		case OPT_CERT:
			cert = optarg;
			break;
		case OPT_CONNECT:
			connect_to = optarg;
			break;
		case OPT_CA:
			ca = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_timeout(optarg, &timeout_s) != 0) {
				snprintf(msg, sizeof(msg),
				    "--timeout \"%s\": expected whole seconds from 1 to %d", optarg,
				    MAX_TIMEOUT_S);
				return usage_error("hello", msg);
			}
			break;
		case 'h':
		case OPT_HELP:
			fputs(usage, stdout);
			return 0;
		default:
			snprintf(msg, sizeof(msg), "unknown option or missing value: %s",
			    argv[optind - 1]);
			return usage_error("hello", msg);
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof(msg), "unexpected argument \"%s\"", argv[optind]);
		return usage_error("hello", msg);
	}
	if (key == NULL || cert == NULL || connect_to == NULL || ca == NULL)
		return usage_error("hello", "needs --key, --cert, --connect and --ca");
	if (agent_split_host_port(connect_to, host, port, &e) != 0)
		return usage_error("hello", e.msg);

	/* everything local is checked before anything is sent */
	if (devid_identity_load(key, cert, &id, &e) != 0) {
		fprintf(stderr, "devid-agent hello: %s\n", e.msg);
		return EXIT_USAGE;
	}
	devid_hello(id, host, port, ca, timeout_s * 1000, &r);
	status = exit_status(&r);
	if (r.outcome == DEVID_HELLO_ADMITTED) {
		if (r.body_len > 0) {
			fwrite(r.body, 1, r.body_len, stdout);
			if (r.body[r.body_len - 1] != '\n')
				putchar('\n');
		}
		if (r.body_truncated)
			fprintf(stderr, "devid-agent hello: the greeting was cut at %d bytes\n",
			    DEVID_HELLO_MAX_BODY);
		if (fflush(stdout) != 0) {
			fprintf(stderr, "devid-agent hello: stdout: %s\n", strerror(errno));
			status = EXIT_USAGE;
		}
	} else {
		fprintf(stderr, "devid-agent hello: %s\n", r.error.msg);
	}
	devid_hello_result_release(&r);
	devid_identity_free(id);
	return status;
}

static const struct option est_opts[] = {
    {"key", required_argument, NULL, OPT_KEY},
    {"cert", required_argument, NULL, OPT_CERT},
    {"est", required_argument, NULL, OPT_EST},
    {"ca", required_argument, NULL, OPT_CA},
    {"out", required_argument, NULL, OPT_OUT},
    {"label", required_argument, NULL, OPT_LABEL},
    {"force", no_argument, NULL, OPT_FORCE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* "2026-12-26T17:37:30Z" */
static void
format_time(time_t t, char *buf, size_t n)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "(time %lld)", (long long)t);
}

static void
format_asn1_time(const ASN1_TIME *a, char *buf, size_t n)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(a, &tm) != 1 || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "(unreadable time)");
}

/* The first certificate of a PEM file (an operational certificate file holds its CA too). */
static X509 *
read_first_cert(const char *path, char *why, size_t n)
{
	FILE *f;
	X509 *x;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(why, n, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((x = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
		snprintf(why, n, "%s: no PEM certificate in it", path);
	fclose(f);
	return x;
}

/* A certificate's serial number in lowercase hex; "?" when it cannot be read. */
static void
serial_hex(X509 *cert, char *out, size_t n)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	snprintf(out, n, "?");
	if (hex != NULL) {
		for (char *p = hex; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
		snprintf(out, n, "%s", hex);
	}
	OPENSSL_free(hex);
	BN_free(bn);
}

static int
est_exit_status(enum devid_est_outcome o)
{
	switch (o) {
	case DEVID_EST_ISSUED:
		return 0;
	case DEVID_EST_REFUSED:
		return EXIT_REFUSED;
	case DEVID_EST_ERROR:
		return EXIT_USAGE;
	default:
		return EXIT_NETWORK;
	}
}

/* enroll (renew false) and renew: the options, the renewal time, the call, the file. */
static int
cmd_est(const char *cmd, bool renew, int argc, char **argv)
{
	const char *key = NULL, *cert = NULL, *url = NULL, *ca = NULL, *out = NULL;
	const char *label = NULL;
	char msg[600], when[40], serial[2 * 20 + 3];
	struct agent_est_url parsed;
	struct devid_identity *id = NULL;
	struct devid_est_opts o;
	struct devid_est_result r;
	struct devid_error e;
	bool force = false;
	int c, timeout_s = DEFAULT_TIMEOUT_S, status = EXIT_USAGE;
	time_t due;
	X509 *current;

	devid_error_clear(&e);
	devid_est_result_init(&r);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", est_opts, NULL)) != -1) {
		switch (c) {
		case OPT_KEY:
			key = optarg;
			break;
		case OPT_CERT:
			cert = optarg;
			break;
		case OPT_EST:
			url = optarg;
			break;
		case OPT_CA:
			ca = optarg;
			break;
		case OPT_OUT:
			out = optarg;
			break;
		case OPT_LABEL:
			label = optarg;
			break;
		case OPT_FORCE:
			if (!renew)
				return usage_error(cmd, "--force is for renew");
			force = true;
			break;
		case OPT_TIMEOUT:
			if (parse_timeout(optarg, &timeout_s) != 0) {
				snprintf(msg, sizeof(msg),
				    "--timeout \"%s\": expected whole seconds from 1 to %d", optarg,
				    MAX_TIMEOUT_S);
				return usage_error(cmd, msg);
			}
			break;
		case 'h':
		case OPT_HELP:
			fputs(usage, stdout);
			return 0;
		default:
			snprintf(msg, sizeof(msg), "unknown option or missing value: %s",
			    argv[optind - 1]);
			return usage_error(cmd, msg);
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof(msg), "unexpected argument \"%s\"", argv[optind]);
		return usage_error(cmd, msg);
	}
	if (key == NULL || cert == NULL || url == NULL || ca == NULL || out == NULL)
		return usage_error(cmd, "needs --key, --cert, --est, --ca and --out");
	if (agent_est_url_parse(url, &parsed, &e) != 0)
		return usage_error(cmd, e.msg);
	if (label != NULL && !agent_est_label_ok(label))
		return usage_error(cmd,
		    "--label: expected 1 to 64 letters, digits, '-', '.', '_' "
		    "or '~'");

	if (renew) {
		/* due or not, and expired or not, before the key is touched */
		if ((current = read_first_cert(cert, msg, sizeof(msg))) == NULL) {
			fprintf(stderr, "devid-agent %s: certificate %s\n", cmd, msg);
			return EXIT_USAGE;
		}
		if (X509_cmp_time(X509_get0_notAfter(current), NULL) <= 0) {
			format_asn1_time(X509_get0_notAfter(current), when, sizeof(when));
			fprintf(stderr,
			    "devid-agent renew: the certificate in %s expired at %s and cannot "
			    "renew; enroll again with the birth certificate (devid-agent enroll)\n",
			    cert, when);
			X509_free(current);
			return EXIT_USAGE;
		}
		if (!devid_renew_due(current, time(NULL), &due) && !force) {
			format_time(due, when, sizeof(when));
			printf("not due: renews after %s\n", when);
			X509_free(current);
			return fflush(stdout) == 0 ? 0 : EXIT_USAGE;
		}
		X509_free(current);
	}

	/* everything local is checked before anything is sent */
	if (devid_identity_load(key, cert, &id, &e) != 0) {
		fprintf(stderr, "devid-agent %s: %s\n", cmd, e.msg);
		return EXIT_USAGE;
	}
	o = (struct devid_est_opts){
	    .url = url,
	    .ca_file = ca,
	    .label = label,
	    .reenroll = renew,
	    .timeout_ms = timeout_s * 1000,
	};
	if (devid_est_enroll(id, &o, &r) != 0) {
		fprintf(stderr, "devid-agent %s: %s\n", cmd, r.error.msg);
		status = est_exit_status(r.outcome);
		goto out;
	}
	if (devid_cert_write_pem(out, r.cert, r.ca, &e) != 0) {
		fprintf(stderr, "devid-agent %s: the certificate was issued but not saved: %s\n",
		    cmd, e.msg);
		status = EXIT_NETWORK;
		goto out;
	}
	serial_hex(r.cert, serial, sizeof(serial));
	format_asn1_time(X509_get0_notAfter(r.cert), when, sizeof(when));
	printf("%s: udid=%s serial=%s notAfter=%s out=%s\n", renew ? "renewed" : "enrolled",
	    devid_identity_get0_udid(id), serial, when, out);
	status = 0;
	if (fflush(stdout) != 0) {
		fprintf(stderr, "devid-agent %s: stdout: %s\n", cmd, strerror(errno));
		status = EXIT_NETWORK;
	}
out:
	devid_est_result_release(&r);
	devid_identity_free(id);
	return status;
}

static const struct option tpm_enroll_opts[] = {
    {"est", required_argument, NULL, OPT_EST},
    {"ca", required_argument, NULL, OPT_CA},
    {"out", required_argument, NULL, OPT_OUT},
    {"key-handle", required_argument, NULL, OPT_KEY_HANDLE},
    {"ek", required_argument, NULL, OPT_EK},
    {"tcti", required_argument, NULL, OPT_TCTI},
    {"label", required_argument, NULL, OPT_LABEL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* --key-handle: 0x and 1 to 8 hex digits, a persistent handle of the owner. */
static int
parse_key_handle(const char *s, uint32_t *out)
{
	size_t n = strlen(s);
	unsigned long v;

	if (n < 3 || n > 10 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') ||
	    strspn(s + 2, "0123456789abcdefABCDEF") != n - 2)
		return -1;
	v = strtoul(s + 2, NULL, 16);
	if (v < AGENT_TPM_OWNER_PERSISTENT_FIRST || v > AGENT_TPM_OWNER_PERSISTENT_LAST)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
cmd_tpm_enroll(int argc, char **argv)
{
	static const char cmd[] = "tpm-enroll";
	const char *url = NULL, *ca = NULL, *out = NULL, *label = NULL, *tcti = NULL;
	char msg[600], when[40], serial[2 * 20 + 3], udid[UDID_HEX_LEN + 1];
	struct agent_tpm_enroll_opts o;
	struct agent_est_url parsed;
	struct devid_est_result r;
	struct devid_error e;
	enum agent_tpm_ek ek = AGENT_TPM_EK_RSA;
	uint32_t handle = 0;
	int c, timeout_s = DEFAULT_TIMEOUT_S, status = EXIT_USAGE;

	devid_error_clear(&e);
	devid_est_result_init(&r);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", tpm_enroll_opts, NULL)) != -1) {
		switch (c) {
		case OPT_EST:
			url = optarg;
			break;
		case OPT_CA:
			ca = optarg;
			break;
		case OPT_OUT:
			out = optarg;
			break;
		case OPT_LABEL:
			label = optarg;
			break;
		case OPT_TCTI:
			tcti = optarg;
			break;
		case OPT_KEY_HANDLE:
			if (parse_key_handle(optarg, &handle) != 0) {
				snprintf(msg, sizeof(msg),
				    "--key-handle \"%s\": expected a persistent handle of the "
				    "owner, 0x81000000 to 0x817fffff",
				    optarg);
				return usage_error(cmd, msg);
			}
			break;
		case OPT_EK:
			if (strcmp(optarg, "rsa") == 0)
				ek = AGENT_TPM_EK_RSA;
			else if (strcmp(optarg, "ecc") == 0)
				ek = AGENT_TPM_EK_ECC;
			else
				return usage_error(cmd,
				    "--ek: expected rsa (RSA 2048, NV 0x01c00002) "
				    "or ecc (ECC P-256, NV 0x01c0000a)");
			break;
		case OPT_TIMEOUT:
			if (parse_timeout(optarg, &timeout_s) != 0) {
				snprintf(msg, sizeof(msg),
				    "--timeout \"%s\": expected whole seconds from 1 to %d", optarg,
				    MAX_TIMEOUT_S);
				return usage_error(cmd, msg);
			}
			break;
		case 'h':
		case OPT_HELP:
			fputs(usage, stdout);
			return 0;
		default:
			snprintf(msg, sizeof(msg), "unknown option or missing value: %s",
			    argv[optind - 1]);
			return usage_error(cmd, msg);
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof(msg), "unexpected argument \"%s\"", argv[optind]);
		return usage_error(cmd, msg);
	}
	if (url == NULL || ca == NULL || out == NULL || handle == 0)
		return usage_error(cmd, "needs --est, --ca, --out and --key-handle");
	if (agent_est_url_parse(url, &parsed, &e) != 0)
		return usage_error(cmd, e.msg);
	if (label != NULL && !agent_est_label_ok(label))
		return usage_error(cmd,
		    "--label: expected 1 to 64 letters, digits, '-', '.', '_' "
		    "or '~'");
	/* the TPM that tpm2: keys reach, unless told otherwise */
	if (tcti == NULL && (tcti = getenv("TPM2OPENSSL_TCTI")) != NULL && tcti[0] == '\0')
		tcti = NULL;

	o = (struct agent_tpm_enroll_opts){
	    .est =
		{
		    .url = url,
		    .ca_file = ca,
		    .label = label,
		    .timeout_ms = timeout_s * 1000,
		},
	    .tcti = tcti,
	    .ek = ek,
	    .key_handle = handle,
	};
	if (agent_tpm_enroll(&o, &r, udid) != 0) {
		fprintf(stderr, "devid-agent %s: %s%s%s%s\n", cmd, udid[0] != '\0' ? "udid " : "",
		    udid, udid[0] != '\0' ? ": " : "", r.error.msg);
		status = est_exit_status(r.outcome);
		goto out;
	}
	if (devid_cert_write_pem(out, r.cert, r.ca, &e) != 0) {
		fprintf(stderr,
		    "devid-agent %s: the certificate was issued but not saved: %s (the key is at "
		    "0x%08x)\n",
		    cmd, e.msg, (unsigned)handle);
		status = EXIT_NETWORK;
		goto out;
	}
	serial_hex(r.cert, serial, sizeof(serial));
	format_asn1_time(X509_get0_notAfter(r.cert), when, sizeof(when));
	printf("enrolled: udid=%s serial=%s notAfter=%s out=%s key=tpm2:handle=0x%08x\n", udid,
	    serial, when, out, (unsigned)handle);
	status = 0;
	if (fflush(stdout) != 0) {
		fprintf(stderr, "devid-agent %s: stdout: %s\n", cmd, strerror(errno));
		status = EXIT_NETWORK;
	}
out:
	devid_est_result_release(&r);
	return status;
}

int
main(int argc, char **argv)
{
	/*
	 * tpm2-tss (under the tpm2 provider of tpm2: keys) logs its warnings on stderr; the
	 * agent says what failed in one line. TSS2_LOG set by the user wins.
	 */
	setenv("TSS2_LOG", "all+none", 0);
	if (argc < 2)
		return usage_error(NULL, "no command");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("devid-agent %s\n", DEVID_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "hello") == 0)
		return cmd_hello(argc - 1, argv + 1);
	if (strcmp(argv[1], "enroll") == 0)
		return cmd_est("enroll", false, argc - 1, argv + 1);
	if (strcmp(argv[1], "renew") == 0)
		return cmd_est("renew", true, argc - 1, argv + 1);
	if (strcmp(argv[1], "tpm-enroll") == 0)
		return cmd_tpm_enroll(argc - 1, argv + 1);
	fprintf(stderr, "devid-agent: unknown command \"%s\"\n\n%s", argv[1], usage);
	return EXIT_USAGE;
}
