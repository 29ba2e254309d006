//! The optional on-disk tier: responses the memory tier evicts for room (or cannot hold within
//! its namespace's share) go to files in a directory of their own, and a memory miss looks there
//! before running the app. Only bodies are on disk; what each file holds (the key, status,
//! headers, lifetime, tags) stays in a byte-bounded index in memory, so a file name is a number
//! the tier chose and no key or URL ever becomes a path. The tier starts empty: its directory's
//! files are removed at start, because the index that vouches for them is gone.
//!
//! Files are written and removed by one thread of its own, never on the request path; reads run
//! on the blocking pool. A demoted response waits in a queue the lookups see, until its file is
//! written and indexed; purges take from that queue and the index under one lock, so a response
//! demoted before a purge is never found after it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};

use crate::{Entry, Key, Shares, StaleAfter};

/// Demotions waiting for the writer beyond this are dropped (a dropped one is a miss later).
const MAX_QUEUED: usize = 1024;
/// What the files' names end with; only these are removed at start.
const SUFFIX: &str = ".body";

/// The on-disk tier's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskLimits {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub namespace_bytes: u64,
}

/// A response on disk: everything but its body.
struct Stored {
    status: StatusCode,
    headers: HeaderMap,
    stored: Instant,
    lifetime: Duration,
    tags: Vec<String>,
    file: PathBuf,
    len: u64,
}

impl Stored {
    fn weight(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 32).sum();
        self.len + headers as u64 + 128
    }
}

impl moka::Expiry<Key, Arc<Stored>> for StaleAfter {
    fn expire_after_create(&self, _key: &Key, stored: &Arc<Stored>, _created_at: Instant) -> Option<Duration> {
        Some(stored.lifetime + Duration::from_secs(60))
    }
}

enum Job {
    Write {
        key: Key,
        entry: Arc<Entry>,
    },
    Remove(PathBuf),
    /// Answers once every job sent before it is done.
    Barrier(SyncSender<()>),
}

pub(crate) struct DiskTier {
    index: moka::sync::Cache<Key, Arc<Stored>>,
    shares: Arc<Shares>,
    jobs: Mutex<Sender<Job>>,
    /// Demoted responses not written yet; held while the writer adds to the index.
    pending: Mutex<HashMap<Key, Arc<Entry>>>,
}

impl DiskTier {
    /// Opens the tier in `limits.dir` (made if missing, emptied of earlier files).
    pub(crate) fn open(limits: &DiskLimits) -> std::io::Result<Arc<DiskTier>> {
        // Only the server's user reads what apps cached.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&limits.dir)?;
        for found in std::fs::read_dir(&limits.dir)? {
            let path = found?.path();
            if path.extension().is_some_and(|extension| extension == &SUFFIX[1..]) {
                std::fs::remove_file(&path)?;
            }
        }
        let (jobs, received) = channel::<Job>();
        let shares = Arc::new(Shares::new(limits.namespace_bytes));
        let released = shares.clone();
        let removals = Mutex::new(jobs.clone());
        let index = moka::sync::Cache::builder()
            .max_capacity(limits.max_bytes)
            .weigher(|_key: &Key, stored: &Arc<Stored>| u32::try_from(stored.weight()).unwrap_or(u32::MAX))
            .time_to_live(Duration::from_secs(365 * 24 * 3600))
            .expire_after(StaleAfter)
            .support_invalidation_closures()
            .eviction_listener(move |key: Arc<Key>, stored: Arc<Stored>, _cause| {
                released.give_back(&key.app.namespace, stored.weight());
                let sent =
                    removals.lock().unwrap_or_else(PoisonError::into_inner).send(Job::Remove(stored.file.clone()));
                if sent.is_err() {
                    let _ = std::fs::remove_file(&stored.file);
                }
            })
            .build();
        let tier = Arc::new(DiskTier { index, shares, jobs: Mutex::new(jobs), pending: Mutex::default() });
        let writer = Writer { dir: limits.dir.clone(), next: AtomicU64::new(0), tier: Arc::downgrade(&tier) };
        std::thread::Builder::new().name("cache-disk".to_owned()).spawn(move || writer.run(received))?;
        Ok(tier)
    }

