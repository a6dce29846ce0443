//! JS arguments into the core's types. Numbers arrive as `f64` and are checked here,
//! never wrapped: wasm-bindgen's own `u32` turns `2**32 + 3` into 3 without a word.
//! Plain Rust, so it is tested natively.

use quiver::index::Kind;
use quiver::quant::Quantization;
use quiver::{Error, Filter, Record, Result, SearchOptions, MAX_EF, MAX_FETCH_K, MAX_K};
use serde_json::Value;

/// A JS number given as argument `field` that must be an integer from `min` to `max`;
/// anything else (a fraction, NaN, an infinity, out of range) is `INVALID_ARGUMENT`.
pub fn integer(value: f64, field: &str, min: u64, max: u64) -> Result<u64> {
    if value.fract() == 0.0 && value >= min as f64 && value <= max as f64 {
        return Ok(value as u64);
    }
    let shown = match value {
        v if v.is_nan() => "NaN".to_owned(),
        f64::INFINITY => "Infinity".to_owned(),
        f64::NEG_INFINITY => "-Infinity".to_owned(),
        v => v.to_string(),
    };
    Err(Error::invalid(format!(
        "{field}: must be an integer from {min} to {max}, got {shown}"
    )))
}

/// JSON text given as argument `field`.
pub fn parse_json(text: &str, field: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::invalid(format!("{field}: not valid JSON: {e}")))
}

/// A caller's choice among a type's stable names, as `parse` reads them from storage:
/// any other name is INVALID_ARGUMENT naming `field` and the `names` it may take (from
/// storage an unknown name would mean a newer build, `UNSUPPORTED_VERSION`).
fn choice<T>(name: &str, field: &str, names: &[&str], parse: fn(&str, &str) -> Result<T>) -> Result<T> {
    parse(name, field).map_err(|_| {
        let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        let (last, rest) = names.split_last().expect("names to choose from");
        Error::invalid(format!("{field}: must be {} or {last}, got {name:?}", rest.join(", ")))
    })
}

/// The index a collection is created with: `"flat"`, `"hnsw"` or `"auto"`.
pub fn index_kind(name: &str) -> Result<Kind> {
    choice(name, "index", &["flat", "hnsw", "auto"], Kind::parse)
}

/// How a collection's vectors are quantized: `"none"`, `"int8"` or `"binary"`.
pub fn quantization(name: &str) -> Result<Quantization> {
    choice(name, "quantization", &["none", "int8", "binary"], Quantization::parse)
}

/// A search option that must be an integer from 1 to `max`, when given and not null.
fn count(v: &Value, field: &str, max: usize) -> Result<Option<usize>> {
    let Some(n) = v.get(field).filter(|n| !n.is_null()) else {
        return Ok(None);
    };
    n.as_u64()
        .filter(|n| (1..=max as u64).contains(n))
        .map(|n| Some(n as usize))
        .ok_or_else(|| Error::invalid(format!("{field}: must be an integer from 1 to {max}, got {n}")))
}

