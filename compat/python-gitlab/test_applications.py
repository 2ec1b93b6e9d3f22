"""Compatibility suite: the real python-gitlab client against a running latchkey.

compat/run.sh starts a server and sets:

  LATCHKEY_URL           base URL, e.g. http://127.0.0.1:41234
  LATCHKEY_TOKEN         root's personal access token (an administrator)
  LATCHKEY_BIN           the latchkey binary, for CLI-made users and tokens
  LATCHKEY_DATABASE_URL  the server's database, for that CLI

Every test makes its own applications under unique names and deletes them
afterwards, so tests do not depend on each other or on their order.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import gitlab
import gitlab.exceptions as glexc
import pytest
from gitlab.v4.objects import Application

# python-gitlab warns (UserWarning) when the server's links or web_url point
# at another base URL than the client's, or when a list was cut short; none
# of that may happen against latchkey unless a test expects it.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

HEX64 = re.compile(r"^[0-9a-f]{64}$")
SECRET = re.compile(r"^gloas-[0-9a-f]{64}$")
REDIRECT_URI = "https://client.example/oauth/callback"


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through compat/run.sh", pytrace=False)
    return value


def unique(prefix: str) -> str:
    return f"compat-{prefix}-{secrets.token_hex(4)}"


def cli(*args: str) -> str:
    """Run the latchkey CLI against the server's database; return its stdout."""
    cmd = [env("LATCHKEY_BIN"), "--database-url", env("LATCHKEY_DATABASE_URL"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    )
    return proc.stdout


def make_user(prefix: str, *, admin: bool = False, scopes: str = "api") -> tuple[str, str]:
    """Create a user and a personal access token with the CLI: (username, token)."""
    username = unique(prefix)
    args = [
        "users", "create",
        "--username", username,
        "--email", f"{username}@example.com",
        "--name", username.title(),
        "--password", "correct horse battery",
    ]
    if admin:
        args.append("--admin")
    cli(*args)
    out = cli("tokens", "create", "--user", username, "--name", "compat", "--scopes", scopes)
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].strip() and " " not in lines[0].strip(), (
        f"`tokens create` must print only the token, got {out!r}"
    )
    return username, lines[0].strip()


def ids(objs: Any) -> list[int]:
    return [o.id for o in objs]


# --- fixtures -------------------------------------------------------------


@pytest.fixture(scope="session")
def url() -> str:
    return env("LATCHKEY_URL").rstrip("/")


@pytest.fixture(scope="session")
def gl(url: str) -> gitlab.Gitlab:
    return gitlab.Gitlab(url, private_token=env("LATCHKEY_TOKEN"))


@pytest.fixture
def make_app(gl: gitlab.Gitlab) -> Iterator[Callable[..., Application]]:
    """Create applications through python-gitlab; delete leftovers afterwards."""
    created: list[int] = []

    def make(prefix: str = "app", **overrides: Any) -> Application:
        data = {"name": unique(prefix), "redirect_uri": REDIRECT_URI, "scopes": "api"}
        data.update(overrides)
        app = gl.applications.create(data)
        created.append(app.id)
        return app

    yield make
    for app_id in created:
        try:
            gl.applications.delete(app_id)
        except glexc.GitlabDeleteError as e:
            if e.response_code != 404:
                raise


@pytest.fixture(scope="session")
def non_admin(url: str) -> tuple[str, gitlab.Gitlab]:
    username, token = make_user("user")
    return username, gitlab.Gitlab(url, private_token=token)


def listed(gl: gitlab.Gitlab) -> dict[int, Application]:
    return {a.id: a for a in gl.applications.list(get_all=True)}


# --- instance ---------------------------------------------------------------


def test_auth_is_root(gl: gitlab.Gitlab) -> None:
    gl.auth()
    assert gl.user is not None
    assert gl.user.username == "root"
    assert gl.user.is_admin is True
    assert isinstance(gl.user.id, int)


