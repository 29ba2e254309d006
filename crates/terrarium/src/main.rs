//! The `terrarium` binary: `serve` runs the platform; every other subcommand is a client.

mod client;
mod config;
mod front_door;
mod hooks;
mod init;
mod models;
mod pii;
mod policies;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "terrarium", version, about = "Host and govern micro apps", propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the CLI finds the control API and how it prints.
#[derive(clap::Args, Clone, Debug)]
pub struct ClientArgs {
    /// Base URL of the Terrarium server.
    #[arg(long, env = "TERRARIUM_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// A platform access token; by default the one `terrarium login` keeps for this server.
    #[arg(long, env = "TERRARIUM_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform: control API, gateway and runtime in one process.
    Serve(serve::ServeArgs),
    /// Create a new app folder from a template.
    Init(init::InitArgs),
    /// Install the models the server runs itself (the embedding model behind embed-default).
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// Find personal data in text, as vector indexes' text pipeline redacts it.
    Pii {
        #[command(subcommand)]
        command: pii::PiiCommand,
    },
    /// Check an app folder's terrarium.yaml without deploying.
    Validate {
        /// The app folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Validate, pack and upload an app folder; prints the app's URLs.
    Deploy {
        /// The app folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List, inspect, roll back and delete apps.
    Apps {
        #[command(subcommand)]
        command: client::AppsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List and create namespaces (tenants).
    Namespaces {
        #[command(subcommand)]
        command: client::NamespacesCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show an app's console output and errors.
    Logs {
        /// The app, as NAMESPACE/NAME.
        app: String,
        /// Keep printing new lines as they arrive.
        #[arg(long, short = 'f')]
        follow: bool,
        /// How many recent lines to show first.
        #[arg(long, default_value_t = 100)]
        tail: usize,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the JSON Schema of terrarium.yaml (for editors).
    Schema,
    /// Sign in to a Terrarium server and keep the token for later commands: through the
    /// company's identity provider (a code to confirm in a browser), or with --password.
    Login {
        /// Sign in with a local account's user name and password instead.
        #[arg(long)]
        password: bool,
        /// The user name (asked for on a terminal when left out).
        #[arg(long, short = 'u')]
        username: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Forget the token kept for a server.
    Logout {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show who you are signed in as, your groups and roles.
    Whoami {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Manage local accounts (platform admins).
    Users {
        #[command(subcommand)]
        command: client::UsersCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Rotate the platform's token signing key (platform admins).
    Keys {
        #[command(subcommand)]
        command: client::KeysCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set, list, version and remove apps' secrets; rotate the key-encryption key.
    Secrets {
        #[command(subcommand)]
        command: client::SecretsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Requests, refusals, CPU time and bytes per app, per month, day or hour.
    Usage {
        #[command(flatten)]
        usage: client::UsageArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Policies: run their Rego tests or evaluate an app offline; on the server, the loaded
    /// policies, violations the audit found, and exceptions.
    Policy {
        #[command(subcommand)]
        command: client::PolicyCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revisions waiting for an operator's approval: list, show, approve, deny.
    Approvals {
        #[command(subcommand)]
        command: client::ApprovalsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Who did what, when: the audit log, filtered and paged (a namespace's operators, platform admins).
    Audit {
        #[command(flatten)]
        audit: client::AuditArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Apps' outbound requests: the egress log.
    Egress {
        #[command(subcommand)]
        command: client::EgressCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Grant, revoke and list roles per namespace.
    Roles {
        #[command(subcommand)]
        command: client::RolesCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// What an app stores; export and import its key-value data.
    Data {
        #[command(subcommand)]
        command: client::DataCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cached responses: purge an app's, all or under a path or a tag.
    Cache {
        #[command(subcommand)]
        command: client::CacheCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The server's background tasks: list them, or run one now (platform admins).
    Tasks {
        #[command(subcommand)]
        command: client::TasksCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Init(args) => init::run(args),
        Command::Models { command } => models::run(command),
        Command::Pii { command } => pii::run(command),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&manifest::json_schema()).expect("schema is JSON"));
            Ok(())
        }
        Command::Validate { dir } => client::validate(&dir),
        Command::Deploy { dir, client } => client::deploy(&client, &dir),
        Command::Apps { command, client } => client::apps(&client, command),
        Command::Namespaces { command, client } => client::namespaces(&client, command),
        Command::Logs { app, follow, tail, client } => client::logs(&client, &app, follow, tail),
        Command::Login { password, username, client } => client::login(&client, password, username),
        Command::Logout { client } => client::logout(&client),
        Command::Whoami { client } => client::whoami(&client),
        Command::Users { command, client } => client::users(&client, command),
        Command::Roles { command, client } => client::roles(&client, command),
        Command::Keys { command, client } => client::keys(&client, command),
        Command::Secrets { command, client } => client::secrets(&client, command),
        Command::Egress { command, client } => client::egress(&client, command),
        Command::Policy { command, client } => client::policy(&client, command),
        Command::Approvals { command, client } => client::approvals(&client, command),
        Command::Audit { audit, client } => client::audit(&client, audit),
        Command::Usage { usage, client } => client::usage(&client, usage),
        Command::Tasks { command, client } => client::tasks(&client, command),
        Command::Cache { command, client } => client::cache(&client, command),
        Command::Data { command, client } => client::data(&client, command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
