/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uri.c - the small parsers of the agent's command-line input: key URI schemes, file: and tpm2:
 * URIs, HOST:PORT; and the printable excerpt used to quote what a server said.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "lib/banned.h"

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

int
agent_uri_scheme(const char *uri, char scheme[AGENT_MAX_SCHEME_LEN + 1], struct devid_error *e)
{
	size_t i;

	scheme[0] = '\0';
	if (uri == NULL || uri[0] == '\0')
		return devid_error_set(e, DEVID_EINVAL, "key URI: empty");
	/* RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	for (i = 0; uri[i] != '\0' && uri[i] != ':'; i++) {
		unsigned char c = (unsigned char)uri[i];

		if (!(is_alpha(c) || (i > 0 && (is_digit(c) || c == '+' || c == '-' || c == '.'))))
			break;
		if (i >= AGENT_MAX_SCHEME_LEN) {
			scheme[0] = '\0';
			return devid_error_set(e, DEVID_EINVAL,
			    "key URI: scheme longer than %d characters", AGENT_MAX_SCHEME_LEN);
		}
		scheme[i] = (char)tolower(c);
	}
	if (i == 0 || uri[i] != ':') {
		scheme[0] = '\0';
		return devid_error_set(e, DEVID_EINVAL,
		    "key URI: no scheme (RFC 3986 3.1); write file:PATH for a PEM key file");
	}
	scheme[i] = '\0';
	return 0;
}

int
agent_file_uri_path(const char *uri, const char **path, struct devid_error *e)
{
	const char *p;

	*path = NULL;
	if (uri == NULL || strncasecmp(uri, "file:", 5) != 0)
		return devid_error_set(e, DEVID_EINVAL, "key URI: not a file: URI");
	p = uri + 5;
	if (strncmp(p, "//", 2) == 0) {
		/* RFC 8089 2: file://host/path; only the local host has our files */
		p += 2;
		if (strncasecmp(p, "localhost/", 10) == 0)
			p += 9;
		else if (p[0] != '/')
			return devid_error_set(e, DEVID_EINVAL,
			    "key URI: file: URI names a host; only file:///PATH or "
			    "file://localhost/PATH are local (RFC 8089 2)");
	}
	if (p[0] == '\0')
		return devid_error_set(e, DEVID_EINVAL, "key URI: file: URI without a path");
	*path = p;
	return 0;
}

