//! One vector index in memory: its entries, their unit vectors for cosine scores, and an int8
//! copy for the scan of large indexes. Below [`QUANTIZED_FROM`] live vectors a query scans the
//! f32 unit vectors exactly; above it, it scans the int8 copy (a quarter of the bytes) and
//! rescores the best candidates in full precision. From [`GRAPH_FROM`] vectors an HNSW graph
//! ([`crate::graph`]) is built in the background; once attached, unfiltered queries take their
//! candidates from it (and rescore them exactly). Filtered queries and queries in one namespace
//! always scan, evaluating the filter on each candidate before it is scored, so a filter never
//! loses results (the graph could, when few vectors pass).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::filter::Filter;
use crate::graph::Graph;

/// Live vectors from which queries scan the int8 copy first.
pub const QUANTIZED_FROM: usize = 512;
/// Live vectors from which an index gets an HNSW graph.
pub const GRAPH_FROM: usize = 2048;

/// Who wrote a text and from where, returned with its matches.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// `namespace/app`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// RFC 3339.
    pub ingested_at: String,
    pub revision: i64,
    /// Kinds of personal data removed from the text (`EMAIL_ADDRESS`), each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
}

/// One stored vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: Arc<str>,
    pub namespace: Option<String>,
    /// As the app gave them (or the model computed them).
    pub values: Arc<[f32]>,
    pub metadata: Option<Map<String, Value>>,
    /// The stored, redacted text (the text pipeline only).
    pub text: Option<Arc<str>>,
    pub provenance: Option<Provenance>,
    /// SHA-256 of the normalised, redacted text (the text pipeline only).
    pub fingerprint: Option<[u8; 32]>,
    /// Unix seconds after which the vector is gone.
    pub expires_at: Option<i64>,
}

impl Entry {
    pub fn live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|expires_at| now < expires_at)
    }
}

/// A scored match.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub slot: u32,
    pub score: f32,
}

impl Eq for Scored {}

impl Ord for Scored {
    /// Higher scores first; ties by slot, so results are stable.
    fn cmp(&self, other: &Scored) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.slot.cmp(&self.slot))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Scored) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

pub struct Index {
    pub dimensions: usize,
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: HashMap<Arc<str>, u32>,
    /// Unit vectors, `dimensions` per slot.
    unit: Vec<f32>,
    /// The unit vectors in int8, `dimensions` per slot, and each slot's scale back to f32.
    quantized: Vec<i8>,
    scales: Vec<f32>,
    /// Slots whose text has each fingerprint, for deduplication.
    by_fingerprint: HashMap<[u8; 32], Vec<u32>>,
    /// The HNSW graph over the unit vectors, once built.
    graph: Option<Arc<dyn Graph>>,
    /// While a graph is being built: the slots changed since its snapshot.
    building: Option<Vec<u32>>,
}

/// What a query asks of [`Index::search`].
pub struct Search<'a> {
    pub top_k: usize,
    /// Rescore the quantised scan's or the graph's candidates in full precision.
    pub rerank: bool,
    pub filter: Option<&'a Filter>,
    /// The query is limited to a namespace (or otherwise narrowed by `keep`): scan, never the
    /// graph, so nothing that passes is lost.
    pub narrowed: bool,
}

impl Index {
    pub fn new(dimensions: usize) -> Index {
        Index {
            dimensions,
            entries: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            unit: Vec::new(),
            quantized: Vec::new(),
            scales: Vec::new(),
            by_fingerprint: HashMap::new(),
            graph: None,
            building: None,
        }
    }

    /// Whether the index is large enough for a graph and has none, nor one being built.
    pub fn needs_graph(&self) -> bool {
        self.graph.is_none() && self.building.is_none() && self.len() >= GRAPH_FROM
    }

