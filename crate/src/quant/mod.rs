//! Compressed codes of prepared vectors and the coarse scores over them.
//!
//! An index that keeps [`Codes`] beside its rows scans (or walks its graph) on the
//! codes, which are 4x ([`Quantization::Int8`]) or about 25x ([`Quantization::Binary`])
//! smaller than the f32 rows, takes the best few candidates by their approximate key,
//! and re-ranks those on the full vectors ([`Codes::rerank`]), so the scores it returns
//! are exact. Keys are larger-is-closer, as everywhere in the index: the dot product for
//! cosine and dot, the negative squared distance for Euclidean.
//!
//! The codes follow the rows slot for slot: an index calls [`Codes::push`] when
//! [`Rows::push`](crate::index::rows::Rows::push) adds a slot, [`Codes::replace`] when a
//! slot's vector changes, [`Codes::remove`] where Rows swap-removes. The parameters a
//! codec learns from the rows (int8's ranges, binary's centroid) are fixed at
//! [`Codes::build`]: later rows are encoded with them (int8 clamps what falls outside),
//! and [`Codes::stale`] says when the rows have grown enough that a rebuild is due.

mod binary;
mod int8;

use crate::error::{Code, Error, Result};
use crate::index::{Candidate, Id, TopK};
use crate::kernels;
use crate::metric::Metric;
use xxhash_rust::xxh3::xxh3_64;

/// How a collection's search copy is compressed; recorded by name in its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// No codes: the index scans the f32 rows.
    None,
    /// One byte a dimension: per-dimension ranges ([`int8`]).
    Int8,
    /// One bit a dimension after a random rotation, with RaBitQ's factors ([`binary`]).
    Binary,
}

impl Quantization {
    /// Parses the stored name; `field` names where it was read in the error, which is
    /// `UNSUPPORTED_VERSION`: a name this build does not know was written by a newer one.
    pub fn parse(name: &str, field: &str) -> Result<Quantization> {
        match name {
            "none" => Ok(Quantization::None),
            "int8" => Ok(Quantization::Int8),
            "binary" => Ok(Quantization::Binary),
            other => Err(Error::new(
                Code::UnsupportedVersion,
                format!("{field}: quantization {other:?} is unknown to this build; open it with a newer quiver"),
            )),
        }
    }

    /// The stable name, as settings store it.
    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::None => "none",
            Quantization::Int8 => "int8",
            Quantization::Binary => "binary",
        }
    }

    /// How many candidates per result a search re-ranks by default: enough for
    /// recall@10 of 0.99 (int8) and 0.95 (binary) on 384-d text embeddings.
    pub fn default_fetch(self, k: usize) -> usize {
        match self {
            Quantization::None => k,
            Quantization::Int8 => k * 4,
            Quantization::Binary => k * 10,
        }
    }

    fn byte(self) -> u8 {
        match self {
            Quantization::None => 0,
            Quantization::Int8 => 1,
            Quantization::Binary => 2,
        }
    }
}

/// Rows from which an index of a quantized collection keeps codes: below, an exact
/// scan or walk costs little more than the codes' would, and ranges or a centroid
/// learnt from fewer rows fit the rows that follow poorly.
pub const CODES_FROM_ROWS: usize = 1_000;

/// Fixes binary's rotation, so that codes rebuilt from the same rows are the same.
const CODES_SEED: u64 = 0x5155_4956_4552;

/// Builds an index's `codes` of `quant` anew from its rows (every slot's vector, in
/// slot order, `live` of them held) when they are due: first reaching
/// [`CODES_FROM_ROWS`] rows, or [`Codes::stale`] since the last build. One rule for
/// every index kind that keeps codes.
pub fn refresh<'r>(
    codes: &mut Option<Codes>,
    quant: Quantization,
    dim: usize,
    metric: Metric,
    live: usize,
    rows: impl Iterator<Item = &'r [f32]> + Clone,
) {
    let due = match codes {
        Some(c) => c.stale(),
        None => quant != Quantization::None && live >= CODES_FROM_ROWS,
    };
    if due {
        *codes = Codes::build(quant, dim, metric, CODES_SEED, rows);
    }
}

/// A coarse score of one slot: its approximate key and the most its exact key can
/// be (with RaBitQ's high probability for binary; `+inf` when the codec has no bound).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub slot: u32,
    pub key: f32,
    pub upper: f32,
}

