//! Conversions at the boundary: JS arguments into the core's types, core results and
//! errors into what JS receives (JSON text, and `Error` objects with a `code`).

use quiver::filter::Filter;
use quiver::index::Hit;
use quiver::store::Settings;
use quiver::{Error, Record, Result, SearchOptions, MAX_K};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

/// A core error as a JS `Error` whose `code` is the error's code string.
pub fn to_js(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code.as_str().into());
    err.into()
}

/// JSON text given as argument `field`.
pub fn parse_json(text: &str, field: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::invalid(format!("{field}: not valid JSON: {e}")))
}

/// A JSON array of strings given as argument `field`.
pub fn string_list(text: &str, field: &str) -> Result<Vec<String>> {
    let v = parse_json(text, field)?;
    let items = v
        .as_array()
        .ok_or_else(|| Error::invalid(format!("{field}: must be an array of strings")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::invalid(format!("{field}[{i}]: must be a string")))
        })
        .collect()
}

/// A collection's settings as JS reads them: `{name, dim, metric}`.
pub fn settings_json(s: Settings) -> String {
    json!({"name": s.name, "dim": s.dim, "metric": s.metric.as_str()}).to_string()
}

/// Search options from their JSON form: `{"k": 10, "filter": {...}, "threshold": 0.5}`.
pub fn search_options(text: &str) -> Result<SearchOptions> {
    let v = parse_json(text, "options")?;
    let mut opts = SearchOptions::default();
    if let Some(k) = v.get("k").filter(|k| !k.is_null()) {
        opts.k = k
            .as_u64()
            .map(|k| k.min(usize::MAX as u64) as usize)
            .or_else(|| k.as_i64().map(|_| 0))
            .ok_or_else(|| Error::invalid(format!("k: must be an integer from 1 to {MAX_K}, got {k}")))?;
    }
    if let Some(f) = v.get("filter").filter(|f| !f.is_null()) {
        opts.filter = Some(Filter::parse(f)?);
    }
    if let Some(t) = v.get("threshold").filter(|t| !t.is_null()) {
        opts.threshold = Some(
            t.as_f64()
                .ok_or_else(|| Error::invalid("threshold: must be a number"))? as f32,
        );
    }
    Ok(opts)
}

/// A batch from its columns, as `Db.upsert` takes them.
pub fn records<'a>(
    ids: &str,
    vectors: &'a [f32],
    lengths: &[u32],
    metadata: Option<String>,
    texts: Option<String>,
) -> Result<Vec<Record<'a>>> {
    let n = lengths.len();
    let column = |text: Option<&str>, field: &str| -> Result<Vec<Value>> {
        let Some(text) = text else {
            return Ok(vec![Value::Null; n]);
        };
        match parse_json(text, field)? {
            Value::Array(v) if v.len() == n => Ok(v),
            _ => Err(Error::invalid(format!("{field}: must be an array of {n} entries"))),
        }
    };
    let ids = column(Some(ids), "ids")?;
    let texts = column(texts.as_deref(), "texts")?;
    let metadata = column(metadata.as_deref(), "metadata")?;
    if lengths.iter().map(|&l| l as usize).sum::<usize>() != vectors.len() {
        return Err(Error::invalid("vectors: lengths do not add up"));
    }
    let string = |v: Value, i: usize, key: &str| -> Result<Option<String>> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(Error::invalid(format!("records[{i}].{key}: must be a string"))),
        }
    };
    let mut offset = 0;
    let mut batch = Vec::with_capacity(n);
    for (i, (((id, text), metadata), &len)) in ids.into_iter().zip(texts).zip(metadata).zip(lengths).enumerate() {
        let vector = &vectors[offset..offset + len as usize];
        offset += len as usize;
        batch.push(Record {
            id: string(id, i, "id")?,
            vector,
            metadata: Some(metadata),
            text: string(text, i, "text")?,
        });
    }
    Ok(batch)
}

/// Search hits as JS reads them: `[{id, score, metadata}]`, best first.
pub fn hits_json(hits: &[Hit]) -> Value {
    Value::Array(
        hits.iter()
            .map(|h| json!({"id": h.id, "score": h.score, "metadata": h.metadata}))
            .collect(),
    )
}
