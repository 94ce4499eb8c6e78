/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The upload routes (docs/api.md "Uploads"): a batch sent in pages, each checked and stored as
 * it arrives, made visible by its commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api_internal.h"
#include "lib/submission.h"
#include "lib/banned.h"

/* The {id} of the path: an upload's id, or NULL (answered 404) when it cannot be one. */
static const char *
upload_ref(struct http_request *req, struct http_response *resp)
{
	const char *ref = http_request_param(req, "id");

	if (ref == NULL || strlen(ref) != UPLOAD_REF_LEN ||
	    strspn(ref, "0123456789abcdef") != UPLOAD_REF_LEN) {
		http_error(resp, 404, "not_found", "no upload %s", ref != NULL ? ref : "");
		return NULL;
	}
	return ref;
}

/* An answer with the report of a refused page or commit, when it has something to say. */
static void
fail_with_report(struct http_response *resp, int rc, const struct devid_error *e,
    const struct manifest_report *r)
{
	json_t *report = manifest_report_json(r);

	api_fail(resp, rc, e, r->rejected > 0 || r->batch_error[0] ? report : NULL);
	json_decref(report);
}

/* POST /api/v1/uploads {"kind","descriptor"|"batch","pageSize"}: 201 with the upload. */
HANDLER(h_upload_open)
{
	struct api *a = arg;
	struct upload_open_body b;
	struct upload_request ur;
	struct manifest_report r;
	struct upload_rec u;
	struct devid_error e;
	const uint8_t *body;
	size_t len;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	body = http_request_body(req, &len);
	if (upload_open_body_parse(body, len, &b, &e) != 0) {
		http_error(resp, 400, "bad_request", "%s", e.msg);
		return;
	}
	ur = (struct upload_request){.kind = b.import ? UPLOAD_IMPORT : UPLOAD_PUBLISH,
	    .descriptor = (const uint8_t *)b.descriptor,
	    .descriptor_len = b.descriptor != NULL ? strlen(b.descriptor) : 0,
	    .batch = b.batch,
	    .page_size = b.page_size};
	rc = service_upload_open(a->svc, &p, &ur, &u, &r, &e);
	if (rc != 0)
		fail_with_report(resp, rc, &e, &r);
	else
		api_answer(resp, 0, &e, service_upload_json(&u, NULL, 0), 201);
	manifest_report_release(&r);
	upload_open_body_release(&b);
}

/* GET /api/v1/uploads: the caller's open uploads. */
HANDLER(h_uploads)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_upload_list(a->svc, &p, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/* GET /api/v1/uploads/{id}: one upload with the pages received (to resume it). */
HANDLER(h_upload_get)
{
	struct api *a = arg;
	struct devid_error e;
	const char *ref;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	if ((ref = upload_ref(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	rc = service_upload_get(a->svc, &p, ref, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/*
 * PUT /api/v1/uploads/{id}/pages/{page}: a JSON array of the page's entries. 201 when it was
 * stored now, 200 when the same page had been (nothing changed).
 */
HANDLER(h_upload_page)
{
	struct api *a = arg;
	const char *ref, *ps = http_request_param(req, "page");
	struct manifest_report r;
	struct devid_error e;
	const uint8_t *body;
	bool replayed;
	char *end = NULL;
	long long page;
	size_t len;
	json_t *j;
	int rc;

	AUTH(a, p);
	if ((ref = upload_ref(req, resp)) == NULL)
		return;
	page = ps != NULL && *ps >= '1' && *ps <= '9' ? strtoll(ps, &end, 10) : 0;
	if (page < 1 || *end != '\0' || page > MAX_UPLOAD_PAGES) {
		http_error(resp, 400, "bad_request", "page '%s': a page is 1 to %d", ps ? ps : "",
		    MAX_UPLOAD_PAGES);
		return;
	}
	devid_error_clear(&e);
	body = http_request_body(req, &len);
	rc = service_upload_page(a->svc, &p, ref, page, body, len, &r, &replayed, &e);
	if (rc != 0) {
		fail_with_report(resp, rc, &e, &r);
	} else {
		j = json_pack("{s:s, s:I, s:I, s:b}", "upload", ref, "page", (json_int_t)page,
		    "entries", (json_int_t)r.total, "replayed", replayed);
		api_answer(resp, 0, &e, j, replayed ? 200 : 201);
	}
	manifest_report_release(&r);
}

/* POST /api/v1/uploads/{id}/commit: the batch becomes visible; 201 with its report. */
HANDLER(h_upload_commit)
{
	struct api *a = arg;
	struct manifest_report r;
	struct devid_error e;
	const char *ref;
	json_t *report, *j;
	int rc;

	AUTH(a, p);
	if ((ref = upload_ref(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	rc = service_upload_commit(a->svc, &p, ref, &r, &e);
	if (rc != 0) {
		fail_with_report(resp, rc, &e, &r);
	} else {
		report = manifest_report_json(&r);
		j = report != NULL ? json_pack("{s:o}", "report", report) : NULL;
		api_answer(resp, 0, &e, j, 201);
	}
	manifest_report_release(&r);
}

/* DELETE /api/v1/uploads/{id}: the upload and all it stored are gone; 204. */
HANDLER(h_upload_delete)
{
	struct api *a = arg;
	struct devid_error e;
	const char *ref;
	int rc;

	AUTH(a, p);
	if ((ref = upload_ref(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	if ((rc = service_upload_abort(a->svc, &p, ref, &e)) != 0)
		api_fail(resp, rc, &e, NULL);
	else
		http_response_set_status(resp, 204);
}

int
api_upload_routes(struct api *a, struct devid_error *e)
{
	const struct {
		const char *method, *pattern;
		http_handler_fn *fn;
	} routes[] = {
	    {"POST", "/api/v1/uploads", h_upload_open},
	    {"GET", "/api/v1/uploads", h_uploads},
	    {"GET", "/api/v1/uploads/{id}", h_upload_get},
	    {"DELETE", "/api/v1/uploads/{id}", h_upload_delete},
	    {"PUT", "/api/v1/uploads/{id}/pages/{page}", h_upload_page},
	    {"POST", "/api/v1/uploads/{id}/commit", h_upload_commit},
	};

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (router_add(
			a->router, routes[i].method, routes[i].pattern, routes[i].fn, a, e) != 0)
			return -1;
		if (routes[i].fn == h_upload_page &&
		    router_add(a->pages, routes[i].method, routes[i].pattern, routes[i].fn, a, e) !=
			0)
			return -1;
	}
	return 0;
}
