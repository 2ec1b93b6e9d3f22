//! Offset pages of instance applications deep into a large table: each
//! seeks to its block of ids (schema 17) and must give exactly the page a
//! walk from the first entry would, whatever was created, moved, deleted
//! or folded since.

use super::*;

conformance! {
    #[env] scenario_deep_offset_pages => deep_offset_pages_sqlite, deep_offset_pages_postgres;
}

/// PostgreSQL only: there, every instance remembers the folded count and
/// checks it against each page's snapshot, so a change made and folded by
/// another instance is seen at once. (On SQLite one server holds the
/// database and remembers the count of what passes through it; the command
/// line's writes are announced, see `scenario_outside_changes_*`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_across_instances_postgres() {
    run_postgres(Box::new(|store: Arc<dyn Store>, env: Env| {
        scenario_counts_across_instances(store, env).boxed()
    }))
    .await;
}

/// PostgreSQL only: a fold that changed rows vacuums the applications,
/// so a deep page skips the entries of the newest rows by the index
/// alone (the visibility map says their pages are all-visible) even where
/// autovacuum has not come by (SQLite reads no visibility map).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fold_leaves_the_applications_all_visible_postgres() {
    run_postgres(Box::new(|store: Arc<dyn Store>, env: Env| {
        scenario_fold_leaves_the_applications_all_visible(store, env).boxed()
    }))
    .await;
}

async fn scenario_fold_leaves_the_applications_all_visible(store: Arc<dyn Store>, env: Env) {
    for i in 0..400 {
        app(&store, &format!("fresh-{i}"), None).await;
    }
    store.fold_counts().await.expect("fold");
    // Set by a vacuum only: 0 and 0 until one has run.
    let rows = env
        .raw
        .strings(
            "SELECT CAST(relpages AS TEXT) || ' ' || CAST(relallvisible AS TEXT)
             FROM pg_class WHERE relname = 'oauth_applications'",
        )
        .await;
    let [Some(row)] = rows.as_slice() else {
        panic!("no pg_class row: {rows:?}");
    };
    let (pages, visible) = row.split_once(' ').expect("two numbers");
    let pages: i64 = pages.parse().expect("relpages");
    let visible: i64 = visible.parse().expect("relallvisible");
    assert!(
        pages > 1,
        "400 applications fill more than a page ({pages})"
    );
    assert_eq!(visible, pages, "every page all-visible after the fold");
}

/// Every instance application's id, in order, by keyset pages (a path of
/// its own: no offsets, no blocks).
async fn instance_ids(store: &Arc<dyn Store>) -> Vec<i64> {
    let mut all = Vec::new();
    loop {
        let after = all.last().copied().unwrap_or(0);
        let page = store
            .instance_applications_after(after, 100)
            .await
            .expect("keyset page");
        if page.is_empty() {
            return all;
        }
        all.extend(ids(&page));
    }
}

/// Offset pages of `per_page` (the numbers in `pages`, or every page and
/// the one after the last) against `want`.
async fn check_pages(store: &Arc<dyn Store>, want: &[i64], per_page: u64, pages: Option<&[u64]>) {
    let last = (want.len() as u64).div_ceil(per_page);
    let every: Vec<u64> = (1..=last + 1).collect();
    for &n in pages.unwrap_or(&every) {
        let (apps, total) = store
            .list_instance_applications(page(n, per_page))
            .await
            .expect("offset page");
        let from = usize::try_from((n - 1) * per_page).expect("offset");
        let expected: &[i64] = want
            .get(from..)
            .map(|rest| &rest[..rest.len().min(per_page as usize)])
            .unwrap_or(&[]);
        assert_eq!(ids(&apps), expected, "page {n} of {per_page}");
        assert_eq!(total, want.len() as u64, "total on page {n} of {per_page}");
    }
}

/// After a fold, one row per block that still holds instance applications.
async fn assert_folded(env: &Env) {
    let rows = env
        .raw
        .strings(
            "SELECT CAST(COUNT(*) AS TEXT) || ' ' || CAST(COUNT(DISTINCT block_start) AS TEXT)
             FROM instance_application_counts",
        )
        .await;
    let [Some(counts)] = rows.as_slice() else {
        panic!("no counts: {rows:?}");
    };
    let (rows, blocks) = counts.split_once(' ').expect("two numbers");
    assert_eq!(rows, blocks, "folded: one row per block");
}

