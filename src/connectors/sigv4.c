/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4.c - AWS Signature Version 4: task 1 (canonical request), task 2 (string to sign),
 * task 3 (signature), task 4 (Authorization header), as in AWS's "Signature Version 4 signing
 * process" and its test suite.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "connectors/sigv4.h"
#include "lib/base64.h"
#include "lib/banned.h"

#define SIGV4_MAX_HEADERS 64
#define SIGV4_MAX_SEGMENTS 256

void
sigv4_date(int64_t t, char out[SIGV4_DATE_LEN + 1])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_DATE_LEN)
		snprintf(out, SIGV4_DATE_LEN + 1, "19700101T000000Z");
}

/* Percent-decodes p[0..n) into out (at least n bytes); returns the decoded length. */
static size_t
decode(const char *p, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '%' && i + 2 < n && hex_digit(p[i + 1]) >= 0 &&
		    hex_digit(p[i + 2]) >= 0) {
			out[o++] = (char)(hex_digit(p[i + 1]) * 16 + hex_digit(p[i + 2]));
			i += 2;
		} else {
			out[o++] = p[i];
		}
	}
	return o;
}

/* The canonical URI: RFC 3986 5.2.4 dot segments removed, empty segments dropped, encoded. */
static int
canonical_path(struct dynbuf *b, const char *path)
{
	const char *seg[SIGV4_MAX_SEGMENTS];
	size_t len[SIGV4_MAX_SEGMENTS], n = 0;
	bool trailing = false;
	int rc = 0;

	if (path == NULL || *path == '\0')
		path = "/";
	for (const char *p = path; *p != '\0';) {
		const char *end = strchr(p, '/');
		size_t l = end != NULL ? (size_t)(end - p) : strlen(p);

		trailing = end != NULL;
		if (l == 0 || (l == 1 && p[0] == '.')) {
			trailing = true;
		} else if (l == 2 && p[0] == '.' && p[1] == '.') {
			if (n > 0)
				n--;
			trailing = true;
		} else {
			if (n == SIGV4_MAX_SEGMENTS)
				return DEVID_ELIMIT;
			seg[n] = p;
			len[n++] = l;
		}
		p += l;
		if (*p == '/')
			p++;
	}
	if ((rc = dynbuf_addstr(b, "/")) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = pct_encode(b, seg[i], len[i], false);
		if (rc == 0 && (i + 1 < n || trailing))
			rc = dynbuf_addstr(b, "/");
	}
	return rc;
}

struct pair {
	char *k, *v; /* encoded */
};

static int
pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = strcmp(x->k, y->k);

	return c != 0 ? c : strcmp(x->v, y->v);
}

static char *
encode_dup(const char *p, size_t n)
{
	struct dynbuf b;
	char *raw = malloc(n + 1), *out = NULL;
	size_t m;

	if (raw == NULL)
		return NULL;
	m = decode(p, n, raw);
	dynbuf_init(&b, SIGV4_MAX_TEXT);
	if (dynbuf_add(&b, "", 0) == 0 && pct_encode(&b, raw, m, false) == 0)
		out = (char *)dynbuf_detach(&b, NULL);
	if (out == NULL)
		out = calloc(1, 1);
	dynbuf_release(&b);
	free(raw);
	return out;
}

