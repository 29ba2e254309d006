//! Approximate nearest-neighbour graphs (HNSW) for large indexes, behind traits so the heavy
//! implementation (USearch, C++) lives in its own crate (`ann-usearch`). A graph holds an
//! index's unit vectors by slot; the index asks it for candidates and rescores them exactly.

/// One graph. Implementations are safe to search while another thread adds.
pub trait Graph: Send + Sync {
    /// Adds (or replaces) the unit vector of `slot`.
    fn add(&self, slot: u32, unit: &[f32]) -> Result<(), String>;
    fn remove(&self, slot: u32) -> Result<(), String>;
    /// Up to `count` slots near `query` (a unit vector) among those `accept` takes, nearest first.
    fn search(&self, query: &[f32], count: usize, accept: &dyn Fn(u32) -> bool) -> Result<Vec<u32>, String>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes empty graphs.
pub trait GraphBuilder: Send + Sync + 'static {
    fn new_graph(&self, dimensions: usize, capacity: usize) -> Result<Box<dyn Graph>, String>;
}
