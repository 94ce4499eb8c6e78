/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/rand.h>

#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/dynbuf.h"
#include "lib/json.h"
#include "lib/jws.h"
#include "lib/x509.h"
#include "certtmpl.h"
#include "factory/factory.h"
#include "factory/reelfiles.h"
#include "lib/banned.h"

#define MINT_BLOCK 64 /* chips per unit of work and of ordered output */
#define DEFAULT_PART "DEVID-SE1-P256"
#define DEFAULT_MODEL "DEVID-SE1"
#define ENTRY_MAX_BYTES 16384
/* random bytes per chip: the certificate serial, then 7 bytes of chip serial */
#define CHIP_RANDOM_LEN (CERTTMPL_SERIAL_LEN + 7)

/* What every chip of the reel shares, prepared once. */
struct mint_shared {
	const struct mint_opts *o;
	struct vendor_pki pki;
	struct certtmpl *tmpl; /* the birth certificate */
	EVP_MD *sha256, *sha1; /* fetched once: a fetch per use takes locks */
	char *issuing_b64; /* x5c[1] */
	char *prot_b64; /* the protected header of every entry */
	struct dynbuf pay_head; /* the payload up to the chip serial */
	struct dynbuf pay_tail; /* the payload after the chip's certificate */
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

/* One thread's tools, made once and used for every chip; a cache line of its own. */
struct mint_worker {
	alignas(64) struct mint_shared *s;
	EVP_PKEY_CTX *keygen; /* P-256 key generation */
	EVP_PKEY_CTX *cert_signer; /* the issuing CA's key, ready for EVP_PKEY_sign */
	EVP_PKEY_CTX *jws_signer; /* the manifest signer's key, likewise */
	EVP_MD_CTX *md;
	uint8_t *tbs, *cert; /* certtmpl_tbs_len and certtmpl_cert_max bytes */
	struct dynbuf payload;
	time_t now; /* when not_before was last formatted */
	char not_before[CERTTMPL_TIME_LEN];
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

struct span {
	const void *p;
	size_t n;
};

/* out = md(v[0] || ... || v[nv - 1]) */
static bool
digest(EVP_MD_CTX *c, const EVP_MD *md, const struct span *v, int nv, uint8_t *out)
{
	if (EVP_DigestInit_ex2(c, md, NULL) != 1)
		return false;
	for (int i = 0; i < nv; i++)
		if (EVP_DigestUpdate(c, v[i].p, v[i].n) != 1)
			return false;
	return EVP_DigestFinal_ex(c, out, NULL) == 1;
}

/* Signs SHA-256(v...) with signer; sig (CERTTMPL_SIG_MAX bytes) receives the DER signature. */
static bool
sign_sha256(struct mint_worker *w, EVP_PKEY_CTX *signer, const struct span *v, int nv, uint8_t *sig,
    size_t *siglen)
{
	uint8_t h[32];

	*siglen = CERTTMPL_SIG_MAX;
	return digest(w->md, w->s->sha256, v, nv, h) &&
	    EVP_PKEY_sign(signer, sig, siglen, h, sizeof(h)) == 1;
}

/* An ECDSA-Sig-Value (DER) as JWS wants it: r||s, 32 bytes each (RFC 7518 3.4). */
static int
ecdsa_sig_raw(const uint8_t *der, size_t n, uint8_t out[ES256_SIG_LEN])
{
	size_t off = 2, len;
	const uint8_t *v;

	if (n < 8 || n > CERTTMPL_SIG_MAX || der[0] != 0x30 || der[1] != n - 2)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (n - off < 2 || der[off] != 0x02 || (len = der[off + 1]) == 0 ||
		    len > n - off - 2)
			return -1;
		v = der + off + 2;
		off += 2 + len;
		if (len == 33 && v[0] == 0) {
			v++;
			len--;
		}
		if (len > 32)
			return -1;
		memset(out + 32 * i, 0, 32 - len);
		memcpy(out + 32 * i + 32 - len, v, len);
	}
	return off == n ? 0 : -1;
}

/* Writes the kept chip's certificate and key to chips/<udid>.pem and .key. */
static int
keep_chip(struct mint_shared *s, const char *udid, const uint8_t *der, size_t len, EVP_PKEY *key,
    struct devid_error *e)
{
	char path[PATH_MAX];
	X509 *x;
	int rc;

