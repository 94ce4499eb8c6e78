/* SPDX-License-Identifier: Apache-2.0 */
/*
 * azure_dps.c - the azure-dps connector: individual enrollments in an Azure IoT Hub Device
 * Provisioning Service (REST api-version 2021-10-01, the OpenAPI document in
 * ../shared/vectors/azure-dps/service.json), docs/connectors.md. A chip's enrollment has X.509
 * attestation with its certificate; a TPM's (kind 'tpm') has TPM attestation with its EK's
 * public area, rebuilt from the EK certificate (lib/tpm2_ekpub.h).
 *
 * A delivery becomes bulk calls (POST {endpoint}/enrollments, at most 10 enrollments each):
 * add = mode create, provisioningStatus enabled; revoke = mode update, provisioningStatus
 * disabled (the enrollment stays, so the device can never register again); release = mode
 * delete. The registration id is the UDID: a chip certificate's CN, which must be it. Each
 * enrollment is one operation of the DPS quota: the calls are paced to operationsPerMinute in this
 * process (and through d->throttle across servers when the outbox gives one).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "connectors/azure_dps.h"
#include "connectors/connector.h"
#include "lib/base64.h"
#include "lib/json.h"
#include "lib/tpm2_ekpub.h"
#include "lib/banned.h"

#define DPS_DEFAULT_API "2021-10-01"
#define DPS_DEFAULT_OPM 1000.0 /* enrollment operations a minute (DESIGN.md) */
#define DPS_MAX_OPM 100000.0
#define DPS_MAX_HOST 253
#define DPS_MAX_POLICY 64
#define DPS_MAX_HUBS 16
#define DPS_MAX_TWIN 8192 /* bytes of the initialTwin, serialized */
#define DPS_MAX_REGID 128 /* the service's limit on a registration id */
#define DPS_SAS_LIFETIME 3600 /* seconds a token is valid; a new one for every call */
#define DPS_TRIES 6 /* attempts of one bulk call (429, 5xx, no answer) ... */
#define DPS_ITEM_TRIES 6 /* ... and of one enrollment that failed inside a 200 */
#define DPS_MAX_RETRY_AFTER 60 /* longer than this: the chunk goes back to the outbox */
#define DPS_MAX_PACERS 32

static const char *const dps_keys[] = {"endpoint", "policyName", "policyKey", "iotHubs",
    "allocationPolicy", "initialTwin", "apiVersion", "operationsPerMinute", "ratePerSecond", NULL};

/* The host of an http(s) endpoint without path, query, user or port, into host. */
static int
dps_host(const char *endpoint, char host[DPS_MAX_HOST + 1], struct devid_error *e)
{
	const char *p = strstr(endpoint, "://"), *end;
	size_t n;

	if (p == NULL)
		return devid_error_set(e, DEVID_EINVAL, "azure-dps: endpoint is not a URL");
	p += 3;
	end = p + strcspn(p, ":/?#@");
	n = (size_t)(end - p);
	if (n == 0 || n > DPS_MAX_HOST || *end == '@' || *end == '?' || *end == '#')
		return devid_error_set(e, DEVID_EINVAL,
		    "azure-dps: endpoint is https://<dps>.azure-devices-provisioning.net");
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '.' && p[i] != '-')
			return devid_error_set(
			    e, DEVID_EINVAL, "azure-dps: endpoint: bad character in the host");
	if (*end == ':') {
		end++;
		if (*end < '0' || *end > '9')
			return devid_error_set(e, DEVID_EINVAL, "azure-dps: endpoint: bad port");
		while (*end >= '0' && *end <= '9')
			end++;
	}
	if (*end != '\0' && strcmp(end, "/") != 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "azure-dps: endpoint is the service's root URL, without a path or query");
	memcpy(host, p, n);
	host[n] = '\0';
	return 0;
}

static bool
dps_token_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return false;
	return true;
}

static double
dps_opm(const json_t *config)
{
	json_t *v = json_object_get(config, "operationsPerMinute");

	return json_is_number(v) ? json_number_value(v) : DPS_DEFAULT_OPM;
}

static const char *
dps_api(const json_t *config)
{
	const char *v = json_string_value(json_object_get(config, "apiVersion"));

	return v != NULL ? v : DPS_DEFAULT_API;
}

