//! A second worker's share of a graph's inserts: the JS side of
//! `quiver::index::hnsw::help`, and the owner's end of the same swap.

use quiver::index::hnsw::{self, Mirror, Peer};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// One side of js/mailbox.js's channel between two workers.
    pub type Mailbox;

    /// Sends this side's bytes; the other side's, or `undefined` once it is gone.
    #[wasm_bindgen(method)]
    fn swap(this: &Mailbox, mine: &[u8]) -> Option<js_sys::Uint8Array>;

    /// [`Peer::take`] on the counter the two sides share.
    #[wasm_bindgen(method)]
    fn take(this: &Mailbox, start: u32, end: u32) -> Option<u32>;
}

/// A [`Peer`] over a [`Mailbox`].
pub struct JsPeer<'a>(pub &'a Mailbox);

impl Peer for JsPeer<'_> {
    fn swap(&mut self, mine: &[u8]) -> Option<Vec<u8>> {
        self.0.swap(mine).map(|b| b.to_vec())
    }

    fn take(&mut self, start: u32, end: u32) -> Option<u32> {
        self.0.take(start, end)
    }
}

/// The copy of another worker's graph this worker helps build, kept between batches.
#[wasm_bindgen]
#[derive(Default)]
pub struct Helper {
    mirror: Option<Mirror>,
}

#[wasm_bindgen]
impl Helper {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Helper {
        Helper::default()
    }

    /// Takes this worker's part of the batch the owner of graph `key` is inserting,
    /// talking to it through `mailbox`.
    pub fn help(&mut self, key: &str, mailbox: &Mailbox) {
        hnsw::help(&mut self.mirror, key, &mut JsPeer(mailbox));
    }

    /// Rows in the copy it keeps (0 without one): a diagnostic.
    pub fn rows(&self) -> u32 {
        self.mirror.as_ref().map_or(0, |m| m.rows() as u32)
    }

    /// Drops the copy: the owner has stopped inserting for a while.
    pub fn forget(&mut self) {
        self.mirror = None;
    }
}
