/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ca.c - operational certificates: a tenant's CA and its rotation, its quota, EST enrollment
 * policy and the CRL of each CA generation. The CA key is opened through svc->keys (a file or a
 * PKCS#11 token) and kept open in svc->cas; this file only ever hands it to OpenSSL to sign.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "lib/base64.h"
#include "lib/log.h"
#include "lib/manifest.h"
#include "lib/x509.h"
#include "service/internal.h"
#include "lib/banned.h"

#define CA_YEARS 20
/* notBefore of an issued certificate lies this far back, for devices with a late clock */
#define CA_BACKDATE_SECS 300
#define CRL_NEXT_UPDATE_SECS 86400
#define CRL_RESIGN_SECS (12 * 3600)
#define SERIAL_HEX_MAX 64

/* One opened CA generation of a tenant. */
struct ca_entry {
	int64_t tenant_id, generation;
	void *handle; /* the key loader's */
	EVP_PKEY *pkey; /* borrowed from handle */
	X509 *cert;
	/* re-enrollment's client certificates: trusting cert and the retired CAs that still had
	 * live certificates when it was opened */
	X509_STORE *store;
};

/*
 * A vendor's trusted roots, and the intermediates learned from its devices' manifest
 * entries (each verified up to a root at ingest), so that an enrollment parses neither the
 * trust's PEM nor the device's entry. Roots are reloaded after TRUST_TTL_SECS.
 */
/*
 * A device whose birth certificate verified up to its vendor's roots, until when that holds
 * (the chain's earliest notAfter): EST compares the certificate a device presents with the
 * one stored for it, so a byte-equal certificate verifies again without its signatures.
 */
struct birth_ok {
	int64_t device_id;
	uint8_t tail[16]; /* the certificate's last bytes, of its signature: this certificate */
	time_t until;
};

/* a cache, not a set: a device whose slot another took is verified again */
#define BIRTH_OK_SLOTS 4096

struct vendor_entry {
	int64_t vendor_id;
	time_t loaded;
	X509_STORE *roots;
	STACK_OF(X509) *inter;
	struct birth_ok *verified; /* BIRTH_OK_SLOTS of them, by device id; for roots only */
};

#define TRUST_TTL_SECS 60

struct ca_cache {
	pthread_mutex_t mu;
	struct ca_entry **v; /* each allocated once: pointers handed out stay valid */
	size_t n, cap;
	struct vendor_entry *vendors;
	size_t nvendors, capvendors;
	pthread_mutex_t crl_mu; /* one CRL signed at a time here; numbers come from the database */
};

struct ca_cache *
service_ca_cache_new(void)
{
	struct ca_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->crl_mu, NULL);
	return c;
}

void
service_ca_cache_free(struct ca_cache *c, const struct key_loader *keys)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		X509_STORE_free(c->v[i]->store);
		X509_free(c->v[i]->cert);
		keys->close(c->v[i]->handle);
		free(c->v[i]);
	}
	free(c->v);
	for (size_t i = 0; i < c->nvendors; i++) {
		X509_STORE_free(c->vendors[i].roots);
		sk_X509_pop_free(c->vendors[i].inter, X509_free);
		free(c->vendors[i].verified);
	}
	free(c->vendors);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->crl_mu);
	free(c);
}

static int retired_live(
    struct db *db, int64_t tenant_id, bool key_update, STACK_OF(X509) *out, struct devid_error *e);

/*
 * The opened CA generation of a tenant (borrowed: entries live as long as the cache), opening
 * it once. A rotation makes a new generation, so a server opens it at its next use.
 */
static int
ca_open(struct service *svc, struct db *db, const struct ca_rec *rec, struct ca_entry **out,
    struct devid_error *e)
{
	struct ca_cache *c = svc->cas;
	struct ca_entry ent = {.tenant_id = rec->tenant_id, .generation = rec->generation};
	struct ca_entry *heap = NULL;
	STACK_OF(X509) *sk = NULL;
	int rc = 0;

	if (svc->keys == NULL || c == NULL)
		return devid_error_set(e, DEVID_EINTERNAL, "this server has no CA key loader");
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i]->tenant_id == rec->tenant_id &&
		    c->v[i]->generation == rec->generation) {
			*out = c->v[i];
			goto out;
		}
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;
		struct ca_entry **v = realloc(c->v, cap * sizeof(*v));

		if (v == NULL) {
			rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
			goto out;
		}
		c->v = v;
		c->cap = cap;
	}
	if ((ent.cert = x509_from_der(rec->cert, rec->cert_len, "CA certificate", e)) == NULL) {
		rc = e ? e->code : DEVID_EINVAL;
		goto out;
	}
	if ((rc = svc->keys->open(rec->key_uri, &ent.handle, &ent.pkey, e)) != 0) {
		devid_error_prefix(e, "CA key");
		goto fail;
	}
	if (X509_check_private_key(ent.cert, ent.pkey) != 1) {
		rc = devid_error_ssl(e, DEVID_ECRYPTO, "the CA key does not match its certificate");
		goto fail;
	}
	if ((sk = sk_X509_new_null()) == NULL || !sk_X509_push(sk, X509_dup(ent.cert))) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = retired_live(db, rec->tenant_id, false, sk, e)) != 0)
		goto fail;
	if ((ent.store = x509_store_new(sk, e)) == NULL || (heap = malloc(sizeof(*heap))) == NULL) {
		X509_STORE_free(ent.store);
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto fail;
	}
	*heap = ent;
	c->v[c->n++] = heap;
	*out = heap;
	goto out;
fail:
	if (ent.handle != NULL)
		svc->keys->close(ent.handle);
	X509_free(ent.cert);
out:
	sk_X509_pop_free(sk, X509_free);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static bool
is_p256(EVP_PKEY *k)
{
	char curve[32];

	return EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(k, curve, sizeof(curve), NULL) == 1 &&
	    strcmp(curve, "prime256v1") == 0;
}

int
service_ca_owner_key(struct service *svc, struct db *db, int64_t tenant_id, EVP_PKEY **pub,
    EVP_PKEY **priv, struct devid_error *e)
{
	struct ca_entry *ent;
	struct ca_rec rec;
	X509 *x;
	int rc;

	*pub = NULL;
	*priv = NULL;
	if ((rc = store_ca_get(db, tenant_id, &rec, e)) == DEVID_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if ((x = x509_from_der(rec.cert, rec.cert_len, "CA certificate", NULL)) != NULL &&
	    (*pub = X509_get_pubkey(x)) != NULL && !is_p256(*pub)) {
		EVP_PKEY_free(*pub);
		*pub = NULL;
	}
	X509_free(x);
	/* a key this server cannot open (another server's token) only means no owner signature */
	if (*pub != NULL && ca_open(svc, db, &rec, &ent, NULL) == 0)
		*priv = ent->pkey;
	ca_rec_release(&rec);
	return 0;
}

/* The OEM tenant of a name; DEVID_ENOTFOUND for a vendor as for no tenant. */
static int
oem_by_name(struct db *db, const char *name, struct tenant *t, struct devid_error *e)
{
	int rc = store_tenant_get(db, name, t, e);

	if (rc == 0 && t->kind != TENANT_OEM)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "tenant \"%s\" is not an OEM", name);
	return rc;
}

/* Sets both validity bounds: from `from` for `secs` seconds. */
static int
set_validity(X509 *x, time_t from, long secs)
{
	return X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &from) != NULL &&
		X509_time_adj_ex(X509_getm_notAfter(x), 0, secs, &from) != NULL
	    ? 0
	    : -1;
}

static int
name_add(X509_NAME *n, const char *field, const char *value)
{
	return X509_NAME_add_entry_by_txt(
		   n, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1, 0) == 1
	    ? 0
	    : -1;
}

