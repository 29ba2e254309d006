//! The gateway's response cache: responses an app marks shareable (`Cache-Control: public`
//! with `s-maxage` or `max-age`, or `CDN-Cache-Control`) are kept in memory and served again
//! without running the app.
//!
//! Every key is built by the platform from the routed app (namespace, app, the revision serving)
//! and the request's path and query as they reached the app: nothing a client or an app sends
//! can name another app's entries, and a new revision never sees the old one's. The store is
//! bounded in bytes, and each namespace may hold only its share of it. What is never stored: a
//! response without `public` and a lifetime, one marked `private`, `no-store` or `no-cache`, one
//! with `Set-Cookie`, one that varies on anything but `Accept-Encoding`, a status other than
//! 200, 203, 301, 308, 404 and 410, and one larger than the entry cap.

mod api;
pub mod config;
mod disk;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use deployment::AppKey;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

pub use api::AppCaches;
pub use config::{CacheLimits, CacheSection};
pub use disk::DiskLimits;

/// What identifies a stored response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub app: AppKey,
    /// The revision that answered: a deploy or a rollback starts from an empty cache.
    pub revision: i64,
    /// The path and query as the app saw them.
    pub path_and_query: String,
}

/// A stored response.
#[derive(Debug)]
pub struct Entry {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    stored: Instant,
    lifetime: Duration,
    /// `Cache-Tag` values, for purges.
    tags: Vec<String>,
}

impl Entry {
    /// Seconds since it was stored (the `Age` header).
    pub fn age(&self) -> u64 {
        self.stored.elapsed().as_secs()
    }

    /// Still within the lifetime the app gave it.
    pub fn is_fresh(&self) -> bool {
        self.stored.elapsed() < self.lifetime
    }

    fn weight(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 32).sum();
        (self.body.len() + headers + 128) as u64
    }
}

/// How long a shared cache may keep a response, or why it may not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storable {
    For(Duration),
    Not(&'static str),
}

/// One `Cache-Control`-style header as directives (lower-case names, values unquoted).
pub(crate) fn directives(headers: &HeaderMap, name: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut found = None;
    for value in headers.get_all(name) {
        let text = value.to_str().ok()?;
        let list: &mut Vec<_> = found.get_or_insert_with(Vec::new);
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (directive, value) = match part.split_once('=') {
                Some((directive, value)) => (directive, Some(value.trim().trim_matches('"').to_owned())),
                None => (part, None),
            };
            list.push((directive.trim().to_ascii_lowercase(), value));
        }
    }
    found
}

pub(crate) fn seconds(directives: &[(String, Option<String>)], name: &str) -> Option<u64> {
    directives.iter().find(|(directive, _)| directive == name).and_then(|(_, value)| value.as_deref()?.parse().ok())
}

/// Whether a response to a GET may be stored for other callers, and for how long.
pub fn storable(status: StatusCode, headers: &HeaderMap) -> Storable {
    if ![200, 203, 301, 308, 404, 410].contains(&status.as_u16()) {
        return Storable::Not("status");
    }
    if headers.contains_key(header::SET_COOKIE) {
        return Storable::Not("set-cookie");
    }
    let varies_on_more = headers.get_all(header::VARY).iter().any(|value| {
        value.to_str().map_or(true, |text| {
            text.split(',')
                .map(str::trim)
                .any(|field| !field.is_empty() && !field.eq_ignore_ascii_case("accept-encoding"))
        })
    });
    if varies_on_more {
        return Storable::Not("vary");
    }
    let Some(control) = directives(headers, "cache-control") else {
        return Storable::Not("no cache-control");
    };
    let has = |name: &str| control.iter().any(|(directive, _)| directive == name);
    if has("private") || has("no-store") || has("no-cache") {
        return Storable::Not("private");
    }
    if !has("public") {
        return Storable::Not("not public");
    }
    // CDN-Cache-Control (RFC 9213) speaks to shared caches first; then s-maxage, then max-age.
    let cdn = directives(headers, "cdn-cache-control");
    if let Some(cdn) = &cdn
        && cdn.iter().any(|(directive, _)| directive == "no-store" || directive == "private")
    {
        return Storable::Not("private");
    }
    let lifetime = cdn
        .as_deref()
        .and_then(|cdn| seconds(cdn, "max-age"))
        .or_else(|| seconds(&control, "s-maxage"))
        .or_else(|| seconds(&control, "max-age"));
    match lifetime {
        Some(seconds) if seconds > 0 => Storable::For(Duration::from_secs(seconds.min(365 * 24 * 3600))),
        _ => Storable::Not("no lifetime"),
    }
}

