#!/usr/bin/env bash
# python-gitlab's own functional tests for users, groups and for authenticating,
# taken unchanged from the python-gitlab release pinned in
# compat/requirements.txt (its source distribution, from PyPI, cached in
# <repo>/.venv/upstream) and run against the latchkey compat/run.sh started,
# with conftest.py here in place of upstream's Docker fixtures.
#
#   compat/python-gitlab-upstream/run.sh VENV
#
# Upstream tests of what latchkey does not have (bans, SSH and GPG keys,
# secondary emails, custom attributes, impersonation tokens, identities,
# projects, templates, settings, Sidekiq; for groups: sharing, LDAP, SAML,
# badges, labels, milestones, hooks, transfer, … and the catch-all
# test_groups, which shares groups and reads /users/:id/memberships and
# sudo) are deselected by name below;
# pytest reports them as deselected, never as passed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$1"
version="$(sed -n 's/^python-gitlab==//p' "$repo/compat/requirements.txt")"
cache="$repo/.venv/upstream"
sdist="$cache/python_gitlab-$version.tar.gz"
if [[ ! -f "$sdist" ]]; then
    mkdir -p "$cache"
    "$venv/bin/python" -m pip download -q --no-deps --no-binary :all: \
        "python-gitlab==$version" -d "$cache"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
top="python_gitlab-$version/tests/functional"
tar -xzf "$sdist" -C "$work" \
    "$top/api/test_users.py" "$top/api/test_gitlab.py" "$top/api/test_groups.py" \
    "$top/fixtures/avatar.png"
mkdir -p "$work/suite/fixtures"
cp "$work/$top/api/test_users.py" "$work/$top/api/test_gitlab.py" \
    "$work/$top/api/test_groups.py" "$work/suite/"
cp "$work/$top/fixtures/avatar.png" "$work/suite/fixtures/"
cp "$here/conftest.py" "$work/suite/"

applicable="test_create_user or test_block_user or test_delete_user"
applicable+=" or test_user_projects_list or test_user_events_list or test_user_bio"
applicable+=" or test_list_multiple_users"
applicable+=" or test_auth_from_config or test_no_custom_session or test_custom_session"
applicable+=" or test_group_avatar_upload or test_group_avatar_remove"
cd "$work/suite"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -k "$applicable" -rA .
