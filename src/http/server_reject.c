/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_reject.c - libevent's own error pages become JSON.
 *
 * libevent 2.1 answers the requests it cannot parse (bad request line or headers, headers or
 * body over the limits, an Expect it does not know, a method not allowed) itself, with an
 * HTML page, before any callback of ours runs, and has no hook to change that page (2.2 adds
 * evhttp_set_errorcb). So an evbuffer callback watches each connection's output: whatever
 * libevent writes there while no response of ours is being sent is its own, either the
 * "100 Continue" interim line, which passes, or the status line of such an error page, which
 * is replaced by the same status with a JSON body; the end of the buffer is then frozen so
 * the rest of the page cannot follow. libevent closes the connection after those pages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "http/server_internal.h"
#include "lib/log.h"
#include "lib/banned.h"

/* True while the output callback rewrites a buffer (its own changes call it again). */
static _Thread_local bool tl_rewriting;

/* Parses "HTTP/d.d ddd " at the start of line. */
static bool
status_line_parse(const char *line, int *major, int *minor, int *status)
{
	if (strncmp(line, "HTTP/", 5) != 0 || line[5] < '0' || line[5] > '9' || line[6] != '.' ||
	    line[7] < '0' || line[7] > '9' || line[8] != ' ')
		return false;
	for (int i = 9; i < 12; i++) {
		if (line[i] < '0' || line[i] > '9')
			return false;
	}
	*major = line[5] - '0';
	*minor = line[7] - '0';
	*status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	return true;
}

static void
rejection_describe(const struct http_server *s, const struct http_conn *c, int status,
    const char **code, char *msg, size_t len)
{
	switch (status) {
	case 413:
		*code = "too_large";
		snprintf(msg, len, "the request body is over the limit of %zu bytes for this route",
		    http_conn_limit(c));
		break;
	case 503:
		*code = "too_many_connections";
		snprintf(
		    msg, len, "the server has as many connections as it takes: try again later");
		break;
	case 417:
		*code = "expectation_failed";
		snprintf(msg, len, "only \"Expect: 100-continue\" is understood");
		break;
	case 501:
		*code = "not_implemented";
		snprintf(msg, len, "the request method is not supported");
		break;
	case 400:
		*code = "bad_request";
		snprintf(msg, len,
		    "the request could not be parsed as HTTP/1.1, or its request line and headers "
		    "are over the limit of %zu bytes",
		    s->max_header_bytes);
		break;
	default:
		*code = "error";
		snprintf(msg, len, "the request was refused");
		break;
	}
}

/*
 * Output callback of every connection (arg: its http_conn). Bytes added while no response of
 * ours is being sent were written by libevent itself (see the comment at the top), or by
 * server_conn.c refusing a connection over a cap.
 */
void
http_conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_conn *c = arg;
	struct http_worker *w = http_tl_worker;
	struct evbuffer_ptr pos;
	struct evbuffer *tmp;
	char line[16], msg[256], peer[INET6_ADDRSTRLEN + 16];
	const char *code;
	char *body;
	int major, minor, status;

	if (info->n_deleted > 0 && !tl_rewriting && evbuffer_get_length(buf) == 0)
		http_conn_written(c);
	if (info->n_added == 0 || tl_rewriting || w == NULL)
		return;
	if (http_tl_sending) {
		http_conn_response(c);
		return;
	}
	memset(line, 0, sizeof(line));
	if (info->n_added < 13 ||
	    evbuffer_ptr_set(buf, &pos, info->orig_size, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(buf, &pos, line, 13) != 13 ||
	    !status_line_parse(line, &major, &minor, &status))
		return; /* not a status line: nothing libevent writes on its own */
	if (status == 100)
		return;

	rejection_describe(w->srv, c, status, &code, msg, sizeof(msg));
	body = http_error_json(code, msg);
	tl_rewriting = true;
	/* keep what was queued before libevent's status line, drop the line */
	if ((tmp = evbuffer_new()) != NULL) {
		evbuffer_add_buffer(tmp, buf);
		evbuffer_remove_buffer(tmp, buf, info->orig_size);
		evbuffer_free(tmp);
	}
	evbuffer_add_printf(buf,
	    "HTTP/%d.%d %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n%s",
	    major, minor, status, http_status_phrase(status), body != NULL ? strlen(body) : 0,
	    body != NULL ? body : "");
	/* the rest of libevent's page (headers, HTML) cannot be added any more */
	evbuffer_freeze(buf, 0);
	tl_rewriting = false;
	free(body);

	http_fd_peer(bufferevent_getfd(http_conn_bufferevent(c)), peer, sizeof(peer));
	log_info("http rejected", LOG_STR("server", w->srv->name), LOG_INT("status", status),
	    LOG_STR("peer", peer), LOG_STR("reason", code));
	http_count_request(w->srv, "-", "(rejected)", status, -1);
}
