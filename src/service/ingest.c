/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/json.h"
#include "lib/submission.h"
#include "lib/x509.h"
#include "service/internal.h"
#include "lib/banned.h"

int
service_authenticate(
    struct service *svc, const char *token, size_t len, struct principal *p, struct devid_error *e)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	struct devid_error ignored;
	struct token_rec tok;
	struct db *db;
	int rc;

	memset(p, 0, sizeof(*p));
	/* a token is 43 base64url characters: anything else cannot be one */
	if (len < 16 || len > 128)
		return devid_error_set(e, DEVID_EAUTH, "invalid bearer token");
	SHA256((const uint8_t *)token, len, md);
	hex_encode(md, sizeof(md), hex);
	db = store_acquire(svc->store);
	rc = store_token_lookup(db, hex, time(NULL), &tok, &ignored);
	if (rc == 0)
		service_token_touch(db, tok.id, tok.last_used_at, time(NULL));
	store_release(svc->store, db);
	if (rc == DEVID_ENOTFOUND)
		return devid_error_set(e, DEVID_EAUTH, "invalid bearer token");
	if (rc != 0)
		return devid_error_set(e, rc, "%s", ignored.msg);
	p->tenant = tok.tenant;
	p->role = tok.role;
	p->token = tok.id;
	memcpy(p->token_id, hex, sizeof(p->token_id) - 1);
	snprintf(p->token_name, sizeof(p->token_name), "%s", tok.name);
	snprintf(p->actor, sizeof(p->actor), "token:%lld:%s", (long long)tok.id, tok.name);
	return 0;
}

int
service_trust_certs(struct db *db, int64_t vendor_id, STACK_OF(X509) *roots,
    STACK_OF(X509) *signers, struct devid_error *e)
{
	struct trust_rec *tr = NULL;
	STACK_OF(X509) *sk;
	size_t n = 0;
	int rc;

	if ((rc = store_trust_list(db, vendor_id, &tr, &n, e)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (signers != NULL && tr[i].removed_at != 0)
			continue;
		for (int which = 0; which < 2 && rc == 0; which++) {
			const char *pem = which == 0 ? tr[i].root_pem : tr[i].signer_pem;
			STACK_OF(X509) *to = which == 0 ? roots : signers;

			if (to == NULL)
				continue;
			if ((sk = x509_load_pem_mem(
				 pem, strlen(pem), which ? "signer" : "root", e)) == NULL) {
				rc = DEVID_EINVAL;
				break;
			}
			while (sk_X509_num(sk) > 0)
				if (!sk_X509_push(to, sk_X509_shift(sk)))
					rc = devid_error_set(
					    e, DEVID_ENOMEM, "trust: out of memory");
			sk_X509_pop_free(sk, X509_free);
		}
	}
	store_trust_list_free(tr, n);
	return rc;
}

/* The trusted roots and signers of one vendor (0: of every vendor). */
static struct vendor_trust *
trust_load(struct db *db, int64_t vendor_id, struct devid_error *e)
{
	STACK_OF(X509) *roots = sk_X509_new_null(), *signers = sk_X509_new_null();
	struct vendor_trust *t = NULL;

	if (roots == NULL || signers == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "trust: out of memory");
	} else if (service_trust_certs(db, vendor_id, roots, signers, e) == 0) {
		if (sk_X509_num(signers) == 0)
			devid_error_set(
			    e, DEVID_ECRYPTO, "no manifest signer is trusted for this vendor");
		else
			t = vendor_trust_new(roots, signers, e);
	}
	sk_X509_pop_free(roots, X509_free);
	sk_X509_pop_free(signers, X509_free);
	return t;
}

static void
report_batch_error(struct manifest_report *r, const char *msg)
{
	snprintf(r->batch_error, sizeof(r->batch_error), "%s", msg);
}

