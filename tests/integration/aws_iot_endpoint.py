# SPDX-License-Identifier: Apache-2.0
"""A stand-in for AWS IoT Core's control plane, for the aws-iot connector's tests. It shares no
code with devid: every request is checked with Debian's botocore.

- SigV4: the signature is recomputed with botocore.auth.SigV4Auth (the same credentials,
  the client's x-amz-date and the headers it says it signed) and compared; host, x-amz-date
  (within 5 minutes) and, with a session token, x-amz-security-token must be signed. A
  mismatch answers 403 InvalidSignatureException, an unknown key 403
  UnrecognizedClientException, as AWS does.
- The operation is found by method and path among botocore's IoT model
  (botocore/data/iot/2015-05-28/service-2.json); its input (URI labels, query string,
  headers, JSON body) is rebuilt by the model's locations and checked with botocore's own
  ParamValidator (required members, types, minimum lengths) plus each string's maximum
  length, pattern and enum; unknown members are refused (400 SerializationException).
- State: certificates (id = SHA-256 of the DER, status history), things, thing principals
  (detached asynchronously after --detach-delay), policy targets; so 409
  ResourceAlreadyExistsException, 404 ResourceNotFoundException, 409 DeleteConflictException
  and 406 CertificateStateException happen for real.
- Quotas: a token bucket per operation (rate r, burst r; a request may come up to one
  interval early, for scheduling jitter, but always takes a whole token); over it: 400 ThrottlingException, counted.
- Faults on demand: POST /_standin/inject {"op":NAME,"status":503|500|400,"count":N[,"type"]}
  (400 without a type means ThrottlingException); POST /_standin/quotas {"Op": rate, ...} (0: none).
- GET /_standin/state: the state, per-operation counts, throttled and rejected requests.
  Every call is also logged as a JSON line to LOGFILE.

Prints its port on stdout, then serves.
Usage: aws_iot_endpoint.py ACCESS_KEY SECRET_KEY REGION LOGFILE [--token T] [--policy NAME]
       [--quota Op=rate ...] [--detach-delay SECS]
"""
import argparse
import hashlib
import hmac
import json
import re
import sys
import threading
import time
import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, unquote, parse_qsl

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.validate import ParamValidator
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

ap = argparse.ArgumentParser()
ap.add_argument("access_key")
ap.add_argument("secret_key")
ap.add_argument("region")
ap.add_argument("logfile")
ap.add_argument("--token")
ap.add_argument("--policy", action="append", default=[])
ap.add_argument("--quota", action="append", default=[])
ap.add_argument("--detach-delay", type=float, default=0.3)
args = ap.parse_args()

ACCOUNT = "123456789012"
MODEL = botocore.session.get_session().get_service_model("iot")
lock = threading.Lock()
certs = {}  # id -> {"arn","pem","status","history":[...]}
things = {}  # name -> {"type","attributes","principals": {arn: detach_at or None}}
policies = {p: set() for p in args.policy}  # name -> targets
counts = {}  # "Op status" -> n
throttled = {}
rejected = []
inject = []  # [{"op","status","count"}]
quotas = {}
buckets = {}  # op -> [tokens, last]
for q in args.quota:
    op, rate = q.split("=")
    quotas[op] = float(rate)
log = open(args.logfile, "a", buffering=1)

# (method, regex, operation name, label names), literal-longest first
ROUTES = []
for name in MODEL.operation_names:
    http = MODEL.operation_model(name).http
    uri = http["requestUri"].split("?")[0]
    labels = re.findall(r"\{([^}]+)\}", uri)
    rx = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(uri)) + "$"
    ROUTES.append((http["method"], re.compile(rx), name, [l.rstrip("+") for l in labels],
                   len(re.sub(r"\{[^}]+\}", "", uri))))
ROUTES.sort(key=lambda r: -r[4])


class Reject(Exception):
    def __init__(self, status, kind, message, **extra):
        super().__init__(message)
        self.status, self.kind, self.message, self.extra = status, kind, message, extra


def check_string(path, shape, v):
    if shape.type_name == "string":
        m = shape.metadata
        if "max" in m and len(v) > m["max"]:
            raise Reject(400, "InvalidRequestException", f"{path}: longer than {m['max']}")
        if "pattern" in m and not re.fullmatch(m["pattern"], v):
            raise Reject(400, "InvalidRequestException", f"{path}: does not match {m['pattern']}")
        if shape.enum and v not in shape.enum:
            raise Reject(400, "InvalidRequestException", f"{path}: not one of {shape.enum}")


