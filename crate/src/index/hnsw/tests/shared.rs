//! The shared build (`hnsw/shared.rs`): a helper's copy stays the owner's graph,
//! an owner goes on alone when its helper goes, and a failed store changes nothing.

use super::*;

/// A helper's [`Peer`] that fails after `swaps` swaps: a helper that dies mid-batch.
struct Failing {
    peer: Thread,
    swaps: usize,
}

impl Peer for Failing {
    fn swap(&mut self, mine: &[u8]) -> Option<Vec<u8>> {
        self.swaps = self.swaps.checked_sub(1)?;
        self.peer.swap(mine)
    }

    fn take(&mut self, start: u32, end: u32) -> Option<u32> {
        self.peer.take(start, end)
    }
}

/// A graph and its helper's copy as each stood after a batch: own bytes and vectors.
type Snapshot = (Vec<u8>, Vec<Vec<f32>>);

fn snapshot(h: &Hnsw) -> Snapshot {
    (h.own_bytes(), h.rows.blocks().to_vec())
}

/// Inserts `batches` of `rows` into a new graph with a helper on another thread that
/// fails after `helper_swaps` swaps, calling `between(graph, i)` before batch `i`;
/// the graph, and after each batch the helper's copy (`None` when it kept none).
fn build_shared(
    metric: Metric,
    quant: Quantization,
    rows: &[(String, Vec<f32>)],
    batches: usize,
    helper_swaps: usize,
    mut between: impl FnMut(&mut Hnsw, usize),
) -> (Hnsw, Vec<Option<Snapshot>>) {
    let (mut wire, theirs) = pair();
    let helper = std::thread::spawn(move || {
        let mut wire = Failing {
            peer: theirs,
            swaps: helper_swaps,
        };
        let mut mirror = None;
        (0..batches)
            .map(|_| {
                help(&mut mirror, "owner/c", &mut wire);
                mirror.as_ref().map(|m: &Mirror| snapshot(m.graph()))
            })
            .collect::<Vec<_>>()
    });
    let mut h = Hnsw::new(DIM, metric, params(), quant);
    for (i, batch) in rows.chunks(rows.len().div_ceil(batches)).enumerate() {
        between(&mut h, i);
        let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
        let vectors: Vec<f32> = batch.iter().flat_map(|(_, v)| prepared(metric, v)).collect();
        let metadata = vec![None; batch.len()];
        h.upsert_batch(
            Batch {
                ids: &ids,
                vectors: &vectors,
                metadata,
            },
            Some(&mut wire),
            &mut || Ok(()),
        )
        .expect("no store to fail");
    }
    drop(wire);
    (h, helper.join().expect("the helper thread"))
}

#[test]
fn a_shared_build_keeps_the_helpers_copy_the_same_and_recalls_as_a_lone_one() {
    let base = rows(4000, 21);
    let queries = clustered(100, 22);
    for quant in [Quantization::None, Quantization::Int8] {
        let metric = Metric::Cosine;
        let lone = build_on(metric, quant, &base);
        let mut owner_after = Vec::new();
        let (shared, copies) = build_shared(metric, quant, &base, 4, usize::MAX, |h, i| {
            if i > 0 {
                owner_after.push(snapshot(h));
            }
            // A delete the helper does not see leaves a slot to reuse, so batch 2 is
            // inserted alone; the copy, behind, is sent again with batch 3.
            if i == 2 {
                assert!(h.remove("r00007"));
            }
        });
        owner_after.push(snapshot(&shared));
        for (i, (copy, owner)) in copies.iter().zip(&owner_after).enumerate() {
            let copy = copy
                .as_ref()
                .unwrap_or_else(|| panic!("{quant:?}: no copy after batch {i}"));
            assert_eq!(copy == owner, i != 2, "{quant:?}: the helper's copy after batch {i}");
        }
        assert_eq!(shared.mirrored, Some(shared.version));
        let truth: Vec<_> = base.iter().filter(|(id, _)| id != "r00007").cloned().collect();
        let q = query(10, None, None);
        let (a, b) = (
            recall(&lone, metric, &base, &queries, &q),
            recall(&shared, metric, &truth, &queries, &q),
        );
        assert!(b >= 0.95 && b >= a - 0.01, "{quant:?}: recall@10 {b} shared, {a} alone");
    }
}

