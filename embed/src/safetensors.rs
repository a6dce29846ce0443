//! Reads named tensors out of a safetensors file as f32.
//!
//! The format is an 8-byte little-endian header length, a JSON header naming each
//! tensor's dtype, shape and byte range, then the raw little-endian data. Weights may
//! be stored as F32, F16 (half the download) or BF16; the forward pass computes in f32,
//! so every tensor is widened on load.

use crate::Error;
use half::{bf16, f16};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// A parsed safetensors file, borrowing its bytes.
pub struct SafeTensors<'a> {
    entries: HashMap<String, Entry>,
    data: &'a [u8],
}

fn bad(message: impl Into<String>) -> Error {
    Error::Weights(message.into())
}

impl<'a> SafeTensors<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .ok_or_else(|| bad("shorter than a safetensors header"))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(8))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| bad(format!("header length {len} exceeds the file ({} bytes)", bytes.len())))?;
        let mut header: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..end]).map_err(|e| bad(format!("header is not JSON: {e}")))?;
        header.remove("__metadata__");
        let entries = header
            .into_iter()
            .map(|(name, value)| {
                let entry = Entry::deserialize(value).map_err(|e| bad(format!("tensor {name}: {e}")))?;
                Ok((name, entry))
            })
            .collect::<Result<_, Error>>()?;
        Ok(SafeTensors {
            entries,
            data: &bytes[end..],
        })
    }

    /// The tensor `name`, which must have `shape`, widened to f32 in row-major order.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, Error> {
        let entry = self.entries.get(name).ok_or_else(|| bad(format!("no tensor {name}")))?;
        if entry.shape != shape {
            return Err(bad(format!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                entry.shape
            )));
        }
        let [start, end] = entry.data_offsets;
        let raw = self
            .data
            .get(start..end)
            .ok_or_else(|| bad(format!("tensor {name}: bytes {start}..{end} lie outside the file")))?;
        let count: usize = shape.iter().product();
        let width = match entry.dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            other => return Err(bad(format!("tensor {name}: dtype {other} is not F32, F16 or BF16"))),
        };
        if raw.len() != count * width {
            return Err(bad(format!(
                "tensor {name}: {} bytes for {count} {} values",
                raw.len(),
                entry.dtype
            )));
        }
        Ok(match entry.dtype.as_str() {
            "F32" => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            "F16" => raw
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            _ => raw
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file of `tensors` (name, dtype, shape, raw bytes).
    fn file(tensors: &[(&str, &str, &[usize], Vec<u8>)]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
        let mut data = vec![];
        for (name, dtype, shape, bytes) in tensors {
            let entry = serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [data.len(), data.len() + bytes.len()]});
            header.insert((*name).into(), entry);
            data.extend_from_slice(bytes);
        }
        let json = serde_json::to_vec(&header).unwrap();
        [(json.len() as u64).to_le_bytes().to_vec(), json, data].concat()
    }

    #[test]
    fn reads_f32_and_widens_f16_and_bf16() {
        let f32s = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16s = [f16::from_f32(0.5), f16::from_f32(-3.0)]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bf16s = [bf16::from_f32(4.0)].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = file(&[
            ("a", "F32", &[2], f32s),
            ("b", "F16", &[1, 2], f16s),
            ("c", "BF16", &[1], bf16s),
        ]);
        let st = SafeTensors::parse(&bytes).unwrap();
        assert_eq!(st.f32("a", &[2]).unwrap(), [1.5, -2.0]);
        assert_eq!(st.f32("b", &[1, 2]).unwrap(), [0.5, -3.0]);
        assert_eq!(st.f32("c", &[1]).unwrap(), [4.0]);
    }

    #[test]
    fn refuses_what_is_not_the_tensor_asked_for() {
        let bytes = file(&[
            ("a", "F32", &[2], vec![0; 8]),
            ("i", "I64", &[1], vec![0; 8]),
            ("short", "F32", &[4], vec![0; 8]),
        ]);
        let st = SafeTensors::parse(&bytes).unwrap();
        let message = |r: Result<Vec<f32>, Error>| match r {
            Err(Error::Weights(m)) => m,
            other => panic!("expected a weights error, got {other:?}"),
        };
        assert!(message(st.f32("missing", &[2])).contains("no tensor missing"));
        assert!(message(st.f32("a", &[3])).contains("shape [2], expected [3]"));
        assert!(message(st.f32("i", &[1])).contains("dtype I64"));
        assert!(message(st.f32("short", &[4])).contains("8 bytes for 4 F32 values"));
    }

    #[test]
    fn refuses_a_damaged_file() {
        assert!(matches!(SafeTensors::parse(b"abc"), Err(Error::Weights(_))));
        let mut bytes = file(&[("a", "F32", &[2], vec![0; 8])]);
        bytes[0] = 0xff;
        assert!(matches!(SafeTensors::parse(&bytes), Err(Error::Weights(m)) if m.contains("exceeds the file")));
        let bytes = [8u64.to_le_bytes().to_vec(), b"not json".to_vec()].concat();
        assert!(matches!(SafeTensors::parse(&bytes), Err(Error::Weights(m)) if m.contains("not JSON")));
    }
}
