/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secretskey.c - file: and pkcs11: keys for connector secrets (see secretskey.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cli/secretskey.h"
#include "p11/p11.h"
#include "lib/banned.h"

struct loaded_secrets {
	struct secrets_key k; /* first: the service sees only this */
	uint8_t key[SECRETS_KEY_LEN]; /* a file key, or */
	struct p11_key *p11; /* a key in a token */
};

/* secrets_key.gcm with OpenSSL, for a file key. */
static int
file_gcm(void *ctx, bool enc, const uint8_t nonce[SECRETS_NONCE_LEN], const uint8_t *aad,
    size_t aadlen, const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[SECRETS_TAG_LEN],
    struct devid_error *e)
{
	const struct loaded_secrets *l = ctx;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len, rc = DEVID_ECRYPTO;
	uint8_t end[16];

	if (c == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "secrets: out of memory");
	if (n > INT_MAX || aadlen > INT_MAX ||
	    EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc ? 1 : 0) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SECRETS_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(c, NULL, NULL, l->key, nonce, enc ? 1 : 0) != 1 ||
	    (aadlen > 0 && EVP_CipherUpdate(c, NULL, &len, aad, (int)aadlen) != 1) ||
	    (n > 0 && EVP_CipherUpdate(c, out, &len, in, (int)n) != 1)) {
		devid_error_ssl(e, rc, "secrets: AES-256-GCM");
		goto out;
	}
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SECRETS_TAG_LEN, tag) != 1) {
		devid_error_ssl(e, rc, "secrets: AES-256-GCM tag");
		goto out;
	}
	if (EVP_CipherFinal_ex(c, end, &len) != 1) {
		devid_error_set(e, rc, "secrets: AES-256-GCM: %s",
		    enc ? "cannot finish" : "the tag does not match");
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SECRETS_TAG_LEN, tag) != 1) {
		devid_error_ssl(e, rc, "secrets: AES-256-GCM tag");
		goto out;
	}
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

/* secrets_key.gcm inside the token, for a pkcs11: key. */
static int
token_gcm(void *ctx, bool enc, const uint8_t nonce[SECRETS_NONCE_LEN], const uint8_t *aad,
    size_t aadlen, const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[SECRETS_TAG_LEN],
    struct devid_error *e)
{
	const struct loaded_secrets *l = ctx;

	return p11_aes_gcm(l->p11, enc, nonce, aad, aadlen, in, n, out, tag, e);
}

/* Reads exactly SECRETS_KEY_LEN bytes from a file only its owner can read. */
static int
file_key_read(const char *path, uint8_t key[SECRETS_KEY_LEN], struct devid_error *e)
{
	uint8_t extra;
	struct stat st;
	ssize_t got;
	size_t n = 0;
	int fd, rc = DEVID_EIO;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return devid_error_set(e, DEVID_EIO, "secrets key %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = devid_error_set(e, DEVID_EINVAL, "secrets key %s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		rc = devid_error_set(e, DEVID_EAUTH,
		    "secrets key %s: mode %03o lets others read it: chmod 600 it (and consider "
		    "it exposed)",
		    path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	while (n < SECRETS_KEY_LEN &&
	    ((got = read(fd, key + n, SECRETS_KEY_LEN - n)) > 0 || (got < 0 && errno == EINTR)))
		n += got > 0 ? (size_t)got : 0;
	if (n != SECRETS_KEY_LEN || read(fd, &extra, 1) != 0) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "secrets key %s: must hold exactly %d bytes (devid admin secrets-key init)",
		    path, SECRETS_KEY_LEN);
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

int
secrets_key_load(const char *uri, struct secrets_key **out, struct devid_error *e)
{
	struct loaded_secrets *l = calloc(1, sizeof(*l));
	int rc;

	*out = NULL;
	if (l == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	l->k.ctx = l;
	if (strncmp(uri, "file:", 5) == 0 && uri[5] != '\0') {
		l->k.gcm = file_gcm;
		rc = file_key_read(uri + 5, l->key, e);
	} else if (strncmp(uri, "pkcs11:", 7) == 0) {
		l->k.gcm = token_gcm;
		rc = p11_secret_open(uri, &l->p11, e);
	} else {
		rc = devid_error_set(e, DEVID_EINVAL, "a secrets key is file:PATH or pkcs11:...");
	}
	if (rc == 0)
		rc = secrets_key_set_id(&l->k, e);
	if (rc != 0) {
		secrets_key_free(&l->k);
		return rc;
	}
	*out = &l->k;
	return 0;
}

int
secrets_key_create(const char *uri, struct devid_error *e)
{
	uint8_t key[SECRETS_KEY_LEN];
	struct p11_key *p = NULL;
	const char *path = uri + 5;
	size_t n = 0;
	ssize_t w;
	int fd, rc;

	if (strncmp(uri, "pkcs11:", 7) == 0) {
		rc = p11_secret_generate(uri, &p, e);
		p11_key_free(p);
		return rc;
	}
	if (strncmp(uri, "file:", 5) != 0 || uri[5] == '\0')
		return devid_error_set(e, DEVID_EINVAL, "a secrets key is file:PATH or pkcs11:...");
	if (RAND_priv_bytes(key, sizeof(key)) != 1)
		return devid_error_ssl(e, DEVID_ECRYPTO, "secrets key: no random bytes");
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		int err = errno;

		OPENSSL_cleanse(key, sizeof(key));
		return devid_error_set(e, err == EEXIST ? DEVID_ECONFLICT : DEVID_EIO,
		    "secrets key %s: %s", path,
		    err == EEXIST ? "exists already (never replaced: connector secrets "
				    "encrypted under it would be lost)"
				  : strerror(err));
	}
	while (n < sizeof(key) &&
	    ((w = write(fd, key + n, sizeof(key) - n)) > 0 || (w < 0 && errno == EINTR)))
		n += w > 0 ? (size_t)w : 0;
	OPENSSL_cleanse(key, sizeof(key));
	rc = n == sizeof(key) && fsync(fd) == 0 ? 0 : DEVID_EIO;
	if (close(fd) != 0)
		rc = DEVID_EIO;
	if (rc != 0) {
		unlink(path);
		return devid_error_set(e, DEVID_EIO, "secrets key %s: cannot write", path);
	}
	return 0;
}

void
secrets_key_free(struct secrets_key *k)
{
	struct loaded_secrets *l = (struct loaded_secrets *)k;

	if (l == NULL)
		return;
	p11_key_free(l->p11);
	OPENSSL_cleanse(l->key, sizeof(l->key));
	free(l);
}
