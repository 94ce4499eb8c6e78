/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The XML form of a manifest (manifest_xml.h) over a real reel: written from the JSON form
 * and read back it is the minted manifest.json byte for byte, whether fed at once or a byte at
 * a time; a reel whose manifest is XML verifies exactly as its JSON form (reel_verify), and a
 * tampered signature is refused naming the entry in both; hostile and malformed documents are
 * refused with the line and what is wrong; entries that XML cannot carry unchanged are
 * refused when written.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "lib/dynbuf.h"
#include "lib/manifest_xml.h"
#include "lib/x509.h"
#include "factory/factory.h"
#include "test.h"
#include "lib/banned.h"

#define NCHIPS 4

/* The XML form of the JSON manifest text (the set-up fails the test when it cannot). */
static bool
to_xml(const uint8_t *json, size_t n, struct dynbuf *xml)
{
	json_t *arr = json_loadb((const char *)json, n, JSON_REJECT_DUPLICATES, NULL);
	struct devid_error e;
	bool ok = json_is_array(arr);

	devid_error_clear(&e);
	dynbuf_reset(xml);
	ok = ok && dynbuf_addstr(xml, MANIFEST_XML_HEAD) == 0;
	for (size_t i = 0; ok && i < json_array_size(arr); i++)
		ok = manifest_xml_entry(json_array_get(arr, i), i, xml, &e) == 0;
	ok = ok && dynbuf_addstr(xml, MANIFEST_XML_TAIL) == 0;
	CHECK(ok, "the reel's manifest has an XML form: %s", e.msg);
	json_decref(arr);
	return ok;
}

/* Reads doc as XML; expects a refusal whose message holds want. */
static void
refused(const char *what, const char *doc, const char *want)
{
	struct dynbuf out;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	dynbuf_init(&out, 1 << 20);
	rc = manifest_xml_to_json((const uint8_t *)doc, strlen(doc), &out, &e);
	CHECK(rc != 0, "%s: accepted", what);
	CHECK(strstr(e.msg, want) != NULL && strstr(e.msg, "XML manifest: line ") != NULL,
	    "%s: message \"%s\" lacks the line or \"%s\"", what, e.msg, want);
	dynbuf_release(&out);
}

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL && fwrite(p, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

/* reel_verify of dir: its verdict and report as one line. */
static void
verify_line(const char *dir, const char *vdir, char *line, size_t len)
{
	char root[PATH_MAX + 16], signer[PATH_MAX + 16];
	struct reel_report r;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	snprintf(root, sizeof(root), "%s/root.pem", vdir);
	snprintf(signer, sizeof(signer), "%s/signer.pem", vdir);
	rc = reel_verify(dir, root, signer, 1, NULL, &r, &e);
	snprintf(line, len, "rc=%d checked=%d total=%zu accepted=%zu rejected=%zu first=%s uid=%s",
	    rc, r.checked, r.manifest.total, r.manifest.accepted, r.manifest.rejected,
	    r.manifest.nrejects > 0 ? r.manifest.rejects[0].message : e.msg,
	    r.manifest.nrejects > 0 ? r.manifest.rejects[0].unique_id : "");
	reel_report_release(&r);
}

/* A copy of the reel src as dst with the manifest text (name: manifest.json or .xml). */
static void
reel_with(const char *src, const char *dst, const char *name, const void *p, size_t n)
{
	char path[PATH_MAX + 32];
	uint8_t *buf;
	size_t len;
	struct devid_error e;
	static const char *const files[] = {"batch.json", "claim.txt"};

	devid_error_clear(&e);
	CHECK(mkdir(dst, 0700) == 0, "mkdir %s", dst);
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", src, files[i]);
		if (file_read_all(path, 1 << 20, &buf, &len, &e) != 0) {
			CHECK(0, "read %s: %s", path, e.msg);
			return;
		}
		snprintf(path, sizeof(path), "%s/%s", dst, files[i]);
		write_file(path, buf, len);
		free(buf);
	}
	snprintf(path, sizeof(path), "%s/%s", dst, name);
	write_file(path, p, n);
}

