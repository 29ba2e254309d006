//! `terrarium apps` and `terrarium namespaces`: list, inspect, roll back and delete apps; list and create namespaces.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use api_types::{
    AppDetail, AppSummary, ArchiveRequest, CreateNamespaceRequest, ExtendRequest, NamespaceInfo, RollbackRequest,
};
use comfy_table::{Table, presets};

use super::deploy::{human_size, short_digest};
use super::http::{ApiClient, is_plain_name, parse_app_ref};
use crate::{ClientArgs, Output};

#[derive(clap::Subcommand, Debug)]
pub enum AppsCommand {
    /// List apps with their active revision, phase, owner and address.
    List {
        /// Only the apps of this namespace.
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Only the apps that expire within this many days (`30d` or `30`), or have expired.
        #[arg(long, value_parser = parse_days)]
        expiring: Option<u32>,
    },
    /// Show one app and all its revisions.
    Get {
        /// The app, as NAMESPACE/NAME.
        app: String,
    },
    /// Make an earlier revision active again.
    Rollback {
        /// The app, as NAMESPACE/NAME.
        app: String,
        /// The revision to bring back; by default the one before the active one.
        #[arg(long)]
        to: Option<i64>,
    },
    /// Keep an app with a TTL longer: move its expiry some days later (within the namespace's
    /// longest TTL), saying why. A deploy of a new revision renews it too.
    Extend {
        /// The app, as NAMESPACE/NAME.
        app: String,
        /// Days to add (`30d` or `30`), counted from today when it has expired.
        #[arg(long, value_parser = parse_days)]
        days: u32,
        /// Why the app is still needed; kept in the audit log.
        #[arg(long)]
        reason: String,
    },
    /// Archive an app: its data is kept in an archive, it stops serving (410) and frees what it
    /// held. Apps past their TTL are archived by themselves.
    Archive {
        /// The app, as NAMESPACE/NAME.
        app: String,
        /// Why; kept in the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Bring an archived app back with its data, serving again, with a fresh TTL.
    Restore {
        /// The app, as NAMESPACE/NAME.
        app: String,
    },
    /// Delete an app and all its revisions; its address stops working.
    Delete {
        /// The app, as NAMESPACE/NAME.
        app: String,
        /// Do not ask for confirmation (needed when not run in a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum NamespacesCommand {
    /// List namespaces and how many apps each holds.
    List,
    /// Create a namespace (deploying into a new namespace as admin also creates it).
    Create {
        /// The namespace's name: lowercase letters, digits and dashes.
        name: String,
    },
}

pub fn apps(args: &ClientArgs, command: AppsCommand) -> anyhow::Result<()> {
    match command {
        AppsCommand::List { namespace, expiring } => list_apps(args, namespace.as_deref(), expiring),
        AppsCommand::Extend { app, days, reason } => extend_app(args, &app, days, reason),
        AppsCommand::Archive { app, reason } => archive_app(args, &app, reason),
        AppsCommand::Restore { app } => restore_app(args, &app),
        AppsCommand::Get { app } => get_app(args, &app),
        AppsCommand::Rollback { app, to } => rollback_app(args, &app, to),
        AppsCommand::Delete { app, yes } => delete_app(args, &app, yes),
    }
}

pub fn namespaces(args: &ClientArgs, command: NamespacesCommand) -> anyhow::Result<()> {
    match command {
        NamespacesCommand::List => list_namespaces(args),
        NamespacesCommand::Create { name } => create_namespace(args, &name),
    }
}

/// `30d` or `30`: a number of days.
fn parse_days(text: &str) -> Result<u32, String> {
    let number = text.strip_suffix('d').unwrap_or(text);
    match number.parse::<u32>() {
        Ok(days) if days <= 3650 => Ok(days),
        _ => Err(format!("{text:?} is not a number of days; write it like 30d or 30 (at most 3650)")),
    }
}

fn list_apps(args: &ClientArgs, namespace: Option<&str>, expiring: Option<u32>) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    if let Some(namespace) = namespace.filter(|namespace| !is_plain_name(namespace)) {
        bail!("{namespace:?} is not a namespace name; namespaces are lowercase letters, digits and dashes")
    }
    let days = expiring.map(|days| days.to_string());
    let query = [("namespace", namespace), ("expiring_within_days", days.as_deref())];
    let mut apps: Vec<AppSummary> = client.get_json_query("/apps", &query)?;
    // Filter here too, so the flag works whether or not the server filters.
    if let Some(namespace) = namespace {
        apps.retain(|app| app.namespace == namespace);
    }
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&apps)?);
        return Ok(());
    }
    if apps.is_empty() {
        match (namespace, expiring) {
            (_, Some(days)) => println!("No app expires within {days} days."),
            (Some(namespace), None) => println!("No apps in namespace {namespace}."),
            (None, None) => {
                println!("No apps yet. Create one with `terrarium init NAME`, then `terrarium deploy NAME`.")
            }
        }
        return Ok(());
    }
    match expiring {
        Some(_) => println!("{}", expiring_table(&apps)),
        None => println!("{}", apps_table(&apps)),
    }
    Ok(())
}

