//! Policy as code: Rego v1 evaluated in-process with regorus.
//!
//! A policy is a Rego package under `terrarium.policies.<name>` with any of three rule sets,
//! each a set of messages:
//!
//! - `deny`: the app may not be deployed as it is;
//! - `warn`: it may, but the builder should know;
//! - `elevated`: it asks for more than the default (public visibility, quotas over the tier);
//!   a person must approve it.
//!
//! Each policy runs in a mode set by the operator, Gatekeeper-style: `deny` (enforce), `warn`
//! (report denials as warnings) or `dryrun` (record only). The input is the manifest
//! (`input.manifest`, as in terrarium.yaml), the bundle's files and scan findings, the
//! principal, the namespace's settings and, on the server, the directory of known owners.
//! Packages ending in `_test` hold Rego tests (`test_*` rules), run by [`PolicySet::run_tests`].

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use serde::Serialize;
use sha2::Digest;

/// The bundled policy library, readable in `crates/policy/library/`.
pub const LIBRARY: &[(&str, &str)] = &[
    ("owner.rego", include_str!("../library/owner.rego")),
    ("owner_test.rego", include_str!("../library/owner_test.rego")),
    ("ttl.rego", include_str!("../library/ttl.rego")),
    ("ttl_test.rego", include_str!("../library/ttl_test.rego")),
    ("egress.rego", include_str!("../library/egress.rego")),
    ("egress_test.rego", include_str!("../library/egress_test.rego")),
    ("egress_hosts.rego", include_str!("../library/egress_hosts.rego")),
    ("egress_hosts_test.rego", include_str!("../library/egress_hosts_test.rego")),
    ("shared_hosting.rego", include_str!("../library/shared_hosting.rego")),
    ("shared_hosting_test.rego", include_str!("../library/shared_hosting_test.rego")),
    ("secrets_ref.rego", include_str!("../library/secrets_ref.rego")),
    ("secrets_ref_test.rego", include_str!("../library/secrets_ref_test.rego")),
    ("quotas.rego", include_str!("../library/quotas.rego")),
    ("quotas_test.rego", include_str!("../library/quotas_test.rego")),
    ("exposure.rego", include_str!("../library/exposure.rego")),
    ("exposure_test.rego", include_str!("../library/exposure_test.rego")),
    ("restricted_data.rego", include_str!("../library/restricted_data.rego")),
    ("restricted_data_test.rego", include_str!("../library/restricted_data_test.rego")),
    ("runtime.rego", include_str!("../library/runtime.rego")),
    ("runtime_test.rego", include_str!("../library/runtime_test.rego")),
];

/// Largest total size of a policy set's Rego sources.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// How long one evaluation may run before it is stopped.
pub const EVALUATION_LIMIT: Duration = Duration::from_millis(250);

const ROOT: &str = "data.terrarium.policies";

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("the policies are {size} bytes; at most {MAX_POLICY_BYTES} are allowed")]
    TooLarge { size: usize },
    #[error("policy evaluation failed: {0}")]
    Evaluation(String),
    #[error("cannot read policies from {path}: {message}")]
    Read { path: String, message: String },
}

pub use api_types::policy::{Decision, Kind, Mode, Violation};

/// A Rego test and how it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TestResult {
    /// `terrarium.policies.egress_test.test_ip_literals_are_denied`.
    pub name: String,
    pub passed: bool,
    pub error: Option<String>,
}

/// Compiled policies, cloned for each evaluation.
#[derive(Clone)]
pub struct PolicySet {
    /// The policies alone: what a decision evaluates.
    engine: regorus::Engine,
    /// The policies and their tests: what `run_tests` evaluates.
    with_tests: regorus::Engine,
    /// (package, test rule) of every Rego test.
    tests: Vec<(String, String)>,
    files: Vec<String>,
    /// SHA-256 over every file's name and text.
    version: String,
    /// The names of the policies (`egress`): packages under `terrarium.policies`, tests aside.
    policies: Vec<String>,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet").field("files", &self.files).finish_non_exhaustive()
    }
}

impl PolicySet {
    /// The bundled library.
    pub fn builtin() -> PolicySet {
        let sources = LIBRARY.iter().map(|(name, text)| ((*name).to_owned(), (*text).to_owned())).collect();
        PolicySet::from_sources(sources).expect("the bundled policy library compiles")
    }

