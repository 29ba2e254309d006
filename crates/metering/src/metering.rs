//! Metering: every app request's usage, counted in memory and flushed to hourly and daily
//! roll-ups in the store every few seconds, so a crash loses at most one flush interval of
//! counts and never a whole period. The same usage feeds the Prometheus metrics at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deployment::AppKey;
use gateway::{Meter, RequestUsage};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::metrics::{AppCodeLabels, AppLabels, AppRefusedLabels, CacheLabels, DataOpLabels, Metrics};
use crate::store::{UsageCounts, UsageDelta, UsageStore};

pub struct Metering {
    /// "Now" for the hour a count lands in, and for budgets' month.
    pub clock: background::Clock,
    metrics: Arc<Metrics>,
    slo: Arc<crate::slo::SloTracker>,
    /// Counts not yet in the store, by app and hour (Unix seconds of the hour's start).
    pending: Mutex<HashMap<(AppKey, i64), UsageCounts>>,
    /// Held by a flush from taking the counts to their commit. A reader that holds it sees every
    /// count exactly once: either in the store or in `pending`.
    pub(crate) flush_lock: tokio::sync::Mutex<()>,
    store: Arc<dyn UsageStore>,
}

impl Metering {
    /// Starts the flusher on the current tokio runtime.
    /// Counts in memory; [`Metering::flush`] writes them (the `metering.flush` task).
    pub fn new(
        store: Arc<dyn UsageStore>,
        metrics: Arc<Metrics>,
        slo: Arc<crate::slo::SloTracker>,
        clock: background::Clock,
    ) -> Arc<Metering> {
        Arc::new(Metering {
            clock,
            metrics,
            slo,
            pending: Mutex::new(HashMap::new()),
            flush_lock: tokio::sync::Mutex::new(()),
            store,
        })
    }

    /// Writes the pending counts; on failure they are kept for the next flush.
    pub async fn flush(&self) {
        let _one_at_a_time = self.flush_lock.lock().await;
        let pending = std::mem::take(&mut *self.lock());
        if pending.is_empty() {
            return;
        }
        let deltas: Vec<UsageDelta> = pending
            .iter()
            .map(|((app, hour), counts)| UsageDelta { app: app.clone(), hour: hour_start(*hour), counts: *counts })
            .collect();
        if let Err(error) = self.store.add_usage(&deltas).await {
            tracing::error!(%error, "usage could not be written; retrying at the next flush");
            let mut current = self.lock();
            for (key, counts) in pending {
                current.entry(key).or_default().add(&counts);
            }
        }
    }

    /// Counts not flushed yet, per app (every hour summed). Hold `flush_lock` while reading this
    /// and the store together.
    pub fn pending(&self) -> HashMap<AppKey, UsageCounts> {
        let mut per_app: HashMap<AppKey, UsageCounts> = HashMap::new();
        for ((app, _), counts) in self.lock().iter() {
            per_app.entry(app.clone()).or_default().add(counts);
        }
        per_app
    }

    /// Counts an app's outbound call (from the egress log).
    pub fn record_outbound(&self, app: &AppKey, bytes: u64) {
        let counts = UsageCounts { outbound_requests: 1, outbound_bytes: bytes, ..UsageCounts::default() };
        self.add(app.clone(), &counts);
    }

    /// Records what an app stores now (the daily `data.storage` task measures it).
    pub fn record_storage(&self, app: &AppKey, bytes: u64) {
        let labels = AppLabels { namespace: app.namespace.clone(), app: app.name.clone() };
        self.metrics.app_storage_bytes.get_or_create(&labels).set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.add(app.clone(), &UsageCounts { storage_bytes_max: bytes, ..UsageCounts::default() });
    }

