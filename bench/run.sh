#!/usr/bin/env bash
# latchkey's benchmark: one command, writes bench/REPORT.md and bench/results.json.
#
#   bench/run.sh            small database: every endpoint at 1, 16, 64 connections,
#                           the ceiling, cold start, idle RSS, binary size
#                           (~5 min after the build, more when measurements are retried)
#   bench/run.sh --scale    the same, then 1,000,000 applications and 100,000 users
#                           loaded through the store (~6 s), and the same measurements
#                           again, deep pages and the full streamed list (~3.5 min more)
#   bench/run.sh --postgres URL
#                           also every endpoint of the small-database run on PostgreSQL
#                           (URL: a server and a user that may create databases; one is
#                           created and dropped), with one latchkey instance and with two
#                           on one database (two wrk processes, half the connections each),
#                           and pgbench's simple insert and primary-key select as the
#                           database's own reference (~10 min more)
#
# Options: --duration S (each measurement, default 5), --warmup S (default 1),
#          --scale-apps N (default 1000000), --scale-users N (default 100000),
#          --keep (keep the work directory with databases and logs),
#          --rev REV (benchmark a committed revision instead of the work tree: its
#          `git archive`, with this bench/ laid over it, is built in the work directory).
#
# The server runs on core 0 and the load generator (wrk) on core 1 (taskset).
# Only 127.0.0.1 is ever targeted. Everything started here is stopped on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/latchkey-target}

SCALE=0
DURATION=5
WARMUP=1
SCALE_APPS=1000000
SCALE_USERS=100000
KEEP=0
REV=
POSTGRES=
CONNECTIONS=(1 16 64)
SMALL_APPS=100
COLD_RUNS=7
SERVER_CORE=0
LOAD_CORE=1
ATTEMPTS=3        # tries per measurement when other processes disturb it
MAX_OTHER_PCT=15  # busy CPU not ours on either core, in % of the wall time
MAX_OTHER_PCT_PG=60  # the same with PostgreSQL, on both cores together

while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE=1 ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --scale-apps) SCALE_APPS=$2; shift ;;
        --scale-users) SCALE_USERS=$2; shift ;;
        --keep) KEEP=1 ;;
        --rev) REV=$2; shift ;;
        --postgres) POSTGRES=$2; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools -------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    log "installing wrk (Debian package)"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
if [ -n "$POSTGRES" ] && ! command -v pgbench >/dev/null; then
    log "installing pgbench and psql (Debian package postgresql-client)"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-client >/dev/null
fi
if [ -n "$POSTGRES" ]; then
    psql "$POSTGRES" -qAtc 'select 1' >/dev/null || die "PostgreSQL is not reachable at ${POSTGRES%%@*}@…"
fi
for t in wrk taskset curl python3 cargo ss; do
    command -v "$t" >/dev/null || die "$t is required"
done
[ "$(nproc --all)" -ge 2 ] || die "need at least 2 cores (server and load on different ones)"

# --- state and cleanup -------------------------------------------------------
WORK=$(mktemp -d /var/tmp/latchkey-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
SERVER_PID=
SERVER2_PID=
CEILING_PID=
PGDB=
TOKEN=glpat-bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
ROOT_PASSWORD=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$SERVER_PID"
    stop_pid "$SERVER2_PID"
    stop_pid "$CEILING_PID"
    [ -z "${PG_WATCH_PID:-}" ] || kill "$PG_WATCH_PID" 2>/dev/null || true
    if [ -n "$PGDB" ]; then
        psql "$POSTGRES" -qAtc "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
        psql "$POSTGRES" -qAtc "DROP DATABASE IF EXISTS ${PGDB}_pgbench WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -------------------------------------------------------------------
SRC=$ROOT
if [ -n "$REV" ]; then
    # A committed revision: its tree, with this bench/ over it (the bench crates
    # made members of the workspace), built like any checkout.
    COMMIT=$(git -C "$ROOT" rev-parse --verify "$REV^{commit}") || die "no such revision $REV"
    SRC=$WORK/src
    mkdir -p "$SRC"
    git -C "$ROOT" archive "$COMMIT" | tar -x -C "$SRC"
    rm -rf "$SRC/bench"
    mkdir -p "$SRC/bench"
    cp -r "$HERE/ceiling" "$HERE/loader" "$HERE/wrk.lua" "$SRC/bench/"
    python3 - "$SRC/Cargo.toml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
m = re.search(r'^members = \[(.*?)\]', s, re.M)
members = [x.strip().strip('"') for x in m.group(1).split(",") if x.strip()]
for b in ("bench/ceiling", "bench/loader"):
    if b not in members:
        members.append(b)
s = s[:m.start()] + "members = [" + ", ".join(f'"{x}"' for x in members) + "]" + s[m.end():]
open(p, "w").write(s)
PY
    export LATCHKEY_REVISION=${COMMIT:0:11}
    export BENCH_GIT_REVISION=$COMMIT BENCH_SOURCE="git archive of $COMMIT with this bench/ laid over it"
    log "benchmarking revision $COMMIT (source in $SRC)"
fi
log "building (release) into $CARGO_TARGET_DIR"
(cd "$SRC" && cargo build --release --quiet -p latchkey -p latchkey-ceiling -p latchkey-bench-loader)
BIN_DIR=$CARGO_TARGET_DIR/release
# Private copies, so a concurrent build into the same target directory cannot
# swap a binary in the middle of the run.
mkdir -p "$WORK/bin"
for b in latchkey latchkey-ceiling latchkey-bench-loader latchkey-bench-coldstart; do
    cp "$BIN_DIR/$b" "$WORK/bin/$b"
done
LATCHKEY=$WORK/bin/latchkey
CEILING=$WORK/bin/latchkey-ceiling
LOADER=$WORK/bin/latchkey-bench-loader
COLDSTART=$WORK/bin/latchkey-bench-coldstart

free_port() {
    local p
    for p in $(seq "$1" $(($1 + 500))); do
        if [ -z "$(ss -Hltn "sport = :$p")" ]; then echo "$p"; return 0; fi
    done
    return 1
}
PORT=$(free_port 18480)
CEILING_PORT=$(free_port $((PORT + 1)))
PORT2=$(free_port $((CEILING_PORT + 1)))
BASE2=http://127.0.0.1:$PORT2
BASE=http://127.0.0.1:$PORT
API=$BASE/api/v4

CLK_TCK=$(getconf CLK_TCK)
# user + nice + system ticks of one core; user + system ticks of a process (all threads).
core_ticks() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 }' /proc/stat; }
# Ticks any core spent idle with a disk read or write outstanding.
iowait_ticks() { awk '$1 == "cpu" { print $6 }' /proc/stat; }
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
emit() { printf '%s\n' "$1" >>"$RESULTS"; }
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
reset_peak() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || log "cannot reset VmHWM of $1"; }