/// The `apps list` table: one row per app, its first address in the URL column.
pub fn apps_table(apps: &[AppSummary]) -> String {
    let rows = apps.iter().map(|app| {
        vec![
            app.namespace.clone(),
            app.name.clone(),
            app.active_revision.to_string(),
            app.phase.clone(),
            app.owner.clone(),
            app.urls.first().cloned().unwrap_or_default(),
        ]
    });
    plain_table(&["NAMESPACE", "NAME", "REVISION", "PHASE", "OWNER", "URL"], rows)
}

/// The `apps list --expiring` table: when each app expires and who owns it.
fn expiring_table(apps: &[AppSummary]) -> String {
    let rows = apps.iter().map(|app| {
        vec![
            app.namespace.clone(),
            app.name.clone(),
            app.phase.clone(),
            app.expires_at.clone().unwrap_or_default(),
            app.owner.clone(),
        ]
    });
    plain_table(&["NAMESPACE", "NAME", "PHASE", "EXPIRES", "OWNER"], rows)
}

fn extend_app(args: &ClientArgs, app: &str, days: u32, reason: String) -> anyhow::Result<()> {
    let (namespace, name) = parse_app_ref(app)?;
    let client = ApiClient::new(args)?;
    let summary: AppSummary = client
        .post_json(&format!("/apps/{namespace}/{name}/extend"), &ExtendRequest { days, reason })
        .with_context(|| format!("{namespace}/{name} was not extended"))?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "Extended {namespace}/{name}: it now expires {} ({})",
        summary.expires_at.as_deref().unwrap_or("never"),
        summary.phase
    );
    Ok(())
}

fn archive_app(args: &ClientArgs, app: &str, reason: String) -> anyhow::Result<()> {
    let (namespace, name) = parse_app_ref(app)?;
    let client = ApiClient::new(args)?;
    let summary: AppSummary = client
        .post_json(&format!("/apps/{namespace}/{name}/archive"), &ArchiveRequest { reason })
        .with_context(|| format!("{namespace}/{name} was not archived"))?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "Archived {namespace}/{name} with its data; it answers 410 until `terrarium apps restore {namespace}/{name}`."
    );
    Ok(())
}

fn restore_app(args: &ClientArgs, app: &str) -> anyhow::Result<()> {
    let (namespace, name) = parse_app_ref(app)?;
    let client = ApiClient::new(args)?;
    let summary: AppSummary = client
        .post_json(&format!("/apps/{namespace}/{name}/restore"), &serde_json::json!({}))
        .with_context(|| format!("{namespace}/{name} was not restored"))?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!("Restored {namespace}/{name} with its data (revision {}).", summary.active_revision);
    if let Some(expires_at) = &summary.expires_at {
        println!("  It expires {expires_at}.");
    }
    for url in &summary.urls {
        println!("  {url}");
    }
    Ok(())
}

fn get_app(args: &ClientArgs, app: &str) -> anyhow::Result<()> {
    let (namespace, name) = parse_app_ref(app)?;
    let client = ApiClient::new(args)?;
    let detail: AppDetail = client.get_json(&format!("/apps/{namespace}/{name}"))?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(());
    }
    println!("{}", describe_app(&detail));
    Ok(())
}

