/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report.c - the reporter of `devid gateway --report-url` (docs/gateway.md, "Seen reports").
 *
 * A thread of its own, so that the device port's workers never wait for devid: every
 * interval it takes the sightings the workers counted (seen.c), turns them into reports and
 * posts them with libcurl, oldest first, each signed with the webhook's secret. A report
 * devid could not take (5xx, 429, no answer) stays queued, with its id and its bytes, and is
 * posted again at the next flush before anything newer.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "gateway/gateway.h"
#include "lib/base64.h"
#include "lib/dynbuf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

#define REPORT_CONNECT_TIMEOUT_SECS 5L
#define REPORT_TIMEOUT_SECS 30L
#define REPORT_MAX_URL_LEN 2048
#define REPORT_ID_RANDOM_BYTES 8 /* "gw-" and 16 hex digits */

struct reporter {
	struct seen *seen; /* borrowed */
	char *url;
	char *ca_file; /* NULL: the system's trust store */
	unsigned interval;
	const uint8_t *secret; /* borrowed */
	size_t secret_len;
	char id_prefix[4 + 2 * REPORT_ID_RANDOM_BYTES];
	uint64_t seq; /* the next report's sequence number */
	struct seen_report *q; /* reports not taken yet, oldest first; the flusher's alone */
	size_t nq, capq;
	CURL *curl; /* one handle, so that connections to devid are reused */
	pthread_mutex_t mu;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC */
	bool stopping; /* under mu */
	bool started;
	pthread_t thread;
};

/* What became of one post. */
enum outcome { TAKEN, RETRY, REFUSED };

struct reporter *
reporter_new(const struct reporter_opts *o, struct seen *seen, struct devid_error *e)
{
	unsigned char rnd[REPORT_ID_RANDOM_BYTES];
	char hex[2 * REPORT_ID_RANDOM_BYTES + 1];
	pthread_condattr_t ca;
	struct reporter *r;
	STACK_OF(X509) *sk;
	bool https;

	https = strncmp(o->url, "https://", 8) == 0;
	if (!https && strncmp(o->url, "http://", 7) != 0) {
		devid_error_set(e, DEVID_EINVAL, "report url: not http:// or https://");
		return NULL;
	}
	if (strlen(o->url) > REPORT_MAX_URL_LEN || strpbrk(o->url, " \t\r\n") != NULL) {
		devid_error_set(e, DEVID_EINVAL, "report url: longer than %d or with white space",
		    REPORT_MAX_URL_LEN);
		return NULL;
	}
	if (o->interval < GATEWAY_MIN_REPORT_INTERVAL ||
	    o->interval > GATEWAY_MAX_REPORT_INTERVAL) {
		devid_error_set(e, DEVID_EINVAL, "report interval: %u s, allowed %d to %d",
		    o->interval, GATEWAY_MIN_REPORT_INTERVAL, GATEWAY_MAX_REPORT_INTERVAL);
		return NULL;
	}
	if (o->ca_file != NULL) {
		if (!https) {
			devid_error_set(
			    e, DEVID_EINVAL, "report ca: the report url is not https://");
			return NULL;
		}
		/* read now, so that a wrong file stops the start and not every report */
		if ((sk = x509_load_pem_file_all(o->ca_file, e)) == NULL) {
			devid_error_prefix(e, "report ca");
			return NULL;
		}
		sk_X509_pop_free(sk, X509_free);
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		devid_error_ssl(e, DEVID_EINTERNAL, "report ids: no random bytes");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		devid_error_set(e, DEVID_EINTERNAL, "report: cannot start libcurl");
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->seen = seen;
	r->url = xstrdup(o->url);
	r->ca_file = o->ca_file != NULL ? xstrdup(o->ca_file) : NULL;
	r->interval = o->interval;
	r->secret = o->secret;
	r->secret_len = o->secret_len;
	hex_encode(rnd, sizeof(rnd), hex);
	snprintf(r->id_prefix, sizeof(r->id_prefix), "gw-%s", hex);
	r->seq = 1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((r->curl = curl_easy_init()) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "report: cannot start curl");
		reporter_free(r);
		return NULL;
	}
	return r;
}

/* devid's answer: kept up to its maximum, the rest read and discarded */
static size_t
on_answer(char *p, size_t size, size_t n, void *arg)
{
	struct dynbuf *b = arg;
	size_t len = size * n, room = b->max - b->len;

	dynbuf_add(b, p, len < room ? len : room);
	return len;
}

