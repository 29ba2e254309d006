//! `[engine]` in `terrarium.toml`: the JavaScript threads and the instances they keep.

use std::time::Duration;

use serde::Deserialize;

use crate::JsEngineConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Threads running JavaScript; 0 means one per CPU core.
    pub workers: usize,
    /// Native stack of each JavaScript thread; an app's stack limit stays below it.
    pub worker_stack_kib: usize,
    /// Calls waiting for one JavaScript thread before new ones are refused with 503.
    pub queue_capacity_per_worker: usize,
    /// Instances of one app serving at once (a call awaiting `fetch` holds its instance).
    pub max_instances_per_app: usize,
    /// Warm instances kept per app between requests. Equal to `max_instances_per_app` by
    /// default: a busy app that needed several instances keeps them (until the idle timeout)
    /// instead of paying for new ones on every burst.
    pub idle_instances_per_app: usize,
    /// Warm instances unused this long are dropped, so memory follows the apps in use;
    /// 0 keeps them until the app is redeployed or deleted.
    pub idle_instance_timeout_secs: u64,
}

impl Default for EngineSection {
    fn default() -> EngineSection {
        EngineSection {
            workers: 0,
            worker_stack_kib: 8 * 1024,
            queue_capacity_per_worker: 1024,
            max_instances_per_app: 4,
            idle_instances_per_app: 4,
            idle_instance_timeout_secs: 300,
        }
    }
}

impl EngineSection {
    /// Every problem of the section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.worker_stack_kib < 1024 {
            problems.push(format!("engine.worker_stack_kib is {}; give at least 1024 (1 MiB)", self.worker_stack_kib));
        }
        for (key, value) in [
            ("queue_capacity_per_worker", self.queue_capacity_per_worker),
            ("max_instances_per_app", self.max_instances_per_app),
        ] {
            if value == 0 {
                problems.push(format!("engine.{key} is 0; give at least 1"));
            }
        }
        problems
    }

    /// The engine's settings; `cores` is what `workers = 0` means.
    pub fn build(&self, cores: usize) -> JsEngineConfig {
        JsEngineConfig {
            worker_threads: match self.workers {
                0 => cores.max(1),
                n => n,
            },
            worker_stack_bytes: self.worker_stack_kib * 1024,
            queue_capacity_per_worker: self.queue_capacity_per_worker,
            max_instances_per_app: self.max_instances_per_app,
            idle_instances_per_app: self.idle_instances_per_app,
            idle_instance_timeout: match self.idle_instance_timeout_secs {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_workers_means_every_core() {
        let section = EngineSection::default();
        assert!(section.validate().is_empty());
        assert_eq!(section.build(16).worker_threads, 16);
        let bad = EngineSection { worker_stack_kib: 64, max_instances_per_app: 0, ..EngineSection::default() };
        assert_eq!(bad.validate().len(), 2);
        let kept = EngineSection { idle_instance_timeout_secs: 0, workers: 3, ..EngineSection::default() };
        assert_eq!((kept.build(16).worker_threads, kept.build(16).idle_instance_timeout), (3, None));
    }
}
