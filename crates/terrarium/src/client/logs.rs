//! `terrarium logs NAMESPACE/NAME`: prints an app's console output and errors, and with
//! `--follow` keeps printing new lines until Ctrl-C.

use std::io::{BufRead, BufReader, Write};

use anyhow::Context;
use api_types::LogEntry;

use super::http::{ApiClient, parse_app_ref};
use crate::{ClientArgs, Output};

pub fn logs(args: &ClientArgs, app: &str, follow: bool, tail: usize) -> anyhow::Result<()> {
    let (namespace, name) = parse_app_ref(app)?;
    let client = ApiClient::new(args)?;
    let path = format!("/apps/{namespace}/{name}/logs");
    let request = match follow {
        // A followed stream stays open as long as the user wants; Ctrl-C ends the process.
        true => client.get_without_deadline(&path),
        false => client.get(&path),
    }
    .query(&[("tail", tail.to_string()), ("follow", follow.to_string())]);
    let response = client.send(request).with_context(|| format!("cannot read the logs of {namespace}/{name}"))?;

    // The body is NDJSON: one LogEntry per line, flushed by the server as lines happen.
    let mut stdout = std::io::stdout().lock();
    for line in BufReader::new(response).lines() {
        let line = match line {
            Ok(line) => line,
            Err(error) if follow => {
                eprintln!("the log stream from {} ended: {error}", client.server());
                break;
            }
            Err(error) => return Err(error).context("the log stream was cut off"),
        };
        if line.trim().is_empty() {
            continue;
        }
        let text = match args.output {
            Output::Json => line,
            Output::Table => match serde_json::from_str::<LogEntry>(&line) {
                Ok(entry) => format_entry(&entry),
                // A line this version cannot read is still worth showing as it is.
                Err(_) => line,
            },
        };
        writeln!(stdout, "{text}")?;
        stdout.flush()?;
    }
    Ok(())
}

/// `TIME LEVEL [request_id] message`; lines outside a request show `[-]`.
pub fn format_entry(entry: &LogEntry) -> String {
    let request_id = if entry.request_id.is_empty() { "-" } else { &entry.request_id };
    let level = entry.level.to_ascii_uppercase();
    format!("{} {level:<5} [{request_id}] {}", entry.time, entry.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_time_level_request_and_message() {
        let mut entry = LogEntry {
            time: "2026-11-01T10:00:00.123Z".into(),
            namespace: "demo".into(),
            app: "where2eat".into(),
            request_id: "01J9ZK".into(),
            level: "info".into(),
            message: "picked Taco Loco".into(),
        };
        assert_eq!(format_entry(&entry), "2026-11-01T10:00:00.123Z INFO  [01J9ZK] picked Taco Loco");
        entry.request_id.clear();
        entry.level = "error".into();
        assert_eq!(format_entry(&entry), "2026-11-01T10:00:00.123Z ERROR [-] picked Taco Loco");
    }
}
