//! The TTL lifecycle: each app with `spec.ttlDays` expires that many days after its last
//! deploy. It is `Expiring` in its last 30 days and `Expired` after; its owner is told at 30
//! and 7 days and the day before (each once per expiry date, by e-mail to the owner and on the
//! operators' webhooks); an extension moves the date within the namespace's maximum. Once
//! expired it is archived (its owner told again), and its archive is deleted after the
//! retention, a week after a last notice.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::*;

/// `[lifecycle]` in `terrarium.toml`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSection {
    /// Days an archive is kept; then it is deleted, with the app, after a last notice a week
    /// before.
    pub archive_retention_days: u32,
}

impl Default for LifecycleSection {
    fn default() -> LifecycleSection {
        LifecycleSection { archive_retention_days: 180 }
    }
}

impl LifecycleSection {
    pub fn validate(&self) -> Vec<String> {
        match self.archive_retention_days {
            8..=3650 => Vec::new(),
            days => vec![format!(
                "lifecycle.archive_retention_days is {days}; give from 8 to 3650 days (the last notice goes out a week before)"
            )],
        }
    }
}

/// The last notice before an archive is deleted goes out this many days before.
const LAST_NOTICE_DAYS: i64 = 7;

/// How long an archive waits for the app's running requests to finish before giving up.
const ARCHIVE_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// An app is `Expiring` this many days before its expiry.
pub const EXPIRING_DAYS: i64 = 30;

/// When the owner is told, in days before the expiry, most urgent last. The last is a day
/// ahead, so it is not lost to the archive that comes on the day.
const REMINDERS: [(i64, &str); 3] = [(30, "30 days"), (7, "7 days"), (1, "1 day")];

/// What an app's expiry makes of its phase at `now`.
pub fn phase(expires_at: Option<&str>, now: OffsetDateTime) -> &'static str {
    let Some(expires) = expires_at.and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok()) else {
        return "Active";
    };
    if expires <= now {
        "Expired"
    } else if expires - now <= time::Duration::days(EXPIRING_DAYS) {
        "Expiring"
    } else {
        "Active"
    }
}

/// The most urgent reminder due for an expiry at `now`, if any.
fn reminder_due(expires: OffsetDateTime, now: OffsetDateTime) -> Option<&'static str> {
    let left = expires - now;
    REMINDERS.iter().rev().find(|(days, _)| left <= time::Duration::days(*days)).map(|(_, name)| *name)
}

pub(crate) fn format_time(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0).unwrap_or(at).format(&Rfc3339).unwrap_or_default()
}

impl ControlPlane {
    /// The expiry a revision committed now gets: now plus its `ttlDays`.
    pub(crate) fn expiry_from_now(&self, ttl_days: Option<u32>) -> Option<String> {
        ttl_days.map(|days| format_time(self.settings.clock.now() + time::Duration::days(i64::from(days))))
    }

