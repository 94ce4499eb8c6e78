/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Uploads (a batch sent in pages: service.h, docs/api.md "Uploads") on SQLite and on
 * PostgreSQL:
 *   - a publish in three pages sent out of order: nothing of it is visible (no batch, no
 *     claim) until the commit, which is refused while a page is missing, naming it; then the
 *     batch is there whole, with its audit record, and the upload's rows are gone;
 *   - a page sent again with the same bytes changes nothing; other bytes for it: 409; a page
 *     beyond the last, or of the wrong size: 400, storing nothing;
 *   - a forged entry on page 2 is refused naming its place in the whole manifest and the
 *     page; a chip twice across pages, and a chip of another batch, likewise; the upload
 *     stays as it was and takes the right page afterwards;
 *   - another tenant's upload is not found, whatever it asks;
 *   - abort, expiry (the purge) and an abort that died half-way (an orphan batch) leave no
 *     row behind: batches, devices, uploads, pages counted before and after;
 *   - an import in pages under an OEM's own trust, bound to the OEM at its commit;
 *   - a publish of 2,500 chips in one body, taken in pages: entries refused on two pages
 *     are both reported and nothing is stored; the genuine body is stored whole.
 * Usage: test_upload sqlite|postgres.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/x509.h"
#include "service/service.h"
#include "factory/factory.h"
#include "reelkit.h"
#include "test.h"
#include "storekit.h"
#include "lib/banned.h"

static char tmp[PATH_MAX];

/* Rows of every table an upload writes, as one text: what must be as before. */
static char *
rows(struct store *s)
{
	static const char *const q[] = {"SELECT COUNT(*) FROM batches",
	    "SELECT COUNT(*) FROM devices", "SELECT COUNT(*) FROM uploads",
	    "SELECT COUNT(*) FROM upload_pages", "SELECT COUNT(*) FROM audit"};
	char buf[256];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		n += (size_t)snprintf(
		    buf + n, sizeof(buf) - n, "%lld ", (long long)storekit_count(s, q[i]));
	return strdup(buf);
}

/* Entries [from, to) of a manifest as a page body (free()). */
static char *
page_of(const json_t *man, size_t from, size_t to)
{
	json_t *a = json_array();
	char *text;

	for (size_t i = from; i < to && i < json_array_size(man); i++)
		json_array_append(a, json_array_get(man, i));
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return text;
}

static int
put(struct service *svc, const struct principal *p, const char *ref, int64_t page, const char *body,
    struct manifest_report *r, bool *replayed, struct devid_error *e)
{
	manifest_report_release(r);
	return service_upload_page(
	    svc, p, ref, page, (const uint8_t *)body, strlen(body), r, replayed, e);
}

static int
open_publish(struct service *svc, const struct principal *p, const char *reel, int64_t size,
    struct upload_rec *u, struct devid_error *e)
{
	char *d = reelkit_read_text(reelkit_path(reel, "batch.json"));
	struct upload_request req = {.kind = UPLOAD_PUBLISH,
	    .descriptor = (const uint8_t *)d,
	    .descriptor_len = strlen(d),
	    .page_size = size};
	struct manifest_report r;
	int rc = service_upload_open(svc, p, &req, u, &r, e);

	manifest_report_release(&r);
	free(d);
	return rc;
}

static int
claim(struct service *svc, const struct principal *p, const char *reel, struct devid_error *e)
{
	char *code = reelkit_read_text(reelkit_path(reel, "claim.txt"));
	struct batch_rec b;
	bool changed;
	int rc;

	code[strcspn(code, "\n")] = '\0';
	rc =
	    service_claim(svc, p, NULL, (const uint8_t *)code, strlen(code), &b, &changed, NULL, e);
	free(code);
	return rc;
}

