//! The free functions of the JS API.

use crate::args::integer;
use crate::to_js;
use quiver::{Code, Error, Metric, MAX_DIM, MAX_EF, MAX_FETCH_K, MAX_ID_BYTES, MAX_K, MAX_METADATA_BYTES};
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

/// The core's limits, `{maxK, maxEf, maxFetchK, maxDim, maxIdBytes, maxMetadataBytes}`: for JS to check
/// the ones it validates against before a call.
#[wasm_bindgen]
pub fn limits() -> Result<js_sys::Object, JsValue> {
    let out = js_sys::Object::new();
    for (key, value) in [
        ("maxK", MAX_K),
        ("maxEf", MAX_EF),
        ("maxFetchK", MAX_FETCH_K),
        ("maxDim", MAX_DIM),
        ("maxIdBytes", MAX_ID_BYTES),
        ("maxMetadataBytes", MAX_METADATA_BYTES),
    ] {
        js_sys::Reflect::set(&out, &key.into(), &(value as f64).into())?;
    }
    Ok(out)
}

/// MMR's picks among a search's candidates (`vectors` back to back, as `Db.candidates`
/// gives them, with their `scores`): at most `k` positions into them, in picking order.
#[wasm_bindgen]
pub fn mmr(metric: &str, vectors: &[f32], scores: &[f32], k: f64, lambda: f64) -> Result<Vec<u32>, JsValue> {
    let m = Metric::parse(metric, "metric").map_err(to_js)?;
    let k = integer(k, "k", 1, MAX_K as u64).map_err(to_js)?;
    let picks = quiver::mmr::select(m, vectors, scores, k as usize, lambda as f32).map_err(to_js)?;
    Ok(picks.into_iter().map(|i| i as u32).collect())
}

/// One sync frame's bytes for a message the page sends (see [`crate::messages::encode`]):
/// `message` is JSON text, `vectors` the ops' vectors back to back.
#[wasm_bindgen(js_name = encodeFrame)]
pub fn encode_frame(message: &str, vectors: &[f32]) -> Result<Vec<u8>, JsValue> {
    let m = crate::args::parse_json(message, "message").map_err(to_js)?;
    crate::messages::encode(&m, vectors).map_err(to_js)
}

/// A frame from the relay as `{message: JSON text, vectors: Float32Array}` (see
/// [`crate::messages::decode`]).
#[wasm_bindgen(js_name = decodeFrame)]
pub fn decode_frame(bytes: &[u8]) -> Result<js_sys::Object, JsValue> {
    let (message, vectors) = crate::messages::decode(bytes).map_err(to_js)?;
    columns(&message, &vectors)
}

/// `{message, vectors}`: a JSON head and the floats that go with it.
pub(crate) fn columns(head: &serde_json::Value, vectors: &[f32]) -> Result<js_sys::Object, JsValue> {
    let out = js_sys::Object::new();
    js_sys::Reflect::set(&out, &"message".into(), &head.to_string().into())?;
    js_sys::Reflect::set(&out, &"vectors".into(), &js_sys::Float32Array::from(vectors).into())?;
    Ok(out)
}
