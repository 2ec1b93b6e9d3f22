"""Compatibility suite: Authlib's OAuth 2 client against latchkey's provider.

compat/run.sh starts a server and sets LATCHKEY_URL (its base URL) and
LATCHKEY_TOKEN (root's personal access token, an administrator).

The client side is Authlib's `requests` integration (OAuth2Session), which
nobody here wrote: it builds the authorization URL (state, PKCE S256),
parses the redirect back (checking state), authenticates the client at the
token endpoint (HTTP Basic, client_secret_post or none for a public client)
and sends the Bearer token on API calls. The user's part in the browser,
signing in and answering the consent page, is played by a plain `requests`
session that posts the HTML forms as a browser would, never following the
final redirect to the client (https://client.example/cb need not exist).

Every test makes its own users and applications under unique names.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc6749.errors import MismatchingStateException

REDIRECT_URI = "https://client.example/cb"
PASSWORD = "correct horse battery"
TIMEOUT = 30


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through compat/run.sh", pytrace=False)
    return value


def unique(prefix: str) -> str:
    return f"compat-{prefix}-{secrets.token_hex(4)}"


# --- HTML forms, read the way a browser reads them ---------------------------


class _Forms(HTMLParser):
    """Every <form> on a page: its action, method, inputs and buttons."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self._button: dict[str, str] | None = None
        self.title = ""
        self._in_title = False
        self.h1 = ""
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                {"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                 "inputs": [], "buttons": []}
            )
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(a)
        elif tag == "button" and self.forms:
            self._button = {"name": a.get("name", ""), "value": a.get("value", ""),
                            "type": a.get("type", "submit"), "text": ""}
            self.forms[-1]["buttons"].append(self._button)
        elif tag == "title":
            self._in_title = True
        elif tag == "h1":
            self._in_h1 = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None
        elif tag == "title":
            self._in_title = False
        elif tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button["text"] += data
        if self._in_title:
            self.title += data
        if self._in_h1:
            self.h1 += data


def parse_page(html: str) -> _Forms:
    p = _Forms()
    p.feed(html)
    p.close()
    return p


def submit(form: dict[str, Any], *, button_text: str, fill: dict[str, str] | None = None
           ) -> dict[str, str]:
    """The fields a browser sends for `form` when the button labelled
    `button_text` is clicked, with `fill` typed into the named inputs."""
    data: dict[str, str] = {}
    for i in form["inputs"]:
        if i.get("name"):
            data[i["name"]] = i.get("value", "")
    missing = set(fill or {}) - set(data)
    assert not missing, f"the form has no inputs named {sorted(missing)}: {form}"
    data.update(fill or {})
    buttons = [b for b in form["buttons"] if b["text"].strip() == button_text]
    assert len(buttons) == 1, f"no single button {button_text!r} in {form['buttons']}"
    if buttons[0]["name"]:
        data[buttons[0]["name"]] = buttons[0]["value"]
    return data


def assert_page_headers(res: requests.Response) -> None:
    assert res.headers.get("X-Frame-Options") == "DENY", res.headers
    assert "no-store" in res.headers.get("Cache-Control", ""), res.headers
    csp = res.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, csp