static struct principal
principal(struct store *s, const char *tenant, enum role role)
{
	struct principal p;
	struct db *db = store_acquire(s);

	memset(&p, 0, sizeof(p));
	store_tenant_get(db, tenant, &p.tenant, NULL);
	store_release(s, db);
	p.role = role;
	snprintf(p.actor, sizeof(p.actor), "token:1:test");
	snprintf(p.token_id, sizeof(p.token_id), "%s", tenant);
	return p;
}

/* A publish of B1 (5 chips) in pages of 2, out of order, with every refusal on the way. */
static void
publish_in_pages(struct service *svc, struct store *s, const struct principal *vendor,
    const struct principal *other, const struct principal *oem, EVP_PKEY *signer_key)
{
	json_t *man = reelkit_load_json(reelkit_path("B1", "manifest.json")), *bad, *p;
	struct manifest_report r;
	struct upload_rec u, u2;
	struct devid_error e;
	struct batch_rec b;
	struct db *db;
	char *p1 = page_of(man, 0, 2), *p2 = page_of(man, 2, 4), *p3 = page_of(man, 4, 5);
	char *text, *before;
	json_t *j = NULL;
	bool replayed;

	memset(&r, 0, sizeof(r));
	CHECK(open_publish(svc, oem, "B1", 2, &u, &e) == DEVID_EAUTH, "an OEM opens no publish");
	CHECK(open_publish(svc, vendor, "B1", 0, &u, &e) == DEVID_EINVAL &&
		open_publish(svc, vendor, "B1", MAX_UPLOAD_PAGE_ENTRIES + 1, &u, &e) ==
		    DEVID_EINVAL,
	    "page sizes 0 and over the limit refused: %s", e.msg);
	CHECK(open_publish(svc, vendor, "B1", 2, &u, &e) == 0, "open: %s", e.msg);
	CHECK(strlen(u.ref) == UPLOAD_REF_LEN && u.expected == 5 && u.page_size == 2,
	    "upload %s of 5 entries in pages of 2", u.ref);
	CHECK(open_publish(svc, vendor, "B1", 2, &u2, &e) == DEVID_ECONFLICT &&
		strstr(e.msg, u.ref) != NULL,
	    "a second upload of B1 names the open one: %s", e.msg);

	/* the last page first, then the first */
	CHECK(put(svc, vendor, u.ref, 3, p3, &r, &replayed, &e) == 0 && !replayed, "page 3: %s",
	    e.msg);
	CHECK(put(svc, vendor, u.ref, 1, p1, &r, &replayed, &e) == 0 && !replayed && r.total == 2,
	    "page 1: %s", e.msg);
	CHECK(put(svc, vendor, u.ref, 1, p1, &r, &replayed, &e) == 0 && replayed,
	    "page 1 again: replayed");
	CHECK(put(svc, vendor, u.ref, 1, p2, &r, &replayed, &e) == DEVID_ECONFLICT &&
		strstr(e.msg, "other content") != NULL,
	    "page 1 with other bytes: 409: %s", e.msg);
	CHECK(put(svc, vendor, u.ref, 4, p3, &r, &replayed, &e) == DEVID_EINVAL &&
		strstr(e.msg, "1 to 3") != NULL,
	    "page 4 of 3: %s", e.msg);
	CHECK(put(svc, vendor, u.ref, 2, p3, &r, &replayed, &e) == DEVID_EINVAL &&
		strstr(e.msg, "must hold 2") != NULL,
	    "page 2 with one entry: %s", e.msg);
	/* counted before parsing: a page of 200,000 empty objects is refused by its count */
	{
		size_t n = 200000;
		char *many = malloc(3 * n + 2);

		many[0] = '[';
		for (size_t i = 0; i < n; i++)
			memcpy(many + 1 + 3 * i, i + 1 < n ? "{}," : "{}]", 3);
		many[3 * n + 1] = '\0';
		CHECK(put(svc, vendor, u.ref, 2, many, &r, &replayed, &e) == DEVID_EINVAL &&
			strstr(e.msg, "holds 200000 entries; it must hold 2") != NULL &&
			r.nrejects == 0,
		    "page 2 of 200,000 elements: refused by count, none parsed: %s", e.msg);
		free(many);
	}
	/* an element longer than any entry is refused unread, by its length */
	{
		size_t n = MAX_STREAM_ELEMENT + 10;
		char *big = malloc(n + 32);

		memcpy(big, "[{\"x\":\"", 7);
		memset(big + 7, 'a', n);
		memcpy(big + 7 + n, "\"},{}]", 7);
		CHECK(put(svc, vendor, u.ref, 2, big, &r, &replayed, &e) != 0 && r.nrejects >= 1 &&
			strstr(r.rejects[0].message, "more than any entry") != NULL,
		    "page 2 with a 256 KiB element: its entry refused by length: %s",
		    r.nrejects ? r.rejects[0].message : e.msg);
		free(big);
	}

	/* invisible: no batch to read, no claim that binds */
	db = store_acquire(s);
	CHECK(store_batch_get(db, "ACME", "B1", &b, &e) == DEVID_ENOTFOUND, "B1 not visible");
	store_release(s, db);
	CHECK(claim(svc, oem, "B1", &e) == DEVID_ENOTFOUND, "B1 cannot be claimed yet: %s", e.msg);
	CHECK(storekit_count(s,
		  "SELECT COUNT(*) FROM devices d JOIN batches b ON b.id = d.batch_id"
		  " WHERE b.state = 'uploading'") == 3,
	    "the devices of pages 1 and 3 are stored, under the reserved batch");

	/* commit with page 2 missing */
	manifest_report_release(&r);
	CHECK(service_upload_commit(svc, vendor, u.ref, &r, &e) == DEVID_EINVAL &&
		strstr(e.msg, "page 2 is missing (of 3)") != NULL,
	    "commit without page 2: %s", e.msg);

	/* another tenant: not found, whatever it asks */
	CHECK(put(svc, other, u.ref, 2, p2, &r, &replayed, &e) == DEVID_ENOTFOUND,
	    "another vendor's page: %s", e.msg);
	CHECK(service_upload_commit(svc, other, u.ref, &r, &e) == DEVID_ENOTFOUND &&
		service_upload_abort(svc, other, u.ref, &e) == DEVID_ENOTFOUND &&
		service_upload_get(svc, other, u.ref, &j, &e) == DEVID_ENOTFOUND,
	    "another vendor's commit, abort, get: not found");

	/* page 2 with a forged entry: refused by its place in the manifest and its page */
	bad = json_deep_copy(man);
	{
		char *sig = reelkit_decode(json_array_get(bad, 3), "signature"), *b64;

		sig[5] ^= 1;
		b64 = b64url_encode((const uint8_t *)sig, 64);
		json_object_set_new(json_array_get(bad, 3), "signature", json_string(b64));
		free(b64);
		free(sig);
	}
	before = rows(s);
	text = page_of(bad, 2, 4);
	CHECK(put(svc, vendor, u.ref, 2, text, &r, &replayed, &e) == DEVID_EINVAL &&
		r.nrejects == 1 && r.rejects[0].index == 3 && r.rejects[0].page == 2 &&
		strstr(r.rejects[0].message, "entry 3: ") != NULL &&
		strstr(e.msg, "page 2 rejected") != NULL,
	    "forged entry 3 on page 2: %s / %s", e.msg, r.nrejects ? r.rejects[0].message : "");
	free(text);
	/* page 2 with entry 0 again: the chip twice in the batch */
	json_array_set(bad, 3, json_array_get(man, 0));
	text = page_of(bad, 2, 4);
	CHECK(put(svc, vendor, u.ref, 2, text, &r, &replayed, &e) == DEVID_EINVAL &&
		r.nrejects == 1 && r.rejects[0].index == 3 &&
		strstr(r.rejects[0].message, "appears more than once") != NULL,
	    "a chip of page 1 again on page 2: %s", r.nrejects ? r.rejects[0].message : e.msg);
	free(text);
	/* page 2 with a chip of B0 (stored already), re-signed into B1 */
	{
		json_t *b0 = reelkit_load_json(reelkit_path("B0", "manifest.json"));
		json_t *entry = json_deep_copy(json_array_get(b0, 0));

		p = reelkit_payload(entry);
		json_object_set_new(p, "groupId", json_string("B1"));
		reelkit_resign(entry, p, signer_key);
		json_array_set_new(bad, 3, entry);
		json_decref(b0);
	}
	text = page_of(bad, 2, 4);
	CHECK(put(svc, vendor, u.ref, 2, text, &r, &replayed, &e) == DEVID_ECONFLICT &&
		r.nrejects == 1 && r.rejects[0].index == 3 &&
		strstr(r.rejects[0].message, "already stored in batch ACME/B0") != NULL,
	    "a chip of B0 on page 2: %s", r.nrejects ? r.rejects[0].message : e.msg);
	free(text);
	json_decref(bad);
	text = rows(s);
	CHECK(strcmp(before, text) == 0, "refused pages stored nothing: %s / %s", before, text);
	free(text);
	free(before);

	/* the upload as a resuming client sees it */
	CHECK(service_upload_get(svc, vendor, u.ref, &j, &e) == 0 &&
		json_integer_value(json_object_get(j, "pagesReceived")) == 2 &&
		json_array_size(json_object_get(j, "pages")) == 2 &&
		json_integer_value(json_object_get(j, "lastPage")) == 3,
	    "GET: 2 of 3 pages");
	json_decref(j);

	CHECK(put(svc, vendor, u.ref, 2, p2, &r, &replayed, &e) == 0, "page 2: %s", e.msg);
	manifest_report_release(&r);
	CHECK(service_upload_commit(svc, vendor, u.ref, &r, &e) == 0 && r.accepted == 5,
	    "commit: %s", e.msg);
	db = store_acquire(s);
	CHECK(store_batch_get(db, "ACME", "B1", &b, &e) == 0 && b.count == 5 &&
		strlen(b.claim_sha256) == 64 && store_batch_counts(db, &b, &e) == 0 &&
		b.active == 5,
	    "B1 visible with 5 devices and its claim code");
	store_release(s, db);
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM uploads") == 0 &&
		storekit_count(s, "SELECT COUNT(*) FROM upload_pages") == 0,
	    "the upload's rows are gone");
	CHECK(storekit_count(s,
		  "SELECT COUNT(*) FROM audit WHERE action = 'batch.publish' AND object = "
		  "'ACME/B1'") == 1,
	    "one audit record");
	CHECK(claim(svc, oem, "B1", &e) == 0, "B1 claimed: %s", e.msg);
	CHECK(put(svc, vendor, u.ref, 1, p1, &r, &replayed, &e) == DEVID_ENOTFOUND,
	    "a committed upload takes no page");
	manifest_report_release(&r);
	json_decref(man);
	free(p1);
	free(p2);
	free(p3);
}

