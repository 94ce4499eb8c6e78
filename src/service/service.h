/* SPDX-License-Identifier: Apache-2.0 */
/*
 * service.h - the domain of devid: who is calling, vendor batches, and the audit trail.
 * Knows no HTTP and no SQL dialect: it talks to storage through src/store and reports
 * outcomes as DEVID_E* codes with messages, which the HTTP layer maps to statuses:
 * DEVID_EINVAL 400, DEVID_EAUTH 401/403, DEVID_ENOTFOUND 404, DEVID_ECONFLICT 409.
 */
#ifndef DEVID_SERVICE_H
#define DEVID_SERVICE_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/dynbuf.h"
#include "lib/manifest_check.h"
#include "lib/tpm2_attest.h"
#include "service/metrics.h"
#include "store/store.h"

/*
 * The actor of an audit record: "token:<id>:<name>" for a request (the token that made it),
 * "admin-cli" for `devid admin` on the database, "device" for an EST enrollment.
 */
#define AUDIT_ACTOR_MAX (6 + 20 + 1 + MAX_NAME_LEN + 1)
#define AUDIT_ACTOR_ADMIN_CLI "admin-cli"

struct provisioner;
struct key_loader;
struct ca_cache;

/*
 * A rate limit kept in the database (store_rate_take), so every server of one database
 * counts against it: burst actions at once, then one every interval_ms. interval_ms 0: none.
 */
struct rate_limit {
	int64_t interval_ms;
	int64_t burst;
};

struct service {
	struct store *store;
	int verify_threads; /* threads verifying one batch (>= 1) */
	struct rate_limit claim_limit; /* claims per token and per address; zero: no limit */
	/* where this service is reached from outside, e.g. https://devid.example (no '/' at the
	 * end; public_url_check): operational certificates then name their tenant's CRL at
	 * <public_url>/api/v1/tenants/<tenant>/crl. NULL: no CRL distribution point. */
	const char *public_url;
	const struct provisioner *prov; /* product-cloud connectors; NULL: none configured */
	int max_attempts; /* deliveries of a chunk before its job is dead; 0: 10 */
	int job_lease; /* seconds a worker holds a job before another may take it; 0: 120 */
	const struct key_loader *keys; /* opens operational CA keys; NULL: no EST issuance */
	struct ca_cache *cas; /* tenants' CA keys once opened: service_ca_cache_new */
	/* encrypts connector secrets at rest; NULL: connectors with secrets are refused */
	const struct secrets_key *secrets;
	int session_ttl; /* seconds a console session lasts; 0: SESSION_DEFAULT_TTL */
	int upload_ttl; /* seconds an upload lives after its last page; 0: UPLOAD_DEFAULT_TTL */
	/* devid's P-256 custody key (docs/custody.md), borrowed: every change of owner writes
	 * a record it signs. NULL: no records are written (in-process services of unit tests). */
	EVP_PKEY *custody_key;
	struct service_metrics
	    metrics; /* what the domain counts: starts zeroed, read at /metrics */
};

/* The authenticated caller of a request. */
struct principal {
	struct tenant tenant;
	enum role role;
	char token_id[17]; /* the first 16 hex digits of the token's hash: rate-limit key */
	int64_t token; /* the token's id in the database */
	char token_name[MAX_NAME_LEN + 1];
	/* who acts, as the audit trail names it: "token:<id>:<name>" */
	char actor[AUDIT_ACTOR_MAX];
};

/*
 * Finds the tenant and role of a bearer token (its SHA-256 is looked up; the token is never
 * stored). DEVID_EAUTH when unknown, with a message that does not say why.
 */
int service_authenticate(
    struct service *svc, const char *token, size_t len, struct principal *p, struct devid_error *e);

/*
 * A vendor publishes a batch: body (len bytes) is {"descriptor":{JWS},"manifest":[entries]}. Every
 * check of manifest_check.h runs; the batch becomes visible with its devices and an audit record
 * in one transaction: all or nothing. It is an upload (below) of pages of
 * UPLOAD_BODY_PAGE_ENTRIES entries taken from the body, parsed and stored one page at a time,
 * so the memory it takes besides the body does not grow with the batch. r receives the
 * per-entry report (release it). Returns 0, DEVID_EAUTH (not a vendor, or another vendor's
 * batch), DEVID_EINVAL (rejected entries or batch rules: see r), DEVID_ECONFLICT (the batch
 * exists or is being uploaded, or a chip is already stored in another batch: see r).
 */
int service_publish(struct service *svc, const struct principal *p, const uint8_t *body, size_t len,
    struct manifest_report *r, struct devid_error *e);

/*
 * An OEM admin imports a vendor manifest (body: a JSON array of entries, no descriptor) as
 * batch `batch`, bound to the caller at once. The entries' signer decides the vendor, whose
 * trust checks every entry; groupId, where present, must equal batch. All or nothing,
 * audited; an upload of pages taken from the body, as service_publish.
 */
int service_import(struct service *svc, const struct principal *p, const char *batch,
    const uint8_t *body, size_t len, struct manifest_report *r, struct devid_error *e);

/* --- uploads: a batch sent in pages (upload.c, docs/api.md "Uploads") ------------------- */

/* Seconds an upload lives after its last page (service.upload_ttl 0: this). */
#define UPLOAD_DEFAULT_TTL (24 * 3600)

/* What an upload is opened for. */
struct upload_request {
	enum upload_kind kind;
	/* a publish (vendor): batch.json as the vendor signed it */
	const uint8_t *descriptor;
	size_t descriptor_len;
	const char *batch; /* an import (OEM admin): the batch's name in the caller's namespace */
	int64_t page_size; /* 1 to MAX_UPLOAD_PAGE_ENTRIES */
};

/*
 * Opens an upload: a publish's descriptor is checked as a publish checks it (the caller's
 * vendor, a trusted signer, its signature), and the batch is reserved, invisible, until the
 * commit. *u is the upload. DEVID_EAUTH (role, vendor), DEVID_EINVAL (request, descriptor:
 * r->batch_error), DEVID_ECRYPTO (trust), DEVID_ECONFLICT (the batch exists, or an upload of
 * it is open: e names its id).
 */
