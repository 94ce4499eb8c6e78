/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_clone.c - the routes of clone detection (docs/clone-detection.md): product clouds'
 * seen reports, the tenant's clone policy, and the suspicions raised.
 */
#include "http/api_internal.h"
#include "lib/banned.h"

/*
 * POST /api/v1/sightings: no token; the report is signed with a webhook connector's secret
 * (X-Devid-Signature), which names the connector and so the tenant's product cloud.
 */
HANDLER(h_sightings)
{
	struct api *a = arg;
	struct devid_error e;
	const uint8_t *body;
	json_t *j = NULL;
	size_t len;
	int rc;

	devid_error_clear(&e);
	body = http_request_body(req, &len);
	rc = service_sightings_report(
	    a->svc, body, len, http_request_header(req, "X-Devid-Signature"), &j, &e);
	if (rc == DEVID_EAUTH) {
		http_error(resp, 401, "unauthorized", "%s", e.msg);
		return;
	}
	api_answer(resp, rc, &e, j, 200);
}

/* GET /api/v1/clone-policy: the tenant's policy, with its defaults. */
HANDLER(h_clone_policy_get)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_clone_policy_get(a->svc, &p, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/* PUT /api/v1/clone-policy (admin): answers the policy as GET does. */
HANDLER(h_clone_policy_put)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *body, *j = NULL;
	int rc;

	AUTH(a, p);
	if ((body = api_body_json(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	rc = service_clone_policy_put(a->svc, &p, body, &e);
	if (rc == 0)
		rc = service_clone_policy_get(a->svc, &p, &j, &e);
	api_answer(resp, rc, &e, j, 200);
	json_decref(body);
}

/* GET /api/v1/suspicions?after=ID: the tenant's suspicions, oldest first, a page. */
HANDLER(h_suspicions)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_suspicions(a->svc, &p, http_request_query(req, "after"), &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

int
api_clone_routes(struct api *a, struct devid_error *e)
{
	const struct {
		const char *method, *pattern;
		http_handler_fn *fn;
	} routes[] = {
	    {"POST", "/api/v1/sightings", h_sightings},
	    {"GET", "/api/v1/clone-policy", h_clone_policy_get},
	    {"PUT", "/api/v1/clone-policy", h_clone_policy_put},
	    {"GET", "/api/v1/suspicions", h_suspicions},
	};

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (router_add(
			a->router, routes[i].method, routes[i].pattern, routes[i].fn, a, e) != 0)
			return -1;
	return 0;
}
