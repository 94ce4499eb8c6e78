/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_est.c - the EST client's pure parts, without a network: the certs-only response body
 * (agent_est_certs_parse over PKCS#7 made with OpenSSL: one and two certificates, base64 on
 * one line, in LF and CRLF lines; trailing bytes, not base64, no certificates, another PKCS#7
 * type, too many), the renewal time (devid_renew_due), the --est URL and label, the JSON
 * error message, the atomic PEM writer, and the answer of tpm/activate.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "agent/internal.h"
#include "devid/agent.h"
#include "lib/base64.h"
#include "test.h"
#include "lib/banned.h"

/* A certificate for k, signed by issuer_key (self-signed if NULL), valid [nb, na) from now. */
static X509 *
make_cert(const char *cn, EVP_PKEY *k, X509 *issuer, EVP_PKEY *issuer_key, long nb, long na)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
	X509_gmtime_adj(X509_getm_notBefore(x), nb);
	X509_gmtime_adj(X509_getm_notAfter(x), na);
	X509_set_pubkey(x, k);
	X509_sign(x, issuer_key != NULL ? issuer_key : k, EVP_sha256());
	X509_NAME_free(n);
	return x;
}

/* A certs-only PKCS#7 (degenerate signed-data) of the certificates, as DER. */
static uint8_t *
certs_only_der(X509 **certs, int n, size_t *len)
{
	PKCS7 *p7 = PKCS7_new();
	unsigned char *der = NULL;
	int l;

	PKCS7_set_type(p7, NID_pkcs7_signed);
	PKCS7_content_new(p7, NID_pkcs7_data);
	for (int i = 0; i < n; i++)
		PKCS7_add_certificate(p7, certs[i]);
	l = i2d_PKCS7(p7, &der);
	PKCS7_free(p7);
	*len = (size_t)l;
	return der;
}

/* base64 of p[0..n): on one line (width 0) or in lines of width ending in eol. */
static char *
b64_lines(const uint8_t *p, size_t n, size_t width, const char *eol)
{
	char *one = b64_encode(p, n), *out;
	size_t len = strlen(one), o = 0;

	if (width == 0)
		return one;
	out = malloc(len + (len / width + 1) * strlen(eol) + 1);
	for (size_t i = 0; i < len; i += width) {
		size_t k = len - i < width ? len - i : width;

		memcpy(out + o, one + i, k);
		o += k;
		memcpy(out + o, eol, strlen(eol));
		o += strlen(eol);
	}
	out[o] = '\0';
	free(one);
	return out;
}

static int
parse_text(const char *s, STACK_OF(X509) **out, struct devid_error *e)
{
	return agent_est_certs_parse((const uint8_t *)s, strlen(s), out, e);
}

