"""Compatibility suite: schemathesis against latchkey's own OpenAPI document.

compat/run.sh sets LATCHKEY_BIN. This test starts a latchkey of its own
(`sqlite::memory:`, so schemathesis's random writes and deletions touch no
other suite), seeded with a user, a group and three applications for the
generated requests to find (and, at start, gets an OAuth token of the
seeded user and two dynamic registrations for the operations that take a
Bearer token), with the rate limits off, and runs
`schemathesis run` against `/api/v4/openapi.json`, authenticated as root
with `PRIVATE-TOKEN`. It passes when schemathesis finds no 5xx, no
answer that the document does not describe (status code, content type,
headers, body schema), and no operation that answers without the
credentials the document says it needs.

Bounded: `--max-examples` (LATCHKEY_SCHEMATHESIS_EXAMPLES, default 20) a
test phase and operation, one worker, a fixed seed
(LATCHKEY_SCHEMATHESIS_SEED) so that CI is reproducible, and a wall-time
limit (LATCHKEY_SCHEMATHESIS_TIMEOUT, default 300 s).
LATCHKEY_SCHEMATHESIS_CHECKS replaces the list of checks.

Left out, because they would end the run rather than test anything: the
operations that can take root's own access away when schemathesis happens
to pick root's id (1) or its token's: deleting and blocking a user,
revoking and rotating a personal access token (`GET` of a token stays in).
Their handlers are covered by the HTTP suite and python-gitlab.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from standalone import latchkey_server

ROOT_TOKEN = "glpat-openapi-root-token-0001"
USER_TOKEN = "glpat-openapi-user-token-0001"

SEED = f"""
[[users]]
username = "fuzz-user"
email = "fuzz-user@example.com"
name = "Fuzz User"
password = "fuzz user password 0001"

[[users.tokens]]
name = "fuzz"
scopes = ["api", "read_user", "openid"]
token = "{USER_TOKEN}"

[[groups]]
path = "fuzz-group"
name = "Fuzz Group"
members = [{{ username = "fuzz-user", access_level = 50 }}]

[[applications]]
name = "Fuzz client"
redirect_uris = ["https://client.example/cb"]
scopes = ["read_user", "openid"]
application_id = "fuzz-client"
secret = "fuzz-client-secret-value-0001"

[[applications]]
name = "Fuzz user's client"
redirect_uris = ["https://client.example/user"]
scopes = ["read_user"]
owner = "fuzz-user"

[[applications]]
name = "Fuzz group's client"
redirect_uris = ["https://client.example/group"]
scopes = ["read_user"]
group = "fuzz-group"
"""

# Operation ids are the method and the path (see `openapi::Conventions`).
EXCLUDED = [
    "delete_api_v4_users__id_",
    "post_api_v4_users__id__block",
    "delete_api_v4_personal_access_tokens__id_",
    "post_api_v4_personal_access_tokens__id__rotate",
]

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",
])


def schemathesis() -> str:
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.fail(f"schemathesis is not installed beside {sys.executable}", pytrace=False)
    return str(st)


def config(base: str) -> str:
    """schemathesis.toml: the path parameters take the seeded user's,
    group's and applications' ids half of the time (else whatever
    schemathesis makes up), so that the operations get past their 404."""
    auth = {"PRIVATE-TOKEN": ROOT_TOKEN}

    def get(path: str) -> list[dict]:
        res = requests.get(f"{base}/api/v4{path}", headers=auth, timeout=30)
        res.raise_for_status()
        return res.json()

    user = get("/users?username=fuzz-user")[0]["id"]
    group = get("/groups?search=fuzz-group")[0]["id"]
    apps = [a["id"] for a in get("/applications")]
    apps += [a["id"] for a in get(f"/groups/{group}/applications")]
    res = requests.get(f"{base}/api/v4/user/applications",
                       headers={"PRIVATE-TOKEN": USER_TOKEN}, timeout=30)
    res.raise_for_status()
    apps += [a["id"] for a in res.json()]

    # An OAuth access token of the seeded user (openid: for UserInfo), and
    # a dynamically registered client's registration access token, for
    # the operations that take a Bearer token rather than PRIVATE-TOKEN.
    res = requests.post(f"{base}/oauth/token", timeout=30, data={
        "grant_type": "password", "username": "fuzz-user", "password": "fuzz user password 0001",
        "scope": "openid read_user", "client_id": "fuzz-client",
        "client_secret": "fuzz-client-secret-value-0001"})
    res.raise_for_status()
    access_token = res.json()["access_token"]

    def register(name: str) -> dict:
        res = requests.post(f"{base}/oauth/register", timeout=30, json={
            "client_name": name, "redirect_uris": ["https://client.example/reg"]})
        res.raise_for_status()
        return res.json()

    # One to read and change, one for DELETE to delete.
    registered, doomed = register("fuzz registration"), register("fuzz doomed registration")

    def binding(dictionary: str) -> str:
        return f'{{ dictionary = "{dictionary}", probability = 0.5 }}'

    return f"""
