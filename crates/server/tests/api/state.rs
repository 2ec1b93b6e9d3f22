//! Declarative state through the services and the HTTP API, on the
//! backend under test: apply, apply again, dry runs, bad files, pruning,
//! export and restore, imported password hashes, concurrent applies.

use serde_json::Value;

use crate::helpers::{RequestAs, TestApp};
use latchkey_core::context::Context;
use latchkey_core::state::{Applied, ApplyOptions, StateFile};

const ALICE_TOKEN: &str = "glpat-state-alice-token-000001";
const CLIENT_SECRET: &str = "grafana-state-secret-value";

/// The issue's example shape, with a client that may use
/// `client_credentials` and `password` for the checks.
fn sample() -> String {
    format!(
        r#"
[[users]]
username = "alice"
email = "alice@example.com"
name = "Alice"
password = "correct horse battery"
admin = false

[[users.tokens]]
name = "ci"
scopes = ["api", "read_user"]
token = "{ALICE_TOKEN}"
expires_at = "2099-12-31"

[[users.tokens]]
name = "generated"
scopes = ["read_api"]

[[users]]
username = "bob"
email = "bob@example.com"

[[groups]]
path = "platform"
name = "Platform"
members = [{{ username = "alice", access_level = 50 }}]

[[groups]]
path = "team"
parent = "platform"
members = [{{ username = "bob", access_level = 30 }}]

[[applications]]
name = "Grafana"
redirect_uris = ["https://grafana.example/login/gitlab"]
scopes = ["read_user", "openid"]
confidential = true
trusted = true
grant_types = ["authorization_code", "refresh_token", "client_credentials", "password"]
owner = "alice"
application_id = "grafana-client-id"
secret = "{CLIENT_SECRET}"

[[applications]]
name = "Team tool"
redirect_uris = "https://team.example/cb"
scopes = "api"
group = "platform/team"

[[applications]]
name = "Instance tool"
redirect_uris = ["https://tool.example/cb"]
scopes = ["read_user"]
"#
    )
}

async fn apply(app: &TestApp, text: &str, options: ApplyOptions) -> Result<Applied, String> {
    let file = StateFile::parse(text)?;
    app.services
        .apply_state(&Context::command_line(), file, options)
        .await
        .map_err(|e| e.to_string())
}

