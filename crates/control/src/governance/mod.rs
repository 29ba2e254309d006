//! Policy as code applied by the control plane: deploy admission, approvals of elevated
//! requests, exceptions, and the background audit of every running app.
//!
//! The policies themselves (Rego, regorus) live in the `policy` leaf crate; the binary wraps
//! them in a [`PolicyEngine`], which applies the configured modes. Here:
//!
//! - **admission**: every deploy is evaluated with the manifest, the bundle's files and scan
//!   findings, the principal, the namespace's settings and the directory of known owners.
//!   Denials refuse it; warnings go back to the builder; elevated requests not yet granted to
//!   the app put the revision in an approval request while the previous revision keeps serving.
//! - **approvals**: operators of the namespace (or its configured approvers) approve or deny with
//!   a reason; never their own request. Enough approvals write the revision, swap it live and
//!   mint grants for exactly what was asked; a later revision asking for more needs a new
//!   approval. Requests without a decision are denied when they time out.
//! - **exceptions**: an operator lets one app break one policy until a given time.
//! - **audit**: on a schedule, when the policies change and when an exception lapses, every
//!   app's active revision is evaluated again and its violations stored in full.

mod admission;
pub use admission::egress_facts;
mod approvals;
pub mod config;
mod exceptions;
mod policy_audit;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_types::policy::{
    ApprovalRequest, ApprovalVote, Decision, Kind, NewPolicyException, PolicyException, PolicyStatus, StoredViolation,
    Violation,
};
use bundle::Bundle;
use deployment::AppKey;
use time::OffsetDateTime;

use audit::{Action, Outcome};

use background::{TaskSpec, Tasks, job};
use time::format_description::well_known::Rfc3339;

use crate::store::{ApprovalEnd, ApprovalRow, ExceptionRow, GovernanceStore, NewAuditEvent, NewRevision};
use crate::{ControlError, ControlPlane, Principal, Role, now};

/// Compiled policies with their modes; implemented by the binary over the `policy` crate.
pub trait PolicyEngine: Send + Sync + 'static {
    /// Every policy's messages for one input, each with its policy's mode.
    fn evaluate(&self, input: &serde_json::Value) -> Result<Decision, String>;
    /// What is loaded (the audit fields are filled in by the control plane).
    fn status(&self) -> PolicyStatus;
    /// Reads the policies again; `Ok(true)` when they changed. On error the old ones stay.
    fn reload(&self) -> Result<bool, String>;
    /// The names of the loaded policies (`egress`, `ttl`, ...).
    fn policies(&self) -> Vec<String>;
}

#[derive(Clone, Debug)]
pub struct GovernanceSettings {
    /// A pending request is denied after this long.
    pub approval_timeout: Duration,
    /// How often every app is audited (also at start, on policy change and when an exception lapses).
    pub audit_every: Duration,
    /// How often the policies are read again.
    pub reload_every: Duration,
}

impl Default for GovernanceSettings {
    fn default() -> GovernanceSettings {
        GovernanceSettings {
            approval_timeout: Duration::from_secs(72 * 3600),
            audit_every: Duration::from_secs(3600),
            reload_every: Duration::from_secs(10),
        }
    }
}

/// The policy engine, its storage and settings, and the audit loop's state.
pub struct Governance {
    pub engine: Arc<dyn PolicyEngine>,
    pub store: Arc<dyn GovernanceStore>,
    pub settings: GovernanceSettings,
    /// Every namespace's settings: what its policies see, its approvers.
    pub namespaces: Arc<plan::Namespaces>,
    /// Wakes the audit loop for an audit now (an exception came or went, policies reloaded).
    audit_now: Arc<tokio::sync::Notify>,
    state: Mutex<AuditState>,
}

#[derive(Default)]
struct AuditState {
    last_audit: Option<String>,
    audited_apps: u64,
    /// Unix time of the earliest lapse of an active exception: the audit runs again then.
    next_lapse: Option<i64>,
    /// Unix time of the earliest timeout of a pending request.
    next_timeout: Option<i64>,
    /// Whether the deadlines were checked since the server started.
    deadlines_checked: bool,
}

