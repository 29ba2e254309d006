//! The embedded blob store: content-addressed files under `blobs/sha256/<2 hex>/<hex>`.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::future::BoxFuture;

pub struct LocalBlobStore {
    root: PathBuf,
    /// Small blobs (static files) read recently, so hot files are served from memory. Keys are
    /// content digests: a cached blob can never be stale, and identical files of different
    /// tenants share one entry without one tenant being able to name another's file.
    hot: moka::sync::Cache<String, Bytes>,
}

/// Blobs larger than this are always read from disk.
const MAX_CACHED_BLOB_BYTES: usize = 1024 * 1024;

impl LocalBlobStore {
    /// `cache_bytes` bounds the memory of the hot-blob cache.
    pub fn new(data_dir: &Path, cache_bytes: u64) -> LocalBlobStore {
        let hot = moka::sync::Cache::builder()
            .max_capacity(cache_bytes)
            .weigher(|_digest: &String, bytes: &Bytes| u32::try_from(bytes.len()).unwrap_or(u32::MAX))
            .build();
        LocalBlobStore { root: data_dir.join("blobs"), hot }
    }

    fn path_of(&self, digest: &str) -> io::Result<PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("not a sha256 digest: {digest:?}")))?;
        Ok(self.root.join("sha256").join(&hex[..2]).join(hex))
    }

    /// Stores `contents` under its digest; a blob already present is left as it is.
    /// Written through [`durable::write_private`], so a crash or a concurrent deploy of the same
    /// file never leaves a partial blob under a real digest.
    pub async fn put(&self, contents: &[u8]) -> io::Result<String> {
        let digest = bundle::file_digest(contents);
        let path = self.path_of(&digest)?;
        if tokio::fs::try_exists(&path).await? {
            return Ok(digest);
        }
        let dir = path.parent().expect("blob paths have a parent");
        tokio::fs::create_dir_all(dir).await?;
        let contents = contents.to_vec();
        tokio::task::spawn_blocking(move || durable::write_private(&path, &contents))
            .await
            .map_err(io::Error::other)??;
        Ok(digest)
    }

    /// Deletes a blob (an archive's part once its retention has ended); a missing one is fine.
    pub async fn remove(&self, digest: &str) -> io::Result<()> {
        let path = self.path_of(digest)?;
        self.hot.invalidate(digest);
        match tokio::fs::remove_file(path).await {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    pub async fn get(&self, digest: &str) -> io::Result<Bytes> {
        let path = self.path_of(digest)?;
        tokio::fs::read(path).await.map(Bytes::from)
    }
}

impl gateway::BlobReader for LocalBlobStore {
    fn read(&self, digest: &str) -> BoxFuture<'static, io::Result<Bytes>> {
        if let Some(bytes) = self.hot.get(digest) {
            return Box::pin(std::future::ready(Ok(bytes)));
        }
        let path = self.path_of(digest);
        let hot = self.hot.clone();
        let digest = digest.to_owned();
        Box::pin(async move {
            let bytes = Bytes::from(tokio::fs::read(path?).await?);
            if bytes.len() <= MAX_CACHED_BLOB_BYTES {
                hot.insert(digest, bytes.clone());
            }
            Ok(bytes)
        })
    }
}

/// The loader reads function modules by digest (not through the hot cache: they are compiled once).
impl runtime::loader::Files for LocalBlobStore {
    fn read<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Bytes, String>> {
        Box::pin(async move { self.get(digest).await.map_err(|error| error.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_and_refuse_bad_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path(), 1 << 20);
        let digest = store.put(b"hello").await.unwrap();
        assert_eq!(digest, bundle::file_digest(b"hello"));
        assert_eq!(store.put(b"hello").await.unwrap(), digest);
        assert_eq!(&store.get(&digest).await.unwrap()[..], b"hello");
        assert!(store.get("sha256:../../etc/passwd").await.is_err());
        assert!(store.get("md5:abc").await.is_err());
        // Reads through the gateway's interface are cached and stay correct.
        use gateway::BlobReader;
        assert_eq!(&store.read(&digest).await.unwrap()[..], b"hello");
        assert_eq!(&store.read(&digest).await.unwrap()[..], b"hello");
        assert!(store.read("sha256:../../etc/passwd").await.is_err());
    }
}