/* service_publish of one body: the body's text, the descriptor and manifest as they are. */
static int
publish_body(struct service *svc, const struct principal *p, const char *reel, const json_t *man,
    struct manifest_report *r, struct devid_error *e)
{
	char *d = reelkit_read_text(reelkit_path(reel, "batch.json"));
	char *m = json_dumps(man, JSON_COMPACT), *body;
	size_t n = strlen(d) + strlen(m) + 64;
	int rc;

	body = malloc(n);
	snprintf(body, n, "{\"descriptor\":%s,\"manifest\":%s}", d, m);
	manifest_report_release(r);
	rc = service_publish(svc, p, (const uint8_t *)body, strlen(body), r, e);
	free(body);
	free(m);
	free(d);
	return rc;
}

/*
 * A publish of 2,500 chips in one body, which the server takes in pages of 1,000, checked on
 * one thread while the page before is stored on another: forged entries on its second and
 * third pages are both reported and nothing is stored; the genuine body is stored whole.
 */
static void
one_body_in_pages(struct service *svc, struct store *s, const struct principal *vendor)
{
	json_t *man = reelkit_load_json(reelkit_path("B9", "manifest.json")), *bad;
	char *before = rows(s), *after;
	struct manifest_report r;
	struct devid_error e;

	memset(&r, 0, sizeof(r));
	bad = json_deep_copy(man);
	for (size_t i = 1500; i <= 2400; i += 900) {
		char *sig = reelkit_decode(json_array_get(bad, i), "signature"), *b64;

		sig[9] ^= 1;
		b64 = b64url_encode((const uint8_t *)sig, 64);
		json_object_set_new(json_array_get(bad, i), "signature", json_string(b64));
		free(b64);
		free(sig);
	}
	CHECK(publish_body(svc, vendor, "B9", bad, &r, &e) == DEVID_EINVAL && r.total == 2500 &&
		r.rejected == 2 && r.nrejects == 2 && r.rejects[0].index == 1500 &&
		r.rejects[1].index == 2400 && strstr(e.msg, "2 of 2500 entries failed") != NULL,
	    "entries 1500 and 2400 of one body refused: %s (%zu rejected)", e.msg, r.rejected);
	after = rows(s);
	CHECK(strcmp(before, after) == 0, "nothing of it stored: %s / %s", before, after);
	free(after);
	CHECK(publish_body(svc, vendor, "B9", man, &r, &e) == 0 && r.accepted == 2500,
	    "the genuine body, 3 pages: %s", e.msg);
	CHECK(storekit_count(s,
		  "SELECT COUNT(*) FROM devices d JOIN batches b ON b.id = d.batch_id"
		  " WHERE b.name = 'B9' AND b.state = 'complete'") == 2500,
	    "2,500 devices stored");
	manifest_report_release(&r);
	json_decref(bad);
	json_decref(man);
	free(before);
}

