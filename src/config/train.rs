//! The `train`, `probe` and `output` sections: the optimiser and the loop's settings, the gradient probe, where
//! results go.
use super::check::{Checker, Validate};
use super::model::{CellKind, ModelConfig, ModelKind};
use super::{is_default, is_one, is_zero};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

/// Which rows an epoch trains on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// Every training row once per epoch (the classes as often as the data has them).
    #[default]
    Natural,
    /// Every class equally often ([`crate::data::Balanced`]): small classes repeat, big ones are covered over
    /// several epochs. Classifiers only.
    Balanced,
}

/// Class weights in a classifier's loss (a weighted mean: Σ w_y · loss / Σ w_y).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeights {
    #[default]
    None,
    /// w_c ∝ 1 / n_c (n_c: the class's training rows): every class weighs as much in total.
    Inverse,
    /// w_c ∝ 1 / √n_c: halfway (in log scale) between none and inverse.
    Sqrt,
}

impl ClassWeights {
    /// The weight of each class given its training rows, scaled to a mean of 1 over the rows.
    pub fn of(self, counts: &[i64]) -> Vec<f64> {
        let raw: Vec<f64> = counts
            .iter()
            .map(|&n| match (self, n) {
                (_, 0) => 0.0,
                (ClassWeights::None, _) => 1.0,
                (ClassWeights::Inverse, n) => 1.0 / n as f64,
                (ClassWeights::Sqrt, n) => 1.0 / (n as f64).sqrt(),
            })
            .collect();
        let rows: f64 = counts.iter().sum::<i64>() as f64;
        let mass: f64 = raw.iter().zip(counts).map(|(w, &n)| w * n as f64).sum();
        raw.iter().map(|w| w * rows / mass.max(1e-300)).collect()
    }
}

/// How the best epoch is chosen (on the validation split, or the training split when there is none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BestBy {
    /// Lowest validation loss.
    ValLoss,
    /// Highest validation accuracy (ties: the earlier epoch).
    ValAcc,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Fixes data split, init, dropout and batch order.
    pub seed: u64,
    /// 0 trains nothing: the probe and the evaluation see the initial weights.
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    /// Per-cell learning rates that replace `lr` (e.g. `{rnn: 0.001}`).
    pub lr_by_cell: BTreeMap<CellKind, f64>,
    /// SGD momentum.
    pub momentum: f64,
    pub weight_decay: f64,
    /// Multiply the learning rate by this after every epoch (1: constant). Left out of saved configs at 1, so
    /// runs made before the key existed still match.
    #[serde(skip_serializing_if = "is_one")]
    pub lr_decay: f64,
    /// Evaluate and keep an exponential moving average of the weights (0: off). Its decay per step is
    /// `min(average, (1 + step) / (10 + step))`: early on it averages about the last step/9 steps, at most the
    /// last ~1/(1 - average). Training continues from the live weights. Left out of saved configs at 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub average: f64,
    /// Clip the global gradient norm to this value; null = no clipping (norms are logged either way).
    pub clip: Option<f64>,
    /// What "better epoch" means for early stopping and the kept weights.
    pub best_by: BestBy,
    /// Stop after this many epochs without a better epoch; null = run all epochs.
    pub patience: Option<usize>,
    /// Encoder–decoders: the probability that the decoder is fed the true previous token rather than its own
    /// guess (1: always, "teacher forcing").
    #[serde(skip_serializing_if = "is_one")]
    pub teacher_forcing: f64,
    /// Which rows an epoch trains on: natural | balanced (classifiers; every class equally often).
    #[serde(skip_serializing_if = "is_default")]
    pub sampling: Sampling,
    /// Class weights in a classifier's loss: none | inverse | sqrt (of the class's training frequency).
    #[serde(skip_serializing_if = "is_default")]
    pub class_weights: ClassWeights,
    /// Group sequences of similar length into batches (less padding, same data).
    pub bucket: bool,
    /// Shuffle the training batches every epoch (false: keep their order, as truncated backpropagation
    /// through time needs).
    pub shuffle: bool,
    /// Steps between progress updates and divergence checks (one host sync each).
    pub log_every: usize,
    /// Evaluate the test split after every epoch (else only once, at the best epoch).
    pub test_each_epoch: bool,
    /// Save the best weights in the run folder (`model.safetensors`, and `model.yaml` to rebuild the model).
    pub checkpoint: bool,
    /// A forced overflow, to see how a diverging run ends: at this step (1-based) the loss is multiplied by
    /// +inf before the backward pass, so the loss and every gradient become non-finite. Null (the default, left
    /// out of saved configs): off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow_at_step: Option<usize>,
    /// Flush subnormal floats (below 1.2e-38 in float32) to zero on the CPU while training: on Intel CPUs the
    /// vanishing gradients of long sequences are subnormal and each operation on one is slow (`bench
    /// --flush-denormals`, docs/performance.md: imdb RNN training 2.8×, GRU 1.6× faster on an Intel Xeon, level
    /// on names). Changes results wherever such values occur, so off by default (and left out of saved configs
    /// when off); x86_64 only.
    #[serde(skip_serializing_if = "is_default")]
    pub flush_denormals: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 0,
            epochs: 10,
            batch_size: 64,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            lr_by_cell: BTreeMap::new(),
            momentum: 0.9,
            weight_decay: 0.0,
            lr_decay: 1.0,
            average: 0.0,
            clip: Some(5.0),
            best_by: BestBy::ValLoss,
            patience: None,
            teacher_forcing: 1.0,
            sampling: Sampling::Natural,
            class_weights: ClassWeights::None,
            bucket: true,
            shuffle: true,
            log_every: 20,
            test_each_epoch: true,
            checkpoint: false,
            overflow_at_step: None,
            flush_denormals: false,
        }
    }
}

