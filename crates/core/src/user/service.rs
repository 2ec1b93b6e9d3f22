//! Users: the services (creating, changing, blocking, deleting, and the first start).

use crate::application::ValidationErrors;
use crate::error::StoreError;
use crate::pagination::PageRequest;
use crate::scopes::Scopes;
use crate::secret;
use crate::service::{Plaintext, ServiceError, Services};
use crate::{token, user};
use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::audit::{target, Entity, NewAuditEvent};
use crate::context::Context;

/// An event about `user`: under the user, the user as its target.
pub(crate) fn user_event(
    ctx: &Context,
    now: i64,
    event: &'static str,
    user: &User,
    message: &str,
) -> NewAuditEvent {
    let entity = Entity {
        path: Some(user.username.clone()),
        ..Entity::user(user.id)
    };
    NewAuditEvent::new(ctx, now, event, entity, message).target(
        target::USER,
        Some(user.id),
        &user.username,
    )
}

/// Would `update` change `old` at all?
fn changes_anything(old: &User, update: &UserUpdate) -> bool {
    let differs = |new: &Option<String>, now: &str| new.as_deref().is_some_and(|n| n != now);
    differs(&update.username, &old.username)
        || differs(&update.email, &old.email)
        || differs(&update.name, &old.name)
        || update.admin.is_some_and(|a| a != old.admin)
        || update.external.is_some_and(|e| e != old.external)
        || update.profile.as_ref().is_some_and(|p| *p != old.profile)
        || update.password_digest.is_some()
        || update.avatar.is_some()
}

/// One event per attribute an update changed (`from` and `to`; never a
/// password, whose change is only named).
fn user_changes(
    ctx: &Context,
    now: i64,
    old: &User,
    new: &User,
    password_changed: bool,
    avatar_changed: bool,
) -> Vec<NewAuditEvent> {
    let account: [(&str, String, String); 5] = [
        ("username", old.username.clone(), new.username.clone()),
        ("email", old.email.clone(), new.email.clone()),
        ("name", old.name.clone(), new.name.clone()),
        ("admin", old.admin.to_string(), new.admin.to_string()),
        (
            "external",
            old.external.to_string(),
            new.external.to_string(),
        ),
    ];
    let profile = old
        .profile
        .fields()
        .into_iter()
        .zip(new.profile.fields())
        .map(|((what, from), (_, to))| (what, from, to));
    let mut events: Vec<NewAuditEvent> = account
        .into_iter()
        .chain(profile)
        .filter(|(_, from, to)| from != to)
        .map(|(what, from, to)| {
            user_event(ctx, now, "user_updated", new, &format!("Changed {what}"))
                .change(what, from, to)
        })
        .collect();
    if avatar_changed {
        events.push(
            user_event(ctx, now, "user_updated", new, "Changed avatar").change(
                "avatar",
                old.avatar.clone().unwrap_or_default(),
                new.avatar.clone().unwrap_or_default(),
            ),
        );
    }
    if password_changed {
        events.push(
            user_event(ctx, now, "user_password_changed", new, "Changed password")
                .detail("change", "password"),
        );
    }
    events
}

// --- the service -------------------------------------------------------

impl Services {
    /// Create a user; the password (if any) is checked and hashed.
    pub async fn create_user(
        &self,
        ctx: &Context,
        input: &UserInput,
    ) -> Result<User, ServiceError> {
        let new = self.new_user(input).await?;
        let (ctx, now) = (ctx.clone(), self.now_ms());
        Ok(self
            .unit(move |tx| {
                Box::pin(async move {
                    // Usernames share their namespace with top-level groups.
                    if tx.top_level_group_taken(&new.username).await? {
                        return Err(StoreError::Conflict("username".to_owned()));
                    }
                    let user = tx.insert_user(new).await?;
                    let event = user_event(&ctx, now, "user_created", &user, "Added user")
                        .detail("admin", user.admin);
                    tx.record_audit(event).await?;
                    Ok(user)
                })
            })
            .await?)
    }

