# SPDX-License-Identifier: Apache-2.0
"""devid's side of the seen reports, for tests/gateway/gateway-seen.sh: takes
POST /api/v1/sightings as docs/gateway.md ("Seen reports") says devid does, and checks every
request strictly: X-Devid-Signature against HMAC-SHA256(SECRET, the exact body bytes) in
constant time, Content-Type, X-Devid-Report equal to the body's "report", and the JSON shape
(exactly the members, each field's type and pattern, first <= last).

Every request is recorded as one JSON line in OUT: {"id", "sha256" (of the body bytes),
"status" (as answered), "report" (the parsed body, when it parsed)}. What broke the contract
goes to OUT.err, one line each, and is answered 400. PLAN is a file of HTTP statuses, one a
line: each request that passes the checks takes the first line out and is answered that
status instead of taking the report (5xx, 429 or 4xx, with devid's error shape). Otherwise the
answer is devid's: 200 {"report","accepted","ignored","suspicions"}, or {"report",
"duplicate":true} for an id it took before. Binds 127.0.0.1 on a free port, prints it, serves.
Usage: seen_receiver.py SECRET OUT PLAN
"""
import hashlib
import hmac
import ipaddress
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

secret, out, plan = sys.argv[1].encode(), sys.argv[2], sys.argv[3]
lock = threading.Lock()
taken = set()

ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
TENANT = re.compile(r"^[A-Z0-9.-]{1,64}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REPORT_KEYS = {"report", "tenant", "sentAt", "sightings"}
SIGHTING_KEYS = {"udid", "origin", "first", "last", "count", "certificate", "identity"}


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def shape(r, header_id):
    """The report's contract; returns what is wrong, or None."""
    if not isinstance(r, dict) or set(r) != REPORT_KEYS:
        return "members %s" % sorted(r) if isinstance(r, dict) else "not an object"
    if not isinstance(r["report"], str) or not ID.match(r["report"]):
        return "report id %r" % r["report"]
    if r["report"] != header_id:
        return "X-Devid-Report %r is not the body's %r" % (header_id, r["report"])
    if not isinstance(r["tenant"], str) or not TENANT.match(r["tenant"]):
        return "tenant %r" % r["tenant"]
    if not isinstance(r["sentAt"], str) or not TIME.match(r["sentAt"]):
        return "sentAt %r" % r["sentAt"]
    s = r["sightings"]
    if not isinstance(s, list) or not 1 <= len(s) <= 1000:
        return "sightings: not a list of 1 to 1000"
    for i, x in enumerate(s):
        if not isinstance(x, dict) or set(x) != SIGHTING_KEYS:
            return "sightings[%d]: members" % i
        for k in ("udid", "certificate"):
            if not isinstance(x[k], str) or not HEX64.match(x[k]):
                return "sightings[%d].%s %r" % (i, k, x[k])
        try:
            ipaddress.ip_address(x["origin"])
        except (TypeError, ValueError):
            return "sightings[%d].origin %r is not an IP address" % (i, x["origin"])
        for k in ("first", "last"):
            if not isinstance(x[k], str) or not TIME.match(x[k]):
                return "sightings[%d].%s %r" % (i, k, x[k])
        if x["first"] > x["last"]:
            return "sightings[%d]: first after last" % i
        if type(x["count"]) is not int or x["count"] < 1:
            return "sightings[%d].count %r" % (i, x["count"])
        if x["identity"] not in ("key", "ldevid"):
            return "sightings[%d].identity %r" % (i, x["identity"])
    return None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, rid, body, status, report, error=None):
        with open(out, "a") as f:
            f.write(json.dumps({"id": rid, "sha256": hashlib.sha256(body).hexdigest(),
                                "status": status, "report": report}) + "\n")
        if error is not None:
            with open(out + ".err", "a") as f:
                f.write("%s: %s\n" % (rid, error))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        rid = self.headers.get("X-Devid-Report", "")
        with lock:
            want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            error, report = None, None
            if self.path != "/api/v1/sightings":
                error = "path %s" % self.path
            elif not hmac.compare_digest(want, self.headers.get("X-Devid-Signature", "")):
                error = "X-Devid-Signature does not match the body"
            elif self.headers.get("Content-Type") != "application/json":
                error = "Content-Type %r" % self.headers.get("Content-Type")
            else:
                try:
                    report = json.loads(body, object_pairs_hook=no_duplicates)
                    error = shape(report, rid)
                except ValueError as e:
                    error = "not JSON: %s" % e
            if error is not None:
                self.record(rid, body, 400, report, error)
                return self.answer(400, {"error": "bad_request", "message": error})
            with open(plan) as f:
                steps = f.read().split()
            if steps:
                with open(plan, "w") as f:
                    f.write("".join(s + "\n" for s in steps[1:]))
                status = int(steps[0])
                self.record(rid, body, status, report)
                return self.answer(status, {"error": "stand_in",
                                            "message": "the stand-in answers %d" % status})
            self.record(rid, body, 200, report)
            if rid in taken:
                return self.answer(200, {"report": rid, "duplicate": True})
            taken.add(rid)
            self.answer(200, {"report": rid, "accepted": len(report["sightings"]),
                              "ignored": 0, "suspicions": 0})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