/* Abort, expiry and an interrupted abort leave no row behind. */
static void
leave_nothing(struct service *svc, struct store *s, const struct principal *vendor)
{
	json_t *man = reelkit_load_json(reelkit_path("B2", "manifest.json"));
	char *p1 = page_of(man, 0, 2), *before = rows(s), *after;
	struct manifest_report r;
	struct upload_rec u;
	struct devid_error e;
	bool replayed;
	size_t n = 0;
	struct db *db;

	memset(&r, 0, sizeof(r));
	CHECK(open_publish(svc, vendor, "B2", 2, &u, &e) == 0 &&
		put(svc, vendor, u.ref, 1, p1, &r, &replayed, &e) == 0,
	    "B2 opened, page 1: %s", e.msg);
	CHECK(service_upload_abort(svc, vendor, u.ref, &e) == 0, "abort: %s", e.msg);
	after = rows(s);
	CHECK(strcmp(before, after) == 0, "abort left nothing: %s / %s", before, after);
	free(after);

	/* expiry: the purge takes an upload past its time, and only that one */
	CHECK(open_publish(svc, vendor, "B2", 2, &u, &e) == 0 &&
		put(svc, vendor, u.ref, 1, p1, &r, &replayed, &e) == 0,
	    "B2 again: %s", e.msg);
	CHECK(service_upload_purge(svc, time(NULL), &n, &e) == 0 && n == 0,
	    "a live upload is not purged");
	CHECK(put(svc, vendor, u.ref, 1, p1, &r, &replayed, &e) == 0 && replayed, "still there: %s",
	    e.msg);
	CHECK(
	    service_upload_purge(svc, u.expires_at + UPLOAD_DEFAULT_TTL + 1, &n, &e) == 0 && n == 1,
	    "past its time it is purged: %s", e.msg);
	after = rows(s);
	CHECK(strcmp(before, after) == 0, "expiry left nothing: %s / %s", before, after);
	free(after);

	/* an abort that died after dropping the upload: its batch is an orphan, then purged */
	CHECK(open_publish(svc, vendor, "B2", 2, &u, &e) == 0 &&
		put(svc, vendor, u.ref, 1, p1, &r, &replayed, &e) == 0,
	    "B2 a third time: %s", e.msg);
	db = store_acquire(s);
	CHECK(store_upload_drop(db, u.id, &e) == 0, "drop only the upload: %s", e.msg);
	store_release(s, db);
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM batches WHERE state = 'uploading'") == 1 &&
		storekit_count(s, "SELECT COUNT(*) FROM uploads") == 0,
	    "an orphan batch");
	CHECK(service_upload_purge(svc, time(NULL), NULL, &e) == 0, "purge: %s", e.msg);
	after = rows(s);
	CHECK(strcmp(before, after) == 0, "the orphan is gone: %s / %s", before, after);
	free(after);
	manifest_report_release(&r);
	json_decref(man);
	free(p1);
	free(before);
}

