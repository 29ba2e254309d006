//! Local accounts, password sign-in, role bindings and the signing key.
//!
//! Sign-in checks a password (argon2id) and answers a short-lived platform token signed with the
//! platform's key (`identity`); every control API call presents it and is resolved to a
//! [`Principal`] with the roles bound to the user and their groups, read fresh on every call so a
//! disabled user or a revoked role takes effect at once.

use std::time::Duration;

use api_types::{LoginResponse, RoleBindingInfo, UserInfo};

use audit::{Action, AuditEvent, Outcome, now};
use identity::{ALL_NAMESPACES, Principal, Role};

use crate::store::{AccountStoreError, RoleBindingRow, UserChange, UserRow};
use crate::{AccountError, Accounts};

/// Failed password sign-ins per user name: after [`FREE_FAILURES`] in a row, the name is
/// locked for a time that doubles with each further failure, up to [`MAX_LOCK`]. In memory:
/// a restart forgives, which is fine for a speed bump against guessing.
#[derive(Default)]
pub struct SignInThrottle {
    failures: std::sync::Mutex<std::collections::HashMap<String, Failures>>,
}

struct Failures {
    count: u32,
    locked_until: Option<std::time::Instant>,
}

const FREE_FAILURES: u32 = 5;
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Names tracked at once; beyond it, names that are not locked are forgotten.
const MAX_TRACKED: usize = 100_000;

impl SignInThrottle {
    /// How long `name` stays locked, if it is.
    pub fn locked(&self, name: &str) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let until = failures.get(name)?.locked_until?;
        until.checked_duration_since(std::time::Instant::now())
    }

    pub fn failed(&self, name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= MAX_TRACKED {
            let now = std::time::Instant::now();
            failures.retain(|_, entry| entry.locked_until.is_some_and(|until| until > now));
        }
        let entry = failures.entry(name.to_owned()).or_insert(Failures { count: 0, locked_until: None });
        entry.count += 1;
        if entry.count >= FREE_FAILURES {
            let doublings = (entry.count - FREE_FAILURES).min(16);
            let lock = Duration::from_secs(1u64 << doublings).min(MAX_LOCK);
            entry.locked_until = Some(std::time::Instant::now() + lock);
        }
    }

    pub fn succeeded(&self, name: &str) {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(name);
    }
}

/// The audience of platform access tokens (the control API).
pub const PLATFORM_AUDIENCE: &str = "terrarium";
/// How long a sign-in lasts.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// The account created on first start.
pub const FIRST_ADMIN: &str = "admin";

fn event(principal: &str, action: Action, namespace: Option<&str>, outcome: Outcome, detail: String) -> AuditEvent {
    let mut event = AuditEvent::new(principal, action, outcome).detail(detail);
    event.namespace = namespace.map(str::to_owned);
    event
}

fn user_info(row: UserRow) -> UserInfo {
    UserInfo {
        name: row.name,
        groups: row.groups,
        disabled: row.disabled,
        local: row.password_hash.is_some(),
        created_at: row.created_at,
        created_by: row.created_by,
    }
}

/// User and group names: what role bindings and owners (`user:<name>`) can name.
fn check_name(name: &str, what: &str) -> Result<(), AccountError> {
    let valid = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    match valid {
        true => Ok(()),
        false => Err(AccountError::Invalid(format!(
            "{name:?} is not a valid {what} name: use 1 to 64 letters, digits, '-', '_', '.' or '@', starting with a letter or digit"
        ))),
    }
}

/// An e-mail address as mail servers take it: one `@` with text on both sides, no spaces or
/// control characters, at most 254 bytes.
fn check_email(email: &str) -> Result<(), AccountError> {
    let shaped = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    match shaped {
        true => Ok(()),
        false => {
            Err(AccountError::Invalid(format!("{email:?} is not an e-mail address; write it like ana@example.com")))
        }
    }
}

async fn hash(password: String) -> Result<String, AccountError> {
    tokio::task::spawn_blocking(move || identity::hash_password(&password))
        .await
        .map_err(|error| AccountError::Internal(format!("password hashing task: {error}")))?
        .map_err(|error| AccountError::Internal(format!("password hashing: {error}")))
}

