/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The webhook's event parser and signature check (src/gateway/events.c) over good and bad
 * inputs: every field typed, length- and pattern-checked, the UDID tied to the certificate,
 * exactly one PEM certificate, the 1,000-device and body caps, duplicate keys and devices,
 * unknown members; the suspected_clone action and its "suspicion"; HMAC-SHA256 against RFC 4231
 * and in every malformed header shape.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "gateway/gateway.h"
#include "lib/dynbuf.h"
#include "test.h"
#include "lib/banned.h"

#define NCERTS (GATEWAY_MAX_DEVICES + 1)

struct cert {
	char udid[UDID_HEX_LEN + 1];
	char *pem; /* JSON-escaped ("\n" as the two characters \ and n) */
	char *raw; /* as written by OpenSSL */
};

static struct cert certs[NCERTS];

/* A self-signed P-256 certificate: the parser checks the UDID, not the chain. */
static void
cert_make(struct cert *c, EVP_PKEY *k, int serial)
{
	X509 *x = X509_new();
	BIO *b = BIO_new(BIO_s_mem());
	X509_NAME *n = X509_NAME_new();
	struct dynbuf esc;
	char *p;
	long len;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial + 1);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"chip", -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	if (X509_sign(x, k, EVP_sha256()) == 0 || PEM_write_bio_X509(b, x) != 1 ||
	    x509_udid(x, c->udid) != 0) {
		fprintf(stderr, "cannot make a test certificate\n");
		exit(1);
	}
	len = BIO_get_mem_data(b, &p);
	c->raw = strndup(p, (size_t)len);
	dynbuf_init(&esc, 1 << 16);
	for (long i = 0; i < len; i++)
		dynbuf_addstr(&esc, p[i] == '\n' ? "\\n" : (char[]){p[i], 0});
	c->pem = (char *)dynbuf_detach(&esc, NULL);
	X509_NAME_free(n);
	BIO_free(b);
	X509_free(x);
}

static void
certs_make(void)
{
	/* one key for all but the first two: the UDIDs must differ, so each gets its own */
	for (int i = 0; i < NCERTS; i++) {
		EVP_PKEY *k = EVP_EC_gen("P-256");

		if (k == NULL) {
			fprintf(stderr, "cannot make a key\n");
			exit(1);
		}
		cert_make(&certs[i], k, i);
		EVP_PKEY_free(k);
	}
}

static char *
device_json(const struct cert *c, const char *serial, const char *batch)
{
	struct dynbuf b;

	dynbuf_init(&b, 1 << 16);
	dynbuf_addf(&b,
	    "{\"udid\":\"%s\",\"serial\":\"%s\",\"batch\":\"%s\",\"certificate\":\"%s\"}", c->udid,
	    serial, batch, c->pem);
	return (char *)dynbuf_detach(&b, NULL);
}

