/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aws_iot.c - the aws-iot connector: each device's birth certificate registered in AWS IoT
 * Core's registry (no CA), a thing named after the UDID, the certificate attached to the thing
 * and to an IoT policy; remove undoes each step. The control-plane REST API of the
 * 2015-05-28 model (botocore's iot/2015-05-28/service-2.json), SigV4-signed (sigv4.c), one
 * device a call, every call through delivery.throttle at its own rate. docs/connectors.md.
 *
 * Outcomes: 409 ResourceAlreadyExists on an add and 404 ResourceNotFound on a remove are
 * success (a retried chunk meets what the last attempt did). ThrottlingException and 5xx are
 * retried here a few times with backoff; then, as for a transport error, a bad credential
 * (401/403) or a missing policy, the chunk stops and fails (the outbox retries it whole). A
 * rejection of the device itself (the certificate refused, a state AWS will not change) marks
 * that device failed and the chunk moves on: a retry would meet the same answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "connectors/connector.h"
#include "connectors/sigv4.h"
#include "lib/base64.h"
#include "lib/json.h"
#include "lib/banned.h"

#define AWS_TYPE "aws-iot"
#define AWS_MAX_TRIES 4 /* a throttled or 5xx call: this many tries in the chunk ... */
#define AWS_BACKOFF_MS 250 /* ... after 250, 500, 1000 ms (and up to as much jitter) */
#define AWS_DELETE_CONFLICT_TRIES 12 /* detach is asynchronous: DeleteCertificate waits ... */
#define AWS_DELETE_CONFLICT_MS 250 /* ... 250 ms, doubling to 2 s: about 18 s in all */
#define AWS_MAX_ANSWER (64 * 1024)
#define AWS_MAX_ATTRIBUTES 50 /* AWS: 3 without a thing type, 50 with one */
#define AWS_THING_MAX 128
#define AWS_MSG_MAX 160 /* of AWS's message, in a device's result */

/* The calls made and the rate each is assumed to take (AWS IoT Core's default quotas). */
static const struct {
	const char *call;
	double rate;
} aws_rates[] = {
    {"RegisterCertificateWithoutCA", 10},
    {"DescribeCertificate", 10},
    {"CreateThing", 100},
    {"AttachThingPrincipal", 100},
    {"AttachPolicy", 15},
    {"UpdateCertificate", 10},
    {"DetachThingPrincipal", 100},
    {"DetachPolicy", 15},
    {"DeleteCertificate", 10},
    {"DeleteThing", 100},
};

static const char *const aws_members[] = {"region", "endpoint", "accessKeyId", "secretAccessKey",
    "sessionToken", "policyName", "thingPrefix", "thingType", "attributes", "signingName", "rates",
    NULL};

static bool
chars_in(const char *s, const char *extra)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			(*s >= '0' && *s <= '9') || strchr(extra, *s) != NULL))
			return false;
	return true;
}

/* An optional string member: absent is fine; present must fit [min, max] and the pattern. */
static int
opt_str(const json_t *c, const char *key, size_t min, size_t max, const char *extra,
    const char **out, struct devid_error *e)
{
	int rc = json_get_str(c, key, min, max, false, out, NULL, AWS_TYPE, e);

	if (rc == DEVID_ENOTFOUND)
		return 0;
	if (rc != 0)
		return DEVID_EINVAL;
	if (extra != NULL && !chars_in(*out, extra))
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: \"%s\" has characters AWS refuses", AWS_TYPE, key);
	return 0;
}

static double
aws_rate(const json_t *config, const char *call)
{
	json_t *r = json_object_get(json_object_get(config, "rates"), call);

	if (json_is_number(r))
		return json_number_value(r);
	for (size_t i = 0; i < sizeof(aws_rates) / sizeof(aws_rates[0]); i++)
		if (strcmp(aws_rates[i].call, call) == 0)
			return aws_rates[i].rate;
	return 1;
}

