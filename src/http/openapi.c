/* SPDX-License-Identifier: Apache-2.0 */
#include "http/openapi.h"
#include "lib/banned.h"

void
openapi_handle(struct http_request *req, struct http_response *resp, void *arg)
{
	const struct console_file *f = &openapi_files[0];

	(void)req;
	(void)arg;
	if (dynbuf_add(http_response_body(resp), f->data, f->len) != 0) {
		http_error(resp, 500, "internal", "out of memory");
		return;
	}
	http_response_set_header(resp, "Content-Type", f->type);
	http_response_set_header(resp, "ETag", f->etag);
	http_response_set_status(resp, 200);
}
