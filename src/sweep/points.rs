//! The grid: a config's `sweep` section → one typed, validated config per run, named by its values.
use crate::config::{self, AxisValue, Grid, Loaded, Validate};
use crate::results::tags::{self, Tag, Tags};
use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde_yaml::Value;
use std::collections::BTreeMap;

/// One run of a sweep: its name, its swept values as tags (CSV column → value) and its config.
#[derive(Clone, Debug)]
pub struct Point<C> {
    pub name: String,
    pub tags: Tags,
    pub cfg: C,
}

/// Every run of the config's grid, in grid order (first axis outermost), each with its own typed and validated
/// config and a name made of its swept values, ending with its seed (`gru-L200-s0`; `s0` alone without a grid).
/// Errors name the run and the key.
pub fn points<C: DeserializeOwned + Validate>(
    loaded: &Loaded<C>,
    grid: &Grid,
    overrides: &[String],
) -> Result<Vec<Point<C>>> {
    for o in overrides {
        let key = o.split('=').next().unwrap_or("").trim();
        if !key.starts_with("sweep.") && grid.sweeps(key) {
            bail!(
                "{}: --set {o}: `{key}` is swept (sweep.{key}); set the values to run with --set 'sweep.{key}=[...]'",
                loaded.origin
            );
        }
    }
    let mut base = loaded.tree.clone();
    if let Value::Mapping(m) = &mut base {
        m.remove("sweep");
    }
    let blocks: Vec<&[config::Axis]> =
        if grid.is_empty() { vec![&[]] } else { grid.blocks.iter().map(Vec::as_slice).collect() };
    let mut out: Vec<Point<C>> = Vec::new();
    for axes in blocks {
        // Combination n in mixed radix: the last axis changes fastest.
        let total: usize = axes.iter().map(|a| a.values.len()).product();
        for n in 0..total {
            let mut idx = vec![0usize; axes.len()];
            let mut rem = n;
            for k in (0..axes.len()).rev() {
                idx[k] = rem % axes[k].values.len();
                rem /= axes[k].values.len();
            }
            let (name, tree, tags) = combination(loaded, &base, axes, &idx)?;
            if out.iter().any(|p| p.name == name) {
                bail!("{}: the sweep makes run {name} twice; give the axes different values", loaded.origin);
            }
            let cfg = config::from_tree(tree, &format!("{}, run {name}", loaded.origin), overrides)?;
            out.push(Point { name, tags, cfg });
        }
    }
    Ok(out)
}

/// The run that takes value `idx[k]` of every axis `k`: its name, its YAML tree and its tags.
fn combination<'a, C>(
    loaded: &Loaded<C>,
    base: &Value,
    axes: &'a [config::Axis],
    idx: &[usize],
) -> Result<(String, Value, Tags)> {
    let mut tree = base.clone();
    let mut tags = Tags::new();
    let mut parts: Vec<(usize, String)> = Vec::new();
    // Which axis set each key: two axes setting one key is a mistake, not a combination.
    let mut set_by: BTreeMap<String, &'a str> = BTreeMap::new();
    let mut mark = |key: &str, axis: &'a str| -> Result<()> {
        match set_by.insert(key.to_string(), axis) {
            Some(other) if other != axis => {
                let origin = &loaded.origin;
                bail!("{origin}: sweep: `{key}` is set by two axes ({other} and {axis}); keep one of them")
            }
            _ => Ok(()),
        }
    };
    for (a, &i) in axes.iter().zip(idx) {
        let (col, prefix) = tags::column(&a.key);
        let tag = match &a.values[i] {
            AxisValue::Plain(v) => {
                mark(&a.key, &a.key)?;
                config::set_path(&mut tree, &a.key, v.clone())
                    .with_context(|| format!("{}: sweep.{}", loaded.origin, a.key))?;
                Tag::from_yaml(v)
            }
            AxisValue::Named(label, patch) => {
                for (k, v) in patch {
                    let k = k.as_str().with_context(|| format!("sweep.{}.{label}: a key is not text", a.key))?;
                    mark(k, &a.key)?;
                    config::set_path(&mut tree, k, v.clone())
                        .with_context(|| format!("{}: sweep.{}.{label}", loaded.origin, a.key))?;
                }
                Tag::Text(label.clone())
            }
        };
        parts.push((tags::rank(&col), format!("{prefix}{tag}")));
        if col != "seed" {
            tags.insert(col, tag);
        }
    }
    if !parts.iter().any(|p| p.0 >= 10) {
        // Every run's name ends with its seed, swept or not.
        let seed = tree.get("train").and_then(|t| t.get("seed")).and_then(Value::as_u64).unwrap_or(0);
        parts.push((tags::rank("seed"), format!("s{seed}")));
    }
    parts.sort_by_key(|p| p.0);
    let name = parts.into_iter().map(|p| p.1).collect::<Vec<_>>().join("-");
    Ok((name, tree, tags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::data::synthetic::SyntheticConfig;

    type C = Config<SyntheticConfig>;

    fn pts(text: &str, sets: &[&str]) -> Result<Vec<Point<C>>> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let loaded: Loaded<C> = config::from_str(text, "x.yaml", &sets)?;
        points(&loaded, &loaded.cfg.sweep, &sets)
    }

    #[test]
    fn a_grid_becomes_named_runs_with_their_own_configs() {
        let text = "train: {seed: 3}\nsweep:\n  data.length: [10, 20]\n  model.cell: [rnn, gru]\n  variant: {base: {}, bi: {model.bidirectional: true, train.lr: 0.01}}\n";
        let p = pts(text, &[]).unwrap();
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        // First axis outermost; names in the shared order (model, variant, L, seed last).
        assert_eq!(&names[..4], ["rnn-base-L10-s3", "rnn-bi-L10-s3", "gru-base-L10-s3", "gru-bi-L10-s3"]);
        assert_eq!(p.len(), 8);
        let bi = &p[1];
        assert!(bi.cfg.model.bidirectional && bi.cfg.train.lr == 0.01 && bi.cfg.data.length == 10);
        assert!(!p[0].cfg.model.bidirectional && p[0].cfg.train.lr == 1e-3);
        // Tags keep their types: the length is a number, the cell and the label words.
        assert_eq!(bi.tags["seq_len"], Tag::Int(10));
        assert_eq!(bi.tags["variant"], Tag::from("bi"));
        assert_eq!(bi.tags["model"], Tag::from("rnn"));
        // The saved config of a run has no sweep section.
        assert!(!config::to_yaml(&bi.cfg).unwrap().contains("sweep"));
        // A list of grids is their union; --set replaces an axis in every grid that has it.
        let text =
            "sweep:\n  - {model.cell: [rnn, gru], train.seed: [0]}\n  - {model.cell: [lstm], data.length: [5]}\n";
        let p = pts(text, &["sweep.model.cell=[gru]"]).unwrap();
        assert_eq!(p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["gru-s0", "gru-L5-s0"]);
        // Errors: the same run twice; a bad value names the run.
        let e = format!("{:#}", pts("sweep: [{model.cell: [gru]}, {model.cell: [gru]}]", &[]).unwrap_err());
        assert!(e.contains("makes run gru-s0 twice"), "{e}");
        let e = format!("{:#}", pts("sweep: {mode: {a: {data.length: 3}}, data.length: [4]}", &[]).unwrap_err());
        assert!(e.contains("`data.length` is set by two axes (mode and data.length)"), "{e}");
        let e = format!("{:#}", pts("sweep: {data.length: [10, 0]}", &[]).unwrap_err());
        assert!(e.contains("run L0-s0") && e.contains("data.length = 0"), "{e}");
    }
}
