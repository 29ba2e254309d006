//! HNSW graphs for large vector indexes, with USearch: the [`capability_vectors::graph`]
//! traits over `usearch::Index`, keyed by the index's slots, on unit vectors stored as f16
//! (the index reranks the candidates in full precision).

use capability_vectors::graph::{Graph, GraphBuilder};

/// Graphs with USearch's defaults for 384-d text embeddings: 16 links per node, 128 candidates
/// while linking, `expansion` while searching.
pub struct Usearch {
    pub expansion: usize,
}

impl Default for Usearch {
    fn default() -> Usearch {
        Usearch { expansion: 64 }
    }
}

impl GraphBuilder for Usearch {
    fn new_graph(&self, dimensions: usize, capacity: usize) -> Result<Box<dyn Graph>, String> {
        let options = usearch::IndexOptions {
            dimensions,
            metric: usearch::MetricKind::IP,
            quantization: usearch::ScalarKind::F16,
            connectivity: 16,
            expansion_add: 128,
            expansion_search: self.expansion,
            multi: false,
        };
        let index = usearch::Index::new(&options).map_err(|error| error.to_string())?;
        index.reserve(capacity.max(16)).map_err(|error| error.to_string())?;
        Ok(Box::new(UsearchGraph { index }))
    }
}

/// The SIMD kernels USearch runs on this machine, for benchmark reports.
pub fn acceleration() -> String {
    usearch::hardware_acceleration_available()
}

struct UsearchGraph {
    index: usearch::Index,
}

impl Graph for UsearchGraph {
    fn add(&self, slot: u32, unit: &[f32]) -> Result<(), String> {
        let key = u64::from(slot);
        if self.index.size() + 1 > self.index.capacity() {
            let grown = (self.index.capacity() * 2).max(16);
            self.index.reserve(grown).map_err(|error| error.to_string())?;
        }
        if self.index.contains(key) {
            self.index.remove(key).map_err(|error| error.to_string())?;
        }
        self.index.add(key, unit).map_err(|error| error.to_string())
    }

    fn remove(&self, slot: u32) -> Result<(), String> {
        self.index.remove(u64::from(slot)).map(drop).map_err(|error| error.to_string())
    }

    fn search(&self, query: &[f32], count: usize, accept: &dyn Fn(u32) -> bool) -> Result<Vec<u32>, String> {
        // Unfiltered first (no call back into Rust per visited node); the filtered search only
        // when too few of those pass.
        let matches = self.index.search(query, count).map_err(|error| error.to_string())?;
        let found: Vec<u32> =
            matches.keys.iter().filter_map(|key| u32::try_from(*key).ok()).filter(|slot| accept(*slot)).collect();
        if found.len() == matches.keys.len() || found.len() >= count {
            return Ok(found);
        }
        let matches = self
            .index
            .filtered_search(query, count, |key| u32::try_from(key).is_ok_and(accept))
            .map_err(|error| error.to_string())?;
        Ok(matches.keys.iter().filter_map(|key| u32::try_from(*key).ok()).collect())
    }

    fn len(&self) -> usize {
        self.index.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors around a few centres, as text embeddings cluster.
    fn vectors(count: usize, dimensions: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..16).map(|_| (0..dimensions).map(|_| next()).collect()).collect();
        (0..count)
            .map(|n| {
                let vector: Vec<f32> = centres[n % 16].iter().map(|value| value + 0.3 * next()).collect();
                let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
                vector.iter().map(|value| value / norm).collect()
            })
            .collect()
    }

    fn exact(rows: &[Vec<f32>], query: &[f32], count: usize, accept: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut scored: Vec<(f32, u32)> = rows
            .iter()
            .enumerate()
            .filter(|(slot, _)| accept(*slot as u32))
            .map(|(slot, row)| (row.iter().zip(query).map(|(a, b)| a * b).sum(), slot as u32))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(count).map(|(_, slot)| slot).collect()
    }

    #[test]
    fn finds_what_an_exact_search_finds() {
        let dimensions = 64;
        let rows = vectors(5000, dimensions, 7);
        // Sixteen tight clusters are harder than real embeddings: a wider search keeps recall.
        let graph = Usearch { expansion: 256 }.new_graph(dimensions, 16).unwrap();
        for (slot, row) in rows.iter().enumerate() {
            graph.add(slot as u32, row).unwrap();
        }
        assert_eq!(graph.len(), 5000, "grew past its first capacity");
        let queries = vectors(50, dimensions, 8);
        let mut found = 0;
        for query in &queries {
            let truth = exact(&rows, query, 10, |_| true);
            let candidates = graph.search(query, 40, &|_| true).unwrap();
            found += truth.iter().filter(|slot| candidates.contains(slot)).count();
        }
        assert!(found >= 490, "recall@10 among 40 candidates: {found}/500");

        // Removed and replaced slots; a filter.
        graph.remove(0).unwrap();
        graph.add(1, &queries[0]).unwrap();
        let best = graph.search(&queries[0], 1, &|_| true).unwrap();
        assert_eq!(best, [1]);
        let even = graph.search(&queries[1], 10, &|slot| slot % 2 == 0).unwrap();
        assert!(!even.is_empty() && even.iter().all(|slot| slot % 2 == 0), "{even:?}");
        assert!(!graph.search(&rows[0], 50, &|_| true).unwrap().contains(&0));
    }
}
