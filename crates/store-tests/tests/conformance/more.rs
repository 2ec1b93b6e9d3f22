//! Scenarios for the store methods the first suite left out: device
//! grants, signing keys, registrations, keyset pages, ending a user's
//! sessions, and the transfer methods behind `latchkey db copy`.

use latchkey_core::dump::{Cell, TABLES};
use latchkey_core::oauth::{DeviceStatus, NewDeviceGrant};
use latchkey_core::oidc::NewSigningKey;
use latchkey_core::store::in_transaction;

use super::*;

conformance! {
    scenario_device_grants => device_grants_sqlite, device_grants_postgres;
    scenario_signing_keys => signing_keys_sqlite, signing_keys_postgres;
    scenario_registrations => registrations_sqlite, registrations_postgres;
    scenario_instance_applications_after => instance_applications_after_sqlite, instance_applications_after_postgres;
    scenario_delete_user_sessions => delete_user_sessions_sqlite, delete_user_sessions_postgres;
    #[env] scenario_transfer_round_trip => transfer_round_trip_sqlite, transfer_round_trip_postgres;
    scenario_transaction => transaction_sqlite, transaction_postgres;
}

pub(super) fn new_device_grant(application_id: i64, n: u32, expires_at: i64) -> NewDeviceGrant {
    NewDeviceGrant {
        application_id,
        device_code_digest: format!("device-code-{n}"),
        user_code: format!("CODE{n:04}"),
        scopes: Scopes::from_stored("api read_user"),
        created_at: T0,
        expires_at,
    }
}

