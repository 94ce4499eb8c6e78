/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h - devid's storage: a pool of database connections, versioned migrations, and the
 * records of the domain (tenants, tokens, vendor trust, batches, devices, audit).
 *
 * Every function taking a struct db * runs on that connection; the caller owns transactions
 * (db_begin/db_commit), so a state change, its audit record and its outbox jobs commit
 * together. Times are Unix seconds.
 */
#ifndef DEVID_STORE_H
#define DEVID_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"
#include "lib/limits.h"
#include "lib/sighting.h"

#define UDID_HEX_LEN_MAX 64
#include "store/db.h"

struct store;

/* the most connections one store keeps open */
#define STORE_MAX_CONNS 64
/*
 * SQLite pools (more than one connection): a commit that leaves the write-ahead log over this
 * many pages (32 MiB) wakes the pool's checkpointer, which copies the log into the database
 * on its own connection and thread, so that no writer waits for it (db_on_wal_commit).
 */
#define STORE_WAL_PAGES 8000

/* Opens nconns (1 to STORE_MAX_CONNS) connections to url and brings the schema up to date. */
int store_open(const char *url, int nconns, struct store **out, struct devid_error *e);
void store_close(struct store *s);
/* Takes a free connection (waits while all are in use); give it back with store_release. */
struct db *store_acquire(struct store *s);
void store_release(struct store *s, struct db *db);

/* The connection pool as it is now, and since store_open: for /metrics. */
struct store_pool_stats {
	int size; /* connections */
	int in_use; /* acquired, not yet released */
	uint64_t waits; /* acquisitions that found every connection in use */
	uint64_t wait_ns; /* the time those spent waiting */
	uint64_t checkpoints; /* SQLite pools: checkpoints of the write-ahead log run */
};
void store_pool_stats(struct store *s, struct store_pool_stats *out);

/*
 * Applies the migrations the database lacks, in one transaction. Safe to run concurrently.
 * DEVID_ECONFLICT, changing nothing, when the database is at a version newer than
 * store_schema_latest(): a newer devid migrated it.
 */
int store_migrate(struct db *db, struct devid_error *e);
/* The newest schema version this build knows. */
int store_schema_latest(void);
/* For readers that do not migrate: DEVID_ECONFLICT if the schema is newer than that. */
int store_schema_check(struct db *db, struct devid_error *e);
/* The schema version the database is at. */
int store_schema_version(struct db *db, int *version, struct devid_error *e);

enum tenant_kind { TENANT_VENDOR, TENANT_OEM };
enum role { ROLE_VENDOR, ROLE_ADMIN, ROLE_OPERATOR };

struct tenant {
	int64_t id;
	char name[MAX_NAME_LEN + 1];
	enum tenant_kind kind;
};

const char *tenant_kind_name(enum tenant_kind k);
int tenant_kind_parse(const char *s, enum tenant_kind *out);
const char *role_name(enum role r);
int role_parse(const char *s, enum role *out);

/* A new tenant; DEVID_ECONFLICT if the name is taken. */
int store_tenant_add(
    struct db *db, const char *name, enum tenant_kind kind, int64_t *id, struct devid_error *e);
/* DEVID_ENOTFOUND if there is none. */
int store_tenant_get(struct db *db, const char *name, struct tenant *t, struct devid_error *e);

int store_tenant_by_id(struct db *db, int64_t id, struct tenant *t, struct devid_error *e);

/*
 * Stores a token by its SHA-256 (hex); the token itself is never stored. name NULL names it
 * token-<id>; expires_at 0: never. DEVID_ECONFLICT if the tenant has a token of that name.
 */
int store_token_add(struct db *db, int64_t tenant_id, enum role role, const char *sha256_hex,
    const char *name, int64_t expires_at, int64_t *id, struct devid_error *e);

/* Who a token is: its tenant, role, id and name. */
struct token_rec {
	struct tenant tenant;
	enum role role;
	int64_t id;
	char name[MAX_NAME_LEN + 1];
	int64_t last_used_at; /* 0: never */
};

/*
 * The token of a hash, if it is neither revoked nor expired at `now`; DEVID_ENOTFOUND
 * otherwise (unknown, revoked and expired are not told apart).
 */
int store_token_lookup(struct db *db, const char *sha256_hex, int64_t now, struct token_rec *tok,
    struct devid_error *e);

/* Trusted vendor root and manifest signer (PEM) for a vendor tenant. */
int store_trust_add(struct db *db, int64_t vendor_id, const char *root_pem, const char *signer_pem,
    const char *signer_sha256_hex, struct devid_error *e);

struct trust_rec {
	char *root_pem, *signer_pem; /* owned by the array, freed by store_trust_list_free */
	int64_t vendor_id;
	int64_t id;
	int64_t owner_id; /* 0: the vendor's own trust; else the OEM that added it for imports */
	char vendor[MAX_NAME_LEN + 1]; /* the name of vendor_id's tenant */
	char signer_sha256[65];
	int64_t created_at, removed_at; /* removed_at 0: in force */
};

/*
 * The trust of one vendor, or of every vendor when vendor_id is 0, removed signers included
 * (removed_at tells them), by id.
 */
int store_trust_list(
    struct db *db, int64_t vendor_id, struct trust_rec **out, size_t *n, struct devid_error *e);
void store_trust_list_free(struct trust_rec *t, size_t n);

/* --- issue 10: tenants, tokens and trust that can be listed and undone (store_token.c,
 * store_trust.c) ---------------------------------------------------------------------- */

