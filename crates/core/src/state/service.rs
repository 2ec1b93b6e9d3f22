//! Applying a state file: its plan, run in one unit of work with an audit
//! event per change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use secrecy::ExposeSecret;

use crate::context::Context;
use crate::error::StoreError;
use crate::service::{Plaintext, ServiceError, Services};

use super::check::Password;
use super::plan::{stale_passwords, Settings};
use super::run::Run;
use super::{plan, Current, Desired, PasswordCheck, StateFile};

/// How to apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Only say what would change.
    pub dry_run: bool,
    /// Also delete what the file's kinds do not list.
    pub prune: bool,
    /// Applied at a server's start (see [`super::plan::Settings::seeding`]).
    pub seeding: bool,
}

/// How often an apply starts over when stored passwords change under it.
const STALE_RETRIES: usize = 3;

/// What applying a file did (or, on a dry run, would do).
#[derive(Debug, Default)]
pub struct Applied {
    /// Each change, in words ("create user alice").
    pub changes: Vec<String>,
    /// What was left alone on purpose, and why.
    pub kept: Vec<String>,
    /// Values generated for tokens and secrets the file gave none for:
    /// what each is for, and the value, to show once.
    pub generated: Vec<(String, Plaintext)>,
}

impl Services {
    /// Make the database hold what `file` says (see [`crate::state`]), in
    /// one unit of work, each change audited as `ctx`'s. A file that does
    /// not check, or that cannot be applied as a whole, changes nothing.
    pub async fn apply_state(
        &self,
        ctx: &Context,
        file: StateFile,
        options: ApplyOptions,
    ) -> Result<Applied, ServiceError> {
        let desired = Arc::new(
            file.check(&self.config.scopes)
                .map_err(|e| ServiceError::Invalid(e.to_string()))?,
        );
        // Passwords are checked outside the unit of work (Argon2 is slow);
        // if a stored hash changed meanwhile, they are checked again.
        for _ in 0..STALE_RETRIES {
            let snapshot = self.store.read_state().await?;
            let passwords = self.check_passwords(&desired, &snapshot).await?;
            let settings = Settings {
                prune: options.prune,
                seeding: options.seeding,
                now: self.now_ms(),
                today: self.today(),
                default_visibility: self.config.default_group_visibility,
            };
            if options.dry_run {
                let plan = plan(&desired, &snapshot, &passwords, &settings)
                    .map_err(|e| ServiceError::Invalid(e.to_string()))?;
                return Ok(Applied {
                    changes: plan.steps.iter().map(ToString::to_string).collect(),
                    kept: plan.kept,
                    generated: Vec::new(),
                });
            }
            drop(snapshot);
            match self
                .apply_once(ctx, desired.clone(), passwords, settings)
                .await?
            {
                Some(applied) => return Ok(applied),
                None => continue,
            }
        }
        Err(ServiceError::Unavailable(
            "passwords kept changing while the state file was applied: apply it again",
        ))
    }

    /// One unit of work that plans and applies; `None` if the passwords'
    /// checks are stale.
    async fn apply_once(
        &self,
        ctx: &Context,
        desired: Arc<Desired>,
        passwords: HashMap<String, PasswordCheck>,
        settings: Settings,
    ) -> Result<Option<Applied>, ServiceError> {
        let failed_step: Arc<Mutex<Option<String>>> = Arc::default();
        let failed = failed_step.clone();
        let (ctx, prefix) = (ctx.clone(), self.config.secret_prefix.clone());
        let outcome = self
            .changing_auth(self.unit(move |tx| {
                Box::pin(async move {
                    tx.lock_state().await?;
                    let current = tx.read_state().await?;
                    if stale_passwords(&current, &passwords) {
                        return Ok(Ok(None));
                    }
                    let plan = match plan(&desired, &current, &passwords, &settings) {
                        Ok(plan) => plan,
                        Err(e) => return Ok(Err(ServiceError::Invalid(e.to_string()))),
                    };
                    let mut run = Run {
                        tx,
                        ctx: &ctx,
                        now: settings.now,
                        prefix: &prefix,
                        users: current
                            .users
                            .iter()
                            .map(|u| (u.user.username.to_ascii_lowercase(), u.user.clone()))
                            .collect(),
                        groups: current
                            .groups
                            .iter()
                            .map(|g| (g.full_path.to_ascii_lowercase(), g.clone()))
                            .collect(),
                        generated: Vec::new(),
                    };
                    if let Err((text, e)) = run.lock_users(&plan.steps).await {
                        *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
                        return Err(e);
                    }
                    let mut changes = Vec::with_capacity(plan.steps.len());
                    for step in plan.steps {
                        let text = step.to_string();
                        if let Err(e) = run.step(step).await {
                            *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
                            return Err(e);
                        }
                        changes.push(text);
                    }
                    Ok(Ok(Some(Applied {
                        changes,
                        kept: plan.kept,
                        generated: run.generated,
                    })))
                })
            }))
            .await;
        match outcome {
            Ok(result) => result,
            Err(e) => {
                let step = failed_step
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                Err(match (step, e) {
                    (Some(step), StoreError::Conflict(what)) => ServiceError::Invalid(format!(
                        "cannot {step}: its {what} is taken (by something the file does not \
                         manage, or by an entry changed later in the file)"
                    )),
                    (Some(step), StoreError::Gone) => ServiceError::Invalid(format!(
                        "cannot {step}: what it names was deleted meanwhile; apply again"
                    )),
                    (Some(step), StoreError::LastAdministrator) => ServiceError::Invalid(format!(
                        "cannot {step}: the last active administrator cannot be blocked, demoted \
                         or deleted"
                    )),
                    (_, e) => e.into(),
                })
            }
        }
    }

    /// Verify each plain-text password against the stored hash (Argon2
    /// takes a while, so before the unit of work, as many at once as the
    /// hashing threads take); hash the ones that differ.
    async fn check_passwords(
        &self,
        desired: &Desired,
        current: &Current,
    ) -> Result<HashMap<String, PasswordCheck>, ServiceError> {
        let checks = desired.users.iter().flatten().filter_map(|du| {
            let Some(Password::Plain(password)) = &du.password else {
                return None;
            };
            let key = du.username.to_ascii_lowercase();
            let seen = current
                .users
                .iter()
                .find(|u| u.user.username.to_ascii_lowercase() == key)
                .and_then(|u| u.password_digest.clone());
            Some(async move {
                if let Some(digest) = &seen {
                    if self
                        .verify_password(password.expose_secret(), digest)
                        .await?
                    {
                        return Ok((key, PasswordCheck::Matches(digest.clone())));
                    }
                }
                let hash = self
                    .hash_password_unchecked(password.expose_secret())
                    .await?;
                Ok::<_, ServiceError>((key, PasswordCheck::New { hash, seen }))
            })
        });
        Ok(futures::future::try_join_all(checks)
            .await?
            .into_iter()
            .collect())
    }

    /// The file in the state format, from what is stored: secrets and
    /// tokens as digests only.
    pub async fn export_state(&self) -> Result<StateFile, ServiceError> {
        let current = self.store.read_state().await?;
        Ok(super::export::export(&current, self.now_ms()))
    }
}
