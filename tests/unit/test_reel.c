/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mint -> verify round trip, and every tamper of the vendor issue rejected with a message
 * naming the rule: among them one chip key re-encoded (compressed, hybrid) under a genuine
 * vendor signature, and entries over the entry limit (one at the limit passes and reads back).
 * Tampers that would otherwise be caught by the signature are re-signed with the genuine manifest
 * signer, so the rule under test is the one that catches them.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509v3.h>

#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/dynbuf.h"
#include "lib/json.h"
#include "lib/limits.h"
#include "lib/manifest.h"
#include "lib/x509.h"
#include "factory/factory.h"
#include "reelkit.h"
#include "test.h"
#include "lib/banned.h"

#define NCHIPS 6

static char tmp[PATH_MAX], vdir[PATH_MAX + 8], v2dir[PATH_MAX + 8], reel[PATH_MAX + 8];
static EVP_PKEY *signer_key;

static char *
path2(const char *dir, const char *file)
{
	static char buf[4][PATH_MAX * 2];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, file);
	return buf[i];
}

static void
copy_file(const char *from, const char *to)
{
	uint8_t *p;
	size_t n;
	FILE *f;

	if (file_read_all(from, 1 << 26, &p, &n, NULL) != 0) {
		printf("cannot read %s\n", from);
		exit(1);
	}
	if ((f = fopen(to, "wb")) == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		printf("cannot write %s\n", to);
		exit(1);
	}
	free(p);
}

/* A copy of the genuine reel in tmp/name (without chip keys). */
static const char *
reel_copy(const char *name)
{
	static char dir[PATH_MAX * 2];
	static const char *const files[] = {"manifest.json", "batch.json", "claim.txt"};

	snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
	if (mkdir(dir, 0700) != 0) {
		printf("mkdir %s\n", dir);
		exit(1);
	}
	for (size_t i = 0; i < 3; i++)
		copy_file(path2(reel, files[i]), path2(dir, files[i]));
	return dir;
}

/* Sets the payload to text and signs protected.payload with the genuine signer. */

/*
 * Verifies dir and checks that it is rejected with `want` somewhere in what the verifier
 * says; if index >= 0, the first rejected entry must be that one.
 */
static void
expect_rejected(const char *what, const char *dir, const char *root, const char *signer,
    const char *want, long index)
{
	struct reel_report r;
	struct devid_error e;
	struct dynbuf all;
	int rc;

	devid_error_clear(&e);
	dynbuf_init(&all, 1 << 20);
	rc = reel_verify(dir, root, signer, 2, NULL, &r, &e);
	dynbuf_addf(&all, "%s|", e.msg);
	for (size_t i = 0; i < r.manifest.nrejects; i++)
		dynbuf_addf(&all, "%s|", r.manifest.rejects[i].message);
	dynbuf_addf(&all, "%s|%s", r.manifest.batch_error, r.claim_error);
	CHECK(rc != 0, "%s: reel must be rejected", what);
	CHECK(strstr(dynbuf_str(&all), want) != NULL, "%s: expected \"%s\" in: %s", what, want,
	    dynbuf_str(&all));
	if (index >= 0) {
		CHECK(r.manifest.nrejects >= 1 && r.manifest.rejects[0].index == (size_t)index,
		    "%s: the report names entry %ld", what, index);
		CHECK(r.manifest.accepted == NCHIPS - 1,
		    "%s: the other entries pass (%zu accepted)", what, r.manifest.accepted);
	}
	printf("ok %s: %s\n", what, want);
	dynbuf_release(&all);
	reel_report_release(&r);
}

static void
tamper_entry(const char *name, size_t idx, void (*fn)(json_t *entry), const char *want)
{
	const char *dir = reel_copy(name);
	json_t *m = reelkit_load_json(path2(dir, "manifest.json"));

	fn(json_array_get(m, idx));
	reelkit_save_json(path2(dir, "manifest.json"), m);
	expect_rejected(
	    name, dir, path2(vdir, "root.pem"), path2(vdir, "signer.pem"), want, (long)idx);
}

