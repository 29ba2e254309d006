//! Reads for a signed-in principal, each deciding what the principal may see: the control API
//! and the web console call these, so neither HTTP surface decides anything itself.

use std::collections::BTreeMap;

use super::*;

impl ControlPlane {
    /// The apps of `namespace` (or of every namespace) that the principal may read.
    pub async fn visible_apps(
        &self,
        principal: &Principal,
        namespace: Option<&str>,
    ) -> Result<Vec<AppSummary>, ControlError> {
        if let Some(namespace) = namespace {
            self.authorize_read(principal, namespace, Action::AppList).await?;
        }
        let mut apps = self.list_apps(namespace).await?;
        apps.retain(|app| principal.has_role(&app.namespace, Role::Viewer));
        self.audit_read(principal, Action::AppList, namespace).await;
        Ok(apps)
    }

    /// The namespaces the principal may read.
    pub async fn visible_namespaces(&self, principal: &Principal) -> Result<Vec<NamespaceInfo>, ControlError> {
        let mut namespaces = self.list_namespaces().await?;
        namespaces.retain(|namespace| principal.has_role(&namespace.name, Role::Viewer));
        self.audit_read(principal, Action::NamespaceList, None).await;
        Ok(namespaces)
    }

    /// One app, for a viewer of its namespace.
    pub async fn app_for(&self, principal: &Principal, app: &AppKey) -> Result<AppDetail, ControlError> {
        self.authorize_read(principal, &app.namespace, Action::AppGet).await?;
        let detail = self.get_app(app).await?;
        self.audit_read(principal, Action::AppGet, Some(&app.namespace)).await;
        Ok(detail)
    }

    /// The audit log: one namespace's events (optionally one app's) for the namespace's
    /// operators, everything for platform admins. Newest first, at most `filter.limit` (1 to
    /// 10,000); `since` may also be a span back from now (`30m`, `24h`, `7d`).
    pub async fn audit_log(
        &self,
        principal: &Principal,
        mut filter: crate::store::AuditFilter,
    ) -> Result<Vec<AuditEvent>, ControlError> {
        let allowed = match &filter.namespace {
            Some(namespace) => principal.has_role(namespace, Role::Operator),
            None => principal.is_platform_admin(),
        };
        if !allowed {
            let message =
                "reading the audit log needs the operator role in the namespace (pass --namespace) or platform admin"
                    .to_owned();
            return Err(self.deny(principal, Action::AuditList, filter.namespace.as_deref(), None, message).await);
        }
        if let Some(since) = &filter.since {
            filter.since = Some(since_time(since, self.settings.clock.now())?);
        }
        filter.limit = filter.limit.clamp(1, 10_000);
        self.audit_read(principal, Action::AuditList, filter.namespace.as_deref()).await;
        self.list_audit(filter).await
    }

    /// The files of one revision (the active one by default) as (path, contents) sorted by
    /// path, for a viewer of the namespace: what the console's editor opens.
    pub async fn app_files(
        &self,
        principal: &Principal,
        app: &AppKey,
        revision: Option<i64>,
    ) -> Result<(i64, Vec<(String, Vec<u8>)>), ControlError> {
        self.authorize_read(principal, &app.namespace, Action::AppFiles).await?;
        let revision = match revision {
            Some(revision) => revision,
            None => self.store.get_app(app).await?.active_revision,
        };
        let deployment = self.store.get_deployment(app, revision).await?;
        let mut files = Vec::with_capacity(deployment.files.len());
        for (path, file) in &deployment.files {
            let contents = self
                .blobs
                .get(&file.digest)
                .await
                .map_err(|error| ControlError::Internal(format!("reading the blob of {path}: {error}")))?;
            files.push((path.clone(), contents.to_vec()));
        }
        self.audit_read(principal, Action::AppFiles, Some(&app.namespace)).await;
        Ok((revision, files))
    }

    /// What each of the app's latest `limit` revisions changed from the one before it: files
    /// added, changed and removed, for a viewer of the namespace. Newest first.
    pub async fn revision_changes(
        &self,
        principal: &Principal,
        app: &AppKey,
        limit: usize,
    ) -> Result<Vec<api_types::RevisionChanges>, ControlError> {
        self.authorize_read(principal, &app.namespace, Action::AppGet).await?;
        let mut revisions: Vec<i64> =
            self.store.list_revisions(app).await?.into_iter().map(|revision| revision.revision).collect();
        revisions.sort_unstable();
        let start = revisions.len().saturating_sub(limit + 1);
        let mut previous: Option<BTreeMap<String, String>> = None;
        let mut changes = Vec::new();
        for (index, revision) in revisions[start..].iter().enumerate() {
            let files: BTreeMap<String, String> = self
                .store
                .get_deployment(app, *revision)
                .await?
                .files
                .into_iter()
                .map(|(path, file)| (path, file.digest))
                .collect();
            if let Some(before) = &previous {
                changes.push(api_types::RevisionChanges::between(*revision, before, &files));
            } else if start == 0 && index == 0 {
                changes.push(api_types::RevisionChanges::between(*revision, &BTreeMap::new(), &files));
            }
            previous = Some(files);
        }
        changes.reverse();
        Ok(changes)
    }
}

