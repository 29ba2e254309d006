//! Against the real model: `scripts/test` installs it and sets `TERRARIUM_TEST_MODELS` to the
//! models directory.

use super::*;
use capability_ai::Embedder;

fn model_dir() -> PathBuf {
    let root = std::env::var_os("TERRARIUM_TEST_MODELS")
        .expect("TERRARIUM_TEST_MODELS names the models directory; scripts/test installs the model and sets it");
    Path::new(&root).join(MODEL)
}

fn model() -> &'static MiniLm {
    static MODEL_ONCE: OnceLock<MiniLm> = OnceLock::new();
    MODEL_ONCE.get_or_init(|| MiniLm::load(&model_dir()).unwrap())
}

fn texts(list: &[&str]) -> Vec<String> {
    list.iter().map(|text| (*text).to_owned()).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn vectors_are_384_numbers_of_unit_length() {
    let vectors = model().embed(&texts(&["Hello, world!", "", "é ☃ 漢字 🚀"])).unwrap();
    assert_eq!(vectors.len(), 3);
    for vector in &vectors {
        assert_eq!(vector.len(), DIMENSIONS);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
}

#[test]
fn the_same_as_sentence_transformers() {
    // sentence-transformers' all-MiniLM-L6-v2 for this sentence begins with these numbers.
    let vector = &model().embed(&texts(&["This is an example sentence"])).unwrap()[0];
    let expected = [0.067_656_91_f32, 0.063_495_99, 0.048_713_16, 0.079_304_96, 0.037_448_07];
    for (index, (got, want)) in vector.iter().zip(expected).enumerate() {
        assert!((got - want).abs() < 1e-3, "dimension {index}: {got} against {want}");
    }
}

#[test]
fn padding_in_a_batch_changes_nothing() {
    let short = "Short.";
    let long = "A much longer sentence, so that the short one is padded in the batch it shares.";
    let alone = model().embed(&texts(&[short])).unwrap();
    let batched = model().embed(&texts(&[short, long])).unwrap();
    assert!(cosine(&alone[0], &batched[0]) > 0.9999, "{}", cosine(&alone[0], &batched[0]));
}

#[test]
fn related_sentences_are_closer_than_unrelated_ones() {
    let vectors = model()
        .embed(&texts(&[
            "The cat sits on the mat.",
            "A cat is sitting on a rug.",
            "Quarterly revenue grew by four percent.",
        ]))
        .unwrap();
    let related = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(related > 0.6 && unrelated < 0.2, "related {related}, unrelated {unrelated}");
}

#[test]
fn long_texts_are_truncated_and_tokens_counted() {
    let long = "word ".repeat(1000);
    assert_eq!(model().tokens(&texts(&[&long])).unwrap(), MAX_TOKENS as u64);
    assert_eq!(model().embed(&texts(&[&long])).unwrap()[0].len(), DIMENSIONS);
    assert_eq!(model().tokens(&texts(&["Hello world"])).unwrap(), 4, "[CLS] hello world [SEP]");
}

#[test]
fn a_missing_model_says_how_to_install_it() {
    let error = MiniLm::load(Path::new("/nonexistent/models/all-MiniLM-L6-v2")).err().unwrap().to_string();
    assert!(error.contains("not installed") && error.contains("terrarium models fetch"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_vectors() {
    let embedder = Arc::new(LocalEmbedder::new(model_dir(), 2));
    let sentences: Vec<String> =
        (0..24).map(|index| format!("Request number {index} asks about topic {}.", index % 5)).collect();
    let expected = model().embed(&sentences).unwrap();
    let calls = sentences.iter().map(|sentence| embedder.embed(vec![sentence.clone()]));
    let answers = futures::future::join_all(calls).await;
    for (index, answer) in answers.into_iter().enumerate() {
        let answer = answer.unwrap();
        assert!(cosine(&answer.vectors[0], &expected[index]) > 0.9999, "request {index} got another request's vector");
        // Each request is charged its own tokens, whatever it was batched with.
        assert_eq!(answer.tokens, model().tokens(&sentences[index..=index]).unwrap(), "request {index}");
    }
}

#[tokio::test]
async fn a_server_without_the_model_answers_at_once() {
    let embedder = LocalEmbedder::new(PathBuf::from("/nonexistent/models/all-MiniLM-L6-v2"), 1);
    assert!(!embedder.installed());
    let error = embedder.embed(vec!["x".into()]).await.unwrap_err();
    assert!(error.contains("terrarium models fetch"), "{error}");
}