impl TrainConfig {
    /// The learning rate of `model`: `lr_by_cell` for a recurrent model's cell, else `lr`.
    pub fn lr_for(&self, model: &ModelConfig) -> f64 {
        match model.kind {
            ModelKind::Bow => self.lr,
            _ => self.lr_by_cell.get(&model.cell).copied().unwrap_or(self.lr),
        }
    }
}

/// Gradient probe: per-timestep gradient norms on a fixed batch, at init and every `every` steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    pub enabled: bool,
    /// Training steps between probes (0: only at init and at the end).
    pub every: usize,
    /// Sequences in the fixed probe batch (taken from the validation split, else the training split).
    pub batch_size: usize,
    /// Also ‖∂L/∂h_t‖ through the recurrence (runs the unrolled model; first layer).
    pub hidden: bool,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig { enabled: false, every: 0, batch_size: 64, hidden: true }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Results root; runs go to `<dir>/<experiment>/<run>/`.
    pub dir: PathBuf,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { dir: PathBuf::from("results") }
    }
}

impl Validate for TrainConfig {
    fn validate(&self, c: &mut Checker) {
        c.positive("train.batch_size", self.batch_size);
        c.check(self.lr.is_finite() && self.lr > 0.0, "train.lr", self.lr, "must be a finite number > 0");
        for (cell, lr) in &self.lr_by_cell {
            let ok = lr.is_finite() && *lr > 0.0;
            c.check(ok, &format!("train.lr_by_cell.{cell}"), lr, "must be a finite number > 0");
        }
        c.check((0.0..1.0).contains(&self.momentum), "train.momentum", self.momentum, "must be in [0, 1)");
        c.check(self.weight_decay >= 0.0, "train.weight_decay", self.weight_decay, "must be >= 0");
        let ok = self.lr_decay > 0.0 && self.lr_decay <= 1.0;
        c.check(ok, "train.lr_decay", self.lr_decay, "must be in (0, 1] (1: constant learning rate)");
        c.check((0.0..1.0).contains(&self.average), "train.average", self.average, "must be in [0, 1) (0: off)");
        let tf = self.teacher_forcing;
        c.check((0.0..=1.0).contains(&tf), "train.teacher_forcing", tf, "must be in [0, 1]");
        if let Some(clip) = self.clip {
            c.check(clip > 0.0, "train.clip", clip, "must be > 0, or null for no clipping");
        }
        if let Some(p) = self.patience {
            c.positive("train.patience", p);
        }
        c.positive("train.log_every", self.log_every);
        if let Some(at) = self.overflow_at_step {
            c.positive("train.overflow_at_step", at);
        }
    }
}

impl Validate for ProbeConfig {
    fn validate(&self, c: &mut Checker) {
        if self.enabled {
            c.positive("probe.batch_size", self.batch_size);
        }
    }
}
