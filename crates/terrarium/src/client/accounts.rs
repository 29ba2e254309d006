//! `terrarium login|logout|whoami`, `terrarium users` and `terrarium roles`.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use api_types::{
    CreateUserRequest, CreateUserResponse, DevicePoll, DeviceStart, LoginRequest, LoginResponse, RoleBindingInfo,
    RoleBindingRequest, UpdateUserRequest, UserInfo, WhoAmI,
};
use comfy_table::{Table, presets};

use super::credentials::{Credential, Credentials};
use super::http::{ApiClient, server_url};
use crate::{ClientArgs, Output};

#[derive(clap::Subcommand, Debug)]
pub enum UsersCommand {
    /// List accounts, their groups and whether they are disabled.
    List,
    /// Add a local account; prints its one-time password.
    Add {
        name: String,
        /// Groups, comma-separated (`growth,finance`).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Their e-mail address, for what the platform tells owners (expiry reminders).
        #[arg(long)]
        email: Option<String>,
    },
    /// Disable an account: its tokens stop working at once.
    Disable { name: String },
    /// Enable a disabled account again.
    Enable { name: String },
    /// Replace an account's groups (comma-separated; empty for none).
    SetGroups {
        name: String,
        #[arg(value_delimiter = ',')]
        groups: Vec<String>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum RolesCommand {
    /// List role bindings, of one namespace or (platform admins) of all.
    List { namespace: Option<String> },
    /// Grant ROLE (viewer, builder, operator, admin) in NAMESPACE (`*` for all) to user:NAME or group:NAME.
    Grant { namespace: String, subject: String, role: String },
    /// Take a granted role away again.
    Revoke { namespace: String, subject: String, role: String },
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysCommand {
    /// Start signing tokens with a new key; tokens signed with the old one keep working for a day.
    Rotate,
}

pub fn keys(args: &ClientArgs, command: KeysCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    match command {
        KeysCommand::Rotate => {
            let answer: serde_json::Value = client.post_json("/keys/rotate", &serde_json::json!({}))?;
            print(args.output, &answer, || {
                format!(
                    "New signing key {}; keys that verify: {}",
                    answer["active_kid"].as_str().unwrap_or_default(),
                    answer["kids"].as_array().map_or(0, Vec::len)
                )
            })
        }
    }
}

/// Signs in and keeps the token for this server: with a local account's password, or through
/// the company's identity provider with the device flow (RFC 8628).
pub fn login(args: &ClientArgs, password_flow: bool, username: Option<String>) -> anyhow::Result<()> {
    let server = server_url(&args.server)?;
    let client = ApiClient::with_token(server.clone(), String::new())?;
    let answer = match password_flow {
        true => password_login(&client, username)?,
        false => device_login(&client)?,
    };
    let mut credentials = Credentials::load()?;
    credentials.set(
        &server,
        Credential {
            user: answer.user.clone(),
            access_token: answer.access_token,
            expires_at: Credentials::expires_at(answer.expires_in),
        },
    );
    let path = credentials.save()?;
    println!("Signed in to {server} as {} (token kept in {})", answer.user, path.display());
    Ok(())
}

fn password_login(client: &ApiClient, username: Option<String>) -> anyhow::Result<LoginResponse> {
    let interactive = std::io::stdin().is_terminal();
    let username = match username {
        Some(name) => name,
        None if interactive => dialoguer::Input::<String>::new().with_prompt("User").interact_text()?,
        None => bail!("pass --username when the password comes from standard input"),
    };
    let password = match interactive {
        true => dialoguer::Password::new().with_prompt("Password").interact()?,
        // Scripts pipe the password in; it never appears in the command line or the process list.
        false => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("failed to read the password from standard input")?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    client.post_json("/auth/login", &LoginRequest { username, password })
}

/// Shows a code to confirm in a browser, then waits for the identity provider's answer.
fn device_login(client: &ApiClient) -> anyhow::Result<LoginResponse> {
    let started: DeviceStart = client.post_json("/auth/device", &serde_json::json!({})).map_err(|error| {
        error.context("this server offers no sign-in through an identity provider; use `terrarium login --password`")
    })?;
    match &started.verification_uri_complete {
        Some(uri) => println!("Open {uri}\nand confirm the code {} to sign in.", started.user_code),
        None => println!("Open {} and enter the code {} to sign in.", started.verification_uri, started.user_code),
    }
    std::io::Write::flush(&mut std::io::stdout())?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(started.expires_in.max(1));
    let mut interval = std::time::Duration::from_secs(started.interval.max(1));
    loop {
        if std::time::Instant::now() >= deadline {
            bail!("the sign-in expired before it was confirmed; run `terrarium login` again");
        }
        std::thread::sleep(interval);
        let request = client.post("/auth/device/token").json(&DevicePoll { device_code: started.device_code.clone() });
        match client.send(request) {
            Ok(response) => return client.read_json(response),
            Err(error) => match error.downcast_ref::<super::http::ServerError>().and_then(|e| e.api_error.as_ref()) {
                Some(api_error) if api_error.code == "authorization_pending" => continue,
                Some(api_error) if api_error.code == "slow_down" => interval += std::time::Duration::from_secs(5),
                _ => return Err(error),
            },
        }
    }
}

pub fn logout(args: &ClientArgs) -> anyhow::Result<()> {
    let server = server_url(&args.server)?;
    let mut credentials = Credentials::load()?;
    match credentials.remove(&server) {
        Some(credential) => {
            credentials.save()?;
            println!("Signed out of {server} ({})", credential.user);
        }
        None => println!("You were not signed in to {server}"),
    }
    Ok(())
}

pub fn whoami(args: &ClientArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    let me: WhoAmI = client.get_json("/whoami")?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&me)?),
        Output::Table => {
            println!("User:    {}", me.user);
            println!("Groups:  {}", if me.groups.is_empty() { "-".to_owned() } else { me.groups.join(", ") });
            println!("Roles:   {}", if me.roles.is_empty() { "-".to_owned() } else { me.roles.join(", ") });
        }
    }
    Ok(())
}

fn users_table(users: &[UserInfo]) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_header(["NAME", "GROUPS", "STATE", "KIND", "CREATED", "BY"]);
    for user in users {
        table.add_row([
            user.name.clone(),
            if user.groups.is_empty() { "-".to_owned() } else { user.groups.join(",") },
            if user.disabled { "disabled".to_owned() } else { "active".to_owned() },
            if user.local { "local".to_owned() } else { "identity provider".to_owned() },
            user.created_at.clone(),
            user.created_by.clone(),
        ]);
    }
    table.to_string()
}

