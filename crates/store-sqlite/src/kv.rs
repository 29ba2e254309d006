//! Apps' key-value namespaces, for `capability-kv`. Each write is one statement, so SQLite's
//! single writer makes it atomic: compare-and-set and increment need no read-then-write.
//!
//! Writes are group-committed: each joins a queue, and whoever holds the writer connection
//! next runs every queued write in one transaction and commits once (one fsync for all, with
//! `synchronous=FULL`), then answers each. A write is acknowledged only after its commit.

use async_trait::async_trait;
use bytes::Bytes;
use capability_kv::store::{KvStore, KvUsage, KvWrite, StorageError, StoredCondition, StoredValue};
use deployment::AppKey;
use runtime::kv::KvKey;
use sqlx::Row;

use crate::SqliteStore;

fn storage(error: impl std::fmt::Display) -> StorageError {
    StorageError(error.to_string())
}

/// A key-value write waiting for its group commit.
enum WriteOp {
    /// Deleting an app's keys queues behind its writes, so none lands after it.
    DeleteApp {
        app: AppKey,
    },
    Put {
        app: AppKey,
        write: KvWrite,
        now: i64,
    },
    Delete {
        app: AppKey,
        key: String,
    },
    Increment {
        app: AppKey,
        key: String,
        by: i64,
        now: i64,
    },
}

/// What a write answered: the new version (or none, when a condition failed), or the
/// incremented count (or none, when the value is not an integer).
type WriteAnswer = Result<Option<i64>, StorageError>;

struct Queued {
    op: WriteOp,
    reply: tokio::sync::oneshot::Sender<WriteAnswer>,
}

/// The queue of writes and the turn to commit them.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: std::sync::Mutex<Vec<Queued>>,
    turn: tokio::sync::Mutex<()>,
}

impl SqliteStore {
    /// Queues a write and waits for the commit that includes it, leading that commit when no
    /// one else has taken the write yet.
    async fn commit_write(&self, op: WriteOp) -> WriteAnswer {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let commits = &self.kv_commits;
        commits.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Queued { op, reply });
        let _turn = commits.turn.lock().await;
        // The previous commit may have taken (and answered) this write.
        match answer.try_recv() {
            Ok(answered) => return answered,
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                return Err(StorageError("the commit that took this write was interrupted".to_owned()));
            }
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
        }
        let batch = std::mem::take(&mut *commits.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        // On a task of its own: a caller that goes away (its request timed out) does not take
        // the other callers' writes down with it.
        let committing = tokio::spawn(commit_batch(self.kv_writer.clone(), batch));
        let _ = committing.await;
        answer.await.unwrap_or_else(|_| Err(StorageError("the write was not answered".to_owned())))
    }
}

/// Runs the writes in one transaction and answers each once it is committed.
async fn commit_batch(writer: sqlx::SqlitePool, batch: Vec<Queued>) {
    {
        let mut transaction = match writer.begin().await {
            Ok(transaction) => transaction,
            Err(error) => {
                for queued in batch {
                    let _ = queued.reply.send(Err(storage(&error)));
                }
                return;
            }
        };
        let mut answers = Vec::with_capacity(batch.len());
        for queued in &batch {
            let answer = run_write(&mut transaction, &queued.op).await;
            // A failed write may have ended the whole transaction (a full disk, an I/O error):
            // nothing more runs, and no write of the group is reported as done.
            if let Err(error) = &answer {
                let error = StorageError(error.0.clone());
                drop(transaction);
                for queued in batch {
                    let _ = queued.reply.send(Err(StorageError(error.0.clone())));
                }
                return;
            }
            answers.push(answer);
        }
        let committed = transaction.commit().await;
        for (queued, answer) in batch.into_iter().zip(answers) {
            let answer = match &committed {
                Ok(()) => answer,
                Err(error) => Err(storage(error)),
            };
            let _ = queued.reply.send(answer);
        }
    }
}

