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
pub mod portable;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use deployment::{AppKey, SqlDatabase, SqlTier};
use futures::future::BoxFuture;
use runtime::DataMeter;
use runtime::sql::{SqlAnswer, SqlError, SqlHost, SqlOp};

use crate::config::Limits;
use crate::database::Database;

type Connection = Arc<Mutex<Database>>;

/// A database file's key: 256 bits, wiped when dropped.
pub type FileKey = zeroize::Zeroizing<[u8; 32]>;

/// Keys of the SQL files of apps whose data is confidential or restricted (SQLCipher): the
/// binary implements it over the secret store, each a key derived from the namespace's data key.
pub trait DatabaseKeys: Send + Sync + 'static {
    /// The key of `namespace`'s database file named by `purpose` (`sql app-poll`).
    fn key(&self, namespace: &str, purpose: &str) -> BoxFuture<'static, Result<FileKey, String>>;
}

/// The SQL service as the binary, the API and the data hooks use it, whichever backend keeps
/// the data: [`Sql`] on SQLite files, or `data-postgres` on PostgreSQL.
pub trait SqlService: Send + Sync + 'static {
    /// The database one app's functions get, in the tier its manifest names.
    fn for_app(&self, app: &AppKey, database: &SqlDatabase) -> Result<Arc<dyn SqlHost>, String>;
    /// Moves an app's data to another tier; answers the tables moved.
    fn migrate(&self, app: &AppKey, target: SqlTier) -> BoxFuture<'static, Result<Vec<String>, SqlAdminError>>;
    /// What the app's database holds.
    fn usage(&self, app: &AppKey) -> BoxFuture<'static, Result<SqlUsage, SqlAdminError>>;
    /// What each loaded app's database stores, in bytes.
    fn stored_bytes(&self) -> BoxFuture<'static, Vec<(AppKey, u64)>>;
    /// The app's tables with their rows (and indexes, views, triggers), as a SQLite database file.
    fn export(&self, app: &AppKey) -> BoxFuture<'static, Result<Vec<u8>, SqlAdminError>>;
    /// Copies a SQLite database file's tables into the app's database; answers the tables.
    fn import(&self, app: &AppKey, file: Vec<u8>) -> BoxFuture<'static, Result<Vec<String>, SqlAdminError>>;
    /// Deletes a deleted app's data; says what went.
    fn delete_app(&self, app: &AppKey) -> BoxFuture<'static, Result<Option<String>, SqlAdminError>>;
}

impl SqlService for Arc<Sql> {
    fn for_app(&self, app: &AppKey, database: &SqlDatabase) -> Result<Arc<dyn SqlHost>, String> {
        Sql::for_app(self, app, database)
    }

    fn migrate(&self, app: &AppKey, target: SqlTier) -> BoxFuture<'static, Result<Vec<String>, SqlAdminError>> {
        let (sql, app) = (self.clone(), app.clone());
        Box::pin(async move { Sql::migrate(&sql, &app, target).await })
    }

    fn usage(&self, app: &AppKey) -> BoxFuture<'static, Result<SqlUsage, SqlAdminError>> {
        let (sql, app) = (self.clone(), app.clone());
        Box::pin(async move { Sql::usage(&sql, &app).await })
    }

    fn stored_bytes(&self) -> BoxFuture<'static, Vec<(AppKey, u64)>> {
        let sql = self.clone();
        Box::pin(async move { Sql::stored_bytes(&sql).await })
    }

    fn export(&self, app: &AppKey) -> BoxFuture<'static, Result<Vec<u8>, SqlAdminError>> {
        let (sql, app) = (self.clone(), app.clone());
        Box::pin(async move { Sql::export(&sql, &app).await })
    }

    fn import(&self, app: &AppKey, file: Vec<u8>) -> BoxFuture<'static, Result<Vec<String>, SqlAdminError>> {
        let (sql, app) = (self.clone(), app.clone());
        Box::pin(async move { Sql::import(&sql, &app, file).await })
    }

    fn delete_app(&self, app: &AppKey) -> BoxFuture<'static, Result<Option<String>, SqlAdminError>> {
        let (sql, app) = (self.clone(), app.clone());
        Box::pin(async move { Sql::delete_app(&sql, &app).await })
    }
}

