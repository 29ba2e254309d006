//! The web console: the builder portal and the operator console, served by the platform at `/`
//! and `/console/...`. Pages are rendered on the server (maud, compiled in) over the same
//! service methods the control API calls, so authorization has one code path: a page shows
//! what the services answer and renders their refusals. Nothing here decides who may do what.
//!
//! The session is the platform's sign-in cookie. Every form carries a token derived from the
//! session (CSRF) and must come from this server's own pages (`Origin`, `Sec-Fetch-Site`).
//! Pages open only as top-level pages (`Sec-Fetch-Mode: navigate`), never framed, with a strict
//! Content-Security-Policy and their own browsing context group: path-routed apps share the
//! platform's origin, and their scripts must not be able to read a console page.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use control_api::{ApiFailure, ApiState};

mod assets;
mod charts;
mod layout;
mod manifest_edit;
mod pages;
mod session;

pub use session::Session;

/// The console's routes, merged into the platform router next to the control API.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(pages::home::root))
        .route("/console", get(pages::home::home))
        .route("/console/assets/{file}", get(assets::serve))
        .route("/console/new", get(pages::create::catalog))
        .route("/console/new/{template}", get(pages::create::form).post(pages::create::submit))
        .route("/console/apps/{namespace}/{name}", get(pages::app::show))
        .route("/console/apps/{namespace}/{name}/rollback", post(pages::app::rollback))
        .route("/console/apps/{namespace}/{name}/secrets", post(pages::app::set_secret))
        .route("/console/apps/{namespace}/{name}/secrets/remove", post(pages::app::remove_secret))
        .route("/console/apps/{namespace}/{name}/cache/purge", post(pages::app::purge_cache))
        .route("/console/apps/{namespace}/{name}/extend", post(pages::app::extend))
        .route("/console/apps/{namespace}/{name}/restore", post(pages::app::restore))
        .route("/console/log-stream/{namespace}/{name}", get(pages::app::log_stream))
        .route("/console/apps/{namespace}/{name}/edit", get(pages::editor::show).post(pages::editor::submit))
        .route("/console/apps/{namespace}/{name}/request", get(pages::request::show).post(pages::request::submit))
        .route("/console/inventory", get(pages::operator::inventory))
        .route("/console/approvals", get(pages::operator::approvals))
        .route("/console/approvals/{id}", post(pages::operator::vote))
        .route("/console/policy", get(pages::operator::policy))
        .route("/console/policy/exceptions", post(pages::operator::add_exception))
        .route("/console/policy/exceptions/{id}/remove", post(pages::operator::remove_exception))
        .route("/console/spend", get(pages::operator::spend))
        .route("/console/spend.csv", get(pages::operator::spend_csv))
        .route("/console/people", get(pages::operator::people))
        .route("/console/people/roles", post(pages::operator::change_role))
        .layer(axum::middleware::from_fn(guard))
        .with_state(state)
}

/// The Content-Security-Policy of every console response: the console's own scripts and
/// styles only (no inline script or style), forms post only here, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every console request: refused unless the browser opens it as a page (or loads the
/// console's own assets, or its log stream); every response gets the security headers.
async fn guard(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let is_asset = path.starts_with("/console/assets/");
    // The page's script reads the log stream (`EventSource`); its address carries a token
    // that only the app's page holds. No page route starts like it.
    let is_stream = path.starts_with("/console/log-stream/");
    let mode = request.headers().get("sec-fetch-mode").and_then(|value| value.to_str().ok());
    let dest = request.headers().get("sec-fetch-dest").and_then(|value| value.to_str().ok());
    // Browsers name how a request was made: a script (an app's, on a shared origin) cannot make
    // a navigation, and a page loaded into a frame or an object is not opened by the person.
    // Other clients send neither header.
    let scripted = mode.is_some_and(|mode| mode != "navigate")
        || dest.is_some_and(|dest| matches!(dest, "iframe" | "frame" | "embed" | "object" | "fencedframe"));
    if scripted && !is_asset && !is_stream {
        return session::refused(
            StatusCode::FORBIDDEN,
            "console pages open only as pages in the browser, not from scripts or frames",
        );
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A page's failure: the control API's error (status, message, details) as a page.
pub(crate) struct Failure(pub(crate) ApiFailure);

impl<E: Into<ApiFailure>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure(error.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let error = self.0.error();
        layout::error_page(self.0.status(), &error.message, &error.details)
    }
}

pub(crate) type PageResult = Result<Response, Failure>;

/// A 400 for a form that does not say what it must.
pub(crate) fn bad_form(message: impl Into<String>) -> Failure {
    Failure(control_api::failure(StatusCode::BAD_REQUEST, "invalid_request", message, vec![]))
}
