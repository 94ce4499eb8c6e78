/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "connectors/azure_dps.h"
#include "lib/base64.h"
#include "lib/banned.h"

int
azure_sas_token(const char *resource, const char *policy, const char *key_b64, int64_t expiry,
    char **out, struct devid_error *e)
{
	struct dynbuf sign, tok;
	uint8_t *key = NULL;
	size_t keylen = 0;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char *sig = NULL;
	int rc = DEVID_ENOMEM;

	*out = NULL;
	dynbuf_init(&sign, 4096);
	dynbuf_init(&tok, 8192);
	if (strlen(key_b64) > AZURE_SAS_MAX_KEY ||
	    b64_decode(key_b64, strlen(key_b64), 0, &key, &keylen) != 0 || keylen == 0) {
		/* never quote the key */
		rc = devid_error_set(e, DEVID_EINVAL, "azure-dps: policyKey is not base64");
		goto out;
	}
	if (pct_encode(&sign, resource, strlen(resource), false) != 0 ||
	    dynbuf_addf(&sign, "\n%" PRId64, expiry) != 0) {
		devid_error_set(e, rc, "azure-dps: out of memory");
		goto out;
	}
	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)sign.p, sign.len, mac,
		&maclen) == NULL) {
		rc = devid_error_set(e, DEVID_ECRYPTO, "azure-dps: HMAC failed");
		goto out;
	}
	if ((sig = b64_encode(mac, maclen)) == NULL ||
	    dynbuf_addstr(&tok, "SharedAccessSignature sr=") != 0 ||
	    pct_encode(&tok, resource, strlen(resource), false) != 0 ||
	    dynbuf_addstr(&tok, "&sig=") != 0 || pct_encode(&tok, sig, strlen(sig), false) != 0 ||
	    dynbuf_addf(&tok, "&se=%" PRId64, expiry) != 0 || dynbuf_addstr(&tok, "&skn=") != 0 ||
	    pct_encode(&tok, policy, strlen(policy), false) != 0) {
		devid_error_set(e, rc, "azure-dps: out of memory");
		goto out;
	}
	*out = (char *)dynbuf_detach(&tok, NULL);
	rc = 0;
out:
	if (key != NULL)
		OPENSSL_cleanse(key, keylen);
	OPENSSL_cleanse(mac, sizeof(mac));
	free(key);
	free(sig);
	dynbuf_release(&sign);
	dynbuf_release(&tok);
	return rc;
}
