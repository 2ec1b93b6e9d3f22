//! The services handlers and the CLI call. They combine validation,
//! secret generation and storage; they know nothing of HTTP or SQL.

use std::sync::Arc;

use futures::stream::BoxStream;
use time::Date;

use crate::application::{
    self, Application, ApplicationParams, ApplicationUpdate, NewApplication, Ownership,
    ValidationErrors,
};
use crate::auth_cache::AuthCache;
use crate::clock::{unix_millis, Clock};
use crate::error::{message, Cause};
use crate::pagination::PageRequest;
use crate::scopes::{ScopeSet, Scopes};
use crate::secret::{self, RandomError};
use crate::store::{Store, StoreError, TokenWithOwner};
use crate::token::{self, NewToken, PersonalAccessToken, PAT_PREFIX};
use crate::user::{self, NewUser, User, UserFilter, UserState, UserUpdate};

/// Settings the services need.
#[derive(Debug, Clone)]
pub struct Config {
    pub scopes: ScopeSet,
    /// Put before the 64 hex characters of every application secret.
    pub secret_prefix: String,
    /// GitLab's Admin Mode: an admin's token also needs `admin_mode`.
    pub admin_mode: bool,
    /// OAuth access token lifetime.
    pub access_token_seconds: i64,
    /// Require PKCE from public (non-confidential) clients (RFC 9700).
    pub pkce_required_for_public_clients: bool,
    /// Allow the resource owner password credentials grant.
    pub password_grant_enabled: bool,
    /// The issuer (the external URL) in ID tokens and discovery.
    pub issuer: String,
    /// Dynamic client registration (RFC 7591): off, standard, or GitLab's MCP flavour.
    pub dynamic_registration: crate::registration::RegistrationMode,
    /// Dynamically registered clients never used within this many days are deleted.
    pub dynamic_client_ttl_days: i64,
    /// How long an authenticated token is remembered in this process (ms);
    /// 0 turns the cache off. See [`crate::auth_cache`].
    pub token_cache_ms: i64,
    /// The scopes a dynamically registered client may ask for.
    pub registration_scopes: ScopeSet,
    /// The latest `expires_at` a personal access token may get, in days
    /// from today (GitLab's 365).
    pub max_token_lifetime_days: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            scopes: ScopeSet::default(),
            secret_prefix: "gloas-".to_owned(),
            admin_mode: false,
            access_token_seconds: crate::oauth::DEFAULT_ACCESS_TOKEN_SECONDS,
            pkce_required_for_public_clients: true,
            password_grant_enabled: true,
            issuer: "http://localhost".to_owned(),
            dynamic_registration: crate::registration::RegistrationMode::Off,
            dynamic_client_ttl_days: 30,
            token_cache_ms: 0,
            registration_scopes: crate::registration::default_registration_scopes(),
            max_token_lifetime_days: DEFAULT_MAX_TOKEN_LIFETIME_DAYS,
        }
    }
}

/// Scopes that give more than the API as the user: only a token that has
/// one may hand it to a new token.
pub const PRIVILEGED_SCOPES: &[&str] = &["sudo", "admin_mode"];

/// GitLab's maximum personal access token lifetime.
pub const DEFAULT_MAX_TOKEN_LIFETIME_DAYS: i64 = 365;

