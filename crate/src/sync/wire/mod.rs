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

mod decode;
mod encode;

pub use decode::{decode, decode_frame};
pub use encode::{encode_op, encode_ops_raw, op_bytes};

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
}

fn malformed(message: String) -> Error {
    Error::new(Code::MalformedFrame, message)
}

fn too_large(message: String) -> Error {
    Error::new(Code::FrameTooLarge, message)
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
