//! Sites syncing through a real `quiver-relay` process converge: over WebTransport and
//! WebSocket alike, after being offline, through duplicate pushes, and across a crash
//! or a shutdown of the relay, which loses nothing it acked.

mod common;

use common::*;
use quiver::sync::wire::{Message, Push, Reason};
use quiver::sync::Op;
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_converge_over_webtransport_and_websocket() {
    within(60, async {
        let dir = Scratch::new();
        let relay = Relay::start(&dir.0.join("relay.db"));
        let t = token("room");
        let mut a = Site::fresh("a", Conn::wt(&relay).await, "room", &t).await;
        let mut b = Site::fresh("b", Conn::ws(&relay).await, "room", &t).await;
        // Two sites: overlapping writes, then each pulls the other's.
        for i in 0..10 {
            upsert(&mut a.db, &format!("r{i}"), 1.0);
            upsert(&mut b.db, &format!("r{}", i + 5), 2.0);
        }
        settle(&mut [&mut a, &mut b]).await;
        assert_eq!(a.state(), b.state());
        assert_eq!(a.db.count("c").unwrap(), 15);
        // A third site joins late and gets the room from its log.
        let mut c = Site::fresh("c", Conn::wt(&relay).await, "room", &t).await;
        assert_eq!(c.state(), a.state());
        // Conflicting writes: c deletes what a rewrites, b adds.
        c.db.delete("c", &["r3", "r7"]).unwrap();
        upsert(&mut a.db, "r7", 3.0);
        upsert(&mut b.db, "r20", 4.0);
        settle(&mut [&mut a, &mut b, &mut c]).await;
        let want = a.state();
        assert_eq!(b.state(), want);
        assert_eq!(c.state(), want);
        let by_id: HashMap<&str, &Op> = want.iter().map(|o| (o.id.as_str(), o)).collect();
        assert!(by_id["r3"].body.is_none(), "r3 was deleted everywhere");
        assert!(by_id.contains_key("r20"));
        // The search copies agree too.
        for s in [&mut a, &mut b, &mut c] {
            assert_eq!(s.db.count("c").unwrap(), a_count(&want));
        }
    })
    .await
}

