/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.c - the webhook's event: its signature and its body, both outside input.
 *
 * Pure functions of the bytes received (no I/O, no global state), so the fuzz target
 * tests/fuzz/fuzz_gateway_event.c runs them exactly as the admin port does.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gateway/gateway.h"
#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/json.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

#define SIG_PREFIX "sha256="
#define SIG_PREFIX_LEN (sizeof(SIG_PREFIX) - 1)
#define SIG_HEX_LEN 64 /* HMAC-SHA256 is 32 bytes */

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END "-----END CERTIFICATE-----"

static const char *const event_members[] = {"event", "action", "tenant", "devices", "suspicion"};
static const char *const device_members[] = {"udid", "serial", "batch", "certificate"};
static const char *const suspicion_members[] = {"rule", "at", "quarantined", "detail"};

static const char *const action_names[] = {
    [GATEWAY_ADD] = "add",
    [GATEWAY_REMOVE] = "remove",
    [GATEWAY_TEST] = "test",
    [GATEWAY_SUSPECTED_CLONE] = "suspected_clone",
};
static const char *const rule_names[] = {
    [GATEWAY_RULE_CONCURRENT_ORIGINS] = "concurrent-origins",
    [GATEWAY_RULE_SUPERSEDED_CERTIFICATE] = "superseded-certificate",
    [GATEWAY_RULE_ENROLLMENT_RATE] = "enrollment-rate",
};

