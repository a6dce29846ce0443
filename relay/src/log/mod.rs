//! A room's operation log: what the relay has acked, in the order it got them.
//!
//! Each op a room accepts gets the room's next sequence (1, 2, ...); a site that has
//! applied the ops up to a sequence reads the rest from there. The log is behind
//! [`Log`] so that one relay keeps it in SQLite ([`sqlite`]) and several share one in
//! PostgreSQL ([`postgres`]).

pub mod postgres;
pub mod sqlite;

use futures_util::future::BoxFuture;
use quiver::sync::wire::{self, Reason};
use quiver::sync::Op;

/// One op as the log keeps it: its stamp, for deduplication and compaction, and its
/// wire encoding ([`wire::encode_op`]), which is what sessions send.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub site: String,
    pub version: u64,
    /// The vector's dimension; `None` for a delete.
    pub dim: Option<usize>,
    pub bytes: Vec<u8>,
}

impl Entry {
    pub fn new(op: &Op) -> quiver::Result<Entry> {
        let mut bytes = Vec::with_capacity(wire::op_bytes(op));
        wire::encode_op(op, &mut bytes)?;
        Ok(Entry {
            id: op.id.clone(),
            site: op.site.clone(),
            version: op.version,
            dim: op.body.as_ref().map(|b| b.vector.len()),
            bytes,
        })
    }
}

/// Ops with their sequences, ascending.
pub type Sequenced = Vec<(u64, Vec<u8>)>;

/// Takes `(seq, op)` rows, in order, while they fit in about `max_bytes` (at least
/// one): how every store's [`Log::read`] bounds a page.
fn within_bytes<E>(
    rows: impl IntoIterator<Item = std::result::Result<(u64, Vec<u8>), E>>,
    max_bytes: usize,
) -> std::result::Result<Sequenced, E> {
    let (mut out, mut bytes) = (Vec::new(), 0);
    for row in rows {
        let (seq, op) = row?;
        // The op and, roughly, its sequence number and framing.
        bytes += op.len() + 10;
        if bytes > max_bytes && !out.is_empty() {
            break;
        }
        out.push((seq, op));
    }
    Ok(out)
}

/// What [`Log::append`] calls once a batch is sequenced and before it is durable, with
/// the ops that were not logged before and the sequences they got (the last is the
/// room's new head): the hub fans them out meanwhile, so the fsync is not on the way
/// from one site to the others.
pub type Sequencing = Box<dyn FnOnce(Sequenced) + Send>;

/// A room's row in a log: its last sequence, the dimension its upserts hold (set by
/// the first), and how many ops it keeps.
#[derive(Debug, Clone, Copy, Default)]
struct Room {
    head: i64,
    dim: Option<i64>,
    ops: i64,
}

/// A batch [`sequence`] numbered: its new ops, each with its sequence, and the room
/// after them.
type Numbered = (Vec<(i64, Entry)>, Room);

/// Numbers a batch for `room` before any of it is written, as every store's
/// [`Log::append`] does: the ops that are new by stamp (not `logged` already, nor
/// earlier in the batch), each with its sequence after the room's head, and the room
/// after them; or why the room refuses the whole batch (a vector of another dimension,
/// or more ops than it may keep).
fn sequence(
    name: &str,
    mut room: Room,
    batch: Vec<Entry>,
    limits: Limits,
    mut logged: impl FnMut(&Entry) -> Result<bool>,
) -> Result<std::result::Result<Numbered, Appended>> {
    let mut new = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, e) in batch.into_iter().enumerate() {
        if let Some(d) = e.dim.map(|d| d as i64) {
            match room.dim {
                Some(held) if held != d => {
                    let why = format!("push.ops[{i}].vector: dimension {d}, but room {name:?} holds {held}");
                    return Ok(Err(Appended::Refused(Reason::InvalidOps, why)));
                }
                _ => room.dim = Some(d),
            }
        }
        if !seen.insert((e.id.clone(), e.version, e.site.clone())) || logged(&e)? {
            continue;
        }
        room.head += 1;
        room.ops += 1;
        new.push((room.head, e));
    }
    if room.ops as u64 > limits.room_ops {
        let why = format!(
            "room {name:?}: {} ops, above the relay's limit of {}",
            room.ops, limits.room_ops
        );
        return Ok(Err(Appended::Refused(Reason::RoomFull, why)));
    }
    Ok(Ok((new, room)))
}

/// The sequenced ops as the hub fans them out.
fn fanned(new: &[(i64, Entry)]) -> Sequenced {
    new.iter().map(|(seq, e)| (*seq as u64, e.bytes.clone())).collect()
}

/// What appending a batch came to.
#[derive(Debug)]
pub enum Appended {
    /// The batch is durable; `head` is the room's sequence after it.
    Logged { head: u64 },
    /// The room does not take the batch, and logged none of it.
    Refused(Reason, String),
}

/// Where a room's log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State {
    /// The last sequence given; 0 for a new room.
    pub head: u64,
    /// The largest sequence of a tombstone compaction dropped: a site whose `since` is
    /// below it may hold a record deleted since, and must read the whole log instead.
    pub floor: u64,
}

/// The limits a log keeps rooms to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most ops a room keeps (after compaction); a batch past it is refused.
    pub room_ops: u64,
}

/// A store of rooms' op logs.
pub trait Log: Send + Sync + 'static {
    /// Logs a batch in one transaction, skipping ops already logged (same id, site and
    /// version), and returns only once it is durable; calls `sequenced` between, unless
    /// it refuses the batch. All upserts of a room have one dimension, set by its first.
    fn append<'a>(&'a self, room: &'a str, batch: Vec<Entry>, sequenced: Sequencing)
        -> BoxFuture<'a, Result<Appended>>;

    /// A room's ops after `since`, ascending, at most `max_ops` and about `max_bytes`
    /// (at least one op if there is one).
    fn read<'a>(
        &'a self,
        room: &'a str,
        since: u64,
        max_ops: usize,
        max_bytes: usize,
    ) -> BoxFuture<'a, Result<Sequenced>>;

    fn state<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<State>>;

    /// Keeps, of every id in every room, only its winning op (the snapshot a late
    /// joiner reads), and drops tombstones logged before `before_ms` (unix ms); returns
    /// how many ops went.
    fn compact(&self, before_ms: u64) -> BoxFuture<'_, Result<u64>>;

    /// The heads other relays sharing this store reach, as `(room, head)`, for the hub
    /// to fan out; `None` for a store only this relay writes. Taken once.
    fn remote_heads(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<(String, u64)>> {
        None
    }
}

/// A failure of the store under a log: a session that meets one closes with
/// [`Reason::Internal`], and the client retries.
#[derive(Debug, Clone)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "log: {}", self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
