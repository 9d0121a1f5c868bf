//! Bag-of-words logistic regression: the reference line of the IMDB sweeps.
//!
//! Logits = mean over the sequence's words of a learned per-word, per-class weight, plus a bias. Order is
//! ignored; padding (id 0) and the listed `ignore` ids (e.g. the filler of the distance mode) do not count.
use super::{class_stats, Objective, Stats};
use crate::data::Batch;
use tch::{nn, Kind, Tensor};

#[derive(Debug)]
pub struct BagOfWords {
    weights: Tensor,
    bias: Tensor,
    ignore: Vec<i64>,
}

impl BagOfWords {
    pub fn new(p: &nn::Path, vocab: i64, classes: i64, ignore: &[i64]) -> Self {
        BagOfWords {
            weights: p.zeros("weights", &[vocab, classes]),
            bias: p.zeros("bias", &[classes]),
            ignore: ignore.to_vec(),
        }
    }

    pub fn forward(&self, batch: &Batch) -> Tensor {
        let mut keep = batch.tokens.ne(0);
        for &i in &self.ignore {
            keep = keep.logical_and(&batch.tokens.ne(i));
        }
        let keep = keep.to_kind(Kind::Float).unsqueeze(2);
        let w = Tensor::embedding(&self.weights, &batch.tokens, -1, false, false) * &keep;
        w.sum_dim_intlist(1, false, Kind::Float) / keep.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0)
            + &self.bias
    }
}

impl Objective for BagOfWords {
    fn stats(&self, batch: &Batch, _train: bool) -> Stats {
        class_stats(&self.forward(batch), &batch.targets, None)
    }
}
