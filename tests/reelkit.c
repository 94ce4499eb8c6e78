/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/x509.h>

#include "lib/base64.h"
#include "lib/jws.h"
#include "lib/x509.h"
#include "factory/factory.h"
#include "reelkit.h"
#include "lib/banned.h"

static char workdir[PATH_MAX];

void
reelkit_workdir(const char *dir)
{
	snprintf(workdir, sizeof(workdir), "%s", dir);
}

const char *
reelkit_path(const char *a, const char *b)
{
	static char buf[4][PATH_MAX * 2];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s%s%s", workdir, a, *b ? "/" : "", b);
	return buf[i];
}

void
reelkit_mint(const char *vdir, const char *batch, size_t count)
{
	struct mint_opts o = {.batch = batch, .count = count, .threads = 2};
	struct mint_result res;
	struct devid_error e;

	o.dir = reelkit_path(vdir, "");
	o.out = reelkit_path(batch, "");
	if (vendor_mint(&o, &res, &e) != 0) {
		printf("mint: %s\n", e.msg);
		exit(1);
	}
}

char *
reelkit_read_text(const char *path)
{
	uint8_t *buf;
	size_t n;

	if (file_read_all(path, 1 << 20, &buf, &n, NULL) != 0) {
		printf("cannot read %s\n", path);
		exit(1);
	}
	return (char *)buf;
}

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

EVP_PKEY *
reelkit_key_form(EVP_PKEY *key, const char *form)
{
	EVP_PKEY *k = EVP_PKEY_dup(key);

	if (k == NULL ||
	    EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, form) !=
		1) {
		printf("cannot write the key in %s form\n", form);
		exit(1);
	}
	return k;
}

void
reelkit_reissue_form(json_t *payload, const char *vendor_dir, const char *form)
{
	json_t *x5c = json_object_get(reelkit_identity_jwk(payload), "x5c");
	const char *b64 = json_string_value(json_array_get(x5c, 0));
	char path[4096], *out;
	unsigned char *der = NULL;
	const unsigned char *q;
	uint8_t *old;
	size_t n;
	EVP_PKEY *issuing, *k;
	X509 *x;
	int len;

	snprintf(path, sizeof(path), "%s/issuing.key", vendor_dir);
	if (b64 == NULL || b64_decode(b64, strlen(b64), 0, &old, &n) != 0 ||
	    (issuing = pkey_load_pem_file(path, NULL)) == NULL) {
		printf("reissue: cannot read x5c[0] or %s\n", path);
		exit(1);
	}
	q = old;
	if ((x = d2i_X509(NULL, &q, (long)n)) == NULL) {
		printf("reissue: x5c[0] does not decode\n");
		exit(1);
	}
	k = reelkit_key_form(X509_get0_pubkey(x), form);
	if (X509_set_pubkey(x, k) != 1 || X509_sign(x, issuing, EVP_sha256()) <= 0 ||
	    (len = i2d_X509(x, &der)) <= 0) {
		printf("reissue: cannot sign the %s certificate\n", form);
		exit(1);
	}
	out = b64_encode(der, (size_t)len);
	json_array_set_new(x5c, 0, json_string(out));
	free(out);
	free(old);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	EVP_PKEY_free(issuing);
	X509_free(x);
}

static size_t
compact_len(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t n = strlen(s);

	free(s);
	return n;
}

void
reelkit_pad_entry(json_t *entry, size_t size, EVP_PKEY *key)
{
	json_t *p = reelkit_payload(entry);
	size_t now = compact_len(entry), add, rest;
	char *pad;

	/* the signed padding takes the bulk (4 characters of base64url per 3 bytes) */
	if (size < now + 64) {
		printf("pad: entry is %zu bytes already, want %zu\n", now, size);
		exit(1);
	}
	add = (size - now - 64) * 3 / 4;
	pad = malloc(add + 1);
	memset(pad, 'p', add);
	pad[add] = '\0';
	json_object_set_new(p, "padding", json_string(pad));
	free(pad);
	reelkit_resign(entry, p, key);
	/* ,"x-padding":"..." is 15 bytes and its contents */
	now = compact_len(entry);
	if (size < now + 15) {
		printf("pad: overshot (%zu bytes, want %zu)\n", now, size);
		exit(1);
	}
	rest = size - now - 15;
	pad = malloc(rest + 1);
	memset(pad, 'x', rest);
	pad[rest] = '\0';
	json_object_set_new(entry, "x-padding", json_string(pad));
	free(pad);
	if (compact_len(entry) != size) {
		printf("pad: %zu bytes, want %zu\n", compact_len(entry), size);
		exit(1);
	}
}