/*
 * The tenant's self-signed operational CA certificate of a generation: from the second on,
 * OU "generation N" tells it from its predecessors by name, so that a relying party that
 * trusts both never mistakes one's CRL for the other's.
 */
static X509 *
make_ca_cert(const char *tenant, int64_t generation, EVP_PKEY *key, struct devid_error *e)
{
	char cn[MAX_NAME_LEN + 32], ou[40];
	X509_NAME *subj = X509_NAME_new();
	X509V3_CTX ctx;
	X509 *x = X509_new();

	/* the CN names the tenant when it fits in ub-common-name (64); O always does */
	if (strlen(tenant) + sizeof("devid operational CA ") - 1 <= 64)
		snprintf(cn, sizeof(cn), "devid operational CA %s", tenant);
	else
		snprintf(cn, sizeof(cn), "devid operational CA");
	snprintf(ou, sizeof(ou), "generation %lld", (long long)generation);
	if (x == NULL || subj == NULL || name_add(subj, "O", tenant) ||
	    (generation > 1 && name_add(subj, "OU", ou)) || name_add(subj, "CN", cn) ||
	    !X509_set_version(x, X509_VERSION_3) || x509_set_random_serial(x) ||
	    !X509_set_subject_name(x, subj) || !X509_set_issuer_name(x, subj) ||
	    set_validity(x, time(NULL) - CA_BACKDATE_SECS, CA_YEARS * 365L * 86400) ||
	    !X509_set_pubkey(x, key))
		goto fail;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (x509_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    x509_add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    x509_add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    X509_sign(x, key, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(subj);
	return x;
fail:
	devid_error_ssl(e, DEVID_ECRYPTO, "cannot make the CA certificate");
	X509_NAME_free(subj);
	X509_free(x);
	return NULL;
}

/* DER of a certificate into a malloc'd buffer. */
static int
cert_der(X509 *x, uint8_t **der, size_t *len, struct devid_error *e)
{
	unsigned char *p = NULL;
	int n = i2d_X509(x, &p);

	if (n <= 0)
		return devid_error_ssl(e, DEVID_ENOMEM, "cannot encode the certificate");
	*der = p;
	*len = (size_t)n;
	return 0;
}

/* {"certificate": base64 DER, ...extra} for an audit record. */
static json_t *
cert_detail(const uint8_t *der, size_t len)
{
	char *b64 = b64_encode(der, len);
	json_t *j = b64 ? json_pack("{s:s}", "certificate", b64) : NULL;

	free(b64);
	return j;
}

/* A new CA's audit detail: its certificate and where its key is (never the URI: a PIN). */
static json_t *
ca_detail(const uint8_t *der, size_t len, const char *key_uri)
{
	json_t *j = cert_detail(der, len);

	if (j != NULL &&
	    json_object_set_new(j, "keyStore",
		json_string(strncmp(key_uri, "pkcs11:", 7) == 0 ? "pkcs11" : "file")) != 0) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

int
service_ca_init(struct service *svc, const char *tenant, const char *key_uri, int validity_days,
    X509 **ca_out, struct devid_error *e)
{
	struct tenant t;
	struct ca_rec old;
	void *handle = NULL;
	EVP_PKEY *pkey;
	X509 *ca = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	json_t *detail = NULL;
	struct db *db;
	int rc;

	if (ca_out != NULL)
		*ca_out = NULL;
	if (validity_days == 0)
		validity_days = CA_DEFAULT_VALIDITY_DAYS;
	if (validity_days < 1 || validity_days > CA_MAX_VALIDITY_DAYS)
		return devid_error_set(e, DEVID_EINVAL, "validity: %d days, allowed 1 to %d",
		    validity_days, CA_MAX_VALIDITY_DAYS);
	if (svc->keys == NULL)
		return devid_error_set(e, DEVID_EINTERNAL, "no CA key loader");
	db = store_acquire(svc->store);
	if ((rc = oem_by_name(db, tenant, &t, e)) != 0)
		goto out;
	/* refused before a key is made: a second init leaves nothing behind */
	if ((rc = store_ca_get(db, t.id, &old, NULL)) == 0) {
		ca_rec_release(&old);
		rc = devid_error_set(
		    e, DEVID_ECONFLICT, "tenant \"%s\" has an operational CA already", tenant);
		goto out;
	}
	if ((rc = svc->keys->generate(key_uri, &handle, &pkey, e)) != 0) {
		devid_error_prefix(e, "CA key");
		goto out;
	}
	if ((ca = make_ca_cert(t.name, 1, pkey, e)) == NULL) {
		rc = DEVID_ECRYPTO;
		goto out;
	}
	if ((rc = cert_der(ca, &der, &len, e)) != 0)
		goto out;
	if ((detail = ca_detail(der, len, key_uri)) == NULL ||
	    json_object_set_new(detail, "validityDays", json_integer(validity_days)) != 0) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = audit_append(db, t.id, AUDIT_ACTOR_ADMIN_CLI, "ca.init", t.name, detail, e)) !=
		0 ||
	    (rc = store_ca_add(db, t.id, der, len, key_uri, validity_days, e)) != 0) {
		db_rollback(db);
		goto out;
	}
	if ((rc = db_commit(db, e)) != 0)
		goto out;
	if (ca_out != NULL) {
		*ca_out = ca;
		ca = NULL;
	}
out:
	json_decref(detail);
	OPENSSL_free(der);
	X509_free(ca);
	if (handle != NULL)
		svc->keys->close(handle);
	store_release(svc->store, db);
	return rc;
}

/* The CA record of a tenant by name. */
static int
ca_by_name(
    struct db *db, const char *tenant, struct tenant *t, struct ca_rec *rec, struct devid_error *e)
{
	int rc;

	if ((rc = oem_by_name(db, tenant, t, e)) != 0)
		return rc;
	if ((rc = store_ca_get(db, t->id, rec, e)) != 0)
		devid_error_set(e, rc, "tenant \"%s\" has no operational CA", tenant);
	return rc;
}

/* Pushes the certificate of DER onto sk; DEVID_EINVAL or DEVID_ENOMEM after a message. */
static int
push_der(STACK_OF(X509) *sk, const uint8_t *der, size_t len, struct devid_error *e)
{
	X509 *x = x509_from_der(der, len, "CA certificate", e);

	if (x == NULL)
		return DEVID_EINVAL;
	if (!sk_X509_push(sk, x)) {
		X509_free(x);
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	}
	return 0;
}

/*
 * Pushes onto out each retired CA of the tenant that issued a certificate still unexpired,
 * newest first; with key_update, each followed by its NewWithOld and OldWithNew.
 */
static int
retired_live(
    struct db *db, int64_t tenant_id, bool key_update, STACK_OF(X509) *out, struct devid_error *e)
{
	struct db_rows *r = NULL;
	size_t len;
	int rc;

	if ((rc = store_ca_retired_live(db, tenant_id, time(NULL), &r, e)) != 0)
		return rc;
	for (size_t i = 0; i < db_rows_count(r) && rc == 0; i++) {
		for (size_t col = 1; col <= (key_update ? 3u : 1u) && rc == 0; col++) {
			const uint8_t *der = db_rows_blob(r, i, col, &len);

			rc = push_der(out, der, len, e);
		}
	}
	db_rows_free(r);
	return rc;
}

/* The tenant's CA certificates (service_ca_get, or with key_update service_est_cacerts). */
static int
ca_bundle(struct db *db, int64_t tenant_id, const struct ca_rec *rec, bool key_update,
    STACK_OF(X509) **out, struct devid_error *e)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	int rc;

	*out = NULL;
	if (sk == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	if ((rc = push_der(sk, rec->cert, rec->cert_len, e)) != 0 ||
	    (rc = retired_live(db, tenant_id, key_update, sk, e)) != 0) {
		sk_X509_pop_free(sk, X509_free);
		return rc;
	}
	*out = sk;
	return 0;
}

int
service_ca_get(struct service *svc, const char *tenant, STACK_OF(X509) **out, struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	struct tenant t;
	struct ca_rec rec;
	int rc;

	*out = NULL;
	if ((rc = ca_by_name(db, tenant, &t, &rec, e)) == 0) {
		rc = ca_bundle(db, t.id, &rec, false, out, e);
		ca_rec_release(&rec);
	}
	store_release(svc->store, db);
	return rc;
}

/*
 * A key-update certificate (RFC 4210 4.4): subject's name, key and SKI, certified by
 * issuer's key under issuer's name, valid while both are.
 */
static X509 *
make_cross(X509 *subject, X509 *issuer, EVP_PKEY *issuer_key, struct devid_error *e)
{
	X509 *x = X509_new();
	const ASN1_TIME *a = X509_get0_notAfter(subject), *b = X509_get0_notAfter(issuer);
	X509V3_CTX ctx;

	if (x == NULL || !X509_set_version(x, X509_VERSION_3) || x509_set_random_serial(x) ||
	    !X509_set_subject_name(x, X509_get_subject_name(subject)) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(issuer)) ||
	    !X509_set1_notBefore(x, X509_get0_notBefore(subject)) ||
	    !X509_set1_notAfter(x, ASN1_TIME_compare(a, b) < 0 ? a : b) ||
	    !X509_set_pubkey(x, X509_get0_pubkey(subject)))
		goto fail;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if (x509_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    x509_add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    x509_add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    x509_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") ||
	    X509_sign(x, issuer_key, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	devid_error_ssl(e, DEVID_ECRYPTO, "cannot make the key-update certificate");
	X509_free(x);
	return NULL;
}

/* DER of the certificates from ca_rotate_make, malloc'd by OpenSSL. */
struct rotation {
	uint8_t *cert, *nwo, *own;
	size_t cert_len, nwo_len, own_len;
};

static void
rotation_release(struct rotation *r)
{
	OPENSSL_free(r->cert);
	OPENSSL_free(r->nwo);
	OPENSSL_free(r->own);
}

/* The next generation's certificate and the two key-update certificates, as DER. */
static int
ca_rotate_make(const struct tenant *t, const struct ca_rec *old, EVP_PKEY *old_key,
    EVP_PKEY *new_key, X509 **ca, struct rotation *r, struct devid_error *e)
{
	X509 *old_cert = x509_from_der(old->cert, old->cert_len, "CA certificate", e);
	X509 *nwo = NULL, *own = NULL;
	int rc = DEVID_ECRYPTO;

	if (old_cert == NULL)
		return DEVID_EINVAL;
	if (X509_check_private_key(old_cert, old_key) != 1) {
		rc = devid_error_ssl(e, DEVID_ECRYPTO, "the CA key does not match its certificate");
		goto out;
	}
	if ((*ca = make_ca_cert(t->name, old->generation + 1, new_key, e)) == NULL ||
	    (nwo = make_cross(*ca, old_cert, old_key, e)) == NULL ||
	    (own = make_cross(old_cert, *ca, new_key, e)) == NULL)
		goto out;
	if ((rc = cert_der(*ca, &r->cert, &r->cert_len, e)) == 0 &&
	    (rc = cert_der(nwo, &r->nwo, &r->nwo_len, e)) == 0)
		rc = cert_der(own, &r->own, &r->own_len, e);
out:
	X509_free(old_cert);
	X509_free(nwo);
	X509_free(own);
	return rc;
}

int
service_ca_rotate(struct service *svc, const char *tenant, const char *key_uri, X509 **ca_out,
    struct devid_error *e)
{
	struct tenant t;
	struct ca_rec old = {0};
	struct rotation r = {0};
	void *old_handle = NULL, *new_handle = NULL;
	EVP_PKEY *old_key, *new_key;
	X509 *ca = NULL;
	json_t *detail = NULL;
	struct db *db;
	int rc;

	if (ca_out != NULL)
		*ca_out = NULL;
	if (svc->keys == NULL)
		return devid_error_set(e, DEVID_EINTERNAL, "no CA key loader");
	db = store_acquire(svc->store);
	if ((rc = ca_by_name(db, tenant, &t, &old, e)) != 0)
		goto out;
	/* refused before a key is made: a file key would be overwritten, a token's doubled */
	if (strcmp(key_uri, old.key_uri) == 0) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "the new CA key needs a place of its own: that is the current key's");
		goto out;
	}
	if ((rc = svc->keys->open(old.key_uri, &old_handle, &old_key, e)) != 0) {
		devid_error_prefix(e, "the current CA key");
		goto out;
	}
	if ((rc = svc->keys->generate(key_uri, &new_handle, &new_key, e)) != 0) {
		devid_error_prefix(e, "CA key");
		goto out;
	}
	if ((rc = ca_rotate_make(&t, &old, old_key, new_key, &ca, &r, e)) != 0)
		goto out;
	if ((detail = ca_detail(r.cert, r.cert_len, key_uri)) == NULL ||
	    json_object_set_new(detail, "generation", json_integer(old.generation + 1)) != 0 ||
	    json_object_set_new(detail, "retired", json_integer(old.generation)) != 0) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = audit_append(db, t.id, AUDIT_ACTOR_ADMIN_CLI, "ca.rotate", t.name, detail, e)) !=
		0 ||
	    (rc = store_ca_rotate(db, t.id, old.generation, r.cert, r.cert_len, key_uri, r.nwo,
		 r.nwo_len, r.own, r.own_len, e)) != 0) {
		db_rollback(db);
		goto out;
	}
	if ((rc = db_commit(db, e)) != 0)
		goto out;
	if (ca_out != NULL) {
		*ca_out = ca;
		ca = NULL;
	}
