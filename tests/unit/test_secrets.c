/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connector secrets at rest (src/service/secrets.c with the file key of src/cli/secretskey.c):
 * a sealed field opens again under the same key, tenant, connector and field, and under no
 * other; a changed byte, another key and no key are refused with messages that name the
 * problem and never the secret.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/secretskey.h"
#include "test.h"
#include "lib/banned.h"

static const char *const fields[] = {"secret", "password", NULL};
static const char secret[] = "s3cret-value-0123456789";

static json_t *
config(void)
{
	return json_pack("{s:s, s:s}", "url", "http://127.0.0.1/x", "secret", secret);
}

/* Seals under (t1, c1, "secret") and opens under (t2, c2): 0 or the error code. */
static int
roundtrip(struct secrets_key *k1, struct secrets_key *k2, const char *t2, const char *c2,
    struct devid_error *e)
{
	json_t *c = config();
	int rc;

	if ((rc = secrets_seal_config(k1, fields, "OEM1", "GW", c, e)) == 0)
		rc = secrets_open_config(k2, fields, t2, c2, c, e);
	if (rc == 0 && strcmp(json_string_value(json_object_get(c, "secret")), secret) != 0)
		rc = -1000;
	json_decref(c);
	return rc;
}

int
main(void)
{
	char tmp[PATH_MAX], uri[PATH_MAX + 16], uri2[PATH_MAX + 16];
	struct secrets_key *k = NULL, *k2 = NULL;
	struct devid_error e;
	json_t *c, *v;
	char *text;
	struct stat st;

	devid_error_clear(&e);
	test_tmpdir(tmp, sizeof(tmp), "secrets");
	snprintf(uri, sizeof(uri), "file:%s/k", tmp);
	snprintf(uri2, sizeof(uri2), "file:%s/k2", tmp);
	CHECK(secrets_key_create(uri, &e) == 0, "create: %s", e.msg);
	CHECK(stat(uri + 5, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32,
	    "the key file is 0600 and 32 bytes");
	CHECK(secrets_key_create(uri, &e) == DEVID_ECONFLICT, "never replaced");
	CHECK(secrets_key_create(uri2, &e) == 0, "create k2: %s", e.msg);
	CHECK(secrets_key_load(uri, &k, &e) == 0, "load: %s", e.msg);
	CHECK(secrets_key_load(uri2, &k2, &e) == 0, "load k2: %s", e.msg);
	if (k == NULL || k2 == NULL)
		goto out;
	CHECK(strlen(k->id) == 16 && strcmp(k->id, k2->id) != 0, "two keys, two ids");

	/* sealed: no plaintext left, the stored form names the key */
	c = config();
	CHECK(secrets_seal_config(k, fields, "OEM1", "GW", c, &e) == 0, "seal: %s", e.msg);
	text = json_dumps(c, JSON_COMPACT);
	CHECK(text != NULL && strstr(text, secret) == NULL, "the sealed config holds no secret");
	v = json_object_get(json_object_get(c, "secret"), "enc");
	CHECK(json_is_string(v) && strncmp(json_string_value(v), "v1:", 3) == 0 &&
		strncmp(json_string_value(v) + 3, k->id, 16) == 0,
	    "stored as v1:<key id>:…: %s", text ? text : "");
	free(text);
	CHECK(strcmp(json_string_value(json_object_get(c, "url")), "http://127.0.0.1/x") == 0,
	    "other fields untouched");
	/* a flipped character of the ciphertext */
	{
		char *s = strdup(json_string_value(v));
		size_t n = strlen(s);

		s[n - 5] = s[n - 5] == 'A' ? 'B' : 'A';
		json_object_set_new(json_object_get(c, "secret"), "enc", json_string(s));
		free(s);
		CHECK(secrets_open_config(k, fields, "OEM1", "GW", c, &e) == DEVID_ECRYPTO &&
			strstr(e.msg, "does not decrypt") != NULL,
		    "a changed ciphertext is refused: %s", e.msg);
	}
	json_decref(c);

	CHECK(roundtrip(k, k, "OEM1", "GW", &e) == 0, "round trip: %s", e.msg);
	CHECK(roundtrip(k, k, "OEM1", "GW2", &e) == DEVID_ECRYPTO, "moved to another connector");
	CHECK(roundtrip(k, k, "OEM2", "GW", &e) == DEVID_ECRYPTO, "moved to another tenant");
	CHECK(roundtrip(k, k2, "OEM1", "GW", &e) == DEVID_ECRYPTO && strstr(e.msg, k->id) != NULL &&
		strstr(e.msg, k2->id) != NULL,
	    "another key is named: %s", e.msg);
	CHECK(roundtrip(k, NULL, "OEM1", "GW", &e) == DEVID_ECONFLICT, "no key: %s", e.msg);
	CHECK(strstr(e.msg, secret) == NULL, "no message shows the secret");
	/* moved to another field of the same connector */
	c = config();
	CHECK(secrets_seal_config(k, fields, "OEM1", "GW", c, &e) == 0, "seal");
	json_object_set(c, "password", json_object_get(c, "secret"));
	json_object_del(c, "secret");
	CHECK(secrets_open_config(k, fields, "OEM1", "GW", c, &e) == DEVID_ECRYPTO,
	    "moved to another field");
	json_decref(c);
	/* no key: a secret is refused, a config without one passes */
	c = config();
	CHECK(secrets_seal_config(NULL, fields, "OEM1", "GW", c, &e) == DEVID_ECONFLICT &&
		strstr(e.msg, "--secrets-key") != NULL,
	    "no key, no secret stored: %s", e.msg);
	json_object_del(c, "secret");
	CHECK(secrets_seal_config(NULL, fields, "OEM1", "GW", c, &e) == 0, "no secret, no key");
	json_decref(c);
	/* a loose key file */
	CHECK(chmod(uri + 5, 0640) == 0, "chmod");
	secrets_key_free(k2);
	k2 = NULL;
	CHECK(secrets_key_load(uri, &k2, &e) == DEVID_EAUTH, "a key others may read is refused");
out:
	secrets_key_free(k);
	secrets_key_free(k2);
	test_rmdir(tmp);
	return test_done();
}
