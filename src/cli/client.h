/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.h - the client side of devid's REST API for the command line (libcurl).
 * The server and token come from --server/--token or DEVID_SERVER/DEVID_TOKEN (flags win).
 */
#ifndef DEVID_CLI_CLIENT_H
#define DEVID_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/dynbuf.h"
#include "lib/error.h"

struct client {
	const char *server; /* base URL, e.g. http://127.0.0.1:8443 */
	const char *token;
	const char *cacert; /* CA file for https, NULL: the system's */
	bool progress; /* show upload progress on stderr */
};

#define CLIENT_MAX_RESPONSE ((size_t)1 << 30)
#define CLIENT_CONNECT_TIMEOUT 15 /* seconds to connect (and finish TLS) */

/*
 * Sends method path (with query) and an optional body (JSON unless content_type says
 * otherwise); *status receives the HTTP status and resp the body. 0 when an answer came,
 * whatever its status; DEVID_EIO when the server could not be reached, with a message that
 * says what to do (an untrusted certificate: --cacert; a refused connection: is the server
 * running?).
 */
int client_request(const struct client *c, const char *method, const char *path, const void *body,
    size_t len, long *status, struct dynbuf *resp, struct devid_error *e);

/*
 * One connection to the server, kept open from request to request (keep-alive): for a
 * command that sends many, such as an upload's pages. Used by one thread at a time.
 */
struct client_conn;
/* NULL with e set when the server or token is missing or malformed, or out of memory. */
struct client_conn *client_conn_new(const struct client *c, struct devid_error *e);
void client_conn_free(struct client_conn *k);
/* client_request over k. */
int client_conn_request(struct client_conn *k, const char *method, const char *path,
    const void *body, size_t len, long *status, struct dynbuf *resp, struct devid_error *e);

/* Prints an error answer ({"error","message"}) as "devid <cmd>: message (HTTP status)". */
void client_print_error(const char *cmd, long status, const struct dynbuf *resp);

#endif
