//! Cost and budgets: the operator's price table turns metered usage into money; budgets per
//! app (`spec.quotas.monthlyBudget`), per namespace and per owner raise alerts at thresholds and,
//! with a hard stop, suspend apps (402) until the budget is raised or the month ends. Monthly
//! request quotas (`spec.quotas.monthlyRequests`) suspend with 429 the same way.
//!
//! Evaluated every few seconds from the roll-ups plus the counts not flushed yet, so a stop
//! lands within one evaluation of the limit being reached, never a whole period late.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use deployment::AppKey;
use gateway::{Allowance, RoutingTable, Suspension, Suspensions};
use time::OffsetDateTime;

use audit::{Action, Outcome};

use crate::Metering;
use crate::store::{AppDirectory, UsageCounts, UsageFilter, UsagePeriod, UsageStore};
use crate::{MeteringError, month_range};
use notify::{Notification, Notifier};

/// The operator's prices, from `terrarium.toml`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pricing {
    /// ISO 4217; budgets in another currency are ignored with a warning.
    pub currency: String,
    pub per_million_requests: f64,
    pub per_cpu_second: f64,
    /// Per GB (10^9 bytes) of response bodies sent by apps.
    pub per_gb_out: f64,
    /// Per million key-value reads, writes and lists.
    pub per_million_kv_reads: f64,
    pub per_million_kv_writes: f64,
    pub per_million_kv_lists: f64,
    /// Per million rows SQL statements read and wrote.
    pub per_million_sql_rows_read: f64,
    pub per_million_sql_rows_written: f64,
    /// Per GB a month of stored data, on the period's largest daily measure.
    pub per_gb_month_stored: f64,
    /// Per million requests the response cache answered without running the app (instead of
    /// the request price).
    pub per_million_cache_hits: f64,
    /// Per million vector searches and vectors written, and per million tokens the platform's
    /// embedding model reads.
    pub per_million_vector_queries: f64,
    pub per_million_vectors_written: f64,
    pub per_million_embedding_tokens: f64,
}

impl Pricing {
    pub fn cost(&self, counts: &UsageCounts) -> f64 {
        let hits = counts.cache_hits.min(counts.requests);
        (counts.requests - hits) as f64 / 1e6 * self.per_million_requests
            + hits as f64 / 1e6 * self.per_million_cache_hits
            + counts.cpu_us as f64 / 1e6 * self.per_cpu_second
            + counts.bytes_out as f64 / 1e9 * self.per_gb_out
            + counts.kv_reads as f64 / 1e6 * self.per_million_kv_reads
            + counts.kv_writes as f64 / 1e6 * self.per_million_kv_writes
            + counts.kv_lists as f64 / 1e6 * self.per_million_kv_lists
            + counts.sql_rows_read as f64 / 1e6 * self.per_million_sql_rows_read
            + counts.sql_rows_written as f64 / 1e6 * self.per_million_sql_rows_written
            + counts.storage_bytes_max as f64 / 1e9 * self.per_gb_month_stored
            + counts.vector_queries as f64 / 1e6 * self.per_million_vector_queries
            + counts.vectors_written as f64 / 1e6 * self.per_million_vectors_written
            + counts.embedding_tokens as f64 / 1e6 * self.per_million_embedding_tokens
    }

