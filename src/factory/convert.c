/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/dynbuf.h"
#include "lib/limits.h"
#include "lib/manifest_stream.h"
#include "lib/manifest_xml.h"
#include "factory/factory.h"
#include "lib/banned.h"

/* Entries converted at a time, and XML read at a time. */
#define CONVERT_PAGE 1000
#define CONVERT_CHUNK 65536

struct file_in {
	FILE *f;
	const char *path;
};

static int
read_in(void *arg, uint8_t *buf, size_t cap, size_t *got, struct devid_error *e)
{
	struct file_in *in = arg;

	*got = fread(buf, 1, cap, in->f);
	if (*got == 0 && ferror(in->f))
		return devid_error_set(e, DEVID_EIO, "%s: %s", in->path, strerror(EIO));
	return 0;
}

static int
write_out(FILE *f, const char *path, const struct dynbuf *b, struct devid_error *e)
{
	if (b->len > 0 && fwrite(b->p, 1, b->len, f) != b->len)
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	return 0;
}

/* JSON to XML, a page of entries at a time. */
static int
to_xml(struct file_in *in, FILE *f, const char *out, struct devid_error *e)
{
	struct manifest_stream *s = NULL;
	struct dynbuf page, xml;
	json_t *arr = NULL;
	json_error_t je;
	size_t count, base = 0;
	int rc = DEVID_ENOMEM;

	dynbuf_init(&page, MAX_UPLOAD_PAGE_SIZE * 2);
	dynbuf_init(&xml, MAX_UPLOAD_PAGE_SIZE * 4);
	if ((s = manifest_stream_new(read_in, in)) == NULL) {
		devid_error_set(e, rc, "out of memory");
		goto out;
	}
	if ((rc = dynbuf_addstr(&xml, MANIFEST_XML_HEAD)) != 0) {
		devid_error_set(e, rc, "out of memory");
		goto out;
	}
	for (;;) {
		if ((rc = manifest_stream_page(s, CONVERT_PAGE, &page, &count, e)) != 0) {
			devid_error_prefix(e, "%s", in->path);
			goto out;
		}
		if (count == 0)
			break;
		json_decref(arr);
		if ((arr = json_loadb(
			 (const char *)page.p, page.len, JSON_REJECT_DUPLICATES, &je)) == NULL) {
			rc = devid_error_set(e, DEVID_EINVAL, "%s: entries %zu to %zu: %s",
			    in->path, base, base + count - 1, je.text);
			goto out;
		}
		for (size_t i = 0; i < count; i++)
			if ((rc = manifest_xml_entry(json_array_get(arr, i), base + i, &xml, e)) !=
			    0) {
				devid_error_prefix(e, "%s", in->path);
				goto out;
			}
		base += count;
		if ((rc = write_out(f, out, &xml, e)) != 0)
			goto out;
		dynbuf_reset(&xml);
	}
	if ((rc = dynbuf_addstr(&xml, MANIFEST_XML_TAIL)) != 0 ||
	    (rc = write_out(f, out, &xml, e)) != 0)
		goto out;
	rc = 0;
out:
	json_decref(arr);
	manifest_stream_free(s);
	dynbuf_release(&page);
	dynbuf_release(&xml);
	return rc;
}

/* XML to JSON, a piece of the document at a time. */
static int
to_json(struct file_in *in, FILE *f, const char *out, struct devid_error *e)
{
	struct manifest_xml *x = NULL;
	struct dynbuf json;
	uint8_t *chunk = NULL;
	size_t n;
	int rc = DEVID_ENOMEM;

	dynbuf_init(&json, MAX_UPLOAD_PAGE_SIZE * 2);
	if ((x = manifest_xml_new()) == NULL || (chunk = malloc(CONVERT_CHUNK)) == NULL) {
		devid_error_set(e, rc, "out of memory");
		goto out;
	}
	do {
		if ((rc = read_in(in, chunk, CONVERT_CHUNK, &n, e)) != 0)
			goto out;
		if ((rc = manifest_xml_feed(x, chunk, n, n == 0, &json, e)) != 0) {
			devid_error_prefix(e, "%s", in->path);
			goto out;
		}
		if ((rc = write_out(f, out, &json, e)) != 0)
			goto out;
		dynbuf_reset(&json);
	} while (n > 0);
	rc = 0;
out:
	free(chunk);
	manifest_xml_free(x);
	dynbuf_release(&json);
	return rc;
}

int
manifest_file_convert(const char *in, const char *out, bool xml, struct devid_error *e)
{
	struct file_in fin = {.path = in};
	FILE *f = NULL;
	int rc;

	if ((fin.f = fopen(in, "rb")) == NULL)
		return devid_error_set(e, DEVID_EIO, "%s: %s", in, strerror(errno));
	if ((f = fopen(out, "wx")) == NULL) {
		rc = devid_error_set(e, DEVID_EIO, "%s: %s", out, strerror(errno));
		goto out;
	}
	rc = xml ? to_xml(&fin, f, out, e) : to_json(&fin, f, out, e);
	if (fclose(f) != 0 && rc == 0)
		rc = devid_error_set(e, DEVID_EIO, "%s: %s", out, strerror(errno));
	if (rc != 0)
		unlink(out);
out:
	fclose(fin.f);
	return rc;
}

int
reel_manifest_path(const char *dir, char *path, size_t len, bool *xml, struct devid_error *e)
{
	char other[PATH_MAX];
	bool has_json, has_xml;

	snprintf(path, len, "%s/manifest.json", dir);
	snprintf(other, sizeof(other), "%s/manifest.xml", dir);
	has_json = access(path, F_OK) == 0;
	has_xml = access(other, F_OK) == 0;
	if (has_json && has_xml)
		return devid_error_set(e, DEVID_EINVAL,
		    "%s has both manifest.json and manifest.xml: a reel has one manifest", dir);
	*xml = has_xml;
	if (has_xml)
		snprintf(path, len, "%s", other);
	return 0;
}