pub(crate) fn print<T: serde::Serialize>(
    output: Output,
    value: &T,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Table => println!("{}", table()),
    }
    Ok(())
}

pub fn users(args: &ClientArgs, command: UsersCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    let update = |name: &str, change: UpdateUserRequest| -> anyhow::Result<UserInfo> {
        let response = client.send(client.patch(&format!("/users/{name}")).json(&change))?;
        client.read_json(response)
    };
    match command {
        UsersCommand::List => {
            let users: Vec<UserInfo> = client.get_json("/users")?;
            print(args.output, &users, || users_table(&users))
        }
        UsersCommand::Add { name, groups, email } => {
            let created: CreateUserResponse = client.post_json("/users", &CreateUserRequest { name, groups, email })?;
            print(args.output, &created, || {
                format!(
                    "Added user {} (shown once) with password:\n  {}\nThey sign in with `terrarium login --password --server {}`; grant roles with `terrarium roles grant NAMESPACE user:{} builder`.",
                    created.user.name,
                    created.password,
                    client.server(),
                    created.user.name
                )
            })
        }
        UsersCommand::Disable { name } => {
            let user = update(&name, UpdateUserRequest { disabled: Some(true), groups: None })?;
            print(args.output, &user, || format!("Disabled {}: its tokens no longer work", user.name))
        }
        UsersCommand::Enable { name } => {
            let user = update(&name, UpdateUserRequest { disabled: Some(false), groups: None })?;
            print(args.output, &user, || format!("Enabled {}", user.name))
        }
        UsersCommand::SetGroups { name, groups } => {
            let groups: Vec<String> = groups.into_iter().filter(|group| !group.is_empty()).collect();
            let user = update(&name, UpdateUserRequest { disabled: None, groups: Some(groups) })?;
            print(args.output, &user, || format!("{} is in: {}", user.name, user.groups.join(", ")))
        }
    }
}

pub fn roles(args: &ClientArgs, command: RolesCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    match command {
        RolesCommand::List { namespace } => {
            if namespace.as_deref().is_some_and(|ns| ns != "*" && !super::http::is_plain_name(ns)) {
                bail!("{namespace:?} is not a namespace name");
            }
            let bindings: Vec<RoleBindingInfo> =
                client.get_json_query("/roles", &[("namespace", namespace.as_deref())])?;
            print(args.output, &bindings, || {
                let mut table = Table::new();
                table.load_preset(presets::NOTHING).set_header(["NAMESPACE", "SUBJECT", "ROLE", "GRANTED", "BY"]);
                for binding in &bindings {
                    table.add_row([
                        &binding.namespace,
                        &binding.subject,
                        &binding.role,
                        &binding.created_at,
                        &binding.created_by,
                    ]);
                }
                table.to_string()
            })
        }
        RolesCommand::Grant { namespace, subject, role } => {
            let binding: RoleBindingInfo =
                client.post_json("/roles", &RoleBindingRequest { namespace, subject, role })?;
            print(args.output, &binding, || {
                format!("Granted {} to {} in {}", binding.role, binding.subject, binding.namespace)
            })
        }
        RolesCommand::Revoke { namespace, subject, role } => {
            let request = RoleBindingRequest { namespace, subject, role };
            client.send(client.delete("/roles").json(&request))?;
            println!("Revoked {} from {} in {}", request.role, request.subject, request.namespace);
            Ok(())
        }
    }
}
