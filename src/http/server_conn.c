/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_conn.c - each connection: its bufferevent, and the limits libevent 2.1 has no
 * hook for.
 *
 * evhttp asks http_worker_bev_cb for each accepted connection's bufferevent (socket or
 * TLS). Its input buffer gets a callback that sees every byte before evhttp parses it; at
 * the next turn of the loop, once evhttp has made its connection object, that connection
 * gets a close callback, which is where everything kept for it is released. With them:
 *
 *   - a request's body limit is its route's: the request line is read as it passes, the
 *     limit for its method and path asked of the server's body_limit function, and set on
 *     the connection before evhttp reads the headers (so evhttp's own 413 uses it);
 *   - a request must arrive in time: its headers within header_timeout of the connection,
 *     or of its first byte after the previous response; the whole request within
 *     request_timeout of its first byte. A connection too slow for either is closed
 *     (slow-loris), counted and logged as 408;
 *   - open connections are capped, in all and per client address: one over a cap is
 *     answered 503 with a JSON body and closed once that is written.
 *
 * Everything here runs on the connection's worker thread, except the per-address table,
 * which every worker shares under a mutex.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "http/server_internal.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

enum conn_phase {
	PHASE_IDLE, /* between requests, or its response is being written */
	PHASE_HEADERS, /* a request's first byte came, its headers have not ended */
	PHASE_BODY, /* its headers ended; the body is on its way */
};

struct http_conn {
	struct http_worker *w;
	struct bufferevent *bev; /* the socket or TLS bufferevent evhttp reads and writes */
	struct evhttp_connection *evcon; /* once registered */
	struct event *registered; /* the next turn of the loop: evcon exists */
	struct event *deadline;
	struct evbuffer_cb_entry *in_cb, *out_cb;
	struct evbuffer_cb_entry *drained; /* closes a refused connection once answered */
	enum conn_phase phase;
	double started; /* the request's first byte, monotonic seconds */
	size_t limit; /* the body limit of the request being read */
	char line[HTTP_MAX_PATH + 32]; /* its request line, as far as it came */
	size_t nline;
	bool line_done;
	unsigned crlf; /* how far "\r\n\r\n" has been matched at the end of what came */
	bool admitted; /* its address was counted */
	bool refused;
	bool answered; /* the refusal is queued: once the output is empty it was sent */
	bool pending; /* our response is queued and not yet written out (w->inflight) */
	bool tls; /* OpenSSL reads its socket */
	bool reading; /* conn_read_body is adding to the input */
	char ip[INET6_ADDRSTRLEN];
};

/* --- clients by address -------------------------------------------------------------------- */

#define CLIENT_BUCKETS 1024

struct client {
	struct client *next;
	unsigned conns, requests;
	char ip[INET6_ADDRSTRLEN];
};

struct http_clients {
	pthread_mutex_t mu;
	struct client *bucket[CLIENT_BUCKETS];
};

struct http_clients *
http_clients_new(void)
{
	struct http_clients *t = xcalloc(1, sizeof(*t));

	pthread_mutex_init(&t->mu, NULL);
	return t;
}

void
http_clients_free(struct http_clients *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < CLIENT_BUCKETS; i++) {
		for (struct client *c = t->bucket[i], *next; c != NULL; c = next) {
			next = c->next;
			free(c);
		}
	}
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static size_t
ip_hash(const char *ip)
{
	size_t h = 5381;

	for (; *ip != '\0'; ip++)
		h = h * 33 + (unsigned char)*ip;
	return h % CLIENT_BUCKETS;
}

/*
 * Counts one more connection (requests false) or request of ip, unless that would pass max
 * (0: no limit): true if counted. The caller holds nothing.
 */
bool
http_clients_take(struct http_clients *t, const char *ip, bool requests, unsigned max)
{
	struct client **slot = &t->bucket[ip_hash(ip)], *c;
	bool ok = true;

	pthread_mutex_lock(&t->mu);
	for (c = *slot; c != NULL && strcmp(c->ip, ip) != 0; c = c->next)
		;
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		snprintf(c->ip, sizeof(c->ip), "%s", ip);
		c->next = *slot;
		*slot = c;
	}
	if (max != 0 && (requests ? c->requests : c->conns) >= max)
		ok = false;
	else if (requests)
		c->requests++;
	else
		c->conns++;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* Counts one connection or request of ip less; forgets ip when it has none left. */
void
http_clients_release(struct http_clients *t, const char *ip, bool requests)
{
	struct client **p = &t->bucket[ip_hash(ip)], *c;

	pthread_mutex_lock(&t->mu);
	for (; (c = *p) != NULL && strcmp(c->ip, ip) != 0; p = &c->next)
		;
	if (c != NULL) {
		if (requests && c->requests > 0)
			c->requests--;
		else if (!requests && c->conns > 0)
			c->conns--;
		if (c->conns == 0 && c->requests == 0) {
			*p = c->next;
			free(c);
		}
	}
	pthread_mutex_unlock(&t->mu);
}

/* --- the request as it comes ----------------------------------------------------------------- */

static void
conn_set_limit(struct http_conn *c, size_t limit)
{
	c->limit = limit;
	if (c->evcon != NULL)
		evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)limit);
}

