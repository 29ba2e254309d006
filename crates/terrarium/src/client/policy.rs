//! `terrarium policy test|eval`: run Rego tests, and see the decision for a manifest offline.
//! `terrarium policy status|reload|violations|exceptions`: the server's policies and findings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use policy::{Decision, PolicySet};

use api_types::policy::{NewPolicyException, PolicyException, PolicyStatus, StoredViolation};

use super::apps::plain_table;
use super::http::{ApiClient, parse_app_ref};
use crate::{ClientArgs, Output};

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
    /// The policies the server runs: version, files, modes, the last audit.
    Status,
    /// Make the server read its policies again now (platform operators).
    Reload,
    /// What the background audit found in running apps, in full.
    Violations {
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// NAMESPACE/APP.
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        policy: Option<String>,
    },
    /// Let one app break one policy for a while (operators of its namespace).
    #[command(subcommand)]
    Exceptions(ExceptionsCommand),
}

#[derive(clap::Subcommand, Debug)]
pub enum ExceptionsCommand {
    /// Grant an exception: `terrarium policy exceptions add growth/lunch ttl --reason "..." --for 14d`.
    Add {
        /// NAMESPACE/APP.
        app: String,
        policy: String,
        #[arg(long, short = 'r')]
        reason: String,
        /// How long: `12h`, `14d` (at most a year).
        #[arg(long = "for", conflicts_with = "until")]
        duration: Option<String>,
        /// Until when, RFC 3339 (`2026-12-31T00:00:00Z`).
        #[arg(long)]
        until: Option<String>,
    },
    List {
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// End an exception now.
    Rm { id: i64 },
}

fn load(dir: Option<&Path>) -> anyhow::Result<PolicySet> {
    match dir {
        None => Ok(PolicySet::builtin()),
        Some(dir) => {
            PolicySet::from_dir(dir).with_context(|| format!("the policies in {} cannot be used", dir.display()))
        }
    }
}

pub fn policy(args: &ClientArgs, command: PolicyCommand) -> anyhow::Result<()> {
    let output = args.output;
    match command {
        PolicyCommand::Status => {
            let status: PolicyStatus = ApiClient::new(args)?.get_json("/policy")?;
            print_status(output, &status)
        }
        PolicyCommand::Reload => {
            let client = ApiClient::new(args)?;
            let status: PolicyStatus = client.post_json("/policy/reload", &serde_json::json!({}))?;
            print_status(output, &status)
        }
        PolicyCommand::Violations { namespace, app, policy } => {
            let mut namespace = namespace;
            let mut app_name = None;
            if let Some(app) = app {
                let (app_namespace, name) = parse_app_ref(&app)?;
                namespace = Some(app_namespace);
                app_name = Some(name);
            }
            let violations: Vec<StoredViolation> = ApiClient::new(args)?.get_json_query(
                "/policy/violations",
                &[("app", app_name.as_deref()), ("namespace", namespace.as_deref()), ("policy", policy.as_deref())],
            )?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&violations)?),
                Output::Table if violations.is_empty() => println!("No violations found."),
                Output::Table => println!("{}", violations_table(&violations)),
            }
            Ok(())
        }
        PolicyCommand::Exceptions(command) => exceptions(args, command),
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

fn print_status(output: Output, status: &PolicyStatus) -> anyhow::Result<()> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(status)?);
        return Ok(());
    }
    println!("Policies:     {} (version {})", status.source, &status.version[..status.version.len().min(12)]);
    println!("Loaded:       {}", status.loaded_at);
    println!("Files:        {}", status.files.join(", "));
    let modes: Vec<String> = status.modes.iter().map(|(name, mode)| format!("{name}={}", mode.as_str())).collect();
    println!("Modes:        {}", if modes.is_empty() { "every policy denies".to_owned() } else { modes.join(", ") });
    match &status.last_audit {
        Some(time) => println!("Last audit:   {time} ({} apps)", status.audited_apps),
        None => println!("Last audit:   not yet"),
    }
    if let Some(error) = &status.reload_error {
        println!("Reload error: {error} (the policies above keep running)");
    }
    Ok(())
}

fn violations_table(violations: &[StoredViolation]) -> String {
    let rows = violations.iter().map(|stored| {
        let violation = &stored.violation;
        vec![
            format!("{}/{}", stored.namespace, stored.app),
            stored.revision.to_string(),
            violation.policy.clone(),
            violation.kind.as_str().to_owned(),
            violation.mode.as_str().to_owned(),
            stored.first_seen.clone(),
            violation.message.clone(),
        ]
    });
    plain_table(&["APP", "REVISION", "POLICY", "KIND", "MODE", "SINCE", "MESSAGE"], rows)
}

fn exceptions(args: &ClientArgs, command: ExceptionsCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    let exceptions: Vec<PolicyException> = match command {
        ExceptionsCommand::Add { app, policy, reason, duration, until } => {
            let (namespace, app) = parse_app_ref(&app)?;
            let expires_at = match (duration, until) {
                (_, Some(until)) => until,
                (Some(duration), None) => expiry_after(&duration)?,
                (None, None) => bail!("say how long the exception lasts: --for 14d, or --until 2026-12-31T00:00:00Z"),
            };
            let request = NewPolicyException { namespace, app, policy, reason, expires_at };
            vec![client.post_json("/policy/exceptions", &request)?]
        }
        ExceptionsCommand::List { namespace } => {
            client.get_json_query("/policy/exceptions", &[("namespace", namespace.as_deref())])?
        }
        ExceptionsCommand::Rm { id } => {
            let response = client.send(client.delete(&format!("/policy/exceptions/{id}")))?;
            vec![client.read_json(response)?]
        }
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&exceptions)?),
        Output::Table if exceptions.is_empty() => println!("No exceptions."),
        Output::Table => {
            let rows = exceptions.iter().map(|exception| {
                vec![
                    exception.id.to_string(),
                    format!("{}/{}", exception.namespace, exception.app),
                    exception.policy.clone(),
                    if exception.active { "active" } else { "ended" }.to_owned(),
                    exception.expires_at.clone(),
                    exception.granted_by.clone(),
                    exception.reason.clone(),
                ]
            });
            println!("{}", plain_table(&["ID", "APP", "POLICY", "STATE", "EXPIRES", "GRANTED BY", "REASON"], rows));
        }
    }
    Ok(())
}

/// `12h`, `14d`, `90m` or `30s` from now, as RFC 3339 UTC.
fn expiry_after(duration: &str) -> anyhow::Result<String> {
    let split = duration.find(|c: char| !c.is_ascii_digit()).unwrap_or(duration.len());
    let (number, unit) = duration.split_at(split);
    let number: i64 =
        number.parse().map_err(|_| anyhow::anyhow!("--for {duration:?}: use a number and a unit, like 12h or 14d"))?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        "d" => number * 86_400,
        _ => bail!("--for {duration:?}: the unit is s, m, h or d (like 14d)"),
    };
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    Ok(expires.replace_nanosecond(0)?.format(&time::format_description::well_known::Rfc3339)?)
}

/// The decision of `policies` about a manifest on the builder's machine (no directory, no
/// namespace settings: the server decides with those).
pub fn evaluate_offline(policies: &PolicySet, manifest: &manifest::MicroApp) -> anyhow::Result<Decision> {
    let input = serde_json::json!({
        "manifest": serde_json::to_value(manifest)?,
        "egress": control::governance::egress_facts(manifest),
    });
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