/// The `apps get` text: a summary block, then the revisions newest first.
pub fn describe_app(detail: &AppDetail) -> String {
    let summary = &detail.summary;
    let mut lines = vec![
        format!("App:          {}/{}", summary.namespace, summary.name),
        format!("Owner:        {}", summary.owner),
        format!("Runtime:      {}", summary.runtime),
        format!("Phase:        {}", summary.phase),
        format!("Revision:     {}", summary.active_revision),
    ];
    if let Some(description) = detail.description.as_deref().filter(|text| !text.is_empty()) {
        lines.push(format!("Description:  {description}"));
    }
    lines.push(format!("Created:      {}", detail.created_at));
    lines.push(format!("Updated:      {}", summary.updated_at));
    if let Some(expires_at) = &summary.expires_at {
        lines.push(format!(
            "Expires:      {expires_at} (extend with `terrarium apps extend {}/{} --days 30 --reason \"...\"`)",
            summary.namespace, summary.name
        ));
    }
    for (url_idx, url) in summary.urls.iter().enumerate() {
        let label = if url_idx == 0 { "URLs:" } else { "" };
        lines.push(format!("{label:<14}{url}"));
    }
    for (index, objective) in detail.slo.iter().flat_map(|slo| &slo.objectives).enumerate() {
        let label = if index == 0 { "SLO:" } else { "" };
        let good =
            |percent: Option<f64>| percent.map_or_else(|| "no traffic".to_owned(), |percent| format!("{percent:.2} %"));
        let alert = match objective.alert.as_str() {
            "fast_burn" => "FAST BURN",
            "slow_burn" => "slow burn",
            _ => "ok",
        };
        lines.push(format!(
            "{label:<14}{}: {}; last hour {}, 6 h {}; burn {:.1}× (1 h), {:.1}× (6 h): {alert}",
            objective.name,
            objective.target,
            good(objective.good_percent_1h),
            good(objective.good_percent_6h),
            objective.burn_rate_1h,
            objective.burn_rate_6h
        ));
    }
    for (index, request) in detail.pending_approvals.iter().enumerate() {
        let label = if index == 0 { "Pending:" } else { "" };
        let asked: Vec<String> = request.requests.iter().map(ToString::to_string).collect();
        lines.push(format!(
            "{label:<14}approval request {} by {} (until {}): {}",
            request.id,
            request.requested_by,
            request.expires_at,
            asked.join("; ")
        ));
    }
    for (index, stored) in detail.violations.iter().enumerate() {
        let label = if index == 0 { "Violations:" } else { "" };
        let violation = &stored.violation;
        lines.push(format!(
            "{label:<14}{} {} ({} mode, since {}): {}",
            violation.kind.as_str(),
            violation.policy,
            violation.mode.as_str(),
            stored.first_seen,
            violation.message
        ));
    }
    for (index, exception) in detail.exceptions.iter().enumerate() {
        let label = if index == 0 { "Exceptions:" } else { "" };
        lines.push(format!(
            "{label:<14}{} until {} (by {}): {}",
            exception.policy, exception.expires_at, exception.granted_by, exception.reason
        ));
    }
    let mut revisions: Vec<_> = detail.revisions.iter().collect();
    revisions.sort_by_key(|revision| std::cmp::Reverse(revision.revision));
    let rows = revisions.into_iter().map(|revision| {
        vec![
            revision.revision.to_string(),
            if revision.active { "*".to_owned() } else { String::new() },
            short_digest(&revision.digest),
            revision.n_files.to_string(),
            human_size(revision.size_bytes),
            revision.created_at.clone(),
            revision.created_by.clone(),
        ]
    });
    let table = plain_table(&["REVISION", "ACTIVE", "DIGEST", "FILES", "SIZE", "CREATED", "BY"], rows);
    format!("{}\n\n{table}", lines.join("\n"))
}

fn rollback_app(args: &ClientArgs, app: &str, to: Option<i64>) -> anyhow::Result<()> {
    let (namespace, name) = parse_app_ref(app)?;
    let client = ApiClient::new(args)?;
    let request = RollbackRequest { revision: to };
    let detail: AppDetail = client
        .post_json(&format!("/apps/{namespace}/{name}/rollback"), &request)
        .with_context(|| format!("the rollback of {namespace}/{name} failed"))?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(());
    }
    println!("Rolled back {namespace}/{name}: revision {} is active", detail.summary.active_revision);
    for url in &detail.summary.urls {
        println!("  {url}");
    }
    Ok(())
}

fn delete_app(args: &ClientArgs, app: &str, yes: bool) -> anyhow::Result<()> {
    let (namespace, name) = parse_app_ref(app)?;
    let client = ApiClient::new(args)?;
    if !yes {
        let data = stored_data(&client, &namespace, &name);
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if !interactive {
            bail!(
                "refusing to delete {namespace}/{name} without confirmation{}; add --yes to delete it from a script",
                data.as_deref().map(|data| format!(" ({data})")).unwrap_or_default()
            );
        }
        let question = format!(
            "Delete {namespace}/{name} and all its revisions? Its address stops working.{} [y/N] ",
            data.as_deref().map(|data| format!(" {data}.")).unwrap_or_default()
        );
        if !confirm(&question)? {
            eprintln!("Nothing was deleted.");
            return Ok(());
        }
    }
    client
        .send(client.delete(&format!("/apps/{namespace}/{name}")))
        .with_context(|| format!("the delete of {namespace}/{name} failed"))?;
    match args.output {
        Output::Json => println!("{}", serde_json::json!({ "namespace": namespace, "name": name, "deleted": true })),
        Output::Table => println!("Deleted {namespace}/{name}"),
    }
    Ok(())
}

