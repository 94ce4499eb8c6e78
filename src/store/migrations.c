/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/dynbuf.h"
#include "store/store.h"
#include "lib/banned.h"

/*
 * Each migration is a list of statements in portable SQL with markers the dialects spell
 * differently: @ID@ (an auto-increment primary key), @BLOB@ (bytes), @NOW@ (the current
 * Unix time in seconds, as an integer) and @C@ (a column's byte-order collation).
 * Never edit a released migration: add the next one.
 */
struct migration {
	int version;
	const char *const *sql;
};

static const char *const v1[] = {
    "CREATE TABLE tenants ("
    " id @ID@,"
    " name TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL CHECK (kind IN ('vendor', 'oem')),"
    " created_at BIGINT NOT NULL)",

    "CREATE TABLE tokens ("
    " id @ID@,"
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " role TEXT NOT NULL CHECK (role IN ('vendor', 'admin', 'operator')),"
    " token_sha256 TEXT NOT NULL UNIQUE,"
    " created_at BIGINT NOT NULL)",

    "CREATE TABLE vendor_trust ("
    " id @ID@,"
    " vendor_id BIGINT NOT NULL REFERENCES tenants (id),"
    " root_pem TEXT NOT NULL,"
    " signer_pem TEXT NOT NULL,"
    " signer_sha256 TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " UNIQUE (vendor_id, signer_sha256))",

    "CREATE TABLE batches ("
    " id @ID@,"
    " vendor_id BIGINT NOT NULL REFERENCES tenants (id),"
    " name TEXT NOT NULL,"
    " part_number TEXT NOT NULL,"
    " count BIGINT NOT NULL,"
    " claim_sha256 TEXT,"
    " transfer_sha256 TEXT,"
    " descriptor TEXT,"
    " source TEXT NOT NULL CHECK (source IN ('vendor', 'import')),"
    " owner_id BIGINT REFERENCES tenants (id),"
    " created_at BIGINT NOT NULL,"
    " claimed_at BIGINT,"
    " UNIQUE (vendor_id, name))",

    "CREATE TABLE devices ("
    " id @ID@,"
    " udid TEXT NOT NULL UNIQUE,"
    " batch_id BIGINT NOT NULL REFERENCES batches (id),"
    " serial TEXT NOT NULL,"
    " cert @BLOB@ NOT NULL,"
    " entry TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'revoked')),"
    " revoked_at BIGINT)",

    "CREATE INDEX devices_batch ON devices (batch_id, id)",

    "CREATE TABLE audit ("
    " id @ID@,"
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " seq BIGINT NOT NULL,"
    " at BIGINT NOT NULL,"
    " actor TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " object TEXT NOT NULL,"
    " detail TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL,"
    " hash TEXT NOT NULL,"
    " UNIQUE (tenant_id, seq))",

    NULL,
};

/* provisioning: product-cloud connectors and the outbox of delivery jobs */
static const char *const v2[] = {
    "CREATE TABLE connectors ("
    " id @ID@,"
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " name TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " mode TEXT NOT NULL CHECK (mode IN ('auto', 'manual')),"
    " config TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " UNIQUE (tenant_id, name))",

    "CREATE TABLE jobs ("
    " id @ID@,"
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " connector_id BIGINT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,"
    " action TEXT NOT NULL CHECK (action IN ('add', 'remove')),"
    " batch_id BIGINT REFERENCES batches (id),"
    " udid TEXT,"
    " state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),"
    " attempts BIGINT NOT NULL DEFAULT 0,"
    " next_at BIGINT NOT NULL,"
    " cursor BIGINT NOT NULL DEFAULT 0,"
    " delivered BIGINT NOT NULL DEFAULT 0,"
    " total BIGINT NOT NULL,"
    " last_error TEXT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL)",

    "CREATE INDEX jobs_due ON jobs (state, next_at)",

    NULL,
};

/*
 * operational certificates: a tenant's CA (its key stays where key_uri says), its quota with
 * the count of devices holding a certificate (checked and counted in one UPDATE), the
 * devices that hold one (a device counts once), the certificates issued, the cached CRL
 */