static int
dps_validate(const json_t *config, struct devid_error *e)
{
	const char *endpoint, *policy, *key, *s, *k;
	char host[DPS_MAX_HOST + 1];
	json_t *v, *hubs = NULL;
	uint8_t *raw = NULL;
	size_t rawlen = 0, i;
	char *dump;

	if (!json_is_object(config))
		return devid_error_set(e, DEVID_EINVAL, "azure-dps: config is an object");
	json_object_foreach((json_t *)config, k, v)
	{
		for (i = 0; dps_keys[i] != NULL && strcmp(dps_keys[i], k) != 0; i++)
			;
		if (dps_keys[i] == NULL)
			return devid_error_set(e, DEVID_EINVAL,
			    "azure-dps: unknown config member \"%.64s\" (known: endpoint, "
			    "policyName, "
			    "policyKey, iotHubs, allocationPolicy, initialTwin, apiVersion, "
			    "operationsPerMinute, ratePerSecond)",
			    k);
	}
	if (json_get_str(config, "endpoint", 8, CONNECTOR_MAX_URL, true, &endpoint, NULL,
		"azure-dps", e) != 0)
		return DEVID_EINVAL;
	if (strncmp(endpoint, "https://", 8) != 0 && strncmp(endpoint, "http://", 7) != 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "azure-dps: endpoint must be https:// (or http:// to test)");
	if (dps_host(endpoint, host, e) != 0)
		return DEVID_EINVAL;
	if (json_get_str(
		config, "policyName", 1, DPS_MAX_POLICY, true, &policy, NULL, "azure-dps", e) != 0)
		return DEVID_EINVAL;
	if (!dps_token_ok(policy, DPS_MAX_POLICY, "._-"))
		return devid_error_set(
		    e, DEVID_EINVAL, "azure-dps: policyName is letters, digits, '.', '_' and '-'");
	/* the key is never quoted in a message */
	key = json_string_value(json_object_get(config, "policyKey"));
	if (key == NULL || strlen(key) > AZURE_SAS_MAX_KEY ||
	    b64_decode(key, strlen(key), 0, &raw, &rawlen) != 0 || rawlen < 16) {
		free(raw);
		return devid_error_set(e, DEVID_EINVAL,
		    "azure-dps: policyKey is the shared access policy's key (base64, 16 bytes or "
		    "more)");
	}
	OPENSSL_cleanse(raw, rawlen);
	free(raw);
	if ((v = json_object_get(config, "iotHubs")) != NULL) {
		if (json_get_arr(config, "iotHubs", DPS_MAX_HUBS, &hubs, "azure-dps", e) != 0)
			return DEVID_EINVAL;
		json_array_foreach(hubs, i, v)
		{
			if (!json_is_string(v) ||
			    !dps_token_ok(json_string_value(v), DPS_MAX_HOST, ".-"))
				return devid_error_set(e, DEVID_EINVAL,
				    "azure-dps: iotHubs[%zu] is an IoT hub host name", i);
		}
	}
	if ((v = json_object_get(config, "allocationPolicy")) != NULL) {
		s = json_string_value(v);
		if (s == NULL ||
		    (strcmp(s, "hashed") != 0 && strcmp(s, "geoLatency") != 0 &&
			strcmp(s, "static") != 0))
			return devid_error_set(e, DEVID_EINVAL,
			    "azure-dps: allocationPolicy is hashed, geoLatency or static (custom "
			    "allocation needs a function devid does not configure)");
		if (strcmp(s, "static") == 0 && json_array_size(hubs) != 1)
			return devid_error_set(e, DEVID_EINVAL,
			    "azure-dps: allocationPolicy static names exactly one of iotHubs");
	}
	if ((v = json_object_get(config, "initialTwin")) != NULL) {
		if (!json_is_object(v))
			return devid_error_set(e, DEVID_EINVAL,
			    "azure-dps: initialTwin is an object {\"tags\",\"properties\"}");
		json_object_foreach(v, k, hubs)
		{
			if ((strcmp(k, "tags") != 0 && strcmp(k, "properties") != 0) ||
			    !json_is_object(hubs))
				return devid_error_set(e, DEVID_EINVAL,
				    "azure-dps: initialTwin holds only the objects tags and "
				    "properties");
		}
		dump = json_dump_compact(v);
		if (dump == NULL || strlen(dump) > DPS_MAX_TWIN) {
			free(dump);
			return devid_error_set(e, DEVID_EINVAL,
			    "azure-dps: initialTwin is at most %d bytes", DPS_MAX_TWIN);
		}
		free(dump);
	}
	if ((v = json_object_get(config, "apiVersion")) != NULL &&
	    (!json_is_string(v) || !dps_token_ok(json_string_value(v), 32, "-")))
		return devid_error_set(
		    e, DEVID_EINVAL, "azure-dps: apiVersion is like \"%s\"", DPS_DEFAULT_API);
	if ((v = json_object_get(config, "operationsPerMinute")) != NULL &&
	    (!json_is_number(v) || json_number_value(v) < 1.0 ||
		json_number_value(v) > DPS_MAX_OPM))
		return devid_error_set(e, DEVID_EINVAL,
		    "azure-dps: operationsPerMinute is a number from 1 to %.0f", DPS_MAX_OPM);
	return connector_check_rate(config, "azure-dps", e);
}

