/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "limits.h"
#include "x509.h"
#include "banned.h"

X509 *
x509_from_der(const uint8_t *p, size_t n, const char *what, struct devid_error *e)
{
	const unsigned char *q = p;
	X509 *x;

	if (n > MAX_CERT_DER) {
		devid_error_set(
		    e, DEVID_EINVAL, "%s: %zu bytes of DER, limit %d", what, n, MAX_CERT_DER);
		return NULL;
	}
	if ((x = d2i_X509(NULL, &q, (long)n)) == NULL) {
		devid_error_ssl(e, DEVID_EINVAL, "%s: not a DER certificate", what);
		return NULL;
	}
	if (q != p + n) {
		devid_error_set(e, DEVID_EINVAL, "%s: %zu trailing bytes after the DER certificate",
		    what, (size_t)(p + n - q));
		X509_free(x);
		return NULL;
	}
	X509_check_purpose(x, -1, 0);
	if ((X509_get_extension_flags(x) & EXFLAG_INVALID) != 0) {
		devid_error_set(
		    e, DEVID_EINVAL, "%s: RFC 5280 4.2: malformed or duplicate extension", what);
		X509_free(x);
		return NULL;
	}
	ERR_clear_error();
	return x;
}

int
file_read_all(const char *path, size_t max, uint8_t **out, size_t *len, struct devid_error *e)
{
	FILE *f;
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, r;
	int rc = DEVID_EIO;

	*out = NULL;
	*len = 0;
	if ((f = fopen(path, "rb")) == NULL)
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	for (;;) {
		if (cap - n < 4096) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (n > max) {
			rc = devid_error_set(
			    e, DEVID_ELIMIT, "%s: larger than %zu bytes", path, max);
			goto out;
		}
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		devid_error_set(e, rc, "%s: read error", path);
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

STACK_OF(X509) *
x509_load_pem_mem(const char *p, size_t n, const char *what, struct devid_error *e)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio = NULL;
	X509 *x;

	if (n > MAX_PEM_FILE || (bio = BIO_new_mem_buf(p, (int)n)) == NULL ||
	    (sk = sk_X509_new_null()) == NULL) {
		devid_error_set(e, n > MAX_PEM_FILE ? DEVID_ELIMIT : DEVID_ENOMEM,
		    "%s: too large or out of memory", what);
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		X509_check_purpose(x, -1, 0);
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
			goto fail;
		}
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0) {
		devid_error_set(e, DEVID_EINVAL, "%s: no PEM certificate", what);
		goto fail;
	}
	goto out;
fail:
	sk_X509_pop_free(sk, X509_free);
	sk = NULL;
out:
	BIO_free(bio);
	return sk;
}

STACK_OF(X509) *
x509_load_pem_file_all(const char *path, struct devid_error *e)
{
	STACK_OF(X509) *sk;
	uint8_t *buf;
	size_t len;

	if (file_read_all(path, MAX_PEM_FILE, &buf, &len, e) != 0)
		return NULL;
	sk = x509_load_pem_mem((const char *)buf, len, path, e);
	free(buf);
	return sk;
}

X509 *
x509_load_pem_file(const char *path, struct devid_error *e)
{
	STACK_OF(X509) *sk;
	X509 *x;

	if ((sk = x509_load_pem_file_all(path, e)) == NULL)
		return NULL;
	if (sk_X509_num(sk) != 1) {
		devid_error_set(e, DEVID_EINVAL, "%s: %d certificates, expected exactly one", path,
		    sk_X509_num(sk));
		sk_X509_pop_free(sk, X509_free);
		return NULL;
	}
	x = sk_X509_shift(sk);
	sk_X509_free(sk);
	return x;
}

EVP_PKEY *
pkey_load_pem_file(const char *path, struct devid_error *e)
{
	uint8_t *buf = NULL;
	size_t len;
	BIO *bio;
	EVP_PKEY *k = NULL;

	if (file_read_all(path, MAX_PEM_FILE, &buf, &len, e) != 0)
		return NULL;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL)
		k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	if (k == NULL)
		devid_error_ssl(e, DEVID_EINVAL, "%s: not an unencrypted PEM private key", path);
	BIO_free(bio);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return k;
}

static int
write_pem(const char *path, int mode, bool exclusive, X509 *x, EVP_PKEY *k, struct devid_error *e)
{
	int fd, flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, rc = DEVID_EIO;
	FILE *f;

	if (exclusive)
		flags |= O_EXCL;
	if ((fd = open(path, flags, mode)) < 0)
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	}
	if ((x != NULL && PEM_write_X509(f, x) != 1) ||
	    (k != NULL && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1)) {
		devid_error_ssl(e, rc, "%s: cannot write PEM", path);
		fclose(f);
		return rc;
	}
	if (fclose(f) != 0)
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	return 0;
}

