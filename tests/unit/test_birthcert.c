/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The birth certificate (IDevID) profile of DESIGN.md, field by field, on chips minted by
 * `devid vendor mint`: subject O/CN/serialNumber, notAfter 99991231235959Z, basicConstraints,
 * keyUsage, extendedKeyUsage, SKI/AKI, a positive random 16-byte serial; and the manifest
 * signer of the vendor PKI, whose extendedKeyUsage (documentSigning) is no TLS client's.
 */
#include <dirent.h>
#include <limits.h>
#include <string.h>

#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "lib/x509.h"
#include "factory/factory.h"
#include "test.h"
#include "lib/banned.h"

static void
name_entry(X509_NAME *n, int nid, char *out, size_t len)
{
	out[0] = '\0';
	X509_NAME_get_text_by_NID(n, nid, out, (int)len);
}

static void
check_chip(X509 *x, X509 *issuing, const char *file)
{
	char o[128], cn[128], sn[128], udid[65];
	X509_NAME *subj = X509_get_subject_name(x);
	const ASN1_TIME *na = X509_get0_notAfter(x);
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
	const ASN1_BIT_STRING *pk = X509_get0_pubkey_bitstr(x);
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	EXTENDED_KEY_USAGE *eku;
	unsigned char md[SHA_DIGEST_LENGTH];
	int crit = -1;
	struct devid_error e;

	devid_error_clear(&e);
	CHECK(X509_get_version(x) == X509_VERSION_3, "%s: version 3", file);
	CHECK(
	    X509_NAME_entry_count(subj) == 3, "%s: subject has exactly O, CN, serialNumber", file);
	name_entry(subj, NID_organizationName, o, sizeof(o));
	name_entry(subj, NID_commonName, cn, sizeof(cn));
	name_entry(subj, NID_serialNumber, sn, sizeof(sn));
	CHECK(x509_udid(x, udid) == 0 && strcmp(cn, udid) == 0, "%s: CN \"%s\" is the UDID %s",
	    file, cn, udid);
	CHECK(strncmp(file, udid, 64) == 0, "%s: the file is named by the UDID", file);
	CHECK(strcmp(o, "ACME") == 0, "%s: O is the vendor, got \"%s\"", file, o);
	CHECK(strlen(sn) == 18 && strspn(sn, "0123456789abcdef") == 18,
	    "%s: serialNumber is the chip serial (18 hex), got \"%s\"", file, sn);
	CHECK(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(issuing)) == 0,
	    "%s: issued by the issuing CA", file);
	CHECK(ASN1_STRING_type(na) == V_ASN1_GENERALIZEDTIME && ASN1_STRING_length(na) == 15 &&
		memcmp(ASN1_STRING_get0_data(na), "99991231235959Z", 15) == 0,
	    "%s: notAfter is GeneralizedTime 99991231235959Z", file);
	CHECK(X509_get_signature_nid(x) == NID_ecdsa_with_SHA256, "%s: ecdsa-with-SHA256", file);

	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	CHECK(bc != NULL && crit == 1 && !bc->ca && bc->pathlen == NULL,
	    "%s: basicConstraints critical CA:FALSE (crit %d)", file, crit);
	BASIC_CONSTRAINTS_free(bc);
	ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	CHECK(ku != NULL && crit == 1 && X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE,
	    "%s: keyUsage critical digitalSignature only (0x%x)", file, X509_get_key_usage(x));
	ASN1_BIT_STRING_free(ku);
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
	CHECK(eku != NULL && crit == 0 && sk_ASN1_OBJECT_num(eku) == 1 &&
		OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)) == NID_client_auth,
	    "%s: extendedKeyUsage clientAuth, not critical", file);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);

	SHA1(pk->data, (size_t)pk->length, md);
	CHECK(ski != NULL && ASN1_STRING_length(ski) == 20 &&
		memcmp(ASN1_STRING_get0_data(ski), md, 20) == 0,
	    "%s: SKI is SHA-1 of the public key (RFC 5280 4.2.1.2 method 1)", file);
	CHECK(aki != NULL && ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(issuing)) == 0,
	    "%s: AKI is the issuing CA's SKI", file);

	CHECK(ASN1_STRING_type(serial) == V_ASN1_INTEGER && ASN1_STRING_length(serial) == 16,
	    "%s: serial is positive and 16 bytes (got %d)", file, ASN1_STRING_length(serial));
	CHECK(x509_check_idevid(x, &e) == 0, "%s: passes the ingest IDevID rules: %s", file, e.msg);
}

