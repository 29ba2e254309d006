//! Deploy admission: the policies' input for a revision (manifest, files, findings, principal,
//! namespace settings, owners, usage), their decision with exceptions and grants applied, and
//! the approval request a revision asking for something elevated waits in.

use super::*;

impl ControlPlane {
    /// Everyone an app may be owned by, for the policies' `directory`.
    pub(super) async fn directory(&self) -> Result<Vec<String>, ControlError> {
        self.owners.owners().await.map_err(ControlError::Internal)
    }

    /// The input policies see: `manifest`, `bundle`, `principal` (at deploy), `namespace`, `directory`.
    pub(super) async fn policy_input(
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
            "egress": egress_facts(manifest),
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
    pub(super) async fn usage_index(&self, namespace: Option<&str>) -> Result<UsageIndex, ControlError> {
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

    pub(super) fn evaluate(&self, input: &serde_json::Value) -> Result<Decision, ControlError> {
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
}

/// What the policies know about the app's egress beyond its manifest: its wildcards over
/// shared-hosting domains (`*.github.io`), where anyone can publish.
pub fn egress_facts(manifest: &manifest::MicroApp) -> serde_json::Value {
    let entries = manifest.spec.allowed_egress.as_deref().unwrap_or_default();
    let shared: Vec<serde_json::Value> = egress::AllowList::shared_hosting(entries)
        .into_iter()
        .map(|(entry, suffix)| serde_json::json!({ "entry": entry, "suffix": suffix }))
        .collect();
    serde_json::json!({ "sharedHosting": shared })
}
