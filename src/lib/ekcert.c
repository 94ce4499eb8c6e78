/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "ekcert.h"
#include "x509.h"
#include "banned.h"

#define PROFILE "TCG EK profile"

static const struct {
	const char *oid, *name;
	size_t off;
} tpm_attrs[] = {
    {"2.23.133.2.1", "tpmManufacturer (2.23.133.2.1)", offsetof(struct ekcert_info, manufacturer)},
    {"2.23.133.2.2", "tpmModel (2.23.133.2.2)", offsetof(struct ekcert_info, model)},
    {"2.23.133.2.3", "tpmVersion (2.23.133.2.3)", offsetof(struct ekcert_info, version)},
};
#define NATTRS (sizeof(tpm_attrs) / sizeof(tpm_attrs[0]))

const char *
ekcert_key_name(enum ekcert_key k)
{
	switch (k) {
	case EKCERT_RSA2048:
		return "RSA 2048";
	case EKCERT_P256:
		return "ECC P-256";
	case EKCERT_P384:
		return "ECC P-384";
	}
	return "unknown";
}

/* The EK's type: RSA 2048 (rsaEncryption) or ECC P-256/P-384 (uncompressed point). */
static int
check_key(X509 *x, enum ekcert_key *k, struct devid_error *e)
{
	X509_PUBKEY *pk = X509_get_X509_PUBKEY(x);
	ASN1_OBJECT *alg = NULL;
	EVP_PKEY *key;
	char curve[32];
	int bits;

	if (pk == NULL || X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, pk) != 1)
		return devid_error_set(e, DEVID_EINVAL, "EK: no public key");
	ERR_set_mark();
	key = X509_get0_pubkey(x);
	ERR_pop_to_mark();
	if (OBJ_obj2nid(alg) == NID_rsaEncryption) {
		if (key == NULL || (bits = EVP_PKEY_get_bits(key)) <= 0)
			return devid_error_set(e, DEVID_EINVAL, "EK: the RSA key does not decode");
		if (bits != 2048)
			return devid_error_set(e, DEVID_EINVAL,
			    PROFILE ": the EK must be RSA 2048, ECC P-256 or ECC P-384: RSA %d",
			    bits);
		*k = EKCERT_RSA2048;
		return 0;
	}
	if (OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey)
		return devid_error_set(e, DEVID_EINVAL,
		    PROFILE ": the EK must be RSA 2048, ECC P-256 or ECC P-384: algorithm %s",
		    OBJ_nid2sn(OBJ_obj2nid(alg)));
	if (x509_spki_check_uncompressed(pk, e) != 0) {
		devid_error_prefix(e, "EK");
		return DEVID_EINVAL;
	}
	if (key == NULL || EVP_PKEY_get_group_name(key, curve, sizeof(curve), NULL) != 1)
		return devid_error_set(e, DEVID_EINVAL, "EK: the EC key does not decode");
	*k = strcmp(curve, "prime256v1") == 0 ? EKCERT_P256 : EKCERT_P384;
	return 0;
}

static int
check_usages(X509 *x, enum ekcert_key k, struct devid_error *e)
{
	EXTENDED_KEY_USAGE *eku;
	ASN1_OBJECT *want;
	int crit = -1, found = 0;

	if ((X509_get_extension_flags(x) & EXFLAG_CA) != 0)
		return devid_error_set(e, DEVID_EINVAL, "RFC 5280 4.2.1.9: CA bit set");
	if ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) == 0)
		return devid_error_set(e, DEVID_EINVAL, PROFILE ": keyUsage missing");
	if (k == EKCERT_RSA2048 && (X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT) == 0)
		return devid_error_set(
		    e, DEVID_EINVAL, PROFILE ": keyUsage of an RSA EK lacks keyEncipherment");
	if (k != EKCERT_RSA2048 && (X509_get_key_usage(x) & KU_KEY_AGREEMENT) == 0)
		return devid_error_set(
		    e, DEVID_EINVAL, PROFILE ": keyUsage of an ECC EK lacks keyAgreement");
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
	if (eku == NULL) {
		ERR_clear_error();
		return devid_error_set(e, DEVID_EINVAL,
		    PROFILE ": extendedKeyUsage %s: tcg-kp-EKCertificate (" EKCERT_EKU_OID
			    ") required",
		    crit == -1 ? "missing" : "malformed");
	}
	if ((want = OBJ_txt2obj(EKCERT_EKU_OID, 1)) != NULL)
		for (int i = 0; i < sk_ASN1_OBJECT_num(eku) && !found; i++)
			found = OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), want) == 0;
	ASN1_OBJECT_free(want);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	if (!found)
		return devid_error_set(e, DEVID_EINVAL,
		    PROFILE ": extendedKeyUsage lacks tcg-kp-EKCertificate (" EKCERT_EKU_OID ")");
	return 0;
}

