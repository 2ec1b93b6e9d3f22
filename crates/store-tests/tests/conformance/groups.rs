//! Groups, memberships and group applications: every group store method
//! and group write of a unit of work, on both backends.

use latchkey_core::group::{
    level, Group, GroupFilter, GroupOrder, GroupUpdate, MemberFilter, MembershipUpdate, NewGroup,
    NewMembership, Viewer, Visibility,
};
use latchkey_core::store::in_transaction;

use super::*;

conformance! {
    scenario_groups_and_their_paths => groups_and_their_paths_sqlite, groups_and_their_paths_postgres;
    scenario_memberships_and_access => memberships_and_access_sqlite, memberships_and_access_postgres;
    scenario_group_listings => group_listings_sqlite, group_listings_postgres;
    scenario_group_deletion_cascades => group_deletion_cascades_sqlite, group_deletion_cascades_postgres;
}

const TODAY: &str = "2026-12-02";

fn group_under(parent: Option<&Group>, path: &str, visibility: Visibility) -> NewGroup {
    let name = path.to_uppercase();
    let (full_path, full_name) = match parent {
        Some(p) => (
            format!("{}/{path}", p.full_path),
            format!("{} / {name}", p.full_name),
        ),
        None => (path.to_owned(), name.clone()),
    };
    NewGroup {
        parent_id: parent.map(|p| p.id),
        name,
        path: path.to_owned(),
        full_path,
        full_name,
        description: String::new(),
        visibility,
        created_at: T0,
        avatar: None,
    }
}

pub(super) async fn make_group(
    store: &Arc<dyn Store>,
    parent: Option<&Group>,
    path: &str,
    visibility: Visibility,
) -> Group {
    let new = group_under(parent, path, visibility);
    in_transaction(&**store, move |tx| {
        Box::pin(async move { tx.insert_group(new).await })
    })
    .await
    .expect("insert group")
}

pub(super) async fn join(
    store: &Arc<dyn Store>,
    group: &Group,
    user: &User,
    access_level: i32,
    expires: Option<&str>,
) {
    let m = NewMembership {
        group_id: group.id,
        user_id: user.id,
        access_level,
        expires_at: expires.map(str::to_owned),
        created_by: None,
        created_at: T0,
    };
    in_transaction(&**store, move |tx| {
        Box::pin(async move { tx.insert_membership(m).await })
    })
    .await
    .expect("insert membership");
}

fn filter(viewer: Viewer) -> GroupFilter {
    GroupFilter {
        viewer,
        all_available: false,
        owned: false,
        min_access_level: None,
        search: None,
        parent_id: None,
        descendants_of: None,
        top_level_only: false,
        skip_groups: Vec::new(),
        visibility: None,
        order: GroupOrder::Name,
        ascending: true,
        today: TODAY.to_owned(),
    }
}

async fn listed(store: &Arc<dyn Store>, f: GroupFilter) -> Vec<String> {
    let (groups, total) = store
        .list_groups(&f, page(1, 100))
        .await
        .expect("list groups");
    assert_eq!(total as usize, groups.len());
    let mut paths: Vec<String> = groups.into_iter().map(|g| g.full_path).collect();
    paths.sort();
    paths
}

