#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for the Azure IoT Hub Device Provisioning Service's service API, for tests.

It shares no code with devid and checks every request on its own: the SAS token (the HMAC
recomputed from the policy key it was given, sr, se not expired, skn), the path, method and
api-version against the OpenAPI document (service.json), and the body against its schemas
(BulkEnrollmentOperation, IndividualEnrollment: required members, types, enums, no unknown or
read-only members, at most 10 enrollments, registration id pattern, X.509 attestation with a
PEM certificate whose CN is the registration id, or TPM attestation whose endorsementKey is
the base64 of a TPM2B_PUBLIC: an RSA 2048 or ECC P-256/P-384 restricted decryption key, fixed
to its TPM, as a TCG EK template makes it, with no storageRootKey, which an individual
enrollment made before the device registers cannot know). Each TPM enrollment received is
recorded in "tpm" (registration id -> endorsementKey, as sent). It keeps the enrollments, answers with the
service's error shapes (per-item errors inside a 200, 429 with or without Retry-After, 5xx when
told to) and enforces an operations-a-minute quota: a bucket of 10 operations (one bulk call)
refilled at quota/60 a second; every enrollment of a bulk call is one operation.

It also answers devid's connector test, a query of individual enrollments (POST
/enrollments/query, x-ms-max-item-count: 1), checked the same way, counted in "queries".

Usage: dps_endpoint.py SERVICE_JSON KEY_B64 POLICY HOST OPS_PER_MINUTE
Prints the port it listens on (127.0.0.1). Test-only paths (not DPS):
  GET  /_test/state   {"enrollments":{id:{...}},"ops":[...],"violations":[...],...}
  POST /_test/inject  [{"kind":"status","status":503,"n":1} | {"kind":"429","retryAfter":1}
                       | {"kind":"429"} | {"kind":"item","code":500000,"n":3}]
