//! One graph built by two workers: the owner of a collection's graph and a helper that
//! keeps a copy of it, so that a batch of inserts uses both cores.
//!
//! Inserting a node is a walk of the graph (most of the work, and read-only), choosing
//! its links among what the walk found (reads only the rows), then linking (the
//! writes). A batch of new nodes is taken in rounds: the two workers take a round's
//! nodes one at a time from a counter they share, walk for each on the graph as it
//! stood when the round began and choose its links, swap their choices, and both link
//! the whole round in the same order, so that the two copies stay the same bit for bit
//! and the next round's walks agree. Taking nodes as they go, rather than half a round
//! each, keeps either from waiting on the other's slower half (natively, 20k rows: the
//! owner waited 0.5 s of a 5.6 s build with halves). A node's walks cannot reach the
//! nodes of its own round linked before it, so its choice adds those as candidates,
//! scored as a walk would have scored them (as hnswlib's threads, which insert at once,
//! see each other's nodes late). A round is at most 1/32 of the nodes already linked,
//! so the graph a walk sees is nearly the one a one-at-a-time build would have:
//! `tests/shared.rs` checks that recall does not move. The helper starts a batch's
//! first round while the owner writes the batch to SQLite, and the owner joins it when
//! done.
//!
//! The helper's copy outlives a batch, so that the next batch sends only its new rows;
//! the owner counts its edits, and a copy that is not at the owner's count is sent
//! whole again first (after a delete, an update, a batch the owner linked alone).

use super::*;
use crate::error::Result;
use crate::index::{Batch, BLOCK_ROWS};
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{mpsc, Arc};

/// The other worker of a shared build, as a channel both sides use in step.
pub trait Peer {
    /// Gives the other side `mine` and returns what it gave; `None` once it is gone (it
    /// failed or stopped answering), after which the owner goes on alone.
    fn swap(&mut self, mine: &[u8]) -> Option<Vec<u8>>;

    /// Takes the next node of a round, the slots `start..end`, that neither side has
    /// taken: its slot, or `None` once the round is all taken. The counter both sides
    /// share (from 0, or the last batch's end) never passes `end`, and a round's first
    /// take moves it up to `start`: past the nodes linked one at a time, or those of
    /// batches it did not see.
    fn take(&mut self, start: u32, end: u32) -> Option<u32>;
}

/// A [`Peer`] on another thread of this process, joined by channels (see [`pair`]).
pub struct Thread {
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
    next: Arc<AtomicU32>,
}

/// Two [`Peer`]s joined to each other, for an owner and a helper on two threads; a
/// side whose other end is dropped (its thread ended) is gone.
pub fn pair() -> (Thread, Thread) {
    let (a_tx, b_rx) = mpsc::channel();
    let (b_tx, a_rx) = mpsc::channel();
    let next = Arc::new(AtomicU32::new(0));
    let side = |tx, rx, next| Thread { tx, rx, next };
    (side(a_tx, a_rx, next.clone()), side(b_tx, b_rx, next))
}

impl Peer for Thread {
    fn swap(&mut self, mine: &[u8]) -> Option<Vec<u8>> {
        self.tx.send(mine.to_vec()).ok()?;
        self.rx.recv().ok()
    }

    fn take(&mut self, start: u32, end: u32) -> Option<u32> {
        let mut seen = self.next.load(AtomicOrdering::Relaxed);
        loop {
            let next = seen.max(start);
            if next >= end {
                return None;
            }
            match self
                .next
                .compare_exchange(seen, next + 1, AtomicOrdering::Relaxed, AtomicOrdering::Relaxed)
            {
                Ok(_) => return Some(next),
                Err(now) => seen = now,
            }
        }
    }
}

/// A batch of fewer new rows is linked by the owner alone: the swaps would cost more
/// than the walks they share.
const MIN_SHARED_BATCH: usize = 64;
/// A round is at most one node in this many of those already linked...
const ROUND_SHARE: usize = 32;
/// ...and at most this many nodes, so that a round's swap stays a few hundred KB.
const MAX_ROUND: usize = 256;
/// Rounds shorter than this are not worth a swap: a small graph links one at a time.
const MIN_ROUND: usize = 16;
/// The owner's first word: a batch follows, or nothing does.
const GO: u32 = 1;
const STOP: u32 = 0;

/// Gives each graph made in this process its own high word of [`Hnsw::version`].
static LINEAGE: AtomicU64 = AtomicU64::new(1);

