//! Every route latchkey serves, in one place.

use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use latchkey_core::Store;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use super::errors::ApiError;
use super::observe::{AdmitLayer, ObserveLayer};
use super::{
    applications, audit_events, group_applications, groups, members, meta, metrics, oauth, oidc,
    openapi, secrets, tokens, user_applications, users, web, AppState,
};
use web::app_pages::{self, Admin, Settings};

pub fn router(state: AppState) -> Router {
    let observer = state.observer.clone();
    let api = Router::new()
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/version", get(meta::version))
        .route("/metadata", get(meta::metadata))
        .route("/user", get(meta::current_user))
        .route(
            "/applications",
            post(applications::create).get(applications::list),
        )
        .route(
            "/applications/{id}",
            delete(applications::delete).put(applications::update),
        )
        .route(
            "/applications/{id}/renew-secret",
            post(secrets::renew_route::<secrets::InstanceApps>),
        )
        .route(
            "/applications/{id}/secrets",
            get(secrets::list_route::<secrets::InstanceApps>),
        )
        .route(
            "/applications/{id}/secrets/{secret_id}",
            delete(secrets::delete_route::<secrets::InstanceApps>),
        )
        .route(
            "/applications/{id}/revoke-all",
            post(secrets::revoke_all_route::<secrets::InstanceApps>),
        )
        .route(
            "/user/applications",
            post(user_applications::create).get(user_applications::list),
        )
        .route(
            "/user/applications/{id}",
            get(user_applications::get)
                .put(user_applications::update)
                .delete(user_applications::delete),
        )
        .route(
            "/user/applications/{id}/renew-secret",
            post(secrets::renew_route::<secrets::OwnApps>),
        )
        .route(
            "/user/applications/{id}/secrets",
            get(secrets::list_route::<secrets::OwnApps>),
        )
        .route(
            "/user/applications/{id}/secrets/{secret_id}",
            delete(secrets::delete_route::<secrets::OwnApps>),
        )
        .route(
            "/user/applications/{id}/revoke-all",
            post(secrets::revoke_all_route::<secrets::OwnApps>),
        )
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{id}",
            get(users::get).put(users::update).delete(users::delete),
        )
        .route("/users/{id}/block", post(users::block))
        .route("/users/{id}/projects", get(users::nothing_of_theirs))
        .route("/users/{id}/events", get(users::nothing_of_theirs))
        .route("/users/{id}/unblock", post(users::unblock))
        .route(
            "/users/{id}/personal_access_tokens",
            post(tokens::create_for_user),
        )
        .route("/personal_access_tokens", get(tokens::list))
        .route(
            "/personal_access_tokens/{id}",
            get(tokens::get).delete(tokens::revoke),
        )
        .route("/personal_access_tokens/{id}/rotate", post(tokens::rotate))
        .route("/groups", get(groups::list).post(groups::create))
        .route(
            "/groups/{id}",
            get(groups::get).put(groups::update).delete(groups::delete),
        )
        .route("/groups/{id}/subgroups", get(groups::subgroups))
        .route(
            "/groups/{id}/descendant_groups",
            get(groups::descendant_groups),
        )
        .route(
            "/groups/{id}/members",
            get(members::list).post(members::create),
        )
        .route("/groups/{id}/members/all", get(members::list_all))
        .route("/groups/{id}/members/all/{user_id}", get(members::get_all))
        .route(
            "/groups/{id}/members/{user_id}",
            get(members::get)
                .put(members::update)
                .delete(members::delete),
        )
        .route(
            "/groups/{id}/applications",
            post(group_applications::create).get(group_applications::list),
        )
        .route(
            "/groups/{id}/applications/{application_id}",
            get(group_applications::get)
                .put(group_applications::update)
                .delete(group_applications::delete),
        )
        .route(
            "/groups/{id}/applications/{application_id}/renew-secret",
            post(secrets::renew_route::<secrets::GroupApps>),
        )
        .route(
            "/groups/{id}/applications/{application_id}/secrets",
            get(secrets::list_route::<secrets::GroupApps>),
        )
        .route(
            "/groups/{id}/applications/{application_id}/secrets/{secret_id}",
            delete(secrets::delete_route::<secrets::GroupApps>),
        )
        .route(
            "/groups/{id}/applications/{application_id}/revoke-all",
            post(secrets::revoke_all_route::<secrets::GroupApps>),
        )
        .route("/audit_events", get(audit_events::list))
        .route("/audit_events/{id}", get(audit_events::get));

    let app = Router::new()
        .route("/-/health", get(meta::health))
        .route("/-/liveness", get(meta::liveness))
        .route("/-/readiness", get(meta::readiness))
        .route("/-/metrics", get(metrics::metrics))
        .route("/-/assets/latchkey.css", get(web::stylesheet))
        .route("/-/assets/latchkey.js", get(web::script))
        .route(
            "/uploads/-/system/user/avatar/{id}/{file}",
            get(users::avatar),
        )
        .route(
            "/uploads/-/system/group/avatar/{id}/{file}",
            get(groups::avatar),
        )
        .route("/", get(web::home))
        .route(
            "/-/user_settings/personal_access_tokens",
            get(web::tokens_page).post(web::create_token),
        )
        .route(
            "/-/user_settings/personal_access_tokens/{id}/revoke",
            post(web::revoke_token),
        )
        .route(
            "/-/user_settings/personal_access_tokens/{id}/rotate",
            post(web::rotate_token),
        )
        .route(
            "/-/user_settings/password",
            get(web::password_page).post(web::change_password),
        )
        .route("/-/user_settings/active_sessions", get(web::sessions_page))
        .route(
            "/-/user_settings/active_sessions/revoke_others",
            post(web::revoke_other_sessions),
        )
        .route(
            "/-/user_settings/active_sessions/{id}/revoke",
            post(web::revoke_session),
        )
        .route(
            "/-/user_settings/applications",
            get(web::applications_page).post(web::create_application),
        )
        .route(
            "/-/user_settings/applications/{id}",
            get(app_pages::show::<Settings>).post(app_pages::update::<Settings>),
        )
        .route(
            "/-/user_settings/applications/{id}/edit",
            get(app_pages::edit::<Settings>),
        )
        .route(
            "/-/user_settings/applications/{id}/renew",
            post(app_pages::renew::<Settings>),
        )
        .route(
            "/-/user_settings/applications/{id}/secrets/{secret_id}/delete",
            post(app_pages::delete_secret::<Settings>),
        )
        .route(
            "/-/user_settings/applications/{id}/delete",
            get(app_pages::confirm_delete::<Settings>).post(app_pages::delete::<Settings>),
        )
        .route(
            "/-/user_settings/applications/authorized/{id}/revoke",
            post(web::revoke_authorized),
        )
        .route("/admin/session/new", get(web::admin_area::enter_form))
        .route("/admin/session", post(web::admin_area::enter))
        .route("/admin/session/destroy", post(web::admin_area::leave))
        .route(
            "/admin/users",
            get(web::admin_area::users).post(web::admin_area::create_user),
        )
        .route("/admin/users/new", get(web::admin_area::new_user))
        .route(
            "/admin/users/{username}",
            get(web::admin_area::show_user).post(web::admin_area::update_user),
        )
        .route(
            "/admin/users/{username}/edit",
            get(web::admin_area::edit_user),
        )
        .route(
            "/admin/users/{username}/block",
            post(web::admin_area::block_user),
        )
        .route(
            "/admin/users/{username}/unblock",
            post(web::admin_area::unblock_user),
        )
        .route(
            "/admin/users/{username}/unlock",
            post(web::admin_area::unlock_user),
        )
        .route(
            "/admin/users/{username}/delete",
            get(web::admin_area::confirm_delete_user).post(web::admin_area::delete_user),
        )
        .route("/admin/audit_events", get(web::admin_area::audit_events))
        .route(
            "/admin/groups",
            get(web::admin_area::groups).post(web::admin_area::create_group),
        )
        .route("/admin/groups/new", get(web::admin_area::new_group))
        // A group's full path has slashes: its page, `/-/edit` and
        // `/-/delete` are told apart by the handlers.
        .route(
            "/admin/groups/{*full_path}",
            get(web::admin_area::group_page).post(web::admin_area::group_action),
        )
        .route(
            "/admin/applications",
            get(web::admin_area::applications).post(web::admin_area::create_application),
        )
        .route(
            "/admin/applications/new",
            get(web::admin_area::new_application),
        )
        .route(
            "/admin/applications/{id}",
            get(app_pages::show::<Admin>).post(app_pages::update::<Admin>),
        )
        .route(
            "/admin/applications/{id}/edit",
            get(app_pages::edit::<Admin>),
        )
        .route(
            "/admin/applications/{id}/renew",
            post(app_pages::renew::<Admin>),
        )
        .route(
            "/admin/applications/{id}/secrets/{secret_id}/delete",
            post(app_pages::delete_secret::<Admin>),
        )
        .route(
            "/admin/applications/{id}/delete",
            get(app_pages::confirm_delete::<Admin>).post(app_pages::delete::<Admin>),
        )
        // Pages that moved (GitLab's earlier paths): see `web::moved`.
        .route("/-/profile/personal_access_tokens", get(web::moved))
        .route("/-/profile/applications", get(web::moved))
        .route("/-/profile/password/edit", get(web::moved))
        .route("/-/user_settings/password/edit", get(web::moved))
        .route("/-/profile", get(web::moved))
        .route("/-/user_settings", get(web::moved))
        .route("/admin", get(web::moved))
        // A group's page at its `web_url` (its full path has slashes).
        .route("/groups/{*full_path}", get(web::group_page))
        // A user's profile at their `web_url`, as GitLab (static routes win).
        .route("/{username}", get(web::profile))
        .route("/users/sign_in", get(web::sign_in_form).post(web::sign_in))
        .route("/users/sign_out", post(web::sign_out).delete(web::sign_out))
        .route(
            "/oauth/authorize",
            get(web::authorize).post(web::decide).delete(web::decide),
        )
        .route("/oauth/authorize/native", get(web::native_code))
        .route(
            "/oauth/authorize_device",
            post(oidc::authorize_device).layer(no_store()),
        )
        .route(
            "/oauth/device",
            get(web::device_form).post(web::device_lookup),
        )
        .route("/oauth/device/confirm", post(web::device_confirm))
        .route(
            "/oauth/introspect",
            post(oauth::introspect).layer(no_store()),
        )
        .route(
            "/oauth/token/info",
            get(oauth::token_info).layer(no_store()),
        )
        .route("/oauth/register", post(oidc::register).layer(no_store()))
        .route(
            "/oauth/register/{client_id}",
            get(oidc::read_registration)
                .put(oidc::update_registration)
                .delete(oidc::delete_registration)
                .layer(no_store()),
        )
        // Endpoints single-page applications call from other origins (as GitLab).
        .merge(
            Router::new()
                .route(
                    "/oauth/token",
                    post(oauth::token).options(preflight).layer(no_store()),
                )
                .route(
                    "/oauth/revoke",
                    post(oauth::revoke).options(preflight).layer(no_store()),
                )
                .route(
                    "/oauth/userinfo",
                    get(oidc::userinfo)
                        .post(oidc::userinfo)
                        .options(preflight)
                        .layer(no_store()),
                )
                .route("/oauth/discovery/keys", get(oidc::jwks).options(preflight))
                .route(
                    "/.well-known/openid-configuration",
                    get(oidc::discovery).options(preflight),
                )
                .route(
                    "/.well-known/oauth-authorization-server",
                    get(oidc::discovery).options(preflight),
                )
                .layer(
                    CorsLayer::new()
                        .allow_origin(Any)
                        .allow_methods([Method::GET, Method::POST])
                        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
                ),
        )
        .nest("/api/v4", api)
        // Every route: its template for the metrics, and the limit on
        // unauthenticated floods (see `observe`).
        .route_layer(AdmitLayer(state.observer.clone()))
        // GitLab answers unknown routes and wrong methods alike with 404.
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(FailFastLayer(state.services.store().clone()))
        .with_state(state)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
    with_html_headers(catch_panics(app)).layer(ObserveLayer(observer))
}

