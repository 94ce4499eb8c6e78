/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hello.c - devid_hello: mutual TLS to a product cloud, `GET /`, and what came of it;
 * agent_https_request, the same exchange with any request (EST uses it).
 *
 * One deadline bounds the exchange: the socket is non-blocking and every wait is a poll()
 * for the time that is left. The socket is driven through a BIO of our own that sends with
 * MSG_NOSIGNAL, so a server that hangs up cannot kill the host process with SIGPIPE (a
 * library must not change the process's signal dispositions).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "devid/agent.h"
#include "internal.h"
#include "lib/x509.h"
#include "lib/banned.h"

#ifndef DEVID_VERSION
#define DEVID_VERSION "unknown"
#endif

/* how much of a refusal's body goes into the message (all of it is in r->body) */
#define REFUSAL_EXCERPT 200
/* the request line and header fields we send, and the body (an EST CSR is about 1 KiB) */
#define REQUEST_HEAD_MAX 4096
#define REQUEST_BODY_MAX 65536

/* ---- a socket BIO that never raises SIGPIPE ---------------------------------------------- */

struct sock {
	int fd;
	bool eof;
};

static int
sock_write(BIO *b, const char *buf, int n)
{
	struct sock *s = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	if ((r = send(s->fd, buf, (size_t)n, MSG_NOSIGNAL)) < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_write(b);
		return -1;
	}
	return (int)r;
}

static int
sock_read(BIO *b, char *buf, int n)
{
	struct sock *s = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	if ((r = recv(s->fd, buf, (size_t)n, 0)) < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_read(b);
		return -1;
	}
	if (r == 0)
		s->eof = true;
	return (int)r;
}

static long
sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct sock *s = BIO_get_data(b);

	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return s != NULL && s->eof;
	case BIO_C_GET_FD:
		if (s == NULL)
			return -1;
		if (ptr != NULL)
			*(int *)ptr = s->fd;
		return s->fd;
	default:
		return 0;
	}
}

static int
sock_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *sock_method;
static CRYPTO_ONCE sock_method_once = CRYPTO_ONCE_STATIC_INIT;

/* Made once per process and kept: BIOs of any thread may use it at any time. */
static void
sock_method_init(void)
{
	BIO_METHOD *m;

	if ((m = BIO_meth_new(BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "devid socket")) == NULL)
		return;
	if (!BIO_meth_set_write(m, sock_write) || !BIO_meth_set_read(m, sock_read) ||
	    !BIO_meth_set_ctrl(m, sock_ctrl) || !BIO_meth_set_create(m, sock_create)) {
		BIO_meth_free(m);
		return;
	}
	sock_method = m;
}

/* ---- the exchange ------------------------------------------------------------------------ */

struct hello {
	const char *host, *port, *ca_file;
	char where[AGENT_MAX_HOST_LEN + 16]; /* "host:port" or "[v6]:port", for messages */
	bool host_is_ip, host_is_v6;
	int64_t deadline; /* CLOCK_MONOTONIC, ms */
	int timeout_ms;
	struct sock sock;
	SSL_CTX *ctx;
	SSL *ssl;
	struct devid_hello_result *r;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sets the outcome and the reason in one go; returns the code. */
static int __attribute__((format(printf, 4, 5)))
fail(struct hello *h, enum devid_hello_outcome outcome, int code, const char *fmt, ...)
{
	va_list ap;

	h->r->outcome = outcome;
	h->r->error.code = code;
	va_start(ap, fmt);
	vsnprintf(h->r->error.msg, sizeof(h->r->error.msg), fmt, ap);
	va_end(ap);
	return code;
}

/* Waits until fd is ready for events or the deadline passes; `doing` names the step. */
static int
wait_fd(struct hello *h, short events, const char *doing)
{
	struct pollfd p = {.fd = h->sock.fd, .events = events};
	int64_t left;
	int n;

	for (;;) {
		if ((left = h->deadline - now_ms()) <= 0)
			return fail(h, DEVID_HELLO_CONNECT_FAILED, DEVID_EIO,
			    "%s: timed out after %d ms while %s", h->where, h->timeout_ms, doing);
		if ((n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left)) > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return fail(h, DEVID_HELLO_CONNECT_FAILED, DEVID_EIO, "%s: poll: %s",
			    h->where, strerror(errno));
	}
}

/*
 * Connects a non-blocking socket to one address. Returns 0 with h->sock.fd set; 1 when this
 * address failed (why in last), to try the next; or a negative code (timeout, outcome set).
 */
static int
try_address(struct hello *h, const struct addrinfo *ai, char *last, size_t lastsz)
{
	int fd, err = 0;
	socklen_t len = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		snprintf(last, lastsz, "socket: %s", strerror(errno));
		return 1;
	}
	h->sock.fd = fd;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno == EINPROGRESS) {
		if (wait_fd(h, POLLOUT, "connecting") != 0)
			return h->r->error.code;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == 0)
			return 0;
	} else {
		err = errno;
	}
	snprintf(last, lastsz, "%s", strerror(err));
	close(fd);
	h->sock.fd = -1;
	return 1;
}

