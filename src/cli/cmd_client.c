/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cli.h"
#include "client.h"
#include "output.h"
#include "upload.h"
#include "factory/factory.h"
#include "lib/custody.h"
#include "lib/json.h"
#include "lib/limits.h"
#include "lib/x509.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

static const char global_help[] =
    "\n"
    "Global options, before or after the command: --server URL, --token TOKEN, --cacert PEM\n"
    "(default $DEVID_SERVER, $DEVID_TOKEN, $DEVID_CACERT; a flag beats the environment),\n"
    "--output (-o) json|table (table on a terminal, else json: the API's answer as it is,\n"
    "times in epoch seconds; tables show them in RFC 3339 UTC), --quiet (-q): no progress\n"
    "and no hints, only results and errors.\n";

enum {
	OPT_SERVER = 1,
	OPT_TOKEN,
	OPT_CACERT,
	OPT_OUTPUT,
	OPT_QUIET,
	OPT_BATCH,
	OPT_STATE,
	OPT_SEARCH,
	OPT_AFTER,
	OPT_LIMIT,
	OPT_FORMAT,
	OPT_OUT,
	OPT_REASON,
	OPT_STATUS,
	OPT_TYPE,
	OPT_MODE,
	OPT_URL,
	OPT_SECRET_FILE,
	OPT_RATE,
	OPT_FILE,
	OPT_CONNECTOR,
	OPT_MAX,
	OPT_NAME,
	OPT_ROLE,
	OPT_EXPIRES,
	OPT_ROOT,
	OPT_SIGNER,
	OPT_PAGE_SIZE,
	OPT_RESTART,
	OPT_HELP,
};

#define BIT(o) ((uint64_t)1 << (o))
#define GLOBAL_OPTS                                                                                \
	(BIT(OPT_SERVER) | BIT(OPT_TOKEN) | BIT(OPT_CACERT) | BIT(OPT_OUTPUT) | BIT(OPT_QUIET) |   \
	    BIT(OPT_HELP))

