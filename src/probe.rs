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
use crate::data::Batch;
use crate::model::{Classifier, Impl};
use crate::run::write_atomic;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GradRow {
    pub step: usize,
    pub model: String,
    pub layer: i64,
    pub t: i64,
    pub distance_to_readout: i64,
    pub quantity: String,
    pub norm: f64,
}

/// Mean over sequences of the per-sequence norm of `grads[b, t, :]`, by distance to each sequence's readout.
/// `grads` is `[B, T, F]`; returns `(distance, mean norm)` for distances 0..T−1.
pub fn norms_by_distance(grads: &Tensor, batch: &Batch) -> Vec<(i64, f64)> {
    let (b, t_len) = (grads.size()[0], grads.size()[1]);
    let norms = Vec::<f64>::try_from(
        grads.to_kind(Kind::Double).norm_scalaropt_dim(2, [2], false).flatten(0, -1).to_device(Device::Cpu),
    )
    .expect("norms");
    let readout = &batch.spans.start + &batch.spans.len - 1;
    let readout = Vec::<i64>::try_from(readout.to_device(Device::Cpu)).expect("readout");
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
    let loss = probe_loss(&model.logits_from(&x, batch, false, Impl::Fused), &batch.targets);
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

/// Records probes of one model on one fixed batch into `<dir>/grad_norms.csv`.
pub struct Probe<'a> {
    pub model: &'a Classifier,
    pub batch: Batch,
    pub hidden: bool,
    pub name: String,
    pub path: PathBuf,
    pub rows: Vec<GradRow>,
    /// Seconds spent probing (to compare with the training time).
    pub seconds: f64,
}

impl<'a> Probe<'a> {
    pub fn new(model: &'a Classifier, batch: Batch, hidden: bool, name: &str, path: PathBuf) -> Self {
        Probe { model, batch, hidden, name: name.into(), path, rows: Vec::new(), seconds: 0.0 }
    }

    /// Probes now (at training step `step`) and rewrites the CSV.
    pub fn record(&mut self, step: usize) -> Result<()> {
        let clock = std::time::Instant::now();
        let t_len = self.batch.tokens.size()[1];
        let mut add = |quantity: &str, v: Vec<(i64, f64)>| {
            for (d, norm) in v {
                self.rows.push(GradRow {
                    step,
                    model: self.name.clone(),
                    layer: 0,
                    t: t_len - 1 - d,
                    distance_to_readout: d,
                    quantity: quantity.into(),
                    norm,
                });
            }
        };
        add("dl_dx", input_grads(self.model, &self.batch));
        if self.hidden {
            add("dl_dh", hidden_grads(self.model, &self.batch));
        }
        self.seconds += clock.elapsed().as_secs_f64();
        write_atomic(&self.path, &crate::run::csv_bytes(&self.rows)?)
    }
}

/// Least-squares slope of log10(norm) against distance and its R², over rows with norm > 0.
/// A slope of −0.3 means the gradient shrinks ×0.5 per step.
pub fn decay_fit(points: &[(i64, f64)]) -> (f64, f64) {
    let p: Vec<(f64, f64)> =
        points.iter().filter(|p| p.1 > 0.0 && p.1.is_finite()).map(|&(d, v)| (d as f64, v.log10())).collect();
    let n = p.len() as f64;
    if p.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    let (mx, my) = (p.iter().map(|q| q.0).sum::<f64>() / n, p.iter().map(|q| q.1).sum::<f64>() / n);
    let sxy: f64 = p.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum();
    let sxx: f64 = p.iter().map(|q| (q.0 - mx).powi(2)).sum();
    let syy: f64 = p.iter().map(|q| (q.1 - my).powi(2)).sum();
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 { sxy * sxy / (sxx * syy) } else { 1.0 };
    (slope, r2)
}
