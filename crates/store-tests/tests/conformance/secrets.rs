//! Applications' secrets beyond renewal: deleting one, revoking
//! everything, when each was last used, and the sweep of expired ones.

use latchkey_core::application::SecretDeletion;

use super::*;

conformance! {
    scenario_secret_deletion_and_revoke_all => secret_deletion_and_revoke_all_sqlite, secret_deletion_and_revoke_all_postgres;
    scenario_secret_use_and_expiry => secret_use_and_expiry_sqlite, secret_use_and_expiry_postgres;
    #[env] scenario_tokens_inserted_at_once => tokens_inserted_at_once_sqlite, tokens_inserted_at_once_postgres;
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

/// PostgreSQL only (SQLite's one writer runs a token's check and insert as
/// one job, with nothing between them): a token whose insert has begun
/// when its client secret is deleted (by a renewal, revoke-all, or an
/// operator) and which commits after that delete is refused, never
/// stored on a secret that no longer exists. The insert is held back by a
/// lock on the tokens' table after it has been sent; the delete commits
/// meanwhile; then the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_insert_held_back_past_its_secrets_delete_postgres() {
    run_postgres(Box::new(|store: Arc<dyn Store>, env: Env| {
        scenario_token_insert_held_back(store, env).boxed()
    }))
    .await;
}

async fn scenario_token_insert_held_back(store: Arc<dyn Store>, env: Env) {
    let Raw::Postgres(pool) = env.raw.clone() else {
        panic!("a PostgreSQL scenario run on {:?}", env.kind());
    };
    let client = app(&store, "client", None).await;
    let secret = store.application_secrets(client.id, T0).await.unwrap()[0].id;

    let mut holder = pool.begin().await.expect("begin");
    (&mut *holder)
        .execute("LOCK TABLE oauth_access_tokens IN SHARE MODE")
        .await
        .expect("lock the tokens' table");
    let inserting = insert_on(&store, client.id, secret, "access-held");
    // Until the insert waits for the table.
    env.wait_for_waiting_locks(1).await;
    assert_eq!(
        env.raw
            .execute(&format!(
                "DELETE FROM application_secrets WHERE id = {secret}"
            ))
            .await,
        1,
        "the secret is deleted while the token's insert waits"
    );
    holder.commit().await.expect("release the table");

    assert_gone(inserting.await.expect("the insert's task"));

    // The other order: the secret's delete has begun (its row locked, not
    // committed) when the token's insert starts; the insert waits for it
    // and sees the secret gone.
    let other = app(&store, "other", None).await;
    let secret = store.application_secrets(other.id, T0).await.unwrap()[0].id;
    let mut holder = pool.begin().await.expect("begin");
    (&mut *holder)
        .execute(format!("DELETE FROM application_secrets WHERE id = {secret}").as_str())
        .await
        .expect("delete the secret, uncommitted");
    let inserting = insert_on(&store, other.id, secret, "access-behind");
    env.wait_for_waiting_locks(1).await;
    holder.commit().await.expect("commit the delete");
    assert_gone(inserting.await.expect("the insert's task"));

    assert_eq!(
        env.raw
            .strings("SELECT token_digest FROM oauth_access_tokens")
            .await,
        Vec::<Option<String>>::new(),
        "no token stored on a deleted secret"
    );
}

