/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x509.h - X.509 helpers: exact-length loading, UDIDs, chain verification, the IDevID profile.
 *
 * Everything returned as a pointer is new (caller frees with the OpenSSL _free function)
 * unless the name says get0.
 */
#ifndef DEVID_X509_H
#define DEVID_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "error.h"

#define UDID_HEX_LEN 64

/*
 * Decodes exactly n bytes of DER (bytes after the certificate are an error), caches the
 * extensions (X509_check_purpose) and rejects malformed ones. `what` names the certificate in
 * messages ("x5c[0]").
 */
X509 *x509_from_der(const uint8_t *p, size_t n, const char *what, struct devid_error *e);

/* Reads PEM certificates (one or more) from memory; `what` names them in messages. */
STACK_OF(X509) *x509_load_pem_mem(const char *p, size_t n, const char *what, struct devid_error *e);
/* Reads a PEM file holding exactly one certificate. */
X509 *x509_load_pem_file(const char *path, struct devid_error *e);
/* Reads a PEM file holding one or more certificates. */
STACK_OF(X509) *x509_load_pem_file_all(const char *path, struct devid_error *e);
/* Reads an unencrypted PEM private key. */
EVP_PKEY *pkey_load_pem_file(const char *path, struct devid_error *e);

/* Writes PEM files; keys are created with mode 0600 and never replace an existing file. */
int x509_write_pem_file(const char *path, X509 *x, struct devid_error *e);
int pkey_write_pem_file(const char *path, EVP_PKEY *key, struct devid_error *e);

/* A fresh P-256 key. */
EVP_PKEY *pkey_new_p256(struct devid_error *e);

/*
 * UDID: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo as OpenSSL encodes it; out
 * holds 65 bytes. The same key written another way (a compressed point) hashes differently:
 * every door a device key enters by refuses all but one encoding (x509_spki_check_uncompressed),
 * so one key has one UDID.
 */
int pkey_udid(EVP_PKEY *key, char out[UDID_HEX_LEN + 1]);
int x509_udid(X509 *x, char out[UDID_HEX_LEN + 1]);
/*
 * The subject's attribute nid (NID_commonName, NID_organizationName) as text into out (max + 1
 * bytes): false unless the subject has exactly one, of 1 to max bytes, each allowed by ok.
 */
bool x509_subject_attr(X509 *x, int nid, size_t max, bool (*ok)(unsigned char), char *out);
/*
 * The subject's one CN into out when it is a UDID (64 lowercase hex digits), as devid's
 * operational profile writes it: a TPM device's LDevID names its device there, since its key
 * is not the EK the UDID hashes.
 */
bool x509_subject_udid(X509 *x, char out[UDID_HEX_LEN + 1]);

/*
 * Whether pk is the one encoding of a device key devid takes (docs/formats.md "UDID"): an
 * id-ecPublicKey on P-256 or P-384 named by its OID (RFC 5480 2.1.1), whose subjectPublicKey,
 * a BIT STRING without unused bits, holds the uncompressed point 04 || x || y of the curve's
 * size (RFC 5480 2.2: compressed points 02/03 are optional for CAs to accept, and devid does
 * not; the hybrid forms 06/07 are forbidden). Reads the encoding only: the key need not have
 * been decoded, and whether the point is on the curve is left to the key's decoding. Returns 0,
 * or DEVID_EINVAL with a message naming the rule ("EC point must be uncompressed (RFC 5480
 * 2.2): compressed form 02").
 */
int x509_spki_check_uncompressed(const X509_PUBKEY *pk, struct devid_error *e);
/* SHA-256 of the certificate's DER (JWS x5t#S256). */
int x509_sha256(X509 *x, uint8_t out[32]);
/* The subjectKeyIdentifier, borrowed; NULL if absent. */
const ASN1_OCTET_STRING *x509_get0_ski(X509 *x);

/* A store trusting exactly the given certificates (references are taken). */
X509_STORE *x509_store_new(STACK_OF(X509) *roots, struct devid_error *e);

struct x509_verify_opts {
	int purpose; /* X509_PURPOSE_SSL_CLIENT for devices, X509_PURPOSE_ANY otherwise */
	time_t at; /* verification time; 0 = now */
	bool has_max_depth; /* false: OpenSSL's default depth */
	int max_depth; /* intermediates allowed below the trust anchor, if has_max_depth */
	bool partial_chain; /* a CA in roots that is not self-signed may end the chain */
	time_t *valid_until; /* non-NULL: set to the chain's earliest notAfter on success */
};

/*
 * A library context without algorithms (only the null provider, which also keeps the default
 * provider from being loaded into it): a certificate or request decoded in it keeps its key
 * undecoded, quickly, where OpenSSL 3.0 would set up its decoders for the key at more cost
 * than a signature check. Made once, never freed; NULL if it could not be made.
 */
OSSL_LIB_CTX *x509_nokey_libctx(void);

/*
 * Whether two SubjectPublicKeyInfos are the same bytes: algorithm, parameters and key. For
 * keys whose encoding is unique (an EC point checked by x509_spki_check_uncompressed), the
 * same key; neither need have been decoded.
 */
bool x509_spki_same(const X509_PUBKEY *a, const X509_PUBKEY *b);

/*
 * Verifies leaf up to a certificate in roots through untrusted (may be NULL) with
 * X509_V_FLAG_X509_STRICT, security level 2 (no key weaker than 112 bits: no P-192, no
 * RSA-1024) and the given purpose. On failure the message names the depth
 * and OpenSSL's reason. Returns 0 or DEVID_ECRYPTO.
 */
int x509_chain_verify(X509_STORE *roots, X509 *leaf, STACK_OF(X509) *untrusted,
    const struct x509_verify_opts *o, struct devid_error *e);

/*
 * The rules every device birth certificate must meet on ingest (IEEE 802.1AR, RFC 5280):
 * version 3; positive (non-zero) serial of at most 20 bytes; EC key on P-256 or P-384, encoded
 * as x509_spki_check_uncompressed requires; basicConstraints absent or CA:FALSE; keyUsage
 * critical and digitalSignature; extendedKeyUsage, if present, includes clientAuth;
 * authorityKeyIdentifier present. The message names the rule.
 */
int x509_check_idevid(X509 *x, struct devid_error *e);

/* Reads a whole file of at most max bytes; *out is NUL-terminated (free()). */
int file_read_all(const char *path, size_t max, uint8_t **out, size_t *len, struct devid_error *e);

/* A random positive serial of exactly 16 bytes (RFC 5280 4.1.2.2): 0, or -1 on failure. */
int x509_set_random_serial(X509 *x);
/* Adds an extension written as in openssl.cnf ("critical,CA:FALSE"): 0, or -1 on failure. */
int x509_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value);

#endif
