"""Summarise the compatibility suites' runs for compat/run.sh.

    python compat/summary.py DIR NAME...

DIR holds NAME.log (a suite's output) and NAME.rc (its exit status) for
each suite. Prints one line per suite with its runner's own summary, then
the totals as `compat: N passed, N failed[, N skipped]`. The suites in
TAP_SUITES ran under `node --test --test-reporter=tap`; those in
PLAIN_SUITES close with their own `NAME: N passed, N failed[, N skipped]`
line; the others ran under `pytest -q`. A suite that exited non-zero
without a failed test counted (it crashed, or collected nothing) counts as
one failure.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")
PYTEST_SUMMARY = re.compile(r"\b(passed|failed|errors?|skipped|no tests ran)\b.* in [\d.]+s")
TAP_COUNT = re.compile(r"^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$", re.M)
PLAIN_COUNT = r"^{name}: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?$"

TAP_SUITES = {"browser", "openid-client"}
PLAIN_SUITES = {"rust-rp"}


def summarise(name: str, log: str) -> tuple[str, int, int, int]:
    """(summary text, passed, failed, skipped) of one suite's output."""
    if name in PLAIN_SUITES:
        found = re.findall(PLAIN_COUNT.format(name=re.escape(name)), log, re.M)
        if not found:
            return "no summary", 0, 0, 0
        passed, failed, skipped = (int(n or 0) for n in found[-1])
        text = f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
        return text, passed, failed, skipped
    if name in TAP_SUITES:
        counts = {k: int(v) for k, v in TAP_COUNT.findall(log)}
        if "tests" not in counts:
            return "no summary", 0, 0, 0
        text = ", ".join(f"{k} {v}" for k, v in counts.items())
        failed = counts.get("fail", 0) + counts.get("cancelled", 0)
        skipped = counts.get("skipped", 0) + counts.get("todo", 0)
        return text, counts.get("pass", 0), failed, skipped
    lines = [line for line in log.splitlines() if PYTEST_SUMMARY.search(line)]
    if not lines:
        return "no summary", 0, 0, 0
    text = lines[-1].strip("= ")
    passed = failed = skipped = 0
    for n, what in PYTEST_COUNT.findall(text):
        if what in ("passed", "xpassed"):
            passed += int(n)
        elif what in ("failed", "error", "errors"):
            failed += int(n)
        elif what in ("skipped", "xfailed"):
            skipped += int(n)
    return text, passed, failed, skipped


def main() -> int:
    out, names = Path(sys.argv[1]), sys.argv[2:]
    total = [0, 0, 0]
    for name in names:
        log = (out / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        rc = int((out / f"{name}.rc").read_text().strip() or "1")
        text, passed, failed, skipped = summarise(name, log)
        if rc != 0 and failed == 0:
            failed = 1
        total = [total[0] + passed, total[1] + failed, total[2] + skipped]
        print(f"{name:>14}: {'ok' if rc == 0 else 'FAILED':<6} {text}")
    line = f"compat: {total[0]} passed, {total[1]} failed"
    if total[2]:
        line += f", {total[2]} skipped"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
