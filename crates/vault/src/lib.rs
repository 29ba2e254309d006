//! HashiCorp Vault over its HTTP API: KV v2 reads for `vault://<mount>/<path>` secret
//! references, token or AppRole sign-in with renewal, and the transit engine as a
//! key-encryption key for the platform's own secret store.
//!
//! Written on the workspace's reqwest rather than `vaultrs`: that crate speaks reqwest 0.12
//! through `rustify`, a second HTTP stack beside ours for the six calls below.
//!
//! Reads are cached: a KV secret is fresh for the configured cache time, or for its lease when
//! Vault gives it a shorter one; the AppRole token is renewed when two thirds of its lease have
//! passed and obtained again when renewal fails. Values never appear in errors or logs.

mod transit;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use runtime::SecretValue;
use serde::Deserialize;
use serde_json::Value;

pub use transit::TransitKek;

/// How Terrarium signs in to Vault.
#[derive(Clone, Debug)]
pub enum VaultAuth {
    /// A token (from an environment variable named in terrarium.toml, never the file itself).
    Token(SecretValue),
    /// AppRole: the role id, and the secret id from an environment variable.
    AppRole { mount: String, role_id: String, secret_id: SecretValue },
}

#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// `https://vault.example.com:8200`.
    pub address: url::Url,
    pub auth: VaultAuth,
    /// Vault Enterprise namespace (`X-Vault-Namespace`), if any.
    pub namespace: Option<String>,
    /// How long a KV secret read is reused before Vault is asked again.
    pub cache_ttl: Duration,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("Vault at {address} could not be reached: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("Vault refused Terrarium's credentials ({status}); check the token or AppRole in terrarium.toml")]
    Auth { status: u16 },
    #[error("Vault has no secret at {reference}; create it with `vault kv put {mount}/{path} NAME=value`")]
    NotFound { reference: String, mount: String, path: String },
    #[error("Vault refused to read {reference} ({status}); grant Terrarium's Vault policy read on {mount}/data/{path}")]
    Forbidden { reference: String, mount: String, path: String, status: u16 },
    #[error("Vault answered {status} for {what}")]
    Status { what: String, status: u16 },
    #[error("Vault's answer for {what} is not what its API documents: {reason}")]
    Protocol { what: String, reason: String },
}

/// A KV v2 secret: every key with its value as text (other JSON values as their JSON text).
pub use secrets::apps::KvSecret;

/// `vault://<mount>/<path>` references of apps' manifests are read from the KV engine.
#[async_trait::async_trait]
impl secrets::apps::KvSource for VaultClient {
    async fn read(&self, mount: &str, path: &str) -> Result<KvSecret, String> {
        self.read_kv(mount, path).await.map_err(|error| error.to_string())
    }
}

struct Token {
    value: SecretValue,
    /// When to renew (AppRole tokens with a lease); `None` for tokens that do not expire.
    renew_at: Option<Instant>,
    expires_at: Option<Instant>,
    renewable: bool,
}

struct Cached {
    secret: KvSecret,
    fresh_until: Instant,
}

pub struct VaultClient {
    http: reqwest::Client,
    config: VaultConfig,
    token: tokio::sync::Mutex<Option<Token>>,
    cache: Mutex<HashMap<(String, String), Cached>>,
}

#[derive(Deserialize)]
struct AuthResponse {
    auth: Option<AuthBlock>,
}