static int
hex_value(int c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* handle=: "0x" and 1 to 8 hex digits, nothing after, in the persistent range */
static int
tpm2_handle_parse(const char *s, uint32_t *out, struct devid_error *e)
{
	uint32_t v = 0;
	size_t i;

	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return devid_error_set(e, DEVID_EINVAL,
		    "key URI: tpm2: handle= must be hexadecimal, written 0x81000000 to 0x81ffffff");
	s += 2;
	for (i = 0; s[i] != '\0'; i++) {
		int d = hex_value((unsigned char)s[i]);

		if (d < 0)
			return devid_error_set(e, DEVID_EINVAL,
			    "key URI: tpm2: handle= must be 0x and hex digits only, with nothing "
			    "after them");
		if (i >= 8)
			return devid_error_set(e, DEVID_EINVAL,
			    "key URI: tpm2: handle= has more than 8 hex digits (TPM handles are 32 "
			    "bits)");
		v = (v << 4) | (uint32_t)d;
	}
	if (i == 0)
		return devid_error_set(e, DEVID_EINVAL, "key URI: tpm2: handle= without a number");
	if (v < AGENT_TPM2_PERSISTENT_FIRST || v > AGENT_TPM2_PERSISTENT_LAST)
		return devid_error_set(e, DEVID_EINVAL,
		    "key URI: tpm2: handle 0x%08x is not a persistent handle (0x81000000 to "
		    "0x81ffffff, TPM 2.0 Part 2 7.2)",
		    (unsigned)v);
	*out = v;
	return 0;
}

int
agent_tpm2_uri_parse(const char *uri, struct agent_tpm2_uri *out, struct devid_error *e)
{
	const char *p;
	char name[33];
	size_t n;

	out->handle = 0;
	out->path = NULL;
	if (uri == NULL || strncasecmp(uri, "tpm2:", 5) != 0)
		return devid_error_set(e, DEVID_EINVAL, "key URI: not a tpm2: URI");
	p = uri + 5;
	if (strncmp(p, "handle=", 7) == 0)
		return tpm2_handle_parse(p + 7, &out->handle, e);
	if (strncmp(p, "file=", 5) == 0) {
		if (p[5] == '\0')
			return devid_error_set(
			    e, DEVID_EINVAL, "key URI: tpm2: file= without a path");
		out->path = p + 5;
		return 0;
	}
	n = strcspn(p, "=;?");
	if (n == 0 || p[n] != '=')
		return devid_error_set(e, DEVID_EINVAL,
		    "key URI: tpm2: expected handle=0x81000000..0x81ffffff (a persistent key) or "
		    "file=PATH (a TSS2 PRIVATE KEY file)");
	if (n == 4 && strncmp(p, "tcti", 4) == 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "key URI: tpm2: tcti= is not an attribute: the TPM is reached through the TCTI "
		    "in $TPM2OPENSSL_TCTI");
	/* the name only, never what follows '=' */
	agent_printable((const uint8_t *)p, n, 24, name, sizeof(name));
	return devid_error_set(e, DEVID_EINVAL,
	    "key URI: tpm2: unknown attribute \"%s\" (expected handle= or file=)", name);
}

int
agent_split_host_port(
    const char *s, char host[AGENT_MAX_HOST_LEN + 1], char port[6], struct devid_error *e)
{
	const char *h, *colon;
	size_t hlen, plen;
	long v = 0;

	host[0] = '\0';
	port[0] = '\0';
	if (s == NULL || s[0] == '\0')
		return devid_error_set(e, DEVID_EINVAL, "--connect: empty; expected HOST:PORT");
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return devid_error_set(
			    e, DEVID_EINVAL, "--connect \"%s\": expected [IPV6]:PORT", s);
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
		if (memchr(h, ':', hlen) == NULL)
			return devid_error_set(e, DEVID_EINVAL,
			    "--connect \"%s\": brackets are for IPv6 addresses", s);
	} else {
		h = s;
		colon = strrchr(s, ':');
		if (colon == NULL)
			return devid_error_set(
			    e, DEVID_EINVAL, "--connect \"%s\": expected HOST:PORT", s);
		hlen = (size_t)(colon - h);
		if (memchr(h, ':', hlen) != NULL)
			return devid_error_set(e, DEVID_EINVAL,
			    "--connect \"%s\": write an IPv6 address in brackets: [ADDR]:PORT", s);
	}
	if (hlen == 0)
		return devid_error_set(e, DEVID_EINVAL, "--connect \"%s\": empty host", s);
	if (hlen > AGENT_MAX_HOST_LEN)
		return devid_error_set(e, DEVID_EINVAL, "--connect: host longer than %d characters",
		    AGENT_MAX_HOST_LEN);
	for (size_t i = 0; i < hlen; i++) {
		unsigned char c = (unsigned char)h[i];

		/* a DNS name, an IPv4 or an IPv6 literal (with an optional %zone) */
		if (!(is_alpha(c) || is_digit(c) || c == '.' || c == '-' || c == '_' || c == ':' ||
			c == '%'))
			return devid_error_set(e, DEVID_EINVAL,
			    "--connect: character 0x%02x is not allowed in a host", c);
	}
	plen = strlen(colon + 1);
	if (plen == 0 || plen > 5)
		return devid_error_set(
		    e, DEVID_EINVAL, "--connect \"%s\": port must be a number from 1 to 65535", s);
	for (size_t i = 0; i < plen; i++) {
		if (!is_digit((unsigned char)colon[1 + i]))
			return devid_error_set(e, DEVID_EINVAL,
			    "--connect \"%s\": port must be a number from 1 to 65535", s);
		v = v * 10 + (colon[1 + i] - '0');
	}
	if (v < 1 || v > 65535)
		return devid_error_set(
		    e, DEVID_EINVAL, "--connect \"%s\": port must be a number from 1 to 65535", s);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	snprintf(port, 6, "%ld", v);
	return 0;
}

void
agent_printable(const uint8_t *p, size_t len, size_t max, char *out, size_t outsz)
{
	size_t n = 0, i;

	if (outsz == 0)
		return;
	for (i = 0; i < len && i < max && n + 1 < outsz; i++) {
		unsigned char c = p[i];

		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		out[n++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
	}
	if (i < len && outsz >= 4) {
		if (n > outsz - 4)
			n = outsz - 4;
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}