/* The canonical query: each name=value decoded, encoded again, sorted by name then value. */
static int
canonical_query(struct dynbuf *b, const char *query)
{
	struct pair *pairs = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	for (const char *p = query; p != NULL && *p != '\0' && rc == 0;) {
		size_t l = strcspn(p, "&");
		const char *eq = memchr(p, '=', l);

		if (l > 0) {
			if (n == cap) {
				struct pair *np;

				cap = cap ? cap * 2 : 8;
				if ((np = realloc(pairs, cap * sizeof(*np))) == NULL) {
					rc = DEVID_ENOMEM;
					break;
				}
				pairs = np;
			}
			pairs[n].k = encode_dup(p, eq != NULL ? (size_t)(eq - p) : l);
			pairs[n].v = eq != NULL ? encode_dup(eq + 1, l - (size_t)(eq - p) - 1)
						: encode_dup("", 0);
			n++;
			if (pairs[n - 1].k == NULL || pairs[n - 1].v == NULL)
				rc = DEVID_ENOMEM;
		}
		p += l;
		if (*p == '&')
			p++;
	}
	if (rc == 0 && n > 0)
		qsort(pairs, n, sizeof(*pairs), pair_cmp);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = dynbuf_addf(b, "%s%s=%s", i ? "&" : "", pairs[i].k, pairs[i].v);
	for (size_t i = 0; i < n; i++) {
		free(pairs[i].k);
		free(pairs[i].v);
	}
	free(pairs);
	return rc;
}

struct hdr {
	char name[128];
	const struct sigv4_header *h;
	size_t order;
};

static int
hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* one name given twice keeps the order given (get-header-value-order) */
	return c != 0 ? c : (x->order < y->order ? -1 : x->order > y->order);
}

/* A header value trimmed, with each run of spaces and tabs made one space. */
static int
add_value(struct dynbuf *b, const char *v)
{
	bool space = false;
	int rc = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v != '\0' && rc == 0; v++) {
		if (*v == ' ' || *v == '\t') {
			space = true;
			continue;
		}
		if (space)
			rc = dynbuf_add(b, " ", 1);
		space = false;
		if (rc == 0)
			rc = dynbuf_add(b, v, 1);
	}
	return rc;
}

/* Canonical headers and signed headers, into b and signed_h. */
static int
canonical_headers(
    struct dynbuf *b, struct dynbuf *signed_h, const struct sigv4_header *h, size_t nh)
{
	struct hdr s[SIGV4_MAX_HEADERS];
	int rc = 0;

	if (nh > SIGV4_MAX_HEADERS)
		return DEVID_ELIMIT;
	for (size_t i = 0; i < nh; i++) {
		size_t l = strlen(h[i].name);

		if (l == 0 || l >= sizeof(s[i].name))
			return DEVID_EINVAL;
		for (size_t j = 0; j <= l; j++)
			s[i].name[j] = (char)((h[i].name[j] >= 'A' && h[i].name[j] <= 'Z')
				? h[i].name[j] - 'A' + 'a'
				: h[i].name[j]);
		s[i].h = &h[i];
		s[i].order = i;
	}
	qsort(s, nh, sizeof(s[0]), hdr_cmp);
	for (size_t i = 0; i < nh && rc == 0; i++) {
		bool first = i == 0 || strcmp(s[i].name, s[i - 1].name) != 0;
		bool last = i + 1 == nh || strcmp(s[i].name, s[i + 1].name) != 0;

		if (first) {
			rc = dynbuf_addf(b, "%s:", s[i].name);
			if (rc == 0)
				rc = dynbuf_addf(signed_h, "%s%s", i ? ";" : "", s[i].name);
		} else {
			rc = dynbuf_add(b, ",", 1);
		}
		if (rc == 0)
			rc = add_value(b, s[i].h->value);
		if (rc == 0 && last)
			rc = dynbuf_add(b, "\n", 1);
	}
	return rc;
}

static int
sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned int len = 0;

	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		return DEVID_ECRYPTO;
	hex_encode(md, 32, out);
	return 0;
}

static int
hmac(const void *key, size_t klen, const char *msg, uint8_t out[32])
{
	unsigned int len = 0;

	return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out,
		   &len) != NULL &&
		len == 32
	    ? 0
	    : DEVID_ECRYPTO;
}

int
sigv4_sign(const struct sigv4_request *r, const struct sigv4_key *k, const char *amz_date,
    struct dynbuf *creq_out, struct dynbuf *sts_out, struct dynbuf *authz, struct devid_error *e)
{
	struct dynbuf creq, sts, signed_h, secret;
	char date[9], payload[65], creq_hash[65], sig[65];
	uint8_t kd[32], kr[32], ks[32], kk[32], mac[32];
	int rc;

