//! `terrarium policy test|eval`: run Rego tests, and see the decision for a manifest offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use policy::{Decision, PolicySet};

use crate::Output;

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Run the Rego tests (`test_*` rules) of a directory of policies, or of the bundled library.
    Test {
        /// A directory of .rego files; the bundled library when left out.
        dir: Option<PathBuf>,
    },
    /// Show what the policies decide about an app, and why.
    Eval {
        /// The app's manifest.
        #[arg(short = 'f', long = "file", default_value = "terrarium.yaml")]
        file: PathBuf,
        /// A directory of .rego files to use instead of the bundled library.
        #[arg(long)]
        policies: Option<PathBuf>,
    },
}

fn load(dir: Option<&Path>) -> anyhow::Result<PolicySet> {
    match dir {
        None => Ok(PolicySet::builtin()),
        Some(dir) => {
            PolicySet::from_dir(dir).with_context(|| format!("the policies in {} cannot be used", dir.display()))
        }
    }
}

pub fn policy(output: Output, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Test { dir } => {
            let policies = load(dir.as_deref())?;
            let results = policies.run_tests();
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                for result in &results {
                    let status = if result.passed { "PASS" } else { "FAIL" };
                    match &result.error {
                        Some(error) => println!("{status}  {}: {error}", result.name),
                        None => println!("{status}  {}", result.name),
                    }
                }
            }
            let failed = results.iter().filter(|result| !result.passed).count();
            if results.is_empty() {
                bail!("no Rego tests found: tests are rules named test_* in .rego files");
            }
            if failed > 0 {
                bail!("{failed} of {} policy tests failed", results.len());
            }
            if output == Output::Table {
                println!("{} policy tests passed", results.len());
            }
            Ok(())
        }
        PolicyCommand::Eval { file, policies } => {
            let policies = load(policies.as_deref())?;
            let source = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let name = file.display().to_string();
            let validated = manifest::load(&name, &source).map_err(|diagnostics| {
                let problems: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("{}", problems.join("\n"))
            })?;
            let decision = evaluate_offline(&policies, validated.manifest())?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&decision)?);
            } else {
                print!("{}", describe(&decision));
            }
            match decision.allowed() {
                true => Ok(()),
                false => bail!("the policies deny this app"),
            }
        }
    }
}

/// The decision of `policies` about a manifest on the builder's machine (no directory, no
/// namespace settings: the server decides with those).
pub fn evaluate_offline(policies: &PolicySet, manifest: &manifest::MicroApp) -> anyhow::Result<Decision> {
    let input = serde_json::json!({ "manifest": serde_json::to_value(manifest)? });
    Ok(policies.evaluate(&input, &BTreeMap::new())?)
}

/// Denials, warnings and elevated requests, one per line, each with its policy.
pub fn describe(decision: &Decision) -> String {
    let mut text = String::new();
    for violation in decision.denials() {
        text.push_str(&format!("deny      {}: {}\n", violation.policy, violation.message));
    }
    for violation in decision.warnings() {
        text.push_str(&format!("warn      {}: {}\n", violation.policy, violation.message));
    }
    for violation in decision.elevated() {
        text.push_str(&format!("approval  {}: {}\n", violation.policy, violation.message));
    }
    if text.is_empty() {
        text.push_str("allowed: no policy objects\n");
    }
    text
}
