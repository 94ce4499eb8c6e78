/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_agent.c - the agent's parsers and its identity loading, without a network:
 * key URI schemes, file: and tpm2: URIs, --connect's HOST:PORT, the HTTP response parser (framing,
 * limits, malformed responses), the printable excerpt, backend selection, and identities
 * (a matching key, a key of another certificate, a chain, an encrypted key; a chip key in a
 * SoftHSM2 token through a pkcs11: URI).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/internal.h"
#include "devid/agent.h"
#include "lib/x509.h"
#include "test.h"
#include "lib/banned.h"

static void
test_scheme(void)
{
	static const struct {
		const char *uri, *scheme; /* scheme NULL: an error */
	} cases[] = {
	    {"file:/etc/key.pem", "file"}, {"FILE:/etc/key.pem", "file"},
	    {"pkcs11:token=se;object=devid", "pkcs11"}, {"tpm2:handle=0x81000001", "tpm2"},
	    {"x-vendor.se+1:abc", "x-vendor.se+1"}, {"file:", "file"}, {"/etc/key.pem", NULL},
	    {"key.pem", NULL}, {":nothing", NULL}, {"1file:/x", NULL}, {"fi le:/x", NULL},
	    {"", NULL}, {"abcdefghijklmnopq:x", NULL}, /* 17 characters, one over the limit */
	};
	char scheme[AGENT_MAX_SCHEME_LEN + 1];
	struct devid_error e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		devid_error_clear(&e);
		rc = agent_uri_scheme(cases[i].uri, scheme, &e);
		if (cases[i].scheme != NULL)
			CHECK(rc == 0 && strcmp(scheme, cases[i].scheme) == 0,
			    "scheme of \"%s\": rc %d \"%s\", expected \"%s\" (%s)", cases[i].uri,
			    rc, scheme, cases[i].scheme, e.msg);
		else
			CHECK(rc == DEVID_EINVAL && e.msg[0] != '\0' && scheme[0] == '\0',
			    "scheme of \"%s\": rc %d \"%s\", expected an error", cases[i].uri, rc,
			    scheme);
	}
	CHECK(agent_uri_scheme("/etc/k", scheme, &e) != 0 && strstr(e.msg, "file:PATH") != NULL,
	    "a URI without a scheme suggests file:PATH: %s", e.msg);
	CHECK(agent_uri_scheme(NULL, scheme, NULL) == DEVID_EINVAL, "NULL URI is an error");
}

static void
test_file_uri(void)
{
	static const struct {
		const char *uri, *path; /* path NULL: an error */
	} cases[] = {
	    {"file:/etc/devid/key.pem", "/etc/devid/key.pem"},
	    {"file:key.pem", "key.pem"},
	    {"file:./a/b.key", "./a/b.key"},
	    {"File:/x", "/x"},
	    {"file:///etc/key.pem", "/etc/key.pem"},
	    {"file://localhost/etc/key.pem", "/etc/key.pem"},
	    {"file://LOCALHOST/k", "/k"},
	    {"file:/a%20b", "/a%20b"}, /* taken as written */
	    {"file://otherhost/etc/key.pem", NULL},
	    {"file://", NULL},
	    {"file:", NULL},
	    {"pkcs11:object=x", NULL},
	    {"fil:/x", NULL},
	};
	struct devid_error e;
	const char *path;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		devid_error_clear(&e);
		rc = agent_file_uri_path(cases[i].uri, &path, &e);
		if (cases[i].path != NULL)
			CHECK(rc == 0 && path != NULL && strcmp(path, cases[i].path) == 0,
			    "path of \"%s\": rc %d \"%s\", expected \"%s\" (%s)", cases[i].uri, rc,
			    path != NULL ? path : "(null)", cases[i].path, e.msg);
		else
			CHECK(rc == DEVID_EINVAL && path == NULL && e.msg[0] != '\0',
			    "path of \"%s\": rc %d, expected an error", cases[i].uri, rc);
	}
}

