/*
 * connector.h - the product-cloud connectors behind one interface. Each file implements one
 * type; connectors_provisioner() hands them to the domain (src/service) as a struct
 * provisioner, so the domain only ever says "deliver these devices to this cloud".
 */
#ifndef DEVID_CONNECTOR_H
#define DEVID_CONNECTOR_H

#include "service/service.h"

struct connector_type {
	const char *name;
	int (*validate)(const json_t *config, struct devid_error *e);
	json_t *(*redact)(const json_t *config);
	int (*deliver)(const json_t *config, const struct delivery *d, struct devid_error *e);
};

/* Every connector type, for struct service.prov. Call once at start-up (curl_global_init). */
const struct provisioner *connectors_provisioner(void);

/* The webhook connector (webhook.c): config {"url","secret"}; HMAC-SHA256 signed pushes. */
extern const struct connector_type connector_webhook;

/* The webhook body of a delivery (DESIGN.md); new reference. Shared by connectors. */
json_t *delivery_json(const struct delivery *d);

#endif
