//! The OAuth 2 provider's domain: authorization grants (codes), access and
//! refresh tokens, browser sessions, sign-in throttling, and the RFC 6749
//! errors they produce. Flows live on [`Services`].

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::application::Application;
use crate::error::StoreError;
use crate::scopes::Scopes;
use crate::user::User;

/// Authorization codes live 10 minutes (Doorkeeper's default).
pub const CODE_LIFETIME_MS: i64 = 600_000;
/// Default access token lifetime (GitLab's 7200 s).
pub const DEFAULT_ACCESS_TOKEN_SECONDS: i64 = 7200;
/// Browser sessions last a day.
pub const SESSION_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// An RFC 6749 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    InvalidRedirectUri,
    InvalidToken,
    ServerError,
    TemporarilyUnavailable,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    InvalidClientMetadata,
    InvalidRedirectUriMetadata,
    InsufficientScope,
    /// OpenID Connect Core 3.1.2.6, for `prompt=none`.
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidToken => "invalid_token",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidRedirectUriMetadata => "invalid_redirect_uri",
            Self::InsufficientScope => "insufficient_scope",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
        }
    }

    /// Doorkeeper's default description of the error.
    pub fn default_description(self) -> &'static str {
        match self {
            Self::InvalidRequest => "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.",
            Self::InvalidClient => "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
            Self::InvalidGrant => "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
            Self::UnauthorizedClient => "The client is not authorized to perform this request using this method.",
            Self::UnsupportedGrantType => "The authorization grant type is not supported by the authorization server.",
            Self::InvalidScope => "The requested scope is invalid, unknown, or malformed.",
            Self::AccessDenied => "The resource owner or authorization server denied the request.",
            Self::UnsupportedResponseType => "The authorization server does not support this response type.",
            Self::InvalidRedirectUri => "The redirect URI included is not valid.",
            Self::InvalidToken => "The access token is invalid",
            Self::ServerError => "The authorization server encountered an unexpected condition which prevented it from fulfilling the request.",
            Self::TemporarilyUnavailable => "The authorization server is temporarily unable to handle the request.",
            Self::AuthorizationPending => "The authorization request is still pending as the end user hasn't yet completed the user interaction steps.",
            Self::SlowDown => "The authorization request is still pending and polling should continue, but the interval must be increased.",
            Self::ExpiredToken => "The device_code has expired, and the device authorization session has concluded.",
            Self::InvalidClientMetadata => "The value of one of the client metadata fields is invalid.",
            Self::InvalidRedirectUriMetadata => "The value of one or more redirection URIs is invalid.",
            Self::InsufficientScope => "The request requires higher privileges than provided by the access token.",
            Self::LoginRequired => "The authorization server requires end-user authentication.",
            Self::ConsentRequired => "The authorization server requires end-user consent.",
            Self::InteractionRequired => "The authorization server requires end-user interaction of some form to proceed.",
        }
    }
}

/// An OAuth error with its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// Answer 400 whatever the code (RFC 6749 section 5.2) where
    /// Doorkeeper's status for it would be 401: a grant the client may
    /// not use is a bad request, not a failed client authentication.
    pub bad_request: bool,
}

impl OAuthError {
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            description: code.default_description().to_owned(),
            bad_request: false,
        }
    }

    pub fn with(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            bad_request: false,
        }
    }

    pub fn missing(param: &str) -> Self {
        Self::with(
            ErrorCode::InvalidRequest,
            format!("Missing required parameter: {param}."),
        )
    }
}

/// A PKCE method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceMethod {
    Plain,
    S256,
}

impl PkceMethod {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "plain" => Some(Self::Plain),
            "S256" => Some(Self::S256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::S256 => "S256",
        }
    }
}

/// RFC 7636: does `verifier` answer `challenge`? Constant time.
pub fn pkce_verify(method: PkceMethod, challenge: &str, verifier: &str) -> bool {
    let computed = match method {
        PkceMethod::Plain => verifier.to_owned(),
        PkceMethod::S256 => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes())),
    };
    crate::secret::constant_time_eq(&computed, challenge)
}