static void
test_tpm2_uri(void)
{
	static const struct {
		const char *uri;
		uint32_t handle; /* 0 and path NULL: an error whose message holds msg */
		const char *path, *msg;
	} cases[] = {
	    {"tpm2:handle=0x81000010", 0x81000010, NULL, NULL},
	    {"TPM2:handle=0X81ABCDEF", 0x81abcdef, NULL, NULL},
	    {"tpm2:handle=0x81000000", 0x81000000, NULL, NULL},
	    {"tpm2:handle=0x81ffffff", 0x81ffffff, NULL, NULL},
	    {"tpm2:file=/etc/devid/key.tss", 0, "/etc/devid/key.tss", NULL},
	    {"tpm2:file=k;a=b?c", 0, "k;a=b?c", NULL}, /* the rest, as written */
	    {"tpm2:file=a%20b", 0, "a%20b", NULL},
	    /* bad handles */
	    {"tpm2:handle=81000010", 0, NULL, "must be hexadecimal"},
	    {"tpm2:handle=0x", 0, NULL, "without a number"},
	    {"tpm2:handle=", 0, NULL, "must be hexadecimal"},
	    {"tpm2:handle=0x8100001g", 0, NULL, "hex digits only"},
	    {"tpm2:handle=0x81000010;file=k", 0, NULL, "hex digits only"},
	    {"tpm2:handle=0x81000010 ", 0, NULL, "hex digits only"},
	    {"tpm2:handle=0x810000100", 0, NULL, "more than 8 hex digits"},
	    {"tpm2:handle=0x000000081000010", 0, NULL, "more than 8 hex digits"},
	    {"tpm2:handle=0x80ffffff", 0, NULL, "0x80ffffff is not a persistent handle"},
	    {"tpm2:handle=0x82000000", 0, NULL, "0x82000000 is not a persistent handle"},
	    {"tpm2:handle=0x40000001", 0, NULL, "not a persistent handle"},
	    {"tpm2:handle=0x1", 0, NULL, "0x00000001 is not a persistent handle"},
	    /* missing file= or handle= */
	    {"tpm2:", 0, NULL, "expected handle=0x81000000..0x81ffffff"},
	    {"tpm2:/etc/devid/key.tss", 0, NULL, "or file=PATH"},
	    {"tpm2:key.tss", 0, NULL, "or file=PATH"},
	    {"tpm2:file=", 0, NULL, "file= without a path"},
	    {"tpm2:=x", 0, NULL, "expected handle="},
	    /* unknown attributes: named, their value never quoted */
	    {"tpm2:object=secret-value", 0, NULL, "unknown attribute \"object\""},
	    {"tpm2:Handle=0x81000010", 0, NULL, "unknown attribute \"Handle\""},
	    {"tpm2:pin-value=1234", 0, NULL, "unknown attribute \"pin-value\""},
	    {"tpm2:tcti=swtpm:port=2321", 0, NULL, "TPM2OPENSSL_TCTI"},
	    {"tpm2:a\x01" "b=c", 0, NULL, "unknown attribute \"a?b\""},
	    {"pkcs11:object=k", 0, NULL, "not a tpm2: URI"},
	};
	struct agent_tpm2_uri u;
	struct devid_error e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		devid_error_clear(&e);
		rc = agent_tpm2_uri_parse(cases[i].uri, &u, &e);
		if (cases[i].msg == NULL)
			CHECK(rc == 0 && u.handle == cases[i].handle &&
				(cases[i].path == NULL
					? u.path == NULL
					: (u.path != NULL && strcmp(u.path, cases[i].path) == 0)),
			    "\"%s\": rc %d handle 0x%08x path \"%s\" (%s)", cases[i].uri, rc,
			    (unsigned)u.handle, u.path != NULL ? u.path : "(null)", e.msg);
		else
			CHECK(rc == DEVID_EINVAL && u.handle == 0 && u.path == NULL &&
				strstr(e.msg, cases[i].msg) != NULL,
			    "\"%s\": rc %d \"%s\", expected an error with \"%s\"", cases[i].uri, rc,
			    e.msg, cases[i].msg);
	}
	devid_error_clear(&e);
	agent_tpm2_uri_parse("tpm2:pin-value=s3cr3t", &u, &e);
	CHECK(strstr(e.msg, "s3cr3t") == NULL, "an attribute's value is never quoted: %s", e.msg);
	agent_tpm2_uri_parse("tpm2:abcdefghijklmnopqrstuvwxyz0123456789=x", &u, &e);
	CHECK(strstr(e.msg, "abcdefghijklmnopqrstuvwx...") != NULL,
	    "a long attribute name is cut: %s", e.msg);
}

