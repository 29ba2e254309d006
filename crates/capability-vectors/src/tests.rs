//! The service end to end on a temporary directory: the Vectorize API, the text pipeline,
//! reloading, crashes, expiry and deletion.

use std::sync::Arc;
use std::time::Duration;

use capability_ai::Embedder;
use capability_kv::Sealer;
use deployment::{AppKey, VectorIndex};
use futures::future::BoxFuture;
use runtime::vectors::{QueryOptions, ReturnMetadata, TextRecord, VectorError, VectorHost, VectorOp, VectorRecord};
use serde_json::{Value, json};

use super::*;

/// Seals by XOR with a key derived from the namespace and the bound data, and a tag over both,
/// so a frame opens only with the same namespace and index (as the real envelope does).
struct TestSealer;

fn keystream(namespace: &str, aad: &[u8]) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    hasher.update(namespace.as_bytes());
    hasher.update(aad);
    hasher.finalize().into()
}

impl Sealer for TestSealer {
    fn seal(
        &self,
        namespace: &str,
        aad: Vec<u8>,
        plaintext: Vec<u8>,
    ) -> BoxFuture<'static, Result<(i64, Vec<u8>), String>> {
        let key = keystream(namespace, &aad);
        let mut sealed: Vec<u8> = plaintext.iter().enumerate().map(|(at, byte)| byte ^ key[at % 32]).collect();
        sealed.extend_from_slice(&key[..8]);
        Box::pin(async move { Ok((1, sealed)) })
    }

    fn open(
        &self,
        namespace: &str,
        version: i64,
        aad: Vec<u8>,
        sealed: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let key = keystream(namespace, &aad);
        let opened = match sealed.len() >= 8 && version == 1 && sealed[sealed.len() - 8..] == key[..8] {
            true => Ok(sealed[..sealed.len() - 8].iter().enumerate().map(|(at, byte)| byte ^ key[at % 32]).collect()),
            false => Err("the tag does not match".to_owned()),
        };
        Box::pin(async move { opened })
    }
}

/// Embeds a text as counts of a few words, so texts about the same thing are close: enough to
/// check the pipeline's plumbing (the real model is exercised by the server's tests).
struct WordCounts {
    calls: std::sync::atomic::AtomicUsize,
}

const WORDS: [&str; 4] = ["vpn", "lunch", "holiday", "laptop"];

impl Embedder for WordCounts {
    fn model(&self) -> &str {
        "word-counts"
    }
    fn dimensions(&self) -> usize {
        4
    }
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'static, Result<capability_ai::Embedded, String>> {
        self.calls.fetch_add(texts.len(), std::sync::atomic::Ordering::Relaxed);
        let vectors = texts
            .iter()
            .map(|text| {
                let lower = text.to_lowercase();
                WORDS.iter().map(|word| lower.matches(word).count() as f32 + 0.01).collect()
            })
            .collect();
        let tokens = texts.iter().map(|text| text.split_whitespace().count() as u64).sum();
        Box::pin(async move { Ok(capability_ai::Embedded { vectors, tokens }) })
    }
}

struct Setup {
    dir: tempfile::TempDir,
    clock: background::Clock,
    embedder: Arc<WordCounts>,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            clock: background::Clock::adjustable(),
            embedder: Arc::new(WordCounts { calls: Default::default() }),
        }
    }

    /// A server's service over the directory (a new one is a restart).
    fn service(&self) -> Arc<Vectors> {
        let section = config::VectorsSection { idle_secs: 60, ..config::VectorsSection::default() };
        Arc::new(Vectors::new(
            self.dir.path(),
            section,
            Arc::new(TestSealer),
            Some(self.embedder.clone()),
            self.clock.clone(),
            Arc::new(runtime::NoDataMeter),
        ))
    }
}

fn index(dimensions: u32) -> VectorIndex {
    VectorIndex { binding: "VECTORS".to_owned(), dimensions, pii_redaction: true, ttl_days: None }
}

fn host(vectors: &Arc<Vectors>, namespace: &str, app: &str, index: &VectorIndex) -> Arc<dyn VectorHost> {
    vectors.for_app(&AppKey::new(namespace, app), index, 7, &["embed-default".to_owned()]).index
}

fn record(id: &str, values: &[f32], metadata: Value) -> VectorRecord {
    VectorRecord {
        id: id.to_owned(),
        values: values.to_vec(),
        metadata: metadata.as_object().cloned(),
        namespace: None,
    }
}

