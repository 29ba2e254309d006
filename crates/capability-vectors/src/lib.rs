//! Vector indexes for apps, with the Cloudflare Vectorize API (`env.VECTORS.insert/upsert/query/
//! getByIds/deleteByIds/describe`, its metadata filters and limits) and a governed text pipeline
//! beside it: `upsertText` normalises each text, removes personal data (`piiRedaction`),
//! fingerprints it, embeds it once per namespace with the platform's model and stores the
//! redacted text with the vector and its provenance; `queryText` embeds the question and answers
//! matches with their text and provenance.
//!
//! Each app binding has its own index, named by namespace, app and binding: the tenant comes
//! from the deployment, never from the call, so no filter or id reaches another app's vectors.
//! An index lives in memory while it is used ([`index::Index`]) and on disk as a log of frames
//! sealed under the namespace's data key ([`segment`]); an idle index leaves memory and its next
//! call loads it again. Vectors may expire (`ttlDays`), and the sweep deletes them.

pub mod config;
pub mod filter;
pub mod graph;
pub mod index;
pub mod segment;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use capability_ai::Embedder;
use capability_kv::Sealer;
use deployment::{AppKey, VectorIndex};
use futures::future::BoxFuture;
use runtime::vectors::{
    QueryOptions, ReturnMetadata, TextRecord, VectorBinding, VectorError, VectorHost, VectorOp, VectorRecord,
};
use runtime::{DataMeter, DataOps};
use serde_json::{Map, Value, json};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use crate::filter::Filter;
use crate::index::{Entry, Index, Provenance};
use crate::segment::Record;

/// Vectorize's limits, with its messages' numbers.
pub const MAX_BATCH: usize = 1000;
pub const MAX_ID_BYTES: usize = 64;
pub const MAX_NAMESPACE_BYTES: usize = 64;
pub const MAX_METADATA_BYTES: usize = 10 * 1024;
pub const MAX_TOP_K: usize = 100;
/// `topK` when values or all metadata are returned.
pub const MAX_TOP_K_WITH_DETAILS: usize = 50;
pub const DEFAULT_TOP_K: usize = 5;
/// Texts per `upsertText`: what one embedding call takes.
pub const MAX_TEXTS: usize = capability_ai::MAX_TEXTS;

const DAY_SECS: i64 = 86_400;

/// Which index: an app's binding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndexKey {
    pub app: AppKey,
    pub binding: String,
}

/// What a sealed frame is bound to: its namespace, app and binding, so a frame copied into
/// another app's index does not open.
pub fn frame_aad(key: &IndexKey) -> Vec<u8> {
    format!("terrarium-vectors\0{}\0{}\0{}", key.app.namespace, key.app.name, key.binding).into_bytes()
}

/// The vector service of this server.
pub struct Vectors {
    dir: PathBuf,
    section: config::VectorsSection,
    sealer: Arc<dyn Sealer>,
    /// The platform's embedding model (`embed-default`), for the text pipeline.
    embedder: Option<Arc<dyn Embedder>>,
    /// Built on the first text that needs redacting (compiling its patterns takes milliseconds).
    detector: std::sync::OnceLock<pii::Detector>,
    clock: background::Clock,
    meter: Arc<dyn DataMeter>,
    open: Mutex<HashMap<IndexKey, Arc<tokio::sync::OnceCell<Arc<Collection>>>>>,
    /// Texts already embedded in each namespace, by fingerprint: identical content is embedded
    /// once per namespace. Never across namespaces: whether a text is already known would tell
    /// one tenant what another stored (by the time it takes).
    embedded: Mutex<HashMap<Fingerprinted, Arc<[f32]>>>,
    /// Builds HNSW graphs for large indexes; without it, they scan.
    graphs: Option<Arc<dyn graph::GraphBuilder>>,
    /// Graph builds under way, for [`Vectors::settle`].
    builds: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A text's fingerprint in a namespace.
type Fingerprinted = (String, [u8; 32]);

/// Texts remembered per server for deduplication; beyond it the oldest half is forgotten.
const MAX_REMEMBERED_EMBEDDINGS: usize = 50_000;

/// One loaded index.
struct Collection {
    key: IndexKey,
    path: PathBuf,
    index: RwLock<Index>,
    log: tokio::sync::Mutex<Log>,
    last_used: AtomicI64,
    /// The last mutation applied (a counter since the index was loaded, in its id).
    mutations: AtomicU64,
}

struct Log {
    /// Bytes of the file that are whole frames.
    len: u64,
    /// Entries put or deleted in the file since it was last compacted.
    records: u64,
    /// The app was deleted: nothing more is written.
    deleted: bool,
}

impl Vectors {
    pub fn new(
        data_dir: &Path,
        section: config::VectorsSection,
        sealer: Arc<dyn Sealer>,
        embedder: Option<Arc<dyn Embedder>>,
        clock: background::Clock,
        meter: Arc<dyn DataMeter>,
    ) -> Vectors {
        Vectors {
            dir: section.dir(data_dir),
            section,
            sealer,
            embedder,
            detector: std::sync::OnceLock::new(),
            clock,
            meter,
            open: Mutex::default(),
            embedded: Mutex::default(),
            graphs: None,
            builds: Mutex::default(),
        }
    }