static void
test_host_port(void)
{
	static const struct {
		const char *in, *host, *port; /* host NULL: an error */
	} cases[] = {
	    {"127.0.0.1:4433", "127.0.0.1", "4433"},
	    {"cloud.example.com:443", "cloud.example.com", "443"},
	    {"localhost:1", "localhost", "1"},
	    {"h:65535", "h", "65535"},
	    {"h:08443", "h", "8443"},
	    {"[::1]:4433", "::1", "4433"},
	    {"[2001:db8::7]:8883", "2001:db8::7", "8883"},
	    {"::1:4433", NULL, NULL},
	    {"[::1]4433", NULL, NULL},
	    {"[::1:4433", NULL, NULL},
	    {"[host]:4433", NULL, NULL},
	    {"host", NULL, NULL},
	    {"host:", NULL, NULL},
	    {":4433", NULL, NULL},
	    {"host:0", NULL, NULL},
	    {"host:65536", NULL, NULL},
	    {"host:123456", NULL, NULL},
	    {"host:44a", NULL, NULL},
	    {"host:-1", NULL, NULL},
	    {"host:+1", NULL, NULL},
	    {"ho st:1", NULL, NULL},
	    {"ho/st:1", NULL, NULL},
	    {"", NULL, NULL},
	};
	char host[AGENT_MAX_HOST_LEN + 1], port[6], longhost[300];
	struct devid_error e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		devid_error_clear(&e);
		rc = agent_split_host_port(cases[i].in, host, port, &e);
		if (cases[i].host != NULL)
			CHECK(rc == 0 && strcmp(host, cases[i].host) == 0 &&
				strcmp(port, cases[i].port) == 0,
			    "\"%s\": rc %d host \"%s\" port \"%s\" (%s)", cases[i].in, rc, host,
			    port, e.msg);
		else
			CHECK(rc == DEVID_EINVAL && e.msg[0] != '\0' && host[0] == '\0',
			    "\"%s\": rc %d, expected an error", cases[i].in, rc);
	}
	CHECK(agent_split_host_port("::1:4433", host, port, &e) != 0 &&
		strstr(e.msg, "brackets") != NULL,
	    "an IPv6 address without brackets says to use them: %s", e.msg);
	/* the longest host allowed, and one more */
	memset(longhost, 'a', AGENT_MAX_HOST_LEN);
	memcpy(longhost + AGENT_MAX_HOST_LEN, ":1", 3);
	CHECK(agent_split_host_port(longhost, host, port, &e) == 0 &&
		strlen(host) == AGENT_MAX_HOST_LEN,
	    "a host of %d characters is accepted: %s", AGENT_MAX_HOST_LEN, e.msg);
	memset(longhost, 'a', AGENT_MAX_HOST_LEN + 1);
	memcpy(longhost + AGENT_MAX_HOST_LEN + 1, ":1", 3);
	CHECK(agent_split_host_port(longhost, host, port, &e) == DEVID_EINVAL,
	    "a host of %d characters is refused", AGENT_MAX_HOST_LEN + 1);
}

/* Parses s (all of it, the stream then ended if eof) with a body limit of max. */
static int
parse(const char *s, bool eof, size_t max, struct agent_http_response *r, struct devid_error *e)
{
	dynbuf_release(&r->body);
	dynbuf_init(&r->body, max);
	devid_error_clear(e);
	return agent_http_response_parse((const uint8_t *)s, strlen(s), eof, r, e);
}