out:
	json_decref(detail);
	rotation_release(&r);
	X509_free(ca);
	if (old_handle != NULL)
		svc->keys->close(old_handle);
	if (new_handle != NULL)
		svc->keys->close(new_handle);
	ca_rec_release(&old);
	store_release(svc->store, db);
	return rc;
}

int
service_ca_set_validity(struct service *svc, const char *tenant, int days, struct devid_error *e)
{
	struct db *db;
	struct tenant t;
	json_t *detail = NULL;
	int rc;

	if (days < 1 || days > CA_MAX_VALIDITY_DAYS)
		return devid_error_set(e, DEVID_EINVAL, "validity: %d days, allowed 1 to %d", days,
		    CA_MAX_VALIDITY_DAYS);
	db = store_acquire(svc->store);
	if ((rc = oem_by_name(db, tenant, &t, e)) != 0 || (rc = db_begin(db, e)) != 0)
		goto out;
	detail = json_pack("{s:i}", "validityDays", days);
	if ((rc = audit_append(
		 db, t.id, AUDIT_ACTOR_ADMIN_CLI, "ca.validity", t.name, detail, e)) != 0 ||
	    (rc = store_ca_set_validity(db, t.id, days, e)) != 0) {
		db_rollback(db);
		goto out;
	}
	rc = db_commit(db, e);
out:
	json_decref(detail);
	store_release(svc->store, db);
	return rc;
}

/* --- quota ------------------------------------------------------------------------------ */

static int
quota_set(
    struct db *db, const struct tenant *t, const char *actor, int64_t max, struct devid_error *e)
{
	json_t *detail = max < 0 ? json_pack("{s:n}", "max") : json_pack("{s:I}", "max", max);
	int rc;

