//! Models, built in one place ([`build`]) from the model config and the data's [`Shape`]: the recurrent stack
//! ([`Recurrent`], with its [`fused`] kernels), and on top of it a sequence [`Classifier`], a [`LanguageModel`], a
//! per-token [`Tagger`] and an encoder–decoder [`Seq2Seq`] (with attention); the bag-of-words reference
//! ([`BagOfWords`]). Every model is an [`Objective`] the training loop can train.
pub mod bow;
pub mod classifier;
pub mod fused;
pub mod lm;
pub mod recurrent;
pub mod seq2seq;
pub mod tagger;

pub use bow::BagOfWords;
pub use classifier::Classifier;
pub use fused::rows;
pub use lm::LanguageModel;
pub use recurrent::{LayerTrace, Recurrent, State};
pub use seq2seq::Seq2Seq;
pub use tagger::Tagger;

use crate::config::{ModelConfig, ModelKind};
use crate::data::{Batch, Shape};
use tch::{nn, Kind, Tensor};

/// Loss and counts for one batch: what the training loop needs from any model.
pub struct Stats {
    /// Mean loss over the batch's items (a scalar with a graph when training).
    pub loss: Tensor,
    /// Number of correct predictions (scalar tensor, no graph).
    pub correct: Tensor,
    /// Number of items the loss averages over (sequences, or tokens for a language model).
    pub count: i64,
}

/// Anything the training loop can train.
pub trait Objective {
    fn stats(&self, batch: &Batch, train: bool) -> Stats;
    /// Forget state carried between batches (a language model trained with truncated backpropagation through
    /// time); called at the start of every training epoch and evaluation.
    fn reset(&self) {}
}

/// Gradients of `loss` (from a training [`Objective::stats`]) into the model's variables: one autograd pass, the
/// fused calls' backward included (their nodes, [`fused`]); libtorch's error as an `Err`.
pub fn backward(loss: &Tensor) -> anyhow::Result<()> {
    fused::backward(loss)
}

/// Cross-entropy (with class weights: Σ w_y · loss / Σ w_y) and the number of right argmax predictions of
/// `[B, classes]` logits: every classifier's stats.
pub fn class_stats(logits: &Tensor, targets: &Tensor, weights: Option<&Tensor>) -> Stats {
    let loss = match weights {
        Some(w) => logits.cross_entropy_loss(targets, Some(w), tch::Reduction::Mean, -100, 0.0),
        None => logits.cross_entropy_for_logits(targets),
    };
    let correct = tch::no_grad(|| logits.argmax(-1, false).eq_tensor(targets).sum(Kind::Int64));
    Stats { loss, correct, count: targets.size()[0] }
}

/// Mean cross-entropy over the real tokens of flattened `[N, classes]` logits (targets equal to `ignore` are
/// padding) and the number of right argmax predictions among them: every per-token model's stats.
pub fn token_stats(logits: &Tensor, targets: &Tensor, ignore: i64) -> Stats {
    let loss = logits.cross_entropy_loss::<Tensor>(targets, None, tch::Reduction::Mean, ignore, 0.0);
    let real = targets.ne(ignore);
    let count = real.sum(Kind::Int64).int64_value(&[]);
    let correct = tch::no_grad(|| logits.argmax(-1, false).eq_tensor(targets).logical_and(&real).sum(Kind::Int64));
    Stats { loss, correct, count }
}

/// A built model.
#[derive(Debug)]
pub enum Model {
    Classifier(Classifier),
    Bow(BagOfWords),
    Lm(LanguageModel),
    Tagger(Tagger),
    Seq2seq(Seq2Seq),
}

impl Model {
    pub fn objective(&self) -> &dyn Objective {
        match self {
            Model::Classifier(m) => m,
            Model::Bow(m) => m,
            Model::Lm(m) => m,
            Model::Tagger(m) => m,
            Model::Seq2seq(m) => m,
        }
    }

    /// The classifier, if this is one (the gradient probe and the class-level evaluations need it).
    pub fn classifier(&self) -> Option<&Classifier> {
        match self {
            Model::Classifier(m) => Some(m),
            _ => None,
        }
    }
}

/// Builds the model `cfg` describes for data of this shape, its variables under `p`.
pub fn build(p: &nn::Path, cfg: &ModelConfig, shape: &Shape) -> Model {
    let classes = shape.classes.len() as i64;
    match cfg.kind {
        ModelKind::Classifier => Model::Classifier(Classifier::new(p, cfg, shape.vocab, classes)),
        ModelKind::Bow => Model::Bow(BagOfWords::new(p, shape.vocab, classes, &shape.filler)),
        ModelKind::Lm => {
            let n_cond = if shape.conditioned { classes } else { 0 };
            Model::Lm(LanguageModel::new(p, cfg, shape.vocab, n_cond, shape.streams > 0))
        }
        ModelKind::Tagger => Model::Tagger(Tagger::new(p, cfg, shape.vocab, shape.chars, classes)),
        ModelKind::Seq2seq => Model::Seq2seq(Seq2Seq::new(p, cfg, shape.vocab, classes)),
    }
}

/// Number of trainable scalars.
pub fn n_params(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
}