struct tenant_info {
	struct tenant t;
	int64_t created_at;
};
/* Every tenant, by name; free(*out). */
int store_tenant_list(struct db *db, struct tenant_info **out, size_t *n, struct devid_error *e);

/* A token as it may be shown: never its secret nor its hash. Times 0: not set. */
struct token_info {
	int64_t id, tenant_id;
	char name[MAX_NAME_LEN + 1];
	enum role role;
	int64_t created_at, expires_at, last_used_at, revoked_at;
};
/* A tenant's tokens, by id; free(*out). */
int store_token_list(
    struct db *db, int64_t tenant_id, struct token_info **out, size_t *n, struct devid_error *e);
/*
 * One token of a tenant, by id (id > 0) or else by name; DEVID_ENOTFOUND when the tenant
 * has none such (another tenant's token is not found either).
 */
int store_token_find(struct db *db, int64_t tenant_id, int64_t id, const char *name,
    struct token_info *t, struct devid_error *e);
/* Revokes a token at `now`; DEVID_ENOTFOUND if it is not the tenant's or already revoked. */
int store_token_revoke(
    struct db *db, int64_t tenant_id, int64_t id, int64_t now, struct devid_error *e);
/*
 * Records a use at `now` unless one was recorded in the last min_interval seconds (the
 * caller checks last_used_at first, so most requests do not write at all).
 */
int store_token_touch(
    struct db *db, int64_t id, int64_t now, int64_t min_interval, struct devid_error *e);

/*
 * Adds a trusted root and manifest signer for vendor_id's namespace; owner_id 0 for a devid
 * vendor's own trust, the OEM tenant (= vendor_id) for its import trust. A signer removed
 * before is put in force again (same id, *readded true, root replaced). DEVID_ECONFLICT if
 * the signer is in force for that namespace already.
 */
int store_trust_put(struct db *db, int64_t vendor_id, int64_t owner_id, const char *root_pem,
    const char *signer_pem, const char *signer_sha256_hex, int64_t *id, bool *readded,
    struct devid_error *e);
/* One trust record; DEVID_ENOTFOUND if none. Release with store_trust_list_free(t, 1). */
int store_trust_get(struct db *db, int64_t id, struct trust_rec **out, struct devid_error *e);
/* Retires a signer at `now`; DEVID_ENOTFOUND if there is no such trust in force. */
int store_trust_remove(struct db *db, int64_t id, int64_t now, struct devid_error *e);
/* Records which trust admitted a batch (inside the ingest's transaction). */
int store_batch_set_trust(struct db *db, int64_t batch_id, int64_t trust_id, struct devid_error *e);
/*
 * The trust that admitted a batch; DEVID_ENOTFOUND when it is not known (a batch older than
 * schema v5). Release with store_trust_list_free(t, 1).
 */
int store_batch_trust(
    struct db *db, int64_t batch_id, struct trust_rec **out, struct devid_error *e);

enum batch_source { BATCH_VENDOR, BATCH_IMPORT };

struct batch_rec {
	int64_t id;
	int64_t vendor_id;
	char vendor[MAX_NAME_LEN + 1];
	char name[MAX_NAME_LEN + 1];
	char part_number[MAX_TEXT_FIELD_LEN + 1];
	int64_t count;
	char claim_sha256[65]; /* "" when there is no claim code (an import) */
	char transfer_sha256[65]; /* "" unless a transfer is pending */
	enum batch_source source;
	int64_t owner_id; /* 0: unclaimed */
	int64_t created_at, claimed_at;
	int64_t active, revoked; /* its devices: store_batch_list and store_batch_counts */
};

/* A new batch; DEVID_ECONFLICT if the vendor already has a batch of that name. */
int store_batch_insert(struct db *db, const struct batch_rec *b, const char *descriptor,
    int64_t *id, struct devid_error *e);
/* A complete batch; DEVID_ENOTFOUND if there is none (or it is still being uploaded). */
int store_batch_get(struct db *db, const char *vendor, const char *name, struct batch_rec *b,
    struct devid_error *e);

/*
 * Makes tenant owner_id the owner of an unclaimed batch (or, with transfer set, of a batch in
 * transfer, which then takes the transfer code as its claim code). DEVID_ECONFLICT when
 * another request changed the batch first.
 */
int store_batch_set_owner(
    struct db *db, int64_t batch_id, int64_t owner_id, bool transfer, struct devid_error *e);
/* Starts a transfer: a new one-time code hash; the owner stays until it is used. */
int store_batch_set_transfer(
    struct db *db, int64_t batch_id, const char *sha256_hex, struct devid_error *e);
/* Returns the batch to unclaimed and cancels a transfer. */
int store_batch_release(struct db *db, int64_t batch_id, struct devid_error *e);

/* The last custody record of a batch (docs/custody.md), as store_custody_last reads it. */
struct custody_rec {
	int64_t seq; /* 0: the batch has none */
	char payload_sha256[65]; /* 64 zeros when there is none */
	char manifest_sha256[65]; /* "" when there is none */
	char *new_owner; /* its payload's newOwner (JSON), malloc'd; NULL when there is none */
};
void custody_rec_release(struct custody_rec *c);

int store_custody_last(
    struct db *db, int64_t batch_id, struct custody_rec *c, struct devid_error *e);
/*
 * Appends record c->seq of a batch (its JWS text and event); DEVID_ECONFLICT when that seq
 * is taken (a racing change of owner).
 */