static const char *const v3[] = {
    "CREATE TABLE cas ("
    " tenant_id BIGINT PRIMARY KEY REFERENCES tenants (id),"
    " cert @BLOB@ NOT NULL,"
    " key_uri TEXT NOT NULL,"
    " validity_days BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL)",

    "CREATE TABLE quotas ("
    " tenant_id BIGINT PRIMARY KEY REFERENCES tenants (id),"
    " max_devices BIGINT CHECK (max_devices >= 0),"
    " used BIGINT NOT NULL DEFAULT 0)",

    "CREATE TABLE cert_holders ("
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " device_id BIGINT NOT NULL REFERENCES devices (id),"
    " PRIMARY KEY (tenant_id, device_id))",

    "CREATE TABLE certificates ("
    " id @ID@,"
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " device_id BIGINT NOT NULL REFERENCES devices (id),"
    " serial TEXT NOT NULL UNIQUE,"
    " cert @BLOB@ NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " issued_at BIGINT NOT NULL)",

    "CREATE INDEX certificates_device ON certificates (device_id)",

    "CREATE TABLE crls ("
    " tenant_id BIGINT PRIMARY KEY REFERENCES tenants (id),"
    " number BIGINT NOT NULL,"
    " revoked BIGINT NOT NULL,"
    " last_revoked_at BIGINT NOT NULL,"
    " this_update BIGINT NOT NULL,"
    " der @BLOB@ NOT NULL)",

    NULL,
};

/*
 * tokens that can be told apart, listed and undone: a name unique within the tenant (tokens
 * made before it are named token-<id>), an optional expiry, the last use, the revocation
 */
static const char *const v4[] = {
    "ALTER TABLE tokens ADD COLUMN name TEXT",
    "ALTER TABLE tokens ADD COLUMN expires_at BIGINT",
    "ALTER TABLE tokens ADD COLUMN last_used_at BIGINT",
    "ALTER TABLE tokens ADD COLUMN revoked_at BIGINT",
    "UPDATE tokens SET name = 'token-' || CAST(id AS TEXT)",
    "CREATE UNIQUE INDEX tokens_name ON tokens (tenant_id, name)",
    NULL,
};

/*
 * trust that says whose it is and can be undone, and batches that say who admitted them.
 * vendor_trust.owner_id NULL: a devid vendor's own trust (devid admin trust add --vendor),
 * which admits its publishes; otherwise the OEM tenant that added the trust for its own
 * imports, and vendor_id is that tenant too, so imported batches live in the importer's
 * namespace. removed_at retires a signer: its future manifests are refused, the batches it
 * admitted stay. batches.trust_id: the trust whose signer admitted the batch (batches older
 * than v5 get their vendor's trust when it has exactly one; NULL: not known).
 */
static const char *const v5[] = {
    "ALTER TABLE vendor_trust ADD COLUMN owner_id BIGINT REFERENCES tenants (id)",
    "ALTER TABLE vendor_trust ADD COLUMN removed_at BIGINT",
    "ALTER TABLE batches ADD COLUMN trust_id BIGINT REFERENCES vendor_trust (id)",
    "UPDATE batches SET trust_id = (SELECT MIN(v.id) FROM vendor_trust v"
    " WHERE v.vendor_id = batches.vendor_id)"
    " WHERE (SELECT COUNT(*) FROM vendor_trust v WHERE v.vendor_id = batches.vendor_id) = 1",
    NULL,
};

/*
 * several servers as one, and revocation that means it:
 * - a certificate is revoked on its own (revoked_at, reason: an RFC 5280 CRLReason code), so
 *   a release revokes the old owner's certificates while the device stays active for the
 *   next owner; the CRL lists revoked certificates. A revoked device keeps its reason.
 *   Existing data: certificates of revoked devices take the device's time (reason 0,
 *   unspecified); certificates whose tenant no longer owns the device (released or
 *   transferred before) are revoked now with affiliationChanged (3).
 * - cas.crl_number: the last CRL number drawn, taken by one UPDATE ... RETURNING, so two
 *   servers never sign two CRLs with one number.
 * - rate_buckets: token buckets (GCRA: tat, the theoretical arrival time in ms) shared by
 *   every server, for claims per token and per address and for connectors' rates.
 */
