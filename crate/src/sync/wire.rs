//! The sync wire format: the frames a site and a relay exchange, encoded and decoded.
//!
//! The relay (native) and the browser (through the wasm bindings) share this one codec,
//! so the format has one definition; `docs/SYNC.md` describes its bytes. A frame is a
//! 6-byte header (version, type, payload length as u32 LE) and a payload of integers as
//! LEB128 varints, strings as a varint length and UTF-8, vectors as raw f32 LE. Frames
//! are self-delimiting, so a byte stream (a WebTransport stream) carries them back to
//! back and a message transport (a WebSocket) carries one per message. Vectors are
//! sent uncompressed: f32 noise barely compresses, and a codec would weigh on the
//! wasm build; a batch's flags byte is where a later version can mark compression.
//!
//! Decoding never panics and never trusts a length: bad bytes are a
//! [`Code::MalformedFrame`], [`Code::FrameTooLarge`] or [`Code::UnsupportedVersion`]
//! error naming the field.

use super::{Body, Op};
use crate::error::{Code, Error, Result};
use crate::{MAX_DIM, MAX_ID_BYTES, MAX_METADATA_BYTES};

/// The protocol version: every frame's first byte.
pub const VERSION: u8 = 1;
/// Bytes of a frame's header: version (u8), type (u8), payload length (u32 LE).
pub const HEADER_BYTES: usize = 6;
/// Largest frame, header included: big enough for a batch of a few thousand 1,536-d
/// vectors, small enough that a relay can buffer one per session.
pub const MAX_FRAME_BYTES: usize = 8 << 20;
/// Most ops in one Push or Ops frame.
pub const MAX_BATCH_OPS: usize = 4096;
/// Longest room name, in UTF-8 bytes.
pub const MAX_ROOM_BYTES: usize = 128;
/// Longest token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 512;
/// Longest site id, in UTF-8 bytes.
pub const MAX_SITE_BYTES: usize = 128;
/// Longest close reason's message, in UTF-8 bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Op flag: the op is an upsert (a body follows); without it, a delete.
const OP_UPSERT: u8 = 1;
/// Op flag: the body has metadata.
const OP_METADATA: u8 = 2;
/// Op flag: the body has text.
const OP_TEXT: u8 = 4;

/// One frame's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Site to relay, first: which room, with what right, and from where to catch up.
    Hello(Hello),
    /// Relay to site: the hello was accepted; the backlog follows as Ops frames.
    Welcome(Welcome),
    /// Relay to site: the hello was refused; the session ends.
    Refused(Closing),
    /// Site to relay: ops to log and fan out.
    Push(Push),
    /// Relay to site: a push is durable.
    Ack(Ack),
    /// Relay to site: other sites' ops, from the backlog or as they arrive.
    Ops(Ops),
    /// Either way: the session ends, and why.
    Close(Closing),
}

/// The frame types, the second header byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Hello = 1,
    Welcome = 2,
    Refused = 3,
    Push = 4,
    Ack = 5,
    Ops = 6,
    Close = 7,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        [
            Kind::Hello,
            Kind::Welcome,
            Kind::Refused,
            Kind::Push,
            Kind::Ack,
            Kind::Ops,
            Kind::Close,
        ]
        .into_iter()
        .find(|k| *k as u8 == b)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub room: String,
    pub token: String,
    /// The site's id, for the relay's logs.
    pub site: String,
    /// The last relay sequence the site has applied (an Ops frame's `upto`); 0 for all.
    pub since: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Welcome {
    /// The room's latest sequence when the session began: the backlog is complete
    /// once an Ops frame's `upto` reaches it.
    pub head: u64,
    /// The backlog is the room's whole compacted log, not the ops after `since`, because
    /// tombstones after `since` were dropped: ids the site holds that the backlog lacks
    /// are gone.
    pub snapshot: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// The site's own number for the batch, echoed in its Ack.
    pub batch: u64,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub batch: u64,
    /// The room's sequence after the batch was logged: every op of it is at or below.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ops {
    /// Once this frame is applied, the site has every op of the room up to this
    /// sequence: its `since` for the next hello.
    pub upto: u64,
    /// Each op with the relay sequence it got, ascending.
    pub ops: Vec<(Op, u64)>,
}

