/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "lib/base64.h"
#include "lib/json.h"
#include "lib/x509.h"
#include "service/internal.h"
#include "lib/banned.h"

#define MANIFEST_PAGE 1000
#define DEVICE_CLOUDS_MAX 100 /* job outcomes a device view lists, newest first */
#define DEVICE_CERTS_MAX 100 /* operational certificates a device view lists, newest first */
#define SEARCH_UDID_MIN 4 /* hex digits from which q is also a UDID prefix */

bool
is_oem_reader(const struct principal *p)
{
	return p->tenant.kind == TENANT_OEM && (p->role == ROLE_ADMIN || p->role == ROLE_OPERATOR);
}

/* b as listed; its device counts must be set (store_batch_list, store_batch_counts). */
static json_t *
batch_json(const struct batch_rec *b)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:s, s:{s:I, s:I}}", "vendor", b->vendor,
	    "batch", b->name, "partNumber", b->part_number, "count", (json_int_t)b->count, "source",
	    b->source == BATCH_IMPORT ? "import" : "vendor", "claimedAt", json_time(b->claimed_at),
	    "state", b->transfer_sha256[0] ? "transfer" : "claimed", "devices", "active",
	    (json_int_t)b->active, "revoked", (json_int_t)b->revoked);
}

/* j with "signer": the trust that admitted the batch (issue 10), null when not known. */
static json_t *
batch_signer_add(struct db *db, json_t *j, int64_t batch_id)
{
	if (j != NULL &&
	    json_object_set_new(j, "signer", service_batch_signer_json(db, batch_id)) != 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *
device_json(const struct device_rec *d)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?}", "udid", d->udid, "serial",
	    d->serial, "kind", d->tpm ? "tpm" : "chip", "vendor", d->vendor, "batch", d->batch,
	    "state", d->revoked ? "revoked" : "active", "revokeReason",
	    d->revoked ? revoke_reason_name(d->revoke_reason) : NULL);
}

/* {"<key>": items, "next": cursor or null}; the cursor is the last id when the page is full. */
static json_t *
page_json(const char *key, json_t *items, size_t n, size_t limit, int64_t last)
{
	char cursor[24];

	snprintf(cursor, sizeof(cursor), "%lld", (long long)last);
	return json_pack("{s:o, s:s?}", key, items, "next", n == limit && n > 0 ? cursor : NULL);
}

static size_t
clamp_limit(size_t limit)
{
	return limit == 0 || limit > PAGE_MAX ? PAGE_MAX : limit;
}

int
service_batches(struct service *svc, const struct principal *p, int64_t after, size_t limit,
    json_t **out, struct devid_error *e)
{
	struct batch_rec *b = NULL;
	json_t *items;
	struct db *db;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!is_oem_reader(p))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM token lists batches");
	limit = clamp_limit(limit);
	db = store_acquire(svc->store);
	if ((rc = store_batch_list(db, p->tenant.id, after, limit, &b, &n, e)) != 0) {
		store_release(svc->store, db);
		return rc;
	}
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, batch_signer_add(db, batch_json(&b[i]), b[i].id));
	store_release(svc->store, db);
	*out = page_json("batches", items, n, limit, n ? b[n - 1].id : 0);
	free(b);
	return *out != NULL ? 0 : devid_error_set(e, DEVID_ENOMEM, "out of memory");
}

int
service_own_batch(struct db *db, const struct principal *p, bool admin_only, const char *vendor,
    const char *batch, struct batch_rec *b, struct devid_error *e)
{
	int rc;

	if (p->tenant.kind != TENANT_OEM ||
	    !(p->role == ROLE_ADMIN || (!admin_only && p->role == ROLE_OPERATOR)))
		return devid_error_set(
		    e, DEVID_EAUTH, "only an OEM %s can do this", admin_only ? "admin" : "token");
	rc = store_batch_get(db, vendor, batch, b, e);
	if (rc == DEVID_ENOTFOUND || (rc == 0 && b->owner_id != p->tenant.id))
		return devid_error_set(e, DEVID_ENOTFOUND, "no batch %s/%s", vendor, batch);
	return rc;
}