static void
test_certs_parse(void)
{
	EVP_PKEY *cak = EVP_EC_gen("P-256"), *devk = EVP_EC_gen("P-256");
	X509 *ca = make_cert("CA", cak, NULL, NULL, -60, 86400);
	X509 *dev = make_cert("dev", devk, ca, cak, -60, 86400);
	X509 *both[2] = {dev, ca}, *many[AGENT_MAX_EST_CERTS + 1];
	static const struct {
		size_t width;
		const char *eol, *what;
	} styles[] = {
	    {0, "", "one line"},
	    {64, "\n", "LF lines of 64"},
	    {76, "\r\n", "CRLF lines of 76"},
	    {64, "\r\n", "CRLF lines of 64"},
	};
	STACK_OF(X509) *got = NULL;
	struct devid_error e;
	uint8_t *der, *bad;
	size_t len;
	char *text;
	int rc;

	for (int n = 1; n <= 2; n++) {
		der = certs_only_der(both, n, &len);
		for (size_t s = 0; s < sizeof(styles) / sizeof(styles[0]); s++) {
			text = b64_lines(der, len, styles[s].width, styles[s].eol);
			devid_error_clear(&e);
			rc = parse_text(text, &got, &e);
			CHECK(rc == 0 && sk_X509_num(got) == n,
			    "%d certificate(s), %s: rc %d, %d certs (%s)", n, styles[s].what, rc,
			    got != NULL ? sk_X509_num(got) : -1, e.msg);
			if (rc == 0) {
				CHECK(X509_cmp(sk_X509_value(got, 0), dev) == 0,
				    "the first certificate is the device's");
				if (n == 2)
					CHECK(X509_cmp(sk_X509_value(got, 1), ca) == 0,
					    "the second certificate is the CA's");
			}
			sk_X509_pop_free(got, X509_free);
			got = NULL;
			free(text);
		}

		/* trailing bytes after the DER, inside the base64 */
		bad = malloc(len + 2);
		memcpy(bad, der, len);
		bad[len] = 0;
		bad[len + 1] = 0;
		text = b64_lines(bad, len + 2, 64, "\n");
		rc = parse_text(text, &got, &e);
		CHECK(
		    rc == DEVID_EINVAL && got == NULL && strstr(e.msg, "after the PKCS#7") != NULL,
		    "trailing bytes are refused: rc %d %s", rc, e.msg);
		free(text);
		/* a truncated PKCS#7 */
		text = b64_lines(der, len - 3, 64, "\n");
		rc = parse_text(text, &got, &e);
		CHECK(rc == DEVID_EINVAL && got == NULL, "a truncated PKCS#7 is refused: rc %d %s",
		    rc, e.msg);
		free(text);
		free(bad);
		OPENSSL_free(der);
	}

	rc = parse_text("this is not base64!", &got, &e);
	CHECK(rc == DEVID_EINVAL && got == NULL && strstr(e.msg, "not base64") != NULL,
	    "not base64 is refused: rc %d %s", rc, e.msg);
	rc = parse_text("MIIB", &got, &e);
	CHECK(
	    rc == DEVID_EINVAL && got == NULL, "a base64 fragment is refused: rc %d %s", rc, e.msg);
	rc = parse_text("", &got, &e);
	CHECK(rc == DEVID_EINVAL && got == NULL && strstr(e.msg, "empty") != NULL,
	    "an empty body is refused: rc %d %s", rc, e.msg);
	rc = parse_text(" \r\n", &got, &e);
	CHECK(rc == DEVID_EINVAL && got == NULL, "a blank body is refused: rc %d %s", rc, e.msg);

	/* a certificate in PEM is not a PKCS#7 */
	{
		unsigned char *cder = NULL;
		int clen = i2d_X509(dev, &cder);

		text = b64_lines(cder, (size_t)clen, 64, "\n");
		rc = parse_text(text, &got, &e);
		CHECK(rc == DEVID_EINVAL && got == NULL && strstr(e.msg, "PKCS#7") != NULL,
		    "a bare certificate is refused: rc %d %s", rc, e.msg);
		free(text);
		OPENSSL_free(cder);
	}

	/* zero certificates */
	der = certs_only_der(both, 0, &len);
	text = b64_lines(der, len, 64, "\n");
	rc = parse_text(text, &got, &e);
	CHECK(rc == DEVID_EINVAL && got == NULL && strstr(e.msg, "no certificates") != NULL,
	    "a PKCS#7 without certificates is refused: rc %d %s", rc, e.msg);
	free(text);
	OPENSSL_free(der);

	/* a PKCS#7 of another type: data */
	{
		PKCS7 *p7 = PKCS7_new();
		unsigned char *d = NULL;
		int l;

		PKCS7_set_type(p7, NID_pkcs7_data);
		ASN1_OCTET_STRING_set(p7->d.data, (const unsigned char *)"hello", 5);
		l = i2d_PKCS7(p7, &d);
		PKCS7_free(p7);
		text = b64_lines(d, (size_t)l, 64, "\n");
		rc = parse_text(text, &got, &e);
		CHECK(rc == DEVID_EINVAL && got == NULL && strstr(e.msg, "not signed-data") != NULL,
		    "a PKCS#7 data is refused: rc %d %s", rc, e.msg);
		free(text);
		OPENSSL_free(d);
	}

	/* too many certificates */
	for (int i = 0; i <= AGENT_MAX_EST_CERTS; i++)
		many[i] = ca;
	der = certs_only_der(many, AGENT_MAX_EST_CERTS + 1, &len);
	text = b64_lines(der, len, 64, "\n");
	rc = parse_text(text, &got, &e);
	CHECK(rc == DEVID_ELIMIT && got == NULL, "%d certificates are too many: rc %d %s",
	    AGENT_MAX_EST_CERTS + 1, rc, e.msg);
	free(text);
	OPENSSL_free(der);

	/* too long */
	{
		size_t big = AGENT_MAX_EST_BODY + 1;
		uint8_t *p = malloc(big);

		memset(p, 'A', big);
		rc = agent_est_certs_parse(p, big, &got, &e);
		CHECK(rc == DEVID_ELIMIT && got == NULL, "a body over the limit: rc %d %s", rc,
		    e.msg);
		free(p);
	}

	X509_free(ca);
	X509_free(dev);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(devk);
}

