/* SPDX-License-Identifier: Apache-2.0 */
/*
 * devid/error.h - the error convention of libdevid-agent (public).
 *
 * The one definition of devid's errors: src/lib/error.h includes this header, so the service
 * and the agent library share it.
 *
 * Functions return int: 0 on success or a negative DEVID_E* code. The human reason travels
 * separately in a caller-owned struct devid_error, filled by the failing function. Every
 * function taking a struct devid_error * accepts NULL (the reason is then dropped).
 */
#ifndef DEVID_ERROR_H
#define DEVID_ERROR_H

#include <stddef.h>

enum {
	DEVID_OK = 0,
	DEVID_EINVAL = -1, /* bad input: the caller sent something wrong */
	DEVID_ENOMEM = -2, /* out of memory */
	DEVID_EIO = -3, /* file or socket I/O failed */
	DEVID_ECRYPTO = -4, /* a signature, chain or key check failed */
	DEVID_ENOTFOUND = -5, /* no such object (or not yours) */
	DEVID_ECONFLICT = -6, /* the object exists or is in the wrong state */
	DEVID_ELIMIT = -7, /* a named limit was exceeded */
	DEVID_EAUTH = -8, /* not authenticated or not allowed */
	DEVID_EINTERNAL = -9, /* a bug or an unexpected library failure */
};

#define DEVID_ERROR_MAX 512

struct devid_error {
	int code;
	char msg[DEVID_ERROR_MAX]; /* always NUL-terminated; "" when no error */
};

void devid_error_clear(struct devid_error *e);

/* Sets e->msg from the format; returns code and stores it in e->code. */
int devid_error_set(struct devid_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As devid_error_set, then appends ": <first OpenSSL error>" and clears OpenSSL's queue. */
int devid_error_ssl(struct devid_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "<prefix>: " to an existing message (context on the way up). */
void devid_error_prefix(struct devid_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A short constant name for a code, e.g. "invalid input". */
const char *devid_strerror(int code);

#endif