static void
test_http(void)
{
	struct agent_http_response r;
	struct devid_error e;
	struct dynbuf big;
	int rc;

	dynbuf_init(&r.body, 0);

	rc = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 100, &r, &e);
	CHECK(rc == 0 && r.status == 200 && strcmp(r.reason, "OK") == 0 && r.body.len == 5 &&
		strcmp(dynbuf_str(&r.body), "hello") == 0 && !r.truncated,
	    "Content-Length body: rc %d status %d body \"%s\" (%s)", rc, r.status,
	    dynbuf_str(&r.body), e.msg);
	rc = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", false, 100, &r, &e);
	CHECK(rc == AGENT_HTTP_NEED_MORE, "a short body needs more: rc %d", rc);
	rc = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", true, 100, &r, &e);
	CHECK(rc == DEVID_EINVAL && strstr(e.msg, "3 of 5") != NULL,
	    "a body cut by the end of the stream: rc %d %s", rc, e.msg);
	rc = parse("HTTP/1.1 200 OK\r\nContent-Len", false, 100, &r, &e);
	CHECK(rc == AGENT_HTTP_NEED_MORE, "a partial head needs more: rc %d", rc);
	rc = parse("", true, 100, &r, &e);
	CHECK(rc == DEVID_EINVAL && strstr(e.msg, "without a response") != NULL,
	    "nothing at all: rc %d %s", rc, e.msg);
	rc = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", false, 4, &r, &e);
	CHECK(rc == 0 && r.body.len == 4 && r.truncated && strcmp(dynbuf_str(&r.body), "0123") == 0,
	    "Content-Length over the limit is cut: rc %d len %zu", rc, r.body.len);
	rc = parse("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n0123", false, 4, &r, &e);
	CHECK(rc == 0 && r.truncated, "no need to wait for bytes past the limit: rc %d", rc);

	rc = parse(
	    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"
	    "a;ext=1\r\n{\"error\":\"\r\n7\r\nnot on \r\nb\r\nthe ACL\"}\r\n\r\n0\r\nX: y\r\n\r\n",
	    false, 100, &r, &e);
	CHECK(rc == 0 && r.status == 403 && strcmp(r.reason, "Forbidden") == 0 &&
		strcmp(dynbuf_str(&r.body), "{\"error\":\"not on the ACL\"}\r\n") == 0,
	    "chunked body: rc %d status %d body \"%s\" (%s)", rc, r.status, dynbuf_str(&r.body),
	    e.msg);
	rc = parse(
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", false, 100, &r, &e);
	CHECK(rc == AGENT_HTTP_NEED_MORE, "a partial chunk needs more: rc %d", rc);
	rc = parse(
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true, 100, &r, &e);
	CHECK(rc == DEVID_EINVAL, "a chunk cut by the end of the stream: rc %d", rc);
	rc = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
	    false, 100, &r, &e);
	CHECK(rc == DEVID_EINVAL && strstr(e.msg, "CRLF") != NULL,
	    "chunk data without CRLF: rc %d %s", rc, e.msg);
	rc = parse(
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, 100, &r, &e);
	CHECK(rc == DEVID_EINVAL, "a chunk size that is not hex: rc %d", rc);
	rc = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		   "ffffffffffffffffff\r\n",
	    false, 100, &r, &e);
	CHECK(rc == DEVID_EINVAL, "a chunk size that overflows: rc %d", rc);
	rc = parse(
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n0123", false, 4, &r, &e);
	CHECK(rc == 0 && r.truncated && strcmp(dynbuf_str(&r.body), "0123") == 0,
	    "a chunked body over the limit is cut: rc %d", rc);
	rc = parse(
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, 100, &r, &e);
	CHECK(rc == DEVID_EINVAL && strstr(e.msg, "chunked") != NULL,
	    "another transfer coding: rc %d %s", rc, e.msg);

	/* s_server -www: HTTP/1.0, no length, the body runs to the end of the stream */
	rc = parse("HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n<HTML>", false, 100, &r, &e);
	CHECK(rc == AGENT_HTTP_NEED_MORE, "a close-delimited body waits for the end: rc %d", rc);
	rc = parse("HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n<HTML>", true, 100, &r, &e);
	CHECK(rc == 0 && r.close_delimited && strcmp(dynbuf_str(&r.body), "<HTML>") == 0,
	    "a close-delimited body ends with the stream: rc %d", rc);
	rc = parse("HTTP/1.0 200 ok\r\n\r\n0123456789", false, 4, &r, &e);
	CHECK(rc == 0 && r.truncated && r.body.len == 4,
	    "a close-delimited body over the limit is cut: rc %d", rc);

	rc = parse(
	    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", false, 100, &r, &e);
	CHECK(rc == 0 && r.status == 204 && r.body.len == 0 && dynbuf_str(&r.body)[0] == '\0',
	    "an interim response is skipped; 204 has no body: rc %d status %d", rc, r.status);
	rc = parse("HTTP/1.1 101 Switching Protocols\r\n\r\n", false, 100, &r, &e);
	CHECK(rc == DEVID_EINVAL, "101 is refused: rc %d", rc);
	rc = parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, 100, &r, &e);
	CHECK(rc == 0 && r.status == 200 && r.reason[0] == '\0',
	    "a status line without a reason phrase: rc %d %s", rc, e.msg);
	rc = parse("HTTP/1.1 403 \x1b[31mred\r\nContent-Length: 0\r\n\r\n", false, 100, &r, &e);
	CHECK(rc == 0 && strchr(r.reason, 0x1b) == NULL,
	    "control characters leave the reason phrase: \"%s\"", r.reason);

	static const char *const bad[] = {
	    "HTTP/2 200 OK\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n",
	    "HTTP/1.1 2000 OK\r\n\r\n",
	    "HTTP/1.1 099 X\r\n\r\n",
	    "HTTP/1.1 600 X\r\n\r\n",
	    "SSH-2.0-OpenSSH_9.2\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n",
	    "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = parse(bad[i], false, 100, &r, &e);
		CHECK(rc == DEVID_EINVAL && e.msg[0] != '\0',
		    "bad response %zu: rc %d, expected %d", i, rc, DEVID_EINVAL);
	}
	rc = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", false,
	    100, &r, &e);
	CHECK(rc == 0, "the same Content-Length twice is allowed: rc %d %s", rc, e.msg);

	/* a head at the limit passes; one byte more is DEVID_ELIMIT */
	dynbuf_init(&big, 2 * AGENT_MAX_RESPONSE_HEAD);
	dynbuf_addstr(&big, "HTTP/1.1 200 OK\r\nX: ");
	while (big.len < AGENT_MAX_RESPONSE_HEAD - 4)
		dynbuf_addstr(&big, "a");
	dynbuf_addstr(&big, "\r\n\r\n");
	rc = parse(dynbuf_str(&big), true, 100, &r, &e);
	CHECK(rc == 0, "a head of %zu bytes: rc %d %s", big.len, rc, e.msg);
	dynbuf_reset(&big);
	dynbuf_addstr(&big, "HTTP/1.1 200 OK\r\nX: ");
	while (big.len < AGENT_MAX_RESPONSE_HEAD - 3)
		dynbuf_addstr(&big, "a");
	dynbuf_addstr(&big, "\r\n\r\n");
	rc = parse(dynbuf_str(&big), false, 100, &r, &e);
	CHECK(rc == DEVID_ELIMIT, "a head of %zu bytes: rc %d", big.len, rc);
	dynbuf_release(&big);
	/* every prefix of a good response needs more, and never reads past its end */
	{
		static const char resp[] =
		    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
		uint8_t *copy;
		int more = 0;

		for (size_t n = 0; n < sizeof(resp) - 1; n++) {
			copy = malloc(n > 0 ? n : 1); /* exact size: ASan sees a read past n */
			memcpy(copy, resp, n);
			dynbuf_reset(&r.body);
			r.body.max = 100;
			rc = agent_http_response_parse(copy, n, false, &r, &e);
			/* the response is complete once the last-chunk line is in */
			more += rc == AGENT_HTTP_NEED_MORE;
			CHECK(rc == AGENT_HTTP_NEED_MORE || (rc == 0 && n >= sizeof(resp) - 3),
			    "prefix of %zu bytes: rc %d %s", n, rc, e.msg);
			free(copy);
		}
		CHECK(more > 0, "prefixes were tried");
	}
	dynbuf_release(&r.body);
}