static const char *const v6[] = {
    "ALTER TABLE certificates ADD COLUMN revoked_at BIGINT",
    "ALTER TABLE certificates ADD COLUMN reason BIGINT",
    "ALTER TABLE devices ADD COLUMN revoke_reason BIGINT",
    "UPDATE devices SET revoke_reason = 0 WHERE state = 'revoked'",
    "UPDATE certificates SET reason = 0, revoked_at = (SELECT d.revoked_at FROM devices d"
    " WHERE d.id = certificates.device_id)"
    " WHERE device_id IN (SELECT id FROM devices WHERE state = 'revoked')",
    "UPDATE certificates SET reason = 3, revoked_at = @NOW@"
    " WHERE revoked_at IS NULL AND tenant_id <> COALESCE((SELECT b.owner_id FROM devices d"
    " JOIN batches b ON b.id = d.batch_id WHERE d.id = certificates.device_id), 0)",
    "CREATE INDEX certificates_revoked ON certificates (tenant_id, revoked_at)",
    "ALTER TABLE cas ADD COLUMN crl_number BIGINT NOT NULL DEFAULT 0",
    "UPDATE cas SET crl_number = (SELECT c.number FROM crls c WHERE c.tenant_id = cas.tenant_id)"
    " WHERE tenant_id IN (SELECT tenant_id FROM crls)",
    "CREATE TABLE rate_buckets ("
    " name TEXT PRIMARY KEY,"
    " tat BIGINT NOT NULL)",
    "CREATE INDEX rate_buckets_tat ON rate_buckets (tat)",
    NULL,
};

/*
 * per-device outcomes of the outbox, and why a remove happens (issue 11):
 * - jobs.reason: NULL, or 'revoke' for a remove written by a device revoke (a connector then
 *   says so to its cloud, e.g. AWS IoT marks the certificate REVOKED rather than INACTIVE).
 * - job_devices: each device's last outcome in a job (a retried chunk overwrites it), for
 *   GET /api/v1/jobs/{id}/devices and the counts of GET /api/v1/jobs.
 */
static const char *const v7[] = {
    "ALTER TABLE jobs ADD COLUMN reason TEXT",
    "CREATE TABLE job_devices ("
    " job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
    " udid TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),"
    " message TEXT,"
    " at BIGINT NOT NULL,"
    " PRIMARY KEY (job_id, udid))",
    "CREATE INDEX job_devices_status ON job_devices (job_id, status)",
    NULL,
};

/*
 * console sessions (docs/console.md): a session is 32 random bytes given to the browser as a
 * cookie and stored only as their SHA-256 (hex), so a copy of the database signs no one in.
 * It lives for the token it was opened with: a lookup joins tokens, so revoking or expiring
 * the token ends its sessions at once. expires_at is absolute; the index serves the purge.
 */
static const char *const v8[] = {
    "CREATE TABLE sessions ("
    " id_hash TEXT PRIMARY KEY,"
    " token_id BIGINT NOT NULL REFERENCES tokens (id),"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL)",
    "CREATE INDEX sessions_expires ON sessions (expires_at)",
    NULL,
};

/*
 * the console's device search (GET /api/v1/devices?q=): chip serials by prefix, as a range
 * in byte order (@C@: PostgreSQL's "C" collation, which the query names too; SQLite compares
 * bytes already)
 */
static const char *const v9[] = {
    "CREATE INDEX devices_serial ON devices (serial@C@)",
    NULL,
};

/*
 * operational CA rotation (docs/operations.md): cas holds a tenant's current CA and its
 * generation (1 for the first); a rotation moves it to cas_retired with the two RFC 4210
 * 4.4 key-update certificates (new_with_old: the successor's key certified by this CA;
 * old_with_new: this CA's key certified by the successor), and the next generation takes its
 * place. Each certificate names the generation that issued it, and each generation has its
 * own CRL, numbered from its own counter.
 */