/// A fresh version for a new graph: its lineage, and no edits yet.
pub(super) fn new_version() -> u64 {
    LINEAGE.fetch_add(1, AtomicOrdering::Relaxed) << 32
}

/// A helper's copy of another worker's graph, under the key its caller gave it (which
/// names that worker's process and the collection).
pub struct Mirror {
    key: String,
    /// The owner's [`Hnsw::version`] this copy stands at.
    version: u64,
    graph: Hnsw,
}

impl Mirror {
    /// Rows the copy holds.
    pub fn rows(&self) -> usize {
        self.graph.rows.live()
    }

    #[cfg(test)]
    pub(super) fn graph(&self) -> &Hnsw {
        &self.graph
    }
}

/// Tells a waiting helper that no batch follows: what an owner that does not share
/// its batch sends instead of one.
pub fn decline(peer: &mut dyn Peer) {
    peer.swap(&STOP.to_le_bytes());
}

/// The helper's side of a batch an owner inserts with [`Index::upsert_batch`]: walks
/// for its share of each round's nodes on `mirror`, the copy it kept of the owner's
/// graph under `key` (replaced by the owner's graph when it is not in step), and links
/// every round as the owner does. The copy is dropped if the owner goes away mid-batch.
pub fn help(mirror: &mut Option<Mirror>, key: &str, peer: &mut dyn Peer) {
    let mut status = Vec::with_capacity(9);
    match mirror {
        Some(m) if m.key == key => {
            status.push(1);
            status.extend_from_slice(&m.version.to_le_bytes());
        }
        _ => status.extend_from_slice(&[0; 9]),
    }
    let Some(hello) = peer.swap(&status) else { return };
    if hello != GO.to_le_bytes() {
        return;
    }
    let kept = mirror.take().filter(|m| m.key == key);
    let Some(data) = peer.swap(&[]) else { return };
    let Some((mut copy, version, batch)) = read_batch(&data, kept, key) else {
        return;
    };
    let first = copy.graph.rows.slots() as u32;
    for (id, vector) in batch {
        copy.graph.append(&id, &vector, None);
    }
    let end = copy.graph.rows.slots() as u32;
    if copy.graph.link_shared(first..end, false, peer) {
        copy.version = version + 1;
        *mirror = Some(copy);
    }
}

impl Hnsw {
    /// [`Index::upsert_batch`] with a helper: a batch of new ids (none held, none twice,
    /// no deleted slot to reuse) of at least [`MIN_SHARED_BATCH`] rows is linked with
    /// the helper's walks; any other is inserted alone, as `upsert` would. The helper
    /// has the rows before `store` writes them, and starts the first round meanwhile.
    pub(super) fn upsert_shared(
        &mut self,
        rows: Batch,
        peer: &mut dyn Peer,
        store: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        let dim = self.rows.dim();
        let fresh = self.free.is_empty() && rows.ids.len() >= MIN_SHARED_BATCH && {
            let mut seen = std::collections::HashSet::with_capacity(rows.ids.len());
            rows.ids
                .iter()
                .all(|id| self.rows.slot(id).is_none() && seen.insert(&**id))
        };
        let status = peer.swap(&(if fresh { GO } else { STOP }).to_le_bytes());
        let Some(status) = status.filter(|s| fresh && s.len() == 9) else {
            store()?;
            rows.each(|id, v, m| self.upsert(id, v, m));
            return Ok(());
        };
        let helper_at = u64::from_le_bytes(status[1..9].try_into().expect("8 bytes"));
        let in_step = status[0] == 1 && helper_at == self.version && self.mirrored == Some(self.version);
        let mut data = Vec::new();
        data.push(u8::from(!in_step));
        data.extend_from_slice(&self.version.to_le_bytes());
        if !in_step {
            self.write_seed(&mut data);
        }
        write_rows(&mut data, dim, rows.ids.iter().map(|id| &**id), &[rows.vectors]);
        let sent = peer.swap(&data).is_some();
        // On an error here the helper is left waiting for the first round: the end of
        // the call tells it the owner is gone, and it drops its copy.
        store()?;
        let first = self.rows.slots() as u32;
        rows.each(|id, v, m| {
            self.append(id, v, m);
        });
        let end = self.rows.slots() as u32;
        let helped = if sent {
            self.link_shared(first..end, true, peer)
        } else {
            (first..end).for_each(|s| self.insert(s));
            false
        };
        self.version += 1;
        self.mirrored = helped.then_some(self.version);
        Ok(())
    }