fn a_count(state: &[Op]) -> usize {
    state.iter().filter(|o| o.body.is_some()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_offline_catches_up_from_its_last_ack() {
    within(60, async {
        let dir = Scratch::new();
        let relay = Relay::start(&dir.0.join("relay.db"));
        let t = token("room");
        let mut a = Site::fresh("a", Conn::wt(&relay).await, "room", &t).await;
        let mut b = Site::fresh("b", Conn::ws(&relay).await, "room", &t).await;
        for i in 0..5 {
            upsert(&mut a.db, &format!("a{i}"), 1.0);
        }
        settle(&mut [&mut a, &mut b]).await;
        // a goes offline, keeping its database and cursors; both write meanwhile.
        let (mut db, since, pushed) = (a.db, a.upto, a.pushed);
        drop(a.conn);
        for i in 0..5 {
            upsert(&mut b.db, &format!("b{i}"), 2.0);
        }
        b.db.delete("c", &["a0"]).unwrap();
        let head = b.push().await;
        upsert(&mut db, "offline", 3.0);
        // Back: the backlog is exactly what was logged after its cursor.
        let mut a = Site::join(db, Conn::wt(&relay).await, "room", &t, since).await.unwrap();
        a.pushed = pushed;
        assert!(!a.snapshot);
        assert_eq!(a.upto, head);
        let ids: Vec<&str> = a.received.iter().map(|(op, _)| op.id.as_str()).collect();
        assert_eq!(ids, ["b0", "b1", "b2", "b3", "b4", "a0"]);
        // Its offline write goes out, and b gets it.
        let head = a.push().await;
        b.pull_until(head).await;
        assert_eq!(a.state(), b.state());
        assert!(b.db.get("c", "offline").unwrap().is_some());
        assert!(a.db.get("c", "a0").unwrap().is_none());
    })
    .await
}

/// Sends `batches` pushes of ten new upserts each without waiting, and collects the acks
/// that arrive until `stop_after` of them have; returns the ops by batch and the acked batches.
async fn pipeline(conn: &mut Conn, site: &str, batches: u64, stop_after: usize) -> (HashMap<u64, Vec<Op>>, Vec<u64>) {
    let mut db = database(site);
    let mut sent = HashMap::new();
    let mut cursor = 0;
    for batch in 1..=batches {
        for i in 0..10 {
            upsert(&mut db, &format!("{site}-{batch}-{i}"), batch as f32);
        }
        let changes = db.ops_since("c", cursor, usize::MAX).unwrap();
        cursor = changes.last().unwrap().1;
        let ops: Vec<Op> = changes.into_iter().map(|(op, _)| op).collect();
        sent.insert(batch, ops.clone());
        conn.send(&Message::Push(Push { batch, ops })).await;
    }
    let mut acked = Vec::new();
    while acked.len() < stop_after {
        match conn.recv().await {
            Some(Message::Ack(a)) => acked.push(a.batch),
            Some(Message::Close(c)) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
    (sent, acked)
}

/// A new site's view of the room: every op the relay has logged.
async fn room_state(relay: &Relay, t: &str) -> Vec<Op> {
    let mut fresh = Site::fresh("reader", Conn::wt(relay).await, "room", t).await;
    fresh.state()
}

fn assert_has(state: &[Op], ops: &[Op]) {
    for op in ops {
        assert!(
            state.contains(op),
            "{} (version {}) was acked but is gone",
            op.id,
            op.version
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_sync_loses_nothing_it_acked() {
    within(90, async {
        let dir = Scratch::new();
        let data = dir.0.join("relay.db");
        let relay = Relay::start(&data);
        let t = token("room");
        let mut conn = Conn::wt(&relay).await;
        let hello = quiver::sync::wire::Hello {
            room: "room".into(),
            token: t.clone(),
            site: "w".into(),
            since: 0,
        };
        conn.send(&Message::Hello(hello)).await;
        // 40 batches in flight; SIGKILL once 5 are acked, with the rest still coming.
        let (sent, acked) = pipeline(&mut conn, "w", 40, 5).await;
        relay.kill();
        let relay = Relay::start(&data);
        let state = room_state(&relay, &t).await;
        for batch in &acked {
            assert_has(&state, &sent[batch]);
        }
        // The writer resends everything; what was logged already is not logged twice.
        let mut all: Vec<Op> = (1..=40).flat_map(|b| sent[&b].clone()).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let mut w = Site::fresh("w", Conn::ws(&relay).await, "room", &t).await;
        let before = w.head;
        let ops: Vec<Op> = all.clone();
        for (i, chunk) in ops.chunks(100).enumerate() {
            w.conn
                .send(&Message::Push(Push {
                    batch: i as u64 + 1,
                    ops: chunk.to_vec(),
                }))
                .await;
        }
        let mut last = 0;
        while last < 4 {
            if let Message::Ack(a) = w.next().await {
                last = a.batch;
                assert!(a.seq <= 400, "400 ops, each logged once: head {}", a.seq);
                if last == 4 {
                    assert_eq!(a.seq, 400);
                }
            }
        }
        assert!(before <= 400);
        assert_eq!(room_state(&relay, &t).await, all);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sessions_with_a_reason_and_loses_nothing_it_acked() {
    within(90, async {
        let dir = Scratch::new();
        let data = dir.0.join("relay.db");
        let relay = Relay::start(&data);
        let t = token("room");
        let mut idle = Site::fresh("i", Conn::ws(&relay).await, "room", &t).await;
        let mut conn = Conn::wt(&relay).await;
        let hello = quiver::sync::wire::Hello {
            room: "room".into(),
            token: t.clone(),
            site: "w".into(),
            since: 0,
        };
        conn.send(&Message::Hello(hello)).await;
        let (sent, mut acked) = pipeline(&mut conn, "w", 40, 3).await;
        let stopping = std::thread::spawn(move || relay.terminate());
        // Acks keep coming until the relay says it is stopping.
        let reason = loop {
            match conn.recv().await {
                Some(Message::Ack(a)) => acked.push(a.batch),
                Some(Message::Close(c)) => break c.reason,
                Some(_) => {}
                None => panic!("the session ended without a Close"),
            }
        };
        assert_eq!(reason, Reason::ShuttingDown);
        assert_eq!(idle.conn.closing().await.reason, Reason::ShuttingDown);
        let output = stopping.join().unwrap();
        assert!(
            output.iter().any(|l| l.starts_with("quiver-relay stopped")),
            "{output:?}"
        );
        let relay = Relay::start(&data);
        let state = room_state(&relay, &t).await;
        for batch in &acked {
            assert_has(&state, &sent[batch]);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_pushes_are_harmless() {
    within(60, async {
        let dir = Scratch::new();
        let relay = Relay::start(&dir.0.join("relay.db"));
        let t = token("room");
        let mut a = Site::fresh("a", Conn::wt(&relay).await, "room", &t).await;
        let mut b = Site::fresh("b", Conn::wt(&relay).await, "room", &t).await;
        for i in 0..10 {
            upsert(&mut a.db, &format!("r{i}"), 1.0);
        }
        a.db.delete("c", &["r4"]).unwrap();
        let ops = a.ops();
        let head = a.push().await;
        assert_eq!(head, 10, "ten ids, r4's upsert and delete one row");
        // The same batch again, from the same session and from another transport.
        assert_eq!(a.push_ops(7, ops.clone()).await, head, "nothing new was logged");
        let mut again = Site::join(database("a"), Conn::ws(&relay).await, "room", &t, head)
            .await
            .unwrap();
        assert_eq!(again.push_ops(8, ops).await, head, "nothing new was logged");
        // b got each op once, and a later write still flows, logged once though its
        // batch holds it twice.
        upsert(&mut a.db, "after", 5.0);
        let after = a.ops().pop().unwrap();
        let head = a.push_ops(9, vec![after.clone(), after]).await;
        assert_eq!(head, 11, "one op logged");
        b.pull_until(head).await;
        let mut ids: Vec<&str> = b.received.iter().map(|(op, _)| op.id.as_str()).collect();
        ids.sort();
        let mut want: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
        want.push("after".into());
        want.sort();
        assert_eq!(ids, want);
        assert_eq!(b.state(), a.state());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_each_ids_winner_and_gives_sites_behind_it_a_snapshot() {
    within(60, async {
        let dir = Scratch::new();
        let data = dir.0.join("relay.db");
        // Compact every second, dropping every tombstone.
        let relay = Relay::start_over(&data, &["--compact-secs", "1", "--tombstone-days", "0"]);
        let t = token("room");
        let mut a = Site::fresh("a", Conn::wt(&relay).await, "room", &t).await;
        for i in 0..5 {
            upsert(&mut a.db, &format!("r{i}"), 1.0);
        }
        let head = a.push().await;
        let mut b = Site::fresh("b", Conn::ws(&relay).await, "room", &t).await;
        b.pull_until(head).await;
        let (b_db, b_since) = (b.db, b.upto);
        drop(b.conn);
        // r1 deleted, r0 rewritten: compaction drops r0's and r1's older ops and r1's tombstone.
        a.db.delete("c", &["r1"]).unwrap();
        upsert(&mut a.db, "r0", 2.0);
        a.push().await;
        let line = relay.wait_for_line("quiver-relay compacted").await;
        assert_eq!(line, "quiver-relay compacted 3 ops");
        // A new site reads the snapshot: each live id's winner, no tombstone.
        let mut c = Site::fresh("c", Conn::wt(&relay).await, "room", &t).await;
        let mut ids: Vec<&str> = c.received.iter().map(|(op, _)| op.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["r0", "r2", "r3", "r4"]);
        assert_eq!(c.db.get("c", "r0").unwrap().unwrap().vector[0], 2.0);
        // b missed r1's delete, whose tombstone is gone: it is told to start over.
        let mut b = Site::join(b_db, Conn::ws(&relay).await, "room", &t, b_since)
            .await
            .unwrap();
        assert!(b.snapshot);
        assert_eq!(b.received.len(), 4);
        assert!(
            b.db.get("c", "r1").unwrap().is_some(),
            "the site itself drops what the snapshot lacks"
        );
        assert_eq!(b.db.get("c", "r0").unwrap().unwrap().vector[0], 2.0);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_past_one_frames_limits_arrives_whole_over_several() {
    within(120, async {
        let dir = Scratch::new();
        let relay = Relay::start(&dir.0.join("relay.db"));
        let t = token("big");
        const BIG: usize = 2048;
        let big_db = |site: &str| {
            let mut db = quiver::Database::open_in_memory(site).unwrap();
            db.create_collection("c", BIG, quiver::Metric::Euclidean).unwrap();
            db
        };
        let mut w = Site::join(big_db("w"), Conn::wt(&relay).await, "big", &t, 0)
            .await
            .unwrap();
        // 2,100 upserts of 8 KiB vectors (17 MB, past the frame's byte limit) and 5,000
        // deletes (past its op limit), pushed in batches that each fit.
        let mut batches: Vec<Vec<Op>> = (0..3)
            .map(|b| {
                (0..700)
                    .map(|i| Op {
                        id: format!("v{b}-{i}"),
                        version: 1,
                        site: "w".into(),
                        body: Some(quiver::sync::Body {
                            vector: vec![(b * 700 + i) as f32; BIG],
                            metadata: None,
                            text: None,
                        }),
                    })
                    .collect()
            })
            .collect();
        batches.extend((0..2).map(|b| {
            (0..2500)
                .map(|i| Op {
                    id: format!("gone{b}-{i}"),
                    version: 1,
                    site: "w".into(),
                    body: None,
                })
                .collect()
        }));
        let mut head = 0;
        for (i, ops) in batches.into_iter().enumerate() {
            w.conn
                .send(&Message::Push(Push {
                    batch: i as u64 + 1,
                    ops,
                }))
                .await;
            loop {
                if let Message::Ack(a) = w.next().await {
                    head = a.seq;
                    break;
                }
            }
        }
        assert_eq!(head, 7100);
        let late = Site::join(big_db("late"), Conn::ws(&relay).await, "big", &t, 0)
            .await
            .unwrap();
        assert_eq!(late.upto, head);
        assert_eq!(late.received.len(), 7100);
        let seqs: Vec<u64> = late.received.iter().map(|(_, s)| *s).collect();
        assert_eq!(seqs, (1..=7100).collect::<Vec<u64>>());
        let mut late = late;
        assert_eq!(late.db.count("c").unwrap(), 2100);
    })
    .await
}
