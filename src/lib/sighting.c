/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/claim.h"
#include "lib/json.h"
#include "lib/sighting.h"
#include "lib/banned.h"

static bool
is_hex64(const char *s, size_t n)
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool
is_report_id(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= '0' && s[i] <= '9') || strchr("._:-", s[i]) != NULL))
			return false;
	return n > 0;
}

static int
digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
rfc3339_ms_parse(const char *s, int64_t *ms)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, frac = 0, fdigits = 0;
	size_t n = strlen(s), i = 19;
	time_t t;

	if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return DEVID_EINVAL;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 ||
	    h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59)
		return DEVID_EINVAL;
	if (s[i] == '.') {
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, fdigits++)
			if (fdigits < 3)
				frac = frac * 10 + (s[i] - '0');
		if (fdigits < 1 || fdigits > 9)
			return DEVID_EINVAL;
		for (int k = fdigits; k < 3; k++)
			frac *= 10;
	}
	if (i + 1 != n || s[i] != 'Z')
		return DEVID_EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* 29 February of a year that has none: timegm moves it to March */
	if (t == (time_t)-1 || gmtime_r(&t, &tm) == NULL || tm.tm_mday != d)
		return DEVID_EINVAL;
	*ms = (int64_t)t * 1000 + frac;
	return 0;
}

static int
get_time(const json_t *o, const char *key, int64_t *ms, const char *what, struct devid_error *e)
{
	const char *s;
	int rc;

	if ((rc = json_get_str(o, key, 20, 30, true, &s, NULL, what, e)) != 0)
		return rc;
	if (rfc3339_ms_parse(s, ms) != 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: \"%s\" is not an RFC 3339 time in UTC (2026-12-05T11:00:00.123Z)", what,
		    key);
	return 0;
}

static int
sighting_parse(const json_t *o, struct sighting *s, const char *what, struct devid_error *e)
{
	static const char *const keys[] = {
	    "udid", "origin", "first", "last", "count", "certificate", "identity", NULL};
	const char *v;
	size_t n;
	json_int_t count;
	unsigned char addr[16];
	int rc;

	if (!json_is_object(o))
		return devid_error_set(e, DEVID_EINVAL, "%s is not an object", what);
	if ((rc = json_only_keys(o, keys, what, e)) != 0)
		return rc;
	if ((rc = json_get_str(o, "udid", 64, 64, true, &v, &n, what, e)) != 0)
		return rc;
	if (!is_hex64(v, n))
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: \"udid\" is not 64 lowercase hex digits", what);
	memcpy(s->udid, v, n + 1);
	if ((rc = json_get_str(o, "origin", 2, SIGHTING_MAX_ORIGIN - 1, true, &v, &n, what, e)) !=
	    0)
		return rc;
	if (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1)
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: \"origin\" is not an IPv4 or IPv6 address without a port", what);
	memcpy(s->origin, v, n + 1);
	if ((rc = get_time(o, "first", &s->first_ms, what, e)) != 0 ||
	    (rc = get_time(o, "last", &s->last_ms, what, e)) != 0)
		return rc;
	if (s->last_ms < s->first_ms)
		return devid_error_set(e, DEVID_EINVAL, "%s: \"last\" is before \"first\"", what);
	if ((rc = json_get_int(o, "count", 1, INT32_MAX, &count, what, e)) != 0)
		return rc;
	s->count = (int64_t)count;
	if ((rc = json_get_str(o, "certificate", 64, 64, true, &v, &n, what, e)) != 0)
		return rc;
	if (!is_hex64(v, n))
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: \"certificate\" is not a SHA-256 in 64 lowercase hex digits", what);
	memcpy(s->certificate, v, n + 1);
	if ((rc = json_get_str(o, "identity", 3, 6, true, &v, NULL, what, e)) != 0)
		return rc;
	if (strcmp(v, "key") != 0 && strcmp(v, "ldevid") != 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: \"identity\" is neither \"key\" nor \"ldevid\"", what);
	s->ldevid = strcmp(v, "ldevid") == 0;
	return 0;
}