/* An event body with n devices from certs[first...]. */
static char *
event_json(const char *id, const char *action, const char *tenant, size_t first, size_t n)
{
	struct dynbuf b;

	dynbuf_init(&b, (size_t)64 << 20);
	dynbuf_addf(&b, "{\"event\":\"%s\",\"action\":\"%s\",\"tenant\":\"%s\",\"devices\":[", id,
	    action, tenant);
	for (size_t i = 0; i < n; i++) {
		char *d = device_json(&certs[first + i], "SN-1", "B1");

		dynbuf_addf(&b, "%s%s", i > 0 ? "," : "", d);
		free(d);
	}
	dynbuf_addstr(&b, "]}");
	return (char *)dynbuf_detach(&b, NULL);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *
fmt(const char *f, ...)
{
	va_list ap;
	char *p;

	va_start(ap, f);
	if (vasprintf(&p, f, ap) < 0) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	va_end(ap);
	return p;
}

/* Expects the body to be refused with a message containing want. Frees body. */
static void
bad(const char *name, char *body, const char *want)
{
	struct gateway_event *ev = (struct gateway_event *)1;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = gateway_event_parse((const uint8_t *)body, strlen(body), &ev, &e);
	CHECK(rc != 0 && ev == NULL, "%s: accepted (rc %d)", name, rc);
	CHECK(strstr(e.msg, want) != NULL, "%s: message \"%s\" does not say \"%s\"", name, e.msg,
	    want);
	if (rc == 0)
		gateway_event_free(ev);
	free(body);
}

static struct gateway_event *
good(const char *name, const char *body, size_t len)
{
	struct gateway_event *ev = NULL;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = gateway_event_parse((const uint8_t *)body, len, &ev, &e);
	CHECK(rc == 0 && ev != NULL, "%s: refused: %s", name, e.msg);
	return ev;
}

static void
test_good(void)
{
	struct gateway_event *ev;
	char *body, *d1;

	body = event_json("devid-12-0", "add", "OEM1", 0, 2);
	/* not NUL-terminated: the parser reads len bytes only */
	ev = good("add two", body, strlen(body));
	if (ev != NULL) {
		CHECK(strcmp(ev->id, "devid-12-0") == 0, "id %s", ev->id);
		CHECK(ev->action == GATEWAY_ADD, "action");
		CHECK(strcmp(ev->tenant, "OEM1") == 0, "tenant %s", ev->tenant);
		CHECK(ev->ndevices == 2, "ndevices %zu", ev->ndevices);
		CHECK(strcmp(ev->devices[1].udid, certs[1].udid) == 0, "udid");
		CHECK(strcmp(ev->devices[0].serial, "SN-1") == 0, "serial");
		CHECK(strcmp(ev->devices[0].batch, "B1") == 0, "batch");
		CHECK(strcmp(ev->devices[0].certificate, certs[0].raw) == 0 &&
			ev->devices[0].certificate_len == strlen(certs[0].raw),
		    "certificate kept as received");
		CHECK(strcmp(gateway_action_name(ev->action), "add") == 0, "action name");
	}
	gateway_event_free(ev);
	free(body);

	body = event_json("a.B_c:9-z", "remove", "OEM-2.X", 2, 1);
	ev = good("remove one", body, strlen(body));
	CHECK(ev == NULL || ev->action == GATEWAY_REMOVE, "remove");
	gateway_event_free(ev);
	free(body);

	/* a PEM with CRLF line ends and none after the END line; UTF-8 in the serial */
	{
		struct dynbuf b;
		const char *raw = certs[3].raw;
		size_t n = strlen(raw);

		dynbuf_init(&b, 1 << 16);
		for (size_t i = 0; i + 1 < n; i++)
			dynbuf_addstr(&b, raw[i] == '\n' ? "\\r\\n" : (char[]){raw[i], 0});
		body = fmt("{\"devices\":[{\"certificate\":\"%s\",\"batch\":\"B1\","
			   "\"serial\":\"\\u00e9t\xc3\xa9\",\"udid\":\"%s\"}],\"tenant\":\"T\","
			   "\"action\":\"add\",\"event\":\"x\"}",
		    dynbuf_str(&b), certs[3].udid);
		dynbuf_release(&b);
		ev = good("CRLF PEM, members in any order", body, strlen(body));
		CHECK(ev == NULL || strcmp(ev->devices[0].serial, "\xc3\xa9t\xc3\xa9") == 0,
		    "UTF-8 serial");
		gateway_event_free(ev);
		free(body);
	}

	/* the cap itself */
	body = event_json("full", "add", "OEM1", 0, GATEWAY_MAX_DEVICES);
	ev = good("1,000 devices", body, strlen(body));
	CHECK(ev == NULL || ev->ndevices == GATEWAY_MAX_DEVICES, "1,000 devices");
	gateway_event_free(ev);
	free(body);

	/* the serial and event id at their longest */
	{
		char serial[MAX_SERIAL_LEN + 1], id[GATEWAY_MAX_EVENT_ID_LEN + 1];

		memset(serial, 'S', MAX_SERIAL_LEN);
		serial[MAX_SERIAL_LEN] = '\0';
		memset(id, 'e', GATEWAY_MAX_EVENT_ID_LEN);
		id[GATEWAY_MAX_EVENT_ID_LEN] = '\0';
		d1 = device_json(&certs[0], serial, "B1");
		body =
		    fmt("{\"event\":\"%s\",\"action\":\"add\",\"tenant\":\"T\",\"devices\":[%s]}",
			id, d1);
		ev = good("longest serial and id", body, strlen(body));
		gateway_event_free(ev);
		free(body);
		free(d1);
	}
}

static void
test_bad(void)
{
	const char *u = certs[0].udid, *pem = certs[0].pem;
	char *d;
	char longid[GATEWAY_MAX_EVENT_ID_LEN + 2], longserial[MAX_SERIAL_LEN + 2];

	memset(longid, 'e', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	memset(longserial, 'S', sizeof(longserial) - 1);
	longserial[sizeof(longserial) - 1] = '\0';
	d = device_json(&certs[0], "SN", "B1");

	bad("empty", fmt("%s", ""), "not valid JSON");
	bad("not JSON", fmt("%s", "{\"event\":"), "not valid JSON");
	bad("trailing bytes",
	    fmt("{\"event\":\"e\",\"action\":\"add\",\"tenant\":\"T\","
		"\"devices\":[%s]} x",
		d),
	    "not valid JSON");
	bad("array", fmt("[%s]", d), "not a JSON object");
	bad("duplicate key",
	    fmt("{\"event\":\"e\",\"event\":\"f\",\"action\":\"add\","
		"\"tenant\":\"T\",\"devices\":[%s]}",
		d),
	    "duplicate");
	bad("unknown member",
	    fmt("{\"event\":\"e\",\"action\":\"add\",\"tenant\":\"T\","
		"\"devices\":[%s],\"extra\":1}",
		d),
	    "unknown member \"extra\"");
	bad("missing event", fmt("{\"action\":\"add\",\"tenant\":\"T\",\"devices\":[%s]}", d),
	    "\"event\" is missing");
	bad("missing action", fmt("{\"event\":\"e\",\"tenant\":\"T\",\"devices\":[%s]}", d),
	    "\"action\" is missing");
	bad("missing tenant", fmt("{\"event\":\"e\",\"action\":\"add\",\"devices\":[%s]}", d),
	    "\"tenant\" is missing");
	bad("missing devices", fmt("{\"event\":\"e\",\"action\":\"add\",\"tenant\":\"T\"}"),
	    "\"devices\" is missing");
	bad("event a number",
	    fmt("{\"event\":7,\"action\":\"add\",\"tenant\":\"T\",\"devices\":[%s]}", d),
	    "\"event\" is not a string");
	bad("event empty",
	    fmt("{\"event\":\"\",\"action\":\"add\",\"tenant\":\"T\",\"devices\":[%s]}", d),
	    "\"event\" has 0 characters");
	bad("event too long",
	    fmt("{\"event\":\"%s\",\"action\":\"add\",\"tenant\":\"T\",\"devices\":[%s]}", longid,
		d),
	    "\"event\" has 129 characters");
	bad("event with a space",
	    fmt("{\"event\":\"a b\",\"action\":\"add\",\"tenant\":\"T\",\"devices\":[%s]}", d),
	    "\"event\" does not match");
	bad("event with a NUL",
	    fmt("{\"event\":\"a\\u0000b\",\"action\":\"add\",\"tenant\":\"T\",\"devices\":[%s]}",
		d),
	    "not valid JSON");
	bad("action delete",
	    fmt("{\"event\":\"e\",\"action\":\"delete\",\"tenant\":\"T\",\"devices\":[%s]}", d),
	    "is not \"add\", \"remove\", \"test\" or \"suspected_clone\"");
	bad("action upper case",
	    fmt("{\"event\":\"e\",\"action\":\"ADD\",\"tenant\":\"T\",\"devices\":[%s]}", d),
	    "is not \"add\", \"remove\", \"test\" or \"suspected_clone\"");
	bad("tenant lower case",
	    fmt("{\"event\":\"e\",\"action\":\"add\",\"tenant\":\"oem\",\"devices\":[%s]}", d),
	    "\"tenant\" does not match");
	bad("devices empty",
	    fmt("{\"event\":\"e\",\"action\":\"add\",\"tenant\":\"T\",\"devices\":[]}"),
	    "allowed 1 to 1000");
	bad("devices an object",
	    fmt("{\"event\":\"e\",\"action\":\"add\",\"tenant\":\"T\",\"devices\":%s}", d),
	    "\"devices\" is not an array");
	bad("device a string",
	    fmt("{\"event\":\"e\",\"action\":\"add\",\"tenant\":\"T\",\"devices\":[\"%s\"]}", u),
	    "devices[0]: not an object");

#define DEV(...)                                                                                   \
	fmt("{\"event\":\"e\",\"action\":\"add\",\"tenant\":\"T\",\"devices\":[%s,{" __VA_ARGS__)
	bad("device unknown member",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":\"%s\","
		"\"x\":0}]}",
		d, certs[1].udid, certs[1].pem),
	    "devices[1]: unknown member \"x\"");
	bad("device duplicate key",
	    DEV("\"udid\":\"%s\",\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\","
		"\"certificate\":\"%s\"}]}",
		d, certs[1].udid, certs[1].udid, certs[1].pem),
	    "duplicate");
	bad("udid missing",
	    DEV("\"serial\":\"S\",\"batch\":\"B\",\"certificate\":\"%s\"}]}", d, certs[1].pem),
	    "devices[1]: \"udid\" is missing");
	bad("udid upper case",
	    DEV("\"udid\":\"%.63sA\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":\"%s\"}]}", d,
		certs[1].udid, certs[1].pem),
	    "64 lowercase hex");
	bad("udid short",
	    DEV("\"udid\":\"%.63s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":\"%s\"}]}", d,
		certs[1].udid, certs[1].pem),
	    "\"udid\" has 63 characters");
	bad("udid of another certificate",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":\"%s\"}]}", d,
		certs[2].udid, certs[1].pem),
	    "is not the UDID of the certificate");
	bad("serial empty",
	    DEV("\"udid\":\"%s\",\"serial\":\"\",\"batch\":\"B\",\"certificate\":\"%s\"}]}", d,
		certs[1].udid, certs[1].pem),
	    "\"serial\" has 0 characters");
	bad("serial too long",
	    DEV("\"udid\":\"%s\",\"serial\":\"%s\",\"batch\":\"B\",\"certificate\":\"%s\"}]}", d,
		certs[1].udid, longserial, certs[1].pem),
	    "\"serial\" has 65 characters");
	bad("serial with a control character",
	    DEV("\"udid\":\"%s\",\"serial\":\"a\\nb\",\"batch\":\"B\",\"certificate\":\"%s\"}]}", d,
		certs[1].udid, certs[1].pem),
	    "control character");
	bad("serial a number",
	    DEV("\"udid\":\"%s\",\"serial\":12,\"batch\":\"B\",\"certificate\":\"%s\"}]}", d,
		certs[1].udid, certs[1].pem),
	    "\"serial\" is not a string");
	bad("batch lower case",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"b1\",\"certificate\":\"%s\"}]}", d,
		certs[1].udid, certs[1].pem),
	    "\"batch\" does not match");
	bad("certificate missing",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\"}]}", d, certs[1].udid),
	    "\"certificate\" is missing");
	bad("certificate not PEM",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":\"MIIB\"}]}", d,
		certs[1].udid),
	    "does not start with");
	bad("certificate with text before",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":\"x\\n%s\"}]}", d,
		certs[1].udid, certs[1].pem),
	    "does not start with");
	bad("certificate with text after",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":\"%sx\\n\"}]}", d,
		certs[1].udid, certs[1].pem),
	    "does not end with");
	bad("two certificates",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":\"%s%s\"}]}", d,
		certs[1].udid, certs[1].pem, certs[2].pem),
	    "not base64");
	bad("certificate a key",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":"
		"\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"}]}",
		d, certs[1].udid),
	    "does not start with");
	bad("certificate not DER",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":"
		"\"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\"}]}",
		d, certs[1].udid),
	    "not a DER certificate");
	bad("certificate empty body",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":"
		"\"-----BEGIN CERTIFICATE-----\\n-----END CERTIFICATE-----\\n\"}]}",
		d, certs[1].udid),
	    "certificate");
	bad("certificate END without a line break",
	    DEV("\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B\",\"certificate\":"
		"\"-----BEGIN CERTIFICATE-----\\nAAAA-----END CERTIFICATE-----\"}]}",
		d, certs[1].udid),
	    "does not end with");
	bad("same device twice",
	    DEV("\"udid\":\"%s\",\"serial\":\"S2\",\"batch\":\"B\",\"certificate\":\"%s\"}]}", d, u,
		pem),
	    "appears twice");