/// Bytes each namespace holds in a tier, each within its share.
pub(crate) struct Shares {
    limit: u64,
    held: Mutex<HashMap<String, u64>>,
}

impl Shares {
    pub(crate) fn new(limit: u64) -> Shares {
        Shares { limit, held: Mutex::default() }
    }

    /// Takes `weight` bytes of `namespace`'s share; `false` when they do not fit.
    pub(crate) fn take(&self, namespace: &str, weight: u64) -> bool {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = held.entry(namespace.to_owned()).or_default();
        if *bytes + weight > self.limit {
            return false;
        }
        *bytes += weight;
        true
    }

    pub(crate) fn give_back(&self, namespace: &str, weight: u64) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bytes) = held.get_mut(namespace) {
            *bytes = bytes.saturating_sub(weight);
            if *bytes == 0 {
                held.remove(namespace);
            }
        }
    }

    pub(crate) fn held_by(&self, namespace: &str) -> u64 {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).get(namespace).copied().unwrap_or(0)
    }
}

/// Which entries a purge forgets, by key and tags.
type Picks = dyn Fn(&Key, &[String]) -> bool + Send + Sync;

/// The response cache: bounded in bytes, each namespace within its share, with an optional
/// on-disk tier below the memory one.
pub struct ResponseCache {
    limits: CacheLimits,
    entries: moka::sync::Cache<Key, Arc<Entry>>,
    shares: Arc<Shares>,
    disk: Option<Arc<disk::DiskTier>>,
    /// Moved by every purge and removal, after the disk's part: a lookup that brought an entry
    /// up from disk while one ran drops it again rather than keep what was forgotten.
    forgets: std::sync::atomic::AtomicU64,
}

impl ResponseCache {
    /// A cache in memory only.
    pub fn new(limits: CacheLimits) -> ResponseCache {
        ResponseCache::build(limits, None)
    }

    /// A cache in memory with an on-disk tier in `disk.dir` (emptied at start).
    pub fn with_disk(limits: CacheLimits, disk: &DiskLimits) -> std::io::Result<ResponseCache> {
        Ok(ResponseCache::build(limits, Some(disk::DiskTier::open(disk)?)))
    }