	if (detail == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	if ((rc = db_begin(db, e)) == 0) {
		if ((rc = audit_append(db, t->id, actor, "quota.set", t->name, detail, e)) != 0 ||
		    (rc = store_quota_set(db, t->id, max, e)) != 0)
			db_rollback(db);
		else
			rc = db_commit(db, e);
	}
	json_decref(detail);
	return rc;
}

int
service_quota_set_admin(struct service *svc, const char *tenant, int64_t max, struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	struct tenant t;
	int rc;

	if ((rc = oem_by_name(db, tenant, &t, e)) == 0)
		rc = quota_set(db, &t, AUDIT_ACTOR_ADMIN_CLI, max, e);
	store_release(svc->store, db);
	return rc;
}

int
service_quota_get(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e)
{
	struct db *db;
	int64_t max, used;
	int rc;

	*out = NULL;
	if (p->tenant.kind != TENANT_OEM)
		return devid_error_set(e, DEVID_EAUTH, "quotas belong to OEM tenants");
	db = store_acquire(svc->store);
	if ((rc = store_quota_get(db, p->tenant.id, &max, &used, e)) == 0) {
		*out = max < 0 ? json_pack("{s:n, s:I}", "max", "used", used)
			       : json_pack("{s:I, s:I}", "max", max, "used", used);
		if (*out == NULL)
			rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	}
	store_release(svc->store, db);
	return rc;
}

int
service_quota_put(
    struct service *svc, const struct principal *p, const json_t *body, struct devid_error *e)
{
	const json_t *m = json_is_object(body) ? json_object_get(body, "max") : NULL;
	struct db *db;
	int64_t max;
	int rc;

	if (p->tenant.kind != TENANT_OEM || p->role != ROLE_ADMIN)
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin sets the quota");
	if (!json_is_object(body) || json_object_size(body) != 1 || m == NULL)
		return devid_error_set(
		    e, DEVID_EINVAL, "the body is {\"max\": N} or {\"max\": null}");
	if (json_is_null(m))
		max = -1;
	else if (json_is_integer(m) && json_integer_value(m) >= 0)
		max = json_integer_value(m);
	else
		return devid_error_set(
		    e, DEVID_EINVAL, "max: a whole number >= 0, or null for none");
	db = store_acquire(svc->store);
	rc = quota_set(db, &p->tenant, p->actor, max, e);
	store_release(svc->store, db);
	return rc;
}

/* --- EST ---------------------------------------------------------------------------------- */

/* The vendor's entry as it is; the caller holds c->mu. */
static struct vendor_entry *
vendor_find(struct ca_cache *c, int64_t vendor_id)
{
	for (size_t i = 0; i < c->nvendors; i++)
		if (c->vendors[i].vendor_id == vendor_id)
			return &c->vendors[i];
	return NULL;
}

/* The vendor's cache entry, made or reloaded as needed; the caller holds c->mu. */
static struct vendor_entry *
vendor_entry_get(struct ca_cache *c, struct db *db, int64_t vendor_id, struct devid_error *e)
{
	struct vendor_entry *v = vendor_find(c, vendor_id);
	STACK_OF(X509) *roots;
	X509_STORE *st = NULL;
	time_t now = time(NULL);

	if (v != NULL && now - v->loaded < TRUST_TTL_SECS)
		return v;
	if ((roots = sk_X509_new_null()) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "out of memory");
		return NULL;
	}
	if (service_trust_certs(db, vendor_id, roots, NULL, e) == 0)
		st = x509_store_new(roots, e);
	sk_X509_pop_free(roots, X509_free);
	if (st == NULL)
		return NULL;
	if (v == NULL) {
		if (c->nvendors == c->capvendors) {
			size_t cap = c->capvendors ? 2 * c->capvendors : 8;
			struct vendor_entry *nv = realloc(c->vendors, cap * sizeof(*nv));

			if (nv == NULL) {
				X509_STORE_free(st);
				devid_error_set(e, DEVID_ENOMEM, "out of memory");
				return NULL;
			}
			c->vendors = nv;
			c->capvendors = cap;
		}
		v = &c->vendors[c->nvendors++];
		*v = (struct vendor_entry){.vendor_id = vendor_id};
	}
	/* the intermediates known before stay anchors if they still chain to a root */
	for (int i = 0; v->inter != NULL && i < sk_X509_num(v->inter); i++) {
		struct x509_verify_opts any = {.purpose = X509_PURPOSE_ANY};
		X509 *x = sk_X509_value(v->inter, i);

		if (x509_chain_verify(st, x, NULL, &any, NULL) == 0)
			X509_STORE_add_cert(st, x);
		ERR_clear_error();
	}
	X509_STORE_free(v->roots);
	v->roots = st;
	v->loaded = now;
	/* what the old roots verified, the new ones may not */
	if (v->verified != NULL)
		memset(v->verified, 0, BIRTH_OK_SLOTS * sizeof(*v->verified));
	return v;
}

/* The cache entry of the device's birth certificate. */
static struct birth_ok
birth_ok_of(const struct est_device *dev, time_t until)
{
	struct birth_ok b = {.device_id = dev->id, .until = until};
	size_t n = dev->cert_len < sizeof(b.tail) ? dev->cert_len : sizeof(b.tail);

	memcpy(b.tail, dev->cert + dev->cert_len - n, n);
	return b;
}

/* Whether the device's birth certificate verified up to roots, the vendor's current ones. */
static bool
birth_known(struct service *svc, X509_STORE *roots, const struct est_device *dev)
{
	struct birth_ok want = birth_ok_of(dev, 0), *b;
	struct vendor_entry *v;
	bool known = false;

	pthread_mutex_lock(&svc->cas->mu);
	if ((v = vendor_find(svc->cas, dev->vendor_id)) != NULL && v->roots == roots &&
	    v->verified != NULL) {
		b = &v->verified[(uint64_t)dev->id % BIRTH_OK_SLOTS];
		known = b->device_id == dev->id &&
		    memcmp(b->tail, want.tail, sizeof(b->tail)) == 0 && time(NULL) < b->until;
	}
	pthread_mutex_unlock(&svc->cas->mu);
	return known;
}

/* Remembers that the device's birth certificate verified up to roots, until then. */
static void
birth_remember(struct service *svc, X509_STORE *roots, const struct est_device *dev, time_t until)
{
	struct vendor_entry *v;

	pthread_mutex_lock(&svc->cas->mu);
	if ((v = vendor_find(svc->cas, dev->vendor_id)) != NULL && v->roots == roots &&
	    (v->verified != NULL ||
		(v->verified = calloc(BIRTH_OK_SLOTS, sizeof(*v->verified))) != NULL))
		v->verified[(uint64_t)dev->id % BIRTH_OK_SLOTS] = birth_ok_of(dev, until);
	pthread_mutex_unlock(&svc->cas->mu);
}

/* A vendor's roots and known intermediates: new references, safe to use unlocked. */
static int
vendor_trust(struct service *svc, struct db *db, int64_t vendor_id, X509_STORE **roots,
    STACK_OF(X509) **inter, struct devid_error *e)
{
	struct vendor_entry *v;
	int rc = 0;

	pthread_mutex_lock(&svc->cas->mu);
	if ((v = vendor_entry_get(svc->cas, db, vendor_id, e)) == NULL) {
		rc = e != NULL && e->code != 0 ? e->code : DEVID_ENOMEM;
	} else if ((*inter = v->inter ? X509_chain_up_ref(v->inter) : sk_X509_new_null()) == NULL ||
	    !X509_STORE_up_ref(v->roots)) {
		sk_X509_pop_free(*inter, X509_free);
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	} else {
		*roots = v->roots;
	}
	pthread_mutex_unlock(&svc->cas->mu);
	return rc;
}

/*
 * Remembers the intermediates of a device's entry that a verification up to a root just
 * used, and trusts them as anchors of that vendor's store (until it is reloaded).
 */