int store_custody_insert(struct db *db, int64_t batch_id, const struct custody_rec *c,
    const char *event, const char *record, struct devid_error *e);
/* The records of a batch in seq order: column record (text) in *rows (db_rows_free). */
int store_custody_list(
    struct db *db, int64_t batch_id, struct db_rows **rows, struct devid_error *e);
/*
 * Calls fn with each UDID of a batch in ascending order, until fn returns nonzero (which is
 * returned). In constant memory whatever the batch's size: the UDIDs are sorted once into a
 * temporary table of this connection, numbered in order, and read from it a page at a time;
 * the table is dropped before returning. Call it inside a transaction.
 */
int store_batch_udids_each(struct db *db, int64_t batch_id,
    int (*fn)(void *arg, const char *udid, size_t len, struct devid_error *e), void *arg,
    struct devid_error *e);

/*
 * The vendor and batch a UDID is stored in, and whether that batch is still being uploaded
 * (uploading may be NULL); DEVID_ENOTFOUND if none.
 */
int store_device_where(struct db *db, const char *udid, char vendor[MAX_NAME_LEN + 1],
    char batch[MAX_NAME_LEN + 1], bool *uploading, struct devid_error *e);

struct device_rec {
	int64_t id;
	char udid[UDID_HEX_LEN_MAX + 1];
	char serial[MAX_SERIAL_LEN + 1];
	char vendor[MAX_NAME_LEN + 1];
	char batch[MAX_NAME_LEN + 1];
	bool tpm; /* kind 'tpm' */
	bool revoked;
	int64_t revoked_at;
	int revoke_reason; /* an RFC 5280 CRLReason code when revoked */
};

/*
 * A device search: devices whose UDID starts with udid_prefix (lowercase hex; NULL: none) or
 * whose serial starts with serial_prefix (1 to MAX_SERIAL_LEN bytes of printable ASCII, byte
 * for byte; NULL: none).
 */
struct device_search {
	const char *udid_prefix;
	const char *serial_prefix;
};

/*
 * Devices of batches owned by owner_id, by id after `after`, at most limit; vendor and batch
 * (both or neither), state ("active"/"revoked") and q filter when not NULL.
 */
int store_device_list(struct db *db, int64_t owner_id, const char *vendor, const char *batch,
    const char *state, const struct device_search *q, int64_t after, size_t limit,
    struct device_rec **out, size_t *n, struct devid_error *e);
/* One device of a batch owned by owner_id; DEVID_ENOTFOUND otherwise. */
int store_device_get(
    struct db *db, int64_t owner_id, const char *udid, struct device_rec *d, struct devid_error *e);
/* Marks a device revoked at `at` with an RFC 5280 CRLReason code (no change if it is). */
int store_device_revoke(
    struct db *db, int64_t device_id, int64_t at, int reason, struct devid_error *e);

/* Batches owned by owner_id, by id after `after`, at most limit, with their device counts. */
int store_batch_list(struct db *db, int64_t owner_id, int64_t after, size_t limit,
    struct batch_rec **out, size_t *n, struct devid_error *e);
/* Sets b->active and b->revoked: b->id's devices in each state. */
int store_batch_counts(struct db *db, struct batch_rec *b, struct devid_error *e);

/* --- the console's device view (docs/console.md) ---------------------------------------- */

/* The device's birth certificate: column cert (DER), one row. */
int store_device_cert(
    struct db *db, int64_t device_id, struct db_rows **rows, struct devid_error *e);
/*
 * The device's outcome in each of the tenant's jobs that carried it (its own jobs and its
 * batch's), newest first, at most limit: columns connector, type, action, status ("ok",
 * "failed", or NULL for a pending job without an outcome for it yet), job id, at (the
 * outcome's time, else the job's creation), message.
 */
int store_device_clouds(struct db *db, int64_t tenant_id, int64_t device_id, size_t limit,
    struct db_rows **rows, struct devid_error *e);
/*
 * The certificates the tenant's CA issued to the device, newest first, at most limit: columns
 * serial (hex), cert (DER), not_after, revoked_at (NULL: not revoked), reason.
 */
int store_device_certs(struct db *db, int64_t tenant_id, int64_t device_id, size_t limit,
    struct db_rows **rows, struct devid_error *e);

/*
 * The stored entries of a batch for manifest files, by device id after `after`: columns
 * udid, serial, cert (DER), entry (JSON), in that order, in *rows (db_rows_free).
 */
int store_manifest_page(struct db *db, int64_t batch_id, int64_t after, size_t limit,
    struct db_rows **rows, struct devid_error *e);

/* --- provisioning ---------------------------------------------------------------------- */

struct connector_rec {
	int64_t id, tenant_id;
	char name[MAX_NAME_LEN + 1];
	char type[32];
	bool auto_mode;
	char *config; /* JSON, owned: connector_rec_release */
};

void connector_rec_release(struct connector_rec *c);
/* Creates or replaces a tenant's connector; *created tells which. */
int store_connector_put(struct db *db, int64_t tenant_id, const char *name, const char *type,
    bool auto_mode, const char *config, bool *created, struct devid_error *e);
int store_connector_get(struct db *db, int64_t tenant_id, const char *name, struct connector_rec *c,
    struct devid_error *e);
/* A tenant's connectors (only the auto ones with auto_only), by name; free with _list_free. */
int store_connector_list(struct db *db, int64_t tenant_id, bool auto_only,
    struct connector_rec **out, size_t *n, struct devid_error *e);
