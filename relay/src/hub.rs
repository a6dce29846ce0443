//! The relay's rooms: who is in each, and the fan-out of what each room logs.
//!
//! A room's appends are serialized and published on its broadcast channel in sequence
//! order: first a batch's new ops as soon as they have their sequences, then, once the
//! log has made them durable, the new durable head. A session sends the ops at once and
//! moves the site's cursor only with the durable head, so the fsync is off the path
//! between sites and a relay that dies before it lets a site resume from what is
//! durable (the ops it got early are applied again harmlessly). A session that has sent
//! up to `n` and next sees ops starting at `n+1` sends them as they are; one that sees a
//! gap (it lagged, or the head moved on another relay) reads the log from `n` once the
//! head is durable. Fan-out thus never loses an op, and a slow session never holds up
//! the others.

use crate::log::{Appended, Entry, Log, Result, Sequenced, State};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Batches a session may fall behind by before it reads the log instead.
const FAN_OUT_QUEUE: usize = 256;

/// What a room's channel carries.
#[derive(Debug)]
pub enum Batch {
    /// Ops with their sequences, not yet durable, never empty; `from` is the session
    /// that pushed them, which is not sent its own ops back.
    Sequenced { from: u64, ops: Sequenced },
    /// The room's log is durable up to `head`.
    Durable { head: u64 },
    /// The log failed to make ops it had sequenced durable: their sequences may be
    /// given again, so every session of the room ends, and its site resumes from
    /// what is durable.
    Failed,
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
            let _ = r.tx.send(Arc::new(Batch::Durable { head }));
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
    /// Logs a batch pushed by session `from`, publishing its new ops as soon as they
    /// are sequenced and the head once they are durable.
    pub async fn append(&self, from: u64, batch: Vec<Entry>) -> Result<Appended> {
        let _order = self.order.lock().await;
        let published = Arc::new(AtomicBool::new(false));
        let (tx, flag) = (self.tx.clone(), published.clone());
        let sequenced = Box::new(move |ops: Sequenced| {
            if !ops.is_empty() {
                flag.store(true, Ordering::Relaxed);
                let _ = tx.send(Arc::new(Batch::Sequenced { from, ops }));
            }
        });
        let appended = self.hub.log.append(&self.room, batch, sequenced).await;
        let published = published.load(Ordering::Relaxed);
        match &appended {
            Ok(Appended::Logged { head }) if published => {
                let _ = self.tx.send(Arc::new(Batch::Durable { head: *head }));
            }
            Err(_) if published => {
                let _ = self.tx.send(Arc::new(Batch::Failed));
            }
            _ => {}
        }
        appended
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Error, Sequencing};
    use futures_util::future::BoxFuture;

    /// A store that sequences every batch from 1 and then fails to make it durable,
    /// or not, as told: what a full disk does between the two.
    struct Store {
        durable: bool,
    }

    impl Log for Store {
        fn append<'a>(
            &'a self,
            _: &'a str,
            batch: Vec<Entry>,
            sequenced: Sequencing,
        ) -> BoxFuture<'a, Result<Appended>> {
            let ops: Sequenced = batch.into_iter().zip(1..).map(|(e, seq)| (seq, e.bytes)).collect();
            let head = ops.len() as u64;
            sequenced(ops);
            let durable = self.durable;
            Box::pin(async move {
                match durable {
                    true => Ok(Appended::Logged { head }),
                    false => Err(Error("disk full".into())),
                }
            })
        }
        fn read<'a>(&'a self, _: &'a str, _: u64, _: usize, _: usize) -> BoxFuture<'a, Result<Sequenced>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn state<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<State>> {
            Box::pin(async { Ok(State::default()) })
        }
        fn compact(&self, _: u64) -> BoxFuture<'_, Result<u64>> {
            Box::pin(async { Ok(0) })
        }
    }

    fn entry(id: &str) -> Entry {
        let op = quiver::sync::Op {
            id: id.into(),
            version: 1,
            site: "s".into(),
            body: None,
        };
        Entry::new(&op).unwrap()
    }

    /// What a room's other session hears of one push to a store that is durable or not.
    async fn heard(durable: bool) -> Vec<String> {
        let hub = Hub::new(Arc::new(Store { durable }), 10);
        let (pusher, mut other) = (hub.join("r").unwrap(), hub.join("r").unwrap());
        let appended = pusher.append(1, vec![entry("a"), entry("b")]).await;
        assert_eq!(appended.is_ok(), durable);
        let mut heard = Vec::new();
        while let Ok(b) = other.rx.try_recv() {
            heard.push(match &*b {
                Batch::Sequenced { ops, .. } => format!("ops {:?}", ops.iter().map(|o| o.0).collect::<Vec<_>>()),
                Batch::Durable { head } => format!("durable {head}"),
                Batch::Failed => "failed".into(),
            });
        }
        heard
    }

    #[tokio::test]
    async fn ops_fan_out_before_they_are_durable_and_the_head_after() {
        assert_eq!(heard(true).await, ["ops [1, 2]", "durable 2"]);
    }

    #[tokio::test]
    async fn ops_the_store_fails_to_keep_end_the_room_sessions() {
        assert_eq!(heard(false).await, ["ops [1, 2]", "failed"]);
    }
}
