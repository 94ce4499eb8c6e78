/* SPDX-License-Identifier: Apache-2.0 */
/*
 * estload.c - an EST (RFC 7030) enrollment load client for bench/run.
 *
 *   estload --connect HOST:PORT --ca SERVER.pem --chips DIR [--clients N] [--seconds S]
 *           [--label TENANT] [--path simpleenroll] [--timeout S]
 *
 * DIR holds chips as `devid vendor mint --keep-keys` writes them: <udid>.pem (the birth
 * certificate, and any chain after it) and <udid>.key. Before the clock starts, one CSR per
 * chip is made (PKCS#10 signed with the chip's key, base64 with line breaks: the EST body).
 * Then N threads each loop until S seconds have passed: a new TCP connection, a full TLS
 * handshake with the chip's certificate and key as client certificate (no tickets, no
 * session reuse), POST /.well-known/est/[TENANT/]PATH with Connection: close, the whole
 * answer read, the connection closed. Chips are taken round-robin across all threads. An
 * answer other than 200, or a connection that failed, counts as an error; the first one is
 * printed; so is a connection where the server went quiet for --timeout seconds (30): a stuck
 * server does not hang the benchmark. The server's certificate is verified against SERVER.pem (an
 * IP address in HOST is checked against the certificate's IP SANs, a name against its DNS names).
 *
 * One line on stdout at the end, key=value, first_error last (it may hold spaces):
 *   enrollments=N seconds=S rate=R errors=E p50_ms=X p99_ms=Y cpu_s=C first_error=...
 * (p50_ms and p99_ms: latency of a successful enrollment, connect to close; cpu_s: the user
 * and system time estload itself took, which the server did not have on a shared machine).
 * Exits 0 when the run completed (errors are counted, not fatal), 1 on a setup failure, 2
 * on a usage error. Standalone on purpose: it links OpenSSL and nothing of devid.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_CHIPS 100000
#define MAX_CLIENTS 1024
#define MAX_SECONDS 3600
#define MAX_ANSWER (1 << 20) /* an answer longer than this is an error */
#define FIRST_ERROR_MAX 300 /* bytes of the first error kept for the summary */

struct chip {
	char *name; /* the udid: the file name without .pem */
	X509 *cert;
	STACK_OF(X509) *chain; /* the certificates after the first in <udid>.pem, or NULL */
	EVP_PKEY *key;
	char *request; /* the whole HTTP request, CSR included */
	size_t request_len;
};

struct load {
	const char *host;
	const char *port;
	bool host_is_ip;
	struct addrinfo *addr;
	SSL_CTX *ctx;
	struct chip *chips;
	size_t nchips;
	double deadline; /* CLOCK_MONOTONIC seconds */
	struct timeval timeout; /* of each connect, read and write */
	atomic_size_t next_chip;
	atomic_size_t ok;
	atomic_size_t errors;
	pthread_mutex_t lock; /* first_error */
	char first_error[FIRST_ERROR_MAX + 1];
};

struct worker {
	struct load *load;
	pthread_t tid;
	double *lat; /* ms of each successful enrollment */
	size_t nlat, caplat;
	double end;
	bool oom;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user and system time of this process so far */
static double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0.0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: estload --connect HOST:PORT --ca SERVER.pem --chips DIR [--clients N]\n"
	    "               [--seconds S] [--label TENANT] [--path simpleenroll]\n"
	    "               [--timeout S]\n");
	exit(2);
}

static void
ssl_die(const char *what)
{
	unsigned long err = ERR_get_error();
	char buf[256] = "";

	if (err != 0)
		ERR_error_string_n(err, buf, sizeof(buf));
	fprintf(stderr, "estload: %s%s%s\n", what, err != 0 ? ": " : "", buf);
	exit(1);
}

