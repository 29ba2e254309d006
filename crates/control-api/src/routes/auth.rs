//! Signing in and out: the login page, passwords, the company's OpenID provider, the device flow, token exchange, and the platform's published keys.

use std::collections::HashMap;
use std::sync::Arc;

use accounts::AccountError;
use api_types::LoginRequest;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::{ApiFailure, ApiResult, ApiState, failure, parse_json};

/// 429 with `Retry-After`, for a user name locked after failed sign-ins.
pub(crate) fn too_many_attempts(message: String, retry_after_secs: u64) -> Response {
    let mut response = failure(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message, vec![]).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after_secs));
    response
}

/// JSON in, token out (the CLI); or the browser's form in, session cookie and redirect out.
pub(crate) async fn login(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        let request: LoginRequest = parse_json(&body, "{\"username\": \"...\", \"password\": \"...\"}")?;
        return match state.accounts.login(&request.username, &request.password).await {
            Ok(signed_in) => Ok(Json(signed_in).into_response()),
            Err(error @ AccountError::TooManyAttempts { retry_after_secs }) => {
                Ok(too_many_attempts(error.to_string(), retry_after_secs))
            }
            Err(error) => Err(error.into()),
        };
    }
    // Login CSRF: a form posted from another site would sign the victim in as the attacker.
    // Two defences, neither resting on SameSite: the page's origin, and the form's token,
    // which must match the cookie the sign-in page set.
    same_origin(&state, &headers)?;
    let form: LoginForm = serde_urlencoded_form(&body)?;
    let return_to = form.return_to.unwrap_or_default();
    let provider = state.accounts.federation().map(|federation| federation.display_name.as_str());
    if !csrf_matches(&state, &headers, form.csrf.as_deref()) {
        let message = "this sign-in form has expired or was not loaded from this server; sign in again";
        return Ok(login_page_response(&state, StatusCode::FORBIDDEN, &return_to, Some(message), provider));
    }
    let signed_in = match state.accounts.login(&form.username, &form.password).await {
        Ok(signed_in) => signed_in,
        Err(error @ (AccountError::Unauthenticated(_) | AccountError::TooManyAttempts { .. })) => {
            let message = error.to_string();
            return Ok(login_page_response(&state, StatusCode::UNAUTHORIZED, &return_to, Some(&message), provider));
        }
        Err(error) => return Err(error.into()),
    };
    signed_in_redirect(&state, &signed_in, &return_to)
}

/// A form posted from a page of another origin is refused. Browsers name the page's origin on
/// every cross-origin POST (`Origin`, or `Sec-Fetch-Site`); it must be this server. This holds
/// whatever `SameSite` does: the apps are the same site as the platform.
fn same_origin(state: &ApiState, headers: &HeaderMap) -> ApiResult<()> {
    let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
    let fetch_site = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok());
    let foreign_origin = origin.is_some_and(|origin| origin != state.public_url.trim_end_matches('/'));
    let foreign_site = fetch_site.is_some_and(|site| site != "same-origin" && site != "none");
    match foreign_origin || foreign_site {
        true => {
            Err(failure(StatusCode::FORBIDDEN, "cross_site", "sign in and out from this server's own pages", vec![]))
        }
        false => Ok(()),
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    return_to: Option<String>,
    /// The sign-in page's token, equal to its cookie.
    csrf: Option<String>,
}

/// The cookie holding the sign-in form's token (`__Host-` where cookies are secure).
fn csrf_cookie(secure: bool) -> &'static str {
    match secure {
        true => "__Host-terrarium_csrf",
        false => "terrarium_csrf",
    }
}

/// Whether the form's token equals the cookie's, compared in constant time.
fn csrf_matches(state: &ApiState, headers: &HeaderMap, form: Option<&str>) -> bool {
    let name = csrf_cookie(state.secure_cookies);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(cookie_name, value)| (cookie_name == name).then_some(value));
    let (Some(cookie), Some(form)) = (cookie, form) else {
        return false;
    };
    // Compared in constant time (aws-lc-rs, the workspace's crypto provider).
    !cookie.is_empty() && aws_lc_rs::constant_time::verify_slices_are_equal(cookie.as_bytes(), form.as_bytes()).is_ok()
}

