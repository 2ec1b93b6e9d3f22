"""Compatibility suite: social-auth-core's GitLab backend against latchkey.

compat/run.sh starts a server and sets LATCHKEY_URL (its base URL) and
LATCHKEY_TOKEN (root's personal access token, an administrator).

The client is python-social-auth's own `social_core.backends.gitlab.
GitLabOAuth2` (social-auth-core, pinned in compat/requirements.txt) with
its group support on (SOCIAL_AUTH_GITLAB_GROUPS_ENABLED): it asks for
`read_api` besides `read_user`, reads the user with GET /api/v4/user, then
the user's groups with GET /api/v4/groups?all_available=false&
min_access_level=5&order_by=id&sort=asc&per_page=100, page after page, and
hands their full paths (or ids) to the application's pipeline. Nothing of
that is written here: the suite only supplies what a web framework would,
a strategy holding settings, the session and the request (no Django), and
a small pipeline that records whom it signed in. The user's part in the
browser (signing in, answering the consent page) is played by a plain
`requests` session posting the HTML forms; elsewhere the token comes from
the resource owner password grant.

Every test makes its own users, groups and applications under unique names
(through the API, as root) and deletes them afterwards.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

# python3-openid, which social-auth-core depends on, imports a deprecated
# defusedxml module; that is no concern of this suite.
warnings.filterwarnings("ignore", "defusedxml.cElementTree is deprecated", DeprecationWarning)

from social_core.backends.gitlab import GitLabOAuth2  # noqa: E402
from social_core.exceptions import AuthCredentialError, AuthProviderError  # noqa: E402
from social_core.storage import BaseStorage, NonceMixin  # noqa: E402
from social_core.strategy import BaseStrategy  # noqa: E402

PASSWORD = "correct horse battery staple"
REDIRECT_URI = "https://client.example/complete/gitlab/"
TIMEOUT = 30
GUEST, REPORTER, DEVELOPER, OWNER = 10, 20, 30, 50


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through compat/run.sh", pytrace=False)
    return value


def unique(prefix: str) -> str:
    return f"compat-{prefix}-{secrets.token_hex(4)}"


# --- what a web framework gives social-core ------------------------------------


class MemoryNonces(NonceMixin):
    """social-core's one-use values (it keeps each OAuth 2 state as one)."""

    live: set[tuple[str, int, str]] = set()

    @classmethod
    def use(cls, server_url: str, timestamp: Any, salt: str) -> bool:
        key = (server_url, int(timestamp), salt)
        if key in cls.live:
            return False
        cls.live.add(key)
        return True

    @classmethod
    def consume(cls, server_url: str, timestamp: int, salt: str) -> bool:
        key = (server_url, int(timestamp), salt)
        if key not in cls.live:
            return False
        cls.live.remove(key)
        return True


class MemoryStorage(BaseStorage):
    nonce = MemoryNonces


class Login:
    """The local account a real application would find or create."""

    def __init__(self, uid: str, details: dict[str, Any], response: dict[str, Any]) -> None:
        self.uid = uid
        self.details = details
        self.response = response