async fn scenario_device_grants(store: Arc<dyn Store>) {
    let client = app(&store, "device-client", None).await;
    let alice = user(&store, "alice").await;
    let g = store
        .insert_device_grant(new_device_grant(client.id, 1, T0 + 300_000))
        .await
        .expect("insert");
    assert_eq!(g.application_id, client.id);
    assert_eq!(g.user_code, "CODE0001");
    assert_eq!(g.scopes, Scopes::from_stored("api read_user"));
    assert_eq!((g.created_at, g.expires_at), (T0, T0 + 300_000));
    assert_eq!(g.status, DeviceStatus::Pending);
    assert_eq!(
        (g.user_id, g.last_polled_at, g.auth_time),
        (None, None, None)
    );

    // Both codes are unique.
    let mut same_user_code = new_device_grant(client.id, 1, T0 + 300_000);
    same_user_code.device_code_digest = "another".to_owned();
    assert_conflict(store.insert_device_grant(same_user_code).await, "user_code");
    let mut same_device_code = new_device_grant(client.id, 1, T0 + 300_000);
    same_device_code.user_code = "OTHER001".to_owned();
    assert_conflict(
        store.insert_device_grant(same_device_code).await,
        "device_code_digest",
    );

    let by_user_code = store.find_device_grant_by_user_code("CODE0001").await;
    assert_eq!(by_user_code.expect("find"), Some(g.clone()));
    let by_device_code = store.find_device_grant("device-code-1").await;
    assert_eq!(by_device_code.expect("find"), Some(g.clone()));
    assert_eq!(store.find_device_grant("nope").await.expect("find"), None);
    assert_eq!(
        store
            .find_device_grant_by_user_code("NOPE")
            .await
            .expect("find"),
        None
    );

    // Each poll answers the previous poll's time.
    assert_eq!(
        store
            .poll_device_grant(g.id, T0 + 5_000)
            .await
            .expect("poll"),
        None
    );
    assert_eq!(
        store
            .poll_device_grant(g.id, T0 + 10_000)
            .await
            .expect("poll"),
        Some(T0 + 5_000)
    );

    // Not approved yet: nothing to redeem.
    let token = new_oauth_token(client.id, Some(alice.id), "device-access", None, "fam-d");
    assert_eq!(
        store
            .redeem_device_grant(g.id, token.clone())
            .await
            .expect("redeem"),
        None
    );

    // Decided once, while pending and unexpired.
    assert!(store
        .decide_device_grant(g.id, alice.id, true, T0 + 20_000, T0 + 15_000)
        .await
        .expect("decide"));
    assert!(!store
        .decide_device_grant(g.id, alice.id, false, T0 + 21_000, T0 + 15_000)
        .await
        .expect("decide again"));
    let approved = store
        .find_device_grant("device-code-1")
        .await
        .expect("find")
        .expect("there");
    assert_eq!(approved.status, DeviceStatus::Approved);
    assert_eq!(approved.user_id, Some(alice.id));
    assert_eq!(approved.auth_time, Some(T0 + 15_000));
    assert_eq!(approved.last_polled_at, Some(T0 + 10_000));

    let late = store
        .insert_device_grant(new_device_grant(client.id, 2, T0 + 100))
        .await
        .expect("insert");
    assert!(
        !store
            .decide_device_grant(late.id, alice.id, true, T0 + 100, T0)
            .await
            .expect("decide"),
        "expired (expires_at is not after now)"
    );

    let denied = store
        .insert_device_grant(new_device_grant(client.id, 3, T0 + 300_000))
        .await
        .expect("insert");
    assert!(store
        .decide_device_grant(denied.id, alice.id, false, T0 + 1, T0)
        .await
        .expect("deny"));
    let found = store
        .find_device_grant("device-code-3")
        .await
        .expect("find");
    assert_eq!(found.map(|d| d.status), Some(DeviceStatus::Denied));
    let mut other = token.clone();
    other.token_digest = "denied-access".to_owned();
    assert_eq!(
        store
            .redeem_device_grant(denied.id, other)
            .await
            .expect("redeem"),
        None,
        "a denied request gives no token"
    );

    // Redeemed once: the token is stored and the request spent (kept,
    // marked, until it expires).
    let issued = store
        .redeem_device_grant(g.id, token.clone())
        .await
        .expect("redeem")
        .expect("approved");
    assert_eq!(
        (issued.application_id, issued.user_id),
        (client.id, Some(alice.id))
    );
    assert!(find_by_access(&store, "device-access").await.is_some());
    let spent = store
        .find_device_grant("device-code-1")
        .await
        .expect("find")
        .expect("kept until it expires");
    assert_eq!(spent.status, DeviceStatus::Redeemed);
    assert_eq!(spent.user_id, Some(alice.id));
    // Spent: no longer a request anyone can decide.
    assert!(!store
        .decide_device_grant(g.id, alice.id, false, T0 + 22_000, T0 + 15_000)
        .await
        .expect("decide a spent request"));
    let mut again = token;
    again.token_digest = "device-access-2".to_owned();
    assert_eq!(
        store
            .redeem_device_grant(g.id, again)
            .await
            .expect("redeem"),
        None
    );
    assert!(find_by_access(&store, "device-access-2").await.is_none());

    store.delete_device_grant(late.id).await.expect("delete");
    assert_eq!(
        store
            .find_device_grant("device-code-2")
            .await
            .expect("find"),
        None
    );
    // Deleting what is gone is fine.
    store
        .delete_device_grant(late.id)
        .await
        .expect("delete again");
}

fn new_key(kid: &str, created_at: i64) -> NewSigningKey {
    NewSigningKey {
        kid: kid.to_owned(),
        algorithm: "RS256".to_owned(),
        private_pem: format!("-----BEGIN PRIVATE KEY-----\n{kid}\n-----END PRIVATE KEY-----\n"),
        public_n: format!("n-of-{kid}"),
        public_e: "AQAB".to_owned(),
        created_at,
    }
}

