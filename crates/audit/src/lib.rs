//! The audit vocabulary: every action the platform records, how it ended, and the one way to
//! build an event. Every service writes its events through [`AuditEvent::new`]; the names are
//! the stored form, so they never change once shipped (add, do not rename).

use deployment::AppKey;

/// What was done (or attempted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// A signed-in user was refused an app.
    AppAccess,
    AppDelete,
    AppDeploy,
    /// An app's expiry was moved later.
    AppExtend,
    /// An app was archived (its TTL ran out, or by hand) with its data.
    AppArchive,
    /// An archived app was brought back.
    AppRestore,
    /// An app's owner was told it expires soon.
    AppExpiryNotice,
    /// An app's files were read (the web console's editor).
    AppFiles,
    AppGet,
    AppList,
    AppLogs,
    /// A suspended app serves again.
    AppResume,
    AppRollback,
    /// A budget or a monthly quota stopped an app.
    AppSuspend,
    ApprovalApprove,
    ApprovalDeny,
    /// An undecided request timed out.
    ApprovalExpire,
    ApprovalList,
    /// A revision waits for approval.
    ApprovalRequest,
    ApprovalShow,
    /// A newer revision replaced a pending request.
    ApprovalSupersede,
    ApprovalVote,
    AuditList,
    AuthLogin,
    AuthTokenExchange,
    AuthWhoami,
    ChargebackRead,
    ClockAdvance,
    ClockGet,
    /// An app's stored data was deleted (with the app).
    DataDelete,
    DataExport,
    DataImport,
    DataUsage,
    DataMigrate,
    /// An app's cached responses were purged.
    CachePurge,
    EgressList,
    KeysRotate,
    MetricsRead,
    NamespaceCreate,
    NamespaceList,
    NotificationList,
    PolicyAudit,
    PolicyExceptionAdd,
    PolicyExceptionList,
    PolicyExceptionRemove,
    PolicyReload,
    PolicyStatus,
    PolicyViolations,
    RoleGrant,
    RoleList,
    RoleRevoke,
    /// A secret version passed its expiry.
    SecretExpired,
    /// A secret version expires soon.
    SecretExpires,
    SecretFlagRotation,
    SecretList,
    SecretRemove,
    SecretSet,
    SecretVersions,
    SecretsRotateKek,
    TasksList,
    TasksRun,
    UsageRead,
    UserCreate,
    UserList,
    UserUpdate,
    /// A control API call whose route names no action.
    ApiCall,
}

impl Action {
    /// Every action, for listings and tests.
    pub const ALL: &[Action] = &[
        Action::AppAccess,
        Action::AppDelete,
        Action::AppDeploy,
        Action::AppExtend,
        Action::AppArchive,
        Action::AppRestore,
        Action::AppExpiryNotice,
        Action::AppFiles,
        Action::AppGet,
        Action::AppList,
        Action::AppLogs,
        Action::AppResume,
        Action::AppRollback,
        Action::AppSuspend,
        Action::ApprovalApprove,
        Action::ApprovalDeny,
        Action::ApprovalExpire,
        Action::ApprovalList,
        Action::ApprovalRequest,
        Action::ApprovalShow,
        Action::ApprovalSupersede,
        Action::ApprovalVote,
        Action::AuditList,
        Action::AuthLogin,
        Action::AuthTokenExchange,
        Action::AuthWhoami,
        Action::ChargebackRead,
        Action::ClockAdvance,
        Action::ClockGet,
        Action::DataDelete,
        Action::DataExport,
        Action::DataImport,
        Action::DataUsage,
        Action::DataMigrate,
        Action::CachePurge,
        Action::EgressList,
        Action::KeysRotate,
        Action::MetricsRead,
        Action::NamespaceCreate,
        Action::NamespaceList,
        Action::NotificationList,
        Action::PolicyAudit,
        Action::PolicyExceptionAdd,
        Action::PolicyExceptionList,
        Action::PolicyExceptionRemove,
        Action::PolicyReload,
        Action::PolicyStatus,
        Action::PolicyViolations,
        Action::RoleGrant,
        Action::RoleList,
        Action::RoleRevoke,
        Action::SecretExpired,
        Action::SecretExpires,
        Action::SecretFlagRotation,
        Action::SecretList,
        Action::SecretRemove,
        Action::SecretSet,
        Action::SecretVersions,
        Action::SecretsRotateKek,
        Action::TasksList,
        Action::TasksRun,
        Action::UsageRead,
        Action::UserCreate,
        Action::UserList,
        Action::UserUpdate,
        Action::ApiCall,
    ];

