/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jsonscan.h"
#include "submission.h"
#include "banned.h"

int
publish_body_split(const uint8_t *p, size_t n, struct body_part *descriptor,
    struct body_part *manifest, struct devid_error *e)
{
	static const char shape[] = "body must be {\"descriptor\":{...},\"manifest\":[...]}";
	size_t i, end;

	memset(descriptor, 0, sizeof(*descriptor));
	memset(manifest, 0, sizeof(*manifest));
	i = jsonscan_ws(p, n, 0);
	if (i >= n || p[i] != '{')
		return devid_error_set(e, DEVID_EINVAL, "%s", shape);
	for (i = jsonscan_ws(p, n, i + 1);;) {
		size_t ks = i, ke;

		if (i >= n || p[i] != '"' || (ke = jsonscan_string_end(p, n, i)) == 0)
			return devid_error_set(e, DEVID_EINVAL, "%s", shape);
		i = jsonscan_ws(p, n, ke);
		if (i >= n || p[i] != ':')
			return devid_error_set(e, DEVID_EINVAL, "%s", shape);
		i = jsonscan_ws(p, n, i + 1);
		if ((end = jsonscan_value_end(p, n, i)) == 0)
			return devid_error_set(e, DEVID_EINVAL, "body: unterminated JSON value");
		if (ke - ks == 12 && memcmp(p + ks, "\"descriptor\"", 12) == 0 &&
		    descriptor->len == 0) {
			descriptor->off = i;
			descriptor->len = end - i;
		} else if (ke - ks == 10 && memcmp(p + ks, "\"manifest\"", 10) == 0 &&
		    manifest->len == 0) {
			manifest->off = i;
			manifest->len = end - i;
		} else {
			return devid_error_set(
			    e, DEVID_EINVAL, "%s (an unknown or repeated member)", shape);
		}
		i = jsonscan_ws(p, n, end);
		if (i < n && p[i] == ',') {
			i = jsonscan_ws(p, n, i + 1);
			continue;
		}
		if (i >= n || p[i] != '}' || jsonscan_ws(p, n, i + 1) != n)
			return devid_error_set(e, DEVID_EINVAL, "%s", shape);
		break;
	}
	if (descriptor->len == 0 || manifest->len == 0)
		return devid_error_set(e, DEVID_EINVAL, "%s", shape);
	return 0;
}

void
upload_open_body_release(struct upload_open_body *b)
{
	free(b->descriptor);
	memset(b, 0, sizeof(*b));
}

int
upload_open_body_parse(
    const uint8_t *p, size_t n, struct upload_open_body *b, struct devid_error *e)
{
	static const char what[] = "upload";
	static const char *const publish_keys[] = {"kind", "descriptor", "pageSize", NULL};
	static const char *const import_keys[] = {"kind", "batch", "pageSize", NULL};
	const char *kind, *batch;
	json_t *root = NULL, *d;
	json_int_t size;
	size_t len;
	int rc = DEVID_EINVAL;

	memset(b, 0, sizeof(*b));
	if (n > MAX_UPLOAD_OPEN_SIZE) {
		devid_error_set(e, rc, "%s: %zu bytes, limit %d", what, n, MAX_UPLOAD_OPEN_SIZE);
		goto out;
	}
	if ((root = json_parse(p, n, what, e)) == NULL)
		goto out;
	if (!json_is_object(root)) {
		devid_error_set(e, rc, "%s: not a JSON object", what);
		goto out;
	}
	if (json_get_str(root, "kind", 1, 16, true, &kind, NULL, what, e) != 0)
		goto out;
	if (strcmp(kind, "import") == 0)
		b->import = true;
	else if (strcmp(kind, "publish") != 0) {
		devid_error_set(e, rc, "%s: kind \"%s\" is neither publish nor import", what, kind);
		goto out;
	}
	if (json_only_keys(root, b->import ? import_keys : publish_keys, what, e) != 0 ||
	    json_get_int(root, "pageSize", 1, MAX_UPLOAD_PAGE_ENTRIES, &size, what, e) != 0)
		goto out;
	b->page_size = size;
	if (b->import) {
		if (json_get_str(root, "batch", 1, MAX_NAME_LEN, true, &batch, &len, what, e) != 0)
			goto out;
		if (!claim_name_valid(batch, len)) {
			devid_error_set(e, rc, "%s: batch must match [A-Z0-9.-]{1,64}", what);
			goto out;
		}
		memcpy(b->batch, batch, len + 1);
	} else {
		if (json_get_obj(root, "descriptor", true, &d, what, e) != 0)
			goto out;
		/* re-serialized compactly: the JWS strings, all that is signed, stay as sent */
		if ((b->descriptor = json_dump_compact(d)) == NULL) {
			rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
			goto out;
		}
	}
	rc = 0;
out:
	if (rc != 0)
		upload_open_body_release(b);
	json_decref(root);
	return rc;
}

int
claim_body_parse(
    const json_t *body, const char **code, size_t *len, struct claim_code *c, struct devid_error *e)
{
	*code = NULL;
	*len = 0;
	if (!json_is_object(body) || json_object_size(body) != 1 ||
	    json_get_str(body, "code", 1, MAX_CLAIM_TEXT_LEN, true, code, len, "claim", e) != 0)
		return devid_error_set(e, DEVID_EINVAL, "body must be {\"code\":\"DEVID1:...\"}");
	return claim_code_parse((const uint8_t *)*code, *len, c, e);
}