enum Codec {
    Int8(int8::Int8),
    Binary(binary::Binary),
}

/// The codes of every slot of an index, in slot order, and what encodes them.
pub struct Codes {
    dim: usize,
    metric: Metric,
    /// Rows the parameters were learnt from.
    trained_on: usize,
    codec: Codec,
}

/// A query made ready for one codec: built once a query, then scores any slot.
pub struct Estimator<'a> {
    codes: &'a Codes,
    inner: Prepared,
}

/// A query made ready for one codec, owned: [`Codes::estimate`] scores slots with it,
/// and it holds no borrow of the codes, so an index may keep it while it changes
/// other parts of itself (a graph its links).
pub struct Prepared(Form);

enum Form {
    Int8(int8::Query),
    Binary(binary::Query),
}

impl Estimator<'_> {
    /// The approximate key of `slot` and the bound on its exact key.
    #[inline]
    pub fn estimate(&self, slot: usize) -> (f32, f32) {
        self.codes.estimate(&self.inner, slot)
    }
}

impl Codes {
    /// Codes of `rows` (prepared vectors of `dim`, in slot order), with parameters
    /// learnt from them; `None` for [`Quantization::None`]. `seed` fixes binary's
    /// rotation, so that a rebuild reproduces its codes.
    pub fn build<'r>(
        quant: Quantization,
        dim: usize,
        metric: Metric,
        seed: u64,
        rows: impl Iterator<Item = &'r [f32]> + Clone,
    ) -> Option<Codes> {
        let codec = match quant {
            Quantization::None => return None,
            Quantization::Int8 => Codec::Int8(int8::Int8::train(dim, metric, rows.clone())),
            Quantization::Binary => Codec::Binary(binary::Binary::train(dim, metric, seed, rows.clone())),
        };
        let mut codes = Codes {
            dim,
            metric,
            trained_on: 0,
            codec,
        };
        for row in rows {
            codes.push(row);
        }
        codes.trained_on = codes.len();
        Some(codes)
    }

    pub fn quantization(&self) -> Quantization {
        match self.codec {
            Codec::Int8(_) => Quantization::Int8,
            Codec::Binary(_) => Quantization::Binary,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Slots coded.
    pub fn len(&self) -> usize {
        match &self.codec {
            Codec::Int8(c) => c.len(),
            Codec::Binary(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once the rows have doubled since the parameters were learnt (or were
    /// learnt from none): then later rows may lie outside what was learnt, and an index
    /// should [`Codes::build`] anew from its rows.
    pub fn stale(&self) -> bool {
        !self.is_empty() && self.len() >= 2 * self.trained_on
    }

    /// Codes a new slot at the end.
    pub fn push(&mut self, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dim);
        match &mut self.codec {
            Codec::Int8(c) => c.push(v),
            Codec::Binary(c) => c.push(v),
        }
    }

    /// Codes `slot` anew, for a row updated in place or a vacant slot reused.
    pub fn replace(&mut self, slot: u32, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dim);
        match &mut self.codec {
            Codec::Int8(c) => c.replace(slot as usize, v),
            Codec::Binary(c) => c.replace(slot as usize, v),
        }
    }

    /// Removes `slot` by moving the last slot's code into it, as
    /// [`Rows::swap_remove`](crate::index::rows::Rows::swap_remove) moves rows.
    pub fn remove(&mut self, slot: u32) {
        match &mut self.codec {
            Codec::Int8(c) => c.swap_remove(slot as usize),
            Codec::Binary(c) => c.swap_remove(slot as usize),
        }
    }

    /// Bytes the codes occupy, per-slot factors included, parameters excluded: what a
    /// scan over them reads, the figure users see beside the f32 rows' bytes.
    pub fn bytes(&self) -> usize {
        self.len() * self.bytes_per_slot()
    }

    /// Bytes of one slot's code and factors.
    pub fn bytes_per_slot(&self) -> usize {
        match &self.codec {
            Codec::Int8(c) => c.bytes_per_slot(),
            Codec::Binary(c) => c.bytes_per_slot(),
        }
    }

    /// `query` (prepared for the metric) made ready to score slots.
    pub fn estimator(&self, query: &[f32]) -> Estimator<'_> {
        Estimator {
            codes: self,
            inner: self.prepare(query),
        }
    }

    /// `query` (prepared for the metric) made ready to score slots, owned.
    pub fn prepare(&self, query: &[f32]) -> Prepared {
        debug_assert_eq!(query.len(), self.dim);
        Prepared(match &self.codec {
            Codec::Int8(c) => Form::Int8(c.query(query)),
            Codec::Binary(c) => Form::Binary(c.query(query)),
        })
    }

    /// The approximate keys of two slots for a query [`Codes::prepare`]d by these
    /// codes, the same as [`Codes::estimate`]'s: a graph walk takes neighbours in pairs.
    #[inline]
    pub fn estimate_pair(&self, query: &Prepared, slots: [usize; 2]) -> [f32; 2] {
        match (&self.codec, &query.0) {
            (Codec::Int8(c), Form::Int8(q)) => c.key_pair(q, slots),
            (Codec::Binary(c), Form::Binary(q)) => slots.map(|s| c.key(q, s).0),
            _ => unreachable!("a query is prepared by its own codes"),
        }
    }

    /// The approximate key of `slot` for a query [`Codes::prepare`]d by these codes, and
    /// the bound on its exact key.
    #[inline]
    pub fn estimate(&self, query: &Prepared, slot: usize) -> (f32, f32) {
        match (&self.codec, &query.0) {
            (Codec::Int8(c), Form::Int8(q)) => (c.key(q, slot), f32::INFINITY),
            (Codec::Binary(c), Form::Binary(q)) => c.key(q, slot),
            _ => unreachable!("a query is prepared by its own codes"),
        }
    }

    /// The `n` slots with the largest approximate keys, best first: an exact scan over
    /// the codes.
    pub fn coarse_top(&self, query: &[f32], n: usize) -> Vec<Estimate> {
        self.coarse_top_where(query, n, |_| true)
    }

    /// [`Codes::coarse_top`] over the slots `keep` accepts (live rows that pass a
    /// filter, say).
    pub fn coarse_top_where(&self, query: &[f32], n: usize, keep: impl Fn(usize) -> bool) -> Vec<Estimate> {
        if n == 0 {
            return Vec::new();
        }
        let prepared = self.prepare(query);
        let mut list = Shortlist::new(n);
        match (&self.codec, &prepared.0) {
            (Codec::Binary(c), Form::Binary(q)) => c.scan(q, |slot, key, upper| list.offer(slot, key, upper, &keep)),
            _ => (0..self.len()).for_each(|slot| {
                let (key, upper) = self.estimate(&prepared, slot);
                list.offer(slot, key, upper, &keep);
            }),
        }
        list.into_sorted()
    }

    /// The `k` best of `candidates` by their exact keys (computed on `row(slot)`, the
    /// full prepared vector, with the same kernels as an exact scan, so scores match it
    /// bit for bit), best first, ties broken by id as [`TopK`] does. A candidate whose
    /// bound cannot reach the k-th exact key found so far is not scored.
    pub fn rerank<'r>(
        &self,
        query: &[f32],
        candidates: &[Estimate],
        k: usize,
        ids: &[Id],
        row: impl Fn(usize) -> &'r [f32],
    ) -> Vec<Candidate> {
        let mut top = TopK::new(k, ids);
        for c in candidates {
            if c.upper < top.floor() {
                continue;
            }
            let r = row(c.slot as usize);
            let key = match self.metric {
                Metric::Cosine | Metric::Dot => kernels::dot(query, r),
                Metric::Euclidean => -kernels::l2_squared(query, r),
            };
            top.push(Candidate { key, slot: c.slot });
        }
        top.into_sorted()
    }

    /// The codes as bytes, little-endian, for a segment: a header, the codec's
    /// parameters, every slot's code and factors, and an xxh3-64 of all before it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.bytes() + 8);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.quantization().byte());
        out.push(metric_byte(self.metric));
        out.push(0);
        for n in [self.dim, self.len(), self.trained_on] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        match &self.codec {
            Codec::Int8(c) => c.write(&mut out),
            Codec::Binary(c) => c.write(&mut out),
        }
        let sum = xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Codes read back from [`Codes::to_bytes`]. Damaged or cut bytes are a `STORAGE`
    /// error (the index then builds its codes from its rows); a newer format is
    /// `UNSUPPORTED_VERSION`. `dim` and `metric` must be the collection's.
    pub fn from_bytes(bytes: &[u8], dim: usize, metric: Metric) -> Result<Codes> {
        if bytes.len() < HEADER + 8 || &bytes[..4] != MAGIC {
            return Err(corrupt("not quantized codes"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if xxh3_64(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
            return Err(corrupt("the checksum does not match the bytes"));
        }
        if bytes[4] != VERSION {
            return Err(Error::new(
                Code::UnsupportedVersion,
                format!("quantized codes of format {} are unknown to this build", bytes[4]),
            ));
        }
        let quant = match bytes[5] {
            1 => Quantization::Int8,
            2 => Quantization::Binary,
            q => {
                return Err(Error::new(
                    Code::UnsupportedVersion,
                    format!("quantization {q} is unknown to this build"),
                ))
            }
        };
        let mut r = Reader { bytes: body, at: 8 };
        let (d, n, trained_on) = (r.u32()? as usize, r.u32()? as usize, r.u32()? as usize);
        if bytes[6] != metric_byte(metric) || d != dim {
            return Err(corrupt("written for another dimension or metric"));
        }
        let codec = match quant {
            Quantization::Int8 => Codec::Int8(int8::Int8::read(dim, metric, n, &mut r)?),
            _ => Codec::Binary(binary::Binary::read(dim, metric, n, &mut r)?),
        };
        if r.at != body.len() {
            return Err(corrupt("bytes left over"));
        }
        Ok(Codes {
            dim,
            metric,
            trained_on,
            codec,
        })
    }
}

/// The `n` best estimates offered so far, kept as a buffer of up to `2n` that is cut
/// back to its best `n` by a selection whenever it fills (ties need no order,
/// re-ranking settles them): a push a candidate and a linear selection every `n`
/// pushes, where a heap took a sift down each.
struct Shortlist {
    items: Vec<Estimate>,
    n: usize,
    /// The key an estimate must beat: the `n`-th best of the last cut.
    floor: f32,
}

impl Shortlist {
    fn new(n: usize) -> Self {
        Shortlist {
            items: Vec::with_capacity(2 * n),
            n,
            floor: f32::NEG_INFINITY,
        }
    }

    /// Keeps `slot` if its key beats the floor and `keep` accepts it, and returns the
    /// floor. Always inlined into the scan, which calls it for every row: most fail the
    /// first test.
    #[inline(always)]
    fn offer(&mut self, slot: usize, key: f32, upper: f32, keep: &impl Fn(usize) -> bool) -> f32 {
        if key > self.floor && keep(slot) {
            self.items.push(Estimate {
                slot: slot as u32,
                key,
                upper,
            });
            if self.items.len() == 2 * self.n {
                self.cut();
            }
        }
        self.floor
    }

    /// Keeps the best `n`, and raises the floor to the worst of them.
    fn cut(&mut self) {
        if self.items.len() > self.n {
            self.items
                .select_nth_unstable_by(self.n - 1, |a, b| b.key.total_cmp(&a.key));
            self.items.truncate(self.n);
            self.floor = self.items[self.n - 1].key;
        }
    }

    /// The best `n`, best first, ties by slot.
    fn into_sorted(mut self) -> Vec<Estimate> {
        self.cut();
        self.items
            .sort_unstable_by(|a, b| b.key.total_cmp(&a.key).then(a.slot.cmp(&b.slot)));
        self.items
    }
}

const MAGIC: &[u8; 4] = b"QVQC";
/// The format version, the byte after the magic.
const VERSION: u8 = 1;
/// Magic, version, quantization, metric, a spare byte, then dim, slots and rows
/// trained on (u32 each).
const HEADER: usize = 20;

fn metric_byte(metric: Metric) -> u8 {
    match metric {
        Metric::Cosine => 0,
        Metric::Dot => 1,
        Metric::Euclidean => 2,
    }
}

fn corrupt(why: &str) -> Error {
    Error::new(Code::Storage, format!("quantized codes: {why}"))
}

/// Reads little-endian fields, every read checked against the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| corrupt("cut short"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let bytes = self.take(n.checked_mul(4).ok_or_else(|| corrupt("too large"))?)?;
        let mut out = Vec::with_capacity(n);
        crate::store::read_f32(bytes, &mut out);
        Ok(out)
    }

    fn u64s(&mut self, n: usize) -> Result<Vec<u64>> {
        let bytes = self.take(n.checked_mul(8).ok_or_else(|| corrupt("too large"))?)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect())
    }
}

fn write_f32s(out: &mut Vec<u8>, v: &[f32]) {
    out.extend_from_slice(bytemuck::cast_slice(v));
}

#[cfg(test)]
mod tests;
