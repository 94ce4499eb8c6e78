/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "upload.h"
#include "lib/base64.h"
#include "lib/batch_descriptor.h"
#include "lib/limits.h"
#include "lib/manifest_stream.h"
#include "lib/manifest_xml.h"
#include "lib/banned.h"

/* Answers of the API other than pages (uploads, one upload with its pages, a commit). */
#define UPLOAD_MAX_ANSWER ((size_t)8 << 20)
/* XML read at a time when a manifest in the XML form is checked before an upload. */
#define XML_CHECK_CHUNK 65536
/* Seconds between two progress lines. */
#define PROGRESS_INTERVAL 0.25

/* A page the server holds: what a resumed upload skips, if the file still makes it. */
struct held_page {
	int64_t page;
	char sha256[65];
};

struct uploader {
	const struct upload_opts *o;
	char name[MAX_NAME_LEN + 1]; /* the batch */
	char ref[64];
	long page_size;
	int64_t count; /* a publish: the descriptor's count; an import: 0 */
	struct held_page *held; /* sorted by page */
	size_t nheld;
	FILE *f;
	uint64_t file_size;
	bool xml; /* the file is the XML form, read through xr */
	struct manifest_xml_reader xr;

	pthread_mutex_t lock; /* everything below, and the reading of the file */
	struct manifest_stream *ms;
	int64_t next_page;
	bool done, stop;
	bool abort; /* the server refused a page: end the upload */
	struct devid_error err;
	json_t *refusal; /* the server's answer to a refused page */
	uint64_t entries; /* entries the server holds */
	struct timespec t0, last_shown;
};

static double
seconds_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* The progress line (under the lock); final: the last one, ended. */
static void
show_progress(struct uploader *u, bool final)
{
	double secs = seconds_since(&u->t0);
	uint64_t off = u->xml ? manifest_xml_offset(u->xr.x) : manifest_stream_offset(u->ms);

	if (!u->o->progress || (!final && seconds_since(&u->last_shown) < PROGRESS_INTERVAL))
		return;
	clock_gettime(CLOCK_MONOTONIC, &u->last_shown);
	if (u->count > 0)
		fprintf(stderr, "\r%s %s: %llu of %lld entries (%.0f%%), %.0f entries/s  ",
		    u->o->import ? "importing" : "publishing", u->name,
		    (unsigned long long)u->entries, (long long)u->count,
		    100.0 * (double)u->entries / (double)u->count,
		    secs > 0 ? (double)u->entries / secs : 0);
	else
		fprintf(stderr, "\r%s %s: %llu entries, %.0f%% of the file, %.0f entries/s  ",
		    u->o->import ? "importing" : "publishing", u->name,
		    (unsigned long long)u->entries,
		    u->file_size > 0 ? 100.0 * (double)off / (double)u->file_size : 100.0,
		    secs > 0 ? (double)u->entries / secs : 0);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

static int
read_file(void *arg, uint8_t *buf, size_t cap, size_t *got, struct devid_error *e)
{
	struct uploader *u = arg;

	*got = fread(buf, 1, cap, u->f);
	if (*got == 0 && ferror(u->f))
		return devid_error_set(
		    e, DEVID_EIO, "%s: %s", u->o->manifest, strerror(errno != 0 ? errno : EIO));
	return 0;
}

/* Whether the file (at its start, where it is left) holds the XML form of a manifest. */
static bool
file_is_xml(FILE *f)
{
	uint8_t head[64];
	size_t n = fread(head, 1, sizeof(head), f);

	rewind(f);
	return manifest_is_xml(head, n);
}

/*
 * Reads the whole XML form once before anything is sent, so a document that is not a
 * manifest (a DOCTYPE, an entity, a wrong element) is refused without opening an upload.
 */
static int
xml_precheck(struct uploader *u, struct devid_error *e)
{
	struct manifest_xml *x = manifest_xml_new();
	struct dynbuf json;
	uint8_t *chunk = malloc(XML_CHECK_CHUNK);
	size_t n;
	int rc = DEVID_ENOMEM;

	dynbuf_init(&json, MAX_MANIFEST_SIZE);
	if (x == NULL || chunk == NULL) {
		devid_error_set(e, rc, "out of memory");
		goto out;
	}
	do {
		if ((rc = read_file(u, chunk, XML_CHECK_CHUNK, &n, e)) != 0)
			goto out;
		if ((rc = manifest_xml_feed(x, chunk, n, n == 0, &json, e)) != 0) {
			devid_error_prefix(e, "%s", u->o->manifest);
			goto out;
		}
		dynbuf_reset(&json);
	} while (n > 0);
	rewind(u->f);
	rc = 0;
out:
	dynbuf_release(&json);
	free(chunk);
	manifest_xml_free(x);
	return rc;
}

static void
sha256_hex(const uint8_t *p, size_t n, char hex[65])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1)
		len = 0;
	hex_encode(md, len, hex);
}

