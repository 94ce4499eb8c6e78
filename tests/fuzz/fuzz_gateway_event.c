/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_gateway_event.c - libFuzzer target for what `devid gateway` reads on its admin port
 * before anything else: the input is a webhook body, parsed exactly as the server does
 * (gateway_event_parse); its first bytes are also taken as an X-Devid-Signature header and
 * checked against the HMAC of the whole input (gateway_signature_verify). Every action is
 * reached, suspected_clone and its "suspicion" included (seeds clone-*.json). Aborts when either
 * breaks its contract: a failure returns nothing and gives a reason; a success returns an
 * event whose every field holds what gateway.h promises.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_gateway_event: contract broken: %s\n", what);
		abort();
	}
}

static int
hex64(const char *s)
{
	if (strlen(s) != UDID_HEX_LEN)
		return 0;
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static void
event_check(const struct gateway_event *ev)
{
	expect(gateway_event_id_valid(ev->id, strlen(ev->id)), "event id");
	expect(ev->action == GATEWAY_ADD || ev->action == GATEWAY_REMOVE ||
		ev->action == GATEWAY_TEST || ev->action == GATEWAY_SUSPECTED_CLONE,
	    "action");
	if (ev->action == GATEWAY_SUSPECTED_CLONE) {
		const struct gateway_suspicion *su = &ev->suspicion;

		expect(su->rule == GATEWAY_RULE_CONCURRENT_ORIGINS ||
			su->rule == GATEWAY_RULE_SUPERSEDED_CERTIFICATE ||
			su->rule == GATEWAY_RULE_ENROLLMENT_RATE,
		    "rule");
		expect(strlen(su->at) >= 20 && su->at[strlen(su->at) - 1] == 'Z', "at");
	} else {
		expect(ev->suspicion.at[0] == '\0' && !ev->suspicion.quarantined,
		    "a suspicion on another action");
	}
	expect(strlen(ev->tenant) >= 1 && strlen(ev->tenant) <= MAX_NAME_LEN, "tenant");
	expect(ev->action == GATEWAY_TEST
		? ev->ndevices == 0 && ev->devices == NULL
		: ev->ndevices >= 1 && ev->ndevices <= GATEWAY_MAX_DEVICES,
	    "device count");
	for (size_t i = 0; i < ev->ndevices; i++) {
		const struct gateway_device *d = &ev->devices[i];

		expect(hex64(d->udid), "udid");
		expect(strlen(d->serial) >= 1 && strlen(d->batch) >= 1, "serial and batch");
		expect(d->certificate != NULL && strlen(d->certificate) == d->certificate_len &&
			d->certificate_len <= GATEWAY_MAX_CERT_PEM,
		    "certificate");
		for (size_t j = 0; j < i; j++)
			expect(strcmp(d->udid, ev->devices[j].udid) != 0, "a UDID twice");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t secret[] = "fuzz-secret-0123456789";
	struct gateway_event *ev = NULL;
	struct devid_error e;
	char header[80];
	size_t n = size < sizeof(header) - 1 ? size : sizeof(header) - 1;
	int rc;

	devid_error_clear(&e);
	rc = gateway_event_parse(data, size, &ev, &e);
	expect(rc == 0 ? ev != NULL : ev == NULL && e.msg[0] != '\0', "event parse result");
	if (ev != NULL)
		event_check(ev);
	gateway_event_free(ev);

	memcpy(header, data, n);
	header[n] = '\0';
	devid_error_clear(&e);
	rc = gateway_signature_verify(secret, sizeof(secret) - 1, data, size, header, &e);
	/* a header cannot hold the MAC of bytes that include it, short of breaking SHA-256 */
	expect(rc == DEVID_EAUTH && e.msg[0] != '\0', "signature result");
	return 0;
}
