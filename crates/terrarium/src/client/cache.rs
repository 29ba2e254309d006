//! `terrarium cache purge NS/APP [--prefix PATH] [--tag TAG]`: forgets an app's cached
//! responses (the gateway's, and its Cache API entries), all or some.

use super::http::{ApiClient, parse_app_ref};
use crate::{ClientArgs, Output};

#[derive(clap::Subcommand, Debug)]
pub enum CacheCommand {
    /// Forget an app's cached responses: all of them, or those under a path or with a tag.
    Purge {
        /// The app, as NAMESPACE/NAME.
        app: String,
        /// Only responses whose path starts with this (`/menu/`).
        #[arg(long)]
        prefix: Option<String>,
        /// Only responses that carried this `Cache-Tag`.
        #[arg(long)]
        tag: Option<String>,
    },
}

pub fn cache(args: &ClientArgs, command: CacheCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    match command {
        CacheCommand::Purge { app, prefix, tag } => {
            let (namespace, name) = parse_app_ref(&app)?;
            let body = serde_json::json!({ "prefix": prefix, "tag": tag });
            let answer: serde_json::Value =
                client.post_json(&format!("/apps/{namespace}/{name}/cache/purge"), &body)?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
                Output::Table if answer["purged"] == true => {
                    let what = match (prefix, tag) {
                        (None, None) => "every cached response".to_owned(),
                        (Some(prefix), None) => format!("cached responses under {prefix}"),
                        (None, Some(tag)) => format!("cached responses tagged {tag}"),
                        (Some(prefix), Some(tag)) => format!("cached responses under {prefix} tagged {tag}"),
                    };
                    println!("Purged {what} of {namespace}/{name}.");
                }
                Output::Table => println!("Nothing to purge: {}", answer["reason"].as_str().unwrap_or_default()),
            }
            Ok(())
        }
    }
}