def check_deep(path, shape, v):
    """What ParamValidator leaves out: maximum lengths, patterns, enums, unknown members."""
    if shape.type_name == "structure":
        for k, x in v.items():
            if k not in shape.members:
                raise Reject(400, "SerializationException", f"{path}: unknown member {k}")
            check_deep(f"{path}.{k}", shape.members[k], x)
    elif shape.type_name == "map":
        for k, x in v.items():
            check_string(f"{path} key", shape.key, k)
            check_deep(f"{path}.{k}", shape.value, x)
    elif shape.type_name == "list":
        for i, x in enumerate(v):
            check_deep(f"{path}[{i}]", shape.member, x)
    elif isinstance(v, str):
        check_string(path, shape, v)


def find_operation(method, path):
    for m, rx, name, labels, _ in ROUTES:
        mt = rx.match(path)
        if m == method and mt:
            return name, dict(zip(labels, (unquote(g) for g in mt.groups())))
    raise Reject(404, "UnknownOperationException", f"no operation {method} {path}")


def parse_input(op, labels, query, headers, body):
    shape = MODEL.operation_model(op).input_shape
    params = {}
    q = dict(parse_qsl(query, keep_blank_values=True))
    if len(q) != len(parse_qsl(query, keep_blank_values=True)):
        raise Reject(400, "InvalidRequestException", "a query parameter given twice")
    payload = {}
    if body:
        try:
            payload = json.loads(body)
        except ValueError:
            raise Reject(400, "SerializationException", "the body is not JSON")
        if not isinstance(payload, dict):
            raise Reject(400, "SerializationException", "the body is not an object")
    seen_q = set()
    for name, member in (shape.members.items() if shape else []):
        loc = member.serialization.get("location")
        where = member.serialization.get("name", name)
        if loc == "uri":
            if where in labels:
                params[name] = labels[where]
        elif loc == "querystring":
            if where in q:
                seen_q.add(where)
                v = q[where]
                params[name] = (v == "true") if member.type_name == "boolean" else (
                    int(v) if member.type_name in ("integer", "long") else v)
        elif loc == "header":
            if headers.get(where) is not None:
                params[name] = headers.get(where)
        elif name in payload:
            params[name] = payload.pop(name)
    if payload:
        raise Reject(400, "SerializationException", f"unknown body members {sorted(payload)}")
    if set(q) - seen_q:
        raise Reject(400, "InvalidRequestException", f"unknown query {sorted(set(q) - seen_q)}")
    if shape is not None:
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            raise Reject(400, "InvalidRequestException", report.generate_report())
        check_deep(op, shape, params)
    return params


def check_signature(method, rawpath, headers, body):
    auth = headers.get("Authorization", "")
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r" SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
    if not m:
        raise Reject(403, "MissingAuthenticationTokenException", "no SigV4 Authorization")
    ak, day, region, service, signed, sig = m.groups()
    if ak != args.access_key:
        raise Reject(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    date = headers.get("X-Amz-Date", "")
    signed = signed.split(";")
    if "host" not in signed or "x-amz-date" not in signed or not date.startswith(day):
        raise Reject(403, "InvalidSignatureException", "host and x-amz-date must be signed")
    if region != args.region or service not in ("execute-api", "iot"):
        raise Reject(403, "InvalidSignatureException", f"credential scope {region}/{service}")
    t = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) > 300:
        raise Reject(403, "InvalidSignatureException", "Signature expired")
    if args.token is not None:
        if headers.get("X-Amz-Security-Token") != args.token or "x-amz-security-token" not in signed:
            raise Reject(403, "UnrecognizedClientException", "the session token is missing or wrong")
    if body and "content-type" not in signed:
        raise Reject(403, "InvalidSignatureException", "content-type must be signed")
    for h in ("x-amzn-principal",):
        if headers.get(h) is not None and h not in signed:
            raise Reject(403, "InvalidSignatureException", f"{h} must be signed")
    hv = {}
    for h in signed:
        vals = headers.get_all(h)
        if not vals:
            raise Reject(403, "InvalidSignatureException", f"signed header {h} is absent")
        hv[h] = ",".join(vals)
    req = AWSRequest(method=method, url="http://" + headers["Host"] + rawpath, data=body, headers=hv)
    req.context["timestamp"] = date
    signer = SigV4Auth(Credentials(args.access_key, args.secret_key, args.token), service, region)
    want = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
    if not hmac.compare_digest(want, sig):
        raise Reject(403, "InvalidSignatureException",
                     "The request signature we calculated does not match the signature you provided.")