    /// Moves an app's expiry `days` later (from now, if it has passed), for its owner or an
    /// operator, within the namespace's longest TTL counted from now. Audited with the reason.
    pub async fn extend_app(
        &self,
        principal: &Principal,
        app: &AppKey,
        request: &api_types::ExtendRequest,
    ) -> Result<AppSummary, ControlError> {
        let _guard = self.change_lock.lock().await;
        let row = self.authorize_change(principal, app, Action::AppExtend).await?;
        if row.archived.is_some() {
            return Err(ControlError::Conflict(format!(
                "app {app} is archived; `terrarium apps restore {app}` brings it back with a fresh TTL"
            )));
        }
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(ControlError::InvalidRequest(
                "say why the app is still needed: --reason \"the team uses it every Monday\"".to_owned(),
            ));
        }
        if reason.len() > 1000 {
            return Err(ControlError::InvalidRequest("the reason is at most 1,000 characters".to_owned()));
        }
        let max_days = self.governance.namespace(&app.namespace).max_ttl_days;
        if request.days == 0 || request.days > max_days {
            return Err(ControlError::InvalidRequest(format!(
                "--days must be from 1 to {max_days} (namespace {:?} keeps apps at most {max_days} days)",
                app.namespace
            )));
        }
        let Some(current) = row.expires_at.as_deref().and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok()) else {
            return Err(ControlError::InvalidRequest(format!(
                "app {app} has no TTL (spec.ttlDays), so it does not expire and needs no extension"
            )));
        };
        let now = self.settings.clock.now();
        let extended = current.max(now) + time::Duration::days(i64::from(request.days));
        let longest = now + time::Duration::days(i64::from(max_days));
        if extended > longest {
            let message = format!(
                "extending app {app} by {} days would keep it until {}, past namespace {:?}'s maximum of {max_days} days from today ({}); extend by fewer days, or ask an operator for a `ttl` policy exception",
                request.days,
                format_time(extended),
                app.namespace,
                format_time(longest),
            );
            return Err(self.deny(principal, Action::AppExtend, Some(&app.namespace), Some(&app.name), message).await);
        }
        let expires_at = format_time(extended);
        let detail = format!("until {expires_at} (was {}): {reason}", format_time(current));
        let event = audit(principal, Action::AppExtend, app, None, detail);
        self.store.set_expiry(app, &expires_at, event).await?;
        let row = self.store.get_app(app).await?;
        Ok(self.summary(row))
    }

    /// The apps among `apps` that expire within `days` from now (or have expired).
    pub fn expiring_within(&self, apps: Vec<AppSummary>, days: u32) -> Vec<AppSummary> {
        // Days past what a date can hold mean every app that expires at all.
        let until = self.settings.clock.now().checked_add(time::Duration::days(i64::from(days)));
        apps.into_iter()
            .filter(|app| {
                app.expires_at
                    .as_deref()
                    .and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
                    .is_some_and(|at| until.is_none_or(|until| at <= until))
            })
            .collect()
    }

    /// The e-mail addresses of an app's owner; none (the platform team is told instead) when
    /// they cannot be read.
    async fn owner_addresses(&self, owner: &str) -> Vec<String> {
        self.owners.addresses(owner).await.unwrap_or_else(|error| {
            tracing::warn!(%error, owner, "the owner's addresses could not be read; telling the platform team");
            Vec::new()
        })
    }

    /// Tells the owner of every app whose expiry is near (30 days, 7 days, the day before), each
    /// reminder once per expiry date: e-mail to the owner (the user, or the group's members)
    /// and the operators' webhooks, and an audit event. The `lifecycle.reminders` task.
    pub async fn send_expiry_reminders(&self) -> Result<u64, ControlError> {
        let now = self.settings.clock.now();
        let mut sent = 0;
        // An archived app is told of its archive's end instead (`keep_or_delete_archive`).
        for row in self.store.list_apps(None).await?.into_iter().filter(|row| row.archived.is_none()) {
            let Some(expires) = row.expires_at.as_deref().and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
            else {
                continue;
            };
            let Some(due) = reminder_due(expires, now) else { continue };
            let expires_at = format_time(expires);
            let key = format!("app.expiring {} {expires_at} {due}", row.app);
            let recipients = self.owner_addresses(&row.owner).await;
            let app = &row.app;
            // The days really left (a reminder sent late says so), rounded up.
            let left = expires - now;
            let when = match left.whole_seconds() {
                ..=0 => format!("expired on {expires_at}"),
                seconds => match (seconds + 86_399) / 86_400 {
                    1 => format!("expires within a day, on {expires_at}"),
                    days => format!("expires in {days} days, on {expires_at}"),
                },
            };
            let subject = format!("App {app} {when}");
            let text = format!(
                "{app}, owned by {}, {when}; then it is archived and stops serving. If it is still needed, extend it: `terrarium apps extend {app} --days 30 --reason \"...\"`, or deploy a new revision, which renews it. Its URL: {}",
                row.owner,
                self.urls(app).first().cloned().unwrap_or_default()
            );
            let details = serde_json::json!({
                "namespace": app.namespace,
                "app": app.name,
                "owner": row.owner,
                "expires_at": expires_at,
                "reminder": due,
                "recipients": recipients,
            });
            let notification = notify::Notification { kind: "app.expiring", subject, text, details };
            if !self.notifier.notify_once_to(&key, notification, &recipients).await {
                continue;
            }
            sent += 1;
            let told = match recipients.is_empty() {
                true => "the platform team (the owner has no e-mail address)".to_owned(),
                false => recipients.join(", "),
            };
            let detail = format!("{when}; told {told}");
            let event =
                NewAuditEvent::new("terrarium", Action::AppExpiryNotice, Outcome::Success).app(app).detail(detail);
            if let Err(error) = self.store.append_audit(event).await {
                tracing::error!(%error, "audit event could not be written");
            }
        }
        Ok(sent)
    }
}

