#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""verify_reel.py - checks a reel made by `devid vendor mint` without any of devid's code.

Usage: verify_reel.py REEL ROOT.pem SIGNER.pem [--issuing ISSUING.pem] [--vendor NAME]
                      [--batch ID] [--count N]

Reads REEL/manifest.json, REEL/batch.json and REEL/claim.txt and checks them against the
contract in shared/DESIGN.md ("Identity formats", "Manifest", "Claim codes and QR labels")
with Python's `cryptography` package only. Prints every problem on stderr (the first 50),
a summary on stdout, and exits 0 only if the whole reel is acceptable.

Run it with Debian's /usr/bin/python3 (python3-cryptography); it needs cryptography >= 3.1.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import json
import re
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")
B64STD_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
NAME_RE = re.compile(r"^[A-Z0-9.-]{1,64}$")
CLAIM_RE = re.compile(r"^DEVID1:([A-Z0-9.-]{1,64}):([A-Z0-9.-]{1,64}):([A-Z2-7]{26})$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59)
MAX_PRINTED = 50


class Reject(Exception):
    """One broken rule; the message says which."""


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s, what):
    if not isinstance(s, str) or not B64URL_RE.match(s) or len(s) % 4 == 1:
        raise Reject("%s: not unpadded base64url" % what)
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64std_decode(s, what):
    if not isinstance(s, str) or not B64STD_RE.match(s) or len(s) % 4 != 0:
        raise Reject("%s: not standard base64" % what)
    try:
        return base64.b64decode(s, validate=True)
    except binascii.Error as exc:
        raise Reject("%s: not standard base64 (%s)" % (what, exc)) from None


def no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise Reject("duplicate JSON member %r" % key)
        obj[key] = value
    return obj


