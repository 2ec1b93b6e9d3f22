//! The OpenAPI 3.1 document served at `/api/v4/openapi.json`, generated
//! from the `#[utoipa::path]` annotations on the handlers (and, for the
//! routes one generic handler serves several times, on the stubs in
//! `shared`). Nothing here is a hand-kept copy of the API: a route in
//! `router` without an annotation fails the HTTP suite's
//! `openapi_covers_every_route`, and schemathesis (compat's `openapi`
//! suite) checks the live answers against the document.
//!
//! What every operation of a dialect has in common is added by
//! [`Conventions`] rather than repeated on each annotation: the error
//! responses in the route's dialect (GitLab's JSON under `/api/v4`,
//! RFC 6749's under `/oauth`, HTML on browser pages), the security
//! requirements, and an operation id made of the method and the path.

pub mod schemas;
pub mod shared;

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response as OaResponse, ResponseBuilder};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::server::Server;
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::params::Dialect;
use super::{
    applications, audit_events, group_applications, groups, members, meta, oauth, oidc, tokens,
    user_applications, users, web, AppState,
};

/// The security scheme names the document uses.
pub const PRIVATE_TOKEN: &str = "private_token";
pub const BEARER: &str = "bearer";
pub const CLIENT_BASIC: &str = "client_basic";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "latchkey",
        description = "GitLab-compatible OAuth application registry and OAuth 2 / OpenID Connect provider. \
            Under `/api/v4` the wire format is GitLab's (errors `{\"message\": …}` or `{\"error\": …}`); \
            under `/oauth` it is RFC 6749's (errors `{\"error\", \"error_description\"}`). \
            Every parameter may come in the query string, a JSON body, a form-urlencoded body or a \
            multipart body (the body wins).",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        openapi_json,
        meta::version,
        meta::metadata,
        meta::current_user,
        applications::create,
        applications::list,
        applications::update,
        applications::delete,
        shared::instance_renew_secret,
        shared::instance_secrets,
        shared::instance_delete_secret,
        shared::instance_revoke_all,
        user_applications::create,
        user_applications::list,
        user_applications::get,
        user_applications::update,
        user_applications::delete,
        shared::own_renew_secret,
        shared::own_secrets,
        shared::own_delete_secret,
        shared::own_revoke_all,
        users::list,
        users::create,
        users::get,
        users::update,
        users::delete,
        users::block,
        users::unblock,
        shared::user_projects,
        shared::user_events,
        tokens::create_for_user,
        tokens::list,
        tokens::get,
        tokens::revoke,
        tokens::rotate,
        groups::list,
        groups::create,
        groups::get,
        groups::update,
        groups::delete,
        groups::subgroups,
        groups::descendant_groups,
        members::list,
        members::create,
        members::list_all,
        members::get_all,
        members::get,
        members::update,
        members::delete,
        group_applications::create,
        group_applications::list,
        group_applications::get,
        group_applications::update,
        group_applications::delete,
        shared::group_renew_secret,
        shared::group_secrets,
        shared::group_delete_secret,
        shared::group_revoke_all,
        audit_events::list,
        audit_events::get,
        oauth::token,
        oauth::revoke,
        oauth::introspect,
        oauth::token_info,
        oidc::userinfo,
        oidc::jwks,
        oidc::authorize_device,
        oidc::register,
        oidc::read_registration,
        oidc::update_registration,
        oidc::delete_registration,
        shared::openid_configuration,
        shared::oauth_authorization_server,
        web::authorize::authorize,
        web::authorize::decide,
        web::authorize::native_code,
        web::device::device_form,
        web::device::device_lookup,
        web::device::device_confirm,
    ),
    components(schemas(
        schemas::GitLabError,
        schemas::OAuthErrorBody,
        super::user_entities::UserBasic,
        super::user_entities::UserProfile,
        super::user_entities::UserPublic,
        super::user_entities::UserWithAdmin,
    )),
    modifiers(&Conventions),
    tags(
        (name = "meta", description = "Version, metadata and this document"),
        (name = "applications", description = "Instance-wide applications (administrators)"),
        (name = "user_applications", description = "A user's own applications"),
        (name = "group_applications", description = "A group's applications"),
        (name = "users", description = "Users (GitLab's Users API)"),
        (name = "personal_access_tokens", description = "Personal access tokens"),
        (name = "groups", description = "Groups and subgroups"),
        (name = "members", description = "Group members"),
        (name = "audit_events", description = "Instance audit events (administrators)"),
        (name = "oauth", description = "OAuth 2 endpoints clients call (RFC 6749, 7009, 7662, 8628)"),
        (name = "oidc", description = "OpenID Connect and authorization server metadata"),
        (name = "registration", description = "Dynamic client registration (RFC 7591, 7592)"),
        (name = "browser", description = "Pages a person's browser shows (HTML)"),
    )
)]
pub struct ApiDoc;

