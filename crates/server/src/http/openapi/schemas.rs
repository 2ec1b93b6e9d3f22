//! Schemas for what the document describes but no Rust type carries: the
//! bodies handlers build with `serde_json::json!` (each mirrors its
//! handler's `json!` exactly: check both when changing either), the error
//! bodies of `errors`, and the parameters the handlers read one by one
//! through `Params` (request bodies; every one may also come in the query
//! string). The types are never built; they only describe.
#![allow(dead_code)]

use std::collections::BTreeMap;

use utoipa::{IntoParams, ToSchema};

// --- errors ---------------------------------------------------------------

/// An `/api/v4` error, as GitLab renders it (`errors::ApiError`): one of
/// `{"message": "404 User Not Found"}`, `{"message": {"field": ["…"]}}`
/// (validation), `{"error": "name is missing, scopes is empty"}` (Grape's
/// parameter errors), or a token error `{"error": "invalid_token",
/// "error_description": "…"}` (`insufficient_scope` adds `scope`).
#[derive(ToSchema)]
pub struct GitLabError {
    #[schema(nullable = false)]
    pub message: Option<GitLabMessage>,
    #[schema(nullable = false)]
    pub error: Option<String>,
    #[schema(nullable = false)]
    pub error_description: Option<String>,
    #[schema(nullable = false)]
    pub scope: Option<String>,
}

/// A message text, or validation errors by field.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum GitLabMessage {
    Text(String),
    Fields(BTreeMap<String, Vec<String>>),
}

/// An RFC 6749 error (`errors::OAuthResponse`).
#[derive(ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, …
    pub error: String,
    pub error_description: String,
}

// --- shared parameters ----------------------------------------------------

/// GitLab's offset pagination. Without either parameter
/// `GET /api/v4/applications` answers the whole list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// The page (from 1).
    #[param(minimum = 1)]
    pub page: Option<i64>,
    /// Items a page (at most 100).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// A sort order.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    Asc,
    Desc,
}

/// A group's visibility.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Private,
    Internal,
    Public,
}

// --- meta -----------------------------------------------------------------

/// `GET /api/v4/version`.
#[derive(ToSchema)]
pub struct Version {
    /// The GitLab API level latchkey speaks.
    pub version: String,
    pub revision: String,
    pub latchkey: LatchkeyVersion,
}

#[derive(ToSchema)]
pub struct LatchkeyVersion {
    pub version: String,
}

/// `GET /api/v4/metadata`.
#[derive(ToSchema)]
pub struct Metadata {
    pub version: String,
    pub revision: String,
    pub kas: Kas,
    pub enterprise: bool,
    pub latchkey: LatchkeyVersion,
}

/// No Kubernetes agent server: `enabled` is false, the rest null.
#[derive(ToSchema)]
pub struct Kas {
    pub enabled: bool,
    #[serde(rename = "externalUrl")]
    #[schema(value_type = Option<String>, required = true)]
    pub external_url: Option<String>,
    #[serde(rename = "externalK8sProxyUrl")]
    #[schema(value_type = Option<String>, required = true)]
    pub external_k8s_proxy_url: Option<String>,
    #[schema(required = true)]
    pub version: Option<String>,
}

// --- applications -----------------------------------------------------------

/// A new application. `grant_types` and `ropc_enabled` are latchkey's
/// extensions.
#[derive(ToSchema)]
pub struct ApplicationCreate {
    pub name: String,
    /// One redirect URI, or several separated by whitespace.
    pub redirect_uri: String,
    /// Space-separated scopes, e.g. `read_user openid`.
    pub scopes: String,
    /// Default true.
    pub confidential: Option<bool>,
    /// The grants the client may use (default: all); also a space- or
    /// comma-separated string.
    pub grant_types: Option<Vec<String>>,
    /// Whether the resource owner password grant is allowed.
    pub ropc_enabled: Option<bool>,
}

/// Changes to an instance application (latchkey's extension); the secret
/// is never touched.
#[derive(ToSchema)]
pub struct ApplicationUpdate {
    pub name: Option<String>,
    pub redirect_uri: Option<String>,
    pub scopes: Option<String>,
    pub confidential: Option<bool>,
    /// A trusted application skips the consent screen.
    pub trusted: Option<bool>,
    pub grant_types: Option<Vec<String>>,
    pub ropc_enabled: Option<bool>,
}

