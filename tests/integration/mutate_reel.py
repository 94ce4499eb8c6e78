#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""mutate_reel.py - makes a copy of a reel that breaks exactly one rule, for negative tests.

Usage: mutate_reel.py REEL VENDOR_DIR MUTATION OUT [OTHER_VENDOR_DIR]

Copies REEL to OUT and breaks one rule in entry 1 (or in batch.json), re-signing with the
vendor's own keys wherever the rule is not the signature itself, so that only that rule can
catch it. Uses Python's cryptography package only. MUTATION is one of the names in MUTATIONS.
"""

import base64
import datetime
import json
import os
import shutil
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import NameOID

ENTRY = 1


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def sign_jws(key, prot_b64, payload):
    pay_b64 = b64url(payload)
    sig = key.sign((prot_b64 + "." + pay_b64).encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(sig)
    return pay_b64, b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class Reel:
    def __init__(self, src, vendor_dir, out):
        shutil.copytree(src, out)
        self.out = out
        self.vendor_dir = vendor_dir
        self.signer_key = load_key(vendor_dir + "/signer.key")
        with open(out + "/manifest.json") as f:
            self.entries = json.load(f)
        with open(out + "/batch.json") as f:
            self.batch = json.load(f)

    def payload(self, i):
        return json.loads(b64url_decode(self.entries[i]["payload"]))

    def set_payload(self, i, payload, protected=None):
        e = self.entries[i]
        if protected is not None:
            e["protected"] = b64url(json.dumps(protected, separators=(",", ":")).encode())
        e["payload"], e["signature"] = sign_jws(
            self.signer_key, e["protected"], json.dumps(payload, separators=(",", ":")).encode())

    def set_batch(self, payload):
        self.batch["payload"], self.batch["signature"] = sign_jws(
            self.signer_key, self.batch["protected"],
            json.dumps(payload, separators=(",", ":")).encode())

    def save(self):
        with open(self.out + "/manifest.json", "w") as f:
            json.dump(self.entries, f, indent=1)
        with open(self.out + "/batch.json", "w") as f:
            json.dump(self.batch, f, indent=2)


def cert_b64(cert):
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def identity_key(payload):
    return [k for k in payload["publicKeySet"]["keys"] if "x5c" in k][0]


def reissue(reel, payload, cn=None, not_after=None, ca=False):
    """A new device certificate for the entry's key, signed by the real issuing CA."""
    key = identity_key(payload)
    old = x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))
    issuing = load_cert(reel.vendor_dir + "/issuing.pem")
    subject = [a for a in old.subject]
    if cn is not None:
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, cn) if a.oid == NameOID.COMMON_NAME
                   else a for a in subject]
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name(subject))
         .issuer_name(issuing.subject)
         .public_key(old.public_key())
         .serial_number(int.from_bytes(os.urandom(16), "big") >> 1 | 1 << 120)
         .not_valid_before(old.not_valid_before)
         .not_valid_after(not_after or old.not_valid_after))
    for ext in old.extensions:
        if ca and isinstance(ext.value, x509.BasicConstraints):
            b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        else:
            b = b.add_extension(ext.value, ext.critical)
    cert = b.sign(load_key(reel.vendor_dir + "/issuing.key"), hashes.SHA256())
    key["x5c"][0] = cert_b64(cert)


def m_header_uid(reel, other):
    reel.entries[ENTRY]["header"]["uniqueId"] = "0123" + "00" * 7


def m_group_id(reel, other):
    p = reel.payload(ENTRY)
    p["groupId"] = "OTHER-BATCH"
    reel.set_payload(ENTRY, p)


def m_jwk_x(reel, other):
    p = reel.payload(ENTRY)
    identity_key(p)["x"] = identity_key(reel.payload(ENTRY + 1))["x"]
    reel.set_payload(ENTRY, p)


def m_alg(reel, other):
    p = reel.payload(ENTRY)
    prot = json.loads(b64url_decode(reel.entries[ENTRY]["protected"]))
    prot["alg"] = "ES384"
    reel.set_payload(ENTRY, p, prot)


def m_x5t(reel, other):
    p = reel.payload(ENTRY)
    prot = json.loads(b64url_decode(reel.entries[ENTRY]["protected"]))
    prot["x5t#S256"] = b64url(b"\x00" * 32)
    reel.set_payload(ENTRY, p, prot)


def m_cn(reel, other):
    p = reel.payload(ENTRY)
    reissue(reel, p, cn="0" * 64)
    reel.set_payload(ENTRY, p)


def m_ca_true(reel, other):
    p = reel.payload(ENTRY)
    reissue(reel, p, ca=True)
    reel.set_payload(ENTRY, p)


def m_not_after(reel, other):
    p = reel.payload(ENTRY)
    reissue(reel, p, not_after=datetime.datetime(2049, 12, 31, 23, 59, 59))
    reel.set_payload(ENTRY, p)


def m_foreign_issuer(reel, other):
    """x5c[1] is another vendor's issuing CA: x5c[0] is then not signed by it."""
    p = reel.payload(ENTRY)
    c = load_cert(other + "/issuing.pem")
    identity_key(p)["x5c"][1] = cert_b64(c)
    reel.set_payload(ENTRY, p)


def m_foreign_chain(reel, other):
    """A chip certified by another vendor's issuing CA, in a manifest signed by this vendor."""
    p = reel.payload(ENTRY)
    reel.vendor_dir, mine = other, reel.vendor_dir
    reissue(reel, p)
    reel.vendor_dir = mine
    c = load_cert(other + "/issuing.pem")
    identity_key(p)["x5c"][1] = cert_b64(c)
    reel.set_payload(ENTRY, p)


def m_count(reel, other):
    p = json.loads(b64url_decode(reel.batch["payload"]))
    p["count"] += 1
    reel.set_batch(p)


def m_drop_entry(reel, other):
    del reel.entries[ENTRY]


MUTATIONS = {
    "header-uid": m_header_uid,
    "group-id": m_group_id,
    "jwk-x": m_jwk_x,
    "alg": m_alg,
    "x5t": m_x5t,
    "cn": m_cn,
    "ca-true": m_ca_true,
    "not-after": m_not_after,
    "foreign-issuer": m_foreign_issuer,
    "foreign-chain": m_foreign_chain,
    "count": m_count,
    "drop-entry": m_drop_entry,
}


def main():
    if len(sys.argv) not in (5, 6) or sys.argv[3] not in MUTATIONS:
        print("usage: mutate_reel.py REEL VENDOR_DIR {%s} OUT [OTHER_VENDOR_DIR]" %
              "|".join(MUTATIONS), file=sys.stderr)
        return 2
    reel = Reel(sys.argv[1], sys.argv[2], sys.argv[4])
    MUTATIONS[sys.argv[3]](reel, sys.argv[5] if len(sys.argv) == 6 else None)
    reel.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
