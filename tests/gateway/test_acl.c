/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway's ACL in SQLite (src/gateway/acl.c): an event applies once, add re-activates,
 * remove leaves a tombstone and touches only its own tenant's devices, the list is ordered
 * by UDID, and everything survives closing and reopening the file.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "test.h"
#include "lib/banned.h"

/* An event over the given UDIDs (one hex digit repeated 64 times each). */
static struct gateway_event *
event(const char *id, enum gateway_action a, const char *tenant, const char *digits)
{
	struct gateway_event *ev = calloc(1, sizeof(*ev));
	size_t n = strlen(digits);

	snprintf(ev->id, sizeof(ev->id), "%s", id);
	snprintf(ev->tenant, sizeof(ev->tenant), "%s", tenant);
	ev->action = a;
	ev->ndevices = n;
	ev->devices = calloc(n, sizeof(*ev->devices));
	for (size_t i = 0; i < n; i++) {
		struct gateway_device *d = &ev->devices[i];

		memset(d->udid, digits[i], UDID_HEX_LEN);
		snprintf(d->serial, sizeof(d->serial), "SN-%c", digits[i]);
		snprintf(d->batch, sizeof(d->batch), "B1");
		d->certificate = strdup("-----BEGIN CERTIFICATE-----\n...\n");
		d->certificate_len = strlen(d->certificate);
	}
	return ev;
}

static void
apply(struct acl *acl, struct gateway_event *ev, bool dup, size_t changed, size_t skipped)
{
	struct acl_result r;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = acl_apply(acl, ev, &r, &e);
	CHECK(rc == 0, "apply %s: %s", ev->id, e.msg);
	CHECK(r.duplicate == dup && r.changed == changed && r.skipped == skipped,
	    "apply %s: duplicate %d changed %zu skipped %zu, expected %d %zu %zu", ev->id,
	    r.duplicate, r.changed, r.skipped, dup, changed, skipped);
	gateway_event_free(ev);
}

static enum acl_state
state(struct acl *acl, char digit)
{
	char udid[UDID_HEX_LEN + 1];
	enum acl_state st = ACL_ABSENT;
	struct devid_error e;

	memset(udid, digit, UDID_HEX_LEN);
	udid[UDID_HEX_LEN] = '\0';
	devid_error_clear(&e);
	CHECK(acl_lookup(acl, udid, &st, NULL, &e) == 0, "lookup: %s", e.msg);
	return st;
}

/* The tenant of a UDID's row, "" when it has none. */
static const char *
tenant(struct acl *acl, char digit)
{
	static char t[MAX_NAME_LEN + 1];
	char udid[UDID_HEX_LEN + 1];
	enum acl_state st;
	struct devid_error e;

	memset(udid, digit, UDID_HEX_LEN);
	udid[UDID_HEX_LEN] = '\0';
	devid_error_clear(&e);
	CHECK(acl_lookup(acl, udid, &st, t, &e) == 0, "lookup: %s", e.msg);
	return t;
}

int
main(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	struct acl *acl = NULL;
	struct devid_error e;
	json_t *j = NULL;
	char *text;

	devid_error_clear(&e);
	test_tmpdir(dir, sizeof(dir), "gateway-acl");
	snprintf(path, sizeof(path), "%s/acl.db", dir);
	CHECK(acl_open(path, 0, &acl, &e) == DEVID_EINVAL && acl == NULL, "0 connections");
	CHECK(acl_open("", 1, &acl, &e) == DEVID_EINVAL, "empty path");
	CHECK(acl_open(path, 3, &acl, &e) == 0, "open: %s", e.msg);
	if (acl == NULL)
		return test_done();

	CHECK(state(acl, 'a') == ACL_ABSENT, "empty ACL");
	CHECK(strcmp(tenant(acl, 'a'), "") == 0, "no tenant for an absent device");
	apply(acl, event("e1", GATEWAY_ADD, "OEM1", "abc"), false, 3, 0);
	CHECK(state(acl, 'a') == ACL_ACTIVE && state(acl, 'c') == ACL_ACTIVE, "added");
	/* the same id again, whatever it says, changes nothing */
	apply(acl, event("e1", GATEWAY_REMOVE, "OEM1", "a"), true, 0, 0);
	CHECK(state(acl, 'a') == ACL_ACTIVE, "a repeated event id is not applied");
	apply(acl, event("e2", GATEWAY_REMOVE, "OEM1", "a"), false, 1, 0);
	CHECK(state(acl, 'a') == ACL_REMOVED, "removed");
	/* another tenant cannot remove OEM1's device; an unknown device becomes a tombstone */
	apply(acl, event("e3", GATEWAY_REMOVE, "OEM2", "bd"), false, 1, 1);
	CHECK(state(acl, 'b') == ACL_ACTIVE, "another tenant's remove is skipped");
	CHECK(state(acl, 'd') == ACL_REMOVED, "remove of an unknown device is a tombstone");
	/* a new add re-activates (and may move the device to another tenant) */
	apply(acl, event("e4", GATEWAY_ADD, "OEM2", "a"), false, 1, 0);
	CHECK(state(acl, 'a') == ACL_ACTIVE, "re-added");
	apply(acl, event("e5", GATEWAY_REMOVE, "OEM1", "a"), false, 0, 1);
	CHECK(state(acl, 'a') == ACL_ACTIVE, "the old tenant's late remove is skipped");
	CHECK(strcmp(tenant(acl, 'a'), "OEM2") == 0, "a moved to OEM2: %s", tenant(acl, 'a'));
	CHECK(strcmp(tenant(acl, 'b'), "OEM1") == 0, "b stays OEM1's: %s", tenant(acl, 'b'));

	CHECK(acl_list(acl, &j, &e) == 0, "list: %s", e.msg);
	text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	CHECK(text != NULL && json_array_size(json_object_get(j, "devices")) == 4, "four rows: %s",
	    text ? text : "(null)");
	CHECK(text != NULL &&
		strstr(text,
		    "\"serial\":\"SN-a\",\"batch\":\"B1\","
		    "\"tenant\":\"OEM2\",\"state\":\"active\"}") != NULL,
	    "row a: %s", text ? text : "(null)");
	CHECK(text != NULL && strstr(text, "\"tenant\":\"OEM2\",\"state\":\"removed\"}]") != NULL,
	    "row d last, removed: %s", text ? text : "(null)");
	free(text);
	json_decref(j);
	acl_close(acl);

	/* reopened: the ACL and the events are still there */
	acl = NULL;
	CHECK(acl_open(path, 1, &acl, &e) == 0, "reopen: %s", e.msg);
	if (acl != NULL) {
		CHECK(state(acl, 'a') == ACL_ACTIVE && state(acl, 'b') == ACL_ACTIVE &&
			state(acl, 'c') == ACL_ACTIVE && state(acl, 'd') == ACL_REMOVED,
		    "states after reopening");
		apply(acl, event("e2", GATEWAY_ADD, "OEM1", "d"), true, 0, 0);
		CHECK(state(acl, 'd') == ACL_REMOVED, "event ids survive reopening");
		acl_close(acl);
	}
	test_rmdir(dir);
	return test_done();
}
