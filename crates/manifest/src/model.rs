//! The typed `MicroApp` resource, v1: every field of `terrarium.yaml`.
//!
//! These types are plain data. They are filled by the decoder in `decode.rs`, which checks every
//! rule while it still knows where each value sits in the file; serde is derived so the deploy
//! pipeline can store and send a manifest as JSON, and schemars so `terrarium schema` can publish
//! a JSON Schema. A field left out is `None`: its default comes from the platform's policy.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use deployment::RoutePattern;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules::{self, Problem};

/// A micro app: the one YAML document kept in `terrarium.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MicroApp {
    /// The version of this format. Always `terrarium.dev/v1`.
    pub api_version: ApiVersion,
    /// The kind of resource. Always `MicroApp`.
    pub kind: Kind,
    pub metadata: Metadata,
    pub spec: Spec,
}

/// The version of the manifest format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "terrarium.dev/v1")]
    V1,
}

/// The kind of resource a manifest describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Kind {
    MicroApp,
}

/// Who the app is and how it is labelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// The app's name, unique within its namespace: lowercase letters, digits and `-`, 1 to 40
    /// characters, not starting or ending with `-`.
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"))]
    pub name: String,
    /// The tenant the app belongs to (a team or business unit); quotas, budgets and access rules
    /// attach here. Same spelling rules as `name`.
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"))]
    pub namespace: String,
    /// Free-form labels in Kubernetes syntax, used to filter apps. The label `dataClass`
    /// (`public`, `internal`, `confidential` or `restricted`) is read by policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::labels_schema")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Free-form notes in Kubernetes annotation syntax; the platform does not interpret them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Metadata {
    /// The label that says how sensitive the app's data is.
    pub const DATA_CLASS_LABEL: &str = "dataClass";

    /// The app's data class, from the `dataClass` label. Validation guarantees that a present
    /// label holds a known value.
    pub fn data_class(&self) -> Option<DataClass> {
        let value = self.labels.as_ref()?.get(Self::DATA_CLASS_LABEL)?;
        DataClass::ALL.iter().copied().find(|class| class.as_str() == value)
    }
}

/// How sensitive the data an app handles is, from the `dataClass` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataClass {
    Public,
    Internal,
    Confidential,
    Restricted,
}

/// What the app is and what it may do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    /// Who answers for the app: `user:<subject>` or `group:<name>`.
    pub owner: Owner,
    /// One line saying what the app is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How the app runs: `static`, `static+edge`, `function`, `wasm` or `container`.
    pub runtime: Runtime,
    /// The catalog template and version the app was created from, like `static-edge@1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<String>,
    /// The static front end (runtimes `static` and `static+edge`).
    #[serde(rename = "static", default, skip_serializing_if = "Option::is_none")]
    pub static_site: Option<StaticSite>,
    /// Edge functions (runtimes `static+edge` and `function`); the first matching route wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<Vec<Function>>,
    /// The WebAssembly component (runtime `wasm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<Wasm>,
    /// The container image (runtime `container`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Non-secret configuration handed to functions as `env.NAME`. Names are letters, digits and
    /// `_`, not starting with a digit; numbers and true/false are turned into text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::vars_schema")]
    pub vars: Option<BTreeMap<String, String>>,
    /// Who may use the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// Where the app's secrets are kept: `terrarium://<namespace>/<app>` or
    /// `vault://<mount>/<path>`. Never a secret value itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_ref: Option<SecretsRef>,
    /// The app expires after this many days without renewal (1 to 3650); policy sets the maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub ttl_days: Option<u32>,
    /// Hosts the app's code may call, like `api.example.com` or `https://maps.example.com`.
    /// Empty means no outbound network at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_egress: Option<Vec<String>>,
    /// Limits on requests, CPU, memory and spending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Quotas>,
    /// Storage the app gets from the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Data>,
    /// Access to AI models through the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<Ai>,
    /// The service level the app aims for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
}

/// Who answers for an app.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String", extend("pattern" = r"^(user|group):\S+$"))]
pub enum Owner {
    /// `user:<subject>`: a person, by their subject at the identity provider.
    User(String),
    /// `group:<name>`: a group at the identity provider.
    Group(String),
}

/// How an app runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Runtime {
    /// Static files only.
    #[serde(rename = "static")]
    Static,
    /// Static files plus JavaScript edge functions.
    #[serde(rename = "static+edge")]
    StaticEdge,
    /// JavaScript edge functions only.
    #[serde(rename = "function")]
    Function,
    /// A WebAssembly component (`wasi:http` proxy).
    #[serde(rename = "wasm")]
    Wasm,
    /// A container image.
    #[serde(rename = "container")]
    Container,
}

/// The static front end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticSite {
    /// The folder, relative to the app's root, whose files are served (like `public`).
    pub dir: String,
    /// Unknown paths fall back to `index.html` (for single-page apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spa: Option<bool>,
}

