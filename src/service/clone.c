/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clone.c - clone detection (docs/clone-detection.md): where each identity is used, the
 * rules that find one identity used by two devices, and what a suspicion does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/base64.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/sighting.h"
#include "service/internal.h"
#include "store/store.h"
#include "lib/banned.h"

#define CLONE_ACTOR "clone-detection"
/* RFC 5280 CRLReason keyCompromise: a quarantine says the device's key is no longer its own */
#define REASON_KEY_COMPROMISE 1
/* report ids are remembered this long: a report is retried for minutes, not days */
#define REPORT_ID_KEEP_SECS 86400
/* suspicions in one page of GET /api/v1/suspicions */
#define SUSPICIONS_PAGE 500
/* the latest sightings of a device one evaluation of concurrent origins reads */
#define MAX_SIGHTINGS 256
/* the networks one evaluation of concurrent origins tells apart */
#define MAX_NETWORKS 64

const char *const clone_mode_names[] = {"off", "flag", "quarantine"};

static const struct clone_policy policy_defaults = {
    .mode = CLONE_FLAG,
    .window = 300,
    .min_returns = 2,
    .prefix_v4 = 24,
    .prefix_v6 = 48,
    .superseded_grace = 600,
    .max_enrollments = 3,
};

static const struct {
	const char *name;
	json_int_t min, max;
	size_t offset;
} policy_numbers[] = {
    {"window", 10, 86400, offsetof(struct clone_policy, window)},
    {"minReturns", 1, 1000, offsetof(struct clone_policy, min_returns)},
    {"prefixV4", 0, 32, offsetof(struct clone_policy, prefix_v4)},
    {"prefixV6", 0, 128, offsetof(struct clone_policy, prefix_v6)},
    {"supersededGrace", 0, 86400, offsetof(struct clone_policy, superseded_grace)},
    {"maxEnrollments", 1, 1000, offsetof(struct clone_policy, max_enrollments)},
};

static int64_t *
policy_field(struct clone_policy *p, size_t i)
{
	return (int64_t *)((char *)p + policy_numbers[i].offset);
}

/* Reads a policy object; members left out keep their defaults. */
static int
policy_parse(const json_t *j, struct clone_policy *out, struct devid_error *e)
{
	static const char *const keys[] = {"mode", "window", "minReturns", "prefixV4", "prefixV6",
	    "supersededGrace", "maxEnrollments", NULL};
	const char *what = "clone policy", *mode;
	struct clone_policy p = policy_defaults;
	json_int_t v;
	int rc;

	if (!json_is_object(j))
		return devid_error_set(e, DEVID_EINVAL, "%s is not a JSON object", what);
	if ((rc = json_only_keys(j, keys, what, e)) != 0)
		return rc;
	rc = json_get_str(j, "mode", 1, 16, false, &mode, NULL, what, e);
	if (rc == 0) {
		size_t m = 0;

		while (m < CLONE_NMODES && strcmp(mode, clone_mode_names[m]) != 0)
			m++;
		if (m == CLONE_NMODES)
			return devid_error_set(e, DEVID_EINVAL,
			    "%s: \"mode\" is none of \"off\", \"flag\", \"quarantine\"", what);
		p.mode = (enum clone_mode)m;
	} else if (rc != DEVID_ENOTFOUND) {
		return rc;
	}
	for (size_t i = 0; i < sizeof(policy_numbers) / sizeof(policy_numbers[0]); i++) {
		if (json_object_get(j, policy_numbers[i].name) == NULL)
			continue;
		if ((rc = json_get_int(j, policy_numbers[i].name, policy_numbers[i].min,
			 policy_numbers[i].max, &v, what, e)) != 0)
			return rc;
		*policy_field(&p, i) = (int64_t)v;
	}
	*out = p;
	return 0;
}

static json_t *
policy_json(const struct clone_policy *p)
{
	json_t *j = json_pack("{s:s}", "mode", clone_mode_names[p->mode]);

	for (size_t i = 0; j != NULL && i < sizeof(policy_numbers) / sizeof(policy_numbers[0]); i++)
		if (json_object_set_new(j, policy_numbers[i].name,
			json_integer(*policy_field((struct clone_policy *)p, i))) != 0) {
			json_decref(j);
			return NULL;
		}
	return j;
}

