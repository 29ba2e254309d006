//! Approvals of elevated requests: listing and showing them, votes by the namespace's
//! approvers (never on one's own request), timeouts, and activating an approved revision.

use super::*;

impl ControlPlane {
    pub(super) async fn get_approval_row(&self, id: i64) -> Result<ApprovalRow, ControlError> {
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

    pub(super) async fn expire_due(&self) -> Result<(), ControlError> {
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
        // An approval would activate the revision, which an archived app cannot take: refused
        // before the vote is counted, so the approver can vote again once it is restored.
        if approve {
            self.refuse_if_archived(&app).await?;
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
    pub(super) async fn activate_approved(
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
}