void store_connector_list_free(struct connector_rec *c, size_t n);
int store_connector_delete(
    struct db *db, int64_t tenant_id, const char *name, struct devid_error *e);

struct job_rec {
	int64_t id, tenant_id, connector_id;
	char connector[MAX_NAME_LEN + 1];
	bool remove;
	int64_t batch_id; /* 0: a single device */
	char udid[UDID_HEX_LEN_MAX + 1];
	char state[8]; /* pending, done, dead */
	int64_t attempts, next_at, cursor, delivered, total;
	char last_error[256];
	bool revoke; /* a remove written by a device revoke (jobs.reason 'revoke') */
	int64_t suspicion_id; /* not 0: a notice of this suspicion (store_job_add_notice) */
	int64_t ok, failed; /* devices whose last outcome in this job is ok / failed */
};

/* A new pending job, due now: a whole batch (batch_id) or one device (udid). */
int store_job_add(struct db *db, int64_t tenant_id, int64_t connector_id, bool remove,
    int64_t batch_id, const char *udid, int64_t total, struct devid_error *e);
/*
 * Takes the oldest due pending job for lease seconds (another worker, here or on another
 * server, will not take it meanwhile; if this one dies, the job is due again after the
 * lease). DEVID_ENOTFOUND when none is due.
 */
int store_job_lease(
    struct db *db, int64_t now, int64_t lease, struct job_rec *j, struct devid_error *e);
/* A chunk was delivered: the job moves on to cursor (done when nothing is left). */
int store_job_progress(
    struct db *db, int64_t id, int64_t cursor, int64_t delivered, bool done, struct devid_error *e);
/* The job waits until next_at without counting an attempt (its cloud's rate limit). */
int store_job_defer(struct db *db, int64_t id, int64_t next_at, struct devid_error *e);
/*
 * A worker still delivering job id keeps its lease: next_at moves from held (the value this
 * worker's store_job_lease or last renewal set) to next_at. DEVID_ECONFLICT when the job's
 * next_at is no longer held (the lease ran out and another worker took the job, or the job
 * moved on): the worker then stops, as the job is no longer its own.
 */
int store_job_renew(
    struct db *db, int64_t id, int64_t held, int64_t next_at, struct devid_error *e);
/* A delivery failed: the next attempt at next_at, or dead. */
int store_job_fail(struct db *db, int64_t id, int64_t attempts, int64_t next_at, bool dead,
    const char *error, struct devid_error *e);
/* Stops the pending add jobs of a batch (it was released): they end dead, "released". */
int store_job_cancel_batch(struct db *db, int64_t batch_id, struct devid_error *e);
/*
 * The pending and dead jobs of every tenant by connector type, for /metrics: rows (type,
 * state, count). One query over the jobs_due index; done jobs, which only grow, are left out.
 */
int store_job_counts(struct db *db, struct db_rows **rows, struct devid_error *e);
/* A tenant's jobs, newest first (state NULL: all), at most limit. */
int store_job_list(struct db *db, int64_t tenant_id, const char *state, size_t limit,
    struct job_rec **out, size_t *n, struct devid_error *e);
/*
 * The devices a job delivers next, by id after `after`: columns id, udid, serial, cert (DER),
 * batch name, kind ('chip' or 'tpm'); a batch's or the one device's active devices (all of
 * them for a remove), so an add retried after a revoke cannot put the device back.
 */
int store_job_devices(struct db *db, const struct job_rec *j, int64_t after, size_t limit,
    struct db_rows **rows, struct devid_error *e);

/* --- issue 11: why a remove happens, per-device outcomes, leases that last ------------- */

/* store_job_add with a reason: NULL, or JOB_REASON_REVOKE for a remove caused by a revoke. */
#define JOB_REASON_REVOKE "revoke"
int store_job_add_reason(struct db *db, int64_t tenant_id, int64_t connector_id, bool remove,
    int64_t batch_id, const char *udid, int64_t total, const char *reason, struct devid_error *e);
/* One job of a tenant, by id: DEVID_ENOTFOUND for a missing job and another tenant's alike. */
int store_job_get(
    struct db *db, int64_t tenant_id, int64_t id, struct job_rec *j, struct devid_error *e);
/*
 * A device's outcome in a job, replacing the one before (job, udid): status "ok" or "failed",
 * message (may be NULL) at most 255 bytes are kept.
 */
int store_job_result(struct db *db, int64_t job_id, const char *udid, const char *status,
    const char *message, int64_t at, struct devid_error *e);
/*
 * The devices of a job with their outcome, by udid after `after` ("" from the start), status
 * NULL for all: columns udid, status, message, at.
 */
int store_job_results(struct db *db, int64_t job_id, const char *status, const char *after,
    size_t limit, struct db_rows **rows, struct devid_error *e);
struct audit_rec {
	int64_t tenant_id;
	int64_t seq;
	int64_t at;
	const char *actor, *action, *object, *detail; /* detail: compact JSON */
	char prev_hash[65], hash[65];
};

/*
 * The last record of a tenant's audit chain (seq 0 and an all-zero hash when empty), locking
 * the chain until the transaction ends so appends are serialized.
 */
int store_audit_last(
    struct db *db, int64_t tenant_id, int64_t *seq, char hash[65], struct devid_error *e);
