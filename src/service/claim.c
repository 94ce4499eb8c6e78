/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "lib/claim.h"
#include "service/internal.h"
#include "lib/banned.h"

static bool
is_oem(const struct principal *p, bool admin_only)
{
	return p->tenant.kind == TENANT_OEM &&
	    (p->role == ROLE_ADMIN || (!admin_only && p->role == ROLE_OPERATOR));
}

/* Constant time: both hashes are 64 hex digits, or the stored one is absent. */
static bool
hash_eq(const char *stored, const char *given)
{
	static const char zeros[65] =
	    "0000000000000000000000000000000000000000000000000000000000000000";
	bool present = strlen(stored) == 64;

	return CRYPTO_memcmp(present ? stored : zeros, given, 64) == 0 && present;
}

static int
not_found(struct devid_error *e)
{
	return devid_error_set(e, DEVID_ENOTFOUND, CLAIM_NOT_FOUND_MSG);
}

/*
 * The claim rate limit, per token and per address, in the database: every server of one
 * database counts against the same buckets. Its own transaction, before the claim's: a claim
 * that then fails (a wrong code) still counts, and one refused here takes from neither bucket.
 */
static int
claim_rate(struct service *svc, struct db *db, const struct principal *p, const char *addr,
    int *retry_after, struct devid_error *e)
{
	char tkey[64], akey[96];
	const char *keys[] = {tkey, akey};
	int64_t wait_ms;
	size_t refused;
	int rc;

	if (svc->claim_limit.interval_ms <= 0)
		return 0;
	snprintf(tkey, sizeof(tkey), "claim:t:%s", p->token_id);
	snprintf(akey, sizeof(akey), "claim:a:%s", addr != NULL ? addr : "");
	if ((rc = service_rate_take(db, &svc->claim_limit, keys, addr != NULL ? 2 : 1,
		 service_now_ms(), &wait_ms, &refused, e)) != 0)
		return rc;
	if (wait_ms == 0)
		return 0;
	if (retry_after != NULL)
		*retry_after = (int)((wait_ms + 999) / 1000);
	return devid_error_set(
	    e, DEVID_ELIMIT, "too many claims from this %s", refused == 0 ? "token" : "address");
}

static int
claim_bind(struct service *svc, const struct principal *p, const char *addr, const uint8_t *code,
    size_t len, struct batch_rec *b, bool *changed, int *retry_after, struct devid_error *e)
{
	char hash[65], object[2 * MAX_NAME_LEN + 2];
	struct custody_change change;
	struct claim_code c;
	struct db *db = NULL;
	json_t *detail = NULL;
	bool transfer = false;
	int64_t old_owner, revoked = 0;
	int rc;

	*changed = false;
	if (retry_after != NULL)
		*retry_after = 0;
	memset(b, 0, sizeof(*b));
	if (!is_oem(p, false))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin or operator can claim");
	db = store_acquire(svc->store);
	if ((rc = claim_rate(svc, db, p, addr, retry_after, e)) != 0)
		goto out;
	if ((rc = claim_code_parse(code, len, &c, e)) != 0)
		goto out;
	claim_code_hash(c.text, strlen(c.text), hash);
	OPENSSL_cleanse(&c.code, sizeof(c.code));
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	rc = store_batch_get(db, c.vendor, c.batch, b, e);
	if (rc == DEVID_ENOTFOUND) {
		hash_eq("", hash);
		rc = not_found(e);
		goto rollback;
	}
	if (rc != 0)
		goto rollback;
	if (b->owner_id == p->tenant.id) {
		/* the owner again: idempotent, with the current or a pending transfer code */
		rc = hash_eq(b->claim_sha256, hash) || hash_eq(b->transfer_sha256, hash)
		    ? 0
		    : not_found(e);
		goto rollback;
	}
	if (b->owner_id == 0 && hash_eq(b->claim_sha256, hash))
		transfer = false;
	else if (b->owner_id != 0 && hash_eq(b->transfer_sha256, hash))
		transfer = true;
	else {
		rc = not_found(e);
		goto rollback;
	}
	snprintf(object, sizeof(object), "%s/%s", b->vendor, b->name);
	old_owner = b->owner_id;
	if ((rc = store_batch_set_owner(db, b->id, p->tenant.id, transfer, e)) != 0) {
		/* another claim won the race: if it was the caller's own, this one succeeds too */
		if (rc == DEVID_ECONFLICT)
			rc = store_batch_get(db, c.vendor, c.batch, b, e) == 0 &&
				b->owner_id == p->tenant.id
			    ? 0
			    : not_found(e);
		goto rollback;
	}
	/* a transfer ends the previous owner's certificates of the batch, as a release does */
	if (transfer &&
	    (rc = store_cert_revoke(db, old_owner, 0, b->id, time(NULL),
		 CRL_REASON_AFFILIATION_CHANGED, &revoked, e)) != 0)
		goto rollback;
	detail = json_pack("{s:s, s:b, s:I}", "batch", object, "transfer", transfer,
	    "revokedCertificates", (json_int_t)revoked);
	if ((rc = audit_append(db, p->tenant.id, p->actor, "batch.claim", object, detail, e)) != 0)
		goto rollback;
	change = (struct custody_change){.event = transfer ? "transfer" : "claim",
	    .batch_id = b->id,
	    .vendor = b->vendor,
	    .batch = b->name,
	    .count = b->count,
	    .prev_owner = transfer ? old_owner : CUSTODY_VENDOR,
	    .new_owner = p->tenant.id};
	if ((rc = custody_append(svc, db, &change, e)) != 0)
		goto rollback;
	/* auto mode: the deliveries are written with the claim, so none can be lost */
	if ((rc = provision_enqueue(db, p->tenant.id, true, false, b->id, NULL, b->count, e)) != 0)
		goto rollback;
	if ((rc = db_commit(db, e)) != 0)
		goto out;
	b->owner_id = p->tenant.id;
	*changed = true;
	goto out;
rollback:
	db_rollback(db);
out:
	json_decref(detail);
	store_release(svc->store, db);
	return rc;
}

