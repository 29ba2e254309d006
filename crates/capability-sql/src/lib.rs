//! SQL databases for apps, with Cloudflare's D1 API: `env.DB.prepare(sql).bind(...).all()`,
//! `first`, `run`, `raw`, `batch` and `exec`. The embedded backend is SQLite, in three
//! isolation tiers: `isolated` (a database file of the app's own), `schema` (a file per
//! namespace, each app reaching only the tables it created) and `shared` (a file per namespace
//! whose tables its apps share). Every app connection runs under the [`authorizer`]'s guard and
//! the [`config::Limits`]; each call is one transaction.
//!
//! Three phases, as every capability: the process's [`Sql`] service (its [`config::SqlSection`]
//! and folder), then one [`AppSql`] per deployment, then each call, run on a blocking thread
//! under the app's connection lock.

pub mod authorizer;
pub mod config;
mod copy;
mod database;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use deployment::{AppKey, SqlDatabase, SqlTier};
use futures::future::BoxFuture;
use runtime::sql::{SqlAnswer, SqlError, SqlHost, SqlOp};
use runtime::{DataMeter, DataOps};

use crate::config::Limits;
use crate::database::Database;

type Connection = Arc<Mutex<Database>>;

/// The SQL service of this server.
pub struct Sql {
    dir: PathBuf,
    limits: Limits,
    /// Open connections by app, tier and size cap; the least recently used close first.
    open: moka::sync::Cache<(AppKey, SqlTier, u32), Connection>,
    /// Each loaded app's database as its manifest asks for it.
    apps: Mutex<HashMap<AppKey, SqlDatabase>>,
    meter: Arc<dyn DataMeter>,
}

/// What an app's database holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SqlUsage {
    pub isolation: Option<SqlTier>,
    /// The database file's size; under `schema` and `shared`, the namespace's file.
    pub bytes: u64,
    /// The app's tables (under `shared`, the namespace's), with their rows.
    pub tables: Vec<TableUsage>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TableUsage {
    pub name: String,
    pub rows: u64,
}

/// A failure of the platform's own work on a database (export, import, delete, usage).
#[derive(Debug, thiserror::Error)]
pub enum SqlAdminError {
    /// The request cannot be done as asked; the message says why and what to do.
    #[error("{0}")]
    Invalid(String),
    #[error("SQL storage failed: {0}")]
    Storage(String),
}

impl From<rusqlite::Error> for SqlAdminError {
    fn from(error: rusqlite::Error) -> SqlAdminError {
        SqlAdminError::Storage(error.to_string())
    }
}

impl From<std::io::Error> for SqlAdminError {
    fn from(error: std::io::Error) -> SqlAdminError {
        SqlAdminError::Storage(error.to_string())
    }
}

impl Sql {
    pub fn new(section: &config::SqlSection, data_dir: &Path, meter: Arc<dyn DataMeter>) -> Sql {
        let (limits, dir) = section.build(data_dir);
        Sql {
            dir,
            limits,
            open: moka::sync::Cache::builder().max_capacity(section.max_open_databases.max(1)).build(),
            apps: Mutex::new(HashMap::new()),
            meter,
        }
    }