static json_t *
dps_redact(const json_t *config)
{
	json_t *r = json_deep_copy(config);

	/* the key is never shown again, only that there is one */
	if (r != NULL && json_object_del(r, "policyKey") == 0)
		json_object_set_new(r, "policyKeySet", json_true());
	return r;
}

/* --- pacing: operationsPerMinute per DPS host, shared by the threads of this process ------ */

struct pacer {
	char host[DPS_MAX_HOST + 1];
	double rate; /* operations a second */
	double tokens; /* below 0: operations already promised to callers that are waiting */
	double at; /* when tokens was last brought up to date (monotonic seconds) */
};

static pthread_mutex_t pacers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pacer pacers[DPS_MAX_PACERS];
static size_t npacers;

static double
dmin(double a, double b)
{
	return a < b ? a : b;
}

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_secs(double s)
{
	struct timespec ts;

	if (s <= 0.0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0)
		;
}

/*
 * Takes k operations of host's quota, a bucket of AZURE_DPS_MAX_BULK operations refilled at
 * rate a second: the seconds the caller must wait before it may use them. A new bucket starts
 * empty, so a server restarted in the middle of a drain does not burst into a quota its
 * previous life used up.
 */
static double
dps_pace(const char *host, double rate, size_t k)
{
	struct pacer *p = NULL;
	double now, wait;

	pthread_mutex_lock(&pacers_lock);
	now = now_mono();
	for (size_t i = 0; i < npacers; i++)
		if (strcmp(pacers[i].host, host) == 0)
			p = &pacers[i];
	if (p == NULL) {
		if (npacers < DPS_MAX_PACERS) {
			p = &pacers[npacers++];
		} else { /* forget the bucket idle the longest */
			p = &pacers[0];
			for (size_t i = 1; i < npacers; i++)
				if (pacers[i].at < p->at)
					p = &pacers[i];
		}
		snprintf(p->host, sizeof(p->host), "%s", host);
		p->tokens = 0.0;
		p->at = now;
	}
	p->rate = rate;
	if (now > p->at) {
		p->tokens = dmin((double)AZURE_DPS_MAX_BULK, p->tokens + (now - p->at) * rate);
		p->at = now;
	}
	p->tokens -= (double)k;
	wait = p->tokens < 0.0 ? -p->tokens / rate : 0.0;
	pthread_mutex_unlock(&pacers_lock);
	return wait;
}

/*
 * Sleeps secs before the delivery's next request, the job kept leased to this worker
 * meanwhile (d->hold): a chunk paced at a low rate, or waiting out a Retry-After, may take
 * far longer than the lease, and a lease that ran out would let another worker send the
 * same chunk at once, before the Retry-After and over the quota. Not 0: the job is no
 * longer ours, so the delivery stops.
 */
static int
dps_wait(const struct delivery *d, double secs, struct devid_error *e)
{
	int rc;

	if (d->hold != NULL && (rc = d->hold(d->ctx, secs, e)) != 0)
		return rc;
	sleep_secs(secs);
	return 0;
}

