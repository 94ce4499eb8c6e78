/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "connectors/connector.h"
#include "lib/base64.h"
#include "lib/json.h"
#include "lib/banned.h"

static const struct connector_type *const types[] = {
    &connector_webhook,
    &connector_cirrent,
    &connector_mosquitto,
    &connector_azure_dps,
    &connector_aws_iot,
};

static const struct connector_type *
find(const char *type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(types[i]->name, type) == 0)
			return types[i];
	return NULL;
}

static int
validate(const char *type, const json_t *config, struct devid_error *e)
{
	const struct connector_type *t = find(type);
	char known[128] = "";

	if (t == NULL) {
		/* the list comes from the table, so a new type is never missing from it */
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
			    i > 0 ? ", " : "", types[i]->name);
		return devid_error_set(
		    e, DEVID_EINVAL, "unknown connector type \"%s\" (known: %s)", type, known);
	}
	return t->validate(config, e);
}

static json_t *
redact(const char *type, const json_t *config)
{
	const struct connector_type *t = find(type);

	return t != NULL ? t->redact(config) : json_object();
}

static int
deliver(const char *type, const json_t *config, const struct delivery *d, struct devid_error *e)
{
	const struct connector_type *t = find(type);

	if (t == NULL)
		return devid_error_set(e, DEVID_EINVAL, "unknown connector type \"%s\"", type);
	if (d->suspicion != NULL && t != &connector_webhook)
		return 0; /* a notice changes nothing in a cloud: only a webhook is told */
	return t->deliver(config, d, e);
}

int
connector_check_url(const json_t *config, const char *type, struct devid_error *e)
{
	const char *url;

	if (json_get_str(config, "url", 8, CONNECTOR_MAX_URL, true, &url, NULL, type, e) != 0)
		return DEVID_EINVAL;
	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: url must be http:// or https://", type);
	return 0;
}

int
connector_check_rate(const json_t *config, const char *type, struct devid_error *e)
{
	json_t *r = json_object_get(config, "ratePerSecond");

	if (r == NULL)
		return 0;
	if (!json_is_number(r) || json_number_value(r) <= 0.0 ||
	    json_number_value(r) > CONNECTOR_MAX_RATE)
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: ratePerSecond is a number above 0 and at most %d", type,
		    CONNECTOR_MAX_RATE);
	return 0;
}

static const char *const *
secret_fields(const char *type)
{
	const struct connector_type *t = find(type);

	return t != NULL ? t->secret_fields : NULL;
}

static int
test(const char *type, const json_t *config, const char *tenant, bool *ok, char *msg, size_t len,
    struct devid_error *e)
{
	const struct connector_type *t = find(type);
	struct devid_error te;

	*ok = false;
	if (t == NULL)
		return devid_error_set(e, DEVID_EINVAL, "unknown connector type \"%s\"", type);
	if (t->test == NULL)
		return devid_error_set(
		    e, DEVID_ECONFLICT, "the %s contract has no test call", type);
	devid_error_clear(&te);
	snprintf(msg, len, "%s", "");
	if (t->test(config, tenant, msg, len, &te) == 0)
		*ok = true;
	else
		snprintf(msg, len, "%s", te.msg);
	return 0;
}

static const struct provisioner provisioner = {
    .validate = validate,
    .redact = redact,
    .deliver = deliver,
    .secret_fields = secret_fields,
    .test = test,
};

const struct provisioner *
connectors_provisioner(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return &provisioner;
}

static size_t
on_answer(char *p, size_t size, size_t n, void *arg)
{
	struct dynbuf *b = arg;

	return b == NULL || dynbuf_add(b, p, size * n) == 0 ? size * n : 0;
}

/* The answer's headers, kept whole (capped) for connector_header. */
static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct dynbuf *b = arg;

	/* a new status line (after a 100 Continue or a redirect) starts the headers again */
	if (size * n >= 5 && strncmp(p, "HTTP/", 5) == 0)
		dynbuf_reset(b);
	return dynbuf_add(b, p, size * n) == 0 ? size * n : 0;
}

int
connector_request(const char *type, struct connector_http *h, struct devid_error *e)
{
	struct curl_slist *hl = NULL;
	CURLcode cc;
	CURL *curl;
	int rc = DEVID_EIO;

	h->status = 0;
	dynbuf_init(&h->answer_headers, CONNECTOR_MAX_HEADERS);
	if ((curl = curl_easy_init()) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "%s: cannot start curl", type);
	if (h->body != NULL)
		hl = curl_slist_append(hl, "Content-Type: application/json");
	hl = curl_slist_append(hl, "Expect:");
	for (size_t i = 0; i < h->nheaders; i++)
		hl = curl_slist_append(hl, h->headers[i]);
	curl_easy_setopt(curl, CURLOPT_URL, h->url);
	if (h->body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, h->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->body_len);
	} else if (h->method == NULL || strcmp(h->method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	if (h->method != NULL && strcmp(h->method, "POST") != 0)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, h->method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, h->answer);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &h->answer_headers);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, CONNECTOR_TIMEOUT_SECS);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if ((cc = curl_easy_perform(curl)) != CURLE_OK) {
		devid_error_set(e, rc, "%s: %s", type, curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &h->status);
	rc = 0;
out:
	curl_slist_free_all(hl);
	curl_easy_cleanup(curl);
	return rc;
}

