//! `terrarium audit`: the audit log, filtered and paged, with the API's rules (a namespace's
//! events for its operators, all of them for platform admins).

use api_types::AuditEvent;

use super::apps::plain_table;
use super::http::ApiClient;
use crate::{ClientArgs, Output};

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// One namespace's events (its operators may read them); every namespace needs platform admin.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// One app's events, as NAMESPACE/APP.
    #[arg(long)]
    pub app: Option<String>,
    /// Who acted: a user name, or `terrarium` for the platform itself.
    #[arg(long)]
    pub actor: Option<String>,
    /// An action, or its area with a dot: `app.deploy`, `approval.`, `secret.`.
    #[arg(long)]
    pub action: Option<String>,
    /// Since a span back from now (`30m`, `24h`, `7d`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Events per page, newest first (1 to 10000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// The next page: events older than this id (each full page says which).
    #[arg(long)]
    pub before: Option<i64>,
}

/// The query of a listing: each pair, escaped by the client.
fn query(audit: &AuditArgs) -> anyhow::Result<Vec<(&'static str, Option<String>)>> {
    let (namespace, app) = match audit.app.as_deref().map(|app| app.split_once('/')) {
        None => (audit.namespace.clone(), None),
        Some(Some((namespace, name))) if !namespace.is_empty() && !name.is_empty() => {
            if audit.namespace.as_deref().is_some_and(|given| given != namespace) {
                anyhow::bail!("--app {namespace}/{name} is not in --namespace {}", audit.namespace.as_deref().unwrap());
            }
            (Some(namespace.to_owned()), Some(name.to_owned()))
        }
        Some(_) => anyhow::bail!("--app takes NAMESPACE/APP, like growth/where2eat"),
    };
    Ok(vec![
        ("namespace", namespace),
        ("app", app),
        ("actor", audit.actor.clone()),
        ("action", audit.action.clone()),
        ("since", audit.since.clone()),
        ("before", audit.before.map(|id| id.to_string())),
        ("limit", Some(audit.limit.to_string())),
    ])
}

pub fn audit(args: &ClientArgs, audit: AuditArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    let pairs = query(&audit)?;
    let pairs: Vec<(&str, Option<&str>)> = pairs.iter().map(|(name, value)| (*name, value.as_deref())).collect();
    let events: Vec<AuditEvent> = client.get_json_query("/audit", &pairs)?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&events)?),
        Output::Table => {
            if events.is_empty() {
                println!("No audit events match.");
                return Ok(());
            }
            let rows = events.iter().map(|event| {
                let app = match (&event.namespace, &event.app) {
                    (Some(namespace), Some(app)) => format!("{namespace}/{app}"),
                    (Some(namespace), None) => namespace.clone(),
                    _ => "-".to_owned(),
                };
                vec![
                    event.id.to_string(),
                    event.time.clone(),
                    event.principal.clone(),
                    event.action.clone(),
                    app,
                    event.outcome.clone(),
                    event.detail.clone(),
                ]
            });
            println!("{}", plain_table(&["ID", "TIME", "WHO", "ACTION", "APP", "OUTCOME", "DETAIL"], rows));
        }
    }
    if events.len() as u32 == audit.limit
        && let Some(last) = events.last()
    {
        eprintln!("More: run it again with --before {}", last.id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(app: Option<&str>, namespace: Option<&str>) -> AuditArgs {
        AuditArgs {
            namespace: namespace.map(str::to_owned),
            app: app.map(str::to_owned),
            actor: Some("ana lee".to_owned()),
            action: Some("app.".to_owned()),
            since: Some("2026-12-01T00:00:00+01:00".to_owned()),
            limit: 20,
            before: Some(90),
        }
    }

    #[test]
    fn the_query_escapes_every_value_and_splits_the_app() {
        let pairs = query(&args(Some("growth/lunch"), None)).unwrap();
        let pairs: Vec<(&str, &str)> =
            pairs.iter().filter_map(|(name, value)| value.as_deref().map(|value| (*name, value))).collect();
        let request = reqwest::blocking::Client::new().get("http://127.0.0.1/audit").query(&pairs).build().unwrap();
        assert_eq!(
            request.url().query().unwrap(),
            "namespace=growth&app=lunch&actor=ana+lee&action=app.&since=2026-12-01T00%3A00%3A00%2B01%3A00&before=90&limit=20"
        );
        assert!(query(&args(Some("lunch"), None)).unwrap_err().to_string().contains("NAMESPACE/APP"));
        assert!(query(&args(Some("growth/lunch"), Some("other"))).unwrap_err().to_string().contains("is not in"));
    }
}
