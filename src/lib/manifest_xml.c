/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/SAX2.h>
#include <libxml/xmlerror.h>

#include "limits.h"
#include "manifest_xml.h"
#include "banned.h"

/* XML read from the inner function per call of manifest_xml_read. */
#define XML_READ_CHUNK 65536
/* JSON a reader holds for its caller at most: what one chunk of XML can make, and more. */
#define XML_PENDING_MAX ((size_t)4 * XML_READ_CHUNK + 4 * MAX_STREAM_ELEMENT)

/* The texts of an entry, in the order the schema has them. */
enum leaf { LEAF_PAYLOAD, LEAF_PROTECTED, LEAF_UNIQUE_ID, LEAF_SIGNATURE, NLEAVES };

static const char *const leaf_name[NLEAVES] = {"payload", "protected", "uniqueId", "signature"};
/* the JSON parser's limits (manifest_entry.c) */
static const size_t leaf_max[NLEAVES] = {
    MAX_PAYLOAD_SIZE * 4 / 3 + 4, MAX_PROTECTED_SIZE * 2, MAX_SERIAL_LEN, 128};

enum where {
	AT_TOP, /* before <manifest> */
	AT_MANIFEST, /* in <manifest>, between entries */
	AT_ENTRY, /* in <entry>, between its children */
	AT_HEADER, /* in <header> */
	AT_LEAF, /* in a text element */
	AT_END, /* after </manifest> */
};

struct manifest_xml {
	xmlParserCtxtPtr ctxt;
	enum where at;
	enum leaf leaf; /* AT_LEAF: which */
	int next; /* in an entry: the element expected next, 0 (payload) .. 4 (none) */
	bool have_uid; /* the entry's <header> has its <uniqueId> */
	struct dynbuf text[NLEAVES];
	struct dynbuf *out; /* during a feed */
	uint64_t fed, entries;
	bool failed;
	int failed_rc;
	struct devid_error err;
};

static long
line_of(struct manifest_xml *x)
{
	return x->ctxt != NULL ? (long)xmlSAX2GetLineNumber(x->ctxt) : 0;
}

/* Records the first failure and stops the parser: nothing after it is read. */
static void __attribute__((format(printf, 3, 4)))
fail(struct manifest_xml *x, int rc, const char *fmt, ...)
{
	char msg[DEVID_ERROR_MAX];
	va_list ap;

	if (x->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	x->failed = true;
	x->failed_rc = rc;
	devid_error_set(&x->err, rc, "XML manifest: line %ld: %s", line_of(x), msg);
	if (x->ctxt != NULL)
		xmlStopParser(x->ctxt);
}

/* libxml2's own errors (not well-formed, undeclared entity, ...) */
static void
on_error(void *ctx, xmlErrorPtr err)
{
	struct manifest_xml *x = ctx;
	char msg[DEVID_ERROR_MAX];
	size_t n;

	if (err == NULL || err->level < XML_ERR_ERROR)
		return;
	/* libxml2 says "extra content" when the input ends before or inside the root element */
	if (err->code == XML_ERR_DOCUMENT_END && x->at == AT_TOP)
		snprintf(msg, sizeof(msg), "no <manifest>: the document is empty or not XML");
	else if (err->code == XML_ERR_DOCUMENT_END && x->at != AT_END)
		snprintf(msg, sizeof(msg), "the document ends before </manifest>");
	else
		snprintf(msg, sizeof(msg), "%s", err->message != NULL ? err->message : "not XML");
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	if (!x->failed) {
		x->failed = true;
		x->failed_rc = DEVID_EINVAL;
		devid_error_set(&x->err, DEVID_EINVAL, "XML manifest: line %d: %s", err->line, msg);
	}
}

/* A DOCTYPE, and with it any DTD, entity or external reference, is refused where it starts. */
static void
on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
	(void)name;
	(void)external_id;
	(void)system_id;
	fail(ctx, DEVID_EINVAL,
	    "a DOCTYPE: a manifest has no DTD, and DTDs, entities and external references are "
	    "refused");
}

static void
on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
    const xmlChar *system_id, xmlChar *content)
{
	(void)type;
	(void)public_id;
	(void)system_id;
	(void)content;
	fail(ctx, DEVID_EINVAL, "entity \"%s\" declared: entities are refused", (const char *)name);
}

static xmlEntityPtr
on_get_entity(void *ctx, const xmlChar *name)
{
	fail(ctx, DEVID_EINVAL, "entity \"&%s;\": only the predefined entities are allowed",
	    (const char *)name);
	return NULL;
}

