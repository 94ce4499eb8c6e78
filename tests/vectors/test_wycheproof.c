/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_wycheproof.c - es256_verify() over Wycheproof's ECDSA P-256/SHA-256 vectors with raw
 * r||s (IEEE P1363) signatures, the JWS ES256 encoding.
 *
 * Usage: test_wycheproof <vectors folder>. Every case's verdict must agree with its "result":
 * "valid" verifies, "invalid" does not, and "acceptable" (legacy encodings a lenient verifier
 * may take) must not verify either, because devid is strict. See docs/vectors.md.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/error.h"
#include "lib/jws.h"
#include "test.h"
#include "lib/banned.h"

#define WYCHEPROOF_FILE "wycheproof/ecdsa_secp256r1_sha256_p1363_test.json"
#define WYCHEPROOF_SCHEMA "ecdsa_p1363_verify_schema_v1.json"

struct counts {
	int cases;
	int valid;
	int invalid;
	int acceptable;
};

static int
hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes a hex string of even length; *out is malloc'ed (free()), even when empty. */
static int
hex_decode(const char *s, uint8_t **out, size_t *outlen)
{
	size_t n = strlen(s);
	uint8_t *buf;
	int hi, lo;

	*out = NULL;
	*outlen = 0;
	if (n % 2 != 0)
		return DEVID_EINVAL;
	if ((buf = malloc(n / 2 + 1)) == NULL)
		return DEVID_ENOMEM;
	for (size_t i = 0; i < n / 2; i++) {
		if ((hi = hex_nibble(s[2 * i])) < 0 || (lo = hex_nibble(s[2 * i + 1])) < 0) {
			free(buf);
			return DEVID_EINVAL;
		}
		buf[i] = (uint8_t)(hi << 4 | lo);
	}
	*out = buf;
	*outlen = n / 2;
	return 0;
}

static const char *
obj_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* The group's key from its DER SubjectPublicKeyInfo, which must be a P-256 EC key. */
static EVP_PKEY *
group_key(const json_t *group, int gi)
{
	const char *hex = obj_str(group, "publicKeyDer");
	const unsigned char *p;
	uint8_t *der = NULL;
	size_t len = 0;
	EVP_PKEY *pub = NULL;
	char curve[32];

	if (hex == NULL || hex_decode(hex, &der, &len) != 0) {
		CHECK(false, "group %d: publicKeyDer missing or not hex", gi);
		goto out;
	}
	p = der;
	if ((pub = d2i_PUBKEY(NULL, &p, (long)len)) == NULL || p != der + len) {
		CHECK(false, "group %d: publicKeyDer is not exactly one SubjectPublicKeyInfo", gi);
		EVP_PKEY_free(pub);
		pub = NULL;
		goto out;
	}
	if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(pub, curve, sizeof(curve), NULL) != 1 ||
	    strcmp(curve, "prime256v1") != 0) {
		CHECK(false, "group %d: key is not on P-256", gi);
		EVP_PKEY_free(pub);
		pub = NULL;
	}
out:
	ERR_clear_error();
	free(der);
	return pub;
}

static void
flags_print(const json_t *flags, char *buf, size_t size)
{
	size_t i, n = 0;
	json_t *f;

	buf[0] = '\0';
	json_array_foreach(flags, i, f)
	{
		if (n < size)
			n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "," : "",
			    json_string_value(f) ? json_string_value(f) : "?");
	}
}