static void
vendor_learn(struct service *svc, int64_t vendor_id, STACK_OF(X509) *certs)
{
	struct vendor_entry *v;

	pthread_mutex_lock(&svc->cas->mu);
	v = vendor_find(svc->cas, vendor_id);
	if (v != NULL && (v->inter != NULL || (v->inter = sk_X509_new_null()) != NULL)) {
		for (int i = 0; i < sk_X509_num(certs) && sk_X509_num(v->inter) < 64; i++) {
			X509 *x = sk_X509_value(certs, i);
			bool known = false;

			for (int j = 0; j < sk_X509_num(v->inter) && !known; j++)
				known = X509_cmp(sk_X509_value(v->inter, j), x) == 0;
			if (known || !X509_up_ref(x))
				continue;
			if (!sk_X509_push(v->inter, x))
				X509_free(x);
			else /* it just chained to a root: verifications may end there */
				X509_STORE_add_cert(v->roots, x);
		}
	}
	pthread_mutex_unlock(&svc->cas->mu);
}

/* sent and more, in one stack of borrowed pointers. */
static STACK_OF(X509) *
chain_join(STACK_OF(X509) *sent, STACK_OF(X509) *more)
{
	STACK_OF(X509) *sk = sent != NULL ? sk_X509_dup(sent) : sk_X509_new_null();

	for (int i = 0; sk != NULL && more != NULL && i < sk_X509_num(more); i++) {
		if (!sk_X509_push(sk, sk_X509_value(more, i))) {
			sk_X509_free(sk);
			return NULL;
		}
	}
	return sk;
}

/*
 * Verifies a birth certificate up to a vendor root, through the intermediates the device
 * sent and those known for its vendor; failing that, through those of its manifest entry
 * (devices commonly send only their own certificate), which are then known.
 */
static int
birth_chain_verify(struct service *svc, struct db *db, const struct est_device *dev, X509 *client,
    STACK_OF(X509) *sent, struct devid_error *e)
{
	time_t until;
	/* a learned intermediate is an anchor: one signature to check, not two */
	struct x509_verify_opts vo = {
	    .purpose = X509_PURPOSE_SSL_CLIENT, .partial_chain = true, .valid_until = &until};
	struct manifest_entry *m = NULL;
	STACK_OF(X509) *inter = NULL, *untrusted = NULL;
	X509_STORE *roots = NULL;
	int rc;

	if ((rc = vendor_trust(svc, db, dev->vendor_id, &roots, &inter, e)) != 0)
		goto out;
	if (birth_known(svc, roots, dev))
		goto out;
	if ((untrusted = chain_join(sent, inter)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	if (x509_chain_verify(roots, client, untrusted, &vo, NULL) == 0) {
		birth_remember(svc, roots, dev, until);
		goto out;
	}
	ERR_clear_error();
	sk_X509_free(untrusted);
	if ((rc = manifest_entry_parse_bytes(
		 (const uint8_t *)dev->entry, strlen(dev->entry), &m, e)) != 0)
		goto out;
	if ((untrusted = chain_join(sent, m->chain)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = x509_chain_verify(roots, client, untrusted, &vo, e)) == 0) {
		vendor_learn(svc, dev->vendor_id, m->chain);
		birth_remember(svc, roots, dev, until);
	}
out:
	sk_X509_free(untrusted);
	sk_X509_pop_free(inter, X509_free);
	X509_STORE_free(roots);
	manifest_entry_free(m);
	return rc;
}

/* Lowercase hex of a certificate's serial, at most SERIAL_HEX_MAX digits. */
static int
serial_hex(X509 *x, char out[SERIAL_HEX_MAX + 1])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL;
	int rc = -1;

	if (h != NULL && strlen(h) <= SERIAL_HEX_MAX) {
		for (size_t i = 0; h[i]; i++)
			out[i] = (char)(h[i] >= 'A' && h[i] <= 'F' ? h[i] - 'A' + 'a' : h[i]);
		out[strlen(h)] = '\0';
		rc = 0;
	}
	OPENSSL_free(h);
	BN_free(bn);
	return rc;
}

/*
 * Copies the CSR's SubjectPublicKeyInfo into x as it is. X509_set_pubkey would encode the
 * key and decode it again, which OpenSSL 3.0 does slowly (a decoder context per call); the
 * price is that x's key stays undecoded (service.h says so of service_est_enroll).
 */
static int
copy_spki(X509 *x, X509_REQ *csr)
{
	const ASN1_OBJECT *alg;
	const unsigned char *pk;
	X509_ALGOR *pa;
	const void *pval;
	X509_PUBKEY *from = X509_REQ_get_X509_PUBKEY(csr), *to = X509_get_X509_PUBKEY(x);
	ASN1_OBJECT *aobj = NULL, *param = NULL;
	unsigned char *bits = NULL;
	int pklen, ptype;

	if (from == NULL || to == NULL || !X509_PUBKEY_get0_param(NULL, &pk, &pklen, &pa, from))
		return -1;
	X509_ALGOR_get0(&alg, &ptype, &pval, pa);
	/* an EC key (the CSR intake allows no other): its curve is a named OID */
	if (ptype != V_ASN1_OBJECT || pklen <= 0 || (aobj = OBJ_dup(alg)) == NULL ||
	    (param = OBJ_dup(pval)) == NULL || (bits = OPENSSL_memdup(pk, (size_t)pklen)) == NULL ||
	    !X509_PUBKEY_set0_param(to, aobj, V_ASN1_OBJECT, param, bits, pklen)) {
		ASN1_OBJECT_free(aobj);
		ASN1_OBJECT_free(param);
		OPENSSL_free(bits);
		return -1;
	}
	return 0;
}

/*
 * The CRL distribution point (RFC 5280 4.2.1.13): one fullName URI, the CRL of the issuing
 * CA generation under the public base URL (checked by public_url_check; tenant names are
 * [A-Z0-9.-], so nothing needs escaping): .../crl for the first, which certificates issued
 * before rotation existed name, .../crl/N for the others. Built as ASN.1, not through a
 * config string that would parse the URL.
 */
static int
add_crl_dp(X509 *x, const char *base, const char *tenant, int64_t generation)
{
	char url[PUBLIC_URL_MAX + MAX_NAME_LEN + 64], gen[24] = "";
	size_t blen = strlen(base);
	CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
	DIST_POINT *dp = DIST_POINT_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *uri = ASN1_IA5STRING_new();
	int n, rc = -1;

	if (blen > 0 && base[blen - 1] == '/')
		blen--;
	if (generation > 1)
		snprintf(gen, sizeof(gen), "/%lld", (long long)generation);
	n = snprintf(
	    url, sizeof(url), "%.*s/api/v1/tenants/%s/crl%s", (int)blen, base, tenant, gen);
	if (dps == NULL || dp == NULL || gn == NULL || uri == NULL || n < 0 ||
	    (size_t)n >= sizeof(url) || !ASN1_STRING_set(uri, url, n))
		goto out;
	GENERAL_NAME_set0_value(gn, GEN_URI, uri);
	uri = NULL;
	if ((dp->distpoint = DIST_POINT_NAME_new()) == NULL)
		goto out;
	dp->distpoint->type = 0; /* fullName */
	if ((dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null()) == NULL ||
	    !sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn))
		goto out;
	gn = NULL;
	if (!sk_DIST_POINT_push(dps, dp))
		goto out;
	dp = NULL;
	rc = X509_add1_ext_i2d(x, NID_crl_distribution_points, dps, 0, X509V3_ADD_APPEND) == 1 ? 0
											       : -1;
out:
	ASN1_IA5STRING_free(uri);
	GENERAL_NAME_free(gn);
	DIST_POINT_free(dp);
	CRL_DIST_POINTS_free(dps);
	return rc;
}

