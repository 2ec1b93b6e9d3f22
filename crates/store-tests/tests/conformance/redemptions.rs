//! PostgreSQL: a unit of work that issues a token beside other writes (a
//! code redeemed, a refresh token rotated, a device grant redeemed, the
//! password grant) while revoke-all, its application's delete, its user's
//! delete, a revocation of its family or code, or the expired-data sweep
//! runs. Every pair finishes without a deadlock (which would be answered
//! 503), and the token does not outlive what revoked or deleted its
//! application or user.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redemptions_racing_revocations_and_deletes_postgres() {
    run_postgres(Box::new(|store: Arc<dyn Store>, env: Env| {
        scenario_redemptions_racing_revocations_and_deletes(store, env).boxed()
    }))
    .await;
}

#[derive(Debug, Clone, Copy)]
enum Redemption {
    Code,
    Refresh,
    Device,
    /// The password grant: nothing redeemed, the token inserted in a unit
    /// of work with its audit event.
    Password,
}

/// What holds the redemption back just before its token's insert.
#[derive(Debug, Clone, Copy)]
enum Hold {
    /// An uncommitted insert of the same token digest, on another
    /// application: the insert waits on its unique index, after it has
    /// locked the application (before the units locked it first, too).
    Digest,
    /// A `SHARE` lock on the tokens' table: the insert waits before it
    /// takes a lock of its own (so do a refresh's mark of the old token,
    /// which then holds nothing yet, and any racer's write to the table).
    Table,
}

#[derive(Debug, Clone, Copy)]
enum Racer {
    RevokeAll,
    DeleteApplication,
    DeleteUser,
    /// Revoking the token's family (a refresh token replayed, RFC 7009).
    RevokeFamily,
    /// Revoking what a code issued (the code replayed).
    RevokeGrantTokens,
    /// The expired-data sweep, once the chain's code has expired: it
    /// deletes the code's grant, and so (`ON DELETE SET NULL`) updates the
    /// tokens issued from it.
    Sweep,
}

/// What the racer revokes or deletes.
#[derive(Debug, Clone)]
struct Target {
    app_id: i64,
    user_id: i64,
    family: String,
    grant_id: i64,
}

/// The racer's answer: `true` if it found what it revokes or deletes.
async fn race(store: Arc<dyn Store>, racer: Racer, target: Target) -> bool {
    let Target {
        app_id,
        user_id,
        family,
        grant_id,
    } = target;
    match racer {
        Racer::RevokeAll => in_transaction(&*store, move |tx| {
            Box::pin(async move {
                tx.revoke_all_of_application(
                    app_id,
                    Ownership::Any,
                    new_secret(&format!("fresh-{app_id}"), T0 + 2, None),
                    T0 + 2,
                )
                .await
            })
        })
        .await
        .expect("revoke-all")
        .is_some(),
        Racer::DeleteApplication => store
            .delete_application(app_id, Ownership::Any)
            .await
            .expect("the application's delete"),
        Racer::DeleteUser => store.delete_user(user_id).await.expect("the user's delete"),
        Racer::RevokeFamily => {
            store
                .revoke_token_family(&family, T0 + 2)
                .await
                .expect("the family's revocation")
                > 0
        }
        Racer::RevokeGrantTokens => {
            store
                .revoke_grant_tokens(grant_id, T0 + 2)
                .await
                .expect("the grant's revocation")
                > 0
        }
        Racer::Sweep => {
            let expired = new_grant(app_id, user_id, "unused").expires_at + 1;
            store.delete_expired(expired).await.expect("the sweep") > 0
        }
    }
}

