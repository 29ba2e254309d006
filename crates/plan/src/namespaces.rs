//! Everything the platform holds about a namespace (a tenant), in one record: its tier, the
//! policies' settings, its approvers, its budget and the internal networks its apps may reach.
//! `terrarium.toml` spreads them over the sections of the components that use them; the binary
//! gathers them here once, and every component reads its part of the same record.

use std::collections::BTreeMap;

use deployment::Admission;

/// The longest `spec.ttlDays` when the operator sets none.
pub const DEFAULT_MAX_TTL_DAYS: u32 = 90;

/// A namespace's tier: a ceiling its apps share, and the most one app's `spec.quotas` may ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    pub ceiling: Admission,
    pub max_app_requests_per_second: Option<u32>,
    pub max_app_burst: Option<u32>,
    pub max_app_concurrency: Option<u32>,
}

/// Who approves a namespace's elevated requests, and how many of them must.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approvers {
    /// `user:NAME` or `group:NAME`; the namespace's operators when empty.
    pub subjects: Vec<String>,
    pub required: u32,
}

impl Default for Approvers {
    fn default() -> Approvers {
        Approvers { subjects: Vec::new(), required: 1 }
    }
}

/// One namespace's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct NamespaceSettings {
    /// None: no ceiling, and apps may ask any quotas.
    pub tier: Option<Tier>,
    /// The longest `spec.ttlDays` an app may ask.
    pub max_ttl_days: u32,
    /// Hosts (or `*.domain` patterns) its apps may call without approval.
    pub allowed_egress: Vec<String>,
    /// Runtimes its apps may use; every supported one when `None`.
    pub approved_runtimes: Option<Vec<String>>,
    pub approvers: Approvers,
    /// The monthly budget of all its apps together, in the pricing's currency.
    pub monthly_budget: Option<f64>,
    /// Internal ranges (CIDRs) its apps may reach besides the platform-wide ones.
    pub allow_internal: Vec<String>,
}

impl Default for NamespaceSettings {
    fn default() -> NamespaceSettings {
        NamespaceSettings {
            tier: None,
            max_ttl_days: DEFAULT_MAX_TTL_DAYS,
            allowed_egress: Vec::new(),
            approved_runtimes: None,
            approvers: Approvers::default(),
            monthly_budget: None,
            allow_internal: Vec::new(),
        }
    }
}

/// Every namespace's settings: those the operator named, and the default for the rest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Namespaces {
    pub default: NamespaceSettings,
    pub named: BTreeMap<String, NamespaceSettings>,
}

impl Namespaces {
    pub fn get(&self, namespace: &str) -> &NamespaceSettings {
        self.named.get(namespace).unwrap_or(&self.default)
    }

    /// The settings of `namespace`, created from the default when it has none of its own yet
    /// (for building the record).
    pub fn entry(&mut self, namespace: &str) -> &mut NamespaceSettings {
        let default = &self.default;
        self.named.entry(namespace.to_owned()).or_insert_with(|| default.clone())
    }

    /// Each namespace's tier ceiling, and the default's: what the gateway's admission needs.
    pub fn ceilings(&self) -> (Option<Admission>, BTreeMap<String, Admission>) {
        let named = self
            .named
            .iter()
            .filter_map(|(namespace, settings)| Some((namespace.clone(), settings.tier.as_ref()?.ceiling)))
            .collect();
        (self.default.tier.as_ref().map(|tier| tier.ceiling), named)
    }

    /// The namespaces' monthly budgets: what budgets evaluate.
    pub fn budgets(&self) -> BTreeMap<String, f64> {
        self.named
            .iter()
            .filter_map(|(namespace, settings)| Some((namespace.clone(), settings.monthly_budget?)))
            .collect()
    }

    /// The namespaces' own internal ranges: what outbound HTTP allows besides the platform's.
    pub fn internal_ranges(&self) -> BTreeMap<String, Vec<String>> {
        self.named
            .iter()
            .filter(|(_, settings)| !settings.allow_internal.is_empty())
            .map(|(namespace, settings)| (namespace.clone(), settings.allow_internal.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_without_settings_gets_the_default() {
        let tier = Tier {
            name: "gold".into(),
            ceiling: Admission { requests_per_second: 10, burst: 20, concurrency: 5 },
            max_app_requests_per_second: None,
            max_app_burst: None,
            max_app_concurrency: None,
        };
        let mut namespaces = Namespaces {
            default: NamespaceSettings { tier: Some(tier.clone()), ..NamespaceSettings::default() },
            named: BTreeMap::new(),
        };
        namespaces.entry("growth").monthly_budget = Some(50.0);
        namespaces.entry("growth").allow_internal = vec!["10.20.0.0/16".into()];
        assert_eq!(namespaces.get("growth").tier.as_ref(), Some(&tier), "entries start from the default");
        assert_eq!(namespaces.get("elsewhere").max_ttl_days, DEFAULT_MAX_TTL_DAYS);
        assert_eq!(namespaces.budgets(), BTreeMap::from([("growth".to_owned(), 50.0)]));
        assert_eq!(namespaces.internal_ranges().len(), 1);
        let (default, named) = namespaces.ceilings();
        assert_eq!((default, named.len()), (Some(tier.ceiling), 1));
    }
}