/* Connects to the first address of host:port that answers. */
static int
tcp_connect(struct hello *h)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
	char last[200] = "no address";
	int rc;

	if ((rc = getaddrinfo(h->host, h->port, &hints, &res)) != 0)
		return fail(h, DEVID_HELLO_CONNECT_FAILED, DEVID_EIO, "%s: cannot resolve: %s",
		    h->where, gai_strerror(rc));
	rc = 1;
	for (ai = res; ai != NULL && rc == 1; ai = ai->ai_next)
		rc = try_address(h, ai, last, sizeof(last));
	freeaddrinfo(res);
	if (rc == 1)
		rc = fail(h, DEVID_HELLO_CONNECT_FAILED, DEVID_EIO, "cannot connect to %s: %s",
		    h->where, last);
	return rc;
}

/* The TLS alerts a server sends when it does not accept the client's certificate. */
static bool
alert_is_about_our_cert(int alert)
{
	switch (alert) {
	case SSL_AD_BAD_CERTIFICATE:
	case SSL_AD_UNSUPPORTED_CERTIFICATE:
	case SSL_AD_CERTIFICATE_REVOKED:
	case SSL_AD_CERTIFICATE_EXPIRED:
	case SSL_AD_CERTIFICATE_UNKNOWN:
	case SSL_AD_UNKNOWN_CA:
	case SSL_AD_ACCESS_DENIED:
	case SSL_AD_CERTIFICATE_REQUIRED:
		return true;
	default:
		return false;
	}
}

/* Reports an SSL_ERROR_SSL: our verification of the server, an alert from it, or other. */
static int
tls_failed(struct hello *h, const char *doing)
{
	unsigned long err = ERR_peek_error();
	long vr = SSL_get_verify_result(h->ssl);
	const char *reason = err != 0 ? ERR_reason_error_string(err) : NULL;
	char rbuf[64];
	int rc;

	if (reason == NULL) {
		snprintf(rbuf, sizeof(rbuf), "OpenSSL error 0x%lx", err);
		reason = rbuf;
	}
	if (vr != X509_V_OK)
		rc = fail(h, DEVID_HELLO_TLS_FAILED, DEVID_ECRYPTO,
		    "TLS handshake with %s failed: server certificate verification failed "
		    "against %s: %s",
		    h->where, h->ca_file, X509_verify_cert_error_string(vr));
	else if (ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) > SSL_AD_REASON_OFFSET &&
	    alert_is_about_our_cert(ERR_GET_REASON(err) - SSL_AD_REASON_OFFSET))
		rc = fail(h, DEVID_HELLO_TLS_FAILED, DEVID_ECRYPTO,
		    "TLS handshake with %s failed: the server did not accept the device "
		    "certificate: %s",
		    h->where, reason);
	else
		rc = fail(h, DEVID_HELLO_TLS_FAILED, DEVID_ECRYPTO,
		    "TLS with %s failed while %s: %s", h->where, doing, reason);
	ERR_clear_error();
	return rc;
}

/*
 * Runs one SSL operation until it is done, waiting on the socket as OpenSSL asks.
 * Returns the operation's positive result, 0 for a clean end of stream (reads), or a
 * negative DEVID_E* code with the outcome set.
 */
enum ssl_op { OP_CONNECT, OP_WRITE, OP_READ };

