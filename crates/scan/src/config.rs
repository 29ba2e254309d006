//! `[scan]` in `terrarium.toml`: secret detection on every uploaded bundle.

use serde::Deserialize;

use crate::Scanner;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanSection {
    /// A gitleaks.toml of your own: it replaces the built-in rules, or adds to them with
    /// `[extend] useDefault = true`.
    pub rules_file: Option<std::path::PathBuf>,
    /// Stop a deploy whose files hold a likely secret (true), or deploy it with warnings.
    pub block: bool,
}

impl Default for ScanSection {
    fn default() -> ScanSection {
        ScanSection { rules_file: None, block: true }
    }
}

impl ScanSection {
    /// The scanner: the built-in rules, or the rules file's (read and compiled here, so a
    /// broken rule is reported before the server starts).
    pub fn build(&self) -> Result<Scanner, String> {
        let Some(path) = &self.rules_file else {
            return Ok(Scanner::builtin());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("scan.rules_file: cannot read {}: {error}", path.display()))?;
        Scanner::from_toml(&text).map_err(|error| format!("scan.rules_file: {}: {error}", path.display()))
    }

    /// Every problem of the section: the rules file must read and compile.
    pub fn validate(&self) -> Vec<String> {
        self.build().err().into_iter().collect()
    }
}
