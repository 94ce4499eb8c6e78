#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "client.h"
#include "lib/json.h"
#include "lib/limits.h"
#include "lib/x509.h"
#include "lib/banned.h"

static const char client_usage[] =
    "usage: devid [--server URL] [--token TOKEN] [--cacert PEM] <command>\n"
    "  claim CODE                         claim a batch with the code of its QR label\n"
    "  batches                            your batches\n"
    "  devices [--batch V/B] [--state S] [--after C] [--limit N]   your devices\n"
    "  device UDID                        one device\n"
    "  manifest V/B [--format json|pem|csv] [--out FILE]   a batch's manifest file\n"
    "  revoke UDID [--reason R]           revoke a device; R is an RFC 5280 reason:\n"
    "                                     unspecified (default), keyCompromise,\n"
    "                                     affiliationChanged, superseded,\n"
    "                                     cessationOfOperation, privilegeWithdrawn\n"
    "  transfer V/B                       start a transfer: prints the next owner's code\n"
    "  release V/B                        return a batch to unclaimed\n"
    "  import --batch NAME FILE           import a manifest of a vendor outside devid as your\n"
    "                                     batch YOURTENANT/NAME (needs your own trust of its\n"
    "                                     signer: POST /api/v1/trust)\n"
    "  vendor publish OUT                 (vendor token) publish a minted reel\n"
    "--server, --token and --cacert default to $DEVID_SERVER, $DEVID_TOKEN and $DEVID_CACERT\n"
    "(--cacert: the CA of an https server's certificate, when not the system's).\n";

struct client_args {
	struct client c;
	const char *batch, *state, *after, *limit, *format, *out;
	const char *reason; /* revoke */
};

enum {
	OPT_SERVER = 1,
	OPT_TOKEN,
	OPT_CACERT,
	OPT_BATCH,
	OPT_STATE,
	OPT_AFTER,
	OPT_LIMIT,
	OPT_FORMAT,
	OPT_OUT,
	OPT_REASON,
	OPT_HELP
};

static const struct option client_opts[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"state", required_argument, NULL, OPT_STATE},
    {"after", required_argument, NULL, OPT_AFTER},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"out", required_argument, NULL, OPT_OUT},
    {"reason", required_argument, NULL, OPT_REASON},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Runs one request; prints a JSON answer to stdout (or raw to `out`), errors to stderr. */
static int
call(const struct client_args *a, const char *cmd, const char *method, const char *path,
    const char *body, size_t len, bool raw)
{
	struct devid_error e;
	struct dynbuf resp;
	long status;
	json_t *j;
	FILE *f;
	int rc = 1;

	devid_error_clear(&e);
	dynbuf_init(&resp, CLIENT_MAX_RESPONSE);
	if (client_request(&a->c, method, path, body, len, &status, &resp, &e) != 0) {
		fprintf(stderr, "devid %s: %s\n", cmd, e.msg);
		goto out;
	}
	if (status < 200 || status > 299) {
		client_print_error(cmd, status, &resp);
		/* a rejected batch comes with its report: show it */
		if ((j = json_loadb((const char *)resp.p, resp.len, 0, NULL)) != NULL &&
		    json_object_get(j, "report") != NULL)
			json_dumpf(json_object_get(j, "report"), stdout, JSON_INDENT(2));
		json_decref(j);
		goto out;
	}
	if (raw) {
		f = a->out != NULL ? fopen(a->out, "wb") : stdout;
		if (f == NULL || fwrite(resp.p, 1, resp.len, f) != resp.len) {
			fprintf(
			    stderr, "devid %s: cannot write %s\n", cmd, a->out ? a->out : "stdout");
			goto out;
		}
		if (f != stdout)
			fclose(f);
	} else if ((j = json_loadb((const char *)resp.p, resp.len, 0, NULL)) != NULL) {
		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
	} else {
		fwrite(resp.p, 1, resp.len, stdout);
	}
	rc = 0;
out:
	dynbuf_release(&resp);
	return rc;
}

/* POST .../revoke with {"reason": R} when --reason is given (the server checks R). */
static int
revoke_device(const struct client_args *a, const char *path)
{
	json_t *body = a->reason != NULL ? json_pack("{s:s}", "reason", a->reason) : json_object();
	char *text = body != NULL ? json_dump_compact(body) : NULL;
	int rc = text != NULL ? call(a, "revoke", "POST", path, text, strlen(text), false) : 1;

	free(text);
	json_decref(body);
	return rc;
}

/* V/B as vendor and batch, both [A-Z0-9.-]{1,64}, escaped for a URL path. */
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

static int
usage_fail(const char *msg)
{
	fprintf(stderr, "devid: %s\n\n%s", msg, client_usage);
	return EXIT_USAGE;
}

