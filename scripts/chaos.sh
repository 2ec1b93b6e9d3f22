#!/usr/bin/env bash
# Fault tests against a real latchkey: kill -9 under load on SQLite and
# PostgreSQL (every acknowledged write must survive), a PostgreSQL cut
# through a TCP proxy, writes racing their parent's delete, stalled
# connections and stalled readers of the full list. See scripts/chaos.py.
#
#   scripts/chaos.sh [--short] [--rounds N] [--bin PATH] [--out FILE]
#
# PostgreSQL parts run when LATCHKEY_TEST_POSTGRES_URL is set (an admin
# URL; a database is created and dropped). Without --bin, a release build
# is made (CARGO_TARGET_DIR, default /var/tmp/latchkey-target). --short is
# what scripts/test.sh runs in CI: 2 kill -9 rounds per backend.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
args=()
bin=
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift ;;
        *) args+=("$1") ;;
    esac
    shift
done
if [ -z "$bin" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/latchkey-target}"
    cargo build --release --locked -p latchkey
    bin="$CARGO_TARGET_DIR/release/latchkey"
fi
pg=()
if [ -n "${LATCHKEY_TEST_POSTGRES_URL:-}" ]; then
    pg=(--postgres "$LATCHKEY_TEST_POSTGRES_URL")
fi
exec python3 scripts/chaos.py --bin "$bin" "${pg[@]}" "${args[@]}"