    fn build(limits: CacheLimits, disk: Option<Arc<disk::DiskTier>>) -> ResponseCache {
        let shares = Arc::new(Shares::new(limits.namespace_bytes));
        let released = shares.clone();
        let below = disk.clone();
        let entries = moka::sync::Cache::builder()
            .max_capacity(limits.max_bytes)
            .weigher(|_key: &Key, entry: &Arc<Entry>| u32::try_from(entry.weight()).unwrap_or(u32::MAX))
            // Kept a minute past their lifetime, so a stale one is told apart from a miss.
            .time_to_live(Duration::from_secs(365 * 24 * 3600))
            .expire_after(StaleAfter)
            .support_invalidation_closures()
            .eviction_listener(move |key: Arc<Key>, entry: Arc<Entry>, cause| {
                released.give_back(&key.app.namespace, entry.weight());
                // Pushed out for room, not purged or expired: the disk tier keeps it.
                if cause == moka::notification::RemovalCause::Size
                    && let Some(disk) = &below
                {
                    disk.demote(Key::clone(&key), entry);
                }
            })
            .build();
        ResponseCache { limits, entries, shares, disk, forgets: std::sync::atomic::AtomicU64::new(0) }
    }

    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// The stored response for `key` in memory, fresh or stale.
    pub fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        self.entries.get(key)
    }

    /// The stored response for `key`: in memory (fresh or stale), else a fresh one from the disk
    /// tier, which comes back into memory.
    pub async fn lookup(&self, key: &Key) -> Option<Arc<Entry>> {
        if let Some(entry) = self.entries.get(key) {
            return Some(entry);
        }
        let disk = self.disk.as_ref()?;
        let forgets = self.forgets.load(std::sync::atomic::Ordering::Acquire);
        let entry = disk.load(key).await?;
        if self.shares.take(&key.app.namespace, entry.weight()) {
            // Never over a newer answer stored meanwhile.
            let promoted = self.entries.entry(key.clone()).or_insert_with(|| entry.clone());
            if !promoted.is_fresh() {
                self.shares.give_back(&key.app.namespace, entry.weight());
            } else if self.forgets.load(std::sync::atomic::Ordering::Acquire) != forgets {
                // A purge or removal ran while it was read: it may have been meant to go.
                self.entries.invalidate(key);
            }
        }
        Some(entry)
    }

    /// Stores a response for `lifetime`; `false` when it is over the entry cap, or its
    /// namespace's share is full and there is no disk tier to take it.
    pub fn insert(&self, key: Key, status: StatusCode, headers: HeaderMap, body: Bytes, lifetime: Duration) -> bool {
        let tags = headers
            .get_all(HeaderName::from_static("cache-tag"))
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|tag| tag.trim().to_owned())
            .filter(|tag| !tag.is_empty())
            .collect();
        let entry = Arc::new(Entry { status, headers, body, stored: Instant::now(), lifetime, tags });
        let weight = entry.weight();
        if weight > self.limits.max_entry_bytes {
            return false;
        }
        if !self.shares.take(&key.app.namespace, weight) {
            let Some(disk) = &self.disk else { return false };
            // An older copy in memory would shadow this one on disk.
            self.entries.invalidate(&key);
            return disk.demote(key, entry);
        }
        // An older copy on disk is of no use beside it.
        if let Some(disk) = &self.disk {
            disk.remove(&key);
        }
        self.entries.insert(key, entry);
        true
    }

    /// Forgets one entry; answers whether there was one. Memory goes first, so a copy it
    /// evicts to disk meanwhile is caught by the disk's part.
    pub fn remove(&self, key: &Key) -> bool {
        let in_memory = self.entries.remove(key).is_some();
        self.entries.run_pending_tasks();
        let on_disk = self.disk.as_ref().is_some_and(|disk| disk.remove(key));
        self.forgets.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.entries.invalidate(key);
        in_memory || on_disk
    }

    /// Forgets every entry of `app` (a deploy, a rollback, a delete).
    pub fn purge_app(&self, app: &AppKey) {
        self.purge(app, None, None);
    }

    /// Forgets `app`'s entries whose path starts with `prefix` and, when given, that carry `tag`.
    pub fn purge(&self, app: &AppKey, prefix: Option<&str>, tag: Option<&str>) {
        let (app, prefix, tag) = (app.clone(), prefix.map(str::to_owned), tag.map(str::to_owned));
        let picks = move |key: &Key, tags: &[String]| {
            key.app == app
                && prefix.as_deref().is_none_or(|prefix| key.path_and_query.starts_with(prefix))
                && tag.as_deref().is_none_or(|tag| tags.iter().any(|held| held == tag))
        };
        let picks: Arc<Picks> = Arc::new(picks);
        let in_memory = |picks: Arc<Picks>| {
            let _ = self.entries.invalidate_entries_if(move |key, entry| picks(key, &entry.tags));
        };
        // Memory first, its evictions settled (what it pushed out to disk is then on the
        // disk's queue), then the disk, then memory again for what lookups brought up from
        // disk meanwhile.
        in_memory(picks.clone());
        let Some(disk) = &self.disk else { return };
        self.entries.run_pending_tasks();
        let below = picks.clone();
        disk.purge(move |key, tags| below(key, tags));
        self.forgets.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        in_memory(picks);
    }

    /// Bytes held by `namespace` now, in memory and on disk.
    pub fn held_by(&self, namespace: &str) -> (u64, u64) {
        self.entries.run_pending_tasks();
        let on_disk = self.disk.as_ref().map_or(0, |disk| disk.held_by(namespace));
        (self.shares.held_by(namespace), on_disk)
    }

    /// Runs the store's pending maintenance (evictions, listener calls, the disk tier's writes
    /// and removals) now.
    pub fn settle(&self) {
        self.entries.run_pending_tasks();
        if let Some(disk) = &self.disk {
            disk.settle();
        }
    }
}

/// Each entry lives its lifetime and a minute more (then it is only a stale copy worth a miss).
pub(crate) struct StaleAfter;

impl moka::Expiry<Key, Arc<Entry>> for StaleAfter {
    fn expire_after_create(&self, _key: &Key, entry: &Arc<Entry>, _created_at: Instant) -> Option<Duration> {
        Some(entry.lifetime + Duration::from_secs(60))
    }
}

