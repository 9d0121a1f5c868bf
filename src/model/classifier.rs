//! Sequence classifier: token ids → embedding or one-hot → [`Recurrent`] → linear head read at one step.
use super::{class_stats, Objective, Recurrent, Stats};
use crate::config::{Impl, InputKind, ModelConfig, Readout};
use crate::data::{Batch, Split};
use tch::{nn, nn::Module, Device, Kind, Tensor};

#[derive(Debug)]
pub struct Classifier {
    pub cfg: ModelConfig,
    pub vocab: i64,
    pub classes: i64,
    embedding: Option<nn::Embedding>,
    pub rnn: Recurrent,
    head: nn::Linear,
    /// `[classes]` weights of the loss (`train.class_weights`), when set.
    pub class_weights: Option<Tensor>,
}

/// The embedding (index 0 is padding and maps to zeros) or, for one-hot input, None; and the input width.
pub(super) fn input_layer(p: &nn::Path, cfg: &ModelConfig, vocab: i64) -> (Option<nn::Embedding>, i64) {
    match cfg.input {
        InputKind::Embedding => {
            let ec = nn::EmbeddingConfig { padding_idx: 0, ..Default::default() };
            (Some(nn::embedding(p / "embed", vocab, cfg.embed_dim, ec)), cfg.embed_dim)
        }
        InputKind::Onehot => (None, vocab - 1),
    }
}

/// `[B, T, width]` float inputs of token ids: the embedding, or one-hot without the padding column.
pub(super) fn embed_with(embedding: &Option<nn::Embedding>, vocab: i64, tokens: &Tensor) -> Tensor {
    match embedding {
        Some(e) => e.forward(tokens),
        None => tokens.one_hot(vocab).narrow(2, 1, vocab - 1).to_kind(Kind::Float),
    }
}

impl Classifier {
    /// `vocab` counts the padding id 0.
    pub fn new(p: &nn::Path, cfg: &ModelConfig, vocab: i64, classes: i64) -> Self {
        let (embedding, input) = input_layer(p, cfg, vocab);
        let rnn = Recurrent::new(&(p / "rnn"), input, cfg);
        let feats = if cfg.readout == Readout::Pool { 3 } else { 1 } * cfg.hidden * rnn.dirs();
        let head = nn::linear(p / "head", feats, classes, Default::default());
        Classifier { cfg: cfg.clone(), vocab, classes, embedding, rnn, head, class_weights: None }
    }

    /// Inputs to the recurrent layer, `[B, T, input]` (float). Padding (id 0) maps to zeros.
    pub fn embed(&self, tokens: &Tensor) -> Tensor {
        embed_with(&self.embedding, self.vocab, tokens)
    }

    /// Logits `[B, classes]` from embedded inputs, with the given implementation of the recurrence.
    pub fn logits_from(&self, x: &Tensor, batch: &Batch, train: bool, imp: Impl) -> Tensor {
        self.logits_traced(x, batch, train, imp).0
    }

    /// As [`logits_from`](Self::logits_from), also returning the unrolled hidden states (see
    /// [`Recurrent::forward_traced`]).
    pub fn logits_traced(&self, x: &Tensor, batch: &Batch, train: bool, imp: Impl) -> (Tensor, Vec<Tensor>) {
        let real = self.cfg.readout != Readout::LastPadded;
        let spans = real.then_some(&batch.spans);
        let x = x.dropout(self.cfg.dropout, train);
        let (out, hs) = self.rnn.forward_traced(&x, spans, train, imp);
        let feats = self.readout(&out, batch);
        (self.head.forward(&feats.dropout(self.cfg.dropout, train)), hs)
    }

    /// Forward direction at the last real step (`start + len - 1`); backward direction at `start`, where it
    /// has read the whole sequence. With `readout: last_padded`, the batch's last and first steps instead; with
    /// `readout: pool`, the last real step, then the maximum and the mean over the real steps.
    fn readout(&self, out: &Tensor, batch: &Batch) -> Tensor {
        let (b, t_len, h) = (out.size()[0], out.size()[1], self.cfg.hidden);
        let (first, last) = match self.cfg.readout {
            Readout::LastReal | Readout::Pool => (batch.spans.start.shallow_clone(), batch.spans.last()),
            Readout::LastPadded => {
                let z = Tensor::zeros([b], (Kind::Int64, out.device()));
                (z.shallow_clone(), z + (t_len - 1))
            }
        };
        let at = |idx: &Tensor, part: i64| {
            out.narrow(2, part * h, h).gather(1, &idx.view([b, 1, 1]).expand([b, 1, h], false), false).squeeze_dim(1)
        };
        let fwd = at(&last, 0);
        let end = if self.rnn.bidirectional { Tensor::cat(&[fwd, at(&first, 1)], 1) } else { fwd };
        if self.cfg.readout != Readout::Pool {
            return end;
        }
        let inside = batch.spans.mask(t_len).unsqueeze(2);
        let max = out.masked_fill(&inside.logical_not(), f64::NEG_INFINITY).amax([1].as_slice(), false);
        let len = batch.spans.len.to_kind(out.kind()).view([b, 1]);
        let mean = (out * inside.to_kind(out.kind())).sum_dim_intlist([1].as_slice(), false, out.kind()) / len;
        Tensor::cat(&[end, max, mean], 1)
    }

    /// Logits `[1, T, classes]` as if the one sequence `tokens` `[1, T]` ended at each step — when the readout
    /// allows (unidirectional, read at the last real step); else None.
    pub fn logits_per_step(&self, tokens: &Tensor) -> Option<Tensor> {
        if self.rnn.bidirectional || self.cfg.readout != Readout::LastReal {
            return None;
        }
        let out = self.rnn.forward(&self.embed(tokens), None, false, self.cfg.imp);
        Some(self.head.forward(&out))
    }

    /// Logits `[B, classes]` with the configured implementation (`model.impl`).
    pub fn forward(&self, batch: &Batch, train: bool) -> Tensor {
        self.logits_from(&self.embed(&batch.tokens), batch, train, self.cfg.imp)
    }

    /// Class probabilities `[N, classes]` (on the CPU) for every row of `split`, in row order.
    pub fn predict_proba(&self, split: &Split, batch_size: usize) -> Tensor {
        let device = split.tokens.device();
        tch::no_grad(|| {
            let parts: Vec<Tensor> = split
                .batches(batch_size, None, false)
                .iter()
                .map(|idx| {
                    self.forward(&split.batch(idx, device), false).softmax(-1, Kind::Float).to_device(Device::Cpu)
                })
                .collect();
            Tensor::cat(&parts, 0)
        })
    }
}

impl Objective for Classifier {
    fn stats(&self, batch: &Batch, train: bool) -> Stats {
        class_stats(&self.forward(batch, train), &batch.targets, self.class_weights.as_ref())
    }
}
