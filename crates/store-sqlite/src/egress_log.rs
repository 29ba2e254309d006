//! The egress log in SQLite.

use api_types::EgressEntry;
use async_trait::async_trait;
use metering::StorageError;
use metering::store::{EgressFilter, EgressLogStore};
use sqlx::Row;

use crate::{BEGIN_WRITE, SqliteStore, storage};

#[async_trait]
impl EgressLogStore for SqliteStore {
    async fn append_egress(&self, entries: &[EgressEntry]) -> Result<(), StorageError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(storage)?;
        for entry in entries {
            sqlx::query(
                "INSERT INTO egress_log (time, namespace, app, request_id, method, host, address, decision, code,
                                         status, bytes_out, bytes_in, duration_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&entry.time)
            .bind(&entry.namespace)
            .bind(&entry.app)
            .bind(&entry.request_id)
            .bind(&entry.method)
            .bind(&entry.host)
            .bind(&entry.address)
            .bind(&entry.decision)
            .bind(&entry.code)
            .bind(entry.status.map(i64::from))
            .bind(i64::try_from(entry.bytes_out).unwrap_or(i64::MAX))
            .bind(i64::try_from(entry.bytes_in).unwrap_or(i64::MAX))
            .bind(i64::try_from(entry.duration_ms).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    async fn list_egress(&self, filter: EgressFilter) -> Result<Vec<EgressEntry>, StorageError> {
        let rows = sqlx::query(
            "SELECT * FROM egress_log
             WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR app = ?2) AND (?3 = 0 OR decision != 'allowed')
             ORDER BY id DESC LIMIT ?4",
        )
        .bind(&filter.namespace)
        .bind(&filter.app)
        .bind(filter.denied_only)
        .bind(i64::from(filter.limit.max(1)))
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        Ok(rows
            .iter()
            .map(|row| EgressEntry {
                id: row.get("id"),
                time: row.get("time"),
                namespace: row.get("namespace"),
                app: row.get("app"),
                request_id: row.get("request_id"),
                method: row.get("method"),
                host: row.get("host"),
                address: row.get("address"),
                decision: row.get("decision"),
                code: row.get("code"),
                status: row.get::<Option<i64>, _>("status").and_then(|status| u16::try_from(status).ok()),
                bytes_out: row.get::<i64, _>("bytes_out").max(0) as u64,
                bytes_in: row.get::<i64, _>("bytes_in").max(0) as u64,
                duration_ms: row.get::<i64, _>("duration_ms").max(0) as u64,
            })
            .collect())
    }

    async fn prune_egress(&self, keep: u64) -> Result<u64, StorageError> {
        let result = sqlx::query("DELETE FROM egress_log WHERE id <= (SELECT MAX(id) FROM egress_log) - ?")
            .bind(i64::try_from(keep).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(result.rows_affected())
    }
}