    /// Every `.rego` file of a directory (not its subdirectories), in name order.
    pub fn from_dir(dir: &Path) -> Result<PolicySet, PolicyError> {
        PolicySet::from_sources(read_dir(dir)?)
    }

    /// The bundled library (when `bundled`) and the `.rego` files of `dir`; a file of `dir`
    /// named like a bundled one replaces it.
    pub fn load(bundled: bool, dir: Option<&Path>) -> Result<PolicySet, PolicyError> {
        PolicySet::from_sources(sources(bundled, dir)?)
    }

    /// Compiles (file name, Rego source) pairs.
    pub fn from_sources(sources: Vec<(String, String)>) -> Result<PolicySet, PolicyError> {
        let size: usize = sources.iter().map(|(_, text)| text.len()).sum();
        if size > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { size });
        }
        let new_engine = || {
            let mut engine = regorus::Engine::new();
            engine.set_execution_timer_config(ExecutionTimerConfig {
                limit: EVALUATION_LIMIT,
                check_interval: NonZeroU32::new(64).expect("nonzero"),
            });
            engine
        };
        let version = version_of(&sources);
        let mut policies = Vec::new();
        let mut engine = new_engine();
        let mut with_tests = new_engine();
        let mut tests = Vec::new();
        let mut files = Vec::new();
        for (file, text) in sources {
            let package = with_tests
                .add_policy(file.clone(), text.clone())
                .map_err(|error| PolicyError::Parse { file: file.clone(), message: error.to_string() })?;
            let package = package.trim_start_matches("data.").to_owned();
            // Tests stay out of decisions: evaluating the policies' root would run them all.
            if !package.ends_with("_test") {
                if let Some(name) = package.strip_prefix("terrarium.policies.") {
                    policies.push(name.to_owned());
                }
                engine
                    .add_policy(file.clone(), text.clone())
                    .map_err(|error| PolicyError::Parse { file: file.clone(), message: error.to_string() })?;
            }
            for line in text.lines() {
                let Some(rest) = line.strip_prefix("test_") else { continue };
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                tests.push((package.clone(), format!("test_{name}")));
            }
            files.push(file);
        }
        // Evaluating once analyses and schedules the policies; every clone then starts prepared.
        engine.set_input(regorus::Value::new_object());
        let _ = engine.eval_query(ROOT.to_owned(), false);
        policies.sort();
        policies.dedup();
        Ok(PolicySet { engine, with_tests, tests, files, version, policies })
    }

    /// The decision for one input, with each policy in the mode `modes` gives it (`deny` by default).
    pub fn evaluate(&self, input: &serde_json::Value, modes: &BTreeMap<String, Mode>) -> Result<Decision, PolicyError> {
        let mut engine = self.engine.clone();
        let input = regorus::Value::from_json_str(&input.to_string())
            .map_err(|error| PolicyError::Evaluation(error.to_string()))?;
        engine.set_input(input);
        let answer =
            engine.eval_query(ROOT.to_owned(), false).map_err(|error| PolicyError::Evaluation(error.to_string()))?;
        let value = answer
            .result
            .first()
            .and_then(|result| result.expressions.first())
            .map(|expression| expression.value.clone())
            .unwrap_or(regorus::Value::Undefined);
        let results: serde_json::Value = match value {
            regorus::Value::Undefined => serde_json::Value::Null,
            value => {
                serde_json::from_str(&value.to_json_str().map_err(|error| PolicyError::Evaluation(error.to_string()))?)
                    .map_err(|error| PolicyError::Evaluation(error.to_string()))?
            }
        };
        let mut decision = Decision::default();
        for (policy, rules) in results.as_object().into_iter().flatten() {
            if policy.ends_with("_test") {
                continue;
            }
            let mode = modes.get(policy).copied().unwrap_or_default();
            for (rule, kind) in [("deny", Kind::Deny), ("warn", Kind::Warn), ("elevated", Kind::Elevated)] {
                for message in rules[rule].as_array().into_iter().flatten() {
                    let message = match message {
                        serde_json::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    decision.violations.push(Violation { policy: policy.clone(), kind, mode, message });
                }
            }
        }
        Ok(decision)
    }

    /// Runs every `test_*` rule of the `_test` packages.
    pub fn run_tests(&self) -> Vec<TestResult> {
        self.tests
            .iter()
            .map(|(package, rule)| {
                let name = format!("{package}.{rule}");
                let mut engine = self.with_tests.clone();
                match engine.eval_rule(format!("data.{name}")) {
                    Ok(regorus::Value::Bool(true)) => TestResult { name, passed: true, error: None },
                    Ok(_) => TestResult { name, passed: false, error: None },
                    Err(error) => TestResult { name, passed: false, error: Some(error.to_string()) },
                }
            })
            .collect()
    }

    /// The files of the set, tests included.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// SHA-256 (hex) over every file's name and text: equal sets have equal versions.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The names of the policies, as modes and exceptions name them.
    pub fn policies(&self) -> &[String] {
        &self.policies
    }
}

