//! The audit trail: events recorded in a unit of work, read back with
//! GitLab's filters and both kinds of pages, and pruned.

use latchkey_core::audit::{AuditFilter, Entity, EntityType, Keyset, NewAuditEvent, NO_AUTHOR};
use latchkey_core::context::{Context, Via};
use latchkey_core::store::in_transaction_audited;

use super::*;

conformance! {
    scenario_audit_trail => audit_trail_sqlite, audit_trail_postgres;
    scenario_audit_rolls_back_with_its_change => audit_rolls_back_with_its_change_sqlite, audit_rolls_back_with_its_change_postgres;
    scenario_application_recorded => application_recorded_sqlite, application_recorded_postgres;
    #[env] scenario_applications_recorded_at_once => applications_recorded_at_once_sqlite, applications_recorded_at_once_postgres;
}

/// An application and its event in one call: the application as
/// `as_stored` says, its first secret, the event as stored with the
/// application as its target; and on a conflict, neither.
async fn scenario_application_recorded(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let event = |new: &NewApplication| {
        application_added(alice.id, new).detail("scopes", new.scopes.joined())
    };
    for owner in [Some(alice.id), None] {
        let uid = format!("recorded-{owner:?}");
        let new = new_app(&uid, owner);
        let e = event(&new);
        let (app, stored) = store
            .insert_application_recorded(new.clone(), e)
            .await
            .expect("insert_application_recorded");
        assert_stored(&store, &new, &app).await;
        assert_eq!(stored.target_id, Some(app.id));
        assert_eq!(stored.target_details.as_deref(), Some(new.name.as_str()));
        assert_eq!(
            stored.author_name, alice.name,
            "the author's name from the database"
        );
        assert_eq!(stored.entity_path.as_deref(), Some("alice"));
        let (events, _) = store
            .list_audit_events(&AuditFilter::default(), PageRequest::default())
            .await
            .expect("list");
        let read = events
            .into_iter()
            .find(|e| e.id == stored.id)
            .expect("the event is stored");
        assert_eq!(read, stored, "as stored");
    }
    // A taken client id: no application, no event.
    let before = store
        .list_audit_events(&AuditFilter::default(), PageRequest::default())
        .await
        .expect("list")
        .1;
    let again = new_app("recorded-None", None);
    let e = event(&again);
    assert_conflict(store.insert_application_recorded(again, e).await, "uid");
    let after = store
        .list_audit_events(&AuditFilter::default(), PageRequest::default())
        .await
        .expect("list")
        .1;
    assert_eq!(before, after, "no event without its application");
}

/// Creates at the same moment (PostgreSQL runs those waiting together in
/// one statement): each gets its own application, first secret and event,
/// the count of instance applications counts each; a create that breaks a
/// rule (a taken client id, an owner that does not exist) fails alone.
async fn scenario_applications_recorded_at_once(store: Arc<dyn Store>, env: Env) {
    let alice = user(&store, "alice").await;
    app(&store, "taken", None).await;
    let event = |new: &NewApplication| application_added(alice.id, new);
    let events = || async {
        store
            .list_audit_events(&AuditFilter::default(), PageRequest::default())
            .await
            .expect("list events")
            .1
    };
    let instance_count = || async {
        store
            .list_instance_applications(PageRequest::default())
            .await
            .expect("list applications")
            .1
    };
    let nobody = alice.id + 1_000;
    for round in ["all-good", "mixed"] {
        let news: Vec<NewApplication> = (0..64)
            .map(|i| match (round, i % 8) {
                ("mixed", 3) => new_app("taken", None),
                ("mixed", 5) => new_app(&format!("{round}-{i}"), Some(nobody)),
                _ => new_app(&format!("{round}-{i}"), (i % 2 == 0).then_some(alice.id)),
            })
            .collect();
        let events_before = events().await;
        let count_before = instance_count().await;
        let results = futures::future::join_all(
            news.iter()
                .map(|n| store.insert_application_recorded(n.clone(), event(n))),
        )
        .await;
        let (mut created, mut instance) = (0, 0);
        for (i, (new, result)) in news.iter().zip(results).enumerate() {
            match (round, i % 8) {
                ("mixed", 3) => assert_conflict(result, "uid"),
                ("mixed", 5) => assert_gone(result),
                _ => {
                    let (app, stored) = result.expect("a good create succeeds");
                    assert_stored(&store, new, &app).await;
                    assert_eq!(stored.target_id, Some(app.id));
                    assert_eq!(stored.target_details.as_deref(), Some(new.name.as_str()));
                    assert_eq!(stored.author_name, alice.name);
                    created += 1;
                    instance += u64::from(new.owner_id.is_none());
                }
            }
        }
        assert_eq!(
            events().await,
            events_before + created,
            "an event per create"
        );
        assert_eq!(instance_count().await, count_before + instance);
        if env.raw.kind() == Kind::Postgres && round == "all-good" {
            let n = env
                .committing_transactions("oauth_applications WHERE uid LIKE 'all-good-%'")
                .await;
            assert!(
                n < 64,
                "creates waiting together commit together ({n} transactions)"
            );
        }
    }
}

