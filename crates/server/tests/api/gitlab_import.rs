//! `latchkey import gitlab` from a database made to GitLab's schema (only
//! the columns it reads, plus one it must ignore), with credentials hashed
//! as GitLab hashes them: bcrypt and PBKDF2 passwords, PBKDF2, SHA-512 and
//! plain application secrets, a token digest salted with db_key_base.
//! Runs when LATCHKEY_TEST_POSTGRES_URL is set (CI always sets it).

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor};

use crate::helpers::{PostgresDb, RequestAs};
use crate::process::{cli, start_with, wait_ready};

// The reference's vectors (section 5) and devise-pbkdf2-encryptable's.
const SECRET: &str = "gloas-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SECRET_PBKDF2: &str = "$pbkdf2-sha512$20000$$ozOtvsW1HzNJqjeaNwqcBO3TB51H9F7d8qh3OREHWDDPEVKseRVrW3YE1ef4Q2t58BgR924o0pV.bk452f5.mQ";
const SECRET_SHA512: &str = "e98c793874c1ed84c87df291506556e4356698b6974ec7034a9defe7ac57ab81c10f5f7ae18a331abf80612166e889f6f1c0f61e817d3635b65cb0e0c26cd923";
const FIPS_PASSWORD_HASH: &str = "$pbkdf2-sha512$20000$boHGAw0hEyI$DBA67J7zNZebyzLtLk2X9wRDbmj1LNKVGnZLYyz6PGrIDGIl45fl/BPH0y1TPZnV90A20i.fD9C3G9Bp8jzzOA";
const PLAIN_SECRET: &str = "an-old-plain-text-secret-0001";
const DB_KEY_BASE: &str = "0123456789abcdef0123456789abcdefTHE-REST-IS-NOT-USED";
const TOKEN: &str = "glpat-imported-from-gitlab-01";
const ROOT: &str = "glpat-import-root-token-0123456";