static xmlParserInputPtr
on_resolve_entity(void *ctx, const xmlChar *public_id, const xmlChar *system_id)
{
	(void)public_id;
	fail(ctx, DEVID_EINVAL,
	    "external reference \"%s\" refused: nothing outside the document "
	    "is read",
	    system_id != NULL ? (const char *)system_id : "");
	return NULL;
}

static void
on_reference(void *ctx, const xmlChar *name)
{
	fail(ctx, DEVID_EINVAL, "entity reference \"&%s;\" refused", (const char *)name);
}

static bool
is_space(const xmlChar *p, int len)
{
	for (int i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

static void
on_text(void *ctx, const xmlChar *p, int len)
{
	struct manifest_xml *x = ctx;
	struct dynbuf *t;

	if (x->failed || len <= 0)
		return;
	if (x->at != AT_LEAF) {
		if (!is_space(p, len))
			fail(x, DEVID_EINVAL,
			    "text outside a text element (only payload, protected, "
			    "uniqueId and signature hold text)");
		return;
	}
	t = &x->text[x->leaf];
	if (dynbuf_add(t, p, (size_t)len) != 0)
		fail(x, DEVID_ELIMIT, "entry %llu: <%s> longer than %zu bytes",
		    (unsigned long long)x->entries, leaf_name[x->leaf], leaf_max[x->leaf]);
}

static void
on_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
    int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
    const xmlChar **attributes)
{
	struct manifest_xml *x = ctx;
	const char *name = (const char *)local;
	/* the element expected in an entry at x->next, and which text it holds */
	static const char *const child[] = {"payload", "protected", "header", "signature"};
	static const enum leaf child_leaf[] = {
	    LEAF_PAYLOAD, LEAF_PROTECTED, NLEAVES, LEAF_SIGNATURE};

	(void)prefix;
	(void)nb_namespaces;
	(void)namespaces;
	(void)nb_defaulted;
	if (x->failed)
		return;
	if (uri == NULL || strcmp((const char *)uri, MANIFEST_XML_NS) != 0) {
		fail(x, DEVID_EINVAL, "element <%s> in namespace \"%s\": expected \"%s\"", name,
		    uri != NULL ? (const char *)uri : "", MANIFEST_XML_NS);
		return;
	}
	if (nb_attributes > 0) {
		fail(x, DEVID_EINVAL, "<%s> has an attribute \"%s\": the schema has none", name,
		    (const char *)attributes[0]);
		return;
	}
	switch (x->at) {
	case AT_TOP:
		if (strcmp(name, "manifest") != 0)
			break;
		x->at = AT_MANIFEST;
		return;
	case AT_MANIFEST:
		if (strcmp(name, "entry") != 0)
			break;
		if (x->entries == MAX_BATCH_COUNT) {
			fail(x, DEVID_ELIMIT, "more than %d entries", MAX_BATCH_COUNT);
			return;
		}
		x->at = AT_ENTRY;
		x->next = 0;
		x->have_uid = false;
		for (int i = 0; i < NLEAVES; i++)
			dynbuf_reset(&x->text[i]);
		return;
	case AT_ENTRY:
		if (x->next == 4) {
			fail(x, DEVID_EINVAL, "entry %llu: <%s> where </entry> was expected",
			    (unsigned long long)x->entries, name);
			return;
		}
		if (strcmp(name, child[x->next]) != 0) {
			fail(x, DEVID_EINVAL, "entry %llu: <%s> where <%s> was expected",
			    (unsigned long long)x->entries, name, child[x->next]);
			return;
		}
		if (child_leaf[x->next] == NLEAVES) {
			x->at = AT_HEADER;
		} else {
			x->at = AT_LEAF;
			x->leaf = child_leaf[x->next];
		}
		x->next++;
		return;
	case AT_HEADER:
		if (strcmp(name, "uniqueId") != 0 || x->have_uid)
			break;
		x->at = AT_LEAF;
		x->leaf = LEAF_UNIQUE_ID;
		x->have_uid = true;
		return;
	case AT_LEAF:
	case AT_END:
		break;
	}
	if (x->at == AT_TOP)
		fail(x, DEVID_EINVAL, "<%s>: the document must be a <manifest>", name);
	else
		fail(x, DEVID_EINVAL, "unexpected element <%s> in entry %llu", name,
		    (unsigned long long)x->entries);
}

static bool
b64url_chars(const struct dynbuf *t)
{
	for (size_t i = 0; i < t->len; i++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
			t->p[i]) == NULL ||
		    t->p[i] == '\0')
			return false;
	return true;
}

