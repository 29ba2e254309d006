//! Models for apps through `env.AI`: the aliases the server offers, and per app the ones its
//! manifest lists (`spec.ai.models`). Embedding models are [`Embedder`]s (the local
//! all-MiniLM-L6-v2 in `embed-candle`); the alias an app names is resolved here, after its
//! manifest allowed it, so an app reaches no model it did not declare.

use std::collections::BTreeMap;
use std::sync::Arc;

use deployment::AppKey;
use futures::future::BoxFuture;
use runtime::ai::{AiAnswer, AiError, AiHost, AiOp};
use runtime::{DataMeter, DataOps};

/// The alias of the embedding model every server offers.
pub const EMBED_DEFAULT: &str = "embed-default";

/// Texts one `run` may embed, and the longest text: the model reads at most 256 tokens of each,
/// so a longer text only costs tokenizing.
pub const MAX_TEXTS: usize = 100;
pub const MAX_TEXT_CHARS: usize = 16_384;

/// A text-embedding model.
pub trait Embedder: Send + Sync + 'static {
    /// The model's name, for errors and listings (`all-MiniLM-L6-v2`).
    fn model(&self) -> &str;
    fn dimensions(&self) -> usize;
    /// One L2-normalised vector per text, in order. The error says what the operator must do
    /// (a model that is not installed names the command that installs it).
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'static, Result<Embedded, String>>;
}

/// What an embedding call computed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens the model read (every text's, after truncation), for usage and cost.
    pub tokens: u64,
}

/// The models this server offers, by alias.
#[derive(Clone)]
pub struct Ai {
    embedders: BTreeMap<String, Arc<dyn Embedder>>,
    meter: Arc<dyn DataMeter>,
}

impl Default for Ai {
    fn default() -> Ai {
        Ai { embedders: BTreeMap::new(), meter: Arc::new(runtime::NoDataMeter) }
    }
}

impl Ai {
    pub fn new() -> Ai {
        Ai::default()
    }

    /// Where the tokens apps' calls cost are counted.
    pub fn with_meter(mut self, meter: Arc<dyn DataMeter>) -> Ai {
        self.meter = meter;
        self
    }

    pub fn with_embedder(mut self, alias: &str, embedder: Arc<dyn Embedder>) -> Ai {
        self.embedders.insert(alias.to_owned(), embedder);
        self
    }

    /// The aliases offered, for errors and listings.
    pub fn aliases(&self) -> Vec<&str> {
        self.embedders.keys().map(String::as_str).collect()
    }

    /// What `app` may run, given the aliases its manifest lists (`Deployment::ai_models`), or
    /// `None` when it lists none (no `env.AI`).
    pub fn for_app(&self, app: &AppKey, models: &[String]) -> Option<Arc<dyn AiHost>> {
        if models.is_empty() {
            return None;
        }
        Some(Arc::new(AppAi { app: app.clone(), allowed: models.to_vec(), ai: self.clone() }))
    }
}

/// One app's view: the aliases its manifest lists, resolved on the server's.
struct AppAi {
    app: AppKey,
    allowed: Vec<String>,
    ai: Ai,
}

impl AppAi {
    fn embedder(&self, model: &str) -> Result<Arc<dyn Embedder>, AiError> {
        if !self.allowed.iter().any(|alias| alias == model) {
            return Err(AiError::Invalid(format!(
                "env.AI.run: {model:?} is not in spec.ai.models of {}/{} (it lists {}); add it there to use it",
                self.app.namespace,
                self.app.name,
                self.allowed.join(", ")
            )));
        }
        self.ai.embedders.get(model).cloned().ok_or_else(|| {
            AiError::Invalid(format!(
                "env.AI.run: this server has no model {model:?}; it offers {}",
                self.ai.aliases().join(", ")
            ))
        })
    }
}

impl AiHost for AppAi {
    fn run(&self, op: AiOp) -> BoxFuture<'static, Result<AiAnswer, AiError>> {
        let AiOp::Embed { model, texts } = op;
        let checked = self.embedder(&model).and_then(|embedder| check_texts(&texts).map(|()| embedder));
        let (meter, app) = (self.ai.meter.clone(), self.app.clone());
        Box::pin(async move {
            let embedder = checked?;
            let dimensions = embedder.dimensions();
            let embedded = embedder.embed(texts).await.map_err(AiError::Unavailable)?;
            meter.record_data(&app, DataOps { embedding_tokens: embedded.tokens, ..DataOps::default() });
            Ok(AiAnswer::Embeddings { dimensions, vectors: embedded.vectors })
        })
    }
}