int
service_batch_get(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, json_t **out, struct devid_error *e)
{
	struct batch_rec b;
	struct db *db;
	int rc;

	*out = NULL;
	db = store_acquire(svc->store);
	rc = service_own_batch(db, p, false, vendor, batch, &b, e);
	if (rc == 0)
		rc = store_batch_counts(db, &b, e);
	if (rc == 0 && (*out = batch_signer_add(db, batch_json(&b), b.id)) == NULL)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	store_release(svc->store, db);
	return rc;
}

/*
 * q of GET /api/v1/devices: a serial prefix (printable ASCII), and also a UDID prefix when
 * it is SEARCH_UDID_MIN hex digits or more (lowercased into udid).
 */
static int
search_parse(
    const char *q, char udid[UDID_HEX_LEN_MAX + 1], struct device_search *s, struct devid_error *e)
{
	size_t n = strlen(q), hex = 0;

	if (n < 1 || n > MAX_SERIAL_LEN)
		return devid_error_set(e, DEVID_EINVAL, "q: 1 to %d characters", MAX_SERIAL_LEN);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)q[i];

		if (c < 0x20 || c > 0x7e)
			return devid_error_set(
			    e, DEVID_EINVAL, "q: a UDID or chip serial prefix is printable ASCII");
		hex += (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
	}
	s->serial_prefix = q;
	s->udid_prefix = NULL;
	if (hex == n && n >= SEARCH_UDID_MIN && n <= UDID_HEX_LEN_MAX) {
		for (size_t i = 0; i <= n; i++)
			udid[i] = q[i] >= 'A' && q[i] <= 'F' ? (char)(q[i] - 'A' + 'a') : q[i];
		s->udid_prefix = udid;
	}
	return 0;
}

int
service_devices(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, const char *state, const char *q, int64_t after, size_t limit, json_t **out,
    struct devid_error *e)
{
	struct device_rec *d = NULL;
	struct device_search search;
	char udid[UDID_HEX_LEN_MAX + 1];
	json_t *items;
	struct db *db;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!is_oem_reader(p))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM token lists devices");
	if (state != NULL && strcmp(state, "active") != 0 && strcmp(state, "revoked") != 0)
		return devid_error_set(e, DEVID_EINVAL, "state must be active or revoked");
	if ((vendor == NULL) != (batch == NULL))
		return devid_error_set(e, DEVID_EINVAL, "a batch filter is VENDOR/BATCH");
	if (q != NULL && (rc = search_parse(q, udid, &search, e)) != 0)
		return rc;
	limit = clamp_limit(limit);
	db = store_acquire(svc->store);
	rc = store_device_list(db, p->tenant.id, vendor, batch, state, q != NULL ? &search : NULL,
	    after, limit, &d, &n, e);
	store_release(svc->store, db);
	if (rc != 0)
		return rc;
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, device_json(&d[i]));
	*out = page_json("devices", items, n, limit, n ? d[n - 1].id : 0);
	free(d);
	return *out != NULL ? 0 : devid_error_set(e, DEVID_ENOMEM, "out of memory");
}

/* An ASN1_TIME as Unix seconds. */
static int
asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return DEVID_EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

/* "EC P-256", "RSA 2048", "Ed25519": the key's algorithm and size as people name them. */
static void
key_type(EVP_PKEY *k, char *out, size_t len)
{
	char group[64];
	const char *nist;

	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) != 1) {
			snprintf(out, len, "EC");
			break;
		}
		nist = EC_curve_nid2nist(OBJ_txt2nid(group));
		snprintf(out, len, "EC %s", nist != NULL ? nist : group);
		break;
	case EVP_PKEY_RSA:
		snprintf(out, len, "RSA %d", EVP_PKEY_get_bits(k));
		break;
	default:
		snprintf(out, len, "%s", OBJ_nid2sn(EVP_PKEY_get_base_id(k)));
		break;
	}
}