static const char *const v10[] = {
    "ALTER TABLE cas ADD COLUMN generation BIGINT NOT NULL DEFAULT 1",
    "ALTER TABLE certificates ADD COLUMN ca_generation BIGINT NOT NULL DEFAULT 1",

    "CREATE TABLE cas_retired ("
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " generation BIGINT NOT NULL,"
    " cert @BLOB@ NOT NULL,"
    " key_uri TEXT NOT NULL,"
    " crl_number BIGINT NOT NULL,"
    " new_with_old @BLOB@ NOT NULL,"
    " old_with_new @BLOB@ NOT NULL,"
    " retired_at BIGINT NOT NULL,"
    " PRIMARY KEY (tenant_id, generation))",

    "CREATE TABLE ca_crls ("
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " generation BIGINT NOT NULL,"
    " number BIGINT NOT NULL,"
    " revoked BIGINT NOT NULL,"
    " last_revoked_at BIGINT NOT NULL,"
    " this_update BIGINT NOT NULL,"
    " der @BLOB@ NOT NULL,"
    " PRIMARY KEY (tenant_id, generation))",
    "INSERT INTO ca_crls (tenant_id, generation, number, revoked, last_revoked_at,"
    " this_update, der) SELECT tenant_id, 1, number, revoked, last_revoked_at, this_update, der"
    " FROM crls",
    "DROP TABLE crls",
    "DROP INDEX certificates_revoked",
    "CREATE INDEX certificates_revoked ON certificates (tenant_id, ca_generation, revoked_at)",
    NULL,
};

/*
 * batches sent in pages (docs/api.md "Uploads"): an upload reserves its batch at once, in
 * state 'uploading', without owner or claim code; each page's devices are stored under it as
 * the page arrives, and the commit turns the batch 'complete' in one short transaction, which
 * is when it becomes visible. An abort or an expired upload deletes the batch and its devices.
 * upload_pages records each page received (its entries and the SHA-256 of its body), so a page
 * sent again is recognised. The serial index becomes unique with the batch: it refuses a
 * uniqueId twice in one batch across pages, as the checks of one whole manifest did within
 * it, and still serves the search by serial prefix (one index to write per device, not two).
 */
static const char *const v11[] = {
    "ALTER TABLE batches ADD COLUMN state TEXT NOT NULL DEFAULT 'complete'"
    " CHECK (state IN ('uploading', 'complete'))",
    "DROP INDEX devices_serial",
    "CREATE UNIQUE INDEX devices_serial ON devices (serial@C@, batch_id)",

    "CREATE TABLE uploads ("
    " id @ID@,"
    " ref TEXT NOT NULL UNIQUE,"
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " batch_id BIGINT NOT NULL UNIQUE REFERENCES batches (id),"
    " kind TEXT NOT NULL CHECK (kind IN ('publish', 'import')),"
    " page_size BIGINT NOT NULL,"
    " expected BIGINT,"
    " claim_sha256 TEXT,"
    " descriptor_sha256 TEXT,"
    " trust_id BIGINT REFERENCES vendor_trust (id),"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL)",
    "CREATE INDEX uploads_expiry ON uploads (expires_at)",

    "CREATE TABLE upload_pages ("
    " upload_id BIGINT NOT NULL REFERENCES uploads (id),"
    " page BIGINT NOT NULL,"
    " entries BIGINT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " received_at BIGINT NOT NULL,"
    " PRIMARY KEY (upload_id, page))",
    NULL,
};

/*
 * TPM devices (docs/tpm.md): a device registered by its TPM's EK certificate is of kind 'tpm'
 * (its cert is the EK certificate, its UDID the SHA-256 of the EK's SubjectPublicKeyInfo);
 * every device before is a chip.
 */
static const char *const v12[] = {
    "ALTER TABLE devices ADD COLUMN kind TEXT NOT NULL DEFAULT 'chip'"
    " CHECK (kind IN ('chip', 'tpm'))",
    NULL,
};

/*
 * TPM enrollment by credential activation (docs/tpm.md): the activations handed out and not
 * yet answered. ref is the id the device is given; the secret is kept only as its SHA-256;
 * csr is the device's PKCS#10 request (DER), issued to once the secret comes back. A device
 * has at most one pending activation. A row is deleted when it is answered, right or wrong,
 * and when it has expired.
 */