static void
test_renew_due(void)
{
	const long day = 86400, validity = 30 * day; /* divisible by 3 */
	static const struct {
		double elapsed; /* fraction of the validity gone by */
		bool due;
	} cases[] = {
	    {0.0, false}, {0.5, false}, {0.667, true}, {0.7, true}, {1.0, true},
	    {1.5, true}, /* expired */
	};
	EVP_PKEY *k = EVP_EC_gen("P-256");
	time_t now = time(NULL), due_at;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long nb = -(long)(cases[i].elapsed * (double)validity);
		X509 *x = make_cert("op", k, NULL, NULL, nb, nb + validity);
		bool due = devid_renew_due(x, now, &due_at);

		CHECK(due == cases[i].due, "%.1f%% of the validity gone: due %d, expected %d",
		    cases[i].elapsed * 100, due, cases[i].due);
		/* due at notAfter - validity / 3 */
		CHECK(llabs((long long)(due_at - (now + nb + validity - validity / 3))) <= 2,
		    "%.1f%%: due at %lld, expected %lld", cases[i].elapsed * 100, (long long)due_at,
		    (long long)(now + nb + validity - validity / 3));
		X509_free(x);
	}
	CHECK(devid_renew_due(NULL, now, NULL), "no certificate is due");
	{
		/* 66.6% is not due yet: a third and a bit is left */
		long nb = -(long)(0.666 * (double)validity);
		X509 *x = make_cert("op", k, NULL, NULL, nb, nb + validity);

		CHECK(!devid_renew_due(x, now, NULL), "66.6%% of the validity gone is not due");
		X509_free(x);
	}
	EVP_PKEY_free(k);
}

