/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_limbo.c - x509_chain_verify() over the x509-limbo path-validation cases.
 *
 * Usage: test_limbo <vectors folder>. For each case the peer certificate and the untrusted
 * intermediates go through x509_from_der() (devid's loader for certificates from outside, as
 * for an x5c chain) and then x509_chain_verify() against a store of the trusted certificates
 * built with x509_store_new(). Peer names are never checked: cases whose verdict depends on
 * host-name matching are excluded (table `exclusions`). Every other case must agree with
 * expected_result, except the deliberate differences in table `differences`, which must still
 * differ. docs/vectors.md holds both tables and the reasons.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/error.h"
#include "lib/x509.h"
#include "test.h"
#include "lib/banned.h"

#define LIMBO_FILE "x509-limbo/limbo.json"

/*
 * Cases not run: their verdict is decided by matching expected_peer_name against the
 * certificate, which is not part of device certificate validation. A case is excluded when
 * its id starts with `prefix`.
 */
struct exclusion {
	const char *prefix;
	const char *reason;
	int hits;
};

static struct exclusion exclusions[] = {
    {"webpki::san::", "host-name matching against the subjectAltName (RFC 6125, CABF)", 0},
    {"webpki::cn::", "host-name matching against the subject CN (CABF BR 7.1.4.3)", 0},
    {"rfc5280::ca-as-leaf-wrong-san", "fails only because the peer name is not in the SAN", 0},
};

/*
 * Cases run whose result deliberately differs from expected_result. The test fails when one
 * of them agrees again, so that this table (and docs/vectors.md) stays true.
 */
struct difference {
	const char *id;
	const char *reason;
	bool seen;
};

#define CRL "CRLs are not consulted: x509_chain_verify() takes none"
#define ANCHOR "trust anchors must be self-signed roots (partial chains are off)"
#define ONE_PATH "OpenSSL builds one path and does not backtrack to another issuer"
#define TLS_KU "the TLS purpose requires a leaf keyUsage usable for TLS; a CA key has none"
#define NOTAFTER "OpenSSL counts the notAfter second as expired (RFC 5280 4.1.2.5: inclusive)"
#define NC_WILDCARD "OpenSSL compares a wildcard dNSName literally against name constraints"
#define NAME_SYNTAX "SAN and name-constraint syntax is not checked in chain verification"
#define WEBPKI "Web PKI (CA/Browser Forum) rule, not applied to device certificates"
#define IDEVID "a device certificate rule: x509_check_idevid() checks it, not the chain"

