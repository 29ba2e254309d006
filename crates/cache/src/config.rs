//! `[cache]` in `terrarium.toml`: the gateway's response cache.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// Serve responses apps mark `public` with a lifetime from memory (default true).
    pub enabled: bool,
    /// Bytes the cache may hold in all (bodies and headers).
    pub max_bytes: u64,
    /// The largest response stored; a larger one is served as it comes.
    pub max_entry_bytes: u64,
    /// The most of `max_bytes` one namespace may hold, in percent: one team's hot set cannot
    /// evict everyone else's.
    pub namespace_share_percent: u8,
    /// A directory for the on-disk tier (relative to the data directory), which keeps what the
    /// memory tier has no room for; none by default. Emptied at start.
    pub disk_path: Option<std::path::PathBuf>,
    /// Bytes the on-disk tier may hold (bodies and headers); each namespace gets the same share
    /// of it as of memory.
    pub disk_max_bytes: u64,
}

impl Default for CacheSection {
    fn default() -> CacheSection {
        CacheSection {
            enabled: true,
            max_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            namespace_share_percent: 25,
            disk_path: None,
            disk_max_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// The cache's limits, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    pub max_bytes: u64,
    pub max_entry_bytes: u64,
    pub namespace_bytes: u64,
}

impl CacheSection {
    /// Every problem, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_bytes == 0 {
            problems.push("cache.max_bytes is 0; give a number of bytes, or set enabled = false".to_owned());
        }
        if self.max_entry_bytes == 0 || self.max_entry_bytes > self.max_bytes {
            problems.push(format!(
                "cache.max_entry_bytes is {}; give a positive number no larger than cache.max_bytes ({})",
                self.max_entry_bytes, self.max_bytes
            ));
        }
        if !(1..=100).contains(&self.namespace_share_percent) {
            problems.push(format!(
                "cache.namespace_share_percent is {}; give a percentage from 1 to 100",
                self.namespace_share_percent
            ));
        }
        if self.disk_path.is_some() && self.disk_max_bytes < self.max_entry_bytes {
            problems.push(format!(
                "cache.disk_max_bytes is {}; give at least cache.max_entry_bytes ({}), or leave out cache.disk_path",
                self.disk_max_bytes, self.max_entry_bytes
            ));
        }
        if self.disk_path.as_ref().is_some_and(|path| path.as_os_str().is_empty()) {
            problems.push(
                "cache.disk_path is empty; name a directory, or leave it out for a cache in memory only".to_owned(),
            );
        }
        problems
    }

    /// The on-disk tier's limits, its directory under `data_dir` when relative; `None` without
    /// one or when the cache is off.
    pub fn disk(&self, data_dir: &std::path::Path) -> Option<crate::DiskLimits> {
        let path = self.disk_path.as_ref().filter(|_| self.enabled)?;
        Some(crate::DiskLimits {
            dir: data_dir.join(path),
            max_bytes: self.disk_max_bytes,
            namespace_bytes: self.disk_max_bytes * u64::from(self.namespace_share_percent) / 100,
        })
    }

    /// The limits, or `None` when the cache is off.
    pub fn build(&self) -> Option<CacheLimits> {
        self.enabled.then(|| CacheLimits {
            max_bytes: self.max_bytes,
            max_entry_bytes: self.max_entry_bytes,
            namespace_bytes: self.max_bytes * u64::from(self.namespace_share_percent) / 100,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistakes_are_named_by_key() {
        let bad = CacheSection {
            max_bytes: 10,
            max_entry_bytes: 20,
            namespace_share_percent: 0,
            disk_path: Some("cache".into()),
            disk_max_bytes: 5,
            ..CacheSection::default()
        };
        let problems = bad.validate();
        assert!(problems.iter().any(|problem| problem.starts_with("cache.max_entry_bytes")), "{problems:?}");
        assert!(problems.iter().any(|problem| problem.starts_with("cache.namespace_share_percent")), "{problems:?}");
        assert!(problems.iter().any(|problem| problem.starts_with("cache.disk_max_bytes")), "{problems:?}");
        let disk = CacheSection { disk_path: Some("cache".into()), ..CacheSection::default() };
        assert_eq!(disk.disk(std::path::Path::new("/data")).unwrap().dir, std::path::Path::new("/data/cache"));
        assert_eq!(CacheSection::default().disk(std::path::Path::new("/data")), None);
        assert!(CacheSection::default().validate().is_empty());
        assert_eq!(CacheSection { enabled: false, ..CacheSection::default() }.build(), None);
    }
}
