/* SPDX-License-Identifier: Apache-2.0 */
/*
 * est.c - the EST client (RFC 7030, RFC 8951): enroll and re-enroll the identity's own key for
 * an operational certificate, and the pure parts of it (the --est URL, the certs-only
 * response body, the server's JSON error message).
 *
 * Each EST call is one mutual-TLS exchange through agent_https_request (hello.c): GET
 * .../cacerts first (RFC 7030 4.1.1: the client gets the CA certificates before it enrolls),
 * then POST .../simpleenroll or .../simplereenroll. The server is authenticated by --ca; what
 * it answers is still outside input and is parsed as such.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "devid/agent.h"
#include "internal.h"
#include "lib/base64.h"
#include "lib/jsonscan.h"
#include "lib/limits.h"
#include "lib/x509.h"
#include "lib/banned.h"

#define WELL_KNOWN "/.well-known/est/"
/* RFC 7030 4.2.1: base64 in lines; 64 characters as in PEM */
#define CSR_LINE 64
/* how much of a refusal's body or message goes into r->error */
#define MESSAGE_EXCERPT 200

/* ---- the --est URL ------------------------------------------------------------------------ */

static bool
is_unreserved(unsigned char c)
{
	/* RFC 3986 2.3 */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_' || c == '~';
}

int
agent_est_url_parse(const char *url, struct agent_est_url *out, struct devid_error *e)
{
	char auth[AGENT_MAX_HOST_LEN + 16];
	const char *a, *path;
	size_t alen, plen, seg;
	bool has_port;

	memset(out, 0, sizeof(*out));
	if (url == NULL || url[0] == '\0')
		return devid_error_set(e, DEVID_EINVAL, "EST URL: missing");
	if (strncasecmp(url, "https://", 8) != 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "EST URL: expected https://HOST[:PORT][/PREFIX] (RFC 7030 3.2.2: EST runs over "
		    "HTTPS)");
	a = url + 8;
	alen = strcspn(a, "/?#");
	/* the user info of a URL may hold a password: never quote it */
	if (memchr(a, '@', alen) != NULL)
		return devid_error_set(e, DEVID_EINVAL, "EST URL: user information is not allowed");
	if (alen == 0)
		return devid_error_set(e, DEVID_EINVAL, "EST URL \"%s\": no host", url);
	if (alen > AGENT_MAX_HOST_LEN + 8)
		return devid_error_set(e, DEVID_EINVAL, "EST URL: host and port longer than %d",
		    AGENT_MAX_HOST_LEN + 8);
	memcpy(auth, a, alen);
	auth[alen] = '\0';
	if (auth[0] == '[') {
		const char *close = strchr(auth, ']');

		has_port = close != NULL && close[1] == ':';
	} else {
		has_port = strchr(auth, ':') != NULL;
	}
	if (!has_port)
		memcpy(auth + alen, ":443", 5);
	if (agent_split_host_port(auth, out->host, out->port, NULL) != 0 ||
	    (has_port && auth[alen - 1] == ':'))
		return devid_error_set(e, DEVID_EINVAL,
		    "EST URL \"%s\": expected https://HOST[:PORT][/PREFIX], HOST a DNS name, an "
		    "IPv4 "
		    "address or [IPv6], PORT 1 to 65535",
		    url);

	path = a + alen;
	plen = strlen(path);
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	if (plen > AGENT_MAX_EST_PREFIX)
		return devid_error_set(
		    e, DEVID_EINVAL, "EST URL: path prefix longer than %d", AGENT_MAX_EST_PREFIX);
	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)path[i];

		if (c == '?' || c == '#')
			return devid_error_set(e, DEVID_EINVAL,
			    "EST URL \"%s\": no query or fragment (the agent appends %s...)", url,
			    WELL_KNOWN);
		if (!is_unreserved(c) && strchr("/%+,;=@:!$&'()*", c) == NULL)
			return devid_error_set(e, DEVID_EINVAL,
			    "EST URL: character 0x%02x is not allowed in the path", c);
	}
	/* every segment of the prefix is a name: no "", "." or ".." */
	for (size_t i = 0; i < plen; i += seg + 1) {
		seg = strcspn(path + i + 1, "/");
		if (seg > plen - i - 1)
			seg = plen - i - 1;
		if (seg == 0 || (seg == 1 && path[i + 1] == '.') ||
		    (seg == 2 && path[i + 1] == '.' && path[i + 2] == '.'))
			return devid_error_set(e, DEVID_EINVAL,
			    "EST URL \"%s\": empty, \".\" or \"..\" path segment", url);
	}
	memcpy(out->prefix, path, plen);
	out->prefix[plen] = '\0';
	return 0;
}