/// What went wrong in a service call.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("not found")]
    NotFound,
    /// The caller may not do this; the text (if any) says why.
    #[error("forbidden")]
    Forbidden(Option<&'static str>),
    /// A rule refused the input; the text says which.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server cannot do this now (it is shutting down): 503.
    #[error("{0}")]
    Unavailable(&'static str),
    /// A server fault that is not the database's (randomness, hashing, key
    /// handling, signing, a broken invariant): 500, its text never shown.
    #[error("{what}")]
    Internal {
        what: &'static str,
        #[source]
        cause: Option<Cause>,
    },
}

impl ServiceError {
    /// A fault described in words.
    pub fn internal(what: &'static str) -> Self {
        Self::Internal { what, cause: None }
    }

    /// A fault and its cause.
    pub fn internal_from(what: &'static str, cause: Cause) -> Self {
        Self::Internal {
            what,
            cause: Some(cause),
        }
    }
}

impl From<RandomError> for ServiceError {
    fn from(e: RandomError) -> Self {
        Self::internal_from(
            "the system's random generator failed",
            crate::error::cause(e),
        )
    }
}

/// Why a presented token does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Unknown,
    Expired,
    Revoked,
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

/// Who is rotating a personal access token: the authenticated user, the
/// scopes of the credential they used, and which personal access token
/// that was (`None` for an OAuth access token).
#[derive(Debug, Clone, Copy)]
pub struct TokenActor<'a> {
    pub scopes: &'a Scopes,
    pub personal_token_id: Option<i64>,
}

/// A newly made secret, shown once and never stored.
#[derive(Debug, Clone)]
pub struct Plaintext(pub String);

/// The result of first-start bootstrap.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub user: User,
    /// The generated password; `None` when the operator chose it.
    pub password: Option<Plaintext>,
    /// The generated token; `None` when the operator chose it (a chosen
    /// secret is never printed back).
    pub token: Option<Plaintext>,
}

/// Argon2id computations running at once; the rest wait, so a flood of
/// password work cannot take every core from token checks.
const PASSWORD_HASHING_SLOTS: usize = 2;

/// How long the token cache stays off after a write that can change a token
/// was abandoned in flight: past any time the database can still take to
/// commit it (connection wait and busy timeouts are seconds).
const ABANDONED_WRITE_MS: i64 = 60_000;

/// Input for changing an application: `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ApplicationChanges {
    pub name: Option<String>,
    pub scopes: Option<String>,
    pub redirect_uri: Option<String>,
    pub confidential: Option<bool>,
    pub trusted: Option<bool>,
    /// The grants the client may use (`None` keeps them).
    pub grant_types: Option<Vec<String>>,
}

/// Input for creating a user.
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub username: String,
    pub email: String,
    pub name: String,
    pub password: Option<String>,
    pub admin: bool,
}

/// Input for changing a user: `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
    pub admin: Option<bool>,
}

