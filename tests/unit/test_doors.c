/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the ingest doors (vendor publish, OEM import) refuse, on SQLite and on PostgreSQL, and
 * that a refusal leaves nothing behind:
 * - one chip key, another encoding: a stored chip's key re-encoded with its point compressed
 *   or hybrid, in a birth certificate genuinely signed by the vendor's issuing CA, would be a
 *   second UDID for the same chip; refused with RFC 5480 2.2 named, nothing stored;
 * - entry size: a 65,600-byte entry is refused naming the limit, nothing stored; an entry of
 *   exactly the limit is accepted and reads back as EST reads it (manifest_entry_parse_bytes
 *   on the stored text) and in the manifest download.
 * The import door is tried with a vendor outside devid (OUTV), under the OEM's own trust: a
 * devid vendor's chips are never imported (test_admin).
 * Usage: test_doors sqlite|postgres.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "lib/dynbuf.h"
#include "lib/limits.h"
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
static struct store *s;
static EVP_PKEY *signer_key, *outv_key;

/* What the store holds: devices, batches and audit records, to compare before and after. */
struct snapshot {
	int64_t devices, batches, audit;
};

static struct snapshot
snap(void)
{
	return (struct snapshot){storekit_count(s, "SELECT COUNT(*) FROM devices"),
	    storekit_count(s, "SELECT COUNT(*) FROM batches"),
	    storekit_count(s, "SELECT COUNT(*) FROM audit")};
}

static void
unchanged(const char *what, struct snapshot before)
{
	struct snapshot now = snap();

	CHECK(now.devices == before.devices && now.batches == before.batches &&
		now.audit == before.audit,
	    "%s: nothing stored (devices %lld -> %lld, batches %lld -> %lld, audit %lld -> %lld)",
	    what, (long long)before.devices, (long long)now.devices, (long long)before.batches,
	    (long long)now.batches, (long long)before.audit, (long long)now.audit);
}

static int
publish(struct service *svc, const struct principal *p, json_t *descriptor, json_t *manifest,
    struct manifest_report *r, struct devid_error *e)
{
	json_t *body = json_pack("{s:o, s:o}", "descriptor", descriptor, "manifest", manifest);
	char *text = json_dumps(body, JSON_COMPACT);
	int rc = service_publish(svc, p, (const uint8_t *)text, strlen(text), r, e);

	free(text);
	json_decref(body);
	return rc;
}

/* The report of a refused batch names entry index and says want. */
static void
names(const char *what, const struct manifest_report *r, size_t index, const char *want)
{
	CHECK(r->nrejects == 1 && r->rejects[0].index == index &&
		strstr(r->rejects[0].message, want) != NULL,
	    "%s: report names entry %zu and \"%s\": %s", what, index, want,
	    r->nrejects ? r->rejects[0].message : "(no rejection)");
}

/*
 * Entry i of batch's manifest replaced by chip `from` of the stored batch src, its key
 * written in form, its birth certificate reissued by the issuing CA of vdir and the entry
 * signed by key: genuine in every way but the encoding.
 */
static json_t *
reencoded(const char *vdir, EVP_PKEY *key, const char *src, const char *batch, size_t i,
    size_t from, const char *form)
{
	json_t *m = reelkit_load_json(reelkit_path(batch, "manifest.json"));
	json_t *b1 = reelkit_load_json(reelkit_path(src, "manifest.json"));
	json_t *entry = json_deep_copy(json_array_get(b1, from)), *p = reelkit_payload(entry);

	reelkit_reissue_form(p, reelkit_path(vdir, ""), form);
	json_object_set_new(p, "groupId", json_string(batch));
	reelkit_resign(entry, p, key);
	json_array_set_new(m, i, entry);
	json_decref(b1);
	return m;
}