    /// Starts a graph: answers the live slots and their unit vectors to build it from, and
    /// records every slot changed from now until [`Index::finish_graph`].
    pub fn start_graph(&mut self) -> Vec<(u32, Vec<f32>)> {
        self.building = Some(Vec::new());
        (0..self.entries.len())
            .filter(|&slot| self.entries[slot].is_some())
            .map(|slot| (slot as u32, self.unit(slot).to_vec()))
            .collect()
    }

    /// Attaches a graph built from [`Index::start_graph`]'s snapshot, bringing it up to date
    /// with the slots changed meanwhile.
    pub fn finish_graph(&mut self, graph: Arc<dyn Graph>) -> Result<(), String> {
        for slot in self.building.take().unwrap_or_default() {
            match self.entries[slot as usize].is_some() {
                true => graph.add(slot, self.unit(slot as usize))?,
                false => graph.remove(slot)?,
            }
        }
        self.graph = Some(graph);
        Ok(())
    }

    /// A build that failed: the index keeps scanning, and may try again.
    pub fn abandon_graph(&mut self) {
        self.building = None;
    }

    pub fn has_graph(&self) -> bool {
        self.graph.is_some()
    }

    fn unit(&self, slot: usize) -> &[f32] {
        &self.unit[slot * self.dimensions..(slot + 1) * self.dimensions]
    }

    /// Keeps the graph in step with a changed slot; a graph that fails is dropped (queries scan).
    fn changed(&mut self, slot: u32, added: bool) {
        if let Some(building) = &mut self.building {
            building.push(slot);
        }
        if let Some(graph) = &self.graph {
            let done = match added {
                true => {
                    graph.add(slot, &self.unit[slot as usize * self.dimensions..(slot as usize + 1) * self.dimensions])
                }
                false => graph.remove(slot),
            };
            if let Err(error) = done {
                tracing::warn!(%error, "a vector graph failed to update; the index scans until it is rebuilt");
                self.graph = None;
            }
        }
    }