    /// Large indexes get HNSW graphs from `builder`, built in the background.
    pub fn with_graphs(mut self, builder: Arc<dyn graph::GraphBuilder>) -> Vectors {
        self.graphs = Some(builder);
        self
    }

    /// Starts building a graph for the index when it is large enough and has none: on a
    /// blocking thread, from a snapshot of its unit vectors; queries scan until it is attached.
    fn ensure_graph(&self, collection: &Arc<Collection>) {
        let Some(builder) = self.graphs.clone() else { return };
        if !collection.index.read().unwrap_or_else(std::sync::PoisonError::into_inner).needs_graph() {
            return;
        }
        let (dimensions, snapshot) = {
            let mut index = collection.index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !index.needs_graph() {
                return;
            }
            (index.dimensions, index.start_graph())
        };
        let collection = collection.clone();
        let build = tokio::task::spawn_blocking(move || {
            let built = builder.new_graph(dimensions, snapshot.len() * 2).and_then(|graph| {
                for (slot, unit) in &snapshot {
                    graph.add(*slot, unit)?;
                }
                Ok(Arc::<dyn graph::Graph>::from(graph))
            });
            let mut index = collection.index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let attached = built.and_then(|graph| index.finish_graph(graph));
            if let Err(error) = attached {
                index.abandon_graph();
                let key = &collection.key;
                tracing::warn!(namespace = %key.app.namespace, app = %key.app.name, binding = %key.binding, %error, "a vector graph could not be built; the index scans");
            }
        });
        let mut builds = self.builds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        builds.retain(|build| !build.is_finished());
        builds.push(build);
    }