static void
hostile(void)
{
	static const char ns[] = "<manifest xmlns=\"urn:devid:manifest:1\">";
	char doc[2048];

	snprintf(doc, sizeof(doc),
	    "<?xml version=\"1.0\"?>\n<!DOCTYPE m [<!ENTITY x \"a\">]>\n%s&x;</manifest>", ns);
	refused("internal entity", doc, "line 2: a DOCTYPE");
	snprintf(doc, sizeof(doc),
	    "<!DOCTYPE m [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>%s&x;</manifest>", ns);
	refused("external entity", doc, "DOCTYPE");
	snprintf(
	    doc, sizeof(doc), "<!DOCTYPE m SYSTEM \"http://127.0.0.1:9/m.dtd\">%s</manifest>", ns);
	refused("external DTD", doc, "DOCTYPE");
	snprintf(doc, sizeof(doc), "%s&nope;</manifest>", ns);
	refused("undeclared entity", doc, "nope");
	snprintf(doc, sizeof(doc),
	    "%s<xi:include xmlns:xi=\"http://www.w3.org/2001/XInclude\" href=\"/etc/passwd\"/>"
	    "</manifest>",
	    ns);
	refused("XInclude", doc, "<include> in namespace \"http://www.w3.org/2001/XInclude\"");
	refused("no namespace", "<manifest/>", "expected \"urn:devid:manifest:1\"");
	snprintf(doc, sizeof(doc), "%s</manifest>", ns);
	refused("no entry", doc, "no <entry>");
	snprintf(doc, sizeof(doc), "%s\n<entry>\n<protected>a</protected></entry></manifest>", ns);
	refused("wrong order", doc, "line 3: entry 0: <protected> where <payload> was expected");
	snprintf(doc, sizeof(doc),
	    "%s<entry><payload>a b</payload><protected>a</protected><header><uniqueId>1</uniqueId>"
	    "</header><signature>s</signature></entry></manifest>",
	    ns);
	refused("space in base64url", doc, "<payload> is not unpadded base64url");
	snprintf(doc, sizeof(doc),
	    "%s<entry><payload>a</payload><protected>a</protected><header><uniqueId>1&#9;2"
	    "</uniqueId></header><signature>s</signature></entry></manifest>",
	    ns);
	refused("control character", doc, "<uniqueId> holds a control character");
	snprintf(
	    doc, sizeof(doc), "%s<entry version=\"2\"><payload>a</payload></entry></manifest>", ns);
	refused("attribute", doc, "has an attribute \"version\"");
	snprintf(doc, sizeof(doc), "%s<entry><payload>a</payload>", ns);
	refused("truncated", doc, "line 1");
	snprintf(doc, sizeof(doc), "%stext</manifest>", ns);
	refused("stray text", doc, "text outside a text element");
}

static void
limits(void)
{
	struct dynbuf doc, out;
	struct devid_error e;
	static char big[70000];

	devid_error_clear(&e);
	dynbuf_init(&doc, 1 << 20);
	dynbuf_init(&out, 1 << 20);
	memset(big, 'A', sizeof(big));
	CHECK(
	    dynbuf_addstr(&doc, "<manifest xmlns=\"urn:devid:manifest:1\"><entry><payload>") == 0 &&
		dynbuf_add(&doc, big, sizeof(big)) == 0 &&
		dynbuf_addstr(&doc, "</payload></entry></manifest>") == 0,
	    "set-up");
	CHECK(manifest_xml_to_json(doc.p, doc.len, &out, &e) == DEVID_ELIMIT &&
		strstr(e.msg, "<payload> longer than 65540 bytes") != NULL,
	    "an oversized payload: %s", e.msg);
	dynbuf_release(&doc);
	dynbuf_release(&out);
}

static void
unwritable(void)
{
	struct dynbuf out;
	struct devid_error e;
	json_t *extra = json_pack("{s:s,s:s,s:{s:s},s:s,s:s}", "payload", "a", "protected", "b",
	    "header", "uniqueId", "1", "signature", "c", "other", "d");
	json_t *ctl = json_pack("{s:s,s:s,s:{s:s},s:s}", "payload", "a", "protected", "b", "header",
	    "uniqueId", "1\n2", "signature", "c");
	json_t *pad = json_pack("{s:s,s:s,s:{s:s},s:s}", "payload", "a=", "protected", "b",
	    "header", "uniqueId", "1", "signature", "c");

	devid_error_clear(&e);
	dynbuf_init(&out, 1 << 16);
	CHECK(manifest_xml_entry(extra, 7, &out, &e) == DEVID_EINVAL &&
		strstr(e.msg, "entry 7: not an object of exactly") != NULL,
	    "an entry with another member: %s", e.msg);
	CHECK(manifest_xml_entry(ctl, 7, &out, &e) == DEVID_EINVAL &&
		strstr(e.msg, "control character") != NULL,
	    "a uniqueId with a line end: %s", e.msg);
	CHECK(manifest_xml_entry(pad, 7, &out, &e) == DEVID_EINVAL &&
		strstr(e.msg, "payload is not unpadded base64url") != NULL,
	    "a padded payload: %s", e.msg);
	CHECK(out.len == 0, "a refused entry wrote %zu bytes", out.len);
	json_decref(extra);
	json_decref(ctl);
	json_decref(pad);
	dynbuf_release(&out);
}

