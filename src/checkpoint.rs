//! Loading a trained run back: its model config (from the run's config.yaml) and weights (model.safetensors).
use crate::config::ModelConfig;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::nn;

/// A section of a run's config.yaml, e.g. `model` or `names.model` (dotted), as a typed value.
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
    let section = section.clone();
    serde_yaml::from_value(section).with_context(|| format!("{}: bad `{key}` section", path.display()))
}

pub fn model_config(run: &Path) -> Result<ModelConfig> {
    config_section(run, "model")
}

/// Loads `model.safetensors` of `run` into `vs` (whose variables the model has already created).
pub fn load_weights(vs: &mut nn::VarStore, run: &Path) -> Result<()> {
    let ckpt = run.join("model.safetensors");
    if !ckpt.exists() {
        bail!("{} not found: that run was trained without train.checkpoint: true", ckpt.display());
    }
    vs.load(&ckpt).with_context(|| format!("cannot load {}", ckpt.display()))
}

/// The class names a run saved (`classes.txt`, one per line).
pub fn classes(run: &Path) -> Result<Vec<String>> {
    let p = run.join("classes.txt");
    let text = std::fs::read_to_string(&p).with_context(|| format!("{}: classes.txt missing", run.display()))?;
    Ok(text.lines().map(str::to_string).collect())
}
