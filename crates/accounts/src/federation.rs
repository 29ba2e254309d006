//! Sign-in through the company's OpenID provider: the browser's authorization code flow with
//! PKCE, the CLI's device flow, and token exchange (RFC 8693). Every path ends like a local
//! sign-in: the user's row (created on first sign-in, groups refreshed from the provider each
//! time) and a platform access token.

use std::time::{Duration, Instant};

use api_types::LoginResponse;
use oidc::{DevicePoll, ExternalIdentity, OidcProvider};

use audit::{Action, AuditEvent, Outcome, now};

use crate::store::{AccountStoreError, UserChange, UserRow};
use crate::users::{ACCESS_TOKEN_LIFETIME, PLATFORM_AUDIENCE};
use crate::{AccountError, Accounts};

/// How long a browser may take between leaving for the provider and coming back.
const PENDING_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Sign-ins in progress at once; beyond it the oldest are forgotten (bounded memory).
const MAX_PENDING: u64 = 10_000;

/// A browser sign-in between the redirect to the provider and the callback.
#[derive(Clone)]
struct Pending {
    nonce: String,
    pkce_verifier: String,
    redirect_uri: String,
    return_to: String,
    started: Instant,
}

/// The configured OpenID provider and the browser sign-ins in flight.
pub struct Federation {
    provider: OidcProvider,
    /// What the sign-in page's button says (`Sign in with Company account`).
    pub display_name: String,
    /// By state: expire after their lifetime, and past the bound the least used go first.
    pending: moka::sync::Cache<String, Pending>,
}

/// What the device flow answers the CLI, and what it polls with.
pub use oidc::DeviceAuthorization;

/// The state of a device sign-in, as the CLI sees it.
pub enum DeviceOutcome {
    Pending,
    SlowDown,
    Granted(LoginResponse),
    Denied,
    Expired,
}

impl Federation {
    pub fn new(provider: OidcProvider, display_name: String) -> Federation {
        let pending = moka::sync::Cache::builder().max_capacity(MAX_PENDING).time_to_live(PENDING_LIFETIME).build();
        Federation { provider, display_name, pending }
    }

    /// Starts a browser sign-in: where to send the browser.
    pub fn start(&self, redirect_uri: &str, return_to: String) -> String {
        let request = self.provider.authorization_request(redirect_uri);
        self.pending.insert(
            request.state.clone(),
            Pending {
                nonce: request.nonce,
                pkce_verifier: request.pkce_verifier,
                redirect_uri: redirect_uri.to_owned(),
                return_to,
                started: Instant::now(),
            },
        );
        request.url
    }

    /// The provider's answer to a browser sign-in: the identity and where the browser was going.
    pub async fn finish(&self, state: &str, code: &str) -> Result<(ExternalIdentity, String), AccountError> {
        // Taken once: a replayed callback finds nothing.
        let pending = self.pending.remove(state);
        let Some(pending) = pending.filter(|login| login.started.elapsed() < PENDING_LIFETIME) else {
            return Err(AccountError::Unauthenticated(
                "this sign-in expired or was already used; start again from the sign-in page".to_owned(),
            ));
        };
        let identity = self
            .provider
            .exchange_code(code, &pending.pkce_verifier, &pending.redirect_uri, &pending.nonce)
            .await
            .map_err(|error| {
                AccountError::Unauthenticated(format!("the identity provider's answer was refused: {error}"))
            })?;
        Ok((identity, pending.return_to))
    }
}

impl Accounts {
    fn require_federation(&self) -> Result<&Federation, AccountError> {
        self.federation().ok_or_else(|| {
            AccountError::NotFound(
                "no identity provider is configured on this server; sign in with `terrarium login --password`"
                    .to_owned(),
            )
        })
    }