static int
ssl_run(struct hello *h, enum ssl_op op, void *buf, int n, const char *doing)
{
	for (;;) {
		int r, err;

		ERR_clear_error();
		errno = 0;
		switch (op) {
		case OP_CONNECT:
			r = SSL_connect(h->ssl);
			break;
		case OP_WRITE:
			r = SSL_write(h->ssl, buf, n);
			break;
		default:
			r = SSL_read(h->ssl, buf, n);
			break;
		}
		if (r > 0)
			return r;
		switch ((err = SSL_get_error(h->ssl, r))) {
		case SSL_ERROR_WANT_READ:
			if (wait_fd(h, POLLIN, doing) != 0)
				return h->r->error.code;
			break;
		case SSL_ERROR_WANT_WRITE:
			if (wait_fd(h, POLLOUT, doing) != 0)
				return h->r->error.code;
			break;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		case SSL_ERROR_SSL:
			return tls_failed(h, doing);
		case SSL_ERROR_SYSCALL:
			if (op == OP_READ && errno == 0)
				return 0; /* an end of stream without close_notify */
			return fail(h, DEVID_HELLO_CONNECT_FAILED, DEVID_EIO, "%s: %s while %s",
			    h->where, errno != 0 ? strerror(errno) : "the connection closed",
			    doing);
		default:
			return fail(h, DEVID_HELLO_CONNECT_FAILED, DEVID_EIO,
			    "%s: TLS error %d while %s", h->where, err, doing);
		}
	}
}

static int
tls_setup(struct hello *h, const struct devid_identity *id)
{
	STACK_OF(X509) *cas = NULL;
	X509_STORE *store = NULL;
	BIO *bio;
	int rc = DEVID_ENOMEM;

	if (CRYPTO_THREAD_run_once(&sock_method_once, sock_method_init) != 1 || sock_method == NULL)
		return fail(h, DEVID_HELLO_ERROR, DEVID_ENOMEM, "TLS: out of memory");
	if ((cas = x509_load_pem_file_all(h->ca_file, &h->r->error)) == NULL) {
		rc = h->r->error.code;
		devid_error_prefix(&h->r->error, "CA file");
		h->r->outcome = DEVID_HELLO_ERROR;
		goto out;
	}
	if ((store = x509_store_new(cas, &h->r->error)) == NULL) {
		rc = h->r->error.code;
		h->r->outcome = DEVID_HELLO_ERROR;
		goto out;
	}
	if ((h->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		rc = fail(h, DEVID_HELLO_ERROR, DEVID_ENOMEM, "TLS: out of memory");
		goto out;
	}
	SSL_CTX_set_cert_store(h->ctx, store);
	store = NULL;
	SSL_CTX_set_verify(h->ctx, SSL_VERIFY_PEER, NULL);
	/* a close without close_notify ends a read like one with it: the framing decides */
	SSL_CTX_set_options(h->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_set_min_proto_version(h->ctx, TLS1_2_VERSION) != 1) {
		rc = fail(h, DEVID_HELLO_ERROR, DEVID_EINTERNAL, "TLS: cannot require TLS 1.2");
		goto out;
	}
	/* without an identity the server sees no client certificate (TPM enrollment) */
	if (id != NULL &&
	    (SSL_CTX_use_certificate(h->ctx, devid_identity_get0_cert(id)) != 1 ||
		SSL_CTX_use_PrivateKey(h->ctx, devid_identity_get0_pkey(id)) != 1 ||
		SSL_CTX_set1_chain(h->ctx, devid_identity_get0_chain(id)) != 1)) {
		rc = fail(h, DEVID_HELLO_ERROR, DEVID_EINVAL,
		    "TLS: cannot use the device certificate and key: %s",
		    ERR_reason_error_string(ERR_peek_error()) != NULL
			? ERR_reason_error_string(ERR_peek_error())
			: "unknown reason");
		goto out;
	}
	if ((h->ssl = SSL_new(h->ctx)) == NULL || (bio = BIO_new(sock_method)) == NULL) {
		rc = fail(h, DEVID_HELLO_ERROR, DEVID_ENOMEM, "TLS: out of memory");
		goto out;
	}
	BIO_set_data(bio, &h->sock);
	SSL_set_bio(h->ssl, bio, bio);
	/* the server must be the host we asked for: its IP address or its DNS name */
	if (h->host_is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(h->ssl), h->host) != 1) {
			rc = fail(
			    h, DEVID_HELLO_ERROR, DEVID_EINVAL, "TLS: bad IP address %s", h->host);
			goto out;
		}
	} else {
		SSL_set_hostflags(h->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(h->ssl, h->host) != 1 ||
		    SSL_set_tlsext_host_name(h->ssl, h->host) != 1) {
			rc = fail(
			    h, DEVID_HELLO_ERROR, DEVID_EINVAL, "TLS: bad host name %s", h->host);
			goto out;
		}
	}
	rc = 0;
out:
	ERR_clear_error();
	X509_STORE_free(store);
	sk_X509_pop_free(cas, X509_free);
	return rc;
}

