//! Sync frames and ops as the page handles them: a JSON head and the vectors back to
//! back in one `Float32Array`, as the other bindings pass rows. The page runs the
//! session (js/sync.js); the bytes on the wire are the core's (`quiver::sync::wire`).
//! Plain Rust, so it is tested natively.

use quiver::sync::wire::{self, Ack, Closing, Hello, Message, Ops, Push, Reason, Welcome};
use quiver::sync::{Body, Op};
use quiver::{Error, Result};
use serde_json::{json, Map, Value};

/// Ops as a JSON array of `{id, version, site, deleted, dim, metadata, text}` (each
/// with its `seq` when one is given) and the upserts' vectors back to back.
pub fn ops_to_json<'a>(ops: impl Iterator<Item = (&'a Op, Option<u64>)>) -> Result<(Value, Vec<f32>)> {
    let mut head = Vec::new();
    let mut vectors = Vec::new();
    for (op, seq) in ops {
        let mut o = Map::new();
        o.insert("id".into(), op.id.clone().into());
        o.insert("version".into(), op.version.into());
        o.insert("site".into(), op.site.clone().into());
        o.insert("deleted".into(), op.body.is_none().into());
        if let Some(b) = &op.body {
            o.insert("dim".into(), b.vector.len().into());
            let metadata = match &b.metadata {
                Some(m) => serde_json::from_str(m).map_err(|e| Error::invalid(format!("ops.metadata: {e}")))?,
                None => Value::Null,
            };
            o.insert("metadata".into(), metadata);
            o.insert("text".into(), b.text.clone().map_or(Value::Null, Value::String));
            vectors.extend_from_slice(&b.vector);
        }
        if let Some(seq) = seq {
            o.insert("seq".into(), seq.into());
        }
        head.push(Value::Object(o));
    }
    Ok((Value::Array(head), vectors))
}

/// The ops of a JSON head and its vectors, as [`ops_to_json`] writes them; `field`
/// names the array in errors.
pub fn ops_from_json(head: &Value, vectors: &[f32], field: &str) -> Result<Vec<Op>> {
    let list = head
        .as_array()
        .ok_or_else(|| Error::invalid(format!("{field}: must be an array")))?;
    let mut at = 0;
    let mut ops = Vec::with_capacity(list.len());
    for (i, o) in list.iter().enumerate() {
        let name = |key: &str| format!("{field}[{i}].{key}");
        let text = |key: &str| -> Result<String> {
            o.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Error::invalid(format!("{}: must be a string", name(key))))
        };
        let number = |key: &str| -> Result<u64> {
            o.get(key)
                .and_then(Value::as_u64)
                .ok_or_else(|| Error::invalid(format!("{}: must be a whole number", name(key))))
        };
        let deleted = o
            .get("deleted")
            .and_then(Value::as_bool)
            .ok_or_else(|| Error::invalid(format!("{}: must be true or false", name("deleted"))))?;
        let body = if deleted {
            None
        } else {
            let dim = number("dim")? as usize;
            let vector = vectors
                .get(at..at + dim)
                .ok_or_else(|| Error::invalid(format!("{}: more than the vectors given", name("dim"))))?
                .to_vec();
            at += dim;
            let metadata = match o.get("metadata") {
                None | Some(Value::Null) => None,
                Some(m) => Some(m.to_string()),
            };
            let text = match o.get("text") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(t.clone()),
                Some(_) => return Err(Error::invalid(format!("{}: must be a string or null", name("text")))),
            };
            Some(Body { vector, metadata, text })
        };
        ops.push(Op {
            id: text("id")?,
            version: number("version")?,
            site: text("site")?,
            body,
        });
    }
    if at != vectors.len() {
        return Err(Error::invalid(format!(
            "{field}: the ops' dims add up to {at} floats, the vectors hold {}",
            vectors.len()
        )));
    }
    Ok(ops)
}

/// The stable name of a close reason, as the page reports it.
pub fn reason_name(r: Reason) -> String {
    match r {
        Reason::Normal => "normal".into(),
        Reason::Unauthorized => "unauthorized".into(),
        Reason::MalformedFrame => "malformed_frame".into(),
        Reason::TooLarge => "too_large".into(),
        Reason::UnsupportedVersion => "unsupported_version".into(),
        Reason::Unexpected => "unexpected".into(),
        Reason::RoomFull => "room_full".into(),
        Reason::InvalidOps => "invalid_ops".into(),
        Reason::ShuttingDown => "shutting_down".into(),
        Reason::Internal => "internal".into(),
        Reason::Timeout => "timeout".into(),
        Reason::Other(b) => format!("other_{b}"),
    }
}

/// One frame's bytes for a message the page sends: `{type: "hello", room, token, site,
/// since}`, `{type: "push", batch, ops}` (the ops' vectors in `vectors`) or
/// `{type: "close", message}`.
pub fn encode(message: &Value, vectors: &[f32]) -> Result<Vec<u8>> {
    let s = |key: &str| {
        message
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::invalid(format!("message.{key}: must be a string")))
    };
    let n = |key: &str| {
        message
            .get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::invalid(format!("message.{key}: must be a whole number")))
    };
    let m = match message.get("type").and_then(Value::as_str) {
        Some("hello") => Message::Hello(Hello {
            room: s("room")?,
            token: s("token")?,
            site: s("site")?,
            since: n("since")?,
        }),
        Some("push") => Message::Push(Push {
            batch: n("batch")?,
            ops: ops_from_json(message.get("ops").unwrap_or(&Value::Null), vectors, "message.ops")?,
        }),
        Some("close") => Message::Close(Closing {
            reason: Reason::Normal,
            message: s("message")?,
        }),
        other => {
            return Err(Error::invalid(format!(
                "message.type: a site sends hello, push or close, got {other:?}"
            )))
        }
    };
    m.to_frame()
}

