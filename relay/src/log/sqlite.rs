//! The op log in one SQLite file: the embedded default, for a relay on one machine.
//!
//! WAL with `synchronous = FULL`, so a batch is on disk when [`Log::append`] returns and
//! a relay killed right after an ack still has it. One connection serves every room;
//! calls run on tokio's blocking threads.

use super::{within_bytes, Appended, Entry, Error, Limits, Log, Result, Sequenced, Sequencing, State};
use futures_util::future::BoxFuture;
use quiver::sync::wire::Reason;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct SqliteLog {
    conn: Arc<Mutex<Connection>>,
    limits: Limits,
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error(e.to_string())
    }
}

impl SqliteLog {
    pub fn open(path: &Path, limits: Limits) -> Result<SqliteLog> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS rooms(
               name TEXT PRIMARY KEY, head INTEGER NOT NULL, floor INTEGER NOT NULL,
               dim INTEGER, ops INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS ops(
               room TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, site TEXT NOT NULL,
               version INTEGER NOT NULL, deleted INTEGER NOT NULL, at INTEGER NOT NULL,
               op BLOB NOT NULL, PRIMARY KEY(room, seq)) WITHOUT ROWID;
             CREATE UNIQUE INDEX IF NOT EXISTS ops_stamp ON ops(room, id, version, site);",
        )?;
        Ok(SqliteLog {
            conn: Arc::new(Mutex::new(conn)),
            limits,
        })
    }

    /// Runs `f` with the connection on a blocking thread.
    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> BoxFuture<'static, Result<T>> {
        let conn = self.conn.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap_or_else(|p| p.into_inner())))
                .await
                .map_err(|e| Error(e.to_string()))?
        })
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Log for SqliteLog {
    fn append<'a>(
        &'a self,
        room: &'a str,
        batch: Vec<Entry>,
        sequenced: Sequencing,
    ) -> BoxFuture<'a, Result<Appended>> {
        let (room, limits) = (room.to_owned(), self.limits);
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let row: Option<(i64, Option<i64>, i64)> = tx
                .query_row("SELECT head, dim, ops FROM rooms WHERE name = ?1", [&room], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let (mut head, mut dim, mut count) = row.unwrap_or((0, None, 0));
            // Sequence the batch before writing it, so that the hub fans its new ops out
            // while they are inserted and made durable: new is by stamp, against the log
            // and the batch's earlier ops.
            let mut new: Vec<(i64, Entry)> = Vec::new();
            {
                let mut logged =
                    tx.prepare_cached("SELECT 1 FROM ops WHERE room = ?1 AND id = ?2 AND version = ?3 AND site = ?4")?;
                let mut seen = HashSet::new();
                for (i, e) in batch.into_iter().enumerate() {
                    if let Some(d) = e.dim {
                        match dim {
                            Some(room_dim) if room_dim != d as i64 => {
                                return Ok(Appended::Refused(
                                    Reason::InvalidOps,
                                    format!("push.ops[{i}].vector: dimension {d}, but room {room:?} holds {room_dim}"),
                                ))
                            }
                            _ => dim = Some(d as i64),
                        }
                    }
                    let stamp = (e.id.clone(), e.version, e.site.clone());
                    if !seen.insert(stamp) || logged.exists(params![room, e.id, e.version as i64, e.site])? {
                        continue;
                    }
                    head += 1;
                    count += 1;
                    new.push((head, e));
                }
            }
            if count as u64 > limits.room_ops {
                return Ok(Appended::Refused(
                    Reason::RoomFull,
                    format!(
                        "room {room:?}: {count} ops, above the relay's limit of {}",
                        limits.room_ops
                    ),
                ));
            }
            sequenced(
                new.iter().map(|(seq, e)| (*seq as u64, e.bytes.clone())).collect(),
                head as u64,
            );
            let at = now_ms();
            {
                let mut put = tx.prepare_cached(
                    "INSERT INTO ops(room, seq, id, site, version, deleted, at, op) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (seq, e) in &new {
                    let deleted = e.dim.is_none() as i64;
                    put.execute(params![room, seq, e.id, e.site, e.version as i64, deleted, at, e.bytes])?;
                }
            }
            tx.execute(
                "INSERT INTO rooms(name, head, floor, dim, ops) VALUES(?1, ?2, 0, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET head = excluded.head, dim = excluded.dim, ops = excluded.ops",
                params![room, head, dim, count],
            )?;
            tx.commit()?;
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
        let room = room.to_owned();
        self.with(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT seq, op FROM ops WHERE room = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
            let rows = stmt.query_map(params![room, since as i64, max_ops as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })?;
            Ok(within_bytes(rows, max_bytes)?)
        })
    }

    fn state<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<State>> {
        let room = room.to_owned();
        self.with(move |conn| {
            let state = conn
                .query_row("SELECT head, floor FROM rooms WHERE name = ?1", [&room], |r| {
                    Ok(State {
                        head: r.get::<_, i64>(0)? as u64,
                        floor: r.get::<_, i64>(1)? as u64,
                    })
                })
                .optional()?;
            Ok(state.unwrap_or_default())
        })
    }

    fn compact(&self, before_ms: u64) -> BoxFuture<'_, Result<u64>> {
        self.with(move |conn| {
            let tx = conn.transaction()?;
            // An op loses to another of its id with a larger (version, site); SQLite
            // compares TEXT bytewise, as Rust compares site ids.
            let superseded = tx.execute(
                "DELETE FROM ops WHERE EXISTS (SELECT 1 FROM ops o
                   WHERE o.room = ops.room AND o.id = ops.id
                     AND (o.version > ops.version OR (o.version = ops.version AND o.site > ops.site)))",
                [],
            )?;
            tx.execute(
                "UPDATE rooms SET floor = max(floor, ifnull((SELECT max(seq) FROM ops
                   WHERE ops.room = rooms.name AND deleted = 1 AND at < ?1), 0))",
                [before_ms as i64],
            )?;
            let tombstones = tx.execute("DELETE FROM ops WHERE deleted = 1 AND at < ?1", [before_ms as i64])?;
            tx.execute(
                "UPDATE rooms SET ops = (SELECT count(*) FROM ops WHERE ops.room = rooms.name)",
                [],
            )?;
            tx.commit()?;
            Ok((superseded + tombstones) as u64)
        })
    }
}