int
x509_write_pem_file(const char *path, X509 *x, struct devid_error *e)
{
	return write_pem(path, 0644, false, x, NULL, e);
}

int
pkey_write_pem_file(const char *path, EVP_PKEY *key, struct devid_error *e)
{
	return write_pem(path, 0600, true, NULL, key, e);
}

EVP_PKEY *
pkey_new_p256(struct devid_error *e)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (k == NULL)
		devid_error_ssl(e, DEVID_ECRYPTO, "cannot generate a P-256 key");
	return k;
}

int
pkey_udid(EVP_PKEY *key, char out[UDID_HEX_LEN + 1])
{
	unsigned char *der = NULL;
	uint8_t md[32];
	int n;

	if ((n = i2d_PUBKEY(key, &der)) <= 0)
		return DEVID_ECRYPTO;
	SHA256(der, (size_t)n, md);
	OPENSSL_free(der);
	hex_encode(md, sizeof(md), out);
	return 0;
}

int
x509_udid(X509 *x, char out[UDID_HEX_LEN + 1])
{
	X509_PUBKEY *pk = X509_get_X509_PUBKEY(x);
	unsigned char *der = NULL;
	uint8_t md[32];
	int n;

	if (pk == NULL || (n = i2d_X509_PUBKEY(pk, &der)) <= 0)
		return DEVID_ECRYPTO;
	SHA256(der, (size_t)n, md);
	OPENSSL_free(der);
	hex_encode(md, sizeof(md), out);
	return 0;
}

bool
x509_subject_attr(X509 *x, int nid, size_t max, bool (*ok)(unsigned char), char *out)
{
	const X509_NAME *name = X509_get_subject_name(x);
	const ASN1_STRING *v;
	const unsigned char *p;
	int i, n;

	if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(name, nid, i) >= 0)
		return false;
	v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	p = ASN1_STRING_get0_data(v);
	n = ASN1_STRING_length(v);
	if (n < 1 || (size_t)n > max)
		return false;
	for (int k = 0; k < n; k++) {
		if (!ok(p[k]))
			return false;
	}
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	return true;
}

