#!/usr/bin/env bash
# Profile one endpoint of latchkey under load with perf (call graphs via DWARF).
#
#   bench/profile.sh [--rev REV] ENDPOINTS [CONNECTIONS=16] [SECONDS=8]
#
# ENDPOINTS is a comma-separated list of user, user-app, list, create
# (profiled one after the other against the same server).
#
# With --rev, the committed revision REV (its `git archive`) is profiled
# instead of the work tree.
# Builds the release binary with line tables (CARGO_PROFILE_RELEASE_DEBUG),
# copies it aside, starts it on a fresh database pinned to core 0 (seeded
# with 100 instance applications and one user application), drives it with
# wrk pinned to core 1, records `perf record -g --call-graph dwarf` on the
# server, and prints where the time goes: by thread, then the inclusive
# ("children") share of the symbols that matter for latchkey's hot paths.
# The perf data stays in the printed work directory for `perf report -i`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/latchkey-target}
REV=
if [ "${1:-}" = --rev ]; then REV=$2; shift 2; fi
ENDPOINTS=${1:-user}
CONNS=${2:-16}
SECS=${3:-8}

command -v perf >/dev/null || { echo "perf is required (apt-get install linux-perf)" >&2; exit 1; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

WORK=$(mktemp -d /var/tmp/latchkey-profile.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SRC=$ROOT
if [ -n "$REV" ]; then
    SRC=$WORK/src
    mkdir -p "$SRC"
    git -C "$ROOT" archive "$(git -C "$ROOT" rev-parse --verify "$REV^{commit}")" | tar -x -C "$SRC"
fi
(cd "$SRC" && CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --quiet -p latchkey)
cp "$CARGO_TARGET_DIR/release/latchkey" "$WORK/latchkey"

PORT=18690
while [ -n "$(ss -Hltn "sport = :$PORT")" ]; do PORT=$((PORT + 1)); done
API=http://127.0.0.1:$PORT/api/v4
TOKEN=glpat-profile-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

LATCHKEY_LISTEN="127.0.0.1:$PORT" LATCHKEY_DATABASE_URL="sqlite://$WORK/db.sqlite?mode=rwc" \
    LATCHKEY_ROOT_TOKEN="$TOKEN" LATCHKEY_LOG=warn \
    taskset -c 0 "$WORK/latchkey" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 500); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/-/readiness" && break; sleep 0.01; done

APP=$(curl -fsS -H "PRIVATE-TOKEN: $TOKEN" -d 'name=mine&redirect_uri=https://b.example/cb&scopes=api' \
    "$API/user/applications" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for i in $(seq 100); do
    curl -fsS -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" \
        -d "name=seed$i&redirect_uri=https://b.example/cb&scopes=api" "$API/applications"
done

profile_one() { # endpoint
    local url
    export BENCH_TOKEN=$TOKEN BENCH_METHOD=GET BENCH_BODY=
    case "$1" in
        user) url=$API/user ;;
        user-app) url=$API/user/applications/$APP ;;
        list) url="$API/applications?per_page=20" ;;
        create) url=$API/applications BENCH_METHOD=POST
                BENCH_BODY='name=bench&redirect_uri=https://b.example/cb&scopes=api' ;;
        *) echo "unknown endpoint $1 (user, user-app, list, create)" >&2; exit 2 ;;
    esac
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$((SECS + 2))s" -s "$HERE/wrk.lua" "$url" >"$WORK/wrk-$1.txt" &
    local wrk=$!
    sleep 1
    perf record -q -F 999 --call-graph dwarf,16384 -p "$SERVER_PID" -o "$WORK/perf-$1.data" -- sleep "$SECS" 2>/dev/null
    wait "$wrk"
    echo "######## $1, $CONNS connections"
    echo "== wrk (under perf, so slower than bench/run.sh): $(sed -n 's/^BENCH_JSON //p' "$WORK/wrk-$1.txt")"
    echo "== samples by thread"
    perf report -i "$WORK/perf-$1.data" --no-children --sort comm -q -g none 2>/dev/null | grep '%' | head
    echo "== inclusive share of selected symbols"
    perf report -i "$WORK/perf-$1.data" --children --sort symbol -q -g none 2>/dev/null \
        | sed 's/ \{3,\}/  /g' | cut -c1-160 \
        | grep -E 'ConnectionWorker::|futex_wake|finish_task_switch|sqlite3_step|sqlite3VdbeExec|countStep|sqlite3BtreeNext|fsync|sqlite3WalFrames|authenticate::|find_token_by_digest|find_application|list_instance_applications|insert_application|group_commit|serde_json::ser|tcp_sendmsg|_int_malloc|Sha256|argon2|tracing_subscriber' \
        | awk '$1 + 0 >= 1.0' | head -30
    echo "== perf data: $WORK/perf-$1.data (perf report -i $WORK/perf-$1.data --children)"
}

for e in ${ENDPOINTS//,/ }; do
    profile_one "$e"
done
