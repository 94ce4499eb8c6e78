/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The domain on SQLite and on PostgreSQL. Ingest: a genuine batch is stored whole with an
 * audit record; a forged entry, another tenant, a repeated batch and a chip already stored in
 * another batch are refused and leave no trace. Claims: owner binds and repeats, another
 * tenant's claim answers exactly like a missing batch, transfer and release, rate limits, and
 * 20 concurrent claims through two stores (two servers) leave one owner. The audit chain
 * verifies and detects an edited record. Usage: test_ingest sqlite|postgres.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "lib/dynbuf.h"
#include "lib/x509.h"
#include "service/service.h"
#include "factory/factory.h"
#include "reelkit.h"
#include "test.h"
#include "storekit.h"
#include "lib/banned.h"

/* service_import of a manifest given as JSON (borrowed), its compact text as the body. */
static int
import_json(struct service *svc, const struct principal *p, const char *batch, const json_t *man,
    struct manifest_report *r, struct devid_error *e)
{
	char *text = json_dumps(man, JSON_COMPACT);
	int rc = service_import(svc, p, batch, (const uint8_t *)text, strlen(text), r, e);

	free(text);
	return rc;
}

static char tmp[PATH_MAX];

/* The publish body of a reel. */
static json_t *
body_of(const char *batch)
{
	return json_pack("{s:o, s:o}", "descriptor",
	    reelkit_load_json(reelkit_path(batch, "batch.json")), "manifest",
	    reelkit_load_json(reelkit_path(batch, "manifest.json")));
}

static char *
claim_text(const char *batch)
{
	char *t = reelkit_read_text(reelkit_path(batch, "claim.txt"));

	t[strcspn(t, "\n")] = '\0';
	return t;
}

static int
claim(struct service *svc, const struct principal *p, const char *code, bool *changed,
    struct devid_error *e)
{
	struct batch_rec b;

	return service_claim(
	    svc, p, "127.0.0.1", (const uint8_t *)code, strlen(code), &b, changed, NULL, e);
}

struct racer {
	struct service *svc;
	const struct principal *p;
	const char *code;
	bool changed;
	int rc;
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	struct devid_error e;

	r->rc = claim(r->svc, r->p, r->code, &r->changed, &e);
	return NULL;
}

static int
claim_from(struct service *svc, const struct principal *p, const char *addr, const char *code,
    int *retry_after, struct devid_error *e)
{
	struct batch_rec b;
	bool changed;

	return service_claim(
	    svc, p, addr, (const uint8_t *)code, strlen(code), &b, &changed, retry_after, e);
}

/* Every bucket and every audit record, as text: what a refused claim must leave alone. */
static char *
limit_state(struct store *s)
{
	struct db *db = store_acquire(s);
	struct db_rows *r = NULL;
	struct dynbuf out;
	char *text;

	dynbuf_init(&out, 1 << 20);
	if (db_query(db, "SELECT name, tat FROM rate_buckets ORDER BY name", NULL, 0, &r, NULL) ==
	    0)
		for (size_t i = 0; i < db_rows_count(r); i++)
			dynbuf_addf(&out, "%s=%lld;", db_rows_text(r, i, 0, NULL),
			    (long long)db_rows_int(r, i, 1));
	db_rows_free(r);
	if (db_query(db, "SELECT COUNT(*), MAX(id) FROM audit", NULL, 0, &r, NULL) == 0)
		dynbuf_addf(&out, "audit=%lld/%lld", (long long)db_rows_int(r, 0, 0),
		    (long long)db_rows_int(r, 0, 1));
	db_rows_free(r);
	store_release(s, db);
	text = strdup(dynbuf_str(&out));
	dynbuf_release(&out);
	return text;
}

/*
 * Claim rate limits kept in the database: per token and per address, shared by two stores
 * (two servers), a refused claim takes from no bucket and changes nothing, Retry-After is
 * when the bucket allows one more, and a bucket refills with time.
 */
