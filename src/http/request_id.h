/* SPDX-License-Identifier: Apache-2.0 */
/*
 * request_id.h - the id of one request, as logged on its every line and echoed in the
 * X-Request-Id response header (docs/logging.md).
 *
 * A client or a proxy in front may send its own X-Request-Id; it is kept when it is a short
 * token of safe characters, so it can be written into a log line and a header as is.
 */
#ifndef DEVID_HTTP_REQUEST_ID_H
#define DEVID_HTTP_REQUEST_ID_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http_limits.h"

/* what request_id_new writes: 16 lowercase hex digits */
#define REQUEST_ID_GENERATED_LEN 16

/* True if p[0..len) is 1 to HTTP_MAX_REQUEST_ID bytes of [A-Za-z0-9._:-]. */
bool request_id_valid(const char *p, size_t len);

/* A new random id into out (REQUEST_ID_GENERATED_LEN hex digits and a NUL). */
void request_id_new(char out[REQUEST_ID_GENERATED_LEN + 1]);

#endif
