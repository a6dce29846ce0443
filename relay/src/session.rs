//! One site's session with the relay, whatever carries its frames: hello, the backlog,
//! then pushes acked once durable and the room's other ops as they come.
//!
//! The transport decodes frames into [`Incoming`] on its own task and writes the
//! frames this module encodes through [`Outgoing`]; [`run`] returns the reason the
//! session ended, which it has already sent when the peer should hear it.

use crate::hub::{Batch, Hub, Member};
use crate::log::{Appended, Entry};
use crate::token::Secret;
use futures_util::future::BoxFuture;
use quiver::sync::wire::{self, Ack, Closing, Message, Reason, Welcome};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// How long a new session may take to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of ops per Ops frame the relay sends: under [`wire::MAX_FRAME_BYTES`] with
/// room for the frame's own fields.
const OPS_FRAME_BUDGET: usize = wire::MAX_FRAME_BYTES - 64;

/// What the transport read.
pub enum Incoming {
    Message(Message),
    /// Bytes that are not a frame; the session closes with the matching reason.
    Bad(quiver::Error),
    /// The peer went away.
    Gone,
}

/// Where the session's frames go.
pub trait Outgoing: Send {
    fn send<'a>(&'a mut self, frame: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>>;
}

/// What every session shares.
pub struct Shared {
    pub hub: Arc<Hub>,
    pub secret: Secret,
    /// Turns true when the relay stops.
    pub stopping: watch::Receiver<bool>,
}

fn closing(reason: Reason, message: impl Into<String>) -> Closing {
    Closing {
        reason,
        message: message.into(),
    }
}

/// Resolves once the relay is stopping.
pub async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs session `id` to its end; returns why it ended.
pub async fn run(shared: &Shared, id: u64, rx: &mut mpsc::Receiver<Incoming>, out: &mut dyn Outgoing) -> Closing {
    let mut stopping = shared.stopping.clone();
    let first = tokio::select! {
        m = tokio::time::timeout(HELLO_TIMEOUT, rx.recv()) => m,
        _ = stopped(&mut stopping) => return say(out, Last::Close, closing(Reason::ShuttingDown, "the relay is stopping")).await,
    };
    let hello = match first {
        Err(_) => return say(out, Last::Close, closing(Reason::Timeout, "no hello within 10 s")).await,
        Ok(None | Some(Incoming::Gone)) => return closing(Reason::Normal, "gone before hello"),
        Ok(Some(Incoming::Bad(e))) => return say(out, Last::Refused, closing(Reason::for_error(&e), e.message)).await,
        Ok(Some(Incoming::Message(Message::Hello(h)))) => h,
        Ok(Some(Incoming::Message(m))) => {
            let why = format!("{:?} before hello", m.kind());
            return say(out, Last::Refused, closing(Reason::Unexpected, why)).await;
        }
    };
    if !shared.secret.verify(&hello.room, &hello.token, now_secs()) {
        let why = format!("hello.token: does not open room {:?}", hello.room);
        return say(out, Last::Refused, closing(Reason::Unauthorized, why)).await;
    }
    let Some(member) = shared.hub.join(&hello.room) else {
        let why = format!("room {:?} has as many sessions as the relay allows", hello.room);
        return say(out, Last::Refused, closing(Reason::RoomFull, why)).await;
    };
    let mut s = Session {
        id,
        out,
        member,
        sent: 0,
        told: 0,
        durable: 0,
    };
    match s.serve(hello.since, rx, &mut stopping).await {
        Ok(end) => end,
        Err(end) => say(s.out, Last::Close, end).await,
    }
}

/// How a last frame is sent: Refused answers a hello, Close ends anything else.
#[derive(Clone, Copy)]
enum Last {
    Refused,
    Close,
}

/// Sends a last frame, best effort, and returns its reason.
async fn say(out: &mut dyn Outgoing, last: Last, c: Closing) -> Closing {
    let m = match last {
        Last::Refused => Message::Refused(c.clone()),
        Last::Close => Message::Close(c.clone()),
    };
    if let Ok(frame) = m.to_frame() {
        let _ = out.send(&frame).await;
    }
    c
}

struct Session<'a> {
    id: u64,
    out: &'a mut dyn Outgoing,
    member: Member,
    /// The last sequence whose op the site has (sent, or its own).
    sent: u64,
    /// The last `upto` sent: the site's cursor, which never passes what is durable.
    told: u64,
    /// The room's durable head as this session last heard it.
    durable: u64,
}

/// A session's end: `Ok` if already said (or the peer left), `Err` to be said.
type End = std::result::Result<Closing, Closing>;

