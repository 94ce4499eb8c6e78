#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""est_server.py - a small EST responder (RFC 7030, RFC 8951) for the devid-agent tests, built
on Python's ssl module and the `cryptography` package: it shares no code with devid.

  serve   listen on 127.0.0.1 on a port the kernel picks, print "PORT <n>" once listening,
          and answer until killed:
            GET  /.well-known/est/[LABEL/]cacerts         the test CA, certs-only PKCS#7
            POST /.well-known/est/[LABEL/]simpleenroll    a certificate for the CSR's key
            POST /.well-known/est/[LABEL/]simplereenroll  the same, for a current one
          Every request needs a client certificate (--client-ca, plus the test CA itself).
          Enrolling needs a certificate that is not the test CA's (a birth certificate);
          re-enrolling needs one of the test CA's, and a CSR with exactly its subject. The
          CSR's signature must verify and its key must be the client certificate's.
          Errors are answered as JSON {"error": CODE, "message": TEXT}. One line per
          request goes to stdout: "REQ <status> <detail>".
  issue   sign a certificate for the key in --key-of (a PEM key or certificate) with the
          test CA, valid from --not-before to --not-after seconds from now, into --out

The test CA (an ECDSA P-256 root) is made in --ca-dir on first use (ca.pem, ca.key).

Usage:
  est_server.py serve --ca-dir DIR --cert PEM --key PEM --client-ca PEM
      [--style lines|crlf|oneline] [--cte] [--chunked] [--refuse STATUS]
      [--label NAME] [--prefix PATH] [--validity SECONDS] [--wrong-key]
  est_server.py issue --ca-dir DIR --key-of PEM --cn CN --not-before S --not-after S --out PEM