/* Seconds before retry `tries` (1, 2, ...): base * 2^(tries-1), capped at 16, times 0.5-1.5. */
static double
dps_backoff(int tries, double base)
{
	unsigned char r = 128;
	double d = base;

	for (int i = 1; i < tries && d < 16.0; i++)
		d *= 2.0;
	RAND_bytes(&r, 1);
	return dmin(d, 16.0) * (0.5 + (double)r / 255.0);
}

/* --- the answer of a bulk call ------------------------------------------------------------ */

int
azure_dps_results_parse(const uint8_t *p, size_t n, const char *const *ids, size_t k, long *codes,
    struct devid_error *e)
{
	json_t *root, *ok, *errs, *v;
	const char *id, *status;
	json_int_t code;
	size_t i, j;
	int rc = DEVID_EINVAL;

	for (i = 0; i < k; i++)
		codes[i] = 0;
	if ((root = json_parse(p, n, "azure-dps answer", e)) == NULL)
		return DEVID_EINVAL;
	if (!json_is_object(root) || !json_is_boolean(ok = json_object_get(root, "isSuccessful"))) {
		devid_error_set(e, rc, "azure-dps answer: not a BulkEnrollmentOperationResult");
		goto out;
	}
	errs = json_object_get(root, "errors");
	if (errs != NULL && (!json_is_array(errs) || json_array_size(errs) > k)) {
		devid_error_set(
		    e, rc, "azure-dps answer: \"errors\" is an array of at most %zu", k);
		goto out;
	}
	json_array_foreach(errs, i, v)
	{
		if (!json_is_object(v)) {
			devid_error_set(e, rc, "azure-dps answer: error %zu is not an object", i);
			goto out;
		}
		if (json_get_str(v, "registrationId", 1, DPS_MAX_REGID, true, &id, NULL,
			"azure-dps answer error", e) != 0 ||
		    json_get_int(v, "errorCode", 0, 999999, &code, "azure-dps answer error", e) !=
			0 ||
		    json_get_str(v, "errorStatus", 0, 4096, true, &status, NULL,
			"azure-dps answer error", e) != 0)
			goto out;
		for (j = 0; j < k && strcasecmp(ids[j], id) != 0; j++)
			;
		if (j == k) {
			devid_error_set(e, rc,
			    "azure-dps answer: error %zu names a registration id that was not sent",
			    i);
			goto out;
		}
		codes[j] = code >= 100000 ? (long)code : 500000;
	}
	if (!json_boolean_value(ok) && json_array_size(errs) == 0)
		for (i = 0; i < k; i++)
			codes[i] = 500000;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* --- delivery ----------------------------------------------------------------------------- */

enum item_state { ITEM_PENDING, ITEM_DONE, ITEM_FAILED };

struct item {
	char id[DPS_MAX_REGID + 1]; /* the registration id: the UDID */
	json_t *enrollment; /* IndividualEnrollment */
	enum item_state state;
	int tries;
	long code; /* the last DPS error code */
};

struct dps_call {
	const json_t *config;
	const struct delivery *d;
	const char *mode, *endpoint, *policy, *key;
	char host[DPS_MAX_HOST + 1];
	double rate; /* operations a second */
	char *url;
};

/*
 * The registration id of a device, its UDID: a chip's certificate's CN must be it; a TPM's
 * EK certificate names no device (its subject is empty or a placeholder).
 */
static int
dps_regid(const struct delivery_device *v, char id[DPS_MAX_REGID + 1], struct devid_error *e)
{
	const unsigned char *q = v->cert_der;
	X509 *x = d2i_X509(NULL, &q, (long)v->cert_len);
	unsigned char *cn = NULL;
	int i, n = -1, rc = DEVID_EINVAL;

	if (x == NULL || q != v->cert_der + v->cert_len) {
		devid_error_set(e, rc, "azure-dps: %s: the certificate is not DER", v->udid);
		goto out;
	}
	if (v->tpm) {
		if (!dps_token_ok(v->udid, DPS_MAX_REGID, "._-")) {
			devid_error_set(e, rc, "azure-dps: %s: not a registration id", v->udid);
			goto out;
		}
		snprintf(id, DPS_MAX_REGID + 1, "%s", v->udid);
		rc = 0;
		goto out;
	}
	if ((i = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_commonName, -1)) < 0 ||
	    (n = ASN1_STRING_to_UTF8(&cn,
		 X509_NAME_ENTRY_get_data(X509_NAME_get_entry(X509_get_subject_name(x), i)))) < 0) {
		devid_error_set(e, rc, "azure-dps: %s: the certificate has no CN", v->udid);
		goto out;
	}
	if ((size_t)n != strlen(v->udid) || memcmp(cn, v->udid, (size_t)n) != 0 ||
	    !dps_token_ok(v->udid, DPS_MAX_REGID, "._-")) {
		devid_error_set(e, rc,
		    "azure-dps: %s: the certificate's CN is not the UDID (the registration id)",
		    v->udid);
		goto out;
	}
	memcpy(id, cn, (size_t)n);
	id[n] = '\0';
	rc = 0;
out:
	OPENSSL_free(cn);
	X509_free(x);
	return rc;
}