bool
agent_est_label_ok(const char *label)
{
	size_t n;

	if (label == NULL || (n = strlen(label)) == 0 || n > AGENT_MAX_EST_LABEL ||
	    strcmp(label, ".") == 0 || strcmp(label, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_unreserved((unsigned char)label[i]))
			return false;
	return true;
}

/* ---- the response body: base64 of a certs-only PKCS#7 ------------------------------------- */

int
agent_est_certs_parse(const uint8_t *body, size_t len, STACK_OF(X509) **out, struct devid_error *e)
{
	STACK_OF(X509) *certs = NULL, *in;
	const unsigned char *q;
	uint8_t *der = NULL;
	PKCS7 *p7 = NULL;
	size_t derlen;
	int rc = DEVID_EINVAL, n;

	*out = NULL;
	if (len > AGENT_MAX_EST_BODY) {
		rc = devid_error_set(
		    e, DEVID_ELIMIT, "EST response: %zu bytes, limit %d", len, AGENT_MAX_EST_BODY);
		goto out;
	}
	if ((rc = b64_decode((const char *)body, len, B64_ALLOW_WS, &der, &derlen)) != 0) {
		if (rc == DEVID_ENOMEM)
			devid_error_set(e, rc, "EST response: out of memory");
		else
			devid_error_set(e, rc, "EST response: not base64 (RFC 8951 3)");
		goto out;
	}
	rc = DEVID_EINVAL;
	if (derlen == 0) {
		devid_error_set(e, rc, "EST response: empty body (RFC 7030 4.1.3)");
		goto out;
	}
	q = der;
	ERR_clear_error();
	if ((p7 = d2i_PKCS7(NULL, &q, (long)derlen)) == NULL) {
		devid_error_ssl(e, rc, "EST response: not a DER PKCS#7 (RFC 7030 4.1.3)");
		goto out;
	}
	if (q != der + derlen) {
		devid_error_set(
		    e, rc, "EST response: %zu bytes after the PKCS#7", derlen - (size_t)(q - der));
		goto out;
	}
	if (!PKCS7_type_is_signed(p7) || p7->d.sign == NULL) {
		devid_error_set(e, rc,
		    "EST response: a PKCS#7 %s, not signed-data (certs-only, RFC 7030 4.1.3)",
		    OBJ_nid2sn(OBJ_obj2nid(p7->type)));
		goto out;
	}
	in = p7->d.sign->cert;
	if ((n = in != NULL ? sk_X509_num(in) : 0) <= 0) {
		devid_error_set(e, rc, "EST response: no certificates in the PKCS#7");
		goto out;
	}
	if (n > AGENT_MAX_EST_CERTS) {
		rc = devid_error_set(e, DEVID_ELIMIT, "EST response: %d certificates, limit %d", n,
		    AGENT_MAX_EST_CERTS);
		goto out;
	}
	if ((certs = sk_X509_new_null()) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "EST response: out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		unsigned char *cder = NULL;
		char what[48];
		X509 *x;
		int clen;

		/* the bytes as received (OpenSSL keeps them), through devid's own checks */
		if ((clen = i2d_X509(sk_X509_value(in, i), &cder)) <= 0) {
			rc =
			    devid_error_ssl(e, DEVID_EINVAL, "EST response: certificate %d", i + 1);
			goto out;
		}
		snprintf(what, sizeof(what), "EST response: certificate %d", i + 1);
		x = x509_from_der(cder, (size_t)clen, what, e);
		OPENSSL_free(cder);
		if (x == NULL) {
			rc = e != NULL && e->code != 0 ? e->code : DEVID_EINVAL;
			goto out;
		}
		if (!sk_X509_push(certs, x)) {
			X509_free(x);
			rc = devid_error_set(e, DEVID_ENOMEM, "EST response: out of memory");
			goto out;
		}
	}
	*out = certs;
	certs = NULL;
	rc = 0;
out:
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	PKCS7_free(p7);
	free(der);
	return rc;
}

/* ---- the server's JSON error message ------------------------------------------------------- */

/* Decodes the string at p[i] == '"' (ending before end) into out, made printable. */
static void
json_string_copy(const uint8_t *p, size_t i, size_t end, char *out, size_t outsz)
{
	uint8_t buf[MESSAGE_EXCERPT + 1];
	size_t n = 0;

	for (i++; i + 1 < end && n < sizeof(buf); i++) {
		uint8_t c = p[i];

		if (c == '\\' && i + 2 < end) {
			c = p[++i];
			switch (c) {
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				c = ' ';
				break;
			case 'u': {
				int v = 0, d;

				for (int k = 1; k <= 4 && i + k + 1 < end && v >= 0; k++)
					v = (d = hex_digit(p[i + k])) < 0 ? -1 : v << 4 | d;
				/* ASCII as itself; anything else (and a broken escape) as '?' */
				c = v >= 0x20 && v < 0x7f ? (uint8_t)v : '?';
				if (i + 5 < end)
					i += 4;
				break;
			}
			default: /* '"', '\\', '/' and anything else as itself */
				break;
			}
		}
		buf[n++] = c;
	}
	/* n == sizeof(buf) means the string went on: agent_printable marks the cut */
	agent_printable(buf, n, MESSAGE_EXCERPT, out, outsz);
}

bool
agent_json_get_string(const uint8_t *p, size_t len, const char *name, char *out, size_t outsz)
{
	size_t i, k, end, nlen = strlen(name);

	if (outsz > 0)
		out[0] = '\0';
	i = jsonscan_ws(p, len, 0);
	if (i >= len || p[i] != '{')
		return false;
	for (i = jsonscan_ws(p, len, i + 1); i < len && p[i] == '"';) {
		bool match;

		if ((k = jsonscan_string_end(p, len, i)) == 0)
			return false;
		match = k - i - 2 == nlen && memcmp(p + i + 1, name, nlen) == 0;
		i = jsonscan_ws(p, len, k);
		if (i >= len || p[i] != ':')
			return false;
		i = jsonscan_ws(p, len, i + 1);
		if ((end = jsonscan_value_end(p, len, i)) == 0)
			return false;
		if (match) {
			if (p[i] != '"')
				return false;
			json_string_copy(p, i, end, out, outsz);
			return true;
		}
		i = jsonscan_ws(p, len, end);
		if (i >= len || p[i] != ',')
			return false;
		i = jsonscan_ws(p, len, i + 1);
	}
	return false;
}

/* ---- renewal time and the output file ------------------------------------------------------ */

static int
asn1_time_to_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

bool
devid_renew_due(X509 *cert, time_t now, time_t *due_at)
{
	time_t nb, na, due;

	if (due_at != NULL)
		*due_at = now;
	if (cert == NULL || asn1_time_to_time(X509_get0_notBefore(cert), &nb) != 0 ||
	    asn1_time_to_time(X509_get0_notAfter(cert), &na) != 0 || na <= nb)
		return true;
	due = na - (na - nb) / 3;
	if (due_at != NULL)
		*due_at = due;
	return now >= due;
}

/* fsync()s the directory that holds path, so that a rename in it is durable. */
static void
sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return;
	(void)fsync(fd);
	close(fd);
}

