//! The operator console: every app with filters, the approvals queue, policy status with
//! violations and exceptions, spend and chargeback, people and roles.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use control::{Action, Role};
use control_api::ApiState;
use maud::html;
use serde::Deserialize;

use super::{app_page, see_other};
use crate::layout::{Nav, NoticeQuery, csrf_field, page, phase_badge, when};
use crate::session::Session;
use crate::{Failure, PageResult, bad_form};

/// `?namespace=&owner=&phase=&runtime=&data_class=&expiring=&violations=&q=`
#[derive(Default, Deserialize)]
pub(crate) struct InventoryFilter {
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    runtime: String,
    #[serde(default)]
    data_class: String,
    /// Days: apps that expire within this many days.
    #[serde(default)]
    expiring: String,
    /// `on`: only apps with policy violations.
    #[serde(default)]
    violations: String,
    /// Words found in the name, namespace or owner.
    #[serde(default)]
    q: String,
}

pub(crate) async fn inventory(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Query(filter): Query<InventoryFilter>,
) -> PageResult {
    let principal = &session.principal;
    state.control.authorize_operator_console(principal, Action::AppList).await?;
    let apps = state.control.visible_apps(principal, None).await?;
    let violations = state.control.list_violations(principal, None, None, None).await?;
    let mut violating: HashMap<(String, String), usize> = HashMap::new();
    for violation in &violations {
        *violating.entry((violation.namespace.clone(), violation.app.clone())).or_default() += 1;
    }
    let now = state.clock.now();
    let expiring_days: Option<i64> = filter.expiring.trim().parse().ok();
    let words: Vec<String> = filter.q.split_whitespace().map(str::to_lowercase).collect();
    let choices = |values: Vec<&str>| {
        let mut values: Vec<String> =
            values.into_iter().map(str::to_owned).collect::<HashSet<_>>().into_iter().collect();
        values.sort();
        values
    };
    let namespaces = choices(apps.iter().map(|app| app.namespace.as_str()).collect());
    let phases = choices(apps.iter().map(|app| app.phase.as_str()).collect());
    let runtimes = choices(apps.iter().map(|app| app.runtime.as_str()).collect());
    let classes = choices(apps.iter().filter_map(|app| app.data_class.as_deref()).collect());
    let shown: Vec<_> = apps
        .iter()
        .filter(|app| filter.namespace.is_empty() || app.namespace == filter.namespace)
        .filter(|app| filter.owner.trim().is_empty() || app.owner.contains(filter.owner.trim()))
        .filter(|app| filter.phase.is_empty() || app.phase == filter.phase)
        .filter(|app| filter.runtime.is_empty() || app.runtime == filter.runtime)
        .filter(|app| filter.data_class.is_empty() || app.data_class.as_deref() == Some(filter.data_class.as_str()))
        .filter(|app| {
            expiring_days.is_none_or(|days| {
                app.expires_at.as_deref().and_then(parse_time).is_some_and(|at| at <= now + time::Duration::days(days))
            })
        })
        .filter(|app| filter.violations != "on" || violating.contains_key(&(app.namespace.clone(), app.name.clone())))
        .filter(|app| {
            let text = format!("{} {} {}", app.name, app.namespace, app.owner).to_lowercase();
            words.iter().all(|word| text.contains(word))
        })
        .collect();
    let select = |name: &str, label: &str, values: &[String], chosen: &str| {
        html! {
            label { (label)
                select name=(name) {
                    option value="" { "any" }
                    @for value in values { option value=(value) selected[value == chosen] { (value) } }
                }
            }
        }
    };
    let body = html! {
        h1 { "Inventory" }
        form class="filters" method="get" action="/console/inventory" role="search" {
            label { "Search" input type="search" name="q" value=(filter.q) placeholder="name, namespace or owner"; }
            (select("namespace", "Namespace", &namespaces, &filter.namespace))
            label { "Owner" input type="text" name="owner" value=(filter.owner) placeholder="user:… or group:…"; }
            (select("phase", "Phase", &phases, &filter.phase))
            (select("runtime", "Runtime", &runtimes, &filter.runtime))
            (select("data_class", "Data class", &classes, &filter.data_class))
            label { "Expiring within (days)" input type="number" name="expiring" min="0" value=(filter.expiring); }
            label { input type="checkbox" name="violations" value="on" checked[filter.violations == "on"]; " With violations" }
            button type="submit" { "Filter" }
        }
        p { (shown.len()) " of " (apps.len()) " apps" }
        div class="scroll" { table {
            thead { tr { th { "App" } th { "Namespace" } th { "Owner" } th { "Phase" } th { "Runtime" } th { "Data class" } th { "Expires" } th { "Violations" } } }
            tbody { @for app in &shown {
                tr {
                    td { a href=(app_page(&app.namespace, &app.name)) { (app.name) } }
                    td { (app.namespace) } td { (app.owner) } td { (phase_badge(&app.phase)) } td { (app.runtime) }
                    td { (app.data_class.as_deref().unwrap_or("-")) }
                    td { (app.expires_at.as_deref().map(when).unwrap_or_else(|| "-".to_owned())) }
                    td { (violating.get(&(app.namespace.clone(), app.name.clone())).copied().unwrap_or(0)) }
                }
            } }
        } }
    };
    Ok(page(&session, Nav::Inventory, "Inventory", body))
}