/* Signs x with the CA's key, the time it took (an HSM's, often) observed in h. */
static int
sign_cert(X509 *x, EVP_PKEY *key, struct latency_histogram *h)
{
	int64_t started = monotonic_ns();
	int ok = X509_sign(x, key, EVP_sha256()) > 0;

	latency_observe(h, service_sign_bounds, monotonic_ns() - started);
	return ok ? 0 : DEVID_ECRYPTO;
}

/* The same for a CRL. */
static int
sign_crl(X509_CRL *crl, EVP_PKEY *key, struct latency_histogram *h)
{
	int64_t started = monotonic_ns();
	int ok = X509_CRL_sign(crl, key, EVP_sha256()) > 0;

	latency_observe(h, service_sign_bounds, monotonic_ns() - started);
	return ok ? 0 : DEVID_ECRYPTO;
}

/*
 * The operational certificate devid's profile makes for a device, signed with the time it
 * took observed in h; with public_url, it says where its tenant's CRL is.
 */
static X509 *
make_ldevid(const struct ca_entry *ca, X509_REQ *csr, const char *udid, const char *tenant,
    const char *chip_serial, int days, const char *public_url, struct latency_histogram *h,
    struct devid_error *e)
{
	X509_NAME *subj = X509_NAME_new();
	X509 *x = X509_new();
	X509V3_CTX ctx;

	if (x == NULL || subj == NULL || name_add(subj, "CN", udid) ||
	    name_add(subj, "O", tenant) ||
	    X509_NAME_add_entry_by_txt(subj, "serialNumber", MBSTRING_ASC,
		(const unsigned char *)chip_serial, -1, -1, 0) != 1 ||
	    !X509_set_version(x, X509_VERSION_3) || x509_set_random_serial(x) ||
	    !X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
	    set_validity(x, time(NULL) - CA_BACKDATE_SECS, (long)days * 86400) || copy_spki(x, csr))
		goto fail;
	X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
	if (x509_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
	    x509_add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") ||
	    x509_add_ext(x, &ctx, NID_ext_key_usage, "clientAuth") ||
	    x509_add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    x509_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") ||
	    (public_url != NULL && add_crl_dp(x, public_url, tenant, ca->generation) != 0) ||
	    sign_cert(x, ca->pkey, h) != 0)
		goto fail;
	X509_NAME_free(subj);
	return x;
fail:
	devid_error_ssl(e, DEVID_ECRYPTO, "cannot issue the certificate");
	X509_NAME_free(subj);
	X509_free(x);
	return NULL;
}

void
est_ctx_release(struct est_ctx *c)
{
	est_device_release(&c->dev);
	ca_rec_release(&c->ca);
}

int
est_device_by_udid(struct db *db, const char *udid, const char *label, const char *what,
    struct est_ctx *c, struct devid_error *e)
{
	int rc;

	snprintf(c->udid, sizeof(c->udid), "%s", udid);
	if ((rc = store_est_device(db, c->udid, &c->dev, c->owner.name, &c->ca, e)) != 0) {
		if (rc != DEVID_ENOTFOUND)
			return rc;
		c->refusal = EST_REFUSED_UNKNOWN_DEVICE;
		return devid_error_set(e, DEVID_EAUTH, "%s is not a device known to devid", what);
	}
	if (c->dev.owner_id == 0) {
		c->refusal = EST_REFUSED_NOT_CLAIMED;
		return devid_error_set(e, DEVID_EAUTH, "device %s is not claimed", c->udid);
	}
	c->owner.id = c->dev.owner_id;
	c->owner.kind = TENANT_OEM;
	if (label != NULL && strcmp(label, c->owner.name) != 0) {
		c->refusal = EST_REFUSED_WRONG_TENANT;
		return devid_error_set(
		    e, DEVID_EAUTH, "device %s is not claimed by tenant \"%s\"", c->udid, label);
	}
	if (c->ca.cert == NULL) {
		c->refusal = EST_REFUSED_NO_CA;
		return devid_error_set(
		    e, DEVID_ECONFLICT, "tenant \"%s\" has no operational CA", c->owner.name);
	}
	return 0;
}

/*
 * The device a client certificate's key names, and that device's owner and CA record.
 * by_subject (re-enrollment): a TPM device's LDevID certifies its signing key, not the EK
 * its UDID hashes, so when the key names no device, the certificate's subject CN (which
 * devid's profile sets to the UDID) names a TPM device. That only chooses the device to
 * check: est_authenticate then requires the certificate to chain to that device's tenant CA
 * and to be one devid issued to that device, so a made-up subject gets nowhere.
 */
static int
est_device_and_ca(struct db *db, X509 *client, const char *label, bool by_subject,
    struct est_ctx *c, struct devid_error *e)
{
	char udid[UDID_HEX_LEN + 1];
	int rc;

	if (x509_udid(client, udid) != 0) {
		c->refusal = EST_REFUSED_UNKNOWN_DEVICE;
		return devid_error_set(e, DEVID_EAUTH, "the client certificate has no usable key");
	}
	rc = est_device_by_udid(db, udid, label, "the client certificate's key", c, e);
	if (rc == 0 || !by_subject || c->refusal != EST_REFUSED_UNKNOWN_DEVICE ||
	    !x509_subject_udid(client, udid))
		return rc;
	rc = est_device_by_udid(db, udid, label, "the client certificate's key", c, e);
	if (rc == 0 && !c->dev.tpm) {
		c->refusal = EST_REFUSED_UNKNOWN_DEVICE;
		return devid_error_set(
		    e, DEVID_EAUTH, "the client certificate's key is not a device known to devid");
	}
	return rc;
}

int
est_ca_open(struct service *svc, struct db *db, struct est_ctx *c, struct devid_error *e)
{
	if (ca_open(svc, db, &c->ca, &c->entry, e) == 0)
		return 0;
	/* the server's fault, not the device's: a 500, logged */
	devid_error_prefix(e, "tenant \"%s\"", c->owner.name);
	if (e != NULL)
		e->code = DEVID_EINTERNAL;
	return DEVID_EINTERNAL;
}

/* Who the client is: its birth certificate (enroll) or its current LDevID (re-enroll). */
static int
est_authenticate(struct service *svc, struct db *db, enum est_op op, X509 *client,
    STACK_OF(X509) *chain, X509_REQ *csr, struct est_ctx *c, struct devid_error *e)
{
	struct x509_verify_opts vo = {.purpose = X509_PURPOSE_SSL_CLIENT};
	unsigned char *der = NULL;
	char serial[SERIAL_HEX_MAX + 1];
	bool issued, revoked;
	int n, rc;

	c->refusal = EST_REFUSED_AUTHENTICATION; /* unless it says otherwise below */
	if (op == EST_ENROLL && c->dev.tpm)
		return devid_error_set(e, DEVID_EAUTH,
		    "device %s is a TPM: its endorsement key cannot sign, so its EK certificate "
		    "cannot enroll by EST; enroll by credential activation (docs/tpm.md)",
		    c->udid);
	if (op == EST_ENROLL) {
		n = i2d_X509(client, &der);
		rc = n > 0 && (size_t)n == c->dev.cert_len &&
		    memcmp(der, c->dev.cert, (size_t)n) == 0;
		OPENSSL_free(der);
		if (!rc)
			return devid_error_set(e, DEVID_EAUTH,
			    "the client certificate is not device %s's birth certificate", c->udid);
		if (birth_chain_verify(svc, db, &c->dev, client, chain, e) != 0) {
			devid_error_prefix(e, "birth certificate");
			return DEVID_EAUTH;
		}
		return 0;
	}
	if (x509_chain_verify(c->entry->store, client, NULL, &vo, e) != 0) {
		devid_error_prefix(e, "operational certificate");
		return DEVID_EAUTH;
	}
	if (serial_hex(client, serial) != 0 ||
	    (rc = store_cert_issued(db, c->owner.id, c->dev.id, serial, &issued, &revoked, e)) !=
		0 ||
	    !issued)
		return devid_error_set(e, DEVID_EAUTH,
		    "the operational certificate was not issued by devid to device %s", c->udid);
	/* e.g. revoked by a release, and the batch claimed again: enroll with the birth
	 * certificate instead */
	if (revoked) {
		c->refusal = EST_REFUSED_REVOKED;
		return devid_error_set(
		    e, DEVID_EAUTH, "the operational certificate of device %s is revoked", c->udid);
	}
	if (X509_NAME_cmp(X509_REQ_get_subject_name(csr), X509_get_subject_name(client)) != 0) {
		c->refusal = EST_REFUSED_CSR;
		return devid_error_set(e, DEVID_EINVAL,
		    "a re-enrollment keeps the subject of the certificate it renews (RFC 7030 "
		    "4.2.2); the CSR's subject differs");
	}
	c->refusal = EST_REFUSED_ERROR;
	return 0;
}