int
main(void)
{
	char tmp[PATH_MAX], vdir[PATH_MAX + 8], reel[PATH_MAX + 8], mpath[PATH_MAX + 32];
	char dx[PATH_MAX + 8], dt[PATH_MAX + 8], dtx[PATH_MAX + 8];
	char line_json[1024], line_xml[1024];
	struct mint_opts o = {.batch = "B1", .count = NCHIPS, .threads = 1};
	struct mint_result res;
	struct devid_error e;
	struct dynbuf xml, back;
	struct manifest_xml *x;
	uint8_t *text;
	char *sig;
	size_t n;

	devid_error_clear(&e);
	test_tmpdir(tmp, sizeof(tmp), "manifest-xml");
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
	dynbuf_init(&xml, 1 << 24);
	dynbuf_init(&back, 1 << 24);
	if (!to_xml(text, n, &xml))
		return test_done();

	/* back to JSON: the minted bytes, at once and a byte at a time */
	CHECK(manifest_xml_to_json(xml.p, xml.len, &back, &e) == 0, "read back: %s", e.msg);
	CHECK(back.len == n && memcmp(back.p, text, n) == 0,
	    "XML read back is not the minted manifest.json:\n%s", dynbuf_str(&back));
	dynbuf_reset(&back);
	x = manifest_xml_new();
	CHECK(x != NULL, "out of memory");
	for (size_t i = 0; x != NULL && i < xml.len; i++)
		if (manifest_xml_feed(x, xml.p + i, 1, false, &back, &e) != 0)
			break;
	CHECK(x != NULL && manifest_xml_feed(x, NULL, 0, true, &back, &e) == 0 &&
		manifest_xml_entries(x) == NCHIPS && manifest_xml_offset(x) == xml.len,
	    "fed a byte at a time: %s", e.msg);
	CHECK(back.len == n && memcmp(back.p, text, n) == 0, "a byte at a time gives other JSON");
	manifest_xml_free(x);

	/* the XML reel verifies as the JSON one; tampered, both name the entry */
	snprintf(dx, sizeof(dx), "%s/rx", tmp);
	reel_with(reel, dx, "manifest.xml", xml.p, xml.len);
	verify_line(reel, vdir, line_json, sizeof(line_json));
	verify_line(dx, vdir, line_xml, sizeof(line_xml));
	CHECK(strncmp(line_json, "rc=0 checked=1 total=4 accepted=4", 33) == 0, "the JSON reel: %s",
	    line_json);
	CHECK(strcmp(line_json, line_xml) == 0, "verify differs: JSON %s, XML %s", line_json,
	    line_xml);

	sig = strstr((char *)text, "\"signature\":\"");
	sig = sig != NULL ? strstr(sig + 1, "\"signature\":\"") : NULL;
	CHECK(sig != NULL, "no second signature");
	if (sig != NULL) {
		sig += strlen("\"signature\":\"");
		*sig = *sig == 'A' ? 'B' : 'A';
		snprintf(dt, sizeof(dt), "%s/rt", tmp);
		reel_with(reel, dt, "manifest.json", text, n);
		if (to_xml(text, n, &xml)) {
			snprintf(dtx, sizeof(dtx), "%s/rtx", tmp);
			reel_with(reel, dtx, "manifest.xml", xml.p, xml.len);
			verify_line(dt, vdir, line_json, sizeof(line_json));
			verify_line(dtx, vdir, line_xml, sizeof(line_xml));
			CHECK(strstr(line_json, "rejected=1 first=entry 1") != NULL,
			    "the tampered JSON reel: %s", line_json);
			CHECK(strcmp(line_json, line_xml) == 0,
			    "tampered, verify differs: JSON %s, XML %s", line_json, line_xml);
		}
	}
	printf("ok manifest_xml: round trip, verification of both forms, tampering\n");

	hostile();
	limits();
	unwritable();
	printf("ok manifest_xml: hostile, malformed and oversized documents refused\n");

	dynbuf_release(&xml);
	dynbuf_release(&back);
	free(text);
	test_rmdir(tmp);
	return test_done();
}
