/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mosquitto.c - the mosquitto connector: drives a Mosquitto 2 broker's dynamic-security
 * plugin over MQTT (libmosquitto), so a claimed device may log in with its birth certificate.
 *
 * Add: createClient {username: UDID, roles: [role]}; a client that already exists is read
 * back (getClient) and given the role (addClientRole) when it lacks it. Remove: deleteClient
 * (the broker also disconnects the device); a client that does not exist is removed already.
 * Commands travel in batches on $CONTROL/dynamic-security/v1, each with a correlationData
 * unique to this delivery; answers are read on .../response. TLS material comes from the
 * config through an SSL_CTX handed to libmosquitto (MOSQ_OPT_SSL_CTX): nothing touches disk.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "connectors/connector.h"
#include "lib/json.h"
#include "lib/banned.h"

#define MQ_TYPE "mosquitto"
#define MQ_TOPIC "$CONTROL/dynamic-security/v1"
#define MQ_RESPONSE_TOPIC "$CONTROL/dynamic-security/v1/response"
#define MQ_MAX_HOST 253
#define MQ_MAX_NAME 256 /* username, password, role */
#define MQ_MAX_PEM (64 * 1024)
#define MQ_BATCH 100 /* dynsec commands per MQTT message */
#define MQ_MAX_ANSWER (4 * 1024 * 1024) /* a response message larger than this is ignored */
#define MQ_KEEPALIVE 30
#define MQ_LOOP_MS 200

/* libmosquitto's global set-up is not thread safe: once per process. */
static pthread_once_t mq_once = PTHREAD_ONCE_INIT;

static void
mq_init(void)
{
	mosquitto_lib_init();
}

/* ----- config ----- */

static bool
mq_host_ok(const char *h)
{
	for (const char *p = h; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == ':'))
			return false;
	return true;
}

/* A dynsec role name as devid takes it: printable ASCII, no MQTT wildcard or separator. */
static bool
mq_role_ok(const char *r)
{
	for (const char *p = r; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~' || *p == '/' || *p == '+' || *p == '#' || *p == '"' ||
		    *p == '\\')
			return false;
	return true;
}

static int
mq_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1; /* an encrypted key is refused, never prompted for */
}

/* Every certificate of a PEM text (at least one), or NULL with e set. */
static STACK_OF(X509) *
mq_certs(const char *pem, const char *field, struct devid_error *e)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;

	while (b != NULL && sk != NULL &&
	    (x = PEM_read_bio_X509(b, NULL, mq_no_passphrase, NULL)) != NULL)
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	ERR_clear_error();
	BIO_free(b);
	if (sk == NULL || sk_X509_num(sk) == 0) {
		sk_X509_pop_free(sk, X509_free);
		devid_error_set(e, DEVID_EINVAL, MQ_TYPE ": %s: no PEM certificate", field);
		return NULL;
	}
	return sk;
}

static EVP_PKEY *
mq_key(const char *pem, struct devid_error *e)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, mq_no_passphrase, NULL) : NULL;

	ERR_clear_error();
	BIO_free(b);
	if (k == NULL)
		devid_error_set(
		    e, DEVID_EINVAL, MQ_TYPE ": clientKey: not an unencrypted PEM private key");
	return k;
}

static bool
mq_tls(const json_t *config)
{
	json_t *t = json_object_get(config, "tls");

	return t != NULL ? json_is_true(t) : json_object_get(config, "ca") != NULL;
}