int service_upload_open(struct service *svc, const struct principal *p,
    const struct upload_request *req, struct upload_rec *u, struct manifest_report *r,
    struct devid_error *e);
/*
 * Page `page` (1, 2, ...) of the caller's upload ref: body is a JSON array of the upload's
 * page size entries (the last page: the rest). Parsed and checked on arrival, then its
 * devices stored under the reserved batch. The same page again (its SHA-256) changes
 * nothing and sets *replayed; another body for a page received is DEVID_ECONFLICT. A
 * refused page stores nothing and leaves the upload as it was: DEVID_EINVAL (entries: r, each
 * naming its place in the whole manifest and the page; or the page's size), DEVID_ECONFLICT (a
 * chip stored in another batch: r), DEVID_ENOTFOUND (no such upload of the caller's, or it
 * expired).
 */
int service_upload_page(struct service *svc, const struct principal *p, const char *ref,
    int64_t page, const uint8_t *body, size_t len, struct manifest_report *r, bool *replayed,
    struct devid_error *e);
/*
 * Commits the caller's upload ref: every page 1 to the last is there, a publish's entries
 * number the descriptor's count, and then the batch becomes visible with its devices and an
 * audit record in one transaction (an import is bound to the caller). r: the totals.
 * DEVID_EINVAL naming the missing pages or the count, DEVID_ECRYPTO (the signer was removed
 * from trust meanwhile), DEVID_ENOTFOUND.
 */
int service_upload_commit(struct service *svc, const struct principal *p, const char *ref,
    struct manifest_report *r, struct devid_error *e);
/* Aborts the caller's upload ref: it and everything it stored are deleted. */
int service_upload_abort(
    struct service *svc, const struct principal *p, const char *ref, struct devid_error *e);
/*
 * The caller's upload as JSON (docs/api.md "Uploads"), with its pages when with_pages; the
 * list of the caller's uploads, {"uploads":[...]}.
 */
int service_upload_get(struct service *svc, const struct principal *p, const char *ref,
    json_t **out, struct devid_error *e);
int service_upload_list(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e);
json_t *service_upload_json(
    const struct upload_rec *u, const struct upload_page *pages, size_t npages);
/*
 * Deletes the uploads expired at `now` and what they stored, and what an interrupted abort
 * left; *n (may be NULL) counts the uploads. Runs in short transactions, beside other writers.
 */
int service_upload_purge(struct service *svc, int64_t now, size_t *n, struct devid_error *e);

/* The answer to every claim that does not bind: no oracle tells the cases apart. */
#define CLAIM_NOT_FOUND_MSG "no batch matches this claim code"

/*
 * An OEM admin or operator claims the batch named by a claim code text. Binds an unclaimed
 * batch (or one in transfer, with the transfer code) to the caller in one transaction with
 * its audit record; a repeat claim by the owner succeeds without change (*changed false).
 * A wrong code, another tenant's batch and a missing batch all answer DEVID_ENOTFOUND with
 * CLAIM_NOT_FOUND_MSG, after a constant-time comparison. DEVID_ELIMIT when the caller's token
 * or address (addr, may be NULL) is over its rate (svc->claim_limit, shared by every server
 * of the database), with *retry_after (may be NULL) the seconds until one more claim is
 * allowed; a refused claim takes nothing from either bucket and changes nothing.
 * DEVID_EINVAL for a malformed code. Claiming with a transfer code revokes the operational
 * certificates the previous owner holds for the batch's devices (affiliationChanged).
 */
int service_claim(struct service *svc, const struct principal *p, const char *addr,
    const uint8_t *code, size_t len, struct batch_rec *b, bool *changed, int *retry_after,
    struct devid_error *e);

/*
 * The owner's admin starts a transfer: a fresh one-time claim code (written to code) for the
 * next owner; the batch stays the caller's until that code is used.
 */
int service_transfer(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, char *code, size_t codelen, struct devid_error *e);
/*
 * The owner's admin returns the batch to unclaimed: pushes stop, removals are queued, and the
 * operational certificates the owner holds for its devices are revoked (affiliationChanged),
 * so they are on the owner's CRL; the next owner's devices enroll afresh.
 */
int service_release(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, struct devid_error *e);

/* Reading: an OEM's own batches and devices. Another tenant's objects are "not found". */
#define PAGE_MAX 1000

/*
 * {"batches":[{vendor,batch,partNumber,count,source,claimedAt,signer,state,devices}],
 * "next":cursor|null}: state "claimed" or "transfer" (a transfer code is out), devices
 * {"active":N,"revoked":N}.
 */
int service_batches(struct service *svc, const struct principal *p, int64_t after, size_t limit,
    json_t **out, struct devid_error *e);
/*
 * GET /api/v1/batches/{vendor}/{batch}/custody: {"vendor","batch","records":[JWS…]}, the
 * chain of custody (docs/custody.md). Seen by the batch's current owner (admin or operator)
 * and by its vendor; DEVID_ENOTFOUND for anyone else, as for a batch that does not exist.
 */
int service_custody_get(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, json_t **out, struct devid_error *e);
int service_batch_get(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, json_t **out, struct devid_error *e);
/*
 * {"devices":[{udid,serial,vendor,batch,state}],"next":cursor|null}; filters may be NULL. q:
 * devices whose chip serial starts with q (1 to 64 printable ASCII characters, byte for
 * byte) or, when q is 4 hex digits or more, whose UDID starts with it (any case); another q
 * is DEVID_EINVAL, the message starting "q:".
 */
int service_devices(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, const char *state, const char *q, int64_t after, size_t limit, json_t **out,
    struct devid_error *e);
/*
 * One device as listed, with "birthCertificate" {subject, issuer (RFC 2253), serial (hex),
 * notBefore, notAfter (Unix seconds), keyType, sha256 (of the DER)}, "clouds" (its last
 * outcome in each of the tenant's jobs that carried it, "pending" while a pending job has
 * none, newest first, at most 100) and "certificates" (the operational certificates the
 * tenant's CA issued to it, newest first, at most 100).
 */
