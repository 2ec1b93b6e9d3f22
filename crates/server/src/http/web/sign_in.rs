//! Signing in and out.

use super::*;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    nav: Nav,
    csrf: &'a str,
    return_to: &'a str,
    login: &'a str,
    error: Option<&'a str>,
}

pub async fn sign_in_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let return_to = safe_return_to(params.get_str("return_to"));
    // `reauthenticate`: the authorization endpoint asks for a fresh sign-in
    // (OpenID Connect's prompt=login or max_age), so the form is shown even
    // to a signed-in browser.
    let reauthenticate = params.get_str("reauthenticate").is_some();
    let signed_in = match current(&state, &headers).await {
        Ok(Some(_)) if !reauthenticate => return redirect(return_to, &[]),
        Ok(s) => s,
        Err(e) => return internal_page(e),
    };
    let session = signed_in.as_ref().map(|s| s.session.as_str());
    let (csrf, cookies) = match csrf_for(&state, &headers, session) {
        Ok(c) => c,
        Err(e) => return internal_page(e),
    };
    let body = SignInPage {
        nav: Nav::default(),
        csrf: &csrf,
        return_to,
        login: "",
        error: None,
    }
    .render();
    with_cookies(page(StatusCode::OK, body, ""), &cookies)
}

pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let signed_in = match current(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return internal_page(e),
    };
    // With a session, only its own token: a planted cookie must not sign
    // the browser into another account (login CSRF). A stale sign-in form
    // from before the session began gets "the form has expired".
    let session = signed_in.as_ref().map(|s| s.session.as_str());
    if !csrf_ok(&state, &headers, session, &params) {
        return csrf_failure();
    }
    let return_to = safe_return_to(params.get_str("return_to")).to_owned();
    let login = params.get_str("user[login]").unwrap_or("").to_owned();
    let password = params.get_str("user[password]").unwrap_or("");
    let failure = |status: StatusCode, message: &str| {
        let (csrf, cookies) = match csrf_for(&state, &headers, session) {
            Ok(c) => c,
            Err(e) => return internal_page(e),
        };
        let body = SignInPage {
            nav: Nav::default(),
            csrf: &csrf,
            return_to: &return_to,
            login: &login,
            error: Some(message),
        }
        .render();
        with_cookies(page(status, body, ""), &cookies)
    };
    let ctx = request_id::context(None, Via::Session);
    match state.services.sign_in(&ctx, &login, password).await {
        Ok(user) => match state
            .services
            .create_session(
                &request_id::context(Some(user.id), Via::Session),
                user.id,
                super::user_agent(&headers),
            )
            .await
        {
            Ok(value) => {
                // Signing in again (a fresh sign-in the client asked for, or
                // another account) replaces the browser's old session.
                if let Some(old) = session {
                    if let Err(e) = state.services.end_session(&ctx, old).await {
                        return internal_page(e);
                    }
                }
                redirect(&return_to, &[set_cookie(&state, SESSION_COOKIE, &value, 86_400)])
            }
            Err(e) => internal_page(e),
        },
        Err(SignInError::Invalid) => failure(StatusCode::UNAUTHORIZED, "Invalid login or password."),
        Err(SignInError::Locked) => failure(
            StatusCode::TOO_MANY_REQUESTS,
            "Your account is locked after too many failed sign-in attempts. Try again in 15 minutes.",
        ),
        Err(SignInError::Throttled) => failure(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-in attempts from your address. Try again in 15 minutes.",
        ),
        Err(SignInError::Blocked(reason)) => failure(StatusCode::FORBIDDEN, reason),
        Err(SignInError::Internal(e)) => internal_page(e),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let signed_in = match current(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return internal_page(e),
    };
    let session = signed_in.as_ref().map(|s| s.session.as_str());
    if !csrf_ok(&state, &headers, session, &params) {
        return csrf_failure();
    }
    if let Some(s) = &signed_in {
        let ctx = request_id::context(Some(s.user.id), Via::Session);
        if let Err(e) = state.services.end_session(&ctx, &s.session).await {
            return internal_page(e);
        }
    }
    // "Not you?" on the consent page comes back to the same request once
    // the other account has signed in.
    let to = match params.get_str("return_to").map(|r| safe_return_to(Some(r))) {
        Some(back) if back != "/" => append_query("/users/sign_in", &[("return_to", back)]),
        _ => "/users/sign_in".to_owned(),
    };
    redirect(&to, &[set_cookie(&state, SESSION_COOKIE, "", 0)])
}
