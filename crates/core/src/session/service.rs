//! Signing in and browser sessions: the services.

use crate::audit::{Entity, NewAuditEvent};
use crate::context::Context;
use crate::error::StoreError;
use crate::metrics::SignInOutcome;
use crate::oauth::NewSession;
use crate::oauth::SESSION_LIFETIME_MS;
use crate::secret;
use crate::service::{ServiceError, Services};
use crate::user;
use crate::user::user_event;
use crate::user::User;

use super::*;

// --- the service --------------------------------------------------

impl Services {
    /// Replace a password hash of another algorithm (bcrypt, as imported)
    /// with Argon2id, once the password is known to match it. A failure
    /// only means it is tried again at the next sign-in.
    async fn rehash_password(&self, user: &crate::user::User, password: &str, old: &str) {
        let rehashed = match self.hash_password_unchecked(password).await {
            Ok(hash) => hash,
            Err(e) => {
                tracing::warn!(user_id = user.id, error = %crate::error::Chain(&e), "cannot rehash a password");
                return;
            }
        };
        if let Err(e) = self
            .store
            .replace_password_digest(user.id, old, &rehashed)
            .await
        {
            tracing::warn!(user_id = user.id, error = %crate::error::Chain(&e), "cannot store a rehashed password");
        }
    }

    /// Is the user's password sign-in locked (too many failures within the
    /// throttling window)?
    pub async fn sign_in_locked(&self, user_id: i64) -> Result<bool, ServiceError> {
        let n = self
            .store
            .login_failures(&account_key(user_id), self.now_ms(), THROTTLE_WINDOW_MS)
            .await?;
        Ok(n >= MAX_ACCOUNT_FAILURES)
    }

    /// Lift a user's sign-in lockout and forget their failed sign-ins (an
    /// administrator's "unlock", as GitLab's); whether they were locked.
    /// Recorded as `user_access_unlocked` when they were.
    pub async fn unlock_user(&self, ctx: &Context, user: &User) -> Result<bool, ServiceError> {
        let locked = self.sign_in_locked(user.id).await?;
        self.store
            .clear_login_failures(&account_key(user.id))
            .await?;
        if locked {
            let event = user_event(
                ctx,
                self.now_ms(),
                "user_access_unlocked",
                user,
                "User access unlocked",
            );
            self.unit(move |tx| Box::pin(async move { tx.record_audit(event).await }))
                .await?;
        }
        Ok(locked)
    }

    /// Check a login (username or email) and password, with throttling per
    /// account and per client address. Argon2 runs off the async workers.
    /// Every outcome but a fault is counted in the metrics.
    /// The address throttled is `ctx`'s.
    pub async fn sign_in(
        &self,
        ctx: &Context,
        login: &str,
        password: &str,
    ) -> Result<User, SignInError> {
        let out = self.check_sign_in(ctx, login, password).await;
        let outcome = match &out {
            Ok(_) => SignInOutcome::Success,
            Err(SignInError::Invalid) => SignInOutcome::Failure,
            Err(SignInError::Locked) => SignInOutcome::Locked,
            Err(SignInError::Throttled) => SignInOutcome::Throttled,
            Err(SignInError::Blocked(_)) => SignInOutcome::Blocked,
            Err(SignInError::Internal(_)) => return out,
        };
        self.metrics.sign_in(outcome);
        out
    }