    /// The database one app's functions get.
    pub fn for_app(self: &Arc<Self>, app: &AppKey, database: &SqlDatabase) -> Arc<dyn SqlHost> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone(), database.clone());
        let max_mib = database.max_mib.unwrap_or(self.limits.default_database_mib);
        Arc::new(AppSql { sql: self.clone(), app: app.clone(), tier: database.isolation, max_mib })
    }

    /// The file an app's data lives in under `tier`.
    fn path(&self, app: &AppKey, tier: SqlTier) -> PathBuf {
        let folder = self.dir.join(&app.namespace);
        match tier {
            SqlTier::Isolated => folder.join(format!("app-{}.sqlite", app.name)),
            SqlTier::Schema => folder.join("schema.sqlite"),
            SqlTier::Shared => folder.join("shared.sqlite"),
        }
    }

    fn connection(&self, app: &AppKey, tier: SqlTier, max_mib: u32) -> Result<Connection, SqlAdminError> {
        let key = (app.clone(), tier, max_mib);
        if let Some(open) = self.open.get(&key) {
            return Ok(open);
        }
        let path = self.path(app, tier);
        if let Some(folder) = path.parent() {
            create_private_dir(folder)?;
        }
        let database = Database::open(&path, tier, &app.name, max_mib, &self.limits)?;
        let connection = Arc::new(Mutex::new(database));
        self.open.insert(key, connection.clone());
        Ok(connection)
    }

    /// The app's database as its live deployment asks for it.
    fn deployed(&self, app: &AppKey) -> Result<SqlDatabase, SqlAdminError> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner).get(app).cloned().ok_or_else(|| {
            SqlAdminError::Invalid(format!(
                "{}/{} has no SQL database: its manifest has no spec.data.sql",
                app.namespace, app.name
            ))
        })
    }

    fn app_connection(&self, app: &AppKey) -> Result<(SqlDatabase, Connection), SqlAdminError> {
        let database = self.deployed(app)?;
        let max_mib = database.max_mib.unwrap_or(self.limits.default_database_mib);
        let connection = self.connection(app, database.isolation, max_mib)?;
        Ok((database, connection))
    }

    /// What the app's database holds: its size, tables and rows.
    pub async fn usage(self: &Arc<Self>, app: &AppKey) -> Result<SqlUsage, SqlAdminError> {
        let Ok((database, connection)) = self.app_connection(app) else {
            return Ok(SqlUsage::default());
        };
        blocking(move || {
            let database_lock = connection.lock().unwrap_or_else(PoisonError::into_inner);
            let (bytes, tables) = database_lock.usage()?;
            Ok(SqlUsage { isolation: Some(database.isolation), bytes, tables })
        })
        .await
    }

    /// What each loaded app's database stores, in bytes: its own file, or its equal part of a
    /// file it shares with the namespace's other apps (`schema`, `shared`).
    pub async fn stored_bytes(self: &Arc<Self>) -> Vec<(AppKey, u64)> {
        let apps: Vec<(AppKey, SqlTier)> = self
            .apps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(app, database)| (app.clone(), database.isolation))
            .collect();
        let mut sharing: HashMap<PathBuf, u64> = HashMap::new();
        for (app, tier) in &apps {
            *sharing.entry(self.path(app, *tier)).or_default() += 1;
        }
        apps.into_iter()
            .map(|(app, tier)| {
                let path = self.path(&app, tier);
                let size: u64 = ["", "-wal"]
                    .iter()
                    .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
                    .map(|metadata| metadata.len())
                    .sum();
                let bytes = size / sharing.get(&path).copied().unwrap_or(1).max(1);
                (app, bytes)
            })
            .collect()
    }

    /// The app's tables, indexes, views and triggers with their rows, as a SQLite database file.
    pub async fn export(self: &Arc<Self>, app: &AppKey) -> Result<Vec<u8>, SqlAdminError> {
        let (_, connection) = self.app_connection(app)?;
        let scratch = self.scratch_file()?;
        blocking(move || {
            let database = connection.lock().unwrap_or_else(PoisonError::into_inner);
            database.export_to(scratch.path())?;
            Ok(std::fs::read(scratch.path())?)
        })
        .await
    }

    /// Copies every table (with its rows), index, view and trigger of a SQLite database file
    /// into the app's database, in one transaction; answers the tables copied. Refused whole
    /// when the file is not a sound SQLite database or a name is already taken.
    pub async fn import(self: &Arc<Self>, app: &AppKey, file: Vec<u8>) -> Result<Vec<String>, SqlAdminError> {
        let (_, connection) = self.app_connection(app)?;
        let scratch = self.scratch_file()?;
        std::fs::write(scratch.path(), &file)?;
        blocking(move || {
            copy::check_sound(scratch.path())?;
            let database = connection.lock().unwrap_or_else(PoisonError::into_inner);
            database.import_from(scratch.path())
        })
        .await
    }

    /// Deletes a deleted app's data: its own database file, or under `schema` the objects it
    /// created. A `shared` database belongs to the namespace and stays. Says what went.
    pub async fn delete_app(self: &Arc<Self>, app: &AppKey) -> Result<Option<String>, SqlAdminError> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner).remove(app);
        let stale: Vec<_> = self.open.iter().filter(|(key, _)| key.0 == *app).map(|(key, _)| (*key).clone()).collect();
        for key in stale {
            self.open.invalidate(&key);
        }
        let isolated = self.path(app, SqlTier::Isolated);
        let schema = self.path(app, SqlTier::Schema);
        let app = app.clone();
        blocking(move || {
            let mut said = Vec::new();
            if isolated.exists() {
                let bytes = std::fs::metadata(&isolated)?.len();
                for suffix in ["", "-wal", "-shm"] {
                    let path = PathBuf::from(format!("{}{suffix}", isolated.display()));
                    match std::fs::remove_file(&path) {
                        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
                        _ => {}
                    }
                }
                said.push(format!("SQL: its database ({bytes} bytes) deleted with the app"));
            }
            if schema.exists() {
                let dropped = copy::drop_owned(&schema, &app.name)?;
                if !dropped.is_empty() {
                    said.push(format!("SQL: {} deleted with the app", dropped.join(", ")));
                }
            }
            Ok((!said.is_empty()).then(|| said.join("; ")))
        })
        .await
    }

    fn scratch_file(&self) -> Result<tempfile::NamedTempFile, SqlAdminError> {
        create_private_dir(&self.dir)?;
        Ok(tempfile::Builder::new().prefix(".scratch-").suffix(".sqlite").tempfile_in(&self.dir)?)
    }
}

