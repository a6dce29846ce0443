//! Search structures over the in-memory copy of a collection's vectors, behind one
//! seam: the [`Index`] trait, which each index kind implements in a module of its own.

pub mod auto;
pub mod flat;
pub mod hnsw;
pub mod rows;

use crate::error::{Code, Error, Result};
use crate::filter::Filter;
use crate::metric::Metric;
use crate::quant::Quantization;
use auto::Auto;
use flat::Flat;
use hnsw::{Hnsw, Peer};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::rc::Rc;

/// A row's id, shared by the slot list and the id-to-slot map (one allocation a row).
pub type Id = Rc<str>;

/// Metadata of one row, parsed once on write so filters do not re-parse it per query.
pub type Metadata = Map<String, Value>;

/// Rows per block of vectors: 12 MiB at 384 dimensions, large enough that a scan
/// streams, and the piece a segment reads at once.
pub const BLOCK_ROWS: usize = 8192;

/// A search hit: the row's id, its public score and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'a> {
    pub id: &'a str,
    pub score: f32,
    pub metadata: Option<&'a Metadata>,
}

/// Which index a collection searches with; recorded in its settings and its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Exact search: every row scored, one pass over the vectors ([`Flat`]).
    Flat,
    /// Approximate search over a graph ([`Hnsw`]), built with these parameters. Only the
    /// name is stored in settings, so a collection loaded from its rows is rebuilt with
    /// the defaults; a segment keeps the parameters its graph was built with.
    Hnsw(hnsw::Params),
    /// Exact search until the rows reach [`auto::HNSW_FROM_ROWS`], then a graph
    /// ([`Auto`]).
    Auto(hnsw::Params),
}

impl Kind {
    /// Parses the stored name; `field` names where it was read in the error, which is
    /// `UNSUPPORTED_VERSION`: a kind this build does not know was written by a newer one.
    pub fn parse(name: &str, field: &str) -> Result<Kind> {
        match name {
            "flat" => Ok(Kind::Flat),
            "hnsw" => Ok(Kind::Hnsw(hnsw::Params::default())),
            "auto" => Ok(Kind::Auto(hnsw::Params::default())),
            other => Err(Error::new(
                Code::UnsupportedVersion,
                format!("{field}: index kind {other:?} is unknown to this build; open it with a newer quiver"),
            )),
        }
    }

    /// The stable name, as settings and segment headers store it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Flat => "flat",
            Kind::Hnsw(_) => "hnsw",
            Kind::Auto(_) => "auto",
        }
    }

    /// `INVALID_ARGUMENT` unless this kind can keep codes of `quant`: flat scans any;
    /// a graph (hnsw, and auto once it is one) walks int8 codes, but not binary ones,
    /// whose keys are too coarse to choose links by.
    pub fn check_quantization(self, quant: Quantization) -> Result<()> {
        if quant != Quantization::Binary || self == Kind::Flat {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "quantization: index {:?} takes \"none\" or \"int8\", not \"binary\" (only flat scans binary codes)",
            self.as_str()
        )))
    }

    /// An empty index of this kind, for vectors of `dim` dimensions ranked by `metric`,
    /// scanned on codes of `quant` (see [`Kind::check_quantization`]).
    pub fn empty(self, dim: usize, metric: Metric, quant: Quantization) -> Box<dyn Index> {
        match self {
            Kind::Flat => Box::new(Flat::new(dim, metric, quant)),
            Kind::Hnsw(params) => Box::new(Hnsw::new(dim, metric, params, quant)),
            Kind::Auto(params) => Box::new(Auto::new(dim, metric, params, quant)),
        }
    }

    /// An index of this kind rebuilt from the parts a segment kept; `None` when they do
    /// not fit together (then the collection loads from its rows).
    pub fn restore(self, dim: usize, metric: Metric, quant: Quantization, parts: Parts) -> Option<Box<dyn Index>> {
        match self {
            Kind::Flat => Flat::restore(dim, metric, quant, parts).map(|f| Box::new(f) as Box<dyn Index>),
            Kind::Hnsw(_) => Hnsw::restore(dim, metric, quant, parts).map(|h| Box::new(h) as Box<dyn Index>),
            Kind::Auto(params) => {
                Auto::restore(dim, metric, params, quant, parts).map(|a| Box::new(a) as Box<dyn Index>)
            }
        }
    }
}

