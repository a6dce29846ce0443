//! quiver-wasm: the wasm-bindgen surface of the `quiver` core, built by
//! `scripts/build.mjs` into `pkg/{simd,scalar}/quiver.js` for the store worker.
//!
//! It turns JS arguments into core calls and core results into JSON text, which the
//! worker posts on unchanged; no database logic lives here. Everything that knows the
//! browser is in this crate, so the core stays plain Rust, tested natively. On other
//! targets the crate is empty.

#[cfg(target_arch = "wasm32")]
mod chunks;
#[cfg(target_arch = "wasm32")]
mod convert;
#[cfg(target_arch = "wasm32")]
mod db;
#[cfg(target_arch = "wasm32")]
mod functions;
#[cfg(target_arch = "wasm32")]
mod heap;
#[cfg(target_arch = "wasm32")]
mod opfs;
#[cfg(target_arch = "wasm32")]
mod segment_files;