    async fn check_sign_in(
        &self,
        ctx: &Context,
        login: &str,
        password: &str,
    ) -> Result<User, SignInError> {
        let address = throttled_address(ctx.address.as_deref());
        let now = self.now_ms();
        let address_key = format!("address:{address}");
        if self
            .store
            .login_failures(&address_key, now, THROTTLE_WINDOW_MS)
            .await?
            >= MAX_ADDRESS_FAILURES
        {
            return Err(SignInError::Throttled);
        }
        let typed = login.trim();
        // No username or email is this long: no lookup, no stored key.
        let found = if typed.len() > MAX_LOGIN_BYTES {
            None
        } else {
            self.store.find_user_for_login(typed).await?
        };
        // Failures count against the account, however it was named (its
        // username or its email); a login that names nobody is counted
        // under (a digest of) what was typed.
        let account_key = match &found {
            Some((user, _)) => account_key(user.id),
            None => format!("login:{}", secret::digest(&typed.to_lowercase())),
        };
        // "Locked" is said only to whoever typed the public username (or a
        // login that names nobody): told to someone who typed an email, it
        // would say whose email it is. They get "invalid" instead.
        let locked = if found
            .as_ref()
            .is_none_or(|(u, _)| u.username.eq_ignore_ascii_case(typed))
        {
            SignInError::Locked
        } else {
            SignInError::Invalid
        };
        if self
            .store
            .login_failures(&account_key, now, THROTTLE_WINDOW_MS)
            .await?
            >= MAX_ACCOUNT_FAILURES
        {
            // Either way the password is not even checked.
            return Err(locked);
        }
        let digest = match found.as_ref().and_then(|(_, d)| d.clone()) {
            Some(digest) => digest,
            None => self
                .dummy_password_hash()
                .await
                .map_err(SignInError::Internal)?,
        };
        let ok = self
            .verify_password(password, &digest)
            .await
            .map_err(SignInError::Internal)?;
        match found {
            Some((user, Some(_))) if ok => {
                if let Some(reason) = user.access_denied_reason() {
                    return Err(SignInError::Blocked(reason));
                }
                // The sign-in is recorded with what it opens (a session, a
                // token): see `signed_in_event`.
                self.store.clear_login_failures(&account_key).await?;
                if user::needs_rehash(&digest) {
                    self.rehash_password(&user, password, &digest).await;
                }
                Ok(user)
            }
            _ => {
                let user = found.map(|(user, _)| user);
                // At most one failure event per account and address in a
                // window, and one per address for logins that name nobody
                // (else every new made-up login would be a first): a flood
                // of failures cannot fill the disk with them.
                let once = match &user {
                    Some(u) => format!("audit:account:{}:{address}", u.id),
                    None => format!("audit:nobody:{address}"),
                };
                let ctx = ctx.clone();
                let locked_out = self
                    .unit(move |tx| {
                        Box::pin(async move {
                            tx.record_login_failure(&address_key, now, THROTTLE_WINDOW_MS)
                                .await?;
                            let n = tx
                                .record_login_failure(&account_key, now, THROTTLE_WINDOW_MS)
                                .await?;
                            let first = tx
                                .record_login_failure(&once, now, THROTTLE_WINDOW_MS)
                                .await?
                                == 1;
                            for event in failure_events(&ctx, now, user.as_ref(), n, first) {
                                tx.record_audit(event).await?;
                            }
                            Ok(n >= MAX_ACCOUNT_FAILURES)
                        })
                    })
                    .await?;
                if locked_out {
                    Err(locked)
                } else {
                    Err(SignInError::Invalid)
                }
            }
        }
    }

    /// A new session for `user_id`, begun from the context's address by
    /// the browser `user_agent` names; returns the cookie value (shown once).
    pub async fn create_session(
        &self,
        ctx: &Context,
        user_id: i64,
        user_agent: Option<&str>,
    ) -> Result<String, ServiceError> {
        let value = secret::random_hex(32)?;
        let now = self.now_ms();
        let session = NewSession {
            digest: secret::digest(&value),
            user_id,
            created_at: now,
            expires_at: now + SESSION_LIFETIME_MS,
            ip: ctx.address.clone(),
            user_agent: user_agent.map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(USER_AGENT_MAX)
                    .collect()
            }),
        };
        let event = signed_in_event(ctx, now, user_id, "web");
        self.unit(move |tx| {
            Box::pin(async move {
                tx.insert_session(session).await?;
                tx.record_audit(event).await
            })
        })
        .await?;
        Ok(value)
    }

    /// The user signed in with this session cookie, if it is live and the
    /// user may still sign in, with the time they signed in.
    pub async fn session_user(&self, cookie: &str) -> Result<Option<(User, i64)>, ServiceError> {
        let found = self
            .store
            .find_session_user(&secret::digest(cookie), self.now_ms())
            .await?;
        Ok(found.filter(|(u, _)| u.access_denied_reason().is_none()))
    }

    /// The live sessions of `user_id`, newest first.
    pub async fn user_sessions(&self, user_id: i64) -> Result<Vec<SessionInfo>, ServiceError> {
        Ok(self.store.user_sessions(user_id, self.now_ms()).await?)
    }

    /// End the session of `user_id` that `public_id` names (as
    /// [`SessionInfo::public_id`]); `NotFound` when they have none such.
    pub async fn end_user_session(
        &self,
        ctx: &Context,
        user_id: i64,
        public_id: &str,
    ) -> Result<(), ServiceError> {
        let sessions = self.user_sessions(user_id).await?;
        let Some(found) = sessions
            .into_iter()
            .find(|s| secret::constant_time_eq(&s.public_id(), public_id))
        else {
            return Err(ServiceError::NotFound);
        };
        let (ctx, now) = (ctx.clone(), self.now_ms());
        self.unit(move |tx| {
            Box::pin(async move {
                if tx.delete_session(&found.digest).await?.is_none() {
                    return Ok(());
                }
                let event = NewAuditEvent::new(
                    &ctx,
                    now,
                    "user_session_revoked",
                    Entity::user(user_id),
                    "Revoked a session",
                );
                tx.record_audit(event).await
            })
        })
        .await?;
        Ok(())
    }

    /// End every session of `user_id` but the one of `keep` (a cookie);
    /// how many ended.
    pub async fn end_other_sessions(
        &self,
        ctx: &Context,
        user_id: i64,
        keep: &str,
    ) -> Result<u64, ServiceError> {
        let keep = secret::digest(keep);
        let (ctx, now) = (ctx.clone(), self.now_ms());
        Ok(self
            .unit(move |tx| {
                Box::pin(async move {
                    let ended = tx.delete_user_sessions(user_id, Some(&keep)).await?;
                    if ended > 0 {
                        let event = NewAuditEvent::new(
                            &ctx,
                            now,
                            "user_sessions_revoked",
                            Entity::user(user_id),
                            "Signed out everywhere else",
                        )
                        .detail("sessions", ended);
                        tx.record_audit(event).await?;
                    }
                    Ok(ended)
                })
            })
            .await?)
    }

    pub async fn end_session(&self, ctx: &Context, cookie: &str) -> Result<(), ServiceError> {
        let digest = secret::digest(cookie);
        let (ctx, now) = (ctx.clone(), self.now_ms());
        self.unit(move |tx| {
            Box::pin(async move {
                // Recorded only if there was a session to end, as its user's.
                let Some(user_id) = tx.delete_session(&digest).await? else {
                    return Ok(());
                };
                let ctx = Context {
                    user_id: Some(user_id),
                    ..ctx
                };
                let event = NewAuditEvent::new(
                    &ctx,
                    now,
                    "user_signed_out",
                    Entity::user(user_id),
                    "Signed out",
                );
                tx.record_audit(event).await
            })
        })
        .await?;
        Ok(())
    }
}

