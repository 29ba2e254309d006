//! The egress log and the platform's metrics.
//!
//! Every outbound call of every app arrives here from the outbound HTTP capability, on the
//! request path: it is counted at once (Prometheus counters) and queued for the database, where
//! a writer stores it in batches. A full queue drops entries rather than slow apps down, and the
//! drops are counted too (`terrarium_egress_log_dropped_total`).

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use api_types::EgressEntry;
use runtime::{EgressRecord, EgressRecorder};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use crate::metrics::{EgressBytesLabels, EgressLabels, Metrics};
use crate::store::EgressLogStore;

/// Entries waiting for the database; beyond this they are dropped and counted.
const QUEUE_CAPACITY: usize = 16_384;
/// Entries written in one transaction.
const BATCH: usize = 512;
/// Prune the log after this many batches.
const PRUNE_EVERY_BATCHES: u64 = 200;

/// Receives egress records from apps' `fetch` and feeds the metrics and the egress log.
pub struct EgressLog {
    metrics: Arc<Metrics>,
    metering: Arc<crate::Metering>,
    queue: mpsc::Sender<EgressEntry>,
}

/// The egress log's database writer: stores queued entries in batches and keeps the newest
/// `keep`. The binary runs it ([`EgressWriter::run`]); it ends when every [`EgressLog`] is gone.
pub struct EgressWriter {
    store: Arc<dyn EgressLogStore>,
    receiver: mpsc::Receiver<EgressEntry>,
    keep: u64,
}

impl EgressLog {
    /// The recorder apps' `fetch` reports to, and the writer that stores what it queues.
    pub fn new(
        store: Arc<dyn EgressLogStore>,
        metrics: Arc<Metrics>,
        metering: Arc<crate::Metering>,
        keep: u64,
    ) -> (Arc<EgressLog>, EgressWriter) {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        (Arc::new(EgressLog { metrics, metering, queue }), EgressWriter { store, receiver, keep })
    }
}

impl EgressWriter {
    pub async fn run(self) {
        write_batches(self.store, self.receiver, self.keep).await;
    }
}

impl EgressRecorder for EgressLog {
    fn record(&self, record: EgressRecord) {
        let namespace = record.app.namespace.clone();
        let app = record.app.name.clone();
        let labels = EgressLabels {
            namespace: namespace.clone(),
            app: app.clone(),
            decision: record.decision.as_str(),
            code: record.code.unwrap_or(""),
        };
        self.metrics.egress_requests.get_or_create(&labels).inc();
        self.metering.record_outbound(&record.app, record.bytes_out + record.bytes_in);
        for (direction, bytes) in [("out", record.bytes_out), ("in", record.bytes_in)] {
            if bytes > 0 {
                let labels = EgressBytesLabels { namespace: namespace.clone(), app: app.clone(), direction };
                self.metrics.egress_bytes.get_or_create(&labels).inc_by(bytes);
            }
        }
        let entry = EgressEntry {
            id: 0,
            time: rfc3339(record.time),
            namespace,
            app,
            request_id: record.request_id,
            method: record.method,
            host: record.host,
            address: record.address.map(|address| address.to_string()),
            decision: record.decision.as_str().to_owned(),
            code: record.code.map(str::to_owned),
            status: record.status,
            bytes_out: record.bytes_out,
            bytes_in: record.bytes_in,
            duration_ms: record.duration.as_millis() as u64,
        };
        if self.queue.try_send(entry).is_err() {
            self.metrics.egress_log_dropped.inc();
        }
    }
}

fn rfc3339(time: std::time::SystemTime) -> String {
    let nanos = time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    let time = OffsetDateTime::from_unix_timestamp_nanos(nanos as i128).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    // Milliseconds: calls of one request are often within the same second.
    let time = time.replace_nanosecond(time.millisecond() as u32 * 1_000_000).unwrap_or(time);
    time.format(&Rfc3339).unwrap_or_default()
}

async fn write_batches(store: Arc<dyn EgressLogStore>, mut receiver: mpsc::Receiver<EgressEntry>, keep: u64) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut batches = 0u64;
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        if let Err(error) = store.append_egress(&batch).await {
            tracing::error!(%error, entries = batch.len(), "egress log entries could not be written");
        }
        batch.clear();
        batches += 1;
        if batches.is_multiple_of(PRUNE_EVERY_BATCHES)
            && let Err(error) = store.prune_egress(keep).await
        {
            tracing::error!(%error, "the egress log could not be pruned");
        }
    }
}
