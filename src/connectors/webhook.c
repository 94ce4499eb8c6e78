#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "connectors/connector.h"
#include "lib/base64.h"
#include "lib/json.h"
#include "lib/banned.h"

#define WEBHOOK_SECRET_MIN 16
#define WEBHOOK_SECRET_MAX 256
#define WEBHOOK_TIMEOUT_SECS 30L

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

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int
webhook_deliver(const json_t *config, const struct delivery *d, struct devid_error *e)
{
	const char *url = json_string_value(json_object_get(config, "url"));
	const char *secret = json_string_value(json_object_get(config, "secret"));
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1], sig[128 + 2 * EVP_MAX_MD_SIZE], ev[160];
	struct curl_slist *h = NULL;
	json_t *body = delivery_json(d);
	char *text = body ? json_dump_compact(body) : NULL;
	long status = 0;
	CURLcode cc;
	CURL *curl = NULL;
	int rc = DEVID_EIO;

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
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, sig);
	h = curl_slist_append(h, ev);
	h = curl_slist_append(h, "Expect:");
	if ((curl = curl_easy_init()) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "webhook: cannot start curl");
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, WEBHOOK_TIMEOUT_SECS);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if ((cc = curl_easy_perform(curl)) != CURLE_OK) {
		devid_error_set(e, rc, "webhook: %s", curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		devid_error_set(e, rc, "webhook: the receiver answered HTTP %ld", status);
		goto out;
	}
	rc = 0;
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(curl);
	free(text);
	json_decref(body);
	return rc;
}

const struct connector_type connector_webhook = {
    .name = "webhook",
    .validate = webhook_validate,
    .redact = webhook_redact,
    .deliver = webhook_deliver,
};