/// Runs SQLite work on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SqlAdminError> + Send + 'static,
) -> Result<T, SqlAdminError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| SqlAdminError::Storage(format!("the SQL worker failed: {error}")))?
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// One app's database.
pub struct AppSql {
    sql: Arc<Sql>,
    app: AppKey,
    tier: SqlTier,
    max_mib: u32,
}

impl SqlHost for AppSql {
    fn call(&self, op: SqlOp) -> BoxFuture<'static, Result<SqlAnswer, SqlError>> {
        let sql = self.sql.clone();
        let (app, tier, max_mib) = (self.app.clone(), self.tier, self.max_mib);
        Box::pin(async move {
            let connection = sql.connection(&app, tier, max_mib).map_err(|error| {
                tracing::error!(namespace = %app.namespace, app = %app.name, %error, "the app's SQL database could not be opened");
                SqlError("D1_ERROR: the database could not be opened: SQLITE_CANTOPEN".to_owned())
            })?;
            let run = move || {
                let mut database = connection.lock().unwrap_or_else(PoisonError::into_inner);
                match op {
                    SqlOp::Batch(statements) => database.batch(&statements).map(SqlAnswer::Results),
                    SqlOp::Exec(text) => {
                        let started = std::time::Instant::now();
                        let (count, rows_read, rows_written) = database.exec(&text)?;
                        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                        Ok(SqlAnswer::Executed { count, duration_ms, rows_read, rows_written })
                    }
                }
            };
            let answer = tokio::task::spawn_blocking(run)
                .await
                .map_err(|_| SqlError("D1_ERROR: the query failed: SQLITE_INTERNAL".to_owned()))?;
            let rows = match &answer {
                Ok(SqlAnswer::Results(results)) => Some((
                    results.iter().map(|result| result.meta.rows_read).sum(),
                    results.iter().map(|result| result.meta.rows_written).sum(),
                )),
                Ok(SqlAnswer::Executed { rows_read, rows_written, .. }) => Some((*rows_read, *rows_written)),
                Err(_) => None,
            };
            if let Some((sql_rows_read, sql_rows_written)) = rows {
                sql.meter.record_data(&app, DataOps { sql_rows_read, sql_rows_written, ..DataOps::default() });
            }
            answer
        })
    }
}

#[cfg(test)]
mod tests;