	dynbuf_init(&creq, SIGV4_MAX_TEXT);
	dynbuf_init(&sts, SIGV4_MAX_TEXT);
	dynbuf_init(&signed_h, SIGV4_MAX_TEXT);
	dynbuf_init(&secret, 1024);
	if (amz_date == NULL || strlen(amz_date) != SIGV4_DATE_LEN || amz_date[8] != 'T') {
		rc = devid_error_set(e, DEVID_EINVAL, "sigv4: x-amz-date is YYYYMMDDTHHMMSSZ");
		goto out;
	}
	snprintf(date, sizeof(date), "%.8s", amz_date);
	/* task 1: the canonical request */
	if ((rc = sha256_hex(
		 r->body != NULL ? r->body : (const uint8_t *)"", r->body_len, payload)) != 0 ||
	    (rc = dynbuf_addf(&creq, "%s\n", r->method)) != 0 ||
	    (rc = canonical_path(&creq, r->path)) != 0 || (rc = dynbuf_add(&creq, "\n", 1)) != 0 ||
	    (rc = canonical_query(&creq, r->query)) != 0 ||
	    (rc = dynbuf_add(&creq, "\n", 1)) != 0 || (rc = dynbuf_add(&signed_h, "", 0)) != 0 ||
	    (rc = canonical_headers(&creq, &signed_h, r->headers, r->nheaders)) != 0 ||
	    (rc = dynbuf_addf(&creq, "\n%s\n%s", dynbuf_str(&signed_h), payload)) != 0) {
		devid_error_set(e, rc, "sigv4: cannot build the canonical request");
		goto out;
	}
	/* task 2: the string to sign */
	if ((rc = sha256_hex(creq.p, creq.len, creq_hash)) != 0 ||
	    (rc = dynbuf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date,
		 date, k->region, k->service, creq_hash)) != 0) {
		devid_error_set(e, rc, "sigv4: cannot build the string to sign");
		goto out;
	}
	/* task 3: the signing key and the signature */
	if ((rc = dynbuf_addf(&secret, "AWS4%s", k->secret_access_key)) != 0 ||
	    (rc = hmac(secret.p, secret.len, date, kd)) != 0 ||
	    (rc = hmac(kd, 32, k->region, kr)) != 0 || (rc = hmac(kr, 32, k->service, ks)) != 0 ||
	    (rc = hmac(ks, 32, "aws4_request", kk)) != 0 ||
	    (rc = hmac(kk, 32, dynbuf_str(&sts), mac)) != 0) {
		devid_error_set(e, rc, "sigv4: HMAC failed");
		goto out;
	}
	hex_encode(mac, 32, sig);
	/* task 4: the header */
	dynbuf_reset(authz);
	if ((rc = dynbuf_addf(authz,
		 "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
		 "Signature=%s",
		 k->access_key_id, date, k->region, k->service, dynbuf_str(&signed_h), sig)) != 0) {
		devid_error_set(e, rc, "sigv4: the header is too long");
		goto out;
	}
	if (creq_out != NULL) {
		dynbuf_reset(creq_out);
		rc = dynbuf_add(creq_out, creq.p, creq.len);
	}
	if (rc == 0 && sts_out != NULL) {
		dynbuf_reset(sts_out);
		rc = dynbuf_add(sts_out, sts.p, sts.len);
	}
out:
	OPENSSL_cleanse(kd, sizeof(kd));
	OPENSSL_cleanse(kr, sizeof(kr));
	OPENSSL_cleanse(ks, sizeof(ks));
	OPENSSL_cleanse(kk, sizeof(kk));
	if (secret.p != NULL)
		OPENSSL_cleanse(secret.p, secret.len);
	dynbuf_release(&secret);
	dynbuf_release(&creq);
	dynbuf_release(&sts);
	dynbuf_release(&signed_h);
	return rc;
}
