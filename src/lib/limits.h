/* SPDX-License-Identifier: Apache-2.0 */
/*
 * limits.h - every limit on outside input, named, in one place.
 * Sizes are in bytes unless the name says otherwise.
 */
#ifndef DEVID_LIMITS_H
#define DEVID_LIMITS_H

/* identifiers: vendor and batch names in claim codes, [A-Z0-9.-]{1,64} */
#define MAX_NAME_LEN 64
/* a chip's vendor serial (header.uniqueId / payload uniqueId) */
#define MAX_SERIAL_LEN 64
/* free-text payload fields (model, partNumber, organization names) */
#define MAX_TEXT_FIELD_LEN 256
/* RFC 3339 timestamps */
#define MAX_TIMESTAMP_LEN 40

/* one DER certificate, and a certificate chain in x5c */
#define MAX_CERT_DER 8192
#define MAX_X5C_CERTS 4
/*
 * One SignedSecureElement entry as devid stores it (its compact JSON), checked when a manifest
 * is parsed (publish, import, vendor verify) and again when a stored entry is read back, so an
 * entry accepted can always be read back. And its decoded payload, which the entry limit
 * bounds first in practice (base64url makes 4 characters of 3 bytes).
 */
#define MAX_ENTRY_SIZE 65536
#define MAX_PAYLOAD_SIZE 49152
/* the protected header of a JWS, decoded */
#define MAX_PROTECTED_SIZE 1024
/*
 * a TPM EK certificate (docs/tpm.md): each of the TPM manufacturer, model and version
 * attributes of its subjectAltName; the issuer candidates tried, and the certificates one path
 * may hold, when a chain is built through cross-certificates (x509_path.h)
 */
#define MAX_TPM_ATTR_LEN 64
/* an RSA EK's modulus (RSA 2048) and public exponent in a JWK */
#define EK_RSA_BYTES 256
#define EK_RSA_E_BYTES 8
#define MAX_PATH_TRIES 16
#define MAX_PATH_DEPTH 6
/* keys in a publicKeySet */
#define MAX_JWKS 8
/* batch.json */
#define MAX_DESCRIPTOR_SIZE 8192
/* chips in one batch, and the whole manifest file */
#define MAX_BATCH_COUNT 1000000
#define MAX_MANIFEST_SIZE ((size_t)4 << 30)
/*
 * an upload, a batch sent in pages (docs/api.md "Uploads"): entries of one page, pages of one
 * batch, and one page's body; the page size of a publish or import sent in one body
 */
#define MAX_UPLOAD_PAGE_ENTRIES 1000
#define MAX_UPLOAD_PAGES 10000
#define MAX_UPLOAD_PAGE_SIZE ((size_t)16 << 20)
#define UPLOAD_BODY_PAGE_ENTRIES 1000
/* one element of a manifest file read a page at a time, whitespace and all (manifest_stream.h) */
#define MAX_STREAM_ELEMENT (4 * MAX_ENTRY_SIZE)
/* an upload's opening body: the descriptor and a few small members */
#define MAX_UPLOAD_OPEN_SIZE (MAX_DESCRIPTOR_SIZE + 1024)
/* a claim code text: DEVID1:<64>:<64>:<26> */
#define CLAIM_CODE_RANDOM_BYTES 16
#define CLAIM_CODE_B32_LEN 26
#define MAX_CLAIM_TEXT_LEN (6 + 1 + MAX_NAME_LEN + 1 + MAX_NAME_LEN + 1 + CLAIM_CODE_B32_LEN)
/* per-entry rejections kept in a report (the count of all is always kept) */
#define MAX_REPORT_ERRORS 1000
/* nesting of a JSON value the body scanner delimits (jansson's own limit is 2048) */
#define MAX_JSON_DEPTH 2048
/* files read whole by devid (PEM keys and certificates) */
#define MAX_PEM_FILE 65536
/* an EST request body (RFC 7030 4.2: a base64 PKCS#10 CSR), capped before authentication */
#define MAX_EST_BODY 16384
/*
 * TPM 2.0 structures a device sends (tpm2_attest.h), marshalled: a TPM2B_PUBLIC (an RSA 2048
 * key's is about 280 bytes), a TPMS_ATTEST of a TPM2_Certify, a TPMT_SIGNATURE
 */
#define MAX_TPM2_PUBLIC 1024
#define MAX_TPM2_ATTEST 1024
#define MAX_TPM2_SIGNATURE 1024

/* A custody chain document (docs/custody.md) and the records it may hold. */
#define MAX_CUSTODY_SIZE (1 << 20)
#define MAX_CUSTODY_RECORDS 1000
/* One owner public key: base64 of a SubjectPublicKeyInfo (P-256 is 91 bytes of DER). */
#define MAX_CUSTODY_KEY_B64 256

#endif
