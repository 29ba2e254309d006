//! `terrarium usage`: requests, refusals, CPU and bytes per app, from the metering roll-ups.

use anyhow::bail;
use api_types::UsageEntry;
use comfy_table::{Table, presets};

use super::accounts::print;
use super::http::{ApiClient, is_plain_name, parse_app_ref};
use crate::ClientArgs;

#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    /// One namespace.
    #[arg(long, conflicts_with = "app")]
    namespace: Option<String>,
    /// One app, as NAMESPACE/NAME.
    #[arg(long)]
    app: Option<String>,
    /// The month, as YYYY-MM; this month by default.
    #[arg(long)]
    month: Option<String>,
    /// Totals per app for the month, or rows per day or per hour.
    #[arg(long, default_value = "app", value_parser = ["app", "day", "hour"])]
    by: String,
}

pub fn usage(args: &ClientArgs, usage: UsageArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    let mut query = vec![format!("by={}", usage.by)];
    if let Some(namespace) = &usage.namespace {
        if !is_plain_name(namespace) {
            bail!("{namespace:?} is not a namespace name");
        }
        query.push(format!("namespace={namespace}"));
    }
    if let Some(app) = &usage.app {
        let (namespace, name) = parse_app_ref(app)?;
        query.push(format!("namespace={namespace}&app={name}"));
    }
    if let Some(month) = &usage.month {
        if month.len() != 7 || !month.chars().all(|c| c.is_ascii_digit() || c == '-') {
            bail!("--month {month:?} is not YYYY-MM, like 2026-11");
        }
        query.push(format!("month={month}"));
    }
    let entries: Vec<UsageEntry> = client.get_json(&format!("/usage?{}", query.join("&")))?;
    print(args.output, &entries, || {
        if entries.is_empty() {
            return "No usage recorded for this period.".to_owned();
        }
        let mut table = Table::new();
        let first = if usage.by == "app" { "MONTH" } else { "FROM" };
        table
            .load_preset(presets::NOTHING)
            .set_header(["APP", first, "REQUESTS", "4XX", "5XX", "429", "503", "CPU S", "IN", "OUT", "MEAN MS"]);
        for entry in &entries {
            let start = match usage.by.as_str() {
                "app" => entry.start.get(..7).unwrap_or_default().to_owned(),
                _ => entry.start.clone(),
            };
            table.add_row([
                format!("{}/{}", entry.namespace, entry.app),
                start,
                entry.requests.to_string(),
                entry.client_errors.to_string(),
                entry.server_errors.to_string(),
                entry.rate_limited.to_string(),
                entry.busy.to_string(),
                format!("{:.3}", entry.cpu_seconds),
                entry.bytes_in.to_string(),
                entry.bytes_out.to_string(),
                format!("{:.2}", entry.mean_duration_ms),
            ]);
        }
        table.to_string()
    })
}