/* A name in RFC 2253 form (as `openssl x509 -nameopt RFC2253` prints it). */
static json_t *
name_json(const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	json_t *j = NULL;
	char *p;
	long n;

	if (bio != NULL && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(bio, &p)) >= 0)
		j = json_stringn(p, (size_t)n);
	BIO_free(bio);
	return j;
}

/*
 * The birth certificate as the console shows it: {subject, issuer, serial (lowercase hex),
 * notBefore, notAfter (Unix seconds), keyType, sha256 (of the DER)}; JSON null when the
 * stored DER does not read (it was checked when the batch was stored).
 */
static json_t *
birth_json(const uint8_t *der, size_t len)
{
	X509 *x = x509_from_der(der, len, "birth certificate", NULL);
	BIGNUM *bn = NULL;
	char *serial = NULL, kt[64], sha[65];
	uint8_t md[32];
	int64_t nb, na;
	json_t *j = NULL;

	if (x == NULL || X509_get0_pubkey(x) == NULL ||
	    asn1_time_unix(X509_get0_notBefore(x), &nb) != 0 ||
	    asn1_time_unix(X509_get0_notAfter(x), &na) != 0 ||
	    (bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) == NULL ||
	    (serial = BN_bn2hex(bn)) == NULL ||
	    EVP_Digest(der, len, md, NULL, EVP_sha256(), NULL) != 1)
		goto out;
	for (char *c = serial; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	key_type(X509_get0_pubkey(x), kt, sizeof(kt));
	hex_encode(md, sizeof(md), sha);
	j = json_pack("{s:o?, s:o?, s:s, s:o, s:o, s:s, s:s}", "subject",
	    name_json(X509_get_subject_name(x)), "issuer", name_json(X509_get_issuer_name(x)),
	    "serial", serial, "notBefore", json_time(nb), "notAfter", json_time(na), "keyType", kt,
	    "sha256", sha);
out:
	OPENSSL_free(serial);
	BN_free(bn);
	X509_free(x);
	return j != NULL ? j : json_null();
}

/* The device's outcome in each job that carried it (store_device_clouds), newest first. */
static json_t *
clouds_json(const struct db_rows *r)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < db_rows_count(r); i++) {
		const char *action = db_rows_text(r, i, 2, NULL);

		if (json_array_append_new(a,
			json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:s?}", "connector",
			    db_rows_text(r, i, 0, NULL), "type", db_rows_text(r, i, 1, NULL),
			    "action", action, "status",
			    db_rows_null(r, i, 3) ? "pending" : db_rows_text(r, i, 3, NULL), "job",
			    (json_int_t)db_rows_int(r, i, 4), "at", json_time(db_rows_int(r, i, 5)),
			    "message",
			    db_rows_null(r, i, 6) ? NULL : db_rows_text(r, i, 6, NULL))) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* The operational certificates of the device (store_device_certs), newest first. */
