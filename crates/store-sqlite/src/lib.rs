//! The embedded registry store: SQLite (WAL, synchronous=FULL) through sqlx.
//!
//! Queries are checked at run time (no sqlx macros: they would compile SQLite twice).
//! Migrations are embedded in the binary and applied on open.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use control::store::{
    AppRow, AuditFilter, AuditRow, NamespaceRow, NewAuditEvent, NewRevision, RegistryStore, RevisionRow, StoreError,
};
use deployment::{AppKey, Deployment};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

/// How every transaction here starts: taking the write lock at once, so it waits its turn
/// (`busy_timeout`) instead of failing with "database is locked" when a transaction that read
/// first must become a writer after another connection wrote (SQLite refuses that upgrade in WAL).
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "registry", include_str!("../migrations/0001_registry.sql")),
    (2, "identity", include_str!("../migrations/0002_identity.sql")),
    (3, "secrets", include_str!("../migrations/0003_secrets.sql")),
    (4, "egress_log", include_str!("../migrations/0004_egress_log.sql")),
    (5, "usage", include_str!("../migrations/0005_usage.sql")),
    (6, "notifications", include_str!("../migrations/0006_notifications.sql")),
    (7, "usage_outbound_heap", include_str!("../migrations/0007_usage_outbound_heap.sql")),
    (8, "governance", include_str!("../migrations/0008_governance.sql")),
    (9, "kv", include_str!("../migrations/0009_kv.sql")),
    (10, "usage_data", include_str!("../migrations/0010_usage_data.sql")),
    (11, "kv_sealed", include_str!("../migrations/0011_kv_sealed.sql")),
    (12, "usage_cache", include_str!("../migrations/0012_usage_cache.sql")),
    (13, "lifecycle", include_str!("../migrations/0013_lifecycle.sql")),
    (14, "archive_notice", include_str!("../migrations/0014_archive_notice.sql")),
    (15, "usage_vectors", include_str!("../migrations/0015_usage_vectors.sql")),
];

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// One connection for apps' key-value writes: they queue for it in order instead of
    /// contending for SQLite's write lock (and sleeping in its busy handler) on the shared pool.
    pub(crate) kv_writer: SqlitePool,
    /// Key-value writes waiting for the next group commit.
    pub(crate) kv_commits: kv::GroupCommit,
}

pub(crate) fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// A storage failure, for the traits of metering.
pub(crate) fn storage(error: impl std::fmt::Display) -> metering::StorageError {
    metering::StorageError(error.to_string())
}

/// What budgets read from the registry, through the registry's own queries.
#[async_trait]
impl metering::store::AppDirectory for SqliteStore {
    async fn owners(&self) -> Result<Vec<(AppKey, String)>, metering::StorageError> {
        let apps = RegistryStore::list_apps(self, None).await.map_err(storage)?;
        Ok(apps.into_iter().map(|row| (row.app, row.owner)).collect())
    }

    async fn append_audit(&self, event: audit::AuditEvent) -> Result<(), metering::StorageError> {
        RegistryStore::append_audit(self, event).await.map_err(storage)
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(backend)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Every acknowledged write survives a crash or power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await.map_err(backend)?;
        let migrations = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations).run(&pool).await.map_err(backend)?;
        let kv_writer = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(backend)?;
        Ok(SqliteStore { pool, kv_writer, kv_commits: kv::GroupCommit::default() })
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool.begin_with(BEGIN_WRITE).await.map_err(backend)
    }
}

pub(crate) async fn insert_audit(
    tx: &mut Transaction<'static, Sqlite>,
    event: &NewAuditEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (time, principal, action, namespace, app, revision, outcome, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&event.time)
    .bind(&event.principal)
    .bind(event.action.as_str())
    .bind(&event.namespace)
    .bind(&event.app)
    .bind(event.revision)
    .bind(event.outcome.as_str())
    .bind(&event.detail)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

impl SqliteStore {
    /// Sets columns of one app's row (`set`, with a `?` per value) and records the audit event,
    /// in one transaction.
    async fn update_app(
        &self,
        app: &AppKey,
        set: &'static str,
        values: &[Option<&str>],
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        // `set` is this file's own text; every value is bound.
        let sql = format!("UPDATE apps SET {set} WHERE namespace = ? AND name = ?");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = query.bind(*value);
        }
        let updated = query.bind(&app.namespace).bind(&app.name).execute(&mut *tx).await.map_err(backend)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::UnknownApp { app: app.clone() });
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }
}

