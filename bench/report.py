#!/usr/bin/env python3
"""Turns bench/run.sh's raw lines (results.jsonl) into results.json and REPORT.md.

usage: report.py RESULTS_JSONL RESULTS_JSON REPORT_MD REPO_ROOT
Standard library only.
"""

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

# The targets, as the benchmark issue states them.
CREATE_TARGET_RPS = 10_000
GET_CEILING_SHARE = 0.5
P99_TARGET_MS = 5.0
IDLE_RSS_TARGET_MB = 30
COLD_START_TARGET_MS = 100
SCALE_FACTOR = 1.5
AUTH_GETS = ("GET /user", "GET /user/applications/:id", "GET /user (OAuth token)", "GET /oauth/token/info")
# Performance round 2: PostgreSQL against SQLite in the same run, and the
# token grants against creates on SQLite.
PG_GET_SHARE = 0.40
PG_CREATE_SHARE = 0.50
PG_LIST_SHARE = 0.25
GRANT_CREATE_SHARE = 0.80
GRANTS = ("POST /oauth/token client_credentials", "POST /oauth/token refresh_token",
          "POST /oauth/token authorization_code", "POST /oauth/token device_code")
# A page of the grown table, and the page of the small table it is held to.
GROWN = {
    "GET /applications first page, grown": "GET /applications p1",
    "GET /applications middle page, grown": "GET /applications p1",
    "GET /applications last page, grown": "GET /applications p1",
    "GET /applications keyset middle, grown": "GET /applications keyset after 0",
    "GET /applications keyset last, grown": "GET /applications keyset after 0",
}


def round2(find, endpoints, conns):
    """The round-2 targets (PostgreSQL against SQLite, grants against
    creates) and the rows behind them."""
    targets = []

    def share(phase, endpoint, c):
        a, b = find("small", endpoint, c), find(phase, endpoint, c)
        if not (a and b and a["rps"]):
            return None
        return (b["rps"] / a["rps"], endpoint, c)

    def lowest(phase, eps, counts):
        found = [x for e in eps for c in counts if (x := share(phase, e, c))]
        return min(found) if found else None

    pg_phases = [p for p in ("pg1", "pg2") if any(q == p for q, _ in endpoints)]
    listings = [e for p, e in endpoints if p == "small" and e.startswith("GET /applications")]
    for name, eps, bar in (("GET /user", ["GET /user"], PG_GET_SHARE),
                           ("creates (POST /applications)", ["POST /applications"], PG_CREATE_SHARE),
                           ("every listing page (offset and keyset, before and after the creates)", listings,
                            PG_LIST_SHARE)):
        parts, ok = [], True
        for phase in pg_phases:
            low = lowest(phase, eps, conns)
            if not low:
                continue
            parts.append(f"{'one instance' if phase == 'pg1' else 'two instances'}: lowest {low[0]:.0%} "
                         f"({low[1]}, c={low[2]})")
            ok = ok and low[0] >= bar
        if parts:
            targets.append({"target": f"PostgreSQL: {name} >= {bar:.0%} of SQLite's req/s in the same run, "
                                      "every connection count",
                            "value": "; ".join(parts), "met": ok})
    flat = []
    for phase in ["small"] + pg_phases:
        for grown, base in GROWN.items():
            for c in conns:
                a, b = find(phase, base, c), find(phase, grown, c)
                if a and b and b["rps"]:
                    flat.append({"phase": phase, "endpoint": grown, "compared_with": base, "connections": c,
                                 "before_rps": a["rps"], "grown_rps": b["rps"],
                                 "slowdown": round(a["rps"] / b["rps"], 2)})
    if flat:
        worst = max(flat, key=lambda r: r["slowdown"])
        targets.append({"target": f"a listing page flat with table size: every page of the grown table within "
                                  f"{SCALE_FACTOR}x of the small table's first page, on each backend",
                        "value": f"worst {worst['slowdown']}x ({worst['phase']}, {worst['endpoint']}, "
                                 f"c={worst['connections']})",
                        "met": worst["slowdown"] <= SCALE_FACTOR})
    create = find("small", "POST /applications", 64)
    grants = []
    for g in GRANTS:
        r = find("small", g, 64)
        if r and create and create["rps"]:
            grants.append((r["rps"] / create["rps"], g.removeprefix("POST /oauth/token "), r["rps"]))
    if grants:
        targets.append({"target": f"SQLite: each token grant >= {GRANT_CREATE_SHARE:.0%} of creates' req/s "
                                  "at 64 connections",
                        "value": f"creates {create['rps']:,.0f}/s; " + ", ".join(
                            f"{name} {rps:,.0f}/s ({x:.0%})" for x, name, rps in grants),
                        "met": all(x >= GRANT_CREATE_SHARE for x, _, _ in grants)
                               and len(grants) == len(GRANTS)})
    return targets, flat


def per_request_cpu(r):
    """CPU milliseconds per request of latchkey and of PostgreSQL in run r."""
    cpu = r.get("cpu") or {}
    n = r["wrk"]["requests"]
    if not cpu or not n:
        return None
    tk = cpu["clk_tck"]
    return (cpu["server_ticks"] / tk / n * 1000, cpu.get("postgres_ticks", 0) / tk / n * 1000)