def sign_in(backend: Any, details: dict[str, Any], response: dict[str, Any], uid: str,
            *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A pipeline step standing in for social_user/create_user."""
    return {"user": Login(uid, details, response)}


# The pipeline: social-core's own steps around the stand-in above, ending
# with sync_groups, which hands the groups to the strategy.
PIPELINE = [
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_names",
    "social_core.pipeline.social_auth.social_uid",
    f"{__name__}.sign_in",
    "social_core.pipeline.user.sync_groups",
]


class DictStrategy(BaseStrategy):
    """Settings, session and request from plain dicts."""

    def __init__(self, settings: dict[str, Any], *, session: dict[str, Any] | None = None,
                 request: dict[str, Any] | None = None) -> None:
        super().__init__(storage=MemoryStorage)
        self.settings = settings
        self.session = {} if session is None else session
        self.request = dict(request or {})
        self.synced: list[tuple[Any, list[str] | None]] = []

    def get_setting(self, name: str) -> Any:
        return self.settings[name]  # KeyError: social-core uses its default

    def get_request_data(self, merge: bool = True) -> dict[str, Any]:
        return dict(self.request)

    def build_absolute_uri(self, path: str | None = None) -> str:
        return path or ""

    def session_get(self, name: str, default: Any = None) -> Any:
        return self.session.get(name, default)

    def session_set(self, name: str, value: Any) -> None:
        self.session[name] = value

    def session_pop(self, name: str) -> Any:
        return self.session.pop(name, None)

    def sync_user_groups(self, user: Any, groups: list[str] | None, **kwargs: Any) -> None:
        super().sync_user_groups(user, groups, **kwargs)
        self.synced.append((user, groups))


def backend_for(url: str, app: dict[str, Any] | None = None, *, groups: bool = True,
                session: dict[str, Any] | None = None, request: dict[str, Any] | None = None,
                **settings: Any) -> GitLabOAuth2:
    config: dict[str, Any] = {
        "SOCIAL_AUTH_GITLAB_API_URL": url,
        "SOCIAL_AUTH_GITLAB_GROUPS_ENABLED": groups,
        "SOCIAL_AUTH_PIPELINE": PIPELINE,
    }
    if app is not None:
        config["SOCIAL_AUTH_GITLAB_KEY"] = app["application_id"]
        config["SOCIAL_AUTH_GITLAB_SECRET"] = app["secret"]
    config.update({f"SOCIAL_AUTH_GITLAB_{k}": v for k, v in settings.items()})
    return GitLabOAuth2(DictStrategy(config, session=session, request=request), redirect_uri=REDIRECT_URI)


# --- the user's browser ----------------------------------------------------------


class _Forms(HTMLParser):
    """Every <form> on a page: its action, inputs and buttons."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self._button: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "inputs": [], "buttons": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(a)
        elif tag == "button" and self.forms:
            self._button = {"name": a.get("name", ""), "value": a.get("value", ""), "text": ""}
            self.forms[-1]["buttons"].append(self._button)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button["text"] += data


def form_on(html: str, action: str) -> dict[str, Any]:
    parser = _Forms()
    parser.feed(html)
    forms = [f for f in parser.forms if f["action"] == action]
    assert len(forms) == 1, parser.forms
    return forms[0]


def submit(form: dict[str, Any], button_text: str, fill: dict[str, str] | None = None) -> dict[str, str]:
    """What a browser posts for `form` when the button `button_text` is clicked."""
    data = {i["name"]: i.get("value", "") for i in form["inputs"] if i.get("name")}
    assert set(fill or {}) <= set(data), (fill, form)
    data.update(fill or {})
    buttons = [b for b in form["buttons"] if b["text"].strip() == button_text]
    assert len(buttons) == 1, form["buttons"]
    if buttons[0]["name"]:
        data[buttons[0]["name"]] = buttons[0]["value"]
    return data


def authorize_in_browser(url: str, authorization_url: str, *, username: str, app_name: str) -> str:
    """Open the authorization URL signed out, sign in, allow the application;
    return the redirect to the client (not followed)."""
    http = requests.Session()

    def get(target: str) -> requests.Response:
        return http.get(urljoin(url, target), allow_redirects=False, timeout=TIMEOUT)

    def post(target: str, data: dict[str, str]) -> requests.Response:
        return http.post(urljoin(url, target), data=data, allow_redirects=False, timeout=TIMEOUT)

    res = get(authorization_url)
    assert res.status_code == 302, (res.status_code, res.text[:500])
    res = get(res.headers["Location"])
    assert res.status_code == 200, (res.status_code, res.text[:500])
    form = form_on(res.text, "/users/sign_in")
    res = post(form["action"], submit(form, "Sign in", {"user[login]": username, "user[password]": PASSWORD}))
    assert res.status_code in (302, 303), (res.status_code, res.text[:500])
    res = get(res.headers["Location"])
    assert res.status_code == 200, (res.status_code, res.text[:500])
    for scope in ("read_user", "read_api"):
        assert f"<strong>{scope}</strong>" in res.text, res.text
    form = form_on(res.text, "/oauth/authorize")
    res = post(form["action"], submit(form, f"Authorize {app_name}"))
    assert res.status_code in (302, 303), (res.status_code, res.text[:500])
    location = res.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return location


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def url() -> str:
    return env("LATCHKEY_URL").rstrip("/")


@pytest.fixture(scope="session")
def admin(url: str) -> requests.Session:
    s = requests.Session()
    s.headers["PRIVATE-TOKEN"] = env("LATCHKEY_TOKEN")
    return s


def api(admin: requests.Session, method: str, url: str, route: str, expect: int,
        data: dict[str, Any] | None = None) -> Any:
    """One API call as root; its JSON body, after checking its status."""
    res = admin.request(method, f"{url}/api/v4{route}", data=data, timeout=TIMEOUT)
    assert res.status_code == expect, (method, route, res.status_code, res.text)
    return res.json() if res.content else None


@pytest.fixture
def make_user(url: str, admin: requests.Session) -> Iterator[Callable[[], dict[str, Any]]]:
    created: list[int] = []

    def make() -> dict[str, Any]:
        username = unique("sa")
        user = api(admin, "POST", url, "/users", 201, {
            "username": username, "email": f"{username}@example.com", "name": f"Social {username}",
            "password": PASSWORD,
        })
        created.append(user["id"])
        return user

    yield make
    for user_id in created:
        res = admin.delete(f"{url}/api/v4/users/{user_id}", timeout=TIMEOUT)
        assert res.status_code in (204, 404), res.text


@pytest.fixture
def make_group(url: str, admin: requests.Session) -> Iterator[Callable[..., dict[str, Any]]]:
    created: list[int] = []

    def make(prefix: str = "group", parent: dict[str, Any] | None = None) -> dict[str, Any]:
        path = unique(prefix)
        data: dict[str, Any] = {"name": path, "path": path}
        if parent is not None:
            data["parent_id"] = parent["id"]
        group = api(admin, "POST", url, "/groups", 201, data)
        created.append(group["id"])
        return group

    yield make
    for group_id in reversed(created):
        res = admin.delete(f"{url}/api/v4/groups/{group_id}", timeout=TIMEOUT)
        assert res.status_code in (202, 404), res.text


@pytest.fixture
def add_member(url: str, admin: requests.Session) -> Callable[[dict[str, Any], dict[str, Any], int], None]:
    def add(group: dict[str, Any], user: dict[str, Any], access_level: int) -> None:
        api(admin, "POST", url, f"/groups/{group['id']}/members", 201,
            {"user_id": user["id"], "access_level": access_level})

    return add


@pytest.fixture
def app(url: str, admin: requests.Session) -> Iterator[dict[str, Any]]:
    """An instance-wide OAuth application, as an administrator registers one
    for a site that signs its users in with GitLab and reads their groups."""
    made = api(admin, "POST", url, "/applications", 201, {
        "name": unique("social-auth"), "redirect_uri": REDIRECT_URI, "scopes": "read_user read_api",
    })
    yield made
    res = admin.delete(f"{url}/api/v4/applications/{made['id']}", timeout=TIMEOUT)
    assert res.status_code in (204, 404), res.text


def password_token(url: str, app: dict[str, Any], user: dict[str, Any], scope: str) -> dict[str, Any]:
    res = requests.post(f"{url}/oauth/token", data={
        "grant_type": "password", "username": user["username"], "password": PASSWORD, "scope": scope,
        "client_id": app["application_id"], "client_secret": app["secret"],
    }, timeout=TIMEOUT)
    assert res.status_code == 200, res.text
    token = res.json()
    assert token["scope"] == scope, token
    return token


@pytest.fixture
def memberships(make_user: Callable[[], dict[str, Any]], make_group: Callable[..., dict[str, Any]],
                add_member: Callable[..., None]) -> dict[str, Any]:
    """A user, and groups around them:

        org            (not a member)
        org/team       Developer
        org/team/sub   (below team: theirs too)
        solo           Guest
        other          (not a member)
    """
    user = make_user()
    org = make_group("org")
    team = make_group("team", org)
    sub = make_group("sub", team)
    solo = make_group("solo")
    other = make_group("other")
    add_member(team, user, DEVELOPER)
    add_member(solo, user, GUEST)
    return {"user": user, "org": org, "team": team, "sub": sub, "solo": solo, "other": other,
            "theirs": [team, sub, solo]}


# --- tests ------------------------------------------------------------------------------


def test_scope_and_authorization_url(url: str, app: dict[str, Any]) -> None:
    backend = backend_for(url, app)
    assert backend.get_scope() == ["read_user", "read_api"], "groups need read_api"
    assert backend_for(url, app, groups=False).get_scope() == ["read_user"]
    assert backend.authorization_url() == f"{url}/oauth/authorize"
    assert backend.access_token_url() == f"{url}/oauth/token"

    target = backend.auth_url()
    parts = urlsplit(target)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{url}/oauth/authorize"
    q = parse_qs(parts.query)
    assert q["client_id"] == [app["application_id"]]
    assert q["redirect_uri"] == [REDIRECT_URI]
    assert q["response_type"] == ["code"]
    assert q["scope"] == ["read_user read_api"]
    assert len(q["state"][0]) == 32

    # latchkey takes the request: it sends a signed-out browser to sign in.
    res = requests.get(target, allow_redirects=False, timeout=TIMEOUT)
    assert res.status_code == 302, res.text
    assert urlsplit(res.headers["Location"]).path == "/users/sign_in", res.headers["Location"]


def test_sign_in_with_groups_through_the_code_flow(url: str, app: dict[str, Any],
                                                   memberships: dict[str, Any]) -> None:
    user = memberships["user"]
    session: dict[str, Any] = {}
    start = backend_for(url, app, session=session)
    callback = authorize_in_browser(url, start.auth_url(), username=user["username"],
                                    app_name=app["application_name"])

    # The callback request: social-core checks the state against the
    # session, exchanges the code, reads the user and their groups, and
    # runs the pipeline.
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    complete = backend_for(url, app, session=session, request=query)
    login = complete.auth_complete()
    assert isinstance(login, Login)
    assert login.uid == str(user["id"])
    assert login.details["username"] == user["username"]
    assert login.details["email"] == user["email"]
    assert login.details["fullname"] == user["name"]

    want = [g["full_path"] for g in memberships["theirs"]]
    strategy = complete.strategy
    assert isinstance(strategy, DictStrategy)
    assert strategy.synced == [(login, want)], "sync_groups got the user's groups"
    # The token response and the user's data, as the pipeline saw them.
    assert login.response["scope"] == "read_user read_api"
    assert login.response["token_type"] == "Bearer"
    assert login.response["groups"] == want
    assert login.response["id"] == user["id"]


def test_user_data_groups_by_full_path_and_by_id(url: str, app: dict[str, Any], admin: requests.Session,
                                                 memberships: dict[str, Any],
                                                 make_group: Callable[..., dict[str, Any]],
                                                 add_member: Callable[..., None]) -> None:
    user = memberships["user"]
    token = password_token(url, app, user, "read_user read_api")["access_token"]

    backend = backend_for(url, app)
    data = backend.user_data(token)
    assert data["id"] == user["id"] and data["username"] == user["username"]
    want = [g["full_path"] for g in memberships["theirs"]]
    assert data["groups"] == want, "full paths, in id order; the parent org is not the user's"
    assert backend.get_user_groups(data) == want
    details = backend.get_user_details(data)
    assert (details["username"], details["email"], details["fullname"]) == (
        user["username"], user["email"], user["name"])

    by_id = backend_for(url, app, GROUPS_IDENTIFIER="id").user_data(token)
    assert by_id["groups"] == [str(g["id"]) for g in memberships["theirs"]]

    off = backend_for(url, app, groups=False)
    plain = off.user_data(token)
    assert plain["username"] == user["username"] and "groups" not in plain
    assert off.get_user_groups(plain) is None

    # Each sign-in reads the current memberships.
    joined = make_group("joined")
    add_member(joined, user, OWNER)
    api(admin, "DELETE", url, f"/groups/{memberships['solo']['id']}/members/{user['id']}", 204)
    assert backend.user_data(token)["groups"] == [
        memberships["team"]["full_path"], memberships["sub"]["full_path"], joined["full_path"]]


def test_user_without_groups(url: str, app: dict[str, Any], make_user: Callable[[], dict[str, Any]],
                             make_group: Callable[..., dict[str, Any]]) -> None:
    user = make_user()
    make_group("notmine")
    token = password_token(url, app, user, "read_user read_api")["access_token"]
    backend = backend_for(url, app)
    data = backend.user_data(token)
    assert data["groups"] == []
    assert backend.get_user_groups(data) == []


def test_groups_over_several_pages(url: str, app: dict[str, Any], make_user: Callable[[], dict[str, Any]],
                                   make_group: Callable[..., dict[str, Any]],
                                   add_member: Callable[..., None]) -> None:
    """More than social-core's page of 100: it follows X-Next-Page."""
    user = make_user()
    parent = make_group("many")
    children = [make_group(f"c{i:03d}", parent) for i in range(100)]
    add_member(parent, user, REPORTER)
    token = password_token(url, app, user, "read_user read_api")["access_token"]

    backend = backend_for(url, app)
    pages: list[Any] = []
    request = backend.request

    def recording(target: str, *args: Any, **kwargs: Any) -> Any:
        res = request(target, *args, **kwargs)
        if urlsplit(target).path == "/api/v4/groups":
            pages.append((kwargs["params"]["page"], len(res.json()), res.headers.get("X-Next-Page")))
        return res

    backend.request = recording  # type: ignore[method-assign]
    groups = backend.user_data(token)["groups"]
    assert pages == [(1, 100, "2"), (2, 1, "")]
    assert len(groups) == 101
    assert groups == [parent["full_path"]] + [c["full_path"] for c in children]


def test_read_user_token_cannot_read_groups(url: str, app: dict[str, Any],
                                            memberships: dict[str, Any]) -> None:
    """A token without read_api: GitLab refuses the groups (403
    insufficient_scope), and social-core fails the sign-in rather than
    letting a user in without their groups."""
    user = memberships["user"]
    token = password_token(url, app, user, "read_user")["access_token"]

    with pytest.raises(AuthProviderError) as info:
        backend_for(url, app).user_data(token)
    e = info.value
    assert e.status_code == 403
    assert e.code == "http_error"
    assert e.provider_code == "insufficient_scope"

    # The same token still signs in without groups.
    plain = backend_for(url, app, groups=False).user_data(token)
    assert plain["username"] == user["username"] and "groups" not in plain


def test_revoked_token_is_rejected(url: str, app: dict[str, Any], memberships: dict[str, Any]) -> None:
    user = memberships["user"]
    token = password_token(url, app, user, "read_user read_api")["access_token"]
    backend = backend_for(url, app)
    assert backend.user_data(token)["groups"]

    res = requests.post(f"{url}/oauth/revoke", data={"token": token},
                        auth=(app["application_id"], app["secret"]), timeout=TIMEOUT)
    assert res.status_code == 200, res.text
    with pytest.raises(AuthCredentialError) as info:
        backend.user_data(token)
    assert info.value.status_code == 401
