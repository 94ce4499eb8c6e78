/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openapi.h - the REST API's OpenAPI 3.1 description (docs/openapi.json), compiled into devid
 * by web/embed/embed.c and served unchanged at GET /api/v1/openapi.json, without a token.
 */
#ifndef DEVID_HTTP_OPENAPI_H
#define DEVID_HTTP_OPENAPI_H

#include <stddef.h>

#include "http/console.h"
#include "http/server.h"

/* Written at build time (openapi_files.c): one file, openapi.json. */
extern const struct console_file openapi_files[];
extern const size_t openapi_nfiles;

/* An http_handler_fn: 200 with the document as application/json; arg is unused. */
void openapi_handle(struct http_request *req, struct http_response *resp, void *arg);

#endif