/// What an archive holds, stored as JSON in the blob store under its own digest; the data
/// parts are blobs of their own, named by digest.
#[derive(serde::Serialize, serde::Deserialize)]
struct ArchiveManifest {
    format: u32,
    namespace: String,
    app: String,
    /// The revision that was live; its bundle and manifest stay in the registry and blobs.
    revision: i64,
    bundle_digest: String,
    archived_at: String,
    archived_by: String,
    reason: String,
    /// `name` → the digest of its bytes.
    data: Vec<(String, String)>,
}

impl ControlPlane {
    /// A deploy or a rollback of an archived app is refused: restoring brings its data back.
    pub(crate) async fn refuse_if_archived(&self, app: &AppKey) -> Result<(), ControlError> {
        match self.store.get_app(app).await {
            Ok(row) if row.archived.is_some() => Err(ControlError::Conflict(format!(
                "app {app} is archived; bring it back with its data first: `terrarium apps restore {app}`"
            ))),
            _ => Ok(()),
        }
    }

    /// Archives an app. It stops serving first (410), and its requests still running finish,
    /// so the archive holds every write; then its data goes into an archive in the blob store
    /// (content-addressed), the registry marks it archived in one transaction with the audit
    /// event, and only then are its stores freed. Anything failing before the mark puts the app
    /// back as it was, serving; a crash leaves it live (it loads at start) or archived with its
    /// data kept.
    pub async fn archive_app(
        &self,
        principal: &Principal,
        app: &AppKey,
        reason: &str,
    ) -> Result<AppSummary, ControlError> {
        let _guard = self.change_lock.lock().await;
        let row = self.authorize_change(principal, app, Action::AppArchive).await?;
        self.archive_locked(&principal.subject, row, reason).await
    }

    async fn archive_locked(&self, by: &str, row: AppRow, reason: &str) -> Result<AppSummary, ControlError> {
        let app = row.app.clone();
        if row.archived.is_some() {
            return Err(ControlError::Conflict(format!("app {app} is archived already")));
        }
        let deployment = self.store.get_deployment(&app, row.active_revision).await?;
        let archived_at = format_time(self.settings.clock.now());
        let live = self.routes.get(&app);
        self.archived.insert(app.clone(), gateway::ArchivedApp { archived_at: archived_at.clone() });
        self.routes.remove(&app);
        // Held until the app is archived or back: a request that found the app just before it
        // went is refused (503), never let in after its data was read.
        let drained = match &live {
            Some(live) => live.admission.drain(ARCHIVE_DRAIN).await.map(Some),
            None => Ok(None),
        };
        let kept = match &drained {
            Ok(_) => self.keep_archive(by, &row, &deployment, &archived_at, reason).await,
            Err(running) => Err(ControlError::Conflict(format!(
                "app {app} still had {running} request(s) running after {} seconds; it was not archived and \
                 serves again. Try again when it is quieter",
                ARCHIVE_DRAIN.as_secs()
            ))),
        };
        if let Err(error) = kept {
            drop(drained);
            self.archived.remove(&app);
            if let Some(live) = live {
                self.routes.put_back(live);
            }
            return Err(error);
        }
        self.changed.notify_one();
        if let Err(error) = self.hooks.drop_data(&deployment).await {
            tracing::error!(%error, %app, "the archived app's live data could not be freed; its archive is kept");
        }
        self.tell_archived(&row, &archived_at, reason).await;
        let row = self.store.get_app(&app).await?;
        Ok(self.summary(row))
    }

