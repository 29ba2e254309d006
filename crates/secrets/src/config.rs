//! `[secrets]` in `terrarium.toml`: where the key-encryption key comes from, expiry reminders,
//! and the Vault server for `vault://` references (built by the `vault` crate).

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::SecretError;
use crate::kek::{EnvKeys, KeyEncryptionKey, KeyFile};

/// The key file's name in the data directory, when `kek = "file"`.
pub const KEK_FILE: &str = "secrets-kek.json";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// `file` (a key file in the data directory, mode 0600), `env` (base64 keys in
    /// `kek_env`, active first) or `vault-transit` (Vault's transit engine; needs `[secrets.vault]`).
    pub kek: KekSource,
    /// The environment variable with the keys when `kek = "env"`.
    pub kek_env: String,
    /// The transit mount and key name when `kek = "vault-transit"`.
    pub transit_mount: String,
    pub transit_key: String,
    /// Days before a secret's expiry when reminders start.
    pub expiry_reminder_days: i64,
    pub vault: Option<VaultSection>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KekSource {
    File,
    Env,
    VaultTransit,
}

impl Default for SecretsConfig {
    fn default() -> SecretsConfig {
        SecretsConfig {
            kek: KekSource::File,
            kek_env: "TERRARIUM_SECRETS_KEK".to_owned(),
            transit_mount: "transit".to_owned(),
            transit_key: "terrarium".to_owned(),
            expiry_reminder_days: 14,
            vault: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    /// `https://vault.example.com:8200`.
    pub address: String,
    /// `token` (from `token_env`) or `approle` (`role_id` here, the secret id from `secret_id_env`).
    #[serde(default = "default_vault_auth")]
    pub auth: String,
    #[serde(default = "default_vault_token_env")]
    pub token_env: String,
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
    pub role_id: Option<String>,
    #[serde(default = "default_secret_id_env")]
    pub secret_id_env: String,
    /// Vault Enterprise namespace, if any.
    pub namespace: Option<String>,
    /// How long a read secret is reused; running apps pick up a new version within this time.
    #[serde(default = "default_vault_cache_secs")]
    pub cache_secs: u64,
}

fn default_vault_auth() -> String {
    "token".to_owned()
}

fn default_vault_token_env() -> String {
    "VAULT_TOKEN".to_owned()
}

fn default_approle_mount() -> String {
    "approle".to_owned()
}

fn default_secret_id_env() -> String {
    "TERRARIUM_VAULT_SECRET_ID".to_owned()
}

fn default_vault_cache_secs() -> u64 {
    300
}

impl SecretsConfig {
    /// Every problem of the section, each naming its key. Reads no key and no variable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.kek == KekSource::VaultTransit && self.vault.is_none() {
            problems.push("secrets.kek is \"vault-transit\", which needs a [secrets.vault] section".to_owned());
        }
        if self.expiry_reminder_days < 0 {
            problems.push(format!(
                "secrets.expiry_reminder_days is {}; give the days before expiry when reminders start",
                self.expiry_reminder_days
            ));
        }
        if let Some(vault) = &self.vault {
            if !(vault.address.starts_with("https://") || vault.address.starts_with("http://")) {
                problems
                    .push(format!("secrets.vault.address: {:?} is not a URL like https://vault:8200", vault.address));
            }
            match vault.auth.as_str() {
                "token" => {}
                "approle" if vault.role_id.is_none() => {
                    problems.push("secrets.vault: auth = \"approle\" needs role_id = \"...\"".to_owned())
                }
                "approle" => {}
                other => problems
                    .push(format!("secrets.vault.auth: {other:?} is not supported; use \"token\" or \"approle\"")),
            }
        }
        problems
    }

    /// The key-encryption key when it is a key file or keys in a variable; `transit` is the
    /// one Vault's transit engine provides when `kek = "vault-transit"`.
    pub fn build_kek(
        &self,
        data_dir: &Path,
        transit: Option<Arc<dyn KeyEncryptionKey>>,
    ) -> Result<Arc<dyn KeyEncryptionKey>, String> {
        match self.kek {
            KekSource::File => {
                let file = KeyFile::open_or_create(&data_dir.join(KEK_FILE)).map_err(|error| error.to_string())?;
                Ok(Arc::new(file))
            }
            KekSource::Env => {
                let variable = &self.kek_env;
                let value = std::env::var(variable).map_err(|_| {
                    format!("secrets.kek is \"env\", but {variable} is not set; set it to a key made with `openssl rand -base64 32`")
                })?;
                let keys = EnvKeys::from_value(variable, &value).map_err(|error: SecretError| error.to_string())?;
                Ok(Arc::new(keys))
            }
            KekSource::VaultTransit => transit
                .ok_or_else(|| "secrets.kek is \"vault-transit\", which needs a [secrets.vault] section".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named() {
        assert!(SecretsConfig::default().validate().is_empty());
        let config =
            SecretsConfig { kek: KekSource::VaultTransit, expiry_reminder_days: -1, ..SecretsConfig::default() };
        assert_eq!(config.validate().len(), 2);
        let vault: VaultSection = serde_json::from_value(serde_json::json!({
            "address": "vault:8200", "auth": "approle"
        }))
        .unwrap();
        let config = SecretsConfig { vault: Some(vault), ..SecretsConfig::default() };
        let problems = config.validate();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[1].contains("role_id"));
    }
}
