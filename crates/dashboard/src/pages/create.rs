//! The template catalog and the form that makes an app from a template, deployed on the server
//! with no files on the builder's machine.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use control_api::ApiState;
use maud::html;
use serde::Deserialize;

use super::{app_page, see_other};
use crate::layout::{Nav, csrf_field, page, page_with_status};
use crate::session::Session;
use crate::{Failure, PageResult, assets};

pub(crate) async fn catalog(session: Session) -> Response {
    let body = html! {
        h1 { "Create an app" }
        p { "Pick what your app starts as. You can change everything later in the browser." }
        ul class="cards" {
            @for template in app_templates::CATALOG {
                li class="card" {
                    img src=(assets::url(&format!("template-{}.svg", template.id))) alt="";
                    h2 { (template.title) }
                    p { (template.summary) }
                    a class="button" href=(format!("/console/new/{}", template.id)) aria-label=(format!("Use the template {}", template.title)) { "Use this template" }
                }
            }
        }
    };
    page(&session, Nav::New, "Create an app", body)
}

/// What the builder typed, kept whole when the form comes back with problems.
#[derive(Default, Deserialize)]
pub(crate) struct NewApp {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    visibility: String,
    kv: Option<String>,
    sql: Option<String>,
}

pub(crate) async fn form(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path(template): Path<String>,
) -> PageResult {
    let template = find(&template)?;
    let input = NewApp { visibility: "team".to_owned(), ..NewApp::default() };
    render_form(&state, &session, template, &input, StatusCode::OK, &[]).await
}

pub(crate) async fn submit(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path(template): Path<String>,
    headers: HeaderMap,
    Form(input): Form<NewApp>,
) -> PageResult {
    session.check_form(&state, &headers, &input.csrf)?;
    let template = find(&template)?;
    let name = input.name.trim();
    let namespace = input.namespace.trim();
    let mut problems = Vec::new();
    if !deployment::is_name(name) {
        problems.push(format!(
            "name: {name:?} cannot be an app name; use 1 to 40 lowercase letters, digits and dashes, starting and ending with a letter or digit (for example team-lunch)"
        ));
    }
    if !deployment::is_name(namespace) {
        problems.push("namespace: choose the team space the app goes into".to_owned());
    }
    let visibility = match app_templates::Visibility::parse(&input.visibility) {
        Some(visibility) => Some(visibility),
        None => {
            problems.push("visibility: choose who may open the app".to_owned());
            None
        }
    };
    if !problems.is_empty() {
        return render_form(&state, &session, template, &input, StatusCode::UNPROCESSABLE_ENTITY, &problems).await;
    }
    let owner = session.owner();
    let params = app_templates::Params {
        name,
        namespace,
        owner: &owner,
        description: Some(&input.description),
        visibility,
        kv: template.has_function && input.kv.is_some(),
        sql: template.has_function && input.sql.is_some(),
    };
    let packed = app_templates::render(template.id, &params)
        .and_then(|files| plan::pack_files(&format!("{name}/terrarium.yaml"), files));
    let bundle = match packed {
        Ok((_, bundle)) => bundle,
        Err(problems) => {
            let problems: Vec<String> = problems.lines().map(|line| line.trim().to_owned()).collect();
            return render_form(&state, &session, template, &input, StatusCode::UNPROCESSABLE_ENTITY, &problems).await;
        }
    };
    match state.control.create(&session.principal, &bundle.to_tar()).await {
        Ok(deployed) if deployed.pending_approval.is_some() => Ok(see_other("/console?notice=pending")),
        Ok(_) => Ok(see_other(&format!("{}?notice=created", app_page(namespace, name)))),
        Err(error) => {
            let (status, problems) = super::problems_of(error);
            render_form(&state, &session, template, &input, status, &problems).await
        }
    }
}

fn find(id: &str) -> Result<&'static app_templates::Template, Failure> {
    app_templates::find(id).ok_or_else(|| {
        Failure(control_api::failure(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no template {id:?}; pick one from the catalog at /console/new"),
            vec![],
        ))
    })
}

async fn render_form(
    state: &ApiState,
    session: &Session,
    template: &app_templates::Template,
    input: &NewApp,
    status: StatusCode,
    problems: &[String],
) -> PageResult {
    let known: Vec<String> = state
        .control
        .visible_namespaces(&session.principal)
        .await?
        .into_iter()
        .map(|namespace| namespace.name)
        .collect();
    let namespaces = session.builder_namespaces(&known);
    let title = format!("New app: {}", template.title);
    let body = html! {
        h1 { (title) }
        p { (template.summary) }
        @if !problems.is_empty() {
            div role="alert" {
                p class="error" { "The app was not created. Fix what is listed and send the form again:" }
                ul class="problems" { @for problem in problems { li { (problem) } } }
            }
        }
        @if namespaces.is_empty() {
            section {
                p class="error" { "You may not create apps in any namespace yet." }
                p { "Ask your platform team for the builder role in your team's namespace." }
            }
        } @else {
            form method="post" action=(format!("/console/new/{}", template.id)) {
                (csrf_field(session))
                label for="name" { "Name" span class="hint" { "Part of the app's web address: lowercase letters, digits and dashes, for example team-lunch." } }
                input type="text" id="name" name="name" value=(input.name) required maxlength="40" pattern="[a-z0-9]([a-z0-9-]*[a-z0-9])?" autocomplete="off" autofocus;
                label for="namespace" { "Namespace" span class="hint" { "Your team's space on the platform." } }
                select id="namespace" name="namespace" required {
                    @for namespace in &namespaces {
                        option value=(namespace) selected[*namespace == input.namespace] { (namespace) }
                    }
                }
                label for="description" { "Description" span class="hint" { "One sentence that tells others what the app is for." } }
                input type="text" id="description" name="description" value=(input.description) maxlength="200" placeholder=(template.description);
                fieldset {
                    legend { "Who may open it" }
                    @for visibility in app_templates::Visibility::ALL {
                        label {
                            input type="radio" name="visibility" value=(visibility.as_str()) checked[input.visibility == visibility.as_str()];
                            strong { (visibility.as_str()) } ": " (visibility.explained())
                        }
                    }
                }
                @if template.has_function {
                    fieldset {
                        legend { "Data the app keeps" }
                        label { input type="checkbox" name="kv" value="on" checked[input.kv.is_some()]; "Keys and values (env.KV): votes, settings, counters" }
                        label { input type="checkbox" name="sql" value="on" checked[input.sql.is_some()]; "A SQL database (env.DB): tables of rows" }
                    }
                }
                p class="hint" { "You will own the app as " (session.owner()) "." }
                button type="submit" { "Create and publish" }
            }
        }
    };
    Ok(page_with_status(session, Nav::New, &title, status, body))
}
