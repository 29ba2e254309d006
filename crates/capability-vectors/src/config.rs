//! `[data.vectors]` in `terrarium.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VectorsSection {
    /// Where index files live; `vectors` in the data directory when absent.
    pub dir: Option<PathBuf>,
    /// The most vectors one app's index may hold.
    pub max_vectors_per_index: usize,
    /// An index nobody used for this long leaves memory; its next use loads it from disk.
    pub idle_secs: u64,
    /// How often expired vectors are deleted (they are never returned once expired).
    pub sweep_secs: u64,
}

impl Default for VectorsSection {
    fn default() -> VectorsSection {
        VectorsSection { dir: None, max_vectors_per_index: 1_000_000, idle_secs: 900, sweep_secs: 3600 }
    }
}

impl VectorsSection {
    /// Every problem of the section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_vectors_per_index == 0 {
            problems
                .push("data.vectors.max_vectors_per_index is 0; give the most vectors one index may hold".to_owned());
        }
        if self.idle_secs == 0 {
            problems.push("data.vectors.idle_secs is 0; give a number of seconds".to_owned());
        }
        if self.sweep_secs == 0 {
            problems.push("data.vectors.sweep_secs is 0; give a number of seconds".to_owned());
        }
        problems
    }

    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("vectors"))
    }
}