/// The document, built once; each answer adds the server's external URL.
fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc
    })
}

/// The document as JSON, with `servers` set to `external_url`.
pub fn document_json(external_url: &str) -> Result<String, serde_json::Error> {
    let mut doc = document().clone();
    doc.servers = Some(vec![Server::new(external_url)]);
    doc.to_json()
}

/// This API's OpenAPI 3.1 document
///
/// Generated from the annotations on latchkey's handlers; unauthenticated.
#[utoipa::path(
    get,
    path = "/api/v4/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    match document_json(&state.external_url) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => super::errors::ApiError::Internal(latchkey_core::error::cause(e)).into_response(),
    }
}

/// What every operation of a dialect has in common: see the module doc.
pub struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            PRIVATE_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "PRIVATE-TOKEN",
                "A personal access token (GitLab's header)",
            ))),
        );
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An OAuth access token, or under /api/v4 a personal access token",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            CLIENT_BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "OAuth client authentication (RFC 6749 section 2.3.1): client_id and \
                         client_secret, each form-urlencoded; they may instead come in the body \
                         (client_secret_post)",
                    ))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let dialect = Dialect::of(path);
            let slug: String = path
                .trim_start_matches('/')
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let ops = [
                ("get", item.get.as_mut()),
                ("put", item.put.as_mut()),
                ("post", item.post.as_mut()),
                ("delete", item.delete.as_mut()),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                op.operation_id = Some(format!("{method}_{slug}"));
                if op.security.is_none() {
                    op.security = default_security(path, dialect);
                }
                add_errors(op, dialect);
                add_page_headers(op);
            }
        }
        user_views(doc);
    }
}

/// GitLab's user entities differ by who asks: an administrator gets
/// `UserWithAdmin`, a user `UserPublic` of themselves and `UserProfile` of
/// others; lists give `UserBasic` (`UserWithAdmin` to administrators). The
/// answers are documented as any of those (each extends the one before, so
/// `oneOf` would match several).
fn user_views(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, Schema};
    let any = |names: &[&str]| -> RefOr<Schema> {
        let mut b = AnyOfBuilder::new();
        for n in names {
            b = b.item(Ref::from_schema_name(*n));
        }
        RefOr::T(Schema::AnyOf(b.build()))
    };
    let list = |names: &[&str]| -> RefOr<Schema> {
        RefOr::T(Schema::Array(ArrayBuilder::new().items(any(names)).build()))
    };
    let views: [(&str, RefOr<Schema>); 3] = [
        ("/api/v4/users", list(&["UserWithAdmin", "UserBasic"])),
        (
            "/api/v4/users/{id}",
            any(&["UserWithAdmin", "UserProfile", "UserBasic"]),
        ),
        ("/api/v4/user", any(&["UserWithAdmin", "UserPublic"])),
    ];
    for (path, schema) in views {
        let answer = doc
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.get.as_mut())
            .and_then(|op| op.responses.responses.get_mut("200"));
        if let Some(RefOr::T(answer)) = answer {
            if let Some(content) = answer.content.get_mut("application/json") {
                content.schema = Some(schema);
            }
        }
    }
}

/// Who may call a route when its annotation does not say.
fn default_security(path: &str, dialect: Dialect) -> Option<Vec<SecurityRequirement>> {
    let none = SecurityRequirement::default();
    let scheme = |name: &str| SecurityRequirement::new::<_, _, &str>(name, []);
    match dialect {
        Dialect::GitLab => Some(vec![scheme(PRIVATE_TOKEN), scheme(BEARER)]),
        Dialect::Browser => Some(vec![none]),
        Dialect::OAuth => match path {
            "/oauth/token" | "/oauth/revoke" | "/oauth/authorize_device" => {
                Some(vec![scheme(CLIENT_BASIC), none])
            }
            "/oauth/introspect" => Some(vec![scheme(CLIENT_BASIC), scheme(BEARER), none]),
            "/oauth/userinfo" | "/oauth/token/info" | "/oauth/register/{client_id}" => {
                Some(vec![scheme(BEARER), none])
            }
            _ => Some(vec![none]),
        },
    }
}