/// The sources [`PolicySet::load`] compiles: read them to learn, cheaply, whether a set changed.
pub fn sources(bundled: bool, dir: Option<&Path>) -> Result<Vec<(String, String)>, PolicyError> {
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    if bundled {
        sources.extend(LIBRARY.iter().map(|(name, text)| ((*name).to_owned(), (*text).to_owned())));
    }
    if let Some(dir) = dir {
        sources.extend(read_dir(dir)?);
    }
    Ok(sources.into_iter().collect())
}

/// SHA-256 (hex) over every file's name and text.
pub fn version_of(sources: &[(String, String)]) -> String {
    let mut hasher = sha2::Sha256::new();
    for (file, text) in sources {
        for part in [file.as_bytes(), b"\0", text.as_bytes(), b"\0"] {
            hasher.update(part);
        }
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// (file name, text) of every `.rego` file of `dir`, in name order.
fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, PolicyError> {
    let read_error =
        |error: std::io::Error| PolicyError::Read { path: dir.display().to_string(), message: error.to_string() };
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.extension().is_some_and(|extension| extension == "rego") {
            let text = std::fs::read_to_string(&path).map_err(read_error)?;
            let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            sources.push((name, text));
        }
    }
    sources.sort();
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_policy_test_passes() {
        let results = PolicySet::builtin().run_tests();
        assert!(results.len() >= 20, "{} tests", results.len());
        let failed: Vec<&TestResult> = results.iter().filter(|result| !result.passed).collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn modes_decide_what_a_denial_does() {
        let policies = PolicySet::builtin();
        let input = serde_json::json!({
            "manifest": {
                "metadata": { "namespace": "growth", "name": "lunch" },
                "spec": { "owner": "user:ana", "runtime": "function", "ttlDays": 400, "allowedEgress": ["10.0.0.1"],
                          "access": { "visibility": "public" } }
            }
        });
        let enforced = policies.evaluate(&input, &BTreeMap::new()).unwrap();
        let denied: Vec<&str> = enforced.denials().map(|v| v.policy.as_str()).collect();
        assert_eq!(denied, ["egress", "ttl"]);
        assert!(!enforced.allowed());
        assert_eq!(enforced.elevated().count(), 1);

        let modes = BTreeMap::from([("ttl".to_owned(), Mode::Warn), ("egress".to_owned(), Mode::Dryrun)]);
        let relaxed = policies.evaluate(&input, &modes).unwrap();
        assert!(relaxed.allowed());
        let warned: Vec<&str> = relaxed.warnings().map(|v| v.policy.as_str()).collect();
        assert_eq!(warned, ["ttl"]);
        // Dry-run denials are still in the decision, for the record.
        assert!(relaxed.violations.iter().any(|v| v.policy == "egress" && v.mode == Mode::Dryrun));
    }

    #[test]
    fn bad_policies_are_refused_with_the_file() {
        let error = PolicySet::from_sources(vec![("broken.rego".into(), "package x\ndeny contains if {".into())])
            .err()
            .unwrap()
            .to_string();
        assert!(error.starts_with("broken.rego:"), "{error}");
        let huge = "# x\n".repeat(MAX_POLICY_BYTES / 4 + 1);
        assert!(matches!(
            PolicySet::from_sources(vec![("big.rego".into(), format!("package big\n{huge}"))]),
            Err(PolicyError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_runaway_policy_is_stopped() {
        let looping = "package terrarium.policies.slow\n\ndeny contains msg if {\n\tsome i in numbers.range(1, 5000000)\n\ti < 0\n\tmsg := \"never\"\n}\n";
        let policies = PolicySet::from_sources(vec![("slow.rego".into(), looping.into())]).unwrap();
        let error = policies.evaluate(&serde_json::json!({}), &BTreeMap::new()).expect_err("stopped");
        assert!(matches!(error, PolicyError::Evaluation(_)), "{error}");
    }
}