/// One edge function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Function {
    /// The paths inside the app this function serves: an exact path (`/api/pick`) or a prefix
    /// ending in `/*` (`/api/*`).
    #[schemars(with = "String", regex(pattern = r"^/"))]
    pub route: RoutePattern,
    /// The ES module, relative to the app's root, that does `export default { fetch(request,
    /// env, ctx) }` (like `functions/api.js`).
    #[schemars(regex(pattern = r"\.m?js$"))]
    pub entry: String,
}

/// A WebAssembly component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Wasm {
    /// The `.wasm` file, relative to the app's root: a `wasi:http` proxy component.
    #[schemars(regex(pattern = r"\.wasm$"))]
    pub component: String,
}

/// A container image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    /// The image reference, like `registry.example.com/team/app:1.2`.
    pub image: String,
    /// The port the container listens on for HTTP.
    #[schemars(range(min = 1))]
    pub port: u16,
}

/// Who may use the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Access {
    /// `private` (owner only), `team` (namespace members), `org` (any signed-in user) or
    /// `public` (anyone; needs an approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Extra groups allowed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

/// Who may use an app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// The owner only.
    Private,
    /// Members of the app's namespace.
    Team,
    /// Any signed-in user.
    Org,
    /// Anyone, signed in or not.
    Public,
}

/// Where an app's secrets are kept. The manifest only ever names the place, never a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String", extend("pattern" = r"^(terrarium|vault)://[^/\s]+/\S+$"))]
pub enum SecretsRef {
    /// `terrarium://<namespace>/<app>`: the platform's own secret store.
    Terrarium { namespace: String, app: String },
    /// `vault://<mount>/<path>`: a HashiCorp Vault secret.
    Vault { mount: String, path: String },
}

/// Limits on requests, CPU, memory and spending. Anything over the namespace's default needs an
/// approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quotas {
    /// Sustained requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub requests_per_second: Option<u32>,
    /// Requests allowed in a short burst above the sustained rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub burst: Option<u32>,
    /// Requests in flight at the same time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub concurrency: Option<u32>,
    /// Requests per calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub monthly_requests: Option<u64>,
    /// Hard CPU budget per request, in milliseconds (1 to 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60000))]
    pub cpu_ms_per_request: Option<u32>,
    /// Memory per instance, in MiB (16 to 4096).
    #[serde(rename = "memoryMiB", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 16, max = 4096))]
    pub memory_mib: Option<u32>,
    /// Spending limit per calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_budget: Option<MonthlyBudget>,
    /// What the app's key-value namespace may hold, in MiB (1 to 1048576).
    #[serde(rename = "kvStorageMiB", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1048576))]
    pub kv_storage_mib: Option<u32>,
    /// What the app's SQL database may hold, in MiB (1 to 1048576).
    #[serde(rename = "sqlStorageMiB", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1048576))]
    pub sql_storage_mib: Option<u32>,
}

/// A spending limit per calendar month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MonthlyBudget {
    /// The amount, 0 or more.
    #[schemars(range(min = 0))]
    pub amount: f64,
    /// The currency as a three-letter ISO 4217 code, like `USD` or `EUR`.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
}

/// Storage the app gets from the platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Data {
    /// A key-value namespace of the app's own (the Workers KV API): `true` binds it as
    /// `env.KV`, `{ binding: NAME }` as `env.NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvSpec>,
    /// A SQL database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<Sql>,
    /// A vector index for semantic search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vectors: Option<Vectors>,
}

/// `spec.data.kv`: on or off, or the name it is bound under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum KvSpec {
    Enabled(bool),
    Bound(KvBinding),
}

/// `spec.data.kv: { binding: NAME }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KvBinding {
    /// The name in `env`: letters, digits and `_`, not starting with a digit.
    pub binding: String,
}

impl KvSpec {
    /// The binding the default is `KV`, as in Workers' examples.
    pub const DEFAULT_BINDING: &str = "KV";

    /// The name the namespace is bound under, or `None` when KV is off.
    pub fn binding(&self) -> Option<&str> {
        match self {
            KvSpec::Enabled(true) => Some(KvSpec::DEFAULT_BINDING),
            KvSpec::Enabled(false) => None,
            KvSpec::Bound(bound) => Some(&bound.binding),
        }
    }
}

/// A SQL database with the D1 API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sql {
    /// `isolated` (a database of its own, the default), `schema` (a database per namespace, each
    /// app's tables its own) or `shared` (a database the namespace's apps share, tables and all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<SqlIsolation>,
    /// The name in `env` (`DB` by default): letters, digits and `_`, not starting with a digit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
}

impl Sql {
    /// The binding the default is `DB`, as in D1's examples.
    pub const DEFAULT_BINDING: &str = "DB";

    pub fn binding(&self) -> &str {
        self.binding.as_deref().unwrap_or(Sql::DEFAULT_BINDING)
    }

    /// Unless the manifest says otherwise, an app's database is its own.
    pub fn isolation(&self) -> SqlIsolation {
        self.isolation.unwrap_or(SqlIsolation::Isolated)
    }
}

