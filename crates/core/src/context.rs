//! Who makes a change, and on which request. Every service call that
//! changes an application, a user, a token or a signing key, signs in or
//! out, authorizes an application or a device, revokes an OAuth token or
//! registers a client takes a [`Context`], and each change it makes is
//! recorded in the audit trail ([`crate::audit`]) with its actor, address
//! and request, in the same transaction as the change. Tokens issued by the
//! OAuth grants are counted in the metrics instead, not recorded one by one
//! (they are the hottest writes).

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
