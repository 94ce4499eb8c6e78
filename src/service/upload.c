/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The upload protocol (docs/api.md "Uploads"): a batch sent in pages, each parsed, checked and
 * stored as it arrives under a batch reserved invisible, which the commit makes visible in one
 * short transaction. The one-body publish and import (ingest.c) run through it too.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/json.h"
#include "service/internal.h"
#include "lib/banned.h"

/* Uploads (or orphan batches) one purge pass takes, and devices deleted per statement. */
#define PURGE_PASS 64
#define PURGE_CHUNK 5000
/* Missing pages a refused commit names. */
#define COMMIT_MISSING_NAMED 10

/* Pages are stored one at a time by a server: upload_job_store. */
static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t
upload_ttl(const struct service *svc)
{
	return svc->upload_ttl > 0 ? svc->upload_ttl : UPLOAD_DEFAULT_TTL;
}

static enum ingest_source
upload_source(enum upload_kind k)
{
	return k == UPLOAD_IMPORT ? INGEST_IMPORT : INGEST_VENDOR;
}

/* Who may work on an upload of this kind: a vendor publishes, an OEM admin imports. */
static int
upload_role(const struct principal *p, enum upload_kind k, struct devid_error *e)
{
	if (k == UPLOAD_PUBLISH && p->role != ROLE_VENDOR)
		return devid_error_set(e, DEVID_EAUTH, "only a vendor token can publish batches");
	if (k == UPLOAD_IMPORT && (p->tenant.kind != TENANT_OEM || p->role != ROLE_ADMIN))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin imports manifests");
	return 0;
}

/* The last page of a publish, by the descriptor's count; 0 for an import (the highest sent). */
static int64_t
upload_last_page(const struct upload_rec *u)
{
	return u->kind == UPLOAD_PUBLISH ? (u->expected + u->page_size - 1) / u->page_size : 0;
}

static void
sha256_hex(const uint8_t *p, size_t n, char hex[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256(p, n, md);
	hex_encode(md, sizeof(md), hex);
}

/* SHA-256 of the descriptor's compact serialization: protected "." payload "." signature. */
static int
descriptor_sha256(const struct batch_descriptor *d, char hex[65], struct devid_error *e)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok;

	ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, d->prot_b64, strlen(d->prot_b64)) == 1 &&
	    EVP_DigestUpdate(c, ".", 1) == 1 &&
	    EVP_DigestUpdate(c, d->payload_b64, strlen(d->payload_b64)) == 1 &&
	    EVP_DigestUpdate(c, ".", 1) == 1 &&
	    EVP_DigestUpdate(c, d->sig_b64, strlen(d->sig_b64)) == 1 &&
	    EVP_DigestFinal_ex(c, md, &len) == 1;
	EVP_MD_CTX_free(c);
	if (!ok)
		return devid_error_set(e, DEVID_ECRYPTO, "cannot hash the descriptor");
	hex_encode(md, len, hex);
	return 0;
}

void
upload_job_release(struct upload_job *j)
{
	vendor_trust_free(j->t);
	j->t = NULL;
}

/* A publish's descriptor, checked as a publish checks it; fills the batch and upload. */
static int
open_publish(struct upload_job *j, struct db *db, const struct upload_request *req,
    struct batch_rec *b, char **descriptor, struct manifest_report *r, struct devid_error *e)
{
	const struct principal *p = j->p;
	struct batch_descriptor *d = NULL;
	const struct trust_rec *admitted = NULL;
	struct trust_rec *tl = NULL;
	size_t tn = 0;
	int rc;