"""
import base64
import hashlib
import hmac
import json
import re
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit, parse_qs

from cryptography import x509
from cryptography.x509.oid import NameOID

SPEC = json.load(open(sys.argv[1]))
KEY = base64.b64decode(sys.argv[2], validate=True)
POLICY = sys.argv[3]
HOST = sys.argv[4]
OPM = float(sys.argv[5])
API = SPEC["info"]["version"]
BURST = 10.0
# a call paced exactly at the quota can arrive a little early relative to the call before it
# (that one spent longer on the way, or waited longer for the lock here): calls are judged with
# this many seconds of slack. Measured on an idle machine, devid's pacer needs about 0.02 s
# (state["max_early_secs"]); 0.2 s leaves room for a loaded one (tests run in parallel) and is
# still a fifth of the 1 s by which a client that did not pace at all would be early per call.
SLACK_SECS = 0.2
MAX_BULK = 10
REGID = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$")

lock = threading.Lock()
state = {
    "enrollments": {},
    "ops": [],  # one per enrollment item received: {"id","mode","result"}
    "requests": 0,
    "violations": [],  # a request that broke the API or the quota rules
    "quota_rejections": 0,
    "retry_after_early": 0,  # requests before a Retry-After we gave had passed
    "max_ops_window": 0,
    "max_early_secs": 0.0,  # the most slack an accepted call needed (see SLACK_SECS)
    "tpm": {},  # registration id -> the endorsementKey of its last TPM enrollment
}
injections = []
bucket = {"tokens": BURST, "at": time.monotonic()}
# monotonic time before which Retry-After told the client to wait. It is set before the 429 is
# written, so a client that waits the whole Retry-After from when it reads the answer always
# arrives after it (by the answer's transit time): no tolerance is needed, and none is given.
not_before = [0.0]
recent = []  # (monotonic time, operations) of accepted bulk calls, for max_ops_window


def now_utc():
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def violation(msg):
    state["violations"].append(msg)


# --- the OpenAPI document ---------------------------------------------------------------------


def resolve(schema):
    while "$ref" in schema:
        schema = SPEC["definitions"][schema["$ref"].split("/")[-1]]
    return schema


def check(value, schema, where, errs):
    s = resolve(schema)
    t = s.get("type")
    if t == "object" or "properties" in s:
        if not isinstance(value, dict):
            errs.append(f"{where}: not an object")
            return
        props = s.get("properties", {})
        for r in s.get("required", []):
            if r not in value:
                errs.append(f"{where}: required member {r} missing")
        for k, v in value.items():
            if k in props:
                if resolve(props[k]).get("readOnly") or props[k].get("readOnly"):
                    errs.append(f"{where}.{k}: read-only member sent")
                check(v, props[k], f"{where}.{k}", errs)
            elif "additionalProperties" in s:
                ap = s["additionalProperties"]
                if isinstance(ap, dict):
                    check(v, ap, f"{where}.{k}", errs)
            elif "properties" in s:  # a free-form object ({"type":"object"}) takes any member
                errs.append(f"{where}: unknown member {k}")
    elif t == "array":
        if not isinstance(value, list):
            errs.append(f"{where}: not an array")
            return
        for i, v in enumerate(value):
            check(v, s["items"], f"{where}[{i}]", errs)
    elif t == "string":
        if not isinstance(value, str):
            errs.append(f"{where}: not a string")
        elif "enum" in s and value not in s["enum"]:
            errs.append(f"{where}: {value!r} not one of {s['enum']}")
        elif len(value) < s.get("minLength", 0):
            errs.append(f"{where}: too short")
    elif t == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            errs.append(f"{where}: not an integer")
    elif t == "boolean":
        if not isinstance(value, bool):
            errs.append(f"{where}: not a boolean")


def operation(method, path):
    """The OpenAPI operation for method and path, or None."""
    for template, item in SPEC["paths"].items():
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        if re.match(rx, path) and method.lower() in item:
            return template, item[method.lower()]
    return None


# --- the SAS token ----------------------------------------------------------------------------


def check_sas(header):
    if not header or not header.startswith("SharedAccessSignature "):
        return "no SharedAccessSignature"
    fields = {}
    for part in header[len("SharedAccessSignature "):].split("&"):
        k, _, v = part.partition("=")
        if k in fields:
            return f"{k} twice"
        fields[k] = v
    if set(fields) != {"sr", "sig", "se", "skn"}:
        return f"members {sorted(fields)}, want sr, sig, se, skn"
    sr = unquote(fields["sr"])
    if sr != HOST:
        return f"sr is {sr!r}, not {HOST!r}"
    if fields["sr"] != quote(sr, safe=""):
        return "sr is not URL-encoded"
    if unquote(fields["skn"]) != POLICY:
        return "skn is not the policy"
    if not fields["se"].isdigit() or int(fields["se"]) <= time.time():
        return "se expired or not a number"
    if int(fields["se"]) > time.time() + 366 * 86400:
        return "se more than a year ahead"
    want = base64.b64encode(hmac.new(KEY, f"{quote(sr, safe='')}\n{fields['se']}".encode(),
                                      hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(unquote(fields["sig"]), want):
        return "sig does not verify"
    if fields["sig"] != quote(want, safe=""):
        return "sig is not URL-encoded"
    return None


# --- the enrollments --------------------------------------------------------------------------


def u16(b, at):
    if at + 2 > len(b):
        raise ValueError("truncated")
    return int.from_bytes(b[at:at + 2], "big"), at + 2


def sized(b, at):
    n, at = u16(b, at)
    if at + n > len(b):
        raise ValueError("truncated")
    return b[at:at + n], at + n


def check_ek(b64):
    """Why b64 is not an EK's TPM2B_PUBLIC (TPM 2.0 Part 2 12.2.5, 12.2.3.7), or None."""
    try:
        pub = base64.b64decode(b64, validate=True)
        size, at = u16(pub, 0)
        if size != len(pub) - 2:
            return f"the TPM2B_PUBLIC size {size} is not the {len(pub) - 2} bytes that follow"
        typ, at = u16(pub, at)
        name_alg, at = u16(pub, at)
        attrs = int.from_bytes(pub[at:at + 4], "big")
        at += 4
        policy, at = sized(pub, at)
        # fixedTPM 1, fixedParent 4, sensitiveDataOrigin 5, adminWithPolicy 7, restricted 16,
        # decrypt 17, sign 18
        need = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 7) | (1 << 16) | (1 << 17)
        if attrs & need != need or attrs & (1 << 18):
            return f"objectAttributes 0x{attrs:08x}: not a restricted decryption key fixed to its TPM"
        if name_alg not in (0x000B, 0x000C) or len(policy) != {0x000B: 32, 0x000C: 48}[name_alg]:
            return f"nameAlg 0x{name_alg:04x} with a {len(policy)}-byte authPolicy"
        sym, at = u16(pub, at)
        bits, at = u16(pub, at)
        mode, at = u16(pub, at)
        scheme, at = u16(pub, at)
        if sym != 0x0006 or bits not in (128, 256) or mode != 0x0043 or scheme != 0x0010:
            return "symmetric is not AES-CFB, or a scheme is set"
        if typ == 0x0001:
            key_bits, at = u16(pub, at)
            at += 4  # exponent
            n, at = sized(pub, at)
            if key_bits != 2048 or len(n) != 256:
                return f"RSA {key_bits} bits with a {len(n)}-byte modulus"
        elif typ == 0x0023:
            curve, at = u16(pub, at)
            kdf, at = u16(pub, at)
            x, at = sized(pub, at)
            y, at = sized(pub, at)
            field = {0x0003: 32, 0x0004: 48}.get(curve)
            if field is None or kdf != 0x0010 or len(x) != field or len(y) != field:
                return f"ECC curve 0x{curve:04x} with a {len(x)}/{len(y)}-byte point"
        else:
            return f"key type 0x{typ:04x}, not RSA or ECC"
        if at != len(pub):
            return f"{len(pub) - at} bytes after the TPMT_PUBLIC"
    except ValueError as ex:
        return f"not base64 of a TPM2B_PUBLIC ({ex})"
    return None


