//! `quiver-relay-load`: a native load generator for a running relay.
//!
//! It holds `--sessions` idle sessions spread over `--rooms` rooms, then has `--writers`
//! sites push `--ops` upserts each into one room that `--readers` more sites follow,
//! and waits until every writer and reader has every op. It prints one JSON object: the
//! sessions held, the relay's memory per idle session (with `--relay-pid`), sustained
//! acked ops/s, fan-out latency (push to a reader's receipt) p50/p99, and bytes on the
//! wire per op.
//!
//! ```text
//! quiver-relay-load --url https://127.0.0.1:4433 --http 127.0.0.1:4434 --secret HEX
//!   [--transport wt|ws] [--sessions 5000] [--rooms 50] [--writers 4] [--readers 10]
//!   [--ops 2000] [--batch 50] [--dim 384] [--window 8] [--relay-pid PID]
//! ```

use quiver::sync::wire::{self, Hello, Message, Push};
use quiver::sync::{Body, Op};
use quiver_relay::client::{self, Conn};
use quiver_relay::token::Secret;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::sync::Semaphore;
use wtransport::endpoint::endpoint_side::Client;
use wtransport::Endpoint;

/// Sessions opened at once while ramping up.
const RAMP: usize = 64;
/// How long the run may take to converge after the last ack.
const CONVERGE: Duration = Duration::from_secs(120);

struct Config {
    url: String,
    http: String,
    ws: bool,
    secret: Secret,
    sessions: usize,
    rooms: usize,
    writers: usize,
    readers: usize,
    ops: usize,
    batch: usize,
    dim: usize,
    window: usize,
    relay_pid: Option<u32>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quiver-relay-load: {e}\nsee the doc comment of relay/src/bin/quiver-relay-load.rs");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    if let Err(e) = runtime.block_on(run(Arc::new(config))) {
        eprintln!("quiver-relay-load: {e}");
        std::process::exit(1);
    }
}

fn parse(args: &[String]) -> Result<Config, String> {
    let mut f = HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let name = a.strip_prefix("--").ok_or_else(|| format!("{a}: expected a --flag"))?;
        f.insert(
            name.to_owned(),
            it.next().ok_or_else(|| format!("--{name}: needs a value"))?.clone(),
        );
    }
    let need = |n: &str| f.get(n).cloned().ok_or_else(|| format!("--{n} is required"));
    let num = |n: &str, d: usize| {
        f.get(n)
            .map_or(Ok(d), |v| v.parse().map_err(|_| format!("--{n}: not a number")))
    };
    let hex = need("secret")?;
    let secret: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| "--secret: not hex".to_owned()))
        .collect::<Result<_, _>>()?;
    Ok(Config {
        url: need("url")?,
        http: need("http")?,
        ws: f.get("transport").is_some_and(|t| t == "ws"),
        secret: Secret::new(&secret),
        sessions: num("sessions", 5000)?,
        rooms: num("rooms", 50)?.max(1),
        writers: num("writers", 4)?.max(1),
        readers: num("readers", 10)?,
        ops: num("ops", 2000)?,
        batch: num("batch", 50)?.clamp(1, wire::MAX_BATCH_OPS),
        dim: num("dim", 384)?.clamp(1, quiver::MAX_DIM),
        window: num("window", 8)?.max(1),
        relay_pid: f
            .get("relay-pid")
            .map(|p| p.parse())
            .transpose()
            .map_err(|_| "--relay-pid: not a number")?,
    })
}

/// The relay's resident memory in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

async fn connect(c: &Config, endpoint: &Endpoint<Client>) -> std::io::Result<Conn> {
    if c.ws {
        Conn::websocket(&c.http).await
    } else {
        Conn::webtransport(endpoint, &c.url).await
    }
}

/// Says hello and reads the backlog; returns the connection, caught up, and its `upto`.
async fn join(c: &Config, endpoint: &Endpoint<Client>, room: &str, site: &str) -> Result<(Conn, u64), String> {
    let mut conn = connect(c, endpoint).await.map_err(|e| format!("connect: {e}"))?;
    let hello = Hello {
        room: room.into(),
        token: c.secret.mint(room, 0),
        site: site.into(),
        since: 0,
    };
    conn.send(&Message::Hello(hello)).await.map_err(|e| e.to_string())?;
    let head = match conn.recv().await.map_err(|e| e.to_string())? {
        Some(Message::Welcome(w)) => w.head,
        other => return Err(format!("{site}: expected Welcome, got {other:?}")),
    };
    loop {
        match conn.recv().await.map_err(|e| e.to_string())? {
            Some(Message::Ops(o)) if o.upto >= head => return Ok((conn, o.upto)),
            Some(_) => {}
            None => return Err(format!("{site}: closed during the backlog")),
        }
    }
}

