/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Operational certificates in the domain, on SQLite and on PostgreSQL: a tenant's CA (a file
 * key here; tests/integration/est.sh drives a PKCS#11 one), the EST policy (claimed, not
 * revoked, the device's own birth certificate and key, the label's tenant, the quota, a
 * re-enrollment that keeps its subject, a CSR key written uncompressed, no manifest signer),
 * devid's certificate profile (its UDID is the device's), audit records, the
 * quota under concurrent enrollments, and the CRL. Usage: test_ca sqlite|postgres.
 */
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "cli/keyloader.h"
#include "lib/base64.h"
#include "lib/dynbuf.h"
#include "lib/x509.h"
#include "service/service.h"
#include "factory/factory.h"
#include "reelkit.h"
#include "test.h"
#include "storekit.h"
#include "lib/banned.h"

#define NCHIPS 8

static char tmp[PATH_MAX];

struct chip {
	X509 *cert;
	EVP_PKEY *key;
	char udid[UDID_HEX_LEN + 1];
};

static struct chip chips[NCHIPS]; /* of batch B1, claimed by OEM1 */
static struct chip loose; /* of batch B2, never claimed */

static void
mint(const char *batch, size_t count, char claim[MAX_CLAIM_TEXT_LEN + 1])
{
	struct mint_opts o = {.batch = batch, .count = count, .keep_keys = count, .threads = 2};
	struct mint_result res;
	struct devid_error e;

	o.dir = reelkit_path("v", "");
	o.out = reelkit_path(batch, "");
	if (vendor_mint(&o, &res, &e) != 0) {
		printf("mint: %s\n", e.msg);
		exit(1);
	}
	snprintf(claim, MAX_CLAIM_TEXT_LEN + 1, "%s", res.claim);
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* The chips whose keys a reel kept, in UDID order. */
static void
load_chips(const char *batch, struct chip *out, int n)
{
	struct dirent **names;
	char dir[PATH_MAX * 2], f[PATH_MAX * 3];
	int k = 0, m;

	snprintf(dir, sizeof(dir), "%s", reelkit_path(batch, "chips"));
	if ((m = scandir(dir, &names, NULL, by_name)) < 0)
		exit(1);
	for (int i = 0; i < m; i++) {
		size_t len = strlen(names[i]->d_name);

		if (k < n && len == UDID_HEX_LEN + 4 &&
		    strcmp(names[i]->d_name + UDID_HEX_LEN, ".pem") == 0) {
			snprintf(out[k].udid, sizeof(out[k].udid), "%.*s", UDID_HEX_LEN,
			    names[i]->d_name);
			snprintf(f, sizeof(f), "%s/%s.pem", dir, out[k].udid);
			out[k].cert = x509_load_pem_file(f, NULL);
			snprintf(f, sizeof(f), "%s/%s.key", dir, out[k].udid);
			out[k].key = pkey_load_pem_file(f, NULL);
			if (out[k].cert == NULL || out[k].key == NULL)
				exit(1);
			k++;
		}
		free(names[i]);
	}
	free(names);
	if (k != n)
		exit(1);
}

/* A CSR for key with the given subject (NULL: CN=anything), signed by key. */
static X509_REQ *
csr_for(EVP_PKEY *key, const X509_NAME *subject)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();

	X509_NAME_add_entry_by_txt(
	    n, "CN", MBSTRING_ASC, (const unsigned char *)"chosen by device", -1, -1, 0);
	if (r == NULL || !X509_REQ_set_subject_name(r, subject ? subject : n) ||
	    !X509_REQ_set_pubkey(r, key) || X509_REQ_sign(r, key, EVP_sha256()) <= 0)
		exit(1);
	X509_NAME_free(n);
	return r;
}

static int
enroll(struct service *svc, enum est_op op, const char *label, X509 *client, EVP_PKEY *csr_key,
    const X509_NAME *subject, X509 **issued, struct devid_error *e)
{
	X509_REQ *csr = csr_for(csr_key, subject);
	int rc = service_est_enroll(svc, op, label, NULL, client, NULL, csr, issued, e);
	unsigned char *der = NULL;
	const unsigned char *p;
	int n;

	X509_REQ_free(csr);
	if (rc == 0) {
		/* the certificate is made for encoding (service.h): decode it as a client would */
		CHECK(X509_get0_pubkey(*issued) == NULL, "the issued key is left undecoded");
		ERR_clear_error();
		n = i2d_X509(*issued, &der);
		p = der;
		X509_free(*issued);
		*issued = n > 0 ? d2i_X509(NULL, &p, n) : NULL;
		OPENSSL_free(der);
		if (*issued == NULL)
			exit(1);
	}
	return rc;
}

static const char *
name_field(X509 *x, int nid)
{
	static char buf[3][128];
	static int i;
	X509_NAME *n = X509_get_subject_name(x);
	int at = X509_NAME_get_index_by_NID(n, nid, -1);

	i = (i + 1) % 3;
	buf[i][0] = '\0';
	if (at >= 0) {
		ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, at));
		snprintf(buf[i], sizeof(buf[i]), "%.*s", ASN1_STRING_length(s),
		    (const char *)ASN1_STRING_get0_data(s));
	}
	return buf[i];
}

