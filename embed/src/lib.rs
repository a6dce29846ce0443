//! Sentence embeddings with `all-MiniLM-L6-v2` (sentence-transformers), in plain Rust.
//!
//! A text is tokenised (BERT uncased WordPiece, at most 256 tokens), run through the
//! six-layer BERT encoder, and its tokens' last hidden states are averaged and scaled
//! to unit length: a 384-dimensional vector whose dot product with another is their
//! cosine similarity. Nothing here knows JavaScript; `bindings/` wraps it for wasm.

mod bert;
mod error;
mod gemm;
mod ops;
mod pooling;
mod safetensors;
mod tokenize;

pub use error::Error;

use bert::{Bert, Config};
use pooling::mean_pool_normalised;
use safetensors::SafeTensors;
use tokenize::Tokens;

/// Most tokens of a text the model reads, `[CLS]` and `[SEP]` included: the model's
/// `max_seq_length` in sentence-transformers. Beyond it a text's tail is ignored.
pub const MAX_TOKENS: usize = 256;

/// The model's three files, as bytes.
pub struct ModelFiles<'a> {
    /// `model.safetensors`, with F32, F16 or BF16 tensors.
    pub weights: &'a [u8],
    /// `tokenizer.json`.
    pub tokenizer: &'a [u8],
    /// `config.json`.
    pub config: &'a [u8],
}

/// A loaded model: texts in, unit vectors out.
pub struct Embedder {
    tokens: Tokens,
    bert: Bert,
}

impl Embedder {
    pub fn load(files: ModelFiles) -> Result<Self, Error> {
        let config = Config::parse(files.config)?;
        if config.max_position_embeddings < MAX_TOKENS {
            return Err(Error::Config(format!(
                "max_position_embeddings {} is below the {MAX_TOKENS} tokens a text may have",
                config.max_position_embeddings
            )));
        }
        let tokens = Tokens::load(files.tokenizer, MAX_TOKENS)?;
        if tokens.vocab_size() > config.vocab_size {
            return Err(Error::Config(format!(
                "the tokenizer knows {} tokens, the model's vocab_size is {}",
                tokens.vocab_size(),
                config.vocab_size
            )));
        }
        let bert = Bert::load(config, &SafeTensors::parse(files.weights)?)?;
        Ok(Embedder { tokens, bert })
    }

    /// The length of every vector: 384.
    pub fn dim(&self) -> usize {
        self.bert.hidden_size()
    }

    /// The vectors of `texts`, back to back, `dim()` floats each, in the texts' order.
    /// One call runs the texts as one batch.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<f32>, Error> {
        let sequences = texts
            .iter()
            .map(|t| self.tokens.encode(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let hidden = self.bert.forward(&sequences);
        Ok(mean_pool_normalised(&hidden, &sequences, self.dim()))
    }
}
