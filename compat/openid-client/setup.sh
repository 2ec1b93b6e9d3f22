#!/usr/bin/env bash
# Make the openid-client suite runnable on a fresh machine: Node.js and npm
# (Debian's) when missing, and openid-client from
# compat/openid-client/package-lock.json. Re-running is cheap: node_modules
# is reinstalled only when package-lock.json changes.
#
#   compat/openid-client/setup.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "compat/openid-client: installing nodejs and npm" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi

lock="$here/package-lock.json"
stamp="$here/node_modules/.compat-lock.sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [[ ! -f "$here/node_modules/openid-client/package.json" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "compat/openid-client: npm ci (openid-client)" >&2
    (
        cd "$here"
        npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    )
    echo "$want" >"$stamp"
fi
