//! The services' OAuth, OpenID Connect, registration and token flows on a
//! real store (SQLite, a fresh file per test) with time under the test's
//! control: expiry, replay, rotation, reuse detection and auth_time, with
//! no sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine as _;
use latchkey_core::application::{Application, NewApplication};
use latchkey_core::authorize::{PreAuthorized, Prompt};
use latchkey_core::clock::{Clock, FixedClock};
use latchkey_core::oauth::{ErrorCode, IssuedToken, CODE_LIFETIME_MS};
use latchkey_core::oauth_flows::FlowError;
use latchkey_core::registration::{ClientMetadata, RegistrationMode};
use latchkey_core::scopes::Scopes;
use latchkey_core::secret;
use latchkey_core::store::prelude::*;
use latchkey_core::token::TokenRejection;
use latchkey_core::user::{User, UserInput};
use latchkey_core::{Config, Services};
use latchkey_sqlite::SqliteStore;
use time::macros::datetime;

const SECRET: &str = "client-secret-of-the-test";
const REDIRECT: &str = "https://rp.example/cb";

struct World {
    services: Services,
    clock: Arc<FixedClock>,
    client: Application,
    alice: User,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        Self::with(Config::default()).await
    }

    async fn with(config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("flows.db").display()
        );
        let store = SqliteStore::connect(&latchkey_sqlite::Options::new(&url))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let clock = Arc::new(FixedClock::new(datetime!(2026-06-01 12:00 UTC)));
        let services = Services::new(store.clone(), clock.clone(), config);
        let client = store
            .insert_application(NewApplication {
                application_id: "flows-client".to_owned(),
                secret_digest: secret::digest(SECRET),
                secret_hint: String::new(),
                name: "Flows".to_owned(),
                redirect_uri: REDIRECT.to_owned(),
                scopes: Scopes::from_stored("api read_user openid profile"),
                confidential: true,
                owner_id: None,
                group_id: None,
                created_at: latchkey_core::clock::unix_millis(clock.now()),
                dynamic: false,
                registration_token_digest: None,
                grant_types: None,
            })
            .await
            .unwrap();
        let alice = services
            .create_user(
                &latchkey_core::context::Context::system(),
                &UserInput {
                    username: "alice".to_owned(),
                    email: "alice@example.com".to_owned(),
                    name: "Alice".to_owned(),
                    password: None,
                    admin: false,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        Self {
            services,
            clock,
            client,
            alice,
            _dir: dir,
        }
    }

    fn now(&self) -> i64 {
        self.services.now_ms()
    }

    fn advance_ms(&self, ms: i64) {
        self.clock.advance(time::Duration::milliseconds(ms));
    }

    fn pre(&self, scopes: &str) -> PreAuthorized {
        PreAuthorized {
            application: self.client.clone(),
            redirect_uri: REDIRECT.to_owned(),
            scopes: Scopes::from_stored(scopes),
            state: None,
            code_challenge: None,
            nonce: Some("n-0S6".to_owned()),
            prompt: Prompt::default(),
            max_age: None,
        }
    }

    /// A code for alice, who signed in `signed_in_ago` ms ago.
    async fn code(&self, scopes: &str, signed_in_ago: i64) -> String {
        self.services
            .issue_code(
                &latchkey_core::context::Context::system(),
                &self.pre(scopes),
                &self.alice,
                self.now() - signed_in_ago,
            )
            .await
            .unwrap()
    }

    async fn exchange(&self, code: &str) -> Result<IssuedToken, FlowError> {
        self.services
            .exchange_code(&self.client, code, Some(REDIRECT), None)
            .await
            .map(|(issued, _)| issued)
    }

    /// Whether an access token is accepted now (and why not).
    async fn accepted(&self, access: &str) -> Result<(), TokenRejection> {
        match self.services.use_oauth_token(access).await.unwrap() {
            Some(Ok(_)) => Ok(()),
            Some(Err(why)) => Err(why),
            None => Err(TokenRejection::Unknown),
        }
    }
}

fn oauth_code(e: FlowError) -> ErrorCode {
    match e {
        FlowError::OAuth(e) => e.code,
        FlowError::Internal(e) => panic!("a fault, not an OAuth error: {e}"),
    }
}