/// `app`, given back by a create of `new`, is `new` as stored, and is
/// stored so, with its first secret.
async fn assert_stored(store: &Arc<dyn Store>, new: &NewApplication, app: &Application) {
    assert_eq!(*app, new.as_stored(app.id));
    let (found, secrets) = store
        .find_application_by_uid(&new.application_id)
        .await
        .expect("find")
        .expect("stored");
    assert_eq!(found, *app);
    assert_eq!(secrets.len(), 1, "its first secret");
    assert_eq!(secrets[0].digest, new.secret_digest);
}

/// The event of `author` adding `new`, as the API records it.
fn application_added(author: i64, new: &NewApplication) -> NewAuditEvent {
    NewAuditEvent::new(
        &by(Some(author)),
        T0,
        "oauth_application_created",
        Entity::user(author),
        "OAuth application added",
    )
    .target("Authn::OauthApplication", Some(0), &new.name)
}

fn by(user_id: Option<i64>) -> Context {
    Context {
        user_id,
        via: Via::Session,
        address: Some("192.0.2.7".to_owned()),
        request_id: Some("req-1".to_owned()),
    }
}

async fn record(store: &Arc<dyn Store>, events: Vec<NewAuditEvent>) -> Vec<i64> {
    let ((), stored) = in_transaction_audited(store.as_ref(), move |tx| {
        Box::pin(async move {
            for e in events {
                tx.record_audit(e).await?;
            }
            Ok(())
        })
    })
    .await
    .expect("record");
    stored.iter().map(|e| e.id).collect()
}

