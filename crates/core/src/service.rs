//! The services handlers and the CLI call. They combine validation,
//! secret generation and storage; they know nothing of HTTP or SQL.

use std::sync::Arc;

use time::Date;

use crate::application::ValidationErrors;
use crate::auth_cache::AuthCache;
use crate::clock::{unix_millis, Clock};
use crate::error::{message, Cause};
use crate::scopes::ScopeSet;
use crate::secret::{self, RandomError};
use crate::store::{Store, StoreError};
use crate::user::{self};

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
    /// Audit events older than this many days are deleted by the
    /// background sweep; 0 keeps them forever.
    pub audit_retention_days: i64,
    /// The visibility of a new group when its creator names none.
    pub default_group_visibility: crate::group::Visibility,
    /// GitLab's `db_key_base`, to recognise personal access tokens imported
    /// from GitLab until each is first used (see [`crate::imported`]).
    pub gitlab_db_key_base: Option<secrecy::SecretString>,
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
            max_token_lifetime_days: crate::token::DEFAULT_MAX_TOKEN_LIFETIME_DAYS,
            audit_retention_days: 0,
            default_group_visibility: crate::group::Visibility::Private,
            gitlab_db_key_base: None,
        }
    }
}

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

pub use crate::secret::Plaintext;

/// Argon2id computations running at once; the rest wait, so a flood of
/// password work cannot take every core from token checks.
const PASSWORD_HASHING_SLOTS: usize = 2;

/// How long the token cache stays off after a write that can change a token
/// was abandoned in flight: past any time the database can still take to
/// commit it (connection wait and busy timeouts are seconds).
const ABANDONED_WRITE_MS: i64 = 60_000;

#[derive(Clone)]
pub struct Services {
    pub(crate) store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    pub(crate) config: Arc<Config>,
    pub(crate) hashing: Arc<tokio::sync::Semaphore>,
    /// The current signing key and when it was read (ms): a short cache,
    /// so every request need not read it, and rotations are seen quickly.
    pub(crate) signing_key: Arc<std::sync::Mutex<Option<(crate::oidc::SigningKey, i64)>>>,
    pub(crate) auth_cache: Arc<AuthCache>,
    /// Set once a signing key is known to exist (see `ensure_signing_key_once`).
    pub(crate) signing_key_ready: Arc<tokio::sync::OnceCell<()>>,
    pub(crate) metrics: crate::metrics::Metrics,
    /// Where committed audit events are also sent (see [`crate::audit`]).
    pub(crate) audit_sink: Option<Arc<dyn crate::audit::AuditSink>>,
    /// Credentials' uses, waiting to be written (see [`crate::usage`]).
    pub(crate) usage: Arc<crate::usage::UsageRecorder>,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: Config) -> Self {
        let metrics = crate::metrics::Metrics::default();
        Self {
            store,
            clock,
            auth_cache: Arc::new(AuthCache::new(config.token_cache_ms, metrics.clone())),
            metrics,
            config: Arc::new(config),
            hashing: Arc::new(tokio::sync::Semaphore::new(PASSWORD_HASHING_SLOTS)),
            signing_key: Arc::new(std::sync::Mutex::new(None)),
            signing_key_ready: Arc::new(tokio::sync::OnceCell::new()),
            audit_sink: None,
            usage: Arc::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// What these services count (see [`crate::metrics`]).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Is the database known to refuse connections right now?
    pub fn database_known_down(&self) -> bool {
        self.store.known_down()
    }

    pub fn now_ms(&self) -> i64 {
        unix_millis(self.clock.now())
    }

    /// Before answering from the token cache: has another process (the
    /// command line) written since it was filled? Then it is forgotten
    /// (see [`crate::auth_cache`]). Read before looking in the cache, so that
    /// no entry from before such a change can be answered after it; `false`
    /// (do not use the cache) when the generation cannot be read.
    pub(crate) async fn cache_still_holds(&self) -> bool {
        if !self.auth_cache.enabled() {
            return false;
        }
        match self.store.outside_changes().await {
            Ok(None) => true,
            Ok(Some(generation)) => {
                self.auth_cache.outside_changes(generation);
                true
            }
            // The lookup that follows meets the same trouble and says so.
            Err(_) => false,
        }
    }

    /// Run a write that can change what a presented token authenticates as
    /// (revoke, rotate, block, edit or delete users, applications or OAuth
    /// tokens), then forget the cached authentications, also when the write
    /// failed (a commit may have happened before the error). If the write is
    /// abandoned midway (its request went away), the database may still
    /// commit it later: the cache then stays off for a while, unless the
    /// store announces every change whenever it commits (PostgreSQL), which
    /// the cache hears before each answer (on PostgreSQL every end of a
    /// `refresh_token` load, connections closed mid-request, turned the
    /// cache off for a minute: a database read per request).
    pub(crate) async fn changing_auth<T>(&self, write: impl std::future::Future<Output = T>) -> T {
        struct Abandoned<'a>(Option<&'a Services>);
        impl Drop for Abandoned<'_> {
            fn drop(&mut self) {
                if let Some(services) = self.0 {
                    if services.store.announces_own_changes() {
                        services.auth_cache.invalidate();
                    } else {
                        services
                            .auth_cache
                            .suspend(services.now_ms().saturating_add(ABANDONED_WRITE_MS));
                    }
                }
            }
        }
        let mut abandoned = Abandoned(Some(self));
        let out = write.await;
        abandoned.0 = None;
        self.auth_cache.invalidate();
        out
    }

    /// Argon2id off the async workers, at most a few at a time, of a
    /// password that passes the strength rules.
    pub(crate) async fn hash_password(&self, password: &str) -> Result<String, ServiceError> {
        if let Err(m) = user::check_password_strength(password) {
            let mut errors = ValidationErrors::default();
            errors.add("password", m);
            return Err(ServiceError::Validation(errors));
        }
        self.hash_password_unchecked(password).await
    }

    /// Argon2id of any password (a state file's: the operator's choice).
    pub(crate) async fn hash_password_unchecked(
        &self,
        password: &str,
    ) -> Result<String, ServiceError> {
        let password = password.to_owned();
        self.on_hashing_threads(move || user::hash_password(&password))
            .await?
            .map_err(|e| ServiceError::internal_from("password hashing failed", message(e)))
    }

    /// Does `password` verify against `digest` (Argon2 or bcrypt)?
    pub(crate) async fn verify_password(
        &self,
        password: &str,
        digest: &str,
    ) -> Result<bool, ServiceError> {
        let (password, digest) = (password.to_owned(), digest.to_owned());
        self.on_hashing_threads(move || user::verify_password(&password, &digest))
            .await
    }

    /// Run password work on the hashing threads, at most a few at once.
    pub(crate) async fn on_hashing_threads<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ServiceError::Unavailable("the server is shutting down"))?;
        crate::hashing::run(work)
            .await
            .map_err(|e| ServiceError::internal_from("password hashing failed", message(e)))
    }

    pub fn today(&self) -> Date {
        self.clock.now().date()
    }

    pub(crate) fn new_application_secret(&self) -> Result<Plaintext, RandomError> {
        Ok(Plaintext::new(format!(
            "{}{}",
            self.config.secret_prefix,
            secret::random_hex(32)?
        )))
    }

    // --- applications -------------------------------------------------------

    // --- authentication -------------------------------------------------------

    // --- users and tokens -------------------------------------------------------
}
