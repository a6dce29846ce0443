//! What a graph walk scores nodes on: the f32 rows, or a quantized collection's int8
//! codes of them.
//!
//! A walk reads a node's vector at every step, at random across the collection, so it
//! is bound by the bytes a node costs: int8 codes are a quarter of an f32 row. The keys
//! they give are approximate, so a search on codes re-ranks what it found on the rows
//! ([`Space::is_exact`] says when it must), and the scores it returns are exact.
//! Building links on approximate keys costs recall only through the links chosen; the
//! tests measure it.
//!
//! Codes follow the rows slot for slot, and are kept by [`quant::refresh`]'s rule, as a
//! flat index keeps them: none (exact keys) until [`quant::CODES_FROM_ROWS`] rows, then
//! built anew from the rows each time the rows double.

use crate::index::rows::Rows;
use crate::kernels;
use crate::metric::Metric;
use crate::quant::{self, Codes, Prepared, Quantization};

pub struct Space {
    metric: Metric,
    quant: Quantization,
    codes: Option<Codes>,
}

/// A vector made ready to score nodes with [`Space::key`]. It holds no borrow of the
/// graph, so that linking may change the graph while it is held.
pub enum Probe<'q> {
    /// The row in this slot, read at each key.
    Row(u32),
    /// A vector from outside the graph: a query.
    Vector(&'q [f32]),
    /// A vector prepared for the codes.
    Codes(Prepared),
}

impl Space {
    pub fn new(metric: Metric, quant: Quantization) -> Self {
        Space {
            metric,
            quant,
            codes: None,
        }
    }

    /// A space with the codes a segment kept, `None` unless they are codes of `quant`
    /// for exactly `rows`' slots; then brought up to date as an insert would.
    pub fn restore(metric: Metric, quant: Quantization, codes: Option<Codes>, rows: &Rows) -> Self {
        let codes = codes.filter(|c| c.quantization() == quant && c.len() == rows.slots());
        let mut space = Space { metric, quant, codes };
        space.refresh(rows);
        space
    }

    pub fn quantization(&self) -> Quantization {
        self.quant
    }

    pub fn codes(&self) -> Option<&Codes> {
        self.codes.as_ref()
    }

    /// Whether keys are the exact ones: no codes (yet).
    pub fn is_exact(&self) -> bool {
        self.codes.is_none()
    }

    /// The exact key of `slot` for `q`: larger is closer.
    #[inline(always)]
    pub fn exact(&self, rows: &Rows, q: &[f32], slot: u32) -> f32 {
        let row = rows.row(slot as usize);
        match self.metric {
            Metric::Cosine | Metric::Dot => kernels::dot(q, row),
            Metric::Euclidean => -kernels::l2_squared(q, row),
        }
    }

    /// [`Space::exact`] of two slots, the same bit for bit, sharing the query's loads.
    #[inline(always)]
    fn exact_pair(&self, rows: &Rows, q: &[f32], [a, b]: [u32; 2]) -> [f32; 2] {
        let pair = [rows.row(a as usize), rows.row(b as usize)];
        match self.metric {
            Metric::Cosine | Metric::Dot => kernels::dot_pair(q, pair),
            Metric::Euclidean => kernels::l2_squared_pair(q, pair).map(|d| -d),
        }
    }

    /// `q` made ready to score nodes.
    pub fn probe<'q>(&self, q: &'q [f32]) -> Probe<'q> {
        match &self.codes {
            None => Probe::Vector(q),
            Some(codes) => Probe::Codes(codes.prepare(q)),
        }
    }

    /// The node in `slot` made ready to score other nodes against it.
    pub fn probe_slot(&self, rows: &Rows, slot: u32) -> Probe<'static> {
        match &self.codes {
            None => Probe::Row(slot),
            Some(codes) => Probe::Codes(codes.prepare(rows.row(slot as usize))),
        }
    }

    /// The key of `slot` for `probe` in this space: larger is closer.
    #[inline(always)]
    pub fn key(&self, rows: &Rows, probe: &Probe, slot: u32) -> f32 {
        match probe {
            Probe::Row(s) => self.exact(rows, rows.row(*s as usize), slot),
            Probe::Vector(q) => self.exact(rows, q, slot),
            Probe::Codes(p) => {
                self.codes
                    .as_ref()
                    .expect("probes follow the codes")
                    .estimate(p, slot as usize)
                    .0
            }
        }
    }

    /// [`Space::key`] of two slots, the same: a walk scores a node's neighbours in pairs,
    /// which share the probe's loads.
    #[inline(always)]
    pub fn key_pair(&self, rows: &Rows, probe: &Probe, slots: [u32; 2]) -> [f32; 2] {
        match probe {
            Probe::Row(s) => self.exact_pair(rows, rows.row(*s as usize), slots),
            Probe::Vector(q) => self.exact_pair(rows, q, slots),
            Probe::Codes(p) => self
                .codes
                .as_ref()
                .expect("probes follow the codes")
                .estimate_pair(p, slots.map(|s| s as usize)),
        }
    }

    /// The vector of `slot` has been pushed (a new last slot) or set (a slot reused or
    /// updated) in `rows`.
    pub fn row_changed(&mut self, rows: &Rows, slot: u32) {
        if let Some(codes) = &mut self.codes {
            let v = rows.row(slot as usize);
            if slot as usize == codes.len() {
                codes.push(v);
            } else {
                codes.replace(slot, v);
            }
        }
        self.refresh(rows);
    }

    /// Forgets the codes, with the rows.
    pub fn clear(&mut self) {
        self.codes = None;
    }

    fn refresh(&mut self, rows: &Rows) {
        let all = (0..rows.slots()).map(|s| rows.row(s));
        quant::refresh(&mut self.codes, self.quant, rows.dim(), self.metric, rows.live(), all);
    }
}
