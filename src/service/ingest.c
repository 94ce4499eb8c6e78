/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/json.h"
#include "lib/submission.h"
#include "lib/workpool.h"
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

struct vendor_trust *
ingest_vendor_trust(struct db *db, int64_t vendor_id, struct devid_error *e)
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

/* "manifest signer ... was removed from trust on ...: its manifests are refused" */
static int
signer_removed(const struct trust_rec *tr, struct devid_error *e)
{
	char subject[512], when[32];
	struct tm tm;
	time_t t = (time_t)tr->removed_at;

	service_signer_subject(tr->signer_pem, subject, sizeof(subject));
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", (long long)tr->removed_at);
	return devid_error_set(e, DEVID_ECRYPTO,
	    "manifest signer \"%s\" (trust %lld, SHA-256 %s) was removed from trust on %s: "
	    "its manifests are refused",
	    subject, (long long)tr->id, tr->signer_sha256, when);
}

int
ingest_signer_trust(const struct trust_rec *tl, size_t n, const uint8_t x5t[32], bool required,
    const struct trust_rec **found, struct devid_error *e)
{
	char hex[65];

	*found = NULL;
	hex_encode(x5t, 32, hex);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(tl[i].signer_sha256, hex) != 0)
			continue;
		if (tl[i].removed_at == 0) {
			*found = &tl[i];
			return 0;
		}
		return signer_removed(&tl[i], e);
	}
	if (required)
		return devid_error_set(e, DEVID_ECRYPTO,
		    "manifest signer (SHA-256 %s) is not trusted for this tenant's imports: add "
		    "its root and signer first (POST /api/v1/trust)",
		    hex);
	return 0;
}

/* A vendor_trust of one trust record's root and signer. */
static int
record_trust(const struct trust_rec *tr, struct vendor_trust **vt, struct devid_error *e)
{
	STACK_OF(X509) *roots = NULL, *signers = NULL;
	int rc = DEVID_EINVAL;

	*vt = NULL;
	if ((roots = x509_load_pem_mem(tr->root_pem, strlen(tr->root_pem), "root", e)) == NULL ||
	    (signers = x509_load_pem_mem(tr->signer_pem, strlen(tr->signer_pem), "signer", e)) ==
		NULL)
		goto out;
	rc = (*vt = vendor_trust_new(roots, signers, e)) != NULL ? 0 : DEVID_ECRYPTO;
out:
	sk_X509_pop_free(roots, X509_free);
	sk_X509_pop_free(signers, X509_free);
	return rc;
}

int
ingest_record_trust(
    struct db *db, int64_t trust_id, struct vendor_trust **vt, struct devid_error *e)
{
	struct trust_rec *tr = NULL;
	int rc;

	*vt = NULL;
	if ((rc = store_trust_get(db, trust_id, &tr, e)) != 0)
		return rc == DEVID_ENOTFOUND
		    ? devid_error_set(e, DEVID_ECRYPTO, "the trust of this upload (%lld) is gone",
			  (long long)trust_id)
		    : rc;
	rc = tr->removed_at != 0 ? signer_removed(tr, e) : record_trust(tr, vt, e);
	store_trust_list_free(tr, 1);
	return rc;
}

static int
import_claimed(const char *vendor, struct devid_error *e)
{
	return devid_error_set(e, DEVID_EAUTH,
	    "the manifest's signer or root is devid vendor %s's: its chips are bound only by the "
	    "batch's claim code (or a transfer code), never by import",
	    vendor);
}

int
ingest_import_trust(struct db *db, const struct principal *p, const struct manifest *m,
    struct vendor_trust **vt, int64_t *trust_id, struct devid_error *e)
{
	const struct manifest_entry *first = NULL;
	const struct trust_rec *admitted = NULL;
	STACK_OF(X509) *roots = NULL;
	struct trust_rec *tl = NULL;
	char vendor[MAX_NAME_LEN + 1];
	size_t tn = 0;
	int rc;

