"""Fixtures for python-gitlab's own functional tests, run against latchkey.

compat/python-gitlab-upstream/run.sh copies the upstream test modules that
apply (users, and authenticating from a configuration file) out of the
python-gitlab release pinned in compat/requirements.txt, unchanged, next to
this file. Only how they reach the server differs from upstream: upstream's
fixtures start GitLab in Docker and reset it; these point the same fixture
names at the latchkey that compat/run.sh started (LATCHKEY_URL, and root's
token in LATCHKEY_TOKEN).
"""

from __future__ import annotations

import os
import pathlib
import uuid

import gitlab
import pytest


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through compat/run.sh", pytrace=False)
    return value


@pytest.fixture(scope="session")
def gitlab_url() -> str:
    return _env("LATCHKEY_URL").rstrip("/")


@pytest.fixture(scope="session")
def gitlab_token() -> str:
    return _env("LATCHKEY_TOKEN")


@pytest.fixture(scope="session")
def gl(gitlab_url: str, gitlab_token: str) -> gitlab.Gitlab:
    instance = gitlab.Gitlab(gitlab_url, private_token=gitlab_token)
    instance.auth()
    return instance


@pytest.fixture(scope="session")
def test_dir() -> pathlib.Path:
    return pathlib.Path(__file__).parent


@pytest.fixture(scope="session")
def fixture_dir(test_dir: pathlib.Path) -> pathlib.Path:
    return test_dir / "fixtures"


@pytest.fixture(scope="session")
def temp_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("python-gitlab")


@pytest.fixture(scope="session")
def gitlab_config(gitlab_url: str, gitlab_token: str, temp_dir: pathlib.Path) -> pathlib.Path:
    config_file = temp_dir / "python-gitlab.cfg"
    config_file.write_text(
        "[global]\ndefault = local\ntimeout = 60\n\n"
        f"[local]\nurl = {gitlab_url}\nprivate_token = {gitlab_token}\napi_version = 4\n",
        encoding="utf-8",
    )
    return config_file


@pytest.fixture
def user(gl: gitlab.Gitlab):
    """A user for one test, as upstream's fixture makes it; deleted after."""
    _id = uuid.uuid4().hex
    made = gl.users.create(
        email=f"user{_id}@email.com",
        username=f"user{_id}",
        name=f"User {_id}",
        password="E4596f8be406Bc3a14a4ccdb1df80587",
    )
    yield made
    try:
        made.delete()
    except gitlab.exceptions.GitlabDeleteError:
        pass


@pytest.fixture(scope="module")
def group(gl: gitlab.Gitlab):
    """A group for one module, as upstream's fixture makes it; deleted after."""
    _id = uuid.uuid4().hex
    made = gl.groups.create({"name": f"test-group-{_id}", "path": f"group-{_id}"})
    yield made
    try:
        made.delete()
    except gitlab.exceptions.GitlabDeleteError:
        pass


def pytest_configure(config: pytest.Config) -> None:
    # Upstream's own markers (its conftest registers them).
    config.addinivalue_line("markers", "gitlab_premium: needs GitLab Premium")
    config.addinivalue_line("markers", "gitlab_ultimate: needs GitLab Ultimate")