fn parse_time(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

pub(crate) async fn approvals(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    let principal = &session.principal;
    state.control.authorize_operator_console(principal, Action::ApprovalList).await?;
    let requests = state.control.list_approvals(principal, None, Some("all")).await?;
    let (pending, decided): (Vec<_>, Vec<_>) = requests.into_iter().partition(|request| request.state == "pending");
    let body = html! {
        h1 { "Approvals" }
        (query.shown())
        @if pending.is_empty() { p { "Nothing waits for approval." } }
        @for request in &pending {
            section aria-labelledby=(format!("request-{}", request.id)) {
                h2 id=(format!("request-{}", request.id)) {
                    "Request " (request.id) ": " a href=(app_page(&request.namespace, &request.app)) { (request.namespace) "/" (request.app) }
                }
                p { "Asked by " strong { (request.requested_by) } " on " (when(&request.requested_at)) "; denied automatically at " (when(&request.expires_at)) " if undecided." }
                h3 { "It asks for" }
                ul { @for item in &request.requests { li { strong { (item.policy) } ": " (item.message) } } }
                h3 { "Why" }
                p { (request.justification.as_deref().unwrap_or("No reason given.")) }
                p { (request.votes.iter().filter(|vote| vote.decision == "approve").count()) " of " (request.required) " approval(s)"
                    @if !request.approvers.is_empty() { "; approvers: " (request.approvers.join(", ")) } }
                @if !request.votes.is_empty() {
                    ul { @for vote in &request.votes { li { (vote.approver) " " (vote.decision) ": " (vote.reason) } } }
                }
                form method="post" action=(format!("/console/approvals/{}", request.id)) {
                    (csrf_field(&session))
                    label for=(format!("reason-{}", request.id)) { "Your reason" span class="hint" { "Required; it is recorded and the requester sees it." } }
                    textarea id=(format!("reason-{}", request.id)) name="reason" rows="2" required {}
                    button type="submit" name="decision" value="approve" { "Approve" }
                    button type="submit" name="decision" value="deny" class="danger" { "Deny" }
                }
            }
        }
        h2 { "Decided" }
        @if decided.is_empty() { p { "None yet." } } @else {
            div class="scroll" { table {
                thead { tr { th { "Request" } th { "App" } th { "Asked by" } th { "State" } th { "Outcome" } } }
                tbody { @for request in decided.iter().take(50) {
                    tr { td { (request.id) } td { (request.namespace) "/" (request.app) } td { (request.requested_by) } td { (request.state) } td { (request.outcome.as_deref().unwrap_or("")) } }
                } }
            } }
        }
    };
    Ok(page(&session, Nav::Approvals, "Approvals", body))
}

#[derive(Deserialize)]
pub(crate) struct VoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn vote(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Form(form): Form<VoteForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(bad_form("choose Approve or Deny")),
    };
    state.control.vote(&session.principal, id, approve, &form.reason).await?;
    Ok(see_other("/console/approvals?notice=voted"))
}

