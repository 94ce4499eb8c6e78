#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "connectors/connector.h"
#include "lib/base64.h"
#include "lib/json.h"
#include "lib/banned.h"

#define WEBHOOK_SECRET_MIN 16
#define WEBHOOK_SECRET_MAX 256

static int
webhook_validate(const json_t *config, struct devid_error *e)
{
	const char *secret;

	if (connector_check_url(config, "webhook", e) != 0 ||
	    json_get_str(config, "secret", WEBHOOK_SECRET_MIN, WEBHOOK_SECRET_MAX, true, &secret,
		NULL, "webhook", e) != 0)
		return DEVID_EINVAL;
	if (connector_check_rate(config, "webhook", e) != 0)
		return DEVID_EINVAL;
	if (json_object_size(config) != 2 + (json_object_get(config, "ratePerSecond") != NULL))
		return devid_error_set(
		    e, DEVID_EINVAL, "webhook: config is {\"url\",\"secret\"[,\"ratePerSecond\"]}");
	return 0;
}

static json_t *
webhook_redact(const json_t *config)
{
	/* the secret is never shown again, only that there is one */
	return json_pack("{s:O?, s:b, s:O?}", "url", json_object_get(config, "url"), "secretSet", 1,
	    "ratePerSecond", json_object_get(config, "ratePerSecond"));
}

static int
webhook_deliver(const json_t *config, const struct delivery *d, struct devid_error *e)
{
	const char *url = json_string_value(json_object_get(config, "url"));
	const char *secret = json_string_value(json_object_get(config, "secret"));
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1], sig[128 + 2 * EVP_MAX_MD_SIZE], ev[160];
	const char *headers[] = {sig, ev};
	json_t *body = delivery_json(d);
	char *text = body ? json_dump_compact(body) : NULL;
	int rc;

	if (url == NULL || secret == NULL || text == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "webhook: cannot build the body");
		goto out;
	}
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)text,
		strlen(text), mac, &maclen) == NULL) {
		rc = devid_error_set(e, DEVID_ECRYPTO, "webhook: HMAC failed");
		goto out;
	}
	hex_encode(mac, maclen, hex);
	snprintf(sig, sizeof(sig), "X-Devid-Signature: sha256=%s", hex);
	snprintf(ev, sizeof(ev), "X-Devid-Event: %s", d->event_id);
	rc = connector_post("webhook", url, headers, 2, text, NULL, e);
out:
	free(text);
	json_decref(body);
	return rc;
}

static const char *const webhook_secrets[] = {"secret", NULL};

const struct connector_type connector_webhook = {
    .name = "webhook",
    .validate = webhook_validate,
    .redact = webhook_redact,
    .deliver = webhook_deliver,
    .secret_fields = webhook_secrets,
};