/// The sign-in page with a fresh form token, and the cookie that holds it.
pub(crate) fn login_page_response(
    state: &ApiState,
    status: StatusCode,
    return_to: &str,
    error: Option<&str>,
    provider: Option<&str>,
) -> Response {
    let token = identity::generate_password();
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{secure}",
        csrf_cookie(state.secure_cookies)
    );
    let mut response = (status, login_html(return_to, error, provider, &token)).into_response();
    if let Ok(value) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    // No script at all, never framed (a framed sign-in form is a clickjacking target). No
    // form-action: a sign-in goes on to an app's own host.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    response
}

#[derive(Deserialize)]
pub(crate) struct LoginPageQuery {
    return_to: Option<String>,
}

/// The sign-in page; a browser already signed in to the platform goes straight on (an app's
/// host gets its one-minute ticket), so opening an app from the console asks for nothing.
pub(crate) async fn login_page(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(query): Query<LoginPageQuery>,
) -> ApiResult<Response> {
    let return_to = query.return_to.as_deref().unwrap_or_default();
    let cookies = headers.get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok());
    for token in gateway::cookies::session_values(cookies, state.secure_cookies) {
        if let Ok(principal) = state.accounts.authenticate(token).await {
            let location = return_location(&state, &principal.subject, return_to)?;
            return Ok(redirect(StatusCode::SEE_OTHER, &location, None));
        }
    }
    let provider = state.accounts.federation().map(|federation| federation.display_name.as_str());
    Ok(login_page_response(&state, StatusCode::OK, return_to, None, provider))
}

/// The session cookie and the redirect back, after any successful browser sign-in.
pub(crate) fn signed_in_redirect(
    state: &ApiState,
    signed_in: &api_types::LoginResponse,
    return_to: &str,
) -> ApiResult<Response> {
    let cookie = gateway::session_cookie_header(&signed_in.access_token, state.secure_cookies);
    let location = return_location(state, &signed_in.user, return_to)?;
    Ok(redirect(StatusCode::SEE_OTHER, &location, Some(cookie)))
}

/// Where a signed-in `user` goes after signing in: this server's page, or an app's host with a
/// one-minute ticket that becomes that host's own session.
fn return_location(state: &ApiState, user: &str, return_to: &str) -> ApiResult<String> {
    Ok(match safe_return(state, return_to) {
        ReturnTo::Here(path) => path,
        ReturnTo::AppHost { origin, host, path } => {
            let ticket = state
                .accounts
                .tokens
                .mint_ticket(user, &[], &host)
                .map_err(|error| AccountError::Internal(format!("minting a ticket: {error}")))?;
            format!("{origin}{}?ticket={ticket}&return_to={}", gateway::SESSION_PATH, encode(&path))
        }
    })
}

pub(crate) fn configured_federation(state: &ApiState) -> ApiResult<&accounts::federation::Federation> {
    state.accounts.federation().ok_or_else(|| {
        failure(StatusCode::NOT_FOUND, "not_found", "no identity provider is configured on this server", vec![])
    })
}

/// A redirect the browser must not cache, optionally setting a cookie.
pub(crate) fn redirect(status: StatusCode, location: &str, cookie: Option<String>) -> Response {
    let mut response =
        Response::builder().status(status).header(header::LOCATION, location).header(header::CACHE_CONTROL, "no-store");
    if let Some(cookie) = cookie {
        response = response.header(header::SET_COOKIE, cookie);
    }
    response.body(Body::empty()).expect("a redirect to a checked location is a valid response")
}