int
devid_cert_write_pem(const char *path, X509 *cert, X509 *ca, struct devid_error *e)
{
	char tmp[PATH_MAX];
	FILE *f = NULL;
	int fd = -1, rc = DEVID_EIO;
	bool made = false;

	if (path == NULL || path[0] == '\0' || cert == NULL)
		return devid_error_set(e, DEVID_EINVAL, "output: missing path or certificate");
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp))
		return devid_error_set(e, DEVID_EINVAL, "output: path too long");
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		devid_error_set(e, rc, "%s: cannot create a temporary file beside it: %s", path,
		    strerror(errno));
		goto out;
	}
	made = true;
	if (fchmod(fd, 0644) != 0 || (f = fdopen(fd, "w")) == NULL) {
		devid_error_set(e, rc, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1; /* f owns it */
	ERR_clear_error();
	if (PEM_write_X509(f, cert) != 1 || (ca != NULL && PEM_write_X509(f, ca) != 1) ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0) {
		devid_error_set(e, rc, "%s: cannot write: %s", tmp,
		    errno != 0 ? strerror(errno) : "PEM encoding failed");
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		devid_error_set(e, rc, "%s: cannot write: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		devid_error_set(
		    e, rc, "%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
		goto out;
	}
	made = false;
	sync_dir_of(path);
	rc = 0;
out:
	ERR_clear_error();
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (made)
		unlink(tmp);
	return rc;
}

/* ---- the EST exchanges --------------------------------------------------------------------- */

void
devid_est_result_init(struct devid_est_result *r)
{
	memset(r, 0, sizeof(*r));
	r->outcome = DEVID_EST_ERROR;
	devid_error_clear(&r->error);
}

void
devid_est_result_release(struct devid_est_result *r)
{
	if (r == NULL)
		return;
	X509_free(r->cert);
	X509_free(r->ca);
	r->cert = NULL;
	r->ca = NULL;
}

struct est {
	const struct devid_identity *id;
	const struct devid_est_opts *o;
	struct agent_est_url url;
	char where[AGENT_MAX_HOST_LEN + 16]; /* "host:port" or "[v6]:port", for messages */
	char base[AGENT_MAX_EST_PREFIX + sizeof(WELL_KNOWN) + AGENT_MAX_EST_LABEL + 2];
	struct devid_est_result *r;
};

/* Sets the outcome and the reason in one go; returns the code. */
static int __attribute__((format(printf, 4, 5)))
fail(struct est *est, enum devid_est_outcome outcome, int code, const char *fmt, ...)
{
	va_list ap;

	est->r->outcome = outcome;
	est->r->error.code = code;
	va_start(ap, fmt);
	vsnprintf(est->r->error.msg, sizeof(est->r->error.msg), fmt, ap);
	va_end(ap);
	return code;
}

/* A non-200 answer: its status and what the server said, from its JSON or its body. */
static int
answered(struct est *est, const char *op, const struct devid_hello_result *hr)
{
	const uint8_t *body = (const uint8_t *)hr->body;
	char msg[MESSAGE_EXCERPT + 4], err[MESSAGE_EXCERPT + 4], said[2 * sizeof(msg) + 8];
	int s = hr->http_status;

	said[0] = '\0';
	if (body != NULL && hr->body_len > 0) {
		bool has_msg =
		    agent_json_get_string(body, hr->body_len, "message", msg, sizeof(msg));
		bool has_err = agent_json_get_string(body, hr->body_len, "error", err, sizeof(err));

		if (has_msg && has_err && msg[0] != '\0' && err[0] != '\0')
			snprintf(said, sizeof(said), ": %s (%s)", msg, err);
		else if (has_msg && msg[0] != '\0')
			snprintf(said, sizeof(said), ": %s", msg);
		else if (has_err && err[0] != '\0')
			snprintf(said, sizeof(said), ": %s", err);
		else {
			agent_printable(body, hr->body_len, MESSAGE_EXCERPT, msg, sizeof(msg));
			snprintf(said, sizeof(said), ": %s", msg);
		}
	}
	if (s >= 400 && s <= 499)
		return fail(est, DEVID_EST_REFUSED, DEVID_EAUTH, "%s refused by %s: HTTP %d%s", op,
		    est->where, s, said);
	if (s == 202)
		return fail(est, DEVID_EST_FAILED, DEVID_EIO,
		    "%s: %s accepted the request but has not issued a certificate (HTTP 202, "
		    "RFC 7030 4.2.3); try again later%s",
		    op, est->where, said);
	return fail(est, DEVID_EST_FAILED, DEVID_EIO, "%s failed at %s: HTTP %d%s", op, est->where,
	    s, said);
}

static enum devid_est_outcome
from_hello(enum devid_hello_outcome o)
{
	switch (o) {
	case DEVID_HELLO_TLS_FAILED:
		return DEVID_EST_TLS_FAILED;
	case DEVID_HELLO_CONNECT_FAILED:
		return DEVID_EST_CONNECT_FAILED;
	default:
		return DEVID_EST_ERROR;
	}
}

/*
 * One EST call: the request to base/op. 0 when the server answered with the request's
 * ok_status (200 unless set): *hr holds the answer (the caller releases it). Otherwise est->r
 * says why.
 */
static int
est_send(struct est *est, const char *op, const struct agent_request *tmpl, size_t max_body,
    struct devid_hello_result *hr)
{
	struct agent_request req = *tmpl;
	char path[sizeof(est->base) + 32];
	int rc;

	snprintf(path, sizeof(path), "%s%s", est->base, op);
	req.path = path;
	req.max_body = max_body;
	rc = agent_https_request(
	    est->id, est->url.host, est->url.port, est->o->ca_file, est->o->timeout_ms, &req, hr);
	est->r->http_status = hr->http_status;
	switch (hr->outcome) {
	case DEVID_HELLO_ADMITTED:
		if (hr->body_truncated)
			rc = fail(est, DEVID_EST_FAILED, DEVID_ELIMIT,
			    "%s from %s: response body longer than %zu bytes", op, est->where,
			    max_body);
		break;
	case DEVID_HELLO_REFUSED:
		if (hr->http_status != 0) {
			rc = answered(est, op, hr);
			break;
		}
		/* closed after the handshake without answering: a refusal, as for hello */
		est->r->outcome = DEVID_EST_REFUSED;
		est->r->error = hr->error;
		devid_error_prefix(&est->r->error, "%s", op);
		break;
	default:
		/* TLS or connection failure, or nothing sent: the reason is hello's */
		est->r->outcome = from_hello(hr->outcome);
		est->r->error = hr->error;
		devid_error_prefix(&est->r->error, "%s", op);
		break;
	}
	return rc;
}

/*
 * One EST call answered with certificates: the request to base/op, and the certificates of
 * its 200 answer in *certs (new). Otherwise est->r says why.
 */
static int
est_call(struct est *est, const char *op, const struct agent_request *tmpl, STACK_OF(X509) **certs)
{
	struct devid_hello_result hr;
	int rc;

	*certs = NULL;
	devid_hello_result_init(&hr);
	if ((rc = est_send(est, op, tmpl, AGENT_MAX_EST_BODY, &hr)) == 0 &&
	    (rc = agent_est_certs_parse(
		 (const uint8_t *)hr.body, hr.body_len, certs, &est->r->error)) != 0) {
		est->r->outcome = DEVID_EST_FAILED;
		devid_error_prefix(&est->r->error, "%s from %s", op, est->where);
	}
	devid_hello_result_release(&hr);
	return rc;
}

/* The CSR: the identity's key, signed by it; DER, base64 in lines of CSR_LINE. */
static int
csr_make(struct est *est, struct dynbuf *b64)
{
	X509 *cert = devid_identity_get0_cert(est->id);
	EVP_PKEY *pk = devid_identity_get0_pkey(est->id);
	const char *udid = devid_identity_get0_udid(est->id);
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	unsigned char *der = NULL;
	char *text = NULL;
	size_t n;
	int len, rc = DEVID_ENOMEM;

	ERR_clear_error();
	if ((req = X509_REQ_new()) == NULL)
		goto nomem;
	if (est->o->reenroll) {
		/* RFC 7030 4.2.2: the subject of the certificate being renewed */
		if (X509_REQ_set_subject_name(req, X509_get_subject_name(cert)) != 1)
			goto nomem;
	} else {
		if ((name = X509_NAME_new()) == NULL ||
		    X509_NAME_add_entry_by_txt(
			name, "CN", MBSTRING_ASC, (const unsigned char *)udid, -1, -1, 0) != 1 ||
		    X509_REQ_set_subject_name(req, name) != 1)
			goto nomem;
	}
	if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 || X509_REQ_set_pubkey(req, pk) != 1)
		goto nomem;
	if (X509_REQ_sign(req, pk, EVP_sha256()) <= 0) {
		rc = devid_error_ssl(
		    &est->r->error, DEVID_ECRYPTO, "CSR: cannot sign it with the device key");
		est->r->outcome = DEVID_EST_ERROR;
		goto out;
	}
	if ((len = i2d_X509_REQ(req, &der)) <= 0 || (text = b64_encode(der, (size_t)len)) == NULL)
		goto nomem;
	n = strlen(text);
	for (size_t i = 0; i < n; i += CSR_LINE) {
		size_t k = n - i < CSR_LINE ? n - i : CSR_LINE;

		if (dynbuf_add(b64, text + i, k) != 0 || dynbuf_add(b64, "\r\n", 2) != 0)
			goto nomem;
	}
	rc = 0;
	goto out;
nomem:
	rc = fail(est, DEVID_EST_ERROR, DEVID_ENOMEM, "CSR: out of memory");
out:
	ERR_clear_error();
	free(text);
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return rc;
}

/*
 * Verifies the issued certificate with every certificate from cacerts as a trust anchor
 * (RFC 7030 4.1.3), strictly and for TLS client use; *anchor receives (new reference) the
 * one it chains to.
 */
static int
issued_verify(
    struct est *est, X509 *leaf, STACK_OF(X509) *cas, STACK_OF(X509) *untrusted, X509 **anchor)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	STACK_OF(X509) *chain;
	int rc;

	*anchor = NULL;
	if ((store = x509_store_new(cas, &est->r->error)) == NULL) {
		rc = est->r->error.code;
		est->r->outcome = DEVID_EST_FAILED;
		devid_error_prefix(&est->r->error, "cacerts");
		goto out;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
		rc = fail(est, DEVID_EST_ERROR, DEVID_ENOMEM, "verification: out of memory");
		goto out;
	}
	param = X509_STORE_CTX_get0_param(ctx);
	/* the CA from cacerts is an anchor even when it is not self-signed */
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_auth_level(param, 2);
	if (X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
		rc =
		    fail(est, DEVID_EST_ERROR, DEVID_EINTERNAL, "verification: cannot set purpose");
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		rc = fail(est, DEVID_EST_FAILED, DEVID_ECRYPTO,
		    "the issued certificate does not verify against the CA from cacerts: depth "
		    "%d: %s",
		    X509_STORE_CTX_get_error_depth(ctx),
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	chain = X509_STORE_CTX_get0_chain(ctx);
	if (sk_X509_num(chain) < 2) {
		rc = fail(est, DEVID_EST_FAILED, DEVID_ECRYPTO,
		    "the issued certificate is itself one of the CA certificates from cacerts");
		goto out;
	}
	*anchor = sk_X509_value(chain, sk_X509_num(chain) - 1);
	X509_up_ref(*anchor);
	rc = 0;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

/* The start of every EST call: r reset, the options checked, the URL taken apart. */
static int
est_setup(struct est *est, const struct devid_est_opts *o, struct devid_est_result *r)
{
	int rc;

	est->o = o;
	est->r = r;
	devid_est_result_release(r);
	devid_est_result_init(r);
	if (o == NULL || o->url == NULL || o->ca_file == NULL || o->timeout_ms <= 0)
		return fail(est, DEVID_EST_ERROR, DEVID_EINVAL,
		    "EST: missing URL or CA file, or a bad timeout");
	if (o->label != NULL && !agent_est_label_ok(o->label))
		return fail(est, DEVID_EST_ERROR, DEVID_EINVAL,
		    "EST label: expected 1 to %d letters, digits, '-', '.', '_' or '~' (RFC 7030 "
		    "3.2.2)",
		    AGENT_MAX_EST_LABEL);
	if ((rc = agent_est_url_parse(o->url, &est->url, &r->error)) != 0) {
		r->outcome = DEVID_EST_ERROR;
		return rc;
	}
	snprintf(est->where, sizeof(est->where),
	    strchr(est->url.host, ':') != NULL ? "[%s]:%s" : "%s:%s", est->url.host, est->url.port);
	snprintf(est->base, sizeof(est->base), "%s" WELL_KNOWN "%s%s", est->url.prefix,
	    o->label != NULL ? o->label : "", o->label != NULL ? "/" : "");
	return 0;
}

int
devid_est_enroll(
    const struct devid_identity *id, const struct devid_est_opts *o, struct devid_est_result *r)
{
	struct est est = {.id = id, .o = o, .r = r};
	STACK_OF(X509) *cas = NULL, *got = NULL;
	struct dynbuf csr;
	struct agent_request req = {0};
	X509 *issued = NULL, *ca = NULL;
	EVP_PKEY *pk;
	int rc;

	dynbuf_init(&csr, 8192);
	if (id == NULL) {
		devid_est_result_release(r);
		devid_est_result_init(r);
		rc = fail(&est, DEVID_EST_ERROR, DEVID_EINVAL, "EST: missing identity");
		goto out;
	}
	if ((rc = est_setup(&est, o, r)) != 0)
		goto out;
	pk = devid_identity_get0_pkey(id);
	if (o->reenroll &&
	    X509_cmp_time(X509_get0_notAfter(devid_identity_get0_cert(id)), NULL) <= 0) {
		rc = fail(&est, DEVID_EST_ERROR, DEVID_EINVAL,
		    "the current certificate has expired: it cannot re-enroll; enroll again with "
		    "the birth certificate");
		goto out;
	}
	if ((rc = csr_make(&est, &csr)) != 0)
		goto out;

	/* RFC 7030 4.1: the CA certificates first */
	req.method = "GET";
	req.headers = "Accept: application/pkcs7-mime\r\n";
	if ((rc = est_call(&est, "cacerts", &req, &cas)) != 0)
		goto out;

	/* RFC 7030 4.2, RFC 8951: the CSR as base64 */
	req.method = "POST";
	req.headers = "Content-Type: application/pkcs10\r\n"
		      "Content-Transfer-Encoding: base64\r\n"
		      "Accept: application/pkcs7-mime\r\n";
	req.body = csr.p;
	req.body_len = csr.len;
	if ((rc = est_call(&est, o->reenroll ? "simplereenroll" : "simpleenroll", &req, &got)) != 0)
		goto out;

	/* the certificate for our key; the others, if any, may help the chain */
	for (int i = 0; i < sk_X509_num(got); i++) {
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(got, i)), pk) == 1) {
			issued = sk_X509_delete(got, i);
			break;
		}
	}
	ERR_clear_error();
	if (issued == NULL) {
		rc = fail(&est, DEVID_EST_FAILED, DEVID_ECRYPTO,
		    "%s: %s issued no certificate for the device's key (UDID %s)",
		    o->reenroll ? "simplereenroll" : "simpleenroll", est.where,
		    devid_identity_get0_udid(id));
		goto out;
	}
	if ((rc = issued_verify(&est, issued, cas, got, &ca)) != 0)
		goto out;
	r->cert = issued;
	r->ca = ca;
	issued = NULL;
	ca = NULL;
	r->outcome = DEVID_EST_ISSUED;
	devid_error_clear(&r->error);
	rc = 0;
out:
	X509_free(issued);
	X509_free(ca);
	sk_X509_pop_free(cas, X509_free);
	sk_X509_pop_free(got, X509_free);
	dynbuf_release(&csr);
	return rc;
}

