//! Responses the platform itself writes: error pages that say what happened and what to do.
//! Internal details never appear here; they go to the log with the request id.

use axum::body::Body;
use deployment::AppKey;
use http::{Response, StatusCode, header};

fn page(status: StatusCode, title: &str, message: &str, request_id: Option<&str>) -> Response<Body> {
    let id_line =
        request_id.map(|id| format!("<p><small>Request id: <code>{id}</code></small></p>")).unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}\
         code{{background:#f3f3f3;padding:0 .2em}}</style></head>\
         <body><h1>{title}</h1><p>{message}</p>{id_line}<p><small>Terrarium</small></p></body></html>\n"
    );
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(id) = request_id {
        response = response.header("x-request-id", id);
    }
    response.body(Body::from(html)).expect("static headers are valid")
}

/// Escapes text for HTML. App and namespace names are validated labels, but keep the habit.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn unknown_app(app: &AppKey, request_id: &str) -> Response<Body> {
    page(
        StatusCode::NOT_FOUND,
        "No such app",
        &format!(
            "No app named <code>{}</code> is deployed in namespace <code>{}</code>. \
             Check the address, or list deployed apps with <code>terrarium apps list</code>.",
            escape(&app.name),
            escape(&app.namespace)
        ),
        Some(request_id),
    )
}

pub fn not_found_in_app(app: &AppKey, path: &str, request_id: &str) -> Response<Body> {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        &format!("The app <code>{}</code> has no page at <code>{}</code>.", escape(&app.to_string()), escape(path)),
        Some(request_id),
    )
}

pub fn function_failed(app: &AppKey, status: u16, request_id: &str) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let what = match status {
        StatusCode::SERVICE_UNAVAILABLE => "The app could not answer within its limits.",
        _ => "The app failed while answering this request.",
    };
    page(
        status,
        "The app had a problem",
        &format!(
            "{what} Its owner can see why with <code>terrarium logs {}</code> and this request id.",
            escape(&app.to_string())
        ),
        Some(request_id),
    )
}

pub fn forbidden(app: &AppKey, owner: &str, request_id: &str) -> Response<Body> {
    page(
        StatusCode::FORBIDDEN,
        "No access",
        &format!(
            "You are signed in, but <code>{}</code> is not shared with you. Ask its owner, <code>{}</code>, for access.",
            escape(&app.to_string()),
            escape(owner)
        ),
        Some(request_id),
    )
}

pub fn sign_in_required(request_id: &str) -> Response<Body> {
    let request_id = (!request_id.is_empty()).then_some(request_id);
    let mut response = page(
        StatusCode::UNAUTHORIZED,
        "Sign in required",
        "This app is only for signed-in users. Send a platform token as <code>Authorization: Bearer …</code>, or open the app in a browser to sign in.",
        request_id,
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"terrarium\""));
    response
}

/// 429 over the app's rate (with `Retry-After` and `RateLimit-*`), 503 when all its
/// concurrency slots are taken.
/// `scope` is what the limits belong to: `growth/lunch` (the app) or `namespace growth`.
pub fn admission_refused(
    scope: &str,
    refusal: &crate::admission::Refusal,
    limits: deployment::Admission,
    request_id: &str,
) -> Response<Body> {
    let (status, title, message, retry_after) = match refusal {
        crate::admission::Refusal::RateLimited { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            format!(
                "<code>{}</code> takes {} requests per second (bursts of {}). Try again in a moment.",
                escape(scope),
                limits.requests_per_second,
                limits.burst
            ),
            retry_after.as_secs_f64().ceil().max(1.0) as u64,
        ),
        crate::admission::Refusal::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            format!(
                "<code>{}</code> is answering {} requests at once, its limit. Try again in a moment.",
                escape(scope),
                limits.concurrency
            ),
            1,
        ),
    };
    let mut response = page(status, title, &message, Some(request_id));
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
    headers.insert("ratelimit-limit", header::HeaderValue::from(limits.burst));
    headers.insert("ratelimit-remaining", header::HeaderValue::from(0u32));
    headers.insert("ratelimit-reset", header::HeaderValue::from(retry_after));
    response
}

/// An app stopped by the platform: its monthly budget (402) or request quota (429) is used up.
pub fn suspended(app: &AppKey, suspension: &crate::Suspension, request_id: &str) -> Response<Body> {
    let status = StatusCode::from_u16(suspension.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let title = match status {
        StatusCode::PAYMENT_REQUIRED => "Budget used up",
        StatusCode::TOO_MANY_REQUESTS => "Monthly quota used up",
        _ => "Suspended",
    };
    let message = format!("<code>{}</code> is stopped: {}", escape(&app.to_string()), escape(&suspension.reason));
    let mut response = page(status, title, &message, Some(request_id));
    if let Some(retry_after) = suspension.retry_after_secs {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
    }
    response
}

/// 410: the app is archived; who can bring it back and how. Its owner is not named: anyone
/// can reach this page, signed in or not, and a private app's owner is not theirs to know.
pub fn archived(app: &AppKey, archived: &crate::ArchivedApp, request_id: &str) -> Response<Body> {
    let day = archived.archived_at.get(..10).unwrap_or(&archived.archived_at);
    let message = format!(
        "<code>{app}</code> was archived on {day}: its time to live ran out, or it was archived by hand. \
         Its code and data are kept. Its owner, or an operator of namespace <code>{namespace}</code>, \
         can bring it back with <code>terrarium apps restore {app}</code>.",
        app = escape(&app.to_string()),
        day = escape(day),
        namespace = escape(&app.namespace),
    );
    page(StatusCode::GONE, "App archived", &message, Some(request_id))
}

pub fn method_not_allowed() -> Response<Body> {
    let mut response =
        page(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "Static files answer GET and HEAD only.", None);
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    response
}

pub fn payload_too_large(limit: usize) -> Response<Body> {
    page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request too large",
        &format!("Request bodies are limited to {limit} bytes."),
        None,
    )
}

pub fn malformed_body() -> Response<Body> {
    let mut response = page(
        StatusCode::BAD_REQUEST,
        "Malformed request",
        "The request body does not match its framing (Content-Length or chunked encoding).",
        None,
    );
    response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    response
}

pub fn redirect(location: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::PERMANENT_REDIRECT)
        .header(header::LOCATION, location)
        .body(Body::empty())
        .expect("a redirect to a validated path is a valid response")
}

pub fn internal_error() -> Response<Body> {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error",
        "Terrarium failed while handling this request. The platform team can find it in the server log.",
        None,
    )
}

pub fn internal_error_with_id(request_id: &str) -> Response<Body> {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error",
        "Terrarium failed while handling this request. The platform team can find it in the server log with this request id.",
        Some(request_id),
    )
}

pub fn overloaded(error: &tower::BoxError) -> Response<Body> {
    if error.is::<tower::timeout::error::Elapsed>() {
        return page(
            StatusCode::GATEWAY_TIMEOUT,
            "Timed out",
            "The request took longer than the platform allows.",
            None,
        );
    }
    let mut response = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "The platform is handling too many requests right now. Try again in a moment.",
        None,
    );
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}