/* One attribute value: printable ASCII, 1 to MAX_TPM_ATTR_LEN bytes. */
static int
attr_copy(const ASN1_STRING *v, const char *name, char *out, struct devid_error *e)
{
	unsigned char *u = NULL;
	int n = ASN1_STRING_to_UTF8(&u, v), rc = DEVID_EINVAL;

	if (n < 1 || n > MAX_TPM_ATTR_LEN) {
		devid_error_set(e, rc,
		    PROFILE ": subjectAltName %s: empty, not text or over %d bytes", name,
		    MAX_TPM_ATTR_LEN);
		goto out;
	}
	for (int i = 0; i < n; i++)
		if (u[i] < 0x20 || u[i] > 0x7e) {
			devid_error_set(
			    e, rc, PROFILE ": subjectAltName %s: not printable ASCII", name);
			goto out;
		}
	memcpy(out, u, (size_t)n);
	out[n] = '\0';
	rc = 0;
out:
	OPENSSL_free(u);
	return rc;
}

/* The TPM attributes of one directoryName; DEVID_ENOTFOUND when it holds none. */
static int
read_dirname(const X509_NAME *dn, struct ekcert_info *info, struct devid_error *e)
{
	bool seen[NATTRS] = {false};
	size_t nseen = 0;

	for (int i = 0; i < X509_NAME_entry_count(dn); i++) {
		const X509_NAME_ENTRY *ne = X509_NAME_get_entry(dn, i);
		char oid[32];

		if (OBJ_obj2txt(oid, sizeof(oid), X509_NAME_ENTRY_get_object(ne), 1) <= 0)
			continue;
		for (size_t a = 0; a < NATTRS; a++) {
			if (strcmp(oid, tpm_attrs[a].oid) != 0)
				continue;
			if (seen[a])
				return devid_error_set(e, DEVID_EINVAL,
				    PROFILE ": subjectAltName holds %s twice", tpm_attrs[a].name);
			if (attr_copy(X509_NAME_ENTRY_get_data(ne), tpm_attrs[a].name,
				(char *)info + tpm_attrs[a].off, e) != 0)
				return DEVID_EINVAL;
			seen[a] = true;
			nseen++;
		}
	}
	if (nseen == 0)
		return DEVID_ENOTFOUND;
	for (size_t a = 0; a < NATTRS; a++)
		if (!seen[a])
			return devid_error_set(e, DEVID_EINVAL,
			    PROFILE ": subjectAltName directoryName lacks %s", tpm_attrs[a].name);
	return 0;
}

static int
check_san(X509 *x, struct ekcert_info *info, struct devid_error *e)
{
	GENERAL_NAMES *gens;
	int crit = -1, rc = DEVID_EINVAL, got = 0;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		ERR_clear_error();
		return devid_error_set(e, rc,
		    PROFILE ": subjectAltName %s: it must name the TPM manufacturer, model and "
			    "version",
		    crit == -1 ? "missing" : "malformed");
	}
	if (X509_NAME_entry_count(X509_get_subject_name(x)) == 0 && !crit) {
		devid_error_set(e, rc,
		    "RFC 5280 4.2.1.6: subjectAltName must be critical when the subject is "
		    "empty");
		goto out;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type != GEN_DIRNAME)
			continue;
		switch (read_dirname(g->d.directoryName, info, e)) {
		case 0:
			if (got++ > 0) {
				devid_error_set(
				    e, rc, PROFILE ": subjectAltName names the TPM more than once");
				goto out;
			}
			break;
		case DEVID_ENOTFOUND:
			break;
		default:
			goto out;
		}
	}
	if (got == 0) {
		devid_error_set(e, rc,
		    PROFILE
		    ": subjectAltName has no directoryName with the TPM manufacturer, model "
		    "and version");
		goto out;
	}
	rc = 0;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

int
ekcert_check(X509 *x, struct ekcert_info *info, struct devid_error *e)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	struct ekcert_info tmp;
	int rc = DEVID_EINVAL;

	memset(&tmp, 0, sizeof(tmp));
	if (X509_get_version(x) != X509_VERSION_3)
		return devid_error_set(e, rc, "RFC 5280 4.1.2.1: not a version 3 certificate");
	if (serial == NULL || ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER ||
	    ASN1_STRING_length(serial) > 20 || ASN1_STRING_length(serial) < 1 ||
	    (ASN1_STRING_length(serial) == 1 && ASN1_STRING_get0_data(serial)[0] == 0))
		return devid_error_set(
		    e, rc, "RFC 5280 4.1.2.2: serial must be positive and at most 20 bytes");
	if (check_key(x, &tmp.key, e) != 0 || check_usages(x, tmp.key, e) != 0 ||
	    check_san(x, &tmp, e) != 0)
		return rc;
	if (X509_get0_authority_key_id(x) == NULL)
		return devid_error_set(e, rc, "RFC 5280 4.2.1.1: authorityKeyIdentifier missing");
	if (info != NULL)
		*info = tmp;
	return 0;
}
