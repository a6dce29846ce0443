//! Sessions over WebTransport: the site opens one bidirectional stream and sends its
//! frames on it back to back; the relay answers on the same stream.

use super::Relay;
use crate::cert::Certs;
use crate::session::{Incoming, Outgoing, HELLO_TIMEOUT};
use futures_util::future::BoxFuture;
use quiver::sync::wire;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use wtransport::endpoint::IncomingSession;
use wtransport::{Endpoint, Identity, RecvStream, SendStream, ServerConfig};

/// How long a closing session waits for the site to read its last frame.
const LINGER: Duration = Duration::from_secs(1);

pub fn config(addr: SocketAddr, identity: &Identity) -> ServerConfig {
    ServerConfig::builder()
        .with_bind_address(addr)
        .with_identity(identity.clone_identity())
        .keep_alive_interval(Some(Duration::from_secs(10)))
        .build()
}

/// Accepts sessions until `relay` stops, and swaps in a new certificate when the
/// current one is halfway through its life.
pub async fn serve(
    endpoint: Endpoint<wtransport::endpoint::endpoint_side::Server>,
    addr: SocketAddr,
    certs: Arc<Certs>,
    relay: Arc<Relay>,
) {
    let mut stopping = relay.shared.stopping.clone();
    let mut rotate = tokio::time::interval_at(tokio::time::Instant::now() + certs.rotate_after(), certs.rotate_after());
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let active = relay.track();
                let relay = relay.clone();
                tokio::spawn(async move {
                    handle(incoming, &relay).await;
                    drop(active);
                });
            }
            _ = rotate.tick() => {
                let identity = certs.issue();
                match endpoint.reload_config(config(addr, &identity), false) {
                    Ok(()) => println!("quiver-relay certificate-sha256 {}", certs.hashes()[0]),
                    Err(e) => eprintln!("quiver-relay: certificate rotation failed: {e}"),
                }
            }
            _ = crate::session::stopped(&mut stopping) => break,
        }
    }
}

async fn handle(incoming: IncomingSession, relay: &Relay) {
    let Ok(request) = incoming.await else { return };
    let Ok(conn) = request.accept().await else { return };
    let Ok(Ok((send, recv))) = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await else {
        conn.close(0u32.into(), b"no stream");
        return;
    };
    let mut out = Stream(send);
    let end = relay.session(&mut out, |tx| tokio::spawn(read(recv, tx))).await;
    let _ = out.0.finish().await;
    // The site closes once it has read the last frame; past the linger the relay does.
    let _ = tokio::time::timeout(LINGER, conn.closed()).await;
    conn.close(u32::from(end.reason.byte()).into(), end.message.as_bytes());
}

/// Reads frames off the stream until it ends or holds one that is not a frame.
async fn read(mut recv: RecvStream, tx: mpsc::Sender<Incoming>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        loop {
            match wire::decode(&buf) {
                Ok(Some((m, used))) => {
                    buf.drain(..used);
                    if tx.send(Incoming::Message(m)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Incoming::Bad(e)).await;
                    return;
                }
            }
        }
        match recv.read(&mut chunk).await {
            Ok(Some(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(None) if !buf.is_empty() => {
                let e = quiver::Error::new(
                    quiver::Code::MalformedFrame,
                    format!("frame: the stream ended {} bytes into one", buf.len()),
                );
                let _ = tx.send(Incoming::Bad(e)).await;
                return;
            }
            _ => {
                let _ = tx.send(Incoming::Gone).await;
                return;
            }
        }
    }
}

struct Stream(SendStream);

impl Outgoing for Stream {
    fn send<'a>(&'a mut self, frame: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move { self.0.write_all(frame).await.map_err(std::io::Error::other) })
    }
}
