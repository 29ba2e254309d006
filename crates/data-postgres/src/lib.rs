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
pub mod translate;
mod values;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use capability_sql::config::Limits;
use capability_sql::{DatabaseKeys, SqlAdminError, SqlService, SqlUsage, TableUsage};
use deployment::{AppKey, SqlDatabase, SqlTier};
use futures::future::BoxFuture;
use runtime::sql::{SqlAnswer, SqlError, SqlHost, SqlMeta, SqlOp, SqlResult, SqlStatement, SqlValue};
use runtime::{DataMeter, DataOps};
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
    /// `lastval()` has a value in this session (some insert drew from a sequence).
    lastval: bool,
}

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
    /// Held while a tenant is created or connected: once at a time.
    connecting: tokio::sync::Mutex<()>,
    /// Tenants created (or found) since the process started.
    ready: Mutex<std::collections::HashSet<String>>,
    meter: Arc<dyn DataMeter>,
    keys: Arc<dyn DatabaseKeys>,
    /// The embedded service, for the apps whose data must be encrypted at rest.
    sealed: Arc<dyn SqlService>,
    /// Apps whose calls go to `sealed`.
    routed: Mutex<std::collections::HashSet<AppKey>>,
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
        let admin: tokio_postgres::Config =
            url.parse().map_err(|error| format!("the PostgreSQL URL is not valid: {error}"))?;
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
        let (limits, _) = section.build(data_dir);
        let sql = Arc::new(Inner {
            admin,
            apps_database: format!("{database}_apps"),
            limits,
            apps: Mutex::new(HashMap::new()),
            open: moka::sync::Cache::builder().max_capacity(section.max_open_databases.max(1)).build(),
            connecting: tokio::sync::Mutex::new(()),
            ready: Mutex::new(std::collections::HashSet::new()),
            meter,
            keys,
            sealed,
            routed: Mutex::new(std::collections::HashSet::new()),
        });
        admin::prepare_apps_database(&sql.admin, &sql.apps_database).await?;
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

    /// The tenant's role's password: derived from its namespace's data key, never stored.
    async fn password(&self, tenant: &Tenant) -> Result<String, String> {
        let key = self.keys.key(&tenant.namespace, &format!("sql postgres {}", tenant.role)).await?;
        Ok(key.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    /// A connection as the tenant, creating the tenant first when this process has not.
    async fn connection(&self, tenant: &Tenant) -> Result<Shared<Conn>, String> {
        if let Some(conn) = self.open.get(&tenant.role) {
            return Ok(conn);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(conn) = self.open.get(&tenant.role) {
            return Ok(conn);
        }
        let password = self.password(tenant).await?;
        let created = self.ready.lock().unwrap_or_else(PoisonError::into_inner).contains(&tenant.role);
        if !created {
            admin::create_tenant(&self.admin, &self.apps_database, tenant, &password).await?;
            self.ready.lock().unwrap_or_else(PoisonError::into_inner).insert(tenant.role.clone());
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
        let conn = Arc::new(tokio::sync::Mutex::new(Conn { client, prepared: HashMap::new(), lastval: false }));
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

    async fn call(&self, app: &AppKey, tenant: &Tenant, max_mib: u32, op: SqlOp) -> Result<SqlAnswer, SqlError> {
        let conn = self.app_connection(app, tenant).await?;
        let mut conn = conn.lock().await;
        let answer = match op {
            SqlOp::Batch(statements) => self.batch(&mut conn, &statements, max_mib).await.map(SqlAnswer::Results),
            SqlOp::Exec(text) => {
                let started = Instant::now();
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

    async fn batch(
        &self,
        conn: &mut Conn,
        statements: &[SqlStatement],
        max_mib: u32,
    ) -> Result<Vec<SqlResult>, SqlError> {
        let mut work = Vec::with_capacity(statements.len());
        for statement in statements {
            if statement.sql.len() > self.limits.statement_bytes as usize {
                return Err(SqlError(format!(
                    "D1_ERROR: the statement is longer than {} bytes ([data.sql] max_statement_bytes): SQLITE_TOOBIG",
                    self.limits.statement_bytes
                )));
            }
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
        conn.client.batch_execute("BEGIN").await.map_err(|error| self.error(&error))?;
        let ran = self.run_in_transaction(conn, statements, max_mib).await;
        let ended = match &ran {
            Ok(_) => conn.client.batch_execute("COMMIT").await,
            Err(_) => conn.client.batch_execute("ROLLBACK").await,
        };
        let results = ran?;
        ended.map_err(|error| self.error(&error))?;
        Ok(results)
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
            let prepared = match conn.prepared.get(&translated.sql) {
                Some(prepared) => prepared.clone(),
                None => {
                    let prepared = conn.client.prepare(&translated.sql).await.map_err(|error| self.error(&error))?;
                    if conn.prepared.len() >= 256 {
                        conn.prepared.clear();
                    }
                    conn.prepared.insert(translated.sql.clone(), prepared.clone());
                    prepared
                }
            };
            let columns: Vec<String> = prepared.columns().iter().map(|column| column.name().to_owned()).collect();
            let types: Vec<tokio_postgres::types::Type> =
                prepared.columns().iter().map(|column| column.type_().clone()).collect();
            let stream =
                conn.client.query_raw(&prepared, params.iter().map(Param)).await.map_err(|error| self.error(&error))?;
            let mut stream = std::pin::pin!(stream);
            let mut rows = Vec::new();
            let mut bytes: u64 = 0;
            while let Some(row) = futures::StreamExt::next(&mut stream).await {
                let row = row.map_err(|error| self.error(&error))?;
                if rows.len() as u64 >= self.limits.result_rows {
                    return Err(SqlError(format!(
                        "D1_ERROR: the query returns more than {} rows ([data.sql] max_result_rows); add a LIMIT or a WHERE: SQLITE_TOOBIG",
                        self.limits.result_rows
                    )));
                }
                let mut values = Vec::with_capacity(types.len());
                for (index, ty) in types.iter().enumerate() {
                    let raw: Raw<'_> = row.try_get(index).map_err(|error| self.error(&error))?;
                    bytes += raw.0.map_or(0, |raw| raw.len() as u64);
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
            let mut last_row_id = 0;
            if translated.inserts && changes > 0 {
                last_row_id = self.last_id(conn).await?;
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

    /// The id the last insert generated (`lastval()`), 0 when none has in this session.
    async fn last_id(&self, conn: &mut Conn) -> Result<i64, SqlError> {
        if conn.lastval {
            let row = conn.client.query_one("SELECT lastval()", &[]).await.map_err(|error| self.error(&error))?;
            return Ok(row.get(0));
        }
        // Until some insert drew from a sequence, lastval() fails: try it in a savepoint.
        conn.client.batch_execute("SAVEPOINT terrarium_lastval").await.map_err(|error| self.error(&error))?;
        match conn.client.query_one("SELECT lastval()", &[]).await {
            Ok(row) => {
                conn.lastval = true;
                conn.client
                    .batch_execute("RELEASE SAVEPOINT terrarium_lastval")
                    .await
                    .map_err(|error| self.error(&error))?;
                Ok(row.get(0))
            }
            Err(_) => {
                conn.client
                    .batch_execute("ROLLBACK TO SAVEPOINT terrarium_lastval; RELEASE SAVEPOINT terrarium_lastval")
                    .await
                    .map_err(|error| self.error(&error))?;
                Ok(0)
            }
        }
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

    async fn usage_of(&self, app: &AppKey, tenant: &Tenant) -> Result<SqlUsage, SqlAdminError> {
        let conn = self.connection(tenant).await.map_err(SqlAdminError::Storage)?;
        let conn = conn.lock().await;
        let storage = |error: tokio_postgres::Error| SqlAdminError::Storage(admin::describe(&error));
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
            self.0.routed.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone());
            return self.0.sealed.for_app(app, database);
        }
        self.0.routed.lock().unwrap_or_else(PoisonError::into_inner).remove(app);
        self.0.apps.lock().unwrap_or_else(PoisonError::into_inner).insert(app.clone(), database.clone());
        let max_mib = database.max_mib.unwrap_or(self.0.limits.default_database_mib);
        Ok(Arc::new(AppSql {
            sql: self.0.clone(),
            app: app.clone(),
            tenant: self.0.tenant(app, database.isolation),
            max_mib,
        }))
    }

    fn migrate(&self, app: &AppKey, target: SqlTier) -> BoxFuture<'static, Result<Vec<String>, SqlAdminError>> {
        if self.0.is_sealed(app) {
            return self.0.sealed.migrate(app, target);
        }
        let app = app.clone();
        Box::pin(async move {
            Err(SqlAdminError::Invalid(format!(
                "moving {}/{}'s data between tiers is not supported on PostgreSQL yet; export it \
                 (`terrarium data export`), redeploy with the new isolation and import it",
                app.namespace, app.name
            )))
        })
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
            sql.usage_of(&app, &sql.tenant(&app, database.isolation)).await
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
                .map(|(app, database)| (app.clone(), database.isolation))
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
                            Ok(conn) => sql.size(&*conn.lock().await).await.unwrap_or(0),
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
        let app = app.clone();
        Box::pin(async move {
            Err(SqlAdminError::Invalid(format!(
                "exporting {}/{}'s SQL data is not supported on PostgreSQL yet; use pg_dump on its schema",
                app.namespace, app.name
            )))
        })
    }

    fn import(&self, app: &AppKey, file: Vec<u8>) -> BoxFuture<'static, Result<Vec<String>, SqlAdminError>> {
        if self.0.is_sealed(app) {
            return self.0.sealed.import(app, file);
        }
        let app = app.clone();
        Box::pin(async move {
            Err(SqlAdminError::Invalid(format!(
                "importing into {}/{}'s SQL data is not supported on PostgreSQL yet",
                app.namespace, app.name
            )))
        })
    }

    fn delete_app(&self, app: &AppKey) -> BoxFuture<'static, Result<Option<String>, SqlAdminError>> {
        let (sql, app) = (self.0.clone(), app.clone());
        Box::pin(async move {
            let mut said: Vec<String> = sql.sealed.delete_app(&app).await?.into_iter().collect();
            sql.apps.lock().unwrap_or_else(PoisonError::into_inner).remove(&app);
            sql.routed.lock().unwrap_or_else(PoisonError::into_inner).remove(&app);
            for tier in [SqlTier::Isolated, SqlTier::Schema] {
                let tenant = sql.tenant(&app, tier);
                sql.open.invalidate(&tenant.role);
                let _connecting = sql.connecting.lock().await;
                sql.ready.lock().unwrap_or_else(PoisonError::into_inner).remove(&tenant.role);
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
    tenant: Tenant,
    max_mib: u32,
}

impl SqlHost for AppSql {
    fn call(&self, op: SqlOp) -> BoxFuture<'static, Result<SqlAnswer, SqlError>> {
        let (sql, app, tenant, max_mib) = (self.sql.clone(), self.app.clone(), self.tenant.clone(), self.max_mib);
        Box::pin(async move {
            let answer = sql.call(&app, &tenant, max_mib, op).await;
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
