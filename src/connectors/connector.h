/* SPDX-License-Identifier: Apache-2.0 */
/*
 * connector.h - the product-cloud connectors behind one interface. Each file implements one
 * type; connectors_provisioner() hands them to the domain (src/service) as a struct
 * provisioner, so the domain only ever says "deliver these devices to this cloud".
 */
#ifndef DEVID_CONNECTOR_H
#define DEVID_CONNECTOR_H

#include <openssl/evp.h>

#include "lib/dynbuf.h"
#include "service/service.h"

struct connector_type {
	const char *name;
	int (*validate)(const json_t *config, struct devid_error *e);
	json_t *(*redact)(const json_t *config);
	int (*deliver)(const json_t *config, const struct delivery *d, struct devid_error *e);
	/*
	 * The config members that are secret (NULL-terminated; NULL: none): stored encrypted
	 * (docs/secrets.md), never shown by redact, never in a log or an error message.
	 */
	const char *const *secret_fields;
	/*
	 * Asks the cloud something harmless with config's credentials on behalf of tenant
	 * (POST /api/v1/connectors/{name}/test). 0 when it answered as it answers a working
	 * configuration, with what it said in msg; else a DEVID_E* code with the cloud's words
	 * or the connection error in e, never a secret. NULL: the type has no such call.
	 */
	int (*test)(
	    const json_t *config, const char *tenant, char *msg, size_t len, struct devid_error *e);
};

/* Every connector type, for struct service.prov. Call once at start-up (curl_global_init). */
const struct provisioner *connectors_provisioner(void);

/* The webhook connector (webhook.c): config {"url","secret"}; HMAC-SHA256 signed pushes. */
extern const struct connector_type connector_webhook;

/*
 * The cirrent connector (cirrent.c): config {"url"}; the push contract of Cloud ID's sample
 * receivers: ES256 JWT bearer (aud = url), {"action":"provision","certs":[{"ref","cert"}]},
 * an array of {"ref","status","message"} back. Signs with the key given here (borrowed,
 * must outlive the connectors) under key id kid.
 */
extern const struct connector_type connector_cirrent;
void connectors_set_interop_key(EVP_PKEY *key, const char *kid);
/* Reads a cirrent answer: 0 when every certificate of d is SUCCESS (exact bytes p[0..n)). */
int cirrent_results_parse(
    const uint8_t *p, size_t n, const struct delivery *d, struct devid_error *e);

/*
 * The mosquitto connector (mosquitto.c): config {"host","port","tls"?,"ca"?,"username",
 * "password" | "clientCert"+"clientKey","role","ratePerSecond"?}; drives a Mosquitto 2
 * broker's dynamic-security plugin over MQTT: createClient (add), deleteClient (remove).
 */
extern const struct connector_type connector_mosquitto;

/*
 * The azure-dps connector (azure_dps.c, azure_dps.h): individual enrollments with X.509
 * attestation (chips) or TPM attestation by the EK (TPMs) in an Azure IoT Hub Device
 * Provisioning Service, in bulk calls of at most 10, SAS-signed with a shared access policy
 * (docs/connectors.md).
 */
extern const struct connector_type connector_azure_dps;

/*
 * Every connector's config may hold "ratePerSecond": the requests a second its cloud takes
 * (DESIGN.md: connectors throttle themselves to their cloud's published rate).
 */
#define CONNECTOR_MAX_RATE 10000
#define CONNECTOR_MAX_URL 2048
/* Every connector's "url": http:// or https://, at most CONNECTOR_MAX_URL bytes. */
int connector_check_url(const json_t *config, const char *type, struct devid_error *e);
int connector_check_rate(const json_t *config, const char *type, struct devid_error *e);

#define CONNECTOR_TIMEOUT_SECS 30L

/*
 * POSTs a JSON body to url with extra headers ("Name: value"); 0 when the receiver answered
 * 2xx. The answer's body goes to answer (may be NULL: discarded).
 */
int connector_post(const char *type, const char *url, const char *const *headers, size_t nheaders,
    const char *body, struct dynbuf *answer, struct devid_error *e);

/* --- issue 11: requests of any method, answers read whole ---------------------------- */

#define CONNECTOR_MAX_HEADERS (16 * 1024) /* an answer's headers kept, at most */

/* One HTTP request and its answer (connector_request). */
struct connector_http {
	const char *method; /* "GET", "POST", "PUT", "DELETE", ...; NULL: POST */
	const char *url;
	const char *const *headers; /* "Name: value" */
	size_t nheaders;
	const char *body; /* NULL: none; else JSON (Content-Type: application/json) */
	size_t body_len;
	struct dynbuf *answer; /* the answer's body (may be NULL: discarded) */
	/* filled in: */
	long status;
	struct dynbuf answer_headers; /* raw, for connector_header */
};

/*
 * Sends h and reads the answer, whatever its status (h->status): 0 when an answer came,
 * DEVID_EIO when none did. Release h with connector_http_release afterwards, in both cases.
 */
int connector_request(const char *type, struct connector_http *h, struct devid_error *e);
void connector_http_release(struct connector_http *h);
/* The value of the answer's header name (any case), trimmed, into out; false when absent. */
bool connector_header(const struct connector_http *h, const char *name, char *out, size_t len);
/*
 * What an answer's body says, for a person: its "message" (or "error") member when it is a
 * JSON object with one, else its printable ASCII; at most 200 bytes, into out ("" if none).
 */
void connector_answer_words(const struct dynbuf *body, char *out, size_t len);
/* A new event id for a test call: "devid-test-<16 random hex digits>". */
int connector_test_event(char out[32], struct devid_error *e);
/* Retry-After of the answer in seconds (delay-seconds or an HTTP date), -1 when absent. */
long connector_retry_after(const struct connector_http *h);

/*
 * The aws-iot connector (aws_iot.c): AWS IoT Core's registry through its control-plane API,
 * SigV4-signed (sigv4.c), one device a call, per-call rates through delivery.throttle.
 */
extern const struct connector_type connector_aws_iot;

/* A device's certificate as PEM text (a new JSON string), or NULL. */
json_t *delivery_pem(const struct delivery_device *v);

/* The webhook body of a delivery (DESIGN.md); new reference. Shared by connectors. */
json_t *delivery_json(const struct delivery *d);

#endif
