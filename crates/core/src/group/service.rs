//! Groups: the services (creating, changing and deleting groups, their
//! members, and what a user is to a group).

use crate::access::Actor;
use crate::application::ValidationErrors;
use crate::audit::{target, Entity, EntityType, NewAuditEvent};
use crate::context::Context;
use crate::error::StoreError;
use crate::pagination::PageRequest;
use crate::service::{ServiceError, Services};
use crate::user::User;

use super::*;

/// An event about `group`, recorded under it.
pub(crate) fn group_event(
    ctx: &Context,
    now: i64,
    event: &'static str,
    group: &Group,
    message: &str,
) -> NewAuditEvent {
    let entity = Entity {
        kind: EntityType::Group,
        id: group.id,
        path: Some(group.full_path.clone()),
    };
    NewAuditEvent::new(ctx, now, event, entity, message)
        .target(target::GROUP, Some(group.id), &group.full_path)
        .detail("full_path", group.full_path.as_str())
}

/// An event about a membership of `group`: the member as its target.
pub(crate) fn member_event(
    ctx: &Context,
    now: i64,
    event: &'static str,
    group: &Group,
    member: &User,
    message: &str,
) -> NewAuditEvent {
    group_event(ctx, now, event, group, message)
        .target(target::USER, Some(member.id), &member.username)
        .detail("member_username", member.username.as_str())
}

/// What a membership change refuses, in GitLab's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRefusal {
    /// The user is a member already (409).
    Exists,
    /// Only Owners may make, change or remove Owners (403).
    OwnersOnly,
    /// The last Owner of a top-level group stays one (403).
    LastOwner,
    /// A direct membership may not be below what the user has through an
    /// ancestor (400): that level's name, and the ancestor's name.
    BelowInherited(&'static str, String),
}

impl Services {
    /// Today as memberships count it (`YYYY-MM-DD`, UTC).
    pub fn today_text(&self) -> String {
        day_text(self.today())
    }

    /// What `actor` (or nobody) is to `group`.
    pub async fn group_role(
        &self,
        actor: Option<Actor<'_>>,
        group: &Group,
    ) -> Result<GroupRole, ServiceError> {
        let Some(actor) = actor else {
            return Ok(GroupRole {
                admin: false,
                access: None,
                visible: group.visibility == Visibility::Public,
            });
        };
        let admin = self.acts_as_admin(actor);
        let access = if admin {
            None
        } else {
            self.store
                .group_access(group.id, actor.user.id, &self.today_text())
                .await?
        };
        let visible = match group.visibility {
            Visibility::Public => true,
            Visibility::Internal => !actor.user.external,
            Visibility::Private => false,
        };
        Ok(GroupRole {
            admin,
            access,
            visible,
        })
    }

    /// The viewer a listing is made for.
    pub fn group_viewer(&self, actor: Option<Actor<'_>>) -> Viewer {
        match actor {
            None => Viewer::Anonymous,
            Some(a) if self.acts_as_admin(a) => Viewer::Admin { id: a.user.id },
            Some(a) => Viewer::User {
                id: a.user.id,
                external: a.user.external,
            },
        }
    }

    pub async fn find_group(&self, id: i64) -> Result<Option<Group>, ServiceError> {
        Ok(self.store.find_group(id).await?)
    }

    pub async fn find_group_avatar(
        &self,
        group_id: i64,
    ) -> Result<Option<(String, Vec<u8>)>, ServiceError> {
        Ok(self.store.find_group_avatar(group_id).await?)
    }

    pub async fn find_group_by_path(&self, full_path: &str) -> Result<Option<Group>, ServiceError> {
        Ok(self.store.find_group_by_path(full_path).await?)
    }

    pub async fn list_groups(
        &self,
        filter: &GroupFilter,
        page: PageRequest,
    ) -> Result<(Vec<Group>, u64), ServiceError> {
        Ok(self.store.list_groups(filter, page).await?)
    }

    /// Every group `user_id` has access to, for the OpenID Connect claims.
    pub async fn groups_of_user(&self, user_id: i64) -> Result<Vec<GroupAccess>, ServiceError> {
        Ok(self
            .store
            .groups_of_user(user_id, &self.today_text())
            .await?)
    }