static json_int_t
answer_int(const json_t *a, const char *key)
{
	return json_integer_value(json_object_get(a, key));
}

/* Logs what devid answered to report rep: its counts when it took it, its message if not. */
static void
answer_log(const struct seen_report *rep, long status, const struct dynbuf *b, enum outcome o)
{
	json_t *a = json_loadb((const char *)b->p, b->len, JSON_REJECT_DUPLICATES, NULL);

	if (!json_is_object(a)) {
		json_decref(a);
		a = NULL;
	}
	if (o == TAKEN && json_is_true(json_object_get(a, "duplicate")))
		log_info("gateway report sent", LOG_STR("report", rep->id),
		    LOG_STR("tenant", rep->tenant), LOG_INT("sightings", rep->nsightings),
		    LOG_INT("status", status), LOG_STR("duplicate", "true"));
	else if (o == TAKEN)
		log_info("gateway report sent", LOG_STR("report", rep->id),
		    LOG_STR("tenant", rep->tenant), LOG_INT("sightings", rep->nsightings),
		    LOG_INT("status", status), LOG_INT("accepted", answer_int(a, "accepted")),
		    LOG_INT("ignored", answer_int(a, "ignored")),
		    LOG_INT("suspicions", answer_int(a, "suspicions")));
	else if (o == RETRY)
		log_warn("gateway report deferred", LOG_STR("report", rep->id),
		    LOG_STR("tenant", rep->tenant), LOG_INT("status", status),
		    LOG_STR("message", json_string_value(json_object_get(a, "message"))));
	else
		log_warn("gateway report refused", LOG_STR("report", rep->id),
		    LOG_STR("tenant", rep->tenant), LOG_INT("sightings", rep->nsightings),
		    LOG_INT("status", status),
		    LOG_STR("message", json_string_value(json_object_get(a, "message"))));
	json_decref(a);
}

/* Posts one report, signed; says what became of it, and logs it. */
static enum outcome
report_post(struct reporter *r, const struct seen_report *rep)
{
	char idh[sizeof("X-Devid-Report: ") + GATEWAY_MAX_EVENT_ID_LEN];
	char sigh[sizeof("X-Devid-Signature: sha256=") + 64], hex[65];
	const char *const headers[] = {"Content-Type: application/json", idh, sigh, "Expect:"};
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	struct curl_slist *hl = NULL, *t;
	struct dynbuf answer;
	long status = 0;
	enum outcome o = RETRY;
	CURLcode cc;

	dynbuf_init(&answer, GATEWAY_MAX_REPORT_ANSWER);
	if (HMAC(EVP_sha256(), r->secret, (int)r->secret_len, (const uint8_t *)rep->body, rep->len,
		mac, &maclen) == NULL ||
	    maclen != 32) {
		log_error("gateway report failed", LOG_STR("report", rep->id),
		    LOG_STR("error", "HMAC-SHA256 failed"));
		goto out;
	}
	hex_encode(mac, 32, hex);
	snprintf(idh, sizeof(idh), "X-Devid-Report: %s", rep->id);
	snprintf(sigh, sizeof(sigh), "X-Devid-Signature: sha256=%s", hex);
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		if ((t = curl_slist_append(hl, headers[i])) == NULL) {
			log_error("gateway report failed", LOG_STR("report", rep->id),
			    LOG_STR("error", "out of memory"));
			goto out;
		}
		hl = t;
	}
	/* the handle keeps its connections across a reset, not its options */
	curl_easy_reset(r->curl);
	curl_easy_setopt(r->curl, CURLOPT_URL, r->url);
	curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, rep->body);
	curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rep->len);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &answer);
	curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, REPORT_CONNECT_TIMEOUT_SECS);
	curl_easy_setopt(r->curl, CURLOPT_TIMEOUT, REPORT_TIMEOUT_SECS);
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (r->ca_file != NULL)
		curl_easy_setopt(r->curl, CURLOPT_CAINFO, r->ca_file);
	if ((cc = curl_easy_perform(r->curl)) != CURLE_OK) {
		log_warn("gateway report deferred", LOG_STR("report", rep->id),
		    LOG_STR("tenant", rep->tenant), LOG_STR("error", curl_easy_strerror(cc)));
		goto out;
	}
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status <= 299)
		o = TAKEN;
	else if (status >= 500 || status == 429)
		o = RETRY;
	else
		o = REFUSED;
	answer_log(rep, status, &answer, o);
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	curl_slist_free_all(hl);
	dynbuf_release(&answer);
	return o;
}

