/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "json.h"
#include "jsonscan.h"
#include "submission.h"
#include "banned.h"

int
publish_body_parse_bytes(const uint8_t *p, size_t n, int nthreads, struct batch_descriptor **d,
    struct manifest **m, struct manifest_report *r, struct devid_error *e)
{
	static const char shape[] = "body must be {\"descriptor\":{...},\"manifest\":[...]}";
	size_t i, end, ds = 0, dn = 0, ms = 0, mn = 0;
	int rc;

	*d = NULL;
	*m = NULL;
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
		if (ke - ks == 12 && memcmp(p + ks, "\"descriptor\"", 12) == 0 && dn == 0) {
			ds = i;
			dn = end - i;
		} else if (ke - ks == 10 && memcmp(p + ks, "\"manifest\"", 10) == 0 && mn == 0) {
			ms = i;
			mn = end - i;
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
	if (dn == 0 || mn == 0)
		return devid_error_set(e, DEVID_EINVAL, "%s", shape);
	if ((rc = batch_descriptor_parse(p + ds, dn, d, e)) != 0)
		return rc;
	if ((rc = manifest_parse_mt(p + ms, mn, nthreads, m, r, e)) != 0) {
		batch_descriptor_free(*d);
		*d = NULL;
	}
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