/// `GET /auth/oidc/start?return_to=…`: off to the identity provider (code flow with PKCE).
pub(crate) async fn oidc_start(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<LoginPageQuery>,
) -> ApiResult<Response> {
    let federation = configured_federation(&state)?;
    let redirect_uri = format!("{}/auth/oidc/callback", state.public_url.trim_end_matches('/'));
    let location = federation.start(&redirect_uri, query.return_to.unwrap_or_default());
    Ok(redirect(StatusCode::FOUND, &location, None))
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// `GET /auth/oidc/callback?code=…&state=…`: back from the provider, signed in.
pub(crate) async fn oidc_callback(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let federation = configured_federation(&state)?;
    let (Some(flow_state), Some(code)) = (query.state, query.code) else {
        // The provider's own error code (access_denied, ...) is a bounded OAuth vocabulary word.
        let reason = query.error.filter(|error| error.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        let message = format!("the identity provider did not sign you in ({})", reason.as_deref().unwrap_or("no code"));
        return Ok(login_page_response(
            &state,
            StatusCode::UNAUTHORIZED,
            "",
            Some(&message),
            Some(&federation.display_name),
        ));
    };
    let (identity, return_to) = federation.finish(&flow_state, &code).await?;
    let signed_in = state.accounts.sign_in_external(identity, "oidc").await?;
    signed_in_redirect(&state, &signed_in, &return_to)
}

/// `POST /auth/device`: the CLI's device sign-in starts (the platform is the provider's client).
pub(crate) async fn device_start(State(state): State<Arc<ApiState>>) -> ApiResult<Response> {
    let authorization = state.accounts.start_device_login().await?;
    Ok(Json(api_types::DeviceStart {
        device_code: authorization.device_code,
        user_code: authorization.user_code,
        verification_uri: authorization.verification_uri,
        verification_uri_complete: authorization.verification_uri_complete,
        expires_in: authorization.expires_in,
        interval: authorization.interval,
    })
    .into_response())
}

/// `POST /auth/device/token {device_code}`: 200 with a token once the user approved, else
/// 400 with the RFC 8628 error code (`authorization_pending`, `slow_down`, ...).
pub(crate) async fn device_token(State(state): State<Arc<ApiState>>, body: Bytes) -> ApiResult<Response> {
    let request: api_types::DevicePoll = parse_json(&body, "{\"device_code\": \"...\"}")?;
    let pending = |code: &str, message: &str| failure(StatusCode::BAD_REQUEST, code, message, vec![]);
    match state.accounts.poll_device_login(&request.device_code).await? {
        accounts::federation::DeviceOutcome::Granted(signed_in) => Ok(Json(signed_in).into_response()),
        accounts::federation::DeviceOutcome::Pending => {
            Err(pending("authorization_pending", "waiting for you to approve the sign-in"))
        }
        accounts::federation::DeviceOutcome::SlowDown => Err(pending("slow_down", "polling too fast")),
        accounts::federation::DeviceOutcome::Denied => Err(pending("access_denied", "the sign-in was denied")),
        accounts::federation::DeviceOutcome::Expired => {
            Err(pending("expired_token", "the sign-in expired; run `terrarium login` again"))
        }
    }
}

/// `POST /oauth/token` (RFC 8693 token exchange): an identity-provider access token in, a
/// platform access token out. Answers in OAuth's own error shape.
pub(crate) async fn oauth_token(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        (status, Json(serde_json::json!({ "error": error, "error_description": description }))).into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some(identity::TOKEN_EXCHANGE_GRANT_TYPE) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only token exchange (RFC 8693) is supported",
        );
    }
    let accepted_types = ["urn:ietf:params:oauth:token-type:access_token", "urn:ietf:params:oauth:token-type:jwt"];
    if !form.get("subject_token_type").is_some_and(|kind| accepted_types.contains(&kind.as_str())) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "subject_token_type must be an access token");
    }
    let Some(subject_token) = form.get("subject_token").filter(|token| !token.is_empty()) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "subject_token is missing");
    };
    match state.accounts.exchange_token(subject_token).await {
        Ok(signed_in) => Json(serde_json::json!({
            "access_token": signed_in.access_token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": signed_in.expires_in,
        }))
        .into_response(),
        Err(AccountError::Unauthenticated(message)) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &message),
        Err(AccountError::NotFound(message)) => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &message)
        }
        Err(error) => ApiFailure::from(error).into_response(),
    }
}

pub(crate) async fn logout(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = same_origin(&state, &headers) {
        return refused.into_response();
    }
    let cleared = gateway::cookies::cleared_session_cookie(state.secure_cookies);
    redirect(StatusCode::SEE_OTHER, "/auth/login", Some(cleared))
}

