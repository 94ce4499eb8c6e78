#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/pem.h>

#include "connectors/connector.h"
#include "lib/json.h"
#include "lib/banned.h"

static const struct connector_type *const types[] = {
    &connector_webhook,
    &connector_cirrent,
    &connector_mosquitto,
    &connector_azure_dps,
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

	if (t == NULL)
		return devid_error_set(e, DEVID_EINVAL,
		    "unknown connector type \"%s\" (known: webhook, cirrent, mosquitto, azure-dps)", type);
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

static const struct provisioner provisioner = {
    .validate = validate,
    .redact = redact,
    .deliver = deliver,
    .secret_fields = secret_fields,
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

int
connector_post(const char *type, const char *url, const char *const *headers, size_t nheaders,
    const char *body, struct dynbuf *answer, struct devid_error *e)
{
	struct curl_slist *h = NULL;
	long status = 0;
	CURLcode cc;
	CURL *curl;
	int rc = DEVID_EIO;

	if ((curl = curl_easy_init()) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "%s: cannot start curl", type);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	for (size_t i = 0; i < nheaders; i++)
		h = curl_slist_append(h, headers[i]);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, CONNECTOR_TIMEOUT_SECS);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if ((cc = curl_easy_perform(curl)) != CURLE_OK) {
		devid_error_set(e, rc, "%s: %s", type, curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		devid_error_set(e, rc, "%s: the receiver answered HTTP %ld", type, status);
		goto out;
	}
	rc = 0;
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(curl);
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
	return json_pack("{s:s, s:s, s:s, s:o}", "event", d->event_id, "action",
	    d->remove ? "remove" : "add", "tenant", d->tenant, "devices", devices);
}

/* --- connector_request: any method, the status and Retry-After for the caller to judge --- */

int
connector_request(const char *type, const char *method, const char *url, const char *const *headers,
    size_t nheaders, const char *body, struct dynbuf *answer, struct connector_response *r,
    struct devid_error *e)
{
	struct curl_slist *h = NULL;
	struct curl_header *ra;
	curl_off_t after = -1;
	CURLcode cc;
	CURL *curl;
	int rc = DEVID_EIO;

	r->status = 0;
	r->retry_after = -1;
	if ((curl = curl_easy_init()) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "%s: cannot start curl", type);
	if (body != NULL)
		h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Accept: application/json");
	h = curl_slist_append(h, "Expect:");
	for (size_t i = 0; i < nheaders; i++)
		h = curl_slist_append(h, headers[i]);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, CONNECTOR_TIMEOUT_SECS);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if ((cc = curl_easy_perform(curl)) != CURLE_OK) {
		devid_error_set(e, rc, "%s: %s", type, curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	/* Retry-After: seconds or an HTTP date (CURLINFO_RETRY_AFTER says 0 when absent) */
	if (curl_easy_header(curl, "Retry-After", 0, CURLH_HEADER, -1, &ra) == CURLHE_OK) {
		const char *v = ra->value;

		if (*v >= '0' && *v <= '9' && strspn(v, "0123456789") == strlen(v) &&
		    strlen(v) < 10)
			after = (curl_off_t)strtol(v, NULL, 10);
		else if ((after = (curl_off_t)curl_getdate(v, NULL)) >= 0)
			after = after > (curl_off_t)time(NULL) ? after - (curl_off_t)time(NULL) : 0;
		if (after >= 0)
			r->retry_after = (long)(after > 86400 ? 86400 : after);
	}
	rc = 0;
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(curl);
	return rc;
}
