//! The BERT encoder's forward pass, for inference, over several sequences at once.
//!
//! Sequences are packed back to back rather than padded: the linear layers, which
//! hold almost all the work, run once over every token of the batch, and only
//! attention, which must not look across sequences, runs sequence by sequence. So no
//! work is spent on padding and no attention mask is needed.

use crate::gemm::{Linear, PANEL};
use crate::ops::{gelu, matmul, softmax_rows, LayerNorm};
use crate::safetensors::SafeTensors;
use crate::Error;
use serde::Deserialize;

/// The fields of the model's `config.json` the forward pass uses.
#[derive(Deserialize, Debug, Clone)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f32,
    pub hidden_act: String,
}

impl Config {
    pub fn parse(json: &[u8]) -> Result<Self, Error> {
        let config: Config = serde_json::from_slice(json).map_err(|e| Error::Config(e.to_string()))?;
        if config.hidden_act != "gelu" {
            return Err(Error::Config(format!(
                "hidden_act {:?}: only \"gelu\" is implemented",
                config.hidden_act
            )));
        }
        if !config.hidden_size.is_multiple_of(PANEL) || !config.intermediate_size.is_multiple_of(PANEL) {
            return Err(Error::Config(format!(
                "hidden_size {} and intermediate_size {} must be multiples of {PANEL}",
                config.hidden_size, config.intermediate_size
            )));
        }
        if config.num_attention_heads == 0 || !config.hidden_size.is_multiple_of(config.num_attention_heads) {
            return Err(Error::Config(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            )));
        }
        Ok(config)
    }
}

struct Layer {
    /// Query, key and value in one product: rows of W are q's, then k's, then v's.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A loaded BERT encoder.
pub struct Bert {
    config: Config,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0's embedding: a single sequence has no second segment.
    token_type: Vec<f32>,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl Bert {
    pub fn load(config: Config, weights: &SafeTensors) -> Result<Self, Error> {
        let h = config.hidden_size;
        let tensors = |name: &str, inputs: usize, outputs: usize| -> Result<(Vec<f32>, Vec<f32>), Error> {
            Ok((
                weights.f32(&format!("{name}.weight"), &[outputs, inputs])?,
                weights.f32(&format!("{name}.bias"), &[outputs])?,
            ))
        };
        let linear = |name: &str, inputs: usize, outputs: usize| -> Result<Linear, Error> {
            let (weight, bias) = tensors(name, inputs, outputs)?;
            Ok(Linear::new(&weight, bias, inputs, outputs))
        };
        let norm = |name: &str| -> Result<LayerNorm, Error> {
            Ok(LayerNorm {
                weight: weights.f32(&format!("{name}.weight"), &[h])?,
                bias: weights.f32(&format!("{name}.bias"), &[h])?,
                eps: config.layer_norm_eps,
            })
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                let [q, k, v] = ["query", "key", "value"].map(|n| tensors(&format!("{p}.attention.self.{n}"), h, h));
                let (q, k, v) = (q?, k?, v?);
                Ok(Layer {
                    qkv: Linear::new(&[q.0, k.0, v.0].concat(), [q.1, k.1, v.1].concat(), h, 3 * h),
                    attention_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                    attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                    intermediate: linear(&format!("{p}.intermediate.dense"), h, config.intermediate_size)?,
                    output: linear(&format!("{p}.output.dense"), config.intermediate_size, h)?,
                    output_norm: norm(&format!("{p}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<_, Error>>()?;
        let mut token_type = weights.f32("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?;
        token_type.truncate(h);
        Ok(Bert {
            word: weights.f32("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: weights.f32(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type,
            embeddings_norm: norm("embeddings.LayerNorm")?,
            layers,
            config,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// The last hidden state of every token of `sequences` (token ids, each at most
    /// `max_position_embeddings` long and within the vocabulary), packed: sequence after
    /// sequence, `hidden_size()` floats a token.
    pub fn forward(&self, sequences: &[Vec<u32>]) -> Vec<f32> {
        let h = self.config.hidden_size;
        let tokens: usize = sequences.iter().map(Vec::len).sum();
        let mut x = Vec::with_capacity(tokens * h);
        for ids in sequences {
            for (pos, &id) in ids.iter().enumerate() {
                let word = &self.word[id as usize * h..][..h];
                let position = &self.position[pos * h..][..h];
                x.extend(
                    word.iter()
                        .zip(position)
                        .zip(&self.token_type)
                        .map(|((w, p), t)| w + p + t),
                );
            }
        }
        self.embeddings_norm.forward(&mut x);

        let (mut qkv, mut context, mut projected, mut inner, mut scores) = (vec![], vec![], vec![], vec![], vec![]);
        for layer in &self.layers {
            layer.qkv.forward(&x, tokens, &mut qkv);
            context.clear();
            context.resize(tokens * h, 0.0);
            self.attention(sequences, &qkv, &mut context, &mut scores);
            layer.attention_out.forward(&context, tokens, &mut projected);
            add(&mut projected, &x);
            layer.attention_norm.forward(&mut projected);
            std::mem::swap(&mut x, &mut projected);

            layer.intermediate.forward(&x, tokens, &mut inner);
            gelu(&mut inner);
            layer.output.forward(&inner, tokens, &mut projected);
            add(&mut projected, &x);
            layer.output_norm.forward(&mut projected);
            std::mem::swap(&mut x, &mut projected);
        }
        x
    }

    /// Multi-head self-attention of each sequence over its own tokens: `context` gets
    /// every head's `softmax(q k^T / sqrt d) v` in the head's columns.
    fn attention(&self, sequences: &[Vec<u32>], qkv: &[f32], context: &mut [f32], scores: &mut Vec<f32>) {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut start = 0;
        for ids in sequences {
            let n = ids.len();
            scores.clear();
            scores.resize(n * n, 0.0);
            for head in 0..heads {
                let q = &qkv[start * 3 * h + head * d..];
                let k = &qkv[start * 3 * h + h + head * d..];
                let v = &qkv[start * 3 * h + 2 * h + head * d..];
                // k read transposed: d x n, row stride 1, column stride 3h.
                matmul(n, d, n, scale, (q, 3 * h, 1), (k, 1, 3 * h), (scores, n, 1));
                softmax_rows(scores, n);
                let out = &mut context[start * h + head * d..];
                matmul(n, n, d, 1.0, (scores, n, 1), (v, 3 * h, 1), (out, h, 1));
            }
            start += n;
        }
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
