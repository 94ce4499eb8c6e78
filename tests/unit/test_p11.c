/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_p11.c - keys in a PKCS#11 token (src/p11) against a throwaway SoftHSM2 token:
 * generation and its attributes (read back by p11_key_flags and by OpenSC's pkcs11-tool),
 * signing a certificate and a CSR, verified with the public key alone, opening by label and by id,
 * a duplicate label, a wrong PIN, a key or token that is not there, URIs that are refused,
 * concurrent signing from 4 threads, two keys sharing one module, and that the private key
 * cannot be exported. Skipped (77) when SoftHSM2 is not installed.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11/p11.h"
#include "test.h"
#include "lib/banned.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "devid-test"
#define PIN "5713"
#define SO_PIN "93571"
#define WRONG_PIN "86420"

#define THREADS 4
#define SIGNATURES 200

static char dir[256];

/* A private SoftHSM2 (its own conf and token directory) with one token TOKEN. */
static void
softhsm_setup(void)
{
	char path[512], cmd[1024];
	FILE *f;

	if (system("command -v softhsm2-util >/dev/null 2>&1") != 0 || access(MODULE, R_OK) != 0)
		test_skip("SoftHSM2 is not installed (Debian package softhsm2)");
	test_tmpdir(dir, sizeof(dir), "p11");
	snprintf(path, sizeof(path), "%s/tokens", dir);
	if (mkdir(path, 0700) != 0) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(1);
	}
	fprintf(f,
	    "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
	    "log.level = ERROR\nslots.removable = false\n",
	    dir);
	fclose(f);
	setenv("SOFTHSM2_CONF", path, 1);
	setenv("DEVID_PKCS11_MODULE", MODULE, 1);
	unsetenv("DEVID_PKCS11_PIN");
	snprintf(cmd, sizeof(cmd),
	    "softhsm2-util --init-token --free --label %s --so-pin %s --pin %s >%s/init.log 2>&1",
	    TOKEN, SO_PIN, PIN, dir);
	if (system(cmd) != 0) {
		printf("softhsm2-util --init-token failed: see %s/init.log\n", dir);
		exit(1);
	}
}

/* The public half of k alone, as a fresh EVP_PKEY that knows nothing of the token. */
static EVP_PKEY *
public_only(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub;
	int len;

	if ((len = i2d_PUBKEY(k, &der)) <= 0)
		return NULL;
	p = der;
	pub = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	return pub;
}

/* A certificate for k's public key signed by signer (digest md). */
static X509 *
cert_signed(EVP_PKEY *k, EVP_PKEY *signer, const EVP_MD *md)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	int ok;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_NAME_add_entry_by_txt(
	    n, "CN", MBSTRING_ASC, (const unsigned char *)"token test", -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	ok = X509_sign(x, signer, md) > 0;
	X509_NAME_free(n);
	if (!ok) {
		ERR_print_errors_fp(stdout);
		X509_free(x);
		return NULL;
	}
	return x;
}

/* pkcs11-tool's view of the private key LABEL, NUL-terminated in out. */
static void
pkcs11_tool_privkey(const char *label, char *out, size_t outsz)
{
	char cmd[1024];
	size_t n = 0;
	FILE *p;

	out[0] = '\0';
	snprintf(cmd, sizeof(cmd),
	    "pkcs11-tool --module %s --token-label %s --login --pin %s --list-objects --type "
	    "privkey --label %s 2>&1",
	    MODULE, TOKEN, PIN, label);
	if ((p = popen(cmd, "r")) == NULL)
		return;
	n = fread(out, 1, outsz - 1, p);
	out[n] = '\0';
	pclose(p);
}

