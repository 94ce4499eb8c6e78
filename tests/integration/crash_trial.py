#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""crash_trial.py - the Python half of the crash trials (tests/integration/crash.sh,
docs/crash-trials.md). Debian's python3 only; PostgreSQL is read with psql.

  crash_trial.py plan SEED
      The trial's random choices as shell assignments: what to kill during, when, and the
      workload's order and pauses. The same SEED gives the same plan.
  crash_trial.py receiver SECRET LOG SEED MAX_DELAY
      The counting webhook receiver: checks X-Devid-Signature, appends every signed push to
      LOG as a JSON line (before answering), answers 200 after a random pause of up to
      MAX_DELAY seconds (so that a kill often lands while a delivery is in flight), then
      appends an "answered" line. A push cut short (devid killed while sending it) is
      logged as "cut" and answered nothing. Prints its port, then serves until killed.
  crash_trial.py inflight DIR T
      What was under way at time T (seconds since the epoch): client operations begun and
      not ended, pushes received and not answered.
  crash_trial.py check DIR DB
      The invariants, over DIR (ops.log, recv.log, reels.txt, chips.txt, serials.txt,
      batches.json) and the database DB (sqlite:PATH or postgres://...). Prints a summary line,
      or every violation on stderr and exits 1.
"""

import hashlib
import hmac
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FOCUSES = ("publish", "claim", "delivery", "est")
# reels claimed during a trial (published before it) and reels published (then claimed)
CLAIMED = ("P1", "P2", "P3", "P4", "BIG")
PUBLISHED = ("N1", "N2", "N3")
EST_CHIPS = 60  # chips of reel E1 with keys; E1 is claimed before the trial
EST_PER_STREAM = 12


def plan(seed):
    """The trial's choices; consecutive seeds go through every focus in turn."""
    rng = random.Random(seed)
    focus = FOCUSES[seed % len(FOCUSES)]
    # which occurrence of the focus operation the kill waits for, and how long after its
    # start: about as long as one such operation lasts on this machine's sanitizer build
    nth, after = {
        "publish": (rng.randint(1, 3), rng.uniform(0.0, 0.7)),
        "claim": (rng.randint(1, 7), rng.uniform(0.0, 0.04)),
        "delivery": (rng.randint(1, 4), rng.uniform(0.0, 0.35)),
        "est": (rng.randint(1, 2 * EST_PER_STREAM), rng.uniform(0.0, 0.06)),
    }[focus]
    claims = list(CLAIMED)
    rng.shuffle(claims)
    publishes = list(PUBLISHED)
    rng.shuffle(publishes)
    chips = rng.sample(range(1, EST_CHIPS + 1), 2 * EST_PER_STREAM)
    provision = []
    for _ in range(3):
        if rng.random() < 0.5:
            provision.append("batch")
        else:
            provision.append("devices:" + ",".join(
                str(i) for i in rng.sample(range(1, EST_CHIPS + 1), 3)))
    out = {
        "focus": focus,
        "focus_nth": nth,
        "kill_after": "%.3f" % after,
        "recv_delay": "%.3f" % rng.uniform(0.05, 0.3),
        "claim_order": " ".join(claims),
        "claim_gaps": " ".join("%.3f" % rng.uniform(0.0, 0.3) for _ in claims),
        "publish_order": " ".join(publishes),
        "publish_gaps": " ".join("%.3f" % rng.uniform(0.0, 0.2) for _ in publishes),
        "est_a": " ".join(str(i) for i in chips[:EST_PER_STREAM]),
        "est_b": " ".join(str(i) for i in chips[EST_PER_STREAM:]),
        "est_gap": "%.3f" % rng.uniform(0.0, 0.05),
        "provision": " ".join(provision),
        "provision_gaps": " ".join("%.3f" % rng.uniform(0.1, 0.6) for _ in provision),
        # one trial in five is killed a second time while it recovers
        "second_kill": "%.3f" % rng.uniform(0.0, 3.0) if rng.random() < 0.2 else "",
    }
    for k, v in out.items():
        print("%s='%s'" % (k, v))


def receiver(secret, log, seed, max_delay):
    rng = random.Random(seed)
    lock = threading.Lock()
    out = open(log, "a")

    def record(obj):
        with lock:
            out.write(json.dumps(obj) + "\n")
            out.flush()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            event = self.headers.get("X-Devid-Event", "")
            if len(body) < length:  # devid was killed while it sent the push: nothing arrived
                return record({"t": time.time(), "cut": event, "bytes": len(body)})
            want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, self.headers.get("X-Devid-Signature", "")):
                record({"t": time.time(), "badsig": event})
                return self.answer(401)
            push = json.loads(body)
            with lock:
                delay = rng.uniform(0.0, max_delay)
            record({"t": time.time(), "event": event, "body_event": push.get("event"),
                    "action": push.get("action"), "tenant": push.get("tenant"),
                    "devices": [d["udid"] for d in push.get("devices", [])],
                    "sha256": hashlib.sha256(body).hexdigest()})
            time.sleep(delay)
            if self.answer(200):
                record({"t": time.time(), "answered": event})

        def answer(self, status):
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True
            except OSError:  # devid was killed while it waited
                return False

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