/// While the database is known to refuse connections, answer 503 at once
/// (in the route's dialect, with `Retry-After`) instead of letting every
/// request wait `LATCHKEY_DATABASE_TIMEOUT` for a connection. Liveness,
/// which does not use the database, and health and readiness, which say so
/// themselves, pass through. A plain tower service (one `Arc` clone a
/// request): `axum::middleware::from_fn_with_state` cloned the whole state
/// and boxed the inner service on every request, which cost a quarter of
/// `GET /api/v4/user`'s throughput.
#[derive(Clone)]
struct FailFastLayer(Arc<dyn Store>);

impl<S> tower::Layer<S> for FailFastLayer {
    type Service = FailFast<S>;

    fn layer(&self, inner: S) -> FailFast<S> {
        FailFast {
            inner,
            store: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct FailFast<S> {
    inner: S,
    store: Arc<dyn Store>,
}

impl<S, B> tower::Service<Request<B>> for FailFast<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        futures::future::Either<std::future::Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self.store.known_down() && !super::params::is_operations_path(req.uri().path()) {
            futures::future::Either::Left(std::future::ready(Ok(database_down(req.uri().path()))))
        } else {
            futures::future::Either::Right(self.inner.call(req))
        }
    }
}

fn database_down(path: &str) -> Response {
    let dialect = super::params::Dialect::of(path);
    // (Not through ApiError::Unavailable, which logs each one: the watcher
    // has logged the outage once.)
    let mut res = match dialect {
        super::params::Dialect::GitLab => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"message": "503 Service Unavailable"})),
        )
            .into_response(),
        _ => super::params::ParamsRejection {
            dialect,
            error: ApiError::Unavailable(latchkey_core::error::message(
                "the database refuses connections",
            )),
        }
        .into_response(),
    };
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// A handler's panic becomes a 500: the API's JSON, or for a browser the
/// HTML page naming the request.
fn catch_panics(app: Router) -> Router {
    app.layer(CatchPanicLayer::custom(|_| {
        let mut res =
            ApiError::Internal(latchkey_core::error::message("a request handler panicked"))
                .into_response();
        res.extensions_mut().insert(Panicked);
        res
    }))
    .layer(FaultPageLayer)
}

