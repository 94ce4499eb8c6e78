/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gateway.c - the two servers of `devid gateway` (docs/gateway.md).
 *
 * Device port: TLS with a client certificate required; OpenSSL verifies the chain against
 * the --trust and --ldevid-ca anchors in the handshake (src/http/server.c logs a refused
 * handshake with its alert and reason). Every request then answers by the device's UDID: the
 * hash of the certificate's key or, for a certificate of an --ldevid-ca, its subject's CN
 * (with its O the tenant that must own the ACL row). On the ACL and active, a 200 greeting;
 * otherwise a 403 and the connection is closed.
 *
 * Admin port: POST /devid/events (the webhook: HMAC first, then the strict parse, then the
 * event applied once) and GET /devid/acl (the same secret: an HMAC of the empty body).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "gateway/gateway.h"
#include "http/router.h"
#include "http/server.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

#define GATEWAY_DEFAULT_LISTEN "127.0.0.1:9443"
#define GATEWAY_DEFAULT_ADMIN_LISTEN "127.0.0.1:9080"
#define GATEWAY_DEFAULT_ADMIN_THREADS 2

/*
 * The --ldevid-ca certificates, read by the device workers and replaced by gateway_reload:
 * counted, so that a reload frees a set only once no request still uses it.
 */
struct ldevid_cas {
	unsigned refs; /* under gateway.ldevid_mu */
	STACK_OF(X509) *certs;
	/* the same certificates as the only anchors: to place a chain OpenSSL did not keep */
	X509_STORE *store;
};

struct gateway {
	struct acl *acl;
	uint8_t *secret;
	size_t secret_len;
	X509_STORE *trust; /* replaced by gateway_reload, from the signal thread only */
	const char *const *trust_paths; /* the --trust files, borrowed from the options */
	size_t ntrust;
	const char *const *ldevid_paths; /* the --ldevid-ca files, borrowed from the options */
	size_t nldevid;
	pthread_mutex_t ldevid_mu;
	struct ldevid_cas *ldevid; /* NULL without --ldevid-ca; swapped under ldevid_mu */
	struct router *admin_router;
	struct http_server *devices;
	struct http_server *admin;
	pthread_t admin_thread;
	int admin_rc;
	struct seen *seen; /* the admitted devices' sightings; NULL without --report-url */
	struct reporter *reporter; /* posts them to devid; NULL without --report-url */
};

/* --- the device port ----------------------------------------------------------------------- */

/* Who a device says it is, and on whose word. */
struct device_id {
	char udid[UDID_HEX_LEN + 1]; /* "-" until known */
	bool ldevid; /* named by the subject of a certificate of an --ldevid-ca */
	char tenant[MAX_NAME_LEN + 1]; /* ldevid: the subject's O; "-" until known */
};

static void
ldevid_cas_free(struct ldevid_cas *c)
{
	if (c == NULL)
		return;
	sk_X509_pop_free(c->certs, X509_free);
	X509_STORE_free(c->store);
	free(c);
}

/* The current --ldevid-ca set with a reference (ldevid_put), or NULL when there is none. */
static struct ldevid_cas *
ldevid_get(struct gateway *g)
{
	struct ldevid_cas *c;

	pthread_mutex_lock(&g->ldevid_mu);
	if ((c = g->ldevid) != NULL)
		c->refs++;
	pthread_mutex_unlock(&g->ldevid_mu);
	return c;
}

static void
ldevid_put(struct gateway *g, struct ldevid_cas *c)
{
	bool last;

	if (c == NULL)
		return;
	pthread_mutex_lock(&g->ldevid_mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&g->ldevid_mu);
	if (last)
		ldevid_cas_free(c);
}

/* Whether x has the subject and the key of one of the --ldevid-ca certificates. */
static bool
ldevid_is_ca(const struct ldevid_cas *c, X509 *x)
{
	for (int i = 0; i < sk_X509_num(c->certs); i++) {
		X509 *ca = sk_X509_value(c->certs, i);

		if (X509_NAME_cmp(X509_get_subject_name(ca), X509_get_subject_name(x)) == 0 &&
		    x509_spki_same(X509_get_X509_PUBKEY(ca), X509_get_X509_PUBKEY(x)))
			return true;
	}
	return false;
}