/// Where a sign-in may send the browser back to: this server, or an app under the apps domain.
pub(crate) enum ReturnTo {
    Here(String),
    AppHost { origin: String, host: String, path: String },
}

pub(crate) fn safe_return(state: &ApiState, return_to: &str) -> ReturnTo {
    // Browsers drop tabs and line breaks from a `Location` (`/\t/evil.example` becomes
    // `//evil.example`), and a header cannot hold them: an address with any is refused whole.
    if return_to.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return ReturnTo::Here("/".to_owned());
    }
    if return_to.starts_with('/') && !return_to.starts_with("//") && !return_to.contains('\\') {
        return ReturnTo::Here(return_to.to_owned());
    }
    let Ok(url) = url::Url::parse(return_to) else { return ReturnTo::Here("/".to_owned()) };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let same_server = url::Url::parse(&state.public_url).ok().is_some_and(|public| {
        public.host_str() == url.host_str() && public.port_or_known_default() == url.port_or_known_default()
    });
    if same_server {
        return ReturnTo::Here(path);
    }
    let under_apps_domain = host.strip_suffix(&state.apps_domain).is_some_and(|prefix| prefix.ends_with('.'));
    if matches!(url.scheme(), "http" | "https") && under_apps_domain && url.username().is_empty() {
        let origin = url.origin().ascii_serialization();
        return ReturnTo::AppHost { origin, host, path };
    }
    // Anywhere else would be an open redirect.
    ReturnTo::Here("/".to_owned())
}

pub(crate) fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub(crate) fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub(crate) fn login_html(
    return_to: &str,
    error: Option<&str>,
    provider: Option<&str>,
    csrf: &str,
) -> axum::response::Html<String> {
    let error = error
        .map(|message| format!("<p class=\"error\" role=\"alert\">{}</p>", escape_html(message)))
        .unwrap_or_default();
    let provider = provider
        .map(|name| {
            format!(
                "<p><a class=\"button\" href=\"/auth/oidc/start?return_to={}\">Sign in with {}</a></p><p>or with a local account:</p>",
                encode(return_to),
                escape_html(name)
            )
        })
        .unwrap_or_default();
    // The web console's stylesheet: the sign-in page is the console's first page.
    axum::response::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · Terrarium</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\"></head>\
         <body><header class=\"top\"><span class=\"brand\">Terrarium</span></header>\
         <main id=\"main\" class=\"narrow\"><h1>Sign in</h1>{error}{provider}<section><form method=\"post\" action=\"/auth/login\">\
         <label for=\"username\">User</label><input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <input type=\"hidden\" name=\"return_to\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\">Sign in</button></form></section></main></body></html>\n",
        escape_html(return_to),
        escape_html(csrf)
    ))
}

/// A posted form, decoded by `serde_urlencoded` (as axum's `Form` does): a field missing or of
/// the wrong shape is a 400 that says which.
pub(crate) fn serde_urlencoded_form<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_urlencoded::from_bytes(body).map_err(|error| {
        failure(StatusCode::BAD_REQUEST, "invalid_request", format!("the sign-in form is incomplete: {error}"), vec![])
    })
}

pub(crate) async fn jwks(State(state): State<Arc<ApiState>>) -> Response {
    Json(state.accounts.tokens.jwks()).into_response()
}

pub(crate) async fn discovery(State(state): State<Arc<ApiState>>) -> Response {
    Json(state.accounts.tokens.discovery()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_form_is_decoded_as_a_form() {
        let form: LoginForm = serde_urlencoded_form(&Bytes::from_static(
            b"username=ana+lee&password=p%26w%3D1&return_to=%2Fconsole&csrf=t",
        ))
        .ok()
        .unwrap();
        assert_eq!((form.username.as_str(), form.password.as_str()), ("ana lee", "p&w=1"));
        assert_eq!((form.return_to.as_deref(), form.csrf.as_deref()), (Some("/console"), Some("t")));
        let missing = serde_urlencoded_form::<LoginForm>(&Bytes::from_static(b"username=ana")).err().unwrap();
        assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
        assert!(missing.1.message.contains("password"), "{}", missing.1.message);
    }
}