#undef DEV

	/* over the device cap: refused before any device is read */
	{
		struct dynbuf b;

		dynbuf_init(&b, (size_t)1 << 20);
		dynbuf_addstr(
		    &b, "{\"event\":\"e\",\"action\":\"add\",\"tenant\":\"T\",\"devices\":[");
		for (int i = 0; i <= GATEWAY_MAX_DEVICES; i++)
			dynbuf_addstr(&b, i > 0 ? ",{}" : "{}");
		dynbuf_addstr(&b, "]}");
		bad("1,001 devices", (char *)dynbuf_detach(&b, NULL), "allowed 1 to 1000");
	}
	/* over the body cap: refused before parsing */
	{
		size_t n = GATEWAY_MAX_EVENT_BODY + 1;
		uint8_t *p = malloc(n);
		struct gateway_event *ev = NULL;
		struct devid_error e;

		memset(p, ' ', n);
		devid_error_clear(&e);
		CHECK(gateway_event_parse(p, n, &ev, &e) == DEVID_ELIMIT && ev == NULL,
		    "a body over the cap is DEVID_ELIMIT: %s", e.msg);
		free(p);
	}
	free(d);
}

static void
sig_expect(const char *name, const char *secret, const char *body, const char *header, int want,
    const char *msg)
{
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = gateway_signature_verify((const uint8_t *)secret, strlen(secret),
	    (const uint8_t *)body, strlen(body), header, &e);
	CHECK(rc == want, "%s: rc %d, expected %d (%s)", name, rc, want, e.msg);
	CHECK(msg == NULL || strstr(e.msg, msg) != NULL, "%s: message \"%s\"", name, e.msg);
}