static void
case_run(EVP_PKEY *pub, const json_t *tc, int gi, struct counts *c)
{
	const char *result = obj_str(tc, "result"), *comment = obj_str(tc, "comment");
	const char *msg_hex = obj_str(tc, "msg"), *sig_hex = obj_str(tc, "sig");
	json_int_t id = json_integer_value(json_object_get(tc, "tcId"));
	uint8_t *msg = NULL, *sig = NULL;
	size_t msglen, siglen;
	struct devid_error e = {0};
	char flags[256];
	int rc;

	flags_print(json_object_get(tc, "flags"), flags, sizeof(flags));
	if (result == NULL || msg_hex == NULL || sig_hex == NULL) {
		CHECK(false, "group %d tcId %lld: result, msg or sig missing", gi, (long long)id);
		return;
	}
	if (hex_decode(msg_hex, &msg, &msglen) != 0 || hex_decode(sig_hex, &sig, &siglen) != 0) {
		CHECK(false, "tcId %lld: msg or sig is not hex", (long long)id);
		goto out;
	}
	c->cases++;
	rc = es256_verify(pub, msg, msglen, sig, siglen, &e);
	if (strcmp(result, "valid") == 0) {
		c->valid++;
		CHECK(rc == 0, "tcId %lld (%s; %s): valid signature rejected: %s", (long long)id,
		    comment, flags, e.msg);
	} else if (strcmp(result, "invalid") == 0) {
		c->invalid++;
		CHECK(rc != 0, "tcId %lld (%s; %s): invalid signature accepted", (long long)id,
		    comment, flags);
	} else if (strcmp(result, "acceptable") == 0) {
		/* devid is strict: what Wycheproof merely tolerates is rejected */
		c->acceptable++;
		CHECK(rc != 0,
		    "tcId %lld (%s; %s): acceptable signature accepted, devid must reject",
		    (long long)id, comment, flags);
	} else {
		CHECK(false, "tcId %lld: unknown result \"%s\"", (long long)id, result);
	}
out:
	free(msg);
	free(sig);
}

static void
group_run(const json_t *group, int gi, struct counts *c)
{
	const json_t *key = json_object_get(group, "publicKey");
	const char *type = obj_str(group, "type"), *sha = obj_str(group, "sha");
	const char *curve = obj_str(key, "curve");
	json_t *tests = json_object_get(group, "tests"), *tc;
	EVP_PKEY *pub;
	size_t i;

	if (type == NULL || strcmp(type, "EcdsaP1363Verify") != 0 || sha == NULL ||
	    strcmp(sha, "SHA-256") != 0 || curve == NULL || strcmp(curve, "secp256r1") != 0) {
		CHECK(false, "group %d: not an EcdsaP1363Verify group for secp256r1 with SHA-256",
		    gi);
		return;
	}
	if (!json_is_array(tests)) {
		CHECK(false, "group %d: \"tests\" is not an array", gi);
		return;
	}
	if ((pub = group_key(group, gi)) == NULL)
		return;
	json_array_foreach(tests, i, tc)
	{
		case_run(pub, tc, gi, c);
	}
	EVP_PKEY_free(pub);
}

int
main(int argc, char **argv)
{
	char path[4096], reason[4200];
	struct stat st;
	json_error_t jerr;
	json_t *root, *groups, *group;
	const char *schema;
	struct counts c = {0};
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: test_wycheproof <vectors folder>\n");
		return 2;
	}
	if (stat(argv[1], &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(reason, sizeof(reason), "test vector folder %s not present", argv[1]);
		test_skip(reason);
	}
	snprintf(path, sizeof(path), "%s/%s", argv[1], WYCHEPROOF_FILE);
	if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		CHECK(false, "%s: cannot read JSON: line %d: %s", path, jerr.line, jerr.text);
		return test_done();
	}
	schema = obj_str(root, "schema");
	CHECK(schema != NULL && strcmp(schema, WYCHEPROOF_SCHEMA) == 0, "%s: schema is not %s",
	    path, WYCHEPROOF_SCHEMA);
	groups = json_object_get(root, "testGroups");
	CHECK(json_is_array(groups), "%s: \"testGroups\" is not an array", path);
	json_array_foreach(groups, i, group)
	{
		group_run(group, (int)i, &c);
	}
	CHECK(c.cases > 0, "%s: no test cases", path);
	CHECK(c.cases == json_integer_value(json_object_get(root, "numberOfTests")),
	    "%s: ran %d cases, the file announces %lld", path, c.cases,
	    (long long)json_integer_value(json_object_get(root, "numberOfTests")));
	printf("wycheproof %s: %d cases: %d valid, %d invalid, %d acceptable (must reject)\n",
	    WYCHEPROOF_FILE, c.cases, c.valid, c.invalid, c.acceptable);
	json_decref(root);
	return test_done();
}