async fn apply_ok(app: &TestApp, text: &str) -> Applied {
    apply(app, text, ApplyOptions::default()).await.unwrap()
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url(path))
        .private_token(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn token_grant(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn password_grant(app: &TestApp, username: &str, password: &str) -> u16 {
    token_grant(
        app,
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("client_id", "grafana-client-id"),
            ("client_secret", CLIENT_SECRET),
            ("scope", "read_user"),
        ],
    )
    .await
    .0
}

async fn usernames(app: &TestApp) -> Vec<String> {
    let (status, body) = get(app, "/api/v4/users?per_page=100&sort=asc", &app.root_token).await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit_count(app: &TestApp) -> usize {
    let (status, body) = get(app, "/api/v4/audit_events?per_page=100", &app.root_token).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().len()
}

#[tokio::test]
async fn apply_makes_the_database_hold_the_file_and_a_second_apply_changes_nothing() {
    let app = TestApp::spawn().await;
    let before = audit_count(&app).await;
    let applied = apply_ok(&app, &sample()).await;
    assert_eq!(
        applied.changes,
        [
            "create user alice",
            "create token \"ci\" of alice",
            "create token \"generated\" of alice",
            "create user bob",
            "create group platform",
            "add alice to group platform as Owner",
            "create group platform/team",
            "add bob to group platform/team as Developer",
            "create application \"Grafana\" (owner alice)",
            "create application \"Team tool\" (group platform/team)",
            "create application \"Instance tool\" (instance-wide)",
        ]
    );
    // A value for each token and secret the file gave none for, once.
    let generated: Vec<&str> = applied.generated.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        generated,
        [
            "token \"generated\" of alice",
            "secret of application \"Team tool\"",
            "secret of application \"Instance tool\"",
        ]
    );
    // Every change is audited.
    assert_eq!(audit_count(&app).await, before + applied.changes.len());

    // The credentials work as given.
    let (status, me) = get(&app, "/api/v4/user", ALICE_TOKEN).await;
    assert_eq!((status, me["username"].as_str()), (200, Some("alice")));
    let generated_token = applied.generated[0].1.expose().to_owned();
    assert_eq!(get(&app, "/api/v4/user", &generated_token).await.0, 200);
    let (status, body) = token_grant(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "grafana-client-id"),
            ("client_secret", CLIENT_SECRET),
            ("scope", "read_user"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        password_grant(&app, "alice", "correct horse battery").await,
        200
    );
    // What the API shows matches the file.
    let (_, groups) = get(&app, "/api/v4/groups?all_available=true", &app.root_token).await;
    let paths: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["full_path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["platform", "platform/team"]);
    let (_, members) = get(&app, "/api/v4/groups/platform/members", &app.root_token).await;
    assert_eq!(members[0]["username"], "alice");
    assert_eq!(members[0]["access_level"], 50);
    let apps = app.list_apps().await;
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["application_name"], "Instance tool");
    let (_, team_apps) = get(
        &app,
        "/api/v4/groups/platform%2Fteam/applications",
        ALICE_TOKEN,
    )
    .await;
    assert_eq!(team_apps[0]["application_name"], "Team tool", "{team_apps}");

    // Again: nothing changes, nothing is recorded, nothing is generated.
    let recorded = audit_count(&app).await;
    let again = apply_ok(&app, &sample()).await;
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert!(again.generated.is_empty());
    assert_eq!(audit_count(&app).await, recorded);
    // And the generated credentials still work.
    assert_eq!(get(&app, "/api/v4/user", &generated_token).await.0, 200);

    // A change to the file is a change to the database, and only that.
    let edited = sample()
        .replace("name = \"Alice\"", "name = \"Alice Liddell\"")
        .replace(
            "scopes = [\"api\", \"read_user\"]",
            "scopes = [\"read_user\"]",
        )
        .replace("access_level = 30", "access_level = 40");
    let changed = apply_ok(&app, &edited).await;
    assert_eq!(
        changed.changes,
        [
            "update user alice: name",
            "update token \"ci\" of alice: scopes",
            "update membership of bob in group platform/team: access_level",
        ]
    );
    let (_, me) = get(&app, "/api/v4/user", ALICE_TOKEN).await;
    assert_eq!(me["name"], "Alice Liddell");
    // The token lost `api`: /user needs read_user only, creating needs api.
    let res = app.create_app_form(ALICE_TOKEN, &[("name", "x")]).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn a_dry_run_says_what_would_change_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let before = audit_count(&app).await;
    let options = ApplyOptions {
        dry_run: true,
        prune: false,
        seeding: false,
    };
    let planned = apply(&app, &sample(), options).await.unwrap();
    assert_eq!(planned.changes.len(), 11);
    assert!(planned.generated.is_empty());
    assert_eq!(usernames(&app).await, ["root"]);
    assert_eq!(audit_count(&app).await, before);
    assert_eq!(get(&app, "/api/v4/user", ALICE_TOKEN).await.0, 401);
}

#[tokio::test]
async fn a_bad_file_names_entry_and_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "[[users]]\nusername = \"carol\"\nemail = \"not an email\"\n",
            "users[0] (carol): email:",
        ),
        (
            "[[users]]\nusername = \"carol\"\nemail = \"carol@example.com\"\nemial = \"x\"\n",
            "unknown field `emial`",
        ),
        (
            "[[applications]]\nname = \"A\"\nredirect_uris = [\"https://a.example/cb\"]\nscopes = [\"nope\"]\n",
            "applications[0] (A): scopes: \"nope\" is not a scope this server offers (it offers: api,",
        ),
        (
            "[[applications]]\nname = \"A\"\nredirect_uris = [\"https://a.example/cb\"]\nscopes = [\"api\"]\nowner = \"nobody\"\n",
            "applications[0] (A): owner: no user nobody exists",
        ),
        (
            "[[groups]]\npath = \"team\"\nparent = \"missing\"\n",
            "groups[0] (missing/team): parent:",
        ),
        (
            "[[users]]\nusername = \"carol\"\nemail = \"carol@example.com\"\n[[users.tokens]]\nname = \"t\"\nscopes = [\"api\"]\ntoken = \"two words\"\n",
            "users[0] (carol) tokens[0] (t): token:",
        ),
        (
            "[[users]]\nusername = \"carol\"\nemail = \"carol@example.com\"\npassword_hash = \"md5:abc\"\n",
            "users[0] (carol): password_hash:",
        ),
        (
            "[[groups]]\npath = \"g\"\nmembers = [{ username = \"root\", access_level = 7 }]\n",
            "access_level: must be",
        ),
    ];
    for (text, expected) in cases {
        let e = apply(&app, text, ApplyOptions::default())
            .await
            .unwrap_err();
        assert!(e.contains(expected), "{e:?} should contain {expected:?}");
    }
    // A valid first entry is not stored when a later one fails at run time:
    // bob's email is root's, which the file does not manage.
    let text = "[[users]]\nusername = \"alice\"\nemail = \"alice@example.com\"\n\
                [[users]]\nusername = \"bob\"\nemail = \"root@example.com\"\n";
    let e = apply(&app, text, ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(e.contains("create user bob") && e.contains("email"), "{e}");
    assert_eq!(usernames(&app).await, ["root"]);
}

