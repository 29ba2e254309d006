//! Service level objectives per app (`spec.slo`): availability and p95 latency targets,
//! evaluated over rolling windows with multi-window burn-rate alerts, as in Google's SRE
//! workbook: a fast burn (the 1 h and 5 min windows both burning the error budget more than 14.4
//! times too fast) and a slow burn (6 h and 30 min, more than 6 times).
//!
//! Requests are counted per app in one-minute buckets for the last six hours, in memory: a
//! restart starts the windows afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api_types::{SloObjective, SloStatus};
use deployment::AppKey;

use notify::{Notification, Notifier};

/// Minutes of history: the longest window.
const MINUTES: usize = 360;

/// (window, short window, burn rate) of the two alerts.
const FAST_BURN: (u64, u64, f64) = (60, 5, 14.4);
const SLOW_BURN: (u64, u64, f64) = (360, 30, 6.0);

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// The minute (Unix seconds / 60) the counts belong to.
    minute: u64,
    total: u64,
    /// 5xx answers, including refusals for overload (503).
    failed: u64,
    /// Answers slower than the latency target.
    slow: u64,
}

struct AppWindows {
    buckets: Box<[Bucket; MINUTES]>,
    /// The latency target when the counts were taken, in milliseconds.
    latency_target_ms: Option<u32>,
}

impl AppWindows {
    fn new(latency_target_ms: Option<u32>) -> AppWindows {
        AppWindows { buckets: Box::new([Bucket::default(); MINUTES]), latency_target_ms }
    }

    fn bucket(&mut self, minute: u64) -> &mut Bucket {
        let bucket = &mut self.buckets[(minute % MINUTES as u64) as usize];
        if bucket.minute != minute {
            *bucket = Bucket { minute, ..Bucket::default() };
        }
        bucket
    }

    /// Sums of the last `minutes` minutes up to `now_minute`.
    fn window(&self, now_minute: u64, minutes: u64) -> Bucket {
        let mut sum = Bucket::default();
        for bucket in self.buckets.iter() {
            if bucket.minute + minutes > now_minute && bucket.minute <= now_minute {
                sum.total += bucket.total;
                sum.failed += bucket.failed;
                sum.slow += bucket.slow;
            }
        }
        sum
    }
}

/// An app's objectives, from its active deployment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objectives {
    /// Percent of requests that succeed (not 5xx).
    pub availability: Option<f64>,
    pub latency_p95_ms: Option<u32>,
}

pub struct SloTracker {
    apps: Mutex<HashMap<AppKey, AppWindows>>,
    objectives: arc_swap::ArcSwap<HashMap<AppKey, Objectives>>,
}

fn now_minute() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs() / 60)
}

impl Default for SloTracker {
    fn default() -> SloTracker {
        SloTracker { apps: Mutex::new(HashMap::new()), objectives: Default::default() }
    }
}

impl SloTracker {
    /// Counts one answered request of an app that has objectives.
    pub fn observe(&self, app: &AppKey, status: u16, duration: Duration) {
        let objectives = self.objectives.load();
        let Some(objectives) = objectives.get(app) else {
            return;
        };
        let mut apps = self.apps.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let windows = apps.entry(app.clone()).or_insert_with(|| AppWindows::new(objectives.latency_p95_ms));
        if windows.latency_target_ms != objectives.latency_p95_ms {
            // A new target: old counts of "slow" meant something else.
            *windows = AppWindows::new(objectives.latency_p95_ms);
        }
        let bucket = windows.bucket(now_minute());
        bucket.total += 1;
        if status >= 500 {
            bucket.failed += 1;
        }
        if objectives.latency_p95_ms.is_some_and(|target| duration > Duration::from_millis(u64::from(target))) {
            bucket.slow += 1;
        }
    }

    /// Sets the objectives of the live apps (from their deployments).
    pub fn set_objectives(&self, objectives: HashMap<AppKey, Objectives>) {
        self.objectives.store(Arc::new(objectives));
    }

