//! What the relay refuses, and that refusing one session leaves the others served:
//! wrong tokens, garbage, truncated, bit-flipped and oversize frames, frames out of
//! place, and ops the room cannot hold.

mod common;

use common::*;
use quiver::sync::wire::{self, Hello, Message, Push, Reason};
use quiver::sync::{Body, Op};

fn hello(room: &str, token: &str) -> Message {
    Message::Hello(Hello {
        room: room.into(),
        token: token.into(),
        site: "s".into(),
        since: 0,
    })
}

/// A push of one upsert of dimension `dim`.
fn push(id: &str, dim: usize) -> Message {
    Message::Push(Push {
        batch: 1,
        ops: vec![Op {
            id: id.into(),
            version: 1,
            site: "bad".into(),
            body: Some(Body {
                vector: vec![0.5; dim],
                metadata: None,
                text: None,
            }),
        }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_opens_only_its_own_room() {
    within(60, async {
        let dir = Scratch::new();
        let relay = Relay::start(&dir.0.join("relay.db"));
        let (a, b) = (token("a"), token("b"));
        for ws in [false, true] {
            let conn = || async {
                if ws {
                    Conn::ws(&relay).await
                } else {
                    Conn::wt(&relay).await
                }
            };
            for (room, t) in [("b", a.as_str()), ("a", b.as_str()), ("a", "garbage"), ("a", "")] {
                let refused = Site::join(database("x"), conn().await, room, t, 0).await.err();
                let refused = refused.unwrap_or_else(|| panic!("{t:?} opened room {room}"));
                assert_eq!(refused.reason, Reason::Unauthorized);
                assert!(refused.message.contains("hello.token"), "{}", refused.message);
            }
            Site::fresh("x", conn().await, "a", &a).await;
            Site::fresh("x", conn().await, "b", &b).await;
        }
        // A token with an expiry stops opening its room once it has passed.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_quiver-relay"))
            .args(["token", "--room", "a", "--secret", SECRET, "--ttl-secs", "1"])
            .output()
            .unwrap();
        let timed = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Site::fresh("x", Conn::wt(&relay).await, "a", &timed).await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let refused = Site::join(database("x"), Conn::wt(&relay).await, "a", &timed, 0)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.reason, Reason::Unauthorized);
    })
    .await
}

/// What a bad client does, and the reason the relay must close its session with.
enum Bad {
    /// Bytes instead of a hello.
    Before(Vec<u8>, Reason),
    /// Bytes after a good hello.
    After(Vec<u8>, Reason),
    /// Part of a frame after a good hello, then the end of the stream.
    Truncated(Vec<u8>),
}

fn cases() -> Vec<(&'static str, Bad)> {
    let good_push = push("x", DIM).to_frame().unwrap();
    let mut flipped = good_push.clone();
    // The op's flags byte (after header, batch, flags, count) set to undefined bits.
    flipped[wire::HEADER_BYTES + 3] = 0xf8;
    let mut oversize = vec![wire::VERSION, 4];
    oversize.extend_from_slice(&(wire::MAX_FRAME_BYTES as u32).to_le_bytes());
    let mut garbage: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    garbage[0] = wire::VERSION;
    garbage[1] = 77;
    vec![
        (
            "garbage before hello",
            Bad::Before(garbage.clone(), Reason::MalformedFrame),
        ),
        (
            "another version",
            Bad::Before(vec![9, 1, 0, 0, 0, 0], Reason::UnsupportedVersion),
        ),
        (
            "a push before hello",
            Bad::Before(good_push.clone(), Reason::Unexpected),
        ),
        ("garbage after hello", Bad::After(garbage, Reason::MalformedFrame)),
        ("a bit-flipped push", Bad::After(flipped, Reason::MalformedFrame)),
        ("an oversize header", Bad::After(oversize, Reason::TooLarge)),
        (
            "a second hello",
            Bad::After(hello("room", "t").to_frame().unwrap(), Reason::Unexpected),
        ),
        (
            "a vector of another dimension",
            Bad::After(push("y", DIM + 1).to_frame().unwrap(), Reason::InvalidOps),
        ),
        (
            "a truncated push",
            Bad::Truncated(good_push[..good_push.len() - 3].to_vec()),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_own_session() {
    within(90, async {
        let dir = Scratch::new();
        let relay = Relay::start(&dir.0.join("relay.db"));
        let t = token("room");
        let mut healthy = Site::fresh("h", Conn::wt(&relay).await, "room", &t).await;
        let mut other = Site::fresh("o", Conn::ws(&relay).await, "room", &t).await;
        // The room's dimension is set by its first upsert.
        upsert(&mut healthy.db, "first", 1.0);
        healthy.push().await;
        let mut n = 0;
        for ws in [false, true] {
            for (what, bad) in cases() {
                let mut conn = if ws {
                    Conn::ws(&relay).await
                } else {
                    Conn::wt(&relay).await
                };
                let want = match bad {
                    Bad::Before(bytes, reason) => {
                        conn.send_raw(&bytes).await;
                        reason
                    }
                    Bad::After(bytes, reason) => {
                        conn.send(&hello("room", &t)).await;
                        conn.send_raw(&bytes).await;
                        reason
                    }
                    Bad::Truncated(bytes) => {
                        conn.send(&hello("room", &t)).await;
                        conn.send_raw(&bytes).await;
                        conn.finish().await;
                        Reason::MalformedFrame
                    }
                };
                let closing = conn.closing().await;
                let transport = if ws { "WebSocket" } else { "WebTransport" };
                assert_eq!(closing.reason, want, "{what} over {transport}: {}", closing.message);
                assert!(!closing.message.is_empty());
                // The room goes on: a write from one healthy site reaches the other.
                n += 1;
                upsert(&mut healthy.db, &format!("after-{n}"), n as f32);
                let head = healthy.push().await;
                other.pull_until(head).await;
                assert_eq!(other.state(), healthy.state(), "after {what} over {transport}");
            }
        }
        // Nothing a bad session sent was logged.
        let ids: Vec<String> = healthy.state().into_iter().map(|o| o.id).collect();
        assert!(!ids.iter().any(|i| i == "x" || i == "y"), "{ids:?}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_text_and_oversize_messages_close_their_session() {
    within(60, async {
        let dir = Scratch::new();
        let relay = Relay::start(&dir.0.join("relay.db"));
        let t = token("room");
        let mut healthy = Site::fresh("h", Conn::wt(&relay).await, "room", &t).await;
        let mut text = Conn::ws(&relay).await;
        text.send(&hello("room", &t)).await;
        text.finish().await; // a text message on WebSocket
        let closing = text.closing().await;
        assert_eq!(closing.reason, Reason::MalformedFrame, "{}", closing.message);
        let mut big = Conn::ws(&relay).await;
        big.send(&hello("room", &t)).await;
        big.send_raw(&vec![1u8; wire::MAX_FRAME_BYTES + 1]).await;
        let closing = big.closing().await;
        assert_eq!(closing.reason, Reason::TooLarge, "{}", closing.message);
        upsert(&mut healthy.db, "still", 1.0);
        assert!(healthy.push().await > 0);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_refuses_more_sessions_and_ops() {
    within(60, async {
        let dir = Scratch::new();
        let data = dir.0.join("relay.db");
        let relay = Relay::start_over(&data, &["--max-room-sessions", "2", "--max-room-ops", "5"]);
        let t = token("room");
        let mut a = Site::fresh("a", Conn::wt(&relay).await, "room", &t).await;
        let _b = Site::fresh("b", Conn::ws(&relay).await, "room", &t).await;
        let refused = Site::join(database("c"), Conn::wt(&relay).await, "room", &t, 0)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.reason, Reason::RoomFull);
        // Another room has room.
        Site::fresh("c", Conn::wt(&relay).await, "other", &token("other")).await;
        for i in 0..5 {
            upsert(&mut a.db, &format!("r{i}"), 1.0);
        }
        assert_eq!(a.push().await, 5);
        upsert(&mut a.db, "r5", 1.0);
        let ops: Vec<Op> =
            a.db.ops_since("c", a.pushed, 10)
                .unwrap()
                .into_iter()
                .map(|(op, _)| op)
                .collect();
        a.conn.send(&Message::Push(Push { batch: 9, ops })).await;
        let closing = a.conn.closing().await;
        assert_eq!(closing.reason, Reason::RoomFull, "{}", closing.message);
    })
    .await
}
