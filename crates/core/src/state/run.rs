//! Running a plan's steps in the unit of work, each with its audit event.

use std::collections::{BTreeMap, HashMap};

use crate::application::{
    application_created_event, application_event, secret_hint, ApplicationUpdate, NewApplication,
    NewSecret, Ownership,
};
use crate::audit::NewAuditEvent;
use crate::context::Context;
use crate::error::StoreError;
use crate::group::{group_event, member_event, Group, NewGroup, NewMembership};
use crate::secret;
use crate::service::Plaintext;
use crate::store::Transaction;
use crate::token::{token_event, NewToken, PAT_PREFIX};
use crate::user::{user_event, User, UserState};

use super::check::Owner;
use super::Step;

/// The plan being run: the unit's transaction, and what exists so far.
pub(super) struct Run<'t, 'c> {
    pub(super) tx: &'t mut dyn Transaction,
    pub(super) ctx: &'c Context,
    pub(super) now: i64,
    pub(super) prefix: &'c str,
    /// By lowercase username / full path, stored or made by this run.
    pub(super) users: HashMap<String, User>,
    pub(super) groups: HashMap<String, Group>,
    pub(super) generated: Vec<(String, Plaintext)>,
}

impl Run<'_, '_> {
    fn user(&self, username: &str) -> Result<User, StoreError> {
        self.users
            .get(&username.to_ascii_lowercase())
            .cloned()
            .ok_or(StoreError::Gone)
    }

    fn group(&self, full_path: &str) -> Result<Group, StoreError> {
        self.groups
            .get(&full_path.to_ascii_lowercase())
            .cloned()
            .ok_or(StoreError::Gone)
    }

    fn owner_ids(&self, owner: &Owner) -> Result<(Option<i64>, Option<i64>), StoreError> {
        Ok(match owner {
            Owner::Instance => (None, None),
            Owner::User(u) => (Some(self.user(u)?.id), None),
            Owner::Group(g) => (None, Some(self.group(g)?.id)),
        })
    }

    async fn audit(&mut self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.tx.record_audit(event).await
    }