    /// Signs in a user the provider vouched for: creates the row on first sign-in, refreshes
    /// the groups every time, refuses disabled users and names taken by local accounts.
    pub async fn sign_in_external(&self, identity: ExternalIdentity, via: &str) -> Result<LoginResponse, AccountError> {
        let name = identity.subject.clone();
        let audit =
            |outcome: Outcome, detail: String| AuditEvent::new(&name, Action::AuthLogin, outcome).detail(detail);
        match self.store.get_user(&name).await {
            Ok(existing) if existing.password_hash.is_some() => {
                self.audit_denial(&name, Action::AuthLogin, format!("{via}: name taken by a local account")).await;
                return Err(AccountError::Unauthenticated(format!(
                    "the identity provider's user {name:?} has the name of a local account; an admin must rename one of them"
                )));
            }
            Ok(existing) if existing.disabled => {
                self.audit_denial(&name, Action::AuthLogin, format!("{via}: user disabled")).await;
                return Err(AccountError::Unauthenticated(format!("user {name:?} is disabled")));
            }
            Ok(_) => {
                let change = UserChange { groups: Some(identity.groups.clone()), ..UserChange::default() };
                self.store
                    .update_user(&name, change, audit(Outcome::Success, format!("{via}: groups refreshed")))
                    .await?;
            }
            Err(AccountStoreError::UnknownUser { .. }) => {
                let row = UserRow {
                    name: name.clone(),
                    password_hash: None,
                    display_name: identity.name.clone(),
                    email: identity.email.clone(),
                    groups: identity.groups.clone(),
                    disabled: false,
                    created_at: now(),
                    created_by: via.to_owned(),
                };
                self.store.create_user(row, audit(Outcome::Success, format!("{via}: first sign-in"))).await?;
            }
            Err(error) => return Err(error.into()),
        }
        let token = self
            .tokens
            .mint_access_token(&name, &identity.groups, PLATFORM_AUDIENCE, ACCESS_TOKEN_LIFETIME)
            .map_err(|error| AccountError::Internal(format!("minting a token: {error}")))?;
        Ok(LoginResponse {
            access_token: token,
            token_type: "Bearer".to_owned(),
            expires_in: ACCESS_TOKEN_LIFETIME.as_secs(),
            user: name,
        })
    }

    /// Starts the CLI's device sign-in at the provider.
    pub async fn start_device_login(&self) -> Result<DeviceAuthorization, AccountError> {
        let federation = self.require_federation()?;
        federation
            .provider
            .start_device_authorization()
            .await
            .map_err(|error| AccountError::Internal(format!("device authorization at the identity provider: {error}")))
    }

    /// One poll of a device sign-in.
    pub async fn poll_device_login(&self, device_code: &str) -> Result<DeviceOutcome, AccountError> {
        let federation = self.require_federation()?;
        let poll = federation.provider.poll_device_token(device_code).await.map_err(|error| {
            AccountError::Unauthenticated(format!("the identity provider refused the sign-in: {error}"))
        })?;
        Ok(match poll {
            DevicePoll::Pending => DeviceOutcome::Pending,
            DevicePoll::SlowDown => DeviceOutcome::SlowDown,
            DevicePoll::Denied => DeviceOutcome::Denied,
            DevicePoll::Expired => DeviceOutcome::Expired,
            DevicePoll::Granted(identity) => DeviceOutcome::Granted(self.sign_in_external(identity, "device").await?),
        })
    }

    /// RFC 8693: a valid access token of the identity provider for a platform access token.
    pub async fn exchange_token(&self, subject_token: &str) -> Result<LoginResponse, AccountError> {
        let federation = self.require_federation()?;
        let identity =
            match federation.provider.validate_access_token(subject_token, federation.provider.audience()).await {
                Ok(identity) => identity,
                Err(error) => {
                    self.audit_denial("anonymous", Action::AuthTokenExchange, error.to_string()).await;
                    return Err(AccountError::Unauthenticated(format!("the subject token was refused: {error}")));
                }
            };
        self.sign_in_external(identity, "token exchange").await
    }
}

#[cfg(test)]
mod tests {
    fn assert_send<T: Send>(_: T) {}

    /// The control API's handlers await these: they must be Send (axum needs it).
    #[allow(dead_code)]
    fn futures_are_send(plane: &crate::Accounts, federation: &super::Federation) {
        assert_send(plane.start_device_login());
        assert_send(plane.poll_device_login("x"));
        assert_send(plane.exchange_token("x"));
        assert_send(federation.finish("a", "b"));
    }
}