	j->rule = INGEST_RULE_FORMAT;
	if ((rc = batch_descriptor_parse(req->descriptor, req->descriptor_len, &d, e)) != 0)
		goto out;
	if (strcmp(d->vendor, p->tenant.name) != 0) {
		j->rule = INGEST_RULE_AUTH;
		rc = devid_error_set(e, DEVID_EAUTH,
		    "the descriptor is for vendor %s; this token belongs to %s", d->vendor,
		    p->tenant.name);
		goto out;
	}
	if ((d->count + req->page_size - 1) / req->page_size > MAX_UPLOAD_PAGES) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "pageSize %lld makes %lld pages of %lld entries, over the limit of %d pages",
		    (long long)req->page_size, (d->count + req->page_size - 1) / req->page_size,
		    d->count, MAX_UPLOAD_PAGES);
		goto out;
	}
	/* a removed signer is named; the trust in force then decides, and admits the batch */
	if ((rc = store_trust_list(db, p->tenant.id, &tl, &tn, e)) != 0 ||
	    (rc = ingest_signer_trust(tl, tn, d->hdr.x5t_s256, false, &admitted, e)) != 0) {
		j->rule = rc == DEVID_ECRYPTO ? INGEST_RULE_TRUST : INGEST_RULE_ERROR;
		snprintf(r->batch_error, sizeof(r->batch_error), "%s", e->msg);
		goto out;
	}
	if ((j->t = ingest_vendor_trust(db, p->tenant.id, e)) == NULL) {
		j->rule = INGEST_RULE_TRUST;
		rc = DEVID_ECRYPTO;
		snprintf(r->batch_error, sizeof(r->batch_error), "%s", e->msg);
		goto out;
	}
	if ((rc = batch_descriptor_verify(d, j->t, e)) != 0) {
		j->rule = INGEST_RULE_BATCH;
		snprintf(r->batch_error, sizeof(r->batch_error), "%s", e->msg);
		rc = devid_error_set(e, DEVID_EINVAL, "batch %s/%s rejected: %s", d->vendor,
		    d->batch_id, r->batch_error);
		goto out;
	}
	if ((*descriptor = batch_descriptor_json(d)) == NULL) {
		j->rule = INGEST_RULE_ERROR;
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(b->name, sizeof(b->name), "%s", d->batch_id);
	snprintf(b->part_number, sizeof(b->part_number), "%s", d->part_number);
	b->count = d->count;
	b->source = BATCH_VENDOR;
	j->u.expected = d->count;
	snprintf(j->u.claim_sha256, sizeof(j->u.claim_sha256), "%s", d->claim_sha256);
	if ((rc = descriptor_sha256(d, j->u.descriptor_sha256, e)) != 0) {
		j->rule = INGEST_RULE_ERROR;
		goto out;
	}
	j->trust_id = j->u.trust_id = admitted != NULL ? admitted->id : 0;
out:
	store_trust_list_free(tl, tn);
	batch_descriptor_free(d);
	return rc;
}

int
upload_job_open(struct upload_job *j, const struct upload_request *req, struct manifest_report *r,
    struct devid_error *e)
{
	const struct principal *p = j->p;
	struct upload_rec other;
	struct batch_rec b;
	struct db *db = NULL;
	char *descriptor = NULL;
	uint8_t raw[UPLOAD_REF_LEN / 2];
	int64_t now = time(NULL);
	int rc;

	memset(&b, 0, sizeof(b));
	memset(&j->u, 0, sizeof(j->u));
	j->rule = INGEST_RULE_AUTH;
	if ((rc = upload_role(p, req->kind, e)) != 0)
		return rc;
	j->rule = INGEST_RULE_FORMAT;
	if (req->page_size < 1 || req->page_size > MAX_UPLOAD_PAGE_ENTRIES)
		return devid_error_set(
		    e, DEVID_EINVAL, "pageSize must be 1 to %d", MAX_UPLOAD_PAGE_ENTRIES);
	if (req->kind == UPLOAD_IMPORT &&
	    (req->batch == NULL || !claim_name_valid(req->batch, strlen(req->batch))))
		return devid_error_set(
		    e, DEVID_EINVAL, "the batch name must match [A-Z0-9.-]{1,64}");
	/* uploads left to expire go before new ones come */
	(void)service_upload_purge(j->svc, now, NULL, NULL);
	db = store_acquire(j->svc->store);
	j->u.kind = req->kind;
	j->u.tenant_id = p->tenant.id;
	j->u.page_size = req->page_size;
	j->u.created_at = now;
	j->u.expires_at = now + upload_ttl(j->svc);
	b.vendor_id = p->tenant.id;
	if (req->kind == UPLOAD_PUBLISH) {
		if ((rc = open_publish(j, db, req, &b, &descriptor, r, e)) != 0)
			goto out;
	} else {
		snprintf(b.name, sizeof(b.name), "%s", req->batch);
		snprintf(b.part_number, sizeof(b.part_number), "import");
		b.source = BATCH_IMPORT;
	}
	snprintf(j->u.batch, sizeof(j->u.batch), "%s", b.name);
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		j->rule = INGEST_RULE_ERROR;
		rc = devid_error_set(e, DEVID_ECRYPTO, "no randomness for an upload id");
		goto out;
	}
	hex_encode(raw, sizeof(raw), j->u.ref);
	if ((rc = db_begin(db, e)) != 0) {
		j->rule = INGEST_RULE_ERROR;
		goto out;
	}
	if ((rc = store_upload_open(db, &b, descriptor, &j->u, e)) != 0) {
		db_rollback(db);
		j->rule = rc == DEVID_ECONFLICT ? INGEST_RULE_DUPLICATE : INGEST_RULE_ERROR;
		if (rc == DEVID_ECONFLICT &&
		    store_upload_find(db, p->tenant.id, b.name, &other, NULL) == 0)
			devid_error_set(e, rc,
			    "an upload of batch %s is open (id %s): send its missing pages and "
			    "commit it, or abort it (DELETE /api/v1/uploads/%s)",
			    b.name, other.ref, other.ref);
		else if (rc == DEVID_ECONFLICT)
			devid_error_set(e, rc, "batch %s already exists for this %s", b.name,
			    req->kind == UPLOAD_PUBLISH ? "vendor" : "tenant");
		goto out;
	}
	if ((rc = db_commit(db, e)) != 0)
		j->rule = INGEST_RULE_ERROR;