/*
 * A uniqueId XML and JSON both carry unchanged: no C0 or C1 control character (XML 1.0 cannot
 * hold most of them, and a line end would not survive it). p is UTF-8.
 */
static bool
unique_id_ok(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f ||
		    (p[i] == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f))
			return false;
	return true;
}

/* The JSON entry of the texts of a complete <entry>, appended to x->out. */
static void
emit_entry(struct manifest_xml *x)
{
	json_t *o = NULL, *h = NULL;
	char *s = NULL;
	int rc;

	for (int i = 0; i < NLEAVES; i++) {
		if (x->text[i].len == 0) {
			fail(x, DEVID_EINVAL, "entry %llu: <%s> is empty",
			    (unsigned long long)x->entries, leaf_name[i]);
			return;
		}
		if (i != LEAF_UNIQUE_ID && !b64url_chars(&x->text[i])) {
			fail(x, DEVID_EINVAL,
			    "entry %llu: <%s> is not unpadded base64url (A-Z a-z 0-9 - _ only, no "
			    "whitespace)",
			    (unsigned long long)x->entries, leaf_name[i]);
			return;
		}
	}
	if (!unique_id_ok(x->text[LEAF_UNIQUE_ID].p, x->text[LEAF_UNIQUE_ID].len)) {
		fail(x, DEVID_EINVAL, "entry %llu: <uniqueId> holds a control character",
		    (unsigned long long)x->entries);
		return;
	}
	if ((h = json_object()) == NULL || (o = json_object()) == NULL ||
	    json_object_set_new(h, "uniqueId",
		json_stringn(
		    (const char *)x->text[LEAF_UNIQUE_ID].p, x->text[LEAF_UNIQUE_ID].len)) ||
	    json_object_set_new(o, "payload", json_string(dynbuf_str(&x->text[LEAF_PAYLOAD]))) ||
	    json_object_set_new(
		o, "protected", json_string(dynbuf_str(&x->text[LEAF_PROTECTED]))) ||
	    json_object_set(o, "header", h) ||
	    json_object_set_new(
		o, "signature", json_string(dynbuf_str(&x->text[LEAF_SIGNATURE]))) ||
	    (s = json_dumps(o, JSON_COMPACT)) == NULL) {
		fail(x, DEVID_ENOMEM, "entry %llu: out of memory", (unsigned long long)x->entries);
		goto out;
	}
	if ((rc = dynbuf_addstr(x->out, x->entries == 0 ? "[\n  " : ",\n  ")) != 0 ||
	    (rc = dynbuf_addstr(x->out, s)) != 0) {
		fail(x, rc, "entry %llu: %s", (unsigned long long)x->entries,
		    rc == DEVID_ELIMIT ? "more JSON than the buffer holds" : "out of memory");
		goto out;
	}
	x->entries++;
out:
	free(s);
	json_decref(h);
	json_decref(o);
}

static void
on_end(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri)
{
	struct manifest_xml *x = ctx;

	(void)local;
	(void)prefix;
	(void)uri;
	if (x->failed)
		return;
	switch (x->at) {
	case AT_LEAF:
		x->at = x->leaf == LEAF_UNIQUE_ID ? AT_HEADER : AT_ENTRY;
		return;
	case AT_HEADER:
		if (!x->have_uid) {
			fail(x, DEVID_EINVAL, "entry %llu: <header> without <uniqueId>",
			    (unsigned long long)x->entries);
			return;
		}
		x->at = AT_ENTRY;
		return;
	case AT_ENTRY:
		if (x->next < 4) {
			static const char *const child[] = {
			    "payload", "protected", "header", "signature"};

			fail(x, DEVID_EINVAL, "entry %llu: </entry> where <%s> was expected",
			    (unsigned long long)x->entries, child[x->next]);
			return;
		}
		x->at = AT_MANIFEST;
		emit_entry(x);
		for (int i = 0; i < NLEAVES; i++)
			dynbuf_release(&x->text[i]);
		return;
	case AT_MANIFEST:
		if (x->entries == 0) {
			fail(x, DEVID_EINVAL, "<manifest> has no <entry>");
			return;
		}
		x->at = AT_END;
		if (dynbuf_addstr(x->out, "\n]\n") != 0)
			fail(x, DEVID_ENOMEM, "out of memory");
		return;
	case AT_TOP:
	case AT_END:
		break;
	}
	fail(x, DEVID_EINTERNAL, "end of an element out of place");
}

