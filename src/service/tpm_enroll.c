/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tpm_enroll.c - enrollment of a TPM device by credential activation (service.h,
 * docs/tpm.md): the checks of tpm2_attest.c between the device and simpleenroll's issuance.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "lib/base64.h"
#include "lib/csr.h"
#include "lib/log.h"
#include "service/internal.h"
#include "lib/banned.h"

/* The secret a credential carries: SHA-256 sized, as the EK's nameAlg allows. */
#define TPM_SECRET_LEN 32

/* Lowercase hex SHA-256 of p[0..n). */
static int
sha256_hex(const uint8_t *p, size_t n, char out[2 * 32 + 1], struct devid_error *e)
{
	uint8_t md[32];

	if (EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL) != 1)
		return devid_error_ssl(e, DEVID_ECRYPTO, "SHA-256");
	hex_encode(md, sizeof(md), out);
	return 0;
}

/* The EK certificate sent (if any) to the device's UDID; *ek is new or NULL. */
static int
ek_udid(const struct tpm_activate_request *r, X509 **ek, char udid[UDID_HEX_LEN + 1],
    struct devid_error *e)
{
	const unsigned char *p = r->ek_cert;

	*ek = NULL;
	if ((r->ek_cert == NULL) == (r->udid == NULL))
		return devid_error_set(
		    e, DEVID_EINVAL, "send exactly one of ekCertificate and udid");
	if (r->udid != NULL) {
		if (strlen(r->udid) != UDID_HEX_LEN ||
		    strspn(r->udid, "0123456789abcdef") != UDID_HEX_LEN)
			return devid_error_set(e, DEVID_EINVAL,
			    "udid: 64 lowercase hex digits (SHA-256 of the EK SPKI)");
		memcpy(udid, r->udid, UDID_HEX_LEN + 1);
		return 0;
	}
	if (r->ek_cert_len > LONG_MAX || (*ek = d2i_X509(NULL, &p, (long)r->ek_cert_len)) == NULL ||
	    p != r->ek_cert + r->ek_cert_len) {
		X509_free(*ek);
		*ek = NULL;
		ERR_clear_error();
		return devid_error_set(e, DEVID_EINVAL, "ekCertificate: not one DER certificate");
	}
	if (x509_udid(*ek, udid) != 0)
		return devid_error_set(e, DEVID_EINVAL, "ekCertificate: no usable key");
	return 0;
}

/* The device may be activated: a TPM, its EK certificate the one sent, not revoked. */
static int
activate_device(struct db *db, const char *label, const struct tpm_activate_request *r, X509 *ek,
    const char *udid, struct est_ctx *c, struct devid_error *e)
{
	int rc;

	if ((rc = est_device_by_udid(
		 db, udid, label, ek != NULL ? "the EK certificate's key" : "the udid", c, e)) != 0)
		return rc;
	c->refusal = EST_REFUSED_AUTHENTICATION;
	if (!c->dev.tpm)
		return devid_error_set(e, DEVID_EAUTH,
		    "device %s is not a TPM: it enrolls by simpleenroll with its birth certificate",
		    udid);
	/* the bytes received: ek_udid decoded exactly them */
	if (ek != NULL &&
	    (r->ek_cert_len != c->dev.cert_len ||
		memcmp(r->ek_cert, c->dev.cert, c->dev.cert_len) != 0))
		return devid_error_set(e, DEVID_EAUTH,
		    "the EK certificate is not the one registered for device %s", udid);
	if (c->dev.revoked) {
		c->refusal = EST_REFUSED_REVOKED;
		return devid_error_set(e, DEVID_EAUTH, "device %s is revoked", udid);
	}
	return 0;
}

/*
 * The AK, the signing key, the Certify of the key by the AK, and a CSR of that key: *ak and
 * *csr new on success.
 */
static int
activate_keys(const struct tpm_activate_request *r, struct tpm2_public **ak, X509_REQ **csr,
    struct est_ctx *c, struct devid_error *e)
{
	struct tpm2_public *key = NULL;
	int rc;