    /// Waits for the graph builds under way (tests and benchmarks drive them this way).
    pub async fn settle(&self) {
        let builds: Vec<_> =
            std::mem::take(&mut *self.builds.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for build in builds {
            let _ = build.await;
        }
    }

    /// The index one app's functions get.
    pub fn for_app(
        self: &Arc<Self>,
        app: &AppKey,
        index: &VectorIndex,
        revision: i64,
        ai_models: &[String],
    ) -> VectorBinding {
        let host = AppVectors {
            vectors: self.clone(),
            key: IndexKey { app: app.clone(), binding: index.binding.clone() },
            dimensions: index.dimensions as usize,
            pii_redaction: index.pii_redaction,
            ttl_days: index.ttl_days,
            revision,
            may_embed: ai_models.iter().any(|alias| alias == capability_ai::EMBED_DEFAULT),
        };
        VectorBinding { binding: index.binding.clone(), index: Arc::new(host) }
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// The file of an index.
    pub fn path(&self, key: &IndexKey) -> Result<PathBuf, String> {
        for part in [&key.app.namespace, &key.app.name, &key.binding] {
            if part.is_empty() || part.contains(['/', '\\', '\0']) || part.starts_with('.') {
                return Err(format!("{part:?} cannot name an index file"));
            }
        }
        Ok(self.dir.join(&key.app.namespace).join(&key.app.name).join(format!("{}.vec", key.binding)))
    }

    /// The index an app's call uses, loaded from disk on first use.
    async fn collection(&self, key: &IndexKey, dimensions: usize) -> Result<Arc<Collection>, VectorError> {
        let collection = self.opened(key, dimensions).await?;
        collection.last_used.store(self.now(), Ordering::Relaxed);
        self.ensure_graph(&collection);
        let held = collection.index.read().unwrap_or_else(std::sync::PoisonError::into_inner).dimensions;
        let held = match held == dimensions {
            true => held,
            false => {
                let mut index = collection.index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                // An empty index takes the dimensions the manifest says now.
                if index.is_empty() {
                    *index = Index::new(dimensions);
                }
                index.dimensions
            }
        };
        if held != dimensions {
            return Err(VectorError::Invalid(format!(
                "the index {} of {} holds vectors of {held} dimensions, and spec.data.vectors.dimensions now says {dimensions}; delete its vectors (or keep the old dimensions) to change it",
                key.binding, key.app
            )));
        }
        Ok(collection)
    }

    /// The index, loaded from disk when it is not in memory (an empty one takes `dimensions`).
    async fn opened(&self, key: &IndexKey, dimensions: usize) -> Result<Arc<Collection>, VectorError> {
        let cell = {
            let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            open.entry(key.clone()).or_default().clone()
        };
        Ok(cell.get_or_try_init(|| self.load(key, dimensions)).await?.clone())
    }

    async fn load(&self, key: &IndexKey, dimensions: usize) -> Result<Arc<Collection>, VectorError> {
        let path = self.path(key).map_err(VectorError::Failed)?;
        let failed = |what: String| {
            tracing::error!(namespace = %key.app.namespace, app = %key.app.name, binding = %key.binding, error = %what, "a vector index could not be loaded");
            VectorError::Failed(format!(
                "the vector index {} could not be loaded; the server log says why",
                key.binding
            ))
        };
        let file = match tokio::fs::read(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(failed(format!("{}: {error}", path.display()))),
        };
        let frames = segment::frames(&file).map_err(|error| failed(format!("{}: {error}", path.display())))?;
        let mut index: Option<Index> = None;
        let mut records = 0u64;
        let now = self.now();
        for (number, frame) in frames.frames.iter().enumerate() {
            let opened = self
                .sealer
                .open(&key.app.namespace, frame.key_version, frame_aad(key), frame.sealed.to_vec())
                .await
                .and_then(|plain| segment::decode(&plain));
            let record = match opened {
                Ok(record) => record,
                Err(error) => {
                    return Err(failed(format!(
                        "{}: frame {number} does not open ({error}); the file is damaged or was sealed for another index",
                        path.display()
                    )));
                }
            };
            match record {
                Record::Put(entries) => {
                    if let Some(first) = entries.first() {
                        index.get_or_insert_with(|| Index::new(first.values.len())).reserve(entries.len());
                    }
                    for entry in entries {
                        records += 1;
                        let index = index.get_or_insert_with(|| Index::new(entry.values.len()));
                        if entry.values.len() == index.dimensions && entry.live(now) {
                            index.put(entry);
                        } else {
                            index.remove(&entry.id);
                        }
                    }
                }
                Record::Delete(ids) => {
                    for id in ids {
                        records += 1;
                        if let Some(index) = index.as_mut() {
                            index.remove(&id);
                        }
                    }
                }
            }
        }
        // An index whose vectors are all gone takes the manifest's dimensions.
        let index = match index {
            Some(index) if !index.is_empty() => index,
            _ => Index::new(dimensions),
        };
        // A torn last frame is cut off before anything is appended after it.
        if frames.whole_len < file.len() {
            tracing::warn!(namespace = %key.app.namespace, app = %key.app.name, binding = %key.binding, "a vector index's last write was cut short (a crash); it is dropped");
            let file =
                std::fs::OpenOptions::new().write(true).open(&path).map_err(|error| failed(error.to_string()))?;
            file.set_len(frames.whole_len as u64).map_err(|error| failed(error.to_string()))?;
        }
        Ok(Arc::new(Collection {
            key: key.clone(),
            path,
            index: RwLock::new(index),
            log: tokio::sync::Mutex::new(Log { len: frames.whole_len as u64, records, deleted: false }),
            last_used: AtomicI64::new(now),
            mutations: AtomicU64::new(0),
        }))
    }

    /// Appends `record` to the index's file, then applies it in memory: what a reader sees is
    /// always on disk first.
    async fn write(&self, collection: &Arc<Collection>, record: Record) -> Result<u64, VectorError> {
        let key = &collection.key;
        let failed = |what: String| {
            tracing::error!(namespace = %key.app.namespace, app = %key.app.name, binding = %key.binding, error = %what, "a vector index could not be written");
            VectorError::Failed(format!(
                "the vector index {} could not be written; the server log says why",
                key.binding
            ))
        };
        let mut log = collection.log.lock().await;
        if log.deleted {
            return Err(VectorError::Failed(format!("the app {} was deleted with its vectors", key.app)));
        }
        let (version, sealed) =
            self.sealer.seal(&key.app.namespace, frame_aad(key), segment::encode(&record)).await.map_err(failed)?;
        let mut bytes = Vec::new();
        if log.len == 0 {
            bytes.extend_from_slice(segment::MAGIC);
        }
        bytes.extend(segment::frame(version, &sealed));
        append(&collection.path, log.len, &bytes)
            .await
            .map_err(|error| failed(format!("{}: {error}", collection.path.display())))?;
        log.len += bytes.len() as u64;
        let live = {
            let mut index = collection.index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            match record {
                Record::Put(entries) => {
                    log.records += entries.len() as u64;
                    for entry in entries {
                        index.put(entry);
                    }
                }
                Record::Delete(ids) => {
                    log.records += ids.len() as u64;
                    for id in ids {
                        index.remove(&id);
                    }
                }
            }
            index.len() as u64
        };
        // Compacted when most of what the file holds is replaced or deleted.
        if log.records > 2 * live + 1024 {
            self.compact(collection, &mut log).await.map_err(failed)?;
        }
        self.ensure_graph(collection);
        Ok(collection.mutations.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Rewrites the file as the live entries only: written beside it, synced, renamed over it.
    async fn compact(&self, collection: &Collection, log: &mut Log) -> Result<(), String> {
        let key = &collection.key;
        let entries: Vec<Entry> =
            collection.index.read().unwrap_or_else(std::sync::PoisonError::into_inner).entries().cloned().collect();
        let mut file = segment::MAGIC.to_vec();
        for chunk in entries.chunks(512) {
            let (version, sealed) = self
                .sealer
                .seal(&key.app.namespace, frame_aad(key), segment::encode(&Record::Put(chunk.to_vec())))
                .await?;
            file.extend(segment::frame(version, &sealed));
        }
        let path = collection.path.clone();
        let length = file.len() as u64;
        tokio::task::spawn_blocking(move || replace_file(&path, &file))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| format!("{}: {error}", collection.path.display()))?;
        log.len = length;
        log.records = entries.len() as u64;
        Ok(())
    }

    /// Deletes expired vectors from every index on disk; answers how many.
    pub async fn sweep(&self) -> Result<u64, String> {
        let now = self.now();
        let mut deleted = 0;
        for key in self.on_disk().await? {
            let collection = self.opened(&key, 0).await.map_err(|error| error.to_string())?;
            let expired = collection.index.read().unwrap_or_else(std::sync::PoisonError::into_inner).expired(now);
            if !expired.is_empty() {
                deleted += expired.len() as u64;
                self.write(&collection, Record::Delete(expired)).await.map_err(|error| error.to_string())?;
            }
        }
        Ok(deleted)
    }

    /// Indexes nobody used for `idle_secs` leave memory; answers how many. Their next call
    /// loads them from disk.
    pub fn unload_idle(&self) -> usize {
        let idle_before = self.now() - i64::try_from(self.section.idle_secs).unwrap_or(i64::MAX);
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = open.len();
        open.retain(|_, cell| match cell.get() {
            // In use (a call holds it) or used lately: stays.
            Some(collection) => {
                Arc::strong_count(collection) > 1 || collection.last_used.load(Ordering::Relaxed) > idle_before
            }
            None => Arc::strong_count(cell) > 1,
        });
        before - open.len()
    }

    /// Indexes in memory now.
    pub fn loaded(&self) -> usize {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Every index on disk.
    async fn on_disk(&self) -> Result<Vec<IndexKey>, String> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            let read = |path: &Path| -> Result<Vec<std::fs::DirEntry>, String> {
                match std::fs::read_dir(path) {
                    Ok(entries) => {
                        entries.collect::<Result<_, _>>().map_err(|error| format!("{}: {error}", path.display()))
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                    Err(error) => Err(format!("{}: {error}", path.display())),
                }
            };
            for namespace in read(&dir)? {
                for app in read(&namespace.path())? {
                    for file in read(&app.path())? {
                        let name = file.file_name().to_string_lossy().into_owned();
                        if let Some(binding) = name.strip_suffix(".vec") {
                            keys.push(IndexKey {
                                app: AppKey::new(
                                    namespace.file_name().to_string_lossy().as_ref(),
                                    app.file_name().to_string_lossy().as_ref(),
                                ),
                                binding: binding.to_owned(),
                            });
                        }
                    }
                }
            }
            Ok(keys)
        })
        .await
        .map_err(|error| error.to_string())?
    }

    /// Bytes of index files each app holds on disk, for usage and cost.
    pub async fn stored_bytes(&self) -> Result<Vec<(AppKey, u64)>, String> {
        let mut stored: HashMap<AppKey, u64> = HashMap::new();
        for key in self.on_disk().await? {
            let path = self.path(&key)?;
            let bytes = match tokio::fs::metadata(&path).await {
                Ok(metadata) => metadata.len(),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
                Err(error) => return Err(format!("{}: {error}", path.display())),
            };
            *stored.entry(key.app).or_default() += bytes;
        }
        Ok(stored.into_iter().collect())
    }

    /// Deletes every index of the app, in memory and on disk; answers how many files went.
    pub async fn delete_app(&self, app: &AppKey) -> Result<u64, String> {
        let cells: Vec<_> = {
            let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let keys: Vec<IndexKey> = open.keys().filter(|key| &key.app == app).cloned().collect();
            keys.into_iter().filter_map(|key| open.remove(&key)).collect()
        };
        // Writers in flight finish first; none writes after.
        for cell in cells {
            if let Some(collection) = cell.get() {
                collection.log.lock().await.deleted = true;
            }
        }
        let dir = self.dir.join(&app.namespace).join(&app.name);
        if app.namespace.contains(['/', '.']) || app.name.contains(['/', '.']) {
            return Err(format!("{app} cannot name an index directory"));
        }
        tokio::task::spawn_blocking(move || {
            let files = match std::fs::read_dir(&dir) {
                Ok(entries) => entries.count() as u64,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(error) => return Err(format!("{}: {error}", dir.display())),
            };
            std::fs::remove_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
            Ok(files)
        })
        .await
        .map_err(|error| error.to_string())?
    }

    /// The app's index files as stored (sealed), by binding, for an archive.
    pub async fn export(&self, app: &AppKey) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut files = Vec::new();
        for key in self.on_disk().await?.into_iter().filter(|key| &key.app == app) {
            // Whatever a writer is appending finishes first.
            let loaded = {
                let open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                open.get(&key).and_then(|cell| cell.get().cloned())
            };
            let _writing = match &loaded {
                Some(collection) => Some(collection.log.lock().await),
                None => None,
            };
            let path = self.path(&key)?;
            let bytes = tokio::fs::read(&path).await.map_err(|error| format!("{}: {error}", path.display()))?;
            files.push((key.binding, bytes));
        }
        Ok(files)
    }

    /// Puts back what [`Vectors::export`] gave, for the same app (the frames only open there).
    pub async fn import(&self, app: &AppKey, binding: &str, bytes: &[u8]) -> Result<(), String> {
        let key = IndexKey { app: app.clone(), binding: binding.to_owned() };
        segment::frames(bytes)?;
        let path = self.path(&key)?;
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || replace_file(&path, &bytes))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())
    }