static struct difference differences[] = {
    {"crl::revoked-certificate-with-crl", CRL, false},
    {"crl::crlnumber-missing", CRL, false},
    {"crl::crlnumber-critical", CRL, false},
    {"crl::issuer-missing-crlsign", CRL, false},
    {"crl::issuer-no-keyusage-extension",
	"stricter: X509_STRICT requires keyUsage in CA certificates (RFC 5280 4.2.1.3)", false},
    {"cve::cve-2024-0567", ANCHOR, false},
    {"rfc5280::root-and-intermediate-swapped", ANCHOR, false},
    {"rfc5280::nc::nc-forbids-alternate-chain-ica", ONE_PATH, false},
    {"rfc5280::nc::nc-forbids-same-chain-ica", ONE_PATH, false},
    {"pathlen::validation-ignores-pathlen-in-leaf", TLS_KU, false},
    {"rfc5280::ca-as-leaf", TLS_KU, false},
    {"pathlen::max-chain-depth-1-self-issued",
	"stricter: OpenSSL counts self-issued intermediates against the depth limit", false},
    {"rfc5280::validity::notafter-exact", NOTAFTER, false},
    {"rfc5280::validity::notafter-fractional", NOTAFTER, false},
    {"cve::cve-2025-61727", NC_WILDCARD, false},
    {"rfc5280::nc::nc-forbids-dnsname-wildcard-san", NC_WILDCARD, false},
    {"rfc5280::nc::permitted-dns-match-noncritical",
	"OpenSSL accepts non-critical name constraints (as webpki::nc:: does)", false},
    {"rfc5280::nc::invalid-dnsname-leading-period", NAME_SYNTAX, false},
    {"rfc5280::nc::not-allowed-in-ee-noncritical",
	"OpenSSL ignores name constraints in an end-entity certificate", false},
    {"rfc5280::nc::not-allowed-in-ee-critical",
	"OpenSSL ignores name constraints in an end-entity certificate", false},
    {"rfc5280::nc::nc-permits-invalid-dns-san", NAME_SYNTAX, false},
    {"rfc5280::nc::nc-permits-invalid-email-san", NAME_SYNTAX, false},
    {"rfc5280::san::underscore-dns", NAME_SYNTAX, false},
    {"rfc5280::san::ip-in-dns", NAME_SYNTAX, false},
    {"webpki::nc::intermediate-permitted-excluded-subtrees-both-null",
	"OpenSSL takes name constraints with no subtree as no constraint", false},
    {"webpki::nc::intermediate-permitted-excluded-subtrees-both-empty-sequences",
	"OpenSSL takes name constraints with no subtree as no constraint", false},
    {"rfc5280::pc::ica-noncritical-pc", "OpenSSL does not require policyConstraints to be critical",
	false},
    {"rfc5280::serial::too-long", IDEVID, false},
    {"rfc5280::serial::zero", IDEVID, false},
    {"webpki::forbidden-dsa-root", WEBPKI, false},
    {"webpki::forbidden-dsa-leaf", WEBPKI, false},
    {"webpki::forbidden-rsa-not-divisible-by-8-in-root", WEBPKI, false},
    {"webpki::forbidden-rsa-key-not-divisible-by-8-in-leaf", WEBPKI, false},
    {"webpki::aki::root-with-aki-missing-keyidentifier", WEBPKI, false},
    {"webpki::eku::ee-anyeku", WEBPKI, false},
    {"webpki::eku::ee-critical-eku", WEBPKI, false},
    {"webpki::eku::ee-without-eku", WEBPKI, false},
    {"webpki::eku::root-has-eku", WEBPKI, false},
    {"webpki::malformed-aia", WEBPKI, false},
    {"webpki::v1-cert", IDEVID, false},
    {"webpki::ee-basicconstraints-ca", IDEVID, false},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct counts {
	int cases;
	int excluded;
	int run;
	int agree;
	int differ;
	int load_rejected;
};

static struct exclusion *
exclusion_find(const char *id)
{
	for (size_t i = 0; i < NELEM(exclusions); i++)
		if (strncmp(id, exclusions[i].prefix, strlen(exclusions[i].prefix)) == 0)
			return &exclusions[i];
	return NULL;
}

static struct difference *
difference_find(const char *id)
{
	for (size_t i = 0; i < NELEM(differences); i++)
		if (strcmp(id, differences[i].id) == 0)
			return &differences[i];
	return NULL;
}

/* Reads exactly n decimal digits. */
static bool
digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool
expect_char(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/*
 * Parses limbo's validation_time, "YYYY-MM-DDTHH:MM:SS[.fraction](+00:00|Z)", into seconds
 * since the epoch. A fraction is dropped (rounded down to the whole second): time_t, like
 * X.509 times, has whole seconds.
 */
static bool
time_parse(const char *s, time_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, frac;
	const char *p = s;

	if (!digits(&p, 4, &y) || !expect_char(&p, '-') || !digits(&p, 2, &mo) ||
	    !expect_char(&p, '-') || !digits(&p, 2, &d) || !expect_char(&p, 'T') ||
	    !digits(&p, 2, &h) || !expect_char(&p, ':') || !digits(&p, 2, &mi) ||
	    !expect_char(&p, ':') || !digits(&p, 2, &sec))
		return false;
	if (expect_char(&p, '.')) {
		if (!digits(&p, 1, &frac))
			return false;
		while (digits(&p, 1, &frac))
			;
	}
	if (strcmp(p, "+00:00") != 0 && strcmp(p, "Z") != 0)
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = timegm(&tm);
	return *out != (time_t)-1;
}

/*
 * Decodes one PEM CERTIFICATE block and hands its DER to x509_from_der(), devid's loader for
 * certificates received from outside. NULL with e set when devid rejects it.
 */
static X509 *
cert_from_pem(const char *pem, const char *what, struct devid_error *e)
{
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long len = 0;
	BIO *bio;
	X509 *x = NULL;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
		goto out;
	}
	if (PEM_read_bio(bio, &name, &header, &der, &len) != 1 ||
	    strcmp(name, PEM_STRING_X509) != 0) {
		devid_error_ssl(e, DEVID_EINVAL, "%s: not one PEM certificate", what);
		goto out;
	}
	x = x509_from_der(der, (size_t)len, what, e);
out:
	ERR_clear_error();
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	return x;
}

/* The trust anchors, read from memory as x509_load_pem_file_all() reads a roots file. */
static STACK_OF(X509) * roots_from_pem(const json_t *arr, const char *id)
{
	STACK_OF(X509) * sk;
	json_t *v;
	size_t i;
	BIO *bio;
	X509 *x;

	if ((sk = sk_X509_new_null()) == NULL)
		return NULL;
	json_array_foreach(arr, i, v)
	{
		x = NULL;
		if (json_is_string(v) &&
		    (bio = BIO_new_mem_buf(json_string_value(v), -1)) != NULL) {
			x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
			BIO_free(bio);
		}
		if (x == NULL || !sk_X509_push(sk, x)) {
			CHECK(false, "%s: trusted_certs[%zu] is not a PEM certificate", id, i);
			X509_free(x);
			sk_X509_pop_free(sk, X509_free);
			ERR_clear_error();
			return NULL;
		}
		X509_check_purpose(x, -1, 0);
	}
	ERR_clear_error();
	return sk;
}

/*
 * Purpose: clientAuth in extended_key_usage or validation_kind CLIENT checks as a TLS client
 * (devid's devices); serverAuth or SERVER as a TLS server.
 */
static int
case_purpose(const json_t *tc, const char *id)
{
	const char *kind = json_string_value(json_object_get(tc, "validation_kind"));
	json_t *ekus = json_object_get(tc, "extended_key_usage"), *v;
	bool client = kind != NULL && strcmp(kind, "CLIENT") == 0;
	bool server = kind != NULL && strcmp(kind, "SERVER") == 0;
	size_t i;

	json_array_foreach(ekus, i, v)
	{
		const char *eku = json_string_value(v);
		bool is_client = eku != NULL && strcmp(eku, "clientAuth") == 0;
		bool is_server = eku != NULL && strcmp(eku, "serverAuth") == 0;

		CHECK(is_client || is_server, "%s: extended_key_usage %s not understood", id,
		    eku != NULL ? eku : "?");
		client = client || is_client;
		server = server || is_server;
	}
	CHECK(client != server, "%s: validation_kind and extended_key_usage disagree", id);
	return client ? X509_PURPOSE_SSL_CLIENT : X509_PURPOSE_SSL_SERVER;
}

/*
 * Runs one case through devid. Returns 0 when the chain is accepted, else a DEVID_E* code with
 * the reason in e; *at_load says the loader rejected a certificate before chain building.
 */
static int
case_verify(const json_t *tc, const char *id, bool *at_load, struct devid_error *e)
{
	struct x509_verify_opts opts = {0};
	STACK_OF(X509) *roots = NULL, *untrusted = NULL;
	X509_STORE *store = NULL;
	X509 *leaf = NULL, *x;
	json_t *depth = json_object_get(tc, "max_chain_depth");
	json_t *when = json_object_get(tc, "validation_time"), *v;
	const char *pem = json_string_value(json_object_get(tc, "peer_certificate")), *s;
	char what[64];
	size_t i;
	int rc = DEVID_EINVAL;

	*at_load = false;
	opts.purpose = case_purpose(tc, id);
	if (json_is_integer(depth)) {
		opts.has_max_depth = true;
		opts.max_depth = (int)json_integer_value(depth);
	} else
		CHECK(json_is_null(depth), "%s: max_chain_depth is not an integer", id);
	if (json_is_string(when))
		CHECK(time_parse(json_string_value(when), &opts.at), "%s: validation_time %s", id,
		    json_string_value(when));
	else
		CHECK(json_is_null(when), "%s: validation_time is not a string", id);
	if ((roots = roots_from_pem(json_object_get(tc, "trusted_certs"), id)) == NULL) {
		devid_error_set(e, rc, "test: no trust anchors");
		goto out;
	}
	if ((store = x509_store_new(roots, e)) == NULL)
		goto out;
	*at_load = true;
	if (pem == NULL) {
		CHECK(false, "%s: peer_certificate is not a string", id);
		goto out;
	}
	if ((leaf = cert_from_pem(pem, "peer_certificate", e)) == NULL)
		goto out;
	if ((untrusted = sk_X509_new_null()) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "test: out of memory");
		goto out;
	}
	json_array_foreach(json_object_get(tc, "untrusted_intermediates"), i, v)
	{
		snprintf(what, sizeof(what), "untrusted_intermediates[%zu]", i);
		if ((s = json_string_value(v)) == NULL) {
			CHECK(false, "%s: %s is not a string", id, what);
			goto out;
		}
		if ((x = cert_from_pem(s, what, e)) == NULL)
			goto out;
		if (!sk_X509_push(untrusted, x)) {
			X509_free(x);
			rc = devid_error_set(e, DEVID_ENOMEM, "test: out of memory");
			goto out;
		}
	}
	*at_load = false;
	rc = x509_chain_verify(store, leaf, untrusted, &opts, e);
out:
	X509_free(leaf);
	sk_X509_pop_free(untrusted, X509_free);
	sk_X509_pop_free(roots, X509_free);
	X509_STORE_free(store);
	return rc;
}