impl Governance {
    pub fn new(
        engine: Arc<dyn PolicyEngine>,
        store: Arc<dyn GovernanceStore>,
        settings: GovernanceSettings,
        namespaces: Arc<plan::Namespaces>,
    ) -> Governance {
        Governance {
            engine,
            store,
            settings,
            namespaces,
            audit_now: Arc::new(tokio::sync::Notify::new()),
            state: Mutex::new(AuditState::default()),
        }
    }

    pub(crate) fn namespace(&self, namespace: &str) -> &plan::NamespaceSettings {
        self.namespaces.get(namespace)
    }

    fn approvers(&self, namespace: &str) -> plan::Approvers {
        self.namespaces.get(namespace).approvers.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AuditState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What policies see of current usage (`input.usage` and `input.namespace.apps`).
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    apps_in_namespace: usize,
    /// Requests this month, from the metering roll-ups.
    app_month_requests: u64,
    namespace_month_requests: u64,
}

/// Apps per namespace and requests this month per app.
#[derive(Default)]
struct UsageIndex {
    apps: HashMap<String, usize>,
    requests: HashMap<AppKey, u64>,
    namespace_requests: HashMap<String, u64>,
}

impl UsageIndex {
    fn of(&self, app: &AppKey) -> Usage {
        Usage {
            apps_in_namespace: self.apps.get(&app.namespace).copied().unwrap_or(0),
            app_month_requests: self.requests.get(app).copied().unwrap_or(0),
            namespace_month_requests: self.namespace_requests.get(&app.namespace).copied().unwrap_or(0),
        }
    }
}

/// What admission decided about one revision.
pub(crate) struct Admission {
    /// Every message, exceptions applied.
    pub decision: Decision,
    /// Elevated requests the app has no grant for: they need approval.
    pub ungranted: Vec<Violation>,
}

fn unix(time: &str) -> Option<i64> {
    OffsetDateTime::parse(time, &Rfc3339).ok().map(OffsetDateTime::unix_timestamp)
}

fn format_time(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("zero nanoseconds is valid")
        .format(&Rfc3339)
        .expect("RFC 3339 formatting of a UTC time")
}

fn is_active(exception: &ExceptionRow, now: i64) -> bool {
    exception.removed_at.is_none() && unix(&exception.expires_at).is_some_and(|expires| expires > now)
}

/// Drops the deny and warn messages of policies the app has an active exception to.
fn apply_exceptions(decision: &mut Decision, app: &AppKey, exceptions: &[ExceptionRow], now: i64) {
    let excepted: HashSet<&str> = exceptions
        .iter()
        .filter(|exception| exception.app == *app && is_active(exception, now))
        .map(|exception| exception.policy.as_str())
        .collect();
    decision.violations.retain(|v| v.kind == Kind::Elevated || !excepted.contains(v.policy.as_str()));
}

fn event(principal: &str, action: Action, app: &AppKey, outcome: Outcome, detail: String) -> NewAuditEvent {
    NewAuditEvent::new(principal, action, outcome).app(app).detail(detail)
}

/// The annotation a builder's reason for an elevated ask travels in.
pub const JUSTIFICATION_ANNOTATION: &str = "terrarium.dev/justification";

fn approval_info(row: ApprovalRow) -> ApprovalRequest {
    let justification = serde_json::from_str::<crate::store::NewRevision>(&row.pending).ok().and_then(|pending| {
        let loaded = manifest::load(bundle::MANIFEST_FILE, &pending.manifest_source).ok()?;
        loaded.manifest().metadata.annotations.as_ref()?.get(JUSTIFICATION_ANNOTATION).cloned()
    });
    ApprovalRequest {
        justification,
        id: row.id,
        namespace: row.app.namespace,
        app: row.app.name,
        state: row.state,
        requested_by: row.requested_by,
        requested_at: row.requested_at,
        expires_at: row.expires_at,
        digest: row.digest,
        requests: row.requests,
        required: row.required,
        approvers: row.approvers,
        votes: row.votes,
        revision: row.revision,
        decided_at: row.decided_at,
        outcome: row.outcome,
    }
}

fn exception_info(row: ExceptionRow, now: i64) -> PolicyException {
    PolicyException {
        active: is_active(&row, now),
        id: row.id,
        namespace: row.app.namespace,
        app: row.app.name,
        policy: row.policy,
        reason: row.reason,
        granted_by: row.granted_by,
        granted_at: row.granted_at,
        expires_at: row.expires_at,
    }
}

/// A reason an operator gives: required, one paragraph at most.
fn checked_reason(reason: &str) -> Result<String, ControlError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ControlError::InvalidName("a reason is required: say why, with --reason \"...\"".to_owned()));
    }
    if reason.chars().count() > 2000 {
        return Err(ControlError::InvalidName("the reason is over 2000 characters; keep it to a paragraph".to_owned()));
    }
    Ok(reason.to_owned())
}