static int
mq_validate(const json_t *config, struct devid_error *e)
{
	static const char *const known[] = {"host", "port", "tls", "ca", "username", "password",
	    "clientCert", "clientKey", "role", "ratePerSecond"};
	const char *s, *key;
	const char *cert = NULL, *pkey = NULL;
	json_int_t port;
	json_t *v;
	STACK_OF(X509) *sk = NULL;
	EVP_PKEY *k = NULL;
	bool pw;
	int rc = DEVID_EINVAL, r;

	if (!json_is_object(config))
		return devid_error_set(e, DEVID_EINVAL, MQ_TYPE ": config is an object");
	json_object_foreach((json_t *)config, key, v)
	{
		size_t i;

		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0]))
			return devid_error_set(e, DEVID_EINVAL,
			    MQ_TYPE ": unknown member \"%s\" (known: host, port, tls, ca, "
				    "username, password, clientCert, clientKey, role, "
				    "ratePerSecond)",
			    key);
	}
	if (json_get_str(config, "host", 1, MQ_MAX_HOST, true, &s, NULL, MQ_TYPE, e) != 0)
		goto out;
	if (!mq_host_ok(s)) {
		devid_error_set(e, DEVID_EINVAL,
		    MQ_TYPE
		    ": host is a DNS name or an IP address (letters, digits, '.', '-', ':')");
		goto out;
	}
	if (json_get_int(config, "port", 1, 65535, &port, MQ_TYPE, e) != 0)
		goto out;
	if ((v = json_object_get(config, "tls")) != NULL && !json_is_boolean(v)) {
		devid_error_set(e, DEVID_EINVAL, MQ_TYPE ": tls is true or false");
		goto out;
	}
	if (json_get_str(config, "username", 1, MQ_MAX_NAME, true, &s, NULL, MQ_TYPE, e) != 0)
		goto out;
	if (json_get_str(config, "role", 1, MQ_MAX_NAME, true, &s, NULL, MQ_TYPE, e) != 0)
		goto out;
	if (!mq_role_ok(s)) {
		devid_error_set(e, DEVID_EINVAL,
		    MQ_TYPE ": role: printable ASCII without spaces, quotes, '/', '+' or '#'");
		goto out;
	}
	if ((r = json_get_str(config, "ca", 1, MQ_MAX_PEM, false, &s, NULL, MQ_TYPE, e)) == 0) {
		if ((sk = mq_certs(s, "ca", e)) == NULL)
			goto out;
		if (!mq_tls(config)) {
			devid_error_set(e, DEVID_EINVAL, MQ_TYPE ": ca given with tls false");
			goto out;
		}
	} else if (r != DEVID_ENOTFOUND)
		goto out;
	r = json_get_str(config, "password", 1, MQ_MAX_NAME, false, &s, NULL, MQ_TYPE, e);
	if (r != 0 && r != DEVID_ENOTFOUND)
		goto out;
	pw = r == 0;
	r = json_get_str(config, "clientCert", 1, MQ_MAX_PEM, false, &cert, NULL, MQ_TYPE, e);
	if (r != 0 && r != DEVID_ENOTFOUND)
		goto out;
	r = json_get_str(config, "clientKey", 1, MQ_MAX_PEM, false, &pkey, NULL, MQ_TYPE, e);
	if (r != 0 && r != DEVID_ENOTFOUND)
		goto out;
	if ((cert == NULL) != (pkey == NULL)) {
		devid_error_set(e, DEVID_EINVAL, MQ_TYPE ": clientCert and clientKey go together");
		goto out;
	}
	if (pw == (cert != NULL)) {
		devid_error_set(e, DEVID_EINVAL,
		    MQ_TYPE ": the admin logs in with a password or with clientCert and clientKey "
			    "(one of the two)");
		goto out;
	}
	if (cert != NULL) {
		if (!mq_tls(config)) {
			devid_error_set(
			    e, DEVID_EINVAL, MQ_TYPE ": a client certificate needs tls");
			goto out;
		}
		sk_X509_pop_free(sk, X509_free);
		if ((sk = mq_certs(cert, "clientCert", e)) == NULL || (k = mq_key(pkey, e)) == NULL)
			goto out;
		if (!X509_check_private_key(sk_X509_value(sk, 0), k)) {
			ERR_clear_error();
			devid_error_set(
			    e, DEVID_EINVAL, MQ_TYPE ": clientKey is not the key of clientCert");
			goto out;
		}
	}
	if (connector_check_rate(config, MQ_TYPE, e) != 0)
		goto out;
	rc = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	EVP_PKEY_free(k);
	return rc;
}

static json_t *
mq_redact(const json_t *config)
{
	json_t *r = json_deep_copy(config);

	if (r == NULL)
		return NULL;
	if (json_object_get(r, "password") != NULL) {
		json_object_del(r, "password");
		json_object_set_new(r, "passwordSet", json_true());
	}
	if (json_object_get(r, "clientKey") != NULL) {
		json_object_del(r, "clientKey");
		json_object_set_new(r, "clientKeySet", json_true());
	}
	return r;
}

/* ----- the TLS context: trust, host name, client certificate, all from memory ----- */

