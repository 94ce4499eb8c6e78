#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""check_responses.py DOC DIR - real exchanges with devid match docs/openapi.json.

DIR holds exchanges recorded by tests/integration/lib.sh (api_curl with DEVID_API_RECORD=DIR):
one directory each with `meta` (method, path, status, content type, the request's content
type, a line each), `body` (the answer) and, when the request had one, `request` (its body).
For each, the path is matched against the document's path templates as devid's router
matches them (one whole segment a {parameter}), HEAD as GET. Then:
 - the status must be documented for that operation (a path no template matches must be 404,
   a method the path lacks 405, both with the Error schema: the document's description says so);
 - a documented answer with content must come with one of its media types, and a JSON answer
   must validate against the schema for that media type; one without content must be empty;
 - the answer of GET /api/v1/openapi.json must be DOC, byte for byte;
 - a request the server accepted (2xx) must be one the document describes: a body only where
   the operation has a requestBody, one of its media types, a JSON body valid against the
   schema of that media type, and no missing body where the requestBody is required. Requests
   answered otherwise (4xx: deliberately bad input) are not checked against the schema.
Every operation of the document must be exercised, answered with success (2xx or 3xx) at least
once, except those in UNEXERCISED below (each with the reason no test can do that here).
A mismatch is printed with the method, the path template, the status and the schema path;
exits 1 if there is any, 77 without python3-jsonschema. The last lines count what was checked.
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


# Operations no recorded exchange needs to exercise: "METHOD /template": why. Keep it short;
# where a call in an integration script would cover one cheaply, make that call instead.
UNEXERCISED = {
}


def schema_errors(doc, resolver, ptr, value):
    """jsonschema's errors for value against the schema at ptr, as "path: message (schema ...)"."""
    # name the component where the schema is only a reference to one
    while list(pointer(doc, ptr)) == ["$ref"]:
        ptr = pointer(doc, ptr)["$ref"]
    v = jsonschema.Draft202012Validator({"$ref": ptr}, resolver=resolver)
    return ["%s: %s (schema %s/%s)" % (e.json_path, e.message[:300], ptr, "/".join(map(str, e.schema_path)))
            for e in v.iter_errors(value)]


def check_request(doc, resolver, template, op_method, request, rtype, bad):
    """Checks the body of an accepted request against the operation's requestBody; returns
    whether a JSON body was validated against a schema."""
    op = doc["paths"][template][op_method]
    rb = op.get("requestBody")
    rptr = "#/paths/%s/%s/requestBody" % (esc(template), op_method)
    if rb is not None and "$ref" in rb:
        rptr = rb["$ref"]
        rb = pointer(doc, rptr)
    if request is None:
        if rb is not None and rb.get("required"):
            bad("accepted without the request body %s requires" % rptr)
        return False
    if rb is None:
        bad("the request has a body (%d bytes, %s), the operation documents none" % (len(request), rtype or "no type"))
        return False
    media = rtype.split(";", 1)[0].strip().lower()
    content = rb.get("content", {})
    if media not in content:
        bad("the request's content type %r is not one of %s (%s/content)" % (rtype, ", ".join(content), rptr))
        return False
    if media != "application/json":
        return False
    try:
        value = json.loads(request)
    except ValueError as e:
        bad("the request body is not JSON (%s): %r" % (e, request[:200]))
        return False
    for e in schema_errors(doc, resolver, "%s/content/%s/schema" % (rptr, esc(media)), value):
        bad("request body " + e)
    return True


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
    seen = {}
    n = 0
    nreq = 0
    nans = 0
    req_ops = set()
    for name in sorted(os.listdir(sys.argv[2])):
        d = os.path.join(sys.argv[2], name)
        with open(os.path.join(d, "meta"), encoding="utf-8") as f:
            method, path, status, ctype, rtype = (f.read().split("\n") + [""] * 5)[:5]
        with open(os.path.join(d, "body"), "rb") as f:
            body = f.read()
        request = None
        if os.path.exists(os.path.join(d, "request")):
            with open(os.path.join(d, "request"), "rb") as f:
                request = f.read()
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
            seen.setdefault((op_method, template), set()).add(status)
            if status.startswith("2") and check_request(doc, resolver, template, op_method, request, rtype, bad):
                nreq += 1
                req_ops.add((op_method, template))
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
        if template == "/api/v1/openapi.json" and status == "200" and body != raw:
            bad("the served document differs from %s" % sys.argv[1])
        try:
            value = json.loads(body)
        except ValueError as e:
            bad("the answer is not JSON (%s): %r" % (e, body[:200]))
            continue
        nans += 1
        for e in schema_errors(doc, resolver, ptr, value):
            bad(e)

    # exercised: answered at least once with success (2xx, or a redirect: GET / is 302). An
    # operation only ever refused checks the shared Error schema, not its own.
    ops = ["%s %s" % (m.upper(), t) for t, item in paths.items()
           for m in item if m in ("get", "put", "post", "delete", "patch")]
    answered = {"%s %s" % (m.upper(), t): sts for (m, t), sts in seen.items()}
    exercised = {op for op, sts in answered.items() if any(st[:1] in ("2", "3") for st in sts)}
    for op in ops:
        if op not in exercised and op not in UNEXERCISED:
            failures.append("%s: no recorded exchange exercises it (%s; call it from an integration "
                            "test, or add it to UNEXERCISED in %s with the reason)" % (
                                op, "answered only " + ", ".join(sorted(answered[op])) if op in answered
                                else "never called", os.path.basename(sys.argv[0])))
    for op in sorted(UNEXERCISED):
        if op not in ops:
            failures.append("%s: in UNEXERCISED, but not an operation of the document" % op)
        elif op in exercised:
            failures.append("%s: in UNEXERCISED, but exercised: remove it from the list" % op)
    for f in failures:
        print("FAIL: " + f)
    with_body = [(m, t) for t, item in paths.items() for m in item
                 if m in ("put", "post", "patch", "delete") and "requestBody" in item[m]]
    unchecked = ["%s %s" % (m.upper(), t) for m, t in with_body if (m, t) not in req_ops]
    print("%d exchanges: %d JSON answers and %d accepted JSON request bodies checked against their schemas" % (
        n, nans, nreq))
    print("%d of %d operations with a requestBody had an accepted JSON body checked%s" % (
        len(with_body) - len(unchecked), len(with_body), "; not: " + ", ".join(unchecked) if unchecked else ""))
    print("%d of %d operations exercised (answered 2xx or 3xx); not, by UNEXERCISED: %s" % (
        len(exercised & set(ops)), len(ops), ", ".join(sorted(UNEXERCISED)) or "none"))
    print("%d failures" % len(failures))
    if n == 0:
        print("FAIL: no exchanges recorded in %s" % sys.argv[2])
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
