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
    let pending = match session.is_operator() {
        true => state.control.list_approvals(&session.principal, None, Some("pending")).await?,
        false => Vec::new(),
    };
    let body = html! {
        h1 { "My apps" }
        (query.shown())
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
        @if session.is_operator() {
            section aria-labelledby="waiting" {
                h2 id="waiting" { "Waiting for you" }
                @if pending.is_empty() {
                    p { "No request waits for approval." }
                } @else {
                    p { a href="/console/approvals" { (pending.len()) " request(s) wait for approval" } }
                }
                p { a href="/console/inventory" { "Every app" } " · " a href="/console/policy" { "Policy" } " · " a href="/console/spend" { "Spend" } }
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
    Ok(page(&session, Nav::MyApps, "My apps", body))
}
