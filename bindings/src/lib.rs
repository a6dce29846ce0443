//! quiver-wasm: the wasm-bindgen surface of the `quiver` core, built by
//! `scripts/build.mjs` into `pkg/{simd,scalar}/quiver.js` for the store worker.
//!
//! It turns JS arguments into core calls and core results into JSON text, which the
//! worker posts on unchanged; no database logic lives here. Everything that knows the
//! browser is in this crate, so the core stays plain Rust, tested natively. Natively
//! the crate is empty but for `args` under test.

#[cfg(any(target_arch = "wasm32", test))]
mod args;
#[cfg(target_arch = "wasm32")]
mod chunks;
#[cfg(target_arch = "wasm32")]
mod db;
#[cfg(target_arch = "wasm32")]
mod functions;
#[cfg(target_arch = "wasm32")]
mod heap;
#[cfg(target_arch = "wasm32")]
mod helper;
#[cfg(any(target_arch = "wasm32", test))]
mod messages;
#[cfg(target_arch = "wasm32")]
mod opfs;
#[cfg(target_arch = "wasm32")]
mod segment_files;

/// A core error as a JS `Error` whose `code` is the error's code string.
#[cfg(target_arch = "wasm32")]
fn to_js(e: quiver::Error) -> wasm_bindgen::JsValue {
    let err = js_sys::Error::new(&e.message);
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code.as_str().into());
    err.into()
}
