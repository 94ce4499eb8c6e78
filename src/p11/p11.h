/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11.h - a private key inside a PKCS#11 token, as an EVP_PKEY that OpenSSL signs with.
 *
 * Used by the operational CA of `devid serve` (the CA key) and by libdevid-agent (a device
 * key). The key is named by an RFC 7512 URI; the private key never leaves the token: every
 * signature is C_Sign(CKM_ECDSA) inside it, and OpenSSL only sees the public half.
 *
 * URI attributes understood (RFC 7512): path attributes token, manufacturer, serial, model,
 * slot-id (to choose the token), object and id (to choose the key; "type" may be given and
 * must then be "private"); query attributes module-path (the PKCS#11 module to load),
 * pin-value and pin-source (a file: URI or path whose first line is the PIN). The module is,
 * in order: module-path, the environment variable DEVID_PKCS11_MODULE, p11-kit's proxy
 * module (which serves every module registered with p11-kit, SoftHSM2 among them). The PIN
 * is, in order: pin-value, pin-source, DEVID_PKCS11_PIN; none means no login. PKCS#11 logins
 * are per token and application: a key opened on a token this process is already logged in
 * to (through another open key) with a different PIN is DEVID_EAUTH.
 *
 * Keys: EC P-256 (and P-384) only.
 *
 * Errors: a URI is never quoted in a message (it may carry a PIN); the token, object label
 * and PKCS#11 return code names (CKR_PIN_INCORRECT) are. Nothing is printed or logged.
 *
 * Thread safety: a struct p11_key may be used to sign from many threads at once (the module
 * is initialized with CKF_OS_LOCKING_OK and signatures use a small pool of sessions).
 * Opening and freeing are not concurrent with use. A module loaded by several keys is
 * initialized once and finalized when the last key is freed.
 */
#ifndef DEVID_P11_H
#define DEVID_P11_H

#include <stdbool.h>

#include <openssl/evp.h>

#include "lib/error.h"

struct p11_key;

/*
 * Opens the private key the URI names (exactly one must match: none is DEVID_ENOTFOUND, more
 * than one DEVID_EINVAL "the URI matches N keys") and its public key (the public key object
 * with the same CKA_ID, or the EC point read from the private object when the module offers
 * CKA_EC_POINT there). *out is new; free it with p11_key_free.
 */
int p11_key_open(const char *uri, struct p11_key **out, struct devid_error *e);

/*
 * Generates an EC P-256 key pair inside the token the URI names, with the URI's object label
 * and id (object is required; id, when absent, is 16 random bytes): the private key is
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true, CKA_EXTRACTABLE false, CKA_SIGN true, and
 * nothing else (no derive, decrypt or unwrap). DEVID_ECONFLICT if a key with that label
 * already exists in the token. The new key is opened as by p11_key_open.
 */
int p11_key_generate(const char *uri, struct p11_key **out, struct devid_error *e);

/*
 * The key as an EVP_PKEY (borrowed: valid until p11_key_free). OpenSSL signs with it as with
 * any EC key (X509_sign, X509_REQ_sign, X509_CRL_sign, TLS CertificateVerify); the signature
 * is made by the token. Exporting the private key fails (i2d_PrivateKey, PEM); OpenSSL 3.0
 * answers EVP_PKEY_get_bn_param("priv") with 0 for such a key.
 */
EVP_PKEY *p11_key_get0_pkey(struct p11_key *k);

/* What the token says of the private key object: CKA_SENSITIVE and CKA_EXTRACTABLE. */
int p11_key_flags(struct p11_key *k, bool *sensitive, bool *extractable, struct devid_error *e);

/*
 * AES-256 secret keys (connector secrets at rest, src/cli/secretskey.c). The URI names a
 * secret key object (type=secret-key may be given): p11_secret_open finds exactly one
 * CKK_AES key of 32 bytes; p11_secret_generate makes one (object= required; CKA_TOKEN,
 * CKA_PRIVATE, CKA_SENSITIVE, not extractable, encrypt and decrypt only; DEVID_ECONFLICT if an
 * object has the label). The struct p11_key has no EVP_PKEY then; free it with p11_key_free.
 */
int p11_secret_open(const char *uri, struct p11_key **out, struct devid_error *e);
int p11_secret_generate(const char *uri, struct p11_key **out, struct devid_error *e);
/*
 * AES-GCM (CKM_AES_GCM, 96-bit nonce, 128-bit tag) inside the token: encrypt in[0..n) to
 * out[0..n) and tag, or decrypt in and tag to out (DEVID_ECRYPTO when the tag does not match:
 * out is then not to be used). in and out may be NULL when n is 0. Thread-safe like signing.
 */
int p11_aes_gcm(struct p11_key *k, bool encrypt, const unsigned char nonce[12],
    const unsigned char *aad, size_t aadlen, const unsigned char *in, size_t n, unsigned char *out,
    unsigned char tag[16], struct devid_error *e);

/* Closes the sessions (and the module, when it was the last user); accepts NULL. */
void p11_key_free(struct p11_key *k);

#endif
