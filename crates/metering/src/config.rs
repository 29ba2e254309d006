//! `[metering]`, `[pricing]` and `[budgets]` in `terrarium.toml`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::budgets::{BudgetSettings, Pricing};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeteringConfig {
    /// How often counted usage is written to the roll-ups: at most this much is lost in a crash.
    pub flush_secs: u64,
    /// How often what each app stores is measured, for usage, cost and metrics (daily).
    pub storage_secs: u64,
}

impl Default for MeteringConfig {
    fn default() -> MeteringConfig {
        MeteringConfig { flush_secs: 5, storage_secs: 86_400 }
    }
}

impl MeteringConfig {
    pub fn validate(&self) -> Vec<String> {
        [
            positive_secs(self.flush_secs, "metering.flush_secs"),
            positive_secs(self.storage_secs, "metering.storage_secs"),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect()
    }

    pub fn storage_every(&self) -> Duration {
        Duration::from_secs(self.storage_secs.max(1))
    }

    pub fn flush_every(&self) -> Duration {
        Duration::from_secs(self.flush_secs.max(1))
    }
}

/// What usage costs; `terrarium usage` and budgets use it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    pub currency: String,
    pub per_million_requests: f64,
    pub per_cpu_second: f64,
    /// Per GB of response bodies apps send.
    pub per_gb_out: f64,
    /// Per million key-value reads, writes (puts, deletes, increments) and lists.
    pub per_million_kv_reads: f64,
    pub per_million_kv_writes: f64,
    pub per_million_kv_lists: f64,
    /// Per million rows SQL statements read and wrote.
    pub per_million_sql_rows_read: f64,
    pub per_million_sql_rows_written: f64,
    /// Per GB a month of stored key-value and SQL data (the month's largest daily measure).
    pub per_gb_month_stored: f64,
    /// Per million requests the response cache answers without running the app; they are not
    /// charged the request price.
    pub per_million_cache_hits: f64,
    /// Per million vector searches (`query`, `queryText`) and vectors written.
    pub per_million_vector_queries: f64,
    pub per_million_vectors_written: f64,
    /// Per million tokens the platform's embedding model reads for apps.
    pub per_million_embedding_tokens: f64,
}

impl Default for PricingConfig {
    fn default() -> PricingConfig {
        PricingConfig {
            currency: "USD".to_owned(),
            per_million_requests: 0.40,
            per_cpu_second: 0.00002,
            per_gb_out: 0.09,
            per_million_kv_reads: 0.50,
            per_million_kv_writes: 5.00,
            per_million_kv_lists: 5.00,
            per_million_sql_rows_read: 0.001,
            per_million_sql_rows_written: 1.00,
            per_gb_month_stored: 0.75,
            per_million_cache_hits: 0.05,
            per_million_vector_queries: 0.04,
            per_million_vectors_written: 0.05,
            per_million_embedding_tokens: 0.01,
        }
    }
}

