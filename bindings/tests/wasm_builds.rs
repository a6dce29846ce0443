//! The plain wasm build must load on an engine without SIMD, so it may hold no SIMD
//! instruction at all, from our kernels or from any dependency. The simd128 build is
//! checked to hold some, so the check itself is known to see them. Both wasm modules
//! are checked: the store's and the embedder's.
//!
//! Needs `node scripts/build.mjs` first; `npm test` runs it with `--include-ignored`.

use std::path::PathBuf;
use wasmparser::{Validator, WasmFeatures};

/// Each wasm module's file in pkg/: its plain flavour's folder, its simd128 one's.
const MODULES: [(&str, &str, &str); 2] = [
    ("scalar", "simd", "quiver_bg.wasm"),
    ("embed-scalar", "embed-simd", "quiver_embed_bg.wasm"),
];

fn module(flavour: &str, file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../pkg")
        .join(flavour)
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `node scripts/build.mjs`)", path.display()))
}

fn validate_without_simd(bytes: &[u8]) -> Result<(), String> {
    let features = WasmFeatures::default() - WasmFeatures::SIMD - WasmFeatures::RELAXED_SIMD;
    Validator::new_with_features(features)
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
#[ignore = "needs the wasm builds"]
fn plain_build_holds_no_simd_instruction() {
    for (plain, _, file) in MODULES {
        let bytes = module(plain, file);
        if let Err(e) = validate_without_simd(&bytes) {
            panic!("pkg/{plain}/{file} uses a SIMD instruction: {e}");
        }
        Validator::new_with_features(WasmFeatures::default())
            .validate_all(&bytes)
            .expect("valid wasm");
    }
}

#[test]
#[ignore = "needs the wasm builds"]
fn simd_build_holds_simd_instructions() {
    for (_, simd, file) in MODULES {
        let bytes = module(simd, file);
        let e = validate_without_simd(&bytes).expect_err("the simd128 build should use SIMD");
        assert!(e.contains("SIMD"), "pkg/{simd}/{file}: {e}");
        Validator::new_with_features(WasmFeatures::default())
            .validate_all(&bytes)
            .expect("valid wasm");
    }
}
