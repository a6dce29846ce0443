//! Which collections' search copies are in memory: loaded on first use (from a
//! segment plus the changes since, or from the rows), evicted least recently used past
//! a cap, and written back as segments when enough of them changed.

use super::*;

impl Database {
    /// Keeps at most `n` (at least 1) collections' search copies loaded, evicting the
    /// least recently used; an evicted one is loaded again from SQLite when next used.
    pub fn set_max_loaded(&mut self, n: usize) {
        self.max_loaded = n.max(1);
        self.shed(None);
    }

    /// How many collections have their search copy in memory.
    pub fn loaded(&self) -> usize {
        self.collections.len()
    }

    /// Evicts the least recently used collections (but `except`) past the cap, unless
    /// the rows could not rebuild them: in a database that keeps no vectors.
    fn shed(&mut self, except: Option<&str>) {
        while self.store.keeps_vectors() && self.collections.len() > self.max_loaded {
            let victim = self
                .collections
                .iter()
                .filter(|(n, _)| Some(n.as_str()) != except)
                .min_by_key(|(_, c)| c.used)
                .map(|(n, _)| n.clone());
            match victim {
                Some(v) => self.collections.remove(&v),
                None => break,
            };
        }
    }

    /// Adds a loaded collection, making room under the LRU's cap.
    pub(super) fn keep(&mut self, name: &str, settings: Settings, index: Box<dyn Index>, dirty: usize) {
        self.uses += 1;
        self.collections.insert(
            name.to_owned(),
            Collection {
                settings,
                index,
                used: self.uses,
                dirty,
            },
        );
        self.shed(Some(name));
    }

    /// The collection's search copy, loaded on first use: from its segment and the
    /// rows changed since, or without a usable segment from all its rows.
    pub(super) fn load(&mut self, name: &str) -> Result<&mut Collection> {
        if let Some(c) = self.collections.get_mut(name) {
            self.uses += 1;
            c.used = self.uses;
        } else {
            let settings = self
                .store
                .settings(name)?
                .ok_or_else(|| Error::new(Code::NotFound, format!("collection {name:?} does not exist")))?;
            let (index, dirty) = match self.load_segment(&settings)? {
                Some(loaded) => loaded,
                None => {
                    let mut index = settings
                        .index
                        .empty(settings.dim, settings.metric, settings.quantization);
                    let mut scratch = (Vec::new(), Vec::new());
                    self.store.scan(settings.key, |row| {
                        apply(index.as_mut(), settings.metric, row, &mut scratch)
                    })?;
                    let dirty = index.len();
                    (index, dirty)
                }
            };
            self.keep(name, settings, index, dirty);
        }
        Ok(self.collections.get_mut(name).expect("loaded above"))
    }

    /// The collection's segment brought up to date, with how many rows that replayed;
    /// `None` when it has no segment or the file does not match its record (the rows
    /// are the truth, so that only costs time).
    fn load_segment(&mut self, settings: &Settings) -> Result<Option<(Box<dyn Index>, usize)>> {
        let (Some(files), Some(record)) = (self.segments.as_deref_mut(), self.store.segment(settings.key)?) else {
            return Ok(None);
        };
        let Ok(mut index) = segment::read(files, settings, record) else {
            return Ok(None);
        };
        let mut replayed = 0;
        let mut scratch = (Vec::new(), Vec::new());
        self.store.changes_since(settings.key, record.seq, |change| {
            replayed += 1;
            match change.row {
                Some(row) => apply(index.as_mut(), settings.metric, row, &mut scratch),
                None => {
                    index.remove(change.id);
                    Ok(())
                }
            }
        })?;
        Ok(Some((index, replayed)))
    }

    /// Keeps segments in `files`: loading a large collection then reads its vectors in
    /// a few large pieces instead of row by row.
    pub fn set_segment_files(&mut self, files: Box<dyn SegmentFiles>) {
        self.segments = Some(files);
    }

    /// The keys of the collections that have a segment (whose files must be at hand).
    pub fn segment_keys(&self) -> Result<Vec<i64>> {
        self.store.segment_keys()
    }

    /// Loaded collections whose segment is missing or stale enough to rewrite: at
    /// least [`SEGMENT_MIN_ROWS`] rows, a sixteenth of them changed since. Names and keys.
    pub fn segments_due(&self) -> Vec<(String, i64)> {
        if self.segments.is_none() {
            return Vec::new();
        }
        let mut due: Vec<_> = self
            .collections
            .iter()
            .filter(|(_, c)| c.index.len() >= SEGMENT_MIN_ROWS && c.dirty > 0 && c.dirty * 16 >= c.index.len())
            .map(|(name, c)| (name.clone(), c.settings.key))
            .collect();
        due.sort_unstable();
        due
    }

    /// Writes the collection's segment as it is now, so that the next load reads it
    /// whole. The old record is dropped first and the new one kept only once the file
    /// is flushed.
    pub fn write_segment(&mut self, name: &str) -> Result<()> {
        let key = self.load(name)?.settings.key;
        let Some(files) = self.segments.as_deref_mut() else {
            return Err(Error::invalid("segments: this database keeps no segment files"));
        };
        let c = self.collections.get_mut(name).expect("loaded above");
        self.store.set_segment(key, None)?;
        let seq = self.store.seq();
        let bytes = segment::write(files, key, seq, c.index.as_ref())?;
        self.store.set_segment(key, Some(SegmentRecord { seq, bytes }))?;
        c.dirty = 0;
        Ok(())
    }
}

/// Puts a stored row into a search copy: decoded, prepared for the metric, with its
/// metadata parsed. `scratch` holds the two vectors' buffers across rows.
fn apply(index: &mut dyn Index, metric: Metric, row: Scanned, scratch: &mut (Vec<f32>, Vec<f32>)) -> Result<()> {
    let (raw, prepared) = scratch;
    raw.clear();
    store::read_f32(row.vector, raw);
    prepare(metric, raw, prepared);
    let metadata = row
        .metadata
        .map(serde_json::from_str::<Metadata>)
        .transpose()
        .map_err(|e| {
            Error::new(
                Code::Storage,
                format!("stored metadata of {:?} is not a JSON object: {e}", row.id),
            )
        })?;
    index.upsert(row.id, prepared, metadata);
    Ok(())
}
