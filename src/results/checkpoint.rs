//! The one checkpoint format and loader: `model.safetensors` (the weights) beside `model.yaml` (the model config
//! and the data's shape, everything [`crate::model::build`] needs to rebuild the model).
use super::RunDir;
use crate::config::{ModelConfig, Sampling, TrainConfig};
use crate::data::Shape;
use crate::model::{build, Model};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{nn, Device};

pub const WEIGHTS: &str = "model.safetensors";
pub const SPEC: &str = "model.yaml";

/// What rebuilds a saved model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spec {
    pub model: ModelConfig,
    pub shape: Shape,
    /// A classifier's class prior its probabilities reflect: the training frequencies, flattened by balanced
    /// sampling (uniform) or class weights (w_c · frequency). Empty for other models.
    #[serde(default)]
    pub prior: Vec<f64>,
}

/// Saves the weights in `vs` and their spec into the run folder (atomically).
pub fn save(run: &RunDir, vs: &nn::VarStore, model: &ModelConfig, shape: &Shape, train: &TrainConfig) -> Result<()> {
    let path = run.path.join(WEIGHTS);
    let tmp = crate::files::temp_for(&path)?;
    if let Err(e) = vs.save(&tmp) {
        crate::files::discard(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    crate::files::commit(&tmp, &path)?;
    let spec = Spec { model: model.clone(), shape: shape.clone(), prior: learned_prior(&shape.class_counts, train) };
    run.write(SPEC, serde_yaml::to_string(&spec)?.as_bytes())
}

/// The class prior a classifier trained on rows with these class counts learns under `train`'s sampling and class
/// weights (the minimiser of a weighted cross-entropy is p(c|x) ∝ w_c · s_c · p(x|c), s the sampled frequency).
pub fn learned_prior(counts: &[i64], train: &TrainConfig) -> Vec<f64> {
    if counts.is_empty() {
        return vec![];
    }
    let sampled: Vec<f64> = match train.sampling {
        Sampling::Natural => counts.iter().map(|&n| n as f64).collect(),
        Sampling::Balanced => counts.iter().map(|&n| if n > 0 { 1.0 } else { 0.0 }).collect(),
    };
    let w = train.class_weights.of(counts);
    let e: Vec<f64> = sampled.iter().zip(&w).map(|(s, w)| s * w).collect();
    let total: f64 = e.iter().sum();
    e.iter().map(|v| v / total).collect()
}

/// A model loaded from a run folder.
pub struct Loaded {
    pub model: Model,
    pub spec: Spec,
    /// Owns the weights (keep it alive while the model is used).
    pub vs: nn::VarStore,
    pub dir: PathBuf,
}

/// Loads the model a run saved (`train.checkpoint: true`) onto `device`.
pub fn load(run: &Path, device: Device) -> Result<Loaded> {
    let weights = run.join(WEIGHTS);
    if !weights.exists() {
        if !run.join("meta.yaml").exists() {
            bail!("{} is not a run folder (no meta.yaml)", run.display());
        }
        bail!("{} not found: that run was trained without train.checkpoint: true", weights.display());
    }
    let spec_path = run.join(SPEC);
    let text = std::fs::read_to_string(&spec_path)
        .with_context(|| format!("cannot read {}: the run predates model.yaml; train it again", spec_path.display()))?;
    let spec: Spec =
        serde_yaml::from_str(&text).with_context(|| format!("{} is not a valid model spec", spec_path.display()))?;
    let mut vs = nn::VarStore::new(device);
    let model = build(&vs.root(), &spec.model, &spec.shape);
    vs.load(&weights).with_context(|| format!("cannot load {}", weights.display()))?;
    Ok(Loaded { model, spec, vs, dir: run.to_path_buf() })
}

/// A section of a run's config.yaml, e.g. `data` (dotted keys reach deeper), as a typed value.
pub fn config_section<T: serde::de::DeserializeOwned>(run: &Path, key: &str) -> Result<T> {
    let path = run.join("config.yaml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{} is not a run folder (no config.yaml)", run.display()))?;
    let v: serde_yaml::Value =
        serde_yaml::from_str(&text).with_context(|| format!("{} is not valid YAML", path.display()))?;
    let mut section = &v;
    for part in key.split('.') {
        section = section.get(part).with_context(|| format!("{}: no `{key}` section", path.display()))?;
    }
    serde_yaml::from_value(section.clone()).with_context(|| format!("{}: bad `{key}` section", path.display()))
}
