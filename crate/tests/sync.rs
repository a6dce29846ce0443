//! Sync's merge, natively: the same ops applied in any order, any number of times, in
//! any batches, leave every database in the same state, which is each id's winning op;
//! local writes after a merge win over what was merged; bad ops change nothing.

use proptest::prelude::*;
use quiver::sync::wire::{self, Message};
use quiver::sync::{Body, Op};
use quiver::{Code, Database, Metric, Record, SearchOptions};

const DIM: usize = 3;

/// Every row of collection "c", tombstones included, by id: what sync compares.
fn state(db: &mut Database) -> Vec<Op> {
    let mut ops: Vec<Op> = db
        .ops_since("c", 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(op, _)| op)
        .collect();
    ops.sort_by(|a, b| a.id.cmp(&b.id));
    ops
}

/// The state the ops must converge to: each id's op with the largest (version, site).
fn winners(ops: &[Op]) -> Vec<Op> {
    let mut best: Vec<Op> = Vec::new();
    for op in ops {
        match best.iter_mut().find(|b| b.id == op.id) {
            Some(b) if op.wins_over(b.version, &b.site) => *b = op.clone(),
            Some(_) => {}
            None => best.push(op.clone()),
        }
    }
    best.sort_by(|a, b| a.id.cmp(&b.id));
    best
}

fn fresh() -> Database {
    let mut db = Database::open_in_memory("local").unwrap();
    db.create_collection("c", DIM, Metric::Euclidean).unwrap();
    db
}

/// Ops from three sites over six ids; no two share a site and a version, as a site's
/// clock never gives one version twice.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (0..6usize, 0..3usize, prop::option::weighted(0.75, (-4i8..4, 0..3u8))),
        1..40,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (id, site, body))| Op {
                id: format!("r{id}"),
                // Versions climb with i, shuffled a little between sites.
                version: 1 + (i as u64 * 7 + site as u64 * 3) % 29 + i as u64 / 3,
                site: ["a", "b", "c"][site].into(),
                body: body.map(|(x, m)| Body {
                    vector: vec![x as f32, 1.0, id as f32],
                    metadata: (m > 0).then(|| format!("{{\"m\":{m}}}")),
                    text: (m == 2).then(|| format!("text {i}")),
                }),
            })
            .fold(Vec::<Op>::new(), |mut acc, op| {
                if !acc.iter().any(|o| o.site == op.site && o.version == op.version) {
                    acc.push(op);
                }
                acc
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_order_any_repetition_any_batches_give_the_winners(
        ops in ops(),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..80),
        cuts in prop::collection::vec(1..8usize, 1..10),
    ) {
        let mut a = fresh();
        a.apply_ops("c", &ops).unwrap();
        // B gets them shuffled, some twice, in batches of varied sizes.
        let mut shuffled: Vec<Op> = ops.clone();
        shuffled.extend(order.iter().map(|ix| ops[ix.index(ops.len())].clone()));
        let len = shuffled.len();
        for (i, ix) in order.iter().enumerate() {
            shuffled.swap(i % len, ix.index(len));
        }
        let mut b = fresh();
        let mut rest = &shuffled[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*cut).min(rest.len()));
            b.apply_ops("c", now).unwrap();
            rest = later;
        }
        let want = winners(&ops);
        prop_assert_eq!(state(&mut a), want.clone());
        prop_assert_eq!(state(&mut b), want.clone());
        // The search copies agree with SQLite: the live winners, found by their vectors.
        let live: Vec<&Op> = want.iter().filter(|o| o.body.is_some()).collect();
        prop_assert_eq!(a.count("c").unwrap(), live.len());
        prop_assert_eq!(b.count("c").unwrap(), live.len());
        for op in live {
            let v = &op.body.as_ref().unwrap().vector;
            let opts = SearchOptions { k: 10, ..Default::default() };
            for db in [&mut a, &mut b] {
                let hits = db.search("c", v, &opts).unwrap();
                prop_assert!(hits.iter().any(|h| h.id == op.id && h.score == 0.0), "{} not found at distance 0", op.id);
            }
        }
    }
}

#[test]
fn a_local_write_after_a_merge_wins_and_is_sent_on() {
    let mut db = fresh();
    let remote = Op {
        id: "x".into(),
        version: 500,
        site: "far".into(),
        body: Some(Body {
            vector: vec![1.0, 2.0, 3.0],
            metadata: None,
            text: None,
        }),
    };
    assert_eq!(db.apply_ops("c", std::slice::from_ref(&remote)).unwrap(), [true]);
    // Applying it again, or an older op on the same id, changes nothing.
    let older = Op {
        version: 499,
        site: "zzz".into(),
        ..remote.clone()
    };
    assert_eq!(db.apply_ops("c", &[remote.clone(), older]).unwrap(), [false, false]);
    let cursor = db.ops_since("c", 0, usize::MAX).unwrap().last().unwrap().1;
    db.upsert(
        "c",
        vec![Record {
            id: "x".into(),
            vector: &[4.0, 5.0, 6.0],
            ..Default::default()
        }],
    )
    .unwrap();
    let sent = db.ops_since("c", cursor, 10).unwrap();
    assert_eq!(sent.len(), 1);
    let (op, _) = &sent[0];
    assert!(
        op.version > 500,
        "the clock moved past the merged version: {}",
        op.version
    );
    assert_eq!(
        (op.site.as_str(), op.body.as_ref().unwrap().vector.clone()),
        ("local", vec![4.0, 5.0, 6.0])
    );
    assert!(op.wins_over(remote.version, &remote.site));
}

