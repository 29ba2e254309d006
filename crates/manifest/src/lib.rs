//! The `MicroApp` manifest (`terrarium.yaml`): its types, parsing, validation and JSON Schema.
//!
//! [`load`] is the only way to get a [`ValidatedManifest`], which the deploy pipeline requires:
//! an unvalidated manifest cannot reach it by construction. Loading reports every problem at
//! once, each with the file, line, column and field path and in words a non-developer can act
//! on:
//!
//! ```text
//! terrarium.yaml:12:5: spec.quotas.brust: unknown field "brust"
//!   hint: did you mean "burst"?
//! ```
//!
//! The crate is pure: no I/O, no async. How it works, in three steps:
//!
//! 1. `yaml.rs` reads the text into saphyr's node tree with positions, within limits on size,
//!    nesting and alias expansion, and reports duplicated keys.
//! 2. `decode.rs` walks the tree into the typed [`MicroApp`], checking types, spellings and
//!    every rule (the single-value rules live in `rules.rs`) and carrying on after each problem.
//! 3. [`load`] returns the validated manifest with its warnings, or all the problems.

mod decode;
mod diagnostic;
mod model;
mod rules;
mod schema;
mod yaml;

#[cfg(test)]
mod tests;

use deployment::AppKey;

pub use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
pub use crate::model::{
    Access, Ai, ApiVersion, Container, Data, DataClass, Function, Kind, KvBinding, KvSpec, Metadata, MicroApp,
    MonthlyBudget, Owner, PiiMode, Quotas, Runtime, SecretsRef, Slo, Spec, Sql, SqlIsolation, StaticSite, Vectors,
    Visibility, Wasm,
};
pub use crate::rules::{MAX_NAME_LEN, Problem};
pub use crate::schema::json_schema;
pub use crate::yaml::{MAX_MANIFEST_BYTES, MAX_NESTING_DEPTH, MAX_NODES};

/// The name of the manifest file at the root of an app's folder.
pub const MANIFEST_FILE_NAME: &str = "terrarium.yaml";

/// A manifest that passed every check. Only [`load`] makes one.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedManifest {
    manifest: MicroApp,
    warnings: Diagnostics,
}

impl ValidatedManifest {
    pub fn manifest(&self) -> &MicroApp {
        &self.manifest
    }

    pub fn into_manifest(self) -> MicroApp {
        self.manifest
    }

    /// Problems that do not stop a deploy, like a `status` copied from the cluster.
    pub fn warnings(&self) -> &Diagnostics {
        &self.warnings
    }

    /// The app's namespace and name.
    pub fn app_key(&self) -> AppKey {
        AppKey::new(&self.manifest.metadata.namespace, &self.manifest.metadata.name)
    }
}

/// Parses and validates the manifest `source`; `file` is the name used in messages
/// (usually [`MANIFEST_FILE_NAME`] or a path to it).
///
/// On failure, the [`Diagnostics`] hold every problem found (errors and warnings), sorted by
/// position.
pub fn load(file: &str, source: &str) -> Result<ValidatedManifest, Diagnostics> {
    let mut report = diagnostic::Report::new(file);
    let manifest = yaml::read_document(source, &mut report).and_then(|root| decode::decode(&root, &mut report));
    match manifest {
        Some(manifest) if !report.has_errors() => Ok(ValidatedManifest { manifest, warnings: report.finish() }),
        _ => Err(report.finish()),
    }
}
