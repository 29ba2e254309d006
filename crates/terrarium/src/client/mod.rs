//! The command-line client: `validate`, `deploy`, `apps`, `namespaces` and `logs`.
//!
//! Every command but `validate` talks to the control API (see `api_types`) over HTTP with the
//! caller's platform token (`terrarium login`). [`pack_files`] and [`BUNDLE_LIMITS`] are shared with `init` and `serve`.

mod accounts;
mod approvals;
mod apps;
mod audit;
mod cache;
pub mod credentials;
mod data;
mod deploy;
mod http;
mod load_check;
mod logs;
mod pack;
pub(crate) mod policy;
mod secrets;
mod tasks;
mod usage;

pub use accounts::{KeysCommand, RolesCommand, UsersCommand, keys, login, logout, roles, users, whoami};
pub use approvals::{ApprovalsCommand, approvals};
pub use apps::{AppsCommand, NamespacesCommand, apps, namespaces};
pub use audit::{AuditArgs, audit};
pub use cache::{CacheCommand, cache};
pub use data::{DataCommand, data};
pub use deploy::{deploy, validate};
pub use logs::logs;
#[cfg(test)]
pub use pack::pack_app_dir;
pub use pack::pack_files;
pub use policy::{PolicyCommand, policy};
pub use secrets::{EgressCommand, SecretsCommand, egress, secrets};
pub use tasks::{TasksCommand, tasks};
pub use usage::{UsageArgs, usage};
