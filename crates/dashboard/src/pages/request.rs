//! "Ask for more": a form for an elevated ask (a new egress host, public visibility, a higher
//! monthly quota) with a justification. It becomes a new revision of the app's manifest; the
//! platform's policies decide whether it needs an approval, exactly as for `terrarium deploy`.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use control_api::ApiState;
use deployment::AppKey;
use maud::html;
use serde::Deserialize;

use super::app_page;
use crate::PageResult;
use crate::layout::{Nav, csrf_field, page_with_status, when};
use crate::manifest_edit::{append_item, quoted, set_scalar};
use crate::session::Session;

/// The annotation that carries the builder's reason to the approvers.
pub(crate) const JUSTIFICATION: &str = control::governance::JUSTIFICATION_ANNOTATION;

#[derive(Default, Deserialize)]
pub(crate) struct AskForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    egress_host: String,
    public: Option<String>,
    #[serde(default)]
    monthly_requests: String,
    #[serde(default)]
    justification: String,
}

pub(crate) async fn show(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
) -> PageResult {
    render(&state, &session, &AppKey::new(&namespace, &name), &AskForm::default(), StatusCode::OK, &[]).await
}

pub(crate) async fn submit(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<AskForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    let app = AppKey::new(&namespace, &name);
    let (_, mut files) = state.control.app_files(&session.principal, &app, None).await?;
    let Some((_, source)) = files.iter_mut().find(|(path, _)| path == bundle::MANIFEST_FILE) else {
        return Err(crate::bad_form("the live revision has no terrarium.yaml"));
    };
    let text = String::from_utf8_lossy(source).into_owned();
    let problems = match edited(&text, &form) {
        Ok(new_text) => {
            *source = new_text.into_bytes();
            Vec::new()
        }
        Err(problems) => problems,
    };
    if !problems.is_empty() {
        return render(&state, &session, &app, &form, StatusCode::UNPROCESSABLE_ENTITY, &problems).await;
    }
    let bundle = match plan::pack_files(&format!("{name}/terrarium.yaml"), files) {
        Ok((_, bundle)) => bundle,
        Err(problems) => {
            let problems: Vec<String> = problems.lines().map(|line| line.trim().to_owned()).collect();
            return render(&state, &session, &app, &form, StatusCode::UNPROCESSABLE_ENTITY, &problems).await;
        }
    };
    match state.control.deploy(&session.principal, &bundle.to_tar()).await {
        Ok(deployed) => Ok(super::deployed_page(&namespace, &name, &deployed)),
        Err(error) => {
            let (status, problems) = super::problems_of(error);
            render(&state, &session, &app, &form, status, &problems).await
        }
    }
}