/*
 * Whether the client certificate x, which TLS verified, was issued through an --ldevid-ca:
 * a certificate above the leaf in the chain OpenSSL verified has the subject and key of one.
 * A resumed session has no verified chain (OpenSSL keeps only the leaf and the verification
 * result across resumption): then x must verify against the --ldevid-ca certificates alone,
 * through the certificates the client sent, if the session kept them.
 */
static bool
ldevid_issued(const struct ldevid_cas *c, struct http_request *req, X509 *x)
{
	STACK_OF(X509) *chain = http_request_peer_chain(req);
	struct x509_verify_opts o = {
	    .purpose = X509_PURPOSE_SSL_CLIENT,
	    .has_max_depth = true,
	    .max_depth = HTTP_TLS_VERIFY_DEPTH,
	    .partial_chain = true,
	};
	struct devid_error e;

	if (chain != NULL) {
		for (int i = 1; i < sk_X509_num(chain); i++) {
			if (ldevid_is_ca(c, sk_X509_value(chain, i)))
				return true;
		}
		return false;
	}
	devid_error_clear(&e);
	return x509_chain_verify(c->store, x, http_request_client_chain(req), &o, &e) == 0;
}

/* devid's tenant names: [A-Z0-9.-] */
static bool
tenant_char(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
}

static void
device_refuse(struct http_request *req, struct http_response *resp, const char *reason,
    const struct device_id *id)
{
	if (id->ldevid)
		log_info("gateway device refused", LOG_STR("reason", reason),
		    LOG_STR("udid", id->udid), LOG_STR("peer", http_request_peer(req)),
		    LOG_STR("identity", "ldevid"), LOG_STR("tenant", id->tenant));
	else
		log_info("gateway device refused", LOG_STR("reason", reason),
		    LOG_STR("udid", id->udid), LOG_STR("peer", http_request_peer(req)),
		    LOG_STR("identity", "key"));
	/* the certificate is the connection's: no later request on it could be admitted */
	http_response_set_close(resp);
	http_error(resp, 403, "forbidden", "device %s is not admitted here", id->udid);
}

/*
 * Names the device of certificate x: by its key, or, issued through an --ldevid-ca, by its
 * subject. Returns NULL, or the refusal's reason (id says as much as is known).
 */
static const char *
device_identify(struct gateway *g, struct http_request *req, X509 *x, struct device_id *id)
{
	struct ldevid_cas *c;
	const char *reason = NULL;

	snprintf(id->udid, sizeof(id->udid), "-");
	snprintf(id->tenant, sizeof(id->tenant), "-");
	id->ldevid = false;
	if (g->nldevid > 0 && (c = ldevid_get(g)) != NULL) {
		id->ldevid = ldevid_issued(c, req, x);
		ldevid_put(g, c);
	}
	if (!id->ldevid)
		return x509_udid(x, id->udid) == 0 ? NULL : "no_public_key";
	/* the operational CA's word: CN=<udid>, O=<tenant> (docs/operational-certificates.md) */
	if (!x509_subject_udid(x, id->udid)) {
		snprintf(id->udid, sizeof(id->udid), "-");
		reason = "ldevid_cn_not_udid";
	} else if (!x509_subject_attr(
		       x, NID_organizationName, MAX_NAME_LEN, tenant_char, id->tenant)) {
		snprintf(id->tenant, sizeof(id->tenant), "-");
		reason = "ldevid_no_tenant";
	}
	return reason;
}

/*
 * Counts an admitted request for the seen reports: the device of tenant (its ACL row's) with
 * certificate x, from the request's peer. Logged and skipped when the peer or the certificate
 * cannot be read, which the device port does not let happen.
 */
