/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "lib/banned.h"

int
store_clone_policy_get(struct db *db, int64_t tenant_id, char **policy, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id)};
	struct db_rows *r;
	int rc;

	*policy = NULL;
	if ((rc = db_query(
		 db, "SELECT policy FROM clone_policies WHERE tenant_id = ?", p, 1, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) > 0 && (*policy = strdup(db_rows_text(r, 0, 0, NULL))) == NULL)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	db_rows_free(r);
	return rc;
}

int
store_clone_policy_put(struct db *db, int64_t tenant_id, const char *policy, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_TEXT(policy)};

	return db_exec(db,
	    "INSERT INTO clone_policies (tenant_id, policy) VALUES (?, ?)"
	    " ON CONFLICT (tenant_id) DO UPDATE SET policy = excluded.policy",
	    p, 2, NULL, e);
}

int
store_sighting_report_take(struct db *db, int64_t connector_id, const char *report, int64_t now,
    int64_t keep, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(connector_id), DB_TEXT(report), DB_INT(now)};
	struct db_param q[] = {DB_INT(connector_id), DB_INT(now - keep)};
	int rc;

	if ((rc = db_exec(db,
		 "DELETE FROM sighting_reports WHERE connector_id = ? AND received_at < ?", q, 2,
		 NULL, e)) != 0)
		return rc;
	return db_exec(db,
	    "INSERT INTO sighting_reports (connector_id, report, received_at) VALUES (?, ?, ?)", p,
	    3, NULL, e);
}

int
store_sighting_add(struct db *db, int64_t tenant_id, int64_t device_id, const char *source,
    const struct sighting *s, int64_t merge_after_ms, struct devid_error *e)
{
	struct db_param u[] = {DB_INT(s->first_ms), DB_INT(s->first_ms), DB_INT(s->last_ms),
	    DB_INT(s->last_ms), DB_INT(s->count), DB_INT(device_id), DB_INT(tenant_id),
	    DB_TEXT(source), DB_TEXT(s->origin), DB_TEXT(s->certificate), DB_INT(merge_after_ms)};
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(device_id), DB_TEXT(source),
	    DB_TEXT(s->origin), DB_INT(s->first_ms), DB_INT(s->last_ms), DB_INT(s->count),
	    DB_TEXT(s->certificate)};
	struct db_param q[] = {DB_INT(device_id), DB_INT(merge_after_ms)};
	int64_t changed = 0;
	int rc;

	if ((rc = db_exec(db,
		 "UPDATE sightings SET"
		 " first_ms = CASE WHEN first_ms < ? THEN first_ms ELSE ? END,"
		 " last_ms = CASE WHEN last_ms > ? THEN last_ms ELSE ? END, count = count + ?"
		 " WHERE device_id = ? AND tenant_id = ? AND source = ? AND origin = ?"
		 " AND cert_sha256 = ? AND last_ms >= ?",
		 u, 11, &changed, e)) != 0 ||
	    changed > 0)
		return rc;
	if ((rc = db_exec(db, "DELETE FROM sightings WHERE device_id = ? AND last_ms < ?", q, 2,
		 NULL, e)) != 0)
		return rc;
	return db_exec(db,
	    "INSERT INTO sightings (tenant_id, device_id, source, origin, first_ms, last_ms, count,"
	    " cert_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	    p, 8, NULL, e);
}

int
store_sightings_since(struct db *db, int64_t tenant_id, int64_t device_id, int64_t since_ms,
    size_t limit, struct db_rows **out, struct devid_error *e)
{
	struct db_param p[] = {
	    DB_INT(device_id), DB_INT(since_ms), DB_INT(tenant_id), DB_INT(limit)};

	return db_query(db,
	    "SELECT origin, first_ms, last_ms, source FROM sightings"
	    " WHERE device_id = ? AND last_ms >= ? AND tenant_id = ? ORDER BY last_ms DESC LIMIT ?",
	    p, 4, out, e);
}

int
store_cert_superseded(struct db *db, int64_t tenant_id, int64_t device_id, const char *sha256,
    struct db_rows **out, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(device_id), DB_TEXT(sha256), DB_INT(tenant_id),
	    DB_INT(device_id), DB_INT(tenant_id)};

	return db_query(db,
	    "SELECT c.serial, n.serial, n.issued_at FROM certificates c"
	    " JOIN certificates n ON n.device_id = c.device_id AND n.tenant_id = c.tenant_id"
	    " AND n.id > c.id"
	    " WHERE c.device_id = ? AND c.sha256 = ? AND c.tenant_id = ?"
	    " AND n.id = (SELECT MIN(x.id) FROM certificates x WHERE x.device_id = ?"
	    " AND x.tenant_id = ? AND x.id > c.id)",
	    p, 5, out, e);
}