"""
import argparse
import base64
import datetime
import json
import os
import socket
import ssl
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MAX_HEAD = 16384
MAX_BODY = 65536
PREFIX = "/.well-known/est/"


def spki(key):
    # DER bytes, not the key objects: cryptography before 40 compares public keys by identity
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def load_or_make_ca(d):
    cert_path, key_path = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    if os.path.exists(cert_path):
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "EST test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "EST test operational CA")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now() - datetime.timedelta(hours=1))
            .not_valid_after(now() + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    os.makedirs(d, exist_ok=True)
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def issue(ca_cert, ca_key, public_key, subject, not_before, not_after):
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(public_key)
            .serial_number(int.from_bytes(os.urandom(16), "big") >> 1 or 1)
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))


def b64_body(der, style):
    text = base64.b64encode(der)
    if style == "oneline":
        return text
    width, eol = (76, b"\n") if style == "lines" else (64, b"\r\n")
    return b"".join(text[i:i + width] + eol for i in range(0, len(text), width))


class Refusal(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def read_request(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            raise Refusal(431, "bad_request", "request head too long")
        chunk = conn.recv(4096)
        if not chunk:
            raise Refusal(400, "bad_request", "connection closed in the head")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise Refusal(413, "bad_request", "body too long")
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            raise Refusal(400, "bad_request", "connection closed in the body")
        body += chunk
    return method, path, headers, body[:length]


def send(conn, status, reason, ctype, body, extra=b"", chunked=False):
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nConnection: close\r\n" % (
        status, reason.encode(), ctype.encode()) + extra
    if chunked:
        half = len(body) // 2
        conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n" +
                     b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
                         half, body[:half], len(body) - half, body[half:]))
    else:
        conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def handle(conn, a, ca_cert, ca_key):
    method, path, headers, body = read_request(conn)
    if not path.startswith(a.prefix + PREFIX):
        raise Refusal(404, "not_found", "not an EST path: %s" % path)
    rest = path[len(a.prefix + PREFIX):].split("/")
    label, op = (rest[0], rest[1]) if len(rest) == 2 else (None, rest[0])
    if a.label is not None and label != a.label:
        raise Refusal(404, "not_found", "no such label: %s" % label)
    peer = x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))
    by_test_ca = peer.issuer == ca_cert.subject

    if op == "cacerts" and method == "GET":
        der = pkcs7.serialize_certificates([ca_cert], serialization.Encoding.DER)
        return der, "cacerts"
    if op not in ("simpleenroll", "simplereenroll") or method != "POST":
        raise Refusal(404, "not_found", "no such operation: %s %s" % (method, op))
    if a.refuse:
        raise Refusal(a.refuse, "not_claimed", "device is not claimed by any tenant")
    if not headers.get("content-type", "").startswith("application/pkcs10"):
        raise Refusal(415, "bad_request", "Content-Type is not application/pkcs10")
    if headers.get("content-transfer-encoding", "").lower() != "base64":
        raise Refusal(400, "bad_request", "no Content-Transfer-Encoding: base64")
    try:
        csr = x509.load_der_x509_csr(base64.b64decode(body, validate=False))
    except ValueError as e:
        raise Refusal(400, "bad_request", "not a base64 DER CSR: %s" % e)
    if not csr.is_signature_valid:
        raise Refusal(400, "bad_request", "CSR signature does not verify")
    if spki(csr.public_key()) != spki(peer.public_key()):
        raise Refusal(400, "bad_request", "the CSR's key is not the client certificate's")
    if op == "simpleenroll":
        if by_test_ca:
            raise Refusal(403, "forbidden", "enroll with the birth certificate")
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(cns) != 1:
            raise Refusal(400, "bad_request", "CSR subject has no single CN")
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "EST test"),
                             x509.NameAttribute(NameOID.COMMON_NAME, cns[0].value)])
    else:
        if not by_test_ca:
            raise Refusal(403, "forbidden", "re-enroll with the current operational cert")
        if csr.subject != peer.subject:
            raise Refusal(400, "bad_request", "CSR subject is not the current certificate's")
        subject = peer.subject
    key = csr.public_key()
    if a.wrong_key:
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
    nb = now() - datetime.timedelta(minutes=5)
    cert = issue(ca_cert, ca_key, key, subject, nb, nb + datetime.timedelta(seconds=a.validity))
    der = pkcs7.serialize_certificates([cert], serialization.Encoding.DER)
    return der, "issued %s serial %x" % (subject.rfc4514_string(), cert.serial_number)


def serve(a):
    ca_cert, ca_key = load_or_make_ca(a.ca_dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(a.client_ca)
    ctx.load_verify_locations(cadata=ca_cert.public_bytes(serialization.Encoding.PEM).decode())

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    print("PORT %d" % lsock.getsockname()[1], flush=True)
    while True:
        raw, _ = lsock.accept()
        raw.settimeout(10)
        try:
            with ctx.wrap_socket(raw, server_side=True) as conn:
                try:
                    der, detail = handle(conn, a, ca_cert, ca_key)
                    extra = b"Content-Transfer-Encoding: base64\r\n" if a.cte else b""
                    send(conn, 200, "OK", "application/pkcs7-mime; smime-type=certs-only",
                         b64_body(der, a.style), extra, a.chunked)
                    print("REQ 200 %s" % detail, flush=True)
                except Refusal as r:
                    body = json.dumps({"error": r.code, "message": r.message}).encode()
                    send(conn, r.status, "Refused", "application/json", body)
                    print("REQ %d %s" % (r.status, r.message), flush=True)
        except (ssl.SSLError, OSError, ValueError) as e:
            print("est_server: %s" % e, file=sys.stderr, flush=True)


def issue_cmd(a):
    ca_cert, ca_key = load_or_make_ca(a.ca_dir)
    with open(a.key_of, "rb") as f:
        data = f.read()
    if b"CERTIFICATE" in data:
        public_key = x509.load_pem_x509_certificate(data).public_key()
    else:
        public_key = serialization.load_pem_private_key(data, None).public_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "EST test"),
                         x509.NameAttribute(NameOID.COMMON_NAME, a.cn)])
    t = now()
    cert = issue(ca_cert, ca_key, public_key, subject,
                 t + datetime.timedelta(seconds=a.not_before),
                 t + datetime.timedelta(seconds=a.not_after))
    with open(a.out, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM) +
                ca_cert.public_bytes(serialization.Encoding.PEM))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--ca-dir", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--client-ca", required=True)
    s.add_argument("--style", choices=["lines", "crlf", "oneline"], default="crlf")
    s.add_argument("--cte", action="store_true", help="send Content-Transfer-Encoding")
    s.add_argument("--chunked", action="store_true")
    s.add_argument("--refuse", type=int, default=0, help="answer enrollments with STATUS")
    s.add_argument("--label")
    s.add_argument("--prefix", default="", help="the path before /.well-known/est")
    s.add_argument("--validity", type=int, default=30 * 86400, help="seconds")
    s.add_argument("--wrong-key", action="store_true", help="certify another key")
    i = sub.add_parser("issue")
    i.add_argument("--ca-dir", required=True)
    i.add_argument("--key-of", required=True)
    i.add_argument("--cn", required=True)
    i.add_argument("--not-before", type=int, required=True)
    i.add_argument("--not-after", type=int, required=True)
    i.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "serve":
        serve(a)
    else:
        issue_cmd(a)


if __name__ == "__main__":
    main()
