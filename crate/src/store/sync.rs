//! The store's side of sync: a collection's rows read as ops, and other sites' ops
//! applied where they win (see [`crate::sync`]).

use super::*;
use crate::sync::{Body, Op};

impl Store {
    /// The changes of a collection after local change `seq`, oldest first, at most
    /// `limit`: every row whose `seq` is larger, tombstones included, as ops, each with
    /// its own `seq` (the caller's cursor for the next call).
    pub fn ops_since(&self, collection: i64, seq: u64, limit: usize) -> Result<Vec<(Op, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, deleted, vector, metadata, text, version, site, seq FROM vectors
             WHERE collection = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![collection, seq as i64, limit.min(i64::MAX as usize) as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let body = match r.get::<_, i64>(1)? {
                0 => {
                    let mut vector = Vec::new();
                    read_f32(r.get_ref(2)?.as_blob()?, &mut vector);
                    Some(Body {
                        vector,
                        metadata: r.get(3)?,
                        text: r.get(4)?,
                    })
                }
                _ => None,
            };
            let op = Op {
                id: r.get(0)?,
                version: r.get::<_, i64>(5)? as u64,
                site: r.get(6)?,
                body,
            };
            out.push((op, r.get::<_, i64>(7)? as u64));
        }
        Ok(out)
    }

    /// Applies other sites' ops to a collection in one transaction, each only where it
    /// wins over the row it would replace (see [`Op::wins_over`]); returns whether each
    /// was applied. A delete of an unknown id still leaves its tombstone, so an older
    /// upsert arriving later loses to it. The clock moves past every version seen.
    pub fn apply(&mut self, collection: i64, ops: &[Op]) -> Result<Vec<bool>> {
        let tx = self.conn.transaction()?;
        let (mut clock, mut seq) = (self.clock, self.seq);
        let mut applied = Vec::with_capacity(ops.len());
        {
            let mut current =
                tx.prepare_cached("SELECT version, site FROM vectors WHERE collection = ?1 AND id = ?2")?;
            let mut put = tx.prepare_cached(
                "INSERT INTO vectors(collection, id, vector, metadata, text, version, site, deleted, seq)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(collection, id) DO UPDATE SET vector = excluded.vector,
                   metadata = excluded.metadata, text = excluded.text, version = excluded.version,
                   site = excluded.site, deleted = excluded.deleted, seq = excluded.seq",
            )?;
            for op in ops {
                clock = clock.max(op.version);
                let stamp: Option<(i64, String)> = current
                    .query_row(params![collection, op.id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let wins = stamp.is_none_or(|(version, site)| op.wins_over(version as u64, &site));
                applied.push(wins);
                if !wins {
                    continue;
                }
                seq += 1;
                let (vector, metadata, text) = match &op.body {
                    Some(b) if self.keeps_vectors => (&b.vector[..], b.metadata.as_deref(), b.text.as_deref()),
                    Some(b) => (&[][..], b.metadata.as_deref(), b.text.as_deref()),
                    None => (&[][..], None, None),
                };
                put.execute(params![
                    collection,
                    op.id,
                    bytemuck::cast_slice::<f32, u8>(vector),
                    metadata,
                    text,
                    op.version as i64,
                    op.site,
                    op.body.is_none() as i64,
                    seq as i64
                ])?;
            }
        }
        Self::set_counters(&tx, clock, seq)?;
        tx.commit()?;
        (self.clock, self.seq) = (clock, seq);
        Ok(applied)
    }

    /// Removes `ids`, records and tombstones alike, without a trace: they moved to
    /// another file of this database with their stamps, which is no change for other
    /// sites to hear of. The collection's segment record goes in the same transaction,
    /// since its file still holds them and no tombstone would take them out on load.
    /// Returns how many live records went.
    pub fn hand_over(&mut self, collection: i64, ids: &[&str]) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut live = 0;
        {
            let mut remove =
                tx.prepare_cached("DELETE FROM vectors WHERE collection = ?1 AND id = ?2 RETURNING deleted")?;
            for id in ids {
                let deleted: Option<i64> = remove.query_row(params![collection, id], |r| r.get(0)).optional()?;
                live += usize::from(deleted == Some(0));
            }
        }
        tx.execute("DELETE FROM segments WHERE collection = ?1", [collection])?;
        tx.commit()?;
        Ok(live)
    }

    /// Forgets a collection's tombstones older than `version`; returns how many. Only
    /// safe once every peer has every op below it: a late upsert older than a
    /// forgotten delete would bring its record back. A tombstone newer than the
    /// collection's segment stays: loading replays it to take the row out of the segment.
    pub fn purge_tombstones(&mut self, collection: i64, version: u64) -> Result<usize> {
        Ok(self.conn.execute(
            "DELETE FROM vectors WHERE collection = ?1 AND deleted = 1 AND version < ?2
               AND seq <= ifnull((SELECT seq FROM segments WHERE collection = ?1), seq)",
            params![collection, version as i64],
        )?)
    }
}