	*ak = NULL;
	*csr = NULL;
	c->refusal = EST_REFUSED_TPM_KEYS;
	if ((rc = tpm2_public_parse(r->ak_public, r->ak_public_len, ak, e)) != 0) {
		devid_error_prefix(e, "akPublic");
		goto out;
	}
	if ((rc = tpm2_public_parse(r->key_public, r->key_public_len, &key, e)) != 0) {
		devid_error_prefix(e, "keyPublic");
		goto out;
	}
	/* a rule broken is a refusal of the device, not a malformed request */
	if (tpm2_ak_check(*ak, e) != 0) {
		devid_error_prefix(e, "akPublic");
		rc = DEVID_EAUTH;
		goto out;
	}
	if (tpm2_signing_key_check(key, e) != 0) {
		devid_error_prefix(e, "keyPublic");
		rc = DEVID_EAUTH;
		goto out;
	}
	if ((rc = tpm2_certify_check(*ak, key, r->certify_info, r->certify_info_len,
		 r->certify_signature, r->certify_signature_len, NULL, 0, e)) != 0) {
		devid_error_prefix(e, "certifyInfo");
		if (rc == DEVID_EINVAL)
			rc = DEVID_EAUTH;
		goto out;
	}
	c->refusal = EST_REFUSED_CSR;
	if ((rc = csr_from_der(r->csr, r->csr_len, NULL, csr, e)) != 0) {
		devid_error_prefix(e, "csr");
		if (rc == DEVID_ECRYPTO)
			rc = DEVID_EINVAL;
		goto out;
	}
	if (EVP_PKEY_eq(X509_REQ_get0_pubkey(*csr), tpm2_public_get0_pkey(key)) != 1) {
		ERR_clear_error();
		rc = devid_error_set(
		    e, DEVID_EINVAL, "csr: its key is not the signing key of keyPublic");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		tpm2_public_free(*ak);
		*ak = NULL;
		X509_REQ_free(*csr);
		*csr = NULL;
	}
	tpm2_public_free(key);
	return rc;
}

/* A fresh secret wrapped to the stored EK for the AK, and the activation stored. */
static int
activate_store(struct db *db, const struct est_ctx *c, const struct tpm2_public *ak, X509_REQ *csr,
    struct tpm_activation *out, struct devid_error *e)
{
	struct tpm_activation_rec a = {.device_id = c->dev.id, .tenant_id = c->owner.id};
	const unsigned char *p = c->dev.cert;
	uint8_t secret[TPM_SECRET_LEN], ref[TPM_ACTIVATION_REF_LEN / 2];
	unsigned char *der = NULL;
	const uint8_t *name;
	size_t name_len;
	X509 *ek = NULL;
	int n, rc;

	if (RAND_bytes(secret, sizeof(secret)) != 1 || RAND_bytes(ref, sizeof(ref)) != 1) {
		rc = devid_error_ssl(e, DEVID_ECRYPTO, "no randomness for an activation");
		goto out;
	}
	if ((ek = d2i_X509(NULL, &p, (long)c->dev.cert_len)) == NULL) {
		rc = devid_error_ssl(
		    e, DEVID_EINTERNAL, "device %s: stored EK certificate", c->udid);
		goto out;
	}
	name = tpm2_public_name(ak, &name_len);
	if ((rc = tpm2_make_credential(X509_get0_pubkey(ek), name, name_len, secret, sizeof(secret),
		 &out->cred, e)) != 0) {
		devid_error_prefix(e, "device %s: MakeCredential", c->udid);
		rc = DEVID_EINTERNAL;
		goto out;
	}
	if ((n = i2d_X509_REQ(csr, &der)) <= 0) {
		rc = devid_error_ssl(e, DEVID_EINTERNAL, "csr: encoding");
		goto out;
	}
	hex_encode(ref, sizeof(ref), a.ref);
	hex_encode(name, name_len, a.ak_name);
	if ((rc = sha256_hex(secret, sizeof(secret), a.secret_sha256, e)) != 0)
		goto out;
	a.csr = der;
	a.csr_len = (size_t)n;
	a.created_at = time(NULL);
	a.expires_at = a.created_at + TPM_ACTIVATION_TTL_SECS;
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_tpm_activation_put(db, &a, e)) != 0 || (rc = db_commit(db, e)) != 0) {
		db_rollback(db);
		/* two activations of one device at once: one stored, the other a server error
		 * (ECONFLICT would read as "no CA") */
		if (rc == DEVID_ECONFLICT)
			rc = devid_error_set(e, DEVID_EINTERNAL,
			    "device %s: another activation was stored at the same moment", c->udid);
		goto out;
	}
	memcpy(out->id, a.ref, sizeof(out->id));
	out->expires_at = a.expires_at;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_free(der);
	X509_free(ek);
	return rc;
}

int
service_tpm_activate(struct service *svc, const char *label, const struct tpm_activate_request *r,
    struct tpm_activation *out, struct devid_error *e)
{
	struct est_ctx c = {.refusal = EST_REFUSED_REQUEST};
	char udid[UDID_HEX_LEN + 1];
	struct tpm2_public *ak = NULL;
	X509_REQ *csr = NULL;
	X509 *ek = NULL;
	struct db *db;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = ek_udid(r, &ek, udid, e)) != 0) {
		counter_add(&svc->metrics.est_refused[c.refusal], 1);
		return rc;
	}
	db = store_acquire(svc->store);
	if ((rc = activate_device(db, label, r, ek, udid, &c, e)) != 0 ||
	    (rc = activate_keys(r, &ak, &csr, &c, e)) != 0)
		goto out;
	c.refusal = EST_REFUSED_ERROR;
	if ((rc = activate_store(db, &c, ak, csr, out, e)) != 0)
		goto out;
	log_info("tpm activation", LOG_STR("tenant", c.owner.name), LOG_STR("udid", c.udid));
