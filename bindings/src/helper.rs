//! A second worker's share of a graph's inserts: the JS side of
//! `quiver::index::hnsw::help`, and the owner's end of the same swap.

use quiver::index::hnsw::{self, Mirror, Peer};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A [`Peer`] behind a JS function that takes this side's bytes (a `Uint8Array`) and
/// returns the other side's, or `undefined` once it is gone (js/mailbox.js).
pub struct JsPeer(pub js_sys::Function);

impl Peer for JsPeer {
    fn swap(&mut self, mine: &[u8]) -> Option<Vec<u8>> {
        let theirs = self.0.call1(&JsValue::NULL, &js_sys::Uint8Array::from(mine)).ok()?;
        theirs.dyn_into::<js_sys::Uint8Array>().ok().map(|b| b.to_vec())
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
    /// talking to it through `swap` (see [`JsPeer`]).
    pub fn help(&mut self, key: &str, swap: js_sys::Function) {
        hnsw::help(&mut self.mirror, key, &mut JsPeer(swap));
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
