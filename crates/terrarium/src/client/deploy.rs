//! `terrarium validate` and `terrarium deploy`: check an app folder offline, then pack and upload it.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use api_types::{BUNDLE_CONTENT_TYPE, DeployResponse};
use indicatif::ProgressBar;
use manifest::ValidatedManifest;
use reqwest::header::CONTENT_TYPE;

use super::http::ApiClient;
use super::pack::pack_app_dir;
use crate::{ClientArgs, Output};

/// How long the upload and the server's checks may take together.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(300);

/// `terrarium validate DIR`: every problem of the manifest and the folder, without a server.
pub fn validate(dir: &Path) -> anyhow::Result<()> {
    let (validated, bundle) = pack_app_dir(dir)?;
    print_warnings(&validated);
    refuse_secrets(&validated, &bundle)?;
    // The bundled policies, as the builder's machine knows them; the server decides with its own.
    let decision = super::policy::evaluate_offline(&policy::PolicySet::builtin(), validated.manifest())?;
    for violation in decision.warnings() {
        eprintln!("warning: policy {}: {}", violation.policy, violation.message);
    }
    for violation in decision.elevated() {
        eprintln!("note: policy {}: needs an operator's approval: {}", violation.policy, violation.message);
    }
    let denials: Vec<String> =
        decision.denials().map(|violation| format!("policy {}: {}", violation.policy, violation.message)).collect();
    if !denials.is_empty() {
        anyhow::bail!("{}", denials.join("\n"));
    }
    for hint in plan::hints::hints(&validated, &bundle, None) {
        eprintln!("warning: {hint}");
    }
    // Every function compiled, its entry evaluated and its default export checked, as the
    // server's deploy does.
    let functions = super::load_check::check_functions(&validated, &bundle)?;
    let app = validated.manifest();
    let loaded = match functions {
        0 => String::new(),
        1 => ", its function loads".to_owned(),
        n => format!(", its {n} functions load"),
    };
    println!(
        "{} is valid: {}/{} ({}), {} files, {}{loaded}",
        dir.join(bundle::MANIFEST_FILE).display(),
        app.metadata.namespace,
        app.metadata.name,
        app.spec.runtime,
        bundle.files().len(),
        human_size(bundle.total_bytes())
    );
    Ok(())
}

/// `terrarium deploy DIR`: validate, pack, upload, print the result.
pub fn deploy(args: &ClientArgs, dir: &Path) -> anyhow::Result<()> {
    let progress = Progress::start();
    progress.say(format!("Checking {}", dir.display()));
    let (validated, bundle) = pack_app_dir(dir).inspect_err(|_| progress.finish())?;
    for warning in validated.warnings() {
        progress.warn(warning.to_string());
    }
    refuse_secrets(&validated, &bundle).inspect_err(|_| progress.finish())?;

    let client = ApiClient::new(args).inspect_err(|_| progress.finish())?;
    let app = validated.manifest();
    let archive = bundle.to_tar();
    let n_bytes = archive.len() as u64;
    let label = format!("{}/{}", app.metadata.namespace, app.metadata.name);
    progress.println(format!("Packed {label}: {} files, {}", bundle.files().len(), human_size(bundle.total_bytes())));

    // The spinner covers the upload and the server's checks: bundles are small and the
    // server answers only once the new revision is active.
    progress.say(format!("Uploading {label} ({})", human_size(n_bytes)));
    let request =
        client.post("/deploy").timeout(DEPLOY_TIMEOUT).header(CONTENT_TYPE, BUNDLE_CONTENT_TYPE).body(archive);
    let result = client.send(request).and_then(|response| client.read_json::<DeployResponse>(response));
    progress.finish();
    let deployed = result.with_context(|| format!("the deploy of {label} failed"))?;

    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&deployed)?);
        return Ok(());
    }
    for warning in &deployed.warnings {
        eprintln!("warning: {warning}");
    }
    println!("{}", describe_deploy(&deployed));
    if deployed.pending_approval.is_some() {
        return Ok(());
    }
    for url in &deployed.urls {
        println!("  {url}");
    }
    Ok(())
}

