//! `terrarium data usage|export|import`: what an app stores, and its key-value namespace as
//! JSON lines to keep, move or restore.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::http::{ApiClient, parse_app_ref};
use crate::{ClientArgs, Output};

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// What an app stores: keys and bytes of its key-value namespace.
    Usage {
        /// The app, as NAMESPACE/NAME.
        app: String,
    },
    /// Every key-value entry of an app as JSON lines (to standard output, or --output FILE).
    Export {
        app: String,
        /// Write to this file instead of standard output.
        #[arg(long = "file", short = 'f')]
        file: Option<PathBuf>,
    },
    /// Writes the entries of an export into an app's key-value namespace.
    Import {
        app: String,
        /// A file made by `terrarium data export`.
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
                Output::Table => println!(
                    "{namespace}/{name}: key-value: {} key(s), {} byte(s)",
                    usage["kv"]["keys"], usage["kv"]["bytes"]
                ),
            }
        }
        DataCommand::Export { app, file } => {
            let (namespace, name) = parse_app_ref(&app)?;
            let response = client.send(client.get(&format!("/apps/{namespace}/{name}/data/kv")))?;
            let lines = response.text().map_err(|error| client.transport_error(error))?;
            match file {
                None => std::io::stdout().lock().write_all(lines.as_bytes())?,
                Some(file) => {
                    std::fs::write(&file, &lines).with_context(|| format!("failed to write {}", file.display()))?;
                    eprintln!("{} entries of {namespace}/{name} written to {}", lines.lines().count(), file.display());
                }
            }
        }
        DataCommand::Import { app, file } => {
            let (namespace, name) = parse_app_ref(&app)?;
            let lines = std::fs::read(&file).with_context(|| format!("failed to read {}", file.display()))?;
            let response = client.send(client.put(&format!("/apps/{namespace}/{name}/data/kv")).body(lines))?;
            let answer: serde_json::Value = client.read_json(response)?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
                Output::Table => println!("{} entries imported into {namespace}/{name}", answer["imported"]),
            }
        }
    }
    Ok(())
}