out:
	if (db != NULL)
		store_release(j->svc->store, db);
	free(descriptor);
	return rc;
}

/*
 * Reads the caller's upload ref into j with the trust its entries are checked against (an
 * import's once its first page decided it). An expired upload is gone already.
 */
static int
job_load(struct upload_job *j, const char *ref, struct devid_error *e)
{
	struct db *db = store_acquire(j->svc->store);
	int rc;

	j->rule = INGEST_RULE_FORMAT;
	if ((rc = store_upload_get(db, j->p->tenant.id, ref, false, &j->u, e)) != 0)
		goto out;
	if (j->u.expires_at <= time(NULL)) {
		rc = devid_error_set(e, DEVID_ENOTFOUND, "upload %s expired", ref);
		goto out;
	}
	j->rule = INGEST_RULE_AUTH;
	if ((rc = upload_role(j->p, j->u.kind, e)) != 0)
		goto out;
	j->rule = INGEST_RULE_TRUST;
	j->trust_id = j->u.trust_id;
	if (j->u.kind == UPLOAD_PUBLISH) {
		if ((j->t = ingest_vendor_trust(db, j->p->tenant.id, e)) == NULL)
			rc = DEVID_ECRYPTO;
	} else if (j->u.trust_id != 0) {
		rc = ingest_record_trust(db, j->u.trust_id, &j->t, e);
	}
out:
	store_release(j->svc->store, db);
	return rc;
}

/* Why a device of a page was refused by the database, added to r; 1 if another batch has it. */
static int
name_refusal(struct upload_job *j, struct db *db, const struct manifest_entry *me, size_t index,
    struct manifest_report *r)
{
	char vendor[MAX_NAME_LEN + 1], batch[MAX_NAME_LEN + 1], msg[DEVID_ERROR_MAX];
	bool uploading = false, own;

	if (store_device_where(db, me->udid, vendor, batch, &uploading, NULL) != 0) {
		/* not its UDID: its uniqueId is in this batch already */
		snprintf(msg, sizeof(msg),
		    "entry %zu: the uniqueId appears more than once in the batch", index);
		manifest_report_reject(r, index, me->unique_id, msg);
		return 0;
	}
	own = uploading && strcmp(vendor, j->p->tenant.name) == 0 && strcmp(batch, j->u.batch) == 0;
	if (own)
		snprintf(msg, sizeof(msg),
		    "entry %zu: the chip key (UDID) appears more than once in the batch", index);
	else
		snprintf(msg, sizeof(msg), "entry %zu: chip %s is already stored in batch %s/%s%s",
		    index, me->udid, vendor, batch, uploading ? ", which is being uploaded" : "");
	manifest_report_reject(r, index, me->unique_id, msg);
	return !own;
}

/*
 * Stores the devices of a checked page in one transaction with the record of the page: a
 * page received meanwhile is a replay (same SHA-256) or a conflict; chips the database
 * refuses are named in r and nothing is stored.
 */
static int
page_store(struct upload_job *j, const struct manifest *m, int64_t page, const char *sha256,
    struct manifest_report *r, bool *replayed, enum ingest_rule *rule, struct devid_error *e)
{
	struct upload_page pg = {.page = page, .entries = (int64_t)m->n};
	struct device_new *v = NULL;
	struct upload_rec cur;
	struct upload_page had;
	struct db *db = store_acquire(j->svc->store);
	bool *refused = NULL;
	size_t nrefused = 0, elsewhere = 0;
	int64_t now = time(NULL);
	int rc;