int service_device_get(struct service *svc, const struct principal *p, const char *udid,
    json_t **out, struct devid_error *e);
/*
 * The owner's admin revokes a device with an RFC 5280 reason (a name revoke_reason_parse
 * accepts; NULL: unspecified): EST refuses it, its operational certificates go on the CRL
 * with that reason, removals are queued, all with an audit record. Idempotent: a revoked
 * device stays revoked with its first reason. DEVID_EINVAL for a reason not allowed.
 */
int service_revoke(struct service *svc, const struct principal *p, const char *udid,
    const char *reason, struct devid_error *e);

/* RFC 5280 5.3.1 CRLReason codes devid uses. */
#define CRL_REASON_UNSPECIFIED 0
#define CRL_REASON_KEY_COMPROMISE 1
#define CRL_REASON_AFFILIATION_CHANGED 3
#define CRL_REASON_SUPERSEDED 4
#define CRL_REASON_CESSATION_OF_OPERATION 5
#define CRL_REASON_PRIVILEGE_WITHDRAWN 9

/*
 * A revocation reason by its RFC 5280 name: unspecified, keyCompromise, affiliationChanged,
 * superseded, cessationOfOperation, privilegeWithdrawn. Refused (DEVID_EINVAL, the message
 * says why): certificateHold and removeFromCRL (a devid revocation is final, and there are
 * no delta CRLs), cACompromise and aACompromise (not about a device), anything else.
 */
int revoke_reason_parse(const char *name, int *code, struct devid_error *e);
/* The RFC 5280 name of a CRLReason code ("unspecified" for unknown codes). */
const char *revoke_reason_name(int code);

/*
 * Checks a public base URL for `devid serve --public-url`: http:// or https://, a host,
 * printable ASCII without spaces, quotes, backslashes, '<' or '>', no query or fragment, at most
 * PUBLIC_URL_MAX bytes. One trailing '/' is allowed (dropped when the URL is used).
 */
#define PUBLIC_URL_MAX 512
int public_url_check(const char *url, struct devid_error *e);

enum manifest_format { MANIFEST_JSON, MANIFEST_PEM, MANIFEST_CSV };

int manifest_format_parse(const char *s, enum manifest_format *out);
const char *manifest_format_type(enum manifest_format f); /* a media type */
/*
 * The owner's admin downloads a batch: JSON (the original signed entries, as an array), a PEM
 * bundle of the birth certificates, or RFC 4180 CSV "device_id,group_id,certificate" with the
 * PEM quoted. Appended to out.
 */
int service_manifest(struct service *svc, const struct principal *p, const char *vendor,
    const char *batch, enum manifest_format f, struct dynbuf *out, struct devid_error *e);

/* --- provisioning into product clouds ----------------------------------------------------- */

#define PUSH_CHUNK 1000 /* devices per delivery */

/* One device of a delivery (borrowed for the length of the call). */
struct delivery_device {
	const char *udid, *serial, *batch;
	const uint8_t *cert_der; /* a TPM's: its EK certificate */
	size_t cert_len;
	bool tpm; /* a TPM registered by its EK certificate (kind 'tpm'), not a chip */
};

/* The outcome of one device of a delivery, for GET /api/v1/jobs/{id}/devices. */
enum delivery_status { DELIVERY_OK, DELIVERY_FAILED };

/*
 * "Deliver these devices to this cloud": all a connector sees. A connector that calls its
 * cloud once per device (or per few) uses throttle before each call and reports each
 * device's outcome with result; both may be NULL (then it does neither).
 */
struct delivery {
	const char *event_id; /* the same for every retry of this chunk: receivers apply it once */
	bool remove;
	bool revoke; /* a remove because the device was revoked (not a release or transfer) */
	const char *tenant;
	const char *connector; /* the connector's name, unique in the tenant */
	/*
	 * Not NULL: a notice, not a change: the devices are suspected clones, and this is the
	 * suspicion, {"rule","at","quarantined","detail"} (docs/clone-detection.md). Only
	 * webhook connectors are sent notices; the others take them as done.
	 */
	const json_t *suspicion;
	const struct delivery_device *devices;
	size_t n;
	/*
	 * Blocks until the rate limit named call of this connector allows one more request,
	 * at per_second with a burst of one second's worth, shared by every server of the
	 * database. 0, or a DEVID_E* code (the delivery then stops and is retried later).
	 */
	int (*throttle)(void *ctx, const char *call, double per_second, struct devid_error *e);
	/* Records devices[i]'s outcome; message says why when it failed (no secrets). */
	void (*result)(void *ctx, size_t i, enum delivery_status status, const char *message);
	/*
	 * The connector is about to spend up to secs more seconds on this delivery before its
	 * next request (waiting for its cloud's rate or a Retry-After): keeps the job leased to
	 * this worker until then plus the job lease, so that no other worker sends the chunk
	 * meanwhile. A request itself must fit in the lease (devid serve --job-lease, 120 s by
	 * default, above CONNECTOR_TIMEOUT_SECS). 0, or a DEVID_E* code: the job is no longer
	 * this worker's, or the database failed; the delivery then stops at once. May be NULL.
	 */
	int (*hold)(void *ctx, double secs, struct devid_error *e);
	/*
	 * The cloud asked for no call before secs from now (a Retry-After longer than the
	 * connector waits itself). When deliver then fails, the job waits that long instead of
	 * the outbox's backoff, and no attempt is counted. May be NULL.
	 */
	void (*defer)(void *ctx, int64_t secs);
	void *ctx;
};

