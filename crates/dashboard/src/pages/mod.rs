//! The console's pages, one module per area.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(crate) mod app;
pub(crate) mod create;
pub(crate) mod editor;
pub(crate) mod home;
pub(crate) mod operator;
pub(crate) mod request;

/// After a form: 303 to the page that shows the result.
pub(crate) fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response()
}

/// A console page's address for an app.
pub(crate) fn app_page(namespace: &str, name: &str) -> String {
    format!("/console/apps/{namespace}/{name}")
}

/// The address to open the app at: its own host (the last of its addresses), where it does
/// not share an origin with the platform or other apps.
pub(crate) fn live_url(urls: &[String]) -> Option<&str> {
    urls.last().map(String::as_str)
}

/// A service's refusal as a form's problems: its status, its message and every detail.
pub(crate) fn problems_of(error: impl Into<control_api::ApiFailure>) -> (StatusCode, Vec<String>) {
    let failure = error.into();
    let mut problems = vec![failure.error().message.clone()];
    problems.extend(failure.error().details.iter().cloned());
    (failure.status(), problems)
}

/// After a deploy of an existing app: its page, saying what became of the revision.
pub(crate) fn deployed_page(namespace: &str, name: &str, deployed: &api_types::DeployResponse) -> Response {
    let notice = match (&deployed.pending_approval, deployed.changed) {
        (Some(_), _) => "notice=pending".to_owned(),
        (None, true) => format!("notice=deployed&revision={}", deployed.revision),
        (None, false) => "notice=unchanged".to_owned(),
    };
    see_other(&format!("{}?{notice}", app_page(namespace, name)))
}