static void
flip_payload_byte(json_t *entry)
{
	char *text = reelkit_decode(entry, "payload"), *p = strstr(text, "DEVID-SE1\"");
	char *b64;

	p[8] = '2'; /* model DEVID-SE1 -> DEVID-SE2: still valid JSON, not the signed bytes */
	b64 = b64url_encode((const uint8_t *)text, strlen(text));
	json_object_set_new(entry, "payload", json_string(b64));
	free(b64);
	free(text);
}

static void
flip_signature_byte(json_t *entry)
{
	char *sig = reelkit_decode(entry, "signature"), *b64;

	sig[5] ^= 0x01;
	b64 = b64url_encode((const uint8_t *)sig, 64);
	json_object_set_new(entry, "signature", json_string(b64));
	free(b64);
	free(sig);
}

static void
other_issuing_ca(json_t *entry)
{
	json_t *p = reelkit_payload(entry), *x5c = json_object_get(reelkit_identity_jwk(p), "x5c");
	X509 *other = x509_load_pem_file(path2(v2dir, "issuing.pem"), NULL);
	unsigned char *der = NULL;
	int n = i2d_X509(other, &der);
	char *b64 = b64_encode(der, (size_t)n);

	json_array_set_new(x5c, 1, json_string(b64));
	reelkit_resign(entry, p, signer_key);
	free(b64);
	OPENSSL_free(der);
	X509_free(other);
}

static json_t *jwk_donor;

static void
jwk_from_other_chip(json_t *entry)
{
	json_t *p = reelkit_payload(entry), *donor = reelkit_payload(jwk_donor);

	json_object_set(
	    reelkit_identity_jwk(p), "x", json_object_get(reelkit_identity_jwk(donor), "x"));
	json_object_set(
	    reelkit_identity_jwk(p), "y", json_object_get(reelkit_identity_jwk(donor), "y"));
	json_decref(donor);
	reelkit_resign(entry, p, signer_key);
}

static void
header_unique_id(json_t *entry)
{
	json_object_set_new(
	    json_object_get(entry, "header"), "uniqueId", json_string("0123ffffffffffffff"));
}

static void
other_group(json_t *entry)
{
	json_t *p = reelkit_payload(entry);

	json_object_set_new(p, "groupId", json_string("B2"));
	reelkit_resign(entry, p, signer_key);
}

static void
duplicate_payload_key(json_t *entry)
{
	char *text = reelkit_decode(entry, "payload");
	size_t n = strlen(text) + 64;
	char *dup = malloc(n);

	/* {"uniqueId":"x", + the rest: the payload now has uniqueId twice */
	snprintf(dup, n, "{\"uniqueId\":\"0123000000000000ee\",%s", text + 1);
	reelkit_resign_raw(entry, dup, signer_key);
	free(dup);
	free(text);
}

static void
der_trailing_bytes(json_t *entry)
{
	json_t *p = reelkit_payload(entry), *x5c = json_object_get(reelkit_identity_jwk(p), "x5c");
	const char *c = json_string_value(json_array_get(x5c, 0));
	uint8_t *der, *longer;
	size_t n;
	char *b64;

	b64_decode(c, strlen(c), 0, &der, &n);
	longer = calloc(1, n + 2);
	memcpy(longer, der, n);
	b64 = b64_encode(longer, n + 2);
	json_array_set_new(x5c, 0, json_string(b64));
	reelkit_resign(entry, p, signer_key);
	free(b64);
	free(der);
	free(longer);
}

/* x5c[0] re-issued by the vendor's own issuing CA over the same key, the point compressed */
static void
point_compressed(json_t *entry)
{
	json_t *p = reelkit_payload(entry);

	reelkit_reissue_form(p, vdir, "compressed");
	reelkit_resign(entry, p, signer_key);
}