impl ControlPlane {
    /// Platform-wide reads (chargeback across namespaces): a viewer on `*`. `what` says in
    /// words what is being read, for the refusal.
    pub async fn authorize_platform_read(
        &self,
        principal: &Principal,
        action: Action,
        what: &str,
    ) -> Result<(), ControlError> {
        if principal.has_role(ALL_NAMESPACES, Role::Viewer) {
            return Ok(());
        }
        let message = format!("{what} covers every namespace: it needs a platform-wide viewer role");
        Err(self.deny(principal, action, None, None, message).await)
    }

    /// Platform administration (the notification record): admin on `*`.
    pub async fn authorize_platform_admin(
        &self,
        principal: &Principal,
        action: Action,
        what: &str,
    ) -> Result<(), ControlError> {
        if principal.is_platform_admin() {
            return Ok(());
        }
        Err(self.deny(principal, action, None, None, format!("{what} needs platform admin")).await)
    }
}

impl ControlPlane {
    /// An app's recent log lines (at most `tail`) and, with `follow`, the live feed of every
    /// app's lines (the caller keeps this app's), for a viewer of the namespace.
    pub async fn app_logs(
        &self,
        principal: &Principal,
        app: &AppKey,
        tail: usize,
        follow: bool,
    ) -> Result<
        (Vec<api_types::LogEntry>, Option<tokio::sync::broadcast::Receiver<(AppKey, api_types::LogEntry)>>),
        ControlError,
    > {
        self.authorize_read(principal, &app.namespace, Action::AppLogs).await?;
        // Fails with 404 for an app that does not exist, rather than streaming nothing.
        self.get_app(app).await?;
        let live = follow.then(|| self.logs.subscribe());
        let recent = self.logs.tail(app, tail);
        self.audit_read(principal, Action::AppLogs, Some(&app.namespace)).await;
        Ok((recent, live))
    }
}

impl ControlPlane {
    /// The operator console (inventory, approvals queue, policy): the operator role in some
    /// namespace, or platform admin. What each page lists is still decided per namespace.
    pub async fn authorize_operator_console(&self, principal: &Principal, action: Action) -> Result<(), ControlError> {
        if principal.roles.iter().any(|(_, role)| *role >= Role::Operator) {
            return Ok(());
        }
        let message = format!(
            "{} is not an operator: the operator console needs the operator role in a namespace",
            principal.subject
        );
        Err(self.deny(principal, action, None, None, message).await)
    }
}

/// `since` as the RFC 3339 time it names: itself, or a span back from `now` (`30m`, `24h`, `7d`).
fn since_time(since: &str, now: time::OffsetDateTime) -> Result<String, ControlError> {
    let format = time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(since, &format) {
        return at
            .to_offset(time::UtcOffset::UTC)
            .format(&format)
            .map_err(|error| ControlError::Internal(error.to_string()));
    }
    let span = since.trim();
    let unit_seconds = [("s", 1i64), ("m", 60), ("h", 3600), ("d", 86_400)];
    let seconds = unit_seconds.iter().find_map(|(unit, factor)| {
        let number: i64 = span.strip_suffix(unit)?.parse().ok().filter(|n: &i64| *n >= 0)?;
        number.checked_mul(*factor).filter(|seconds| *seconds <= 100 * 365 * 86_400)
    });
    let Some(seconds) = seconds else {
        return Err(ControlError::InvalidName(format!(
            "since {since:?} is not a time: give a span back from now (30m, 24h, 7d) or an RFC 3339 time (2026-12-01T00:00:00Z)"
        )));
    };
    let at = now.to_offset(time::UtcOffset::UTC) - time::Duration::seconds(seconds);
    at.replace_nanosecond(0).unwrap_or(at).format(&format).map_err(|error| ControlError::Internal(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_span_or_a_time() {
        let format = time::format_description::well_known::Rfc3339;
        let now = time::OffsetDateTime::parse("2026-12-05T12:00:00Z", &format).unwrap();
        assert_eq!(since_time("24h", now).unwrap(), "2026-12-04T12:00:00Z");
        assert_eq!(since_time("30m", now).unwrap(), "2026-12-05T11:30:00Z");
        assert_eq!(since_time("7d", now).unwrap(), "2026-11-28T12:00:00Z");
        assert_eq!(since_time("2026-12-01T00:00:00+01:00", now).unwrap(), "2026-11-30T23:00:00Z");
        let error = since_time("yesterday", now).unwrap_err().to_string();
        assert!(error.contains("30m, 24h, 7d"), "{error}");
        assert!(since_time("-5h", now).is_err());
        assert!(since_time("5ч", now).is_err(), "a multibyte unit is refused, never a panic");
        assert!(since_time("99999999999999d", now).is_err(), "an overflowing span is refused");
    }
}