int store_audit_insert(struct db *db, const struct audit_rec *a, struct devid_error *e);
/*
 * Up to limit records of a tenant with seq > after, in order. The strings of each record
 * point into *rows, which the caller frees with db_rows_free after using them.
 */
int store_audit_list(struct db *db, int64_t tenant_id, int64_t after, size_t limit,
    struct audit_rec **out, size_t *n, struct db_rows **rows, struct devid_error *e);

/* --- operational certificates -------------------------------------------------------------- */

struct ca_rec {
	int64_t tenant_id;
	int64_t generation; /* 1 for a tenant's first CA, one more at each rotation */
	uint8_t *cert; /* DER, malloc'd: ca_rec_release */
	size_t cert_len;
	char *key_uri; /* malloc'd; may hold a PIN: never log it */
	int validity_days; /* of the certificates it issues; 0 for a retired CA */
};
void ca_rec_release(struct ca_rec *c);

/* A tenant's CA; DEVID_ECONFLICT if it has one. */
int store_ca_add(struct db *db, int64_t tenant_id, const uint8_t *cert, size_t len,
    const char *key_uri, int validity_days, struct devid_error *e);
/* DEVID_ENOTFOUND if the tenant has no CA. */
int store_ca_get(struct db *db, int64_t tenant_id, struct ca_rec *c, struct devid_error *e);
int store_ca_set_validity(struct db *db, int64_t tenant_id, int days, struct devid_error *e);
/*
 * Retires the tenant's current CA, generation `current` (with the key-update certificates:
 * DER of the successor's key certified by it, and of its key certified by the successor) and
 * makes cert/key_uri generation current + 1. DEVID_ECONFLICT if the current generation is no
 * longer `current` (another rotation came first).
 */
int store_ca_rotate(struct db *db, int64_t tenant_id, int64_t current, const uint8_t *cert,
    size_t len, const char *key_uri, const uint8_t *new_with_old, size_t nwo_len,
    const uint8_t *old_with_new, size_t own_len, struct devid_error *e);
/* A retired CA by generation; DEVID_ENOTFOUND if the tenant has no such retired CA. */
int store_ca_retired_get(
    struct db *db, int64_t tenant_id, int64_t generation, struct ca_rec *c, struct devid_error *e);
/*
 * The retired CAs of the tenant that issued certificates still unexpired at `now`, newest
 * first: columns generation, cert, new_with_old, old_with_new (DER) in *rows.
 */
int store_ca_retired_live(
    struct db *db, int64_t tenant_id, int64_t now, struct db_rows **rows, struct devid_error *e);

/* The quota: max < 0 means none. */
int store_quota_set(struct db *db, int64_t tenant_id, int64_t max, struct devid_error *e);
int store_quota_get(
    struct db *db, int64_t tenant_id, int64_t *max, int64_t *used, struct devid_error *e);
/*
 * Counts the device as one of the tenant's certificate holders unless it is one already,
 * within the quota: 0, or DEVID_ELIMIT (nothing changed). Check and count are one UPDATE,
 * so concurrent enrollments never exceed the quota.
 */
int store_quota_take(struct db *db, int64_t tenant_id, int64_t device_id, struct devid_error *e);

/* A device as EST sees it, by UDID (the hash of the key both its certificates carry). */
struct est_device {
	int64_t id;
	int64_t owner_id; /* 0: not claimed */
	int64_t vendor_id;
	bool revoked;
	bool tpm; /* kind 'tpm': the birth certificate is an EK certificate */
	char serial[MAX_SERIAL_LEN + 1];
	uint8_t *cert; /* the birth certificate, DER, malloc'd: est_device_release */
	size_t cert_len;
	char *entry; /* its manifest entry (JSON, with the vendor chain in x5c), malloc'd */
};
void est_device_release(struct est_device *d);
/*
 * Only its owner (0: none) and whether it is revoked, by device id. On PostgreSQL the device
 * and batch rows stay share-locked until the transaction ends, so a revoke or release waits
 * for an issuance that checked them (and then revokes its certificate) or is seen by it.
 */
int store_device_owner(
    struct db *db, int64_t device_id, int64_t *owner_id, bool *revoked, struct devid_error *e);
/*
 * The device, and in the same query its owner's name (owner_name, "" when not claimed) and
 * the owner's CA (ca->cert NULL when it has none): one round trip per enrollment.
 */
int store_est_device(struct db *db, const char *udid, struct est_device *d,
    char owner_name[MAX_NAME_LEN + 1], struct ca_rec *ca, struct devid_error *e);

/* An issued certificate; serial is lowercase hex. DEVID_ECONFLICT if the serial exists. */
int store_cert_add(struct db *db, int64_t tenant_id, int64_t generation, int64_t device_id,
    const char *serial, const uint8_t *der, size_t len, int64_t not_after, struct devid_error *e);
/* Whether the tenant issued serial to device_id, and whether that certificate is revoked. */
int store_cert_issued(struct db *db, int64_t tenant_id, int64_t device_id, const char *serial,
    bool *issued, bool *revoked, struct devid_error *e);

/*
 * The unexpired revoked certificates one CA generation of the tenant issued: columns serial (hex),
 * revoked_at, reason (an RFC 5280 CRLReason code) in *rows; and, cheaper, their count and latest
 * revocation time (the CRL cache key).
 */
int store_crl_entries(struct db *db, int64_t tenant_id, int64_t generation, int64_t now,
    struct db_rows **rows, struct devid_error *e);
