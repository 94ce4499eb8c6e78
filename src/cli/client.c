/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
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

int
client_request(const struct client *c, const char *method, const char *path, const void *body,
    size_t len, long *status, struct dynbuf *resp, struct devid_error *e)
{
	struct curl_slist *h = NULL;
	char url[4096], auth[512], errbuf[CURL_ERROR_SIZE] = "";
	CURLcode cc;
	CURL *curl;
	int rc = DEVID_EIO;

	*status = 0;
	if (c->server == NULL || c->token == NULL)
		return devid_error_set(e, DEVID_EINVAL,
		    "give --server and --token, or set DEVID_SERVER and DEVID_TOKEN");
	if (strncmp(c->server, "http://", 7) != 0 && strncmp(c->server, "https://", 8) != 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "--server '%s': expected a URL starting http:// or https://", c->server);
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->server, path) >= sizeof(url) ||
	    (size_t)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token) >=
		sizeof(auth))
		return devid_error_set(e, DEVID_EINVAL, "server URL or token too long");
	if ((curl = curl_easy_init()) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "curl: cannot start");
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
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
		explain(c, curl, cc, errbuf, e);
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	rc = 0;
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(curl);
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
