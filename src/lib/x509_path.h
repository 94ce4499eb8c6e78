/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x509_path.h - chain verification that builds the path through cross-certificates.
 *
 * A CA may have more than one certificate for one key: a TPM vendor's EK CA is signed by the
 * vendor's own root and cross-signed by a public root, and both certificates carry the same
 * subject and key identifier. OpenSSL 3.0's X509_verify_cert takes the first untrusted issuer
 * candidate that fits by name, key identifier and time, and never tries another: with both
 * EK CA certificates offered and only the public root trusted, it fails when the vendor's
 * comes first. x509_path_verify tries the other candidates.
 */
#ifndef DEVID_X509_PATH_H
#define DEVID_X509_PATH_H

#include <openssl/x509.h>

#include "error.h"
#include "x509.h"

/*
 * x509_chain_verify(roots, leaf, untrusted, o) first; when it fails, every path through
 * untrusted (each step a certificate that X509_check_issued names as the issuer of the one
 * below, no certificate twice, at most MAX_PATH_DEPTH of them) whose top is issued by a
 * certificate of roots is verified on its own, with only its certificates as untrusted ones,
 * until one verifies; at most MAX_PATH_TRIES paths are tried. Each is a full x509_chain_verify,
 * so what is accepted is what OpenSSL accepts for that path. Returns 0, or DEVID_ECRYPTO with
 * the message of the first path that reached a root (an expired cross-certificate is named
 * so), or of the plain verification when none did.
 */
int x509_path_verify(X509_STORE *roots, X509 *leaf, STACK_OF(X509) *untrusted,
    const struct x509_verify_opts *o, struct devid_error *e);

#endif