class Db:
    """Rows of a query, as lists of strings ('' for NULL), from SQLite or PostgreSQL."""

    def __init__(self, url):
        self.url = url
        self.sqlite = sqlite3.connect(url[len("sqlite:"):]) if url.startswith("sqlite:") else None

    def rows(self, query):
        if self.sqlite is not None:
            return [["" if v is None else str(v) for v in r]
                    for r in self.sqlite.execute(query)]
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-d", self.url, "-c", query],
                           capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise SystemExit("psql: %s: %s" % (query, p.stderr.strip()))
        return [line.split("\t") for line in p.stdout.splitlines() if line != ""]


def read_lines(path):
    try:
        with open(path) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def check(d, url):
    bad = []
    db = Db(url)
    reels = {name: int(count) for name, count in read_lines(os.path.join(d, "reels.txt"))}
    ends = [x for x in read_lines(os.path.join(d, "ops.log")) if x[0] == "end"]

    # --- no half batch: what the database holds, and what the API shows ---------------------
    batches = {}
    for name, count, owner, devices in db.rows(
            "SELECT b.name, b.count, COALESCE(t.name, ''),"
            " (SELECT COUNT(*) FROM devices d WHERE d.batch_id = b.id)"
            " FROM batches b LEFT JOIN tenants t ON t.id = b.owner_id"
            # an upload cut short is a reserved batch, invisible by design (docs/api.md)
            " WHERE b.state = 'complete'"):
        batches[name] = (int(count), owner, int(devices))
        want = reels.get(name)
        if want is None:
            bad.append("batch %s: in the database, but no reel of that name was published" % name)
        elif int(count) != want or int(devices) != want:
            bad.append("half batch %s: count %s, %s devices stored, descriptor says %d"
                       % (name, count, devices, want))
    publishes = {}
    for _, op, obj, _, status, *_ in ends:
        if op == "publish":
            publishes[obj] = status
    for name, status in sorted(publishes.items()):
        if status == "0" and name not in batches:
            bad.append("publish %s was acknowledged (exit 0) but the batch is gone" % name)
    try:
        with open(os.path.join(d, "batches.json")) as f:
            shown = json.load(f)
    except (OSError, ValueError) as exc:
        bad.append("GET /api/v1/batches after the restart: %s" % exc)
        shown = {"batches": []}
    if shown.get("next") is not None:
        bad.append("GET /api/v1/batches has more than one page: the check saw only the first")
    listed = set()
    for b in shown.get("batches", []):
        listed.add(b["batch"])
        n = sum(b.get("devices", {}).values())
        want = reels.get(b["batch"])
        if b["count"] != want or n != want:
            bad.append("half batch %s in the API: count %s, %d devices, descriptor says %s"
                       % (b["batch"], b["count"], n, want))
    for name in batches:
        if name not in listed:
            bad.append("batch %s is in the database but GET /api/v1/batches does not list it"
                       " after its claim" % name)
    for _, op, obj, _, status, *_ in ends:
        if op == "postclaim" and status == "404" and obj in batches:
            bad.append("batch %s is in the database but its claim code answers 404" % obj)

    # --- no acknowledged claim lost; state, audit and outbox job commit together -------------
    audit = db.rows("SELECT t.name, a.action, a.object, a.detail FROM audit a"
                    " JOIN tenants t ON t.id = a.tenant_id"
                    " WHERE a.action IN ('batch.publish', 'batch.claim', 'est.enroll')")
    jobs = db.rows("SELECT j.id, j.action, COALESCE(b.name, ''), COALESCE(j.udid, ''), j.state,"
                   " j.attempts, COALESCE(j.last_error, '') FROM jobs j"
                   " LEFT JOIN batches b ON b.id = j.batch_id")
    for _, op, obj, _, status, *_ in ends:
        if op in ("claim", "postclaim") and status == "200":
            if batches.get(obj, (0, "", 0))[1] != "OEM1":
                bad.append("claim of %s was answered 200 but the batch is not OEM1's" % obj)
    for name, (_, owner, _) in sorted(batches.items()):
        published = [a for a in audit if a[0] == "ACME" and a[1] == "batch.publish"
                     and a[2] == "ACME/" + name]
        if len(published) != 1:
            bad.append("batch %s: %d batch.publish audit records, want 1" % (name, len(published)))
        if name == "E1":  # claimed before the trial, before its connector existed
            continue
        claims = [a for a in audit if a[0] == "OEM1" and a[1] == "batch.claim"
                  and a[2] == "ACME/" + name]
        add = [j for j in jobs if j[2] == name and j[1] == "add"]
        if owner == "OEM1" and (len(claims) != 1 or len(add) != 1):
            bad.append("claimed batch %s: %d batch.claim audit records and %d add jobs, want 1 and 1"
                       % (name, len(claims), len(add)))
        if owner != "OEM1" and (claims or add):
            bad.append("unclaimed batch %s has %d claim records and %d jobs"
                       % (name, len(claims), len(add)))
    # manual triggers: every acknowledged one has its jobs, none has more than were asked for
    asked = {}
    acked = {}
    chips = [x[0] for x in read_lines(os.path.join(d, "chips.txt"))]
    for _, op, obj, _, status, *_ in ends:
        if op == "provision":
            targets = ["E1"] if obj == "batch" else [
                chips[int(i) - 1] for i in obj.split(":")[1].split(",")]
            for t in targets:
                asked[t] = asked.get(t, 0) + 1
                acked[t] = acked.get(t, 0) + (status == "202")
    for t in sorted(asked):
        n = len([j for j in jobs if (j[2] == t if t == "E1" else j[3] == t)])
        if not acked[t] <= n <= asked[t]:
            bad.append("provision of %s: %d jobs for %d triggers of which %d acknowledged"
                       % (t[:16], n, asked[t], acked[t]))

    # --- no acknowledged issuance lost, and every issuance audited ---------------------------
    certs = {int(s, 16): u for s, u in db.rows(
        "SELECT c.serial, d.udid FROM certificates c JOIN devices d ON d.id = c.device_id")}
    audited = {}
    for a in audit:
        if a[1] == "est.enroll":
            audited[int(json.loads(a[3])["serial"], 16)] = a[2]
    got = read_lines(os.path.join(d, "serials.txt"))
    for udid, serial in got:
        s = int(serial, 16)
        if certs.get(s) != udid:
            bad.append("EST: the certificate %s of %s (answered 200) is not in the database"
                       % (serial, udid[:16]))
        if audited.get(s) != udid:
            bad.append("EST: the certificate %s of %s (answered 200) is not audited"
                       % (serial, udid[:16]))
    for s in certs:
        if s not in audited:
            bad.append("EST: certificate %x is stored but has no est.enroll record" % s)
    for s in audited:
        if s not in certs:
            bad.append("EST: est.enroll record for %x, but no such certificate" % s)

    # --- the outbox: every job's devices delivered, each in one event ------------------------
    active = {}
    for udid, batch in db.rows("SELECT d.udid, b.name FROM devices d"
                               " JOIN batches b ON b.id = d.batch_id WHERE d.state = 'active'"):
        active.setdefault(batch, set()).add(udid)
    events = {}
    requests = cut = 0
    for line in open(os.path.join(d, "recv.log")):
        r = json.loads(line)
        cut += "cut" in r
        if "badsig" in r:
            bad.append("receiver: push %s with a signature that does not match" % r["badsig"])
        if "event" not in r:
            continue
        requests += 1
        if r["event"] != r["body_event"]:
            bad.append("receiver: X-Devid-Event %s but body event %s" % (r["event"], r["body_event"]))
        first = events.setdefault(r["event"], r)
        if first["sha256"] != r["sha256"]:
            bad.append("event %s delivered twice with different bodies (%d and %d devices)"
                       % (r["event"], len(first["devices"]), len(r["devices"])))
    by_job = {}
    for ev, r in events.items():
        m = re.fullmatch(r"devid-(\d+)-(\d+)", ev)
        if m is None:
            bad.append("receiver: unexpected event id %s" % ev)
            continue
        by_job.setdefault(m.group(1), []).append(r)
    delivered = 0
    for jid, action, batch, udid, state, attempts, err in jobs:
        if state != "done":
            bad.append("job %s (%s %s) is %s after the restart settled, %s attempts: %s"
                       % (jid, action, batch or udid[:16], state, attempts, err))
        want = active.get(batch, set()) if batch else {udid}
        seen = {}
        twice = []
        for r in by_job.pop(jid, []):
            if r["action"] != action:
                bad.append("job %s is an %s, event %s says %s" % (jid, action, r["event"], r["action"]))
            for u in r["devices"]:
                if u in seen:
                    twice.append("%s in %s and %s" % (u[:16], seen[u], r["event"]))
                seen[u] = r["event"]
        if twice:
            bad.append("job %s: %d devices delivered under two event ids, e.g. %s"
                       % (jid, len(twice), twice[0]))
        missing = want - set(seen)
        extra = set(seen) - want
        if missing:
            bad.append("job %s (%s %s): %d of %d devices never delivered"
                       % (jid, action, batch or udid[:16], len(missing), len(want)))
        if extra:
            bad.append("job %s: %d devices delivered that are not the job's" % (jid, len(extra)))
        delivered += len(seen)
    for jid in by_job:
        bad.append("receiver: events of job %s, which the database does not hold" % jid)

    if bad:
        for b in bad[:40]:
            print("violation: " + b, file=sys.stderr)
        if len(bad) > 40:
            print("violation: ... and %d more" % (len(bad) - 40), file=sys.stderr)
        sys.exit(1)
    acked_pub = sum(1 for s in publishes.values() if s == "0")
    print("ok: %d batches whole (%d publishes acknowledged, %d not: %s), %d claims acknowledged,"
          " %d certificates acknowledged of %d stored, %d jobs, %d devices delivered once each"
          " in %d events (%d requests: %d redeliveries of the same event; %d cut short)"
          % (len(batches), acked_pub, len(publishes) - acked_pub,
             ", ".join("%s %s" % (n, "present" if n in batches else "absent")
                       for n, s in sorted(publishes.items()) if s != "0") or "none",
             len([x for x in ends if x[1] == "claim" and x[4] == "200"]),
             len(got), len(certs), len(jobs), delivered, len(events), requests,
             requests - len(events), cut))