    fn remembered(&self, namespace: &str, fingerprint: &[u8; 32]) -> Option<Arc<[f32]>> {
        let embedded = self.embedded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        embedded.get(&(namespace.to_owned(), *fingerprint)).cloned()
    }

    fn remember(&self, namespace: &str, fingerprint: [u8; 32], vector: Arc<[f32]>) {
        let mut embedded = self.embedded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if embedded.len() >= MAX_REMEMBERED_EMBEDDINGS {
            let forget: Vec<_> = embedded.keys().take(MAX_REMEMBERED_EMBEDDINGS / 2).cloned().collect();
            for key in forget {
                embedded.remove(&key);
            }
        }
        embedded.insert((namespace.to_owned(), fingerprint), vector);
    }
}

/// Writes `bytes` at `at` (the end of the whole frames), syncing the data.
async fn append(path: &Path, at: u64, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let mut file = tokio::fs::OpenOptions::new().create(true).write(true).truncate(false).open(path).await?;
    file.set_len(at).await?;
    file.seek_to(at).await?;
    file.write_all(bytes).await?;
    file.sync_data().await
}

trait SeekTo {
    async fn seek_to(&mut self, at: u64) -> std::io::Result<()>;
}

impl SeekTo for tokio::fs::File {
    async fn seek_to(&mut self, at: u64) -> std::io::Result<()> {
        use tokio::io::AsyncSeekExt;
        self.seek(std::io::SeekFrom::Start(at)).await.map(drop)
    }
}

