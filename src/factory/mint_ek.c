/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/ekcert.h"
#include "lib/json.h"
#include "lib/jws.h"
#include "lib/x509.h"
#include "factory/factory.h"
#include "factory/reelfiles.h"
#include "lib/banned.h"

#define EK_DEFAULT_PART "TPM2"

/* What one reel of TPMs is made of. */
struct ek_reel {
	const struct mint_ek_opts *o;
	struct vendor_pki pki;
	STACK_OF(X509) *chain;
	json_t *x5c_tail; /* the chain as x5c[1..] */
	char created[32];
	uint8_t x5t[32];
	size_t count;
	FILE *manifest;
};

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The JWK of the EK: RSA n/e or EC crv/x/y (RFC 7518 6.2, 6.3). */
static json_t *
ek_jwk(EVP_PKEY *key, enum ekcert_key k)
{
	uint8_t buf[EK_RSA_BYTES + 1 + 2 * 48];
	BIGNUM *n = NULL, *ex = NULL;
	char *a = NULL, *b = NULL;
	size_t len;
	int nl, el;
	json_t *j = NULL;

	if (k == EKCERT_RSA2048) {
		if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
		    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &ex) != 1 ||
		    (nl = BN_bn2bin(n, buf)) <= 0 || (a = b64url_encode(buf, (size_t)nl)) == NULL ||
		    (el = BN_bn2bin(ex, buf)) <= 0 || (b = b64url_encode(buf, (size_t)el)) == NULL)
			goto out;
		j = json_pack("{s:s, s:s, s:s, s:s}", "kid", "ek", "kty", "RSA", "n", a, "e", b);
		goto out;
	}
	if (EVP_PKEY_get_octet_string_param(
		key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof(buf), &len) != 1 ||
	    len < 3 || buf[0] != 0x04 || (a = b64url_encode(buf + 1, (len - 1) / 2)) == NULL ||
	    (b = b64url_encode(buf + 1 + (len - 1) / 2, (len - 1) / 2)) == NULL)
		goto out;
	j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kid", "ek", "kty", "EC", "crv",
	    k == EKCERT_P256 ? "P-256" : "P-384", "x", a, "y", b);
out:
	BN_free(n);
	BN_free(ex);
	free(a);
	free(b);
	return j;
}

