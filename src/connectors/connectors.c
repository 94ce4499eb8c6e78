#include <string.h>

#include <curl/curl.h>
#include <openssl/pem.h>

#include "connectors/connector.h"
#include "lib/json.h"
#include "lib/banned.h"

static const struct connector_type *const types[] = {&connector_webhook, &connector_cirrent};

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
		    "unknown connector type \"%s\" (known: webhook, cirrent)", type);
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

static const struct provisioner provisioner = {
    .validate = validate,
    .redact = redact,
    .deliver = deliver,
};

const struct provisioner *
connectors_provisioner(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return &provisioner;
}

/* PEM of a DER certificate, as OpenSSL writes it. */
static json_t *
pem_json(const uint8_t *der, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	json_t *j = NULL;

	if (b != NULL && PEM_write_bio(b, "CERTIFICATE", "", der, (long)len) > 0 &&
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
			    "batch", v->batch, "certificate",
			    pem_json(v->cert_der, v->cert_len))) != 0) {
			json_decref(devices);
			return NULL;
		}
	}
	return json_pack("{s:s, s:s, s:s, s:o}", "event", d->event_id, "action",
	    d->remove ? "remove" : "add", "tenant", d->tenant, "devices", devices);
}