bool
gateway_event_id_valid(const char *s, size_t n)
{
	if (n < 1 || n > GATEWAY_MAX_EVENT_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

const char *
gateway_action_name(enum gateway_action a)
{
	return action_names[a];
}

const char *
gateway_rule_name(enum gateway_rule r)
{
	return rule_names[r];
}

int
gateway_signature_verify(const uint8_t *secret, size_t secret_len, const uint8_t *body, size_t len,
    const char *header, struct devid_error *e)
{
	static const uint8_t empty[1];
	uint8_t given[SIG_HEX_LEN / 2], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int rc = DEVID_EAUTH;

	if (header == NULL) {
		devid_error_set(e, rc, "X-Devid-Signature is missing");
		goto out;
	}
	if (strncmp(header, SIG_PREFIX, SIG_PREFIX_LEN) != 0 ||
	    strlen(header) != SIG_PREFIX_LEN + SIG_HEX_LEN) {
		devid_error_set(e, rc, "X-Devid-Signature is not \"sha256=<64 hex digits>\"");
		goto out;
	}
	for (size_t i = 0; i < sizeof(given); i++) {
		int hi = hex_digit(header[SIG_PREFIX_LEN + 2 * i]);
		int lo = hex_digit(header[SIG_PREFIX_LEN + 2 * i + 1]);

		if (hi < 0 || lo < 0) {
			devid_error_set(
			    e, rc, "X-Devid-Signature is not \"sha256=<64 hex digits>\"");
			goto out;
		}
		given[i] = (uint8_t)(hi << 4 | lo);
	}
	if (secret_len < 1 || secret_len > GATEWAY_MAX_SECRET_LEN) {
		rc = devid_error_set(e, DEVID_EINTERNAL, "no usable secret");
		goto out;
	}
	/* the MAC is over the bytes received, before anything reads them */
	if (HMAC(EVP_sha256(), secret, (int)secret_len, len > 0 ? body : empty, len, mac,
		&maclen) == NULL ||
	    maclen != sizeof(given)) {
		rc = devid_error_ssl(e, DEVID_EINTERNAL, "HMAC-SHA256 failed");
		goto out;
	}
	if (CRYPTO_memcmp(mac, given, sizeof(given)) != 0) {
		devid_error_set(e, rc, "X-Devid-Signature does not match the body");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

/* Rejects members other than the allowed ones (a contract change shows up, not drifts). */
static int
members_check(const json_t *obj, const char *const *allowed, size_t n, const char *what,
    struct devid_error *e)
{
	json_t *o = (json_t *)obj; /* jansson's iterators take no const */

	for (void *it = json_object_iter(o); it != NULL; it = json_object_iter_next(o, it)) {
		const char *key = json_object_iter_key(it);
		size_t i;

		for (i = 0; i < n; i++) {
			if (strcmp(key, allowed[i]) == 0)
				break;
		}
		if (i == n)
			return devid_error_set(
			    e, DEVID_EINVAL, "%s: unknown member \"%.64s\"", what, key);
	}
	return 0;
}

static bool
udid_valid(const char *s, size_t n)
{
	if (n != UDID_HEX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

static bool
serial_valid(const char *s, size_t n)
{
	/* any UTF-8 (jansson checked it) but no control character: it is shown and logged */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return n >= 1;
}

/*
 * Exactly one PEM certificate: the BEGIN line, base64 lines, the END line, at most one line
 * break after it; nothing before or after (PEM_read_bio would skip text around blocks and
 * take the first of several).
 */
static X509 *
pem_cert_parse(const char *s, size_t n, const char *what, struct devid_error *e)
{
	const size_t bl = sizeof(PEM_BEGIN) - 1, el = sizeof(PEM_END) - 1;
	uint8_t *der = NULL;
	size_t i = bl, end = n, derlen;
	X509 *x = NULL;

	if (n < bl || memcmp(s, PEM_BEGIN, bl) != 0) {
		devid_error_set(e, DEVID_EINVAL, "%s: does not start with \"%s\"", what, PEM_BEGIN);
		goto out;
	}
	if (i < n && s[i] == '\r')
		i++;
	if (i >= n || s[i] != '\n') {
		devid_error_set(e, DEVID_EINVAL, "%s: no line break after \"%s\"", what, PEM_BEGIN);
		goto out;
	}
	i++;
	if (end > i && s[end - 1] == '\n') {
		end--;
		if (end > i && s[end - 1] == '\r')
			end--;
	}
	if (end < i + el || memcmp(s + end - el, PEM_END, el) != 0 ||
	    (end - el > i && s[end - el - 1] != '\n')) {
		devid_error_set(e, DEVID_EINVAL,
		    "%s: does not end with a line \"%s\" (and one certificate only)", what,
		    PEM_END);
		goto out;
	}
	if (b64_decode(s + i, end - el - i, B64_ALLOW_WS, &der, &derlen) != 0) {
		devid_error_set(e, DEVID_EINVAL, "%s: the PEM body is not base64", what);
		goto out;
	}
	x = x509_from_der(der, derlen, what, e);
out:
	free(der);
	return x;
}

/* Reads one element of "devices" into d. */
static int
device_parse(const json_t *j, size_t idx, struct gateway_device *d, struct devid_error *e)
{
	char what[48], udid[UDID_HEX_LEN + 1];
	const char *s;
	size_t n;
	X509 *x = NULL;
	int rc = DEVID_EINVAL;

	snprintf(what, sizeof(what), "event: devices[%zu]", idx);
	if (!json_is_object(j)) {
		devid_error_set(e, rc, "%s: not an object", what);
		goto out;
	}
	if (members_check(j, device_members, 4, what, e) != 0)
		goto out;
	if (json_get_str(j, "udid", UDID_HEX_LEN, UDID_HEX_LEN, true, &s, &n, what, e) != 0)
		goto out;
	if (!udid_valid(s, n)) {
		devid_error_set(e, rc, "%s: \"udid\" is not 64 lowercase hex digits", what);
		goto out;
	}
	memcpy(d->udid, s, n + 1);
	if (json_get_str(j, "serial", 1, MAX_SERIAL_LEN, true, &s, &n, what, e) != 0)
		goto out;
	if (!serial_valid(s, n)) {
		devid_error_set(e, rc, "%s: \"serial\" holds a control character", what);
		goto out;
	}
	memcpy(d->serial, s, n + 1);
	if (json_get_str(j, "batch", 1, MAX_NAME_LEN, true, &s, &n, what, e) != 0)
		goto out;
	if (!claim_name_valid(s, n)) {
		devid_error_set(e, rc, "%s: \"batch\" does not match [A-Z0-9.-]{1,64}", what);
		goto out;
	}
	memcpy(d->batch, s, n + 1);
	if (json_get_str(j, "certificate", 1, GATEWAY_MAX_CERT_PEM, true, &s, &n, what, e) != 0)
		goto out;
	snprintf(what, sizeof(what), "event: devices[%zu]: certificate", idx);
	if ((x = pem_cert_parse(s, n, what, e)) == NULL)
		goto out;
	if (x509_udid(x, udid) != 0) {
		rc = devid_error_ssl(e, DEVID_EINVAL, "%s: no usable public key", what);
		goto out;
	}
	if (strcmp(udid, d->udid) != 0) {
		devid_error_set(e, rc,
		    "event: devices[%zu]: \"udid\" is not the UDID of the certificate (%s)", idx,
		    udid);
		goto out;
	}
	d->certificate = xmalloc(n + 1);
	memcpy(d->certificate, s, n + 1);
	d->certificate_len = n;
	rc = 0;
out:
	X509_free(x);
	return rc;
}

static int
device_cmp(const void *a, const void *b)
{
	const struct gateway_device *const *x = a, *const *y = b;

	return strcmp((*x)->udid, (*y)->udid);
}

/* Rejects an event that names a device twice: its outcome would depend on the order. */
static int
duplicates_check(const struct gateway_event *ev, struct devid_error *e)
{
	const struct gateway_device **v;
	int rc = 0;

	v = xcalloc(ev->ndevices, sizeof(*v));
	for (size_t i = 0; i < ev->ndevices; i++)
		v[i] = &ev->devices[i];
	qsort(v, ev->ndevices, sizeof(*v), device_cmp);
	for (size_t i = 1; i < ev->ndevices && rc == 0; i++) {
		if (strcmp(v[i - 1]->udid, v[i]->udid) == 0)
			rc = devid_error_set(
			    e, DEVID_EINVAL, "event: device %s appears twice", v[i]->udid);
	}
	free(v);
	return rc;
}

static bool
digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

/* RFC 3339 in UTC: "YYYY-MM-DDTHH:MM:SS", then optionally "." and 1 to 9 digits, then "Z". */
static bool
utc_time_valid(const char *s, size_t n)
{
	size_t frac;

	if (n < 20 || n > GATEWAY_MAX_TIME_LEN || s[n - 1] != 'Z')
		return false;
	if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
	    s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) ||
	    s[16] != ':' || !digits(s + 17, 2))
		return false;
	if (n == 20)
		return true;
	frac = n - 21;
	return s[19] == '.' && frac >= 1 && frac <= 9 && digits(s + 20, frac);
}

/* Reads "suspicion" into su: the rule, the time, quarantined, and a bounded "detail" object. */
static int
suspicion_parse(const json_t *root, struct gateway_suspicion *su, struct devid_error *e)
{
	const char *what = "event: suspicion";
	json_t *j, *v;
	const char *s;
	size_t n, i;

	if (json_get_obj(root, "suspicion", true, &j, "event", e) != 0)
		return DEVID_EINVAL;
	if (members_check(j, suspicion_members, 4, what, e) != 0)
		return DEVID_EINVAL;
	if (json_get_str(j, "rule", 1, 32, true, &s, &n, what, e) != 0)
		return DEVID_EINVAL;
	for (i = 0; i < sizeof(rule_names) / sizeof(rule_names[0]); i++) {
		if (strcmp(s, rule_names[i]) == 0)
			break;
	}
	if (i == sizeof(rule_names) / sizeof(rule_names[0]))
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: \"rule\" is not \"concurrent-origins\", \"superseded-certificate\" or "
		    "\"enrollment-rate\"",
		    what);
	su->rule = (enum gateway_rule)i;
	if (json_get_str(j, "at", 1, GATEWAY_MAX_TIME_LEN, true, &s, &n, what, e) != 0)
		return DEVID_EINVAL;
	if (!utc_time_valid(s, n))
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: \"at\" is not an RFC 3339 time in UTC (\"2026-12-05T11:00:00Z\")", what);
	memcpy(su->at, s, n + 1);
	if ((v = json_object_get(j, "quarantined")) == NULL)
		return devid_error_set(e, DEVID_EINVAL, "%s: \"quarantined\" is missing", what);
	if (!json_is_boolean(v))
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: \"quarantined\" is not true or false", what);
	su->quarantined = json_is_true(v);
	if ((v = json_object_get(j, "detail")) != NULL) {
		if (!json_is_object(v))
			return devid_error_set(
			    e, DEVID_EINVAL, "%s: \"detail\" is not an object", what);
		/* the size as compact JSON, computed without writing it */
		if ((n = json_dumpb(v, NULL, 0, JSON_COMPACT)) > GATEWAY_MAX_SUSPICION_DETAIL)
			return devid_error_set(e, DEVID_EINVAL,
			    "%s: \"detail\" is %zu bytes of JSON, limit %d", what, n,
			    GATEWAY_MAX_SUSPICION_DETAIL);
	}
	return 0;
}

int
gateway_event_parse(const uint8_t *p, size_t len, struct gateway_event **out, struct devid_error *e)
{
	struct gateway_event *ev = NULL;
	json_t *root = NULL, *devs;
	const char *s;
	size_t n;
	int rc = DEVID_EINVAL;

	*out = NULL;
	if (len > GATEWAY_MAX_EVENT_BODY) {
		rc = devid_error_set(
		    e, DEVID_ELIMIT, "event: %zu bytes, limit %zu", len, GATEWAY_MAX_EVENT_BODY);
		goto out;
	}
	if ((root = json_parse(p, len, "event", e)) == NULL)
		goto out;
	if (!json_is_object(root)) {
		devid_error_set(e, rc, "event: not a JSON object");
		goto out;
	}
	if (members_check(root, event_members, 5, "event", e) != 0)
		goto out;
	ev = xcalloc(1, sizeof(*ev));
	if (json_get_str(root, "event", 1, GATEWAY_MAX_EVENT_ID_LEN, true, &s, &n, "event", e) != 0)
		goto out;
	if (!gateway_event_id_valid(s, n)) {
		devid_error_set(e, rc, "event: \"event\" does not match [A-Za-z0-9._:-]{1,%d}",
		    GATEWAY_MAX_EVENT_ID_LEN);
		goto out;
	}
	memcpy(ev->id, s, n + 1);
	if (json_get_str(root, "action", 1, 16, true, &s, &n, "event", e) != 0)
		goto out;
	for (n = 0; n < sizeof(action_names) / sizeof(action_names[0]); n++) {
		if (strcmp(s, action_names[n]) == 0)
			break;
	}
	if (n == sizeof(action_names) / sizeof(action_names[0])) {
		devid_error_set(e, rc,
		    "event: \"action\" is not \"add\", \"remove\", \"test\" or "
		    "\"suspected_clone\"");
		goto out;
	}
	ev->action = (enum gateway_action)n;
	if (json_get_str(root, "tenant", 1, MAX_NAME_LEN, true, &s, &n, "event", e) != 0)
		goto out;
	if (!claim_name_valid(s, n)) {
		devid_error_set(e, rc, "event: \"tenant\" does not match [A-Z0-9.-]{1,64}");
		goto out;
	}
	memcpy(ev->tenant, s, n + 1);
	if (ev->action == GATEWAY_SUSPECTED_CLONE) {
		if (suspicion_parse(root, &ev->suspicion, e) != 0)
			goto out;
	} else if (json_object_get(root, "suspicion") != NULL) {
		devid_error_set(e, rc, "event: \"suspicion\" belongs to suspected_clone only");
		goto out;
	}
	if (ev->action == GATEWAY_TEST) {
		devs = json_object_get(root, "devices");
		if (!json_is_array(devs) || json_array_size(devs) != 0) {
			devid_error_set(e, rc, "event: a test carries \"devices\":[]");
			goto out;
		}
		*out = ev;
		ev = NULL;
		rc = 0;
		goto out;
	}
	if (json_get_arr(root, "devices", GATEWAY_MAX_DEVICES, &devs, "event", e) != 0)
		goto out;
	ev->devices = xcalloc(json_array_size(devs), sizeof(*ev->devices));
	for (size_t i = 0; i < json_array_size(devs); i++) {
		/* counted as it goes, so gateway_event_free frees what was read */
		ev->ndevices = i + 1;
		if (device_parse(json_array_get(devs, i), i, &ev->devices[i], e) != 0)
			goto out;
	}
	if (duplicates_check(ev, e) != 0)
		goto out;
	*out = ev;
	ev = NULL;
	rc = 0;
out:
	gateway_event_free(ev);
	json_decref(root);
	return rc;
}

void
gateway_event_free(struct gateway_event *ev)
{
	if (ev == NULL)
		return;
	for (size_t i = 0; i < ev->ndevices; i++)
		free(ev->devices[i].certificate);
	free(ev->devices);
	free(ev);
}
