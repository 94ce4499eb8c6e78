#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""resign_entry.py - puts another certificate into x5c[0] of every entry of a reel and signs
the entries again with the vendor's manifest signer, so that only the certificate's own rules
can refuse them (the EK profile's, for a TPM entry). Python's cryptography package only.

Usage: resign_entry.py MANIFEST CERT.pem SIGNER.key
"""

import base64
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main():
    path, cert_path, key_path = sys.argv[1:4]
    cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
    entries = json.load(open(path))
    for entry in entries:
        payload = json.loads(unb64url(entry["payload"]))
        payload["publicKeySet"]["keys"][0]["x5c"][0] = der
        entry["payload"] = b64url(json.dumps(payload, separators=(",", ":")).encode())
        signed = (entry["protected"] + "." + entry["payload"]).encode("ascii")
        r, s = utils.decode_dss_signature(key.sign(signed, ec.ECDSA(hashes.SHA256())))
        entry["signature"] = b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    json.dump(entries, open(path, "w"))


main()
