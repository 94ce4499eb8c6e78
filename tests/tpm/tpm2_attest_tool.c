// SPDX-License-Identifier: Apache-2.0
/*
 * tpm2_attest_tool.c - src/lib/tpm2_attest.c on files, for tpm-attest.sh to drive against a
 * real TPM (swtpm) with tpm2-tools as the device. Prints the reason of a refusal on stderr
 * and exits 1; exits 0 when the check passes.
 *
 *   name PUB                      the TPM name of a TPM2B_PUBLIC, in hex
 *   ak-check PUB                  tpm2_ak_check
 *   key-check PUB                 tpm2_signing_key_check
 *   makecred EK.pem AKPUB SECRET OUT
 *                                 MakeCredential of SECRET's bytes to the EK public key (PEM)
 *                                 for AKPUB's name, written in tpm2_makecredential's file
 *                                 format (what tpm2_activatecredential -i reads)
 *   certify AKPUB KEYPUB ATTEST SIG QUALIFYING
 *                                 tpm2_ak_check, tpm2_signing_key_check, tpm2_certify_check
 *                                 with QUALIFYING's bytes as the qualifying data, or any
 *                                 qualifying data when QUALIFYING is -
 *   spki PUB                      the key as a PEM SubjectPublicKeyInfo on stdout
 *   ekpub EKCERT.der OUT          the EK's TPM2B_PUBLIC rebuilt from its certificate's key
 *                                 (src/lib/tpm2_ekpub.c), written to OUT
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/tpm2_attest.h"
#include "lib/tpm2_ekpub.h"
#include "lib/banned.h"

static size_t
slurp(const char *path, uint8_t *buf, size_t max)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		perror(path);
		exit(2);
	}
	n = fread(buf, 1, max, f);
	fclose(f);
	return n;
}

static struct tpm2_public *
load_public(const char *path)
{
	static uint8_t buf[4096];
	struct tpm2_public *pub;
	struct devid_error e;
	size_t n = slurp(path, buf, sizeof(buf));

	devid_error_clear(&e);
	if (tpm2_public_parse(buf, n, &pub, &e) != 0) {
		fprintf(stderr, "%s: %s\n", path, e.msg);
		exit(1);
	}
	return pub;
}

static int
makecred(char **argv)
{
	static const uint8_t header[8] = {0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1};
	struct tpm2_public *ak = load_public(argv[1]);
	struct tpm2_credential cred;
	struct devid_error e;
	uint8_t secret[64];
	size_t n = slurp(argv[2], secret, sizeof(secret)), name_len;
	const uint8_t *name = tpm2_public_name(ak, &name_len);
	FILE *f = fopen(argv[0], "r");
	EVP_PKEY *ek = f != NULL ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
	int rc = 1;

	if (f != NULL)
		fclose(f);
	if (ek == NULL) {
		fprintf(stderr, "%s: not a PEM public key\n", argv[0]);
		goto out;
	}
	devid_error_clear(&e);
	if (tpm2_make_credential(ek, name, name_len, secret, n, &cred, &e) != 0) {
		fprintf(stderr, "makecred: %s\n", e.msg);
		goto out;
	}
	if ((f = fopen(argv[3], "wb")) == NULL) {
		perror(argv[3]);
		goto out;
	}
	fwrite(header, 1, sizeof(header), f);
	fwrite(cred.id_object, 1, cred.id_object_len, f);
	fwrite(cred.secret, 1, cred.secret_len, f);
	rc = fclose(f) == 0 ? 0 : 1;
out:
	EVP_PKEY_free(ek);
	tpm2_public_free(ak);
	return rc;
}

static int
certify(char **argv)
{
	static uint8_t attest[4096], sig[4096], q[256];
	struct tpm2_public *ak = load_public(argv[0]);
	struct tpm2_public *key = load_public(argv[1]);
	size_t alen = slurp(argv[2], attest, sizeof(attest));
	size_t slen = slurp(argv[3], sig, sizeof(sig));
	bool any = strcmp(argv[4], "-") == 0;
	size_t qlen = any ? 0 : slurp(argv[4], q, sizeof(q));
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = tpm2_ak_check(ak, &e);
	if (rc == 0)
		rc = tpm2_signing_key_check(key, &e);
	if (rc == 0)
		rc = tpm2_certify_check(ak, key, attest, alen, sig, slen, any ? NULL : q, qlen, &e);
	if (rc != 0)
		fprintf(stderr, "certify: %s\n", e.msg);
	tpm2_public_free(ak);
	tpm2_public_free(key);
	return rc == 0 ? 0 : 1;
}

static int
check(const char *path, int (*fn)(const struct tpm2_public *, struct devid_error *))
{
	struct tpm2_public *pub = load_public(path);
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	if ((rc = fn(pub, &e)) != 0)
		fprintf(stderr, "%s: %s\n", path, e.msg);
	tpm2_public_free(pub);
	return rc == 0 ? 0 : 1;
}

static int
ekpub(const char *cert_path, const char *out_path)
{
	static uint8_t der[8192];
	uint8_t pub[TPM2_EK_PUBLIC_MAX];
	size_t n = slurp(cert_path, der, sizeof(der)), len;
	const unsigned char *q = der;
	X509 *x = d2i_X509(NULL, &q, (long)n);
	struct devid_error e;
	FILE *f;
	int rc = 1;

	devid_error_clear(&e);
	if (x == NULL) {
		fprintf(stderr, "%s: not a DER certificate\n", cert_path);
		return 1;
	}
	if (tpm2_ek_public(X509_get0_pubkey(x), pub, &len, &e) != 0) {
		fprintf(stderr, "%s: %s\n", cert_path, e.msg);
		goto out;
	}
	if ((f = fopen(out_path, "wb")) == NULL || fwrite(pub, 1, len, f) != len ||
	    fclose(f) != 0) {
		perror(out_path);
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	return rc;
}

int
main(int argc, char **argv)
{
	struct tpm2_public *pub;
	const uint8_t *name;
	size_t len;

	if (argc == 3 && strcmp(argv[1], "name") == 0) {
		pub = load_public(argv[2]);
		name = tpm2_public_name(pub, &len);
		for (size_t i = 0; i < len; i++)
			printf("%02x", name[i]);
		putchar('\n');
		tpm2_public_free(pub);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "ak-check") == 0)
		return check(argv[2], tpm2_ak_check);
	if (argc == 3 && strcmp(argv[1], "key-check") == 0)
		return check(argv[2], tpm2_signing_key_check);
	if (argc == 3 && strcmp(argv[1], "spki") == 0) {
		pub = load_public(argv[2]);
		len = (size_t)PEM_write_PUBKEY(stdout, tpm2_public_get0_pkey(pub));
		tpm2_public_free(pub);
		return len == 1 ? 0 : 1;
	}
	if (argc == 6 && strcmp(argv[1], "makecred") == 0)
		return makecred(argv + 2);
	if (argc == 7 && strcmp(argv[1], "certify") == 0)
		return certify(argv + 2);
	if (argc == 4 && strcmp(argv[1], "ekpub") == 0)
		return ekpub(argv[2], argv[3]);
	fprintf(stderr,
	    "usage: tpm2_attest_tool name|ak-check|key-check|spki PUB\n"
	    "       tpm2_attest_tool makecred EK.pem AKPUB SECRET OUT\n"
	    "       tpm2_attest_tool certify AKPUB KEYPUB ATTEST SIG QUALIFYING\n"
	    "       tpm2_attest_tool ekpub EKCERT.der OUT\n");
	return 2;
}
