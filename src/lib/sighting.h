/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sighting.h - where a device identity was seen: the signed "seen" report a product cloud
 * posts (docs/clone-detection.md), the origin an address counts as, and the one rule that is
 * a pure function of the sightings (concurrent origins).
 */
#ifndef DEVID_SIGHTING_H
#define DEVID_SIGHTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"
#include "lib/limits.h"
#include "lib/x509.h"

/* sightings in one report: the gateway sends at most this many, more in several reports */
#define SIGHTING_MAX_PER_REPORT 1000
/* a report id: [A-Za-z0-9._:-]{1,128} */
#define SIGHTING_MAX_REPORT_ID 128
/* an address as text: the longest IPv6 form (45) and its NUL */
#define SIGHTING_MAX_ORIGIN 46
/* how far a report's sentAt may be from the server's clock, in milliseconds */
#define SIGHTING_MAX_SKEW_MS (300 * 1000)

struct sighting {
	char udid[UDID_HEX_LEN + 1];
	char origin[SIGHTING_MAX_ORIGIN]; /* an IPv4 or IPv6 address, as inet_ntop writes it */
	int64_t first_ms, last_ms; /* Unix milliseconds, first <= last */
	int64_t count; /* admitted requests between first and last, at least 1 */
	char certificate[65]; /* lowercase hex SHA-256 of the leaf certificate's DER */
	bool ldevid; /* named by an LDevID's subject, not by its key */
};

struct sighting_report {
	char id[SIGHTING_MAX_REPORT_ID + 1];
	char tenant[MAX_NAME_LEN + 1];
	int64_t sent_ms;
	size_t n; /* 1 to SIGHTING_MAX_PER_REPORT */
	struct sighting *s; /* n of them */
};

/*
 * Parses exactly p[0..len) as one report:
 *   {"report":"<id>","tenant":"<T>","sentAt":"<RFC 3339>","sightings":[{"udid","origin",
 *    "first","last","count","certificate","identity":"key"|"ldevid"}, ...]}
 * Strict: unknown members, a duplicate key, a wrong type or form, first after last, and a
 * time that is not UTC RFC 3339 are refused with DEVID_EINVAL naming the member. Release r
 * with sighting_report_release, also after a failure.
 */
int sighting_report_parse(
    const uint8_t *p, size_t len, struct sighting_report *r, struct devid_error *e);
void sighting_report_release(struct sighting_report *r);

/* "2026-12-05T11:00:00Z" or with a fraction of 1 to 9 digits: Unix milliseconds. */
int rfc3339_ms_parse(const char *s, int64_t *ms);

/*
 * The network an address belongs to, as the rules compare origins: the address with all but
 * its first v4bits (IPv4, 0 to 32) or v6bits (IPv6, 0 to 128) bits cleared, then "/bits".
 * An IPv4-mapped IPv6 address counts as IPv4. DEVID_EINVAL when addr is no address.
 */
int sighting_network(const char *addr, int v4bits, int v6bits, char out[SIGHTING_MAX_ORIGIN + 4],
    struct devid_error *e);

/* One moment a device was active, from one network (an index the caller gives networks). */
struct sighting_point {
	int64_t at_ms;
	int network;
};

/*
 * The concurrent-origins rule: sorts pts by time and counts the returns, the points whose
 * network was already active in the window before another network was. A device that moves
 * from one network to the next never returns; two devices with one identity, active at
 * once in two places, return again and again.
 */
int sighting_returns(struct sighting_point *pts, size_t n);

#endif
