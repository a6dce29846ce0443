//! What can go wrong loading or running the model.

use std::fmt;

/// A model file that cannot be used, or a text the tokenizer refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `model.safetensors` is malformed, or lacks a tensor or has one of another shape.
    Weights(String),
    /// `config.json` is malformed or describes a model this forward pass does not run.
    Config(String),
    /// `tokenizer.json` is malformed, or the tokenizer failed on a text.
    Tokenizer(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Weights(m) => write!(f, "weights: {m}"),
            Error::Config(m) => write!(f, "config: {m}"),
            Error::Tokenizer(m) => write!(f, "tokenizer: {m}"),
        }
    }
}

impl std::error::Error for Error {}