/* ---- TPM enrollment by credential activation (docs/tpm.md, "The protocol") ------------------ */

/* The decoded base64 string p[0..n) of member `name` into out[0..*len), a marshalled TPM2B. */
static int
tpm2b_member(const uint8_t *p, size_t n, const char *name, uint8_t *out, size_t max, size_t *len,
    struct devid_error *e)
{
	uint8_t *der = NULL;
	size_t dlen = 0;
	int rc;

	if ((rc = b64_decode((const char *)p, n, 0, &der, &dlen)) == DEVID_ENOMEM)
		return devid_error_set(e, rc, "tpm/activate answer: out of memory");
	if (rc != 0)
		return devid_error_set(e, rc, "tpm/activate answer: %s: not padded base64", name);
	if (dlen < 2 || dlen > max || (size_t)(der[0] << 8 | der[1]) != dlen - 2) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "tpm/activate answer: %s: %zu bytes, not a TPM2B of at most %zu whose size "
		    "is the rest",
		    name, dlen, max);
		free(der);
		return rc;
	}
	memcpy(out, der, dlen);
	*len = dlen;
	free(der);
	return 0;
}

/* the members of tpm/activate's answer; the first three are required */
static const char *const activation_members[] = {
    "id",
    "credentialBlob",
    "encryptedSecret",
    "expiresAt",
};
#define N_ACTIVATION_MEMBERS (sizeof(activation_members) / sizeof(activation_members[0]))