[dictionaries.users]
values = [{user}]

[dictionaries.groups]
values = ["{group}", "fuzz-group"]

[dictionaries.applications]
values = {sorted(set(apps))}

[dictionaries.secrets]
values = [1, 2, 3]

[dictionaries.clients]
values = ["{registered["client_id"]}"]

[dictionaries.doomed-clients]
values = ["{doomed["client_id"]}"]

[[operations]]
include-path-regex = "^/api/v4/users/"
parameters = {{ "path.id" = {binding("users")} }}

[[operations]]
include-path-regex = "^/api/v4/groups/"
parameters = {{ "path.id" = {binding("groups")}, "path.user_id" = {binding("users")}, "path.application_id" = {binding("applications")}, "path.secret_id" = {binding("secrets")} }}

[[operations]]
include-path-regex = "^/api/v4/(user/)?applications/"
parameters = {{ "path.id" = {binding("applications")}, "path.secret_id" = {binding("secrets")} }}

[[operations]]
include-operation-id-regex = "^(get|put)_oauth_register__client_id_$"
parameters = {{ "path.client_id" = {binding("clients")} }}
headers = {{ Authorization = "Bearer {registered["registration_access_token"]}" }}

[[operations]]
include-operation-id = "delete_oauth_register__client_id_"
parameters = {{ "path.client_id" = {binding("doomed-clients")} }}
headers = {{ Authorization = "Bearer {doomed["registration_access_token"]}" }}

[[operations]]
include-path-regex = "^/oauth/(userinfo|token/info|introspect)$"
headers = {{ Authorization = "Bearer {access_token}" }}
"""


def test_schemathesis_finds_nothing() -> None:
    examples = os.environ.get("LATCHKEY_SCHEMATHESIS_EXAMPLES", "20")
    seed = os.environ.get("LATCHKEY_SCHEMATHESIS_SEED", "20261202")
    timeout = int(os.environ.get("LATCHKEY_SCHEMATHESIS_TIMEOUT", "300"))
    with tempfile.TemporaryDirectory() as tmp:
        seed_file = Path(tmp) / "seed.toml"
        seed_file.write_text(SEED, encoding="utf-8")
        env = {
            "LATCHKEY_DATABASE_URL": "sqlite::memory:",
            "LATCHKEY_SEED": str(seed_file),
            "LATCHKEY_ROOT_TOKEN": ROOT_TOKEN,
            "LATCHKEY_DYNAMIC_REGISTRATION": "true",
            "LATCHKEY_RATE_LIMIT_UNAUTHENTICATED": "0",
            "LATCHKEY_RATE_LIMIT_TOKEN": "0",
            "LATCHKEY_RATE_LIMIT_API": "0",
        }
        with latchkey_server(env) as base:
            config_file = Path(tmp) / "schemathesis.toml"
            config_file.write_text(config(base), encoding="utf-8")
            print(config_file.read_text(encoding="utf-8"))
            command = [
                schemathesis(), "--config-file", str(config_file), "run", f"{base}/api/v4/openapi.json",
                "--url", base,
                "--header", f"PRIVATE-TOKEN: {ROOT_TOKEN}",
                "--checks", os.environ.get("LATCHKEY_SCHEMATHESIS_CHECKS", CHECKS),
                "--max-examples", examples,
                "--seed", seed,
                "--workers", "1",
                "--request-timeout", "10",
                "--generation-database", "none",
                "--no-shrink",
                "--no-color",
            ]
            for operation_id in EXCLUDED:
                command += ["--exclude-operation-id", operation_id]
            print("$", " ".join(command), flush=True)
            try:
                done = subprocess.run(command, cwd=tmp, timeout=timeout, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            except subprocess.TimeoutExpired as e:
                print(e.stdout or "")
                pytest.fail(f"schemathesis did not finish within {timeout} s", pytrace=False)
            print(done.stdout)
            assert done.returncode == 0, "schemathesis found failures (see its report above)"