int store_crl_state(struct db *db, int64_t tenant_id, int64_t generation, int64_t now,
    int64_t *count, int64_t *last_revoked_at, struct devid_error *e);

struct crl_rec {
	int64_t number, revoked, last_revoked_at, this_update;
	uint8_t *der; /* malloc'd: free() */
	size_t len;
};
/* The cached CRL; DEVID_ENOTFOUND if none yet. */
int store_crl_get(
    struct db *db, int64_t tenant_id, int64_t generation, struct crl_rec *c, struct devid_error *e);
/*
 * Caches a CRL unless one with a higher number is cached already (another server signed a
 * newer one meanwhile): *stored says which.
 */
int store_crl_put(struct db *db, int64_t tenant_id, int64_t generation, const struct crl_rec *c,
    bool *stored, struct devid_error *e);

/* --- revocation, CRL numbers and shared rate limits (schema v7) ------------------------- */

/*
 * The next CRL number of one CA generation of the tenant (current or retired), drawn by one UPDATE
 * ... RETURNING outside any transaction of the caller's: unique and increasing across every server
 * of the database (a number drawn for a CRL that is then not stored is a gap, which RFC 5280 5.2.3
 * allows). DEVID_ENOTFOUND when the tenant has no such CA.
 */
int store_crl_number_next(
    struct db *db, int64_t tenant_id, int64_t generation, int64_t *number, struct devid_error *e);
/*
 * Revokes the unrevoked certificates the tenant holds for a device (device_id) or for every
 * device of a batch (batch_id, device_id 0), at `at` with an RFC 5280 CRLReason code; *n
 * (may be NULL) receives how many.
 */
int store_cert_revoke(struct db *db, int64_t tenant_id, int64_t device_id, int64_t batch_id,
    int64_t at, int reason, int64_t *n, struct devid_error *e);

/*
 * Takes one action from the token bucket `key` (store_ratelimit.c): burst actions at once,
 * one more every interval_ms. *wait_ms is 0 when taken, else the milliseconds until one more
 * would be allowed (the bucket is then unchanged). One statement: atomic across servers.
 */
int store_rate_take(struct db *db, const char *key, int64_t now_ms, int64_t interval_ms,
    int64_t burst, int64_t *wait_ms, struct devid_error *e);
/* Deletes the buckets that are full again at now_ms (they carry no state). */
int store_rate_prune(struct db *db, int64_t now_ms, struct devid_error *e);

/* --- console sessions (store_session.c, schema v8) --------------------------------------- */

/* A live session: the token it was opened with, as store_token_lookup finds it. */
struct session_rec {
	struct token_rec tok;
	/* the first 16 hex digits of the token's SHA-256: the token's rate-limit key */
	char token_key[17];
	int64_t expires_at;
};

/*
 * Stores a session by the SHA-256 (hex) of its secret, for token_id, from now until
 * expires_at; the secret itself is never stored. DEVID_ECONFLICT if the hash is stored.
 */
int store_session_add(struct db *db, const char *id_hash, int64_t token_id, int64_t now,
    int64_t expires_at, struct devid_error *e);
/*
 * The session of a hash if it is live at `now` and so is its token; DEVID_ENOTFOUND
 * otherwise (unknown, expired, its token revoked or expired: not told apart).
 */
int store_session_lookup(
    struct db *db, const char *id_hash, int64_t now, struct session_rec *s, struct devid_error *e);
/* Deletes a session; DEVID_ENOTFOUND if there is none of that hash. */
int store_session_delete(struct db *db, const char *id_hash, struct devid_error *e);
/*
 * Deletes the sessions no lookup finds at `now` any more: expired, or opened with a token
 * now revoked or expired. *n (may be NULL) receives how many.
 */
int store_session_purge(struct db *db, int64_t now, int64_t *n, struct devid_error *e);

/* --- uploads: a batch sent in pages (store_upload.c, schema v11) ------------------------- */

/*
 * An upload reserves its batch at once, in state 'uploading', with no owner and no claim
 * code; its devices are stored page by page under it. Nothing reaches such a batch:
 * store_batch_get and store_batch_list see only complete batches, and every other way in goes
 * through an owner (an OEM's devices, EST, deliveries) or a claim code. Only store_device_where
 * names it (a chip already in an upload). store_upload_commit makes it complete and visible in
 * the caller's transaction.
 */
enum upload_kind { UPLOAD_PUBLISH, UPLOAD_IMPORT };

/* The id an upload is known by outside: 32 lowercase hex digits, random. */
#define UPLOAD_REF_LEN 32

struct upload_rec {
	int64_t id;
	char ref[UPLOAD_REF_LEN + 1];
	int64_t tenant_id;
	int64_t batch_id;
	char batch[MAX_NAME_LEN + 1]; /* the batch's name, in the tenant's namespace */
	enum upload_kind kind;
	int64_t page_size; /* entries of every page but the last */
	int64_t expected; /* a publish: the descriptor's count; an import: 0 */
	char claim_sha256[65]; /* a publish: the batch's claim code hash, set on commit */
	/* a publish: SHA-256 of the descriptor's JWS compact serialization (RFC 7515 7.1),
	 * protected "." payload "." signature; "" for an import */
	char descriptor_sha256[65];
	int64_t trust_id; /* the trust that admits the entries; 0: not yet known (an import) */
	int64_t created_at, expires_at;
	/* received so far (store_upload_get, store_upload_find, store_upload_list): pages, the
	 * highest page number among them, entries */
	int64_t pages, last_page, entries;
};

