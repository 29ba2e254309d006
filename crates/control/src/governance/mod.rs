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

pub mod config;

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

    fn namespace(&self, namespace: &str) -> &plan::NamespaceSettings {
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

fn approval_info(row: ApprovalRow) -> ApprovalRequest {
    ApprovalRequest {
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

impl ControlPlane {
    /// Everyone an app may be owned by, for the policies' `directory`.
    async fn directory(&self) -> Result<Vec<String>, ControlError> {
        self.owners.owners().await.map_err(ControlError::Internal)
    }

    /// The input policies see: `manifest`, `bundle`, `principal` (at deploy), `namespace`, `directory`.
    async fn policy_input(
        &self,
        manifest: &manifest::MicroApp,
        files: Vec<&str>,
        findings: &[scan::Finding],
        principal: Option<&Principal>,
        directory: &[String],
        usage: Usage,
    ) -> Result<serde_json::Value, ControlError> {
        let namespace_name = &manifest.metadata.namespace;
        let settings = self.governance.namespace(namespace_name);
        let mut namespace = serde_json::json!({
            "name": namespace_name,
            "maxTtlDays": settings.max_ttl_days,
            "allowedEgress": settings.allowed_egress,
            "apps": usage.apps_in_namespace,
        });
        if let Some(runtimes) = &settings.approved_runtimes {
            namespace["approvedRuntimes"] = serde_json::json!(runtimes);
        }
        if let Some(tier) = &settings.tier {
            let mut json = serde_json::json!({
                "name": tier.name,
                "requestsPerSecond": tier.ceiling.requests_per_second,
                "burst": tier.ceiling.burst,
                "concurrency": tier.ceiling.concurrency,
            });
            for (key, value) in [
                ("maxAppRequestsPerSecond", tier.max_app_requests_per_second),
                ("maxAppBurst", tier.max_app_burst),
                ("maxAppConcurrency", tier.max_app_concurrency),
            ] {
                if let Some(value) = value {
                    json[key] = value.into();
                }
            }
            namespace["tier"] = json;
        }
        let findings: Vec<serde_json::Value> = findings
            .iter()
            .map(|finding| serde_json::json!({ "rule": finding.rule_id, "file": finding.path, "line": finding.line }))
            .collect();
        let mut input = serde_json::json!({
            "manifest": serde_json::to_value(manifest).map_err(|error| ControlError::Internal(error.to_string()))?,
            "bundle": { "files": files, "findings": findings },
            "namespace": namespace,
            "directory": { "owners": directory },
            "usage": {
                "monthRequests": usage.app_month_requests,
                "namespaceMonthRequests": usage.namespace_month_requests,
            },
        });
        if let Some(principal) = principal {
            let roles: Vec<serde_json::Value> = principal
                .roles
                .iter()
                .map(|(namespace, role)| serde_json::json!({ "namespace": namespace, "role": role.as_str() }))
                .collect();
            input["principal"] =
                serde_json::json!({ "subject": principal.subject, "groups": principal.groups, "roles": roles });
        }
        Ok(input)
    }

    /// Apps per namespace and this month's requests per app, of one namespace or all.
    async fn usage_index(&self, namespace: Option<&str>) -> Result<UsageIndex, ControlError> {
        let mut index = UsageIndex::default();
        for row in self.store.list_apps(namespace).await? {
            *index.apps.entry(row.app.namespace).or_default() += 1;
        }
        let (from, to) = metering::month_range(None, self.settings.clock.now())?;
        let filter = metering::store::UsageFilter {
            namespace: namespace.map(str::to_owned),
            app: None,
            period: metering::store::UsagePeriod::Day,
            from,
            to,
        };
        for row in self.usage_store.usage(filter).await? {
            *index.namespace_requests.entry(row.app.namespace.clone()).or_default() += row.counts.requests;
            *index.requests.entry(row.app).or_default() += row.counts.requests;
        }
        Ok(index)
    }

    fn evaluate(&self, input: &serde_json::Value) -> Result<Decision, ControlError> {
        self.governance.engine.evaluate(input).map_err(ControlError::PolicyFailed)
    }

    /// The policies' decision about a revision being deployed, with exceptions and grants applied.
    pub(crate) async fn admit(
        &self,
        principal: &Principal,
        manifest: &manifest::MicroApp,
        bundle: &Bundle,
        findings: &[scan::Finding],
        app: &AppKey,
    ) -> Result<Admission, ControlError> {
        let directory = self.directory().await?;
        let usage = self.usage_index(Some(&app.namespace)).await?.of(app);
        let files = bundle.files().keys().map(String::as_str).collect();
        let input = self.policy_input(manifest, files, findings, Some(principal), &directory, usage).await?;
        let mut decision = self.evaluate(&input)?;
        let exceptions = self.governance.store.list_exceptions(Some(&app.namespace)).await?;
        apply_exceptions(&mut decision, app, &exceptions, self.settings.clock.now().unix_timestamp());
        let grants: HashSet<(String, String)> = self.governance.store.grants(app).await?.into_iter().collect();
        let ungranted =
            decision.elevated().filter(|v| !grants.contains(&(v.policy.clone(), v.message.clone()))).cloned().collect();
        Ok(Admission { decision, ungranted })
    }

    /// Puts a revision that asks for more than the app was granted into an approval request.
    /// A pending request for the same bundle is returned as it is.
    pub(crate) async fn request_approval(
        &self,
        principal: &Principal,
        new: NewRevision,
        requests: Vec<Violation>,
    ) -> Result<ApprovalRequest, ControlError> {
        let app = new.deployment.app.clone();
        let pending =
            self.governance.store.list_approvals(Some(&app.namespace), Some(&app.name), Some("pending")).await?;
        if let Some(same) =
            pending.into_iter().find(|row| row.digest == new.deployment.bundle_digest && row.requests == requests)
        {
            return Ok(approval_info(same));
        }
        let approvers = self.governance.approvers(&app.namespace);
        let requested_at = self.settings.clock.now();
        let timeout =
            time::Duration::try_from(self.governance.settings.approval_timeout).unwrap_or(time::Duration::days(3650));
        let expires_at = requested_at + timeout;
        let detail = format!(
            "digest {} asks for: {}",
            new.deployment.bundle_digest,
            requests.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        );
        let row = ApprovalRow {
            id: 0,
            app: app.clone(),
            state: "pending".to_owned(),
            requested_by: principal.subject.clone(),
            requested_at: format_time(requested_at),
            expires_at: format_time(expires_at),
            digest: new.deployment.bundle_digest.clone(),
            requests,
            required: approvers.required.max(1),
            approvers: approvers.subjects,
            votes: Vec::new(),
            revision: None,
            decided_at: None,
            outcome: None,
            pending: serde_json::to_string(&new).map_err(|error| ControlError::Internal(error.to_string()))?,
        };
        let id = self
            .governance
            .store
            .create_approval(row, event(&principal.subject, Action::ApprovalRequest, &app, Outcome::Success, detail))
            .await?;
        {
            let mut state = self.governance.state();
            let expires = expires_at.unix_timestamp();
            state.next_timeout = Some(state.next_timeout.map_or(expires, |next| next.min(expires)));
        }
        tracing::info!(namespace = %app.namespace, app = %app.name, id, "revision waits for approval");
        self.get_approval_row(id).await.map(approval_info)
    }

    /// Marks the app's pending requests superseded by a revision that went live without approval.
    pub(crate) async fn supersede_pending(&self, principal: &Principal, app: &AppKey, revision: i64) {
        let pending =
            match self.governance.store.list_approvals(Some(&app.namespace), Some(&app.name), Some("pending")).await {
                Ok(pending) => pending,
                Err(error) => return tracing::error!(%error, "listing pending approvals"),
            };
        for row in pending {
            let end = ApprovalEnd::closed("superseded", format!("revision {revision} was deployed instead"), now());
            let detail = format!("request {} superseded by revision {revision}", row.id);
            let audit = event(&principal.subject, Action::ApprovalSupersede, app, Outcome::Success, detail);
            if let Err(error) = self.governance.store.finish_approval(row.id, end, audit).await {
                tracing::error!(%error, "superseding an approval request");
            }
        }
    }

    async fn get_approval_row(&self, id: i64) -> Result<ApprovalRow, ControlError> {
        self.governance.store.get_approval(id).await?.ok_or_else(|| {
            ControlError::NotFound(format!(
                "approval request {id} does not exist; list them with `terrarium approvals list`"
            ))
        })
    }

    /// Denies every pending request whose time is up. Takes the change lock.
    pub async fn expire_approvals(&self) -> Result<(), ControlError> {
        let _guard = self.change_lock.lock().await;
        self.expire_due().await
    }

    async fn expire_due(&self) -> Result<(), ControlError> {
        let now_unix = self.settings.clock.now().unix_timestamp();
        let pending = self.governance.store.list_approvals(None, None, Some("pending")).await?;
        let mut next_timeout = None;
        for row in pending {
            let expires = unix(&row.expires_at).unwrap_or(0);
            if expires > now_unix {
                next_timeout = Some(next_timeout.map_or(expires, |next: i64| next.min(expires)));
                continue;
            }
            let timeout = self.governance.settings.approval_timeout.as_secs();
            let outcome = format!(
                "timed out: {} of {} approvals within {}; deploy again to ask anew",
                row.votes.iter().filter(|vote| vote.decision == "approve").count(),
                row.required,
                humanize(timeout)
            );
            let end = ApprovalEnd::closed("denied", outcome.clone(), now());
            let audit = event(
                "terrarium",
                Action::ApprovalExpire,
                &row.app,
                Outcome::Denied,
                format!("request {}: {outcome}", row.id),
            );
            self.governance.store.finish_approval(row.id, end, audit).await?;
        }
        self.governance.state().next_timeout = next_timeout;
        Ok(())
    }

    /// Approval requests the principal may see (a namespace's viewers see its requests).
    pub async fn list_approvals(
        &self,
        principal: &Principal,
        namespace: Option<&str>,
        state: Option<&str>,
    ) -> Result<Vec<ApprovalRequest>, ControlError> {
        if let Some(namespace) = namespace {
            self.authorize_read(principal, namespace, Action::ApprovalList).await?;
        }
        self.expire_approvals().await?;
        let state = state.filter(|state| *state != "all");
        let rows = self.governance.store.list_approvals(namespace, None, state).await?;
        Ok(rows
            .into_iter()
            .filter(|row| principal.has_role(&row.app.namespace, Role::Viewer))
            .map(approval_info)
            .collect())
    }

    pub async fn get_approval(&self, principal: &Principal, id: i64) -> Result<ApprovalRequest, ControlError> {
        self.expire_approvals().await?;
        let row = self.get_approval_row(id).await?;
        if !principal.has_role(&row.app.namespace, Role::Viewer) {
            return Err(ControlError::NotFound(format!(
                "approval request {id} does not exist; list them with `terrarium approvals list`"
            )));
        }
        Ok(approval_info(row))
    }

    /// An approver's vote. A denial ends the request; the last approval needed writes the
    /// revision, makes it live and mints the grants.
    pub async fn vote(
        &self,
        principal: &Principal,
        id: i64,
        approve: bool,
        reason: &str,
    ) -> Result<ApprovalRequest, ControlError> {
        let reason = checked_reason(reason)?;
        let action = if approve { Action::ApprovalApprove } else { Action::ApprovalDeny };
        let _guard = self.change_lock.lock().await;
        self.expire_due().await?;
        let row = self.get_approval_row(id).await?;
        let app = row.app.clone();
        let namespace = &app.namespace;
        if !principal.has_role(namespace, Role::Viewer) {
            // Someone with no role there learns nothing, not even that the request exists.
            return Err(ControlError::NotFound(format!(
                "approval request {id} does not exist; list them with `terrarium approvals list`"
            )));
        }
        if !principal.has_role(namespace, Role::Operator) {
            let message = format!(
                "only operators of namespace {namespace:?} decide its approval requests; ask one of them to review request {id} (`terrarium approvals show {id}`)"
            );
            return Err(self.deny(principal, action, Some(namespace), Some(&app.name), message).await);
        }
        if row.state != "pending" {
            let outcome = row.outcome.as_deref().unwrap_or("");
            return Err(ControlError::Conflict(format!("approval request {id} is {} already: {outcome}", row.state)));
        }
        let new: NewRevision =
            serde_json::from_str(&row.pending).map_err(|error| ControlError::Internal(error.to_string()))?;
        if row.requested_by == principal.subject || new.owner == format!("user:{}", principal.subject) {
            let message = format!(
                "you cannot decide approval request {id}: you asked for it or own the app; another operator of {namespace:?} must"
            );
            return Err(self.deny(principal, action, Some(namespace), Some(&app.name), message).await);
        }
        if !row.approvers.is_empty() && !row.approvers.iter().any(|subject| principal.is_owner(subject)) {
            let message = format!(
                "approval requests in namespace {namespace:?} are decided by {}; you are not one of them",
                row.approvers.join(", ")
            );
            return Err(self.deny(principal, action, Some(namespace), Some(&app.name), message).await);
        }
        if row.votes.iter().any(|vote| vote.approver == principal.subject) {
            return Err(ControlError::Conflict(format!("you have voted on approval request {id} already")));
        }
        let vote = ApprovalVote {
            approver: principal.subject.clone(),
            decision: if approve { "approve" } else { "deny" }.to_owned(),
            reason: reason.clone(),
            time: now(),
        };
        let detail = format!("request {id}: {} ({reason})", vote.decision);
        self.governance
            .store
            .add_vote(id, vote, event(&principal.subject, Action::ApprovalVote, &app, Outcome::Success, detail))
            .await?;
        let row = self.get_approval_row(id).await?;
        if !approve {
            let outcome = format!("denied by {}: {reason}", principal.subject);
            let end = ApprovalEnd::closed("denied", outcome.clone(), now());
            let audit = event(&principal.subject, action, &app, Outcome::Success, format!("request {id}: {outcome}"));
            self.governance.store.finish_approval(id, end, audit).await?;
        } else {
            let approvals: Vec<&str> =
                row.votes.iter().filter(|vote| vote.decision == "approve").map(|vote| vote.approver.as_str()).collect();
            if approvals.len() as u32 >= row.required {
                let by = approvals.join(", ");
                self.activate_approved(principal, &row, new, &by).await?;
            }
        }
        self.get_approval_row(id).await.map(approval_info)
    }

    /// Writes an approved revision, makes it live and mints its grants. Holds the change lock.
    async fn activate_approved(
        &self,
        principal: &Principal,
        row: &ApprovalRow,
        mut new: NewRevision,
        approved_by: &str,
    ) -> Result<(), ControlError> {
        let app = &row.app;
        let revision = self.store.next_revision(app).await?;
        new.deployment.revision = revision;
        new.created_at = now();
        let deployment = std::sync::Arc::new(new.deployment.clone());
        let live = self.load(deployment).await.map_err(ControlError::Load)?;
        let mut deploy_event = event(
            &row.requested_by,
            Action::AppDeploy,
            app,
            Outcome::Success,
            format!("digest {}, approved in request {} by {approved_by}", row.digest, row.id),
        );
        deploy_event.revision = Some(revision);
        self.commit_revision(principal, new, live, deploy_event).await?;
        let outcome = format!("approved by {approved_by}; live as revision {revision}");
        let end = ApprovalEnd {
            state: "approved".to_owned(),
            outcome: outcome.clone(),
            decided_at: now(),
            revision: Some(revision),
            grants: row.requests.iter().map(|v| (v.policy.clone(), v.message.clone())).collect(),
        };
        let mut audit = event(
            &principal.subject,
            Action::ApprovalApprove,
            app,
            Outcome::Success,
            format!("request {}: {outcome}", row.id),
        );
        audit.revision = Some(revision);
        self.governance.store.finish_approval(row.id, end, audit).await?;
        tracing::info!(namespace = %app.namespace, app = %app.name, revision, "approved revision deployed");
        Ok(())
    }

    /// Lets `app` break `policy` until the exception expires. Needs the namespace's operator role.
    pub async fn add_exception(
        &self,
        principal: &Principal,
        request: NewPolicyException,
    ) -> Result<PolicyException, ControlError> {
        let app = AppKey::new(&request.namespace, &request.app);
        if !principal.has_role(&app.namespace, Role::Operator) {
            let message = format!("granting exceptions in namespace {:?} needs its operator role", app.namespace);
            return Err(self
                .deny(principal, Action::PolicyExceptionAdd, Some(&app.namespace), Some(&app.name), message)
                .await);
        }
        let reason = checked_reason(&request.reason)?;
        let policies = self.governance.engine.policies();
        if !policies.contains(&request.policy) {
            return Err(ControlError::InvalidName(format!(
                "there is no policy named {:?}; the policies are {}",
                request.policy,
                policies.join(", ")
            )));
        }
        let expires = OffsetDateTime::parse(&request.expires_at, &Rfc3339).map_err(|_| {
            ControlError::InvalidName(format!(
                "expiry {:?} is not an RFC 3339 time like 2026-12-31T00:00:00Z (or use --for 7d)",
                request.expires_at
            ))
        })?;
        let now_time = self.settings.clock.now();
        if expires <= now_time || expires > now_time + time::Duration::days(366) {
            return Err(ControlError::InvalidName(
                "an exception must expire in the future and within a year; exceptions are temporary by design"
                    .to_owned(),
            ));
        }
        self.store.get_app(&app).await?;
        let row = ExceptionRow {
            id: 0,
            app: app.clone(),
            policy: request.policy.clone(),
            reason: reason.clone(),
            granted_by: principal.subject.clone(),
            granted_at: now(),
            expires_at: format_time(expires),
            removed_at: None,
        };
        let detail = format!("policy {} until {}: {reason}", request.policy, row.expires_at);
        let audit = event(&principal.subject, Action::PolicyExceptionAdd, &app, Outcome::Success, detail);
        let id = self.governance.store.add_exception(row.clone(), audit).await?;
        self.governance.audit_now.notify_one();
        Ok(exception_info(ExceptionRow { id, ..row }, now_time.unix_timestamp()))
    }

    /// Exceptions of a namespace (its viewers may look), or of every namespace the principal sees.
    pub async fn list_exceptions(
        &self,
        principal: &Principal,
        namespace: Option<&str>,
    ) -> Result<Vec<PolicyException>, ControlError> {
        if let Some(namespace) = namespace {
            self.authorize_read(principal, namespace, Action::PolicyExceptionList).await?;
        }
        let now_unix = self.settings.clock.now().unix_timestamp();
        Ok(self
            .governance
            .store
            .list_exceptions(namespace)
            .await?
            .into_iter()
            .filter(|row| principal.has_role(&row.app.namespace, Role::Viewer))
            .map(|row| exception_info(row, now_unix))
            .collect())
    }

    pub async fn remove_exception(&self, principal: &Principal, id: i64) -> Result<PolicyException, ControlError> {
        let unknown = || {
            ControlError::NotFound(format!(
                "exception {id} does not exist; list them with `terrarium policy exceptions list`"
            ))
        };
        let rows = self.governance.store.list_exceptions(None).await?;
        let row = rows
            .into_iter()
            .find(|row| row.id == id && principal.has_role(&row.app.namespace, Role::Viewer))
            .ok_or_else(unknown)?;
        if !principal.has_role(&row.app.namespace, Role::Operator) {
            let message = format!("removing exceptions in namespace {:?} needs its operator role", row.app.namespace);
            return Err(self
                .deny(principal, Action::PolicyExceptionRemove, Some(&row.app.namespace), Some(&row.app.name), message)
                .await);
        }
        let audit = event(
            &principal.subject,
            Action::PolicyExceptionRemove,
            &row.app,
            Outcome::Success,
            format!("exception {id} to policy {}", row.policy),
        );
        let removed = self.governance.store.remove_exception(id, &now(), audit).await?.ok_or_else(unknown)?;
        self.governance.audit_now.notify_one();
        Ok(exception_info(removed, self.settings.clock.now().unix_timestamp()))
    }

    /// Stored violations the principal may see, filtered by namespace, app and policy.
    pub async fn list_violations(
        &self,
        principal: &Principal,
        namespace: Option<&str>,
        app: Option<&str>,
        policy: Option<&str>,
    ) -> Result<Vec<StoredViolation>, ControlError> {
        if let Some(namespace) = namespace {
            self.authorize_read(principal, namespace, Action::PolicyViolations).await?;
        }
        Ok(self
            .governance
            .store
            .list_violations(namespace, app, policy)
            .await?
            .into_iter()
            .filter(|violation| principal.has_role(&violation.namespace, Role::Viewer))
            .collect())
    }

    /// The loaded policies and the last audit. Any signed-in user may look: rules are not secret.
    pub fn policy_status(&self) -> PolicyStatus {
        let mut status = self.governance.engine.status();
        let state = self.governance.state();
        status.last_audit = state.last_audit.clone();
        status.audited_apps = state.audited_apps;
        status
    }

    /// Reads the policies again now (a platform operator's call); an audit follows a change.
    pub async fn reload_policies(&self, principal: &Principal) -> Result<PolicyStatus, ControlError> {
        if !principal.has_role(identity::ALL_NAMESPACES, Role::Operator) {
            let message = "reloading policies needs a platform-wide operator role".to_owned();
            return Err(self.deny(principal, Action::PolicyReload, None, None, message).await);
        }
        self.reload_policies_now(&principal.subject, false).await?;
        Ok(self.policy_status())
    }

    /// With `quiet_repeats`, a failure equal to the last one is neither audited nor returned
    /// (the background reload retries every few seconds).
    async fn reload_policies_now(&self, by: &str, quiet_repeats: bool) -> Result<bool, ControlError> {
        let previous_error = self.governance.engine.status().reload_error;
        let result = self.governance.engine.reload();
        let (outcome, detail) = match &result {
            Ok(true) => (Outcome::Success, format!("policies {}", short(&self.governance.engine.status().version))),
            Ok(false) => return Ok(false),
            Err(error) if quiet_repeats && previous_error.as_ref() == Some(error) => return Ok(false),
            Err(error) => (Outcome::Failure, format!("the previous policies keep running: {error}")),
        };
        let audit = NewAuditEvent::new(by, Action::PolicyReload, outcome).detail(detail);
        if let Err(error) = self.store.append_audit(audit).await {
            tracing::error!(%error, "audit event could not be written");
        }
        match result {
            Ok(changed) => {
                self.governance.audit_now.notify_one();
                Ok(changed)
            }
            Err(error) => Err(ControlError::PolicyInvalid(error)),
        }
    }

    /// Evaluates every app's active revision and stores what it violates. Returns the number of apps.
    pub async fn audit_policies(&self) -> Result<u64, ControlError> {
        let directory = self.directory().await?;
        let apps = self.store.list_apps(None).await?;
        let exceptions = self.governance.store.list_exceptions(None).await?;
        let now_unix = self.settings.clock.now().unix_timestamp();
        let time = now();
        let usage = self.usage_index(None).await?;
        let mut n_violations = 0;
        for row in &apps {
            let app = &row.app;
            let violations = match self
                .audit_app(app, row.active_revision, &directory, usage.of(app), &exceptions, now_unix)
                .await
            {
                Ok(violations) => violations,
                Err(error) => {
                    tracing::error!(namespace = %app.namespace, app = %app.name, %error, "policy audit failed");
                    vec![Violation {
                        policy: "audit".to_owned(),
                        kind: Kind::Warn,
                        mode: api_types::policy::Mode::Warn,
                        message: format!("the policies could not be evaluated: {error}"),
                    }]
                }
            };
            n_violations += violations.len();
            self.governance.store.replace_violations(app, row.active_revision, &violations, &time).await?;
        }
        let next_lapse = exceptions
            .iter()
            .filter(|exception| is_active(exception, now_unix))
            .filter_map(|exception| unix(&exception.expires_at))
            .min();
        {
            let mut state = self.governance.state();
            state.last_audit = Some(time.clone());
            state.audited_apps = apps.len() as u64;
            state.next_lapse = next_lapse;
        }
        let mut audit = NewAuditEvent::new("terrarium", Action::PolicyAudit, Outcome::Success).detail(format!(
            "{} apps, {n_violations} violations, policies {}",
            apps.len(),
            short(&self.governance.engine.status().version)
        ));
        audit.time = time;
        if let Err(error) = self.store.append_audit(audit).await {
            tracing::error!(%error, "audit event could not be written");
        }
        Ok(apps.len() as u64)
    }

    async fn audit_app(
        &self,
        app: &AppKey,
        revision: i64,
        directory: &[String],
        usage: Usage,
        exceptions: &[ExceptionRow],
        now_unix: i64,
    ) -> Result<Vec<Violation>, ControlError> {
        let source = self.governance.store.manifest_source(app, revision).await?;
        let validated = match manifest::load(bundle::MANIFEST_FILE, &source) {
            Ok(validated) => validated,
            Err(diagnostics) => {
                // The manifest was valid when deployed; rules got stricter since.
                return Ok(diagnostics
                    .iter()
                    .map(|diagnostic| Violation {
                        policy: "manifest".to_owned(),
                        kind: Kind::Deny,
                        mode: api_types::policy::Mode::Deny,
                        message: diagnostic.to_string(),
                    })
                    .collect());
            }
        };
        let deployment = self.store.get_deployment(app, revision).await?;
        let files = deployment.files.keys().map(String::as_str).collect();
        let input = self.policy_input(validated.manifest(), files, &[], None, directory, usage).await?;
        let mut decision = self.evaluate(&input)?;
        apply_exceptions(&mut decision, app, exceptions, now_unix);
        let grants: HashSet<(String, String)> = self.governance.store.grants(app).await?.into_iter().collect();
        decision
            .violations
            .retain(|v| v.kind != Kind::Elevated || !grants.contains(&(v.policy.clone(), v.message.clone())));
        Ok(decision.violations)
    }

    /// The governance tasks: `policy.reload` (every `reload_every`), `policy.audit` (at start,
    /// every `audit_every` and when policies or exceptions change) and `governance.deadlines`
    /// (every second: an audit when an exception lapsed, a denial when a request timed out).
    pub fn add_governance_tasks(self: &Arc<Self>, tasks: &Tasks) {
        let settings = &self.governance.settings;
        let control = Arc::clone(self);
        tasks.add(
            TaskSpec {
                name: "policy.reload",
                about: "reads the policy directory again; keeps the running policies when the new ones fail",
                every: settings.reload_every,
                wake: None,
                at_start: false,
            },
            job(move || {
                let control = control.clone();
                async move { control.reload_policies_now("terrarium", true).await.map(drop).map_err(|e| e.to_string()) }
            }),
        );
        let control = Arc::clone(self);
        tasks.add(
            TaskSpec {
                name: "policy.audit",
                about: "evaluates every running app against the policies and stores the violations",
                every: settings.audit_every,
                wake: Some(self.governance.audit_now.clone()),
                at_start: true,
            },
            job(move || {
                let control = control.clone();
                async move { control.audit_policies().await.map(drop).map_err(|e| e.to_string()) }
            }),
        );
        let control = Arc::clone(self);
        tasks.add(
            TaskSpec {
                name: "governance.deadlines",
                about: "audits again when an exception lapsed; denies approval requests that timed out",
                every: Duration::from_secs(1),
                wake: None,
                at_start: true,
            },
            job(move || {
                let control = control.clone();
                async move { control.governance_deadlines().await.map_err(|e| e.to_string()) }
            }),
        );
    }

    /// Acts on what fell due: an exception that lapsed (audit again), requests that timed out.
    /// The first run also expires the requests an earlier run of the server left pending.
    async fn governance_deadlines(&self) -> Result<(), ControlError> {
        let now_unix = self.settings.clock.now().unix_timestamp();
        let (lapsed, timed_out) = {
            let mut state = self.governance.state();
            let first = !std::mem::replace(&mut state.deadlines_checked, true);
            (
                state.next_lapse.is_some_and(|lapse| lapse <= now_unix),
                first || state.next_timeout.is_some_and(|timeout| timeout <= now_unix),
            )
        };
        if lapsed {
            self.audit_policies().await?;
        }
        if timed_out {
            self.expire_approvals().await?;
        }
        Ok(())
    }

    /// The app's stored violations, pending requests and active exceptions, for `apps get`.
    pub(crate) async fn governance_of(
        &self,
        app: &AppKey,
    ) -> Result<(Vec<StoredViolation>, Vec<ApprovalRequest>, Vec<PolicyException>), ControlError> {
        let store = &self.governance.store;
        let violations = store.list_violations(Some(&app.namespace), Some(&app.name), None).await?;
        let pending = store
            .list_approvals(Some(&app.namespace), Some(&app.name), Some("pending"))
            .await?
            .into_iter()
            .map(approval_info)
            .collect();
        let now_unix = self.settings.clock.now().unix_timestamp();
        let exceptions = store
            .list_exceptions(Some(&app.namespace))
            .await?
            .into_iter()
            .filter(|row| row.app == *app && is_active(row, now_unix))
            .map(|row| exception_info(row, now_unix))
            .collect();
        Ok((violations, pending, exceptions))
    }

    /// When `app` does not exist yet but its first revision waits for approval, says so.
    pub(crate) async fn pending_first_revision(&self, app: &AppKey) -> Option<ControlError> {
        let pending =
            self.governance.store.list_approvals(Some(&app.namespace), Some(&app.name), Some("pending")).await.ok()?;
        let row = pending.first()?;
        Some(ControlError::NotFound(format!(
            "app {app} is not live yet: its first revision waits for approval in request {} (`terrarium approvals show {}`)",
            row.id, row.id
        )))
    }
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
