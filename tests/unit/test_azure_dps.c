/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The azure-dps connector's pieces: the shared access signature against a published value
 * and against an HMAC computed here with OpenSSL directly, the reading of bulk answers
 * (partial failures, foreign ids, malformed documents), and the config checks and redaction
 * (the policy key never shown).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "connectors/azure_dps.h"
#include "connectors/connector.h"
#include "lib/base64.h"
#include "lib/json.h"
#include "test.h"
#include "lib/banned.h"

/*
 * The value Azure's own Node.js SDK asserts in its unit tests (azure-iot-common,
 * authorization.js "returns a signature token"): key base64("password"), resource "uri",
 * policy "encode('Me')", expiry 12345.
 */
static void
test_sas_published(void)
{
	struct devid_error e = {0};
	char *tok = NULL;

	CHECK(azure_sas_token("uri", "encode('Me')", "cGFzc3dvcmQ=", 12345, &tok, &e) == 0,
	    "sas: %s", e.msg);
	CHECK(tok != NULL &&
		strcmp(tok,
		    "SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2"
		    "fPYCDhk%3D&se=12345&skn=encode%28%27Me%27%29") == 0,
	    "sas differs from the published value: %s", tok ? tok : "(null)");
	free(tok);
}

/* The token recomputed here, step by step, from Azure's documented recipe. */
static void
test_sas_independent(void)
{
	/* a key whose base64 and whose signature hold '+', '/' and '=' */
	static const unsigned char key[32] = {0xfb, 0xff, 0xbf, 0xfe, 0x3e, 0x01, 0x02, 0x03, 0x04,
	    0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12,
	    0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xfa, 0xfb};
	const char *host = "contoso-dps.azure-devices-provisioning.net";
	char *kb64 = b64_encode(key, sizeof(key)), *tok = NULL, want[512], sig64enc[128] = "";
	char tosign[256];
	unsigned char mac[32];
	unsigned int maclen = 0;
	struct devid_error e = {0};
	char *sig64;
	size_t j = 0;

	snprintf(tosign, sizeof(tosign), "%s\n%d", host, 1700000000);
	HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)tosign, strlen(tosign), mac,
	    &maclen);
	sig64 = b64_encode(mac, maclen);
	for (const char *p = sig64; *p != '\0'; p++) {
		if (*p == '+')
			j += (size_t)snprintf(sig64enc + j, sizeof(sig64enc) - j, "%%2B");
		else if (*p == '/')
			j += (size_t)snprintf(sig64enc + j, sizeof(sig64enc) - j, "%%2F");
		else if (*p == '=')
			j += (size_t)snprintf(sig64enc + j, sizeof(sig64enc) - j, "%%3D");
		else
			sig64enc[j++] = *p;
	}
	sig64enc[j] = '\0';
	snprintf(want, sizeof(want),
	    "SharedAccessSignature sr=%s&sig=%s&se=1700000000&skn=provisioningserviceowner", host,
	    sig64enc);
	CHECK(azure_sas_token(host, "provisioningserviceowner", kb64, 1700000000, &tok, &e) == 0,
	    "sas: %s", e.msg);
	CHECK(tok != NULL && strcmp(tok, want) == 0, "sas\n  got  %s\n  want %s", tok, want);
	CHECK(
	    strchr(sig64, '+') != NULL || strchr(sig64, '/') != NULL || strchr(sig64, '=') != NULL,
	    "the vector does not exercise URL encoding: %s", sig64);
	CHECK(strstr(tok ? tok : "", kb64) == NULL, "the token holds the key");
	free(tok);
	tok = NULL;
	CHECK(azure_sas_token(host, "p", "not base64!", 1, &tok, &e) == DEVID_EINVAL && tok == NULL,
	    "a key that is not base64 was used");
	CHECK(strstr(e.msg, "not base64!") == NULL, "the error quotes the key: %s", e.msg);
	free(sig64);
	free(kb64);
}

static int
parse(const char *answer, const char *const *ids, size_t k, long *codes)
{
	struct devid_error e = {0};

	return azure_dps_results_parse((const uint8_t *)answer, strlen(answer), ids, k, codes, &e);
}

static void
test_results(void)
{
	const char *ids[] = {"aa", "bb", "cc"};
	long c[3];

	CHECK(
	    parse("{\"isSuccessful\":true}", ids, 3, c) == 0 && c[0] == 0 && c[1] == 0 && c[2] == 0,
	    "a success without errors");
	CHECK(parse("{\"isSuccessful\":false,\"errors\":[{\"registrationId\":\"BB\",\"errorCode\":"
		    "409201,\"errorStatus\":\"exists\"},{\"registrationId\":\"cc\",\"errorCode\":"
		    "429001,\"errorStatus\":\"slow down\"}]}",
		  ids, 3, c) == 0 &&
		c[0] == 0 && c[1] == 409201 && c[2] == 429001,
	    "a partial failure: %ld %ld %ld", c[0], c[1], c[2]);
	CHECK(parse("{\"isSuccessful\":false}", ids, 3, c) == 0 && c[0] == 500000 && c[2] == 500000,
	    "a failure naming no item fails every item");
	CHECK(parse("{\"isSuccessful\":false,\"errors\":[{\"registrationId\":\"zz\",\"errorCode\":"
		    "400004,\"errorStatus\":\"x\"}]}",
		  ids, 3, c) == DEVID_EINVAL,
	    "an error for an id that was not sent was accepted");
	CHECK(parse("{\"errors\":[]}", ids, 3, c) == DEVID_EINVAL, "isSuccessful missing");
	CHECK(parse("{\"isSuccessful\":true,\"errors\":[{\"registrationId\":\"aa\"}]}", ids, 3,
		  c) == DEVID_EINVAL,
	    "an error without errorCode");
	CHECK(parse("[]", ids, 3, c) == DEVID_EINVAL, "an array");
	{
		const char *bad = "{\"isSuccessful\":false,\"errors\":[\"}nor{:\"]}";
		struct devid_error e = {0};

		CHECK(azure_dps_results_parse((const uint8_t *)bad, strlen(bad), ids, 3, c, &e) ==
			    DEVID_EINVAL &&
			strstr(e.msg, "error 0 is not an object") != NULL,
		    "an error that is not an object, said: \"%s\"", e.msg);
	}
	CHECK(parse("{\"isSuccessful\":true,\"isSuccessful\":false}", ids, 3, c) == DEVID_EINVAL,
	    "duplicate keys");
}