/* The connectors, implemented by src/connectors and wired by src/cli. */
struct provisioner {
	/* 0 if type is known and config (a JSON object) is complete for it. */
	int (*validate)(const char *type, const json_t *config, struct devid_error *e);
	/* config as it may be shown: secrets left out. New reference. */
	json_t *(*redact)(const char *type, const json_t *config);
	/* 0 when the cloud took the whole chunk. */
	int (*deliver)(const char *type, const json_t *config, const struct delivery *d,
	    struct devid_error *e);
	/* The config members of type that are secret, NULL-terminated (NULL: none). */
	const char *const *(*secret_fields)(const char *type);
	/*
	 * Asks the cloud something harmless with config's credentials, for tenant: 0 when
	 * the question was asked, with *ok whether the cloud answered as it answers a working
	 * configuration and msg what it said or why it could not be reached (never a secret);
	 * DEVID_ECONFLICT, with the reason in e, when type has no such call.
	 */
	int (*test)(const char *type, const json_t *config, const char *tenant, bool *ok, char *msg,
	    size_t len, struct devid_error *e);
};

/*
 * Connector secrets at rest (secrets.c, docs/secrets.md). The key that encrypts them:
 * AES-256-GCM, 12-byte nonces, 16-byte tags, implemented by src/cli (a file of 32 random
 * bytes, or an AES key inside a PKCS#11 token). seal and open may be called from many threads.
 */
#define SECRETS_NONCE_LEN 12
#define SECRETS_TAG_LEN 16
#define SECRETS_NEED_KEY_MSG                                                                       \
	"connector secrets need devid serve --secrets-key (they are stored encrypted, and this "   \
	"server has no key)"

struct secrets_key {
	char id[17]; /* names the key in stored values: secrets_key_set_id */
	/*
	 * AES-256-GCM: encrypt in[0..n) to out[0..n) and tag, or decrypt in and tag to out
	 * (DEVID_ECRYPTO when the tag does not match: nothing of out may be used then). in
	 * and out may be NULL when n is 0.
	 */
	int (*gcm)(void *ctx, bool encrypt, const uint8_t nonce[SECRETS_NONCE_LEN],
	    const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t n, uint8_t *out,
	    uint8_t tag[SECRETS_TAG_LEN], struct devid_error *e);
	void *ctx;
};

/*
 * Sets k->id: 16 hex digits of the GCM tag of nothing under an all-zero nonce and fixed
 * additional data, so a value encrypted under another key is named as such before decrypting.
 */
int secrets_key_set_id(struct secrets_key *k, struct devid_error *e);
/* Whether config holds any of fields (a NULL-terminated list; NULL: none). */
bool secrets_config_has(const json_t *config, const char *const *fields);
/*
 * Replaces each string field of config named in fields by {"enc":"v1:<key id>:<b64url(nonce |
 * ciphertext | tag)>"}, bound to tenant, connector and field. k NULL with a secret present:
 * DEVID_ECONFLICT, SECRETS_NEED_KEY_MSG.
 */
int secrets_seal_config(const struct secrets_key *k, const char *const *fields, const char *tenant,
    const char *connector, json_t *config, struct devid_error *e);
/*
 * The reverse, in place. A field still a string (stored before encryption) is left as it
 * is. DEVID_ECONFLICT when k is NULL, DEVID_ECRYPTO when the value was encrypted under another
 * key or does not decrypt (changed, or copied from another connector).
 */
int secrets_open_config(const struct secrets_key *k, const char *const *fields, const char *tenant,
    const char *connector, json_t *config, struct devid_error *e);
/* Wipes the plaintext string fields of config before it is released. */
void secrets_wipe_config(json_t *config, const char *const *fields);

/* An OEM admin creates or replaces a connector: {"type","mode":"auto"|"manual","config"}. */
int service_connector_put(struct service *svc, const struct principal *p, const char *name,
    const json_t *body, bool *created, struct devid_error *e);
/* One or all connectors, secrets left out. */
int service_connector_get(struct service *svc, const struct principal *p, const char *name,
    json_t **out, struct devid_error *e);
int service_connectors(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e);
int service_connector_delete(
    struct service *svc, const struct principal *p, const char *name, struct devid_error *e);
/*
 * An OEM admin tests a connector (provisioner.test with its secrets opened): {"ok":bool,
 * "message"}. DEVID_ECONFLICT when its type has no test call; DEVID_ENOTFOUND for a missing
 * connector and another tenant's alike. Changes nothing, so nothing is audited.
 */
int service_connector_test(struct service *svc, const struct principal *p, const char *name,
    json_t **out, struct devid_error *e);
/* Manual trigger: {"connector":NAME, "batch":"V/B"} or {"connector":NAME, "devices":[udid]}. */
int service_provision(struct service *svc, const struct principal *p, const json_t *body,
    json_t **out, struct devid_error *e);
/* The tenant's jobs: {"jobs":[{id,connector,action,batch|udid,state,delivered,total,…}]}. */
int service_jobs(struct service *svc, const struct principal *p, const char *state, json_t **out,
    struct devid_error *e);

/*
 * The devices of one of the tenant's jobs with their last outcome, a page of at most 1,000 by
 * UDID after `after` (NULL: from the start), status "ok", "failed" or NULL (all):
 * {"job":id,"devices":[{udid,status,message?,at}],"next":udid|null}. DEVID_ENOTFOUND for a
 * missing job and for another tenant's alike.
 */
int service_job_devices(struct service *svc, const struct principal *p, int64_t id,
    const char *status, const char *after, json_t **out, struct devid_error *e);

/* The jobs of one connector type in one state ("pending" or "dead"), every tenant's. */
struct job_count {
	char type[SERVICE_METRICS_TYPE_LEN + 1];
	char state[8];
	int64_t n;
};
/*
 * The pending and dead jobs by connector type, read from the database now (so every server
 * of one database reports the same): at most max into out, their number in *n.
 */
int service_job_counts(
    struct service *svc, struct job_count *out, size_t max, size_t *n, struct devid_error *e);

/*
 * One step of a delivery worker: takes a due job, delivers its next chunk, records the
 * outcome (retry with capped exponential backoff and jitter; dead after max_attempts).
 * Returns 1 when it worked on a job, 0 when none was due, or a DEVID_E* code.
 */
int service_outbox_step(struct service *svc, struct devid_error *e);

/*
 * Appends a record to a tenant's audit chain inside the caller's transaction:
 * hash = SHA-256 of the canonical JSON of the record, which includes the previous hash.
 * detail is a JSON object (borrowed).
 */