/// Search options from their JSON form: `{"k": 10, "filter": {...}, "threshold": 0.5,
/// "ef": 64, "fetch": 40}`.
pub fn search_options(text: &str) -> Result<SearchOptions> {
    let v = parse_json(text, "options")?;
    let mut opts = SearchOptions::default();
    if let Some(k) = count(&v, "k", MAX_K)? {
        opts.k = k;
    }
    if let Some(f) = v.get("filter").filter(|f| !f.is_null()) {
        opts.filter = Some(Filter::parse(f)?);
    }
    opts.ef = count(&v, "ef", MAX_EF)?;
    opts.fetch = count(&v, "fetch", MAX_FETCH_K)?;
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
            id: string(id, i, "id")?.ok_or_else(|| Error::invalid(format!("records[{i}].id: must be a string")))?,
            vector,
            metadata: Some(metadata),
            text: string(text, i, "text")?,
        });
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver::Code;

    fn message<T: std::fmt::Debug>(r: Result<T>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{}", e.message);
        e.message
    }

    #[test]
    fn numbers_out_of_range_or_not_integers_are_refused_as_given() {
        assert_eq!(integer(3.0, "dim", 1, 65_536).unwrap(), 3);
        assert_eq!(integer(65_536.0, "dim", 1, 65_536).unwrap(), 65_536);
        for (value, shown) in [
            (4_294_967_299.0, "4294967299"),
            (0.0, "0"),
            (-1.0, "-1"),
            (2.5, "2.5"),
            (65_537.0, "65537"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(
                message(integer(value, "dim", 1, 65_536)),
                format!("dim: must be an integer from 1 to 65536, got {shown}")
            );
        }
    }

    #[test]
    fn columns_become_records_and_their_faults_are_named() {
        let vectors = [1.0, 2.0, 3.0, 4.0, 5.0];
        let metadata = || Some(r#"[{"x": 1}, null]"#.to_owned());
        let batch = records(r#"["a", "b"]"#, &vectors, &[2, 3], metadata(), None).unwrap();
        assert_eq!((batch[0].id.as_str(), batch[1].id.as_str()), ("a", "b"));
        assert_eq!(batch[1].vector, &vectors[2..]);
        assert_eq!(batch[0].metadata, Some(serde_json::json!({"x": 1})));
        assert_eq!(
            message(records(r#"["a", null]"#, &vectors, &[2, 2], metadata(), None)),
            "vectors: lengths do not add up"
        );
        assert_eq!(
            message(records(r#"["a"]"#, &vectors, &[2, 3], None, None)),
            "ids: must be an array of 2 entries"
        );
        assert_eq!(
            message(records("[1, null]", &vectors, &[2, 3], None, None)),
            "records[0].id: must be a string"
        );
        assert_eq!(
            message(records(r#"["a", null]"#, &vectors, &[2, 3], None, None)),
            "records[1].id: must be a string"
        );
    }

    #[test]
    fn ef_fetch_the_index_kind_and_quantization_are_checked_and_named() {
        assert_eq!(search_options(r#"{"ef": 200}"#).unwrap().ef, Some(200));
        assert_eq!(search_options(r#"{"ef": null}"#).unwrap().ef, None);
        for ef in ["0", "-1", "100001", "1.5"] {
            assert_eq!(
                message(search_options(&format!(r#"{{"ef": {ef}}}"#))),
                format!("ef: must be an integer from 1 to 100000, got {ef}")
            );
        }
        assert_eq!(search_options(r#"{"fetch": 100}"#).unwrap().fetch, Some(100));
        for fetch in ["0", "10001", "2.5", r#""40""#] {
            assert_eq!(
                message(search_options(&format!(r#"{{"fetch": {fetch}}}"#))),
                format!("fetch: must be an integer from 1 to 10000, got {fetch}")
            );
        }
        assert_eq!(quantization("int8").unwrap().as_str(), "int8");
        assert_eq!(
            message(quantization("pq").map(|_| ())),
            r#"quantization: must be "none", "int8" or "binary", got "pq""#
        );
        assert_eq!(index_kind("hnsw").unwrap().as_str(), "hnsw");
        assert_eq!(index_kind("auto").unwrap().as_str(), "auto");
        assert_eq!(
            message(index_kind("ivf").map(|_| ())),
            r#"index: must be "flat", "hnsw" or "auto", got "ivf""#
        );
    }

    #[test]
    fn k_is_reported_as_given() {
        assert_eq!(search_options(r#"{"k": 7}"#).unwrap().k, 7);
        assert_eq!(search_options("{}").unwrap().k, 10);
        for (k, shown) in [
            ("-3", "-3"),
            ("0", "0"),
            ("10001", "10001"),
            ("2.5", "2.5"),
            ("1e30", "1e+30"),
            ("18446744073709551616", "1.8446744073709552e+19"),
            (r#""5""#, r#""5""#),
        ] {
            assert_eq!(
                message(search_options(&format!(r#"{{"k": {k}}}"#))),
                format!("k: must be an integer from 1 to 10000, got {shown}")
            );
        }
    }
}
