/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sighting.c - the seen report's parser, the times it reads, the networks origins are
 * compared by, and the concurrent-origins rule (src/lib/sighting.c).
 */
#include "test.h"

#include "lib/sighting.h"
#include "lib/banned.h"

#define U "5e49e2c0d6f4a8b1c3e5f7a9b2d4c6e8f0a1b3c5d7e9f2a4b6c8d0e1f3a5b7c9"
#define C "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define SIGHTING(origin, first, last)                                                              \
	"{\"udid\":\"" U "\",\"origin\":\"" origin "\",\"first\":\"" first "\",\"last\":\"" last   \
	"\",\"count\":3,\"certificate\":\"" C "\",\"identity\":\"key\"}"
#define REPORT(sightings)                                                                          \
	"{\"report\":\"gw-1:2\",\"tenant\":\"OEM1\",\"sentAt\":\"2026-12-05T11:00:00.500Z\","      \
	"\"sightings\":[" sightings "]}"

static int
parse(const char *body, struct sighting_report *r, struct devid_error *e)
{
	devid_error_clear(e);
	return sighting_report_parse((const uint8_t *)body, strlen(body), r, e);
}

static void
refused(const char *body, const char *needle, const char *what)
{
	struct sighting_report r;
	struct devid_error e;
	int rc = parse(body, &r, &e);

	CHECK(rc == DEVID_EINVAL && strstr(e.msg, needle) != NULL, "%s: rc %d, \"%s\"", what, rc,
	    e.msg);
	sighting_report_release(&r);
}

static void
test_report(void)
{
	struct sighting_report r;
	struct devid_error e;
	int rc;

	rc = parse(REPORT(SIGHTING("127.0.0.2", "2026-12-05T10:59:58.001Z",
		       "2026-12-05T10:59:59.870Z") "," SIGHTING("2001:db8::7",
		       "2026-12-05T10:59:58Z", "2026-12-05T10:59:58Z")),
	    &r, &e);
	CHECK(rc == 0, "a good report: %s", e.msg);
	CHECK(rc != 0 ||
		(r.n == 2 && strcmp(r.id, "gw-1:2") == 0 && strcmp(r.tenant, "OEM1") == 0 &&
		    r.sent_ms == 1796468400500LL),
	    "the report's members");
	CHECK(rc != 0 ||
		(strcmp(r.s[0].origin, "127.0.0.2") == 0 && r.s[0].first_ms == 1796468398001LL &&
		    r.s[0].last_ms == 1796468399870LL && r.s[0].count == 3 && !r.s[0].ldevid &&
		    strcmp(r.s[0].certificate, C) == 0),
	    "the first sighting");
	CHECK(rc != 0 || strcmp(r.s[1].origin, "2001:db8::7") == 0, "an IPv6 origin");
	sighting_report_release(&r);

	refused("[]", "not a JSON object", "an array");
	refused("{\"report\":\"r\"", "not valid JSON", "cut short");
	refused(REPORT(""), "\"sightings\" has 0 elements", "no sighting");
	refused("{\"report\":\"r 1\",\"tenant\":\"OEM1\",\"sentAt\":\"2026-12-05T11:00:00Z\","
		"\"sightings\":[" SIGHTING(
		    "127.0.0.2", "2026-12-05T10:59:58Z", "2026-12-05T10:59:59Z") "]}",
	    "\"report\" is not", "a space in the id");
	refused("{\"report\":\"r\",\"tenant\":\"oem1\",\"sentAt\":\"2026-12-05T11:00:00Z\","
		"\"sightings\":[" SIGHTING(
		    "127.0.0.2", "2026-12-05T10:59:58Z", "2026-12-05T10:59:59Z") "]}",
	    "\"tenant\" is not a tenant name", "a lowercase tenant");
	refused(REPORT(SIGHTING("127.0.0.2", "2026-12-05T10:59:59Z", "2026-12-05T10:59:58Z")),
	    "\"last\" is before \"first\"", "last before first");
	refused(REPORT(SIGHTING("127.0.0.2:80", "2026-12-05T10:59:58Z", "2026-12-05T10:59:59Z")),
	    "\"origin\" is not an IPv4 or IPv6", "a port");
	refused(REPORT(SIGHTING("[::1]", "2026-12-05T10:59:58Z", "2026-12-05T10:59:59Z")),
	    "\"origin\" is not an IPv4 or IPv6", "brackets");
	refused(REPORT(SIGHTING("127.0.0.2", "2026-12-05T10:59:58+01:00", "2026-12-05T10:59:59Z")),
	    "\"first\" is not an RFC 3339 time in UTC", "an offset");
	refused(
	    REPORT("{\"udid\":\"" U "\",\"origin\":\"127.0.0.2\",\"first\":\"2026-12-05T10:59:58Z"
		   "\",\"last\":\"2026-12-05T10:59:58Z\",\"count\":0,\"certificate\":\"" C
		   "\",\"identity\":\"key\"}"),
	    "\"count\"", "a count of 0");
	refused(
	    REPORT("{\"udid\":\"" U "\",\"origin\":\"127.0.0.2\",\"first\":\"2026-12-05T10:59:58Z"
		   "\",\"last\":\"2026-12-05T10:59:58Z\",\"count\":1,\"certificate\":\"" C
		   "\",\"identity\":\"name\"}"),
	    "\"identity\" is neither", "an unknown identity");
	refused(
	    REPORT("{\"udid\":\"" U "\",\"origin\":\"127.0.0.2\",\"first\":\"2026-12-05T10:59:58Z"
		   "\",\"last\":\"2026-12-05T10:59:58Z\",\"count\":1,\"certificate\":\"" C
		   "\",\"identity\":\"key\",\"port\":1}"),
	    "port", "an unknown member");
	refused(
	    REPORT("{\"udid\":\"" C "X\",\"origin\":\"127.0.0.2\"}"), "\"udid\"", "a long udid");
	refused("{\"report\":\"r\",\"report\":\"s\"}", "duplicate", "a duplicate key");
}

