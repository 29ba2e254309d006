//! One app's connection to its database file, and running the D1 API's statements on it:
//! each call a transaction of the platform's (rolled back whole on any failure), every
//! statement checked by the [`Guard`] as it is prepared, stopped when it runs too long or
//! returns too much, and answered with D1's `results` and `meta`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use deployment::SqlTier;
use runtime::sql::{SqlError, SqlMeta, SqlResult, SqlStatement, SqlValue};
use rusqlite::limits::Limit;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, Statement, StatementStatus};

use crate::authorizer::{Guard, TRANSACTION_REFUSED, first_keyword};
use crate::config::Limits;
use crate::{SqlAdminError, TableUsage, copy};

/// The platform's bookkeeping under `isolation: schema`: which app created each object.
const OWNERS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS _terrarium_owners (name TEXT PRIMARY KEY, app TEXT NOT NULL) WITHOUT ROWID";

/// How many SQLite virtual-machine steps pass between checks of the statement's deadline.
const PROGRESS_STEPS: i32 = 10_000;

pub(crate) struct Database {
    conn: Connection,
    /// The file's SQLCipher key as SQL text (`x'…'`), when it is encrypted.
    key: Option<zeroize::Zeroizing<String>>,
    /// Closed for good (the file was encrypted since): calls answer "try again".
    retired: bool,
    /// Read-only while the app's data moves: reads still run, in a deferred transaction.
    moving: std::sync::atomic::AtomicBool,
    guard: Arc<Mutex<Guard>>,
    deadline: Arc<Mutex<Option<Instant>>>,
    app: String,
    path: PathBuf,
    limits: Limits,
    max_mib: u32,
}

