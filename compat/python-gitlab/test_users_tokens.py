"""Compatibility suite, part two: users, personal access tokens and the
caller's own applications, driven with the real python-gitlab client.

compat/run.sh starts a server and sets LATCHKEY_URL and LATCHKEY_TOKEN (root,
an administrator). Every user, token and application here is made through
the API itself (never the CLI), under unique names; each test's users are
deleted afterwards, which takes their tokens and applications with them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import gitlab
import gitlab.exceptions as glexc
import pytest
import requests
from gitlab.v4.objects import PersonalAccessToken, User, UserPersonalAccessToken

# As in test_applications.py: any UserWarning from python-gitlab (links to
# another base URL, a list cut short) is a failure unless a test expects it.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

PASSWORD = "correct horse battery staple"
REDIRECT_URI = "https://client.example/oauth/callback"
# Within the server's longest token lifetime (365 days by default).
FAR_FUTURE = (dt.date.today() + dt.timedelta(days=300)).isoformat()
LATER = (dt.date.today() + dt.timedelta(days=200)).isoformat()
SOONER = (dt.date.today() + dt.timedelta(days=100)).isoformat()
UNKNOWN_ID = 2_000_000_000
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
SECRET = re.compile(r"^gloas-[0-9a-f]{64}$")
BLOCKED = "403 Forbidden - Your account has been blocked."
APP_ATTRS = {"id", "application_id", "application_name", "callback_url", "confidential", "scopes"}
TOKEN_ATTRS = {"id", "name", "revoked", "created_at", "scopes", "user_id", "active", "expires_at"}


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through compat/run.sh", pytrace=False)
    return value


def unique(prefix: str) -> str:
    return f"compat-{prefix}-{secrets.token_hex(4)}"


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


# --- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="session")
def url() -> str:
    return env("LATCHKEY_URL").rstrip("/")


@pytest.fixture(scope="session")
def gl(url: str) -> gitlab.Gitlab:
    return gitlab.Gitlab(url, private_token=env("LATCHKEY_TOKEN"))


@pytest.fixture
def make_user(gl: gitlab.Gitlab) -> Iterator[Callable[..., User]]:
    """Create users through POST /users (as root); delete them afterwards."""
    created: list[int] = []

    def make(prefix: str = "user", **overrides: Any) -> User:
        username = unique(prefix)
        data: dict[str, Any] = {
            "username": username,
            "email": f"{username}@example.com",
            "name": f"Compat {username}",
            "password": PASSWORD,
        }
        data.update(overrides)
        data = {k: v for k, v in data.items() if v is not None}
        user = gl.users.create(data)
        created.append(user.id)
        return user

    yield make
    for user_id in created:
        try:
            gl.users.delete(user_id)
        except glexc.GitlabDeleteError as e:
            if e.response_code != 404:
                raise


def make_token(user: User, *, scopes: tuple[str, ...] = ("api",), name: str | None = None,
               expires_at: str | None = FAR_FUTURE) -> UserPersonalAccessToken:
    """A personal access token for `user`, made by root through the API."""
    data: dict[str, Any] = {"name": name or unique("token"), "scopes": list(scopes)}
    if expires_at is not None:
        data["expires_at"] = expires_at
    return user.personal_access_tokens.create(data)


@pytest.fixture
def make_client(url: str, make_user: Callable[..., User]) -> Callable[..., tuple[User, UserPersonalAccessToken, gitlab.Gitlab]]:
    """A new user, a token for them, and a python-gitlab client using it."""

    def make(prefix: str = "client", *, admin: bool = False,
             scopes: tuple[str, ...] = ("api",)) -> tuple[User, UserPersonalAccessToken, gitlab.Gitlab]:
        user = make_user(prefix, admin=admin)
        token = make_token(user, scopes=scopes)
        return user, token, gitlab.Gitlab(url, private_token=token.token)

    return make


def new_app(client: gitlab.Gitlab, prefix: str = "uapp", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": unique(prefix), "redirect_uri": REDIRECT_URI, "scopes": "api"}
    data.update(overrides)
    app = client.http_post("/user/applications", post_data=data)
    assert isinstance(app, dict), app
    return app


def raw_get(client: gitlab.Gitlab, path: str, **query: Any) -> requests.Response:
    """A GET through python-gitlab's HTTP layer, returning the response itself."""
    return client.http_request("get", path, query_data=query)


def link_query(resp: requests.Response, rel: str) -> dict[str, list[str]]:
    """The query of the response's Link rel=`rel`, after checking its base."""
    target = resp.links[rel]["url"]
    parts = urlsplit(target)
    base = urlsplit(resp.url)
    assert (parts.scheme, parts.netloc, parts.path) == (base.scheme, base.netloc, base.path), target
    return parse_qs(parts.query)


def assert_rejected_401(client: gitlab.Gitlab) -> None:
    with pytest.raises(glexc.GitlabAuthenticationError) as info:
        client.auth()
    assert info.value.response_code == 401
    with pytest.raises(glexc.GitlabAuthenticationError) as info:
        client.http_get("/user/applications")
    assert info.value.response_code == 401


# --- users: create ---------------------------------------------------------------