static void
rate_limits(struct service *svc, const char *url, const struct principal *oem,
    const struct principal *oem2, const char *fake)
{
	struct service svc2 = {.verify_threads = 1};
	struct devid_error e;
	struct db *db;
	int64_t wait;
	char *before, *after;
	int retry = 0, ok;

	/* a burst of 3 and then one every 1000 s: no refill during the test */
	svc->claim_limit = (struct rate_limit){.interval_ms = 1000000, .burst = 3};
	CHECK(store_open(url, 2, &svc2.store, &e) == 0, "second store: %s", e.msg);
	svc2.claim_limit = svc->claim_limit;
	/* the token's burst, spread over both servers */
	for (int i = 0; i < 3; i++)
		CHECK(claim_from(i % 2 ? &svc2 : svc, oem2, "10.0.0.1", fake, &retry, &e) ==
			    DEVID_ENOTFOUND &&
			retry == 0,
		    "claim %d within the limit: %s", i, e.msg);
	before = limit_state(svc->store);
	CHECK(claim_from(&svc2, oem2, "10.0.0.9", fake, &retry, &e) == DEVID_ELIMIT &&
		strstr(e.msg, "token") != NULL && retry > 990 && retry <= 1000,
	    "the 4th, on the other server and address: the token is over (%d s): %s", retry, e.msg);
	CHECK(claim_from(svc, oem2, "10.0.0.1", fake, &retry, &e) == DEVID_ELIMIT,
	    "... and on the first server");
	after = limit_state(svc->store);
	CHECK(strcmp(before, after) == 0,
	    "refused claims changed no bucket and no audit record:\n%s\n%s", before, after);
	free(before);
	free(after);
	/* the address 10.0.0.1 has used its burst with oem2's token: oem's token is refused
	 * there, and that refusal takes nothing from oem's token bucket */
	CHECK(claim_from(&svc2, oem, "10.0.0.1", fake, &retry, &e) == DEVID_ELIMIT &&
		strstr(e.msg, "address") != NULL && retry > 0,
	    "another token from the same address: %s", e.msg);
	ok = 0;
	for (int i = 0; i < 4; i++)
		ok += claim_from(i % 2 ? &svc2 : svc, oem, "10.0.0.2", fake, &retry, &e) ==
		    DEVID_ENOTFOUND;
	CHECK(ok == 3, "oem's token still had its whole burst of 3 elsewhere (%d)", ok);
	/* no address (not over HTTP): only the token counts */
	CHECK(
	    claim_from(svc, oem, NULL, fake, &retry, &e) == DEVID_ELIMIT, "token without address");

	/* refill, with the clock in the caller's hands: a burst of 2, one more every second */
	db = store_acquire(svc->store);
	CHECK(store_rate_take(db, "test:refill", 5000, 1000, 2, &wait, &e) == 0 && wait == 0 &&
		store_rate_take(db, "test:refill", 5000, 1000, 2, &wait, &e) == 0 && wait == 0,
	    "a burst of 2: %s", e.msg);
	CHECK(store_rate_take(db, "test:refill", 5000, 1000, 2, &wait, &e) == 0 && wait == 1000,
	    "the third waits a second (%lld ms)", (long long)wait);
	CHECK(store_rate_take(db, "test:refill", 5999, 1000, 2, &wait, &e) == 0 && wait == 1,
	    "... 1 ms before it refilled (%lld ms)", (long long)wait);
	CHECK(store_rate_take(db, "test:refill", 6000, 1000, 2, &wait, &e) == 0 && wait == 0,
	    "one more after a second");
	CHECK(store_rate_take(db, "test:refill", 6000, 1000, 2, &wait, &e) == 0 && wait == 1000,
	    "and no more than one");
	CHECK(store_rate_prune(db, 7999, &e) == 0 &&
		storekit_count(svc->store,
		    "SELECT COUNT(*) FROM rate_buckets WHERE name = 'test:refill'") == 1,
	    "a bucket not yet full is kept");
	CHECK(store_rate_prune(db, 8000, &e) == 0 &&
		storekit_count(svc->store,
		    "SELECT COUNT(*) FROM rate_buckets WHERE name = 'test:refill'") == 0,
	    "a full bucket is pruned");
	store_release(svc->store, db);
	store_close(svc2.store);
	svc->claim_limit = (struct rate_limit){0};
}