int
store_suspicion_since(struct db *db, int64_t tenant_id, int64_t device_id, const char *rule,
    int64_t since, bool *found, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(device_id), DB_TEXT(rule), DB_INT(since), DB_INT(tenant_id)};
	struct db_rows *r;
	int rc;

	*found = false;
	if ((rc = db_query(db,
		 "SELECT id FROM suspicions WHERE device_id = ? AND rule = ? AND at >= ?"
		 " AND tenant_id = ? LIMIT 1",
		 p, 4, &r, e)) != 0)
		return rc;
	*found = db_rows_count(r) > 0;
	db_rows_free(r);
	return 0;
}

int
store_suspicion_add(struct db *db, int64_t tenant_id, int64_t device_id, const char *rule,
    const char *detail, bool quarantined, int64_t at, int64_t *id, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(device_id), DB_TEXT(rule), DB_TEXT(detail),
	    DB_INT(quarantined), DB_INT(at)};
	struct db_param q[] = {DB_INT(device_id), DB_TEXT(rule), DB_INT(at)};
	struct db_rows *r;
	int rc;

	if ((rc = db_exec(db,
		 "INSERT INTO suspicions (tenant_id, device_id, rule, detail, quarantined, at)"
		 " VALUES (?, ?, ?, ?, ?, ?)",
		 p, 6, NULL, e)) != 0)
		return rc;
	if ((rc = db_query(db,
		 "SELECT MAX(id) FROM suspicions WHERE device_id = ? AND rule = ? AND at = ?", q, 3,
		 &r, e)) != 0)
		return rc;
	*id = db_rows_int(r, 0, 0);
	db_rows_free(r);
	return 0;
}

int
store_suspicions(struct db *db, int64_t tenant_id, int64_t device_id, int64_t after_id,
    size_t limit, struct db_rows **out, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(device_id), DB_INT(device_id),
	    DB_INT(after_id), DB_INT(limit)};

	return db_query(db,
	    "SELECT s.id, d.udid, s.rule, s.detail, s.quarantined, s.at FROM suspicions s"
	    " JOIN devices d ON d.id = s.device_id"
	    " WHERE s.tenant_id = ? AND (? = 0 OR s.device_id = ?) AND s.id > ?"
	    " ORDER BY s.id LIMIT ?",
	    p, 5, out, e);
}

int
store_suspicion_get(struct db *db, int64_t id, struct db_rows **out, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(id)};

	return db_query(db,
	    "SELECT s.id, d.udid, s.rule, s.detail, s.quarantined, s.at FROM suspicions s"
	    " JOIN devices d ON d.id = s.device_id WHERE s.id = ?",
	    p, 1, out, e);
}

int
store_certs_issued_since(struct db *db, int64_t tenant_id, int64_t device_id, int64_t since,
    int64_t max, int64_t *count, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(device_id), DB_INT(tenant_id), DB_INT(since), DB_INT(max)};
	struct db_rows *r;
	int rc;

	/* "+tenant_id" keeps SQLite's planner, which has no statistics, on the device's index:
	 * the tenant's index would walk every certificate the tenant was ever issued */
	if ((rc = db_query(db,
		 "SELECT COUNT(*) FROM (SELECT 1 FROM certificates WHERE device_id = ?"
		 " AND +tenant_id = ? AND issued_at >= ? LIMIT ?) AS c",
		 p, 4, &r, e)) != 0)
		return rc;
	*count = db_rows_int(r, 0, 0);
	db_rows_free(r);
	return 0;
}

int
store_job_add_notice(struct db *db, int64_t tenant_id, int64_t connector_id, const char *udid,
    int64_t suspicion_id, struct devid_error *e)
{
	int64_t now = time(NULL);
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(connector_id), DB_TEXT(udid), DB_INT(now),
	    DB_INT(now), DB_INT(now), DB_INT(suspicion_id)};

	return db_exec(db,
	    "INSERT INTO jobs (tenant_id, connector_id, action, udid, next_at, total, created_at,"
	    " updated_at, reason, suspicion_id) VALUES (?, ?, 'add', ?, ?, 1, ?, ?,"
	    " 'suspected_clone', ?)",
	    p, 7, NULL, e);
}
