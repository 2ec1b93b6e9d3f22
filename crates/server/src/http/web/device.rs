//! The device verification pages (RFC 8628).

use super::*;

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    nav: Nav,
    csrf: &'a str,
    user_code: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct DeviceConfirmPage<'a> {
    nav: Nav,
    app_name: &'a str,
    username: &'a str,
    user_code: &'a str,
    scopes: Vec<(String, String)>,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    nav: Nav,
    title: &'a str,
    description: &'a str,
}

/// `GET /oauth/device[?user_code=…]`: the form to type the code into.
#[utoipa::path(
    get,
    path = "/oauth/device",
    tag = "browser",
    summary = "The page to type a device's user code into",
    params(("user_code" = Option<String>, Query, description = "Prefilled")),
    responses(
        (status = 200, description = "The form", content_type = "text/html; charset=utf-8"),
        (status = 302, description = "To the sign-in page, or back to the client with a code or an error", headers(("Location" = String)))
    )
)]
pub async fn device_form(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let back = uri
        .path_and_query()
        .map_or("/oauth/device", |p| p.as_str())
        .to_owned();
    let signed = match super::gate::signed_in(&state, &headers, &back).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let csrf = session_csrf(&signed.session);
    let code = params.get_str("user_code").unwrap_or("");
    page(
        StatusCode::OK,
        DevicePage {
            nav: signed.nav(),
            csrf: &csrf,
            user_code: code,
            error: None,
        }
        .render(),
        "",
    )
}

/// `POST /oauth/device`: the code was typed; show what it asks for.
#[utoipa::path(
    post,
    path = "/oauth/device",
    tag = "browser",
    summary = "Look a user code up: the device's consent page",
    request_body(content((crate::http::openapi::schemas::DeviceForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The consent page", content_type = "text/html; charset=utf-8"),
        (status = 302, description = "To the sign-in page, or back to the client with a code or an error", headers(("Location" = String)))
    )
)]
pub async fn device_lookup(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let signed = match super::gate::signed_in(&state, &headers, "/oauth/device").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&state, &headers, Some(&signed.session), &params) {
        return csrf_failure();
    }
    let csrf = session_csrf(&signed.session);
    let typed = params.get_str("user_code").unwrap_or("");
    match state.services.pending_device_request(typed).await {
        Ok(Some((grant, app))) => {
            let body = DeviceConfirmPage {
                nav: signed.nav(),
                app_name: &app.name,
                username: &signed.user.username,
                user_code: &grant.user_code,
                scopes: grant
                    .scopes
                    .as_slice()
                    .iter()
                    .map(|s| (s.clone(), describe(s)))
                    .collect(),
                csrf: &csrf,
            }
            .render();
            page(StatusCode::OK, body, "")
        }
        Ok(None) => {
            let body = DevicePage {
                nav: signed.nav(),
                csrf: &csrf,
                user_code: typed,
                error: Some("That code is not valid or has expired."),
            }
            .render();
            page(StatusCode::NOT_FOUND, body, "")
        }
        Err(e) => internal_page(e),
    }
}

/// `POST /oauth/device/confirm`: Authorize or Deny.
#[utoipa::path(
    post,
    path = "/oauth/device/confirm",
    tag = "browser",
    summary = "Authorize or deny a device",
    request_body(content((crate::http::openapi::schemas::DeviceForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Done", content_type = "text/html; charset=utf-8"),
        (status = 302, description = "To the sign-in page, or back to the client with a code or an error", headers(("Location" = String)))
    )
)]
pub async fn device_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let signed = match super::gate::signed_in(&state, &headers, "/oauth/device").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !csrf_ok(&state, &headers, Some(&signed.session), &params) {
        return csrf_failure();
    }
    let approve = params.get_str("decision") != Some("deny");
    let code = params.get_str("user_code").unwrap_or("");
    match state
        .services
        .decide_device_request(
            &request_id::context(Some(signed.user.id), Via::Session),
            code,
            &signed.user,
            approve,
            signed.auth_time,
        )
        .await
    {
        Ok(true) if approve => page(
            StatusCode::OK,
            MessagePage {
                nav: signed.nav(),
                title: "Device connected",
                description: "You can return to your device now.",
            }
            .render(),
            "",
        ),
        Ok(true) => page(
            StatusCode::OK,
            MessagePage {
                nav: signed.nav(),
                title: "Request denied",
                description: "The device was not given access.",
            }
            .render(),
            "",
        ),
        Ok(false) => error_page(
            StatusCode::NOT_FOUND,
            "Code not valid",
            "That code is not valid or has expired.",
            None,
        ),
        Err(e) => internal_page(e),
    }
}