/// The one-line summary of a deploy: `Deployed growth/where2eat revision 3 (sha256:abcd1234abcd…)`.
pub fn describe_deploy(deployed: &DeployResponse) -> String {
    let app = format!("{}/{}", deployed.namespace, deployed.name);
    let digest = short_digest(&deployed.digest);
    if let Some(request) = &deployed.pending_approval {
        let mut text = format!("Waiting for approval: {app} ({digest}) asks for more than it was granted:\n");
        for asked in &request.requests {
            text.push_str(&format!("  - {}: {}\n", asked.policy, asked.message));
        }
        let serving = match deployed.revision {
            0 => "The app goes live once it is approved.".to_owned(),
            revision => format!("Revision {revision} keeps serving until then."),
        };
        text.push_str(&format!(
            "Approval request {id}: an operator of {namespace} approves it with `terrarium approvals approve {id} --reason \"...\"`. {serving}\nSee it with `terrarium approvals show {id}`; it is denied if not decided by {expires}.",
            id = request.id,
            namespace = deployed.namespace,
            expires = request.expires_at,
        ));
        return text;
    }
    match deployed.changed {
        true => format!("Deployed {app} revision {} ({digest})", deployed.revision),
        false => format!("No changes: {app} revision {} already has these files ({digest})", deployed.revision),
    }
}

/// `sha256:` and the first 12 hex digits: enough to tell revisions apart.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    match hex.get(..12) {
        Some(prefix) if hex.len() > 12 => format!("sha256:{prefix}…"),
        _ => digest.to_owned(),
    }
}

/// Sizes for people: `812 B`, `14.2 KB`, `3.1 MB`.
pub fn human_size(n_bytes: u64) -> String {
    match n_bytes {
        0..1024 => format!("{n_bytes} B"),
        1024..1_048_576 => format!("{:.1} KB", n_bytes as f64 / 1024.0),
        _ => format!("{:.1} MB", n_bytes as f64 / 1_048_576.0),
    }
}

/// Stops before anything leaves the machine when a file holds a likely secret. The server
/// checks again with the operator's rules.
fn refuse_secrets(validated: &ValidatedManifest, bundle: &bundle::Bundle) -> anyhow::Result<()> {
    let findings = plan::secret_findings(&scan::Scanner::builtin(), bundle);
    if findings.is_empty() {
        return Ok(());
    }
    for finding in &findings {
        eprintln!("error: likely secret: {finding}");
    }
    let metadata = &validated.manifest().metadata;
    anyhow::bail!(
        "{} likely secret(s) in the app's files, so nothing was uploaded; {}",
        findings.len(),
        plan::secrets_hint(&metadata.namespace, &metadata.name)
    )
}

/// Prints the manifest's warnings; each reads `file:line:col: warning: field: message`.
fn print_warnings(validated: &ValidatedManifest) {
    for warning in validated.warnings() {
        eprintln!("{warning}");
    }
}

/// A progress line on stderr, drawn only when stderr is a terminal; otherwise silent.
struct Progress {
    spinner: Option<ProgressBar>,
}

impl Progress {
    fn start() -> Progress {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let spinner = ProgressBar::new_spinner();
            spinner.enable_steady_tick(Duration::from_millis(100));
            spinner
        });
        Progress { spinner }
    }

    /// Shows what is happening now.
    fn say(&self, message: String) {
        if let Some(spinner) = &self.spinner {
            spinner.set_message(message);
        }
    }

    /// Prints a line that stays on screen above the progress line.
    fn println(&self, line: String) {
        if let Some(spinner) = &self.spinner {
            spinner.println(line);
        }
    }

    /// Prints a warning on stderr, terminal or not, without garbling the progress line.
    fn warn(&self, line: String) {
        match &self.spinner {
            Some(spinner) => spinner.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Removes the progress line before the result is printed.
    fn finish(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(changed: bool) -> DeployResponse {
        DeployResponse {
            namespace: "growth".into(),
            name: "where2eat".into(),
            revision: 3,
            digest: format!("sha256:{}", "abcdef0123456789".repeat(4)),
            changed,
            urls: vec![],
            warnings: vec![],
            pending_approval: None,
            admission_ms: None,
        }
    }

    #[test]
    fn the_summary_names_the_app_revision_and_short_digest() {
        assert_eq!(describe_deploy(&response(true)), "Deployed growth/where2eat revision 3 (sha256:abcdef012345…)");
        assert!(describe_deploy(&response(false)).starts_with("No changes: growth/where2eat revision 3"));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(14_540), "14.2 KB");
        assert_eq!(human_size(3 * 1_048_576), "3.0 MB");
    }
}