struct manifest_xml *
manifest_xml_new(void)
{
	struct manifest_xml *x = calloc(1, sizeof(*x));
	xmlSAXHandler sax;

	if (x == NULL)
		return NULL;
	for (int i = 0; i < NLEAVES; i++)
		dynbuf_init(&x->text[i], leaf_max[i]);
	memset(&sax, 0, sizeof(sax));
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = on_start;
	sax.endElementNs = on_end;
	sax.characters = on_text;
	sax.ignorableWhitespace = on_text;
	sax.cdataBlock = on_text;
	sax.serror = on_error;
	sax.internalSubset = on_doctype;
	sax.externalSubset = on_doctype;
	sax.entityDecl = on_entity_decl;
	sax.getEntity = on_get_entity;
	sax.getParameterEntity = on_get_entity;
	sax.resolveEntity = on_resolve_entity;
	sax.reference = on_reference;
	xmlInitParser();
	if ((x->ctxt = xmlCreatePushParserCtxt(&sax, x, NULL, 0, NULL)) == NULL) {
		free(x);
		return NULL;
	}
	/* no network; and never XML_PARSE_NOENT, DTDLOAD, DTDATTR, XINCLUDE or HUGE */
	xmlCtxtUseOptions(x->ctxt, XML_PARSE_NONET);
	return x;
}

void
manifest_xml_free(struct manifest_xml *x)
{
	if (x == NULL)
		return;
	if (x->ctxt != NULL) {
		xmlFreeDoc(x->ctxt->myDoc);
		x->ctxt->myDoc = NULL;
		xmlFreeParserCtxt(x->ctxt);
	}
	for (int i = 0; i < NLEAVES; i++)
		dynbuf_release(&x->text[i]);
	free(x);
}

uint64_t
manifest_xml_offset(const struct manifest_xml *x)
{
	return x->fed;
}

uint64_t
manifest_xml_entries(const struct manifest_xml *x)
{
	return x->entries;
}

int
manifest_xml_feed(struct manifest_xml *x, const uint8_t *p, size_t n, bool last, struct dynbuf *out,
    struct devid_error *e)
{
	int chunk;

	x->out = out;
	while (!x->failed && (n > 0 || last)) {
		chunk = n > XML_READ_CHUNK ? XML_READ_CHUNK : (int)n;
		if (x->fed + (uint64_t)chunk > MAX_MANIFEST_SIZE) {
			fail(x, DEVID_ELIMIT, "more than %zu bytes", MAX_MANIFEST_SIZE);
			break;
		}
		x->fed += (uint64_t)chunk;
		if (xmlParseChunk(x->ctxt, (const char *)p, chunk, last && (size_t)chunk == n) !=
			0 &&
		    !x->failed)
			fail(x, DEVID_EINVAL, "not well-formed XML");
		if (chunk > 0)
			p += chunk;
		n -= (size_t)chunk;
		if (n == 0 && last) {
			if (!x->failed && x->at != AT_END)
				fail(x, DEVID_EINVAL, "the document ends before </manifest>");
			break;
		}
	}
	x->out = NULL;
	if (x->failed) {
		if (e != NULL)
			*e = x->err;
		return x->failed_rc;
	}
	return 0;
}

bool
manifest_is_xml(const uint8_t *p, size_t n)
{
	size_t i = 0;

	if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		i = 3;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	return i < n && p[i] == '<';
}