async fn scenario_signing_keys(store: Arc<dyn Store>) {
    assert!(store.signing_keys(0).await.expect("list").is_empty());
    assert!(store
        .insert_signing_key(new_key("k1", T0), true)
        .await
        .expect("first"));
    assert!(
        !store
            .insert_signing_key(new_key("k2", T0 + 1), true)
            .await
            .expect("second"),
        "only while no key is active"
    );
    let keys = store.signing_keys(0).await.expect("list");
    assert_eq!(keys.len(), 1);
    let k1 = &keys[0];
    assert_eq!(
        (k1.kid.as_str(), k1.algorithm.as_str(), k1.public_n.as_str()),
        ("k1", "RS256", "n-of-k1")
    );
    assert_eq!((k1.created_at, k1.retired_at), (T0, None));
    assert!(k1.private_pem.contains("k1"));

    assert!(store
        .insert_signing_key(new_key("k2", T0 + 1), false)
        .await
        .expect("rotation"));
    assert_conflict(
        store.insert_signing_key(new_key("k2", T0 + 2), false).await,
        "kid",
    );
    let kids = |keys: Vec<latchkey_core::oidc::SigningKey>| {
        keys.into_iter().map(|k| k.kid).collect::<Vec<_>>()
    };
    assert_eq!(
        kids(store.signing_keys(0).await.expect("list")),
        ["k2", "k1"],
        "newest first"
    );

    assert_eq!(
        store
            .retire_signing_keys("k2", T0 + 10)
            .await
            .expect("retire"),
        1
    );
    assert_eq!(
        store
            .retire_signing_keys("k2", T0 + 11)
            .await
            .expect("retire"),
        0
    );
    // Retired keys stay published while they retired after the cut-off.
    let published = store.signing_keys(T0 + 5).await.expect("list");
    assert_eq!(kids(published.clone()), ["k2", "k1"]);
    assert_eq!(published[1].retired_at, Some(T0 + 10));
    assert_eq!(
        kids(store.signing_keys(T0 + 10).await.expect("list")),
        ["k2"]
    );
    assert!(!store
        .insert_signing_key(new_key("k3", T0 + 20), true)
        .await
        .expect("k2 is active"));
}

async fn scenario_registrations(store: Arc<dyn Store>) {
    let mut dynamic = new_app("dyn-1", None);
    dynamic.dynamic = true;
    dynamic.registration_token_digest = Some("registration-digest".to_owned());
    let registered = store.insert_application(dynamic).await.expect("insert");
    assert!(registered.dynamic);
    let found = store.find_registration("dyn-1").await.expect("find");
    assert_eq!(
        found,
        Some((registered.clone(), Some("registration-digest".to_owned())))
    );
    app(&store, "static-1", None).await;
    assert_eq!(
        store.find_registration("static-1").await.expect("find"),
        None,
        "only dynamic registrations"
    );
    assert_eq!(store.find_registration("nope").await.expect("find"), None);

    // Unused and old: deleted. Used, newer, or not dynamic: kept.
    let mut used = new_app("dyn-used", None);
    used.dynamic = true;
    let used = store.insert_application(used).await.expect("insert");
    store
        .insert_oauth_token(new_oauth_token(used.id, None, "dyn-token", None, "fam-r"))
        .await
        .expect("token");
    let mut newer = new_app("dyn-new", None);
    newer.dynamic = true;
    newer.created_at = T0 + 1_000;
    store.insert_application(newer).await.expect("insert");
    assert_eq!(
        store
            .delete_unused_dynamic_applications(T0 + 1)
            .await
            .expect("sweep"),
        1
    );
    let left = |uid: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_application_by_uid(uid)
                .await
                .expect("find")
                .is_some()
        }
    };
    assert!(!left("dyn-1").await);
    assert!(left("dyn-used").await);
    assert!(left("dyn-new").await);
    assert!(left("static-1").await);
    assert_eq!(
        store
            .list_instance_applications(page(1, 20))
            .await
            .expect("list")
            .1,
        3,
        "the page total follows the sweep"
    );
}