/* The audit action and the log's op of each way to ask for a certificate. */
static const char *const est_op_actions[EST_NOPS] = {
    "est.enroll", "est.reenroll", "est.tpm_enroll"};
static const char *const est_op_names[EST_NOPS] = {"enroll", "reenroll", "tpm_enroll"};

/*
 * The sighting and the clone rules, quota, the certificate and its audit record, in one
 * transaction. A quarantine commits the revoke and refuses the certificate.
 */
static int
est_record(struct service *svc, struct db *db, enum est_op op, struct est_ctx *c, X509 *x,
    const char *serial, struct devid_error *e)
{
	bool quarantined = false;
	uint8_t *der = NULL;
	size_t len = 0;
	int64_t owner;
	bool revoked;
	json_t *detail = NULL;
	const ASN1_TIME *na = X509_get0_notAfter(x);
	time_t not_after;
	struct tm tm;
	char when[32];
	int rc;

	if (ASN1_TIME_to_tm(na, &tm) != 1)
		return devid_error_set(e, DEVID_EINTERNAL, "bad notAfter");
	not_after = timegm(&tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if ((rc = cert_der(x, &der, &len, e)) != 0)
		return rc;
	if ((detail = cert_detail(der, len)) == NULL ||
	    json_object_set_new(detail, "serial", json_string(serial)) != 0 ||
	    json_object_set_new(detail, "notAfter", json_string(when)) != 0) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	/* what was checked before signing still holds: not revoked, not released meanwhile */
	if ((rc = store_device_owner(db, c->dev.id, &owner, &revoked, e)) != 0)
		goto rollback;
	if (revoked || owner != c->owner.id) {
		c->refusal = revoked ? EST_REFUSED_REVOKED : EST_REFUSED_NOT_CLAIMED;
		rc = devid_error_set(e, DEVID_EAUTH, "device %s was %s meanwhile", c->udid,
		    revoked ? "revoked" : "released");
		goto rollback;
	}
	if (c->client != NULL &&
	    (rc = clone_observe_est(svc, db, c->owner.id, c->udid, c->peer, c->client,
		 c->ca.validity_days, &quarantined, e)) != 0)
		goto rollback;
	if (quarantined) {
		c->refusal = EST_REFUSED_REVOKED;
		if ((rc = db_commit(db, e)) == 0)
			rc = devid_error_set(e, DEVID_EAUTH,
			    "device %s is revoked: its identity is suspected of being cloned",
			    c->udid);
		goto out;
	}
	/* the audit record first: a tenant's issuances queue on its chain's lock before they
	 * count the quota */
	if ((rc = audit_append(
		 db, c->owner.id, "device", est_op_actions[op], c->udid, detail, e)) != 0 ||
	    (rc = store_quota_take(db, c->owner.id, c->dev.id, e)) != 0 ||
	    (rc = store_cert_add(db, c->owner.id, c->ca.generation, c->dev.id, serial, der, len,
		 (int64_t)not_after, e)) != 0) {
		if (rc == DEVID_ELIMIT)
			c->refusal = EST_REFUSED_QUOTA;
		goto rollback;
	}
	rc = db_commit(db, e);
	goto out;
rollback:
	db_rollback(db);
out:
	json_decref(detail);
	OPENSSL_free(der);
	return rc;
}

int
est_issue(struct service *svc, struct db *db, enum est_op op, struct est_ctx *c, X509_REQ *csr,
    X509 **issued, struct devid_error *e)
{
	char serial[SERIAL_HEX_MAX + 1];
	X509 *x;
	int rc;

	c->refusal = EST_REFUSED_ERROR;
	if ((x = make_ldevid(c->entry, csr, c->udid, c->owner.name, c->dev.serial,
		 c->ca.validity_days, svc->public_url, &svc->metrics.sign[CA_SIGNED_CERTIFICATE],
		 e)) == NULL)
		return DEVID_ECRYPTO;
	if (serial_hex(x, serial) != 0) {
		rc = devid_error_set(e, DEVID_EINTERNAL, "serial");
		goto out;
	}
	if ((rc = est_record(svc, db, op, c, x, serial, e)) != 0)
		goto out;
	log_info("est issued", LOG_STR("op", est_op_names[op]), LOG_STR("tenant", c->owner.name),
	    LOG_STR("udid", c->udid), LOG_STR("serial", serial));
	*issued = x;
	x = NULL;
out:
	X509_free(x);
	return rc;
}

int
service_est_enroll(struct service *svc, enum est_op op, const char *label, const char *peer,
    X509 *client_cert, STACK_OF(X509) *client_chain, X509_REQ *csr, X509 **issued,
    struct devid_error *e)
{
	/* why a refusal happened, where the check that made it says; else the server failed */
	struct est_ctx c = {.refusal = EST_REFUSED_ERROR};
	struct db *db;
	int rc;

	*issued = NULL;
	if (client_cert == NULL) {
		counter_add(&svc->metrics.est_refused[EST_REFUSED_NO_CERTIFICATE], 1);
		return devid_error_set(e, DEVID_EAUTH, "a device certificate is required");
	}
	db = store_acquire(svc->store);
	if ((rc = est_device_and_ca(db, client_cert, label, op == EST_REENROLL, &c, e)) != 0)
		goto out;
	if ((rc = est_ca_open(svc, db, &c, e)) != 0)
		goto out;
	if ((rc = est_authenticate(svc, db, op, client_cert, client_chain, csr, &c, e)) != 0)
		goto out;
	if (c.dev.revoked) {
		c.refusal = EST_REFUSED_REVOKED;
		rc = devid_error_set(e, DEVID_EAUTH, "device %s is revoked", c.udid);
		goto out;
	}
	/* the certificate carries the CSR's SubjectPublicKeyInfo as it is: the one encoding of
	 * the key, so that the certificate's UDID is the device's (csr_from_der checks it too) */
	c.refusal = EST_REFUSED_CSR;
	if (x509_spki_check_uncompressed(X509_REQ_get_X509_PUBKEY(csr), e) != 0) {
		devid_error_prefix(e, "CSR");
		rc = DEVID_EINVAL;
		goto out;
	}
	/* both encodings are unique (uncompressed points): the same bytes, the same key */
	if (!x509_spki_same(X509_REQ_get_X509_PUBKEY(csr), X509_get_X509_PUBKEY(client_cert))) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "the CSR's key is not the device's key (the key stays in the device's token)");
		goto out;
	}
	/* an authenticated enrollment is a sighting of the device (est_record) */
	c.client = client_cert;
	c.peer = peer;
	rc = est_issue(svc, db, op, &c, csr, issued, e);
