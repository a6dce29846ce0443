//! The op log in PostgreSQL, shared by several relays: `--store postgres://...`.
//!
//! Appends to a room lock its row (`FOR UPDATE`), so relays give sequences one after
//! another, and announce the new head with `NOTIFY` in the same transaction; every
//! relay `LISTEN`s and tells its hub, whose sessions read what they lack from the log.
//! Sites are compared with `COLLATE "C"`, bytewise as Rust compares them.

use super::{within_bytes, Appended, Entry, Error, Limits, Log, Result, Sequenced, Sequencing, State};
use futures_util::future::BoxFuture;
use quiver::sync::wire::Reason;
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// The channel heads are announced on.
const CHANNEL: &str = "quiver_rooms";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS quiver_rooms(
  name TEXT COLLATE \"C\" PRIMARY KEY, head BIGINT NOT NULL, floor BIGINT NOT NULL,
  dim INTEGER, ops BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS quiver_ops(
  room TEXT COLLATE \"C\" NOT NULL, seq BIGINT NOT NULL, id TEXT COLLATE \"C\" NOT NULL,
  site TEXT COLLATE \"C\" NOT NULL, version BIGINT NOT NULL, deleted BOOLEAN NOT NULL,
  at BIGINT NOT NULL, op BYTEA NOT NULL, PRIMARY KEY(room, seq));
CREATE UNIQUE INDEX IF NOT EXISTS quiver_ops_stamp ON quiver_ops(room, id, version, site);";

pub struct PostgresLog {
    client: tokio::sync::Mutex<Client>,
    /// The listening connection lives as long as its client.
    _listener: Client,
    limits: Limits,
    remote: Mutex<Option<mpsc::UnboundedReceiver<(String, u64)>>>,
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        Error(e.to_string())
    }
}

