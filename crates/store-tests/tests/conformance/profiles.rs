//! Users' profiles and GitLab's list filters and orders.

use latchkey_core::user::{Profile, UserOrder};

use super::*;

conformance! {
    scenario_token_filters_and_last_use => token_filters_and_last_use_sqlite, token_filters_and_last_use_postgres;
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
            external: true,
            ..f()
        })
        .await,
        ["carol"]
    );
    assert!(names(UserFilter {
        external: true,
        exclude_external: true,
        ..f()
    })
    .await
    .is_empty());
    assert_eq!(
        names(UserFilter {
            exclude_external: true,
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

async fn scenario_token_filters_and_last_use(store: Arc<dyn Store>) {
    use latchkey_core::token::TokenFilter;
    let alice = user(&store, "alice").await;
    let live = store
        .insert_token(new_token(alice.id, "live"))
        .await
        .expect("live");
    let mut old = new_token(alice.id, "old");
    old.expires_at = Some(date!(2020 - 01 - 01));
    let old = store.insert_token(old).await.expect("old");
    let gone = store
        .insert_token(new_token(alice.id, "gone"))
        .await
        .expect("gone");
    assert!(store.revoke_token(gone.id).await.expect("revoke"));

    // Later times only: a batch that arrives late changes nothing.
    assert_eq!(
        store
            .record_token_usage(vec![(live.id, T0 + 100), (old.id, T0 + 50)])
            .await
            .expect("usage"),
        2
    );
    assert_eq!(
        store
            .record_token_usage(vec![(live.id, T0 + 10)])
            .await
            .expect("usage"),
        0
    );
    assert_eq!(store.record_token_usage(vec![]).await.expect("usage"), 0);
    let found = store
        .find_token(live.id)
        .await
        .expect("find")
        .expect("live");
    assert_eq!(found.last_used_at, Some(T0 + 100));

    let names = |filter: TokenFilter| {
        let store = store.clone();
        async move {
            let (tokens, total) = store
                .list_tokens(&filter, PageRequest::default())
                .await
                .expect("list");
            assert_eq!(total as usize, tokens.len());
            tokens.into_iter().map(|t| t.name).collect::<Vec<_>>()
        }
    };
    let today = Some(date!(2026 - 06 - 01));
    let f = || TokenFilter {
        user_id: Some(alice.id),
        today,
        ..TokenFilter::default()
    };
    assert_eq!(
        names(TokenFilter {
            active: Some(true),
            ..f()
        })
        .await,
        ["token live"]
    );
    assert_eq!(
        names(TokenFilter {
            active: Some(false),
            ..f()
        })
        .await,
        ["token old", "token gone"]
    );
    assert_eq!(
        names(TokenFilter {
            revoked: Some(true),
            ..f()
        })
        .await,
        ["token gone"]
    );
    assert_eq!(
        names(TokenFilter {
            last_used_after: Some(T0 + 60),
            ..f()
        })
        .await,
        ["token live"]
    );
    assert_eq!(
        names(TokenFilter {
            last_used_before: Some(T0 + 60),
            ..f()
        })
        .await,
        ["token old"]
    );
    assert_eq!(
        names(TokenFilter {
            search: Some("OL".to_owned()),
            ..f()
        })
        .await,
        ["token old"]
    );
}