server_env() {
    env LATCHKEY_LISTEN="127.0.0.1:$PORT" \
        LATCHKEY_DATABASE_URL="sqlite://$1?mode=rwc" \
        LATCHKEY_ROOT_TOKEN="$TOKEN" \
        LATCHKEY_LOG=warn \
        "${@:2}"
}

wait_ready() { # url timeout_s
    local i
    for i in $(seq $(($2 * 100))); do
        if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
        sleep 0.01
    done
    die "$1 not ready after $2 s"
}

start_server() { # db
    start_url "sqlite://$1?mode=rwc" "$PORT"
    SERVER_PID=$STARTED_PID
}

start_url() { # database-url port -> STARTED_PID
    local url=$1 port=$2
    [ -z "$(ss -Hltn "sport = :$port")" ] || die "port $port is taken"
    # A simple command (not a function) in the background, so $! is latchkey
    # itself (env and taskset exec it). The access log is on (`info`) unless
    # SERVER_LOG says otherwise; SERVER_ENV adds settings (NAME=VALUE ...).
    env LATCHKEY_LISTEN="127.0.0.1:$port" LATCHKEY_DATABASE_URL="$url" \
        LATCHKEY_ROOT_TOKEN="$TOKEN" LATCHKEY_ROOT_PASSWORD="$ROOT_PASSWORD" \
        LATCHKEY_LOG="${SERVER_LOG:-info}" ${SERVER_ENV:-} \
        taskset -c $SERVER_CORE "$LATCHKEY" serve >>"$WORK/server.log" 2>&1 &
    STARTED_PID=$!
    wait_ready "http://127.0.0.1:$port/-/readiness" 60
    [ "$(readlink "/proc/$STARTED_PID/exe")" = "$(readlink -f "$LATCHKEY")" ] \
        || die "process $STARTED_PID is not latchkey"
    ss -Hltnp "sport = :$port" | grep -q "pid=$STARTED_PID," || die "latchkey $STARTED_PID does not own port $port"
}
stop_server() { stop_pid "$SERVER_PID"; SERVER_PID=; }

# The access log writes a line per request: keep what is not an access line
# and start the log again once it is large (it is appended to, so the
# servers go on writing).
trim_log() {
    local log=$WORK/server.log
    [ -f "$log" ] && [ "$(stat -c %s "$log")" -gt $((256 * 1024 * 1024)) ] || return 0
    grep -v 'latchkey::access' "$log" >>"$WORK/server.kept.log" || true
    : >"$log"
}

# Requests a rate limit refused, from the metrics of the servers on these
# ports (the benchmark's own load must meet no limit).
limited_count() { # phase port...
    local phase=$1 n=0 port m
    shift
    for port in "$@"; do
        m=$(curl -sS "http://127.0.0.1:$port/-/metrics" |
            awk '/^latchkey_rate_limited_requests_total/ { s += $2 } END { print s + 0 }')
        n=$((n + m))
    done
    emit "{\"kind\":\"limited\",\"phase\":\"$phase\",\"refused\":$n}"
    log "  $phase: $n requests refused by a rate limit"
}

rm_db() { rm -f "$1" "$1-wal" "$1-shm"; }

# curl with the token, pinned to the load core; prints the status code.
api() { # method path [body] -> body in $WORK/last.json
    local m=$1 p=$2
    if [ $# -ge 3 ]; then
        taskset -c $LOAD_CORE curl -sS -o "$WORK/last.json" -w '%{http_code}' -X "$m" \
            -H "PRIVATE-TOKEN: $TOKEN" --data "$3" "$API$p"
    else
        taskset -c $LOAD_CORE curl -sS -o "$WORK/last.json" -w '%{http_code}' -X "$m" \
            -H "PRIVATE-TOKEN: $TOKEN" "$API$p"
    fi
}
expect() { # code method path [body]
    local want=$1 got
    shift
    got=$(api "$@")
    [ "$got" = "$want" ] || die "$1 $2 answered $got, expected $want: $(head -c 300 "$WORK/last.json")"
}

CREATE_BODY='name=bench&redirect_uri=https://b.example/cb&scopes=api'

# The OAuth side: a confidential client (instance application), root's access
# token from the password grant, and pools of live refresh tokens.
oauth_setup() {
    expect 201 POST /applications 'name=bench-client&redirect_uri=https://b.example/cb&scopes=api&confidential=true'
    CLIENT_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["application_id"])' "$WORK/last.json")
    CLIENT_SECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret"])' "$WORK/last.json")
    OAUTH_ACCESS=$(password_grant access_token)
    [ -n "$OAUTH_ACCESS" ] || die "the password grant gave no access token"
}
password_grant() { # field -> that field of a password grant's answer for root
    taskset -c $LOAD_CORE curl -sS -X POST "$BASE/oauth/token" \
        --data-urlencode grant_type=password --data-urlencode username=root \
        --data-urlencode "password=$ROOT_PASSWORD" --data-urlencode "client_id=$CLIENT_ID" \
        --data-urlencode "client_secret=$CLIENT_SECRET" --data-urlencode scope=api |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"
}
refresh_pool() { # connections: a fresh pool of live refresh tokens for one wrk run
    local i n=$(( $1 + 8 ))
    : >"$WORK/refresh.txt"
    for i in $(seq "$n"); do
        password_grant refresh_token >>"$WORK/refresh.txt"
    done
    [ "$(grep -c . "$WORK/refresh.txt")" = "$n" ] || die "could not make $n refresh tokens"
    split_pool "$WORK/refresh.txt"
}
# Two instances: each wrk gets half the pool, a file of its own.
split_pool() { # file
    local n
    [ -n "${SECOND_PID:-}" ] || return 0
    n=$(grep -c . "$1")
    head -n $(( (n + 1) / 2 )) "$1" >"$1.1"
    tail -n +$(( (n + 1) / 2 + 1 )) "$1" >"$1.2"
}
# Single-use grants (authorization codes, approved device codes) written
# straight into the SQLite database the server serves, by the loader: one
# per request of a run (at most POOL_RATE requests a second), so that the
# token endpoint's redemption is measured alone, not the browser flow that
# mints a code.
POOL_RATE=16000
code_pool() { # connections (unused)
    taskset -c $LOAD_CORE "$LOADER" --database-url "$POOL_DB" --pool authorization_code \
        --count $(( POOL_RATE * DURATION )) --client-id "$CLIENT_ID" \
        --redirect-uri https://b.example/cb --out "$WORK/codes.txt" 2>>"$WORK/loader.log" \
        || die "the loader could not write authorization codes (see $WORK/loader.log)"
    split_pool "$WORK/codes.txt"
}
device_pool() { # connections (unused)
    taskset -c $LOAD_CORE "$LOADER" --database-url "$POOL_DB" --pool device_code \
        --count $(( POOL_RATE * DURATION )) --client-id "$CLIENT_ID" --out "$WORK/devices.txt" \
        2>>"$WORK/loader.log" || die "the loader could not write device codes (see $WORK/loader.log)"
    split_pool "$WORK/devices.txt"
}