/// RFC 7636 section 4.1: 43 to 128 unreserved characters.
pub fn is_valid_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An authorization code, stored as a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: i64,
    pub application_id: i64,
    pub user_id: i64,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<PkceMethod>,
    pub nonce: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub redeemed_at: Option<i64>,
    /// When the user signed in (OpenID Connect's `auth_time`), ms.
    pub auth_time: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewGrant {
    pub application_id: i64,
    pub user_id: i64,
    pub code_digest: String,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<PkceMethod>,
    pub nonce: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub auth_time: Option<i64>,
}

/// An OAuth access token, with its refresh token when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthToken {
    pub id: i64,
    pub application_id: i64,
    /// `None` for client-credentials tokens.
    pub user_id: Option<i64>,
    pub scopes: Scopes,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// When its refresh token was exchanged (it then works no more).
    pub refreshed_at: Option<i64>,
    pub has_refresh_token: bool,
    /// Every token of one refresh chain shares the family.
    pub family: String,
    /// The token this one was refreshed from, until this one is first used.
    pub previous_token_id: Option<i64>,
    /// The authorization code this chain started from.
    pub grant_id: Option<i64>,
    /// When the user signed in (ms), for OpenID Connect's `auth_time`;
    /// `None` for client credentials (and tokens made before schema 5).
    pub auth_time: Option<i64>,
}

impl OAuthToken {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at
    }

    pub fn is_active(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && !self.is_expired(now_ms)
    }
}

#[derive(Debug, Clone)]
pub struct NewOAuthToken {
    pub application_id: i64,
    pub user_id: Option<i64>,
    pub token_digest: String,
    pub refresh_digest: Option<String>,
    pub scopes: Scopes,
    pub created_at: i64,
    pub expires_at: i64,
    pub family: String,
    pub previous_token_id: Option<i64>,
    pub grant_id: Option<i64>,
    /// When the user signed in (ms); carried along a refresh chain.
    pub auth_time: Option<i64>,
    /// The client secret the token is issued on (see
    /// [`crate::application::Application::client_secret_id`]): stored only
    /// while that secret is live. Never stored itself.
    pub client_secret_id: Option<i64>,
}

/// A token found by its access or refresh digest, with what it belongs to.
#[derive(Debug, Clone)]
pub struct OAuthTokenFound {
    pub token: OAuthToken,
    pub application: Application,
    pub user: Option<User>,
}

impl OAuthTokenFound {
    /// May this token act for its user? Not when the user is blocked (a
    /// deleted user's tokens are deleted with them). Tokens without a user
    /// (client credentials) act for their application.
    pub fn owner_may_act(&self) -> bool {
        match (&self.user, self.token.user_id) {
            (Some(u), _) => u.access_denied_reason().is_none(),
            (None, Some(_)) => false,
            (None, None) => true,
        }
    }
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub digest: String,
    pub user_id: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// The address that signed in.
    pub ip: Option<String>,
    /// The browser's `User-Agent` (at most [`crate::session::USER_AGENT_MAX`]
    /// characters).
    pub user_agent: Option<String>,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    /// Approved, and exchanged for a token: its code is spent.
    Redeemed,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            // Never stored: a spent code keeps its status and has
            // `redeemed_at` (schema 18).
            Self::Redeemed => "redeemed",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            _ => Self::Pending,
        }
    }
}

/// A device authorization request (RFC 8628).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    pub id: i64,
    pub application_id: i64,
    pub user_code: String,
    pub scopes: Scopes,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_polled_at: Option<i64>,
    pub user_id: Option<i64>,
    pub status: DeviceStatus,
    /// When the approving user signed in (ms).
    pub auth_time: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewDeviceGrant {
    pub application_id: i64,
    pub device_code_digest: String,
    pub user_code: String,
    pub scopes: Scopes,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A token endpoint success.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scopes: Scopes,
    pub created_at_seconds: i64,
    /// With the `openid` scope on the code and refresh grants.
    pub id_token: Option<String>,
}

