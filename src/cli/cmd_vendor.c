/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lib/error.h"
#include "factory/factory.h"
#include "lib/banned.h"

static const char vendor_usage[] =
    "usage: devid vendor init   --dir DIR --vendor NAME\n"
    "       devid vendor mint   --dir DIR --batch ID --count N --out OUT [--keep-keys K]\n"
    "                           [--threads T] [--part PART] [--format json|xml] [--quiet]\n"
    "       devid vendor mint   --dir DIR --batch ID --out OUT --chain CHAIN.pem\n"
    "                           --from-ek FILE|DIR [FILE|DIR...] [--part PART]\n"
    "                           [--format json|xml]\n"
    "       devid vendor verify OUT --root ROOT.pem --signer SIGNER.pem [--threads T]\n"
    "                           [--json | -o json|table] [--quiet]\n"
    "       devid vendor convert IN OUT [--format json|xml]\n"
    "       devid vendor publish OUT    (devid vendor publish --help)\n"
    "\n"
    "init    creates DIR/root.pem, DIR/issuing.pem, DIR/signer.pem and their keys (0600):\n"
    "        the vendor root CA, the issuing CA that signs birth certificates, and the\n"
    "        manifest signer. NAME matches [A-Z0-9.-]{1,64}.\n"
    "mint    makes a reel of N chips in OUT: manifest.json, batch.json, claim.txt,\n"
    "        claim.png, and chips/<udid>.pem/.key for the first K chips (default 3).\n"
    "        Uses every core unless --threads says otherwise.\n"
    "        With --from-ek, a reel of TPMs from their EK certificates instead (PEM or DER\n"
    "        files, or directories of them): each must meet the TCG EK profile and be\n"
    "        issued by the first certificates of CHAIN.pem (the EK CA, then any\n"
    "        cross-certificates), which go into each entry's x5c.\n"
    "        --format xml writes the manifest as manifest.xml, the XML form\n"
    "        (docs/xml-manifest.md, schema/manifest.xsd), instead of manifest.json.\n"
    "verify  checks a reel exactly as `devid serve` does on ingest and prints a reason\n"
    "        for every rejected entry. Exit status 0 only if the whole reel is accepted.\n"
    "        --json (-o json) prints the report as JSON. OUT holds manifest.json or\n"
    "        manifest.xml; both forms are checked alike.\n"
    "convert writes the manifest IN in the other form as OUT (which must not exist):\n"
    "        --format xml or json, or by OUT's extension (.xml, .json). The signed\n"
    "        strings are carried unchanged, so OUT verifies exactly as IN does; a\n"
    "        manifest minted as JSON, converted to XML and back, is the same bytes.\n"
    "On a terminal, mint and verify show their progress on stderr; --quiet (-q) hides it:\n"
    "only results (mint's summary line and claim code, verify's report) and errors.\n";

/* Files and directories one mint --from-ek takes (a directory holds any number). */
#define MAX_EK_INPUTS 256

/* A usage error on one line (printf-style fmt). */
#define usage_error(...) cli_usage("vendor", __VA_ARGS__)

static int
parse_count(const char *s, size_t min, size_t max, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (size_t)v;
	return 0;
}

enum {
	OPT_DIR = 1,
	OPT_VENDOR,
	OPT_BATCH,
	OPT_COUNT,
	OPT_OUT,
	OPT_KEEP,
	OPT_THREADS,
	OPT_PART,
	OPT_ROOT,
	OPT_SIGNER,
	OPT_QUIET,
	OPT_JSON,
	OPT_OUTPUT,
	OPT_FROM_EK,
	OPT_CHAIN,
	OPT_FORMAT,
	OPT_HELP
};

static const struct option vendor_opts[] = {
    {"dir", required_argument, NULL, OPT_DIR},
    {"vendor", required_argument, NULL, OPT_VENDOR},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"count", required_argument, NULL, OPT_COUNT},
    {"out", required_argument, NULL, OPT_OUT},
    {"keep-keys", required_argument, NULL, OPT_KEEP},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"part", required_argument, NULL, OPT_PART},
    {"root", required_argument, NULL, OPT_ROOT},
    {"signer", required_argument, NULL, OPT_SIGNER},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"json", no_argument, NULL, OPT_JSON},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"from-ek", required_argument, NULL, OPT_FROM_EK},
    {"chain", required_argument, NULL, OPT_CHAIN},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct vendor_args {
	const char *dir, *vendor, *batch, *out, *part, *root, *signer, *chain;
	const char *format; /* --format: "json" or "xml"; NULL when not given */
	const char *ek[MAX_EK_INPUTS]; /* --from-ek, then the other arguments of mint */
	size_t nek;
	size_t count, keep;
	size_t threads;
	bool have_count, quiet, json;
};

static void
mint_progress(size_t done, size_t total, void *arg)
{
	(void)arg;
	fprintf(stderr, "\rminting: %zu/%zu chips (%zu%%)", done, total, done * 100 / total);
	if (done == total)
		fputc('\n', stderr);
}

static void
verify_progress(const char *stage)
{
	fprintf(stderr, "\rverifying: %-60s", stage);
}