/// One write, inside the group's transaction.
async fn run_write(connection: &mut sqlx::SqliteConnection, op: &WriteOp) -> WriteAnswer {
    match op {
        WriteOp::Put { app, write, now } => put(connection, app, write, *now).await,
        WriteOp::Delete { app, key } => {
            sqlx::query("DELETE FROM kv_entries WHERE namespace = ?1 AND app = ?2 AND key = ?3")
                .bind(&app.namespace)
                .bind(&app.name)
                .bind(key)
                .execute(connection)
                .await
                .map_err(storage)?;
            Ok(None)
        }
        WriteOp::Increment { app, key, by, now } => increment(connection, app, key, *by, *now).await,
        WriteOp::DeleteApp { app } => {
            let deleted = sqlx::query("DELETE FROM kv_entries WHERE namespace = ?1 AND app = ?2")
                .bind(&app.namespace)
                .bind(&app.name)
                .execute(connection)
                .await
                .map_err(storage)?;
            Ok(Some(i64::try_from(deleted.rows_affected()).unwrap_or(i64::MAX)))
        }
    }
}

#[async_trait]
impl KvStore for SqliteStore {
    async fn get(&self, app: &AppKey, key: &str, now: i64) -> Result<Option<StoredValue>, StorageError> {
        let row = sqlx::query(
            "SELECT value, metadata, expiration, version, sealed FROM kv_entries
             WHERE namespace = ?1 AND app = ?2 AND key = ?3 AND (expiration IS NULL OR expiration > ?4)",
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
        self.commit_write(WriteOp::Put { app: app.clone(), write, now }).await
    }

    async fn delete(&self, app: &AppKey, key: &str) -> Result<(), StorageError> {
        self.commit_write(WriteOp::Delete { app: app.clone(), key: key.to_owned() }).await.map(drop)
    }

    async fn list(
        &self,
        app: &AppKey,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
        now: i64,
    ) -> Result<Vec<KvKey>, StorageError> {
        // Keys compare as UTF-8 bytes (SQLite's BINARY collation), Workers' order.
        let rows = sqlx::query(
            "SELECT key, expiration, metadata FROM kv_entries
             WHERE namespace = ?1 AND app = ?2 AND key >= ?3 AND substr(key, 1, length(?3)) = ?3
               AND (?4 IS NULL OR key > ?4) AND (expiration IS NULL OR expiration > ?5)
             ORDER BY key LIMIT ?6",
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
        if let Some(count) =
            self.commit_write(WriteOp::Increment { app: app.clone(), key: key.to_owned(), by, now }).await?
        {
            return Ok(Ok(count));
        }
        let found = KvStore::get(self, app, key, now).await?;
        Ok(Err(found.map(|value| value.shown()).unwrap_or_default()))
    }

    async fn sweep_expired(&self, now: i64, limit: u32) -> Result<u64, StorageError> {
        let deleted = sqlx::query(
            "DELETE FROM kv_entries WHERE (namespace, app, key) IN
               (SELECT namespace, app, key FROM kv_entries WHERE expiration <= ?1 LIMIT ?2)",
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.kv_writer)
        .await
        .map_err(storage)?
        .rows_affected();
        Ok(deleted)
    }

    async fn delete_app(&self, app: &AppKey) -> Result<u64, StorageError> {
        let deleted = self.commit_write(WriteOp::DeleteApp { app: app.clone() }).await?;
        Ok(deleted.map_or(0, |count| u64::try_from(count).unwrap_or(0)))
    }

    async fn usage(&self, app: &AppKey) -> Result<KvUsage, StorageError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS keys, COALESCE(SUM(length(key) + length(value) + COALESCE(length(metadata), 0)), 0) AS bytes
             FROM kv_entries WHERE namespace = ?1 AND app = ?2",
        )
        .bind(&app.namespace)
        .bind(&app.name)
        .fetch_one(&self.pool)
        .await
        .map_err(storage)?;
        Ok(KvUsage { keys: row.get::<i64, _>("keys") as u64, bytes: row.get::<i64, _>("bytes") as u64 })
    }
}