static void
test_generate(void)
{
	struct p11_key *k = NULL, *k2 = NULL;
	struct devid_error e;
	EVP_PKEY *pub = NULL, *other = EVP_EC_gen("P-256");
	X509 *x = NULL;
	bool sensitive = false, extractable = true;
	char out[4096];
	int rc;

	devid_error_clear(&e);
	rc = p11_key_generate(
	    "pkcs11:token=" TOKEN ";object=ca;id=%01%02%03?pin-value=" PIN, &k, &e);
	CHECK(rc == 0 && k != NULL, "generate a key: rc %d %s", rc, e.msg);
	if (k == NULL)
		return;
	CHECK(EVP_PKEY_get_base_id(p11_key_get0_pkey(k)) == EVP_PKEY_EC &&
		EVP_PKEY_get_bits(p11_key_get0_pkey(k)) == 256,
	    "the key is EC P-256");

	rc = p11_key_flags(k, &sensitive, &extractable, &e);
	CHECK(rc == 0 && sensitive && !extractable,
	    "the token says sensitive and not extractable: rc %d sensitive %d extractable %d %s",
	    rc, sensitive, extractable, e.msg);

	pkcs11_tool_privkey("ca", out, sizeof(out));
	CHECK(strstr(out, "never extractable") != NULL && strstr(out, "sensitive") != NULL,
	    "pkcs11-tool says never extractable and sensitive:\n%s", out);
	CHECK(strstr(out, "derive") == NULL && strstr(out, "decrypt") == NULL &&
		strstr(out, "unwrap") == NULL && strstr(out, "sign") != NULL,
	    "pkcs11-tool says the key signs and nothing else:\n%s", out);

	/* a certificate signed in the token, checked with the public key alone */
	pub = public_only(p11_key_get0_pkey(k));
	CHECK(pub != NULL, "the public key exports");
	x = cert_signed(p11_key_get0_pkey(k), p11_key_get0_pkey(k), EVP_sha256());
	CHECK(x != NULL && pub != NULL && X509_verify(x, pub) == 1,
	    "X509_sign by the token verifies with the public key");
	CHECK(x != NULL && X509_verify(x, other) != 1, "and not with another key");
	ERR_clear_error();
	X509_free(x);
	/* SHA-384 over P-256: the digest is cut to the order's length */
	x = cert_signed(p11_key_get0_pkey(k), p11_key_get0_pkey(k), EVP_sha384());
	CHECK(x != NULL && pub != NULL && X509_verify(x, pub) == 1,
	    "a SHA-384 signature verifies too");
	X509_free(x);

	/* a CSR signed in the token */
	{
		X509_REQ *req = X509_REQ_new();
		X509_NAME *n = X509_NAME_new();

		X509_NAME_add_entry_by_txt(
		    n, "CN", MBSTRING_ASC, (const unsigned char *)"csr test", -1, -1, 0);
		X509_REQ_set_subject_name(req, n);
		X509_REQ_set_pubkey(req, p11_key_get0_pkey(k));
		CHECK(X509_REQ_sign(req, p11_key_get0_pkey(k), EVP_sha256()) > 0 && pub != NULL &&
			X509_REQ_verify(req, pub) == 1,
		    "X509_REQ_sign by the token verifies with the public key");
		X509_NAME_free(n);
		X509_REQ_free(req);
		ERR_clear_error();
	}

	/* the private key does not leave */
	{
		BIGNUM *priv = NULL;
		unsigned char *der = NULL;
		BIO *b = BIO_new(BIO_s_mem());

		CHECK(i2d_PrivateKey(p11_key_get0_pkey(k), &der) <= 0, "i2d_PrivateKey fails");
		OPENSSL_free(der);
		/* OpenSSL 3.0 answers for a legacy EC key without a private part with 0 */
		rc = EVP_PKEY_get_bn_param(p11_key_get0_pkey(k), "priv", &priv);
		CHECK(rc != 1 || BN_is_zero(priv), "EVP_PKEY_get_bn_param(priv) reveals nothing");
		BN_free(priv);
		CHECK(PEM_write_bio_PrivateKey(
			  b, p11_key_get0_pkey(k), NULL, NULL, 0, NULL, NULL) != 1,
		    "PEM_write_bio_PrivateKey fails");
		BIO_free(b);
		ERR_clear_error();
	}

	/* open again, by label and by id; the same key */
	rc = p11_key_open("pkcs11:token=" TOKEN ";object=ca?pin-value=" PIN, &k2, &e);
	CHECK(rc == 0 && EVP_PKEY_eq(p11_key_get0_pkey(k2), pub) == 1, "open by label: rc %d %s",
	    rc, e.msg);
	p11_key_free(k2);
	k2 = NULL;
	rc = p11_key_open(
	    "pkcs11:token=" TOKEN ";id=%01%02%03;type=private?pin-value=" PIN, &k2, &e);
	CHECK(rc == 0 && EVP_PKEY_eq(p11_key_get0_pkey(k2), pub) == 1, "open by id: rc %d %s", rc,
	    e.msg);

	/* two keys of one module: freeing one leaves the other working */
	p11_key_free(k);
	k = NULL;
	x = k2 != NULL ? cert_signed(p11_key_get0_pkey(k2), p11_key_get0_pkey(k2), EVP_sha256())
		       : NULL;
	CHECK(x != NULL && X509_verify(x, pub) == 1,
	    "a key still signs after another key of its module was freed");
	X509_free(x);

	/* the label is taken */
	rc = p11_key_generate("pkcs11:token=" TOKEN ";object=ca?pin-value=" PIN, &k, &e);
	CHECK(rc == DEVID_ECONFLICT && k == NULL && strstr(e.msg, "\"ca\"") != NULL,
	    "the same label twice is a conflict: rc %d %s", rc, e.msg);

	/* logged in already (k2 is open) with another PIN */
	rc = p11_key_open("pkcs11:token=" TOKEN ";object=ca?pin-value=" WRONG_PIN, &k, &e);
	CHECK(rc == DEVID_EAUTH && k == NULL && strstr(e.msg, "another PIN") != NULL &&
		strstr(e.msg, WRONG_PIN) == NULL,
	    "another PIN while logged in is refused: rc %d %s", rc, e.msg);

	p11_key_free(k2);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(other);
}