/// Marks the answer to a request whose handler panicked.
#[derive(Clone, Copy)]
struct Panicked;

/// A browser whose request panicked gets the HTML 500 page (naming the
/// request), not the API's JSON; the fault is still logged once. Outside
/// the panic catcher, inside the HTML headers layer.
#[derive(Clone, Copy)]
struct FaultPageLayer;

impl<S> tower::Layer<S> for FaultPageLayer {
    type Service = FaultPage<S>;

    fn layer(&self, inner: S) -> FaultPage<S> {
        FaultPage(inner)
    }
}

#[derive(Clone)]
struct FaultPage<S>(S);

type Answered<E> = Result<Response, E>;

impl<S, B> tower::Service<Request<B>> for FaultPage<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = futures::future::Either<
        futures::future::Map<S::Future, fn(Answered<S::Error>) -> Answered<S::Error>>,
        S::Future,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        use futures::FutureExt;
        let browser =
            super::params::Dialect::of(req.uri().path()) == super::params::Dialect::Browser;
        let answer = self.0.call(req);
        if browser {
            futures::future::Either::Left(answer.map(fault_page as fn(_) -> _))
        } else {
            futures::future::Either::Right(answer)
        }
    }
}

fn fault_page<E>(answer: Answered<E>) -> Answered<E> {
    answer.map(|mut res| {
        if res.extensions().get::<Panicked>().is_none() {
            return res;
        }
        let mut page = super::pages::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not complete the request.",
            None,
        );
        // The fault (logged by the observer) goes with the page.
        *page.extensions_mut() = std::mem::take(res.extensions_mut());
        page
    })
}