/*
 * Sends the request and reads the response into resp.
 *
 * A write that fails does not end the exchange at once: a server that rejects the device's
 * certificate after a TLS 1.3 handshake sends an alert and hangs up, and its reset can fail
 * our write before we read anything, yet the alert (or an early answer) is still there to
 * read. The write's error stands only if reading finds nothing better.
 */
static int
exchange(struct hello *h, const struct agent_request *r, struct agent_http_response *resp)
{
	struct dynbuf req, raw;
	struct devid_error write_err;
	uint8_t buf[16384];
	bool eof = false, write_failed = false;
	int rc, n;

	dynbuf_init(&req, REQUEST_HEAD_MAX + r->body_len);
	dynbuf_init(&raw, AGENT_MAX_RESPONSE_RAW);
	rc = dynbuf_addf(&req,
	    h->host_is_v6 ? "%s %s HTTP/1.1\r\nHost: [%s]:%s\r\n"
			  : "%s %s HTTP/1.1\r\nHost: %s:%s\r\n",
	    r->method, r->path, h->host, h->port);
	if (rc == 0)
		rc = dynbuf_addstr(&req,
		    "User-Agent: devid-agent/" DEVID_VERSION "\r\n"
		    "Connection: close\r\n");
	if (rc == 0 && r->headers != NULL)
		rc = dynbuf_addstr(&req, r->headers);
	if (rc == 0 && r->body != NULL)
		rc = dynbuf_addf(&req, "Content-Length: %zu\r\n", r->body_len);
	if (rc == 0)
		rc = dynbuf_addstr(&req, "\r\n");
	if (rc == 0 && r->body != NULL)
		rc = dynbuf_add(&req, r->body, r->body_len);
	if (rc != 0) {
		rc = fail(h, DEVID_HELLO_ERROR, rc, "request: %s", devid_strerror(rc));
		goto out;
	}
	if ((rc = ssl_run(h, OP_WRITE, req.p, (int)req.len, "sending the request")) == 0)
		rc = fail(h, DEVID_HELLO_CONNECT_FAILED, DEVID_EIO,
		    "%s: the connection closed while sending the request", h->where);
	if (rc < 0) {
		if (h->r->outcome != DEVID_HELLO_CONNECT_FAILED)
			goto out;
		write_err = h->r->error;
		write_failed = true;
	}
	for (;;) {
		if ((n = ssl_run(h, OP_READ, buf, (int)sizeof(buf), "reading the response")) < 0) {
			rc = n;
			goto out;
		}
		eof = n == 0;
		if (n > 0 && (rc = dynbuf_add(&raw, buf, (size_t)n)) != 0) {
			if (rc == DEVID_ENOMEM) {
				rc = fail(h, DEVID_HELLO_ERROR, rc, "response: out of memory");
				goto out;
			}
			/* keep what fits: the parser may find the response complete in it */
			dynbuf_add(&raw, buf, raw.max - raw.len);
		}
		rc = agent_http_response_parse(raw.p, raw.len, eof, resp, &h->r->error);
		if (rc == 0)
			break;
		if (rc == AGENT_HTTP_NEED_MORE && raw.len < raw.max)
			continue;
		if (rc == AGENT_HTTP_NEED_MORE)
			rc = fail(h, DEVID_HELLO_CONNECT_FAILED, DEVID_EIO,
			    "%s: response longer than %d bytes", h->where, AGENT_MAX_RESPONSE_RAW);
		else if (rc == DEVID_ENOMEM)
			h->r->outcome = DEVID_HELLO_ERROR;
		else if (raw.len == 0 && eof)
			/* the server let the handshake finish, then hung up: a refusal */
			rc = fail(h, DEVID_HELLO_REFUSED, DEVID_EAUTH,
			    "refused by %s: it closed the connection without an HTTP response",
			    h->where);
		else {
			devid_error_prefix(&h->r->error, "%s", h->where);
			h->r->outcome = DEVID_HELLO_CONNECT_FAILED;
			rc = h->r->error.code = DEVID_EIO;
		}
		goto out;
	}
	rc = 0;
out:
	if (rc != 0 && write_failed && h->r->outcome != DEVID_HELLO_TLS_FAILED &&
	    h->r->outcome != DEVID_HELLO_ERROR) {
		h->r->outcome = DEVID_HELLO_CONNECT_FAILED;
		h->r->error = write_err;
		rc = write_err.code;
	}
	dynbuf_release(&req);
	dynbuf_release(&raw);
	return rc;
}