/// Each redemption against each racer, held back each way. The redemption
/// starts first and is held back (see [`Hold`]); the racer starts and
/// waits; then the holder lets go. Before the units locked the user and
/// the application first, a redemption held its grant (or old token) and
/// waited for the application (or the user) that a delete held while it
/// waited for the grant: a deadlock (a code's redemption against its
/// application's delete held back by the table, or against its user's
/// delete held back by the digest). And a code's redemption could commit
/// its token after revoke-all's revocation: a live token on a revoked
/// application.
async fn scenario_redemptions_racing_revocations_and_deletes(store: Arc<dyn Store>, env: Env) {
    let Raw::Postgres(pool) = env.raw.clone() else {
        panic!("a PostgreSQL scenario run on {:?}", env.kind());
    };
    let bystander = app(&store, "bystander", None).await;
    let mut cases = Vec::new();
    for hold in [Hold::Digest, Hold::Table] {
        for redemption in [
            Redemption::Code,
            Redemption::Refresh,
            Redemption::Device,
            Redemption::Password,
        ] {
            for racer in [
                Racer::RevokeAll,
                Racer::DeleteApplication,
                Racer::DeleteUser,
            ] {
                cases.push((hold, redemption, racer));
            }
            // These wait for the token a refresh rotates, which it holds
            // from its mark (held back by the table, a refresh waits before
            // its mark, and either may go first).
            if let (Hold::Digest, Redemption::Refresh) = (hold, redemption) {
                cases.push((hold, redemption, Racer::RevokeFamily));
                cases.push((hold, redemption, Racer::RevokeGrantTokens));
            }
            // Locked only by the new token's foreign-key check, the grant
            // was a deadlock's: the refresh held the old token and waited
            // for the grant the sweep deleted, which waited for the old
            // token. Nor may the sweep make the unit fail: a refresh's
            // token is then issued without a grant.
            if let Redemption::Code | Redemption::Refresh = redemption {
                cases.push((hold, redemption, Racer::Sweep));
            }
        }
    }
    for (n, (hold, redemption, racer)) in (1..).zip(cases) {
        let name = format!("{hold:?}-{redemption:?}-{racer:?}").to_lowercase();
        let alice = user(&store, &format!("user-{n}")).await;
        // The user's own application: a user's delete reaches it too.
        let client = app(&store, &name, Some(alice.id)).await;
        let digest = format!("{name}-access");
        let mut token = new_oauth_token(
            client.id,
            Some(alice.id),
            &digest,
            Some(&format!("{name}-refresh")),
            &name,
        );
        token.created_at = T0 + 1;
        // The code behind the tokens (for a refresh: behind the chain).
        let grant = store
            .insert_grant(new_grant(client.id, alice.id, &format!("{name}-code")))
            .await
            .expect("grant");
        token.grant_id = Some(grant.id);
        let redeem: BoxFuture<'static, Result<Option<OAuthToken>, StoreError>> = match redemption {
            Redemption::Code => {
                let store = store.clone();
                async move { store.redeem_grant(grant.id, T0 + 1, token).await }.boxed()
            }
            Redemption::Refresh => {
                let mut old = new_oauth_token(
                    client.id,
                    Some(alice.id),
                    &format!("{name}-old"),
                    Some(&format!("{name}-old-refresh")),
                    &name,
                );
                old.grant_id = Some(grant.id);
                let old = store
                    .insert_oauth_token(old)
                    .await
                    .expect("the token to refresh");
                token.previous_token_id = Some(old.id);
                let store = store.clone();
                async move { store.refresh_oauth_token(old.id, T0 + 1, token).await }.boxed()
            }
            Redemption::Password => {
                let store = store.clone();
                async move {
                    in_transaction(&*store, move |tx| {
                        Box::pin(async move { tx.insert_oauth_token(token).await.map(Some) })
                    })
                    .await
                }
                .boxed()
            }
            Redemption::Device => {
                let grant = store
                    .insert_device_grant(super::more::new_device_grant(client.id, n, T0 + 300_000))
                    .await
                    .expect("device grant");
                assert!(store
                    .decide_device_grant(grant.id, alice.id, true, T0, T0)
                    .await
                    .expect("approve"));
                let store = store.clone();
                async move { store.redeem_device_grant(grant.id, token).await }.boxed()
            }
        };

        let mut holder = pool.begin().await.expect("begin");
        let holding = match hold {
            Hold::Digest => format!(
                "INSERT INTO oauth_access_tokens
                   (application_id, token_digest, scopes, created_at, expires_at, family)
                 VALUES ({}, '{digest}', 'api', {T0}, {T0}, 'holder')",
                bystander.id
            ),
            Hold::Table => "LOCK TABLE oauth_access_tokens IN SHARE MODE".to_owned(),
        };
        (&mut *holder)
            .execute(holding.as_str())
            .await
            .expect("hold the redemption back");
        let redeeming = tokio::spawn(redeem);
        env.wait_for_waiting_locks(1).await;
        let target = Target {
            app_id: client.id,
            user_id: alice.id,
            family: name.clone(),
            grant_id: grant.id,
        };
        let racing = tokio::spawn(race(store.clone(), racer, target));
        env.wait_for_waiting_locks(2).await;
        holder.rollback().await.expect("let the redemption go");

        let redeemed = tokio::time::timeout(Duration::from_secs(60), redeeming)
            .await
            .unwrap_or_else(|_| panic!("{name}: the redemption never finished"))
            .expect("the redemption's task");
        let raced = tokio::time::timeout(Duration::from_secs(60), racing)
            .await
            .unwrap_or_else(|_| panic!("{name}: the racer never finished"))
            .expect("the racer's task");
        assert!(raced, "{name}: the racer found what it revokes or deletes");
        let redeemed = redeemed.unwrap_or_else(|e| panic!("{name}: the redemption failed: {e}"));
        let found = find_by_access(&store, &digest).await;
        let Some(issued) = redeemed else {
            // Held back by the table, a refresh waits at its mark of the
            // old token, before it locks anything, and the racer may go
            // first: then the refresh spends nothing and issues nothing.
            assert!(
                matches!((hold, redemption), (Hold::Table, Redemption::Refresh)),
                "{name}: began first and holds its user and application, yet redeemed nothing"
            );
            assert!(found.is_none(), "{name}: nothing issued");
            continue;
        };
        // The redemption held its user and application: it finished, then
        // the racer ran.
        assert_eq!(issued.application_id, client.id, "{name}");
        match racer {
            Racer::RevokeAll | Racer::RevokeFamily | Racer::RevokeGrantTokens => {
                let found = found.unwrap_or_else(|| panic!("{name}: the token is kept"));
                assert_eq!(found.revoked_at, Some(T0 + 2), "{name}: revoked");
            }
            Racer::DeleteApplication | Racer::DeleteUser => {
                assert!(found.is_none(), "{name}: the token went with its parent");
            }
            Racer::Sweep => {
                let found = found.unwrap_or_else(|| panic!("{name}: the token is kept"));
                assert_eq!(found.revoked_at, None, "{name}: live");
                assert_eq!(found.grant_id, None, "{name}: its grant swept after it");
            }
        }
    }
}

