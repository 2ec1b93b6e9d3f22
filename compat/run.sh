#!/usr/bin/env bash
# Run the compatibility suites against one real latchkey:
#
#   python-gitlab  compat/python-gitlab  the GitLab API client (pytest):
#                                        applications, users and tokens,
#                                        groups, members, group applications
#   python-gitlab-upstream               python-gitlab's own functional tests
#                                        for users and auth, from its release
#                                        (compat/python-gitlab-upstream)
#   authlib        compat/authlib        Authlib's OAuth 2 client (pytest)
#   social-auth    compat/social-auth    social-auth-core's GitLab backend
#                                        with its group support: sign-in,
#                                        the user's groups (pytest)
#   standalone     compat/standalone     servers of their own: one on
#                                        sqlite::memory: seeded from a state
#                                        file (python-gitlab with the seeded
#                                        token, Authlib's code flow as the
#                                        seeded user); one imported from a
#                                        GitLab database made in the
#                                        PostgreSQL at
#                                        LATCHKEY_TEST_POSTGRES_URL
#                                        (python-gitlab with a GitLab token,
#                                        Authlib with a GitLab secret and
#                                        password) (pytest)
#   openapi        compat/openapi        schemathesis against latchkey's own
#                                        OpenAPI document (/api/v4/openapi.json)
#                                        on a server of its own (sqlite::memory:,
#                                        rate limits off), as root: no 5xx, no
#                                        answer the document does not describe
#                                        (pytest running `st run`, bounded)
#   browser        compat/browser        Debian's headless Chromium through
#                                        every page and form as a person
#                                        would use them: sign-in and consent
#                                        (code exchanged, denied), home and
#                                        the nav bar, the user settings
#                                        (applications: create, secret shown
#                                        once, renew, delete, authorized
#                                        ones revoked; personal access
#                                        tokens: create, revoke; password:
#                                        change, other sessions end), the
#                                        profile, an HTML 404, the Admin Area
#                                        (users: search, filters;
#                                        applications: list, new, show,
#                                        delete; again on a server of its own
#                                        with Admin Mode on); each state
#                                        screenshotted at 1280 px and on a
#                                        390x844 phone (no sideways scroll),
#                                        checked with axe-core (no serious or
#                                        critical violation), for its
#                                        security headers and for console
#                                        errors and CSP violations
#                                        (playwright-core, axe-core,
#                                        node --test)
#   openid-client  compat/openid-client  panva's openid-client (npm): OIDC
#                                        code flow, userinfo, refresh, device
#                                        grant, dynamic registration
#                                        (node --test)
#   rust-rp        compat/rust-rp        a Rust relying party on the
#                                        openidconnect crate (a standalone
#                                        crate built here with cargo)
#
#   compat/run.sh [LATCHKEY_BIN]
#   LATCHKEY_COMPAT_ONLY=browser compat/run.sh [LATCHKEY_BIN]
#
# LATCHKEY_COMPAT_ONLY, a comma-separated list of the suite names above,
# runs only those suites (and builds or installs only what they need);
# unset or empty runs them all.
# LATCHKEY_BIN defaults to $LATCHKEY_BIN, else
# ${CARGO_TARGET_DIR:-target}/release/latchkey (relative to the repo root).
# Python packages go in <repo>/.venv, rebuilt when compat/requirements.txt
# changes; compat/browser/setup.sh installs chromium and node (apt) when
# missing and playwright-core (npm ci) when its lock file changes;
# compat/openid-client/setup.sh does the same for openid-client. The Rust
# relying party is built (cargo build --locked, debug) into
# $LATCHKEY_COMPAT_TARGET_DIR, else ${CARGO_TARGET_DIR:-target}/compat-rust-rp;
# a build failure fails that suite only. The server runs on a free loopback
# port with dynamic client registration on (LATCHKEY_DYNAMIC_REGISTRATION)
# and a fresh database in a temporary directory, both removed on exit.
# Every suite runs even when an earlier one fails; each one's summary is
# printed at the end, then the totals as `compat: N passed, N failed`.
# Exits non-zero if any suite failed.
# Screenshots go to $LATCHKEY_COMPAT_OUT/browser, else compat/browser/out.
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