int audit_append(struct db *db, int64_t tenant_id, const char *actor, const char *action,
    const char *object, const json_t *detail, struct devid_error *e);

/* An OEM admin reads its audit trail: {"records":[…],"next":seq|null}. */
int service_audit(struct service *svc, const struct principal *p, int64_t after, size_t limit,
    json_t **out, struct devid_error *e);

/*
 * Recomputes a tenant's whole chain. 0 with *count records when intact; DEVID_ECRYPTO naming
 * the first record (seq) that was changed, removed or inserted, with *count the records
 * before it (so it is seq *count + 1).
 */
int audit_verify(struct db *db, int64_t tenant_id, int64_t *count, struct devid_error *e);
/*
 * The same, and the hash of record at_seq (all zeros for 0; the last record's for at_seq < 0)
 * in at_hash when it is reached.
 */
int audit_verify_at(struct db *db, int64_t tenant_id, int64_t at_seq, char at_hash[65],
    int64_t *count, struct devid_error *e);

/*
 * GET /api/v1/audit/verify (an OEM admin): audit_verify_at over the caller's tenant,
 * {"ok":true,"records":N,"head":"<hash of the last record>"} or {"ok":false,"records":N (the
 * records before the break),"brokenAt":SEQ,"message"}.
 */
int service_audit_verify(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e);

/*
 * Audit checkpoints (checkpoint.c): a signed head of a tenant's chain that the operator keeps
 * outside the database, so that a trail cut short (its last records deleted, which leaves a
 * chain that verifies) is found out. A compact JWS (RFC 7515 7.1), ES256, protected header
 * {"alg":"ES256","typ":AUDIT_CHECKPOINT_TYP,"kid":b64url(SHA-256 of the key's DER SPKI)},
 * payload {"v":1,"tenant":NAME,"seq":N,"hash":HEX,"at":UNIX} (docs/audit.md).
 */
#define AUDIT_CHECKPOINT_TYP "devid-audit-checkpoint+jws"
#define AUDIT_CHECKPOINT_MAX 4096 /* bytes of a checkpoint file */

struct audit_checkpoint {
	char tenant[MAX_NAME_LEN + 1];
	int64_t seq; /* records in the chain when it was made */
	char hash[65]; /* the hash of record seq (64 zeros for an empty chain) */
	int64_t at; /* when it was made */
	char kid[44]; /* b64url SHA-256 of the signing key's SubjectPublicKeyInfo */
};

/*
 * Verifies the tenant's whole chain (a checkpoint must not vouch for a broken one) and signs
 * its head with key (EC P-256, may live in a token). *out: the JWS text, malloc'd; cp (may be
 * NULL) what it says.
 */
int audit_checkpoint_make(struct db *db, const char *tenant, EVP_PKEY *key, char **out,
    struct audit_checkpoint *cp, struct devid_error *e);
/*
 * Checks a checkpoint (len bytes, surrounding white space allowed): its signature with pub,
 * that it names this tenant, then the chain: intact, at least cp->seq records, and record
 * cp->seq the one it signed. 0 with *count records and *cp filled; DEVID_ECRYPTO for a bad
 * signature or a chain that fails, naming the checkpoint's seq; DEVID_EINVAL for a malformed
 * checkpoint or another tenant's.
 */
int audit_checkpoint_verify(struct db *db, const char *tenant, const uint8_t *jws, size_t len,
    EVP_PKEY *pub, struct audit_checkpoint *cp, int64_t *count, struct devid_error *e);

/* --- operational certificates: the tenant CA, quota, EST, CRL ---------------------------- */

/*
 * Opens (or makes) a CA private key named by a URI: file:PATH (a PEM key, development only)
 * or pkcs11:... (RFC 7512; the key stays in the token). Implemented by src/cli. *pkey is
 * borrowed from *handle until close(handle).
 */
struct key_loader {
	int (*open)(const char *uri, void **handle, EVP_PKEY **pkey, struct devid_error *e);
	/* A new EC P-256 key: a new file (mode 0600, refused if it exists) or a new key in the
	 * token, sensitive and not extractable. */
	int (*generate)(const char *uri, void **handle, EVP_PKEY **pkey, struct devid_error *e);
	void (*close)(void *handle);
};

/* The cache of opened CA keys behind svc->cas (thread-safe); free accepts NULL. */
struct ca_cache *service_ca_cache_new(void);
void service_ca_cache_free(struct ca_cache *c, const struct key_loader *keys);

#define CA_DEFAULT_VALIDITY_DAYS 30
#define CA_MAX_VALIDITY_DAYS 3650

/*
 * `devid admin ca init`: generates the tenant's operational CA key (key_uri through
 * svc->keys->generate), makes its self-signed CA certificate (CN "devid operational CA
 * <tenant>", O <tenant>, 20 years, pathlen 0, keyCertSign + cRLSign) and stores both with an
 * audit record. DEVID_ECONFLICT if the tenant has a CA already; DEVID_ENOTFOUND if no such
 * OEM tenant. The certificate is returned in *ca_out when not NULL (new reference).
 */
int service_ca_init(struct service *svc, const char *tenant, const char *key_uri, int validity_days,
    X509 **ca_out, struct devid_error *e);
/*
 * `devid admin ca rotate`: the tenant's next CA generation. A new key (key_uri through
 * svc->keys->generate; it must not be the current key's URI) and its self-signed certificate
 * (as ca init's, with OU "generation N" for N >= 2) become the CA that issues from now on,
 * with the current CA's validity; the current CA is retired with the two RFC 4210 4.4
 * key-update certificates (NewWithOld, signed by the old key; OldWithNew, signed by the new)
 * and stays trusted for re-enrollment, listed by /cacerts and `ca show` and serving its own
 * CRL for as long as a certificate it issued is unexpired. Audited as ca.rotate. The new
 * certificate is returned in *ca_out when not NULL (new reference). DEVID_ENOTFOUND if the
 * tenant has no CA; DEVID_EINVAL for the current key's URI.
 */
int service_ca_rotate(struct service *svc, const char *tenant, const char *key_uri, X509 **ca_out,
    struct devid_error *e);
