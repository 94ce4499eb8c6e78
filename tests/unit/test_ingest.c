/*
 * Vendor batch ingest through the domain, on SQLite and on PostgreSQL: a genuine batch is
 * stored whole with an audit record; a forged entry, another tenant, a repeated batch and a
 * chip already stored in another batch are refused and leave no trace; the audit chain
 * verifies and detects an edited record. Usage: test_ingest sqlite|postgres.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "lib/x509.h"
#include "service/service.h"
#include "vendor/vendor.h"
#include "reelkit.h"
#include "test.h"
#include "lib/banned.h"

static char tmp[PATH_MAX];

static char *
path(const char *a, const char *b)
{
	static char buf[4][PATH_MAX * 2];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s/%s", tmp, a, b);
	return buf[i];
}

static void
mint(const char *batch, size_t count)
{
	char dir[PATH_MAX * 2], out[PATH_MAX * 2];
	struct mint_opts o = {.batch = batch, .count = count, .threads = 2};
	struct mint_result res;
	struct devid_error e;

	snprintf(dir, sizeof(dir), "%s/v", tmp);
	snprintf(out, sizeof(out), "%s/%s", tmp, batch);
	o.dir = dir;
	o.out = out;
	if (vendor_mint(&o, &res, &e) != 0) {
		printf("mint: %s\n", e.msg);
		exit(1);
	}
}

/* The publish body of a reel. */
static json_t *
body_of(const char *batch)
{
	return json_pack("{s:o, s:o}", "descriptor", reelkit_load_json(path(batch, "batch.json")),
	    "manifest", reelkit_load_json(path(batch, "manifest.json")));
}

static int64_t
count_rows(struct store *s, const char *sql)
{
	struct db *db = store_acquire(s);
	struct db_rows *r;
	int64_t n = -1;

	if (db_query(db, sql, NULL, 0, &r, NULL) == 0) {
		n = db_rows_int(r, 0, 0);
		db_rows_free(r);
	}
	store_release(s, db);
	return n;
}

static char *
read_text(const char *p)
{
	uint8_t *buf;
	size_t n;

	if (file_read_all(p, 1 << 20, &buf, &n, NULL) != 0)
		exit(1);
	return (char *)buf;
}

static int
publish(struct service *svc, const struct principal *p, json_t *body, struct manifest_report *r,
    struct devid_error *e)
{
	int rc = service_publish(svc, p, body, r, e);

	json_decref(body);
	return rc;
}

int
main(int argc, char **argv)
{
	char url[PATH_MAX + 32], *root, *signer, signer_hex[65];
	struct service svc = {.verify_threads = 2};
	struct principal vendor, oem;
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
	if (pg)
		snprintf(url, sizeof(url), "%s", getenv("DEVID_TEST_PG_URL"));
	else
		snprintf(url, sizeof(url), "sqlite:%s/devid.db", tmp);
	if (vendor_init(path("v", ""), "ACME", &e) != 0) {
		printf("init: %s\n", e.msg);
		return 1;
	}
	mint("B1", 5);
	mint("B2", 4);
	mint("B3", 3);
	signer_key = pkey_load_pem_file(path("v", "signer.key"), &e);

	CHECK(store_open(url, 2, &s, &e) == 0, "store: %s", e.msg);
	if (s == NULL)
		return test_done();
	svc.store = s;
	db = store_acquire(s);
	root = read_text(path("v", "root.pem"));
	signer = read_text(path("v", "signer.pem"));
	sc = x509_load_pem_file(path("v", "signer.pem"), &e);
	x509_sha256(sc, md);
	hex_encode(md, 32, signer_hex);
	X509_free(sc);
	CHECK(store_tenant_add(db, "ACME", TENANT_VENDOR, &vendor.tenant.id, &e) == 0 &&
		store_tenant_add(db, "OEM1", TENANT_OEM, &oem.tenant.id, &e) == 0 &&
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

	/* an OEM cannot publish */
	CHECK(publish(&svc, &oem, body_of("B1"), &r, &e) == DEVID_EAUTH, "OEM publish refused");
	manifest_report_release(&r);

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
	CHECK(count_rows(s, "SELECT COUNT(*) FROM devices") == 5, "5 devices stored");

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
	CHECK(count_rows(s, "SELECT COUNT(*) FROM devices") == 5, "still 5 devices");

	/* a chip of B1, re-signed into B3: reported as stored in B1, B3 not stored */
	body = body_of("B3");
	m = json_object_get(body, "manifest");
	{
		json_t *b1 = reelkit_load_json(path("B1", "manifest.json"));
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
	CHECK(count_rows(s, "SELECT COUNT(*) FROM devices") == 5, "still 5 devices");

	/* the audit chain: one record per accepted publish, tamper-evident */
	db = store_acquire(s);
	CHECK(audit_verify(db, vendor.tenant.id, &n, &e) == 0 && n == 1, "audit chain: %lld %s",
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