/*
 * A TPM's AttestationMechanism: type tpm, endorsementKey the base64 of its EK's TPM2B_PUBLIC
 * (what tpm2_readpublic of the EK writes, and the Azure SDKs send). NULL with e set.
 */
static json_t *
dps_tpm_attestation(const struct delivery_device *v, struct devid_error *e)
{
	const unsigned char *q = v->cert_der;
	X509 *x = d2i_X509(NULL, &q, (long)v->cert_len);
	uint8_t pub[TPM2_EK_PUBLIC_MAX];
	size_t len;
	char *b64 = NULL;
	json_t *j = NULL;

	if (x == NULL || X509_get0_pubkey(x) == NULL) {
		devid_error_set(
		    e, DEVID_EINVAL, "azure-dps: %s: the EK certificate is not DER", v->udid);
		goto out;
	}
	if (tpm2_ek_public(X509_get0_pubkey(x), pub, &len, e) != 0) {
		devid_error_prefix(e, "azure-dps: %s", v->udid);
		goto out;
	}
	if ((b64 = b64_encode(pub, len)) == NULL ||
	    (j = json_pack("{s:s, s:{s:s}}", "type", "tpm", "tpm", "endorsementKey", b64)) == NULL)
		devid_error_set(e, DEVID_ENOMEM, "azure-dps: out of memory");
out:
	free(b64);
	X509_free(x);
	return j;
}

/* A chip's AttestationMechanism: type x509, its certificate as the primary one. */
static json_t *
dps_x509_attestation(const struct delivery_device *v, struct devid_error *e)
{
	json_t *pem = delivery_pem(v), *j;

	j = pem != NULL ? json_pack("{s:s, s:{s:{s:{s:o}}}}", "type", "x509", "x509",
			      "clientCertificates", "primary", "certificate", pem)
			: NULL;
	if (j == NULL)
		devid_error_set(e, DEVID_ENOMEM, "azure-dps: out of memory");
	return j;
}

static json_t *
dps_enrollment(const struct dps_call *c, const struct delivery_device *v, const char *id,
    struct devid_error *e)
{
	const char *status = c->d->remove && c->d->revoke ? "disabled" : "enabled";
	json_t *att = v->tpm ? dps_tpm_attestation(v, e) : dps_x509_attestation(v, e), *j, *x;

	if (att == NULL)
		return NULL;
	j = json_pack("{s:s, s:o, s:s}", "registrationId", id, "attestation", att,
	    "provisioningStatus", status);
	if (j == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "azure-dps: out of memory");
		return NULL;
	}
	if ((x = json_object_get(c->config, "iotHubs")) != NULL)
		json_object_set(j, "iotHubs", x);
	if ((x = json_object_get(c->config, "allocationPolicy")) != NULL)
		json_object_set(j, "allocationPolicy", x);
	if ((x = json_object_get(c->config, "initialTwin")) != NULL)
		json_object_set(j, "initialTwin", x);
	return j;
}

