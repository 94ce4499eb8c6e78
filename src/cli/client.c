#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

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

int
client_request(const struct client *c, const char *method, const char *path, const void *body,
    size_t len, long *status, struct dynbuf *resp, struct devid_error *e)
{
	struct curl_slist *h = NULL;
	char url[4096], auth[512];
	CURLcode cc;
	CURL *curl;
	int rc = DEVID_EIO;

	*status = 0;
	if (c->server == NULL || c->token == NULL)
		return devid_error_set(e, DEVID_EINVAL,
		    "give --server and --token, or set DEVID_SERVER and DEVID_TOKEN");
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
	if ((cc = curl_easy_perform(curl)) != CURLE_OK) {
		devid_error_set(e, rc, "%s: %s", c->server, curl_easy_strerror(cc));
		goto out;
	}
	if (c->progress)
		fputc('\n', stderr);
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