async fn scenario_groups_and_their_paths(store: Arc<dyn Store>) {
    let org = make_group(&store, None, "org", Visibility::Private).await;
    let team = make_group(&store, Some(&org), "team", Visibility::Private).await;
    let deep = make_group(&store, Some(&team), "deep", Visibility::Private).await;
    assert_eq!(deep.full_path, "org/team/deep");
    assert_eq!(deep.full_name, "ORG / TEAM / DEEP");
    assert_eq!(store.find_group(team.id).await.unwrap(), Some(team.clone()));
    let by_path = store.find_group_by_path("ORG/Team").await.unwrap();
    assert_eq!(by_path.map(|g| g.id), Some(team.id), "paths ignore case");
    assert_eq!(store.find_group_by_path("nope").await.unwrap(), None);

    // A taken full path (in any case) is a conflict on full_path.
    let again = group_under(None, "ORG", Visibility::Private);
    let taken = in_transaction(&*store, move |tx| {
        Box::pin(async move { tx.insert_group(again).await })
    })
    .await;
    assert_conflict(taken, "full_path");
    let same = group_under(Some(&org), "team", Visibility::Private);
    let taken = in_transaction(&*store, move |tx| {
        Box::pin(async move { tx.insert_group(same).await })
    })
    .await;
    assert_conflict(taken, "full_path");

    // Renaming a group renames what is below it, in the same unit.
    let id = org.id;
    let (renamed, taken_now, org_taken) = in_transaction(&*store, move |tx| {
        Box::pin(async move {
            let update = GroupUpdate {
                name: Some("Company".to_owned()),
                path: Some("company".to_owned()),
                ..GroupUpdate::default()
            };
            let renamed = tx.update_group(id, update, T0 + 1).await?;
            let company = tx.top_level_group_taken("COMPANY").await?;
            let org = tx.top_level_group_taken("org").await?;
            Ok((renamed, company, org))
        })
    })
    .await
    .expect("rename");
    let renamed = renamed.expect("the group");
    assert_eq!(renamed.full_path, "company");
    assert_eq!(renamed.updated_at, T0 + 1);
    assert!(taken_now && !org_taken);
    let deep = store.find_group(deep.id).await.unwrap().unwrap();
    assert_eq!(deep.full_path, "company/team/deep");
    assert_eq!(deep.full_name, "Company / TEAM / DEEP");

    // Only visibility: the paths stay; the most visible subgroup is known.
    let team_id = team.id;
    let (after, most, none) = in_transaction(&*store, move |tx| {
        Box::pin(async move {
            let update = GroupUpdate {
                visibility: Some(Visibility::Internal),
                description: Some("d".to_owned()),
                ..GroupUpdate::default()
            };
            let after = tx.update_group(team_id, update, T0 + 2).await?;
            let most = tx.most_visible_subgroup(id).await?;
            let none = tx.most_visible_subgroup(deep.id).await?;
            Ok((after, most, none))
        })
    })
    .await
    .expect("update");
    let after = after.expect("team");
    assert_eq!(after.full_path, "company/team");
    assert_eq!(after.description, "d");
    assert_eq!(most, Some(Visibility::Internal));
    assert_eq!(none, None);
    let missing = in_transaction(&*store, |tx| {
        Box::pin(async move { tx.update_group(999_999, GroupUpdate::default(), T0).await })
    })
    .await
    .expect("update nothing");
    assert_eq!(missing, None);

    // Usernames and top-level paths share a namespace.
    user(&store, "alice").await;
    let taken = in_transaction(&*store, |tx| {
        Box::pin(async move {
            Ok((
                tx.username_taken("ALICE").await?,
                tx.username_taken("bob").await?,
            ))
        })
    })
    .await
    .expect("usernames");
    assert_eq!(taken, (true, false));
}