/* The string p[0..n) of the activation member m into out. */
static int
activation_member(
    size_t m, const uint8_t *v, size_t n, struct agent_tpm_activation *out, struct devid_error *e)
{
	switch (m) {
	case 0:
		if (n != AGENT_TPM_ACTIVATION_ID_LEN)
			return devid_error_set(e, DEVID_EINVAL,
			    "tpm/activate answer: id is not %d hex digits",
			    AGENT_TPM_ACTIVATION_ID_LEN);
		for (size_t j = 0; j < n; j++)
			if (!((v[j] >= '0' && v[j] <= '9') || (v[j] >= 'a' && v[j] <= 'f')))
				return devid_error_set(e, DEVID_EINVAL,
				    "tpm/activate answer: id is not %d lowercase hex digits",
				    AGENT_TPM_ACTIVATION_ID_LEN);
		memcpy(out->id, v, n);
		out->id[n] = '\0';
		return 0;
	case 1:
		return tpm2b_member(
		    v, n, activation_members[m], out->blob, sizeof(out->blob), &out->blob_len, e);
	case 2:
		return tpm2b_member(v, n, activation_members[m], out->secret, sizeof(out->secret),
		    &out->secret_len, e);
	default:
		return 0;
	}
}

int
agent_tpm_activation_parse(
    const uint8_t *p, size_t len, struct agent_tpm_activation *out, struct devid_error *e)
{
	bool seen[N_ACTIVATION_MEMBERS] = {false};
	size_t i, k, end, m;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > AGENT_MAX_TPM_ACTIVATION_BODY)
		return devid_error_set(e, DEVID_ELIMIT, "tpm/activate answer: %zu bytes, limit %d",
		    len, AGENT_MAX_TPM_ACTIVATION_BODY);
	i = jsonscan_ws(p, len, 0);
	if (i >= len || p[i] != '{')
		return devid_error_set(e, DEVID_EINVAL, "tpm/activate answer: not a JSON object");
	i = jsonscan_ws(p, len, i + 1);
	while (i >= len || p[i] != '}') {
		if (i >= len || p[i] != '"' || (k = jsonscan_string_end(p, len, i)) == 0)
			goto bad;
		for (m = 0; m < N_ACTIVATION_MEMBERS; m++)
			if (k - i - 2 == strlen(activation_members[m]) &&
			    memcmp(p + i + 1, activation_members[m], k - i - 2) == 0)
				break;
		i = jsonscan_ws(p, len, k);
		if (i >= len || p[i] != ':')
			goto bad;
		i = jsonscan_ws(p, len, i + 1);
		if ((end = jsonscan_value_end(p, len, i)) == 0)
			goto bad;
		if (m < N_ACTIVATION_MEMBERS) {
			if (seen[m])
				return devid_error_set(e, DEVID_EINVAL,
				    "tpm/activate answer: member %s twice", activation_members[m]);
			seen[m] = true;
			if (p[i] != '"')
				return devid_error_set(e, DEVID_EINVAL,
				    "tpm/activate answer: %s is not a string",
				    activation_members[m]);
			if ((rc = activation_member(m, p + i + 1, end - i - 2, out, e)) != 0)
				return rc;
		}
		i = jsonscan_ws(p, len, end);
		if (i < len && p[i] == ',') {
			i = jsonscan_ws(p, len, i + 1);
			if (i >= len || p[i] != '"')
				goto bad;
		} else if (i >= len || p[i] != '}') {
			goto bad;
		}
	}
	if (jsonscan_ws(p, len, i + 1) != len)
		return devid_error_set(e, DEVID_EINVAL,
		    "tpm/activate answer: %zu bytes after the JSON object",
		    len - jsonscan_ws(p, len, i + 1));
	for (m = 0; m < 3; m++)
		if (!seen[m])
			return devid_error_set(e, DEVID_EINVAL,
			    "tpm/activate answer: member %s missing", activation_members[m]);
	return 0;
