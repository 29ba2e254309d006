//! Apps' key-value namespaces, for `capability-kv`, on PostgreSQL.

use async_trait::async_trait;
use bytes::Bytes;
use capability_kv::store::{KvStore, KvUsage, KvWrite, StorageError, StoredCondition, StoredValue};
use deployment::AppKey;
use runtime::kv::KvKey;
use sqlx::{AssertSqlSafe, Row};

use crate::PostgresStore;

fn storage(error: impl std::fmt::Display) -> StorageError {
    StorageError(error.to_string())
}

/// A fresh version for every write: the etag an app's compare-and-set names. The statements
/// below are assembled from constants only (`AssertSqlSafe`); every value is a bound parameter.
const NEW_VERSION: &str = "floor(random() * 9007199254740991)::bigint";

#[async_trait]
impl KvStore for PostgresStore {
    async fn get(&self, app: &AppKey, key: &str, now: i64) -> Result<Option<StoredValue>, StorageError> {
        let row = sqlx::query(
            "SELECT value, metadata, expiration, version, sealed FROM terrarium_kv_entries
             WHERE namespace = $1 AND app = $2 AND key = $3 AND (expiration IS NULL OR expiration > $4)",
        )
        .bind(&app.namespace)
        .bind(&app.name)
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        Ok(row.map(|row| StoredValue {
            value: Bytes::from(row.get::<Vec<u8>, _>("value")),
            metadata: row.get("metadata"),
            expiration: row.get("expiration"),
            version: row.get("version"),
            sealed: row.get("sealed"),
        }))
    }

    async fn put(&self, app: &AppKey, write: KvWrite, now: i64) -> Result<Option<i64>, StorageError> {
        let upsert = format!(
            "INSERT INTO terrarium_kv_entries (namespace, app, key, value, metadata, expiration, version, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, {NEW_VERSION}, $7)
             ON CONFLICT (namespace, app, key) DO UPDATE SET value = excluded.value,
               metadata = excluded.metadata, expiration = excluded.expiration, version = excluded.version,
               sealed = excluded.sealed"
        );
        let version: Option<i64> = match write.only_if {
            None => sqlx::query_scalar(AssertSqlSafe(format!("{upsert} RETURNING version")))
                .bind(&app.namespace)
                .bind(&app.name)
                .bind(&write.key)
                .bind(write.value.as_ref())
                .bind(&write.metadata)
                .bind(write.expiration)
                .bind(write.sealed)
                .fetch_optional(&self.pool)
                .await
                .map_err(storage)?,
            // Written only where no live row is: an expired one counts as absent.
            Some(StoredCondition::Absent) => sqlx::query_scalar(AssertSqlSafe(format!(
                "{upsert} WHERE terrarium_kv_entries.expiration IS NOT NULL AND terrarium_kv_entries.expiration <= $8
                 RETURNING version"
            )))
            .bind(&app.namespace)
            .bind(&app.name)
            .bind(&write.key)
            .bind(write.value.as_ref())
            .bind(&write.metadata)
            .bind(write.expiration)
            .bind(write.sealed)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?,
            Some(StoredCondition::Version(expected)) => sqlx::query_scalar(AssertSqlSafe(format!(
                "UPDATE terrarium_kv_entries SET value = $4, metadata = $5, expiration = $6, version = {NEW_VERSION},
                   sealed = $7
                 WHERE namespace = $1 AND app = $2 AND key = $3 AND version = $8
                   AND (expiration IS NULL OR expiration > $9)
                 RETURNING version"
            )))
            .bind(&app.namespace)
            .bind(&app.name)
            .bind(&write.key)
            .bind(write.value.as_ref())
            .bind(&write.metadata)
            .bind(write.expiration)
            .bind(write.sealed)
            .bind(expected)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?,
        };
        Ok(version)
    }