static int
publish(const struct client_args *a, const char *dir)
{
	uint8_t *desc = NULL, *man = NULL;
	size_t dlen, mlen;
	char path[4096];
	struct dynbuf body;
	struct devid_error e;
	int rc = 1;

	devid_error_clear(&e);
	dynbuf_init(&body, (size_t)MAX_MANIFEST_SIZE + MAX_DESCRIPTOR_SIZE + 64);
	snprintf(path, sizeof(path), "%s/batch.json", dir);
	if (file_read_all(path, MAX_DESCRIPTOR_SIZE, &desc, &dlen, &e) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	if (file_read_all(path, MAX_MANIFEST_SIZE, &man, &mlen, &e) != 0)
		goto fail;
	/* the files are sent as they are: the server verifies the bytes the vendor signed */
	if (dynbuf_addstr(&body, "{\"descriptor\":") != 0 || dynbuf_add(&body, desc, dlen) != 0 ||
	    dynbuf_addstr(&body, ",\"manifest\":") != 0 || dynbuf_add(&body, man, mlen) != 0 ||
	    dynbuf_addstr(&body, "}") != 0) {
		devid_error_set(&e, DEVID_ENOMEM, "out of memory");
		goto fail;
	}
	rc = call(a, "vendor publish", "POST", "/api/v1/vendor/batches", (const char *)body.p,
	    body.len, false);
	goto out;
fail:
	fprintf(stderr, "devid vendor publish: %s\n", e.msg);
out:
	free(desc);
	free(man);
	dynbuf_release(&body);
	return rc;
}

static int
import_file(const struct client_args *a, const char *file)
{
	uint8_t *man = NULL;
	size_t mlen;
	char path[256];
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	if (a->batch == NULL ||
	    strspn(a->batch, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(a->batch))
		return usage_fail("import needs --batch NAME ([A-Z0-9.-]{1,64})");
	if (file_read_all(file, MAX_MANIFEST_SIZE, &man, &mlen, &e) != 0) {
		fprintf(stderr, "devid import: %s\n", e.msg);
		return 1;
	}
	snprintf(path, sizeof(path), "/api/v1/imports?batch=%s", a->batch);
	rc = call(a, "import", "POST", path, (const char *)man, mlen, false);
	free(man);
	return rc;
}

int
cmd_client(int argc, char **argv)
{
	struct client_args a = {.c = {.server = getenv("DEVID_SERVER"),
				    .token = getenv("DEVID_TOKEN"),
				    .cacert = getenv("DEVID_CACERT")}};
	char path[1024], vendor[MAX_NAME_LEN + 1], batch[MAX_NAME_LEN + 1];
	const char *cmd;
	char **rest;
	int c, n;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", client_opts, NULL)) != -1) {
		switch (c) {
		case OPT_SERVER:
			a.c.server = optarg;
			break;
		case OPT_TOKEN:
			a.c.token = optarg;
			break;
		case OPT_CACERT:
			a.c.cacert = optarg;
			break;
		case OPT_BATCH:
			a.batch = optarg;
			break;
		case OPT_STATE:
			a.state = optarg;
			break;
		case OPT_AFTER:
			a.after = optarg;
			break;
		case OPT_LIMIT:
			a.limit = optarg;
			break;
		case OPT_FORMAT:
			a.format = optarg;
			break;
		case OPT_OUT:
			a.out = optarg;
			break;
		case OPT_REASON:
			a.reason = optarg;
			break;
		case 'h':
		case OPT_HELP:
			fputs(client_usage, stdout);
			return 0;
		default:
			return usage_fail("bad option");
		}
	}
	rest = argv + optind;
	n = argc - optind;
	cmd = argv[0];
	a.c.progress = isatty(STDERR_FILENO);
	if (strcmp(cmd, "vendor") == 0) {
		if (n != 2 || strcmp(rest[0], "publish") != 0)
			return usage_fail("usage: devid vendor publish OUT");
		return publish(&a, rest[1]);
	}
	if (strcmp(cmd, "import") == 0 && n == 1)
		return import_file(&a, rest[0]);
	a.c.progress = false;
	if (strcmp(cmd, "claim") == 0 && n == 1) {
		json_t *body = json_pack("{s:s}", "code", rest[0]);
		char *text = json_dump_compact(body);
		int rc = call(&a, cmd, "POST", "/api/v1/claims", text, strlen(text), false);

		free(text);
		json_decref(body);
		return rc;
	}
	if (strcmp(cmd, "batches") == 0 && n == 0)
		return call(&a, cmd, "GET", "/api/v1/batches", NULL, 0, false);
	if (strcmp(cmd, "devices") == 0 && n == 0) {
		snprintf(path, sizeof(path), "/api/v1/devices?batch=%s&state=%s&after=%s&limit=%s",
		    a.batch ? a.batch : "", a.state ? a.state : "", a.after ? a.after : "",
		    a.limit ? a.limit : "");
		return call(&a, cmd, "GET", path, NULL, 0, false);
	}
	if ((strcmp(cmd, "device") == 0 || strcmp(cmd, "revoke") == 0) && n == 1) {
		if (strspn(rest[0], "0123456789abcdef") != strlen(rest[0]) || strlen(rest[0]) != 64)
			return usage_fail("a UDID is 64 lowercase hex digits");
		snprintf(path, sizeof(path), "/api/v1/devices/%s%s", rest[0],
		    cmd[0] == 'r' ? "/revoke" : "");
		if (cmd[0] == 'r')
			return revoke_device(&a, path);
		return call(&a, cmd, "GET", path, NULL, 0, false);
	}
	if ((strcmp(cmd, "manifest") == 0 || strcmp(cmd, "transfer") == 0 ||
		strcmp(cmd, "release") == 0) &&
	    n == 1) {
		if (split_batch(rest[0], vendor, batch) != 0)
			return usage_fail("name a batch as VENDOR/BATCH");
		if (cmd[0] == 'm') {
			snprintf(path, sizeof(path), "/api/v1/batches/%s/%s/manifest?format=%s",
			    vendor, batch, a.format ? a.format : "json");
			return call(&a, cmd, "GET", path, NULL, 0, true);
		}
		snprintf(path, sizeof(path), "/api/v1/batches/%s/%s/%s", vendor, batch, cmd);
		return call(&a, cmd, "POST", path, "{}", 2, false);
	}
	return usage_fail("unknown command or wrong arguments");
}
