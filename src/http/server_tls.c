/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_tls.c - the server's TLS context (OpenSSL through bufferevent_openssl): protocol
 * and suites, the certificate and key, client certificates by mode, handshake refusals
 * logged, and the context replaced on a reload.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "http/server_internal.h"
#include "lib/log.h"
#include "lib/banned.h"

/* TLS 1.2 suites: forward-secret AEAD only (TLS 1.3 suites are OpenSSL's defaults). */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* The server of an SSL, set as the context's app data by tls_ctx_new. */
static const struct http_server *
ssl_server(const SSL *ssl)
{
	return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

/* A phrase as one log value: "unknown CA" becomes unknown_CA. */
static void
log_word(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s != '\0' && o + 1 < len; s++)
		out[o++] = (*s > 0x20 && *s < 0x7f && *s != '"' && *s != '\\') ? *s : '_';
	out[o] = '\0';
}

/* Logs a refused handshake: the fatal alert the server sends, and to whom. */
static void
tls_info_cb(const SSL *ssl, int where, int ret)
{
	char peer[INET6_ADDRSTRLEN + 16], alert[64];

	if ((where & SSL_CB_WRITE_ALERT) == 0 || (ret >> 8) != SSL3_AL_FATAL)
		return;
	http_fd_peer(SSL_get_fd(ssl), peer, sizeof(peer));
	/* OpenSSL 3.0 has no name for TLS 1.3's certificate_required (116) */
	log_word((ret & 0xff) == 116 ? "certificate required" : SSL_alert_desc_string_long(ret),
	    alert, sizeof(alert));
	log_info("http tls refused", LOG_STR("server", ssl_server(ssl)->name),
	    LOG_STR("peer", peer), LOG_STR("alert", alert));
}

/* Logs why a client certificate did not verify (the alert alone says little). */
static int
tls_verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	char peer[INET6_ADDRSTRLEN + 16], reason[128];

	if (!ok && ssl != NULL) {
		http_fd_peer(SSL_get_fd(ssl), peer, sizeof(peer));
		log_word(X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)), reason,
		    sizeof(reason));
		log_info("http client certificate rejected",
		    LOG_STR("server", ssl_server(ssl)->name), LOG_STR("peer", peer),
		    LOG_INT("depth", X509_STORE_CTX_get_error_depth(x)), LOG_STR("reason", reason));
	}
	return ok;
}

/*
 * HTTP_CLIENT_AUTH_ANY: every certificate passes TLS, which has no anchors to judge it by;
 * the handshake still proves the client holds the certificate's key (CertificateVerify).
 */
static int
tls_verify_any_cb(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

SSL_CTX *
http_tls_ctx_new(struct http_server *s, const struct http_server_opts *o, struct devid_error *e)
{
	static const unsigned char sid[] = "devid-http";
	STACK_OF(X509_NAME) *names;
	SSL_CTX *ctx = NULL, *ret = NULL;
	int mode;

	if (o->tls_key == NULL) {
		devid_error_set(e, DEVID_EINVAL, "tls: a certificate needs its key (tls_key)");
		goto out;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		devid_error_ssl(e, DEVID_ECRYPTO, "tls: context");
		goto out;
	}
	SSL_CTX_set_app_data(ctx, s);
	SSL_CTX_set_info_callback(ctx, tls_info_cb);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(
	    ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		devid_error_ssl(e, DEVID_ECRYPTO, "tls: cipher list");
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1) {
		devid_error_ssl(e, DEVID_ECRYPTO, "tls: certificate chain %s", o->tls_cert);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1) {
		devid_error_ssl(e, DEVID_ECRYPTO, "tls: private key %s", o->tls_key);
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		devid_error_ssl(
		    e, DEVID_ECRYPTO, "tls: %s is not the key of %s", o->tls_key, o->tls_cert);
		goto out;
	}
	/* resumed sessions keep the client's verified identity: name whose sessions they are */
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	if (o->client_auth == HTTP_CLIENT_AUTH_ANY) {
		if (o->tls_ca_file != NULL || o->tls_ca_store != NULL) {
			devid_error_set(e, DEVID_EINVAL,
			    "tls: client_auth any verifies no chain: give no client CA");
			goto out;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_any_cb);
		SSL_CTX_set_verify_depth(ctx, HTTP_TLS_VERIFY_DEPTH);
		/* no resumption: a resumed session from a ticket keeps the leaf but not the
		 * chain the handler must verify, nor a fresh proof of possession */
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(ctx, 0);
	} else if (o->client_auth != HTTP_CLIENT_AUTH_NONE) {
		if ((o->tls_ca_file == NULL) == (o->tls_ca_store == NULL)) {
			devid_error_set(e, DEVID_EINVAL,
			    "tls: client certificates need exactly one of tls_ca_file, "
			    "tls_ca_store");
			goto out;
		}
		if (o->tls_ca_file != NULL) {
			if (SSL_CTX_load_verify_locations(ctx, o->tls_ca_file, NULL) != 1) {
				devid_error_ssl(
				    e, DEVID_ECRYPTO, "tls: client CA file %s", o->tls_ca_file);
				goto out;
			}
			/* tell clients which CAs we accept, so they pick the right certificate */
			if ((names = SSL_load_client_CA_file(o->tls_ca_file)) != NULL)
				SSL_CTX_set_client_CA_list(ctx, names);
		} else {
			SSL_CTX_set1_cert_store(ctx, o->tls_ca_store); /* takes a reference */
		}
		mode = SSL_VERIFY_PEER;
		if (o->client_auth == HTTP_CLIENT_AUTH_REQUIRE)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, mode, tls_verify_cb);
		SSL_CTX_set_verify_depth(ctx, HTTP_TLS_VERIFY_DEPTH);
	} else if (o->tls_ca_file != NULL || o->tls_ca_store != NULL) {
		devid_error_set(
		    e, DEVID_EINVAL, "tls: a client CA is given but client_auth is none");
		goto out;
	}
	ret = ctx;
	ctx = NULL;
out:
	SSL_CTX_free(ctx);
	return ret;
}

int
http_server_reload_tls(struct http_server *s, X509_STORE *ca_store, struct devid_error *e)
{
	struct http_server_opts o = s->tls_opts;
	SSL_CTX *ctx, *old;

	if (s->ssl_ctx == NULL)
		return 0;
	if (ca_store != NULL)
		o.tls_ca_store = ca_store;
	if ((ctx = http_tls_ctx_new(s, &o, e)) == NULL)
		return e->code;
	pthread_mutex_lock(&s->tls_lock);
	old = s->ssl_ctx;
	s->ssl_ctx = ctx;
	s->tls_opts = o;
	pthread_mutex_unlock(&s->tls_lock);
	SSL_CTX_free(old); /* connections made with it keep it until they end */
	return 0;
}
