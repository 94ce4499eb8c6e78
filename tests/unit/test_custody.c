/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Custody records (docs/custody.md): a chain signed here verifies; each rule of the page
 * refuses a chain that breaks it, naming the record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/custody.h"
#include "lib/json.h"
#include "lib/x509.h"
#include "test.h"
#include "lib/banned.h"

#define MANIFEST "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

static EVP_PKEY *devid_key, *owner_a, *stranger;

/* One record's payload; prev_owner/new_owner are JSON texts. */
static char *
payload(int seq, const char *event, const char *prev, const char *prev_owner, const char *new_owner,
    int owner_signed)
{
	char *s = NULL;
	size_t n = 2048;

	if ((s = malloc(n)) == NULL)
		abort();
	snprintf(s, n,
	    "{\"version\":1,\"seq\":%d,\"event\":\"%s\",\"vendor\":\"ACME\",\"batch\":\"B1\","
	    "\"count\":5,\"manifestSha256\":\"" MANIFEST "\",\"descriptorSha256\":null,"
	    "\"prev\":\"%s\",\"previousOwner\":%s,\"newOwner\":%s,\"ownerSigned\":%s,"
	    "\"at\":\"2026-12-05T08:00:00Z\"}",
	    seq, event, prev, prev_owner, new_owner, owner_signed ? "true" : "false");
	return s;
}

static void
sha_hex(const char *s, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256((const uint8_t *)s, strlen(s), md);
	hex_encode(md, sizeof(md), out);
}

static json_t *
record(const char *pay, EVP_PKEY *owner)
{
	struct devid_error e;
	json_t *r = custody_sign((const uint8_t *)pay, strlen(pay), devid_key, owner, &e);

	if (r == NULL) {
		printf("custody_sign: %s\n", e.msg);
		abort();
	}
	return r;
}

/* custody_verify over {"vendor":"ACME","batch":"B1","records":recs}, roots devid_key. */
static int
verify(json_t *recs, EVP_PKEY *root, struct custody_summary *s, struct devid_error *e)
{
	json_t *doc =
	    json_pack("{s:s, s:s, s:O}", "vendor", "ACME", "batch", "B1", "records", recs);
	char *text = json_dump_compact(doc);
	EVP_PKEY *roots[1] = {root};
	int rc;

	devid_error_clear(e);
	rc = custody_verify((const uint8_t *)text, strlen(text), roots, 1, s, e);
	free(text);
	json_decref(doc);
	return rc;
}

static void
refused(json_t *recs, EVP_PKEY *root, const char *want, const char *what)
{
	struct custody_summary s;
	struct devid_error e;

	CHECK(verify(recs, root, &s, &e) != 0, "%s: accepted", what);
	CHECK(strstr(e.msg, want) != NULL, "%s: \"%s\" does not say \"%s\"", what, e.msg, want);
}

int
main(void)
{
	char vendor[256], oem_a[512], oem_b[256], h1[65], h2[65], *ka;
	char *p1, *p2, *p3, *bad;
	struct custody_summary s;
	struct devid_error e;
	json_t *good, *recs;

	devid_key = pkey_new_p256(&e);
	owner_a = pkey_new_p256(&e);
	stranger = pkey_new_p256(&e);
	if (devid_key == NULL || owner_a == NULL || stranger == NULL)
		abort();
	ka = custody_key_b64(owner_a);
	snprintf(vendor, sizeof(vendor),
	    "{\"tenant\":\"ACME\",\"kind\":\"vendor\",\"key\":null,\"keySource\":null}");
	snprintf(oem_a, sizeof(oem_a),
	    "{\"tenant\":\"OEMA\",\"kind\":\"oem\",\"key\":\"%s\",\"keySource\":\"operational-"
	    "ca\"}",
	    ka);
	snprintf(oem_b, sizeof(oem_b),
	    "{\"tenant\":\"OEMB\",\"kind\":\"oem\",\"key\":null,\"keySource\":null}");
	p1 = payload(1, "publish", ZEROS, "null", vendor, 0);
	sha_hex(p1, h1);
	p2 = payload(2, "claim", h1, vendor, oem_a, 0);
	sha_hex(p2, h2);
	p3 = payload(3, "transfer", h2, oem_a, oem_b, 1);

	good = json_pack("[o, o, o]", record(p1, NULL), record(p2, NULL), record(p3, owner_a));
	CHECK(verify(good, devid_key, &s, &e) == 0, "the good chain: %s", e.msg);
	CHECK(s.records == 3 && strcmp(s.owner, "OEMB") == 0, "summary: %zu records, owner %s",
	    s.records, s.owner);

	refused(good, stranger, "record 1: devid's signature does not verify", "another root");

	recs = json_pack("[O, O]", json_array_get(good, 0), json_array_get(good, 2));
	refused(recs, devid_key, "record 2: seq is 3", "a record removed");
	json_decref(recs);

	/* record 3 with the wrong owner's signature */
	recs = json_pack(
	    "[O, O, o]", json_array_get(good, 0), json_array_get(good, 1), record(p3, stranger));
	refused(recs, devid_key, "record 3: the owner signature does not verify", "wrong owner");
	json_decref(recs);

	/* record 3 claiming an owner signature it does not carry */
	recs = json_pack(
	    "[O, O, o]", json_array_get(good, 0), json_array_get(good, 1), record(p3, NULL));
	refused(recs, devid_key, "record 3: ownerSigned is true but 0", "a stripped signature");
	json_decref(recs);

	/* a link to the wrong record */
	bad = payload(3, "transfer", h1, oem_a, oem_b, 0);
	recs = json_pack(
	    "[O, O, o]", json_array_get(good, 0), json_array_get(good, 1), record(bad, NULL));
	refused(recs, devid_key, "record 3: prev does not match", "a wrong prev");
	json_decref(recs);
	free(bad);

	/* a previous owner who is not the last new owner */
	bad = payload(3, "transfer", h2, oem_b, oem_a, 0);
	recs = json_pack(
	    "[O, O, o]", json_array_get(good, 0), json_array_get(good, 1), record(bad, NULL));
	refused(recs, devid_key, "record 3: previousOwner is not", "a wrong previous owner");
	json_decref(recs);
	free(bad);

	/* an event that does not fit its owners */
	bad = payload(2, "transfer", h1, vendor, oem_a, 0);
	recs = json_pack("[O, o]", json_array_get(good, 0), record(bad, NULL));
	refused(
	    recs, devid_key, "record 2: event \"transfer\" cannot be", "transfer from a vendor");
	json_decref(recs);
	free(bad);

	json_decref(good);
	free(p1);
	free(p2);
	free(p3);
	free(ka);
	EVP_PKEY_free(devid_key);
	EVP_PKEY_free(owner_a);
	EVP_PKEY_free(stranger);
	return test_done();
}