    /// Room for `additional` more vectors without moving the arrays (a load knows its count).
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        self.unit.reserve(additional * self.dimensions);
        self.quantized.reserve(additional * self.dimensions);
        self.scales.reserve(additional);
        self.by_id.reserve(additional);
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id).and_then(|&slot| self.entries[slot as usize].as_ref())
    }

    pub fn slot(&self, slot: u32) -> Option<&Entry> {
        self.entries.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().flatten()
    }

    /// An entry whose text has this fingerprint.
    pub fn by_fingerprint(&self, fingerprint: &[u8; 32]) -> Option<&Entry> {
        self.by_fingerprint.get(fingerprint).and_then(|slots| slots.first()).and_then(|&slot| self.slot(slot))
    }

    /// Stores `entry`, replacing one with its id. Its values must have the index's dimensions
    /// and a length above zero (checked by the caller).
    pub fn put(&mut self, entry: Entry) {
        self.remove(&entry.id);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.entries.push(None);
                self.unit.resize(self.unit.len() + self.dimensions, 0.0);
                self.quantized.resize(self.quantized.len() + self.dimensions, 0);
                self.scales.push(0.0);
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 vectors in one index")
            }
        };
        let range = slot as usize * self.dimensions..(slot as usize + 1) * self.dimensions;
        let norm = norm(&entry.values);
        for (unit, value) in self.unit[range.clone()].iter_mut().zip(entry.values.iter()) {
            *unit = value / norm;
        }
        self.scales[slot as usize] = quantize(&self.unit[range.clone()], &mut self.quantized[range]);
        self.by_id.insert(entry.id.clone(), slot);
        if let Some(fingerprint) = entry.fingerprint {
            self.by_fingerprint.entry(fingerprint).or_default().push(slot);
        }
        self.entries[slot as usize] = Some(entry);
        self.changed(slot, true);
    }

    pub fn remove(&mut self, id: &str) -> Option<Entry> {
        let slot = self.by_id.remove(id)?;
        let entry = self.entries[slot as usize].take()?;
        if let Some(fingerprint) = &entry.fingerprint
            && let Some(slots) = self.by_fingerprint.get_mut(fingerprint)
        {
            slots.retain(|other| *other != slot);
            if slots.is_empty() {
                self.by_fingerprint.remove(fingerprint);
            }
        }
        self.free.push(slot);
        self.changed(slot, false);
        Some(entry)
    }

    /// Ids of the entries expired at `now`.
    pub fn expired(&self, now: i64) -> Vec<Arc<str>> {
        self.entries().filter(|entry| !entry.live(now)).map(|entry| entry.id.clone()).collect()
    }

    /// The `top_k` live entries closest to `query` (cosine), among those `keep` accepts, best
    /// first.
    pub fn search(&self, query: &[f32], keep: impl Fn(&Entry) -> bool, search: &Search<'_>) -> Vec<Scored> {
        let Search { top_k, rerank, filter, narrowed } = *search;
        let dimensions = self.dimensions;
        let norm = norm(query);
        let unit: Vec<f32> = query.iter().map(|value| value / norm).collect();
        let accepted = |slot: usize| {
            self.entries[slot]
                .as_ref()
                .is_some_and(|entry| keep(entry) && filter.is_none_or(|filter| filter.matches(entry.metadata.as_ref())))
        };
        let candidates = if rerank { (top_k * 4).max(top_k + 32) } else { top_k };
        if let Some(graph) = self.graph.as_ref().filter(|_| filter.is_none() && !narrowed) {
            let accept = |slot: u32| accepted(slot as usize);
            match graph.search(&unit, candidates, &accept) {
                Ok(slots) => {
                    let mut found: Vec<Scored> = slots
                        .into_iter()
                        .filter(|&slot| accepted(slot as usize))
                        .map(|slot| Scored { slot, score: dot(&unit, self.unit(slot as usize)) })
                        .collect();
                    found.sort_by(|a, b| b.cmp(a));
                    found.truncate(top_k);
                    return found;
                }
                Err(error) => tracing::warn!(%error, "a vector graph search failed; scanning instead"),
            }
        }
        if self.len() < QUANTIZED_FROM {
            let mut best = TopK::new(top_k);
            for slot in 0..self.entries.len() {
                if accepted(slot) {
                    let score = dot(&unit, &self.unit[slot * dimensions..(slot + 1) * dimensions]);
                    best.offer(Scored { slot: slot as u32, score });
                }
            }
            return best.into_sorted();
        }
        let mut quantized_query = vec![0i8; dimensions];
        let query_scale = quantize(&unit, &mut quantized_query);
        // Enough candidates that rescoring recovers what int8 rounding reordered.
        let mut best = TopK::new(candidates);
        for slot in 0..self.entries.len() {
            if accepted(slot) {
                let raw = dot_i8(&quantized_query, &self.quantized[slot * dimensions..(slot + 1) * dimensions]);
                best.offer(Scored { slot: slot as u32, score: raw as f32 * query_scale * self.scales[slot] });
            }
        }
        let mut found = best.into_sorted();
        if rerank {
            for scored in &mut found {
                let slot = scored.slot as usize;
                scored.score = dot(&unit, &self.unit[slot * dimensions..(slot + 1) * dimensions]);
            }
            found.sort_by(|a, b| b.cmp(a));
            found.truncate(top_k);
        }
        found
    }
}

/// The best `k` of what is offered.
struct TopK {
    k: usize,
    /// A min-heap of the best so far.
    heap: BinaryHeap<std::cmp::Reverse<Scored>>,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    fn offer(&mut self, scored: Scored) {
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse(scored));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && scored > worst.0
        {
            *worst = std::cmp::Reverse(scored);
        }
    }

    fn into_sorted(self) -> Vec<Scored> {
        // Ascending `Reverse` is descending score.
        self.heap.into_sorted_vec().into_iter().map(|reversed| reversed.0).collect()
    }
}

pub fn norm(values: &[f32]) -> f32 {
    dot(values, values).sqrt()
}

