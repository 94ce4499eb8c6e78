/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "lib/base64.h"
#include "certtmpl.h"
#include "factory/factory.h"
#include "lib/banned.h"

enum field { F_SERIAL, F_TIME, F_UDID, F_CHIP_SERIAL, F_POINT, F_SKI, F_COUNT };

/*
 * The bytes just before each field in the DER (tag and length, or the length alone for the
 * names, whose string type OpenSSL chooses), checked when the template is built.
 */
static const struct {
	const char *name;
	size_t member; /* offset in struct certtmpl_chip */
	size_t len;
	uint8_t before[3];
	size_t nbefore;
} fields[F_COUNT] = {
    [F_SERIAL] = {"serialNumber", offsetof(struct certtmpl_chip, serial), CERTTMPL_SERIAL_LEN,
	{0x02, CERTTMPL_SERIAL_LEN}, 2},
    [F_TIME] = {"notBefore", offsetof(struct certtmpl_chip, not_before), CERTTMPL_TIME_LEN,
	{V_ASN1_UTCTIME, CERTTMPL_TIME_LEN}, 2},
    [F_UDID] = {"subject CN", offsetof(struct certtmpl_chip, udid), UDID_HEX_LEN, {UDID_HEX_LEN},
	1},
    [F_CHIP_SERIAL] = {"subject serialNumber", offsetof(struct certtmpl_chip, chip_serial),
	CERTTMPL_CHIP_SERIAL_LEN, {CERTTMPL_CHIP_SERIAL_LEN}, 1},
    [F_POINT] = {"subjectPublicKey", offsetof(struct certtmpl_chip, point), CERTTMPL_POINT_LEN,
	{0x03, CERTTMPL_POINT_LEN + 1, 0x00}, 3},
    [F_SKI] = {"subjectKeyIdentifier", offsetof(struct certtmpl_chip, ski), CERTTMPL_SKI_LEN,
	{0x04, CERTTMPL_SKI_LEN}, 2},
};

/* Field f of chip c. */
static const uint8_t *
field_value(const struct certtmpl_chip *c, enum field f)
{
	return (const uint8_t *)c + fields[f].member;
}

struct certtmpl {
	uint8_t *tbs; /* the TBSCertificate of the template chip */
	size_t tbs_len;
	size_t off[F_COUNT]; /* where each variable field starts in tbs */
	size_t spki_off, spki_prefix_len; /* the SPKI up to the point */
	uint8_t *alg; /* the signatureAlgorithm of the Certificate */
	size_t alg_len;
};

/* Where the issuing CA and the vendor name come from. */
struct issuer {
	X509 *cert;
	EVP_PKEY *key;
	const char *vendor;
};

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
static int
add_ski(X509 *x)
{
	const ASN1_BIT_STRING *pk = X509_get0_pubkey_bitstr(x);
	unsigned char md[SHA_DIGEST_LENGTH];
	ASN1_OCTET_STRING *os;
	int ok;

	if (pk == NULL || (os = ASN1_OCTET_STRING_new()) == NULL)
		return -1;
	SHA1(pk->data, (size_t)pk->length, md);
	ok = ASN1_OCTET_STRING_set(os, md, sizeof(md)) &&
	    X509_add1_ext_i2d(x, NID_subject_key_identifier, os, 0, 0) == 1;
	ASN1_OCTET_STRING_free(os);
	return ok ? 0 : -1;
}

/*
 * The reference: the birth certificate of key as OpenSSL builds it from c (whose point and
 * ski are not read: they come from the key) with notBefore `when`.
 */
