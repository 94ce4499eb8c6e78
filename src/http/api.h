/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.h - the REST API of DESIGN.md over the domain (src/service): authentication, the
 * routes, and the translation of DEVID_E* outcomes to HTTP statuses. Knows no SQL.
 */
#ifndef DEVID_HTTP_API_H
#define DEVID_HTTP_API_H

#include "http/metrics.h"
#include "http/router.h"
#include "http/server.h"
#include "service/service.h"

struct api;

/*
 * The routes of the API over svc; metrics (borrowed) is served at /metrics, and jwks (a JWK
 * set, borrowed; may be NULL) at /api/v1/interop-key.
 */
struct api *api_new(
    struct service *svc, struct metrics *m, const json_t *jwks, struct devid_error *e);
void api_free(struct api *a);
/* The routes of a (borrowed), for router_foreach. */
const struct router *api_router(const struct api *a);
/*
 * The ingest routes (a vendor's publish, an OEM's import) take bodies up to max bytes, an
 * upload's pages up to MAX_UPLOAD_PAGE_SIZE (or max when smaller); every other route takes the
 * server's max_body. Set before the server runs.
 */
void api_set_max_ingest_body(struct api *a, size_t max);
/* The server's body_limit function (struct http_server_opts); arg is the struct api *. */
size_t api_body_limit(const char *method, const char *path, void *arg);
/* An http_handler_fn; arg is the struct api *. */
void api_handle(struct http_request *req, struct http_response *resp, void *arg);

#endif