    /// Field checks of a user's attributes; `None` is "not being set".
    pub(crate) fn check_user_fields(
        username: Option<&str>,
        email: Option<&str>,
        name: Option<&str>,
        password: Option<&str>,
        profile: (&ProfileChanges, Option<&str>),
    ) -> Result<(), ServiceError> {
        let mut errors = ValidationErrors::default();
        if let Some(Err(m)) = username.map(user::check_username) {
            errors.add("username", m);
        }
        if let Some(Err(m)) = email.map(user::check_email) {
            errors.add("email", m);
        }
        match name {
            Some(n) if n.trim().is_empty() => errors.add("name", "can't be blank"),
            Some(n) if n.chars().count() > 255 => {
                errors.add("name", "is too long (maximum is 255 characters)")
            }
            _ => {}
        }
        if let Some(Err(m)) = password.map(user::check_password_strength) {
            errors.add("password", m);
        }
        let (profile, email_owned) = profile;
        profile.check(email_owned, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Validation(errors))
        }
    }

    pub(crate) async fn new_user(&self, input: &UserInput) -> Result<NewUser, ServiceError> {
        Self::check_user_fields(
            Some(&input.username),
            Some(&input.email),
            Some(&input.name),
            input.password.as_ref().map(ExposeSecret::expose_secret),
            (&input.profile, Some(&input.email)),
        )?;
        let password_digest = match &input.password {
            Some(p) => Some(self.hash_password(p.expose_secret()).await?),
            None => None,
        };
        Ok(NewUser {
            username: input.username.clone(),
            email: input.email.clone(),
            name: input.name.clone(),
            password_digest,
            admin: input.admin,
            created_at: self.now_ms(),
            external: input.external,
            profile: input.profile.applied_to(&Profile::default()),
            avatar: input.avatar.clone(),
        })
    }

    /// A user's uploaded avatar: its content type and bytes.
    pub async fn find_avatar(&self, id: i64) -> Result<Option<(String, Vec<u8>)>, ServiceError> {
        Ok(self.store.find_avatar(id).await?)
    }

    pub async fn find_user(&self, id: i64) -> Result<Option<User>, ServiceError> {
        Ok(self.store.find_user(id).await?)
    }

    pub async fn list_users(
        &self,
        filter: &UserFilter,
        page: PageRequest,
    ) -> Result<(Vec<User>, u64), ServiceError> {
        Ok(self.store.list_users(filter, page).await?)
    }

    /// Change a user; every given value is checked like on creation.
    /// Demoting the last active administrator is refused (`Forbidden`).
    pub async fn update_user(
        &self,
        ctx: &Context,
        id: i64,
        changes: &UserChanges,
    ) -> Result<User, ServiceError> {
        // A public email must be the user's own: theirs as it will be.
        let claims_an_email = [&changes.profile.public_email, &changes.profile.commit_email]
            .into_iter()
            .any(|e| e.as_ref().is_some_and(|e| !e.trim().is_empty()));
        // A username that is not changing passes, even if it is now reserved
        // (a user made before the rule keeps theirs).
        let renames_to_reserved = changes
            .username
            .as_deref()
            .is_some_and(user::is_reserved_name);
        let current = if (changes.email.is_none() && claims_an_email) || renames_to_reserved {
            self.store.find_user(id).await?
        } else {
            None
        };
        let username = match (&changes.username, &current) {
            (Some(u), Some(c)) if c.username.eq_ignore_ascii_case(u) => None,
            (u, _) => u.clone(),
        };
        let email_owned = match &changes.email {
            Some(new) => Some(new.clone()),
            None => current.as_ref().map(|u| u.email.clone()),
        };
        Self::check_user_fields(
            username.as_deref(),
            changes.email.as_deref(),
            changes.name.as_deref(),
            changes.password.as_ref().map(ExposeSecret::expose_secret),
            (&changes.profile, email_owned.as_deref()),
        )?;
        let password_digest = match &changes.password {
            Some(p) => Some(self.hash_password(p.expose_secret()).await?),
            None => None,
        };
        let (ctx, now) = (ctx.clone(), self.now_ms());
        let mut update = UserUpdate {
            username,
            email: changes.email.clone(),
            name: changes.name.clone(),
            password_digest,
            admin: changes.admin,
            external: changes.external,
            profile: None,
            updated_at: Some(now),
            avatar: changes.avatar.clone(),
        };
        let password_changed = update.password_digest.is_some();
        let avatar_changed = update.avatar.is_some();
        let profile_changes = changes.profile.clone();
        self.changing_auth(self.unit(move |tx| {
            Box::pin(async move {
                let Some(old) = tx.find_user(id).await? else {
                    return Ok(None);
                };
                if !profile_changes.is_empty() {
                    update.profile = Some(profile_changes.applied_to(&old.profile));
                }
                // A new email: public and commit emails that named the old
                // one are no longer the user's own, and are cleared.
                if let Some(email) = update.email.clone() {
                    let mut profile = update.profile.clone().unwrap_or(old.profile.clone());
                    let mut cleared = false;
                    for claimed in [&mut profile.public_email, &mut profile.commit_email] {
                        if !claimed.is_empty() && !claimed.eq_ignore_ascii_case(&email) {
                            claimed.clear();
                            cleared = true;
                        }
                    }
                    if cleared {
                        update.profile = Some(profile);
                    }
                }
                // Nothing to change: nothing written (not even updated_at),
                // as Rails saves nothing then.
                if !changes_anything(&old, &update) {
                    return Ok(Some(old));
                }
                if let Some(name) = &update.username {
                    let renamed = !name.eq_ignore_ascii_case(&old.username);
                    if renamed && tx.top_level_group_taken(name).await? {
                        return Err(StoreError::Conflict("username".to_owned()));
                    }
                }
                let Some(user) = tx.update_user(id, update).await? else {
                    return Ok(None);
                };
                // A new password ends the sessions signed in with the old one.
                if password_changed {
                    tx.delete_user_sessions(id, None).await?;
                }
                for event in user_changes(&ctx, now, &old, &user, password_changed, avatar_changed)
                {
                    tx.record_audit(event).await?;
                }
                Ok(Some(user))
            })
        }))
        .await
        .map_err(keeping_an_administrator)?
        .ok_or(ServiceError::NotFound)
    }

    /// Delete a user with their applications and tokens. Nobody deletes
    /// themselves through the API, and the last active administrator is
    /// never deleted (`Forbidden`).
    /// Delete a user with their tokens, applications, sessions and
    /// memberships. Top-level groups they alone owned stay, without an
    /// Owner, for administrators to manage (the event names them), unless
    /// `hard_delete`: then those groups, with what is below them, go too
    /// (GitLab's `hard_delete`). Clients delete users expecting 204, as
    /// GitLab answers, so a sole Owner is not refused.
    pub async fn delete_user(
        &self,
        ctx: &Context,
        id: i64,
        hard_delete: bool,
    ) -> Result<(), ServiceError> {
        if ctx.user_id == Some(id) {
            return Err(ServiceError::Forbidden(Some(
                "The API initiating user cannot be deleted by the API",
            )));
        }
        let (ctx, now, today) = (ctx.clone(), self.now_ms(), self.today_text());
        let deleted = self
            .changing_auth(self.unit(move |tx| {
                Box::pin(async move {
                    let Some(user) = tx.find_user_to_delete(id).await? else {
                        return Ok(Err(ServiceError::NotFound));
                    };
                    let solely_owned = tx.solely_owned_groups(id, &today).await?;
                    let paths: Vec<&str> =
                        solely_owned.iter().map(|g| g.full_path.as_str()).collect();
                    let left_without_owner = if hard_delete {
                        String::new()
                    } else {
                        paths.join(" ")
                    };
                    for group in solely_owned.iter().filter(|_| hard_delete) {
                        tx.delete_group(group.id).await?;
                        let event = crate::group::group_event(
                            &ctx,
                            now,
                            "group_deleted",
                            group,
                            "Group destroyed with its only Owner",
                        );
                        tx.record_audit(event).await?;
                    }
                    if !tx.delete_user(id).await? {
                        return Ok(Err(ServiceError::NotFound));
                    }
                    let mut event = user_event(&ctx, now, "user_deleted", &user, "Removed user")
                        .detail("email", user.email.as_str());
                    if !left_without_owner.is_empty() {
                        event = event.detail("groups_left_without_owner", left_without_owner);
                    }
                    tx.record_audit(event).await?;
                    Ok(Ok(()))
                })
            }))
            .await
            .map_err(keeping_an_administrator)?;
        deleted
    }

    /// Block or unblock a user; whether the state changed (`false`: it
    /// already was). Nobody blocks themselves (GitLab's rule), and the last
    /// active administrator is never blocked (`Forbidden`).
    pub async fn set_user_state(
        &self,
        ctx: &Context,
        id: i64,
        state: UserState,
    ) -> Result<bool, ServiceError> {
        if ctx.user_id == Some(id) && state == UserState::Blocked {
            return Err(ServiceError::Forbidden(Some(
                "The API initiating user cannot be blocked by the API",
            )));
        }
        let (ctx, now) = (ctx.clone(), self.now_ms());
        let outcome = self
            .changing_auth(self.unit(move |tx| {
                Box::pin(async move {
                    let Some(user) = tx.find_user(id).await? else {
                        return Ok(None);
                    };
                    if user.state == state {
                        return Ok(Some(false));
                    }
                    if !tx.set_user_state(id, state, now).await? {
                        return Ok(None);
                    }
                    let (event, message) = match state {
                        UserState::Blocked => ("user_blocked", "Blocked user"),
                        UserState::Active => ("user_unblocked", "Unblocked user"),
                    };
                    tx.record_audit(user_event(&ctx, now, event, &user, message))
                        .await?;
                    Ok(Some(true))
                })
            }))
            .await
            .map_err(keeping_an_administrator)?;
        outcome.ok_or(ServiceError::NotFound)
    }

    pub async fn find_user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<User>, ServiceError> {
        Ok(self.store.find_user_by_username(username).await?)
    }

    /// On first start with no users: create the admin `root` with a token
    /// scoped `api read_api read_user sudo admin_mode`. Chosen values are
    /// checked and refused when weak; missing ones are generated.
    /// `Ok(None)` when users already exist.
    pub async fn bootstrap_root(
        &self,
        password: Option<&str>,
        token_value: Option<&str>,
    ) -> Result<Option<Bootstrapped>, ServiceError> {
        if let Some(p) = password {
            user::check_password_strength(p).map_err(|e| {
                ServiceError::Invalid(format!("LATCHKEY_ROOT_PASSWORD refused: the password {e}"))
            })?;
        }
        if let Some(t) = token_value {
            token::check_token_value(t)
                .map_err(|e| ServiceError::Invalid(format!("LATCHKEY_ROOT_TOKEN refused: {e}")))?;
        }
        if self.store.find_user_by_username("root").await?.is_some() {
            return Ok(None);
        }
        let generated_password = match password {
            Some(_) => None,
            None => Some(Plaintext::new(secret::random_hex(16)?)),
        };
        let chosen = password.or(generated_password.as_ref().map(Plaintext::expose));
        let new_user = self
            .new_user(&UserInput {
                username: "root".to_owned(),
                email: "root@latchkey.local".to_owned(),
                name: "Administrator".to_owned(),
                password: chosen.map(SecretString::from),
                admin: true,
                ..UserInput::default()
            })
            .await?;
        let (new_token, token_plain) = self.new_token(
            0,
            "bootstrap",
            &Scopes::from_stored("api read_api read_user sudo admin_mode"),
            None,
            token_value,
        )?;
        let now = self.now_ms();
        let Some(made) = self
            .store
            .bootstrap_first_user(new_user, new_token, move |user, token| {
                let ctx = Context::system();
                vec![
                    user_event(&ctx, now, "user_created", user, "Added user")
                        .detail("admin", user.admin),
                    crate::token::token_event(
                        &ctx,
                        now,
                        "personal_access_token_created",
                        token,
                        "Created personal access token",
                    ),
                ]
            })
            .await?
        else {
            return Ok(None);
        };
        self.published(&made.audit);
        let user = made.user;
        Ok(Some(Bootstrapped {
            user,
            password: generated_password,
            token: token_value.is_none().then_some(token_plain),
        }))
    }
}

/// The store refused to leave the instance without an administrator.
fn keeping_an_administrator(e: StoreError) -> ServiceError {
    match e {
        StoreError::LastAdministrator => ServiceError::Forbidden(Some(
            "The last active administrator cannot be blocked, demoted or deleted",
        )),
        other => other.into(),
    }
}
