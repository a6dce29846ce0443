//! A native site's connection to a relay, over WebTransport or WebSocket: what the
//! relay's tests and its load generator speak the protocol through.

use futures_util::{SinkExt, StreamExt};
use quiver::sync::wire::{self, Message};
use std::io::{Error, ErrorKind, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use wtransport::endpoint::endpoint_side::Client;
use wtransport::tls::Sha256Digest;
use wtransport::{ClientConfig, Endpoint, RecvStream, SendStream};

/// The certificate hashes a relay serves at `GET /certificate` on its TCP port `addr`.
pub async fn certificate_hashes(addr: &str) -> Result<Vec<[u8; 32]>> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET /certificate HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    s.read_to_string(&mut response).await?;
    let bad = |why: &str| Error::new(ErrorKind::InvalidData, format!("GET /certificate: {why}"));
    if !response.starts_with("HTTP/1.1 200") {
        return Err(bad("not 200 OK"));
    }
    let body = response.split_once("\r\n\r\n").ok_or_else(|| bad("no body"))?.1;
    let json: serde_json::Value = serde_json::from_str(body).map_err(|_| bad("not JSON"))?;
    let hashes = json["hashes"].as_array().ok_or_else(|| bad("no hashes"))?;
    hashes
        .iter()
        .map(|h| {
            let h = h
                .as_str()
                .filter(|h| h.len() == 64)
                .ok_or_else(|| bad("a hash is not 64 hex digits"))?;
            let mut out = [0u8; 32];
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| bad("a hash is not hex"))?;
            }
            Ok(out)
        })
        .collect()
}

/// A client endpoint that trusts the certificates with these hashes; one serves many
/// connections.
pub fn endpoint(hashes: &[[u8; 32]]) -> Result<Endpoint<Client>> {
    let config = ClientConfig::builder()
        .with_bind_default()
        .with_server_certificate_hashes(hashes.iter().map(|h| Sha256Digest::new(*h)))
        .build();
    Endpoint::client(config)
}

pub enum Conn {
    Wt {
        conn: wtransport::Connection,
        send: SendStream,
        recv: RecvStream,
        buf: Vec<u8>,
    },
    Ws(Box<WebSocketStream<TcpStream>>),
}

impl Conn {
    /// Opens a session and its stream at `url` (`https://HOST:PORT`).
    pub async fn webtransport(endpoint: &Endpoint<Client>, url: &str) -> Result<Conn> {
        let conn = endpoint.connect(url).await.map_err(Error::other)?;
        let (send, recv) = conn
            .open_bi()
            .await
            .map_err(Error::other)?
            .await
            .map_err(Error::other)?;
        Ok(Conn::Wt {
            conn,
            send,
            recv,
            buf: Vec::new(),
        })
    }

    /// Opens a WebSocket session on the relay's TCP port `addr` (`HOST:PORT`).
    pub async fn websocket(addr: &str) -> Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/sync"), tcp)
            .await
            .map_err(Error::other)?;
        Ok(Conn::Ws(Box::new(ws)))
    }

    pub async fn send(&mut self, m: &Message) -> Result<()> {
        let frame = m.to_frame().map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
        self.send_raw(&frame).await
    }

    /// Sends bytes as they are: into the stream (WebTransport), or as one binary
    /// message (WebSocket).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Conn::Wt { send, .. } => send.write_all(bytes).await.map_err(Error::other),
            Conn::Ws(ws) => ws
                .send(WsMessage::Binary(bytes.to_vec().into()))
                .await
                .map_err(Error::other),
        }
    }

    /// Sends a text message (WebSocket) or ends the stream (WebTransport): for tests
    /// of what the relay refuses.
    pub async fn finish(&mut self) -> Result<()> {
        match self {
            Conn::Wt { send, .. } => send.finish().await.map_err(Error::other),
            Conn::Ws(ws) => ws
                .send(WsMessage::Text("not a frame".into()))
                .await
                .map_err(Error::other),
        }
    }

    /// The next frame, or `None` once the relay has closed the session.
    pub async fn recv(&mut self) -> Result<Option<Message>> {
        let bad = |e: quiver::Error| Error::new(ErrorKind::InvalidData, e);
        match self {
            Conn::Wt { recv, buf, .. } => loop {
                if let Some((m, used)) = wire::decode(buf).map_err(bad)? {
                    buf.drain(..used);
                    return Ok(Some(m));
                }
                let mut chunk = [0u8; 16 * 1024];
                match recv.read(&mut chunk).await {
                    Ok(Some(n)) => buf.extend_from_slice(&chunk[..n]),
                    _ => return Ok(None),
                }
            },
            Conn::Ws(ws) => loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Binary(b))) => return wire::decode_frame(&b).map(Some).map_err(bad),
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return Ok(None),
                    Some(Ok(_)) => continue,
                }
            },
        }
    }

    /// Closes the connection at once.
    pub fn close(&mut self) {
        if let Conn::Wt { conn, .. } = self {
            conn.close(0u32.into(), b"");
        }
    }
}
