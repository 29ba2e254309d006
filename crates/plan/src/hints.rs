//! Mistakes in an app's function code that would only show at run time, found by reading it:
//! a `fetch` of a literal host the manifest's `allowedEgress` does not list, an `env.NAME` that
//! is no var, binding or secret, and Node.js globals that functions do not have. Each is a
//! warning with its file and line and what to change; `validate` and `deploy` print them.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::LazyLock;

use bundle::Bundle;
use manifest::ValidatedManifest;
use regex::Regex;

/// One hint: where, and what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

static FETCH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\bfetch\s*\(\s*["'`](https?://[^/"'`?#\s$]+)"#).expect("the fetch pattern compiles")
});
static ENV: LazyLock<Regex> = LazyLock::new(|| {
    // `env` itself, not a member of something else (`process.env` is a Node.js hint of its own).
    Regex::new(r#"(?:^|[^.\w$])env\s*(?:\.\s*([A-Za-z_$][A-Za-z0-9_$]*)|\[\s*["']([^"']+)["']\s*\])"#)
        .expect("the env pattern compiles")
});

/// Node.js globals and what to use in a function instead.
static NODE_GLOBALS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"\brequire\s*\(", "require() is Node.js's; functions import modules: import { x } from \"./file.js\" (relative paths only)"),
        (r"\bprocess\s*\.\s*env\b", "process.env is Node.js's; a function reads its settings and secrets as env.NAME (the second argument of fetch)"),
        (r"\bprocess\s*\.\s*(?:exit|argv|cwd|on)\b", "process is Node.js's; a function has no process: return a Response instead"),
        (r"\bBuffer\s*\.", "Buffer is Node.js's; use Uint8Array, TextEncoder/TextDecoder, or btoa/atob for base64"),
        (r"\b__(?:dirname|filename)\b", "__dirname and __filename are Node.js's; functions have no file system: put files in the app and fetch them, or import them"),
    ]
    .into_iter()
    .map(|(pattern, fix)| (Regex::new(pattern).expect("the Node.js patterns compile"), fix))
    .collect()
});

