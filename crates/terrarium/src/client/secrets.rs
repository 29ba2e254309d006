//! `terrarium secrets` and `terrarium egress log`.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use api_types::{EgressEntry, SecretInfo, SecretSet, SecretVersionInfo, SetSecret};
use comfy_table::{Table, presets};

use super::accounts::print;
use super::http::{ApiClient, is_plain_name, parse_app_ref};
use crate::{ClientArgs, Output};

#[derive(clap::Subcommand, Debug)]
pub enum SecretsCommand {
    /// Set a secret of an app; functions see it as env.NAME. The value is read from standard
    /// input (one trailing newline removed) or asked for on a terminal, never from the command line.
    Set {
        /// The app, as NAMESPACE/NAME.
        app: String,
        /// The secret's name, like MAPS_API_KEY.
        name: String,
        /// When the value should be replaced (RFC 3339, like 2027-03-01T00:00:00Z); reminders start 14 days before.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List the secrets of a namespace or an app: names, versions and dates, never values.
    List {
        /// NAMESPACE or NAMESPACE/NAME.
        scope: String,
    },
    /// Show the versions of one secret.
    Versions { app: String, name: String },
    /// Delete a secret and every version of it.
    Rm { app: String, name: String },
    /// Re-wrap every namespace's data key under a new key-encryption key (platform admins).
    RotateKek,
}

#[derive(clap::Subcommand, Debug)]
pub enum EgressCommand {
    /// Outbound requests of apps, newest first: allowed, denied and failed.
    Log {
        /// NAMESPACE or NAMESPACE/NAME.
        scope: String,
        /// Only denied and failed requests.
        #[arg(long)]
        denied: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

pub fn secrets(args: &ClientArgs, command: SecretsCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    match command {
        SecretsCommand::Set { app, name, expires } => {
            let (namespace, app) = parse_app_ref(&app)?;
            let value = read_value(&name)?;
            let body = SetSecret { value, expires_at: expires };
            let response = client.send(client.put(&format!("/apps/{namespace}/{app}/secrets/{name}")).json(&body))?;
            let set: SecretSet = client.read_json(response)?;
            print(args.output, &set, || {
                let reloaded = match set.reloaded {
                    true => "; the app was reloaded with it",
                    false => "; the app gets it on its next deploy or start",
                };
                format!("Set {} of {}/{} (version {}){reloaded}", set.name, set.namespace, set.app, set.version)
            })
        }
        SecretsCommand::List { scope } => {
            let path = match scope.split_once('/') {
                Some(_) => {
                    let (namespace, app) = parse_app_ref(&scope)?;
                    format!("/apps/{namespace}/{app}/secrets")
                }
                None if is_plain_name(&scope) => "/secrets".to_owned(),
                None => bail!("{scope:?} is neither a namespace nor NAMESPACE/NAME"),
            };
            let namespace = (!scope.contains('/')).then_some(scope.as_str());
            let secrets: Vec<SecretInfo> = client.get_json_query(&path, &[("namespace", namespace)])?;
            print(args.output, &secrets, || secrets_table(&secrets))
        }
        SecretsCommand::Versions { app, name } => {
            let (namespace, app) = parse_app_ref(&app)?;
            let versions: Vec<SecretVersionInfo> =
                client.get_json(&format!("/apps/{namespace}/{app}/secrets/{name}/versions"))?;
            print(args.output, &versions, || {
                let mut table = Table::new();
                table.load_preset(presets::NOTHING).set_header(["VERSION", "CREATED", "BY", "EXPIRES"]);
                for version in &versions {
                    table.add_row([
                        version.version.to_string(),
                        version.created_at.clone(),
                        version.created_by.clone(),
                        version.expires_at.clone().unwrap_or_else(|| "-".to_owned()),
                    ]);
                }
                table.to_string()
            })
        }
        SecretsCommand::Rm { app, name } => {
            let (namespace, app) = parse_app_ref(&app)?;
            let response = client.send(client.delete(&format!("/apps/{namespace}/{app}/secrets/{name}")))?;
            let answer: serde_json::Value = client.read_json(response)?;
            print(args.output, &answer, || format!("Removed {name} of {namespace}/{app} and all its versions"))
        }
        SecretsCommand::RotateKek => rotate_kek(&client, args.output),
    }
}

/// Reads the value from standard input when it is piped, or asks for it without echo.
fn read_value(name: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return dialoguer::Password::new()
            .with_prompt(format!("Value of {name}"))
            .with_confirmation("Again", "The two values differ")
            .interact()
            .context("could not read the value from the terminal");
    }
    let mut value = String::new();
    stdin.lock().read_to_string(&mut value).context("could not read the value from standard input")?;
    let value = value.strip_suffix('\n').map(|rest| rest.strip_suffix('\r').unwrap_or(rest)).unwrap_or(&value);
    if value.is_empty() {
        bail!("the value is empty: pipe it in, as in `printf %s \"$VALUE\" | terrarium secrets set NS/APP {name}`");
    }
    Ok(value.to_owned())
}

fn secrets_table(secrets: &[SecretInfo]) -> String {
    if secrets.is_empty() {
        return "No secrets. Set one with `terrarium secrets set NAMESPACE/APP NAME`.".to_owned();
    }
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_header([
        "APP",
        "NAME",
        "VERSION",
        "UPDATED",
        "LAST READ",
        "EXPIRES",
        "NOTE",
    ]);
    for secret in secrets {
        table.add_row([
            format!("{}/{}", secret.namespace, secret.app),
            secret.name.clone(),
            format!("{} of {}", secret.version, secret.n_versions),
            secret.created_at.clone(),
            secret.last_read_at.clone().unwrap_or_else(|| "never".to_owned()),
            secret.expires_at.clone().unwrap_or_else(|| "-".to_owned()),
            secret.rotation_reason.as_ref().map(|reason| format!("rotate: {reason}")).unwrap_or_default(),
        ]);
    }
    table.to_string()
}

/// Follows the server's NDJSON progress of the rotation.
fn rotate_kek(client: &ApiClient, output: Output) -> anyhow::Result<()> {
    use std::io::BufRead;
    let response = client.send(client.post_without_deadline("/secrets/rotate-kek"))?;
    let mut failed = None;
    for line in std::io::BufReader::new(response).lines() {
        let line =
            line.context("the server stopped answering during the rotation; run the command again to finish it")?;
        let event: serde_json::Value = serde_json::from_str(&line).context("the server sent an unreadable line")?;
        if output == Output::Json {
            println!("{line}");
        }
        match event["event"].as_str().unwrap_or_default() {
            "started" if output == Output::Table => println!(
                "New key-encryption key ({}); {} data key(s) to re-wrap",
                event["kek"].as_str().unwrap_or_default(),
                event["total"]
            ),
            "rewrapped" if output == Output::Table => {
                println!("  {}/{}  {}", event["done"], event["total"], event["namespace"].as_str().unwrap_or_default())
            }
            "finished" if output == Output::Table => {
                println!("Done: every data key is under the new key-encryption key; the old one is retired.")
            }
            "error" => failed = Some(event["message"].as_str().unwrap_or_default().to_owned()),
            _ => {}
        }
    }
    match failed {
        Some(message) => {
            bail!("the rotation stopped: {message}; run `terrarium secrets rotate-kek` again to finish it")
        }
        None => Ok(()),
    }
}

pub fn egress(args: &ClientArgs, command: EgressCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    match command {
        EgressCommand::Log { scope, denied, limit } => {
            let (namespace, app) = match scope.split_once('/') {
                Some(_) => {
                    let (namespace, app) = parse_app_ref(&scope)?;
                    (namespace, Some(app))
                }
                None if is_plain_name(&scope) => (scope.clone(), None),
                None => bail!("{scope:?} is neither a namespace nor NAMESPACE/NAME"),
            };
            let entries: Vec<EgressEntry> = client.get_json_query(
                "/egress",
                &[
                    ("namespace", Some(&namespace)),
                    ("app", app.as_deref()),
                    ("denied", Some(&denied.to_string())),
                    ("limit", Some(&limit.to_string())),
                ],
            )?;
            print(args.output, &entries, || {
                let mut table = Table::new();
                table.load_preset(presets::NOTHING).set_header([
                    "TIME", "APP", "REQUEST", "METHOD", "HOST", "ADDRESS", "DECISION", "STATUS", "BYTES IN", "MS",
                ]);
                for entry in &entries {
                    let decision = match &entry.code {
                        Some(code) => format!("{} ({code})", entry.decision),
                        None => entry.decision.clone(),
                    };
                    table.add_row([
                        entry.time.clone(),
                        format!("{}/{}", entry.namespace, entry.app),
                        entry.request_id.clone(),
                        entry.method.clone(),
                        entry.host.clone(),
                        entry.address.clone().unwrap_or_else(|| "-".to_owned()),
                        decision,
                        entry.status.map_or_else(|| "-".to_owned(), |status| status.to_string()),
                        entry.bytes_in.to_string(),
                        entry.duration_ms.to_string(),
                    ]);
                }
                table.to_string()
            })
        }
    }
}