void
devid_hello_result_init(struct devid_hello_result *r)
{
	memset(r, 0, sizeof(*r));
	r->outcome = DEVID_HELLO_ERROR;
	devid_error_clear(&r->error);
}

void
devid_hello_result_release(struct devid_hello_result *r)
{
	if (r == NULL)
		return;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

int
agent_https_request(const struct devid_identity *id, const char *host, const char *port,
    const char *ca_file, int timeout_ms, const struct agent_request *req,
    struct devid_hello_result *r)
{
	struct hello h = {.host = host, .port = port, .ca_file = ca_file, .sock.fd = -1, .r = r};
	struct agent_http_response resp;
	unsigned char addr[16];
	char excerpt[REFUSAL_EXCERPT + 4];
	int rc;

	devid_hello_result_release(r);
	devid_hello_result_init(r);
	dynbuf_init(&resp.body, req != NULL ? req->max_body : 0);
	if (host == NULL || port == NULL || ca_file == NULL || timeout_ms <= 0 || req == NULL ||
	    req->method == NULL || req->path == NULL || req->body_len > REQUEST_BODY_MAX ||
	    strlen(host) > AGENT_MAX_HOST_LEN || strlen(port) > 5) {
		rc = fail(&h, DEVID_HELLO_ERROR, DEVID_EINVAL,
		    "hello: missing host, port or CA file, or a bad timeout");
		goto out;
	}
	h.timeout_ms = timeout_ms;
	h.host_is_v6 = inet_pton(AF_INET6, host, addr) == 1;
	h.host_is_ip = h.host_is_v6 || inet_pton(AF_INET, host, addr) == 1;
	snprintf(h.where, sizeof(h.where), h.host_is_v6 ? "[%s]:%s" : "%s:%s", host, port);
	ERR_clear_error();
	if ((rc = tls_setup(&h, id)) != 0)
		goto out;

	h.deadline = now_ms() + timeout_ms;
	if ((rc = tcp_connect(&h)) != 0)
		goto out;
	if ((rc = ssl_run(&h, OP_CONNECT, NULL, 0, "in the TLS handshake")) <= 0) {
		if (rc == 0)
			rc = fail(&h, DEVID_HELLO_TLS_FAILED, DEVID_ECRYPTO,
			    "TLS handshake with %s failed: the server closed the connection",
			    h.where);
		goto out;
	}
	snprintf(r->tls_version, sizeof(r->tls_version), "%s", SSL_get_version(h.ssl));
	if ((rc = exchange(&h, req, &resp)) != 0)
		goto out;

	r->http_status = resp.status;
	r->body_len = resp.body.len;
	r->body_truncated = resp.truncated;
	r->body = (char *)dynbuf_detach(&resp.body, NULL);
	if (resp.status == (req->ok_status != 0 ? req->ok_status : 200)) {
		r->outcome = DEVID_HELLO_ADMITTED;
		devid_error_clear(&r->error);
		rc = 0;
	} else {
		agent_printable((const uint8_t *)r->body, r->body_len, REFUSAL_EXCERPT, excerpt,
		    sizeof(excerpt));
		rc = fail(&h, DEVID_HELLO_REFUSED, DEVID_EAUTH, "refused by %s: HTTP %d%s%s%s%s",
		    h.where, resp.status, resp.reason[0] != '\0' ? " " : "", resp.reason,
		    excerpt[0] != '\0' ? ": " : "", excerpt);
	}
	/* a polite close; its result changes nothing */
	ERR_clear_error();
	SSL_shutdown(h.ssl);
out:
	ERR_clear_error();
	dynbuf_release(&resp.body);
	SSL_free(h.ssl);
	SSL_CTX_free(h.ctx);
	if (h.sock.fd >= 0)
		close(h.sock.fd);
	return rc;
}

int
devid_hello(const struct devid_identity *id, const char *host, const char *port,
    const char *ca_file, int timeout_ms, struct devid_hello_result *r)
{
	static const struct agent_request get = {
	    .method = "GET",
	    .path = "/",
	    .headers = "Accept: */*\r\n",
	    .max_body = DEVID_HELLO_MAX_BODY,
	};

	if (id == NULL) {
		devid_hello_result_release(r);
		devid_hello_result_init(r);
		return devid_error_set(&r->error, DEVID_EINVAL, "hello: missing identity");
	}
	return agent_https_request(id, host, port, ca_file, timeout_ms, &get, r);
}