/// Push-to-receipt latencies, microseconds, of every op the followers received.
type Latencies = Arc<Mutex<Vec<u64>>>;

/// Reads the room's ops from `upto` until it reaches `want` (once that is set);
/// records each op's latency into `seen`, if given.
async fn follow(
    mut conn: Conn,
    mut upto: u64,
    mut want: watch::Receiver<u64>,
    seen: Option<Latencies>,
) -> Result<(), String> {
    loop {
        let target = *want.borrow_and_update();
        if target > 0 && upto >= target {
            return Ok(());
        }
        let m = tokio::select! {
            m = tokio::time::timeout(CONVERGE, conn.recv()) => m.map_err(|_| "a follower waited too long".to_owned())?,
            _ = want.changed() => continue,
        };
        match m.map_err(|e| e.to_string())? {
            Some(Message::Ops(o)) => {
                if let Some(seen) = &seen {
                    let now = micros();
                    let mut s = seen.lock().unwrap();
                    for (op, _) in &o.ops {
                        if let Some(t) = op.body.as_ref().and_then(|b| b.metadata.as_deref()).and_then(sent_at) {
                            s.push(now.saturating_sub(t));
                        }
                    }
                }
                upto = o.upto;
            }
            Some(Message::Ack(_)) => {}
            Some(other) => return Err(format!("a follower got {other:?}")),
            None => return Err("a follower's session closed".into()),
        }
    }
}

fn sent_at(metadata: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(metadata).ok()?["t"].as_u64()
}

/// What a writer did: push frame bytes, ops, the largest ack seq, and its own `upto`.
struct Wrote {
    bytes: u64,
    ops: u64,
    head: u64,
    upto: u64,
}