def check_enrollment(e, i, errs):
    rid = e.get("registrationId")
    if not isinstance(rid, str) or not REGID.match(rid):
        errs.append(f"enrollments[{i}].registrationId {rid!r}: not a registration id")
        return
    att = e.get("attestation", {})
    if att.get("type") == "tpm":
        if set(att) != {"type", "tpm"}:
            errs.append(f"enrollments[{i}]: TPM attestation with members {sorted(att)}")
            return
        tpm = att["tpm"]
        if set(tpm) != {"endorsementKey"}:
            errs.append(f"enrollments[{i}].attestation.tpm: members {sorted(tpm)}, want endorsementKey")
            return
        why = check_ek(tpm["endorsementKey"])
        if why is not None:
            errs.append(f"enrollments[{i}].attestation.tpm.endorsementKey: {why}")
        return
    if att.get("type") != "x509":
        errs.append(f"enrollments[{i}]: attestation type is neither x509 nor tpm")
        return
    if set(att) != {"type", "x509"}:
        errs.append(f"enrollments[{i}]: X.509 attestation with members {sorted(att)}")
        return
    try:
        pem = att["x509"]["clientCertificates"]["primary"]["certificate"]
        cert = x509.load_pem_x509_certificate(pem.encode())
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    except Exception as ex:  # noqa: BLE001 - any failure is the client's
        errs.append(f"enrollments[{i}]: no PEM primary client certificate ({ex})")
        return
    if cn.lower() != rid.lower():
        errs.append(f"enrollments[{i}]: the certificate's CN {cn} is not the registration id")


def take_quota(n):
    """True when n operations fit; else the seconds until they do."""
    now = time.monotonic()
    bucket["tokens"] = min(BURST, bucket["tokens"] + (now - bucket["at"]) * OPM / 60.0)
    bucket["at"] = now
    if bucket["tokens"] + SLACK_SECS * OPM / 60.0 >= n:
        if bucket["tokens"] < n:
            state["max_early_secs"] = max(state["max_early_secs"],
                                          (n - bucket["tokens"]) / (OPM / 60.0))
        bucket["tokens"] -= n
        recent.append((now, n))
        while recent and recent[0][0] < now - 60.0:
            recent.pop(0)
        state["max_ops_window"] = max(state["max_ops_window"], sum(k for _, k in recent))
        return True
    return (n - bucket["tokens"]) / (OPM / 60.0)