#[test]
fn the_owner_finishes_alone_when_its_helper_goes_away_mid_batch() {
    let base = rows(3000, 23);
    let queries = clustered(100, 24);
    // Two swaps of hello and data, then a few rounds.
    let (h, copies) = build_shared(Metric::Cosine, Quantization::None, &base, 1, 6, |_, _| {});
    assert!(copies[0].is_none(), "a helper that failed keeps no copy");
    assert_eq!(h.mirrored, None);
    assert_eq!(h.len(), 3000);
    let r = recall(&h, Metric::Cosine, &base, &queries, &query(10, None, None));
    assert!(r >= 0.95, "recall@10 {r}");
}

#[test]
fn a_batch_the_graph_cannot_share_tells_the_helper_to_stop_and_is_inserted_alone() {
    let mut base = rows(1200, 25);
    // Batch 2 updates a row of batch 1: inserted one by one, the copy left behind.
    base[700].0 = base[1].0.clone();
    let (h, copies) = build_shared(Metric::Cosine, Quantization::None, &base, 2, usize::MAX, |_, _| {});
    assert!(copies[0] == copies[1] && copies[1].is_some());
    assert_ne!(h.mirrored, Some(h.version));
    assert_eq!(h.len(), 1199);
    assert_eq!(
        h.rows.row(h.rows.slot("r00001").unwrap() as usize),
        prepared(Metric::Cosine, &base[700].1)
    );
}

#[test]
fn a_batch_whose_store_fails_leaves_the_graph_as_it_was_and_the_helper_without_a_copy() {
    let base = rows(2000, 27);
    let (mut wire, mut theirs) = pair();
    let helper = std::thread::spawn(move || {
        let mut mirror = None;
        help(&mut mirror, "owner/c", &mut theirs);
        let after_first = mirror.as_ref().map(Mirror::rows);
        help(&mut mirror, "owner/c", &mut theirs);
        (after_first, mirror.is_some())
    });
    let mut h = Hnsw::new(DIM, Metric::Cosine, params(), Quantization::None);
    let insert = |h: &mut Hnsw, part: &[(String, Vec<f32>)], wire: &mut Thread, fail: bool| {
        let ids: Vec<String> = part.iter().map(|(id, _)| id.clone()).collect();
        let vectors: Vec<f32> = part.iter().flat_map(|(_, v)| prepared(Metric::Cosine, v)).collect();
        let batch = Batch {
            ids: &ids,
            vectors: &vectors,
            metadata: vec![None; part.len()],
        };
        let mut store = || {
            if fail {
                Err(Error::new(Code::QuotaExceeded, "full"))
            } else {
                Ok(())
            }
        };
        h.upsert_batch(batch, Some(wire), &mut store)
    };
    insert(&mut h, &base[..1000], &mut wire, false).expect("stored");
    let before = snapshot(&h);
    let err = insert(&mut h, &base[1000..], &mut wire, true).expect_err("the store fails");
    assert_eq!(err.code, Code::QuotaExceeded);
    assert!(snapshot(&h) == before, "the graph changed");
    drop(wire);
    assert_eq!(helper.join().expect("the helper thread"), (Some(1000), false));
}

#[test]
fn two_sides_take_each_node_of_a_round_once_and_never_past_its_end() {
    let rounds = [(16, 40), (40, 300), (310, 311), (311, 5000)];
    let (mut a, mut b) = pair();
    let taker = move |peer: &mut Thread| {
        rounds
            .iter()
            .map(|&(start, end)| {
                let mine: Vec<u32> = std::iter::from_fn(|| peer.take(start, end)).collect();
                // Both sides finish a round before either starts the next, as link_shared does.
                peer.swap(&[]).expect("the other side");
                mine
            })
            .collect::<Vec<_>>()
    };
    let other = std::thread::spawn(move || taker(&mut b));
    let mine = taker(&mut a);
    let theirs = other.join().expect("the other thread");
    for (r, &(start, end)) in rounds.iter().enumerate() {
        let mut all = [mine[r].clone(), theirs[r].clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (start..end).collect::<Vec<_>>(), "round {r}");
    }
    assert_eq!(a.take(0, 5000), None, "the counter stopped at the last round's end");
}
