//! Policy exceptions: an operator lets one app break one policy until a given time.

use super::*;

impl ControlPlane {
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
}