def test_version(gl: gitlab.Gitlab) -> None:
    version, revision = gl.version()
    assert version != "unknown", "GET /api/v4/version failed or had no version"
    assert re.match(r"^\d+\.\d+\.\d+", version), version
    # python-gitlab turns any failure into ("unknown", "unknown"), so the
    # version above is what shows the call worked; a revision is a string
    # (latchkey reports "unknown" when it was built outside a git checkout).
    assert isinstance(revision, str) and revision
    raw = gl.http_get("/version")
    assert isinstance(raw, dict)
    assert raw["version"] == version and raw["revision"] == revision


# --- create -------------------------------------------------------------------


def test_create_returns_application_with_secret(gl: gitlab.Gitlab, make_app: Callable[..., Application]) -> None:
    name = unique("create")
    app = make_app(name=name, redirect_uri=REDIRECT_URI, scopes="api read_user", confidential=True)

    assert isinstance(app, Application)
    assert isinstance(app.id, int) and app.id > 0
    assert HEX64.match(app.application_id), app.application_id
    assert app.application_name == name
    assert app.callback_url == REDIRECT_URI
    assert app.confidential is True
    assert app.scopes == ["api", "read_user"]
    assert SECRET.match(app.secret), app.secret
    assert set(app.attributes) == {
        "id", "application_id", "application_name", "callback_url", "confidential", "scopes", "secret",
    }


def test_create_confidential_false_and_default(make_app: Callable[..., Application]) -> None:
    public = make_app("public", confidential=False)
    assert public.confidential is False
    default = make_app("default")
    assert default.confidential is True, "confidential defaults to true, as in GitLab"


def test_create_gives_each_application_its_own_credentials(make_app: Callable[..., Application]) -> None:
    a = make_app("uniq")
    b = make_app("uniq")
    assert a.id != b.id
    assert a.application_id != b.application_id
    assert a.secret != b.secret


def test_create_bad_redirect_uri_is_400(gl: gitlab.Gitlab) -> None:
    name = unique("badredirect")
    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.applications.create({"name": name, "redirect_uri": "http://", "scopes": "api"})
    e = info.value
    assert e.response_code == 400
    assert e.error_message == {"redirect_uri": ["must be a valid URI."]}
    assert "must be a valid URI." in str(e)
    assert name not in {a.application_name for a in gl.applications.list(get_all=True)}


def test_create_empty_scopes_is_400(gl: gitlab.Gitlab) -> None:
    name = unique("emptyscopes")
    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.applications.create({"name": name, "redirect_uri": REDIRECT_URI, "scopes": ""})
    assert info.value.response_code == 400
    assert info.value.error_message == "scopes is empty"
    assert name not in {a.application_name for a in gl.applications.list(get_all=True)}


def test_create_missing_scopes_is_400(gl: gitlab.Gitlab) -> None:
    # python-gitlab refuses to send a create without a required attribute ...
    with pytest.raises(AttributeError, match="scopes"):
        gl.applications.create({"name": unique("noscopes"), "redirect_uri": REDIRECT_URI})
    # ... so send the same request through the client's raw HTTP layer.
    name = unique("noscopes")
    with pytest.raises(glexc.GitlabHttpError) as info:
        gl.http_post("/applications", post_data={"name": name, "redirect_uri": REDIRECT_URI})
    assert info.value.response_code == 400
    assert info.value.error_message == "scopes is missing, scopes is empty"
    assert name not in {a.application_name for a in gl.applications.list(get_all=True)}


def test_create_missing_name_is_400(gl: gitlab.Gitlab) -> None:
    with pytest.raises(glexc.GitlabHttpError) as info:
        gl.http_post("/applications", post_data={"redirect_uri": REDIRECT_URI, "scopes": "api"})
    assert info.value.response_code == 400
    assert info.value.error_message == "name is missing"


# --- list -----------------------------------------------------------------------


def test_list_includes_created_without_secret(gl: gitlab.Gitlab, make_app: Callable[..., Application]) -> None:
    app = make_app("list", scopes="read_user openid", confidential=False)
    apps = gl.applications.list(get_all=True)
    assert all(isinstance(a, Application) for a in apps)
    found = {a.id: a for a in apps}.get(app.id)
    assert found is not None, f"application {app.id} missing from the list"
    assert found.application_id == app.application_id
    assert found.application_name == app.application_name
    assert found.callback_url == REDIRECT_URI
    assert found.confidential is False
    assert found.scopes == ["read_user", "openid"]
    assert "secret" not in found.attributes
    assert not hasattr(found, "secret")
    assert all("secret" not in a.attributes for a in apps)
    assert ids(apps) == sorted(ids(apps)), "applications are listed in id order"