    /// Queues a response to be written; `false` when the queue is full or it is stale already.
    pub(crate) fn demote(&self, key: Key, entry: Arc<Entry>) -> bool {
        if !entry.is_fresh() {
            return false;
        }
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.len() >= MAX_QUEUED {
                return false;
            }
            pending.insert(key.clone(), entry.clone());
        }
        let sent =
            self.jobs.lock().unwrap_or_else(PoisonError::into_inner).send(Job::Write { key: key.clone(), entry });
        if sent.is_err() {
            self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
        }
        sent.is_ok()
    }

    /// The fresh response for `key` waiting to be written or on disk (read on the blocking pool).
    pub(crate) async fn load(&self, key: &Key) -> Option<Arc<Entry>> {
        let waiting = self.pending.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned();
        if let Some(entry) = waiting {
            return entry.is_fresh().then_some(entry);
        }
        let stored = self.index.get(key).filter(|stored| stored.stored.elapsed() < stored.lifetime)?;
        let file = stored.file.clone();
        let body = tokio::task::spawn_blocking(move || std::fs::read(file)).await.ok()?.ok()?;
        // A file removed and its number not reused: a short read is a miss, never a wrong body.
        if body.len() as u64 != stored.len {
            return None;
        }
        Some(Arc::new(Entry {
            status: stored.status,
            headers: stored.headers.clone(),
            body: body.into(),
            stored: stored.stored,
            lifetime: stored.lifetime,
            tags: stored.tags.clone(),
        }))
    }

    /// Forgets the entries `predicate` picks, written or waiting.
    pub(crate) fn purge(&self, predicate: impl Fn(&Key, &[String]) -> bool + Send + Sync + 'static) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.retain(|key, entry| !predicate(key, &entry.tags));
        let _ = self.index.invalidate_entries_if(move |key, stored| predicate(key, &stored.tags));
    }

    pub(crate) fn remove(&self, key: &Key) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting = pending.remove(key).is_some();
        self.index.remove(key).is_some() || waiting
    }

    /// Waits until every write and removal queued so far is done and the index is settled.
    pub(crate) fn settle(&self) {
        let (done, wait) = sync_channel(1);
        let sent = self.jobs.lock().unwrap_or_else(PoisonError::into_inner).send(Job::Barrier(done));
        if sent.is_ok() {
            let _ = wait.recv();
        }
        self.index.run_pending_tasks();
        // Removals the settling queued.
        let (done, wait) = sync_channel(1);
        if self.jobs.lock().unwrap_or_else(PoisonError::into_inner).send(Job::Barrier(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    pub(crate) fn held_by(&self, namespace: &str) -> u64 {
        self.index.run_pending_tasks();
        self.shares.held_by(namespace)
    }
}

/// The tier's own thread: writes demoted bodies and removes evicted files.
struct Writer {
    dir: PathBuf,
    next: AtomicU64,
    tier: std::sync::Weak<DiskTier>,
}

impl Writer {
    fn run(self, jobs: Receiver<Job>) {
        for job in jobs {
            match job {
                Job::Write { key, entry } => {
                    let Some(tier) = self.tier.upgrade() else { return };
                    self.write(&tier, key, &entry);
                }
                Job::Remove(file) => {
                    let _ = std::fs::remove_file(file);
                }
                Job::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn write(&self, tier: &DiskTier, key: Key, entry: &Arc<Entry>) {
        let still_waiting =
            |pending: &HashMap<Key, Arc<Entry>>| pending.get(&key).is_some_and(|waiting| Arc::ptr_eq(waiting, entry));
        let give_up = |file: Option<&Path>| {
            let mut pending = tier.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if still_waiting(&pending) {
                pending.remove(&key);
            }
            drop(pending);
            if let Some(file) = file {
                let _ = std::fs::remove_file(file);
            }
        };
        // The disk holds this answer, or a newer one, already (an answer in memory shadows
        // an older one on disk, and replaces it when it is demoted in turn).
        if tier.index.get(&key).is_some_and(|held| held.stored >= entry.stored) {
            return give_up(None);
        }
        let file = self.dir.join(format!("{:016x}{SUFFIX}", self.next.fetch_add(1, Ordering::Relaxed)));
        if let Err(error) = write_file(&file, &entry.body) {
            tracing::warn!(%error, file = %file.display(), "a cached response could not be written to disk");
            return give_up(Some(&file));
        }
        let stored = Arc::new(Stored {
            status: entry.status,
            headers: entry.headers.clone(),
            stored: entry.stored,
            lifetime: entry.lifetime,
            tags: entry.tags.clone(),
            file: file.clone(),
            len: entry.body.len() as u64,
        });
        let weight = stored.weight();
        let namespace = key.app.namespace.clone();
        let mut pending = tier.pending.lock().unwrap_or_else(PoisonError::into_inner);
        // Purged, removed or demoted anew since, or no room in its namespace's share: not kept.
        if !still_waiting(&pending) || !tier.shares.take(&namespace, weight) {
            drop(pending);
            return give_up(Some(&file));
        }
        pending.remove(&key);
        tier.index.insert(key.clone(), stored);
    }
}

/// Writes a body to a new file only the server's user reads.
fn write_file(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(body)
}