/// The dot product in eight independent lanes, which the compiler turns into SIMD.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_chunks, a_rest) = a.as_chunks::<8>();
    let (b_chunks, b_rest) = b.as_chunks::<8>();
    for (a, b) in a_chunks.iter().zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += a[lane] * b[lane];
        }
    }
    let rest: f32 = a_rest.iter().zip(b_rest).map(|(a, b)| a * b).sum();
    lanes.iter().sum::<f32>() + rest
}

fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let (a_chunks, a_rest) = a.as_chunks::<16>();
    let (b_chunks, b_rest) = b.as_chunks::<16>();
    for (a, b) in a_chunks.iter().zip(b_chunks) {
        for lane in 0..16 {
            lanes[lane] += i32::from(a[lane]) * i32::from(b[lane]);
        }
    }
    let rest: i32 = a_rest.iter().zip(b_rest).map(|(a, b)| i32::from(*a) * i32::from(*b)).sum();
    lanes.iter().sum::<i32>() + rest
}

/// Writes `values` as int8 scaled by their largest magnitude; answers the scale back.
fn quantize(values: &[f32], out: &mut [i8]) -> f32 {
    let largest = values.iter().fold(0f32, |largest, value| largest.max(value.abs()));
    if largest == 0.0 {
        out.fill(0);
        return 0.0;
    }
    let scale = largest / 127.0;
    for (out, value) in out.iter_mut().zip(values) {
        *out = (value / scale).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn exhaustive(top_k: usize) -> Search<'static> {
        Search { top_k, rerank: true, filter: None, narrowed: false }
    }

    fn entry(id: &str, values: &[f32]) -> Entry {
        Entry {
            id: id.into(),
            namespace: None,
            values: values.into(),
            metadata: None,
            text: None,
            provenance: None,
            fingerprint: None,
            expires_at: None,
        }
    }

    /// A deterministic pseudo-random vector.
    fn vector(seed: u64, dimensions: usize) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..dimensions)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn exact_search_ranks_by_cosine() {
        let mut index = Index::new(3);
        index.put(entry("x", &[1.0, 0.0, 0.0]));
        index.put(entry("y", &[0.0, 2.0, 0.0]));
        index.put(entry("xy", &[1.0, 1.0, 0.0]));
        let found = index.search(&[3.0, 0.1, 0.0], |_| true, &exhaustive(2));
        let ids: Vec<&str> = found.iter().map(|scored| &*index.slot(scored.slot).unwrap().id).collect();
        assert_eq!(ids, ["x", "xy"]);
        assert!((found[0].score - 0.99944).abs() < 1e-4, "{found:?}");
        // Replacing an id keeps one entry; removing frees its slot for the next.
        index.put(entry("x", &[0.0, 0.0, 1.0]));
        assert_eq!(index.len(), 3);
        assert!(index.remove("y").is_some());
        index.put(entry("z", &[0.0, 1.0, 1.0]));
        assert_eq!(index.len(), 3);
        assert_eq!(index.get("z").unwrap().values[2], 1.0);
        assert!(index.get("y").is_none());
    }

    #[test]
    fn the_quantized_scan_finds_what_the_exact_one_does() {
        let dimensions = 64;
        let mut index = Index::new(dimensions);
        for seed in 0..(QUANTIZED_FROM as u64 + 500) {
            index.put(entry(&format!("v{seed}"), &vector(seed, dimensions)));
        }
        let mut agreed = 0;
        for seed in 0..20 {
            let query = vector(1_000_000 + seed, dimensions);
            let approximate = index.search(&query, |_| true, &exhaustive(10));
            // The exact answer, by brute force over every entry.
            let mut exact: Vec<(f32, &str)> = index
                .entries()
                .map(|entry| (dot(&query, &entry.values) / norm(&query) / norm(&entry.values), &*entry.id))
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            let exact: Vec<&str> = exact[..10].iter().map(|(_, id)| *id).collect();
            agreed +=
                approximate.iter().filter(|scored| exact.contains(&&*index.slot(scored.slot).unwrap().id)).count();
            // Reranked scores are the exact cosines.
            let best = index.slot(approximate[0].slot).unwrap();
            let cosine = dot(&query, &best.values) / norm(&query) / norm(&best.values);
            assert!((approximate[0].score - cosine).abs() < 1e-5);
        }
        assert!(agreed >= 190, "recall@10 of the int8 scan with rerank: {agreed}/200");
    }

    /// A "graph" that searches exactly: enough to check that the index keeps it in step.
    #[derive(Default)]
    pub(crate) struct ExactGraph(std::sync::Mutex<HashMap<u32, Vec<f32>>>);

    impl Graph for ExactGraph {
        fn add(&self, slot: u32, unit: &[f32]) -> Result<(), String> {
            self.0.lock().unwrap().insert(slot, unit.to_vec());
            Ok(())
        }
        fn remove(&self, slot: u32) -> Result<(), String> {
            self.0.lock().unwrap().remove(&slot);
            Ok(())
        }
        fn search(&self, query: &[f32], count: usize, accept: &dyn Fn(u32) -> bool) -> Result<Vec<u32>, String> {
            let nodes = self.0.lock().unwrap();
            let mut scored: Vec<(f32, u32)> =
                nodes.iter().filter(|(slot, _)| accept(**slot)).map(|(slot, unit)| (dot(query, unit), *slot)).collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            Ok(scored.into_iter().take(count).map(|(_, slot)| slot).collect())
        }
        fn len(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    #[test]
    fn a_graph_built_from_a_snapshot_catches_up_with_what_changed_meanwhile() {
        let dimensions = 16;
        let mut index = Index::new(dimensions);
        for seed in 0..GRAPH_FROM as u64 {
            index.put(entry(&format!("v{seed}"), &vector(seed, dimensions)));
        }
        assert!(index.needs_graph());
        let snapshot = index.start_graph();
        assert!(!index.needs_graph(), "one build at a time");
        // Changes while the graph is built from the snapshot.
        index.remove("v3");
        index.put(entry("v5", &vector(99_999, dimensions)));
        index.put(entry("new", &vector(123_456, dimensions)));
        let graph = Arc::new(ExactGraph::default());
        for (slot, unit) in &snapshot {
            graph.add(*slot, unit).unwrap();
        }
        index.finish_graph(graph.clone()).unwrap();
        assert!(index.has_graph());
        assert_eq!(graph.len(), index.len(), "removed slots left, added ones joined");
        // And after: kept in step as vectors come and go.
        index.remove("v7");
        index.put(entry("later", &vector(777, dimensions)));
        assert_eq!(graph.len(), index.len());
        for seed in [123_456, 99_999, 777, 42] {
            let query = vector(seed, dimensions);
            let through_graph = index.search(&query, |_| true, &exhaustive(5));
            let scanned = index.search(&query, |_| true, &Search { narrowed: true, ..exhaustive(5) });
            assert_eq!(through_graph, scanned, "query {seed}");
        }
        let best = index.search(&vector(123_456, dimensions), |_| true, &exhaustive(1));
        assert_eq!(&*index.slot(best[0].slot).unwrap().id, "new");
    }

    #[test]
    fn filters_and_liveness_apply_before_scoring() {
        let mut index = Index::new(2);
        for n in 0..50 {
            let mut entry = entry(&format!("v{n}"), &[1.0, n as f32 / 100.0]);
            entry.expires_at = (n % 2 == 0).then_some(100);
            index.put(entry);
        }
        // Half are expired at 100: the 10 best live ones are the odd ones.
        let found = index.search(&[1.0, 0.0], |entry| entry.live(100), &exhaustive(10));
        assert_eq!(found.len(), 10);
        assert!(found.iter().all(|scored| index.slot(scored.slot).unwrap().expires_at.is_none()));
        assert_eq!(index.expired(100).len(), 25);
    }
}