bad:
	return devid_error_set(e, DEVID_EINVAL,
	    "tpm/activate answer: not a JSON object of strings (at byte %zu of %zu)", i, len);
}

int
agent_est_cacerts(const struct devid_est_opts *o, STACK_OF(X509) **cas, struct devid_est_result *r)
{
	struct est est = {.o = o, .r = r};
	struct agent_request req = {
	    .method = "GET",
	    .headers = "Accept: application/pkcs7-mime\r\n",
	};
	int rc;

	*cas = NULL;
	if ((rc = est_setup(&est, o, r)) != 0)
		return rc;
	if (o->label == NULL)
		return fail(&est, DEVID_EST_ERROR, DEVID_EINVAL,
		    "cacerts without a client certificate needs a label (the tenant)");
	return est_call(&est, "cacerts", &req, cas);
}

/* `"name":"<base64 of p[0..n)>"` appended to b, after a comma unless first. */
static int
json_b64_member(struct dynbuf *b, bool first, const char *name, const uint8_t *p, size_t n)
{
	char *text;
	int rc;

	if ((text = b64_encode(p, n)) == NULL)
		return DEVID_ENOMEM;
	rc = dynbuf_addf(b, "%s\"%s\":\"%s\"", first ? "" : ",", name, text);
	free(text);
	return rc;
}