static void
test_printable(void)
{
	char out[16];

	agent_printable((const uint8_t *)"a\tb\r\nc\x01\xff", 8, 100, out, sizeof(out));
	CHECK(strcmp(out, "a b  c??") == 0, "printable: \"%s\"", out);
	agent_printable((const uint8_t *)"0123456789", 10, 4, out, sizeof(out));
	CHECK(strcmp(out, "0123...") == 0, "cut at max: \"%s\"", out);
	agent_printable((const uint8_t *)"0123456789abcdefghij", 20, 100, out, sizeof(out));
	CHECK(strlen(out) == sizeof(out) - 1 && strcmp(out + strlen(out) - 3, "...") == 0,
	    "cut at the buffer: \"%s\"", out);
	agent_printable((const uint8_t *)"", 0, 10, out, sizeof(out));
	CHECK(out[0] == '\0', "empty stays empty");
}

static void
test_backend_find(void)
{
	const struct devid_key_backend *b;
	struct devid_error e;

	devid_error_clear(&e);
	CHECK(devid_key_backend_find("file:/k", &b, &e) == 0 && b == &devid_key_backend_file,
	    "file: is the file backend: %s", e.msg);
	CHECK(devid_key_backend_find("pkcs11:token=se;object=k?pin-value=1234", &b, &e) == 0 &&
		b == &devid_key_backend_pkcs11,
	    "pkcs11: is the PKCS#11 backend: %s", e.msg);
	CHECK(devid_key_backend_find("PKCS11:token=se", &b, &e) == 0 &&
		b == &devid_key_backend_pkcs11,
	    "PKCS11: too: %s", e.msg);
	CHECK(devid_key_backend_find("TPM2:handle=0x81000001", &b, &e) == 0 &&
		b == &devid_key_backend_tpm2,
	    "tpm2: is the TPM backend: %s", e.msg);
	CHECK(devid_key_backend_find("foo:secret", &b, &e) == DEVID_EINVAL &&
		strstr(e.msg, "unknown scheme \"foo:\"") != NULL && strstr(e.msg, "secret") == NULL,
	    "an unknown scheme is named, the rest is not quoted: %s", e.msg);
}