def take(op):
    rate = quotas.get(op, 0)
    if rate <= 0:
        return True
    now = time.monotonic()
    tokens, last = buckets.get(op, [rate, now])
    tokens = min(rate, tokens + (now - last) * rate)
    # a request may come up to one interval early (scheduling and network jitter between two
    # processes on a loaded machine: half an interval, 25 ms at 20/s, was exceeded once in a
    # fresh-root make check); each one still takes a whole token, so over any longer window
    # the rate stays at most r, and a burst at most r + 1
    if tokens < 0:
        buckets[op] = [tokens, now]
        return False
    buckets[op] = [tokens - 1, now]
    return True


def arn_of(cid):
    return f"arn:aws:iot:{args.region}:{ACCOUNT}:cert/{cid}"


def cert_by_arn(arn):
    return certs.get(arn.rsplit("/", 1)[-1]) if arn.startswith(arn_of("")) else None


def attached_things(arn, now):
    n = 0
    for t in things.values():
        at = t["principals"].get(arn, "absent")
        if at is None or (at != "absent" and at > now):
            n += 1
    return n


def settle(now):
    for t in things.values():
        for arn, at in list(t["principals"].items()):
            if at is not None and at <= now:
                del t["principals"][arn]


def operate(op, p):
    """The operation on the state (lock held): (status, body)."""
    now = time.monotonic()
    settle(now)
    if op == "RegisterCertificateWithoutCA":
        try:
            der = x509.load_pem_x509_certificate(p["certificatePem"].encode()).public_bytes(Encoding.DER)
        except Exception:
            raise Reject(400, "CertificateValidationException", "Certificate is not valid.")
        cid = hashlib.sha256(der).hexdigest()
        if cid in certs:
            raise Reject(409, "ResourceAlreadyExistsException", "The certificate is already provisioned or registered",
                         resourceId=cid, resourceArn=arn_of(cid))
        status = p.get("status", "INACTIVE")
        certs[cid] = {"arn": arn_of(cid), "status": status, "history": [status]}
        return 200, {"certificateArn": arn_of(cid), "certificateId": cid}
    if op == "DescribeCertificate":
        c = certs.get(p["certificateId"])
        if c is None:
            raise Reject(404, "ResourceNotFoundException", f"certificate {p['certificateId']} does not exist")
        return 200, {"certificateDescription": {"certificateArn": c["arn"], "certificateId": p["certificateId"],
                                                "status": c["status"]}}
    if op == "UpdateCertificate":
        c = certs.get(p["certificateId"])
        if c is None:
            raise Reject(404, "ResourceNotFoundException", "no such certificate")
        if c["status"] == "REVOKED" and p["newStatus"] != "REVOKED":
            raise Reject(406, "CertificateStateException", "a revoked certificate stays revoked")
        if c["status"] != p["newStatus"]:
            c["status"] = p["newStatus"]
            c["history"].append(p["newStatus"])
        return 200, {}
    if op == "DeleteCertificate":
        c = certs.get(p["certificateId"])
        if c is None:
            raise Reject(404, "ResourceNotFoundException", "no such certificate")
        if c["status"] == "ACTIVE":
            raise Reject(406, "CertificateStateException", "an active certificate cannot be deleted")
        if attached_things(c["arn"], now) or any(c["arn"] in t for t in policies.values()):
            raise Reject(409, "DeleteConflictException", "the certificate is attached to a thing or a policy")
        c["history"].append("DELETED")
        deleted[p["certificateId"]] = c
        del certs[p["certificateId"]]
        return 200, {}
    if op == "CreateThing":
        name = p["thingName"]
        want = {"type": p.get("thingTypeName"), "attributes": p.get("attributePayload", {}).get("attributes", {})}
        t = things.get(name)
        if t is not None:
            if t["type"] != want["type"] or t["attributes"] != want["attributes"]:
                raise Reject(409, "ResourceAlreadyExistsException", f"thing {name} exists with another configuration",
                             resourceId=name, resourceArn=f"arn:aws:iot:{args.region}:{ACCOUNT}:thing/{name}")
        else:
            things[name] = dict(want, principals={})
        return 200, {"thingName": name, "thingArn": f"arn:aws:iot:{args.region}:{ACCOUNT}:thing/{name}",
                     "thingId": hashlib.sha256(name.encode()).hexdigest()[:36]}
    if op == "DeleteThing":
        t = things.get(p["thingName"])
        if t is None:
            raise Reject(404, "ResourceNotFoundException", "no such thing")
        if t["principals"]:
            raise Reject(409, "InvalidRequestException", "the thing has principals attached")
        del things[p["thingName"]]
        return 200, {}
    if op in ("AttachThingPrincipal", "DetachThingPrincipal"):
        t = things.get(p["thingName"])
        if t is None:
            raise Reject(404, "ResourceNotFoundException", "no such thing")
        if op == "AttachThingPrincipal":
            if cert_by_arn(p["principal"]) is None:
                raise Reject(404, "ResourceNotFoundException", "no such principal")
            t["principals"][p["principal"]] = None
        elif t["principals"].get(p["principal"], "absent") is None:
            t["principals"][p["principal"]] = now + args.detach_delay  # AWS detaches asynchronously
        return 200, {}
    if op in ("AttachPolicy", "DetachPolicy"):
        if p["policyName"] not in policies:
            raise Reject(404, "ResourceNotFoundException", f"policy {p['policyName']} does not exist")
        if op == "AttachPolicy":
            if cert_by_arn(p["target"]) is None:
                raise Reject(404, "ResourceNotFoundException", "no such target")
            policies[p["policyName"]].add(p["target"])
        else:
            policies[p["policyName"]].discard(p["target"])
        return 200, {}
    if op == "ListThings":  # devid's connector test: one page of things, nothing changes
        names = sorted(things)[: p.get("maxResults", 10000)]
        return 200, {"things": [{"thingName": n, "thingArn": f"arn:aws:iot:{args.region}:{ACCOUNT}:thing/{n}",
                                 "attributes": things[n]["attributes"], "version": 1} for n in names]}
    raise Reject(400, "InvalidRequestException", f"{op} is not implemented by the stand-in")