/// Replaces a file whole: a crash leaves the old one or the new one.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let temporary = path.with_extension("vec.new");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(parent)?.sync_all()
}

/// One app's index.
#[derive(Clone)]
struct AppVectors {
    vectors: Arc<Vectors>,
    key: IndexKey,
    dimensions: usize,
    pii_redaction: bool,
    ttl_days: Option<u32>,
    revision: i64,
    /// `spec.ai.models` lists `embed-default`: the text pipeline may embed.
    may_embed: bool,
}

impl VectorHost for AppVectors {
    fn call(&self, op: VectorOp) -> BoxFuture<'static, Result<Value, VectorError>> {
        let app = self.clone();
        Box::pin(async move {
            match op {
                VectorOp::Insert { vectors, upsert } => app.insert(vectors, upsert).await,
                VectorOp::Query { vector, options } => app.query(vector, options).await,
                VectorOp::GetByIds { ids } => app.get_by_ids(ids).await,
                VectorOp::DeleteByIds { ids } => app.delete_by_ids(ids).await,
                VectorOp::Describe => app.describe().await,
                VectorOp::UpsertText { items, author } => app.upsert_text(items, author).await,
                VectorOp::QueryText { text, options } => app.query_text(text, options).await,
            }
        })
    }
}

fn invalid(message: String) -> VectorError {
    VectorError::Invalid(message)
}

impl AppVectors {
    async fn collection(&self) -> Result<Arc<Collection>, VectorError> {
        self.vectors.collection(&self.key, self.dimensions).await
    }

    fn meter(&self, ops: DataOps) {
        self.vectors.meter.record_data(&self.key.app, ops);
    }

    /// When a vector written now expires: the manifest's `ttlDays`, or the call's when sooner.
    fn expires_at(&self, now: i64, ttl_days: Option<u32>) -> Option<i64> {
        let days = match (self.ttl_days, ttl_days) {
            (Some(manifest), Some(call)) => Some(manifest.min(call)),
            (manifest, call) => manifest.or(call),
        };
        days.map(|days| now + i64::from(days) * DAY_SECS)
    }