/* ---- identities from files ----------------------------------------------------------------- */

static char dir[256];

static void
write_key(const char *name, EVP_PKEY *k, const char *pass)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	PEM_write_PrivateKey(
	    f, k, pass != NULL ? EVP_aes_128_cbc() : NULL, NULL, 0, NULL, (void *)pass);
	fclose(f);
}

/* A certificate for key k signed by issuer_key (self-signed if NULL), appended to name. */
static X509 *
add_cert(const char *name, const char *cn, EVP_PKEY *k, X509 *issuer, EVP_PKEY *issuer_key)
{
	char path[512];
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	FILE *f;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_sign(x, issuer_key != NULL ? issuer_key : k, EVP_sha256());
	X509_NAME_free(n);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "a");
	PEM_write_X509(f, x);
	fclose(f);
	return x;
}

static void
test_identity(void)
{
	EVP_PKEY *ca = EVP_EC_gen("P-256"), *dev = EVP_EC_gen("P-256"),
		 *other = EVP_EC_gen("P-256");
	X509 *cax, *devx;
	struct devid_identity *id = NULL;
	struct devid_error e;
	char uri[512], cert[512], chain[512], udid[UDID_HEX_LEN + 1];
	int rc;

	test_tmpdir(dir, sizeof(dir), "agent");
	write_key("dev.key", dev, NULL);
	write_key("other.key", other, NULL);
	write_key("locked.key", dev, "secret");
	cax = add_cert("ca.pem", "test CA", ca, NULL, NULL);
	devx = add_cert("dev.pem", "device", dev, cax, ca);
	X509_free(add_cert("chain.pem", "device", dev, cax, ca));
	X509_free(add_cert("chain.pem", "test CA", ca, NULL, NULL));
	snprintf(cert, sizeof(cert), "%s/dev.pem", dir);
	snprintf(chain, sizeof(chain), "%s/chain.pem", dir);

	devid_error_clear(&e);
	snprintf(uri, sizeof(uri), "file:%s/dev.key", dir);
	rc = devid_identity_load(uri, cert, &id, &e);
	CHECK(rc == 0 && id != NULL, "a matching key and certificate load: rc %d %s", rc, e.msg);
	if (id != NULL) {
		x509_udid(devx, udid);
		CHECK(strcmp(devid_identity_get0_udid(id), udid) == 0, "the UDID is the cert's");
		CHECK(sk_X509_num(devid_identity_get0_chain(id)) == 0, "no chain in dev.pem");
		CHECK(
		    X509_cmp(devid_identity_get0_cert(id), devx) == 0, "the certificate is dev's");
		CHECK(EVP_PKEY_eq(devid_identity_get0_pkey(id), dev) == 1, "the key is dev's");
	}
	devid_identity_free(id);
	id = NULL;

	snprintf(uri, sizeof(uri), "file://localhost%s/dev.key", dir);
	rc = devid_identity_load(uri, chain, &id, &e);
	CHECK(rc == 0 && id != NULL && sk_X509_num(devid_identity_get0_chain(id)) == 1,
	    "a certificate file with a chain: rc %d %s", rc, e.msg);
	devid_identity_free(id);
	id = NULL;

	snprintf(uri, sizeof(uri), "file:%s/other.key", dir);
	rc = devid_identity_load(uri, cert, &id, &e);
	CHECK(rc == DEVID_ECRYPTO && id == NULL && strstr(e.msg, "does not match") != NULL &&
		strstr(e.msg, "other.key") != NULL,
	    "another key is refused, naming the key: rc %d %s", rc, e.msg);
	CHECK(strstr(e.msg, "PRIVATE") == NULL, "no key material in the message");

	snprintf(uri, sizeof(uri), "file:%s/locked.key", dir);
	rc = devid_identity_load(uri, cert, &id, &e);
	CHECK(rc == DEVID_EINVAL && strstr(e.msg, "encrypted") != NULL,
	    "an encrypted key fails without asking for a password: rc %d %s", rc, e.msg);

	snprintf(uri, sizeof(uri), "file:%s/missing.key", dir);
	rc = devid_identity_load(uri, cert, &id, &e);
	CHECK(rc == DEVID_EIO && strstr(e.msg, "missing.key") != NULL,
	    "a missing key file: rc %d %s", rc, e.msg);

	snprintf(uri, sizeof(uri), "file:%s/dev.key", dir);
	rc = devid_identity_load(uri, uri + 5, &id, &e);
	CHECK(rc == DEVID_EINVAL && strstr(e.msg, "certificate") != NULL,
	    "a key given as the certificate: rc %d %s", rc, e.msg);

	rc = devid_identity_load(
	    "pkcs11:object=devid?module-path=/nonexistent/p11.so&pin-value=4321", cert, &id, &e);
	CHECK(rc == DEVID_EIO && id == NULL && strstr(e.msg, "/nonexistent/p11.so") != NULL &&
		strstr(e.msg, "4321") == NULL,
	    "a pkcs11: key whose module does not load fails clearly: rc %d %s", rc, e.msg);
	CHECK(devid_identity_load_with(NULL, uri, cert, &id, &e) == DEVID_EINVAL,
	    "no backend is an error");

	X509_free(cax);
	X509_free(devx);
	EVP_PKEY_free(ca);
	EVP_PKEY_free(dev);
	EVP_PKEY_free(other);
	test_rmdir(dir);
}

