//! Search structures over the in-memory copy of a collection's vectors.

pub mod flat;

use std::rc::Rc;

/// A row's id, shared by the slot list and the id-to-slot map (one allocation a row).
pub type Id = Rc<str>;

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
        v.sort_by(|a, b| {
            b.key
                .total_cmp(&a.key)
                .then_with(|| ids[a.slot as usize].cmp(&ids[b.slot as usize]))
        });
        v
    }
}