impl Database {
    /// Opens (creating when missing) the database file at `path` for app `app`; with `key`,
    /// encrypted (a file still in clear is encrypted first, in place).
    pub fn open(
        path: &Path,
        tier: SqlTier,
        app: &str,
        max_mib: u32,
        limits: &Limits,
        key: Option<&[u8; 32]>,
    ) -> rusqlite::Result<Database> {
        let key = key.map(key_text);
        if let Some(key) = &key
            && is_clear_database(path)
        {
            encrypt_in_place(path, key)?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        if let Some(key) = &key {
            // First, before SQLite reads a page; a wrong key fails at the first read below.
            // SQLCipher answers a row ("ok"), which execute_batch allows.
            conn.execute_batch(&zeroize::Zeroizing::new(format!("PRAGMA key = \"{}\";", key.as_str())))?;
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        harden(&conn)?;
        // SQLCipher answers an encrypted file's page size as text (as `cipher_page_size`).
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| {
            Ok(match row.get::<_, Value>(0)? {
                Value::Integer(size) => size,
                Value::Text(size) => size.parse().unwrap_or(4096),
                _ => 4096,
            })
        })?;
        let max_pages = (i64::from(max_mib) * 1024 * 1024 / page_size.max(512)).max(16);
        conn.pragma_update(None, "max_page_count", max_pages)?;
        conn.set_limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER, limits.bound_parameters as i32)?;
        conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, limits.statement_bytes as i32)?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, limits.value_bytes as i32)?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        conn.set_limit(Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 32)?;
        if tier == SqlTier::Schema {
            conn.execute_batch(OWNERS_TABLE)?;
        }

        let guard = Arc::new(Mutex::new(Guard::new(tier)));
        let deciding = guard.clone();
        conn.authorizer(Some(move |context: rusqlite::hooks::AuthContext<'_>| {
            deciding.lock().unwrap_or_else(PoisonError::into_inner).authorize(&context)
        }))?;
        let deadline: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let watching = deadline.clone();
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || {
                watching.lock().unwrap_or_else(PoisonError::into_inner).is_some_and(|at| Instant::now() >= at)
            }),
        )?;
        let database = Database {
            conn,
            key,
            retired: false,
            moving: std::sync::atomic::AtomicBool::new(false),
            guard,
            deadline,
            app: app.to_owned(),
            path: path.to_owned(),
            limits: limits.clone(),
            max_mib,
        };
        if tier == SqlTier::Schema {
            database.load_owned()?;
        }
        Ok(database)
    }

    /// Whether the file is encrypted.
    pub fn encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// Closes the file for good (it is about to be encrypted): later calls on this handle
    /// answer "try again" and reach the new one.
    pub fn retire(&mut self) -> rusqlite::Result<()> {
        let closed = std::mem::replace(&mut self.conn, Connection::open_in_memory()?);
        self.retired = true;
        closed.close().map_err(|(_, error)| error)
    }

    pub fn retired(&self) -> bool {
        self.retired
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Guard> {
        self.guard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the platform's own SQL, past the guard.
    fn platform<T>(&self, run: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        self.guard().platform = true;
        let result = run(&self.conn);
        self.guard().platform = false;
        result
    }

    /// The statements of a `batch()` (or of one statement's `all()`, `run()`, `first()`,
    /// `raw()`) in one transaction.
    pub fn batch(&mut self, statements: &[SqlStatement]) -> Result<Vec<SqlResult>, SqlError> {
        // Reads take no write lock (outside `schema`, where ownership is read under it): a long
        // read does not hold up the namespace's other apps on a shared file. Under `schema` too
        // while the app's data moves (the write lock is refused then; a read's snapshot holds
        // the ownership table and the objects together).
        let tier = self.guard().tier;
        let moving = self.moving.load(std::sync::atomic::Ordering::Relaxed);
        let read_only = (tier != SqlTier::Schema || moving)
            && statements
                .iter()
                .all(|statement| self.conn.prepare_cached(&statement.sql).is_ok_and(|prepared| prepared.readonly()));
        self.transaction_as(read_only, |database| {
            statements
                .iter()
                .map(|statement| {
                    let mut prepared = database.prepare(&statement.sql)?;
                    database.run(&mut prepared, &statement.params)
                })
                .collect()
        })
    }

    /// `exec(sql)`: every statement of the text, in order, in one transaction; how many ran,
    /// and the rows they read and wrote.
    pub fn exec(&mut self, sql: &str) -> Result<(u64, u64, u64), SqlError> {
        self.transaction(|database| {
            let mut batch = rusqlite::Batch::new(&database.conn, sql);
            let (mut count, mut read, mut written) = (0, 0, 0);
            loop {
                {
                    let mut guard = database.guard();
                    guard.in_ddl = false;
                    guard.ddl_selects = false;
                }
                let next = {
                    use rusqlite::fallible_iterator::FallibleIterator;
                    batch.next()
                };
                let mut statement = match next {
                    Ok(Some(statement)) => statement,
                    Ok(None) => return Ok((count, read, written)),
                    Err(error) => return Err(database.error(error)),
                };
                database.check_statement(&statement)?;
                let meta = database.run(&mut statement, &[])?.meta;
                count += 1;
                read += meta.rows_read;
                written += meta.rows_written;
            }
        })
    }

    fn transaction<T>(&mut self, body: impl FnOnce(&Database) -> Result<T, SqlError>) -> Result<T, SqlError> {
        self.transaction_as(false, body)
    }

    fn transaction_as<T>(
        &mut self,
        read_only: bool,
        body: impl FnOnce(&Database) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        {
            let mut guard = self.guard();
            guard.refused = None;
            guard.schema_changed = false;
            guard.altered = false;
            guard.created.clear();
        }
        let begin = if read_only { "BEGIN DEFERRED" } else { "BEGIN IMMEDIATE" };
        self.platform(|conn| conn.execute_batch(begin)).map_err(|error| self.error(error))?;
        let tier = self.guard().tier;
        if tier == SqlTier::Schema
            && let Err(error) = self.load_others()
        {
            let _ = self.platform(|conn| conn.execute_batch("ROLLBACK"));
            return Err(self.error(error));
        }
        let outcome = body(self).and_then(|value| {
            let schema_changed = self.guard().schema_changed;
            if schema_changed && tier == SqlTier::Schema {
                self.claim_new_objects().map_err(|error| self.error(error))?;
                self.check_foreign_keys()?;
                self.check_views()?;
            }
            Ok(value)
        });
        let ended = match &outcome {
            Ok(_) => self.platform(|conn| conn.execute_batch("COMMIT")),
            // Some failures (a full disk, an interrupt) end the transaction themselves.
            Err(_) if self.conn.is_autocommit() => Ok(()),
            Err(_) => self.platform(|conn| conn.execute_batch("ROLLBACK")),
        };
        if let Err(error) = ended {
            // A commit that failed leaves nothing half-written: roll back what is left.
            if !self.conn.is_autocommit() {
                let _ = self.platform(|conn| conn.execute_batch("ROLLBACK"));
            }
            return Err(self.error(error));
        }
        if outcome.is_err() && tier == SqlTier::Schema {
            // What the rolled-back call created is not the app's after all.
            self.load_owned().map_err(|error| self.error(error))?;
        }
        outcome
    }

    fn prepare(&self, sql: &str) -> Result<rusqlite::CachedStatement<'_>, SqlError> {
        {
            let mut guard = self.guard();
            guard.in_ddl = false;
            guard.ddl_selects = false;
        }
        let statement = self.conn.prepare_cached(sql).map_err(|error| match error {
            rusqlite::Error::MultipleStatement => {
                SqlError("D1_ERROR: prepare() takes one SQL statement; use batch() or exec() for several".to_owned())
            }
            other => self.error(other),
        })?;
        self.check_statement(&statement)?;
        Ok(statement)
    }

    /// What the authorizer cannot see: VACUUM (its INTO form writes a file anywhere), and under
    /// `schema` an fts5 table whose content is another table (which it would read for the app).
    fn check_statement(&self, statement: &Statement<'_>) -> Result<(), SqlError> {
        let sql = statement.expanded_sql().unwrap_or_default();
        let tier = self.guard().tier;
        if tier == SqlTier::Schema && crate::authorizer::names_external_content(&sql) {
            return Err(SqlError(
                "D1_ERROR: under isolation: schema an fts5 table keeps its own content; leave out content= (or use content=''): SQLITE_AUTH"
                    .to_owned(),
            ));
        }
        let keyword = first_keyword(&sql);
        match keyword.as_str() {
            "VACUUM" => Err(SqlError(
                "D1_ERROR: VACUUM is not allowed; the platform compacts databases: SQLITE_AUTH".to_owned(),
            )),
            "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" => {
                Err(SqlError(format!("D1_ERROR: {TRANSACTION_REFUSED}: SQLITE_AUTH")))
            }
            _ => Ok(()),
        }
    }

    fn run(&self, statement: &mut Statement<'_>, params: &[SqlValue]) -> Result<SqlResult, SqlError> {
        let started = Instant::now();
        let expected = statement.parameter_count();
        if params.len() != expected {
            return Err(SqlError(format!(
                "D1_ERROR: Wrong number of parameter bindings for SQL query: the statement has {expected}, {} were bound",
                params.len()
            )));
        }
        for (index, param) in params.iter().enumerate() {
            let value = match param {
                SqlValue::Null => Value::Null,
                SqlValue::Integer(number) => Value::Integer(*number),
                SqlValue::Real(number) => Value::Real(*number),
                SqlValue::Text(text) => Value::Text(text.clone()),
                SqlValue::Blob(bytes) => Value::Blob(bytes.to_vec()),
            };
            statement.raw_bind_parameter(index + 1, value).map_err(|error| self.error(error))?;
        }
        let readonly = statement.readonly();
        let columns: Vec<String> = statement.column_names().into_iter().map(str::to_owned).collect();
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = Some(started + self.limits.statement_time);
        let rows = self.collect_rows(statement, columns.len());
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let rows = rows?;
        let changes = if readonly { 0 } else { self.conn.changes() };
        let scanned = u64::try_from(statement.get_status(StatementStatus::FullscanStep)).unwrap_or(0);
        let meta = SqlMeta {
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            changes,
            last_row_id: self.conn.last_insert_rowid(),
            changed_db: !readonly,
            size_after: self.size().unwrap_or(0),
            rows_read: scanned.max(rows.len() as u64),
            rows_written: changes,
        };
        Ok(SqlResult { columns, rows, meta })
    }

    fn collect_rows(&self, statement: &mut Statement<'_>, width: usize) -> Result<Vec<Vec<SqlValue>>, SqlError> {
        let mut rows = Vec::new();
        let mut bytes = 0u64;
        let mut cursor = statement.raw_query();
        while let Some(row) = cursor.next().map_err(|error| self.error(error))? {
            if rows.len() as u64 >= self.limits.result_rows {
                return Err(SqlError(format!(
                    "D1_ERROR: the query returns more than {} rows ([data.sql] max_result_rows); add a LIMIT or a WHERE: SQLITE_TOOBIG",
                    self.limits.result_rows
                )));
            }
            let mut values = Vec::with_capacity(width);
            for index in 0..width {
                let value = match row.get_ref(index).map_err(|error| self.error(error))? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(number) => SqlValue::Integer(number),
                    ValueRef::Real(number) => SqlValue::Real(number),
                    ValueRef::Text(text) => {
                        bytes += text.len() as u64;
                        SqlValue::Text(String::from_utf8_lossy(text).into_owned())
                    }
                    ValueRef::Blob(blob) => {
                        bytes += blob.len() as u64;
                        SqlValue::Blob(bytes::Bytes::copy_from_slice(blob))
                    }
                };
                values.push(value);
            }
            bytes += 8 * width as u64;
            if bytes > self.limits.result_bytes {
                return Err(SqlError(format!(
                    "D1_ERROR: the query returns more than {} bytes ([data.sql] max_result_bytes); select fewer rows or columns: SQLITE_TOOBIG",
                    self.limits.result_bytes
                )));
            }
            rows.push(values);
        }
        Ok(rows)
    }

    /// The database file's size in bytes.
    pub fn size(&self) -> rusqlite::Result<u64> {
        self.platform(|conn| {
            let pages: i64 = conn.pragma_query_value(None, "page_count", |row| row.get(0))?;
            let size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
            Ok(u64::try_from(pages * size).unwrap_or(0))
        })
    }

    /// The file this connection reaches.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses (or again allows) the app's writes: while its data moves to another tier, the
    /// app keeps reading.
    pub fn set_read_only(&self, read_only: bool) -> rusqlite::Result<()> {
        self.platform(|conn| conn.pragma_update(None, "query_only", read_only))?;
        self.moving.store(read_only, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The file's size, and the app's tables (under `schema`, those it created) with their rows.
    pub fn usage(&self) -> Result<(u64, Vec<TableUsage>), SqlAdminError> {
        let bytes = self.size()?;
        let only = self.only_owned();
        let tables = self.platform(|conn| {
            let mut tables = Vec::new();
            for object in copy::objects(conn, "main")? {
                if object.kind != "table"
                    || only.as_ref().is_some_and(|only| !only.contains(&object.name.to_ascii_lowercase()))
                {
                    continue;
                }
                let name = object.name.replace('"', "\"\"");
                let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{name}\""), [], |row| row.get(0))?;
                tables.push(TableUsage { name: object.name, rows: u64::try_from(rows).unwrap_or(0) });
            }
            Ok(tables)
        })?;
        Ok((bytes, tables))
    }

    /// Under `schema`, the names the app created; elsewhere every object is the tenant's.
    pub fn only_owned(&self) -> Option<HashSet<String>> {
        let guard = self.guard();
        (guard.tier == SqlTier::Schema).then(|| guard.owned.clone())
    }

    /// Writes the app's objects and rows into a new database file at `target`.
    pub fn export_to(&self, target: &Path) -> Result<(), SqlAdminError> {
        let only = self.only_owned();
        let conn = Connection::open_with_flags(
            target,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        harden(&conn)?;
        // The export is in clear (the builder's copy); its source may be encrypted.
        let key = self.key.as_ref().map_or("", |key| key.as_str());
        conn.execute("ATTACH DATABASE ?1 AS src KEY ?2", [self.path.to_string_lossy().as_ref(), key])?;
        conn.execute_batch("BEGIN")?;
        copy::copy_objects(&conn, only.as_ref(), &|sql| conn.execute_batch(sql), false)?;
        conn.execute_batch("COMMIT; DETACH DATABASE src")?;
        Ok(())
    }

    /// Copies the objects and rows of the database file at `source` into the app's, in one
    /// transaction; answers the tables copied.
    pub fn import_from(&self, source: &Path) -> Result<Vec<String>, SqlAdminError> {
        self.copy_from(source, None, None, false)
    }

    /// The file's key as SQLCipher's key text, when it is encrypted.
    pub fn key_text(&self) -> Option<&str> {
        self.key.as_ref().map(|key| key.as_str())
    }

    /// Runs app SQL (an imported object's definition) under the app's guard, from inside the
    /// platform's own work.
    fn as_app<T>(&self, run: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        {
            let mut guard = self.guard();
            guard.platform = false;
            guard.in_ddl = false;
            guard.ddl_selects = false;
        }
        let result = run(&self.conn);
        self.guard().platform = true;
        result
    }

    /// Copies objects of the database file at `source` (all, or those named in `only`) into the
    /// app's, in one transaction, each definition checked and made as the app; with `verify`,
    /// every copied table's rows are compared by checksum with the source's before the commit,
    /// and a difference rolls the copy back.
    pub fn copy_from(
        &self,
        source: &Path,
        source_key: Option<&str>,
        only: Option<&HashSet<String>>,
        verify: bool,
    ) -> Result<Vec<String>, SqlAdminError> {
        {
            let mut guard = self.guard();
            guard.refused = None;
            guard.schema_changed = false;
            guard.altered = false;
            guard.created.clear();
        }
        let schema_tier = self.guard().tier == SqlTier::Schema;
        let result = self.platform(|conn| {
            conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 1)?;
            // A source in clear (an import, a namespace's file) gets an empty key, or SQLCipher
            // would read it with this database's key; an encrypted one (a move out of a file
            // encrypted earlier) its own.
            conn.execute(
                "ATTACH DATABASE ?1 AS src KEY ?2",
                [source.to_string_lossy().as_ref(), source_key.unwrap_or("")],
            )?;
            conn.execute_batch("BEGIN IMMEDIATE")?;
            Ok(())
        });
        if let Err(error) = result {
            let _ = self.platform(|conn| conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0));
            return Err(error.into());
        }
        let copied = (|| -> Result<Vec<String>, SqlAdminError> {
            if schema_tier {
                self.load_others()?;
            }
            let create = |sql: &str| self.as_app(|conn| conn.execute_batch(sql));
            let tables = self.platform(|conn| Ok(copy::copy_objects(conn, only, &create, true)))??;
            if verify {
                self.platform(|conn| copy::verify_copies(conn, &tables))??;
            }
            if schema_tier {
                self.claim_new_objects()?;
            }
            Ok(tables)
        })();
        let end = if copied.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = self.platform(|conn| {
            if !conn.is_autocommit() {
                conn.execute_batch(end)?;
            }
            conn.execute_batch("DETACH DATABASE src")?;
            conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
            Ok(())
        });
        if copied.is_err() && schema_tier {
            self.load_owned()?;
        }
        let tables = copied?;
        ended?;
        Ok(tables)
    }

    /// Under `schema`, reads again which objects are the app's (before a move copies them).
    pub fn refresh_owned(&self) -> rusqlite::Result<()> {
        let tier = self.guard().tier;
        match tier {
            SqlTier::Schema => self.load_owned(),
            _ => Ok(()),
        }
    }

    /// Under `isolation: schema`, reads which objects are this app's.
    fn load_owned(&self) -> rusqlite::Result<()> {
        let owned = self.platform(|conn| {
            let mut statement = conn.prepare("SELECT name FROM _terrarium_owners WHERE app = ?1")?;
            statement.query_map([&self.app], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()
        })?;
        self.guard().owned = owned;
        Ok(())
    }

    /// Under `isolation: schema`, inside the call's transaction: the names other apps own.
    fn load_others(&self) -> rusqlite::Result<()> {
        let others = self.platform(|conn| {
            // Never the statement cache: an app sending the same text must not get this statement.
            let mut statement = conn.prepare("SELECT name FROM _terrarium_owners WHERE app <> ?1")?;
            statement.query_map([&self.app], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()
        })?;
        self.guard().others = others;
        Ok(())
    }

    /// Under `schema`, a table of the app's may not reference another app's table: the
    /// reference would let it refuse the neighbour's deletes (the neighbour's rows would be
    /// "in use"). Checked after the call's DDL, before its commit.
    fn check_foreign_keys(&self) -> Result<(), SqlError> {
        let owned: Vec<String> = self.guard().owned.iter().cloned().collect();
        let others = self.guard().others.clone();
        for table in owned {
            let parents: Vec<String> = self
                .platform(|conn| {
                    conn.prepare("SELECT DISTINCT lower(\"table\") FROM pragma_foreign_key_list(?1)")?
                        .query_map([&table], |row| row.get::<_, String>(0))?
                        .collect::<rusqlite::Result<_>>()
                })
                .map_err(|error| self.error(error))?;
            if let Some(parent) = parents.iter().find(|parent| others.contains(*parent)) {
                return Err(SqlError(format!(
                    "D1_ERROR: {table} references {parent}, which belongs to another app of this namespace; under isolation: schema a foreign key names only the app's own tables: SQLITE_AUTH"
                )));
            }
        }
        Ok(())
    }

    /// Under `schema`, after a call's DDL: every view of the app still reads what it names. A
    /// view left over a dropped table would make every `ALTER TABLE ... RENAME` in the
    /// namespace's file fail, its neighbours' included, so the call is refused instead.
    fn check_views(&self) -> Result<(), SqlError> {
        let owned: Vec<String> = self.guard().owned.iter().cloned().collect();
        let views: Vec<String> = self
            .platform(|conn| {
                conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'view'")?
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(|error| self.error(error))?;
        for view in views.iter().filter(|view| owned.contains(&view.to_ascii_lowercase())) {
            let quoted = view.replace('"', "\"\"");
            if let Err(error) =
                self.platform(|conn| conn.prepare(&format!("SELECT * FROM \"{quoted}\" LIMIT 0")).map(drop))
            {
                let reason = match &error {
                    rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
                    other => other.to_string(),
                };
                return Err(SqlError(format!(
                    "D1_ERROR: this would leave the view {view} reading what is gone ({reason}); drop or change the view first: SQLITE_CONSTRAINT"
                )));
            }
        }
        Ok(())
    }

    /// Inside the call's transaction (which holds the file's write lock): what this call created
    /// becomes the app's (with the shadow tables of its virtual tables, and, after an `ALTER
    /// TABLE`, the renamed table); owned names that are gone are forgotten.
    fn claim_new_objects(&self) -> rusqlite::Result<()> {
        let (created, altered) = {
            let guard = self.guard();
            (serde_json::to_string(&guard.created.iter().collect::<Vec<_>>()).unwrap_or_default(), guard.altered)
        };
        self.platform(|conn| {
            conn.execute(
                "INSERT INTO _terrarium_owners (name, app) SELECT lower(s.name), ?1 FROM sqlite_schema s \
                 WHERE s.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND lower(s.name) <> '_terrarium_owners' \
                   AND lower(s.name) NOT IN (SELECT name FROM _terrarium_owners) \
                   AND (lower(s.name) IN (SELECT value FROM json_each(?2)) \
                        OR ?3 AND s.type = 'table' \
                        OR (s.name IN (SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow') \
                            AND EXISTS (SELECT 1 FROM json_each(?2) c WHERE lower(s.name) LIKE c.value || '\\_%' ESCAPE '\\')))",
                rusqlite::params![&self.app, &created, altered],
            )?;
            conn.execute("DELETE FROM _terrarium_owners WHERE name NOT IN (SELECT lower(name) FROM sqlite_schema)", [])?;
            Ok(())
        })?;
        self.load_owned()
    }

    /// A SQLite failure in D1's words, with the guard's reason for a refusal.
    fn error(&self, error: rusqlite::Error) -> SqlError {
        let refused = self.guard().refused.take();
        let (code, message) = match &error {
            rusqlite::Error::SqliteFailure(failure, message) => {
                (failure.code, message.clone().unwrap_or_else(|| failure.to_string()))
            }
            other => (rusqlite::ErrorCode::Unknown, other.to_string()),
        };
        let message = match (code, refused) {
            (rusqlite::ErrorCode::AuthorizationForStatementDenied, Some(reason)) => reason,
            (rusqlite::ErrorCode::OperationInterrupted, _) => format!(
                "the statement ran longer than {} ms ([data.sql] max_statement_ms) and was stopped",
                self.limits.statement_time.as_millis()
            ),
            (rusqlite::ErrorCode::DiskFull, _) => {
                format!("the database is full: it may hold {} MiB (spec.quotas.sqlStorageMiB)", self.max_mib)
            }
            (_, _) => message,
        };
        SqlError(format!("D1_ERROR: {message}: {}", code_name(code)))
    }
}

/// What every connection to an app's data runs with: defensive mode (no writable schema, no
/// raw page access) and an untrusted schema (functions with side effects are not run from
/// views, triggers, defaults or CHECKs), so a crafted database file or schema cannot reach out.
/// A raw 256-bit key as SQLCipher's key text: `x'<64 hex digits>'` (no key derivation).
fn key_text(key: &[u8; 32]) -> zeroize::Zeroizing<String> {
    let mut text = zeroize::Zeroizing::new(String::with_capacity(67));
    text.push_str("x'");
    for byte in key {
        text.push_str(&format!("{byte:02x}"));
    }
    text.push('\'');
    text
}

/// A database file in clear starts with SQLite's header; an encrypted one with random bytes.
const CLEAR_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether `path` holds a database in clear (not missing, not empty, not encrypted).
pub(crate) fn is_clear_database(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 16];
    std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut header)).is_ok() && &header == CLEAR_HEADER
}