int
clone_policy_load(struct db *db, int64_t tenant_id, struct clone_policy *p, struct devid_error *e)
{
	char *text = NULL;
	json_t *j;
	int rc;

	*p = policy_defaults;
	if ((rc = store_clone_policy_get(db, tenant_id, &text, e)) != 0 || text == NULL)
		return rc;
	j = json_loads(text, 0, NULL);
	free(text);
	/* what policy_parse accepted before, it accepts again */
	rc = j != NULL ? policy_parse(j, p, e) : devid_error_set(e, DEVID_EINTERNAL, "policy");
	json_decref(j);
	return rc;
}

int
service_clone_policy_get(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e)
{
	struct clone_policy pol;
	struct db *db;
	int rc;

	*out = NULL;
	if (!is_oem_reader(p))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM token reads the clone policy");
	db = store_acquire(svc->store);
	rc = clone_policy_load(db, p->tenant.id, &pol, e);
	store_release(svc->store, db);
	if (rc == 0 && (*out = policy_json(&pol)) == NULL)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	return rc;
}

int
service_clone_policy_put(
    struct service *svc, const struct principal *p, const json_t *body, struct devid_error *e)
{
	struct clone_policy pol;
	json_t *j = NULL;
	char *text = NULL;
	struct db *db;
	int rc;

	if (p->tenant.kind != TENANT_OEM || p->role != ROLE_ADMIN)
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin sets the clone policy");
	if ((rc = policy_parse(body, &pol, e)) != 0)
		return rc;
	if ((j = policy_json(&pol)) == NULL || (text = json_dump_compact(j)) == NULL) {
		json_decref(j);
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	}
	db = store_acquire(svc->store);
	if ((rc = db_begin(db, e)) == 0) {
		if ((rc = store_clone_policy_put(db, p->tenant.id, text, e)) == 0 &&
		    (rc = audit_append(
			 db, p->tenant.id, p->actor, "clone.policy", p->tenant.name, j, e)) == 0)
			rc = db_commit(db, e);
		else
			db_rollback(db);
	}
	store_release(svc->store, db);
	free(text);
	json_decref(j);
	return rc;
}

/* What one evaluation knows: the device as it stands, its tenant's policy, what it raised. */
struct clone_eval {
	struct db *db;
	int64_t tenant_id;
	struct device_rec d;
	struct clone_policy policy;
	int64_t now;
	int raised[CLONE_NRULES];
	int quarantined;
};

/* A webhook connector's notice of suspicion id, for each webhook connector of the tenant. */
static int
notify(struct clone_eval *c, int64_t id, struct devid_error *e)
{
	struct connector_rec *conn;
	size_t n;
	int rc;

	if ((rc = store_connector_list(c->db, c->tenant_id, false, &conn, &n, e)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (strcmp(conn[i].type, "webhook") == 0)
			rc =
			    store_job_add_notice(c->db, c->tenant_id, conn[i].id, c->d.udid, id, e);
	store_connector_list_free(conn, n);
	return rc;
}

/*
 * Raises a suspicion of rule with detail (taken): at most one per device and rule in a
 * window, with its audit record, its notices, and the quarantine the policy asks for.
 */
static int
raise_suspicion(struct clone_eval *c, enum clone_rule rule, json_t *detail, struct devid_error *e)
{
	const char *name = clone_rule_names[rule];
	bool found, quarantine = c->policy.mode == CLONE_QUARANTINE && !c->d.revoked;
	char *text = NULL;
	int64_t id;
	int rc;

	if (detail == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	if ((rc = store_suspicion_since(
		 c->db, c->tenant_id, c->d.id, name, c->now - c->policy.window, &found, e)) != 0 ||
	    found)
		goto out;
	if ((text = json_dump_compact(detail)) == NULL ||
	    json_object_set_new(detail, "rule", json_string(name)) != 0 ||
	    json_object_set_new(detail, "quarantined", json_boolean(quarantine)) != 0) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = store_suspicion_add(
		 c->db, c->tenant_id, c->d.id, name, text, quarantine, c->now, &id, e)) != 0 ||
	    (rc = audit_append(c->db, c->tenant_id, CLONE_ACTOR, "device.suspected_clone",
		 c->d.udid, detail, e)) != 0)
		goto out;
	if (quarantine) {
		if ((rc = device_revoke_tx(c->db, c->tenant_id, CLONE_ACTOR, &c->d,
			 REASON_KEY_COMPROMISE, c->now, e)) != 0)
			goto out;
		c->d.revoked = true;
		c->quarantined++;
	}
	if ((rc = notify(c, id, e)) != 0)
		goto out;
	c->raised[rule]++;
	log_warn("device suspected clone", LOG_STR("udid", c->d.udid), LOG_STR("rule", name),
	    LOG_STR("detail", text), LOG_INT("quarantined", quarantine));
out:
	free(text);
	json_decref(detail);
	return rc;
}

/* The index of network in nets (added when new); -1 when there are MAX_NETWORKS already. */
static int
network_index(char (*nets)[SIGHTING_MAX_ORIGIN + 4], int *n, const char *network)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(nets[i], network) == 0)
			return i;
	if (*n == MAX_NETWORKS)
		return -1;
	snprintf(nets[*n], SIGHTING_MAX_ORIGIN + 4, "%s", network);
	return (*n)++;
}

