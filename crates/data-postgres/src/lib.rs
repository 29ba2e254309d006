//! Apps' SQL databases on PostgreSQL, for `[data] backend = "postgres"`: the D1 API of
//! `capability-sql` (its [`SqlService`] and [`SqlHost`]) with every tenant walled off by
//! PostgreSQL's own privileges.
//!
//! Each tenant is a login role of its own, and an app's connection logs in as that role, never as
//! one that can see another tenant:
//!
//! | tier       | where the data is                                  | role            |
//! |------------|----------------------------------------------------|-----------------|
//! | `isolated` | a database of the app's own, owned by its role      | one per app     |
//! | `schema`   | a schema of the app's own in the apps' database      | one per app     |
//! | `shared`   | a schema of the namespace's in the apps' database    | one per namespace |
//!
//! The apps' database (`<database>_apps`) and every isolated one are closed to `PUBLIC`; a role
//! may connect to its own database only, owns only its own schema, and its `search_path` is
//! pinned to it. App SQL is SQLite's dialect, translated ([`translate`]) and checked before it
//! reaches the server: another schema, the catalogs, `SET`, `RESET` and unknown functions are
//! refused there too, so the walls are two.
//!
//! Apps labelled confidential or restricted keep their SQL in the embedded backend's encrypted
//! SQLite files (PostgreSQL has no encryption at rest the platform could key per namespace): the
//! `sealed` service, to which their calls are routed.

mod admin;
mod copy;
pub mod translate;
mod values;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use capability_sql::config::Limits;
use capability_sql::{DatabaseKeys, SqlAdminError, SqlService, SqlUsage, TableUsage};
use deployment::{AppKey, SqlDatabase, SqlTier};
use futures::future::BoxFuture;
use runtime::DataMeter;
use runtime::sql::{SqlAnswer, SqlError, SqlHost, SqlMeta, SqlOp, SqlResult, SqlStatement, SqlValue};
use sha2::Digest;
use tokio_postgres::NoTls;

use crate::translate::Translated;
use crate::values::{Param, Raw};

/// One tenant's place on the server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Tenant {
    /// The namespace whose data key derives the role's password.
    namespace: String,
    /// The role, and the name of its schema (and, when isolated, its database).
    role: String,
    database: String,
    schema: String,
    tier: SqlTier,
    /// Whose it is, for the role's comment: `NS/APP`, or `NS` under `shared`.
    owner: String,
}

/// An open connection as a tenant, with the statements prepared on it.
struct Conn {
    client: tokio_postgres::Client,
    prepared: HashMap<String, tokio_postgres::Statement>,
    /// Identity columns of the tenant's tables, by table (for `last_row_id`).
    identity: HashMap<String, String>,
    /// A transaction began and has not ended: the call that began it was dropped midway (its
    /// caller went away). The next user rolls it back first, never commits its half.
    dirty: bool,
}

impl Conn {
    fn new(client: tokio_postgres::Client) -> Conn {
        Conn { client, prepared: HashMap::new(), identity: HashMap::new(), dirty: false }
    }

    /// Forgets what was prepared or learnt against the tables, which may have changed.
    fn forget_plans(&mut self) {
        self.prepared.clear();
        self.identity.clear();
    }