    /// What one app's cache hits would have cost more had the app run for each: the request
    /// price instead of the hit price, and the CPU of the app's mean run. An estimate from the
    /// app's own runs in the same counts; zero without hits or without a run to go by.
    pub fn saved_by_cache(&self, counts: &UsageCounts) -> f64 {
        let hits = counts.cache_hits.min(counts.requests);
        let runs = counts.requests - hits;
        if hits == 0 || runs == 0 {
            return 0.0;
        }
        let cpu_per_run = counts.cpu_us as f64 / runs as f64 / 1e6;
        let per_hit =
            (self.per_million_requests - self.per_million_cache_hits) / 1e6 + cpu_per_run * self.per_cpu_second;
        (hits as f64 * per_hit).max(0.0)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BudgetSettings {
    pub pricing: Pricing,
    /// Alert thresholds in percent of a budget, ascending (default 50, 80, 100).
    pub thresholds: Vec<u32>,
    /// Suspend an app (402) once a budget that covers it is used up.
    pub hard_stop: bool,
    /// Monthly budgets per namespace and per owner (`user:ana`, `group:growth`).
    pub namespaces: BTreeMap<String, f64>,
    pub owners: BTreeMap<String, f64>,
}

/// A budget and what it covers, for one evaluation.
struct Scope {
    /// `app:it/x`, `namespace:it`, `owner:user:ana`.
    name: String,
    amount: f64,
    spent: f64,
    apps: Vec<AppKey>,
}

/// One row of a chargeback export.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChargebackRow {
    /// The namespace or the owner.
    pub key: String,
    pub apps: u64,
    pub requests: u64,
    pub cpu_seconds: f64,
    pub bytes_out: u64,
    pub cost: f64,
    pub currency: String,
    /// Requests answered from the response cache, and what they would have cost more had the
    /// apps run for them (`Pricing::saved_by_cache`).
    #[serde(default)]
    pub cache_hits: u64,
    #[serde(default)]
    pub saved_by_cache: f64,
}

/// What budgets read and act on: usage (stored and still in memory), owners, the live apps,
/// the gateway's suspensions, the notifier, SLO windows and metrics.
pub struct BudgetParts {
    pub usage: Arc<dyn UsageStore>,
    pub registry: Arc<dyn AppDirectory>,
    pub metering: Arc<Metering>,
    pub routes: Arc<RoutingTable>,
    pub suspensions: Arc<Suspensions>,
    pub notifier: Arc<Notifier>,
    pub slo: Arc<crate::slo::SloTracker>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

pub struct Budgets {
    settings: BudgetSettings,
    usage: Arc<dyn UsageStore>,
    registry: Arc<dyn AppDirectory>,
    metering: Arc<Metering>,
    routes: Arc<RoutingTable>,
    suspensions: Arc<Suspensions>,
    notifier: Arc<Notifier>,
    slo: Arc<crate::slo::SloTracker>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Budgets {
    pub fn new(settings: BudgetSettings, parts: BudgetParts) -> Budgets {
        let BudgetParts { usage, registry, metering, routes, suspensions, notifier, slo, metrics } = parts;
        Budgets { settings, usage, registry, metering, routes, suspensions, notifier, slo, metrics }
    }

    /// Month-to-date usage per app: the roll-ups plus what is not flushed yet.
    async fn month_to_date(&self, month: Option<&str>) -> Result<HashMap<AppKey, UsageCounts>, MeteringError> {
        let (from, to) = month_range(month, self.metering.clock.now())?;
        let filter = UsageFilter { namespace: None, app: None, period: UsagePeriod::Day, from, to };
        // No flush may move counts from memory to the store between the two reads.
        let _no_flush = self.metering.flush_lock.lock().await;
        let mut per_app: HashMap<AppKey, UsageCounts> = HashMap::new();
        for row in self.usage.usage(filter).await? {
            per_app.entry(row.app).or_default().add(&row.counts);
        }
        if month.is_none() {
            for (app, counts) in self.metering.pending() {
                per_app.entry(app).or_default().add(&counts);
            }
        }
        Ok(per_app)
    }

    /// One evaluation at the metering clock's "now" (the `budgets.evaluate` task).
    pub async fn evaluate_now(&self) -> Result<(), MeteringError> {
        self.evaluate(self.metering.clock.now()).await
    }

    /// One evaluation: alerts for thresholds crossed, and the set of suspended apps.
    pub async fn evaluate(&self, now_time: OffsetDateTime) -> Result<(), MeteringError> {
        let month = format!("{:04}-{:02}", now_time.year(), u8::from(now_time.month()));
        let usage = self.month_to_date(None).await?;
        let pricing = &self.settings.pricing;
        let cost_of = |app: &AppKey| usage.get(app).map_or(0.0, |counts| pricing.cost(counts));

        let live = self.routes.all();
        self.metrics.apps_live.set(live.len() as i64);
        for app in &live {
            let labels = crate::metrics::AppLabels {
                namespace: app.deployment.app.namespace.clone(),
                app: app.deployment.app.name.clone(),
            };
            self.metrics.app_spend.get_or_create(&labels).set(cost_of(&app.deployment.app));
        }
        // SLOs are evaluated on the same beat: objectives from the live deployments, then alerts.
        let objectives = live
            .iter()
            .filter_map(|app| {
                let slo = app.deployment.slo?;
                Some((
                    app.deployment.app.clone(),
                    crate::slo::Objectives { availability: slo.availability, latency_p95_ms: slo.latency_p95_ms },
                ))
            })
            .collect();
        self.slo.set_objectives(objectives);
        self.slo.alert(&self.notifier).await;
        let mut scopes: Vec<Scope> = Vec::new();
        let mut namespace_apps: BTreeMap<String, Vec<AppKey>> = BTreeMap::new();
        let mut owner_apps: BTreeMap<String, Vec<AppKey>> = BTreeMap::new();
        let mut suspended: HashMap<AppKey, Suspension> = HashMap::new();
        let mut allowances: HashMap<AppKey, Arc<Allowance>> = HashMap::new();
        let seconds_to_next_month = seconds_until_next_month(now_time);
        for app in &live {
            let deployment = &app.deployment;
            let key = deployment.app.clone();
            namespace_apps.entry(key.namespace.clone()).or_default().push(key.clone());
            owner_apps.entry(deployment.access.owner.clone()).or_default().push(key.clone());
            if let Some(budget) = &deployment.monthly_budget {
                if budget.currency == pricing.currency {
                    scopes.push(Scope {
                        name: format!("app:{key}@{}", budget.amount),
                        amount: budget.amount,
                        spent: cost_of(&key),
                        apps: vec![key.clone()],
                    });
                } else {
                    tracing::warn!(namespace = %key.namespace, app = %key.name, "spec.quotas.monthlyBudget is in {}, but prices are in {}; the budget is not enforced", budget.currency, pricing.currency);
                }
            }
            if let Some(quota) = deployment.monthly_requests {
                let requests = usage.get(&key).map_or(0, |counts| counts.requests);
                let exhausted = Suspension {
                    status: 429,
                    reason: format!(
                        "its monthly quota of {quota} requests is used up in {month}; it resets at the start of next month, or raise spec.quotas.monthlyRequests and deploy again"
                    ),
                    retry_after_secs: Some(seconds_to_next_month),
                };
                if requests >= quota {
                    suspended.insert(key.clone(), exhausted.clone());
                }
                // The gateway counts down between evaluations, so the quota holds to the request.
                let remaining = i64::try_from(quota.saturating_sub(requests)).unwrap_or(i64::MAX);
                allowances.insert(
                    key.clone(),
                    Arc::new(Allowance { remaining: std::sync::atomic::AtomicI64::new(remaining), exhausted }),
                );
            }
        }
        // Namespace and owner budgets count every app's spending this month, including apps
        // deleted since (by namespace) and apps not serving; they stop the live ones.
        let owners: HashMap<AppKey, String> = match self.settings.owners.is_empty() {
            true => HashMap::new(),
            false => self.registry.owners().await?.into_iter().collect(),
        };
        for (namespace, amount) in &self.settings.namespaces {
            let apps = namespace_apps.get(namespace).cloned().unwrap_or_default();
            let spent = usage
                .iter()
                .filter(|(app, _)| app.namespace == *namespace)
                .map(|(_, counts)| pricing.cost(counts))
                .sum();
            scopes.push(Scope { name: format!("namespace:{namespace}@{amount}"), amount: *amount, spent, apps });
        }
        for (owner, amount) in &self.settings.owners {
            let apps = owner_apps.get(owner).cloned().unwrap_or_default();
            let spent = usage
                .iter()
                .filter(|(app, _)| owners.get(*app).is_some_and(|app_owner| app_owner == owner))
                .map(|(_, counts)| pricing.cost(counts))
                .sum();
            scopes.push(Scope { name: format!("owner:{owner}@{amount}"), amount: *amount, spent, apps });
        }

        for scope in &scopes {
            let percent = if scope.amount > 0.0 { scope.spent / scope.amount * 100.0 } else { f64::INFINITY };
            for &threshold in &self.settings.thresholds {
                if percent < f64::from(threshold) {
                    continue;
                }
                let key = format!("budget.threshold {} {month} {threshold}", scope.name);
                let (what, _) = scope.name.split_once('@').unwrap_or((&scope.name, ""));
                let subject = format!(
                    "{what} has used {threshold} % of its monthly budget ({:.2} of {:.2} {})",
                    scope.spent, scope.amount, pricing.currency
                );
                let text = format!(
                    "In {month}, {what} has spent {:.4} {} of its {:.2} {} budget.{}",
                    scope.spent,
                    pricing.currency,
                    scope.amount,
                    pricing.currency,
                    match (threshold >= 100, self.settings.hard_stop) {
                        (true, true) => " Its apps are stopped until the budget is raised or the month ends.",
                        _ => "",
                    }
                );
                let details = serde_json::json!({
                    "scope": what, "month": month, "threshold": threshold,
                    "spent": scope.spent, "budget": scope.amount, "currency": pricing.currency,
                    "apps": scope.apps.iter().map(ToString::to_string).collect::<Vec<_>>(),
                });
                self.notifier
                    .notify_once(&key, Notification { kind: "budget.threshold", subject, text, details })
                    .await;
            }
            if self.settings.hard_stop && scope.spent >= scope.amount {
                let (what, _) = scope.name.split_once('@').unwrap_or((&scope.name, ""));
                for app in &scope.apps {
                    suspended.entry(app.clone()).or_insert_with(|| Suspension {
                        status: 402,
                        reason: format!(
                            "the monthly budget of {what} ({:.2} {}) is used up; it is lifted when the budget is raised or at the start of next month",
                            scope.amount, pricing.currency
                        ),
                        retry_after_secs: None,
                    });
                }
            }
        }
        self.suspensions.replace_allowances(allowances);
        self.apply(suspended, &month).await;
        Ok(())
    }

    /// Swaps in the new set of suspended apps, auditing what changed.
    async fn apply(&self, suspended: HashMap<AppKey, Suspension>, month: &str) {
        let before = self.suspensions.all();
        for (app, suspension) in &suspended {
            if before.get(app) != Some(suspension) {
                self.audit(app, Action::AppSuspend, &suspension.reason).await;
                let key = format!("app.suspended {app} {month} {}", suspension.status);
                let notification = Notification {
                    kind: "app.suspended",
                    subject: format!("{app} is stopped"),
                    text: format!("{app} is stopped: {}", suspension.reason),
                    details: serde_json::json!({ "app": app.to_string(), "status": suspension.status }),
                };
                self.notifier.notify_once(&key, notification).await;
            }
        }
        for app in before.keys() {
            if !suspended.contains_key(app) {
                self.audit(app, Action::AppResume, "its budget or quota allows requests again").await;
            }
        }
        self.metrics.apps_suspended.set(suspended.len() as i64);
        self.suspensions.replace(suspended);
    }

    async fn audit(&self, app: &AppKey, action: Action, detail: &str) {
        let event = audit::AuditEvent::new("terrarium", action, Outcome::Success).app(app).detail(detail);
        if let Err(error) = self.registry.append_audit(event).await {
            tracing::error!(%error, "audit event could not be written");
        }
    }

    /// The monthly budget of a namespace, or of an owner (`user:ana`, `group:growth`).
    pub fn budget_for(&self, by_owner: bool, key: &str) -> Option<f64> {
        match by_owner {
            true => self.settings.owners.get(key).copied(),
            false => self.settings.namespaces.get(key).copied(),
        }
    }

    /// One app's cost for a month (`YYYY-MM`, this month by default) at the configured prices,
    /// with the currency. The caller has checked that the reader may see the app's usage.
    pub async fn app_cost(&self, app: &AppKey, month: Option<&str>) -> Result<(f64, String), MeteringError> {
        let usage = self.month_to_date(month).await?;
        let pricing = &self.settings.pricing;
        Ok((usage.get(app).map_or(0.0, |counts| pricing.cost(counts)), pricing.currency.clone()))
    }

    /// Cost per namespace or per owner for a month (`YYYY-MM`, this month by default).
    pub async fn chargeback(&self, month: Option<&str>, by_owner: bool) -> Result<Vec<ChargebackRow>, MeteringError> {
        let usage = self.month_to_date(month).await?;
        let owners: HashMap<AppKey, String> = self.registry.owners().await?.into_iter().collect();
        let pricing = &self.settings.pricing;
        let mut rows: BTreeMap<String, (u64, UsageCounts, f64)> = BTreeMap::new();
        for (app, counts) in &usage {
            let key = match by_owner {
                true => owners.get(app).cloned().unwrap_or_else(|| "(deleted app)".to_owned()),
                false => app.namespace.clone(),
            };
            let entry = rows.entry(key).or_default();
            entry.0 += 1;
            entry.1.add(counts);
            // Each app's saving by its own mean run, not the row's.
            entry.2 += pricing.saved_by_cache(counts);
        }
        Ok(rows
            .into_iter()
            .map(|(key, (apps, counts, saved_by_cache))| ChargebackRow {
                key,
                apps,
                requests: counts.requests,
                cpu_seconds: counts.cpu_us as f64 / 1e6,
                bytes_out: counts.bytes_out,
                cost: pricing.cost(&counts),
                currency: pricing.currency.clone(),
                cache_hits: counts.cache_hits,
                saved_by_cache,
            })
            .collect())
    }
}

fn seconds_until_next_month(now: OffsetDateTime) -> u64 {
    let (year, month) = match u8::from(now.month()) {
        12 => (now.year() + 1, 1),
        month => (now.year(), month + 1),
    };
    let next = time::Date::from_calendar_date(year, time::Month::try_from(month).unwrap_or(time::Month::January), 1)
        .map(|date| date.midnight().assume_utc())
        .unwrap_or(now);
    (next - now).whole_seconds().max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_turns_into_money_by_the_price_table() {
        let pricing = crate::config::PricingConfig::default().build();
        let counts = UsageCounts {
            requests: 2_000_000,
            cpu_us: 500_000_000,
            bytes_out: 10_000_000_000,
            ..UsageCounts::default()
        };
        let cost = pricing.cost(&counts);
        assert!((cost - (0.80 + 0.01 + 0.90)).abs() < 1e-9, "{cost}");
        // Data: 1 M KV reads ($0.50), 2 M writes ($10), 3 M SQL rows written ($3), 2 GB stored ($1.50).
        let data = UsageCounts {
            kv_reads: 1_000_000,
            kv_writes: 2_000_000,
            sql_rows_written: 3_000_000,
            storage_bytes_max: 2_000_000_000,
            ..UsageCounts::default()
        };
        let cost = pricing.cost(&data);
        assert!((cost - (0.50 + 10.0 + 3.0 + 1.50)).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn cache_hits_are_priced_apart_and_say_what_they_saved() {
        let pricing = crate::config::PricingConfig::default().build();
        // 4 M requests, 3 M of them cache hits; the 1 M runs took 100 s of CPU (100 µs each).
        let counts =
            UsageCounts { requests: 4_000_000, cache_hits: 3_000_000, cpu_us: 100_000_000, ..UsageCounts::default() };
        let cost = pricing.cost(&counts);
        // 1 M runs at $0.40, 3 M hits at $0.05, 100 CPU seconds at $0.00002.
        assert!((cost - (0.40 + 0.15 + 0.002)).abs() < 1e-9, "{cost}");
        // Each hit would have cost the request price less the hit price, plus a mean run's CPU.
        let saved = pricing.saved_by_cache(&counts);
        assert!((saved - 3.0 * (0.40 - 0.05 + 100.0 * 0.00002)).abs() < 1e-9, "{saved}");
        // Nothing saved without hits, and no guess without a run to go by.
        assert_eq!(pricing.saved_by_cache(&UsageCounts { requests: 5, cpu_us: 9, ..UsageCounts::default() }), 0.0);
        assert_eq!(pricing.saved_by_cache(&UsageCounts { requests: 5, cache_hits: 5, ..UsageCounts::default() }), 0.0);
        // Hits never outnumber requests in the price, whatever the counts say.
        let odd = UsageCounts { requests: 1, cache_hits: 2, ..UsageCounts::default() };
        assert!((pricing.cost(&odd) - 0.05 / 1e6).abs() < 1e-15);
    }

    #[test]
    fn the_next_month_starts_at_midnight_utc() {
        let at = |month, day, hour, minute| {
            time::Date::from_calendar_date(2026, month, day).unwrap().with_hms(hour, minute, 0).unwrap().assume_utc()
        };
        assert_eq!(seconds_until_next_month(at(time::Month::December, 31, 23, 59)), 60);
        assert_eq!(seconds_until_next_month(at(time::Month::November, 30, 0, 0)), 86_400);
    }
}
