//! `[policy]` and `[approvals]` in `terrarium.toml`. The namespaces' own approvers are part of
//! their settings (`plan::Namespaces`), gathered by the binary.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::GovernanceSettings;

/// Policy as code: which policies run, in which mode, and how often everything is audited.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Run the bundled library (`terrarium policy test` shows it).
    pub bundled: bool,
    /// A directory of your own `.rego` files, added to the bundled ones (a file named like a
    /// bundled one replaces it). Read again every `reload_secs` and on `terrarium policy reload`.
    pub dir: Option<std::path::PathBuf>,
    /// Policy name → `deny` (the default), `warn` or `dryrun`.
    pub modes: BTreeMap<String, String>,
    pub reload_secs: u64,
    /// Every running app is evaluated again this often (and at start, on policy change, and
    /// when an exception lapses).
    pub audit_secs: u64,
}

impl Default for PolicySection {
    fn default() -> PolicySection {
        PolicySection { bundled: true, dir: None, modes: Default::default(), reload_secs: 10, audit_secs: 3600 }
    }
}

/// Approvals of elevated requests.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsSection {
    /// A request without enough approvals is denied after this long.
    pub timeout_secs: u64,
    /// Per namespace: who approves and how many must (one operator of the namespace otherwise).
    pub namespaces: BTreeMap<String, ApproversSection>,
}

impl Default for ApprovalsSection {
    fn default() -> ApprovalsSection {
        ApprovalsSection { timeout_secs: 72 * 3600, namespaces: Default::default() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproversSection {
    /// `user:NAME` or `group:NAME`; each must also be an operator of the namespace.
    #[serde(default)]
    pub approvers: Vec<String>,
    #[serde(default = "one")]
    pub required: u32,
}

fn one() -> u32 {
    1
}

impl PolicySection {
    /// Every problem of the section, each naming its key. The policies themselves compile when
    /// the engine is built.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in [("policy.reload_secs", self.reload_secs), ("policy.audit_secs", self.audit_secs)] {
            if value == 0 {
                problems.push(format!("{key} is 0; give a number of seconds"));
            }
        }
        for (policy, mode) in &self.modes {
            if !matches!(mode.as_str(), "deny" | "warn" | "dryrun") {
                problems.push(format!("policy.modes.{policy}: {mode:?} is not a mode; use deny, warn or dryrun"));
            }
        }
        problems
    }
}

impl ApprovalsSection {
    /// Every problem of the section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.timeout_secs == 0 {
            problems.push("approvals.timeout_secs is 0; give a number of seconds".to_owned());
        }
        for (namespace, section) in &self.namespaces {
            if section.required == 0 {
                problems
                    .push(format!("approvals.namespaces.{namespace}.required is 0; at least one approval is needed"));
            }
            if !section.approvers.is_empty() && section.required as usize > section.approvers.len() {
                problems.push(format!(
                    "approvals.namespaces.{namespace}: required = {} but only {} approvers are listed",
                    section.required,
                    section.approvers.len()
                ));
            }
            for bad in section
                .approvers
                .iter()
                .filter(|subject| !subject.starts_with("user:") && !subject.starts_with("group:"))
            {
                problems.push(format!(
                    "approvals.namespaces.{namespace}.approvers: {bad:?} is neither user:NAME nor group:NAME"
                ));
            }
        }
        problems
    }
}

/// The governance's timing: how long approvals wait, how often policies are read and apps audited.
pub fn settings(policy: &PolicySection, approvals: &ApprovalsSection) -> GovernanceSettings {
    GovernanceSettings {
        approval_timeout: Duration::from_secs(approvals.timeout_secs.max(1)),
        audit_every: Duration::from_secs(policy.audit_secs.max(1)),
        reload_every: Duration::from_secs(policy.reload_secs.max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named() {
        assert!(PolicySection::default().validate().is_empty());
        assert!(ApprovalsSection::default().validate().is_empty());
        let policy = PolicySection {
            audit_secs: 0,
            modes: [("ttl".to_owned(), "block".to_owned())].into(),
            ..PolicySection::default()
        };
        assert_eq!(policy.validate().len(), 2);
        let approvals = ApprovalsSection {
            timeout_secs: 60,
            namespaces: [(
                "growth".to_owned(),
                ApproversSection { approvers: vec!["ana".into(), "group:ops".into()], required: 3 },
            )]
            .into(),
        };
        let problems = approvals.validate();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[1].contains("\"ana\" is neither"));
    }
}
