#!/usr/bin/env python3
"""The worst-case input table: for each parser that sees a request before
authentication, a normal request, the largest adversarial request the server
still parses, and one it refuses, with what each costs the server.

    bench/worst_case.py BASE_URL ROOT_TOKEN CLIENT_ID CLIENT_SECRET SERVER_PID >> results.jsonl

Writes one JSON line per case (kind "worst_case"): the body's bytes, the
status, the median wall time of REPEAT requests on loopback, and the
server's CPU time per request read from /proc/PID/stat around them. Only
127.0.0.1 is targeted. Timing lives here, never in the tests.
"""

import base64
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

REPEAT = 7
MAX_PARAMS = 1000
BODY_LIMIT = 1024 * 1024


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def request(base, method, path, body=b"", headers=None):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    t0 = time.perf_counter()
    conn.request(method, path, body=body, headers=headers or {})
    res = conn.getresponse()
    data = res.read()
    elapsed = time.perf_counter() - t0
    conn.close()
    return res.status, elapsed, data


def pairs(n, fmt="k{i}[]=1"):
    return "&".join(fmt.format(i=i) for i in range(n)).encode()


def multipart(fields):
    boundary = "latchkeybenchboundary"
    out = []
    for k, v in fields:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n')
    out.append(f"--{boundary}--\r\n")
    return "".join(out).encode(), f"multipart/form-data; boundary={boundary}"


