//! One app: its live address, revisions with rollback, requests, usage and cost, secrets, the
//! live log, egress and (for operators) the audit trail.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use control::Role;
use control_api::ApiState;
use deployment::AppKey;
use futures::StreamExt;
use maud::{Markup, html};
use serde::Deserialize;

use super::{app_page, live_url, see_other};
use crate::charts::{Bar, bars};
use crate::layout::{Nav, NoticeQuery, csrf_field, page, phase_badge, when};
use crate::session::{Session, constant_time_eq, refused};
use crate::{Failure, PageResult, bad_form};

pub(crate) async fn show(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    let principal = &session.principal;
    let app = AppKey::new(&namespace, &name);
    let detail = state.control.app_for(principal, &app).await?;
    let changes = state.control.revision_changes(principal, &app, 20).await?;
    let days = state.control.usage(principal, Some(namespace.clone()), Some(name.clone()), None, None, "day").await?;
    let (cost, currency) = state.budgets.app_cost(&app, None).await.map_err(control::ControlError::from)?;
    let secrets = state.secrets.list_secrets(principal, &namespace, Some(&name)).await?;
    let (log, _) = state.control.app_logs(principal, &app, 50, false).await?;
    let egress = state
        .control
        .list_egress(
            principal,
            metering::store::EgressFilter {
                namespace: Some(namespace.clone()),
                app: Some(name.clone()),
                denied_only: false,
                limit: 20,
            },
        )
        .await?;
    // The audit trail is the namespace operators' to read; others are not offered it.
    let audit = match principal.has_role(&namespace, Role::Operator) {
        true => {
            let filter = control::store::AuditFilter {
                namespace: Some(namespace.clone()),
                app: Some(name.clone()),
                limit: 20,
                ..Default::default()
            };
            Some(state.control.audit_log(principal, filter).await?)
        }
        false => None,
    };
    let summary = &detail.summary;
    let can_change = principal.has_role(&namespace, Role::Operator)
        || (principal.has_role(&namespace, Role::Builder) && session.owns(&summary.owner));

    let requests: u64 = days.iter().map(|day| day.requests).sum();
    let server_errors: u64 = days.iter().map(|day| day.server_errors).sum();
    let client_errors: u64 = days.iter().map(|day| day.client_errors).sum();
    let cpu: f64 = days.iter().fold(0.0, |total, day| total + day.cpu_seconds);
    let cache_hits: u64 = days.iter().map(|day| day.cache_hits).sum();
    let cache_bytes: u64 = days.iter().map(|day| day.cache_bytes_served).sum();
    let error_rate = match requests {
        0 => "no requests yet".to_owned(),
        n => format!("{:.2} %", server_errors as f64 * 100.0 / n as f64),
    };
    let chart: Vec<Bar> = days
        .iter()
        .map(|day| Bar {
            label: day.start.get(5..10).unwrap_or(&day.start).to_owned(),
            total: day.requests,
            bad: day.server_errors,
        })
        .collect();
    let stream = format!("/console/log-stream/{namespace}/{name}?token={}", session.stream_token());

    let body = html! {
        p class="hint" { a href="/console" { "My apps" } " / " (namespace) }
        h1 { (name) " " (phase_badge(&summary.phase)) }
        (query.shown())
        @if let Some(url) = live_url(&summary.urls) {
            p { "Live at " a class="live" id="live-url" href=(url) { (url) } }
        }
        @if let Some(description) = &detail.description { p { (description) } }
        dl class="stats" {
            div { dt { "Owner" } dd { (summary.owner) } }
            div { dt { "Runtime" } dd { (summary.runtime) } }
            div { dt { "Revision" } dd { (summary.active_revision) } }
            div { dt { "Updated" } dd { (when(&summary.updated_at)) } }
            @if let Some(expires) = &summary.expires_at {
                div { dt { "Expires" } dd { (when(expires)) } }
            }
        }
        @if can_change {
            p {
                a class="button" href=(format!("{}/edit", app_page(&namespace, &name))) { "Edit files" }
                a class="button secondary" href=(format!("{}/request", app_page(&namespace, &name))) { "Ask for more access" }
            }
        }

        @if !detail.pending_approvals.is_empty() {
            section aria-labelledby="requests" {
                h2 id="requests" { "Requests waiting for approval" }
                @for request in &detail.pending_approvals {
                    p { "Request " (request.id) " by " (request.requested_by) ", " (when(&request.requested_at)) ": " span class="badge warn" { (request.state) } }
                    ul { @for asked in &request.requests { li { (asked.message) } } }
                    p class="hint" { (request.votes.len()) " of " (request.required) " approval(s); decided by " (when(&request.expires_at)) " at the latest." }
                }
            }
        }

        section aria-labelledby="usage" {
            h2 id="usage" { "Use this month" }
            dl class="stats" {
                div { dt { "Requests" } dd { (requests) } }
                div { dt { "Server errors" } dd { (error_rate) } }
                div { dt { "Refused requests (4xx)" } dd { (client_errors) } }
                div { dt { "CPU" } dd { (format!("{cpu:.2} s")) } }
                div { dt { "Served from cache" } dd { @match requests {
                    0 => "no requests yet",
                    n => (format!("{cache_hits} ({:.0} %), {}", cache_hits as f64 * 100.0 / n as f64, crate::layout::bytes(cache_bytes))),
                } } }
                div { dt { "Cost" } dd { (format!("{cost:.4} {currency}")) } }
            }
            @if requests > 0 {
                (bars("Requests per day this month, failed ones in red", &chart))
            }
            @if let Some(slo) = &detail.slo {
                h3 { "Service level" }
                ul { @for objective in &slo.objectives {
                    li {
                        strong { (objective.name) } ": " (objective.target) "; last hour "
                        (objective.good_percent_1h.map_or_else(|| "no traffic".to_owned(), |good| format!("{good:.2} %")))
                        ", last 6 hours "
                        (objective.good_percent_6h.map_or_else(|| "no traffic".to_owned(), |good| format!("{good:.2} %")))
                        " "
                        span class=(if objective.alert == "ok" { "badge ok" } else { "badge bad" }) { (objective.alert.replace('_', " ")) }
                    }
                } }
            }
        }

        section aria-labelledby="revisions" {
            h2 id="revisions" { "Revisions" }
            div class="scroll" { table {
                thead { tr { th { "Revision" } th { "When" } th { "By" } th { "What changed" } th { span class="hint" { "Action" } } } }
                tbody {
                    @for revision in &detail.revisions {
                        @let changed = changes.iter().find(|change| change.revision == revision.revision);
                        tr {
                            td { (revision.revision) @if revision.active { " " span class="badge ok" { "live" } } }
                            td { (when(&revision.created_at)) }
                            td { (revision.created_by) }
                            td { (changed.map_or_else(|| format!("{} files", revision.n_files), |change| change.summary())) }
                            td {
                                @if !revision.active && can_change {
                                    form class="inline" method="post" action=(format!("{}/rollback", app_page(&namespace, &name)))
                                        data-confirm=(format!("Make revision {} live again?", revision.revision)) {
                                        (csrf_field(&session))
                                        input type="hidden" name="revision" value=(revision.revision);
                                        button type="submit" class="secondary" { "Make live" }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }

        @if can_change && summary.phase == "Archived" {
            section aria-labelledby="lifetime" {
                h2 id="lifetime" { "Lifetime" }
                p { "This app is archived: it answers 410, and its code and data are kept in its archive." }
                form class="inline" method="post" action=(format!("{}/restore", app_page(&namespace, &name))) {
                    (csrf_field(&session))
                    button type="submit" { "Restore with its data" }
                }
            }
        } @else if let (true, Some(expires)) = (can_change, &summary.expires_at) {
            section aria-labelledby="lifetime" {
                h2 id="lifetime" { "Lifetime" }
                p class="hint" {
                    "This app expires " (when(expires)) " unless it is extended or a new revision is published. "
                    "Say why it is still needed; the reason is kept in the audit log."
                }
                form class="inline" method="post" action=(format!("{}/extend", app_page(&namespace, &name))) {
                    (csrf_field(&session))
                    label { "Days to add" input type="number" name="days" min="1" max="3650" value="30" required; }
                    label { "Why it is still needed" input type="text" name="reason" maxlength="1000" required; }
                    button type="submit" { "Extend" }
                }
            }
        }

        @if can_change && state.cache.is_some() {
            section aria-labelledby="cache" {
                h2 id="cache" { "Cache" }
                p class="hint" {
                    "Responses marked Cache-Control: public with a lifetime are served from the cache until it ends; "
                    "a deploy purges them. Purge them now after changing data the app shows."
                }
                form class="inline" method="post" action=(format!("{}/cache/purge", app_page(&namespace, &name)))
                    data-confirm="Purge every cached response of this app?" {
                    (csrf_field(&session))
                    button type="submit" class="secondary" { "Purge cached responses" }
                }
            }
        }

        section aria-labelledby="secrets" {
            h2 id="secrets" { "Secrets" }
            p class="hint" { "Values are never shown again once saved. The app reads them as env.NAME." }
            @if secrets.is_empty() { p { "No secrets." } } @else {
                div class="scroll" { table {
                    thead { tr { th { "Name" } th { "Version" } th { "Set" } th { "Expires" } th { "Last read" } th { span class="hint" { "Action" } } } }
                    tbody { @for secret in &secrets {
                        tr {
                            td { code { (secret.name) } @if let Some(reason) = &secret.rotation_reason { br; span class="badge warn" { "rotate: " (reason) } } }
                            td { (secret.version) }
                            td { (when(&secret.created_at)) " by " (secret.created_by) }
                            td { (secret.expires_at.as_deref().map(when).unwrap_or_else(|| "never".to_owned())) }
                            td { (secret.last_read_at.as_deref().map(when).unwrap_or_else(|| "not yet".to_owned())) }
                            td { @if can_change {
                                form class="inline" method="post" action=(format!("{}/secrets/remove", app_page(&namespace, &name)))
                                    data-confirm=(format!("Remove the secret {}?", secret.name)) {
                                    (csrf_field(&session))
                                    input type="hidden" name="name" value=(secret.name);
                                    button type="submit" class="danger" { "Remove" }
                                }
                            } }
                        }
                    } }
                } }
            }
            @if can_change {
                form method="post" action=(format!("{}/secrets", app_page(&namespace, &name))) autocomplete="off" {
                    (csrf_field(&session))
                    label for="secret-name" { "Name" span class="hint" { "Capital letters, digits and _, like API_TOKEN. An existing name gets a new version (rotation)." } }
                    input type="text" id="secret-name" name="name" required pattern="[A-Z][A-Z0-9_]*" maxlength="64";
                    label for="secret-value" { "Value" }
                    input type="password" id="secret-value" name="value" required autocomplete="new-password";
                    label for="secret-expires" { "Expires on (optional)" }
                    input type="date" id="secret-expires" name="expires";
                    button type="submit" { "Save secret" }
                }
            }
        }

        section aria-labelledby="log" {
            h2 id="log" { "Log " span id="log-state" class="badge" { "recent" } }
            ol class="log" data-stream=(stream) aria-live="off" {
                @for entry in &log { li class=(entry.level) { (entry.time.get(11..19).unwrap_or(&entry.time)) " " (entry.level) " " (entry.message) } }
            }
            @if log.is_empty() { p class="hint" { "Nothing logged yet; lines appear here as the app writes them (console.log)." } }
        }

        section aria-labelledby="egress" {
            h2 id="egress" { "Outbound calls" }
            @if egress.is_empty() { p { "The app has called no other service." } } @else {
                div class="scroll" { table {
                    thead { tr { th { "When" } th { "Call" } th { "Decision" } th { "Status" } } }
                    tbody { @for call in &egress {
                        tr { td { (when(&call.time)) } td { (call.method) " " (call.host) } td { (call.decision) } td { (call.status.map(|status| status.to_string()).unwrap_or_default()) } }
                    } }
                } }
            }
        }

        (governance(&detail))

        @if let Some(events) = &audit {
            section aria-labelledby="audit" {
                h2 id="audit" { "Audit trail" }
                div class="scroll" { table {
                    thead { tr { th { "When" } th { "Who" } th { "What" } th { "Outcome" } th { "Detail" } } }
                    tbody { @for event in events {
                        tr { td { (when(&event.time)) } td { (event.principal) } td { (event.action) } td { (event.outcome) } td { (event.detail) } }
                    } }
                } }
            }
        }
    };
    Ok(page(&session, Nav::MyApps, &name, body))
}

/// Policy violations and active exceptions of the app.
fn governance(detail: &api_types::AppDetail) -> Markup {
    html! {
        section aria-labelledby="policy" {
            h2 id="policy" { "Policies" }
            @if detail.violations.is_empty() { p { "The last check found nothing against the platform's policies." } } @else {
                ul { @for violation in &detail.violations {
                    li { strong { (violation.violation.policy) } " (" (format!("{:?}", violation.violation.mode).to_lowercase()) "): " (violation.violation.message) }
                } }
            }
            @if !detail.exceptions.is_empty() {
                h3 { "Exceptions" }
                ul { @for exception in &detail.exceptions {
                    li { (exception.policy) ": " (exception.reason) " (by " (exception.granted_by) ", until " (when(&exception.expires_at)) ")" }
                } }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RollbackForm {
    #[serde(default)]
    csrf: String,
    revision: Option<i64>,
}

pub(crate) async fn rollback(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<RollbackForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    let revision = form.revision.ok_or_else(|| bad_form("say which revision to make live"))?;
    state.control.rollback(&session.principal, &AppKey::new(&namespace, &name), Some(revision)).await?;
    Ok(see_other(&format!("{}?notice=rolled-back&revision={revision}", app_page(&namespace, &name))))
}

#[derive(Deserialize)]
pub(crate) struct ExtendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    reason: String,
}

/// The archived app brought back with its data (as `terrarium apps restore`).
pub(crate) async fn restore(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<PurgeForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    state.control.restore_app(&session.principal, &AppKey::new(&namespace, &name)).await?;
    Ok(see_other(&format!("{}?notice=restored", app_page(&namespace, &name))))
}

/// The app's expiry moved later (as `terrarium apps extend`), audited as `app.extend`.
pub(crate) async fn extend(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<ExtendForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    let days = form.days.trim().parse::<u32>().map_err(|_| bad_form("days must be a whole number, like 30"))?;
    let request = api_types::ExtendRequest { days, reason: form.reason };
    state.control.extend_app(&session.principal, &AppKey::new(&namespace, &name), &request).await?;
    Ok(see_other(&format!("{}?notice=extended", app_page(&namespace, &name))))
}

#[derive(Deserialize)]
pub(crate) struct PurgeForm {
    #[serde(default)]
    csrf: String,
}

/// The app's cached responses, purged (as `terrarium cache purge`), audited as `cache.purge`.
pub(crate) async fn purge_cache(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<PurgeForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    let app = AppKey::new(&namespace, &name);
    state.control.authorize_app_data(&session.principal, &app, control::Action::CachePurge).await?;
    if let Some(cache) = &state.cache {
        cache.purge_app(&app);
    }
    Ok(see_other(&format!("{}?notice=cache-purged", app_page(&namespace, &name))))
}

#[derive(Deserialize)]
pub(crate) struct SecretForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    /// `YYYY-MM-DD`, or empty.
    #[serde(default)]
    expires: String,
}

pub(crate) async fn set_secret(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<SecretForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    let expires_at = match form.expires.trim() {
        "" => None,
        day => match crate::layout::day_start(day) {
            Some(start) => Some(start),
            None => return Err(bad_form("the expiry date must be a day like 2027-03-31")),
        },
    };
    let set = api_types::SetSecret { value: form.value, expires_at };
    state.secrets.set_secret(&session.principal, &AppKey::new(&namespace, &name), form.name.trim(), set).await?;
    Ok(see_other(&format!("{}?notice=secret-set", app_page(&namespace, &name))))
}

#[derive(Deserialize)]
pub(crate) struct RemoveSecretForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

pub(crate) async fn remove_secret(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<RemoveSecretForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    state.secrets.remove_secret(&session.principal, &AppKey::new(&namespace, &name), &form.name).await?;
    Ok(see_other(&format!("{}?notice=secret-removed", app_page(&namespace, &name))))
}

#[derive(Deserialize)]
pub(crate) struct StreamQuery {
    #[serde(default)]
    token: String,
}

/// The app's log as server-sent events, for the page's script. The address carries the
/// session's form token: another page's script on this origin cannot know it.
pub(crate) async fn log_stream(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<StreamQuery>,
) -> Result<Response, Failure> {
    let expected = session.stream_token();
    if query.token.len() != expected.len() || !constant_time_eq(query.token.as_bytes(), expected.as_bytes()) {
        return Ok(refused(axum::http::StatusCode::FORBIDDEN, "open the log from the app's page"));
    }
    let app = AppKey::new(&namespace, &name);
    let (_, live) = state.control.app_logs(&session.principal, &app, 0, true).await?;
    let receiver = live.expect("following asks for the live feed");
    let events = tokio_stream::wrappers::BroadcastStream::new(receiver).filter_map(move |item| {
        let event = match item {
            Ok((key, entry)) if key == app => Event::default().json_data(&entry).ok(),
            Ok(_) => None,
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                let entry = api_types::LogEntry {
                    time: control::now(),
                    namespace: String::new(),
                    app: String::new(),
                    request_id: String::new(),
                    level: "warn".to_owned(),
                    message: format!("{n} lines were skipped because the page fell behind"),
                };
                Event::default().json_data(&entry).ok()
            }
        };
        futures::future::ready(event.map(Ok::<_, Infallible>))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}