async fn put(connection: &mut sqlx::SqliteConnection, app: &AppKey, write: &KvWrite, now: i64) -> WriteAnswer {
    let sql = match write.only_if {
        None => {
            "INSERT INTO kv_entries (namespace, app, key, value, metadata, expiration, version, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, random(), ?9)
             ON CONFLICT (namespace, app, key) DO UPDATE SET value = excluded.value,
               metadata = excluded.metadata, expiration = excluded.expiration, version = random(),
               sealed = excluded.sealed
             WHERE ?7 IS NULL AND ?8 IS NOT NULL
             RETURNING version"
        }
        // Written only where no live row is: an expired one counts as absent.
        Some(StoredCondition::Absent) => {
            "INSERT INTO kv_entries (namespace, app, key, value, metadata, expiration, version, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, random(), ?9)
             ON CONFLICT (namespace, app, key) DO UPDATE SET value = excluded.value,
               metadata = excluded.metadata, expiration = excluded.expiration, version = random(),
               sealed = excluded.sealed
             WHERE ?7 IS NULL AND kv_entries.expiration IS NOT NULL AND kv_entries.expiration <= ?8
             RETURNING version"
        }
        Some(StoredCondition::Version(_)) => {
            "UPDATE kv_entries SET value = ?4, metadata = ?5, expiration = ?6, version = random(), sealed = ?9
             WHERE namespace = ?1 AND app = ?2 AND key = ?3 AND version = ?7
               AND (expiration IS NULL OR expiration > ?8)
             RETURNING version"
        }
    };
    let expected = match write.only_if {
        Some(StoredCondition::Version(version)) => Some(version),
        _ => None,
    };
    let row = sqlx::query(sql)
        .bind(&app.namespace)
        .bind(&app.name)
        .bind(&write.key)
        .bind(write.value.as_ref())
        .bind(&write.metadata)
        .bind(write.expiration)
        .bind(expected)
        .bind(now)
        .bind(write.sealed)
        .fetch_optional(connection)
        .await
        .map_err(storage)?;
    Ok(row.map(|row| row.get("version")))
}

async fn increment(connection: &mut sqlx::SqliteConnection, app: &AppKey, key: &str, by: i64, now: i64) -> WriteAnswer {
    // One statement: a live integer is added to, an absent or expired key starts at `by`,
    // anything else is left alone (and no row comes back).
    let row = sqlx::query(
        "INSERT INTO kv_entries (namespace, app, key, value, metadata, expiration, version)
         VALUES (?1, ?2, ?3, CAST(CAST(?4 AS TEXT) AS BLOB), NULL, NULL, random())
         ON CONFLICT (namespace, app, key) DO UPDATE SET
           value = CASE WHEN kv_entries.expiration IS NOT NULL AND kv_entries.expiration <= ?5
                     THEN excluded.value
                     ELSE CAST(CAST(CAST(CAST(kv_entries.value AS TEXT) AS INTEGER) + ?4 AS TEXT) AS BLOB) END,
           expiration = CASE WHEN kv_entries.expiration IS NOT NULL AND kv_entries.expiration <= ?5
                          THEN NULL ELSE kv_entries.expiration END,
           version = random(), sealed = NULL
         WHERE (kv_entries.expiration IS NOT NULL AND kv_entries.expiration <= ?5)
            OR (kv_entries.sealed IS NULL
                AND CAST(kv_entries.value AS TEXT) = CAST(CAST(CAST(kv_entries.value AS TEXT) AS INTEGER) AS TEXT))
         RETURNING CAST(CAST(value AS TEXT) AS INTEGER) AS count",
    )
    .bind(&app.namespace)
    .bind(&app.name)
    .bind(key)
    .bind(by)
    .bind(now)
    .fetch_optional(connection)
    .await
    .map_err(storage)?;
    Ok(row.map(|row| row.get("count")))
}