/// Whether `path` holds an encrypted database (a file that is not empty and not in clear).
pub(crate) fn is_encrypted_database(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|metadata| metadata.len() > 0) && !is_clear_database(path)
}

/// Encrypts a database file in clear where it lies: exported whole into an encrypted copy
/// beside it (SQLCipher's `sqlcipher_export`), which then takes its place. A crash before the
/// rename leaves the file in clear (and a stray copy, replaced next time); after it, encrypted.
fn encrypt_in_place(path: &Path, key: &str) -> rusqlite::Result<()> {
    let staging = path.with_extension("sqlite-encrypting");
    let _ = std::fs::remove_file(&staging);
    // CREATE: the attached copy is a new file, and ATTACH opens it with these flags.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let clear = Connection::open_with_flags(path, flags)?;
    clear.busy_timeout(std::time::Duration::from_secs(5))?;
    // Every committed frame must be in the main file before its journal goes: no other
    // connection is open (they were closed for good), so the checkpoint completes.
    let (busy, frames, checkpointed): (i64, i64, i64) =
        clear.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    if busy != 0 || frames != checkpointed {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("the database is in use; it is encrypted at the next call".to_owned()),
        ));
    }
    clear.execute("ATTACH DATABASE ?1 AS encrypted KEY ?2", [staging.to_string_lossy().as_ref(), key])?;
    clear.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
    clear.execute_batch("DETACH DATABASE encrypted")?;
    clear.close().map_err(|(_, error)| error)?;
    let io = |error: std::io::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(error));
    std::fs::File::open(&staging).and_then(|file| file.sync_all()).map_err(io)?;
    // The old file's journal is spent (checkpointed, closed): it must not meet the new file.
    for suffix in ["-wal", "-shm"] {
        match std::fs::remove_file(format!("{}{suffix}", path.display())) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(io(error)),
            _ => {}
        }
    }
    std::fs::rename(&staging, path).map_err(io)?;
    if let Some(folder) = path.parent() {
        std::fs::File::open(folder).and_then(|folder| folder.sync_all()).map_err(io)?;
    }
    Ok(())
}

pub(crate) fn harden(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::config::DbConfig;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    Ok(())
}

/// SQLite's name for a primary result code, as D1 appends it.
fn code_name(code: rusqlite::ErrorCode) -> &'static str {
    use rusqlite::ErrorCode as Code;
    match code {
        Code::ConstraintViolation => "SQLITE_CONSTRAINT",
        Code::AuthorizationForStatementDenied => "SQLITE_AUTH",
        Code::OperationInterrupted => "SQLITE_INTERRUPT",
        Code::DiskFull => "SQLITE_FULL",
        Code::TooBig => "SQLITE_TOOBIG",
        Code::ParameterOutOfRange => "SQLITE_RANGE",
        Code::TypeMismatch => "SQLITE_MISMATCH",
        Code::DatabaseBusy => "SQLITE_BUSY",
        Code::DatabaseLocked => "SQLITE_LOCKED",
        Code::ReadOnly => "SQLITE_READONLY",
        Code::OutOfMemory => "SQLITE_NOMEM",
        Code::SchemaChanged => "SQLITE_SCHEMA",
        Code::DatabaseCorrupt => "SQLITE_CORRUPT",
        Code::SystemIoFailure => "SQLITE_IOERR",
        _ => "SQLITE_ERROR",
    }
}
