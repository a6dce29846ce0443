//! The relay's rooms: who is in each, and the fan-out of what each room logs.
//!
//! A room's appends are serialized and published on its broadcast channel in sequence
//! order, so a session that has sent up to `n` and next sees a batch starting at `n+1`
//! sends it as it is; one that sees a gap (it lagged, or the batch came from another
//! relay without its ops) reads the log from `n` instead. Fan-out thus never loses an
//! op, and a slow session never holds up the others.

use crate::log::{Appended, Entry, Log, Result, Sequenced, State};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Batches a session may fall behind by before it reads the log instead.
const FAN_OUT_QUEUE: usize = 256;

/// What a room logged: the ops (empty when only the new head is known) and the head.
#[derive(Debug)]
pub struct Batch {
    /// The session that pushed it, which is not sent its own ops back.
    pub from: u64,
    pub ops: Sequenced,
    pub head: u64,
}

struct Room {
    tx: broadcast::Sender<Arc<Batch>>,
    sessions: usize,
    /// Held across an append and its publication, so batches are published in order.
    order: Arc<tokio::sync::Mutex<()>>,
}

pub struct Hub {
    pub log: Arc<dyn Log>,
    rooms: Mutex<HashMap<String, Room>>,
    max_sessions: usize,
}

/// A session's place in a room; leaving the room when dropped.
pub struct Member {
    hub: Arc<Hub>,
    room: String,
    pub rx: broadcast::Receiver<Arc<Batch>>,
    tx: broadcast::Sender<Arc<Batch>>,
    order: Arc<tokio::sync::Mutex<()>>,
}

impl Hub {
    pub fn new(log: Arc<dyn Log>, max_sessions: usize) -> Arc<Hub> {
        Arc::new(Hub {
            log,
            rooms: Mutex::new(HashMap::new()),
            max_sessions,
        })
    }

    /// Joins `room`, or `None` if it has as many sessions as the relay allows.
    pub fn join(self: &Arc<Hub>, room: &str) -> Option<Member> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let r = rooms.entry(room.to_owned()).or_insert_with(|| Room {
            tx: broadcast::channel(FAN_OUT_QUEUE).0,
            sessions: 0,
            order: Arc::default(),
        });
        if r.sessions >= self.max_sessions {
            return None;
        }
        r.sessions += 1;
        Some(Member {
            hub: self.clone(),
            room: room.to_owned(),
            rx: r.tx.subscribe(),
            tx: r.tx.clone(),
            order: r.order.clone(),
        })
    }

    /// Tells a room's sessions that its log reached `head` elsewhere (another relay
    /// on the same store): they read what they lack from the log.
    pub fn advanced(&self, room: &str, head: u64) {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = rooms.get(room) {
            let _ = r.tx.send(Arc::new(Batch {
                from: 0,
                ops: Vec::new(),
                head,
            }));
        }
    }

    /// How many sessions are in rooms.
    pub fn sessions(&self) -> usize {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|r| r.sessions)
            .sum()
    }
}

impl Member {
    /// Logs a batch pushed by session `from` and publishes what was new.
    pub async fn append(&self, from: u64, batch: Vec<Entry>) -> Result<Appended> {
        let _order = self.order.lock().await;
        let appended = self.hub.log.append(&self.room, batch).await?;
        if let Appended::Logged { head, new } = &appended {
            if !new.is_empty() {
                let _ = self.tx.send(Arc::new(Batch {
                    from,
                    ops: new.clone(),
                    head: *head,
                }));
            }
        }
        Ok(appended)
    }

    pub async fn state(&self) -> Result<State> {
        self.hub.log.state(&self.room).await
    }

    pub async fn read(&self, since: u64, max_ops: usize, max_bytes: usize) -> Result<Sequenced> {
        self.hub.log.read(&self.room, since, max_ops, max_bytes).await
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut rooms = self.hub.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = rooms.get_mut(&self.room) {
            r.sessions -= 1;
            if r.sessions == 0 {
                rooms.remove(&self.room);
            }
        }
    }
}
