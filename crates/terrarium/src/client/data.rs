//! `terrarium data usage|export|import`: what an app stores, and its key-value namespace (JSON
//! lines) or SQL database (a SQLite database file) to keep, move or restore.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::http::{ApiClient, parse_app_ref};
use crate::{ClientArgs, Output};

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// What an app stores: keys and bytes of its key-value namespace, tables and rows of its
    /// SQL database.
    Usage {
        /// The app, as NAMESPACE/NAME.
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
    /// Writes an export back: JSON lines into the app's key-value namespace, a SQLite database
    /// file's tables (with their rows) into its SQL database.
    Import {
        app: String,
        /// A file made by `terrarium data export` (or by sqlite3, for SQL).
        file: PathBuf,
    },
}

pub fn data(args: &ClientArgs, command: DataCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    match command {
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