    /// Links the new nodes in `slots`, appended in order, in rounds whose walks are
    /// shared with `peer`: each side takes the round's nodes one by one ([`Peer::take`])
    /// and chooses their links, and the two swap what they chose. Whether the peer
    /// stayed to the end; the owner (`lead`) goes on alone when it does not, choosing
    /// the links of the nodes the peer had taken, and the helper stops.
    fn link_shared(&mut self, slots: Range<u32>, lead: bool, peer: &mut dyn Peer) -> bool {
        let mut at = slots.start;
        let mut with_peer = true;
        while at < slots.end {
            let round = (at as usize / ROUND_SHARE).min(MAX_ROUND);
            if round < MIN_ROUND {
                self.insert(at);
                at += 1;
                continue;
            }
            let end = (at + round as u32).min(slots.end);
            let mut all: Vec<Option<Layers>> = vec![None; (end - at) as usize];
            if with_peer {
                let mut mine = Vec::new();
                while let Some(slot) = peer.take(at, end) {
                    let layers = self.choose_in_round(slot, at);
                    mine.push((slot, layers));
                }
                let theirs = peer
                    .swap(&write_chosen(&mine))
                    .and_then(|b| read_chosen(&b, self.params.m, self.rows.slots()));
                for (slot, layers) in mine {
                    all[(slot - at) as usize] = Some(layers);
                }
                match theirs.and_then(|theirs| self.fill(&all, at, theirs)) {
                    Some(whole) => all = whole,
                    None => with_peer = false,
                }
                if !with_peer && !lead {
                    return false;
                }
            }
            for (slot, layers) in (at..end).zip(all) {
                let layers = layers.unwrap_or_else(|| self.choose_in_round(slot, at));
                for (lc, links) in layers.iter().enumerate().rev() {
                    self.link(slot, links, lc);
                }
                let entry = self.entry.expect("linked after the entry point");
                if layers.len() > self.levels[entry as usize] as usize + 1 {
                    self.entry = Some(slot);
                }
            }
            at = end;
        }
        with_peer
    }

    /// A round's choices whole, in order: `mine` (for a round that began at `round`)
    /// with the other side's put where they belong; `None` unless theirs were exactly
    /// the nodes missing from mine, each with its layers' links.
    fn fill(&self, mine: &[Option<Layers>], round: u32, theirs: Vec<(u32, Layers)>) -> Option<Vec<Option<Layers>>> {
        let mut all = mine.to_vec();
        for (slot, layers) in theirs {
            let place = all.get_mut(slot.checked_sub(round)? as usize)?;
            if place.is_some() || layers.len() != self.levels[slot as usize] as usize + 1 {
                return None;
            }
            *place = Some(layers);
        }
        all.iter().all(Option::is_some).then_some(all)
    }

    /// The links of the node in `slot`, in a round that began at slot `round`, on each
    /// of its layers: chosen among what its walks found on the graph as it stood when
    /// the round began, and the round's nodes before it, which those walks could not
    /// reach.
    fn choose_in_round(&self, slot: u32, round: u32) -> Layers {
        let entry = self.entry.expect("a graph of hundreds of nodes has an entry point");
        let top = self.levels[entry as usize] as usize;
        let level = self.levels[slot as usize] as usize;
        let mut found = self.find(slot, level, top);
        found.resize(level + 1, Vec::new());
        let q = self.space.probe_slot(&self.rows, slot);
        found
            .into_iter()
            .enumerate()
            .map(|(lc, mut candidates)| {
                candidates.extend(
                    (round..slot)
                        .filter(|&s| self.levels[s as usize] as usize >= lc)
                        .map(|s| self.near(&q, s)),
                );
                candidates.sort_unstable_by(|a, b| b.cmp(a));
                candidates.truncate(self.params.ef_construction);
                self.choose(slot, &candidates)
            })
            .collect()
    }

    /// The graph as a helper restores it: its settings, its own bytes and its rows.
    fn write_seed(&self, out: &mut Vec<u8>) {
        for name in [self.metric.as_str(), self.space.quantization().as_str()] {
            write_bytes(out, name.as_bytes());
        }
        write_bytes(out, &self.own_bytes());
        let blocks: Vec<&[f32]> = self.rows.blocks().iter().map(Vec::as_slice).collect();
        write_rows(out, self.rows.dim(), self.rows.ids().iter().map(|id| &**id), &blocks);
    }
}