void
connector_http_release(struct connector_http *h)
{
	dynbuf_release(&h->answer_headers);
}

bool
connector_header(const struct connector_http *h, const char *name, char *out, size_t len)
{
	const char *p = dynbuf_str(&h->answer_headers);
	size_t nl = strlen(name);

	for (; *p != '\0'; p += strcspn(p, "\n"), p += *p == '\n') {
		const char *v;
		size_t vl;

		if (strncasecmp(p, name, nl) != 0 || p[nl] != ':')
			continue;
		v = p + nl + 1;
		v += strspn(v, " \t");
		vl = strcspn(v, "\r\n");
		while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			vl--;
		snprintf(out, len, "%.*s", (int)vl, v);
		return true;
	}
	if (len > 0)
		out[0] = '\0';
	return false;
}

int
connector_post(const char *type, const char *url, const char *const *headers, size_t nheaders,
    const char *body, struct dynbuf *answer, struct devid_error *e)
{
	struct connector_http h = {.method = "POST",
	    .url = url,
	    .headers = headers,
	    .nheaders = nheaders,
	    .body = body,
	    .body_len = strlen(body),
	    .answer = answer};
	int rc;

	if ((rc = connector_request(type, &h, e)) == 0 && (h.status < 200 || h.status > 299))
		rc = devid_error_set(
		    e, DEVID_EIO, "%s: the receiver answered HTTP %ld", type, h.status);
	connector_http_release(&h);
	return rc;
}

json_t *
delivery_pem(const struct delivery_device *v)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	json_t *j = NULL;

	if (b != NULL && PEM_write_bio(b, "CERTIFICATE", "", v->cert_der, (long)v->cert_len) > 0 &&
	    (n = BIO_get_mem_data(b, &p)) > 0)
		j = json_stringn(p, (size_t)n);
	BIO_free(b);
	return j;
}

json_t *
delivery_json(const struct delivery *d)
{
	json_t *devices = json_array();

	for (size_t i = 0; devices != NULL && i < d->n; i++) {
		const struct delivery_device *v = &d->devices[i];

		if (json_array_append_new(devices,
			json_pack("{s:s, s:s, s:s, s:o}", "udid", v->udid, "serial", v->serial,
			    "batch", v->batch, "certificate", delivery_pem(v))) != 0) {
			json_decref(devices);
			return NULL;
		}
	}
	if (d->suspicion != NULL)
		return json_pack("{s:s, s:s, s:s, s:o, s:O}", "event", d->event_id, "action",
		    "suspected_clone", "tenant", d->tenant, "devices", devices, "suspicion",
		    d->suspicion);
	return json_pack("{s:s, s:s, s:s, s:o}", "event", d->event_id, "action",
	    d->remove ? "remove" : "add", "tenant", d->tenant, "devices", devices);
}

long
connector_retry_after(const struct connector_http *h)
{
	char v[64];
	long after = -1;
	time_t when;

	if (!connector_header(h, "Retry-After", v, sizeof(v)))
		return -1;
	/* delay-seconds or an HTTP-date (RFC 9110 10.2.3) */
	if (v[0] >= '0' && v[0] <= '9' && strspn(v, "0123456789") == strlen(v) && strlen(v) < 10)
		after = strtol(v, NULL, 10);
	else if ((when = curl_getdate(v, NULL)) >= 0)
		after = when > time(NULL) ? (long)(when - time(NULL)) : 0;
	return after > 86400 ? 86400 : after;
}

#define ANSWER_WORDS_MAX 200

void
connector_answer_words(const struct dynbuf *body, char *out, size_t len)
{
	json_t *j = body->len > 0 ? json_loadb((const char *)body->p, body->len, 0, NULL) : NULL;
	const char *m = json_string_value(json_object_get(j, "message"));
	const char *p = m != NULL ? m : json_string_value(json_object_get(j, "error"));
	size_t n = 0, k = 0;

	if (p == NULL) {
		p = (const char *)body->p;
		n = body->len;
	} else {
		n = strlen(p);
	}
	for (size_t i = 0; i < n && k < ANSWER_WORDS_MAX && k + 1 < len; i++) {
		unsigned char c = (unsigned char)p[i];

		out[k++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
	}
	if (len > 0)
		out[k] = '\0';
	json_decref(j);
}

int
connector_test_event(char out[32], struct devid_error *e)
{
	uint8_t r[8];
	char hex[17];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return devid_error_set(e, DEVID_ECRYPTO, "no random bytes for a test event");
	hex_encode(r, sizeof(r), hex);
	snprintf(out, 32, "devid-test-%s", hex);
	return 0;
}
