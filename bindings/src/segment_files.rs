//! The worker's segment files (workers/segment-files.js), as the core's `SegmentFiles`.

use quiver::segment::SegmentFiles;
use quiver::{Code, Error, Result};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// A worker's segment files: `read(key, at, view)`, `write(key, at, view)`,
    /// `flush(key, length)`, `remove(key)`, each synchronous.
    pub type JsSegmentFiles;
    #[wasm_bindgen(method, catch)]
    fn read(this: &JsSegmentFiles, key: f64, at: f64, into: &js_sys::Uint8Array) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn write(this: &JsSegmentFiles, key: f64, at: f64, from: &js_sys::Uint8Array) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn flush(this: &JsSegmentFiles, key: f64, length: f64) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn remove(this: &JsSegmentFiles, key: f64) -> Result<(), JsValue>;
}

/// [`SegmentFiles`] over the worker's JS object. Reads land straight in wasm memory: a
/// view is made over the destination and filled there.
pub struct JsFiles(pub JsSegmentFiles);

fn storage_error(e: JsValue) -> Error {
    let message = js_sys::Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string());
    Error::new(
        Code::Storage,
        format!("segment file: {}", message.unwrap_or_else(|| format!("{e:?}"))),
    )
}

impl SegmentFiles for JsFiles {
    fn read(&mut self, key: i64, at: u64, buf: &mut [u8]) -> Result<()> {
        // SAFETY: nothing allocates between making the view and the call that fills it.
        let view = unsafe { js_sys::Uint8Array::view_mut_raw(buf.as_mut_ptr(), buf.len()) };
        self.0.read(key as f64, at as f64, &view).map_err(storage_error)
    }
    fn write(&mut self, key: i64, at: u64, buf: &[u8]) -> Result<()> {
        // SAFETY: as for read.
        let view = unsafe { js_sys::Uint8Array::view(buf) };
        self.0.write(key as f64, at as f64, &view).map_err(storage_error)
    }
    fn flush(&mut self, key: i64, len: u64) -> Result<()> {
        self.0.flush(key as f64, len as f64).map_err(storage_error)
    }
    fn remove(&mut self, key: i64) -> Result<()> {
        self.0.remove(key as f64).map_err(storage_error)
    }
}