/// A collection's in-memory search structure: the seam behind which index kinds differ.
///
/// Modelled on hnswlib's `AlgorithmInterface`: rows are added, replaced and removed by
/// id, searched k at a time under a filter, and saved and loaded whole (here through
/// [`Parts`], which [`crate::segment`] frames as a file). Vectors arrive prepared for the
/// metric (cosine rows unit-length), so an index only ranks. The database calls it once
/// per search, never per row: each kind keeps its own scan monomorphised inside.
pub trait Index {
    /// Which kind this is.
    fn kind(&self) -> Kind;

    /// The dimension of every vector.
    fn dim(&self) -> usize;

    /// How many rows it holds.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for `rows` more rows, ahead of a batch.
    fn reserve(&mut self, rows: usize);

    /// Inserts or replaces a row. `vector` is already prepared for the metric.
    fn upsert(&mut self, id: &str, vector: &[f32], metadata: Option<Metadata>);

    /// Inserts or replaces a batch of rows, as [`Index::upsert`] would one by one, once
    /// `store` (the batch's write to SQLite) has succeeded: on its error the index is
    /// left as it was. A kind that can share the work with another worker's
    /// [`hnsw::help`] does so through `helper`, and tells it to stop when it does not.
    fn upsert_batch(
        &mut self,
        rows: Batch,
        helper: Option<&mut dyn Peer>,
        store: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        if let Some(peer) = helper {
            hnsw::decline(peer);
        }
        store()?;
        rows.each(|id, vector, metadata| self.upsert(id, vector, metadata));
        Ok(())
    }

    /// Removes a row; returns whether it was there.
    fn remove(&mut self, id: &str) -> bool;

    /// The ids of all rows, in slot order.
    fn ids(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(self.rows().live_ids())
    }

    /// Its rows: each one's prepared vector and metadata by id.
    fn rows(&self) -> &rows::Rows;

    /// For each query of `queries` (prepared, back to back), the `query.k` closest rows
    /// that pass its filter and reach its threshold, best first.
    fn search_many(&self, queries: &[f32], query: &Query) -> Vec<Vec<Hit<'_>>>;

    /// Bytes the vectors occupy: what one exact scan reads.
    fn matrix_bytes(&self) -> usize;

    /// Bytes the quantized codes occupy ([`crate::quant::Codes::bytes`]); 0 without.
    fn code_bytes(&self) -> usize {
        0
    }

    /// Bytes the index's graph takes (links and levels); 0 for a scan.
    fn graph_bytes(&self) -> usize {
        0
    }

    /// What a segment keeps of the index, borrowed; [`Kind::restore`] rebuilds it.
    fn parts(&self) -> Parts<'_>;
}

/// A distinct pseudo-random unit vector of `dim` dimensions for each `i`: rows for the
/// index kinds' tests.
#[cfg(test)]
pub(crate) fn test_row(i: usize, dim: usize) -> Vec<f32> {
    let mut s = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let v: Vec<f32> = (0..dim)
        .map(|_| {
            s ^= s >> 29;
            s = s.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// What a search asks of an index besides the query vectors: one struct, so that a
/// knob only some kinds have (`ef`) does not change every kind's signature.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// How many rows to return at most.
    pub k: usize,
    /// Only rows whose metadata passes it are returned.
    pub filter: Option<&'a Filter>,
    /// A minimum score, or for Euclidean a maximum distance.
    pub threshold: Option<f32>,
    /// How many candidates an approximate index keeps while it searches (efSearch):
    /// more is slower and closer to exact; `None` is the index's default. Exact
    /// indexes ignore it.
    pub ef: Option<usize>,
    /// How many candidates a quantized index takes from its codes to re-rank exactly:
    /// more is slower and closer to exact; `None` is
    /// [`Quantization::default_fetch`]. Indexes without codes ignore it.
    pub fetch: Option<usize>,
}

impl Query<'_> {
    /// The `k` nearest rows, with no filter, threshold or tuning.
    pub fn nearest(k: usize) -> Self {
        Query {
            k,
            filter: None,
            threshold: None,
            ef: None,
            fetch: None,
        }
    }

    /// The smallest key (larger is closer, whatever the metric) a row must reach, and
    /// the sign that turns a metric's internal score into a key.
    pub fn bounds(&self, metric: Metric) -> (f32, f32) {
        let sign = if metric.higher_is_closer() { 1.0 } else { -1.0 };
        let min_key = self
            .threshold
            .map_or(f32::NEG_INFINITY, |t| sign * metric.internal_threshold(t));
        (min_key, sign)
    }
}

/// An index as a segment keeps it, so that loading rebuilds nothing.
///
/// The vectors come apart from the rest because they are most of the bytes: a segment
/// reads them back in a few large calls, straight into blocks of [`BLOCK_ROWS`] rows
/// (the last may hold fewer), in slot order. Borrowed from the index to write, owned
/// when read back.
pub struct Parts<'a> {
    /// Every slot's vector, block by block.
    pub blocks: Cow<'a, [Vec<f32>]>,
    /// Each slot's id.
    pub ids: Cow<'a, [Id]>,
    /// Each slot's metadata.
    pub metadata: Cow<'a, [Option<Metadata>]>,
    /// What only this kind understands, beyond the rows: a flat index's quantized codes
    /// (nothing without); a graph's links, and its codes, for HNSW.
    pub own: Cow<'a, [u8]>,
}