/* Checks the profile of an issued certificate. */
static void
check_profile(X509 *x, X509 *ca, const struct chip *c, int days)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	uint32_t ku = X509_get_key_usage(x), xku;
	char udid[UDID_HEX_LEN + 1] = "", birth[UDID_HEX_LEN + 1] = "";
	int pday, psec;

	CHECK(strcmp(name_field(x, NID_commonName), c->udid) == 0, "CN is the UDID: %s",
	    name_field(x, NID_commonName));
	CHECK(strcmp(name_field(x, NID_organizationName), "OEM1") == 0, "O is the tenant");
	CHECK(strlen(name_field(x, NID_serialNumber)) > 0, "serialNumber is the chip serial");
	CHECK(X509_verify(x, X509_get0_pubkey(ca)) == 1, "signed by the tenant's CA");
	CHECK(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)) == 0, "issuer");
	CHECK(EVP_PKEY_eq(X509_get0_pubkey(x), c->key) == 1, "carries the device key");
	/* one key, one UDID: the certificate's key names the device, as its birth certificate's */
	CHECK(x509_udid(x, udid) == 0 && strcmp(udid, c->udid) == 0 &&
		x509_udid(c->cert, birth) == 0 && strcmp(birth, c->udid) == 0,
	    "the certificate's UDID %s is the device's %s", udid, c->udid);
	CHECK(ASN1_STRING_length(sn) == 16, "16-byte serial (%d)", ASN1_STRING_length(sn));
	CHECK(ASN1_TIME_diff(&pday, &psec, X509_get0_notBefore(x), X509_get0_notAfter(x)) == 1 &&
		pday == days && psec == 0,
	    "valid %d days (%d d %d s)", days, pday, psec);
	CHECK(X509_check_ca(x) == 0, "not a CA");
	CHECK((X509_get_extension_flags(x) & EXFLAG_KUSAGE) && ku == KU_DIGITAL_SIGNATURE,
	    "keyUsage digitalSignature only");
	xku = X509_get_extended_key_usage(x);
	CHECK(xku == XKU_SSL_CLIENT, "extKeyUsage clientAuth only (%x)", xku);
	CHECK(X509_get0_subject_key_id(x) != NULL && X509_get0_authority_key_id(x) != NULL,
	    "SKI and AKI");
}

struct racer {
	struct service *svc;
	const struct chip *c;
	const struct principal *p;
	int rc;
};

static void *
race_revoke(void *arg)
{
	struct racer *r = arg;
	struct devid_error e;

	if ((r->rc = service_revoke(r->svc, r->p, r->c->udid, NULL, &e)) != 0)
		printf("# revoker: %s\n", e.msg);
	return NULL;
}

static void *
race(void *arg)
{
	struct racer *r = arg;
	struct devid_error e;
	X509 *x = NULL;

	X509_REQ *csr = csr_for(r->c->key, NULL);

	/* not enroll(): CHECK is not for threads */
	r->rc = service_est_enroll(r->svc, EST_ENROLL, NULL, NULL, r->c->cert, NULL, csr, &x, &e);
	X509_REQ_free(csr);
	if (r->rc != 0 && r->rc != DEVID_ELIMIT)
		printf("# racer: %s\n", e.msg);
	X509_free(x);
	return NULL;
}

/* The serials a DER CRL lists, and whether the CA signed it; its number in *number. */
static int
crl_lists(const struct dynbuf *der, X509 *ca, X509 *x, long *number)
{
	const unsigned char *p = der->p;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)der->len);
	X509_REVOKED *rv = NULL;
	ASN1_INTEGER *num;
	int found;

	if (crl == NULL || p != der->p + der->len ||
	    X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)
		return -1;
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	*number = num ? ASN1_INTEGER_get(num) : -1;
	ASN1_INTEGER_free(num);
	found = X509_CRL_get0_by_serial(crl, &rv, X509_get0_serialNumber(x)) == 1;
	X509_CRL_free(crl);
	return found;
}

/*
 * The reasonCode of x's entry on a DER CRL: the code, -1 when the entry has none (RFC 5280
 * 5.3.1: unspecified is written as no extension), -2 when x is not listed or the CRL is bad.
 */
static int
crl_reason(const struct dynbuf *der, X509 *ca, X509 *x)
{
	const unsigned char *p = der->p;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)der->len);
	X509_REVOKED *rv = NULL;
	ASN1_ENUMERATED *reason;
	int crit = 0, code = -2;

	if (crl != NULL && X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1 &&
	    X509_CRL_get0_by_serial(crl, &rv, X509_get0_serialNumber(x)) == 1) {
		reason = X509_REVOKED_get_ext_d2i(rv, NID_crl_reason, &crit, NULL);
		code = reason != NULL ? (int)ASN1_ENUMERATED_get(reason) : -1;
		ASN1_ENUMERATED_free(reason);
	}
	X509_CRL_free(crl);
	return code;
}

/* The one URI of x's CRL distribution point, "" when it has none. */
static const char *
crl_dp(X509 *x)
{
	static char buf[1024];
	CRL_DIST_POINTS *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	DIST_POINT *dp;
	GENERAL_NAME *gn;

	buf[0] = '\0';
	if (dps != NULL && sk_DIST_POINT_num(dps) == 1 &&
	    (dp = sk_DIST_POINT_value(dps, 0))->distpoint != NULL && dp->distpoint->type == 0 &&
	    sk_GENERAL_NAME_num(dp->distpoint->name.fullname) == 1 &&
	    (gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0))->type == GEN_URI)
		snprintf(buf, sizeof(buf), "%.*s",
		    ASN1_STRING_length(gn->d.uniformResourceIdentifier),
		    (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier));
	CRL_DIST_POINTS_free(dps);
	return buf;
}

/* CRL fetches racing across two services (two servers) on one database. */
struct crl_racer {
	struct service *svc;
	long numbers[6];
	unsigned char md[6][32];
	int rc;
};

static void *
race_crl(void *arg)
{
	struct crl_racer *r = arg;
	struct devid_error e;
	struct dynbuf d;

	dynbuf_init(&d, 1 << 20);
	for (int i = 0; i < 6 && r->rc == 0; i++) {
		const unsigned char *p;
		X509_CRL *crl;
		ASN1_INTEGER *num;

		dynbuf_reset(&d);
		if ((r->rc = service_crl(r->svc, "OEM1", 1, &d, &e)) != 0)
			break;
		p = d.p;
		crl = d2i_X509_CRL(NULL, &p, (long)d.len);
		num = crl ? X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL) : NULL;
		r->numbers[i] = num ? ASN1_INTEGER_get(num) : -1;
		SHA256(d.p, d.len, r->md[i]);
		ASN1_INTEGER_free(num);
		X509_CRL_free(crl);
	}
	dynbuf_release(&d);
	return NULL;
}

/* Forces the next service_crl to sign again, as 12 hours would. */
static void
crl_age(struct store *s)
{
	struct db *db = store_acquire(s);

	db_exec(db, "UPDATE ca_crls SET this_update = 0", NULL, 0, NULL, NULL);
	store_release(s, db);
}