def json_object(raw, what):
    try:
        obj = json.loads(raw, object_pairs_hook=no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Reject("%s: not JSON (%s)" % (what, exc)) from None
    if not isinstance(obj, dict):
        raise Reject("%s: not a JSON object" % what)
    return obj


def field(obj, name, kind, what):
    if name not in obj:
        raise Reject("%s: %s missing" % (what, name))
    value = obj[name]
    # bool is an int in Python; JSON true is not a number
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Reject("%s: %s has the wrong type" % (what, name))
    return value


def load_pem_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def spki_der(cert):
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def ski_of(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def check_signed_by(cert, issuer, what):
    """cert's issuer name is issuer's subject and issuer's key signed cert (ECDSA only)."""
    if cert.issuer != issuer.subject:
        raise Reject("%s: issuer %s is not %s" % (what, cert.issuer.rfc4514_string(),
                                                  issuer.subject.rfc4514_string()))
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Reject("%s: issuer key is not EC" % what)
    if cert.signature_hash_algorithm is None:
        raise Reject("%s: signature algorithm has no hash" % what)
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes,
                   ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature:
        raise Reject("%s: signature by %s does not verify" %
                     (what, issuer.subject.rfc4514_string())) from None


class Signer:
    """The trusted manifest signer: what its protected headers must say, and its key."""

    def __init__(self, cert):
        self.cert = cert
        self.key = cert.public_key()
        self.x5t = b64url(hashlib.sha256(der(cert)).digest())
        ski = ski_of(cert)
        self.kid = b64url(ski) if ski is not None else None

    def check_jws(self, obj, what):
        """Checks a flattened JWS (protected header + ES256 over protected.payload)."""
        prot_b64 = field(obj, "protected", str, what)
        pay_b64 = field(obj, "payload", str, what)
        sig_b64 = field(obj, "signature", str, what)
        prot = json_object(b64url_decode(prot_b64, what + ": protected"),
                           what + ": protected header")
        if prot.get("alg") != "ES256":
            raise Reject("%s: protected alg is %r, not ES256" % (what, prot.get("alg")))
        if prot.get("x5t#S256") != self.x5t:
            raise Reject("%s: protected x5t#S256 %r is not the SHA-256 of signer.pem (%s)" %
                         (what, prot.get("x5t#S256"), self.x5t))
        if self.kid is not None and prot.get("kid") != self.kid:
            raise Reject("%s: protected kid %r is not the signer's SKI (%s)" %
                         (what, prot.get("kid"), self.kid))
        sig = b64url_decode(sig_b64, what + ": signature")
        if len(sig) != 64:
            raise Reject("%s: signature is %d bytes, not 64 (r||s)" % (what, len(sig)))
        r = int.from_bytes(sig[:32], "big")
        s = int.from_bytes(sig[32:], "big")
        signed = (prot_b64 + "." + pay_b64).encode("ascii")
        try:
            self.key.verify(utils.encode_dss_signature(r, s), signed,
                            ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Reject("%s: ES256 signature does not verify over protected.payload" %
                         what) from None
        return b64url_decode(pay_b64, what + ": payload")


class Reel:
    def __init__(self, args):
        self.args = args
        self.root = load_pem_cert(args.root)
        self.signer = Signer(load_pem_cert(args.signer))
        self.issuing = load_pem_cert(args.issuing) if args.issuing else None
        self.errors = []
        self.udids = set()
        self.serials = set()

    def error(self, msg):
        self.errors.append(msg)

    # ---- the trust anchors themselves ----
    def check_pki(self):
        try:
            check_signed_by(self.root, self.root, "root.pem")
        except Reject as exc:
            self.error("%s (not self-signed)" % exc)
        try:
            check_signed_by(self.signer.cert, self.root, "signer.pem")
        except Reject as exc:
            self.error(str(exc))
        if self.issuing is not None:
            try:
                check_signed_by(self.issuing, self.root, "issuing.pem")
            except Reject as exc:
                self.error(str(exc))

    # ---- batch.json and claim.txt ----
    def check_descriptor(self, path, claim_path):
        with open(path, "rb") as f:
            obj = json_object(f.read(), "batch.json")
        payload = json_object(self.signer.check_jws(obj, "batch.json"), "batch.json: payload")
        if field(payload, "version", int, "batch.json") != 1:
            raise Reject("batch.json: version %r, not 1" % payload["version"])
        vendor = field(payload, "vendor", str, "batch.json")
        batch = field(payload, "batchId", str, "batch.json")
        field(payload, "partNumber", str, "batch.json")
        field(payload, "count", int, "batch.json")
        claim_hash = field(payload, "claimSha256", str, "batch.json")
        created = field(payload, "createdAt", str, "batch.json")
        if not NAME_RE.match(vendor) or not NAME_RE.match(batch):
            raise Reject("batch.json: vendor %r or batchId %r is not [A-Z0-9.-]{1,64}" %
                         (vendor, batch))
        if self.args.vendor is not None and vendor != self.args.vendor:
            raise Reject("batch.json: vendor %r, expected %r" % (vendor, self.args.vendor))
        if self.args.batch is not None and batch != self.args.batch:
            raise Reject("batch.json: batchId %r, expected %r" % (batch, self.args.batch))
        if not RFC3339_RE.match(created):
            raise Reject("batch.json: createdAt %r is not RFC 3339" % created)
        with open(claim_path, "rb") as f:
            raw = f.read()
        if not raw.endswith(b"\n") or raw.count(b"\n") != 1:
            raise Reject("claim.txt: not exactly one line ending in a newline")
        text = raw[:-1].decode("ascii", "replace")
        m = CLAIM_RE.match(text)
        if m is None:
            raise Reject("claim.txt: %r is not DEVID1:<VENDOR>:<BATCH>:<26 base32>" % text)
        if (m.group(1), m.group(2)) != (vendor, batch):
            raise Reject("claim.txt: names %s/%s, descriptor %s/%s" %
                         (m.group(1), m.group(2), vendor, batch))
        want = hashlib.sha256(raw[:-1]).hexdigest()
        if claim_hash != want:
            raise Reject("batch.json: claimSha256 %s is not the SHA-256 of claim.txt (%s)" %
                         (claim_hash, want))
        return payload

    # ---- one manifest entry ----
    def check_entry(self, i, entry, desc):
        """desc: the checked batch descriptor's payload, or None when it was rejected."""
        what = "entry %d" % i
        if not isinstance(entry, dict):
            raise Reject("%s: not a JSON object" % what)
        header = field(entry, "header", dict, what)
        hdr_uid = field(header, "uniqueId", str, what + ": header")
        what = "entry %d (uniqueId %s)" % (i, hdr_uid)
        payload = json_object(self.signer.check_jws(entry, what), what + ": payload")

        version = field(payload, "version", int, what)
        if not 1 <= version <= 3:
            raise Reject("%s: version %d is not 1 to 3" % (what, version))
        uid = field(payload, "uniqueId", str, what)
        if uid != hdr_uid:
            raise Reject("%s: header.uniqueId %r != payload uniqueId %r" % (what, hdr_uid, uid))
        if uid in self.serials:
            raise Reject("%s: uniqueId repeats an earlier entry" % what)
        self.serials.add(uid)
        group = field(payload, "groupId", str, what)
        part = field(payload, "partNumber", str, what)
        if desc is not None and group != desc["batchId"]:
            raise Reject("%s: groupId %r is not the batch id %r" % (what, group, desc["batchId"]))
        if desc is not None and part != desc["partNumber"]:
            raise Reject("%s: partNumber %r is not the descriptor's" % (what, part))

        keys = field(field(payload, "publicKeySet", dict, what), "keys", list, what)
        idkeys = [k for k in keys if isinstance(k, dict) and "x5c" in k]
        if len(idkeys) != 1:
            raise Reject("%s: %d keys carry x5c, expected exactly one" % (what, len(idkeys)))
        jwk = idkeys[0]
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            raise Reject("%s: identity JWK is not kty EC, crv P-256" % what)
        x5c = field(jwk, "x5c", list, what)
        if len(x5c) < 2:
            raise Reject("%s: x5c has %d certificates, needs the device and issuing CA" %
                         (what, len(x5c)))
        chain = []
        for n, b in enumerate(x5c):
            try:
                chain.append(x509.load_der_x509_certificate(b64std_decode(b, "x5c")))
            except ValueError as exc:
                raise Reject("%s: x5c[%d] is not a DER certificate (%s)" % (what, n, exc)) from None
        for n in range(len(chain) - 1):
            check_signed_by(chain[n], chain[n + 1], "%s: x5c[%d]" % (what, n))
        check_signed_by(chain[-1], self.root, "%s: x5c[%d]" % (what, len(chain) - 1))
        if self.issuing is not None and der(chain[1]) != der(self.issuing):
            raise Reject("%s: x5c[1] is not issuing.pem" % what)
        self.check_device_cert(what, chain[0], chain[1], jwk, uid,
                               desc["vendor"] if desc is not None else self.args.vendor)

    def check_device_cert(self, what, cert, issuer, jwk, uid, vendor):
        pub = cert.public_key()
        if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp256r1":
            raise Reject("%s: device key is not P-256" % what)
        nums = pub.public_numbers()
        if (b64url_decode(jwk.get("x"), what + ": jwk x") != nums.x.to_bytes(32, "big") or
                b64url_decode(jwk.get("y"), what + ": jwk y") != nums.y.to_bytes(32, "big")):
            raise Reject("%s: JWK x/y differ from the certificate's public key" % what)

        udid = hashlib.sha256(spki_der(cert)).hexdigest()
        if udid in self.udids:
            raise Reject("%s: UDID %s repeats an earlier entry" % (what, udid))
        self.udids.add(udid)

        def one(oid, label):
            attrs = cert.subject.get_attributes_for_oid(oid)
            if len(attrs) != 1:
                raise Reject("%s: subject has %d %s attributes" % (what, len(attrs), label))
            return attrs[0].value

        if one(NameOID.COMMON_NAME, "CN") != udid:
            raise Reject("%s: subject CN %r is not the UDID %s" %
                         (what, one(NameOID.COMMON_NAME, "CN"), udid))
        if vendor is not None and one(NameOID.ORGANIZATION_NAME, "O") != vendor:
            raise Reject("%s: subject O is not the vendor %s" % (what, vendor))
        if one(NameOID.SERIAL_NUMBER, "serialNumber") != uid:
            raise Reject("%s: subject serialNumber is not the uniqueId" % what)

        # the birth certificate profile
        if cert.version != x509.Version.v3:
            raise Reject("%s: not an X.509 v3 certificate" % what)
        if cert.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
            raise Reject("%s: not signed with ecdsa-with-SHA256" % what)
        if cert.not_valid_after != NOT_AFTER:
            raise Reject("%s: notAfter %s, not 99991231235959Z" % (what, cert.not_valid_after))
        if not 0 < cert.serial_number < (1 << 128):
            raise Reject("%s: certificate serial is not positive and at most 16 bytes" % what)
        exts = cert.extensions
        try:
            bc = exts.get_extension_for_class(x509.BasicConstraints)
            ku = exts.get_extension_for_class(x509.KeyUsage)
            eku = exts.get_extension_for_class(x509.ExtendedKeyUsage)
            exts.get_extension_for_class(x509.SubjectKeyIdentifier)
            aki = exts.get_extension_for_class(x509.AuthorityKeyIdentifier)
        except x509.ExtensionNotFound as exc:
            raise Reject("%s: extension missing (%s)" % (what, exc)) from None
        if not bc.critical or bc.value.ca:
            raise Reject("%s: basicConstraints is not critical CA:FALSE" % what)
        k = ku.value
        if (not ku.critical or not k.digital_signature or k.key_cert_sign or k.crl_sign or
                k.key_encipherment or k.data_encipherment or k.content_commitment or
                k.key_agreement):
            raise Reject("%s: keyUsage is not critical digitalSignature alone" % what)
        if ExtendedKeyUsageOID.CLIENT_AUTH not in eku.value:
            raise Reject("%s: extendedKeyUsage lacks clientAuth" % what)
        if aki.value.key_identifier is None or aki.value.key_identifier != ski_of(issuer):
            raise Reject("%s: authorityKeyIdentifier is not the issuing CA's SKI" % what)

    def run(self):
        self.check_pki()
        try:
            desc = self.check_descriptor(self.args.reel + "/batch.json",
                                         self.args.reel + "/claim.txt")
        except Reject as exc:
            self.error(str(exc))
            desc = None
        with open(self.args.reel + "/manifest.json", "rb") as f:
            try:
                entries = json.loads(f.read(), object_pairs_hook=no_duplicates)
            except (ValueError, Reject) as exc:
                self.error("manifest.json: not JSON (%s)" % exc)
                return 0
        if not isinstance(entries, list) or not entries:
            self.error("manifest.json: not a non-empty JSON array")
            return 0
        if desc is not None and desc["count"] != len(entries):
            self.error("batch.json: count %d, manifest has %d entries" %
                       (desc["count"], len(entries)))
        if self.args.count is not None and len(entries) != self.args.count:
            self.error("manifest.json: %d entries, expected %d" % (len(entries), self.args.count))
        for i, entry in enumerate(entries):
            try:
                self.check_entry(i, entry, desc)
            except Reject as exc:
                self.error(str(exc))
        return len(entries)


def main():
    ap = argparse.ArgumentParser(description="independent check of a devid reel")
    ap.add_argument("reel")
    ap.add_argument("root")
    ap.add_argument("signer")
    ap.add_argument("--issuing")
    ap.add_argument("--vendor")
    ap.add_argument("--batch")
    ap.add_argument("--count", type=int)
    args = ap.parse_args()
    try:
        reel = Reel(args)
        n = reel.run()
    except (OSError, ValueError) as exc:
        print("verify_reel: %s" % exc, file=sys.stderr)
        return 2
    for msg in reel.errors[:MAX_PRINTED]:
        print("verify_reel: %s" % msg, file=sys.stderr)
    if len(reel.errors) > MAX_PRINTED:
        print("verify_reel: %d more problems" % (len(reel.errors) - MAX_PRINTED),
              file=sys.stderr)
    if reel.errors:
        print("verify_reel: %s: REJECTED, %d problems in %d entries" %
              (args.reel, len(reel.errors), n))
        return 1
    print("verify_reel: %s: %d entries and the batch descriptor verified" % (args.reel, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
