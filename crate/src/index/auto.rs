//! Exact search while a collection is small, a graph once it is not: the index that
//! `index: "auto"` chooses.
//!
//! Below [`HNSW_FROM_ROWS`] rows an exact scan answers in about the time a graph walk
//! does, is exact, and costs nothing to build; past it the scan grows with the rows
//! while the walk barely does. The switch happens once, when an insert reaches the
//! threshold: the graph is built from the rows the scan held. It never switches back,
//! since a graph that shrinks by deletes still answers well, and rebuilding it on the
//! way up again would cost its build twice.

use super::flat::Flat;
use super::hnsw::{self, Hnsw};
use super::rows::Rows;
use super::{Hit, Index, Kind, Metadata, Parts, Query, BLOCK_ROWS};
use crate::metric::Metric;
use crate::quant::Quantization;
use std::borrow::Cow;

/// Rows (in one worker's part of a collection) from which "auto" searches a graph:
/// where the exact scan's time passes the graph's several times over at recall@10
/// above 0.95 (docs/BENCHMARKS.md, suite `ann`).
pub const HNSW_FROM_ROWS: usize = 20_000;

/// First byte of [`Parts::own`]: which index the rest of it belongs to.
const FLAT: u8 = 0;
const GRAPH: u8 = 1;

pub struct Auto {
    dim: usize,
    metric: Metric,
    params: hnsw::Params,
    /// Codes the scan, then the graph, keep (see [`Kind::check_quantization`]).
    quant: Quantization,
    /// [`HNSW_FROM_ROWS`], smaller in tests.
    from_rows: usize,
    inner: Box<dyn Index>,
}

impl Auto {
    pub fn new(dim: usize, metric: Metric, params: hnsw::Params, quant: Quantization) -> Self {
        Auto {
            dim,
            metric,
            params,
            quant,
            from_rows: HNSW_FROM_ROWS,
            inner: Box::new(Flat::new(dim, metric, quant)),
        }
    }

    /// Whether it searches a graph yet.
    pub fn is_graph(&self) -> bool {
        matches!(self.inner.kind(), Kind::Hnsw(_))
    }

    /// An Auto from the parts [`Index::parts`] gave: its own bytes name the inner index.
    pub fn restore(
        dim: usize,
        metric: Metric,
        params: hnsw::Params,
        quant: Quantization,
        parts: Parts,
    ) -> Option<Self> {
        let (&tag, rest) = parts.own.split_first()?;
        let inner_parts = Parts {
            own: Cow::Owned(rest.to_vec()),
            ..parts
        };
        let inner: Box<dyn Index> = match tag {
            FLAT => Box::new(Flat::restore(dim, metric, quant, inner_parts)?),
            GRAPH => Box::new(Hnsw::restore(dim, metric, quant, inner_parts)?),
            _ => return None,
        };
        Some(Auto {
            dim,
            metric,
            params,
            quant,
            from_rows: HNSW_FROM_ROWS,
            inner,
        })
    }

    /// Builds the graph from the rows the scan holds, and searches it from now on.
    fn grow(&mut self) {
        let mut graph = Hnsw::new(self.dim, self.metric, self.params, self.quant);
        let parts = self.inner.parts();
        graph.reserve(parts.ids.len());
        for (slot, id) in parts.ids.iter().enumerate() {
            let at = (slot % BLOCK_ROWS) * self.dim;
            let row = &parts.blocks[slot / BLOCK_ROWS][at..at + self.dim];
            graph.upsert(id, row, parts.metadata[slot].clone());
        }
        self.inner = Box::new(graph);
    }
}

