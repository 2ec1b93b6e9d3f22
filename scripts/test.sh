#!/usr/bin/env bash
# The whole test suite, from a fresh machine: unit tests, the storage
# conformance suite, the HTTP integration suite, and the compatibility
# suite that drives a real latchkey with real third-party clients.
#
#   scripts/test.sh
#
# Environment:
#   CARGO_TARGET_DIR             where cargo builds (default ./target)
#   LATCHKEY_TEST_POSTGRES_URL   also run the storage suites on PostgreSQL
#                                (e.g. postgres://postgres@127.0.0.1:5432/postgres);
#                                when set, an unreachable server fails the run
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"

if ! command -v cargo >/dev/null; then
    echo "test: cargo is not installed (https://rustup.rs)" >&2
    exit 1
fi
if ! python3 -c 'import venv' 2>/dev/null; then
    echo "test: installing python3-venv" >&2
    apt-get update -qq && apt-get install -y -qq python3-venv
fi

if [[ -n "${LATCHKEY_TEST_POSTGRES_URL:-}" ]]; then
    echo "== storage suites also run on PostgreSQL: ${LATCHKEY_TEST_POSTGRES_URL%%@*}@…"
else
    echo "== LATCHKEY_TEST_POSTGRES_URL is not set: PostgreSQL variants are skipped"
fi

echo "== cargo test (workspace)"
cargo test --workspace --locked

if [[ -n "${LATCHKEY_TEST_POSTGRES_URL:-}" ]]; then
    echo "== HTTP integration suite on PostgreSQL"
    LATCHKEY_TEST_API_BACKEND=postgres cargo test --locked -p latchkey --test api
fi

cargo build --locked -p latchkey

echo "== fault tests, short form (kill -9 under load, a database cut, races, stalled clients)"
bash scripts/chaos.sh --short --bin "$target/debug/latchkey"

echo "== compatibility suites (python-gitlab, Authlib, schemathesis, headless Chromium, openid-client, a Rust relying party)"
bash compat/run.sh "$target/debug/latchkey"
