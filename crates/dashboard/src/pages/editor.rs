//! The in-browser editor: an app's files in a text area, checked on save with the same
//! messages as `terrarium validate`, then deployed as a new revision.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use control_api::ApiState;
use deployment::AppKey;
use maud::html;
use serde::Deserialize;

use super::app_page;
use crate::PageResult;
use crate::layout::{Nav, csrf_field, page_with_status};
use crate::session::Session;

/// The largest file the editor opens: bigger ones are for `terrarium deploy`.
const MAX_EDITABLE_BYTES: usize = 512 * 1024;

#[derive(Deserialize)]
pub(crate) struct FileQuery {
    path: Option<String>,
}

pub(crate) async fn show(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<FileQuery>,
) -> PageResult {
    let app = AppKey::new(&namespace, &name);
    let (revision, files) = state.control.app_files(&session.principal, &app, None).await?;
    let path = query.path.unwrap_or_else(|| first_page(&files));
    let contents = files.iter().find(|(file, _)| *file == path).map(|(_, contents)| contents.clone());
    let editing = match contents {
        Some(contents) => Editing { path, text: String::from_utf8(contents).ok(), new: false },
        None => Editing { path, text: Some(String::new()), new: true },
    };
    Ok(render(&session, &app, revision, &files, &editing, StatusCode::OK, Outcome::None))
}

#[derive(Deserialize)]
pub(crate) struct SaveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    content: String,
    /// `check` or `deploy`.
    #[serde(default)]
    action: String,
    /// The revision the text was opened from.
    revision: Option<i64>,
}

pub(crate) async fn submit(
    State(state): State<Arc<ApiState>>,
    session: Session,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<SaveForm>,
) -> PageResult {
    session.check_form(&state, &headers, &form.csrf)?;
    let app = AppKey::new(&namespace, &name);
    let (revision, mut files) = state.control.app_files(&session.principal, &app, None).await?;
    let path = form.path.trim().trim_start_matches('/').to_owned();
    let original = files.iter().find(|(file, _)| *file == path).map(|(_, contents)| contents.clone());
    // Browsers send a text area's lines ending in CRLF: a file that had LF keeps LF.
    let text = match original.as_deref().is_some_and(|contents| contents.windows(2).any(|pair| pair == b"\r\n")) {
        true => form.content.clone(),
        false => form.content.replace("\r\n", "\n"),
    };
    let editing = Editing { path: path.clone(), text: Some(text.clone()), new: original.is_none() };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    if path.is_empty() {
        let outcome = Outcome::Problems(vec!["give the file a name, like public/about.html".to_owned()]);
        return Ok(render(&session, &app, revision, &files, &editing, unprocessable, outcome));
    }
    if let Some(opened) = form.revision.filter(|opened| *opened != revision) {
        let outcome = Outcome::Problems(vec![format!(
            "revision {revision} was published after you opened this file (from revision {opened}); your text is kept below: copy it, open the file again and make your change there"
        )]);
        return Ok(render(&session, &app, revision, &files, &editing, StatusCode::CONFLICT, outcome));
    }
    match files.iter_mut().find(|(file, _)| *file == path) {
        Some((_, contents)) => *contents = text.into_bytes(),
        None => files.push((path.clone(), text.into_bytes())),
    }
    let packed = plan::pack_files(&format!("{name}/terrarium.yaml"), files.clone());
    let bundle = match packed {
        Ok((validated, _))
            if validated.manifest().metadata.name != name || validated.manifest().metadata.namespace != namespace =>
        {
            let problems = vec![format!(
                "terrarium.yaml names the app {}/{}, but this is {namespace}/{name}: the editor publishes this app only; put metadata.name and metadata.namespace back",
                validated.manifest().metadata.namespace,
                validated.manifest().metadata.name
            )];
            return Ok(render(&session, &app, revision, &files, &editing, unprocessable, Outcome::Problems(problems)));
        }
        Ok((_, bundle)) => bundle,
        Err(problems) => {
            let problems = problems.lines().map(|line| line.trim().to_owned()).collect();
            return Ok(render(&session, &app, revision, &files, &editing, unprocessable, Outcome::Problems(problems)));
        }
    };
    if form.action != "deploy" {
        // The deploy's own checks, short of deploying: the code loaded, the hints on it.
        return Ok(match state.control.check(&session.principal, &bundle.to_tar()).await {
            Ok(warnings) => {
                render(&session, &app, revision, &files, &editing, StatusCode::OK, Outcome::Checked(warnings))
            }
            Err(error) => {
                let (status, problems) = super::problems_of(error);
                render(&session, &app, revision, &files, &editing, status, Outcome::Problems(problems))
            }
        });
    }
    match state.control.deploy(&session.principal, &bundle.to_tar()).await {
        Ok(deployed) => Ok(super::deployed_page(&namespace, &name, &deployed)),
        Err(error) => {
            let (status, problems) = super::problems_of(error);
            Ok(render(&session, &app, revision, &files, &editing, status, Outcome::Problems(problems)))
        }
    }
}

