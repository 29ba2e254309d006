//! The Workers Cache API as engines see it (`caches.default`, `caches.open(name)`): calls already
//! scoped to one app, whose keys the platform builds. The engine turns `match`, `put` and
//! `delete` into [`CacheOp`]s and the answers back into `Response`s and booleans.

use bytes::Bytes;
use futures::future::BoxFuture;

/// A response as stored or found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheOp {
    /// `match`: the stored response for `url` in cache `cache`; `conditional` holds the request's
    /// `If-None-Match`, for a 304.
    Match { cache: String, url: String, if_none_match: Option<String> },
    /// `put`: stores `response` for `url`, as the response's `Cache-Control` allows.
    Put { cache: String, url: String, response: CachedResponse },
    /// `delete`: answers whether there was one.
    Delete { cache: String, url: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheAnswer {
    Found(Option<CachedResponse>),
    /// `put` answers nothing to the app; whether it was kept is for the log.
    Stored(bool),
    Deleted(bool),
}

/// An app's caches.
pub trait CacheHost: Send + Sync + 'static {
    fn call(&self, op: CacheOp) -> BoxFuture<'static, Result<CacheAnswer, String>>;
}
