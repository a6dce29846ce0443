//! Keyword search over the rows' texts: FTS5, ranked by BM25.

use super::*;

impl Store {
    /// Every live row of a collection whose text matches any of `words`, with its BM25
    /// score made positive (FTS5's `bm25()` is lower for better matches): higher is
    /// better. The statistics BM25 weighs terms by (how many texts hold each, their
    /// average length) are those of the whole file, every collection in it.
    pub fn search_text(&self, collection: i64, words: &str) -> Result<Vec<(String, f32)>> {
        let Some(expression) = match_expression(words) else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT v.id, -bm25(vectors_fts) FROM vectors_fts JOIN vectors v ON v.rowid = vectors_fts.rowid
             WHERE vectors_fts MATCH ?1 AND v.collection = ?2 AND v.deleted = 0",
        )?;
        let rows = stmt.query_map(params![expression, collection], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)? as f32))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The FTS5 query for a user's words: each word quoted (FTS5's own syntax, `AND`, `*`,
/// `(`, `:`... is not the user's to write, and half of it is a syntax error) and any of
/// them matching, as a keyword search matches. A "word" is what lies between
/// whitespace, so `foo.bar` is the phrase `foo bar`. `None` when there is no word.
fn match_expression(words: &str) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    let terms: Vec<String> = words
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric) && seen.insert(w.to_lowercase()))
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" OR "))
}
