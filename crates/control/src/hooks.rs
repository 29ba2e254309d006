//! What happens to an app's data when the app changes hands or goes away. Control calls
//! [`AppHooks`] at those moments; the binary fans each call out to the services that keep data
//! per app (secrets today; key-value, SQL and vectors as they land). A hook answers what it did
//! as [`HookEvent`]s, and control records them: an audit event under the principal that caused
//! it, a notification to the app's people, a warning for the caller.

use audit::Action;
use deployment::{AppKey, Deployment};
use futures::future::BoxFuture;

/// One part of an app's archived data: `kv` (JSON lines) or `sql` (a SQLite file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPart {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// One thing a hook did.
#[derive(Clone, Debug, PartialEq)]
pub struct HookEvent {
    pub action: Action,
    /// What happened, in words; names, never values.
    pub detail: String,
    /// Told to the platform's notification channels, once per key.
    pub notification: Option<HookNotification>,
    /// Shown to whoever caused it (the deployer).
    pub warning: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HookNotification {
    /// Deduplication: a notification with a key already sent is not sent again.
    pub key: String,
    pub kind: &'static str,
    pub subject: String,
}

/// The services that keep data per app, told when an app goes away or changes owner.
pub trait AppHooks: Send + Sync + 'static {
    /// The app was deleted: what it kept goes with it, so a later app of the same name never
    /// inherits it.
    fn deleted<'a>(&'a self, app: &'a AppKey) -> BoxFuture<'a, Vec<HookEvent>>;

    /// A deploy gave the app a new owner: what the previous owner knew should be replaced.
    fn owner_changed<'a>(&'a self, app: &'a AppKey, previous: &'a str, new: &'a str) -> BoxFuture<'a, Vec<HookEvent>>;

    /// An archive of the app's stored data (key-value entries, SQL database), as named parts
    /// in the services' export formats, for the revision `deployment` describes.
    fn archive_data<'a>(&'a self, _deployment: &'a Deployment) -> BoxFuture<'a, Result<Vec<DataPart>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Frees what the revision `deployment` describes binds (what [`AppHooks::archive_data`]
    /// archived), once its archive is kept; stores it does not bind, and its secrets, stay.
    fn drop_data<'a>(&'a self, _deployment: &'a Deployment) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// Puts an archived app's data back, into empty stores.
    fn restore_data<'a>(&'a self, _app: &'a AppKey, _parts: &'a [DataPart]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// The names of the secrets the platform keeps for `app` (never values), so a deploy can
    /// tell an `env.NAME` that is none of them; `None` when they are not known.
    fn secret_names<'a>(&'a self, _app: &'a AppKey) -> BoxFuture<'a, Option<std::collections::BTreeSet<String>>> {
        Box::pin(async { None })
    }
}