async fn scenario_memberships_and_access(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let org = make_group(&store, None, "org", Visibility::Private).await;
    let team = make_group(&store, Some(&org), "team", Visibility::Private).await;
    join(&store, &org, &alice, level::OWNER, None).await;
    join(&store, &org, &bob, level::DEVELOPER, Some("2026-12-03")).await;
    join(&store, &team, &bob, level::MAINTAINER, None).await;

    // Access: the highest of the group's and its ancestors' memberships.
    assert_eq!(
        store.group_access(team.id, alice.id, TODAY).await.unwrap(),
        Some(50)
    );
    assert_eq!(
        store.group_access(team.id, bob.id, TODAY).await.unwrap(),
        Some(40)
    );
    assert_eq!(
        store.group_access(org.id, bob.id, TODAY).await.unwrap(),
        Some(30)
    );
    // The day an expiry names, the membership is over.
    assert_eq!(
        store
            .group_access(org.id, bob.id, "2026-12-03")
            .await
            .unwrap(),
        None
    );

    let bobs = store.groups_of_user(bob.id, TODAY).await.unwrap();
    let summary: Vec<(String, i32, Option<i32>)> = bobs
        .iter()
        .map(|g| (g.full_path.clone(), g.access_level, g.direct_level))
        .collect();
    assert_eq!(
        summary,
        [
            ("org".to_owned(), 30, Some(30)),
            ("org/team".to_owned(), 40, Some(40))
        ]
    );
    let alices = store.groups_of_user(alice.id, TODAY).await.unwrap();
    assert_eq!(alices.len(), 2);
    assert_eq!(alices[1].direct_level, None, "org/team is inherited");

    // Direct and inherited member lists; one row per user, the highest.
    let direct = MemberFilter {
        today: TODAY.to_owned(),
        ..MemberFilter::default()
    };
    let (members, total) = store
        .list_members(team.id, &direct, page(1, 20))
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(members[0].user.username, "bob");
    let all = MemberFilter {
        inherited: true,
        ..direct.clone()
    };
    let (members, total) = store
        .list_members(team.id, &all, page(1, 20))
        .await
        .unwrap();
    assert_eq!(total, 2);
    let levels: Vec<(String, i32)> = members
        .iter()
        .map(|m| (m.user.username.clone(), m.membership.access_level))
        .collect();
    assert!(levels.contains(&("alice".to_owned(), 50)));
    assert!(levels.contains(&("bob".to_owned(), 40)));
    let only_alice = MemberFilter {
        query: Some("ALI".to_owned()),
        ..all.clone()
    };
    let (members, _) = store
        .list_members(team.id, &only_alice, page(1, 20))
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    let by_id = MemberFilter {
        user_ids: vec![bob.id],
        ..all.clone()
    };
    let (members, _) = store
        .list_members(team.id, &by_id, page(1, 20))
        .await
        .unwrap();
    assert_eq!(members[0].user.id, bob.id);
    let (members, total) = store.list_members(team.id, &all, page(2, 1)).await.unwrap();
    assert_eq!((members.len(), total), (1, 2));
    assert!(store
        .find_member(team.id, alice.id, false, TODAY)
        .await
        .unwrap()
        .is_none());
    let found = store
        .find_member(team.id, alice.id, true, TODAY)
        .await
        .unwrap();
    assert_eq!(found.map(|m| m.membership.group_id), Some(org.id));

    // Writes in a unit: a second membership conflicts; change; count
    // owners; remove with the memberships below.
    let (org_id, team_id, bob_id) = (org.id, team.id, bob.id);
    let again = NewMembership {
        group_id: org_id,
        user_id: bob_id,
        access_level: 10,
        expires_at: None,
        created_by: Some(alice.id),
        created_at: T0,
    };
    let taken = in_transaction(&*store, move |tx| {
        Box::pin(async move { tx.insert_membership(again).await })
    })
    .await;
    assert_conflict(taken, "user_id");
    let (changed, owners) = in_transaction(&*store, move |tx| {
        Box::pin(async move {
            let update = MembershipUpdate {
                access_level: Some(level::OWNER),
                expires_at: Some(None),
            };
            let changed = tx.update_membership(org_id, bob_id, update, T0 + 9).await?;
            let owners = tx.count_owners(org_id, TODAY).await?;
            Ok((changed, owners))
        })
    })
    .await
    .expect("update membership");
    let changed = changed.expect("bob's");
    assert_eq!((changed.access_level, changed.expires_at), (50, None));
    assert_eq!(changed.updated_at, T0 + 9);
    assert_eq!(owners, 2);
    let (removed, left_below, gone_again) = in_transaction(&*store, move |tx| {
        Box::pin(async move {
            let removed = tx.delete_membership(org_id, bob_id, true).await?;
            let below = tx.find_membership(team_id, bob_id).await?;
            let again = tx.delete_membership(org_id, bob_id, true).await?;
            Ok((removed, below, again))
        })
    })
    .await
    .expect("remove");
    assert!(removed && !gone_again);
    assert_eq!(left_below, None, "the memberships below went too");

    // A deleted user's memberships go with them.
    store.delete_user(alice.id).await.unwrap();
    assert_eq!(
        store.group_access(org.id, alice.id, TODAY).await.unwrap(),
        None
    );
    let (_, total) = store
        .list_members(org.id, &direct, page(1, 20))
        .await
        .unwrap();
    assert_eq!(total, 0);
}