impl Session<'_> {
    async fn serve(
        &mut self,
        since: u64,
        rx: &mut mpsc::Receiver<Incoming>,
        stopping: &mut watch::Receiver<bool>,
    ) -> End {
        let state = self.member.state().await.map_err(internal)?;
        // A site past the head holds ops from a log this relay no longer has; one below
        // the floor may miss deletes: both start over from the whole log.
        let snapshot = since > state.head || (since > 0 && since < state.floor);
        (self.sent, self.told) = if snapshot { (0, 0) } else { (since, since) };
        self.durable = state.head;
        self.send(Message::Welcome(Welcome {
            head: state.head,
            snapshot,
        }))
        .await?;
        self.catch_up(state.head, true).await?;
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    None | Some(Incoming::Gone) => return Ok(closing(Reason::Normal, "the peer left")),
                    Some(Incoming::Bad(e)) => return Err(closing(Reason::for_error(&e), e.message)),
                    Some(Incoming::Message(Message::Push(p))) => self.push(p).await?,
                    Some(Incoming::Message(Message::Close(c))) => return Ok(c),
                    Some(Incoming::Message(m)) => {
                        return Err(closing(Reason::Unexpected, format!("{:?} from a site after hello", m.kind())))
                    }
                },
                b = self.member.rx.recv() => match b {
                    Ok(batch) => self.fan_out(&batch).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.durable = self.member.state().await.map_err(internal)?.head;
                        self.catch_up(self.durable, false).await?
                    }
                    Err(broadcast::error::RecvError::Closed) => return Err(closing(Reason::Internal, "the room closed")),
                },
                _ = stopped(stopping) => return Err(closing(Reason::ShuttingDown, "the relay is stopping")),
            }
        }
    }

    async fn push(&mut self, push: wire::Push) -> Result<(), Closing> {
        let entries = push
            .ops
            .iter()
            .map(Entry::new)
            .collect::<quiver::Result<Vec<_>>>()
            .map_err(|e| closing(Reason::for_error(&e), e.message))?;
        match self.member.append(self.id, entries).await.map_err(internal)? {
            Appended::Logged { head } => {
                self.send(Message::Ack(Ack {
                    batch: push.batch,
                    seq: head,
                }))
                .await
            }
            Appended::Refused(reason, message) => Err(closing(reason, message)),
        }
    }

    /// Sends what the room published: new ops at once, if they follow on from what the
    /// site has, with its cursor at what is durable so far; the cursor alone once they
    /// are durable, after reading the log for any the site lacks. Under a stream of
    /// batches that last frame is left out while the next batch is already waiting:
    /// its frame carries the cursor, one frame a batch instead of two.
    async fn fan_out(&mut self, batch: &Batch) -> Result<(), Closing> {
        match batch {
            Batch::Sequenced { from, ops } => match ops.first() {
                // The site's own ops: it has them.
                Some(&(first, _)) if first == self.sent + 1 && *from == self.id => {
                    self.sent = ops[ops.len() - 1].0;
                    Ok(())
                }
                Some(&(first, _)) if first == self.sent + 1 => self.send_ops(ops, self.durable).await,
                // Sent already, or after a gap, which the log fills once durable.
                _ => Ok(()),
            },
            Batch::Durable { head } => {
                self.durable = self.durable.max(*head);
                if self.sent < *head || self.member.rx.is_empty() {
                    self.catch_up(*head, false).await?;
                }
                Ok(())
            }
            Batch::Failed => Err(closing(Reason::Internal, "the log failed to make a batch durable")),
        }
    }

    /// Sends the log after what the site has until that reaches `head` (durable) or the
    /// log runs out, then, if the site's cursor is still below `head` (compaction
    /// dropped the ops between, or they were sent before they were durable) or
    /// `announce` and nothing was sent, an empty Ops frame that tells the site where it
    /// stands.
    async fn catch_up(&mut self, head: u64, announce: bool) -> Result<(), Closing> {
        let mut said = false;
        while self.sent < head {
            let ops = self
                .member
                .read(self.sent, wire::MAX_BATCH_OPS, OPS_FRAME_BUDGET)
                .await
                .map_err(internal)?;
            let Some(&(last, _)) = ops.last() else {
                break;
            };
            self.send_ops(&ops, last).await?;
            said = true;
        }
        if head > self.told || (announce && !said) {
            self.send_ops(&[], head.max(self.told)).await?;
        }
        Ok(())
    }

    /// Sends ops in frames under the limits; the last frame's `upto` is `upto`, the
    /// others' their last op's sequence, neither past `upto`.
    async fn send_ops(&mut self, ops: &[(u64, Vec<u8>)], upto: u64) -> Result<(), Closing> {
        let mut rest = ops;
        loop {
            let (mut n, mut bytes) = (0, 0);
            while n < rest.len()
                && n < wire::MAX_BATCH_OPS
                && (n == 0 || bytes + rest[n].1.len() + 10 <= OPS_FRAME_BUDGET)
            {
                bytes += rest[n].1.len() + 10;
                n += 1;
            }
            let (now, later) = rest.split_at(n);
            let frame_upto = if later.is_empty() { upto } else { now[n - 1].0.min(upto) };
            let mut frame = Vec::with_capacity(bytes + 32);
            wire::encode_ops_raw(frame_upto, now.iter().map(|(s, b)| (*s, &b[..])), &mut frame)
                .map_err(|e| closing(Reason::Internal, e.message))?;
            self.out.send(&frame).await.map_err(gone)?;
            self.sent = self.sent.max(now.last().map_or(0, |&(s, _)| s)).max(frame_upto);
            self.told = self.told.max(frame_upto);
            rest = later;
            if rest.is_empty() {
                return Ok(());
            }
        }
    }

    async fn send(&mut self, m: Message) -> Result<(), Closing> {
        let frame = m.to_frame().map_err(|e| closing(Reason::Internal, e.message))?;
        self.out.send(&frame).await.map_err(gone)
    }
}

fn internal(e: crate::log::Error) -> Closing {
    closing(Reason::Internal, e.to_string())
}

/// The peer cannot be written to: the session ends without a last word.
fn gone(e: std::io::Error) -> Closing {
    closing(Reason::Normal, format!("the peer is gone: {e}"))
}