static int
vendor_init_main(const struct vendor_args *a)
{
	struct devid_error e;

	devid_error_clear(&e);
	if (a->dir == NULL || a->vendor == NULL)
		return usage_error("init needs --dir and --vendor");
	if (vendor_init(a->dir, a->vendor, &e) != 0) {
		fprintf(stderr, "devid vendor init: %s\n", e.msg);
		return 1;
	}
	if (!a->quiet)
		printf("vendor %s: root CA, issuing CA and manifest signer written to %s\n",
		    a->vendor, a->dir);
	return 0;
}

static int
vendor_mint_main(const struct vendor_args *a)
{
	struct mint_opts o = {
	    .dir = a->dir,
	    .batch = a->batch,
	    .out = a->out,
	    .part_number = a->part,
	    .count = a->count,
	    .keep_keys = a->keep,
	    .threads = a->threads ? (int)a->threads : cli_ncpus(),
	    .xml = a->format != NULL && strcmp(a->format, "xml") == 0,
	};
	struct mint_result res;
	struct devid_error e;

	devid_error_clear(&e);
	if (a->dir == NULL || a->batch == NULL || !a->have_count || a->out == NULL)
		return usage_error("mint needs --dir, --batch, --count and --out");
	if (!a->quiet && isatty(STDERR_FILENO) && a->count >= 1000)
		o.progress = mint_progress;
	if (vendor_mint(&o, &res, &e) != 0) {
		fprintf(stderr, "devid vendor mint: %s\n", e.msg);
		return 1;
	}
	printf("minted %zu chips of batch %s in %.2f s (%.0f chips/s, %d thread%s) into %s\n",
	    a->count, a->batch, res.seconds, (double)a->count / res.seconds, o.threads,
	    o.threads == 1 ? "" : "s", a->out);
	printf("claim code: %s\n", res.claim);
	return 0;
}

static int
vendor_mint_ek_main(const struct vendor_args *a)
{
	struct mint_ek_opts o = {
	    .dir = a->dir,
	    .batch = a->batch,
	    .out = a->out,
	    .part_number = a->part,
	    .chain = a->chain,
	    .inputs = a->ek,
	    .ninputs = a->nek,
	    .xml = a->format != NULL && strcmp(a->format, "xml") == 0,
	};
	struct mint_result res;
	struct devid_error e;

	devid_error_clear(&e);
	if (a->dir == NULL || a->batch == NULL || a->out == NULL || a->chain == NULL)
		return usage_error("mint --from-ek needs --dir, --batch, --out and --chain");
	if (a->have_count)
		return usage_error("mint --from-ek takes no --count: one TPM per EK certificate");
	if (vendor_mint_ek(&o, &res, &e) != 0) {
		fprintf(stderr, "devid vendor mint: %s\n", e.msg);
		return 1;
	}
	printf("minted %zu TPMs of batch %s from their EK certificates into %s\n", res.count,
	    a->batch, a->out);
	printf("claim code: %s\n", res.claim);
	return 0;
}

static int
vendor_verify_main(const struct vendor_args *a)
{
	struct reel_report r;
	struct devid_error e;
	const struct manifest_report *m = &r.manifest;
	bool progress;
	int rc;

	devid_error_clear(&e);
	if (a->out == NULL || a->root == NULL || a->signer == NULL)
		return usage_error("verify needs OUT, --root and --signer");
	progress = !a->quiet && isatty(STDERR_FILENO);
	rc = reel_verify(a->out, a->root, a->signer, a->threads ? (int)a->threads : cli_ncpus(),
	    progress ? verify_progress : NULL, &r, &e);
	if (progress)
		fprintf(stderr, "\rverifying: %-60s\n", "done");
	if (!r.checked) {
		fprintf(stderr, "devid vendor verify: %s\n", e.msg);
		reel_report_release(&r);
		return 1;
	}
	if (a->json) {
		json_t *j = manifest_report_json(m);

		if (j == NULL) {
			fprintf(stderr, "devid vendor verify: out of memory\n");
			reel_report_release(&r);
			return 1;
		}
		json_object_set_new(
		    j, "claimError", r.claim_error[0] ? json_string(r.claim_error) : json_null());
		json_object_set_new(j, "verdict", json_string(rc == 0 ? "ACCEPTED" : "REJECTED"));
		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
	} else {
		for (size_t i = 0; i < m->nrejects; i++)
			printf("rejected: %s%s%s\n", m->rejects[i].message,
			    m->rejects[i].unique_id[0] ? " uniqueId=" : "",
			    m->rejects[i].unique_id);
		if (m->rejected > m->nrejects)
			printf(
			    "rejected: %zu more entries not listed\n", m->rejected - m->nrejects);
		if (m->batch_error[0])
			printf("rejected batch: %s\n", m->batch_error);
		if (r.claim_error[0])
			printf("rejected claim: %s\n", r.claim_error);
		printf("reel %s/%s: %zu entries, %zu accepted, %zu rejected: %s\n", r.vendor,
		    r.batch, m->total, m->accepted, m->rejected, rc == 0 ? "ACCEPTED" : "REJECTED");
	}
	reel_report_release(&r);
	return rc == 0 ? 0 : 1;
}

