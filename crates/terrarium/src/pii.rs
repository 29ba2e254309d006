//! `terrarium pii detect`: the platform's personal-data detector (the one `upsertText` redacts
//! with) on JSON lines, for checking what it finds in your own text and scoring it.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum PiiCommand {
    /// Read JSON lines `{"text": "..."}` and write, per line, the personal data found:
    /// `{"entities": [{"type", "start", "end"}]}` with character offsets (end exclusive).
    Detect {
        /// A file of JSON lines; standard input when absent.
        file: Option<PathBuf>,
        /// `json`: one JSON object per input line; `table`: each entity with its text.
        #[arg(long, short = 'o', value_enum, default_value_t = PiiOutput::Json)]
        output: PiiOutput,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PiiOutput {
    Json,
    Table,
}

pub fn run(command: PiiCommand) -> anyhow::Result<()> {
    let PiiCommand::Detect { file, output } = command;
    let input: Box<dyn BufRead> = match &file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let source = file.as_ref().map_or_else(|| "standard input".to_owned(), |path| path.display().to_string());
    let detector = pii::Detector::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (number, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("failed to read {source}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let text = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(mut object)) => match object.remove("text") {
                Some(serde_json::Value::String(text)) => text,
                _ => bail!(
                    "{source} line {}: the object has no \"text\" string; write {{\"text\": \"...\"}}",
                    number + 1
                ),
            },
            Ok(_) | Err(_) => {
                bail!("{source} line {}: not a JSON object; each line is {{\"text\": \"...\"}}", number + 1)
            }
        };
        let entities = detector.detect(&text);
        match output {
            PiiOutput::Json => {
                let entities: Vec<serde_json::Value> = entities
                    .iter()
                    .map(|entity| {
                        serde_json::json!({ "type": entity.entity_type.as_str(), "start": entity.start, "end": entity.end })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::json!({ "entities": entities }))?;
            }
            PiiOutput::Table => {
                let chars: Vec<char> = text.chars().collect();
                for entity in entities {
                    let found: String = chars[entity.start..entity.end].iter().collect();
                    writeln!(
                        out,
                        "{}\t{}\t{}-{}\t{found}",
                        number + 1,
                        entity.entity_type.as_str(),
                        entity.start,
                        entity.end
                    )?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}
