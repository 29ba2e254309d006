//! The embedded blob store: content-addressed files under `blobs/sha256/<2 hex>/<hex>`.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::future::BoxFuture;

pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub fn new(data_dir: &Path) -> LocalBlobStore {
        LocalBlobStore {
            root: data_dir.join("blobs"),
        }
    }

    fn path_of(&self, digest: &str) -> io::Result<PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|hex| {
                hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("not a sha256 digest: {digest:?}"),
                )
            })?;
        Ok(self.root.join("sha256").join(&hex[..2]).join(hex))
    }

    /// Stores `contents` under its digest; a blob already present is left as it is.
    /// The file is written to a temporary name, synced, then renamed, so a crash never
    /// leaves a partial blob under a real digest.
    pub async fn put(&self, contents: &[u8]) -> io::Result<String> {
        let digest = bundle::file_digest(contents);
        let path = self.path_of(&digest)?;
        if tokio::fs::try_exists(&path).await? {
            return Ok(digest);
        }
        let dir = path.parent().expect("blob paths have a parent");
        tokio::fs::create_dir_all(dir).await?;
        let temporary = dir.join(format!(".tmp-{}", uuid_like()));
        let mut file = tokio::fs::File::create(&temporary).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, contents).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&temporary, &path).await?;
        tokio::fs::File::open(dir).await?.sync_all().await?;
        Ok(digest)
    }

    pub async fn get(&self, digest: &str) -> io::Result<Bytes> {
        let path = self.path_of(digest)?;
        tokio::fs::read(path).await.map(Bytes::from)
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl gateway::BlobReader for LocalBlobStore {
    fn read(&self, digest: &str) -> BoxFuture<'static, io::Result<Bytes>> {
        let path = self.path_of(digest);
        Box::pin(async move { tokio::fs::read(path?).await.map(Bytes::from) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_and_refuse_bad_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let digest = store.put(b"hello").await.unwrap();
        assert_eq!(digest, bundle::file_digest(b"hello"));
        assert_eq!(store.put(b"hello").await.unwrap(), digest);
        assert_eq!(&store.get(&digest).await.unwrap()[..], b"hello");
        assert!(store.get("sha256:../../etc/passwd").await.is_err());
        assert!(store.get("md5:abc").await.is_err());
    }
}