	snprintf(pg.sha256, sizeof(pg.sha256), "%s", sha256);
	*rule = INGEST_RULE_ERROR;
	if ((v = calloc(m->n + 1, sizeof(*v))) == NULL ||
	    (refused = calloc(m->n + 1, sizeof(*refused))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct manifest_entry *me = m->entries[i];

		/* the certificate is stored as the vendor sent it (DER, checked exact) */
		v[i] = (struct device_new){.udid = me->udid,
		    .serial = me->unique_id,
		    .tpm = me->tpm,
		    .cert = me->cert_der,
		    .cert_len = me->cert_der_len,
		    .entry = me->json};
	}
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_upload_get(db, j->p->tenant.id, j->u.ref, true, &cur, e)) != 0 ||
	    cur.expires_at <= now) {
		if (rc == 0)
			rc = devid_error_set(e, DEVID_ENOTFOUND, "upload %s expired", j->u.ref);
		*rule = INGEST_RULE_FORMAT;
		goto rollback;
	}
	if ((rc = store_upload_page_get(db, cur.id, page, &had, e)) != DEVID_ENOTFOUND) {
		if (rc == 0 && strcmp(had.sha256, sha256) == 0)
			*replayed = true;
		else if (rc == 0)
			rc = devid_error_set(e, DEVID_ECONFLICT,
			    "page %lld was received with other content (SHA-256 %s)",
			    (long long)page, had.sha256);
		*rule = INGEST_RULE_DUPLICATE;
		goto rollback;
	}
	if (j->u.kind == UPLOAD_IMPORT && cur.trust_id != 0 && cur.trust_id != j->trust_id) {
		rc = devid_error_set(e, DEVID_ECONFLICT,
		    "another page decided this import's signer meanwhile: send page %lld again",
		    (long long)page);
		*rule = INGEST_RULE_TRUST;
		goto rollback;
	}
	if ((rc = store_devices_insert(db, cur.batch_id, v, m->n, refused, &nrefused, e)) != 0)
		goto rollback;
	if (nrefused > 0) {
		r->accepted = 0;
		for (size_t i = 0; i < m->n; i++)
			if (refused[i])
				elsewhere +=
				    (size_t)name_refusal(j, db, m->entries[i], m->base + i, r);
		manifest_report_sort(r);
		*rule = elsewhere > 0 ? INGEST_RULE_DUPLICATE : INGEST_RULE_ENTRIES;
		rc = elsewhere > 0
		    ? devid_error_set(e, DEVID_ECONFLICT,
			  "page %lld: %zu chip(s) are already stored in another "
			  "batch",
			  (long long)page, elsewhere)
		    : devid_error_set(e, DEVID_EINVAL,
			  "page %lld: %zu chip(s) appear more than once in the batch",
			  (long long)page, nrefused);
		goto rollback;
	}
	if ((j->u.kind == UPLOAD_IMPORT && cur.trust_id == 0 &&
		(rc = store_upload_set_trust(db, cur.id, j->trust_id, e)) != 0) ||
	    (rc = store_upload_page_add(db, cur.id, &pg, now, now + upload_ttl(j->svc), e)) != 0)
		goto rollback;
	rc = db_commit(db, e);
	goto out;
rollback:
	db_rollback(db);
out:
	store_release(j->svc->store, db);
	free(v);
	free(refused);
	return *replayed ? 0 : rc;
}

int
upload_job_store(struct upload_job *j, const struct manifest *m, int64_t page, const char *sha256,
    struct manifest_report *r, bool *replayed, enum ingest_rule *rule, struct devid_error *e)
{
	int rc;

	*replayed = false;
	/*
	 * SQLite takes one writer at a time, and a writer kept waiting polls for the lock with
	 * sleeps of up to 100 ms; a mutex hands the turn to the next page at once. A page's
	 * storing is a fraction of its checking, so PostgreSQL loses nothing by it either.
	 */
	pthread_mutex_lock(&store_lock);
	rc = page_store(j, m, page, sha256, r, replayed, rule, e);
	pthread_mutex_unlock(&store_lock);
	return rc;
}

int
upload_job_check(struct upload_job *j, const struct manifest *m, int64_t page,
    struct manifest_report *r, struct devid_error *e)
{
	struct db *db;
	int rc;

