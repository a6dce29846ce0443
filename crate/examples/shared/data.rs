//! An embedding set as the examples read it: DIR holds base.f32 and queries.f32
//! (row-major little-endian f32) and gt.i32 (the exact neighbours' row numbers, best
//! first, the same number for each query).

/// The rows, the queries and each query's exact neighbours.
pub struct Set {
    pub dim: usize,
    pub base: Vec<f32>,
    pub queries: Vec<f32>,
    pub gt: Vec<i32>,
    /// Rows and queries.
    pub n: usize,
    pub nq: usize,
    /// Neighbours listed for each query.
    pub depth: usize,
}

/// Reads the set named by the command line (`[DIR] [DIM]`), by default the shared
/// code-minilm-20k at 384 dimensions.
pub fn load() -> Set {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "/work/shared/data/code-minilm-20k".into());
    let dim: usize = args.next().map_or(384, |d| d.parse().expect("DIM is a number"));
    let read = |file: &str| std::fs::read(format!("{dir}/{file}")).unwrap_or_else(|e| panic!("{dir}/{file}: {e}"));
    let mut base = Vec::new();
    quiver::store::read_f32(&read("base.f32"), &mut base);
    let mut queries = Vec::new();
    quiver::store::read_f32(&read("queries.f32"), &mut queries);
    let gt: Vec<i32> = read("gt.i32")
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let (n, nq) = (base.len() / dim, queries.len() / dim);
    Set {
        dim,
        depth: gt.len() / nq,
        base,
        queries,
        gt,
        n,
        nq,
    }
}
