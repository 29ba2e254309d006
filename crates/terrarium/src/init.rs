//! `terrarium init`: creates a new app folder from a template. The templates and the demo apps
//! that `serve --demo` deploys are app folders embedded in the binary at build time.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bundle::Bundle;
use include_dir::{Dir, include_dir};
use manifest::ValidatedManifest;

use crate::client::pack_files;

/// `demo/<app>/`: complete app folders.
static DEMO_APPS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/demo");

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The new app's name; a folder of that name is created (a path like apps/hello works too).
    pub name: PathBuf,
    /// What the app starts as: a static page, a page with a function, or only a function.
    #[arg(long, short = 't', value_enum, default_value_t = Template::StaticEdge)]
    pub template: Template,
    /// The namespace (team space) the app will be deployed into.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Who is responsible for the app, as user:<login> or group:<team>; by default the user you
    /// signed in as with `terrarium login` (the platform checks the owner is a known account),
    /// else user:$USER.
    #[arg(long)]
    pub owner: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// A web page: HTML, CSS and JavaScript served as they are.
    Static,
    /// A web page plus a JavaScript function on the server at /api/*.
    StaticEdge,
    /// Only a JavaScript function on the server, answering every path (an API).
    Function,
}

impl Template {
    /// The template's id in [`app_templates::CATALOG`].
    pub fn folder(self) -> &'static str {
        match self {
            Template::Static => "static",
            Template::StaticEdge => "static-edge",
            Template::Function => "function",
        }
    }
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let owner = args.owner.clone().unwrap_or_else(default_owner);
    let Some(name) = args.name.file_name().and_then(|name| name.to_str()) else {
        bail!("{:?} is not a usable app name; give a name such as hello", args.name);
    };
    check_app_name(name)?;
    let files = render_template(args.template, name, &args.namespace, &owner)?;
    check_folder_is_free(&args.name)?;
    write_files(&args.name, &files)?;

    let folder = args.name.display();
    println!("Created {folder}/ from the {} template:", args.template.folder());
    for (path, _) in &files {
        println!("  {folder}/{path}");
    }
    println!();
    println!("Next steps:");
    println!("  terrarium validate {folder}    check the app folder");
    println!("  terrarium deploy {folder}      publish it; prints the app's address");
    Ok(())
}

/// The template's files with the placeholders filled in, after checking that the result is a
/// valid app: (relative path, contents) in sorted order.
pub fn render_template(
    template: Template,
    name: &str,
    namespace: &str,
    owner: &str,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let params = app_templates::Params { name, namespace, owner, ..app_templates::Params::default() };
    let files = app_templates::render(template.folder(), &params).map_err(anyhow::Error::msg)?;
    // Validate what would be written, so a bad --namespace or --owner fails before any file exists.
    pack_files(&format!("{name}/terrarium.yaml"), files.clone())
        .context("the app cannot be created with these settings; fix the name, --namespace or --owner")?;
    Ok(files)
}

/// The demo apps that `serve --demo` deploys, validated and packed like `terrarium deploy` would.
pub fn demo_apps() -> anyhow::Result<Vec<(ValidatedManifest, Bundle)>> {
    DEMO_APPS
        .dirs()
        .map(|folder| {
            let label = format!("demo/{}/terrarium.yaml", folder.path().display());
            pack_files(&label, app_templates::embedded_files(folder))
                .with_context(|| format!("the embedded demo app {label} is broken"))
        })
        .collect()
}

fn default_owner() -> String {
    if let Ok(credentials) = crate::client::credentials::Credentials::load()
        && let [user] = credentials.users().as_slice()
    {
        return format!("user:{user}");
    }
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_default();
    match user.trim() {
        "" => "user:unknown".to_owned(),
        user => format!("user:{user}"),
    }
}

/// App names become part of web addresses: lowercase letters, digits and dashes, at most 40.
fn check_app_name(name: &str) -> anyhow::Result<()> {
    let valid_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let valid_ends = !name.starts_with('-') && !name.ends_with('-');
    if name.is_empty() || name.len() > 40 || !valid_chars || !valid_ends {
        bail!(
            "{name:?} cannot be an app name: use 1 to 40 lowercase letters, digits and dashes, \
             starting and ending with a letter or digit (for example where2eat or team-lunch)"
        );
    }
    Ok(())
}

fn check_folder_is_free(folder: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(folder) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "the folder {} already exists and is not empty; choose another name or move the folder away",
                    folder.display()
                );
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if folder.exists() => {
            bail!("{} already exists and is not a folder; choose another name", folder.display())
        }
        Err(error) => Err(error).with_context(|| format!("failed to look at {}", folder.display())),
    }
}

