#!/usr/bin/env python3
"""The durable-write floor of a filesystem: how long an append of a few
pages plus fsync takes, as SQLite's WAL commit does it (pwrite of 4 pages at
an advancing offset in a reused 4 MB file, then fsync).

Usage: fsync_probe.py FILE PHASE [N]. Prints one JSON line for results.jsonl
({"kind": "fsync", ...}, latencies in ms) and removes FILE.
"""
import json
import os
import sys
import time

path, phase = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
chunk = b"\x5a" * 16384
size = 4 * 1024 * 1024
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
try:
    # Allocate the file first, as a WAL that has wrapped around once is.
    for off in range(0, size, len(chunk)):
        os.pwrite(fd, chunk, off)
    os.fsync(fd)
    lat = []
    off = 0
    for _ in range(n):
        t = time.perf_counter()
        os.pwrite(fd, chunk, off)
        os.fsync(fd)
        lat.append((time.perf_counter() - t) * 1000)
        off = (off + len(chunk)) % size
finally:
    os.close(fd)
    os.unlink(path)
lat.sort()


def pct(p):
    return round(lat[min(len(lat) - 1, int(len(lat) * p / 100))], 3)


print(json.dumps({"kind": "fsync", "phase": phase, "samples": n, "bytes": len(chunk),
                  "p50_ms": pct(50), "p99_ms": pct(99), "p999_ms": pct(99.9),
                  "max_ms": round(lat[-1], 3)}))