/// Changes to a user's or a group's application: `name` and `scopes`
/// (`redirect_uri` and `confidential` are immutable there and ignored).
#[derive(ToSchema)]
pub struct OwnedApplicationUpdate {
    pub name: Option<String>,
    pub scopes: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub ropc_enabled: Option<bool>,
}

/// A secret renewal: as GitLab's (every previous secret dies at once)
/// unless `expires_in` gives them a grace period.
#[derive(ToSchema)]
pub struct SecretRenewal {
    /// Seconds the previous secrets stay valid.
    #[schema(minimum = 1)]
    pub expires_in: Option<i64>,
    /// Seconds until the new secret expires.
    #[schema(minimum = 1)]
    pub secret_expires_in: Option<i64>,
}

// --- users ------------------------------------------------------------------

/// A new user. One of `password`, `reset_password` and
/// `force_random_password` is required; `avatar` is a file in a multipart
/// body.
#[derive(ToSchema)]
pub struct UserCreate {
    pub email: String,
    pub name: String,
    pub username: String,
    pub password: Option<String>,
    pub reset_password: Option<bool>,
    pub force_random_password: Option<bool>,
    pub admin: Option<bool>,
    pub external: Option<bool>,
    #[serde(flatten)]
    pub profile: UserProfileFields,
}

/// Changes to a user (every field optional).
#[derive(ToSchema)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub name: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub admin: Option<bool>,
    pub external: Option<bool>,
    #[serde(flatten)]
    pub profile: UserProfileFields,
}

/// The profile fields GitLab's create and update take; null clears one.
#[derive(ToSchema)]
pub struct UserProfileFields {
    pub bio: Option<String>,
    pub location: Option<String>,
    pub website_url: Option<String>,
    pub organization: Option<String>,
    pub job_title: Option<String>,
    pub pronouns: Option<String>,
    pub public_email: Option<String>,
    pub linkedin: Option<String>,
    pub twitter: Option<String>,
    pub discord: Option<String>,
    pub skype: Option<String>,
    pub note: Option<String>,
    pub private_profile: Option<bool>,
    pub can_create_group: Option<bool>,
    pub projects_limit: Option<i64>,
    pub theme_id: Option<i64>,
    pub color_scheme_id: Option<i64>,
    pub commit_email: Option<String>,
    /// An image (multipart file).
    #[schema(value_type = Option<String>, format = Binary)]
    pub avatar: Option<Vec<u8>>,
}

// --- personal access tokens -------------------------------------------------

/// A new personal access token.
#[derive(ToSchema)]
pub struct TokenCreate {
    pub name: String,
    /// E.g. `["api"]`; also a space-separated string.
    pub scopes: Vec<String>,
    /// A date, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub expires_at: Option<String>,
    pub description: Option<String>,
}

/// A rotation: the new token's expiry.
#[derive(ToSchema)]
pub struct TokenRotate {
    #[schema(format = Date)]
    pub expires_at: Option<String>,
}

// --- groups and members -----------------------------------------------------

/// A new group (`avatar` as a multipart file).
#[derive(ToSchema)]
pub struct GroupCreate {
    pub name: String,
    pub path: String,
    pub parent_id: Option<i64>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    #[schema(value_type = Option<String>, format = Binary)]
    pub avatar: Option<Vec<u8>>,
}

/// Changes to a group.
#[derive(ToSchema)]
pub struct GroupUpdate {
    pub name: Option<String>,
    pub path: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    #[schema(value_type = Option<String>, format = Binary)]
    pub avatar: Option<Vec<u8>>,
}

/// `DELETE /api/v4/groups/{id}`: `{"message": "202 Accepted"}`.
#[derive(ToSchema)]
pub struct Accepted {
    pub message: String,
}

/// A new member: `user_id` or `username`.
#[derive(ToSchema)]
pub struct MemberCreate {
    pub user_id: Option<i64>,
    pub username: Option<String>,
    /// 10 guest, 15 planner, 20 reporter, 30 developer, 40 maintainer, 50 owner.
    pub access_level: i64,
    #[schema(format = Date)]
    pub expires_at: Option<String>,
}

/// A membership's new level and expiry.
#[derive(ToSchema)]
pub struct MemberUpdate {
    pub access_level: i64,
    #[schema(format = Date)]
    pub expires_at: Option<String>,
}

// --- OAuth and OpenID Connect -------------------------------------------------

