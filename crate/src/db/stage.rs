//! A database's side of a write that spans workers: batches kept aside (staged),
//! then committed or discarded, and the coordinator's record of its decision.

use super::*;

impl Database {
    /// Validates a batch as [`Database::upsert`] would and keeps it aside, durably, as
    /// `batch`, writing nothing yet: the first phase of a batch that spans workers.
    /// [`Database::commit_staged`] writes it; [`Database::discard_staged`] drops it.
    pub fn stage(&mut self, batch: &str, name: &str, mut records: Vec<Record>) -> Result<()> {
        let valid = self.validate(name, &mut records, |i| format!("records[{i}]"))?;
        self.check_room(&records)?;
        let json: Vec<Option<String>> = valid.metas.into_iter().map(|m| m.map(|(_, j)| j)).collect();
        self.store.stage(batch, name, &rows(&records, &valid.ids, &json))
    }

    /// Keeps aside, durably, the deletion of `ids` from collection `name` as batch
    /// `batch`: the first phase of a delete that spans workers.
    pub fn stage_delete(&mut self, batch: &str, name: &str, ids: &[&str]) -> Result<()> {
        self.load(name)?;
        let rows: Vec<Row> = ids
            .iter()
            .map(|id| Row {
                id,
                vector: &[],
                metadata: None,
                text: None,
            })
            .collect();
        self.store.stage(batch, name, &rows)
    }

    /// Writes staged batch `batch` (an upsert, or a delete if it was staged by
    /// [`Database::stage_delete`]) and forgets it, in one transaction; returns its
    /// collection's name and its ids, or `None` if it is not staged here (written
    /// already: committing twice is harmless).
    pub fn commit_staged(&mut self, batch: &str) -> Result<Option<(String, Vec<String>)>> {
        let Some((name, staged)) = self.store.staged(batch)? else {
            return Ok(None);
        };
        if staged.iter().all(|s| s.vector.is_empty()) {
            let ids: Vec<&str> = staged.iter().map(|s| s.id.as_str()).collect();
            self.remove(&name, &ids, Some(batch))?;
            return Ok(Some((name, staged.into_iter().map(|s| s.id).collect())));
        }
        let records = staged
            .iter()
            .map(|s| {
                let metadata = s.metadata.as_deref().map(serde_json::from_str).transpose();
                Ok(Record {
                    id: s.id.clone(),
                    vector: &s.vector,
                    metadata: metadata.map_err(|e| Error::new(Code::Storage, format!("staged.metadata: {e}")))?,
                    text: s.text.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ids = self.write(&name, records, Some(batch), None)?;
        Ok(Some((name, ids)))
    }

    /// The batches staged here and neither written nor dropped: after a crash, those
    /// the coordinator decided are committed, the others discarded.
    pub fn staged_batches(&self) -> Result<Vec<String>> {
        self.store.staged_batches()
    }

    pub fn discard_staged(&mut self, batch: &str) -> Result<()> {
        self.store.discard_staged(batch)
    }

    /// Records, as the coordinator of a batch that spans workers, that it commits.
    pub fn decide(&mut self, batch: &str) -> Result<()> {
        self.store.decide(batch)
    }

    pub fn decided(&self, batch: &str) -> Result<bool> {
        self.store.decided(batch)
    }

    /// Forgets the decision on `batch` (on all batches with `None`); returns how many
    /// decisions there were.
    pub fn forget(&mut self, batch: Option<&str>) -> Result<usize> {
        self.store.forget(batch)
    }
}
