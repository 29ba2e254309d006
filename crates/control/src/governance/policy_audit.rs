//! The policy audit and the policies' life: stored violations, status, reloads, the audit of
//! every running app, and the background tasks that keep deadlines.

use super::*;

impl ControlPlane {
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
    pub(super) async fn reload_policies_now(&self, by: &str, quiet_repeats: bool) -> Result<bool, ControlError> {
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

    pub(super) async fn audit_app(
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
    pub(super) async fn governance_deadlines(&self) -> Result<(), ControlError> {
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