/// `POST /oauth/token`: the grant's parameters (RFC 6749 section 4, RFC
/// 8628). Secrets (`client_secret`, `code`, `refresh_token`, `password`,
/// `code_verifier`, `device_code`) must come in the body, never the query.
#[derive(ToSchema)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token`, `client_credentials`,
    /// `password`, `urn:ietf:params:oauth:grant-type:device_code` (or
    /// `device_code`).
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub device_code: Option<String>,
    /// client_secret_post (or a public client's id).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662).
#[derive(ToSchema)]
pub struct TokenHint {
    pub token: String,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// `POST /oauth/revoke`: `{}`, for unknown tokens too.
#[derive(ToSchema)]
pub struct Empty {}

/// `GET /oauth/token/info`: Doorkeeper's token info, with GitLab's
/// deprecated aliases (`scopes`, `expires_in_seconds`).
#[derive(ToSchema)]
pub struct TokenInfo {
    /// `null` for a token of no user (`client_credentials`).
    pub resource_owner_id: Option<i64>,
    pub scope: Vec<String>,
    pub expires_in: i64,
    pub application: TokenInfoApplication,
    /// Seconds since the epoch.
    pub created_at: i64,
    pub scopes: Vec<String>,
    pub expires_in_seconds: i64,
}

#[derive(ToSchema)]
pub struct TokenInfoApplication {
    pub uid: String,
}

/// RFC 7662: `{"active": false}` alone for a token the caller may not
/// see, or that is not live.
#[derive(ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[schema(nullable = false)]
    pub scope: Option<String>,
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    #[schema(nullable = false)]
    pub token_type: Option<String>,
    #[schema(nullable = false)]
    pub exp: Option<i64>,
    #[schema(nullable = false)]
    pub iat: Option<i64>,
    /// The user's id, as a string (not for client credentials tokens).
    #[schema(nullable = false)]
    pub sub: Option<String>,
    #[schema(nullable = false)]
    pub username: Option<String>,
}

/// OpenID Connect UserInfo: the claims GitLab gives (`email` and
/// `email_verified` only with the `email` scope; the group claims with
/// `read_api` or `read_user`…), and any others.
#[derive(ToSchema)]
pub struct UserInfo {
    pub sub: String,
    pub name: String,
    pub nickname: String,
    pub preferred_username: String,
    #[schema(nullable = false)]
    pub email: Option<String>,
    #[schema(nullable = false)]
    pub email_verified: Option<bool>,
    pub website: String,
    pub profile: String,
    #[schema(nullable = false)]
    pub groups: Option<Vec<String>>,
}

/// The JSON Web Key Set.
#[derive(ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    pub n: String,
    pub e: String,
}

/// `POST /oauth/authorize_device` (RFC 8628): the client authenticates
/// and may name scopes.
#[derive(ToSchema)]
pub struct DeviceAuthorizationRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
}

/// RFC 8628 section 3.2.
#[derive(ToSchema)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// RFC 7591 client metadata latchkey reads (others are ignored).
#[derive(ToSchema)]
pub struct ClientMetadata {
    #[schema(min_length = 1)]
    pub client_name: String,
    #[schema(min_items = 1)]
    pub redirect_uris: Vec<String>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub scope: Option<String>,
}

/// A registered client (RFC 7591 section 3.2.1, RFC 7592 section 3);
/// the secret and the registration access token only when just made.
#[derive(ToSchema)]
pub struct Registration {
    pub client_id: String,
    pub client_id_issued_at: i64,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub scope: String,
    pub registration_client_uri: String,
    pub require_pkce: bool,
    pub dynamic: bool,
    #[schema(nullable = false)]
    pub client_secret: Option<String>,
    #[schema(nullable = false)]
    pub client_secret_expires_at: Option<i64>,
    #[schema(nullable = false)]
    pub registration_access_token: Option<String>,
}

/// OpenID Connect discovery and RFC 8414 metadata (`oidc::discovery`).
#[derive(ToSchema)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub device_authorization_endpoint: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub response_modes_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub claim_types_supported: Vec<String>,
    pub claims_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub authorization_response_iss_parameter_supported: bool,
    pub prompt_values_supported: Vec<String>,
    /// Only when dynamic registration is on.
    #[schema(nullable = false)]
    pub registration_endpoint: Option<String>,
}

/// `POST /oauth/authorize` (the consent form) and `DELETE` (deny).
#[derive(ToSchema)]
pub struct ConsentDecision {
    pub authenticity_token: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
}

/// The device pages' forms.
#[derive(ToSchema)]
pub struct DeviceForm {
    pub user_code: Option<String>,
    pub authenticity_token: Option<String>,
}
