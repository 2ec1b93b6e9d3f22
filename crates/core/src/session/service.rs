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
use std::sync::OnceLock;

use super::*;

// --- the service --------------------------------------------------

impl Services {
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
        let address = ctx.address.as_deref().unwrap_or("unknown");
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
            Some((user, _)) => format!("account:{}", user.id),
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
        let digest = found
            .as_ref()
            .and_then(|(_, d)| d.clone())
            .unwrap_or_else(|| dummy_password_hash().to_owned());
        let ok = {
            let _permit = self.hashing.acquire().await.map_err(|_| {
                SignInError::Internal(ServiceError::Unavailable("the server is shutting down"))
            })?;
            let password = password.to_owned();
            crate::hashing::run(move || user::verify_password(&password, &digest))
                .await
                .map_err(|e| {
                    SignInError::Internal(ServiceError::internal_from(
                        "password verification failed",
                        crate::error::message(e),
                    ))
                })?
        };
        match found {
            Some((user, Some(_))) if ok => {
                if let Some(reason) = user.access_denied_reason() {
                    return Err(SignInError::Blocked(reason));
                }
                let by_user = Context {
                    user_id: Some(user.id),
                    ..ctx.clone()
                };
                let event = user_event(&by_user, now, "user_signed_in", &user, "Signed in")
                    .detail("with", "password");
                self.unit(move |tx| {
                    Box::pin(async move {
                        tx.clear_login_failures(&account_key).await?;
                        tx.record_audit(event).await
                    })
                })
                .await?;
                Ok(user)
            }
            _ => {
                let user = found.map(|(user, _)| user);
                let (ctx, address) = (ctx.clone(), address.to_owned());
                let locked_out = self
                    .unit(move |tx| {
                        Box::pin(async move {
                            tx.record_login_failure(&address_key, now, THROTTLE_WINDOW_MS)
                                .await?;
                            let n = tx
                                .record_login_failure(&account_key, now, THROTTLE_WINDOW_MS)
                                .await?;
                            // At most one failure event per account and
                            // address in a window: a flood of failures
                            // cannot fill the disk with them.
                            let once = format!("audit:{account_key}:{address}");
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

    /// A new session for `user_id`; returns the cookie value (shown once).
    pub async fn create_session(
        &self,
        ctx: &Context,
        user_id: i64,
    ) -> Result<String, ServiceError> {
        let value = secret::random_hex(32)?;
        let now = self.now_ms();
        self.store
            .insert_session(NewSession {
                digest: secret::digest(&value),
                user_id,
                created_at: now,
                expires_at: now + SESSION_LIFETIME_MS,
            })
            .await?;
        // The sign-in itself was recorded by `sign_in`.
        let _ = ctx;
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

    pub async fn end_session(&self, ctx: &Context, cookie: &str) -> Result<(), ServiceError> {
        let digest = secret::digest(cookie);
        let Some(user_id) = ctx.user_id else {
            // Nobody is signed in with it: nothing to record.
            return Ok(self.store.delete_session(&digest).await?);
        };
        let (ctx, now) = (ctx.clone(), self.now_ms());
        self.unit(move |tx| {
            Box::pin(async move {
                tx.delete_session(&digest).await?;
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

/// A hash to verify against when the account does not exist, so that
/// unknown and known logins take the same time.
fn dummy_password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| user::hash_password("latchkey-dummy-password").unwrap_or_default())
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}
