//! The row types of a run folder's CSVs, each with its file name and reader. Column names follow the shared
//! vocabulary (`../shared/DESIGN.md`): snake_case, one observation per row.
use super::{read_csv, Meta};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const METRICS: &str = "metrics.csv";
pub const STEPS: &str = "steps.csv";
pub const GRADS: &str = "grad_norms.csv";

/// Which split a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    Train,
    Val,
    Test,
}

/// Whether an epoch's row is an ordinary one, or the one where the loss became NaN/Inf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    Ok,
    Diverged,
}

/// A row of `metrics.csv`: one epoch and split.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MetricRow {
    pub experiment: String,
    pub run: String,
    pub model: String,
    pub variant: String,
    pub seed: u64,
    pub epoch: usize,
    pub step: usize,
    pub split: SplitName,
    pub loss: f64,
    pub acc: f64,
    pub status: RowStatus,
}

/// A row of `steps.csv`: one optimiser step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRow {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub grad_norm: f64,
    pub grad_norm_clipped: f64,
}

/// A row of `grad_norms.csv`: the mean gradient norm at one distance from the readout, at one training step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GradRow {
    pub step: usize,
    pub model: String,
    pub layer: i64,
    pub t: i64,
    pub distance_to_readout: i64,
    /// `dl_dx` (inputs of the recurrent layer) or `dl_dh` (first layer's hidden states).
    pub quantity: String,
    pub norm: f64,
}

/// The epoch rows of a run.
pub fn metrics(root: &Path, m: &Meta) -> Result<Vec<MetricRow>> {
    read_csv(&m.dir(root).join(METRICS))
}

/// The step rows of a run.
pub fn steps(root: &Path, m: &Meta) -> Result<Vec<StepRow>> {
    read_csv(&m.dir(root).join(STEPS))
}

/// The gradient-norm rows of a run (empty when the probe was off).
pub fn grads(root: &Path, m: &Meta) -> Result<Vec<GradRow>> {
    let p = m.dir(root).join(GRADS);
    if p.exists() {
        read_csv(&p)
    } else {
        Ok(vec![])
    }
}

/// A run's own CSV `name`, rows of `T` (files an experiment adds, such as `confusion.csv`).
pub fn own<T: serde::de::DeserializeOwned>(root: &Path, m: &Meta, name: &str) -> Result<Vec<T>> {
    read_csv(&m.dir(root).join(name))
}
