#!/usr/bin/env python3
"""latchkey's fault tests: what an operator fears, run for real.

    scripts/chaos.py --bin PATH [--postgres URL] [--rounds N] [--short] [--out FILE]

1. kill -9 under load: a latchkey process takes concurrent creates; it is
   killed with SIGKILL at a random moment, restarted, and every create it
   had acknowledged (201) must be there. On SQLite the file must pass
   `PRAGMA integrity_check`. Both backends (PostgreSQL when --postgres).
2. A database cut (PostgreSQL): latchkey reaches the server through a TCP
   proxy that is cut and restored under load. Requests must get 503 (never
   another 5xx, never a hang), and service must resume by itself.
3. The three ways hostile clients hurt an instance: writes racing the
   delete of their parent (never 5xx), stalled connections (idle,
   half-sent headers, half-sent bodies: closed by the timeouts), stalled
   readers of the full application list (readiness stays 200).

Every figure is printed and, with --out, written as JSON (the benchmark's
report shows it in its reliability section). Exits non-zero when anything
that must hold did not. Only 127.0.0.1 is ever targeted; every loop is
bounded in count and time.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT_TOKEN = "glpat-chaos-root-token-0123456789"
FAILURES = []


def log(msg):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fail(msg):
    FAILURES.append(msg)
    log(f"FAILED: {msg}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, db_url, env=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = dict(os.environ)
        full.update({
            "LATCHKEY_LISTEN": f"127.0.0.1:{self.port}",
            "LATCHKEY_DATABASE_URL": db_url,
            "LATCHKEY_ROOT_TOKEN": ROOT_TOKEN,
            "LATCHKEY_LOG": "warn",
        })
        full.update(env or {})
        self.proc = subprocess.Popen([binary, "serve"], env=full,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"latchkey exited with {self.proc.returncode} before it was ready")
            try:
                if request(self.base, "GET", "/-/readiness", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("latchkey was not ready in 60 s")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def request(base, method, path, body=None, headers=None, timeout=30):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        h = {"PRIVATE-TOKEN": ROOT_TOKEN}
        h.update(headers or {})
        if isinstance(body, dict):
            body = urllib.parse.urlencode(body)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=h)
        res = conn.getresponse()
        data = res.read()
        return res.status, data
    finally:
        conn.close()


def all_application_ids(base):
    status, data = request(base, "GET", "/api/v4/applications", timeout=120)
    if status != 200:
        raise RuntimeError(f"listing answered {status}")
    return {a["id"] for a in json.loads(data)}


# --- 1. kill -9 under load ---------------------------------------------------------


def load(base, stop, acked, statuses, lock):
    while not stop.is_set():
        try:
            status, data = request(base, "POST", "/api/v4/applications", {
                "name": "chaos", "redirect_uri": "https://chaos.example/cb", "scopes": "api",
            }, timeout=10)
        except OSError:
            with lock:
                statuses["connection error"] = statuses.get("connection error", 0) + 1
            time.sleep(0.01)
            continue
        with lock:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if status == 201:
                acked.append(json.loads(data)["id"])


def kill9_rounds(binary, db_url, rounds, backend, sqlite_path=None):
    acked, statuses, lock = [], {}, threading.Lock()
    lost_total = 0
    for r in range(rounds):
        server = Server(binary, db_url)
        stop = threading.Event()
        workers = [threading.Thread(target=load, args=(server.base, stop, acked, statuses, lock))
                   for _ in range(8)]
        for w in workers:
            w.start()
        time.sleep(random.uniform(0.5, 2.0))
        server.kill9()
        stop.set()
        for w in workers:
            w.join(timeout=30)
        server = Server(binary, db_url)
        present = all_application_ids(server.base)
        with lock:
            lost = [i for i in acked if i not in present]
        lost_total = len(lost)
        server.stop()
        if sqlite_path:
            ok = sqlite3.connect(sqlite_path).execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                fail(f"{backend} round {r}: integrity_check says {ok}")
        if lost:
            fail(f"{backend} round {r}: {len(lost)} acknowledged writes lost, e.g. {lost[:5]}")
        log(f"{backend} kill -9 round {r + 1}/{rounds}: {len(acked)} acknowledged so far, {len(lost)} lost")
    bad = {k: v for k, v in statuses.items() if k.startswith("5") and k != "503"}
    if bad:
        fail(f"{backend}: 5xx other than 503 under kill -9 load: {bad}")
    return {"backend": backend, "rounds": rounds, "acknowledged": len(acked), "lost": lost_total,
            "statuses": statuses}


# --- 2. a database cut through a TCP proxy -------------------------------------------


class Proxy:
    """A TCP proxy to PostgreSQL that can be cut (listener closed, every
    connection reset) and restored on the same port."""

    def __init__(self, target):
        self.target = target
        self.port = free_port()
        self.conns = []
        self.lock = threading.Lock()
        self.listener = None
        self.restore()

    def restore(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls):
        while True:
            try:
                a, _ = ls.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(self.target)
            except OSError:
                a.close()
                continue
            with self.lock:
                self.conns += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pipe, args=(x, y), daemon=True).start()

    @staticmethod
    def _pipe(x, y):
        try:
            while True:
                data = x.recv(65536)
                if not data:
                    break
                y.sendall(data)
        except OSError:
            pass
        for s in (x, y):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        # shutdown() first: a plain close() leaves a listener that another
        # thread is blocked in accept() on still accepting (Linux), and the
        # cut would not refuse new connections.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.conns = []


def database_cut(binary, admin_url, db_name):
    u = urllib.parse.urlsplit(admin_url)
    proxy = Proxy((u.hostname or "127.0.0.1", u.port or 5432))
    netloc = u.netloc.rsplit("@", 1)
    userinfo = netloc[0] + "@" if len(netloc) == 2 else ""
    url = f"{u.scheme}://{userinfo}127.0.0.1:{proxy.port}/{db_name}"
    server = Server(binary, url, {"LATCHKEY_DATABASE_TIMEOUT": "5"})
    statuses, lock = {}, threading.Lock()
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            t0 = time.time()
            try:
                status, _ = request(server.base, "GET", "/api/v4/user", timeout=30)
                key = str(status)
            except OSError:
                key = "connection error"
            with lock:
                statuses[key] = statuses.get(key, 0) + 1
                if time.time() - t0 > 10:
                    statuses["hung > 10 s"] = statuses.get("hung > 10 s", 0) + 1

    workers = [threading.Thread(target=reader) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(1)
    proxy.cut()
    cut_at = time.time()
    # Longer than LATCHKEY_DATABASE_TIMEOUT: requests that were waiting for a
    # connection when the cut came get their 503, later ones at once.
    time.sleep(8)
    proxy.restore()
    restored_at = time.time()
    recovered = None
    while time.time() - restored_at < 30:
        try:
            if request(server.base, "GET", "/api/v4/user", timeout=10)[0] == 200:
                recovered = time.time() - restored_at
                break
        except OSError:
            pass
        time.sleep(0.05)
    stop.set()
    for w in workers:
        w.join(timeout=60)
    alive = server.proc.poll() is None
    server.stop()
    bad = {k: v for k, v in statuses.items() if (k.startswith("5") and k != "503") or k.startswith("hung")}
    if bad:
        fail(f"database cut: {bad}")
    if recovered is None:
        fail("database cut: no recovery within 30 s of the database coming back")
    if not alive:
        fail("database cut: latchkey exited")
    log(f"database cut: statuses {statuses}, recovered {recovered and round(recovered, 2)} s after restore")
    return {"statuses": statuses, "cut_s": round(restored_at - cut_at, 2),
            "recovered_s": recovered and round(recovered, 2)}


# --- 3. hostile clients --------------------------------------------------------------


def races(binary, db_url, rounds):
    server = Server(binary, db_url)
    statuses = {}
    for _ in range(rounds):
        status, data = request(server.base, "POST", "/api/v4/applications", {
            "name": "racer", "redirect_uri": "https://r.example/cb", "scopes": "api", "confidential": "true"})
        app = json.loads(data)
        results = []

        def grant():
            try:
                s, _ = request(server.base, "POST", "/oauth/token", {
                    "grant_type": "client_credentials", "client_id": app["application_id"],
                    "client_secret": app["secret"]}, headers={"PRIVATE-TOKEN": ""})
            except OSError:
                s = "connection error"
            results.append(str(s))

        threads = [threading.Thread(target=grant) for _ in range(8)]
        for t in threads:
            t.start()
        request(server.base, "DELETE", f"/api/v4/applications/{app['id']}")
        for t in threads:
            t.join()
        for s in results:
            statuses[s] = statuses.get(s, 0) + 1
    server.stop()
    bad = {k: v for k, v in statuses.items() if k not in ("200", "401")}
    if bad:
        fail(f"races: answers other than 200 and 401: {bad}")
    log(f"races: {statuses}")
    return {"rounds": rounds, "statuses": statuses}


def stalled_connections(binary, db_url):
    server = Server(binary, db_url, {
        "LATCHKEY_HTTP_HEADER_TIMEOUT": "2", "LATCHKEY_HTTP_BODY_TIMEOUT": "2",
        "LATCHKEY_HTTP_IDLE_TIMEOUT": "2", "LATCHKEY_SHUTDOWN_TIMEOUT": "2"})
    out = {}
    for kind, payload in [
        ("idle", b""),
        ("half-sent headers", b"GET /api/v4/user HTTP/1.1\r\nHost: x\r\n"),
        ("half-sent body", b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                           b"Content-Type: application/x-www-form-urlencoded\r\n\r\ngrant_type="),
    ]:
        s = socket.create_connection(("127.0.0.1", server.port))
        s.settimeout(20)
        s.sendall(payload)
        t0 = time.time()
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            fail(f"stalled connection ({kind}) still open after 20 s")
        closed_after = round(time.time() - t0, 2)
        out[kind] = {"closed_after_s": closed_after, "answer": got.split(b"\r\n", 1)[0].decode(errors="replace")}
        s.close()
    # SIGTERM with a stalled client still ends the process.
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    t0 = time.time()
    server.proc.terminate()
    try:
        server.proc.wait(timeout=20)
        out["sigterm_exit_s"] = round(time.time() - t0, 2)
    except subprocess.TimeoutExpired:
        fail("SIGTERM with a stalled client: still running after 20 s")
        server.proc.kill()
    s.close()
    log(f"stalled connections: {out}")
    return out


def stalled_list_readers(binary, db_url):
    server = Server(binary, db_url, {"LATCHKEY_DATABASE_POOL_SIZE": "2",
                                     "LATCHKEY_HTTP_WRITE_TIMEOUT": "5"})
    uris = "\n".join(f"https://r{i}.example/{'a' * 1900}" for i in range(5))
    for i in range(600):
        request(server.base, "POST", "/api/v4/applications", {
            "name": f"big {i}", "redirect_uri": uris, "scopes": "api"})
    readers = []
    for _ in range(6):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", server.port))
        s.sendall(f"GET /api/v4/applications HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {ROOT_TOKEN}\r\n\r\n".encode())
        s.recv(1024)
        readers.append(s)
    time.sleep(1)
    ready = [request(server.base, "GET", "/-/readiness", timeout=30)[0] for _ in range(5)]
    listed = request(server.base, "GET", "/api/v4/applications?per_page=5", timeout=30)[0]
    for s in readers:
        s.close()
    server.stop()
    if any(r != 200 for r in ready) or listed != 200:
        fail(f"stalled list readers: readiness {ready}, a page {listed}")
    log(f"stalled list readers: readiness {ready}, a page {listed}")
    return {"stalled_readers": len(readers), "pool_size": 2, "readiness": ready, "page": listed}


# --- main --------------------------------------------------------------------------------


def psql(admin_url, sql):
    subprocess.run(["psql", admin_url, "-qAtc", sql], check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--postgres")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--short", action="store_true", help="2 kill -9 rounds per backend, fewer races")
    ap.add_argument("--out")
    args = ap.parse_args()
    rounds = 2 if args.short else args.rounds
    report = {"kind": "reliability", "short": args.short, "kill9": [], "when": time.strftime("%Y-%m-%d %H:%M")}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "chaos.db")
        url = f"sqlite://{path}?mode=rwc"
        report["kill9"].append(kill9_rounds(args.bin, url, rounds, "sqlite", path))
        report["races"] = races(args.bin, f"sqlite://{os.path.join(tmp, 'races.db')}?mode=rwc",
                                3 if args.short else 20)
        report["stalled_connections"] = stalled_connections(
            args.bin, f"sqlite://{os.path.join(tmp, 'stalled.db')}?mode=rwc")
        report["stalled_list_readers"] = stalled_list_readers(
            args.bin, f"sqlite://{os.path.join(tmp, 'lists.db')}?mode=rwc")
        if args.postgres:
            name = f"latchkey_chaos_{os.getpid()}"
            psql(args.postgres, f"CREATE DATABASE {name}")
            try:
                u = urllib.parse.urlsplit(args.postgres)
                db_url = urllib.parse.urlunsplit((u.scheme, u.netloc, f"/{name}", u.query, ""))
                report["kill9"].append(kill9_rounds(args.bin, db_url, max(1, rounds // 2), "postgres"))
                report["database_cut"] = database_cut(args.bin, args.postgres, name)
            finally:
                psql(args.postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    report["failures"] = FAILURES
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    if FAILURES:
        print(f"chaos: {len(FAILURES)} check(s) did not hold: {FAILURES}")
        sys.exit(1)
    print("chaos: every check held")


if __name__ == "__main__":
    main()