static bool
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && strcmp(s + n - t, tail) == 0;
}

static int
vendor_convert_main(const struct vendor_args *a, const char *in, const char *out)
{
	struct devid_error e;
	bool xml;

	devid_error_clear(&e);
	if (a->format != NULL)
		xml = strcmp(a->format, "xml") == 0;
	else if (ends_with(out, ".xml") || ends_with(out, ".json"))
		xml = ends_with(out, ".xml");
	else
		return usage_error(
		    "convert: say --format json or xml (OUT ends in neither .json nor "
		    ".xml)");
	if (manifest_file_convert(in, out, xml, &e) != 0) {
		fprintf(stderr, "devid vendor convert: %s\n", e.msg);
		return 1;
	}
	if (!a->quiet)
		printf("%s: the manifest %s in its %s form\n", out, in, xml ? "XML" : "JSON");
	return 0;
}

int
cmd_vendor(int argc, char **argv)
{
	struct vendor_args a = {.keep = 3};
	const char *sub;
	char **rest;
	int c, n;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hqo:", vendor_opts, NULL)) != -1) {
		switch (c) {
		case OPT_DIR:
			a.dir = optarg;
			break;
		case OPT_VENDOR:
			a.vendor = optarg;
			break;
		case OPT_BATCH:
			a.batch = optarg;
			break;
		case OPT_COUNT:
			if (parse_count(optarg, 1, MAX_BATCH_COUNT, &a.count) != 0)
				return usage_error("--count \"%s\": expected 1 to 1000000", optarg);
			a.have_count = true;
			break;
		case OPT_OUT:
			a.out = optarg;
			break;
		case OPT_KEEP:
			if (parse_count(optarg, 0, MAX_BATCH_COUNT, &a.keep) != 0)
				return usage_error("--keep-keys \"%s\": expected a number", optarg);
			break;
		case OPT_THREADS:
			if (parse_count(optarg, 1, 64, &a.threads) != 0)
				return usage_error("--threads \"%s\": expected 1 to 64", optarg);
			break;
		case OPT_PART:
			a.part = optarg;
			break;
		case OPT_ROOT:
			a.root = optarg;
			break;
		case OPT_CHAIN:
			a.chain = optarg;
			break;
		case OPT_FROM_EK:
			if (a.nek == MAX_EK_INPUTS)
				return usage_error(
				    "--from-ek: at most %d files or directories", MAX_EK_INPUTS);
			a.ek[a.nek++] = optarg;
			break;
		case OPT_SIGNER:
			a.signer = optarg;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "xml") != 0)
				return usage_error("--format '%s': expected json or xml", optarg);
			a.format = optarg;
			break;
		case 'q':
		case OPT_QUIET:
			a.quiet = true;
			break;
		case OPT_JSON:
			a.json = true;
			break;
		case 'o':
		case OPT_OUTPUT:
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0)
				return usage_error("--output '%s': expected json or table", optarg);
			a.json = strcmp(optarg, "json") == 0;
			break;
		case 'h':
		case OPT_HELP:
			fputs(vendor_usage, stdout);
			return 0;
		default:
			return cli_bad_option("vendor", c, argv);
		}
	}
	rest = argv + optind;
	n = argc - optind;
	if (n == 0)
		return usage_error(
		    "missing the subcommand: init, mint, verify, convert or publish");
	sub = rest[0];
	if (strcmp(sub, "init") == 0 && n == 1)
		return vendor_init_main(&a);
	if (strcmp(sub, "mint") == 0 && n == 1 && a.nek == 0)
		return vendor_mint_main(&a);
	if (strcmp(sub, "mint") == 0 && a.nek > 0) {
		for (int i = 1; i < n; i++) {
			if (a.nek == MAX_EK_INPUTS)
				return usage_error(
				    "--from-ek: at most %d files or directories", MAX_EK_INPUTS);
			a.ek[a.nek++] = rest[i];
		}
		return vendor_mint_ek_main(&a);
	}
	if (strcmp(sub, "verify") == 0 && n <= 2) {
		a.out = n == 2 ? rest[1] : NULL;
		return vendor_verify_main(&a);
	}
	if (strcmp(sub, "convert") == 0) {
		if (n != 3)
			return usage_error("convert needs IN and OUT");
		return vendor_convert_main(&a, rest[1], rest[2]);
	}
	if (strcmp(sub, "init") != 0 && strcmp(sub, "mint") != 0 && strcmp(sub, "verify") != 0) {
		static const char *const subs[] = {"init", "mint", "verify", "convert", "publish"};
		const char *near = cli_suggest(sub, subs, 5);

		if (near != NULL)
			return usage_error(
			    "unknown subcommand \"%s\" (did you mean '%s'?)", sub, near);
		return usage_error("unknown subcommand \"%s\"", sub);
	}
	/* init and mint take no positional argument; verify takes one */
	return usage_error("unexpected argument \"%s\"", rest[1 + (sub[0] == 'v')]);
}