/// A live OAuth token a user holds for an application (see
/// [`OAuthStore::authorized_tokens`]).
#[derive(Debug, Clone)]
pub struct AuthorizedToken {
    pub application_id: i64,
    /// The application's client_id (`application_id` on GitLab's wire).
    pub client_id: String,
    pub application_name: String,
    pub scopes: Scopes,
    pub created_at: i64,
}

/// An application a user has authorized (GitLab's "Authorized
/// applications"): what its live tokens allow, and when it was granted.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub application_id: i64,
    pub client_id: String,
    pub application_name: String,
    /// Every scope of its live tokens.
    pub scopes: Vec<String>,
    pub first_granted_at: i64,
    pub last_granted_at: i64,
}

/// Authorization codes and OAuth access and refresh tokens. What the storage backends implement (see
/// [`crate::store::Store`]).
#[async_trait::async_trait]
pub trait OAuthStore: Send + Sync {
    async fn insert_grant(&self, grant: NewGrant) -> Result<Grant, StoreError>;

    async fn find_grant(&self, code_digest: &str) -> Result<Option<Grant>, StoreError>;

    /// Mark the grant redeemed and insert the token, in one transaction.
    /// `None` (nothing written) if the grant was already redeemed.
    async fn redeem_grant(
        &self,
        grant_id: i64,
        now: i64,
        token: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError>;

    /// Revoke every token issued from a grant (code replay). Returns how many.
    async fn revoke_grant_tokens(&self, grant_id: i64, now: i64) -> Result<u64, StoreError>;

    async fn insert_oauth_token(&self, token: NewOAuthToken) -> Result<OAuthToken, StoreError>;

    async fn find_oauth_token_by_access(
        &self,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError>;

    async fn find_oauth_token_by_refresh(
        &self,
        digest: &str,
    ) -> Result<Option<OAuthTokenFound>, StoreError>;

    /// Mark `old_id`'s refresh token used and insert `new`, in one
    /// transaction. `None` (nothing written) if it was already used or revoked.
    async fn refresh_oauth_token(
        &self,
        old_id: i64,
        now: i64,
        new: NewOAuthToken,
    ) -> Result<Option<OAuthToken>, StoreError>;

    /// Revoke every token of a refresh chain (refresh token reuse).
    async fn revoke_token_family(&self, family: &str, now: i64) -> Result<u64, StoreError>;

    /// Revoke one token. `false` if it was unknown or already revoked.
    async fn revoke_oauth_token(&self, id: i64, now: i64) -> Result<bool, StoreError>;

    /// The first use of a refreshed token: revoke the token it came from,
    /// then forget the link. Two writes of one row each, not a transaction:
    /// each is idempotent, and if the second is lost the next use runs
    /// both again. (In one transaction the revoked token stayed locked
    /// while the link was forgotten, and a revocation of several tokens
    /// (a family's, an application's) locking them the other way round
    /// deadlocked with it on PostgreSQL.)
    async fn finish_refresh(
        &self,
        token_id: i64,
        previous_id: i64,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The user's OAuth tokens still live at `now` (unrevoked, and unexpired
    /// or with a refresh token not yet used), with their applications, by
    /// application and age; at most 1,000.
    async fn authorized_tokens(
        &self,
        user_id: i64,
        now: i64,
    ) -> Result<Vec<AuthorizedToken>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_vectors() {
        // GitLab's documented example.
        let verifier = "ks02i3jdikdo2k0dkfodf3m39rjfjsdk0wk349rj3jrhf";
        assert!(pkce_verify(
            PkceMethod::S256,
            "2i0WFA-0AerkjQm4X4oDEhqA17QIAKNjXpagHBXmO_U",
            verifier
        ));
        // RFC 7636 appendix B.
        assert!(pkce_verify(
            PkceMethod::S256,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!pkce_verify(
            PkceMethod::S256,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "wrong"
        ));
        assert!(pkce_verify(PkceMethod::Plain, "abc", "abc"));
        assert!(!pkce_verify(PkceMethod::Plain, "abc", "abd"));
        assert_eq!(PkceMethod::parse("s256"), None);
        assert!(is_valid_pkce_value(verifier));
        assert!(!is_valid_pkce_value("short"));
    }
}
