/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/x509_vfy.h>

#include "client.h"
#include "lib/banned.h"

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct dynbuf *b = arg;

	return dynbuf_add(b, p, size * n) == 0 ? size * n : 0;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)arg;
	(void)dltotal;
	(void)dlnow;
	if (ultotal > 0)
		fprintf(stderr, "\ruploading: %lld/%lld bytes (%lld%%)%s", (long long)ulnow,
		    (long long)ultotal, (long long)(ulnow * 100 / ultotal),
		    ulnow == ultotal ? ", waiting for the server's checks" : "");
	return 0;
}

/*
 * Why a request got no answer, in words that say what to do: curl's own message names the
 * failure, not the remedy (an untrusted certificate wants --cacert, a refused connection a
 * server that is not running).
 */
static void
explain(const struct client *c, CURL *curl, CURLcode cc, const char *errbuf, struct devid_error *e)
{
	const char *detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc);
	long verify = 0, oserr = 0;

	curl_easy_getinfo(curl, CURLINFO_SSL_VERIFYRESULT, &verify);
	curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &oserr);
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION:
		if (strstr(detail, "subject name") != NULL || strstr(detail, "host name") != NULL)
			devid_error_set(e, DEVID_EIO,
			    "%s: the server's certificate is not issued for this host name (%s): "
			    "use a name in its subjectAltName in --server, or give the server a "
			    "certificate for this name",
			    c->server, detail);
		else if (verify == X509_V_ERR_CERT_HAS_EXPIRED ||
		    verify == X509_V_ERR_CERT_NOT_YET_VALID)
			devid_error_set(e, DEVID_EIO,
			    "%s: the server's certificate is expired or not yet valid (%s): renew "
			    "it "
			    "or check the clocks",
			    c->server, detail);
		else if (c->cacert != NULL)
			devid_error_set(e, DEVID_EIO,
			    "%s: the server's certificate is not trusted (%s): it does not chain "
			    "to "
			    "the CA in %s",
			    c->server, detail, c->cacert);
		else
			devid_error_set(e, DEVID_EIO,
			    "%s: the server's certificate is not trusted (%s): pass --cacert FILE "
			    "or set DEVID_CACERT to the CA that issued it",
			    c->server, detail);
		break;
	case CURLE_COULDNT_CONNECT:
		devid_error_set(e, DEVID_EIO,
		    "cannot connect to %s: %s; is devid serve running there?", c->server,
		    oserr == ECONNREFUSED ? "connection refused" : strerror((int)oserr));
		break;
	case CURLE_OPERATION_TIMEDOUT:
		devid_error_set(e, DEVID_EIO,
		    "cannot connect to %s: no answer within %d s; check the address, the port and "
		    "any firewall in between",
		    c->server, CLIENT_CONNECT_TIMEOUT);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		devid_error_set(
		    e, DEVID_EIO, "cannot resolve the host name of %s: check --server", c->server);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		devid_error_set(e, DEVID_EIO,
		    "%s: the TLS handshake failed (%s); if the server speaks plain HTTP, use "
		    "http://",
		    c->server, detail);
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_WEIRD_SERVER_REPLY:
		devid_error_set(e, DEVID_EIO,
		    "%s: the answer is not HTTP (%s); if the server speaks TLS, use https://",
		    c->server, detail);
		break;
	default:
		devid_error_set(e, DEVID_EIO, "%s: %s", c->server, detail);
	}
}

struct client_conn {
	const struct client *c;
	CURL *curl;
	struct curl_slist *h;
	char errbuf[CURL_ERROR_SIZE];
};

void
client_conn_free(struct client_conn *k)
{
	if (k == NULL)
		return;
	curl_slist_free_all(k->h);
	curl_easy_cleanup(k->curl);
	free(k);
}

struct client_conn *
client_conn_new(const struct client *c, struct devid_error *e)
{
	struct client_conn *k;
	char auth[512];

	if (c->server == NULL || c->token == NULL) {
		devid_error_set(e, DEVID_EINVAL,
		    "give --server and --token, or set DEVID_SERVER and DEVID_TOKEN");
		return NULL;
	}
	if (strncmp(c->server, "http://", 7) != 0 && strncmp(c->server, "https://", 8) != 0) {
		devid_error_set(e, DEVID_EINVAL,
		    "--server '%s': expected a URL starting http:// or https://", c->server);
		return NULL;
	}
	if ((size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token) >=
	    sizeof(auth)) {
		devid_error_set(e, DEVID_EINVAL, "server URL or token too long");
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL || (k->curl = curl_easy_init()) == NULL) {
		free(k);
		devid_error_set(e, DEVID_ENOMEM, "curl: cannot start");
		return NULL;
	}
	k->c = c;
	k->h = curl_slist_append(k->h, auth);
	k->h = curl_slist_append(k->h, "Content-Type: application/json");
	k->h = curl_slist_append(k->h, "Expect:");
	OPENSSL_cleanse(auth, sizeof(auth));
	return k;
}

int
client_conn_request(struct client_conn *k, const char *method, const char *path, const void *body,
    size_t len, long *status, struct dynbuf *resp, struct devid_error *e)
{
	const struct client *c = k->c;
	CURL *curl = k->curl;
	char url[4096];
	CURLcode cc;

	*status = 0;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->server, path) >= sizeof(url))
		return devid_error_set(e, DEVID_EINVAL, "server URL or token too long");
	/* the options of one request; the connection stays open for the next */
	curl_easy_reset(curl);
	k->errbuf[0] = '\0';
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, k->h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, k->errbuf);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)CLIENT_CONNECT_TIMEOUT);
	if (c->cacert != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->cacert);
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	if (c->progress) {
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	}
	cc = curl_easy_perform(curl);
	if (c->progress)
		fputc('\n', stderr);
	if (cc != CURLE_OK) {
		explain(c, curl, cc, k->errbuf, e);
		return DEVID_EIO;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

int
client_request(const struct client *c, const char *method, const char *path, const void *body,
    size_t len, long *status, struct dynbuf *resp, struct devid_error *e)
{
	struct client_conn *k;
	int rc;

	*status = 0;
	if ((k = client_conn_new(c, e)) == NULL)
		return e != NULL ? e->code : DEVID_EINVAL;
	rc = client_conn_request(k, method, path, body, len, status, resp, e);
	client_conn_free(k);
	return rc;
}

void
client_print_error(const char *cmd, long status, const struct dynbuf *resp)
{
	json_t *j = json_loadb((const char *)resp->p, resp->len, 0, NULL);
	const char *msg = json_string_value(json_object_get(j, "message"));

	fprintf(
	    stderr, "devid %s: %s (HTTP %ld)\n", cmd, msg != NULL ? msg : dynbuf_str(resp), status);
	json_decref(j);
}