impl Accounts {
    /// On a platform with no users, creates the `admin` account (platform-wide admin) with
    /// `password`, or a generated one that is returned so the caller can show it once.
    pub async fn ensure_first_admin(&self, password: Option<String>) -> Result<Option<String>, AccountError> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let generated = password.is_none();
        let password = password.unwrap_or_else(identity::generate_password);
        let row = UserRow {
            name: FIRST_ADMIN.to_owned(),
            password_hash: Some(hash(password.clone()).await?),
            display_name: Some("Platform admin".to_owned()),
            email: None,
            groups: Vec::new(),
            disabled: false,
            created_at: now(),
            created_by: "terrarium".to_owned(),
        };
        self.store
            .create_user(row, event("terrarium", Action::UserCreate, None, Outcome::Success, FIRST_ADMIN.to_owned()))
            .await?;
        let binding = RoleBindingRow {
            namespace: ALL_NAMESPACES.to_owned(),
            subject: format!("user:{FIRST_ADMIN}"),
            role: Role::Admin.as_str().to_owned(),
            created_at: now(),
            created_by: "terrarium".to_owned(),
        };
        let detail = format!("user:{FIRST_ADMIN} admin on *");
        self.store
            .grant_role(binding, event("terrarium", Action::RoleGrant, Some(ALL_NAMESPACES), Outcome::Success, detail))
            .await?;
        Ok(generated.then_some(password))
    }

    /// Checks a user name and password and answers a platform access token.
    pub async fn login(&self, name: &str, password: &str) -> Result<LoginResponse, AccountError> {
        let refused = || AccountError::Unauthenticated("wrong user name or password".to_owned());
        // A locked name costs nothing: no argon2 work while someone guesses.
        if let Some(retry_after) = self.throttle.locked(name) {
            self.audit_denial(name, Action::AuthLogin, "locked after repeated failures".to_owned()).await;
            return Err(AccountError::TooManyAttempts { retry_after_secs: retry_after.as_secs().max(1) });
        }
        let user = match self.store.get_user(name).await {
            Ok(user) => Some(user),
            Err(AccountStoreError::UnknownUser { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        // An unknown user costs the same argon2 work as a wrong password: no user enumeration by timing.
        let phc = user.as_ref().and_then(|user| user.password_hash.clone()).unwrap_or_else(|| self.decoy_hash.clone());
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || identity::verify_password(&password, &phc))
            .await
            .map_err(|error| AccountError::Internal(format!("password check task: {error}")))?;
        let outcome = match &user {
            None => Err("unknown user"),
            Some(_) if !matches => Err("wrong password"),
            Some(user) if user.disabled => Err("user disabled"),
            Some(user) if user.password_hash.is_none() => Err("not a local account"),
            Some(_) => Ok(()),
        };
        if let Err(reason) = outcome {
            self.throttle.failed(name);
            self.audit_denial(name, Action::AuthLogin, reason.to_owned()).await;
            return Err(refused());
        }
        self.throttle.succeeded(name);
        let user = user.expect("a successful login has a user");
        let token = self
            .tokens
            .mint_access_token(&user.name, &user.groups, PLATFORM_AUDIENCE, ACCESS_TOKEN_LIFETIME)
            .map_err(|error| AccountError::Internal(format!("minting a token: {error}")))?;
        self.store.append_audit(event(&user.name, Action::AuthLogin, None, Outcome::Success, String::new())).await?;
        Ok(LoginResponse {
            access_token: token,
            token_type: "Bearer".to_owned(),
            expires_in: ACCESS_TOKEN_LIFETIME.as_secs(),
            user: user.name,
        })
    }

    /// Resolves a bearer token to the caller, with their current groups and roles.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AccountError> {
        Ok(self.resolve_token(token).await?.0)
    }

    /// The caller a token names and their user row, read fresh: a disabled user or a revoked
    /// role takes effect at once.
    pub(crate) async fn resolve_token(&self, token: &str) -> Result<(Principal, UserRow), AccountError> {
        let subject = self
            .tokens
            .verify_access_token(token, PLATFORM_AUDIENCE)
            .map_err(|error| AccountError::Unauthenticated(format!("the token was refused: {error}")))?;
        let user = match self.store.get_user(&subject).await {
            Ok(user) if !user.disabled => user,
            Ok(_) => return Err(AccountError::Unauthenticated(format!("user {subject:?} is disabled"))),
            Err(AccountStoreError::UnknownUser { .. }) => {
                return Err(AccountError::Unauthenticated(format!("user {subject:?} no longer exists")));
            }
            Err(error) => return Err(error.into()),
        };
        let bindings = self.store.bindings_of(&Principal::binding_subjects(&user.name, &user.groups)).await?;
        let roles = bindings
            .into_iter()
            .filter_map(|binding| Some((binding.namespace, binding.role.parse::<Role>().ok()?)))
            .collect();
        Ok((Principal { subject: user.name.clone(), groups: user.groups.clone(), roles }, user))
    }

    fn require_platform_admin(&self, principal: &Principal, what: &str) -> Result<(), String> {
        match principal.is_platform_admin() {
            true => Ok(()),
            false => Err(format!("only a platform admin may {what}")),
        }
    }

    /// Creates a local account; answers its one-time password when none was given.
    pub async fn create_user(
        &self,
        principal: &Principal,
        name: &str,
        groups: Vec<String>,
        email: Option<String>,
        password: Option<String>,
    ) -> Result<(UserInfo, Option<String>), AccountError> {
        if let Err(message) = self.require_platform_admin(principal, "add users") {
            return Err(self.deny(principal, Action::UserCreate, None, message).await);
        }
        check_name(name, "user")?;
        for group in &groups {
            check_name(group, "group")?;
        }
        if let Some(email) = &email {
            check_email(email)?;
        }
        let generated = password.is_none();
        let password = password.unwrap_or_else(identity::generate_password);
        if password.chars().count() < 12 {
            return Err(AccountError::Invalid("a password needs at least 12 characters".to_owned()));
        }
        let row = UserRow {
            name: name.to_owned(),
            password_hash: Some(hash(password.clone()).await?),
            display_name: None,
            email,
            groups,
            disabled: false,
            created_at: now(),
            created_by: principal.subject.clone(),
        };
        self.store
            .create_user(
                row.clone(),
                event(&principal.subject, Action::UserCreate, None, Outcome::Success, name.to_owned()),
            )
            .await?;
        Ok((user_info(row), generated.then_some(password)))
    }

    pub async fn list_users(&self, principal: &Principal) -> Result<Vec<UserInfo>, AccountError> {
        if let Err(message) = self.require_platform_admin(principal, "list users") {
            return Err(self.deny(principal, Action::UserList, None, message).await);
        }
        Ok(self.store.list_users().await?.into_iter().map(user_info).collect())
    }

    /// Disables or enables an account, or replaces its groups.
    pub async fn update_user(
        &self,
        principal: &Principal,
        name: &str,
        change: UserChange,
    ) -> Result<UserInfo, AccountError> {
        if let Err(message) = self.require_platform_admin(principal, "change users") {
            return Err(self.deny(principal, Action::UserUpdate, None, message).await);
        }
        for group in change.groups.iter().flatten() {
            check_name(group, "group")?;
        }
        if change.disabled == Some(true) && name == principal.subject {
            return Err(AccountError::Conflict("you cannot disable your own account".to_owned()));
        }
        let detail = format!("{name}: disabled={:?} groups={:?}", change.disabled, change.groups);
        let row = self
            .store
            .update_user(name, change, event(&principal.subject, Action::UserUpdate, None, Outcome::Success, detail))
            .await?;
        Ok(user_info(row))
    }

    /// Grants `role` in `namespace` (or `*`) to `subject` (`user:<name>` or `group:<name>`).
    pub async fn grant_role(
        &self,
        principal: &Principal,
        namespace: &str,
        subject: &str,
        role: Role,
    ) -> Result<RoleBindingInfo, AccountError> {
        self.authorize_role_change(principal, namespace, Action::RoleGrant).await?;
        check_subject(subject)?;
        let binding = RoleBindingRow {
            namespace: namespace.to_owned(),
            subject: subject.to_owned(),
            role: role.as_str().to_owned(),
            created_at: now(),
            created_by: principal.subject.clone(),
        };
        let detail = format!("{subject} {role} on {namespace}");
        self.store
            .grant_role(
                binding.clone(),
                event(&principal.subject, Action::RoleGrant, Some(namespace), Outcome::Success, detail),
            )
            .await?;
        Ok(binding_info(binding))
    }

    pub async fn revoke_role(
        &self,
        principal: &Principal,
        namespace: &str,
        subject: &str,
        role: Role,
    ) -> Result<(), AccountError> {
        self.authorize_role_change(principal, namespace, Action::RoleRevoke).await?;
        let detail = format!("{subject} {role} on {namespace}");
        let audit = event(&principal.subject, Action::RoleRevoke, Some(namespace), Outcome::Success, detail);
        Ok(self.store.revoke_role(namespace, subject, role.as_str(), audit).await?)
    }

    pub async fn list_roles(
        &self,
        principal: &Principal,
        namespace: Option<&str>,
    ) -> Result<Vec<RoleBindingInfo>, AccountError> {
        match namespace {
            Some(namespace) if !principal.has_role(namespace, Role::Viewer) => {
                let message = format!(
                    "{} may not read namespace {namespace:?}: that needs the viewer role there",
                    principal.subject
                );
                return Err(self.deny(principal, Action::RoleList, Some(namespace), message).await);
            }
            Some(_) => {}
            None => {
                if let Err(message) = self.require_platform_admin(principal, "list the roles of every namespace") {
                    return Err(self.deny(principal, Action::RoleList, None, message).await);
                }
            }
        }
        Ok(self.store.list_role_bindings(namespace).await?.into_iter().map(binding_info).collect())
    }

    /// Everyone an app may be owned by: enabled users (`user:<name>`), their groups, and the
    /// groups given roles (`group:<name>`), sorted.
    pub async fn owners(&self) -> Result<Vec<String>, AccountError> {
        let mut owners = std::collections::BTreeSet::new();
        for user in self.store.list_users().await? {
            if !user.disabled {
                owners.insert(format!("user:{}", user.name));
                owners.extend(user.groups.iter().map(|group| format!("group:{group}")));
            }
        }
        for binding in self.store.list_role_bindings(None).await? {
            if binding.subject.starts_with("group:") {
                owners.insert(binding.subject);
            }
        }
        Ok(owners.into_iter().collect())
    }

    /// The e-mail addresses that reach an owner: the user's, or every enabled member's of the
    /// group (users without an address are left out).
    pub async fn addresses(&self, owner: &str) -> Result<Vec<String>, AccountError> {
        let users = self.store.list_users().await?;
        let reaches = |user: &crate::store::UserRow| match owner.split_once(':') {
            Some(("user", name)) => user.name == name,
            Some(("group", group)) => user.groups.iter().any(|held| held == group),
            _ => false,
        };
        Ok(users
            .into_iter()
            .filter(|user| !user.disabled && reaches(user))
            .filter_map(|user| user.email.filter(|email| !email.is_empty()))
            .collect())
    }

    /// Rotates the platform's token signing key (platform admins).
    pub async fn rotate_signing_key(&self, principal: &Principal) -> Result<Vec<String>, AccountError> {
        if let Err(message) = self.require_platform_admin(principal, "rotate the platform's signing key") {
            return Err(self.deny(principal, Action::KeysRotate, None, message).await);
        }
        let kids = self.tokens.rotate().map_err(AccountError::Internal)?;
        let detail = format!("new active key {}", kids[0]);
        self.store.append_audit(event(&principal.subject, Action::KeysRotate, None, Outcome::Success, detail)).await?;
        Ok(kids)
    }

    async fn authorize_role_change(
        &self,
        principal: &Principal,
        namespace: &str,
        action: Action,
    ) -> Result<(), AccountError> {
        let allowed = match namespace {
            ALL_NAMESPACES => principal.is_platform_admin(),
            namespace => principal.has_role(namespace, Role::Admin),
        };
        if allowed {
            return Ok(());
        }
        let message =
            format!("{} may not change roles in {namespace:?}: that needs the admin role there", principal.subject);
        Err(self.deny(principal, action, Some(namespace), message).await)
    }
}