    fn add(&self, app: AppKey, counts: &UsageCounts) {
        let now = self.clock.now().unix_timestamp();
        let hour = now - now.rem_euclid(3600);
        self.lock().entry((app, hour)).or_default().add(counts);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(AppKey, i64), UsageCounts>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn hour_start(unix_hour: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_hour)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Meter for Metering {
    fn record(&self, usage: RequestUsage) {
        let app_labels = AppLabels { namespace: usage.app.namespace.clone(), app: usage.app.name.clone() };
        let mut counts = UsageCounts {
            bytes_in: usage.bytes_in,
            bytes_out: usage.bytes_out,
            duration_us: usage.duration.as_micros() as u64,
            ..UsageCounts::default()
        };
        match usage.refused {
            Some(reason) => {
                let labels =
                    AppRefusedLabels { namespace: app_labels.namespace.clone(), app: app_labels.app.clone(), reason };
                self.metrics.app_refused.get_or_create(&labels).inc();
                match reason {
                    "rate_limited" => counts.rate_limited = 1,
                    "busy" => {
                        // Overload is a failure as the app's users see it.
                        self.slo.observe(&usage.app, 503, usage.duration);
                        counts.busy = 1;
                    }
                    // A stopped app's refusals cost nothing and count toward nothing.
                    _ => return,
                }
            }
            None => {
                if let Some(result) = usage.cache {
                    let labels =
                        CacheLabels { namespace: app_labels.namespace.clone(), app: app_labels.app.clone(), result };
                    self.metrics.app_cache_responses.get_or_create(&labels).inc();
                    match result {
                        "hit" => {
                            self.metrics.app_cache_bytes_served.get_or_create(&app_labels).inc_by(usage.bytes_out);
                            counts.cache_hits = 1;
                            counts.cache_bytes_served = usage.bytes_out;
                        }
                        "miss" | "expired" => counts.cache_misses = 1,
                        _ => {}
                    }
                }
                let code = status_class(usage.status);
                let labels =
                    AppCodeLabels { namespace: app_labels.namespace.clone(), app: app_labels.app.clone(), code };
                self.metrics.app_requests.get_or_create(&labels).inc();
                self.metrics.app_duration.get_or_create(&app_labels).observe(usage.duration.as_secs_f64());
                if !usage.cpu.is_zero() {
                    self.metrics.app_cpu_seconds.get_or_create(&app_labels).inc_by(usage.cpu.as_secs_f64());
                }
                self.slo.observe(&usage.app, usage.status, usage.duration);
                counts.requests = 1;
                counts.cpu_us = usage.cpu.as_micros() as u64;
                counts.heap_bytes_max = usage.heap_bytes;
                match code {
                    "4xx" => counts.client_errors = 1,
                    "5xx" => counts.server_errors = 1,
                    _ => {}
                }
            }
        }
        self.add(usage.app, &counts);
    }
}

impl runtime::DataMeter for Metering {
    fn record_data(&self, app: &AppKey, ops: runtime::DataOps) {
        for (op, count) in [
            ("kv_read", ops.kv_reads),
            ("kv_write", ops.kv_writes),
            ("kv_list", ops.kv_lists),
            ("sql_row_read", ops.sql_rows_read),
            ("sql_row_written", ops.sql_rows_written),
            ("vector_query", ops.vector_queries),
            ("vector_written", ops.vectors_written),
            ("embedding_token", ops.embedding_tokens),
        ] {
            if count > 0 {
                let labels = DataOpLabels { namespace: app.namespace.clone(), app: app.name.clone(), op };
                self.metrics.app_data_ops.get_or_create(&labels).inc_by(count);
            }
        }
        let counts = UsageCounts {
            kv_reads: ops.kv_reads,
            kv_writes: ops.kv_writes,
            kv_lists: ops.kv_lists,
            sql_rows_read: ops.sql_rows_read,
            sql_rows_written: ops.sql_rows_written,
            vector_queries: ops.vector_queries,
            vectors_written: ops.vectors_written,
            embedding_tokens: ops.embedding_tokens,
            ..UsageCounts::default()
        };
        self.add(app.clone(), &counts);
    }
}