    /// Lock, before any step runs and in id order, every stored user the
    /// plan names: those it deletes (`Transaction::find_user_to_delete`)
    /// and every other (`Transaction::lock_users_referenced`): a user it
    /// updates, blocks, adds to a group or whose membership it changes, a
    /// token's owner, an application's owner now or after. A user's delete
    /// locks the user and then takes its groups, applications, memberships
    /// and tokens; a plan takes those at their steps (applications and
    /// groups before users, a group's update before its members), and a
    /// user locked only when a later step reached it was locked after rows
    /// that delete was waiting for: the two could deadlock (so could a
    /// unit that issues the user a token, which locks the user before the
    /// application). A user gone since the plan was made fails the run, as
    /// its step would (the error names the first step about it).
    pub(super) async fn lock_users(&mut self, steps: &[Step]) -> Result<(), (String, StoreError)> {
        // By id: the first step about the user, and whether one deletes it.
        let mut users: BTreeMap<i64, (&Step, bool)> = BTreeMap::new();
        for step in steps {
            let stored = |username: &str| {
                // None: made by this run.
                self.users.get(&username.to_ascii_lowercase()).map(|u| u.id)
            };
            let owner = |owner: Option<&Owner>| match owner {
                Some(Owner::User(username)) => stored(username),
                _ => None,
            };
            let (named, deletes): ([Option<i64>; 2], bool) = match step {
                Step::DeleteUser { id, .. } => ([Some(*id), None], true),
                Step::UpdateUser { id, .. } | Step::SetUserState { id, .. } => {
                    ([Some(*id), None], false)
                }
                Step::UpdateMember { user_id, .. } | Step::RemoveMember { user_id, .. } => {
                    ([Some(*user_id), None], false)
                }
                Step::AddMember { username, .. }
                | Step::CreateToken { username, .. }
                | Step::UpdateToken { username, .. }
                | Step::RevokeToken { username, .. } => ([stored(username), None], false),
                Step::CreateApplication { owner: new, .. } => ([owner(Some(new)), None], false),
                Step::UpdateApplication {
                    owner_id,
                    owner: new,
                    ..
                } => ([*owner_id, owner(new.as_ref())], false),
                Step::ReplaceSecrets { owner_id, .. }
                | Step::DeleteApplication { owner_id, .. } => ([*owner_id, None], false),
                Step::CreateUser { .. }
                | Step::CreateGroup { .. }
                | Step::UpdateGroup { .. }
                | Step::DeleteGroup { .. } => ([None, None], false),
            };
            for id in named.into_iter().flatten() {
                users.entry(id).or_insert((step, false)).1 |= deletes;
            }
        }
        for (id, (step, deletes)) in users {
            let locked = if deletes {
                match self.tx.find_user_to_delete(id).await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err(StoreError::Gone),
                    Err(e) => Err(e),
                }
            } else {
                self.tx.lock_users_referenced(&[id]).await
            };
            locked.map_err(|e| (step.to_string(), e))?;
        }
        Ok(())
    }

    pub(super) async fn step(&mut self, step: Step) -> Result<(), StoreError> {
        let (ctx, now) = (self.ctx, self.now);
        match step {
            Step::CreateUser { new, blocked } => {
                let user = self.tx.insert_user(new).await?;
                let event = user_event(ctx, now, "user_created", &user, "Added user")
                    .detail("admin", user.admin);
                self.audit(event).await?;
                if blocked {
                    self.tx
                        .set_user_state(user.id, UserState::Blocked, now)
                        .await?;
                    self.audit(user_event(ctx, now, "user_blocked", &user, "Blocked user"))
                        .await?;
                }
                self.users.insert(user.username.to_ascii_lowercase(), user);
            }
            Step::UpdateUser {
                id, update, fields, ..
            } => {
                let old = self.tx.find_user(id).await?.ok_or(StoreError::Gone)?;
                let user = self
                    .tx
                    .update_user(id, update)
                    .await?
                    .ok_or(StoreError::Gone)?;
                if fields.contains(&"password") {
                    // As any password change: every session ends.
                    self.tx.delete_user_sessions(id, None).await?;
                }
                for field in fields {
                    let event = if field == "password" {
                        user_event(ctx, now, "user_password_changed", &user, "Changed password")
                            .detail("change", "password")
                    } else {
                        let value = |u: &User| match field {
                            "username" => u.username.clone(),
                            "email" => u.email.clone(),
                            "name" => u.name.clone(),
                            "admin" => u.admin.to_string(),
                            _ => u.external.to_string(),
                        };
                        user_event(ctx, now, "user_updated", &user, &format!("Changed {field}"))
                            .change(field, value(&old), value(&user))
                    };
                    self.audit(event).await?;
                }
                self.users.remove(&old.username.to_ascii_lowercase());
                self.users.insert(user.username.to_ascii_lowercase(), user);
            }
            Step::SetUserState { id, state, .. } => {
                let user = self.tx.find_user(id).await?.ok_or(StoreError::Gone)?;
                self.tx.set_user_state(id, state, now).await?;
                let (event, message) = match state {
                    UserState::Blocked => ("user_blocked", "Blocked user"),
                    UserState::Active => ("user_unblocked", "Unblocked user"),
                };
                self.audit(user_event(ctx, now, event, &user, message))
                    .await?;
            }
            Step::CreateToken {
                username,
                name,
                scopes,
                digest,
                expires_at,
            } => {
                let user = self.user(&username)?;
                let digest = match digest {
                    Some(d) => d,
                    None => {
                        let value = format!("{PAT_PREFIX}{}", random_hex()?);
                        let d = secret::digest(&value);
                        self.generated.push((
                            format!("token {name:?} of {username}"),
                            Plaintext::new(value),
                        ));
                        d
                    }
                };
                let token = self
                    .tx
                    .insert_token(NewToken {
                        user_id: user.id,
                        name,
                        digest,
                        scopes,
                        expires_at,
                        created_at: now,
                    })
                    .await?;
                let event = token_event(
                    ctx,
                    now,
                    "personal_access_token_created",
                    &token,
                    "Created personal access token",
                );
                self.audit(event).await?;
            }
            Step::UpdateToken {
                id,
                name,
                scopes,
                expires_at,
                fields,
                ..
            } => {
                let token = self
                    .tx
                    .update_token(id, &name, &scopes, expires_at)
                    .await?
                    .ok_or(StoreError::Gone)?;
                let event = token_event(
                    ctx,
                    now,
                    "personal_access_token_updated",
                    &token,
                    "Changed personal access token",
                )
                .detail("changed", fields.join(" "));
                self.audit(event).await?;
            }
            Step::RevokeToken { id, .. } => {
                let token = self.tx.find_token(id).await?.ok_or(StoreError::Gone)?;
                self.tx.revoke_token(id).await?;
                let event = token_event(
                    ctx,
                    now,
                    "personal_access_token_revoked",
                    &token,
                    "Revoked personal access token",
                );
                self.audit(event).await?;
            }
            Step::CreateGroup {
                full_path,
                parent,
                name,
                path,
                description,
                visibility,
            } => {
                let parent = parent.map(|p| self.group(&p)).transpose()?;
                // As the parent spells its path (the file may differ in case).
                let (full_path, full_name) = match &parent {
                    Some(p) => (
                        format!("{}/{path}", p.full_path),
                        format!("{} / {name}", p.full_name),
                    ),
                    None => (full_path, name.clone()),
                };
                let group = self
                    .tx
                    .insert_group(NewGroup {
                        parent_id: parent.map(|p| p.id),
                        name,
                        path,
                        full_path,
                        full_name,
                        description,
                        visibility,
                        created_at: now,
                        avatar: None,
                    })
                    .await?;
                let event = group_event(ctx, now, "group_created", &group, "Added group")
                    .detail("visibility", group.visibility.as_str());
                self.audit(event).await?;
                self.groups
                    .insert(group.full_path.to_ascii_lowercase(), group);
            }
            Step::UpdateGroup {
                id,
                full_path,
                update,
                fields,
            } => {
                let old = self.group(&full_path)?;
                let group = self
                    .tx
                    .update_group(id, update, now)
                    .await?
                    .ok_or(StoreError::Gone)?;
                for field in fields {
                    let value = |g: &Group| match field {
                        "name" => g.name.clone(),
                        "description" => g.description.clone(),
                        _ => g.visibility.as_str().to_owned(),
                    };
                    let event = group_event(
                        ctx,
                        now,
                        "group_updated",
                        &group,
                        &format!("Changed {field}"),
                    )
                    .change(field, value(&old), value(&group));
                    self.audit(event).await?;
                }
                self.groups
                    .insert(group.full_path.to_ascii_lowercase(), group);
            }
            Step::AddMember {
                group,
                username,
                access_level,
                expires_at,
            } => {
                let (group, user) = (self.group(&group)?, self.user(&username)?);
                let m = self
                    .tx
                    .insert_membership(NewMembership {
                        group_id: group.id,
                        user_id: user.id,
                        access_level,
                        expires_at,
                        created_by: None,
                        created_at: now,
                    })
                    .await?;
                let event = member_event(ctx, now, "member_created", &group, &user, "Added member")
                    .detail("as", crate::group::level::name(m.access_level))
                    .detail("expiry_to", m.expires_at.clone().unwrap_or_default());
                self.audit(event).await?;
            }
            Step::UpdateMember {
                group,
                group_id,
                username,
                user_id,
                update,
                ..
            } => {
                let (group, user) = (self.group(&group)?, self.user(&username)?);
                let old = self
                    .tx
                    .find_membership(group_id, user_id)
                    .await?
                    .ok_or(StoreError::Gone)?;
                let m = self
                    .tx
                    .update_membership(group_id, user_id, update, now)
                    .await?
                    .ok_or(StoreError::Gone)?;
                let event =
                    member_event(ctx, now, "member_updated", &group, &user, "Changed member")
                        .change(
                            "access_level",
                            crate::group::level::name(old.access_level),
                            crate::group::level::name(m.access_level),
                        )
                        .detail("expiry_to", m.expires_at.clone().unwrap_or_default());
                self.audit(event).await?;
            }
            Step::RemoveMember {
                group,
                group_id,
                username,
                user_id,
            } => {
                let group = self.group(&group)?;
                let user = self.user(&username)?;
                self.tx.delete_membership(group_id, user_id, false).await?;
                let event = member_event(
                    ctx,
                    now,
                    "member_destroyed",
                    &group,
                    &user,
                    "Removed member",
                );
                self.audit(event).await?;
            }
            Step::CreateApplication {
                name,
                redirect_uri,
                scopes,
                confidential,
                trusted,
                grant_types,
                owner,
                application_id,
                secrets,
            } => {
                let (owner_id, group_id) = self.owner_ids(&owner)?;
                let mut secrets = secrets.unwrap_or_default();
                if secrets.is_empty() {
                    let value = Plaintext::new(format!("{}{}", self.prefix, random_hex()?));
                    secrets.push(super::check::DesiredSecret {
                        digest: secret::digest(value.expose()),
                        hint: Some(secret_hint(value.expose())),
                        expires_at: None,
                    });
                    self.generated
                        .push((format!("secret of application {name:?}"), value));
                }
                let first = secrets.remove(0);
                let app = self
                    .tx
                    .insert_application(NewApplication {
                        application_id: match application_id {
                            Some(id) => id,
                            None => random_hex()?,
                        },
                        secret_digest: first.digest.clone(),
                        secret_hint: first.hint.clone().unwrap_or_default(),
                        name,
                        redirect_uri,
                        scopes,
                        confidential,
                        owner_id,
                        group_id,
                        created_at: now,
                        dynamic: false,
                        registration_token_digest: None,
                        grant_types,
                    })
                    .await?;
                let app = if trusted || first.expires_at.is_some() || !secrets.is_empty() {
                    if !secrets.is_empty() || first.expires_at.is_some() {
                        secrets.insert(0, first);
                        let list = secrets.into_iter().map(|s| new_secret(s, now)).collect();
                        self.tx.replace_application_secrets(app.id, list).await?;
                    }
                    let update = ApplicationUpdate {
                        trusted: Some(trusted),
                        ..ApplicationUpdate::default()
                    };
                    self.tx
                        .update_application(app.id, update, now)
                        .await?
                        .ok_or(StoreError::Gone)?
                } else {
                    app
                };
                self.audit(application_created_event(ctx, now, &app))
                    .await?;
            }
            Step::UpdateApplication {
                id,
                mut update,
                owner,
                fields,
                ..
            } => {
                let old = self
                    .tx
                    .find_application(id, Ownership::Any)
                    .await?
                    .ok_or(StoreError::Gone)?;
                if let Some(owner) = &owner {
                    update.owner = Some(self.owner_ids(owner)?);
                }
                let app = self
                    .tx
                    .update_application(id, update, now)
                    .await?
                    .ok_or(StoreError::Gone)?;
                let grants =
                    |a: &crate::application::Application| a.effective_grant_types().join(" ");
                for field in fields {
                    let value = |a: &crate::application::Application| match field {
                        "name" => a.name.clone(),
                        "redirect_uri" => a.redirect_uri.clone(),
                        "scopes" => a.scopes.joined(),
                        "confidential" => a.confidential.to_string(),
                        "trusted" => a.trusted.to_string(),
                        "grant_types" => grants(a),
                        _ => match (a.owner_id, a.group_id) {
                            (Some(u), _) => format!("user {u}"),
                            (_, Some(g)) => format!("group {g}"),
                            _ => "instance".to_owned(),
                        },
                    };
                    let event = application_event(
                        ctx,
                        now,
                        "oauth_application_updated",
                        &app,
                        &format!("Changed OAuth application {field}"),
                    )
                    .change(field, value(&old), value(&app));
                    self.audit(event).await?;
                }
            }
            Step::ReplaceSecrets { id, secrets, .. } => {
                let app = self
                    .tx
                    .find_application(id, Ownership::Any)
                    .await?
                    .ok_or(StoreError::Gone)?;
                let count = secrets.len();
                let list = secrets.into_iter().map(|s| new_secret(s, now)).collect();
                self.tx.replace_application_secrets(id, list).await?;
                let event = application_event(
                    ctx,
                    now,
                    "oauth_application_secret_renewed",
                    &app,
                    "OAuth application secrets replaced",
                )
                .detail("secrets", count);
                self.audit(event).await?;
            }
            Step::DeleteApplication { id, .. } => {
                let app = self
                    .tx
                    .find_application(id, Ownership::Any)
                    .await?
                    .ok_or(StoreError::Gone)?;
                self.tx.delete_application(id, Ownership::Any).await?;
                let event = application_event(
                    ctx,
                    now,
                    "oauth_application_deleted",
                    &app,
                    "OAuth application removed",
                );
                self.audit(event).await?;
            }
            Step::DeleteGroup { id, .. } => {
                // A subgroup of a group deleted before it went with it.
                if let Some(group) = self.tx.find_group(id).await? {
                    self.tx.delete_group(id).await?;
                    let event = group_event(ctx, now, "group_deleted", &group, "Removed group");
                    self.audit(event).await?;
                }
            }
            Step::DeleteUser { id, .. } => {
                let user = self
                    .tx
                    .find_user_to_delete(id)
                    .await?
                    .ok_or(StoreError::Gone)?;
                self.tx.delete_user(id).await?;
                let event = user_event(ctx, now, "user_deleted", &user, "Removed user")
                    .detail("email", user.email.as_str());
                self.audit(event).await?;
            }
        }
        Ok(())
    }
}

/// 32 random bytes in hex, for a value the file gave none for.
fn random_hex() -> Result<String, StoreError> {
    secret::random_hex(32).map_err(|e| StoreError::Internal(crate::error::cause(e)))
}

fn new_secret(s: super::check::DesiredSecret, now: i64) -> NewSecret {
    NewSecret {
        digest: s.digest,
        hint: s.hint.unwrap_or_default(),
        created_at: now,
        expires_at: s.expires_at,
    }
}
