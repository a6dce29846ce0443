//! The embedder against the reference implementation's vectors, on the committed
//! subset in `tests/fixtures/minilm-reference/` (edge cases, queries, code, and texts
//! beyond 256 tokens), with the weights the set-up step downloads: the f32 originals
//! and the f16 copy the browser loads.

use quiver_embed::{Embedder, ModelFiles, MAX_TOKENS};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; the model's files come from the set-up step: run `npm run setup`",
            path.display()
        )
    })
}

fn embedder(weights: &str) -> Embedder {
    let dir = repo().join("models/all-minilm-l6-v2");
    let (weights, tokenizer, config) = (
        read(&dir.join(weights)),
        read(&dir.join("tokenizer.json")),
        read(&dir.join("config.json")),
    );
    Embedder::load(ModelFiles {
        weights: &weights,
        tokenizer: &tokenizer,
        config: &config,
    })
    .expect("the model loads")
}

struct Fixture {
    texts: Vec<String>,
    kinds: Vec<String>,
    vectors: Vec<f32>,
}

fn fixture() -> Fixture {
    let dir = repo().join("tests/fixtures/minilm-reference");
    let lines = String::from_utf8(read(&dir.join("texts.jsonl"))).unwrap();
    let rows: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let vectors = read(&dir.join("vectors.f32"))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    Fixture {
        texts: rows.iter().map(|r| r["text"].as_str().unwrap().to_owned()).collect(),
        kinds: rows.iter().map(|r| r["kind"].as_str().unwrap().to_owned()).collect(),
        vectors,
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| *x as f64 * *x as f64).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn check_against_reference(weights: &str) {
    let model = embedder(weights);
    let f = fixture();
    assert_eq!(model.dim(), 384);
    let ours = model.embed(&f.texts).unwrap();
    assert_eq!(ours.len(), f.texts.len() * 384);
    let mut lowest = 1.0f64;
    for (i, (own, reference)) in ours.chunks_exact(384).zip(f.vectors.chunks_exact(384)).enumerate() {
        let c = cosine(own, reference);
        lowest = lowest.min(c);
        assert!(
            c >= 0.999,
            "{weights}: text {i} ({}) has cosine {c} with the reference",
            f.kinds[i]
        );
        let length: f32 = own.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((length - 1.0).abs() < 1e-5, "text {i}: length {length}");
    }
    eprintln!("{weights}: lowest cosine with the reference {lowest}");
    for kind in ["edge", "query", "code", "long"] {
        assert!(f.kinds.iter().any(|k| k == kind), "the fixture has no {kind} text");
    }
}

#[test]
fn f32_weights_match_the_reference() {
    check_against_reference("model.safetensors");
}

#[test]
fn f16_weights_match_the_reference() {
    check_against_reference("model.f16.safetensors");
}

/// Packing texts into one batch must not let them see each other: each text's vector
/// in a batch is its vector alone.
#[test]
fn a_batch_embeds_each_text_as_alone() {
    let model = embedder("model.f16.safetensors");
    let f = fixture();
    let batch = model.embed(&f.texts).unwrap();
    for (i, text) in f.texts.iter().enumerate() {
        let alone = model.embed(&[text]).unwrap();
        let c = cosine(&alone, &batch[i * 384..][..384]);
        assert!(c > 0.999_999, "text {i}: cosine {c} between alone and in a batch");
    }
}

/// A text past the limit keeps its first 254 tokens and its final [SEP]: appending
/// more text changes nothing, and an empty batch gives no vectors.
#[test]
fn text_beyond_the_limit_is_cut() {
    let model = embedder("model.f16.safetensors");
    let long = "word ".repeat(MAX_TOKENS * 2);
    let longer = format!("{long} and a different ending that lies far past the limit");
    let (a, b) = (model.embed(&[&long]).unwrap(), model.embed(&[&longer]).unwrap());
    assert_eq!(a, b);
    assert!(model.embed::<&str>(&[]).unwrap().is_empty());
}