	if (j->t == NULL) {
		/* an import's first page: its first readable entry's signer decides the trust */
		db = store_acquire(j->svc->store);
		rc = ingest_import_trust(db, j->p, m, &j->t, &j->trust_id, e);
		store_release(j->svc->store, db);
		if (rc != 0) {
			j->rule = rc == DEVID_EAUTH ? INGEST_RULE_AUTH
			    : rc == DEVID_ECRYPTO   ? INGEST_RULE_TRUST
			    : rc == DEVID_EINVAL    ? INGEST_RULE_FORMAT
						    : INGEST_RULE_ERROR;
			snprintf(r->batch_error, sizeof(r->batch_error), "%s", e->msg);
			return rc;
		}
	}
	if ((rc = manifest_check_entries(m, j->u.batch, j->u.kind == UPLOAD_PUBLISH, j->t,
		 j->svc->verify_threads, r)) != 0) {
		j->rule = rc == DEVID_ENOMEM ? INGEST_RULE_ERROR : INGEST_RULE_ENTRIES;
		return devid_error_set(e, rc, "page %lld rejected: %zu of %zu entries failed%s%s",
		    (long long)page, r->rejected, r->total, r->nrejects > 0 ? "; the first: " : "",
		    r->nrejects > 0 ? r->rejects[0].message : "");
	}
	return 0;
}

/* "pages 3, 4 and 9 are missing (of 12)" */
static int
missing_pages(const int64_t *missing, size_t named, size_t n, int64_t last, struct devid_error *e)
{
	char list[DEVID_ERROR_MAX / 2];
	size_t len = 0;

	list[0] = '\0';
	for (size_t i = 0; i < named && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%lld",
		    i == 0                             ? ""
			: i + 1 == named && named == n ? " and "
						       : ", ",
		    (long long)missing[i]);
	return devid_error_set(e, DEVID_EINVAL,
	    "%s %s%s %s missing (of %lld): send %s before committing", n == 1 ? "page" : "pages",
	    list, n > named ? " and more" : "", n == 1 ? "is" : "are", (long long)last,
	    n == 1 ? "it" : "them");
}

int
upload_job_commit(struct upload_job *j, struct manifest_report *r, struct devid_error *e)
{
	const struct principal *p = j->p;
	char object[2 * MAX_NAME_LEN + 2];
	int64_t missing[COMMIT_MISSING_NAMED], entries = 0, last, now = time(NULL);
	struct upload_page shortp;
	struct custody_change change;
	struct vendor_trust *still = NULL;
	struct upload_rec cur;
	struct db *db = store_acquire(j->svc->store);
	json_t *detail = NULL;
	size_t nmissing = 0;
	int rc;

	j->rule = INGEST_RULE_ERROR;
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_upload_get(db, p->tenant.id, j->u.ref, true, &cur, e)) != 0 ||
	    cur.expires_at <= now) {
		if (rc == 0)
			rc = devid_error_set(e, DEVID_ENOTFOUND, "upload %s expired", j->u.ref);
		j->rule = INGEST_RULE_FORMAT;
		goto rollback;
	}
	j->rule = INGEST_RULE_BATCH;
	last = cur.kind == UPLOAD_PUBLISH ? upload_last_page(&cur) : cur.last_page;
	if (last == 0) {
		rc = devid_error_set(e, DEVID_EINVAL, "no page was received: nothing to commit");
		goto rollback;
	}
	if ((rc = store_upload_missing(
		 db, cur.id, last, missing, COMMIT_MISSING_NAMED, &nmissing, &entries, e)) != 0)
		goto rollback;
	if (nmissing > 0) {
		rc = missing_pages(missing,
		    nmissing < COMMIT_MISSING_NAMED ? nmissing : COMMIT_MISSING_NAMED, nmissing,
		    last, e);
		goto rollback;
	}
	if ((rc = store_upload_short_page(db, cur.id, last, cur.page_size, &shortp, e)) !=
	    DEVID_ENOTFOUND) {
		if (rc == 0)
			rc = devid_error_set(e, DEVID_EINVAL,
			    "page %lld holds %lld entries, not the upload's pageSize %lld: only "
			    "the "
			    "last page (%lld) may hold fewer",
			    (long long)shortp.page, (long long)shortp.entries,
			    (long long)cur.page_size, (long long)last);
		goto rollback;
	}
	if (cur.kind == UPLOAD_PUBLISH && entries != cur.expected) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "batch descriptor: count is %lld but the pages hold %lld entries",
		    (long long)cur.expected, (long long)entries);
		goto rollback;
	}
	/* a signer removed while the pages came admits no batch */
	j->rule = INGEST_RULE_TRUST;
	if ((rc = ingest_record_trust(db, cur.trust_id, &still, e)) != 0)
		goto rollback;
	j->rule = INGEST_RULE_ERROR;
	snprintf(object, sizeof(object), "%s/%s", p->tenant.name, cur.batch);
	if ((detail = json_pack("{s:s, s:I, s:I}", "batch", object, "count", (json_int_t)entries,
		 "trust", (json_int_t)cur.trust_id)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto rollback;
	}
	if ((rc = store_upload_commit(db, &cur, entries,
		 cur.kind == UPLOAD_PUBLISH ? cur.claim_sha256 : NULL,
		 cur.kind == UPLOAD_IMPORT ? p->tenant.id : 0, cur.trust_id, now, e)) != 0 ||
	    (rc = audit_append(db, p->tenant.id, p->actor,
		 cur.kind == UPLOAD_PUBLISH ? "batch.publish" : "batch.import", object, detail,
		 e)) != 0)
		goto rollback;
	change = (struct custody_change){.event = cur.kind == UPLOAD_PUBLISH ? "publish" : "import",
	    .batch_id = cur.batch_id,
	    .vendor = p->tenant.name,
	    .batch = cur.batch,
	    .count = entries,
	    .descriptor_sha256 = cur.kind == UPLOAD_PUBLISH ? cur.descriptor_sha256 : NULL,
	    .prev_owner = CUSTODY_VENDOR,
	    .new_owner = cur.kind == UPLOAD_PUBLISH ? CUSTODY_VENDOR : p->tenant.id};
	if ((rc = custody_append(j->svc, db, &change, e)) != 0)
		goto rollback;
	if ((rc = db_commit(db, e)) != 0)
		goto out;
	r->total = r->accepted = (size_t)entries;
	j->u.entries = entries;
	goto out;
rollback:
	db_rollback(db);
out:
	store_release(j->svc->store, db);
	json_decref(detail);
	vendor_trust_free(still);
	return rc;
}