/// Many token inserts at the same moment (PostgreSQL runs them several to
/// a statement): each gets its own answer. A token on a live secret, or on
/// none, is stored as given; one on a deleted or expired secret is `Gone`
/// and not stored; one on a deleted application fails alone.
async fn scenario_tokens_inserted_at_once(store: Arc<dyn Store>, env: Env) {
    let alice = user(&store, "alice").await;
    let client = app(&store, "client", None).await;
    let live = store.application_secrets(client.id, T0).await.unwrap()[0].id;
    let (_, expiring) = renew(
        &store,
        client.id,
        Ownership::Any,
        new_secret("expiring", T0, Some(T0 + 10)),
        Retire::At(T0 + 100),
    )
    .await
    .expect("renewed");
    let gone = app(&store, "gone", None).await;
    let gone_id = gone.id;
    store
        .delete_application(gone_id, Ownership::Any)
        .await
        .expect("delete the application");

    // Twice: live and dead secrets mixed, which a batch answers in one
    // statement; then with tokens on a deleted application mixed in too,
    // which fail a batch, so each of its inserts runs again alone.
    let mut stored = 0;
    for round in ["secrets", "deleted"] {
        // (digest, the token, what it must give: Some(true) stored,
        // Some(false) Gone, None any error)
        let mut cases = Vec::new();
        for i in 0..96 {
            let digest = format!("{round}-{i}");
            let mut t = new_oauth_token(client.id, Some(alice.id), &digest, None, &digest);
            t.created_at = T0 + 20;
            let expect = match i % 6 {
                0 => {
                    t.client_secret_id = Some(expiring.id); // expired at T0 + 10
                    Some(false)
                }
                1 => {
                    t.client_secret_id = Some(live + 10_000); // no such secret
                    Some(false)
                }
                2 if round == "deleted" => {
                    t.application_id = gone_id;
                    None
                }
                3 | 4 => {
                    t.client_secret_id = Some(live);
                    Some(true)
                }
                _ => Some(true),
            };
            cases.push((digest, t, expect));
        }
        let results = futures::future::join_all(
            cases
                .iter()
                .map(|(_, t, _)| store.insert_oauth_token(t.clone())),
        )
        .await;
        let mut stored_now = 0;
        for ((digest, t, expect), result) in cases.iter().zip(results) {
            match (expect, result) {
                (Some(true), Ok(token)) => {
                    stored_now += 1;
                    assert_eq!(token.application_id, t.application_id, "{digest}");
                    assert_eq!(token.user_id, t.user_id, "{digest}");
                    assert_eq!(token.family, t.family, "{digest}");
                    assert_eq!(token.created_at, t.created_at, "{digest}");
                    assert_eq!(token.expires_at, t.expires_at, "{digest}");
                    let found = store
                        .find_oauth_token_by_access(digest)
                        .await
                        .expect("find")
                        .unwrap_or_else(|| panic!("{digest} is stored"));
                    assert_eq!(found.token.id, token.id, "{digest}");
                }
                (Some(false), result) => assert_gone(result),
                (None, result) => {
                    assert!(
                        result.is_err(),
                        "{digest}: on a deleted application: {result:?}"
                    )
                }
                (Some(true), Err(e)) => panic!("{digest}: {e}"),
            }
        }
        stored += stored_now;
        let rows = env
            .raw
            .strings("SELECT CAST(COUNT(*) AS TEXT) FROM oauth_access_tokens")
            .await;
        assert_eq!(
            rows,
            [Some(stored.to_string())],
            "only the stored tokens exist"
        );
        if env.kind() == Kind::Postgres && round == "secrets" {
            let n = env.committing_transactions("oauth_access_tokens").await;
            assert!(
                n < stored_now,
                "inserts waiting together commit together ({n} transactions for {stored_now} tokens)"
            );
        }
    }
}

