/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_testserver - src/http with a few routes, for the shell tests beside it.
 *
 * Prints "listening ADDR:PORT" on stdout once it accepts connections (so a test can ask for
 * port 0 and read the port), serves until SIGTERM or SIGINT, then frees everything and exits
 * 0, so a sanitizer build reports any leak at shutdown.
 *
 *   GET  /healthz, GET /metrics                     the ready-made handlers
 *   POST /echo                                       {"echo":<the JSON body>,"bytes":N}
 *   GET  /echo/count                                 {"calls":N}: how often /echo ran
 *   GET  /api/v1/batches/{vendor}/{batch}/manifest   the path parameters and ?format=
 *   POST /api/v1/batches/{vendor}/{batch}/transfer   {"transferred":true}
 *   GET  /slow?ms=N                                  sleeps N ms (at most 5000), blocking
 *   GET  /pair                                       {"paired":B}: waits up to 3 s, blocking,
 *                                                    for the next /pair to be handled at the
 *                                                    same time (the two arrive in turn)
 *   GET  /whoami                                     TLS, peer, verified client certificate
 *   GET  /headers                                    the X-Test header, read case-blind
 *   GET  /nostatus                                   a handler that forgets to answer
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "http/metrics.h"
#include "http/router.h"
#include "http/server.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/banned.h"

static struct http_server *_Atomic g_server;
static atomic_long g_echo_calls;
static struct metric_family *g_echo_family;

static void
on_signal(int sig)
{
	struct http_server *s = g_server;

	(void)sig;
	if (s != NULL)
		http_server_stop(s);
}

static void
answer(struct http_response *resp, int status, json_t *j)
{
	if (j == NULL || http_json(resp, status, j) != 0)
		http_error(resp, 500, "internal", "could not build the response");
	json_decref(j);
}

static void
h_echo(struct http_request *req, struct http_response *resp, void *arg)
{
	struct devid_error e;
	const uint8_t *body;
	json_t *j;
	size_t n;

	(void)arg;
	atomic_fetch_add(&g_echo_calls, 1);
	metric_inc(metric_get(g_echo_family, NULL));
	body = http_request_body(req, &n);
	if ((j = json_parse(body, n, "request body", &e)) == NULL) {
		http_error(resp, 400, "bad_json", "%s", e.msg);
		return;
	}
	answer(resp, 200, json_pack("{s:o, s:I}", "echo", j, "bytes", (json_int_t)n));
}

static void
h_echo_count(struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	answer(resp, 200, json_pack("{s:I}", "calls", (json_int_t)atomic_load(&g_echo_calls)));
}

static void
h_manifest(struct http_request *req, struct http_response *resp, void *arg)
{
	const char *format = http_request_query(req, "format");

	(void)arg;
	answer(resp, 200,
	    json_pack("{s:s, s:s, s:s?}", "vendor", http_request_param(req, "vendor"), "batch",
		http_request_param(req, "batch"), "format", format));
}

static void
h_transfer(struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)arg;
	answer(resp, 200, json_pack("{s:b}", "transferred", 1));
}

static void
h_slow(struct http_request *req, struct http_response *resp, void *arg)
{
	const char *s = http_request_query(req, "ms");
	struct timespec ts;
	long ms = 200;
	char *end;

	(void)arg;
	if (s != NULL) {
		errno = 0;
		ms = strtol(s, &end, 10);
		if (errno != 0 || *end != '\0' || ms < 0 || ms > 5000) {
			http_error(resp, 400, "bad_request", "ms must be 0 to 5000");
			return;
		}
	}
	log_info("testserver slow handler sleeping", LOG_INT("ms", ms));
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	answer(resp, 200, json_pack("{s:i}", "slept_ms", (int)ms));
}

/* /pair requests met so far; 2k and 2k + 1 are a pair */
static unsigned long g_pairs;
static pthread_mutex_t g_pair_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_pair_cv = PTHREAD_COND_INITIALIZER;

static void
h_pair(struct http_request *req, struct http_response *resp, void *arg)
{
	struct timespec until;
	unsigned long me;
	bool paired = true;

	(void)req;
	(void)arg;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 3;
	pthread_mutex_lock(&g_pair_mu);
	me = g_pairs++;
	if (me % 2 == 1) {
		pthread_cond_broadcast(&g_pair_cv);
	} else {
		while (g_pairs == me + 1 &&
		    pthread_cond_timedwait(&g_pair_cv, &g_pair_mu, &until) != ETIMEDOUT)
			;
		if (g_pairs == me + 1) {
			paired = false;
			g_pairs = me + 2; /* a partner arriving late is not one */
		}
	}
	pthread_mutex_unlock(&g_pair_mu);
	answer(resp, 200, json_pack("{s:b}", "paired", paired));
}

static void
h_whoami(struct http_request *req, struct http_response *resp, void *arg)
{
	X509 *cert = http_request_peer_cert(req);
	STACK_OF(X509) *chain = http_request_peer_chain(req);
	char subject[256] = "";

	(void)arg;
	if (cert != NULL)
		X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
	answer(resp, 200,
	    json_pack("{s:b, s:s, s:s?, s:i}", "tls", http_request_is_tls(req), "peer",
		http_request_peer(req), "subject", cert != NULL ? subject : NULL, "chain",
		chain != NULL ? sk_X509_num(chain) : 0));
}

