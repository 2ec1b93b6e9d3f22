"""Compatibility suite: a seeded, throw-away latchkey, as CI uses it.

compat/run.sh sets LATCHKEY_BIN. This test starts its own server with
`LATCHKEY_DATABASE_URL=sqlite::memory:` and `LATCHKEY_SEED` naming a state
file with a fixed user, token, group and OAuth client, then signs in with
python-gitlab (the personal access token from the file) and with Authlib's
OAuth 2 client (the authorization code flow with PKCE, as the seeded user,
whose password comes from the file). Nothing is left behind: the database
lives in the server's memory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import gitlab
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from standalone import latchkey_server

TOKEN = "glpat-seeded-compat-token-0001"
CLIENT_ID = "seeded-ci-client"
CLIENT_SECRET = "seeded-ci-client-secret-value"
PASSWORD = "seeded compat password"
REDIRECT_URI = "https://client.example/cb"
TIMEOUT = 30

SEED = f"""
[[users]]
username = "ci-user"
email = "ci-user@example.com"
name = "CI User"
password = "{PASSWORD}"
admin = true

[[users.tokens]]
name = "ci"
scopes = ["api", "read_user"]
token = "{TOKEN}"

[[groups]]
path = "ci-group"
name = "CI Group"
members = [{{ username = "ci-user", access_level = 50 }}]

[[applications]]
name = "Seeded client"
redirect_uris = ["{REDIRECT_URI}"]
scopes = ["read_user", "openid"]
trusted = true
application_id = "{CLIENT_ID}"
secret = "{CLIENT_SECRET}"
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        seed = os.path.join(tmp, "seed.toml")
        with open(seed, "w", encoding="utf-8") as f:
            f.write(SEED)
        with latchkey_server({"LATCHKEY_DATABASE_URL": "sqlite::memory:",
                              "LATCHKEY_SEED": seed}) as base:
            yield base


def test_python_gitlab_signs_in_with_the_seeded_token(url: str) -> None:
    gl = gitlab.Gitlab(url, private_token=TOKEN)
    gl.auth()
    assert gl.user is not None
    assert gl.user.username == "ci-user"
    assert gl.user.name == "CI User"
    groups = gl.groups.list(get_all=True)
    assert [g.full_path for g in groups] == ["ci-group"]
    members = gl.groups.get("ci-group").members.list(get_all=True)
    assert [(m.username, m.access_level) for m in members] == [("ci-user", 50)]
    apps = gl.applications.list(get_all=True)
    assert [a.application_id for a in apps] == [CLIENT_ID]


class _Forms(HTMLParser):
    """The page's forms: action and named inputs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def test_an_oauth_client_signs_the_seeded_user_in(url: str) -> None:
    client = OAuth2Session(CLIENT_ID, CLIENT_SECRET, redirect_uri=REDIRECT_URI,
                           scope="read_user openid", code_challenge_method="S256")
    verifier = generate_token(64)
    authorization_url, state = client.create_authorization_url(
        f"{url}/oauth/authorize", code_verifier=verifier
    )
    browser = requests.Session()
    res = browser.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    assert res.status_code == 302, res.text[:300]
    sign_in = urljoin(url, res.headers["Location"])
    res = browser.get(sign_in, allow_redirects=False, timeout=TIMEOUT)
    assert res.status_code == 200, res.text[:300]
    page = _Forms()
    page.feed(res.text)
    form = next(f for f in page.forms if f["action"] == "/users/sign_in")
    data = {**form["fields"], "user[login]": "ci-user", "user[password]": PASSWORD}
    res = browser.post(urljoin(url, form["action"]), data=data, allow_redirects=False,
                       timeout=TIMEOUT)
    assert res.status_code in (302, 303), res.text[:300]
    # The seeded client is trusted: no consent page, straight back to it.
    res = browser.get(urljoin(url, res.headers["Location"]), allow_redirects=False,
                      timeout=TIMEOUT)
    assert res.status_code == 302, res.text[:300]
    callback = res.headers["Location"]
    assert callback.startswith(REDIRECT_URI + "?"), callback
    assert parse_qs(urlsplit(callback).query)["state"] == [state]
    token = client.fetch_token(f"{url}/oauth/token", authorization_response=callback,
                               state=state, code_verifier=verifier)
    assert token["scope"] == "read_user openid"
    assert token.get("id_token"), token
    me = requests.get(f"{url}/api/v4/user",
                      headers={"Authorization": f"Bearer {token['access_token']}"},
                      timeout=TIMEOUT)
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "ci-user"