static X509 *
build_x509(const struct issuer *is, EVP_PKEY *key, const struct certtmpl_chip *c, time_t when)
{
	char udid[UDID_HEX_LEN + 1], serial[CERTTMPL_CHIP_SERIAL_LEN + 1];
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	ASN1_INTEGER *sn = NULL;
	BIGNUM *bn = NULL;
	X509V3_CTX ctx;
	bool ok = false;

	memcpy(udid, c->udid, UDID_HEX_LEN);
	udid[UDID_HEX_LEN] = '\0';
	memcpy(serial, c->chip_serial, CERTTMPL_CHIP_SERIAL_LEN);
	serial[CERTTMPL_CHIP_SERIAL_LEN] = '\0';
	if (x == NULL || (bn = BN_bin2bn(c->serial, CERTTMPL_SERIAL_LEN, NULL)) == NULL ||
	    (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto out;
	X509V3_set_ctx(&ctx, is->cert, NULL, NULL, NULL, 0);
	ok = X509_set_version(x, X509_VERSION_3) && X509_set_serialNumber(x, sn) &&
	    X509_NAME_add_entry_by_txt(
		n, "O", MBSTRING_UTF8, (const unsigned char *)is->vendor, -1, -1, 0) &&
	    X509_NAME_add_entry_by_txt(
		n, "CN", MBSTRING_UTF8, (const unsigned char *)udid, -1, -1, 0) &&
	    X509_NAME_add_entry_by_txt(
		n, "serialNumber", MBSTRING_UTF8, (const unsigned char *)serial, -1, -1, 0) &&
	    X509_set_issuer_name(x, X509_get_subject_name(is->cert)) &&
	    X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &when) != NULL &&
	    ASN1_TIME_set_string_X509(X509_getm_notAfter(x), VENDOR_NOT_AFTER) &&
	    X509_set_pubkey(x, key) &&
	    add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") == 0 &&
	    add_ext(x, &ctx, NID_ext_key_usage, "clientAuth") == 0 && add_ski(x) == 0 &&
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") == 0 &&
	    X509_sign(x, is->key, EVP_sha256()) > 0;
out:
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int
certtmpl_time(time_t when, char out[CERTTMPL_TIME_LEN])
{
	char buf[CERTTMPL_TIME_LEN + 1];
	struct tm tm;

	if (gmtime_r(&when, &tm) == NULL || tm.tm_year < 50 || tm.tm_year >= 150)
		return DEVID_EINVAL;
	snprintf(buf, sizeof(buf), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	memcpy(out, buf, CERTTMPL_TIME_LEN);
	return 0;
}

/*
 * Reads a DER header at p[0..n): tag, then the length in short form or long form of one or two
 * bytes. *hdr is the header's length, *len the content's. -1 if it does not fit in n.
 */
static int
der_header(const uint8_t *p, size_t n, uint8_t *tag, size_t *hdr, size_t *len)
{
	if (n < 2)
		return -1;
	*tag = p[0];
	if (p[1] < 0x80) {
		*hdr = 2;
		*len = p[1];
	} else if (p[1] == 0x81 && n >= 3 && p[2] >= 0x80) {
		*hdr = 3;
		*len = p[2];
	} else if (p[1] == 0x82 && n >= 4 && p[2] != 0) {
		*hdr = 4;
		*len = (size_t)p[2] << 8 | p[3];
	} else {
		return -1;
	}
	return *len <= n - *hdr ? 0 : -1;
}

/* Writes a DER length (at most 0xffff) at p; returns its size. p NULL: only the size. */
static size_t
der_length(uint8_t *p, size_t len)
{
	assert(len <= 0xffff);
	if (len < 0x80) {
		if (p != NULL)
			p[0] = (uint8_t)len;
		return 1;
	}
	if (len <= 0xff) {
		if (p != NULL) {
			p[0] = 0x81;
			p[1] = (uint8_t)len;
		}
		return 2;
	}
	if (p != NULL) {
		p[0] = 0x82;
		p[1] = (uint8_t)(len >> 8);
		p[2] = (uint8_t)len;
	}
	return 3;
}

/* The one place needle occurs in hay; -1 if it occurs nowhere or more than once. */
static int
find_once(const uint8_t *hay, size_t n, const void *needle, size_t m, size_t *off)
{
	const uint8_t *p = memmem(hay, n, needle, m), *q;

	if (p == NULL)
		return -1;
	q = memmem(p + 1, n - (size_t)(p + 1 - hay), needle, m);
	if (q != NULL)
		return -1;
	*off = (size_t)(p - hay);
	return 0;
}

/* A chip's values from its key and random bytes; c->point and c->ski included. */
static int
chip_values(EVP_PKEY *key, time_t when, struct certtmpl_chip *c)
{
	char udid[UDID_HEX_LEN + 1], serial[CERTTMPL_CHIP_SERIAL_LEN + 1];
	uint8_t b[9] = {0x01, 0x23};
	size_t ptlen = 0;

	if (RAND_bytes(c->serial, sizeof(c->serial)) != 1 || RAND_bytes(b + 2, 7) != 1 ||
	    certtmpl_time(when, c->not_before) != 0 || pkey_udid(key, udid) != 0 ||
	    EVP_PKEY_get_octet_string_param(
		key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, c->point, sizeof(c->point), &ptlen) != 1 ||
	    ptlen != sizeof(c->point))
		return -1;
	c->serial[0] &= 0x7f;
	if (c->serial[0] == 0)
		c->serial[0] = 1;
	hex_encode(b, sizeof(b), serial);
	memcpy(c->chip_serial, serial, CERTTMPL_CHIP_SERIAL_LEN);
	memcpy(c->udid, udid, UDID_HEX_LEN);
	SHA1(c->point, sizeof(c->point), c->ski);
	return 0;
}

/*
 * Splits the DER of a certificate into the TBSCertificate and the signatureAlgorithm, and
 * returns the signature's DER (the content of the BIT STRING after its unused-bits byte).
 */
static int
cert_parts(const uint8_t *der, size_t n, size_t *tbs_off, size_t *tbs_len, size_t *alg_off,
    size_t *alg_len, size_t *sig_off, size_t *sig_len)
{
	size_t hdr, len, off;
	uint8_t tag;

	if (der_header(der, n, &tag, &hdr, &len) != 0 || tag != 0x30 || hdr + len != n)
		return -1;
	off = hdr;
	if (der_header(der + off, n - off, &tag, &hdr, &len) != 0 || tag != 0x30)
		return -1;
	*tbs_off = off;
	*tbs_len = hdr + len;
	off += hdr + len;
	if (der_header(der + off, n - off, &tag, &hdr, &len) != 0 || tag != 0x30)
		return -1;
	*alg_off = off;
	*alg_len = hdr + len;
	off += hdr + len;
	if (der_header(der + off, n - off, &tag, &hdr, &len) != 0 || tag != 0x03 || len < 2 ||
	    der[off + hdr] != 0 || off + hdr + len != n)
		return -1;
	*sig_off = off + hdr + 1;
	*sig_len = len - 1;
	return 0;
}

/* Finds the variable fields of the template chip c in t->tbs, with the bytes before them. */
static int
locate(struct certtmpl *t, const struct certtmpl_chip *c, X509 *x, struct devid_error *e)
{
	unsigned char *spki = NULL;
	size_t off;
	int len, rc = DEVID_EINTERNAL;

	for (int f = 0; f < F_COUNT; f++) {
		if (find_once(t->tbs, t->tbs_len, field_value(c, (enum field)f), fields[f].len,
			&off) != 0 ||
		    off < fields[f].nbefore ||
		    memcmp(t->tbs + off - fields[f].nbefore, fields[f].before, fields[f].nbefore) !=
			0) {
			devid_error_set(e, rc,
			    "certificate template: the %s is not where its DER form puts it",
			    fields[f].name);
			goto out;
		}
		t->off[f] = off;
	}
	if ((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki)) <= 0 ||
	    find_once(t->tbs, t->tbs_len, spki, (size_t)len, &t->spki_off) != 0 ||
	    t->spki_off + (size_t)len != t->off[F_POINT] + CERTTMPL_POINT_LEN) {
		devid_error_set(e, rc, "certificate template: the point does not end the SPKI");
		goto out;
	}
	t->spki_prefix_len = t->off[F_POINT] - t->spki_off;
	rc = 0;
out:
	OPENSSL_free(spki);
	return rc;
}

/*
 * The check certtmpl.h promises: for another key, serial, notBefore and chip serial, the
 * template gives the TBSCertificate and the Certificate OpenSSL builds, byte for byte, and the
 * SHA-256 of the SPKI prefix and the point is the UDID pkey_udid() computes.
 */
static int
self_check(const struct certtmpl *t, const struct issuer *is, time_t when, struct devid_error *e)
{
	struct certtmpl_chip c;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	unsigned char *der = NULL;
	uint8_t *tbs = NULL, *out = NULL, spki[128], md[32];
	char udid[UDID_HEX_LEN + 1];
	size_t tbs_off, tbs_len, alg_off, alg_len, sig_off, sig_len, n;
	int len, rc = DEVID_ECRYPTO;

	/* another day, hour and minute, so that every digit of notBefore may differ */
	when -= 400L * 86400 + 3600 + 60 + 1;
	if ((key = pkey_new_p256(e)) == NULL || chip_values(key, when, &c) != 0 ||
	    (x = build_x509(is, key, &c, when)) == NULL || (len = i2d_X509(x, &der)) <= 0) {
		devid_error_ssl(e, rc, "certificate template: cannot make the check certificate");
		goto out;
	}
	rc = DEVID_EINTERNAL;
	if (cert_parts(der, (size_t)len, &tbs_off, &tbs_len, &alg_off, &alg_len, &sig_off,
		&sig_len) != 0 ||
	    (tbs = malloc(t->tbs_len)) == NULL || (out = malloc(certtmpl_cert_max(t))) == NULL) {
		devid_error_set(e, rc, "certificate template: cannot read the check certificate");
		goto out;
	}
	certtmpl_fill(t, &c, tbs);
	if (tbs_len != t->tbs_len || memcmp(der + tbs_off, tbs, tbs_len) != 0) {
		devid_error_set(
		    e, rc, "certificate template: a chip's TBSCertificate differs from OpenSSL's");
		goto out;
	}
	n = certtmpl_wrap(t, tbs, der + sig_off, sig_len, out);
	if (n != (size_t)len || memcmp(der, out, n) != 0) {
		devid_error_set(
		    e, rc, "certificate template: a chip's Certificate differs from OpenSSL's");
		goto out;
	}
	assert(t->spki_prefix_len + CERTTMPL_POINT_LEN <= sizeof(spki));
	memcpy(spki, t->tbs + t->spki_off, t->spki_prefix_len);
	memcpy(spki + t->spki_prefix_len, c.point, CERTTMPL_POINT_LEN);
	SHA256(spki, t->spki_prefix_len + CERTTMPL_POINT_LEN, md);
	hex_encode(md, sizeof(md), udid);
	if (memcmp(udid, c.udid, UDID_HEX_LEN) != 0) {
		devid_error_set(
		    e, rc, "certificate template: the UDID is not the SHA-256 of the SPKI");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(der);
	free(tbs);
	free(out);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* CERTTMPL_SIG_MAX and the signature algorithm of the template hold for P-256 keys only. */
static bool
key_is_p256(EVP_PKEY *key)
{
	char name[64];
	size_t len = 0;

	return EVP_PKEY_is_a(key, "EC") &&
	    EVP_PKEY_get_group_name(key, name, sizeof(name), &len) == 1 &&
	    (strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0);
}

struct certtmpl *
certtmpl_new(X509 *issuing, EVP_PKEY *issuing_key, const char *vendor, struct devid_error *e)
{
	struct issuer is = {issuing, issuing_key, vendor};
	struct certtmpl *t = NULL;
	struct certtmpl_chip c;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	unsigned char *der = NULL;
	size_t tbs_off, tbs_len, alg_off, alg_len, sig_off, sig_len;
	time_t when = time(NULL);
	int len, rc = DEVID_ECRYPTO;

	if (!key_is_p256(issuing_key)) {
		rc = devid_error_set(
		    e, DEVID_EINVAL, "certificate template: the issuing CA key is not a P-256 key");
		goto out;
	}
	if (certtmpl_time(when, c.not_before) != 0) {
		rc = devid_error_set(e, DEVID_EINTERNAL,
		    "certificate template: the clock is outside the years of UTCTime");
		goto out;
	}
	if ((key = pkey_new_p256(e)) == NULL || chip_values(key, when, &c) != 0 ||
	    (x = build_x509(&is, key, &c, when)) == NULL || (len = i2d_X509(x, &der)) <= 0) {
		devid_error_ssl(
		    e, rc, "certificate template: cannot make the template certificate");
		goto out;
	}
	rc = DEVID_EINTERNAL;
	if (cert_parts(der, (size_t)len, &tbs_off, &tbs_len, &alg_off, &alg_len, &sig_off,
		&sig_len) != 0) {
		devid_error_set(
		    e, rc, "certificate template: cannot read the template certificate");
		goto out;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL || (t->tbs = malloc(tbs_len)) == NULL ||
	    (t->alg = malloc(alg_len)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "certificate template: out of memory");
		goto out;
	}
	memcpy(t->tbs, der + tbs_off, tbs_len);
	t->tbs_len = tbs_len;
	memcpy(t->alg, der + alg_off, alg_len);
	t->alg_len = alg_len;
	if ((rc = locate(t, &c, x, e)) != 0 || (rc = self_check(t, &is, when, e)) != 0)
		goto out;
	rc = 0;
out:
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(key);
	if (rc != 0) {
		certtmpl_free(t);
		return NULL;
	}
	return t;
}

void
certtmpl_free(struct certtmpl *t)
{
	if (t == NULL)
		return;
	free(t->tbs);
	free(t->alg);
	free(t);
}

size_t
certtmpl_tbs_len(const struct certtmpl *t)
{
	return t->tbs_len;
}

size_t
certtmpl_cert_max(const struct certtmpl *t)
{
	size_t body = t->tbs_len + t->alg_len + 1 + der_length(NULL, CERTTMPL_SIG_MAX + 1) +
	    CERTTMPL_SIG_MAX + 1;

	return 1 + der_length(NULL, body) + body;
}

const uint8_t *
certtmpl_spki_prefix(const struct certtmpl *t, size_t *len)
{
	*len = t->spki_prefix_len;
	return t->tbs + t->spki_off;
}

void
certtmpl_fill(const struct certtmpl *t, const struct certtmpl_chip *c, uint8_t *tbs)
{
	assert(c->serial[0] >= 0x01 && c->serial[0] <= 0x7f);
	memcpy(tbs, t->tbs, t->tbs_len);
	for (int f = 0; f < F_COUNT; f++)
		memcpy(tbs + t->off[f], field_value(c, (enum field)f), fields[f].len);
}

size_t
certtmpl_wrap(
    const struct certtmpl *t, const uint8_t *tbs, const uint8_t *sig, size_t siglen, uint8_t *out)
{
	size_t body, o = 0;

	if (siglen < 1 || siglen > CERTTMPL_SIG_MAX)
		return 0;
	body = t->tbs_len + t->alg_len + 1 + der_length(NULL, siglen + 1) + siglen + 1;
	out[o++] = 0x30;
	o += der_length(out + o, body);
	memcpy(out + o, tbs, t->tbs_len);
	o += t->tbs_len;
	memcpy(out + o, t->alg, t->alg_len);
	o += t->alg_len;
	out[o++] = 0x03;
	o += der_length(out + o, siglen + 1);
	out[o++] = 0x00;
	memcpy(out + o, sig, siglen);
	return o + siglen;
}