static void
test_url(void)
{
	static const struct {
		const char *url, *host, *port, *prefix; /* host NULL: an error */
	} cases[] = {
	    {"https://127.0.0.1:8443", "127.0.0.1", "8443", ""},
	    {"https://127.0.0.1:8443/", "127.0.0.1", "8443", ""},
	    {"HTTPS://est.example.com", "est.example.com", "443", ""},
	    {"https://[2001:db8::1]:9443/a/b/", "2001:db8::1", "9443", "/a/b"},
	    {"https://[::1]", "::1", "443", ""},
	    {"https://h:1/.well-known-not/x", "h", "1", "/.well-known-not/x"},
	    {"http://127.0.0.1:8443", NULL, NULL, NULL},
	    {"https://", NULL, NULL, NULL},
	    {"https://:443", NULL, NULL, NULL},
	    {"https://h:", NULL, NULL, NULL},
	    {"https://h:0", NULL, NULL, NULL},
	    {"https://h:65536", NULL, NULL, NULL},
	    {"https://::1:443", NULL, NULL, NULL},
	    {"https://user:pw@h:443", NULL, NULL, NULL},
	    {"https://h:443/x?y=1", NULL, NULL, NULL},
	    {"https://h:443#f", NULL, NULL, NULL},
	    {"https://h:443/a/../b", NULL, NULL, NULL},
	    {"https://h:443/a//b", NULL, NULL, NULL},
	    {"https://h:443/a b", NULL, NULL, NULL},
	    {"https://h:443/a\r\nX: y", NULL, NULL, NULL},
	    {"", NULL, NULL, NULL},
	};
	struct agent_est_url u;
	struct devid_error e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		devid_error_clear(&e);
		rc = agent_est_url_parse(cases[i].url, &u, &e);
		if (cases[i].host != NULL)
			CHECK(rc == 0 && strcmp(u.host, cases[i].host) == 0 &&
				strcmp(u.port, cases[i].port) == 0 &&
				strcmp(u.prefix, cases[i].prefix) == 0,
			    "URL \"%s\": rc %d host \"%s\" port \"%s\" prefix \"%s\" (%s)",
			    cases[i].url, rc, u.host, u.port, u.prefix, e.msg);
		else
			CHECK(rc == DEVID_EINVAL && e.msg[0] != '\0',
			    "URL \"%s\": rc %d, expected an error", cases[i].url, rc);
	}
	CHECK(agent_est_url_parse("https://user:secret@h:1", &u, &e) != 0 &&
		strstr(e.msg, "secret") == NULL,
	    "user information is not quoted: %s", e.msg);
	CHECK(agent_est_url_parse(NULL, &u, &e) == DEVID_EINVAL, "a NULL URL is an error");

	CHECK(agent_est_label_ok("acme") && agent_est_label_ok("Acme-1.x_y~"),
	    "labels of unreserved characters");
	CHECK(!agent_est_label_ok("") && !agent_est_label_ok("a/b") && !agent_est_label_ok("..") &&
		!agent_est_label_ok(".") && !agent_est_label_ok("a b") &&
		!agent_est_label_ok(NULL) &&
		!agent_est_label_ok(
		    "12345678901234567890123456789012345678901234567890123456789012345"),
	    "bad labels are refused");
}

static void
test_json_message(void)
{
	static const struct {
		const char *body, *name, *want; /* want NULL: not found */
	} cases[] = {
	    {"{\"error\":\"not_claimed\",\"message\":\"device is not claimed\"}", "message",
		"device is not claimed"},
	    {"{\"error\":\"not_claimed\",\"message\":\"device is not claimed\"}", "error",
		"not_claimed"},
	    {" {\n \"a\": [1, {\"message\": \"inner\"}, \"]\"],\n \"message\" : \"outer\" } ",
		"message", "outer"},
	    {"{\"n\": -1.5e3, \"t\": true, \"message\": \"a\\\"b\\\\c\\/d\\ne\\u0041\\u00e9\"}",
		"message", "a\"b\\c/d eA?"},
	    {"{\"message\": \"\\u001b[31mred\"}", "message", "?[31mred"},
	    {"{\"message\": 42}", "message", NULL},
	    {"{\"msg\": \"x\"}", "message", NULL},
	    {"[\"message\", \"x\"]", "message", NULL},
	    {"{\"message\": \"unterminated", "message", NULL},
	    {"{\"a\": \"x\\\"message\\\": \\\"no\"}", "message", NULL},
	    {"", "message", NULL},
	    {"not json", "message", NULL},
	};
	char out[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool found = agent_json_get_string((const uint8_t *)cases[i].body,
		    strlen(cases[i].body), cases[i].name, out, sizeof(out));

		if (cases[i].want != NULL)
			CHECK(found && strcmp(out, cases[i].want) == 0,
			    "\"%s\" in %s: found %d \"%s\", expected \"%s\"", cases[i].name,
			    cases[i].body, found, out, cases[i].want);
		else
			CHECK(!found && out[0] == '\0', "\"%s\" in %s: found \"%s\", expected none",
			    cases[i].name, cases[i].body, out);
	}
	{
		/* a long message is cut */
		char body[2048];
		size_t n = (size_t)snprintf(body, sizeof(body), "{\"message\":\"");

		memset(body + n, 'x', 1000);
		memcpy(body + n + 1000, "\"}", 3);
		CHECK(agent_json_get_string(
			  (const uint8_t *)body, strlen(body), "message", out, sizeof(out)) &&
			strlen(out) < sizeof(out) && strstr(out, "...") != NULL,
		    "a long message is cut and marked: %zu chars", strlen(out));
	}
}