    /// The stored name, `area.verb`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::AppAccess => "app.access",
            Action::AppDelete => "app.delete",
            Action::AppDeploy => "app.deploy",
            Action::AppExtend => "app.extend",
            Action::AppArchive => "app.archive",
            Action::AppRestore => "app.restore",
            Action::AppExpiryNotice => "app.expiry_notice",
            Action::AppFiles => "app.files",
            Action::AppGet => "app.get",
            Action::AppList => "app.list",
            Action::AppLogs => "app.logs",
            Action::AppResume => "app.resume",
            Action::AppRollback => "app.rollback",
            Action::AppSuspend => "app.suspend",
            Action::ApprovalApprove => "approval.approve",
            Action::ApprovalDeny => "approval.deny",
            Action::ApprovalExpire => "approval.expire",
            Action::ApprovalList => "approval.list",
            Action::ApprovalRequest => "approval.request",
            Action::ApprovalShow => "approval.show",
            Action::ApprovalSupersede => "approval.supersede",
            Action::ApprovalVote => "approval.vote",
            Action::AuditList => "audit.list",
            Action::AuthLogin => "auth.login",
            Action::AuthTokenExchange => "auth.token_exchange",
            Action::AuthWhoami => "auth.whoami",
            Action::ChargebackRead => "chargeback.read",
            Action::ClockAdvance => "clock.advance",
            Action::ClockGet => "clock.get",
            Action::DataDelete => "data.delete",
            Action::DataExport => "data.export",
            Action::DataImport => "data.import",
            Action::DataUsage => "data.usage",
            Action::DataMigrate => "data.migrate",
            Action::CachePurge => "cache.purge",
            Action::EgressList => "egress.list",
            Action::KeysRotate => "keys.rotate",
            Action::MetricsRead => "metrics.read",
            Action::NamespaceCreate => "namespace.create",
            Action::NamespaceList => "namespace.list",
            Action::NotificationList => "notification.list",
            Action::PolicyAudit => "policy.audit",
            Action::PolicyExceptionAdd => "policy.exception.add",
            Action::PolicyExceptionList => "policy.exception.list",
            Action::PolicyExceptionRemove => "policy.exception.remove",
            Action::PolicyReload => "policy.reload",
            Action::PolicyStatus => "policy.status",
            Action::PolicyViolations => "policy.violations",
            Action::RoleGrant => "role.grant",
            Action::RoleList => "role.list",
            Action::RoleRevoke => "role.revoke",
            Action::SecretExpired => "secret.expired",
            Action::SecretExpires => "secret.expires",
            Action::SecretFlagRotation => "secret.flag_rotation",
            Action::SecretList => "secret.list",
            Action::SecretRemove => "secret.remove",
            Action::SecretSet => "secret.set",
            Action::SecretVersions => "secret.versions",
            Action::SecretsRotateKek => "secrets.rotate_kek",
            Action::TasksList => "tasks.list",
            Action::TasksRun => "tasks.run",
            Action::UsageRead => "usage.read",
            Action::UserCreate => "user.create",
            Action::UserList => "user.list",
            Action::UserUpdate => "user.update",
            Action::ApiCall => "api.call",
        }
    }

    /// The action a stored name stands for.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|action| action.as_str() == name)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    /// The caller lacked the right (or the credential).
    Denied,
    /// The platform refused the content (secrets found, policies).
    Refused,
    Failure,
    /// A long operation began; its end is another event.
    Started,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Refused => "refused",
            Outcome::Failure => "failure",
            Outcome::Started => "started",
        }
    }
}

/// One audit event, ready to append.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// RFC 3339 UTC, second precision.
    pub time: String,
    /// Who: a user's subject, `anonymous`, or `terrarium` for the platform itself.
    pub principal: String,
    pub action: Action,
    pub namespace: Option<String>,
    pub app: Option<String>,
    pub revision: Option<i64>,
    pub outcome: Outcome,
    /// What happened, in words; never a secret value.
    pub detail: String,
}

impl AuditEvent {
    /// An event now, with no scope and no detail; add them with the methods below.
    pub fn new(principal: impl Into<String>, action: Action, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            time: now(),
            principal: principal.into(),
            action,
            namespace: None,
            app: None,
            revision: None,
            outcome,
            detail: String::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> AuditEvent {
        self.detail = detail.into();
        self
    }

    pub fn namespace(mut self, namespace: impl Into<String>) -> AuditEvent {
        self.namespace = Some(namespace.into());
        self
    }

    /// Scopes the event to an app (and its namespace).
    pub fn app(mut self, app: &AppKey) -> AuditEvent {
        self.namespace = Some(app.namespace.clone());
        self.app = Some(app.name.clone());
        self
    }

    pub fn revision(mut self, revision: Option<i64>) -> AuditEvent {
        self.revision = revision;
        self
    }
}

/// Now as RFC 3339 UTC with second precision: the platform's timestamp format.
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for action in Action::ALL {
            assert!(seen.insert(action.as_str()), "{action} twice");
            assert_eq!(Action::from_name(action.as_str()), Some(*action));
            let (area, verb) = action.as_str().split_once('.').expect("area.verb");
            assert!(!area.is_empty() && !verb.is_empty());
        }
        assert_eq!(Action::from_name("app.explode"), None);
    }

    #[test]
    fn an_event_is_built_in_one_expression() {
        let app = AppKey::new("growth", "lunch");
        let event =
            AuditEvent::new("ana", Action::AppDeploy, Outcome::Refused).app(&app).revision(Some(3)).detail("why");
        assert_eq!((event.namespace.as_deref(), event.app.as_deref()), (Some("growth"), Some("lunch")));
        assert_eq!((event.action.as_str(), event.outcome.as_str(), event.revision), ("app.deploy", "refused", Some(3)));
        assert!(event.time.ends_with('Z') && event.time.len() == 20, "{}", event.time);
    }
}