/* the same with the point in hybrid form (06/07), which RFC 5480 2.2 forbids */
static void
point_hybrid(json_t *entry)
{
	json_t *p = reelkit_payload(entry);

	reelkit_reissue_form(p, vdir, "hybrid");
	reelkit_resign(entry, p, signer_key);
}

static void
entry_65600(json_t *entry)
{
	reelkit_pad_entry(entry, 65600, signer_key);
}

static void
entry_over_by_one(json_t *entry)
{
	reelkit_pad_entry(entry, MAX_ENTRY_SIZE + 1, signer_key);
}

/*
 * An entry of exactly MAX_ENTRY_SIZE bytes: accepted, and what devid keeps of it (its compact
 * JSON) reads back with the reader of stored entries.
 */
static void
entry_at_the_limit(void)
{
	const char *dir = reel_copy("entry-at-the-limit");
	json_t *m = reelkit_load_json(path2(dir, "manifest.json"));
	struct manifest_report r;
	struct manifest_entry *back = NULL;
	struct manifest *man = NULL;
	struct reel_report rr;
	struct devid_error e;
	uint8_t *text;
	size_t n;

	reelkit_pad_entry(json_array_get(m, 3), MAX_ENTRY_SIZE, signer_key);
	reelkit_save_json(path2(dir, "manifest.json"), m);
	CHECK(reel_verify(
		  dir, path2(vdir, "root.pem"), path2(vdir, "signer.pem"), 2, NULL, &rr, &e) == 0 &&
		rr.manifest.accepted == NCHIPS,
	    "an entry of %d bytes is accepted: %s %s", MAX_ENTRY_SIZE, e.msg,
	    rr.manifest.nrejects ? rr.manifest.rejects[0].message : "");
	reel_report_release(&rr);
	memset(&r, 0, sizeof(r));
	CHECK(file_read_all(path2(dir, "manifest.json"), 1 << 26, &text, &n, &e) == 0 &&
		manifest_parse_mt(text, n, 1, &man, &r, &e) == 0 && r.rejected == 0,
	    "the manifest parses: %s", e.msg);
	if (man != NULL) {
		CHECK(strlen(man->entries[3]->json) == MAX_ENTRY_SIZE, "kept whole (%zu bytes)",
		    strlen(man->entries[3]->json));
		CHECK(manifest_entry_parse_bytes((const uint8_t *)man->entries[3]->json,
			  strlen(man->entries[3]->json), &back, &e) == 0 &&
			strcmp(back->udid, man->entries[3]->udid) == 0,
		    "the stored entry reads back: %s", e.msg);
	}
	manifest_entry_free(back);
	manifest_free(man);
	manifest_report_release(&r);
	free(text);
}

/* Gives a JWS the signer whose certificate hashes to x5t, and signs it with the signer key. */
static void
resign_as(json_t *jws, const uint8_t x5t[32])
{
	char *text = reelkit_decode(jws, "protected"), *b64 = b64url_encode(x5t, 32), *out;
	json_t *prot = json_loads(text, 0, NULL);

	json_object_set_new(prot, "x5t#S256", json_string(b64));
	free(text);
	text = json_dumps(prot, JSON_COMPACT);
	out = b64url_encode((const uint8_t *)text, strlen(text));
	json_object_set_new(jws, "protected", json_string(out));
	reelkit_resign(jws, reelkit_payload(jws), signer_key);
	json_decref(prot);
	free(text);
	free(b64);
	free(out);
}

/*
 * The manifest signer of an existing deployment: the same key, no extendedKeyUsage (devid
 * vendor init now writes documentSigning), signed by the root. Its reels are still accepted.
 */
