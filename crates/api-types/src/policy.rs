//! Policy decisions, stored violations, exceptions and approval requests.
//!
//! - `GET /policy` → [`PolicyStatus`]; `POST /policy/reload` → [`PolicyStatus`]
//! - `GET /policy/violations?namespace=&app=&policy=` → `Vec<StoredViolation>`
//! - `GET /policy/exceptions?namespace=` → `Vec<PolicyException>`;
//!   `POST /policy/exceptions` with [`NewPolicyException`]; `DELETE /policy/exceptions/{id}`
//! - `GET /approvals?namespace=&state=` → `Vec<ApprovalRequest>`; `GET /approvals/{id}`;
//!   `POST /approvals/{id}/approve` and `/deny` with [`ApprovalVoteRequest`] → [`ApprovalRequest`]

use serde::{Deserialize, Serialize};

/// What a policy's mode does with its `deny` messages, Gatekeeper-style.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Enforce: a denial refuses the deploy.
    #[default]
    Deny,
    /// A denial is reported as a warning.
    Warn,
    /// Record only: nothing is refused, nothing needs approval.
    Dryrun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Deny => "deny",
            Mode::Warn => "warn",
            Mode::Dryrun => "dryrun",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(text: &str) -> Result<Mode, String> {
        match text {
            "deny" => Ok(Mode::Deny),
            "warn" => Ok(Mode::Warn),
            "dryrun" => Ok(Mode::Dryrun),
            other => Err(format!("{other:?} is not a policy mode; use deny, warn or dryrun")),
        }
    }
}

/// Which rule set a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deny,
    Warn,
    /// The app asks for more than the default; a person must approve it.
    Elevated,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deny => "deny",
            Kind::Warn => "warn",
            Kind::Elevated => "elevated",
        }
    }
}

/// One message of one policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Violation {
    /// The policy's name: the last part of its package (`egress`).
    pub policy: String,
    pub kind: Kind,
    pub mode: Mode,
    pub message: String,
}

impl Violation {
    /// A denial of a policy in `deny` mode: the deploy is refused.
    pub fn is_denial(&self) -> bool {
        self.kind == Kind::Deny && self.mode == Mode::Deny
    }

    /// A warning, or a denial of a policy in `warn` mode.
    pub fn is_warning(&self) -> bool {
        self.kind == Kind::Warn || (self.kind == Kind::Deny && self.mode == Mode::Warn)
    }

    /// An elevated request that needs approval (not of a policy in `dryrun` mode).
    pub fn needs_approval(&self) -> bool {
        self.kind == Kind::Elevated && self.mode != Mode::Dryrun
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.policy, self.message)
    }
}

/// Every message of every policy for one input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub violations: Vec<Violation>,
}

impl Decision {
    pub fn denials(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| v.is_denial())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| v.is_warning())
    }

    pub fn elevated(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| v.needs_approval())
    }

    pub fn allowed(&self) -> bool {
        self.denials().next().is_none()
    }
}

/// The policies the server runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// SHA-256 of the loaded sources: it changes when the policies do.
    pub version: String,
    pub files: Vec<String>,
    /// Where they come from: `bundled`, a directory, or both.
    pub source: String,
    pub loaded_at: String,
    /// Modes other than `deny`, by policy.
    pub modes: std::collections::BTreeMap<String, Mode>,
    /// The last background audit: when, and how many apps it checked.
    pub last_audit: Option<String>,
    pub audited_apps: u64,
    /// The last reload that failed (the previous policies kept running), if the newest did.
    pub reload_error: Option<String>,
}

/// A violation the background audit found in a running app, kept in full.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredViolation {
    pub namespace: String,
    pub app: String,
    /// The active revision it was found in.
    pub revision: i64,
    #[serde(flatten)]
    pub violation: Violation,
    /// When an audit first found it, and when last.
    pub first_seen: String,
    pub last_seen: String,
}

/// An operator's exception: `app` may violate `policy` until `expires_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyException {
    pub id: i64,
    pub namespace: String,
    pub app: String,
    pub policy: String,
    pub reason: String,
    pub granted_by: String,
    pub granted_at: String,
    pub expires_at: String,
    /// False once expired or removed.
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewPolicyException {
    pub namespace: String,
    pub app: String,
    pub policy: String,
    pub reason: String,
    /// RFC 3339; at most a year ahead.
    pub expires_at: String,
}

/// A revision waiting for people to approve what it asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: i64,
    pub namespace: String,
    pub app: String,
    /// `pending`, `approved`, `denied` (by a person, or because it timed out) or `superseded`
    /// (a newer deploy replaced it).
    pub state: String,
    pub requested_by: String,
    pub requested_at: String,
    /// A pending request is denied at this time.
    pub expires_at: String,
    /// The bundle waiting to go live.
    pub digest: String,
    /// What it asks for beyond what the app was granted: each becomes a grant when approved.
    pub requests: Vec<Violation>,
    /// Approvals needed, and who may give them (operators of the namespace when empty).
    pub required: u32,
    pub approvers: Vec<String>,
    pub votes: Vec<ApprovalVote>,
    /// The revision it became, once approved.
    pub revision: Option<i64>,
    pub decided_at: Option<String>,
    /// Why it ended, in words.
    pub outcome: Option<String>,
    /// Why the builder asks (the revision's `terrarium.dev/justification` annotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalVote {
    pub approver: String,
    /// `approve` or `deny`.
    pub decision: String,
    pub reason: String,
    pub time: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalVoteRequest {
    pub reason: String,
}
