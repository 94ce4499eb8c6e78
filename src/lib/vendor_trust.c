/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base64.h"
#include "vendor_trust.h"
#include "x509.h"
#include "banned.h"

struct trusted_signer {
	X509 *cert;
	EVP_PKEY *pub; /* borrowed from cert */
	uint8_t x5t[32];
};

struct vendor_trust {
	X509_STORE *roots;
	struct trusted_signer *signers;
	int nsigners;
};

void
vendor_trust_free(struct vendor_trust *t)
{
	if (t == NULL)
		return;
	X509_STORE_free(t->roots);
	for (int i = 0; i < t->nsigners; i++)
		X509_free(t->signers[i].cert);
	free(t->signers);
	free(t);
}

struct vendor_trust *
vendor_trust_new(STACK_OF(X509) *roots, STACK_OF(X509) *signers, struct devid_error *e)
{
	struct x509_verify_opts opts = {.purpose = X509_PURPOSE_ANY};
	struct vendor_trust *t;
	char curve[32];

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->signers = calloc((size_t)sk_X509_num(signers) + 1, sizeof(*t->signers))) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "trust: out of memory");
		goto fail;
	}
	if ((t->roots = x509_store_new(roots, e)) == NULL)
		goto fail;
	for (int i = 0; i < sk_X509_num(signers); i++) {
		struct trusted_signer *s = &t->signers[i];
		X509 *x = sk_X509_value(signers, i);

		s->pub = X509_get0_pubkey(x);
		if (s->pub == NULL || EVP_PKEY_get_base_id(s->pub) != EVP_PKEY_EC ||
		    EVP_PKEY_get_group_name(s->pub, curve, sizeof(curve), NULL) != 1 ||
		    strcmp(curve, "prime256v1") != 0) {
			devid_error_set(
			    e, DEVID_EINVAL, "manifest signer %d: key is not P-256 (ES256)", i);
			goto fail;
		}
		if (x509_chain_verify(t->roots, x, NULL, &opts, e) != 0) {
			devid_error_prefix(
			    e, "manifest signer %d does not chain to the vendor root", i);
			goto fail;
		}
		if (x509_sha256(x, s->x5t) != 0) {
			devid_error_set(e, DEVID_ECRYPTO, "manifest signer %d: cannot hash", i);
			goto fail;
		}
		X509_up_ref(x);
		s->cert = x;
		t->nsigners++;
	}
	return t;
fail:
	vendor_trust_free(t);
	return NULL;
}

int
vendor_trust_refuse(const char *what, const uint8_t x5t[32], struct devid_error *e)
{
	char *b64 = b64url_encode(x5t, 32);

	devid_error_set(e, DEVID_ECRYPTO, "%s not trusted (x5t#S256 %s matches no trusted signer)",
	    what, b64 != NULL ? b64 : "?");
	free(b64);
	return DEVID_ECRYPTO;
}

X509 *
vendor_trust_get0_signer(const struct vendor_trust *t, const uint8_t x5t[32])
{
	for (int i = 0; i < t->nsigners; i++)
		if (CRYPTO_memcmp(t->signers[i].x5t, x5t, 32) == 0)
			return t->signers[i].cert;
	return NULL;
}

X509_STORE *
vendor_trust_get0_roots(const struct vendor_trust *t)
{
	return t->roots;
}