impl Index for Auto {
    fn kind(&self) -> Kind {
        Kind::Auto(self.params)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn reserve(&mut self, rows: usize) {
        self.inner.reserve(rows);
    }

    fn upsert(&mut self, id: &str, vector: &[f32], metadata: Option<Metadata>) {
        self.inner.upsert(id, vector, metadata);
        if !self.is_graph() && self.inner.len() >= self.from_rows {
            self.grow();
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        self.inner.remove(id)
    }

    fn rows(&self) -> &Rows {
        self.inner.rows()
    }

    fn search_many(&self, queries: &[f32], query: &Query) -> Vec<Vec<Hit<'_>>> {
        self.inner.search_many(queries, query)
    }

    fn matrix_bytes(&self) -> usize {
        self.inner.matrix_bytes()
    }

    fn code_bytes(&self) -> usize {
        self.inner.code_bytes()
    }

    fn graph_bytes(&self) -> usize {
        self.inner.graph_bytes()
    }

    fn parts(&self) -> Parts<'_> {
        let parts = self.inner.parts();
        let tag = if self.is_graph() { GRAPH } else { FLAT };
        let own = [&[tag][..], &parts.own].concat();
        Parts {
            own: Cow::Owned(own),
            ..parts
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::test_row as row;

    /// `parts` restored as a cosine collection of `dim` with the default graph
    /// parameters, as its settings would restore it.
    fn restore(dim: usize, quant: Quantization, parts: Parts<'_>) -> Option<Auto> {
        Auto::restore(dim, Metric::Cosine, hnsw::Params::default(), quant, parts)
    }

    #[test]
    fn it_scans_until_the_threshold_then_walks_a_graph_that_survives_its_parts() {
        let dim = 8;
        let mut auto = Auto::new(dim, Metric::Cosine, hnsw::Params::default(), Quantization::None);
        auto.from_rows = 2_000;
        for i in 0..auto.from_rows - 1 {
            auto.upsert(&format!("r{i}"), &row(i, dim), None);
        }
        assert!(!auto.is_graph());
        let flat = restore(dim, Quantization::None, auto.parts()).unwrap();
        assert!(!flat.is_graph() && flat.len() == auto.from_rows - 1);

        auto.upsert("last", &row(auto.from_rows, dim), None);
        assert!(auto.is_graph());
        assert_eq!(auto.len(), auto.from_rows);
        let q = row(1234, dim);
        let query = Query::nearest(1);
        assert_eq!(auto.search_many(&q, &query)[0][0].id, "r1234");
        // Deletes never take it back to a scan.
        auto.remove("last");
        assert!(auto.is_graph());

        let restored = restore(dim, Quantization::None, auto.parts()).unwrap();
        assert!(restored.is_graph());
        assert_eq!(restored.search_many(&q, &query), auto.search_many(&q, &query));
        let mut damaged = auto.parts();
        damaged.own = Cow::Owned(vec![7]);
        assert!(restore(dim, Quantization::None, damaged).is_none());
    }

    #[test]
    fn with_int8_it_scans_codes_then_walks_a_graph_on_codes_that_survives_its_parts() {
        let (dim, quant) = (16, Quantization::Int8);
        let mut auto = Auto::new(dim, Metric::Cosine, hnsw::Params::default(), quant);
        auto.from_rows = 1_500;
        for i in 0..auto.from_rows - 1 {
            auto.upsert(&format!("r{i}"), &row(i, dim), None);
        }
        assert!(!auto.is_graph());
        assert_eq!(auto.code_bytes(), (auto.from_rows - 1) * dim, "the scan keeps codes");
        auto.upsert("last", &row(auto.from_rows, dim), None);
        assert!(auto.is_graph());
        assert_eq!(auto.code_bytes(), auto.from_rows * dim, "so does the graph");
        let q = row(1234, dim);
        let query = Query::nearest(3);
        let hits = auto.search_many(&q, &query).remove(0);
        assert_eq!(hits[0].id, "r1234");
        assert_eq!(hits[0].score, crate::kernels::dot(&q, &q), "an exact score");
        let restored = restore(dim, quant, auto.parts()).unwrap();
        assert!(restored.is_graph() && restored.code_bytes() == auto.code_bytes());
        assert_eq!(restored.search_many(&q, &query), auto.search_many(&q, &query));
    }
}