/// The hints of an app's function modules. `secrets` are the app's secret names when the caller
/// knows them; otherwise an unknown `env.NAME` is reported only when the app has no secrets.
pub fn hints(validated: &ValidatedManifest, bundle: &Bundle, secrets: Option<&BTreeSet<String>>) -> Vec<Hint> {
    let manifest = validated.manifest();
    let spec = &manifest.spec;
    if spec.functions.as_ref().is_none_or(|functions| functions.is_empty()) {
        return Vec::new();
    }
    let egress = spec.allowed_egress.clone().unwrap_or_default();
    let allow = egress::AllowList::parse(&egress).unwrap_or_else(|_| egress::AllowList::empty());
    let mut known: BTreeSet<String> = spec.vars.as_ref().map(|vars| vars.keys().cloned().collect()).unwrap_or_default();
    if let Some(data) = &spec.data {
        known.extend(data.kv.as_ref().and_then(manifest::KvSpec::binding).map(str::to_owned));
        known.extend(data.sql.as_ref().map(|sql| sql.binding().to_owned()));
    }
    if let Some(secrets) = secrets {
        known.extend(secrets.iter().cloned());
    }
    let has_secrets = spec.secrets_ref.is_some();
    let static_prefix = spec.static_site.as_ref().map(|site| format!("{}/", site.dir.trim_end_matches('/')));
    let (namespace, name) = (&manifest.metadata.namespace, &manifest.metadata.name);

    let mut hints = Vec::new();
    for (path, contents) in bundle.files() {
        let is_static = static_prefix.as_deref().is_some_and(|prefix| prefix != "/" && path.starts_with(prefix));
        if is_static || !(path.ends_with(".js") || path.ends_with(".mjs")) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(contents) else { continue };
        let mut reported_env = BTreeSet::new();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") || trimmed.starts_with('*') || trimmed.starts_with("/*") {
                continue;
            }
            let mut hint = |message: String| hints.push(Hint { file: path.clone(), line: index + 1, message });
            for found in FETCH.captures_iter(line) {
                let origin = &found[1];
                if allow.check_url(&format!("{origin}/")).is_err() {
                    let host = origin.split_once("://").map_or(origin, |(_, host)| host);
                    hint(format!(
                        "fetch(\"{origin}/…\") will be refused: spec.allowedEgress does not list {host}; add it to spec.allowedEgress"
                    ));
                }
            }
            for found in ENV.captures_iter(line) {
                let Some(variable) = found.get(1).or_else(|| found.get(2)).map(|m| m.as_str()) else { continue };
                if known.contains(variable) || !reported_env.insert(variable.to_owned()) {
                    continue;
                }
                match (secrets.is_some(), has_secrets) {
                    // Its secrets are known: the name is none of them.
                    (true, _) => hint(format!(
                        "env.{variable} is not in spec.vars, not a binding and not a secret of the app: add it to spec.vars, or set it with `terrarium secrets set {namespace}/{name} {variable}`"
                    )),
                    (false, false) => hint(format!(
                        "env.{variable} is not in spec.vars and not a binding, and the app has no spec.secretsRef: add it to spec.vars, or keep it as a secret (spec.secretsRef: terrarium://{namespace}/{name}, then `terrarium secrets set {namespace}/{name} {variable}`)"
                    )),
                    // A secret, perhaps: only the server knows.
                    (false, true) => {}
                }
            }
            for (pattern, fix) in NODE_GLOBALS.iter() {
                if pattern.is_match(line) {
                    hint((*fix).to_owned());
                }
            }
        }
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(extra: &str, code: &str) -> (ValidatedManifest, Bundle) {
        let manifest = format!(
            "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: lunch\n  namespace: team\nspec:\n  owner: user:bea\n  runtime: function\n  functions:\n    - route: /*\n      entry: functions/api.js\n  vars:\n    CITY: Lisbon\n{extra}"
        );
        let files = vec![
            ("terrarium.yaml".to_owned(), manifest.into_bytes()),
            ("functions/api.js".to_owned(), code.as_bytes().to_vec()),
        ];
        crate::pack_files("lunch/terrarium.yaml", files).unwrap()
    }

    fn said(hints: &[Hint]) -> String {
        hints.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn a_fetch_of_an_unlisted_host_is_named_with_its_line() {
        let code = "export default { async fetch(request, env) {\n  const weather = await fetch(\"https://api.weather.example/v1?q=\" + env.CITY);\n  const listed = await fetch('https://api.example.com/x');\n  const built = await fetch(`https://${env.HOST}/x`);\n  return new Response('ok');\n} };\n";
        let (validated, bundle) =
            app("  allowedEgress:\n    - api.example.com\n  secretsRef: terrarium://team/lunch\n", code);
        let hints = hints(&validated, &bundle, None);
        assert_eq!(hints.len(), 1, "{}", said(&hints));
        assert_eq!(hints[0].file, "functions/api.js");
        assert_eq!(hints[0].line, 2);
        assert!(hints[0].message.contains("spec.allowedEgress does not list api.weather.example"), "{}", hints[0]);
    }

    #[test]
    fn unknown_env_names_are_named_once_unless_they_may_be_secrets() {
        let code = "export default { fetch(request, env) {\n  console.log(env.CITY, env.MAPS_KEY, env['MAPS_KEY'], env.KV);\n  return new Response(env.MAPS_KEY);\n} };\n";
        let (validated, bundle) = app("  data:\n    kv: true\n", code);
        let offline = hints(&validated, &bundle, None);
        assert_eq!(offline.len(), 1, "{}", said(&offline));
        assert!(offline[0].message.contains("env.MAPS_KEY") && offline[0].message.contains("no spec.secretsRef"));

        let (validated, bundle) =
            app("  secretsRef: terrarium://team/lunch\n", code.replace("env.KV", "env.CITY").as_str());
        assert!(hints(&validated, &bundle, None).is_empty(), "offline, a name may be a secret");
        let known: BTreeSet<String> = ["OTHER".to_owned()].into();
        let server = hints(&validated, &bundle, Some(&known));
        assert!(said(&server).contains("`terrarium secrets set team/lunch MAPS_KEY`"), "{}", said(&server));
        let known: BTreeSet<String> = ["MAPS_KEY".to_owned()].into();
        assert!(hints(&validated, &bundle, Some(&known)).is_empty());
    }

    #[test]
    fn node_globals_are_named_with_what_to_use_instead() {
        let code = "const fs = require('fs');\n// require('never') in a comment is fine\nexport default { fetch(request, env) {\n  const key = process.env.KEY;\n  const bytes = Buffer.from('x');\n  const here = __dirname;\n  return new Response('ok');\n} };\n";
        let (validated, bundle) = app("", code);
        let found = hints(&validated, &bundle, None);
        let lines: Vec<usize> = found.iter().map(|hint| hint.line).collect();
        assert_eq!(lines, vec![1, 4, 5, 6], "{}", said(&found));
        assert!(found[0].message.contains("import { x } from"));
        assert!(found[1].message.contains("env.NAME"));
        assert!(found[2].message.contains("Uint8Array"));
    }
}