    /// Rolls back what a dropped call left open.
    async fn settle(&mut self) -> Result<(), tokio_postgres::Error> {
        if self.dirty {
            self.forget_plans();
            self.client.batch_execute("ROLLBACK").await?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// How many locks tenants' connections are made under: one tenant's slow connect never holds
/// up the others'.
const CONNECTING_STRIPES: usize = 32;

/// How long a connection to PostgreSQL may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

type Shared<T> = Arc<tokio::sync::Mutex<T>>;

/// The SQL service on PostgreSQL.
#[derive(Clone)]
pub struct PgSql(Arc<Inner>);

struct Inner {
    admin: tokio_postgres::Config,
    /// The database of the `schema` and `shared` tiers.
    apps_database: String,
    limits: Limits,
    apps: Mutex<HashMap<AppKey, SqlDatabase>>,
    /// Open connections by role; the least recently used close first.
    open: moka::sync::Cache<String, Shared<Conn>>,
    /// Held while a tenant is created, connected or dropped: once at a time per tenant (a
    /// lock per stripe of roles).
    connecting: Vec<tokio::sync::Mutex<()>>,
    /// Tenants created (or found) since the process started.
    ready: Mutex<std::collections::HashSet<String>>,
    meter: Arc<dyn DataMeter>,
    keys: Arc<dyn DatabaseKeys>,
    /// The embedded service, for the apps whose data must be encrypted at rest.
    sealed: Arc<dyn SqlService>,
    /// Apps whose calls go to `sealed`.
    routed: Mutex<std::collections::HashSet<AppKey>>,
    /// Where each app's own data is (`isolated`, `schema`), from the tenants' roles.
    existing: Mutex<HashMap<AppKey, SqlTier>>,
    /// Apps whose data `migrate` moved (to, from): calls of every revision follow it (also in
    /// the table `terrarium_sql_moves`, for restarts and other replicas).
    moved: Mutex<HashMap<AppKey, (SqlTier, SqlTier)>>,
    /// Apps whose data is moving now: their writes wait for the switch (they are refused with
    /// "try again"), their reads go on.
    moving: Mutex<std::collections::HashSet<AppKey>>,
    /// Scratch files of exports and imports.
    scratch: std::path::PathBuf,
}

impl PgSql {
    /// Checks the URL and that the server takes the role's connection; creates the apps'
    /// database when missing. The error names what to fix, never the password.
    pub async fn connect(
        url: &str,
        section: &capability_sql::config::SqlSection,
        data_dir: &std::path::Path,
        meter: Arc<dyn DataMeter>,
        keys: Arc<dyn DatabaseKeys>,
        sealed: Arc<dyn SqlService>,
    ) -> Result<PgSql, String> {
        let mut admin: tokio_postgres::Config =
            url.parse().map_err(|error| format!("the PostgreSQL URL is not valid: {error}"))?;
        if admin.get_connect_timeout().is_none() {
            admin.connect_timeout(CONNECT_TIMEOUT);
        }
        if admin.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(
                "the PostgreSQL URL asks for sslmode=require, which apps' SQL does not speak yet; reach the server \
                 over a Unix socket or a private network"
                    .to_owned(),
            );
        }
        let database = admin.get_dbname().map(str::to_owned).or_else(|| admin.get_user().map(str::to_owned));
        let Some(database) = database else {
            return Err("the PostgreSQL URL names no database; add one (postgres://user@host/database)".to_owned());
        };
        let (limits, scratch) = section.build(data_dir);
        let sql = Arc::new(Inner {
            admin,
            apps_database: format!("{database}_apps"),
            limits,
            apps: Mutex::new(HashMap::new()),
            open: moka::sync::Cache::builder().max_capacity(section.max_open_databases.max(1)).build(),
            connecting: (0..CONNECTING_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            ready: Mutex::new(std::collections::HashSet::new()),
            meter,
            keys,
            sealed,
            routed: Mutex::new(std::collections::HashSet::new()),
            existing: Mutex::new(HashMap::new()),
            moved: Mutex::new(HashMap::new()),
            moving: Mutex::new(std::collections::HashSet::new()),
            scratch,
        });
        admin::prepare_apps_database(&sql.admin, &sql.apps_database).await?;
        let (existing, moved) = admin::load_state(&sql.admin, &sql.apps_database).await?;
        *sql.existing.lock().unwrap_or_else(PoisonError::into_inner) = existing;
        *sql.moved.lock().unwrap_or_else(PoisonError::into_inner) = moved;
        Ok(PgSql(sql))
    }
}

impl Inner {
    /// The tenant of `app` under `tier`. Roles and databases are the cluster's, not one
    /// database's: the names carry this installation's database too, so two installations (or
    /// test servers) on one cluster never meet.
    fn tenant(&self, app: &AppKey, tier: SqlTier) -> Tenant {
        let installation = &self.apps_database;
        let (prefix, owner) = match tier {
            SqlTier::Isolated => ("t_iso_", format!("{installation}\0isolated\0{}\0{}", app.namespace, app.name)),
            SqlTier::Schema => ("t_sch_", format!("{installation}\0schema\0{}\0{}", app.namespace, app.name)),
            SqlTier::Shared => ("t_shr_", format!("{installation}\0shared\0{}", app.namespace)),
        };
        let digest = sha2::Sha256::digest(owner.as_bytes());
        let hex: String = digest.iter().take(12).map(|byte| format!("{byte:02x}")).collect();
        let role = format!("{prefix}{hex}");
        let (database, schema) = match tier {
            SqlTier::Isolated => (role.clone(), "public".to_owned()),
            _ => (self.apps_database.clone(), role.clone()),
        };
        let owner = match tier {
            SqlTier::Shared => app.namespace.clone(),
            _ => format!("{}/{}", app.namespace, app.name),
        };
        Tenant { namespace: app.namespace.clone(), role, database, schema, tier, owner }
    }

    fn is_sealed(&self, app: &AppKey) -> bool {
        self.routed.lock().unwrap_or_else(PoisonError::into_inner).contains(app)
    }

    /// The tier an app's calls go to now: where `migrate` moved its data, else its manifest's.
    fn effective_tier(&self, app: &AppKey, declared: SqlTier) -> SqlTier {
        self.moved.lock().unwrap_or_else(PoisonError::into_inner).get(app).map_or(declared, |(target, _)| *target)
    }

    fn left_behind(app: &AppKey, declared: SqlTier, actual: SqlTier) -> String {
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

    /// The tenant's role's password: derived from its namespace's data key, never stored.
    async fn password(&self, tenant: &Tenant) -> Result<String, String> {
        let key = self.keys.key(&tenant.namespace, &format!("sql postgres {}", tenant.role)).await?;
        Ok(key.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    /// The lock under which `role` is created, connected or dropped.
    async fn connecting(&self, role: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        role.hash(&mut hasher);
        self.connecting[hasher.finish() as usize % self.connecting.len()].lock().await
    }

    /// A connection as the tenant, creating the tenant first when this process has not.
    async fn connection(&self, tenant: &Tenant) -> Result<Shared<Conn>, String> {
        if let Some(conn) = self.open.get(&tenant.role) {
            return Ok(conn);
        }
        let _connecting = self.connecting(&tenant.role).await;
        if let Some(conn) = self.open.get(&tenant.role) {
            return Ok(conn);
        }
        let password = self.password(tenant).await?;
        let created = self.ready.lock().unwrap_or_else(PoisonError::into_inner).contains(&tenant.role);
        if !created {
            admin::create_tenant(&self.admin, &self.apps_database, tenant, &password).await?;
            self.ready.lock().unwrap_or_else(PoisonError::into_inner).insert(tenant.role.clone());
            if let (SqlTier::Isolated | SqlTier::Schema, Some((namespace, name))) =
                (tenant.tier, tenant.owner.split_once('/'))
            {
                self.existing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(AppKey::new(namespace, name), tenant.tier);
            }
        }
        let mut config = self.admin.clone();
        config.user(&tenant.role).password(&password).dbname(&tenant.database).application_name("terrarium-app");
        let (client, connection) = config.connect(NoTls).await.map_err(|error| admin::describe(&error))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .batch_execute(&format!(
                "SET search_path TO {schema}; SET statement_timeout TO {ms}; SET lock_timeout TO {ms}; \
                 SET idle_in_transaction_session_timeout TO 60000",
                schema = tenant.schema,
                ms = self.limits.statement_time.as_millis().max(1)
            ))
            .await
            .map_err(|error| admin::describe(&error))?;
        let conn = Arc::new(tokio::sync::Mutex::new(Conn::new(client)));
        self.open.insert(tenant.role.clone(), conn.clone());
        Ok(conn)
    }

    /// The tenant's connection, or D1's words for why there is none (the cause goes to the log).
    async fn app_connection(&self, app: &AppKey, tenant: &Tenant) -> Result<Shared<Conn>, SqlError> {
        self.connection(tenant).await.map_err(|error| {
            tracing::error!(namespace = %app.namespace, app = %app.name, %error, "the app's SQL database could not be opened");
            SqlError("D1_ERROR: the database could not be opened: SQLITE_CANTOPEN".to_owned())
        })
    }

    fn deployed(&self, app: &AppKey) -> Result<SqlDatabase, SqlAdminError> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner).get(app).cloned().ok_or_else(|| {
            SqlAdminError::Invalid(format!(
                "{}/{} has no SQL database: its manifest has no spec.data.sql",
                app.namespace, app.name
            ))
        })
    }

    async fn call(&self, app: &AppKey, declared: SqlTier, max_mib: u32, op: SqlOp) -> Result<SqlAnswer, SqlError> {
        let tier = self.effective_tier(app, declared);
        let tenant = self.tenant(app, tier);
        let conn = self.app_connection(app, &tenant).await?;
        let mut conn = conn.lock().await;
        conn.settle().await.map_err(|error| self.error(&error))?;
        // The data moved since this call looked, or is moving: never write to the copy being
        // left behind.
        let moving = self.moving.lock().unwrap_or_else(PoisonError::into_inner).contains(app);
        let writes = moving
            && match &op {
                SqlOp::Batch(statements) => statements.iter().any(|statement| {
                    translate::translate(&statement.sql).map_or(true, |translated| translated.iter().any(|t| t.writes))
                }),
                SqlOp::Exec(_) => true,
            };
        if self.effective_tier(app, declared) != tier || writes {
            return Err(SqlError(
                "D1_ERROR: the database is moving to another tier; try again in a moment: SQLITE_BUSY".to_owned(),
            ));
        }
        let tenant = &tenant;
        let answer = match op {
            SqlOp::Batch(statements) => self.batch(&mut conn, &statements, max_mib).await.map(SqlAnswer::Results),
            SqlOp::Exec(text) => {
                let started = Instant::now();
                self.check_size(&text)?;
                let statements = translate::translate(&text).map_err(|refused| SqlError(refused.0))?;
                let results =
                    self.run_translated(&mut conn, statements.into_iter().map(|t| (t, Vec::new())), max_mib).await;
                results.map(|results| SqlAnswer::Executed {
                    count: results.len() as u64,
                    duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                    rows_read: results.iter().map(|result| result.meta.rows_read).sum(),
                    rows_written: results.iter().map(|result| result.meta.rows_written).sum(),
                })
            }
        };
        if conn.client.is_closed() {
            self.open.invalidate(&tenant.role);
        }
        answer
    }

    fn check_size(&self, sql: &str) -> Result<(), SqlError> {
        if sql.len() > self.limits.statement_bytes as usize {
            return Err(SqlError(format!(
                "D1_ERROR: the statement is longer than {} bytes ([data.sql] max_statement_bytes): SQLITE_TOOBIG",
                self.limits.statement_bytes
            )));
        }
        Ok(())
    }

    async fn batch(
        &self,
        conn: &mut Conn,
        statements: &[SqlStatement],
        max_mib: u32,
    ) -> Result<Vec<SqlResult>, SqlError> {
        let mut work = Vec::with_capacity(statements.len());
        for statement in statements {
            self.check_size(&statement.sql)?;
            let mut translated = translate::translate(&statement.sql).map_err(|refused| SqlError(refused.0))?;
            if translated.len() > 1 {
                return Err(SqlError(
                    "D1_ERROR: prepare() takes one SQL statement; use batch() or exec() for several".to_owned(),
                ));
            }
            let Some(translated) = translated.pop() else {
                return Err(SqlError("D1_ERROR: the statement is empty: SQLITE_MISUSE".to_owned()));
            };
            if statement.params.len() != translated.parameters {
                return Err(SqlError(format!(
                    "D1_ERROR: Wrong number of parameter bindings for SQL query: the statement has {}, {} were bound",
                    translated.parameters,
                    statement.params.len()
                )));
            }
            if statement.params.len() > self.limits.bound_parameters as usize {
                return Err(SqlError(format!(
                    "D1_ERROR: too many SQL variables (at most {}, [data.sql] max_bound_parameters): SQLITE_ERROR",
                    self.limits.bound_parameters
                )));
            }
            for param in &statement.params {
                let size = match param {
                    SqlValue::Text(text) => text.len(),
                    SqlValue::Blob(bytes) => bytes.len(),
                    _ => 0,
                };
                if size > self.limits.value_bytes as usize {
                    return Err(SqlError("D1_ERROR: string or blob too big: SQLITE_TOOBIG".to_owned()));
                }
            }
            work.push((translated, statement.params.clone()));
        }
        self.run_translated(conn, work.into_iter(), max_mib).await
    }

    /// Runs the statements in one transaction, rolled back whole when one fails or the
    /// database would outgrow its quota.
    async fn run_translated(
        &self,
        conn: &mut Conn,
        statements: impl Iterator<Item = (Translated, Vec<SqlValue>)>,
        max_mib: u32,
    ) -> Result<Vec<SqlResult>, SqlError> {
        let statements: Vec<_> = statements.collect();
        if statements.iter().any(|(translated, _)| translated.changes_schema) {
            // Plans prepared before a table changes shape would be stale within the batch.
            conn.forget_plans();
        }
        conn.dirty = true;
        conn.client.batch_execute("BEGIN").await.map_err(|error| self.error(&error))?;
        let ran = self.run_in_transaction(conn, statements.into_iter(), max_mib).await;
        let ended = match &ran {
            Ok(_) => conn.client.batch_execute("COMMIT").await,
            Err(_) => {
                // Whatever failed may have been a stale plan (the table changed under it, in
                // another process or a rolled-back batch): the next call prepares afresh.
                conn.forget_plans();
                conn.client.batch_execute("ROLLBACK").await
            }
        };
        if ended.is_ok() {
            conn.dirty = false;
        }
        let results = ran?;
        ended.map_err(|error| self.error(&error))?;
        Ok(results)
    }

    /// The identity column of the tenant's table `table` (learnt once per connection), or
    /// `None` when it has none (or no such table exists yet).
    async fn identity_column(&self, conn: &mut Conn, table: &str) -> Result<Option<String>, SqlError> {
        if let Some(column) = conn.identity.get(table) {
            return Ok(Some(column.clone()));
        }
        let row = conn
            .client
            .query_opt(
                "SELECT a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                 WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = $1 \
                 AND a.attidentity <> '' AND NOT a.attisdropped LIMIT 1",
                &[&table],
            )
            .await
            .map_err(|error| self.error(&error))?;
        let column: Option<String> = row.map(|row| row.get(0));
        if let Some(column) = &column {
            conn.identity.insert(table.to_owned(), column.clone());
        }
        Ok(column)
    }

    async fn run_in_transaction(
        &self,
        conn: &mut Conn,
        statements: impl Iterator<Item = (Translated, Vec<SqlValue>)>,
        max_mib: u32,
    ) -> Result<Vec<SqlResult>, SqlError> {
        let mut results = Vec::new();
        let mut wrote = false;
        let mut changed_schema = false;
        for (translated, params) in statements {
            let started = Instant::now();
            // An insert into a table with an identity column answers that column too
            // (`RETURNING`, after the app's own list): it is the row's id, `last_row_id`, the
            // one the statement made and never another table's or app's.
            let id_column = match &translated.insert_table {
                Some(table) => self.identity_column(conn, table).await?,
                None => None,
            };
            let sql = match &id_column {
                Some(column) => format!(
                    "{} {} {}",
                    translated.sql,
                    if translated.returning { "," } else { "RETURNING" },
                    admin::quote(column)
                ),
                None => translated.sql.clone(),
            };
            // Only the id was asked for: the rows are not the app's, and not kept.
            let id_only = id_column.is_some() && !translated.returning;
            let prepared = match conn.prepared.get(&sql) {
                Some(prepared) => prepared.clone(),
                None => {
                    let prepared = conn.client.prepare(&sql).await.map_err(|error| self.error(&error))?;
                    if conn.prepared.len() >= 256 {
                        conn.prepared.clear();
                    }
                    conn.prepared.insert(sql, prepared.clone());
                    prepared
                }
            };
            let mut columns: Vec<String> = prepared.columns().iter().map(|column| column.name().to_owned()).collect();
            let types: Vec<tokio_postgres::types::Type> =
                prepared.columns().iter().map(|column| column.type_().clone()).collect();
            let stream =
                conn.client.query_raw(&prepared, params.iter().map(Param)).await.map_err(|error| self.error(&error))?;
            let mut stream = std::pin::pin!(stream);
            let mut rows = Vec::new();
            let mut bytes: u64 = 0;
            let mut last_row_id = 0;
            while let Some(row) = futures::StreamExt::next(&mut stream).await {
                let row = row.map_err(|error| self.error(&error))?;
                if id_only {
                    let id: Raw<'_> = row.try_get(types.len() - 1).map_err(|error| self.error(&error))?;
                    if let Ok(SqlValue::Integer(id)) = values::decode(&types[types.len() - 1], id.0) {
                        last_row_id = id;
                    }
                    continue;
                }
                if rows.len() as u64 >= self.limits.result_rows {
                    return Err(SqlError(format!(
                        "D1_ERROR: the query returns more than {} rows ([data.sql] max_result_rows); add a LIMIT or a WHERE: SQLITE_TOOBIG",
                        self.limits.result_rows
                    )));
                }
                let mut values = Vec::with_capacity(types.len());
                for (index, ty) in types.iter().enumerate() {
                    let raw: Raw<'_> = row.try_get(index).map_err(|error| self.error(&error))?;
                    // As on SQLite: a value's bytes and 8 for its place, NULL or not.
                    bytes += raw.0.map_or(0, |raw| raw.len() as u64) + 8;
                    let value = values::decode(ty, raw.0).map_err(|problem| {
                        SqlError(format!("D1_ERROR: the column {} holds {problem}: SQLITE_MISMATCH", columns[index]))
                    })?;
                    values.push(value);
                }
                if bytes > self.limits.result_bytes {
                    return Err(SqlError(format!(
                        "D1_ERROR: the query returns more than {} bytes ([data.sql] max_result_bytes); select fewer rows or columns: SQLITE_TOOBIG",
                        self.limits.result_bytes
                    )));
                }
                rows.push(values);
            }
            let affected = stream.rows_affected().unwrap_or(0);
            let changes = if translated.writes { affected } else { 0 };
            if id_only {
                columns.clear();
            } else if id_column.is_some() {
                // The app's RETURNING list, without the id asked after it.
                columns.pop();
                for row in &mut rows {
                    if let Some(SqlValue::Integer(id)) = row.pop() {
                        last_row_id = id;
                    }
                }
            }
            wrote |= translated.writes;
            changed_schema |= translated.changes_schema;
            results.push(SqlResult {
                columns,
                meta: SqlMeta {
                    duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                    changes,
                    last_row_id,
                    changed_db: translated.writes,
                    size_after: 0,
                    rows_read: if translated.writes { changes } else { rows.len() as u64 },
                    rows_written: changes,
                },
                rows,
            });
        }
        if changed_schema {
            // A table changed shape: plans prepared against it are stale.
            conn.prepared.clear();
        }
        let size = self.size(conn).await?;
        if wrote && size > u64::from(max_mib) * 1024 * 1024 {
            return Err(SqlError(format!(
                "D1_ERROR: the database is full: it may hold {max_mib} MiB (spec.quotas.sqlStorageMiB): SQLITE_FULL"
            )));
        }
        for result in &mut results {
            result.meta.size_after = size;
        }
        Ok(results)
    }

    /// The bytes of the tenant's tables, with their indexes and TOAST.
    async fn size(&self, conn: &Conn) -> Result<u64, SqlError> {
        let row = conn
            .client
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'm')",
                &[],
            )
            .await
            .map_err(|error| self.error(&error))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// D1's words for what PostgreSQL said. Failures of the server or the connection are the
    /// platform's: their details go to the log, the app reads that the database failed.
    fn error(&self, error: &tokio_postgres::Error) -> SqlError {
        let Some(db) = error.as_db_error() else {
            tracing::error!(%error, "an app's SQL call failed on PostgreSQL");
            return SqlError("D1_ERROR: the database failed: SQLITE_IOERR".to_owned());
        };
        let quoted = |message: &str| message.split('"').nth(1).unwrap_or_default().to_owned();
        let table = db.table().unwrap_or_default();
        let column = db.column().unwrap_or_default();
        let (message, code) = match db.code().code() {
            "42P01" => (format!("no such table: {}", quoted(db.message())), "SQLITE_ERROR"),
            "42703" => (format!("no such column: {}", quoted(db.message())), "SQLITE_ERROR"),
            "42P07" => (format!("table {} already exists", quoted(db.message())), "SQLITE_ERROR"),
            "42601" => (format!("{}: syntax error", db.message()), "SQLITE_ERROR"),
            "23505" => (
                format!("UNIQUE constraint failed: {table} ({})", db.detail().unwrap_or_default()),
                "SQLITE_CONSTRAINT",
            ),
            "23502" => (format!("NOT NULL constraint failed: {table}.{column}"), "SQLITE_CONSTRAINT"),
            "23514" => {
                (format!("CHECK constraint failed: {}", db.constraint().unwrap_or_default()), "SQLITE_CONSTRAINT")
            }
            "23503" => ("FOREIGN KEY constraint failed".to_owned(), "SQLITE_CONSTRAINT"),
            "57014" => (
                format!(
                    "the statement ran longer than {} ms ([data.sql] max_statement_ms) and was stopped",
                    self.limits.statement_time.as_millis()
                ),
                "SQLITE_INTERRUPT",
            ),
            "55P03" | "40P01" => (db.message().to_owned(), "SQLITE_BUSY"),
            "42501" => (format!("not authorized ({})", db.message()), "SQLITE_AUTH"),
            "22P02" | "22003" | "42804" | "22007" | "22008" => (db.message().to_owned(), "SQLITE_MISMATCH"),
            "53100" => ("database or disk is full".to_owned(), "SQLITE_FULL"),
            "54000" | "54001" => (db.message().to_owned(), "SQLITE_TOOBIG"),
            code if code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("58")
                || code.starts_with("XX") =>
            {
                tracing::error!(%error, "an app's SQL call failed on PostgreSQL");
                ("the database failed".to_owned(), "SQLITE_IOERR")
            }
            _ => (db.message().to_owned(), "SQLITE_ERROR"),
        };
        SqlError(format!("D1_ERROR: {message}: {code}"))
    }

    /// The tenant that holds the deployed app's data now.
    fn app_tenant(&self, app: &AppKey) -> Result<Tenant, SqlAdminError> {
        let database = self.deployed(app)?;
        Ok(self.tenant(app, self.effective_tier(app, database.isolation)))
    }

    /// Moves an app's data to `target`: its writes wait (refused with "try again") while its
    /// tables and rows are copied in one transaction; each table's rows are compared by
    /// checksum before the app is switched, and only then is the old copy dropped (a `shared`
    /// schema, the namespace's, stays).
    async fn migrate(&self, app: &AppKey, target: SqlTier) -> Result<Vec<String>, SqlAdminError> {
        let database = self.deployed(app)?;
        let current = self.effective_tier(app, database.isolation);
        if current == target {
            return Err(SqlAdminError::Invalid(format!(
                "{}/{}'s data is in isolation: {} already",
                app.namespace,
                app.name,
                target.as_str()
            )));
        }
        if database.restricted && target != SqlTier::Isolated {
            return Err(SqlAdminError::Invalid(format!(
                "{}/{} is labelled dataClass: restricted, whose data stays in isolation: isolated",
                app.namespace, app.name
            )));
        }
        if !self.moving.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone()) {
            return Err(SqlAdminError::Invalid(format!(
                "{}/{}'s data is moving already; wait for that move to end",
                app.namespace, app.name
            )));
        }
        let moved = self.move_data(app, current, target).await;
        self.moving.lock().unwrap_or_else(PoisonError::into_inner).remove(app);
        moved
    }

    async fn move_data(&self, app: &AppKey, current: SqlTier, target: SqlTier) -> Result<Vec<String>, SqlAdminError> {
        let (source, destination) = (self.tenant(app, current), self.tenant(app, target));
        let source_conn = self.connection(&source).await.map_err(SqlAdminError::Storage)?;
        let destination_conn = self.connection(&destination).await.map_err(SqlAdminError::Storage)?;
        // Held through the switch: a write that began before the move ends first.
        let mut source_conn = source_conn.lock().await;
        source_conn.settle().await.map_err(storage)?;
        let objects = copy::dump(&source_conn.client).await?;
        let expected = copy::checksums(&objects);
        let mut copy = destination_conn.lock().await;
        copy.settle().await.map_err(storage)?;
        copy.forget_plans();
        copy.dirty = true;
        let tables = in_transaction(&copy.client, async {
            let tables = copy::load(&copy.client, &objects).await?;
            let copied = copy::checksums(&copy::dump(&copy.client).await?);
            let wanted: Vec<_> = copied.iter().filter(|sum| expected.iter().any(|e| e.0 == sum.0)).cloned().collect();
            if wanted != expected {
                return Err(SqlAdminError::Storage(
                    "the copy's rows differ from the original's; nothing moved".to_owned(),
                ));
            }
            Ok(tables)
        })
        .await;
        copy.dirty = false;
        let tables = tables?;
        // A second move keeps the tier the manifest names as where the data came from.
        let named =
            self.moved.lock().unwrap_or_else(PoisonError::into_inner).get(app).map_or(current, |(_, from)| *from);
        if let Err(error) = admin::record_move(&self.admin, app, target, named).await {
            // Not recorded, not moved: the app stays on its data, and the copy goes.
            let removed = match target {
                SqlTier::Shared => {
                    let names: Vec<String> = tables.iter().map(|table| admin::quote(table)).collect();
                    copy.client.batch_execute(&format!("DROP TABLE IF EXISTS {}", names.join(", "))).await.map(drop)
                }
                _ => Ok(()),
            };
            drop(copy);
            drop(source_conn);
            if target != SqlTier::Shared {
                self.forget_tenant(&destination).await;
                if let Err(error) = admin::drop_tenant(&self.admin, &self.apps_database, &destination).await {
                    tracing::warn!(namespace = %app.namespace, app = %app.name, %error, "the copy of a failed move could not be dropped");
                }
            } else if let Err(error) = removed {
                tracing::warn!(namespace = %app.namespace, app = %app.name, %error, "the copy of a failed move could not be dropped");
            }
            return Err(SqlAdminError::Storage(format!("the move could not be recorded, so nothing moved: {error}")));
        }
        self.moved.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone(), (target, named));
        drop(copy);
        drop(source_conn);
        if current != SqlTier::Shared {
            // The move is done and recorded; an old copy left behind is the operator's to see,
            // not a failed move.
            self.forget_tenant(&source).await;
            if let Err(error) = admin::drop_tenant(&self.admin, &self.apps_database, &source).await {
                tracing::warn!(namespace = %app.namespace, app = %app.name, %error, "the data moved, but its old copy could not be dropped");
            }
        }
        let mut existing = self.existing.lock().unwrap_or_else(PoisonError::into_inner);
        match target {
            SqlTier::Shared => existing.remove(app),
            tier => existing.insert(app.clone(), tier),
        };
        Ok(tables)
    }

    /// Closes the tenant's connection and forgets it was created (it is about to be dropped).
    async fn forget_tenant(&self, tenant: &Tenant) {
        self.open.invalidate(&tenant.role);
        let _connecting = self.connecting(&tenant.role).await;
        self.ready.lock().unwrap_or_else(PoisonError::into_inner).remove(&tenant.role);
    }

    async fn usage_of(&self, app: &AppKey, tenant: &Tenant) -> Result<SqlUsage, SqlAdminError> {
        let conn = self.connection(tenant).await.map_err(SqlAdminError::Storage)?;
        let mut conn = conn.lock().await;
        conn.settle().await.map_err(storage)?;
        let names = conn
            .client
            .query(
                "SELECT c.relname FROM pg_class c \
                 WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' ORDER BY 1",
                &[],
            )
            .await
            .map_err(storage)?;
        let mut tables = Vec::new();
        for row in names {
            let name: String = row.get(0);
            let count = conn
                .client
                .query_one(&format!("SELECT count(*) FROM {}", admin::quote(&name)), &[])
                .await
                .map_err(storage)?;
            tables.push(TableUsage { name, rows: u64::try_from(count.get::<_, i64>(0)).unwrap_or(0) });
        }
        let bytes = self.size(&conn).await.map_err(|error| SqlAdminError::Storage(error.0))?;
        let _ = app;
        Ok(SqlUsage { isolation: Some(tenant.tier), bytes, tables })
    }
}

impl SqlService for PgSql {
    fn for_app(&self, app: &AppKey, database: &SqlDatabase) -> Result<Arc<dyn SqlHost>, String> {
        if database.encrypted {
            // Its data would stay behind on PostgreSQL, in clear, where the label says it may not be.
            if let Some(tier) = self.0.existing.lock().unwrap_or_else(PoisonError::into_inner).get(app) {
                return Err(format!(
                    "metadata.labels.dataClass: {ns}/{name}'s SQL data is on PostgreSQL (isolation: {}), which the \
                     platform does not encrypt; a confidential or restricted app's SQL is kept in an encrypted file \
                     instead, and moving it there is not supported yet: export it (`terrarium data export {ns}/{name} \
                     --sql -f data.sqlite`), delete the app, deploy it with the label and import the file",
                    tier.as_str(),
                    ns = app.namespace,
                    name = app.name
                ));
            }
            self.0.routed.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone());
            return self.0.sealed.for_app(app, database);
        }
        let declared = database.isolation;
        let moved = self.0.moved.lock().unwrap_or_else(PoisonError::into_inner).get(app).copied();
        match moved {
            // The move record stays the routing truth for every revision, the one naming the new
            // tier and any still live that names the old one.
            Some((target, source)) if target == declared || source == declared => {}
            Some((target, _)) => return Err(Inner::left_behind(app, declared, target)),
            None => match self.0.existing.lock().unwrap_or_else(PoisonError::into_inner).get(app) {
                Some(actual) if *actual != declared => return Err(Inner::left_behind(app, declared, *actual)),
                _ => {}
            },
        }
        self.0.routed.lock().unwrap_or_else(PoisonError::into_inner).remove(app);
        self.0.apps.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone(), database.clone());
        let max_mib = database.max_mib.unwrap_or(self.0.limits.default_database_mib);
        Ok(Arc::new(AppSql { sql: self.0.clone(), app: app.clone(), declared, max_mib }))
    }

    fn migrate(&self, app: &AppKey, target: SqlTier) -> BoxFuture<'static, Result<Vec<String>, SqlAdminError>> {
        if self.0.is_sealed(app) {
            return self.0.sealed.migrate(app, target);
        }
        let (sql, app) = (self.0.clone(), app.clone());
        Box::pin(async move { sql.migrate(&app, target).await })
    }

    fn usage(&self, app: &AppKey) -> BoxFuture<'static, Result<SqlUsage, SqlAdminError>> {
        if self.0.is_sealed(app) {
            return self.0.sealed.usage(app);
        }
        let (sql, app) = (self.0.clone(), app.clone());
        Box::pin(async move {
            let Ok(database) = sql.deployed(&app) else {
                return Ok(SqlUsage::default());
            };
            let tier = sql.effective_tier(&app, database.isolation);
            sql.usage_of(&app, &sql.tenant(&app, tier)).await
        })
    }

    fn stored_bytes(&self) -> BoxFuture<'static, Vec<(AppKey, u64)>> {
        let sql = self.0.clone();
        Box::pin(async move {
            let mut stored = sql.sealed.stored_bytes().await;
            let apps: Vec<(AppKey, SqlTier)> = sql
                .apps
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(app, database)| (app.clone(), sql.effective_tier(app, database.isolation)))
                .collect();
            let mut sharing: HashMap<String, u64> = HashMap::new();
            for (app, tier) in &apps {
                *sharing.entry(sql.tenant(app, *tier).role).or_default() += 1;
            }
            let mut sizes: HashMap<String, u64> = HashMap::new();
            for (app, tier) in apps {
                let tenant = sql.tenant(&app, tier);
                let size = match sizes.get(&tenant.role) {
                    Some(size) => *size,
                    None => {
                        let size = match sql.connection(&tenant).await {
                            Ok(conn) => {
                                let mut conn = conn.lock().await;
                                match conn.settle().await {
                                    Ok(()) => sql.size(&conn).await.unwrap_or(0),
                                    Err(_) => 0,
                                }
                            }
                            Err(_) => 0,
                        };
                        sizes.insert(tenant.role.clone(), size);
                        size
                    }
                };
                stored.push((app, size / sharing.get(&tenant.role).copied().unwrap_or(1).max(1)));
            }
            stored
        })
    }

    fn export(&self, app: &AppKey) -> BoxFuture<'static, Result<Vec<u8>, SqlAdminError>> {
        if self.0.is_sealed(app) {
            return self.0.sealed.export(app);
        }
        let (sql, app) = (self.0.clone(), app.clone());
        Box::pin(async move {
            let tenant = sql.app_tenant(&app)?;
            let conn = sql.connection(&tenant).await.map_err(SqlAdminError::Storage)?;
            let objects = {
                let mut conn = conn.lock().await;
                conn.settle().await.map_err(storage)?;
                copy::dump(&conn.client).await?
            };
            let scratch = sql.scratch.clone();
            tokio::task::spawn_blocking(move || {
                create_private_dir(&scratch)?;
                capability_sql::portable::write_file(&objects, &scratch)
            })
            .await
            .map_err(|error| SqlAdminError::Storage(format!("the export failed: {error}")))?
        })
    }

    fn import(&self, app: &AppKey, file: Vec<u8>) -> BoxFuture<'static, Result<Vec<String>, SqlAdminError>> {
        if self.0.is_sealed(app) {
            return self.0.sealed.import(app, file);
        }
        let (sql, app) = (self.0.clone(), app.clone());
        Box::pin(async move {
            let tenant = sql.app_tenant(&app)?;
            let scratch = sql.scratch.clone();
            let objects = tokio::task::spawn_blocking(move || {
                create_private_dir(&scratch)?;
                capability_sql::portable::read_file(&file, &scratch)
            })
            .await
            .map_err(|error| SqlAdminError::Storage(format!("the import failed: {error}")))??;
            let conn = sql.connection(&tenant).await.map_err(SqlAdminError::Storage)?;
            let mut conn = conn.lock().await;
            conn.settle().await.map_err(storage)?;
            conn.forget_plans();
            conn.dirty = true;
            let loaded = in_transaction(&conn.client, copy::load(&conn.client, &objects)).await;
            conn.dirty = false;
            loaded
        })
    }

    fn delete_app(&self, app: &AppKey) -> BoxFuture<'static, Result<Option<String>, SqlAdminError>> {
        let (sql, app) = (self.0.clone(), app.clone());
        Box::pin(async move {
            let mut said: Vec<String> = sql.sealed.delete_app(&app).await?.into_iter().collect();
            sql.apps.lock().unwrap_or_else(PoisonError::into_inner).remove(&app);
            sql.routed.lock().unwrap_or_else(PoisonError::into_inner).remove(&app);
            sql.existing.lock().unwrap_or_else(PoisonError::into_inner).remove(&app);
            if sql.moved.lock().unwrap_or_else(PoisonError::into_inner).remove(&app).is_some() {
                admin::forget_move(&sql.admin, &app).await.map_err(SqlAdminError::Storage)?;
            }
            for tier in [SqlTier::Isolated, SqlTier::Schema] {
                let tenant = sql.tenant(&app, tier);
                sql.forget_tenant(&tenant).await;
                if let Some(gone) =
                    admin::drop_tenant(&sql.admin, &sql.apps_database, &tenant).await.map_err(SqlAdminError::Storage)?
                {
                    said.push(gone);
                }
            }
            Ok((!said.is_empty()).then(|| said.join("; ")))
        })
    }
}

