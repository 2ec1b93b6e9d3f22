//! Annotations for routes whose handler serves several paths (the
//! generic secret handlers, `users::nothing_of_theirs`, `oidc::discovery`):
//! one `#[utoipa::path]` cannot name several paths, so each path gets a
//! stub here that only carries its annotation. The stubs are never routed.
#![allow(dead_code)]

use super::schemas::{GitLabError, SecretRenewal};
use crate::http::secrets::{SecretEntity, WithSecret};

/// Renew the secret of an instance application
///
/// 201 with the new secret (shown once). Every previous secret dies at
/// once unless `expires_in` gives them a grace period.
#[utoipa::path(
    post,
    path = "/api/v4/applications/{id}/renew-secret",
    tag = "applications",
    params(("id" = i64, Path, description = "The application's id")),
    request_body(content(
        (SecretRenewal = "application/json"),
        (SecretRenewal = "application/x-www-form-urlencoded")
    )),
    responses((status = 201, description = "The application with its new secret", body = WithSecret))
)]
pub fn instance_renew_secret() {}

/// The secrets of an instance application
///
/// Never their values: their ids, dates and last characters.
#[utoipa::path(
    get,
    path = "/api/v4/applications/{id}/secrets",
    tag = "applications",
    params(("id" = i64, Path, description = "The application's id")),
    responses((status = 200, description = "The application's secrets", body = Vec<SecretEntity>))
)]
pub fn instance_secrets() {}

/// Delete one secret of an instance application
///
/// Never the last live one (409).
#[utoipa::path(
    delete,
    path = "/api/v4/applications/{id}/secrets/{secret_id}",
    tag = "applications",
    params(("id" = i64, Path, description = "The application's id"), ("secret_id" = i64, Path, description = "The secret's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The application's last live secret", body = GitLabError)
    )
)]
pub fn instance_delete_secret() {}

/// Revoke everything of an instance application
///
/// Every secret, grant and token dies; 201 with a fresh secret.
#[utoipa::path(
    post,
    path = "/api/v4/applications/{id}/revoke-all",
    tag = "applications",
    params(("id" = i64, Path, description = "The application's id")),
    responses((status = 201, description = "The application with its fresh secret", body = WithSecret))
)]
pub fn instance_revoke_all() {}

/// Renew the secret of one of your applications
///
/// 201 with the new secret (shown once). Every previous secret dies at
/// once unless `expires_in` gives them a grace period.
#[utoipa::path(
    post,
    path = "/api/v4/user/applications/{id}/renew-secret",
    tag = "user_applications",
    params(("id" = i64, Path, description = "The application's id")),
    request_body(content(
        (SecretRenewal = "application/json"),
        (SecretRenewal = "application/x-www-form-urlencoded")
    )),
    responses((status = 201, description = "The application with its new secret", body = WithSecret))
)]
pub fn own_renew_secret() {}

/// The secrets of one of your applications
///
/// Never their values: their ids, dates and last characters.
#[utoipa::path(
    get,
    path = "/api/v4/user/applications/{id}/secrets",
    tag = "user_applications",
    params(("id" = i64, Path, description = "The application's id")),
    responses((status = 200, description = "The application's secrets", body = Vec<SecretEntity>))
)]
pub fn own_secrets() {}

/// Delete one secret of one of your applications
///
/// Never the last live one (409).
#[utoipa::path(
    delete,
    path = "/api/v4/user/applications/{id}/secrets/{secret_id}",
    tag = "user_applications",
    params(("id" = i64, Path, description = "The application's id"), ("secret_id" = i64, Path, description = "The secret's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The application's last live secret", body = GitLabError)
    )
)]
pub fn own_delete_secret() {}

/// Revoke everything of one of your applications
///
/// Every secret, grant and token dies; 201 with a fresh secret.
#[utoipa::path(
    post,
    path = "/api/v4/user/applications/{id}/revoke-all",
    tag = "user_applications",
    params(("id" = i64, Path, description = "The application's id")),
    responses((status = 201, description = "The application with its fresh secret", body = WithSecret))
)]
pub fn own_revoke_all() {}

/// Renew the secret of a group's application
///
/// 201 with the new secret (shown once). Every previous secret dies at
/// once unless `expires_in` gives them a grace period.
#[utoipa::path(
    post,
    path = "/api/v4/groups/{id}/applications/{application_id}/renew-secret",
    tag = "group_applications",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("application_id" = i64, Path, description = "The application's id")),
    request_body(content(
        (SecretRenewal = "application/json"),
        (SecretRenewal = "application/x-www-form-urlencoded")
    )),
    responses((status = 201, description = "The application with its new secret", body = WithSecret))
)]
pub fn group_renew_secret() {}

/// The secrets of a group's application
///
/// Never their values: their ids, dates and last characters.
#[utoipa::path(
    get,
    path = "/api/v4/groups/{id}/applications/{application_id}/secrets",
    tag = "group_applications",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("application_id" = i64, Path, description = "The application's id")),
    responses((status = 200, description = "The application's secrets", body = Vec<SecretEntity>))
)]
pub fn group_secrets() {}

/// Delete one secret of a group's application
///
/// Never the last live one (409).
#[utoipa::path(
    delete,
    path = "/api/v4/groups/{id}/applications/{application_id}/secrets/{secret_id}",
    tag = "group_applications",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("application_id" = i64, Path, description = "The application's id"), ("secret_id" = i64, Path, description = "The secret's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The application's last live secret", body = GitLabError)
    )
)]
pub fn group_delete_secret() {}

/// Revoke everything of a group's application
///
/// Every secret, grant and token dies; 201 with a fresh secret.
#[utoipa::path(
    post,
    path = "/api/v4/groups/{id}/applications/{application_id}/revoke-all",
    tag = "group_applications",
    params(("id" = String, Path, description = "The group's id or URL-encoded full path"), ("application_id" = i64, Path, description = "The application's id")),
    responses((status = 201, description = "The application with its fresh secret", body = WithSecret))
)]
pub fn group_revoke_all() {}

/// A user's projects: always empty
///
/// latchkey keeps no projects and records no contribution events: for a
/// user who exists the list is empty, for one who does not a 404.
#[utoipa::path(
    get,
    path = "/api/v4/users/{id}/projects",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id"), super::schemas::Pagination),
    responses((status = 200, description = "An empty list", body = Vec<Object>))
)]
pub fn user_projects() {}

/// A user's contribution events: always empty
///
/// latchkey keeps no projects and records no contribution events: for a
/// user who exists the list is empty, for one who does not a 404.
#[utoipa::path(
    get,
    path = "/api/v4/users/{id}/events",
    tag = "users",
    params(("id" = i64, Path, description = "The user's id"), super::schemas::Pagination),
    responses((status = 200, description = "An empty list", body = Vec<Object>))
)]
pub fn user_events() {}

/// OpenID Connect discovery
///
/// The same document at both well-known paths. `registration_endpoint`
/// only when dynamic registration is on.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "oidc",
    security(()),
    responses((status = 200, description = "The provider's metadata", body = super::schemas::Discovery))
)]
pub fn openid_configuration() {}

/// OAuth 2 authorization server metadata (RFC 8414)
///
/// The same document at both well-known paths. `registration_endpoint`
/// only when dynamic registration is on.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oidc",
    security(()),
    responses((status = 200, description = "The provider's metadata", body = super::schemas::Discovery))
)]
pub fn oauth_authorization_server() {}