#[derive(Clone)]
pub struct Services {
    pub(crate) store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    pub(crate) hashing: Arc<tokio::sync::Semaphore>,
    /// The current signing key and when it was read (ms): a short cache,
    /// so every request need not read it, and rotations are seen quickly.
    pub(crate) signing_key: Arc<std::sync::Mutex<Option<(crate::oidc::SigningKey, i64)>>>,
    pub(crate) auth_cache: Arc<AuthCache>,
    /// Set once a signing key is known to exist (see `ensure_signing_key_once`).
    pub(crate) signing_key_ready: Arc<tokio::sync::OnceCell<()>>,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: Config) -> Self {
        Self {
            store,
            clock,
            auth_cache: Arc::new(AuthCache::new(config.token_cache_ms)),
            config: Arc::new(config),
            hashing: Arc::new(tokio::sync::Semaphore::new(PASSWORD_HASHING_SLOTS)),
            signing_key: Arc::new(std::sync::Mutex::new(None)),
            signing_key_ready: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Is the database known to refuse connections right now?
    pub fn database_known_down(&self) -> bool {
        self.store.known_down()
    }

    pub fn now_ms(&self) -> i64 {
        unix_millis(self.clock.now())
    }

    /// Run a write that can change what a presented token authenticates as
    /// (revoke, rotate, block, edit or delete users, applications or OAuth
    /// tokens), then forget the cached authentications, also when the write
    /// failed (a commit may have happened before the error). If the write is
    /// abandoned midway (its request went away), the database may still
    /// commit it later: the cache then stays off for a while.
    pub(crate) async fn changing_auth<T>(&self, write: impl std::future::Future<Output = T>) -> T {
        struct Abandoned<'a>(Option<&'a Services>);
        impl Drop for Abandoned<'_> {
            fn drop(&mut self) {
                if let Some(services) = self.0 {
                    services
                        .auth_cache
                        .suspend(services.now_ms().saturating_add(ABANDONED_WRITE_MS));
                }
            }
        }
        let mut abandoned = Abandoned(Some(self));
        let out = write.await;
        abandoned.0 = None;
        self.auth_cache.invalidate();
        out
    }

    /// Argon2id off the async workers, at most a few at a time.
    async fn hash_password(&self, password: &str) -> Result<String, ServiceError> {
        if let Err(m) = user::check_password_strength(password) {
            let mut errors = ValidationErrors::default();
            errors.add("password", m);
            return Err(ServiceError::Validation(errors));
        }
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ServiceError::Unavailable("the server is shutting down"))?;
        let password = password.to_owned();
        let failed = |e| ServiceError::internal_from("password hashing failed", message(e));
        crate::hashing::run(move || user::hash_password(&password))
            .await
            .map_err(failed)?
            .map_err(failed)
    }

    pub fn today(&self) -> Date {
        self.clock.now().date()
    }

    pub(crate) fn new_application_secret(&self) -> Result<Plaintext, RandomError> {
        Ok(Plaintext(format!(
            "{}{}",
            self.config.secret_prefix,
            secret::random_hex(32)?
        )))
    }

    // --- applications -------------------------------------------------------

    /// Validate and store a new application; returns it with its secret.
    pub async fn create_application(
        &self,
        owner_id: Option<i64>,
        params: &ApplicationParams,
    ) -> Result<(Application, Plaintext), ServiceError> {
        let valid =
            application::validate(params, &self.config.scopes).map_err(ServiceError::Validation)?;
        let secret = self.new_application_secret()?;
        let app = self
            .store
            .insert_application(NewApplication {
                application_id: secret::random_hex(32)?,
                secret_digest: secret::digest(&secret.0),
                name: valid.name,
                redirect_uri: valid.redirect_uri,
                scopes: valid.scopes,
                confidential: valid.confidential,
                owner_id,
                created_at: self.now_ms(),
                dynamic: false,
                registration_token_digest: None,
                grant_types: None,
            })
            .await?;
        Ok((app, secret))
    }

    pub async fn list_instance_applications(
        &self,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), ServiceError> {
        Ok(self.store.list_instance_applications(page).await?)
    }

    pub fn stream_instance_applications(
        &self,
    ) -> BoxStream<'static, Result<Application, StoreError>> {
        crate::store::stream_instance_applications(self.store.clone())
    }

    /// A keyset page of instance-wide applications after `after_id`.
    pub async fn instance_applications_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Application>, ServiceError> {
        Ok(self
            .store
            .instance_applications_after(after_id, limit)
            .await?)
    }

    pub async fn list_owned_applications(
        &self,
        owner_id: i64,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), ServiceError> {
        Ok(self.store.list_owned_applications(owner_id, page).await?)
    }

    pub async fn find_application(
        &self,
        id: i64,
        scope: Ownership,
    ) -> Result<Application, ServiceError> {
        self.store
            .find_application(id, scope)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Change an application; every given value is validated as on
    /// creation. The secret is never touched.
    pub async fn update_application(
        &self,
        id: i64,
        changes: &ApplicationChanges,
    ) -> Result<Application, ServiceError> {
        let mut errors = ValidationErrors::default();
        if changes.name.is_some() {
            application::validate_name(changes.name.as_deref(), &mut errors);
        }
        if changes.redirect_uri.is_some() {
            application::validate_redirect_uri(changes.redirect_uri.as_deref(), &mut errors);
        }
        let scopes = match &changes.scopes {
            Some(raw) => application::validate_scopes(Some(raw), &self.config.scopes, &mut errors),
            None => None,
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let update = ApplicationUpdate {
            name: changes.name.clone(),
            scopes,
            redirect_uri: changes.redirect_uri.clone(),
            confidential: changes.confidential,
            trusted: changes.trusted,
            grant_types: changes.grant_types.clone(),
        };
        self.changing_auth(self.store.update_application(id, update, self.now_ms()))
            .await?
            .ok_or(ServiceError::NotFound)
    }

    pub async fn delete_application(&self, id: i64, scope: Ownership) -> Result<(), ServiceError> {
        if self
            .changing_auth(self.store.delete_application(id, scope))
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// A new secret; the old one stops working at once.
    pub async fn renew_application_secret(
        &self,
        id: i64,
        scope: Ownership,
    ) -> Result<(Application, Plaintext), ServiceError> {
        let secret = self.new_application_secret()?;
        let app = self
            .changing_auth(self.store.renew_application_secret(
                id,
                scope,
                &secret::digest(&secret.0),
            ))
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok((app, secret))
    }

    /// The application whose client_id and secret these are, if they match.
    /// The digest comparison is constant-time.
    pub async fn verify_client_secret(
        &self,
        application_id: &str,
        presented_secret: &str,
    ) -> Result<Option<Application>, ServiceError> {
        let found = self.store.find_application_by_uid(application_id).await?;
        Ok(found
            .filter(|(_, digest)| secret::verify(presented_secret, digest))
            .map(|(app, _)| app))
    }

    // --- authentication -------------------------------------------------------

    /// Who does this token belong to, and may it be used now?
    pub async fn authenticate_token(
        &self,
        presented: &str,
    ) -> Result<Result<TokenWithOwner, TokenRejection>, StoreError> {
        let digest = secret::digest(presented);
        let found = match self.auth_cache.get_personal(&digest, self.now_ms()) {
            Some(found) => found,
            None => {
                let ticket = self.auth_cache.ticket();
                let Some(found) = self.store.find_token_by_digest(&digest).await? else {
                    return Ok(Err(TokenRejection::Unknown));
                };
                if !found.token.revoked {
                    self.auth_cache
                        .put_personal(ticket, &digest, &found, self.now_ms());
                }
                found
            }
        };
        if found.token.revoked {
            return Ok(Err(TokenRejection::Revoked));
        }
        if found.token.is_expired(self.today()) {
            return Ok(Err(TokenRejection::Expired));
        }
        Ok(Ok(found))
    }

    // --- users and tokens -------------------------------------------------------

    /// Create a user; the password (if any) is checked and hashed.
    pub async fn create_user(&self, input: &UserInput) -> Result<User, ServiceError> {
        let new = self.new_user(input).await?;
        Ok(self.store.insert_user(new).await?)
    }

    /// Field checks of a user's attributes; `None` is "not being set".
    fn check_user_fields(
        username: Option<&str>,
        email: Option<&str>,
        name: Option<&str>,
        password: Option<&str>,
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
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Validation(errors))
        }
    }

    async fn new_user(&self, input: &UserInput) -> Result<NewUser, ServiceError> {
        Self::check_user_fields(
            Some(&input.username),
            Some(&input.email),
            Some(&input.name),
            input.password.as_deref(),
        )?;
        let password_digest = match &input.password {
            Some(p) => Some(self.hash_password(p).await?),
            None => None,
        };
        Ok(NewUser {
            username: input.username.clone(),
            email: input.email.clone(),
            name: input.name.clone(),
            password_digest,
            admin: input.admin,
            created_at: self.now_ms(),
        })
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
    pub async fn update_user(&self, id: i64, changes: &UserChanges) -> Result<User, ServiceError> {
        Self::check_user_fields(
            changes.username.as_deref(),
            changes.email.as_deref(),
            changes.name.as_deref(),
            changes.password.as_deref(),
        )?;
        let password_digest = match &changes.password {
            Some(p) => Some(self.hash_password(p).await?),
            None => None,
        };
        let update = UserUpdate {
            username: changes.username.clone(),
            email: changes.email.clone(),
            name: changes.name.clone(),
            password_digest,
            admin: changes.admin,
        };
        let password_changed = update.password_digest.is_some();
        let user = self
            .changing_auth(self.store.update_user(id, update))
            .await
            .map_err(keeping_an_administrator)?
            .ok_or(ServiceError::NotFound)?;
        // A new password ends the sessions signed in with the old one.
        if password_changed {
            self.store.delete_user_sessions(id, None).await?;
        }
        Ok(user)
    }

    /// Delete a user with their applications and tokens. `by` is the
    /// administrator asking: nobody deletes themselves through the API, and
    /// the last active administrator is never deleted (`Forbidden`).
    pub async fn delete_user(&self, by: Option<i64>, id: i64) -> Result<(), ServiceError> {
        if by == Some(id) {
            return Err(ServiceError::Forbidden(Some(
                "The API initiating user cannot be deleted by the API",
            )));
        }
        if self
            .changing_auth(self.store.delete_user(id))
            .await
            .map_err(keeping_an_administrator)?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// Block or unblock a user. `by` is the administrator asking: nobody
    /// blocks themselves (GitLab's rule), and the last active administrator
    /// is never blocked (`Forbidden`).
    pub async fn set_user_state(
        &self,
        by: Option<i64>,
        id: i64,
        state: UserState,
    ) -> Result<(), ServiceError> {
        if by == Some(id) && state == UserState::Blocked {
            return Err(ServiceError::Forbidden(Some(
                "The API initiating user cannot be blocked by the API",
            )));
        }
        if self
            .changing_auth(self.store.set_user_state(id, state))
            .await
            .map_err(keeping_an_administrator)?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    pub async fn find_user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<User>, ServiceError> {
        Ok(self.store.find_user_by_username(username).await?)
    }

    /// The latest expiry date a token may have today.
    pub fn max_token_expiry(&self) -> Date {
        self.today() + time::Duration::days(self.config.max_token_lifetime_days)
    }

    fn new_token(
        &self,
        user_id: i64,
        name: &str,
        scopes: &Scopes,
        expires_at: Option<Date>,
        value: Option<&str>,
    ) -> Result<(NewToken, Plaintext), ServiceError> {
        if name.trim().is_empty() || name.chars().count() > 255 {
            return Err(ServiceError::Invalid(
                "token name must be 1 to 255 characters".to_owned(),
            ));
        }
        if let Some(d) = expires_at {
            if d < self.today() {
                return Err(ServiceError::Invalid(
                    "expires_at is in the past".to_owned(),
                ));
            }
            let max = self.max_token_expiry();
            if d > max {
                let mut errors = ValidationErrors::default();
                errors.add("expires_at", format!("must be before {max}"));
                return Err(ServiceError::Validation(errors));
            }
        }
        let plaintext = match value {
            Some(v) => {
                token::check_token_value(v).map_err(ServiceError::Invalid)?;
                v.to_owned()
            }
            None => format!("{PAT_PREFIX}{}", secret::random_hex(32)?),
        };
        Ok((
            NewToken {
                user_id,
                name: name.to_owned(),
                digest: secret::digest(&plaintext),
                scopes: scopes.clone(),
                expires_at,
                created_at: self.now_ms(),
            },
            Plaintext(plaintext),
        ))
    }

    /// Scopes for a new token, checked against the server's set.
    pub fn token_scopes(&self, raw: &str) -> Result<Scopes, ServiceError> {
        Scopes::checked(raw, &self.config.scopes).map_err(|e| {
            let mut errors = ValidationErrors::default();
            errors.add("scopes", application::scope_error_message(&e));
            ServiceError::Validation(errors)
        })
    }

    /// A personal access token for `user_id`; the plaintext is returned once.
    /// `expires_at` may be at most [`Config::max_token_lifetime_days`] away.
    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        scopes: &str,
        expires_at: Option<Date>,
    ) -> Result<(PersonalAccessToken, Plaintext), ServiceError> {
        let scopes = self.token_scopes(scopes)?;
        let (new, plaintext) = self.new_token(user_id, name, &scopes, expires_at, None)?;
        let token = self.store.insert_token(new).await?;
        Ok((token, plaintext))
    }

    pub async fn find_token(&self, id: i64) -> Result<Option<PersonalAccessToken>, ServiceError> {
        Ok(self.store.find_token(id).await?)
    }

    pub async fn list_tokens(
        &self,
        user_id: Option<i64>,
        page: PageRequest,
    ) -> Result<(Vec<PersonalAccessToken>, u64), ServiceError> {
        Ok(self.store.list_tokens(user_id, page).await?)
    }

    pub async fn revoke_token(&self, id: i64) -> Result<(), ServiceError> {
        if self.changing_auth(self.store.revoke_token(id)).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// May `by` make a personal access token with `scopes` (for any user, as
    /// an administrator)? Not with an OAuth access token (an application
    /// holding an administrator's token must not mint lasting ones), and the
    /// privilege-bearing scopes (`sudo`, `admin_mode`) only by a token that
    /// has them itself. Stricter than GitLab; `Forbidden` otherwise.
    pub fn check_token_grant(
        &self,
        by: TokenActor<'_>,
        scopes: &[String],
    ) -> Result<(), ServiceError> {
        if by.personal_token_id.is_none() {
            return Err(ServiceError::Forbidden(None));
        }
        if PRIVILEGED_SCOPES
            .iter()
            .any(|p| scopes.iter().any(|s| s == p) && !by.scopes.contains(p))
        {
            return Err(ServiceError::Forbidden(None));
        }
        Ok(())
    }

    /// GitLab's rotation: the token is revoked and a new one with the same
    /// name and scopes is issued, expiring on `expires_at` or in a week.
    ///
    /// Stricter than GitLab: only a personal access token may rotate one (an
    /// OAuth access token held by an application may not), and a token other
    /// than the caller's own only when the caller's scopes cover all of its
    /// scopes, so that rotation never hands out more than the caller holds.
    /// `Forbidden` otherwise; `NotFound` if the token is missing; `Invalid`
    /// if already revoked.
    pub async fn rotate_token(
        &self,
        by: TokenActor<'_>,
        old: &PersonalAccessToken,
        expires_at: Option<Date>,
    ) -> Result<(PersonalAccessToken, Plaintext), ServiceError> {
        let Some(own) = by.personal_token_id else {
            return Err(ServiceError::Forbidden(None));
        };
        if own != old.id && !old.scopes.is_subset_of(by.scopes) {
            return Err(ServiceError::Forbidden(None));
        }
        let expires = expires_at.unwrap_or_else(|| {
            (self.today() + time::Duration::days(7)).min(self.max_token_expiry())
        });
        let (new, plaintext) =
            self.new_token(old.user_id, &old.name, &old.scopes, Some(expires), None)?;
        match self
            .changing_auth(self.store.rotate_token(old.id, new))
            .await?
        {
            Some(token) => Ok((token, plaintext)),
            None => Err(ServiceError::Invalid("Token already revoked".to_owned())),
        }
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
            None => Some(Plaintext(secret::random_hex(16)?)),
        };
        let chosen = password.or(generated_password.as_ref().map(|p| p.0.as_str()));
        let new_user = self
            .new_user(&UserInput {
                username: "root".to_owned(),
                email: "root@latchkey.local".to_owned(),
                name: "Administrator".to_owned(),
                password: chosen.map(str::to_owned),
                admin: true,
            })
            .await?;
        let (new_token, token_plain) = self.new_token(
            0,
            "bootstrap",
            &Scopes::from_stored("api read_api read_user sudo admin_mode"),
            None,
            token_value,
        )?;
        Ok(self
            .store
            .bootstrap_first_user(new_user, new_token)
            .await?
            .map(|(user, _)| Bootstrapped {
                user,
                password: generated_password,
                token: token_value.is_none().then_some(token_plain),
            }))
    }
}