static void
case_run(const json_t *tc, struct counts *c)
{
	const char *id = json_string_value(json_object_get(tc, "id"));
	const char *expected = json_string_value(json_object_get(tc, "expected_result"));
	struct devid_error e = {0};
	struct exclusion *ex;
	struct difference *d;
	bool want, got, at_load;

	c->cases++;
	if (id == NULL || expected == NULL ||
	    (strcmp(expected, "SUCCESS") != 0 && strcmp(expected, "FAILURE") != 0)) {
		CHECK(false, "case %d: id or expected_result missing or unknown", c->cases);
		return;
	}
	if ((ex = exclusion_find(id)) != NULL) {
		ex->hits++;
		c->excluded++;
		return;
	}
	c->run++;
	want = strcmp(expected, "SUCCESS") == 0;
	got = case_verify(tc, id, &at_load, &e) == 0;
	if (!got && at_load)
		c->load_rejected++;
	if (!got)
		printf("# %s: devid says FAILURE%s: %s\n", id, at_load ? " at load" : "", e.msg);
	if ((d = difference_find(id)) != NULL) {
		d->seen = true;
		c->differ++;
		CHECK(got != want,
		    "%s: listed as a deliberate difference but devid now agrees (%s); "
		    "remove it from the table here and in docs/vectors.md",
		    id, expected);
		printf("# differs (listed): %s: expected %s, devid %s%s%s\n", id, expected,
		    got ? "SUCCESS" : "FAILURE", got ? "" : ": ", e.msg);
		return;
	}
	c->agree += got == want;
	CHECK(got == want, "%s: expected %s, devid says %s%s%s", id, expected,
	    got ? "SUCCESS" : "FAILURE", got ? "" : ": ", e.msg);
}