static const char *const v13[] = {
    "CREATE TABLE tpm_activations ("
    " id @ID@,"
    " ref TEXT NOT NULL UNIQUE,"
    " device_id BIGINT NOT NULL UNIQUE REFERENCES devices (id),"
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " ak_name TEXT NOT NULL,"
    " secret_sha256 TEXT NOT NULL,"
    " csr @BLOB@ NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL)",
    "CREATE INDEX tpm_activations_expiry ON tpm_activations (expires_at)",
    NULL,
};

/*
 * The chain of custody of a batch (docs/custody.md): one signed ownership record per change
 * of owner, seq 1, 2, ... per batch. record is the JWS (general JSON serialization) as served;
 * payload_sha256 is the hex SHA-256 of its payload, which the next record names as prev;
 * manifest_sha256 is the batch's manifest hash the records repeat; new_owner is the payload's
 * newOwner (JSON), which the next record names as its previousOwner.
 */
static const char *const v14[] = {
    "CREATE TABLE custody ("
    " id @ID@,"
    " batch_id BIGINT NOT NULL REFERENCES batches (id),"
    " seq BIGINT NOT NULL,"
    " event TEXT NOT NULL,"
    " record TEXT NOT NULL,"
    " payload_sha256 TEXT NOT NULL,"
    " manifest_sha256 TEXT NOT NULL,"
    " new_owner TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " UNIQUE (batch_id, seq))",
    NULL,
};

/*
 * clone detection (docs/clone-detection.md): each tenant's policy (JSON, absent: the
 * defaults), where its devices were seen (EST and product clouds' seen reports, whose ids
 * are kept a day so that a report sent twice counts once), and the suspicions raised. A
 * notice to a webhook connector is a job with suspicion_id set; its action stays 'add'
 * because jobs.action's CHECK predates notices, and a notice changes no ACL. Certificates
 * gain the SHA-256 of their DER (hex), by which sightings name them; those issued before
 * have none, so the superseded-certificate rule does not know them.
 */
static const char *const v15[] = {
    "CREATE TABLE clone_policies ("
    " tenant_id BIGINT PRIMARY KEY REFERENCES tenants (id),"
    " policy TEXT NOT NULL)",

    "CREATE TABLE sightings ("
    " id @ID@,"
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " device_id BIGINT NOT NULL REFERENCES devices (id),"
    " source TEXT NOT NULL,"
    " origin TEXT NOT NULL,"
    " first_ms BIGINT NOT NULL,"
    " last_ms BIGINT NOT NULL,"
    " count BIGINT NOT NULL,"
    " cert_sha256 TEXT NOT NULL)",

    "CREATE INDEX sightings_device ON sightings (device_id, last_ms)",

    "CREATE TABLE sighting_reports ("
    " connector_id BIGINT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,"
    " report TEXT NOT NULL,"
    " received_at BIGINT NOT NULL,"
    " PRIMARY KEY (connector_id, report))",

    "CREATE TABLE suspicions ("
    " id @ID@,"
    " tenant_id BIGINT NOT NULL REFERENCES tenants (id),"
    " device_id BIGINT NOT NULL REFERENCES devices (id),"
    " rule TEXT NOT NULL,"
    " detail TEXT NOT NULL,"
    " quarantined BIGINT NOT NULL,"
    " at BIGINT NOT NULL)",

    "CREATE INDEX suspicions_device ON suspicions (device_id, rule, at)",
    "CREATE INDEX suspicions_tenant ON suspicions (tenant_id, id)",

    "ALTER TABLE jobs ADD COLUMN suspicion_id BIGINT REFERENCES suspicions (id)",

    "ALTER TABLE certificates ADD COLUMN sha256 TEXT",
    "CREATE INDEX certificates_sha256 ON certificates (device_id, sha256)",
    NULL,
};

static const struct migration migrations[] = {
    {1, v1},
    {2, v2},
    {3, v3},
    {4, v4},
    {5, v5},
    {6, v6},
    {7, v7},
    {8, v8},
    {9, v9},
    {10, v10},
    {11, v11},
    {12, v12},
    {13, v13},
    {14, v14},
    {15, v15},
};

