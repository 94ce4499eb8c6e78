#include <string.h>

#include "json.h"
#include "submission.h"
#include "banned.h"

static size_t
skip_ws(const uint8_t *p, size_t n, size_t i)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* The end of the string starting at p[i] == '"' (one past its closing quote), or 0. */
static size_t
skip_string(const uint8_t *p, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return 0;
}

/* The end of the JSON value starting at p[i], by strings and brackets only; 0 if unclosed. */
static size_t
skip_value(const uint8_t *p, size_t n, size_t i)
{
	size_t depth = 0;

	if (i >= n)
		return 0;
	if (p[i] == '"')
		return skip_string(p, n, i);
	if (p[i] != '{' && p[i] != '[') {
		while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' &&
		    p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			i++;
		return i;
	}
	while (i < n) {
		if (p[i] == '"') {
			if ((i = skip_string(p, n, i)) == 0)
				return 0;
			continue;
		}
		if (p[i] == '{' || p[i] == '[') {
			if (++depth > MAX_JSON_DEPTH)
				return 0;
		} else if ((p[i] == '}' || p[i] == ']') && --depth == 0) {
			return i + 1;
		}
		i++;
	}
	return 0;
}

int
publish_body_parse_bytes(const uint8_t *p, size_t n, int nthreads, struct batch_descriptor **d,
    struct manifest **m, struct manifest_report *r, struct devid_error *e)
{
	static const char shape[] = "body must be {\"descriptor\":{...},\"manifest\":[...]}";
	size_t i, end, ds = 0, dn = 0, ms = 0, mn = 0;
	int rc;

	*d = NULL;
	*m = NULL;
	i = skip_ws(p, n, 0);
	if (i >= n || p[i] != '{')
		return devid_error_set(e, DEVID_EINVAL, "%s", shape);
	for (i = skip_ws(p, n, i + 1);;) {
		size_t ks = i, ke;

		if (i >= n || p[i] != '"' || (ke = skip_string(p, n, i)) == 0)
			return devid_error_set(e, DEVID_EINVAL, "%s", shape);
		i = skip_ws(p, n, ke);
		if (i >= n || p[i] != ':')
			return devid_error_set(e, DEVID_EINVAL, "%s", shape);
		i = skip_ws(p, n, i + 1);
		if ((end = skip_value(p, n, i)) == 0)
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
		i = skip_ws(p, n, end);
		if (i < n && p[i] == ',') {
			i = skip_ws(p, n, i + 1);
			continue;
		}
		if (i >= n || p[i] != '}' || skip_ws(p, n, i + 1) != n)
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