    /// Tells an archived app's owner (and the operators' webhooks) what happened and how to
    /// bring it back, once per archive.
    async fn tell_archived(&self, row: &AppRow, archived_at: &str, reason: &str) {
        let app = &row.app;
        let retention = self.settings.lifecycle.archive_retention_days;
        let notification = notify::Notification {
            kind: "app.archived",
            subject: format!("App {app} was archived"),
            text: format!(
                "{app}, owned by {}, was archived on {archived_at} ({reason}) and no longer serves. Its code and data are kept for {retention} days; `terrarium apps restore {app}` brings it back as it was.",
                row.owner
            ),
            details: serde_json::json!({ "namespace": app.namespace, "app": app.name, "archived_at": archived_at }),
        };
        let recipients = self.owner_addresses(&row.owner).await;
        self.notifier.notify_once_to(&format!("app.archived {app} {archived_at}"), notification, &recipients).await;
    }

    /// Writes the archive of an app that no longer serves, and marks it archived.
    async fn keep_archive(
        &self,
        by: &str,
        row: &AppRow,
        deployment: &Deployment,
        archived_at: &str,
        reason: &str,
    ) -> Result<(), ControlError> {
        let app = &row.app;
        let parts = self
            .hooks
            .archive_data(deployment)
            .await
            .map_err(|error| ControlError::Internal(format!("the data of {app} could not be archived: {error}")))?;
        let mut data = Vec::new();
        for part in &parts {
            let digest =
                self.blobs.put(&part.bytes).await.map_err(|error| ControlError::Internal(error.to_string()))?;
            data.push((part.name.clone(), digest));
        }
        let manifest = ArchiveManifest {
            format: 1,
            namespace: app.namespace.clone(),
            app: app.name.clone(),
            revision: row.active_revision,
            bundle_digest: deployment.bundle_digest.clone(),
            archived_at: archived_at.to_owned(),
            archived_by: by.to_owned(),
            reason: reason.to_owned(),
            data,
        };
        let json = serde_json::to_vec(&manifest).map_err(|error| ControlError::Internal(error.to_string()))?;
        let digest = self.blobs.put(&json).await.map_err(|error| ControlError::Internal(error.to_string()))?;
        let sizes: Vec<String> = parts.iter().map(|part| format!("{} {} bytes", part.name, part.bytes.len())).collect();
        let detail = format!(
            "revision {} archived as {digest} ({}): {reason}",
            row.active_revision,
            if sizes.is_empty() { "no data".to_owned() } else { sizes.join(", ") }
        );
        let event = NewAuditEvent::new(by, Action::AppArchive, Outcome::Success)
            .app(app)
            .revision(Some(row.active_revision))
            .detail(detail);
        self.store.set_archived(app, Some((archived_at, &digest)), row.expires_at.as_deref(), event).await?;
        Ok(())
    }

