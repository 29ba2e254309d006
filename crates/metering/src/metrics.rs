//! The platform's Prometheus metrics. Label sets are bounded: namespaces and apps are the
//! registered ones; decisions, codes, status classes and refusal reasons are fixed lists.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AppLabels {
    pub(crate) namespace: String,
    pub(crate) app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AppCodeLabels {
    pub(crate) namespace: String,
    pub(crate) app: String,
    /// The status class: `2xx`, `3xx`, `4xx` or `5xx`.
    pub(crate) code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AppRefusedLabels {
    pub(crate) namespace: String,
    pub(crate) app: String,
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EgressLabels {
    pub(crate) namespace: String,
    pub(crate) app: String,
    pub(crate) decision: &'static str,
    /// The denial or failure code (bounded), empty when allowed.
    pub(crate) code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EgressBytesLabels {
    pub(crate) namespace: String,
    pub(crate) app: String,
    /// `out` (request bodies) or `in` (response bodies).
    pub(crate) direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CacheLabels {
    pub(crate) namespace: String,
    pub(crate) app: String,
    /// `hit`, `miss`, `expired` or `bypass`.
    pub(crate) result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DataOpLabels {
    pub(crate) namespace: String,
    pub(crate) app: String,
    /// `kv_read`, `kv_write`, `kv_list`, `sql_row_read` or `sql_row_written`.
    pub(crate) op: &'static str,
}

/// The platform's Prometheus registry. Label sets are bounded: namespaces and apps are the
/// registered ones, decisions and codes are fixed lists.
pub struct Metrics {
    registry: Registry,
    pub(crate) egress_requests: Family<EgressLabels, Counter>,
    pub(crate) egress_bytes: Family<EgressBytesLabels, Counter>,
    pub(crate) egress_log_dropped: Counter,
    pub(crate) app_requests: Family<AppCodeLabels, Counter>,
    pub(crate) app_refused: Family<AppRefusedLabels, Counter>,
    pub(crate) app_duration: Family<AppLabels, Histogram>,
    pub(crate) app_cpu_seconds: Family<AppLabels, Counter<f64, AtomicU64>>,
    /// Month-to-date cost per app, in the price table's currency.
    pub(crate) app_spend: Family<AppLabels, Gauge<f64, AtomicU64>>,
    /// Apps' data calls (key-value operations, SQL rows) and what they store.
    pub(crate) app_data_ops: Family<DataOpLabels, Counter>,
    pub(crate) app_cache_responses: Family<CacheLabels, Counter>,
    pub(crate) app_cache_bytes_served: Family<AppLabels, Counter>,
    pub(crate) app_storage_bytes: Family<AppLabels, Gauge>,
    /// Platform health: apps serving, apps stopped by budgets or quotas, up since.
    pub(crate) apps_live: Gauge,
    pub(crate) apps_suspended: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("terrarium");
        let egress_requests = Family::<EgressLabels, Counter>::default();
        registry.register(
            "egress_requests",
            "Outbound requests of apps by decision (allowed, denied, failed)",
            egress_requests.clone(),
        );
        let egress_bytes = Family::<EgressBytesLabels, Counter>::default();
        registry.register("egress_bytes", "Body bytes of apps' outbound requests and responses", egress_bytes.clone());
        let egress_log_dropped = Counter::default();
        registry.register(
            "egress_log_dropped",
            "Egress log entries dropped because the database writer fell behind",
            egress_log_dropped.clone(),
        );
        let app_requests = Family::<AppCodeLabels, Counter>::default();
        registry.register(
            "app_requests",
            "Requests to apps by status class (2xx, 3xx, 4xx, 5xx)",
            app_requests.clone(),
        );
        let app_refused = Family::<AppRefusedLabels, Counter>::default();
        registry.register(
            "app_refused",
            "Requests the platform answered in the app's place, by reason: rate_limited (429), busy (503), suspended (402/429), sign_in_required, forbidden",
            app_refused.clone(),
        );
        let app_duration = Family::<AppLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        registry.register(
            "app_request_duration_seconds",
            "Time to the response head of app requests",
            app_duration.clone(),
        );
        let app_cpu_seconds = Family::<AppLabels, Counter<f64, AtomicU64>>::default();
        registry.register("app_cpu_seconds", "CPU time spent in apps' functions", app_cpu_seconds.clone());
        let app_spend = Family::<AppLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "app_spend",
            "Month-to-date cost of each app in the price table's currency",
            app_spend.clone(),
        );
        let app_data_ops = Family::<DataOpLabels, Counter>::default();
        registry.register(
            "app_data_operations",
            "Apps' data calls by kind: kv_read, kv_write, kv_list, SQL rows sql_row_read, sql_row_written, vector_query, vector_written, embedding_token",
            app_data_ops.clone(),
        );
        let app_cache_responses = Family::<CacheLabels, Counter>::default();
        registry.register(
            "app_cache_responses",
            "App responses by what the response cache did: hit (served from it), miss (stored), expired, bypass (not storable)",
            app_cache_responses.clone(),
        );
        let app_cache_bytes_served = Family::<AppLabels, Counter>::default();
        registry.register(
            "app_cache_bytes_served",
            "Body bytes of app responses served from the response cache",
            app_cache_bytes_served.clone(),
        );
        let app_storage_bytes = Family::<AppLabels, Gauge>::default();
        registry.register(
            "app_storage_bytes",
            "Bytes each app stores (key-value and SQL), as last measured",
            app_storage_bytes.clone(),
        );
        let apps_live = Gauge::default();
        registry.register("apps_live", "Apps the gateway serves", apps_live.clone());
        let apps_suspended = Gauge::default();
        registry.register(
            "apps_suspended",
            "Apps stopped because a budget or monthly quota is used up",
            apps_suspended.clone(),
        );
        let start_time_seconds: Gauge = Gauge::default();
        start_time_seconds.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs() as i64),
        );
        registry.register(
            "process_start_time_seconds",
            "When this server started, in Unix seconds",
            start_time_seconds.clone(),
        );
        Metrics {
            registry,
            egress_requests,
            egress_bytes,
            egress_log_dropped,
            app_requests,
            app_refused,
            app_duration,
            app_cpu_seconds,
            app_spend,
            app_data_ops,
            app_cache_responses,
            app_cache_bytes_served,
            app_storage_bytes,
            apps_live,
            apps_suspended,
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String never fails");
        text
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}
