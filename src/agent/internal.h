/*
 * internal.h - what the files of src/agent share, and what their unit tests reach.
 * Not part of the public API (that is include/devid/agent.h).
 */
#ifndef DEVID_AGENT_INTERNAL_H
#define DEVID_AGENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/dynbuf.h"
#include "lib/error.h"

/* Limits on what a product cloud sends back to devid_hello (see also DEVID_HELLO_MAX_BODY). */
/* the status line and the header fields of a response, CRLFs included */
#define AGENT_MAX_RESPONSE_HEAD 16384
/* everything read from the server: head, body and chunked framing */
#define AGENT_MAX_RESPONSE_RAW (2 * AGENT_MAX_RESPONSE_HEAD + 2 * 65536)
/* interim (1xx) responses skipped before the final one */
#define AGENT_MAX_INTERIM_RESPONSES 8
/* the reason phrase kept from a status line */
#define AGENT_MAX_REASON_LEN 64
/* a key URI scheme (RFC 3986 3.1); ours are short */
#define AGENT_MAX_SCHEME_LEN 16
/* a host name or IP literal in --connect (RFC 1035 2.3.4: 253 for a name) */
#define AGENT_MAX_HOST_LEN 253

/*
 * The scheme of a key URI, lowercased into scheme[AGENT_MAX_SCHEME_LEN + 1]: the characters
 * before the first ':' if they form an RFC 3986 scheme (ALPHA *( ALPHA / DIGIT / "+" / "-" /
 * "." )). DEVID_EINVAL when there is none ("/etc/key.pem", ":x", "") or it is too long.
 */
int agent_uri_scheme(const char *uri, char scheme[AGENT_MAX_SCHEME_LEN + 1], struct devid_error *e);

/*
 * The path of a file: URI, borrowed from uri: "file:PATH" gives PATH; "file:///abs" and
 * "file://localhost/abs" give "/abs". Another host, an empty path or a NUL-free but
 * otherwise empty remainder is DEVID_EINVAL. No percent-decoding.
 */
int agent_file_uri_path(const char *uri, const char **path, struct devid_error *e);

/*
 * Splits --connect's HOST:PORT: "name:443", "192.0.2.1:443", "[2001:db8::1]:443". host
 * receives the host without brackets (at most AGENT_MAX_HOST_LEN chars + NUL), port the
 * decimal port 1..65535 as written (at most 5 digits + NUL).
 */
int agent_split_host_port(
    const char *s, char host[AGENT_MAX_HOST_LEN + 1], char port[6], struct devid_error *e);

/* What agent_http_response_parse found. body is the caller's: init it with the limit it wants. */
struct agent_http_response {
	int status; /* the final status code, 200..599 */
	char reason[AGENT_MAX_REASON_LEN + 1]; /* its reason phrase, printable ASCII, maybe cut */
	struct dynbuf body; /* decoded body (chunked framing removed), up to body.max */
	bool truncated; /* the body was longer than body.max; the rest was not needed */
	bool close_delimited; /* the body ran to the end of the stream (no length given) */
};

#define AGENT_HTTP_NEED_MORE 1

/*
 * Parses an HTTP/1.x response to a GET (RFC 9112) from the bytes p[0..len) received so far;
 * eof says the stream has ended. Pure: no I/O, never reads past len, no NUL expected.
 * Interim 1xx responses are skipped. The body is framed by Transfer-Encoding: chunked,
 * Content-Length, or the end of the stream; a body longer than out->body.max is cut there
 * and marked truncated (the response is then complete).
 *
 * Returns 0 when the response is complete (out filled, out->body holding the body),
 * AGENT_HTTP_NEED_MORE when more bytes are needed (never when eof), DEVID_EINVAL when the
 * bytes are not an HTTP response or end too early (e says why), DEVID_ELIMIT when the head
 * is longer than AGENT_MAX_RESPONSE_HEAD, or DEVID_ENOMEM. out->body is reset first.
 */
int agent_http_response_parse(
    const uint8_t *p, size_t len, bool eof, struct agent_http_response *out, struct devid_error *e);

/*
 * Copies at most max bytes of p[0..len) into out (outsz bytes, NUL-terminated) for a message:
 * tabs and line ends become spaces, other control characters and bytes above 0x7e become
 * '?', and "..." marks a cut.
 */
void agent_printable(const uint8_t *p, size_t len, size_t max, char *out, size_t outsz);

#endif
