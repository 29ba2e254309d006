//! Vector search as engines see it: the Cloudflare Vectorize API (`insert`, `upsert`, `query`,
//! `getByIds`, `deleteByIds`, `describe`) and the platform's governed text pipeline beside it
//! (`upsertText`, `queryText`), already scoped to one app's index. The engine parses the
//! binding's calls into [`VectorOp`]s (their shapes checked in JavaScript first) and hands the
//! answer, already in Vectorize's result shape, back as JSON.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value};

/// One call on an app's vector index.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum VectorOp {
    /// `insert` keeps a vector whose id exists; `upsert` (`upsert: true`) replaces it.
    Insert {
        vectors: Vec<VectorRecord>,
        #[serde(default)]
        upsert: bool,
    },
    Query {
        vector: Vec<f32>,
        #[serde(default)]
        options: QueryOptions,
    },
    GetByIds {
        ids: Vec<String>,
    },
    DeleteByIds {
        ids: Vec<String>,
    },
    Describe,
    /// Text in, redacted and embedded by the platform.
    UpsertText {
        items: Vec<TextRecord>,
        /// The signed-in user of the request that wrote it (set by the engine, never the app).
        #[serde(skip)]
        author: Option<String>,
    },
    QueryText {
        text: String,
        #[serde(default)]
        options: QueryOptions,
    },
}

/// A vector as Vectorize takes it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct VectorRecord {
    pub id: String,
    pub values: Vec<f32>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A text for the governed pipeline.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextRecord {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub namespace: Option<String>,
    /// Deleted after this many days (at most the manifest's `ttlDays`).
    #[serde(default)]
    pub ttl_days: Option<u32>,
}

/// `query`'s options, as Vectorize names them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOptions {
    /// 5 when absent.
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub filter: Option<Map<String, Value>>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub return_values: bool,
    #[serde(default)]
    pub return_metadata: ReturnMetadata,
    /// `queryText`: the stored (redacted) text in each match.
    #[serde(default)]
    pub return_text: bool,
    /// Scores recomputed in full precision for the candidates of the quantised scan (default on).
    #[serde(default)]
    pub rerank: Option<bool>,
}

/// `returnMetadata`: `"none"`, `"indexed"` or `"all"` (Vectorize v2), or `true`/`false` (v1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReturnMetadata {
    #[default]
    None,
    Indexed,
    All,
}

impl<'de> Deserialize<'de> for ReturnMetadata {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ReturnMetadata, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Bool(false) | Value::Null => Ok(ReturnMetadata::None),
            Value::Bool(true) => Ok(ReturnMetadata::All),
            Value::String(text) if text == "none" => Ok(ReturnMetadata::None),
            Value::String(text) if text == "indexed" => Ok(ReturnMetadata::Indexed),
            Value::String(text) if text == "all" => Ok(ReturnMetadata::All),
            other => Err(serde::de::Error::custom(format!(
                "returnMetadata must be \"none\", \"indexed\" or \"all\", found {other}"
            ))),
        }
    }
}

/// Why a call failed: the app's mistake (a `TypeError` in JavaScript, with Vectorize's limits
/// in the message) or the platform's (an `Error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VectorError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

/// An app's vector index. The answer is the result object Vectorize gives for the call.
pub trait VectorHost: Send + Sync + 'static {
    fn call(&self, op: VectorOp) -> BoxFuture<'static, Result<Value, VectorError>>;
}

/// A vector index and the name it is bound under in `env`.
#[derive(Clone)]
pub struct VectorBinding {
    pub binding: String,
    pub index: std::sync::Arc<dyn VectorHost>,
}
