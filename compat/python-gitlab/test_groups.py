"""Compatibility suite, part three: groups, subgroups, members and group
applications, driven with the real python-gitlab client.

compat/run.sh starts a server and sets LATCHKEY_URL and LATCHKEY_TOKEN (root,
an administrator). Every user, group and application here is made through the
API itself, under unique names (the server is shared with the other suites);
each test's groups and users are deleted afterwards.

python-gitlab has managers for groups (`gl.groups`, `group.subgroups`,
`group.descendant_groups`) and members (`group.members`, `group.members_all`),
but none for GitLab's Group Applications API, so those calls go through the
client's own HTTP layer (`gl.http_post` and friends), as a python-gitlab user
would make them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import gitlab
import gitlab.exceptions as glexc
import pytest
import requests
from gitlab.v4.objects import (
    Group,
    GroupDescendantGroup,
    GroupMember,
    GroupMemberAll,
    GroupSubgroup,
    User,
)

# As in the other modules: any UserWarning from python-gitlab (links to
# another base URL, a list cut short) is a failure.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

PASSWORD = "correct horse battery staple"
REDIRECT_URI = "https://client.example/oauth/callback"
UNKNOWN_ID = 2_000_000_000
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
SECRET = re.compile(r"^gloas-[0-9a-f]{64}$")
APP_ATTRS = {"id", "application_id", "application_name", "callback_url", "confidential", "scopes"}
GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 15, 20, 30, 40, 50


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through compat/run.sh", pytrace=False)
    return value


def unique(prefix: str) -> str:
    return f"compat-{prefix}-{secrets.token_hex(4)}"


def in_days(days: int) -> str:
    """A date `days` from today (UTC, as the server counts), `YYYY-MM-DD`."""
    return (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=days)).isoformat()


def ids(objs: Any) -> list[int]:
    return [o.id for o in objs]


def levels(members: Any) -> dict[int, int]:
    """{user id: access level} of a member list."""
    return {m.id: m.access_level for m in members}


def encoded(path: str) -> str:
    """A group's full path as a route's :id (`org%2Fteam`)."""
    return quote(path, safe="")


# --- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="session")
def url() -> str:
    return env("LATCHKEY_URL").rstrip("/")


@pytest.fixture(scope="session")
def gl(url: str) -> gitlab.Gitlab:
    instance = gitlab.Gitlab(url, private_token=env("LATCHKEY_TOKEN"))
    instance.auth()
    return instance


@pytest.fixture(scope="session")
def root(gl: gitlab.Gitlab) -> Any:
    assert gl.user is not None and gl.user.username == "root"
    return gl.user


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


@pytest.fixture
def make_client(url: str, make_user: Callable[..., User]) -> Callable[..., tuple[User, gitlab.Gitlab]]:
    """A new user and a python-gitlab client with a token of theirs."""

    def make(prefix: str = "member", *, scopes: tuple[str, ...] = ("api",)) -> tuple[User, gitlab.Gitlab]:
        user = make_user(prefix)
        token = user.personal_access_tokens.create(
            {"name": unique("token"), "scopes": list(scopes), "expires_at": in_days(300)}
        )
        return user, gitlab.Gitlab(url, private_token=token.token)

    return make


@pytest.fixture
def make_group(gl: gitlab.Gitlab) -> Iterator[Callable[..., Group]]:
    """Create groups through python-gitlab (as root unless `client` is
    given); root deletes what is left afterwards, subgroups first."""
    created: list[int] = []

    def make(prefix: str = "group", *, parent: Any = None, client: gitlab.Gitlab | None = None,
             **overrides: Any) -> Group:
        path = unique(prefix)
        data: dict[str, Any] = {"name": path.replace("-", " ").title(), "path": path}
        if parent is not None:
            data["parent_id"] = parent.id
        data.update(overrides)
        group = (client or gl).groups.create(data)
        created.append(group.id)
        return group

    yield make
    for group_id in reversed(created):
        try:
            gl.groups.delete(group_id)
        except glexc.GitlabDeleteError as e:
            if e.response_code != 404:
                raise


def new_group_app(client: gitlab.Gitlab, group_id: int | str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": unique("gapp"), "redirect_uri": REDIRECT_URI, "scopes": "read_user openid"}
    data.update(overrides)
    app = client.http_post(f"/groups/{group_id}/applications", post_data=data)
    assert isinstance(app, dict), app
    return app


# --- create and read ---------------------------------------------------------------


def test_create_group_returns_group_detail(url: str, gl: gitlab.Gitlab, root: Any,
                                           make_group: Callable[..., Group]) -> None:
    group = make_group("create", description="Made by python-gitlab")

    assert isinstance(group, Group)
    assert isinstance(group.id, int) and group.id > 0
    assert group.full_path == group.path
    assert group.full_name == group.name
    assert group.parent_id is None
    assert group.description == "Made by python-gitlab"
    assert group.visibility == "private", "new groups are private by default, as in GitLab"
    assert group.web_url == f"{url}/groups/{group.path}"
    assert group.avatar_url is None
    assert TIMESTAMP.match(group.created_at), group.created_at
    assert group.shared_with_groups == []
    assert "projects" not in group.attributes, "POST /groups shows no projects, as in GitLab"

    fetched = gl.groups.get(group.id)
    assert isinstance(fetched, Group)
    for key in ("id", "name", "path", "full_path", "full_name", "parent_id", "description",
                "visibility", "web_url", "created_at"):
        assert fetched.attributes[key] == group.attributes[key], key
    assert fetched.attributes["projects"] == [] and fetched.attributes["shared_projects"] == []
    assert "projects" not in gl.groups.get(group.id, with_projects=False).attributes

    # The creator becomes the group's Owner.
    members = group.members.list(get_all=True)
    assert all(isinstance(m, GroupMember) for m in members)
    assert levels(members) == {root.id: OWNER}
    assert members[0].username == "root"


def test_create_group_errors(gl: gitlab.Gitlab, make_group: Callable[..., Group]) -> None:
    taken = make_group("taken")

    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.groups.create({"name": "Another name", "path": taken.path})
    assert info.value.response_code == 400
    assert info.value.error_message == 'Failed to save group {:path=>["has already been taken"]}'

    # python-gitlab will not send a create without a path ...
    with pytest.raises(AttributeError, match="path"):
        gl.groups.create({"name": unique("nopath")})
    # ... so send it through the client's HTTP layer.
    with pytest.raises(glexc.GitlabHttpError) as info:
        gl.http_post("/groups", post_data={"name": unique("nopath")})
    assert info.value.response_code == 400
    assert info.value.error_message == "path is missing"

    bad = "-" + unique("bad")
    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.groups.create({"name": "Bad path", "path": bad})
    assert info.value.response_code == 400
    assert info.value.error_message.startswith("Failed to save group {:path=>["), info.value.error_message

    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.groups.create({"name": "Bad visibility", "path": unique("badvis"), "visibility": "secret"})
    assert info.value.response_code == 400
    assert info.value.error_message == "visibility does not have a valid value"

    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.groups.create({"name": "Orphan", "path": unique("orphan"), "parent_id": UNKNOWN_ID})
    assert info.value.response_code == 404
    assert info.value.error_message == "404 Group Not Found"

    # A subgroup may not be more visible than its parent.
    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.groups.create({"name": "Too public", "path": unique("public"), "parent_id": taken.id,
                          "visibility": "public"})
    assert info.value.response_code == 400
    assert info.value.error_message == (
        "Failed to save group {:visibility_level=>"
        '["public is not allowed since the parent group has a private visibility."]}'
    )
    assert gl.groups.get(taken.id).path == taken.path


def test_no_token_cannot_create_or_see_private_groups(url: str, gl: gitlab.Gitlab,
                                                      make_group: Callable[..., Group]) -> None:
    private = make_group("hidden")
    public = make_group("open", visibility="public")
    anonymous = gitlab.Gitlab(url)

    with pytest.raises(glexc.GitlabAuthenticationError) as info:
        anonymous.groups.create({"name": "Nobody's", "path": unique("nobody")})
    assert info.value.response_code == 401
    assert info.value.error_message == "401 Unauthorized"

    assert anonymous.groups.get(public.id).full_path == public.path
    with pytest.raises(glexc.GitlabGetError) as info:
        anonymous.groups.get(private.id)
    assert info.value.response_code == 404
    assert info.value.error_message == "404 Group Not Found"
    listed = ids(anonymous.groups.list(get_all=True))
    assert public.id in listed
    assert private.id not in listed


def test_subgroups_descendants_and_full_paths(gl: gitlab.Gitlab, make_group: Callable[..., Group]) -> None:
    top = make_group("top")
    child = make_group("child", parent=top)
    grandchild = make_group("grand", parent=child)
    sibling = make_group("sibling", parent=top)

    assert child.parent_id == top.id
    assert child.full_path == f"{top.path}/{child.path}"
    assert child.full_name == f"{top.name} / {child.name}"
    assert grandchild.parent_id == child.id
    assert grandchild.full_path == f"{top.path}/{child.path}/{grandchild.path}"
    assert grandchild.full_name == f"{top.name} / {child.name} / {grandchild.name}"

    subgroups = top.subgroups.list(get_all=True)
    assert all(isinstance(g, GroupSubgroup) for g in subgroups)
    assert sorted(ids(subgroups)) == sorted([child.id, sibling.id])
    descendants = top.descendant_groups.list(get_all=True)
    assert all(isinstance(g, GroupDescendantGroup) for g in descendants)
    assert sorted(ids(descendants)) == sorted([child.id, sibling.id, grandchild.id])
    assert {g.id: g.full_path for g in descendants}[grandchild.id] == grandchild.full_path
    assert ids(child.subgroups.list(get_all=True)) == [grandchild.id]
    assert ids(grandchild.subgroups.list(get_all=True)) == []
    assert ids(grandchild.descendant_groups.list(get_all=True)) == []

    # A group by its full path: python-gitlab sends it URL-encoded (top%2Fchild).
    assert gl.groups.get(top.path).id == top.id
    by_path = gl.groups.get(child.full_path)
    assert (by_path.id, by_path.parent_id, by_path.full_path) == (child.id, top.id, child.full_path)
    assert gl.groups.get(grandchild.full_path).id == grandchild.id
    assert gl.groups.get(grandchild.full_path.upper()).id == grandchild.id, "full paths match in any case"
    lazy = gl.groups.get(child.full_path, lazy=True)
    assert ids(lazy.subgroups.list(get_all=True)) == [grandchild.id]
    with pytest.raises(glexc.GitlabGetError) as info:
        gl.groups.get(f"{top.path}/{unique('nosuch')}")
    assert info.value.response_code == 404
    assert info.value.error_message == "404 Group Not Found"

    # Paths are unique among siblings only.
    elsewhere = make_group("other", parent=child, path=sibling.path)
    assert elsewhere.full_path == f"{child.full_path}/{sibling.path}"
    with pytest.raises(glexc.GitlabCreateError) as info:
        gl.groups.create({"name": "Twin", "path": sibling.path, "parent_id": top.id})
    assert info.value.response_code == 400
    assert info.value.error_message == 'Failed to save group {:path=>["has already been taken"]}'

    assert ids(gl.groups.list(search=top.path, top_level_only=True, get_all=True)) == [top.id]
    # Without a parent, GitLab's search matches full paths and full names,
    # so a group's name finds the groups below it too ...
    found = ids(gl.groups.list(search=top.path, get_all=True))
    assert sorted(found) == sorted([top.id, child.id, grandchild.id, sibling.id, elsewhere.id])
    assert ids(gl.groups.list(search=f"{top.name} / {child.name} / {grandchild.name}",
                              get_all=True)) == [grandchild.id]
    # ... while below a parent it matches the subgroup's own name and path.
    assert ids(top.subgroups.list(search=top.path, get_all=True)) == []
    assert ids(top.subgroups.list(search=sibling.path, get_all=True)) == [sibling.id]


def test_list_search_order_skip_and_pages(gl: gitlab.Gitlab, make_group: Callable[..., Group]) -> None:
    marker = f"m{secrets.token_hex(5)}"
    # Made in an order that is neither the names' nor the paths' order.
    gamma = make_group("g", name=f"Gamma {marker}", path=f"{marker}-a")
    alpha = make_group("a", name=f"Alpha {marker}", path=f"{marker}-c")
    beta = make_group("b", name=f"Beta {marker}", path=f"{marker}-b")
    top_level = [gamma.id, alpha.id, beta.id]

    def listed(**filters: Any) -> list[int]:
        return ids(gl.groups.list(search=marker, top_level_only=True, get_all=True, **filters))

    # GitLab orders by name, ascending, unless asked otherwise.
    assert listed() == [alpha.id, beta.id, gamma.id]
    assert listed(order_by="name", sort="desc") == [gamma.id, beta.id, alpha.id]
    assert listed(order_by="id") == sorted(top_level)
    assert listed(order_by="id", sort="desc") == sorted(top_level, reverse=True)
    assert listed(order_by="path") == [gamma.id, beta.id, alpha.id]
    assert listed(skip_groups=[alpha.id]) == [beta.id, gamma.id]
    assert listed(skip_groups=[alpha.id, gamma.id]) == [beta.id]
    assert ids(gl.groups.list(search=f"alpha {marker}", get_all=True)) == [alpha.id]
    assert ids(gl.groups.list(search=f"no-such-{marker}", get_all=True)) == []

    # Pages: get_all follows the Link headers; the iterator reads X-Total.
    assert listed(per_page=1) == [alpha.id, beta.id, gamma.id]
    it = gl.groups.list(search=marker, top_level_only=True, iterator=True, per_page=2)
    assert (it.total, it.total_pages, it.per_page) == (3, 2, 2)
    assert ids(it) == [alpha.id, beta.id, gamma.id]
    page2 = gl.groups.list(search=marker, top_level_only=True, per_page=2, page=2)
    assert ids(page2) == [gamma.id]

    with pytest.raises(glexc.GitlabListError) as info:
        gl.groups.list(order_by="size", get_all=True)
    assert info.value.response_code == 400
    assert info.value.error_message == "order_by does not have a valid value"


# --- who sees which groups ---------------------------------------------------------


def test_owned_and_min_access_level(gl: gitlab.Gitlab, make_group: Callable[..., Group],
                                    make_client: Callable[..., Any]) -> None:
    user, user_gl = make_client("levels")
    as_guest = make_group("guest")
    as_developer = make_group("developer")
    below_developer = make_group("below", parent=as_developer)
    as_maintainer = make_group("maintainer")
    unrelated = make_group("unrelated")
    public_unrelated = make_group("public", visibility="public")
    for group, access_level in ((as_guest, GUEST), (as_developer, DEVELOPER), (as_maintainer, MAINTAINER)):
        group.members.create({"user_id": user.id, "access_level": access_level})
    own = make_group("own", client=user_gl)
    assert levels(own.members.list(get_all=True)) == {user.id: OWNER}

    def listed(**filters: Any) -> set[int]:
        return set(ids(user_gl.groups.list(get_all=True, **filters)))

    mine = {as_guest.id, as_developer.id, below_developer.id, as_maintainer.id, own.id}
    # A user's list is their groups (and the groups below them), unless they
    # ask for all they may see.
    assert listed() == mine
    assert listed(all_available=False) == mine
    everything = listed(all_available=True)
    assert mine | {public_unrelated.id} <= everything
    assert unrelated.id not in everything
    # min_access_level: direct memberships at that level or above, and
    # the groups below them; 5 (minimal access) means any membership.
    assert listed(min_access_level=5) == mine
    assert listed(min_access_level=GUEST) == mine
    assert listed(min_access_level=PLANNER) == mine - {as_guest.id}
    assert listed(min_access_level=REPORTER) == mine - {as_guest.id}
    assert listed(min_access_level=DEVELOPER) == mine - {as_guest.id}
    assert listed(min_access_level=MAINTAINER) == {as_maintainer.id, own.id}
    assert listed(min_access_level=OWNER) == {own.id}
    assert listed(min_access_level=DEVELOPER, all_available=True) == mine - {as_guest.id}
    # owned: groups where they are a direct Owner.
    assert listed(owned=True) == {own.id}
    assert listed(owned=True, search=own.path) == {own.id}

    with pytest.raises(glexc.GitlabListError) as info:
        user_gl.groups.list(min_access_level=25, get_all=True)
    assert info.value.response_code == 400
    assert info.value.error_message == "min_access_level does not have a valid value"

    # Root (an administrator) sees every group, and owns those it made.
    assert {unrelated.id, own.id} <= set(ids(gl.groups.list(get_all=True)))
    root_owned = set(ids(gl.groups.list(owned=True, get_all=True)))
    assert {as_guest.id, unrelated.id} <= root_owned
    assert own.id not in root_owned

    # Everything of theirs is readable; nothing else is.
    for group in (as_guest, below_developer, own):
        assert user_gl.groups.get(group.id).full_path == group.full_path
    with pytest.raises(glexc.GitlabGetError) as info:
        user_gl.groups.get(unrelated.id)
    assert info.value.response_code == 404
    assert info.value.error_message == "404 Group Not Found"
    with pytest.raises(glexc.GitlabGetError) as info:
        user_gl.groups.get(unrelated.full_path)
    assert info.value.response_code == 404


# --- members -------------------------------------------------------------------------


def test_member_lifecycle(gl: gitlab.Gitlab, root: Any, make_group: Callable[..., Group],
                          make_user: Callable[..., User]) -> None:
    group = make_group("members")
    alice = make_user("alice")
    bob = make_user("bob")
    expiry = in_days(30)

    added = group.members.create({"user_id": alice.id, "access_level": DEVELOPER, "expires_at": expiry})
    assert isinstance(added, GroupMember)
    assert added.id == alice.id, "a member's id is the user's"
    assert added.username == alice.username
    assert added.name == alice.name
    assert added.state == "active"
    assert added.access_level == DEVELOPER
    assert added.expires_at == expiry
    assert TIMESTAMP.match(added.created_at), added.created_at
    assert added.created_by["id"] == root.id
    assert added.created_by["username"] == "root"

    by_name = group.members.create({"username": bob.username, "access_level": GUEST})
    assert (by_name.id, by_name.access_level, by_name.expires_at) == (bob.id, GUEST, None)

    assert levels(group.members.list(get_all=True)) == {root.id: OWNER, alice.id: DEVELOPER, bob.id: GUEST}
    assert ids(group.members.list(user_ids=[alice.id, UNKNOWN_ID], get_all=True)) == [alice.id]
    assert ids(group.members.list(query=bob.username, get_all=True)) == [bob.id]
    assert gl.groups.get(group.full_path, lazy=True).members.get(alice.id).access_level == DEVELOPER

    # Change through the object (PUT /groups/:id/members/:user_id) ...
    member = group.members.get(bob.id)
    member.access_level = MAINTAINER
    member.save()
    assert member.access_level == MAINTAINER
    member.access_level = MAINTAINER  # python-gitlab requires access_level on every update
    member.expires_at = in_days(60)
    member.save()
    assert (member.access_level, member.expires_at) == (MAINTAINER, in_days(60))
    fetched = group.members.get(bob.id)
    assert (fetched.access_level, fetched.expires_at) == (MAINTAINER, in_days(60))
    # ... or through the manager; an empty expires_at takes the expiry away.
    updated = group.members.update(bob.id, {"access_level": REPORTER, "expires_at": ""})
    assert (updated["id"], updated["access_level"], updated["expires_at"]) == (bob.id, REPORTER, None)
    assert group.members.get(bob.id).expires_at is None

    # Remove by id, and through the object.
    group.members.delete(alice.id)
    with pytest.raises(glexc.GitlabGetError) as info:
        group.members.get(alice.id)
    assert info.value.response_code == 404
    assert info.value.error_message == "404 Not found"
    with pytest.raises(glexc.GitlabDeleteError) as info:
        group.members.delete(alice.id)
    assert info.value.response_code == 404
    group.members.get(bob.id).delete()
    assert levels(group.members.list(get_all=True)) == {root.id: OWNER}
    # Leaving a group does not touch the user.
    assert gl.users.get(alice.id).state == "active"


def test_member_errors(gl: gitlab.Gitlab, root: Any, make_group: Callable[..., Group],
                       make_user: Callable[..., User]) -> None:
    group = make_group("memerr")
    user = make_user("memerr")
    group.members.create({"user_id": user.id, "access_level": REPORTER})

    with pytest.raises(glexc.GitlabCreateError) as info:
        group.members.create({"user_id": user.id, "access_level": DEVELOPER})
    assert info.value.response_code == 409
    assert info.value.error_message == "Member already exists"
    assert group.members.get(user.id).access_level == REPORTER

    with pytest.raises(glexc.GitlabCreateError) as info:
        group.members.create({"user_id": UNKNOWN_ID, "access_level": GUEST})
    assert info.value.response_code == 404
    assert info.value.error_message == "404 User Not Found"
    with pytest.raises(glexc.GitlabCreateError) as info:
        group.members.create({"username": unique("nobody"), "access_level": GUEST})
    assert info.value.response_code == 404
    assert info.value.error_message == "404 User Not Found"

    other = make_user("memerr")
    # Not one of GitLab's levels. (Only the status is checked: GitLab's
    # body comes from its model's validation, see the report.)
    with pytest.raises(glexc.GitlabCreateError) as info:
        group.members.create({"user_id": other.id, "access_level": 25})
    assert info.value.response_code == 400
    with pytest.raises(glexc.GitlabUpdateError) as info:
        group.members.update(user.id, {"access_level": 99})
    assert info.value.response_code == 400
    assert group.members.get(user.id).access_level == REPORTER
    with pytest.raises(glexc.GitlabCreateError) as info:
        group.members.create({"user_id": other.id, "access_level": GUEST, "expires_at": in_days(-1)})
    assert info.value.response_code == 400
    assert info.value.error_message == {"expires_at": ["cannot be a date in the past"]}
    # python-gitlab refuses both user_id and username; GitLab does too.
    with pytest.raises(AttributeError):
        group.members.create({"user_id": other.id, "username": other.username, "access_level": GUEST})
    with pytest.raises(glexc.GitlabHttpError) as info:
        gl.http_post(f"/groups/{group.id}/members",
                     post_data={"user_id": other.id, "username": other.username, "access_level": GUEST})
    assert info.value.response_code == 400
    assert info.value.error_message == "user_id, username are mutually exclusive"
    assert other.id not in levels(group.members.list(get_all=True))

    # Not a member: 404 on read, change and removal.
    with pytest.raises(glexc.GitlabGetError) as info:
        group.members.get(other.id)
    assert (info.value.response_code, info.value.error_message) == (404, "404 Not found")
    with pytest.raises(glexc.GitlabUpdateError) as info:
        group.members.update(other.id, {"access_level": GUEST})
    assert info.value.response_code == 404
    with pytest.raises(glexc.GitlabDeleteError) as info:
        group.members.delete(other.id)
    assert info.value.response_code == 404
    with pytest.raises(glexc.GitlabListError) as info:
        gl.groups.get(UNKNOWN_ID, lazy=True).members.list(get_all=True)
    assert (info.value.response_code, info.value.error_message) == (404, "404 Group Not Found")

    # The last Owner of a group can be neither demoted nor removed, not
    # even by an administrator.
    with pytest.raises(glexc.GitlabUpdateError) as info:
        group.members.update(root.id, {"access_level": MAINTAINER})
    assert (info.value.response_code, info.value.error_message) == (403, "403 Forbidden")
    with pytest.raises(glexc.GitlabDeleteError) as info:
        group.members.delete(root.id)
    assert (info.value.response_code, info.value.error_message) == (403, "403 Forbidden")
    # With a second Owner, the first may go.
    group.members.update(user.id, {"access_level": OWNER})
    group.members.update(root.id, {"access_level": MAINTAINER})
    assert levels(group.members.list(get_all=True)) == {root.id: MAINTAINER, user.id: OWNER}
    with pytest.raises(glexc.GitlabDeleteError) as info:
        group.members.delete(user.id)
    assert info.value.response_code == 403
    group.members.delete(root.id)
    assert levels(group.members.list(get_all=True)) == {user.id: OWNER}


def test_inherited_members(gl: gitlab.Gitlab, root: Any, make_group: Callable[..., Group],
                           make_user: Callable[..., User]) -> None:
    top = make_group("inherit")
    sub = make_group("sub", parent=top)
    user = make_user("inherit")
    top.members.create({"user_id": user.id, "access_level": DEVELOPER})

    # /members lists the direct members; /members/all those inherited too.
    assert levels(sub.members.list(get_all=True)) == {root.id: OWNER}
    everyone = sub.members_all.list(get_all=True)
    assert all(isinstance(m, GroupMemberAll) for m in everyone)
    assert levels(everyone) == {root.id: OWNER, user.id: DEVELOPER}
    assert sub.members_all.get(user.id).access_level == DEVELOPER
    with pytest.raises(glexc.GitlabGetError) as info:
        sub.members.get(user.id)
    assert info.value.response_code == 404
    assert levels(top.members_all.list(get_all=True)) == {root.id: OWNER, user.id: DEVELOPER}

    # A direct membership may not be below the inherited one ...
    with pytest.raises(glexc.GitlabCreateError) as info:
        sub.members.create({"user_id": user.id, "access_level": REPORTER})
    assert info.value.response_code == 400
    assert info.value.error_message == {
        "access_level": [f"should be greater than or equal to Developer inherited membership from group {top.name}"]
    }
    # ... but may be above it; /members/all then shows the higher one, once.
    sub.members.create({"user_id": user.id, "access_level": MAINTAINER})
    assert levels(sub.members.list(get_all=True)) == {root.id: OWNER, user.id: MAINTAINER}
    all_rows = [m for m in sub.members_all.list(get_all=True) if m.id == user.id]
    assert [m.access_level for m in all_rows] == [MAINTAINER]
    assert sub.members_all.get(user.id).access_level == MAINTAINER

    # Removing a member from a group removes them from its subgroups too.
    top.members.delete(user.id)
    assert levels(sub.members_all.list(get_all=True)) == {root.id: OWNER}
    with pytest.raises(glexc.GitlabGetError) as info:
        sub.members_all.get(user.id)
    assert info.value.response_code == 404


def test_roles_decide_what_members_may_do(gl: gitlab.Gitlab, make_group: Callable[..., Group],
                                          make_client: Callable[..., Any],
                                          make_user: Callable[..., User]) -> None:
    group = make_group("roles")
    owner, owner_gl = make_client("owner")
    maintainer, maintainer_gl = make_client("maint")
    developer, developer_gl = make_client("dev")
    stranger, stranger_gl = make_client("stranger")
    newcomer = make_user("newcomer")
    for user, access_level in ((owner, OWNER), (maintainer, MAINTAINER), (developer, DEVELOPER)):
        group.members.create({"user_id": user.id, "access_level": access_level})

    # Developers read the group and its members, and change nothing.
    dev_view = developer_gl.groups.get(group.id)
    assert dev_view.full_path == group.full_path
    assert developer.id in levels(dev_view.members.list(get_all=True))
    with pytest.raises(glexc.GitlabUpdateError) as info:
        developer_gl.groups.update(group.id, {"description": "mine now"})
    assert (info.value.response_code, info.value.error_message) == (403, "403 Forbidden")
    with pytest.raises(glexc.GitlabCreateError) as info:
        dev_view.members.create({"user_id": newcomer.id, "access_level": GUEST})
    assert info.value.response_code == 403
    with pytest.raises(glexc.GitlabUpdateError) as info:
        dev_view.members.update(maintainer.id, {"access_level": GUEST})
    assert info.value.response_code == 403
    with pytest.raises(glexc.GitlabCreateError) as info:
        developer_gl.groups.create({"name": "Dev sub", "path": unique("devsub"), "parent_id": group.id})
    assert (info.value.response_code, info.value.error_message) == (403, "403 Forbidden")
    with pytest.raises(glexc.GitlabDeleteError) as info:
        developer_gl.groups.delete(group.id)
    assert info.value.response_code == 403

    # Maintainers may also make subgroups (GitLab's default), not manage members.
    sub = make_group("maintsub", parent=group, client=maintainer_gl)
    assert sub.parent_id == group.id
    assert levels(sub.members.list(get_all=True)) == {maintainer.id: OWNER}
    with pytest.raises(glexc.GitlabCreateError) as info:
        maintainer_gl.groups.get(group.id, lazy=True).members.create({"user_id": newcomer.id, "access_level": GUEST})
    assert info.value.response_code == 403
    with pytest.raises(glexc.GitlabUpdateError) as info:
        maintainer_gl.groups.update(group.id, {"description": "maintained"})
    assert info.value.response_code == 403

    # Owners manage the group and its members.
    owned = owner_gl.groups.get(group.id)
    owned.description = "owned"
    owned.save()
    assert gl.groups.get(group.id).description == "owned"
    added = owned.members.create({"user_id": newcomer.id, "access_level": REPORTER})
    assert added.created_by["id"] == owner.id
    owned.members.update(developer.id, {"access_level": REPORTER})
    assert group.members.get(developer.id).access_level == REPORTER

    # Strangers do not see a private group at all.
    for call in (lambda: stranger_gl.groups.get(group.id),
                 lambda: stranger_gl.groups.get(group.full_path)):
        with pytest.raises(glexc.GitlabGetError) as info:
            call()
        assert (info.value.response_code, info.value.error_message) == (404, "404 Group Not Found")
    with pytest.raises(glexc.GitlabListError) as info:
        stranger_gl.groups.get(group.id, lazy=True).members.list(get_all=True)
    assert info.value.response_code == 404
    with pytest.raises(glexc.GitlabUpdateError) as info:
        stranger_gl.groups.update(group.id, {"description": "stranger's"})
    assert info.value.response_code == 404
    assert stranger.id not in levels(group.members.list(get_all=True))

    # Members may leave; then the group is hidden from them.
    developer_gl.groups.get(group.id, lazy=True).members.delete(developer.id)
    assert developer.id not in levels(group.members.list(get_all=True))
    with pytest.raises(glexc.GitlabGetError) as info:
        developer_gl.groups.get(group.id)
    assert info.value.response_code == 404


def test_token_scopes(url: str, make_group: Callable[..., Group], make_client: Callable[..., Any]) -> None:
    reader, reader_gl = make_client("readapi", scopes=("read_api",))
    group = make_group("scopes")
    group.members.create({"user_id": reader.id, "access_level": OWNER})

    # read_api reads ...
    assert reader_gl.groups.get(group.id).id == group.id
    assert group.id in ids(reader_gl.groups.list(get_all=True))
    assert reader.id in levels(reader_gl.groups.get(group.id, lazy=True).members.list(get_all=True))
    # ... and writes nothing, even for an Owner.
    with pytest.raises(glexc.GitlabCreateError) as info:
        reader_gl.groups.create({"name": "Read only", "path": unique("readonly")})
    assert (info.value.response_code, info.value.error_message) == (403, "insufficient_scope")
    with pytest.raises(glexc.GitlabUpdateError) as info:
        reader_gl.groups.update(group.id, {"description": "read_api"})
    assert (info.value.response_code, info.value.error_message) == (403, "insufficient_scope")

    # read_user is not enough to read groups.
    _, user_only_gl = make_client("readuser", scopes=("read_user",))
    with pytest.raises(glexc.GitlabListError) as info:
        user_only_gl.groups.list(get_all=True)
    assert (info.value.response_code, info.value.error_message) == (403, "insufficient_scope")


# --- update and delete -----------------------------------------------------------------


def test_update_group(url: str, gl: gitlab.Gitlab, make_group: Callable[..., Group]) -> None:
    top = make_group("update")
    child = make_group("child", parent=top)
    other = make_group("other")

    new_name = "Renamed " + secrets.token_hex(3)
    top.name = new_name
    top.description = "described"
    top.save()
    assert (top.name, top.description, top.full_name, top.path) == (new_name, "described", new_name, top.path)
    fetched = gl.groups.get(top.id)
    assert (fetched.name, fetched.description) == (new_name, "described")
    assert gl.groups.get(child.id).full_name == f"{new_name} / {child.name}"

    new_path = unique("moved")
    updated = gl.groups.update(top.id, {"path": new_path})
    assert (updated["path"], updated["full_path"]) == (new_path, new_path)
    assert updated["web_url"] == f"{url}/groups/{new_path}"
    moved = gl.groups.get(child.id)
    assert moved.full_path == f"{new_path}/{child.path}"
    assert moved.web_url == f"{url}/groups/{new_path}/{child.path}"
    assert gl.groups.get(f"{new_path}/{child.path}").id == child.id
    with pytest.raises(glexc.GitlabGetError) as info:
        gl.groups.get(child.full_path)
    assert info.value.response_code == 404

    # A taken path: the model's errors, as a JSON object (unlike POST).
    with pytest.raises(glexc.GitlabUpdateError) as info:
        gl.groups.update(top.id, {"path": other.path})
    assert info.value.response_code == 400
    assert info.value.error_message == {"path": ["has already been taken"]}
    with pytest.raises(glexc.GitlabUpdateError) as info:
        gl.groups.update(top.id, {"visibility": "secret"})
    assert (info.value.response_code, info.value.error_message) == (400, "visibility does not have a valid value")
    assert gl.groups.get(top.id).path == new_path

    # Made public, anyone may read it.
    anonymous = gitlab.Gitlab(url)
    with pytest.raises(glexc.GitlabGetError):
        anonymous.groups.get(top.id)
    gl.groups.update(top.id, {"visibility": "public"})
    assert anonymous.groups.get(top.id).visibility == "public"


def test_delete_group(url: str, gl: gitlab.Gitlab, make_group: Callable[..., Group],
                      make_user: Callable[..., User]) -> None:
    top = make_group("delete")
    child = make_group("child", parent=top)
    member = make_user("delete")
    top.members.create({"user_id": member.id, "access_level": DEVELOPER})
    app = new_group_app(gl, top.id)

    def client_credentials() -> requests.Response:
        return requests.post(f"{url}/oauth/token", data={"grant_type": "client_credentials", "scope": "read_user"},
                             auth=(app["application_id"], app["secret"]), timeout=30)

    assert client_credentials().status_code == 200

    # GitLab answers 202 Accepted; latchkey deletes at once.
    res = gl.http_delete(f"/groups/{top.id}")
    assert isinstance(res, requests.Response)
    assert res.status_code == 202
    assert res.json() == {"message": "202 Accepted"}
    for group_id in (top.id, child.id, top.full_path, child.full_path):
        with pytest.raises(glexc.GitlabGetError) as info:
            gl.groups.get(group_id)
        assert (info.value.response_code, info.value.error_message) == (404, "404 Group Not Found")
    with pytest.raises(glexc.GitlabDeleteError) as info:
        gl.groups.delete(top.id)
    assert (info.value.response_code, info.value.error_message) == (404, "404 Group Not Found")
    assert gl.users.get(member.id).state == "active", "deleting a group keeps its members' accounts"
    # The group's applications went with it: their credentials no longer work.
    res = client_credentials()
    assert res.status_code == 401, res.text
    assert res.json()["error"] == "invalid_client"

    # Through the object, and by full path; a subgroup alone.
    by_object = make_group("byobject")
    by_object.delete()
    by_path = make_group("bypath")
    sub = make_group("sub", parent=by_path)
    gl.groups.delete(sub.full_path)
    assert ids(by_path.subgroups.list(get_all=True)) == []
    gl.groups.delete(by_path.full_path)
    for group in (by_object, by_path, sub):
        with pytest.raises(glexc.GitlabGetError):
            gl.groups.get(group.id)


# --- group applications ---------------------------------------------------------------


def test_group_applications(url: str, gl: gitlab.Gitlab, make_group: Callable[..., Group],
                            make_client: Callable[..., Any]) -> None:
    group = make_group("apps")
    other = make_group("otherapps")

    name = unique("gapp")
    app = new_group_app(gl, group.id, name=name, scopes="read_user openid", confidential=False)
    assert set(app) == APP_ATTRS | {"secret"}
    assert isinstance(app["id"], int)
    assert HEX64.match(app["application_id"]), app
    assert SECRET.match(app["secret"]), app
    assert (app["application_name"], app["callback_url"], app["confidential"], app["scopes"]) == (
        name, REDIRECT_URI, False, ["read_user", "openid"])
    second = new_group_app(gl, encoded(group.full_path))
    assert second["confidential"] is True, "confidential defaults to true"
    foreign = new_group_app(gl, other.id)

    listed = gl.http_list(f"/groups/{group.id}/applications", get_all=True)
    assert [a["id"] for a in listed] == [app["id"], second["id"]]
    assert all(set(a) == APP_ATTRS for a in listed), "no secrets in the list"
    assert [a["id"] for a in gl.http_list(f"/groups/{encoded(group.full_path)}/applications",
                                          get_all=True)] == [app["id"], second["id"]]
    one = gl.http_get(f"/groups/{group.id}/applications/{app['id']}")
    assert one == {k: v for k, v in app.items() if k != "secret"}
    # Group applications are not the instance's.
    instance_ids = {a.id for a in gl.applications.list(get_all=True)}
    assert not instance_ids & {app["id"], second["id"], foreign["id"]}

    # PUT changes the name and scopes; the redirect URI stays.
    changed = gl.http_put(f"/groups/{group.id}/applications/{app['id']}",
                          post_data={"name": "Renamed app", "scopes": "read_api",
                                     "redirect_uri": "https://elsewhere.example/cb"})
    assert (changed["id"], changed["application_name"], changed["scopes"], changed["callback_url"]) == (
        app["id"], "Renamed app", ["read_api"], REDIRECT_URI)
    assert changed["application_id"] == app["application_id"]
    assert "secret" not in changed

    # Another group's application is not found here.
    for call in (lambda: gl.http_get(f"/groups/{group.id}/applications/{foreign['id']}"),
                 lambda: gl.http_put(f"/groups/{group.id}/applications/{foreign['id']}",
                                     post_data={"name": "stolen"}),
                 lambda: gl.http_delete(f"/groups/{group.id}/applications/{foreign['id']}"),
                 lambda: gl.http_get(f"/groups/{group.id}/applications/{UNKNOWN_ID}")):
        with pytest.raises(glexc.GitlabHttpError) as info:
            call()
        assert (info.value.response_code, info.value.error_message) == (404, "404 Application Not Found")
    assert gl.http_get(f"/groups/{other.id}/applications/{foreign['id']}")["application_name"] == foreign[
        "application_name"]

    # Owners only: a Maintainer is refused, a stranger does not see the group.
    maintainer, maintainer_gl = make_client("appmaint")
    group.members.create({"user_id": maintainer.id, "access_level": MAINTAINER})
    _, stranger_gl = make_client("appstranger")
    for client, status in ((maintainer_gl, 403), (stranger_gl, 404)):
        with pytest.raises(glexc.GitlabHttpError) as info:
            client.http_list(f"/groups/{group.id}/applications", get_all=True)
        assert info.value.response_code == status
        with pytest.raises(glexc.GitlabHttpError) as info:
            new_group_app(client, group.id)
        assert info.value.response_code == status
        with pytest.raises(glexc.GitlabHttpError) as info:
            client.http_delete(f"/groups/{group.id}/applications/{app['id']}")
        assert info.value.response_code == status
    owner, owner_gl = make_client("appowner")
    group.members.create({"user_id": owner.id, "access_level": OWNER})
    by_owner = new_group_app(owner_gl, group.id)
    assert SECRET.match(by_owner["secret"])

    # Bad input, as for the other application APIs.
    with pytest.raises(glexc.GitlabHttpError) as info:
        new_group_app(gl, group.id, redirect_uri="http://")
    assert (info.value.response_code, info.value.error_message) == (400, {"redirect_uri": ["must be a valid URI."]})
    with pytest.raises(glexc.GitlabHttpError) as info:
        gl.http_post(f"/groups/{group.id}/applications", post_data={"name": "x", "redirect_uri": REDIRECT_URI})
    assert info.value.response_code == 400

    # Delete: 204, then gone.
    res = gl.http_delete(f"/groups/{group.id}/applications/{second['id']}")
    assert isinstance(res, requests.Response) and res.status_code == 204
    with pytest.raises(glexc.GitlabHttpError) as info:
        gl.http_get(f"/groups/{group.id}/applications/{second['id']}")
    assert info.value.response_code == 404
    assert [a["id"] for a in gl.http_list(f"/groups/{group.id}/applications", get_all=True)] == [
        app["id"], by_owner["id"]]


def test_group_application_is_an_oauth_client(url: str, gl: gitlab.Gitlab, make_group: Callable[..., Group],
                                              make_user: Callable[..., User]) -> None:
    """A group's application signs users in like any other (here with the
    resource owner password grant)."""
    group = make_group("oauth")
    app = new_group_app(gl, group.id, scopes="read_user read_api")
    user = make_user("oauth")
    group.members.create({"user_id": user.id, "access_level": REPORTER})

    res = requests.post(f"{url}/oauth/token", data={
        "grant_type": "password", "username": user.username, "password": PASSWORD,
        "scope": "read_user read_api",
    }, auth=(app["application_id"], app["secret"]), timeout=30)
    assert res.status_code == 200, res.text
    token = res.json()["access_token"]
    user_gl = gitlab.Gitlab(url, oauth_token=token)
    user_gl.auth()
    assert user_gl.user.username == user.username
    assert ids(user_gl.groups.list(get_all=True)) == [group.id]
    assert levels(user_gl.groups.get(group.full_path).members.list(user_ids=[user.id], get_all=True)) == {
        user.id: REPORTER}
