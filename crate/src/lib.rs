//! quiver: a vector database for the browser, in plain Rust.
//!
//! SQLite ([`store`]) is the durable truth; each collection is searched from an
//! in-memory copy behind the [`index::Index`] trait ([`index::flat`] scans it with the
//! [`kernels`]). Only [`bindings`] knows about JavaScript.

pub mod db;
pub mod error;
pub mod filter;
pub mod index;
pub mod kernels;
pub mod metric;
pub mod segment;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod bindings;

pub use db::{Database, Record, SearchOptions, MAX_DIM, MAX_ID_BYTES, MAX_K, MAX_METADATA_BYTES};
pub use error::{Code, Error, Result};
pub use filter::Filter;
pub use metric::Metric;