int
main(int argc, char **argv)
{
	char url[PATH_MAX + 32], *root, *signer, signer_hex[65];
	struct service svc = {.verify_threads = 2};
	struct principal vendor, oem;
	struct manifest_report r;
	struct snapshot before;
	struct devid_error e;
	struct batch_rec b;
	struct db *db;
	uint8_t md[32];
	json_t *m;
	X509 *sc;
	bool pg = argc > 1 && strcmp(argv[1], "postgres") == 0;

	devid_error_clear(&e);
	memset(&r, 0, sizeof(r));
	if (pg && getenv("DEVID_TEST_PG_URL") == NULL)
		test_skip("DEVID_TEST_PG_URL not set (run under scripts/with-postgres)");
	test_tmpdir(tmp, sizeof(tmp), "doors");
	reelkit_workdir(tmp);
	if (pg)
		snprintf(url, sizeof(url), "%s", getenv("DEVID_TEST_PG_URL"));
	else
		snprintf(url, sizeof(url), "sqlite:%s/devid.db", tmp);
	if (vendor_init(reelkit_path("v", ""), "ACME", &e) != 0) {
		printf("init: %s\n", e.msg);
		return 1;
	}
	if (vendor_init(reelkit_path("w", ""), "OUTV", &e) != 0) {
		printf("init OUTV: %s\n", e.msg);
		return 1;
	}
	/* "v": ACME, in devid; "w": OUTV, outside */
	reelkit_mint("v", "B1", 3);
	reelkit_mint("v", "B2", 3);
	reelkit_mint("w", "W1", 3);
	reelkit_mint("w", "W3", 3);
	reelkit_mint("w", "W4", 3);
	reelkit_mint("v", "B4", 3);
	reelkit_mint("v", "B5", 3);
	signer_key = pkey_load_pem_file(reelkit_path("v", "signer.key"), &e);
	outv_key = pkey_load_pem_file(reelkit_path("w", "signer.key"), &e);

	CHECK(store_open(url, 2, &s, &e) == 0, "store: %s", e.msg);
	if (s == NULL)
		return test_done();
	svc.store = s;
	root = reelkit_read_text(reelkit_path("v", "root.pem"));
	signer = reelkit_read_text(reelkit_path("v", "signer.pem"));
	sc = x509_load_pem_file(reelkit_path("v", "signer.pem"), &e);
	x509_sha256(sc, md);
	hex_encode(md, 32, signer_hex);
	X509_free(sc);
	memset(&vendor, 0, sizeof(vendor));
	memset(&oem, 0, sizeof(oem));
	db = store_acquire(s);
	CHECK(store_tenant_add(db, "ACME", TENANT_VENDOR, &vendor.tenant.id, &e) == 0 &&
		store_tenant_add(db, "OEM1", TENANT_OEM, &oem.tenant.id, &e) == 0 &&
		store_trust_add(db, vendor.tenant.id, root, signer, signer_hex, &e) == 0,
	    "set-up: %s", e.msg);
	store_release(s, db);
	free(root);
	free(signer);
	root = reelkit_read_text(reelkit_path("w", "root.pem"));
	signer = reelkit_read_text(reelkit_path("w", "signer.pem"));
	CHECK(service_trust_add_admin(&svc, NULL, "OEM1", root, signer, NULL, &e) == 0,
	    "OEM1 trusts OUTV for its imports: %s", e.msg);
	free(root);
	free(signer);
	snprintf(vendor.tenant.name, sizeof(vendor.tenant.name), "ACME");
	vendor.tenant.kind = TENANT_VENDOR;
	vendor.role = ROLE_VENDOR;
	snprintf(vendor.actor, sizeof(vendor.actor), "token:1:vendor");
	snprintf(oem.tenant.name, sizeof(oem.tenant.name), "OEM1");
	oem.tenant.kind = TENANT_OEM;
	oem.role = ROLE_ADMIN;
	snprintf(oem.actor, sizeof(oem.actor), "token:2:oem");

	/* the genuine batch: its chips are stored under the UDIDs of their uncompressed keys */
	CHECK(publish(&svc, &vendor, reelkit_load_json(reelkit_path("B1", "batch.json")),
		  reelkit_load_json(reelkit_path("B1", "manifest.json")), &r, &e) == 0,
	    "publish B1: %s %s", e.msg, r.batch_error);
	manifest_report_release(&r);

	/* publish: B1's chip 0 again in B2, its key compressed, then hybrid */
	before = snap();
	CHECK(before.devices == 3, "3 devices stored (%lld)", (long long)before.devices);
	m = reencoded("v", signer_key, "B1", "B2", 1, 0, "compressed");
	CHECK(publish(&svc, &vendor, reelkit_load_json(reelkit_path("B2", "batch.json")), m, &r,
		  &e) == DEVID_EINVAL,
	    "publish with a compressed chip key refused: %s", e.msg);
	names("publish, compressed", &r, 1,
	    "entry 1: x5c[0] birth certificate: device key: EC point must be uncompressed (RFC "
	    "5480 2.2): compressed form 0");
	manifest_report_release(&r);
	unchanged("publish, compressed", before);
	m = reencoded("v", signer_key, "B1", "B2", 2, 0, "hybrid");
	CHECK(publish(&svc, &vendor, reelkit_load_json(reelkit_path("B2", "batch.json")), m, &r,
		  &e) == DEVID_EINVAL,
	    "publish with a hybrid chip key refused: %s", e.msg);
	names("publish, hybrid", &r, 2, "RFC 5480 2.2 forbids the hybrid form");
	manifest_report_release(&r);
	unchanged("publish, hybrid", before);
	db = store_acquire(s);
	CHECK(store_batch_get(db, "ACME", "B2", &b, &e) == DEVID_ENOTFOUND, "no trace of B2");
	store_release(s, db);

	/* import: the same, through the OEM's door, for a vendor outside devid */
	m = reelkit_load_json(reelkit_path("W1", "manifest.json"));
	CHECK(import_json(&svc, &oem, "W1", m, &r, &e) == 0, "import W1 under OEM1's own trust: %s",
	    e.msg);
	manifest_report_release(&r);
	json_decref(m);
	before = snap();
	m = reencoded("w", outv_key, "W1", "W3", 0, 1, "compressed");
	CHECK(import_json(&svc, &oem, "W3", m, &r, &e) == DEVID_EINVAL,
	    "import with a compressed chip key refused: %s", e.msg);
	names("import, compressed", &r, 0, "EC point must be uncompressed (RFC 5480 2.2)");
	manifest_report_release(&r);
	json_decref(m);
	unchanged("import, compressed", before);
	m = reencoded("w", outv_key, "W1", "W3", 2, 2, "hybrid");
	CHECK(import_json(&svc, &oem, "W3", m, &r, &e) == DEVID_EINVAL,
	    "import with a hybrid chip key refused: %s", e.msg);
	names("import, hybrid", &r, 2, "hybrid form 0");
	manifest_report_release(&r);
	json_decref(m);
	unchanged("import, hybrid", before);
	db = store_acquire(s);
	CHECK(store_batch_get(db, "OEM1", "W3", &b, &e) == DEVID_ENOTFOUND, "no trace of W3");
	store_release(s, db);

	/* a 65,600-byte entry, at both doors */
	m = reelkit_load_json(reelkit_path("B4", "manifest.json"));
	reelkit_pad_entry(json_array_get(m, 2), 65600, signer_key);
	CHECK(publish(&svc, &vendor, reelkit_load_json(reelkit_path("B4", "batch.json")), m, &r,
		  &e) == DEVID_EINVAL,
	    "publish of a 65,600-byte entry refused: %s", e.msg);
	names("publish, 65600 bytes", &r, 2,
	    "65600 bytes as stored (compact JSON), over the limit of 65536 bytes for one entry");
	manifest_report_release(&r);
	unchanged("publish, 65600 bytes", before);
	m = reelkit_load_json(reelkit_path("W4", "manifest.json"));
	reelkit_pad_entry(json_array_get(m, 2), 65600, outv_key);
	CHECK(import_json(&svc, &oem, "W4", m, &r, &e) == DEVID_EINVAL,
	    "import of a 65,600-byte entry refused: %s", e.msg);
	names("import, 65600 bytes", &r, 2, "over the limit of 65536 bytes");
	manifest_report_release(&r);
	json_decref(m);
	unchanged("import, 65600 bytes", before);

	/* an entry of exactly the limit: stored, and read back as EST and the download read it */
	m = reelkit_load_json(reelkit_path("B5", "manifest.json"));
	reelkit_pad_entry(json_array_get(m, 1), MAX_ENTRY_SIZE, signer_key);
	CHECK(publish(&svc, &vendor, reelkit_load_json(reelkit_path("B5", "batch.json")), m, &r,
		  &e) == 0,
	    "publish with an entry of %d bytes: %s %s", MAX_ENTRY_SIZE, e.msg,
	    r.nrejects ? r.rejects[0].message : "");
	manifest_report_release(&r);
	{
		struct manifest_entry *back = NULL;
		struct db_rows *rows = NULL;
		const char *text;
		size_t n = 0, big = 0;

		db = store_acquire(s);
		CHECK(db_query(db,
			  "SELECT d.entry FROM devices d JOIN batches b ON b.id = d.batch_id "
			  "WHERE b.name = 'B5'",
			  NULL, 0, &rows, &e) == 0 &&
			db_rows_count(rows) == 3,
		    "B5's 3 entries stored: %s", e.msg);
		for (size_t i = 0; rows != NULL && i < db_rows_count(rows); i++) {
			text = db_rows_text(rows, i, 0, &n);
			if (n != MAX_ENTRY_SIZE)
				continue;
			big++;
			CHECK(manifest_entry_parse_bytes((const uint8_t *)text, n, &back, &e) == 0,
			    "the stored %zu-byte entry reads back (as EST reads it): %s", n, e.msg);
			manifest_entry_free(back);
		}
		CHECK(big == 1, "one stored entry of exactly %d bytes (%zu)", MAX_ENTRY_SIZE, big);
		db_rows_free(rows);
		store_release(s, db);
	}
	{
		bool changed;
		int retry_after;
		char *code = reelkit_read_text(reelkit_path("B5", "claim.txt"));
		struct dynbuf out;
		struct manifest *mm = NULL;
		STACK_OF(X509) *roots = x509_load_pem_file_all(reelkit_path("v", "root.pem"), &e);
		STACK_OF(X509) *signers =
		    x509_load_pem_file_all(reelkit_path("v", "signer.pem"), &e);
		struct vendor_trust *t = vendor_trust_new(roots, signers, &e);

		code[strcspn(code, "\n")] = '\0';
		CHECK(service_claim(&svc, &oem, "127.0.0.1", (const uint8_t *)code, strlen(code),
			  &b, &changed, &retry_after, &e) == 0,
		    "claim B5: %s", e.msg);
		dynbuf_init(&out, 1 << 24);
		CHECK(service_manifest(&svc, &oem, "ACME", "B5", MANIFEST_JSON, &out, &e) == 0,
		    "manifest download: %s", e.msg);
		memset(&r, 0, sizeof(r));
		CHECK(manifest_parse(out.p, out.len, &mm, &r, &e) == 0 &&
			manifest_check_batch(mm, NULL, "B5", t, 2, &r) == 0 && r.accepted == 3,
		    "the downloaded manifest verifies again: %zu accepted %s", r.accepted,
		    r.nrejects ? r.rejects[0].message : "");
		manifest_free(mm);
		manifest_report_release(&r);
		dynbuf_release(&out);
		vendor_trust_free(t);
		sk_X509_pop_free(roots, X509_free);
		sk_X509_pop_free(signers, X509_free);
		free(code);
	}

	store_close(s);
	EVP_PKEY_free(signer_key);
	EVP_PKEY_free(outv_key);
	test_rmdir(tmp);
	return test_done();
}
