//! Text to token ids with the model's own `tokenizer.json`.
//!
//! The file ships with padding and truncation to 128 tokens set; the embedder wants
//! neither: sequences are packed, not padded (see `bert`), and they are cut at the
//! model's 256 tokens. The tokenizer's own truncation cuts the text's tokens before
//! `[CLS]` and `[SEP]` are added, so a cut sequence still ends in `[SEP]`, as in the
//! reference implementation (transformers.js drops it).

use crate::Error;
use tokenizers::{Tokenizer, TruncationParams};

pub struct Tokens {
    tokenizer: Tokenizer,
}

impl Tokens {
    /// Loads `tokenizer.json`; encodings are at most `max_tokens` long, special tokens
    /// included.
    pub fn load(json: &[u8], max_tokens: usize) -> Result<Self, Error> {
        let fail = |e: tokenizers::Error| Error::Tokenizer(e.to_string());
        let mut tokenizer = Tokenizer::from_bytes(json).map_err(fail)?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(fail)?;
        Ok(Tokens { tokenizer })
    }

    /// The number of distinct token ids the tokenizer can produce.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// `[CLS]`, the text's tokens, `[SEP]`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, Error> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }
}