static void
signer_without_eku(void)
{
	const char *dir = reel_copy("signer-without-eku");
	X509 *sc = x509_load_pem_file(path2(vdir, "signer.pem"), NULL);
	EVP_PKEY *rk = pkey_load_pem_file(path2(vdir, "root.key"), NULL);
	json_t *m = reelkit_load_json(path2(dir, "manifest.json"));
	json_t *d = reelkit_load_json(path2(dir, "batch.json"));
	struct reel_report r;
	struct devid_error e;
	uint8_t x5t[32];
	size_t i;
	json_t *v;
	int idx = X509_get_ext_by_NID(sc, NID_ext_key_usage, -1);

	CHECK(idx >= 0, "devid vendor init gives the signer an extendedKeyUsage");
	X509_EXTENSION_free(X509_delete_ext(sc, idx));
	CHECK(X509_sign(sc, rk, EVP_sha256()) > 0 && x509_sha256(sc, x5t) == 0 &&
		x509_write_pem_file(path2(dir, "old-signer.pem"), sc, &e) == 0,
	    "a signer without extendedKeyUsage");
	json_array_foreach(m, i, v) resign_as(v, x5t);
	resign_as(d, x5t);
	reelkit_save_json(path2(dir, "manifest.json"), m);
	reelkit_save_json(path2(dir, "batch.json"), d);
	CHECK(reel_verify(dir, path2(vdir, "root.pem"), path2(dir, "old-signer.pem"), 2, NULL, &r,
		  &e) == 0 &&
		r.manifest.accepted == NCHIPS,
	    "a reel of a signer without extendedKeyUsage is accepted: %s %s %s", e.msg,
	    r.manifest.batch_error, r.manifest.nrejects ? r.manifest.rejects[0].message : "");
	reel_report_release(&r);
	X509_free(sc);
	EVP_PKEY_free(rk);
}

