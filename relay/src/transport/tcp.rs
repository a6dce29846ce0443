//! The relay's TCP port: sessions over WebSocket (one frame a binary message), for
//! browsers without WebTransport or behind a UDP block, and `GET /certificate`, the
//! hashes a browser passes as `serverCertificateHashes`.

use super::Relay;
use crate::cert::Certs;
use crate::session::{Incoming, Outgoing};
use futures_util::future::BoxFuture;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use quiver::sync::wire;
use quiver::{Code, Error};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

/// Longest HTTP request head read before deciding what a connection is.
const MAX_HEAD: usize = 8 * 1024;
/// How long a connection may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(listener: TcpListener, certs: Arc<Certs>, relay: Arc<Relay>) {
    let mut stopping = relay.shared.stopping.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (active, relay, certs) = (relay.track(), relay.clone(), certs.clone());
                tokio::spawn(async move {
                    handle(stream, &certs, &relay).await;
                    drop(active);
                });
            }
            _ = crate::session::stopped(&mut stopping) => break,
        }
    }
}

async fn handle(mut stream: TcpStream, certs: &Certs, relay: &Relay) {
    // A peer that vanished (a laptop closed, a network gone) sends no close; TCP
    // keepalive ends its session within about a minute, as QUIC's idle timeout does.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    // Frames go out whole and at once: Nagle's algorithm held a small one back until
    // the peer's delayed ACK, 30 ms and more on loopback.
    let _ = stream.set_nodelay(true);
    let Ok(Some(head)) = tokio::time::timeout(HEAD_TIMEOUT, peek_head(&stream)).await else {
        return;
    };
    let lower = head.to_ascii_lowercase();
    if !lower.contains("upgrade: websocket") {
        let (status, body) = if lower.starts_with("get /certificate ") {
            ("200 OK", certs.json())
        } else {
            ("404 Not Found", "{\"error\":\"not found\"}".to_owned())
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\naccess-control-allow-origin: *\r\n\
             cache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        // The request head was only peeked: read it off before answering.
        let mut consumed = vec![0u8; head.len()];
        let _ = tokio::io::AsyncReadExt::read_exact(&mut stream, &mut consumed).await;
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
    }
    // A small read buffer: idle sessions are the many, and it grows for a big frame.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(wire::MAX_FRAME_BYTES))
        .max_frame_size(Some(wire::MAX_FRAME_BYTES));
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (sink, source) = ws.split();
    let mut out = Socket(sink);
    let end = relay.session(&mut out, |tx| tokio::spawn(read(source, tx))).await;
    let close = tungstenite::protocol::CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: end.message.chars().take(100).collect::<String>().into(),
    };
    let _ = out.0.send(WsMessage::Close(Some(close))).await;
    let _ = out.0.close().await;
}

/// The request head (through its blank line), without consuming it, or `None` if the
/// connection ends or sends more than [`MAX_HEAD`] first.
async fn peek_head(stream: &TcpStream) -> Option<String> {
    let mut buf = vec![0u8; MAX_HEAD];
    loop {
        let n = stream.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            return String::from_utf8(buf[..end + 4].to_vec()).ok();
        }
        if n == MAX_HEAD {
            return None;
        }
        // Part of the head is in: wait for the rest.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads one frame per binary message until the socket closes or a message is not one.
async fn read(mut source: SplitStream<WebSocketStream<TcpStream>>, tx: mpsc::Sender<Incoming>) {
    while let Some(m) = source.next().await {
        let incoming = match m {
            Ok(WsMessage::Binary(b)) => match wire::decode_frame(&b) {
                Ok(m) => Incoming::Message(m),
                Err(e) => Incoming::Bad(e),
            },
            Ok(WsMessage::Text(_)) => Incoming::Bad(Error::new(
                Code::MalformedFrame,
                "frame: a text message; frames are binary messages",
            )),
            Ok(WsMessage::Close(_)) => Incoming::Gone,
            Ok(_) => continue,
            Err(tungstenite::Error::Capacity(e)) => {
                Incoming::Bad(Error::new(Code::FrameTooLarge, format!("frame: {e}")))
            }
            Err(_) => Incoming::Gone,
        };
        let last = !matches!(incoming, Incoming::Message(_));
        if tx.send(incoming).await.is_err() || last {
            return;
        }
    }
    let _ = tx.send(Incoming::Gone).await;
}

struct Socket(SplitSink<WebSocketStream<TcpStream>, WsMessage>);

impl Outgoing for Socket {
    fn send<'a>(&'a mut self, frame: &'a [u8]) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            self.0
                .send(WsMessage::Binary(frame.to_vec().into()))
                .await
                .map_err(std::io::Error::other)
        })
    }
}
