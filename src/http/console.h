/* SPDX-License-Identifier: Apache-2.0 */
/*
 * console.h - the web console (docs/console.md): the files web/ builds, compiled into devid
 * by web/embed/embed.c, and the routes that serve them with the console's security headers.
 */
#ifndef DEVID_HTTP_CONSOLE_H
#define DEVID_HTTP_CONSOLE_H

#include <stddef.h>

#include "http/router.h"
#include "lib/error.h"

struct console_file {
	const char *name; /* base name, e.g. "app.js" */
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted, e.g. "\"0123456789abcdef\"" */
};

/* Written at build time (console_files.c). */
extern const struct console_file console_files[];
extern const size_t console_nfiles;

/*
 * Adds GET / (a redirect to /console/), GET /console/ (index.html) and GET /console/{file}
 * (the other files; any other name 404) to r.
 */
int console_routes(struct router *r, struct devid_error *e);

#endif