static bool
udid_char(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

bool
x509_subject_udid(X509 *x, char out[UDID_HEX_LEN + 1])
{
	return x509_subject_attr(x, NID_commonName, UDID_HEX_LEN, udid_char, out) &&
	    strlen(out) == UDID_HEX_LEN;
}

/* The DER of an uncompressed P-256 and P-384 SubjectPublicKeyInfo up to the point. */
static const uint8_t spki_p256_head[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
static const uint8_t spki_p384_head[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00};

int
x509_spki_check_uncompressed(const X509_PUBKEY *pk, struct devid_error *e)
{
	ASN1_OBJECT *alg = NULL;
	X509_ALGOR *algor = NULL;
	const unsigned char *pt = NULL;
	const uint8_t *head;
	const void *pval = NULL;
	unsigned char *der = NULL;
	size_t coord, headlen;
	int ptype = V_ASN1_UNDEF, ptlen = 0, curve, n, rc = DEVID_EINVAL;

	if (pk == NULL || X509_PUBKEY_get0_param(&alg, &pt, &ptlen, &algor, pk) != 1)
		return devid_error_set(e, rc, "no public key");
	if (OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey)
		return devid_error_set(e, rc, "RFC 5480 2.1.1: the key is not an EC key");
	X509_ALGOR_get0(NULL, &ptype, &pval, algor);
	if (ptype != V_ASN1_OBJECT)
		return devid_error_set(e, rc,
		    "RFC 5480 2.1.1: the curve must be named by its OID (no explicit or implicit "
		    "parameters)");
	curve = OBJ_obj2nid(pval);
	if (curve == NID_X9_62_prime256v1) {
		coord = 32;
		head = spki_p256_head;
		headlen = sizeof(spki_p256_head);
	} else if (curve == NID_secp384r1) {
		coord = 48;
		head = spki_p384_head;
		headlen = sizeof(spki_p384_head);
	} else {
		return devid_error_set(e, rc, "the key is on curve %s (only P-256 and P-384)",
		    curve != NID_undef ? OBJ_nid2sn(curve) : "unknown");
	}
	if (ptlen < 1)
		return devid_error_set(
		    e, rc, "EC point must be uncompressed (RFC 5480 2.2): the point is empty");
	switch (pt[0]) {
	case 0x04:
		break;
	case 0x02:
	case 0x03:
		return devid_error_set(e, rc,
		    "EC point must be uncompressed (RFC 5480 2.2): compressed form %02x", pt[0]);
	case 0x06:
	case 0x07:
		return devid_error_set(e, rc,
		    "EC point must be uncompressed (RFC 5480 2.2 forbids the hybrid form): hybrid "
		    "form %02x",
		    pt[0]);
	default:
		return devid_error_set(
		    e, rc, "EC point must be uncompressed (RFC 5480 2.2): form byte %02x", pt[0]);
	}
	if ((size_t)ptlen != 1 + 2 * coord)
		return devid_error_set(e, rc,
		    "EC point must be uncompressed (RFC 5480 2.2): %d bytes, %zu on %s", ptlen,
		    1 + 2 * coord, OBJ_nid2sn(curve));
	/* what is left to vary is the BIT STRING's count of unused bits */
	if ((n = i2d_X509_PUBKEY(pk, &der)) <= 0) {
		rc = devid_error_ssl(e, DEVID_ECRYPTO, "the public key does not encode");
		goto out;
	}
	if ((size_t)n != headlen + 1 + 2 * coord || memcmp(der, head, headlen) != 0 ||
	    memcmp(der + headlen, pt, (size_t)ptlen) != 0) {
		devid_error_set(e, rc,
		    "RFC 5480 2: the SubjectPublicKeyInfo is not in its one DER form (a "
		    "subjectPublicKey BIT STRING with unused bits)");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(der);
	return rc;
}

int
x509_sha256(X509 *x, uint8_t out[32])
{
	unsigned int n = 32;

	return X509_digest(x, EVP_sha256(), out, &n) == 1 && n == 32 ? 0 : DEVID_ECRYPTO;
}

const ASN1_OCTET_STRING *
x509_get0_ski(X509 *x)
{
	return X509_get0_subject_key_id(x);
}

X509_STORE *
x509_store_new(STACK_OF(X509) *roots, struct devid_error *e)
{
	X509_STORE *st;

	if ((st = X509_STORE_new()) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "trust store: out of memory");
		return NULL;
	}
	for (int i = 0; i < sk_X509_num(roots); i++) {
		if (X509_STORE_add_cert(st, sk_X509_value(roots, i)) != 1) {
			devid_error_ssl(e, DEVID_EINVAL, "trust store: cannot add root %d", i);
			X509_STORE_free(st);
			return NULL;
		}
	}
	return st;
}

static OSSL_LIB_CTX *nokey_libctx;
static pthread_once_t nokey_once = PTHREAD_ONCE_INIT;

static void
nokey_init(void)
{
	OSSL_LIB_CTX *l = OSSL_LIB_CTX_new();

	if (l != NULL && OSSL_PROVIDER_load(l, "null") == NULL) {
		OSSL_LIB_CTX_free(l);
		l = NULL;
	}
	nokey_libctx = l;
	ERR_clear_error();
}

OSSL_LIB_CTX *
x509_nokey_libctx(void)
{
	return pthread_once(&nokey_once, nokey_init) == 0 ? nokey_libctx : NULL;
}

bool
x509_spki_same(const X509_PUBKEY *a, const X509_PUBKEY *b)
{
	const unsigned char *ka, *kb;
	X509_ALGOR *aa, *ab;
	int la, lb;

	return a != NULL && b != NULL && X509_PUBKEY_get0_param(NULL, &ka, &la, &aa, a) == 1 &&
	    X509_PUBKEY_get0_param(NULL, &kb, &lb, &ab, b) == 1 && X509_ALGOR_cmp(aa, ab) == 0 &&
	    la == lb && la > 0 && memcmp(ka, kb, (size_t)la) == 0;
}

/* The earliest notAfter of a verified chain: when its verification stops holding. */
static int
chain_not_after(STACK_OF(X509) *chain, time_t *out)
{
	struct tm tm;
	time_t t;

	*out = (time_t)INT64_MAX;
	for (int i = 0; i < sk_X509_num(chain); i++) {
		if (ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)), &tm) != 1)
			return -1;
		if ((t = timegm(&tm)) < *out)
			*out = t;
	}
	return 0;
}