/*
 * The tenant's trusted CA certificates (`ca show`, a relying party's trust bundle): the
 * current CA first, then each retired CA that issued a certificate still unexpired, newest
 * first. New stack; DEVID_ENOTFOUND if it has no CA.
 */
int service_ca_get(
    struct service *svc, const char *tenant, STACK_OF(X509) **out, struct devid_error *e);
/* Sets the validity of the operational certificates the tenant's CA issues (1..3650 days). */
int service_ca_set_validity(
    struct service *svc, const char *tenant, int days, struct devid_error *e);

/*
 * Quota: the most devices of the tenant that may hold an operational certificate (a device
 * counts once, however often it renews). No quota set means no limit. `devid admin quota set`
 * (by tenant name, max >= 0) and the tenant admin's API:
 *   GET /api/v1/quota -> {"max":N|null,"used":M}; PUT /api/v1/quota {"max":N|null}.
 */
int service_quota_set_admin(
    struct service *svc, const char *tenant, int64_t max, struct devid_error *e);
int service_quota_get(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e);
int service_quota_put(
    struct service *svc, const struct principal *p, const json_t *body, struct devid_error *e);

/*
 * An EST enrollment (RFC 7030 4.2). The device authenticated in TLS with client_cert (the
 * handshake proved it holds the key; the chain it sent is client_chain, untrusted, may be
 * NULL). label is the path label (a tenant name) or NULL. csr has a valid proof of
 * possession (the caller checked it).
 *
 * EST_ENROLL: client_cert is a birth certificate: it chains to a trusted vendor root and is
 * the very certificate stored for the device. EST_REENROLL: client_cert is a current
 * operational certificate of the device's tenant (chains to its CA, issued by devid, not
 * expired) and the CSR's subject equals its subject; the device is the one its key names
 * or, for a TPM device (whose LDevID certifies a signing key, not its EK), the one its
 * subject's CN names. Both: the device is claimed, not
 * revoked, its owner has a CA (and is the label's tenant if a label is given), the quota
 * allows one more device (a device that holds a certificate already always may renew), and
 * the CSR's key is the device's key, its point uncompressed (x509_spki_check_uncompressed, so
 * that the certificate's UDID is the device's), compared as encoded (x509_spki_same): the
 * CSR's key need not have been decoded (csr_from_der with the client certificate as holder). Then
 * the profile decides the certificate: subject CN=<udid>, O=<tenant>, serialNumber=<chip serial>;
 * basicConstraints CA:FALSE, keyUsage digitalSignature, extKeyUsage clientAuth, SKI, AKI; notBefore
 * now - 5 min, notAfter notBefore + the tenant's validity; serial 16 random bytes, unique by
 * constraint. Stored with an audit record carrying the certificate, in one transaction.
 *
 * *issued is made for encoding (i2d_X509, a PKCS#7 answer): its SubjectPublicKeyInfo is the
 * CSR's, copied as DER and not decoded again (OpenSSL 3.0 spends a tenth of an enrollment on
 * that), so X509_get0_pubkey(*issued) is NULL. Decode its DER to use the key.
 *
 * Errors: DEVID_EAUTH (the client certificate does not authenticate a device: unknown,
 * chain fails, expired, not devid's), DEVID_EAUTH also for not claimed / revoked / another
 * tenant's label (the message says which: the device learns only about itself),
 * DEVID_ELIMIT (over quota), DEVID_EINVAL (the CSR's key or subject is not acceptable),
 * DEVID_ECONFLICT (the owner has no operational CA).
 */
int service_est_enroll(struct service *svc, enum est_op op, const char *label, const char *peer,
    X509 *client_cert, STACK_OF(X509) *client_chain, X509_REQ *csr, X509 **issued,
    struct devid_error *e);

/*
 * Enrollment of a TPM device by credential activation (docs/tpm.md), in two calls: the EK
 * cannot sign, so the device proves its keys live in the TPM that holds the registered EK.
 */

/* How long an activation may be answered. */
#define TPM_ACTIVATION_TTL_SECS 300

/* What a TPM device sends to be activated: each member borrowed, the bytes received. */
struct tpm_activate_request {
	const uint8_t *ek_cert; /* its EK certificate, DER; or NULL and udid */
	size_t ek_cert_len;
	const char *udid; /* the device's UDID (lowercase hex); NULL with ek_cert */
	const uint8_t *ak_public; /* the AK's TPM2B_PUBLIC */
	size_t ak_public_len;
	const uint8_t *key_public; /* the signing key's TPM2B_PUBLIC */
	size_t key_public_len;
	const uint8_t *certify_info; /* TPMS_ATTEST of TPM2_Certify(key, by the AK) */
	size_t certify_info_len;
	const uint8_t *certify_signature; /* its TPMT_SIGNATURE */
	size_t certify_signature_len;
	const uint8_t *csr; /* PKCS#10, DER, signed by the signing key */
	size_t csr_len;
};

/* An activation handed out: what TPM2_ActivateCredential takes, and its id. */
struct tpm_activation {
	char id[TPM_ACTIVATION_REF_LEN + 1];
	struct tpm2_credential cred;
	int64_t expires_at; /* Unix seconds */
};

/*
 * The first call. The device is found by its UDID (SHA-256 of the EK's SubjectPublicKeyInfo):
 * of the EK certificate sent, which must then be the one stored for it byte for byte, or
 * given. It must be a TPM device (kind tpm), claimed (by label's tenant if label is not NULL),
 * not revoked, its owner with a CA. Then: the AK (tpm2_ak_check), the signing key
 * (tpm2_signing_key_check), the Certify of the key by the AK (tpm2_certify_check), the CSR
 * (csr_from_der) whose key is the signing key's. A fresh random secret is wrapped to the EK
 * public of the stored certificate for the AK's name (tpm2_make_credential) and the
 * activation is stored (its secret only as SHA-256, the CSR with it) for
 * TPM_ACTIVATION_TTL_SECS, replacing one the device had. Errors as service_est_enroll's:
 * DEVID_EINVAL (a structure or the CSR malformed, the CSR's key not the signing key's),
 * DEVID_EAUTH (unknown or not a TPM, another EK certificate, not claimed, revoked, another
 * tenant's label, a key or Certify rule broken: the message names it), DEVID_ECRYPTO (the
 * Certify signature does not verify), DEVID_ECONFLICT (no CA).
 */
