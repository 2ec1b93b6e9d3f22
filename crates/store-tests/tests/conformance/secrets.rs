//! Applications' secrets beyond renewal: deleting one, revoking
//! everything, when each was last used, and the sweep of expired ones.

use latchkey_core::application::SecretDeletion;

use super::*;

conformance! {
    scenario_secret_deletion_and_revoke_all => secret_deletion_and_revoke_all_sqlite, secret_deletion_and_revoke_all_postgres;
    scenario_secret_use_and_expiry => secret_use_and_expiry_sqlite, secret_use_and_expiry_postgres;
}

async fn delete_secret(store: &Arc<dyn Store>, app: i64, secret: i64, now: i64) -> SecretDeletion {
    in_transaction(&**store, move |tx| {
        Box::pin(async move { tx.delete_application_secret(app, secret, now).await })
    })
    .await
    .expect("delete secret")
}

async fn scenario_secret_deletion_and_revoke_all(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let client = app(&store, "client", None).await;
    let other = app(&store, "other", None).await;
    let first = store.application_secrets(client.id, T0).await.unwrap()[0].clone();
    // The last live secret stays; another application's is not found.
    assert_eq!(
        delete_secret(&store, client.id, first.id, T0).await,
        SecretDeletion::LastLive
    );
    let others = store.application_secrets(other.id, T0).await.unwrap()[0].id;
    assert_eq!(
        delete_secret(&store, client.id, others, T0).await,
        SecretDeletion::NotFound
    );
    let (_, second) = renew(
        &store,
        client.id,
        Ownership::Any,
        new_secret("second", T0 + 1, None),
        Retire::At(T0 + 100),
    )
    .await
    .expect("renewed");
    assert_eq!(
        delete_secret(&store, client.id, first.id, T0 + 2).await,
        SecretDeletion::Deleted
    );
    assert_eq!(live_digests(&store, "client", T0 + 2).await, ["second"]);
    assert_eq!(
        delete_secret(&store, client.id, second.id, T0 + 2).await,
        SecretDeletion::LastLive
    );

    // Revoking everything: tokens revoked, codes and device grants gone,
    // one fresh secret.
    let token = store
        .insert_oauth_token(new_oauth_token(
            client.id,
            Some(alice.id),
            "access-1",
            None,
            "fam-1",
        ))
        .await
        .expect("token");
    store
        .insert_grant(new_grant(client.id, alice.id, "code-1"))
        .await
        .expect("grant");
    let id = client.id;
    let done = in_transaction(&*store, move |tx| {
        Box::pin(async move {
            tx.revoke_all_of_application(
                id,
                Ownership::Instance,
                new_secret("fresh", T0 + 3, None),
                T0 + 3,
            )
            .await
        })
    })
    .await
    .expect("revoke all");
    assert!(done.is_some());
    assert_eq!(live_digests(&store, "client", T0 + 3).await, ["fresh"]);
    let found = find_by_access(&store, "access-1")
        .await
        .expect("kept, revoked");
    assert_eq!(found.id, token.id);
    assert_eq!(found.revoked_at, Some(T0 + 3));
    assert!(store
        .find_grant("code-1")
        .await
        .expect("find grant")
        .is_none());
    assert_eq!(
        live_digests(&store, "other", T0 + 3).await,
        ["digest-of-other"]
    );
    let refused = in_transaction(&*store, move |tx| {
        Box::pin(async move {
            tx.revoke_all_of_application(id, Ownership::Group(1), new_secret("x", T0, None), T0)
                .await
        })
    })
    .await
    .expect("revoke all");
    assert!(refused.is_none(), "another scope");

    // A token issued on a secret is stored only while that secret lives.
    let fresh = store.application_secrets(id, T0 + 4).await.unwrap()[0].id;
    let mut on_fresh = new_oauth_token(id, None, "access-2", None, "fam-2");
    on_fresh.client_secret_id = Some(fresh);
    on_fresh.created_at = T0 + 4;
    store
        .insert_oauth_token(on_fresh)
        .await
        .expect("a live secret");
    let mut on_old = new_oauth_token(id, None, "access-3", None, "fam-3");
    on_old.client_secret_id = Some(first.id);
    on_old.created_at = T0 + 4;
    assert_gone(store.insert_oauth_token(on_old).await);
}

async fn scenario_secret_use_and_expiry(store: Arc<dyn Store>) {
    let client = app(&store, "client", None).await;
    let (_, short) = renew(
        &store,
        client.id,
        Ownership::Any,
        new_secret("short", T0, Some(T0 + 50)),
        Retire::At(T0 + 10),
    )
    .await
    .expect("renewed");
    let old = store.application_secrets(client.id, T0).await.unwrap()[0].id;
    // Uses are written in a batch and never move backwards.
    assert_eq!(
        store
            .record_secret_usage(vec![(short.id, T0 + 5), (old, T0 + 7)])
            .await
            .expect("usage"),
        2
    );
    assert_eq!(
        store
            .record_secret_usage(vec![(short.id, T0 + 1)])
            .await
            .expect("usage"),
        0
    );
    let listed = store.application_secrets(client.id, T0 + 8).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].last_used_at, Some(T0 + 5));
    // The sweep removes expired secrets (the application stays).
    store.delete_expired(T0 + 60).await.expect("sweep");
    let (_, secrets) = store
        .find_application_by_uid("client")
        .await
        .unwrap()
        .expect("still there");
    assert!(secrets.is_empty(), "both expired: {secrets:?}");
    assert!(store
        .application_secrets(client.id, T0 + 60)
        .await
        .unwrap()
        .is_empty());
}
