//! Searching a database's collections: by vector (one query or a batch), the
//! candidates MMR picks from, and by keywords.

use super::*;

impl Database {
    /// The `opts.k` closest records to `query`, best first.
    pub fn search(&mut self, name: &str, query: &[f32], opts: &SearchOptions) -> Result<Vec<Hit<'_>>> {
        search_one(self.load(name)?, query, opts)
    }

    /// [`Database::search`] for each query in `queries` (back to back, the collection's
    /// dimension each), in one pass over the collection.
    pub fn search_many(&mut self, name: &str, queries: &[f32], opts: &SearchOptions) -> Result<Vec<Vec<Hit<'_>>>> {
        search_in(self.load(name)?, queries, opts)
    }

    /// [`Database::search`] with each hit's vector as the search copy holds it (prepared
    /// for the metric: unit length under cosine), back to back in the hits' order: the
    /// candidates [`crate::mmr::select`] picks from.
    pub fn candidates(&mut self, name: &str, query: &[f32], opts: &SearchOptions) -> Result<(Vec<Hit<'_>>, Vec<f32>)> {
        let c: &Collection = self.load(name)?;
        let hits = search_one(c, query, opts)?;
        let rows = c.index.rows();
        let mut vectors = Vec::with_capacity(hits.len() * rows.dim());
        for hit in &hits {
            let slot = rows.slot(hit.id).expect("a hit is a row of the index");
            vectors.extend_from_slice(rows.row(slot as usize));
        }
        Ok((hits, vectors))
    }

    /// The `opts.k` records whose text best matches `words` (any of them) by BM25, best
    /// first, ties by id, passing `opts.filter`; each score is BM25 as a positive number,
    /// higher being better (see [`Store::search_text`] for whose statistics it uses).
    /// `opts.threshold` and `opts.ef` mean nothing here.
    pub fn search_text(&mut self, name: &str, words: &str, opts: &SearchOptions) -> Result<Vec<Hit<'_>>> {
        check_k(opts.k)?;
        if words.trim().is_empty() {
            return Err(Error::invalid(
                "text: must hold a word to search for, got an empty text",
            ));
        }
        let key = self.load(name)?.settings.key;
        let matches = self.store.search_text(key, words)?;
        let rows = self.collections[name].index.rows();
        let mut hits: Vec<Hit> = matches
            .iter()
            .filter_map(|(id, score)| {
                let slot = rows.slot(id)? as usize;
                let metadata = rows.metadata(slot);
                opts.filter.as_ref().is_none_or(|f| f.matches(metadata)).then(|| Hit {
                    id: &rows.ids()[slot],
                    score: *score,
                    metadata,
                })
            })
            .collect();
        hits.sort_unstable_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(b.id)));
        hits.truncate(opts.k);
        Ok(hits)
    }
}

/// `INVALID_ARGUMENT` unless `k` is a k a search accepts.
fn check_k(k: usize) -> Result<()> {
    if k == 0 || k > MAX_K {
        return Err(Error::invalid(format!(
            "k: must be an integer from 1 to {MAX_K}, got {k}"
        )));
    }
    Ok(())
}

/// One query's search of collection `c`.
fn search_one<'c>(c: &'c Collection, query: &[f32], opts: &SearchOptions) -> Result<Vec<Hit<'c>>> {
    let Settings { dim, metric, .. } = c.settings;
    // A query of another length could pass as several back to back: refuse it here.
    // Its values are checked once, by search_in.
    if query.len() != dim {
        check_vector(query, dim, metric, || "query".into())?;
    }
    Ok(search_in(c, query, opts)?.pop().unwrap_or_default())
}

/// Searches of collection `c`, one for each query of `queries` (back to back).
fn search_in<'c>(c: &'c Collection, queries: &[f32], opts: &SearchOptions) -> Result<Vec<Vec<Hit<'c>>>> {
    let Settings { dim, metric, .. } = c.settings;
    if queries.is_empty() || !queries.len().is_multiple_of(dim) {
        return Err(Error::new(
            Code::DimensionMismatch,
            format!(
                "query has {} values, not a multiple of the collection's {dim} dimensions",
                queries.len()
            ),
        ));
    }
    check_k(opts.k)?;
    if opts.ef.is_some_and(|ef| ef == 0 || ef > MAX_EF) {
        return Err(Error::invalid(format!(
            "ef: must be an integer from 1 to {MAX_EF}, got {}",
            opts.ef.unwrap_or_default()
        )));
    }
    if opts.fetch.is_some_and(|f| f == 0 || f > MAX_FETCH_K) {
        return Err(Error::invalid(format!(
            "fetch: must be an integer from 1 to {MAX_FETCH_K}, got {}",
            opts.fetch.unwrap_or_default()
        )));
    }
    if opts.threshold.is_some_and(|t| !t.is_finite()) {
        return Err(Error::invalid("threshold: must be a finite number"));
    }
    let many = queries.len() > dim;
    let mut prepared = Vec::with_capacity(queries.len());
    let mut q = Vec::with_capacity(dim);
    for (i, query) in queries.chunks_exact(dim).enumerate() {
        check_vector(query, dim, metric, || {
            if many {
                format!("queries[{i}]")
            } else {
                "query".into()
            }
        })?;
        prepare(metric, query, &mut q);
        prepared.extend_from_slice(&q);
    }
    let query = Query {
        k: opts.k,
        filter: opts.filter.as_ref(),
        threshold: opts.threshold,
        ef: opts.ef,
        fetch: opts.fetch,
    };
    Ok(c.index.search_many(&prepared, &query))
}