int service_tpm_activate(struct service *svc, const char *label,
    const struct tpm_activate_request *r, struct tpm_activation *out, struct devid_error *e);

/*
 * The second call: the activation id is taken (deleted, whatever follows), must not have
 * expired, and SHA-256(secret) must equal its secret's (constant time); then, the device
 * still claimed by the same tenant (and label's), not revoked, the LDevID of
 * service_est_enroll's profile is issued to the CSR's key, with the quota and the audit
 * record est.tpm_enroll. *issued as service_est_enroll's. Errors: DEVID_EINVAL (id or secret
 * malformed), DEVID_EAUTH (no such activation: unknown, used or expired; a wrong secret; the
 * device released, revoked or another tenant's label), DEVID_ELIMIT (quota),
 * DEVID_ECONFLICT (no CA).
 */
int service_tpm_enroll(struct service *svc, const char *label, const char *id,
    const uint8_t *secret, size_t secret_len, X509 **issued, struct devid_error *e);

/*
 * /cacerts: the CA certificates of the tenant named by label, or (label NULL) of the owner of
 * the device client_cert authenticates (may be NULL: then DEVID_EINVAL "name the tenant"):
 * the current CA first, then for each live retired CA (service_ca_get) the RFC 7030 4.1.3
 * root key update certificates: OldWithOld, NewWithOld, OldWithNew. New stack.
 * DEVID_ENOTFOUND when that tenant has no CA.
 */
int service_est_cacerts(struct service *svc, const char *label, X509 *client_cert,
    STACK_OF(X509) **out, struct devid_error *e);

/*
 * The CRL (DER) of one CA generation of the tenant (1: its first CA): every unexpired
 * revoked certificate that generation issued, signed by its key, cached and re-signed when
 * the revoked set changes or after 12 hours (nextUpdate is thisUpdate + 1 day). A
 * certificate's CRL distribution point names its generation's CRL. DEVID_ENOTFOUND when the
 * tenant does not exist or has no such CA.
 */
int service_crl(struct service *svc, const char *tenant, int64_t generation, struct dynbuf *der,
    struct devid_error *e);

/* --- issue 10: tenants, tokens and trust, listed and undone (admin.c) -------------------- */

/*
 * Two callers administer: `devid admin` on the database (the _admin functions: any tenant,
 * by name; audited as AUDIT_ACTOR_ADMIN_CLI) and a tenant's admin token over the API (the
 * others: only the caller's own tenant, whose other objects answer DEVID_ENOTFOUND; audited
 * as p->actor). Every change writes an audit record in the affected tenant's chain in the
 * same transaction, never with a secret in it. Lists are JSON:
 *   tenant  {"name","kind","createdAt"}
 *   token   {"id","name","role","createdAt","expiresAt","lastUsedAt","revokedAt","state"}
 *           (state active|expired|revoked; times are RFC 3339 or null; never the secret
 *           or its hash)
 *   trust   {"id","vendor","owner","signer","sha256","addedAt","removedAt"}
 *           (vendor: the namespace it admits batches into; owner: null for a devid vendor's
 *           own trust, else the OEM tenant that added it for its imports; signer: the
 *           signer certificate's subject; sha256: of its DER, as x5t#S256 names it)
 */

/* Token lifetimes: "90d", "12h", "30m", "45s", or an RFC 3339 date or date-time (UTC or
 * with an offset) in the future. *out is the absolute expiry (Unix seconds). */
int token_expiry_parse(const char *s, int64_t now, int64_t *out, struct devid_error *e);

/* Token names: [A-Za-z0-9._-]{1,64}, not all digits (an all-digit word is a token id). */
bool token_name_valid(const char *s);

#define TOKEN_TEXT_MAX 64 /* a token: 43 base64url characters and a NUL */

int service_tenant_add(
    struct service *svc, const char *name, enum tenant_kind kind, struct devid_error *e);
/* {"tenants":[tenant…]} */
int service_tenants(struct service *svc, json_t **out, struct devid_error *e);

/*
 * A new token of the tenant: 32 random bytes, base64url, written to token (shown once; only
 * its SHA-256 is stored). name NULL names it token-<id>; expires_at 0: never. *info (may be
 * NULL) receives the token as listed.
 */
int service_token_add_admin(struct service *svc, const char *tenant, enum role role,
    const char *name, int64_t expires_at, char token[TOKEN_TEXT_MAX], json_t **info,
    struct devid_error *e);
/* {"tenant":…,"tokens":[token…]} */
int service_tokens_admin(
    struct service *svc, const char *tenant, json_t **out, struct devid_error *e);
/* Revokes the tenant's token named, or numbered (all digits), ref. */
int service_token_revoke_admin(
    struct service *svc, const char *tenant, const char *ref, struct devid_error *e);

/* POST /api/v1/tokens {"name","role":"admin"|"operator","expires"?}: the listed token plus
 * "token" (the secret, this once). */
int service_token_post(struct service *svc, const struct principal *p, const json_t *body,
    json_t **out, struct devid_error *e);
int service_tokens(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e);
/* DELETE /api/v1/tokens/{id}: revokes; answers the token as listed. */
int service_token_delete(struct service *svc, const struct principal *p, const char *id,
    json_t **out, struct devid_error *e);

/*
 * Trusts a manifest signer (PEM, exactly one certificate) under a root (PEM, one or more).
 * The signer must be P-256 and chain to the root, must not be a CA (RFC 5280 4.2.1.9) and
 * must have keyUsage digitalSignature (RFC 5280 4.2.1.3). vendor: a devid vendor tenant's
 * own trust; tenant: an OEM's import trust, refused when the signer or a root is a devid
 * vendor's (that vendor's chips are bound only by claim code). One of the two is NULL.
 * *out (may be NULL): the trust as listed.
 */