/// The address a sign-in is throttled (and its failures recorded) by: an
/// IPv6 client's /64, since one host commonly holds the whole prefix.
pub(crate) fn throttled_address(address: Option<&str>) -> String {
    let Some(raw) = address else {
        return "unknown".to_owned();
    };
    match raw.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(|| raw.to_owned(), |v4| v4.to_string()),
        _ => raw.to_owned(),
    }
}

/// A successful password sign-in, recorded with what it opened (`with`:
/// a browser session, or a token of the password grant).
pub(crate) fn signed_in_event(ctx: &Context, now: i64, user_id: i64, with: &str) -> NewAuditEvent {
    let by_user = Context {
        user_id: Some(user_id),
        ..ctx.clone()
    };
    NewAuditEvent::new(
        &by_user,
        now,
        "user_signed_in",
        Entity::user(user_id),
        "Signed in",
    )
    .detail("with", with)
}

/// What a failed sign-in records: the failure, once per account and
/// address in a window (`first`), and the lockout when this failure
/// (`n`, the account's count) reached the limit. Who was named is kept
/// only when it is an account: a login that names nobody may be a
/// password typed in the wrong field.
fn failure_events(
    ctx: &Context,
    now: i64,
    user: Option<&User>,
    n: u32,
    first: bool,
) -> Vec<NewAuditEvent> {
    let anonymous = Context {
        user_id: None,
        via: crate::context::Via::Session,
        ..ctx.clone()
    };
    let event = |name: &'static str, message: &str| match user {
        Some(u) => user_event(&anonymous, now, name, u, message),
        None => NewAuditEvent::new(&anonymous, now, name, Entity::instance(), message),
    };
    let mut events = Vec::new();
    if first {
        events.push(
            event(
                "login_failed_with_standard_authentication",
                "Failed to login with STANDARD authentication",
            )
            .detail("failed_login", "STANDARD"),
        );
    }
    if user.is_some() && n == MAX_ACCOUNT_FAILURES {
        events.push(
            event(
                "user_access_locked",
                "User access locked: too many failed sign-ins",
            )
            .detail("failed_attempts", n),
        );
    }
    events
}

/// What an account's failed sign-ins are counted under.
fn account_key(user_id: i64) -> String {
    format!("account:{user_id}")
}

/// Why a sign-in failed.
#[derive(Debug)]
pub enum SignInError {
    Invalid,
    /// Too many failures for this account; try again later.
    Locked,
    /// Too many failures from this address; try again later.
    Throttled,
    Blocked(&'static str),
    Internal(ServiceError),
}

impl Services {
    /// A hash to verify against when the account does not exist, so that
    /// unknown and known logins take the same time. Made once, on the
    /// hashing threads (as every hash: never on an async worker).
    async fn dummy_password_hash(&self) -> Result<String, ServiceError> {
        static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        HASH.get_or_try_init(|| self.hash_password_unchecked("latchkey-dummy-password"))
            .await
            .cloned()
    }
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::throttled_address;

    #[test]
    fn ipv6_clients_are_throttled_by_their_64() {
        assert_eq!(
            throttled_address(Some("2001:db8:1:2:aaaa::1")),
            throttled_address(Some("2001:db8:1:2:bbbb:cccc:dddd:eeee"))
        );
        assert_ne!(
            throttled_address(Some("2001:db8:1:2::1")),
            throttled_address(Some("2001:db8:1:3::1"))
        );
        assert_eq!(throttled_address(Some("192.0.2.7")), "192.0.2.7");
        assert_eq!(throttled_address(Some("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(throttled_address(None), "unknown");
    }
}