	*vt = NULL;
	*trust_id = 0;
	for (size_t i = 0; i < m->n && first == NULL; i++)
		first = m->entries[i];
	if (first == NULL)
		return devid_error_set(e, DEVID_EINVAL, "no entry of the manifest could be read");
	if ((rc = service_vendor_claims(db, first->hdr.x5t_s256, NULL, vendor, e)) < 0)
		return rc;
	if (rc > 0)
		return import_claimed(vendor, e);
	if ((rc = store_trust_list(db, p->tenant.id, &tl, &tn, e)) != 0 ||
	    (rc = ingest_signer_trust(tl, tn, first->hdr.x5t_s256, true, &admitted, e)) != 0)
		goto out;
	if ((roots = x509_load_pem_mem(
		 admitted->root_pem, strlen(admitted->root_pem), "root", e)) == NULL) {
		rc = DEVID_EINVAL;
		goto out;
	}
	/* the vendor may have come to devid since this trust was added */
	if ((rc = service_vendor_claims(db, first->hdr.x5t_s256, roots, vendor, e)) < 0)
		goto out;
	if (rc > 0) {
		rc = import_claimed(vendor, e);
		goto out;
	}
	if ((rc = record_trust(admitted, vt, e)) == 0)
		*trust_id = admitted->id;
out:
	sk_X509_pop_free(roots, X509_free);
	store_trust_list_free(tl, tn);
	return rc;
}

void
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

/*
 * Words the failure of a body's pages as a publish or import always did: how many entries
 * failed, or how many chips are stored elsewhere, or the first failure as it was.
 */
static int
body_failure(const char *name, int rc, const struct manifest_report *r, size_t conflicts,
    struct devid_error *e)
{
	if (rc == DEVID_ECONFLICT && conflicts > 0)
		return devid_error_set(e, rc,
		    "%zu chip(s) of the batch are already stored in another batch", conflicts);
	if (rc == DEVID_EINVAL && (r->rejected > 0 || r->batch_error[0] != '\0'))
		return devid_error_set(e, rc, "%s rejected: %zu of %zu entries failed%s%s", name,
		    r->rejected, r->total, r->batch_error[0] ? "; " : "", r->batch_error);
	return rc;
}

/*
 * The pages of a body, checked on the caller's thread and stored on a thread of their own, so
 * that storing one page overlaps checking the next: a page at a time waits in the hand-over.
 */
struct body_storer {
	struct upload_job *j;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct manifest *m; /* the page handed over, or NULL */
	bool m_owned; /* its entries its own (not a view into a manifest parsed whole) */
	int64_t page;
	char sha[65];
	bool done; /* no page will come */
	/* what storing found: the first failure, the rule, the chips refused */
	int rc;
	enum ingest_rule rule;
	struct devid_error e;
	struct manifest_report r;
	size_t conflicts;
};

static void *
body_store_run(void *arg)
{
	struct body_storer *st = arg;
	struct manifest_report pr;
	struct devid_error pe;
	enum ingest_rule rule;
	struct manifest *m;
	char sha[65];
	int64_t page;
	bool owned, replayed;
	int rc;

	for (;;) {
		pthread_mutex_lock(&st->lock);
		while (st->m == NULL && !st->done)
			pthread_cond_wait(&st->cond, &st->lock);
		if ((m = st->m) == NULL) {
			pthread_mutex_unlock(&st->lock);
			break;
		}
		owned = st->m_owned;
		page = st->page;
		memcpy(sha, st->sha, sizeof(sha));
		st->m = NULL;
		pthread_cond_broadcast(&st->cond);
		rc = st->rc;
		pthread_mutex_unlock(&st->lock);
		if (rc == 0) {
			memset(&pr, 0, sizeof(pr));
			devid_error_clear(&pe);
			rule = INGEST_RULE_ERROR;
			rc = upload_job_store(st->j, m, page, sha, &pr, &replayed, &rule, &pe);
			pthread_mutex_lock(&st->lock);
			if (rc != 0 && st->rc == 0) {
				st->rc = rc;
				st->rule = rule;
				st->e = pe;
			}
			if (rc == DEVID_ECONFLICT)
				st->conflicts += pr.rejected;
			/* only what the database refused: the checks were counted already */
			pr.total = pr.accepted = 0;
			manifest_report_merge(&st->r, &pr);
			pthread_mutex_unlock(&st->lock);
			manifest_report_release(&pr);
		}
		if (owned)
			manifest_free(m);
		else
			free(m); /* a view: its entries are the whole manifest's */
	}
	return NULL;
}