int service_trust_add_admin(struct service *svc, const char *vendor, const char *tenant,
    const char *root_pem, const char *signer_pem, json_t **out, struct devid_error *e);
/* {"trust":[trust…]}: of the vendor's namespace, of the OEM's, or (both NULL) all. */
int service_trust_list_admin(struct service *svc, const char *vendor, const char *tenant,
    json_t **out, struct devid_error *e);
/* Retires a signer: its future manifests are refused; the batches it admitted stay. */
int service_trust_remove_admin(
    struct service *svc, int64_t id, json_t **out, struct devid_error *e);

/* POST /api/v1/trust {"root":PEM,"signer":PEM}: the OEM admin's import trust. */
int service_trust_post(struct service *svc, const struct principal *p, const json_t *body,
    json_t **out, struct devid_error *e);
/* GET /api/v1/trust: the caller's own trust (an OEM's import trust, a vendor's own). */
int service_trust_get(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e);
/* DELETE /api/v1/trust/{id} (admin): answers the trust as listed. */
int service_trust_delete(struct service *svc, const struct principal *p, const char *id,
    json_t **out, struct devid_error *e);

/* --- console sessions (session.c, docs/console.md "Sign in and sessions") ---------------- */

#define SESSION_DEFAULT_TTL 28800 /* seconds: 8 hours */
#define SESSION_MAX_TTL 2592000 /* seconds: 30 days, the most --session-ttl takes */
#define SESSION_TEXT_LEN 43 /* base64url of 32 bytes, unpadded */

/*
 * A live session as its holder knows it. The server stores only the SHA-256 of the secret's
 * 32 bytes; csrf is derived again on each request, never stored:
 * base64url(SHA-256("devid-csrf:" || the secret's 32 bytes, not its text)).
 */
struct session {
	char secret[SESSION_TEXT_LEN + 1]; /* the cookie's value: base64url of 32 random bytes */
	char csrf[SESSION_TEXT_LEN + 1]; /* the X-CSRF-Token a change made with it must carry */
	int64_t expires_at; /* absolute: use does not renew it */
};

/* The seconds a session opened now lasts: svc->session_ttl, or SESSION_DEFAULT_TTL. */
int service_session_ttl(const struct service *svc);
/*
 * Signs in to the console: checks the token (len bytes) as service_authenticate does, opens a
 * session of svc->session_ttl seconds for it and audits "session.open" as the token; *p is the
 * token's principal, *s the new session (the secret is shown to the caller once). Sessions
 * no longer live are purged first. DEVID_EAUTH with p->token 0 when the token does not
 * authenticate (HTTP 401); DEVID_EAUTH with *p filled when it does but is a vendor's, as the
 * console is for OEM admins and operators (HTTP 403).
 */
int service_session_open(struct service *svc, const char *token, size_t len, struct principal *p,
    struct session *s, struct devid_error *e);
/*
 * The caller of a request that carries a session's secret (len bytes of cookie value): the
 * principal of its token, exactly as service_authenticate makes it (the actor and rate-limit
 * key are the token's, so a session shares its token's claim bucket), and *s. DEVID_EAUTH when
 * the session is unknown, malformed, expired, or its token revoked or expired.
 */
int service_session_principal(struct service *svc, const char *secret, size_t len,
    struct principal *p, struct session *s, struct devid_error *e);
/* Whether csrf (a NUL-terminated header value; NULL: absent) is s's, in constant time. */
bool service_session_csrf_ok(const struct session *s, const char *csrf);
/*
 * Signs out: deletes session s of p (from service_session_principal) and audits
 * "session.close" as its token. DEVID_ENOTFOUND when it ended meanwhile.
 */
int service_session_close(
    struct service *svc, const struct principal *p, const struct session *s, struct devid_error *e);

/* --- clone detection (clone.c, docs/clone-detection.md) ---------------------------------- */

/* What a tenant does with a suspicion: nothing (no sightings kept), flag it, or revoke. */
enum clone_mode { CLONE_OFF, CLONE_FLAG, CLONE_QUARANTINE, CLONE_NMODES };

/* A tenant's clone policy; every number is an int64_t (clone.c reads them by offset). */
struct clone_policy {
	enum clone_mode mode;
	int64_t window; /* seconds the rules look back */
	int64_t min_returns; /* concurrent origins: returns to a network that make a suspicion */
	int64_t prefix_v4, prefix_v6; /* the bits of an address that name its network */
	int64_t superseded_grace; /* seconds a superseded certificate may still be used */
	int64_t max_enrollments; /* in half a certificate's validity */
};

/* GET /api/v1/clone-policy (OEM reader): the tenant's policy, defaults filled in. */
int service_clone_policy_get(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e);
/*
 * PUT /api/v1/clone-policy (OEM admin): {"mode"?,"window"?,"minReturns"?,"prefixV4"?,
 * "prefixV6"?,"supersededGrace"?,"maxEnrollments"?}; members left out take their defaults.
 * Audited as clone.policy.
 */
int service_clone_policy_put(
    struct service *svc, const struct principal *p, const json_t *body, struct devid_error *e);
/*
 * POST /api/v1/sightings: a product cloud's seen report (lib/sighting.h), body exactly as
 * received, authenticated by signature ("sha256=<hex HMAC-SHA256(secret, body)>") with the
 * secret of one of the tenant's webhook connectors. Records the tenant's devices' sightings
 * and applies the rules; other devices are ignored. *out {"report","accepted","ignored",
 * "suspicions"}, or {"report","duplicate":true} for a report that connector sent already.
 * DEVID_EINVAL (the body, or sentAt too far from the clock), DEVID_EAUTH (no connector's
 * signature, or no such tenant: one message for both).
 */
int service_sightings_report(struct service *svc, const uint8_t *body, size_t len,
    const char *signature, json_t **out, struct devid_error *e);
/* GET /api/v1/suspicions?after=ID (OEM reader): {"suspicions":[…],"next":ID|null}. */
int service_suspicions(struct service *svc, const struct principal *p, const char *after,
    json_t **out, struct devid_error *e);

#endif