	if ((x = x509_from_der(der, len, "birth certificate", e)) == NULL)
		return DEVID_ECRYPTO;
	snprintf(path, sizeof(path), "%s/%s.pem", s->chips_dir, udid);
	if ((rc = x509_write_pem_file(path, x, e)) == 0) {
		snprintf(path, sizeof(path), "%s/%s.key", s->chips_dir, udid);
		rc = pkey_write_pem_file(path, key, e);
	}
	X509_free(x);
	return rc;
}

/* The names of a new chip: what its certificate needs, and its UDID and serial as text. */
struct chip {
	EVP_PKEY *key;
	struct certtmpl_chip c;
	char udid[UDID_HEX_LEN + 1];
	char serial[CERTTMPL_CHIP_SERIAL_LEN + 1];
};

/*
 * A new key and the values of its certificate: UDID = SHA-256 of the SPKI, SKI = SHA-1 of the
 * point, certificate and chip serials from rnd (CHIP_RANDOM_LEN bytes).
 */
static int
chip_new(
    struct mint_worker *w, size_t index, const uint8_t *rnd, struct chip *ch, struct devid_error *e)
{
	struct mint_shared *s = w->s;
	struct certtmpl_chip *c = &ch->c;
	uint8_t md[32], chip_serial[9] = {0x01, 0x23}; /* 0123 + 7 random bytes, 18 hex digits */
	const uint8_t *prefix;
	size_t ptlen = 0, prefix_len;
	time_t now = time(NULL);

	if (now != w->now) {
		if (certtmpl_time(now, w->not_before) != 0)
			return devid_error_set(e, DEVID_EINTERNAL,
			    "chip %zu: the clock is outside the years of UTCTime (1950-2049)",
			    index);
		w->now = now;
	}
	prefix = certtmpl_spki_prefix(s->tmpl, &prefix_len);
	if (EVP_PKEY_keygen(w->keygen, &ch->key) != 1 ||
	    EVP_PKEY_get_octet_string_param(ch->key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, c->point,
		sizeof(c->point), &ptlen) != 1 ||
	    ptlen != sizeof(c->point) ||
	    !digest(w->md, s->sha256,
		(const struct span[]){{prefix, prefix_len}, {c->point, sizeof(c->point)}}, 2, md) ||
	    !digest(w->md, s->sha1, &(const struct span){c->point, sizeof(c->point)}, 1, c->ski))
		return devid_error_ssl(e, DEVID_ECRYPTO, "chip %zu: key generation failed", index);
	hex_encode(md, sizeof(md), ch->udid);
	memcpy(c->udid, ch->udid, UDID_HEX_LEN);
	memcpy(c->serial, rnd, CERTTMPL_SERIAL_LEN);
	c->serial[0] &= 0x7f;
	if (c->serial[0] == 0)
		c->serial[0] = 1;
	memcpy(chip_serial + 2, rnd + CERTTMPL_SERIAL_LEN, 7);
	hex_encode(chip_serial, sizeof(chip_serial), ch->serial);
	memcpy(c->chip_serial, ch->serial, CERTTMPL_CHIP_SERIAL_LEN);
	memcpy(c->not_before, w->not_before, CERTTMPL_TIME_LEN);
	return 0;
}

/* The chip's birth certificate into w->cert; its length, or 0. */
static size_t
chip_cert(struct mint_worker *w, const struct chip *ch)
{
	const struct certtmpl *t = w->s->tmpl;
	uint8_t sig[CERTTMPL_SIG_MAX];
	size_t siglen;

	certtmpl_fill(t, &ch->c, w->tbs);
	if (!sign_sha256(w, w->cert_signer, &(const struct span){w->tbs, certtmpl_tbs_len(t)}, 1,
		sig, &siglen))
		return 0;
	return certtmpl_wrap(t, w->tbs, sig, siglen, w->cert);
}

/*
 * Appends the chip's SignedSecureElement entry to out: the payload (the shared head and tail
 * around the chip's serial, key and certificate) and its JWS signature.
 */
static int
chip_entry(struct mint_worker *w, size_t index, const struct chip *ch, size_t certlen,
    struct dynbuf *out, struct devid_error *e)
{
	struct mint_shared *s = w->s;
	const uint8_t *pt = ch->c.point;
	uint8_t sig[CERTTMPL_SIG_MAX], raw[ES256_SIG_LEN];
	size_t siglen;
	char *x = NULL, *y = NULL, *cert_b64 = NULL, *pay_b64 = NULL, *sig_b64 = NULL;
	int rc = DEVID_ENOMEM;