/// Answers that carry credentials or personal data are never stored by a
/// cache (RFC 6749 section 5.1, OpenID Connect UserInfo, RFC 7591).
fn no_store() -> tower::layer::util::Stack<
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
> {
    tower::layer::util::Stack::new(
        SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        ),
        SetResponseHeaderLayer::overriding(header::PRAGMA, HeaderValue::from_static("no-cache")),
    )
}

/// Every HTML page, wherever it is made (a handler, a rate limit, the
/// fail-fast layer): not framed, not cached, no referrer, and a strict
/// content security policy unless the page set its own (the consent
/// page widens `form-action` for its redirect target).
fn with_html_headers(router: Router) -> Router {
    fn when_html(value: &'static str) -> impl Fn(&Response) -> Option<HeaderValue> + Clone {
        move |res: &Response| {
            res.headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().starts_with(b"text/html"))
                .then(|| HeaderValue::from_static(value))
        }
    }
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            when_html("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            when_html("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            when_html("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            when_html(super::pages::CSP),
        ))
}

/// GitLab's JSON 404 under the API and OAuth endpoints; its HTML page for a
/// browser elsewhere.
async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    web::not_found_for(uri.path(), &headers)
}

/// CORS preflights are answered by the CORS layer; this only gives the
/// routes an OPTIONS method for it to intercept.
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    #[allow(clippy::panic)]
    async fn a_panic_is_a_500_in_the_routes_dialect() {
        async fn boom() -> Response {
            panic!("boom")
        }
        // (Not string literals in `.route(`: the OpenAPI test reads this file.)
        const PAGE: &str = "/admin/boom";
        const API: &str = "/api/v4/boom";
        let app = catch_panics(Router::new().route(PAGE, get(boom)).route(API, get(boom)));
        for (path, kind) in [(PAGE, "text/html"), (API, "application/json")] {
            let res = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            let got = res.headers()[header::CONTENT_TYPE].to_str().unwrap();
            assert!(got.starts_with(kind), "{path}: {got}");
        }
    }
}