static int
expand(const char *sql, enum db_kind kind, struct dynbuf *out)
{
	const char *id = kind == DB_SQLITE ? "INTEGER PRIMARY KEY AUTOINCREMENT"
					   : "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY";
	const char *blob = kind == DB_SQLITE ? "BLOB" : "BYTEA";
	const char *now = kind == DB_SQLITE ? "CAST(strftime('%s', 'now') AS INTEGER)"
					    : "CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)";
	int rc = 0;

	dynbuf_reset(out);
	for (const char *p = sql; *p != '\0' && rc == 0;) {
		if (strncmp(p, "@ID@", 4) == 0) {
			rc = dynbuf_addstr(out, id);
			p += 4;
		} else if (strncmp(p, "@BLOB@", 6) == 0) {
			rc = dynbuf_addstr(out, blob);
			p += 6;
		} else if (strncmp(p, "@NOW@", 5) == 0) {
			rc = dynbuf_addstr(out, now);
			p += 5;
		} else if (strncmp(p, "@C@", 3) == 0) {
			rc = dynbuf_addstr(out, kind == DB_SQLITE ? "" : " COLLATE \"C\"");
			p += 3;
		} else {
			rc = dynbuf_add(out, p++, 1);
		}
	}
	return rc;
}

int
store_schema_latest(void)
{
	return migrations[sizeof(migrations) / sizeof(migrations[0]) - 1].version;
}

/* A newer devid migrated the database: this one would misread what it does not know. */
static int
newer_schema(int have, struct devid_error *e)
{
	return devid_error_set(e, DEVID_ECONFLICT,
	    "the database schema is at version %d, newer than this devid knows (%d): run a devid"
	    " at least as new as the one that migrated it",
	    have, store_schema_latest());
}

int
store_schema_check(struct db *db, struct devid_error *e)
{
	int have, rc;

	if ((rc = store_schema_version(db, &have, e)) != 0)
		return rc;
	if (have > store_schema_latest())
		return newer_schema(have, e);
	return 0;
}

int
store_schema_version(struct db *db, int *version, struct devid_error *e)
{
	struct db_rows *r;
	int rc;

	*version = 0;
	rc =
	    db_query(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0, &r, e);
	if (rc != 0)
		return rc;
	*version = (int)db_rows_int(r, 0, 0);
	db_rows_free(r);
	return 0;
}

int
store_migrate(struct db *db, struct devid_error *e)
{
	struct dynbuf sql;
	int have, rc;

	dynbuf_init(&sql, 1 << 16);
	rc = db_exec(db,
	    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY,"
	    " applied_at BIGINT NOT NULL)",
	    NULL, 0, NULL, e);
	if (rc != 0 || (rc = db_begin(db, e)) != 0)
		goto out;
	/* two servers starting at once: the second waits, then finds nothing to do */
	if (db_get_kind(db) == DB_POSTGRES &&
	    (rc = db_exec(db, "SELECT pg_advisory_xact_lock(7271)", NULL, 0, NULL, e)) != 0)
		goto rollback;
	if ((rc = store_schema_version(db, &have, e)) != 0)
		goto rollback;
	if (have > store_schema_latest()) {
		rc = newer_schema(have, e);
		goto rollback;
	}
	for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
		const struct migration *m = &migrations[i];
		struct db_param p[] = {DB_INT(m->version), DB_INT(time(NULL))};

		if (m->version <= have)
			continue;
		for (const char *const *s = m->sql; *s != NULL; s++) {
			if ((rc = expand(*s, db_get_kind(db), &sql)) != 0 ||
			    (rc = db_exec(db, dynbuf_str(&sql), NULL, 0, NULL, e)) != 0) {
				devid_error_prefix(e, "migration %d", m->version);
				goto rollback;
			}
		}
		rc =
		    db_exec(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
			p, 2, NULL, e);
		if (rc != 0)
			goto rollback;
	}
	rc = db_commit(db, e);
	goto out;
rollback:
	db_rollback(db);
out:
	dynbuf_release(&sql);
	return rc;
}
