//! Files in, a checked bundle out: the one validation `terrarium validate`, `terrarium init`,
//! `terrarium deploy` and the web console's editor share, so each says the same words.

use bundle::{Bundle, BundleLimits, MANIFEST_FILE};
use manifest::ValidatedManifest;

/// Caps on one app bundle, shared by the CLI (before uploading) and the server (on receipt).
pub const BUNDLE_LIMITS: BundleLimits = bundle::DEFAULT_LIMITS;

/// Validates the manifest among `files` (paths relative to the app folder) and builds the bundle.
/// `manifest_label` names the manifest in messages (`hello/terrarium.yaml`). The error lists
/// every problem found, one per line after a heading.
pub fn pack_files(manifest_label: &str, files: Vec<(String, Vec<u8>)>) -> Result<(ValidatedManifest, Bundle), String> {
    let Some((_, source)) = files.iter().find(|(path, _)| path == MANIFEST_FILE) else {
        return Err(format!("the app has no {MANIFEST_FILE} at its root"));
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return Err(format!("{manifest_label} is not a text file (UTF-8); save it as UTF-8 text"));
    };
    let validated = manifest::load(manifest_label, source)
        .map_err(|diagnostics| describe_diagnostics(manifest_label, &diagnostics))?;

    let mut bundle = Bundle::new();
    for (path, contents) in files {
        bundle
            .insert(&path, contents, &BUNDLE_LIMITS)
            .map_err(|error| format!("cannot add {path} to the app bundle: {error}"))?;
    }

    let problems = crate::missing_files(&validated, &bundle);
    match problems.len() {
        0 => Ok((validated, bundle)),
        1 => Err(problems[0].clone()),
        n => Err(format!("{n} files named in {manifest_label} are missing:\n  {}", problems.join("\n  "))),
    }
}

/// A heading, then every diagnostic (`file:line:col: field: message` and its hint), indented.
fn describe_diagnostics(manifest_label: &str, diagnostics: &manifest::Diagnostics) -> String {
    let mut text = match diagnostics.errors().count() {
        1 => format!("{manifest_label} has 1 problem:"),
        n => format!("{manifest_label} has {n} problems:"),
    };
    for line in diagnostics.to_string().lines() {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(runtime_block: &str) -> Vec<u8> {
        format!(
            "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: hello\n  namespace: team\nspec:\n  owner: user:bea\n{runtime_block}"
        )
        .into_bytes()
    }

    #[test]
    fn packs_a_complete_app_and_names_every_missing_file() {
        let static_app = manifest("  runtime: static\n  static:\n    dir: public\n");
        let files =
            vec![("terrarium.yaml".to_owned(), static_app.clone()), ("public/index.html".to_owned(), b"hi".to_vec())];
        let (validated, bundle) = pack_files("hello/terrarium.yaml", files).unwrap();
        assert_eq!(validated.manifest().metadata.name, "hello");
        assert!(bundle.get("public/index.html").is_some());

        let error = pack_files("hello/terrarium.yaml", vec![("terrarium.yaml".to_owned(), static_app)]).unwrap_err();
        assert!(error.contains("public"), "{error}");
    }

    #[test]
    fn a_bad_manifest_gives_every_problem_with_its_place() {
        let files = vec![(
            "terrarium.yaml".to_owned(),
            b"apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: Bad Name\n".to_vec(),
        )];
        let error = pack_files("hello/terrarium.yaml", files).unwrap_err();
        assert!(error.starts_with("hello/terrarium.yaml has "), "{error}");
        assert!(error.contains("hello/terrarium.yaml:4:"), "{error}");
        assert_eq!(pack_files("x", vec![]).unwrap_err(), "the app has no terrarium.yaml at its root");
        let not_text = vec![("terrarium.yaml".to_owned(), vec![0xff, 0xfe])];
        assert!(pack_files("x/terrarium.yaml", not_text).unwrap_err().contains("not a text file"));
    }
}
