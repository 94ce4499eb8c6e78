/* SPDX-License-Identifier: Apache-2.0 */
/*
 * upload.h - the client side of an upload (docs/api.md "Uploads"): `devid vendor publish` and
 * `devid import` stream a manifest file from disk as pages (never the whole file in memory),
 * several pages in flight, resume an upload of the same batch that was interrupted, and
 * commit it. A manifest in the XML form is read through manifest_xml.h and sent as the JSON
 * entries it carries, a piece at a time too: the server sees the same pages either way.
 */
#ifndef DEVID_CLI_UPLOAD_H
#define DEVID_CLI_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "client.h"

/* Pages a client sends at once: one is checked by the server while the next is stored. */
#define UPLOAD_CLIENT_INFLIGHT 2
/* The page size a new upload asks for, unless told otherwise. */
#define UPLOAD_CLIENT_PAGE_SIZE 500

struct upload_opts {
	const struct client *c;
	const char *cmd; /* for messages: "vendor publish", "import" */
	bool import;
	const uint8_t *descriptor; /* a publish: batch.json as it is */
	size_t descriptor_len;
	const char *batch; /* an import: the batch name */
	const char *manifest; /* the manifest file: the JSON or the XML form (manifest_xml.h) */
	long page_size; /* for a new upload; 1 to MAX_UPLOAD_PAGE_ENTRIES */
	bool restart; /* abort an open upload of the batch instead of resuming it */
	bool progress; /* progress lines on stderr (a terminal) */
	bool quiet; /* no notes on stderr (resuming, aborting), errors only */
};

/*
 * Sends the manifest as an upload and commits it. 0 with *answer the commit's answer (JSON,
 * json_decref); 1 when it failed, with the reason printed on stderr as "devid CMD: ..." and
 * *answer the server's refusal when there was one (its "report" names the entries). A page
 * the server refused ends the upload (aborted: nothing stays); a failure on the way (the
 * network, the server) leaves it to be resumed by the same command, which says so.
 */
int upload_run(const struct upload_opts *o, json_t **answer);

#endif
