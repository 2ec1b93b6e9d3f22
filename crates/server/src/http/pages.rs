//! HTML pages (their security headers are set by a layer on every HTML
//! answer, `router::html_headers`), and the error page (which names the
//! request id of a server fault).

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The bar at the top of every page: the signed-in user, their settings,
/// the Admin Area for administrators, and sign-out; or a sign-in link.
#[derive(Default)]
pub(crate) struct Nav {
    /// The signed-in user's username.
    pub user: Option<String>,
    /// Whether the Admin Area is theirs.
    pub admin: bool,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: String,
    /// Offer "Sign in" (the page knows nobody is signed in). Error pages,
    /// which do not look the session up, show the bare bar.
    pub sign_in_link: bool,
    /// Offer "Leave Admin Mode" (the session is in it).
    pub leave_admin_mode: bool,
}

impl Nav {
    /// The bar of a page that knows nobody is signed in.
    pub(crate) fn signed_out() -> Self {
        Self {
            sign_in_link: true,
            ..Self::default()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Nav,
    title: &'a str,
    description: &'a str,
    code: Option<&'a str>,
    request_id: Option<&'a str>,
}

/// An HTML page with the security headers. `form_targets` extends the
/// CSP's `form-action` (the consent form's redirect target).
pub(crate) fn page(
    status: StatusCode,
    body: Result<String, askama::Error>,
    form_targets: &str,
) -> Response {
    let html = match body {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error",
            )
                .into_response();
        }
    };
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The other security headers, and this policy for every other page,
    // are set by a layer (`router::html_headers`) on every HTML answer.
    if !form_targets.is_empty() {
        let csp = CSP.replacen(
            "form-action 'self'",
            &format!("form-action 'self'{form_targets}"),
            1,
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    res
}

/// The content security policy of every page (the consent page adds its
/// redirect target to `form-action`).
pub(crate) const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn error_page(
    status: StatusCode,
    title: &str,
    description: &str,
    code: Option<&str>,
) -> Response {
    // A fault's page names the request, to quote in a report.
    let request_id = status
        .is_server_error()
        .then(super::request_id::current)
        .flatten();
    page(
        status,
        ErrorPage {
            nav: Nav::default(),
            title,
            description,
            code,
            request_id: request_id.as_deref(),
        }
        .render(),
        "",
    )
}