def main():
    base, token, client_id, client_secret, pid = sys.argv[1:6]
    pid = int(pid)
    tick = os.sysconf("SC_CLK_TCK")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    api = {"PRIVATE-TOKEN": token}
    creds = f"client_id={client_id}&client_secret={client_secret}".encode()
    create = b"name=bench&redirect_uri=https://b.example/cb&scopes=api"
    many_scopes = " ".join(f"user:{i}" for i in range(100))
    huge_scopes = " ".join(f"user:{i}" for i in range(120_000))[: BODY_LIMIT - 100]
    many_uris = " ".join(f"https://b{i}.example/cb" for i in range(100))
    long_uri = "https://b.example/" + "x" * (2000 - len("https://b.example/"))
    fields_normal, mp_type = multipart([("name", "bench"), ("redirect_uri", "https://b.example/cb"), ("scopes", "api")])
    fields_many, _ = multipart([(f"k{i}", "1") for i in range(MAX_PARAMS)])
    fields_over, _ = multipart([(f"k{i}", "1") for i in range(MAX_PARAMS + 1)])
    nested = json.dumps({"a": [[]] * (MAX_PARAMS - 2)}).encode()
    deep = ("[" * 120 + "]" * 120).encode()
    basic = base64.b64encode(f"{client_id}:{'s' * 6000}".encode()).decode()

    # An application whose 100 redirect URIs each carry ~990 query pairs,
    # and an authorization request whose redirect URI carries as many: the
    # matching runs before anyone signs in.
    many_pairs = ["https://x.example/cb?" + "z&" * 988 + "zz"] * 100
    status, _, body = request(base, "POST", "/api/v4/applications",
                           ("name=pairs&scopes=api&redirect_uri=" + urllib.parse.quote("\n".join(many_pairs))).encode(),
                           {**api, **form})
    pairs_client = json.loads(body).get("application_id", "none") if status == 201 else "none"
    asked = urllib.parse.quote("https://x.example/cb?" + "a&" * 987 + "z")
    if pairs_client == "none":
        sys.exit(f"worst_case: the application with 100 long redirect URIs was refused ({status}): {body[:200]!r}")

    # (parser, case, method, path, body, headers)
    cases = [
        ("redirect matching", "normal: authorize", "GET", f"/oauth/authorize?client_id={client_id}&response_type=code&redirect_uri=https://b.example/cb", b"", {}),
        ("redirect matching", "100 URIs x 989 query pairs against 988", "GET", f"/oauth/authorize?client_id={pairs_client}&response_type=code&redirect_uri={asked}", b"", {}),
        ("form", "normal: revoke", "POST", "/oauth/revoke", b"token=abc&" + creds, form),
        ("form", f"{MAX_PARAMS} distinct a[]= keys", "POST", "/oauth/revoke", pairs(MAX_PARAMS - 3) + b"&token=abc&" + creds, form),
        ("form", "one 1 MB value", "POST", "/oauth/revoke", b"token=" + b"a" * (BODY_LIMIT - 200) + b"&" + creds, form),
        ("form", "40,000 distinct a[]= keys (refused)", "POST", "/oauth/revoke", pairs(40_000), form),
        ("form", "1 MB of a[]= keys (refused)", "POST", "/oauth/revoke", pairs(90_000)[: BODY_LIMIT - 10], form),
        ("json", "normal: create", "POST", "/api/v4/applications", json.dumps({"name": "bench", "redirect_uri": "https://b.example/cb", "scopes": "api"}).encode(), {**api, "Content-Type": "application/json"}),
        ("json", f"{MAX_PARAMS - 2}-element array", "POST", "/api/v4/applications", nested, {**api, "Content-Type": "application/json"}),
        ("json", "120 levels deep", "POST", "/api/v4/applications", deep, {**api, "Content-Type": "application/json"}),
        ("json", "100,000 keys (refused)", "POST", "/api/v4/applications", json.dumps({f"k{i}": 1 for i in range(70_000)}).encode()[: BODY_LIMIT - 10], {**api, "Content-Type": "application/json"}),
        ("multipart", "normal: create", "POST", "/api/v4/applications", fields_normal, {**api, "Content-Type": mp_type}),
        ("multipart", f"{MAX_PARAMS} fields", "POST", "/api/v4/applications", fields_many, {**api, "Content-Type": mp_type}),
        ("multipart", f"{MAX_PARAMS + 1} fields (refused)", "POST", "/api/v4/applications", fields_over, {**api, "Content-Type": mp_type}),
        ("query", "normal: GET /user", "GET", "/api/v4/user", b"", api),
        ("query", f"{MAX_PARAMS - 1} a[]= keys", "GET", "/api/v4/user?" + pairs(MAX_PARAMS - 1).decode(), b"", api),
        ("query", f"{MAX_PARAMS + 1} a[]= keys (refused)", "GET", "/api/v4/user?" + pairs(MAX_PARAMS + 1).decode(), b"", api),
        ("scopes", "normal: device, scope=api", "POST", "/oauth/authorize_device", b"scope=api&" + creds, form),
        ("scopes", "100 distinct scopes", "POST", "/oauth/authorize_device", b"scope=" + urllib.parse.quote(many_scopes).encode() + b"&" + creds, form),
        ("scopes", "1 MB of distinct scopes (refused)", "POST", "/oauth/authorize_device", b"scope=" + urllib.parse.quote(huge_scopes).encode()[: BODY_LIMIT - 200] + b"&" + creds, form),
        ("redirect_uri", "normal: create", "POST", "/api/v4/applications", create, {**api, **form}),
        ("redirect_uri", "100 URIs", "POST", "/api/v4/applications", b"name=b&scopes=api&redirect_uri=" + urllib.parse.quote(many_uris).encode(), {**api, **form}),
        ("redirect_uri", "one 2,000-byte URI", "POST", "/api/v4/applications", b"name=b&scopes=api&redirect_uri=" + urllib.parse.quote(long_uri).encode(), {**api, **form}),
        ("redirect_uri", "one 900 KB URI (refused)", "POST", "/api/v4/applications", b"name=b&scopes=api&redirect_uri=https://b.example/" + b"x" * 900_000, {**api, **form}),
        ("basic_auth", "normal", "POST", "/oauth/revoke", b"token=abc", {**form, "Authorization": "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()}),
        ("basic_auth", "8 KB header", "POST", "/oauth/revoke", b"token=abc", {**form, "Authorization": "Basic " + basic}),
        ("pkce", "normal verifier", "POST", "/oauth/token", b"grant_type=authorization_code&code=x&redirect_uri=https://b.example/cb&code_verifier=" + b"v" * 64 + b"&" + creds, form),
        ("pkce", "1 MB verifier", "POST", "/oauth/token", b"grant_type=authorization_code&code=x&redirect_uri=https://b.example/cb&code_verifier=" + b"v" * (BODY_LIMIT - 400) + b"&" + creds, form),
    ]
    for parser, case, method, path, body, headers in cases:
        times = []
        before = cpu_ticks(pid)
        status = None
        for _ in range(REPEAT):
            status, elapsed, _ = request(base, method, path, body, headers)
            times.append(elapsed)
        cpu_ms = (cpu_ticks(pid) - before) * 1000 / tick / REPEAT
        size = len(body) + (len(path) if method == "GET" else 0) + sum(len(v) for v in headers.values())
        print(json.dumps({
            "kind": "worst_case",
            "parser": parser,
            "case": case,
            "bytes": size,
            "status": status,
            "ms_median": round(statistics.median(times) * 1000, 2),
            "ms_max": round(max(times) * 1000, 2),
            "cpu_ms": round(cpu_ms, 2),
        }))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
