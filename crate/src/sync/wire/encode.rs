//! Frames written: a message's header and payload, and the ops a relay sends on from
//! its log without decoding them.

use super::*;

impl Message {
    /// Appends this message as one frame to `out`; fails, leaving `out` as it was, if
    /// a field is over its limit or the frame over [`MAX_FRAME_BYTES`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.extend_from_slice(&[VERSION, self.kind() as u8, 0, 0, 0, 0]);
        let written = self.encode_payload(out);
        let len = out.len() - start;
        let checked = written.and_then(|()| {
            if len > MAX_FRAME_BYTES {
                Err(too_large(format!(
                    "frame: {len} bytes, above the limit of {MAX_FRAME_BYTES}"
                )))
            } else {
                Ok(())
            }
        });
        if let Err(e) = checked {
            out.truncate(start);
            return Err(e);
        }
        let payload = (len - HEADER_BYTES) as u32;
        out[start + 2..start + HEADER_BYTES].copy_from_slice(&payload.to_le_bytes());
        Ok(())
    }

    /// This message as one frame.
    pub fn to_frame(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    fn encode_payload(&self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Message::Hello(h) => {
                put_str(out, &h.room, MAX_ROOM_BYTES, "hello.room")?;
                put_str(out, &h.token, MAX_TOKEN_BYTES, "hello.token")?;
                put_str(out, &h.site, MAX_SITE_BYTES, "hello.site")?;
                put_varint(out, h.since);
            }
            Message::Welcome(w) => {
                put_varint(out, w.head);
                out.push(w.snapshot as u8);
            }
            Message::Refused(c) | Message::Close(c) => {
                out.push(c.reason.byte());
                put_str(out, &c.message, MAX_MESSAGE_BYTES, "close.message")?;
            }
            Message::Push(p) => {
                put_varint(out, p.batch);
                put_batch_head(out, p.ops.len(), "push.ops")?;
                for (i, op) in p.ops.iter().enumerate() {
                    put_op(out, op, || format!("push.ops[{i}]"))?;
                }
            }
            Message::Ack(a) => {
                put_varint(out, a.batch);
                put_varint(out, a.seq);
            }
            Message::Ops(o) => {
                put_varint(out, o.upto);
                put_batch_head(out, o.ops.len(), "ops.ops")?;
                for (i, (op, seq)) in o.ops.iter().enumerate() {
                    put_varint(out, *seq);
                    put_op(out, op, || format!("ops.ops[{i}]"))?;
                }
            }
        }
        Ok(())
    }
}

/// Appends an Ops frame built from ops already encoded with [`encode_op`], each with
/// its sequence: how a relay sends its log without decoding it. The caller keeps to
/// [`MAX_BATCH_OPS`]; the frame size is checked here.
pub fn encode_ops_raw<'a>(
    upto: u64,
    ops: impl ExactSizeIterator<Item = (u64, &'a [u8])>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[VERSION, Kind::Ops as u8, 0, 0, 0, 0]);
    put_varint(out, upto);
    if let Err(e) = put_batch_head(out, ops.len(), "ops.ops") {
        out.truncate(start);
        return Err(e);
    }
    for (seq, op) in ops {
        put_varint(out, seq);
        out.extend_from_slice(op);
    }
    let len = out.len() - start;
    if len > MAX_FRAME_BYTES {
        out.truncate(start);
        return Err(too_large(format!(
            "frame: {len} bytes, above the limit of {MAX_FRAME_BYTES}"
        )));
    }
    out[start + 2..start + HEADER_BYTES].copy_from_slice(&((len - HEADER_BYTES) as u32).to_le_bytes());
    Ok(())
}

/// Appends one op as Push and Ops frames carry it (without the Ops frame's sequence).
pub fn encode_op(op: &Op, out: &mut Vec<u8>) -> Result<()> {
    put_op(out, op, || "op".to_owned())
}

/// The bytes [`encode_op`] writes for `op`, plus room for its sequence in an Ops
/// frame: what a sender adds up to keep a frame under [`MAX_FRAME_BYTES`].
pub fn op_bytes(op: &Op) -> usize {
    let s = |s: &str| varint_len(s.len() as u64) + s.len();
    let body = op.body.as_ref().map_or(0, |b| {
        varint_len(b.vector.len() as u64)
            + 4 * b.vector.len()
            + b.metadata.as_deref().map_or(0, s)
            + b.text.as_deref().map_or(0, s)
    });
    10 + 1 + s(&op.id) + varint_len(op.version) + s(&op.site) + body
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str, max: usize, field: &str) -> Result<()> {
    if s.len() > max {
        return Err(too_large(format!(
            "{field}: {} bytes, above the limit of {max}",
            s.len()
        )));
    }
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_batch_head(out: &mut Vec<u8>, count: usize, field: &str) -> Result<()> {
    if count > MAX_BATCH_OPS {
        return Err(too_large(format!(
            "{field}: {count} ops, above the limit of {MAX_BATCH_OPS}"
        )));
    }
    // The batch's flags: none are defined in version 1 (bit 0 is kept for compression).
    out.push(0);
    put_varint(out, count as u64);
    Ok(())
}

fn put_op(out: &mut Vec<u8>, op: &Op, field: impl Fn() -> String) -> Result<()> {
    check_op(op, &field)?;
    let flags = match &op.body {
        None => 0,
        Some(b) => {
            OP_UPSERT | if b.metadata.is_some() { OP_METADATA } else { 0 } | if b.text.is_some() { OP_TEXT } else { 0 }
        }
    };
    out.push(flags);
    put_varint(out, op.id.len() as u64);
    out.extend_from_slice(op.id.as_bytes());
    put_varint(out, op.version);
    put_varint(out, op.site.len() as u64);
    out.extend_from_slice(op.site.as_bytes());
    if let Some(b) = &op.body {
        put_varint(out, b.vector.len() as u64);
        out.extend_from_slice(bytemuck::cast_slice(&b.vector));
        for s in [&b.metadata, &b.text].into_iter().flatten() {
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
    }
    Ok(())
}
