/* SPDX-License-Identifier: Apache-2.0 */
/*
 * custody.c - the chain of custody of a batch (docs/custody.md): one signed ownership record
 * per change of owner, written in the transaction of the change, read by the batch's owner
 * and its vendor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/custody.h"
#include "lib/json.h"
#include "lib/x509.h"
#include "service/internal.h"
#include "lib/banned.h"

static int
hash_udid(void *arg, const char *udid, size_t len, struct devid_error *e)
{
	EVP_MD_CTX *ctx = arg;

	if (EVP_DigestUpdate(ctx, udid, len) != 1 || EVP_DigestUpdate(ctx, "\n", 1) != 1)
		return devid_error_set(e, DEVID_ECRYPTO, "custody: SHA-256 failed");
	return 0;
}

/*
 * manifestSha256: SHA-256 over the batch's UDIDs in ascending order, each followed by "\n".
 * It names the devices, not an encoding, so anyone holding the manifest (JSON, PEM, CSV)
 * can compute it from the certificates' keys.
 */
static int
manifest_hash(struct db *db, int64_t batch_id, char out[65], struct devid_error *e)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	EVP_MD_CTX *ctx;
	int rc;

	if ((ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return devid_error_set(e, DEVID_ENOMEM, "custody: out of memory");
	}
	rc = store_batch_udids_each(db, batch_id, hash_udid, ctx, e);
	if (rc == 0 && EVP_DigestFinal_ex(ctx, md, NULL) != 1)
		rc = devid_error_set(e, DEVID_ECRYPTO, "custody: SHA-256 failed");
	if (rc == 0)
		hex_encode(md, sizeof(md), out);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* The public key of the manifest signer that admitted the batch (a new reference), or NULL. */
static EVP_PKEY *
vendor_key(struct db *db, int64_t batch_id)
{
	struct trust_rec *t = NULL;
	STACK_OF(X509) *sk = NULL;
	EVP_PKEY *k = NULL;

	if (store_batch_trust(db, batch_id, &t, NULL) != 0)
		return NULL;
	sk = x509_load_pem_mem(t->signer_pem, strlen(t->signer_pem), "manifest signer", NULL);
	if (sk != NULL && sk_X509_num(sk) > 0)
		k = X509_get_pubkey(sk_X509_value(sk, 0));
	sk_X509_pop_free(sk, X509_free);
	store_trust_list_free(t, 1);
	return k;
}

/* The party {"tenant","kind","key","keySource"} that owner stands for in change c. */
static json_t *
party_json(struct service *svc, struct db *db, const struct custody_change *c, int64_t owner,
    struct devid_error *e)
{
	struct tenant t;
	EVP_PKEY *pub = NULL, *held = NULL;
	const char *source = NULL;
	char *b64 = NULL;
	json_t *j = NULL;
	bool vendor;

	memset(&t, 0, sizeof(t));
	if (owner != CUSTODY_VENDOR && store_tenant_by_id(db, owner, &t, e) != 0)
		return NULL;
	vendor = owner == CUSTODY_VENDOR || t.kind == TENANT_VENDOR;
	if (vendor) {
		pub = vendor_key(db, c->batch_id);
		source = "manifest-signer";
	} else {
		if (service_ca_owner_key(svc, db, owner, &pub, &held, e) != 0)
			return NULL;
		source = "operational-ca";
	}
	if (pub != NULL && (b64 = custody_key_b64(pub)) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "custody: out of memory");
		goto out;
	}
	j = json_pack("{s:s, s:s, s:o, s:o}", "tenant", vendor ? c->vendor : t.name, "kind",
	    vendor ? "vendor" : "oem", "key", b64 != NULL ? json_string(b64) : json_null(),
	    "keySource", b64 != NULL ? json_string(source) : json_null());
	if (j == NULL)
		devid_error_set(e, DEVID_ENOMEM, "custody: out of memory");
out:
	EVP_PKEY_free(pub);
	free(b64);
	return j;
}

/*
 * The key devid holds for the tenant that gives the batch up (borrowed), when it is the key
 * the chain names for it (prev's "key"): after a CA rotation it is not, and devid signs alone.
 */
static EVP_PKEY *
owner_key(struct service *svc, struct db *db, int64_t owner, const json_t *prev)
{
	const char *named = json_string_value(json_object_get(prev, "key"));
	EVP_PKEY *pub = NULL, *priv = NULL;
	char *b64 = NULL;
	bool same;

	if (owner == CUSTODY_VENDOR || named == NULL ||
	    service_ca_owner_key(svc, db, owner, &pub, &priv, NULL) != 0 || priv == NULL) {
		EVP_PKEY_free(pub);
		return NULL;
	}
	same = (b64 = custody_key_b64(pub)) != NULL && strcmp(b64, named) == 0;
	free(b64);
	EVP_PKEY_free(pub);
	return same ? priv : NULL;
}

