#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""logcheck.py FORMAT FILE - parse every line of a devid log, print it as JSON lines.

FORMAT is json (each line read by Python's json) or logfmt (read by the small parser below,
which shares nothing with devid's encoder). Exits 1, naming the line, if any line does not
parse or does not start with ts, level, msg. Prints one JSON object per line, with the keys
in the order they were written, for the test to check.
"""
import json
import re
import sys

KEY = re.compile(r"[a-z0-9_]+")
ESC = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "/": "/", "b": "\b", "f": "\f"}


def logfmt(line):
    """key=value pairs separated by one space; a value is bare or a quoted, escaped string."""
    out = {}
    i, n = 0, len(line)
    while i < n:
        if out:
            if line[i] != " ":
                raise ValueError(f"no space before the field at {i}")
            i += 1
        m = KEY.match(line, i)
        if not m or m.end() >= n or line[m.end()] != "=":
            raise ValueError(f"no key= at {i}")
        key, i = m.group(0), m.end() + 1
        if key in out:
            raise ValueError(f"duplicate key {key}")
        if i < n and line[i] == '"':
            i += 1
            val = []
            while True:
                if i >= n:
                    raise ValueError(f"unterminated quote in {key}")
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    e = line[i + 1 : i + 2]
                    if e == "u":
                        h = line[i + 2 : i + 6]
                        if not re.fullmatch(r"[0-9a-fA-F]{4}", h):
                            raise ValueError(f"bad \\u escape in {key}")
                        val.append(chr(int(h, 16)))
                        i += 6
                    elif e in ESC:
                        val.append(ESC[e])
                        i += 2
                    else:
                        raise ValueError(f"bad escape \\{e} in {key}")
                    continue
                if ord(c) < 0x20 or ord(c) == 0x7F:
                    raise ValueError(f"raw control character in {key}")
                val.append(c)
                i += 1
            out[key] = "".join(val)
        else:
            j = i
            while j < n and line[j] != " ":
                if line[j] in '="\\' or ord(line[j]) < 0x20 or ord(line[j]) == 0x7F:
                    raise ValueError(f"{line[j]!r} in the bare value of {key}")
                j += 1
            if j == i:
                raise ValueError(f"empty bare value of {key}")
            out[key] = line[i:j]
            i = j
    return out


def main():
    fmt, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        raw = f.read()
    if raw and not raw.endswith(b"\n"):
        sys.exit(f"{path}: the last line has no newline")
    for no, b in enumerate(raw.splitlines(), 1):
        try:
            line = b.decode("utf-8")
            if fmt == "json":
                ev = json.loads(line, object_pairs_hook=dict_no_dups)
                if not isinstance(ev, dict):
                    raise ValueError("not an object")
            else:
                ev = logfmt(line)
            if list(ev)[:3] != ["ts", "level", "msg"]:
                raise ValueError("ts, level, msg are not the first keys")
            if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev["ts"]):
                raise ValueError("ts is not RFC 3339 UTC with milliseconds")
            if ev["level"] not in ("debug", "info", "warn", "error"):
                raise ValueError("unknown level")
        except ValueError as e:
            sys.exit(f"{path}:{no}: not {fmt} ({e}): {b!r}")
        print(json.dumps(ev))


def dict_no_dups(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k}")
        d[k] = v
    return d


if __name__ == "__main__":
    main()