/* One request; the answer's JSON in *j (NULL when it is not JSON). */
static int
call(struct client_conn *k, const char *method, const char *path, const void *body, size_t len,
    long *status, json_t **j, struct devid_error *e)
{
	struct dynbuf resp;
	int rc;

	*j = NULL;
	dynbuf_init(&resp, UPLOAD_MAX_ANSWER);
	if ((rc = client_conn_request(k, method, path, body, len, status, &resp, e)) == 0)
		*j = json_loadb((const char *)resp.p, resp.len, 0, NULL);
	dynbuf_release(&resp);
	return rc;
}

/* "message (HTTP status)" of an error answer into e. */
static int
refused(long status, const json_t *j, const char *what, struct devid_error *e)
{
	const char *msg = json_string_value(json_object_get(j, "message"));

	return devid_error_set(e, DEVID_EINVAL, "%s%s%s (HTTP %ld)", what ? what : "",
	    what ? ": " : "", msg != NULL ? msg : "the server refused it", status);
}

static int
held_cmp(const void *a, const void *b)
{
	const struct held_page *x = a, *y = b;

	return x->page < y->page ? -1 : x->page > y->page;
}

/* The pages an open upload holds, from GET /api/v1/uploads/{id}. */
static int
load_held(struct uploader *u, struct client_conn *k, struct devid_error *e)
{
	char path[128];
	json_t *j, *pages, *pg;
	long status;
	size_t i;
	int rc;

	snprintf(path, sizeof(path), "/api/v1/uploads/%s", u->ref);
	if ((rc = call(k, "GET", path, NULL, 0, &status, &j, e)) != 0)
		return rc;
	if (status != 200) {
		rc = refused(status, j, "cannot read the open upload", e);
		goto out;
	}
	pages = json_object_get(j, "pages");
	if ((u->held = calloc(json_array_size(pages) + 1, sizeof(*u->held))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(pages, i, pg)
	{
		u->held[u->nheld].page = json_integer_value(json_object_get(pg, "page"));
		const char *sha = json_string_value(json_object_get(pg, "sha256"));

		snprintf(u->held[u->nheld].sha256, sizeof(u->held[u->nheld].sha256), "%s",
		    sha != NULL ? sha : "");
		u->entries += (uint64_t)json_integer_value(json_object_get(pg, "entries"));
		u->nheld++;
	}
	qsort(u->held, u->nheld, sizeof(*u->held), held_cmp);
out:
	json_decref(j);
	return rc;
}

static int
abort_upload(struct client_conn *k, const char *ref, struct devid_error *e)
{
	char path[128];
	long status;
	json_t *j;
	int rc;

	snprintf(path, sizeof(path), "/api/v1/uploads/%s", ref);
	if ((rc = call(k, "DELETE", path, NULL, 0, &status, &j, e)) == 0 && status != 204 &&
	    status != 404)
		rc = refused(status, j, "cannot abort the open upload", e);
	json_decref(j);
	return rc;
}

/*
 * Finds an open upload of the batch to resume (aborting it instead with --restart, or when
 * it carries another descriptor), else opens one.
 */
static int
open_or_resume(struct uploader *u, struct client_conn *k, const char *name, const char *dsha,
    struct devid_error *e)
{
	const struct upload_opts *o = u->o;
	json_t *j = NULL, *list, *it, *body = NULL, *desc = NULL;
	const char *kind = o->import ? "import" : "publish", *ref = NULL;
	char *text = NULL;
	long status;
	size_t i;
	int rc;

	if ((rc = call(k, "GET", "/api/v1/uploads", NULL, 0, &status, &j, e)) != 0)
		return rc;
	if (status != 200) {
		rc = refused(status, j, NULL, e);
		goto out;
	}
	list = json_object_get(j, "uploads");
	json_array_foreach(list, i, it)
	{
		const char *b = json_string_value(json_object_get(it, "batch"));
		const char *d = json_string_value(json_object_get(it, "descriptorSha256"));
		const char *kd = json_string_value(json_object_get(it, "kind"));

		if (b == NULL || strcmp(b, name) != 0 || kd == NULL || strcmp(kd, kind) != 0)
			continue;
		ref = json_string_value(json_object_get(it, "id"));
		if (ref == NULL || strlen(ref) >= sizeof(u->ref))
			break;
		if (o->restart || (dsha != NULL && (d == NULL || strcmp(d, dsha) != 0))) {
			if (!o->quiet)
				fprintf(stderr,
				    "devid %s: aborting the open upload %s of batch %s%s\n", o->cmd,
				    ref, name, o->restart ? "" : ", made for another batch.json");
			if ((rc = abort_upload(k, ref, e)) != 0)
				goto out;
			ref = NULL;
			break;
		}
		snprintf(u->ref, sizeof(u->ref), "%s", ref);
		u->page_size = (long)json_integer_value(json_object_get(it, "pageSize"));
		if ((rc = load_held(u, k, e)) != 0)
			goto out;
		if (!o->quiet)
			fprintf(stderr,
			    "devid %s: resuming upload %s of batch %s: %zu page(s) of %ld entries "
			    "received\n",
			    o->cmd, u->ref, name, u->nheld, u->page_size);
		goto out;
	}
	if (o->import)
		body = json_pack("{s:s, s:s, s:i}", "kind", kind, "batch", o->batch, "pageSize",
		    (int)o->page_size);
	else if ((desc = json_loadb((const char *)o->descriptor, o->descriptor_len,
		      JSON_REJECT_DUPLICATES, NULL)) != NULL)
		body = json_pack("{s:s, s:O, s:i}", "kind", kind, "descriptor", desc, "pageSize",
		    (int)o->page_size);
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		rc = devid_error_set(e, DEVID_EINVAL, "batch.json is not JSON");
		goto out;
	}
	json_decref(j);
	if ((rc = call(k, "POST", "/api/v1/uploads", text, strlen(text), &status, &j, e)) != 0)
		goto out;
	if (status != 201) {
		rc = refused(status, j, NULL, e);
		goto out;
	}
	ref = json_string_value(json_object_get(j, "id"));
	snprintf(u->ref, sizeof(u->ref), "%s", ref != NULL ? ref : "");
	u->page_size = o->page_size;
out:
	free(text);
	json_decref(body);
	json_decref(desc);
	json_decref(j);
	return rc;
}

/* Records the first failure and stops every worker (under the lock). */
static void
stop(struct uploader *u, const struct devid_error *e, json_t *answer, bool abort_it)
{
	if (!u->stop) {
		u->err = *e;
		u->refusal = answer;
		u->abort = abort_it;
		answer = NULL;
	}
	u->stop = true;
	json_decref(answer);
}

/* A worker: takes the next page from the file and sends it, until none is left. */
static void *
sender(void *arg)
{
	struct uploader *u = arg;
	struct held_page key, *had;
	struct client_conn *k;
	struct devid_error e;
	struct dynbuf page;
	char path[128];
	size_t count;
	long status;
	json_t *j;

	devid_error_clear(&e);
	dynbuf_init(&page, MAX_UPLOAD_PAGE_SIZE);
	if ((k = client_conn_new(u->o->c, &e)) == NULL) {
		pthread_mutex_lock(&u->lock);
		stop(u, &e, NULL, false);
		pthread_mutex_unlock(&u->lock);
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&u->lock);
		if (u->stop || u->done) {
			pthread_mutex_unlock(&u->lock);
			break;
		}
		if (manifest_stream_page(u->ms, (size_t)u->page_size, &page, &count, &e) != 0) {
			devid_error_prefix(&e, "%s", u->o->manifest);
			stop(u, &e, NULL, false);
			pthread_mutex_unlock(&u->lock);
			break;
		}
		if (count == 0) {
			u->done = true;
			pthread_mutex_unlock(&u->lock);
			break;
		}
		key.page = u->next_page++;
		pthread_mutex_unlock(&u->lock);
		sha256_hex(page.p, page.len, key.sha256);
		had = u->nheld > 0 ? bsearch(&key, u->held, u->nheld, sizeof(*u->held), held_cmp)
				   : NULL;
		if (had != NULL) {
			/* received before this run: the same bytes, or the file changed */
			if (strcmp(had->sha256, key.sha256) == 0)
				continue;
			devid_error_set(&e, DEVID_EINVAL,
			    "page %lld of %s differs from the page the open upload %s received: "
			    "the file changed; run again with --restart to send it afresh",
			    (long long)key.page, u->o->manifest, u->ref);
			pthread_mutex_lock(&u->lock);
			stop(u, &e, NULL, false);
			pthread_mutex_unlock(&u->lock);
			break;
		}
		snprintf(path, sizeof(path), "/api/v1/uploads/%s/pages/%lld", u->ref,
		    (long long)key.page);
		if (call(k, "PUT", path, page.p, page.len, &status, &j, &e) != 0) {
			pthread_mutex_lock(&u->lock);
			stop(u, &e, NULL, false);
			pthread_mutex_unlock(&u->lock);
			break;
		}
		pthread_mutex_lock(&u->lock);
		if (status == 200 || status == 201) {
			u->entries += count;
			show_progress(u, false);
			json_decref(j);
		} else {
			char what[64];

			snprintf(what, sizeof(what), "page %lld", (long long)key.page);
			refused(status, j, what, &e);
			/* the pages' content is refused: nothing of it can be committed */
			stop(u, &e, j, status == 400 || status == 409 || status == 413);
		}
		pthread_mutex_unlock(&u->lock);
	}
	dynbuf_release(&page);
	client_conn_free(k);
	return NULL;
}

