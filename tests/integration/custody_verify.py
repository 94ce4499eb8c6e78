#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""An independent verifier of a devid custody chain (docs/custody.md): Python's cryptography
package and the documented format, none of devid's code.

  custody_verify.py verify CHAIN.json DEVID_PUB.pem [MANIFEST.json]
      exit 0 and "ok: N records, owner T" when the chain holds; exit 1 naming the record and
      the reason otherwise. With MANIFEST.json (a vendor manifest), manifestSha256 must be the
      SHA-256 of its UDIDs, sorted, each followed by a newline.
  custody_verify.py mutate CHAIN.json OUTDIR
      writes the chain spoiled three ways: removed.json (record 2 left out), reordered.json
      (records 2 and 3 swapped) and resigned.json (record 3's owner signature made by another
      key than the previous owner's, over the same bytes).
"""
import base64
import hashlib
import json
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography import x509

TYP = "devid-custody+jws"
ZERO = "0" * 64
# which owner kinds each event may go from and to (None: nobody, the first record)
EVENTS = {
    "publish": (None, "vendor"),
    "import": (None, "oem"),
    "claim": ("vendor", "oem"),
    "transfer": ("oem", "oem"),
    "release": ("oem", "vendor"),
}


class Invalid(Exception):
    pass


def b64u(s):
    if "=" in s:
        raise Invalid("base64url with padding")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64u_enc(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def es256_verify(pub, sig_b64, msg):
    sig = b64u(sig_b64)
    if len(sig) != 64:
        raise Invalid("signature is not 64 bytes")
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    pub.verify(der, msg, ec.ECDSA(hashes.SHA256()))


def es256_sign(key, msg):
    r, s = utils.decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
    return b64u_enc(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def manifest_sha256(path):
    udids = []
    for entry in json.load(open(path)):
        chip = json.loads(b64u(entry["payload"]))
        for k in chip["publicKeySet"]["keys"]:
            if "x5c" in k:
                cert = x509.load_der_x509_certificate(base64.b64decode(k["x5c"][0]))
                spki = cert.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
                udids.append(hashlib.sha256(spki).hexdigest())
    return hashlib.sha256("".join(u + "\n" for u in sorted(udids)).encode()).hexdigest()


def verify(doc, devid_pub, manifest=None):
    prev_hash, prev_new, chain_manifest = ZERO, None, None
    records = doc["records"]
    if not records:
        raise Invalid("no records")
    for i, rec in enumerate(records, 1):
        try:
            raw = b64u(rec["payload"])
            p = json.loads(raw)
            if p["version"] != 1 or p["seq"] != i:
                raise Invalid(f"seq {p['seq']} is not its place {i}")
            if (p["vendor"], p["batch"]) != (doc["vendor"], doc["batch"]):
                raise Invalid("names another batch")
            if p["prev"] != prev_hash:
                raise Invalid("prev is not the SHA-256 of the record before: missing or reordered")
            if i == 1:
                chain_manifest = p["manifestSha256"]
                if manifest is not None and chain_manifest != manifest:
                    raise Invalid("manifestSha256 is not the manifest's")
            elif p["manifestSha256"] != chain_manifest:
                raise Invalid("manifestSha256 changed")
            if p["previousOwner"] != prev_new:
                raise Invalid("previousOwner is not the record before's newOwner")
            want = EVENTS.get(p["event"])
            got = (p["previousOwner"]["kind"] if p["previousOwner"] else None, p["newOwner"]["kind"])
            if want != got:
                raise Invalid(f"event {p['event']} cannot go from {got[0]} to {got[1]}")
            n_devid = n_owner = 0
            for s in rec["signatures"]:
                hdr = json.loads(b64u(s["protected"]))
                if hdr.get("alg") != "ES256" or hdr.get("typ") != TYP:
                    raise Invalid("protected header is not ES256 " + TYP)
                msg = (s["protected"] + "." + rec["payload"]).encode()
                role = hdr["kid"].split(":", 1)[0]
                if role == "devid":
                    es256_verify(devid_pub, s["signature"], msg)
                    n_devid += 1
                elif role == "owner":
                    key = p["previousOwner"] and p["previousOwner"]["key"]
                    if not key:
                        raise Invalid("an owner signature, but the previous owner has no key")
                    owner = serialization.load_der_public_key(base64.b64decode(key))
                    es256_verify(owner, s["signature"], msg)
                    n_owner += 1
                else:
                    raise Invalid("kid " + hdr["kid"])
            if n_devid != 1:
                raise Invalid(f"{n_devid} devid signatures")
            if n_owner != (1 if p["ownerSigned"] else 0):
                raise Invalid(f"ownerSigned {p['ownerSigned']} with {n_owner} owner signatures")
        except InvalidSignature:
            raise Invalid(f"record {i}: a signature does not verify")
        except Invalid as e:
            raise Invalid(f"record {i}: {e}")
        except (KeyError, TypeError, ValueError) as e:
            raise Invalid(f"record {i}: malformed ({e!r})")
        prev_hash, prev_new = hashlib.sha256(raw).hexdigest(), p["newOwner"]
    return len(records), prev_new["tenant"]


def mutate(doc, outdir):
    recs = doc["records"]
    if len(recs) < 3:
        sys.exit("mutate needs a chain of 3 records or more")

    def write(name, records):
        with open(os.path.join(outdir, name), "w") as f:
            json.dump(dict(doc, records=records), f)

    write("removed.json", [recs[0]] + recs[2:])
    write("reordered.json", [recs[0], recs[2], recs[1]] + recs[3:])
    third = json.loads(json.dumps(recs[2]))
    wrong = ec.generate_private_key(ec.SECP256R1())
    owner_sigs = [s for s in third["signatures"]
                  if json.loads(b64u(s["protected"]))["kid"].startswith("owner:")]
    if len(owner_sigs) != 1:
        sys.exit("record 3 has no owner signature to spoil")
    s = owner_sigs[0]
    s["signature"] = es256_sign(wrong, (s["protected"] + "." + third["payload"]).encode())
    write("resigned.json", recs[:2] + [third] + recs[3:])


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "verify":
        doc = json.load(open(sys.argv[2]))
        pub = serialization.load_pem_public_key(open(sys.argv[3], "rb").read())
        manifest = manifest_sha256(sys.argv[4]) if len(sys.argv) > 4 else None
        try:
            n, owner = verify(doc, pub, manifest)
        except Invalid as e:
            print("invalid:", e)
            return 1
        print(f"ok: {n} records, owner {owner}")
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "mutate":
        mutate(json.load(open(sys.argv[2])), sys.argv[3])
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