def sh(*cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine(root):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    rev = os.environ.get("BENCH_GIT_REVISION") or sh("git", "rev-parse", "HEAD", cwd=root)
    if os.environ.get("BENCH_GIT_REVISION"):
        dirty = ""
    else:
        dirty = sh("git", "status", "--porcelain", "--untracked-files=no", cwd=root)
    return {
        "nproc": int(sh("nproc") or 0),
        "nproc_all": int(sh("nproc", "--all") or 0),
        "cpu_model": cpu,
        "memory_mb": mem_kb // 1024,
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git_revision": rev,
        "git_dirty": bool(dirty and dirty != "unknown"),
        "source": os.environ.get("BENCH_SOURCE") or "the work tree",
        "wrk": sh("sh", "-c", "wrk -v 2>&1 | head -n1"),
        "rustc": sh("rustc", "--version"),
    }


def load_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def enrich(run):
    w = run["wrk"]
    e = w["errors"]
    lat = w["latency_us"]
    secs = w["duration_us"] / 1e6
    run["rps"] = round(w["requests"] / secs, 1) if secs else 0.0
    run["p50_ms"] = lat["p50"] / 1000
    run["p99_ms"] = lat["p99"] / 1000
    run["p999_ms"] = lat["p999"] / 1000
    run["non_2xx"] = e["status"]
    run["socket_errors"] = e["connect"] + e["read"] + e["write"] + e["timeout"]
    cpu = run.get("cpu")
    if cpu:
        tk = cpu["clk_tck"]
        wall = cpu["wall_ns"] / 1e9
        server = cpu["server_ticks"] / tk
        wrk = cpu["wrk_user_s"] + cpu["wrk_sys_s"]
        cpu["server_cpu_pct"] = round(server / wall * 100, 1)
        cpu["wrk_cpu_pct"] = round(wrk / wall * 100, 1)
        # Busy time on each core that neither the server nor wrk accounts for:
        # other processes on the machine (and some kernel work).
        cpu["server_core_other_pct"] = round(max(0.0, cpu["server_core_ticks"] / tk - server) / wall * 100, 1)
        cpu["load_core_other_pct"] = round(max(0.0, cpu["load_core_ticks"] / tk - wrk) / wall * 100, 1)
        pg = cpu.get("postgres_ticks", 0) / tk
        if pg:
            # PostgreSQL floats over both cores: "other" is what neither
            # latchkey, wrk nor PostgreSQL used, on the two cores together.
            cpu["postgres_cpu_pct"] = round(pg / wall * 100, 1)
            both = (cpu["server_core_ticks"] + cpu["load_core_ticks"]) / tk - server - wrk - pg
            cpu["server_core_other_pct"] = round(max(0.0, both) / wall * 100, 1)
            cpu["load_core_other_pct"] = cpu["server_core_other_pct"]
    return run


def disturbance(run):
    cpu = run.get("cpu") or {}
    return max(cpu.get("server_core_other_pct", 0.0), cpu.get("load_core_other_pct", 0.0))


def console_line(run):
    r = enrich(run)
    cpu = r.get("cpu") or {}
    return (f"  {r['phase']:5} {r['endpoint']:26} c={r['connections']:>2} {r['rps']:9.0f} req/s  "
            f"p50 {r['p50_ms']:6.2f}  p99 {r['p99_ms']:6.2f}  p99.9 {r['p999_ms']:6.2f} ms  "
            f"err {r['non_2xx']}/{r['socket_errors']}  peak {r['peak_rss_kb'] / 1024:.1f} MB  "
            f"server cpu {cpu.get('server_cpu_pct', 0):.0f}%  other cpu {cpu.get('server_core_other_pct', 0):.0f}%"
            f"/{cpu.get('load_core_other_pct', 0):.0f}%")


def cpu_cell(r):
    c = r.get("cpu")
    if not c:
        return "— | —"
    return f"{c['server_cpu_pct']:.0f}% | {c['server_core_other_pct']:.0f}% / {c['load_core_other_pct']:.0f}%"


def ms(x):
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def mb(kb):
    return f"{kb / 1024:.1f}"


def yes(ok):
    return "**met**" if ok else "**missed**"


def main():
    if sys.argv[1] == "--line":
        print(console_line(json.loads(sys.argv[2])))
        return
    src, out_json, out_md, root = sys.argv[1:5]
    lines = load_lines(src)
    kinds = {}
    for line in lines:
        kinds.setdefault(line["kind"], []).append(line)
    build = kinds["build"][0]
    config = kinds["config"][0]
    body = kinds.get("body", [{}])[0]
    attempts = [enrich(r) for r in kinds.get("load", [])]
    # Per endpoint and connection count, the least disturbed attempt.
    best = {}
    for r in attempts:
        key = (r["phase"], r["endpoint"], r["connections"])
        r["disturbance_pct"] = disturbance(r)
        if key not in best or r["disturbance_pct"] < best[key]["disturbance_pct"]:
            best[key] = r
    loads = []
    for r in attempts:
        key = (r["phase"], r["endpoint"], r["connections"])
        if best[key] is r:
            r["attempts"] = sum(1 for x in attempts if (x["phase"], x["endpoint"], x["connections"]) == key)
            loads.append(r)
    streams = {s["phase"]: s for s in kinds.get("stream", [])}
    idle = {i["phase"]: i for i in kinds.get("idle", [])}
    cold = {}
    for c in kinds.get("coldstart", []):
        cold.setdefault(c["db"], []).append(c["ms"])
    cold_median = {k: statistics.median(v) for k, v in cold.items()}
    scale_load = kinds.get("scale_load", [None])[0]
    pgb = kinds.get("pgbench", [])
    pginfo = kinds.get("postgres", [None])[0]
    conns = config["connections"]

    def find(phase, endpoint, c):
        for r in loads:
            if r["phase"] == phase and r["endpoint"] == endpoint and r["connections"] == c:
                return r
        return None

    ceiling = {c: find("small", "ceiling", c) for c in conns}
    for r in loads:
        ceil = ceiling.get(r["connections"])
        r["ratio_to_ceiling"] = round(r["rps"] / ceil["rps"], 3) if ceil and ceil["rps"] else None

    endpoints = []
    for r in loads:
        key = (r["phase"], r["endpoint"])
        if key not in endpoints:
            endpoints.append(key)

    # --- targets ---------------------------------------------------------------
    targets = []
    for phase in ("small", "scale"):
        if not any(p == phase for p, _ in endpoints):
            continue
        c64 = find(phase, "POST /applications", 64)
        if c64:
            ok = c64["rps"] >= CREATE_TARGET_RPS and c64["non_2xx"] == 0 and c64["socket_errors"] == 0
            targets.append({
                "target": f"durable creates >= {CREATE_TARGET_RPS:,}/s at 64 connections, zero errors ({phase})",
                "value": f"{c64['rps']:,.0f}/s, {c64['non_2xx']} non-2xx, {c64['socket_errors']} socket errors",
                "met": ok,
            })
        gets = [(p, e) for p, e in endpoints if p == phase and e != "ceiling" and e.startswith("GET")]
        worst = None
        for p, e in gets:
            for c in conns:
                r = find(p, e, c)
                if r and r["ratio_to_ceiling"] is not None and (worst is None or r["ratio_to_ceiling"] < worst[0]):
                    worst = (r["ratio_to_ceiling"], e, c)
        if worst:
            auth = [find(phase, e, c) for e in AUTH_GETS for c in conns]
            auth = [r for r in auth if r]
            aworst = min(auth, key=lambda r: r["ratio_to_ceiling"]) if auth else None
            if aworst:
                targets.append({
                    "target": f"authenticated GET paths ({', '.join(AUTH_GETS)}) >= {GET_CEILING_SHARE:.0%} of the ceiling's req/s, every connection count ({phase})",
                    "value": f"lowest {aworst['ratio_to_ceiling']:.0%} ({aworst['endpoint']}, c={aworst['connections']})",
                    "met": aworst["ratio_to_ceiling"] >= GET_CEILING_SHARE,
                })
            targets.append({
                "target": f"every GET incl. listing >= {GET_CEILING_SHARE:.0%} of the ceiling's req/s ({phase})",
                "value": f"lowest {worst[0]:.0%} ({worst[1]}, c={worst[2]})",
                "met": worst[0] >= GET_CEILING_SHARE,
            })
        at16 = [r for r in loads if r["phase"] == phase and r["connections"] == 16 and r["endpoint"] != "ceiling"]
        if at16:
            bad = [r for r in at16 if r["p99_ms"] >= P99_TARGET_MS]
            worst16 = max(at16, key=lambda r: r["p99_ms"])
            targets.append({
                "target": f"p99 < {P99_TARGET_MS:g} ms at 16 connections, every endpoint ({phase})",
                "value": (f"worst {ms(worst16['p99_ms'])} ms ({worst16['endpoint']})"
                          + (f"; over: {', '.join(r['endpoint'] for r in bad)}" if bad else "")),
                "met": not bad,
            })
        errs = [r for r in attempts if r["phase"] == phase and (r["non_2xx"] or r["socket_errors"])]
        targets.append({
            "target": f"zero non-2xx and socket errors in every run, every try ({phase})",
            "value": "none" if not errs else "; ".join(
                f"{r['endpoint']} c={r['connections']}: {r['non_2xx']} non-2xx, {r['socket_errors']} socket" for r in errs),
            "met": not errs,
        })
    if "small" in idle:
        v = idle["small"]["rss_kb"] / 1024
        targets.append({"target": f"idle RSS < {IDLE_RSS_TARGET_MB} MB", "value": f"{v:.1f} MB",
                        "met": v < IDLE_RSS_TARGET_MB})
    for k in ("fresh", "existing"):
        if k in cold_median:
            targets.append({"target": f"cold start < {COLD_START_TARGET_MS} ms ({k} database, median)",
                            "value": f"{cold_median[k]:.1f} ms", "met": cold_median[k] < COLD_START_TARGET_MS})

    more, flat_rows = round2(find, endpoints, conns)
    targets.extend(more)

    # --- the access log's cost, and the rate limits ------------------------------
    access = {}
    for mode in ("off", "on"):
        runs = [r["rps"] for r in attempts if r["phase"] == f"access-log-{mode}"]
        if runs:
            access[mode] = {"runs": runs, "median_rps": statistics.median(runs)}
    if len(access) == 2 and access["off"]["median_rps"]:
        access["cost_pct"] = round((1 - access["on"]["median_rps"] / access["off"]["median_rps"]) * 100, 1)
    limits_cfg = kinds.get("ratelimit_config", [None])[0]
    limit_rows = []
    if limits_cfg:
        per_endpoint = {
            "unauthenticated GET /oauth/discovery/keys": ("unauthenticated, per address", limits_cfg["unauthenticated"]),
            "GET /user": ("authenticated API, per token", limits_cfg["api"]),
            "POST /oauth/token client_credentials": ("/oauth/token, per client", limits_cfg["token"]),
        }
        for r in loads:
            if r["phase"] != "ratelimit" or r["endpoint"] not in per_endpoint:
                continue
            name, limit = per_endpoint[r["endpoint"]]
            secs = r["wrk"]["duration_us"] / 1e6
            accepted = (r["wrk"]["requests"] - r["non_2xx"]) / secs if secs else 0.0
            # The warm-up empties the bucket: at most the rate, plus one
            # second's burst spread over the run.
            high = limit * (1 + 1 / secs) * 1.1 if secs else limit
            ok = r["rps"] >= 2 * limit and 0.9 * limit <= accepted <= high and r["socket_errors"] == 0
            limit_rows.append({"limit": name, "endpoint": r["endpoint"], "per_second": limit,
                               "offered_rps": r["rps"], "accepted_rps": round(accepted, 1),
                               "refused": r["non_2xx"], "met": ok})
        targets.append({"target": "each rate limit lets its configured rate through and refuses the rest with 429",
                        "value": "; ".join(f"{x['limit']}: {x['accepted_rps']:,.0f}/s of {x['offered_rps']:,.0f}/s offered "
                                           f"(limit {x['per_second']}/s)" for x in limit_rows) or "no runs",
                        "met": bool(limit_rows) and all(x["met"] for x in limit_rows)})
    refused = kinds.get("limited", [])
    if refused:
        targets.append({"target": "the benchmark's own load meets no rate limit (default settings)",
                        "value": ", ".join(f"{x['phase']}: {x['refused']} refused" for x in refused),
                        "met": all(x["refused"] == 0 for x in refused)})

    scale_rows = []
    if any(p == "scale" for p, _ in endpoints):
        def compare(small_ep, scale_ep, c):
            a, b = find("small", small_ep, c), find("scale", scale_ep, c)
            if not (a and b):
                return None
            return {
                "endpoint": scale_ep, "compared_with": small_ep, "connections": c,
                "small_rps": a["rps"], "scale_rps": b["rps"],
                "slowdown": round(a["rps"] / b["rps"], 2) if b["rps"] else None,
                "small_p99_ms": a["p99_ms"], "scale_p99_ms": b["p99_ms"],
                "small_peak_rss_kb": a["peak_rss_kb"], "scale_peak_rss_kb": b["peak_rss_kb"],
            }
        for ep in ("POST /applications", *AUTH_GETS):
            for c in conns:
                row = compare(ep, ep, c)
                if row:
                    scale_rows.append(row)
        for p, e in endpoints:
            if p == "scale" and e.startswith("GET /applications p"):
                for c in conns:
                    row = compare("GET /applications p1", e, c)
                    if row:
                        scale_rows.append(row)
            if p == "scale" and e.startswith("GET /applications keyset"):
                for c in conns:
                    row = compare("GET /applications keyset after 0", e, c)
                    if row:
                        scale_rows.append(row)

        def within(rows):
            return all(r["slowdown"] is not None and r["slowdown"] <= SCALE_FACTOR for r in rows)

        cg = [r for r in scale_rows if not r["endpoint"].startswith("GET /applications")]
        lst = [r for r in scale_rows if r["endpoint"].startswith("GET /applications p")]
        kst = [r for r in scale_rows if r["endpoint"].startswith("GET /applications keyset")]
        if cg:
            w = max(cg, key=lambda r: r["slowdown"])
            targets.append({"target": f"scale: create and authenticated GET within {SCALE_FACTOR}x of the small database's req/s",
                            "value": f"worst {w['slowdown']}x ({w['endpoint']}, c={w['connections']})", "met": within(cg)})
        if lst:
            w = max(lst, key=lambda r: r["slowdown"])
            targets.append({"target": f"scale: an offset listing page (first, middle, last) within {SCALE_FACTOR}x of a small-database page",
                            "value": f"worst {w['slowdown']}x ({w['endpoint']}, c={w['connections']})", "met": within(lst)})
        if kst:
            w = max(kst, key=lambda r: r["slowdown"])
            targets.append({"target": f"scale: a keyset listing page (first, middle, last) within {SCALE_FACTOR}x of a small-database keyset page",
                            "value": f"worst {w['slowdown']}x ({w['endpoint']}, c={w['connections']})", "met": within(kst)})
        small_peak = max((r["peak_rss_kb"] for r in loads if r["phase"] == "small" and r["endpoint"] != "ceiling"), default=0)
        scale_peak = max((r["peak_rss_kb"] for r in loads if r["phase"] == "scale"), default=0)
        if small_peak:
            targets.append({"target": f"scale: RSS stays flat (peak under load within {SCALE_FACTOR}x of the small database's)",
                            "value": f"{mb(scale_peak)} MB vs {mb(small_peak)} MB", "met": scale_peak <= SCALE_FACTOR * small_peak})
        if "scale" in streams and "small" in streams:
            s, t = streams["small"], streams["scale"]
            grow_small = s["peak_rss_kb"] - s["rss_before_kb"]
            grow_scale = t["peak_rss_kb"] - t["rss_before_kb"]
            complete = t["status"] == 200 and t["items"] == t.get("expected_items")
            flat = grow_scale <= max(2 * grow_small, 0) + 16 * 1024
            targets.append({"target": "scale: full unpaginated list streams every row and RSS does not grow with the table",
                            "value": (f"{t['items']:,} items, {t['bytes'] / 1e6:.0f} MB in {t['total_s']:.1f} s; "
                                      f"(the database held {t.get('expected_items', -1):,}); "
                                      f"RSS +{mb(grow_scale)} MB at {t['items']:,} rows vs +{mb(grow_small)} MB at {s['items']} rows"),
                            "met": flat and complete})

    results = {
        "machine": machine(root),
        "config": config,
        "loadavg": {x["when"]: x["loadavg"] for x in kinds.get("loadavg", [])},
        "build": build,
        "user_json_bytes": body.get("user_json_bytes"),
        "ceiling_idle_rss_kb": body.get("ceiling_idle_rss_kb"),
        "cold_start_ms": {"runs": cold, "median": cold_median},
        "idle_rss_kb": {k: v["rss_kb"] for k, v in idle.items()},
        "loads": loads,
        "load_attempts": attempts,
        "streams": streams,
        "db_files": {f["phase"]: f for f in kinds.get("files", [])},
        "disk_fsync": kinds.get("fsync", []),
        "scale_load": scale_load,
        "scale_comparison": scale_rows,
        "postgres": pginfo,
        "pgbench": pgb,
        "postgres_rows": kinds.get("pg_rows", []),
        "access_log": access,
        "rate_limits": limit_rows,
        "rate_limited_under_load": refused,
        "targets": targets,
        "grown_listing": flat_rows,
    }
    with open(out_json, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")

    m = results["machine"]
    md = []
    w = md.append
    w("# latchkey benchmark report\n")
    w("Written by `bench/run.sh`" + (" --scale" if config["scale"] else "") + "; the raw figures are in `bench/results.json`.\n")
    w("## Machine\n")
    w("| | |\n|---|---|")
    w(f"| CPUs (`nproc`) | {m['nproc']} |")
    w(f"| CPU | {m['cpu_model']} |")
    w(f"| memory | {m['memory_mb']:,} MB |")
    w(f"| kernel | {m['kernel']} |")
    w(f"| date | {m['date']} |")
    w(f"| git revision | `{m['git_revision']}`" + (" (work tree had uncommitted changes)" if m["git_dirty"] else "") + " |")
    w(f"| built from | {m['source']} |")
    w(f"| toolchain | {m['rustc']} |")
    w(f"| load generator | {m['wrk']}, 1 thread |")
    la = {x["when"]: x["loadavg"] for x in kinds.get("loadavg", [])}
    if la:
        w(f"| load average at start / end of the measurements | {la.get('start', '?')} / {la.get('end', '?')} |")
    w("")
    w(f"Server (latchkey, and the ceiling in its turn) pinned to core {config['server_core']}, wrk pinned to core "
      f"{config['load_core']} (`taskset`). Each measurement: {config['warmup_s']} s warm-up, then {config['duration_s']} s "
      "measured. Latencies are wrk's (no coordinated-omission correction); p99.9 from wrk's `done` hook. "
      "\"non-2xx\" is wrk's status-error count (status > 399; every endpoint was checked beforehand to answer its "
      "expected 200/201); \"socket\" sums connect, read, write and timeout errors. Peak RSS is the server's VmHWM, "
      "reset (`/proc/PID/clear_refs` = 5) after the warm-up. Ratio is req/s over the ceiling's req/s at the same "
      "connection count. Server CPU is the server's CPU time over wall time (it is pinned to one core, so 100% "
      "is saturation). \"Other CPU\" is busy time on core 0 / core 1 not spent by the server / wrk: other "
      "processes on this shared machine (and some kernel work); a measurement with more than 15% is repeated "
      "(up to 3 tries) and the least disturbed try is shown (all tries are in results.json, `load_attempts`).\n")
    w("## Startup and size\n")
    w("| | |\n|---|---|")
    w(f"| release binary | {build['binary_bytes'] / 1e6:.1f} MB ({build['stripped_bytes'] / 1e6:.1f} MB stripped) |")
    for k, label in (("fresh", "fresh database (migrate + create root)"), ("existing", "existing database"),
                     ("scale", "database with the scale load")):
        if k in cold:
            w(f"| cold start to first 200 on `/-/readiness`, {label} | median {cold_median[k]:.1f} ms "
              f"(runs: {', '.join(f'{x:.1f}' for x in cold[k])}) |")
    for k, label in (("small", "idle RSS after start (fresh database)"), ("small-after", "RSS after the small-database runs"),
                     ("scale", "idle RSS after start (scale database)"), ("scale-after", "RSS after the scale runs")):
        if k in idle:
            w(f"| {label} | {mb(idle[k]['rss_kb'])} MB |")
    for f in kinds.get("fsync", []):
        w(f"| 16 KB append + fsync in the benchmark's directory ({f['phase']} disk, {f['samples']:,} times): "
          f"the floor under a durable create | p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, "
          f"p99.9 {f['p999_ms']:.2f} ms, max {f['max_ms']:.2f} ms |")
    for f in kinds.get("files", []):
        w(f"| {f['phase']} database on disk after its runs (server still running) | "
          f"file {f['db_bytes'] / 1e6:.1f} MB, WAL {f['wal_bytes'] / 1e6:.1f} MB, shm {f['shm_bytes'] / 1e6:.1f} MB |")
    if body:
        w(f"| `GET /api/v4/user` body (and the ceiling's) | {body['user_json_bytes']} bytes |")
        w(f"| ceiling idle RSS | {mb(body['ceiling_idle_rss_kb'])} MB |")
    w("")
    w("## Targets\n")
    w("| target | measured | |\n|---|---|---|")
    for t in targets:
        w(f"| {t['target']} | {t['value']} | {yes(t['met'])} |")
    w("")
    for phase, title in (("small", "Small database (root, 100 instance applications)"),
                         ("pg1", "PostgreSQL, one instance (small database)"),
                         ("pg2", "PostgreSQL, two instances on one database (small database; "
                                 "two wrk processes, half the connections each; p50/p99 are the worse of the two)"),
                         ("scale", "Scale database")):
        eps = [e for p, e in endpoints if p == phase]
        if not eps:
            continue
        if phase == "scale" and scale_load:
            l = scale_load["loaded"]
            title = (f"Scale database ({l['applications']:,} applications, {l['users']:,} users, {l['tokens']:,} tokens; "
                     f"loaded through the store in {scale_load['wall_s']} s, {scale_load['db_bytes'] / 1e6:.0f} MB file)")
        w(f"## {title}\n")
        w("| endpoint | conns | req/s | p50 ms | p99 ms | p99.9 ms | non-2xx | socket | peak RSS MB | ratio to ceiling | server CPU | other CPU core 0 / 1 |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for e in eps:
            for c in conns:
                r = find(phase, e, c)
                if not r:
                    continue
                ratio = "—" if e == "ceiling" or r["ratio_to_ceiling"] is None else f"{r['ratio_to_ceiling']:.0%}"
                w(f"| {e if e != 'ceiling' else 'ceiling (hyper, fixed body)'} | {c} | {r['rps']:,.0f} | {ms(r['p50_ms'])} | "
                  f"{ms(r['p99_ms'])} | {ms(r['p999_ms'])} | {r['non_2xx']} | {r['socket_errors']} | "
                  f"{mb(r['peak_rss_kb'])} | {ratio} | {cpu_cell(r)} |")
        w("")
        if phase in streams:
            s = streams[phase]
            w(f"Full unpaginated `GET /api/v4/applications` (streamed): HTTP {s['status']}, {s['items']:,} items "
              f"(the database held {s.get('expected_items', -1):,}), "
              f"{s['bytes'] / 1e6:.1f} MB in {s['total_s']:.2f} s (first byte after {s['ttfb_s'] * 1000:.1f} ms); "
              f"server RSS {mb(s['rss_before_kb'])} MB before, peak {mb(s['peak_rss_kb'])} MB during, "
              f"{mb(s['rss_after_kb'])} MB after.\n")
    if any(p in ("pg1", "pg2") for p, _ in endpoints):
        w("## PostgreSQL against SQLite\n")
        if pginfo:
            w(f"PostgreSQL {pginfo['version']} on this machine (synchronous_commit={pginfo['synchronous_commit']}, "
              f"fsync={pginfo['fsync']}, shared_buffers={pginfo['shared_buffers']}, "
              f"autovacuum={pginfo.get('autovacuum', 'not recorded')}). latchkey runs on core "
              "0 and wrk (or pgbench) on core 1, but PostgreSQL's processes are not pinned: they run on both "
              "cores, sharing them with latchkey and the load generator, so these figures are for the whole "
              "machine. Ratios are PostgreSQL req/s over SQLite req/s.\n")
        w("| endpoint | conns | SQLite req/s | PG x1 req/s | PG x1 / SQLite | PG x1 p99 ms | PG x2 req/s | "
          "PG x2 / SQLite | PG x2 p99 ms | PG x1 CPU: latchkey / PostgreSQL |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p, e in endpoints:
            if p != "small" or e == "ceiling":
                continue
            for c in conns:
                a, b, d = find("small", e, c), find("pg1", e, c), find("pg2", e, c)
                if not (a and (b or d)):
                    continue
                def cell(r):
                    return (f"{r['rps']:,.0f}", f"{r['rps'] / a['rps']:.0%}" if a["rps"] else "—", ms(r["p99_ms"])) \
                        if r else ("—", "—", "—")
                b1, b2, b3 = cell(b)
                d1, d2, d3 = cell(d)
                cpu = b.get("cpu", {}) if b else {}
                share = (f"{cpu.get('server_cpu_pct', 0):.0f}% / {cpu.get('postgres_cpu_pct', 0):.0f}%"
                         if cpu else "—")
                w(f"| {e} | {c} | {a['rps']:,.0f} | {b1} | {b2} | {b3} | {d1} | {d2} | {d3} | {share} |")
        w("")
        if pgb:
            w("PostgreSQL's own limits here (`pgbench -M prepared -j 1`, on the load core; a one-row insert "
              "into a table with a bigserial key, and a primary-key select in a 100,000-row table):\n")
            w("| pgbench | conns | transactions/s | latency avg ms |")
            w("|---|---:|---:|---:|")
            for r in pgb:
                w(f"| {r['script']} | {r['connections']} | {r['tps']:,.0f} | {r['latency_avg_ms']} |")
            w("")
        watched = [(p, e, c, find(p, e, c)) for p, e in endpoints if p in ("pg1", "pg2")
                   for c in conns]
        watched = [(p, e, c, r) for p, e, c, r in watched
                   if r and r.get("pg", {}).get("samples")
                   and (r["method"] == "POST" or r["pg"].get("checkpoints"))]
        if watched:
            w("What PostgreSQL's backends were doing during the writes (and during any measurement a "
              "checkpoint fell in): sampled every 50 ms from `pg_stat_activity`, the mean number of the "
              "database's active backends in each state (`running`: no wait event, on a core or "
              "runnable), the three commonest shown; then the checkpoints begun during the "
              "measurement, WAL full-page images per thousand records, and the WAL syncs per "
              "request; and the share of the machine's time idle on disk I/O:\n")
            w("| phase | endpoint | conns | req/s | active backends: running; waits | checkpoints | "
              "FPI per 1k WAL records | WAL syncs per request | I/O wait |")
            w("|---|---|---:|---:|---|---:|---:|---:|---:|")
            for p, e, c, r in watched:
                g = r["pg"]
                states = list(g["active"].items())
                running = g["active"].get("running", 0.0)
                waits = [f"{k} {v:.2f}" for k, v in states if k != "running"][:3]
                recs = g.get("wal_records")
                fpi = f"{g['wal_fpi'] / recs * 1000:.0f}" if recs else "—"
                n = r["wrk"]["requests"]
                syncs = f"{g['wal_sync'] / n:.2f}" if n and "wal_sync" in g else "—"
                cpu = r.get("cpu") or {}
                io = (f"{cpu['iowait_ticks'] / cpu['clk_tck'] / (cpu['wall_ns'] / 1e9) / max(m.get('nproc_all') or 1, 1):.0%}"
                      if "iowait_ticks" in cpu else "—")
                w(f"| {p} | {e} | {c} | {r['rps']:,.0f} | {running:.2f}; {', '.join(waits) or 'none'} | "
                  f"{g.get('checkpoints', '—')} | {fpi} | {syncs} | {io} |")
            w("")
        rows = {r["phase"]: r for r in kinds.get("pg_rows", [])}
        if rows:
            w("After each PostgreSQL run: " + "; ".join(
                f"{k}: {v['applications']:,} applications, {v['tokens']:,} OAuth tokens, the capped count of "
                f"instance applications (a listing page's total) took {v['count_plan_ms']} ms in EXPLAIN ANALYZE"
                for k, v in rows.items()) + ".\n")
    if flat_rows:
        grown = {g["phase"]: g["instance_applications"] for g in kinds.get("grown", [])}
        w("## Listing on the grown table\n")
        w("After the creates, the same server's table holds " + ", ".join(
            f"{n:,} instance applications ({p})" for p, n in grown.items()) +
          ". Its first, middle and last offset pages and its middle and last keyset pages, against the "
          "first page of the small table on the same backend (slowdown: small req/s over grown req/s; "
          f"target at most {SCALE_FACTOR}).\n")
        w("| backend | endpoint | conns | small table req/s | grown table req/s | slowdown |")
        w("|---|---|---:|---:|---:|---:|")
        for r in flat_rows:
            w(f"| {r['phase']} | {r['endpoint']} | {r['connections']} | {r['before_rps']:,.0f} | "
              f"{r['grown_rps']:,.0f} | {r['slowdown']}x |")
        w("")
    one, two = find("pg1", "GET /user", 64), find("pg2", "GET /user", 64)
    if one and two:
        w("## Two instances on one database\n")
        w("Two latchkey processes on one PostgreSQL database, each pinned to core 0, with two wrk "
          "processes on core 1 and PostgreSQL floating over both cores: the three share two cores, so "
          "the second instance cannot add capacity here; the limit is the cores. Measured, at 64 "
          "connections:\n")
        w("| endpoint | one instance req/s | two instances req/s | two / one | latchkey CPU ms per request | "
          "PostgreSQL CPU ms per request |")
        w("|---|---:|---:|---:|---:|---:|")
        for e in ("GET /user", "GET /applications p1", "POST /applications",
                  "POST /oauth/token client_credentials"):
            a, b = find("pg1", e, 64), find("pg2", e, 64)
            if not (a and b):
                continue
            cost = per_request_cpu(a)
            cells = f"{cost[0]:.3f} | {cost[1]:.3f}" if cost else "— | —"
            w(f"| {e} | {a['rps']:,.0f} | {b['rps']:,.0f} | {b['rps'] / a['rps']:.2f} | {cells} |")
        w("")
        cost_get, cost_create = per_request_cpu(one), per_request_cpu(find("pg1", "POST /applications", 64) or one)
        if cost_get and cost_create:
            w("The arithmetic for a separate database host, from the CPU each request costs above (one "
              "instance): an instance on a 2-core host of its own can answer about "
              f"{2000 / cost_get[0]:,.0f} GET /user and {2000 / cost_create[0]:,.0f} creates a second "
              "before its cores are full; the database spends "
              f"{cost_get[1]:.3f} ms of CPU on a GET /user and {cost_create[1]:.3f} ms on a create, so a "
              "2-core database host serves about "
              f"{2000 / cost_get[1]:,.0f} GET /user or {2000 / cost_create[1]:,.0f} creates a second "
              "(GET /user mostly comes from the instances' memory, so it scales with instances until "
              "the database's share of the token checks fills it; creates are bound by the database's "
              "commits, see pgbench's insert figures above). Instances add throughput linearly while "
              "the database host has headroom. These are projections from CPU accounting on this "
              "machine, not measurements on separate hosts.\n" if cost_get[1] and cost_create[1] else
              "PostgreSQL's CPU was not measured in this run.\n")
    if scale_rows:
        w("## Scale against small\n")
        w("Slowdown is small-database req/s over scale-database req/s (target: at most "
          f"{SCALE_FACTOR}). Listing pages at scale are compared with the first page on the small database.\n")
        w("| endpoint (scale) | conns | small req/s | scale req/s | slowdown | small p99 ms | scale p99 ms | small peak RSS MB | scale peak RSS MB |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in scale_rows:
            w(f"| {r['endpoint']} | {r['connections']} | {r['small_rps']:,.0f} | {r['scale_rps']:,.0f} | "
              f"{r['slowdown']}x | {ms(r['small_p99_ms'])} | {ms(r['scale_p99_ms'])} | "
              f"{mb(r['small_peak_rss_kb'])} | {mb(r['scale_peak_rss_kb'])} |")
        w("")
    if access.get("cost_pct") is not None:
        w("## The access log's cost\n")
        w("Every load row above ran with the access log on (`LATCHKEY_LOG=info`: a line per request, "
          "written by a thread of its own to a file). `GET /user` at 16 connections, with the log off "
          "(`LATCHKEY_LOG=warn`) and on, in turn, twice (every attempt counted):\n")
        w("| access log | runs (req/s) | median req/s |")
        w("|---|---|---:|")
        for mode in ("off", "on"):
            a = access[mode]
            w(f"| {mode} | {', '.join(f'{x:,.0f}' for x in a['runs'])} | {a['median_rps']:,.0f} |")
        w(f"\nCost of the access log: {access['cost_pct']}% of `GET /user`'s throughput "
          "(this machine's run-to-run spread is about ±15%).\n")
    if limit_rows:
        seen = ", ".join(f"{x['phase']} {x['refused']}" for x in refused) or "not counted"
        w("## Rate limits\n")
        w("A server started with each limit set low, then loaded far past it (wrk, 16 connections; the "
          "warm-up empties the bucket). Accepted is what got through per second; the rest got 429 with "
          f"`Retry-After`. Under the default settings, requests refused during the load above: {seen}.\n")
        w("| limit | endpoint | configured /s | offered req/s | accepted req/s | refused (429) | as configured |")
        w("|---|---|---:|---:|---:|---:|---|")
        for x in limit_rows:
            w(f"| {x['limit']} | {x['endpoint']} | {x['per_second']:,} | {x['offered_rps']:,.0f} | "
              f"{x['accepted_rps']:,.0f} | {x['refused']:,} | {'yes' if x['met'] else 'no'} |")
        w("")
    worst = kinds.get("worst_case", [])
    if worst:
        w("## Worst-case inputs\n")
        w("For each parser that reads a request before authentication: a normal request, the largest "
          "adversarial request it still parses, and ones it refuses (`bench/worst_case.py`, small database, "
          f"each sent {7} times on one connection at a time). Bodies are capped at 1 MB and "
          "1,000 parameters; every parser is linear in its input, so the adversarial rows cost about what "
          "their size costs. Server CPU is read from /proc around the requests (10 ms ticks, averaged).\n")
        w("| parser | request | bytes | status | median ms | max ms | server CPU ms |")
        w("|---|---|---:|---:|---:|---:|---:|")
        for r in worst:
            w(f"| {r['parser']} | {r['case']} | {r['bytes']:,} | {r['status']} | {r['ms_median']} | "
              f"{r['ms_max']} | {r['cpu_ms']} |")
        w("")
    rel = kinds.get("reliability", [])
    if rel:
        r = rel[0]
        w("## Reliability\n")
        w("`scripts/chaos.py` against the same release build: kill -9 at a random moment under 8 "
          "concurrent writers, restart, every acknowledged create checked; a PostgreSQL cut through a "
          "TCP proxy under load; writes racing the delete of their parent; stalled clients.\n")
        w("| test | backend | rounds | acknowledged writes | lost | answers |")
        w("|---|---|---:|---:|---:|---|")
        for k in r.get("kill9", []):
            w(f"| kill -9 under load | {k['backend']} | {k['rounds']} | {k['acknowledged']:,} | {k['lost']} | "
              f"{json.dumps(k['statuses'], sort_keys=True)} |")
        if r.get("database_cut"):
            c = r["database_cut"]
            w(f"| database cut {c['cut_s']} s | postgres | 1 | — | — | {json.dumps(c['statuses'], sort_keys=True)}; "
              f"recovered {c['recovered_s']} s after the database came back |")
        if r.get("races"):
            w(f"| client_credentials racing the application's delete | sqlite | {r['races']['rounds']} | — | — | "
              f"{json.dumps(r['races']['statuses'], sort_keys=True)} |")
        w("")
        if r.get("stalled_connections"):
            w(f"Stalled connections (timeouts 2 s): {json.dumps(r['stalled_connections'], sort_keys=True)}.\n")
        if r.get("stalled_list_readers"):
            w(f"Stalled readers of the full list: {json.dumps(r['stalled_list_readers'], sort_keys=True)}.\n")
        w(f"Checks that did not hold: {r.get('failures') or 'none'}.\n")
    diag = os.path.join(os.path.dirname(os.path.abspath(out_md)), "DIAGNOSIS.md")
    if os.path.exists(diag):
        w("## Diagnosis\n")
        w("Profiling notes and suggested fixes for the missed targets are in `bench/DIAGNOSIS.md` "
          "(written by hand from `perf` profiles; not regenerated by the run).\n")
    with open(out_md, "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