static void
test_signature(void)
{
	/* RFC 4231 test case 2 */
	const char *mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
	const char *key = "Jefe", *data = "what do ya want for nothing?";
	/* HMAC-SHA256("0123456789abcdef", ""), from `openssl dgst -sha256 -hmac`: GET's */
	const char *empty =
	    "sha256=496dc93fa2d26eae500ec0bc37a122706b88f8963cebf0899d0245fae313e241";
	char h[128];

	snprintf(h, sizeof(h), "sha256=%s", mac);
	sig_expect("RFC 4231 case 2", key, data, h, 0, NULL);
	for (size_t i = 7; h[i] != '\0'; i++)
		if (h[i] >= 'a' && h[i] <= 'f')
			h[i] = (char)(h[i] - 'a' + 'A');
	sig_expect("upper-case hex", key, data, h, 0, NULL);
	snprintf(h, sizeof(h), "sha256=%s", mac);
	h[strlen(h) - 1] = '2';
	sig_expect("last digit wrong", key, data, h, DEVID_EAUTH, "does not match");
	snprintf(h, sizeof(h), "sha256=%s", mac);
	sig_expect(
	    "other body", key, "what do ya want for nothing!", h, DEVID_EAUTH, "does not match");
	sig_expect("other secret", "Jeff", data, h, DEVID_EAUTH, "does not match");
	sig_expect("missing", key, data, NULL, DEVID_EAUTH, "missing");
	sig_expect("empty", key, data, "", DEVID_EAUTH, "not \"sha256=");
	snprintf(h, sizeof(h), "sha1=%s", mac);
	sig_expect("sha1", key, data, h, DEVID_EAUTH, "not \"sha256=");
	snprintf(h, sizeof(h), "SHA256=%s", mac);
	sig_expect("upper-case prefix", key, data, h, DEVID_EAUTH, "not \"sha256=");
	snprintf(h, sizeof(h), "sha256=%.63s", mac);
	sig_expect("63 digits", key, data, h, DEVID_EAUTH, "not \"sha256=");
	snprintf(h, sizeof(h), "sha256=%s0", mac);
	sig_expect("65 digits", key, data, h, DEVID_EAUTH, "not \"sha256=");
	snprintf(h, sizeof(h), "sha256=%s ", mac);
	sig_expect("trailing space", key, data, h, DEVID_EAUTH, "not \"sha256=");
	snprintf(h, sizeof(h), "sha256=%.62sxg", mac);
	sig_expect("not hex", key, data, h, DEVID_EAUTH, "not \"sha256=");
	sig_expect("empty body", "0123456789abcdef", "", empty, 0, NULL);
	sig_expect("empty body, other secret", "0123456789abcdeF", "", empty, DEVID_EAUTH,
	    "does not match");
}