    /// The SLO status of one app, if it has objectives.
    pub fn status(&self, app: &AppKey) -> Option<SloStatus> {
        let objectives = *self.objectives.load().get(app)?;
        let apps = self.apps.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = now_minute();
        let window = |minutes| apps.get(app).map_or(Bucket::default(), |windows| windows.window(now, minutes));
        let objective = |target: f64, bad: fn(&Bucket) -> u64, name: &str, description: String| {
            let budget = 1.0 - target / 100.0;
            let burn = |minutes| {
                let sum: Bucket = window(minutes);
                match sum.total {
                    0 => 0.0,
                    total => bad(&sum) as f64 / total as f64 / budget,
                }
            };
            let good_percent = |minutes| {
                let sum: Bucket = window(minutes);
                match sum.total {
                    0 => None,
                    total => Some(100.0 * (1.0 - bad(&sum) as f64 / total as f64)),
                }
            };
            let fast = burn(FAST_BURN.0) > FAST_BURN.2 && burn(FAST_BURN.1) > FAST_BURN.2;
            let slow = burn(SLOW_BURN.0) > SLOW_BURN.2 && burn(SLOW_BURN.1) > SLOW_BURN.2;
            SloObjective {
                name: name.to_owned(),
                target: description,
                good_percent_1h: good_percent(60),
                good_percent_6h: good_percent(360),
                burn_rate_1h: burn(60),
                burn_rate_6h: burn(360),
                alert: match (fast, slow) {
                    (true, _) => "fast_burn",
                    (false, true) => "slow_burn",
                    _ => "ok",
                }
                .to_owned(),
            }
        };
        let mut objectives_out = Vec::new();
        if let Some(target) = objectives.availability {
            objectives_out.push(objective(
                target,
                |bucket| bucket.failed,
                "availability",
                format!("{target} % succeed"),
            ));
        }
        if let Some(target_ms) = objectives.latency_p95_ms {
            objectives_out.push(objective(
                95.0,
                |bucket| bucket.slow,
                "latency",
                format!("95 % within {target_ms} ms"),
            ));
        }
        Some(SloStatus { objectives: objectives_out })
    }

    /// Sends burn-rate alerts (once per app, objective and severity per hour).
    pub async fn alert(&self, notifier: &Arc<Notifier>) {
        let apps: Vec<AppKey> = self.objectives.load().keys().cloned().collect();
        let hour = now_minute() / 60;
        for app in apps {
            let Some(status) = self.status(&app) else { continue };
            for objective in status.objectives.iter().filter(|objective| objective.alert != "ok") {
                let key = format!("slo.{} {app} {} {hour}", objective.alert, objective.name);
                let severity = if objective.alert == "fast_burn" { "fast" } else { "slow" };
                let notification = Notification {
                    kind: "slo.burn",
                    subject: format!("{app} is burning its {} error budget {severity}", objective.name),
                    text: format!(
                        "{app}: objective {} ({}); burn rate {:.1}× over the last hour, {:.1}× over six hours.",
                        objective.name, objective.target, objective.burn_rate_1h, objective.burn_rate_6h
                    ),
                    details: serde_json::json!({
                        "app": app.to_string(), "objective": objective.name, "alert": objective.alert,
                        "burn_rate_1h": objective.burn_rate_1h, "burn_rate_6h": objective.burn_rate_6h,
                    }),
                };
                notifier.notify_once(&key, notification).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_budget_burn_fast_and_nothing_burns_without_traffic() {
        let tracker = SloTracker::default();
        let app = AppKey::new("it", "shop");
        tracker.set_objectives(HashMap::from([(
            app.clone(),
            Objectives { availability: Some(99.0), latency_p95_ms: Some(100) },
        )]));
        let status = tracker.status(&app).unwrap();
        assert!(
            status.objectives.iter().all(|objective| objective.alert == "ok" && objective.good_percent_1h.is_none())
        );

        for index in 0..100 {
            let status = if index < 10 { 500 } else { 200 };
            tracker.observe(&app, status, Duration::from_millis(10));
        }
        let status = tracker.status(&app).unwrap();
        let availability = &status.objectives[0];
        // 10 % failing against a 1 % budget: a burn rate of 10, over the slow threshold only.
        assert!((availability.burn_rate_1h - 10.0).abs() < 1e-9, "{availability:?}");
        assert_eq!(availability.alert, "slow_burn");
        assert_eq!(status.objectives[1].alert, "ok", "every answer was fast");

        for _ in 0..100 {
            tracker.observe(&app, 503, Duration::from_millis(500));
        }
        let status = tracker.status(&app).unwrap();
        assert_eq!(status.objectives[0].alert, "fast_burn");
        assert_eq!(status.objectives[1].alert, "slow_burn", "half the answers were slow: 10 times a 5 % budget");
        for _ in 0..200 {
            tracker.observe(&app, 200, Duration::from_millis(500));
        }
        let status = tracker.status(&app).unwrap();
        assert_eq!(status.objectives[1].alert, "fast_burn", "three quarters slow: 15 times the budget");
        assert!(tracker.status(&AppKey::new("it", "other")).is_none());
    }
}