/*
 * Finds the trust whose signer is x5t among tl: 0 with *found set when it is in force;
 * DEVID_ECRYPTO naming the signer when it was removed (removed_refused) or when none has it
 * (*found NULL, 0 returned, unless required).
 */
static int
signer_trust(const struct trust_rec *tl, size_t n, const uint8_t x5t[32], bool required,
    const struct trust_rec **found, struct devid_error *e)
{
	char hex[65], subject[512], when[32];
	struct tm tm;
	time_t t;

	*found = NULL;
	hex_encode(x5t, 32, hex);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(tl[i].signer_sha256, hex) != 0)
			continue;
		if (tl[i].removed_at == 0) {
			*found = &tl[i];
			return 0;
		}
		service_signer_subject(tl[i].signer_pem, subject, sizeof(subject));
		t = (time_t)tl[i].removed_at;
		if (gmtime_r(&t, &tm) == NULL ||
		    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			snprintf(when, sizeof(when), "%lld", (long long)tl[i].removed_at);
		return devid_error_set(e, DEVID_ECRYPTO,
		    "manifest signer \"%s\" (trust %lld, SHA-256 %s) was removed from trust on %s: "
		    "its manifests are refused",
		    subject, (long long)tl[i].id, hex, when);
	}
	if (required)
		return devid_error_set(e, DEVID_ECRYPTO,
		    "manifest signer (SHA-256 %s) is not trusted for this tenant's imports: add "
		    "its "
		    "root and signer first (POST /api/v1/trust)",
		    hex);
	return 0;
}

/* Stores the batch and every device; the caller holds the transaction. */
static int
store_all(struct db *db, const struct batch_rec *b, const char *descriptor,
    const struct manifest *m, struct manifest_report *r, int64_t *batch_id, struct devid_error *e)
{
	char vendor[MAX_NAME_LEN + 1], batch[MAX_NAME_LEN + 1], msg[DEVID_ERROR_MAX];
	size_t conflicts = 0;
	int rc;

	if ((rc = store_batch_insert(db, b, descriptor, batch_id, e)) != 0)
		return rc;
	for (size_t i = 0; i < m->n; i++) {
		const struct manifest_entry *me = m->entries[i];

		/* the certificate is stored as the vendor sent it (DER, checked exact) */
		rc = store_device_insert(db, *batch_id, me->udid, me->unique_id, me->cert_der,
		    me->cert_der_len, me->json, e);
		if (rc == DEVID_ECONFLICT) {
			conflicts++;
			snprintf(
			    msg, sizeof(msg), "entry %zu: chip %s is already stored", i, me->udid);
			if (store_device_where(db, me->udid, vendor, batch, NULL) == 0)
				snprintf(msg, sizeof(msg),
				    "entry %zu: chip %s is already stored in batch %s/%s", i,
				    me->udid, vendor, batch);
			r->rejected++;
			if (r->nrejects < MAX_REPORT_ERRORS && r->rejects != NULL) {
				struct manifest_reject *x = &r->rejects[r->nrejects++];

				x->index = i;
				snprintf(x->unique_id, sizeof(x->unique_id), "%s", me->unique_id);
				snprintf(x->message, sizeof(x->message), "%s", msg);
			}
			continue;
		}
		if (rc != 0)
			return rc;
	}
	if (conflicts > 0) {
		r->accepted = 0;
		return devid_error_set(e, DEVID_ECONFLICT,
		    "%zu chip(s) of the batch are already stored in another batch", conflicts);
	}
	return 0;
}

/*
 * Stores a checked batch and its devices with the actor's audit record, all or nothing.
 * r collects chips already stored elsewhere.
 */
