//! Accounts: local users and their sign-in, role bindings, sign-in through the company's
//! OpenID provider ([`federation`]), and the platform's token service ([`tokens`]).
//!
//! Every control API call and every signed-in app request is resolved here to a [`Principal`]
//! with the roles bound to the user and their groups, read fresh each time, so a disabled user
//! or a revoked role takes effect at once. [`Accounts`] implements the gateway's
//! [`gateway::AccessControl`]; users and bindings are stored through [`store::AccountStore`].

mod access;
pub mod config;
pub mod federation;
pub mod store;
pub mod tokens;
mod users;

use std::sync::Arc;

use audit::{Action, AuditEvent, Outcome};
use identity::Principal;

use crate::federation::Federation;
use crate::store::{AccountStore, AccountStoreError};
use crate::tokens::PlatformTokens;
use crate::users::SignInThrottle;

pub use users::{ACCESS_TOKEN_LIFETIME, FIRST_ADMIN, PLATFORM_AUDIENCE};

/// Every way an accounts call can fail, each with what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A name, subject or password that is not acceptable; the message says what is.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("user {name:?} does not exist; list users with `terrarium users list`")]
    UnknownUser { name: String },
    #[error("{0}")]
    NotFound(String),
    #[error("too many failed sign-ins for this user; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    /// No valid credential: the message says why, without echoing the credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but lacks the role; the message says which role and where.
    #[error("{0}")]
    Forbidden(String),
    #[error("internal error")]
    Internal(String),
}

impl From<AccountStoreError> for AccountError {
    fn from(error: AccountStoreError) -> AccountError {
        match error {
            AccountStoreError::UnknownUser { name } => AccountError::UnknownUser { name },
            AccountStoreError::UserExists { name } => AccountError::Conflict(format!("user {name:?} already exists")),
            unknown @ AccountStoreError::UnknownBinding { .. } => AccountError::NotFound(unknown.to_string()),
            AccountStoreError::Backend(message) => AccountError::Internal(message),
        }
    }
}

/// Users, roles, sign-in and tokens.
pub struct Accounts {
    store: Arc<dyn AccountStore>,
    /// The platform's signing keys: access tokens, app tokens, tickets and service tokens.
    pub tokens: Arc<PlatformTokens>,
    /// The company's OpenID provider, when one is configured.
    federation: Option<Federation>,
    /// Failed password sign-ins per user name.
    throttle: SignInThrottle,
    /// An argon2 hash checked when a sign-in names no user, so both cost the same time.
    decoy_hash: String,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn AccountStore>,
        tokens: Arc<PlatformTokens>,
        federation: Option<Federation>,
    ) -> Result<Accounts, AccountError> {
        let decoy_hash = identity::hash_password(&identity::generate_password())
            .map_err(|error| AccountError::Internal(format!("password hashing: {error}")))?;
        Ok(Accounts { store, tokens, federation, throttle: SignInThrottle::default(), decoy_hash })
    }

    /// The configured OpenID provider, if any.
    pub fn federation(&self) -> Option<&Federation> {
        self.federation.as_ref()
    }

    /// Records a refused call (no or a bad credential, a locked name).
    pub async fn audit_denial(&self, principal: &str, action: Action, detail: String) {
        self.record(AuditEvent::new(principal, action, Outcome::Denied).detail(detail)).await;
    }

    /// Records an allowed read, so the audit log shows who looked at what.
    pub async fn audit_read(&self, principal: &Principal, action: Action, namespace: Option<&str>) {
        let mut event = AuditEvent::new(&principal.subject, action, Outcome::Success);
        event.namespace = namespace.map(str::to_owned);
        self.record(event).await;
    }

    /// Records a refusal of a known caller and answers the error that says why.
    async fn deny(
        &self,
        principal: &Principal,
        action: Action,
        namespace: Option<&str>,
        message: String,
    ) -> AccountError {
        let mut event = AuditEvent::new(&principal.subject, action, Outcome::Denied).detail(message.clone());
        event.namespace = namespace.map(str::to_owned);
        self.record(event).await;
        AccountError::Forbidden(message)
    }

    async fn record(&self, event: AuditEvent) {
        if let Err(error) = self.store.append_audit(event).await {
            tracing::error!(%error, "audit event could not be written");
        }
    }
}
