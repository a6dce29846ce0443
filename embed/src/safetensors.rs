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
            .filter(|_| start <= end)
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
