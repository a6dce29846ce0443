//! What the relay's tests share: the real `quiver-relay` process, native clients
//! over WebTransport and WebSocket, and sites (in-memory quiver databases) that sync
//! through them.

#![allow(dead_code)] // each test file uses a part

use quiver::sync::wire::{self, Closing, Hello, Message, Push};
use quiver::sync::Op;
use quiver::{Database, Metric, Record};
use quiver_relay::client;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wtransport::Endpoint;

pub const SECRET: &str = "000102030405060708090a0b0c0d0e0f";
pub const DIM: usize = 4;
/// How long a client waits for one frame before the test fails.
const FRAME_WAIT: Duration = Duration::from_secs(15);

/// Runs a test body, failing it if it takes longer than `secs`.
pub async fn within<T>(secs: u64, body: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), body)
        .await
        .unwrap_or_else(|_| panic!("the test took longer than {secs} s"))
}

/// A scratch directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "quiver-relay-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `quiver-relay`, killed when dropped.
pub struct Relay {
    child: Child,
    pub wt: String,
    pub ws: String,
    pub hash: String,
    /// The relay's output after its ready line, gathered as it comes.
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Relay {
    /// Starts a relay on ephemeral loopback ports over the log file `data`.
    pub fn start(data: &Path) -> Relay {
        Relay::start_with(&["--data", data.to_str().unwrap()])
    }

    /// Starts a relay over the log file `data` with `args` besides.
    pub fn start_over(data: &Path, args: &[&str]) -> Relay {
        Relay::start_with(&[&["--data", data.to_str().unwrap()], args].concat())
    }

    /// Starts a relay on ephemeral loopback ports with the tests' secret and `args`.
    pub fn start_with(args: &[&str]) -> Relay {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quiver-relay"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--ws-listen",
                "127.0.0.1:0",
                "--secret",
                SECRET,
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("quiver-relay starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut wt, mut ws, mut hash) = (None, None, None);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        for line in lines.by_ref() {
            assert!(std::time::Instant::now() < deadline, "the relay took too long to start");
            let line = line.unwrap();
            let mut parts = line.split_whitespace().skip(1);
            match (parts.next(), parts.next()) {
                (Some("webtransport"), Some(v)) => wt = Some(v.to_owned()),
                (Some("websocket"), Some(v)) => ws = Some(v.trim_start_matches("ws://").to_owned()),
                (Some("certificate-sha256"), Some(v)) => hash = Some(v.to_owned()),
                (Some("ready"), _) => break,
                _ => {}
            }
        }
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Relay {
            child,
            wt: wt.expect("a webtransport line"),
            ws: ws.expect("a websocket line"),
            hash: hash.expect("a certificate line"),
            output,
        }
    }

    /// Kills the process outright (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Asks the process to stop (SIGTERM) and waits for it; returns its output since ready.
    pub fn terminate(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the relay exited with {status}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the relay did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.output.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) for a line of output that starts with `prefix`.
    pub async fn wait_for_line(&self, prefix: &str) -> String {
        for _ in 0..400 {
            if let Some(l) = self.output.lock().unwrap().iter().find(|l| l.starts_with(prefix)) {
                return l.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the relay never printed {prefix:?}");
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token for `room` from the tests' secret, as `quiver-relay token` mints it.
pub fn token(room: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver-relay"))
        .args(["token", "--room", room, "--secret", SECRET])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A native client's connection to a relay; every call fails the test on error or
/// after [`FRAME_WAIT`].
pub struct Conn {
    pub inner: client::Conn,
    pub _endpoint: Option<Endpoint<wtransport::endpoint::endpoint_side::Client>>,
}

impl Conn {
    /// Connects over WebTransport, trusting the certificate by the hash the relay serves.
    pub async fn wt(relay: &Relay) -> Conn {
        let hashes = client::certificate_hashes(&relay.ws).await.unwrap();
        let hex: String = hashes[0].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, relay.hash, "the served hash is the printed one");
        let endpoint = client::endpoint(&hashes).unwrap();
        let inner = client::Conn::webtransport(&endpoint, &relay.wt)
            .await
            .expect("a WebTransport session");
        Conn {
            inner,
            _endpoint: Some(endpoint),
        }
    }

    pub async fn ws(relay: &Relay) -> Conn {
        Conn {
            inner: client::Conn::websocket(&relay.ws).await.expect("a WebSocket session"),
            _endpoint: None,
        }
    }

    pub async fn send(&mut self, m: &Message) {
        self.send_raw(&m.to_frame().unwrap()).await;
    }

    /// Sends bytes as they are. Errors are ignored: the relay may have closed already.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.inner.send_raw(bytes).await;
    }

    /// Ends the stream (WebTransport) or sends a text message (WebSocket).
    pub async fn finish(&mut self) {
        let _ = self.inner.finish().await;
    }

    /// The next frame from the relay, or `None` once it has closed the session.
    pub async fn recv(&mut self) -> Option<Message> {
        tokio::time::timeout(FRAME_WAIT, self.inner.recv())
            .await
            .expect("a frame from the relay in time")
            .expect("the relay sends valid frames")
    }

    /// Reads until the relay ends the session; returns the Close or Refused it sent.
    pub async fn closing(&mut self) -> Closing {
        loop {
            match self.recv().await {
                Some(Message::Close(c)) | Some(Message::Refused(c)) => {
                    self.inner.close();
                    return c;
                }
                Some(_) => continue,
                None => panic!("the relay ended the session without a reason"),
            }
        }
    }
}

/// A fresh in-memory database with collection "c".
pub fn database(site: &str) -> Database {
    let mut db = Database::open_in_memory(site).unwrap();
    db.create_collection("c", DIM, Metric::Euclidean).unwrap();
    db
}

pub fn upsert(db: &mut Database, id: &str, x: f32) {
    db.upsert(
        "c",
        vec![Record {
            id: id.into(),
            vector: &[x, 1.0, 2.0, 3.0],
            metadata: Some(serde_json::json!({ "x": x })),
            text: Some(format!("record {id}")),
        }],
    )
    .unwrap();
}

/// Every row of collection "c", tombstones included, sorted by id: what sites compare.
pub fn state(db: &mut Database) -> Vec<Op> {
    let mut ops: Vec<Op> = db
        .ops_since("c", 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(op, _)| op)
        .collect();
    ops.sort_by(|a, b| a.id.cmp(&b.id));
    ops
}

/// Pushes every site's changes, then pulls each up to the room's head, which it
/// returns: one round of sync.
pub async fn settle(sites: &mut [&mut Site]) -> u64 {
    let mut head = 0;
    for s in sites.iter_mut() {
        head = head.max(s.push().await);
    }
    for s in sites.iter_mut() {
        s.pull_until(head).await;
    }
    head
}

/// A site: a database synced through a relay session.
pub struct Site {
    pub db: Database,
    pub conn: Conn,
    /// The room's durable sequence this site has every op up to: its cursor.
    pub upto: u64,
    /// The last op's sequence received, which may pass `upto`: the relay fans ops out
    /// before they are durable, and moves the cursor once they are.
    last: u64,
    /// The room's head when the session began.
    pub head: u64,
    /// Whether the backlog was a snapshot.
    pub snapshot: bool,
    /// The local change this site has pushed up to.
    pub pushed: u64,
    batch: u64,
    /// Ops received from the relay, as they came.
    pub received: Vec<(Op, u64)>,
}

impl Site {
    /// A new site `name`, its database empty, that joins `room` from the start: how most
    /// tests begin.
    pub async fn fresh(name: &str, conn: Conn, room: &str, token: &str) -> Site {
        Site::join(database(name), conn, room, token, 0).await.unwrap()
    }

    /// Says hello to `room` from `since` and reads the backlog; `Err` with the reason
    /// if the relay refuses.
    pub async fn join(db: Database, mut conn: Conn, room: &str, token: &str, since: u64) -> Result<Site, Closing> {
        let hello = Hello {
            room: room.into(),
            token: token.into(),
            site: db.site().into(),
            since,
        };
        conn.send(&Message::Hello(hello)).await;
        let welcome = match conn.recv().await {
            Some(Message::Welcome(w)) => w,
            Some(Message::Refused(c)) => return Err(c),
            other => panic!("expected Welcome or Refused, got {other:?}"),
        };
        let mut site = Site {
            db,
            conn,
            upto: if welcome.snapshot { 0 } else { since },
            last: 0,
            head: welcome.head,
            snapshot: welcome.snapshot,
            pushed: 0,
            batch: 0,
            received: Vec::new(),
        };
        // The backlog always ends with an Ops frame whose upto reaches the head.
        loop {
            site.next().await;
            if site.upto >= welcome.head {
                return Ok(site);
            }
        }
    }

    /// Reads one frame and applies it if it is ops; returns it.
    pub async fn next(&mut self) -> Message {
        let m = self.conn.recv().await.expect("the relay keeps the session open");
        if let Message::Ops(o) = &m {
            assert!(o.ops.windows(2).all(|w| w[0].1 < w[1].1), "ops in sequence order");
            let after = self.last.max(self.upto);
            assert!(o.ops.iter().all(|(_, seq)| *seq > after), "ops after what the site has");
            assert!(o.upto >= self.upto, "the cursor never goes back");
            self.last = o.ops.last().map_or(self.last, |&(_, seq)| seq);
            let ops: Vec<Op> = o.ops.iter().map(|(op, _)| op.clone()).collect();
            self.db.apply_ops("c", &ops).unwrap();
            self.received.extend(o.ops.iter().cloned());
            self.upto = o.upto;
        }
        m
    }

    /// Pushes the local changes made since the last push as one batch and waits for
    /// its ack (applying ops that arrive meanwhile); returns the ack's sequence.
    pub async fn push(&mut self) -> u64 {
        let changes = self.db.ops_since("c", self.pushed, wire::MAX_BATCH_OPS).unwrap();
        let Some(&(_, last)) = changes.last() else {
            return 0;
        };
        self.batch += 1;
        let seq = self
            .push_ops(self.batch, changes.into_iter().map(|(op, _)| op).collect())
            .await;
        self.pushed = last;
        seq
    }

    /// Pushes `ops` as batch `batch`, whatever they are (a test's resend, say), and
    /// waits for its ack (applying ops that arrive meanwhile); returns its sequence.
    pub async fn push_ops(&mut self, batch: u64, ops: Vec<Op>) -> u64 {
        self.conn.send(&Message::Push(Push { batch, ops })).await;
        loop {
            if let Message::Ack(a) = self.next().await {
                assert_eq!(a.batch, batch);
                return a.seq;
            }
        }
    }

    /// Every change the site's database holds, tombstones included, as ops.
    pub fn ops(&mut self) -> Vec<Op> {
        let changes = self.db.ops_since("c", 0, usize::MAX).unwrap();
        changes.into_iter().map(|(op, _)| op).collect()
    }

    /// Reads frames until this site has every op up to `head`.
    pub async fn pull_until(&mut self, head: u64) {
        while self.upto < head {
            self.next().await;
        }
    }

    pub fn state(&mut self) -> Vec<Op> {
        state(&mut self.db)
    }
}