/// One app's database on PostgreSQL.
struct AppSql {
    sql: Arc<Inner>,
    app: AppKey,
    /// The tier the revision's manifest names (its data may have moved since).
    declared: SqlTier,
    max_mib: u32,
}

impl SqlHost for AppSql {
    fn call(&self, op: SqlOp) -> BoxFuture<'static, Result<SqlAnswer, SqlError>> {
        let (sql, app, declared, max_mib) = (self.sql.clone(), self.app.clone(), self.declared, self.max_mib);
        Box::pin(async move {
            let answer = sql.call(&app, declared, max_mib, op).await;
            if let Ok(answer) = &answer {
                sql.meter.record_data(&app, answer.data_ops());
            }
            answer
        })
    }
}

fn storage(error: tokio_postgres::Error) -> SqlAdminError {
    SqlAdminError::Storage(admin::describe(&error))
}

/// Runs `work` in a transaction on `client`: committed when it succeeds, rolled back otherwise.
async fn in_transaction<T>(
    client: &tokio_postgres::Client,
    work: impl std::future::Future<Output = Result<T, SqlAdminError>>,
) -> Result<T, SqlAdminError> {
    let storage = |error: tokio_postgres::Error| SqlAdminError::Storage(admin::describe(&error));
    client.batch_execute("BEGIN").await.map_err(storage)?;
    match work.await {
        Ok(done) => {
            client.batch_execute("COMMIT").await.map_err(storage)?;
            Ok(done)
        }
        Err(error) => {
            client.batch_execute("ROLLBACK").await.map_err(storage)?;
            Err(error)
        }
    }
}

fn create_private_dir(path: &std::path::Path) -> Result<(), SqlAdminError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|error| SqlAdminError::Storage(error.to_string()))
}
