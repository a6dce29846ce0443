//! The sync wire codec: every message survives a round trip, frames read back to back
//! from a stream in any chunking, and the decoder answers any bytes (random, truncated,
//! bit-flipped, oversize) with a message or a typed error, never a panic.

use proptest::prelude::*;
use quiver::sync::wire::{self, Ack, Closing, Hello, Message, Ops, Push, Reason, Welcome};
use quiver::sync::{Body, Op};
use quiver::Code;

fn op() -> impl Strategy<Value = Op> {
    (
        "[a-z0-9é]{1,12}",
        1..u64::MAX,
        "[a-z]{1,8}",
        prop::option::of((
            prop::collection::vec(-1e30f32..1e30, 1..20),
            prop::option::of((0..1000i32, "[ -~]{0,10}")),
            prop::option::of("[^\u{0}]{0,20}"),
        )),
    )
        .prop_map(|(id, version, site, body)| Op {
            id,
            version,
            site,
            body: body.map(|(vector, meta, text)| Body {
                vector,
                metadata: meta.map(|(n, s)| serde_json::json!({ "n": n, "s": s }).to_string()),
                text,
            }),
        })
}

fn closing() -> impl Strategy<Value = Closing> {
    (0..20u8, "[ -~]{0,40}").prop_map(|(b, message)| Closing {
        reason: Reason::from_byte(b),
        message,
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        ("[a-z/]{0,20}", "[A-Za-z0-9_-]{0,60}", "[a-z0-9]{0,20}", any::<u64>()).prop_map(
            |(room, token, site, since)| {
                Message::Hello(Hello {
                    room,
                    token,
                    site,
                    since,
                })
            }
        ),
        (any::<u64>(), any::<bool>()).prop_map(|(head, snapshot)| Message::Welcome(Welcome { head, snapshot })),
        closing().prop_map(Message::Refused),
        closing().prop_map(Message::Close),
        (any::<u64>(), prop::collection::vec(op(), 0..8)).prop_map(|(batch, ops)| Message::Push(Push { batch, ops })),
        (any::<u64>(), any::<u64>()).prop_map(|(batch, seq)| Message::Ack(Ack { batch, seq })),
        (any::<u64>(), prop::collection::vec((op(), any::<u64>()), 0..8))
            .prop_map(|(upto, ops)| Message::Ops(Ops { upto, ops })),
    ]
}

/// Decodes `bytes` as a stream of frames; whatever comes of it must be a value or a
/// typed error (a panic fails the test on its own).
fn decode_all(mut bytes: &[u8]) -> Result<Vec<Message>, Code> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match wire::decode(bytes) {
            Ok(Some((m, used))) => {
                assert!(used > 0 && used <= bytes.len());
                out.push(m);
                bytes = &bytes[used..];
            }
            Ok(None) => break,
            Err(e) => {
                assert!(
                    matches!(
                        e.code,
                        Code::MalformedFrame | Code::FrameTooLarge | Code::UnsupportedVersion
                    ),
                    "{e}"
                );
                assert!(!e.message.is_empty());
                return Err(e.code);
            }
        }
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_message_round_trips(msgs in prop::collection::vec(message(), 1..5), chunk in 1..64usize) {
        let mut stream = Vec::new();
        for m in &msgs {
            m.encode(&mut stream).unwrap();
        }
        // One frame alone decodes exactly.
        let first = msgs[0].to_frame().unwrap();
        prop_assert_eq!(&wire::decode_frame(&first).unwrap(), &msgs[0]);
        // A stream fed in chunks decodes to the same messages.
        let (mut buf, mut got) = (Vec::new(), Vec::new());
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some((m, used)) = wire::decode(&buf).unwrap() {
                got.push(m);
                buf.drain(..used);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn raw_ops_frames_equal_encoded_ones(upto in any::<u64>(), ops in prop::collection::vec((op(), any::<u64>()), 0..8)) {
        let raw: Vec<(u64, Vec<u8>)> = ops
            .iter()
            .map(|(op, seq)| {
                let mut b = Vec::new();
                wire::encode_op(op, &mut b).unwrap();
                assert!(b.len() + 10 <= wire::op_bytes(op));
                (*seq, b)
            })
            .collect();
        let mut frame = Vec::new();
        wire::encode_ops_raw(upto, raw.iter().map(|(s, b)| (*s, &b[..])), &mut frame).unwrap();
        prop_assert_eq!(frame, Message::Ops(Ops { upto, ops }).to_frame().unwrap());
    }

    #[test]
    fn random_bytes_decode_or_fail_typed(bytes in prop::collection::vec(any::<u8>(), 0..300), typed in 1..8u8) {
        let _ = decode_all(&bytes);
        // The same bytes behind a valid header reach the payload decoder.
        let mut framed = vec![wire::VERSION, typed];
        framed.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        framed.extend_from_slice(&bytes);
        let _ = decode_all(&framed);
        let _ = wire::decode_frame(&framed);
    }

    #[test]
    fn truncated_and_bit_flipped_frames_decode_or_fail_typed(
        m in message(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0..8u8), 1..4),
    ) {
        let frame = m.to_frame().unwrap();
        // Every strict prefix is incomplete: the streaming decoder waits for more, and
        // one-frame decoding refuses it.
        let prefix = &frame[..cut.index(frame.len())];
        prop_assert_eq!(wire::decode(prefix).unwrap(), None);
        prop_assert_eq!(wire::decode_frame(prefix).unwrap_err().code, Code::MalformedFrame);
        let mut flipped = frame.clone();
        for (at, bit) in flips {
            flipped[at.index(frame.len())] ^= 1 << bit;
        }
        let _ = decode_all(&flipped);
        let _ = wire::decode_frame(&flipped);
    }
}

#[test]
fn an_oversize_header_fails_before_its_payload_arrives() {
    let mut header = vec![wire::VERSION, wire::Kind::Push as u8];
    header.extend_from_slice(&(wire::MAX_FRAME_BYTES as u32).to_le_bytes());
    assert_eq!(wire::decode(&header).unwrap_err().code, Code::FrameTooLarge);
    let mut max = vec![wire::VERSION, wire::Kind::Push as u8];
    max.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(wire::decode(&max).unwrap_err().code, Code::FrameTooLarge);
}

#[test]
fn a_batch_over_the_op_limit_is_refused_both_ways() {
    let op = Op {
        id: "x".into(),
        version: 1,
        site: "s".into(),
        body: None,
    };
    let push = Message::Push(Push {
        batch: 1,
        ops: vec![op; wire::MAX_BATCH_OPS + 1],
    });
    let mut out = vec![7];
    assert_eq!(push.encode(&mut out).unwrap_err().code, Code::FrameTooLarge);
    assert_eq!(out, [7], "a failed encode leaves the buffer as it was");
    // Hand-made: a count over the limit.
    let mut frame = vec![wire::VERSION, wire::Kind::Push as u8, 0, 0, 0, 0, 1, 0];
    frame.extend_from_slice(&[0x81, 0x40]); // 8193
    frame[2] = (frame.len() - wire::HEADER_BYTES) as u8;
    assert_eq!(wire::decode_frame(&frame).unwrap_err().code, Code::FrameTooLarge);
}

#[test]
fn a_frame_over_the_byte_limit_is_not_encoded() {
    let big = Op {
        id: "x".into(),
        version: 1,
        site: "s".into(),
        body: Some(Body {
            vector: vec![0.5; quiver::MAX_DIM],
            metadata: None,
            text: None,
        }),
    };
    let ops: Vec<Op> = (0..40)
        .map(|i| Op {
            id: format!("r{i}"),
            ..big.clone()
        })
        .collect();
    let e = Message::Push(Push { batch: 1, ops }).to_frame().unwrap_err();
    assert_eq!(e.code, Code::FrameTooLarge, "{e}");
}

#[test]
fn bad_fields_are_named() {
    let cases: Vec<(Vec<u8>, Code, &str)> = vec![
        (vec![2, 1, 0, 0, 0, 0], Code::UnsupportedVersion, "frame.version"),
        (vec![1, 99, 0, 0, 0, 0], Code::MalformedFrame, "frame.type"),
        // Hello with a room of invalid UTF-8.
        (
            vec![1, 1, 5, 0, 0, 0, 1, 0xff, 0, 0, 0],
            Code::MalformedFrame,
            "hello.room",
        ),
        // Ack with an overlong varint (0 written in two bytes).
        (vec![1, 5, 3, 0, 0, 0, 0x80, 0x00, 0], Code::MalformedFrame, "ack.batch"),
        // Welcome with a trailing byte.
        (
            vec![1, 2, 3, 0, 0, 0, 5, 0, 9],
            Code::MalformedFrame,
            "after the payload",
        ),
        // Push whose batch sets an undefined flag.
        (vec![1, 4, 3, 0, 0, 0, 1, 1, 0], Code::MalformedFrame, "push.flags"),
        // Push of one delete with version 0.
        (
            vec![1, 4, 9, 0, 0, 0, 1, 0, 1, 0, 1, b'x', 0, 1, b's'],
            Code::MalformedFrame,
            "push.ops[0]",
        ),
    ];
    for (bytes, code, field) in cases {
        let e = wire::decode_frame(&bytes).unwrap_err();
        assert_eq!(e.code, code, "{bytes:?}: {e}");
        assert!(e.message.contains(field), "{bytes:?}: {e}");
    }
    // An upsert whose vector holds NaN, and one whose metadata is not an object.
    for (vector, metadata, field) in [
        (vec![1.0, f32::NAN], None, "vector[1]"),
        (vec![1.0], Some("[1]".to_owned()), "metadata"),
    ] {
        let op = Op {
            id: "x".into(),
            version: 1,
            site: "s".into(),
            body: Some(Body {
                vector,
                metadata,
                text: None,
            }),
        };
        let e = Message::Push(Push {
            batch: 1,
            ops: vec![op],
        })
        .to_frame()
        .unwrap_err();
        assert_eq!(e.code, Code::MalformedFrame);
        assert!(e.message.contains(field), "{e}");
    }
}

#[test]
fn reasons_keep_their_bytes() {
    for b in 0..=255u8 {
        assert_eq!(Reason::from_byte(b).byte(), b);
    }
    assert_eq!(Reason::Unauthorized.byte(), 1);
    assert_eq!(Reason::Timeout.byte(), 10);
}