static void
test_errors(void)
{
	struct p11_key *k = NULL;
	struct devid_error e;
	char path[512], uri[768];
	FILE *f;
	int rc;

	devid_error_clear(&e);
	/* no key of ours is open: the module was finalized, so this is a real login */
	rc = p11_key_open("pkcs11:token=" TOKEN ";object=ca?pin-value=" WRONG_PIN, &k, &e);
	CHECK(rc == DEVID_EAUTH && k == NULL && strstr(e.msg, "CKR_PIN_INCORRECT") != NULL &&
		strstr(e.msg, WRONG_PIN) == NULL,
	    "a wrong PIN names CKR_PIN_INCORRECT and not the PIN: rc %d %s", rc, e.msg);

	rc = p11_key_open("pkcs11:token=" TOKEN ";object=nosuch?pin-value=" PIN, &k, &e);
	CHECK(rc == DEVID_ENOTFOUND && k == NULL && strstr(e.msg, "no private key") != NULL &&
		strstr(e.msg, PIN) == NULL,
	    "a URI naming no key: rc %d %s", rc, e.msg);

	rc = p11_key_open("pkcs11:token=" TOKEN ";object=ca", &k, &e);
	CHECK(rc == DEVID_ENOTFOUND && strstr(e.msg, "no PIN was given") != NULL,
	    "without a PIN the private key is not visible, and the message says why: rc %d %s", rc,
	    e.msg);

	rc = p11_key_open("pkcs11:token=no-such-token;object=ca?pin-value=" PIN, &k, &e);
	CHECK(rc == DEVID_ENOTFOUND && strstr(e.msg, "no token matches") != NULL &&
		strstr(e.msg, "\"" TOKEN "\"") != NULL && strstr(e.msg, PIN) == NULL,
	    "an unknown token is named clearly, listing the tokens present: rc %d %s", rc, e.msg);

	rc = p11_key_open("pkcs11:token=" TOKEN ";object=ca;type=public?pin-value=" PIN, &k, &e);
	CHECK(rc == DEVID_EINVAL && strstr(e.msg, "private") != NULL, "type=public: rc %d %s", rc,
	    e.msg);
	rc = p11_key_open("file:/etc/key.pem", &k, &e);
	CHECK(rc == DEVID_EINVAL && strstr(e.msg, "RFC 7512") != NULL, "not a pkcs11: URI: %s",
	    e.msg);
	rc = p11_key_open("pkcs11:token=" TOKEN ";object=ca?module-path=/nonexistent/mod.so"
			  "&pin-value=" PIN,
	    &k, &e);
	CHECK(rc == DEVID_EIO && strstr(e.msg, "/nonexistent/mod.so") != NULL &&
		strstr(e.msg, PIN) == NULL,
	    "a module that does not load: rc %d %s", rc, e.msg);
	rc = p11_key_generate("pkcs11:token=" TOKEN "?pin-value=" PIN, &k, &e);
	CHECK(rc == DEVID_EINVAL && strstr(e.msg, "object=") != NULL,
	    "a new key needs a label: rc %d %s", rc, e.msg);

	/* a second key: a URI without object or id now matches two */
	rc = p11_key_generate("pkcs11:token=" TOKEN ";object=second?pin-value=" PIN, &k, &e);
	CHECK(rc == 0, "a second key: rc %d %s", rc, e.msg);
	p11_key_free(k);
	k = NULL;
	rc = p11_key_open("pkcs11:token=" TOKEN "?pin-value=" PIN, &k, &e);
	CHECK(rc == DEVID_EINVAL && strstr(e.msg, "matches 2 keys") != NULL,
	    "a URI matching two keys: rc %d %s", rc, e.msg);

	/* the PIN from pin-source and from the environment */
	snprintf(path, sizeof(path), "%s/pin.txt", dir);
	f = fopen(path, "w");
	fputs(PIN "\n", f);
	fclose(f);
	snprintf(uri, sizeof(uri), "pkcs11:token=" TOKEN ";object=second?pin-source=file:%s", path);
	rc = p11_key_open(uri, &k, &e);
	CHECK(rc == 0, "pin-source=file:PATH: rc %d %s", rc, e.msg);
	p11_key_free(k);
	k = NULL;
	setenv("DEVID_PKCS11_PIN", PIN, 1);
	rc = p11_key_open("pkcs11:token=" TOKEN ";object=second", &k, &e);
	CHECK(rc == 0, "DEVID_PKCS11_PIN: rc %d %s", rc, e.msg);
	unsetenv("DEVID_PKCS11_PIN");
	p11_key_free(k);
	k = NULL;
	p11_key_free(NULL);

	/* no module named: p11-kit's proxy, which serves the registered SoftHSM2 */
	unsetenv("DEVID_PKCS11_MODULE");
	rc = p11_key_open("pkcs11:token=" TOKEN ";object=second?pin-value=" PIN, &k, &e);
	if (access("/usr/share/p11-kit/modules/softhsm2.module", R_OK) == 0)
		CHECK(rc == 0, "through p11-kit's proxy: rc %d %s", rc, e.msg);
	else
		printf("# SoftHSM2 is not registered with p11-kit: the proxy was not tried\n");
	p11_key_free(k);
	setenv("DEVID_PKCS11_MODULE", MODULE, 1);
}

