/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/connector.h"
#include "lib/base64.h"
#include "lib/dynbuf.h"
#include "lib/json.h"
#include "lib/jws.h"
#include "lib/banned.h"

#define CIRRENT_JWT_LIFETIME 300
#define CIRRENT_MAX_RESPONSE (1 << 20)

/* The service's interop signing key, set once at start-up (connectors_set_interop_key). */
static EVP_PKEY *interop_key;
static char interop_kid[64];

void
connectors_set_interop_key(EVP_PKEY *key, const char *kid)
{
	interop_key = key;
	snprintf(interop_kid, sizeof(interop_kid), "%s", kid);
}

static int
cirrent_validate(const json_t *config, struct devid_error *e)
{
	if (connector_check_url(config, "cirrent", e) != 0)
		return DEVID_EINVAL;
	if (connector_check_rate(config, "cirrent", e) != 0)
		return DEVID_EINVAL;
	if (json_object_size(config) != 1 + (json_object_get(config, "ratePerSecond") != NULL))
		return devid_error_set(
		    e, DEVID_EINVAL, "cirrent: config is {\"url\"[,\"ratePerSecond\"]}");
	return 0;
}

static json_t *
cirrent_redact(const json_t *config)
{
	return json_deep_copy(config);
}

/* An ES256 JWT for the receiver at aud, compact serialization; malloc'ed. */
static char *
cirrent_jwt(const char *aud, const char *jti, struct devid_error *e)
{
	json_t *hdr =
	    json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT", "kid", interop_kid);
	time_t now = time(NULL);
	json_t *claims = json_pack("{s:s, s:s, s:I, s:I, s:s}", "iss", "devid", "aud", aud, "iat",
	    (json_int_t)now, "exp", (json_int_t)(now + CIRRENT_JWT_LIFETIME), "jti", jti);
	char *h = hdr ? json_dump_compact(hdr) : NULL,
	     *c = claims ? json_dump_compact(claims) : NULL;
	char *hb = NULL, *cb = NULL, *sb = NULL, *out = NULL;
	uint8_t sig[ES256_SIG_LEN];
	struct dynbuf b;

	dynbuf_init(&b, 8192);
	if (h == NULL || c == NULL || (hb = b64url_encode((const uint8_t *)h, strlen(h))) == NULL ||
	    (cb = b64url_encode((const uint8_t *)c, strlen(c))) == NULL ||
	    dynbuf_addf(&b, "%s.%s", hb, cb) != 0) {
		devid_error_set(e, DEVID_ENOMEM, "cirrent: out of memory");
		goto out;
	}
	if (es256_sign(interop_key, b.p, b.len, sig, e) != 0 ||
	    (sb = b64url_encode(sig, sizeof(sig))) == NULL || dynbuf_addf(&b, ".%s", sb) != 0)
		goto out;
	out = (char *)dynbuf_detach(&b, NULL);
out:
	dynbuf_release(&b);
	free(h);
	free(c);
	free(hb);
	free(cb);
	free(sb);
	json_decref(hdr);
	json_decref(claims);
	return out;
}

int
cirrent_results_parse(const uint8_t *p, size_t n, const struct delivery *d, struct devid_error *e)
{
	json_t *root, *v;
	const char *ref, *status, *msg;
	size_t i, ok = 0, bad = 0;
	char first[256] = "";

	if ((root = json_parse(p, n, "cirrent answer", e)) == NULL)
		return DEVID_EINVAL;
	if (!json_is_array(root) || json_array_size(root) != d->n) {
		json_decref(root);
		return devid_error_set(e, DEVID_EINVAL,
		    "cirrent: the answer is not an array of one result per certificate");
	}
	json_array_foreach(root, i, v)
	{
		if (!json_is_object(v)) {
			json_decref(root);
			return devid_error_set(
			    e, DEVID_EINVAL, "cirrent: result %zu is not an object", i);
		}
		if (json_get_str(v, "ref", 1, 128, true, &ref, NULL, "cirrent result", e) != 0 ||
		    json_get_str(v, "status", 1, 16, true, &status, NULL, "cirrent result", e) !=
			0) {
			json_decref(root);
			return DEVID_EINVAL;
		}
		if (strcmp(ref, d->devices[i].udid) != 0) {
			/* the message quotes ref: set it before the answer is freed */
			devid_error_set(e, DEVID_EINVAL,
			    "cirrent: result %zu is for \"%s\", not %s", i, ref,
			    d->devices[i].udid);
			json_decref(root);
			return DEVID_EINVAL;
		}
		if (strcmp(status, "SUCCESS") == 0) {
			ok++;
		} else {
			bad++;
			if (first[0] == '\0') {
				if (json_get_str(v, "message", 0, 200, false, &msg, NULL, "cirrent",
					NULL) != 0)
					msg = status;
				snprintf(first, sizeof(first), "%s: %s", ref, msg);
			}
		}
	}
	json_decref(root);
	if (bad > 0)
		return devid_error_set(e, DEVID_EIO,
		    "cirrent: %zu of %zu certificates refused (%s)", bad, ok + bad, first);
	return 0;
}

static int
cirrent_deliver(const json_t *config, const struct delivery *d, struct devid_error *e)
{
	const char *url = json_string_value(json_object_get(config, "url"));
	json_t *certs = json_array(), *body = NULL, *pem;
	char *jwt = NULL, *text = NULL, *b64, auth[4096];
	const char *headers[] = {auth};
	struct dynbuf resp;
	int rc = DEVID_EIO;

	dynbuf_init(&resp, CIRRENT_MAX_RESPONSE);
	if (interop_key == NULL) {
		rc = devid_error_set(e, DEVID_EINVAL, "cirrent: no interop key configured");
		goto out;
	}
	for (size_t i = 0; certs != NULL && i < d->n; i++) {
		pem = delivery_pem(&d->devices[i]);
		b64 = b64_encode((const uint8_t *)json_string_value(pem), json_string_length(pem));
		json_array_append_new(certs,
		    json_pack("{s:s, s:s}", "ref", d->devices[i].udid, "cert", b64 ? b64 : ""));
		free(b64);
		json_decref(pem);
	}
	body = json_pack(
	    "{s:s, s:o}", "action", d->remove ? "deprovision" : "provision", "certs", certs);
	certs = NULL;
	if (body == NULL || (text = json_dump_compact(body)) == NULL ||
	    (jwt = cirrent_jwt(url, d->event_id, e)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "cirrent: cannot build the request");
		goto out;
	}
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", jwt);
	if ((rc = connector_post("cirrent", url, headers, 1, text, &resp, e)) == 0)
		rc = cirrent_results_parse(resp.p, resp.len, d, e);
out:
	dynbuf_release(&resp);
	free(text);
	free(jwt);
	json_decref(certs);
	json_decref(body);
	return rc;
}

const struct connector_type connector_cirrent = {
    .name = "cirrent",
    .validate = cirrent_validate,
    .redact = cirrent_redact,
    .deliver = cirrent_deliver,
};