/* ---- identities from a PKCS#11 token (SoftHSM2) -------------------------------------------- */

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/*
 * A chip key imported into a throwaway SoftHSM2 token loads through a pkcs11: URI against its
 * certificate, and a certificate of another key is refused. Skipped (with a note, the rest of
 * the test still counts) when SoftHSM2 is not installed.
 */
static void
test_identity_pkcs11(void)
{
	EVP_PKEY *ca = EVP_EC_gen("P-256"), *dev = EVP_EC_gen("P-256"),
		 *other = EVP_EC_gen("P-256");
	X509 *cax = NULL;
	struct devid_identity *id = NULL;
	struct devid_error e;
	char path[512], cmd[2048], cert[512], othercert[512];
	const char *uri = "pkcs11:token=chip;object=devid;id=%01?pin-value=24680";
	FILE *f;
	int rc;

	if (system("command -v softhsm2-util >/dev/null 2>&1") != 0 ||
	    access(SOFTHSM_MODULE, R_OK) != 0) {
		printf("# SKIP pkcs11: identities: SoftHSM2 is not installed\n");
		goto out;
	}
	test_tmpdir(dir, sizeof(dir), "agent-p11");
	snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
	f = fopen(path, "w");
	fprintf(
	    f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
	fclose(f);
	setenv("SOFTHSM2_CONF", path, 1);
	setenv("DEVID_PKCS11_MODULE", SOFTHSM_MODULE, 1);
	write_key("dev.key", dev, NULL); /* PKCS#8, as softhsm2-util --import wants */
	snprintf(cmd, sizeof(cmd),
	    "{ softhsm2-util --init-token --free --label chip --so-pin 13579 --pin 24680 && "
	    "softhsm2-util --import %s/dev.key --token chip --label devid --id 01 --pin 24680; "
	    "} >%s/softhsm.log 2>&1",
	    dir, dir);
	rc = system(cmd);
	CHECK(rc == 0, "softhsm2-util set up the token: see %s/softhsm.log", dir);
	if (rc != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/dev.key", dir);
	remove(path); /* from now on the key is only in the token */
	cax = add_cert("ca.pem", "test CA", ca, NULL, NULL);
	X509_free(add_cert("dev.pem", "device", dev, cax, ca));
	X509_free(add_cert("other.pem", "other device", other, cax, ca));
	snprintf(cert, sizeof(cert), "%s/dev.pem", dir);
	snprintf(othercert, sizeof(othercert), "%s/other.pem", dir);

	devid_error_clear(&e);
	rc = devid_identity_load(uri, cert, &id, &e);
	CHECK(rc == 0 && id != NULL,
	    "a chip key in SoftHSM2 loads against its certificate: rc %d %s", rc, e.msg);
	if (id != NULL) {
		EVP_PKEY *k = devid_identity_get0_pkey(id);
		unsigned char sig[128], msg[] = "hello from the token";
		size_t siglen = sizeof(sig);
		EVP_MD_CTX *c = EVP_MD_CTX_new();

		CHECK(EVP_PKEY_eq(k, dev) == 1, "the token's key is the imported one");
		CHECK(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k) == 1 &&
			EVP_DigestSign(c, sig, &siglen, msg, sizeof(msg)) == 1,
		    "the token signs");
		EVP_MD_CTX_free(c);
		c = EVP_MD_CTX_new();
		CHECK(EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, dev) == 1 &&
			EVP_DigestVerify(c, sig, siglen, msg, sizeof(msg)) == 1,
		    "and the signature verifies with the chip's public key");
		EVP_MD_CTX_free(c);
	}
	devid_identity_free(id);
	id = NULL;

	rc = devid_identity_load(uri, othercert, &id, &e);
	CHECK(rc == DEVID_ECRYPTO && id == NULL && strstr(e.msg, "does not match") != NULL &&
		strstr(e.msg, "pkcs11:") != NULL && strstr(e.msg, "24680") == NULL,
	    "a certificate of another key is refused, and the PIN is not quoted: rc %d %s", rc,
	    e.msg);
	rc = devid_identity_load("pkcs11:token=chip;object=devid?pin-value=99999", cert, &id, &e);
	CHECK(rc == DEVID_EAUTH && strstr(e.msg, "CKR_PIN_INCORRECT") != NULL &&
		strstr(e.msg, "99999") == NULL,
	    "a wrong PIN: rc %d %s", rc, e.msg);
	test_rmdir(dir);
out:
	unsetenv("SOFTHSM2_CONF");
	unsetenv("DEVID_PKCS11_MODULE");
	X509_free(cax);
	EVP_PKEY_free(ca);
	EVP_PKEY_free(dev);
	EVP_PKEY_free(other);
}

static void
test_hello_args(void)
{
	struct devid_hello_result r;

	devid_hello_result_init(&r);
	CHECK(devid_hello(NULL, "127.0.0.1", "1", "/ca.pem", 1000, &r) == DEVID_EINVAL &&
		r.outcome == DEVID_HELLO_ERROR && r.error.msg[0] != '\0',
	    "hello without an identity: outcome %d %s", (int)r.outcome, r.error.msg);
	devid_hello_result_release(&r);
	devid_hello_result_release(&r);
}

int
main(void)
{
	test_scheme();
	test_file_uri();
	test_tpm2_uri();
	test_host_port();
	test_http();
	test_printable();
	test_backend_find();
	test_identity();
	test_identity_pkcs11();
	test_hello_args();
	return test_done();
}