/* The signed TPM entry of one EK certificate, written to the manifest. */
static int
ek_entry(struct ek_reel *r, X509 *x, const char *file, struct devid_error *e)
{
	const ASN1_OCTET_STRING *ski = x509_get0_ski(r->pki.signer);
	struct ekcert_info info;
	unsigned char *der = NULL;
	char *cert_b64 = NULL, *serial = NULL, *text = NULL;
	BIGNUM *bn = NULL;
	json_t *payload = NULL, *jwk = NULL, *x5c = NULL, *entry = NULL;
	int n, rc = DEVID_EINVAL;

	if (ekcert_check(x, &info, e) != 0) {
		devid_error_prefix(e, "%s", file);
		return rc;
	}
	for (n = 0; n < sk_X509_num(r->chain); n++)
		if (X509_check_issued(sk_X509_value(r->chain, n), x) == X509_V_OK)
			break;
	if (n == sk_X509_num(r->chain))
		return devid_error_set(
		    e, rc, "%s: not issued by a certificate of --chain %s", file, r->o->chain);
	rc = DEVID_ENOMEM;
	if ((n = i2d_X509(x, &der)) <= 0 || (cert_b64 = b64_encode(der, (size_t)n)) == NULL ||
	    (bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) == NULL ||
	    (serial = BN_bn2hex(bn)) == NULL ||
	    (jwk = ek_jwk(X509_get0_pubkey(x), info.key)) == NULL || (x5c = json_array()) == NULL ||
	    json_array_append_new(x5c, json_string(cert_b64)) ||
	    json_array_extend(x5c, r->x5c_tail) || json_object_set_new(jwk, "x5c", x5c)) {
		json_decref(x5c);
		devid_error_ssl(e, rc, "%s: cannot encode the EK", file);
		goto out;
	}
	for (char *c = serial; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	payload = json_pack("{s:i, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:s, s:s, s:s, "
			    "s:{s:[o]}}",
	    "version", 1, "kind", "tpm", "model", info.model, "partNumber",
	    r->o->part_number ? r->o->part_number : EK_DEFAULT_PART, "manufacturer",
	    "organizationName", r->pki.name, "organizationalUnitName", "TPM", "tpm", "manufacturer",
	    info.manufacturer, "model", info.model, "version", info.version, "groupId", r->o->batch,
	    "provisioningTimestamp", r->created, "uniqueId", serial, "publicKeySet", "keys", jwk);
	jwk = NULL;
	if (payload == NULL || (text = json_dump_compact(payload)) == NULL)
		goto out;
	if ((entry = jws_sign_flat(r->pki.signer_key, ASN1_STRING_get0_data(ski),
		 (size_t)ASN1_STRING_length(ski), r->x5t, (const uint8_t *)text, strlen(text),
		 e)) == NULL) {
		rc = DEVID_ECRYPTO;
		goto out;
	}
	if (json_object_set_new(entry, "header", json_pack("{s:s}", "uniqueId", serial)) != 0)
		goto out;
	free(text);
	if ((text = json_dump_compact(entry)) == NULL)
		goto out;
	if (fprintf(r->manifest, "%s%s", r->count == 0 ? "  " : ",\n  ", text) < 0) {
		rc = devid_error_set(e, DEVID_EIO, "manifest.json: %s", strerror(errno));
		goto out;
	}
	r->count++;
	rc = 0;
out:
	OPENSSL_free(der);
	OPENSSL_free(serial);
	BN_free(bn);
	free(cert_b64);
	free(text);
	json_decref(jwk);
	json_decref(payload);
	json_decref(entry);
	return rc;
}

/* The EK certificates of one file: PEM (one or more) or one DER certificate. */
static int
ek_file(struct ek_reel *r, const char *path, struct devid_error *e)
{
	STACK_OF(X509) *sk = NULL;
	uint8_t *buf = NULL;
	size_t len;
	X509 *x;
	int rc;

	if ((rc = file_read_all(path, MAX_PEM_FILE, &buf, &len, e)) != 0)
		return rc;
	if (len >= 11 && memcmp(buf, "-----BEGIN ", 11) == 0) {
		if ((sk = x509_load_pem_mem((const char *)buf, len, path, e)) == NULL)
			rc = DEVID_EINVAL;
	} else if ((x = x509_from_der(buf, len, path, e)) == NULL) {
		rc = DEVID_EINVAL;
	} else if ((sk = sk_X509_new_null()) == NULL || !sk_X509_push(sk, x)) {
		X509_free(x);
		rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", path);
	}
	for (int i = 0; rc == 0 && i < sk_X509_num(sk); i++) {
		/* PEM as x509_from_der checks DER: exact, extensions well formed */
		unsigned char *der = NULL;
		int n = i2d_X509(sk_X509_value(sk, i), &der);

		x = n > 0 ? x509_from_der(der, (size_t)n, path, e) : NULL;
		OPENSSL_free(der);
		rc = x == NULL ? DEVID_EINVAL : ek_entry(r, x, path, e);
		X509_free(x);
	}
	sk_X509_pop_free(sk, X509_free);
	free(buf);
	return rc;
}

/* A file, or every regular file of a directory by name. */
static int
ek_input(struct ek_reel *r, const char *path, struct devid_error *e)
{
	char **names = NULL, full[PATH_MAX];
	size_t n = 0, cap = 0;
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int rc = 0;

	if (stat(path, &st) != 0)
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ek_file(r, path, e);
	if ((dir = opendir(path)) == NULL)
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	while (rc == 0 && (d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(full, sizeof(full), "%s/%s", path, d->d_name);
		if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof(*names));

			if (nn == NULL) {
				rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", path);
				break;
			}
			names = nn;
		}
		if ((names[n] = strdup(full)) == NULL)
			rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", path);
		else
			n++;
	}
	closedir(dir);
	if (rc == 0 && n == 0)
		rc = devid_error_set(e, DEVID_EINVAL, "%s: no files in the directory", path);
	if (rc == 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			rc = ek_file(r, names[i], e);
		free(names[i]);
	}
	free(names);
	return rc;
}