    /// Brings an archived app back: its data from the archive into its (emptied) stores, its
    /// revision loaded and serving, a fresh TTL. Audited.
    pub async fn restore_app(&self, principal: &Principal, app: &AppKey) -> Result<AppSummary, ControlError> {
        let _guard = self.change_lock.lock().await;
        let row = self.authorize_change(principal, app, Action::AppRestore).await?;
        let Some((_, digest)) = row.archived.clone() else {
            return Err(ControlError::Conflict(format!(
                "app {app} is not archived; it is {}",
                self.summary(row).phase
            )));
        };
        let json = self.blobs.get(&digest).await.map_err(|error| {
            ControlError::Internal(format!("the archive {digest} of {app} could not be read: {error}"))
        })?;
        let manifest: ArchiveManifest = serde_json::from_slice(&json)
            .map_err(|error| ControlError::Internal(format!("the archive {digest} of {app} is unreadable: {error}")))?;
        let mut parts = Vec::new();
        for (name, part_digest) in &manifest.data {
            let bytes = self.blobs.get(part_digest).await.map_err(|error| {
                ControlError::Internal(format!("part {name} of the archive of {app} could not be read: {error}"))
            })?;
            parts.push(hooks::DataPart { name: name.clone(), bytes: bytes.to_vec() });
        }
        let deployment = self.store.get_deployment(app, row.active_revision).await?;
        // Whatever a crash between an archive's mark and its freeing left behind goes first
        // (the archive itself is untouched).
        self.hooks
            .drop_data(&deployment)
            .await
            .map_err(|error| ControlError::Internal(format!("the stores of {app} could not be emptied: {error}")))?;
        // Loaded before the data goes back (the stores learn the app's bindings from it); a
        // revision that no longer loads stays archived.
        let live = self.load(Arc::new(deployment.clone())).await.map_err(ControlError::Load)?;
        self.hooks
            .restore_data(app, &parts)
            .await
            .map_err(|error| ControlError::Internal(format!("the data of {app} could not be restored: {error}")))?;
        let expires_at = self.expiry_from_now(deployment.ttl_days);
        let detail = format!("revision {} from archive {digest} of {}", row.active_revision, manifest.archived_at);
        let event = audit(principal, Action::AppRestore, app, Some(row.active_revision), detail);
        self.store.set_archived(app, None, expires_at.as_deref(), event).await?;
        self.archived.remove(app);
        self.routes.insert(live);
        self.changed.notify_one();
        let row = self.store.get_app(app).await?;
        Ok(self.summary(row))
    }

    /// Archives every app past its expiry, tells owners of archives deleted within a week and
    /// deletes archives past their retention, with their apps (the `lifecycle.archive` task);
    /// answers how many apps were archived.
    pub async fn archive_expired(&self) -> Result<u64, ControlError> {
        let _guard = self.change_lock.lock().await;
        let now = self.settings.clock.now();
        let mut archived = 0;
        let rows = self.store.list_apps(None).await?;
        for row in &rows {
            if let Some((archived_at, digest)) = &row.archived {
                self.keep_or_delete_archive(row, archived_at, digest, now).await;
            }
        }
        for row in rows {
            let expired = row.archived.is_none()
                && row
                    .expires_at
                    .as_deref()
                    .and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
                    .is_some_and(|at| at <= now);
            if !expired {
                continue;
            }
            let app = row.app.clone();
            let reason = format!("its TTL ran out on {}", row.expires_at.clone().unwrap_or_default());
            match self.archive_locked("terrarium", row, &reason).await {
                Ok(_) => archived += 1,
                Err(error) => tracing::error!(%error, %app, "an expired app could not be archived; it keeps serving"),
            }
        }
        Ok(archived)
    }
}

impl ControlPlane {
    /// An archive past its retention goes, with its app, but never sooner than a week after its
    /// owner was told: a notice that went out late (the server was down in that week) pushes the
    /// deletion back.
    async fn keep_or_delete_archive(&self, row: &AppRow, archived_at: &str, digest: &str, now: OffsetDateTime) {
        let Ok(at) = OffsetDateTime::parse(archived_at, &Rfc3339) else { return };
        let app = &row.app;
        let notice = time::Duration::days(LAST_NOTICE_DAYS);
        let retained_until = at + time::Duration::days(i64::from(self.settings.lifecycle.archive_retention_days));
        if now < retained_until - notice {
            return;
        }
        let told_at = row.archive_notice_at.as_deref().and_then(|told| OffsetDateTime::parse(told, &Rfc3339).ok());
        let Some(told_at) = told_at else {
            let when = format_time(retained_until.max(now + notice));
            let recipients = self.owner_addresses(&row.owner).await;
            let notification = notify::Notification {
                kind: "app.archive_deleting",
                subject: format!("The archive of {app} will be deleted on {when}"),
                text: format!(
                    "{app}, owned by {}, was archived on {archived_at}. Its archive (code and data) will be deleted on {when}. To keep it, restore it before: `terrarium apps restore {app}`.",
                    row.owner
                ),
                details: serde_json::json!({ "namespace": app.namespace, "app": app.name, "deleted_at": when }),
            };
            let key = format!("app.archive_deleting {app} {archived_at}");
            self.notifier.notify_once_to(&key, notification, &recipients).await;
            let detail = format!("the archive will be deleted on {when}");
            let event =
                NewAuditEvent::new("terrarium", Action::AppExpiryNotice, Outcome::Success).app(app).detail(detail);
            if let Err(error) = self.store.set_archive_notice(app, &format_time(now), event).await {
                tracing::error!(%error, %app, "the archive's last notice could not be recorded");
            }
            return;
        };
        if now < retained_until.max(told_at + notice) {
            return;
        }
        let detail = format!(
            "the archive of {archived_at} ({digest}) reached its retention of {} days",
            self.settings.lifecycle.archive_retention_days
        );
        let event = NewAuditEvent::new("terrarium", Action::AppDelete, Outcome::Success).app(app).detail(detail);
        let principal = Principal { subject: "terrarium".to_owned(), groups: Vec::new(), roles: Vec::new() };
        if let Err(error) = self.delete_locked(&principal, row.clone(), event).await {
            tracing::error!(%error, %app, "an archive past its retention could not be deleted; it is kept");
        }
    }