# One load measurement: warm-up, reset the server's peak RSS, measure.
measure() { # phase endpoint pid url method body connections
    local phase=$1 name=$2 pid=$3 url=$4 method=$5 body=$6 c=$7 out json hwm rss
    # BEARER, POOL_FILE/POOL_FIELD/POOL_CHAIN (see wrk.lua) and PREP (a
    # function run with the connection count
    # before every wrk run) are set by the caller for the OAuth endpoints.
    export BENCH_METHOD=$method BENCH_TOKEN=$TOKEN BENCH_BODY=$body
    export BENCH_BEARER=${BEARER:-} BENCH_POOL_FILE=${POOL_FILE:-}
    export BENCH_POOL_FIELD=${POOL_FIELD:-} BENCH_POOL_CHAIN=${POOL_CHAIN:-}
    [ -z "${PREP:-}" ] || "$PREP" "$c"
    if [ -z "${SECOND_PID:-}" ]; then
        taskset -c $LOAD_CORE wrk -t1 -c"$c" -d"${WARMUP}s" --timeout 10s \
            -s "$HERE/wrk.lua" "$url" >/dev/null
    else
        run_wrk_pair "$c" "$WARMUP" "$url" ""
    fi
    # CPU accounting, to show interference from other processes on the two
    # cores: core 0's busy time not spent by the server, core 1's not by wrk.
    # A disturbed measurement (other work above MAX_OTHER_PCT on either core)
    # is repeated, up to ATTEMPTS times; every attempt is recorded and the
    # report uses the least disturbed one.
    local s0 s1 a0 a1 b0 b1 t0 t1 wu ws cpu attempt other io0 io1 pgw
    local TIMEFORMAT='%U %S'
    for attempt in $(seq "$ATTEMPTS"); do
        [ -z "${PREP:-}" ] || "$PREP" "$c"
        reset_peak "$pid"
        [ -z "${SECOND_PID:-}" ] || reset_peak "$SECOND_PID"
        pg_watch_start
        s0=$(servers_ticks "$pid"); pg_snapshot >"$WORK/pg.0"; io0=$(iowait_ticks)
        a0=$(core_ticks $SERVER_CORE); b0=$(core_ticks $LOAD_CORE); t0=$(date +%s%N)
        if [ -z "${SECOND_PID:-}" ]; then
            { time taskset -c $LOAD_CORE wrk -t1 -c"$c" -d"${DURATION}s" --timeout 10s --latency \
                -s "$HERE/wrk.lua" "$url" >"$WORK/wrk.out"; } 2>"$WORK/wrk.time"
        else
            { time run_wrk_pair "$c" "$DURATION" "$url" --latency; } 2>"$WORK/wrk.time"
        fi
        s1=$(servers_ticks "$pid"); pg_snapshot >"$WORK/pg.1"; io1=$(iowait_ticks)
        g0=0; g1=$(pg_ticks_between "$WORK/pg.0" "$WORK/pg.1")
        a1=$(core_ticks $SERVER_CORE); b1=$(core_ticks $LOAD_CORE); t1=$(date +%s%N)
        pg_watch_stop >"$WORK/pgwatch.json"; pgw=$(cat "$WORK/pgwatch.json")
        hwm=$(status_kb "$pid" VmHWM)
        rss=$(status_kb "$pid" VmRSS)
        if [ -n "${SECOND_PID:-}" ]; then
            hwm=$((hwm + $(status_kb "$SECOND_PID" VmHWM)))
            rss=$((rss + $(status_kb "$SECOND_PID" VmRSS)))
        fi
        read -r wu ws < <(tail -n1 "$WORK/wrk.time")
        if [ -z "${SECOND_PID:-}" ]; then
            out=$(cat "$WORK/wrk.out")
            json=$(sed -n 's/^BENCH_JSON //p' <<<"$out")
        else
            out=$(cat "$WORK/wrk.out" "$WORK/wrk2.out")
            json=$(merge_wrk "$WORK/wrk.out" "$WORK/wrk2.out")
        fi
        [ -n "$json" ] || die "wrk printed no figures for $name: $out"
        cpu="{\"clk_tck\":$CLK_TCK,\"wall_ns\":$((t1 - t0)),\"server_ticks\":$((s1 - s0)),\"postgres_ticks\":$((g1 - g0)),\"server_core_ticks\":$((a1 - a0)),\"load_core_ticks\":$((b1 - b0)),\"wrk_user_s\":$wu,\"wrk_sys_s\":$ws,\"iowait_ticks\":$((io1 - io0))}"
        emit "{\"kind\":\"load\",\"phase\":\"$phase\",\"endpoint\":\"$name\",\"method\":\"$method\",\"url\":\"${url#"$BASE"}\",\"connections\":$c,\"instances\":$([ -n "${SECOND_PID:-}" ] && echo 2 || echo 1),\"duration_s\":$DURATION,\"attempt\":$attempt,\"peak_rss_kb\":$hwm,\"rss_after_kb\":$rss,\"cpu\":$cpu,${pgw:+\"pg\":$pgw,}\"wrk\":$json}"
        python3 "$HERE/report.py" --line "$(tail -n1 "$RESULTS")" >&2
        trim_log
        # PostgreSQL floats over both cores: its CPU is the run's own work,
        # not a disturbance, so with it the two cores are judged together.
        other=$(awk -v a=$((a1 - a0)) -v s=$((s1 - s0)) -v b=$((b1 - b0)) -v w="$wu" -v x="$ws" \
            -v g=$((g1 - g0)) -v t=$((t1 - t0)) -v k="$CLK_TCK" 'BEGIN {
                if (g > 0) { print ((a + b - s - g) / k - w - x) / (t / 1e9) * 100; exit }
                o0 = (a - s) / k / (t / 1e9) * 100; o1 = (b / k - w - x) / (t / 1e9) * 100
                print (o0 > o1 ? o0 : o1) }')
        # With PostgreSQL, the kernel's work for the database's own loopback
        # traffic is in "other" too: a looser bound there.
        local bound=$MAX_OTHER_PCT
        [ $((g1 - g0)) -eq 0 ] || bound=$MAX_OTHER_PCT_PG
        if awk -v o="$other" -v m="$bound" 'BEGIN { exit !(o <= m) }'; then
            break
        fi
        if [ "$attempt" -lt "$ATTEMPTS" ]; then
            log "    disturbed (${other%.*}% other CPU), measuring again"
        fi
    done
}