def test_list_get_all_returns_more_than_20(gl: gitlab.Gitlab, make_app: Callable[..., Application]) -> None:
    made = [make_app(f"many{i:02d}").id for i in range(25)]

    everything = gl.applications.list(get_all=True)
    assert set(made) <= set(ids(everything))
    assert len(everything) >= 25
    assert ids(everything) == sorted(ids(everything))

    # get_all with a page size: python-gitlab follows the Link headers.
    paged = gl.applications.list(get_all=True, per_page=5)
    assert ids(paged) == ids(everything)


def test_list_page_and_per_page(gl: gitlab.Gitlab, make_app: Callable[..., Application]) -> None:
    for i in range(12):
        make_app(f"page{i:02d}")
    everything = ids(gl.applications.list(get_all=True))
    total = len(everything)
    assert total >= 12

    page2 = gl.applications.list(per_page=5, page=2)
    assert ids(page2) == everything[5:10]

    last_page = math.ceil(total / 5)
    last = gl.applications.list(per_page=5, page=last_page)
    assert ids(last) == everything[(last_page - 1) * 5:]

    beyond = gl.applications.list(per_page=5, page=last_page + 1)
    assert ids(beyond) == []


def test_list_iterator_follows_pagination(gl: gitlab.Gitlab, make_app: Callable[..., Application]) -> None:
    for i in range(11):
        make_app(f"iter{i:02d}")
    everything = ids(gl.applications.list(get_all=True))
    total = len(everything)

    it = gl.applications.list(iterator=True, per_page=5)
    assert it.per_page == 5
    assert it.current_page == 1
    assert it.prev_page is None
    assert it.next_page == 2
    assert it.total == total
    assert it.total_pages == math.ceil(total / 5)
    assert len(it) == total
    assert [a.id for a in it] == everything
    assert it.current_page == math.ceil(total / 5)
    assert it.next_page is None


def test_list_cut_short_warns_like_gitlab(gl: gitlab.Gitlab, make_app: Callable[..., Application]) -> None:
    """Without get_all/iterator, python-gitlab reads X-Per-Page and X-Total to warn."""
    for i in range(6):
        make_app(f"warn{i}")
    total = len(gl.applications.list(get_all=True))
    with pytest.warns(UserWarning, match=rf"maximum of 5 items\. Your query returned 5 of {total} items"):
        got = gl.applications.list(per_page=5)
    assert len(got) == 5


# --- delete -----------------------------------------------------------------------


def test_delete_by_id(gl: gitlab.Gitlab, make_app: Callable[..., Application]) -> None:
    app = make_app("delete")
    keep = make_app("keep")
    gl.applications.delete(app.id)
    apps = listed(gl)
    assert app.id not in apps
    assert keep.id in apps

    with pytest.raises(glexc.GitlabDeleteError) as info:
        gl.applications.delete(app.id)
    assert info.value.response_code == 404
    assert info.value.error_message == "404 Application Not Found"


def test_delete_via_object(gl: gitlab.Gitlab, make_app: Callable[..., Application]) -> None:
    app = make_app("objdelete")
    obj = listed(gl)[app.id]
    obj.delete()
    assert app.id not in listed(gl)

    created = make_app("objdelete")
    created.delete()
    assert created.id not in listed(gl)


def test_delete_unknown_id_is_404(gl: gitlab.Gitlab) -> None:
    with pytest.raises(glexc.GitlabDeleteError) as info:
        gl.applications.delete(2_000_000_000)
    assert info.value.response_code == 404
    assert info.value.error_message == "404 Application Not Found"


# --- renew secret ---------------------------------------------------------------