static void
test_write_pem(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *a = make_cert("a", k, NULL, NULL, -60, 3600),
	     *b = make_cert("b", k, NULL, NULL, -60, 3600);
	char dir[256], path[512];
	struct devid_error e;
	struct stat st;
	STACK_OF(X509) *back = NULL;
	FILE *f;
	int rc;

	test_tmpdir(dir, sizeof(dir), "est");
	snprintf(path, sizeof(path), "%s/op.pem", dir);
	rc = devid_cert_write_pem(path, a, b, &e);
	CHECK(rc == 0, "write: rc %d %s", rc, e.msg);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "mode 0644: %o",
	    (unsigned)(st.st_mode & 0777));
	if ((f = fopen(path, "r")) != NULL) {
		X509 *x;

		back = sk_X509_new_null();
		while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
			sk_X509_push(back, x);
		fclose(f);
	}
	CHECK(back != NULL && sk_X509_num(back) == 2 && X509_cmp(sk_X509_value(back, 0), a) == 0 &&
		X509_cmp(sk_X509_value(back, 1), b) == 0,
	    "the file holds the certificate, then the CA");
	sk_X509_pop_free(back, X509_free);
	/* replaced whole */
	rc = devid_cert_write_pem(path, b, NULL, &e);
	CHECK(rc == 0 && stat(path, &st) == 0, "rewrite: rc %d %s", rc, e.msg);
	snprintf(path, sizeof(path), "%s/no/such/dir/op.pem", dir);
	rc = devid_cert_write_pem(path, a, b, &e);
	CHECK(rc == DEVID_EIO && strstr(e.msg, "no/such/dir") != NULL,
	    "a missing directory: rc %d %s", rc, e.msg);
	test_rmdir(dir);
	X509_free(a);
	X509_free(b);
	EVP_PKEY_free(k);
}

static void
test_enroll_args(void)
{
	struct devid_est_result r;
	struct devid_est_opts o = {.url = "https://127.0.0.1:1", .ca_file = "/ca", .timeout_ms = 1};

	devid_est_result_init(&r);
	CHECK(devid_est_enroll(NULL, &o, &r) == DEVID_EINVAL && r.outcome == DEVID_EST_ERROR &&
		r.error.msg[0] != '\0',
	    "enroll without an identity: outcome %d %s", (int)r.outcome, r.error.msg);
	devid_est_result_release(&r);
	devid_est_result_release(&r);
}