/* An OEM imports an outside vendor's manifest in pages under its own trust. */
static void
import_in_pages(struct service *svc, struct store *s, const struct principal *oem,
    const struct principal *operator)
{
	json_t *man = reelkit_load_json(reelkit_path("W1", "manifest.json"));
	char *p1 = page_of(man, 0, 2), *p2 = page_of(man, 2, 3), *p3 = page_of(man, 0, 1);
	struct upload_request req = {.kind = UPLOAD_IMPORT, .batch = "W1", .page_size = 2};
	struct manifest_report r;
	struct upload_rec u;
	struct devid_error e;
	struct batch_rec b;
	struct db *db;
	bool replayed;

	memset(&r, 0, sizeof(r));
	CHECK(service_upload_open(svc, operator, & req, &u, &r, &e) == DEVID_EAUTH,
	    "an operator imports nothing");
	CHECK(service_upload_open(svc, oem, &req, &u, &r, &e) == 0, "open: %s", e.msg);
	CHECK(put(svc, oem, u.ref, 2, p2, &r, &replayed, &e) == 0, "page 2: %s", e.msg);
	CHECK(put(svc, oem, u.ref, 1, p3, &r, &replayed, &e) == 0, "page 1, short: %s", e.msg);
	manifest_report_release(&r);
	CHECK(service_upload_commit(svc, oem, u.ref, &r, &e) == DEVID_EINVAL &&
		strstr(e.msg, "only the last page") != NULL,
	    "a short page before the last refused at commit: %s", e.msg);
	CHECK(service_upload_abort(svc, oem, u.ref, &e) == 0, "abort: %s", e.msg);
	CHECK(service_upload_open(svc, oem, &req, &u, &r, &e) == 0 &&
		put(svc, oem, u.ref, 1, p1, &r, &replayed, &e) == 0 &&
		put(svc, oem, u.ref, 2, p2, &r, &replayed, &e) == 0,
	    "again, whole: %s", e.msg);
	manifest_report_release(&r);
	CHECK(service_upload_commit(svc, oem, u.ref, &r, &e) == 0 && r.accepted == 3, "commit: %s",
	    e.msg);
	db = store_acquire(s);
	CHECK(store_batch_get(db, "OEM1", "W1", &b, &e) == 0 && b.owner_id == oem->tenant.id &&
		b.count == 3 && b.source == BATCH_IMPORT,
	    "OEM1/W1 imported and owned");
	store_release(s, db);
	manifest_report_release(&r);
	json_decref(man);
	free(p1);
	free(p2);
	free(p3);
}