static void
test_event_id(void)
{
	CHECK(gateway_event_id_valid("devid-12-3", 10), "devid's own ids");
	CHECK(gateway_event_id_valid("A.z_0:9-", 8), "every allowed character");
	CHECK(!gateway_event_id_valid("", 0), "empty");
	CHECK(!gateway_event_id_valid("a/b", 3), "slash");
	CHECK(!gateway_event_id_valid("a\"b", 3), "quote");
	CHECK(!gateway_event_id_valid("a b", 3), "space");
}

/* devid's connector test: "action":"test" with no device, and nothing else with it. */
static void
test_test_action(void)
{
	struct gateway_event *ev;
	const char *body = "{\"event\":\"devid-test-00112233\",\"action\":\"test\",\"tenant\":"
			   "\"OEM1\",\"devices\":[]}";

	ev = good("test", body, strlen(body));
	if (ev != NULL) {
		CHECK(ev->action == GATEWAY_TEST && ev->ndevices == 0 && ev->devices == NULL,
		    "a test event has no device");
		CHECK(strcmp(gateway_action_name(ev->action), "test") == 0, "action name");
		CHECK(strcmp(ev->tenant, "OEM1") == 0, "tenant %s", ev->tenant);
	}
	gateway_event_free(ev);
	bad("test with a device", event_json("devid-test-1", "test", "OEM1", 0, 1),
	    "a test carries \"devices\":[]");
	bad("test without devices",
	    fmt("{\"event\":\"devid-test-1\",\"action\":\"test\",\"tenant\":\"OEM1\"}"),
	    "a test carries");
	bad("test with a bad tenant",
	    fmt("{\"event\":\"devid-test-1\",\"action\":\"test\",\"tenant\":\"oem\",\"devices\":[]"
		"}"),
	    "\"tenant\"");
	bad("an unknown action", event_json("devid-1", "check", "OEM1", 0, 1),
	    "is not \"add\", \"remove\", \"test\" or \"suspected_clone\"");
	bad("an empty add",
	    fmt("{\"event\":\"e1\",\"action\":\"add\",\"tenant\":\"OEM1\",\"devices\":[]}"),
	    "allowed 1 to");
}