def test_renew_secret(gl: gitlab.Gitlab, make_app: Callable[..., Application]) -> None:
    app = make_app("renew", scopes="api read_user")
    renewed = gl.http_post(f"/applications/{app.id}/renew-secret")
    assert isinstance(renewed, dict)
    assert renewed["id"] == app.id
    assert renewed["application_id"] == app.application_id
    assert renewed["application_name"] == app.application_name
    assert renewed["callback_url"] == app.callback_url
    assert renewed["confidential"] == app.confidential
    assert renewed["scopes"] == ["api", "read_user"]
    assert SECRET.match(renewed["secret"]), renewed["secret"]
    assert renewed["secret"] != app.secret

    again = gl.http_post(f"/applications/{app.id}/renew-secret")
    assert SECRET.match(again["secret"])
    assert again["secret"] not in (app.secret, renewed["secret"])
    assert listed(gl)[app.id].application_id == app.application_id


def test_renew_secret_unknown_id_is_404(gl: gitlab.Gitlab) -> None:
    with pytest.raises(glexc.GitlabHttpError) as info:
        gl.http_post("/applications/2000000000/renew-secret")
    assert info.value.response_code == 404
    assert info.value.error_message == "404 Application Not Found"


# --- authentication and authorisation ------------------------------------------


def test_bad_token_is_401(url: str) -> None:
    bad = gitlab.Gitlab(url, private_token="glpat-" + secrets.token_urlsafe(20))
    with pytest.raises(glexc.GitlabAuthenticationError) as info:
        bad.applications.list(get_all=True)
    assert info.value.response_code == 401
    assert info.value.error_message == "401 Unauthorized"

    with pytest.raises(glexc.GitlabAuthenticationError) as info:
        bad.applications.create({"name": unique("bad"), "redirect_uri": REDIRECT_URI, "scopes": "api"})
    assert info.value.response_code == 401

    with pytest.raises(glexc.GitlabAuthenticationError) as info:
        bad.auth()
    assert info.value.response_code == 401


def test_no_token_is_401(url: str) -> None:
    anonymous = gitlab.Gitlab(url)
    with pytest.raises(glexc.GitlabAuthenticationError) as info:
        anonymous.applications.list(get_all=True)
    assert info.value.response_code == 401
    assert info.value.error_message == "401 Unauthorized"


def test_non_admin_is_403(
    gl: gitlab.Gitlab, non_admin: tuple[str, gitlab.Gitlab], make_app: Callable[..., Application]
) -> None:
    username, user_gl = non_admin
    user_gl.auth()
    assert user_gl.user.username == username
    assert user_gl.user.is_admin is False

    with pytest.raises(glexc.GitlabListError) as info:
        user_gl.applications.list(get_all=True)
    assert info.value.response_code == 403
    assert info.value.error_message == "403 Forbidden"

    name = unique("forbidden")
    with pytest.raises(glexc.GitlabCreateError) as info:
        user_gl.applications.create({"name": name, "redirect_uri": REDIRECT_URI, "scopes": "api"})
    assert info.value.response_code == 403
    assert info.value.error_message == "403 Forbidden"

    victim = make_app("victim")
    with pytest.raises(glexc.GitlabDeleteError) as info:
        user_gl.applications.delete(victim.id)
    assert info.value.response_code == 403
    with pytest.raises(glexc.GitlabHttpError) as info:
        user_gl.http_post(f"/applications/{victim.id}/renew-secret")
    assert info.value.response_code == 403

    apps = listed(gl)
    assert victim.id in apps, "a non-admin's delete must not remove the application"
    assert name not in {a.application_name for a in apps.values()}


def test_cli_made_admin_can_manage_applications(url: str, gl: gitlab.Gitlab) -> None:
    username, token = make_user("admin", admin=True)
    admin_gl = gitlab.Gitlab(url, private_token=token)
    admin_gl.auth()
    assert admin_gl.user.username == username
    assert admin_gl.user.is_admin is True

    app = admin_gl.applications.create({"name": unique("byadmin"), "redirect_uri": REDIRECT_URI, "scopes": "api"})
    assert SECRET.match(app.secret)
    assert app.id in {a.id for a in admin_gl.applications.list(get_all=True)}
    # Applications are instance-wide: root sees and removes it too.
    assert app.id in listed(gl)
    gl.applications.delete(app.id)
    assert app.id not in listed(admin_gl)