/// The SQL service of this server.
pub struct Sql {
    dir: PathBuf,
    limits: Limits,
    /// Open connections by app, tier and size cap, each with whether its file is encrypted;
    /// the least recently used close first.
    open: moka::sync::Cache<(AppKey, SqlTier, u32), (bool, Connection)>,
    /// Held while a connection is opened (and a file encrypted in place): no other connection
    /// to the file is opened meanwhile.
    opening: Mutex<()>,
    /// Each loaded app's database as its manifest asks for it.
    apps: Mutex<HashMap<AppKey, SqlDatabase>>,
    /// Apps whose data `migrate` moved (to, from): calls of every revision follow it (also on
    /// disk, `app-NAME.tier`, for restarts).
    moved: Mutex<HashMap<AppKey, (SqlTier, SqlTier)>>,
    /// Apps whose data is moving now: one move at a time.
    migrating: Mutex<std::collections::HashSet<AppKey>>,
    meter: Arc<dyn DataMeter>,
    /// Keys of encrypted files; without them an encrypted app's database is refused.
    keys: Option<Arc<dyn DatabaseKeys>>,
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
        // Scratch copies of exports and imports are in clear: none outlives a crash.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(".scratch-") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Sql {
            dir,
            limits,
            open: moka::sync::Cache::builder().max_capacity(section.max_open_databases.max(1)).build(),
            apps: Mutex::new(HashMap::new()),
            moved: Mutex::new(HashMap::new()),
            migrating: Mutex::new(std::collections::HashSet::new()),
            meter,
            keys: None,
            opening: Mutex::new(()),
        }
    }

    /// Encrypts the databases of confidential and restricted apps with keys from `keys`.
    pub fn with_keys(mut self, keys: Arc<dyn DatabaseKeys>) -> Sql {
        self.keys = Some(keys);
        self
    }

    /// The key of the app's file under `tier`: only `isolated` files are encrypted, those of
    /// apps that ask for it (`wanted`) and any already encrypted. Fails closed without keys.
    async fn file_key(&self, app: &AppKey, tier: SqlTier, wanted: bool) -> Result<Option<FileKey>, SqlAdminError> {
        if wanted && tier != SqlTier::Isolated {
            return Err(SqlAdminError::Invalid(format!(
                "{}/{} is labelled confidential or restricted, but its data is in isolation: {}, which is not \
                 encrypted; move it with `terrarium data migrate {}/{} --isolation isolated`",
                app.namespace,
                app.name,
                tier.as_str(),
                app.namespace,
                app.name
            )));
        }
        if tier != SqlTier::Isolated || !(wanted || database::is_encrypted_database(&self.path(app, tier))) {
            return Ok(None);
        }
        let keys = self.keys.as_ref().ok_or_else(|| {
            SqlAdminError::Storage(format!(
                "{}/{}'s database is encrypted at rest, but this server has no key for it",
                app.namespace, app.name
            ))
        })?;
        let purpose = format!("sql app-{}", app.name);
        keys.key(&app.namespace, &purpose).await.map(Some).map_err(SqlAdminError::Storage)
    }

    /// The database one app's functions get. Refused when the app's data is in another tier
    /// than the revision names (the manifest changed `isolation`): the data would be left
    /// behind, so the builder moves it first with `terrarium data migrate`.
    pub fn for_app(self: &Arc<Self>, app: &AppKey, database: &SqlDatabase) -> Result<Arc<dyn SqlHost>, String> {
        let declared = database.isolation;
        match self.moved_tier(app) {
            // The move record stays the routing truth for every revision, the one naming the new
            // tier and any still live that names the old one.
            Some((target, source)) if target == declared || source == declared => {}
            Some((target, _)) => return Err(self.left_behind(app, declared, target)),
            None => match self.data_tier(app) {
                Some(actual) if actual != declared => return Err(self.left_behind(app, declared, actual)),
                _ => {}
            },
        }
        if database.encrypted && self.effective_tier(app, declared) != SqlTier::Isolated {
            return Err(format!(
                "metadata.labels.dataClass: {}/{}'s SQL data is in isolation: {}, which is not encrypted; move it first \
                 with `terrarium data migrate {}/{} --isolation isolated`",
                app.namespace,
                app.name,
                self.effective_tier(app, declared).as_str(),
                app.namespace,
                app.name
            ));
        }
        self.apps.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone(), database.clone());
        let max_mib = database.max_mib.unwrap_or(self.limits.default_database_mib);
        // A file encrypted once stays encrypted, whatever the label says now.
        let encrypted = database.encrypted || database::is_encrypted_database(&self.path(app, SqlTier::Isolated));
        Ok(Arc::new(AppSql { sql: self.clone(), app: app.clone(), tier: declared, max_mib, encrypted }))
    }

    fn left_behind(&self, app: &AppKey, declared: SqlTier, actual: SqlTier) -> String {
        let (namespace, name) = (&app.namespace, &app.name);
        format!(
            "spec.data.sql.isolation: {} asks for another tier than the one {namespace}/{name}'s data is in ({}); \
             move the data first with `terrarium data migrate {namespace}/{name} --isolation {}`, or keep isolation: {}",
            declared.as_str(),
            actual.as_str(),
            declared.as_str(),
            actual.as_str()
        )
    }

    /// Where the app's data is: its own file, or its tables in the namespace's `schema` file;
    /// `None` when it has none there (a `shared` database is the namespace's, not the app's).
    fn data_tier(&self, app: &AppKey) -> Option<SqlTier> {
        let isolated = self.path(app, SqlTier::Isolated);
        let holds_objects = isolated.exists()
            && rusqlite::Connection::open_with_flags(
                &isolated,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .and_then(|conn| {
                conn.query_row(
                    "SELECT count(*) > 0 FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                    [],
                    |row| row.get(0),
                )
            })
            .unwrap_or(true);
        if holds_objects {
            return Some(SqlTier::Isolated);
        }
        let schema = self.path(app, SqlTier::Schema);
        let owns = schema.exists()
            && rusqlite::Connection::open_with_flags(
                &schema,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .and_then(|conn| {
                conn.query_row("SELECT count(*) > 0 FROM _terrarium_owners WHERE app = ?1", [&app.name], |row| {
                    row.get(0)
                })
            })
            .unwrap_or(false);
        owns.then_some(SqlTier::Schema)
    }

    fn move_record(&self, app: &AppKey) -> PathBuf {
        self.dir.join(&app.namespace).join(format!("app-{}.tier", app.name))
    }

    /// Where `migrate` moved the app's data to and from, from memory or its record on disk.
    fn moved_tier(&self, app: &AppKey) -> Option<(SqlTier, SqlTier)> {
        if let Some(moved) = self.moved.lock().unwrap_or_else(PoisonError::into_inner).get(app) {
            return Some(*moved);
        }
        let recorded = std::fs::read_to_string(self.move_record(app)).ok()?;
        let tier = |name: &str| {
            [SqlTier::Isolated, SqlTier::Schema, SqlTier::Shared].into_iter().find(|tier| tier.as_str() == name)
        };
        let mut words = recorded.split_whitespace();
        let moved = (tier(words.next()?)?, tier(words.next()?)?);
        self.moved.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone(), moved);
        Some(moved)
    }

    /// The tier an app's calls go to now: where `migrate` moved its data, else its manifest's.
    fn effective_tier(&self, app: &AppKey, declared: SqlTier) -> SqlTier {
        self.moved.lock().unwrap_or_else(PoisonError::into_inner).get(app).map_or(declared, |(target, _)| *target)
    }

    /// Moves an app's SQL data to `target`: the app keeps reading but cannot write while its
    /// tables, rows, indexes, views and triggers are copied; each table's rows are compared by
    /// checksum before the app is switched to the copy, and only then is the old data deleted
    /// (a `shared` database, the namespace's, stays). Answers the tables moved.
    pub async fn migrate(self: &Arc<Self>, app: &AppKey, target: SqlTier) -> Result<Vec<String>, SqlAdminError> {
        let database = self.deployed(app)?;
        let restricted = database.restricted;
        let current = self.effective_tier(app, database.isolation);
        if current == target {
            return Err(SqlAdminError::Invalid(format!(
                "{}/{}'s data is in isolation: {} already",
                app.namespace,
                app.name,
                target.as_str()
            )));
        }
        if restricted && target != SqlTier::Isolated {
            return Err(SqlAdminError::Invalid(format!(
                "{}/{} is labelled dataClass: restricted, whose data stays in isolation: isolated",
                app.namespace, app.name
            )));
        }
        if database.encrypted && target != SqlTier::Isolated {
            return Err(SqlAdminError::Invalid(format!(
                "{}/{} is labelled dataClass: confidential, whose data stays encrypted in isolation: isolated",
                app.namespace, app.name
            )));
        }
        if !self.migrating.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone()) {
            return Err(SqlAdminError::Invalid(format!(
                "{}/{}'s data is moving already; wait for that move to end",
                app.namespace, app.name
            )));
        }
        let moved = self.move_data(app, current, target, &database).await;
        self.migrating.lock().unwrap_or_else(PoisonError::into_inner).remove(app);
        moved
    }

    async fn move_data(
        self: &Arc<Self>,
        app: &AppKey,
        current: SqlTier,
        target: SqlTier,
        database: &SqlDatabase,
    ) -> Result<Vec<String>, SqlAdminError> {
        let max_mib = database.max_mib.unwrap_or(self.limits.default_database_mib);
        let source_key = self.file_key(app, current, database.encrypted).await?;
        let destination_key = self.file_key(app, target, database.encrypted).await?;
        let source = self.connection(app, current, max_mib, source_key).await?;
        let destination = self.connection(app, target, max_mib, destination_key).await?;
        let sql = self.clone();
        let app = app.clone();
        blocking(move || {
            // The app reads the old copy while the new one is made; its writes wait for the switch.
            let prepared = {
                let source = source.lock().unwrap_or_else(PoisonError::into_inner);
                still_open(&source)?;
                source.set_read_only(true)?;
                source
                    .refresh_owned()
                    .map(|()| (source.path().to_owned(), source.only_owned(), source.key_text().map(str::to_owned)))
            };
            let restore = || source.lock().unwrap_or_else(PoisonError::into_inner).set_read_only(false);
            let (old, only, old_key) = match prepared {
                Ok(prepared) => prepared,
                Err(error) => {
                    restore()?;
                    return Err(error.into());
                }
            };
            let old_key = old_key.map(zeroize::Zeroizing::new);
            let copied = destination.lock().unwrap_or_else(PoisonError::into_inner).copy_from(
                &old,
                old_key.as_deref().map(String::as_str),
                only.as_ref(),
                true,
            );
            let tables = match copied {
                Ok(tables) => tables,
                Err(error) => {
                    restore()?;
                    return Err(error);
                }
            };
            // A second move keeps the tier the manifest names as where the data came from.
            let named = sql.moved_tier(&app).map_or(current, |(_, source)| source);
            let record = sql.move_record(&app);
            if let Err(error) = std::fs::write(&record, format!("{} {}", target.as_str(), named.as_str())) {
                restore()?;
                return Err(error.into());
            }
            sql.moved.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone(), (target, named));
            // The old copy stays read-only: a call that found it before the switch cannot write
            // to data about to be deleted.
            drop(source);
            sql.open.invalidate(&(app.clone(), current, max_mib));
            match current {
                SqlTier::Isolated => {
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", old.display()));
                    }
                }
                SqlTier::Schema => {
                    copy::drop_owned(&old, &app.name)?;
                }
                SqlTier::Shared => {}
            }
            Ok(tables)
        })
        .await
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

    /// The app's connection under `tier`, opened when none is (on a blocking thread: opening
    /// may first encrypt the file in place).
    async fn connection(
        self: &Arc<Self>,
        app: &AppKey,
        tier: SqlTier,
        max_mib: u32,
        file_key: Option<FileKey>,
    ) -> Result<Connection, SqlAdminError> {
        if let Some((encrypted, open)) = self.open.get(&(app.clone(), tier, max_mib))
            && encrypted == file_key.is_some()
        {
            return Ok(open);
        }
        let sql = self.clone();
        let app = app.clone();
        blocking(move || sql.open_connection(&app, tier, max_mib, file_key.as_deref())).await
    }

    fn open_connection(
        &self,
        app: &AppKey,
        tier: SqlTier,
        max_mib: u32,
        file_key: Option<&[u8; 32]>,
    ) -> Result<Connection, SqlAdminError> {
        let _opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (app.clone(), tier, max_mib);
        if let Some((encrypted, open)) = self.open.get(&key)
            && encrypted == file_key.is_some()
        {
            return Ok(open);
        }
        let path = self.path(app, tier);
        if let Some(folder) = path.parent() {
            create_private_dir(folder)?;
        }
        if file_key.is_some() && database::is_clear_database(&path) {
            // The app is to be encrypted now (it was labelled confidential): every connection
            // to its file in clear closes for good first (calls holding one answer "try
            // again"), and no other opens while the file is encrypted in place.
            let stale: Vec<_> = self.open.iter().filter(|(cached, _)| cached.0 == *app && cached.1 == tier).collect();
            for (cached, (_, connection)) in stale {
                connection.lock().unwrap_or_else(PoisonError::into_inner).retire()?;
                self.open.invalidate(&*cached);
            }
        }
        let database = Database::open(&path, tier, &app.name, max_mib, &self.limits, file_key)?;
        let encrypted = database.encrypted();
        let connection = Arc::new(Mutex::new(database));
        self.open.insert(key, (encrypted, connection.clone()));
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

    async fn app_connection(self: &Arc<Self>, app: &AppKey) -> Result<(SqlDatabase, Connection), SqlAdminError> {
        let mut database = self.deployed(app)?;
        database.isolation = self.effective_tier(app, database.isolation);
        let max_mib = database.max_mib.unwrap_or(self.limits.default_database_mib);
        let key = self.file_key(app, database.isolation, database.encrypted).await?;
        let connection = self.connection(app, database.isolation, max_mib, key).await?;
        Ok((database, connection))
    }

    /// What the app's database holds: its size, tables and rows.
    pub async fn usage(self: &Arc<Self>, app: &AppKey) -> Result<SqlUsage, SqlAdminError> {
        let Ok((database, connection)) = self.app_connection(app).await else {
            return Ok(SqlUsage::default());
        };
        blocking(move || {
            let database_lock = connection.lock().unwrap_or_else(PoisonError::into_inner);
            still_open(&database_lock)?;
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
        let (_, connection) = self.app_connection(app).await?;
        let scratch = self.scratch_file()?;
        blocking(move || {
            let database = connection.lock().unwrap_or_else(PoisonError::into_inner);
            still_open(&database)?;
            database.export_to(scratch.path())?;
            Ok(std::fs::read(scratch.path())?)
        })
        .await
    }

    /// Copies every table (with its rows), index, view and trigger of a SQLite database file
    /// into the app's database, in one transaction; answers the tables copied. Refused whole
    /// when the file is not a sound SQLite database or a name is already taken.
    pub async fn import(self: &Arc<Self>, app: &AppKey, file: Vec<u8>) -> Result<Vec<String>, SqlAdminError> {
        let (_, connection) = self.app_connection(app).await?;
        let scratch = self.scratch_file()?;
        std::fs::write(scratch.path(), &file)?;
        blocking(move || {
            copy::check_sound(scratch.path())?;
            let database = connection.lock().unwrap_or_else(PoisonError::into_inner);
            still_open(&database)?;
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
        self.moved.lock().unwrap_or_else(PoisonError::into_inner).remove(app);
        let _ = std::fs::remove_file(self.move_record(app));
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

/// Refuses work on a connection closed for good since it was looked up (its file was
/// encrypted meanwhile).
fn still_open(database: &Database) -> Result<(), SqlAdminError> {
    match database.retired() {
        true => Err(SqlAdminError::Invalid("the database was encrypted just now; run the command again".to_owned())),
        false => Ok(()),
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
    /// Its `isolated` file is encrypted (or is to be).
    encrypted: bool,
}

impl SqlHost for AppSql {
    fn call(&self, op: SqlOp) -> BoxFuture<'static, Result<SqlAnswer, SqlError>> {
        let sql = self.sql.clone();
        let (app, max_mib, self_tier, encrypted) = (self.app.clone(), self.max_mib, self.tier, self.encrypted);
        let tier = self.sql.effective_tier(&app, self.tier);
        Box::pin(async move {
            let file_key = sql.file_key(&app, tier, encrypted).await.map_err(|error| {
                tracing::error!(namespace = %app.namespace, app = %app.name, %error, "the app's SQL database key is not available");
                SqlError("D1_ERROR: the database could not be opened: SQLITE_CANTOPEN".to_owned())
            })?;
            let connection = sql.connection(&app, tier, max_mib, file_key).await.map_err(|error| {
                tracing::error!(namespace = %app.namespace, app = %app.name, %error, "the app's SQL database could not be opened");
                SqlError("D1_ERROR: the database could not be opened: SQLITE_CANTOPEN".to_owned())
            })?;
            let moving = sql.clone();
            let (declared, called) = (self_tier, app.clone());
            let run = move || {
                let mut database = connection.lock().unwrap_or_else(PoisonError::into_inner);
                // The data moved to another tier since this call looked (`migrate`), or its file
                // was encrypted: never write to the copy being left behind.
                if moving.effective_tier(&called, declared) != tier || database.retired() {
                    return Err(SqlError(
                        "D1_ERROR: the database just moved to another tier; try again: SQLITE_BUSY".to_owned(),
                    ));
                }
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
            if let Ok(answer) = &answer {
                sql.meter.record_data(&app, answer.data_ops());
            }
            answer
        })
    }
}

#[cfg(test)]
mod tests;