/// The claims of a JWT, unverified (the signature is the JWKS tests' job).
fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let w = World::new().await;
    let code = w.code("api", 0).await;
    w.advance_ms(CODE_LIFETIME_MS);
    assert_eq!(
        oauth_code(w.exchange(&code).await.unwrap_err()),
        ErrorCode::InvalidGrant,
        "at the end of its lifetime"
    );
    let fresh = w.code("api", 0).await;
    w.advance_ms(CODE_LIFETIME_MS - 1);
    assert!(w.exchange(&fresh).await.is_ok(), "a millisecond before");
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_gave() {
    let w = World::new().await;
    let code = w.code("api", 0).await;
    let issued = w.exchange(&code).await.unwrap();
    assert_eq!(w.accepted(&issued.access_token).await, Ok(()));
    w.advance_ms(1_000);
    assert_eq!(
        oauth_code(w.exchange(&code).await.unwrap_err()),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        w.accepted(&issued.access_token).await,
        Err(TokenRejection::Revoked)
    );
    let refresh = issued.refresh_token.expect("a refresh token");
    assert_eq!(
        oauth_code(
            w.services
                .exchange_refresh(Some(&w.client), &refresh, None)
                .await
                .unwrap_err()
        ),
        ErrorCode::InvalidGrant,
        "the code's refresh token went with it"
    );
}

#[tokio::test]
async fn access_tokens_expire_on_the_clock_and_refresh_keeps_auth_time() {
    let w = World::new().await;
    let signed_in_at = w.now() - 5_000;
    let code = w.code("api", 5_000).await;
    let issued = w.exchange(&code).await.unwrap();
    assert_eq!(issued.expires_in, 7_200);
    w.advance_ms(7_200 * 1_000 - 1);
    assert_eq!(w.accepted(&issued.access_token).await, Ok(()));
    w.advance_ms(1);
    assert_eq!(
        w.accepted(&issued.access_token).await,
        Err(TokenRejection::Expired)
    );
    // The refresh token outlives the access token, and the new pair still
    // says when alice signed in.
    let refreshed = w
        .services
        .exchange_refresh(
            Some(&w.client),
            issued.refresh_token.as_deref().unwrap(),
            None,
        )
        .await
        .unwrap();
    let found = w
        .services
        .find_oauth_token(&refreshed.access_token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.token.auth_time, Some(signed_in_at));
    assert_eq!(found.token.created_at, w.now());
    assert_eq!(found.token.expires_at, w.now() + 7_200 * 1_000);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let w = World::new().await;
    let first = w.exchange(&w.code("api", 0).await).await.unwrap();
    let refresh1 = first.refresh_token.clone().unwrap();
    w.advance_ms(60_000);
    let second = w
        .services
        .exchange_refresh(Some(&w.client), &refresh1, None)
        .await
        .unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    // The old access token works until the new one is first used.
    assert_eq!(w.accepted(&first.access_token).await, Ok(()));
    assert_eq!(w.accepted(&second.access_token).await, Ok(()));
    assert_eq!(
        w.accepted(&first.access_token).await,
        Err(TokenRejection::Revoked)
    );
    // A used refresh token presented again: refused, and the whole family
    // is revoked (someone else may hold it).
    w.advance_ms(60_000);
    assert_eq!(
        oauth_code(
            w.services
                .exchange_refresh(Some(&w.client), &refresh1, None)
                .await
                .unwrap_err()
        ),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        w.accepted(&second.access_token).await,
        Err(TokenRejection::Revoked)
    );
    assert!(w
        .services
        .exchange_refresh(
            Some(&w.client),
            second.refresh_token.as_deref().unwrap(),
            None
        )
        .await
        .is_err());
}

#[tokio::test]
async fn id_tokens_carry_the_clock_and_the_sign_in_time() {
    let w = World::new().await;
    let signed_in_at = w.now() - 30_000;
    let issued = w
        .exchange(&w.code("openid profile", 30_000).await)
        .await
        .unwrap();
    let id = claims(issued.id_token.as_deref().expect("an ID token"));
    let iat = w.now() / 1_000;
    assert_eq!(id["iat"], iat);
    assert_eq!(id["exp"], iat + 120);
    assert_eq!(id["auth_time"], signed_in_at / 1_000);
    assert_eq!(id["nonce"], "n-0S6");
    assert_eq!(id["aud"], "flows-client");
    assert_eq!(id["sub"], w.alice.id.to_string());
    // A refresh a day later: a new ID token, the same auth_time.
    w.advance_ms(24 * 3_600 * 1_000);
    let refreshed = w
        .services
        .exchange_refresh(
            Some(&w.client),
            issued.refresh_token.as_deref().unwrap(),
            None,
        )
        .await
        .unwrap();
    let again = claims(refreshed.id_token.as_deref().expect("an ID token"));
    assert_eq!(again["iat"], w.now() / 1_000);
    assert_eq!(again["auth_time"], signed_in_at / 1_000);
}

#[tokio::test]
async fn retired_signing_keys_stay_published_for_a_day() {
    let w = World::new().await;
    w.services.ensure_signing_key().await.unwrap();
    let first = w.services.published_keys().await.unwrap();
    assert_eq!(first.len(), 1);
    let new_kid = w
        .services
        .rotate_signing_key(&latchkey_core::context::Context::system())
        .await
        .unwrap();
    let kids = |keys: Vec<latchkey_core::oidc::SigningKey>| {
        keys.into_iter().map(|k| k.kid).collect::<Vec<_>>()
    };
    assert_eq!(
        kids(w.services.published_keys().await.unwrap()),
        [new_kid.clone(), first[0].kid.clone()]
    );
    w.advance_ms(latchkey_core::oidc::RETIRED_KEY_PUBLISHED_MS - 1);
    assert_eq!(
        kids(w.services.published_keys().await.unwrap()),
        [new_kid.clone(), first[0].kid.clone()],
        "still published a millisecond before the day is over"
    );
    w.advance_ms(1);
    assert_eq!(kids(w.services.published_keys().await.unwrap()), [new_kid]);
}