async fn call(host: &Arc<dyn VectorHost>, op: VectorOp) -> Value {
    host.call(op).await.unwrap()
}

async fn upsert(host: &Arc<dyn VectorHost>, vectors: Vec<VectorRecord>) -> Value {
    call(host, VectorOp::Insert { vectors, upsert: true }).await
}

fn query(vector: &[f32], options: QueryOptions) -> VectorOp {
    VectorOp::Query { vector: vector.to_vec(), options }
}

fn ids(answer: &Value) -> Vec<String> {
    answer["matches"].as_array().unwrap().iter().map(|found| found["id"].as_str().unwrap().to_owned()).collect()
}

fn pages() -> Vec<VectorRecord> {
    vec![
        record("x", &[1.0, 0.0, 0.0], json!({ "team": "docs", "year": 2024 })),
        record("y", &[0.0, 1.0, 0.0], json!({ "team": "infra", "year": 2025 })),
        record("xy", &[1.0, 1.0, 0.0], json!({ "team": "docs", "year": 2025 })),
    ]
}

#[tokio::test]
async fn the_vectorize_api() {
    let setup = Setup::new();
    let vectors = setup.service();
    let host = host(&vectors, "team", "wiki", &index(3));
    let stored = upsert(&host, pages()).await;
    assert_eq!(stored["count"], 3);
    assert_eq!(stored["ids"], json!(["x", "y", "xy"]));
    assert!(stored["mutationId"].is_string());

    let found = call(&host, query(&[2.0, 0.2, 0.0], QueryOptions { top_k: Some(2), ..QueryOptions::default() })).await;
    assert_eq!(ids(&found), ["x", "xy"]);
    assert_eq!(found["count"], 2);
    let best = &found["matches"][0];
    assert!((best["score"].as_f64().unwrap() - 0.995).abs() < 0.001, "{best}");
    assert!(best.get("values").is_none() && best.get("metadata").is_none(), "nothing returned unless asked: {best}");

    let detailed = QueryOptions {
        top_k: Some(1),
        return_values: true,
        return_metadata: ReturnMetadata::All,
        ..QueryOptions::default()
    };
    let found = call(&host, query(&[0.0, 1.0, 0.0], detailed)).await;
    assert_eq!(found["matches"][0]["values"], json!([0.0, 1.0, 0.0]));
    assert_eq!(found["matches"][0]["metadata"], json!({ "team": "infra", "year": 2025 }));

    // Filters apply before ranking: the closest docs page from 2025.
    let filtered = QueryOptions {
        filter: json!({ "team": "docs", "year": { "$gte": 2025 } }).as_object().cloned(),
        ..QueryOptions::default()
    };
    assert_eq!(ids(&call(&host, query(&[0.0, 1.0, 0.0], filtered)).await), ["xy"]);

    // insert keeps what exists; upsert replaces it.
    let kept =
        call(&host, VectorOp::Insert { vectors: vec![record("x", &[0.0, 0.0, 1.0], json!({}))], upsert: false }).await;
    assert_eq!(kept["count"], 0);
    let got = call(&host, VectorOp::GetByIds { ids: vec!["x".to_owned(), "nope".to_owned()] }).await;
    assert_eq!(got, json!([{ "id": "x", "values": [1.0, 0.0, 0.0], "metadata": { "team": "docs", "year": 2024 } }]));
    upsert(&host, vec![record("x", &[0.0, 0.0, 1.0], json!({}))]).await;
    let got = call(&host, VectorOp::GetByIds { ids: vec!["x".to_owned()] }).await;
    assert_eq!(got[0]["values"], json!([0.0, 0.0, 1.0]));

    let deleted =
        call(&host, VectorOp::DeleteByIds { ids: vec!["y".to_owned(), "y".to_owned(), "nope".to_owned()] }).await;
    assert_eq!((deleted["count"].clone(), deleted["ids"].clone()), (json!(1), json!(["y"])));
    let described = call(&host, VectorOp::Describe).await;
    assert_eq!(described["dimensions"], 3);
    assert_eq!(described["vectorCount"], 2);
    assert_eq!(described["config"]["metric"], "cosine");

    // Namespaces inside an index (Vectorize's `namespace`).
    let mut scoped = record("n1", &[1.0, 0.0, 0.0], json!({}));
    scoped.namespace = Some("customer-1".to_owned());
    upsert(&host, vec![scoped]).await;
    let in_namespace =
        QueryOptions { namespace: Some("customer-1".to_owned()), top_k: Some(10), ..QueryOptions::default() };
    let found = call(&host, query(&[1.0, 0.0, 0.0], in_namespace)).await;
    assert_eq!(ids(&found), ["n1"]);
    assert_eq!(found["matches"][0]["namespace"], "customer-1");
}

