# SPDX-License-Identifier: Apache-2.0
"""A webhook receiver for the tests: checks X-Devid-Signature (HMAC-SHA256 of the body with
the shared secret) in constant time, records each event once (by X-Devid-Event) as a JSON line
(and every signed request's event id in OUTFILE.raw),
and can be told to fail its first N requests. Prints its port on stdout, then serves.
Usage: receiver.py SECRET OUTFILE [FAIL_FIRST [SLOW_FIRST_SECS]]
(SLOW_FIRST_SECS: the first accepted event is applied, then answered only after that long.)
"""
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

secret, out = sys.argv[1].encode(), sys.argv[2]
fail_first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
slow_first = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
seen = set()


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

    def do_POST(self):
        global fail_first
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, self.headers.get("X-Devid-Signature", "")):
            return self.answer(401, {"error": "bad signature"})
        with open(out + ".raw", "a") as f:
            f.write(self.headers.get("X-Devid-Event", "") + "\n")
        if fail_first > 0:
            fail_first -= 1
            return self.answer(503, {"error": "down for the test"})
        event = json.loads(body)
        if event["event"] != self.headers.get("X-Devid-Event"):
            return self.answer(400, {"error": "event id mismatch"})
        if event["event"] in seen:
            return self.answer(200, {"duplicate": True})
        seen.add(event["event"])
        with open(out, "a") as f:
            f.write(json.dumps(event) + "\n")
        global slow_first
        if slow_first > 0:
            delay, slow_first = slow_first, 0.0
            time.sleep(delay)
        self.answer(200, {"applied": len(event["devices"])})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