/* The batch an upload is for: a publish's from its descriptor, an import's as given. */
static int
batch_of(const struct upload_opts *o, char name[MAX_NAME_LEN + 1], char dsha[65], int64_t *count,
    struct devid_error *e)
{
	struct batch_descriptor *d = NULL;
	struct dynbuf ser;
	int rc;

	*count = 0;
	dsha[0] = '\0';
	if (o->import) {
		snprintf(name, MAX_NAME_LEN + 1, "%s", o->batch);
		return 0;
	}
	if ((rc = batch_descriptor_parse(o->descriptor, o->descriptor_len, &d, e)) != 0) {
		devid_error_prefix(e, "batch.json");
		return rc;
	}
	snprintf(name, MAX_NAME_LEN + 1, "%s", d->batch_id);
	*count = d->count;
	/* the server names the descriptor by its compact serialization's SHA-256 */
	dynbuf_init(&ser, 3 * MAX_DESCRIPTOR_SIZE);
	if (dynbuf_addf(&ser, "%s.%s.%s", d->prot_b64, d->payload_b64, d->sig_b64) != 0)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	else
		sha256_hex(ser.p, ser.len, dsha);
	dynbuf_release(&ser);
	batch_descriptor_free(d);
	return rc;
}

/* POST /api/v1/uploads/{id}/commit: the answer in *answer. */
static int
commit(struct uploader *u, struct client_conn *k, json_t **answer, struct devid_error *e)
{
	char path[128];
	long status;
	int rc;

	snprintf(path, sizeof(path), "/api/v1/uploads/%s/commit", u->ref);
	if ((rc = call(k, "POST", path, NULL, 0, &status, answer, e)) != 0)
		return rc;
	if (status != 201)
		return refused(status, *answer, "commit", e);
	return 0;
}