class Browser:
    """A user's browser: keeps cookies, follows redirects only on the server."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, url: str) -> requests.Response:
        return self.http.get(urljoin(self.base, url), allow_redirects=False, timeout=TIMEOUT)

    def post(self, url: str, data: dict[str, str]) -> requests.Response:
        return self.http.post(urljoin(self.base, url), data=data, allow_redirects=False,
                              timeout=TIMEOUT)

    def on_server(self, location: str) -> bool:
        target = urlsplit(urljoin(self.base, location))
        return f"{target.scheme}://{target.netloc}" == self.base

    def authorize(self, authorization_url: str, *, username: str, app_name: str,
                  password: str = PASSWORD, decision: str = "Authorize",
                  scopes: list[str] | None = None) -> str:
        """Open `authorization_url` signed out, sign in, check the consent
        page names `app_name` (and `scopes`), answer it with `decision`
        ("Authorize" or "Deny"); return where the server then sends the
        browser (the client's redirect URI, not followed)."""
        res = self.get(authorization_url)
        assert res.status_code == 302, (res.status_code, res.text[:500])
        sign_in_url = res.headers["Location"]
        assert urlsplit(sign_in_url).path == "/users/sign_in", sign_in_url
        assert "return_to" in parse_qs(urlsplit(sign_in_url).query), sign_in_url

        res = self.get(sign_in_url)
        assert res.status_code == 200, (res.status_code, res.text[:500])
        assert_page_headers(res)
        page = parse_page(res.text)
        forms = [f for f in page.forms if f["action"] == "/users/sign_in"]
        assert len(forms) == 1, page.forms
        data = submit(forms[0], button_text="Sign in",
                      fill={"user[login]": username, "user[password]": password})
        assert data.get("authenticity_token"), data
        res = self.post(forms[0]["action"], data)
        assert res.status_code in (302, 303), (res.status_code, res.text[:500])

        # Back to /oauth/authorize, which now shows the consent page.
        location = res.headers["Location"]
        assert self.on_server(location), location
        assert urlsplit(urljoin(self.base, location)).path == "/oauth/authorize", location
        res = self.get(location)
        assert res.status_code == 200, (res.status_code, res.text[:500])
        assert_page_headers(res)
        page = parse_page(res.text)
        assert page.h1.strip() == f"Authorize {app_name} to use your account?", page.h1
        assert f"Authorize {app_name}" in page.title
        for scope in scopes or []:
            assert f"<strong>{scope}</strong>" in res.text, res.text
        forms = [f for f in page.forms if f["action"] == "/oauth/authorize"]
        assert len(forms) == 1, page.forms
        label = f"Authorize {app_name}" if decision == "Authorize" else decision
        res = self.post(forms[0]["action"], submit(forms[0], button_text=label))
        assert res.status_code in (302, 303), (res.status_code, res.text[:500])
        location = res.headers["Location"]
        assert location.startswith(REDIRECT_URI + "?"), location
        return location


# --- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="session")
def url() -> str:
    return env("LATCHKEY_URL").rstrip("/")


@pytest.fixture(scope="session")
def admin(url: str) -> requests.Session:
    s = requests.Session()
    s.headers["PRIVATE-TOKEN"] = env("LATCHKEY_TOKEN")
    return s


@pytest.fixture
def make_app(url: str, admin: requests.Session) -> Iterator[Callable[..., dict[str, Any]]]:
    created: list[int] = []

    def make(*, confidential: bool = True, scopes: str = "api read_user",
             trusted: bool = False) -> dict[str, Any]:
        res = admin.post(f"{url}/api/v4/applications", data={
            "name": unique("authlib"),
            "redirect_uri": REDIRECT_URI,
            "scopes": scopes,
            "confidential": "true" if confidential else "false",
        }, timeout=TIMEOUT)
        assert res.status_code == 201, res.text
        app = res.json()
        created.append(app["id"])
        assert app["confidential"] is confidential
        assert app["application_id"] and app["secret"]
        if trusted:
            res = admin.put(f"{url}/api/v4/applications/{app['id']}", data={"trusted": "true"},
                            timeout=TIMEOUT)
            assert res.status_code == 200, res.text
        return app

    yield make
    for app_id in created:
        res = admin.delete(f"{url}/api/v4/applications/{app_id}", timeout=TIMEOUT)
        assert res.status_code in (204, 404), res.text


@pytest.fixture
def user(url: str, admin: requests.Session) -> dict[str, Any]:
    username = unique("user")
    res = admin.post(f"{url}/api/v4/users", data={
        "username": username,
        "email": f"{username}@example.com",
        "name": username.title(),
        "password": PASSWORD,
    }, timeout=TIMEOUT)
    assert res.status_code == 201, res.text
    return res.json()


def check_token_response(resp: requests.Response) -> requests.Response:
    """RFC 6749 §5.1/§5.2: token responses are JSON and never cached."""
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    assert "no-store" in resp.headers.get("Cache-Control", ""), resp.headers
    assert resp.headers.get("Pragma") == "no-cache", resp.headers
    return resp


def client_for(app: dict[str, Any], **kwargs: Any) -> OAuth2Session:
    if app["confidential"]:
        client = OAuth2Session(app["application_id"], app["secret"], redirect_uri=REDIRECT_URI,
                               **kwargs)
    else:
        client = OAuth2Session(app["application_id"], None, redirect_uri=REDIRECT_URI,
                               token_endpoint_auth_method="none", **kwargs)
    client.register_compliance_hook("access_token_response", check_token_response)
    client.register_compliance_hook("refresh_token_response", check_token_response)
    return client


def code_flow(url: str, app: dict[str, Any], user: dict[str, Any], *, scope: str = "read_user",
              **kwargs: Any) -> tuple[OAuth2Session, dict[str, Any]]:
    """The authorization code flow with PKCE S256, end to end."""
    client = client_for(app, scope=scope, code_challenge_method="S256", **kwargs)
    verifier = generate_token(64)
    authorization_url, state = client.create_authorization_url(
        f"{url}/oauth/authorize", code_verifier=verifier
    )
    q = parse_qs(urlsplit(authorization_url).query)
    assert q["code_challenge_method"] == ["S256"] and q["state"] == [state]
    callback = Browser(url).authorize(authorization_url, username=user["username"],
                                      app_name=app["application_name"], scopes=scope.split())
    assert parse_qs(urlsplit(callback).query)["state"] == [state]
    token = client.fetch_token(f"{url}/oauth/token", authorization_response=callback,
                               state=state, code_verifier=verifier)
    return client, dict(token)


def assert_token_shape(token: dict[str, Any], *, scope: str, refresh: bool = True) -> None:
    assert token["token_type"] == "Bearer", token
    assert token["expires_in"] == 7200, token
    assert token["scope"] == scope, token
    assert isinstance(token["access_token"], str) and len(token["access_token"]) >= 32, token
    assert isinstance(token["created_at"], int), token
    assert abs(token["created_at"] - time.time()) < 120, token
    if refresh:
        assert isinstance(token["refresh_token"], str) and token["refresh_token"], token
        assert token["refresh_token"] != token["access_token"]
    else:
        assert "refresh_token" not in token, token


def api_user(url: str, access_token: str) -> requests.Response:
    return requests.get(f"{url}/api/v4/user", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=TIMEOUT)


# --- the authorization code flow ----------------------------------------------------


def test_code_flow_confidential_client_pkce(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client, token = code_flow(url, app, user, scope="read_user")
    assert_token_shape(token, scope="read_user")

    # The session sends the Bearer token; the token acts as the user.
    res = client.get(f"{url}/api/v4/user", timeout=TIMEOUT)
    assert res.status_code == 200, res.text
    me = res.json()
    assert me["id"] == user["id"]
    assert me["username"] == user["username"]
    assert me["email"] == user["email"]

    res = client.get(f"{url}/oauth/token/info", timeout=TIMEOUT)
    assert res.status_code == 200, res.text
    info = res.json()
    assert info["resource_owner_id"] == user["id"], info
    assert info["scope"] == ["read_user"], info
    assert info["application"]["uid"] == app["application_id"], info
    assert 7100 < info["expires_in"] <= 7200, info
    assert info["created_at"] == token["created_at"], info

    res = client.introspect_token(f"{url}/oauth/introspect", token=token["access_token"])
    assert res.status_code == 200, res.text
    intro = res.json()
    assert intro["active"] is True, intro
    assert intro["scope"] == "read_user", intro
    assert intro["client_id"] == app["application_id"], intro
    assert intro["token_type"] == "Bearer", intro
    assert intro["username"] == user["username"], intro
    assert intro["sub"] == str(user["id"]), intro
    assert intro["iat"] == token["created_at"], intro
    assert intro["exp"] == token["created_at"] + 7200, intro


def test_code_flow_public_client_pkce(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=False)
    client, token = code_flow(url, app, user, scope="api")
    assert_token_shape(token, scope="api")
    res = client.get(f"{url}/api/v4/user", timeout=TIMEOUT)
    assert res.status_code == 200, res.text
    assert res.json()["username"] == user["username"]

    # A public client refreshes with its client_id alone.
    new = dict(client.refresh_token(f"{url}/oauth/token"))
    assert_token_shape(new, scope="api")
    assert new["access_token"] != token["access_token"]
    assert new["refresh_token"] != token["refresh_token"]
    res = client.get(f"{url}/api/v4/user", timeout=TIMEOUT)
    assert res.status_code == 200, res.text


def test_code_flow_client_secret_post(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client, token = code_flow(url, app, user, scope="read_user api",
                              token_endpoint_auth_method="client_secret_post")
    assert_token_shape(token, scope="read_user api")
    res = client.get(f"{url}/api/v4/user", timeout=TIMEOUT)
    assert res.status_code == 200 and res.json()["id"] == user["id"], res.text


def test_code_flow_pkce_plain(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=False)
    client = client_for(app, scope="read_user")
    verifier = generate_token(48)
    authorization_url, state = client.create_authorization_url(
        f"{url}/oauth/authorize", code_challenge=verifier, code_challenge_method="plain"
    )
    callback = Browser(url).authorize(authorization_url, username=user["username"],
                                      app_name=app["application_name"])
    token = client.fetch_token(f"{url}/oauth/token", authorization_response=callback,
                               state=state, code_verifier=verifier)
    assert_token_shape(dict(token), scope="read_user")


def test_trusted_app_skips_consent(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=True, trusted=True)
    client = client_for(app, scope="read_user", code_challenge_method="S256")
    verifier = generate_token(64)
    authorization_url, state = client.create_authorization_url(
        f"{url}/oauth/authorize", code_verifier=verifier
    )
    browser = Browser(url)
    res = browser.get(authorization_url)
    assert res.status_code == 302
    page = parse_page(browser.get(res.headers["Location"]).text)
    form = next(f for f in page.forms if f["action"] == "/users/sign_in")
    res = browser.post(form["action"], submit(form, button_text="Sign in", fill={
        "user[login]": user["email"], "user[password]": PASSWORD}))  # sign in by email
    assert res.status_code in (302, 303), res.text
    res = browser.get(res.headers["Location"])
    assert res.status_code == 302, (res.status_code, res.text[:300])  # no consent page
    callback = res.headers["Location"]
    assert callback.startswith(REDIRECT_URI + "?"), callback
    token = client.fetch_token(f"{url}/oauth/token", authorization_response=callback,
                               state=state, code_verifier=verifier)
    assert api_user(url, token["access_token"]).json()["id"] == user["id"]


def test_deny_redirects_with_access_denied(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client = client_for(app, scope="read_user", code_challenge_method="S256")
    authorization_url, state = client.create_authorization_url(
        f"{url}/oauth/authorize", code_verifier=generate_token(64)
    )
    callback = Browser(url).authorize(authorization_url, username=user["username"],
                                      decision="Deny", app_name=app["application_name"])
    q = parse_qs(urlsplit(callback).query)
    assert q["error"] == ["access_denied"], q
    assert q["state"] == [state], q
    assert "code" not in q, q


def test_state_mismatch_is_caught_by_client(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client = client_for(app, scope="read_user", code_challenge_method="S256")
    verifier = generate_token(64)
    authorization_url, _state = client.create_authorization_url(
        f"{url}/oauth/authorize", code_verifier=verifier
    )
    callback = Browser(url).authorize(authorization_url, username=user["username"],
                                      app_name=app["application_name"])
    with pytest.raises(MismatchingStateException):
        client.fetch_token(f"{url}/oauth/token", authorization_response=callback,
                           state="not-the-state", code_verifier=verifier)


def test_wrong_code_verifier(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client = client_for(app, scope="read_user", code_challenge_method="S256")
    verifier = generate_token(64)
    authorization_url, state = client.create_authorization_url(
        f"{url}/oauth/authorize", code_verifier=verifier
    )
    callback = Browser(url).authorize(authorization_url, username=user["username"],
                                      app_name=app["application_name"])
    with pytest.raises(OAuthError) as exc:
        client.fetch_token(f"{url}/oauth/token", authorization_response=callback, state=state,
                           code_verifier=generate_token(64))
    assert exc.value.error == "invalid_grant"


def test_redirect_uri_must_match_at_token_endpoint(url: str, make_app: Any,
                                                   user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client = client_for(app, scope="read_user", code_challenge_method="S256")
    verifier = generate_token(64)
    authorization_url, state = client.create_authorization_url(
        f"{url}/oauth/authorize", code_verifier=verifier
    )
    callback = Browser(url).authorize(authorization_url, username=user["username"],
                                      app_name=app["application_name"])
    with pytest.raises(OAuthError) as exc:
        client.fetch_token(f"{url}/oauth/token", authorization_response=callback, state=state,
                           code_verifier=verifier, redirect_uri="https://client.example/other")
    assert exc.value.error == "invalid_grant"


def test_code_is_single_use(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client = client_for(app, scope="read_user", code_challenge_method="S256")
    verifier = generate_token(64)
    authorization_url, state = client.create_authorization_url(
        f"{url}/oauth/authorize", code_verifier=verifier
    )
    callback = Browser(url).authorize(authorization_url, username=user["username"],
                                      app_name=app["application_name"])
    token = client.fetch_token(f"{url}/oauth/token", authorization_response=callback,
                               state=state, code_verifier=verifier)
    assert api_user(url, token["access_token"]).status_code == 200
    with pytest.raises(OAuthError) as exc:
        client.fetch_token(f"{url}/oauth/token", authorization_response=callback, state=state,
                           code_verifier=verifier)
    assert exc.value.error == "invalid_grant"
    # RFC 6749 §4.1.2: a replayed code should revoke what it issued.
    assert api_user(url, token["access_token"]).status_code == 401


def test_public_client_requires_pkce(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=False)
    client = client_for(app, scope="read_user")  # no code_challenge_method: no PKCE
    authorization_url, state = client.create_authorization_url(f"{url}/oauth/authorize")
    assert "code_challenge" not in authorization_url
    res = requests.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    assert res.status_code == 302, (res.status_code, res.text[:300])
    location = res.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    q = parse_qs(urlsplit(location).query)
    assert q["error"] == ["invalid_request"], q
    assert q["state"] == [state], q


# --- refresh, revoke, introspect -------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_family(url: str, make_app: Any,
                                                 user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client, first = code_flow(url, app, user, scope="read_user")
    token_url = f"{url}/oauth/token"

    second = dict(client.refresh_token(token_url))
    assert_token_shape(second, scope="read_user")
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert client.token["refresh_token"] == second["refresh_token"]
    res = client.get(f"{url}/api/v4/user", timeout=TIMEOUT)
    assert res.status_code == 200 and res.json()["id"] == user["id"], res.text
    # Once the new access token is used, the one it replaced is gone.
    assert api_user(url, first["access_token"]).status_code == 401

    third = dict(client.refresh_token(token_url))
    assert_token_shape(third, scope="read_user")
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    assert len({first["access_token"], second["access_token"], third["access_token"]}) == 3

    # The first refresh token, already used, is refused ...
    with pytest.raises(OAuthError) as exc:
        client.refresh_token(token_url, refresh_token=first["refresh_token"])
    assert exc.value.error == "invalid_grant"
    # ... and its reuse revoked the whole family, the latest pair included.
    with pytest.raises(OAuthError) as exc:
        client.refresh_token(token_url, refresh_token=third["refresh_token"])
    assert exc.value.error == "invalid_grant"
    res = client.introspect_token(f"{url}/oauth/introspect", token=third["access_token"])
    assert res.status_code == 200 and res.json() == {"active": False}, res.text
    assert api_user(url, third["access_token"]).status_code == 401


def test_refresh_with_another_clients_credentials(url: str, make_app: Any,
                                                  user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    other = make_app(confidential=True)
    _client, token = code_flow(url, app, user)
    with pytest.raises(OAuthError) as exc:
        client_for(other).refresh_token(f"{url}/oauth/token",
                                        refresh_token=token["refresh_token"])
    assert exc.value.error == "invalid_grant"


def test_bad_client_secret(url: str, make_app: Any) -> None:
    app = make_app(confidential=True)
    client = OAuth2Session(app["application_id"], "gloas-" + "0" * 64, scope="read_user")
    with pytest.raises(OAuthError) as exc:
        client.fetch_token(f"{url}/oauth/token", grant_type="client_credentials")
    assert exc.value.error == "invalid_client"


def test_revoke_access_token(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client, token = code_flow(url, app, user, scope="read_user")
    assert client.get(f"{url}/api/v4/user", timeout=TIMEOUT).status_code == 200

    res = client.revoke_token(f"{url}/oauth/revoke", token=token["access_token"],
                              token_type_hint="access_token")
    assert res.status_code == 200, res.text
    assert res.json() == {}, res.text
    assert client.get(f"{url}/api/v4/user", timeout=TIMEOUT).status_code == 401
    res = client.introspect_token(f"{url}/oauth/introspect", token=token["access_token"])
    assert res.status_code == 200 and res.json() == {"active": False}, res.text

    # RFC 7009 §2.2: an invalid or unknown token is not an error.
    res = client.revoke_token(f"{url}/oauth/revoke", token="not-a-token")
    assert res.status_code == 200, res.text


def test_revoke_refresh_token(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=False)
    client, token = code_flow(url, app, user, scope="read_user")
    res = client.revoke_token(f"{url}/oauth/revoke", token=token["refresh_token"],
                              token_type_hint="refresh_token")
    assert res.status_code == 200, res.text
    with pytest.raises(OAuthError) as exc:
        client.refresh_token(f"{url}/oauth/token")
    assert exc.value.error == "invalid_grant"
    res = client.introspect_token(f"{url}/oauth/introspect", token=token["access_token"])
    assert res.status_code == 200 and res.json() == {"active": False}, res.text


def test_introspect(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client, token = code_flow(url, app, user, scope="api")
    res = client.introspect_token(f"{url}/oauth/introspect", token=token["refresh_token"],
                                  token_type_hint="refresh_token")
    assert res.status_code == 200, res.text
    assert res.json()["active"] is True, res.text
    res = client.introspect_token(f"{url}/oauth/introspect", token="garbage")
    assert res.status_code == 200 and res.json() == {"active": False}, res.text

    # Introspection needs client authentication (RFC 7662 §2.1).
    res = requests.post(f"{url}/oauth/introspect", data={"token": token["access_token"]},
                        timeout=TIMEOUT)
    assert res.status_code == 401, res.text
    assert res.json()["error"] == "invalid_client", res.text
    res = requests.post(f"{url}/oauth/introspect", data={"token": token["access_token"]},
                        auth=(app["application_id"], "gloas-" + "0" * 64), timeout=TIMEOUT)
    assert res.status_code == 401, res.text


# --- the other grants ----------------------------------------------------------------


def test_client_credentials(url: str, make_app: Any) -> None:
    app = make_app(confidential=True)
    client = OAuth2Session(app["application_id"], app["secret"], scope="read_user")
    token = dict(client.fetch_token(f"{url}/oauth/token", grant_type="client_credentials"))
    assert_token_shape(token, scope="read_user", refresh=False)

    res = client.introspect_token(f"{url}/oauth/introspect", token=token["access_token"])
    assert res.status_code == 200, res.text
    intro = res.json()
    assert intro["active"] is True, intro
    assert intro["client_id"] == app["application_id"], intro
    assert intro["scope"] == "read_user", intro
    assert intro.get("username") is None and intro.get("sub") is None, intro

    res = client.get(f"{url}/oauth/token/info", timeout=TIMEOUT)
    assert res.status_code == 200, res.text
    info = res.json()
    assert info["resource_owner_id"] is None, info
    assert info["scope"] == ["read_user"], info
    assert info["application"]["uid"] == app["application_id"], info

    # No user behind the token: /user has nobody to show.
    assert client.get(f"{url}/api/v4/user", timeout=TIMEOUT).status_code == 401

    # Basic auth is Authlib's default; client_secret_post works too.
    post = OAuth2Session(app["application_id"], app["secret"], scope="read_user",
                         token_endpoint_auth_method="client_secret_post")
    token2 = post.fetch_token(f"{url}/oauth/token", grant_type="client_credentials")
    assert token2["access_token"] != token["access_token"]


def test_client_credentials_refused_for_public_client(url: str, make_app: Any) -> None:
    app = make_app(confidential=False)
    client = OAuth2Session(app["application_id"], None, scope="read_user",
                           token_endpoint_auth_method="none")
    with pytest.raises(OAuthError) as exc:
        client.fetch_token(f"{url}/oauth/token", grant_type="client_credentials")
    assert exc.value.error in ("unauthorized_client", "invalid_client")


def test_client_credentials_scope_beyond_app(url: str, make_app: Any) -> None:
    app = make_app(confidential=True, scopes="read_user")
    client = OAuth2Session(app["application_id"], app["secret"], scope="api")
    with pytest.raises(OAuthError) as exc:
        client.fetch_token(f"{url}/oauth/token", grant_type="client_credentials")
    assert exc.value.error == "invalid_scope"


def test_password_grant(url: str, make_app: Any, user: dict[str, Any]) -> None:
    app = make_app(confidential=True)
    client = OAuth2Session(app["application_id"], app["secret"], scope="read_user")
    token = dict(client.fetch_token(f"{url}/oauth/token", username=user["username"],
                                    password=PASSWORD))
    assert_token_shape(token, scope="read_user")
    res = client.get(f"{url}/api/v4/user", timeout=TIMEOUT)
    assert res.status_code == 200 and res.json()["id"] == user["id"], res.text

    with pytest.raises(OAuthError) as exc:
        OAuth2Session(app["application_id"], app["secret"], scope="read_user").fetch_token(
            f"{url}/oauth/token", username=user["username"], password="wrong password")
    assert exc.value.error == "invalid_grant"


def test_token_endpoint_errors_are_rfc6749_json(url: str, make_app: Any) -> None:
    app = make_app(confidential=True)
    res = requests.post(f"{url}/oauth/token", data={"grant_type": "authorization_code",
                                                    "code": "nope", "redirect_uri": REDIRECT_URI},
                        auth=(app["application_id"], app["secret"]), timeout=TIMEOUT)
    assert res.status_code == 400, res.text
    assert res.headers["Content-Type"].startswith("application/json"), res.headers
    assert res.json()["error"] == "invalid_grant", res.text
    assert "no-store" in res.headers.get("Cache-Control", ""), res.headers

    res = requests.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(app["application_id"], "wrong"), timeout=TIMEOUT)
    assert res.status_code == 401, res.text
    assert res.json()["error"] == "invalid_client", res.text
    # RFC 6749 §5.2 asks for a WWW-Authenticate challenge when the client
    # used HTTP auth. (Its scheme is GitLab's `Bearer realm="Doorkeeper"`,
    # not the `Basic` the RFC names; clients ignore it, so only its presence
    # and error code are checked.)
    assert 'error="invalid_client"' in res.headers.get("WWW-Authenticate", ""), res.headers

    res = requests.post(f"{url}/oauth/token", data={"grant_type": "urn:example:nope"},
                        auth=(app["application_id"], app["secret"]), timeout=TIMEOUT)
    assert res.status_code == 400, res.text
    assert res.json()["error"] == "unsupported_grant_type", res.text


def test_s256_challenge_matches_rfc7636_appendix_b(url: str, make_app: Any,
                                                   user: dict[str, Any]) -> None:
    """The RFC 7636 Appendix B pair, computed by hand and sent raw."""
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    assert challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    app = make_app(confidential=False)
    client = client_for(app, scope="read_user")
    authorization_url, state = client.create_authorization_url(
        f"{url}/oauth/authorize", code_challenge=challenge, code_challenge_method="S256")
    callback = Browser(url).authorize(authorization_url, username=user["username"],
                                      app_name=app["application_name"])
    token = client.fetch_token(f"{url}/oauth/token", authorization_response=callback,
                               state=state, code_verifier=verifier)
    assert api_user(url, token["access_token"]).status_code == 200
