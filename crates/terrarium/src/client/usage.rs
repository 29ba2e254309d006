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
    /// The apps of one owner (`user:ana`, `group:growth`), in every namespace.
    #[arg(long)]
    owner: Option<String>,
    /// The month, as YYYY-MM; this month by default.
    #[arg(long)]
    month: Option<String>,
    /// Totals per app for the month, or rows per day or per hour.
    #[arg(long, default_value = "app", value_parser = ["app", "day", "hour"])]
    by: String,
    /// Instead: cost per namespace or per owner for the month (platform-wide viewers).
    #[arg(long, value_parser = ["namespace", "owner"], conflicts_with_all = ["namespace", "app", "owner", "by"])]
    chargeback: Option<String>,
    /// With --chargeback: print CSV, for spreadsheets and finance systems.
    #[arg(long, requires = "chargeback")]
    csv: bool,
}

pub fn usage(args: &ClientArgs, usage: UsageArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    if let Some(by) = &usage.chargeback {
        return chargeback(args, &client, by, usage.month.as_deref(), usage.csv);
    }
    let mut namespace = usage.namespace.clone();
    if let Some(namespace) = &namespace
        && !is_plain_name(namespace)
    {
        bail!("{namespace:?} is not a namespace name");
    }
    let mut app = None;
    if let Some(reference) = &usage.app {
        let (app_namespace, name) = parse_app_ref(reference)?;
        namespace = Some(app_namespace);
        app = Some(name);
    }
    if let Some(owner) = &usage.owner {
        let valid = owner.split_once(':').is_some_and(|(kind, name)| {
            matches!(kind, "user" | "group")
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        });
        if !valid {
            bail!("--owner {owner:?} is not an owner; write user:NAME or group:NAME");
        }
    }
    if let Some(month) = &usage.month
        && (month.len() != 7 || !month.chars().all(|c| c.is_ascii_digit() || c == '-'))
    {
        bail!("--month {month:?} is not YYYY-MM, like 2026-11");
    }
    let entries: Vec<UsageEntry> = client.get_json_query(
        "/usage",
        &[
            ("by", Some(&usage.by)),
            ("namespace", namespace.as_deref()),
            ("app", app.as_deref()),
            ("owner", usage.owner.as_deref()),
            ("month", usage.month.as_deref()),
        ],
    )?;
    print(args.output, &entries, || {
        if entries.is_empty() {
            return "No usage recorded for this period.".to_owned();
        }
        let mut table = Table::new();
        let first = if usage.by == "app" { "MONTH" } else { "FROM" };
        table.load_preset(presets::NOTHING).set_header([
            "APP",
            first,
            "REQUESTS",
            "4XX",
            "5XX",
            "429",
            "503",
            "CPU S",
            "IN",
            "OUT",
            "MEAN MS",
            "FETCHES",
            "FETCH BYTES",
            "HEAP MAX",
            "KV R/W/L",
            "SQL ROWS R/W",
            "STORED",
            "CACHE HIT/MISS",
            "VECTOR Q/W",
            "EMBED TOKENS",
        ]);
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
                entry.outbound_requests.to_string(),
                entry.outbound_bytes.to_string(),
                format!("{} KiB", entry.heap_bytes_max / 1024),
                format!("{}/{}/{}", entry.kv_reads, entry.kv_writes, entry.kv_lists),
                format!("{}/{}", entry.sql_rows_read, entry.sql_rows_written),
                format!("{} KiB", entry.storage_bytes_max / 1024),
                format!("{}/{}", entry.cache_hits, entry.cache_misses),
                format!("{}/{}", entry.vector_queries, entry.vectors_written),
                entry.embedding_tokens.to_string(),
            ]);
        }
        table.to_string()
    })
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ChargebackRow {
    key: String,
    apps: u64,
    requests: u64,
    cpu_seconds: f64,
    bytes_out: u64,
    cost: f64,
    currency: String,
    #[serde(default)]
    cache_hits: u64,
    #[serde(default)]
    saved_by_cache: f64,
}

fn chargeback(args: &ClientArgs, client: &ApiClient, by: &str, month: Option<&str>, csv: bool) -> anyhow::Result<()> {
    let rows: Vec<ChargebackRow> = client.get_json_query("/chargeback", &[("by", Some(by)), ("month", month)])?;
    if csv {
        let mut writer = csv::Writer::from_writer(std::io::stdout().lock());
        writer.write_record([
            by,
            "apps",
            "requests",
            "cpu_seconds",
            "bytes_out",
            "cost",
            "currency",
            "cache_hits",
            "saved_by_cache",
        ])?;
        for row in &rows {
            writer.write_record([
                row.key.clone(),
                row.apps.to_string(),
                row.requests.to_string(),
                format!("{:.6}", row.cpu_seconds),
                row.bytes_out.to_string(),
                format!("{:.6}", row.cost),
                row.currency.clone(),
                row.cache_hits.to_string(),
                format!("{:.6}", row.saved_by_cache),
            ])?;
        }
        writer.flush()?;
        return Ok(());
    }
    print(args.output, &rows, || {
        let mut table = Table::new();
        table.load_preset(presets::NOTHING).set_header([
            by.to_uppercase().as_str(),
            "APPS",
            "REQUESTS",
            "CPU S",
            "OUT",
            "COST",
            "CACHE HITS",
            "SAVED",
        ]);
        for row in &rows {
            table.add_row([
                row.key.clone(),
                row.apps.to_string(),
                row.requests.to_string(),
                format!("{:.3}", row.cpu_seconds),
                row.bytes_out.to_string(),
                format!("{:.4} {}", row.cost, row.currency),
                row.cache_hits.to_string(),
                format!("{:.4} {}", row.saved_by_cache, row.currency),
            ]);
        }
        table.to_string()
    })
}
