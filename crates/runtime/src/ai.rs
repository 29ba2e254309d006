//! Workers AI as engines see it (`env.AI.run(model, inputs)`): calls already scoped to one app,
//! for the model aliases its manifest lists (`spec.ai.models`). The engine turns `run` into an
//! [`AiOp`] and the answer back into the Workers AI result shape.

use futures::future::BoxFuture;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AiOp {
    /// Text embeddings: one vector per text, in order.
    Embed { model: String, texts: Vec<String> },
}

#[derive(Clone, Debug, PartialEq)]
pub enum AiAnswer {
    /// Vectors of `dimensions` numbers each, L2-normalised.
    Embeddings { dimensions: usize, vectors: Vec<Vec<f32>> },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AiError {
    /// The app asked for something it may not have or that is malformed (a `TypeError` in
    /// JavaScript): a model its manifest does not list, too many or too long texts.
    #[error("{0}")]
    Invalid(String),
    /// The platform could not answer (an `Error`): the model is not installed, it failed.
    #[error("{0}")]
    Unavailable(String),
}

/// An app's AI models.
pub trait AiHost: Send + Sync + 'static {
    fn run(&self, op: AiOp) -> BoxFuture<'static, Result<AiAnswer, AiError>>;
}