int
x509_chain_verify(X509_STORE *roots, X509 *leaf, STACK_OF(X509) *untrusted,
    const struct x509_verify_opts *o, struct devid_error *e)
{
	X509_STORE_CTX *ctx;
	X509_VERIFY_PARAM *param;
	int rc = DEVID_ECRYPTO, err, depth;

	if ((ctx = X509_STORE_CTX_new()) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "chain: out of memory");
	if (X509_STORE_CTX_init(ctx, roots, leaf, untrusted) != 1) {
		devid_error_ssl(e, DEVID_EINTERNAL, "chain: cannot start verification");
		goto out;
	}
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
	if (o->partial_chain)
		X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
	else
		X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
	if (o->purpose != X509_PURPOSE_ANY && X509_STORE_CTX_set_purpose(ctx, o->purpose) != 1) {
		devid_error_ssl(e, DEVID_EINTERNAL, "chain: cannot set purpose");
		goto out;
	}
	if (o->at != 0)
		X509_VERIFY_PARAM_set_time(param, o->at);
	X509_VERIFY_PARAM_set_auth_level(param, 2);
	if (o->has_max_depth)
		X509_VERIFY_PARAM_set_depth(param, o->max_depth);
	if (X509_verify_cert(ctx) != 1) {
		err = X509_STORE_CTX_get_error(ctx);
		depth = X509_STORE_CTX_get_error_depth(ctx);
		devid_error_set(e, rc, "chain: certificate at depth %d: %s", depth,
		    X509_verify_cert_error_string(err));
		ERR_clear_error();
		goto out;
	}
	if (o->valid_until != NULL &&
	    chain_not_after(X509_STORE_CTX_get0_chain(ctx), o->valid_until) != 0) {
		rc = devid_error_set(e, DEVID_EINTERNAL, "chain: unreadable notAfter");
		goto out;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	return rc;
}

int
x509_check_idevid(X509 *x, struct devid_error *e)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
	uint32_t flags = X509_get_extension_flags(x);
	EVP_PKEY *pk = X509_get0_pubkey(x);
	char curve[32];
	int crit = -1, idx;

	if (X509_get_version(x) != X509_VERSION_3)
		return devid_error_set(
		    e, DEVID_EINVAL, "RFC 5280 4.1.2.1: not a version 3 certificate");
	if (serial == NULL || ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER ||
	    ASN1_STRING_length(serial) > 20 || ASN1_STRING_length(serial) < 1 ||
	    (ASN1_STRING_length(serial) == 1 && ASN1_STRING_get0_data(serial)[0] == 0))
		return devid_error_set(e, DEVID_EINVAL,
		    "RFC 5280 4.1.2.2: serial must be positive and at most 20 bytes");
	/* the encoding first: a hybrid point that does not decode is still named as one */
	if (x509_spki_check_uncompressed(X509_get_X509_PUBKEY(x), e) != 0) {
		devid_error_prefix(e, "device key");
		return DEVID_EINVAL;
	}
	if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(pk, curve, sizeof(curve), NULL) != 1 ||
	    (strcmp(curve, "prime256v1") != 0 && strcmp(curve, "secp384r1") != 0))
		return devid_error_set(e, DEVID_EINVAL, "device key: not ECDSA P-256 or P-384");
	if ((flags & EXFLAG_CA) != 0)
		return devid_error_set(e, DEVID_EINVAL, "RFC 5280 4.2.1.9: CA bit set");
	idx = X509_get_ext_by_NID(x, NID_key_usage, -1);
	if (idx < 0)
		return devid_error_set(e, DEVID_EINVAL, "RFC 5280 4.2.1.3: keyUsage missing");
	crit = X509_EXTENSION_get_critical(X509_get_ext(x, idx));
	if (!crit)
		return devid_error_set(
		    e, DEVID_EINVAL, "802.1AR 8.10.1: keyUsage must be critical");
	if ((X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE) == 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "RFC 5280 4.2.1.3: keyUsage lacks digitalSignature");
	if ((flags & EXFLAG_XKUSAGE) != 0 && (X509_get_extended_key_usage(x) & XKU_SSL_CLIENT) == 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "RFC 5280 4.2.1.12: extendedKeyUsage lacks clientAuth");
	if (X509_get0_authority_key_id(x) == NULL)
		return devid_error_set(
		    e, DEVID_EINVAL, "RFC 5280 4.2.1.1: authorityKeyIdentifier missing");
	return 0;
}

/* A random positive 16-byte serial (RFC 5280 4.1.2.2). */
int
x509_set_random_serial(X509 *x)
{
	unsigned char b[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[0] &= 0x7f;
	if (b[0] == 0)
		b[0] = 1;
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
		return -1;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

int
x509_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}
