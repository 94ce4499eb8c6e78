/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certtmpl.h - the birth certificate (IDevID) of a chip as a fixed DER template.
 *
 * Every birth certificate of a reel has the same TBSCertificate, byte for byte, except six
 * fields, and each of them has a fixed length:
 *
 *   serialNumber          INTEGER, 16 content bytes, first byte 0x01..0x7f (positive, no
 *                         leading zero byte: DESIGN.md "16 random bytes, positive")
 *   validity.notBefore    UTCTime "YYMMDDHHMMSSZ", 13 bytes (years 1950 to 2049)
 *   subject CN            the UDID, 64 lowercase hex characters
 *   subject serialNumber  the chip serial, 18 lowercase hex characters
 *   subjectPublicKey      a P-256 point, uncompressed: 0x04 || x || y, 65 bytes
 *   subjectKeyIdentifier  SHA-1 of the point (RFC 5280 4.2.1.2 method 1), 20 bytes
 *
 * Everything else (version, signature algorithm, issuer, notAfter, subject O=, the
 * extensions and their order) is copied from one certificate OpenSSL builds at start-up.
 * certtmpl_new() then builds a second certificate with OpenSSL from other
 * values and checks that the template, filled with those values, gives the same
 * TBSCertificate and, with its signature, the same Certificate; if not, it fails: the template
 * never produces a certificate OpenSSL would not have produced.
 *
 * The template is immutable after certtmpl_new() and may be shared by threads.
 */
#ifndef DEVID_VENDOR_CERTTMPL_H
#define DEVID_VENDOR_CERTTMPL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/error.h"
#include "lib/x509.h"

#define CERTTMPL_SERIAL_LEN 16
#define CERTTMPL_TIME_LEN 13
#define CERTTMPL_CHIP_SERIAL_LEN 18
#define CERTTMPL_POINT_LEN 65
#define CERTTMPL_SKI_LEN 20
/* An ECDSA P-256 signature in DER: SEQUENCE of two INTEGERs of at most 33 bytes. */
#define CERTTMPL_SIG_MAX 72

/*
 * The values that vary from chip to chip: exactly these lengths, no NULs; serial[0] is 0x01 to
 * 0x7f (certtmpl_fill asserts it), the text fields lowercase hex and notBefore from
 * certtmpl_time().
 */
struct certtmpl_chip {
	uint8_t serial[CERTTMPL_SERIAL_LEN];
	char not_before[CERTTMPL_TIME_LEN];
	char udid[UDID_HEX_LEN];
	char chip_serial[CERTTMPL_CHIP_SERIAL_LEN];
	uint8_t point[CERTTMPL_POINT_LEN];
	uint8_t ski[CERTTMPL_SKI_LEN];
};

struct certtmpl;

/*
 * Builds the template for the chips issued by issuing/issuing_key (a P-256 key) for vendor
 * `vendor` and checks it as described above. A new template (certtmpl_free) or NULL with e
 * set.
 */
struct certtmpl *certtmpl_new(
    X509 *issuing, EVP_PKEY *issuing_key, const char *vendor, struct devid_error *e);
void certtmpl_free(struct certtmpl *t);

/* Length of every TBSCertificate; the largest Certificate certtmpl_wrap() writes. */
size_t certtmpl_tbs_len(const struct certtmpl *t);
size_t certtmpl_cert_max(const struct certtmpl *t);

/*
 * notBefore for time `when`: 0, or DEVID_EINVAL when `when` is outside the years UTCTime
 * encodes (1950 to 2049), which the template cannot hold.
 */
int certtmpl_time(time_t when, char out[CERTTMPL_TIME_LEN]);

/*
 * The DER SubjectPublicKeyInfo of every chip is this prefix followed by the 65-byte point; the
 * UDID is the SHA-256 of the two (DESIGN.md "Identity formats"). Borrowed from t.
 */
const uint8_t *certtmpl_spki_prefix(const struct certtmpl *t, size_t *len);

/* Writes the TBSCertificate of chip c into tbs, which holds certtmpl_tbs_len bytes. */
void certtmpl_fill(const struct certtmpl *t, const struct certtmpl_chip *c, uint8_t *tbs);

/*
 * Writes Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING sig } into out, which
 * holds certtmpl_cert_max bytes. sig is the DER ECDSA-Sig-Value over SHA-256(tbs). Returns the
 * length written, or 0 if siglen is not 1..CERTTMPL_SIG_MAX.
 */
size_t certtmpl_wrap(
    const struct certtmpl *t, const uint8_t *tbs, const uint8_t *sig, size_t siglen, uint8_t *out);

#endif
