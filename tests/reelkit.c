#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "lib/jws.h"
#include "reelkit.h"
#include "lib/banned.h"

json_t *
reelkit_load_json(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);

	if (j == NULL) {
		printf("%s: %s\n", path, je.text);
		exit(1);
	}
	return j;
}

void
reelkit_save_json(const char *path, json_t *j)
{
	if (json_dump_file(j, path, JSON_COMPACT) != 0) {
		printf("cannot write %s\n", path);
		exit(1);
	}
	json_decref(j);
}

char *
reelkit_decode(const json_t *jws, const char *member)
{
	const char *s = json_string_value(json_object_get(jws, member));
	uint8_t *p;
	size_t n;

	if (s == NULL || b64url_decode(s, strlen(s), &p, &n) != 0) {
		printf("cannot decode %s\n", member);
		exit(1);
	}
	return (char *)p;
}

json_t *
reelkit_payload(const json_t *jws)
{
	char *text = reelkit_decode(jws, "payload");
	json_t *j = json_loads(text, 0, NULL);

	free(text);
	return j;
}

void
reelkit_resign_raw(json_t *jws, const char *text, EVP_PKEY *key)
{
	const char *prot = json_string_value(json_object_get(jws, "protected"));
	char *pay = b64url_encode((const uint8_t *)text, strlen(text)), *input, *sig_b64;
	uint8_t sig[ES256_SIG_LEN];
	size_t n = strlen(prot) + strlen(pay) + 2;

	input = malloc(n);
	snprintf(input, n, "%s.%s", prot, pay);
	if (es256_sign(key, (const uint8_t *)input, strlen(input), sig, NULL) != 0) {
		printf("re-sign failed\n");
		exit(1);
	}
	sig_b64 = b64url_encode(sig, sizeof(sig));
	json_object_set_new(jws, "payload", json_string(pay));
	json_object_set_new(jws, "signature", json_string(sig_b64));
	free(pay);
	free(input);
	free(sig_b64);
}

void
reelkit_resign(json_t *jws, json_t *payload, EVP_PKEY *key)
{
	char *text = json_dumps(payload, JSON_COMPACT);

	reelkit_resign_raw(jws, text, key);
	free(text);
	json_decref(payload);
}

json_t *
reelkit_identity_jwk(json_t *payload)
{
	return json_array_get(json_object_get(json_object_get(payload, "publicKeySet"), "keys"), 0);
}