/// A user (named `name`), the one owner of a group (`name`) that has an
/// application (`name`-client): what the user's hard delete takes with it.
pub(super) async fn user_alone_in_a_group_with_an_app(
    store: &Arc<dyn Store>,
    name: &str,
) -> (User, latchkey_core::group::Group, Application) {
    let alice = user(store, &format!("{name}-owner")).await;
    let group =
        super::groups::make_group(store, None, name, latchkey_core::group::Visibility::Private)
            .await;
    super::groups::join(
        store,
        &group,
        &alice,
        latchkey_core::group::level::OWNER,
        None,
    )
    .await;
    let mut new = new_app(&format!("{name}-client"), None);
    new.group_id = Some(group.id);
    let client = store.insert_application(new).await.expect("group app");
    (alice, group, client)
}

/// A user's hard delete as the users' service runs it, started: the user
/// (`find_user_to_delete`), the group the user alone owns (and so its
/// applications), then the user's row.
pub(super) fn hard_delete(
    store: Arc<dyn Store>,
    user_id: i64,
    group_id: i64,
) -> tokio::task::JoinHandle<Result<bool, StoreError>> {
    tokio::spawn(async move {
        in_transaction(&*store, move |tx| {
            Box::pin(async move {
                assert!(tx.find_user_to_delete(user_id).await?.is_some());
                assert!(tx.delete_group(group_id).await?);
                tx.delete_user(user_id).await
            })
        })
        .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_users_hard_delete_racing_a_redemption_postgres() {
    run_postgres(Box::new(|store: Arc<dyn Store>, env: Env| {
        scenario_hard_delete_racing_a_redemption(store, env).boxed()
    }))
    .await;
}

/// A user's hard delete, as the users' service runs it: the user, then
/// the groups the user alone owns (and so their applications), then the
/// user's row. It is held back before the user's row by a `SHARE` lock on
/// the users' table, holding the group's application; then the user's
/// code on that application is redeemed. Locked `FOR NO KEY UPDATE`, the
/// user did not keep the redemption out: it held the user `KEY SHARE` and
/// waited for the application, and the delete waited for the user (a
/// deadlock). Locked `FOR UPDATE` (`find_user_to_delete`), the redemption
/// waits for the whole delete, and then finds nothing to redeem.
async fn scenario_hard_delete_racing_a_redemption(store: Arc<dyn Store>, env: Env) {
    let Raw::Postgres(pool) = env.raw.clone() else {
        panic!("a PostgreSQL scenario run on {:?}", env.kind());
    };
    let (alice, group, client) = user_alone_in_a_group_with_an_app(&store, "alone").await;
    let grant = store
        .insert_grant(new_grant(client.id, alice.id, "hard-code"))
        .await
        .expect("grant");
    let mut token = new_oauth_token(client.id, Some(alice.id), "hard-access", None, "hard");
    token.grant_id = Some(grant.id);

    let mut holder = pool.begin().await.expect("begin");
    (&mut *holder)
        .execute("LOCK TABLE users IN SHARE MODE")
        .await
        .expect("hold the user's delete back");
    let deleting = hard_delete(store.clone(), alice.id, group.id);
    env.wait_for_waiting_locks(1).await;
    let redeeming = {
        let store = store.clone();
        tokio::spawn(async move { store.redeem_grant(grant.id, T0 + 1, token).await })
    };
    env.wait_for_waiting_locks(2).await;
    holder.rollback().await.expect("let the delete go");

    let deleted = tokio::time::timeout(Duration::from_secs(60), deleting)
        .await
        .expect("the delete finished")
        .expect("the delete's task");
    assert!(deleted.expect("the user's delete"), "the user was deleted");
    let redeemed = tokio::time::timeout(Duration::from_secs(60), redeeming)
        .await
        .expect("the redemption finished")
        .expect("the redemption's task");
    assert!(
        matches!(redeemed, Ok(None)),
        "the code went with its application: {redeemed:?}"
    );
    assert!(find_by_access(&store, "hard-access").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn units_racing_a_users_hard_delete_before_its_applications_postgres() {
    run_postgres(Box::new(|store: Arc<dyn Store>, env: Env| {
        scenario_units_racing_a_hard_delete(store, env).boxed()
    }))
    .await;
}

/// A unit of work that writes for a user on an application the user's
/// hard delete takes with it (the application of a group the user alone
/// owns).
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// A code's redemption (`parents_locked!`).
    Redeem,
    /// A code's grant stored (`INSERT_GRANT`).
    InsertGrant,
    /// The user's approval of a device request (`DECIDE`).
    Decide,
    /// The password grant's token (`lock_token_parents`).
    Password,
}

/// A user's hard delete holds the user (`find_user_to_delete`) and is held
/// back before it deletes the group the user alone owns, with its
/// application (a `SHARE` lock on the groups' table); then each unit runs
/// for that user on that application. A unit whose foreign-key checks
/// locked the application (or the device grant) before the user held it
/// while it waited for the user, and the delete, going on, waited for it:
/// a deadlock (a code's grant and a device approval did, checked). Now
/// each unit waits for the user first, holding nothing, and then finds
/// the user gone.
async fn scenario_units_racing_a_hard_delete(store: Arc<dyn Store>, env: Env) {
    let Raw::Postgres(pool) = env.raw.clone() else {
        panic!("a PostgreSQL scenario run on {:?}", env.kind());
    };
    for (n, unit) in (1..).zip([
        Unit::Redeem,
        Unit::InsertGrant,
        Unit::Decide,
        Unit::Password,
    ]) {
        let name = format!("{unit:?}").to_lowercase();
        let (alice, group, client) =
            user_alone_in_a_group_with_an_app(&store, &format!("alone-{n}")).await;
        let mut token = new_oauth_token(
            client.id,
            Some(alice.id),
            &format!("{name}-access"),
            None,
            &name,
        );
        let work: BoxFuture<'static, Result<String, StoreError>> = match unit {
            Unit::Redeem => {
                let grant = store
                    .insert_grant(new_grant(client.id, alice.id, &format!("{name}-code")))
                    .await
                    .expect("grant");
                token.grant_id = Some(grant.id);
                let store = store.clone();
                async move {
                    let r = store.redeem_grant(grant.id, T0 + 1, token).await?;
                    Ok(format!("{:?}", r.map(|t| t.id)))
                }
                .boxed()
            }
            Unit::InsertGrant => {
                let store = store.clone();
                let input = new_grant(client.id, alice.id, &format!("{name}-code"));
                async move {
                    let g = store.insert_grant(input).await?;
                    Ok(format!("grant {}", g.id))
                }
                .boxed()
            }
            Unit::Decide => {
                let pending = store
                    .insert_device_grant(super::more::new_device_grant(client.id, n, T0 + 300_000))
                    .await
                    .expect("device grant");
                let store = store.clone();
                async move {
                    let decided = store
                        .decide_device_grant(pending.id, alice.id, true, T0, T0)
                        .await?;
                    Ok(format!("decided {decided}"))
                }
                .boxed()
            }
            Unit::Password => {
                let store = store.clone();
                async move {
                    let t = in_transaction(&*store, move |tx| {
                        Box::pin(async move { tx.insert_oauth_token(token).await })
                    })
                    .await?;
                    Ok(format!("token {}", t.id))
                }
                .boxed()
            }
        };

        let mut holder = pool.begin().await.expect("begin");
        (&mut *holder)
            .execute("LOCK TABLE groups IN SHARE MODE")
            .await
            .expect("hold the user's delete back");
        let deleting = hard_delete(store.clone(), alice.id, group.id);
        env.wait_for_waiting_locks(1).await;
        let working = tokio::spawn(work);
        env.wait_for_waiting_locks(2).await;
        holder.rollback().await.expect("let the delete go");

        let deleted = tokio::time::timeout(Duration::from_secs(60), deleting)
            .await
            .unwrap_or_else(|_| panic!("{name}: the delete never finished"))
            .expect("the delete's task");
        assert!(
            deleted.unwrap_or_else(|e| panic!("{name}: the user's delete failed: {e}")),
            "{name}: the user was deleted"
        );
        let done = tokio::time::timeout(Duration::from_secs(60), working)
            .await
            .unwrap_or_else(|_| panic!("{name}: the unit never finished"))
            .expect("the unit's task");
        // It waited for the delete, and found its user (and application)
        // gone: nothing written.
        match (unit, done) {
            (Unit::Redeem, Ok(answer)) => assert_eq!(answer, "None", "{name}"),
            (Unit::Decide, Ok(answer)) => assert_eq!(answer, "decided false", "{name}"),
            (Unit::InsertGrant | Unit::Password, Err(StoreError::Gone)) => {}
            (_, other) => panic!("{name}: {other:?}"),
        }
        assert!(find_by_access(&store, &format!("{name}-access"))
            .await
            .is_none());
    }
}