int
main(int argc, char **argv)
{
	char url[PATH_MAX + 32], *root, *signer, *wroot, *wsigner;
	struct service svc = {.verify_threads = 2};
	struct principal vendor, other, oem, operator;
	struct manifest_report r;
	struct devid_error e;
	struct store *s = NULL;
	struct db *db;
	EVP_PKEY *signer_key;
	json_t *j = NULL;
	int64_t id;
	bool pg = argc > 1 && strcmp(argv[1], "postgres") == 0;

	devid_error_clear(&e);
	if (pg && getenv("DEVID_TEST_PG_URL") == NULL)
		test_skip("DEVID_TEST_PG_URL not set (run under scripts/with-postgres)");
	test_tmpdir(tmp, sizeof(tmp), "upload");
	reelkit_workdir(tmp);
	if (pg)
		snprintf(url, sizeof(url), "%s", getenv("DEVID_TEST_PG_URL"));
	else
		snprintf(url, sizeof(url), "sqlite:%s/devid.db", tmp);
	if (vendor_init(reelkit_path("v", ""), "ACME", &e) != 0 ||
	    vendor_init(reelkit_path("w", ""), "OUTSIDE", &e) != 0) {
		printf("init: %s\n", e.msg);
		return 1;
	}
	reelkit_mint("v", "B0", 2);
	reelkit_mint("v", "B1", 5);
	reelkit_mint("v", "B2", 3);
	reelkit_mint("w", "W1", 3);
	reelkit_mint("v", "B9", 2500);
	signer_key = pkey_load_pem_file(reelkit_path("v", "signer.key"), &e);
	CHECK(store_open(url, 3, &s, &e) == 0, "store: %s", e.msg);
	if (s == NULL)
		return test_done();
	svc.store = s;
	db = store_acquire(s);
	CHECK(store_tenant_add(db, "ACME", TENANT_VENDOR, &id, &e) == 0 &&
		store_tenant_add(db, "OTHERV", TENANT_VENDOR, &id, &e) == 0 &&
		store_tenant_add(db, "OEM1", TENANT_OEM, &id, &e) == 0,
	    "tenants: %s", e.msg);
	store_release(s, db);
	root = reelkit_read_text(reelkit_path("v", "root.pem"));
	signer = reelkit_read_text(reelkit_path("v", "signer.pem"));
	wroot = reelkit_read_text(reelkit_path("w", "root.pem"));
	wsigner = reelkit_read_text(reelkit_path("w", "signer.pem"));
	CHECK(service_trust_add_admin(&svc, "ACME", NULL, root, signer, NULL, &e) == 0 &&
		service_trust_add_admin(&svc, NULL, "OEM1", wroot, wsigner, NULL, &e) == 0,
	    "trust: %s", e.msg);
	vendor = principal(s, "ACME", ROLE_VENDOR);
	other = principal(s, "OTHERV", ROLE_VENDOR);
	oem = principal(s, "OEM1", ROLE_ADMIN);
	operator= principal(s, "OEM1", ROLE_OPERATOR);
	{
		char *text = reelkit_read_text(reelkit_path("B0", "batch.json"));
		char *m0 = reelkit_read_text(reelkit_path("B0", "manifest.json")), *body;
		size_t n = strlen(text) + strlen(m0) + 64;

		body = malloc(n);
		snprintf(body, n, "{\"descriptor\":%s,\"manifest\":%s}", text, m0);
		CHECK(service_publish(&svc, &vendor, (const uint8_t *)body, strlen(body), &r, &e) ==
			0,
		    "B0 published in one body: %s", e.msg);
		manifest_report_release(&r);
		free(body);
		free(text);
		free(m0);
	}

	publish_in_pages(&svc, s, &vendor, &other, &oem, signer_key);
	leave_nothing(&svc, s, &vendor);
	one_body_in_pages(&svc, s, &vendor);
	import_in_pages(&svc, s, &oem, &operator);
	CHECK(service_upload_list(&svc, &vendor, &j, &e) == 0 &&
		json_array_size(json_object_get(j, "uploads")) == 0,
	    "no upload left open");
	json_decref(j);

	store_close(s);
	EVP_PKEY_free(signer_key);
	free(root);
	free(signer);
	free(wroot);
	free(wsigner);
	test_rmdir(tmp);
	return test_done();
}