/* The request line is whole: the route's body limit, from method and raw path. */
static void
conn_classify(struct http_conn *c)
{
	struct http_server *s = c->w->srv;
	char *sp, *target, *end;
	size_t limit = 0;

	c->line[c->nline] = '\0';
	if ((sp = strchr(c->line, ' ')) != NULL && s->body_limit != NULL) {
		*sp = '\0';
		target = sp + 1;
		end = target + strcspn(target, " ?\r\n");
		*end = '\0';
		if (target[0] == '/')
			limit = s->body_limit(c->line, target, s->body_limit_arg);
	}
	conn_set_limit(c, limit != 0 ? limit : s->max_body);
}

static void
deadline_in(struct http_conn *c, double secs)
{
	struct timeval tv;

	if (secs < 0)
		secs = 0;
	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
	evtimer_add(c->deadline, &tv);
}

/* Watches bytes of a request's head: its request line, and the blank line that ends it. */
static void
conn_scan(struct http_conn *c, const unsigned char *p, size_t n)
{
	static const char end[] = "\r\n\r\n";
	struct http_server *s = c->w->srv;

	for (size_t i = 0; i < n && c->phase == PHASE_HEADERS; i++) {
		if (!c->line_done) {
			if (p[i] == '\n' || c->nline + 1 >= sizeof(c->line)) {
				c->line_done = true;
				conn_classify(c);
			} else {
				c->line[c->nline++] = (char)p[i];
			}
		}
		/* a bare "\n\n" ends headers for libevent too */
		if (p[i] == (unsigned char)end[c->crlf])
			c->crlf++;
		else if (p[i] == '\n' && c->crlf == 1)
			c->crlf = 4;
		else
			c->crlf = p[i] == '\r' ? 1 : 0;
		if (c->crlf == 4) {
			c->phase = PHASE_BODY;
			deadline_in(c, (double)s->request_timeout_secs - (http_now() - c->started));
		}
	}
}

/* The connection is too slow: closed, counted and logged as a 408. */
static void
conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	struct http_server *s = c->w->srv;
	char peer[INET6_ADDRSTRLEN + 16];

	(void)fd;
	(void)what;
	if (c->phase == PHASE_IDLE)
		return;
	http_fd_peer(bufferevent_getfd(c->bev), peer, sizeof(peer));
	log_info("http request too slow", LOG_STR("server", s->name), LOG_INT("status", 408),
	    LOG_STR("peer", peer),
	    LOG_STR("reason", c->phase == PHASE_HEADERS ? "header_timeout" : "request_timeout"),
	    LOG_INT("limit_secs",
		c->phase == PHASE_HEADERS ? s->header_timeout_secs : s->request_timeout_secs));
	http_count_request(s, "-", "(timeout)", 408, -1);
	c->phase = PHASE_IDLE;
	/* evhttp then reads the end of the stream and frees the connection as usual */
	shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
}

/* --- admission -------------------------------------------------------------------------------- */

/* The refusal is written: the connection ends (evhttp reads the end and frees it). */
static void
conn_drained_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_conn *c = arg;

	if (c->answered && info->n_deleted > 0 && evbuffer_get_length(buf) == 0)
		shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
}

/*
 * Answers 503 and closes. The status line goes out as libevent's own pages do, so
 * http_conn_output_cb makes it JSON (server_reject.c), logs and counts it.
 */
static void
conn_refuse(struct http_conn *c)
{
	c->refused = true;
	evtimer_del(c->deadline);
	c->drained = evbuffer_add_cb(bufferevent_get_output(c->bev), conn_drained_cb, c);
	bufferevent_enable(c->bev, EV_WRITE);
	bufferevent_write(c->bev, "HTTP/1.1 503 Service Unavailable\r\n\r\n", 36);
	/* (the output callback rewrote it into a JSON answer meanwhile, emptying the buffer
	 * for a moment) */
	c->answered = true;
}