int
main(int argc, char **argv)
{
	char url[PATH_MAX + 32], claim1[MAX_CLAIM_TEXT_LEN + 1], claim2[MAX_CLAIM_TEXT_LEN + 1];
	char keyuri[PATH_MAX * 2 + 8];
	struct service svc = {.verify_threads = 2, .keys = &devid_key_loader};
	struct principal vendor = {0}, oem = {0}, op = {0};
	struct manifest_report r;
	struct devid_error e;
	struct store *s = NULL;
	struct batch_rec b;
	struct db *db;
	struct dynbuf crl;
	X509 *ca = NULL, *x = NULL, *x2 = NULL, *got = NULL;
	STACK_OF(X509) *cas = NULL;
	json_t *q;
	bool changed, pg = argc > 1 && strcmp(argv[1], "postgres") == 0;
	long num1 = 0, num2 = 0;
	int64_t audits;

	devid_error_clear(&e);
	if (pg && getenv("DEVID_TEST_PG_URL") == NULL)
		test_skip("DEVID_TEST_PG_URL not set (run under scripts/with-postgres)");
	test_tmpdir(tmp, sizeof(tmp), "ca");
	reelkit_workdir(tmp);
	if (pg)
		snprintf(url, sizeof(url), "%s", getenv("DEVID_TEST_PG_URL"));
	else
		snprintf(url, sizeof(url), "sqlite:%s/devid.db", tmp);
	if (vendor_init(reelkit_path("v", ""), "ACME", &e) != 0) {
		printf("init: %s\n", e.msg);
		return 1;
	}
	mint("B1", NCHIPS, claim1);
	mint("B2", 1, claim2);
	load_chips("B1", chips, NCHIPS);
	load_chips("B2", &loose, 1);

	CHECK(store_open(url, 4, &s, &e) == 0, "store: %s", e.msg);
	if (s == NULL)
		return test_done();
	svc.store = s;
	svc.cas = service_ca_cache_new();
	db = store_acquire(s);
	{
		uint8_t *root, *signer, md[32];
		size_t n;
		char hex[65];
		X509 *sc = x509_load_pem_file(reelkit_path("v", "signer.pem"), &e);

		x509_sha256(sc, md);
		hex_encode(md, 32, hex);
		X509_free(sc);
		if (file_read_all(reelkit_path("v", "root.pem"), 1 << 16, &root, &n, &e) != 0 ||
		    file_read_all(reelkit_path("v", "signer.pem"), 1 << 16, &signer, &n, &e) != 0)
			return 1;
		CHECK(store_tenant_add(db, "ACME", TENANT_VENDOR, &vendor.tenant.id, &e) == 0 &&
			store_tenant_add(db, "OEM1", TENANT_OEM, &oem.tenant.id, &e) == 0 &&
			store_tenant_add(db, "OEM2", TENANT_OEM, &op.tenant.id, &e) == 0 &&
			store_trust_add(
			    db, vendor.tenant.id, (char *)root, (char *)signer, hex, &e) == 0,
		    "set-up: %s", e.msg);
		free(root);
		free(signer);
	}
	store_release(s, db);
	snprintf(vendor.tenant.name, sizeof(vendor.tenant.name), "ACME");
	vendor.tenant.kind = TENANT_VENDOR;
	vendor.role = ROLE_VENDOR;
	snprintf(oem.tenant.name, sizeof(oem.tenant.name), "OEM1");
	oem.tenant.kind = TENANT_OEM;
	oem.role = ROLE_ADMIN;
	snprintf(oem.token_id, sizeof(oem.token_id), "0001");
	snprintf(op.tenant.name, sizeof(op.tenant.name), "OEM2");
	op.tenant.kind = TENANT_OEM;
	op.role = ROLE_OPERATOR;
	snprintf(op.token_id, sizeof(op.token_id), "0002");

	/* publish both batches; OEM1 claims B1, B2 stays unclaimed */
	for (int i = 0; i < 2; i++) {
		const char *batch = i == 0 ? "B1" : "B2";
		json_t *body = json_pack("{s:o, s:o}", "descriptor",
		    json_load_file(reelkit_path(batch, "batch.json"), 0, NULL), "manifest",
		    json_load_file(reelkit_path(batch, "manifest.json"), 0, NULL));
		char *text = json_dumps(body, JSON_COMPACT);

		CHECK(service_publish(&svc, &vendor, (const uint8_t *)text, strlen(text), &r, &e) ==
			0,
		    "publish %s: %s", batch, e.msg);
		manifest_report_release(&r);
		free(text);
		json_decref(body);
	}
	CHECK(service_claim(&svc, &oem, "127.0.0.1", (const uint8_t *)claim1, strlen(claim1), &b,
		  &changed, NULL, &e) == 0,
	    "claim: %s", e.msg);

	/* a device of a tenant without a CA */
	CHECK(enroll(&svc, EST_ENROLL, NULL, chips[0].cert, chips[0].key, NULL, &x, &e) ==
		DEVID_ECONFLICT,
	    "no CA yet: %s", e.msg);

	/* the CA */
	snprintf(keyuri, sizeof(keyuri), "file:%s/ca.key", tmp);
	CHECK(service_ca_init(&svc, "OEM1", keyuri, 0, &ca, &e) == 0, "ca init: %s", e.msg);
	CHECK(ca != NULL && X509_check_ca(ca) == 1 && X509_verify(ca, X509_get0_pubkey(ca)) == 1,
	    "a self-signed CA certificate");
	CHECK(service_ca_init(&svc, "OEM1", "file:/nonexistent/x", 0, NULL, &e) == DEVID_ECONFLICT,
	    "a second CA is refused before a key is made: %s", e.msg);
	CHECK(service_ca_init(&svc, "ACME", "file:/nonexistent/y", 0, NULL, &e) == DEVID_ENOTFOUND,
	    "a vendor has no operational CA: %s", e.msg);
	CHECK(service_ca_init(&svc, "OEM2", "file:/nonexistent/z", 99999, NULL, &e) == DEVID_EINVAL,
	    "validity bounds: %s", e.msg);
	CHECK(service_ca_get(&svc, "OEM1", &cas, &e) == 0 && sk_X509_num(cas) == 1 &&
		X509_cmp(sk_X509_value(cas, 0), ca) == 0,
	    "ca show gives the certificate");
	sk_X509_pop_free(cas, X509_free);
	cas = NULL;
	audits = storekit_count(s, "SELECT COUNT(*) FROM audit WHERE action = 'est.enroll'");

	/* a claimed device enrolls; the profile, not the CSR, decides */
	CHECK(enroll(&svc, EST_ENROLL, NULL, chips[0].cert, chips[0].key, NULL, &x, &e) == 0,
	    "enroll: %s", e.msg);
	if (x != NULL)
		check_profile(x, ca, &chips[0], CA_DEFAULT_VALIDITY_DAYS);
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM audit WHERE action = 'est.enroll'") ==
		audits + 1,
	    "the issuance is audited");
	CHECK(enroll(&svc, EST_ENROLL, "OEM1", chips[0].cert, chips[0].key, NULL, &x2, &e) == 0 &&
		x2 != NULL &&
		ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(x2)) != 0,
	    "with the label of its tenant, again: a new serial: %s", e.msg);
	X509_free(x2);
	x2 = NULL;

	/* refusals issue nothing */
	int64_t certs = storekit_count(s, "SELECT COUNT(*) FROM certificates");
	CHECK(enroll(&svc, EST_ENROLL, NULL, chips[0].cert, chips[1].key, NULL, &x2, &e) ==
		DEVID_EINVAL,
	    "a CSR for another key: %s", e.msg);
	CHECK(enroll(&svc, EST_ENROLL, "OEM2", chips[0].cert, chips[0].key, NULL, &x2, &e) ==
		DEVID_EAUTH,
	    "another tenant's label: %s", e.msg);
	CHECK(enroll(&svc, EST_ENROLL, NULL, loose.cert, loose.key, NULL, &x2, &e) == DEVID_EAUTH &&
		strstr(e.msg, "not claimed") != NULL,
	    "an unclaimed device: %s", e.msg);
	{
		/* the device's key in a certificate that is not its birth certificate */
		X509 *fake = X509_new();
		X509_NAME *n = X509_NAME_new();

		X509_NAME_add_entry_by_txt(
		    n, "CN", MBSTRING_ASC, (const unsigned char *)"fake", -1, -1, 0);
		X509_set_version(fake, X509_VERSION_3);
		ASN1_INTEGER_set(X509_get_serialNumber(fake), 7);
		X509_set_subject_name(fake, n);
		X509_set_issuer_name(fake, n);
		X509_gmtime_adj(X509_getm_notBefore(fake), 0);
		X509_gmtime_adj(X509_getm_notAfter(fake), 86400);
		X509_set_pubkey(fake, chips[1].key);
		X509_sign(fake, chips[1].key, EVP_sha256());
		CHECK(enroll(&svc, EST_ENROLL, NULL, fake, chips[1].key, NULL, &x2, &e) ==
			DEVID_EAUTH,
		    "a self-made certificate for a device's key: %s", e.msg);
		CHECK(enroll(&svc, EST_REENROLL, NULL, fake, chips[1].key, NULL, &x2, &e) ==
			DEVID_EAUTH,
		    "... nor re-enrolls: %s", e.msg);
		X509_NAME_free(n);
		X509_free(fake);
	}
	CHECK(enroll(&svc, EST_REENROLL, NULL, chips[1].cert, chips[1].key, NULL, &x2, &e) ==
		DEVID_EAUTH,
	    "a birth certificate does not re-enroll: %s", e.msg);
	{
		/*
		 * The device's own key in a CSR with its point compressed or hybrid: the same key
		 * (the proof of possession holds), but a certificate over that encoding would have
		 * a UDID that is no device's
		 */
		static const char *const forms[] = {"compressed", "hybrid"};

		for (size_t f = 0; f < 2; f++) {
			EVP_PKEY *k = EVP_PKEY_dup(chips[0].key);

			EVP_PKEY_set_utf8_string_param(
			    k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, forms[f]);
			CHECK(enroll(&svc, EST_ENROLL, NULL, chips[0].cert, k, NULL, &x2, &e) ==
				    DEVID_EINVAL &&
				strstr(e.msg, "CSR: EC point must be uncompressed (RFC 5480 2.2") !=
				    NULL,
			    "a CSR with the device's key, point %s: %s", forms[f], e.msg);
			CHECK(enroll(&svc, EST_REENROLL, NULL, x, k, X509_get_subject_name(x), &x2,
				  &e) == DEVID_EINVAL,
			    "... nor re-enrolls: %s", e.msg);
			EVP_PKEY_free(k);
		}
	}
	{
		/* the vendor's manifest signer is no device: its certificate enrolls nothing */
		X509 *sc = x509_load_pem_file(reelkit_path("v", "signer.pem"), &e);
		EVP_PKEY *sk = pkey_load_pem_file(reelkit_path("v", "signer.key"), &e);

		CHECK(sc != NULL && sk != NULL, "the manifest signer loads: %s", e.msg);
		CHECK(enroll(&svc, EST_ENROLL, NULL, sc, sk, NULL, &x2, &e) == DEVID_EAUTH &&
			strstr(e.msg, "not a device known") != NULL,
		    "the manifest signer's certificate does not enroll: %s", e.msg);
		CHECK(enroll(&svc, EST_REENROLL, NULL, sc, sk, NULL, &x2, &e) == DEVID_EAUTH,
		    "... nor re-enrolls: %s", e.msg);
		X509_free(sc);
		EVP_PKEY_free(sk);
	}
	CHECK(
	    storekit_count(s, "SELECT COUNT(*) FROM certificates") == certs, "nothing was issued");
	CHECK(
	    storekit_count(s, "SELECT COUNT(*) FROM audit WHERE action LIKE 'est.%'") == audits + 2,
	    "nothing refused was audited");

	/* re-enrollment keeps the subject */
	CHECK(enroll(&svc, EST_REENROLL, NULL, x, chips[0].key, X509_get_subject_name(x), &x2,
		  &e) == 0,
	    "re-enroll: %s", e.msg);
	if (x2 != NULL)
		check_profile(x2, ca, &chips[0], CA_DEFAULT_VALIDITY_DAYS);
	CHECK(enroll(&svc, EST_REENROLL, NULL, x, chips[0].key, NULL, &got, &e) == DEVID_EINVAL,
	    "a re-enroll that changes the subject: %s", e.msg);
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM audit WHERE action = 'est.reenroll'") == 1,
	    "one re-enrollment audited");

	/* validity per tenant */
	CHECK(service_ca_set_validity(&svc, "OEM1", 7, &e) == 0, "validity: %s", e.msg);
	CHECK(enroll(&svc, EST_ENROLL, NULL, chips[1].cert, chips[1].key, NULL, &got, &e) == 0,
	    "enroll chip 1: %s", e.msg);
	if (got != NULL)
		check_profile(got, ca, &chips[1], 7);
	X509_free(got);
	got = NULL;

	/* the quota: holders so far chips 0 and 1 */
	CHECK(service_quota_get(&svc, &oem, &q, &e) == 0 &&
		json_is_null(json_object_get(q, "max")) &&
		json_integer_value(json_object_get(q, "used")) == 2,
	    "quota: none, 2 used");
	json_decref(q);
	q = json_pack("{s:i}", "max", 4);
	CHECK(service_quota_put(&svc, &op, q, &e) == DEVID_EAUTH, "an operator sets no quota");
	CHECK(service_quota_put(&svc, &oem, q, &e) == 0, "quota put: %s", e.msg);
	json_decref(q);
	q = json_pack("{s:i}", "max", -1);
	CHECK(service_quota_put(&svc, &oem, q, &e) == DEVID_EINVAL, "negative quota: %s", e.msg);
	json_decref(q);
	{
		/* six new devices race for the two places left */
		struct racer rr[6];
		pthread_t t[6];
		int ok = 0, limited = 0;

		for (int i = 0; i < 6; i++) {
			rr[i] = (struct racer){.svc = &svc, .c = &chips[2 + i]};
			pthread_create(&t[i], NULL, race, &rr[i]);
		}
		for (int i = 0; i < 6; i++) {
			pthread_join(t[i], NULL);
			ok += rr[i].rc == 0;
			limited += rr[i].rc == DEVID_ELIMIT;
		}
		CHECK(ok == 2 && limited == 4, "quota 4: 2 of 6 racers enroll (%d), 4 refused (%d)",
		    ok, limited);
	}
	CHECK(service_quota_get(&svc, &oem, &q, &e) == 0 &&
		json_integer_value(json_object_get(q, "max")) == 4 &&
		json_integer_value(json_object_get(q, "used")) == 4,
	    "quota: 4 of 4 used");
	json_decref(q);
	CHECK(enroll(&svc, EST_REENROLL, NULL, x, chips[0].key, X509_get_subject_name(x), &got,
		  &e) == 0,
	    "a holder renews at a full quota: %s", e.msg);
	X509_free(got);
	got = NULL;
	CHECK(service_quota_set_admin(&svc, "OEM1", 1, &e) == 0, "quota below use: %s", e.msg);
	CHECK(enroll(&svc, EST_ENROLL, NULL, chips[0].cert, chips[0].key, NULL, &got, &e) == 0,
	    "a holder still enrolls: %s", e.msg);
	X509_free(got);
	got = NULL;
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM certificates") ==
		storekit_count(s, "SELECT COUNT(*) FROM audit WHERE action LIKE 'est.%'"),
	    "one audit record per certificate");

	/* cacerts */
	for (int i = 0; i < 2; i++) {
		CHECK(service_est_cacerts(
			  &svc, i ? NULL : "OEM1", i ? chips[0].cert : NULL, &cas, &e) == 0 &&
			sk_X509_num(cas) == 1 && X509_cmp(sk_X509_value(cas, 0), ca) == 0,
		    "cacerts by %s", i ? "device" : "label");
		sk_X509_pop_free(cas, X509_free);
		cas = NULL;
	}
	CHECK(service_est_cacerts(&svc, "OEM2", NULL, &cas, &e) == DEVID_ENOTFOUND && cas == NULL,
	    "cacerts of a tenant without CA: %s", e.msg);
	CHECK(service_est_cacerts(&svc, NULL, NULL, &cas, &e) == DEVID_EINVAL, "cacerts of whom?");

	/* revocation: no more enrollments, the certificates on the CRL */
	dynbuf_init(&crl, 1 << 20);
	CHECK(service_crl(&svc, "OEM1", 1, &crl, &e) == 0 && crl_lists(&crl, ca, x, &num1) == 0,
	    "an empty CRL first: %s", e.msg);
	CHECK(service_revoke(&svc, &oem, chips[0].udid, NULL, &e) == 0, "revoke: %s", e.msg);
	CHECK(enroll(&svc, EST_ENROLL, NULL, chips[0].cert, chips[0].key, NULL, &got, &e) ==
		    DEVID_EAUTH &&
		strstr(e.msg, "revoked") != NULL,
	    "a revoked device: %s", e.msg);
	CHECK(enroll(&svc, EST_REENROLL, NULL, x, chips[0].key, X509_get_subject_name(x), &got,
		  &e) == DEVID_EAUTH,
	    "... nor re-enrolls: %s", e.msg);
	dynbuf_reset(&crl);
	CHECK(service_crl(&svc, "OEM1", 1, &crl, &e) == 0 && crl_lists(&crl, ca, x, &num2) == 1 &&
		num2 == num1 + 1,
	    "the CRL lists it, with the next number (%ld, %ld): %s", num1, num2, e.msg);
	{
		struct dynbuf again;

		dynbuf_init(&again, 1 << 20);
		CHECK(service_crl(&svc, "OEM1", 1, &again, &e) == 0 && again.len == crl.len &&
			memcmp(again.p, crl.p, crl.len) == 0,
		    "unchanged: the same CRL, not re-signed");
		dynbuf_release(&again);
	}
	{
		/* concurrent revokes of one tenant, each writing a job and an audit record: on
		 * PostgreSQL none may deadlock */
		struct racer rr[6];
		pthread_t t[6];
		bool created;
		int ok = 0;

		db = store_acquire(s);
		CHECK(store_connector_put(db, oem.tenant.id, "GW", "webhook", true,
			  "{\"url\":\"http://127.0.0.1:9/\",\"secret\":\"s\"}", &created, &e) == 0,
		    "connector: %s", e.msg);
		store_release(s, db);
		for (int i = 0; i < 6; i++) {
			rr[i] = (struct racer){.svc = &svc, .c = &chips[2 + i], .p = &oem};
			pthread_create(&t[i], NULL, race_revoke, &rr[i]);
		}
		for (int i = 0; i < 6; i++) {
			pthread_join(t[i], NULL);
			ok += rr[i].rc == 0;
		}
		CHECK(ok == 6, "6 concurrent revokes all commit (%d)", ok);
	}
	CHECK(service_crl(&svc, "OEM2", 1, &crl, &e) == DEVID_ENOTFOUND, "no CA, no CRL");
	CHECK(service_crl(&svc, "NOPE", 1, &crl, &e) == DEVID_ENOTFOUND, "no tenant, no CRL");
	dynbuf_reset(&crl);
	CHECK(service_crl(&svc, "OEM1", 1, &crl, &e) == 0 && crl_reason(&crl, ca, x) == -1,
	    "revoked without a reason: no reasonCode (RFC 5280 5.3.1): %d",
	    crl_reason(&crl, ca, x));

	/* revocation reasons: refused ones change nothing */
	{
		int64_t audit0 = storekit_count(s, "SELECT COUNT(*) FROM audit"),
			revoked0 = storekit_count(
			    s, "SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL");
		const char *bad[] = {
		    "certificateHold", "removeFromCRL", "cACompromise", "bogus", ""};
		json_t *dev = NULL;

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CHECK(service_revoke(&svc, &oem, chips[1].udid, bad[i], &e) == DEVID_EINVAL,
			    "reason \"%s\" refused: %s", bad[i], e.msg);
		CHECK(storekit_count(s, "SELECT COUNT(*) FROM audit") == audit0 &&
			storekit_count(
			    s, "SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL") ==
			    revoked0,
		    "refused revocations wrote nothing");
		CHECK(service_device_get(&svc, &oem, chips[1].udid, &dev, &e) == 0 &&
			strcmp(json_string_value(json_object_get(dev, "state")), "active") == 0,
		    "the device is still active");
		json_decref(dev);
	}

	/* release and transfer end the old owner's certificates; the next owner starts afresh */
	{
		char transfer[MAX_CLAIM_TEXT_LEN + 1], keyuri2[PATH_MAX * 2 + 8];
		struct principal oem2 = op;
		X509 *c1a = NULL, *c1b = NULL, *c1c = NULL, *ca2 = NULL;
		json_t *dev = NULL;
		struct dynbuf crl2;

		oem2.role = ROLE_ADMIN;
		dynbuf_init(&crl2, 1 << 20);
		CHECK(strcmp(crl_dp(x), "") == 0, "no --public-url: no CRL distribution point");
		CHECK(public_url_check("https://devid.example/base/", &e) == 0, "url: %s", e.msg);
		svc.public_url = "https://devid.example/base/";
		CHECK(enroll(&svc, EST_ENROLL, NULL, chips[1].cert, chips[1].key, NULL, &c1a, &e) ==
			0,
		    "enroll chip 1: %s", e.msg);
		CHECK(c1a != NULL &&
			strcmp(crl_dp(c1a), "https://devid.example/base/api/v1/tenants/OEM1/crl") ==
			    0,
		    "the CRL distribution point names the tenant's CRL: \"%s\"",
		    c1a ? crl_dp(c1a) : "");
		svc.public_url = NULL;

		CHECK(service_release(&svc, &oem, "ACME", "B1", &e) == 0, "release: %s", e.msg);
		dynbuf_reset(&crl);
		CHECK(service_crl(&svc, "OEM1", 1, &crl, &e) == 0 &&
			crl_reason(&crl, ca, c1a) == CRL_REASON_AFFILIATION_CHANGED,
		    "released: the certificate is on the CRL, affiliationChanged (%d)",
		    crl_reason(&crl, ca, c1a));
		CHECK(storekit_count(s,
			  "SELECT COUNT(*) FROM certificates c JOIN devices d ON d.id = c.device_id"
			  " JOIN batches b ON b.id = d.batch_id WHERE b.name = 'B1'"
			  " AND c.revoked_at IS NULL") == 0,
		    "no certificate of the batch is left unrevoked");
		CHECK(enroll(&svc, EST_ENROLL, NULL, chips[1].cert, chips[1].key, NULL, &got, &e) ==
			    DEVID_EAUTH &&
			strstr(e.msg, "not claimed") != NULL,
		    "released: no enrollment: %s", e.msg);
		CHECK(service_claim(&svc, &oem, "127.0.0.1", (const uint8_t *)claim1,
			  strlen(claim1), &b, &changed, NULL, &e) == 0,
		    "claimed again: %s", e.msg);
		CHECK(enroll(&svc, EST_REENROLL, NULL, c1a, chips[1].key,
			  X509_get_subject_name(c1a), &got, &e) == DEVID_EAUTH &&
			strstr(e.msg, "revoked") != NULL,
		    "a certificate revoked by the release does not re-enroll: %s", e.msg);
		CHECK(enroll(&svc, EST_ENROLL, NULL, chips[1].cert, chips[1].key, NULL, &c1b, &e) ==
			0,
		    "the birth certificate enrolls afresh: %s", e.msg);

		CHECK(
		    service_transfer(&svc, &oem, "ACME", "B1", transfer, sizeof(transfer), &e) == 0,
		    "transfer: %s", e.msg);
		CHECK(service_claim(&svc, &oem2, "127.0.0.1", (const uint8_t *)transfer,
			  strlen(transfer), &b, &changed, NULL, &e) == 0 &&
			changed,
		    "OEM2 takes the batch: %s", e.msg);
		dynbuf_reset(&crl);
		CHECK(service_crl(&svc, "OEM1", 1, &crl, &e) == 0 &&
			crl_reason(&crl, ca, c1b) == CRL_REASON_AFFILIATION_CHANGED,
		    "transferred: OEM1's certificate is on OEM1's CRL (%d)",
		    crl_reason(&crl, ca, c1b));
		snprintf(keyuri2, sizeof(keyuri2), "file:%s/ca2.key", tmp);
		CHECK(
		    service_ca_init(&svc, "OEM2", keyuri2, 0, &ca2, &e) == 0, "OEM2 CA: %s", e.msg);
		CHECK(enroll(&svc, EST_ENROLL, NULL, chips[1].cert, chips[1].key, NULL, &c1c, &e) ==
			    0 &&
			c1c != NULL && strcmp(name_field(c1c, NID_organizationName), "OEM2") == 0,
		    "the next owner's enrollment works: %s", e.msg);
		CHECK(enroll(&svc, EST_REENROLL, NULL, c1b, chips[1].key,
			  X509_get_subject_name(c1b), &got, &e) == DEVID_EAUTH,
		    "the old owner's certificate does not re-enroll: %s", e.msg);

		/* the new owner revokes with a reason: on its CRL, in the device, kept on repeat */
		CHECK(service_revoke(&svc, &oem2, chips[1].udid, "keyCompromise", &e) == 0,
		    "revoke keyCompromise: %s", e.msg);
		CHECK(service_revoke(&svc, &oem2, chips[1].udid, "superseded", &e) == 0,
		    "revoke again: %s", e.msg);
		CHECK(service_device_get(&svc, &oem2, chips[1].udid, &dev, &e) == 0 &&
			strcmp(json_string_value(json_object_get(dev, "revokeReason")),
			    "keyCompromise") == 0,
		    "the first reason stays");
		json_decref(dev);
		CHECK(service_crl(&svc, "OEM2", 1, &crl2, &e) == 0 &&
			crl_reason(&crl2, ca2, c1c) == CRL_REASON_KEY_COMPROMISE,
		    "OEM2's CRL: keyCompromise (%d): %s", crl_reason(&crl2, ca2, c1c), e.msg);
		CHECK(storekit_count(s,
			  "SELECT COUNT(*) FROM audit WHERE action = 'device.revoke'"
			  " AND detail LIKE '%keyCompromise%'") == 1,
		    "the reason is audited");
		X509_free(c1a);
		X509_free(c1b);
		X509_free(c1c);
		X509_free(ca2);
		dynbuf_release(&crl2);
	}

	/* CRL numbers across two servers: never one number for two CRLs, never going back */
	{
		struct service svc2 = {.verify_threads = 2, .keys = &devid_key_loader};
		struct crl_racer cr[8];
		pthread_t t[8];
		long last = 0;
		bool increasing = true, unique = true;
		int failed = 0;

		CHECK(store_open(url, 4, &svc2.store, &e) == 0, "second store: %s", e.msg);
		svc2.cas = service_ca_cache_new();
		for (int i = 0; i < 6; i++) {
			long n = 0;

			crl_age(s);
			dynbuf_reset(&crl);
			CHECK(service_crl(i % 2 ? &svc2 : &svc, "OEM1", 1, &crl, &e) == 0 &&
				crl_lists(&crl, ca, x, &n) == 1,
			    "CRL from server %d: %s", i % 2, e.msg);
			increasing = increasing && n > last;
			last = n;
		}
		CHECK(increasing, "alternating servers: strictly increasing numbers");
		for (int round = 0; round < 3; round++) {
			crl_age(s);
			for (int i = 0; i < 8; i++) {
				cr[i] = (struct crl_racer){.svc = i % 2 ? &svc2 : &svc};
				pthread_create(&t[i], NULL, race_crl, &cr[i]);
			}
			for (int i = 0; i < 8; i++)
				pthread_join(t[i], NULL);
			for (int i = 0; i < 8; i++) {
				failed += cr[i].rc != 0;
				for (int k = 0; k < 6; k++) {
					if (k > 0 && cr[i].numbers[k] < cr[i].numbers[k - 1])
						increasing = false;
					for (int j = 0; j < 8; j++)
						for (int m = 0; m < 6; m++)
							if (cr[j].numbers[m] == cr[i].numbers[k] &&
							    memcmp(cr[j].md[m], cr[i].md[k], 32) !=
								0)
								unique = false;
				}
			}
		}
		CHECK(failed == 0, "racing CRL fetches all answered (%d failed)", failed);
		CHECK(unique, "one number, one CRL, across both servers");
		CHECK(increasing, "no reader saw the number go back");
		service_ca_cache_free(svc2.cas, svc2.keys);
		store_close(svc2.store);
	}

	/* CA rotation: OEM2 (whose CA made c1c) claims B2 and rotates its CA */
	{
		char k2[PATH_MAX * 2 + 8], k3[PATH_MAX * 2 + 8];
		struct principal oem2 = op;
		X509 *ca2 = NULL, *ca3 = NULL, *l1 = NULL, *l2 = NULL;
		struct dynbuf c1, c2;
		long n = 0;

		oem2.role = ROLE_ADMIN;
		dynbuf_init(&c1, 1 << 20);
		dynbuf_init(&c2, 1 << 20);
		snprintf(k2, sizeof(k2), "file:%s/ca2.key", tmp);
		snprintf(k3, sizeof(k3), "file:%s/ca3.key", tmp);
		CHECK(service_claim(&svc, &oem2, "127.0.0.1", (const uint8_t *)claim2,
			  strlen(claim2), &b, &changed, NULL, &e) == 0,
		    "OEM2 claims B2: %s", e.msg);
		svc.public_url = "https://devid.example";
		CHECK(enroll(&svc, EST_ENROLL, NULL, loose.cert, loose.key, NULL, &l1, &e) == 0,
		    "enroll under generation 1: %s", e.msg);
		CHECK(service_ca_get(&svc, "OEM2", &cas, &e) == 0 && sk_X509_num(cas) == 1,
		    "one CA before: %s", e.msg);
		ca2 = sk_X509_shift(cas);
		sk_X509_pop_free(cas, X509_free);
		audits = storekit_count(s, "SELECT COUNT(*) FROM audit");
		CHECK(service_ca_rotate(&svc, "OEM2", k2, NULL, &e) == DEVID_EINVAL,
		    "the current key's URI is refused: %s", e.msg);
		CHECK(service_ca_rotate(&svc, "ACME", k3, NULL, &e) == DEVID_ENOTFOUND,
		    "a vendor has no CA to rotate: %s", e.msg);
		CHECK(storekit_count(s, "SELECT COUNT(*) FROM audit") == audits &&
			storekit_count(s, "SELECT COUNT(*) FROM cas_retired") == 0 &&
			access(k3 + 5, F_OK) != 0,
		    "refused rotations wrote nothing, made no key");

		CHECK(service_ca_rotate(&svc, "OEM2", k3, &ca3, &e) == 0, "rotate: %s", e.msg);
		CHECK(ca3 != NULL && X509_check_ca(ca3) == 1 &&
			X509_verify(ca3, X509_get0_pubkey(ca3)) == 1 &&
			X509_NAME_cmp(X509_get_subject_name(ca3), X509_get_subject_name(ca2)) !=
			    0 &&
			strstr(name_field(ca3, NID_organizationalUnitName), "generation 2") != NULL,
		    "the next CA: self-signed, named generation 2");
		CHECK(
		    storekit_count(s, "SELECT COUNT(*) FROM audit WHERE action = 'ca.rotate'") == 1,
		    "the rotation is audited");
		CHECK(service_ca_get(&svc, "OEM2", &cas, &e) == 0 && sk_X509_num(cas) == 2 &&
			X509_cmp(sk_X509_value(cas, 0), ca3) == 0 &&
			X509_cmp(sk_X509_value(cas, 1), ca2) == 0,
		    "ca show: the new CA, then the old one that still has live certificates");
		sk_X509_pop_free(cas, X509_free);
		CHECK(service_est_cacerts(&svc, "OEM2", NULL, &cas, &e) == 0 &&
			sk_X509_num(cas) == 4 && X509_cmp(sk_X509_value(cas, 0), ca3) == 0 &&
			X509_cmp(sk_X509_value(cas, 1), ca2) == 0,
		    "cacerts: new, old and the two key update certificates (%d)",
		    cas ? sk_X509_num(cas) : -1);
		if (cas != NULL && sk_X509_num(cas) == 4) {
			X509 *nwo = sk_X509_value(cas, 2), *own = sk_X509_value(cas, 3);

			CHECK(EVP_PKEY_eq(X509_get0_pubkey(nwo), X509_get0_pubkey(ca3)) == 1 &&
				X509_verify(nwo, X509_get0_pubkey(ca2)) == 1 &&
				X509_check_issued(ca2, nwo) == X509_V_OK,
			    "NewWithOld: the new key, certified by the old CA");
			CHECK(EVP_PKEY_eq(X509_get0_pubkey(own), X509_get0_pubkey(ca2)) == 1 &&
				X509_verify(own, X509_get0_pubkey(ca3)) == 1 &&
				X509_check_issued(ca3, own) == X509_V_OK,
			    "OldWithNew: the old key, certified by the new CA");
		}
		sk_X509_pop_free(cas, X509_free);
		cas = NULL;

		CHECK(enroll(&svc, EST_REENROLL, NULL, l1, loose.key, X509_get_subject_name(l1),
			  &l2, &e) == 0,
		    "a certificate of the retired CA re-enrolls: %s", e.msg);
		CHECK(l2 != NULL && X509_verify(l2, X509_get0_pubkey(ca3)) == 1 &&
			strcmp(crl_dp(l2), "https://devid.example/api/v1/tenants/OEM2/crl/2") == 0,
		    "... under the new CA, whose CRL its distribution point names: \"%s\"",
		    l2 ? crl_dp(l2) : "");
		CHECK(service_revoke(&svc, &oem2, loose.udid, NULL, &e) == 0, "revoke: %s", e.msg);
		CHECK(service_crl(&svc, "OEM2", 1, &c1, &e) == 0 &&
			crl_lists(&c1, ca2, l1, &n) == 1 && crl_lists(&c1, ca2, l2, &n) == 0,
		    "generation 1's CRL, signed by the old key, lists its certificate: %s", e.msg);
		CHECK(service_crl(&svc, "OEM2", 2, &c2, &e) == 0 &&
			crl_lists(&c2, ca3, l2, &n) == 1 && crl_lists(&c2, ca3, l1, &n) == 0,
		    "generation 2's CRL, signed by the new key, lists its own: %s", e.msg);
		CHECK(service_crl(&svc, "OEM2", 3, &c2, &e) == DEVID_ENOTFOUND,
		    "no generation 3: %s", e.msg);
		svc.public_url = NULL;
		dynbuf_release(&c1);
		dynbuf_release(&c2);
		X509_free(ca2);
		X509_free(ca3);
		X509_free(l1);
		X509_free(l2);
	}

	/* the public base URL */
	{
		const char *good[] = {"https://devid.example", "http://127.0.0.1:8443",
		    "https://devid.example/", "https://devid.example:8443/devid"};
		const char *bad[] = {"", "devid.example", "ftp://devid.example", "https://",
		    "https:///x", "https://devid.example/?a=1", "https://devid.example/#f",
		    "https://devid.example/a b", "https://user@devid.example",
		    "https://devid.example/\"x", "https://devid.example/\x7f",
		    "https://devid.example/\xc3\xa9", "https://devid.example//"};
		char big[PUBLIC_URL_MAX + 2];

		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
			CHECK(public_url_check(good[i], &e) == 0, "%s: %s", good[i], e.msg);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CHECK(
			    public_url_check(bad[i], &e) == DEVID_EINVAL, "\"%s\" refused", bad[i]);
		memset(big, 'a', sizeof(big) - 1);
		memcpy(big, "https://", 8);
		big[sizeof(big) - 1] = '\0';
		CHECK(public_url_check(big, &e) == DEVID_EINVAL, "a URL over the limit: %s", e.msg);
	}
	dynbuf_release(&crl);

	X509_free(x);
	X509_free(x2);
	X509_free(ca);
	service_ca_cache_free(svc.cas, svc.keys);
	store_close(s);
	for (int i = 0; i < NCHIPS; i++) {
		X509_free(chips[i].cert);
		EVP_PKEY_free(chips[i].key);
	}
	X509_free(loose.cert);
	EVP_PKEY_free(loose.key);
	return test_done();
}