int
sighting_report_parse(
    const uint8_t *p, size_t len, struct sighting_report *r, struct devid_error *e)
{
	static const char *const keys[] = {"report", "tenant", "sentAt", "sightings", NULL};
	const char *what = "seen report", *v;
	char item[64];
	json_t *j, *arr;
	size_t n;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((j = json_parse(p, len, what, e)) == NULL)
		return DEVID_EINVAL;
	if (!json_is_object(j)) {
		rc = devid_error_set(e, DEVID_EINVAL, "%s is not a JSON object", what);
		goto out;
	}
	if ((rc = json_only_keys(j, keys, what, e)) != 0 ||
	    (rc = json_get_str(j, "report", 1, SIGHTING_MAX_REPORT_ID, true, &v, &n, what, e)) != 0)
		goto out;
	if (!is_report_id(v, n)) {
		rc =
		    devid_error_set(e, DEVID_EINVAL, "%s: \"report\" is not [A-Za-z0-9._:-]", what);
		goto out;
	}
	memcpy(r->id, v, n + 1);
	if ((rc = json_get_str(j, "tenant", 1, MAX_NAME_LEN, true, &v, &n, what, e)) != 0)
		goto out;
	if (!claim_name_valid(v, n)) {
		rc = devid_error_set(
		    e, DEVID_EINVAL, "%s: \"tenant\" is not a tenant name [A-Z0-9.-]", what);
		goto out;
	}
	memcpy(r->tenant, v, n + 1);
	if ((rc = get_time(j, "sentAt", &r->sent_ms, what, e)) != 0 ||
	    (rc = json_get_arr(j, "sightings", SIGHTING_MAX_PER_REPORT, &arr, what, e)) != 0)
		goto out;
	r->n = json_array_size(arr); /* json_get_arr: at least one */
	if ((r->s = calloc(r->n, sizeof(*r->s))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < r->n; i++) {
		snprintf(item, sizeof(item), "%s: sighting %zu", what, i + 1);
		if ((rc = sighting_parse(json_array_get(arr, i), &r->s[i], item, e)) != 0)
			goto out;
	}
out:
	json_decref(j);
	return rc;
}

void
sighting_report_release(struct sighting_report *r)
{
	free(r->s);
	memset(r, 0, sizeof(*r));
}

int
sighting_network(const char *addr, int v4bits, int v6bits, char out[SIGHTING_MAX_ORIGIN + 4],
    struct devid_error *e)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	unsigned char a[16];
	int af = AF_INET, bits = v4bits, len = 4;
	char text[SIGHTING_MAX_ORIGIN];

	if (inet_pton(AF_INET, addr, a) != 1) {
		if (inet_pton(AF_INET6, addr, a) != 1)
			return devid_error_set(e, DEVID_EINVAL, "\"%s\" is no IP address", addr);
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memmove(a, a + 12, 4);
		} else {
			af = AF_INET6;
			bits = v6bits;
			len = 16;
		}
	}
	if (bits < 0 || bits > len * 8)
		return devid_error_set(e, DEVID_EINVAL, "a prefix of %d bits", bits);
	for (int i = 0; i < len; i++) {
		int keep = bits - i * 8;

		a[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
	}
	if (inet_ntop(af, a, text, sizeof(text)) == NULL)
		return devid_error_set(e, DEVID_EINTERNAL, "inet_ntop");
	snprintf(out, SIGHTING_MAX_ORIGIN + 4, "%s/%d", text, bits);
	return 0;
}

static int
point_cmp(const void *a, const void *b)
{
	const struct sighting_point *x = a, *y = b;

	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	return (x->network > y->network) - (x->network < y->network);
}

int
sighting_returns(struct sighting_point *pts, size_t n)
{
	bool *seen;
	int max = 0, returns = 0, last = -1;

	for (size_t i = 0; i < n; i++)
		if (pts[i].network > max)
			max = pts[i].network;
	if (n == 0 || (seen = calloc((size_t)max + 1, sizeof(*seen))) == NULL)
		return 0;
	qsort(pts, n, sizeof(*pts), point_cmp);
	for (size_t i = 0; i < n; i++) {
		if (pts[i].network == last)
			continue;
		if (seen[pts[i].network])
			returns++;
		seen[pts[i].network] = true;
		last = pts[i].network;
	}
	free(seen);
	return returns;
}
