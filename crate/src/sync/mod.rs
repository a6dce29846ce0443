//! Operations for sync: each record of a collection is a last-writer-wins register.
//!
//! Every upsert and delete is an [`Op`] stamped with a Lamport version and the id of
//! the site (database file) that made it. Of two ops on one id the one with the larger
//! `(version, site)` wins, so applying the same ops in any order, any number of times,
//! leaves the same state: a state-based CRDT whose merge is a max. Deletes are kept as
//! tombstones (an op without a body), so that an older upsert arriving late cannot bring
//! a deleted record back; [`crate::Database::purge_tombstones`] clears those older than
//! a horizon every peer has passed. A site's clock jumps past every version it applies,
//! so its next local write wins over everything it has seen.

use crate::error::{Error, Result};

pub mod wire;

/// One change of one record, as sites exchange them.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub id: String,
    /// The Lamport timestamp of the change.
    pub version: u64,
    /// The site that made it.
    pub site: String,
    /// The record after the change; `None` for a delete.
    pub body: Option<Body>,
}

/// A record's content as an upsert op carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    /// The vector as written (not normalised).
    pub vector: Vec<f32>,
    /// A JSON object, as text.
    pub metadata: Option<String>,
    pub text: Option<String>,
}

impl Op {
    /// Whether this op wins over a record last changed at `version` by `site`: later
    /// versions win, and of one version the larger site id, an order every site shares.
    pub fn wins_over(&self, version: u64, site: &str) -> bool {
        (self.version, self.site.as_str()) > (version, site)
    }

    /// Refuses an op no site could have made: an empty id or site, or version 0 (local
    /// clocks start at 1). `field` names the op in the error.
    pub fn check(&self, field: impl Fn() -> String) -> Result<()> {
        if self.id.is_empty() || self.site.is_empty() || self.version == 0 {
            return Err(Error::invalid(format!(
                "{}: an op needs an id, a site and a version above 0",
                field()
            )));
        }
        Ok(())
    }
}
