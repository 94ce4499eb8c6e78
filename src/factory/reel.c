/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/claim.h"
#include "lib/dynbuf.h"
#include "lib/manifest_xml.h"
#include "lib/x509.h"
#include "factory/factory.h"
#include "lib/banned.h"

void
reel_report_release(struct reel_report *r)
{
	manifest_report_release(&r->manifest);
	memset(r, 0, sizeof(*r));
}

/* claim.txt holds the code and one line end; its hash must be the descriptor's. */
static void
check_claim(const char *dir, const struct batch_descriptor *d, struct reel_report *r)
{
	char path[PATH_MAX], hash[65];
	struct claim_code c;
	struct devid_error e;
	uint8_t *buf = NULL;
	size_t len;

	devid_error_clear(&e);
	snprintf(path, sizeof(path), "%s/claim.txt", dir);
	if (file_read_all(path, MAX_CLAIM_TEXT_LEN + 2, &buf, &len, &e) != 0) {
		snprintf(r->claim_error, sizeof(r->claim_error), "%s", e.msg);
		return;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (claim_code_parse(buf, len, &c, &e) != 0)
		snprintf(r->claim_error, sizeof(r->claim_error), "claim.txt: %s", e.msg);
	else if (strcmp(c.vendor, d->vendor) != 0 || strcmp(c.batch, d->batch_id) != 0)
		snprintf(r->claim_error, sizeof(r->claim_error),
		    "claim.txt: names %s/%s but the descriptor is for %s/%s", c.vendor, c.batch,
		    d->vendor, d->batch_id);
	else {
		claim_code_hash(c.text, strlen(c.text), hash);
		if (strcmp(hash, d->claim_sha256) != 0)
			snprintf(r->claim_error, sizeof(r->claim_error),
			    "claim.txt: SHA-256 of the code differs from the descriptor's "
			    "claimSha256 (claim hash mismatch)");
	}
	OPENSSL_cleanse(&c, sizeof(c));
	OPENSSL_cleanse(buf, len);
	free(buf);
}

int
reel_verify(const char *dir, const char *root_pem, const char *signer_pem, int threads,
    void (*progress)(const char *stage), struct reel_report *r, struct devid_error *e)
{
	char stage[128];
	STACK_OF(X509) *roots = NULL, *signers = NULL;
	struct vendor_trust *t = NULL;
	struct batch_descriptor *d = NULL;
	struct manifest *m = NULL;
	uint8_t *buf = NULL;
	size_t len;
	char path[PATH_MAX];
	const char *name;
	struct dynbuf json = {0};
	bool xml;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((roots = x509_load_pem_file_all(root_pem, e)) == NULL ||
	    (signers = x509_load_pem_file_all(signer_pem, e)) == NULL ||
	    (t = vendor_trust_new(roots, signers, e)) == NULL) {
		rc = DEVID_EINVAL;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/batch.json", dir);
	if ((rc = file_read_all(path, MAX_DESCRIPTOR_SIZE, &buf, &len, e)) != 0)
		goto out;
	if ((rc = batch_descriptor_parse(buf, len, &d, e)) != 0) {
		devid_error_prefix(e, "%s", path);
		goto out;
	}
	free(buf);
	buf = NULL;
	snprintf(r->vendor, sizeof(r->vendor), "%s", d->vendor);
	snprintf(r->batch, sizeof(r->batch), "%s", d->batch_id);
	if ((rc = reel_manifest_path(dir, path, sizeof(path), &xml, e)) != 0)
		goto out;
	name = xml ? "manifest.xml" : "manifest.json";
	if (progress != NULL) {
		snprintf(stage, sizeof(stage), "reading %s", name);
		progress(stage);
	}
	if ((rc = file_read_all(path, MAX_MANIFEST_SIZE, &buf, &len, e)) != 0)
		goto out;
	if (xml) {
		/* the XML form becomes the JSON entries it carries; those are checked */
		if (progress != NULL) {
			snprintf(stage, sizeof(stage), "reading %zu bytes of XML", len);
			progress(stage);
		}
		dynbuf_init(&json, MAX_MANIFEST_SIZE);
		if ((rc = manifest_xml_to_json(buf, len, &json, e)) != 0) {
			devid_error_prefix(e, "%s", path);
			goto out;
		}
		free(buf);
		buf = dynbuf_detach(&json, &len);
	}
	if (progress != NULL) {
		snprintf(stage, sizeof(stage), "parsing %zu bytes of %s", len, name);
		progress(stage);
	}
	if ((rc = manifest_parse_mt(buf, len, threads, &m, &r->manifest, e)) != 0) {
		devid_error_prefix(e, "%s", path);
		goto out;
	}
	free(buf);
	buf = NULL;
	if (progress != NULL) {
		snprintf(stage, sizeof(stage), "checking %zu entries on %d thread%s",
		    r->manifest.total, threads, threads == 1 ? "" : "s");
		progress(stage);
	}
	rc = manifest_check_batch(m, d, NULL, t, threads, &r->manifest);
	r->checked = true;
	check_claim(dir, d, r);
	if (rc == 0 && r->claim_error[0] != '\0')
		rc = DEVID_EINVAL;
out:
	free(buf);
	dynbuf_release(&json);
	manifest_free(m);
	batch_descriptor_free(d);
	vendor_trust_free(t);
	sk_X509_pop_free(roots, X509_free);
	sk_X509_pop_free(signers, X509_free);
	return rc;
}