static int
publish(struct service *svc, const struct principal *p, json_t *body, struct manifest_report *r,
    struct devid_error *e)
{
	char *text = json_dumps(body, JSON_COMPACT);
	int rc = service_publish(svc, p, (const uint8_t *)text, strlen(text), r, e);

	free(text);
	json_decref(body);
	return rc;
}

int
main(int argc, char **argv)
{
	char url[PATH_MAX + 32], *root, *signer, signer_hex[65];
	struct service svc = {.verify_threads = 2};
	struct principal vendor, oem, oem2;
	struct manifest_report r;
	struct devid_error e;
	struct store *s = NULL;
	struct batch_rec b;
	struct db *db;
	int64_t n;
	uint8_t md[32];
	json_t *body, *m, *p;
	EVP_PKEY *signer_key;
	X509 *sc;
	bool pg = argc > 1 && strcmp(argv[1], "postgres") == 0;

	devid_error_clear(&e);
	if (pg && getenv("DEVID_TEST_PG_URL") == NULL)
		test_skip("DEVID_TEST_PG_URL not set (run under scripts/with-postgres)");
	test_tmpdir(tmp, sizeof(tmp), "ingest");
	reelkit_workdir(tmp);
	if (pg)
		snprintf(url, sizeof(url), "%s", getenv("DEVID_TEST_PG_URL"));
	else
		snprintf(url, sizeof(url), "sqlite:%s/devid.db", tmp);
	if (vendor_init(reelkit_path("v", ""), "ACME", &e) != 0) {
		printf("init: %s\n", e.msg);
		return 1;
	}
	reelkit_mint("v", "B1", 5);
	reelkit_mint("v", "B2", 4);
	reelkit_mint("v", "B3", 3);
	signer_key = pkey_load_pem_file(reelkit_path("v", "signer.key"), &e);

	CHECK(store_open(url, 2, &s, &e) == 0, "store: %s", e.msg);
	if (s == NULL)
		return test_done();
	svc.store = s;
	db = store_acquire(s);
	root = reelkit_read_text(reelkit_path("v", "root.pem"));
	signer = reelkit_read_text(reelkit_path("v", "signer.pem"));
	sc = x509_load_pem_file(reelkit_path("v", "signer.pem"), &e);
	x509_sha256(sc, md);
	hex_encode(md, 32, signer_hex);
	X509_free(sc);
	CHECK(store_tenant_add(db, "ACME", TENANT_VENDOR, &vendor.tenant.id, &e) == 0 &&
		store_tenant_add(db, "OEM1", TENANT_OEM, &oem.tenant.id, &e) == 0 &&
		store_tenant_add(db, "OEM2", TENANT_OEM, &oem2.tenant.id, &e) == 0 &&
		store_trust_add(db, vendor.tenant.id, root, signer, signer_hex, &e) == 0,
	    "set-up: %s", e.msg);
	store_release(s, db);
	free(root);
	free(signer);
	snprintf(vendor.tenant.name, sizeof(vendor.tenant.name), "ACME");
	vendor.tenant.kind = TENANT_VENDOR;
	vendor.role = ROLE_VENDOR;
	snprintf(oem.tenant.name, sizeof(oem.tenant.name), "OEM1");
	oem.tenant.kind = TENANT_OEM;
	oem.role = ROLE_ADMIN;
	snprintf(oem.token_id, sizeof(oem.token_id), "0001");
	oem2 = oem;
	snprintf(oem2.tenant.name, sizeof(oem2.tenant.name), "OEM2");
	snprintf(oem2.token_id, sizeof(oem2.token_id), "0002");
	oem2.tenant.id = oem.tenant.id + 1;
	db = store_acquire(s);
	store_tenant_get(db, "OEM2", &oem2.tenant, &e);
	store_release(s, db);

	/* an OEM cannot publish */
	CHECK(publish(&svc, &oem, body_of("B1"), &r, &e) == DEVID_EAUTH, "OEM publish refused");
	manifest_report_release(&r);
	/* nor can another vendor publish ACME's batch, though its signature is genuine */
	{
		struct principal other = vendor;

		snprintf(other.tenant.name, sizeof(other.tenant.name), "OTHERV");
		other.tenant.id = vendor.tenant.id + 100;
		CHECK(publish(&svc, &other, body_of("B1"), &r, &e) == DEVID_EAUTH &&
			strstr(e.msg, "the descriptor is for vendor ACME") != NULL,
		    "another vendor's publish of ACME's batch refused: %s", e.msg);
		manifest_report_release(&r);
		db = store_acquire(s);
		CHECK(store_batch_get(db, "ACME", "B1", &b, &e) == DEVID_ENOTFOUND,
		    "no trace of the refused publish");
		store_release(s, db);
	}

	/* genuine batch: stored whole */
	CHECK(publish(&svc, &vendor, body_of("B1"), &r, &e) == 0, "publish B1: %s %s", e.msg,
	    r.batch_error);
	CHECK(r.accepted == 5 && r.rejected == 0, "report: %zu accepted", r.accepted);
	manifest_report_release(&r);
	db = store_acquire(s);
	CHECK(store_batch_get(db, "ACME", "B1", &b, &e) == 0 && b.count == 5 && b.owner_id == 0 &&
		strlen(b.claim_sha256) == 64,
	    "batch stored unclaimed with its claim hash");
	store_release(s, db);
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM devices") == 5, "5 devices stored");

	/* the same batch again */
	CHECK(publish(&svc, &vendor, body_of("B1"), &r, &e) == DEVID_ECONFLICT &&
		strstr(e.msg, "already exists") != NULL,
	    "repeat publish is a conflict: %s", e.msg);
	manifest_report_release(&r);

	/* one forged entry: the whole batch is rejected and nothing of it is stored */
	body = body_of("B2");
	m = json_object_get(body, "manifest");
	{
		char *sig = reelkit_decode(json_array_get(m, 2), "signature"), *b64;

		sig[7] ^= 1;
		b64 = b64url_encode((const uint8_t *)sig, 64);
		json_object_set_new(json_array_get(m, 2), "signature", json_string(b64));
		free(b64);
		free(sig);
	}
	CHECK(publish(&svc, &vendor, body, &r, &e) == DEVID_EINVAL, "forged batch rejected");
	CHECK(r.rejected == 1 && r.nrejects == 1 && r.rejects[0].index == 2 &&
		strstr(r.rejects[0].message, "signature does not verify") != NULL,
	    "report names entry 2 and the rule");
	manifest_report_release(&r);
	db = store_acquire(s);
	CHECK(store_batch_get(db, "ACME", "B2", &b, &e) == DEVID_ENOTFOUND, "no trace of B2");
	store_release(s, db);
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM devices") == 5, "still 5 devices");

	/* a chip of B1, re-signed into B3: reported as stored in B1, B3 not stored */
	body = body_of("B3");
	m = json_object_get(body, "manifest");
	{
		json_t *b1 = reelkit_load_json(reelkit_path("B1", "manifest.json"));
		json_t *entry = json_deep_copy(json_array_get(b1, 0));

		p = reelkit_payload(entry);
		json_object_set_new(p, "groupId", json_string("B3"));
		reelkit_resign(entry, p, signer_key);
		json_array_set_new(m, 1, entry);
		json_decref(b1);
	}
	CHECK(publish(&svc, &vendor, body, &r, &e) == DEVID_ECONFLICT, "duplicate chip: %s", e.msg);
	CHECK(r.nrejects == 1 && r.rejects[0].index == 1 &&
		strstr(r.rejects[0].message, "already stored in batch ACME/B1") != NULL,
	    "report: %s", r.nrejects ? r.rejects[0].message : "(none)");
	manifest_report_release(&r);
	db = store_acquire(s);
	CHECK(store_batch_get(db, "ACME", "B3", &b, &e) == DEVID_ENOTFOUND, "no trace of B3");
	store_release(s, db);
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM devices") == 5, "still 5 devices");

	/* claims */
	{
		char *code = claim_text("B1"), other[128], transfer[128];
		const char *fake = "DEVID1:ACME:NOPE:AAAAAAAAAAAAAAAAAAAAAAAAAA";
		struct devid_error e1, e2, e3;
		bool changed = false;
		struct batch_rec b1;

		CHECK(claim(&svc, &vendor, code, &changed, &e) == DEVID_EAUTH,
		    "a vendor cannot claim");
		CHECK(claim(&svc, &oem, "DEVID1:ACME:B1:short", &changed, &e) == DEVID_EINVAL,
		    "malformed code is a 400: %s", e.msg);
		CHECK(claim(&svc, &oem, code, &changed, &e) == 0 && changed, "owner claims: %s",
		    e.msg);
		CHECK(
		    claim(&svc, &oem, code, &changed, &e) == 0 && !changed, "repeat is idempotent");
		/* another tenant, a wrong code, a missing batch: indistinguishable */
		snprintf(other, sizeof(other), "%.*sAAAAAAAAAAAAAAAAAAAAAAAAAA",
		    (int)(strlen(code) - 26), code);
		CHECK(claim(&svc, &oem2, code, &changed, &e1) == DEVID_ENOTFOUND, "other tenant");
		CHECK(claim(&svc, &oem2, other, &changed, &e2) == DEVID_ENOTFOUND, "wrong code");
		CHECK(claim(&svc, &oem2, fake, &changed, &e3) == DEVID_ENOTFOUND, "missing batch");
		CHECK(strcmp(e1.msg, e2.msg) == 0 && strcmp(e2.msg, e3.msg) == 0 &&
			strcmp(e1.msg, CLAIM_NOT_FOUND_MSG) == 0,
		    "same answer: \"%s\" \"%s\" \"%s\"", e1.msg, e2.msg, e3.msg);
		/* transfer: a new one-time code moves the batch; the old code is dead */
		CHECK(service_transfer(&svc, &oem2, "ACME", "B1", transfer, sizeof(transfer), &e) ==
			DEVID_ENOTFOUND,
		    "only the owner transfers");
		CHECK(service_transfer(&svc, &oem, "ACME", "B1", transfer, sizeof(transfer), &e) ==
			    0 &&
			strncmp(transfer, "DEVID1:ACME:B1:", 15) == 0 &&
			strcmp(transfer, code) != 0,
		    "transfer code: %s", e.msg);
		CHECK(
		    claim(&svc, &oem2, code, &changed, &e) == DEVID_ENOTFOUND, "old code refused");
		CHECK(claim(&svc, &oem2, transfer, &changed, &e) == 0 && changed,
		    "new owner claims with the transfer code: %s", e.msg);
		CHECK(claim(&svc, &oem, transfer, &changed, &e) == DEVID_ENOTFOUND,
		    "the transfer code is used up");
		db = store_acquire(s);
		CHECK(store_batch_get(db, "ACME", "B1", &b1, &e) == 0 &&
			b1.owner_id == oem2.tenant.id,
		    "owner is OEM2");
		store_release(s, db);
		/* release */
		CHECK(service_release(&svc, &oem, "ACME", "B1", &e) == DEVID_ENOTFOUND,
		    "a former owner cannot release");
		CHECK(service_release(&svc, &oem2, "ACME", "B1", &e) == 0, "release: %s", e.msg);
		db = store_acquire(s);
		CHECK(store_batch_get(db, "ACME", "B1", &b1, &e) == 0 && b1.owner_id == 0,
		    "unclaimed after release");
		store_release(s, db);
		CHECK(claim(&svc, &oem, transfer, &changed, &e) == 0 && changed,
		    "the last code claims a released batch: %s", e.msg);
		free(code);

		rate_limits(&svc, url, &oem, &oem2, fake);
	}

	/* 20 concurrent claims of one batch by two tenants through two stores: one owner */
	{
		struct service svc2 = {.verify_threads = 1};
		struct racer rc[20];
		pthread_t th[20];
		char *code;
		int winners = 0, ok = 0;
		struct batch_rec b4;

		reelkit_mint("v", "B4", 2);
		CHECK(publish(&svc, &vendor, body_of("B4"), &r, &e) == 0, "publish B4: %s", e.msg);
		manifest_report_release(&r);
		CHECK(store_open(url, 4, &svc2.store, &e) == 0, "second store: %s", e.msg);
		code = claim_text("B4");
		for (int i = 0; i < 20; i++) {
			rc[i] = (struct racer){.svc = i % 2 ? &svc2 : &svc,
			    .p = i % 4 < 2 ? &oem : &oem2,
			    .code = code};
			pthread_create(&th[i], NULL, race, &rc[i]);
		}
		for (int i = 0; i < 20; i++) {
			pthread_join(th[i], NULL);
			winners += rc[i].changed;
			ok += rc[i].rc == 0;
		}
		db = store_acquire(s);
		CHECK(store_batch_get(db, "ACME", "B4", &b4, &e) == 0 &&
			(b4.owner_id == oem.tenant.id || b4.owner_id == oem2.tenant.id),
		    "B4 has an owner");
		store_release(s, db);
		CHECK(winners == 1, "exactly one claim bound the batch (%d)", winners);
		CHECK(ok == 10, "the owner's 10 claims succeed, the other's 10 fail (%d)", ok);
		free(code);
		store_close(svc2.store);
	}

	/* reading: batches, cursor-paged devices, one device, revoke, manifest files */
	{
		struct principal op = oem;
		json_t *j = NULL, *dev;
		struct dynbuf out;
		const char *next = NULL;
		char cursor[24] = "0", udid[65] = "";
		size_t seen = 0;

		CHECK(service_batches(&svc, &oem, 0, 0, &j, &e) == 0 &&
			json_array_size(json_object_get(j, "batches")) >= 1,
		    "OEM1 lists its batches: %s", e.msg);
		json_decref(j);
		do {
			CHECK(service_devices(&svc, &oem, "ACME", "B1", NULL, NULL,
				  strtoll(cursor, NULL, 10), 2, &j, &e) == 0,
			    "devices page: %s", e.msg);
			seen += json_array_size(json_object_get(j, "devices"));
			dev = json_array_get(json_object_get(j, "devices"), 0);
			if (dev != NULL && udid[0] == '\0')
				snprintf(udid, sizeof(udid), "%s",
				    json_string_value(json_object_get(dev, "udid")));
			next = json_string_value(json_object_get(j, "next"));
			snprintf(cursor, sizeof(cursor), "%s", next ? next : "");
			json_decref(j);
		} while (next != NULL && seen < 100);
		CHECK(seen == 5, "pages of 2 give all 5 devices of B1 (%zu)", seen);
		CHECK(service_device_get(&svc, &oem2, udid, &j, &e) == DEVID_ENOTFOUND,
		    "another tenant's device is not found");
		CHECK(service_device_get(&svc, &oem, udid, &j, &e) == 0, "own device: %s", e.msg);
		json_decref(j);
		op.role = ROLE_OPERATOR;
		CHECK(service_revoke(&svc, &op, udid, NULL, &e) == DEVID_EAUTH,
		    "an operator cannot revoke");
		CHECK(service_revoke(&svc, &oem, udid, NULL, &e) == 0, "revoke: %s", e.msg);
		CHECK(service_revoke(&svc, &oem, udid, NULL, &e) == 0, "revoke again is a no-op");
		CHECK(service_devices(&svc, &oem, NULL, NULL, "revoked", NULL, 0, 0, &j, &e) == 0 &&
			json_array_size(json_object_get(j, "devices")) == 1,
		    "one revoked device");
		json_decref(j);

		dynbuf_init(&out, 1 << 24);
		CHECK(service_manifest(&svc, &oem2, "ACME", "B1", MANIFEST_JSON, &out, &e) ==
			DEVID_ENOTFOUND,
		    "another tenant's manifest is not found");
		CHECK(service_manifest(&svc, &oem, "ACME", "B1", MANIFEST_JSON, &out, &e) == 0,
		    "manifest json: %s", e.msg);
		{
			/* the original signed entries verify again */
			STACK_OF(X509) *roots =
			    x509_load_pem_file_all(reelkit_path("v", "root.pem"), &e);
			STACK_OF(X509) *signers =
			    x509_load_pem_file_all(reelkit_path("v", "signer.pem"), &e);
			struct vendor_trust *t = vendor_trust_new(roots, signers, &e);
			struct manifest_report rr;
			struct manifest *mm = NULL;

			memset(&rr, 0, sizeof(rr));
			CHECK(manifest_parse(out.p, out.len, &mm, &rr, &e) == 0 &&
				manifest_check_batch(mm, NULL, "B1", t, 2, &rr) == 0 &&
				rr.accepted == 5,
			    "downloaded JSON re-verifies: %zu accepted", rr.accepted);
			manifest_free(mm);
			manifest_report_release(&rr);
			vendor_trust_free(t);
			sk_X509_pop_free(roots, X509_free);
			sk_X509_pop_free(signers, X509_free);
		}
		dynbuf_reset(&out);
		CHECK(service_manifest(&svc, &oem, "ACME", "B1", MANIFEST_PEM, &out, &e) == 0,
		    "manifest pem");
		{
			size_t certs = 0;

			for (const char *q = dynbuf_str(&out); (q = strstr(q, "BEGIN CERTIFICATE"));
			     q++)
				certs++;
			CHECK(certs == 5, "PEM bundle has 5 certificates (%zu)", certs);
		}
		dynbuf_reset(&out);
		CHECK(service_manifest(&svc, &oem, "ACME", "B1", MANIFEST_CSV, &out, &e) == 0 &&
			strncmp(dynbuf_str(&out), "device_id,group_id,certificate\r\n", 32) == 0,
		    "manifest csv header");
		dynbuf_release(&out);
		/* a manifest over the response cap is the server's limit, not a rate: never 429 */
		dynbuf_init(&out, 64);
		CHECK(service_manifest(&svc, &oem, "ACME", "B1", MANIFEST_PEM, &out, &e) ==
			    DEVID_EINTERNAL &&
			strstr(e.msg, "does not fit") != NULL,
		    "manifest over the cap: %s", e.msg);
		dynbuf_release(&out);
	}

	/*
	 * OEM direct import: ACME publishes through devid, so its manifest is never imported
	 * (test_admin covers imports under an OEM's own trust); the checks before trust run first
	 */
	{
		struct principal op = oem;
		json_t *man;

		reelkit_mint("v", "B5", 3);
		op.role = ROLE_OPERATOR;
		man = reelkit_load_json(reelkit_path("B5", "manifest.json"));
		CHECK(import_json(&svc, &op, "B5", man, &r, &e) == DEVID_EAUTH,
		    "an operator cannot import");
		manifest_report_release(&r);
		CHECK(import_json(&svc, &oem, "B5", man, &r, &e) == DEVID_EAUTH &&
			strstr(e.msg, "devid vendor ACME") != NULL,
		    "a devid vendor's manifest is not imported: %s", e.msg);
		manifest_report_release(&r);
		CHECK(
		    storekit_count(s, "SELECT COUNT(*) FROM batches WHERE source = 'import'") == 0,
		    "nothing imported");
		json_decref(man);
	}

	/* the audit chain: one record per accepted publish, tamper-evident */
	db = store_acquire(s);
	CHECK(audit_verify(db, oem.tenant.id, &n, &e) == 0 && n >= 2, "OEM1 chain: %lld %s",
	    (long long)n, e.msg);
	CHECK(audit_verify(db, vendor.tenant.id, &n, &e) == 0 && n == 2, "audit chain: %lld %s",
	    (long long)n, e.msg);
	CHECK(db_exec(db, "UPDATE audit SET detail = '{}' WHERE seq = 1", NULL, 0, NULL, &e) == 0,
	    "edit a record");
	CHECK(audit_verify(db, vendor.tenant.id, &n, &e) == DEVID_ECRYPTO &&
		strstr(e.msg, "record 1 was changed") != NULL,
	    "edited record detected: %s", e.msg);
	store_release(s, db);
	store_close(s);
	EVP_PKEY_free(signer_key);
	test_rmdir(tmp);
	return test_done();
}