pub(crate) async fn policy(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    let principal = &session.principal;
    state.control.authorize_operator_console(principal, Action::PolicyStatus).await?;
    let status = state.control.policy_status();
    let violations = state.control.list_violations(principal, None, None, None).await?;
    let exceptions = state.control.list_exceptions(principal, None).await?;
    let body = html! {
        h1 { "Policy" }
        (query.shown())
        section {
            h2 { "Policies in force" }
            p { "Version " code { (status.version) } " from " (status.source) ", loaded " (when(&status.loaded_at)) "." }
            @if let Some(error) = &status.reload_error { p class="error" { "The last reload failed: " (error) } }
            p { "Last check of every app: " (status.last_audit.as_deref().map(when).unwrap_or_else(|| "not yet".to_owned())) " (" (status.audited_apps) " apps)." }
            ul { @for (policy, mode) in &status.modes { li { (policy) ": " (format!("{mode:?}").to_lowercase()) } } }
        }
        section {
            h2 { "Violations" }
            @if violations.is_empty() { p { "No app breaks a policy." } } @else {
                div class="scroll" { table {
                    thead { tr { th { "App" } th { "Policy" } th { "Mode" } th { "What" } th { "Since" } } }
                    tbody { @for violation in &violations {
                        tr {
                            td { a href=(app_page(&violation.namespace, &violation.app)) { (violation.namespace) "/" (violation.app) } }
                            td { (violation.violation.policy) } td { (format!("{:?}", violation.violation.mode).to_lowercase()) }
                            td { (violation.violation.message) } td { (when(&violation.first_seen)) }
                        }
                    } }
                } }
            }
        }
        section {
            h2 { "Exceptions" }
            @if exceptions.is_empty() { p { "No exceptions." } } @else {
                div class="scroll" { table {
                    thead { tr { th { "App" } th { "Policy" } th { "Reason" } th { "Granted" } th { "Until" } th { span class="hint" { "Action" } } } }
                    tbody { @for exception in &exceptions {
                        tr {
                            td { (exception.namespace) "/" (exception.app) } td { (exception.policy) } td { (exception.reason) }
                            td { (exception.granted_by) ", " (when(&exception.granted_at)) }
                            td { (when(&exception.expires_at)) @if !exception.active { " " span class="badge" { "ended" } } }
                            td { @if exception.active {
                                form class="inline" method="post" action=(format!("/console/policy/exceptions/{}/remove", exception.id)) data-confirm="Withdraw this exception?" {
                                    (csrf_field(&session))
                                    button type="submit" class="secondary" { "Withdraw" }
                                }
                            } }
                        }
                    } }
                } }
            }
            h3 { "Add an exception" }
            form method="post" action="/console/policy/exceptions" {
                (csrf_field(&session))
                label for="ex-namespace" { "Namespace" } input type="text" id="ex-namespace" name="namespace" required;
                label for="ex-app" { "App" } input type="text" id="ex-app" name="app" required;
                label for="ex-policy" { "Policy" }
                select id="ex-policy" name="policy" required { @for policy in status.modes.keys() { option value=(policy) { (policy) } } }
                label for="ex-reason" { "Reason" } textarea id="ex-reason" name="reason" rows="2" required {}
                label for="ex-expires" { "Until" span class="hint" { "Exceptions always end." } } input type="date" id="ex-expires" name="expires" required;
                button type="submit" { "Add the exception" }
            }
        }
    };
    Ok(page(&session, Nav::Policy, "Policy", body))
}

#[derive(Deserialize)]
pub(crate) struct ExceptionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    expires: String,
}

pub(crate) async fn add_exception(
    State(state): State<Arc<ApiState>>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<ExceptionForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    let Some(expires_at) = crate::layout::day_start(form.expires.trim()) else {
        return Err(bad_form("the end date must be a day like 2027-03-31"));
    };
    let request = api_types::policy::NewPolicyException {
        namespace: form.namespace.trim().to_owned(),
        app: form.app.trim().to_owned(),
        policy: form.policy,
        reason: form.reason,
        expires_at,
    };
    state.control.add_exception(&session.principal, request).await?;
    Ok(see_other("/console/policy?notice=exception-added"))
}

#[derive(Deserialize)]
pub(crate) struct PlainForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn remove_exception(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Form(form): Form<PlainForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    state.control.remove_exception(&session.principal, id).await?;
    Ok(see_other("/console/policy?notice=exception-removed"))
}

#[derive(Deserialize)]
pub(crate) struct SpendQuery {
    month: Option<String>,
    #[serde(default)]
    by: String,
}