deleted = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, body, kind=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if kind:
            self.send_header("x-amzn-ErrorType", kind + ":http://internal.amazon.com/coral/com.amazonaws.iot/")
        self.end_headers()
        self.wfile.write(data)

    def control(self, body):
        path = urlsplit(self.path).path
        with lock:
            if self.command == "GET" and path == "/_standin/state":
                settle(time.monotonic())
                return self.answer(200, {
                    "certificates": {k: {"status": v["status"], "history": v["history"]} for k, v in certs.items()},
                    "deleted": {k: v["history"] for k, v in deleted.items()},
                    "things": {k: {"principals": sorted(v["principals"]), "attributes": v["attributes"],
                                   "type": v["type"]} for k, v in things.items()},
                    "policies": {k: sorted(v) for k, v in policies.items()},
                    "counts": counts, "throttled": throttled, "rejected": rejected})
            if self.command == "POST" and path == "/_standin/inject":
                inject.append(json.loads(body))
                return self.answer(200, {})
            if self.command == "POST" and path == "/_standin/quotas":
                quotas.update({k: float(v) for k, v in json.loads(body).items()})
                buckets.clear()
                return self.answer(200, {})
        self.answer(404, {"message": "no such control"})

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        split = urlsplit(self.path)
        if split.path.startswith("/_standin/"):
            return self.control(body)
        op, status, kind = "?", 200, None
        try:
            check_signature(self.command, self.path, self.headers, body)
            op, labels = find_operation(self.command, split.path)
            params = parse_input(op, labels, split.query, self.headers, body.decode())
            with lock:
                for f in inject:
                    if f["op"] == op and f["count"] > 0:
                        f["count"] -= 1
                        if f.get("type"):
                            raise Reject(f["status"], f["type"], "injected rejection")
                        if f["status"] == 400:
                            raise Reject(400, "ThrottlingException", "Rate exceeded (injected)")
                        raise Reject(f["status"], "ServiceUnavailableException" if f["status"] == 503
                                     else "InternalFailureException", "injected fault")
                if not take(op):
                    throttled[op] = throttled.get(op, 0) + 1
                    raise Reject(400, "ThrottlingException", "Rate exceeded")
                status, out = operate(op, params)
        except Reject as r:
            status, kind, out = r.status, r.kind, dict(message=r.message, **r.extra)
            if r.status in (403,) or r.kind in ("InvalidRequestException", "SerializationException",
                                                "UnknownOperationException"):
                with lock:
                    rejected.append(f"{self.command} {self.path}: {r.kind}: {r.message}")
        with lock:
            key = f"{op} {status}" + (f" {kind}" if kind else "")
            counts[key] = counts.get(key, 0) + 1
        log.write(json.dumps({"t": time.time(), "op": op, "method": self.command, "path": self.path,
                              "status": status, "type": kind}) + "\n")
        self.answer(status, out, kind)

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
