//! One vector index in memory: its entries, their unit vectors for cosine scores, and an int8
//! copy for the scan of large indexes. Below [`QUANTIZED_FROM`] live vectors a query scans the
//! f32 unit vectors exactly; above it, it scans the int8 copy (a quarter of the bytes) and
//! rescores the best candidates in full precision. Filters are evaluated on each candidate
//! before it is scored, so a filtered query finds what an unfiltered one would among the vectors
//! that pass.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::filter::Filter;

/// Live vectors from which queries scan the int8 copy first.
pub const QUANTIZED_FROM: usize = 4096;

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
        Some(entry)
    }

    /// Ids of the entries expired at `now`.
    pub fn expired(&self, now: i64) -> Vec<Arc<str>> {
        self.entries().filter(|entry| !entry.live(now)).map(|entry| entry.id.clone()).collect()
    }

    /// The `top_k` live entries closest to `query` (cosine), among those `keep` accepts, best
    /// first. `rerank` rescores the int8 scan's candidates in full precision.
    pub fn search(
        &self,
        query: &[f32],
        top_k: usize,
        keep: impl Fn(&Entry) -> bool,
        rerank: bool,
        filter: Option<&Filter>,
    ) -> Vec<Scored> {
        let dimensions = self.dimensions;
        let norm = norm(query);
        let unit: Vec<f32> = query.iter().map(|value| value / norm).collect();
        let accepted = |slot: usize| {
            self.entries[slot]
                .as_ref()
                .is_some_and(|entry| keep(entry) && filter.is_none_or(|filter| filter.matches(entry.metadata.as_ref())))
        };
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
        let candidates = if rerank { (top_k * 4).max(top_k + 32) } else { top_k };
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
mod tests {
    use super::*;

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
        let found = index.search(&[3.0, 0.1, 0.0], 2, |_| true, true, None);
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
            let approximate = index.search(&query, 10, |_| true, true, None);
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

    #[test]
    fn filters_and_liveness_apply_before_scoring() {
        let mut index = Index::new(2);
        for n in 0..50 {
            let mut entry = entry(&format!("v{n}"), &[1.0, n as f32 / 100.0]);
            entry.expires_at = (n % 2 == 0).then_some(100);
            index.put(entry);
        }
        // Half are expired at 100: the 10 best live ones are the odd ones.
        let found = index.search(&[1.0, 0.0], 10, |entry| entry.live(100), true, None);
        assert_eq!(found.len(), 10);
        assert!(found.iter().all(|scored| index.slot(scored.slot).unwrap().expires_at.is_none()));
        assert_eq!(index.expired(100).len(), 25);
    }
}
