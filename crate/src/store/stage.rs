//! The store's side of a write that spans workers: staged batches in the `staged`
//! table, and the decisions in `committed`.

use super::*;

impl Store {
    /// Keeps `rows` of collection `name` aside, durably, as batch `batch`: the first
    /// phase of a write that spans workers. Nothing is visible until it is written.
    /// A batch of rows without vectors is a delete of their ids (an upsert always has
    /// one).
    pub fn stage(&mut self, batch: &str, name: &str, rows: &[Row]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO staged VALUES(?1, ?2, ?3, ?4, ?5, ?6)")?;
            for row in rows {
                stmt.execute(params![
                    batch,
                    name,
                    row.id,
                    bytemuck::cast_slice::<f32, u8>(row.vector),
                    row.metadata,
                    row.text
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A staged batch: its collection's name and its rows in order, if it is staged.
    pub fn staged(&self, batch: &str) -> Result<Option<(String, Vec<Stored>)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT collection, id, vector, metadata, text FROM staged WHERE batch = ?1 ORDER BY rowid",
        )?;
        let mut rows = stmt.query([batch])?;
        let mut name = None;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            name.get_or_insert(r.get::<_, String>(0)?);
            let mut vector = Vec::new();
            read_f32(r.get_ref(2)?.as_blob()?, &mut vector);
            out.push(Stored {
                id: r.get(1)?,
                vector,
                metadata: r.get(3)?,
                text: r.get(4)?,
            });
        }
        Ok(name.map(|n| (n, out)))
    }

    /// The batches staged here and not yet written or discarded.
    pub fn staged_batches(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT DISTINCT batch FROM staged ORDER BY batch")?;
        let batches = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(batches)
    }

    /// Drops a staged batch unwritten.
    pub fn discard_staged(&mut self, batch: &str) -> Result<()> {
        self.conn.execute("DELETE FROM staged WHERE batch = ?1", [batch])?;
        Ok(())
    }

    /// Records that batch `batch` is committed: from here on, every part of it staged
    /// anywhere is to be written. The commit point of a write that spans workers.
    pub fn decide(&mut self, batch: &str) -> Result<()> {
        self.conn
            .execute("INSERT OR IGNORE INTO committed VALUES(?1)", [batch])?;
        Ok(())
    }

    /// Whether batch `batch` was recorded as committed (and not forgotten since).
    pub fn decided(&self, batch: &str) -> Result<bool> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM committed WHERE batch = ?1", [batch], |r| r.get(0))?;
        Ok(n > 0)
    }

    /// Forgets the record of batch `batch` (of every batch with `None`), once no part
    /// of it is staged anywhere; returns how many records there were.
    pub fn forget(&mut self, batch: Option<&str>) -> Result<usize> {
        Ok(match batch {
            Some(b) => self.conn.execute("DELETE FROM committed WHERE batch = ?1", [b])?,
            None => self.conn.execute("DELETE FROM committed", [])?,
        })
    }
}