#[tokio::test]
async fn pruning_deletes_what_the_file_does_not_list_but_never_root_or_the_last_admin() {
    let app = TestApp::spawn().await;
    apply_ok(&app, &sample()).await;
    let (_, boss_token) = app.user_with_token("boss", true, "api").await;
    let only_alice = r#"
applications = []

[[users]]
username = "alice"
email = "alice@example.com"
tokens = []
"#;
    let options = ApplyOptions {
        dry_run: false,
        prune: true,
        seeding: false,
    };
    let pruned = apply(&app, only_alice, options).await.unwrap();
    let expected = [
        "revoke token \"ci\" of alice",
        "revoke token \"generated\" of alice",
        "delete application \"Grafana\" (grafana-client-id)",
        "delete application \"Team tool\" (",
        "delete application \"Instance tool\" (",
        "delete user bob",
        "delete user boss",
    ];
    assert_eq!(pruned.changes.len(), expected.len(), "{:?}", pruned.changes);
    for (change, want) in pruned.changes.iter().zip(expected) {
        assert!(change.starts_with(want), "{change:?} is not {want:?}");
    }
    assert!(
        pruned.kept.iter().any(|k| k.contains("root")),
        "{:?}",
        pruned.kept
    );
    assert_eq!(usernames(&app).await, ["root", "alice"]);
    assert_eq!(get(&app, "/api/v4/user", ALICE_TOKEN).await.0, 401);
    assert_eq!(get(&app, "/api/v4/user", &boss_token).await.0, 401);
    // Groups are not listed: they stay; their applications are
    // applications, a listed kind, so the team's went.
    let (_, team_apps) = get(
        &app,
        "/api/v4/groups/platform%2Fteam/applications",
        &app.root_token,
    )
    .await;
    assert_eq!(team_apps.as_array().map(Vec::len), Some(0));

    // The last active administrator is kept even when unlisted.
    let (boss2, boss2_token) = app.user_with_token("boss2", true, "api").await;
    let res = app
        .client
        .post(app.url(&format!("/api/v4/users/{}/block", app.root_id)))
        .private_token(&boss2_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let pruned = apply(&app, only_alice, options).await.unwrap();
    assert!(pruned.changes.is_empty(), "{:?}", pruned.changes);
    assert!(
        pruned
            .kept
            .iter()
            .any(|k| k.contains("boss2") && k.contains("last active administrator")),
        "{:?}",
        pruned.kept
    );
    assert!(app.services.find_user(boss2).await.unwrap().is_some());
    // A file that would demote every active administrator is refused.
    let demote = "[[users]]\nusername = \"boss2\"\nemail = \"boss2@example.com\"\nadmin = false\n";
    let e = apply(&app, demote, ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(e.contains("no active administrator"), "{e}");
}

#[tokio::test]
async fn export_then_apply_on_an_empty_database_restores_every_credential() {
    let first = TestApp::spawn().await;
    let applied = apply_ok(&first, &sample()).await;
    let team_secret = applied.generated[1].1.expose().to_owned();
    let generated_token = applied.generated[0].1.expose().to_owned();
    // An application in the middle of a renewal keeps both secrets.
    let instance_id = first.list_apps().await[0]["id"].as_i64().unwrap();
    let renewed = first
        .client
        .post(first.url(&format!(
            "/api/v4/applications/{instance_id}/renew-secret?expires_in=3600"
        )))
        .private_token(&first.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), 201);
    let renewed: Value = renewed.json().await.unwrap();
    let old_instance_secret = applied.generated[2].1.expose().to_owned();
    let new_instance_secret = renewed["secret"].as_str().unwrap().to_owned();
    let exported = first.services.export_state().await.unwrap();
    let text = exported.to_toml().unwrap();
    assert!(!text.contains(CLIENT_SECRET) && !text.contains(ALICE_TOKEN));
    assert!(!text.contains("correct horse"));

    let second = TestApp::spawn().await;
    let restored = apply_ok(&second, &text).await;
    assert!(restored.generated.is_empty(), "{:?}", restored.generated);
    // Every credential works on the new database.
    assert_eq!(get(&second, "/api/v4/user", ALICE_TOKEN).await.0, 200);
    assert_eq!(get(&second, "/api/v4/user", &generated_token).await.0, 200);
    assert_eq!(
        password_grant(&second, "alice", "correct horse battery").await,
        200
    );
    assert_eq!(get(&second, "/api/v4/user", &first.root_token).await.0, 200);
    let team_id = exported.applications.as_ref().unwrap()[1]
        .application_id
        .clone()
        .unwrap();
    let (status, body) = token_grant(
        &second,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", team_id.as_str()),
            ("client_secret", team_secret.as_str()),
            ("scope", "api"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Both secrets of the application being renewed work.
    let instance_uid = renewed["application_id"].as_str().unwrap();
    for secret in [&old_instance_secret, &new_instance_secret] {
        let (status, body) = token_grant(
            &second,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", instance_uid),
                ("client_secret", secret.as_str()),
                ("scope", "read_user"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(text.contains("[[applications.secrets]]"), "{text}");
    // And exporting the copy gives the same file.
    let again = second
        .services
        .export_state()
        .await
        .unwrap()
        .to_toml()
        .unwrap();
    assert_eq!(again, text);
    // Applying the export to where it came from changes nothing.
    assert!(apply_ok(&first, &text).await.changes.is_empty());
}

#[tokio::test]
async fn a_bcrypt_password_hash_signs_in_and_becomes_argon2id() {
    let app = TestApp::spawn().await;
    let hash = bcrypt::hash("gitlab password 1", 4).unwrap();
    let text = format!(
        r#"
[[users]]
username = "imported"
email = "imported@example.com"
password_hash = "{hash}"

[[applications]]
name = "Grafana"
redirect_uris = ["https://grafana.example/cb"]
scopes = ["read_user"]
application_id = "grafana-client-id"
secret = "{CLIENT_SECRET}"
"#
    );
    apply_ok(&app, &text).await;
    assert_eq!(
        password_grant(&app, "imported", "wrong password 1").await,
        400
    );
    assert_eq!(
        password_grant(&app, "imported", "gitlab password 1").await,
        200
    );
    let (_, digest) = app
        .services
        .store()
        .find_user_for_login("imported")
        .await
        .unwrap()
        .unwrap();
    let digest = digest.unwrap();
    assert!(digest.starts_with("$argon2id$"), "{digest}");
    assert_eq!(
        password_grant(&app, "imported", "gitlab password 1").await,
        200
    );
    // The file still names the bcrypt hash, which the Argon2id one
    // replaced: nothing to change.
    let again = apply_ok(&app, &text).await;
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    // A new hash in the file is a change.
    let newer = bcrypt::hash("gitlab password 2", 4).unwrap();
    let changed = apply_ok(&app, &text.replace(&hash, &newer)).await;
    assert_eq!(changed.changes, ["update user imported: password"]);
    assert_eq!(
        password_grant(&app, "imported", "gitlab password 2").await,
        200
    );
    // A cost no sign-in can afford is refused.
    let costly = format!("$2b$31${}", &newer[7..]);
    let e = apply(&app, &text.replace(&hash, &costly), ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(e.contains("password_hash: has a bcrypt cost"), "{e}");
}

#[tokio::test]
async fn one_file_may_hand_administration_over_and_some_values_are_refused() {
    let app = TestApp::spawn().await;
    // root is demoted in the same file that makes alice an administrator:
    // the promotion runs first.
    let text = r#"
[[users]]
username = "root"
email = "root@example.com"
admin = false

[[users]]
username = "alice"
email = "alice@example.com"
admin = true
"#;
    let applied = apply_ok(&app, text).await;
    assert_eq!(
        applied.changes,
        [
            "create user alice (administrator)",
            "update user root: admin"
        ]
    );
    // An existing user may be named without an email (to give root a
    // known token, say); a new one may not.
    let root_token = "[[users]]\nusername = \"root\"\n[[users.tokens]]\nname = \"ci\"\n\
                      scopes = [\"api\"]\ntoken = \"glpat-root-fixed-ci-token-01\"\n";
    let given = apply_ok(&app, root_token).await;
    assert_eq!(given.changes, ["create token \"ci\" of root"]);
    assert_eq!(
        get(&app, "/api/v4/user", "glpat-root-fixed-ci-token-01")
            .await
            .0,
        200
    );
    let e = apply(
        &app,
        "[[users]]\nusername = \"newcomer\"\n",
        ApplyOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("users[0] (newcomer): email: can't be blank"),
        "{e}"
    );
    // A token value once revoked may not come back.
    let with_token = format!(
        "[[users]]\nusername = \"alice\"\nemail = \"alice@example.com\"\n\
         [[users.tokens]]\nname = \"ci\"\nscopes = [\"api\"]\ntoken = \"{ALICE_TOKEN}\"\n"
    );
    apply_ok(&app, &with_token).await;
    let id = app
        .services
        .authenticate_token(ALICE_TOKEN)
        .await
        .unwrap()
        .unwrap()
        .token
        .id;
    app.services
        .revoke_token(&Context::command_line(), id)
        .await
        .unwrap();
    let e = apply(&app, &with_token, ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(
        e.contains("users[0] (alice) tokens[0] (ci): token: was revoked"),
        "{e}"
    );
    // Applied as a seed at a server's start, the spent token is left out
    // (with a note) so that the server still starts.
    let seeding = ApplyOptions {
        dry_run: false,
        prune: false,
        seeding: true,
    };
    let seeded = apply(&app, &with_token, seeding).await.unwrap();
    assert!(seeded.changes.is_empty(), "{:?}", seeded.changes);
    assert!(
        seeded
            .kept
            .iter()
            .any(|k| k.contains("tokens[0] (ci)") && k.contains("revoked")),
        "{:?}",
        seeded.kept
    );
    // With --prune, a listed subgroup needs its parent listed too.
    apply_ok(
        &app,
        "[[groups]]\npath = \"org\"\n[[groups]]\npath = \"team\"\nparent = \"org\"\n",
    )
    .await;
    let options = ApplyOptions {
        dry_run: false,
        prune: true,
        seeding: false,
    };
    let e = apply(
        &app,
        "[[groups]]\npath = \"team\"\nparent = \"org\"\n",
        options,
    )
    .await
    .unwrap_err();
    assert!(e.contains("groups[0] (org/team): parent:"), "{e}");
    // A secret listed with an expiry already past is no secret.
    let expired = r#"
[[applications]]
name = "Old"
redirect_uris = ["https://old.example/cb"]
scopes = ["api"]
secrets = [{ sha256 = "0000000000000000000000000000000000000000000000000000000000000000", expires_at = "2001-01-01T00:00:00Z" }]
"#;
    let e = apply(&app, expired, ApplyOptions::default())
        .await
        .unwrap_err();
    assert!(
        e.contains("applications[0] (Old): secrets: every secret listed has expired"),
        "{e}"
    );
}

#[tokio::test]
async fn concurrent_applies_of_one_file_make_each_thing_once() {
    let app = TestApp::spawn().await;
    let text = sample();
    let (a, b) = tokio::join!(
        apply(&app, &text, ApplyOptions::default()),
        apply(&app, &text, ApplyOptions::default())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut counts = [a.changes.len(), b.changes.len()];
    counts.sort_unstable();
    assert_eq!(counts, [0, 11]);
    assert_eq!(usernames(&app).await, ["root", "alice", "bob"]);
}

/// A pruning apply deletes an application and then a user, while that
/// user's refresh token on that application is used. A plan deletes
/// applications before users; locked only at its own step, the user was
/// locked after the application, the reverse of a refresh's order (its
/// user, then its application), and the two deadlocked (answered 503, or
/// the apply failed). Now the apply locks every user it deletes first.
///
/// On PostgreSQL the apply is held back after the application's delete
/// (a `SHARE` lock on the audit events, which its step records), the
/// refresh starts and waits, then the apply goes on: the refresh must wait
/// for it and find its token gone. On SQLite (one writer, no such
/// interleaving) the two run at once, and whichever goes second sees the
/// other's outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pruning_apply_races_a_refresh_of_the_user_it_deletes() {
    let app = TestApp::spawn().await;
    let with_alice = format!(
        r#"
[[users]]
username = "alice"
email = "alice@example.com"
password = "correct horse battery"

[[applications]]
name = "Grafana"
redirect_uris = ["https://grafana.example/login/gitlab"]
scopes = ["read_user"]
confidential = true
trusted = true
grant_types = ["refresh_token", "password"]
application_id = "grafana-client-id"
secret = "{CLIENT_SECRET}"
"#
    );
    apply_ok(&app, &with_alice).await;
    let (status, issued) = token_grant(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "correct horse battery"),
            ("client_id", "grafana-client-id"),
            ("client_secret", CLIENT_SECRET),
            ("scope", "read_user"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{issued}");
    let refresh_token = issued["refresh_token"].as_str().unwrap().to_owned();

    let holder = app.hold_table("audit_events").await;
    let prune = ApplyOptions {
        dry_run: false,
        prune: true,
        seeding: false,
    };
    let applying = {
        let services = app.services.clone();
        tokio::spawn(async move {
            let file = StateFile::parse("users = []\napplications = []\n").unwrap();
            services
                .apply_state(&Context::command_line(), file, prune)
                .await
                .map_err(|e| e.to_string())
        })
    };
    if let Some(holder) = &holder {
        // Its first audit event, after the application's delete.
        holder.wait_for("INSERT INTO audit_events").await;
    }
    let held = holder.is_some();
    let release = async {
        if let Some(holder) = holder {
            // The refresh's first statement, which locks the user first.
            holder
                .release_once("UPDATE oauth_access_tokens SET refreshed_at")
                .await;
        }
    };
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", "grafana-client-id"),
        ("client_secret", CLIENT_SECRET),
    ];
    let ((status, body), ()) = tokio::join!(token_grant(&app, &refresh), release);
    let applied = applying.await.unwrap().expect("the pruning apply");
    assert_eq!(applied.changes.len(), 2, "{:?}", applied.changes);
    assert!(applied.changes[0].starts_with("delete application \"Grafana\""));
    assert_eq!(applied.changes[1], "delete user alice");
    assert_eq!(usernames(&app).await, ["root"]);
    if held || status != 200 {
        // It waited for the apply, and found its client gone.
        assert!(
            status == 400 || status == 401,
            "the refresh after the apply: {status} {body}"
        );
        assert!(body["error"].is_string(), "{body}");
    } else {
        // It went first: what it issued went with the user.
        let access = body["access_token"].as_str().unwrap();
        let res = app
            .client
            .get(app.url("/api/v4/user"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
}

/// An apply updates a group and then gives its only Owner an application
/// while an administrator hard-deletes that Owner (the group goes with
/// them). The delete locks the user, then deletes the group; the apply
/// locked the group at its step and the user only at the application's
/// insert (its foreign key), and the two deadlocked. Now the apply locks
/// every stored user its steps name before its first step.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_apply_racing_the_hard_delete_of_a_user_it_writes_for() {
    let application = r#"
[[applications]]
name = "Grafana"
redirect_uris = ["https://grafana.example/login/gitlab"]
scopes = ["read_user"]
owner = "alice"
"#;
    apply_racing_a_hard_delete(
        ("", ""),
        ("Changed", "", false, application),
        &[
            "update group platform: description",
            "create application \"Grafana\" (owner alice)",
        ],
    )
    .await;
}

/// An apply changes the only Owner's membership (its expiry) and then adds
/// another member to the group, while that Owner is hard-deleted. The
/// apply held the Owner's membership (its update) and then waited for the
/// group (the new membership's foreign key); the delete held the group and
/// its cascade waited for that membership: a deadlock. The apply now locks
/// the Owner first, as the delete does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_apply_changing_a_membership_racing_its_users_hard_delete() {
    let expiry = time::OffsetDateTime::now_utc().date() + time::Duration::days(30);
    let expires = format!(", expires_at = \"{expiry}\"");
    apply_racing_a_hard_delete(
        ("", ""),
        ("", &expires, true, ""),
        &[
            "update membership of alice in group platform: expires_at",
            "add bob to group platform as Developer",
        ],
    )
    .await;
}

/// Apply a state with alice, the only Owner of group `platform`, and bob
/// (`first`: platform's description, alice's membership's extra fields),
/// then apply another (`second`: the same, whether bob joins the group,
/// and more TOML after) while an administrator hard-deletes alice. Its
/// changes must be `changes`.
///
/// On PostgreSQL the second apply is held back at its first audit event
/// (after its first step), the delete starts and waits, and then the
/// apply goes on: it finishes, and the delete after it takes the group
/// (with what the apply wrote in it) with the user. On SQLite (one
/// writer) the two run at once: whichever goes second sees the other's
/// outcome.
async fn apply_racing_a_hard_delete(
    first: (&str, &str),
    second: (&str, &str, bool, &str),
    changes: &[&str],
) {
    let app = TestApp::spawn().await;
    let state = |description: &str, alice: &str, bob_joins: bool, more: &str| {
        let bob = if bob_joins {
            ", { username = \"bob\", access_level = 30 }"
        } else {
            ""
        };
        format!(
            r#"
[[users]]
username = "alice"
email = "alice@example.com"

[[users]]
username = "bob"
email = "bob@example.com"

[[groups]]
path = "platform"
name = "Platform"
description = "{description}"
members = [{{ username = "alice", access_level = 50{alice} }}{bob}]
{more}"#
        )
    };
    apply_ok(&app, &state(first.0, first.1, false, "")).await;
    let (status, users) = get(&app, "/api/v4/users?username=alice", &app.root_token).await;
    assert_eq!(status, 200, "{users}");
    let alice_id = users[0]["id"].as_i64().unwrap();

    let holder = app.hold_table("audit_events").await;
    let then = state(second.0, second.1, second.2, second.3);
    let applying = {
        let services = app.services.clone();
        tokio::spawn(async move {
            let file = StateFile::parse(&then).unwrap();
            services
                .apply_state(&Context::command_line(), file, ApplyOptions::default())
                .await
                .map_err(|e| e.to_string())
        })
    };
    if let Some(holder) = &holder {
        // Its first audit event, after its first step.
        holder.wait_for("INSERT INTO audit_events").await;
    }
    let held = holder.is_some();
    let deleting = app
        .client
        .delete(app.url(&format!("/api/v4/users/{alice_id}?hard_delete=true")))
        .private_token(&app.root_token)
        .send();
    let release = async {
        if let Some(holder) = holder {
            // The apply, and the delete behind it.
            holder.wait_for_waiters("", 2).await;
            holder.release().await;
        }
    };
    let (deleted, ()) = tokio::join!(deleting, release);
    assert_eq!(deleted.unwrap().status(), 204, "the user's delete");
    let applied = applying.await.unwrap().expect("the apply");
    if held {
        assert_eq!(applied.changes, changes);
    }
    let (status, _) = get(&app, "/api/v4/groups/platform", &app.root_token).await;
    if held || usernames(&app).await == ["root", "bob"] {
        // The delete went second: the group (and what the apply wrote in
        // it or for alice) went with the user.
        assert_eq!(usernames(&app).await, ["root", "bob"]);
        assert_eq!(status, 404, "the group went with its only Owner");
    } else {
        // The apply went second, and made the user (a new one, listed
        // last) and the group again.
        assert_eq!(usernames(&app).await, ["root", "bob", "alice"]);
        assert_eq!(status, 200);
    }
}
