//! The Workers Cache API's store for one app (`caches.default`, `caches.open(name)`), on the
//! same byte-bounded store as the gateway's responses, so the namespace's share and purges on
//! deploy cover both. Keys are the app (from the platform), the cache's name and the normalised
//! URL: app code names a URL, never an entry of another app.
//!
//! `put` keeps Workers' rules: `no-store`, `no-cache` and `private` are not kept, nor is a
//! response with `Set-Cookie` unless `Cache-Control: private=Set-Cookie` (then the cookie is not
//! kept); the lifetime is `s-maxage`, else `max-age`, else `Expires`, else the status's default
//! (two hours for 200, 203, 300, 301 and 410; three minutes for 404). `match` answers a 304 to
//! an `If-None-Match` naming the stored `ETag`, and adds `CF-Cache-Status: HIT`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use deployment::AppKey;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use runtime::cache::{CacheAnswer, CacheHost, CacheOp, CachedResponse};

use crate::{Key, ResponseCache, directives, seconds, weak};

/// The revision under which Cache API entries are kept (deploys still purge them: purges go by
/// app).
const CACHE_API: i64 = -1;

/// The longest cache name and URL a key takes.
const MAX_NAME_BYTES: usize = 1024;
const MAX_URL_BYTES: usize = 16 * 1024;

/// One app's caches.
#[derive(Clone)]
pub struct AppCaches {
    store: Arc<ResponseCache>,
    app: AppKey,
}

impl AppCaches {
    pub fn new(store: Arc<ResponseCache>, app: AppKey) -> AppCaches {
        AppCaches { store, app }
    }