	dynbuf_reset(&w->payload);
	if ((x = b64url_encode(pt + 1, 32)) == NULL || (y = b64url_encode(pt + 33, 32)) == NULL ||
	    (cert_b64 = b64_encode(w->cert, certlen)) == NULL ||
	    dynbuf_addf(&w->payload,
		"%s%s\",\"publicKeySet\":{\"keys\":[{\"kid\":\"0\",\"kty\":\"EC\","
		"\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"x5c\":[\"%s%s",
		dynbuf_str(&s->pay_head), ch->serial, x, y, cert_b64,
		dynbuf_str(&s->pay_tail)) != 0 ||
	    (pay_b64 = b64url_encode(w->payload.p, w->payload.len)) == NULL) {
		devid_error_set(e, rc, "chip %zu: out of memory", index);
		goto out;
	}
	if (!sign_sha256(w, w->jws_signer,
		(const struct span[]){
		    {s->prot_b64, strlen(s->prot_b64)}, {".", 1}, {pay_b64, strlen(pay_b64)}},
		3, sig, &siglen) ||
	    ecdsa_sig_raw(sig, siglen, raw) != 0) {
		rc = devid_error_ssl(e, DEVID_ECRYPTO, "chip %zu: cannot sign the entry", index);
		goto out;
	}
	if ((sig_b64 = b64url_encode(raw, sizeof(raw))) == NULL ||
	    dynbuf_addf(out,
		"%s{\"payload\":\"%s\",\"protected\":\"%s\",\"header\":{\"uniqueId\":\"%s\"},"
		"\"signature\":\"%s\"}",
		index == 0 ? "  " : ",\n  ", pay_b64, s->prot_b64, ch->serial, sig_b64) != 0) {
		devid_error_set(e, rc, "chip %zu: out of memory", index);
		goto out;
	}
	rc = 0;
out:
	free(x);
	free(y);
	free(cert_b64);
	free(pay_b64);
	free(sig_b64);
	return rc;
}

/*
 * Appends one SignedSecureElement entry for a new chip; keeps its key if asked. rnd holds
 * CHIP_RANDOM_LEN random bytes for this chip.
 */
static int
mint_chip(struct mint_worker *w, size_t index, const uint8_t *rnd, struct dynbuf *out,
    struct devid_error *e)
{
	struct chip ch = {.key = NULL};
	size_t certlen;
	int rc;