async fn scenario_group_listings(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let eve = user(&store, "eve").await;
    let org = make_group(&store, None, "org", Visibility::Private).await;
    let team = make_group(&store, Some(&org), "team", Visibility::Private).await;
    let deep = make_group(&store, Some(&team), "deep", Visibility::Private).await;
    make_group(&store, None, "open", Visibility::Public).await;
    make_group(&store, None, "inner", Visibility::Internal).await;
    make_group(&store, None, "other", Visibility::Private).await;
    join(&store, &team, &alice, level::REPORTER, None).await;
    join(&store, &deep, &alice, level::OWNER, None).await;

    let user_view = Viewer::User {
        id: alice.id,
        external: false,
    };
    // Their groups, what is below them, and what is above them.
    assert_eq!(
        listed(&store, filter(user_view)).await,
        ["org", "org/team", "org/team/deep"]
    );
    let all = GroupFilter {
        all_available: true,
        ..filter(user_view)
    };
    assert_eq!(
        listed(&store, all.clone()).await,
        ["inner", "open", "org", "org/team", "org/team/deep"]
    );
    let external = GroupFilter {
        viewer: Viewer::User {
            id: eve.id,
            external: true,
        },
        ..all.clone()
    };
    assert_eq!(listed(&store, external).await, ["open"]);
    assert_eq!(listed(&store, filter(Viewer::Anonymous)).await, ["open"]);
    let admin = GroupFilter {
        all_available: true,
        ..filter(Viewer::Admin { id: eve.id })
    };
    assert_eq!(listed(&store, admin.clone()).await.len(), 6);
    let min = GroupFilter {
        min_access_level: Some(level::MAINTAINER),
        ..all.clone()
    };
    assert_eq!(listed(&store, min).await, ["org/team/deep"]);
    let owned = GroupFilter {
        owned: true,
        ..all.clone()
    };
    assert_eq!(listed(&store, owned).await, ["org/team/deep"]);
    let search = GroupFilter {
        search: Some("TEAM".to_owned()),
        ..admin.clone()
    };
    assert_eq!(listed(&store, search).await, ["org/team", "org/team/deep"]);
    let children = GroupFilter {
        parent_id: Some(org.id),
        ..admin.clone()
    };
    assert_eq!(listed(&store, children).await, ["org/team"]);
    let below = GroupFilter {
        descendants_of: Some(org.id),
        ..admin.clone()
    };
    assert_eq!(listed(&store, below).await, ["org/team", "org/team/deep"]);
    let top = GroupFilter {
        top_level_only: true,
        skip_groups: vec![org.id],
        visibility: Some(Visibility::Private),
        ..admin.clone()
    };
    assert_eq!(listed(&store, top).await, ["other"]);
    // Order and pages: by path descending, id breaking ties.
    let ordered = GroupFilter {
        order: GroupOrder::Path,
        ascending: false,
        top_level_only: true,
        ..admin.clone()
    };
    let (groups, total) = store.list_groups(&ordered, page(2, 2)).await.unwrap();
    assert_eq!(total, 4);
    let paths: Vec<&str> = groups.iter().map(|g| g.path.as_str()).collect();
    assert_eq!(paths, ["open", "inner"]);
}

async fn scenario_group_deletion_cascades(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let org = make_group(&store, None, "org", Visibility::Private).await;
    let team = make_group(&store, Some(&org), "team", Visibility::Private).await;
    join(&store, &team, &alice, level::OWNER, None).await;
    let mut new = new_app("group-client", None);
    new.group_id = Some(team.id);
    let app = store.insert_application(new).await.expect("group app");
    assert_eq!(app.group_id, Some(team.id));
    assert_eq!(app.owner_id, None);
    let instance = app_or_panic(&store, "instance-client").await;

    // Group applications are no instance applications, nor another group's.
    let (listed_apps, total) = store.list_instance_applications(page(1, 20)).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(ids(&listed_apps), [instance.id]);
    let (of_team, n) = store
        .list_group_applications(team.id, page(1, 20))
        .await
        .unwrap();
    assert_eq!((ids(&of_team), n), (vec![app.id], 1));
    let scoped = |g: i64| store.find_application(app.id, Ownership::Group(g));
    assert!(scoped(team.id).await.unwrap().is_some());
    assert!(scoped(org.id).await.unwrap().is_none());
    assert!(store
        .find_application(app.id, Ownership::Instance)
        .await
        .unwrap()
        .is_none());
    assert!(!store
        .delete_application(app.id, Ownership::Group(org.id))
        .await
        .unwrap());

    // Deleting the parent takes the subgroup, its members and applications.
    let org_id = org.id;
    let deleted = in_transaction(&*store, move |tx| {
        Box::pin(async move { tx.delete_group(org_id).await })
    })
    .await
    .expect("delete");
    assert!(deleted);
    assert_eq!(store.find_group(team.id).await.unwrap(), None);
    assert!(store
        .find_application(app.id, Ownership::Any)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_application(instance.id, Ownership::Any)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.group_access(team.id, alice.id, TODAY).await.unwrap(),
        None
    );
    assert!(store.find_user(alice.id).await.unwrap().is_some());
}

async fn app_or_panic(store: &Arc<dyn Store>, uid: &str) -> Application {
    app(store, uid, None).await
}