#[derive(Deserialize)]
struct AuthBlock {
    client_token: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct KvResponse {
    data: Option<KvData>,
    #[serde(default)]
    lease_duration: u64,
}

#[derive(Deserialize)]
struct KvData {
    data: Option<serde_json::Map<String, Value>>,
    metadata: Option<KvMetadata>,
}

#[derive(Deserialize)]
struct KvMetadata {
    #[serde(default)]
    version: u64,
}

impl VaultClient {
    /// The client `[secrets.vault]` describes, with its credential read from the environment.
    pub fn from_section(section: &secrets::config::VaultSection) -> Result<VaultClient, String> {
        let from_env = |variable: &str, what: &str| {
            std::env::var(variable).ok().filter(|value| !value.is_empty()).map(SecretValue::new).ok_or_else(|| {
                format!("secrets.vault: {what} is read from the environment variable {variable}, which is not set")
            })
        };
        let auth = match section.auth.as_str() {
            "token" => VaultAuth::Token(from_env(&section.token_env, "the Vault token")?),
            "approle" => VaultAuth::AppRole {
                mount: section.approle_mount.clone(),
                role_id: section
                    .role_id
                    .clone()
                    .ok_or_else(|| "secrets.vault: auth = \"approle\" needs role_id = \"...\"".to_owned())?,
                secret_id: from_env(&section.secret_id_env, "the AppRole secret id")?,
            },
            other => {
                return Err(format!("secrets.vault.auth: {other:?} is not supported; use \"token\" or \"approle\""));
            }
        };
        let address = section.address.parse().map_err(|_| {
            format!("secrets.vault.address: {:?} is not a URL like https://vault:8200", section.address)
        })?;
        VaultClient::new(VaultConfig {
            address,
            auth,
            namespace: section.namespace.clone(),
            cache_ttl: Duration::from_secs(section.cache_secs),
            timeout: Duration::from_secs(10),
        })
        .map_err(|error| error.to_string())
    }