/* The result label of a claim that returned rc: claim_bind's codes map one to one. */
static enum claim_result
claim_result(int rc)
{
	switch (rc) {
	case 0:
		return CLAIM_RESULT_OK;
	case DEVID_ENOTFOUND:
		return CLAIM_RESULT_WRONG;
	case DEVID_ELIMIT:
		return CLAIM_RESULT_RATE_LIMITED;
	case DEVID_EINVAL:
		return CLAIM_RESULT_MALFORMED;
	case DEVID_EAUTH:
		return CLAIM_RESULT_FORBIDDEN;
	default:
		return CLAIM_RESULT_ERROR;
	}
}

int
service_claim(struct service *svc, const struct principal *p, const char *addr, const uint8_t *code,
    size_t len, struct batch_rec *b, bool *changed, int *retry_after, struct devid_error *e)
{
	int rc = claim_bind(svc, p, addr, code, len, b, changed, retry_after, e);

	counter_add(&svc->metrics.claims[claim_result(rc)], 1);
	return rc;
}

int
service_transfer(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, char *code, size_t codelen, struct devid_error *e)
{
	char hash[65], object[2 * MAX_NAME_LEN + 2];
	struct claim_code c;
	struct batch_rec b;
	struct db *db = store_acquire(svc->store);
	json_t *detail = NULL;
	int rc;

	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = service_own_batch(db, p, true, vendor, batch, &b, e)) != 0 ||
	    (rc = claim_code_generate(vendor, batch, &c, e)) != 0)
		goto rollback;
	claim_code_hash(c.text, strlen(c.text), hash);
	snprintf(object, sizeof(object), "%s/%s", vendor, batch);
	detail = json_pack("{s:s}", "batch", object);
	if ((rc = store_batch_set_transfer(db, b.id, hash, e)) != 0 ||
	    (rc = audit_append(db, p->tenant.id, p->actor, "batch.transfer", object, detail, e)) !=
		0)
		goto rollback;
	if ((rc = db_commit(db, e)) == 0)
		snprintf(code, codelen, "%s", c.text);
	OPENSSL_cleanse(&c, sizeof(c));
	goto out;
rollback:
	db_rollback(db);
out:
	json_decref(detail);
	store_release(svc->store, db);
	return rc;
}

int
service_release(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, struct devid_error *e)
{
	char object[2 * MAX_NAME_LEN + 2];
	struct custody_change change;
	struct batch_rec b;
	struct db *db = store_acquire(svc->store);
	json_t *detail = NULL;
	int64_t revoked = 0;
	int rc;

	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = service_own_batch(db, p, true, vendor, batch, &b, e)) != 0)
		goto rollback;
	snprintf(object, sizeof(object), "%s/%s", vendor, batch);
	/* release stops every push of the batch, takes its devices out of the clouds and ends
	 * the certificates the owner holds for them (they name the owner in O=) */
	if ((rc = store_batch_release(db, b.id, e)) != 0 ||
	    (rc = store_cert_revoke(db, p->tenant.id, 0, b.id, time(NULL),
		 CRL_REASON_AFFILIATION_CHANGED, &revoked, e)) != 0)
		goto rollback;
	detail = json_pack("{s:s, s:s, s:I}", "batch", object, "reason",
	    revoke_reason_name(CRL_REASON_AFFILIATION_CHANGED), "revokedCertificates",
	    (json_int_t)revoked);
	change = (struct custody_change){.event = "release",
	    .batch_id = b.id,
	    .vendor = b.vendor,
	    .batch = b.name,
	    .count = b.count,
	    .prev_owner = p->tenant.id,
	    .new_owner = CUSTODY_VENDOR};
	if ((rc = store_job_cancel_batch(db, b.id, e)) != 0 ||
	    (rc = provision_enqueue(db, p->tenant.id, false, true, b.id, NULL, b.count, e)) != 0 ||
	    (rc = audit_append(db, p->tenant.id, p->actor, "batch.release", object, detail, e)) !=
		0 ||
	    (rc = custody_append(svc, db, &change, e)) != 0)
		goto rollback;
	rc = db_commit(db, e);
	goto out;
rollback:
	db_rollback(db);
out:
	json_decref(detail);
	store_release(svc->store, db);
	return rc;
}