async fn scenario_instance_applications_after(store: Arc<dyn Store>) {
    let owner = user(&store, "owner").await;
    let a = app(&store, "after-a", None).await;
    app(&store, "after-owned", Some(owner.id)).await;
    let b = app(&store, "after-b", None).await;
    let c = app(&store, "after-c", None).await;
    let first = store.instance_applications_after(0, 2).await.expect("page");
    assert_eq!(ids(&first), [a.id, b.id], "instance-wide only, by id");
    let rest = store
        .instance_applications_after(b.id, 10)
        .await
        .expect("page");
    assert_eq!(ids(&rest), [c.id]);
    assert!(store
        .instance_applications_after(c.id, 10)
        .await
        .expect("page")
        .is_empty());
    // A batch larger than a page reads the same rows.
    let all = store
        .instance_applications_after(0, 500)
        .await
        .expect("batch");
    assert_eq!(ids(&all), [a.id, b.id, c.id]);
}

async fn scenario_delete_user_sessions(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    for (digest, who) in [("a1", &alice), ("a2", &alice), ("a3", &alice), ("b1", &bob)] {
        store
            .insert_session(NewSession {
                digest: digest.to_owned(),
                user_id: who.id,
                created_at: 1_000,
                expires_at: 5_000,
                ip: None,
                user_agent: None,
            })
            .await
            .expect("insert");
    }
    let live = |digest: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_session_user(digest, 2_000)
                .await
                .expect("find")
                .is_some()
        }
    };
    assert_eq!(
        store
            .delete_user_sessions(alice.id, Some("a2"))
            .await
            .expect("end"),
        2
    );
    assert!(!live("a1").await);
    assert!(live("a2").await, "the one kept");
    assert!(!live("a3").await);
    assert!(live("b1").await, "another user's");
    assert_eq!(
        store
            .delete_user_sessions(alice.id, None)
            .await
            .expect("end"),
        1
    );
    assert!(!live("a2").await);
    assert_eq!(
        store
            .delete_user_sessions(alice.id, None)
            .await
            .expect("end"),
        0
    );
}

/// Every row out in batches, the tables emptied, every row back in: the
/// same rows, the same counts, and new ids continue after the imported ones.
async fn scenario_transfer_round_trip(store: Arc<dyn Store>, env: Env) {
    let alice = user(&store, "alice").await;
    let client = app(&store, "copied", Some(alice.id)).await;
    app(&store, "copied-2", None).await;
    store
        .insert_token(new_token(alice.id, "copied-token"))
        .await
        .expect("token");
    store
        .insert_oauth_token(new_oauth_token(
            client.id,
            Some(alice.id),
            "copied-access",
            Some("copied-refresh"),
            "fam-c",
        ))
        .await
        .expect("oauth token");
    store
        .insert_signing_key(new_key("copied-key", T0), true)
        .await
        .expect("key");
    store
        .insert_device_grant(new_device_grant(client.id, 9, T0 + 300_000))
        .await
        .expect("device grant");

    let mut dump = Vec::new();
    for table in TABLES {
        let mut rows: Vec<Vec<Cell>> = Vec::new();
        let mut after: Option<Cell> = None;
        loop {
            // Batches of 1: every row goes through `after`.
            let batch = store
                .export_rows(table, after.as_ref(), 1)
                .await
                .expect("export");
            let Some(last) = batch.last() else { break };
            after = last.first().cloned();
            assert_eq!(last.len(), table.columns.len(), "{}", table.name);
            rows.extend(batch);
        }
        let counted = store.count_rows(table).await.expect("count");
        assert_eq!(counted, rows.len() as u64, "{}", table.name);
        dump.push((table, rows));
    }
    let count = |name: &str| {
        dump.iter()
            .find(|(t, _)| t.name == name)
            .map_or(0, |(_, rows)| rows.len())
    };
    assert_eq!(count("users"), 1);
    assert_eq!(count("oauth_applications"), 2);
    assert_eq!(count("oauth_access_tokens"), 1);

    for (table, _) in dump.iter().rev() {
        env.raw
            .execute(&format!("DELETE FROM {}", table.name))
            .await;
    }
    for (table, rows) in &dump {
        assert_eq!(store.count_rows(table).await.expect("count"), 0);
        store.import_rows(table, rows).await.expect("import");
    }
    store.finish_import().await.expect("finish");
    for (table, rows) in &dump {
        let back = store.export_rows(table, None, 1_000).await.expect("export");
        assert_eq!(&back, rows, "{} round trip", table.name);
    }
    assert_eq!(
        store
            .find_token_by_digest("copied-token")
            .await
            .expect("find")
            .map(|t| t.user.id),
        Some(alice.id)
    );
    // New rows get ids after the imported ones (PostgreSQL's sequences
    // are moved by finish_import).
    let bob = user(&store, "bob").await;
    assert!(bob.id > alice.id);
    let next = app(&store, "after-import", None).await;
    assert!(next.id > client.id);
    // A row that is already there is refused, and nothing of the batch stays.
    let users = dump.iter().find(|(t, _)| t.name == "users").expect("users");
    assert!(store.import_rows(users.0, &users.1).await.is_err());
    assert_eq!(store.count_rows(users.0).await.expect("count"), 2);
}

