//! The similarity a collection ranks by, and how a raw kernel value becomes a score.

use crate::error::{Error, Result};
use crate::kernels;

/// How vectors are compared. Fixed per collection at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Cosine similarity in [-1, 1]; higher is closer. Stored vectors are normalised
    /// once on write so a search is a plain dot product.
    Cosine,
    /// Euclidean (L2) distance; lower is closer.
    Euclidean,
    /// Inner product; higher is closer.
    Dot,
}

impl Metric {
    /// Parses the public name; `field` names the argument in the error.
    pub fn parse(name: &str, field: &str) -> Result<Metric> {
        match name {
            "cosine" => Ok(Metric::Cosine),
            "euclidean" | "l2" => Ok(Metric::Euclidean),
            "dot" => Ok(Metric::Dot),
            other => Err(Error::invalid(format!(
                "{field}: unknown metric {other:?} (expected \"cosine\", \"euclidean\" or \"dot\")"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
            Metric::Dot => "dot",
        }
    }

    /// True when a larger score means a closer match.
    pub fn higher_is_closer(self) -> bool {
        !matches!(self, Metric::Euclidean)
    }

    /// Turns an internal score into the one the caller sees (L2 is ranked squared).
    #[inline]
    pub fn public_score(self, internal: f32) -> f32 {
        match self {
            Metric::Euclidean => internal.sqrt(),
            _ => internal,
        }
    }

    /// Turns a caller's threshold into the internal scale of [`Metric::score`].
    pub fn internal_threshold(self, public: f32) -> f32 {
        match self {
            Metric::Euclidean => public * public,
            _ => public,
        }
    }

    /// The score of two raw vectors under this metric, as a search would report it.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Cosine => kernels::cosine(a, b),
            Metric::Dot => kernels::dot(a, b),
            Metric::Euclidean => kernels::l2_squared(a, b).sqrt(),
        }
    }
}
