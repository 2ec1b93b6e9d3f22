//! Who makes a change, and on which request. Every service call that
//! changes an application, a user, a token or a signing key, signs in or
//! out, authorizes an application or a device, revokes an OAuth token or
//! registers a client takes a [`Context`], and each change it makes is
//! recorded (for now a log line at `info` under the target
//! `latchkey::changes`) with its actor and request: the subject and source
//! of the audit trail. Tokens issued by the OAuth grants are counted in the
//! metrics instead, not recorded one by one (they are the hottest writes).

use crate::service::Services;

/// How the actor authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Via {
    /// latchkey itself (first start, background sweeps).
    #[default]
    System,
    /// The operator, at the command line.
    CommandLine,
    /// A personal access token (its id).
    PersonalAccessToken(i64),
    /// An OAuth access token.
    OAuthToken,
    /// A browser session.
    Session,
    /// An OAuth client managing its own registration (RFC 7592).
    Client,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::System => "system",
            Via::CommandLine => "command_line",
            Via::PersonalAccessToken(_) => "personal_access_token",
            Via::OAuthToken => "oauth_token",
            Via::Session => "session",
            Via::Client => "client",
        }
    }
}

/// Who makes a change, and on which request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The acting user; `None` for latchkey itself or the operator.
    pub user_id: Option<i64>,
    pub via: Via,
    /// The client's address, as the server saw it.
    pub address: Option<String>,
    /// The request's id (its `X-Request-Id`).
    pub request_id: Option<String>,
}

impl Context {
    /// latchkey itself: first start, background sweeps.
    pub fn system() -> Self {
        Self::default()
    }

    /// The operator running a `latchkey` command.
    pub fn command_line() -> Self {
        Self {
            via: Via::CommandLine,
            ..Self::default()
        }
    }
}

/// What was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    ApplicationCreated,
    ApplicationUpdated,
    ApplicationDeleted,
    ApplicationSecretRenewed,
    UserCreated,
    UserUpdated,
    UserDeleted,
    UserBlocked,
    UserUnblocked,
    TokenCreated,
    TokenRevoked,
    TokenRotated,
    SigningKeyRotated,
    /// A user authorized an application (a code issued at the consent
    /// step, or at once for a trusted application).
    ApplicationAuthorized,
    DeviceAuthorized,
    DeviceDenied,
    OAuthTokenRevoked,
    SignedIn,
    SignedOut,
    ClientRegistered,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::ApplicationCreated => "application_created",
            Change::ApplicationUpdated => "application_updated",
            Change::ApplicationDeleted => "application_deleted",
            Change::ApplicationSecretRenewed => "application_secret_renewed",
            Change::UserCreated => "user_created",
            Change::UserUpdated => "user_updated",
            Change::UserDeleted => "user_deleted",
            Change::UserBlocked => "user_blocked",
            Change::UserUnblocked => "user_unblocked",
            Change::TokenCreated => "personal_access_token_created",
            Change::TokenRevoked => "personal_access_token_revoked",
            Change::TokenRotated => "personal_access_token_rotated",
            Change::SigningKeyRotated => "signing_key_rotated",
            Change::ApplicationAuthorized => "application_authorized",
            Change::DeviceAuthorized => "device_authorized",
            Change::DeviceDenied => "device_denied",
            Change::OAuthTokenRevoked => "oauth_token_revoked",
            Change::SignedIn => "signed_in",
            Change::SignedOut => "signed_out",
            Change::ClientRegistered => "client_registered",
        }
    }
}

impl Services {
    /// Record a change made on `ctx`'s behalf to the thing `target`
    /// identifies (an id, or a key id).
    pub(crate) fn record(&self, ctx: &Context, change: Change, target: &str) {
        tracing::info!(
            target: "latchkey::changes",
            change = change.as_str(),
            subject = target,
            actor = ctx.user_id,
            via = ctx.via.as_str(),
            address = ctx.address.as_deref(),
            request_id = ctx.request_id.as_deref(),
            "changed"
        );
    }
}
