/* SPDX-License-Identifier: Apache-2.0 */
/* JWS ES256: sign/verify round trip over exact bytes, header rules, raw r||s only. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lib/base64.h"
#include "lib/jws.h"
#include "lib/x509.h"
#include "test.h"
#include "lib/banned.h"

static char *
header_b64(const char *json)
{
	return b64url_encode((const uint8_t *)json, strlen(json));
}

static void
header_rejected(const char *json, const char *want)
{
	struct jws_header h;
	struct devid_error e;
	char *b = header_b64(json);

	devid_error_clear(&e);
	CHECK(jws_header_parse(b, strlen(b), &h, &e) != 0, "header %s must be rejected", json);
	CHECK(
	    strstr(e.msg, want) != NULL, "header %s: \"%s\" should mention %s", json, e.msg, want);
	free(b);
}

int
main(void)
{
	struct devid_error e;
	EVP_PKEY *k = pkey_new_p256(&e), *k2 = pkey_new_p256(&e);
	uint8_t x5t[32], sig[ES256_SIG_LEN];
	const uint8_t kid[] = {1, 2, 3};
	const char *payload = "{\"hello\":\"world\"}";
	struct jws_header h;
	json_t *j;
	const char *p, *pr, *s;
	char *bad;

	devid_error_clear(&e);
	CHECK(k != NULL && k2 != NULL, "keys");
	memset(x5t, 0xab, sizeof(x5t));
	j = jws_sign_flat(k, kid, sizeof(kid), x5t, (const uint8_t *)payload, strlen(payload), &e);
	CHECK(j != NULL, "sign: %s", e.msg);
	p = json_string_value(json_object_get(j, "payload"));
	pr = json_string_value(json_object_get(j, "protected"));
	s = json_string_value(json_object_get(j, "signature"));
	CHECK(p && pr && s, "flattened members present");
	CHECK(strlen(s) == 86, "signature is 64 raw bytes in base64url (86 chars), got %zu",
	    strlen(s));
	CHECK(jws_verify(k, pr, strlen(pr), p, strlen(p), s, strlen(s), &e) == 0, "verify: %s",
	    e.msg);
	CHECK(jws_verify(k2, pr, strlen(pr), p, strlen(p), s, strlen(s), &e) == DEVID_ECRYPTO,
	    "another key does not verify");
	CHECK(jws_header_parse(pr, strlen(pr), &h, &e) == 0 && memcmp(h.x5t_s256, x5t, 32) == 0 &&
		strcmp(h.kid, "AQID") == 0,
	    "header round-trips: %s", e.msg);

	/* one flipped byte anywhere in the signed input or the signature fails */
	bad = strdup(p);
	bad[3] = bad[3] == 'A' ? 'B' : 'A';
	CHECK(jws_verify(k, pr, strlen(pr), bad, strlen(bad), s, strlen(s), &e) != 0,
	    "flipped payload character rejected");
	free(bad);
	bad = strdup(s);
	bad[10] = bad[10] == 'A' ? 'B' : 'A';
	CHECK(jws_verify(k, pr, strlen(pr), p, strlen(p), bad, strlen(bad), &e) != 0,
	    "flipped signature character rejected");
	free(bad);
	CHECK(jws_verify(k, pr, strlen(pr), p, strlen(p), s, strlen(s) - 1, &e) != 0,
	    "truncated signature rejected");

	/* raw r||s of exactly 64 bytes; a DER signature is not accepted */
	CHECK(es256_sign(k, (const uint8_t *)"m", 1, sig, &e) == 0, "raw sign");
	CHECK(es256_verify(k, (const uint8_t *)"m", 1, sig, 64, &e) == 0, "raw verify");
	CHECK(es256_verify(k, (const uint8_t *)"m", 1, sig, 63, &e) != 0 &&
		strstr(e.msg, "must be 64") != NULL,
	    "63 bytes rejected: %s", e.msg);
	memset(sig, 0, 32);
	CHECK(es256_verify(k, (const uint8_t *)"m", 1, sig, 64, &e) != 0, "r = 0 rejected");

	header_rejected(
	    "{\"alg\":\"none\",\"x5t#S256\":\"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s\"}",
	    "ES256");
	header_rejected("{\"alg\":\"ES256\",\"typ\":\"JOSE\",\"x5t#S256\":"
			"\"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s\"}",
	    "typ");
	header_rejected("{\"alg\":\"ES256\"}", "x5t#S256");
	header_rejected("{\"alg\":\"ES256\",\"alg\":\"ES256\",\"x5t#S256\":"
			"\"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s\"}",
	    "duplicate");
	header_rejected("[]", "object");
	json_decref(j);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	return test_done();
}