int
main(void)
{
	char tmp[PATH_MAX], vdir[PATH_MAX + 8], out[PATH_MAX + 8], path[PATH_MAX * 2];
	struct mint_opts o = {.batch = "B1", .count = 5, .keep_keys = 4, .threads = 2};
	struct mint_result res;
	struct devid_error e;
	ASN1_INTEGER *serials[8];
	X509 *issuing, *root;
	struct dirent *de;
	DIR *d;
	int n = 0;

	devid_error_clear(&e);
	test_tmpdir(tmp, sizeof(tmp), "birthcert");
	snprintf(vdir, sizeof(vdir), "%s/v", tmp);
	snprintf(out, sizeof(out), "%s/r", tmp);
	o.dir = vdir;
	o.out = out;
	CHECK(vendor_init(vdir, "ACME", &e) == 0, "vendor init: %s", e.msg);
	CHECK(vendor_mint(&o, &res, &e) == 0, "mint: %s", e.msg);
	snprintf(path, sizeof(path), "%s/issuing.pem", vdir);
	issuing = x509_load_pem_file(path, &e);
	snprintf(path, sizeof(path), "%s/root.pem", vdir);
	root = x509_load_pem_file(path, &e);
	CHECK(issuing != NULL && root != NULL, "vendor CAs load");
	if (issuing == NULL || root == NULL)
		return test_done();

	/*
	 * The manifest signer chains to the root that anchors the chips' TLS client
	 * certificates: its only extendedKeyUsage, documentSigning (RFC 9336), keeps it from
	 * passing for one, as the chips do
	 */
	{
		X509 *signer;
		EXTENDED_KEY_USAGE *eku;
		STACK_OF(X509) *roots = sk_X509_new_null();
		X509_STORE *st;
		struct x509_verify_opts client = {.purpose = X509_PURPOSE_SSL_CLIENT};
		struct x509_verify_opts any = {.purpose = X509_PURPOSE_ANY};
		char oid[64] = "";
		int crit = -1;

		snprintf(path, sizeof(path), "%s/signer.pem", vdir);
		signer = x509_load_pem_file(path, &e);
		sk_X509_push(roots, root);
		st = x509_store_new(roots, &e);
		eku = signer != NULL ? X509_get_ext_d2i(signer, NID_ext_key_usage, &crit, NULL)
				     : NULL;
		if (eku != NULL && sk_ASN1_OBJECT_num(eku) == 1)
			OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, 0), 1);
		CHECK(strcmp(oid, "1.3.6.1.5.5.7.3.36") == 0 && crit == 0,
		    "signer: extendedKeyUsage documentSigning only, not critical (%s)", oid);
		CHECK(signer != NULL && x509_chain_verify(st, signer, NULL, &client, &e) != 0 &&
			strstr(e.msg, "unsuitable certificate purpose") != NULL,
		    "signer refused as a TLS client: %s", e.msg);
		CHECK(signer != NULL && x509_chain_verify(st, signer, NULL, &any, &e) == 0,
		    "signer chains to the root: %s", e.msg);
		EXTENDED_KEY_USAGE_free(eku);
		X509_STORE_free(st);
		sk_X509_free(roots);
		X509_free(signer);
	}

	/* the vendor CAs themselves are CAs and fail the device rules */
	CHECK(x509_check_idevid(issuing, &e) != 0 && strstr(e.msg, "CA bit") != NULL,
	    "issuing CA refused as a device: %s", e.msg);

	snprintf(path, sizeof(path), "%s/chips", out);
	d = opendir(path);
	CHECK(d != NULL, "chips directory");
	while (d != NULL && (de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		X509 *x;

		if (l < 4 || strcmp(de->d_name + l - 4, ".pem") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/chips/%s", out, de->d_name);
		x = x509_load_pem_file(path, &e);
		CHECK(x != NULL, "%s loads: %s", de->d_name, e.msg);
		if (x == NULL)
			continue;
		check_chip(x, issuing, de->d_name);
		if (n < 8)
			serials[n++] = ASN1_INTEGER_dup(X509_get0_serialNumber(x));
		X509_free(x);
	}
	if (d != NULL)
		closedir(d);
	CHECK(n == 4, "--keep-keys 4 keeps 4 chips, found %d", n);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			CHECK(ASN1_INTEGER_cmp(serials[i], serials[j]) != 0,
			    "certificate serials are random and distinct");
	for (int i = 0; i < n; i++)
		ASN1_INTEGER_free(serials[i]);
	X509_free(issuing);
	X509_free(root);
	test_rmdir(tmp);
	return test_done();
}
