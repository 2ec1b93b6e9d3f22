"""What the standalone compatibility tests share: a latchkey server of
their own (LATCHKEY_BIN, as compat/run.sh sets it) on a free port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import requests


def binary() -> str:
    path = os.environ.get("LATCHKEY_BIN")
    if not path:
        pytest.fail("LATCHKEY_BIN is not set: run this suite through compat/run.sh", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def latchkey_server(env: dict[str, str]) -> Iterator[str]:
    """`latchkey serve` with `env` on a free loopback port, until ready;
    yields its base URL; stops it afterwards."""
    base = f"http://127.0.0.1:{free_port()}"
    full = {**os.environ, "LATCHKEY_LISTEN": base.removeprefix("http://"), "LATCHKEY_LOG": "warn",
            **env}
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        server = subprocess.Popen([binary(), "serve"], env=full, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    pytest.fail("latchkey exited: " + log.read(), pytrace=False)
                try:
                    if requests.get(f"{base}/-/readiness", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "latchkey was not ready in 30 s"
                time.sleep(0.05)
            yield base
        finally:
            server.terminate()
            server.wait(timeout=30)