/* Keeps the first error of the run, with controls turned into spaces. */
static void note_error(struct load *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
note_error(struct load *l, const char *fmt, ...)
{
	va_list ap;
	char buf[FIRST_ERROR_MAX + 1];
	size_t i;

	atomic_fetch_add(&l->errors, 1);
	pthread_mutex_lock(&l->lock);
	if (l->first_error[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		for (i = 0; buf[i] != '\0'; i++)
			if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
				buf[i] = ' ';
		memcpy(l->first_error, buf, sizeof(buf));
		fprintf(stderr, "estload: first error: %s\n", buf);
	}
	pthread_mutex_unlock(&l->lock);
}

/* A PKCS#10 request for the chip's key, signed with it, as base64 with line breaks. */
static char *
csr_base64(const struct chip *c)
{
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	unsigned char *der = NULL;
	int derlen;
	BIO *b64 = NULL, *mem = NULL;
	BUF_MEM *bm;
	char *out = NULL;

	if ((req = X509_REQ_new()) == NULL || (name = X509_NAME_new()) == NULL)
		goto out;
	if (!X509_NAME_add_entry_by_txt(
		name, "CN", MBSTRING_UTF8, (const unsigned char *)c->name, -1, -1, 0) ||
	    !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, c->key) ||
	    X509_REQ_sign(req, c->key, EVP_sha256()) <= 0)
		goto out;
	if ((derlen = i2d_X509_REQ(req, &der)) <= 0)
		goto out;
	/* BIO_f_base64 breaks lines at 64 characters, as RFC 7030's examples do */
	if ((b64 = BIO_new(BIO_f_base64())) == NULL || (mem = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	b64 = BIO_push(b64, mem);
	mem = NULL;
	if (BIO_write(b64, der, derlen) != derlen || BIO_flush(b64) != 1)
		goto out;
	BIO_get_mem_ptr(b64, &bm);
	if ((out = malloc(bm->length + 1)) == NULL)
		goto out;
	memcpy(out, bm->data, bm->length);
	out[bm->length] = '\0';
out:
	BIO_free_all(b64);
	BIO_free(mem);
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return out;
}

static char *
path_join(const char *dir, const char *name, const char *ext)
{
	size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
	char *p;

	if ((p = malloc(n)) == NULL)
		return NULL;
	snprintf(p, n, "%s/%s%s", dir, name, ext);
	return p;
}

/* Loads <name>.pem and <name>.key; false (and a message) if they are not a chip. */
static bool
chip_load(struct chip *c, const char *dir, const char *name)
{
	char *cpath = path_join(dir, name, ".pem"), *kpath = path_join(dir, name, ".key");
	FILE *f = NULL;
	X509 *x;
	bool ok = false;

	if (cpath == NULL || kpath == NULL)
		goto out;
	if ((f = fopen(cpath, "r")) == NULL ||
	    (c->cert = PEM_read_X509(f, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "estload: %s: no certificate\n", cpath);
		goto out;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		if ((c->chain == NULL && (c->chain = sk_X509_new_null()) == NULL) ||
		    !sk_X509_push(c->chain, x)) {
			X509_free(x);
			goto out;
		}
	}
	ERR_clear_error();
	fclose(f);
	if ((f = fopen(kpath, "r")) == NULL ||
	    (c->key = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "estload: %s: no private key\n", kpath);
		goto out;
	}
	if (X509_check_private_key(c->cert, c->key) != 1) {
		fprintf(stderr, "estload: %s does not match %s\n", kpath, cpath);
		goto out;
	}
	ok = (c->name = strdup(name)) != NULL;
out:
	if (f != NULL)
		fclose(f);
	free(cpath);
	free(kpath);
	return ok;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every <udid>.pem of DIR that has a <udid>.key, in name order. */
static void
chips_load(struct load *l, const char *dir, const char *host, const char *label, const char *path)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL, *csr, *name;
	size_t n = 0, cap = 0, i, len, hdr;
	char *kpath;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "estload: %s: %s\n", dir, strerror(errno));
		exit(1);
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= 4 || strcmp(de->d_name + len - 4, ".pem") != 0)
			continue;
		if ((name = strndup(de->d_name, len - 4)) == NULL ||
		    (kpath = path_join(dir, name, ".key")) == NULL)
			ssl_die("out of memory");
		if (access(kpath, R_OK) != 0) {
			free(kpath);
			free(name);
			continue;
		}
		free(kpath);
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((names = realloc(names, cap * sizeof(*names))) == NULL)
				ssl_die("out of memory");
		}
		names[n++] = name;
		if (n > MAX_CHIPS) {
			fprintf(stderr, "estload: %s: more than %d chips\n", dir, MAX_CHIPS);
			exit(1);
		}
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "estload: %s: no <udid>.pem with a <udid>.key\n", dir);
		exit(1);
	}
	qsort(names, n, sizeof(*names), name_cmp);
	if ((l->chips = calloc(n, sizeof(*l->chips))) == NULL)
		ssl_die("out of memory");
	for (i = 0; i < n; i++) {
		struct chip *c = &l->chips[i];

		if (!chip_load(c, dir, names[i]))
			exit(1);
		if ((csr = csr_base64(c)) == NULL)
			ssl_die("cannot make a CSR");
		len = strlen(csr);
		hdr = 512 + strlen(host) + strlen(label) + strlen(path);
		if ((c->request = malloc(hdr + len)) == NULL)
			ssl_die("out of memory");
		c->request_len = (size_t)snprintf(c->request, hdr,
		    "POST /.well-known/est/%s%s%s HTTP/1.1\r\n"
		    "Host: %s\r\n"
		    "User-Agent: devid-estload\r\n"
		    "Content-Type: application/pkcs10\r\n"
		    "Content-Length: %zu\r\n"
		    "Connection: close\r\n"
		    "\r\n",
		    label, *label != '\0' ? "/" : "", path, host, len);
		memcpy(c->request + c->request_len, csr, len);
		c->request_len += len;
		free(csr);
		free(names[i]);
	}
	free(names);
	l->nchips = n;
}

