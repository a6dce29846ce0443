//! The op log in one SQLite file: the embedded default, for a relay on one machine.
//!
//! WAL with `synchronous = FULL`, so a batch is on disk when [`Log::append`] returns and
//! a relay killed right after an ack still has it. One connection serves every room;
//! calls run on tokio's blocking threads.

use super::{
    fanned, sequence, within_bytes, Appended, Entry, Error, Limits, Log, Result, Room, Sequenced, Sequencing, State,
};
use futures_util::future::BoxFuture;
use rusqlite::{params, Connection, OptionalExtension};
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
            let row: Option<Room> = tx
                .query_row("SELECT head, dim, ops FROM rooms WHERE name = ?1", [&room], |r| {
                    Ok(Room {
                        head: r.get(0)?,
                        dim: r.get(1)?,
                        ops: r.get(2)?,
                    })
                })
                .optional()?;
            // Sequenced before it is written, so that the hub fans the new ops out while
            // they are inserted and made durable.
            let (new, after) = {
                let mut logged =
                    tx.prepare_cached("SELECT 1 FROM ops WHERE room = ?1 AND id = ?2 AND version = ?3 AND site = ?4")?;
                let exists = |e: &Entry| Ok(logged.exists(params![room, e.id, e.version as i64, e.site])?);
                match sequence(&room, row.unwrap_or_default(), batch, limits, exists)? {
                    Ok(sequenced) => sequenced,
                    Err(refused) => return Ok(refused),
                }
            };
            sequenced(fanned(&new));
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
                params![room, after.head, after.dim, after.ops],
            )?;
            tx.commit()?;
            Ok(Appended::Logged { head: after.head as u64 })
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
