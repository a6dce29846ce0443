//! A database's side of sync: its changes as ops, and other sites' ops merged in
//! (see [`crate::sync`]).

use super::*;
use crate::sync::wire::{Message, Push};
use crate::sync::Op;

impl Database {
    /// The collection's changes after local change `seq`, oldest first, at most
    /// `limit`, each with its own `seq` (the cursor for the next call): what a peer that
    /// has seen this site's changes up to `seq` lacks. In a database that keeps no
    /// vectors in SQLite, upserts carry empty vectors, for the caller to fill in.
    pub fn ops_since(&mut self, name: &str, seq: u64, limit: usize) -> Result<Vec<(Op, u64)>> {
        let key = self.load(name)?.settings.key;
        self.store.ops_since(key, seq, limit)
    }

    /// This site's changes after local change `seq` (of at most `limit` read) as one
    /// Push frame numbered `batch`: the frame (`None` when no change read was this
    /// site's: the others' came from a relay, which has them), the cursor past every
    /// change read, and how many ops the frame holds. For a database that keeps its
    /// vectors in SQLite; one without would push empty ones.
    pub fn push_frame(
        &mut self,
        name: &str,
        seq: u64,
        limit: usize,
        batch: u64,
    ) -> Result<(Option<Vec<u8>>, u64, usize)> {
        if !self.store.keeps_vectors() {
            return Err(Error::invalid(
                "push: this database keeps no vectors in SQLite; read its ops and fill them in",
            ));
        }
        let changes = self.ops_since(name, seq, limit)?;
        let upto = changes.last().map_or(seq, |&(_, s)| s);
        let ops: Vec<Op> = changes
            .into_iter()
            .map(|(op, _)| op)
            .filter(|op| op.site == self.store.site())
            .collect();
        if ops.is_empty() {
            return Ok((None, upto, 0));
        }
        let count = ops.len();
        let frame = Message::Push(Push { batch, ops }).to_frame()?;
        Ok((Some(frame), upto, count))
    }

    /// Applies other sites' ops to a collection (see [`crate::sync`]), to SQLite and its
    /// search copy, each only where it wins; returns whether each did. Every op is
    /// checked first, bodies as [`Database::upsert`] checks records, so a bad op changes
    /// nothing.
    pub fn apply_ops(&mut self, name: &str, ops: &[Op]) -> Result<Vec<bool>> {
        for (i, op) in ops.iter().enumerate() {
            op.check(|| format!("ops[{i}]"))?;
        }
        // The upserts among the ops, each with its position, which errors name.
        let at: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].body.is_some()).collect();
        let mut bodies: Vec<Record> = at
            .iter()
            .map(|&i| {
                let (op, b) = (&ops[i], ops[i].body.as_ref().expect("an upsert"));
                let metadata = b.metadata.as_deref().map(serde_json::from_str::<Value>).transpose();
                Ok(Record {
                    id: op.id.clone(),
                    vector: &b.vector,
                    metadata: metadata
                        .map_err(|e| Error::new(Code::InvalidMetadata, format!("ops[{i}].metadata: {e}")))?,
                    text: b.text.clone(),
                })
            })
            .collect::<Result<_>>()?;
        let valid = self.validate(name, &mut bodies, |j| format!("ops[{}]", at[j]))?;
        let applied = self.store.apply(valid.key, ops)?;
        let c = self.collections.get_mut(name).expect("validated above");
        let mut metas = valid.metas.into_iter();
        let mut prepared = Vec::new();
        let mut count = 0;
        for (op, &applied) in ops.iter().zip(&applied) {
            let meta = op.body.as_ref().map(|_| metas.next().expect("one a body"));
            if !applied {
                continue;
            }
            count += 1;
            match (&op.body, meta) {
                (Some(b), Some(m)) => {
                    prepare(valid.metric, &b.vector, &mut prepared);
                    c.index.upsert(&op.id, &prepared, m.map(|m| m.0));
                }
                _ => {
                    c.index.remove(&op.id);
                }
            }
        }
        c.dirty += count;
        Ok(applied)
    }

    /// Removes `ids` that moved, with their stamps, to another file of this database
    /// (see [`Store::hand_over`]): no tombstones, so nothing to push, and the moved
    /// copies keep their versions, so a concurrent edit elsewhere still wins or loses
    /// as it would have. Returns how many live records went.
    pub fn hand_over(&mut self, name: &str, ids: &[&str]) -> Result<usize> {
        let key = self.load(name)?.settings.key;
        let n = self.store.hand_over(key, ids)?;
        let c = self.collections.get_mut(name).expect("loaded above");
        for id in ids {
            c.index.remove(id);
        }
        // Its segment record is gone: the next checkpoint writes a whole one.
        c.dirty = c.index.len().max(1);
        Ok(n)
    }

    /// Forgets a collection's tombstones older than `version` (see
    /// [`Store::purge_tombstones`]); returns how many.
    pub fn purge_tombstones(&mut self, name: &str, version: u64) -> Result<usize> {
        let key = self.load(name)?.settings.key;
        self.store.purge_tombstones(key, version)
    }
}