static const struct option client_opts[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"state", required_argument, NULL, OPT_STATE},
    {"search", required_argument, NULL, OPT_SEARCH},
    {"after", required_argument, NULL, OPT_AFTER},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"out", required_argument, NULL, OPT_OUT},
    {"reason", required_argument, NULL, OPT_REASON},
    {"status", required_argument, NULL, OPT_STATUS},
    {"type", required_argument, NULL, OPT_TYPE},
    {"mode", required_argument, NULL, OPT_MODE},
    {"url", required_argument, NULL, OPT_URL},
    {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
    {"rate", required_argument, NULL, OPT_RATE},
    {"file", required_argument, NULL, OPT_FILE},
    {"connector", required_argument, NULL, OPT_CONNECTOR},
    {"max", required_argument, NULL, OPT_MAX},
    {"name", required_argument, NULL, OPT_NAME},
    {"role", required_argument, NULL, OPT_ROLE},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"root", required_argument, NULL, OPT_ROOT},
    {"signer", required_argument, NULL, OPT_SIGNER},
    {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
    {"restart", no_argument, NULL, OPT_RESTART},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct client_args {
	struct client c;
	enum output_format output;
	bool quiet;
	const char *opt[OPT_HELP]; /* the value of each option given, by its OPT_ number */
	uint64_t given; /* BIT(OPT_...) of every option given */
	char cmd[64]; /* "connectors add": the command for messages */
};

/* A command's usage error, naming the command ("devid jobs devices: ..."). */
#define usage(a, ...) cli_usage((a)->cmd, __VA_ARGS__)

/* Refuses any option given that is neither global nor in allowed, naming the first. */
static int
only(const struct client_args *a, uint64_t allowed)
{
	uint64_t extra = a->given & ~(allowed | GLOBAL_OPTS);

	for (const struct option *o = client_opts; extra != 0 && o->name != NULL; o++)
		if (extra & BIT(o->val))
			return usage(a, "option '--%s' does not apply here", o->name);
	return 0;
}

/* Appends &key=value (or ?key=value first) to path, the value escaped for a URL. */
static void
query_add(struct dynbuf *path, const char *key, const char *value)
{
	char *esc;

	if (value == NULL)
		return;
	if ((esc = curl_easy_escape(NULL, value, 0)) == NULL)
		abort();
	if (dynbuf_addf(path, "%s%s=%s", strchr(dynbuf_str(path), '?') ? "&" : "?", key, esc) != 0)
		abort();
	curl_free(esc);
}

/*
 * Sends one request. 0 with *out the parsed answer (NULL when it is not JSON) for a 2xx;
 * otherwise the error is printed (a rejected batch's report to stdout) and 1 is returned;
 * with status_out, a 404 is handed back there without a message (the caller looks further).
 */
static int
request(const struct client_args *a, const char *method, const char *path, const char *body,
    size_t len, json_t **out, long *status_out)
{
	struct devid_error e;
	struct dynbuf resp;
	long status;
	json_t *j;
	int rc = 1;

	*out = NULL;
	devid_error_clear(&e);
	dynbuf_init(&resp, CLIENT_MAX_RESPONSE);
	if (client_request(&a->c, method, path, body, len, &status, &resp, &e) != 0) {
		fprintf(stderr, "devid %s: %s\n", a->cmd, e.msg);
		goto out;
	}
	j = json_loadb((const char *)resp.p, resp.len, 0, NULL);
	if (status >= 200 && status <= 299) {
		*out = j;
		rc = 0;
		goto out;
	}
	if (status_out != NULL && status == 404) {
		*status_out = status;
		json_decref(j);
		goto out;
	}
	client_print_error(a->cmd, status, &resp);
	/* a rejected batch comes with its report: show it */
	if (json_object_get(j, "report") != NULL) {
		if (output_resolve(a->output) == OUTPUT_JSON)
			output_json(stdout, json_object_get(j, "report"));
		else
			output_object(stdout, json_object_get(j, "report"));
	}
	json_decref(j);
out:
	dynbuf_release(&resp);
	return rc;
}

/* How a command shows its answer as a table: one object, or the array under key. */
#define OBJECT_VIEW ((const struct output_view *)NULL)
#define LIST_VIEW(k, c) (&(const struct output_view){(k), (c), sizeof(c) / sizeof((c)[0])})

/* A paged list: where the next page starts, on stderr (stdout stays the page). */
static void
hint_next(const struct client_args *a, const json_t *j, const char *how)
{
	const json_t *next = json_object_get(j, "next");

	if (a->quiet || next == NULL || json_is_null(next))
		return;
	if (json_is_integer(next))
		fprintf(
		    stderr, "more: %s --after %lld\n", how, (long long)json_integer_value(next));
	else if (json_is_string(next))
		fprintf(stderr, "more: %s --after %s\n", how, json_string_value(next));
}

/* One request whose answer is shown with v; the exit status. */
static int
call(const struct client_args *a, const char *method, const char *path, const char *body,
    size_t len, const struct output_view *v)
{
	json_t *j;

	if (request(a, method, path, body, len, &j, NULL) != 0)
		return 1;
	if (j != NULL)
		output_show(a->output, j, v);
	json_decref(j);
	return 0;
}

/* The same with a JSON body. */
static int
call_json(const struct client_args *a, const char *method, const char *path, const json_t *body,
    const struct output_view *v)
{
	char *text = json_dump_compact(body);
	int rc;

	if (text == NULL)
		abort();
	rc = call(a, method, path, text, strlen(text), v);
	free(text);
	return rc;
}

/* A command of exactly one argument: a usage error naming what is missing or extra. */
static int
one_arg(const struct client_args *a, char **rest, int n, const char *what)
{
	if (n == 0)
		return usage(a, "missing %s", what);
	if (n > 1)
		return usage(a, "unexpected argument '%s'", rest[1]);
	return 0;
}

/* V/B as vendor and batch, both [A-Z0-9.-]{1,64}: safe in a URL path as they are. */
static int
split_batch(const char *s, char *vendor, char *batch)
{
	const char *slash = strchr(s, '/');
	size_t vl;

	if (slash == NULL || (vl = (size_t)(slash - s)) < 1 || vl > MAX_NAME_LEN ||
	    strlen(slash + 1) < 1 || strlen(slash + 1) > MAX_NAME_LEN ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-/") != strlen(s) ||
	    strchr(slash + 1, '/') != NULL)
		return -1;
	memcpy(vendor, s, vl);
	vendor[vl] = '\0';
	snprintf(batch, MAX_NAME_LEN + 1, "%s", slash + 1);
	return 0;
}

/* A name of the API's [A-Za-z0-9._-]{1,64} kind (connectors, tokens): safe in a URL path. */
static bool
name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= MAX_NAME_LEN &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* A positive decimal id. */
static bool
id_ok(const char *s)
{
	int v;

	return cli_parse_int(s, 1, INT32_MAX, &v) == 0;
}

/* --- batches and devices ------------------------------------------------------------- */

static const struct column batch_cols[] = {
    {"VENDOR", "vendor"},
    {"BATCH", "batch"},
    {"PART", "partNumber"},
    {"COUNT", "count"},
    {"STATE", "state"},
    {"ACTIVE", "devices.active"},
    {"REVOKED", "devices.revoked"},
    {"CLAIMED", "claimedAt"},
    {"SOURCE", "source"},
};

static const struct column device_cols[] = {
    {"UDID", "udid"},
    {"SERIAL", "serial"},
    {"VENDOR", "vendor"},
    {"BATCH", "batch"},
    {"STATE", "state"},
};

static int
run_claim(struct client_args *a, char **rest, int n)
{
	json_t *body;
	int rc;

	if ((rc = one_arg(a, rest, n, "the claim code (the text of the reel's QR label)")) != 0)
		return rc;
	body = json_pack("{s:s}", "code", rest[0]);
	rc = call_json(a, "POST", "/api/v1/claims", body, OBJECT_VIEW);
	json_decref(body);
	return rc;
}

static int
run_batches(struct client_args *a, char **rest, int n)
{
	if (n != 0)
		return usage(a, "unexpected argument '%s'", rest[0]);
	return call(a, "GET", "/api/v1/batches", NULL, 0, LIST_VIEW("batches", batch_cols));
}

static int
run_devices(struct client_args *a, char **rest, int n)
{
	struct dynbuf path;
	json_t *j;
	int limit, rc;

	if (n != 0)
		return usage(a, "unexpected argument '%s'", rest[0]);
	if (a->opt[OPT_LIMIT] != NULL && cli_parse_int(a->opt[OPT_LIMIT], 1, 1000, &limit) != 0)
		return usage(a, "--limit '%s': expected 1 to 1000", a->opt[OPT_LIMIT]);
	dynbuf_init(&path, 4096);
	if (dynbuf_addstr(&path, "/api/v1/devices") != 0)
		abort();
	query_add(&path, "batch", a->opt[OPT_BATCH]);
	query_add(&path, "state", a->opt[OPT_STATE]);
	query_add(&path, "q", a->opt[OPT_SEARCH]);
	query_add(&path, "after", a->opt[OPT_AFTER]);
	query_add(&path, "limit", a->opt[OPT_LIMIT]);
	if ((rc = request(a, "GET", dynbuf_str(&path), NULL, 0, &j, NULL)) == 0) {
		output_show(a->output, j, LIST_VIEW("devices", device_cols));
		hint_next(a, j, "devid devices");
	}
	json_decref(j);
	dynbuf_release(&path);
	return rc;
}

static bool
is_udid(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/*
 * The UDID of the device named by its UDID or, failing that, by its exact chip serial (a
 * search by prefix, GET /api/v1/devices?q=, filtered to exact matches). 0, or 1 after a
 * message.
 */
static int
resolve_device(const struct client_args *a, const char *id, char udid[65])
{
	char path[512], *esc;
	const char *next = NULL, *match = NULL;
	json_t *j = NULL, *page = NULL, *d;
	size_t i, nmatch = 0;
	long status = 0;
	int rc = 1;

	if (is_udid(id)) {
		snprintf(path, sizeof(path), "/api/v1/devices/%s", id);
		if (request(a, "GET", path, NULL, 0, &j, &status) == 0) {
			memcpy(udid, id, 65);
			json_decref(j);
			return 0;
		}
		if (status != 404)
			return 1;
	}
	if ((esc = curl_easy_escape(NULL, id, 0)) == NULL)
		abort();
	do {
		snprintf(path, sizeof(path), "/api/v1/devices?limit=1000&q=%s%s%s", esc,
		    next ? "&after=" : "", next ? next : "");
		json_decref(page);
		if (request(a, "GET", path, NULL, 0, &page, NULL) != 0)
			goto out;
		json_array_foreach(json_object_get(page, "devices"), i, d)
		{
			const char *serial = json_string_value(json_object_get(d, "serial"));

			if (serial != NULL && strcmp(serial, id) == 0 && nmatch++ == 0)
				snprintf(
				    udid, 65, "%s", json_string_value(json_object_get(d, "udid")));
		}
		next = json_string_value(json_object_get(page, "next"));
	} while (next != NULL);
	match = nmatch == 1 ? udid : NULL;
	if (nmatch == 0)
		fprintf(
		    stderr, "devid %s: no device has the UDID or chip serial '%s'\n", a->cmd, id);
	else if (match == NULL)
		fprintf(stderr,
		    "devid %s: %zu devices have the chip serial '%s': name one by its UDID\n",
		    a->cmd, nmatch, id);
	rc = match != NULL ? 0 : 1;
out:
	json_decref(page);
	curl_free(esc);
	return rc;
}

/* A device's name on the command line: a UDID, or a chip serial of printable ASCII. */
static int
device_arg(const struct client_args *a, char **rest, int n)
{
	size_t len;
	int rc;

	if ((rc = one_arg(a, rest, n, "the device (its UDID or chip serial)")) != 0)
		return rc;
	len = strlen(rest[0]);
	for (size_t i = 0; i < len; i++)
		if (rest[0][i] < 0x21 || rest[0][i] > 0x7e)
			len = 0;
	if (len < 1 || len > 64)
		return usage(a,
		    "'%s' is neither a UDID (64 hex digits) nor a chip serial (1 to 64 "
		    "printable characters)",
		    rest[0]);
	return 0;
}

static int
run_device(struct client_args *a, char **rest, int n)
{
	char udid[65], path[128];
	int rc;

	if ((rc = device_arg(a, rest, n)) != 0)
		return rc;
	if (resolve_device(a, rest[0], udid) != 0)
		return 1;
	snprintf(path, sizeof(path), "/api/v1/devices/%s", udid);
	return call(a, "GET", path, NULL, 0, OBJECT_VIEW);
}

/* POST .../revoke with {"reason": R} when --reason is given (the server checks R). */
static int
run_revoke(struct client_args *a, char **rest, int n)
{
	char udid[65], path[128];
	json_t *body;
	int rc;

	if ((rc = device_arg(a, rest, n)) != 0)
		return rc;
	if (resolve_device(a, rest[0], udid) != 0)
		return 1;
	snprintf(path, sizeof(path), "/api/v1/devices/%s/revoke", udid);
	body = a->opt[OPT_REASON] != NULL ? json_pack("{s:s}", "reason", a->opt[OPT_REASON])
					  : json_object();
	rc = call_json(a, "POST", path, body, OBJECT_VIEW);
	json_decref(body);
	return rc;
}

/* manifest, transfer, release: one V/B argument. */
static int
run_batch_action(struct client_args *a, char **rest, int n)
{
	char path[512], vendor[MAX_NAME_LEN + 1], batch[MAX_NAME_LEN + 1];
	const char *format = a->opt[OPT_FORMAT] ? a->opt[OPT_FORMAT] : "json";
	struct devid_error e;
	struct dynbuf resp;
	long status;
	FILE *f;
	int rc = 1;

	if ((rc = one_arg(a, rest, n, "the batch (VENDOR/BATCH)")) != 0)
		return rc;
	rc = 1;
	if (split_batch(rest[0], vendor, batch) != 0)
		return usage(a, "'%s' is no batch: name it as VENDOR/BATCH", rest[0]);
	if (strcmp(a->cmd, "manifest") != 0) {
		snprintf(path, sizeof(path), "/api/v1/batches/%s/%s/%s", vendor, batch, a->cmd);
		return call(a, "POST", path, "{}", 2, OBJECT_VIEW);
	}
	if (strcmp(format, "json") != 0 && strcmp(format, "pem") != 0 && strcmp(format, "csv") != 0)
		return usage(a, "--format '%s': expected json, pem or csv", format);
	snprintf(
	    path, sizeof(path), "/api/v1/batches/%s/%s/manifest?format=%s", vendor, batch, format);
	devid_error_clear(&e);
	dynbuf_init(&resp, CLIENT_MAX_RESPONSE);
	if (client_request(&a->c, "GET", path, NULL, 0, &status, &resp, &e) != 0) {
		fprintf(stderr, "devid %s: %s\n", a->cmd, e.msg);
		goto out;
	}
	if (status != 200) {
		client_print_error(a->cmd, status, &resp);
		goto out;
	}
	f = a->opt[OPT_OUT] != NULL ? fopen(a->opt[OPT_OUT], "wb") : stdout;
	if (f == NULL || fwrite(resp.p, 1, resp.len, f) != resp.len ||
	    (f != stdout && fclose(f) != 0)) {
		fprintf(stderr, "devid %s: cannot write %s\n", a->cmd,
		    a->opt[OPT_OUT] ? a->opt[OPT_OUT] : "stdout");
		goto out;
	}
	rc = 0;
out:
	dynbuf_release(&resp);
	return rc;
}

/*
 * An upload of a manifest file (upload.h): the commit's answer shown as the one-body publish's
 * was, a refused page's report as a refused batch's.
 */
static int
send_upload(struct client_args *a, struct upload_opts *o)
{
	json_t *answer = NULL;
	int rc;

	o->c = &a->c;
	o->cmd = a->cmd;
	o->restart = (a->given & BIT(OPT_RESTART)) != 0;
	o->progress = a->c.progress;
	o->quiet = a->quiet;
	o->page_size = UPLOAD_CLIENT_PAGE_SIZE;
	if (a->opt[OPT_PAGE_SIZE] != NULL) {
		int n;

		if (cli_parse_int(a->opt[OPT_PAGE_SIZE], 1, MAX_UPLOAD_PAGE_ENTRIES, &n) != 0)
			return usage(a, "--page-size '%s': expected 1 to %d entries",
			    a->opt[OPT_PAGE_SIZE], MAX_UPLOAD_PAGE_ENTRIES);
		o->page_size = n;
	}
	rc = upload_run(o, &answer);
	if (rc == 0)
		output_show(a->output, answer, OBJECT_VIEW);
	else if (json_object_get(answer, "report") != NULL) {
		if (output_resolve(a->output) == OUTPUT_JSON)
			output_json(stdout, json_object_get(answer, "report"));
		else
			output_object(stdout, json_object_get(answer, "report"));
	}
	json_decref(answer);
	return rc;
}

/*
 * import FILE: the signed manifest as it is, JSON (an export with --format json is one) or
 * its XML form (docs/xml-manifest.md), streamed as an upload. A CSV export carries no signatures,
 * so nothing could verify it: refused here, with the way to the JSON one.
 */
static int
run_import(struct client_args *a, char **rest, int n)
{
	struct upload_opts o = {.import = true, .batch = a->opt[OPT_BATCH]};
	char head[64];
	size_t len, skip = 0;
	FILE *f;
	int rc;

	if ((rc = one_arg(a, rest, n, "the manifest FILE (JSON or XML)")) != 0)
		return rc;
	if (o.batch == NULL)
		return usage(a, "needs --batch NAME, the name of the batch in your namespace");
	if (strlen(o.batch) < 1 || strlen(o.batch) > MAX_NAME_LEN ||
	    strspn(o.batch, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(o.batch))
		return usage(a, "--batch '%s': a batch name matches [A-Z0-9.-]{1,64}", o.batch);
	if ((f = fopen(rest[0], "rb")) == NULL) {
		fprintf(stderr, "devid import: %s: %s\n", rest[0], strerror(errno));
		return 1;
	}
	len = fread(head, 1, sizeof(head), f);
	fclose(f);
	while (skip < len && strchr(" \t\r\n", head[skip]) != NULL)
		skip++;
	if (len - skip >= 10 && memcmp(head + skip, "device_id,", 10) == 0) {
		fprintf(stderr,
		    "devid import: %s is a CSV export, which carries no signatures, so its chips "
		    "cannot be verified: export the batch with 'devid manifest V/B --format json' "
		    "and import that\n",
		    rest[0]);
		return 1;
	}
	o.manifest = rest[0];
	return send_upload(a, &o);
}

/*
 * vendor publish OUT: batch.json as it is, the bytes the vendor signed, and manifest.json (or
 * manifest.xml) streamed from disk as an upload.
 */
static int
run_publish(struct client_args *a, char **rest, int n)
{
	struct upload_opts o = {.import = false};
	uint8_t *desc = NULL;
	char path[4096], man[4096];
	struct devid_error e;
	bool xml;
	int rc;

	if (n < 2)
		return usage(a, "missing the reel (the OUT of devid vendor mint)");
	if (n > 2)
		return usage(a, "unexpected argument '%s'", rest[2]);
	devid_error_clear(&e);
	snprintf(path, sizeof(path), "%s/batch.json", rest[1]);
	if (file_read_all(path, MAX_DESCRIPTOR_SIZE, &desc, &o.descriptor_len, &e) != 0) {
		fprintf(stderr, "devid vendor publish: %s\n", e.msg);
		return 1;
	}
	if (reel_manifest_path(rest[1], man, sizeof(man), &xml, &e) != 0) {
		fprintf(stderr, "devid vendor publish: %s\n", e.msg);
		free(desc);
		return 1;
	}
	o.descriptor = desc;
	o.manifest = man;
	rc = send_upload(a, &o);
	free(desc);
	return rc;
}

/* --- audit, jobs ------------------------------------------------------------------------ */

static const struct column audit_cols[] = {
    {"SEQ", "seq"},
    {"TIME", "time"},
    {"ACTOR", "actor"},
    {"ACTION", "action"},
    {"OBJECT", "object"},
    {"DETAIL", "detail"},
};

static const struct column job_cols[] = {
    {"ID", "id"},
    {"CONNECTOR", "connector"},
    {"ACTION", "action"},
    {"REASON", "reason"},
    {"STATE", "state"},
    {"DELIVERED", "delivered"},
    {"TOTAL", "total"},
    {"OK", "devices.ok"},
    {"FAILED", "devices.failed"},
    {"ATTEMPTS", "attempts"},
    {"UDID", "udid"},
    {"LAST ERROR", "lastError"},
};

static const struct column job_device_cols[] = {
    {"UDID", "udid"},
    {"STATUS", "status"},
    {"AT", "at"},
    {"MESSAGE", "message"},
};

/* The verb of a command with verbs: rest[0], or dflt when there is none; words after it. */
static const char *
verb_of(struct client_args *a, char ***rest, int *n, const char *dflt)
{
	const char *verb = *n > 0 ? (*rest)[0] : dflt;

	if (*n > 0) {
		(*rest)++;
		(*n)--;
	}
	snprintf(a->cmd + strlen(a->cmd), sizeof(a->cmd) - strlen(a->cmd), " %s", verb);
	return verb;
}

/* An unknown verb of cmd, with the nearest one. */
static int
bad_verb(struct client_args *a, const char *verb, const char *const *verbs, size_t nverbs)
{
	const char *near = cli_suggest(verb, verbs, nverbs);

	*strrchr(a->cmd, ' ') = '\0';
	if (near != NULL)
		return usage(a, "unknown subcommand '%s' (did you mean '%s'?)", verb, near);
	return usage(a, "unknown subcommand '%s'", verb);
}

static int
no_more(struct client_args *a, char **rest, int n)
{
	return n != 0 ? usage(a, "unexpected argument '%s'", rest[0]) : 0;
}

/*
 * A list by pages of numeric cursors (--after ID): GET base?after=..., shown as a table of
 * the array under view->key, with the next page's command on stderr. what names the cursor.
 */
static int
list_after(struct client_args *a, char **rest, int n, const char *base,
    const struct output_view *view, const char *what, const char *how)
{
	struct dynbuf path;
	json_t *j;
	int rc;

	if ((rc = only(a, BIT(OPT_AFTER))) != 0 || (rc = no_more(a, rest, n)) != 0)
		return rc;
	if (a->opt[OPT_AFTER] != NULL && !id_ok(a->opt[OPT_AFTER]))
		return usage(a, "--after '%s': expected %s", a->opt[OPT_AFTER], what);
	dynbuf_init(&path, 256);
	if (dynbuf_addstr(&path, base) != 0)
		abort();
	query_add(&path, "after", a->opt[OPT_AFTER]);
	if ((rc = request(a, "GET", dynbuf_str(&path), NULL, 0, &j, NULL)) == 0) {
		output_show(a->output, j, view);
		hint_next(a, j, how);
	}
	json_decref(j);
	dynbuf_release(&path);
	return rc;
}

static int
run_audit(struct client_args *a, char **rest, int n)
{
	static const char *const verbs[] = {"list", "verify"};
	const char *verb = verb_of(a, &rest, &n, "list");
	json_t *j;
	int rc;

	if (strcmp(verb, "list") == 0)
		return list_after(a, rest, n, "/api/v1/audit", LIST_VIEW("records", audit_cols),
		    "a record's seq", "devid audit list");
	if (strcmp(verb, "verify") != 0)
		return bad_verb(a, verb, verbs, 2);
	if ((rc = only(a, 0)) != 0 || (rc = no_more(a, rest, n)) != 0)
		return rc;
	if (request(a, "GET", "/api/v1/audit/verify", NULL, 0, &j, NULL) != 0)
		return 1;
	output_show(a->output, j, OBJECT_VIEW);
	rc = json_is_true(json_object_get(j, "ok")) ? 0 : 1;
	if (rc != 0)
		fprintf(stderr, "devid audit verify: the chain is broken at record %lld: %s\n",
		    (long long)json_integer_value(json_object_get(j, "brokenAt")),
		    json_string_value(json_object_get(j, "message")));
	json_decref(j);
	return rc;
}

static int
run_jobs(struct client_args *a, char **rest, int n)
{
	static const char *const verbs[] = {"list", "devices"};
	const char *verb = verb_of(a, &rest, &n, "list");
	struct dynbuf path;
	json_t *j;
	int rc;

	if (strcmp(verb, "list") != 0 && strcmp(verb, "devices") != 0)
		return bad_verb(a, verb, verbs, 2);
	dynbuf_init(&path, 512);
	if (strcmp(verb, "list") == 0) {
		if ((rc = only(a, BIT(OPT_STATE))) != 0 || (rc = no_more(a, rest, n)) != 0)
			goto out;
		if (dynbuf_addstr(&path, "/api/v1/jobs") != 0)
			abort();
		query_add(&path, "state", a->opt[OPT_STATE]);
		rc = call(a, "GET", dynbuf_str(&path), NULL, 0, LIST_VIEW("jobs", job_cols));
		goto out;
	}
	if ((rc = only(a, BIT(OPT_STATUS) | BIT(OPT_AFTER))) != 0)
		goto out;
	if ((rc = one_arg(a, rest, n, "the job ID (devid jobs list)")) != 0)
		goto out;
	if (!id_ok(rest[0])) {
		rc = usage(a, "'%s' is no job id", rest[0]);
		goto out;
	}
	if (dynbuf_addf(&path, "/api/v1/jobs/%s/devices", rest[0]) != 0)
		abort();
	query_add(&path, "status", a->opt[OPT_STATUS]);
	query_add(&path, "after", a->opt[OPT_AFTER]);
	if ((rc = request(a, "GET", dynbuf_str(&path), NULL, 0, &j, NULL)) == 0) {
		output_show(a->output, j, LIST_VIEW("devices", job_device_cols));
		hint_next(a, j, "devid jobs devices ID");
	}
	json_decref(j);
out:
	dynbuf_release(&path);
	return rc;
}

/* --- connectors, provision ------------------------------------------------------------ */

static const struct column connector_cols[] = {
    {"NAME", "name"},
    {"TYPE", "type"},
    {"MODE", "mode"},
    {"CONFIG", "config"},
};

#define CONNECTOR_FLAGS                                                                            \
	(BIT(OPT_TYPE) | BIT(OPT_MODE) | BIT(OPT_URL) | BIT(OPT_SECRET_FILE) | BIT(OPT_RATE) |     \
	    BIT(OPT_FILE))

/*
 * A connector as the API takes it: --file's JSON object ({"type","mode","config"}) when
 * given, then each flag over it. NULL after a message (*rc the exit status).
 */
static json_t *
connector_body(const struct client_args *a, int *rc)
{
	struct devid_error e;
	json_error_t je;
	uint8_t *secret = NULL;
	size_t slen;
	json_t *body, *config;
	int rate;

	*rc = 1;
	devid_error_clear(&e);
	if (a->opt[OPT_RATE] != NULL && cli_parse_int(a->opt[OPT_RATE], 1, 1000000, &rate) != 0) {
		*rc = usage(
		    a, "--rate '%s': expected requests a second, 1 or more", a->opt[OPT_RATE]);
		return NULL;
	}
	if (a->opt[OPT_MODE] != NULL && strcmp(a->opt[OPT_MODE], "auto") != 0 &&
	    strcmp(a->opt[OPT_MODE], "manual") != 0) {
		*rc = usage(a, "--mode '%s': expected auto or manual", a->opt[OPT_MODE]);
		return NULL;
	}
	if (a->opt[OPT_FILE] == NULL)
		body = json_object();
	else if ((body = json_load_file(a->opt[OPT_FILE], JSON_REJECT_DUPLICATES, &je)) == NULL ||
	    !json_is_object(body)) {
		fprintf(stderr, "devid %s: %s: %s\n", a->cmd, a->opt[OPT_FILE],
		    body == NULL ? je.text : "not a JSON object");
		json_decref(body);
		return NULL;
	}
	if (a->opt[OPT_SECRET_FILE] != NULL) {
		if (file_read_all(a->opt[OPT_SECRET_FILE], 4096, &secret, &slen, &e) != 0) {
			fprintf(stderr, "devid %s: %s\n", a->cmd, e.msg);
			json_decref(body);
			return NULL;
		}
		while (slen > 0 && (secret[slen - 1] == '\n' || secret[slen - 1] == '\r'))
			secret[--slen] = '\0';
	}
	if (!json_is_object(config = json_object_get(body, "config"))) {
		config = json_object();
		json_object_set_new(body, "config", config);
	}
	if (a->opt[OPT_TYPE] != NULL)
		json_object_set_new(body, "type", json_string(a->opt[OPT_TYPE]));
	if (a->opt[OPT_MODE] != NULL)
		json_object_set_new(body, "mode", json_string(a->opt[OPT_MODE]));
	if (a->opt[OPT_URL] != NULL)
		json_object_set_new(config, "url", json_string(a->opt[OPT_URL]));
	if (secret != NULL)
		json_object_set_new(config, "secret", json_stringn((const char *)secret, slen));
	if (a->opt[OPT_RATE] != NULL)
		json_object_set_new(config, "ratePerSecond", json_integer(rate));
	/* add starts a connector in auto mode; put replaces one, so it is told the mode */
	if (json_object_get(body, "mode") == NULL && strcmp(a->cmd, "connectors add") == 0)
		json_object_set_new(body, "mode", json_string("auto"));
	if (!json_is_string(json_object_get(body, "type")) ||
	    !json_is_string(json_object_get(body, "mode"))) {
		*rc = usage(a, "needs --type%s (or --file with them)",
		    strcmp(a->cmd, "connectors add") == 0 ? "" : " and --mode");
		json_decref(body);
		body = NULL;
	}
	if (secret != NULL)
		OPENSSL_cleanse(secret, slen);
	free(secret);
	if (body != NULL)
		*rc = 0;
	return body;
}

static int
run_connectors(struct client_args *a, char **rest, int n)
{
	static const char *const verbs[] = {"list", "show", "add", "put", "delete", "test"};
	const char *verb = verb_of(a, &rest, &n, "list");
	char path[256];
	json_t *body, *j;
	long status = 0;
	int rc, k;

	for (k = 0; k < 6 && strcmp(verb, verbs[k]) != 0; k++)
		;
	if (k == 6)
		return bad_verb(a, verb, verbs, 6);
	if (k == 0) {
		if ((rc = only(a, 0)) != 0 || (rc = no_more(a, rest, n)) != 0)
			return rc;
		return call(a, "GET", "/api/v1/connectors", NULL, 0,
		    LIST_VIEW("connectors", connector_cols));
	}
	if ((rc = only(a, k == 2 || k == 3 ? CONNECTOR_FLAGS : 0)) != 0)
		return rc;
	if ((rc = one_arg(a, rest, n, "the connector's NAME")) != 0)
		return rc;
	if (!name_ok(rest[0]))
		return usage(a, "'%s' is no connector name ([A-Za-z0-9._-]{1,64})", rest[0]);
	snprintf(path, sizeof(path), "/api/v1/connectors/%s%s", rest[0], k == 5 ? "/test" : "");
	if (k == 1)
		return call(a, "GET", path, NULL, 0, OBJECT_VIEW);
	if (k == 4)
		return call(a, "DELETE", path, NULL, 0, OBJECT_VIEW);
	if (k == 5) {
		if (request(a, "POST", path, "{}", 2, &j, NULL) != 0)
			return 1;
		output_show(a->output, j, OBJECT_VIEW);
		rc = json_is_true(json_object_get(j, "ok")) ? 0 : 1;
		json_decref(j);
		return rc;
	}
	if ((body = connector_body(a, &rc)) == NULL)
		return rc;
	if (k == 2) {
		/* POST would replace a connector of that name: add only adds */
		if (request(a, "GET", path, NULL, 0, &j, &status) == 0) {
			fprintf(stderr,
			    "devid connectors add: connector '%s' exists; change it with 'devid "
			    "connectors put %s'\n",
			    rest[0], rest[0]);
			json_decref(j);
			json_decref(body);
			return 1;
		}
		if (status != 404) {
			json_decref(body);
			return 1;
		}
		json_object_set_new(body, "name", json_string(rest[0]));
	}
	rc = call_json(
	    a, k == 2 ? "POST" : "PUT", k == 2 ? "/api/v1/connectors" : path, body, OBJECT_VIEW);
	json_decref(body);
	return rc;
}

static int
run_provision(struct client_args *a, char **rest, int n)
{
	json_t *body, *list;
	int rc;

	if (a->opt[OPT_CONNECTOR] == NULL)
		return usage(a, "needs --connector NAME");
	if ((a->opt[OPT_BATCH] != NULL) == (n > 0))
		return usage(a,
		    n > 0 ? "give --batch V/B or devices, not both"
			  : "which devices? (--batch V/B, or UDIDs)");
	for (int i = 0; i < n; i++)
		if (!is_udid(rest[i]))
			return usage(a, "'%s' is no UDID (64 lowercase hex digits)", rest[i]);
	body = json_pack("{s:s}", "connector", a->opt[OPT_CONNECTOR]);
	if (a->opt[OPT_BATCH] != NULL)
		json_object_set_new(body, "batch", json_string(a->opt[OPT_BATCH]));
	else {
		list = json_array();
		for (int i = 0; i < n; i++)
			json_array_append_new(list, json_string(rest[i]));
		json_object_set_new(body, "devices", list);
	}
	rc = call_json(a, "POST", "/api/v1/provision", body, OBJECT_VIEW);
	json_decref(body);
	return rc;
}

/* --- quota, tokens, trust -------------------------------------------------------------- */

static int
run_quota(struct client_args *a, char **rest, int n)
{
	static const char *const verbs[] = {"show", "set"};
	const char *verb = verb_of(a, &rest, &n, "show");
	json_t *body;
	int rc, max;

	if (strcmp(verb, "show") != 0 && strcmp(verb, "set") != 0)
		return bad_verb(a, verb, verbs, 2);
	if ((rc = only(a, verb[1] == 'e' ? BIT(OPT_MAX) : 0)) != 0 ||
	    (rc = no_more(a, rest, n)) != 0)
		return rc;
	if (verb[1] == 'h')
		return call(a, "GET", "/api/v1/quota", NULL, 0, OBJECT_VIEW);
	if (a->opt[OPT_MAX] == NULL)
		return usage(a, "needs --max N or --max none");
	if (strcmp(a->opt[OPT_MAX], "none") == 0)
		body = json_pack("{s:n}", "max");
	else if (cli_parse_int(a->opt[OPT_MAX], 0, INT32_MAX, &max) == 0)
		body = json_pack("{s:i}", "max", max);
	else
		return usage(
		    a, "--max '%s': expected a number of devices or none", a->opt[OPT_MAX]);
	rc = call_json(a, "PUT", "/api/v1/quota", body, OBJECT_VIEW);
	json_decref(body);
	return rc;
}

/* --- clone detection ---------------------------------------------------------------------- */

static const struct column suspicion_cols[] = {
    {"ID", "id"},
    {"AT", "at"},
    {"UDID", "udid"},
    {"RULE", "rule"},
    {"QUARANTINED", "quarantined"},
    {"DETAIL", "detail"},
};

static int
run_clone_policy(struct client_args *a, char **rest, int n)
{
	static const char *const verbs[] = {"show", "set"};
	const char *verb = verb_of(a, &rest, &n, "show");
	json_error_t je;
	json_t *body;
	int rc;

	if (strcmp(verb, "show") != 0 && strcmp(verb, "set") != 0)
		return bad_verb(a, verb, verbs, 2);
	if ((rc = only(a, verb[1] == 'e' ? BIT(OPT_MODE) | BIT(OPT_FILE) : 0)) != 0 ||
	    (rc = no_more(a, rest, n)) != 0)
		return rc;
	if (verb[1] == 'h')
		return call(a, "GET", "/api/v1/clone-policy", NULL, 0, OBJECT_VIEW);
	if (a->opt[OPT_MODE] == NULL && a->opt[OPT_FILE] == NULL)
		return usage(a, "needs --mode off|flag|quarantine or --file POLICY.json");
	if (a->opt[OPT_FILE] == NULL)
		body = json_object();
	else if ((body = json_load_file(a->opt[OPT_FILE], JSON_REJECT_DUPLICATES, &je)) == NULL ||
	    !json_is_object(body)) {
		fprintf(stderr, "devid %s: %s: %s\n", a->cmd, a->opt[OPT_FILE],
		    body == NULL ? je.text : "not a JSON object");
		json_decref(body);
		return 1;
	}
	if (a->opt[OPT_MODE] != NULL)
		json_object_set_new(body, "mode", json_string(a->opt[OPT_MODE]));
	rc = call_json(a, "PUT", "/api/v1/clone-policy", body, OBJECT_VIEW);
	json_decref(body);
	return rc;
}

static int
run_suspicions(struct client_args *a, char **rest, int n)
{
	return list_after(a, rest, n, "/api/v1/suspicions", LIST_VIEW("suspicions", suspicion_cols),
	    "a suspicion's id", "devid suspicions");
}

/* A token's id from its id or name (GET /api/v1/tokens); 0, or 1 after a message. */
static int
token_id(const struct client_args *a, const char *which, long long *id)
{
	json_t *j, *t;
	size_t i;
	int v;

	if (cli_parse_int(which, 1, INT32_MAX, &v) == 0) {
		*id = v;
		return 0;
	}
	if (request(a, "GET", "/api/v1/tokens", NULL, 0, &j, NULL) != 0)
		return 1;
	*id = 0;
	json_array_foreach(json_object_get(j, "tokens"), i, t)
	{
		const char *name = json_string_value(json_object_get(t, "name"));

		if (name != NULL && strcmp(name, which) == 0)
			*id = (long long)json_integer_value(json_object_get(t, "id"));
	}
	json_decref(j);
	if (*id == 0)
		fprintf(
		    stderr, "devid %s: no token named '%s' (devid tokens list)\n", a->cmd, which);
	return *id == 0 ? 1 : 0;
}

static int
run_tokens(struct client_args *a, char **rest, int n)
{
	static const char *const verbs[] = {"list", "add", "revoke"};
	const char *verb = verb_of(a, &rest, &n, "list");
	char path[64];
	long long id;
	json_t *body;
	int rc;

	if (strcmp(verb, "list") == 0) {
		if ((rc = only(a, 0)) != 0 || (rc = no_more(a, rest, n)) != 0)
			return rc;
		return call(a, "GET", "/api/v1/tokens", NULL, 0, &output_tokens_view);
	}
	if (strcmp(verb, "add") == 0) {
		if ((rc = only(a, BIT(OPT_NAME) | BIT(OPT_ROLE) | BIT(OPT_EXPIRES))) != 0 ||
		    (rc = no_more(a, rest, n)) != 0)
			return rc;
		if (a->opt[OPT_NAME] == NULL || a->opt[OPT_ROLE] == NULL)
			return usage(a, "needs --name N and --role admin|operator");
		body = json_pack("{s:s, s:s}", "name", a->opt[OPT_NAME], "role", a->opt[OPT_ROLE]);
		if (a->opt[OPT_EXPIRES] != NULL)
			json_object_set_new(body, "expires", json_string(a->opt[OPT_EXPIRES]));
		rc = call_json(a, "POST", "/api/v1/tokens", body, OBJECT_VIEW);
		json_decref(body);
		return rc;
	}
	if (strcmp(verb, "revoke") != 0)
		return bad_verb(a, verb, verbs, 3);
	if ((rc = only(a, 0)) != 0)
		return rc;
	if ((rc = one_arg(a, rest, n, "the token (its id or name)")) != 0)
		return rc;
	if (!name_ok(rest[0]))
		return usage(a, "'%s' is no token id or name", rest[0]);
	if (token_id(a, rest[0], &id) != 0)
		return 1;
	snprintf(path, sizeof(path), "/api/v1/tokens/%lld", id);
	return call(a, "DELETE", path, NULL, 0, OBJECT_VIEW);
}

static int
run_trust(struct client_args *a, char **rest, int n)
{
	static const char *const verbs[] = {"list", "add", "remove"};
	const char *verb = verb_of(a, &rest, &n, "list");
	uint8_t *root = NULL, *signer = NULL;
	size_t rlen, slen;
	struct devid_error e;
	char path[64];
	json_t *body;
	int rc;

	devid_error_clear(&e);
	if (strcmp(verb, "list") == 0) {
		if ((rc = only(a, 0)) != 0 || (rc = no_more(a, rest, n)) != 0)
			return rc;
		return call(a, "GET", "/api/v1/trust", NULL, 0, &output_trust_view);
	}
	if (strcmp(verb, "remove") == 0) {
		if ((rc = only(a, 0)) != 0)
			return rc;
		if ((rc = one_arg(a, rest, n, "the trust id (devid trust list)")) != 0)
			return rc;
		if (!id_ok(rest[0]))
			return usage(a, "'%s' is no trust id", rest[0]);
		snprintf(path, sizeof(path), "/api/v1/trust/%s", rest[0]);
		return call(a, "DELETE", path, NULL, 0, OBJECT_VIEW);
	}
	if (strcmp(verb, "add") != 0)
		return bad_verb(a, verb, verbs, 3);
	if ((rc = only(a, BIT(OPT_ROOT) | BIT(OPT_SIGNER))) != 0 || (rc = no_more(a, rest, n)) != 0)
		return rc;
	if (a->opt[OPT_ROOT] == NULL || a->opt[OPT_SIGNER] == NULL)
		return usage(a, "needs --root ROOT.pem and --signer SIGNER.pem");
	rc = 1;
	if (file_read_all(a->opt[OPT_ROOT], MAX_PEM_FILE, &root, &rlen, &e) != 0 ||
	    file_read_all(a->opt[OPT_SIGNER], MAX_PEM_FILE, &signer, &slen, &e) != 0) {
		fprintf(stderr, "devid %s: %s\n", a->cmd, e.msg);
		goto out;
	}
	body = json_pack(
	    "{s:s%, s:s%}", "root", (const char *)root, rlen, "signer", (const char *)signer, slen);
	rc = call_json(a, "POST", "/api/v1/trust", body, OBJECT_VIEW);
	json_decref(body);
out:
	free(root);
	free(signer);
	return rc;
}

/* --- chain of custody (docs/custody.md) ------------------------------------------------ */

#define MAX_CUSTODY_ROOTS 16

/* Every PUBLIC KEY and CERTIFICATE of a PEM file, as keys; 0 or 1 with the reason printed. */
static int
custody_roots(struct client_args *a, const char *path, EVP_PKEY **keys, size_t *n)
{
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len;
	BIO *bio;
	int rc = 1;

	*n = 0;
	if ((bio = BIO_new_file(path, "r")) == NULL) {
		fprintf(stderr, "devid %s: cannot read %s\n", a->cmd, path);
		return 1;
	}
	while (PEM_read_bio(bio, &name, &header, &data, &len) == 1) {
		const unsigned char *p = data;
		EVP_PKEY *k = NULL;
		X509 *x;

		if (strcmp(name, "PUBLIC KEY") == 0)
			k = d2i_PUBKEY(NULL, &p, len);
		else if (strcmp(name, "CERTIFICATE") == 0 &&
		    (x = d2i_X509(NULL, &p, len)) != NULL) {
			k = X509_get_pubkey(x);
			X509_free(x);
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
		if (k == NULL)
			continue;
		if (*n == MAX_CUSTODY_ROOTS) {
			EVP_PKEY_free(k);
			fprintf(stderr, "devid %s: %s: more than %d keys\n", a->cmd, path,
			    MAX_CUSTODY_ROOTS);
			goto out;
		}
		keys[(*n)++] = k;
	}
	if (*n == 0) {
		fprintf(stderr, "devid %s: %s holds no PUBLIC KEY or CERTIFICATE\n", a->cmd, path);
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio);
	return rc;
}

static int
run_custody(struct client_args *a, char **rest, int n)
{
	static const char *const verbs[] = {"get", "verify"};
	const char *verb = verb_of(a, &rest, &n, "get");
	char path[512], vendor[MAX_NAME_LEN + 1], batch[MAX_NAME_LEN + 1];
	EVP_PKEY *roots[MAX_CUSTODY_ROOTS];
	struct custody_summary sum;
	struct devid_error e;
	uint8_t *buf = NULL;
	size_t nroots = 0, len;
	int rc;

	if (strcmp(verb, "get") == 0) {
		if ((rc = only(a, 0)) != 0 ||
		    (rc = one_arg(a, rest, n, "the batch (VENDOR/BATCH)")) != 0)
			return rc;
		if (split_batch(rest[0], vendor, batch) != 0)
			return usage(a, "'%s' is no batch: name it as VENDOR/BATCH", rest[0]);
		snprintf(path, sizeof(path), "/api/v1/batches/%s/%s/custody", vendor, batch);
		return call(a, "GET", path, NULL, 0, OBJECT_VIEW);
	}
	if (strcmp(verb, "verify") != 0)
		return bad_verb(a, verb, verbs, 2);
	if ((rc = only(a, BIT(OPT_ROOT))) != 0 ||
	    (rc = one_arg(a, rest, n, "the custody chain FILE (devid custody get)")) != 0)
		return rc;
	if (a->opt[OPT_ROOT] == NULL)
		return usage(a, "needs --root PEM (devid's custody public key)");
	if (custody_roots(a, a->opt[OPT_ROOT], roots, &nroots) != 0)
		return 1;
	rc = 1;
	devid_error_clear(&e);
	if (file_read_all(rest[0], MAX_CUSTODY_SIZE, &buf, &len, &e) != 0) {
		fprintf(stderr, "devid %s: %s\n", a->cmd, e.msg);
		goto out;
	}
	if (custody_verify(buf, len, roots, nroots, &sum, &e) != 0) {
		fprintf(stderr, "devid %s: %s: invalid: %s\n", a->cmd, rest[0], e.msg);
		goto out;
	}
	if (!a->quiet)
		printf("%s/%s: %zu records verify; the owner is %s\n", sum.vendor, sum.batch,
		    sum.records, sum.owner);
	rc = 0;
out:
	for (size_t i = 0; i < nroots; i++)
		EVP_PKEY_free(roots[i]);
	free(buf);
	return rc;
}

/* --- the table of commands ------------------------------------------------------------ */

struct command {
	const char *name, *singular;
	int (*run)(struct client_args *a, char **rest, int n);
	uint64_t opts; /* the options of all its forms; each form checks its own with only() */
	const char *usage;
};

static const struct command commands[] = {
    {"claim", NULL, run_claim, 0,
	"usage: devid claim CODE\n"
	"Claims a batch with the code of its reel's QR label (DEVID1:VENDOR:BATCH:...).\n"},
    {"batches", "batch", run_batches, 0, "usage: devid batches\nYour batches.\n"},
    {"devices", NULL, run_devices,
	BIT(OPT_BATCH) | BIT(OPT_STATE) | BIT(OPT_SEARCH) | BIT(OPT_AFTER) | BIT(OPT_LIMIT),
	"usage: devid devices [--batch V/B] [--state active|revoked] [--search TEXT]\n"
	"                     [--after CURSOR] [--limit N]\n"
	"Your devices, a page at a time (--limit, at most 1000); --search finds chip serials\n"
	"starting with TEXT, or UDIDs when it is 4 hex digits or more. The next page's\n"
	"--after is printed on stderr.\n"},
    {"device", NULL, run_device, 0,
	"usage: devid device UDID|SERIAL\n"
	"One device with its birth certificate, clouds and operational certificates, by its\n"
	"UDID or, failing that, by its exact chip serial.\n"},
    {"manifest", NULL, run_batch_action, BIT(OPT_FORMAT) | BIT(OPT_OUT),
	"usage: devid manifest V/B [--format json|pem|csv] [--out FILE]\n"
	"A batch's manifest: json, the vendor's signed entries (devid import takes it back),\n"
	"pem, the birth certificates, or csv (device_id,group_id,certificate) for\n"
	"spreadsheets and clouds; a CSV has no signatures and cannot be imported.\n"},
    {"revoke", NULL, run_revoke, BIT(OPT_REASON),
	"usage: devid revoke UDID|SERIAL [--reason R]\n"
	"Revokes a device. R is an RFC 5280 reason: unspecified (default), keyCompromise,\n"
	"affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn.\n"},
    {"transfer", NULL, run_batch_action, 0,
	"usage: devid transfer V/B\nStarts a transfer: prints the next owner's claim code.\n"},
    {"release", NULL, run_batch_action, 0,
	"usage: devid release V/B\nReturns a batch to unclaimed.\n"},
    {"custody", NULL, run_custody, BIT(OPT_ROOT),
	"usage: devid custody get V/B\n"
	"       devid custody verify FILE --root PEM\n"
	"get: a batch's chain of custody, its signed ownership records (your batch, or as its\n"
	"vendor). verify: checks a chain offline (docs/custody.md): each record's signatures,\n"
	"its link to the record before and its owners. PEM holds devid's custody public key\n"
	"(a PUBLIC KEY or CERTIFICATE; several for keys used over time). Exit status 0 when the\n"
	"chain verifies, 1 naming the first record that does not and why.\n"},
    {"import", NULL, run_import, BIT(OPT_BATCH) | BIT(OPT_PAGE_SIZE) | BIT(OPT_RESTART),
	"usage: devid import --batch NAME [--page-size N] [--restart] FILE\n"
	"Imports the manifest FILE of a vendor outside devid, JSON or its XML form\n"
	"(docs/xml-manifest.md), or a batch exported with devid manifest V/B --format json,\n"
	"as your batch YOURTENANT/NAME. Needs your own\n"
	"trust of its signer (devid trust add). A CSV export is refused: it has no signatures.\n"
	"FILE is read from disk a page at a time (--page-size entries, default 500) and sent\n"
	"as an upload; an interrupted import resumes where it stopped when run again\n"
	"(--restart: start afresh). Progress on a terminal.\n"},
    {"audit", NULL, run_audit, BIT(OPT_AFTER),
	"usage: devid audit [list] [--after SEQ]\n"
	"       devid audit verify\n"
	"list: your tenant's audit records, a page at a time. verify: recomputes the hash chain;\n"
	"exit status 1 when it is broken.\n"},
    {"jobs", "job", run_jobs, BIT(OPT_STATE) | BIT(OPT_STATUS) | BIT(OPT_AFTER),
	"usage: devid jobs [list] [--state pending|done|dead]\n"
	"       devid jobs devices ID [--status ok|failed] [--after UDID]\n"
	"list: the delivery jobs into your product clouds. devices: each device's last outcome\n"
	"in job ID, with the cloud's message when it failed.\n"},
    {"connectors", "connector", run_connectors, CONNECTOR_FLAGS,
	"usage: devid connectors [list]\n"
	"       devid connectors show NAME\n"
	"       devid connectors add NAME --type T [--mode auto|manual] [--url URL]\n"
	"                            [--secret-file F] [--rate N] [--file CONNECTOR.json]\n"
	"       devid connectors put NAME --type T --mode auto|manual (the same options)\n"
	"       devid connectors delete NAME\n"
	"       devid connectors test NAME\n"
	"Product clouds: T is webhook, cirrent, aws-iot, azure-dps or mosquitto. --file holds\n"
	"the connector as the API takes it ({\"type\",\"mode\",\"config\":{...}}, "
	"docs/connectors.md);\n"
	"the flags set type, mode, config.url, config.secret (the file's first line) and\n"
	"config.ratePerSecond over it. add refuses a name that exists; put replaces (a secret\n"
	"left out is kept). test asks the cloud something harmless: exit status 1 when it "
	"failed.\n"},
    {"provision", NULL, run_provision, BIT(OPT_CONNECTOR) | BIT(OPT_BATCH),
	"usage: devid provision --connector NAME --batch V/B\n"
	"       devid provision --connector NAME UDID...\n"
	"Queues pushes of a batch or of devices into a connector (devid jobs shows them).\n"},
    {"quota", NULL, run_quota, BIT(OPT_MAX),
	"usage: devid quota [show]\n"
	"       devid quota set --max N|none\n"
	"How many of your devices may hold an operational certificate.\n"},
    {"clone-policy", NULL, run_clone_policy, BIT(OPT_MODE) | BIT(OPT_FILE),
	"usage: devid clone-policy [show]\n"
	"       devid clone-policy set [--mode off|flag|quarantine] [--file POLICY.json]\n"
	"What your tenant does with a device suspected of being cloned (docs/clone-detection.md):\n"
	"off, flag, or quarantine (revoke it, keyCompromise). --file holds the policy as the API\n"
	"takes it ({\"window\":300,\"minReturns\":2,...}); members left out take their "
	"defaults.\n"},
    {"suspicions", "suspicion", run_suspicions, BIT(OPT_AFTER),
	"usage: devid suspicions [--after ID]\n"
	"Your devices suspected of being cloned, oldest first, with the rule and what it saw.\n"},
    {"tokens", "token", run_tokens, BIT(OPT_NAME) | BIT(OPT_ROLE) | BIT(OPT_EXPIRES),
	"usage: devid tokens [list]\n"
	"       devid tokens add --name N --role admin|operator [--expires 90d|RFC3339]\n"
	"       devid tokens revoke ID|NAME\n"
	"Your tenant's API tokens; add shows the new secret once.\n"},
    {"trust", NULL, run_trust, BIT(OPT_ROOT) | BIT(OPT_SIGNER),
	"usage: devid trust [list]\n"
	"       devid trust add --root ROOT.pem --signer SIGNER.pem\n"
	"       devid trust remove ID\n"
	"Your own trust of a manifest signer outside devid, for imports.\n"},
    {"vendor", NULL, run_publish, BIT(OPT_PAGE_SIZE) | BIT(OPT_RESTART),
	"usage: devid vendor publish [--page-size N] [--restart] OUT\n"
	"Publishes the reel OUT of devid vendor mint (a vendor token): OUT/manifest.json (or\n"
	"OUT/manifest.xml, the XML form: checked whole first, then sent as the JSON entries\n"
	"it carries) is read from disk a page at a time (--page-size entries, default 500) and "
	"sent as an\n"
	"upload, which the server checks page by page and makes visible whole at the end. An\n"
	"interrupted publish resumes where it stopped when run again (--restart: start\n"
	"afresh). Progress on a terminal.\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *
find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(name, commands[i].name) == 0 ||
		    (commands[i].singular != NULL && strcmp(name, commands[i].singular) == 0))
			return &commands[i];
	return NULL;
}

int
client_is_command(const char *name)
{
	return strcmp(name, "vendor") != 0 && find_command(name) != NULL;
}

int
cmd_client(int argc, char **argv)
{
	struct client_args a = {.c = {.server = getenv("DEVID_SERVER"),
				    .token = getenv("DEVID_TOKEN"),
				    .cacert = getenv("DEVID_CACERT")}};
	const struct command *cmd = find_command(argv[0]);
	int c;

	snprintf(a.cmd, sizeof(a.cmd), "%s",
	    strcmp(cmd->name, "vendor") == 0 ? "vendor publish" : cmd->name);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ho:q", client_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			c = OPT_HELP;
			break;
		case 'o':
			c = OPT_OUTPUT;
			break;
		case 'q':
			c = OPT_QUIET;
			break;
		case '?':
		case ':':
			return cli_bad_option(a.cmd, c, argv);
		}
		if (c == OPT_HELP) {
			fputs(cmd->usage, stdout);
			fputs(global_help, stdout);
			return 0;
		}
		a.given |= BIT(c);
		a.opt[c] = optarg;
	}
	if (a.opt[OPT_SERVER] != NULL)
		a.c.server = a.opt[OPT_SERVER];
	if (a.opt[OPT_TOKEN] != NULL)
		a.c.token = a.opt[OPT_TOKEN];
	if (a.opt[OPT_CACERT] != NULL)
		a.c.cacert = a.opt[OPT_CACERT];
	if (a.opt[OPT_OUTPUT] != NULL && output_parse(a.opt[OPT_OUTPUT], &a.output) != 0)
		return cli_usage(a.cmd, "--output '%s': expected json or table", a.opt[OPT_OUTPUT]);
	a.quiet = (a.given & BIT(OPT_QUIET)) != 0;
	if ((c = only(&a, cmd->opts)) != 0)
		return c;
	/* uploads of reels and manifests show their progress on a terminal */
	a.c.progress = !a.quiet && isatty(STDERR_FILENO) &&
	    (cmd->run == run_publish || cmd->run == run_import);
	return cmd->run(&a, argv + optind, argc - optind);
}