int
main(void)
{
	struct mint_opts o = {.batch = "B1", .count = NCHIPS, .keep_keys = 1, .threads = 2};
	struct mint_result res;
	struct reel_report r;
	struct devid_error e;
	const char *dir;
	json_t *m, *d, *p;

	devid_error_clear(&e);
	test_tmpdir(tmp, sizeof(tmp), "reel");
	snprintf(vdir, sizeof(vdir), "%s/v", tmp);
	snprintf(v2dir, sizeof(v2dir), "%s/v2", tmp);
	snprintf(reel, sizeof(reel), "%s/r", tmp);
	o.dir = vdir;
	o.out = reel;
	if (vendor_init(vdir, "ACME", &e) != 0 || vendor_init(v2dir, "OTHER", &e) != 0 ||
	    vendor_mint(&o, &res, &e) != 0) {
		printf("setup failed: %s\n", e.msg);
		return 1;
	}
	signer_key = pkey_load_pem_file(path2(vdir, "signer.key"), &e);

	/* the genuine reel is accepted whole */
	CHECK(reel_verify(
		  reel, path2(vdir, "root.pem"), path2(vdir, "signer.pem"), 2, NULL, &r, &e) == 0,
	    "genuine reel accepted: %s %s", e.msg, r.manifest.batch_error);
	CHECK(r.checked && r.manifest.total == NCHIPS && r.manifest.accepted == NCHIPS &&
		r.manifest.rejected == 0 && r.claim_error[0] == '\0',
	    "all %d entries accepted (%zu)", NCHIPS, r.manifest.accepted);
	reel_report_release(&r);

	/* a second mint into the same OUT is refused */
	CHECK(vendor_mint(&o, &res, &e) == DEVID_ECONFLICT && strstr(e.msg, "refusing") != NULL,
	    "minting over a reel refused: %s", e.msg);

	tamper_entry("flipped-payload-byte", 2, flip_payload_byte, "signature does not verify");
	tamper_entry("flipped-signature-byte", 3, flip_signature_byte, "signature does not verify");
	tamper_entry(
	    "x5c-not-to-root", 1, other_issuing_ca, "x5c does not reach a trusted vendor root");
	m = reelkit_load_json(path2(reel, "manifest.json"));
	jwk_donor = json_incref(json_array_get(m, 0));
	json_decref(m);
	tamper_entry("jwk-differs", 4, jwk_from_other_chip, "JWK x/y differ");
	json_decref(jwk_donor);
	tamper_entry("header-uniqueid", 0, header_unique_id, "header.uniqueId");
	tamper_entry("groupid", 5, other_group, "groupId \"B2\" differs from the batch id \"B1\"");
	tamper_entry("payload-duplicate-key", 2, duplicate_payload_key, "duplicate object key");
	tamper_entry("der-trailing-bytes", 1, der_trailing_bytes, "trailing bytes after the DER");
	/* one chip key, other encodings, genuinely signed: one key has one UDID */
	tamper_entry("point-compressed", 2, point_compressed,
	    "x5c[0] birth certificate: device key: EC point must be uncompressed (RFC 5480 2.2): "
	    "compressed form 0");
	tamper_entry("point-hybrid", 4, point_hybrid,
	    "EC point must be uncompressed (RFC 5480 2.2 forbids the hybrid form): hybrid form 0");
	/* entry size: one limit, at the door and on reading back */
	tamper_entry("entry-65600-bytes", 1, entry_65600,
	    "entry 1: 65600 bytes as stored (compact JSON), over the limit of 65536 bytes");
	tamper_entry("entry-65537-bytes", 5, entry_over_by_one, "65537 bytes as stored");
	entry_at_the_limit();
	signer_without_eku();

	/* signer not trusted: the reel checked against another vendor's trust */
	expect_rejected("signer-not-trusted", reel, path2(v2dir, "root.pem"),
	    path2(v2dir, "signer.pem"), "signer not trusted", -1);

	/* count in the (re-signed) descriptor differs from the manifest */
	dir = reel_copy("count-mismatch");
	d = reelkit_load_json(path2(dir, "batch.json"));
	p = reelkit_payload(d);
	json_object_set_new(p, "count", json_integer(NCHIPS + 1));
	reelkit_resign(d, p, signer_key);
	reelkit_save_json(path2(dir, "batch.json"), d);
	expect_rejected("count-mismatch", dir, path2(vdir, "root.pem"), path2(vdir, "signer.pem"),
	    "count is 7 but the manifest has 6 entries", -1);

	/* another valid code for the same batch: its hash is not the descriptor's */
	{
		struct claim_code c;
		FILE *f;

		dir = reel_copy("claim-hash-mismatch");
		claim_code_generate("ACME", "B1", &c, &e);
		f = fopen(path2(dir, "claim.txt"), "w");
		fprintf(f, "%s\n", c.text);
		fclose(f);
		expect_rejected("claim-hash-mismatch", dir, path2(vdir, "root.pem"),
		    path2(vdir, "signer.pem"), "claim hash mismatch", -1);
	}

	/* duplicate keys in the manifest document itself */
	{
		uint8_t *text;
		size_t n;
		char *hit, *out;
		FILE *f;

		dir = reel_copy("manifest-duplicate-key");
		file_read_all(path2(dir, "manifest.json"), 1 << 26, &text, &n, NULL);
		hit = strstr((char *)text, "\"header\":");
		out = malloc(n + 64);
		memcpy(out, text, (size_t)(hit - (char *)text));
		snprintf(out + (hit - (char *)text), n + 64 - (size_t)(hit - (char *)text),
		    "\"header\":{\"uniqueId\":\"x\"},%s", hit);
		f = fopen(path2(dir, "manifest.json"), "w");
		fputs(out, f);
		fclose(f);
		free(out);
		free(text);
		expect_rejected("manifest-duplicate-key", dir, path2(vdir, "root.pem"),
		    path2(vdir, "signer.pem"), "duplicate object key", -1);
	}

	/* the same chip twice in one batch */
	dir = reel_copy("duplicate-chip");
	m = reelkit_load_json(path2(dir, "manifest.json"));
	json_array_append(m, json_array_get(m, 0));
	reelkit_save_json(path2(dir, "manifest.json"), m);
	expect_rejected("duplicate-chip", dir, path2(vdir, "root.pem"), path2(vdir, "signer.pem"),
	    "appears more than once in the batch", -1);

	EVP_PKEY_free(signer_key);
	test_rmdir(tmp);
	return test_done();
}
