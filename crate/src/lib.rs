//! quiver: a vector database for the browser, in plain Rust.
//!
//! SQLite ([`store`]) is the durable truth; each collection is searched from an
//! in-memory copy behind the [`index::Index`] trait ([`index::flat`] scans it with the
//! [`kernels`]). This crate knows nothing of JavaScript, so it builds and is tested
//! natively as well as for wasm32: the `quiver-wasm` crate (`bindings/`) is its
//! wasm-bindgen surface.

// Vectors are written to SQLite and segment files as their in-memory bytes, which the
// formats define as little-endian.
#[cfg(target_endian = "big")]
compile_error!("quiver's storage formats are little-endian; this target is big-endian");

pub mod db;
pub mod error;
pub mod filter;
pub mod index;
pub use quiver_kernels as kernels;
pub mod metric;
pub mod mmr;
pub mod quant;
pub mod segment;
pub mod store;
pub mod sync;
pub mod vector;

pub use db::{
    Database, Record, SearchOptions, Sizes, MAX_DIM, MAX_EF, MAX_FETCH_K, MAX_ID_BYTES, MAX_K, MAX_METADATA_BYTES,
};
pub use error::{Code, Error, Result};
pub use filter::Filter;
pub use metric::Metric;
