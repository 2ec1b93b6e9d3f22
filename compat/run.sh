#!/usr/bin/env bash
# Run the python-gitlab compatibility suite against a real latchkey.
#
#   compat/run.sh [LATCHKEY_BIN]
#
# LATCHKEY_BIN defaults to $LATCHKEY_BIN, else
# ${CARGO_TARGET_DIR:-target}/release/latchkey (relative to the repo root).
# Python packages go in <repo>/.venv, rebuilt when compat/requirements.txt
# changes. The server runs on a free loopback port with a fresh database in
# a temporary directory, both removed on exit. Exits with pytest's status.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if [[ $# -gt 1 ]]; then
    echo "usage: compat/run.sh [LATCHKEY_BIN]" >&2
    exit 2
fi
bin="${1:-${LATCHKEY_BIN:-${CARGO_TARGET_DIR:-target}/release/latchkey}}"
case "$bin" in
    /*) ;;
    *) bin="$repo/$bin" ;;
esac
if [[ ! -x "$bin" ]]; then
    echo "compat: no latchkey binary at $bin (build it, or pass its path)" >&2
    exit 2
fi

python="${PYTHON:-python3}"
requirements="$repo/compat/requirements.txt"
venv="$repo/.venv"
want_hash="$("$python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$requirements")"
have_hash="$(cat "$venv/.compat-requirements.sha256" 2>/dev/null || true)"
if [[ ! -x "$venv/bin/python" || "$want_hash" != "$have_hash" ]]; then
    echo "compat: installing $requirements into $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want_hash" >"$venv/.compat-requirements.sha256"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/latchkey-compat.XXXXXX")"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
    echo "---- latchkey server log ($tmp/server.log) ----" >&2
    cat "$tmp/server.log" >&2 || true
    echo "---- end of server log ----" >&2
}

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
url="http://127.0.0.1:$port"
database_url="sqlite://$tmp/latchkey.db?mode=rwc"
root_token="$("$venv/bin/python" -c 'import secrets; print("glpat-" + secrets.token_urlsafe(24))')"

LATCHKEY_LISTEN="127.0.0.1:$port" \
LATCHKEY_DATABASE_URL="$database_url" \
LATCHKEY_EXTERNAL_URL="$url" \
LATCHKEY_ROOT_TOKEN="$root_token" \
    "$bin" serve >"$tmp/server.log" 2>&1 &
server_pid=$!

ready=""
deadline=$((SECONDS + 30))
while ((SECONDS < deadline)); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "compat: latchkey exited before becoming ready" >&2
        show_log
        exit 1
    fi
    if "$venv/bin/python" - "$url/-/readiness" <<'EOF' 2>/dev/null; then
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
        ready=1
        break
    fi
    sleep 0.1
done
if [[ -z "$ready" ]]; then
    echo "compat: latchkey did not become ready at $url/-/readiness within 30 s" >&2
    show_log
    exit 1
fi

export LATCHKEY_URL="$url"
export LATCHKEY_TOKEN="$root_token"
export LATCHKEY_BIN="$bin"
export LATCHKEY_DATABASE_URL="$database_url"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the work tree

status=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider compat/python-gitlab || status=$?
if [[ $status -ne 0 ]]; then
    show_log
fi
exit "$status"