# CPU ticks of the latchkey process(es) measured: $1, and SECOND_PID if set.
servers_ticks() {
    local t
    t=$(proc_ticks "$1")
    [ -z "${SECOND_PID:-}" ] || t=$((t + $(proc_ticks "$SECOND_PID")))
    echo "$t"
}

# CPU ticks of every PostgreSQL server process, one "pid ticks" line each
# (nothing without --postgres).
pg_snapshot() {
    local p t
    [ -n "$POSTGRES" ] || return 0
    for p in $(pgrep -x postgres); do
        t=$(proc_ticks "$p" 2>/dev/null) && echo "$p $t"
    done
}

# PostgreSQL's ticks between two snapshots: processes in both count their
# difference, processes that started meanwhile all of theirs (one that
# exited meanwhile is lost, never counted negative).
pg_ticks_between() { # start-file end-file
    awk 'NR == FNR { start[$1] = $2; next } { d += ($1 in start) ? $2 - start[$1] : $2 } END { print d + 0 }' "$1" "$2"
}

# What PostgreSQL did during a measurement of a PostgreSQL phase (nothing
# otherwise): every 50 ms, one psql on the load core lists what the
# phase database's active client backends are waiting on (a wait event, or
# "running" for none: on a core, or waiting where PostgreSQL has no event);
# and its counters before and after: checkpoints, the WAL's records,
# full-page images, bytes and syncs. pg_watch_stop prints one JSON object:
# the mean number of backends in each state over the samples, and the
# counters' differences. A slow measurement then says what it waited on.
PG_WATCH_SQL="SELECT 'S ' || COALESCE(string_agg(COALESCE(wait_event_type || ':' || wait_event, 'running'), ' '), '')
  FROM pg_stat_activity
  WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid();
SELECT pg_sleep(0.05);"
PG_COUNTERS_SQL="SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
  wal_records, wal_fpi, wal_bytes, wal_sync FROM pg_stat_wal"
pg_watch_start() {
    PG_WATCH_PID=
    [ -n "${PHASE_PG_URL:-}" ] || return 0
    psql "$PHASE_PG_URL" -qAt -F ' ' -c "$PG_COUNTERS_SQL" >"$WORK/pgc.0" 2>/dev/null || : >"$WORK/pgc.0"
    local i
    for i in $(seq $(( (WARMUP + DURATION + 5) * 20 ))); do printf '%s\n' "$PG_WATCH_SQL"; done \
        >"$WORK/pgwatch.sql"
    taskset -c $LOAD_CORE psql "$PHASE_PG_URL" -qAt -f "$WORK/pgwatch.sql" >"$WORK/pgwatch.out" 2>/dev/null &
    PG_WATCH_PID=$!
}
pg_watch_stop() {
    [ -n "${PG_WATCH_PID:-}" ] || return 0
    kill "$PG_WATCH_PID" 2>/dev/null || true
    wait "$PG_WATCH_PID" 2>/dev/null || true
    PG_WATCH_PID=
    psql "$PHASE_PG_URL" -qAt -F ' ' -c "$PG_COUNTERS_SQL" >"$WORK/pgc.1" 2>/dev/null || : >"$WORK/pgc.1"
    python3 - "$WORK/pgwatch.out" "$WORK/pgc.0" "$WORK/pgc.1" <<'PY'
import json, sys
samples, states = 0, {}
for line in open(sys.argv[1]):
    if not line.startswith("S"):
        continue
    samples += 1
    for s in line.split()[1:]:
        states[s] = states.get(s, 0) + 1
def counters(p):
    f = open(p).read().split()
    return [float(x) for x in f] if len(f) == 5 else None
a, b = counters(sys.argv[2]), counters(sys.argv[3])
out = {"samples": samples,
       "active": {k: round(v / samples, 3) for k, v in sorted(states.items(), key=lambda kv: -kv[1])} if samples else {}}
if a and b:
    for k, x, y in zip(("checkpoints", "wal_records", "wal_fpi", "wal_bytes", "wal_sync"), a, b):
        out[k] = int(y - x)
print(json.dumps(out, separators=(",", ":")))
PY
}

# Two wrk processes on the load core, half the connections each, one per
# instance (BASE and BASE2), into wrk.out and wrk2.out.
run_wrk_pair() { # connections seconds url [--latency]
    local c=$1 d=$2 url=$3 lat=${4:-} h1 h2
    h1=$(( (c + 1) / 2 )); h2=$(( c / 2 ))
    [ "$h2" -ge 1 ] || h2=1
    BENCH_POOL_FILE=${POOL_FILE:+$POOL_FILE.1} taskset -c $LOAD_CORE wrk -t1 -c"$h1" -d"${d}s" \
        --timeout 10s $lat -s "$HERE/wrk.lua" "$url" >"$WORK/wrk.out" &
    local w1=$!
    BENCH_POOL_FILE=${POOL_FILE:+$POOL_FILE.2} taskset -c $LOAD_CORE wrk -t1 -c"$h2" -d"${d}s" \
        --timeout 10s $lat -s "$HERE/wrk.lua" "${url/$BASE/$BASE2}" >"$WORK/wrk2.out" &
    local w2=$!
    wait "$w1" "$w2"
}

