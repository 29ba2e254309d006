//! `/`: where the browser lands; `/console`: "my apps", and for operators what waits for them.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use control_api::ApiState;
use maud::html;

use super::{app_page, live_url, see_other};
use crate::layout::{Nav, NoticeQuery, page, phase_badge, when};
use crate::session::Session;
use crate::{Failure, PageResult};

/// The platform's address opens the console (after signing in).
pub(crate) async fn root(_session: Session) -> Response {
    see_other("/console")
}

pub(crate) async fn home(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    let apps = state.control.visible_apps(&session.principal, None).await.map_err(Failure::from)?;
    let (mine, others): (Vec<_>, Vec<_>) = apps.into_iter().partition(|app| session.owns(&app.owner));
    // Operators land on what waits for them: requests to decide, apps breaking a policy,
    // apps about to expire. The services decide what each list holds.
    let overview = match session.is_operator() {
        true => {
            let pending = state.control.list_approvals(&session.principal, None, Some("pending")).await?;
            let violations = state.control.list_violations(&session.principal, None, None, None).await?;
            let violating: std::collections::HashSet<(String, String)> =
                violations.iter().map(|violation| (violation.namespace.clone(), violation.app.clone())).collect();
            let soon = state.clock.now() + time::Duration::days(30);
            let expiring = mine
                .iter()
                .chain(others.iter())
                .filter(|app| {
                    app.expires_at
                        .as_deref()
                        .and_then(|at| {
                            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
                        })
                        .is_some_and(|at| at <= soon)
                })
                .count();
            Some((pending.len(), violating.len(), expiring, mine.len() + others.len()))
        }
        false => None,
    };
    let title = if overview.is_some() { "Console" } else { "My apps" };
    let body = html! {
        h1 { (title) }
        (query.shown())
        @if let Some((pending, violating, expiring, apps)) = overview {
            section aria-labelledby="waiting" {
                h2 id="waiting" { "Waiting for you" }
                dl class="stats" {
                    div { dt { "Requests to decide" } dd { a href="/console/approvals" { (pending) } } }
                    div { dt { "Apps breaking a policy" } dd { a href="/console/inventory?violations=on" { (violating) } } }
                    div { dt { "Expiring within 30 days" } dd { a href="/console/inventory?expiring=30" { (expiring) } } }
                    div { dt { "Apps you can see" } dd { a href="/console/inventory" { (apps) } } }
                }
                p { a href="/console/policy" { "Policy" } " · " a href="/console/spend" { "Spend" } " · " a href="/console/people" { "People" } }
            }
            h2 { "My apps" }
        }
        @if mine.is_empty() {
            section {
                p { "You have no apps yet. Start from a template: it takes a minute and needs no files on your computer." }
                a class="button" href="/console/new" { "Create an app" }
            }
        } @else {
            p { a class="button" href="/console/new" { "Create an app" } }
            ul class="cards" {
                @for app in &mine {
                    li class="card" {
                        h2 { a href=(app_page(&app.namespace, &app.name)) { (app.name) } }
                        p { (phase_badge(&app.phase)) " in " (app.namespace) ", revision " (app.active_revision) }
                        @if let Some(url) = live_url(&app.urls) {
                            p { a class="live" href=(url) { (url) } }
                        }
                        p class="hint" { "Updated " (when(&app.updated_at)) }
                    }
                }
            }
        }
        @if !others.is_empty() {
            h2 { "Other apps you can see" }
            div class="scroll" {
                table {
                    thead { tr { th { "App" } th { "Namespace" } th { "Owner" } th { "Phase" } } }
                    tbody {
                        @for app in &others {
                            tr {
                                td { a href=(app_page(&app.namespace, &app.name)) { (app.name) } }
                                td { (app.namespace) } td { (app.owner) } td { (phase_badge(&app.phase)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&session, Nav::MyApps, title, body))
}