/// Reads the owner's batch message: the copy to work on (the one kept if the owner
/// says it is in step, else the graph it sent), the owner's version before the batch,
/// and the new rows. `None` if the message does not parse.
fn read_batch(data: &[u8], kept: Option<Mirror>, key: &str) -> Option<(Mirror, u64, Vec<NewRow>)> {
    let mut r = Reader(data);
    let seeded = r.take(1)?[0] == 1;
    let version = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let copy = if seeded {
        let metric = Metric::parse(std::str::from_utf8(r.bytes()?).ok()?, "metric").ok()?;
        let quant = Quantization::parse(std::str::from_utf8(r.bytes()?).ok()?, "quantization").ok()?;
        let own = r.bytes()?.to_vec();
        let (dim, rows) = r.rows()?;
        let (ids, vectors): (Vec<String>, Vec<Vec<f32>>) = rows.into_iter().unzip();
        let blocks = vectors.chunks(BLOCK_ROWS).map(|b| b.concat()).collect::<Vec<_>>();
        let n = ids.len();
        let parts = Parts {
            blocks: Cow::Owned(blocks),
            ids: Cow::Owned(ids.into_iter().map(Id::from).collect()),
            metadata: Cow::Owned(vec![None; n]),
            own: Cow::Owned(own),
        };
        let graph = Hnsw::restore(dim, metric, quant, parts)?;
        Mirror {
            key: key.to_string(),
            version,
            graph,
        }
    } else {
        kept.filter(|m| m.version == version)?
    };
    let (dim, batch) = r.rows()?;
    (dim == copy.graph.rows.dim()).then_some((copy, version, batch))
}

/// A node's links chosen on each of its layers, from layer 0 up.
type Layers = Vec<Vec<u32>>;

/// A row as a message carries it: its id and prepared vector.
type NewRow = (String, Vec<f32>);

/// Appends `b` with its length before it.
fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends rows: their count, the dimension, each id, then the vectors (given in
/// pieces) back to back.
fn write_rows<'a>(out: &mut Vec<u8>, dim: usize, ids: impl ExactSizeIterator<Item = &'a str>, vectors: &[&[f32]]) {
    out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    out.extend_from_slice(&(dim as u32).to_le_bytes());
    for id in ids {
        write_bytes(out, id.as_bytes());
    }
    let floats: usize = vectors.iter().map(|v| v.len()).sum();
    out.extend_from_slice(&((floats * 4) as u32).to_le_bytes());
    for v in vectors {
        out.extend_from_slice(bytemuck::cast_slice(v));
    }
}

/// The links a side chose, node by node: the node's slot and its number of layers,
/// then per layer the count of links and each link's slot.
fn write_chosen(chosen: &[(u32, Layers)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (slot, layers) in chosen {
        out.extend_from_slice(&slot.to_le_bytes());
        out.extend_from_slice(&(layers.len() as u32).to_le_bytes());
        for links in layers {
            out.extend_from_slice(&(links.len() as u32).to_le_bytes());
            out.extend_from_slice(bytemuck::cast_slice(links));
        }
    }
    out
}

/// [`write_chosen`]'s bytes, or `None` unless every layer has at most `m` links, every
/// one below `slots`.
fn read_chosen(b: &[u8], m: usize, slots: usize) -> Option<Vec<(u32, Layers)>> {
    let mut r = Reader(b);
    let mut chosen = Vec::new();
    while !r.0.is_empty() {
        let slot = r.u32()?;
        let layers = (0..r.u32()?.min(MAX_LEVEL as u32 + 1))
            .map(|_| {
                (0..r.u32().filter(|&n| n as usize <= m)?)
                    .map(|_| r.u32().filter(|&s| (s as usize) < slots))
                    .collect()
            })
            .collect::<Option<Vec<_>>>()?;
        chosen.push((slot, layers));
    }
    Some(chosen)
}

/// Reads the messages' little-endian fields in order; `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// [`write_rows`]' rows: the dimension, and each id with its vector.
    fn rows(&mut self) -> Option<(usize, Vec<NewRow>)> {
        let n = self.u32()? as usize;
        let dim = self.u32()? as usize;
        let ids = (0..n)
            .map(|_| Some(std::str::from_utf8(self.bytes()?).ok()?.to_string()))
            .collect::<Option<Vec<_>>>()?;
        let vectors = self.bytes()?;
        if vectors.len() != n * dim * 4 {
            return None;
        }
        let vectors: Vec<f32> = vectors
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let rows = ids
            .into_iter()
            .zip(vectors.chunks_exact(dim.max(1)).map(<[f32]>::to_vec))
            .collect();
        Some((dim, rows))
    }
}
