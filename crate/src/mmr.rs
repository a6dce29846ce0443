//! Maximal marginal relevance (Carbonell & Goldstein, 1998): k of a search's
//! candidates, each picked for being close to the query and unlike those picked before.
//!
//! A pick maximises `lambda * sim(d, q) - (1 - lambda) * max over picked p of sim(d, p)`,
//! with the collection's metric as the similarity (the Euclidean distance negated).
//! It works on the candidates alone, never on the collection, so a collection spread
//! over workers is answered by gathering every worker's candidates first: MMR over each
//! worker's part and then merging would pick near-duplicates that sit in different
//! workers.

use crate::error::{Error, Result};
use crate::kernels;
use crate::metric::Metric;

/// The similarity of two prepared vectors under `metric`: larger is more alike.
fn similarity(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        // Prepared cosine vectors are unit length.
        Metric::Cosine | Metric::Dot => kernels::dot(a, b),
        Metric::Euclidean => -kernels::l2_squared(a, b).sqrt(),
    }
}

/// The positions, in picking order, of at most `k` of the candidates: `vectors` holds
/// them back to back, prepared for `metric` (as [`crate::Database::candidates`] gives
/// them), `scores` their scores against the query as the search reported them, best
/// first. Ties go to the earlier candidate, so `lambda` 1 picks the search's own top k.
pub fn select(metric: Metric, vectors: &[f32], scores: &[f32], k: usize, lambda: f32) -> Result<Vec<usize>> {
    if !(0.0..=1.0).contains(&lambda) {
        return Err(Error::invalid(format!(
            "mmr.lambda: must be a number from 0 to 1, got {lambda}"
        )));
    }
    if k == 0 {
        return Err(Error::invalid("k: must be at least 1, got 0"));
    }
    let n = scores.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    if vectors.is_empty() || !vectors.len().is_multiple_of(n) {
        return Err(Error::invalid(format!(
            "vectors: {} values are not one vector of each of the {n} candidates",
            vectors.len()
        )));
    }
    let dim = vectors.len() / n;
    let row = |i: usize| &vectors[i * dim..(i + 1) * dim];
    let relevance = |i: usize| {
        if metric.higher_is_closer() {
            scores[i]
        } else {
            -scores[i]
        }
    };
    // Each candidate's greatest similarity to those picked so far, kept up to date
    // pick by pick rather than recomputed over every pick.
    let mut most_like = vec![0.0f32; n];
    let mut taken = vec![false; n];
    let mut picks = Vec::with_capacity(k.min(n));
    while picks.len() < k.min(n) {
        let mut best: Option<(usize, f32)> = None;
        for i in (0..n).filter(|&i| !taken[i]) {
            let value = lambda * relevance(i) - (1.0 - lambda) * most_like[i];
            if best.is_none_or(|(_, b)| value > b) {
                best = Some((i, value));
            }
        }
        let (pick, _) = best.expect("a candidate is left");
        taken[pick] = true;
        for i in (0..n).filter(|&i| !taken[i]) {
            let s = similarity(metric, row(i), row(pick));
            most_like[i] = if picks.is_empty() { s } else { most_like[i].max(s) };
        }
        picks.push(pick);
    }
    Ok(picks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::prepare;
    use proptest::prelude::*;

    /// The greedy algorithm as the paper states it: every step recomputes each
    /// candidate's value from scratch.
    fn reference(metric: Metric, vectors: &[Vec<f32>], scores: &[f32], k: usize, lambda: f32) -> Vec<usize> {
        let mut picks: Vec<usize> = Vec::new();
        while picks.len() < k.min(vectors.len()) {
            let value = |i: usize| {
                let relevance = if metric.higher_is_closer() {
                    scores[i]
                } else {
                    -scores[i]
                };
                let penalty = picks
                    .iter()
                    .map(|&p| similarity(metric, &vectors[i], &vectors[p]))
                    .fold(None, |m: Option<f32>, s| Some(m.map_or(s, |m| m.max(s))))
                    .unwrap_or(0.0);
                lambda * relevance - (1.0 - lambda) * penalty
            };
            let best = (0..vectors.len())
                .filter(|i| !picks.contains(i))
                .fold(None, |b: Option<(usize, f32)>, i| match b {
                    Some((_, v)) if value(i) <= v => b,
                    _ => Some((i, value(i))),
                })
                .unwrap();
            picks.push(best.0);
        }
        picks
    }

    /// Candidates as a search gives them: prepared, scored against `query`, best first.
    fn candidates(metric: Metric, query: &[f32], raw: &[Vec<f32>]) -> (Vec<Vec<f32>>, Vec<f32>) {
        let mut q = Vec::new();
        prepare(metric, query, &mut q);
        let mut scored: Vec<(Vec<f32>, f32)> = raw
            .iter()
            .map(|v| {
                let mut p = Vec::new();
                prepare(metric, v, &mut p);
                let s = metric.public_score(match metric {
                    Metric::Euclidean => kernels::l2_squared(&q, &p),
                    _ => kernels::dot(&q, &p),
                });
                (p, s)
            })
            .collect();
        let sign = if metric.higher_is_closer() { -1.0 } else { 1.0 };
        scored.sort_by(|a, b| (sign * a.1).total_cmp(&(sign * b.1)));
        scored.into_iter().unzip()
    }

    fn metric() -> impl Strategy<Value = Metric> {
        prop_oneof![Just(Metric::Cosine), Just(Metric::Dot), Just(Metric::Euclidean)]
    }

    proptest! {
        #[test]
        fn picks_what_the_greedy_algorithm_picks(
            metric in metric(),
            raw in prop::collection::vec(prop::collection::vec(-1.0f32..1.0, 4), 1..40),
            query in prop::collection::vec(0.1f32..1.0, 4),
            k in 1usize..12,
            lambda in prop_oneof![Just(0.0f32), Just(0.5), Just(1.0), 0.0f32..=1.0],
        ) {
            // Cosine refuses the zero vector; nudge any away from it.
            let raw: Vec<Vec<f32>> = raw.into_iter().map(|mut v| { v[0] += 2.0; v }).collect();
            let (vectors, scores) = candidates(metric, &query, &raw);
            let flat: Vec<f32> = vectors.concat();
            let picks = select(metric, &flat, &scores, k, lambda).unwrap();
            prop_assert_eq!(&picks, &reference(metric, &vectors, &scores, k, lambda));
            if lambda == 1.0 {
                prop_assert_eq!(picks, (0..k.min(raw.len())).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn a_near_duplicate_waits_behind_a_different_candidate() {
        // Two copies of the best match and one a little worse but elsewhere. (At lambda
        // 0.5 the second pick would be a tie: under cosine, a candidate's likeness to a
        // query-identical first pick is its relevance.)
        let vectors = [1.0, 0.0, 1.0, 0.0, 0.6, 0.8];
        let scores = [1.0, 1.0, 0.6];
        assert_eq!(select(Metric::Cosine, &vectors, &scores, 2, 1.0).unwrap(), [0, 1]);
        assert_eq!(select(Metric::Cosine, &vectors, &scores, 2, 0.4).unwrap(), [0, 2]);
        assert_eq!(select(Metric::Cosine, &vectors, &scores, 5, 0.4).unwrap(), [0, 2, 1]);
    }

    #[test]
    fn bad_arguments_are_named() {
        for lambda in [-0.1, 1.5, f32::NAN] {
            let e = select(Metric::Dot, &[1.0], &[1.0], 1, lambda).unwrap_err();
            assert!(e.message.starts_with("mmr.lambda:"), "{}", e.message);
        }
        assert!(select(Metric::Dot, &[1.0, 2.0, 3.0], &[1.0, 0.5], 1, 0.5).is_err());
        assert!(select(Metric::Dot, &[1.0], &[1.0], 0, 0.5).is_err());
        assert_eq!(select(Metric::Dot, &[], &[], 3, 0.5).unwrap(), Vec::<usize>::new());
    }
}