static json_t *
certs_json(const struct db_rows *r)
{
	json_t *a = json_array(), *c;

	for (size_t i = 0; a != NULL && i < db_rows_count(r); i++) {
		size_t len;
		const uint8_t *der = db_rows_blob(r, i, 1, &len);
		X509 *x = x509_from_der(der, len, "certificate", NULL);
		int64_t nb = 0;
		bool revoked = !db_rows_null(r, i, 3);

		if (x != NULL)
			asn1_time_unix(X509_get0_notBefore(x), &nb);
		X509_free(x);
		c = json_pack("{s:s, s:o, s:o}", "serial", db_rows_text(r, i, 0, NULL), "notBefore",
		    json_time(nb), "notAfter", json_time(db_rows_int(r, i, 2)));
		if (c != NULL && revoked &&
		    (json_object_set_new(c, "revokedAt", json_time(db_rows_int(r, i, 3))) != 0 ||
			json_object_set_new(c, "reason",
			    json_string(revoke_reason_name((int)db_rows_int(r, i, 4)))) != 0)) {
			json_decref(c);
			c = NULL;
		}
		if (json_array_append_new(a, c) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* j (the device as listed) with its birth certificate, clouds and certificates. */
static int
device_detail_add(struct db *db, const struct principal *p, const struct device_rec *d, json_t *j,
    struct devid_error *e)
{
	struct db_rows *cert = NULL, *clouds = NULL, *certs = NULL;
	const uint8_t *der;
	size_t len = 0;
	int rc;

	if ((rc = store_device_cert(db, d->id, &cert, e)) != 0 ||
	    (rc = store_device_clouds(db, p->tenant.id, d->id, DEVICE_CLOUDS_MAX, &clouds, e)) !=
		0 ||
	    (rc = store_device_certs(db, p->tenant.id, d->id, DEVICE_CERTS_MAX, &certs, e)) != 0)
		goto out;
	der = db_rows_count(cert) == 1 ? db_rows_blob(cert, 0, 0, &len) : NULL;
	if (json_object_set_new(
		j, "birthCertificate", der != NULL ? birth_json(der, len) : json_null()) != 0 ||
	    json_object_set_new(j, "clouds", clouds_json(clouds)) != 0 ||
	    json_object_set_new(j, "certificates", certs_json(certs)) != 0)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	else
		rc = clone_device_detail(db, p->tenant.id, d->id, j, e);
out:
	db_rows_free(cert);
	db_rows_free(clouds);
	db_rows_free(certs);
	return rc;
}

int
service_device_get(struct service *svc, const struct principal *p, const char *udid, json_t **out,
    struct devid_error *e)
{
	struct device_rec d;
	struct db *db;
	json_t *j = NULL;
	int rc;

	*out = NULL;
	if (!is_oem_reader(p))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM token reads devices");
	db = store_acquire(svc->store);
	if ((rc = store_device_get(db, p->tenant.id, udid, &d, e)) == 0) {
		if ((j = device_json(&d)) == NULL)
			rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		else
			rc = device_detail_add(db, p, &d, j, e);
	}
	store_release(svc->store, db);
	if (rc == 0)
		*out = j;
	else
		json_decref(j);
	return rc;
}

int
device_revoke_tx(struct db *db, int64_t tenant_id, const char *actor, const struct device_rec *d,
    int code, int64_t now, struct devid_error *e)
{
	json_t *detail = NULL;
	int64_t revoked = 0;
	int rc;

	/* the device first: an issuance in flight holds it share-locked (store_device_owner),
	 * so its certificate is committed, and revoked below, or it sees the device revoked */
	if ((rc = store_device_revoke(db, d->id, now, code, e)) != 0 ||
	    (rc = store_cert_revoke(db, tenant_id, d->id, 0, now, code, &revoked, e)) != 0)
		return rc;
	if ((detail = json_pack("{s:s, s:s, s:s, s:I}", "batch", d->batch, "vendor", d->vendor,
		 "reason", revoke_reason_name(code), "revokedCertificates", (json_int_t)revoked)) ==
	    NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	if ((rc = provision_enqueue_revoke(db, tenant_id, d->udid, e)) == 0)
		rc = audit_append(db, tenant_id, actor, "device.revoke", d->udid, detail, e);
	json_decref(detail);
	return rc;
}

int
service_revoke(struct service *svc, const struct principal *p, const char *udid, const char *reason,
    struct devid_error *e)
{
	struct device_rec d;
	struct db *db;
	int code, rc;

	if (p->tenant.kind != TENANT_OEM || p->role != ROLE_ADMIN)
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin revokes devices");
	if ((rc = revoke_reason_parse(reason, &code, e)) != 0)
		return rc;
	db = store_acquire(svc->store);
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_device_get(db, p->tenant.id, udid, &d, e)) != 0)
		goto rollback;
	if (d.revoked) {
		rc = 0; /* already revoked: nothing changes, nothing to audit */
		goto rollback;
	}
	if ((rc = device_revoke_tx(db, p->tenant.id, p->actor, &d, code, time(NULL), e)) != 0)
		goto rollback;
	rc = db_commit(db, e);
	goto out;
rollback:
	db_rollback(db);
out:
	store_release(svc->store, db);
	return rc;
}

int
manifest_format_parse(const char *s, enum manifest_format *out)
{
	if (s == NULL || strcmp(s, "json") == 0)
		*out = MANIFEST_JSON;
	else if (strcmp(s, "pem") == 0)
		*out = MANIFEST_PEM;
	else if (strcmp(s, "csv") == 0)
		*out = MANIFEST_CSV;
	else
		return DEVID_EINVAL;
	return 0;
}

const char *
manifest_format_type(enum manifest_format f)
{
	static const char *const types[] = {"application/json", "application/pem-certificate-chain",
	    "text/csv; charset=utf-8; header=present"};

	return types[f];
}

/* PEM of a DER certificate, lines of 64 (RFC 7468), CRLF for CSV (RFC 4180 line breaks). */
static int
add_pem(struct dynbuf *out, const uint8_t *der, size_t n, const char *eol)
{
	char *b64 = b64_encode(der, n);
	size_t len;
	int rc;

	if (b64 == NULL)
		return DEVID_ENOMEM;
	len = strlen(b64);
	rc = dynbuf_addf(out, "-----BEGIN CERTIFICATE-----%s", eol);
	for (size_t i = 0; rc == 0 && i < len; i += 64) {
		rc = dynbuf_add(out, b64 + i, len - i < 64 ? len - i : 64);
		if (rc == 0)
			rc = dynbuf_addstr(out, eol);
	}
	if (rc == 0)
		rc = dynbuf_addf(out, "-----END CERTIFICATE-----%s", eol);
	free(b64);
	return rc;
}

int
service_manifest(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, enum manifest_format f, struct dynbuf *out, struct devid_error *e)
{
	struct db_rows *r = NULL;
	struct batch_rec b;
	struct db *db;
	int64_t after = 0;
	size_t n, total = 0, len;
	int rc;

	db = store_acquire(svc->store);
	if ((rc = service_own_batch(db, p, true, vendor, batch, &b, e)) != 0)
		goto out;
	if (f == MANIFEST_JSON)
		rc = dynbuf_addstr(out, "[\n");
	else if (f == MANIFEST_CSV)
		rc = dynbuf_addstr(out, "device_id,group_id,certificate\r\n");
	do {
		if (rc != 0 ||
		    (rc = store_manifest_page(db, b.id, after, MANIFEST_PAGE, &r, e)) != 0)
			break;
		n = db_rows_count(r);
		for (size_t i = 0; i < n && rc == 0; i++) {
			const uint8_t *der = db_rows_blob(r, i, 2, &len);

			switch (f) {
			case MANIFEST_JSON:
				rc = dynbuf_addf(out, "%s  %s", total++ ? ",\n" : "",
				    db_rows_text(r, i, 3, NULL));
				break;
			case MANIFEST_PEM:
				rc = add_pem(out, der, len, "\n");
				break;
			case MANIFEST_CSV:
				/* udid and batch are [0-9a-f]/[A-Z0-9.-]: no quoting needed */
				rc = dynbuf_addf(
				    out, "%s,%s,\"", db_rows_text(r, i, 0, NULL), b.name);
				if (rc == 0)
					rc = add_pem(out, der, len, "\r\n");
				if (rc == 0)
					rc = dynbuf_addstr(out, "\"\r\n");
				break;
			}
		}
		if (n > 0)
			after = db_rows_int(r, n - 1, 4);
		db_rows_free(r);
		r = NULL;
	} while (rc == 0 && n == MANIFEST_PAGE);
	if (rc == 0 && f == MANIFEST_JSON)
		rc = dynbuf_addstr(out, "\n]\n");
	/* the server's own response cap, not the caller's rate: a 500, never a 429 */
	if (rc == DEVID_ELIMIT || rc == DEVID_ENOMEM)
		rc = devid_error_set(e, DEVID_EINTERNAL,
		    "manifest of %s/%s does not fit the response limit", vendor, batch);
out:
	store_release(svc->store, db);
	return rc;
}
