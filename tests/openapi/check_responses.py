#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""check_responses.py DOC DIR - real answers of devid match docs/openapi.json.

DIR holds exchanges recorded by tests/integration/lib.sh (api_curl with DEVID_API_RECORD=DIR):
one directory each with `meta` (method, path, status, content type, a line each) and `body`.
For each, the path is matched against the document's path templates as devid's router
matches them (one whole segment a {parameter}), HEAD as GET. Then:
 - the status must be documented for that operation (a path no template matches must be 404,
   a method the path lacks 405, both with the Error schema: the document's description says so);
 - a documented answer with content must come with one of its media types, and a JSON answer
   must validate against the schema for that media type; one without content must be empty;
 - the answer of GET /api/v1/openapi.json must be DOC, byte for byte.
A mismatch is printed with the method, the path template, the status and the schema path;
exits 1 if there is any, 77 without python3-jsonschema.
"""
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    print("SKIP: python3-jsonschema is not installed (scripts/install-deps installs it)")
    sys.exit(77)


def esc(s):
    return s.replace("~", "~0").replace("/", "~1")


def pointer(doc, ref):
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def match(templates, path):
    """The template devid's router would pick for path (literals first: they are listed first)."""
    segs = path.split("/")[1:]
    found = []
    for t in templates:
        ts = t.split("/")[1:]
        if len(ts) != len(segs):
            continue
        ok = True
        for a, b in zip(ts, segs):
            if a.startswith("{") and a.endswith("}"):
                ok = ok and b not in ("", ".", "..")
            else:
                ok = ok and a == b
        if ok:
            found.append(t)
    # a literal segment beats a parameter where both match (/api/v1/audit/verify)
    found.sort(key=lambda t: [s.startswith("{") for s in t.split("/")])
    return found[0] if found else None


def main():
    if len(sys.argv) != 3:
        print("usage: check_responses.py DOC DIR", file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        raw = f.read()
    doc = json.loads(raw)
    resolver = jsonschema.RefResolver.from_schema(doc)
    paths = doc["paths"]
    failures = []
    seen = set()
    n = 0
    for name in sorted(os.listdir(sys.argv[2])):
        d = os.path.join(sys.argv[2], name)
        with open(os.path.join(d, "meta"), encoding="utf-8") as f:
            method, path, status, ctype = (f.read().split("\n") + [""] * 4)[:4]
        with open(os.path.join(d, "body"), "rb") as f:
            body = f.read()
        n += 1
        path = path.split("?", 1)[0]
        media = ctype.split(";", 1)[0].strip().lower()
        op_method = "get" if method == "HEAD" else method.lower()
        template = match(paths, path)
        where = "%s %s" % (method, template or path)

        def bad(msg):
            failures.append("%s -> %s: %s" % (where, status, msg))

        if template is None or op_method not in paths[template]:
            want = "404" if template is None else "405"
            if status != want:
                bad("not a documented operation, and not answered %s" % want)
                continue
            ptr = "#/components/schemas/Error"
        else:
            seen.add((op_method, template))
            responses = paths[template][op_method]["responses"]
            rptr = "#/paths/%s/%s/responses" % (esc(template), op_method)
            if status not in responses:
                bad("status %s is not documented (%s has %s)" % (status, rptr, ", ".join(sorted(responses))))
                continue
            resp = responses[status]
            rptr += "/" + status
            if "$ref" in resp:
                rptr = resp["$ref"]
                resp = pointer(doc, rptr)
            content = resp.get("content")
            if not content:
                if body:
                    bad("%s documents no content, the answer has %d bytes" % (rptr, len(body)))
                continue
            if media not in content:
                bad("content type %r is not one of %s (%s/content)" % (ctype, ", ".join(content), rptr))
                continue
            if media != "application/json":
                continue
            ptr = "%s/content/%s/schema" % (rptr, esc(media))
            # name the component where the schema is only a reference to one
            while list(pointer(doc, ptr)) == ["$ref"]:
                ptr = pointer(doc, ptr)["$ref"]
        if template == "/api/v1/openapi.json" and status == "200" and body != raw:
            bad("the served document differs from %s" % sys.argv[1])
        try:
            value = json.loads(body)
        except ValueError as e:
            bad("the answer is not JSON (%s): %r" % (e, body[:200]))
            continue
        v = jsonschema.Draft202012Validator({"$ref": ptr}, resolver=resolver)
        for e in v.iter_errors(value):
            bad("%s: %s (schema %s/%s)" % (e.json_path, e.message[:300], ptr, "/".join(map(str, e.schema_path))))

    ops = [(m, t) for t, item in paths.items() for m in item if m in ("get", "put", "post", "delete", "patch")]
    missed = [("%s %s" % (m.upper(), t)) for m, t in ops if (m, t) not in seen]
    for f in failures:
        print("FAIL: " + f)
    print("%d exchanges; %d of %d operations answered at least once%s" % (
        n, len(ops) - len(missed), len(ops), "; not: " + ", ".join(missed) if missed else ""))
    print("%d failures" % len(failures))
    if n == 0:
        print("FAIL: no exchanges recorded in %s" % sys.argv[2])
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
