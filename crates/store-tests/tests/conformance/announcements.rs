//! PostgreSQL's announcements (schema 15, narrowed in 21): the writes that
//! can make an instance's cached token lookup wrong notify
//! `latchkey_changes`; the refresh flow's bookkeeping does not.

use sqlx::postgres::PgListener;

use super::*;

/// Every notification on `latchkey_changes` up to a sentinel sent now: the
/// ones committed before (notifications arrive in commit order).
async fn announced_since(listener: &mut PgListener, raw: &Raw, round: u32) -> Vec<String> {
    let sentinel = format!("sentinel-{round}");
    raw.execute(&format!("NOTIFY latchkey_changes, '{sentinel}'"))
        .await;
    let mut heard = Vec::new();
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .expect("the sentinel arrives")
            .expect("listening");
        if n.payload() == sentinel {
            return heard;
        }
        heard.push(n.payload().to_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_refresh_flow_announces_only_revocations_postgres() {
    run_postgres(Box::new(|store: Arc<dyn Store>, env: Env| {
        scenario_refresh_announcements(store, env).boxed()
    }))
    .await;
}

async fn scenario_refresh_announcements(store: Arc<dyn Store>, env: Env) {
    let alice = user(&store, "alice").await;
    let client = app(&store, "client", None).await;
    let mut listener = PgListener::connect(&env.url).await.expect("listen");
    listener.listen("latchkey_changes").await.expect("listen");

    let first = store
        .insert_oauth_token(new_oauth_token(
            client.id,
            Some(alice.id),
            "access-1",
            Some("refresh-1"),
            "fam",
        ))
        .await
        .expect("first token");
    assert_eq!(
        announced_since(&mut listener, &env.raw, 1).await,
        Vec::<String>::new(),
        "an insert"
    );

    // The refresh: the first token marked refreshed, the second stored.
    let mut next = new_oauth_token(
        client.id,
        Some(alice.id),
        "access-2",
        Some("refresh-2"),
        "fam",
    );
    next.previous_token_id = Some(first.id);
    let second = store
        .refresh_oauth_token(first.id, T0 + 1, next)
        .await
        .expect("refresh")
        .expect("rotated");
    assert_eq!(
        announced_since(&mut listener, &env.raw, 2).await,
        Vec::<String>::new(),
        "marking a token refreshed changes nothing it authenticates as"
    );

    // The second's first use: the first revoked (announced), the link
    // forgotten.
    store
        .finish_refresh(second.id, first.id, T0 + 2)
        .await
        .expect("finish");
    assert_eq!(
        announced_since(&mut listener, &env.raw, 3).await,
        ["auth"],
        "the replaced token's revocation"
    );
    // Again (another instance's first use): the link alone, unannounced.
    store
        .finish_refresh(second.id, first.id, T0 + 3)
        .await
        .expect("finish again");
    assert_eq!(
        announced_since(&mut listener, &env.raw, 4).await,
        Vec::<String>::new()
    );

    assert!(store
        .revoke_oauth_token(second.id, T0 + 4)
        .await
        .expect("revoke"));
    assert_eq!(
        announced_since(&mut listener, &env.raw, 5).await,
        ["auth"],
        "a revocation"
    );
    let revoked = env
        .raw
        .strings(
            "SELECT CAST(COUNT(*) AS TEXT) FROM oauth_access_tokens WHERE revoked_at IS NOT NULL",
        )
        .await;
    assert_eq!(revoked, [Some("2".to_owned())]);
}