# One BENCH_JSON from two wrk runs: counts added; latency percentiles are
# the worse of the two (percentiles of two runs cannot be merged exactly).
merge_wrk() {
    python3 - "$1" "$2" <<'PY'
import json, sys
runs = []
for p in sys.argv[1:]:
    for line in open(p):
        if line.startswith("BENCH_JSON "):
            runs.append(json.loads(line[len("BENCH_JSON "):]))
if len(runs) != 2:
    sys.exit(0)
a, b = runs
n = a["requests"] + b["requests"]
lat = {k: max(a["latency_us"][k], b["latency_us"][k]) for k in a["latency_us"]}
lat["min"] = min(a["latency_us"]["min"], b["latency_us"]["min"])
lat["mean"] = (a["latency_us"]["mean"] * a["requests"] + b["latency_us"]["mean"] * b["requests"]) / max(n, 1)
print(json.dumps({
    "requests": n, "duration_us": max(a["duration_us"], b["duration_us"]), "bytes": a["bytes"] + b["bytes"],
    "errors": {k: a["errors"][k] + b["errors"][k] for k in a["errors"]},
    "latency_us": lat, "merged_from": 2,
}))
PY
}

# The full, unpaginated (streamed) list: time, size, and the server's peak RSS.
stream_all() { # phase pid db
    local phase=$1 pid=$2 before hwm after res items expected
    # How many rows the list must hold, counted in the database itself
    # (read-only; X-Total is omitted above 10,000, as GitLab does).
    expected=$(python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("SELECT COUNT(*) FROM oauth_applications WHERE owner_id IS NULL").fetchone()[0])' "$3")
    before=$(status_kb "$pid" VmRSS)
    reset_peak "$pid"
    res=$(taskset -c $LOAD_CORE curl -sS -o "$WORK/stream.json" -H "PRIVATE-TOKEN: $TOKEN" \
        -w '%{http_code} %{size_download} %{time_starttransfer} %{time_total}' "$API/applications")
    hwm=$(status_kb "$pid" VmHWM)
    after=$(status_kb "$pid" VmRSS)
    items=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/stream.json" 2>/dev/null || echo -1)
    rm -f "$WORK/stream.json"
    set -- $res
    emit "{\"kind\":\"stream\",\"phase\":\"$phase\",\"status\":$1,\"bytes\":$2,\"ttfb_s\":$3,\"total_s\":$4,\"items\":$items,\"expected_items\":${expected:--1},\"rss_before_kb\":$before,\"peak_rss_kb\":$hwm,\"rss_after_kb\":$after}"
    log "  $phase full list: HTTP $1, $items items, $2 bytes in $4 s; RSS $before kB before, peak $hwm kB"
}

# The database and its WAL on disk while the server still runs (a WAL that is
# never checkpointed grows with every write).
db_files() { # phase db
    local wal=0 shm=0
    [ -f "$2-wal" ] && wal=$(stat -c %s "$2-wal")
    [ -f "$2-shm" ] && shm=$(stat -c %s "$2-shm")
    emit "{\"kind\":\"files\",\"phase\":\"$1\",\"db_bytes\":$(stat -c %s "$2"),\"wal_bytes\":$wal,\"shm_bytes\":$shm}"
    log "  $1 database file $(stat -c %s "$2") bytes, WAL $wal bytes"
}

measure_all() { # phase pid user_app_id list_pages...
    local phase=$1 pid=$2 app=$3 c page
    shift 3
    for c in "${CONNECTIONS[@]}"; do
        measure "$phase" "GET /user" "$pid" "$API/user" GET "" "$c"
    done
    for c in "${CONNECTIONS[@]}"; do
        measure "$phase" "GET /user/applications/:id" "$pid" "$API/user/applications/$app" GET "" "$c"
    done
    for c in "${CONNECTIONS[@]}"; do
        BEARER=$OAUTH_ACCESS measure "$phase" "GET /user (OAuth token)" "$pid" "$API/user" GET "" "$c"
    done
    for c in "${CONNECTIONS[@]}"; do
        BEARER=$OAUTH_ACCESS measure "$phase" "GET /oauth/token/info" "$pid" "$BASE/oauth/token/info" GET "" "$c"
    done
    for page in "$@"; do
        for c in "${CONNECTIONS[@]}"; do
            measure "$phase" "GET /applications p$page" "$pid" \
                "$API/applications?per_page=20&page=$page" GET "" "$c"
        done
    done
    # GitLab's keyset pagination: the same pages by id, at any depth.
    for after in "${KEYSET_AFTERS[@]}"; do
        for c in "${CONNECTIONS[@]}"; do
            measure "$phase" "GET /applications keyset after $after" "$pid" \
                "$API/applications?pagination=keyset&per_page=20&id_after=$after" GET "" "$c"
        done
    done
    # Creates last: they grow the table the listings above read.
    for c in "${CONNECTIONS[@]}"; do
        measure "$phase" "POST /applications" "$pid" "$API/applications" POST "$CREATE_BODY" "$c"
    done
    for c in "${CONNECTIONS[@]}"; do
        measure "$phase" "POST /oauth/token client_credentials" "$pid" "$BASE/oauth/token" POST \
            "grant_type=client_credentials&client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET" "$c"
    done
    for c in "${CONNECTIONS[@]}"; do
        PREP=refresh_pool POOL_FILE=$WORK/refresh.txt POOL_FIELD=refresh_token POOL_CHAIN=refresh_token \
            measure "$phase" "POST /oauth/token refresh_token" "$pid" "$BASE/oauth/token" POST \
            "grant_type=refresh_token&client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET" "$c"
    done
    # The grants whose codes the loader mints: SQLite only (POOL_DB).
    if [ -n "${POOL_DB:-}" ]; then
        for c in "${CONNECTIONS[@]}"; do
            PREP=code_pool POOL_FILE=$WORK/codes.txt POOL_FIELD=code POOL_CHAIN= \
                measure "$phase" "POST /oauth/token authorization_code" "$pid" "$BASE/oauth/token" POST \
                "grant_type=authorization_code&redirect_uri=https%3A%2F%2Fb.example%2Fcb&client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET" "$c"
        done
        for c in "${CONNECTIONS[@]}"; do
            PREP=device_pool POOL_FILE=$WORK/devices.txt POOL_FIELD=device_code POOL_CHAIN= \
                measure "$phase" "POST /oauth/token device_code" "$pid" "$BASE/oauth/token" POST \
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET" "$c"
        done
    fi
    # The listing again, on the table the creates grew (tens of thousands of
    # rows): first, middle and last page, offset and keyset. The issue's
    # bar: a page costs what it cost on the small table. (The scale phase
    # measures its own deep pages.)
    [ "$phase" != scale ] || return 0
    local rows mid last kmid klast
    read -r rows kmid klast < <(grown_table)
    emit "{\"kind\":\"grown\",\"phase\":\"$phase\",\"instance_applications\":$rows}"
    log "  $phase: $rows instance applications after the creates"
    last=$(( (rows + 19) / 20 )); mid=$(( (last + 1) / 2 ))
    for page in "first page|per_page=20&page=1" "middle page|per_page=20&page=$mid" \
        "last page|per_page=20&page=$last" \
        "keyset middle|pagination=keyset&per_page=20&id_after=$kmid" \
        "keyset last|pagination=keyset&per_page=20&id_after=$klast"; do
        for c in 16 64; do
            measure "$phase" "GET /applications ${page%%|*}, grown" "$pid" \
                "$API/applications?${page#*|}" GET "" "$c"
        done
    done
}