static int
ingest_commit(struct db *db, const struct principal *p, const struct batch_rec *b,
    const char *vendor, const char *descriptor, const struct manifest *m, int64_t trust_id,
    const char *action, struct manifest_report *r, struct devid_error *e)
{
	char object[2 * MAX_NAME_LEN + 2];
	int64_t batch_id = 0;
	json_t *detail;
	int rc;

	if (r->rejects == NULL &&
	    (r->rejects = calloc(MAX_REPORT_ERRORS, sizeof(*r->rejects))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	snprintf(object, sizeof(object), "%s/%s", vendor, b->name);
	if ((detail = json_pack("{s:s, s:I, s:I}", "batch", object, "count", (json_int_t)b->count,
		 "trust", (json_int_t)trust_id)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_all(db, b, descriptor, m, r, &batch_id, e)) != 0 ||
	    (trust_id != 0 && (rc = store_batch_set_trust(db, batch_id, trust_id, e)) != 0) ||
	    (rc = audit_append(db, p->tenant.id, p->actor, action, object, detail, e)) != 0) {
		db_rollback(db);
		if (rc == DEVID_ECONFLICT && r->batch_error[0] == '\0' && r->rejected == 0)
			report_batch_error(r, e->msg);
		goto out;
	}
	rc = db_commit(db, e);
out:
	json_decref(detail);
	return rc;
}

/*
 * Counts a publish or import that ended with rc: a stored batch and its entries, or the
 * refusal under the rule of the stage that refused it, and the entries refused one by one.
 */
static void
ingest_count(struct service_metrics *sm, enum ingest_source src, int rc, enum ingest_rule rule,
    const struct manifest_report *r)
{
	if (rc == 0) {
		counter_add(&sm->batches[src], 1);
		counter_add(&sm->entries[src], r->accepted);
		return;
	}
	counter_add(&sm->batches_refused[src][rule], 1);
	counter_add(&sm->entries_refused[src][rule == INGEST_RULE_DUPLICATE ? ENTRY_RULE_DUPLICATE
									    : ENTRY_RULE_CHECK],
	    r->rejected);
}

/* The rule a failed check_batch broke: entries of their own, or the batch as a whole. */
static enum ingest_rule
check_rule(int rc, const struct manifest_report *r)
{
	if (rc == DEVID_ENOMEM)
		return INGEST_RULE_ERROR;
	return r->rejected > 0 ? INGEST_RULE_ENTRIES : INGEST_RULE_BATCH;
}

/* The rule of a failed ingest_commit: a batch or chip stored already, or the database. */
static enum ingest_rule
commit_rule(int rc)
{
	return rc == DEVID_ECONFLICT ? INGEST_RULE_DUPLICATE : INGEST_RULE_ERROR;
}

int
service_publish(struct service *svc, const struct principal *p, const uint8_t *body, size_t len,
    struct manifest_report *r, struct devid_error *e)
{
	struct batch_descriptor *d = NULL;
	struct vendor_trust *t = NULL;
	struct manifest *m = NULL;
	struct trust_rec *tl = NULL;
	const struct trust_rec *admitted = NULL;
	size_t tn = 0;
	struct batch_rec b;
	struct db *db = NULL;
	char *descriptor = NULL;
	json_t *dj = NULL;
	enum ingest_rule rule = INGEST_RULE_AUTH;
	int rc;

	memset(r, 0, sizeof(*r));
	memset(&b, 0, sizeof(b));
	if (p->role != ROLE_VENDOR) {
		rc = devid_error_set(e, DEVID_EAUTH, "only a vendor token can publish batches");
		goto out;
	}
	rule = INGEST_RULE_FORMAT;
	if ((rc = publish_body_parse_bytes(body, len, svc->verify_threads, &d, &m, r, e)) != 0)
		goto out;
	if (strcmp(d->vendor, p->tenant.name) != 0) {
		rule = INGEST_RULE_AUTH;
		rc = devid_error_set(e, DEVID_EAUTH,
		    "the descriptor is for vendor %s; this token belongs to %s", d->vendor,
		    p->tenant.name);
		goto out;
	}
	db = store_acquire(svc->store);
	/* a removed signer is named; the trust in force then decides, and admits the batch */
	if ((rc = store_trust_list(db, p->tenant.id, &tl, &tn, e)) != 0 ||
	    (rc = signer_trust(tl, tn, d->hdr.x5t_s256, false, &admitted, e)) != 0) {
		rule = rc == DEVID_ECRYPTO ? INGEST_RULE_TRUST : INGEST_RULE_ERROR;
		report_batch_error(r, e->msg);
		goto out;
	}
	if ((t = trust_load(db, p->tenant.id, e)) == NULL) {
		rule = INGEST_RULE_TRUST;
		rc = DEVID_ECRYPTO;
		report_batch_error(r, e->msg);
		goto out;
	}
	if ((rc = manifest_check_batch(m, d, NULL, t, svc->verify_threads, r)) != 0) {
		rule = check_rule(rc, r);
		rc = devid_error_set(e, DEVID_EINVAL,
		    "batch %s/%s rejected: %zu of %zu entries failed%s%s", d->vendor, d->batch_id,
		    r->rejected, r->total, r->batch_error[0] ? "; " : "", r->batch_error);
		goto out;
	}
	b.vendor_id = p->tenant.id;
	snprintf(b.name, sizeof(b.name), "%s", d->batch_id);
	snprintf(b.part_number, sizeof(b.part_number), "%s", d->part_number);
	snprintf(b.claim_sha256, sizeof(b.claim_sha256), "%s", d->claim_sha256);
	b.count = d->count;
	b.source = BATCH_VENDOR;
	/* the descriptor as signed: its three JWS members */
	if ((dj = json_pack("{s:s, s:s, s:s}", "payload", d->payload_b64, "protected", d->prot_b64,
		 "signature", d->sig_b64)) == NULL ||
	    (descriptor = json_dump_compact(dj)) == NULL) {
		rule = INGEST_RULE_ERROR;
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	rc = ingest_commit(db, p, &b, d->vendor, descriptor, m, admitted != NULL ? admitted->id : 0,
	    "batch.publish", r, e);
	rule = commit_rule(rc);
out:
	ingest_count(&svc->metrics, INGEST_VENDOR, rc, rule, r);
	store_trust_list_free(tl, tn);
	json_decref(dj);
	if (db != NULL)
		store_release(svc->store, db);
	free(descriptor);
	manifest_free(m);
	batch_descriptor_free(d);
	vendor_trust_free(t);
	return rc;
}

/*
 * The trust a direct import is checked against: the importing tenant's own trust in force
 * whose signer made the first readable entry (entries of other signers then fail). Refused
 * when that signer or its root is a devid vendor's, whose chips are bound only by claim code.
 * *vt: that one root and signer; *admitted: its record, in *tl (the caller frees *tl).
 */
static int
import_trust(struct db *db, const struct principal *p, const struct manifest *m,
    struct trust_rec **tl, size_t *tn, const struct trust_rec **admitted, struct vendor_trust **vt,
    struct devid_error *e)
{
	const struct manifest_entry *first = NULL;
	STACK_OF(X509) *roots = NULL, *signers = NULL;
	char vendor[MAX_NAME_LEN + 1];
	int rc;

	*vt = NULL;
	*admitted = NULL;
	for (size_t i = 0; i < m->n && first == NULL; i++)
		first = m->entries[i];
	if (first == NULL)
		return devid_error_set(e, DEVID_EINVAL, "no entry of the manifest could be read");
	if ((rc = service_vendor_claims(db, first->hdr.x5t_s256, NULL, vendor, e)) < 0)
		return rc;
	if (rc > 0)
		goto claimed;
	if ((rc = store_trust_list(db, p->tenant.id, tl, tn, e)) != 0 ||
	    (rc = signer_trust(*tl, *tn, first->hdr.x5t_s256, true, admitted, e)) != 0)
		return rc;
	if ((roots = x509_load_pem_mem(
		 (*admitted)->root_pem, strlen((*admitted)->root_pem), "root", e)) == NULL ||
	    (signers = x509_load_pem_mem(
		 (*admitted)->signer_pem, strlen((*admitted)->signer_pem), "signer", e)) == NULL) {
		rc = DEVID_EINVAL;
		goto out;
	}
	/* the vendor may have come to devid since this trust was added */
	if ((rc = service_vendor_claims(db, first->hdr.x5t_s256, roots, vendor, e)) < 0)
		goto out;
	if (rc > 0)
		goto claimed;
	if ((*vt = vendor_trust_new(roots, signers, e)) == NULL)
		rc = DEVID_ECRYPTO;
	goto out;
claimed:
	rc = devid_error_set(e, DEVID_EAUTH,
	    "the manifest's signer or root is devid vendor %s's: its chips are bound only by the "
	    "batch's claim code (or a transfer code), never by import",
	    vendor);
out:
	sk_X509_pop_free(roots, X509_free);
	sk_X509_pop_free(signers, X509_free);
	return rc;
}

int
service_import(struct service *svc, const struct principal *p, const char *batch,
    const json_t *manifest, struct manifest_report *r, struct devid_error *e)
{
	struct vendor_trust *t = NULL;
	struct manifest *m = NULL;
	struct trust_rec *tl = NULL;
	const struct trust_rec *admitted = NULL;
	size_t tn = 0;
	struct batch_rec b;
	struct db *db = NULL;
	enum ingest_rule rule = INGEST_RULE_AUTH;
	int rc;

	memset(r, 0, sizeof(*r));
	memset(&b, 0, sizeof(b));
	if (p->tenant.kind != TENANT_OEM || p->role != ROLE_ADMIN) {
		rc = devid_error_set(e, DEVID_EAUTH, "only an OEM admin imports manifests");
		goto out;
	}
	rule = INGEST_RULE_FORMAT;
	if (batch == NULL || !claim_name_valid(batch, strlen(batch))) {
		rc = devid_error_set(e, DEVID_EINVAL, "?batch= must match [A-Z0-9.-]{1,64}");
		goto out;
	}
	if ((rc = manifest_from_json_mt(manifest, svc->verify_threads, &m, r, e)) != 0)
		goto out;
	db = store_acquire(svc->store);
	if ((rc = import_trust(db, p, m, &tl, &tn, &admitted, &t, e)) != 0) {
		/* a devid vendor's chips (DEVID_EAUTH) are never imported */
		rule = rc == DEVID_EAUTH  ? INGEST_RULE_AUTH
		    : rc == DEVID_ECRYPTO ? INGEST_RULE_TRUST
		    : rc == DEVID_EINVAL  ? INGEST_RULE_FORMAT
					  : INGEST_RULE_ERROR;
		report_batch_error(r, e->msg);
		goto out;
	}
	if ((rc = manifest_check_batch(m, NULL, batch, t, svc->verify_threads, r)) != 0) {
		rule = check_rule(rc, r);
		rc = devid_error_set(e, DEVID_EINVAL,
		    "import %s rejected: %zu of %zu entries failed", batch, r->rejected, r->total);
		goto out;
	}
	/* the importer's own namespace: OEM/BATCH, never a devid vendor's */
	b.vendor_id = p->tenant.id;
	snprintf(b.name, sizeof(b.name), "%s", batch);
	snprintf(b.part_number, sizeof(b.part_number), "import");
	b.count = (int64_t)m->n;
	b.source = BATCH_IMPORT;
	b.owner_id = p->tenant.id;
	rc = ingest_commit(db, p, &b, p->tenant.name, NULL, m, admitted->id, "batch.import", r, e);
	rule = commit_rule(rc);
out:
	ingest_count(&svc->metrics, INGEST_IMPORT, rc, rule, r);
	if (db != NULL)
		store_release(svc->store, db);
	store_trust_list_free(tl, tn);
	manifest_free(m);
	vendor_trust_free(t);
	return rc;
}
