//! The free functions of the JS API.

use crate::to_js;
use quiver::{Code, Error, Metric, MAX_DIM, MAX_EF, MAX_FETCH, MAX_ID_BYTES, MAX_K, MAX_METADATA_BYTES};
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

/// Every error code the core fails with, e.g. `"DIMENSION_MISMATCH"`: for JS to check
/// its own list against.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Vec<String> {
    Code::ALL.iter().map(|c| c.as_str().to_owned()).collect()
}

/// The core's limits, `{maxK, maxEf, maxFetch, maxDim, maxIdBytes, maxMetadataBytes}`: for JS to check
/// the ones it validates against before a call.
#[wasm_bindgen]
pub fn limits() -> Result<js_sys::Object, JsValue> {
    let out = js_sys::Object::new();
    for (key, value) in [
        ("maxK", MAX_K),
        ("maxEf", MAX_EF),
        ("maxFetch", MAX_FETCH),
        ("maxDim", MAX_DIM),
        ("maxIdBytes", MAX_ID_BYTES),
        ("maxMetadataBytes", MAX_METADATA_BYTES),
    ] {
        js_sys::Reflect::set(&out, &key.into(), &(value as f64).into())?;
    }
    Ok(out)
}