fn gitlab_token_digest(token: &str) -> String {
    let digest = Sha256::new()
        .chain_update(token)
        .chain_update(&DB_KEY_BASE[..32])
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

async fn gitlab_fixture(url: &str) {
    let alice = bcrypt::hash("alice gitlab password", 4).unwrap();
    let root = bcrypt::hash("root gitlab password", 4).unwrap();
    let token = gitlab_token_digest(TOKEN);
    let sql = format!(
        r#"
CREATE TABLE users (id integer PRIMARY KEY, email varchar NOT NULL, encrypted_password varchar,
    username varchar, name varchar, admin boolean, state varchar, user_type smallint,
    theme_id integer);
CREATE TABLE namespaces (id integer PRIMARY KEY, name varchar, path varchar, parent_id integer,
    type varchar, visibility_level integer, description text);
CREATE TABLE members (id integer PRIMARY KEY, access_level integer, source_id integer,
    source_type varchar, user_id integer, type varchar, expires_at date, requested_at timestamp);
CREATE TABLE oauth_applications (id bigint PRIMARY KEY, name varchar, uid varchar, secret varchar,
    redirect_uri text, scopes varchar, owner_id bigint, owner_type varchar, trusted boolean,
    confidential boolean, ropc_enabled boolean);
CREATE TABLE personal_access_tokens (id bigint PRIMARY KEY, user_id bigint, name varchar,
    token_digest varchar, scopes varchar, expires_at date, revoked boolean);

INSERT INTO users VALUES
  (1, 'admin@gitlab.example', '{root}', 'root', 'Administrator', TRUE, 'active', NULL, 1),
  (2, 'alice@gitlab.example', '{alice}', 'alice', 'Alice', FALSE, 'active', 0, 1),
  (3, 'fips@gitlab.example', '{FIPS_PASSWORD_HASH}', 'fips', 'FIPS user', FALSE, 'active', NULL, 1),
  (4, 'gone@gitlab.example', '{alice}', 'gone', 'Gone', FALSE, 'blocked', NULL, 1),
  (5, 'ghost@gitlab.example', '', 'ghost', 'Ghost User', FALSE, 'active', 5, 1),
  (6, 'bot@gitlab.example', '', 'project_1_bot', 'Bot', FALSE, 'active', 6, 1);
INSERT INTO namespaces VALUES
  (100, 'alice', 'alice', NULL, 'User', 0, ''),
  (10, 'Acme', 'acme', NULL, 'Group', 10, 'The company'),
  (11, 'Team', 'team', 10, 'Group', 0, NULL);
INSERT INTO members VALUES
  (1, 50, 10, 'Namespace', 2, 'GroupMember', NULL, NULL),
  (2, 30, 11, 'Namespace', 3, 'GroupMember', '2099-01-31', NULL),
  (3, 10, 11, 'Namespace', 4, 'GroupMember', NULL, now()),
  (4, 40, 77, 'Project', 2, 'ProjectMember', NULL, NULL);
INSERT INTO oauth_applications VALUES
  (1, 'Hashed with PBKDF2', 'uid-pbkdf2', '{SECRET_PBKDF2}', 'https://a.example/cb', 'api read_user',
   NULL, NULL, TRUE, TRUE, TRUE),
  (2, 'Hashed with SHA-512', 'uid-sha512', '{SECRET_SHA512}',
   E'https://b.example/cb\nhttps://b.example/other', 'read_user openid', 2, 'User', FALSE, TRUE, FALSE),
  (3, 'Plain', 'uid-plain', '{PLAIN_SECRET}', 'https://c.example/cb', 'read_api', 10, 'Namespace',
   FALSE, TRUE, FALSE);
INSERT INTO personal_access_tokens VALUES
  (1, 2, 'laptop', '{token}', E'---\n- :api\n- :read_user\n', '2099-12-31', FALSE),
  (2, 2, 'revoked', 'AAAA', E'---\n- api\n', NULL, TRUE);
"#
    );
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    conn.execute(sql.as_str()).await.unwrap();
    conn.close().await.unwrap();
}

async fn token(c: &reqwest::Client, base: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let res = c
        .post(format!("{base}/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn client_credentials(c: &reqwest::Client, base: &str, id: &str, secret: &str) -> u16 {
    let scope = if id == "uid-plain" {
        "read_api"
    } else {
        "read_user"
    };
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("scope", scope),
    ];
    let (status, body) = token(c, base, &form).await;
    if status != 200 {
        eprintln!("client_credentials for {id}: {status} {body}");
    }
    status
}

async fn password(c: &reqwest::Client, base: &str, username: &str, password: &str) -> u16 {
    let form = [
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
        ("client_id", "uid-pbkdf2"),
        ("client_secret", SECRET),
        ("scope", "read_user"),
    ];
    token(c, base, &form).await.0
}

#[tokio::test]
async fn a_gitlab_database_moves_in_with_every_credential_and_imports_twice() {
    let Some(admin) = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("LATCHKEY_TEST_POSTGRES_URL is not set: skipping the GitLab import test");
        return;
    };
    let gitlab = PostgresDb::create(&admin).await;
    gitlab_fixture(&gitlab.url).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("gitlab-secrets.json");
    std::fs::write(
        &secrets,
        format!(
            r#"{{"gitlab_rails": {{"db_key_base": "{DB_KEY_BASE}", "secret_key_base": "x"}}}}"#
        ),
    )
    .unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
    let args = [
        "import",
        "gitlab",
        "--from",
        gitlab.url.as_str(),
        "--gitlab-secrets",
        secrets.to_str().unwrap(),
    ];

    let out = cli(&db, &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("4 users (2 bots and ghost users left out), 2 groups, 2 memberships, 3 applications, 1 personal access tokens"),
        "{stdout}"
    );
    assert!(stdout.contains("create user alice"), "{stdout}");
    assert!(stdout.contains("create group acme/team"), "{stdout}");
    assert!(
        !stdout.contains(SECRET) && !stdout.contains(PLAIN_SECRET),
        "{stdout}"
    );

    // Importing again changes nothing, and says so.
    let again = cli(&db, &args);
    let said = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(
        again.status.success() && said.contains("nothing to change"),
        "{said}"
    );

    // Serve it: the old credentials work.
    let mut server = start_with(&db, ROOT, &[("LATCHKEY_GITLAB_DB_KEY_BASE", DB_KEY_BASE)]);
    wait_ready(&mut server).await;
    let c = reqwest::Client::new();
    let base = server.base.as_str();
    assert_eq!(
        client_credentials(&c, base, "uid-pbkdf2", SECRET).await,
        200
    );
    assert_eq!(
        client_credentials(&c, base, "uid-sha512", SECRET).await,
        200
    );
    assert_eq!(
        client_credentials(&c, base, "uid-plain", PLAIN_SECRET).await,
        200
    );
    assert_eq!(
        client_credentials(&c, base, "uid-pbkdf2", "wrong").await,
        401
    );
    // Twice: the second time against latchkey's own digest.
    assert_eq!(
        client_credentials(&c, base, "uid-pbkdf2", SECRET).await,
        200
    );
    assert_eq!(
        password(&c, base, "alice", "alice gitlab password").await,
        200
    );
    assert_eq!(password(&c, base, "fips", "password").await, 200);
    assert_eq!(password(&c, base, "alice", "not her password").await, 400);
    // Blocked at GitLab, blocked here.
    assert_eq!(
        password(&c, base, "gone", "alice gitlab password").await,
        400
    );
    // ropc_enabled = false: no password grant for that client.
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice gitlab password"),
        ("client_id", "uid-sha512"),
        ("client_secret", SECRET),
    ];
    assert_eq!(token(&c, base, &form).await.0, 400);
    for _ in 0..2 {
        let me: Value = c
            .get(format!("{base}/api/v4/user"))
            .private_token(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["username"], "alice", "{me}");
    }
    let team: Value = c
        .get(format!("{base}/api/v4/groups/acme%2Fteam/members"))
        .private_token(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(team[0]["username"], "fips", "{team}");
    assert_eq!(team[0]["expires_at"], "2099-01-31", "{team}");
    drop(server);

    // After every credential was rewritten to latchkey's own form, an
    // import still finds nothing to change.
    let third = cli(&db, &args);
    let said = String::from_utf8_lossy(&third.stdout).into_owned();
    assert!(
        third.status.success() && said.contains("nothing to change"),
        "{said}"
    );

    // Without GitLab's secrets, tokens are left out, and the import says why.
    let fresh = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let out = cli(&fresh, &args[..4]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("no personal access tokens (give --gitlab-secrets"),
        "{said}"
    );
}