/* Hands a checked page to the storer, waiting while the previous one is still waiting. */
static void
body_store_hand(
    struct body_storer *st, struct manifest *m, bool owned, int64_t page, const char *sha)
{
	pthread_mutex_lock(&st->lock);
	while (st->m != NULL)
		pthread_cond_wait(&st->cond, &st->lock);
	st->m = m;
	st->m_owned = owned;
	st->page = page;
	snprintf(st->sha, sizeof(st->sha), "%s", sha);
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

/* Whether storing has failed so far. */
static bool
body_store_failed(struct body_storer *st)
{
	bool failed;

	pthread_mutex_lock(&st->lock);
	failed = st->rc != 0;
	pthread_mutex_unlock(&st->lock);
	return failed;
}

/*
 * Sends the manifest text mp[0..mn) through j's upload as pages of UPLOAD_BODY_PAGE_ENTRIES,
 * each parsed and checked here and stored by a thread of its own while the next is checked,
 * so only a few pages are ever parsed at a time. After the first refusal nothing more is
 * stored and the rest is only checked, so that r reports every entry, as the check of a whole
 * manifest did. expected >= 0: the descriptor's count, checked first. Returns the first
 * failure (e worded as a publish's or an import's), 0 when every page is stored.
 */
static int
body_pages(struct upload_job *j, const char *name, const uint8_t *mp, size_t mn, long long expected,
    struct manifest_report *r, struct devid_error *e)
{
	struct body_storer st = {.j = j};
	struct manifest_span *spans = NULL;
	struct manifest *whole = NULL, *pm = NULL, *view;
	struct manifest_report pr;
	struct devid_error pe;
	size_t count = 0, per = UPLOAD_BODY_PAGE_ENTRIES;
	pthread_t storer;
	bool started = false, store = true;
	char sha[65];
	int rc = 0, prc;

	memset(&pr, 0, sizeof(pr));
	if (!manifest_split(mp, mn, &spans, &count)) {
		/* not the plain array of elements: parsed whole, whose error (if any) decides */
		if ((rc = manifest_parse_mt(mp, mn, j->svc->verify_threads, &whole, r, e)) != 0) {
			j->rule = rc == DEVID_ENOMEM ? INGEST_RULE_ERROR : INGEST_RULE_FORMAT;
			return rc;
		}
		count = whole->n;
	}
	if (expected >= 0 && count != (size_t)expected) {
		snprintf(r->batch_error, sizeof(r->batch_error),
		    "batch descriptor: count is %lld but the manifest has %zu entries", expected,
		    count);
		j->rule = INGEST_RULE_BATCH;
		rc = DEVID_EINVAL;
		store = false;
	}
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.cond, NULL);
	if (store && pthread_create(&storer, NULL, body_store_run, &st) == 0)
		started = true;
	else if (store) {
		rc = devid_error_set(e, DEVID_ENOMEM, "cannot start a thread to store pages");
		j->rule = INGEST_RULE_ERROR;
		store = false;
	}
	for (size_t at = 0; at < count; at += per) {
		size_t n = count - at < per ? count - at : per;

		memset(&pr, 0, sizeof(pr));
		devid_error_clear(&pe);
		if (whole != NULL) {
			/* a view into the manifest parsed whole, which outlives the storer */
			if ((view = calloc(1, sizeof(*view))) == NULL) {
				rc = rc != 0 ? rc
					     : devid_error_set(e, DEVID_ENOMEM, "out of memory");
				j->rule = INGEST_RULE_ERROR;
				break;
			}
			*view =
			    (struct manifest){.entries = whole->entries + at, .n = n, .base = at};
			pm = view;
			sha[0] = '\0';
		} else {
			prc = manifest_parse_spans(
			    mp, spans + at, n, at, j->svc->verify_threads, &pm, &pr, &pe);
			if (prc != 0) {
				/* an element that is not JSON: the whole text's error words it */
				if (prc > 0 && json_parse(mp, mn, "manifest", &pe) == NULL)
					prc = DEVID_EINVAL;
				j->rule =
				    prc == DEVID_ENOMEM ? INGEST_RULE_ERROR : INGEST_RULE_FORMAT;
				if (rc == 0)
					*e = pe;
				rc = prc != 1 ? prc : DEVID_EINVAL;
				break;
			}
			/* a page of a body is never sent again: nothing to recognise it by */
			sha[0] = '\0';
		}
		prc = upload_job_check(j, pm, (int64_t)(at / per + 1), &pr, &pe);
		manifest_report_merge(r, &pr);
		manifest_report_release(&pr);
		if (prc != 0 && rc == 0) {
			rc = prc;
			*e = pe;
		}
		store = store && prc == 0 && !body_store_failed(&st);
		if (store) {
			body_store_hand(&st, pm, whole == NULL, (int64_t)(at / per + 1), sha);
		} else {
			if (whole == NULL)
				manifest_free(pm);
			else
				free(pm);
		}
		pm = NULL;
		/* entries that fail are reported on; anything else ends the body */
		if (prc != 0 && prc != DEVID_EINVAL && prc != DEVID_ECONFLICT)
			break;
	}
	if (started) {
		pthread_mutex_lock(&st.lock);
		st.done = true;
		pthread_cond_broadcast(&st.cond);
		pthread_mutex_unlock(&st.lock);
		pthread_join(storer, NULL);
	}
	if (st.rc != 0) {
		/* the database refused chips: as before, nothing of the batch counts as accepted */
		r->accepted = 0;
		manifest_report_merge(r, &st.r);
		if (rc == 0) {
			rc = st.rc;
			*e = st.e;
			j->rule = st.rule;
		}
	}
	manifest_report_sort(r);
	manifest_report_release(&st.r);
	pthread_mutex_destroy(&st.lock);
	pthread_cond_destroy(&st.cond);
	free(spans);
	manifest_free(whole);
	return rc != 0 ? body_failure(name, rc, r, st.conflicts, e) : 0;
}