/* Deletes an orphan batch's devices a chunk at a time, then the batch. */
static int
orphan_purge(struct service *svc, int64_t batch_id, struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	bool done = false;
	int rc = 0;

	while (!done && rc == 0)
		rc = store_batch_orphan_purge(db, batch_id, PURGE_CHUNK, &done, e);
	store_release(svc->store, db);
	return rc;
}

/* Drops upload id (its batch becomes an orphan) and purges what it stored. */
static int
upload_drop(struct service *svc, int64_t id, int64_t batch_id, struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	int rc;

	if ((rc = db_begin(db, e)) == 0) {
		if ((rc = store_upload_drop(db, id, e)) != 0)
			db_rollback(db);
		else
			rc = db_commit(db, e);
	}
	store_release(svc->store, db);
	return rc != 0 ? rc : orphan_purge(svc, batch_id, e);
}

void
upload_job_abort(struct upload_job *j)
{
	struct devid_error ignored;

	if (j->u.id != 0)
		(void)upload_drop(j->svc, j->u.id, j->u.batch_id, &ignored);
}

int
service_upload_open(struct service *svc, const struct principal *p,
    const struct upload_request *req, struct upload_rec *u, struct manifest_report *r,
    struct devid_error *e)
{
	struct upload_job j = {.svc = svc, .p = p};
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = upload_job_open(&j, req, r, e)) != 0)
		ingest_count(&svc->metrics, upload_source(req->kind), rc, j.rule, r);
	*u = j.u;
	upload_job_release(&j);
	return rc;
}

/* A page of n entries where want are due: all of them (publish), at most that (import). */
static int
page_count_check(
    const struct upload_rec *u, int64_t page, size_t n, int64_t want, struct devid_error *e)
{
	if ((int64_t)n > want || (u->kind == UPLOAD_PUBLISH && (int64_t)n != want))
		return devid_error_set(e, DEVID_EINVAL,
		    "page %lld holds %zu entries; it must hold %s%lld (pageSize %lld%s)",
		    (long long)page, n, u->kind == UPLOAD_IMPORT ? "at most " : "", (long long)want,
		    (long long)u->page_size,
		    u->kind == UPLOAD_PUBLISH ? ", and the descriptor's count" : "");
	return 0;
}

