//! The rules one value must follow, as pure functions that say what is wrong and how to fix it.
//!
//! Each rule returns a [`Problem`] written for the person who edits `terrarium.yaml`. The
//! decoder attaches the file, line, column and field path.

use crate::model::{Owner, SecretsRef};

/// What is wrong with one value, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub(crate) fn new(message: impl Into<String>) -> Problem {
        Problem { message: message.into(), hint: None }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }
}

/// The longest app or namespace name.
pub const MAX_NAME_LEN: usize = 40;

/// An app or namespace name: lowercase letters, digits and `-`, 1 to 40 characters, starting and
/// ending with a letter or digit. `what` is `name` or `namespace`.
pub(crate) fn dns_label(value: &str, what: &str) -> Result<(), Problem> {
    let rule = format!("a {what} uses only lowercase letters, digits and \"-\"");
    if value.is_empty() {
        return Err(Problem::new(format!("the {what} is empty; {rule}")));
    }
    let suggestion = suggest_dns_label(value).map(|fixed| format!("write it as \"{fixed}\""));
    let with_suggestion = |problem: Problem| match &suggestion {
        Some(hint) => problem.hint(hint.clone()),
        None => problem,
    };
    if let Some(bad) = value.chars().find(|&c| !is_dns_char(c)) {
        let message = if bad.is_ascii_uppercase() {
            format!("\"{value}\" has capital letters; {rule}")
        } else {
            format!("\"{value}\" contains \"{bad}\"; {rule}")
        };
        return Err(with_suggestion(Problem::new(message)));
    }
    if value.starts_with('-') || value.ends_with('-') {
        let message = format!("\"{value}\" must start and end with a letter or a digit");
        return Err(with_suggestion(Problem::new(message)));
    }
    let length = value.chars().count();
    if length > MAX_NAME_LEN {
        return Err(Problem::new(format!(
            "\"{value}\" is {length} characters long; a {what} may have at most {MAX_NAME_LEN}"
        )));
    }
    Ok(())
}

fn is_dns_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// A valid spelling close to `value`, if there is one: lowercase, other characters turned into `-`.
fn suggest_dns_label(value: &str) -> Option<String> {
    let mut fixed = String::new();
    for c in value.chars().map(|c| c.to_ascii_lowercase()) {
        if is_dns_char(c) {
            fixed.push(c);
        } else if !fixed.ends_with('-') {
            fixed.push('-');
        }
    }
    let fixed = fixed.trim_matches('-');
    let usable = !fixed.is_empty() && fixed.len() <= MAX_NAME_LEN && fixed != value;
    usable.then(|| fixed.to_owned())
}

/// `user:<subject>` or `group:<name>`.
pub(crate) fn parse_owner(raw: &str) -> Result<Owner, Problem> {
    let example = "write user:<subject> for a person or group:<name> for a group";
    if raw.trim().is_empty() {
        return Err(Problem::new("the owner is empty").hint(example));
    }
    let Some((kind, name)) = raw.split_once(':') else {
        return Err(Problem::new(format!("\"{raw}\" does not say whether the owner is a user or a group"))
            .hint(format!("write user:{raw} for a person or group:{raw} for a group")));
    };
    if name.is_empty() {
        return Err(Problem::new(format!("the owner's name is missing after \"{kind}:\"")).hint(example));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Problem::new(format!("the owner \"{raw}\" contains a space")).hint(example));
    }
    match kind {
        "user" => Ok(Owner::User(name.to_owned())),
        "group" => Ok(Owner::Group(name.to_owned())),
        _ => {
            let problem =
                Problem::new(format!("\"{kind}:\" is not a kind of owner; an owner is user:<subject> or group:<name>"));
            match did_you_mean(kind, &["user", "group"]) {
                Some(close) => Err(problem.hint(format!("did you mean \"{close}:{name}\"?"))),
                None => Err(problem.hint(example)),
            }
        }
    }
}

/// `terrarium://<namespace>/<app>` or `vault://<mount>/<path>`.
///
/// The value may be a secret pasted by mistake, so no message repeats any part of it.
pub(crate) fn parse_secrets_ref(raw: &str) -> Result<SecretsRef, Problem> {
    let forms = "terrarium://<namespace>/<app> or vault://<mount>/<path>";
    let Some((scheme, rest)) = raw.split_once("://") else {
        if looks_like_secret(raw) {
            let message = "this looks like a secret value; secrets never go in the manifest";
            let hint = format!(
                "store the secret in terrarium's secret store or in Vault and write where it is here, \
                 like {forms}; if this file was shared or committed, treat the secret as leaked and replace it"
            );
            return Err(Problem::new(message).hint(hint));
        }
        let message = format!("secretsRef must say where the secrets are kept: {forms}");
        return Err(Problem::new(message).hint("it names a place, never a secret value"));
    };
    match scheme {
        "terrarium" => {
            let parts: Vec<&str> = rest.split('/').collect();
            let valid = parts.len() == 2 && parts.iter().all(|part| dns_label(part, "name").is_ok());
            if !valid {
                return Err(Problem::new(
                    "a terrarium:// reference names a namespace and an app, like terrarium://growth/where2eat",
                ));
            }
            Ok(SecretsRef::Terrarium { namespace: parts[0].to_owned(), app: parts[1].to_owned() })
        }
        "vault" => {
            let parts: Vec<&str> = rest.split('/').collect();
            // Only plain names: no percent-encoding or backslash that a URL parser would turn
            // into `..` or `/`, so the path Vault sees is exactly the one checked.
            let clean_part = |part: &&str| {
                !part.is_empty()
                    && *part != "."
                    && *part != ".."
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            };
            if parts.len() < 2 || !parts.iter().all(clean_part) {
                let message = "a vault:// reference names a mount and a path, like vault://microapp/where2eat";
                let hint = "parts are separated by single \"/\" and use only letters, digits, '_', '-' and '.' (not \".\" or \"..\")";
                return Err(Problem::new(message).hint(hint));
            }
            Ok(SecretsRef::Vault { mount: parts[0].to_owned(), path: parts[1..].join("/") })
        }
        _ => Err(Problem::new(format!("secretsRef must be {forms}"))
            .hint("it names where secrets are kept and never holds a secret value, a password or a connection string")),
    }
}