/// The manifest with what the form asks for, checked by loading it: every problem, or the text.
fn edited(source: &str, form: &AskForm) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let host = form.egress_host.trim().to_ascii_lowercase();
    let quota = form.monthly_requests.trim();
    // One line, as the annotation holds it: what is compared below is what is written.
    let justification = form.justification.replace("\r\n", "\n").replace(['\r', '\n'], " ");
    let justification = justification.trim();
    if host.is_empty() && form.public.is_none() && quota.is_empty() {
        problems.push("ask for at least one thing: a host, public access or a higher quota".to_owned());
    }
    if justification.chars().count() < 10 {
        problems.push(
            "justification: say in a sentence why the app needs it (at least 10 characters); the approvers read it"
                .to_owned(),
        );
    }
    if !host.is_empty() && !host.chars().all(|c| c.is_ascii_alphanumeric() || ".-*:".contains(c)) {
        problems.push(format!("host: {host:?} is not a host name; write it like api.example.com, without https://"));
    }
    let quota = match quota {
        "" => None,
        text => match text.parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                problems.push(format!("monthly requests: {text:?} is not a whole number above zero"));
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut text = source.to_owned();
    let mut apply = |text: &mut String, result: Result<String, String>| match result {
        Ok(new_text) => *text = new_text,
        Err(problem) => problems.push(problem),
    };
    if !host.is_empty() {
        let result = append_item(&text, &["spec", "allowedEgress"], &quoted(&host));
        apply(&mut text, result);
    }
    if form.public.is_some() {
        let result = set_scalar(&text, &["spec", "access", "visibility"], "public");
        apply(&mut text, result);
    }
    if let Some(quota) = quota {
        let result = set_scalar(&text, &["spec", "quotas", "monthlyRequests"], &quota.to_string());
        apply(&mut text, result);
    }
    let result = set_scalar(&text, &["metadata", "annotations", JUSTIFICATION], &quoted(justification));
    apply(&mut text, result);
    if !problems.is_empty() {
        return Err(problems);
    }
    // The edit must mean what the form asked, and nothing else, in a file a person may have
    // written by hand (a block of text the edit landed in would change silently).
    let refused = || {
        vec![
            "terrarium.yaml is laid out in a way this form cannot change safely; make the change in the editor instead"
                .to_owned(),
        ]
    };
    let diagnostics =
        |diagnostics: manifest::Diagnostics| diagnostics.to_string().lines().map(str::to_owned).collect::<Vec<_>>();
    let before = manifest::load("terrarium.yaml", source).map_err(diagnostics)?.manifest().clone();
    let after = manifest::load("terrarium.yaml", &text).map_err(diagnostics)?.manifest().clone();
    let spec = &after.spec;
    let has_host = host.is_empty() || spec.allowed_egress.as_ref().is_some_and(|hosts| hosts.contains(&host));
    let is_public = form.public.is_none()
        || spec
            .access
            .as_ref()
            .and_then(|access| access.visibility)
            .is_some_and(|v| format!("{v:?}").eq_ignore_ascii_case("public"));
    let has_quota = quota.is_none() || spec.quotas.as_ref().and_then(|quotas| quotas.monthly_requests) == quota;
    let has_reason = after.metadata.annotations.as_ref().and_then(|map| map.get(JUSTIFICATION)).map(String::as_str)
        == Some(justification);
    if !(has_host && is_public && has_quota && has_reason) {
        return Err(refused());
    }
    // Everything else as it was: the asked-for fields put back, the two must be equal.
    let mut rest = after.clone();
    if !host.is_empty() {
        rest.spec.allowed_egress = before.spec.allowed_egress.clone();
    }
    if form.public.is_some() {
        match (&mut rest.spec.access, &before.spec.access) {
            (Some(access), Some(old)) => access.visibility = old.visibility,
            (access, None) => *access = None,
            (None, Some(_)) => return Err(refused()),
        }
    }
    if quota.is_some() {
        match (&mut rest.spec.quotas, &before.spec.quotas) {
            (Some(quotas), Some(old)) => quotas.monthly_requests = old.monthly_requests,
            (quotas, None) => *quotas = None,
            (None, Some(_)) => return Err(refused()),
        }
    }
    if let Some(annotations) = &mut rest.metadata.annotations {
        match before.metadata.annotations.as_ref().and_then(|old| old.get(JUSTIFICATION)) {
            Some(old) => {
                annotations.insert(JUSTIFICATION.to_owned(), old.clone());
            }
            None => {
                annotations.remove(JUSTIFICATION);
            }
        }
        if annotations.is_empty() && before.metadata.annotations.is_none() {
            rest.metadata.annotations = None;
        }
    }
    if rest != before {
        return Err(refused());
    }
    Ok(text)
}