def bulk(body):
    """Applies a BulkEnrollmentOperation; the BulkEnrollmentOperationResult."""
    errors = []
    mode = body["mode"]
    for e in body["enrollments"]:
        rid = e["registrationId"].lower()
        op = {"id": rid, "mode": mode}
        state["ops"].append(op)
        inj = next((j for j in injections if j["kind"] == "item"), None)
        if inj is not None:
            inj["n"] -= 1
            if inj["n"] <= 0:
                injections.remove(inj)
            errors.append({"registrationId": e["registrationId"], "errorCode": inj["code"],
                           "errorStatus": "Injected failure."})
            op["result"] = inj["code"]
            continue
        have = state["enrollments"].get(rid)
        if mode == "create" and have is not None:
            errors.append({"registrationId": e["registrationId"], "errorCode": 409201,
                           "errorStatus": "Enrollment already exists."})
            op["result"] = 409201
            continue
        if mode == "delete":
            if have is None:
                errors.append({"registrationId": e["registrationId"], "errorCode": 404202,
                               "errorStatus": "Enrollment not found."})
                op["result"] = 404202
                continue
            del state["enrollments"][rid]
            op["result"] = 0
            continue
        rec = dict(e)
        if e["attestation"]["type"] == "tpm":
            state["tpm"][rid] = e["attestation"]["tpm"]["endorsementKey"]
        rec.setdefault("provisioningStatus", "enabled")
        rec["etag"] = uuid.uuid4().hex
        rec["createdDateTimeUtc"] = have["createdDateTimeUtc"] if have else now_utc()
        rec["lastUpdatedDateTimeUtc"] = now_utc()
        rec["creates"] = (have or {}).get("creates", 0) + (1 if have is None else 0)
        state["enrollments"][rid] = rec
        op["result"] = 0
    return {"isSuccessful": not errors, "errors": errors}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("dps: " + (fmt % args) + "\n")

    def answer(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, message, headers=()):
        self.answer(status, {"errorCode": code, "trackingId": uuid.uuid4().hex,
                             "message": message, "timestampUtc": now_utc()},
                    list(headers) + [("x-ms-error-code", str(code))])

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def query(self, raw):
        """devid's connector test: a query of individual enrollments, one item a page."""
        if self.headers.get("x-ms-max-item-count") != "1":
            violation(f"query: x-ms-max-item-count {self.headers.get('x-ms-max-item-count')}, want 1")
            return self.error(400, 400000, "x-ms-max-item-count must be 1 for a test")
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            violation("query: Content-Type is not application/json")
            return self.error(415, 415000, "unsupported media type")
        try:
            body = json.loads(raw)
        except ValueError:
            violation("query: the body is not JSON")
            return self.error(400, 400004, "the body is not JSON")
        errs = []
        check(body, {"$ref": "#/definitions/QuerySpecification"}, "querySpecification", errs)
        if errs:
            violation("query: " + "; ".join(errs[:5]))
            return self.error(400, 400004, "; ".join(errs[:5]))
        state["queries"] = state.get("queries", 0) + 1
        return self.answer(200, list(state["enrollments"].values())[:1])

    def handle_any(self, method):
        url = urlsplit(self.path)
        raw = self.body()
        with lock:
            if url.path == "/_test/state" and method == "GET":
                return self.answer(200, state)
            if url.path == "/_test/inject" and method == "POST":
                injections.extend(json.loads(raw))
                return self.answer(200, {"queued": len(injections)})
            state["requests"] += 1
            if time.monotonic() < not_before[0]:
                state["retry_after_early"] += 1
            op = operation(method, url.path)
            if op is None:
                violation(f"{method} {url.path}: not in the OpenAPI document")
                return self.error(404, 404000, "no such operation")
            q = parse_qs(url.query)
            if q.get("api-version") != [API]:
                violation(f"{method} {url.path}: api-version {q.get('api-version')}")
                return self.error(400, 400000, "api-version is missing or unknown")
            why = check_sas(self.headers.get("Authorization"))
            if why is not None:
                violation(f"SAS: {why}")
                return self.error(401, 401002, "Unauthorized: " + why)
            if op[0] == "/enrollments/query" and method == "POST":
                return self.query(raw)
            if op[0] != "/enrollments" or method != "POST":
                violation(f"{method} {url.path}: not what the connector is to call")
                return self.error(405, 405000, "the stand-in only takes bulk operations")
            if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                violation("Content-Type is not application/json")
                return self.error(415, 415000, "unsupported media type")
            try:
                body = json.loads(raw)
            except ValueError:
                violation("the body is not JSON")
                return self.error(400, 400004, "the body is not JSON")
            errs = []
            schema = next(p["schema"] for p in op[1]["parameters"] if p.get("in") == "body")
            check(body, schema, "bulkOperation", errs)
            if not errs:
                if not 1 <= len(body["enrollments"]) <= MAX_BULK:
                    errs.append(f"{len(body['enrollments'])} enrollments, 1 to {MAX_BULK} allowed")
                for i, e in enumerate(body["enrollments"]):
                    check_enrollment(e, i, errs)
                ids = [e.get("registrationId", "").lower() for e in body["enrollments"]]
                if len(set(ids)) != len(ids):
                    errs.append("a registration id twice in one call")
            if errs:
                violation("body: " + "; ".join(errs[:5]))
                return self.error(400, 400004, "; ".join(errs[:5]))
            inj = injections[0] if injections and injections[0]["kind"] != "item" else None
            if inj is not None:
                injections.pop(0)
                if inj["kind"] == "429":
                    hdr = []
                    if "retryAfter" in inj:
                        hdr = [("Retry-After", str(inj["retryAfter"]))]
                        not_before[0] = time.monotonic() + inj["retryAfter"]
                    return self.error(429, 429001, "Operations are being throttled for this tenant.", hdr)
                return self.error(inj["status"], inj["status"] * 1000, "Injected failure.")
            got = take_quota(len(body["enrollments"]))
            if got is not True:
                state["quota_rejections"] += 1
                ra = max(1, int(got + 0.999))
                not_before[0] = time.monotonic() + ra
                return self.error(429, 429001, "Operations are being throttled for this tenant.",
                                  [("Retry-After", str(ra))])
            return self.answer(200, bulk(body))


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
