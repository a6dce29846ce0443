//! `quiver-relay`: serves sync rooms, or mints a room's token.
//!
//! ```text
//! quiver-relay [serve] --listen 127.0.0.1:4433 --ws-listen 127.0.0.1:4434 --data relay.db
//!                      (--secret HEX | --secret-file PATH) [--max-room-sessions N]
//!                      [--max-room-ops N] [--tombstone-days N] [--compact-secs N] [--cert-days N]
//! quiver-relay token --room ROOM (--secret HEX | --secret-file PATH) [--ttl-secs N]
//! ```
//!
//! It prints what it listens on and its certificate's hash, one `quiver-relay KEY
//! VALUE` line each, then `quiver-relay ready`; on SIGINT or SIGTERM it stops taking
//! sessions, closes the open ones with a reason once their current write is durable,
//! and exits 0.

use quiver_relay::cert::Certs;
use quiver_relay::hub::Hub;
use quiver_relay::log::sqlite::SqliteLog;
use quiver_relay::log::{Limits, Log};
use quiver_relay::session::Shared;
use quiver_relay::token::Secret;
use quiver_relay::transport::{tcp, webtransport, Relay};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{signal, SignalKind};

/// How long shutdown waits for sessions to finish their last write and close.
const DRAIN: Duration = Duration::from_secs(5);

const USAGE: &str = "usage: quiver-relay [serve] --listen ADDR --ws-listen ADDR --data PATH \
(--secret HEX | --secret-file PATH) [--max-room-sessions N] [--max-room-ops N] \
[--tombstone-days N] [--compact-secs N] [--cert-days N]\n       \
quiver-relay token --room ROOM (--secret HEX | --secret-file PATH) [--ttl-secs N]";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first().map(String::as_str) {
        Some("token") | Some("serve") => args.remove(0),
        _ => "serve".to_owned(),
    };
    let result = flags(&args).and_then(|f| match command.as_str() {
        "token" => token(&f),
        _ => serve(&f),
    });
    if let Err(e) = result {
        eprintln!("quiver-relay: {e}\n{USAGE}");
        std::process::exit(2);
    }
}

type Flags = HashMap<String, String>;

fn flags(args: &[String]) -> Result<Flags, String> {
    let mut out = HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let name = a.strip_prefix("--").ok_or_else(|| format!("{a}: expected a --flag"))?;
        let value = it.next().ok_or_else(|| format!("--{name}: needs a value"))?;
        out.insert(name.to_owned(), value.clone());
    }
    Ok(out)
}

fn need<'a>(f: &'a Flags, name: &str) -> Result<&'a str, String> {
    f.get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("--{name} is required"))
}

fn number<T: std::str::FromStr>(f: &Flags, name: &str, default: T) -> Result<T, String> {
    f.get(name).map_or(Ok(default), |v| {
        v.parse().map_err(|_| format!("--{name}: {v:?} is not a number"))
    })
}

fn secret(f: &Flags) -> Result<Secret, String> {
    let hex = match (f.get("secret"), f.get("secret-file")) {
        (Some(s), None) => s.clone(),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| format!("--secret-file {path}: {e}"))?,
        _ => return Err("give one of --secret and --secret-file".into()),
    };
    let hex = hex.trim();
    if hex.len() < 32 || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the secret: at least 16 bytes, written as hex".into());
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect();
    Ok(Secret::new(&bytes))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn token(f: &Flags) -> Result<(), String> {
    let ttl: u64 = number(f, "ttl-secs", 0)?;
    let expiry = if ttl == 0 { 0 } else { now_secs() + ttl };
    println!("{}", secret(f)?.mint(need(f, "room")?, expiry));
    Ok(())
}

fn addr(f: &Flags, name: &str) -> Result<SocketAddr, String> {
    let v = need(f, name)?;
    v.parse()
        .map_err(|_| format!("--{name}: {v:?} is not an address like 127.0.0.1:4433"))
}

fn serve(f: &Flags) -> Result<(), String> {
    let secret = secret(f)?;
    let (listen, ws_listen) = (addr(f, "listen")?, addr(f, "ws-listen")?);
    let data = PathBuf::from(need(f, "data")?);
    let limits = Limits {
        room_ops: number(f, "max-room-ops", 10_000_000)?,
    };
    let max_sessions: usize = number(f, "max-room-sessions", 10_000)?;
    let horizon = Duration::from_secs(number::<u64>(f, "tombstone-days", 30)? * 86_400);
    let compact_every = Duration::from_secs(number(f, "compact-secs", 3600)?.max(1));
    let certs = Arc::new(Certs::new(number(f, "cert-days", 14)?));
    let log: Arc<dyn Log> =
        Arc::new(SqliteLog::open(&data, limits).map_err(|e| format!("--data {}: {e}", data.display()))?);
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let hub = Hub::new(log.clone(), max_sessions);
        let relay = Relay::new(Shared { hub, secret, stopping });
        let identity = certs.issue();
        let endpoint = wtransport::Endpoint::server(webtransport::config(listen, &identity))
            .map_err(|e| format!("--listen {listen}: {e}"))?;
        let tcp = tokio::net::TcpListener::bind(ws_listen)
            .await
            .map_err(|e| format!("--ws-listen {ws_listen}: {e}"))?;
        let wt_addr = endpoint.local_addr().map_err(|e| e.to_string())?;
        let ws_addr = tcp.local_addr().map_err(|e| e.to_string())?;
        println!("quiver-relay webtransport https://{wt_addr}");
        println!("quiver-relay websocket ws://{ws_addr}");
        println!("quiver-relay certificate http://{ws_addr}/certificate");
        println!("quiver-relay certificate-sha256 {}", certs.hashes()[0]);
        println!("quiver-relay ready");
        let wt = tokio::spawn(webtransport::serve(endpoint, wt_addr, certs.clone(), relay.clone()));
        let ws = tokio::spawn(tcp::serve(tcp, certs, relay.clone()));
        let compactor = tokio::spawn(compact(log, compact_every, horizon));
        let (mut term, mut int) = (
            signal(SignalKind::terminate()).map_err(|e| e.to_string())?,
            signal(SignalKind::interrupt()).map_err(|e| e.to_string())?,
        );
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        println!("quiver-relay stopping");
        let _ = stop.send(true);
        let _ = tokio::join!(wt, ws);
        let left = relay.drained(DRAIN).await;
        compactor.abort();
        println!("quiver-relay stopped ({left} connections cut)");
        Ok::<(), String>(())
    })?;
    // Connections past the drain are cut here; what they acked is already on disk.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

async fn compact(log: Arc<dyn Log>, every: Duration, horizon: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let before = SystemTime::now()
            .checked_sub(horizon)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        match log.compact(before).await {
            Ok(0) => {}
            Ok(n) => println!("quiver-relay compacted {n} ops"),
            Err(e) => eprintln!("quiver-relay: compaction: {e}"),
        }
    }
}
