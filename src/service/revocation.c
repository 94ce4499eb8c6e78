/* SPDX-License-Identifier: Apache-2.0 */
/*
 * revocation.c - what a revocation may say (RFC 5280 5.3.1 reason codes), where a
 * certificate says its CRL is (the public base URL), and the database-held rate limits
 * that every server of one database shares.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service/internal.h"
#include "lib/banned.h"

static const struct {
	const char *name;
	int code;
	const char *refused; /* why devid does not take it; NULL: allowed */
} reasons[] = {
    {"unspecified", 0, NULL},
    {"keyCompromise", 1, NULL},
    {"cACompromise", 2, "it names the CA's key, not a device's"},
    {"affiliationChanged", 3, NULL},
    {"superseded", 4, NULL},
    {"cessationOfOperation", 5, NULL},
    {"certificateHold", 6, "a revocation in devid is final; a hold would be undone"},
    {"removeFromCRL", 8, "it is only for delta CRLs, which devid does not issue"},
    {"privilegeWithdrawn", 9, NULL},
    {"aACompromise", 10, "it names an attribute authority, not a device"},
};

int
revoke_reason_parse(const char *name, int *code, struct devid_error *e)
{
	*code = CRL_REASON_UNSPECIFIED;
	if (name == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (strcmp(reasons[i].name, name) != 0)
			continue;
		if (reasons[i].refused != NULL)
			return devid_error_set(e, DEVID_EINVAL,
			    "reason %s (RFC 5280 5.3.1) is not accepted: %s", reasons[i].name,
			    reasons[i].refused);
		*code = reasons[i].code;
		return 0;
	}
	return devid_error_set(e, DEVID_EINVAL,
	    "reason: one of unspecified, keyCompromise, affiliationChanged, superseded, "
	    "cessationOfOperation, privilegeWithdrawn (RFC 5280 5.3.1)");
}

const char *
revoke_reason_name(int code)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return reasons[i].name;
	return "unspecified";
}

int
public_url_check(const char *url, struct devid_error *e)
{
	size_t len = strlen(url), skip;
	const char *host;

	if (len > PUBLIC_URL_MAX)
		return devid_error_set(
		    e, DEVID_EINVAL, "public URL: %zu bytes, limit %d", len, PUBLIC_URL_MAX);
	if (strncmp(url, "https://", 8) == 0)
		skip = 8;
	else if (strncmp(url, "http://", 7) == 0)
		skip = 7;
	else
		return devid_error_set(
		    e, DEVID_EINVAL, "public URL: it begins with https:// or http://");
	for (const char *p = url; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>')
			return devid_error_set(e, DEVID_EINVAL,
			    "public URL: character %zu is not allowed (printable ASCII, no spaces, "
			    "quotes, backslashes or angle brackets)",
			    (size_t)(p - url));
		if (c == '?' || c == '#')
			return devid_error_set(
			    e, DEVID_EINVAL, "public URL: a base URL has no query or fragment");
	}
	host = url + skip;
	if (*host == '\0' || *host == '/' || *host == ':' || *host == '@')
		return devid_error_set(e, DEVID_EINVAL, "public URL: no host");
	if (memchr(host, '@', strcspn(host, "/")) != NULL)
		return devid_error_set(
		    e, DEVID_EINVAL, "public URL: no user information (RFC 3986 3.2.1)");
	if (len >= 2 && url[len - 1] == '/' && url[len - 2] == '/')
		return devid_error_set(e, DEVID_EINVAL, "public URL: ends in \"//\"");
	return 0;
}

/* --- rate limits shared through the database ------------------------------------------- */

int64_t
service_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
service_rate_take(struct db *db, const struct rate_limit *rl, const char *const *keys, size_t n,
    int64_t now_ms, int64_t *wait_ms, size_t *refused, struct devid_error *e)
{
	int64_t w;
	int rc;

	*wait_ms = 0;
	*refused = n;
	if ((rc = db_begin(db, e)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = store_rate_take(
			 db, keys[i], now_ms, rl->interval_ms, rl->burst, &w, e)) != 0)
			goto rollback;
		if (w > 0) {
			/* the first bucket that refuses: roll back what the others took */
			*wait_ms = w;
			*refused = i;
			goto rollback;
		}
	}
	/* buckets full again carry no state: the table holds only the recently active */
	if ((rc = store_rate_prune(db, now_ms, e)) != 0)
		goto rollback;
	return db_commit(db, e);
rollback:
	db_rollback(db);
	return rc;
}