    /// Create a group; its creator becomes its Owner. A top-level group may
    /// be made by anyone but external users; a subgroup by the parent's
    /// Maintainers and Owners (the caller checks the parent: `parent`).
    pub async fn create_group(
        &self,
        ctx: &Context,
        creator: &User,
        params: GroupParams,
        parent: Option<Group>,
    ) -> Result<Group, ServiceError> {
        let mut errors = ValidationErrors::default();
        check_group_name(&params.name, &mut errors);
        check_group_path(&params.path, parent.is_none(), &mut errors);
        if let Some(d) = &params.description {
            check_description(d, &mut errors);
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let visibility = params
            .visibility
            .unwrap_or(self.config().default_group_visibility);
        let now = self.now_ms();
        let parent_id = parent.as_ref().map(|p| p.id);
        let (ctx, creator) = (ctx.clone(), creator.clone());
        self.unit(move |tx| {
            Box::pin(async move {
                // Its Owner first, as a user's delete takes them (before the
                // parent, which that delete may take with the user).
                tx.lock_users_referenced(&[creator.id]).await?;
                // The parent as it is now, locked: its path, name and
                // visibility cannot change under the new subgroup.
                let parent = match parent_id {
                    Some(id) => Some(tx.find_group(id).await?.ok_or(StoreError::Gone)?),
                    None => None,
                };
                let mut errors = ValidationErrors::default();
                check_visibility(visibility, parent.as_ref(), &mut errors);
                if let Some(p) = &parent {
                    check_depth(p, &mut errors);
                    if tx.group_name_taken(p.id, &params.name, None).await? {
                        errors.add("name", "has already been taken");
                    }
                }
                if !errors.is_empty() {
                    return Ok(Err(ServiceError::Validation(errors)));
                }
                // Top-level groups share their paths with usernames.
                if parent.is_none() && tx.username_taken(&params.path).await? {
                    return Ok(Err(path_taken()));
                }
                let (full_path, full_name) = match &parent {
                    Some(p) => (
                        format!("{}/{}", p.full_path, params.path),
                        format!("{} / {}", p.full_name, params.name),
                    ),
                    None => (params.path.clone(), params.name.clone()),
                };
                let new = NewGroup {
                    parent_id,
                    name: params.name,
                    path: params.path,
                    full_path,
                    full_name,
                    description: params.description.unwrap_or_default(),
                    visibility,
                    created_at: now,
                    avatar: params.avatar,
                };
                let group = match tx.insert_group(new).await {
                    Err(StoreError::Conflict(_)) => return Ok(Err(path_taken())),
                    other => other?,
                };
                tx.insert_membership(NewMembership {
                    group_id: group.id,
                    user_id: creator.id,
                    access_level: level::OWNER,
                    expires_at: None,
                    // As GitLab: a group's creator was added by nobody.
                    created_by: None,
                    created_at: now,
                })
                .await?;
                let event = group_event(&ctx, now, "group_created", &group, "Added group")
                    .detail("visibility", group.visibility.as_str());
                tx.record_audit(event).await?;
                Ok(Ok(group))
            })
        })
        .await
        .map_err(|e| match e {
            // The parent (or the creator) was deleted meanwhile.
            StoreError::Gone => ServiceError::NotFound,
            other => other.into(),
        })?
    }

    /// Change a group's name, path, description or visibility. A new name
    /// or path renames its descendants' full names and paths too.
    pub async fn update_group(
        &self,
        ctx: &Context,
        group: &Group,
        update: GroupUpdate,
    ) -> Result<Group, ServiceError> {
        let mut errors = ValidationErrors::default();
        if let Some(name) = &update.name {
            check_group_name(name, &mut errors);
        }
        if let Some(path) = &update.path {
            if *path != group.path {
                check_group_path(path, group.parent_id.is_none(), &mut errors);
            }
        }
        if let Some(d) = &update.description {
            check_description(d, &mut errors);
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        if !update.changes(group) {
            return Ok(group.clone());
        }
        let (ctx, now, id, parent_id) = (ctx.clone(), self.now_ms(), group.id, group.parent_id);
        let outcome = self
            .unit(move |tx| {
                Box::pin(async move {
                    // The parent first, then the group: locks are taken
                    // from the top down, as a rename of the parent takes
                    // them, so that the two wait rather than deadlock.
                    let parent = match parent_id {
                        Some(p) => tx.find_group(p).await?,
                        None => None,
                    };
                    let Some(old) = tx.find_group(id).await? else {
                        return Ok(Err(ServiceError::NotFound));
                    };
                    let mut errors = ValidationErrors::default();
                    if let Some(v) = update.visibility {
                        check_visibility(v, parent.as_ref(), &mut errors);
                    }
                    if let (Some(p), Some(name)) = (&parent, &update.name) {
                        if *name != old.name && tx.group_name_taken(p.id, name, Some(id)).await? {
                            errors.add("name", "has already been taken");
                        }
                    }
                    if !errors.is_empty() {
                        return Ok(Err(ServiceError::Validation(errors)));
                    }
                    if let Some(v) = update.visibility {
                        if let Some(child) = tx.most_visible_subgroup(id).await? {
                            if child > v {
                                let mut errors = ValidationErrors::default();
                                errors.add(
                                    "visibility_level",
                                    format!(
                                        "{} is not allowed since there are sub-groups with higher visibility.",
                                        v.as_str()
                                    ),
                                );
                                return Ok(Err(ServiceError::Validation(errors)));
                            }
                        }
                    }
                    let path_changes = update.path.as_ref().is_some_and(|p| *p != old.path);
                    if path_changes && old.parent_id.is_none() {
                        if let Some(path) = &update.path {
                            if tx.username_taken(path).await? {
                                return Ok(Err(path_taken()));
                            }
                        }
                    }
                    let new = match tx.update_group(id, update, now).await {
                        Err(StoreError::Conflict(_)) => return Ok(Err(path_taken())),
                        other => other?,
                    };
                    let Some(new) = new else {
                        return Ok(Err(ServiceError::NotFound));
                    };
                    for event in group_changes(&ctx, now, &old, &new) {
                        tx.record_audit(event).await?;
                    }
                    Ok(Ok(new))
                })
            })
            .await?;
        outcome
    }

    /// Delete a group with its subgroups, memberships and applications
    /// (and their grants and tokens).
    pub async fn delete_group(&self, ctx: &Context, group: &Group) -> Result<(), ServiceError> {
        let (ctx, now, id) = (ctx.clone(), self.now_ms(), group.id);
        let deleted = self
            .changing_auth(self.unit(move |tx| {
                Box::pin(async move {
                    let Some(group) = tx.find_group(id).await? else {
                        return Ok(false);
                    };
                    if !tx.delete_group(id).await? {
                        return Ok(false);
                    }
                    let event = group_event(&ctx, now, "group_deleted", &group, "Group destroyed");
                    tx.record_audit(event).await?;
                    Ok(true)
                })
            }))
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    pub async fn list_members(
        &self,
        group_id: i64,
        filter: &MemberFilter,
        page: PageRequest,
    ) -> Result<(Vec<Member>, u64), ServiceError> {
        Ok(self.store.list_members(group_id, filter, page).await?)
    }

    /// A member of a group. A direct membership is found even once
    /// expired (it can still be changed or removed, as in GitLab until its
    /// nightly purge); through an ancestor, only live ones count.
    pub async fn find_member(
        &self,
        group_id: i64,
        user_id: i64,
        inherited: bool,
    ) -> Result<Option<Member>, ServiceError> {
        let today = if inherited {
            self.today_text()
        } else {
            String::new()
        };
        Ok(self
            .store
            .find_member(group_id, user_id, inherited, &today)
            .await?)
    }

    /// What `user_id` has in `group` through its ancestors, if that is
    /// more than `wanted`: as a refusal.
    async fn below_inherited(
        &self,
        group: &Group,
        user_id: i64,
        wanted: i32,
    ) -> Result<Option<MemberRefusal>, ServiceError> {
        let Some(parent) = group.parent_id else {
            return Ok(None);
        };
        let today = self.today_text();
        let Some(above) = self
            .store
            .find_member(parent, user_id, true, &today)
            .await?
        else {
            return Ok(None);
        };
        if above.membership.access_level <= wanted {
            return Ok(None);
        }
        let name = self
            .store
            .find_group(above.membership.group_id)
            .await?
            .map(|g| g.name)
            .unwrap_or_default();
        Ok(Some(MemberRefusal::BelowInherited(
            level::name(above.membership.access_level),
            name,
        )))
    }

    /// Add `user` to `group`, as `by`. `role` is what `by` is to the group
    /// (they may manage members; only Owners add Owners).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_member(
        &self,
        ctx: &Context,
        role: GroupRole,
        group: &Group,
        user: &User,
        by: &User,
        access_level: i32,
        expires_at: Option<String>,
    ) -> Result<Result<Member, MemberRefusal>, ServiceError> {
        if access_level == level::OWNER && !role.may_administer() {
            return Ok(Err(MemberRefusal::OwnersOnly));
        }
        if let Some(refusal) = self.below_inherited(group, user.id, access_level).await? {
            return Ok(Err(refusal));
        }
        let now = self.now_ms();
        let new = NewMembership {
            group_id: group.id,
            user_id: user.id,
            access_level,
            expires_at,
            created_by: Some(by.id),
            created_at: now,
        };
        // Who added a member is shown unless they added themselves.
        let creator = (by.id != user.id).then(|| by.clone());
        let (ctx, group, user) = (ctx.clone(), group.clone(), user.clone());
        let today = self.today_text();
        let by_id = by.id;
        self.unit(move |tx| {
            Box::pin(async move {
                // The member and who adds them, then the group, before the
                // membership it may replace: the order of a user's delete
                // (the user, then the groups it deletes) and of a group's
                // (the group, then its memberships).
                tx.lock_users_referenced(&[user.id, by_id]).await?;
                tx.lock_group_referenced(group.id).await?;
                if let Some(old) = tx.find_membership(group.id, user.id).await? {
                    // An expired membership is over: a new one replaces it.
                    if !expired(old.expires_at.as_deref(), &today) {
                        return Ok(Err(MemberRefusal::Exists));
                    }
                    tx.delete_membership(group.id, user.id, false).await?;
                }
                let membership = match tx.insert_membership(new).await {
                    Err(StoreError::Conflict(_)) => return Ok(Err(MemberRefusal::Exists)),
                    other => other?,
                };
                let event =
                    member_event(&ctx, now, "member_created", &group, &user, "Added member")
                        .detail("as", level::name(membership.access_level))
                        .detail(
                            "expiry_to",
                            membership.expires_at.clone().unwrap_or_default(),
                        );
                tx.record_audit(event).await?;
                Ok(Ok(Member {
                    membership,
                    user,
                    creator,
                }))
            })
        })
        .await
        .map_err(|e| match e {
            // The group or the user was deleted meanwhile.
            StoreError::Gone => ServiceError::NotFound,
            other => other.into(),
        })
    }

    /// Change a direct membership's access level or expiry.
    pub async fn update_member(
        &self,
        ctx: &Context,
        role: GroupRole,
        group: &Group,
        member: &Member,
        update: MembershipUpdate,
    ) -> Result<Result<Member, MemberRefusal>, ServiceError> {
        let owner_involved = member.membership.access_level == level::OWNER
            || update.access_level == Some(level::OWNER);
        if owner_involved && !role.may_administer() {
            return Ok(Err(MemberRefusal::OwnersOnly));
        }
        if let Some(wanted) = update.access_level {
            if let Some(refusal) = self.below_inherited(group, member.user.id, wanted).await? {
                return Ok(Err(refusal));
            }
        }
        let (ctx, now, group, user) = (
            ctx.clone(),
            self.now_ms(),
            group.clone(),
            member.user.clone(),
        );
        let creator = member.creator.clone();
        let today = self.today_text();
        self.unit(move |tx| {
            Box::pin(async move {
                // The group's row orders every change to its Owners.
                if tx.find_group(group.id).await?.is_none() {
                    return Err(StoreError::Gone);
                }
                let Some(old) = tx.find_membership(group.id, user.id).await? else {
                    return Err(StoreError::Gone);
                };
                // Demoting an Owner, or giving one an end: the group must
                // keep another.
                let demoted = update.access_level.is_some_and(|l| l != level::OWNER);
                let ending = update.expires_at.as_ref().is_some_and(Option::is_some);
                if old.access_level == level::OWNER
                    && (demoted || ending)
                    && group.parent_id.is_none()
                    && tx.count_owners(group.id, &today).await? <= 1
                {
                    return Ok(Err(MemberRefusal::LastOwner));
                }
                let Some(new) = tx.update_membership(group.id, user.id, update, now).await? else {
                    return Err(StoreError::Gone);
                };
                let changes = [
                    (
                        "access_level",
                        level::name(old.access_level).to_owned(),
                        level::name(new.access_level).to_owned(),
                    ),
                    (
                        "expires_at",
                        old.expires_at.clone().unwrap_or_default(),
                        new.expires_at.clone().unwrap_or_default(),
                    ),
                ];
                for (what, from, to) in changes.into_iter().filter(|(_, f, t)| f != t) {
                    let event = member_event(
                        &ctx,
                        now,
                        "member_updated",
                        &group,
                        &user,
                        &format!("Changed member {what}"),
                    )
                    .change(what, from, to);
                    tx.record_audit(event).await?;
                }
                Ok(Ok(Member {
                    membership: new,
                    user,
                    creator,
                }))
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::Gone => ServiceError::NotFound,
            other => other.into(),
        })
    }

    /// Remove a direct membership (with `with_subgroups`, the user's
    /// memberships of the groups below too, as GitLab does unless asked
    /// to skip them). Members may leave; the last Owner of a top-level
    /// group stays.
    pub async fn remove_member(
        &self,
        ctx: &Context,
        role: GroupRole,
        group: &Group,
        member: &Member,
        with_subgroups: bool,
    ) -> Result<Result<(), MemberRefusal>, ServiceError> {
        let leaving = ctx.user_id == Some(member.user.id);
        if member.membership.access_level == level::OWNER && !role.may_administer() && !leaving {
            return Ok(Err(MemberRefusal::OwnersOnly));
        }
        let (ctx, now, group, user) = (
            ctx.clone(),
            self.now_ms(),
            group.clone(),
            member.user.clone(),
        );
        let today = self.today_text();
        self.unit(move |tx| {
            Box::pin(async move {
                // The group's row orders every change to its Owners.
                if tx.find_group(group.id).await?.is_none() {
                    return Err(StoreError::Gone);
                }
                let Some(old) = tx.find_membership(group.id, user.id).await? else {
                    return Err(StoreError::Gone);
                };
                if old.access_level == level::OWNER
                    && group.parent_id.is_none()
                    && tx.count_owners(group.id, &today).await? <= 1
                {
                    return Ok(Err(MemberRefusal::LastOwner));
                }
                if !tx
                    .delete_membership(group.id, user.id, with_subgroups)
                    .await?
                {
                    return Err(StoreError::Gone);
                }
                let event = member_event(
                    &ctx,
                    now,
                    "member_destroyed",
                    &group,
                    &user,
                    "Removed member",
                )
                .detail("as", level::name(old.access_level));
                tx.record_audit(event).await?;
                Ok(Ok(()))
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::Gone => ServiceError::NotFound,
            other => other.into(),
        })
    }
}

fn path_taken() -> ServiceError {
    let mut errors = ValidationErrors::default();
    errors.add("path", "has already been taken");
    ServiceError::Validation(errors)
}

/// One event per attribute an update changed, with `from` and `to`.
fn group_changes(ctx: &Context, now: i64, old: &Group, new: &Group) -> Vec<NewAuditEvent> {
    let avatar = |g: &Group| g.avatar.clone().unwrap_or_default();
    let changes: [(&str, String, String); 5] = [
        ("name", old.name.clone(), new.name.clone()),
        ("path", old.full_path.clone(), new.full_path.clone()),
        (
            "description",
            old.description.clone(),
            new.description.clone(),
        ),
        (
            "visibility",
            old.visibility.as_str().to_owned(),
            new.visibility.as_str().to_owned(),
        ),
        // The picture is named by its file, never shown.
        ("avatar", avatar(old), avatar(new)),
    ];
    changes
        .into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(what, from, to)| {
            group_event(
                ctx,
                now,
                "group_updated",
                new,
                &format!("Changed group {what}"),
            )
            .change(what, from, to)
        })
        .collect()
}
