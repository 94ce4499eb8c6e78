/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest.h - a vendor manifest: a JSON array of SignedSecureElement entries
 * (manifest_entry.h), read whole or a page at a time, its entries parsed by several threads.
 * What a manifest must pass to be accepted is in manifest_check.h; `devid vendor verify` and
 * the service's ingest run exactly this code.
 */
#ifndef DEVID_MANIFEST_H
#define DEVID_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "manifest_entry.h"
#include "manifest_report.h"

struct manifest {
	struct manifest_entry **entries; /* NULL where an entry did not parse */
	size_t n;
	/* entries[i] is entry base + i of the whole manifest: 0, or the first of a page */
	size_t base;
};

/*
 * Parses a manifest (a JSON array of entries). Entries that do not parse (including
 * elements that are not objects) are recorded in r and left NULL; a document that is not a
 * non-empty JSON array fails as a whole. Entries are parsed by nthreads threads (>= 1; the
 * variants without it use one per online CPU); the result does not depend on the number.
 */
int manifest_parse(const uint8_t *p, size_t n, struct manifest **out, struct manifest_report *r,
    struct devid_error *e);
int manifest_parse_mt(const uint8_t *p, size_t n, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e);
/*
 * The same for a part of a larger manifest whose first element is entry `base` of the whole:
 * messages and the report name entries by their place in the whole.
 */
int manifest_parse_at(const uint8_t *p, size_t n, size_t base, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e);
/*
 * The same over an already parsed document (borrowed; only read, from several threads, so
 * nobody may change it meanwhile).
 */
int manifest_from_json(
    const json_t *root, struct manifest **out, struct manifest_report *r, struct devid_error *e);
int manifest_from_json_mt(const json_t *root, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e);
void manifest_free(struct manifest *m);

/* A byte range of a manifest's text: one element. */
struct manifest_span {
	size_t off, len;
};

/*
 * Finds the elements of a document that reads '[' element (',' element)* ']' with JSON
 * whitespace around the tokens, each element ending where jsonscan_value_end says, as
 * manifest_stream_page finds them:
 * *out (free()) receives their ranges, without the whitespace around them. It does not check
 * the elements: each is parsed on its own, and if every one is a JSON value, the document is
 * exactly the array of them. False when the document does not have that shape (or nests
 * deeper than MAX_JSON_DEPTH, or has more than MAX_BATCH_COUNT elements, or memory ran out):
 * the whole document must then be parsed at once to find out why.
 */
bool manifest_split(const uint8_t *p, size_t n, struct manifest_span **out, size_t *count);

/*
 * Parses the elements spans[0..count) of p as entries base .. base + count - 1, as
 * manifest_parse_at would. Returns 1, with nothing reported, when an element is not JSON (the
 * document's error then decides: parse it whole), else 0 or DEVID_ENOMEM.
 */
int manifest_parse_spans(const uint8_t *p, const struct manifest_span *spans, size_t count,
    size_t base, int nthreads, struct manifest **out, struct manifest_report *r,
    struct devid_error *e);

#endif