fn write_files(folder: &Path, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    for (path, contents) in files {
        let target = folder.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create the folder {}", parent.display()))?;
        }
        std::fs::write(&target, contents).with_context(|| format!("failed to write {}", target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init_in(parent: &Path, name: &str, template: Template) -> anyhow::Result<()> {
        run(InitArgs {
            name: parent.join(name),
            template,
            namespace: "default".into(),
            owner: Some("user:tester".into()),
        })
    }

    #[test]
    fn every_template_creates_an_app_that_validates_and_packs() {
        let parent = tempfile::tempdir().unwrap();
        for template in [Template::Static, Template::StaticEdge, Template::Function] {
            let name = format!("app-{}", template.folder());
            init_in(parent.path(), &name, template).unwrap();
            let (validated, bundle) = crate::client::pack_app_dir(&parent.path().join(&name)).unwrap();
            let app = validated.manifest();
            assert_eq!(app.metadata.name, name);
            assert_eq!(app.metadata.namespace, "default");
            let has_function = bundle.get("functions/api.js").is_some();
            let has_page = bundle.get("public/index.html").is_some();
            assert_eq!(has_function, template != Template::Static, "{template:?}");
            assert_eq!(has_page, template != Template::Function, "{template:?}");
            for (path, contents) in bundle.files() {
                let text = String::from_utf8_lossy(contents);
                assert!(!text.contains("{{"), "{path} of {template:?} still has a placeholder");
            }
        }
    }

    #[test]
    fn the_static_edge_page_calls_its_function() {
        let files = render_template(Template::StaticEdge, "hello", "default", "user:tester").unwrap();
        let script = &files.iter().find(|(path, _)| path == "public/app.js").unwrap().1;
        assert!(String::from_utf8_lossy(script).contains("fetch(`api/hello"));
        let function = &files.iter().find(|(path, _)| path == "functions/api.js").unwrap().1;
        assert!(String::from_utf8_lossy(function).contains("export default {"));
    }

    #[test]
    fn refuses_to_overwrite_a_non_empty_folder() {
        let parent = tempfile::tempdir().unwrap();
        std::fs::create_dir(parent.path().join("taken")).unwrap();
        std::fs::write(parent.path().join("taken/notes.txt"), "mine").unwrap();
        let error = init_in(parent.path(), "taken", Template::Static).unwrap_err().to_string();
        assert!(error.contains("already exists and is not empty"), "{error}");
        assert_eq!(std::fs::read_to_string(parent.path().join("taken/notes.txt")).unwrap(), "mine");

        // An empty folder is fine.
        std::fs::create_dir(parent.path().join("empty")).unwrap();
        init_in(parent.path(), "empty", Template::Static).unwrap();
    }

    #[test]
    fn bad_names_and_settings_fail_before_writing_anything() {
        let parent = tempfile::tempdir().unwrap();
        let error = init_in(parent.path(), "Hello World", Template::Static).unwrap_err().to_string();
        assert!(error.contains("cannot be an app name"), "{error}");
        let error = run(InitArgs {
            name: parent.path().join("hello"),
            template: Template::Static,
            namespace: "Not A Namespace".into(),
            owner: Some("user:tester".into()),
        })
        .unwrap_err();
        assert!(format!("{error:#}").contains("metadata.namespace"), "{error:#}");
        assert!(!parent.path().join("hello").exists());
    }

    #[test]
    fn demo_apps_validate() {
        let apps = demo_apps().unwrap();
        let mut names: Vec<_> = apps
            .iter()
            .map(|(validated, _)| {
                let app = validated.manifest();
                format!("{}/{}", app.metadata.namespace, app.metadata.name)
            })
            .collect();
        names.sort();
        assert_eq!(names, ["demo/status", "demo/where2eat"]);
        let (_, where2eat) =
            apps.iter().find(|(validated, _)| validated.manifest().metadata.name == "where2eat").unwrap();
        let pick = String::from_utf8_lossy(where2eat.get("functions/pick.js").unwrap());
        assert!(pick.contains("cuisine") && pick.contains("status: 404"));
    }

    #[test]
    fn templates_and_demo_apps_pass_the_bundled_policies_and_hold_no_secrets() {
        let policies = policy::PolicySet::builtin();
        let scanner = scan::Scanner::builtin();
        let parent = tempfile::tempdir().unwrap();
        let mut apps = demo_apps().unwrap();
        for template in [Template::Static, Template::StaticEdge, Template::Function] {
            let name = format!("app-{}", template.folder());
            init_in(parent.path(), &name, template).unwrap();
            apps.push(crate::client::pack_app_dir(&parent.path().join(&name)).unwrap());
        }
        for (validated, bundle) in &apps {
            let decision = crate::client::policy::evaluate_offline(&policies, validated.manifest()).unwrap();
            let app = &validated.manifest().metadata.name;
            assert!(decision.allowed(), "{app}: {decision:?}");
            assert!(plan::secret_findings(&scanner, bundle).is_empty(), "{app}");
        }
    }
}
