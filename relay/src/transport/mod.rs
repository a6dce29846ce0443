//! What carries a session's frames: WebTransport ([`webtransport`]), and WebSocket
//! with the certificate-hash endpoint on a TCP port ([`tcp`]) for browsers where UDP
//! is blocked. Each reads frames on a task of its own into an [`Incoming`] channel.

pub mod tcp;
pub mod webtransport;

use crate::session::{self, Incoming, Outgoing, Shared};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Frames a reader may decode ahead of the session.
const READ_AHEAD: usize = 4;

/// What the transports share: the sessions' state, session ids, and the count of
/// connections being served, which shutdown waits on.
pub struct Relay {
    pub shared: Shared,
    next_id: AtomicU64,
    active: AtomicUsize,
    idle: Notify,
}

/// A connection being served; counted until dropped.
pub struct Active(Arc<Relay>);

impl Drop for Active {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Relay {
    pub fn new(shared: Shared) -> Arc<Relay> {
        Arc::new(Relay {
            shared,
            next_id: AtomicU64::new(1),
            active: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    /// Counts a connection as served until the returned guard drops.
    pub fn track(self: &Arc<Relay>) -> Active {
        self.active.fetch_add(1, Ordering::AcqRel);
        Active(self.clone())
    }

    /// Waits until no connection is served, or `limit` passes; returns how many are left.
    pub async fn drained(&self, limit: Duration) -> usize {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let idle = self.idle.notified();
                if self.active.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await;
        self.active.load(Ordering::Acquire)
    }

    /// Runs one session over `out`, fed by the reader that `read` starts on the
    /// channel it is given; returns why it ended, for the relay's output.
    async fn session<F>(&self, out: &mut dyn Outgoing, read: F) -> quiver::sync::wire::Closing
    where
        F: FnOnce(mpsc::Sender<Incoming>) -> tokio::task::JoinHandle<()>,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::channel(READ_AHEAD);
        let reader = read(tx);
        let end = session::run(&self.shared, id, &mut rx, out).await;
        reader.abort();
        end
    }
}