/* Rule 1: the device active from networks that take turns within the window. */
static int
rule_concurrent_origins(struct clone_eval *c, struct devid_error *e)
{
	char nets[MAX_NETWORKS][SIGHTING_MAX_ORIGIN + 4], net[SIGHTING_MAX_ORIGIN + 4];
	struct sighting_point *pts = NULL;
	struct db_rows *r = NULL;
	struct devid_error ignore;
	json_t *names = NULL;
	int nnets = 0, returns, rc;
	size_t n = 0;

	if ((rc = store_sightings_since(c->db, c->tenant_id, c->d.id,
		 (c->now - c->policy.window) * 1000, MAX_SIGHTINGS, &r, e)) != 0)
		return rc;
	if ((pts = calloc(db_rows_count(r) * 2 + 1, sizeof(*pts))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	/* oldest first (the rows are newest first), so networks are named in the order seen */
	for (size_t j = db_rows_count(r); j > 0; j--) {
		size_t i = j - 1;
		int k;

		if (sighting_network(db_rows_text(r, i, 0, NULL), (int)c->policy.prefix_v4,
			(int)c->policy.prefix_v6, net, &ignore) != 0 ||
		    (k = network_index(nets, &nnets, net)) < 0)
			continue;
		pts[n++] = (struct sighting_point){db_rows_int(r, i, 1), k};
		pts[n++] = (struct sighting_point){db_rows_int(r, i, 2), k};
	}
	if (nnets < 2 || (returns = sighting_returns(pts, n)) < c->policy.min_returns)
		goto out;
	if ((names = json_array()) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < nnets; i++)
		json_array_append_new(names, json_string(nets[i]));
	rc = raise_suspicion(c, CLONE_CONCURRENT_ORIGINS,
	    json_pack("{s:o, s:i, s:I}", "networks", names, "returns", returns, "window",
		(json_int_t)c->policy.window),
	    e);
out:
	free(pts);
	db_rows_free(r);
	return rc;
}

/*
 * Rule 2: the operational certificate fingerprint (the SHA-256 of its DER) used at seen_ms,
 * after a later certificate of the device superseded it by more than the grace.
 */
static int
rule_superseded(struct clone_eval *c, const char *fingerprint, int64_t seen_ms, const char *origin,
    struct devid_error *e)
{
	struct db_rows *r;
	int64_t superseded;
	int rc;

	if ((rc = store_cert_superseded(c->db, c->tenant_id, c->d.id, fingerprint, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 1 &&
	    seen_ms / 1000 > (superseded = db_rows_int(r, 0, 2)) + c->policy.superseded_grace)
		rc = raise_suspicion(c, CLONE_SUPERSEDED_CERTIFICATE,
		    json_pack("{s:s, s:s, s:o, s:s, s:o, s:s}", "certificate", fingerprint,
			"serial", db_rows_text(r, 0, 0, NULL), "supersededAt",
			json_time(superseded), "supersededBy", db_rows_text(r, 0, 1, NULL),
			"seenAt", json_time(seen_ms / 1000), "origin", origin),
		    e);
	db_rows_free(r);
	return rc;
}

/* Records sighting s of the device from source and applies rules 1 and 2 to it. */
static int
observe(struct clone_eval *c, const char *source, const struct sighting *s, struct devid_error *e)
{
	int64_t window_ms = (c->now - c->policy.window) * 1000;
	int rc;

	if ((rc = store_sighting_add(c->db, c->tenant_id, c->d.id, source, s, window_ms, e)) != 0 ||
	    (rc = rule_concurrent_origins(c, e)) != 0)
		return rc;
	return rule_superseded(c, s->certificate, s->last_ms, s->origin, e);
}

static void
count_raised(struct service *svc, const struct clone_eval *c)
{
	for (int i = 0; i < CLONE_NRULES; i++)
		counter_add(&svc->metrics.clone_suspicions[i], (uint64_t)c->raised[i]);
	counter_add(&svc->metrics.clone_quarantines, (uint64_t)c->quarantined);
}

/* "127.0.0.1:51234" or "[::1]:51234": the address alone. */
static int
peer_address(const char *peer, char out[SIGHTING_MAX_ORIGIN])
{
	const char *end;
	size_t n;

	if (peer == NULL)
		return -1;
	if (*peer == '[') {
		peer++;
		end = strchr(peer, ']');
	} else {
		end = strrchr(peer, ':');
	}
	if (end == NULL || (n = (size_t)(end - peer)) == 0 || n >= SIGHTING_MAX_ORIGIN)
		return -1;
	memcpy(out, peer, n);
	out[n] = '\0';
	return 0;
}

int
clone_observe_est(struct service *svc, struct db *db, int64_t tenant_id, const char *udid,
    const char *peer, X509 *client, int64_t validity_days, bool *quarantined, struct devid_error *e)
{
	struct clone_eval c = {.db = db, .tenant_id = tenant_id, .now = time(NULL)};
	struct sighting s = {.count = 1};
	uint8_t md[32];
	int64_t issued, since = c.now - validity_days * 86400 / 2;
	int rc;

	*quarantined = false;
	if (peer_address(peer, s.origin) != 0)
		return 0; /* not from a network (a test harness): nothing to learn */
	if ((rc = clone_policy_load(db, tenant_id, &c.policy, e)) != 0 ||
	    c.policy.mode == CLONE_OFF ||
	    (rc = store_device_get(db, tenant_id, udid, &c.d, e)) != 0)
		return rc;
	if (x509_sha256(client, md) != 0)
		return devid_error_set(e, DEVID_EINTERNAL, "the client certificate's SHA-256");
	hex_encode(md, sizeof(md), s.certificate);
	snprintf(s.udid, sizeof(s.udid), "%s", udid);
	s.first_ms = s.last_ms = c.now * 1000;
	if ((rc = observe(&c, "est", &s, e)) != 0)
		return rc;
	/* rule 3: this enrollment beyond what renewing at half a certificate's life needs */
	if ((rc = store_certs_issued_since(
		 db, tenant_id, c.d.id, since, c.policy.max_enrollments, &issued, e)) != 0)
		return rc;
	if (issued + 1 > c.policy.max_enrollments &&
	    (rc = raise_suspicion(&c, CLONE_ENROLLMENT_RATE,
		 json_pack("{s:I, s:I, s:o, s:s}", "enrollments", (json_int_t)(issued + 1), "max",
		     (json_int_t)c.policy.max_enrollments, "since", json_time(since), "origin",
		     s.origin),
		 e)) != 0)
		return rc;
	/* counted before the caller commits: a rollback after this point is a failed server */
	count_raised(svc, &c);
	counter_add(&svc->metrics.sightings[SIGHTING_EST], 1);
	*quarantined = c.quarantined > 0;
	return 0;
}

/* Which webhook connector of the tenant signed body: its id and name in *c. */
static int
report_signer(struct service *svc, struct db *db, const struct tenant *t, const uint8_t *body,
    size_t len, const char *signature, struct connector_rec *out, struct devid_error *e)
{
	static const char *const fields[] = {"secret", NULL};
	unsigned char mac[EVP_MAX_MD_SIZE], want[32];
	unsigned int maclen;
	struct connector_rec *conn;
	struct devid_error ignore;
	size_t n;
	int rc, found = -1;

	if (signature == NULL || strncmp(signature, "sha256=", 7) != 0 ||
	    strlen(signature) != 7 + 64 ||
	    OPENSSL_hexstr2buf_ex(want, sizeof(want), NULL, signature + 7, '\0') != 1)
		return devid_error_set(
		    e, DEVID_EAUTH, "X-Devid-Signature must be sha256=<64 hex digits>");
	if ((rc = store_connector_list(db, t->id, false, &conn, &n, e)) != 0)
		return rc;
	for (size_t i = 0; i < n && found < 0; i++) {
		json_t *config;
		const char *secret;

		if (strcmp(conn[i].type, "webhook") != 0 ||
		    (config = json_loads(conn[i].config, 0, NULL)) == NULL)
			continue;
		if (secrets_open_config(
			svc->secrets, fields, t->name, conn[i].name, config, &ignore) == 0 &&
		    (secret = json_string_value(json_object_get(config, "secret"))) != NULL &&
		    HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &maclen) !=
			NULL &&
		    maclen == sizeof(want) && CRYPTO_memcmp(mac, want, sizeof(want)) == 0)
			found = (int)i;
		secrets_wipe_config(config, fields);
		json_decref(config);
	}
	if (found >= 0) {
		*out = conn[found];
		conn[found].config = NULL;
	}
	store_connector_list_free(conn, n);
	if (found < 0)
		return devid_error_set(e, DEVID_EAUTH,
		    "the report's X-Devid-Signature matches no webhook connector of tenant %s",
		    t->name);
	return 0;
}

int
service_sightings_report(struct service *svc, const uint8_t *body, size_t len,
    const char *signature, json_t **out, struct devid_error *e)
{
	struct sighting_report r;
	struct clone_eval total = {0};
	struct connector_rec conn = {0};
	struct tenant t;
	char source[MAX_NAME_LEN + 16];
	int64_t now = time(NULL), skew;
	int accepted = 0, ignored = 0, suspicions = 0, rc;
	struct db *db;

	*out = NULL;
	if ((rc = sighting_report_parse(body, len, &r, e)) != 0) {
		sighting_report_release(&r);
		return rc;
	}
	skew = r.sent_ms - now * 1000;
	if (skew > SIGHTING_MAX_SKEW_MS || skew < -SIGHTING_MAX_SKEW_MS) {
		sighting_report_release(&r);
		return devid_error_set(e, DEVID_EINVAL,
		    "seen report: \"sentAt\" is %lld s from this server's clock (at most %d s)",
		    (long long)(skew / 1000), SIGHTING_MAX_SKEW_MS / 1000);
	}
	db = store_acquire(svc->store);
	/* an unknown tenant answers as a wrong signature does: no oracle of tenant names */
	if ((rc = store_tenant_get(db, r.tenant, &t, e)) != 0 || t.kind != TENANT_OEM) {
		rc = rc == 0 || rc == DEVID_ENOTFOUND
		    ? devid_error_set(e, DEVID_EAUTH,
			  "the report's X-Devid-Signature matches no webhook connector of tenant "
			  "%s",
			  r.tenant)
		    : rc;
		goto out;
	}
	if ((rc = report_signer(svc, db, &t, body, len, signature, &conn, e)) != 0 ||
	    (rc = db_begin(db, e)) != 0)
		goto out;
	rc = store_sighting_report_take(db, conn.id, r.id, now, REPORT_ID_KEEP_SECS, e);
	if (rc == DEVID_ECONFLICT) {
		db_rollback(db);
		rc = (*out = json_pack("{s:s, s:b}", "report", r.id, "duplicate", 1)) != NULL
		    ? 0
		    : devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	if (rc != 0)
		goto rollback;
	snprintf(source, sizeof(source), "connector:%s", conn.name);
	if ((rc = clone_policy_load(db, t.id, &total.policy, e)) != 0)
		goto rollback;
	for (size_t i = 0; i < r.n && total.policy.mode != CLONE_OFF; i++) {
		struct clone_eval c = {
		    .db = db, .tenant_id = t.id, .policy = total.policy, .now = now};

		/* another tenant's device, or none: the sender learns nothing of it */
		rc = store_device_get(db, t.id, r.s[i].udid, &c.d, e);
		if (rc == DEVID_ENOTFOUND) {
			ignored++;
			continue;
		}
		if (rc != 0 || (rc = observe(&c, source, &r.s[i], e)) != 0)
			goto rollback;
		accepted++;
		for (int k = 0; k < CLONE_NRULES; k++) {
			total.raised[k] += c.raised[k];
			suspicions += c.raised[k];
		}
		total.quarantined += c.quarantined;
	}
	if (total.policy.mode == CLONE_OFF)
		ignored = (int)r.n;
	if ((rc = db_commit(db, e)) != 0)
		goto out;
	count_raised(svc, &total);
	counter_add(&svc->metrics.sightings[SIGHTING_REPORT], (uint64_t)accepted);
	if ((*out = json_pack("{s:s, s:i, s:i, s:i}", "report", r.id, "accepted", accepted,
		 "ignored", ignored, "suspicions", suspicions)) == NULL)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	goto out;
rollback:
	db_rollback(db);
out:
	store_release(svc->store, db);
	connector_rec_release(&conn);
	sighting_report_release(&r);
	return rc;
}

static json_t *
suspicion_json(const struct db_rows *r, size_t i)
{
	json_t *detail = json_loads(db_rows_text(r, i, 3, NULL), 0, NULL);

	return json_pack("{s:I, s:s, s:s, s:o, s:b, s:o}", "id", (json_int_t)db_rows_int(r, i, 0),
	    "udid", db_rows_text(r, i, 1, NULL), "rule", db_rows_text(r, i, 2, NULL), "detail",
	    detail != NULL ? detail : json_object(), "quarantined", db_rows_int(r, i, 4) != 0, "at",
	    json_time(db_rows_int(r, i, 5)));
}

static json_t *
suspicions_json(const struct db_rows *r)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < db_rows_count(r); i++)
		if (json_array_append_new(a, suspicion_json(r, i)) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

int
clone_device_detail(
    struct db *db, int64_t tenant_id, int64_t device_id, json_t *j, struct devid_error *e)
{
	struct db_rows *r;
	json_t *a;
	int rc;

	if ((rc = store_suspicions(db, tenant_id, device_id, 0, SUSPICIONS_PAGE, &r, e)) != 0)
		return rc;
	a = suspicions_json(r);
	if (a == NULL ||
	    json_object_set_new(j, "suspectedClone", json_boolean(db_rows_count(r) > 0)) != 0 ||
	    json_object_set_new(j, "suspicions", a) != 0)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	db_rows_free(r);
	return rc;
}

int
service_suspicions(struct service *svc, const struct principal *p, const char *after, json_t **out,
    struct devid_error *e)
{
	struct db_rows *r = NULL;
	long long from = 0;
	char *end = NULL;
	struct db *db;
	json_t *a;
	size_t n;
	int rc;

	*out = NULL;
	if (!is_oem_reader(p))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM token reads suspicions");
	if (after != NULL &&
	    ((from = strtoll(after, &end, 10)) < 0 || end == after || *end != '\0'))
		return devid_error_set(e, DEVID_EINVAL, "\"after\" is not a suspicion id");
	db = store_acquire(svc->store);
	rc = store_suspicions(db, p->tenant.id, 0, (int64_t)from, SUSPICIONS_PAGE, &r, e);
	store_release(svc->store, db);
	if (rc != 0)
		return rc;
	n = db_rows_count(r);
	if ((a = suspicions_json(r)) == NULL ||
	    (*out = json_pack("{s:o, s:o}", "suspicions", a, "next",
		 n == SUSPICIONS_PAGE ? json_integer(db_rows_int(r, n - 1, 0)) : json_null())) ==
		NULL)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	db_rows_free(r);
	return rc;
}

int
clone_notice_json(struct db *db, int64_t suspicion_id, json_t **out, struct devid_error *e)
{
	struct db_rows *r;
	int rc;

	*out = NULL;
	if ((rc = store_suspicion_get(db, suspicion_id, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) != 1) {
		rc = devid_error_set(
		    e, DEVID_ENOTFOUND, "no suspicion %lld", (long long)suspicion_id);
	} else {
		json_t *detail = json_loads(db_rows_text(r, 0, 3, NULL), 0, NULL);

		if ((*out = json_pack("{s:s, s:o, s:b, s:o}", "rule", db_rows_text(r, 0, 2, NULL),
			 "at", json_time(db_rows_int(r, 0, 5)), "quarantined",
			 db_rows_int(r, 0, 4) != 0, "detail",
			 detail != NULL ? detail : json_object())) == NULL)
			rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	}
	db_rows_free(r);
	return rc;
}