/* A suspected_clone event with the devices of an add and suspicion, a JSON object's members. */
static char *
clone_json(const char *suspicion)
{
	char *d = device_json(&certs[0], "SN-1", "B1"), *d2 = device_json(&certs[1], "SN-2", "B1");
	char *body = fmt("{\"event\":\"devid-12-0\",\"action\":\"suspected_clone\",\"tenant\":"
			 "\"OEM1\",\"devices\":[%s,%s],\"suspicion\":{%s}}",
	    d, d2, suspicion);

	free(d);
	free(d2);
	return body;
}

/* devid suspects a clone: the devices as for an add, and why ("suspicion"), for this action only */
static void
test_suspected_clone(void)
{
	struct gateway_event *ev;
	struct dynbuf b;
	char *body, *d;

	body =
	    clone_json("\"rule\":\"concurrent-origins\",\"at\":\"2026-12-05T11:00:00Z\","
		       "\"quarantined\":true,\"detail\":{\"origins\":[\"127.0.0.2\",\"127.0.0.3\"],"
		       "\"n\":{\"deep\":[1,2.5,null,false]}}");
	ev = good("suspected_clone", body, strlen(body));
	if (ev != NULL) {
		CHECK(ev->action == GATEWAY_SUSPECTED_CLONE, "action");
		CHECK(
		    strcmp(gateway_action_name(ev->action), "suspected_clone") == 0, "action name");
		CHECK(ev->ndevices == 2 && strcmp(ev->devices[1].udid, certs[1].udid) == 0,
		    "the devices");
		CHECK(ev->suspicion.rule == GATEWAY_RULE_CONCURRENT_ORIGINS, "rule");
		CHECK(strcmp(gateway_rule_name(ev->suspicion.rule), "concurrent-origins") == 0,
		    "rule name");
		CHECK(strcmp(ev->suspicion.at, "2026-12-05T11:00:00Z") == 0, "at %s",
		    ev->suspicion.at);
		CHECK(ev->suspicion.quarantined, "quarantined");
	}
	gateway_event_free(ev);
	free(body);

	body = clone_json("\"detail\":{},\"quarantined\":false,\"at\":"
			  "\"2026-12-05T11:00:00.123456789Z\",\"rule\":\"superseded-certificate\"");
	ev = good("superseded-certificate, members in any order", body, strlen(body));
	CHECK(ev == NULL ||
		(ev->suspicion.rule == GATEWAY_RULE_SUPERSEDED_CERTIFICATE &&
		    !ev->suspicion.quarantined),
	    "superseded-certificate, not quarantined");
	gateway_event_free(ev);
	free(body);

	body = clone_json("\"rule\":\"enrollment-rate\",\"at\":\"2026-12-05T11:00:00.1Z\","
			  "\"quarantined\":false");
	ev = good("enrollment-rate without detail", body, strlen(body));
	CHECK(ev == NULL || strcmp(gateway_rule_name(ev->suspicion.rule), "enrollment-rate") == 0,
	    "enrollment-rate");
	gateway_event_free(ev);
	free(body);

	/* "detail" at the limit as compact JSON, {"x":"aa...a"}, and one byte over it */
	for (int over = 0; over <= 1; over++) {
		dynbuf_init(&b, GATEWAY_MAX_SUSPICION_DETAIL + 256);
		dynbuf_addstr(&b,
		    "\"rule\":\"enrollment-rate\",\"at\":\"2026-12-05T11:00:00Z\","
		    "\"quarantined\":true,\"detail\":{\"x\" : \"");
		for (int i = 0; i < GATEWAY_MAX_SUSPICION_DETAIL - 8 + over; i++)
			dynbuf_addstr(&b, "a");
		dynbuf_addstr(&b, "\" }");
		body = clone_json(dynbuf_str(&b));
		dynbuf_release(&b);
		if (over) {
			bad("a detail of 64 KiB + 1", body, "is 65537 bytes of JSON, limit 65536");
			continue;
		}
		/* the spaces do not count: the limit is on the compact form */
		ev = good("a detail of 64 KiB", body, strlen(body));
		gateway_event_free(ev);
		free(body);
	}

	bad("no suspicion",
	    fmt("{\"event\":\"e\",\"action\":\"suspected_clone\",\"tenant\":\"OEM1\","
		"\"devices\":[%s]}",
		d = device_json(&certs[0], "S", "B1")),
	    "\"suspicion\" is missing");
	free(d);
	bad("a suspicion on an add",
	    fmt("{\"event\":\"e\",\"action\":\"add\",\"tenant\":\"OEM1\",\"devices\":[%s],"
		"\"suspicion\":{\"rule\":\"enrollment-rate\",\"at\":\"2026-12-05T11:00:00Z\","
		"\"quarantined\":true}}",
		d = device_json(&certs[0], "S", "B1")),
	    "belongs to suspected_clone only");
	free(d);
	bad("a suspicion on a test",
	    fmt("{\"event\":\"e\",\"action\":\"test\",\"tenant\":\"OEM1\",\"devices\":[],"
		"\"suspicion\":null}"),
	    "belongs to suspected_clone only");
	bad("no device",
	    fmt("{\"event\":\"e\",\"action\":\"suspected_clone\",\"tenant\":\"OEM1\","
		"\"devices\":[],\"suspicion\":{\"rule\":\"enrollment-rate\",\"at\":"
		"\"2026-12-05T11:00:00Z\",\"quarantined\":true}}"),
	    "allowed 1 to");
	bad("suspicion an array",
	    fmt("{\"event\":\"e\",\"action\":\"suspected_clone\",\"tenant\":\"OEM1\","
		"\"devices\":[%s],\"suspicion\":[]}",
		d = device_json(&certs[0], "S", "B1")),
	    "\"suspicion\" is not an object");
	free(d);

#define SUS(r, a, q) "\"rule\":" r ",\"at\":" a ",\"quarantined\":" q
	bad("rule missing", clone_json("\"at\":\"2026-12-05T11:00:00Z\",\"quarantined\":true"),
	    "suspicion: \"rule\" is missing");
	bad("rule unknown", clone_json(SUS("\"same-serial\"", "\"2026-12-05T11:00:00Z\"", "true")),
	    "\"rule\" is not \"concurrent-origins\"");
	bad("rule upper case",
	    clone_json(SUS("\"Concurrent-Origins\"", "\"2026-12-05T11:00:00Z\"", "true")),
	    "\"rule\" is not");
	bad("rule a number", clone_json(SUS("1", "\"2026-12-05T11:00:00Z\"", "true")),
	    "\"rule\" is not a string");
	bad("at missing", clone_json("\"rule\":\"enrollment-rate\",\"quarantined\":true"),
	    "suspicion: \"at\" is missing");
	bad("at without Z",
	    clone_json(SUS("\"enrollment-rate\"", "\"2026-12-05T11:00:00\"", "true")),
	    "\"at\" is not an RFC 3339 time");
	bad("at with an offset",
	    clone_json(SUS("\"enrollment-rate\"", "\"2026-12-05T11:00:00+01:00\"", "true")),
	    "\"at\" is not an RFC 3339 time");
	bad("at a date", clone_json(SUS("\"enrollment-rate\"", "\"2026-12-05\"", "true")),
	    "\"at\" is not an RFC 3339 time");
	bad("at with an empty fraction",
	    clone_json(SUS("\"enrollment-rate\"", "\"2026-12-05T11:00:00.Z\"", "true")),
	    "\"at\" is not an RFC 3339 time");
	bad("at with ten fraction digits",
	    clone_json(SUS("\"enrollment-rate\"", "\"2026-12-05T11:00:00.1234567890Z\"", "true")),
	    "\"at\"");
	bad("at a number", clone_json(SUS("\"enrollment-rate\"", "1733396400", "true")),
	    "\"at\" is not a string");
	bad("quarantined missing",
	    clone_json("\"rule\":\"enrollment-rate\",\"at\":\"2026-12-05T11:00:00Z\""),
	    "\"quarantined\" is missing");
	bad("quarantined a string",
	    clone_json(SUS("\"enrollment-rate\"", "\"2026-12-05T11:00:00Z\"", "\"true\"")),
	    "\"quarantined\" is not true or false");
	bad("quarantined a number",
	    clone_json(SUS("\"enrollment-rate\"", "\"2026-12-05T11:00:00Z\"", "1")),
	    "\"quarantined\" is not true or false");
	bad("detail an array",
	    clone_json(
		SUS("\"enrollment-rate\"", "\"2026-12-05T11:00:00Z\"", "true") ",\"detail\":[]"),
	    "\"detail\" is not an object");
	bad("detail null",
	    clone_json(
		SUS("\"enrollment-rate\"", "\"2026-12-05T11:00:00Z\"", "true") ",\"detail\":null"),
	    "\"detail\" is not an object");
	bad("suspicion unknown member",
	    clone_json(
		SUS("\"enrollment-rate\"", "\"2026-12-05T11:00:00Z\"", "true") ",\"score\":0.9"),
	    "suspicion: unknown member \"score\"");
	bad("suspicion duplicate key",
	    clone_json(SUS("\"enrollment-rate\"", "\"2026-12-05T11:00:00Z\"",
		"true") ",\"quarantined\":false"),
	    "duplicate");
#undef SUS
	/* the devices are checked as an add's */
	bad("a UDID of another certificate",
	    fmt("{\"event\":\"e\",\"action\":\"suspected_clone\",\"tenant\":\"OEM1\","
		"\"devices\":[{\"udid\":\"%s\",\"serial\":\"S\",\"batch\":\"B1\","
		"\"certificate\":\"%s\"}],\"suspicion\":{\"rule\":\"enrollment-rate\",\"at\":"
		"\"2026-12-05T11:00:00Z\",\"quarantined\":true}}",
		certs[1].udid, certs[0].pem),
	    "is not the UDID of the certificate");
}

int
main(void)
{
	certs_make();
	test_good();
	test_bad();
	test_signature();
	test_event_id();
	test_test_action();
	test_suspected_clone();
	for (int i = 0; i < NCERTS; i++) {
		free(certs[i].pem);
		free(certs[i].raw);
	}
	return test_done();
}