	if ((rc = chip_new(w, index, rnd, &ch, e)) != 0)
		goto out;
	if ((certlen = chip_cert(w, &ch)) == 0) {
		rc = devid_error_ssl(
		    e, DEVID_ECRYPTO, "chip %zu: cannot make the birth certificate", index);
		goto out;
	}
	if ((rc = chip_entry(w, index, &ch, certlen, out, e)) != 0)
		goto out;
	if (index < w->s->o->keep_keys &&
	    (rc = keep_chip(w->s, ch.udid, w->cert, certlen, ch.key, e)) != 0)
		goto out;
	rc = 0;
out:
	EVP_PKEY_free(ch.key);
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
	uint8_t rnd[MINT_BLOCK * CHIP_RANDOM_LEN]; /* for the chips of the block */

	devid_error_clear(&e);
	while ((blk = atomic_fetch_add(&s->next_block, 1)) < s->nblocks) {
		dynbuf_init(&buf, (size_t)MINT_BLOCK * ENTRY_MAX_BYTES);
		first = blk * MINT_BLOCK;
		last = first + MINT_BLOCK;
		if (last > s->o->count)
			last = s->o->count;
		if (RAND_bytes(rnd, (int)((last - first) * CHIP_RANDOM_LEN)) != 1) {
			devid_error_ssl(&e, DEVID_ECRYPTO, "mint: no random bytes");
			shared_fail(s, &e);
			return NULL;
		}
		for (size_t i = first; i < last; i++) {
			if (s->failed ||
			    mint_chip(w, i, rnd + (i - first) * CHIP_RANDOM_LEN, &buf, &e) != 0) {
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

/* A context for EVP_PKEY_sign with key over SHA-256 digests, or NULL. */
static EVP_PKEY_CTX *
signer_new(EVP_PKEY *key, EVP_MD *sha256)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);

	if (c == NULL || EVP_PKEY_sign_init(c) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(c, sha256) != 1) {
		EVP_PKEY_CTX_free(c);
		return NULL;
	}
	return c;
}

static int
worker_init(struct mint_worker *w, struct mint_shared *s, struct devid_error *e)
{
	memset(w, 0, sizeof(*w));
	w->s = s;
	dynbuf_init(&w->payload, ENTRY_MAX_BYTES);
	if ((w->keygen = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_keygen_init(w->keygen) != 1 ||
	    EVP_PKEY_CTX_set_group_name(w->keygen, "P-256") != 1 ||
	    (w->cert_signer = signer_new(s->pki.issuing_key, s->sha256)) == NULL ||
	    (w->jws_signer = signer_new(s->pki.signer_key, s->sha256)) == NULL ||
	    (w->md = EVP_MD_CTX_new()) == NULL)
		return devid_error_ssl(e, DEVID_ECRYPTO, "mint: cannot set up a thread's keys");
	if ((w->tbs = malloc(certtmpl_tbs_len(s->tmpl))) == NULL ||
	    (w->cert = malloc(certtmpl_cert_max(s->tmpl))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "mint: out of memory");
	return 0;
}

/* Accepts a worker that was only zeroed. */
static void
worker_release(struct mint_worker *w)
{
	EVP_PKEY_CTX_free(w->keygen);
	EVP_PKEY_CTX_free(w->cert_signer);
	EVP_PKEY_CTX_free(w->jws_signer);
	EVP_MD_CTX_free(w->md);
	free(w->tbs);
	free(w->cert);
	dynbuf_release(&w->payload);
}

static int
prepare_shared(struct mint_shared *s, struct devid_error *e)
{
	const struct mint_opts *o = s->o;
	unsigned char *der = NULL;
	uint8_t x5t[32];
	const ASN1_OCTET_STRING *ski;
	char *kid = NULL, *x5t_b64 = NULL, hdr[256];
	struct tm tm;
	time_t now = time(NULL);
	int derlen, rc = DEVID_ECRYPTO;

	gmtime_r(&now, &tm);
	strftime(s->timestamp, sizeof(s->timestamp), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	dynbuf_init(&s->pay_head, ENTRY_MAX_BYTES);
	dynbuf_init(&s->pay_tail, ENTRY_MAX_BYTES);
	if ((s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (s->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)) == NULL) {
		devid_error_ssl(e, rc, "mint: no SHA-256 or SHA-1");
		goto out;
	}
	if ((s->tmpl = certtmpl_new(s->pki.issuing, s->pki.issuing_key, s->pki.name, e)) == NULL) {
		rc = e != NULL && e->code != 0 ? e->code : rc;
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
	/* the payload of every chip, but for uniqueId, x, y and x5c[0] (see mint_chip) */
	if (dynbuf_addf(&s->pay_head,
		"{\"version\":1,\"model\":\"%s\",\"partNumber\":\"%s\","
		"\"manufacturer\":{\"organizationName\":\"%s\",\"organizationalUnitName\":"
		"\"Secure Elements\"},"
		"\"provisioner\":{\"organizationName\":\"%s\",\"organizationalUnitName\":"
		"\"Secure Provisioning\"},"
		"\"distributor\":{\"organizationName\":\"%s\",\"organizationalUnitName\":"
		"\"Distribution\"},"
		"\"groupId\":\"%s\",\"provisioningTimestamp\":\"%s\",\"uniqueId\":\"",
		DEFAULT_MODEL, o->part_number ? o->part_number : DEFAULT_PART, s->pki.name,
		s->pki.name, s->pki.name, o->batch, s->timestamp) != 0 ||
	    dynbuf_addf(&s->pay_tail, "\",\"%s\"]}]}}", s->issuing_b64) != 0) {
		devid_error_set(e, DEVID_ENOMEM, "mint: out of memory");
		goto out;
	}
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
	certtmpl_free(s->tmpl);
	EVP_MD_free(s->sha256);
	EVP_MD_free(s->sha1);
	free(s->issuing_b64);
	free(s->prot_b64);
	dynbuf_release(&s->pay_head);
	dynbuf_release(&s->pay_tail);
	if (s->blocks != NULL)
		for (size_t i = 0; i < s->nblocks; i++)
			dynbuf_release(&s->blocks[i]);
	free(s->blocks);
	free(s->done);
	vendor_pki_release(&s->pki);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
}

int
reel_write_descriptor(const struct vendor_pki *pki, const char *batch, const char *part,
    size_t count, const char *created, const char *claim_hash, const char *path,
    struct devid_error *e)
{
	const ASN1_OCTET_STRING *ski = x509_get0_ski(pki->signer);
	uint8_t x5t[32];
	json_t *payload = NULL, *jws = NULL;
	char *text = NULL;
	FILE *f = NULL;
	int rc = DEVID_ENOMEM;

	payload = json_pack("{s:i, s:s, s:s, s:s, s:I, s:s, s:s}", "version", 1, "vendor",
	    pki->name, "batchId", batch, "partNumber", part, "count", (json_int_t)count,
	    "claimSha256", claim_hash, "createdAt", created);
	if (payload == NULL || (text = json_dump_compact(payload)) == NULL)
		goto out;
	if (ski == NULL || x509_sha256(pki->signer, x5t) != 0 ||
	    (jws = jws_sign_flat(pki->signer_key, ASN1_STRING_get0_data(ski),
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

int
reel_finish(const char *stage, const char *out, const struct vendor_pki *pki, const char *batch,
    const char *part, size_t count, const char *created, const char *claim_text, bool xml,
    struct devid_error *e)
{
	char path[PATH_MAX], hash[65];
	FILE *f;
	int rc;

	if (xml) {
		char xpath[PATH_MAX];

		snprintf(path, sizeof(path), "%s/manifest.json", stage);
		snprintf(xpath, sizeof(xpath), "%s/manifest.xml", stage);
		if ((rc = manifest_file_convert(path, xpath, true, e)) != 0)
			return rc;
		if (unlink(path) != 0)
			return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	}
	claim_code_hash(claim_text, strlen(claim_text), hash);
	snprintf(path, sizeof(path), "%s/batch.json", stage);
	if ((rc = reel_write_descriptor(pki, batch, part, count, created, hash, path, e)) != 0)
		return rc;
	snprintf(path, sizeof(path), "%s/claim.txt", stage);
	if ((f = fopen(path, "w")) == NULL)
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	if (fprintf(f, "%s\n", claim_text) < 0 || fclose(f) != 0)
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/claim.png", stage);
	if ((rc = label_write_png(claim_text, path, e)) != 0)
		return rc;
	if (rename(stage, out) != 0)
		return devid_error_set(e, DEVID_EIO, "%s: %s", out, strerror(errno));
	return 0;
}

int
reel_stage_dir(const char *out, char *stage, size_t len, struct devid_error *e)
{
	char path[PATH_MAX];
	struct stat st;

	stage[0] = '\0';
	if (stat(out, &st) == 0 && (!S_ISDIR(st.st_mode) || rmdir(out) != 0))
		return devid_error_set(e, DEVID_ECONFLICT,
		    "%s exists and is not an empty directory; refusing to overwrite a reel", out);
	if ((size_t)snprintf(stage, len, "%s.partial-XXXXXX", out) >= len ||
	    mkdtemp(stage) == NULL) {
		devid_error_set(e, DEVID_EIO, "%s: cannot create a staging directory: %s", out,
		    strerror(errno));
		stage[0] = '\0';
		return DEVID_EIO;
	}
	chmod(stage, 0755);
	snprintf(path, sizeof(path), "%s/chips", stage);
	if (mkdir(path, 0700) != 0)
		return devid_error_set(e, DEVID_EIO, "%s: %s", path, strerror(errno));
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
reel_stage_remove(const char *stage)
{
	if (stage[0] != '\0')
		nftw(stage, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
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
	char path[PATH_MAX], stage[PATH_MAX] = "";
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
	if ((rc = reel_stage_dir(o->out, stage, sizeof(stage), e)) != 0 ||
	    (rc = prepare_shared(&s, e)) != 0)
		goto out;
	snprintf(s.chips_dir, sizeof(s.chips_dir), "%s/chips", stage);
	s.nblocks = (o->count + MINT_BLOCK - 1) / MINT_BLOCK;
	rc = DEVID_ENOMEM;
	if ((s.blocks = calloc(s.nblocks, sizeof(*s.blocks))) == NULL ||
	    (s.done = calloc(s.nblocks, sizeof(*s.done))) == NULL) {
		devid_error_set(e, rc, "mint: out of memory");
		goto out;
	}
	rc = DEVID_EIO;
	snprintf(path, sizeof(path), "%s/manifest.json", stage);
	if ((f = fopen(path, "w")) == NULL || fputs("[\n", f) == EOF) {
		devid_error_set(e, rc, "%s: %s", path, strerror(errno));
		goto out;
	}
	atomic_init(&s.next_block, 0);
	atomic_init(&s.failed, false);
	for (int i = 0; i < nthreads; i++) {
		if ((rc = worker_init(&w[i], &s, e)) != 0)
			goto join;
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
			devid_error_set(&s.err, DEVID_EIO, "%s: %s", path, strerror(errno));
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
		devid_error_set(e, rc, "%s: %s", path, strerror(errno));
		goto out;
	}
	f = NULL;
	if ((rc = reel_finish(stage, o->out, &s.pki, o->batch,
		 o->part_number ? o->part_number : DEFAULT_PART, o->count, s.timestamp, claim.text,
		 o->xml, e)) != 0)
		goto out;
	stage[0] = '\0';
	snprintf(res->claim, sizeof(res->claim), "%s", claim.text);
	res->seconds = now_seconds() - t0;
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	reel_stage_remove(stage);
	for (int i = 0; i < 64; i++)
		worker_release(&w[i]);
	OPENSSL_cleanse(&claim, sizeof(claim));
	release_shared(&s);
	return rc;
}