async fn scenario_deep_offset_pages(store: Arc<dyn Store>, env: Env) {
    let owner = user(&store, "owner").await;
    app(&store, "template", None).await;
    // 6,000 more, a third of them owned (so the blocks of 1,024 ids hold
    // uneven numbers of instance applications), written behind the store's
    // back as an import would be: the triggers count them all the same.
    env.raw
        .execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
             INSERT INTO oauth_applications
               (uid, name, secret_digest, redirect_uri, scopes, confidential, trusted, owner_id,
                created_at, updated_at, dynamic, grant_types)
             SELECT 'deep-' || CAST(i AS TEXT), name, secret_digest, redirect_uri, scopes,
                    confidential, trusted, CASE WHEN i % 3 = 0 THEN {} ELSE NULL END,
                    created_at, updated_at, dynamic, grant_types
             FROM n, oauth_applications WHERE uid = 'template'",
            owner.id
        ))
        .await;
    // Moved out of the instance and into it, and deleted, in the middle.
    env.raw
        .execute(&format!(
            "UPDATE oauth_applications SET owner_id = {} WHERE uid LIKE 'deep-2%1'",
            owner.id
        ))
        .await;
    env.raw
        .execute("UPDATE oauth_applications SET owner_id = NULL WHERE uid LIKE 'deep-4%3'")
        .await;
    env.raw
        .execute("DELETE FROM oauth_applications WHERE uid LIKE 'deep-3%7'")
        .await;

    let want = instance_ids(&store).await;
    assert!(want.len() > 3_000, "{} instance applications", want.len());
    check_pages(&store, &want, 100, None).await;
    check_pages(
        &store,
        &want,
        20,
        Some(&[1, 51, 52, 100, 101, 150, 199, 200]),
    )
    .await;
    check_pages(&store, &want, 7, Some(&[147, 148, 149, 293, 294, 295])).await;

    // Folded, the same pages.
    store.fold_counts().await.expect("fold");
    assert_folded(&env).await;
    check_pages(&store, &want, 100, None).await;

    // Deleted through the store (a whole stretch, so that a block empties),
    // and one created: counted before and after folding.
    let gone: Vec<i64> = want.iter().copied().skip(1_500).take(1_100).collect();
    for id in &gone {
        assert!(store
            .delete_application(*id, Ownership::Instance)
            .await
            .expect("delete"));
    }
    app(&store, "deep-new", None).await;
    let want = instance_ids(&store).await;
    check_pages(&store, &want, 100, None).await;
    store.fold_counts().await.expect("fold");
    assert_folded(&env).await;
    check_pages(&store, &want, 100, None).await;
    check_pages(&store, &want, 20, Some(&[1, 75, 76, 77, 1 << 40])).await;
}

async fn scenario_counts_across_instances(store: Arc<dyn Store>, env: Env) {
    app(&store, "template", None).await;
    env.raw
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)
             INSERT INTO oauth_applications
               (uid, name, secret_digest, redirect_uri, scopes, confidential, trusted, owner_id,
                created_at, updated_at, dynamic, grant_types)
             SELECT 'many-' || CAST(i AS TEXT), name, secret_digest, redirect_uri, scopes,
                    confidential, trusted, NULL, created_at, updated_at, dynamic, grant_types
             FROM n, oauth_applications WHERE uid = 'template'",
        )
        .await;
    store.fold_counts().await.expect("fold");
    let pages: &[u64] = &[1, 2, 60, 61, 150, 200, 201];
    let want = instance_ids(&store).await;
    // Read twice: the second time from the remembered sums.
    check_pages(&store, &want, 20, Some(pages)).await;
    check_pages(&store, &want, 20, Some(pages)).await;

    // Another instance deletes a stretch (a block empties) and creates one,
    // and folds: this one has not seen a delta of it.
    let other = env.open_instance().await.store();
    for id in want.iter().skip(1_000).take(1_100) {
        assert!(other
            .delete_application(*id, Ownership::Instance)
            .await
            .expect("delete"));
    }
    app(&other, "many-new", None).await;
    other.fold_counts().await.expect("fold");
    let want = instance_ids(&store).await;
    check_pages(&store, &want, 20, Some(pages)).await;
    check_pages(&store, &want, 20, Some(pages)).await;

    // And unfolded: counted by each page until the fold.
    for id in want.iter().skip(100).take(30) {
        assert!(other
            .delete_application(*id, Ownership::Instance)
            .await
            .expect("delete"));
    }
    let want = instance_ids(&store).await;
    check_pages(&store, &want, 20, Some(pages)).await;
    store.fold_counts().await.expect("fold");
    check_pages(&store, &want, 20, Some(pages)).await;
    check_pages(&store, &want, 20, Some(pages)).await;
}
