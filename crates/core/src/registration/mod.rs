//! Dynamic client registration (RFC 7591) and its management protocol
//! (RFC 7592), with GitLab's MCP flavour as an option.

mod service;

use crate::application::Application;
use crate::error::StoreError;
use crate::scopes::ScopeSet;
use crate::secret::Plaintext;

/// Registrations allowed per client address per hour.
pub const MAX_REGISTRATIONS_PER_HOUR: u32 = 20;
const REGISTRATION_WINDOW_MS: i64 = 3600 * 1000;
const MAX_CLIENT_NAME_CHARS: usize = 200;
pub const MCP_NAME_PREFIX: &str = "[Unverified Dynamic Application] ";

/// Whether and how clients may register themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    Off,
    /// RFC 7591 as written: the client chooses its auth method, grants, scope.
    Standard,
    /// GitLab's: public clients, PKCE, the `mcp` scope, a warning in the name.
    GitLabMcp,
}

/// The client metadata latchkey reads.
#[derive(Debug, Clone, Default)]
pub struct ClientMetadata {
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub scope: Option<String>,
}

/// A registered client, with the secrets shown once.
#[derive(Debug, Clone)]
pub struct Registered {
    pub application: Application,
    pub client_secret: Option<Plaintext>,
    pub registration_access_token: Option<Plaintext>,
    pub grant_types: Vec<String>,
}

/// What a registered client may ask for unless configured otherwise
/// (`LATCHKEY_REGISTRATION_SCOPES`): signing in, never the API.
pub const DEFAULT_REGISTRATION_SCOPES: &str = "openid profile email read_user";

pub fn default_registration_scopes() -> ScopeSet {
    ScopeSet::new([DEFAULT_REGISTRATION_SCOPES]).unwrap_or_default()
}

pub const SUPPORTED_GRANTS: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
];

/// Dynamic client registration. What the storage backends implement (see
/// [`crate::store::Store`]).
#[async_trait::async_trait]
pub trait RegistrationStore: Send + Sync {
    /// An application with its registration access token digest.
    async fn find_registration(
        &self,
        client_id: &str,
    ) -> Result<Option<(Application, Option<String>)>, StoreError>;

    /// Delete dynamically registered applications created before
    /// `created_before` that never got a grant or a token.
    async fn delete_unused_dynamic_applications(
        &self,
        created_before: i64,
    ) -> Result<u64, StoreError>;
}
