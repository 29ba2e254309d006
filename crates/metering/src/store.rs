//! What metering stores: usage roll-ups and the egress log, behind traits the platform's store
//! implements, and what budgets need from the registry.

use api_types::EgressEntry;
use async_trait::async_trait;
use deployment::AppKey;

/// The storage failed; the message is the backend's.
#[derive(Debug, thiserror::Error)]
#[error("storage failed: {0}")]
pub struct StorageError(pub String);

/// Which egress log entries to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct EgressFilter {
    pub namespace: Option<String>,
    pub app: Option<String>,
    /// Only denied and failed calls.
    pub denied_only: bool,
    pub limit: u32,
}

/// The egress log: every outbound request of every app. `id` of appended entries is ignored.
#[async_trait]
pub trait EgressLogStore: Send + Sync + 'static {
    async fn append_egress(&self, entries: &[EgressEntry]) -> Result<(), StorageError>;
    async fn list_egress(&self, filter: EgressFilter) -> Result<Vec<EgressEntry>, StorageError>;
    /// Keeps the newest `keep` entries and deletes the rest.
    async fn prune_egress(&self, keep: u64) -> Result<u64, StorageError>;
}

/// Counts of app requests in one period: adding two periods adds every field (the heap
/// high-water mark takes the larger).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Requests admitted and answered, whatever their status.
    pub requests: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    /// Refused by admission: over the rate limit (429) and over the concurrency cap (503).
    pub rate_limited: u64,
    pub busy: u64,
    pub cpu_us: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Sum of request durations, for the mean.
    pub duration_us: u64,
    /// Outbound `fetch` calls and their body bytes (sent and received).
    pub outbound_requests: u64,
    pub outbound_bytes: u64,
    /// The largest function heap at the end of a request in the period (a maximum, not a sum).
    pub heap_bytes_max: u64,
    /// Key-value calls: reads, writes (puts, deletes, increments) and lists.
    pub kv_reads: u64,
    pub kv_writes: u64,
    pub kv_lists: u64,
    /// Rows SQL statements read and wrote.
    pub sql_rows_read: u64,
    pub sql_rows_written: u64,
    /// The most the app stored (key-value and SQL) at a daily measure in the period (a maximum).
    pub storage_bytes_max: u64,
    /// Requests the gateway's response cache answered without running the app, requests it
    /// looked up and did not find fresh (the app ran), and the body bytes it served.
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_bytes_served: u64,
    /// Vector searches, vectors written (inserted, upserted, deleted) and the tokens the
    /// platform's embedding model read for the app.
    pub vector_queries: u64,
    pub vectors_written: u64,
    pub embedding_tokens: u64,
}

impl UsageCounts {
    pub fn add(&mut self, other: &UsageCounts) {
        self.requests += other.requests;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        self.rate_limited += other.rate_limited;
        self.busy += other.busy;
        self.cpu_us += other.cpu_us;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.duration_us += other.duration_us;
        self.outbound_requests += other.outbound_requests;
        self.outbound_bytes += other.outbound_bytes;
        self.heap_bytes_max = self.heap_bytes_max.max(other.heap_bytes_max);
        self.kv_reads += other.kv_reads;
        self.kv_writes += other.kv_writes;
        self.kv_lists += other.kv_lists;
        self.sql_rows_read += other.sql_rows_read;
        self.sql_rows_written += other.sql_rows_written;
        self.storage_bytes_max = self.storage_bytes_max.max(other.storage_bytes_max);
        self.cache_hits += other.cache_hits;
        self.cache_misses += other.cache_misses;
        self.cache_bytes_served += other.cache_bytes_served;
        self.vector_queries += other.vector_queries;
        self.vectors_written += other.vectors_written;
        self.embedding_tokens += other.embedding_tokens;
    }
}

/// Counts to add to one app's hour (and the day it is in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageDelta {
    pub app: AppKey,
    /// The hour's start, RFC 3339 UTC (`2026-11-22T06:00:00Z`).
    pub hour: String,
    pub counts: UsageCounts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsagePeriod {
    Hour,
    Day,
}

#[derive(Clone, Debug)]
pub struct UsageFilter {
    pub namespace: Option<String>,
    pub app: Option<String>,
    pub period: UsagePeriod,
    /// Periods starting at or after `from` and before `to` (RFC 3339 UTC).
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRow {
    pub app: AppKey,
    /// The period's start, RFC 3339 UTC.
    pub start: String,
    pub counts: UsageCounts,
}

/// Durable usage roll-ups per app per hour and per day.
#[async_trait]
pub trait UsageStore: Send + Sync + 'static {
    /// Adds every delta to its hour and its day, in one transaction.
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<(), StorageError>;
    async fn usage(&self, filter: UsageFilter) -> Result<Vec<UsageRow>, StorageError>;
}

/// What budgets need from the registry: every app's owner, and the audit log.
#[async_trait]
pub trait AppDirectory: Send + Sync + 'static {
    /// Every app with its owner (`user:ana`, `group:growth`).
    async fn owners(&self) -> Result<Vec<(AppKey, String)>, StorageError>;
    async fn append_audit(&self, event: audit::AuditEvent) -> Result<(), StorageError>;
}