static SSL_CTX *
mq_ssl_ctx(const json_t *config, const char *host, struct devid_error *e)
{
	const char *ca = json_string_value(json_object_get(config, "ca"));
	const char *cert = json_string_value(json_object_get(config, "clientCert"));
	const char *pkey = json_string_value(json_object_get(config, "clientKey"));
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509_VERIFY_PARAM *param;
	STACK_OF(X509) *sk = NULL;
	EVP_PKEY *k = NULL;
	bool ok = false;

	if (ctx == NULL) {
		devid_error_ssl(e, DEVID_ENOMEM, MQ_TYPE ": SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	param = SSL_CTX_get0_param(ctx);
	/* the broker's certificate must name host: an IP address or a DNS name */
	if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1) {
		ERR_clear_error();
		if (X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
			devid_error_ssl(e, DEVID_EINTERNAL, MQ_TYPE ": host name check");
			goto out;
		}
	}
	if (ca != NULL) {
		X509_STORE *st = SSL_CTX_get_cert_store(ctx);

		if ((sk = mq_certs(ca, "ca", e)) == NULL)
			goto out;
		for (int i = 0; i < sk_X509_num(sk); i++)
			if (X509_STORE_add_cert(st, sk_X509_value(sk, i)) != 1) {
				devid_error_ssl(e, DEVID_ECRYPTO, MQ_TYPE ": ca");
				goto out;
			}
		sk_X509_pop_free(sk, X509_free);
		sk = NULL;
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		devid_error_ssl(e, DEVID_ECRYPTO, MQ_TYPE ": the system's trusted CAs");
		goto out;
	}
	if (cert != NULL && pkey != NULL) {
		if ((sk = mq_certs(cert, "clientCert", e)) == NULL || (k = mq_key(pkey, e)) == NULL)
			goto out;
		if (SSL_CTX_use_certificate(ctx, sk_X509_value(sk, 0)) != 1 ||
		    SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
			devid_error_ssl(e, DEVID_ECRYPTO, MQ_TYPE ": clientCert/clientKey");
			goto out;
		}
		for (int i = 1; i < sk_X509_num(sk); i++)
			if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(sk, i)) != 1) {
				devid_error_ssl(e, DEVID_ECRYPTO, MQ_TYPE ": clientCert chain");
				goto out;
			}
	}
	ok = true;
out:
	sk_X509_pop_free(sk, X509_free);
	EVP_PKEY_free(k);
	if (!ok) {
		SSL_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* ----- one MQTT session to the broker ----- */

struct mq_session {
	struct mosquitto *mosq;
	int connack; /* -1 until CONNACK */
	bool subscribed, lost;
	int sub_mid;
	char prefix[24]; /* correlationData = prefix ":" run ":" index: this session's only */
	unsigned run; /* mq_run calls so far: a late answer of an earlier run is ignored */
	json_t *answers; /* array: one slot per command of the current run, null until answered */
	size_t unanswered;
};

static void
mq_on_connect(struct mosquitto *mosq, void *arg, int rc)
{
	struct mq_session *s = arg;

	(void)mosq;
	s->connack = rc;
}

static void
mq_on_disconnect(struct mosquitto *mosq, void *arg, int rc)
{
	struct mq_session *s = arg;

	(void)mosq;
	(void)rc;
	s->lost = true;
}

static void
mq_on_subscribe(struct mosquitto *mosq, void *arg, int mid, int n, const int *granted)
{
	struct mq_session *s = arg;

	(void)mosq;
	if (mid == s->sub_mid && n == 1 && granted[0] <= 2)
		s->subscribed = true;
}

/* Files each response of ours in its slot; anything else on the topic is ignored. */
static void
mq_on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *m)
{
	struct mq_session *s = arg;
	struct devid_error e = {0};
	size_t plen = strlen(s->prefix), i;
	json_t *root, *resp, *r;

	(void)mosq;
	if (s->answers == NULL || m->payloadlen <= 0 || m->payloadlen > MQ_MAX_ANSWER ||
	    strcmp(m->topic, MQ_RESPONSE_TOPIC) != 0)
		return;
	if ((root = json_parse(m->payload, (size_t)m->payloadlen, "dynsec response", &e)) == NULL)
		return;
	resp = json_object_get(root, "responses");
	json_array_foreach(resp, i, r)
	{
		const char *cd = json_string_value(json_object_get(r, "correlationData"));
		char *end;
		unsigned long run, idx;

		if (cd == NULL || strncmp(cd, s->prefix, plen) != 0 || cd[plen] != ':' ||
		    cd[plen + 1] < '0' || cd[plen + 1] > '9')
			continue;
		run = strtoul(cd + plen + 1, &end, 10);
		if (run != s->run || *end != ':' || end[1] < '0' || end[1] > '9')
			continue;
		idx = strtoul(end + 1, &end, 10);
		if (*end != '\0' || idx >= json_array_size(s->answers) ||
		    !json_is_null(json_array_get(s->answers, idx)) || !json_is_object(r))
			continue;
		json_array_set(s->answers, idx, r);
		s->unanswered--;
	}
	json_decref(root);
}

