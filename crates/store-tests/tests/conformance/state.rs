//! What declarative state (`latchkey apply`, `export`) reads and writes:
//! the whole of what a state file manages in one read, a token's name,
//! scopes and expiry, an application's secrets replaced at once, a new
//! owner, the state lock, and a password digest replaced only if unchanged.

use latchkey_core::group::{NewGroup, Visibility};

use super::*;

conformance! {
    scenario_read_state => read_state_sqlite, read_state_postgres;
    scenario_state_writes => state_writes_sqlite, state_writes_postgres;
    scenario_imported_credentials_are_rehashed => imported_credentials_are_rehashed_sqlite, imported_credentials_are_rehashed_postgres;
}

/// An imported token's or secret's digest becomes latchkey's only while it
/// is still the imported one; what it was is remembered (as its SHA-256).
async fn scenario_imported_credentials_are_rehashed(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let token = store
        .insert_token(new_token(alice.id, "gitlab-form="))
        .await
        .unwrap();
    assert!(!store.rehash_token(token.id, "other", "ours").await.unwrap());
    assert!(store
        .rehash_token(token.id, "gitlab-form=", "ours")
        .await
        .unwrap());
    assert!(store
        .find_token_by_digest("gitlab-form=")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .find_token_by_digest("ours")
            .await
            .unwrap()
            .unwrap()
            .token
            .id,
        token.id
    );
    let client = app(&store, "client", None).await;
    let secret = store.application_secrets(client.id, T0).await.unwrap()[0].id;
    assert!(!store.rehash_secret(secret, "other", "mine").await.unwrap());
    assert!(store
        .rehash_secret(secret, "digest-of-client", "mine")
        .await
        .unwrap());
    assert_eq!(live_digests(&store, "client", T0).await, ["mine"]);
    let current = store.read_state().await.unwrap();
    assert_eq!(
        current.tokens[0].rehashed_from.as_deref(),
        Some(latchkey_core::secret::digest("gitlab-form=").as_str())
    );
    assert_eq!(
        current
            .secrets_rehashed_from
            .get(&secret)
            .map(String::as_str),
        Some(latchkey_core::secret::digest("digest-of-client").as_str())
    );
}

async fn scenario_read_state(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let live = store
        .insert_token(new_token(alice.id, "live"))
        .await
        .unwrap();
    let revoked = store
        .insert_token(new_token(alice.id, "revoked"))
        .await
        .unwrap();
    assert!(store.revoke_token(revoked.id).await.unwrap());
    let owned = app(&store, "owned", Some(alice.id)).await;
    let mut dynamic = new_app("dynamic", None);
    dynamic.dynamic = true;
    store.insert_application(dynamic).await.unwrap();
    let group = in_transaction(&*store, move |tx| {
        Box::pin(async move {
            tx.insert_group(NewGroup {
                parent_id: None,
                name: "Platform".to_owned(),
                path: "platform".to_owned(),
                full_path: "platform".to_owned(),
                full_name: "Platform".to_owned(),
                description: String::new(),
                visibility: Visibility::Private,
                created_at: T0,
                avatar: None,
            })
            .await
        })
    })
    .await
    .unwrap();

    let current = store.read_state().await.unwrap();
    assert_eq!(current.users.len(), 1);
    assert_eq!(current.users[0].user, alice);
    assert_eq!(
        current.users[0].password_digest.as_deref(),
        Some("$argon2id$not-a-real-hash")
    );
    // Every token with its digest, revoked ones too (their values are
    // spent).
    assert_eq!(current.tokens.len(), 2);
    assert_eq!(current.tokens[0].token, live);
    assert_eq!(current.tokens[0].digest, "live");
    assert!(current.tokens[1].token.revoked);
    assert_eq!(current.tokens[1].digest, "revoked");
    assert_eq!(current.users[0].rehashed_from, None);
    assert_eq!(current.groups, vec![group]);
    assert!(current.members.is_empty());
    // Dynamically registered clients are not managed, but their ids count.
    assert_eq!(current.applications.len(), 1);
    assert_eq!(current.applications[0].app, owned);
    let digests: Vec<&str> = current.applications[0]
        .secrets
        .iter()
        .map(|s| s.digest.as_str())
        .collect();
    assert_eq!(digests, ["digest-of-owned"]);
    assert_eq!(current.dynamic_client_ids, ["dynamic"]);

    // The same, read inside a unit of work (under the state lock).
    let inside = in_transaction(&*store, |tx| {
        Box::pin(async move {
            tx.lock_state().await?;
            tx.read_state().await
        })
    })
    .await
    .unwrap();
    assert_eq!(inside.users.len(), 1);
    assert_eq!(inside.tokens.len(), 2);
    assert_eq!(inside.applications.len(), 1);
}