/// Whether a value has the look of a password, token or key rather than of a name.
fn looks_like_secret(value: &str) -> bool {
    const PREFIXES: [&str; 9] = ["sk-", "sk_", "ghp_", "gho_", "github_pat_", "xox", "AKIA", "eyJ", "-----BEGIN"];
    if PREFIXES.iter().any(|prefix| value.starts_with(prefix)) {
        return true;
    }
    let has_letter = value.chars().any(|c| c.is_ascii_alphabetic());
    let has_digit = value.chars().any(|c| c.is_ascii_digit());
    value.len() >= 16 && has_letter && has_digit && !value.contains(char::is_whitespace)
}

/// A path inside the app's folder, written plainly: `public`, `functions/api.js`.
pub(crate) fn relative_path(value: &str) -> Result<(), Problem> {
    if value.is_empty() {
        return Err(Problem::new("the path is empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(Problem::new("the path contains a control character"));
    }
    if value.contains('\\') {
        return Err(Problem::new(format!("\"{value}\" uses \"\\\"; paths use \"/\" between folders"))
            .hint(format!("write it as \"{}\"", value.replace('\\', "/"))));
    }
    if value.split('/').any(|part| part == "..") {
        return Err(Problem::new(format!(
            "\"{value}\" uses \"..\" to leave the app's folder; paths must stay inside it"
        )));
    }
    let clean = value.split('/').filter(|part| !part.is_empty() && *part != ".").collect::<Vec<_>>().join("/");
    if clean.is_empty() {
        return Err(Problem::new(format!("\"{value}\" does not name anything inside the app's folder"))
            .hint("name a folder or file inside it, like public or functions/api.js"));
    }
    if value.starts_with('/') {
        return Err(Problem::new(format!("\"{value}\" starts with \"/\"; paths are relative to the app's folder"))
            .hint(format!("write it as \"{clean}\"")));
    }
    if clean != value {
        return Err(
            Problem::new(format!("\"{value}\" is not written plainly")).hint(format!("write it as \"{clean}\""))
        );
    }
    Ok(())
}

/// The ES module of an edge function: a relative path ending in `.js` or `.mjs`.
pub(crate) fn function_entry(value: &str) -> Result<(), Problem> {
    relative_path(value)?;
    if value.ends_with(".js") || value.ends_with(".mjs") {
        return Ok(());
    }
    let problem = Problem::new(format!("\"{value}\" is not a JavaScript module; the entry must end in .js or .mjs"));
    if value.ends_with(".ts") || value.ends_with(".mts") {
        return Err(problem.hint("compile TypeScript to JavaScript first and point to the .js file"));
    }
    Err(problem)
}

/// A WebAssembly component: a relative path ending in `.wasm`.
pub(crate) fn wasm_component(value: &str) -> Result<(), Problem> {
    relative_path(value)?;
    if value.ends_with(".wasm") {
        return Ok(());
    }
    Err(Problem::new(format!("\"{value}\" is not a WebAssembly file; it must end in .wasm")))
}

/// A name given to functions as `env.NAME`: letters, digits and `_`, not starting with a digit.
pub(crate) fn var_name(name: &str) -> Result<(), Problem> {
    if is_var_name(name) {
        return Ok(());
    }
    let problem = Problem::new(format!(
        "\"{name}\" is not a valid variable name; use letters, digits and \"_\", not starting with a digit"
    ));
    let fixed: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if is_var_name(&fixed) {
        return Err(problem.hint(format!("write it as \"{fixed}\"")));
    }
    Err(problem)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    let valid_first = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    valid_first && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Words that suggest a variable holds a secret.
const SECRET_WORDS: [&str; 7] = ["SECRET", "PASSWORD", "PASSWD", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY"];

/// Whether a variable's name suggests it holds a secret, which belongs in the secret store.
pub(crate) fn var_name_suggests_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|word| upper.contains(word))
}

/// A Kubernetes label or annotation key: an optional DNS subdomain prefix and `/`, then a name
/// of up to 63 letters, digits, `-`, `_` and `.` that starts and ends with a letter or digit.
pub(crate) fn label_key(key: &str) -> Result<(), Problem> {
    let rule = "keys are up to 63 letters, digits, \"-\", \"_\" and \".\", starting and ending with a letter or digit, \
                optionally after a prefix like example.com/";
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid_prefix = prefix.len() <= 253 && prefix.split('.').all(dns_label_63);
        if !valid_prefix {
            return Err(Problem::new(format!("the prefix \"{prefix}\" of \"{key}\" is not a domain name"))
                .hint("a prefix is a lowercase domain name like example.com"));
        }
    }
    if name.is_empty() || name.len() > 63 || !is_label_word(name) {
        return Err(Problem::new(format!("\"{key}\" is not a valid key")).hint(rule));
    }
    Ok(())
}

/// A Kubernetes label value: empty, or up to 63 letters, digits, `-`, `_` and `.`, starting and
/// ending with a letter or digit.
pub(crate) fn label_value(value: &str) -> Result<(), Problem> {
    if value.is_empty() || (value.len() <= 63 && is_label_word(value)) {
        return Ok(());
    }
    Err(Problem::new(format!("\"{value}\" is not a valid label value")).hint(
        "label values are up to 63 letters, digits, \"-\", \"_\" and \".\", starting and ending with a letter or digit",
    ))
}

fn is_label_word(word: &str) -> bool {
    let alphanumeric_ends =
        word.starts_with(|c: char| c.is_ascii_alphanumeric()) && word.ends_with(|c: char| c.is_ascii_alphanumeric());
    alphanumeric_ends && word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn dns_label_63(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 63
        && part.chars().all(is_dns_char)
        && !part.starts_with('-')
        && !part.ends_with('-')
}

/// A catalog template and its version: `<template>@<version>`, like `static-edge@1`.
pub(crate) fn template_ref(value: &str) -> Result<(), Problem> {
    let valid = match value.split_once('@') {
        Some((template, version)) => {
            !template.is_empty() && !version.is_empty() && !value.contains(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        return Ok(());
    }
    Err(Problem::new(format!("\"{value}\" is not a template reference"))
        .hint("write <template>@<version>, like static-edge@1"))
}

/// A currency as a three-letter ISO 4217 code.
pub(crate) fn currency(value: &str) -> Result<(), Problem> {
    if value.len() == 3 && value.chars().all(|c| c.is_ascii_uppercase()) {
        return Ok(());
    }
    let problem =
        Problem::new(format!("\"{value}\" is not a currency code; use three capital letters like USD or EUR"));
    if value.len() == 3 && value.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(problem.hint(format!("write it as \"{}\"", value.to_ascii_uppercase())));
    }
    Err(problem)
}

/// A single word: not empty and without spaces. `what` names the thing (`group name`).
pub(crate) fn word(value: &str, what: &str) -> Result<(), Problem> {
    if value.is_empty() {
        return Err(Problem::new(format!("the {what} is empty")));
    }
    if value.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(Problem::new(format!("\"{value}\" contains a space; a {what} is a single word")));
    }
    Ok(())
}

/// A container image reference, like `registry.example.com/team/app:1.2`.
pub(crate) fn container_image(value: &str) -> Result<(), Problem> {
    word(value, "container image")?;
    if value.contains("://") {
        return Err(Problem::new(format!("\"{value}\" is a URL, not an image reference"))
            .hint("leave out the scheme, like registry.example.com/team/app:1.2"));
    }
    Ok(())
}

/// `allowedEgress`: every entry must parse as an egress rule (the `egress` crate owns the
/// syntax: hosts, `*.domain`, optional scheme and port), so `terrarium validate` refuses the same
/// entries the server would. Returns the index of each entry with a problem.
pub(crate) fn validate_egress_entries(entries: &[String]) -> Vec<(usize, Problem)> {
    match egress::AllowList::parse(entries) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            // The egress messages already say what to write instead.
            .map(|error| (error.index, Problem::new(error.problem.to_string())))
            .collect(),
    }
}

/// `slo.availability`: a percentage above 0 and below 100.
pub(crate) fn availability(value: f64) -> Result<(), Problem> {
    if value > 0.0 && value < 100.0 {
        return Ok(());
    }
    Err(Problem::new(format!("must be more than 0 and less than 100 (a percentage like 99.5), found {value}")))
}

/// `quotas.monthlyBudget.amount`: 0 or more.
pub(crate) fn budget_amount(value: f64) -> Result<(), Problem> {
    if value.is_finite() && value >= 0.0 {
        return Ok(());
    }
    Err(Problem::new(format!("must be 0 or more, found {value}")))
}

/// The candidate closest to `word` if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    let limit = match word.chars().count() {
        0..=3 => 1,
        4..=7 => 2,
        // No name is this long; skip the quadratic comparison.
        65.. => return None,
        _ => 3,
    };
    candidates
        .iter()
        .map(|candidate| (edit_distance(&word, &candidate.to_lowercase()), *candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between the first i chars of a and the first j chars of b.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let replace_cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + replace_cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}