int
service_upload_page(struct service *svc, const struct principal *p, const char *ref, int64_t page,
    const uint8_t *body, size_t len, struct manifest_report *r, bool *replayed,
    struct devid_error *e)
{
	struct upload_job j = {.svc = svc, .p = p};
	struct manifest_span *spans = NULL;
	struct manifest *m = NULL;
	struct upload_page had;
	size_t nspans = 0;
	struct db *db;
	char sha[65];
	int64_t last, want;
	int rc;

	memset(r, 0, sizeof(*r));
	*replayed = false;
	if ((rc = job_load(&j, ref, e)) != 0)
		goto out;
	j.rule = INGEST_RULE_FORMAT;
	last = upload_last_page(&j.u);
	if (page < 1 || page > (last > 0 ? last : MAX_UPLOAD_PAGES)) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "page %lld: the pages of this upload are 1 to %lld", (long long)page,
		    (long long)(last > 0 ? last : MAX_UPLOAD_PAGES));
		goto out;
	}
	/* the same page again is answered from its record, before any work */
	sha256_hex(body, len, sha);
	db = store_acquire(svc->store);
	rc = store_upload_page_get(db, j.u.id, page, &had, e);
	store_release(svc->store, db);
	if (rc != DEVID_ENOTFOUND) {
		if (rc == 0 && strcmp(had.sha256, sha) == 0) {
			*replayed = true;
			r->total = r->accepted = (size_t)had.entries;
		} else if (rc == 0) {
			j.rule = INGEST_RULE_DUPLICATE;
			rc = devid_error_set(e, DEVID_ECONFLICT,
			    "page %lld was received with other content (SHA-256 %s): a page, once "
			    "received, stays; abort the upload to send another manifest",
			    (long long)page, had.sha256);
		}
		goto out;
	}
	want = j.u.kind == UPLOAD_PUBLISH && page == last
	    ? j.u.expected - (last - 1) * j.u.page_size
	    : j.u.page_size;
	/* the elements are counted before any is parsed: a page of a million tiny elements
	 * costs a scan, not a million refusals */
	if (manifest_split(body, len, &spans, &nspans)) {
		if ((rc = page_count_check(&j.u, page, nspans, want, e)) != 0)
			goto out;
		rc = manifest_parse_spans(body, spans, nspans, (size_t)((page - 1) * j.u.page_size),
		    svc->verify_threads, &m, r, e);
	} else {
		rc = 1;
	}
	/* not JSON, or an element is not: the document's own error decides */
	if (rc == 1)
		rc = manifest_parse_at(
		    body, len, (size_t)((page - 1) * j.u.page_size), svc->verify_threads, &m, r, e);
	if (rc != 0) {
		j.rule = rc == DEVID_ENOMEM ? INGEST_RULE_ERROR : INGEST_RULE_FORMAT;
		devid_error_prefix(e, "page %lld", (long long)page);
		goto out;
	}
	if ((rc = page_count_check(&j.u, page, m->n, want, e)) != 0)
		goto out;
	if ((rc = upload_job_check(&j, m, page, r, e)) == 0)
		rc = upload_job_store(&j, m, page, sha, r, replayed, &j.rule, e);
	for (size_t i = 0; i < r->nrejects; i++)
		r->rejects[i].page = (size_t)page;
out:
	if (rc != 0)
		ingest_count(&svc->metrics, upload_source(j.u.kind), rc, j.rule, r);
	free(spans);
	manifest_free(m);
	upload_job_release(&j);
	return rc;
}

int
service_upload_commit(struct service *svc, const struct principal *p, const char *ref,
    struct manifest_report *r, struct devid_error *e)
{
	struct upload_job j = {.svc = svc, .p = p};
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = job_load(&j, ref, e)) == 0)
		rc = upload_job_commit(&j, r, e);
	if (rc == 0 || j.u.id != 0)
		ingest_count(&svc->metrics, upload_source(j.u.kind), rc, j.rule, r);
	upload_job_release(&j);
	return rc;
}

int
service_upload_abort(
    struct service *svc, const struct principal *p, const char *ref, struct devid_error *e)
{
	struct upload_rec u;
	struct db *db = store_acquire(svc->store);
	int rc;

	rc = store_upload_get(db, p->tenant.id, ref, false, &u, e);
	store_release(svc->store, db);
	if (rc != 0 || (rc = upload_role(p, u.kind, e)) != 0)
		return rc;
	return upload_drop(svc, u.id, u.batch_id, e);
}