enum mq_wait { MQ_WAIT_CONNACK, MQ_WAIT_SUBACK, MQ_WAIT_ANSWERS };

static bool
mq_done(const struct mq_session *s, enum mq_wait w)
{
	switch (w) {
	case MQ_WAIT_CONNACK:
		return s->connack >= 0;
	case MQ_WAIT_SUBACK:
		return s->subscribed;
	case MQ_WAIT_ANSWERS:
		return s->unanswered == 0;
	}
	return false;
}

/* Runs the network loop until w is done, the connection drops, or CONNECTOR_TIMEOUT_SECS. */
static int
mq_wait(struct mq_session *s, enum mq_wait w, const char *what, struct devid_error *e)
{
	time_t deadline = time(NULL) + CONNECTOR_TIMEOUT_SECS;
	int r;

	while (!mq_done(s, w)) {
		if (s->lost)
			return devid_error_set(
			    e, DEVID_EIO, MQ_TYPE ": the broker closed the connection (%s)", what);
		if (time(NULL) > deadline)
			return devid_error_set(
			    e, DEVID_EIO, MQ_TYPE ": no %s in %ld s", what, CONNECTOR_TIMEOUT_SECS);
		if ((r = mosquitto_loop(s->mosq, MQ_LOOP_MS, 1)) != MOSQ_ERR_SUCCESS) {
			if (r == MOSQ_ERR_ERRNO || r == MOSQ_ERR_TLS || r == MOSQ_ERR_CONN_LOST ||
			    r == MOSQ_ERR_NO_CONN || r == MOSQ_ERR_PROTOCOL)
				return devid_error_set(e, DEVID_EIO,
				    MQ_TYPE
				    ": connection to the broker failed while waiting for %s: "
				    "%s",
				    what,
				    r == MOSQ_ERR_TLS ? "TLS handshake or certificate check failed"
						      : mosquitto_strerror(r));
			return devid_error_set(
			    e, DEVID_EIO, MQ_TYPE ": %s: %s", what, mosquitto_strerror(r));
		}
	}
	return 0;
}

static void
mq_close(struct mq_session *s)
{
	if (s->mosq != NULL) {
		if (s->connack == 0 && !s->lost)
			mosquitto_disconnect(s->mosq);
		mosquitto_destroy(s->mosq);
	}
	json_decref(s->answers);
	s->mosq = NULL;
	s->answers = NULL;
}

