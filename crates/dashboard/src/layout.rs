//! The page shell every console page shares: header, navigation, notices, and the error page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::session::Session;

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    MyApps,
    New,
    Inventory,
    Approvals,
    Policy,
    Spend,
    People,
}

fn shell(title: &str, header: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Terrarium" }
                link rel="stylesheet" href=(crate::assets::url("console.css"));
                script src=(crate::assets::url("console.js")) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to the page" }
                (header)
                main id="main" { (body) }
            }
        }
    }
}

/// A console page for a signed-in user.
pub(crate) fn page(session: &Session, nav: Nav, title: &str, body: Markup) -> Response {
    page_with_status(session, nav, title, StatusCode::OK, body)
}

pub(crate) fn page_with_status(session: &Session, nav: Nav, title: &str, status: StatusCode, body: Markup) -> Response {
    let link = |target: Nav, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[(target == nav).then_some("page")] { (label) } }
        }
    };
    let header = html! {
        header class="top" {
            a class="brand" href="/console" { "Terrarium" }
            nav aria-label="Console" {
                ul {
                    (link(Nav::MyApps, "/console", "My apps"))
                    (link(Nav::New, "/console/new", "New app"))
                    @if session.is_operator() {
                        (link(Nav::Inventory, "/console/inventory", "Inventory"))
                        (link(Nav::Approvals, "/console/approvals", "Approvals"))
                        (link(Nav::Policy, "/console/policy", "Policy"))
                        (link(Nav::Spend, "/console/spend", "Spend"))
                        (link(Nav::People, "/console/people", "People"))
                    }
                }
            }
            form class="signout" method="post" action="/auth/logout" {
                span class="who" { (session.principal.subject) }
                button type="submit" class="link" { "Sign out" }
            }
        }
    };
    (status, Html(shell(title, header, body).into_string())).into_response()
}

/// A refusal or failure as a page: the status, what is wrong and how to fix it.
pub(crate) fn error_page(status: StatusCode, message: &str, details: &[String]) -> Response {
    let heading = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::UNAUTHORIZED => "Sign in first",
        status if status.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    let header = html! { header class="top" { a class="brand" href="/console" { "Terrarium" } } };
    let body = html! {
        h1 { (heading) }
        p class="error" role="alert" { (message) }
        @if !details.is_empty() {
            ul class="problems" { @for detail in details { li { code { (detail) } } } }
        }
        p { a href="/console" { "Back to my apps" } }
    };
    (status, Html(shell(heading, header, body).into_string())).into_response()
}

/// The form token, as the hidden field every console form carries.
pub(crate) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// `?notice=…&revision=…`, set by the redirect after a form.
#[derive(Default, serde::Deserialize)]
pub(crate) struct NoticeQuery {
    pub notice: Option<String>,
    pub revision: Option<i64>,
}

impl NoticeQuery {
    pub(crate) fn shown(&self) -> Markup {
        notice(self.notice.as_deref(), self.revision)
    }
}

/// A notice after a change (`?notice=`): only known words, never text from the address.
pub(crate) fn notice(code: Option<&str>, revision: Option<i64>) -> Markup {
    let text = match code {
        Some("created") => "Your app is live.".to_owned(),
        Some("deployed") => match revision {
            Some(revision) => format!("Revision {revision} is live."),
            None => "The new revision is live.".to_owned(),
        },
        Some("unchanged") => "Nothing changed: the files are the same as the live revision's.".to_owned(),
        Some("pending") => "Your request waits for an operator's approval; the live revision keeps serving.".to_owned(),
        Some("rolled-back") => match revision {
            Some(revision) => format!("Revision {revision} is live again."),
            None => "The earlier revision is live again.".to_owned(),
        },
        Some("secret-set") => "The secret is saved; the app reads the new value from its next request.".to_owned(),
        Some("secret-removed") => "The secret is removed.".to_owned(),
        Some("archived") => "The app is archived with its data: it answers 410 until it is restored.".to_owned(),
        Some("restored") => "The app is back with its data, with a fresh time to live.".to_owned(),
        Some("extended") => "The app's expiry is moved; the new date is shown above.".to_owned(),
        Some("cache-purged") => "The app's cached responses are purged: the next requests run its code.".to_owned(),
        Some("voted") => "Your decision is recorded.".to_owned(),
        Some("exception-added") => "The exception is recorded.".to_owned(),
        Some("exception-removed") => "The exception is withdrawn.".to_owned(),
        Some("role-granted") => "The role is granted.".to_owned(),
        Some("role-revoked") => "The role is revoked.".to_owned(),
        _ => return html! {},
    };
    html! { p class="notice" role="status" { (text) } }
}

/// A time as stored (RFC 3339) shown shorter: `2026-12-05 09:41 UTC`.
pub(crate) fn when(time: &str) -> String {
    match (time.get(..10), time.get(11..16)) {
        (Some(day), Some(clock)) if time.len() >= 16 => format!("{day} {clock} UTC"),
        _ => time.to_owned(),
    }
}

/// A day from a date field (`2027-03-31`) as the RFC 3339 time it starts.
pub(crate) fn day_start(text: &str) -> Option<String> {
    let day = time::Date::parse(text, &time::format_description::well_known::Iso8601::DATE).ok()?;
    Some(format!("{day}T00:00:00Z"))
}

/// A phase as a badge with its colour class.
pub(crate) fn phase_badge(phase: &str) -> Markup {
    let class = match phase {
        phase if phase.starts_with("Active, ") => "badge warn",
        "Active" => "badge ok",
        "Expiring" => "badge warn",
        "Suspended" | "Failed" | "Expired" => "badge bad",
        _ => "badge",
    };
    html! { span class=(class) { (phase) } }
}

/// Bytes in words: `12.3 KiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sizes_read_well() {
        assert_eq!(when("2026-12-05T09:41:07Z"), "2026-12-05 09:41 UTC");
        assert_eq!(when("soon"), "soon");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(day_start("2027-03-31").as_deref(), Some("2027-03-31T00:00:00Z"));
        assert_eq!(day_start("31.03.2027"), None);
        assert_eq!(day_start("2027-02-30"), None);
    }

    #[test]
    fn notices_are_fixed_words_and_errors_are_escaped() {
        assert!(notice(Some("<script>"), None).into_string().is_empty());
        assert!(notice(Some("deployed"), Some(4)).into_string().contains("Revision 4 is live."));
        let page = error_page(StatusCode::FORBIDDEN, "<b>no</b>", &["a<b".to_owned()]);
        assert_eq!(page.status(), StatusCode::FORBIDDEN);
    }
}
