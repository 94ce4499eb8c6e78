/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manifest reader when memory runs out: every jansson allocation of a whole parse (the
 * fast reader, jansson behind it, the compact copies) is made to fail in turn, one run per
 * allocation. Each run ends cleanly: the parse succeeds with the entries it would have read
 * anyway, or reports an error with a message; under ASan nothing is freed twice or leaked.
 * The fast reader once released a value twice when adding it to its object or array failed
 * (jansson's _new functions release the value on failure themselves).
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/manifest.h"
#include "lib/x509.h"
#include "factory/factory.h"
#include "test.h"
#include "lib/banned.h"

#define NCHIPS 3

/* allocations so far, and which one fails (0: none) */
static atomic_long allocs;
static long fail_at;

static void *
failing_malloc(size_t n)
{
	long i = atomic_fetch_add(&allocs, 1) + 1;

	return i == fail_at ? NULL : malloc(n);
}

static void
plain_free(void *p)
{
	free(p);
}

struct baseline {
	char udid[NCHIPS][UDID_HEX_LEN + 1];
};

/* One parse with the fail_at-th allocation failing; false when it was not clean. */
static bool
parse_once(const uint8_t *text, size_t n, const struct baseline *b, long *count)
{
	struct manifest_report r;
	struct manifest *m = NULL;
	struct devid_error e;
	bool ok = true;
	int rc;

	memset(&r, 0, sizeof(r));
	devid_error_clear(&e);
	atomic_store(&allocs, 0);
	rc = manifest_parse_mt(text, n, 1, &m, &r, &e);
	*count = atomic_load(&allocs);
	if (rc != 0) {
		ok = m == NULL && e.msg[0] != '\0';
		CHECK(ok, "fail at %ld: rc %d with %s and message \"%s\"", fail_at, rc,
		    m ? "a manifest" : "no manifest", e.msg);
		goto out;
	}
	CHECK(m != NULL && m->n == NCHIPS, "fail at %ld: %zu entries", fail_at, m ? m->n : 0);
	if (m == NULL || m->n != NCHIPS) {
		ok = false;
		goto out;
	}
	for (size_t i = 0; i < r.nrejects; i++)
		if (r.rejects[i].message[0] == '\0' || m->entries[r.rejects[i].index] != NULL) {
			CHECK(false, "fail at %ld: entry %zu rejected without a reason", fail_at,
			    r.rejects[i].index);
			ok = false;
		}
	for (size_t i = 0; i < m->n; i++)
		if (m->entries[i] != NULL && strcmp(m->entries[i]->udid, b->udid[i]) != 0) {
			CHECK(false, "fail at %ld: entry %zu read as another chip", fail_at, i);
			ok = false;
		}
	CHECK(r.rejected == r.nrejects, "fail at %ld: %zu rejected, %zu reported", fail_at,
	    r.rejected, r.nrejects);
out:
	manifest_free(m);
	manifest_report_release(&r);
	return ok;
}

/* The reader of stored entries, the same way. */
static void
entry_bytes(const char *json, const char *udid)
{
	struct manifest_entry *m = NULL;
	struct devid_error e;
	long total, clean = 0;
	int rc;

	fail_at = 0;
	atomic_store(&allocs, 0);
	rc = manifest_entry_parse_bytes((const uint8_t *)json, strlen(json), &m, &e);
	total = atomic_load(&allocs);
	CHECK(rc == 0 && strcmp(m->udid, udid) == 0, "a stored entry reads back: %s", e.msg);
	manifest_entry_free(m);
	for (fail_at = 1; fail_at <= total; fail_at++) {
		m = NULL;
		devid_error_clear(&e);
		rc = manifest_entry_parse_bytes((const uint8_t *)json, strlen(json), &m, &e);
		if ((rc == 0 && m != NULL && strcmp(m->udid, udid) == 0) ||
		    (rc != 0 && m == NULL && e.msg[0] != '\0'))
			clean++;
		manifest_entry_free(m);
	}
	CHECK(clean == total, "stored entry: %ld of %ld failing allocations end cleanly", clean,
	    total);
	printf("ok stored entry: %ld allocations, each made to fail\n", total);
}

int
main(void)
{
	char tmp[PATH_MAX], vdir[PATH_MAX + 8], reel[PATH_MAX + 8], mpath[PATH_MAX + 32];
	struct mint_opts o = {.batch = "B1", .count = NCHIPS, .threads = 1};
	struct mint_result res;
	struct manifest_report r;
	struct manifest *m = NULL;
	struct devid_error e;
	struct baseline b;
	uint8_t *text;
	size_t n;
	long total, count, clean = 0;

	devid_error_clear(&e);
	test_tmpdir(tmp, sizeof(tmp), "manifest");
	snprintf(vdir, sizeof(vdir), "%s/v", tmp);
	snprintf(reel, sizeof(reel), "%s/r", tmp);
	snprintf(mpath, sizeof(mpath), "%s/manifest.json", reel);
	o.dir = vdir;
	o.out = reel;
	if (vendor_init(vdir, "ACME", &e) != 0 || vendor_mint(&o, &res, &e) != 0 ||
	    file_read_all(mpath, 1 << 24, &text, &n, &e) != 0) {
		printf("set-up: %s\n", e.msg);
		return 1;
	}
	/* from here every jansson allocation is counted, and one may fail */
	json_set_alloc_funcs(failing_malloc, plain_free);

	memset(&r, 0, sizeof(r));
	fail_at = 0;
	atomic_store(&allocs, 0);
	CHECK(manifest_parse_mt(text, n, 1, &m, &r, &e) == 0 && m != NULL && r.rejected == 0,
	    "the reel parses: %s", e.msg);
	total = atomic_load(&allocs);
	if (m == NULL)
		return test_done();
	for (size_t i = 0; i < NCHIPS; i++)
		memcpy(b.udid[i], m->entries[i]->udid, sizeof(b.udid[i]));
	CHECK(total > 100, "a parse makes jansson allocations (%ld)", total);

	/* each allocation of the parse fails once; past the end, the parse is whole again */
	for (fail_at = 1; fail_at <= total + 1; fail_at++)
		clean += parse_once(text, n, &b, &count);
	CHECK(clean == total + 1, "%ld of %ld runs end cleanly", clean, total + 1);
	printf("ok manifest: %ld allocations, each made to fail\n", total);

	entry_bytes(m->entries[1]->json, b.udid[1]);
	manifest_free(m);
	manifest_report_release(&r);
	json_set_alloc_funcs(malloc, free);
	free(text);
	test_rmdir(tmp);
	return test_done();
}