    pub fn new(config: VaultConfig) -> Result<VaultClient, VaultError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            // Vault is the operator's own service: reach it directly, never through an app proxy.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| VaultError::Unreachable {
                address: config.address.to_string(),
                reason: error.to_string(),
            })?;
        Ok(VaultClient { http, config, token: tokio::sync::Mutex::new(None), cache: Mutex::new(HashMap::new()) })
    }

    pub fn address(&self) -> &url::Url {
        &self.config.address
    }

    /// Reads a KV v2 secret, from the cache while it is fresh. Mount and path must be plain
    /// names separated by `/` (letters, digits, `_`, `-`, `.`; never `.` or `..` alone), so the
    /// URL Vault receives names exactly the secret that was asked for.
    pub async fn read_kv(&self, mount: &str, path: &str) -> Result<KvSecret, VaultError> {
        let plain = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if !plain(mount) || !path.split('/').all(plain) {
            return Err(VaultError::Protocol {
                what: format!("vault://{mount}/{path}"),
                reason: "mount and path may only hold letters, digits, '_', '-' and '.' between single '/'".to_owned(),
            });
        }
        let key = (mount.to_owned(), path.to_owned());
        {
            let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(cached) = cache.get(&key)
                && cached.fresh_until > Instant::now()
            {
                return Ok(cached.secret.clone());
            }
        }
        let (secret, lease) = self.fetch_kv(mount, path).await?;
        let ttl = match lease {
            0 => self.config.cache_ttl,
            lease => self.config.cache_ttl.min(Duration::from_secs(lease)),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.insert(key, Cached { secret: secret.clone(), fresh_until: Instant::now() + ttl });
        Ok(secret)
    }

    async fn fetch_kv(&self, mount: &str, path: &str) -> Result<(KvSecret, u64), VaultError> {
        let reference = format!("vault://{mount}/{path}");
        let url = self.url(&format!("{mount}/data/{path}"))?;
        let response = self.authorized(reqwest::Method::GET, url, None).await?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            404 => {
                return Err(VaultError::NotFound { reference, mount: mount.to_owned(), path: path.to_owned() });
            }
            403 => {
                return Err(VaultError::Forbidden {
                    reference,
                    mount: mount.to_owned(),
                    path: path.to_owned(),
                    status,
                });
            }
            status => return Err(VaultError::Status { what: reference, status }),
        }
        let protocol = |reason: &str| VaultError::Protocol { what: reference.clone(), reason: reason.to_owned() };
        let body: KvResponse = response.json().await.map_err(|_| protocol("the body is not a KV v2 read response"))?;
        let data = body.data.ok_or_else(|| protocol("no data"))?;
        // A deleted or destroyed version reads as data: null.
        let values = data.data.ok_or_else(|| VaultError::NotFound {
            reference: reference.clone(),
            mount: mount.to_owned(),
            path: path.to_owned(),
        })?;
        let values = values
            .into_iter()
            .map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                (name, SecretValue::new(text))
            })
            .collect();
        let version = data.metadata.map_or(0, |metadata| metadata.version);
        Ok((KvSecret { values, version }, body.lease_duration))
    }

    /// Sends a request with a current token; with AppRole, signs in again once if Vault says the
    /// token is no longer valid.
    pub(crate) async fn authorized(
        &self,
        method: reqwest::Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, VaultError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let mut request = self.http.request(method.clone(), url.clone()).header("X-Vault-Token", token.expose());
            if let Some(namespace) = &self.config.namespace {
                request = request.header("X-Vault-Namespace", namespace);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|error| self.unreachable(error))?;
            if response.status().as_u16() == 403
                && attempt == 0
                && matches!(self.config.auth, VaultAuth::AppRole { .. })
            {
                *self.token.lock().await = None;
                continue;
            }
            return Ok(response);
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// The current token: signs in or renews when due.
    async fn token(&self) -> Result<SecretValue, VaultError> {
        let mut slot = self.token.lock().await;
        let now = Instant::now();
        if let Some(token) = slot.as_ref() {
            let expired = token.expires_at.is_some_and(|expires_at| expires_at <= now);
            let due = token.renew_at.is_some_and(|renew_at| renew_at <= now);
            if !expired && !due {
                return Ok(token.value.clone());
            }
            if !expired && token.renewable {
                match self.renew(&token.value).await {
                    Ok(renewed) => {
                        let value = renewed.value.clone();
                        *slot = Some(renewed);
                        return Ok(value);
                    }
                    Err(error) => tracing::warn!(%error, "Vault token renewal failed; signing in again"),
                }
            }
        }
        let token = self.sign_in().await?;
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }

    async fn sign_in(&self) -> Result<Token, VaultError> {
        match &self.config.auth {
            VaultAuth::Token(token) => {
                Ok(Token { value: token.clone(), renew_at: None, expires_at: None, renewable: false })
            }
            VaultAuth::AppRole { mount, role_id, secret_id } => {
                let url = self.url(&format!("auth/{mount}/login"))?;
                let body = serde_json::json!({ "role_id": role_id, "secret_id": secret_id.expose() });
                let mut request = self.http.post(url).json(&body);
                if let Some(namespace) = &self.config.namespace {
                    request = request.header("X-Vault-Namespace", namespace);
                }
                let response = request.send().await.map_err(|error| self.unreachable(error))?;
                self.token_from(response, "AppRole sign-in").await
            }
        }
    }

    async fn renew(&self, token: &SecretValue) -> Result<Token, VaultError> {
        let url = self.url("auth/token/renew-self")?;
        let mut request = self.http.post(url).header("X-Vault-Token", token.expose()).json(&serde_json::json!({}));
        if let Some(namespace) = &self.config.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        let response = request.send().await.map_err(|error| self.unreachable(error))?;
        self.token_from(response, "token renewal").await
    }

    async fn token_from(&self, response: reqwest::Response, what: &str) -> Result<Token, VaultError> {
        let status = response.status().as_u16();
        if matches!(status, 400 | 401 | 403) {
            return Err(VaultError::Auth { status });
        }
        if status != 200 {
            return Err(VaultError::Status { what: what.to_owned(), status });
        }
        let protocol = |reason: &str| VaultError::Protocol { what: what.to_owned(), reason: reason.to_owned() };
        let body: AuthResponse = response.json().await.map_err(|_| protocol("the body is not an auth response"))?;
        let auth = body.auth.ok_or_else(|| protocol("no auth block"))?;
        let now = Instant::now();
        let (renew_at, expires_at) = match auth.lease_duration {
            0 => (None, None),
            lease => (Some(now + Duration::from_secs(lease * 2 / 3)), Some(now + Duration::from_secs(lease))),
        };
        Ok(Token { value: SecretValue::new(auth.client_token), renew_at, expires_at, renewable: auth.renewable })
    }

    pub(crate) fn url(&self, api_path: &str) -> Result<url::Url, VaultError> {
        let base = self.config.address.as_str().trim_end_matches('/');
        url::Url::parse(&format!("{base}/v1/{api_path}")).map_err(|error| VaultError::Protocol {
            what: api_path.to_owned(),
            reason: format!("the URL cannot be built: {error}"),
        })
    }

    fn unreachable(&self, error: reqwest::Error) -> VaultError {
        // reqwest's message can include the URL, which never carries a secret here.
        VaultError::Unreachable { address: self.config.address.to_string(), reason: error.to_string() }
    }
}