const char *upload_kind_name(enum upload_kind k);

/*
 * Reserves batch b (b->vendor_id, name, part_number, count; descriptor may be NULL) in state
 * 'uploading' and records upload u for it (u->ref, tenant_id, kind, page_size, expected,
 * claim_sha256, descriptor_sha256, trust_id, created_at, expires_at); sets u->id and
 * u->batch_id. DEVID_ECONFLICT when the tenant has a batch of that name, complete or being
 * uploaded (store_upload_find tells which). In the caller's transaction.
 */
int store_upload_open(struct db *db, const struct batch_rec *b, const char *descriptor,
    struct upload_rec *u, struct devid_error *e);
/*
 * The tenant's upload ref, with the pages and entries received; DEVID_ENOTFOUND for a missing
 * upload and another tenant's alike. lock: in a transaction, other writers of the upload wait
 * until it ends (PostgreSQL's FOR UPDATE; SQLite's write transaction already does).
 */
int store_upload_get(struct db *db, int64_t tenant_id, const char *ref, bool lock,
    struct upload_rec *u, struct devid_error *e);
/* The tenant's upload of batch `name`; DEVID_ENOTFOUND if none. */
int store_upload_find(struct db *db, int64_t tenant_id, const char *name, struct upload_rec *u,
    struct devid_error *e);
/* The tenant's uploads, oldest first; free(*out). */
int store_upload_list(
    struct db *db, int64_t tenant_id, struct upload_rec **out, size_t *n, struct devid_error *e);

/* One page received: its entries and the SHA-256 (hex) of its body. */
struct upload_page {
	int64_t page;
	int64_t entries;
	char sha256[65];
};
/* Page `page` of upload upload_id; DEVID_ENOTFOUND if it was not received. */
int store_upload_page_get(
    struct db *db, int64_t upload_id, int64_t page, struct upload_page *pg, struct devid_error *e);
/* Every page received, by page; free(*out). */
int store_upload_pages(
    struct db *db, int64_t upload_id, struct upload_page **out, size_t *n, struct devid_error *e);
/*
 * Records a page and moves the upload's expiry to expires_at; DEVID_ECONFLICT if the page
 * was recorded meanwhile. In the transaction that stored its devices.
 */
int store_upload_page_add(struct db *db, int64_t upload_id, const struct upload_page *pg,
    int64_t now, int64_t expires_at, struct devid_error *e);
/* Records the trust that admits an import's entries (decided by its first page). */
int store_upload_set_trust(
    struct db *db, int64_t upload_id, int64_t trust_id, struct devid_error *e);
/*
 * What a commit checks of the pages 1 to `last`: how many are missing (*nmissing) and the
 * first of them, in order, in missing[0..max_missing); the entries the others hold in
 * *entries.
 */
int store_upload_missing(struct db *db, int64_t upload_id, int64_t last, int64_t *missing,
    size_t max_missing, size_t *nmissing, int64_t *entries, struct devid_error *e);

/*
 * The first page before `last` that does not hold page_size entries (only the last page may
 * hold fewer): *pg; DEVID_ENOTFOUND when every one does.
 */
int store_upload_short_page(struct db *db, int64_t upload_id, int64_t last, int64_t page_size,
    struct upload_page *pg, struct devid_error *e);

/* A device of a page, as store_devices_insert stores it (borrowed strings and DER). */
struct device_new {
	const char *udid, *serial;
	bool tpm; /* kind 'tpm' (an EK certificate) rather than 'chip' */
	const uint8_t *cert;
	size_t cert_len;
	const char *entry; /* compact JSON */
};
/*
 * Stores devices v[0..n) under batch_id in multi-row statements; a device whose UDID is
 * stored already (in any batch) or whose serial is in the batch already is left out and
 * flagged: refused[i] true. *nrefused counts them; the caller rolls back when it is not 0.
 */
int store_devices_insert(struct db *db, int64_t batch_id, const struct device_new *v, size_t n,
    bool *refused, size_t *nrefused, struct devid_error *e);
/* Whether serial is stored in batch_id: the owner of a refused serial (1 yes, 0 no, < 0). */
int store_device_serial_in(
    struct db *db, int64_t batch_id, const char *serial, struct devid_error *e);

/*
 * The commit: batch u->batch_id becomes complete with count devices, the claim code hash
 * (NULL: none), owner (0: none; claimed now otherwise) and the trust that admitted it, and
 * the upload and its pages are deleted. In the caller's transaction, with the audit record.
 */
int store_upload_commit(struct db *db, const struct upload_rec *u, int64_t count,
    const char *claim_sha256, int64_t owner_id, int64_t trust_id, int64_t now,
    struct devid_error *e);
/*
 * Deletes an upload and its pages; its batch, still 'uploading', is then an orphan that
 * store_batch_orphan_purge deletes with its devices.
 */
int store_upload_drop(struct db *db, int64_t upload_id, struct devid_error *e);
/* The ids of up to max uploads expired at `now` (expires_at <= now). */
int store_upload_expired(
    struct db *db, int64_t now, int64_t *ids, size_t max, size_t *n, struct devid_error *e);
/* The ids of up to max batches in state 'uploading' without an upload. */
int store_batch_orphans(struct db *db, int64_t *ids, size_t max, size_t *n, struct devid_error *e);
/*
 * Deletes up to chunk devices of orphan batch_id and, when none is left, the batch itself
 * (*done true). Each call is its own statement: run it outside a long transaction, so other
 * writers get their turn between chunks.
 */