json_t *
service_upload_json(const struct upload_rec *u, const struct upload_page *pages, size_t npages)
{
	int64_t last = upload_last_page(u);
	json_t *j, *list;

	j = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:I, s:I, s:o, s:o, s:o}", "id", u->ref,
	    "kind", upload_kind_name(u->kind), "batch", u->batch, "pageSize",
	    (json_int_t)u->page_size, "count",
	    u->kind == UPLOAD_PUBLISH ? json_integer(u->expected) : json_null(), "lastPage",
	    last > 0 ? json_integer(last) : json_null(), "pagesReceived", (json_int_t)u->pages,
	    "entriesReceived", (json_int_t)u->entries, "descriptorSha256",
	    u->descriptor_sha256[0] ? json_string(u->descriptor_sha256) : json_null(), "createdAt",
	    json_time(u->created_at), "expiresAt", json_time(u->expires_at));
	if (j == NULL || pages == NULL)
		return j;
	if ((list = json_array()) == NULL || json_object_set_new(j, "pages", list) != 0) {
		json_decref(j);
		return NULL;
	}
	for (size_t i = 0; i < npages; i++)
		if (json_array_append_new(list,
			json_pack("{s:I, s:I, s:s}", "page", (json_int_t)pages[i].page, "entries",
			    (json_int_t)pages[i].entries, "sha256", pages[i].sha256)) != 0) {
			json_decref(j);
			return NULL;
		}
	return j;
}

int
service_upload_get(struct service *svc, const struct principal *p, const char *ref, json_t **out,
    struct devid_error *e)
{
	struct upload_page *pages = NULL;
	struct upload_rec u;
	struct db *db = store_acquire(svc->store);
	size_t n = 0;
	int rc;

	*out = NULL;
	if ((rc = store_upload_get(db, p->tenant.id, ref, false, &u, e)) != 0 ||
	    (rc = upload_role(p, u.kind, e)) != 0)
		goto out;
	if (u.expires_at <= time(NULL)) {
		rc = devid_error_set(e, DEVID_ENOTFOUND, "upload %s expired", ref);
		goto out;
	}
	if ((rc = store_upload_pages(db, u.id, &pages, &n, e)) != 0)
		goto out;
	if ((*out = service_upload_json(&u, pages, n)) == NULL)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
out:
	store_release(svc->store, db);
	free(pages);
	return rc;
}

int
service_upload_list(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e)
{
	struct upload_rec *u = NULL;
	struct db *db = store_acquire(svc->store);
	int64_t now = time(NULL);
	json_t *list = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (p->role != ROLE_VENDOR && (p->tenant.kind != TENANT_OEM || p->role != ROLE_ADMIN)) {
		rc = devid_error_set(
		    e, DEVID_EAUTH, "uploads are a vendor's publishes and an OEM admin's imports");
		goto out;
	}
	if ((rc = store_upload_list(db, p->tenant.id, &u, &n, e)) != 0)
		goto out;
	rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	if ((list = json_array()) == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (u[i].expires_at > now &&
		    json_array_append_new(list, service_upload_json(&u[i], NULL, 0)) != 0)
			goto out;
	if ((*out = json_pack("{s:O}", "uploads", list)) != NULL)
		rc = 0;
out:
	store_release(svc->store, db);
	json_decref(list);
	free(u);
	return rc;
}

int
service_upload_purge(struct service *svc, int64_t now, size_t *n, struct devid_error *e)
{
	int64_t ids[PURGE_PASS];
	size_t got;
	struct db *db;
	int rc;

	if (n != NULL)
		*n = 0;
	/* expired uploads are dropped first: their batches are then orphans like any other */
	do {
		db = store_acquire(svc->store);
		rc = store_upload_expired(db, now, ids, PURGE_PASS, &got, e);
		for (size_t i = 0; rc == 0 && i < got; i++) {
			if ((rc = db_begin(db, e)) != 0)
				break;
			if ((rc = store_upload_drop(db, ids[i], e)) != 0)
				db_rollback(db);
			else
				rc = db_commit(db, e);
		}
		store_release(svc->store, db);
		if (rc == 0 && n != NULL)
			*n += got;
	} while (rc == 0 && got == PURGE_PASS);
	while (rc == 0) {
		db = store_acquire(svc->store);
		rc = store_batch_orphans(db, ids, PURGE_PASS, &got, e);
		store_release(svc->store, db);
		for (size_t i = 0; rc == 0 && i < got; i++)
			rc = orphan_purge(svc, ids[i], e);
		if (got < PURGE_PASS)
			break;
	}
	return rc;
}
