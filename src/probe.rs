//! The gradient probe: per-timestep gradient norms on a fixed batch, written to `grad_norms.csv`.
//!
//! With L the summed cross-entropy of the probe batch (so each sequence contributes its own loss):
//! - `dl_dx`: ‖∂L/∂x_t‖ for the recurrent layer's inputs x_t (embeddings or one-hot vectors), through the fused
//!   kernels;
//! - `dl_dh`: ‖∂L/∂h_t‖ for the first layer's hidden states (total derivative through the recurrence), through
//!   the unrolled model.
//!
//! Norms are per sequence, then averaged over the sequences at each distance to the readout
//! (`distance_to_readout = readout step − t`, 0 at the readout). `t` is the 0-based step in a sequence of the
//! batch's longest length whose readout is at its last step, i.e. `t = T − 1 − distance`.
use crate::config::Impl;
use crate::data::Batch;
use crate::model::Classifier;
use crate::results::rows::GradRow;
use tch::{Device, Kind, Tensor};

/// Mean over sequences of the per-sequence norm of `grads[b, t, :]`, by distance to each sequence's readout.
/// `grads` is `[B, T, F]`; returns `(distance, mean norm)` for distances 0..T−1.
pub fn norms_by_distance(grads: &Tensor, batch: &Batch) -> Vec<(i64, f64)> {
    let (b, t_len) = (grads.size()[0], grads.size()[1]);
    let norms = Vec::<f64>::try_from(
        grads.to_kind(Kind::Double).norm_scalaropt_dim(2, [2], false).flatten(0, -1).to_device(Device::Cpu),
    )
    .expect("norms");
    let readout = Vec::<i64>::try_from(batch.spans.last().to_device(Device::Cpu)).expect("readout");
    let starts = Vec::<i64>::try_from(batch.spans.start.to_device(Device::Cpu)).expect("starts");
    let mut sum = vec![0f64; t_len as usize];
    let mut n = vec![0usize; t_len as usize];
    for i in 0..b as usize {
        for t in starts[i]..=readout[i] {
            let d = (readout[i] - t) as usize;
            sum[d] += norms[i * t_len as usize + t as usize];
            n[d] += 1;
        }
    }
    (0..t_len as usize).filter(|&d| n[d] > 0).map(|d| (d as i64, sum[d] / n[d] as f64)).collect()
}

/// The probe's loss: summed cross-entropy, so each sequence's gradient is that of its own loss.
pub fn probe_loss(logits: &Tensor, targets: &Tensor) -> Tensor {
    logits.cross_entropy_loss::<Tensor>(targets, None, tch::Reduction::Sum, -100, 0.0)
}

/// Gradients of `loss` with respect to each tensor of `wrt` (inputs or intermediate states), stacked along
/// dim 1: `[B, T, F]` from T tensors `[B, F]`. Total derivatives: every path from the tensor to the loss counts.
pub fn grads_wrt(loss: &Tensor, wrt: &[Tensor]) -> Tensor {
    Tensor::stack(&Tensor::run_backward(&[loss], wrt, false, false), 1)
}

/// ∂L/∂x, `[B, T, input]`, for the recurrent layer's inputs (fused kernels, evaluation mode).
pub fn input_grad(model: &Classifier, batch: &Batch) -> Tensor {
    let x = model.embed(&batch.tokens).detach().set_requires_grad(true);
    let loss = probe_loss(&model.logits_from(&x, batch, false, Impl::Libtorch), &batch.targets);
    Tensor::run_backward(&[&loss], &[&x], false, false).remove(0)
}

/// ‖∂L/∂x_t‖ by distance.
pub fn input_grads(model: &Classifier, batch: &Batch) -> Vec<(i64, f64)> {
    norms_by_distance(&input_grad(model, batch), batch)
}

/// ‖∂L/∂h_t‖ of the first layer (forward direction) by distance (unrolled, evaluation mode).
pub fn hidden_grads(model: &Classifier, batch: &Batch) -> Vec<(i64, f64)> {
    let x = model.embed(&batch.tokens).detach();
    let (logits, hs) = model.logits_traced(&x, batch, false, Impl::Unrolled);
    norms_by_distance(&grads_wrt(&probe_loss(&logits, &batch.targets), &hs), batch)
}

/// Probes one model on one fixed batch; the rows go to the run's recorder.
pub struct Probe<'a> {
    pub model: &'a Classifier,
    pub batch: Batch,
    pub hidden: bool,
    pub name: String,
    /// Seconds spent probing (to compare with the training time).
    pub seconds: f64,
}

impl<'a> Probe<'a> {
    pub fn new(model: &'a Classifier, batch: Batch, hidden: bool, name: &str) -> Self {
        Probe { model, batch, hidden, name: name.into(), seconds: 0.0 }
    }

    /// The gradient norms now, at training step `step`.
    pub fn rows(&mut self, step: usize) -> Vec<GradRow> {
        let clock = std::time::Instant::now();
        let t_len = self.batch.tokens.size()[1];
        let mut rows = Vec::new();
        let mut add = |quantity: &str, v: Vec<(i64, f64)>| {
            rows.extend(v.into_iter().map(|(d, norm)| GradRow {
                step,
                model: self.name.clone(),
                layer: 0,
                t: t_len - 1 - d,
                distance_to_readout: d,
                quantity: quantity.into(),
                norm,
            }));
        };
        add("dl_dx", input_grads(self.model, &self.batch));
        if self.hidden {
            add("dl_dh", hidden_grads(self.model, &self.batch));
        }
        self.seconds += clock.elapsed().as_secs_f64();
        rows
    }
}