/* Connects as the dynsec admin and subscribes to the response topic. */
static int
mq_open(struct mq_session *s, const json_t *config, struct devid_error *e)
{
	const char *host = json_string_value(json_object_get(config, "host"));
	const char *user = json_string_value(json_object_get(config, "username"));
	const char *pw = json_string_value(json_object_get(config, "password"));
	int port = (int)json_integer_value(json_object_get(config, "port"));
	unsigned char rnd[8];
	char id[40];
	SSL_CTX *ctx = NULL;
	int rc = DEVID_EIO, r;

	memset(s, 0, sizeof(*s));
	s->connack = -1;
	pthread_once(&mq_once, mq_init);
	if (host == NULL || user == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1)
		return devid_error_set(e, DEVID_EINVAL, MQ_TYPE ": config incomplete");
	snprintf(s->prefix, sizeof(s->prefix), "devid-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0],
	    rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	/* a client id of its own, so two deliveries never take over each other's session */
	snprintf(id, sizeof(id), "%s", s->prefix);
	if ((s->mosq = mosquitto_new(id, true, s)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, MQ_TYPE ": mosquitto_new");
	mosquitto_connect_callback_set(s->mosq, mq_on_connect);
	mosquitto_disconnect_callback_set(s->mosq, mq_on_disconnect);
	mosquitto_subscribe_callback_set(s->mosq, mq_on_subscribe);
	mosquitto_message_callback_set(s->mosq, mq_on_message);
	if (mosquitto_username_pw_set(s->mosq, user, pw) != MOSQ_ERR_SUCCESS) {
		rc = devid_error_set(e, DEVID_ENOMEM, MQ_TYPE ": username");
		goto out;
	}
	if (mq_tls(config)) {
		if ((ctx = mq_ssl_ctx(config, host, e)) == NULL) {
			rc = e->code;
			goto out;
		}
		/* our context as it is: libmosquitto adds no defaults and reads no files */
		if (mosquitto_int_option(s->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0) !=
			MOSQ_ERR_SUCCESS ||
		    mosquitto_void_option(s->mosq, MOSQ_OPT_SSL_CTX, ctx) != MOSQ_ERR_SUCCESS) {
			rc = devid_error_set(e, DEVID_EINTERNAL, MQ_TYPE ": MOSQ_OPT_SSL_CTX");
			goto out;
		}
	}
	/*
	 * A blocking TCP connect: with TLS, mosquitto_connect_async (2.0.11) never reports a
	 * refused connection (mosquitto_loop goes on answering success), so a broker that is
	 * down would cost the whole timeout. The TLS handshake and the CONNACK still run in the
	 * loop, under mq_wait's bound; a host that drops SYNs blocks for the kernel's connect
	 * timeout.
	 */
	if ((r = mosquitto_connect(s->mosq, host, port, MQ_KEEPALIVE)) != MOSQ_ERR_SUCCESS) {
		rc = devid_error_set(e, DEVID_EIO, MQ_TYPE ": cannot connect to %s:%d: %s", host,
		    port,
		    r == MOSQ_ERR_ERRNO ? "connection refused or unreachable"
					: mosquitto_strerror(r));
		goto out;
	}
	if (mq_wait(s, MQ_WAIT_CONNACK, "the broker's CONNACK", e) != 0) {
		rc = e->code;
		goto out;
	}
	if (s->connack != 0) {
		rc = devid_error_set(e, DEVID_EAUTH, MQ_TYPE ": %s:%d refused the admin login: %s",
		    host, port, mosquitto_connack_string(s->connack));
		goto out;
	}
	if (mosquitto_subscribe(s->mosq, &s->sub_mid, MQ_RESPONSE_TOPIC, 1) != MOSQ_ERR_SUCCESS) {
		rc = devid_error_set(e, DEVID_EIO, MQ_TYPE ": cannot subscribe");
		goto out;
	}
	if (mq_wait(s, MQ_WAIT_SUBACK, "the SUBACK of " MQ_RESPONSE_TOPIC, e) != 0) {
		rc = e->code;
		goto out;
	}
	rc = 0;
out:
	SSL_CTX_free(ctx); /* libmosquitto holds its own reference */
	return rc;
}

/*
 * Sends cmds (an array of dynsec command objects; each gets its correlationData) in batches
 * of MQ_BATCH and waits for every answer. On success s->answers holds one response object
 * per command, in order.
 */
static int
mq_run(struct mq_session *s, json_t *cmds, struct devid_error *e)
{
	size_t n = json_array_size(cmds);
	int rc = DEVID_ENOMEM;

	json_decref(s->answers);
	s->run++;
	s->unanswered = 0;
	if ((s->answers = json_array()) == NULL)
		return devid_error_set(e, rc, MQ_TYPE ": out of memory");
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(s->answers, json_null()) != 0)
			return devid_error_set(e, rc, MQ_TYPE ": out of memory");
	for (size_t i = 0; i < n; i += MQ_BATCH) {
		json_t *msg = json_object(), *part = json_array();
		char *text = NULL, cd[64];
		int r = -1;

		for (size_t j = i; part != NULL && j < n && j < i + MQ_BATCH; j++) {
			json_t *c = json_array_get(cmds, j);

			snprintf(cd, sizeof(cd), "%s:%u:%zu", s->prefix, s->run, j);
			json_object_set_new(c, "correlationData", json_string(cd));
			json_array_append(part, c);
		}
		if (msg != NULL && part != NULL && json_object_set(msg, "commands", part) == 0 &&
		    (text = json_dump_compact(msg)) != NULL)
			r = mosquitto_publish(
			    s->mosq, NULL, MQ_TOPIC, (int)strlen(text), text, 1, false);
		free(text);
		json_decref(part);
		json_decref(msg);
		if (r != MOSQ_ERR_SUCCESS)
			return devid_error_set(e, DEVID_EIO,
			    MQ_TYPE ": cannot publish commands: %s",
			    r < 0 ? "out of memory" : mosquitto_strerror(r));
		s->unanswered += (n - i < MQ_BATCH ? n - i : MQ_BATCH);
		/* one batch in flight at a time: the broker's queue stays small */
		if (mq_wait(s, MQ_WAIT_ANSWERS, "dynsec answers", e) != 0)
			return e->code;
	}
	return 0;
}

/* The answer's error, or NULL when the command succeeded. */
static const char *
mq_error(const struct mq_session *s, size_t i)
{
	return json_string_value(json_object_get(json_array_get(s->answers, i), "error"));
}

static bool
mq_has_role(const json_t *answer, const char *role)
{
	json_t *roles = json_object_get(
		   json_object_get(json_object_get(answer, "data"), "client"), "roles"),
	       *r;
	size_t i;

	json_array_foreach(roles, i, r)
	{
		const char *name = json_string_value(json_object_get(r, "rolename"));

		if (name != NULL && strcmp(name, role) == 0)
			return true;
	}
	return false;
}

/* ----- delivery ----- */

struct mq_outcome {
	bool done;
	char why[160];
};

static int
mq_throttle(const json_t *config, const struct delivery *d, struct devid_error *e)
{
	json_t *rate = json_object_get(config, "ratePerSecond");

	if (rate == NULL || d->throttle == NULL)
		return 0;
	return d->throttle(d->ctx, "dynsec", json_number_value(rate), e);
}

/* Appends the command for device i (throttled per command); 0 or a DEVID_E* code. */
static int
mq_append(json_t *cmds, json_t *cmd, const json_t *config, const struct delivery *d,
    struct devid_error *e)
{
	if (cmd == NULL || json_array_append_new(cmds, cmd) != 0)
		return devid_error_set(e, DEVID_ENOMEM, MQ_TYPE ": out of memory");
	return mq_throttle(config, d, e);
}

static int
mq_remove(struct mq_session *s, const json_t *config, const struct delivery *d,
    struct mq_outcome *o, struct devid_error *e)
{
	json_t *cmds = json_array();
	int rc;

	for (size_t i = 0; i < d->n; i++)
		if ((rc = mq_append(cmds,
			 json_pack("{s:s, s:s}", "command", "deleteClient", "username",
			     d->devices[i].udid),
			 config, d, e)) != 0)
			goto out;
	if ((rc = mq_run(s, cmds, e)) != 0)
		goto out;
	for (size_t i = 0; i < d->n; i++) {
		const char *err = mq_error(s, i);

		/* the broker also disconnects the device; "not found" is removed already */
		o[i].done = err == NULL || strcmp(err, "Client not found") == 0;
		if (!o[i].done)
			snprintf(o[i].why, sizeof(o[i].why), "deleteClient: %s", err);
	}
out:
	json_decref(cmds);
	return rc;
}

static int
mq_add(struct mq_session *s, const json_t *config, const struct delivery *d, struct mq_outcome *o,
    struct devid_error *e)
{
	const char *role = json_string_value(json_object_get(config, "role"));
	json_t *cmds = json_array(), *again = json_array(), *answers = NULL;
	size_t *idx = NULL, n = 0;
	int rc;

	if (role == NULL || cmds == NULL || again == NULL ||
	    (idx = calloc(d->n + 1, sizeof(*idx))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, MQ_TYPE ": out of memory");
		goto out;
	}
	for (size_t i = 0; i < d->n; i++)
		if ((rc = mq_append(cmds,
			 json_pack("{s:s, s:s, s:[{s:s}]}", "command", "createClient", "username",
			     d->devices[i].udid, "roles", "rolename", role),
			 config, d, e)) != 0)
			goto out;
	if ((rc = mq_run(s, cmds, e)) != 0)
		goto out;
	for (size_t i = 0; i < d->n; i++) {
		const char *err = mq_error(s, i);

		if (err == NULL)
			o[i].done = true;
		else if (strcmp(err, "Client already exists") == 0)
			idx[n++] = i; /* a retry, or made by hand: check its role below */
		else
			snprintf(o[i].why, sizeof(o[i].why), "createClient: %s", err);
	}
	if (n == 0)
		goto out;
	/* the clients that exist: read them back, give the role to those that lack it */
	json_array_clear(cmds);
	for (size_t k = 0; k < n; k++)
		if (json_array_append_new(cmds,
			json_pack("{s:s, s:s}", "command", "getClient", "username",
			    d->devices[idx[k]].udid)) != 0) {
			rc = devid_error_set(e, DEVID_ENOMEM, MQ_TYPE ": out of memory");
			goto out;
		}
	if ((rc = mq_run(s, cmds, e)) != 0)
		goto out;
	answers = json_incref(s->answers);
	json_array_clear(cmds);
	for (size_t k = 0; k < n; k++) {
		size_t i = idx[k];
		const char *err = mq_error(s, k);

		if (err != NULL)
			snprintf(o[i].why, sizeof(o[i].why), "getClient: %s", err);
		else if (mq_has_role(json_array_get(answers, k), role))
			o[i].done = true;
		else if ((rc = mq_append(cmds,
			      json_pack("{s:s, s:s, s:s}", "command", "addClientRole", "username",
				  d->devices[i].udid, "rolename", role),
			      config, d, e)) != 0)
			goto out;
		else
			json_array_append_new(again, json_integer((json_int_t)i));
	}
	if (json_array_size(cmds) == 0)
		goto out;
	if ((rc = mq_run(s, cmds, e)) != 0)
		goto out;
	for (size_t k = 0; k < json_array_size(again); k++) {
		size_t i = (size_t)json_integer_value(json_array_get(again, k));
		const char *err = mq_error(s, k);

		o[i].done = err == NULL;
		if (err != NULL)
			snprintf(o[i].why, sizeof(o[i].why), "addClientRole: %s", err);
	}
out:
	free(idx);
	json_decref(answers);
	json_decref(again);
	json_decref(cmds);
	return rc;
}

static int
mq_deliver(const json_t *config, const struct delivery *d, struct devid_error *e)
{
	struct mq_session s;
	struct mq_outcome *o = NULL;
	size_t failed = 0, first = 0;
	int rc;

	if (d->n == 0)
		return 0;
	if ((o = calloc(d->n, sizeof(*o))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, MQ_TYPE ": out of memory");
	if ((rc = mq_open(&s, config, e)) != 0)
		goto out;
	rc = d->remove ? mq_remove(&s, config, d, o, e) : mq_add(&s, config, d, o, e);
	if (rc != 0)
		goto out;
	for (size_t i = 0; i < d->n; i++) {
		if (d->result != NULL)
			d->result(d->ctx, i, o[i].done ? DELIVERY_OK : DELIVERY_FAILED,
			    o[i].done ? NULL : o[i].why);
		if (!o[i].done && failed++ == 0)
			first = i;
	}
	if (failed > 0)
		rc = devid_error_set(e, DEVID_EIO, MQ_TYPE ": %zu of %zu devices failed (%s: %s)",
		    failed, d->n, d->devices[first].udid, o[first].why);
out:
	mq_close(&s);
	free(o);
	return rc;
}

/* Connects as the dynsec admin and lists one client: the login and the plugin both work. */
static int
mq_test(const json_t *config, const char *tenant, char *msg, size_t len, struct devid_error *e)
{
	struct mq_session s;
	json_t *cmds = NULL;
	const char *err;
	int rc;

	(void)tenant;
	if ((rc = mq_open(&s, config, e)) != 0)
		goto out;
	cmds = json_pack("[{s:s, s:i, s:i}]", "command", "listClients", "count", 1, "offset", 0);
	if (cmds == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, MQ_TYPE ": out of memory");
		goto out;
	}
	if ((rc = mq_run(&s, cmds, e)) != 0)
		goto out;
	if ((err = mq_error(&s, 0)) != NULL) {
		rc = devid_error_set(e, DEVID_EIO, MQ_TYPE ": listClients: %.200s", err);
		goto out;
	}
	snprintf(msg, len, "listClients: %lld clients",
	    (long long)json_integer_value(json_object_get(
		json_object_get(json_array_get(s.answers, 0), "data"), "totalCount")));
out:
	json_decref(cmds);
	mq_close(&s);
	return rc;
}

static const char *const mq_secrets[] = {"password", "clientKey", NULL};

const struct connector_type connector_mosquitto = {
    .name = MQ_TYPE,
    .validate = mq_validate,
    .redact = mq_redact,
    .deliver = mq_deliver,
    .secret_fields = mq_secrets,
    .test = mq_test,
};