/// A frame the relay sent, as `(JSON, vectors)`: `{type: "welcome", head, snapshot}`,
/// `{type: "ack", batch, seq}`, `{type: "ops", upto, ops}` (each op with its `seq`) or
/// `{type: "refused" | "close", reason, message}`. Bytes that are not one whole frame
/// fail with the codec's typed errors.
pub fn decode(bytes: &[u8]) -> Result<(Value, Vec<f32>)> {
    Ok(match wire::decode_frame(bytes)? {
        Message::Welcome(Welcome { head, snapshot }) => {
            (json!({"type": "welcome", "head": head, "snapshot": snapshot}), vec![])
        }
        Message::Ack(Ack { batch, seq }) => (json!({"type": "ack", "batch": batch, "seq": seq}), vec![]),
        Message::Ops(o) => ops_json(&o)?,
        Message::Refused(c) => (closing("refused", c), vec![]),
        Message::Close(c) => (closing("close", c), vec![]),
        Message::Hello(_) | Message::Push(_) => {
            return Err(Error::invalid("frame: a relay does not send hello or push".to_owned()))
        }
    })
}

/// An Ops frame's message as [`decode`] gives it.
pub fn ops_json(o: &Ops) -> Result<(Value, Vec<f32>)> {
    let (ops, vectors) = ops_to_json(o.ops.iter().map(|(op, seq)| (op, Some(*seq))))?;
    Ok((json!({"type": "ops", "upto": o.upto, "ops": ops}), vectors))
}

fn closing(kind: &str, c: Closing) -> Value {
    json!({"type": kind, "reason": reason_name(c.reason), "message": c.message})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: &str, version: u64, body: Option<Body>) -> Op {
        Op {
            id: id.into(),
            version,
            site: "s1".into(),
            body,
        }
    }

    #[test]
    fn ops_survive_json_and_the_wire() {
        let ops = vec![
            op(
                "a",
                3,
                Some(Body {
                    vector: vec![1.0, -2.5],
                    metadata: Some(r#"{"k":[1,"x"]}"#.into()),
                    text: Some("hello".into()),
                }),
            ),
            op("b", 4, None),
            op(
                "c",
                9,
                Some(Body {
                    vector: vec![0.5, 0.25],
                    metadata: None,
                    text: None,
                }),
            ),
        ];
        let (head, vectors) = ops_to_json(ops.iter().map(|o| (o, None))).unwrap();
        assert_eq!(vectors, vec![1.0, -2.5, 0.5, 0.25]);
        let back = ops_from_json(&head, &vectors, "ops").unwrap();
        assert_eq!(back, ops);
        // Through a Push frame and a relay's Ops frame carrying the same ops.
        let frame = encode(&json!({"type": "push", "batch": 7, "ops": head}), &vectors).unwrap();
        let Message::Push(push) = wire::decode_frame(&frame).unwrap() else {
            panic!("a push")
        };
        assert_eq!((push.batch, &push.ops), (7, &ops));
        let relayed = Message::Ops(Ops {
            upto: 12,
            ops: ops.iter().cloned().zip(10..).collect(),
        })
        .to_frame()
        .unwrap();
        let (msg, floats) = decode(&relayed).unwrap();
        assert_eq!(msg["type"], "ops");
        assert_eq!(msg["upto"], 12);
        assert_eq!(msg["ops"][2]["seq"], 12);
        assert_eq!(ops_from_json(&msg["ops"], &floats, "ops").unwrap(), ops);
    }

    #[test]
    fn bad_heads_name_the_field() {
        let err = ops_from_json(
            &json!([{"id": "a", "version": 1, "site": "s", "deleted": false, "dim": 3}]),
            &[1.0],
            "ops",
        )
        .unwrap_err();
        assert!(err.message.contains("ops[0].dim"), "{}", err.message);
        let err = ops_from_json(
            &json!([{"id": 5, "version": 1, "site": "s", "deleted": true}]),
            &[],
            "ops",
        )
        .unwrap_err();
        assert!(err.message.contains("ops[0].id"), "{}", err.message);
        let err = ops_from_json(
            &json!([{"id": "a", "version": 1, "site": "s", "deleted": false, "dim": 1}]),
            &[1.0, 2.0],
            "ops",
        )
        .unwrap_err();
        assert!(err.message.contains("vectors hold 2"), "{}", err.message);
        let err = encode(&json!({"type": "ack"}), &[]).unwrap_err();
        assert!(err.message.contains("message.type"), "{}", err.message);
        assert!(decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn hello_and_closings_round_trip() {
        let frame = encode(
            &json!({"type": "hello", "room": "r", "token": "t", "site": "s", "since": 5}),
            &[],
        )
        .unwrap();
        let Message::Hello(h) = wire::decode_frame(&frame).unwrap() else {
            panic!("a hello")
        };
        assert_eq!(
            (h.room.as_str(), h.token.as_str(), h.site.as_str(), h.since),
            ("r", "t", "s", 5)
        );
        let refused = Message::Refused(Closing {
            reason: Reason::Unauthorized,
            message: "token".into(),
        })
        .to_frame()
        .unwrap();
        let (msg, _) = decode(&refused).unwrap();
        assert_eq!(
            msg,
            json!({"type": "refused", "reason": "unauthorized", "message": "token"})
        );
    }
}