/* agent_tpm_activation_parse over good and hostile answers of tpm/activate. */
static void
test_tpm_activation(void)
{
	/* a TPM2B of 4 bytes (00 02 ab cd) and of 3 (00 01 ef) */
	static const char good[] =
	    "{\"id\":\"0123456789abcdef0123456789abcdef\",\"credentialBlob\":\"AAKrzQ==\","
	    "\"encryptedSecret\":\"AAHv\",\"expiresAt\":\"2026-12-05T07:05:00Z\"}";
	static const struct {
		const char *body;
		const char *why;
	} bad[] = {
	    {"", "not a JSON object"},
	    {"[]", "not a JSON object"},
	    {"{}", "member id missing"},
	    {"{\"id\":\"0123456789abcdef0123456789abcdef\",\"credentialBlob\":\"AAKrzQ==\"}",
		"member encryptedSecret missing"},
	    {"{\"id\":\"0123456789ABCDEF0123456789abcdef\",\"credentialBlob\":\"AAKrzQ==\","
	     "\"encryptedSecret\":\"AAHv\"}",
		"lowercase hex"},
	    {"{\"id\":\"0123\",\"credentialBlob\":\"AAKrzQ==\",\"encryptedSecret\":\"AAHv\"}",
		"not 32 hex digits"},
	    {"{\"id\":\"0123456789abcdef0123456789abcdef\",\"credentialBlob\":\"AAKrzQ\","
	     "\"encryptedSecret\":\"AAHv\"}",
		"credentialBlob: not padded base64"},
	    {"{\"id\":\"0123456789abcdef0123456789abcdef\",\"credentialBlob\":\"AAOrzQ==\","
	     "\"encryptedSecret\":\"AAHv\"}",
		"whose size is the rest"},
	    {"{\"id\":\"0123456789abcdef0123456789abcdef\",\"credentialBlob\":\"AAKrzQ==\","
	     "\"encryptedSecret\":7}",
		"encryptedSecret is not a string"},
	    {"{\"id\":\"0123456789abcdef0123456789abcdef\",\"id\":"
	     "\"0123456789abcdef0123456789abcdef\"}",
		"member id twice"},
	    {"{\"id\":\"0123456789abcdef0123456789abcdef\",\"credentialBlob\":\"AAKrzQ==\","
	     "\"encryptedSecret\":\"AAHv\"} x",
		"after the JSON object"},
	    {"{\"id\":\"0123456789abcdef0123456789abcdef\",", "not a JSON object of strings"},
	    {"{\"id\" \"x\"}", "not a JSON object of strings"},
	};
	struct agent_tpm_activation a;
	struct devid_error e;
	char big[AGENT_MAX_TPM_ACTIVATION_BODY + 2];
	int rc;

	devid_error_clear(&e);
	rc = agent_tpm_activation_parse((const uint8_t *)good, strlen(good), &a, &e);
	CHECK(rc == 0, "a good activation: %s", e.msg);
	CHECK(strcmp(a.id, "0123456789abcdef0123456789abcdef") == 0, "id %s", a.id);
	CHECK(a.blob_len == 4 && a.blob[0] == 0 && a.blob[1] == 2 && a.blob[2] == 0xab &&
		a.blob[3] == 0xcd,
	    "credentialBlob: %zu bytes", a.blob_len);
	CHECK(a.secret_len == 3 && a.secret[2] == 0xef, "encryptedSecret: %zu bytes", a.secret_len);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		devid_error_clear(&e);
		rc = agent_tpm_activation_parse(
		    (const uint8_t *)bad[i].body, strlen(bad[i].body), &a, &e);
		CHECK(rc == DEVID_EINVAL && strstr(e.msg, bad[i].why) != NULL,
		    "%s: rc %d, message \"%s\", want \"%s\"", bad[i].body, rc, e.msg, bad[i].why);
	}
	/* members of other names are skipped; whitespace anywhere between tokens */
	{
		static const char other[] =
		    " { \"note\" : {\"a\":[1,2]} , \"encryptedSecret\" : \"AAHv\", "
		    "\"credentialBlob\":\"AAKrzQ==\","
		    "\"id\":\"0123456789abcdef0123456789abcdef\" } \n";

		devid_error_clear(&e);
		rc = agent_tpm_activation_parse((const uint8_t *)other, strlen(other), &a, &e);
		CHECK(rc == 0 && a.secret_len == 3, "another member and spaces: %s", e.msg);
	}
	memset(big, ' ', sizeof(big));
	rc = agent_tpm_activation_parse((const uint8_t *)big, sizeof(big), &a, &e);
	CHECK(rc == DEVID_ELIMIT, "an answer over the limit: rc %d", rc);
}

int
main(void)
{
	test_certs_parse();
	test_renew_due();
	test_url();
	test_json_message();
	test_write_pem();
	test_enroll_args();
	test_tpm_activation();
	return test_done();
}