static int
validate(const char *config)
{
	json_error_t je;
	json_t *j = json_loads(config, 0, &je);
	struct devid_error e = {0};
	int rc;

	if (j == NULL)
		return -1000;
	rc = connector_azure_dps.validate(j, &e);
	if (rc != 0)
		CHECK(strstr(e.msg, "c2VjcmV0LWtleS0wMTIzNDU2") == NULL, "message quotes the key");
	json_decref(j);
	return rc;
}

#define GOOD_EP "\"endpoint\":\"https://x.azure-devices-provisioning.net\""
#define GOOD_KEY "\"policyName\":\"enroll\",\"policyKey\":\"c2VjcmV0LWtleS0wMTIzNDU2Nzg5\""

static void
test_config(void)
{
	json_t *j, *r;
	char *text;

	CHECK(validate("{" GOOD_EP "," GOOD_KEY "}") == 0, "minimal config refused");
	CHECK(validate("{" GOOD_EP "," GOOD_KEY ",\"iotHubs\":[\"h.azure-devices.net\"],"
		       "\"allocationPolicy\":\"static\",\"initialTwin\":{\"tags\":{\"a\":1}},"
		       "\"apiVersion\":\"2021-10-01\",\"operationsPerMinute\":600}") == 0,
	    "full config refused");
	CHECK(validate("{\"endpoint\":\"http://127.0.0.1:8080/\"," GOOD_KEY "}") == 0,
	    "a local test endpoint refused");
	CHECK(validate("{" GOOD_KEY "}") == DEVID_EINVAL, "no endpoint accepted");
	CHECK(validate("{\"endpoint\":\"ftp://x\"," GOOD_KEY "}") == DEVID_EINVAL, "ftp accepted");
	CHECK(validate("{\"endpoint\":\"https://x/enrollments\"," GOOD_KEY "}") == DEVID_EINVAL,
	    "a path accepted");
	CHECK(validate("{\"endpoint\":\"https://u@x\"," GOOD_KEY "}") == DEVID_EINVAL,
	    "user info accepted");
	CHECK(validate("{" GOOD_EP ",\"policyName\":\"p\"}") == DEVID_EINVAL, "no key accepted");
	CHECK(validate("{" GOOD_EP ",\"policyName\":\"p\",\"policyKey\":\"c2VjcmV0LWtleS0wMTIzNDU2"
		       "Nzg5!\"}") == DEVID_EINVAL,
	    "a key that is not base64 accepted");
	CHECK(validate("{" GOOD_EP ",\"policyName\":\"p\",\"policyKey\":\"YWJj\"}") == DEVID_EINVAL,
	    "a 3-byte key accepted");
	CHECK(
	    validate("{" GOOD_EP "," GOOD_KEY ",\"allocationPolicy\":\"custom\"}") == DEVID_EINVAL,
	    "custom allocation accepted");
	CHECK(
	    validate("{" GOOD_EP "," GOOD_KEY ",\"allocationPolicy\":\"static\"}") == DEVID_EINVAL,
	    "static without a hub accepted");
	CHECK(validate("{" GOOD_EP "," GOOD_KEY ",\"operationsPerMinute\":0}") == DEVID_EINVAL,
	    "0 operations a minute accepted");
	CHECK(validate("{" GOOD_EP "," GOOD_KEY ",\"initialTwin\":{\"x\":{}}}") == DEVID_EINVAL,
	    "an initialTwin member DPS does not know accepted");
	CHECK(validate("{" GOOD_EP "," GOOD_KEY ",\"url\":\"https://x\"}") == DEVID_EINVAL,
	    "an unknown member accepted");

	j = json_loads("{" GOOD_EP "," GOOD_KEY "}", 0, NULL);
	r = connector_azure_dps.redact(j);
	text = json_dump_compact(r);
	CHECK(text != NULL && strstr(text, "c2VjcmV0") == NULL, "redact shows the key: %s", text);
	CHECK(json_is_true(json_object_get(r, "policyKeySet")), "redact hides that a key is set");
	CHECK(connector_azure_dps.secret_fields != NULL &&
		strcmp(connector_azure_dps.secret_fields[0], "policyKey") == 0 &&
		connector_azure_dps.secret_fields[1] == NULL,
	    "policyKey is not the secret field");
	free(text);
	json_decref(r);
	json_decref(j);
}

int
main(void)
{
	test_sas_published();
	test_sas_independent();
	test_results();
	test_config();
	return test_done();
}