/// How far an app's SQL data is kept apart from other apps'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SqlIsolation {
    Shared,
    Schema,
    Isolated,
}

/// A vector index for semantic search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vectors {
    /// The name in `env` (`VECTORS` by default): letters, digits and `_`, not starting with a digit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// Numbers per vector (384 by default, what `embed-default` gives; 1 to 1536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1536))]
    pub dimensions: Option<u32>,
    /// Remove personal data from text before it is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii_redaction: Option<bool>,
    /// Stored vectors are deleted after this many days (1 to 3650).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub ttl_days: Option<u32>,
}

impl Vectors {
    /// The binding the default is `VECTORS`.
    pub const DEFAULT_BINDING: &str = "VECTORS";
    /// The dimensions of `embed-default` (all-MiniLM-L6-v2).
    pub const DEFAULT_DIMENSIONS: u32 = 384;

    pub fn binding(&self) -> &str {
        self.binding.as_deref().unwrap_or(Vectors::DEFAULT_BINDING)
    }

    pub fn dimensions(&self) -> u32 {
        self.dimensions.unwrap_or(Vectors::DEFAULT_DIMENSIONS)
    }
}

/// Access to AI models through the platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ai {
    /// Model aliases defined by the platform operator, like `chat-default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// What happens to personal data in prompts: `mask`, `block` or `allow` (needs an approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii: Option<PiiMode>,
}

/// What happens to personal data in prompts sent to a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PiiMode {
    /// Personal data is replaced by placeholders.
    Mask,
    /// Prompts with personal data are refused.
    Block,
    /// Personal data is sent as it is.
    Allow,
}

/// The service level an app aims for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Slo {
    /// The share of requests that succeed, in percent, like `99.5` (more than 0, less than 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("exclusiveMinimum" = 0, "exclusiveMaximum" = 100))]
    pub availability: Option<f64>,
    /// The 95th-percentile response time to aim for, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub latency_p95_ms: Option<u32>,
}

/// The fixed set of spellings of a YAML enum, shared by the decoder and the tests.
pub(crate) trait Choice: Copy + 'static {
    /// What one value is, in words (`runtime`, `visibility`).
    const WHAT: &'static str;
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

macro_rules! choices {
    ($type:ty, $what:literal, { $($variant:ident => $spelling:literal),+ $(,)? }) => {
        impl Choice for $type {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$(<$type>::$variant),+];
            fn as_str(self) -> &'static str {
                match self {
                    $(<$type>::$variant => $spelling),+
                }
            }
        }

        impl $type {
            /// The spelling used in `terrarium.yaml`.
            pub fn as_str(self) -> &'static str {
                Choice::as_str(self)
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(Choice::as_str(*self))
            }
        }
    };
}

choices!(ApiVersion, "apiVersion", { V1 => "terrarium.dev/v1" });
choices!(Kind, "kind", { MicroApp => "MicroApp" });
choices!(Runtime, "runtime", {
    Static => "static",
    StaticEdge => "static+edge",
    Function => "function",
    Wasm => "wasm",
    Container => "container",
});
choices!(Visibility, "visibility", {
    Private => "private",
    Team => "team",
    Org => "org",
    Public => "public",
});
choices!(SqlIsolation, "isolation", { Shared => "shared", Schema => "schema", Isolated => "isolated" });
choices!(PiiMode, "pii mode", { Mask => "mask", Block => "block", Allow => "allow" });
choices!(DataClass, "data class", {
    Public => "public",
    Internal => "internal",
    Confidential => "confidential",
    Restricted => "restricted",
});

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::User(subject) => write!(f, "user:{subject}"),
            Owner::Group(name) => write!(f, "group:{name}"),
        }
    }
}

impl FromStr for Owner {
    type Err = Problem;
    fn from_str(raw: &str) -> Result<Owner, Problem> {
        rules::parse_owner(raw)
    }
}

impl TryFrom<String> for Owner {
    type Error = Problem;
    fn try_from(raw: String) -> Result<Owner, Problem> {
        raw.parse()
    }
}

impl From<Owner> for String {
    fn from(owner: Owner) -> String {
        owner.to_string()
    }
}

impl fmt::Display for SecretsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretsRef::Terrarium { namespace, app } => write!(f, "terrarium://{namespace}/{app}"),
            SecretsRef::Vault { mount, path } => write!(f, "vault://{mount}/{path}"),
        }
    }
}

impl FromStr for SecretsRef {
    type Err = Problem;
    fn from_str(raw: &str) -> Result<SecretsRef, Problem> {
        rules::parse_secrets_ref(raw)
    }
}

impl TryFrom<String> for SecretsRef {
    type Error = Problem;
    fn try_from(raw: String) -> Result<SecretsRef, Problem> {
        raw.parse()
    }
}

impl From<SecretsRef> for String {
    fn from(secrets_ref: SecretsRef) -> String {
        secrets_ref.to_string()
    }
}