/// The response to send for a stored entry: its headers with `Age` and `x-cache: HIT`, or a
/// 304 when the caller's `If-None-Match` names its `ETag`.
pub fn answer_headers(entry: &Entry, request: &HeaderMap) -> (StatusCode, HeaderMap, bool) {
    let mut headers = HeaderMap::with_capacity(entry.headers.len() + 8);
    // Room for what the gateway adds (Age, x-cache, the rate-limit headers, the request id)
    // at once, instead of growing the map for each.
    headers.extend(entry.headers.iter().map(|(name, value)| (name.clone(), value.clone())));
    headers.insert(header::AGE, HeaderValue::from(entry.age()));
    headers.insert(HeaderName::from_static("x-cache"), HeaderValue::from_static("HIT"));
    let etag = entry.headers.get(header::ETAG).and_then(|value| value.to_str().ok());
    let matches = request.get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()).zip(etag).is_some_and(
        |(asked, etag)| {
            asked.split(',').map(str::trim).any(|candidate| candidate == "*" || weak(candidate) == weak(etag))
        },
    );
    match matches && entry.status == StatusCode::OK {
        true => (StatusCode::NOT_MODIFIED, headers, false),
        false => (entry.status, headers, true),
    }
}

pub(crate) fn weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap())
            })
            .collect()
    }

    #[test]
    fn only_public_responses_with_a_lifetime_are_storable() {
        let ok = StatusCode::OK;
        assert_eq!(
            storable(ok, &headers(&[("cache-control", "public, s-maxage=60")])),
            Storable::For(Duration::from_secs(60))
        );
        assert_eq!(
            storable(ok, &headers(&[("cache-control", "public, max-age=10, s-maxage=30")])),
            Storable::For(Duration::from_secs(30))
        );
        assert_eq!(
            storable(ok, &headers(&[("cache-control", "public, max-age=10"), ("cdn-cache-control", "max-age=300")])),
            Storable::For(Duration::from_secs(300))
        );
        for (pairs, why) in [
            (vec![("cache-control", "max-age=60")], "not public"),
            (vec![("cache-control", "public, private, max-age=60")], "private"),
            (vec![("cache-control", "public, no-store, max-age=60")], "private"),
            (vec![("cache-control", "public")], "no lifetime"),
            (vec![("cache-control", "public, max-age=0")], "no lifetime"),
            (vec![("cache-control", "public, max-age=60"), ("set-cookie", "a=b")], "set-cookie"),
            (vec![("cache-control", "public, max-age=60"), ("vary", "Cookie")], "vary"),
            (vec![("cache-control", "public, max-age=60"), ("vary", "*")], "vary"),
            (vec![("cache-control", "public, max-age=60"), ("cdn-cache-control", "no-store")], "private"),
            (vec![], "no cache-control"),
        ] {
            assert_eq!(storable(ok, &headers(&pairs)), Storable::Not(why), "{pairs:?}");
        }
        let vary = headers(&[("cache-control", "public, max-age=60"), ("vary", "Accept-Encoding")]);
        assert!(matches!(storable(ok, &vary), Storable::For(_)));
        let public = headers(&[("cache-control", "public, max-age=60")]);
        for status in [401, 403, 206, 500, 302] {
            assert_eq!(storable(StatusCode::from_u16(status).unwrap(), &public), Storable::Not("status"), "{status}");
        }
    }

    fn key(namespace: &str, app: &str, path: &str) -> Key {
        Key { app: AppKey::new(namespace, app), revision: 1, path_and_query: path.to_owned() }
    }

    fn limits() -> CacheLimits {
        CacheLimits { max_bytes: 100_000, max_entry_bytes: 10_000, namespace_bytes: 25_000 }
    }

    #[test]
    fn a_namespace_holds_its_share_and_no_more() {
        let cache = ResponseCache::new(limits());
        let body = Bytes::from(vec![b'x'; 4_000]);
        let mut stored = 0;
        for index in 0..20 {
            if cache.insert(
                key("noisy", "app", &format!("/{index}")),
                StatusCode::OK,
                HeaderMap::new(),
                body.clone(),
                Duration::from_secs(60),
            ) {
                stored += 1;
            }
        }
        assert!((5..=6).contains(&stored), "{stored} entries of 4 KB within a 25 KB share");
        assert!(cache.held_by("noisy").0 <= 25_000);
        // Another namespace still has its own room.
        assert!(cache.insert(
            key("quiet", "app", "/"),
            StatusCode::OK,
            HeaderMap::new(),
            body.clone(),
            Duration::from_secs(60)
        ));
        assert!(cache.get(&key("quiet", "app", "/")).is_some());
        // Too large for one entry.
        let big = Bytes::from(vec![b'x'; 20_000]);
        assert!(!cache.insert(
            key("quiet", "app", "/big"),
            StatusCode::OK,
            HeaderMap::new(),
            big,
            Duration::from_secs(60)
        ));
        // A purge gives the share back.
        cache.purge_app(&AppKey::new("noisy", "app"));
        cache.settle();
        assert_eq!(cache.held_by("noisy"), (0, 0));
        assert!(cache.get(&key("noisy", "app", "/0")).is_none());
    }

    #[test]
    fn purges_take_a_prefix_or_a_tag() {
        let cache = ResponseCache::new(limits());
        let tagged = headers(&[("cache-tag", "menu, today")]);
        cache.insert(
            key("team", "lunch", "/menu/1"),
            StatusCode::OK,
            tagged,
            Bytes::from_static(b"a"),
            Duration::from_secs(60),
        );
        cache.insert(
            key("team", "lunch", "/menu/2"),
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from_static(b"b"),
            Duration::from_secs(60),
        );
        cache.insert(
            key("team", "lunch", "/about"),
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from_static(b"c"),
            Duration::from_secs(60),
        );
        cache.insert(
            key("team", "other", "/menu/1"),
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from_static(b"d"),
            Duration::from_secs(60),
        );
        let app = AppKey::new("team", "lunch");
        cache.purge(&app, None, Some("today"));
        cache.settle();
        assert!(cache.get(&key("team", "lunch", "/menu/1")).is_none());
        assert!(cache.get(&key("team", "lunch", "/menu/2")).is_some());
        cache.purge(&app, Some("/menu/"), None);
        cache.settle();
        assert!(cache.get(&key("team", "lunch", "/menu/2")).is_none());
        assert!(cache.get(&key("team", "lunch", "/about")).is_some());
        assert!(cache.get(&key("team", "other", "/menu/1")).is_some(), "another app's entries stay");
    }

    fn on_disk(dir: &std::path::Path) -> ResponseCache {
        let disk = DiskLimits { dir: dir.to_owned(), max_bytes: 1_000_000, namespace_bytes: 200_000 };
        ResponseCache::with_disk(limits(), &disk).unwrap()
    }

    fn body_files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_memory_cannot_hold_is_served_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0000000000000007.body"), b"from an earlier run").unwrap();
        let cache = on_disk(dir.path());
        assert_eq!(body_files(dir.path()), 0, "files of an earlier run are removed at start");
        // 20 responses of 4 KB: the memory share is 25 KB, the rest goes to disk.
        for index in 0..20 {
            let body = Bytes::from(format!("{index:04}").repeat(1_000));
            let tagged = headers(&[("cache-tag", if index % 2 == 0 { "even" } else { "odd" })]);
            assert!(cache.insert(
                key("team", "app", &format!("/{index}")),
                StatusCode::OK,
                tagged,
                body,
                Duration::from_secs(60)
            ));
        }
        cache.settle();
        let (memory, disk) = cache.held_by("team");
        assert!(memory <= 25_000, "{memory}");
        assert!(disk >= 14 * 4_000, "{disk} bytes on disk");
        #[cfg(unix)]
        for file in std::fs::read_dir(dir.path()).unwrap() {
            let mode = std::os::unix::fs::PermissionsExt::mode(&file.unwrap().metadata().unwrap().permissions());
            assert_eq!(mode & 0o777, 0o600, "only the server's user reads a cached body");
        }
        for index in 0..20 {
            let entry = cache.lookup(&key("team", "app", &format!("/{index}"))).await.expect("in memory or on disk");
            assert_eq!(entry.body, Bytes::from(format!("{index:04}").repeat(1_000)), "/{index}");
            assert!(entry.is_fresh());
        }
        // Another app's key finds nothing in either tier.
        assert!(cache.lookup(&key("team", "other", "/0")).await.is_none());
        assert!(cache.lookup(&key("else", "app", "/0")).await.is_none());

        // A purge reaches the disk: by tag, then the whole app; the files go with it.
        cache.purge(&AppKey::new("team", "app"), None, Some("odd"));
        cache.settle();
        for index in (1..20).step_by(2) {
            assert!(cache.lookup(&key("team", "app", &format!("/{index}"))).await.is_none(), "/{index}");
        }
        assert!(cache.lookup(&key("team", "app", "/0")).await.is_some());
        cache.purge_app(&AppKey::new("team", "app"));
        cache.settle();
        assert!(cache.lookup(&key("team", "app", "/0")).await.is_none());
        assert_eq!(cache.held_by("team"), (0, 0));
        assert_eq!(body_files(dir.path()), 0, "purged files are removed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_memory_evicts_for_room_goes_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        // Each namespace may hold 60 KB of memory's 100 KB: two full ones make memory evict.
        let limits = CacheLimits { max_bytes: 100_000, max_entry_bytes: 10_000, namespace_bytes: 60_000 };
        let disk = DiskLimits { dir: dir.path().to_owned(), max_bytes: 1_000_000, namespace_bytes: 600_000 };
        let cache = ResponseCache::with_disk(limits, &disk).unwrap();
        for namespace in ["one", "two"] {
            for index in 0..14 {
                let body = Bytes::from(format!("{namespace}{index:02}").repeat(1_000));
                cache.insert(
                    key(namespace, "app", &format!("/{index}")),
                    StatusCode::OK,
                    HeaderMap::new(),
                    body,
                    Duration::from_secs(60),
                );
                cache.settle();
            }
        }
        for namespace in ["one", "two"] {
            for index in 0..14 {
                let entry = cache.lookup(&key(namespace, "app", &format!("/{index}"))).await;
                assert_eq!(entry.expect("kept").body, Bytes::from(format!("{namespace}{index:02}").repeat(1_000)));
            }
        }
        let on_disk = cache.held_by("one").1 + cache.held_by("two").1;
        assert!(on_disk > 0, "memory evicted to disk");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_answer_is_never_shadowed_by_an_older_one_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let cache = on_disk(dir.path());
        let body = |text: &str| Bytes::from(text.repeat(2_000));
        // Fill the memory share so /page goes to disk, then answer /page anew.
        for index in 0..8 {
            cache.insert(
                key("team", "app", &format!("/{index}")),
                StatusCode::OK,
                HeaderMap::new(),
                body("x"),
                Duration::from_secs(60),
            );
        }
        cache.insert(key("team", "app", "/page"), StatusCode::OK, HeaderMap::new(), body("1"), Duration::from_secs(60));
        cache.settle();
        cache.purge(&AppKey::new("team", "app"), Some("/0"), None);
        cache.settle();
        cache.insert(key("team", "app", "/page"), StatusCode::OK, HeaderMap::new(), body("2"), Duration::from_secs(60));
        cache.settle();
        assert_eq!(cache.lookup(&key("team", "app", "/page")).await.unwrap().body, body("2"));
        // The older copy on disk went when the newer one was stored in memory.
        assert_eq!(
            cache.disk.as_ref().unwrap().load(&key("team", "app", "/page")).await.map(|entry| entry.body.clone()),
            None
        );
        // A delete removes it from both tiers.
        assert!(cache.remove(&key("team", "app", "/page")));
        cache.settle();
        assert!(cache.lookup(&key("team", "app", "/page")).await.is_none());
    }

    #[test]
    fn a_hit_answers_304_to_its_etag() {
        let cache = ResponseCache::new(limits());
        let stored = headers(&[("etag", "\"v1\""), ("cache-control", "public, max-age=60")]);
        cache.insert(
            key("team", "lunch", "/"),
            StatusCode::OK,
            stored,
            Bytes::from_static(b"menu"),
            Duration::from_secs(60),
        );
        let entry = cache.get(&key("team", "lunch", "/")).unwrap();
        let (status, answer, with_body) = answer_headers(&entry, &headers(&[("if-none-match", "W/\"v1\"")]));
        assert_eq!((status, with_body), (StatusCode::NOT_MODIFIED, false));
        assert_eq!(answer["x-cache"], "HIT");
        let (status, _, with_body) = answer_headers(&entry, &HeaderMap::new());
        assert_eq!((status, with_body), (StatusCode::OK, true));
        assert!(entry.is_fresh());
    }
}