/// A batch of rows for [`Index::upsert_batch`]: ids, vectors prepared for the metric
/// back to back, and each row's metadata.
pub struct Batch<'a> {
    pub ids: &'a [String],
    pub vectors: &'a [f32],
    pub metadata: Vec<Option<Metadata>>,
}

impl Batch<'_> {
    /// Calls `f` with each row in order.
    pub fn each(self, mut f: impl FnMut(&str, &[f32], Option<Metadata>)) {
        let dim = self.vectors.len().checked_div(self.ids.len()).unwrap_or(0).max(1);
        for ((id, v), m) in self.ids.iter().zip(self.vectors.chunks_exact(dim)).zip(self.metadata) {
            f(id, v, m);
        }
    }
}

/// One search result inside the core: the row's slot and its ranking key
/// (larger is better whatever the metric).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub key: f32,
    pub slot: u32,
}

/// A bounded top-k: a binary heap whose root is the worst of the best k seen so far.
///
/// Ties on the key are broken by the row's id, smaller first, so that results are the
/// same however the rows are laid out or partitioned.
pub struct TopK<'a> {
    k: usize,
    heap: Vec<Candidate>,
    ids: &'a [Id],
}

impl<'a> TopK<'a> {
    pub fn new(k: usize, ids: &'a [Id]) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k.min(ids.len()) + 1),
            ids,
        }
    }

    /// The key a candidate must beat to enter, once the heap is full.
    #[inline(always)]
    pub fn floor(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap[0].key
        }
    }

    fn better(&self, a: Candidate, b: Candidate) -> bool {
        a.key > b.key || (a.key == b.key && self.ids[a.slot as usize] < self.ids[b.slot as usize])
    }

    pub fn push(&mut self, c: Candidate) {
        if self.heap.len() < self.k {
            self.heap.push(c);
            let mut i = self.heap.len() - 1;
            while i > 0 {
                let parent = (i - 1) / 2;
                if !self.better(self.heap[parent], self.heap[i]) {
                    break;
                }
                self.heap.swap(parent, i);
                i = parent;
            }
        } else if self.k > 0 && self.better(c, self.heap[0]) {
            self.heap[0] = c;
            let n = self.heap.len();
            let mut i = 0;
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut worst = i;
                if l < n && self.better(self.heap[worst], self.heap[l]) {
                    worst = l;
                }
                if r < n && self.better(self.heap[worst], self.heap[r]) {
                    worst = r;
                }
                if worst == i {
                    break;
                }
                self.heap.swap(i, worst);
                i = worst;
            }
        }
    }

    /// The kept candidates, best first.
    pub fn into_sorted(self) -> Vec<Candidate> {
        let ids = self.ids;
        let mut v = self.heap;
        v.sort_unstable_by(|a, b| {
            b.key
                .total_cmp(&a.key)
                .then_with(|| ids[a.slot as usize].cmp(&ids[b.slot as usize]))
        });
        v
    }
}