/* A request's first byte: its clocks start. */
static void
conn_request_starts(struct http_conn *c, double header_secs)
{
	c->phase = PHASE_HEADERS;
	c->started = http_now();
	c->nline = 0;
	c->line_done = false;
	c->crlf = 0;
	deadline_in(c, header_secs);
}

/*
 * libevent 2.1 reads a socket HTTP_LIBEVENT_READ bytes at a time (EVBUFFER_MAX_READ), a
 * system call and a turn of the loop each: 14,000 of them for the 55 MB body of a
 * 20,000-chip publish, half a second of a core. When such a read of a body came full, the
 * rest waiting on the socket is read here, in pieces of HTTP_BODY_READ, up to
 * HTTP_BODY_READ_TURN a turn (the worker's other connections wait meanwhile). A TLS
 * connection's socket is OpenSSL's to read. An end of stream or an error is left for
 * libevent's next read, which sees it again.
 */
static void
conn_read_body(struct http_conn *c, struct evbuffer *buf)
{
	int fd = bufferevent_getfd(c->bev);
	struct evbuffer_iovec v;
	size_t total = 0;
	ssize_t n;

	c->reading = true;
	while (total < HTTP_BODY_READ_TURN &&
	    evbuffer_reserve_space(buf, HTTP_BODY_READ, &v, 1) == 1) {
		if ((n = recv(fd, v.iov_base, v.iov_len, MSG_DONTWAIT)) <= 0)
			break;
		v.iov_len = (size_t)n;
		if (evbuffer_commit_space(buf, &v, 1) != 0)
			break;
		total += (size_t)n;
	}
	c->reading = false;
}

/*
 * Scans the n bytes of buf from offset from as a request's head, while it lasts: once the
 * headers end, the rest is body (or the next request, scanned once this one is answered).
 */
static void
conn_scan_buffer(struct http_conn *c, struct evbuffer *buf, size_t from, size_t n)
{
	struct evbuffer_ptr pos;
	unsigned char piece[2048];
	ev_ssize_t got;

	if (c->phase != PHASE_HEADERS || evbuffer_ptr_set(buf, &pos, from, EVBUFFER_PTR_SET) != 0)
		return;
	for (size_t off = 0; off < n && c->phase == PHASE_HEADERS; off += (size_t)got) {
		got = evbuffer_copyout_from(
		    buf, &pos, piece, n - off < sizeof(piece) ? n - off : sizeof(piece));
		if (got <= 0 || evbuffer_ptr_set(buf, &pos, (size_t)got, EVBUFFER_PTR_ADD) != 0)
			break;
		conn_scan(c, piece, (size_t)got);
	}
}

/* Input callback of every connection: runs as bytes arrive, before evhttp reads them. */
static void
conn_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct http_conn *c = arg;

	if (info->n_added == 0)
		return;
	if (c->refused) {
		evbuffer_drain(buf, evbuffer_get_length(buf));
		return;
	}
	if (c->reading)
		return; /* conn_read_body's own bytes: body */
	if (c->phase == PHASE_IDLE)
		conn_request_starts(c, (double)c->w->srv->header_timeout_secs);
	/* the new bytes are the buffer's last n_added */
	conn_scan_buffer(c, buf, info->orig_size, info->n_added);
	if (c->phase == PHASE_BODY && !c->tls && info->n_added >= HTTP_LIBEVENT_READ)
		conn_read_body(c, buf);
}

/* The response is out, or will never be: one less for a stopping worker to wait for. */
static void
conn_settled(struct http_conn *c)
{
	struct http_worker *w = c->w;

	if (!c->pending)
		return;
	c->pending = false;
	if (w->inflight > 0)
		w->inflight--;
	if (w->stopping && w->inflight == 0)
		event_base_loopbreak(w->base);
}

void
http_conn_written(struct http_conn *c)
{
	conn_settled(c);
}

void
http_conn_response(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n;

	if (!c->pending) {
		c->pending = true;
		c->w->inflight++;
	}
	/* the request was read and answered: the next one starts the clocks again, and its
	 * limit is the default until its request line is seen */
	c->phase = PHASE_IDLE;
	evtimer_del(c->deadline);
	conn_set_limit(c, c->w->srv->max_body);
	/* a request pipelined behind it came with it and waits unread: it is the next */
	if (!c->refused && (n = evbuffer_get_length(in)) > 0) {
		conn_request_starts(c, (double)c->w->srv->header_timeout_secs);
		conn_scan_buffer(c, in, 0, n);
	}
}