    async fn delete(&self, app: &AppKey, key: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM terrarium_kv_entries WHERE namespace = $1 AND app = $2 AND key = $3")
            .bind(&app.namespace)
            .bind(&app.name)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn list(
        &self,
        app: &AppKey,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        now: i64,
    ) -> Result<Vec<KvKey>, StorageError> {
        let rows = sqlx::query(
            "SELECT key, expiration, metadata FROM terrarium_kv_entries
             WHERE namespace = $1 AND app = $2 AND starts_with(key, $3)
               AND ($4::text IS NULL OR key > $4) AND (expiration IS NULL OR expiration > $5)
             ORDER BY key LIMIT $6",
        )
        .bind(&app.namespace)
        .bind(&app.name)
        .bind(prefix)
        .bind(after)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        Ok(rows
            .iter()
            .map(|row| KvKey { name: row.get("key"), expiration: row.get("expiration"), metadata: row.get("metadata") })
            .collect())
    }

    async fn increment(&self, app: &AppKey, key: &str, by: i64, now: i64) -> Result<Result<i64, String>, StorageError> {
        // One statement: a live integer (in canonical decimal text) is added to, an absent or
        // expired key starts at `by`, anything else is left alone (and no row comes back).
        let sql = format!(
            "INSERT INTO terrarium_kv_entries (namespace, app, key, value, metadata, expiration, version)
             VALUES ($1, $2, $3, convert_to($4::bigint::text, 'UTF8'), NULL, NULL, {NEW_VERSION})
             ON CONFLICT (namespace, app, key) DO UPDATE SET
               value = CASE WHEN terrarium_kv_entries.expiration IS NOT NULL AND terrarium_kv_entries.expiration <= $5
                         THEN excluded.value
                         ELSE convert_to((encode(terrarium_kv_entries.value, 'escape')::bigint + $4::bigint)::text, 'UTF8') END,
               expiration = CASE WHEN terrarium_kv_entries.expiration IS NOT NULL AND terrarium_kv_entries.expiration <= $5
                              THEN NULL ELSE terrarium_kv_entries.expiration END,
               version = excluded.version, sealed = NULL
             WHERE (terrarium_kv_entries.expiration IS NOT NULL AND terrarium_kv_entries.expiration <= $5)
                OR (terrarium_kv_entries.sealed IS NULL
                    AND encode(terrarium_kv_entries.value, 'escape') ~ '^(0|-?[1-9][0-9]{{0,18}})$')
             RETURNING encode(value, 'escape')::bigint AS count"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(&app.namespace)
            .bind(&app.name)
            .bind(key)
            .bind(by)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?;
        if let Some(row) = row {
            return Ok(Ok(row.get("count")));
        }
        let found = KvStore::get(self, app, key, now).await?;
        Ok(Err(found.map(|value| value.shown()).unwrap_or_default()))
    }

    async fn sweep_expired(&self, now: i64, limit: u32) -> Result<u64, StorageError> {
        let deleted = sqlx::query(
            "DELETE FROM terrarium_kv_entries WHERE ctid IN
               (SELECT ctid FROM terrarium_kv_entries WHERE expiration <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(storage)?
        .rows_affected();
        Ok(deleted)
    }

    async fn delete_app(&self, app: &AppKey) -> Result<u64, StorageError> {
        let deleted = sqlx::query("DELETE FROM terrarium_kv_entries WHERE namespace = $1 AND app = $2")
            .bind(&app.namespace)
            .bind(&app.name)
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(deleted.rows_affected())
    }

    async fn usage(&self, app: &AppKey) -> Result<KvUsage, StorageError> {
        let row = sqlx::query(
            "SELECT COUNT(*)::bigint AS keys,
                    COALESCE(SUM(octet_length(key) + octet_length(value) + COALESCE(octet_length(metadata), 0)), 0)::bigint AS bytes
             FROM terrarium_kv_entries WHERE namespace = $1 AND app = $2",
        )
        .bind(&app.namespace)
        .bind(&app.name)
        .fetch_one(&self.pool)
        .await
        .map_err(storage)?;
        Ok(KvUsage { keys: row.get::<i64, _>("keys") as u64, bytes: row.get::<i64, _>("bytes") as u64 })
    }
}
