//! The server's policies: the `policy` crate's compiled set behind the control plane's
//! [`PolicyEngine`], with the modes of `[policy]` and reloading without a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use api_types::policy::{Decision, Mode, PolicyStatus};
use control::governance::PolicyEngine;
use policy::PolicySet;

use control::governance::config::PolicySection;

pub struct Policies {
    bundled: bool,
    dir: Option<PathBuf>,
    modes: BTreeMap<String, Mode>,
    current: RwLock<Loaded>,
    reload_error: Mutex<Option<String>>,
}

#[derive(Clone)]
struct Loaded {
    set: Arc<PolicySet>,
    loaded_at: String,
}

impl Policies {
    /// Loads the configured policies; a broken policy or a mode naming no policy stops the start.
    pub fn load(section: &PolicySection) -> anyhow::Result<Policies> {
        let set =
            PolicySet::load(section.bundled, section.dir.as_deref()).context("policy: the policies cannot be used")?;
        if set.policies().is_empty() {
            anyhow::bail!(
                "policy: no policies are loaded (bundled = false and no .rego files in dir); deploys would not be governed"
            );
        }
        let mut modes = BTreeMap::new();
        for (name, mode) in &section.modes {
            let mode: Mode = mode.parse().map_err(|error: String| anyhow::anyhow!("policy.modes.{name}: {error}"))?;
            if !set.policies().contains(name) {
                anyhow::bail!(
                    "policy.modes.{name}: there is no policy named {name:?}; the policies are {}",
                    set.policies().join(", ")
                );
            }
            modes.insert(name.clone(), mode);
        }
        Ok(Policies {
            bundled: section.bundled,
            dir: section.dir.clone(),
            modes,
            current: RwLock::new(Loaded { set: Arc::new(set), loaded_at: control::now() }),
            reload_error: Mutex::new(None),
        })
    }

    fn loaded(&self) -> Loaded {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn source(&self) -> String {
        match (&self.dir, self.bundled) {
            (None, _) => "bundled".to_owned(),
            (Some(dir), true) => format!("bundled + {}", dir.display()),
            (Some(dir), false) => dir.display().to_string(),
        }
    }

    fn try_reload(&self) -> Result<bool, String> {
        let sources = policy::sources(self.bundled, self.dir.as_deref()).map_err(|error| error.to_string())?;
        if policy::version_of(&sources) == self.loaded().set.version() {
            return Ok(false);
        }
        let set = PolicySet::from_sources(sources).map_err(|error| error.to_string())?;
        if set.policies().is_empty() {
            return Err("the new policy set has no policies".to_owned());
        }
        let loaded = Loaded { set: Arc::new(set), loaded_at: control::now() };
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        tracing::info!(version = %self.loaded().set.version(), "policies reloaded");
        Ok(true)
    }
}

impl PolicyEngine for Policies {
    fn evaluate(&self, input: &serde_json::Value) -> Result<Decision, String> {
        let set = self.loaded().set;
        set.evaluate(input, &self.modes).map_err(|error| error.to_string())
    }

    fn status(&self) -> PolicyStatus {
        let loaded = self.loaded();
        PolicyStatus {
            version: loaded.set.version().to_owned(),
            files: loaded.set.files().to_vec(),
            source: self.source(),
            loaded_at: loaded.loaded_at,
            modes: self.modes.clone(),
            last_audit: None,
            audited_apps: 0,
            reload_error: self.reload_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
        }
    }

    fn reload(&self) -> Result<bool, String> {
        let result = self.try_reload();
        *self.reload_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = result.as_ref().err().cloned();
        result
    }

    fn policies(&self) -> Vec<String> {
        self.loaded().set.policies().to_vec()
    }
}