pub(crate) async fn spend(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Query(query): Query<SpendQuery>,
) -> PageResult {
    let principal = &session.principal;
    state.control.authorize_platform_read(principal, Action::ChargebackRead, "spend").await?;
    let month = query.month.as_deref().filter(|month| !month.is_empty());
    let by_namespace = state.budgets.chargeback(month, false).await.map_err(control::ControlError::from)?;
    let by_owner = state.budgets.chargeback(month, true).await.map_err(control::ControlError::from)?;
    state.control.audit_read(principal, Action::ChargebackRead, None).await;
    let notifications = match principal.is_platform_admin() {
        true => Some(state.notifier.recent(50).await.map_err(control::ControlError::from)?),
        false => None,
    };
    let month_query = month.map(|month| format!("&month={month}")).unwrap_or_default();
    let budgets = &state.budgets;
    let table = |title: &str, by: &str, rows: &[metering::budgets::ChargebackRow]| {
        let total: f64 = rows.iter().map(|row| row.cost).sum();
        let saved: f64 = rows.iter().map(|row| row.saved_by_cache).sum();
        let currency = rows.first().map(|row| row.currency.as_str()).unwrap_or("");
        let by_owner = by == "owner";
        html! {
            section {
                h2 { (title) }
                p { a href=(format!("/console/spend.csv?by={by}{month_query}")) { "Download as CSV" } }
                div class="scroll" { table {
                    thead { tr { th { (if by_owner { "Owner" } else { "Namespace" }) } th { "Apps" } th { "Requests" } th { "CPU s" } th { "Sent" } th { "Cost" } th { "From cache" } th { "Budget" } } }
                    tbody {
                        @for row in rows {
                            @let budget = budgets.budget_for(by_owner, &row.key);
                            tr { td { (row.key) } td { (row.apps) } td { (row.requests) } td { (format!("{:.2}", row.cpu_seconds)) }
                                 td { (crate::layout::bytes(row.bytes_out)) } td { (format!("{:.4} {}", row.cost, row.currency)) }
                                 td { (row.cache_hits) " requests, saved " (format!("{:.4} {}", row.saved_by_cache, row.currency)) }
                                 td { @match budget {
                                     Some(amount) if amount > 0.0 => {
                                         @let used = row.cost / amount * 100.0;
                                         (format!("{amount:.2} {} ", row.currency))
                                         span class=(if used >= 100.0 { "badge bad" } else if used >= 80.0 { "badge warn" } else { "badge ok" }) { (format!("{used:.0} % used")) }
                                     }
                                     _ => "none",
                                 } } }
                        }
                        tr { th { "Total" } td {} td {} td {} td {} th { (format!("{total:.4} {currency}")) } th { "saved " (format!("{saved:.4} {currency}")) } td {} }
                    }
                } }
            }
        }
    };
    let body = html! {
        h1 { "Spend" }
        form class="filters" method="get" action="/console/spend" {
            label { "Month" input type="text" name="month" value=(month.unwrap_or("")) placeholder="YYYY-MM (this month)" pattern="[0-9]{4}-[0-9]{2}"; }
            button type="submit" { "Show" }
        }
        (table("By namespace", "namespace", &by_namespace))
        (table("By owner", "owner", &by_owner))
        @if let Some(sent) = &notifications {
            section {
                h2 { "Notifications sent" }
                @if sent.is_empty() { p { "None yet." } } @else {
                    div class="scroll" { table {
                        thead { tr { th { "When" } th { "To" } th { "Subject" } th { "Status" } } }
                        tbody { @for row in sent {
                            tr { td { (when(&row.time)) } td { (row.channel) ": " (row.target) } td { (row.subject) } td { (row.status) @if let Some(error) = &row.error { " (" (error) ")" } } }
                        } }
                    } }
                }
            }
        }
    };
    Ok(page(&session, Nav::Spend, "Spend", body))
}

/// The chargeback as CSV for spreadsheets and finance systems.
pub(crate) async fn spend_csv(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Query(query): Query<SpendQuery>,
) -> Result<Response, Failure> {
    let principal = &session.principal;
    state.control.authorize_platform_read(principal, Action::ChargebackRead, "spend").await?;
    let by_owner = match query.by.as_str() {
        "" | "namespace" => false,
        "owner" => true,
        _ => return Err(bad_form("by must be namespace or owner")),
    };
    let month = query.month.as_deref().filter(|month| !month.is_empty());
    let rows = state.budgets.chargeback(month, by_owner).await.map_err(control::ControlError::from)?;
    state.control.audit_read(principal, Action::ChargebackRead, None).await;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let key = if by_owner { "owner" } else { "namespace" };
    let write = |writer: &mut csv::Writer<Vec<u8>>, record: &[String]| {
        writer.write_record(record).map_err(|error| Failure(control_api::internal(&format!("writing CSV: {error}"))))
    };
    let columns =
        [key, "apps", "requests", "cpu_seconds", "bytes_out", "cost", "currency", "cache_hits", "saved_by_cache"];
    write(&mut writer, &columns.map(str::to_owned))?;
    for row in rows {
        write(
            &mut writer,
            &[
                row.key,
                row.apps.to_string(),
                row.requests.to_string(),
                format!("{:.6}", row.cpu_seconds),
                row.bytes_out.to_string(),
                format!("{:.6}", row.cost),
                row.currency,
                row.cache_hits.to_string(),
                format!("{:.6}", row.saved_by_cache),
            ],
        )?;
    }
    let body = writer.into_inner().map_err(|error| Failure(control_api::internal(&format!("writing CSV: {error}"))))?;
    let file = format!("attachment; filename=\"chargeback-{key}-{}.csv\"", month.unwrap_or("this-month"));
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, file)], body)
        .into_response())
}

