/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_internal.h - what the files of the REST API (api.c, api_upload.c) share: the API's
 * state, authentication of a request, and the mapping of domain outcomes to answers.
 */
#ifndef DEVID_HTTP_API_INTERNAL_H
#define DEVID_HTTP_API_INTERNAL_H

#include <jansson.h>

#include "http/router.h"
#include "http/server.h"
#include "service/service.h"

struct api {
	struct service *svc;
	struct router *router;
	struct router *ingest; /* the routes that take manifests: a body limit of their own */
	struct router *pages; /* an upload's pages: MAX_UPLOAD_PAGE_SIZE, at most the above */
	size_t max_ingest_body;
};

/*
 * The caller, from "Authorization: Bearer <token>" or, without that header, the session
 * cookie (and its CSRF token for a change); answers 401 or 403 itself and returns -1 when
 * there is none.
 */
int api_authenticate(
    struct api *a, struct http_request *req, struct http_response *resp, struct principal *p);
/*
 * Answers a DEVID_E* failure with its HTTP status and an error code: {"error","message"}, and
 * "report" (borrowed; may be NULL) for a refused batch. A server-side failure is logged, not
 * explained.
 */
void api_fail(struct http_response *resp, int rc, const struct devid_error *e, json_t *report);
/* Answers a domain call: j (released here) with status on success, the mapped error if not. */
void api_answer(
    struct http_response *resp, int rc, const struct devid_error *e, json_t *j, int status);
/* The body as JSON (duplicate keys refused); NULL when it answered 400 itself. */
json_t *api_body_json(struct http_request *req, struct http_response *resp);

/* Adds the upload routes (api_upload.c) to a's routers. */
int api_upload_routes(struct api *a, struct devid_error *e);
/* Adds the clone-detection routes (api_clone.c). */
int api_clone_routes(struct api *a, struct devid_error *e);

#define HANDLER(name)                                                                              \
	static void name(struct http_request *req, struct http_response *resp, void *arg)

#define AUTH(a, p)                                                                                 \
	struct principal p;                                                                        \
	if (api_authenticate((a), req, resp, &p) != 0)                                             \
	return

#endif
