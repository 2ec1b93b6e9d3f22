//! Health checks, `/api/v4/version` and `/api/v4/user`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use latchkey_core::error::Chain;
use serde_json::json;

use super::auth::{authenticate, Need};
use super::errors::ApiError;
use super::params::Params;
use super::user_entities::{UserPublic, UserWithAdmin};
use super::AppState;

/// The GitLab API level latchkey speaks, reported as `version`.
pub const GITLAB_API_VERSION: &str = "18.6.0";

/// Liveness: the process answers. Never depends on the database, so an
/// outage does not get healthy instances restarted.
pub async fn liveness() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Readiness's 503, in GitLab's shape, saying why.
fn not_ready(message: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "failed", "db_check": [{"status": "failed", "message": message}]})),
    )
        .into_response()
}

/// Readiness: 200 once the database answers, 503 otherwise.
pub async fn readiness(State(state): State<AppState>) -> Response {
    if state.services.database_known_down() {
        return not_ready("database unavailable");
    }
    // Ready means able to sign: the first start makes its key in the
    // background, and an instance that said 200 before it existed would
    // let relying parties cache an empty JWKS.
    if let Err(e) = state.services.ensure_signing_key_once().await {
        tracing::warn!(error = %Chain(&e), "readiness check failed: no signing key yet");
        return not_ready("the signing key is not ready");
    }
    match state.services.store().ping().await {
        Ok(()) => Json(json!({"status": "ok", "db_check": [{"status": "ok"}]})).into_response(),
        Err(e) => {
            tracing::warn!(error = %Chain(&e), "readiness check failed");
            not_ready("database unavailable")
        }
    }
}

/// GitLab's plain-text health check, backed by the database ping.
pub async fn health(State(state): State<AppState>) -> Response {
    let answer = if state.services.database_known_down() {
        Err(())
    } else {
        state.services.store().ping().await.map_err(|_| ())
    };
    match answer {
        Ok(()) => (StatusCode::OK, "latchkey OK").into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "latchkey is not ready: database unavailable",
        )
            .into_response(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v4/version",
    tag = "meta",
    summary = "The GitLab version latchkey speaks, and latchkey's own",
    responses(
        (status = 200, description = "Versions", body = crate::http::openapi::schemas::Version)
    )
)]
pub async fn version(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers, &params, Need::ReadUser).await?;
    Ok(Json(json!({
        "version": GITLAB_API_VERSION,
        "revision": env!("LATCHKEY_REVISION"),
        "latchkey": { "version": env!("CARGO_PKG_VERSION") },
    }))
    .into_response())
}

/// `GET /api/v4/metadata` (GitLab 15.2+; what gitbeaker asks for the
/// version): GitLab's shape, with no Kubernetes agent server.
#[utoipa::path(
    get,
    path = "/api/v4/metadata",
    tag = "meta",
    summary = "GitLab's instance metadata",
    responses(
        (status = 200, description = "Metadata", body = crate::http::openapi::schemas::Metadata)
    )
)]
pub async fn metadata(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers, &params, Need::ReadUser).await?;
    Ok(Json(json!({
        "version": GITLAB_API_VERSION,
        "revision": env!("LATCHKEY_REVISION"),
        "kas": {
            "enabled": false,
            "externalUrl": null,
            "externalK8sProxyUrl": null,
            "version": null,
        },
        "enterprise": false,
        "latchkey": { "version": env!("CARGO_PKG_VERSION") },
    }))
    .into_response())
}

/// `GET /api/v4/user`: reading your own profile needs `read_user` (or an
/// API scope), as in GitLab.
#[utoipa::path(
    get,
    path = "/api/v4/user",
    tag = "users",
    summary = "The current user",
    responses(
        (status = 200, description = "You (administrators get the fields of UserWithAdmin)", body = UserPublic)
    )
)]
pub async fn current_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, &params, Need::ReadUser).await?;
    let url = &state.links();
    // GitLab: administrators see themselves as administrators see users.
    if super::auth::is_admin(&state, &caller) {
        Ok(Json(UserWithAdmin::new(&caller.user, url)).into_response())
    } else {
        Ok(Json(UserPublic::new(&caller.user, url)).into_response())
    }
}