    /// Removes a deleted app's archive from the blob store: its record, and the parts no other
    /// archive names (never an empty one: an empty file can be a bundle's too).
    pub(crate) async fn remove_archive(&self, app: &AppKey, digest: &str) {
        let parts = match self
            .blobs
            .get(digest)
            .await
            .ok()
            .and_then(|json| serde_json::from_slice::<ArchiveManifest>(&json).ok())
        {
            Some(manifest) => manifest.data.into_iter().map(|(_, part)| part).collect::<Vec<_>>(),
            None => Vec::new(),
        };
        let mut named_elsewhere = std::collections::HashSet::new();
        let others = match self.store.list_apps(None).await {
            Ok(rows) => rows,
            Err(error) => {
                // Which parts are shared is unknown: only the record goes.
                tracing::error!(%error, %app, "the archives could not be listed; the deleted archive's parts are kept");
                named_elsewhere.extend(parts.iter().cloned());
                Vec::new()
            }
        };
        for other in others.iter().filter(|other| other.app != *app) {
            if let Some((_, other_digest)) = &other.archived
                && let Ok(json) = self.blobs.get(other_digest).await
                && let Ok(manifest) = serde_json::from_slice::<ArchiveManifest>(&json)
            {
                named_elsewhere.extend(manifest.data.into_iter().map(|(_, part)| part));
            }
        }
        let empty = bundle::file_digest(&[]);
        for part in
            parts.iter().filter(|part| !named_elsewhere.contains(*part) && **part != empty).chain([&digest.to_owned()])
        {
            if let Err(error) = self.blobs.remove(part).await {
                tracing::warn!(%error, %app, part, "an archive part could not be removed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn the_phase_follows_the_expiry() {
        let now = at("2026-12-01T00:00:00Z");
        assert_eq!(phase(None, now), "Active");
        assert_eq!(phase(Some("2027-02-01T00:00:00Z"), now), "Active");
        assert_eq!(phase(Some("2026-12-31T00:00:00Z"), now), "Expiring");
        assert_eq!(phase(Some("2026-12-01T00:00:00Z"), now), "Expired");
        assert_eq!(phase(Some("not a time"), now), "Active");
    }

    #[test]
    fn the_most_urgent_reminder_is_due() {
        let expires = at("2026-12-31T12:00:00Z");
        assert_eq!(reminder_due(expires, at("2026-11-30T00:00:00Z")), None);
        assert_eq!(reminder_due(expires, at("2026-12-01T12:00:00Z")), Some("30 days"));
        assert_eq!(reminder_due(expires, at("2026-12-24T12:00:00Z")), Some("7 days"));
        assert_eq!(reminder_due(expires, at("2026-12-30T12:00:00Z")), Some("1 day"));
        assert_eq!(reminder_due(expires, at("2027-01-05T00:00:00Z")), Some("1 day"));
    }
}