def test_create_user_returns_user_entity(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    username = unique("create")
    user = make_user("create", username=username, email=f"{username}@example.com", name="Ada Lovelace")

    assert isinstance(user, User)
    assert isinstance(user.id, int) and user.id > 0
    assert user.username == username
    assert user.name == "Ada Lovelace"
    assert user.email == f"{username}@example.com"
    assert user.state == "active"
    assert user.is_admin is False
    assert user.web_url == f"{url}/{username}"
    assert TIMESTAMP.match(user.created_at), user.created_at
    assert {"id", "username", "name", "state", "email", "is_admin", "web_url", "created_at"} <= set(user.attributes)
    assert "password" not in user.attributes
    assert PASSWORD not in repr(user.attributes)

    fetched = gl.users.get(user.id)
    assert isinstance(fetched, User)
    for key in ("id", "username", "name", "email", "state", "is_admin", "web_url", "created_at"):
        assert fetched.attributes[key] == user.attributes[key], key


def test_create_admin_user(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    admin = make_user("newadmin", admin=True)
    assert admin.is_admin is True
    assert gl.users.get(admin.id).is_admin is True

    admin_gl = gitlab.Gitlab(url, private_token=make_token(admin).token)
    admin_gl.auth()
    assert admin_gl.user.username == admin.username
    assert admin_gl.user.is_admin is True
    # ... and may use the admin-only APIs.
    assert isinstance(admin_gl.applications.list(get_all=True), list)
    assert admin.id in {u.id for u in admin_gl.users.list(get_all=True)}


@pytest.mark.parametrize("flag", ["reset_password", "force_random_password"])
def test_create_user_without_a_password(gl: gitlab.Gitlab, make_user: Callable[..., User], flag: str) -> None:
    user = make_user("nopass", password=None, **{flag: True})
    assert user.state == "active"
    assert gl.users.get(user.id).username == user.username


def test_create_user_needs_some_password_option(gl: gitlab.Gitlab) -> None:
    username = unique("nopw")
    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.users.create({"username": username, "email": f"{username}@example.com", "name": username})
    assert info.value.response_code == 400
    assert info.value.error_message == (
        "password, reset_password, force_random_password are missing, at least one parameter must be provided"
    )
    assert gl.users.list(username=username) == []


def test_create_user_short_password_is_400(gl: gitlab.Gitlab) -> None:
    username = unique("shortpw")
    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.users.create({"username": username, "email": f"{username}@example.com", "name": username, "password": "short"})
    assert info.value.response_code == 400
    assert info.value.error_message == {"password": ["is too short (minimum is 8 characters)"]}
    assert gl.users.list(username=username) == []


def test_create_duplicate_username_is_409(gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    taken = make_user("dupname")
    other = unique("dupname")
    for username in (taken.username, taken.username.upper()):
        with pytest.raises(glexc.GitlabCreateError) as info:
            gl.users.create({"username": username, "email": f"{other}@example.com", "name": other, "password": PASSWORD})
        assert info.value.response_code == 409
        assert info.value.error_message == "Username has already been taken"
    assert [u.id for u in gl.users.list(username=taken.username)] == [taken.id]
    assert gl.users.list(search=f"{other}@example.com") == []


def test_create_duplicate_email_is_409(gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    taken = make_user("dupmail")
    username = unique("dupmail")
    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.users.create({"username": username, "email": taken.email, "name": username, "password": PASSWORD})
    assert info.value.response_code == 409
    assert info.value.error_message == "Email has already been taken"
    assert gl.users.list(username=username) == []


def test_non_admin_cannot_manage_users(gl: gitlab.Gitlab, make_client: Callable[..., Any],
                                       make_user: Callable[..., User]) -> None:
    _, _, user_gl = make_client("plain")
    victim = make_user("victim")
    username = unique("forbidden")

    with pytest.raises(glexc.GitlabCreateError) as info:
        user_gl.users.create({"username": username, "email": f"{username}@example.com", "name": username, "password": PASSWORD})
    assert info.value.response_code == 403
    assert info.value.error_message == "403 Forbidden"

    with pytest.raises(glexc.GitlabUpdateError) as info:
        user_gl.users.update(victim.id, {"name": "Hijacked"})
    assert info.value.response_code == 403
    with pytest.raises(glexc.GitlabBlockError) as info:
        user_gl.users.get(victim.id, lazy=True).block()
    assert info.value.response_code == 403
    with pytest.raises(glexc.GitlabDeleteError) as info:
        user_gl.users.delete(victim.id)
    assert info.value.response_code == 403
    with pytest.raises(glexc.GitlabCreateError) as info:
        user_gl.users.get(victim.id, lazy=True).personal_access_tokens.create({"name": "x", "scopes": ["api"]})
    assert info.value.response_code == 403

    after = gl.users.get(victim.id)
    assert (after.name, after.state) == (victim.name, "active")
    assert gl.users.list(username=username) == []


# --- users: read ---------------------------------------------------------------


def test_get_unknown_user_is_404(gl: gitlab.Gitlab) -> None:
    with pytest.raises(glexc.GitlabGetError) as info:
        gl.users.get(UNKNOWN_ID)
    assert info.value.response_code == 404
    assert info.value.error_message == "404 User Not Found"


def test_list_users_by_username(gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("byname")
    make_user("byname")
    found = gl.users.list(username=user.username)
    assert [u.id for u in found] == [user.id]
    assert all(isinstance(u, User) for u in found)
    assert found[0].email == user.email
    assert found[0].is_admin is False
    # GitLab matches the username filter case-insensitively.
    assert [u.id for u in gl.users.list(username=user.username.upper())] == [user.id]
    assert gl.users.list(username=unique("nobody")) == []
    assert [u.username for u in gl.users.list(username="root")] == ["root"]


def test_list_users_search(gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    marker = f"m{secrets.token_hex(5)}"
    by_username = make_user("search", username=f"compat-{marker}-u")
    by_name = make_user("search", name=f"Searchable {marker} Person")
    by_email = make_user("search", email=f"{marker}.someone@example.com")
    bystander = make_user("search")

    found = {u.id for u in gl.users.list(search=marker, get_all=True)}
    assert found == {by_username.id, by_name.id, by_email.id}
    assert bystander.id not in found
    assert {u.id for u in gl.users.list(search=f"Searchable {marker}", get_all=True)} == {by_name.id}
    assert gl.users.list(search=f"no-such-{marker}", get_all=True) == []


def test_list_users_is_paginated(gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    made = {make_user("paged").id for _ in range(3)}
    everything = [u.id for u in gl.users.list(get_all=True)]
    assert made <= set(everything)
    assert len(everything) == len(set(everything))

    it = gl.users.list(iterator=True, per_page=2)
    assert it.per_page == 2
    assert it.total == len(everything)
    assert it.total_pages == (len(everything) + 1) // 2
    assert [u.id for u in it] == everything

    assert [u.id for u in gl.users.list(get_all=True, per_page=1)] == everything
    assert [u.id for u in gl.users.list(page=2, per_page=2)] == everything[2:4]


def test_non_admin_sees_basic_users(url: str, gl: gitlab.Gitlab, make_client: Callable[..., Any],
                                    make_user: Callable[..., User]) -> None:
    me, _, user_gl = make_client("basic")
    other = make_user("basic")

    listed = user_gl.users.list(username=other.username)
    assert [u.id for u in listed] == [other.id]
    basic = listed[0].attributes
    assert basic["username"] == other.username
    assert basic["name"] == other.name
    assert basic["state"] == "active"
    assert basic["web_url"] == f"{url}/{other.username}"
    assert "email" not in basic
    assert "is_admin" not in basic

    everyone = user_gl.users.list(get_all=True)
    assert {me.id, other.id} <= {u.id for u in everyone}
    assert all("email" not in u.attributes for u in everyone)

    one = user_gl.users.get(other.id).attributes
    assert one["username"] == other.username
    assert "email" not in one

    # As GitLab: GET /users/:id is the public profile, for oneself too; the
    # full entity, with the email, is the current user's (GET /user).
    mine = user_gl.users.get(me.id)
    assert mine.username == me.username
    assert "email" not in mine.attributes
    user_gl.auth()
    assert user_gl.user.email == me.email
    assert user_gl.user.username == me.username


# --- users: update ---------------------------------------------------------------


def test_update_user_with_save(gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("update")
    user_id, created_at = user.id, user.created_at
    new_username = unique("renamed")

    user.name = "Grace Hopper"
    user.save()
    assert user.name == "Grace Hopper"
    assert gl.users.get(user_id).name == "Grace Hopper"

    user.username = new_username
    user.email = f"{new_username}@example.org"
    user.save()
    assert user.id == user_id
    assert user.username == new_username
    assert user.email == f"{new_username}@example.org"

    fetched = gl.users.get(user_id)
    assert (fetched.name, fetched.username, fetched.email) == ("Grace Hopper", new_username, f"{new_username}@example.org")
    assert fetched.created_at == created_at
    assert fetched.is_admin is False
    assert [u.id for u in gl.users.list(username=new_username)] == [user_id]

    updated = gl.users.update(user_id, {"password": "another long passphrase"})
    assert updated["id"] == user_id
    assert "password" not in updated


def test_update_user_admin_flag(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("promote")
    user_gl = gitlab.Gitlab(url, private_token=make_token(user).token)
    with pytest.raises(glexc.GitlabListError) as info:
        user_gl.applications.list(get_all=True)
    assert info.value.response_code == 403

    user.admin = True
    user.save()
    assert user.is_admin is True
    assert isinstance(user_gl.applications.list(get_all=True), list)

    user.admin = False
    user.save()
    assert user.is_admin is False
    assert gl.users.get(user.id).is_admin is False
    with pytest.raises(glexc.GitlabListError) as info:
        user_gl.applications.list(get_all=True)
    assert info.value.response_code == 403


def test_update_user_errors(gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("upderr")
    other = make_user("upderr")

    with pytest.raises(glexc.GitlabUpdateError) as info:
        gl.users.update(user.id, {"password": "short"})
    assert info.value.response_code == 400
    assert info.value.error_message == {"password": ["is too short (minimum is 8 characters)"]}

    with pytest.raises(glexc.GitlabUpdateError) as info:
        gl.users.update(user.id, {"username": other.username})
    assert info.value.response_code == 409
    assert info.value.error_message == "Username has already been taken"

    with pytest.raises(glexc.GitlabUpdateError) as info:
        gl.users.update(user.id, {"email": other.email})
    assert info.value.response_code == 409
    assert info.value.error_message == "Email has already been taken"

    with pytest.raises(glexc.GitlabUpdateError) as info:
        gl.users.update(UNKNOWN_ID, {"name": "Nobody"})
    assert info.value.response_code == 404
    assert info.value.error_message == "404 User Not Found"

    after = gl.users.get(user.id)
    assert (after.username, after.email, after.name) == (user.username, user.email, user.name)


# --- users: block ---------------------------------------------------------------


def test_block_and_unblock(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("block")
    user_gl = gitlab.Gitlab(url, private_token=make_token(user).token)
    user_gl.auth()
    app = new_app(user_gl, "blocked")

    assert user.block() is True
    assert user.state == "blocked"
    assert gl.users.get(user.id).state == "blocked"
    assert [u.state for u in gl.users.list(username=user.username)] == ["blocked"]

    with pytest.raises(glexc.GitlabGetError) as info:
        user_gl.auth()
    assert info.value.response_code == 403
    assert info.value.error_message == BLOCKED
    for call in (
        lambda: user_gl.http_get("/user/applications"),
        lambda: user_gl.http_get(f"/user/applications/{app['id']}"),
        lambda: user_gl.http_post("/user/applications", post_data={"name": unique("x"), "redirect_uri": REDIRECT_URI, "scopes": "api"}),
    ):
        with pytest.raises(glexc.GitlabHttpError) as info:
            call()
        assert info.value.response_code == 403
        assert info.value.error_message == BLOCKED

    assert user.unblock() is True
    assert user.state == "active"
    assert gl.users.get(user.id).state == "active"
    user_gl.auth()
    assert user_gl.user.username == user.username
    assert user_gl.http_get(f"/user/applications/{app['id']}")["id"] == app["id"]


def test_block_via_raw_api_returns_true_201(gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("rawblock")
    for action in ("block", "unblock"):
        resp = gl.http_request("post", f"/users/{user.id}/{action}")
        assert resp.status_code == 201
        assert resp.json() is True


def test_block_unknown_user_is_404(gl: gitlab.Gitlab) -> None:
    ghost = gl.users.get(UNKNOWN_ID, lazy=True)
    with pytest.raises(glexc.GitlabBlockError) as info:
        ghost.block()
    assert info.value.response_code == 404
    assert info.value.error_message == "404 User Not Found"
    with pytest.raises(glexc.GitlabUnblockError) as info:
        ghost.unblock()
    assert info.value.response_code == 404


# --- users: delete ---------------------------------------------------------------


def test_delete_user_removes_their_tokens_and_applications(url: str, gl: gitlab.Gitlab,
                                                           make_user: Callable[..., User]) -> None:
    user = make_user("delete")
    keep = make_user("keep")
    token = make_token(user)
    keep_token = make_token(keep)
    user_gl = gitlab.Gitlab(url, private_token=token.token)
    keep_gl = gitlab.Gitlab(url, private_token=keep_token.token)
    app = new_app(user_gl, "doomed")
    kept_app = new_app(keep_gl, "kept")

    resp = gl.http_request("delete", f"/users/{user.id}")
    assert resp.status_code == 204

    with pytest.raises(glexc.GitlabGetError) as info:
        gl.users.get(user.id)
    assert info.value.response_code == 404
    assert gl.users.list(username=user.username) == []
    assert_rejected_401(user_gl)
    assert gl.personal_access_tokens.list(user_id=user.id, get_all=True) == []
    with pytest.raises(glexc.GitlabGetError) as info:
        gl.personal_access_tokens.get(token.id)
    assert info.value.response_code == 404
    with pytest.raises(glexc.GitlabHttpError) as info:
        gl.http_get(f"/user/applications/{app['id']}")
    assert info.value.response_code == 404
    assert info.value.error_message == "404 Application Not Found"

    # Nobody else's things went with them.
    keep_gl.auth()
    assert [a["id"] for a in keep_gl.http_list("/user/applications", get_all=True)] == [kept_app["id"]]
    assert [t.id for t in gl.personal_access_tokens.list(user_id=keep.id, get_all=True)] == [keep_token.id]

    with pytest.raises(glexc.GitlabDeleteError) as info:
        gl.users.delete(user.id)
    assert info.value.response_code == 404
    assert info.value.error_message == "404 User Not Found"


def test_delete_user_via_object(gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("objdelete")
    gl.users.get(user.id).delete()
    assert gl.users.list(username=user.username) == []
    with pytest.raises(glexc.GitlabDeleteError) as info:
        user.delete()
    assert info.value.response_code == 404


# --- personal access tokens ----------------------------------------------------


def test_create_token_and_use_it(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("pat")
    name = unique("pat")
    token = user.personal_access_tokens.create({"name": name, "scopes": ["api"], "expires_at": FAR_FUTURE})

    assert isinstance(token, UserPersonalAccessToken)
    assert isinstance(token.id, int) and token.id > 0
    assert token.name == name
    assert token.scopes == ["api"]
    assert token.user_id == user.id
    assert token.expires_at == FAR_FUTURE
    assert token.active is True
    assert token.revoked is False
    assert TIMESTAMP.match(token.created_at), token.created_at
    assert isinstance(token.token, str) and len(token.token) >= 20
    assert TOKEN_ATTRS | {"token"} <= set(token.attributes)

    raw = gl.http_request("post", f"/users/{user.id}/personal_access_tokens",
                          post_data={"name": unique("raw"), "scopes": ["read_user"]})
    assert raw.status_code == 201
    # No expiry given: the longest lifetime allowed, as GitLab 16+.
    assert raw.json()["expires_at"] == (dt.date.today() + dt.timedelta(days=365)).isoformat()
    assert raw.json()["token"] not in (token.token, env("LATCHKEY_TOKEN"))

    user_gl = gitlab.Gitlab(url, private_token=token.token)
    user_gl.auth()
    assert user_gl.user.username == user.username
    assert user_gl.user.id == user.id
    assert user_gl.user.email == user.email
    assert user_gl.user.is_admin is False

    # The plaintext is shown once: never in a listing or a lookup.
    got = gl.personal_access_tokens.get(token.id)
    assert isinstance(got, PersonalAccessToken)
    assert "token" not in got.attributes
    assert (got.name, got.scopes, got.user_id, got.expires_at) == (name, ["api"], user.id, FAR_FUTURE)


def test_token_scopes_are_enforced(url: str, make_user: Callable[..., User]) -> None:
    user = make_user("scoped")
    read_gl = gitlab.Gitlab(url, private_token=make_token(user, scopes=("read_api",)).token)
    read_gl.auth()
    assert read_gl.http_get("/user/applications") == []
    with pytest.raises(glexc.GitlabHttpError) as info:
        new_app(read_gl, "readonly")
    assert info.value.response_code == 403
    assert info.value.error_message == "insufficient_scope"

    user_only = gitlab.Gitlab(url, private_token=make_token(user, scopes=("read_user",)).token)
    user_only.auth()
    assert user_only.user.username == user.username
    with pytest.raises(glexc.GitlabHttpError) as info:
        user_only.http_get("/user/applications")
    assert info.value.response_code == 403


def test_create_token_errors(gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("paterr")
    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.users.get(UNKNOWN_ID, lazy=True).personal_access_tokens.create({"name": "x", "scopes": ["api"]})
    assert info.value.response_code == 404
    assert info.value.error_message == "404 User Not Found"

    with pytest.raises(glexc.GitlabCreateError) as info:
        user.personal_access_tokens.create({"name": "x", "scopes": ["api"], "expires_at": "not-a-date"})
    assert info.value.response_code == 400
    assert info.value.error_message == "expires_at is invalid"

    with pytest.raises(glexc.GitlabCreateError) as info:
        user.personal_access_tokens.create({"name": "x", "scopes": ["no_such_scope"]})
    assert info.value.response_code == 400

    with pytest.raises(glexc.GitlabHttpError) as info:
        gl.http_post(f"/users/{user.id}/personal_access_tokens", post_data={"name": "x"})
    assert info.value.response_code == 400
    assert info.value.error_message == "scopes is missing"

    assert gl.personal_access_tokens.list(user_id=user.id, get_all=True) == []


def test_list_tokens(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    alice = make_user("alice")
    bob = make_user("bob")
    a1 = make_token(alice)
    a2 = make_token(alice, scopes=("read_api", "read_user"))
    b1 = make_token(bob)

    mine = gl.personal_access_tokens.list(user_id=alice.id, get_all=True)
    assert all(isinstance(t, PersonalAccessToken) for t in mine)
    assert [t.id for t in mine] == [a1.id, a2.id]
    assert [t.name for t in mine] == [a1.name, a2.name]
    assert mine[1].scopes == ["read_api", "read_user"]
    assert all(t.user_id == alice.id and t.active is True and t.revoked is False for t in mine)
    assert all("token" not in t.attributes for t in mine)
    assert all(TOKEN_ATTRS <= set(t.attributes) for t in mine)

    everyone = {t.id for t in gl.personal_access_tokens.list(get_all=True)}
    assert {a1.id, a2.id, b1.id} <= everyone
    root_id = gl.users.list(username="root")[0].id
    assert gl.personal_access_tokens.list(user_id=root_id, get_all=True), "root's own token is listed"

    it = gl.personal_access_tokens.list(iterator=True, per_page=1)
    assert it.total == len(everyone)
    assert {t.id for t in it} == everyone

    # A non-admin sees only their own tokens, whatever they ask for.
    alice_gl = gitlab.Gitlab(url, private_token=a1.token)
    assert [t.id for t in alice_gl.personal_access_tokens.list(get_all=True)] == [a1.id, a2.id]
    own = {t.id for t in alice_gl.personal_access_tokens.list(user_id=bob.id, get_all=True)}
    assert b1.id not in own


def test_get_token_self_and_by_id(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    alice = make_user("getself")
    bob = make_user("getself")
    a = make_token(alice, scopes=("read_user",))
    b = make_token(bob)
    alice_gl = gitlab.Gitlab(url, private_token=a.token)

    me = alice_gl.personal_access_tokens.get("self")
    assert isinstance(me, PersonalAccessToken)
    assert (me.id, me.name, me.scopes, me.user_id) == (a.id, a.name, ["read_user"], alice.id)
    assert "token" not in me.attributes
    # By id, it is an ordinary API read: read_user is not enough.
    with pytest.raises(glexc.GitlabGetError) as info:
        alice_gl.personal_access_tokens.get(a.id)
    assert info.value.response_code == 403
    assert info.value.error_message == "insufficient_scope"

    alice_api = gitlab.Gitlab(url, private_token=make_token(alice).token)
    assert alice_api.personal_access_tokens.get(a.id).id == a.id
    with pytest.raises(glexc.GitlabGetError) as info:
        alice_api.personal_access_tokens.get(b.id)
    assert info.value.response_code == 404
    assert info.value.error_message == "404 Personal Access Token Not Found"

    assert gl.personal_access_tokens.get(b.id).user_id == bob.id
    with pytest.raises(glexc.GitlabGetError) as info:
        gl.personal_access_tokens.get(UNKNOWN_ID)
    assert info.value.response_code == 404


def test_revoke_self(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("revokeself")
    doomed = make_token(user)
    spare = make_token(user)
    doomed_gl = gitlab.Gitlab(url, private_token=doomed.token)
    spare_gl = gitlab.Gitlab(url, private_token=spare.token)
    doomed_gl.auth()

    resp = doomed_gl.http_request("delete", "/personal_access_tokens/self")
    assert resp.status_code == 204

    assert_rejected_401(doomed_gl)
    spare_gl.auth()
    assert spare_gl.user.id == user.id

    after = gl.personal_access_tokens.get(doomed.id)
    assert after.revoked is True
    assert after.active is False


def test_revoke_self_via_manager_and_by_id(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("revoke")
    first = make_token(user)
    first_gl = gitlab.Gitlab(url, private_token=first.token)
    first_gl.personal_access_tokens.delete("self")
    assert_rejected_401(first_gl)

    second = make_token(user)
    second_gl = gitlab.Gitlab(url, private_token=second.token)
    second_gl.auth()
    gl.personal_access_tokens.delete(second.id)
    assert_rejected_401(second_gl)

    third = make_token(user)
    third_gl = gitlab.Gitlab(url, private_token=third.token)
    gl.personal_access_tokens.get(third.id).delete()
    assert_rejected_401(third_gl)

    assert [t.revoked for t in gl.personal_access_tokens.list(user_id=user.id, get_all=True)] == [True, True, True]
    with pytest.raises(glexc.GitlabDeleteError) as info:
        gl.personal_access_tokens.delete(UNKNOWN_ID)
    assert info.value.response_code == 404


def test_non_admin_cannot_revoke_others_token(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    alice = make_user("norevoke")
    bob = make_user("norevoke")
    a = make_token(alice)
    b = make_token(bob)
    alice_gl = gitlab.Gitlab(url, private_token=a.token)
    with pytest.raises(glexc.GitlabDeleteError) as info:
        alice_gl.personal_access_tokens.delete(b.id)
    assert info.value.response_code == 404
    bob_gl = gitlab.Gitlab(url, private_token=b.token)
    bob_gl.auth()
    assert gl.personal_access_tokens.get(b.id).active is True


def test_rotate_by_id(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("rotate")
    old = make_token(user, scopes=("api", "read_user"))
    old_gl = gitlab.Gitlab(url, private_token=old.token)
    old_gl.auth()

    before = utc_today()
    rotated = gl.personal_access_tokens.rotate(old.id)
    after = utc_today()
    assert isinstance(rotated, dict)
    assert isinstance(rotated["token"], str) and rotated["token"] != old.token
    assert rotated["id"] != old.id
    assert rotated["name"] == old.name
    assert rotated["scopes"] == ["api", "read_user"]
    assert rotated["user_id"] == user.id
    assert rotated["active"] is True and rotated["revoked"] is False
    # Without expires_at, GitLab's rotated token lasts a week.
    assert rotated["expires_at"] in {str(before + dt.timedelta(days=7)), str(after + dt.timedelta(days=7))}

    assert_rejected_401(old_gl)
    new_gl = gitlab.Gitlab(url, private_token=rotated["token"])
    new_gl.auth()
    assert new_gl.user.id == user.id

    listed = {t.id: t for t in gl.personal_access_tokens.list(user_id=user.id, get_all=True)}
    assert listed[old.id].revoked is True
    assert listed[rotated["id"]].active is True

    # An explicit expiry is kept.
    again = gl.personal_access_tokens.rotate(rotated["id"], expires_at=LATER)
    assert again["expires_at"] == LATER
    assert_rejected_401(new_gl)
    again_gl = gitlab.Gitlab(url, private_token=again["token"])
    again_gl.auth()

    # The raw route answers 200 with the new token.
    resp = gl.http_request("post", f"/personal_access_tokens/{again['id']}/rotate")
    assert resp.status_code == 200
    assert resp.json()["token"] not in (old.token, rotated["token"], again["token"])
    assert_rejected_401(again_gl)
    gitlab.Gitlab(url, private_token=resp.json()["token"]).auth()

    # A revoked token cannot be rotated.
    with pytest.raises(glexc.GitlabRotateError) as info:
        gl.personal_access_tokens.rotate(old.id)
    assert info.value.response_code == 400
    with pytest.raises(glexc.GitlabRotateError) as info:
        gl.personal_access_tokens.rotate(UNKNOWN_ID)
    assert info.value.response_code == 404


def test_rotate_self(url: str, gl: gitlab.Gitlab, make_user: Callable[..., User]) -> None:
    user = make_user("rotateself")
    old = make_token(user)
    old_gl = gitlab.Gitlab(url, private_token=old.token)

    me = old_gl.personal_access_tokens.get("self")
    assert me.id == old.id
    result = me.rotate(self_rotate=True, expires_at=SOONER)
    assert isinstance(result, dict)
    assert result["token"] != old.token
    assert me.id == result["id"] != old.id
    assert me.token == result["token"]
    assert me.name == old.name
    assert me.expires_at == SOONER

    assert_rejected_401(old_gl)
    new_gl = gitlab.Gitlab(url, private_token=me.token)
    new_gl.auth()
    assert new_gl.user.username == user.username

    # The raw route answers 200, and the client can keep rotating itself.
    resp = new_gl.http_request("post", "/personal_access_tokens/self/rotate")
    assert resp.status_code == 200
    body = resp.json()
    assert body["name"] == old.name and body["token"] not in (old.token, me.token)
    assert_rejected_401(new_gl)
    gitlab.Gitlab(url, private_token=body["token"]).auth()


def test_self_rotate_scope_may_only_rotate(url: str, make_user: Callable[..., User]) -> None:
    user = make_user("selfrotate")
    token = make_token(user, scopes=("self_rotate",))
    client = gitlab.Gitlab(url, private_token=token.token)
    with pytest.raises(glexc.GitlabHttpError) as info:
        client.http_get("/user/applications")
    assert info.value.response_code == 403
    rotated = client.personal_access_tokens.rotate("self")
    assert rotated["scopes"] == ["self_rotate"]
    assert rotated["token"] != token.token
    with pytest.raises(glexc.GitlabAuthenticationError):
        client.personal_access_tokens.get("self")


# --- the caller's own applications ----------------------------------------------


def test_user_application_create_and_read(make_client: Callable[..., Any]) -> None:
    _, _, user_gl = make_client("uapp")
    name = unique("uapp")
    resp = user_gl.http_request("post", "/user/applications", post_data={
        "name": name, "redirect_uri": REDIRECT_URI, "scopes": "api read_user", "confidential": False,
    })
    assert resp.status_code == 201
    app = resp.json()
    assert set(app) == APP_ATTRS | {"secret"}
    assert isinstance(app["id"], int)
    assert HEX64.match(app["application_id"]), app["application_id"]
    assert app["application_name"] == name
    assert app["callback_url"] == REDIRECT_URI
    assert app["confidential"] is False
    assert app["scopes"] == ["api", "read_user"]
    assert SECRET.match(app["secret"]), app["secret"]

    one = user_gl.http_get(f"/user/applications/{app['id']}")
    assert one == {k: v for k, v in app.items() if k != "secret"}

    listed = user_gl.http_list("/user/applications", get_all=True)
    assert listed == [one]

    default = new_app(user_gl, "default")
    assert default["confidential"] is True
    assert default["scopes"] == ["api"]
    assert [a["id"] for a in user_gl.http_list("/user/applications", get_all=True)] == [app["id"], default["id"]]


def test_user_application_create_errors(make_client: Callable[..., Any]) -> None:
    _, _, user_gl = make_client("uapperr")
    with pytest.raises(glexc.GitlabHttpError) as info:
        new_app(user_gl, redirect_uri="http://")
    assert info.value.response_code == 400
    assert info.value.error_message == {"redirect_uri": ["must be a valid URI."]}
    with pytest.raises(glexc.GitlabHttpError) as info:
        user_gl.http_post("/user/applications", post_data={"name": unique("x"), "redirect_uri": REDIRECT_URI})
    assert info.value.response_code == 400
    assert info.value.error_message == "scopes is missing, scopes is empty"
    assert user_gl.http_list("/user/applications", get_all=True) == []


def test_user_application_update(make_client: Callable[..., Any]) -> None:
    _, _, user_gl = make_client("uappput")
    app = new_app(user_gl, "put", scopes="api", confidential=True)
    new_name = unique("renamed")

    updated = user_gl.http_put(f"/user/applications/{app['id']}", post_data={
        "name": new_name,
        "scopes": "read_user openid",
        "redirect_uri": "https://elsewhere.example/cb",
        "confidential": False,
    })
    assert isinstance(updated, dict)
    assert updated["id"] == app["id"]
    assert updated["application_id"] == app["application_id"]
    assert updated["application_name"] == new_name
    assert updated["scopes"] == ["read_user", "openid"]
    assert updated["callback_url"] == REDIRECT_URI, "redirect_uri cannot be changed"
    assert updated["confidential"] is True, "confidential cannot be changed"
    assert "secret" not in updated
    assert user_gl.http_get(f"/user/applications/{app['id']}") == updated

    # Only what is sent changes.
    renamed = user_gl.http_put(f"/user/applications/{app['id']}", post_data={"name": "Just the name"})
    assert renamed["application_name"] == "Just the name"
    assert renamed["scopes"] == ["read_user", "openid"]
    rescoped = user_gl.http_put(f"/user/applications/{app['id']}", post_data={"scopes": "api"})
    assert (rescoped["application_name"], rescoped["scopes"]) == ("Just the name", ["api"])

    with pytest.raises(glexc.GitlabHttpError) as info:
        user_gl.http_put(f"/user/applications/{app['id']}", post_data={"scopes": ""})
    assert info.value.response_code == 400
    assert user_gl.http_get(f"/user/applications/{app['id']}")["scopes"] == ["api"]


def test_user_application_delete(make_client: Callable[..., Any]) -> None:
    _, _, user_gl = make_client("uappdel")
    app = new_app(user_gl, "del")
    keep = new_app(user_gl, "keep")

    resp = user_gl.http_delete(f"/user/applications/{app['id']}")
    assert resp.status_code == 204
    assert [a["id"] for a in user_gl.http_list("/user/applications", get_all=True)] == [keep["id"]]

    for call in (
        lambda: user_gl.http_get(f"/user/applications/{app['id']}"),
        lambda: user_gl.http_delete(f"/user/applications/{app['id']}"),
        lambda: user_gl.http_put(f"/user/applications/{app['id']}", post_data={"name": "zombie"}),
    ):
        with pytest.raises(glexc.GitlabHttpError) as info:
            call()
        assert info.value.response_code == 404
        assert info.value.error_message == "404 Application Not Found"


def test_user_application_unknown_id_is_404(make_client: Callable[..., Any]) -> None:
    _, _, user_gl = make_client("uapp404")
    for call in (
        lambda: user_gl.http_get(f"/user/applications/{UNKNOWN_ID}"),
        lambda: user_gl.http_put(f"/user/applications/{UNKNOWN_ID}", post_data={"name": "nothing"}),
        lambda: user_gl.http_delete(f"/user/applications/{UNKNOWN_ID}"),
    ):
        with pytest.raises(glexc.GitlabHttpError) as info:
            call()
        assert info.value.response_code == 404
        assert info.value.error_message == "404 Application Not Found"


def test_user_application_belongs_to_its_owner(gl: gitlab.Gitlab, make_client: Callable[..., Any]) -> None:
    _, _, owner_gl = make_client("owner")
    _, _, other_gl = make_client("other")
    app = new_app(owner_gl, "owned")
    theirs = new_app(other_gl, "theirs")

    assert [a["id"] for a in other_gl.http_list("/user/applications", get_all=True)] == [theirs["id"]]
    assert [a["id"] for a in owner_gl.http_list("/user/applications", get_all=True)] == [app["id"]]

    for call in (
        lambda: other_gl.http_get(f"/user/applications/{app['id']}"),
        lambda: other_gl.http_put(f"/user/applications/{app['id']}", post_data={"name": "stolen", "scopes": "read_user"}),
        lambda: other_gl.http_delete(f"/user/applications/{app['id']}"),
    ):
        with pytest.raises(glexc.GitlabHttpError) as info:
            call()
        assert info.value.response_code == 403
        assert info.value.error_message == "403 Forbidden"

    still = owner_gl.http_get(f"/user/applications/{app['id']}")
    assert (still["application_name"], still["scopes"]) == (app["application_name"], ["api"])

    # An administrator may look at anyone's application.
    assert gl.http_get(f"/user/applications/{app['id']}")["application_id"] == app["application_id"]
    # It is the owner's, not an instance-wide application.
    assert app["id"] not in {a.id for a in gl.applications.list(get_all=True)}


def test_user_applications_pagination(url: str, make_client: Callable[..., Any]) -> None:
    _, _, user_gl = make_client("many")
    made = [new_app(user_gl, f"many{i:02d}")["id"] for i in range(45)]
    assert made == sorted(made) and len(set(made)) == 45

    # The first page: 20 by default, with GitLab's headers and links.
    first = raw_get(user_gl, "/user/applications")
    assert first.status_code == 200
    assert [a["id"] for a in first.json()] == made[:20]
    h = first.headers
    assert (h["X-Total"], h["X-Total-Pages"], h["X-Per-Page"], h["X-Page"]) == ("45", "3", "20", "1")
    assert (h["X-Next-Page"], h["X-Prev-Page"]) == ("2", "")
    assert set(first.links) == {"next", "first", "last"}
    assert link_query(first, "next") == {"page": ["2"]}
    assert link_query(first, "first") == {"page": ["1"]}
    assert link_query(first, "last") == {"page": ["3"]}

    last = raw_get(user_gl, "/user/applications", page=3)
    assert [a["id"] for a in last.json()] == made[40:]
    assert (last.headers["X-Next-Page"], last.headers["X-Prev-Page"]) == ("", "2")
    assert set(last.links) == {"prev", "first", "last"}
    assert link_query(last, "prev") == {"page": ["2"]}

    middle = raw_get(user_gl, "/user/applications", per_page=10, page=2)
    assert [a["id"] for a in middle.json()] == made[10:20]
    assert (middle.headers["X-Total-Pages"], middle.headers["X-Next-Page"], middle.headers["X-Prev-Page"]) == ("5", "3", "1")
    assert link_query(middle, "next") == {"per_page": ["10"], "page": ["3"]}
    assert link_query(middle, "last") == {"per_page": ["10"], "page": ["5"]}

    # python-gitlab follows Link rel="next" to the end.
    everything = user_gl.http_list("/user/applications", get_all=True)
    assert [a["id"] for a in everything] == made
    assert all(set(a) == APP_ATTRS for a in everything)

    paged = user_gl.http_list("/user/applications", get_all=True, per_page=10)
    assert [a["id"] for a in paged] == made

    it = user_gl.http_list("/user/applications", iterator=True, per_page=10)
    assert isinstance(it, gitlab.GitlabList)
    assert (it.per_page, it.total, it.total_pages, it.current_page, it.next_page) == (10, 45, 5, 1, 2)
    assert len(it) == 45
    ids = [a["id"] for a in it]
    assert ids == made
    assert len(set(ids)) == 45
    assert it.current_page == 5 and it.next_page is None

    beyond = raw_get(user_gl, "/user/applications", page=4)
    assert beyond.json() == []