int
service_publish(struct service *svc, const struct principal *p, const uint8_t *body, size_t len,
    struct manifest_report *r, struct devid_error *e)
{
	struct upload_job j = {.svc = svc, .p = p, .rule = INGEST_RULE_AUTH};
	struct upload_request req = {.kind = UPLOAD_PUBLISH, .page_size = UPLOAD_BODY_PAGE_ENTRIES};
	struct body_part dp, mp;
	char name[2 * MAX_NAME_LEN + 16];
	bool opened = false;
	int rc;

	memset(r, 0, sizeof(*r));
	if (p->role != ROLE_VENDOR) {
		rc = devid_error_set(e, DEVID_EAUTH, "only a vendor token can publish batches");
		goto out;
	}
	j.rule = INGEST_RULE_FORMAT;
	if ((rc = publish_body_split(body, len, &dp, &mp, e)) != 0)
		goto out;
	req.descriptor = body + dp.off;
	req.descriptor_len = dp.len;
	if ((rc = upload_job_open(&j, &req, r, e)) != 0)
		goto out;
	opened = true;
	snprintf(name, sizeof(name), "batch %s/%s", p->tenant.name, j.u.batch);
	if ((rc = body_pages(&j, name, body + mp.off, mp.len, j.u.expected, r, e)) != 0)
		goto out;
	rc = upload_job_commit(&j, r, e);
out:
	if (rc != 0 && opened)
		upload_job_abort(&j);
	ingest_count(&svc->metrics, INGEST_VENDOR, rc, j.rule, r);
	upload_job_release(&j);
	return rc;
}

int
service_import(struct service *svc, const struct principal *p, const char *batch,
    const uint8_t *body, size_t len, struct manifest_report *r, struct devid_error *e)
{
	struct upload_job j = {.svc = svc, .p = p, .rule = INGEST_RULE_AUTH};
	struct upload_request req = {
	    .kind = UPLOAD_IMPORT, .batch = batch, .page_size = UPLOAD_BODY_PAGE_ENTRIES};
	char name[MAX_NAME_LEN + 16];
	bool opened = false;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = upload_job_open(&j, &req, r, e)) != 0)
		goto out;
	opened = true;
	snprintf(name, sizeof(name), "import %s", batch);
	if ((rc = body_pages(&j, name, body, len, -1, r, e)) != 0)
		goto out;
	rc = upload_job_commit(&j, r, e);
out:
	if (rc != 0 && opened)
		upload_job_abort(&j);
	ingest_count(&svc->metrics, INGEST_IMPORT, rc, j.rule, r);
	upload_job_release(&j);
	return rc;
}
