//! Users' profiles and GitLab's list filters and orders.

use latchkey_core::user::{Profile, UserOrder};

use super::*;

conformance! {
    scenario_profiles_round_trip => profiles_round_trip_sqlite, profiles_round_trip_postgres;
    scenario_user_filters_and_orders => user_filters_and_orders_sqlite, user_filters_and_orders_postgres;
}

async fn scenario_profiles_round_trip(store: Arc<dyn Store>) {
    let mut new = new_user("alice");
    new.external = true;
    new.profile = Profile {
        bio: "Hi".to_owned(),
        projects_limit: Some(3),
        ..Profile::default()
    };
    let alice = store.insert_user(new).await.expect("insert");
    assert!(alice.external);
    assert_eq!(alice.profile.bio, "Hi");
    assert_eq!(alice.updated_at, alice.created_at);
    let changed = store
        .update_user(
            alice.id,
            UserUpdate {
                external: Some(false),
                profile: Some(Profile {
                    location: "Oslo".to_owned(),
                    ..alice.profile.clone()
                }),
                updated_at: Some(T0 + 5),
                ..UserUpdate::default()
            },
        )
        .await
        .expect("update")
        .expect("alice");
    assert!(!changed.external);
    assert_eq!(changed.profile.location, "Oslo");
    assert_eq!(changed.profile.bio, "Hi");
    assert_eq!(changed.profile.projects_limit(), 3);
    assert_eq!(changed.updated_at, T0 + 5);
    // What every read path decodes is the same user.
    assert_eq!(
        store.find_user(alice.id).await.expect("find"),
        Some(changed.clone())
    );
    let (found, _) = store
        .find_user_for_login("alice")
        .await
        .expect("login")
        .expect("alice");
    assert_eq!(found, changed);
    // Untouched fields stay as they were.
    let same = store
        .update_user(alice.id, UserUpdate::default())
        .await
        .expect("update")
        .expect("alice");
    assert_eq!(same, changed);
}

async fn scenario_user_filters_and_orders(store: Arc<dyn Store>) {
    let mut carol = new_user("carol");
    carol.external = true;
    carol.created_at = T0 + 2;
    let carol = store.insert_user(carol).await.expect("carol");
    let mut bob = new_user("bob");
    bob.created_at = T0 + 1;
    let bob = store.insert_user(bob).await.expect("bob");
    let mut alice = new_user("alice");
    alice.admin = true;
    alice.created_at = T0;
    store.insert_user(alice).await.expect("alice");
    assert!(store
        .set_user_state(bob.id, UserState::Blocked)
        .await
        .expect("block"));
    let names = |filter: UserFilter| {
        let store = store.clone();
        async move {
            let (users, total) = store
                .list_users(&filter, PageRequest::default())
                .await
                .expect("list");
            assert_eq!(total as usize, users.len());
            users.into_iter().map(|u| u.username).collect::<Vec<_>>()
        }
    };
    let f = UserFilter::default;
    assert_eq!(names(f()).await, ["alice", "bob", "carol"]);
    assert_eq!(
        names(UserFilter {
            blocked: true,
            ..f()
        })
        .await,
        ["bob"]
    );
    assert_eq!(
        names(UserFilter {
            active: true,
            ..f()
        })
        .await,
        ["alice", "carol"]
    );
    assert_eq!(
        names(UserFilter {
            admins: true,
            ..f()
        })
        .await,
        ["alice"]
    );
    assert_eq!(
        names(UserFilter {
            external: Some(true),
            ..f()
        })
        .await,
        ["carol"]
    );
    assert_eq!(
        names(UserFilter {
            external: Some(false),
            ..f()
        })
        .await,
        ["alice", "bob"]
    );
    assert_eq!(
        names(UserFilter {
            created_after: Some(T0 + 1),
            created_before: Some(T0 + 1),
            ..f()
        })
        .await,
        ["bob"]
    );
    assert_eq!(
        names(UserFilter {
            order: UserOrder::CreatedAt,
            ascending: true,
            ..f()
        })
        .await,
        ["alice", "bob", "carol"]
    );
    assert_eq!(
        names(UserFilter {
            order: UserOrder::Username,
            ascending: false,
            ..f()
        })
        .await,
        ["carol", "bob", "alice"]
    );
    assert_eq!(
        names(UserFilter {
            order: UserOrder::Name,
            ascending: true,
            search: Some("o".to_owned()),
            ..f()
        })
        .await,
        ["bob", "carol"]
    );
    let _ = carol;
}