# wanted NAME: is suite NAME selected by LATCHKEY_COMPAT_ONLY (default: all)?
all_suites=",python-gitlab,python-gitlab-upstream,authlib,social-auth,standalone,openapi,browser,openid-client,rust-rp,"
only="${LATCHKEY_COMPAT_ONLY:-}"
only=",${only// /},"
wanted() {
    [[ "$only" == ",," || "$only" == *",$1,"* ]]
}
for name in ${only//,/ }; do
    if [[ "$all_suites" != *",$name,"* ]]; then
        echo "compat: LATCHKEY_COMPAT_ONLY names no suite called $name" >&2
        exit 2
    fi
done

if wanted browser; then
    bash "$repo/compat/browser/setup.sh"
fi
if wanted openid-client; then
    bash "$repo/compat/openid-client/setup.sh"
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

# The Rust relying party, built before the server starts (a failed build is
# reported as the rust-rp suite's failure; the other suites still run).
rust_rp_target="${LATCHKEY_COMPAT_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/compat-rust-rp}"
case "$rust_rp_target" in
    /*) ;;
    *) rust_rp_target="$repo/$rust_rp_target" ;;
esac
rust_rp_bin="$rust_rp_target/debug/latchkey-compat-rust-rp"
rust_rp_built=""
if wanted rust-rp; then
    echo "compat: building compat/rust-rp into $rust_rp_target" >&2
    if ! command -v cargo >/dev/null; then
        echo "compat: cargo is not installed" >"$tmp/rust-rp-build.log"
    elif CARGO_TARGET_DIR="$rust_rp_target" cargo build --quiet --locked \
            --manifest-path "$repo/compat/rust-rp/Cargo.toml" >"$tmp/rust-rp-build.log" 2>&1; then
        rust_rp_built=1
    fi
fi
rust_rp() {
    if [[ -z "$rust_rp_built" ]]; then
        echo "compat: building compat/rust-rp failed:"
        cat "$tmp/rust-rp-build.log"
        return 1
    fi
    "$rust_rp_bin"
}

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
url="http://127.0.0.1:$port"
database_url="sqlite://$tmp/latchkey.db?mode=rwc"
root_token="$("$venv/bin/python" -c 'import secrets; print("glpat-" + secrets.token_urlsafe(24))')"

LATCHKEY_LISTEN="127.0.0.1:$port" \
LATCHKEY_DATABASE_URL="$database_url" \
LATCHKEY_EXTERNAL_URL="$url" \
LATCHKEY_ROOT_TOKEN="$root_token" \
LATCHKEY_DYNAMIC_REGISTRATION=true \
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

# run_suite NAME CMD...: run one suite; its output is also kept in
# $tmp/NAME.log and its exit status in $tmp/NAME.rc for the summary.
suites=()
failed_suites=()
run_suite() {
    local name="$1"
    shift
    wanted "$name" || return 0
    echo "== compat suite: $name"
    local rc=0
    "$@" 2>&1 | tee "$tmp/$name.log" || rc="${PIPESTATUS[0]}"
    echo "$rc" >"$tmp/$name.rc"
    suites+=("$name")
    if [[ $rc -ne 0 ]]; then
        failed_suites+=("$name")
    fi
}

run_suite python-gitlab "$venv/bin/python" -m pytest -q -p no:cacheprovider compat/python-gitlab
run_suite python-gitlab-upstream bash compat/python-gitlab-upstream/run.sh "$venv"
run_suite authlib "$venv/bin/python" -m pytest -q -p no:cacheprovider compat/authlib
run_suite social-auth "$venv/bin/python" -m pytest -q -p no:cacheprovider compat/social-auth
run_suite standalone "$venv/bin/python" -m pytest -q -p no:cacheprovider compat/standalone
run_suite openapi "$venv/bin/python" -m pytest -q -s -p no:cacheprovider compat/openapi
run_suite browser node --test --test-reporter=tap compat/browser/oauth_consent.test.mjs compat/browser/pages.test.mjs
run_suite openid-client node --test --test-reporter=tap compat/openid-client/openid_client.test.mjs
run_suite rust-rp rust_rp

if [[ ${#failed_suites[@]} -ne 0 ]]; then
    show_log
fi

# Each suite's summary, then the totals. A suite that failed without
# reporting a failed test (it crashed, or collected nothing) counts as one
# failure, so the totals never read green when a suite was not.
echo "== compat summary"
"$venv/bin/python" "$repo/compat/summary.py" "$tmp" "${suites[@]}"

if [[ ${#failed_suites[@]} -ne 0 ]]; then
    echo "compat: failed suites: ${failed_suites[*]}" >&2
    exit 1
fi
