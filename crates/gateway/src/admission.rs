//! The admit phase: a per-app rate limit (GCRA, via governor) and a per-app concurrency
//! bulkhead. Over the rate: 429 with `Retry-After` and `RateLimit-*`; over concurrency: 503 at
//! once. Nothing waits in a queue.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use deployment::Admission;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// One app's admission state, built once per deployment.
pub struct AppAdmission {
    limits: Admission,
    limiter: Limiter,
    in_flight: Arc<Semaphore>,
}

/// A request let in: holds its concurrency slot until dropped.
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    /// Requests left in the burst right now, for `RateLimit-Remaining`.
    pub remaining: u32,
}

pub enum Refusal {
    /// Over the rate: try again after this long.
    RateLimited { retry_after: Duration },
    /// Every concurrency slot is taken.
    Busy,
}

impl AppAdmission {
    pub fn new(limits: Admission) -> AppAdmission {
        let rate = NonZeroU32::new(limits.requests_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.burst).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
            .with_middleware::<StateInformationMiddleware>();
        let in_flight = Arc::new(Semaphore::new(limits.concurrency.max(1) as usize));
        AppAdmission { limits, limiter, in_flight }
    }

    pub fn limits(&self) -> Admission {
        self.limits
    }

    /// Lets a request in, or says why not. The rate is checked first, so a refused request
    /// never takes a concurrency slot.
    pub fn admit(&self) -> Result<Admitted, Refusal> {
        let snapshot = match self.limiter.check() {
            Ok(snapshot) => snapshot,
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(DefaultClock::default().now());
                return Err(Refusal::RateLimited { retry_after });
            }
        };
        match self.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admitted { _permit: permit, remaining: snapshot.remaining_burst_capacity() }),
            Err(_) => Err(Refusal::Busy),
        }
    }
}

impl AppAdmission {
    /// Waits up to `within` for every running request to finish and takes every slot, so no
    /// request is let in until the answer is dropped (archiving an app reads its data after
    /// this). `Err` says how many were still running.
    pub async fn drain(&self, within: Duration) -> Result<Drained, u32> {
        let slots = self.limits.concurrency.max(1);
        match tokio::time::timeout(within, self.in_flight.clone().acquire_many_owned(slots)).await {
            Ok(Ok(permit)) => Ok(Drained { _permit: permit }),
            _ => Err(slots.saturating_sub(self.in_flight.available_permits() as u32)),
        }
    }
}

/// Every slot of an app, held: nothing is admitted until it is dropped.
pub struct Drained {
    _permit: OwnedSemaphorePermit,
}

/// Ceilings shared by all the apps of a namespace, from its tier: built on first use per
/// namespace, and refused before the app's own limits are checked.
pub struct NamespaceCeilings {
    /// The ceiling of namespaces without a tier of their own; `None` for no ceiling.
    default: Option<Admission>,
    by_namespace: std::collections::HashMap<String, Admission>,
    live: arc_swap::ArcSwap<std::collections::HashMap<String, Arc<AppAdmission>>>,
    insert: std::sync::Mutex<()>,
}

impl NamespaceCeilings {
    pub fn new(
        default: Option<Admission>,
        by_namespace: std::collections::HashMap<String, Admission>,
    ) -> NamespaceCeilings {
        NamespaceCeilings { default, by_namespace, live: Default::default(), insert: std::sync::Mutex::new(()) }
    }

    /// The namespace's shared admission state, if it has a ceiling.
    pub fn for_namespace(&self, namespace: &str) -> Option<Arc<AppAdmission>> {
        if let Some(found) = self.live.load().get(namespace) {
            return Some(Arc::clone(found));
        }
        let limits = self.by_namespace.get(namespace).copied().or(self.default)?;
        let _guard = self.insert.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = self.live.load().get(namespace) {
            return Some(Arc::clone(found));
        }
        let admission = Arc::new(AppAdmission::new(limits));
        let mut next = std::collections::HashMap::clone(&self.live.load());
        next.insert(namespace.to_owned(), Arc::clone(&admission));
        self.live.store(Arc::new(next));
        Some(admission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_limited_and_bulkhead() {
        let admission = AppAdmission::new(Admission { requests_per_second: 1, burst: 3, concurrency: 2 });
        let first = admission.admit().ok().unwrap();
        let second = admission.admit().ok().unwrap();
        assert_eq!(second.remaining, 1);
        // Two in flight: the third is refused for concurrency (it still counts against the rate).
        assert!(matches!(admission.admit(), Err(Refusal::Busy)));
        drop(first);
        drop(second);
        // The burst of 3 is spent (the busy attempt counted against the rate too).
        match admission.admit() {
            Err(Refusal::RateLimited { retry_after }) => assert!(retry_after <= Duration::from_secs(1)),
            _ => panic!("the fourth request within a second is over the rate"),
        }
    }

    /// Draining waits for running requests (on tokio's paused clock: the timeout passes
    /// without waiting) and then lets nothing in until it is dropped.
    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_running_requests_and_holds_every_slot() {
        let admission = AppAdmission::new(Admission { requests_per_second: 1000, burst: 1000, concurrency: 3 });
        let running = admission.admit().ok().unwrap();
        assert_eq!(admission.drain(Duration::from_secs(30)).await.err(), Some(1));
        drop(running);
        let drained = admission.drain(Duration::from_secs(30)).await.ok().unwrap();
        assert!(matches!(admission.admit(), Err(Refusal::Busy)));
        drop(drained);
        assert!(admission.admit().is_ok());
    }
}