static int
ek_chain(struct ek_reel *r, struct devid_error *e)
{
	unsigned char *der = NULL;
	char *b64;
	int n;

	if ((r->chain = x509_load_pem_file_all(r->o->chain, e)) == NULL)
		return DEVID_EINVAL;
	if (sk_X509_num(r->chain) > MAX_X5C_CERTS - 1)
		return devid_error_set(e, DEVID_EINVAL,
		    "--chain %s: %d certificates, at most %d fit in x5c beside the EK certificate",
		    r->o->chain, sk_X509_num(r->chain), MAX_X5C_CERTS - 1);
	if ((r->x5c_tail = json_array()) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	for (int i = 0; i < sk_X509_num(r->chain); i++) {
		if ((n = i2d_X509(sk_X509_value(r->chain, i), &der)) <= 0 ||
		    (b64 = b64_encode(der, (size_t)n)) == NULL) {
			OPENSSL_free(der);
			return devid_error_set(e, DEVID_ENOMEM, "--chain: cannot encode");
		}
		OPENSSL_free(der);
		der = NULL;
		n = json_array_append_new(r->x5c_tail, json_string(b64));
		free(b64);
		if (n != 0)
			return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	}
	return 0;
}

int
vendor_mint_ek(const struct mint_ek_opts *o, struct mint_result *res, struct devid_error *e)
{
	struct ek_reel r = {.o = o};
	struct claim_code claim;
	char path[PATH_MAX], stage[PATH_MAX] = "";
	time_t now = time(NULL);
	struct tm tm;
	int rc = DEVID_EINVAL;

	memset(res, 0, sizeof(*res));
	memset(&claim, 0, sizeof(claim));
	gmtime_r(&now, &tm);
	strftime(r.created, sizeof(r.created), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	if (o->ninputs == 0) {
		devid_error_set(e, rc, "no EK certificates given (--from-ek FILE|DIR)");
		goto out;
	}
	if (o->part_number != NULL && !claim_name_valid(o->part_number, strlen(o->part_number))) {
		devid_error_set(e, rc, "--part \"%s\" must match [A-Z0-9.-]{1,64}", o->part_number);
		goto out;
	}
	if ((rc = vendor_pki_load(o->dir, &r.pki, e)) != 0 || (rc = ek_chain(&r, e)) != 0 ||
	    (rc = claim_code_generate(r.pki.name, o->batch, &claim, e)) != 0)
		goto out;
	if (x509_get0_ski(r.pki.signer) == NULL || x509_sha256(r.pki.signer, r.x5t) != 0) {
		rc = devid_error_set(
		    e, DEVID_ECRYPTO, "mint: the manifest signer has no subjectKeyIdentifier");
		goto out;
	}
	if ((rc = reel_stage_dir(o->out, stage, sizeof(stage), e)) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/chips", stage);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/manifest.json", stage);
	if ((r.manifest = fopen(path, "w")) == NULL || fputs("[\n", r.manifest) == EOF) {
		rc = devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < o->ninputs; i++)
		if ((rc = ek_input(&r, o->inputs[i], e)) != 0)
			goto out;
	if (r.count > MAX_BATCH_COUNT) {
		rc = devid_error_set(e, DEVID_ELIMIT, "%zu EK certificates, at most %d in a batch",
		    r.count, MAX_BATCH_COUNT);
		goto out;
	}
	rc = fputs("\n]\n", r.manifest) == EOF ? EOF : fclose(r.manifest);
	r.manifest = NULL;
	if (rc != 0) {
		rc = devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((rc = reel_finish(stage, o->out, &r.pki, o->batch,
		 o->part_number ? o->part_number : EK_DEFAULT_PART, r.count, r.created, claim.text,
		 o->xml, e)) != 0)
		goto out;
	stage[0] = '\0';
	snprintf(res->claim, sizeof(res->claim), "%s", claim.text);
	res->seconds = (double)(time(NULL) - now);
	res->count = r.count;
out:
	if (r.manifest != NULL)
		fclose(r.manifest);
	reel_stage_remove(stage);
	OPENSSL_cleanse(&claim, sizeof(claim));
	sk_X509_pop_free(r.chain, X509_free);
	json_decref(r.x5c_tail);
	vendor_pki_release(&r.pki);
	ERR_clear_error();
	return rc;
}
