//! The platform's secret store, with envelope encryption.
//!
//! Each namespace (tenant) has its own 256-bit data key; every secret value is sealed with
//! AES-256-GCM under it, bound to its namespace, app and name. Data keys are stored only wrapped
//! by a key-encryption key (KEK): a key file with mode 0600 by default, keys from an environment
//! variable, or Vault's transit engine (in the `vault` crate). `terrarium secrets rotate-kek`
//! rewraps every data key under a new KEK while apps keep serving.
//!
//! Values never leave this crate except to the app that owns them: listing shows names,
//! versions and dates, errors name the secret and never its value, and [`SecretValue`]'s
//! `Debug` is redacted.

pub mod admin;
pub mod apps;
pub mod config;
pub mod envelope;
pub mod kek;
pub mod records;
mod store;

pub use runtime::SecretValue;
pub use store::{RotationEvent, SecretName, SecretStore};

/// Largest secret value: 64 KiB is plenty for keys, tokens and certificates.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Longest secret name.
pub const MAX_NAME_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret encryption failed: {0}")]
    Crypto(&'static str),
    #[error(
        "the key-encryption key {kek_id} is not available; restore the key file or environment variable that held it"
    )]
    UnknownKek { kek_id: String },
    #[error("the key file {path} cannot be used: {reason}")]
    KeyFile { path: std::path::PathBuf, reason: String },
    #[error("the key-encryption key in {variable} cannot be used: {reason}")]
    EnvKek { variable: String, reason: String },
    #[error(
        "{name:?} is not a valid secret name: use 1 to 64 letters, digits and '_', not starting with a digit (like MAPS_API_KEY)"
    )]
    InvalidName { name: String },
    #[error("{name:?} is reserved: functions already get env.{name} from the platform; choose another name")]
    ReservedName { name: String },
    #[error("the value is {size} bytes; a secret may be at most {MAX_VALUE_BYTES} bytes")]
    TooLarge { size: usize },
    #[error("the value is empty; a secret needs a value")]
    Empty,
    #[error(
        "{namespace}/{app} has no secret {name:?}; list its secrets with `terrarium secrets list {namespace}/{app}`"
    )]
    NotFound { namespace: String, app: String, name: String },
    #[error("the key-encryption key provider failed: {0}")]
    Provider(String),
    #[error("secret storage failed: {0}")]
    Storage(String),
}

/// Checks a secret name: the same rule as `spec.vars` names, so both become `env.NAME`.
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let mut chars = name.chars();
    let valid = name.len() <= MAX_NAME_LEN
        && chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(SecretError::InvalidName { name: name.to_owned() });
    }
    if name == "USER" {
        return Err(SecretError::ReservedName { name: name.to_owned() });
    }
    Ok(())
}

fn check_value(value: &SecretValue) -> Result<(), SecretError> {
    match value.expose().len() {
        0 => Err(SecretError::Empty),
        size if size > MAX_VALUE_BYTES => Err(SecretError::TooLarge { size }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_vars_rule() {
        for good in ["MAPS_KEY", "_x", "a1", &"A".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1X", "MAPS-KEY", "MAPS KEY", "é", &"A".repeat(65)] {
            assert!(matches!(check_name(bad), Err(SecretError::InvalidName { .. })), "{bad}");
        }
        assert!(matches!(check_name("USER"), Err(SecretError::ReservedName { .. })));
    }

    #[test]
    fn values_are_bounded_and_never_printed() {
        assert!(matches!(check_value(&SecretValue::new(String::new())), Err(SecretError::Empty)));
        assert!(matches!(
            check_value(&SecretValue::new("x".repeat(MAX_VALUE_BYTES + 1))),
            Err(SecretError::TooLarge { .. })
        ));
        let value = SecretValue::new("sk-live-123".to_owned());
        assert!(!format!("{value:?}").contains("sk-live"));
    }
}