#[test]
fn a_push_frame_holds_this_sites_changes_only_and_its_cursor_passes_all() {
    let mut db = fresh();
    let remote = Op {
        id: "far".into(),
        version: 9,
        site: "elsewhere".into(),
        body: None,
    };
    db.apply_ops("c", &[remote]).unwrap();
    for id in ["a", "b"] {
        let record = Record {
            id: id.into(),
            vector: &[1.0, 2.0, 3.0],
            metadata: Some(serde_json::json!({"id": id})),
            ..Default::default()
        };
        db.upsert("c", vec![record]).unwrap();
    }
    db.delete("c", &["a"]).unwrap();
    let all = db.ops_since("c", 0, usize::MAX).unwrap();
    let (frame, upto, count) = db.push_frame("c", 0, 100, 7).unwrap();
    assert_eq!((upto, count), (all.last().unwrap().1, 2));
    let Message::Push(push) = wire::decode_frame(&frame.unwrap()).unwrap() else {
        panic!("a push")
    };
    let own: Vec<Op> = all
        .into_iter()
        .map(|(op, _)| op)
        .filter(|op| op.site == "local")
        .collect();
    assert_eq!((push.batch, push.ops), (7, own));
    // Only the remote op read: no frame, and the cursor still passes it.
    assert_eq!(db.push_frame("c", 0, 1, 8).unwrap(), (None, 1, 0));
    // A database that keeps no vectors cannot make one.
    let mut bare = Database::open_in_memory_without_vectors("local").unwrap();
    bare.create_collection("c", DIM, Metric::Euclidean).unwrap();
    assert_eq!(bare.push_frame("c", 0, 10, 1).unwrap_err().code, Code::InvalidArgument);
}

#[test]
fn a_late_upsert_loses_to_a_tombstone_until_it_is_purged() {
    let mut db = fresh();
    let up = |version: u64| Op {
        id: "x".into(),
        version,
        site: "a".into(),
        body: Some(Body {
            vector: vec![1.0, 0.0, 0.0],
            metadata: None,
            text: None,
        }),
    };
    let delete = Op {
        id: "x".into(),
        version: 10,
        site: "b".into(),
        body: None,
    };
    assert_eq!(
        db.apply_ops("c", &[delete]).unwrap(),
        [true],
        "a delete of an unknown id keeps its tombstone"
    );
    assert_eq!(db.apply_ops("c", &[up(5)]).unwrap(), [false]);
    assert_eq!(db.count("c").unwrap(), 0);
    assert_eq!(db.purge_tombstones("c", 10).unwrap(), 0, "not older than the horizon");
    assert_eq!(db.purge_tombstones("c", 11).unwrap(), 1);
    assert_eq!(
        db.apply_ops("c", &[up(5)]).unwrap(),
        [true],
        "past the horizon a late op is new again"
    );
    assert_eq!(db.count("c").unwrap(), 1);
}

#[test]
fn a_bad_op_anywhere_applies_none() {
    let mut db = fresh();
    let good = Op {
        id: "ok".into(),
        version: 3,
        site: "a".into(),
        body: Some(Body {
            vector: vec![1.0, 0.0, 0.0],
            metadata: None,
            text: None,
        }),
    };
    let cases = [
        (
            Op {
                version: 0,
                ..good.clone()
            },
            Code::InvalidArgument,
        ),
        (
            Op {
                id: "short".into(),
                body: Some(Body {
                    vector: vec![1.0],
                    metadata: None,
                    text: None,
                }),
                ..good.clone()
            },
            Code::DimensionMismatch,
        ),
        (
            Op {
                id: "meta".into(),
                body: Some(Body {
                    vector: vec![1.0, 0.0, 0.0],
                    metadata: Some("[1]".into()),
                    text: None,
                }),
                ..good.clone()
            },
            Code::InvalidMetadata,
        ),
    ];
    for (bad, code) in cases {
        // A delete first, so the upserts' positions differ from the ops'.
        let delete = Op {
            id: "gone".into(),
            body: None,
            ..good.clone()
        };
        let e = db.apply_ops("c", &[delete, good.clone(), bad]).unwrap_err();
        assert_eq!(e.code, code, "{e}");
        assert!(e.message.starts_with("ops[2]"), "the bad op is named: {e}");
        assert_eq!(db.count("c").unwrap(), 0);
        assert!(db.ops_since("c", 0, 10).unwrap().is_empty());
    }
}
