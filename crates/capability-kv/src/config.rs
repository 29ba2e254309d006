//! `[data.kv]` in `terrarium.toml`.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvSection {
    /// The largest value one key may hold (Workers KV: 25 MiB).
    pub max_value_bytes: usize,
    /// How often expired keys are deleted (they are never returned once expired).
    pub sweep_secs: u64,
}

impl Default for KvSection {
    fn default() -> KvSection {
        KvSection { max_value_bytes: 25 * 1024 * 1024, sweep_secs: 300 }
    }
}

impl KvSection {
    /// Every problem of the section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_value_bytes == 0 {
            problems.push("data.kv.max_value_bytes is 0; give the largest value in bytes".to_owned());
        }
        if self.sweep_secs == 0 {
            problems.push("data.kv.sweep_secs is 0; give a number of seconds".to_owned());
        }
        problems
    }

    /// How often the sweep runs.
    pub fn build(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.sweep_secs.max(1))
    }
}