/// Pushes this writer's ops in pipelined batches.
async fn write(c: &Config, conn: &mut Conn, w: usize) -> Result<Wrote, String> {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ w as u64;
    let (mut bytes, mut sent, mut acked, mut in_flight, mut last, mut upto) =
        (0u64, 0usize, 0usize, 0usize, 0u64, 0u64);
    let batches = c.ops.div_ceil(c.batch);
    let mut next = 0usize;
    while acked < batches {
        while next < batches && in_flight < c.window {
            let ops: Vec<Op> = (0..c.batch.min(c.ops - next * c.batch))
                .map(|i| {
                    let n = next * c.batch + i;
                    let vector = (0..c.dim)
                        .map(|_| {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            (rng >> 40) as f32 / (1u64 << 24) as f32
                        })
                        .collect();
                    Op {
                        id: format!("w{w}-{n}"),
                        version: n as u64 + 1,
                        site: format!("writer-{w}"),
                        body: Some(Body {
                            vector,
                            metadata: Some(format!("{{\"t\":{}}}", micros())),
                            text: None,
                        }),
                    }
                })
                .collect();
            sent += ops.len();
            let frame = Message::Push(Push {
                batch: next as u64 + 1,
                ops,
            })
            .to_frame()
            .map_err(|e| e.to_string())?;
            bytes += frame.len() as u64;
            conn.send_raw(&frame).await.map_err(|e| e.to_string())?;
            next += 1;
            in_flight += 1;
        }
        match conn.recv().await.map_err(|e| e.to_string())? {
            Some(Message::Ack(a)) => {
                acked += 1;
                in_flight -= 1;
                last = last.max(a.seq);
            }
            Some(Message::Ops(o)) => upto = o.upto,
            Some(other) => return Err(format!("writer {w} got {other:?}")),
            None => return Err(format!("writer {w}'s session closed")),
        }
    }
    Ok(Wrote {
        bytes,
        ops: sent as u64,
        head: last,
        upto,
    })
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn run(c: Arc<Config>) -> Result<(), String> {
    let hashes = client::certificate_hashes(&c.http).await.map_err(|e| e.to_string())?;
    let endpoint = Arc::new(client::endpoint(&hashes).map_err(|e| e.to_string())?);
    let rss_before = c.relay_pid.and_then(rss_kib);
    // Idle sessions, spread over rooms, opened RAMP at a time.
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(RAMP));
    let mut opening = Vec::with_capacity(c.sessions);
    for i in 0..c.sessions {
        let (c, endpoint, gate) = (c.clone(), endpoint.clone(), gate.clone());
        opening.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("open gate");
            let joined = join(&c, &endpoint, &format!("idle-{}", i % c.rooms), &format!("idle-{i}")).await;
            joined.map(|(conn, _)| conn)
        }));
    }
    let mut idle = Vec::with_capacity(c.sessions);
    for o in opening {
        idle.push(o.await.map_err(|e| e.to_string())??);
    }
    let ramp = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = c.relay_pid.and_then(rss_kib);
    // The writers' room: followers first, then the writers.
    // A room of its own, so a second run on one relay logs its ops afresh.
    let room = &format!("load-{}", micros());
    let (want_tx, want) = watch::channel(0u64);
    let seen: Latencies = Arc::default();
    let mut followers = Vec::new();
    for r in 0..c.readers {
        let (conn, upto) = join(&c, &endpoint, room, &format!("reader-{r}")).await?;
        followers.push(tokio::spawn(follow(conn, upto, want.clone(), Some(seen.clone()))));
    }
    let mut writers = Vec::new();
    for w in 0..c.writers {
        let (conn, _) = join(&c, &endpoint, room, &format!("writer-{w}")).await?;
        let c = c.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = conn;
            write(&c, &mut conn, w).await.map(|wrote| (wrote, conn))
        }));
    }
    let writing = Instant::now();
    let (mut bytes, mut ops, mut head) = (0, 0, 0);
    let mut writer_follows = Vec::new();
    for w in writers {
        let (wrote, conn) = w.await.map_err(|e| e.to_string())??;
        (bytes, ops, head) = (bytes + wrote.bytes, ops + wrote.ops, head.max(wrote.head));
        writer_follows.push(tokio::spawn(follow(conn, wrote.upto, want.clone(), None)));
    }
    let acked_in = writing.elapsed();
    // Converged: every follower, and every writer, has the room up to the last head.
    let _ = want_tx.send(head);
    for f in followers.into_iter().chain(writer_follows) {
        f.await.map_err(|e| e.to_string())??;
    }
    let converged_in = writing.elapsed();
    // The idle sessions are still served: each gets an ack for an empty push.
    let alive = AtomicU64::new(0);
    futures_util::future::join_all(idle.iter_mut().map(|conn| async {
        let empty = Message::Push(Push {
            batch: 1,
            ops: Vec::new(),
        });
        if conn.send(&empty).await.is_ok() {
            if let Ok(Ok(Some(Message::Ack(_)))) = tokio::time::timeout(CONVERGE, conn.recv()).await {
                alive.fetch_add(1, Ordering::Relaxed);
            }
        }
    }))
    .await;
    let mut latencies = std::mem::take(&mut *seen.lock().unwrap());
    latencies.sort_unstable();
    let per_session = match (rss_before, rss_after) {
        (Some(b), Some(a)) if c.sessions > 0 => format!("{:.1}", a.saturating_sub(b) as f64 / c.sessions as f64),
        _ => "null".into(),
    };
    println!(
        "{{\"transport\":\"{}\",\"idle_sessions\":{},\"ramp_s\":{:.2},\"relay_kib_per_idle_session\":{per_session},\
         \"writers\":{},\"readers\":{},\"ops\":{ops},\"dim\":{},\"acked_ops_per_s\":{:.0},\"converged_s\":{:.2},\
         \"fanout_p50_ms\":{:.2},\"fanout_p99_ms\":{:.2},\"fanout_samples\":{},\"push_bytes_per_op\":{:.1},\
         \"idle_sessions_alive_after\":{}}}",
        if c.ws { "websocket" } else { "webtransport" },
        c.sessions,
        ramp.as_secs_f64(),
        c.writers,
        c.readers,
        c.dim,
        ops as f64 / acked_in.as_secs_f64(),
        converged_in.as_secs_f64(),
        percentile(&latencies, 0.5) as f64 / 1000.0,
        percentile(&latencies, 0.99) as f64 / 1000.0,
        latencies.len(),
        bytes as f64 / ops.max(1) as f64,
        alive.load(Ordering::Relaxed),
    );
    Ok(())
}