static void
h_headers(struct http_request *req, struct http_response *resp, void *arg)
{
	(void)arg;
	answer(resp, 200,
	    json_pack("{s:s?, s:b}", "x_test", http_request_header(req, "x-TEST"), "authorization",
		http_request_header(req, "Authorization") != NULL));
}

static void
h_nostatus(struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)resp;
	(void)arg;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: http_testserver [--listen ADDR:PORT] [--threads N] [--max-body BYTES]\n"
	    "           [--tls-cert PEM --tls-key PEM [--client-auth none|optional|require "
	    "--ca PEM]]\n"
	    "           [--big-body BYTES] [--max-connections N] [--max-client-connections N]\n"
	    "           [--max-client-requests N] [--header-timeout SECS] [--request-timeout "
	    "SECS]\n");
	exit(2);
}

static unsigned long
number(const char *s)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s)
		usage();
	return v;
}

/* POST /echo/big takes bodies up to --big-body bytes; every other route --max-body. */
static size_t g_big_body;

static size_t
body_limit(const char *method, const char *path, void *arg)
{
	(void)arg;
	return strcmp(method, "POST") == 0 && strcmp(path, "/echo/big") == 0 ? g_big_body : 0;
}

int
main(int argc, char **argv)
{
	struct http_server_opts o = {0};
	struct router *r = router_new();
	struct metrics *m = metrics_new();
	struct devid_error e;
	struct http_server *s;
	struct sigaction sa;
	int status = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--listen") == 0)
			o.listen = v;
		else if (strcmp(a, "--threads") == 0)
			o.threads = (unsigned)number(v);
		else if (strcmp(a, "--max-body") == 0)
			o.max_body = number(v);
		else if (strcmp(a, "--big-body") == 0)
			g_big_body = number(v);
		else if (strcmp(a, "--max-connections") == 0)
			o.max_connections = (unsigned)number(v);
		else if (strcmp(a, "--max-client-connections") == 0)
			o.max_client_connections = (unsigned)number(v);
		else if (strcmp(a, "--max-client-requests") == 0)
			o.max_client_requests = (unsigned)number(v);
		else if (strcmp(a, "--header-timeout") == 0)
			o.header_timeout_secs = (unsigned)number(v);
		else if (strcmp(a, "--request-timeout") == 0)
			o.request_timeout_secs = (unsigned)number(v);
		else if (strcmp(a, "--tls-cert") == 0)
			o.tls_cert = v;
		else if (strcmp(a, "--tls-key") == 0)
			o.tls_key = v;
		else if (strcmp(a, "--ca") == 0)
			o.tls_ca_file = v;
		else if (strcmp(a, "--client-auth") == 0 && strcmp(v, "none") == 0)
			o.client_auth = HTTP_CLIENT_AUTH_NONE;
		else if (strcmp(a, "--client-auth") == 0 && strcmp(v, "optional") == 0)
			o.client_auth = HTTP_CLIENT_AUTH_OPTIONAL;
		else if (strcmp(a, "--client-auth") == 0 && strcmp(v, "require") == 0)
			o.client_auth = HTTP_CLIENT_AUTH_REQUIRE;
		else
			usage();
	}

	g_echo_family = metrics_register(m, METRIC_COUNTER, "testserver_echo_calls_total",
	    "Times the /echo handler ran", NULL, 0, NULL, 0, &e);
	if (g_echo_family == NULL ||
	    router_add(r, "GET", "/healthz", http_handle_healthz, NULL, &e) != 0 ||
	    router_add(r, "GET", "/metrics", http_handle_metrics, m, &e) != 0 ||
	    router_add(r, "POST", "/echo", h_echo, NULL, &e) != 0 ||
	    router_add(r, "POST", "/echo/big", h_echo, NULL, &e) != 0 ||
	    router_add(r, "GET", "/echo/count", h_echo_count, NULL, &e) != 0 ||
	    router_add(
		r, "GET", "/api/v1/batches/{vendor}/{batch}/manifest", h_manifest, NULL, &e) != 0 ||
	    router_add(r, "POST", "/api/v1/batches/{vendor}/{batch}/transfer", h_transfer, NULL,
		&e) != 0 ||
	    router_add(r, "GET", "/slow", h_slow, NULL, &e) != 0 ||
	    router_add(r, "GET", "/pair", h_pair, NULL, &e) != 0 ||
	    router_add(r, "GET", "/whoami", h_whoami, NULL, &e) != 0 ||
	    router_add(r, "GET", "/headers", h_headers, NULL, &e) != 0 ||
	    router_add(r, "GET", "/nostatus", h_nostatus, NULL, &e) != 0) {
		fprintf(stderr, "http_testserver: %s\n", e.msg);
		goto out;
	}
	o.name = "test";
	o.handler = router_handle;
	o.handler_arg = r;
	if (g_big_body != 0)
		o.body_limit = body_limit;
	o.metrics = m;
	if ((s = http_server_new(&o, &e)) == NULL) {
		fprintf(stderr, "http_testserver: %s\n", e.msg);
		goto out;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	g_server = s;
	printf("listening %s\n", http_server_address(s));
	fflush(stdout);
	if (http_server_run(s) != 0) {
		fprintf(stderr, "http_testserver: the server did not start\n");
		goto out;
	}
	status = 0;
out:
	s = g_server;
	g_server = NULL; /* a late signal finds no server */
	http_server_free(s);
	router_free(r);
	metrics_free(m);
	return status;
}