static int
tcp_connect(const struct load *l)
{
	const struct addrinfo *a;
	int fd = -1, one = 1;

	for (a = l->addr; a != NULL; a = a->ai_next) {
		if ((fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol)) < 0)
			continue;
		/* on Linux SO_SNDTIMEO bounds connect() too */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &l->timeout, sizeof(l->timeout)) == 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &l->timeout, sizeof(l->timeout)) == 0 &&
		    connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			return fd;
		}
		close(fd);
		fd = -1;
	}
	return -1;
}

static const char *
ssl_reason(void)
{
	unsigned long err = ERR_peek_last_error();
	static __thread char buf[256];

	if (err == 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS)
			return "timed out";
		return errno != 0 ? strerror(errno) : "connection closed";
	}
	ERR_error_string_n(err, buf, sizeof(buf));
	return buf;
}

/*
 * One enrollment: connect, handshake, POST, read to the end, close. True when the answer was
 * 200 with a body; otherwise the error is noted.
 */
static bool
enroll(struct load *l, const struct chip *c, char *buf, size_t cap)
{
	SSL *ssl = NULL;
	int fd, n, err, status = 0;
	size_t got = 0;
	const char *body;
	bool ok = false;

	ERR_clear_error();
	errno = 0;
	if ((fd = tcp_connect(l)) < 0) {
		note_error(l, "connect %s:%s: %s", l->host, l->port,
		    errno == EINPROGRESS ? "timed out" : strerror(errno));
		return false;
	}
	if ((ssl = SSL_new(l->ctx)) == NULL || !SSL_set_fd(ssl, fd) ||
	    SSL_use_certificate(ssl, c->cert) != 1 || SSL_use_PrivateKey(ssl, c->key) != 1 ||
	    (c->chain != NULL && SSL_set1_chain(ssl, c->chain) != 1)) {
		note_error(l, "SSL setup: %s", ssl_reason());
		goto out;
	}
	if (l->host_is_ip) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), l->host)) {
			note_error(l, "SSL setup: %s", ssl_reason());
			goto out;
		}
	} else if (!SSL_set_tlsext_host_name(ssl, l->host) || !SSL_set1_host(ssl, l->host)) {
		note_error(l, "SSL setup: %s", ssl_reason());
		goto out;
	}
	if ((n = SSL_connect(ssl)) != 1) {
		long vr = SSL_get_verify_result(ssl);

		if (vr != X509_V_OK)
			note_error(l, "TLS handshake: server certificate: %s",
			    X509_verify_cert_error_string(vr));
		else
			note_error(l, "TLS handshake: %s", ssl_reason());
		goto out;
	}
	if ((n = SSL_write(ssl, c->request, (int)c->request_len)) != (int)c->request_len) {
		note_error(l, "TLS write: %s", ssl_reason());
		goto out;
	}
	for (;;) {
		if (got == cap) {
			note_error(l, "an answer longer than %zu bytes", cap);
			goto out;
		}
		n = SSL_read(ssl, buf + got, (int)(cap - got));
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		err = SSL_get_error(ssl, n);
		/* a close without close_notify ends the answer too (Connection: close) */
		if (err == SSL_ERROR_ZERO_RETURN ||
		    (err == SSL_ERROR_SYSCALL && errno == 0 && ERR_peek_error() == 0))
			break;
		if (got > 0 && err == SSL_ERROR_SSL &&
		    ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
			break;
		note_error(l, "TLS read after %zu bytes: %s", got, ssl_reason());
		goto out;
	}
	buf[got] = '\0';
	if (got < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
	    sscanf(buf + 9, "%3d", &status) != 1) {
		note_error(l, "not an HTTP answer: %.80s", buf);
		goto out;
	}
	body = strstr(buf, "\r\n\r\n");
	body = body != NULL ? body + 4 : buf + got;
	if (status != 200) {
		note_error(l, "HTTP %d: %.200s", status, body);
		goto out;
	}
	if (*body == '\0') {
		note_error(l, "HTTP 200 without a body");
		goto out;
	}
	SSL_shutdown(ssl);
	ok = true;
out:
	SSL_free(ssl);
	close(fd);
	return ok;
}

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct load *l = w->load;
	char *buf;
	size_t i;
	double t0, t1;

	if ((buf = malloc(MAX_ANSWER + 1)) == NULL) {
		w->oom = true;
		return NULL;
	}
	while ((t0 = now()) < l->deadline) {
		i = atomic_fetch_add(&l->next_chip, 1) % l->nchips;
		if (!enroll(l, &l->chips[i], buf, MAX_ANSWER))
			continue;
		t1 = now();
		atomic_fetch_add(&l->ok, 1);
		if (w->nlat == w->caplat) {
			double *p;

			w->caplat = w->caplat ? w->caplat * 2 : 4096;
			if ((p = realloc(w->lat, w->caplat * sizeof(*p))) == NULL) {
				w->oom = true;
				break;
			}
			w->lat = p;
		}
		w->lat[w->nlat++] = (t1 - t0) * 1000.0;
	}
	w->end = now();
	ERR_clear_error();
	free(buf);
	return NULL;
}

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static long
number(const char *s, const char *what, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi) {
		fprintf(stderr, "estload: %s is %ld to %ld\n", what, lo, hi);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"connect", required_argument, NULL, 'c'},
	    {"ca", required_argument, NULL, 'a'},
	    {"clients", required_argument, NULL, 'n'},
	    {"seconds", required_argument, NULL, 's'},
	    {"chips", required_argument, NULL, 'd'},
	    {"label", required_argument, NULL, 'l'},
	    {"path", required_argument, NULL, 'p'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct load l = {.first_error = "", .timeout = {.tv_sec = 30}};
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct worker *w;
	const char *connect_to = NULL, *ca = NULL, *dir = NULL, *label = "", *path = "simpleenroll";
	char *hostbuf, *host, *colon;
	unsigned char ipbuf[16];
	long clients = 1, seconds = 5;
	size_t i, nlat = 0, k;
	double start, end, secs, cpu0, *lat = NULL;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			connect_to = optarg;
			break;
		case 'a':
			ca = optarg;
			break;
		case 'n':
			clients = number(optarg, "--clients", 1, MAX_CLIENTS);
			break;
		case 's':
			seconds = number(optarg, "--seconds", 1, MAX_SECONDS);
			break;
		case 'd':
			dir = optarg;
			break;
		case 'l':
			label = optarg;
			break;
		case 'p':
			path = optarg;
			break;
		case 't':
			l.timeout.tv_sec = number(optarg, "--timeout", 1, MAX_SECONDS);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || connect_to == NULL || ca == NULL || dir == NULL)
		usage();
	if (strpbrk(label, "/ \r\n") != NULL || strpbrk(path, " \r\n") != NULL) {
		fprintf(stderr, "estload: --label and --path are one path segment\n");
		return 2;
	}
	/* HOST:PORT, or [V6]:PORT */
	if ((host = hostbuf = strdup(connect_to)) == NULL || (colon = strrchr(host, ':')) == NULL ||
	    colon[1] == '\0') {
		fprintf(stderr, "estload: --connect HOST:PORT\n");
		return 2;
	}
	*colon = '\0';
	l.port = colon + 1;
	if (host[0] == '[' && colon > host && colon[-1] == ']') {
		colon[-1] = '\0';
		host++;
	}
	l.host = host;
	l.host_is_ip =
	    inet_pton(AF_INET, host, ipbuf) == 1 || inet_pton(AF_INET6, host, ipbuf) == 1;
	if ((rc = getaddrinfo(host, l.port, &hints, &l.addr)) != 0) {
		fprintf(stderr, "estload: %s: %s\n", connect_to, gai_strerror(rc));
		return 1;
	}

	signal(SIGPIPE, SIG_IGN);
	if ((l.ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		ssl_die("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(l.ctx, TLS1_2_VERSION);
	/* every enrollment is a full handshake, as a fleet of devices makes it */
	SSL_CTX_set_options(l.ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(l.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_verify(l.ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(l.ctx, ca, NULL) != 1)
		ssl_die(ca);
	pthread_mutex_init(&l.lock, NULL);
	chips_load(&l, dir, connect_to, label, path);
	fprintf(stderr, "estload: %zu chips, %ld clients, %ld s, POST /.well-known/est/%s%s%s\n",
	    l.nchips, clients, seconds, label, *label != '\0' ? "/" : "", path);

	if ((w = calloc((size_t)clients, sizeof(*w))) == NULL)
		ssl_die("out of memory");
	cpu0 = cpu_seconds();
	start = now();
	l.deadline = start + (double)seconds;
	for (i = 0; i < (size_t)clients; i++) {
		w[i].load = &l;
		if (pthread_create(&w[i].tid, NULL, worker_run, &w[i]) != 0) {
			fprintf(stderr, "estload: cannot start thread %zu\n", i);
			return 1;
		}
	}
	end = start;
	for (i = 0; i < (size_t)clients; i++) {
		pthread_join(w[i].tid, NULL);
		if (w[i].oom) {
			fprintf(stderr, "estload: out of memory\n");
			return 1;
		}
		end = w[i].end > end ? w[i].end : end;
		nlat += w[i].nlat;
	}
	secs = end - start;
	if (nlat > 0 && (lat = malloc(nlat * sizeof(*lat))) == NULL)
		ssl_die("out of memory");
	for (i = 0, k = 0; i < (size_t)clients; i++) {
		if (w[i].nlat > 0)
			memcpy(lat + k, w[i].lat, w[i].nlat * sizeof(*lat));
		k += w[i].nlat;
		free(w[i].lat);
	}
	if (nlat > 0)
		qsort(lat, nlat, sizeof(*lat), dbl_cmp);
	printf("enrollments=%zu seconds=%.3f rate=%.0f errors=%zu p50_ms=%.1f p99_ms=%.1f "
	       "cpu_s=%.2f first_error=%s\n",
	    atomic_load(&l.ok), secs, secs > 0 ? (double)atomic_load(&l.ok) / secs : 0.0,
	    atomic_load(&l.errors), nlat ? lat[nlat / 2] : 0.0,
	    nlat ? lat[(size_t)((double)(nlat - 1) * 0.99)] : 0.0, cpu_seconds() - cpu0,
	    l.first_error[0] != '\0' ? l.first_error : "-");
	free(lat);
	free(w);
	for (i = 0; i < l.nchips; i++) {
		X509_free(l.chips[i].cert);
		sk_X509_pop_free(l.chips[i].chain, X509_free);
		EVP_PKEY_free(l.chips[i].key);
		free(l.chips[i].name);
		free(l.chips[i].request);
	}
	free(l.chips);
	SSL_CTX_free(l.ctx);
	freeaddrinfo(l.addr);
	free(hostbuf);
	return 0;
}
