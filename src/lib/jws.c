/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>

#include "base64.h"
#include "json.h"
#include "jws.h"
#include "limits.h"
#include "banned.h"

/* ES256 is ECDSA on P-256 only (RFC 7518 3.4). */
static bool
is_p256(EVP_PKEY *k)
{
	char curve[32];

	return k != NULL && EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(k, curve, sizeof(curve), NULL) == 1 &&
	    strcmp(curve, "prime256v1") == 0;
}

int
es256_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[ES256_SIG_LEN],
    struct devid_error *e)
{
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	unsigned char der[80];
	const unsigned char *p = der;
	size_t derlen = sizeof(der);
	const BIGNUM *r, *s;
	int rc = DEVID_ECRYPTO;

	if (!is_p256(key)) {
		devid_error_set(e, rc, "es256: the signing key is not an EC P-256 key");
		goto out;
	}
	if ((md = EVP_MD_CTX_new()) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "es256: out of memory");
		goto out;
	}
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, der, &derlen, msg, len) != 1) {
		devid_error_ssl(e, rc, "es256: signing failed");
		goto out;
	}
	if ((es = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) == NULL) {
		devid_error_ssl(e, rc, "es256: signature not decodable");
		goto out;
	}
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32) {
		devid_error_set(e, rc, "es256: key is not P-256");
		goto out;
	}
	rc = 0;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return rc;
}

int
es256_verify(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *sig, size_t siglen,
    struct devid_error *e)
{
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int derlen, rc = DEVID_ECRYPTO;

	if (!is_p256(pub)) {
		devid_error_set(e, rc, "ES256 needs an EC P-256 key");
		goto out;
	}
	if (siglen != ES256_SIG_LEN) {
		devid_error_set(e, rc, "ES256 signature is %zu bytes, must be 64 (r||s)", siglen);
		goto out;
	}
	if ((es = ECDSA_SIG_new()) == NULL || (r = BN_bin2bn(sig, 32, NULL)) == NULL ||
	    (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		rc = devid_error_ssl(e, DEVID_ENOMEM, "es256: out of memory");
		goto out;
	}
	if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0) {
		devid_error_ssl(e, rc, "es256: cannot encode signature");
		goto out;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) != 1) {
		devid_error_ssl(e, rc, "es256: cannot use the verification key");
		goto out;
	}
	if (EVP_DigestVerify(md, der, (size_t)derlen, msg, len) != 1) {
		devid_error_ssl(e, rc, "ES256 signature does not verify");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return rc;
}

int
jws_header_parse(const char *prot_b64, size_t len, struct jws_header *h, struct devid_error *e)
{
	uint8_t *raw = NULL, *x5t = NULL;
	size_t rawlen, x5tlen, n;
	json_t *root = NULL;
	const char *alg, *typ, *kid, *x5t_b64;
	int rc = DEVID_EINVAL;

	memset(h, 0, sizeof(*h));
	if (len > MAX_PROTECTED_SIZE * 4 / 3 + 4) {
		devid_error_set(
		    e, rc, "protected header: %zu bytes, limit %d", len, MAX_PROTECTED_SIZE);
		goto out;
	}
	if (b64url_decode(prot_b64, len, &raw, &rawlen) != 0) {
		devid_error_set(e, rc, "protected header: not unpadded base64url");
		goto out;
	}
	if ((root = json_parse(raw, rawlen, "protected header", e)) == NULL)
		goto out;
	if (!json_is_object(root)) {
		devid_error_set(e, rc, "protected header: not a JSON object");
		goto out;
	}
	if (json_get_str(root, "alg", 1, 16, true, &alg, NULL, "protected header", e) != 0)
		goto out;
	if (strcmp(alg, "ES256") != 0) {
		devid_error_set(e, rc, "protected header: alg \"%s\" is not ES256", alg);
		goto out;
	}
	switch (json_get_str(root, "typ", 1, 16, false, &typ, NULL, "protected header", e)) {
	case 0:
		if (strcmp(typ, "JWT") != 0) {
			devid_error_set(e, rc, "protected header: typ \"%s\" is not JWT", typ);
			goto out;
		}
		break;
	case DEVID_ENOTFOUND:
		break;
	default:
		goto out;
	}
	switch (json_get_str(
	    root, "kid", 1, sizeof(h->kid) - 1, false, &kid, &n, "protected header", e)) {
	case 0:
		memcpy(h->kid, kid, n + 1);
		break;
	case DEVID_ENOTFOUND:
		break;
	default:
		goto out;
	}
	if (json_get_str(root, "x5t#S256", 43, 43, true, &x5t_b64, &n, "protected header", e) != 0)
		goto out;
	if (b64url_decode(x5t_b64, n, &x5t, &x5tlen) != 0 || x5tlen != 32) {
		devid_error_set(e, rc, "protected header: x5t#S256 is not 32 bytes of base64url");
		goto out;
	}
	memcpy(h->x5t_s256, x5t, 32);
	rc = 0;
out:
	free(raw);
	free(x5t);
	json_decref(root);
	return rc;
}

