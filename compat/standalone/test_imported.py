"""Compatibility test: moving in from GitLab with the credentials people have.

A database made to GitLab's schema (the columns `latchkey import gitlab`
reads) is created in the PostgreSQL at LATCHKEY_TEST_POSTGRES_URL, with
credentials hashed as GitLab hashes them: an application secret in GitLab's
PBKDF2 form, a password in its PBKDF2 (FIPS) form, a personal access token
digest salted with db_key_base. latchkey imports it into a database of its
own and serves it; python-gitlab then signs in with the GitLab token, and
Authlib's OAuth 2 client gets a token with the GitLab secret and password.
Skipped (and reported so) when LATCHKEY_TEST_POSTGRES_URL is not set.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import gitlab
import psycopg
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from standalone import binary, latchkey_server

DB_KEY_BASE = secrets.token_hex(64)
TOKEN = "glpat-" + secrets.token_hex(10)
CLIENT_ID = secrets.token_hex(32)
CLIENT_SECRET = "gloas-" + secrets.token_hex(32)
PASSWORD = "a gitlab password " + secrets.token_hex(4)
TIMEOUT = 30


def ab64(raw: bytes) -> str:
    """passlib's base64: '.' for '+', no padding."""
    return base64.b64encode(raw).decode().replace("+", ".").rstrip("=")


def pbkdf2_sha512(value: str, salt: bytes) -> str:
    checksum = hashlib.pbkdf2_hmac("sha512", value.encode(), salt, 20000, 64)
    return f"$pbkdf2-sha512$20000${ab64(salt)}${ab64(checksum)}"


def token_digest(token: str) -> str:
    return base64.b64encode(hashlib.sha256((token + DB_KEY_BASE[:32]).encode()).digest()).decode()


FIXTURE = f"""
CREATE TABLE users (id bigint PRIMARY KEY, email varchar, encrypted_password varchar,
    username varchar, name varchar, admin boolean, state varchar, user_type smallint);
CREATE TABLE namespaces (id bigint PRIMARY KEY, name varchar, path varchar, parent_id bigint,
    type varchar, visibility_level integer, description text);
CREATE TABLE members (id bigint PRIMARY KEY, access_level integer, source_id bigint,
    source_type varchar, user_id bigint, type varchar, expires_at date, requested_at timestamp);
CREATE TABLE oauth_applications (id bigint PRIMARY KEY, name varchar, uid varchar, secret varchar,
    redirect_uri text, scopes varchar, owner_id bigint, owner_type varchar, trusted boolean,
    confidential boolean, ropc_enabled boolean);
CREATE TABLE personal_access_tokens (id bigint PRIMARY KEY, user_id bigint, name varchar,
    token_digest varchar, scopes varchar, expires_at date, revoked boolean);
INSERT INTO users VALUES
  (1, 'admin@gitlab.example', '', 'root', 'Administrator', TRUE, 'active', NULL),
  (2, 'gl-alice@gitlab.example', '{pbkdf2_sha512(PASSWORD, secrets.token_bytes(8))}', 'gl-alice',
   'Alice from GitLab', FALSE, 'active', NULL);
INSERT INTO namespaces VALUES (10, 'GL Group', 'gl-group', NULL, 'Group', 0, 'From GitLab');
INSERT INTO members VALUES (1, 50, 10, 'Namespace', 2, 'GroupMember', NULL, NULL);
INSERT INTO oauth_applications VALUES
  (1, 'GitLab client', '{CLIENT_ID}', '{pbkdf2_sha512(CLIENT_SECRET, b"")}',
   'https://client.example/cb', 'api read_user', NULL, NULL, FALSE, TRUE, TRUE);
INSERT INTO personal_access_tokens VALUES
  (1, 2, 'laptop', '{token_digest(TOKEN)}', E'---\\n- api\\n- read_user\\n', NULL, FALSE);
"""


@pytest.fixture(scope="module")
def gitlab_db() -> Iterator[str]:
    admin = os.environ.get("LATCHKEY_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip("LATCHKEY_TEST_POSTGRES_URL is not set: no PostgreSQL for a GitLab database")
    name = f"latchkey_compat_gitlab_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(admin)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FIXTURE)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def url(gitlab_db: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        secrets_file = os.path.join(tmp, "gitlab-secrets.json")
        with open(secrets_file, "w", encoding="utf-8") as f:
            json.dump({"gitlab_rails": {"db_key_base": DB_KEY_BASE}}, f)
        database = f"sqlite://{tmp}/latchkey.db?mode=rwc"
        env = {**os.environ, "LATCHKEY_DATABASE_URL": database, "LATCHKEY_LOG": "warn"}
        command = [binary(), "import", "gitlab", "--from", gitlab_db,
                   "--gitlab-secrets", secrets_file]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 personal access tokens" in done.stdout, done.stdout
        with latchkey_server({"LATCHKEY_DATABASE_URL": database,
                              "LATCHKEY_GITLAB_DB_KEY_BASE": DB_KEY_BASE}) as base:
            yield base


def test_python_gitlab_signs_in_with_a_token_made_by_gitlab(url: str) -> None:
    gl = gitlab.Gitlab(url, private_token=TOKEN)
    gl.auth()
    assert gl.user is not None
    assert gl.user.username == "gl-alice"
    assert gl.user.name == "Alice from GitLab"
    groups = gl.groups.list(get_all=True)
    assert [g.full_path for g in groups] == ["gl-group"]
    members = gl.groups.get("gl-group").members.list(get_all=True)
    assert [(m.username, m.access_level) for m in members] == [("gl-alice", 50)]


def test_an_oauth_client_keeps_its_gitlab_secret_and_the_user_their_password(url: str) -> None:
    client = OAuth2Session(CLIENT_ID, CLIENT_SECRET, scope="read_user")
    for _ in range(2):  # the second time against latchkey's own digests
        token = client.fetch_token(f"{url}/oauth/token", grant_type="password",
                                   username="gl-alice", password=PASSWORD)
        me = requests.get(f"{url}/api/v4/user",
                          headers={"Authorization": f"Bearer {token['access_token']}"},
                          timeout=TIMEOUT)
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "gl-alice"
