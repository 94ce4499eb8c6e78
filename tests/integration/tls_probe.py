#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tls_probe: what a TLS server on 127.0.0.1 presents, and whether a connection survives.

  tls_probe.py fingerprint PORT [CERT KEY]   SHA-256 of the server's certificate on a new
                                             connection (with a client certificate if given);
                                             exit 3 when the handshake is refused
  tls_probe.py keepalive PORT FIFO           GET /healthz on one connection, then waits for a
                                             line on FIFO and sends GET /healthz again on the
                                             same connection; prints both statuses and the
                                             certificate's SHA-256
"""
import hashlib
import socket
import ssl
import sys


def connect(port, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = ctx.wrap_socket(sock)
    return tls


def get(tls):
    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += tls.recv(4096)
    return head.split(b" ")[1].decode()


def fingerprint(tls):
    return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def main():
    what, port = sys.argv[1], int(sys.argv[2])
    if what == "fingerprint":
        try:
            tls = connect(port, *sys.argv[3:5])
            # TLS 1.3 reports a refused client certificate after the handshake: ask once
            if len(sys.argv) > 3:
                get(tls)
        except (ssl.SSLError, ConnectionError, OSError) as e:
            print(f"refused: {e}")
            sys.exit(3)
        print(fingerprint(tls))
        return
    tls = connect(port)
    first = get(tls)
    print(first, fingerprint(tls), flush=True)
    with open(sys.argv[3]) as fifo:
        fifo.readline()
    print(get(tls), fingerprint(tls), flush=True)


main()
