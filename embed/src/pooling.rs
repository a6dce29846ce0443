//! The sentence-transformers head: a sequence's vector is the mean of its tokens' last
//! hidden states, scaled to unit length, so that a dot product is a cosine.

/// Each sequence's mean hidden state, scaled to unit length. Sequences are packed
/// without padding, so every token counts: the attention mask's mean.
pub fn mean_pool_normalised(hidden: &[f32], sequences: &[Vec<u32>], dim: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(sequences.len() * dim);
    let mut rows = hidden.chunks_exact(dim);
    for ids in sequences {
        let mut sum = vec![0f32; dim];
        for row in rows.by_ref().take(ids.len()) {
            for (s, v) in sum.iter_mut().zip(row) {
                *s += v;
            }
        }
        // The mean's length is the sum's over n: normalising the sum gives the same.
        let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        out.extend(sum.iter().map(|v| v / norm));
    }
    out
}