    fn check_id(&self, what: &str, id: &str) -> Result<(), VectorError> {
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Err(invalid(format!("{what}: a vector id is 1 to {MAX_ID_BYTES} bytes, found {} bytes", id.len())));
        }
        Ok(())
    }

    fn check_values(&self, what: &str, id: &str, values: &[f32]) -> Result<(), VectorError> {
        if values.len() != self.dimensions {
            return Err(invalid(format!(
                "{what}: vector {id:?} has {} dimensions; the index {} has {} (spec.data.vectors.dimensions)",
                values.len(),
                self.key.binding,
                self.dimensions
            )));
        }
        if !values.iter().all(|value| value.is_finite()) {
            return Err(invalid(format!("{what}: vector {id:?} holds a value that is not a finite number")));
        }
        if index::norm(values) == 0.0 {
            return Err(invalid(format!(
                "{what}: vector {id:?} is all zeros, which has no direction to compare by cosine"
            )));
        }
        Ok(())
    }

    fn check_metadata(&self, what: &str, id: &str, metadata: Option<&Map<String, Value>>) -> Result<(), VectorError> {
        if let Some(metadata) = metadata {
            let size = serde_json::to_string(metadata).map_or(usize::MAX, |text| text.len());
            if size > MAX_METADATA_BYTES {
                return Err(invalid(format!(
                    "{what}: the metadata of vector {id:?} is {size} bytes of JSON; at most {MAX_METADATA_BYTES}"
                )));
            }
        }
        Ok(())
    }

    fn check_namespace(&self, what: &str, namespace: Option<&str>) -> Result<(), VectorError> {
        if let Some(namespace) = namespace
            && (namespace.is_empty() || namespace.len() > MAX_NAMESPACE_BYTES)
        {
            return Err(invalid(format!(
                "{what}: a namespace is 1 to {MAX_NAMESPACE_BYTES} bytes, found {}",
                namespace.len()
            )));
        }
        Ok(())
    }

    fn check_room(&self, collection: &Collection, adding: usize) -> Result<(), VectorError> {
        let held = collection.index.read().unwrap_or_else(std::sync::PoisonError::into_inner).len();
        let most = self.vectors.section.max_vectors_per_index;
        if held + adding > most {
            return Err(invalid(format!(
                "the index {} holds {held} vectors and this server allows {most} per index; delete some first",
                self.key.binding
            )));
        }
        Ok(())
    }

    async fn insert(&self, vectors: Vec<VectorRecord>, upsert: bool) -> Result<Value, VectorError> {
        let what = if upsert { "upsert" } else { "insert" };
        if vectors.is_empty() || vectors.len() > MAX_BATCH {
            return Err(invalid(format!("{what}: give 1 to {MAX_BATCH} vectors per call, found {}", vectors.len())));
        }
        for vector in &vectors {
            self.check_id(what, &vector.id)?;
            self.check_values(what, &vector.id, &vector.values)?;
            self.check_metadata(what, &vector.id, vector.metadata.as_ref())?;
            self.check_namespace(what, vector.namespace.as_deref())?;
        }
        let collection = self.collection().await?;
        let now = self.vectors.now();
        let expires_at = self.expires_at(now, None);
        // The last of several vectors with one id wins; `insert` keeps what exists.
        let mut entries: Vec<Entry> = Vec::with_capacity(vectors.len());
        let mut seen = HashSet::new();
        {
            let index = collection.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            for vector in vectors.into_iter().rev() {
                if !seen.insert(vector.id.clone())
                    || (!upsert && index.get(&vector.id).is_some_and(|entry| entry.live(now)))
                {
                    continue;
                }
                entries.push(Entry {
                    id: vector.id.into(),
                    namespace: vector.namespace,
                    values: vector.values.into(),
                    metadata: vector.metadata,
                    text: None,
                    provenance: None,
                    fingerprint: None,
                    expires_at,
                });
            }
        }
        entries.reverse();
        self.check_room(&collection, entries.len())?;
        let ids: Vec<String> = entries.iter().map(|entry| entry.id.to_string()).collect();
        let mutation = match entries.is_empty() {
            true => collection.mutations.load(Ordering::Relaxed),
            false => self.vectors.write(&collection, Record::Put(entries)).await?,
        };
        self.meter(DataOps { vectors_written: ids.len() as u64, ..DataOps::default() });
        Ok(json!({ "mutationId": mutation_id(mutation), "count": ids.len(), "ids": ids }))
    }

    fn check_query(&self, what: &str, options: &QueryOptions) -> Result<(usize, Option<Filter>), VectorError> {
        let top_k = options.top_k.map_or(DEFAULT_TOP_K, |top_k| top_k as usize);
        let detailed = options.return_values || options.return_metadata == ReturnMetadata::All;
        let most = if detailed { MAX_TOP_K_WITH_DETAILS } else { MAX_TOP_K };
        if top_k == 0 || top_k > most {
            let why = if detailed { " when values or all metadata are returned" } else { "" };
            return Err(invalid(format!("{what}: topK is {top_k}; give 1 to {most}{why}")));
        }
        self.check_namespace(what, options.namespace.as_deref())?;
        let filter = options
            .filter
            .as_ref()
            .map(Filter::parse)
            .transpose()
            .map_err(|message| invalid(format!("{what}: {message}")))?;
        Ok((top_k, filter))
    }

    async fn query(&self, vector: Vec<f32>, options: QueryOptions) -> Result<Value, VectorError> {
        self.check_values("query", "the query", &vector)?;
        let (top_k, filter) = self.check_query("query", &options)?;
        let collection = self.collection().await?;
        self.meter(DataOps { vector_queries: 1, ..DataOps::default() });
        Ok(self.search(&collection, &vector, top_k, filter.as_ref(), &options))
    }

    /// The matches of one search, in Vectorize's shape (plus `text` and `provenance` for texts).
    fn search(
        &self,
        collection: &Collection,
        vector: &[f32],
        top_k: usize,
        filter: Option<&Filter>,
        options: &QueryOptions,
    ) -> Value {
        let now = self.vectors.now();
        let index = collection.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let namespace = options.namespace.as_deref();
        let search =
            index::Search { top_k, rerank: options.rerank.unwrap_or(true), filter, narrowed: namespace.is_some() };
        let found = index.search(
            vector,
            |entry| entry.live(now) && namespace.is_none_or(|namespace| entry.namespace.as_deref() == Some(namespace)),
            &search,
        );
        let matches: Vec<Value> = found
            .iter()
            .filter_map(|scored| {
                let entry = index.slot(scored.slot)?;
                let mut found = Map::new();
                found.insert("id".to_owned(), Value::from(&*entry.id));
                found.insert("score".to_owned(), json!(scored.score));
                if options.return_values {
                    found.insert("values".to_owned(), json!(&*entry.values));
                }
                if options.return_metadata != ReturnMetadata::None {
                    found.insert("metadata".to_owned(), entry.metadata.clone().map_or(Value::Null, Value::Object));
                }
                if let Some(namespace) = &entry.namespace {
                    found.insert("namespace".to_owned(), Value::from(namespace.as_str()));
                }
                if options.return_text
                    && let Some(text) = &entry.text
                {
                    found.insert("text".to_owned(), Value::from(&**text));
                }
                if let Some(provenance) = &entry.provenance {
                    found.insert("provenance".to_owned(), serde_json::to_value(provenance).unwrap_or(Value::Null));
                }
                Some(Value::Object(found))
            })
            .collect();
        json!({ "count": matches.len(), "matches": matches })
    }

    async fn get_by_ids(&self, ids: Vec<String>) -> Result<Value, VectorError> {
        if ids.len() > MAX_BATCH {
            return Err(invalid(format!("getByIds: give at most {MAX_BATCH} ids per call, found {}", ids.len())));
        }
        let collection = self.collection().await?;
        let now = self.vectors.now();
        let index = collection.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let found: Vec<Value> = ids
            .iter()
            .filter_map(|id| index.get(id).filter(|entry| entry.live(now)))
            .map(|entry| {
                let mut found = json!({
                    "id": &*entry.id,
                    "values": &*entry.values,
                    "metadata": entry.metadata.clone().map_or(Value::Null, Value::Object),
                });
                if let Some(namespace) = &entry.namespace {
                    found["namespace"] = Value::from(namespace.as_str());
                }
                found
            })
            .collect();
        Ok(Value::Array(found))
    }

    async fn delete_by_ids(&self, ids: Vec<String>) -> Result<Value, VectorError> {
        if ids.is_empty() || ids.len() > MAX_BATCH {
            return Err(invalid(format!("deleteByIds: give 1 to {MAX_BATCH} ids per call, found {}", ids.len())));
        }
        let collection = self.collection().await?;
        let present: Vec<Arc<str>> = {
            let index = collection.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut seen = HashSet::new();
            ids.iter()
                .filter(|id| seen.insert(id.as_str()))
                .filter_map(|id| index.get(id))
                .map(|entry| entry.id.clone())
                .collect()
        };
        let count = present.len();
        let ids: Vec<String> = present.iter().map(|id| id.to_string()).collect();
        let mutation = match present.is_empty() {
            true => collection.mutations.load(Ordering::Relaxed),
            false => self.vectors.write(&collection, Record::Delete(present)).await?,
        };
        self.meter(DataOps { vectors_written: count as u64, ..DataOps::default() });
        Ok(json!({ "mutationId": mutation_id(mutation), "count": count, "ids": ids }))
    }

    async fn describe(&self) -> Result<Value, VectorError> {
        let collection = self.collection().await?;
        let now = self.vectors.now();
        let count = collection
            .index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries()
            .filter(|entry| entry.live(now))
            .count();
        let mutation = collection.mutations.load(Ordering::Relaxed);
        Ok(json!({
            "dimensions": self.dimensions,
            "vectorCount": count,
            "processedUpToDatetime": self.vectors.clock.now_rfc3339(),
            "processedUpToMutation": mutation_id(mutation),
            "config": { "dimensions": self.dimensions, "metric": "cosine" },
        }))
    }

    fn embedder(&self, what: &str) -> Result<Arc<dyn Embedder>, VectorError> {
        if !self.may_embed {
            return Err(invalid(format!(
                "{what} embeds with the platform's model: list embed-default in spec.ai.models of {}",
                self.key.app
            )));
        }
        let embedder = self.vectors.embedder.clone().ok_or_else(|| {
            VectorError::Failed(format!(
                "{what}: this server has no embedding model; an operator installs it with `terrarium models fetch`"
            ))
        })?;
        if embedder.dimensions() != self.dimensions {
            return Err(invalid(format!(
                "{what}: the index {} has {} dimensions and {} gives {}; set spec.data.vectors.dimensions to {} (or leave it out)",
                self.key.binding,
                self.dimensions,
                embedder.model(),
                embedder.dimensions(),
                embedder.dimensions()
            )));
        }
        Ok(embedder)
    }

    async fn upsert_text(&self, items: Vec<TextRecord>, author: Option<String>) -> Result<Value, VectorError> {
        let what = "upsertText";
        if items.is_empty() || items.len() > MAX_TEXTS {
            return Err(invalid(format!("{what}: give 1 to {MAX_TEXTS} texts per call, found {}", items.len())));
        }
        for item in &items {
            self.check_id(what, &item.id)?;
            self.check_metadata(what, &item.id, item.metadata.as_ref())?;
            self.check_namespace(what, item.namespace.as_deref())?;
            if item.text.chars().count() > capability_ai::MAX_TEXT_CHARS {
                return Err(invalid(format!(
                    "{what}: the text of {:?} has more than {} characters; split long documents into passages",
                    item.id,
                    capability_ai::MAX_TEXT_CHARS
                )));
            }
            if item.text.trim().is_empty() {
                return Err(invalid(format!("{what}: the text of {:?} is empty", item.id)));
            }
        }
        let embedder = self.embedder(what)?;
        let collection = self.collection().await?;
        let namespace = &self.key.app.namespace;
        // Normalise, redact and fingerprint each text.
        let mut redacted_entities = 0usize;
        let prepared: Vec<(TextRecord, String, Vec<String>, [u8; 32])> = items
            .into_iter()
            .map(|item| {
                let normal = normalise(&item.text);
                let (stored, kinds) = match self.pii_redaction {
                    true => {
                        let redacted = self.vectors.detector.get_or_init(pii::Detector::new).redact(&normal);
                        redacted_entities += redacted.entities.len();
                        let mut kinds: Vec<String> =
                            redacted.entities.iter().map(|entity| entity.entity_type.as_str().to_owned()).collect();
                        kinds.sort();
                        kinds.dedup();
                        (redacted.text, kinds)
                    }
                    false => (normal, Vec::new()),
                };
                let fingerprint: [u8; 32] = sha2::Sha256::digest(stored.as_bytes()).into();
                (item, stored, kinds, fingerprint)
            })
            .collect();
        // Reuse what this index or the namespace already embedded; embed the rest once each.
        let mut vectors: HashMap<[u8; 32], Arc<[f32]>> = HashMap::new();
        let mut deduplicated = 0usize;
        let mut to_embed: Vec<([u8; 32], String)> = Vec::new();
        {
            let index = collection.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (_, stored, _, fingerprint) in &prepared {
                if vectors.contains_key(fingerprint) || to_embed.iter().any(|(known, _)| known == fingerprint) {
                    deduplicated += 1;
                    continue;
                }
                let known = index
                    .by_fingerprint(fingerprint)
                    .map(|entry| entry.values.clone())
                    .or_else(|| self.vectors.remembered(namespace, fingerprint));
                match known {
                    Some(vector) => {
                        deduplicated += 1;
                        vectors.insert(*fingerprint, vector);
                    }
                    None => to_embed.push((*fingerprint, stored.clone())),
                }
            }
        }
        if !to_embed.is_empty() {
            let texts: Vec<String> = to_embed.iter().map(|(_, text)| text.clone()).collect();
            let embedded = embedder.embed(texts).await.map_err(VectorError::Failed)?;
            self.meter(DataOps { embedding_tokens: embedded.tokens, ..DataOps::default() });
            for ((fingerprint, _), vector) in to_embed.into_iter().zip(embedded.vectors) {
                let vector: Arc<[f32]> = vector.into();
                self.vectors.remember(namespace, fingerprint, vector.clone());
                vectors.insert(fingerprint, vector);
            }
        }
        let now = self.vectors.now();
        let ingested_at = self.vectors.clock.now_rfc3339();
        let mut entries = Vec::with_capacity(prepared.len());
        let mut seen = HashSet::new();
        for (item, stored, kinds, fingerprint) in prepared.into_iter().rev() {
            if !seen.insert(item.id.clone()) {
                continue;
            }
            let values = vectors
                .get(&fingerprint)
                .cloned()
                .ok_or_else(|| VectorError::Failed(format!("{what}: the model gave fewer vectors than texts")))?;
            if index::norm(&values) == 0.0 {
                return Err(VectorError::Failed(format!("{what}: the model gave no direction for {:?}", item.id)));
            }
            entries.push(Entry {
                id: item.id.into(),
                namespace: item.namespace,
                values,
                metadata: item.metadata,
                text: Some(stored.into()),
                provenance: Some(Provenance {
                    source: self.key.app.to_string(),
                    author: author.clone(),
                    ingested_at: ingested_at.clone(),
                    revision: self.revision,
                    redacted: kinds,
                }),
                fingerprint: Some(fingerprint),
                expires_at: self.expires_at(now, item.ttl_days),
            });
        }
        entries.reverse();
        self.check_room(&collection, entries.len())?;
        let ids: Vec<String> = entries.iter().map(|entry| entry.id.to_string()).collect();
        let mutation = self.vectors.write(&collection, Record::Put(entries)).await?;
        self.meter(DataOps { vectors_written: ids.len() as u64, ..DataOps::default() });
        Ok(json!({
            "mutationId": mutation_id(mutation),
            "count": ids.len(),
            "ids": ids,
            "deduplicated": deduplicated,
            "redacted": redacted_entities,
        }))
    }

    async fn query_text(&self, text: String, options: QueryOptions) -> Result<Value, VectorError> {
        let what = "queryText";
        if text.trim().is_empty() || text.chars().count() > capability_ai::MAX_TEXT_CHARS {
            return Err(invalid(format!(
                "{what}: give a question of 1 to {} characters",
                capability_ai::MAX_TEXT_CHARS
            )));
        }
        let (top_k, filter) = self.check_query(what, &options)?;
        let embedder = self.embedder(what)?;
        let collection = self.collection().await?;
        let mut embedded = embedder.embed(vec![normalise(&text)]).await.map_err(VectorError::Failed)?;
        self.meter(DataOps { embedding_tokens: embedded.tokens, ..DataOps::default() });
        let vector =
            embedded.vectors.pop().ok_or_else(|| VectorError::Failed(format!("{what}: the model gave no vector")))?;
        if index::norm(&vector) == 0.0 {
            return Ok(json!({ "count": 0, "matches": [] }));
        }
        self.meter(DataOps { vector_queries: 1, ..DataOps::default() });
        Ok(self.search(&collection, &vector, top_k, filter.as_ref(), &options))
    }
}

/// Runs of white space become one space, and the ends are trimmed: the same passage copied
/// with other line breaks is the same text.
pub fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn mutation_id(mutation: u64) -> String {
    format!("{mutation:016x}")
}
