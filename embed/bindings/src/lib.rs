//! quiver-embed-wasm: the wasm-bindgen surface of `quiver-embed`, built by
//! `scripts/build.mjs` into `pkg/embed-{simd,scalar}/quiver_embed.js` for the
//! embed worker. A separate module from the store's, so the store's download does not carry
//! the model's code. Conversion only; natively the crate is empty.

#[cfg(target_arch = "wasm32")]
mod embedder {
    use wasm_bindgen::prelude::*;

    /// A loaded model (see `quiver_embed::Embedder`).
    #[wasm_bindgen]
    pub struct Embedder(quiver_embed::Embedder);

    #[wasm_bindgen]
    impl Embedder {
        /// Loads the model from its files' bytes: `model.safetensors` (F32, F16 or
        /// BF16), `tokenizer.json`, `config.json`.
        #[wasm_bindgen(constructor)]
        pub fn new(weights: &[u8], tokenizer: &[u8], config: &[u8]) -> Result<Embedder, JsError> {
            let files = quiver_embed::ModelFiles {
                weights,
                tokenizer,
                config,
            };
            Ok(Embedder(quiver_embed::Embedder::load(files)?))
        }

        /// The length of every vector.
        pub fn dim(&self) -> usize {
            self.0.dim()
        }

        /// The vectors of `texts`, back to back, in order.
        pub fn embed(&self, texts: Vec<String>) -> Result<Vec<f32>, JsError> {
            Ok(self.0.embed(&texts)?)
        }
    }
}