fn check_subject(subject: &str) -> Result<(), AccountError> {
    match subject.split_once(':') {
        Some(("user", name)) => check_name(name, "user"),
        Some(("group", name)) => check_name(name, "group"),
        _ => Err(AccountError::Invalid(format!("{subject:?} is not a subject: write user:<name> or group:<name>"))),
    }
}

fn binding_info(row: RoleBindingRow) -> RoleBindingInfo {
    RoleBindingInfo {
        namespace: row.namespace,
        subject: row.subject,
        role: row.role,
        created_at: row.created_at,
        created_by: row.created_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_locks_after_free_failures_and_success_resets() {
        let throttle = SignInThrottle::default();
        for _ in 0..FREE_FAILURES - 1 {
            throttle.failed("ana");
            assert_eq!(throttle.locked("ana"), None);
        }
        throttle.failed("ana");
        let first = throttle.locked("ana").expect("locked after the free failures");
        assert!(first <= Duration::from_secs(1));
        throttle.failed("ana");
        assert!(throttle.locked("ana").unwrap() > first, "each failure doubles the lock");
        assert_eq!(throttle.locked("bob"), None, "per name");
        throttle.succeeded("ana");
        assert_eq!(throttle.locked("ana"), None);
        for _ in 0..40 {
            throttle.failed("eve");
        }
        assert!(throttle.locked("eve").unwrap() <= MAX_LOCK);
    }
}