fn short(version: &str) -> &str {
    &version[..version.len().min(12)]
}

/// `72 h`, `2 s`.
fn humanize(secs: u64) -> String {
    match secs {
        secs if secs >= 3600 && secs % 3600 == 0 => format!("{} h", secs / 3600),
        secs if secs >= 60 && secs % 60 == 0 => format!("{} min", secs / 60),
        secs => format!("{secs} s"),
    }
}

#[cfg(test)]
mod tests {
    use api_types::policy::Mode;

    use super::*;

    fn violation(policy: &str, kind: Kind) -> Violation {
        Violation { policy: policy.to_owned(), kind, mode: Mode::Deny, message: format!("{policy} says no") }
    }

    fn exception(app: &AppKey, policy: &str, expires_at: &str, removed: bool) -> ExceptionRow {
        ExceptionRow {
            id: 1,
            app: app.clone(),
            policy: policy.to_owned(),
            reason: "migrating".to_owned(),
            granted_by: "olu".to_owned(),
            granted_at: "2026-11-01T00:00:00Z".to_owned(),
            expires_at: expires_at.to_owned(),
            removed_at: removed.then(|| "2026-11-02T00:00:00Z".to_owned()),
        }
    }

    #[test]
    fn an_exception_lifts_one_policy_for_one_app_until_it_lapses() {
        let lunch = AppKey::new("growth", "lunch");
        let other = AppKey::new("growth", "other");
        let now = unix("2026-11-22T10:00:00Z").unwrap();
        let decision = || Decision {
            violations: vec![
                violation("ttl", Kind::Deny),
                violation("ttl", Kind::Warn),
                violation("egress", Kind::Deny),
                violation("exposure", Kind::Elevated),
            ],
        };
        let policies = |decision: &Decision| -> Vec<(String, Kind)> {
            decision.violations.iter().map(|v| (v.policy.clone(), v.kind)).collect()
        };

        let mut excepted = decision();
        let active = [exception(&lunch, "ttl", "2026-11-23T00:00:00Z", false)];
        apply_exceptions(&mut excepted, &lunch, &active, now);
        assert_eq!(policies(&excepted), [("egress".into(), Kind::Deny), ("exposure".into(), Kind::Elevated)]);

        // Another app's exception, a lapsed one, a removed one and an elevated ask change nothing.
        for exceptions in [
            [exception(&other, "ttl", "2026-11-23T00:00:00Z", false)],
            [exception(&lunch, "ttl", "2026-11-22T10:00:00Z", false)],
            [exception(&lunch, "ttl", "2026-11-23T00:00:00Z", true)],
            [exception(&lunch, "exposure", "2026-11-23T00:00:00Z", false)],
        ] {
            let mut unchanged = decision();
            apply_exceptions(&mut unchanged, &lunch, &exceptions, now);
            assert_eq!(unchanged, decision(), "{exceptions:?}");
        }
    }

    #[test]
    fn reasons_are_required_and_bounded() {
        assert!(checked_reason("  ").is_err());
        assert!(checked_reason(&"x".repeat(2001)).is_err());
        assert_eq!(checked_reason("  vetted API  ").unwrap(), "vetted API");
    }

    #[test]
    fn times_read_well() {
        assert_eq!(humanize(259_200), "72 h");
        assert_eq!(humanize(120), "2 min");
        assert_eq!(humanize(2), "2 s");
        assert_eq!(format_time(OffsetDateTime::from_unix_timestamp(1_795_338_483).unwrap()), "2026-11-22T09:08:03Z");
    }
}