# The phase's instance applications: how many, the id before the middle
# one and the id 20 before the end (keyset pages that start there).
GROWN_SQL="SELECT (SELECT COUNT(*) FROM oauth_applications WHERE owner_id IS NULL),
    (SELECT id FROM oauth_applications WHERE owner_id IS NULL ORDER BY id
        LIMIT 1 OFFSET (SELECT COUNT(*) / 2 FROM oauth_applications WHERE owner_id IS NULL)),
    (SELECT id FROM oauth_applications WHERE owner_id IS NULL ORDER BY id DESC LIMIT 1 OFFSET 20)"
grown_table() {
    if [ -n "${PHASE_PG_URL:-}" ]; then
        psql "$PHASE_PG_URL" -qAt -F ' ' -c "$GROWN_SQL"
    else
        python3 - "$DB" "$GROWN_SQL" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(*c.execute(sys.argv[2]).fetchone())
PY
    fi
}

emit "{\"kind\":\"loadavg\",\"when\":\"start\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"

# --- build figures -------------------------------------------------------------
emit "{\"kind\":\"build\",\"binary_bytes\":$(stat -c %s "$LATCHKEY"),\"stripped_bytes\":$(strip -o "$WORK/latchkey.stripped" "$LATCHKEY" && stat -c %s "$WORK/latchkey.stripped"),\"ceiling_binary_bytes\":$(stat -c %s "$CEILING")}"
emit "{\"kind\":\"config\",\"duration_s\":$DURATION,\"warmup_s\":$WARMUP,\"connections\":[$(IFS=,; echo "${CONNECTIONS[*]}")],\"server_core\":$SERVER_CORE,\"load_core\":$LOAD_CORE,\"small_apps\":$SMALL_APPS,\"scale\":$SCALE,\"scale_apps\":$SCALE_APPS,\"scale_users\":$SCALE_USERS}"

# --- cold start ----------------------------------------------------------------
log "cold start: $COLD_RUNS runs on a fresh database, $COLD_RUNS on an existing one"
DB=$WORK/small.db
for kind in fresh existing; do
    for i in $(seq "$COLD_RUNS"); do
        [ "$kind" = fresh ] && rm_db "$DB"
        ms=$(server_env "$DB" "$COLDSTART" "$PORT" /-/readiness -- \
            taskset -c $SERVER_CORE "$LATCHKEY" serve 2>>"$WORK/server.log" | tail -n1)
        emit "{\"kind\":\"coldstart\",\"db\":\"$kind\",\"ms\":$ms}"
    done
    log "  $kind database: $(sed -n "s/.*\"db\":\"$kind\",\"ms\":\([0-9.]*\).*/\1/p" "$RESULTS" | tr '\n' ' ')ms"
done

# --- the disk ----------------------------------------------------------------------
# A durable write waits for at least one fsync; this is the floor under every
# create's latency on this machine (the database lives in $WORK).
log "disk: 16 KB append + fsync in $WORK, 3000 times"
python3 "$HERE/fsync_probe.py" "$WORK/fsync.probe" idle >>"$RESULTS"
log "  $(tail -n1 "$RESULTS")"

# --- small database --------------------------------------------------------------
log "small database: fresh, root + $SMALL_APPS instance applications + 1 user application"
rm_db "$DB"
start_server "$DB"
sleep 1
IDLE=$(status_kb "$SERVER_PID" VmRSS)
emit "{\"kind\":\"idle\",\"phase\":\"small\",\"rss_kb\":$IDLE,\"hwm_kb\":$(status_kb "$SERVER_PID" VmHWM)}"
log "  idle RSS ${IDLE} kB"
expect 200 GET /user
cp "$WORK/last.json" "$WORK/user.json"
expect 201 POST /user/applications 'name=mine&redirect_uri=https://b.example/cb&scopes=api'
APP_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/last.json")
expect 200 GET "/user/applications/$APP_ID"
for i in $(seq "$SMALL_APPS"); do
    expect 201 POST /applications "name=seed$i&redirect_uri=https://b.example/cb&scopes=api"
done
expect 200 GET '/applications?per_page=20'
LAST_SMALL=$(( (SMALL_APPS + 19) / 20 ))
oauth_setup

