/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/json.h"
#include "service/service.h"
#include "lib/banned.h"

#define AUDIT_PAGE 1000

/* SHA-256 over the canonical JSON of the record (sorted keys, compact). */
static int
audit_hash(const struct audit_rec *a, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	json_t *j;
	char *text;

	j = json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "tenant",
	    (json_int_t)a->tenant_id, "seq", (json_int_t)a->seq, "at", (json_int_t)a->at, "actor",
	    a->actor, "action", a->action, "object", a->object, "detail", a->detail, "prev",
	    a->prev_hash);
	if (j == NULL)
		return DEVID_ENOMEM;
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (text == NULL)
		return DEVID_ENOMEM;
	SHA256((const uint8_t *)text, strlen(text), md);
	free(text);
	hex_encode(md, sizeof(md), out);
	return 0;
}

int
audit_append(struct db *db, int64_t tenant_id, const char *actor, const char *action,
    const char *object, const json_t *detail, struct devid_error *e)
{
	struct audit_rec a = {.tenant_id = tenant_id,
	    .at = time(NULL),
	    .actor = actor,
	    .action = action,
	    .object = object};
	char *d;
	int rc;

	if ((d = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "audit: out of memory");
	a.detail = d;
	if ((rc = store_audit_last(db, tenant_id, &a.seq, a.prev_hash, e)) != 0)
		goto out;
	a.seq++;
	if ((rc = audit_hash(&a, a.hash)) != 0) {
		devid_error_set(e, rc, "audit: out of memory");
		goto out;
	}
	rc = store_audit_insert(db, &a, e);
out:
	free(d);
	return rc;
}

int
audit_verify(struct db *db, int64_t tenant_id, int64_t *count, struct devid_error *e)
{
	return audit_verify_at(db, tenant_id, 0, NULL, count, e);
}

int
audit_verify_at(struct db *db, int64_t tenant_id, int64_t at_seq, char at_hash[65], int64_t *count,
    struct devid_error *e)
{
	char prev[65], h[65];
	int64_t after = 0;
	struct audit_rec *a;
	struct db_rows *rows;
	size_t n;
	int rc;

	*count = 0;
	memset(prev, '0', 64);
	prev[64] = '\0';
	if (at_hash != NULL)
		memcpy(at_hash, prev, sizeof(prev)); /* seq 0: the empty chain's "hash" */
	do {
		if ((rc = store_audit_list(db, tenant_id, after, AUDIT_PAGE, &a, &n, &rows, e)) !=
		    0)
			return rc;
		for (size_t i = 0; i < n && rc == 0; i++) {
			/* the records before a broken one verified */
			*count = after;
			if (a[i].seq != after + 1)
				rc = devid_error_set(e, DEVID_ECRYPTO,
				    "audit: record %lld missing (next is %lld)",
				    (long long)(after + 1), (long long)a[i].seq);
			else if (strcmp(a[i].prev_hash, prev) != 0)
				rc = devid_error_set(e, DEVID_ECRYPTO,
				    "audit: record %lld does not follow record %lld",
				    (long long)a[i].seq, (long long)after);
			else if (audit_hash(&a[i], h) != 0 || strcmp(h, a[i].hash) != 0)
				rc = devid_error_set(e, DEVID_ECRYPTO,
				    "audit: record %lld was changed (hash differs)",
				    (long long)a[i].seq);
			memcpy(prev, a[i].hash, sizeof(prev));
			after = a[i].seq;
			if (at_hash != NULL && (after == at_seq || at_seq < 0))
				memcpy(at_hash, prev, sizeof(prev));
		}
		free(a);
		db_rows_free(rows);
		if (rc != 0)
			return rc;
		*count = after;
	} while (n == AUDIT_PAGE);
	return 0;
}

int
service_audit_verify(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e)
{
	struct devid_error ve;
	char head[65];
	int64_t count = 0;
	struct db *db;
	int rc;

	*out = NULL;
	if (p->tenant.kind != TENANT_OEM || p->role != ROLE_ADMIN)
		return devid_error_set(
		    e, DEVID_EAUTH, "only an OEM admin verifies the audit trail");
	devid_error_clear(&ve);
	db = store_acquire(svc->store);
	rc = audit_verify_at(db, p->tenant.id, -1, head, &count, &ve);
	store_release(svc->store, db);
	if (rc == 0)
		*out = json_pack(
		    "{s:b, s:I, s:s}", "ok", 1, "records", (json_int_t)count, "head", head);
	else if (rc == DEVID_ECRYPTO)
		*out = json_pack("{s:b, s:I, s:I, s:s}", "ok", 0, "records", (json_int_t)count,
		    "brokenAt", (json_int_t)(count + 1), "message", ve.msg);
	else
		return devid_error_set(e, rc, "%s", ve.msg);
	return *out != NULL ? 0 : devid_error_set(e, DEVID_ENOMEM, "out of memory");
}

int
service_audit(struct service *svc, const struct principal *p, int64_t after, size_t limit,
    json_t **out, struct devid_error *e)
{
	struct audit_rec *a = NULL;
	struct db_rows *rows = NULL;
	json_t *items, *detail;
	struct db *db;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (p->role != ROLE_ADMIN)
		return devid_error_set(e, DEVID_EAUTH, "only an admin reads the audit trail");
	if (limit == 0 || limit > AUDIT_PAGE)
		limit = AUDIT_PAGE;
	db = store_acquire(svc->store);
	rc = store_audit_list(db, p->tenant.id, after, limit, &a, &n, &rows, e);
	store_release(svc->store, db);
	if (rc != 0)
		return rc;
	items = json_array();
	for (size_t i = 0; i < n; i++) {
		detail = json_loads(a[i].detail, 0, NULL);
		json_array_append_new(items,
		    json_pack("{s:I, s:I, s:o, s:s, s:s, s:s, s:o?, s:s, s:s}", "seq",
			(json_int_t)a[i].seq, "at", (json_int_t)a[i].at, "time", json_time(a[i].at),
			"actor", a[i].actor, "action", a[i].action, "object", a[i].object, "detail",
			detail, "prev_hash", a[i].prev_hash, "hash", a[i].hash));
	}
	*out = json_pack("{s:o, s:o?}", "records", items, "next",
	    n == limit && n > 0 ? json_integer(a[n - 1].seq) : NULL);
	free(a);
	db_rows_free(rows);
	return *out != NULL ? 0 : devid_error_set(e, DEVID_ENOMEM, "out of memory");
}
