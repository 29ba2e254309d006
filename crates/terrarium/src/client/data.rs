//! `terrarium data usage|export|import`: what an app stores, and its key-value namespace (JSON
//! lines) or SQL database (a SQLite database file) to keep, move or restore.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::http::{ApiClient, parse_app_ref};
use crate::{ClientArgs, Output};

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// What an app stores (NAMESPACE/NAME): keys and bytes of its key-value namespace, tables and
    /// rows of its SQL database; or, given a NAMESPACE, what each of its apps stores.
    Usage {
        /// NAMESPACE/NAME, or NAMESPACE for all of its apps.
        app: String,
    },
    /// Every key-value entry of an app as JSON lines, or with --sql its SQL database as a
    /// SQLite database file (to standard output, or --file FILE).
    Export {
        app: String,
        /// The SQL database instead of the key-value namespace.
        #[arg(long)]
        sql: bool,
        /// Write to this file instead of standard output.
        #[arg(long = "file", short = 'f')]
        file: Option<PathBuf>,
    },
    /// Moves an app's SQL data to another isolation tier (isolated, schema or shared): the app
    /// keeps reading while it copies, every table is compared by checksum before the switch.
    /// Then set the same `isolation` in its terrarium.yaml.
    Migrate {
        app: String,
        /// The tier to move to.
        #[arg(long, value_parser = ["isolated", "schema", "shared"])]
        isolation: String,
    },
    /// Writes an export back: JSON lines into the app's key-value namespace, a SQLite database
    /// file's tables (with their rows) into its SQL database.
    Import {
        app: String,
        /// A file made by `terrarium data export` (or by sqlite3, for SQL).
        file: PathBuf,
    },
}

/// What each app of a namespace stores, one row per app.
fn namespace_usage(client: &ApiClient, args: &ClientArgs, namespace: &str) -> anyhow::Result<()> {
    let apps: Vec<api_types::AppSummary> = client.get_json_query("/apps", &[("namespace", Some(namespace))])?;
    let mut rows = Vec::new();
    for app in apps {
        let usage: serde_json::Value = client.get_json(&format!("/apps/{}/{}/data", app.namespace, app.name))?;
        rows.push(serde_json::json!({ "app": format!("{}/{}", app.namespace, app.name), "kv": usage["kv"], "sql": usage["sql"] }));
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Table => {
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["APP", "KV KEYS", "KV BYTES", "SQL", "SQL BYTES", "TABLES", "ROWS"]);
            for row in &rows {
                let tables = row["sql"]["tables"].as_array().cloned().unwrap_or_default();
                let rows_total: u64 = tables.iter().filter_map(|table| table["rows"].as_u64()).sum();
                table.add_row([
                    row["app"].as_str().unwrap_or_default().to_owned(),
                    row["kv"]["keys"].to_string(),
                    row["kv"]["bytes"].to_string(),
                    row["sql"]["isolation"].as_str().unwrap_or("-").to_owned(),
                    row["sql"]["bytes"].to_string(),
                    tables.len().to_string(),
                    rows_total.to_string(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(())
}

pub fn data(args: &ClientArgs, command: DataCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    match command {
        DataCommand::Usage { app } if !app.contains('/') => namespace_usage(&client, args, &app)?,
        DataCommand::Usage { app } => {
            let (namespace, name) = parse_app_ref(&app)?;
            let usage: serde_json::Value = client.get_json(&format!("/apps/{namespace}/{name}/data"))?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&usage)?),
                Output::Table => {
                    println!(
                        "{namespace}/{name}: key-value: {} key(s), {} byte(s)",
                        usage["kv"]["keys"], usage["kv"]["bytes"]
                    );
                    let sql = &usage["sql"];
                    if let Some(isolation) = sql["isolation"].as_str() {
                        let tables: Vec<String> = sql["tables"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|table| format!("{} ({} rows)", table["name"].as_str().unwrap_or("?"), table["rows"]))
                            .collect();
                        println!(
                            "{namespace}/{name}: SQL ({isolation}): {} byte(s){}{}",
                            sql["bytes"],
                            if tables.is_empty() { "" } else { ", tables: " },
                            tables.join(", ")
                        );
                    }
                }
            }
        }
        DataCommand::Export { app, sql, file } => {
            let (namespace, name) = parse_app_ref(&app)?;
            let kind = if sql { "sql" } else { "kv" };
            let response = client.send(client.get(&format!("/apps/{namespace}/{name}/data/{kind}")))?;
            let bytes = response.bytes().map_err(|error| client.transport_error(error))?;
            match file {
                None => std::io::stdout().lock().write_all(&bytes)?,
                Some(file) => {
                    std::fs::write(&file, &bytes).with_context(|| format!("failed to write {}", file.display()))?;
                    let what = match sql {
                        true => "the SQL database".to_owned(),
                        false => format!("{} entries", bytes.iter().filter(|byte| **byte == b'\n').count()),
                    };
                    eprintln!("{what} of {namespace}/{name} written to {}", file.display());
                }
            }
        }
        DataCommand::Migrate { app, isolation } => {
            let (namespace, name) = parse_app_ref(&app)?;
            let body = serde_json::json!({ "isolation": isolation });
            let answer: serde_json::Value =
                client.post_json(&format!("/apps/{namespace}/{name}/data/sql/migrate"), &body)?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
                Output::Table => {
                    let tables: Vec<&str> =
                        answer["tables"].as_array().into_iter().flatten().filter_map(|table| table.as_str()).collect();
                    println!(
                        "{namespace}/{name}'s SQL data is in isolation: {isolation} now ({} table(s): {}).\n\
                         Set spec.data.sql.isolation: {isolation} in its terrarium.yaml: a revision asking for another tier is refused.",
                        tables.len(),
                        tables.join(", ")
                    );
                }
            }
        }
        DataCommand::Import { app, file } => {
            let (namespace, name) = parse_app_ref(&app)?;
            let bytes = std::fs::read(&file).with_context(|| format!("failed to read {}", file.display()))?;
            let sql = bytes.starts_with(b"SQLite format 3\0");
            let kind = if sql { "sql" } else { "kv" };
            let response = client.send(client.put(&format!("/apps/{namespace}/{name}/data/{kind}")).body(bytes))?;
            let answer: serde_json::Value = client.read_json(response)?;
            match (args.output, sql) {
                (Output::Json, _) => println!("{}", serde_json::to_string_pretty(&answer)?),
                (Output::Table, false) => println!("{} entries imported into {namespace}/{name}", answer["imported"]),
                (Output::Table, true) => {
                    let tables: Vec<&str> =
                        answer["tables"].as_array().into_iter().flatten().filter_map(|table| table.as_str()).collect();
                    println!("{} table(s) imported into {namespace}/{name}: {}", tables.len(), tables.join(", "));
                }
            }
        }
    }
    Ok(())
}
