//! Frames read: a header checked as soon as it arrives, then a payload in which every
//! read checks what is left.

use super::*;

/// Reads one frame from the start of `buf`: `Ok(None)` if `buf` holds only part of
/// it (read more and call again), else the message and the bytes it took. A header
/// that is bad (version, type, a length over the limit) fails as soon as it is read,
/// before its payload arrives.
pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>> {
    let Some((kind, len)) = header(buf)? else {
        return Ok(None);
    };
    let end = HEADER_BYTES + len;
    if buf.len() < end {
        return Ok(None);
    }
    let mut r = Reader {
        buf: &buf[HEADER_BYTES..end],
        at: 0,
    };
    let msg = r.message(kind)?;
    if r.at != r.buf.len() {
        return Err(malformed(format!(
            "frame: {} bytes after the payload's end",
            r.buf.len() - r.at
        )));
    }
    Ok(Some((msg, end)))
}

/// Reads a buffer that must be exactly one frame, as a WebSocket message is.
pub fn decode_frame(buf: &[u8]) -> Result<Message> {
    match decode(buf)? {
        Some((msg, used)) if used == buf.len() => Ok(msg),
        Some((_, used)) => Err(malformed(format!("frame: {} bytes after its end", buf.len() - used))),
        None => Err(malformed(format!("frame: truncated at {} bytes", buf.len()))),
    }
}

/// A frame's type and payload length, checked, once its header is in `buf`.
fn header(buf: &[u8]) -> Result<Option<(Kind, usize)>> {
    if let Some(&v) = buf.first() {
        if v != VERSION {
            return Err(Error::new(
                Code::UnsupportedVersion,
                format!("frame.version: {v}, but this build speaks version {VERSION}"),
            ));
        }
    }
    if buf.len() < HEADER_BYTES {
        return Ok(None);
    }
    let kind = Kind::from_byte(buf[1]).ok_or_else(|| malformed(format!("frame.type: unknown type {}", buf[1])))?;
    let len = u32::from_le_bytes(buf[2..6].try_into().expect("4 bytes")) as usize;
    if len > MAX_FRAME_BYTES - HEADER_BYTES {
        return Err(too_large(format!(
            "frame: {} bytes, above the limit of {MAX_FRAME_BYTES}",
            len + HEADER_BYTES
        )));
    }
    Ok(Some((kind, len)))
}

