//! Who is signed in (the platform's session cookie), and the checks every form passes.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use control::{Principal, Role};
use control_api::ApiState;
use sha2::{Digest, Sha256};

/// The signed-in user of a console page. Without a valid session cookie the browser is sent
/// to the sign-in page, and back to the page it asked for after.
pub struct Session {
    pub principal: Principal,
    /// This session's form token: a hash of the session token, so it needs no storage, changes
    /// with every sign-in and reveals nothing of the session.
    pub csrf: String,
}

impl Session {
    /// `user:<name>`, the owner a new app of this user gets.
    pub fn owner(&self) -> String {
        format!("user:{}", self.principal.subject)
    }

    /// Whether an app owned by `owner` is this user's (their own, or a group they are in).
    pub fn owns(&self, owner: &str) -> bool {
        match owner.split_once(':') {
            Some(("user", name)) => name == self.principal.subject,
            Some(("group", group)) => self.principal.groups.iter().any(|held| held == group),
            _ => false,
        }
    }

    /// Holds the operator role somewhere (or is a platform admin): the console's operator
    /// pages are shown in the navigation. The services still decide what each page lists.
    pub fn is_operator(&self) -> bool {
        self.principal.roles.iter().any(|(_, role)| *role >= Role::Operator)
    }

    /// The namespaces where the user may create apps (builder or more), `*` left out.
    pub fn builder_namespaces(&self, known: &[String]) -> Vec<String> {
        known.iter().filter(|namespace| self.principal.has_role(namespace, Role::Builder)).cloned().collect()
    }

    /// The token in the address of this session's log streams: not the form token, so an
    /// address that travels (a browser's history) does not carry what forms need.
    pub fn stream_token(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"terrarium console stream token\0");
        hasher.update(self.csrf.as_bytes());
        hex::encode(hasher.finalize())
    }

    /// Whether `token` is this session's form token (compared in constant time).
    pub fn token_matches(&self, token: &str) -> bool {
        constant_time_eq(token.as_bytes(), self.csrf.as_bytes())
    }

    /// A form posted to the console: it must come from this server's own page (the browser's
    /// `Origin` and `Sec-Fetch-Site`) and carry this session's token.
    pub(crate) fn check_form(&self, state: &ApiState, headers: &HeaderMap, token: &str) -> Result<(), crate::Failure> {
        let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
        let fetch_site = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok());
        let own = url::Url::parse(&state.public_url).map(|url| url.origin().ascii_serialization()).unwrap_or_default();
        let foreign_origin = origin.is_some_and(|origin| !origin.eq_ignore_ascii_case(&own));
        let foreign_site = fetch_site.is_some_and(|site| site != "same-origin" && site != "none");
        if foreign_origin || foreign_site {
            return Err(forbidden("this form was sent from another site; use the console's own pages"));
        }
        if !self.token_matches(token) {
            return Err(forbidden(
                "this form has expired (you signed in again since it was opened); go back, reload the page and send it again",
            ));
        }
        Ok(())
    }
}

fn csrf_of(session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"terrarium console form token\0");
    hasher.update(session_token.as_bytes());
    hex::encode(hasher.finalize())
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // aws-lc-rs, the workspace's crypto provider.
    !a.is_empty() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

impl FromRequestParts<Arc<ApiState>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Session, Response> {
        let cookies = parts.headers.get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok());
        for token in gateway::cookies::session_values(cookies, state.secure_cookies) {
            if let Ok(principal) = state.accounts.authenticate(token).await {
                return Ok(Session { principal, csrf: csrf_of(token) });
            }
        }
        // Back to this page after signing in (a form's page, for a form sent after the
        // session ended: the browser's back button still holds what was typed).
        let return_to = match parts.method == axum::http::Method::GET {
            true => parts.uri.path_and_query().map_or("/console", |path| path.as_str()),
            false => parts.uri.path(),
        };
        let encoded: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        let location = format!("/auth/login?return_to={encoded}");
        Err((StatusCode::SEE_OTHER, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".to_owned())])
            .into_response())
    }
}

fn forbidden(message: &str) -> crate::Failure {
    crate::Failure(control_api::failure(StatusCode::FORBIDDEN, "forbidden", message, vec![]))
}

/// A refusal as a small page.
pub(crate) fn refused(status: StatusCode, message: &str) -> Response {
    crate::layout::error_page(status, message, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(roles: &[(&str, Role)], groups: &[&str]) -> Session {
        let principal = Principal {
            subject: "bea".to_owned(),
            groups: groups.iter().map(|group| group.to_string()).collect(),
            roles: roles.iter().map(|(namespace, role)| (namespace.to_string(), *role)).collect(),
        };
        Session { principal, csrf: csrf_of("token") }
    }

    #[test]
    fn the_form_token_is_bound_to_the_session_and_compared_whole() {
        assert_eq!(csrf_of("a"), csrf_of("a"));
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert!(!csrf_of("a").contains('a') || csrf_of("a").len() == 64);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b""), "an empty token never matches");
    }

    #[test]
    fn ownership_and_operator_pages_follow_the_principal() {
        let builder = session(&[("team", Role::Builder)], &["lunch-crew"]);
        assert!(builder.owns("user:bea"));
        assert!(builder.owns("group:lunch-crew"));
        assert!(!builder.owns("user:bob"));
        assert!(!builder.owns("group:finance"));
        assert!(!builder.owns("bea"));
        assert!(!builder.is_operator());
        let known = vec!["team".to_owned(), "other".to_owned()];
        assert_eq!(builder.builder_namespaces(&known), vec!["team".to_owned()]);
        assert!(session(&[("team", Role::Operator)], &[]).is_operator());
        assert!(session(&[("*", Role::Admin)], &[]).is_operator());
    }
}