impl PostgresLog {
    /// Connects twice to `url`: once for the log, once to listen for other relays.
    pub async fn connect(url: &str, limits: Limits) -> Result<PostgresLog> {
        let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("quiver-relay: postgres: {e}");
            }
        });
        // Two relays starting together would race on CREATE ... IF NOT EXISTS.
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_lock(7134); {SCHEMA} SELECT pg_advisory_unlock(7134);"
            ))
            .await?;
        let (listener, mut conn) = tokio_postgres::connect(url, NoTls).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(m) = futures_util::StreamExt::next(&mut messages).await {
                match m {
                    Ok(AsyncMessage::Notification(n)) => {
                        if let Some((room, head)) = n.payload().rsplit_once('\n') {
                            if let Ok(head) = head.parse() {
                                let _ = tx.send((room.to_owned(), head));
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("quiver-relay: postgres listener: {e}");
                        break;
                    }
                }
            }
        });
        listener.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        Ok(PostgresLog {
            client: tokio::sync::Mutex::new(client),
            _listener: listener,
            limits,
            remote: Mutex::new(Some(rx)),
        })
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Log for PostgresLog {
    fn append<'a>(
        &'a self,
        room: &'a str,
        batch: Vec<Entry>,
        sequenced: Sequencing,
    ) -> BoxFuture<'a, Result<Appended>> {
        Box::pin(async move {
            let mut client = self.client.lock().await;
            let tx = client.transaction().await?;
            tx.execute(
                "INSERT INTO quiver_rooms(name, head, floor, ops) VALUES($1, 0, 0, 0) ON CONFLICT DO NOTHING",
                &[&room],
            )
            .await?;
            let row = tx
                .query_one(
                    "SELECT head, dim, ops FROM quiver_rooms WHERE name = $1 FOR UPDATE",
                    &[&room],
                )
                .await?;
            let (mut head, mut dim, mut count): (i64, Option<i32>, i64) = (row.get(0), row.get(1), row.get(2));
            let at = now_ms();
            let put = tx
                .prepare(
                    "INSERT INTO quiver_ops(room, seq, id, site, version, deleted, at, op)
                     VALUES($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (room, id, version, site) DO NOTHING",
                )
                .await?;
            let mut new = Vec::new();
            for (i, e) in batch.into_iter().enumerate() {
                if let Some(d) = e.dim {
                    match dim {
                        Some(room_dim) if room_dim as usize != d => {
                            return Ok(Appended::Refused(
                                Reason::InvalidOps,
                                format!("push.ops[{i}].vector: dimension {d}, but room {room:?} holds {room_dim}"),
                            ))
                        }
                        _ => dim = Some(d as i32),
                    }
                }
                let seq = head + 1;
                let added = tx
                    .execute(
                        &put,
                        &[
                            &room,
                            &seq,
                            &e.id,
                            &e.site,
                            &(e.version as i64),
                            &e.dim.is_none(),
                            &at,
                            &e.bytes,
                        ],
                    )
                    .await?;
                if added == 1 {
                    head = seq;
                    count += 1;
                    new.push((seq as u64, e.bytes));
                }
            }
            if count as u64 > self.limits.room_ops {
                return Ok(Appended::Refused(
                    Reason::RoomFull,
                    format!(
                        "room {room:?}: {count} ops, above the relay's limit of {}",
                        self.limits.room_ops
                    ),
                ));
            }
            tx.execute(
                "UPDATE quiver_rooms SET head = $2, dim = $3, ops = $4 WHERE name = $1",
                &[&room, &head, &dim, &count],
            )
            .await?;
            if !new.is_empty() {
                tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &format!("{room}\n{head}")])
                    .await?;
            }
            sequenced(new, head as u64);
            tx.commit().await?;
            Ok(Appended::Logged { head: head as u64 })
        })
    }

    fn read<'a>(
        &'a self,
        room: &'a str,
        since: u64,
        max_ops: usize,
        max_bytes: usize,
    ) -> BoxFuture<'a, Result<Sequenced>> {
        Box::pin(async move {
            let client = self.client.lock().await;
            let rows = client
                .query(
                    "SELECT seq, op FROM quiver_ops WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&room, &(since as i64), &(max_ops as i64)],
                )
                .await?;
            let rows = rows
                .iter()
                .map(|r| Ok::<_, Error>((r.get::<_, i64>(0) as u64, r.get(1))));
            within_bytes(rows, max_bytes)
        })
    }

    fn state<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<State>> {
        Box::pin(async move {
            let client = self.client.lock().await;
            let row = client
                .query_opt("SELECT head, floor FROM quiver_rooms WHERE name = $1", &[&room])
                .await?;
            Ok(row.map_or_else(State::default, |r| State {
                head: r.get::<_, i64>(0) as u64,
                floor: r.get::<_, i64>(1) as u64,
            }))
        })
    }

    fn compact(&self, before_ms: u64) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut client = self.client.lock().await;
            let tx = client.transaction().await?;
            let superseded = tx
                .execute(
                    "DELETE FROM quiver_ops AS l WHERE EXISTS (SELECT 1 FROM quiver_ops o
                       WHERE o.room = l.room AND o.id = l.id
                         AND (o.version > l.version OR (o.version = l.version AND o.site > l.site)))",
                    &[],
                )
                .await?;
            let before = before_ms as i64;
            tx.execute(
                "UPDATE quiver_rooms SET floor = greatest(floor, coalesce((SELECT max(seq) FROM quiver_ops
                   WHERE room = quiver_rooms.name AND deleted AND at < $1), 0))",
                &[&before],
            )
            .await?;
            let tombstones = tx
                .execute("DELETE FROM quiver_ops WHERE deleted AND at < $1", &[&before])
                .await?;
            tx.execute(
                "UPDATE quiver_rooms SET ops = (SELECT count(*) FROM quiver_ops WHERE room = quiver_rooms.name)",
                &[],
            )
            .await?;
            tx.commit().await?;
            Ok(superseded + tombstones)
        })
    }

    fn remote_heads(&self) -> Option<mpsc::UnboundedReceiver<(String, u64)>> {
        self.remote.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