static void
sighting_record(struct gateway *g, struct http_request *req, X509 *x, const struct device_id *id,
    const char *tenant)
{
	struct gateway_sighting k = {.ldevid = id->ldevid};
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct timespec ts;

	if (!seen_origin(http_request_peer(req), k.origin) ||
	    X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
		log_error("gateway sighting not recorded", LOG_STR("udid", id->udid),
		    LOG_STR("peer", http_request_peer(req)));
		return;
	}
	hex_encode(md, mdlen, k.certificate);
	snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
	snprintf(k.udid, sizeof(k.udid), "%s", id->udid);
	clock_gettime(CLOCK_REALTIME, &ts);
	/* past GATEWAY_MAX_SIGHTINGS keys the set counts what it drops; the flush logs it */
	seen_record(g->seen, &k, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void
device_handle(struct http_request *req, struct http_response *resp, void *arg)
{
	struct gateway *g = arg;
	X509 *x = http_request_peer_cert(req);
	char msg[UDID_HEX_LEN + 32], owner[MAX_NAME_LEN + 1];
	struct device_id id = {.udid = "-", .tenant = "-"};
	const char *reason;
	struct devid_error e;
	enum acl_state st;
	json_t *j;

	devid_error_clear(&e);
	/* client_auth is REQUIRE: the handshake already failed without a verified certificate */
	if (x == NULL) {
		device_refuse(req, resp, "no_certificate", &id);
		return;
	}
	if ((reason = device_identify(g, req, x, &id)) != NULL) {
		device_refuse(req, resp, reason, &id);
		return;
	}
	if (acl_lookup(g->acl, id.udid, &st, owner, &e) != 0) {
		log_error(
		    "gateway acl lookup failed", LOG_STR("udid", id.udid), LOG_STR("error", e.msg));
		http_response_set_close(resp);
		http_error(resp, 503, "unavailable", "the ACL cannot be read; try again later");
		return;
	}
	if (st == ACL_REMOVED) {
		device_refuse(req, resp, "removed", &id);
		return;
	}
	if (st != ACL_ACTIVE) {
		device_refuse(req, resp, "not_on_acl", &id);
		return;
	}
	/* a tenant's CA vouches for its own devices only */
	if (id.ldevid && strcmp(id.tenant, owner) != 0) {
		device_refuse(req, resp, "ldevid_other_tenant", &id);
		return;
	}
	snprintf(msg, sizeof(msg), "welcome, device %s", id.udid);
	j = json_pack("{s:s, s:s, s:s}", "udid", id.udid, "status", "admitted", "message", msg);
	if (j == NULL) {
		http_error(resp, 500, "internal", "out of memory");
		return;
	}
	if (g->seen != NULL)
		sighting_record(g, req, x, &id, owner);
	log_info("gateway device admitted", LOG_STR("udid", id.udid),
	    LOG_STR("peer", http_request_peer(req)),
	    LOG_STR("identity", id.ldevid ? "ldevid" : "key"));
	http_json(resp, 200, j);
	json_decref(j);
}

/* --- the admin port ------------------------------------------------------------------------ */

/* The X-Devid-Signature check shared by both routes; answers 401 itself when it fails. */
static bool
admin_authenticated(struct gateway *g, struct http_request *req, struct http_response *resp,
    const uint8_t *body, size_t len)
{
	const char *sig = http_request_header(req, "X-Devid-Signature");
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = gateway_signature_verify(g->secret, g->secret_len, body, len, sig, &e);
	if (rc == 0)
		return true;
	if (rc != DEVID_EAUTH) {
		log_error("gateway signature check failed", LOG_STR("error", e.msg));
		http_error(resp, 500, "internal", "internal error");
		return false;
	}
	log_info("gateway admin refused",
	    LOG_STR("reason", sig == NULL ? "no_signature" : "bad_signature"),
	    LOG_STR("method", http_request_method(req)), LOG_STR("peer", http_request_peer(req)));
	http_error(resp, 401, "unauthorized", "%s", e.msg);
	return false;
}

/*
 * devid suspects these devices are clones: one line per device for the operator. The ACL is
 * left alone; a quarantine arrives as its own remove event.
 */
static void
suspicion_log(const struct gateway_event *ev)
{
	for (size_t i = 0; i < ev->ndevices; i++)
		log_warn("gateway clone suspicion", LOG_STR("event", ev->id),
		    LOG_STR("tenant", ev->tenant), LOG_STR("udid", ev->devices[i].udid),
		    LOG_STR("rule", gateway_rule_name(ev->suspicion.rule)),
		    LOG_STR("at", ev->suspicion.at),
		    LOG_STR("quarantined", ev->suspicion.quarantined ? "true" : "false"));
}

static void
events_handle(struct http_request *req, struct http_response *resp, void *arg)
{
	struct gateway *g = arg;
	struct gateway_event *ev = NULL;
	struct acl_result r;
	struct devid_error e;
	const uint8_t *body;
	const char *hid;
	size_t len;
	json_t *j = NULL;
	int rc;

	devid_error_clear(&e);
	body = http_request_body(req, &len);
	/* the MAC over the exact bytes received comes first: nothing unsigned is parsed */
	if (!admin_authenticated(g, req, resp, body, len))
		goto out;
	hid = http_request_header(req, "X-Devid-Event");
	if (hid == NULL || !gateway_event_id_valid(hid, strlen(hid))) {
		log_info("gateway event refused", LOG_STR("reason", "bad_event_header"),
		    LOG_STR("peer", http_request_peer(req)));
		http_error(resp, 400, "bad_request",
		    "X-Devid-Event is missing or does not match [A-Za-z0-9._:-]{1,%d}",
		    GATEWAY_MAX_EVENT_ID_LEN);
		goto out;
	}
	if ((rc = gateway_event_parse(body, len, &ev, &e)) != 0) {
		/* e.msg may quote the sender's bytes: it goes back to the sender, not to the log */
		log_info("gateway event refused", LOG_STR("reason", "bad_event"),
		    LOG_STR("event", hid), LOG_STR("peer", http_request_peer(req)));
		http_error(resp, rc == DEVID_ELIMIT ? 413 : 400,
		    rc == DEVID_ELIMIT ? "too_large" : "bad_request", "%s", e.msg);
		goto out;
	}
	if (strcmp(hid, ev->id) != 0) {
		log_info("gateway event refused", LOG_STR("reason", "event_id_mismatch"),
		    LOG_STR("event", hid), LOG_STR("body_event", ev->id),
		    LOG_STR("peer", http_request_peer(req)));
		http_error(resp, 400, "bad_request",
		    "X-Devid-Event \"%s\" is not the body's event \"%s\"", hid, ev->id);
		goto out;
	}
	if (ev->action == GATEWAY_TEST) {
		/* devid's connector test: signed and well formed is all it asks; nothing changes */
		log_info(
		    "gateway event test", LOG_STR("event", ev->id), LOG_STR("tenant", ev->tenant));
		j = json_pack("{s:s, s:b}", "event", ev->id, "test", 1);
	} else if (ev->action == GATEWAY_SUSPECTED_CLONE) {
		suspicion_log(ev);
		j = json_pack("{s:s, s:s, s:I}", "event", ev->id, "action",
		    gateway_action_name(ev->action), "devices", (json_int_t)ev->ndevices);
	} else if (acl_apply(g->acl, ev, &r, &e) != 0) {
		/* a 5xx: the sender retries the same event later */
		log_error(
		    "gateway event failed", LOG_STR("event", ev->id), LOG_STR("error", e.msg));
		http_error(resp, 500, "internal", "the event could not be stored; retry it");
		goto out;
	} else if (r.duplicate) {
		log_info("gateway event duplicate", LOG_STR("event", ev->id));
		j = json_pack("{s:s, s:b}", "event", ev->id, "duplicate", 1);
	} else {
		log_info("gateway event applied", LOG_STR("event", ev->id),
		    LOG_STR("action", gateway_action_name(ev->action)),
		    LOG_STR("tenant", ev->tenant), LOG_INT("devices", ev->ndevices),
		    LOG_INT("changed", r.changed), LOG_INT("skipped", r.skipped));
		j = json_pack("{s:s, s:b, s:s, s:s, s:I, s:I, s:I}", "event", ev->id, "duplicate",
		    0, "action", gateway_action_name(ev->action), "tenant", ev->tenant, "devices",
		    (json_int_t)ev->ndevices, "changed", (json_int_t)r.changed, "skipped",
		    (json_int_t)r.skipped);
	}
	if (j == NULL)
		http_error(resp, 500, "internal", "out of memory");
	else
		http_json(resp, 200, j);
out:
	json_decref(j);
	gateway_event_free(ev);
}

static void
acl_handle(struct http_request *req, struct http_response *resp, void *arg)
{
	struct gateway *g = arg;
	struct devid_error e;
	const uint8_t *body;
	size_t len;
	json_t *j = NULL;

	devid_error_clear(&e);
	/* a GET has no body: the signature is HMAC(secret, ""), so the secret never travels */
	body = http_request_body(req, &len);
	if (!admin_authenticated(g, req, resp, body, len))
		return;
	if (acl_list(g->acl, &j, &e) != 0) {
		log_error("gateway acl list failed", LOG_STR("error", e.msg));
		http_error(resp, 500, "internal", "the ACL cannot be read");
		return;
	}
	http_json(resp, 200, j);
	json_decref(j);
}

/* --- lifecycle --------------------------------------------------------------------------- */

/* Appends every certificate of the files to all; each must be a CA. opt names the option. */
static int
ca_files_load(
    const char *opt, const char *const *paths, size_t n, STACK_OF(X509) *all, struct devid_error *e)
{
	STACK_OF(X509) *sk = NULL;
	X509 *x;
	int rc = DEVID_EINVAL;

	for (size_t i = 0; i < n; i++) {
		if ((sk = x509_load_pem_file_all(paths[i], e)) == NULL) {
			rc = e->code;
			devid_error_prefix(e, "%s", opt);
			goto out;
		}
		while ((x = sk_X509_shift(sk)) != NULL) {
			/* a leaf as an anchor would admit that one certificate by itself */
			if (X509_check_ca(x) == 0) {
				devid_error_set(e, DEVID_EINVAL,
				    "%s: %s: a certificate that is not a CA (RFC 5280 4.2.1.9)",
				    opt, paths[i]);
				X509_free(x);
				goto out;
			}
			if (!sk_X509_push(all, x)) {
				X509_free(x);
				rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", opt);
				goto out;
			}
		}
		sk_X509_free(sk);
		sk = NULL;
	}
	rc = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	return rc;
}

/*
 * Reads the --trust and --ldevid-ca files: *trust, one store of all their certificates (the
 * handshake's anchors), and *ldevid, the --ldevid-ca certificates (NULL when there are none).
 */
static int
trust_load(
    const struct gateway *g, X509_STORE **trust, struct ldevid_cas **ldevid, struct devid_error *e)
{
	STACK_OF(X509) *all = NULL;
	struct ldevid_cas *c = NULL;
	int rc = DEVID_EINVAL;

	*trust = NULL;
	*ldevid = NULL;
	if (g->ntrust > GATEWAY_MAX_TRUST_FILES || g->nldevid > GATEWAY_MAX_LDEVID_CA_FILES ||
	    g->ntrust + g->nldevid < 1) {
		devid_error_set(e, rc,
		    "trust: %zu --trust and %zu --ldevid-ca files: allowed 0 to %d of each, one "
		    "at least",
		    g->ntrust, g->nldevid, GATEWAY_MAX_TRUST_FILES);
		goto out;
	}
	if ((all = sk_X509_new_null()) == NULL)
		goto nomem;
	if ((rc = ca_files_load("trust", g->trust_paths, g->ntrust, all, e)) != 0)
		goto out;
	if (g->nldevid > 0) {
		c = xcalloc(1, sizeof(*c));
		c->refs = 1;
		if ((c->certs = sk_X509_new_null()) == NULL)
			goto nomem;
		if ((rc = ca_files_load("ldevid-ca", g->ldevid_paths, g->nldevid, c->certs, e)) !=
		    0)
			goto out;
		/* an --ldevid-ca is an anchor of the handshake too */
		for (int i = 0; i < sk_X509_num(c->certs); i++) {
			if (!sk_X509_push(all, sk_X509_value(c->certs, i)))
				goto nomem;
			X509_up_ref(sk_X509_value(c->certs, i));
		}
		if ((c->store = x509_store_new(c->certs, e)) == NULL) {
			rc = e->code;
			goto out;
		}
	}
	if ((*trust = x509_store_new(all, e)) == NULL) {
		rc = e->code;
		goto out;
	}
	/*
	 * Every --trust certificate is an anchor, an issuing or operational CA included (so a
	 * gateway may trust one issuing CA of a vendor and not the others); RFC 5280 strictly.
	 */
	X509_STORE_set_flags(*trust, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
	*ldevid = c;
	c = NULL;
	rc = 0;
	goto out;
nomem:
	rc = devid_error_set(e, DEVID_ENOMEM, "trust: out of memory");
out:
	ldevid_cas_free(c);
	sk_X509_pop_free(all, X509_free);
	return rc;
}

static int
admin_routes(struct gateway *g, struct devid_error *e)
{
	int rc;

	if ((g->admin_router = router_new()) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "admin: out of memory");
	if ((rc = router_add(g->admin_router, "POST", "/devid/events", events_handle, g, e)) != 0 ||
	    (rc = router_add(g->admin_router, "GET", "/devid/acl", acl_handle, g, e)) != 0 ||
	    (rc = router_add(g->admin_router, "GET", "/healthz", http_handle_healthz, NULL, e)) !=
		0)
		return rc;
	return 0;
}

struct gateway *
gateway_new(const struct gateway_opts *o, struct devid_error *e)
{
	struct http_server_opts dev = {0}, adm = {0};
	struct gateway *g, *ret = NULL;
	unsigned threads = o->threads != 0 ? o->threads : HTTP_DEFAULT_THREADS;
	unsigned admin_threads =
	    o->admin_threads != 0 ? o->admin_threads : GATEWAY_DEFAULT_ADMIN_THREADS;

	g = xcalloc(1, sizeof(*g));
	pthread_mutex_init(&g->ldevid_mu, NULL);
	if (o->secret == NULL || o->secret_len < GATEWAY_MIN_SECRET_LEN ||
	    o->secret_len > GATEWAY_MAX_SECRET_LEN) {
		devid_error_set(e, DEVID_EINVAL, "the secret must be %d to %d bytes",
		    GATEWAY_MIN_SECRET_LEN, GATEWAY_MAX_SECRET_LEN);
		goto out;
	}
	if (o->tls_cert == NULL || o->tls_key == NULL) {
		devid_error_set(e, DEVID_EINVAL, "the device port needs a TLS certificate and key");
		goto out;
	}
	if (threads > HTTP_MAX_THREADS || admin_threads > HTTP_MAX_THREADS ||
	    threads + admin_threads > 64) {
		devid_error_set(e, DEVID_EINVAL, "at most 64 worker threads in all");
		goto out;
	}
	g->secret_len = o->secret_len;
	g->secret = xmalloc(o->secret_len);
	memcpy(g->secret, o->secret, o->secret_len);
	g->trust_paths = o->trust;
	g->ntrust = o->ntrust;
	g->ldevid_paths = o->ldevid_ca;
	g->nldevid = o->nldevid_ca;
	if (trust_load(g, &g->trust, &g->ldevid, e) != 0)
		goto out;
	/* one connection per worker of either port: each may hold one at a time */
	if (acl_open(o->db_path, threads + admin_threads, &g->acl, e) != 0)
		goto out;
	if (admin_routes(g, e) != 0)
		goto out;
	if (o->report_url != NULL) {
		struct reporter_opts ro = {
		    .url = o->report_url,
		    .ca_file = o->report_ca,
		    .interval = o->report_interval != 0 ? o->report_interval
							: GATEWAY_DEFAULT_REPORT_INTERVAL,
		    .secret = g->secret,
		    .secret_len = g->secret_len,
		};

		g->seen = seen_new(GATEWAY_MAX_SIGHTINGS);
		if ((g->reporter = reporter_new(&ro, g->seen, e)) == NULL)
			goto out;
	}

	dev.listen = o->listen != NULL ? o->listen : GATEWAY_DEFAULT_LISTEN;
	dev.name = "gateway-devices";
	dev.threads = threads;
	dev.max_body = GATEWAY_MAX_DEVICE_BODY;
	dev.tls_cert = o->tls_cert;
	dev.tls_key = o->tls_key;
	dev.client_auth = HTTP_CLIENT_AUTH_REQUIRE;
	dev.tls_ca_store = g->trust;
	dev.handler = device_handle;
	dev.handler_arg = g;
	if ((g->devices = http_server_new(&dev, e)) == NULL) {
		devid_error_prefix(e, "device port");
		goto out;
	}
	adm.listen = o->admin_listen != NULL ? o->admin_listen : GATEWAY_DEFAULT_ADMIN_LISTEN;
	adm.name = "gateway-admin";
	adm.threads = admin_threads;
	adm.max_body = GATEWAY_MAX_EVENT_BODY;
	adm.handler = router_handle;
	adm.handler_arg = g->admin_router;
	if ((g->admin = http_server_new(&adm, e)) == NULL) {
		devid_error_prefix(e, "admin port");
		goto out;
	}
	ret = g;
	g = NULL;
out:
	gateway_free(g);
	return ret;
}

const char *
gateway_device_address(const struct gateway *g)
{
	return http_server_address(g->devices);
}

const char *
gateway_admin_address(const struct gateway *g)
{
	return http_server_address(g->admin);
}

static void *
admin_main(void *arg)
{
	struct gateway *g = arg;

	g->admin_rc = http_server_run(g->admin);
	if (g->admin_rc != 0)
		http_server_stop(g->devices);
	return NULL;
}

int
gateway_run(struct gateway *g)
{
	sigset_t all, old;
	int err, rc;

	if (g->reporter != NULL && (rc = reporter_start(g->reporter)) != 0)
		return rc;
	/* the admin thread takes no asynchronous signals: they go to the caller's thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&g->admin_thread, NULL, admin_main, g);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		log_error("gateway cannot start the admin port", LOG_STR("error", strerror(err)));
		reporter_stop(g->reporter);
		return DEVID_EIO;
	}
	rc = http_server_run(g->devices);
	http_server_stop(g->admin);
	pthread_join(g->admin_thread, NULL);
	/* the device port is closed: the last flush reports every request it admitted */
	reporter_stop(g->reporter);
	return rc != 0 ? rc : g->admin_rc;
}

int
gateway_reload(struct gateway *g, struct devid_error *e)
{
	struct ldevid_cas *c, *old;
	X509_STORE *st;

	if (trust_load(g, &st, &c, e) != 0)
		return e->code;
	if (http_server_reload_tls(g->devices, st, e) != 0) {
		X509_STORE_free(st);
		ldevid_cas_free(c);
		return e->code;
	}
	/* the device port's new TLS context holds its own reference, the old one its old store */
	X509_STORE_free(g->trust);
	g->trust = st;
	/* requests from now on name devices by the new set; the old goes with its last user */
	pthread_mutex_lock(&g->ldevid_mu);
	old = g->ldevid;
	g->ldevid = c;
	pthread_mutex_unlock(&g->ldevid_mu);
	ldevid_put(g, old);
	return 0;
}

void
gateway_stop(struct gateway *g)
{
	http_server_stop(g->devices);
	http_server_stop(g->admin);
}

void
gateway_free(struct gateway *g)
{
	if (g == NULL)
		return;
	http_server_free(g->devices);
	http_server_free(g->admin);
	reporter_free(g->reporter);
	seen_free(g->seen);
	router_free(g->admin_router);
	acl_close(g->acl);
	X509_STORE_free(g->trust);
	ldevid_cas_free(g->ldevid);
	pthread_mutex_destroy(&g->ldevid_mu);
	if (g->secret != NULL)
		OPENSSL_clear_free(g->secret, g->secret_len);
	free(g);
}