int
manifest_xml_to_json(const uint8_t *p, size_t n, struct dynbuf *out, struct devid_error *e)
{
	struct manifest_xml *x;
	int rc;

	dynbuf_reset(out);
	if ((x = manifest_xml_new()) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	rc = manifest_xml_feed(x, p, n, true, out, e);
	manifest_xml_free(x);
	return rc;
}

int
manifest_xml_reader_init(
    struct manifest_xml_reader *r, manifest_stream_read_fn *inner, void *inner_arg)
{
	memset(r, 0, sizeof(*r));
	r->inner = inner;
	r->inner_arg = inner_arg;
	dynbuf_init(&r->pending, XML_PENDING_MAX);
	if ((r->x = manifest_xml_new()) == NULL)
		return DEVID_ENOMEM;
	return 0;
}

void
manifest_xml_reader_release(struct manifest_xml_reader *r)
{
	manifest_xml_free(r->x);
	dynbuf_release(&r->pending);
	memset(r, 0, sizeof(*r));
}

int
manifest_xml_read(void *arg, uint8_t *buf, size_t cap, size_t *got, struct devid_error *e)
{
	struct manifest_xml_reader *r = arg;
	uint8_t *chunk = NULL;
	size_t n;
	int rc = 0;

	*got = 0;
	while (r->pos == r->pending.len && !r->eof) {
		dynbuf_reset(&r->pending);
		r->pos = 0;
		if (chunk == NULL && (chunk = malloc(XML_READ_CHUNK)) == NULL) {
			rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
			goto out;
		}
		if ((rc = r->inner(r->inner_arg, chunk, XML_READ_CHUNK, &n, e)) != 0)
			goto out;
		r->eof = n == 0;
		if ((rc = manifest_xml_feed(r->x, chunk, n, r->eof, &r->pending, e)) != 0)
			goto out;
	}
	n = r->pending.len - r->pos < cap ? r->pending.len - r->pos : cap;
	if (n > 0)
		memcpy(buf, r->pending.p + r->pos, n);
	r->pos += n;
	*got = n;
out:
	free(chunk);
	return rc;
}

/* Appends s[0..n) as XML character data. */
static int
add_text(struct dynbuf *out, const char *s, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '&')
			rc = dynbuf_addstr(out, "&amp;");
		else if (c == '<')
			rc = dynbuf_addstr(out, "&lt;");
		else if (c == '>')
			rc = dynbuf_addstr(out, "&gt;");
		else
			rc = dynbuf_add(out, &c, 1);
	}
	return rc;
}

static int
entry_string(const json_t *o, const char *key, bool b64, const char **s, size_t *n, size_t index,
    struct devid_error *e)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return devid_error_set(
		    e, DEVID_EINVAL, "entry %zu: %s is not a string", index, key);
	*s = json_string_value(v);
	*n = json_string_length(v);
	if (*n == 0 || strlen(*s) != *n)
		return devid_error_set(
		    e, DEVID_EINVAL, "entry %zu: %s is empty or holds NUL", index, key);
	for (size_t i = 0; b64 && i < *n; i++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
			(*s)[i]) == NULL)
			return devid_error_set(
			    e, DEVID_EINVAL, "entry %zu: %s is not unpadded base64url", index, key);
	return 0;
}

int
manifest_xml_entry(const json_t *entry, size_t index, struct dynbuf *out, struct devid_error *e)
{
	const json_t *h = json_object_get(entry, "header");
	const char *pay, *prot, *uid, *sig;
	size_t npay, nprot, nuid, nsig;
	int rc;

	if (!json_is_object(entry) || json_object_size(entry) != 4 || !json_is_object(h) ||
	    json_object_size(h) != 1)
		return devid_error_set(e, DEVID_EINVAL,
		    "entry %zu: not an object of exactly payload, protected, header {uniqueId} "
		    "and signature, so it has no XML form",
		    index);
	if ((rc = entry_string(entry, "payload", true, &pay, &npay, index, e)) != 0 ||
	    (rc = entry_string(entry, "protected", true, &prot, &nprot, index, e)) != 0 ||
	    (rc = entry_string(entry, "signature", true, &sig, &nsig, index, e)) != 0 ||
	    (rc = entry_string(h, "uniqueId", false, &uid, &nuid, index, e)) != 0)
		return rc;
	if (!unique_id_ok((const uint8_t *)uid, nuid))
		return devid_error_set(e, DEVID_EINVAL,
		    "entry %zu: header.uniqueId holds a control character, which XML cannot carry",
		    index);
	if ((rc = dynbuf_addf(out, "  <entry>\n    <payload>%s</payload>\n", pay)) != 0 ||
	    (rc = dynbuf_addf(out, "    <protected>%s</protected>\n", prot)) != 0 ||
	    (rc = dynbuf_addstr(out, "    <header><uniqueId>")) != 0 ||
	    (rc = add_text(out, uid, nuid)) != 0 ||
	    (rc = dynbuf_addstr(out, "</uniqueId></header>\n")) != 0 ||
	    (rc = dynbuf_addf(out, "    <signature>%s</signature>\n  </entry>\n", sig)) != 0)
		return devid_error_set(e, rc, "entry %zu: %s", index,
		    rc == DEVID_ELIMIT ? "more XML than the buffer holds" : "out of memory");
	return 0;
}