out:
	if (rc == 0)
		counter_add(&svc->metrics.est_issued[op], 1);
	else
		counter_add(&svc->metrics.est_refused[c.refusal], 1);
	est_ctx_release(&c);
	store_release(svc->store, db);
	return rc;
}

int
service_est_cacerts(struct service *svc, const char *label, X509 *client_cert, STACK_OF(X509) **out,
    struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	struct est_ctx c = {0};
	struct tenant t;
	int rc;

	*out = NULL;
	if (label != NULL) {
		if ((rc = ca_by_name(db, label, &t, &c.ca, e)) == 0)
			c.owner.id = t.id;
	} else if (client_cert == NULL) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "name the tenant (/.well-known/est/<tenant>/cacerts) or present a device "
		    "certificate");
	} else {
		rc = est_device_and_ca(db, client_cert, NULL, false, &c, e);
		if (rc == DEVID_EAUTH || rc == DEVID_ECONFLICT)
			rc = DEVID_ENOTFOUND;
	}
	if (rc == 0)
		rc = ca_bundle(db, c.owner.id, &c.ca, true, out, e);
	est_ctx_release(&c);
	store_release(svc->store, db);
	return rc;
}

/* --- CRL ---------------------------------------------------------------------------------- */

static X509_CRL *
make_crl(const struct ca_entry *ca, int64_t number, const struct db_rows *r, time_t now,
    struct latency_histogram *h, struct devid_error *e)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	ASN1_TIME *t = NULL;
	X509_EXTENSION *aki = NULL;
	X509V3_CTX ctx;

	if (crl == NULL || num == NULL || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
	    (t = X509_time_adj_ex(NULL, 0, 0, &now)) == NULL || !X509_CRL_set1_lastUpdate(crl, t) ||
	    X509_time_adj_ex(t, 0, CRL_NEXT_UPDATE_SECS, &now) == NULL ||
	    !X509_CRL_set1_nextUpdate(crl, t))
		goto fail;
	for (size_t i = 0; i < db_rows_count(r); i++) {
		X509_REVOKED *rv = X509_REVOKED_new();
		BIGNUM *bn = NULL;
		ASN1_INTEGER *sn = NULL;
		ASN1_ENUMERATED *reason = NULL;
		time_t at = (time_t)db_rows_int(r, i, 1);
		int64_t code = db_rows_int(r, i, 2);
		int ok = rv != NULL && BN_hex2bn(&bn, db_rows_text(r, i, 0, NULL)) > 0 &&
		    (sn = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
		    X509_REVOKED_set_serialNumber(rv, sn) &&
		    X509_time_adj_ex(t, 0, 0, &at) != NULL &&
		    X509_REVOKED_set_revocationDate(rv, t);

		/* RFC 5280 5.3.1: absent rather than unspecified (0) */
		if (ok && code != CRL_REASON_UNSPECIFIED)
			ok = (reason = ASN1_ENUMERATED_new()) != NULL &&
			    ASN1_ENUMERATED_set(reason, (long)code) &&
			    X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, reason, 0, 0) == 1;
		ok = ok && X509_CRL_add0_revoked(crl, rv);
		ASN1_ENUMERATED_free(reason);
		ASN1_INTEGER_free(sn);
		BN_free(bn);
		if (!ok) {
			X509_REVOKED_free(rv);
			goto fail;
		}
	}
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
	if (!X509_CRL_sort(crl) || !ASN1_INTEGER_set_int64(num, number) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) ||
	    (aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) ==
		NULL ||
	    !X509_CRL_add_ext(crl, aki, -1) || sign_crl(crl, ca->pkey, h) != 0)
		goto fail;
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	return crl;
fail:
	devid_error_ssl(e, DEVID_ECRYPTO, "cannot make the CRL");
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return NULL;
}

/* The CA record of the tenant's generation, current or retired. */
static int
ca_generation(struct db *db, const char *tenant, int64_t generation, struct tenant *t,
    struct ca_rec *rec, struct devid_error *e)
{
	int rc;

	if ((rc = ca_by_name(db, tenant, t, rec, e)) != 0 || rec->generation == generation)
		return rc;
	ca_rec_release(rec);
	if ((rc = store_ca_retired_get(db, t->id, generation, rec, e)) != 0)
		devid_error_set(e, rc, "tenant \"%s\" has no CA generation %lld", tenant,
		    (long long)generation);
	return rc;
}

int
service_crl(struct service *svc, const char *tenant, int64_t generation, struct dynbuf *der,
    struct devid_error *e)
{
	struct db *db;
	struct crl_rec cached = {0}, fresh = {0};
	struct db_rows *rows = NULL;
	struct ca_entry *entry;
	struct ca_rec rec = {0};
	struct tenant t;
	X509_CRL *crl = NULL;
	unsigned char *p = NULL;
	time_t now = time(NULL);
	bool stored;
	int n, rc;

	if (svc->cas == NULL)
		return devid_error_set(e, DEVID_EINTERNAL, "this server has no CA cache");
	db = store_acquire(svc->store);
	if ((rc = ca_generation(db, tenant, generation, &t, &rec, e)) != 0)
		goto done;
	pthread_mutex_lock(&svc->cas->crl_mu);
	if ((rc = store_crl_state(
		 db, t.id, generation, now, &fresh.revoked, &fresh.last_revoked_at, e)) != 0)
		goto out;
	rc = store_crl_get(db, t.id, generation, &cached, e);
	if (rc != 0 && rc != DEVID_ENOTFOUND)
		goto out;
	if (rc == 0 && cached.revoked == fresh.revoked &&
	    cached.last_revoked_at == fresh.last_revoked_at &&
	    now - cached.this_update < CRL_RESIGN_SECS) {
		rc = dynbuf_add(der, cached.der, cached.len);
		goto out;
	}
	/* the number comes from the database, so no two servers sign one number twice */
	fresh.this_update = now;
	if ((rc = ca_open(svc, db, &rec, &entry, e)) != 0 ||
	    (rc = store_crl_entries(db, t.id, generation, now, &rows, e)) != 0 ||
	    (rc = store_crl_number_next(db, t.id, generation, &fresh.number, e)) != 0)
		goto out;
	if ((crl = make_crl(
		 entry, fresh.number, rows, now, &svc->metrics.sign[CA_SIGNED_CRL], e)) == NULL) {
		rc = DEVID_ECRYPTO;
		goto out;
	}
	if ((n = i2d_X509_CRL(crl, &p)) <= 0) {
		rc = devid_error_ssl(e, DEVID_ENOMEM, "cannot encode the CRL");
		goto out;
	}
	fresh.der = p;
	fresh.len = (size_t)n;
	if ((rc = store_crl_put(db, t.id, generation, &fresh, &stored, e)) != 0)
		goto out;
	if (stored) {
		rc = dynbuf_add(der, p, (size_t)n);
		goto out;
	}
	/* another server stored a newer CRL meanwhile: serve that one, so that a reader never
	 * sees the number go back */
	free(cached.der);
	cached.der = NULL;
	if ((rc = store_crl_get(db, t.id, generation, &cached, e)) == 0)
		rc = dynbuf_add(der, cached.der, cached.len);
out:
	pthread_mutex_unlock(&svc->cas->crl_mu);
done:
	/* the server's own response cap, not the caller's rate: a 500, never a 429 */
	if (rc == DEVID_ELIMIT || rc == DEVID_ENOMEM)
		rc = devid_error_set(e, DEVID_EINTERNAL, "the CRL does not fit in the response");
	OPENSSL_free(p);
	free(cached.der);
	db_rows_free(rows);
	X509_CRL_free(crl);
	ca_rec_release(&rec);
	store_release(svc->store, db);
	return rc;
}