int store_batch_orphan_purge(
    struct db *db, int64_t batch_id, size_t chunk, bool *done, struct devid_error *e);

/* --- TPM activations: enrollment by credential activation (store_tpm.c, schema v13) ------ */

/* The id an activation is known by outside: 32 lowercase hex digits, random. */
#define TPM_ACTIVATION_REF_LEN 32
/* A TPM name in hex: nameAlg and a SHA-512 digest at most (66 bytes) */
#define TPM_ACTIVATION_NAME_HEX 132

/*
 * An activation handed out and not yet answered: the credential was made for the AK named
 * ak_name; the device proves it activated it with the secret whose SHA-256 is secret_sha256.
 */
struct tpm_activation_rec {
	char ref[TPM_ACTIVATION_REF_LEN + 1];
	int64_t device_id;
	int64_t tenant_id; /* the device's owner when it was activated */
	char udid[UDID_HEX_LEN_MAX + 1]; /* the device's (store_tpm_activation_take) */
	char ak_name[TPM_ACTIVATION_NAME_HEX + 1]; /* lowercase hex */
	char secret_sha256[2 * 32 + 1]; /* lowercase hex */
	uint8_t *csr; /* DER PKCS#10: borrowed by _put, malloc'd by _take (release) */
	size_t csr_len;
	int64_t created_at, expires_at;
};
void tpm_activation_rec_release(struct tpm_activation_rec *a);
/*
 * Stores a as the device's one pending activation: one it had before is replaced, and every
 * activation expired at a->created_at is deleted. In the caller's transaction.
 * DEVID_ECONFLICT if a->ref exists.
 */
int store_tpm_activation_put(
    struct db *db, const struct tpm_activation_rec *a, struct devid_error *e);
/*
 * Takes activation ref: deletes it and gives what it was, with its device's UDID, in one
 * statement, so it is answered once (whatever the answer). DEVID_ENOTFOUND if there is none
 * (never handed out, answered already, or purged); the caller checks expires_at.
 */
int store_tpm_activation_take(
    struct db *db, const char *ref, struct tpm_activation_rec *a, struct devid_error *e);

/* --- clone detection (store_clone.c, docs/clone-detection.md) ---------------------------- */

/* The tenant's policy as stored (JSON, malloc'ed), or *policy NULL when it has none. */
int store_clone_policy_get(struct db *db, int64_t tenant_id, char **policy, struct devid_error *e);
int store_clone_policy_put(
    struct db *db, int64_t tenant_id, const char *policy, struct devid_error *e);
/*
 * Takes a seen report's id for the connector whose secret signed it: DEVID_ECONFLICT when the
 * connector sent that report already. Ids older than keep seconds are forgotten.
 */
int store_sighting_report_take(struct db *db, int64_t connector_id, const char *report, int64_t now,
    int64_t keep, struct devid_error *e);
/*
 * Records a sighting from source ("est" or "connector:<name>"): merged into the device's
 * sighting of the same source, origin and certificate active since merge_after_ms (its span
 * widened, its count added), else a new one, the device's older than that pruned.
 */
int store_sighting_add(struct db *db, int64_t tenant_id, int64_t device_id, const char *source,
    const struct sighting *s, int64_t merge_after_ms, struct devid_error *e);
/* The tenant's sightings of the device active since since_ms, the latest limit: origin,
 * first_ms, last_ms, source. */
int store_sightings_since(struct db *db, int64_t tenant_id, int64_t device_id, int64_t since_ms,
    size_t limit, struct db_rows **out, struct devid_error *e);
/*
 * The certificate the tenant issued to the device whose DER's SHA-256 is sha256 (hex), when a
 * later one superseded it: one row, its serial, the next one's serial and issued_at; none when
 * it is unknown or the latest.
 */
int store_cert_superseded(struct db *db, int64_t tenant_id, int64_t device_id, const char *sha256,
    struct db_rows **out, struct devid_error *e);
/* How many certificates the tenant issued to the device since (Unix seconds), at most max. */
int store_certs_issued_since(struct db *db, int64_t tenant_id, int64_t device_id, int64_t since,
    int64_t max, int64_t *count, struct devid_error *e);
/* Whether the tenant raised a suspicion of rule for the device at or after since. */
int store_suspicion_since(struct db *db, int64_t tenant_id, int64_t device_id, const char *rule,
    int64_t since, bool *found, struct devid_error *e);
int store_suspicion_add(struct db *db, int64_t tenant_id, int64_t device_id, const char *rule,
    const char *detail, bool quarantined, int64_t at, int64_t *id, struct devid_error *e);
/*
 * The tenant's suspicions (of one device when device_id is not 0) after after_id, oldest
 * first, at most limit: id, udid, rule, detail, quarantined, at. store_suspicion_get: one,
 * by id, the same columns.
 */
int store_suspicions(struct db *db, int64_t tenant_id, int64_t device_id, int64_t after_id,
    size_t limit, struct db_rows **out, struct devid_error *e);
int store_suspicion_get(struct db *db, int64_t id, struct db_rows **out, struct devid_error *e);
/* A notice of suspicion_id to a webhook connector, about one device: a job due now. */
int store_job_add_notice(struct db *db, int64_t tenant_id, int64_t connector_id, const char *udid,
    int64_t suspicion_id, struct devid_error *e);

#endif