static int
aws_validate(const json_t *config, struct devid_error *e)
{
	const char *s = NULL;
	const char *prefix = NULL;
	json_t *attrs = NULL, *rates = NULL, *v;
	const char *k;

	if (!json_is_object(config))
		return devid_error_set(e, DEVID_EINVAL, "%s: config is an object", AWS_TYPE);
	json_object_foreach((json_t *)config, k, v)
	{
		bool known = false;

		for (size_t i = 0; aws_members[i] != NULL; i++)
			known |= strcmp(aws_members[i], k) == 0;
		if (!known)
			return devid_error_set(
			    e, DEVID_EINVAL, "%s: unknown config member \"%s\"", AWS_TYPE, k);
	}
	if (json_get_str(config, "region", 1, 32, true, &s, NULL, AWS_TYPE, e) != 0)
		return DEVID_EINVAL;
	if (!chars_in(s, "-"))
		return devid_error_set(e, DEVID_EINVAL, "%s: region is like eu-west-1", AWS_TYPE);
	if (json_get_str(config, "accessKeyId", 16, 128, true, &s, NULL, AWS_TYPE, e) != 0)
		return DEVID_EINVAL;
	if (!chars_in(s, ""))
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: accessKeyId is letters and digits", AWS_TYPE);
	if (json_get_str(config, "secretAccessKey", 16, 256, true, &s, NULL, AWS_TYPE, e) != 0 ||
	    opt_str(config, "sessionToken", 1, 8192, NULL, &s, e) != 0)
		return DEVID_EINVAL;
	if (json_get_str(config, "policyName", 1, 128, true, &s, NULL, AWS_TYPE, e) != 0)
		return DEVID_EINVAL;
	if (!chars_in(s, "_+=,.@-"))
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: policyName is [\\w+=,.@-]{1,128}", AWS_TYPE);
	if (opt_str(config, "thingPrefix", 0, AWS_THING_MAX - 64, ":_-", &prefix, e) != 0 ||
	    opt_str(config, "thingType", 1, 128, ":_-", &s, e) != 0 ||
	    opt_str(config, "signingName", 1, 64, "-", &s, e) != 0)
		return DEVID_EINVAL;
	if (json_object_get(config, "endpoint") != NULL) {
		const char *url, *host;
		size_t n;

		if (json_get_str(config, "endpoint", 8, CONNECTOR_MAX_URL, true, &url, NULL,
			AWS_TYPE, e) != 0)
			return DEVID_EINVAL;
		host = strncmp(url, "https://", 8) == 0 ? url + 8
		    : strncmp(url, "http://", 7) == 0   ? url + 7
							: NULL;
		n = host != NULL ? strlen(host) : 0;
		if (n > 0 && host[n - 1] == '/')
			n--;
		if (n == 0 || strcspn(host, "/?#@") < n)
			return devid_error_set(e, DEVID_EINVAL,
			    "%s: endpoint is http(s)://host[:port], without a path", AWS_TYPE);
	}
	if (json_get_obj(config, "attributes", false, &attrs, AWS_TYPE, e) == DEVID_EINVAL)
		return DEVID_EINVAL;
	if (attrs != NULL) {
		if (!json_is_object(attrs) || json_object_size(attrs) > AWS_MAX_ATTRIBUTES)
			return devid_error_set(e, DEVID_EINVAL,
			    "%s: attributes is an object of at most %d strings", AWS_TYPE,
			    AWS_MAX_ATTRIBUTES);
		json_object_foreach(attrs, k, v)
		{
			if (strlen(k) == 0 || strlen(k) > 128 || !chars_in(k, "_.,@/:#-") ||
			    !json_is_string(v) || json_string_length(v) > 800 ||
			    !chars_in(json_string_value(v), "_.,@/:#-"))
				return devid_error_set(e, DEVID_EINVAL,
				    "%s: attribute \"%s\": names [a-zA-Z0-9_.,@/:#-]{1,128}, "
				    "values "
				    "[a-zA-Z0-9_.,@/:#-]{0,800}",
				    AWS_TYPE, k);
		}
	}
	if (json_get_obj(config, "rates", false, &rates, AWS_TYPE, e) == DEVID_EINVAL)
		return DEVID_EINVAL;
	if (rates != NULL) {
		if (!json_is_object(rates))
			return devid_error_set(e, DEVID_EINVAL, "%s: rates is an object", AWS_TYPE);
		json_object_foreach(rates, k, v)
		{
			bool known = false;

			for (size_t i = 0; i < sizeof(aws_rates) / sizeof(aws_rates[0]); i++)
				known |= strcmp(aws_rates[i].call, k) == 0;
			if (!known || !json_is_number(v) || json_number_value(v) <= 0.0 ||
			    json_number_value(v) > CONNECTOR_MAX_RATE)
				return devid_error_set(e, DEVID_EINVAL,
				    "%s: rates.%s: a call this connector makes, at a rate above 0 "
				    "and "
				    "at most %d a second",
				    AWS_TYPE, k, CONNECTOR_MAX_RATE);
		}
	}
	return 0;
}

