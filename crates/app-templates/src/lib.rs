//! The templates apps start from: `terrarium init --template T` writes one to a folder, and the
//! web console's catalog deploys one straight from a form. Both fill the same placeholders.

use include_dir::{Dir, include_dir};

/// `templates/<id>/`: files with `{{name}}`, `{{namespace}}`, `{{owner}}`, `{{description}}`,
/// `{{access}}` and `{{data}}` placeholders.
static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// One entry of the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Template {
    /// The folder under `templates/`, and the `--template` value.
    pub id: &'static str,
    pub title: &'static str,
    /// One line saying what it is, for people who do not write code.
    pub summary: &'static str,
    /// The description a new app gets when its maker gives none.
    pub description: &'static str,
    /// Whether the app runs code on the server (and so can keep data).
    pub has_function: bool,
}

/// Every shipped template, the most useful first.
pub const CATALOG: &[Template] = &[
    Template {
        id: "static-edge",
        title: "Web page with a function",
        summary: "A page people open in the browser, plus a little code on the server that can keep data.",
        description: "A web page with a small server-side function",
        has_function: true,
    },
    Template {
        id: "static",
        title: "Web page",
        summary: "Pages, pictures and scripts served as they are: a notice board, a guide, a form.",
        description: "A simple web page",
        has_function: false,
    },
    Template {
        id: "function",
        title: "Web API",
        summary: "Only code on the server, answering requests from other tools: a webhook, a small API.",
        description: "A small web API",
        has_function: true,
    },
];

/// The catalog entry of `id`.
pub fn find(id: &str) -> Option<&'static Template> {
    CATALOG.iter().find(|template| template.id == id)
}

/// Who may open the app (`spec.access.visibility`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    Private,
    Team,
    Org,
    Public,
}

impl Visibility {
    pub const ALL: [Visibility; 4] = [Visibility::Private, Visibility::Team, Visibility::Org, Visibility::Public];

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Team => "team",
            Visibility::Org => "org",
            Visibility::Public => "public",
        }
    }

    /// Who that is, in words.
    pub fn explained(self) -> &'static str {
        match self {
            Visibility::Private => "only you",
            Visibility::Team => "people of the namespace",
            Visibility::Org => "anyone signed in to the company",
            Visibility::Public => "anyone, without signing in (an operator approves it)",
        }
    }

    pub fn parse(text: &str) -> Option<Visibility> {
        Visibility::ALL.into_iter().find(|visibility| visibility.as_str() == text)
    }
}

/// What to fill the placeholders with.
#[derive(Clone, Debug, Default)]
pub struct Params<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub owner: &'a str,
    /// The template's own description when `None` or blank.
    pub description: Option<&'a str>,
    /// The platform's default (left out of the manifest) when `None`.
    pub visibility: Option<Visibility>,
    /// `spec.data.kv: true` (the `KV` binding).
    pub kv: bool,
    /// `spec.data.sql` in the isolated tier (the `DB` binding).
    pub sql: bool,
}

/// The template's files with the placeholders filled in, as (relative path, contents) sorted by
/// path. The caller validates the result (`plan::pack_files`): a bad name fails there, with the
/// manifest's own messages.
pub fn render(id: &str, params: &Params<'_>) -> Result<Vec<(String, Vec<u8>)>, String> {
    let template = find(id).ok_or_else(|| {
        let known: Vec<&str> = CATALOG.iter().map(|template| template.id).collect();
        format!("there is no template {id:?}; choose one of {}", known.join(", "))
    })?;
    let folder = TEMPLATES.get_dir(template.id).expect("every catalog entry has its folder");
    let description = params.description.map(str::trim).filter(|text| !text.is_empty()).unwrap_or(template.description);
    let access = match params.visibility {
        Some(visibility) => format!("  access:\n    visibility: {}", visibility.as_str()),
        None => "  # access:\n  #   visibility: team".to_owned(),
    };
    let mut data = String::new();
    if params.kv || params.sql {
        data.push_str(
            "\n  # The app's stored data: env.KV keeps keys and values, env.DB is a SQL database.\n  data:\n",
        );
        if params.kv {
            data.push_str("    kv: true\n");
        }
        if params.sql {
            data.push_str("    sql:\n      isolation: isolated\n");
        }
    }
    let files = embedded_files(folder)
        .into_iter()
        .map(|(path, contents)| {
            let text = String::from_utf8(contents).expect("template files are UTF-8 text");
            let text = text
                .replace("{{name}}", params.name)
                .replace("{{namespace}}", params.namespace)
                .replace("{{owner}}", params.owner)
                // A JSON string is a YAML double-quoted scalar: any text stays one value.
                .replace("{{description}}", &serde_json::Value::from(description.replace('\n', " ")).to_string())
                .replace("{{access}}", &access)
                .replace("{{data}}\n", &data);
            (path, text.into_bytes())
        })
        .collect();
    Ok(files)
}

/// Every file below an embedded folder, as (path relative to that folder, contents), sorted.
pub fn embedded_files(folder: &Dir<'static>) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![folder];
    while let Some(dir) = pending.pop() {
        pending.extend(dir.dirs());
        for file in dir.files() {
            let relative = file.path().strip_prefix(folder.path()).expect("embedded files are below their folder");
            let relative = relative.to_str().expect("embedded paths are UTF-8").replace('\\', "/");
            files.push((relative, file.contents().to_vec()));
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params<'static> {
        Params { name: "lunch", namespace: "team", owner: "user:bea", ..Params::default() }
    }

    #[test]
    fn every_template_renders_a_valid_app_with_every_choice() {
        for template in CATALOG {
            let files = render(template.id, &params()).unwrap();
            let (validated, _) = plan::pack_files("lunch/terrarium.yaml", files).unwrap();
            assert_eq!(validated.manifest().spec.description.as_deref(), Some(template.description));
            for visibility in Visibility::ALL {
                let chosen = Params {
                    description: Some("Where: the \"new\" canteen # today: 12:00"),
                    visibility: Some(visibility),
                    kv: template.has_function,
                    sql: template.has_function,
                    ..params()
                };
                let files = render(template.id, &chosen).unwrap();
                let (validated, _) = plan::pack_files("lunch/terrarium.yaml", files)
                    .unwrap_or_else(|error| panic!("{} {visibility:?}: {error}", template.id));
                let spec = &validated.manifest().spec;
                assert_eq!(spec.description.as_deref(), Some("Where: the \"new\" canteen # today: 12:00"));
                let rendered = format!("{:?}", spec.access);
                assert!(rendered.to_lowercase().contains(visibility.as_str()), "{rendered}");
            }
        }
    }

    #[test]
    fn placeholders_are_all_filled_and_unknown_templates_are_named() {
        for template in CATALOG {
            for (path, contents) in render(template.id, &params()).unwrap() {
                let text = String::from_utf8(contents).unwrap();
                assert!(!text.contains("{{"), "{} {path} keeps a placeholder", template.id);
            }
        }
        let error = render("blog", &params()).unwrap_err();
        assert!(error.contains("static-edge"), "{error}");
    }
}