pub(crate) async fn people(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    let principal = &session.principal;
    state.control.authorize_operator_console(principal, Action::RoleList).await?;
    let users = match principal.is_platform_admin() {
        true => Some(state.accounts.list_users(principal).await?),
        false => None,
    };
    // Every binding for a platform admin; the namespaces one may see for anyone else.
    let roles = match principal.is_platform_admin() {
        true => state.accounts.list_roles(principal, None).await?,
        false => {
            let mut roles = Vec::new();
            for namespace in state.control.visible_namespaces(principal).await? {
                roles.extend(state.accounts.list_roles(principal, Some(&namespace.name)).await?);
            }
            roles
        }
    };
    let body = html! {
        h1 { "People" }
        (query.shown())
        @if let Some(users) = &users {
            section {
                h2 { "Users" }
                div class="scroll" { table {
                    thead { tr { th { "User" } th { "Groups" } th { "Account" } th { "Since" } } }
                    tbody { @for user in users {
                        tr { td { (user.name) @if user.disabled { " " span class="badge bad" { "disabled" } } }
                             td { (user.groups.join(", ")) } td { (if user.local { "local" } else { "identity provider" }) }
                             td { (when(&user.created_at)) } }
                    } }
                } }
            }
        }
        section {
            h2 { "Roles" }
            div class="scroll" { table {
                thead { tr { th { "Namespace" } th { "Who" } th { "Role" } th { "Granted" } th { span class="hint" { "Action" } } } }
                tbody { @for binding in &roles {
                    tr { td { (binding.namespace) } td { (binding.subject) } td { (binding.role) } td { (binding.created_by) ", " (when(&binding.created_at)) }
                         td {
                             form class="inline" method="post" action="/console/people/roles" data-confirm=(format!("Revoke {} from {}?", binding.role, binding.subject)) {
                                 (csrf_field(&session))
                                 input type="hidden" name="namespace" value=(binding.namespace);
                                 input type="hidden" name="subject" value=(binding.subject);
                                 input type="hidden" name="role" value=(binding.role);
                                 button type="submit" name="change" value="revoke" class="secondary" { "Revoke" }
                             }
                         } }
                } }
            } }
            h3 { "Grant a role" }
            form method="post" action="/console/people/roles" {
                (csrf_field(&session))
                label for="role-namespace" { "Namespace" span class="hint" { "* for the whole platform." } } input type="text" id="role-namespace" name="namespace" required;
                label for="role-subject" { "Who" span class="hint" { "user:NAME or group:NAME" } } input type="text" id="role-subject" name="subject" required;
                label for="role-role" { "Role" }
                select id="role-role" name="role" { @for role in Role::ALL { option value=(role.as_str()) { (role.as_str()) } } }
                button type="submit" name="change" value="grant" { "Grant" }
            }
        }
    };
    Ok(page(&session, Nav::People, "People", body))
}

#[derive(Deserialize)]
pub(crate) struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    change: String,
}

pub(crate) async fn change_role(
    State(state): State<Arc<ApiState>>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<RoleForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    let role: Role = form.role.parse().map_err(|message: String| bad_form(message))?;
    let (namespace, subject) = (form.namespace.trim(), form.subject.trim());
    match form.change.as_str() {
        "grant" => {
            state.accounts.grant_role(&session.principal, namespace, subject, role).await?;
            Ok(see_other("/console/people?notice=role-granted"))
        }
        "revoke" => {
            state.accounts.revoke_role(&session.principal, namespace, subject, role).await?;
            Ok(see_other("/console/people?notice=role-revoked"))
        }
        _ => Err(Failure(control_api::failure(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "choose grant or revoke",
            vec![],
        ))),
    }
}