int
agent_est_tpm_activate(const struct devid_est_opts *o, const struct agent_tpm_evidence *ev,
    struct agent_tpm_activation *out, struct devid_est_result *r)
{
	struct est est = {.o = o, .r = r};
	struct agent_request req = {
	    .method = "POST",
	    .headers = "Content-Type: application/json\r\nAccept: application/json\r\n",
	    .ok_status = 201,
	};
	struct devid_hello_result hr;
	struct dynbuf body;
	int rc;

	memset(out, 0, sizeof(*out));
	devid_hello_result_init(&hr);
	dynbuf_init(&body, 65536);
	if ((rc = est_setup(&est, o, r)) != 0)
		goto out;
	if ((rc = dynbuf_addstr(&body, "{")) != 0 ||
	    (rc = json_b64_member(&body, true, "ekCertificate", ev->ek_cert, ev->ek_cert_len)) !=
		0 ||
	    (rc = json_b64_member(&body, false, "akPublic", ev->ak_public, ev->ak_public_len)) !=
		0 ||
	    (rc = json_b64_member(&body, false, "keyPublic", ev->key_public, ev->key_public_len)) !=
		0 ||
	    (rc = json_b64_member(
		 &body, false, "certifyInfo", ev->certify_info, ev->certify_info_len)) != 0 ||
	    (rc = json_b64_member(&body, false, "certifySignature", ev->certify_signature,
		 ev->certify_signature_len)) != 0 ||
	    (rc = json_b64_member(&body, false, "csr", ev->csr, ev->csr_len)) != 0 ||
	    (rc = dynbuf_addstr(&body, "}")) != 0) {
		rc = fail(
		    &est, DEVID_EST_ERROR, rc, "tpm/activate: request: %s", devid_strerror(rc));
		goto out;
	}
	req.body = body.p;
	req.body_len = body.len;
	if ((rc = est_send(&est, "tpm/activate", &req, AGENT_MAX_TPM_ACTIVATION_BODY, &hr)) != 0)
		goto out;
	if ((rc = agent_tpm_activation_parse(
		 (const uint8_t *)hr.body, hr.body_len, out, &r->error)) != 0) {
		r->outcome = DEVID_EST_FAILED;
		devid_error_prefix(&r->error, "from %s", est.where);
		goto out;
	}
	devid_error_clear(&r->error);
	rc = 0;
out:
	devid_hello_result_release(&hr);
	dynbuf_release(&body);
	return rc;
}