/// What deleting the app deletes of its data, in a sentence; `None` when it stores nothing (or
/// the caller may not see it, and then may not delete it either).
fn stored_data(client: &ApiClient, namespace: &str, name: &str) -> Option<String> {
    let usage: serde_json::Value = client.get_json(&format!("/apps/{namespace}/{name}/data")).ok()?;
    let mut parts = Vec::new();
    let keys = usage["kv"]["keys"].as_u64().unwrap_or(0);
    if keys > 0 {
        parts.push(format!("{keys} key-value entries ({} bytes)", usage["kv"]["bytes"]));
    }
    let sql = &usage["sql"];
    let tables: Vec<String> = sql["tables"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|table| format!("{} ({} rows)", table["name"].as_str().unwrap_or("?"), table["rows"]))
        .collect();
    match sql["isolation"].as_str() {
        Some("shared") => {
            return Some(match parts.is_empty() {
                true => "Its SQL tables are the namespace's (isolation: shared) and stay".to_owned(),
                false => format!(
                    "It stores {}, deleted with it; its SQL tables are the namespace's and stay",
                    parts.join(" and ")
                ),
            });
        }
        Some(_) if !tables.is_empty() => parts.push(format!("SQL tables {}", tables.join(", "))),
        _ => {}
    }
    (!parts.is_empty()).then(|| format!("It stores {}: all of it is deleted with it", parts.join(" and ")))
}

/// Asks a yes/no question on the terminal; only `y` or `yes` count as yes.
fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).context("failed to read the answer")?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn list_namespaces(args: &ClientArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    let namespaces: Vec<NamespaceInfo> = client.get_json("/namespaces")?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&namespaces)?);
        return Ok(());
    }
    if namespaces.is_empty() {
        println!("No namespaces yet. Create one with `terrarium namespaces create NAME`, or deploy an app into one.");
        return Ok(());
    }
    let rows = namespaces.iter().map(|namespace| {
        vec![
            namespace.name.clone(),
            namespace.n_apps.to_string(),
            namespace.created_at.clone(),
            namespace.created_by.clone(),
        ]
    });
    println!("{}", plain_table(&["NAME", "APPS", "CREATED", "BY"], rows));
    Ok(())
}

fn create_namespace(args: &ClientArgs, name: &str) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    let request = CreateNamespaceRequest { name: name.to_owned() };
    let response = client
        .send(client.post("/namespaces").json(&request))
        .with_context(|| format!("the namespace {name} could not be created"))?;
    // The body is informative only: print it as JSON when asked, otherwise a sentence.
    let body = response.text().unwrap_or_default();
    match args.output {
        Output::Json => match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(value) => println!("{}", serde_json::to_string_pretty(&value)?),
            Err(_) => println!("{}", serde_json::json!({ "name": name })),
        },
        Output::Table => println!("Created namespace {name}"),
    }
    Ok(())
}

/// A borderless table with two spaces between columns, like `kubectl get`.
pub(crate) fn plain_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.trim_fmt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::RevisionInfo;

    fn summary() -> AppSummary {
        AppSummary {
            namespace: "growth".into(),
            name: "where2eat".into(),
            owner: "user:ana".into(),
            runtime: "static+edge".into(),
            active_revision: 2,
            phase: "Active".into(),
            updated_at: "2026-11-01T10:00:00Z".into(),
            urls: vec!["http://127.0.0.1:8080/apps/growth/where2eat/".into()],
            data_class: None,
            expires_at: None,
        }
    }

    #[test]
    fn the_list_table_has_one_row_per_app() {
        let table = apps_table(&[summary()]);
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        for word in ["NAMESPACE", "NAME", "REVISION", "PHASE", "OWNER", "URL"] {
            assert!(lines[0].contains(word), "{table}");
        }
        assert!(lines[1].starts_with("growth") && lines[1].contains("http://127.0.0.1:8080/apps/growth/where2eat/"));
    }

    #[test]
    fn get_shows_the_summary_and_revisions_newest_first() {
        let revision = |revision, active| RevisionInfo {
            revision,
            digest: format!("sha256:{}", "ab".repeat(32)),
            created_at: "2026-11-01T10:00:00Z".into(),
            created_by: "admin".into(),
            n_files: 3,
            size_bytes: 2048,
            active,
        };
        let detail = AppDetail {
            summary: summary(),
            description: Some("Pick a lunch place".into()),
            created_at: "2026-10-01T10:00:00Z".into(),
            revisions: vec![revision(1, false), revision(2, true)],
            slo: None,
            violations: vec![],
            pending_approvals: vec![],
            exceptions: vec![],
        };
        let text = describe_app(&detail);
        assert!(text.contains("App:          growth/where2eat"), "{text}");
        assert!(text.contains("Description:  Pick a lunch place"), "{text}");
        let revision_lines: Vec<_> = text.lines().skip_while(|line| !line.starts_with("REVISION")).collect();
        assert!(revision_lines[1].starts_with("2") && revision_lines[1].contains('*'), "{text}");
        assert!(revision_lines[2].starts_with("1") && revision_lines[2].contains("2.0 KB"), "{text}");
    }
}