struct Editing {
    path: String,
    /// `None` for a file that is not text.
    text: Option<String>,
    new: bool,
}

enum Outcome {
    None,
    /// No problem; the hints, if any.
    Checked(Vec<String>),
    Problems(Vec<String>),
}

/// The page the editor opens first: the home page, else the manifest.
fn first_page(files: &[(String, Vec<u8>)]) -> String {
    ["public/index.html", "functions/api.js"]
        .into_iter()
        .find(|path| files.iter().any(|(file, _)| file == path))
        .unwrap_or(bundle::MANIFEST_FILE)
        .to_owned()
}

fn render(
    session: &Session,
    app: &AppKey,
    revision: i64,
    files: &[(String, Vec<u8>)],
    editing: &Editing,
    status: StatusCode,
    outcome: Outcome,
) -> axum::response::Response {
    let base = app_page(&app.namespace, &app.name);
    let title = format!("Edit {}", app.name);
    let body = html! {
        p class="hint" { a href="/console" { "My apps" } " / " a href=(base) { (app.name) } }
        h1 { (title) }
        p { "Editing revision " (revision) ". " strong { "Check" } " looks for mistakes; " strong { "Save and publish" } " makes a new revision live." }
        @match &outcome {
            Outcome::None => {},
            Outcome::Checked(warnings) => div role="status" {
                p class="notice" { "No problems found. Publish when you are ready." }
                @if !warnings.is_empty() {
                    p { "Worth a look before you publish:" }
                    ul class="problems" { @for warning in warnings { li { code { (warning) } } } }
                }
            },
            Outcome::Problems(problems) => div role="alert" {
                p class="error" { "Not published. Fix these and try again (your text is kept below):" }
                ul class="problems" { @for problem in problems { li { code { (problem) } } } }
            },
        }
        div class="files" {
            nav aria-label="Files" {
                ul {
                    @for (path, contents) in files {
                        li { a href=(format!("{base}/edit?path={}", url_encode(path))) aria-current=[(*path == editing.path).then_some("page")] {
                            (path) span class="hint" { (crate::layout::bytes(contents.len() as u64)) }
                        } }
                    }
                }
                p { a href=(format!("{base}/edit?path=public/new-page.html")) { "+ New file" } }
            }
            div {
                @match &editing.text {
                    Some(text) if text.len() <= MAX_EDITABLE_BYTES => {
                        form method="post" action=(format!("{base}/edit")) {
                            (csrf_field(session))
                            input type="hidden" name="revision" value=(revision);
                            label for="path" { "File" @if editing.new { span class="hint" { "A new file: name it with its folder, like public/about.html." } } }
                            input type="text" id="path" name="path" value=(editing.path) readonly[!editing.new] required;
                            label for="content" { "Contents" span class="hint" { "Tab indents; press Escape then Tab to leave the text area." } }
                            // The parser drops one newline right after the start tag: this one, not the file's.
                            textarea class="code" id="content" name="content" spellcheck="false" autocapitalize="off" { "\n" (text) }
                            button type="submit" name="action" value="check" class="secondary" { "Check" }
                            button type="submit" name="action" value="deploy" { "Save and publish" }
                        }
                    }
                    Some(_) => p { (editing.path) " is too large to edit here; change it in the app folder and run terrarium deploy." },
                    None => p { (editing.path) " is not a text file (a picture or other binary); it stays as it is." },
                }
            }
        }
    };
    page_with_status(session, Nav::MyApps, &title, status, body)
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_editor_opens_the_home_page_first() {
        let files = |paths: &[&str]| paths.iter().map(|path| (path.to_string(), Vec::new())).collect::<Vec<_>>();
        assert_eq!(
            first_page(&files(&["functions/api.js", "public/index.html", "terrarium.yaml"])),
            "public/index.html"
        );
        assert_eq!(first_page(&files(&["functions/api.js", "terrarium.yaml"])), "functions/api.js");
        assert_eq!(first_page(&files(&["terrarium.yaml"])), "terrarium.yaml");
    }
}