#[tokio::test]
async fn bad_calls_say_what_is_wrong() {
    let setup = Setup::new();
    let vectors = setup.service();
    let host = host(&vectors, "team", "wiki", &index(3));
    let refused = |op: VectorOp| {
        let host = host.clone();
        async move {
            match host.call(op).await {
                Err(VectorError::Invalid(message)) => message,
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    };
    let short = refused(VectorOp::Insert { vectors: vec![record("a", &[1.0, 2.0], json!({}))], upsert: true }).await;
    assert!(short.contains("has 2 dimensions; the index VECTORS has 3"), "{short}");
    let zero =
        refused(VectorOp::Insert { vectors: vec![record("a", &[0.0, 0.0, 0.0], json!({}))], upsert: true }).await;
    assert!(zero.contains("all zeros"), "{zero}");
    let long_id =
        refused(VectorOp::Insert { vectors: vec![record(&"i".repeat(65), &[1.0, 0.0, 0.0], json!({}))], upsert: true })
            .await;
    assert!(long_id.contains("1 to 64 bytes"), "{long_id}");
    let big = json!({ "blob": "x".repeat(MAX_METADATA_BYTES) });
    let metadata = refused(VectorOp::Insert { vectors: vec![record("a", &[1.0, 0.0, 0.0], big)], upsert: true }).await;
    assert!(metadata.contains("at most 10240"), "{metadata}");
    let top_k = refused(query(&[1.0, 0.0, 0.0], QueryOptions { top_k: Some(101), ..QueryOptions::default() })).await;
    assert!(top_k.contains("give 1 to 100"), "{top_k}");
    let detailed = QueryOptions { top_k: Some(51), return_values: true, ..QueryOptions::default() };
    assert!(refused(query(&[1.0, 0.0, 0.0], detailed)).await.contains("when values or all metadata are returned"));
    let filter =
        QueryOptions { filter: json!({ "a": { "$like": 1 } }).as_object().cloned(), ..QueryOptions::default() };
    assert!(refused(query(&[1.0, 0.0, 0.0], filter)).await.contains("unknown operator"));
    assert!(refused(VectorOp::Insert { vectors: Vec::new(), upsert: true }).await.contains("1 to 1000 vectors"));

    // The text pipeline needs embed-default in spec.ai.models.
    let without_model = vectors.for_app(&AppKey::new("team", "wiki"), &index(4), 1, &[]).index;
    let text =
        TextRecord { id: "a".to_owned(), text: "hello".to_owned(), metadata: None, namespace: None, ttl_days: None };
    let message = without_model.call(VectorOp::UpsertText { items: vec![text], author: None }).await.unwrap_err();
    assert!(message.to_string().contains("list embed-default in spec.ai.models of team/wiki"), "{message}");
}

#[tokio::test]
async fn another_app_finds_nothing() {
    let setup = Setup::new();
    let vectors = setup.service();
    let ours = host(&vectors, "team-a", "wiki", &index(3));
    upsert(&ours, pages()).await;
    for (namespace, app) in [("team-b", "wiki"), ("team-a", "other")] {
        let theirs = host(&vectors, namespace, app, &index(3));
        let found =
            call(&theirs, query(&[1.0, 0.0, 0.0], QueryOptions { top_k: Some(10), ..QueryOptions::default() })).await;
        assert_eq!(found["count"], 0, "{namespace}/{app}");
        assert_eq!(call(&theirs, VectorOp::GetByIds { ids: vec!["x".to_owned()] }).await, json!([]));
        assert_eq!(call(&theirs, VectorOp::Describe).await["vectorCount"], 0);
    }
    // A file copied into another app's place does not open there.
    let theirs = setup.dir.path().join("vectors/team-b/wiki/VECTORS.vec");
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::copy(setup.dir.path().join("vectors/team-a/wiki/VECTORS.vec"), &theirs).unwrap();
    let restarted = setup.service();
    let stolen = host(&restarted, "team-b", "wiki", &index(3)).call(VectorOp::Describe).await;
    assert!(matches!(stolen, Err(VectorError::Failed(_))), "{stolen:?}");
}

#[tokio::test]
async fn indexes_reload_from_disk_sealed() {
    let setup = Setup::new();
    let vectors = setup.service();
    let host1 = host(&vectors, "team", "wiki", &index(3));
    upsert(&host1, pages()).await;
    call(&host1, VectorOp::DeleteByIds { ids: vec!["y".to_owned()] }).await;
    let before = call(&host1, query(&[1.0, 0.5, 0.0], QueryOptions::default())).await;

    // Nothing in the file is readable without the namespace's key.
    let file = std::fs::read(setup.dir.path().join("vectors/team/wiki/VECTORS.vec")).unwrap();
    assert!(!String::from_utf8_lossy(&file).contains("docs"), "metadata is sealed");

    // Out of memory when idle, back on the next call.
    setup.clock.advance(Duration::from_secs(120)).unwrap();
    drop(host1);
    assert_eq!(vectors.unload_idle(), 1);
    assert_eq!(vectors.loaded(), 0);
    let host2 = host(&vectors, "team", "wiki", &index(3));
    assert_eq!(call(&host2, query(&[1.0, 0.5, 0.0], QueryOptions::default())).await, before);

    // And after a restart.
    let restarted = setup.service();
    let host3 = host(&restarted, "team", "wiki", &index(3));
    assert_eq!(call(&host3, query(&[1.0, 0.5, 0.0], QueryOptions::default())).await, before);
}

#[tokio::test]
async fn a_crash_mid_write_loses_only_that_write() {
    let setup = Setup::new();
    let vectors = setup.service();
    let host1 = host(&vectors, "team", "wiki", &index(3));
    upsert(&host1, pages()).await;
    let path = setup.dir.path().join("vectors/team/wiki/VECTORS.vec");
    let whole = std::fs::read(&path).unwrap();
    // A frame cut short, as a kill -9 mid-append leaves it.
    let mut torn = whole.clone();
    torn.extend(&segment::frame(1, &[9; 40])[..20]);
    std::fs::write(&path, &torn).unwrap();
    let restarted = setup.service();
    let host2 = host(&restarted, "team", "wiki", &index(3));
    assert_eq!(call(&host2, VectorOp::Describe).await["vectorCount"], 3);
    upsert(&host2, vec![record("z", &[0.0, 0.0, 1.0], json!({}))]).await;
    let again = setup.service();
    assert_eq!(call(&host(&again, "team", "wiki", &index(3)), VectorOp::Describe).await["vectorCount"], 4);

    // A damaged frame that is not the last: the index refuses to load rather than serve part of it.
    let mut damaged = std::fs::read(&path).unwrap();
    damaged[segment::MAGIC.len() + 20] ^= 0xff;
    std::fs::write(&path, &damaged).unwrap();
    let refused = host(&setup.service(), "team", "wiki", &index(3)).call(VectorOp::Describe).await;
    assert!(
        matches!(&refused, Err(VectorError::Failed(message)) if message.contains("could not be loaded")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn rewrites_are_compacted() {
    let setup = Setup::new();
    let vectors = setup.service();
    let host1 = host(&vectors, "team", "wiki", &index(3));
    for round in 0..30 {
        let batch: Vec<VectorRecord> = (0..100)
            .map(|n| record(&format!("v{n}"), &[1.0, round as f32, n as f32], json!({ "round": round })))
            .collect();
        upsert(&host1, batch).await;
    }
    let size = std::fs::metadata(setup.dir.path().join("vectors/team/wiki/VECTORS.vec")).unwrap().len();
    // 3,000 writes of 100 ids: compacted, the file holds about the live 100 and what came since.
    assert!(size < 100 * 1200, "{size} bytes");
    let restarted = setup.service();
    let got =
        call(&host(&restarted, "team", "wiki", &index(3)), VectorOp::GetByIds { ids: vec!["v7".to_owned()] }).await;
    assert_eq!(got[0]["metadata"]["round"], 29);
}

#[tokio::test]
async fn vectors_expire_and_the_sweep_deletes_them() {
    let setup = Setup::new();
    let vectors = setup.service();
    let short = VectorIndex { ttl_days: Some(7), ..index(3) };
    let host1 = host(&vectors, "team", "wiki", &short);
    upsert(&host1, pages()).await;
    setup.clock.advance(Duration::from_secs(6 * 86_400)).unwrap();
    assert_eq!(call(&host1, VectorOp::Describe).await["vectorCount"], 3);
    setup.clock.advance(Duration::from_secs(2 * 86_400)).unwrap();
    // Expired: never answered, even before the sweep.
    assert_eq!(call(&host1, VectorOp::Describe).await["vectorCount"], 0);
    assert_eq!(call(&host1, query(&[1.0, 0.0, 0.0], QueryOptions::default())).await["count"], 0);
    assert_eq!(vectors.sweep().await.unwrap(), 3);
    assert_eq!(vectors.sweep().await.unwrap(), 0);
}

#[tokio::test]
async fn deleting_the_app_deletes_its_vectors() {
    let setup = Setup::new();
    let vectors = setup.service();
    upsert(&host(&vectors, "team", "wiki", &index(3)), pages()).await;
    upsert(&host(&vectors, "team", "keep", &index(3)), pages()).await;
    assert_eq!(vectors.delete_app(&AppKey::new("team", "wiki")).await.unwrap(), 1);
    assert!(!setup.dir.path().join("vectors/team/wiki").exists());
    let restarted = setup.service();
    assert_eq!(call(&host(&restarted, "team", "wiki", &index(3)), VectorOp::Describe).await["vectorCount"], 0);
    assert_eq!(call(&host(&restarted, "team", "keep", &index(3)), VectorOp::Describe).await["vectorCount"], 3);
}

#[tokio::test]
async fn the_text_pipeline_redacts_deduplicates_and_records_provenance() {
    let setup = Setup::new();
    let vectors = setup.service();
    let app = vectors.for_app(&AppKey::new("team", "wiki"), &index(4), 7, &["embed-default".to_owned()]).index;
    let text = |id: &str, text: &str| TextRecord {
        id: id.to_owned(),
        text: text.to_owned(),
        metadata: json!({ "page": id }).as_object().cloned(),
        namespace: None,
        ttl_days: None,
    };
    let items = vec![
        text("vpn", "To reach the VPN, write to helpdesk@example.com or call +1 415 555 0132."),
        text("lunch", "Lunch is at noon on Fridays."),
        text("lunch-copy", "Lunch is at   noon\non Fridays."),
    ];
    let stored = app.call(VectorOp::UpsertText { items, author: Some("alice".to_owned()) }).await.unwrap();
    assert_eq!(stored["count"], 3);
    assert_eq!(stored["deduplicated"], 1, "the copy differs only in white space: {stored}");
    assert_eq!(stored["redacted"], 2, "{stored}");
    assert_eq!(setup.embedder.calls.load(std::sync::atomic::Ordering::Relaxed), 2);

    let options = QueryOptions {
        top_k: Some(1),
        return_text: true,
        return_metadata: ReturnMetadata::All,
        ..QueryOptions::default()
    };
    let found = app.call(VectorOp::QueryText { text: "how do I get on the vpn".to_owned(), options }).await.unwrap();
    let best = &found["matches"][0];
    assert_eq!(best["id"], "vpn");
    let stored_text = best["text"].as_str().unwrap();
    assert!(!stored_text.contains("helpdesk@example.com") && !stored_text.contains("555"), "{stored_text}");
    assert!(stored_text.contains("[EMAIL_ADDRESS]") && stored_text.contains("[PHONE_NUMBER]"), "{stored_text}");
    assert_eq!(best["metadata"], json!({ "page": "vpn" }));
    let provenance = &best["provenance"];
    assert_eq!(provenance["source"], "team/wiki");
    assert_eq!(provenance["author"], "alice");
    assert_eq!(provenance["revision"], 7);
    assert_eq!(provenance["redacted"], json!(["EMAIL_ADDRESS", "PHONE_NUMBER"]));

    // Another app of the namespace storing the same text does not embed it again; another
    // namespace does.
    let sibling = vectors.for_app(&AppKey::new("team", "faq"), &index(4), 1, &["embed-default".to_owned()]).index;
    let again = sibling
        .call(VectorOp::UpsertText { items: vec![text("l", "Lunch is at noon on Fridays.")], author: None })
        .await
        .unwrap();
    assert_eq!(again["deduplicated"], 1);
    let stranger = vectors.for_app(&AppKey::new("other", "faq"), &index(4), 1, &["embed-default".to_owned()]).index;
    let fresh = stranger
        .call(VectorOp::UpsertText { items: vec![text("l", "Lunch is at noon on Fridays.")], author: None })
        .await
        .unwrap();
    assert_eq!(fresh["deduplicated"], 0);
    assert_eq!(setup.embedder.calls.load(std::sync::atomic::Ordering::Relaxed), 3 + 1, "plus the question");

    // Without piiRedaction the text is kept as written.
    let raw = VectorIndex { pii_redaction: false, ..index(4) };
    let kept = vectors.for_app(&AppKey::new("team", "raw"), &raw, 1, &["embed-default".to_owned()]).index;
    kept.call(VectorOp::UpsertText { items: vec![text("m", "mail bob@example.com")], author: None }).await.unwrap();
    let options = QueryOptions { return_text: true, ..QueryOptions::default() };
    let found = kept.call(VectorOp::QueryText { text: "mail".to_owned(), options }).await.unwrap();
    assert_eq!(found["matches"][0]["text"], "mail bob@example.com");
}

#[tokio::test]
async fn large_indexes_get_a_graph_in_the_background() {
    let setup = Setup::new();
    let vectors = Arc::new(
        Vectors::new(
            setup.dir.path(),
            config::VectorsSection::default(),
            Arc::new(TestSealer),
            None,
            setup.clock.clone(),
            Arc::new(runtime::NoDataMeter),
        )
        .with_graphs(Arc::new(ExactGraphs)),
    );
    let host = host(&vectors, "team", "wiki", &index(3));
    let batch = |from: usize, to: usize| -> Vec<VectorRecord> {
        (from..to).map(|n| record(&format!("v{n}"), &[1.0, n as f32 / 1000.0, (n % 7) as f32], json!({}))).collect()
    };
    upsert(&host, batch(0, 1000)).await;
    upsert(&host, batch(1000, 2000)).await;
    vectors.settle().await;
    let key = IndexKey { app: AppKey::new("team", "wiki"), binding: "VECTORS".to_owned() };
    let has_graph = |vectors: &Arc<Vectors>| {
        let open = vectors.open.lock().unwrap();
        open[&key].get().unwrap().index.read().unwrap().has_graph()
    };
    assert!(!has_graph(&vectors), "below {} vectors, no graph", index::GRAPH_FROM);
    upsert(&host, batch(2000, 3000)).await;
    vectors.settle().await;
    assert!(has_graph(&vectors));
    let found = call(&host, query(&[1.0, 2.5, 3.0], QueryOptions { top_k: Some(3), ..QueryOptions::default() })).await;
    // A filter makes the query scan; an empty one passes everything.
    let scanned = QueryOptions { top_k: Some(3), filter: json!({}).as_object().cloned(), ..QueryOptions::default() };
    let exact = call(&host, query(&[1.0, 2.5, 3.0], scanned)).await;
    // The same scores, within what int8 rounding of these near-equal 3-d vectors reorders.
    let scores = |answer: &Value| -> Vec<f64> {
        answer["matches"].as_array().unwrap().iter().map(|found| found["score"].as_f64().unwrap()).collect()
    };
    for (graph, scan) in scores(&found).iter().zip(scores(&exact)) {
        assert!((graph - scan).abs() < 1e-5, "the graph's answer is the scan's: {found} {exact}");
    }
    // A restart loads the index and builds its graph again; queries scan meanwhile.
    drop(host);
    let restarted = Arc::new(
        Vectors::new(
            setup.dir.path(),
            config::VectorsSection::default(),
            Arc::new(TestSealer),
            None,
            setup.clock.clone(),
            Arc::new(runtime::NoDataMeter),
        )
        .with_graphs(Arc::new(ExactGraphs)),
    );
    let host = host_of(&restarted);
    let again = call(&host, query(&[1.0, 2.5, 3.0], QueryOptions { top_k: Some(3), ..QueryOptions::default() })).await;
    for (scanned, graph) in scores(&again).iter().zip(scores(&found)) {
        assert!((scanned - graph).abs() < 1e-5, "{again} {found}");
    }
    restarted.settle().await;
    assert!(has_graph(&restarted));
}

fn host_of(vectors: &Arc<Vectors>) -> Arc<dyn VectorHost> {
    host(vectors, "team", "wiki", &index(3))
}

struct ExactGraphs;

impl graph::GraphBuilder for ExactGraphs {
    fn new_graph(&self, _: usize, _: usize) -> Result<Box<dyn graph::Graph>, String> {
        Ok(Box::new(index::tests::ExactGraph::default()))
    }
}