    fn key(&self, cache: &str, url: &str) -> Result<Key, String> {
        if cache.len() > MAX_NAME_BYTES {
            return Err(format!("caches.open(): a cache name is at most {MAX_NAME_BYTES} bytes"));
        }
        if url.len() > MAX_URL_BYTES {
            return Err(format!("Cache: a URL is at most {MAX_URL_BYTES} bytes"));
        }
        let mut parsed = url::Url::parse(url).map_err(|error| format!("Cache: {url:?} is not a URL: {error}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("Cache: only http and https URLs can be cached".to_owned());
        }
        parsed.set_fragment(None);
        Ok(Key { app: self.app.clone(), revision: CACHE_API, path_and_query: format!("{cache}\0{parsed}") })
    }

    async fn run(self, op: CacheOp) -> Result<CacheAnswer, String> {
        match op {
            CacheOp::Match { cache, url, if_none_match } => {
                let key = self.key(&cache, &url)?;
                let Some(entry) = self.store.lookup(&key).await.filter(|entry| entry.is_fresh()) else {
                    return Ok(CacheAnswer::Found(None));
                };
                let mut headers: Vec<(String, String)> = entry
                    .headers
                    .iter()
                    .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
                    .collect();
                headers.push(("cf-cache-status".to_owned(), "HIT".to_owned()));
                let etag = entry.headers.get(header::ETAG).and_then(|value| value.to_str().ok());
                let not_modified = if_none_match.as_deref().zip(etag).is_some_and(|(asked, etag)| {
                    asked.split(',').map(str::trim).any(|candidate| candidate == "*" || weak(candidate) == weak(etag))
                });
                let (status, body) = match not_modified && entry.status == StatusCode::OK {
                    true => (304, Bytes::new()),
                    false => (entry.status.as_u16(), entry.body.clone()),
                };
                Ok(CacheAnswer::Found(Some(CachedResponse { status, headers, body })))
            }
            CacheOp::Put { cache, url, response } => {
                let key = self.key(&cache, &url)?;
                let mut headers = HeaderMap::new();
                for (name, value) in &response.headers {
                    if let (Ok(name), Ok(value)) =
                        (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
                    {
                        headers.append(name, value);
                    }
                }
                let status =
                    StatusCode::from_u16(response.status).map_err(|_| "Cache: an invalid status".to_owned())?;
                let Some(lifetime) = put_lifetime(status, &mut headers) else {
                    // Workers keeps what it may not store silently out, too.
                    self.store.remove(&key);
                    return Ok(CacheAnswer::Stored(false));
                };
                Ok(CacheAnswer::Stored(self.store.insert(key, status, headers, response.body, lifetime)))
            }
            CacheOp::Delete { cache, url } => Ok(CacheAnswer::Deleted(self.store.remove(&self.key(&cache, &url)?))),
        }
    }
}

impl CacheHost for AppCaches {
    fn call(&self, op: CacheOp) -> BoxFuture<'static, Result<CacheAnswer, String>> {
        Box::pin(self.clone().run(op))
    }
}

/// How long `put` keeps a response, by Workers' rules; `None` when it may not. A cookie that
/// `private=Set-Cookie` allows is taken out of what is kept.
fn put_lifetime(status: StatusCode, headers: &mut HeaderMap) -> Option<Duration> {
    let control = directives(headers, "cache-control").unwrap_or_default();
    let mut cookie_private = false;
    for (directive, value) in &control {
        match (directive.as_str(), value.as_deref()) {
            ("no-store" | "no-cache", _) => return None,
            ("private", Some(fields))
                if fields.split(',').all(|field| field.trim().eq_ignore_ascii_case("set-cookie")) =>
            {
                cookie_private = true;
            }
            ("private", _) => return None,
            _ => {}
        }
    }
    if headers.contains_key(header::SET_COOKIE) {
        if !cookie_private {
            return None;
        }
        headers.remove(header::SET_COOKIE);
    }
    let expires = || {
        let at = httpdate::parse_http_date(headers.get(header::EXPIRES)?.to_str().ok()?).ok()?;
        Some(at.duration_since(SystemTime::now()).map_or(0, |left| left.as_secs()))
    };
    let lifetime = seconds(&control, "s-maxage").or_else(|| seconds(&control, "max-age")).or_else(expires);
    let lifetime = match lifetime {
        Some(seconds) => seconds,
        None => match status.as_u16() {
            200 | 203 | 300 | 301 | 410 => 2 * 3600,
            404 => 180,
            _ => 0,
        },
    };
    (lifetime > 0).then(|| Duration::from_secs(lifetime.min(365 * 24 * 3600)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CacheLimits;

    fn caches(app: &str) -> (Arc<ResponseCache>, AppCaches) {
        let store = Arc::new(ResponseCache::new(CacheLimits {
            max_bytes: 1 << 20,
            max_entry_bytes: 1 << 16,
            namespace_bytes: 1 << 19,
        }));
        let caches = AppCaches::new(store.clone(), AppKey::new("team", app));
        (store, caches)
    }

    /// Runs one op to its end.
    fn run(caches: &AppCaches, op: CacheOp) -> Result<CacheAnswer, String> {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(caches.clone().run(op))
    }

    fn response(headers: &[(&str, &str)], body: &'static str) -> CachedResponse {
        CachedResponse {
            status: 200,
            headers: headers.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect(),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    fn put(caches: &AppCaches, cache: &str, url: &str, response: CachedResponse) -> bool {
        match run(caches, CacheOp::Put { cache: cache.into(), url: url.into(), response }).unwrap() {
            CacheAnswer::Stored(stored) => stored,
            other => panic!("{other:?}"),
        }
    }

    fn found(caches: &AppCaches, cache: &str, url: &str) -> Option<CachedResponse> {
        match run(caches, CacheOp::Match { cache: cache.into(), url: url.into(), if_none_match: None }).unwrap() {
            CacheAnswer::Found(found) => found,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn entries_are_the_apps_and_the_caches_own() {
        let (store, menu) = caches("menu");
        let board = AppCaches::new(store, AppKey::new("team", "board"));
        assert!(put(&menu, "", "https://example.com/a#x", response(&[("cache-control", "max-age=60")], "menu")));
        assert_eq!(found(&menu, "", "https://example.com/a").unwrap().body, "menu");
        assert!(found(&board, "", "https://example.com/a").is_none(), "another app's");
        assert!(found(&menu, "named", "https://example.com/a").is_none(), "another cache's");
        assert!(matches!(
            run(&menu, CacheOp::Delete { cache: "".into(), url: "https://example.com/a".into() }).unwrap(),
            CacheAnswer::Deleted(true)
        ));
        assert!(found(&menu, "", "https://example.com/a").is_none());
        assert!(run(&menu, CacheOp::Delete { cache: "".into(), url: "file:///etc/passwd".into() }).is_err());
    }

    #[test]
    fn put_keeps_workers_rules() {
        let (_, menu) = caches("menu");
        let url = "https://example.com/";
        assert!(!put(&menu, "", url, response(&[("cache-control", "no-store")], "x")));
        assert!(!put(&menu, "", url, response(&[("cache-control", "private, max-age=60")], "x")));
        assert!(!put(&menu, "", url, response(&[("cache-control", "max-age=60"), ("set-cookie", "a=b")], "x")));
        assert!(put(
            &menu,
            "",
            url,
            response(&[("cache-control", "max-age=60, private=\"Set-Cookie\""), ("set-cookie", "a=b")], "x")
        ));
        let kept = found(&menu, "", url).unwrap();
        assert!(kept.headers.iter().all(|(name, _)| name != "set-cookie"), "{:?}", kept.headers);
        assert!(kept.headers.contains(&("cf-cache-status".to_owned(), "HIT".to_owned())));
        // No lifetime given: the status's default.
        assert!(put(&menu, "", "https://example.com/plain", response(&[], "plain")));
        assert!(!put(&menu, "", "https://example.com/gone", response(&[("cache-control", "max-age=0")], "x")));
    }

    #[test]
    fn match_answers_304_to_its_etag() {
        let (_, menu) = caches("menu");
        put(&menu, "", "https://example.com/", response(&[("etag", "\"v1\""), ("cache-control", "max-age=60")], "x"));
        let op = CacheOp::Match {
            cache: "".into(),
            url: "https://example.com/".into(),
            if_none_match: Some("W/\"v1\"".into()),
        };
        match run(&menu, op).unwrap() {
            CacheAnswer::Found(Some(found)) => assert_eq!((found.status, found.body.len()), (304, 0)),
            other => panic!("{other:?}"),
        }
    }
}