def in_flight(d, kill_t):
    """What was under way at kill_t: client operations begun and not ended, pushes unanswered."""
    ends = {(x[1], x[2]): (float(x[3]), x[4]) for x in read_lines(os.path.join(d, "ops.log"))
            if x[0] == "end"}
    now = []
    for x in read_lines(os.path.join(d, "ops.log")):
        t, status = ends.get((x[1], x[2]), (1e18, ""))
        if x[0] == "begin" and float(x[3]) <= kill_t <= t:
            # an operation that ended just after the kill may have been answered just before
            now.append("%s %s (%s)" % (x[1], x[2][:12], "acknowledged" if status in ("0", "200", "202")
                                       else "not acknowledged"))
    recv = {}
    for line in open(os.path.join(d, "recv.log")):
        r = json.loads(line)
        if "event" in r and r["t"] <= kill_t:
            recv[r["event"]] = r["t"]
        if "answered" in r and r["t"] <= kill_t:
            recv.pop(r["answered"], None)
        if "cut" in r and kill_t <= r["t"] < kill_t + 1:
            recv[r["cut"] + " (cut short)"] = r["t"]
    now += ["delivery %s" % ev for ev in sorted(recv)]
    return ", ".join(now) or "nothing"


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "plan" and len(sys.argv) == 3:
        plan(int(sys.argv[2]))
    elif cmd == "receiver" and len(sys.argv) == 6:
        receiver(sys.argv[2].encode(), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "check" and len(sys.argv) == 4:
        check(sys.argv[2], sys.argv[3])
    elif cmd == "inflight" and len(sys.argv) == 4:
        print(in_flight(sys.argv[2], float(sys.argv[3])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