fn app_row(row: &SqliteRow) -> AppRow {
    AppRow {
        app: AppKey::new(row.get::<String, _>("namespace"), row.get::<String, _>("name")),
        owner: row.get("owner"),
        runtime: row.get("runtime"),
        description: row.get("description"),
        active_revision: row.get("active_revision"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        expires_at: row.get("expires_at"),
        archived: row.get::<Option<String>, _>("archived_at").zip(row.get::<Option<String>, _>("archive_digest")),
        archive_notice_at: row.get("archive_notice_at"),
    }
}

fn parse_deployment(json: &str) -> Result<Deployment, StoreError> {
    serde_json::from_str(json).map_err(|error| StoreError::Backend(format!("stored deployment is unreadable: {error}")))
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait]
impl RegistryStore for SqliteStore {
    async fn create_namespace(
        &self,
        name: &str,
        created_by: &str,
        audit: NewAuditEvent,
    ) -> Result<NamespaceRow, StoreError> {
        let mut tx = self.begin().await?;
        let result = sqlx::query("INSERT INTO namespaces (name, created_at, created_by) VALUES (?, ?, ?)")
            .bind(name)
            .bind(&audit.time)
            .bind(created_by)
            .execute(&mut *tx)
            .await;
        match result {
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::NamespaceExists { namespace: name.to_owned() });
            }
            other => other.map_err(backend)?,
        };
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(backend)?;
        Ok(NamespaceRow { name: name.to_owned(), created_at: audit.time, created_by: created_by.to_owned(), n_apps: 0 })
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT n.name, n.created_at, n.created_by, COUNT(a.name) AS n_apps
             FROM namespaces n LEFT JOIN apps a ON a.namespace = n.name
             GROUP BY n.name ORDER BY n.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| NamespaceRow {
                name: row.get("name"),
                created_at: row.get("created_at"),
                created_by: row.get("created_by"),
                n_apps: row.get::<i64, _>("n_apps") as u64,
            })
            .collect())
    }

    async fn next_revision(&self, app: &AppKey) -> Result<i64, StoreError> {
        let max: Option<i64> =
            sqlx::query_scalar("SELECT MAX(revision) FROM revisions WHERE namespace = ? AND app = ?")
                .bind(&app.namespace)
                .bind(&app.name)
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
        Ok(max.unwrap_or(0) + 1)
    }

    async fn insert_revision(&self, new: NewRevision, audit: NewAuditEvent) -> Result<(), StoreError> {
        let deployment = &new.deployment;
        let app = &deployment.app;
        let deployment_json = serde_json::to_string(deployment).map_err(backend)?;
        let mut tx = self.begin().await?;
        if new.create_namespace {
            sqlx::query("INSERT OR IGNORE INTO namespaces (name, created_at, created_by) VALUES (?, ?, ?)")
                .bind(&app.namespace)
                .bind(&new.created_at)
                .bind(&new.created_by)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        } else {
            let exists: Option<String> = sqlx::query_scalar("SELECT name FROM namespaces WHERE name = ?")
                .bind(&app.namespace)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            if exists.is_none() {
                return Err(StoreError::UnknownNamespace { namespace: app.namespace.clone() });
            }
        }
        sqlx::query(
            "INSERT INTO apps (namespace, name, owner, runtime, description, active_revision, created_at, updated_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (namespace, name) DO UPDATE SET
                owner = excluded.owner, runtime = excluded.runtime, description = excluded.description,
                active_revision = excluded.active_revision, updated_at = excluded.updated_at,
                expires_at = excluded.expires_at",
        )
        .bind(&app.namespace)
        .bind(&app.name)
        .bind(&new.owner)
        .bind(&new.runtime)
        .bind(&new.description)
        .bind(deployment.revision)
        .bind(&new.created_at)
        .bind(&new.created_at)
        .bind(&new.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let inserted = sqlx::query(
            "INSERT INTO revisions (namespace, app, revision, digest, manifest_source, deployment, n_files, size_bytes, created_at, created_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&app.namespace)
        .bind(&app.name)
        .bind(deployment.revision)
        .bind(&deployment.bundle_digest)
        .bind(&new.manifest_source)
        .bind(&deployment_json)
        .bind(deployment.files.len() as i64)
        .bind(new.size_bytes as i64)
        .bind(&new.created_at)
        .bind(&new.created_by)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Conflict { app: app.clone(), revision: deployment.revision });
            }
            other => other.map_err(backend)?,
        };
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn get_deployment(&self, app: &AppKey, revision: i64) -> Result<Deployment, StoreError> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT deployment FROM revisions WHERE namespace = ? AND app = ? AND revision = ?")
                .bind(&app.namespace)
                .bind(&app.name)
                .bind(revision)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        let json = json.ok_or_else(|| StoreError::UnknownRevision { app: app.clone(), revision })?;
        parse_deployment(&json)
    }

    async fn set_active_revision(
        &self,
        app: &AppKey,
        revision: i64,
        audit: NewAuditEvent,
    ) -> Result<Deployment, StoreError> {
        let mut tx = self.begin().await?;
        let json: Option<String> =
            sqlx::query_scalar("SELECT deployment FROM revisions WHERE namespace = ? AND app = ? AND revision = ?")
                .bind(&app.namespace)
                .bind(&app.name)
                .bind(revision)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let Some(json) = json else {
            return Err(StoreError::UnknownRevision { app: app.clone(), revision });
        };
        sqlx::query("UPDATE apps SET active_revision = ?, updated_at = ? WHERE namespace = ? AND name = ?")
            .bind(revision)
            .bind(&audit.time)
            .bind(&app.namespace)
            .bind(&app.name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(backend)?;
        parse_deployment(&json)
    }

    async fn set_expiry(&self, app: &AppKey, expires_at: &str, audit: NewAuditEvent) -> Result<(), StoreError> {
        self.update_app(app, "expires_at = ?", &[Some(expires_at)], audit).await
    }

    async fn set_archived(
        &self,
        app: &AppKey,
        archived: Option<(&str, &str)>,
        expires_at: Option<&str>,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let (archived_at, digest) = archived.unzip();
        let set = "archived_at = ?, archive_digest = ?, expires_at = ?, archive_notice_at = NULL";
        self.update_app(app, set, &[archived_at, digest, expires_at], audit).await
    }

    async fn set_archive_notice(&self, app: &AppKey, at: &str, audit: NewAuditEvent) -> Result<(), StoreError> {
        self.update_app(app, "archive_notice_at = ?", &[Some(at)], audit).await
    }

    async fn delete_app(&self, app: &AppKey, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM apps WHERE namespace = ? AND name = ?")
            .bind(&app.namespace)
            .bind(&app.name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::UnknownApp { app: app.clone() });
        }
        // A later app of the same name starts without this one's grants, exceptions or findings.
        for delete in [
            "DELETE FROM policy_grants WHERE namespace = ? AND app = ?",
            "DELETE FROM policy_exceptions WHERE namespace = ? AND app = ?",
            "DELETE FROM policy_violations WHERE namespace = ? AND app = ?",
        ] {
            sqlx::query(delete).bind(&app.namespace).bind(&app.name).execute(&mut *tx).await.map_err(backend)?;
        }
        sqlx::query(
            "UPDATE approvals SET state = 'superseded', decided_at = ?, outcome = 'the app was deleted'
             WHERE namespace = ? AND app = ? AND state = 'pending'",
        )
        .bind(&audit.time)
        .bind(&app.namespace)
        .bind(&app.name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn list_apps(&self, namespace: Option<&str>) -> Result<Vec<AppRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM apps WHERE (?1 IS NULL OR namespace = ?1) ORDER BY namespace, name")
            .bind(namespace)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(app_row).collect())
    }

    async fn get_app(&self, app: &AppKey) -> Result<AppRow, StoreError> {
        let row = sqlx::query("SELECT * FROM apps WHERE namespace = ? AND name = ?")
            .bind(&app.namespace)
            .bind(&app.name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(app_row).ok_or_else(|| StoreError::UnknownApp { app: app.clone() })
    }

    async fn list_revisions(&self, app: &AppKey) -> Result<Vec<RevisionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT revision, digest, created_at, created_by, n_files, size_bytes FROM revisions
             WHERE namespace = ? AND app = ? ORDER BY revision DESC",
        )
        .bind(&app.namespace)
        .bind(&app.name)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| RevisionRow {
                revision: row.get("revision"),
                digest: row.get("digest"),
                created_at: row.get("created_at"),
                created_by: row.get("created_by"),
                n_files: row.get::<i64, _>("n_files") as u64,
                size_bytes: row.get::<i64, _>("size_bytes") as u64,
            })
            .collect())
    }

    async fn active_deployments(&self) -> Result<Vec<Deployment>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT r.deployment FROM apps a JOIN revisions r
             ON r.namespace = a.namespace AND r.app = a.name AND r.revision = a.active_revision
             WHERE a.archived_at IS NULL
             ORDER BY a.namespace, a.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(|json| parse_deployment(json)).collect()
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_audit(&mut tx, &event).await?;
        tx.commit().await.map_err(backend)
    }

    async fn list_audit(&self, filter: AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR app = ?2)
               AND (?4 IS NULL OR principal = ?4) AND (?5 IS NULL OR action = ?5 OR (substr(?5, -1) = '.' AND substr(action, 1, length(?5)) = ?5) OR substr(action, 1, length(?5) + 1) = ?5 || '.')
               AND (?6 IS NULL OR time >= ?6) AND (?7 IS NULL OR id < ?7)
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(&filter.namespace)
        .bind(&filter.app)
        .bind(i64::from(filter.limit.max(1)))
        .bind(&filter.actor)
        .bind(&filter.action_prefix)
        .bind(&filter.since)
        .bind(filter.before)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| AuditRow {
                id: row.get("id"),
                time: row.get("time"),
                principal: row.get("principal"),
                action: row.get("action"),
                namespace: row.get("namespace"),
                app: row.get("app"),
                revision: row.get("revision"),
                outcome: row.get("outcome"),
                detail: row.get("detail"),
            })
            .collect())
    }
}

mod accounts;
mod egress_log;
mod governance;
mod kv;
mod notifications;
mod secrets;
mod usage;

#[cfg(test)]
mod tests;
