//! Usage roll-ups in SQLite: each flush adds its counts to the hour and the day, in one transaction.

use async_trait::async_trait;
use deployment::AppKey;
use metering::StorageError;
use metering::store::{UsageCounts, UsageDelta, UsageFilter, UsagePeriod, UsageRow, UsageStore};
use sqlx::Row;

use crate::{BEGIN_WRITE, SqliteStore, storage};

/// The upsert of one period's counts into `$table`, adding to what is there.
macro_rules! upsert {
    ($table:literal) => {
        concat!(
            "INSERT INTO ", $table, " (namespace, app, start, requests, client_errors, server_errors, rate_limited, busy,
                                       cpu_us, bytes_in, bytes_out, duration_us, outbound_requests, outbound_bytes,
                                       heap_bytes_max, kv_reads, kv_writes, kv_lists, sql_rows_read, sql_rows_written,
                                       storage_bytes_max, cache_hits, cache_misses, cache_bytes_served,
                                       vector_queries, vectors_written, embedding_tokens)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (namespace, app, start) DO UPDATE SET
               requests = requests + excluded.requests, client_errors = client_errors + excluded.client_errors,
               server_errors = server_errors + excluded.server_errors, rate_limited = rate_limited + excluded.rate_limited,
               busy = busy + excluded.busy, cpu_us = cpu_us + excluded.cpu_us, bytes_in = bytes_in + excluded.bytes_in,
               bytes_out = bytes_out + excluded.bytes_out, duration_us = duration_us + excluded.duration_us,
               outbound_requests = outbound_requests + excluded.outbound_requests,
               outbound_bytes = outbound_bytes + excluded.outbound_bytes,
               heap_bytes_max = MAX(heap_bytes_max, excluded.heap_bytes_max),
               kv_reads = kv_reads + excluded.kv_reads, kv_writes = kv_writes + excluded.kv_writes,
               kv_lists = kv_lists + excluded.kv_lists, sql_rows_read = sql_rows_read + excluded.sql_rows_read,
               sql_rows_written = sql_rows_written + excluded.sql_rows_written,
               storage_bytes_max = MAX(storage_bytes_max, excluded.storage_bytes_max),
               cache_hits = cache_hits + excluded.cache_hits, cache_misses = cache_misses + excluded.cache_misses,
               cache_bytes_served = cache_bytes_served + excluded.cache_bytes_served,
               vector_queries = vector_queries + excluded.vector_queries,
               vectors_written = vectors_written + excluded.vectors_written,
               embedding_tokens = embedding_tokens + excluded.embedding_tokens"
        )
    };
}

/// The rows of `$table` in a range.
macro_rules! select {
    ($table:literal) => {
        concat!(
            "SELECT * FROM ",
            $table,
            " WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR app = ?2)
             AND start >= ?3 AND start < ?4 ORDER BY namespace, app, start"
        )
    };
}

fn values(counts: &UsageCounts) -> [u64; 24] {
    [
        counts.requests,
        counts.client_errors,
        counts.server_errors,
        counts.rate_limited,
        counts.busy,
        counts.cpu_us,
        counts.bytes_in,
        counts.bytes_out,
        counts.duration_us,
        counts.outbound_requests,
        counts.outbound_bytes,
        counts.heap_bytes_max,
        counts.kv_reads,
        counts.kv_writes,
        counts.kv_lists,
        counts.sql_rows_read,
        counts.sql_rows_written,
        counts.storage_bytes_max,
        counts.cache_hits,
        counts.cache_misses,
        counts.cache_bytes_served,
        counts.vector_queries,
        counts.vectors_written,
        counts.embedding_tokens,
    ]
}

#[async_trait]
impl UsageStore for SqliteStore {
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<(), StorageError> {
        let hourly: &'static str = upsert!("usage_hourly");
        let daily: &'static str = upsert!("usage_daily");
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(storage)?;
        for delta in deltas {
            // `2026-11-22T06:00:00Z` → its day `2026-11-22T00:00:00Z`.
            let day = format!("{}T00:00:00Z", delta.hour.get(..10).unwrap_or_default());
            for (sql, start) in [(hourly, &delta.hour), (daily, &day)] {
                let mut query = sqlx::query(sql).bind(&delta.app.namespace).bind(&delta.app.name).bind(start);
                for value in values(&delta.counts) {
                    query = query.bind(i64::try_from(value).unwrap_or(i64::MAX));
                }
                query.execute(&mut *tx).await.map_err(storage)?;
            }
        }
        tx.commit().await.map_err(storage)
    }

    async fn usage(&self, filter: UsageFilter) -> Result<Vec<UsageRow>, StorageError> {
        let sql: &'static str = match filter.period {
            UsagePeriod::Hour => select!("usage_hourly"),
            UsagePeriod::Day => select!("usage_daily"),
        };
        let rows = sqlx::query(sql)
            .bind(&filter.namespace)
            .bind(&filter.app)
            .bind(&filter.from)
            .bind(&filter.to)
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?;
        Ok(rows
            .iter()
            .map(|row| {
                let get = |column: &str| row.get::<i64, _>(column).max(0) as u64;
                UsageRow {
                    app: AppKey::new(row.get::<String, _>("namespace"), row.get::<String, _>("app")),
                    start: row.get("start"),
                    counts: UsageCounts {
                        requests: get("requests"),
                        client_errors: get("client_errors"),
                        server_errors: get("server_errors"),
                        rate_limited: get("rate_limited"),
                        busy: get("busy"),
                        cpu_us: get("cpu_us"),
                        bytes_in: get("bytes_in"),
                        bytes_out: get("bytes_out"),
                        duration_us: get("duration_us"),
                        outbound_requests: get("outbound_requests"),
                        outbound_bytes: get("outbound_bytes"),
                        heap_bytes_max: get("heap_bytes_max"),
                        kv_reads: get("kv_reads"),
                        kv_writes: get("kv_writes"),
                        kv_lists: get("kv_lists"),
                        sql_rows_read: get("sql_rows_read"),
                        sql_rows_written: get("sql_rows_written"),
                        storage_bytes_max: get("storage_bytes_max"),
                        cache_hits: get("cache_hits"),
                        cache_misses: get("cache_misses"),
                        cache_bytes_served: get("cache_bytes_served"),
                        vector_queries: get("vector_queries"),
                        vectors_written: get("vectors_written"),
                        embedding_tokens: get("embedding_tokens"),
                    },
                }
            })
            .collect())
    }
}