/// A token on `secret` of `application`, inserted by a task of its own.
fn insert_on(
    store: &Arc<dyn Store>,
    application: i64,
    secret: i64,
    digest: &str,
) -> tokio::task::JoinHandle<Result<OAuthToken, StoreError>> {
    let mut token = new_oauth_token(application, None, digest, None, digest);
    token.client_secret_id = Some(secret);
    token.created_at = T0;
    let store = store.clone();
    tokio::spawn(async move { store.insert_oauth_token(token).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_batch_racing_a_delete_of_several_applications_postgres() {
    run_postgres(Box::new(|store: Arc<dyn Store>, env: Env| {
        scenario_token_batch_racing_a_multi_application_delete(store, env).boxed()
    }))
    .await;
}

/// PostgreSQL: a batch of token inserts locks its applications, each
/// before its secret, in the order of the secrets; a group's delete takes
/// the group's applications in the order of their ids, and their secrets
/// after. When the two orders disagree (an older application with a
/// newer secret), the batch could hold the newer application while it
/// waited for the older one, which the delete held while it waited for
/// the newer: a deadlock, in which the delete could be the one aborted
/// (answered 503). A batch now takes its rows `SKIP LOCKED`: it never
/// waits holding one; a token whose row is held is left out and inserted
/// alone (holding one application).
///
/// Both of the store's batch runners are held at a third application, so
/// that the two tokens queue and then run as one batch; the newer
/// application's secret is held (as the flush of last uses holds it), so
/// that the batch stops there holding the newer application; the group's
/// delete starts, takes the older application and waits for the newer;
/// then the secret goes free, and the batch goes on to the older
/// application.
async fn scenario_token_batch_racing_a_multi_application_delete(store: Arc<dyn Store>, env: Env) {
    assert_eq!(env.kind(), Kind::Postgres);
    let group = super::groups::make_group(
        &store,
        None,
        "two-apps",
        latchkey_core::group::Visibility::Private,
    )
    .await;
    let in_group = |uid: &str| {
        let mut new = new_app(uid, None);
        new.group_id = Some(group.id);
        new
    };
    let older = store
        .insert_application(in_group("older"))
        .await
        .expect("app");
    let newer = store
        .insert_application(in_group("newer"))
        .await
        .expect("app");
    let newer_secret = store.application_secrets(newer.id, T0).await.unwrap()[0].id;
    // The older application's live secret is the newer one.
    let (_, older_secret) = renew(
        &store,
        older.id,
        Ownership::Any,
        new_secret("older-renewed", T0, None),
        Retire::At(T0),
    )
    .await
    .expect("renewed");
    assert!(older.id < newer.id && older_secret.id > newer_secret);
    let blocker = app(&store, "blocker", None).await;
    let blocker_secret = store.application_secrets(blocker.id, T0).await.unwrap()[0].id;

    // Both runners busy, each with an insert on the blocker.
    let runners = BusyRunners::start(
        &env,
        &format!(
            "SELECT id FROM oauth_applications WHERE id = {} FOR UPDATE",
            blocker.id
        ),
        |digest| insert_on(&store, blocker.id, blocker_secret, digest),
    )
    .await;
    // Two tokens queued behind the runners: one batch, which will stop at
    // the newer application's secret.
    let secret_held = env
        .hold(&format!(
            "SELECT id FROM application_secrets WHERE id = {newer_secret} FOR UPDATE"
        ))
        .await;
    let batched = [
        insert_on(&store, older.id, older_secret.id, "on-older"),
        insert_on(&store, newer.id, newer_secret, "on-newer"),
    ];
    runners.release().await;
    // The batch (now: the insert on the newer application alone, left out
    // of it) waits for the secret.
    env.wait_for_waiting_locks(1).await;
    let deleting = {
        let store = store.clone();
        let group_id = group.id;
        tokio::spawn(async move {
            in_transaction(&*store, move |tx| {
                Box::pin(async move { tx.delete_group(group_id).await })
            })
            .await
        })
    };
    // The delete waits for the newer application.
    env.wait_for_waiting_locks(2).await;
    secret_held.release().await;

    let deleted = tokio::time::timeout(Duration::from_secs(60), deleting)
        .await
        .expect("the delete finished")
        .expect("the delete's task");
    assert!(
        deleted.unwrap_or_else(|e| panic!("the group's delete failed: {e}")),
        "the group was deleted"
    );
    for (inserting, digest) in batched.into_iter().zip(["on-older", "on-newer"]) {
        let inserted = tokio::time::timeout(Duration::from_secs(60), inserting)
            .await
            .unwrap_or_else(|_| panic!("{digest}: the insert never finished"))
            .expect("the insert's task");
        // Before the delete (and gone with it), or after it: gone.
        assert!(
            matches!(inserted, Ok(_) | Err(StoreError::Gone)),
            "{digest}: {inserted:?}"
        );
        assert!(store
            .find_oauth_token_by_access(digest)
            .await
            .unwrap()
            .is_none());
    }
}
