#!/usr/bin/env bash
# Make the browser suite runnable on a fresh machine: Debian's Chromium,
# Node.js, and playwright-core and axe-core from
# compat/browser/package-lock.json.
# Playwright's own browser builds are never downloaded: the suite drives
# /usr/bin/chromium. Re-running is cheap: node_modules is reinstalled only
# when package-lock.json changes.
#
#   compat/browser/setup.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

apt_updated=""
apt_install() {
    if [[ -z "$apt_updated" ]]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if ! command -v chromium >/dev/null; then
    echo "compat/browser: installing Debian's chromium" >&2
    apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "compat/browser: installing nodejs and npm" >&2
    apt_install nodejs npm
fi

lock="$here/package-lock.json"
stamp="$here/node_modules/.compat-lock.sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [[ ! -f "$here/node_modules/playwright-core/package.json" || ! -f "$here/node_modules/axe-core/axe.min.js" \
        || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "compat/browser: npm ci (playwright-core, axe-core; no browser downloads)" >&2
    (
        cd "$here"
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    )
    echo "$want" >"$stamp"
fi