/// One unit of work across aggregates: all of it or none of it.
async fn scenario_transaction(store: Arc<dyn Store>) {
    let (alice, owned, token) = in_transaction(store.as_ref(), |tx| {
        Box::pin(async move {
            let alice = tx.insert_user(new_user("tx-alice")).await?;
            let owned = tx
                .insert_application(new_app("tx-app", Some(alice.id)))
                .await?;
            let token = tx.insert_token(new_token(alice.id, "tx-token")).await?;
            Ok((alice, owned, token))
        })
    })
    .await
    .expect("commit");
    assert_eq!(
        store.find_user(alice.id).await.expect("find"),
        Some(alice.clone())
    );
    assert_eq!(owned.owner_id, Some(alice.id));
    let found = store.find_token_by_digest("tx-token").await.expect("find");
    assert_eq!(found.map(|f| f.token), Some(token.clone()));

    // A failing write undoes the writes before it.
    let failed = in_transaction(store.as_ref(), |tx| {
        Box::pin(async move {
            tx.insert_user(new_user("tx-bob")).await?;
            tx.insert_application(new_app("tx-app", None)).await?;
            Ok(())
        })
    })
    .await;
    assert_conflict(failed, "uid");
    assert_eq!(
        store.find_user_by_username("tx-bob").await.expect("find"),
        None
    );

    // So does an error of the work's own.
    let refused: Result<(), StoreError> = in_transaction(store.as_ref(), |tx| {
        Box::pin(async move {
            tx.insert_user(new_user("tx-carol")).await?;
            Err(StoreError::internal("changed its mind"))
        })
    })
    .await;
    assert!(matches!(refused, Err(StoreError::Internal(_))));
    assert_eq!(
        store.find_user_by_username("tx-carol").await.expect("find"),
        None
    );

    // Revoke an application's tokens, a personal token, and delete the
    // application, together.
    for n in 0..2 {
        store
            .insert_oauth_token(new_oauth_token(
                owned.id,
                Some(alice.id),
                &format!("tx-access-{n}"),
                None,
                &format!("tx-fam-{n}"),
            ))
            .await
            .expect("token");
    }
    let app_id = owned.id;
    let token_id = token.id;
    let (revoked, pat, deleted) = in_transaction(store.as_ref(), move |tx| {
        Box::pin(async move {
            let revoked = tx.revoke_application_tokens(app_id, T0 + 1).await?;
            let pat = tx.revoke_token(token_id).await?;
            let deleted = tx.delete_application(app_id, Ownership::Any).await?;
            Ok((revoked, pat, deleted))
        })
    })
    .await
    .expect("commit");
    assert_eq!((revoked, pat, deleted), (2, true, true));
    assert_eq!(
        store
            .find_application(app_id, Ownership::Any)
            .await
            .expect("find"),
        None
    );
    assert!(
        store
            .find_token(token_id)
            .await
            .expect("find")
            .expect("kept")
            .revoked
    );
}