/// A Refused or Close frame's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub reason: Reason,
    /// For people: what was wrong, naming the field.
    pub message: String,
}

/// Why a session ended; the byte is part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The site is done.
    Normal,
    /// The token does not open the room (or has expired).
    Unauthorized,
    /// A frame could not be decoded.
    MalformedFrame,
    /// A frame or batch was over a limit.
    TooLarge,
    /// The frame's version is not one the receiver speaks.
    UnsupportedVersion,
    /// A well-formed frame that does not belong here (a second Hello, a Push before one).
    Unexpected,
    /// The room has as many sessions, or ops, as the relay allows.
    RoomFull,
    /// Ops the room cannot hold: e.g. a vector whose dimension differs from the room's.
    InvalidOps,
    /// The relay is stopping; reconnect later.
    ShuttingDown,
    /// The relay failed (its storage); reconnect later.
    Internal,
    /// The session was idle, or did not say hello, for too long.
    Timeout,
    /// A reason this build does not know, from a newer peer.
    Other(u8),
}

impl Reason {
    const KNOWN: [Reason; 11] = [
        Reason::Normal,
        Reason::Unauthorized,
        Reason::MalformedFrame,
        Reason::TooLarge,
        Reason::UnsupportedVersion,
        Reason::Unexpected,
        Reason::RoomFull,
        Reason::InvalidOps,
        Reason::ShuttingDown,
        Reason::Internal,
        Reason::Timeout,
    ];

    pub fn byte(self) -> u8 {
        match self {
            Reason::Other(b) => b,
            known => Reason::KNOWN.iter().position(|r| *r == known).expect("a known reason") as u8,
        }
    }

    pub fn from_byte(b: u8) -> Reason {
        Reason::KNOWN.get(b as usize).copied().unwrap_or(Reason::Other(b))
    }

    /// The reason a peer gives for a frame that failed to decode with `e`.
    pub fn for_error(e: &Error) -> Reason {
        match e.code {
            Code::FrameTooLarge => Reason::TooLarge,
            Code::UnsupportedVersion => Reason::UnsupportedVersion,
            _ => Reason::MalformedFrame,
        }
    }
}

impl Message {
    pub fn kind(&self) -> Kind {
        match self {
            Message::Hello(_) => Kind::Hello,
            Message::Welcome(_) => Kind::Welcome,
            Message::Refused(_) => Kind::Refused,
            Message::Push(_) => Kind::Push,
            Message::Ack(_) => Kind::Ack,
            Message::Ops(_) => Kind::Ops,
            Message::Close(_) => Kind::Close,
        }
    }

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

fn malformed(message: String) -> Error {
    Error::new(Code::MalformedFrame, message)
}

fn too_large(message: String) -> Error {
    Error::new(Code::FrameTooLarge, message)
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

/// The limits an op must keep to on the wire, checked alike when encoding and decoding.
fn check_op(op: &Op, field: &impl Fn() -> String) -> Result<()> {
    op.check(field).map_err(|e| malformed(e.message))?;
    let long = |what: &str, len: usize, max: usize| {
        (len > max).then(|| too_large(format!("{}.{what}: {len} bytes, above the limit of {max}", field())))
    };
    let body = op.body.as_ref();
    let errors = [
        long("id", op.id.len(), MAX_ID_BYTES),
        long("site", op.site.len(), MAX_SITE_BYTES),
        body.and_then(|b| {
            long(
                "metadata",
                b.metadata.as_ref().map_or(0, String::len),
                MAX_METADATA_BYTES,
            )
        }),
    ];
    if let Some(e) = errors.into_iter().flatten().next() {
        return Err(e);
    }
    if let Some(b) = body {
        if b.vector.is_empty() || b.vector.len() > MAX_DIM {
            return Err(malformed(format!(
                "{}.vector: dimension {}, outside 1..={MAX_DIM}",
                field(),
                b.vector.len()
            )));
        }
        if let Some(i) = b.vector.iter().position(|x| !x.is_finite()) {
            return Err(malformed(format!("{}.vector[{i}]: not a finite number", field())));
        }
        if let Some(m) = &b.metadata {
            match serde_json::from_str::<serde_json::Value>(m) {
                Ok(v) if v.is_object() => {}
                _ => return Err(malformed(format!("{}.metadata: not a JSON object", field()))),
            }
        }
    }
    Ok(())
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
