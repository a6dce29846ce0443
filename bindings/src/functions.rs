//! The free functions of the JS API.

use crate::to_js;
use quiver::{Code, Error, Metric};
use wasm_bindgen::prelude::*;

/// The score of `a` against `b` under `metric`, as a search reports it.
#[wasm_bindgen]
pub fn distance(metric: &str, a: &[f32], b: &[f32]) -> Result<f32, JsValue> {
    let m = Metric::parse(metric, "metric").map_err(to_js)?;
    if a.len() != b.len() {
        return Err(to_js(Error::new(
            Code::DimensionMismatch,
            format!("b has {} dimensions, a has {}", b.len(), a.len()),
        )));
    }
    Ok(m.distance(a, b))
}

/// Which kernels this build runs: `"simd128"` or `"scalar"`.
#[wasm_bindgen]
pub fn build() -> String {
    quiver::kernels::BUILD.to_owned()
}