log "ceiling on 127.0.0.1:$CEILING_PORT answering the $(stat -c %s "$WORK/user.json")-byte GET /user body"
taskset -c $SERVER_CORE "$CEILING" "$CEILING_PORT" "$WORK/user.json" 2>>"$WORK/ceiling.log" &
CEILING_PID=$!
wait_ready "http://127.0.0.1:$CEILING_PORT/" 10
cmp -s "$WORK/user.json" <(curl -sS "http://127.0.0.1:$CEILING_PORT/") || die "ceiling body differs"
emit "{\"kind\":\"body\",\"user_json_bytes\":$(stat -c %s "$WORK/user.json"),\"ceiling_idle_rss_kb\":$(status_kb "$CEILING_PID" VmRSS)}"
for c in "${CONNECTIONS[@]}"; do
    measure small ceiling "$CEILING_PID" "http://127.0.0.1:$CEILING_PORT/api/v4/user" GET "" "$c"
done
stop_pid "$CEILING_PID"; CEILING_PID=

log "small database: load"
KEYSET_AFTERS=(0 80)
POOL_DB="sqlite://$DB?mode=rw" measure_all small "$SERVER_PID" "$APP_ID" 1 "$LAST_SMALL"
log "small database: worst-case inputs"
taskset -c $LOAD_CORE python3 "$HERE/worst_case.py" "$BASE" "$TOKEN" "$CLIENT_ID" "$CLIENT_SECRET" \
    "$SERVER_PID" >>"$RESULTS" || die "the worst-case inputs failed"
stream_all small "$SERVER_PID" "$DB"
db_files small "$DB"
emit "{\"kind\":\"idle\",\"phase\":\"small-after\",\"rss_kb\":$(status_kb "$SERVER_PID" VmRSS)}"
limited_count small "$PORT"
stop_server

# --- the access log's cost -----------------------------------------------------------
# Every measurement above ran with the access log on (a line per request, to
# $WORK/server.log). Its cost: GET /user, the fastest endpoint, at 16
# connections, with the log off (LATCHKEY_LOG=warn) and on, in turn.
log "access log: GET /user at 16 connections, off and on in turn, twice"
for round in 1 2; do
    for mode in off on; do
        if [ "$mode" = off ]; then SERVER_LOG=warn start_server "$DB"; else start_server "$DB"; fi
        measure "access-log-$mode" "GET /user" "$SERVER_PID" "$API/user" GET "" 16
        stop_server
    done
done

# --- rate limits ---------------------------------------------------------------------
# Each limit set low, then loaded far past it with wrk: what gets through
# per second must be the configured rate (plus the first second's burst).
RL_UNAUTH=200 RL_TOKEN=100 RL_API=500
log "rate limits: unauthenticated $RL_UNAUTH/s per address, token $RL_TOKEN/s per client, API $RL_API/s per token"
RL_DB=$WORK/ratelimit.db
rm_db "$RL_DB"
SERVER_ENV="LATCHKEY_RATE_LIMIT_UNAUTHENTICATED=$RL_UNAUTH LATCHKEY_RATE_LIMIT_TOKEN=$RL_TOKEN LATCHKEY_RATE_LIMIT_API=$RL_API" \
    start_server "$RL_DB"
oauth_setup
emit "{\"kind\":\"ratelimit_config\",\"unauthenticated\":$RL_UNAUTH,\"token\":$RL_TOKEN,\"api\":$RL_API}"
TOKEN= measure ratelimit "unauthenticated GET /oauth/discovery/keys" "$SERVER_PID" \
    "$BASE/oauth/discovery/keys" GET "" 16
measure ratelimit "GET /user" "$SERVER_PID" "$API/user" GET "" 16
measure ratelimit "POST /oauth/token client_credentials" "$SERVER_PID" "$BASE/oauth/token" POST \
    "grant_type=client_credentials&client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET" 16
stop_server

# --- PostgreSQL ---------------------------------------------------------------------
pg_url() { # database -> the --postgres URL with that database
    python3 - "$POSTGRES" "$1" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, "")))
PY
}
pg_admin() { psql "$POSTGRES" -qAtc "$1" >/dev/null; }

# The same small database, the same endpoints: `$1` instances on one database.
pg_phase() { # phase instances
    local phase=$1 n=$2 i
    pg_admin "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)"
    pg_admin "CREATE DATABASE $PGDB"
    start_url "$(pg_url "$PGDB")" "$PORT"
    SERVER_PID=$STARTED_PID
    if [ "$n" = 2 ]; then
        start_url "$(pg_url "$PGDB")" "$PORT2"
        SERVER2_PID=$STARTED_PID
    fi
    sleep 1
    emit "{\"kind\":\"idle\",\"phase\":\"$phase\",\"rss_kb\":$(status_kb "$SERVER_PID" VmRSS),\"hwm_kb\":$(status_kb "$SERVER_PID" VmHWM)}"
    expect 201 POST /user/applications 'name=mine&redirect_uri=https://b.example/cb&scopes=api'
    APP_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/last.json")
    for i in $(seq "$SMALL_APPS"); do
        expect 201 POST /applications "name=seed$i&redirect_uri=https://b.example/cb&scopes=api"
    done
    oauth_setup
    log "PostgreSQL, $n instance(s): load"
    KEYSET_AFTERS=(0 80)
    PHASE_PG_URL=$(pg_url "$PGDB")
    if [ "$n" = 2 ]; then
        SECOND_PID=$SERVER2_PID measure_all "$phase" "$SERVER_PID" "$APP_ID" 1 "$LAST_SMALL"
    else
        measure_all "$phase" "$SERVER_PID" "$APP_ID" 1 "$LAST_SMALL"
    fi
    PHASE_PG_URL=
    if [ "$n" = 2 ]; then limited_count "$phase" "$PORT" "$PORT2"; else limited_count "$phase" "$PORT"; fi
    pg_admin "VACUUM"
    # Where a listing page's time goes after the creates: the plan.
    psql "$(pg_url "$PGDB")" -qAt -c "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
        SELECT COUNT(*) FROM (SELECT 1 FROM oauth_applications WHERE owner_id IS NULL LIMIT 10001) t" \
        >"$WORK/$phase-count-plan.json" 2>/dev/null || true
    emit "{\"kind\":\"pg_rows\",\"phase\":\"$phase\",\"applications\":$(psql "$(pg_url "$PGDB")" -qAtc 'SELECT COUNT(*) FROM oauth_applications'),\"tokens\":$(psql "$(pg_url "$PGDB")" -qAtc 'SELECT COUNT(*) FROM oauth_access_tokens'),\"count_plan_ms\":$(python3 -c 'import json,sys
try:
    print(json.load(open(sys.argv[1]))[0]["Execution Time"])
except Exception:
    print(-1)' "$WORK/$phase-count-plan.json")}"
    stop_pid "$SERVER2_PID"; SERVER2_PID=
    stop_server
}

