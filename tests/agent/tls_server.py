#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tls_server.py - a tiny HTTPS server for the devid-agent tests, built on Python's ssl module
(it shares no code with devid). It listens on 127.0.0.1 on a port the kernel picks, prints
"PORT <n>" once it listens, and serves until it is killed.

Modes:
  refuse   require a client certificate from --client-ca, then answer every request with
           HTTP 403 and a JSON body {"error": MESSAGE} (Content-Length framing)
  greet    the same, but HTTP 200 with a chunked JSON greeting naming the client's CN
  hangup   complete the handshake (client certificate required), read the request, and close
           without answering
  silent   listen but never accept: a connection opens and then nothing happens

Usage: tls_server.py MODE --cert PEM --key PEM [--client-ca PEM] [--message TEXT]
"""
import argparse
import json
import socket
import ssl
import sys
import time

MAX_REQUEST_HEAD = 16384


def read_head(conn):
    """Reads until the end of the request head (or the limit, or the end of the stream)."""
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < MAX_REQUEST_HEAD:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def client_cn(conn):
    cert = conn.getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""


def answer(conn, mode, message):
    head = read_head(conn)
    if not head.startswith(b"GET / HTTP/1.1\r\n"):
        print("tls_server: unexpected request: %r" % head[:80], file=sys.stderr)
    if mode == "hangup":
        return
    if mode == "refuse":
        body = json.dumps({"error": message}).encode()
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        return
    body = json.dumps({"greeting": "welcome", "udid": client_cn(conn)}).encode() + b"\n"
    half = len(body) // 2
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                 b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half,
                                                     body[half:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["refuse", "greet", "hangup", "silent"])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca")
    ap.add_argument("--message", default="device not on the ACL")
    a = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    if a.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(a.client_ca)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    print("PORT %d" % lsock.getsockname()[1], flush=True)
    if a.mode == "silent":
        while True:
            time.sleep(3600)
    while True:
        raw, _ = lsock.accept()
        raw.settimeout(10)
        try:
            with ctx.wrap_socket(raw, server_side=True) as conn:
                answer(conn, a.mode, a.message)
        except (ssl.SSLError, OSError) as e:
            print("tls_server: %s" % e, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
