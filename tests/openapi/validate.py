#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""validate.py DOC OAS-SCHEMA - docs/openapi.json is a valid OpenAPI 3.1 document.

Checks with python3-jsonschema (Debian's, JSON Schema 2020-12):
 1. the document against the official OpenAPI 3.1 schema (tests/data/openapi/SOURCES);
 2. every Schema Object in it against the JSON Schema 2020-12 meta-schema, which the official
    schema leaves out ("without schema validation");
 3. what neither schema can say: no duplicate keys, every local $ref resolves, operationIds
    are unique, each path's {parameters} are declared as path parameters by each operation
    and nothing else is.
Prints each failure with its JSON path; exits 1 if there is any, 77 without jsonschema.
"""
import json
import re
import sys

try:
    import jsonschema
except ImportError:
    print("SKIP: python3-jsonschema is not installed (scripts/install-deps installs it)")
    sys.exit(77)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
failures = []


def fail(where, msg):
    failures.append("%s: %s" % (where, msg))


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dups = sorted({k for k in keys if keys.count(k) > 1})
    if dups:
        raise ValueError("duplicate keys %s" % ", ".join(dups))
    return dict(pairs)


def pointer(doc, ref):
    node = doc
    for part in ref[2:].split("/") if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def walk(node, path, visit):
    visit(node, path)
    if isinstance(node, dict):
        for k, v in node.items():
            walk(v, path + "/" + k.replace("~", "~0").replace("/", "~1"), visit)
    elif isinstance(node, list):
        for n, v in enumerate(node):
            walk(v, path + "/" + str(n), visit)


def schema_objects(doc):
    """(JSON pointer, Schema Object) for every schema the document holds."""
    out = [("#/components/schemas/" + k, v) for k, v in doc.get("components", {}).get("schemas", {}).items()]

    def visit(node, path):
        if isinstance(node, dict) and not path.startswith("#/components/schemas"):
            if isinstance(node.get("schema"), dict):
                out.append((path + "/schema", node["schema"]))

    walk(doc, "#", visit)
    return out


def main():
    if len(sys.argv) != 3:
        print("usage: validate.py DOC OAS-SCHEMA", file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            doc = json.load(f, object_pairs_hook=no_duplicates)
    except ValueError as e:
        print("%s: not JSON: %s" % (sys.argv[1], e))
        return 1
    with open(sys.argv[2], encoding="utf-8") as f:
        oas = json.load(f)

    # 1. the official schema
    v = jsonschema.Draft202012Validator(oas)
    for e in sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        fail(e.json_path, "%s (OpenAPI schema: %s)" % (e.message, "/".join(map(str, e.absolute_schema_path))))

    # 2. each Schema Object is JSON Schema 2020-12
    meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)
    nschemas = 0
    for where, s in schema_objects(doc):
        nschemas += 1
        for e in meta.iter_errors(s):
            fail(where + "".join("/" + str(p) for p in e.absolute_path), e.message)

    # 3. references, operation ids, path parameters
    def visit(node, path):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#"):
                fail(path, "$ref %s is not local" % ref)
                return
            try:
                pointer(doc, ref)
            except (KeyError, IndexError, ValueError):
                fail(path, "$ref %s does not resolve" % ref)

    walk(doc, "#", visit)
    seen = {}
    nops = 0
    for template, item in doc.get("paths", {}).items():
        want = set(re.findall(r"\{([^}]+)\}", template))
        common = [p for p in item.get("parameters", [])]
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            nops += 1
            where = "%s %s" % (method.upper(), template)
            oid = op.get("operationId")
            if oid in seen:
                fail(where, "operationId %s is also %s's" % (oid, seen[oid]))
            seen[oid] = where
            params = []
            for p in common + op.get("parameters", []):
                if "$ref" in p:
                    p = pointer(doc, p["$ref"])
                params.append(p)
            have = {p["name"] for p in params if p.get("in") == "path"}
            for name in sorted(want - have):
                fail(where, "path parameter {%s} is not declared" % name)
            for name in sorted(have - want):
                fail(where, "declares path parameter %s, which the path does not have" % name)

    for f in failures:
        print("FAIL: " + f)
    print("%s: %d paths, %d operations, %d schemas; %d failures" % (
        sys.argv[1], len(doc.get("paths", {})), nops, nschemas, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
