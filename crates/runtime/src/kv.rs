//! The key-value capability as engines see it: the operations of the Workers KV API, plus the
//! platform's `increment` and compare-and-set, already scoped to one app. The engine turns the
//! binding's JavaScript calls into [`KvOp`]s and the answers back into the shapes Workers gives.

use bytes::Bytes;
use futures::future::BoxFuture;

/// One operation on an app's key-value namespace.
#[derive(Clone, Debug, PartialEq)]
pub enum KvOp {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: Bytes,
        options: PutOptions,
    },
    Delete {
        key: String,
    },
    /// Keys in order, starting after the cursor's key.
    List {
        prefix: String,
        limit: u32,
        cursor: Option<String>,
    },
    /// Adds `by` to the key's value (an integer in decimal text, 0 when absent) and answers it.
    Increment {
        key: String,
        by: i64,
    },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PutOptions {
    /// Seconds since the Unix epoch when the key expires (`expiration`, or now plus `expirationTtl`).
    pub expiration: Option<i64>,
    /// `expirationTtl`: seconds from now.
    pub expiration_ttl: Option<i64>,
    /// JSON text.
    pub metadata: Option<String>,
    pub only_if: Option<OnlyIf>,
}

/// A compare-and-set condition of `put`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnlyIf {
    /// Only when the key does not exist (a lock).
    Absent,
    /// Only when the key's current version is this etag.
    Etag(String),
}

/// A stored value with what `getWithMetadata` returns and its version.
#[derive(Clone, Debug, PartialEq)]
pub struct KvEntry {
    pub value: Bytes,
    pub metadata: Option<String>,
    pub expiration: Option<i64>,
    pub etag: String,
}

/// One key of a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct KvKey {
    pub name: String,
    pub expiration: Option<i64>,
    pub metadata: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum KvAnswer {
    Entry(Option<KvEntry>),
    /// The new etag, or `None` when an `onlyIf` condition did not hold (nothing was written).
    Stored(Option<String>),
    Deleted,
    Listed {
        keys: Vec<KvKey>,
        cursor: Option<String>,
    },
    Count(i64),
}

/// Why an operation failed: the app's mistake (a `TypeError` in JavaScript, as Workers throws
/// for bad keys and options) or the platform's (an `Error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

/// An app's key-value namespace.
pub trait KvHost: Send + Sync + 'static {
    fn call(&self, op: KvOp) -> BoxFuture<'static, Result<KvAnswer, KvError>>;
}