impl PricingConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            problems.push(format!("pricing.currency: {:?} is not an ISO 4217 code like USD or EUR", self.currency));
        }
        for (key, price) in [
            ("per_million_requests", self.per_million_requests),
            ("per_cpu_second", self.per_cpu_second),
            ("per_gb_out", self.per_gb_out),
            ("per_million_kv_reads", self.per_million_kv_reads),
            ("per_million_kv_writes", self.per_million_kv_writes),
            ("per_million_kv_lists", self.per_million_kv_lists),
            ("per_million_sql_rows_read", self.per_million_sql_rows_read),
            ("per_million_sql_rows_written", self.per_million_sql_rows_written),
            ("per_gb_month_stored", self.per_gb_month_stored),
            ("per_million_cache_hits", self.per_million_cache_hits),
            ("per_million_vector_queries", self.per_million_vector_queries),
            ("per_million_vectors_written", self.per_million_vectors_written),
            ("per_million_embedding_tokens", self.per_million_embedding_tokens),
        ] {
            if !(price.is_finite() && price >= 0.0) {
                problems.push(format!("pricing.{key}: {price} is not a price; give 0 or more"));
            }
        }
        problems
    }

    pub fn build(&self) -> Pricing {
        Pricing {
            currency: self.currency.clone(),
            per_million_requests: self.per_million_requests,
            per_cpu_second: self.per_cpu_second,
            per_gb_out: self.per_gb_out,
            per_million_kv_reads: self.per_million_kv_reads,
            per_million_kv_writes: self.per_million_kv_writes,
            per_million_kv_lists: self.per_million_kv_lists,
            per_million_sql_rows_read: self.per_million_sql_rows_read,
            per_million_sql_rows_written: self.per_million_sql_rows_written,
            per_gb_month_stored: self.per_gb_month_stored,
            per_million_cache_hits: self.per_million_cache_hits,
            per_million_vector_queries: self.per_million_vector_queries,
            per_million_vectors_written: self.per_million_vectors_written,
            per_million_embedding_tokens: self.per_million_embedding_tokens,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsConfig {
    /// Alerts at these percentages of a budget.
    pub thresholds: Vec<u32>,
    /// Stop an app (402) once a budget covering it is used up.
    pub hard_stop: bool,
    /// How often budgets and monthly quotas are evaluated.
    pub evaluate_secs: u64,
    /// Monthly budgets per namespace (`growth = 50.0`) and per owner (`"user:ana" = 20.0`).
    pub namespaces: BTreeMap<String, f64>,
    pub owners: BTreeMap<String, f64>,
}

impl Default for BudgetsConfig {
    fn default() -> BudgetsConfig {
        BudgetsConfig {
            thresholds: vec![50, 80, 100],
            hard_stop: true,
            evaluate_secs: 5,
            namespaces: Default::default(),
            owners: Default::default(),
        }
    }
}

impl BudgetsConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut problems: Vec<String> =
            positive_secs(self.evaluate_secs, "budgets.evaluate_secs").err().into_iter().collect();
        if let Some(zero) = self.thresholds.iter().find(|threshold| **threshold == 0) {
            problems.push(format!("budgets.thresholds: {zero} is not a threshold; give percentages above 0"));
        }
        for (key, amount) in self
            .namespaces
            .iter()
            .map(|(namespace, amount)| (format!("namespaces.{namespace}"), amount))
            .chain(self.owners.iter().map(|(owner, amount)| (format!("owners.{owner:?}"), amount)))
        {
            if !(amount.is_finite() && *amount > 0.0) {
                problems.push(format!("budgets.{key}: {amount} is not a budget; give an amount above 0"));
            }
        }
        if let Some(owner) =
            self.owners.keys().find(|owner| !owner.starts_with("user:") && !owner.starts_with("group:"))
        {
            problems.push(format!("budgets.owners: {owner:?} is neither user:NAME nor group:NAME"));
        }
        problems
    }

    pub fn evaluate_every(&self) -> Duration {
        Duration::from_secs(self.evaluate_secs.max(1))
    }

    /// The budgets' settings, priced by `pricing`; `namespaces` are the namespaces' budgets
    /// (from their settings, which gather `namespaces` of this section).
    pub fn build(&self, pricing: &PricingConfig, namespaces: BTreeMap<String, f64>) -> BudgetSettings {
        let mut thresholds = self.thresholds.clone();
        thresholds.sort_unstable();
        thresholds.dedup();
        BudgetSettings {
            pricing: pricing.build(),
            thresholds,
            hard_stop: self.hard_stop,
            namespaces,
            owners: self.owners.clone(),
        }
    }
}

fn positive_secs(value: u64, key: &str) -> Result<(), String> {
    match value {
        0 => Err(format!("{key} is 0; give a number of seconds")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_problem_is_named() {
        assert!(MeteringConfig::default().validate().is_empty());
        assert!(PricingConfig::default().validate().is_empty());
        assert!(BudgetsConfig::default().validate().is_empty());
        let pricing = PricingConfig { currency: "usd".into(), per_cpu_second: -1.0, ..PricingConfig::default() };
        assert_eq!(pricing.validate().len(), 2);
        let budgets = BudgetsConfig {
            thresholds: vec![0, 80],
            evaluate_secs: 0,
            namespaces: [("growth".to_owned(), -5.0)].into(),
            owners: [("ana".to_owned(), 10.0)].into(),
            ..BudgetsConfig::default()
        };
        let problems = budgets.validate();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems.iter().any(|problem| problem.starts_with("budgets.namespaces.growth")));
    }

    #[test]
    fn thresholds_are_sorted_once() {
        let budgets = BudgetsConfig { thresholds: vec![100, 50, 80, 50], ..BudgetsConfig::default() };
        assert_eq!(budgets.build(&PricingConfig::default(), BTreeMap::new()).thresholds, [50, 80, 100]);
    }
}