out:
	if (rc != 0)
		counter_add(&svc->metrics.est_refused[c.refusal], 1);
	tpm2_public_free(ak);
	X509_REQ_free(csr);
	X509_free(ek);
	est_ctx_release(&c);
	store_release(svc->store, db);
	return rc;
}

/* Takes the activation and checks its answer: not expired, the secret's SHA-256. */
static int
enroll_take(struct db *db, const char *id, const uint8_t *secret, size_t secret_len,
    struct tpm_activation_rec *a, struct devid_error *e)
{
	uint8_t want[32], got[32];
	int rc;

	if ((rc = db_begin(db, e)) != 0)
		return rc;
	if ((rc = store_tpm_activation_take(db, id, a, e)) != 0 || (rc = db_commit(db, e)) != 0) {
		db_rollback(db);
		if (rc == DEVID_ENOTFOUND)
			devid_error_set(e, DEVID_EAUTH,
			    "no pending activation %s: unknown, answered already, or expired", id);
		return rc == DEVID_ENOTFOUND ? DEVID_EAUTH : rc;
	}
	if (a->expires_at <= time(NULL))
		return devid_error_set(e, DEVID_EAUTH, "activation %s has expired", id);
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(hex_digit(a->secret_sha256[2 * i]) << 4 |
		    hex_digit(a->secret_sha256[2 * i + 1]));
	if (EVP_Digest(secret, secret_len, got, NULL, EVP_sha256(), NULL) != 1)
		return devid_error_ssl(e, DEVID_ECRYPTO, "SHA-256");
	if (CRYPTO_memcmp(want, got, sizeof(want)) != 0)
		return devid_error_set(e, DEVID_EAUTH,
		    "activation %s: wrong secret (the credential was not activated by the TPM "
		    "that holds the registered EK, with that AK)",
		    id);
	return 0;
}

int
service_tpm_enroll(struct service *svc, const char *label, const char *id, const uint8_t *secret,
    size_t secret_len, X509 **issued, struct devid_error *e)
{
	struct est_ctx c = {.refusal = EST_REFUSED_REQUEST};
	struct tpm_activation_rec a = {0};
	const unsigned char *p;
	X509_REQ *csr = NULL;
	struct db *db = NULL;
	int rc;

	*issued = NULL;
	if (strlen(id) != TPM_ACTIVATION_REF_LEN ||
	    strspn(id, "0123456789abcdef") != TPM_ACTIVATION_REF_LEN) {
		rc = devid_error_set(e, DEVID_EINVAL, "id: 32 lowercase hex digits");
		goto out;
	}
	if (secret_len == 0 || secret_len > TPM2_CREDENTIAL_MAX) {
		rc = devid_error_set(
		    e, DEVID_EINVAL, "secret: 1 to %d bytes", (int)TPM2_CREDENTIAL_MAX);
		goto out;
	}
	db = store_acquire(svc->store);
	c.refusal = EST_REFUSED_ACTIVATION;
	if ((rc = enroll_take(db, id, secret, secret_len, &a, e)) != 0) {
		if (rc != DEVID_EAUTH)
			c.refusal = EST_REFUSED_ERROR;
		goto out;
	}
	if ((rc = est_device_by_udid(db, a.udid, label, "the activation's device", &c, e)) != 0)
		goto out;
	if (c.owner.id != a.tenant_id) {
		c.refusal = EST_REFUSED_NOT_CLAIMED;
		rc = devid_error_set(
		    e, DEVID_EAUTH, "device %s was released since its activation", c.udid);
		goto out;
	}
	if (c.dev.revoked) {
		c.refusal = EST_REFUSED_REVOKED;
		rc = devid_error_set(e, DEVID_EAUTH, "device %s is revoked", c.udid);
		goto out;
	}
	c.refusal = EST_REFUSED_ERROR;
	p = a.csr;
	if ((csr = d2i_X509_REQ(NULL, &p, (long)a.csr_len)) == NULL) {
		rc = devid_error_ssl(e, DEVID_EINTERNAL, "activation %s: stored CSR", id);
		goto out;
	}
	if ((rc = est_ca_open(svc, db, &c, e)) != 0)
		goto out;
	rc = est_issue(svc, db, EST_TPM_ENROLL, &c, csr, issued, e);
out:
	if (rc == 0)
		counter_add(&svc->metrics.est_issued[EST_TPM_ENROLL], 1);
	else
		counter_add(&svc->metrics.est_refused[c.refusal], 1);
	X509_REQ_free(csr);
	tpm_activation_rec_release(&a);
	est_ctx_release(&c);
	if (db != NULL)
		store_release(svc->store, db);
	return rc;
}
