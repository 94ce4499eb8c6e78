/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gateway.h - `devid gateway`, the reference product cloud (docs/gateway.md).
 *
 * Five parts, one file each:
 *   events.c   the webhook's event body and signature: pure functions of outside bytes
 *   acl.c      the ACL and the applied events in SQLite (through src/store/db.h)
 *   seen.c     the sightings of admitted devices, and the seen reports' bodies (no I/O)
 *   report.c   the reporter: a thread that posts the seen reports to devid with libcurl
 *   gateway.c  the two servers: the device port (mutual TLS, admission by UDID) and the
 *              admin port (POST /devid/events, GET /devid/acl)
 *
 * The device's identity is its UDID: the lowercase hex SHA-256 of its certificate's
 * SubjectPublicKeyInfo (x509_udid), so a birth certificate and a later operational
 * certificate of the same key are the same device. A certificate whose verified chain passes
 * through an --ldevid-ca (an OEM's operational CA) is known by its subject instead: the CN
 * is the UDID and the O the tenant, both vouched for by that CA. This is how a TPM device's
 * LDevID, whose key is a TPM signing key and not the EK the UDID hashes, is admitted.
 */
#ifndef DEVID_GATEWAY_H
#define DEVID_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/error.h"
#include "lib/limits.h"
#include "lib/x509.h"

/*
 * Limits on the gateway's outside input. They belong beside the others in src/lib/limits.h;
 * they live here because src/gateway owns no file outside its folder.
 */
/* devices in one event: the push chunk size of devid's outbox */
#define GATEWAY_MAX_DEVICES 1000
/* an event id: [A-Za-z0-9._:-]{1,128} */
#define GATEWAY_MAX_EVENT_ID_LEN 128
/* one device's certificate as PEM text (a P-256 birth certificate is about 1 KiB) */
#define GATEWAY_MAX_CERT_PEM 16384
/* the body of POST /devid/events: 1,000 devices of a few KiB each; over it the answer is 413 */
#define GATEWAY_MAX_EVENT_BODY ((size_t)8 << 20)
/* the shared secret, in bytes: at least 16 (guessing must be hopeless), at most 1024 */
#define GATEWAY_MIN_SECRET_LEN 16
#define GATEWAY_MAX_SECRET_LEN 1024
/* a request body on the device port: a device asks for its greeting, nothing large */
#define GATEWAY_MAX_DEVICE_BODY 16384
/* trust anchor files given with --trust */
#define GATEWAY_MAX_TRUST_FILES 32
/* operational CA files given with --ldevid-ca */
#define GATEWAY_MAX_LDEVID_CA_FILES 32
/* a suspected_clone event's "suspicion.detail", compact JSON: devid's evidence, not a dump */
#define GATEWAY_MAX_SUSPICION_DETAIL 65536
/* "suspicion.at": RFC 3339 in UTC, "2026-12-05T11:00:00Z", at most nine fraction digits */
#define GATEWAY_MAX_TIME_LEN 30

/* seen reports: distinct sightings kept between two flushes; past it new ones are dropped */
#define GATEWAY_MAX_SIGHTINGS 100000
/* sightings in one report (more make several reports) */
#define GATEWAY_MAX_REPORT_SIGHTINGS 1000
/* reports kept for a retry while devid cannot take them; past it the oldest is dropped */
#define GATEWAY_MAX_UNSENT_REPORTS 100
/* --report-interval, in seconds */
#define GATEWAY_MIN_REPORT_INTERVAL 1
#define GATEWAY_MAX_REPORT_INTERVAL 3600
#define GATEWAY_DEFAULT_REPORT_INTERVAL 10
/* an origin: an IP address as text, IPv6 at its longest (INET6_ADDRSTRLEN less the NUL) */
#define GATEWAY_MAX_ORIGIN_LEN 45
/* devid's answer to a report, kept for its counts or its message; the rest is discarded */
#define GATEWAY_MAX_REPORT_ANSWER 65536

/* --- events.c: the webhook contract ---------------------------------------------------- */

/*
 * GATEWAY_TEST: devid's connector test (no device, nothing changes). GATEWAY_SUSPECTED_CLONE:
 * devid suspects the devices are cloned; the gateway logs it and changes nothing (a
 * quarantine arrives as its own remove event).
 */
enum gateway_action { GATEWAY_ADD, GATEWAY_REMOVE, GATEWAY_TEST, GATEWAY_SUSPECTED_CLONE };

/* Why devid suspects a clone: "suspicion.rule". */
enum gateway_rule {
	GATEWAY_RULE_CONCURRENT_ORIGINS,
	GATEWAY_RULE_SUPERSEDED_CERTIFICATE,
	GATEWAY_RULE_ENROLLMENT_RATE
};

/* The "suspicion" of a suspected_clone event. Its "detail" object is checked, not kept. */
struct gateway_suspicion {
	enum gateway_rule rule;
	char at[GATEWAY_MAX_TIME_LEN + 1]; /* RFC 3339, UTC ("Z"), as received */
	bool quarantined; /* devid quarantined the devices (their remove event follows) */
};

struct gateway_device {
	char udid[UDID_HEX_LEN + 1]; /* 64 lowercase hex, the UDID of certificate */
	char serial[MAX_SERIAL_LEN + 1]; /* 1 to 64 bytes of UTF-8, no control character */
	char batch[MAX_NAME_LEN + 1]; /* [A-Z0-9.-]{1,64} */
	char *certificate; /* the PEM text as received, NUL-terminated; owned by the event */
	size_t certificate_len;
};

struct gateway_event {
	char id[GATEWAY_MAX_EVENT_ID_LEN + 1];
	enum gateway_action action;
	char tenant[MAX_NAME_LEN + 1]; /* [A-Z0-9.-]{1,64}, devid's tenant names */
	size_t ndevices; /* 1 to GATEWAY_MAX_DEVICES; 0 for GATEWAY_TEST */
	struct gateway_device *devices; /* ndevices of them, no UDID twice */
	struct gateway_suspicion suspicion; /* GATEWAY_SUSPECTED_CLONE only; zero otherwise */
};

/*
 * Parses exactly p[0..len) (not NUL-terminated) as one event:
 *   {"event":"<id>","action":"add"|"remove","tenant":"<T>",
 *    "devices":[{"udid":"<hex>","serial":"<S>","batch":"<B>","certificate":"<PEM>"}, ...]}
 * or a connector test, {"event":"<id>","action":"test","tenant":"<T>","devices":[]}, or a
 * clone suspicion, the devices of an add and
 *   "action":"suspected_clone", "suspicion":{"rule":"concurrent-origins"|
 *   "superseded-certificate"|"enrollment-rate","at":"<RFC 3339 UTC>","quarantined":<bool>,
 *   "detail":{...}}
 * ("detail" optional, any object of at most GATEWAY_MAX_SUSPICION_DETAIL bytes as compact
 * JSON); "suspicion" is refused with the other actions.
 * Strict: duplicate keys, unknown members, a wrong type or length, a UDID that is not the
 * certificate's, a PEM that is not exactly one certificate and a UDID given twice are all
 * rejected, with a message naming the field (and the device's index). On success *out is a
 * new event (gateway_event_free); on failure *out is NULL and e says why (DEVID_EINVAL, or
 * DEVID_ELIMIT for a body over GATEWAY_MAX_EVENT_BODY).
 */
int gateway_event_parse(
    const uint8_t *p, size_t len, struct gateway_event **out, struct devid_error *e);
/* Frees an event; accepts NULL. */
void gateway_event_free(struct gateway_event *ev);

/* True if s[0..n) is an event id: [A-Za-z0-9._:-]{1,GATEWAY_MAX_EVENT_ID_LEN}. */
bool gateway_event_id_valid(const char *s, size_t n);
/* "add", "remove", "test" or "suspected_clone". */
const char *gateway_action_name(enum gateway_action a);
/* "concurrent-origins", "superseded-certificate" or "enrollment-rate". */
const char *gateway_rule_name(enum gateway_rule r);

/*
 * Checks an X-Devid-Signature header value, "sha256=<64 hex>", against HMAC-SHA256(secret,
 * body[0..len)), comparing the MACs in constant time. Returns 0 when it matches; DEVID_EAUTH
 * when the header is missing (NULL), malformed or wrong, with e saying which of the three
 * (never the expected value). Runs before the body is parsed.
 */
int gateway_signature_verify(const uint8_t *secret, size_t secret_len, const uint8_t *body,
    size_t len, const char *header, struct devid_error *e);

/* --- acl.c: the ACL in SQLite ---------------------------------------------------------- */

struct acl;

enum acl_state { ACL_ABSENT, ACL_ACTIVE, ACL_REMOVED };

/* What applying one event did. */
struct acl_result {
	bool duplicate; /* the event id was applied before: nothing changed */
	size_t changed; /* devices whose row was written */
	size_t skipped; /* remove only: devices that belong to another tenant (left alone) */
};

/*
 * Opens (creating) the SQLite database at path with nconns connections (1 to 64), one per
 * thread that may use the ACL at once, and creates the schema if it is not there. WAL mode.
 */
int acl_open(const char *path, unsigned nconns, struct acl **out, struct devid_error *e);
/* Closes every connection; accepts NULL. Not while another thread uses the ACL. */
void acl_close(struct acl *acl);

/*
 * The state of a UDID (64 lowercase hex) and, when tenant is not NULL, the tenant of its row
 * ("" when ACL_ABSENT). Thread-safe.
 */
int acl_lookup(struct acl *acl, const char *udid, enum acl_state *state,
    char tenant[MAX_NAME_LEN + 1], struct devid_error *e);

/*
 * Applies an add or a remove event once, in one transaction with its record in the events
 * table:
 *   add:    each device becomes active for the event's tenant (inserted, or updated and
 *           re-activated: a transfer or a re-provisioning);
 *   remove: each device of the event's tenant becomes removed; a device not on the ACL is
 *           recorded as removed (the listing shows the removal came); a device that
 *           belongs to another tenant is left alone and counted in skipped.
 * An event id seen before changes nothing and sets r->duplicate. Thread-safe.
 */
int acl_apply(
    struct acl *acl, const struct gateway_event *ev, struct acl_result *r, struct devid_error *e);

/*
 * The whole ACL ordered by UDID: {"devices":[{"udid","serial","batch","tenant","state"}]},
 * state "active" or "removed". *out is a new reference (json_decref). Thread-safe.
 */
int acl_list(struct acl *acl, json_t **out, struct devid_error *e);

/* --- seen.c: the sightings of admitted devices, and the reports that carry them ------- */

/*
 * One sighting: the key (tenant, udid, origin, certificate) and what was seen of it. All
 * text is NUL-terminated.
 */
struct gateway_sighting {
	char tenant[MAX_NAME_LEN + 1]; /* the tenant of the device's ACL row */
	char udid[UDID_HEX_LEN + 1];
	char origin[GATEWAY_MAX_ORIGIN_LEN + 1]; /* the peer's IP address, no port, no brackets */
	char certificate[UDID_HEX_LEN + 1]; /* lowercase hex SHA-256 of the leaf's DER */
	bool ldevid; /* named by an --ldevid-ca's subject (the last time), else by its key */
	int64_t first_ms, last_ms; /* wall clock, milliseconds since the epoch */
	uint64_t count;
};

struct seen;

/* A new, empty set of sightings that holds at most max keys (1 to UINT32_MAX - 1). */
struct seen *seen_new(size_t max);
/* Frees the set and what it holds; accepts NULL. */
void seen_free(struct seen *s);
/*
 * Counts one sighting of k's key (tenant, udid, origin, certificate; the rest of k is not
 * read but ldevid) at now_ms: the first of a key sets first_ms, every one sets last_ms (never
 * backwards) and adds one to count. Returns 0, or DEVID_ELIMIT when the key is new and the
 * set is full: the sighting is dropped and counted for seen_take. Thread-safe and cheap: the
 * hash is computed before the one lock is taken.
 */
int seen_record(struct seen *s, const struct gateway_sighting *k, int64_t now_ms);
/*
 * Takes every pending sighting, leaving the set empty: *out a new array of *n (free(); NULL
 * when *n is 0), and *dropped the new keys refused since the last take. Thread-safe.
 */
void seen_take(struct seen *s, struct gateway_sighting **out, size_t *n, uint64_t *dropped);

/*
 * The IP address of a peer as src/http gives it ("127.0.0.1:51234", "[::1]:51234") into out:
 * no port, no brackets, and an IPv4-mapped IPv6 address as its IPv4 form. False when peer is
 * not of that shape.
 */
bool seen_origin(const char *peer, char out[GATEWAY_MAX_ORIGIN_LEN + 1]);
/* ms since the epoch as RFC 3339 in UTC with milliseconds: "2026-12-05T11:00:00.123Z". */
#define SEEN_TIME_LEN 24
void seen_time(int64_t ms, char out[SEEN_TIME_LEN + 1]);

/* One report, ready to send and to resend byte for byte. */
struct seen_report {
	char id[GATEWAY_MAX_EVENT_ID_LEN + 1];
	char tenant[MAX_NAME_LEN + 1];
	size_t nsightings;
	char *body; /* the JSON body, NUL-terminated; owned */
	size_t len;
};

/*
 * Turns n sightings into reports: one per tenant, at most max_per_report sightings each
 * (more make several), every body
 *   {"report":"<id>","tenant":"<T>","sentAt":"<sent_ms>","sightings":[{"udid","origin",
 *    "first","last","count","certificate","identity":"key"|"ldevid"}, ...]}
 * with ids "<id_prefix>-<seq>", *seq counted up by one per report. Sorts v in place (by
 * tenant, udid, origin, certificate: the order of the reports and of their sightings).
 * *out is a new array of *nout reports (seen_reports_free), NULL when n is 0. id_prefix must
 * leave room for the sequence in an event id (the id is checked).
 */
int seen_reports_encode(struct gateway_sighting *v, size_t n, size_t max_per_report,
    const char *id_prefix, uint64_t *seq, int64_t sent_ms, struct seen_report **out, size_t *nout,
    struct devid_error *e);
/* Frees the bodies of r[0..n) and the array; accepts NULL. */
void seen_reports_free(struct seen_report *r, size_t n);

/* --- report.c: the reporter, which posts the reports to devid ------------------------- */

struct reporter_opts {
	const char *url; /* http:// or https://, the whole URL reports are posted to */
	const char *ca_file; /* PEM trust anchors for an https url; NULL: the system's */
	unsigned
	    interval; /* seconds between flushes, GATEWAY_MIN_ to GATEWAY_MAX_REPORT_INTERVAL */
	const uint8_t *secret; /* the webhook's secret; borrowed, must outlive the reporter */
	size_t secret_len;
};

struct reporter;

/*
 * A reporter of the sightings in seen (borrowed), not started. Its report ids are
 * "gw-<16 random hex digits>-<sequence>". Call from the main thread before other threads start
 * (it initialises libcurl). NULL with e set when an option is not usable.
 */
struct reporter *reporter_new(
    const struct reporter_opts *o, struct seen *seen, struct devid_error *e);
/*
 * Starts the flusher thread, which takes no asynchronous signals: every interval it takes the
 * pending sightings and posts their reports, one at a time, oldest first. 2xx: taken. 5xx, 429
 * or no answer: kept with the ones after it and tried again at the next flush (at most
 * GATEWAY_MAX_UNSENT_REPORTS kept, the oldest dropped past it). Another 4xx: logged with
 * devid's message and dropped. 0, or DEVID_EIO when the thread could not start.
 */
int reporter_start(struct reporter *r);
/* Stops the thread after one last flush, and waits for it; accepts one never started. */
void reporter_stop(struct reporter *r);
/* Frees the reporter and the reports it still holds; accepts NULL. Not while it runs. */
void reporter_free(struct reporter *r);

/* --- gateway.c: the two servers -------------------------------------------------------- */

struct gateway_opts {
	const char *listen; /* device port, "ADDR:PORT"; NULL: "127.0.0.1:9443" */
	const char *admin_listen; /* admin port; NULL: "127.0.0.1:9080" */
	const char *tls_cert; /* the device port's PEM chain, leaf first (required) */
	const char *tls_key; /* its PEM private key (required) */
	const char *const *trust; /* PEM files of trust anchors (vendor roots, CAs) */
	size_t ntrust; /* 0 to GATEWAY_MAX_TRUST_FILES */
	/*
	 * PEM files of operational CAs whose certificates name their device by subject
	 * (CN=<udid>, O=<tenant>); each is a trust anchor too. ntrust + nldevid_ca >= 1.
	 */
	const char *const *ldevid_ca;
	size_t nldevid_ca; /* 0 to GATEWAY_MAX_LDEVID_CA_FILES */
	const uint8_t *secret; /* the webhook's shared secret (copied) */
	size_t secret_len; /* GATEWAY_MIN_SECRET_LEN to GATEWAY_MAX_SECRET_LEN */
	const char *db_path; /* the SQLite file of the ACL (created if absent) */
	unsigned threads; /* device port worker threads; 0: the HTTP default */
	unsigned admin_threads; /* admin port worker threads; 0: 2 */
	/* seen reports of the admitted devices: posted to report_url, none when it is NULL */
	const char *report_url;
	const char *report_ca; /* trust anchors for an https report_url; NULL: the system's */
	unsigned report_interval; /* seconds; 0: GATEWAY_DEFAULT_REPORT_INTERVAL */
};

struct gateway;

/*
 * Loads the trust anchors, opens the ACL, and binds both ports (a port 0 is resolved at
 * once). Returns NULL with e set on any failure; nothing is left open.
 */
struct gateway *gateway_new(const struct gateway_opts *o, struct devid_error *e);
/* "ADDR:PORT" as bound, for each port; borrowed. */
const char *gateway_device_address(const struct gateway *g);
const char *gateway_admin_address(const struct gateway *g);
/*
 * Serves both ports until gateway_stop (the admin port on a thread of its own, which takes
 * no asynchronous signals). Returns 0, or a DEVID_E* code when a server could not run.
 */
int gateway_run(struct gateway *g);
/*
 * Reads the --trust and --ldevid-ca files and the device port's TLS certificate and key again:
 * devices that connect from then on are checked against the new trust, open connections keep
 * theirs; which CAs name devices by subject changes for every request from then on. On
 * failure (e says why) the gateway keeps what it had. While gateway_run runs, from one
 * thread at a time (the signal thread).
 */
int gateway_reload(struct gateway *g, struct devid_error *e);
/* Asks both servers to stop. Async-signal-safe. */
void gateway_stop(struct gateway *g);
/* Frees everything, wiping the secret; accepts NULL. Not while gateway_run runs. */
void gateway_free(struct gateway *g);

#endif
