#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/dynbuf.h"
#include "lib/json.h"
#include "lib/jws.h"
#include "lib/x509.h"
#include "vendor.h"
#include "lib/banned.h"

#define MINT_BLOCK 64 /* chips per unit of work and of ordered output */
#define DEFAULT_PART "DEVID-SE1-P256"
#define DEFAULT_MODEL "DEVID-SE1"
#define ENTRY_MAX_BYTES 16384

/* What every chip of the reel shares, prepared once. */
struct mint_shared {
	const struct mint_opts *o;
	struct vendor_pki pki;
	X509_EXTENSION *ext_bc, *ext_ku, *ext_eku, *ext_aki;
	char *issuing_b64; /* x5c[1] */
	char *prot_b64; /* the protected header of every entry */
	char timestamp[32]; /* provisioningTimestamp */
	char chips_dir[PATH_MAX];

	atomic_size_t next_block;
	size_t nblocks;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct dynbuf *blocks; /* per block; done[] says when ready */
	bool *done;
	atomic_bool failed;
	struct devid_error err;
};

struct mint_worker {
	struct mint_shared *s;
	EVP_PKEY_CTX *keygen;
};

static void
shared_fail(struct mint_shared *s, const struct devid_error *e)
{
	pthread_mutex_lock(&s->lock);
	if (!s->failed) {
		s->failed = true;
		s->err = *e;
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* A chip serial in the style of secure elements: 0123 + 7 random bytes, 18 hex digits. */
static int
chip_serial(char out[19])
{
	uint8_t b[9] = {0x01, 0x23};

	if (RAND_bytes(b + 2, 7) != 1)
		return -1;
	hex_encode(b, sizeof(b), out);
	return 0;
}

static int
add_ski(X509 *x)
{
	const ASN1_BIT_STRING *pk = X509_get0_pubkey_bitstr(x);
	unsigned char md[SHA_DIGEST_LENGTH];
	ASN1_OCTET_STRING *os;
	int ok;

	if (pk == NULL || (os = ASN1_OCTET_STRING_new()) == NULL)
		return -1;
	/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits */
	SHA1(pk->data, (size_t)pk->length, md);
	ok = ASN1_OCTET_STRING_set(os, md, sizeof(md)) &&
	    X509_add1_ext_i2d(x, NID_subject_key_identifier, os, 0, 0) == 1;
	ASN1_OCTET_STRING_free(os);
	return ok ? 0 : -1;
}

static X509 *
chip_cert(struct mint_shared *s, EVP_PKEY *key, const char *udid, const char *serial)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	unsigned char b[16];
	ASN1_INTEGER *sn = NULL;
	BIGNUM *bn = NULL;
	bool ok = false;

	if (x == NULL || RAND_bytes(b, sizeof(b)) != 1)
		goto out;
	b[0] &= 0x7f;
	if (b[0] == 0)
		b[0] = 1;
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL ||
	    (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto out;
	ok = X509_set_version(x, X509_VERSION_3) && X509_set_serialNumber(x, sn) &&
	    X509_NAME_add_entry_by_txt(
		n, "O", MBSTRING_UTF8, (const unsigned char *)s->pki.name, -1, -1, 0) &&
	    X509_NAME_add_entry_by_txt(
		n, "CN", MBSTRING_UTF8, (const unsigned char *)udid, -1, -1, 0) &&
	    X509_NAME_add_entry_by_txt(
		n, "serialNumber", MBSTRING_UTF8, (const unsigned char *)serial, -1, -1, 0) &&
	    X509_set_issuer_name(x, X509_get_subject_name(s->pki.issuing)) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL &&
	    ASN1_TIME_set_string_X509(X509_getm_notAfter(x), VENDOR_NOT_AFTER) &&
	    X509_set_pubkey(x, key) && X509_add_ext(x, s->ext_bc, -1) &&
	    X509_add_ext(x, s->ext_ku, -1) && X509_add_ext(x, s->ext_eku, -1) && add_ski(x) == 0 &&
	    X509_add_ext(x, s->ext_aki, -1) && X509_sign(x, s->pki.issuing_key, EVP_sha256()) > 0;
out:
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Appends one SignedSecureElement entry for a new chip; keeps its key if asked. */
static int
mint_chip(struct mint_worker *w, size_t index, struct dynbuf *out, struct devid_error *e)
{
	struct mint_shared *s = w->s;
	const struct mint_opts *o = s->o;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	unsigned char *der = NULL;
	uint8_t pt[65], sig[ES256_SIG_LEN];
	size_t ptlen = 0;
	char udid[UDID_HEX_LEN + 1], serial[19], path[PATH_MAX];
	char *x = NULL, *y = NULL, *cert_b64 = NULL, *pay_b64 = NULL, *sig_b64 = NULL;
	struct dynbuf payload, input;
	int derlen, rc = DEVID_ECRYPTO;

	dynbuf_init(&payload, ENTRY_MAX_BYTES);
	dynbuf_init(&input, ENTRY_MAX_BYTES * 2);
	if (EVP_PKEY_keygen(w->keygen, &key) != 1 || pkey_udid(key, udid) != 0 ||
	    chip_serial(serial) != 0) {
		devid_error_ssl(e, rc, "chip %zu: key generation failed", index);
		goto out;
	}
	if ((cert = chip_cert(s, key, udid, serial)) == NULL) {
		devid_error_ssl(e, rc, "chip %zu: cannot make the birth certificate", index);
		goto out;
	}
	if (EVP_PKEY_get_octet_string_param(
		key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &ptlen) != 1 ||
	    ptlen != 65 || (derlen = i2d_X509(cert, &der)) <= 0) {
		devid_error_ssl(e, rc, "chip %zu: cannot encode the key", index);
		goto out;
	}
	rc = DEVID_ENOMEM;
	if ((x = b64url_encode(pt + 1, 32)) == NULL || (y = b64url_encode(pt + 33, 32)) == NULL ||
	    (cert_b64 = b64_encode(der, (size_t)derlen)) == NULL)
		goto oom;
	if (dynbuf_addf(&payload,
		"{\"version\":1,\"model\":\"%s\",\"partNumber\":\"%s\","
		"\"manufacturer\":{\"organizationName\":\"%s\",\"organizationalUnitName\":"
		"\"Secure Elements\"},"
		"\"provisioner\":{\"organizationName\":\"%s\",\"organizationalUnitName\":"
		"\"Secure Provisioning\"},"
		"\"distributor\":{\"organizationName\":\"%s\",\"organizationalUnitName\":"
		"\"Distribution\"},"
		"\"groupId\":\"%s\",\"provisioningTimestamp\":\"%s\",\"uniqueId\":\"%s\","
		"\"publicKeySet\":{\"keys\":[{\"kid\":\"0\",\"kty\":\"EC\",\"crv\":\"P-256\","
		"\"x\":\"%s\",\"y\":\"%s\",\"x5c\":[\"%s\",\"%s\"]}]}}",
		DEFAULT_MODEL, o->part_number ? o->part_number : DEFAULT_PART, s->pki.name,
		s->pki.name, s->pki.name, o->batch, s->timestamp, serial, x, y, cert_b64,
		s->issuing_b64) != 0)
		goto oom;
	if ((pay_b64 = b64url_encode(payload.p, payload.len)) == NULL ||
	    dynbuf_addf(&input, "%s.%s", s->prot_b64, pay_b64) != 0)
		goto oom;
	if (es256_sign(s->pki.signer_key, input.p, input.len, sig, e) != 0) {
		rc = DEVID_ECRYPTO;
		goto out;
	}
	if ((sig_b64 = b64url_encode(sig, sizeof(sig))) == NULL)
		goto oom;
	if (dynbuf_addf(out,
		"%s{\"payload\":\"%s\",\"protected\":\"%s\",\"header\":{\"uniqueId\":\"%s\"},"
		"\"signature\":\"%s\"}",
		index == 0 ? "  " : ",\n  ", pay_b64, s->prot_b64, serial, sig_b64) != 0)
		goto oom;
	if (index < o->keep_keys) {
		rc = DEVID_EIO;
		snprintf(path, sizeof(path), "%s/%s.pem", s->chips_dir, udid);
		if (x509_write_pem_file(path, cert, e) != 0)
			goto out;
		snprintf(path, sizeof(path), "%s/%s.key", s->chips_dir, udid);
		if (pkey_write_pem_file(path, key, e) != 0)
			goto out;
	}
	rc = 0;
	goto out;
oom:
	devid_error_set(e, rc, "chip %zu: out of memory", index);
out:
	dynbuf_release(&payload);
	dynbuf_release(&input);
	OPENSSL_free(der);
	free(x);
	free(y);
	free(cert_b64);
	free(pay_b64);
	free(sig_b64);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

static void *
mint_thread(void *arg)
{
	struct mint_worker *w = arg;
	struct mint_shared *s = w->s;
	struct devid_error e;
	size_t blk, first, last;
	struct dynbuf buf;

	devid_error_clear(&e);
	while ((blk = atomic_fetch_add(&s->next_block, 1)) < s->nblocks) {
		dynbuf_init(&buf, (size_t)MINT_BLOCK * ENTRY_MAX_BYTES);
		first = blk * MINT_BLOCK;
		last = first + MINT_BLOCK;
		if (last > s->o->count)
			last = s->o->count;
		for (size_t i = first; i < last; i++) {
			if (s->failed || mint_chip(w, i, &buf, &e) != 0) {
				if (!s->failed)
					shared_fail(s, &e);
				dynbuf_release(&buf);
				return NULL;
			}
		}
		pthread_mutex_lock(&s->lock);
		s->blocks[blk] = buf;
		s->done[blk] = true;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

static int
prepare_shared(struct mint_shared *s, struct devid_error *e)
{
	X509V3_CTX ctx;
	unsigned char *der = NULL;
	uint8_t x5t[32];
	const ASN1_OCTET_STRING *ski;
	char *kid = NULL, *x5t_b64 = NULL, hdr[256];
	struct tm tm;
	time_t now = time(NULL);
	int derlen, rc = DEVID_ECRYPTO;

	gmtime_r(&now, &tm);
	strftime(s->timestamp, sizeof(s->timestamp), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	X509V3_set_ctx(&ctx, s->pki.issuing, NULL, NULL, NULL, 0);
	s->ext_bc = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:FALSE");
	s->ext_ku = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,digitalSignature");
	s->ext_eku = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, "clientAuth");
	s->ext_aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	if (!s->ext_bc || !s->ext_ku || !s->ext_eku || !s->ext_aki) {
		devid_error_ssl(e, rc, "mint: cannot prepare certificate extensions");
		goto out;
	}
	if ((derlen = i2d_X509(s->pki.issuing, &der)) <= 0 ||
	    (s->issuing_b64 = b64_encode(der, (size_t)derlen)) == NULL) {
		devid_error_ssl(e, rc, "mint: cannot encode the issuing CA");
		goto out;
	}
	if ((ski = x509_get0_ski(s->pki.signer)) == NULL || x509_sha256(s->pki.signer, x5t) != 0) {
		devid_error_set(e, rc, "mint: the manifest signer has no subjectKeyIdentifier");
		goto out;
	}
	if ((kid = b64url_encode(ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski))) ==
		NULL ||
	    (x5t_b64 = b64url_encode(x5t, sizeof(x5t))) == NULL)
		goto out;
	snprintf(hdr, sizeof(hdr),
	    "{\"typ\":\"JWT\",\"alg\":\"ES256\",\"kid\":\"%s\",\"x5t#S256\":\"%s\"}", kid, x5t_b64);
	if ((s->prot_b64 = b64url_encode((const uint8_t *)hdr, strlen(hdr))) == NULL)
		goto out;
	rc = 0;
out:
	OPENSSL_free(der);
	free(kid);
	free(x5t_b64);
	return rc;
}

static void
release_shared(struct mint_shared *s)
{
	X509_EXTENSION_free(s->ext_bc);
	X509_EXTENSION_free(s->ext_ku);
	X509_EXTENSION_free(s->ext_eku);
	X509_EXTENSION_free(s->ext_aki);
	free(s->issuing_b64);
	free(s->prot_b64);
	if (s->blocks != NULL)
		for (size_t i = 0; i < s->nblocks; i++)
			dynbuf_release(&s->blocks[i]);
	free(s->blocks);
	free(s->done);
	vendor_pki_release(&s->pki);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
}

/* The signed batch descriptor. */
static int
write_descriptor(
    struct mint_shared *s, const char *claim_hash, const char *path, struct devid_error *e)
{
	const ASN1_OCTET_STRING *ski = x509_get0_ski(s->pki.signer);
	uint8_t x5t[32];
	json_t *payload = NULL, *jws = NULL;
	char *text = NULL;
	FILE *f = NULL;
	int rc = DEVID_ENOMEM;

	payload = json_pack("{s:i, s:s, s:s, s:s, s:I, s:s, s:s}", "version", 1, "vendor",
	    s->pki.name, "batchId", s->o->batch, "partNumber",
	    s->o->part_number ? s->o->part_number : DEFAULT_PART, "count", (json_int_t)s->o->count,
	    "claimSha256", claim_hash, "createdAt", s->timestamp);
	if (payload == NULL || (text = json_dump_compact(payload)) == NULL)
		goto out;
	if (x509_sha256(s->pki.signer, x5t) != 0 ||
	    (jws = jws_sign_flat(s->pki.signer_key, ASN1_STRING_get0_data(ski),
		 (size_t)ASN1_STRING_length(ski), x5t, (const uint8_t *)text, strlen(text), e)) ==
		NULL) {
		rc = DEVID_ECRYPTO;
		goto out;
	}
	rc = DEVID_EIO;
	if ((f = fopen(path, "w")) == NULL || json_dumpf(jws, f, JSON_INDENT(2)) != 0 ||
	    fputc('\n', f) == EOF) {
		devid_error_set(e, rc, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (f != NULL && fclose(f) != 0 && rc == 0)
		rc = devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	free(text);
	json_decref(payload);
	json_decref(jws);
	return rc;
}

/* The reel directory must be new or empty. */
static int
make_out_dir(const char *out, struct devid_error *e)
{
	char path[PATH_MAX];
	struct stat st;

	if (mkdir(out, 0755) != 0 && errno != EEXIST)
		return devid_error_set(e, DEVID_EIO, "%s: %s", out, strerror(errno));
	snprintf(path, sizeof(path), "%s/manifest.json", out);
	if (stat(path, &st) == 0)
		return devid_error_set(
		    e, DEVID_ECONFLICT, "%s already exists; refusing to overwrite a reel", path);
	snprintf(path, sizeof(path), "%s/chips", out);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	return 0;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
vendor_mint(const struct mint_opts *o, struct mint_result *res, struct devid_error *e)
{
	struct mint_shared s;
	struct mint_worker w[64];
	pthread_t tid[64];
	struct claim_code claim;
	char path[PATH_MAX], tmp[PATH_MAX], hash[65];
	FILE *f = NULL;
	int nthreads = o->threads < 1 ? 1 : o->threads > 64 ? 64 : o->threads;
	int started = 0, rc = DEVID_EINVAL;
	double t0 = now_seconds();

	memset(&s, 0, sizeof(s));
	memset(w, 0, sizeof(w));
	memset(res, 0, sizeof(*res));
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	s.o = o;
	if (o->count < 1 || o->count > MAX_BATCH_COUNT) {
		devid_error_set(e, rc, "--count must be 1 to %d", MAX_BATCH_COUNT);
		goto out;
	}
	if (o->part_number != NULL && !claim_name_valid(o->part_number, strlen(o->part_number))) {
		devid_error_set(e, rc, "--part \"%s\" must match [A-Z0-9.-]{1,64}", o->part_number);
		goto out;
	}
	if ((rc = vendor_pki_load(o->dir, &s.pki, e)) != 0)
		goto out;
	if ((rc = claim_code_generate(s.pki.name, o->batch, &claim, e)) != 0)
		goto out;
	if ((rc = make_out_dir(o->out, e)) != 0 || (rc = prepare_shared(&s, e)) != 0)
		goto out;
	snprintf(s.chips_dir, sizeof(s.chips_dir), "%s/chips", o->out);
	s.nblocks = (o->count + MINT_BLOCK - 1) / MINT_BLOCK;
	rc = DEVID_ENOMEM;
	if ((s.blocks = calloc(s.nblocks, sizeof(*s.blocks))) == NULL ||
	    (s.done = calloc(s.nblocks, sizeof(*s.done))) == NULL) {
		devid_error_set(e, rc, "mint: out of memory");
		goto out;
	}
	rc = DEVID_EIO;
	snprintf(tmp, sizeof(tmp), "%s/.manifest.json.tmp", o->out);
	if ((f = fopen(tmp, "w")) == NULL || fputs("[\n", f) == EOF) {
		devid_error_set(e, rc, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	atomic_init(&s.next_block, 0);
	atomic_init(&s.failed, false);
	for (int i = 0; i < nthreads; i++) {
		w[i].s = &s;
		if ((w[i].keygen = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
		    EVP_PKEY_keygen_init(w[i].keygen) != 1 ||
		    EVP_PKEY_CTX_set_group_name(w[i].keygen, "P-256") != 1) {
			rc =
			    devid_error_ssl(e, DEVID_ECRYPTO, "mint: cannot set up key generation");
			goto join;
		}
		if (pthread_create(&tid[i], NULL, mint_thread, &w[i]) != 0) {
			rc = devid_error_set(e, DEVID_EINTERNAL, "mint: cannot start a thread");
			goto join;
		}
		started++;
	}
	/* write blocks in order as they complete */
	for (size_t b = 0; b < s.nblocks; b++) {
		pthread_mutex_lock(&s.lock);
		while (!s.done[b] && !s.failed)
			pthread_cond_wait(&s.cond, &s.lock);
		pthread_mutex_unlock(&s.lock);
		if (s.failed)
			break;
		if (fwrite(s.blocks[b].p, 1, s.blocks[b].len, f) != s.blocks[b].len) {
			devid_error_set(&s.err, DEVID_EIO, "%s: %s", tmp, strerror(errno));
			s.failed = true;
			break;
		}
		dynbuf_release(&s.blocks[b]);
		if (o->progress != NULL)
			o->progress(b + 1 == s.nblocks ? o->count : (b + 1) * MINT_BLOCK, o->count,
			    o->progress_arg);
	}
join:
	if (started < nthreads && !s.failed) {
		pthread_mutex_lock(&s.lock);
		s.failed = true;
		pthread_mutex_unlock(&s.lock);
	}
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if (s.failed) {
		if (started == nthreads && e != NULL)
			*e = s.err;
		rc = s.err.code ? s.err.code : rc;
		goto out;
	}
	if (fputs("\n]\n", f) == EOF || fclose(f) != 0) {
		f = NULL;
		devid_error_set(e, rc, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	snprintf(path, sizeof(path), "%s/manifest.json", o->out);
	if (rename(tmp, path) != 0) {
		devid_error_set(e, rc, "%s: %s", path, strerror(errno));
		goto out;
	}
	claim_code_hash(claim.text, strlen(claim.text), hash);
	snprintf(path, sizeof(path), "%s/batch.json", o->out);
	if ((rc = write_descriptor(&s, hash, path, e)) != 0)
		goto out;
	rc = DEVID_EIO;
	snprintf(path, sizeof(path), "%s/claim.txt", o->out);
	if ((f = fopen(path, "w")) == NULL || fprintf(f, "%s\n", claim.text) < 0 ||
	    fclose(f) != 0) {
		f = NULL;
		devid_error_set(e, rc, "%s: %s", path, strerror(errno));
		goto out;
	}
	f = NULL;
	snprintf(path, sizeof(path), "%s/claim.png", o->out);
	if ((rc = label_write_png(claim.text, path, e)) != 0)
		goto out;
	snprintf(res->claim, sizeof(res->claim), "%s", claim.text);
	res->seconds = now_seconds() - t0;
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (rc != 0 && s.nblocks > 0)
		unlink(tmp);
	for (int i = 0; i < 64; i++)
		EVP_PKEY_CTX_free(w[i].keygen);
	OPENSSL_cleanse(&claim, sizeof(claim));
	release_shared(&s);
	return rc;
}