json_t *
jws_sign_flat(EVP_PKEY *key, const uint8_t *kid, size_t kidlen, const uint8_t x5t_s256[32],
    const uint8_t *payload, size_t plen, struct devid_error *e)
{
	char *kid_b64 = NULL, *x5t_b64 = NULL, *hdr = NULL, *prot_b64 = NULL;
	char *pay_b64 = NULL, *sig_b64 = NULL, *input = NULL;
	size_t prot_len, pay_len;
	uint8_t sig[ES256_SIG_LEN];
	json_t *h = NULL, *out = NULL;

	if ((kid_b64 = b64url_encode(kid, kidlen)) == NULL ||
	    (x5t_b64 = b64url_encode(x5t_s256, 32)) == NULL)
		goto oom;
	h = json_pack("{s:s, s:s, s:s, s:s}", "typ", "JWT", "alg", "ES256", "kid", kid_b64,
	    "x5t#S256", x5t_b64);
	if (h == NULL || (hdr = json_dump_compact(h)) == NULL)
		goto oom;
	if ((prot_b64 = b64url_encode((const uint8_t *)hdr, strlen(hdr))) == NULL ||
	    (pay_b64 = b64url_encode(payload, plen)) == NULL)
		goto oom;
	prot_len = strlen(prot_b64);
	pay_len = strlen(pay_b64);
	if ((input = malloc(prot_len + pay_len + 2)) == NULL)
		goto oom;
	memcpy(input, prot_b64, prot_len);
	input[prot_len] = '.';
	memcpy(input + prot_len + 1, pay_b64, pay_len + 1);
	if (es256_sign(key, (const uint8_t *)input, prot_len + 1 + pay_len, sig, e) != 0)
		goto out;
	if ((sig_b64 = b64url_encode(sig, sizeof(sig))) == NULL)
		goto oom;
	out = json_pack(
	    "{s:s, s:s, s:s}", "payload", pay_b64, "protected", prot_b64, "signature", sig_b64);
	if (out == NULL)
		goto oom;
	goto out;
oom:
	devid_error_set(e, DEVID_ENOMEM, "jws: out of memory");
out:
	free(kid_b64);
	free(x5t_b64);
	free(hdr);
	free(prot_b64);
	free(pay_b64);
	free(sig_b64);
	free(input);
	json_decref(h);
	return out;
}

int
jws_verify(EVP_PKEY *pub, const char *prot_b64, size_t prot_len, const char *payload_b64,
    size_t payload_len, const char *sig_b64, size_t sig_len, struct devid_error *e)
{
	uint8_t *sig = NULL;
	char *input = NULL;
	size_t siglen;
	int rc = DEVID_EINVAL;

	if (b64url_decode(sig_b64, sig_len, &sig, &siglen) != 0) {
		devid_error_set(e, rc, "signature is not unpadded base64url");
		goto out;
	}
	if ((input = malloc(prot_len + payload_len + 2)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "jws: out of memory");
		goto out;
	}
	memcpy(input, prot_b64, prot_len);
	input[prot_len] = '.';
	memcpy(input + prot_len + 1, payload_b64, payload_len);
	rc = es256_verify(pub, (const uint8_t *)input, prot_len + 1 + payload_len, sig, siglen, e);
out:
	free(sig);
	free(input);
	return rc;
}