size_t
http_conn_limit(const struct http_conn *c)
{
	return c->limit;
}

struct bufferevent *
http_conn_bufferevent(const struct http_conn *c)
{
	return c->bev;
}

/* evhttp closes the connection: everything kept for it goes. */
static void
conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg;
	struct http_server *s = c->w->srv;

	(void)evcon;
	/* evhttp drains the buffers after this: no callback of ours may run on them */
	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
	evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
	if (c->drained != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->drained);
	if (c->ip[0] != '\0')
		http_clients_release(s->clients, c->ip, false);
	/* a client that closed before reading all of our response */
	conn_settled(c);
	atomic_fetch_sub(&s->nconns, 1);
	http_balance_closed(c->w);
	event_free(c->deadline);
	event_free(c->registered);
	free(c);
}

/*
 * The turn of the loop after the connection was accepted: evhttp has made its connection
 * object (the bufferevent's callback argument), which now tells us when it closes; the
 * client's address is known: is there room for it?
 */
static void
conn_registered_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	struct http_server *s = c->w->srv;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	void *evcon = NULL;

	(void)fd;
	(void)what;
	bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
	c->evcon = evcon;
	evhttp_connection_set_closecb(c->evcon, conn_closed_cb, c);
	conn_set_limit(c, c->limit);
	if (atomic_load(&s->nconns) > (int)s->max_connections) {
		conn_refuse(c);
		return;
	}
	if (getpeername(bufferevent_getfd(c->bev), (struct sockaddr *)&ss, &sl) != 0)
		snprintf(c->ip, sizeof(c->ip), "unknown");
	else
		http_sockaddr_ip((struct sockaddr *)&ss, c->ip, sizeof(c->ip));
	if (!http_clients_take(s->clients, c->ip, false, s->max_client_connections)) {
		c->ip[0] = '\0'; /* not counted: nothing to release */
		conn_refuse(c);
	}
}

/* --- the bufferevent evhttp asks for --------------------------------------------------------- */

/*
 * evhttp asks for each accepted connection's bufferevent: TLS or plain, watched. evhttp
 * frees it only if setting the connection up fails, which takes running out of memory or
 * descriptors before the next turn of the loop; the connection's record would then be
 * registered on a freed bufferevent, so that counts as running out of memory: abort.
 */
struct bufferevent *
http_worker_bev_cb(struct event_base *base, void *arg)
{
	struct http_worker *w = arg;
	struct http_server *s = w->srv;
	const char *lv[] = {s->name};
	struct bufferevent *bev;
	struct http_conn *c;
	bool tls = false;
	SSL *ssl;

	/* one connection per turn of the loop: the next may go to an idle worker */
	evconnlistener_disable(w->lev);
	http_balance_accepted(w);
	event_active(w->resume_ev, EV_TIMEOUT, 0);
	metric_inc(metric_get(s->m_connections, lv));

	if (s->ssl_ctx != NULL) {
		/* never NULL on the TLS port: evhttp would fall back to plain text */
		pthread_mutex_lock(&s->tls_lock);
		ssl = SSL_new(s->ssl_ctx); /* holds its context: a reload frees only the server's */
		pthread_mutex_unlock(&s->tls_lock);
		if (ssl == NULL ||
		    (bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
			 BEV_OPT_CLOSE_ON_FREE)) == NULL) {
			log_error(
			    "http out of memory for a TLS connection", LOG_STR("server", s->name));
			abort();
		}
		/* clients that close without close_notify are common and harmless here */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		tls = true;
	} else if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_error("http out of memory for a connection", LOG_STR("server", s->name));
		abort();
	}
	c = xcalloc(1, sizeof(*c));
	c->w = w;
	c->bev = bev;
	c->tls = tls;
	c->limit = s->max_body;
	if ((c->deadline = evtimer_new(base, conn_deadline_cb, c)) == NULL ||
	    (c->registered = event_new(base, -1, 0, conn_registered_cb, c)) == NULL ||
	    (c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), conn_input_cb, c)) == NULL ||
	    (c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), http_conn_output_cb, c)) ==
		NULL) {
		log_error("http out of memory for a connection", LOG_STR("server", s->name));
		abort();
	}
	atomic_fetch_add(&s->nconns, 1);
	/* its headers are due within header_timeout of now */
	conn_request_starts(c, (double)s->header_timeout_secs);
	event_active(c->registered, EV_TIMEOUT, 1);
	return bev;
}