fn json_error(description: &str, schema: &str) -> RefOr<OaResponse> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build(),
    )
}

fn html(description: &str) -> RefOr<OaResponse> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("text/html; charset=utf-8", ContentBuilder::new().build())
            .build(),
    )
}

/// GitLab's pagination headers, on the answer of every operation that takes
/// a `page` (`schemas::Pagination`): `pagination::respond` sends them all.
fn add_page_headers(op: &mut Operation) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::ParameterIn;
    let paged = op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.name == "page" && matches!(p.parameter_in, ParameterIn::Query));
    let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") else {
        return;
    };
    if !paged {
        return;
    }
    for (name, description) in [
        ("X-Total", "Items in all pages"),
        ("X-Total-Pages", "Pages"),
        ("X-Page", "This page"),
        ("X-Per-Page", "Items a page"),
        ("X-Next-Page", "The next page, or empty"),
        ("X-Prev-Page", "The previous page, or empty"),
        ("Link", "first, last, prev and next pages (RFC 8288)"),
    ] {
        let header = HeaderBuilder::new()
            .schema(utoipa::openapi::schema::Object::with_type(
                utoipa::openapi::schema::Type::String,
            ))
            .description(Some(description))
            .build();
        ok.headers.insert(name.to_owned(), header);
    }
}

/// The error answers every operation of `dialect` may give, where its
/// annotation does not describe them itself.
fn add_errors(op: &mut Operation, dialect: Dialect) {
    let errors: &[(&str, &str)] = match dialect {
        Dialect::GitLab => &[
            ("400", "Bad parameters: `{\"error\": \"a is missing, b is invalid\"}`, or `{\"message\": …}`"),
            ("401", "No or a bad token: `{\"message\": \"401 Unauthorized\"}`, or `invalid_token`"),
            ("403", "Not allowed: `{\"message\": \"403 Forbidden\"}`, or `insufficient_scope`"),
            ("404", "No such thing: `{\"message\": \"404 … Not Found\"}`"),
            ("413", "The body is too large"),
            ("415", "A charset other than UTF-8, or a body that is not JSON, a form or multipart"),
            ("503", "The database is unavailable; `Retry-After` says when to come back"),
        ],
        Dialect::OAuth => &[
            ("400", "RFC 6749 error (invalid_request, invalid_grant, …)"),
            ("401", "invalid_client or invalid_token"),
            ("413", "The body is too large"),
            ("415", "A charset other than UTF-8"),
            ("503", "temporarily_unavailable"),
        ],
        Dialect::Browser => &[],
    };
    let schema = match dialect {
        Dialect::GitLab => "GitLabError",
        _ => "OAuthErrorBody",
    };
    let responses = &mut op.responses.responses;
    for (status, description) in errors {
        responses
            .entry((*status).to_owned())
            .or_insert_with(|| json_error(description, schema));
    }
    match dialect {
        Dialect::Browser => {
            responses
                .entry("4XX".to_owned())
                .or_insert_with(|| html("An error page"));
        }
        Dialect::GitLab => {
            responses
                .entry("429".to_owned())
                .or_insert_with(rate_limited_text);
        }
        Dialect::OAuth => {
            responses.entry("429".to_owned()).or_insert_with(|| {
                json_error(
                    "too_many_requests: a rate limit (LATCHKEY_RATE_LIMIT_*); `Retry-After` says when to come back",
                    "OAuthErrorBody",
                )
            });
        }
    }
}

/// GitLab's Rack::Attack answer to a rate limit: `Retry later` in plain text.
fn rate_limited_text() -> RefOr<OaResponse> {
    RefOr::T(
        ResponseBuilder::new()
            .description(
                "A rate limit (LATCHKEY_RATE_LIMIT_*): `Retry later`, with `Retry-After` and GitLab's `RateLimit-*` headers",
            )
            .content("text/plain", ContentBuilder::new().build())
            .build(),
    )
}