int
agent_est_tpm_enroll(const struct devid_est_opts *o, const struct agent_tpm_activation *a,
    const uint8_t *secret, size_t secret_len, EVP_PKEY *key, STACK_OF(X509) *cas,
    struct devid_est_result *r)
{
	struct est est = {.o = o, .r = r};
	struct agent_request req = {
	    .method = "POST",
	    .headers = "Content-Type: application/json\r\nAccept: application/pkcs7-mime\r\n",
	};
	STACK_OF(X509) *got = NULL;
	X509 *issued = NULL, *ca = NULL;
	struct dynbuf body;
	int rc;

	dynbuf_init(&body, 1024);
	if ((rc = est_setup(&est, o, r)) != 0)
		goto out;
	if ((rc = dynbuf_addf(&body, "{\"id\":\"%s\"", a->id)) != 0 ||
	    (rc = json_b64_member(&body, false, "secret", secret, secret_len)) != 0 ||
	    (rc = dynbuf_addstr(&body, "}")) != 0) {
		rc = fail(&est, DEVID_EST_ERROR, rc, "tpm/enroll: request: %s", devid_strerror(rc));
		goto out;
	}
	req.body = body.p;
	req.body_len = body.len;
	if ((rc = est_call(&est, "tpm/enroll", &req, &got)) != 0)
		goto out;
	for (int i = 0; i < sk_X509_num(got); i++) {
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(got, i)), key) == 1) {
			issued = sk_X509_delete(got, i);
			break;
		}
	}
	ERR_clear_error();
	if (issued == NULL) {
		rc = fail(&est, DEVID_EST_FAILED, DEVID_ECRYPTO,
		    "tpm/enroll: %s issued no certificate for the TPM's signing key", est.where);
		goto out;
	}
	if (cas != NULL && (rc = issued_verify(&est, issued, cas, got, &ca)) != 0)
		goto out;
	r->cert = issued;
	r->ca = ca;
	issued = NULL;
	ca = NULL;
	r->outcome = DEVID_EST_ISSUED;
	devid_error_clear(&r->error);
	rc = 0;
out:
	X509_free(issued);
	X509_free(ca);
	sk_X509_pop_free(got, X509_free);
	dynbuf_release(&body);
	return rc;
}