struct signer {
	EVP_PKEY *key; /* the token's */
	EVP_PKEY *pub; /* the public half alone */
	int id;
	int good;
};

static void *
sign_many(void *arg)
{
	struct signer *s = arg;

	for (int i = 0; i < SIGNATURES; i++) {
		unsigned char msg[32], sig[128];
		size_t siglen = sizeof(sig);
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		int ok;

		snprintf((char *)msg, sizeof(msg), "thread %d signature %d", s->id, i);
		ok = c != NULL && EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, s->key) == 1 &&
		    EVP_DigestSign(c, sig, &siglen, msg, sizeof(msg)) == 1;
		EVP_MD_CTX_free(c);
		if (!ok)
			continue;
		c = EVP_MD_CTX_new();
		if (c != NULL && EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, s->pub) == 1 &&
		    EVP_DigestVerify(c, sig, siglen, msg, sizeof(msg)) == 1)
			s->good++;
		EVP_MD_CTX_free(c);
	}
	ERR_clear_error();
	return NULL;
}

static void
test_threads(void)
{
	struct p11_key *k = NULL;
	struct devid_error e;
	pthread_t t[THREADS];
	struct signer s[THREADS];
	EVP_PKEY *pub;
	int rc, good = 0;

	devid_error_clear(&e);
	rc = p11_key_open("pkcs11:token=" TOKEN ";object=ca?pin-value=" PIN, &k, &e);
	CHECK(rc == 0, "open for threads: rc %d %s", rc, e.msg);
	if (k == NULL)
		return;
	pub = public_only(p11_key_get0_pkey(k));
	for (int i = 0; i < THREADS; i++) {
		s[i] = (struct signer){p11_key_get0_pkey(k), pub, i, 0};
		pthread_create(&t[i], NULL, sign_many, &s[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		good += s[i].good;
	}
	CHECK(good == THREADS * SIGNATURES, "%d threads x %d signatures: %d verified", THREADS,
	    SIGNATURES, good);
	EVP_PKEY_free(pub);
	p11_key_free(k);
}

int
main(void)
{
	softhsm_setup();
	test_generate();
	test_errors();
	test_threads();
	test_rmdir(dir);
	return test_done();
}