/* Appends new reports to the queue, dropping the oldest past GATEWAY_MAX_UNSENT_REPORTS. */
static void
queue_add(struct reporter *r, struct seen_report *reps, size_t n)
{
	size_t drop;

	if (r->nq + n > r->capq) {
		r->capq = r->nq + n;
		r->q = xreallocarray(r->q, r->capq, sizeof(*r->q));
	}
	memcpy(r->q + r->nq, reps, n * sizeof(*reps));
	r->nq += n;
	if (r->nq <= GATEWAY_MAX_UNSENT_REPORTS)
		return;
	drop = r->nq - GATEWAY_MAX_UNSENT_REPORTS;
	for (size_t i = 0; i < drop; i++) {
		log_warn("gateway report dropped", LOG_STR("report", r->q[i].id),
		    LOG_STR("tenant", r->q[i].tenant), LOG_INT("sightings", r->q[i].nsightings),
		    LOG_STR("reason", "too_many_unsent"),
		    LOG_INT("limit", GATEWAY_MAX_UNSENT_REPORTS));
		free(r->q[i].body);
	}
	memmove(r->q, r->q + drop, (r->nq - drop) * sizeof(*r->q));
	r->nq -= drop;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Takes the pending sightings into reports and posts every queued one it can, oldest first. */
static void
reporter_flush(struct reporter *r)
{
	struct seen_report *reps;
	struct gateway_sighting *v;
	struct devid_error e;
	uint64_t dropped;
	size_t n, nr, i;

	seen_take(r->seen, &v, &n, &dropped);
	if (dropped > 0)
		log_warn("gateway sightings dropped", LOG_INT("dropped", dropped),
		    LOG_INT("limit", GATEWAY_MAX_SIGHTINGS));
	if (n > 0) {
		devid_error_clear(&e);
		if (seen_reports_encode(v, n, GATEWAY_MAX_REPORT_SIGHTINGS, r->id_prefix, &r->seq,
			now_ms(), &reps, &nr, &e) != 0) {
			log_error("gateway report failed", LOG_STR("error", e.msg),
			    LOG_INT("sightings", n));
		} else {
			queue_add(r, reps, nr);
			free(reps);
		}
		free(v);
	}
	/* in order: after one that must wait, the rest wait too (devid is down or busy) */
	for (i = 0; i < r->nq; i++) {
		if (report_post(r, &r->q[i]) == RETRY)
			break;
		free(r->q[i].body);
	}
	if (i > 0) {
		memmove(r->q, r->q + i, (r->nq - i) * sizeof(*r->q));
		r->nq -= i;
	}
}

static void *
reporter_main(void *arg)
{
	struct reporter *r = arg;
	struct timespec deadline;
	bool stopping;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += r->interval;
		while (!r->stopping &&
		    pthread_cond_timedwait(&r->cond, &r->mu, &deadline) != ETIMEDOUT)
			;
		stopping = r->stopping;
		pthread_mutex_unlock(&r->mu);
		/* at a stop too: what the device port saw last goes out once more */
		reporter_flush(r);
		if (stopping)
			return NULL;
		pthread_mutex_lock(&r->mu);
	}
}

int
reporter_start(struct reporter *r)
{
	sigset_t all, old;
	int err;

	/* the signals go to the caller's signal thread, not here */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&r->thread, NULL, reporter_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		log_error("gateway cannot start the reporter", LOG_STR("error", strerror(err)));
		return DEVID_EIO;
	}
	r->started = true;
	return 0;
}

void
reporter_stop(struct reporter *r)
{
	if (r == NULL || !r->started)
		return;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	r->started = false;
	if (r->nq > 0)
		log_warn("gateway reports not sent", LOG_INT("reports", r->nq));
}

void
reporter_free(struct reporter *r)
{
	if (r == NULL)
		return;
	seen_reports_free(r->q, r->nq);
	curl_easy_cleanup(r->curl);
	curl_global_cleanup();
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	free(r->url);
	free(r->ca_file);
	free(r);
}
