//! The op log in PostgreSQL, shared by several relays: `--store postgres://...`.
//!
//! Appends to a room lock its row (`FOR UPDATE`), so relays give sequences one after
//! another, and announce the new head with `NOTIFY` in the same transaction; every
//! relay `LISTEN`s and tells its hub, whose sessions read what they lack from the log.
//! Sites are compared with `COLLATE "C"`, bytewise as Rust compares them.

use super::{
    fanned, sequence, within_bytes, Appended, Entry, Error, Limits, Log, Result, Room, Sequenced, Sequencing, State,
};
use futures_util::future::BoxFuture;
use std::collections::HashSet;
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
            let row = Room {
                head: row.get(0),
                dim: row.get::<_, Option<i32>>(1).map(i64::from),
                ops: row.get(2),
            };
            // Sequenced before it is written, as the SQLite log does: which ops the log
            // holds already is one query for the whole batch.
            let stamps = (
                batch.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
                batch.iter().map(|e| e.version as i64).collect::<Vec<_>>(),
                batch.iter().map(|e| e.site.as_str()).collect::<Vec<_>>(),
            );
            let held: HashSet<(String, i64, String)> = tx
                .query(
                    "SELECT id, version, site FROM quiver_ops WHERE room = $1
                       AND (id, version, site) IN (SELECT * FROM unnest($2::text[], $3::int8[], $4::text[]))",
                    &[&room, &stamps.0, &stamps.1, &stamps.2],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let logged = |e: &Entry| Ok(held.contains(&(e.id.clone(), e.version as i64, e.site.clone())));
            let (new, after) = match sequence(room, row, batch, self.limits, logged)? {
                Ok(sequenced) => sequenced,
                Err(refused) => return Ok(refused),
            };
            sequenced(fanned(&new));
            // One statement for the batch, not a round trip an op.
            let column = |f: fn(&Entry) -> String| new.iter().map(|(_, e)| f(e)).collect::<Vec<_>>();
            let seqs: Vec<i64> = new.iter().map(|(seq, _)| *seq).collect();
            let versions: Vec<i64> = new.iter().map(|(_, e)| e.version as i64).collect();
            let deleted: Vec<bool> = new.iter().map(|(_, e)| e.dim.is_none()).collect();
            let bytes: Vec<&[u8]> = new.iter().map(|(_, e)| &e.bytes[..]).collect();
            tx.execute(
                "INSERT INTO quiver_ops(room, seq, id, site, version, deleted, at, op)
                 SELECT $1, seq, id, site, version, deleted, $7, op
                 FROM unnest($2::int8[], $3::text[], $4::text[], $5::int8[], $6::bool[], $8::bytea[])
                   AS t(seq, id, site, version, deleted, op)",
                &[
                    &room,
                    &seqs,
                    &column(|e| e.id.clone()),
                    &column(|e| e.site.clone()),
                    &versions,
                    &deleted,
                    &now_ms(),
                    &bytes,
                ],
            )
            .await?;
            let dim = after.dim.map(|d| d as i32);
            tx.execute(
                "UPDATE quiver_rooms SET head = $2, dim = $3, ops = $4 WHERE name = $1",
                &[&room, &after.head, &dim, &after.ops],
            )
            .await?;
            if !new.is_empty() {
                tx.execute(
                    "SELECT pg_notify($1, $2)",
                    &[&CHANNEL, &format!("{room}\n{}", after.head)],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(Appended::Logged {
                head: after.head as u64,
            })
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
