#include <string.h>

#include "json.h"
#include "submission.h"
#include "banned.h"

int
publish_body_parse(const json_t *body, int nthreads, struct batch_descriptor **d,
    struct manifest **m, struct manifest_report *r, struct devid_error *e)
{
	int rc;

	*d = NULL;
	*m = NULL;
	if (!json_is_object(body) || json_object_size(body) != 2 ||
	    json_object_get(body, "descriptor") == NULL ||
	    json_object_get(body, "manifest") == NULL)
		return devid_error_set(
		    e, DEVID_EINVAL, "body must be {\"descriptor\":{...},\"manifest\":[...]}");
	if ((rc = batch_descriptor_from_json(json_object_get(body, "descriptor"), d, e)) != 0)
		return rc;
	if ((rc = manifest_from_json_mt(json_object_get(body, "manifest"), nthreads, m, r, e)) !=
	    0) {
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