int
custody_append(
    struct service *svc, struct db *db, const struct custody_change *c, struct devid_error *e)
{
	struct custody_rec last, next = {.new_owner = NULL};
	uint8_t md[SHA256_DIGEST_LENGTH];
	json_t *pay = NULL, *prev_party = NULL, *new_party = NULL, *rec = NULL;
	EVP_PKEY *signer;
	char *text = NULL, *rec_text = NULL;
	int rc;

	if (svc->custody_key == NULL)
		return 0;
	if ((rc = store_custody_last(db, c->batch_id, &last, e)) != 0)
		goto out;
	/* a batch stored before migration 14 has no first record to link to: it keeps none */
	if (last.seq == 0 && strcmp(c->event, "publish") != 0 && strcmp(c->event, "import") != 0)
		goto out;
	next.seq = last.seq + 1;
	if (last.seq > 0)
		snprintf(
		    next.manifest_sha256, sizeof(next.manifest_sha256), "%s", last.manifest_sha256);
	else if ((rc = manifest_hash(db, c->batch_id, next.manifest_sha256, e)) != 0)
		goto out;
	if (last.seq == 0)
		prev_party = json_null();
	else if ((prev_party = json_parse((const uint8_t *)last.new_owner, strlen(last.new_owner),
		      "stored custody owner", e)) == NULL) {
		rc = DEVID_EINTERNAL;
		goto out;
	}
	if ((new_party = party_json(svc, db, c, c->new_owner, e)) == NULL) {
		rc = e != NULL && e->code != 0 ? e->code : DEVID_ENOMEM;
		goto out;
	}
	signer = owner_key(svc, db, c->prev_owner, prev_party);
	rc = DEVID_ENOMEM;
	pay = json_pack("{s:i, s:I, s:s, s:s, s:s, s:I, s:s, s:o, s:s, s:O, s:O, s:b, s:o}",
	    "version", CUSTODY_VERSION, "seq", (json_int_t)next.seq, "event", c->event, "vendor",
	    c->vendor, "batch", c->batch, "count", (json_int_t)c->count, "manifestSha256",
	    next.manifest_sha256, "descriptorSha256",
	    c->descriptor_sha256 != NULL && c->descriptor_sha256[0] != '\0'
		? json_string(c->descriptor_sha256)
		: json_null(),
	    "prev", last.payload_sha256, "previousOwner", prev_party, "newOwner", new_party,
	    "ownerSigned", signer != NULL, "at", json_time(time(NULL)));
	if (pay == NULL || (text = json_dump_compact(pay)) == NULL ||
	    (next.new_owner = json_dump_compact(new_party)) == NULL) {
		devid_error_set(e, rc, "custody: out of memory");
		goto out;
	}
	if ((rec = custody_sign(
		 (const uint8_t *)text, strlen(text), svc->custody_key, signer, e)) == NULL) {
		rc = e != NULL && e->code != 0 ? e->code : DEVID_ECRYPTO;
		goto out;
	}
	if ((rec_text = json_dump_compact(rec)) == NULL) {
		devid_error_set(e, rc, "custody: out of memory");
		goto out;
	}
	SHA256((const uint8_t *)text, strlen(text), md);
	hex_encode(md, sizeof(md), next.payload_sha256);
	rc = store_custody_insert(db, c->batch_id, &next, c->event, rec_text, e);
out:
	custody_rec_release(&last);
	custody_rec_release(&next);
	json_decref(pay);
	json_decref(prev_party);
	json_decref(new_party);
	json_decref(rec);
	free(text);
	free(rec_text);
	return rc;
}

int
service_custody_get(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, json_t **out, struct devid_error *e)
{
	struct batch_rec b;
	struct db_rows *r = NULL;
	struct db *db;
	json_t *recs = NULL;
	bool owner, maker;
	int rc;

	*out = NULL;
	db = store_acquire(svc->store);
	if ((rc = store_batch_get(db, vendor, batch, &b, e)) != 0 && rc != DEVID_ENOTFOUND)
		goto out;
	owner = rc == 0 && p->tenant.kind == TENANT_OEM && b.owner_id == p->tenant.id &&
	    (p->role == ROLE_ADMIN || p->role == ROLE_OPERATOR);
	maker = rc == 0 && p->tenant.kind == TENANT_VENDOR && p->role == ROLE_VENDOR &&
	    b.vendor_id == p->tenant.id;
	if (!owner && !maker) {
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no batch %s/%s", vendor, batch);
		goto out;
	}
	if ((rc = store_custody_list(db, b.id, &r, e)) != 0)
		goto out;
	if ((recs = json_array()) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < db_rows_count(r); i++) {
		size_t len;
		const char *t = db_rows_text(r, i, 0, &len);
		json_t *j = json_parse((const uint8_t *)t, len, "stored custody record", e);

		if (j == NULL || json_array_append_new(recs, j) != 0) {
			rc = DEVID_EINTERNAL;
			goto out;
		}
	}
	if ((*out = json_pack(
		 "{s:s, s:s, s:O}", "vendor", b.vendor, "batch", b.name, "records", recs)) == NULL)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
out:
	json_decref(recs);
	db_rows_free(r);
	store_release(svc->store, db);
	return rc;
}