/* Whether an item's error code means the enrollment is already as this call wants it. */
static bool
dps_code_done(const char *mode, long code)
{
	long http = code / 1000;

	if (code == 0)
		return true;
	if (strcmp(mode, "create") == 0)
		return http == 409; /* already exists: an earlier attempt made it */
	/* not found: nothing to delete, or nothing a revoked device could register with */
	return http == 404;
}

static bool
dps_code_retry(long code)
{
	return code / 1000 == 429 || code / 1000 >= 500;
}

/* A short reason from an error answer (ProvisioningServiceErrorDetails), into buf. */
static void
dps_error_reason(const struct dynbuf *b, char *buf, size_t len)
{
	json_t *root = b->len > 0 ? json_parse(b->p, b->len, "azure-dps error", NULL) : NULL;
	const char *m = json_string_value(json_object_get(root, "message"));
	json_t *code = json_object_get(root, "errorCode");

	if (json_is_integer(code))
		snprintf(buf, len, " (errorCode %lld: %.160s)", (long long)json_integer_value(code),
		    m != NULL ? m : "");
	else
		buf[0] = '\0';
	json_decref(root);
}

/*
 * One bulk call of items b[0..k), retried on 429 (after Retry-After, else backoff), on 5xx
 * and when no answer came, at most DPS_TRIES times. 0 with each item's code set; else the
 * call failed (e says why) and the chunk goes back to the outbox.
 */
static int
dps_bulk(struct dps_call *c, struct item **b, size_t k, struct devid_error *e)
{
	json_t *arr = json_array(), *body = NULL;
	const char *ids[AZURE_DPS_MAX_BULK];
	long codes[AZURE_DPS_MAX_BULK];
	char *text = NULL, *sas = NULL, auth[4096], why[200];
	const char *headers[] = {auth, "Accept: application/json"};
	struct connector_http h;
	long status, retry_after;
	struct dynbuf ans;
	double wait;
	int rc = DEVID_ENOMEM, tries;

	dynbuf_init(&ans, AZURE_DPS_MAX_ANSWER);
	for (size_t i = 0; arr != NULL && i < k; i++) {
		ids[i] = b[i]->id;
		json_array_append(arr, b[i]->enrollment);
	}
	body = json_pack("{s:s, s:o}", "mode", c->mode, "enrollments", arr);
	if (body == NULL || (text = json_dump_compact(body)) == NULL) {
		devid_error_set(e, rc, "azure-dps: cannot build the request");
		goto out;
	}
	for (tries = 1;; tries++) {
		if ((rc = dps_wait(c->d, dps_pace(c->host, c->rate, k), e)) != 0)
			goto out;
		if (c->d->throttle != NULL)
			for (size_t i = 0; i < k; i++)
				if ((rc = c->d->throttle(c->d->ctx, "enrollments", c->rate, e)) !=
				    0)
					goto out;
		free(sas);
		if ((rc = azure_sas_token(c->host, c->policy, c->key,
			 (int64_t)time(NULL) + DPS_SAS_LIFETIME, &sas, e)) != 0)
			goto out;
		snprintf(auth, sizeof(auth), "Authorization: %s", sas);
		dynbuf_reset(&ans);
		h = (struct connector_http){.method = "POST",
		    .url = c->url,
		    .headers = headers,
		    .nheaders = 2,
		    .body = text,
		    .body_len = strlen(text),
		    .answer = &ans};
		rc = connector_request("azure-dps", &h, e);
		status = h.status;
		retry_after = connector_retry_after(&h);
		connector_http_release(&h);
		if (rc == 0 && status == 200) {
			if ((rc = azure_dps_results_parse(ans.p, ans.len, ids, k, codes, e)) != 0)
				goto out;
			for (size_t i = 0; i < k; i++)
				b[i]->code = codes[i];
			goto out;
		}
		if (rc == 0 && status != 429 && status < 500) {
			dps_error_reason(&ans, why, sizeof(why));
			rc = devid_error_set(e, DEVID_EIO,
			    "azure-dps: the service answered HTTP %ld%s", status, why);
			goto out;
		}
		if (rc == 0) {
			dps_error_reason(&ans, why, sizeof(why));
			devid_error_set(e, DEVID_EIO, "azure-dps: the service answered HTTP %ld%s",
			    status, why);
		}
		rc = DEVID_EIO;
		if (tries >= DPS_TRIES)
			goto out;
		if (status == 429 && retry_after >= 0) {
			if (retry_after > DPS_MAX_RETRY_AFTER) {
				/* the outbox's own backoff may be shorter: it is told when */
				if (c->d->defer != NULL)
					c->d->defer(c->d->ctx, retry_after);
				devid_error_set(e, rc,
				    "azure-dps: throttled, Retry-After %ld s: the outbox tries "
				    "later",
				    retry_after);
				goto out;
			}
			wait = (double)retry_after;
		} else {
			wait = dps_backoff(tries, status == 429 ? 1.0 : 0.5);
		}
		if ((rc = dps_wait(c->d, wait, e)) != 0)
			goto out;
	}
out:
	free(sas);
	free(text);
	json_decref(body);
	dynbuf_release(&ans);
	return rc;
}