int
upload_run(const struct upload_opts *o, json_t **answer)
{
	struct uploader u = {.o = o, .next_page = 1};
	pthread_t tid[UPLOAD_CLIENT_INFLIGHT];
	char dsha[65];
	struct client_conn *k = NULL;
	struct devid_error e, ae;
	int started = 0, rc = 1;

	*answer = NULL;
	devid_error_clear(&e);
	pthread_mutex_init(&u.lock, NULL);
	if ((u.f = fopen(o->manifest, "rb")) == NULL) {
		devid_error_set(&e, DEVID_EIO, "%s: %s", o->manifest, strerror(errno));
		goto out;
	}
	if (fseeko(u.f, 0, SEEK_END) == 0 && ftello(u.f) > 0)
		u.file_size = (uint64_t)ftello(u.f);
	rewind(u.f);
	u.xml = file_is_xml(u.f);
	if (u.xml && xml_precheck(&u, &e) != 0)
		goto out;
	if (u.xml && manifest_xml_reader_init(&u.xr, read_file, &u) != 0) {
		devid_error_set(&e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	if ((u.ms = u.xml ? manifest_stream_new(manifest_xml_read, &u.xr)
			  : manifest_stream_new(read_file, &u)) == NULL) {
		devid_error_set(&e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	if (batch_of(o, u.name, dsha, &u.count, &e) != 0 ||
	    (k = client_conn_new(o->c, &e)) == NULL ||
	    open_or_resume(&u, k, u.name, o->import ? NULL : dsha, &e) != 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &u.t0);
	for (int i = 0; i < UPLOAD_CLIENT_INFLIGHT; i++)
		if (pthread_create(&tid[started], NULL, sender, &u) == 0)
			started++;
	if (started == 0)
		sender(&u);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	show_progress(&u, true);
	if (u.stop) {
		e = u.err;
		*answer = u.refusal;
		u.refusal = NULL;
		devid_error_clear(&ae);
		if (!u.abort) {
			if (!o->quiet)
				fprintf(stderr,
				    "devid %s: upload %s is kept: run the same command again to "
				    "resume it\n",
				    o->cmd, u.ref);
		} else if (abort_upload(k, u.ref, &ae) != 0) {
			fprintf(stderr,
			    "devid %s: upload %s could not be aborted (%s): it expires\n", o->cmd,
			    u.ref, ae.msg);
		} else if (!o->quiet) {
			fprintf(stderr,
			    "devid %s: upload %s aborted: nothing of batch %s was kept\n", o->cmd,
			    u.ref, u.name);
		}
		goto out;
	}
	if (commit(&u, k, answer, &e) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "devid %s: %s\n", o->cmd, e.msg);
	client_conn_free(k);
	manifest_stream_free(u.ms);
	if (u.xml)
		manifest_xml_reader_release(&u.xr);
	if (u.f != NULL)
		fclose(u.f);
	json_decref(u.refusal);
	free(u.held);
	pthread_mutex_destroy(&u.lock);
	return rc;
}
