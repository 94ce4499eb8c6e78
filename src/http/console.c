/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "http/console.h"
#include "lib/banned.h"

/*
 * docs/console.md: what the browser may load and run, and that nothing may frame the page
 * (X-Content-Type-Options: nosniff is on every answer of the server already)
 */
static const struct {
	const char *name, *value;
} console_headers[] = {
    {"Content-Security-Policy",
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
	"media-src 'self' blob: mediastream:; connect-src 'self'; form-action 'self'; "
	"base-uri 'none'; frame-ancestors 'none'"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Permissions-Policy", "camera=(self)"},
    {"Cache-Control", "no-cache"},
};

static void
console_send(struct http_request *req, struct http_response *resp, const char *name)
{
	const struct console_file *f = NULL;
	const char *inm;

	for (size_t i = 0; i < console_nfiles; i++)
		if (strcmp(console_files[i].name, name) == 0)
			f = &console_files[i];
	if (f == NULL) {
		http_error(resp, 404, "not_found", "the console has no file %s", name);
		return;
	}
	for (size_t i = 0; i < sizeof(console_headers) / sizeof(console_headers[0]); i++)
		http_response_set_header(resp, console_headers[i].name, console_headers[i].value);
	http_response_set_header(resp, "ETag", f->etag);
	inm = http_request_header(req, "If-None-Match");
	if (inm != NULL && strcmp(inm, f->etag) == 0) {
		http_response_set_status(resp, 304);
		return;
	}
	http_response_set_header(resp, "Content-Type", f->type);
	http_response_set_status(resp, 200);
	if (dynbuf_add(http_response_body(resp), f->data, f->len) != 0)
		http_error(resp, 500, "internal", "out of memory");
}

static void
h_root(struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	http_response_set_header(resp, "Location", "/console/");
	http_response_set_status(resp, 302);
}

static void
h_index(struct http_request *req, struct http_response *resp, void *arg)
{
	(void)arg;
	console_send(req, resp, "index.html");
}

static void
h_file(struct http_request *req, struct http_response *resp, void *arg)
{
	(void)arg;
	console_send(req, resp, http_request_param(req, "file"));
}

int
console_routes(struct router *r, struct devid_error *e)
{
	if (router_add(r, "GET", "/", h_root, NULL, e) != 0 ||
	    router_add(r, "GET", "/console/", h_index, NULL, e) != 0 ||
	    router_add(r, "GET", "/console/{file}", h_file, NULL, e) != 0)
		return -1;
	return 0;
}