async fn scenario_audit_trail(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let ids = record(
        &store,
        vec![
            NewAuditEvent::new(
                &by(Some(alice.id)),
                T0,
                "a",
                Entity::user(alice.id),
                "first",
            )
            .change("email", "old@example.com", "new@example.com"),
            NewAuditEvent::new(&by(None), T0 + 1_000, "b", Entity::instance(), "second"),
            // An author who no longer exists keeps the name given.
            NewAuditEvent::new(
                &by(Some(424_242)),
                T0 + 2_000,
                "c",
                Entity::user(alice.id),
                "third",
            ),
        ],
    )
    .await;
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let first = store
        .find_audit_event(ids[0])
        .await
        .expect("find")
        .expect("the event");
    assert_eq!(first.author_id, alice.id);
    assert_eq!(
        first.author_name, alice.name,
        "the author's name is looked up"
    );
    assert_eq!(first.author_email.as_deref(), Some(alice.email.as_str()));
    assert_eq!(first.entity_type, "User");
    assert_eq!(first.entity_path.as_deref(), Some("alice"), "filled in");
    assert_eq!(first.ip_address.as_deref(), Some("192.0.2.7"));
    assert_eq!(first.request_id.as_deref(), Some("req-1"));
    assert_eq!(first.details["from"], "old@example.com");
    assert_eq!(first.created_at, T0);
    let second = store
        .find_audit_event(ids[1])
        .await
        .expect("find")
        .expect("b");
    assert_eq!(second.author_id, NO_AUTHOR);
    assert_eq!(second.author_name, "An unauthenticated user");
    assert_eq!(second.author_email, None);
    assert_eq!(second.entity_type, "Gitlab::Audit::InstanceScope");
    assert_eq!(second.entity_path.as_deref(), Some("gitlab_instance"));
    let third = store
        .find_audit_event(ids[2])
        .await
        .expect("find")
        .expect("c");
    assert_eq!(third.author_name, "A deleted user");
    assert!(store
        .find_audit_event(ids[2] + 1)
        .await
        .expect("find")
        .is_none());

    let list = |filter: AuditFilter, page: PageRequest| {
        let store = store.clone();
        async move {
            let (events, total) = store.list_audit_events(&filter, page).await.expect("list");
            (events.iter().map(|e| e.id).collect::<Vec<_>>(), total)
        }
    };
    let all = PageRequest::default();
    assert_eq!(
        list(AuditFilter::default(), all).await,
        (vec![ids[2], ids[1], ids[0]], 3),
        "newest first"
    );
    let users = AuditFilter {
        entity_type: Some(EntityType::User),
        entity_id: Some(alice.id),
        ..AuditFilter::default()
    };
    assert_eq!(list(users, all).await, (vec![ids[2], ids[0]], 2));
    let window = AuditFilter {
        created_after: Some(T0 + 1_000),
        created_before: Some(T0 + 1_000),
        ..AuditFilter::default()
    };
    assert_eq!(
        list(window, all).await,
        (vec![ids[1]], 1),
        "both ends inclusive"
    );
    let groups = AuditFilter {
        entity_type: Some(EntityType::Group),
        ..AuditFilter::default()
    };
    assert_eq!(list(groups, all).await, (vec![], 0));
    let page2 = PageRequest {
        page: 2,
        per_page: 2,
    };
    assert_eq!(list(AuditFilter::default(), page2).await, (vec![ids[0]], 3));

    let keyset = |ascending, from, limit| {
        let store = store.clone();
        async move {
            let k = Keyset {
                ascending,
                from,
                limit,
            };
            let events = store
                .audit_events_keyset(&AuditFilter::default(), k)
                .await
                .expect("keyset");
            events.iter().map(|e| e.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(keyset(false, None, 2).await, vec![ids[2], ids[1]]);
    assert_eq!(keyset(false, Some(ids[1]), 2).await, vec![ids[0]]);
    assert_eq!(keyset(true, None, 2).await, vec![ids[0], ids[1]]);
    assert_eq!(keyset(true, Some(ids[1]), 5).await, vec![ids[2]]);

    // Pruning: the oldest first, in batches, never one that is not old.
    assert_eq!(
        store
            .delete_audit_events_before(T0 + 2_000, 1)
            .await
            .expect("prune"),
        1
    );
    assert!(store
        .find_audit_event(ids[0])
        .await
        .expect("find")
        .is_none());
    assert_eq!(
        store
            .delete_audit_events_before(T0 + 2_000, 10)
            .await
            .expect("prune"),
        1
    );
    assert_eq!(list(AuditFilter::default(), all).await, (vec![ids[2]], 1));
}

async fn scenario_audit_rolls_back_with_its_change(store: Arc<dyn Store>) {
    let failed: Result<((), _), StoreError> = in_transaction_audited(store.as_ref(), |tx| {
        Box::pin(async move {
            let bob = tx.insert_user(new_user("bob")).await?;
            tx.record_audit(NewAuditEvent::new(
                &by(None),
                T0,
                "user_created",
                Entity::user(bob.id),
                "Added user",
            ))
            .await?;
            // A conflict after the event: the whole unit goes.
            tx.insert_user(new_user("bob")).await?;
            Ok(())
        })
    })
    .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
    let (events, total) = store
        .list_audit_events(&AuditFilter::default(), PageRequest::default())
        .await
        .expect("list");
    assert_eq!((events.len(), total), (0, 0));
    assert!(store
        .find_user_by_username("bob")
        .await
        .expect("find")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_batch_racing_a_users_hard_delete_postgres() {
    run_postgres(Box::new(|store: Arc<dyn Store>, env: Env| {
        scenario_create_batch_racing_a_hard_delete(store, env).boxed()
    }))
    .await;
}

/// PostgreSQL: a batch of creates, one for a group and one for the user
/// who alone owns it, while that user's hard delete runs (the user, then
/// the group). Locked by the batch's foreign keys, in the batch's order,
/// the group was held while the batch waited for the user, and the delete
/// held the user while it waited for the group: a deadlock, which failed
/// every create of the batch (or the delete). A batch now locks owners
/// `SKIP LOCKED`: the user's create is left out and runs alone, after
/// the delete (the user gone); the group's is stored, and goes with the
/// group.
///
/// Both of the store's batch runners are held at a third user (locked
/// `FOR UPDATE`), so that the two creates queue and then run as one batch;
/// the delete is held back at the group's delete (a `SHARE` lock on the
/// groups), holding the user.
async fn scenario_create_batch_racing_a_hard_delete(store: Arc<dyn Store>, env: Env) {
    assert_eq!(env.kind(), Kind::Postgres);
    let (alice, group, _) =
        super::redemptions::user_alone_in_a_group_with_an_app(&store, "batched").await;
    let blocker = user(&store, "blocker").await;
    let create = |uid: &str, owner: Option<i64>, group_id: Option<i64>| {
        let mut new = new_app(uid, owner);
        new.group_id = group_id;
        let event = application_added(alice.id, &new);
        let store = store.clone();
        tokio::spawn(async move { store.insert_application_recorded(new, event).await })
    };

    // Both runners busy, each with a create for the blocker.
    let runners = BusyRunners::start(
        &env,
        &format!("SELECT id FROM users WHERE id = {} FOR UPDATE", blocker.id),
        |uid| create(uid, Some(blocker.id), None),
    )
    .await;
    // The delete, holding the user, waits to delete the group.
    let delete_held = env.hold("LOCK TABLE groups IN SHARE MODE").await;
    let deleting = super::redemptions::hard_delete(store.clone(), alice.id, group.id);
    env.wait_for_waiting_locks(3).await;
    // Two creates queued behind the runners: one batch.
    let batched = [
        create("for-the-group", None, Some(group.id)),
        create("for-the-user", Some(alice.id), None),
    ];
    runners.release().await;
    // The batch (now: the user's create, left out of it) waits for the
    // user.
    env.wait_for_waiting_locks(2).await;
    delete_held.release().await;

    let deleted = tokio::time::timeout(Duration::from_secs(60), deleting)
        .await
        .expect("the delete finished")
        .expect("the delete's task");
    assert!(
        deleted.unwrap_or_else(|e| panic!("the user's delete failed: {e}")),
        "the user was deleted"
    );
    for (creating, uid) in batched.into_iter().zip(["for-the-group", "for-the-user"]) {
        let created = tokio::time::timeout(Duration::from_secs(60), creating)
            .await
            .unwrap_or_else(|_| panic!("{uid}: the create never finished"))
            .expect("the create's task");
        // Before the delete (and gone with its owner), or after it: gone.
        assert!(
            matches!(created, Ok(_) | Err(StoreError::Gone)),
            "{uid}: {:?}",
            created.map(|(app, _)| app.id)
        );
        assert!(
            store
                .find_application_by_uid(uid)
                .await
                .expect("find")
                .is_none(),
            "{uid}: gone with its owner"
        );
    }
}
