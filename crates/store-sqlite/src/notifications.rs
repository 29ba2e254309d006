//! Notified events and the record of notifications in SQLite.

use async_trait::async_trait;
use notify::{NotificationRow, NotificationStore, StorageError};
use sqlx::Row;

use crate::SqliteStore;

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn first_time(&self, key: &str, time: &str) -> Result<bool, StorageError> {
        let result = sqlx::query("INSERT OR IGNORE INTO notified_events (key, time) VALUES (?, ?)")
            .bind(key)
            .bind(time)
            .execute(&self.pool)
            .await
            .map_err(|error| StorageError(error.to_string()))?;
        Ok(result.rows_affected() == 1)
    }

    async fn record_notification(&self, row: NotificationRow) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO notifications (time, channel, target, key, subject, status, attempts, error)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.time)
        .bind(&row.channel)
        .bind(&row.target)
        .bind(&row.key)
        .bind(&row.subject)
        .bind(&row.status)
        .bind(i64::from(row.attempts))
        .bind(&row.error)
        .execute(&self.pool)
        .await
        .map_err(|error| StorageError(error.to_string()))?;
        Ok(())
    }

    async fn list_notifications(&self, limit: u32) -> Result<Vec<NotificationRow>, StorageError> {
        let rows = sqlx::query("SELECT * FROM notifications ORDER BY id DESC LIMIT ?")
            .bind(i64::from(limit.max(1)))
            .fetch_all(&self.pool)
            .await
            .map_err(|error| StorageError(error.to_string()))?;
        Ok(rows
            .iter()
            .map(|row| NotificationRow {
                id: row.get("id"),
                time: row.get("time"),
                channel: row.get("channel"),
                target: row.get("target"),
                key: row.get("key"),
                subject: row.get("subject"),
                status: row.get("status"),
                attempts: row.get::<i64, _>("attempts").max(0) as u32,
                error: row.get("error"),
            })
            .collect())
    }
}