async fn scenario_state_writes(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let token = store.insert_token(new_token(alice.id, "d1")).await.unwrap();
    let client = app(&store, "client", None).await;
    let (alice_id, token_id, client_id) = (alice.id, token.id, client.id);
    let (renamed, moved) = in_transaction(&*store, move |tx| {
        Box::pin(async move {
            let renamed = tx
                .update_token(
                    token_id,
                    "renamed",
                    &Scopes::from_stored("read_api"),
                    Some(date!(2030 - 01 - 31)),
                )
                .await?;
            tx.replace_application_secrets(
                client_id,
                vec![
                    new_secret("old", T0 + 1, Some(T0 + 1000)),
                    new_secret("new", T0 + 1, None),
                ],
            )
            .await?;
            let moved = tx
                .update_application(
                    client_id,
                    ApplicationUpdate {
                        owner: Some((Some(alice_id), None)),
                        ..ApplicationUpdate::default()
                    },
                    T0 + 1,
                )
                .await?;
            Ok((renamed, moved))
        })
    })
    .await
    .unwrap();
    let renamed = renamed.expect("the token");
    assert_eq!(renamed.name, "renamed");
    assert_eq!(renamed.scopes, Scopes::from_stored("read_api"));
    assert_eq!(renamed.expires_at, Some(date!(2030 - 01 - 31)));
    // Still found by its digest, changed.
    let found = store.find_token_by_digest("d1").await.unwrap().unwrap();
    assert_eq!(found.token, renamed);

    assert_eq!(live_digests(&store, "client", T0 + 2).await, ["old", "new"]);
    assert_eq!(live_digests(&store, "client", T0 + 1000).await, ["new"]);
    // A hint left empty is no hint.
    let id = client_id;
    in_transaction(&*store, move |tx| {
        Box::pin(async move {
            let mut bare = new_secret("bare", T0 + 3, None);
            bare.hint = String::new();
            tx.replace_application_secrets(id, vec![bare]).await
        })
    })
    .await
    .unwrap();
    let infos = store.application_secrets(client_id, T0 + 3).await.unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].hint, None);

    // A new owner; the instance's list no longer has it.
    let moved = moved.expect("the application");
    assert_eq!((moved.owner_id, moved.group_id), (Some(alice.id), None));
    let (instance, _) = store.list_instance_applications(page(1, 20)).await.unwrap();
    assert!(instance.is_empty());
    // Back to instance-wide; other attributes untouched.
    let back = store
        .update_application(
            client_id,
            ApplicationUpdate {
                owner: Some((None, None)),
                ..ApplicationUpdate::default()
            },
            T0 + 4,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((back.owner_id, back.group_id), (None, None));
    assert_eq!(back.name, client.name);

    // A password digest is replaced only while it is what was verified.
    assert!(!store
        .replace_password_digest(alice.id, "$argon2id$other", "$argon2id$new")
        .await
        .unwrap());
    assert!(store
        .replace_password_digest(alice.id, "$argon2id$not-a-real-hash", "$argon2id$new")
        .await
        .unwrap());
    let (_, digest) = store.find_user_for_login("alice").await.unwrap().unwrap();
    assert_eq!(digest.as_deref(), Some("$argon2id$new"));
    // The rehash remembers what it replaced (as its SHA-256) ...
    let rehashed = |store: Arc<dyn Store>| async move {
        store.read_state().await.unwrap().users[0]
            .rehashed_from
            .clone()
    };
    assert_eq!(
        rehashed(store.clone()).await,
        Some(latchkey_core::secret::digest("$argon2id$not-a-real-hash"))
    );
    // ... until the password changes otherwise; other changes keep it.
    let update = |u: UserUpdate| {
        let store = store.clone();
        async move { store.update_user(alice_id, u).await.unwrap().unwrap() }
    };
    update(UserUpdate {
        name: Some("Alice".to_owned()),
        ..UserUpdate::default()
    })
    .await;
    assert!(rehashed(store.clone()).await.is_some());
    update(UserUpdate {
        password_digest: Some("$argon2id$changed".to_owned()),
        ..UserUpdate::default()
    })
    .await;
    assert_eq!(rehashed(store.clone()).await, None);
}
