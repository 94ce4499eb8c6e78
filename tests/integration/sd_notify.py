#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Stands in for systemd's notification socket (sd_notify(3), Type=notify) and checks what a
long-running devid command tells it: READY=1 once, when its ports already accept connections
(the test connects at once), and STOPPING=1 after the stop signal, before the process exits 0.

Usage: sd_notify.py TMPDIR SIGNAL DEVID ARGS...    (SIGNAL: TERM or INT)
The command's first stdout line names its first port as scheme://ADDR:PORT.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

tmp, signame, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
# sanitizer builds start slowly; a real start takes well under a second
TIMEOUT = 60


def fail(msg):
    print(f"sd-notify: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def messages(sock, until):
    """The notifications that arrive before `until` is true of one of them."""
    got = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        got.append(data.decode())
        if until(got[-1]):
            return got
    fail(f"no matching notification within {TIMEOUT} s; got {got!r}")


path = os.path.join(tmp, "notify.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
out = open(os.path.join(tmp, "notify.out"), "w+")
err = open(os.path.join(tmp, "notify.err"), "w+")
proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=dict(os.environ, NOTIFY_SOCKET=path))
try:
    got = messages(sock, lambda m: "READY=1" in m.split("\n"))
    if len(got) != 1:
        fail(f"notifications before READY=1: {got[:-1]!r}")
    if not any(line.startswith("STATUS=") for line in got[0].split("\n")):
        fail(f"READY=1 without a STATUS= line: {got[0]!r}")
    # READY=1 means the port accepts now, not soon
    out.seek(0)
    m = re.search(r"://(\d+\.\d+\.\d+\.\d+):(\d+)", out.readline())
    if m is None:
        fail("READY=1 came before the command printed its port")
    try:
        with socket.create_connection((m.group(1), int(m.group(2))), timeout=5):
            pass
    except OSError as e:
        fail(f"READY=1 was sent but {m.group(1)}:{m.group(2)} does not accept: {e}")
    if proc.poll() is not None:
        fail(f"the command exited ({proc.returncode}) after READY=1")
    proc.send_signal(getattr(signal, "SIG" + signame))
    got = messages(sock, lambda m: "STOPPING=1" in m.split("\n"))
    if len(got) != 1:
        fail(f"other notifications before STOPPING=1: {got[:-1]!r}")
    try:
        rc = proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        fail(f"still running {TIMEOUT} s after STOPPING=1")
    if rc != 0:
        err.seek(0)
        fail(f"exit status {rc} after SIG{signame}, stderr: {err.read()[-2000:]}")
    sock.settimeout(0.2)
    try:
        extra = sock.recv(4096)
        fail(f"a notification after STOPPING=1: {extra!r}")
    except socket.timeout:
        pass
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
print(f"sd-notify: {os.path.basename(cmd[0])} {cmd[1]}: READY=1 while accepting, "
      f"STOPPING=1 on SIG{signame}, exit 0")