/// A cursor over one frame's payload; every read checks what is left.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn message(&mut self, kind: Kind) -> Result<Message> {
        Ok(match kind {
            Kind::Hello => Message::Hello(Hello {
                room: self.str(MAX_ROOM_BYTES, "hello.room")?.to_owned(),
                token: self.str(MAX_TOKEN_BYTES, "hello.token")?.to_owned(),
                site: self.str(MAX_SITE_BYTES, "hello.site")?.to_owned(),
                since: self.varint("hello.since")?,
            }),
            Kind::Welcome => Message::Welcome(Welcome {
                head: self.varint("welcome.head")?,
                snapshot: match self.byte("welcome.snapshot")? {
                    0 => false,
                    1 => true,
                    b => return Err(malformed(format!("welcome.snapshot: {b}, not 0 or 1"))),
                },
            }),
            Kind::Refused | Kind::Close => {
                let closing = Closing {
                    reason: Reason::from_byte(self.byte("close.reason")?),
                    message: self.str(MAX_MESSAGE_BYTES, "close.message")?.to_owned(),
                };
                if kind == Kind::Refused {
                    Message::Refused(closing)
                } else {
                    Message::Close(closing)
                }
            }
            Kind::Push => {
                let batch = self.varint("push.batch")?;
                let count = self.batch_head("push")?;
                let mut ops = Vec::with_capacity(count.min(self.left() / 4));
                for i in 0..count {
                    ops.push(self.op(|| format!("push.ops[{i}]"))?);
                }
                Message::Push(Push { batch, ops })
            }
            Kind::Ack => Message::Ack(Ack {
                batch: self.varint("ack.batch")?,
                seq: self.varint("ack.seq")?,
            }),
            Kind::Ops => {
                let upto = self.varint("ops.upto")?;
                let count = self.batch_head("ops")?;
                let mut ops = Vec::with_capacity(count.min(self.left() / 5));
                for i in 0..count {
                    let seq = self.varint(&format!("ops.ops[{i}].seq"))?;
                    ops.push((self.op(|| format!("ops.ops[{i}]"))?, seq));
                }
                Message::Ops(Ops { upto, ops })
            }
        })
    }

    fn left(&self) -> usize {
        self.buf.len() - self.at
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(malformed(format!(
                "{field}: needs {n} bytes, the frame has {} left",
                self.left()
            )));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn byte(&mut self, field: &str) -> Result<u8> {
        Ok(self.take(1, field)?[0])
    }

    /// A LEB128 u64 in its shortest form (one value, one encoding).
    fn varint(&mut self, field: &str) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte(field)?;
            if i == 9 && b > 1 {
                return Err(malformed(format!("{field}: varint above 2^64")));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(malformed(format!("{field}: varint not in its shortest form")));
                }
                return Ok(v);
            }
        }
        Err(malformed(format!("{field}: varint longer than 10 bytes")))
    }

    fn len(&mut self, max: usize, field: &str) -> Result<usize> {
        let n = self.varint(field)?;
        if n > max as u64 {
            return Err(too_large(format!("{field}: {n} bytes, above the limit of {max}")));
        }
        Ok(n as usize)
    }

    fn str(&mut self, max: usize, field: &str) -> Result<&'a str> {
        let n = self.len(max, field)?;
        std::str::from_utf8(self.take(n, field)?).map_err(|_| malformed(format!("{field}: not UTF-8")))
    }

    fn batch_head(&mut self, field: &str) -> Result<usize> {
        let flags = self.byte(&format!("{field}.flags"))?;
        if flags != 0 {
            return Err(malformed(format!(
                "{field}.flags: {flags:#04x}, but version {VERSION} defines none"
            )));
        }
        let count = self.varint(&format!("{field}.count"))?;
        if count > MAX_BATCH_OPS as u64 {
            return Err(too_large(format!(
                "{field}.count: {count} ops, above the limit of {MAX_BATCH_OPS}"
            )));
        }
        Ok(count as usize)
    }

    fn op(&mut self, field: impl Fn() -> String) -> Result<Op> {
        let f = |what: &str| format!("{}.{what}", field());
        let flags = self.byte(&f("flags"))?;
        if flags & !(OP_UPSERT | OP_METADATA | OP_TEXT) != 0 || (flags & OP_UPSERT == 0 && flags != 0) {
            return Err(malformed(format!(
                "{}: flags {flags:#04x} name no kind of op",
                f("flags")
            )));
        }
        let id = self.str(MAX_ID_BYTES, &f("id"))?.to_owned();
        let version = self.varint(&f("version"))?;
        let site = self.str(MAX_SITE_BYTES, &f("site"))?.to_owned();
        let body = if flags & OP_UPSERT != 0 {
            let dim = self.len(MAX_DIM, &f("vector"))?;
            let bytes = self.take(4 * dim, &f("vector"))?;
            let vector = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect();
            let metadata = (flags & OP_METADATA != 0)
                .then(|| self.str(MAX_METADATA_BYTES, &f("metadata")).map(str::to_owned))
                .transpose()?;
            let text = (flags & OP_TEXT != 0)
                .then(|| self.str(MAX_FRAME_BYTES, &f("text")).map(str::to_owned))
                .transpose()?;
            Some(Body { vector, metadata, text })
        } else {
            None
        };
        let op = Op {
            id,
            version,
            site,
            body,
        };
        check_op(&op, &field)?;
        Ok(op)
    }
}