int
main(int argc, char **argv)
{
	char path[4096], reason[4200];
	struct stat st;
	json_error_t jerr;
	json_t *root, *cases, *tc;
	struct counts c = {0};
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: test_limbo <vectors folder>\n");
		return 2;
	}
	if (stat(argv[1], &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(reason, sizeof(reason), "test vector folder %s not present", argv[1]);
		test_skip(reason);
	}
	snprintf(path, sizeof(path), "%s/%s", argv[1], LIMBO_FILE);
	if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		CHECK(false, "%s: cannot read JSON: line %d: %s", path, jerr.line, jerr.text);
		return test_done();
	}
	CHECK(json_integer_value(json_object_get(root, "version")) == 1,
	    "%s: limbo format version is not 1", path);
	cases = json_object_get(root, "testcases");
	CHECK(json_is_array(cases) && json_array_size(cases) > 0, "%s: no \"testcases\"", path);
	json_array_foreach(cases, i, tc)
	{
		case_run(tc, &c);
	}
	for (i = 0; i < NELEM(exclusions); i++) {
		printf("# excluded %d case(s) %s*: %s\n", exclusions[i].hits, exclusions[i].prefix,
		    exclusions[i].reason);
		CHECK(exclusions[i].hits > 0, "exclusion %s matches no case; remove it",
		    exclusions[i].prefix);
	}
	for (i = 0; i < NELEM(differences); i++)
		CHECK(differences[i].seen, "difference %s matches no case run; remove it",
		    differences[i].id);
	printf("limbo %s: %d cases: %d excluded (host-name matching), %d run: %d agree, "
	       "%d listed differences; %d rejected by the loader before chain building\n",
	    LIMBO_FILE, c.cases, c.excluded, c.run, c.agree, c.differ, c.load_rejected);
	json_decref(root);
	return test_done();
}