fn check_texts(texts: &[String]) -> Result<(), AiError> {
    if texts.is_empty() {
        return Err(AiError::Invalid("env.AI.run: give { text: \"...\" } or { text: [\"...\", ...] } to embed".into()));
    }
    if texts.len() > MAX_TEXTS {
        return Err(AiError::Invalid(format!(
            "env.AI.run: {} texts in one call; embed at most {MAX_TEXTS} at a time",
            texts.len()
        )));
    }
    if let Some((index, text)) = texts.iter().enumerate().find(|(_, text)| text.chars().count() > MAX_TEXT_CHARS) {
        return Err(AiError::Invalid(format!(
            "env.AI.run: text {index} has {} characters; the model reads at most 256 tokens, so send at most {MAX_TEXT_CHARS} characters (split longer documents into passages)",
            text.chars().count()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An embedder that answers the texts' lengths: enough to check routing and limits.
    struct Lengths;
    impl Embedder for Lengths {
        fn model(&self) -> &str {
            "lengths"
        }
        fn dimensions(&self) -> usize {
            1
        }
        fn embed(&self, texts: Vec<String>) -> BoxFuture<'static, Result<Embedded, String>> {
            let vectors = texts.iter().map(|text| vec![text.len() as f32]).collect();
            Box::pin(async move { Ok(Embedded { vectors, tokens: texts.len() as u64 }) })
        }
    }

    fn host(ai: &Ai, models: &[&str]) -> Option<Arc<dyn AiHost>> {
        let models: Vec<String> = models.iter().map(|model| (*model).to_owned()).collect();
        ai.for_app(&AppKey::new("team", "wiki"), &models)
    }

    fn embed(model: &str, texts: &[&str]) -> AiOp {
        AiOp::Embed { model: model.to_owned(), texts: texts.iter().map(|text| (*text).to_owned()).collect() }
    }

    #[tokio::test]
    async fn an_app_runs_only_the_models_its_manifest_lists() {
        let ai = Ai::new().with_embedder(EMBED_DEFAULT, Arc::new(Lengths)).with_embedder("other", Arc::new(Lengths));
        assert!(host(&ai, &[]).is_none(), "no spec.ai.models, no env.AI");
        let app = host(&ai, &[EMBED_DEFAULT]).unwrap();
        let answer = app.run(embed(EMBED_DEFAULT, &["ab", "abc"])).await.unwrap();
        assert_eq!(answer, AiAnswer::Embeddings { dimensions: 1, vectors: vec![vec![2.0], vec![3.0]] });
        let refused = app.run(embed("other", &["x"])).await.unwrap_err();
        assert!(
            matches!(&refused, AiError::Invalid(message) if message.contains("not in spec.ai.models of team/wiki")),
            "{refused}"
        );
        let unknown = host(&ai, &["chat-default"]).unwrap().run(embed("chat-default", &["x"])).await.unwrap_err();
        assert!(
            matches!(&unknown, AiError::Invalid(message) if message.contains("offers embed-default, other")),
            "{unknown}"
        );
    }

    #[tokio::test]
    async fn texts_are_bounded() {
        let ai = Ai::new().with_embedder(EMBED_DEFAULT, Arc::new(Lengths));
        let host = host(&ai, &[EMBED_DEFAULT]).unwrap();
        assert!(matches!(host.run(embed(EMBED_DEFAULT, &[])).await, Err(AiError::Invalid(_))));
        let many = vec!["x"; MAX_TEXTS + 1];
        assert!(
            matches!(host.run(embed(EMBED_DEFAULT, &many)).await, Err(AiError::Invalid(m)) if m.contains("at most 100"))
        );
        let long = "é".repeat(MAX_TEXT_CHARS + 1);
        assert!(
            matches!(host.run(embed(EMBED_DEFAULT, &[&long])).await, Err(AiError::Invalid(m)) if m.contains("text 0"))
        );
        assert!(host.run(embed(EMBED_DEFAULT, &[&"é".repeat(MAX_TEXT_CHARS)])).await.is_ok());
    }
}

pub mod config {
    //! `[ai]` in `terrarium.toml`: where the local models are and how many cores they may use.

    use std::path::{Path, PathBuf};

    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct AiSection {
        /// The directory `terrarium models fetch` installs models into; `models` in the data
        /// directory when absent.
        pub models_dir: Option<PathBuf>,
        /// Threads the local embedding model computes on; half the cores (at least one) when
        /// absent, so embeddings never take every core from the apps' functions.
        pub embedding_threads: Option<usize>,
    }

    impl AiSection {
        pub fn validate(&self) -> Vec<String> {
            match self.embedding_threads {
                Some(0) => vec!["[ai] embedding_threads must be at least 1".to_owned()],
                Some(threads) if threads > 256 => {
                    vec![format!(
                        "[ai] embedding_threads is {threads}; at most 256 (one per core is the most that helps)"
                    )]
                }
                _ => Vec::new(),
            }
        }

        pub fn models_dir(&self, data_dir: &Path) -> PathBuf {
            self.models_dir.clone().unwrap_or_else(|| data_dir.join("models"))
        }

        pub fn embedding_threads(&self) -> usize {
            self.embedding_threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1)))
        }
    }
}
