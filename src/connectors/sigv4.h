/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4.h - AWS Signature Version 4 (header form), as AWS's published test suite defines it
 * (../shared/vectors/aws-sig-v4): canonical request, string to sign, signing key, and the
 * Authorization header. Not the S3 variant (S3 neither normalizes nor double-encodes paths).
 */
#ifndef DEVID_SIGV4_H
#define DEVID_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "lib/dynbuf.h"
#include "lib/error.h"

struct sigv4_header {
	const char *name; /* any case */
	const char *value; /* trimmed, runs of spaces made one; a name given twice joins with ',' */
};

struct sigv4_request {
	const char *method;
	/*
	 * The path as sent on the wire (already percent-encoded, or raw): dot segments and empty
	 * segments are removed and each byte but the unreserved ones and '/' is percent-encoded
	 * (again), which is the double encoding AWS expects of every service but S3.
	 */
	const char *path;
	const char *query; /* after '?', NULL or "" for none; decoded and re-encoded per pair */
	/* every header to sign; must include host and x-amz-date (and the session token) */
	const struct sigv4_header *headers;
	size_t nheaders;
	const uint8_t *body;
	size_t body_len;
};

struct sigv4_key {
	const char *access_key_id;
	const char *secret_access_key;
	const char *region;
	const char *service; /* e.g. "execute-api" for AWS IoT's control plane */
};

#define SIGV4_DATE_LEN 16 /* YYYYMMDDTHHMMSSZ */
#define SIGV4_MAX_TEXT (64 * 1024) /* a canonical request longer than this is refused */

/* The x-amz-date of a Unix time: YYYYMMDDTHHMMSSZ into out[SIGV4_DATE_LEN + 1]. */
void sigv4_date(int64_t t, char out[SIGV4_DATE_LEN + 1]);

/*
 * Signs r at amz_date (the x-amz-date value, YYYYMMDDTHHMMSSZ) with k: the Authorization header
 * value into authz; the canonical request and the string to sign into creq and sts when they
 * are not NULL (for tests and diagnostics). The caller initialises and releases the buffers.
 */
int sigv4_sign(const struct sigv4_request *r, const struct sigv4_key *k, const char *amz_date,
    struct dynbuf *creq, struct dynbuf *sts, struct dynbuf *authz, struct devid_error *e);

#endif