static void
test_times(void)
{
	int64_t ms = -1;

	CHECK(rfc3339_ms_parse("1970-01-01T00:00:00Z", &ms) == 0 && ms == 0, "the epoch");
	CHECK(rfc3339_ms_parse("2024-02-29T12:00:00.5Z", &ms) == 0 && ms == 1709208000500LL,
	    "a leap day with one fraction digit: %lld", (long long)ms);
	CHECK(rfc3339_ms_parse("2026-12-05T11:00:00.123456789Z", &ms) == 0 && ms == 1796468400123LL,
	    "nine fraction digits are cut to milliseconds");
	CHECK(rfc3339_ms_parse("2025-02-29T12:00:00Z", &ms) != 0, "29 February of 2025");
	CHECK(rfc3339_ms_parse("2026-12-05T11:00:00.Z", &ms) != 0, "a dot without digits");
	CHECK(rfc3339_ms_parse("2026-12-05T11:00:00.1234567891Z", &ms) != 0, "ten digits");
	CHECK(rfc3339_ms_parse("2026-12-05 11:00:00Z", &ms) != 0, "a space for T");
	CHECK(rfc3339_ms_parse("2026-12-05T24:00:00Z", &ms) != 0, "hour 24");
	CHECK(rfc3339_ms_parse("2026-12-05T11:00:00z", &ms) != 0, "a lowercase z");
	CHECK(rfc3339_ms_parse("2026-12-05T11:00:00Zx", &ms) != 0, "after the Z");
}

static void
network(const char *addr, int v4, int v6, const char *want)
{
	char out[SIGHTING_MAX_ORIGIN + 4] = "";
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = sighting_network(addr, v4, v6, out, &e);
	CHECK(want != NULL ? rc == 0 && strcmp(out, want) == 0 : rc != 0, "%s /%d /%d: %s (%s)",
	    addr, v4, v6, out, e.msg);
}

static void
test_networks(void)
{
	network("198.51.100.7", 24, 48, "198.51.100.0/24");
	network("198.51.100.7", 32, 48, "198.51.100.7/32");
	network("198.51.100.7", 20, 48, "198.51.96.0/20");
	network("198.51.100.7", 0, 48, "0.0.0.0/0");
	network("2001:db8:aa:bb::7", 24, 48, "2001:db8:aa::/48");
	network("2001:db8:aa:bb::7", 24, 128, "2001:db8:aa:bb::7/128");
	network("::ffff:198.51.100.7", 24, 48, "198.51.100.0/24");
	network("198.51.100.7", 33, 48, NULL);
	network("not-an-address", 24, 48, NULL);
}

static int
returns(const int *networks, const int64_t *times, size_t n)
{
	struct sighting_point p[16];

	for (size_t i = 0; i < n; i++)
		p[i] = (struct sighting_point){times[i], networks[i]};
	return sighting_returns(p, n);
}

static void
test_returns(void)
{
	/* two devices at once: A and B take turns */
	static const int clone[] = {0, 1, 0, 1, 0, 1};
	static const int64_t clone_t[] = {10, 20, 30, 40, 50, 60};
	/* one that moves: A, B, C, never back, given out of order */
	static const int mover[] = {2, 0, 1, 0, 2, 1};
	static const int64_t mover_t[] = {50, 10, 30, 12, 60, 31};
	/* a handover and back: one return */
	static const int back[] = {0, 0, 1, 1, 0};
	static const int64_t back_t[] = {1, 2, 3, 4, 5};

	CHECK(returns(clone, clone_t, 6) == 4, "a clone returns 4 times");
	CHECK(returns(mover, mover_t, 6) == 0, "a device that moves never returns");
	CHECK(returns(back, back_t, 5) == 1, "a handover and back returns once");
	CHECK(returns(NULL, NULL, 0) == 0, "no points");
}

int
main(void)
{
	test_report();
	test_times();
	test_networks();
	test_returns();
	return test_done();
}
