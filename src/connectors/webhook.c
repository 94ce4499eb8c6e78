/* SPDX-License-Identifier: Apache-2.0 */
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
#define WEBHOOK_MAX_ANSWER (1 << 20) /* bytes of a receiver's answer read */

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

/*
 * POSTs text, signed with the config's secret, as event id; 0 on a 2xx. The status and what
 * the receiver said go to e otherwise, and into msg (may be NULL) on success.
 */
static int
webhook_push(const json_t *config, const char *id, const char *text, char *msg, size_t msglen,
    struct devid_error *e)
{
	const char *url = json_string_value(json_object_get(config, "url"));
	const char *secret = json_string_value(json_object_get(config, "secret"));
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1], sig[128 + 2 * EVP_MAX_MD_SIZE], ev[160], words[256];
	const char *headers[] = {sig, ev};
	struct connector_http h;
	struct dynbuf answer;
	int rc;

	if (url == NULL || secret == NULL)
		return devid_error_set(e, DEVID_EINVAL, "webhook: the config is incomplete");
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)text,
		strlen(text), mac, &maclen) == NULL)
		return devid_error_set(e, DEVID_ECRYPTO, "webhook: HMAC failed");
	hex_encode(mac, maclen, hex);
	snprintf(sig, sizeof(sig), "X-Devid-Signature: sha256=%s", hex);
	snprintf(ev, sizeof(ev), "X-Devid-Event: %s", id);
	dynbuf_init(&answer, WEBHOOK_MAX_ANSWER);
	h = (struct connector_http){.method = "POST",
	    .url = url,
	    .headers = headers,
	    .nheaders = 2,
	    .body = text,
	    .body_len = strlen(text),
	    .answer = &answer};
	if ((rc = connector_request("webhook", &h, e)) == 0) {
		connector_answer_words(&answer, words, sizeof(words));
		if (h.status < 200 || h.status > 299)
			rc = devid_error_set(e, DEVID_EIO,
			    "webhook: the receiver answered HTTP %ld%s%s", h.status,
			    words[0] ? ": " : "", words);
		else if (msg != NULL)
			snprintf(msg, msglen, "the receiver answered HTTP %ld", h.status);
	}
	connector_http_release(&h);
	dynbuf_release(&answer);
	return rc;
}

static int
webhook_deliver(const json_t *config, const struct delivery *d, struct devid_error *e)
{
	json_t *body = delivery_json(d);
	char *text = body ? json_dump_compact(body) : NULL;
	int rc;

	if (text == NULL)
		rc = devid_error_set(e, DEVID_ENOMEM, "webhook: cannot build the body");
	else
		rc = webhook_push(config, d->event_id, text, NULL, 0, e);
	/* the receiver takes a push whole or not at all: every device shares its outcome */
	for (size_t i = 0; d->result != NULL && i < d->n; i++)
		d->result(
		    d->ctx, i, rc == 0 ? DELIVERY_OK : DELIVERY_FAILED, rc == 0 ? NULL : e->msg);
	free(text);
	json_decref(body);
	return rc;
}

/* A signed push of no device, action "test", that receivers answer 2xx changing nothing. */
static int
webhook_test(const json_t *config, const char *tenant, char *msg, size_t len, struct devid_error *e)
{
	char id[32], *text = NULL;
	json_t *body = NULL;
	int rc;

	if ((rc = connector_test_event(id, e)) != 0)
		return rc;
	body = json_pack(
	    "{s:s, s:s, s:s, s:[]}", "event", id, "action", "test", "tenant", tenant, "devices");
	if (body == NULL || (text = json_dump_compact(body)) == NULL)
		rc = devid_error_set(e, DEVID_ENOMEM, "webhook: cannot build the body");
	else
		rc = webhook_push(config, id, text, msg, len, e);
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
    .test = webhook_test,
};