static int
dps_deliver(const json_t *config, const struct delivery *d, struct devid_error *e)
{
	struct dps_call c = {.config = config, .d = d};
	struct item *items = NULL, *b[AZURE_DPS_MAX_BULK];
	struct devid_error ie;
	struct dynbuf url;
	size_t i, k, failed = 0, pending;
	char first[300] = "";
	int rc = DEVID_EINVAL, round;

	dynbuf_init(&url, CONNECTOR_MAX_URL + 256);
	c.mode = !d->remove ? "create" : d->revoke ? "update" : "delete";
	c.endpoint = json_string_value(json_object_get(config, "endpoint"));
	c.policy = json_string_value(json_object_get(config, "policyName"));
	c.key = json_string_value(json_object_get(config, "policyKey"));
	c.rate = dps_opm(config) / 60.0;
	if (c.endpoint == NULL || c.policy == NULL || c.key == NULL ||
	    dps_host(c.endpoint, c.host, e) != 0) {
		rc = devid_error_set(e, rc, "azure-dps: the connector's config is incomplete");
		goto out;
	}
	if (dynbuf_add(&url, c.endpoint,
		strlen(c.endpoint) - (c.endpoint[strlen(c.endpoint) - 1] == '/')) != 0 ||
	    dynbuf_addstr(&url, "/enrollments?api-version=") != 0 ||
	    pct_encode(&url, dps_api(config), strlen(dps_api(config)), false) != 0 ||
	    (items = calloc(d->n > 0 ? d->n : 1, sizeof(*items))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "azure-dps: out of memory");
		goto out;
	}
	c.url = (char *)url.p;
	pending = 0;
	for (i = 0; i < d->n; i++) {
		devid_error_clear(&ie);
		if (dps_regid(&d->devices[i], items[i].id, &ie) != 0 ||
		    (items[i].enrollment = dps_enrollment(&c, &d->devices[i], items[i].id, &ie)) ==
			NULL) {
			items[i].state = ITEM_FAILED;
			if (ie.msg[0] == '\0')
				devid_error_set(&ie, DEVID_ENOMEM, "azure-dps: out of memory");
			if (d->result != NULL)
				d->result(d->ctx, i, DELIVERY_FAILED, ie.msg);
			if (failed++ == 0)
				snprintf(first, sizeof(first), "%s", ie.msg);
			continue;
		}
		pending++;
	}
	/*
	 * Rounds: every pending enrollment once, in calls of 10. Only those that failed in a way
	 * worth retrying (429 or 5xx inside a 200) go again in the next round, after a backoff.
	 */
	for (round = 1; pending > 0; round++) {
		if (round > 1 && (rc = dps_wait(d, dps_backoff(round - 1, 0.5), e)) != 0)
			goto out;
		for (i = 0; i < d->n;) {
			for (k = 0; i < d->n && k < AZURE_DPS_MAX_BULK; i++)
				if (items[i].state == ITEM_PENDING && items[i].tries < round)
					b[k++] = &items[i];
			if (k == 0)
				break;
			if ((rc = dps_bulk(&c, b, k, e)) != 0)
				goto out;
			for (size_t j = 0; j < k; j++) {
				struct item *it = b[j];
				size_t at = (size_t)(it - items);

				it->tries++;
				if (dps_code_done(c.mode, it->code)) {
					it->state = ITEM_DONE;
					pending--;
					if (d->result != NULL)
						d->result(d->ctx, at, DELIVERY_OK, NULL);
				} else if (!dps_code_retry(it->code) ||
				    it->tries >= DPS_ITEM_TRIES) {
					it->state = ITEM_FAILED;
					pending--;
					devid_error_set(&ie, DEVID_EIO,
					    "azure-dps: %s: %s refused with DPS error %ld", it->id,
					    c.mode, it->code);
					if (d->result != NULL)
						d->result(d->ctx, at, DELIVERY_FAILED, ie.msg);
					if (failed++ == 0)
						snprintf(first, sizeof(first), "%s", ie.msg);
				}
			}
		}
	}
	if (failed > 0) {
		rc = devid_error_set(e, DEVID_EIO,
		    "azure-dps: %zu of %zu devices failed (first: %s)", failed, d->n, first);
		goto out;
	}
	rc = 0;
out:
	for (i = 0; items != NULL && i < d->n; i++)
		json_decref(items[i].enrollment);
	free(items);
	dynbuf_release(&url);
	return rc;
}

