/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest_xml.h - the XML form of a vendor manifest (docs/xml-manifest.md, schema in
 * schema/manifest.xsd): element for element the JSON form, each entry carrying the same
 * signed strings (payload, protected, signature) and header.uniqueId. Nothing is re-signed or
 * re-serialized before verifying: an XML entry becomes the JSON entry it was made from, and
 * manifest.h / manifest_check.h check that, so both forms verify with one signer.
 *
 * The reader is libxml2's push parser with a SAX handler of our own: no DTD (a document
 * with a DOCTYPE is refused at the DOCTYPE, before anything in it is read), no entity but
 * the five predefined ones, no network, no XInclude, nothing outside the document is ever
 * opened. Every text is capped as the JSON parser caps it; any element, attribute or text
 * the schema does not have is refused, naming it and its line.
 */
#ifndef DEVID_MANIFEST_XML_H
#define DEVID_MANIFEST_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "dynbuf.h"
#include "error.h"
#include "manifest_stream.h"

#define MANIFEST_XML_NS "urn:devid:manifest:1"
#define MANIFEST_XML_HEAD                                                                          \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<manifest xmlns=\"" MANIFEST_XML_NS "\">\n"
#define MANIFEST_XML_TAIL "</manifest>\n"

/* True when the first byte after any BOM and XML whitespace is '<': the XML form. */
bool manifest_is_xml(const uint8_t *p, size_t n);

/* A translator of the XML form into the JSON form, fed a piece at a time. */
struct manifest_xml;

/* NULL when out of memory. */
struct manifest_xml *manifest_xml_new(void);
void manifest_xml_free(struct manifest_xml *x);

/*
 * Feeds p[0..n) of the document; last: nothing follows. Appends to out the JSON text of the
 * entries completed so far, laid out as `devid vendor mint` writes manifest.json ("[\n  "
 * before the first, ",\n  " between, "\n]\n" after the last once last is fed), so a manifest
 * minted as JSON and converted to XML and back is the same bytes. DEVID_EINVAL naming the
 * line when the document is not a manifest of at least one entry (or has a DOCTYPE, an
 * entity, an unknown element or attribute, text out of place), DEVID_ELIMIT past
 * MAX_MANIFEST_SIZE bytes, MAX_BATCH_COUNT entries or a text's limit, or out's maximum.
 * After a failure every call fails the same way.
 */
int manifest_xml_feed(struct manifest_xml *x, const uint8_t *p, size_t n, bool last,
    struct dynbuf *out, struct devid_error *e);
/* Bytes fed so far, and entries translated so far. */
uint64_t manifest_xml_offset(const struct manifest_xml *x);
uint64_t manifest_xml_entries(const struct manifest_xml *x);

/* The whole document p[0..n) at once, into out (reset first). */
int manifest_xml_to_json(const uint8_t *p, size_t n, struct dynbuf *out, struct devid_error *e);

/*
 * A manifest_stream_read_fn that reads the XML form through inner (with inner_arg) and gives
 * the JSON form: a manifest_stream over it pages an XML manifest as it pages a JSON one.
 * Caller-owned: manifest_xml_reader_init, then manifest_xml_read as the read function with
 * the reader as its argument, then manifest_xml_reader_release.
 */
struct manifest_xml_reader {
	manifest_stream_read_fn *inner;
	void *inner_arg;
	struct manifest_xml *x;
	struct dynbuf pending; /* JSON not yet handed out, from pos */
	size_t pos;
	bool eof;
};
int manifest_xml_reader_init(
    struct manifest_xml_reader *r, manifest_stream_read_fn *inner, void *inner_arg);
void manifest_xml_reader_release(struct manifest_xml_reader *r);
int manifest_xml_read(void *arg, uint8_t *buf, size_t cap, size_t *got, struct devid_error *e);

/*
 * Appends the <entry> element of one JSON entry (index for messages) to out. The entry must
 * have exactly payload, protected, header {uniqueId} and signature as strings (base64url for
 * the signed ones, no control character in uniqueId): anything else could not come back
 * unchanged, so it is refused, naming the entry.
 */
int manifest_xml_entry(
    const json_t *entry, size_t index, struct dynbuf *out, struct devid_error *e);

#endif