static json_t *
aws_redact(const json_t *config)
{
	json_t *shown = json_deep_copy(config);

	if (shown == NULL)
		return json_object();
	/* the secrets are never shown again, only that there are some */
	json_object_del(shown, "secretAccessKey");
	json_object_set_new(shown, "secretAccessKeySet", json_true());
	if (json_object_del(shown, "sessionToken") == 0)
		json_object_set_new(shown, "sessionTokenSet", json_true());
	return shown;
}

/* --- one signed call ------------------------------------------------------------------- */

struct aws {
	const json_t *config;
	const struct delivery *d;
	struct sigv4_key key;
	const char *token; /* may be NULL */
	char base[CONNECTOR_MAX_URL + 1]; /* scheme://authority */
	char host[CONNECTOR_MAX_URL + 1];
	const char *policy;
};

/* What a call got back: the status, the error type (empty on success), the JSON body. */
struct aws_answer {
	long status;
	char type[96];
	json_t *body; /* may be NULL */
};

static void
aws_answer_release(struct aws_answer *a)
{
	json_decref(a->body);
	a->body = NULL;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

static bool
retryable(const struct aws_answer *a)
{
	return a->status >= 500 || a->status == 429 ||
	    (a->status == 400 && strcmp(a->type, "ThrottlingException") == 0);
}

/*
 * Percent-encodes a path segment (everything but RFC 3986 unreserved), as botocore does,
 * into out; len is at least three times strlen(s) + 1 at every call, so it always fits.
 */
static void
seg_encode(const char *s, char *out, size_t len)
{
	struct dynbuf b;

	dynbuf_init(&b, len - 1);
	snprintf(out, len, "%s", pct_encode(&b, s, strlen(s), false) == 0 ? dynbuf_str(&b) : "");
	dynbuf_release(&b);
}

/*
 * One API call: throttled, signed, sent; ThrottlingException and 5xx tried again with
 * backoff. 0 with the answer in *a (any status), or DEVID_EIO when no usable answer came.
 */
static int
aws_call(struct aws *x, const char *call, const char *method, const char *path, const char *query,
    const char *principal, const json_t *body, struct aws_answer *a, struct devid_error *e)
{
	char date[SIGV4_DATE_LEN + 1], url[2 * CONNECTOR_MAX_URL + 512];
	char h_host[CONNECTOR_MAX_URL + 16], h_date[64], h_auth[1024], *h_principal = NULL;
	char *h_token = NULL, *text = NULL;
	struct sigv4_header sh[5];
	const char *hl[5];
	struct dynbuf authz, answer;
	int rc = DEVID_EIO;

	memset(a, 0, sizeof(*a));
	dynbuf_init(&authz, 2048);
	dynbuf_init(&answer, AWS_MAX_ANSWER);
	if (body != NULL && (text = json_dump_compact(body)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", AWS_TYPE);
		goto out;
	}
	snprintf(url, sizeof(url), "%s%s%s%s", x->base, path, query ? "?" : "", query ? query : "");
	if (principal != NULL && asprintf(&h_principal, "x-amzn-principal: %s", principal) < 0)
		h_principal = NULL;
	if (x->token != NULL && asprintf(&h_token, "X-Amz-Security-Token: %s", x->token) < 0)
		h_token = NULL;
	if ((principal != NULL && h_principal == NULL) || (x->token != NULL && h_token == NULL)) {
		rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", AWS_TYPE);
		goto out;
	}
	for (int attempt = 1;; attempt++) {
		struct connector_http h = {0};
		size_t ns = 0, nh = 0;
		struct devid_error se;

		aws_answer_release(a);
		memset(a, 0, sizeof(*a));
		if (x->d->throttle != NULL &&
		    (rc = x->d->throttle(x->d->ctx, call, aws_rate(x->config, call), e)) != 0)
			goto out;
		sigv4_date(time(NULL), date);
		snprintf(h_host, sizeof(h_host), "Host: %s", x->host);
		snprintf(h_date, sizeof(h_date), "X-Amz-Date: %s", date);
		sh[ns++] = (struct sigv4_header){"host", x->host};
		sh[ns++] = (struct sigv4_header){"x-amz-date", date};
		if (text != NULL)
			sh[ns++] = (struct sigv4_header){"content-type", "application/json"};
		if (principal != NULL)
			sh[ns++] = (struct sigv4_header){"x-amzn-principal", principal};
		if (x->token != NULL)
			sh[ns++] = (struct sigv4_header){"x-amz-security-token", x->token};
		{
			struct sigv4_request r = {.method = method,
			    .path = path,
			    .query = query,
			    .headers = sh,
			    .nheaders = ns,
			    .body = (const uint8_t *)text,
			    .body_len = text ? strlen(text) : 0};

			if ((rc = sigv4_sign(&r, &x->key, date, NULL, NULL, &authz, e)) != 0)
				goto out;
		}
		snprintf(h_auth, sizeof(h_auth), "Authorization: %s", dynbuf_str(&authz));
		hl[nh++] = h_host;
		hl[nh++] = h_date;
		hl[nh++] = h_auth;
		if (h_principal != NULL)
			hl[nh++] = h_principal;
		if (h_token != NULL)
			hl[nh++] = h_token;
		dynbuf_reset(&answer);
		h = (struct connector_http){.method = method,
		    .url = url,
		    .headers = hl,
		    .nheaders = nh,
		    .body = text,
		    .body_len = text ? strlen(text) : 0,
		    .answer = &answer};
		devid_error_clear(&se);
		rc = connector_request(AWS_TYPE, &h, &se);
		if (rc == 0) {
			a->status = h.status;
			/* "ThrottlingException" or "ThrottlingException:http://internal..." */
			connector_header(&h, "x-amzn-ErrorType", a->type, sizeof(a->type));
			a->type[strcspn(a->type, ":")] = '\0';
			if (answer.len > 0)
				a->body = json_loadb((const char *)answer.p, answer.len, 0, NULL);
		}
		connector_http_release(&h);
		if (rc == 0 && !retryable(a))
			break;
		if (attempt == AWS_MAX_TRIES) {
			if (rc != 0)
				devid_error_set(e, DEVID_EIO, "%s: %s: %s", AWS_TYPE, call, se.msg);
			else
				devid_error_set(e, DEVID_EIO, "%s: %s: HTTP %ld %s after %d tries",
				    AWS_TYPE, call, a->status, a->type[0] ? a->type : "", attempt);
			rc = DEVID_EIO;
			goto out;
		}
		{
			unsigned char r = 0;
			long ms = AWS_BACKOFF_MS << (attempt - 1);

			RAND_bytes(&r, 1);
			sleep_ms(ms + (ms * r) / 255);
		}
	}
	rc = 0;
out:
	if (rc != 0)
		aws_answer_release(a);
	free(text);
	free(h_principal);
	if (h_token != NULL) {
		OPENSSL_cleanse(h_token, strlen(h_token));
		free(h_token);
	}
	OPENSSL_cleanse(h_auth, sizeof(h_auth));
	dynbuf_release(&authz);
	dynbuf_release(&answer);
	return rc;
}

/* "HTTP 404 ResourceNotFoundException: message" for a device's result or an error. */
static void
aws_describe(const char *call, const struct aws_answer *a, char *out, size_t len)
{
	const char *msg = json_string_value(json_object_get(a->body, "message"));

	snprintf(out, len, "%s: HTTP %ld %s%s%.*s", call, a->status, a->type[0] ? a->type : "",
	    msg ? ": " : "", AWS_MSG_MAX, msg ? msg : "");
}

static bool
is(const struct aws_answer *a, long status, const char *type)
{
	return a->status == status && (type == NULL || strcmp(a->type, type) == 0);
}

static bool
ok(const struct aws_answer *a)
{
	return a->status >= 200 && a->status <= 299;
}

/*
 * What stops the chunk (rather than failing one device): an answer about the account or the
 * configuration, not about this device (credentials, signature, the policy).
 */
static bool
chunk_wide(const struct aws_answer *a)
{
	return a->status == 401 || a->status == 403 ||
	    strcmp(a->type, "UnauthorizedException") == 0 ||
	    strcmp(a->type, "LimitExceededException") == 0;
}

/* --- add and remove of one device ------------------------------------------------------ */

enum step { STEP_OK, STEP_DEVICE_FAILED, STEP_CHUNK_FAILED };

/* A call's unexpected answer: the device failed, or the chunk (with e set). */
static enum step
unexpected(
    const char *call, const struct aws_answer *a, char *why, size_t len, struct devid_error *e)
{
	aws_describe(call, a, why, len);
	if (chunk_wide(a)) {
		devid_error_set(e, DEVID_EIO, "%s: %s", AWS_TYPE, why);
		return STEP_CHUNK_FAILED;
	}
	return STEP_DEVICE_FAILED;
}

/* The certificate's ARN, as DescribeCertificate tells it; *gone when it does not exist. */
static enum step
aws_cert_arn(struct aws *x, const char *id, char *arn, size_t arnlen, char *status,
    size_t statuslen, bool *gone, char *why, size_t len, struct devid_error *e)
{
	struct aws_answer a;
	char path[128];
	json_t *desc;
	enum step s;

	*gone = false;
	snprintf(path, sizeof(path), "/certificates/%s", id);
	if (aws_call(x, "DescribeCertificate", "GET", path, NULL, NULL, NULL, &a, e) != 0)
		return STEP_CHUNK_FAILED;
	desc = json_object_get(a.body, "certificateDescription");
	if (ok(&a) && json_is_string(json_object_get(desc, "certificateArn"))) {
		snprintf(
		    arn, arnlen, "%s", json_string_value(json_object_get(desc, "certificateArn")));
		snprintf(status, statuslen, "%s",
		    json_is_string(json_object_get(desc, "status"))
			? json_string_value(json_object_get(desc, "status"))
			: "");
		s = STEP_OK;
	} else if (is(&a, 404, NULL)) {
		*gone = true;
		s = STEP_OK;
	} else {
		s = unexpected("DescribeCertificate", &a, why, len, e);
	}
	aws_answer_release(&a);
	return s;
}

static enum step
aws_add(struct aws *x, const struct delivery_device *dev, const char *id, const char *thing,
    char *why, size_t len, struct devid_error *e)
{
	char arn[512] = "", path[512], pol[3 * 128 + 1], status[32];
	json_t *pem = delivery_pem(dev), *body = NULL, *attrs;
	const char *type = json_string_value(json_object_get(x->config, "thingType"));
	struct aws_answer a = {0};
	enum step s = STEP_CHUNK_FAILED;
	bool gone;

	if (pem == NULL ||
	    (body = json_pack("{s:O, s:s}", "certificatePem", pem, "status", "ACTIVE")) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", AWS_TYPE);
		goto out;
	}
	/* 1. RegisterCertificateWithoutCA: the ARN from the answer, or from the 409 */
	if (aws_call(x, "RegisterCertificateWithoutCA", "POST", "/certificate/register-no-ca", NULL,
		NULL, body, &a, e) != 0)
		goto out;
	if (ok(&a) || is(&a, 409, "ResourceAlreadyExistsException")) {
		const char *got = json_string_value(
		    json_object_get(a.body, ok(&a) ? "certificateArn" : "resourceArn"));
		const char *gid = json_string_value(
		    json_object_get(a.body, ok(&a) ? "certificateId" : "resourceId"));
		size_t gl = got ? strlen(got) : 0;

		/* AWS names the certificate by the SHA-256 of its DER: anything else is not ours */
		if (gid != NULL && strcasecmp(gid, id) != 0) {
			snprintf(why, len,
			    "RegisterCertificateWithoutCA: AWS named the certificate %.64s, not %s",
			    gid, id);
			s = STEP_DEVICE_FAILED;
			goto out;
		}
		if (got != NULL && gl > 64 && strcasecmp(got + gl - 64, id) == 0 &&
		    gl < sizeof(arn))
			snprintf(arn, sizeof(arn), "%s", got);
	} else {
		s = unexpected("RegisterCertificateWithoutCA", &a, why, len, e);
		goto out;
	}
	aws_answer_release(&a);
	if (arn[0] == '\0') {
		/* a 409 without the ARN: ask for it */
		if ((s = aws_cert_arn(x, id, arn, sizeof(arn), status, sizeof(status), &gone, why,
			 len, e)) != STEP_OK)
			goto out;
		if (gone) {
			snprintf(why, len,
			    "RegisterCertificateWithoutCA: 409, yet no certificate %s", id);
			s = STEP_DEVICE_FAILED;
			goto out;
		}
	}
	/* 2. CreateThing (an existing thing of the same name is this device's) */
	json_decref(body);
	body = json_object();
	if (type != NULL)
		json_object_set_new(body, "thingTypeName", json_string(type));
	if ((attrs = json_object_get(x->config, "attributes")) != NULL)
		json_object_set_new(
		    body, "attributePayload", json_pack("{s:O}", "attributes", attrs));
	snprintf(path, sizeof(path), "/things/%s", thing);
	if (aws_call(x, "CreateThing", "POST", path, NULL, NULL, body, &a, e) != 0)
		goto out;
	if (!ok(&a) && !is(&a, 409, "ResourceAlreadyExistsException")) {
		s = unexpected("CreateThing", &a, why, len, e);
		goto out;
	}
	aws_answer_release(&a);
	/* 3. AttachThingPrincipal */
	snprintf(path, sizeof(path), "/things/%s/principals", thing);
	if (aws_call(x, "AttachThingPrincipal", "PUT", path, NULL, arn, NULL, &a, e) != 0)
		goto out;
	if (!ok(&a)) {
		s = unexpected("AttachThingPrincipal", &a, why, len, e);
		goto out;
	}
	aws_answer_release(&a);
	/* 4. AttachPolicy: a missing policy is the configuration's fault, not the device's */
	json_decref(body);
	body = json_pack("{s:s}", "target", arn);
	seg_encode(x->policy, pol, sizeof(pol));
	snprintf(path, sizeof(path), "/target-policies/%s", pol);
	if (aws_call(x, "AttachPolicy", "PUT", path, NULL, NULL, body, &a, e) != 0)
		goto out;
	if (!ok(&a)) {
		s = unexpected("AttachPolicy", &a, why, len, e);
		if (is(&a, 404, NULL)) {
			devid_error_set(e, DEVID_EIO, "%s: %s", AWS_TYPE, why);
			s = STEP_CHUNK_FAILED;
		}
		goto out;
	}
	s = STEP_OK;
out:
	aws_answer_release(&a);
	json_decref(body);
	json_decref(pem);
	return s;
}

static enum step
aws_remove(
    struct aws *x, const char *id, const char *thing, char *why, size_t len, struct devid_error *e)
{
	const char *target = x->d->revoke ? "REVOKED" : "INACTIVE";
	char arn[512], status[32], path[512], query[64], pol[3 * 128 + 1];
	struct aws_answer a = {0};
	json_t *body = NULL;
	enum step s;
	bool gone;

	/* 0. the ARN (and whether there is anything to undo) */
	if ((s = aws_cert_arn(
		 x, id, arn, sizeof(arn), status, sizeof(status), &gone, why, len, e)) != STEP_OK)
		return s;
	s = STEP_CHUNK_FAILED;
	if (gone)
		goto thing;
	/* 1. UpdateCertificate: the device can no longer connect from here on */
	if (strcmp(status, target) != 0 && strcmp(status, "REVOKED") != 0) {
		snprintf(path, sizeof(path), "/certificates/%s", id);
		snprintf(query, sizeof(query), "newStatus=%s", target);
		if (aws_call(x, "UpdateCertificate", "PUT", path, query, NULL, NULL, &a, e) != 0)
			goto out;
		/* 406 CertificateStateException: a state AWS will not leave (e.g. REVOKED) */
		if (!ok(&a) && !is(&a, 404, NULL) && !is(&a, 406, NULL)) {
			s = unexpected("UpdateCertificate", &a, why, len, e);
			goto out;
		}
		aws_answer_release(&a);
	}
	/* 2. DetachThingPrincipal (AWS completes it asynchronously) */
	snprintf(path, sizeof(path), "/things/%s/principals", thing);
	if (aws_call(x, "DetachThingPrincipal", "DELETE", path, NULL, arn, NULL, &a, e) != 0)
		goto out;
	if (!ok(&a) && !is(&a, 404, NULL)) {
		s = unexpected("DetachThingPrincipal", &a, why, len, e);
		goto out;
	}
	aws_answer_release(&a);
	/* 3. DetachPolicy */
	body = json_pack("{s:s}", "target", arn);
	seg_encode(x->policy, pol, sizeof(pol));
	snprintf(path, sizeof(path), "/target-policies/%s", pol);
	if (aws_call(x, "DetachPolicy", "POST", path, NULL, NULL, body, &a, e) != 0)
		goto out;
	if (!ok(&a) && !is(&a, 404, NULL)) {
		s = unexpected("DetachPolicy", &a, why, len, e);
		goto out;
	}
	aws_answer_release(&a);
	/* 4. DeleteCertificate, waiting out DeleteConflict while the detach completes */
	snprintf(path, sizeof(path), "/certificates/%s", id);
	for (int i = 0;; i++) {
		long ms = AWS_DELETE_CONFLICT_MS << (i < 3 ? i : 3);

		if (aws_call(x, "DeleteCertificate", "DELETE", path, NULL, NULL, NULL, &a, e) != 0)
			goto out;
		if (ok(&a) || is(&a, 404, NULL))
			break;
		if (!is(&a, 409, "DeleteConflictException") || i + 1 == AWS_DELETE_CONFLICT_TRIES) {
			s = unexpected("DeleteCertificate", &a, why, len, e);
			goto out;
		}
		aws_answer_release(&a);
		sleep_ms(ms);
	}
	aws_answer_release(&a);
thing:
	/* 5. DeleteThing */
	snprintf(path, sizeof(path), "/things/%s", thing);
	if (aws_call(x, "DeleteThing", "DELETE", path, NULL, NULL, NULL, &a, e) != 0)
		goto out;
	if (!ok(&a) && !is(&a, 404, NULL)) {
		s = unexpected("DeleteThing", &a, why, len, e);
		goto out;
	}
	s = STEP_OK;
out:
	aws_answer_release(&a);
	json_decref(body);
	return s;
}

/* Fills x from the config: credentials, endpoint, Host. */
static int
aws_open(struct aws *x, const json_t *config, const struct delivery *d, struct devid_error *e)
{
	const char *region = json_string_value(json_object_get(config, "region"));
	const char *endpoint = json_string_value(json_object_get(config, "endpoint"));
	const char *signing = json_string_value(json_object_get(config, "signingName"));
	const char *auth;
	size_t n;

	memset(x, 0, sizeof(*x));
	x->config = config;
	x->d = d;
	x->key.access_key_id = json_string_value(json_object_get(config, "accessKeyId"));
	x->key.secret_access_key = json_string_value(json_object_get(config, "secretAccessKey"));
	x->key.region = region;
	x->key.service = signing != NULL ? signing : "execute-api";
	x->token = json_string_value(json_object_get(config, "sessionToken"));
	x->policy = json_string_value(json_object_get(config, "policyName"));
	if (region == NULL || x->key.access_key_id == NULL || x->key.secret_access_key == NULL ||
	    x->policy == NULL)
		return devid_error_set(e, DEVID_EINVAL, "%s: the config is incomplete", AWS_TYPE);
	if (endpoint != NULL)
		snprintf(x->base, sizeof(x->base), "%s", endpoint);
	else
		snprintf(x->base, sizeof(x->base), "https://iot.%s.amazonaws.com", region);
	n = strlen(x->base);
	if (n > 0 && x->base[n - 1] == '/')
		x->base[--n] = '\0';
	auth = strstr(x->base, "://");
	snprintf(x->host, sizeof(x->host), "%s", auth != NULL ? auth + 3 : x->base);
	return 0;
}

static int
aws_deliver(const json_t *config, const struct delivery *d, struct devid_error *e)
{
	char prefixed[AWS_THING_MAX + 1], thing[3 * AWS_THING_MAX + 1], id[65], why[512];
	const char *prefix = json_string_value(json_object_get(config, "thingPrefix"));
	struct aws x;
	int rc;

	if ((rc = aws_open(&x, config, d, e)) != 0)
		return rc;
	for (size_t i = 0; i < d->n; i++) {
		const struct delivery_device *dev = &d->devices[i];
		uint8_t md[32];
		unsigned int mdlen = 0;
		enum step s;

		if (EVP_Digest(dev->cert_der, dev->cert_len, md, &mdlen, EVP_sha256(), NULL) != 1)
			return devid_error_set(e, DEVID_ECRYPTO, "%s: SHA-256 failed", AWS_TYPE);
		hex_encode(md, 32, id); /* AWS's certificate id: lowercase hex */
		snprintf(prefixed, sizeof(prefixed), "%s%s", prefix ? prefix : "", dev->udid);
		seg_encode(prefixed, thing, sizeof(thing));
		why[0] = '\0';
		s = d->remove ? aws_remove(&x, id, thing, why, sizeof(why), e)
			      : aws_add(&x, dev, id, thing, why, sizeof(why), e);
		if (s == STEP_CHUNK_FAILED) {
			if (d->result != NULL)
				d->result(d->ctx, i, DELIVERY_FAILED, e->msg);
			return DEVID_EIO;
		}
		if (d->result != NULL)
			d->result(d->ctx, i, s == STEP_OK ? DELIVERY_OK : DELIVERY_FAILED,
			    s == STEP_OK ? NULL : why);
	}
	/* a rejected device stays failed in the job's results; the chunk moves on */
	return 0;
}

/* ListThings of one thing: any 2xx means the credentials, endpoint and region work. */
static int
aws_test(const json_t *config, const char *tenant, char *msg, size_t len, struct devid_error *e)
{
	const struct delivery none = {.tenant = tenant};
	struct aws_answer a;
	struct aws x;
	char why[512];
	int rc;

	if ((rc = aws_open(&x, config, &none, e)) != 0 ||
	    (rc = aws_call(
		 &x, "ListThings", "GET", "/things", "maxResults=1", NULL, NULL, &a, e)) != 0)
		return rc;
	aws_describe("ListThings", &a, why, sizeof(why));
	if (ok(&a))
		snprintf(msg, len, "%s", why);
	else
		rc = devid_error_set(e, DEVID_EIO, "%s: %s", AWS_TYPE, why);
	aws_answer_release(&a);
	return rc;
}

static const char *const aws_secrets[] = {"secretAccessKey", "sessionToken", NULL};

const struct connector_type connector_aws_iot = {
    .name = AWS_TYPE,
    .validate = aws_validate,
    .redact = aws_redact,
    .deliver = aws_deliver,
    .secret_fields = aws_secrets,
    .test = aws_test,
};