/* A query of the individual enrollments, one item a page: a 200 means the policy works. */
static int
dps_test(const json_t *config, const char *tenant, char *msg, size_t len, struct devid_error *e)
{
	const char *endpoint = json_string_value(json_object_get(config, "endpoint"));
	const char *policy = json_string_value(json_object_get(config, "policyName"));
	const char *key = json_string_value(json_object_get(config, "policyKey"));
	static const char body[] = "{\"query\":\"SELECT * FROM enrollments\"}";
	char host[DPS_MAX_HOST + 1], auth[4096], why[200], *sas = NULL;
	const char *headers[] = {auth, "Accept: application/json", "x-ms-max-item-count: 1"};
	struct connector_http h = {0};
	struct dynbuf url, ans;
	int rc = DEVID_EINVAL;

	(void)tenant;
	dynbuf_init(&url, CONNECTOR_MAX_URL + 256);
	dynbuf_init(&ans, AZURE_DPS_MAX_ANSWER);
	if (endpoint == NULL || policy == NULL || key == NULL || dps_host(endpoint, host, e) != 0) {
		rc = devid_error_set(e, rc, "azure-dps: the connector's config is incomplete");
		goto out;
	}
	if (dynbuf_add(
		&url, endpoint, strlen(endpoint) - (endpoint[strlen(endpoint) - 1] == '/')) != 0 ||
	    dynbuf_addstr(&url, "/enrollments/query?api-version=") != 0 ||
	    pct_encode(&url, dps_api(config), strlen(dps_api(config)), false) != 0) {
		rc = devid_error_set(e, DEVID_ENOMEM, "azure-dps: out of memory");
		goto out;
	}
	if ((rc = azure_sas_token(
		 host, policy, key, (int64_t)time(NULL) + DPS_SAS_LIFETIME, &sas, e)) != 0)
		goto out;
	snprintf(auth, sizeof(auth), "Authorization: %s", sas);
	h = (struct connector_http){.method = "POST",
	    .url = (const char *)url.p,
	    .headers = headers,
	    .nheaders = 3,
	    .body = body,
	    .body_len = sizeof(body) - 1,
	    .answer = &ans};
	if ((rc = connector_request("azure-dps", &h, e)) != 0)
		goto out;
	dps_error_reason(&ans, why, sizeof(why));
	if (h.status == 200)
		snprintf(msg, len, "enrollments/query: HTTP 200");
	else
		rc = devid_error_set(e, DEVID_EIO,
		    "azure-dps: enrollments/query: the service answered HTTP %ld%s", h.status, why);
out:
	connector_http_release(&h);
	OPENSSL_cleanse(auth, sizeof(auth));
	free(sas);
	dynbuf_release(&url);
	dynbuf_release(&ans);
	return rc;
}

static const char *const dps_secrets[] = {"policyKey", NULL};

const struct connector_type connector_azure_dps = {
    .name = "azure-dps",
    .validate = dps_validate,
    .redact = dps_redact,
    .deliver = dps_deliver,
    .secret_fields = dps_secrets,
    .test = dps_test,
};