# PostgreSQL's own limits here: pgbench, a simple insert and a primary-key
# select, at the same connection counts, on the load core like wrk.
pgbench_reference() {
    local db=${PGDB}_pgbench url c script out tps lat
    pg_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    pg_admin "CREATE DATABASE $db"
    url=$(pg_url "$db")
    psql "$url" -qAt -c "CREATE TABLE bench_t (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)" \
        -c "INSERT INTO bench_t (v) SELECT md5(i::text) FROM generate_series(1, 100000) i" >/dev/null
    printf 'INSERT INTO bench_t (v) VALUES (md5(random()::text));\n' >"$WORK/pgbench-insert.sql"
    printf '\\set id random(1, 100000)\nSELECT v FROM bench_t WHERE id = :id;\n' >"$WORK/pgbench-select.sql"
    for script in insert select; do
        for c in "${CONNECTIONS[@]}"; do
            out=$(taskset -c $LOAD_CORE pgbench -n -M prepared -j 1 -c "$c" -T "$DURATION" \
                -f "$WORK/pgbench-$script.sql" "$url" 2>&1) || die "pgbench failed: $out"
            tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | tail -n1)
            lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out" | tail -n1)
            emit "{\"kind\":\"pgbench\",\"script\":\"$script\",\"connections\":$c,\"tps\":${tps:-0},\"latency_avg_ms\":${lat:-0}}"
            log "  pgbench $script c=$c: $tps tps, $lat ms average"
        done
    done
    pg_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)"
}

if [ -n "$POSTGRES" ]; then
    PGDB=latchkey_bench_$$
    emit "{\"kind\":\"postgres\",\"version\":\"$(psql "$POSTGRES" -qAtc 'SHOW server_version')\",\"synchronous_commit\":\"$(psql "$POSTGRES" -qAtc 'SHOW synchronous_commit')\",\"fsync\":\"$(psql "$POSTGRES" -qAtc 'SHOW fsync')\",\"shared_buffers\":\"$(psql "$POSTGRES" -qAtc 'SHOW shared_buffers')\",\"autovacuum\":\"$(psql "$POSTGRES" -qAtc 'SHOW autovacuum')\",\"max_connections\":$(psql "$POSTGRES" -qAtc 'SHOW max_connections')}"
    log "PostgreSQL: pgbench reference"
    pgbench_reference
    log "PostgreSQL: one instance, small database"
    pg_phase pg1 1
    log "PostgreSQL: two instances on one database"
    pg_phase pg2 2
    pg_admin "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)"
    PGDB=
fi

# --- scale -------------------------------------------------------------------------
if [ "$SCALE" = 1 ]; then
    SDB=$WORK/scale.db
    rm_db "$SDB"
    log "scale: bootstrap root and one user application over HTTP, then load through the store"
    start_server "$SDB"
    expect 201 POST /user/applications 'name=mine&redirect_uri=https://b.example/cb&scopes=api'
    SAPP_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/last.json")
    stop_server
    LOAD_START=$(date +%s.%N)
    LOADED=$(taskset -c $SERVER_CORE "$LOADER" --database-url "sqlite://$SDB?mode=rwc" \
        --apps "$SCALE_APPS" --users "$SCALE_USERS" 2>>"$WORK/loader.log" | tail -n1)
    LOAD_END=$(date +%s.%N)
    emit "{\"kind\":\"scale_load\",\"loaded\":$LOADED,\"wall_s\":$(python3 -c "print(round($LOAD_END-$LOAD_START,2))"),\"db_bytes\":$(stat -c %s "$SDB")}"
    log "  loaded: $LOADED"
    for i in $(seq 3); do
        ms=$(server_env "$SDB" "$COLDSTART" "$PORT" /-/readiness -- \
            taskset -c $SERVER_CORE "$LATCHKEY" serve 2>>"$WORK/server.log" | tail -n1)
        emit "{\"kind\":\"coldstart\",\"db\":\"scale\",\"ms\":$ms}"
    done
    start_server "$SDB"
    sleep 1
    emit "{\"kind\":\"idle\",\"phase\":\"scale\",\"rss_kb\":$(status_kb "$SERVER_PID" VmRSS),\"hwm_kb\":$(status_kb "$SERVER_PID" VmHWM)}"
    expect 200 GET "/user/applications/$SAPP_ID"
    expect 200 GET '/applications?per_page=20'
    oauth_setup
    TOTAL=$(( SCALE_APPS + 0 ))
    LAST=$(( (TOTAL + 19) / 20 ))
    MID=$(( LAST / 2 ))
    log "scale: load"
    KEYSET_AFTERS=(0 $(( TOTAL / 2 )) $(( TOTAL - 20 )))
    measure_all scale "$SERVER_PID" "$SAPP_ID" 1 "$MID" "$LAST"
    stream_all scale "$SERVER_PID" "$SDB"
    db_files scale "$SDB"
    emit "{\"kind\":\"idle\",\"phase\":\"scale-after\",\"rss_kb\":$(status_kb "$SERVER_PID" VmRSS)}"
    stop_server
fi

log "reliability: kill -9 rounds under load, a database cut, races, stalled clients (scripts/chaos.py)"
PG_ARGS=()
CHAOS_PG=${POSTGRES:-${LATCHKEY_TEST_POSTGRES_URL:-}}
if [ -n "$CHAOS_PG" ]; then PG_ARGS=(--postgres "$CHAOS_PG"); fi
python3 "$ROOT/scripts/chaos.py" --bin "$LATCHKEY" "${PG_ARGS[@]}" --out "$WORK/reliability.json" \
    || log "reliability: some checks did not hold (see the report)"
emit "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$WORK/reliability.json")"

emit "{\"kind\":\"loadavg\",\"when\":\"end\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"

# --- report --------------------------------------------------------------------------
python3 "$HERE/report.py" "$RESULTS" "$HERE/results.json" "$HERE/REPORT.md" "$ROOT"
log "wrote bench/REPORT.md and bench/results.json"
