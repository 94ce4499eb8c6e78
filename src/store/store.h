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
#include "store/db.h"

struct store;

/* Opens nconns connections to url and brings the schema up to date. */
int store_open(const char *url, int nconns, struct store **out, struct devid_error *e);
void store_close(struct store *s);
/* Takes a free connection (waits while all are in use); give it back with store_release. */
struct db *store_acquire(struct store *s);
void store_release(struct store *s, struct db *db);

/* Applies the migrations the database lacks, in one transaction. Safe to run concurrently. */
int store_migrate(struct db *db, struct devid_error *e);
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

/* Stores a token by its SHA-256 (hex); the token itself is never stored. */
int store_token_add(struct db *db, int64_t tenant_id, enum role role, const char *sha256_hex,
    struct devid_error *e);
/* The tenant and role of a token hash; DEVID_ENOTFOUND if unknown. */
int store_token_lookup(struct db *db, const char *sha256_hex, struct tenant *t, enum role *role,
    struct devid_error *e);

/* Trusted vendor root and manifest signer (PEM) for a vendor tenant. */
int store_trust_add(struct db *db, int64_t vendor_id, const char *root_pem, const char *signer_pem,
    const char *signer_sha256_hex, struct devid_error *e);

#endif