#[tokio::test]
async fn personal_access_tokens_expire_after_their_last_day() {
    let w = World::new().await;
    let today = w.services.today();
    let (_, plaintext) = w
        .services
        .create_token(
            &latchkey_core::context::Context::system(),
            w.alice.id,
            "t",
            "api",
            Some(today + time::Duration::days(1)),
        )
        .await
        .unwrap();
    let check = || async {
        w.services
            .authenticate_token(plaintext.expose())
            .await
            .unwrap()
            .map(|_| ())
    };
    assert_eq!(check().await, Ok(()));
    w.advance_ms(24 * 3_600 * 1_000);
    assert_eq!(check().await, Ok(()), "its last day");
    w.advance_ms(24 * 3_600 * 1_000);
    assert_eq!(check().await, Err(TokenRejection::Expired));
}

#[tokio::test]
async fn unused_dynamic_clients_are_swept_after_their_time() {
    let w = World::with(Config {
        dynamic_registration: RegistrationMode::Standard,
        dynamic_client_ttl_days: 30,
        ..Config::default()
    })
    .await;
    let metadata = ClientMetadata {
        client_name: Some("Dyn".to_owned()),
        redirect_uris: vec!["https://dyn.example/cb".to_owned()],
        token_endpoint_auth_method: None,
        grant_types: None,
        scope: None,
    };
    let registered = w
        .services
        .register_client(
            &latchkey_core::context::Context {
                address: Some("192.0.2.1".to_owned()),
                ..latchkey_core::context::Context::system()
            },
            &metadata,
        )
        .await
        .unwrap();
    w.advance_ms(30 * 24 * 3_600 * 1_000);
    assert_eq!(
        w.services.delete_unused_dynamic_clients().await.unwrap(),
        0,
        "not before its time"
    );
    w.advance_ms(1);
    assert_eq!(w.services.delete_unused_dynamic_clients().await.unwrap(), 1);
    let id = &registered.application.application_id;
    assert!(w
        .services
        .store()
        .find_application_by_uid(id)
        .await
        .unwrap()
        .is_none());
    // Registered and swept, both on the record, under the instance.
    let (events, _) = w
        .services
        .list_audit_events(
            &latchkey_core::audit::AuditFilter::default(),
            latchkey_core::pagination::PageRequest::default(),
        )
        .await
        .unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.event_name.as_str()).collect();
    assert_eq!(
        names[..2],
        ["oauth_application_deleted", "oauth_client_registered"]
    );
    assert!(events[..2]
        .iter()
        .all(|e| e.entity_type == "Gitlab::Audit::InstanceScope"
            && e.target_id == Some(registered.application.id)));
    assert_eq!(events[1].ip_address.as_deref(), Some("192.0.2.1"));
    assert_eq!(events[0].author_name, "latchkey");
}

#[tokio::test]
async fn audit_events_are_kept_for_their_retention_then_pruned() {
    let w = World::with(Config {
        audit_retention_days: 2,
        ..Config::default()
    })
    .await;
    let ctx = latchkey_core::context::Context::command_line();
    let input = |name: &str| latchkey_core::user::UserInput {
        username: name.to_owned(),
        email: format!("{name}@example.com"),
        name: name.to_owned(),
        password: None,
        admin: false,
        ..Default::default()
    };
    let count = || async {
        w.services
            .list_audit_events(
                &latchkey_core::audit::AuditFilter::default(),
                latchkey_core::pagination::PageRequest::default(),
            )
            .await
            .unwrap()
            .1
    };
    w.services.create_user(&ctx, &input("old")).await.unwrap();
    let early = count().await;
    w.advance_ms(24 * 3_600 * 1_000);
    w.services.create_user(&ctx, &input("new")).await.unwrap();
    assert_eq!(count().await, early + 1);
    assert_eq!(
        w.services.prune_audit_events().await.unwrap(),
        0,
        "all young"
    );
    w.advance_ms(24 * 3_600 * 1_000 + 1);
    assert_eq!(w.services.prune_audit_events().await.unwrap(), early);
    assert_eq!(count().await, 1);
    let (events, _) = w
        .services
        .list_audit_events(
            &latchkey_core::audit::AuditFilter::default(),
            latchkey_core::pagination::PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e.target_details.as_deref() == Some("new")));
    assert!(events[0].author_name == "latchkey (command line)");
}
