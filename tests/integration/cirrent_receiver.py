# SPDX-License-Identifier: Apache-2.0
"""A receiver written to the Cloud ID push contract, for the tests: it fetches devid's
published key (JWK at /api/v1/interop-key), verifies the ES256 JWT bearer (signature, aud =
its own URL, exp), decodes every certificate (base64 of PEM), checks that each ref is the
SHA-256 of the certificate's SubjectPublicKeyInfo, records the push as a JSON line and answers
one {"ref","status","message"} per certificate. Prints its port, then serves.
Usage: cirrent_receiver.py DEVID_URL OUTFILE
"""
import base64
import hashlib
import json
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

devid_url, out = sys.argv[1], sys.argv[2]


def b64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def devid_key():
    jwks = json.load(urllib.request.urlopen(devid_url + "/api/v1/interop-key"))
    k = jwks["keys"][0]
    assert k["kty"] == "EC" and k["crv"] == "P-256" and k["alg"] == "ES256"
    return k["kid"], ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64u(k["x"]), "big"), int.from_bytes(b64u(k["y"]), "big"),
        ec.SECP256R1()).public_key()


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
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        auth = self.headers.get("Authorization", "")
        try:
            assert auth.startswith("Bearer ")
            h, c, s = auth[7:].split(".")
            header, claims = json.loads(b64u(h)), json.loads(b64u(c))
            kid, key = devid_key()
            assert header["alg"] == "ES256" and header["kid"] == kid
            sig = b64u(s)
            assert len(sig) == 64
            key.verify(utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                                  int.from_bytes(sig[32:], "big")),
                       (h + "." + c).encode(), ec.ECDSA(hashes.SHA256()))
            me = "http://127.0.0.1:%d%s" % (self.server.server_address[1], self.path)
            assert claims["aud"] == me, (claims["aud"], me)
            assert claims["exp"] > time.time()
        except Exception as ex:  # the JWT does not verify
            return self.answer(401, {"error": "bad token: %r" % ex})
        push = json.loads(body)
        results = []
        for c in push["certs"]:
            cert = x509.load_pem_x509_certificate(base64.b64decode(c["cert"]))
            spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
            ok = hashlib.sha256(spki).hexdigest() == c["ref"]
            results.append({"ref": c["ref"], "status": "SUCCESS" if ok else "ERROR",
                            "message": "" if ok else "ref is not the certificate's key"})
        with open(out, "a") as f:
            f.write(json.dumps({"action": push["action"], "refs": [c["ref"] for c in push["certs"]]}) + "\n")
        self.answer(200, results)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
