//! A database image held in JS as many `Uint8Array`s, read as one stream.

/// Reads JS `Uint8Array`s one after another, copying from each straight into the
/// caller's buffer.
pub struct Chunks {
    chunks: Vec<js_sys::Uint8Array>,
    next: usize,
    offset: u32,
}

impl Chunks {
    /// The `Uint8Array`s of `array`, in order.
    pub fn new(array: js_sys::Array) -> Chunks {
        Chunks {
            chunks: array.iter().map(js_sys::Uint8Array::from).collect(),
            next: 0,
            offset: 0,
        }
    }

    /// Bytes in all the chunks.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.length() as usize).sum()
    }
}

impl std::io::Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(chunk) = self.chunks.get(self.next) {
            let left = chunk.length() - self.offset;
            if left == 0 {
                self.next += 1;
                self.offset = 0;
                continue;
            }
            let n = left.min(u32::try_from(buf.len()).unwrap_or(u32::MAX));
            chunk
                .subarray(self.offset, self.offset + n)
                .copy_to(&mut buf[..n as usize]);
            self.offset += n;
            return Ok(n as usize);
        }
        Ok(0)
    }
}