async fn render(
    state: &ApiState,
    session: &Session,
    app: &AppKey,
    form: &AskForm,
    status: StatusCode,
    problems: &[String],
) -> PageResult {
    let detail = state.control.app_for(&session.principal, app).await?;
    let asked = state.control.list_approvals(&session.principal, Some(&app.namespace), Some("all")).await?;
    let asked: Vec<_> = asked.into_iter().filter(|request| request.app == app.name).take(10).collect();
    let base = app_page(&app.namespace, &app.name);
    let title = format!("Ask for more: {}", app.name);
    let body = html! {
        p class="hint" { a href="/console" { "My apps" } " / " a href=(base) { (app.name) } }
        h1 { (title) }
        p { "Ask for what the app needs beyond what it has. An operator of " (app.namespace) " may have to approve it; until then the live revision keeps serving." }
        @if !problems.is_empty() {
            div role="alert" {
                p class="error" { "Nothing was asked yet. Fix these and send the form again:" }
                ul class="problems" { @for problem in problems { li { (problem) } } }
            }
        }
        form method="post" action=(format!("{base}/request")) {
            (csrf_field(session))
            label for="egress_host" { "Call another service" span class="hint" { "Its host name, like api.example.com: the app may then fetch from it." } }
            input type="text" id="egress_host" name="egress_host" value=(form.egress_host) autocomplete="off";
            fieldset {
                legend { "Who may open the app" }
                label { input type="checkbox" name="public" value="on" checked[form.public.is_some()]; "Anyone, without signing in (public)" }
            }
            label for="monthly_requests" { "Requests a month" span class="hint" { "A higher monthly quota, as a number." } }
            input type="number" id="monthly_requests" name="monthly_requests" min="1" value=(form.monthly_requests);
            label for="justification" { "Why the app needs it" span class="hint" { "The approvers read this." } }
            textarea id="justification" name="justification" rows="3" required minlength="10" { (form.justification) }
            button type="submit" { "Send the request" }
        }
        section aria-labelledby="asked" {
            h2 id="asked" { "Earlier requests" }
            @if asked.is_empty() { p { "None yet." } } @else {
                div class="scroll" { table {
                    thead { tr { th { "Request" } th { "Asked" } th { "For" } th { "State" } th { "Outcome" } } }
                    tbody { @for request in &asked {
                        tr {
                            td { (request.id) }
                            td { (when(&request.requested_at)) " by " (request.requested_by) }
                            td { ul { @for item in &request.requests { li { (item.message) } } } }
                            td { span class=(if request.state == "pending" { "badge warn" } else if request.state == "approved" { "badge ok" } else { "badge" }) { (request.state) } }
                            td { (request.outcome.as_deref().unwrap_or("")) }
                        }
                    } }
                } }
            }
        }
        p class="hint" { "The app is " (detail.summary.phase) " at revision " (detail.summary.active_revision) "." }
    };
    Ok(page_with_status(session, Nav::MyApps, &title, status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: lunch\n  namespace: team\nspec:\n  owner: user:bea\n  runtime: function\n  functions:\n    - route: /*\n      entry: api.js\n";

    fn ask(host: &str, public: bool, quota: &str, why: &str) -> AskForm {
        AskForm {
            egress_host: host.to_owned(),
            public: public.then(|| "on".to_owned()),
            monthly_requests: quota.to_owned(),
            justification: why.to_owned(),
            ..AskForm::default()
        }
    }

    #[test]
    fn an_ask_changes_exactly_what_it_names() {
        let text =
            edited(MANIFEST, &ask("API.Weather.dev", true, "50000", "Weather at noon,\r\nfor the poll")).unwrap();
        let loaded = manifest::load("terrarium.yaml", &text).unwrap();
        let manifest = loaded.manifest();
        assert_eq!(manifest.spec.allowed_egress.as_deref().unwrap(), ["api.weather.dev"]);
        assert_eq!(manifest.spec.quotas.as_ref().unwrap().monthly_requests, Some(50000));
        assert_eq!(manifest.metadata.annotations.as_ref().unwrap()[JUSTIFICATION], "Weather at noon, for the poll");
        let kept: Vec<&str> = text.lines().filter(|line| MANIFEST.lines().any(|old| old == *line)).collect();
        assert_eq!(kept, MANIFEST.lines().collect::<Vec<_>>(), "every line stays, in order: {text}");
    }

    #[test]
    fn an_ask_is_refused_with_every_problem_or_when_the_edit_would_change_more() {
        let problems = edited(MANIFEST, &ask("https://x", false, "many", "short")).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(edited(MANIFEST, &ask("", false, "", "a good reason here")).unwrap_err()[0].contains("at least one"));
        // A block of text at the end of spec whose last lines look like comments: an insertion
        // there would cut them off the value, so the form refuses instead.
        let block = format!("{MANIFEST}  vars:\n    NOTE: |\n      first\n      # not a comment\n");
        manifest::load("terrarium.yaml", &block).unwrap();
        let refused = edited(&block, &ask("", false, "5000", "more requests for the poll")).unwrap_err();
        assert!(refused[0].contains("in the editor"), "{refused:?}");
    }
}
