//! Typed YAML configs, one shape for every experiment: `data`, `model`, `train`, `probe`, `output`, `sweep`, and
//! optionally the experiment's own section (see [`Config`]). `--set key=value` overrides; validation with messages
//! that name the file, the key, the bad value and what is allowed.
//!
//! - [`model`]: the `model` section (cell, kind, sizes, init, implementation);
//! - [`train`]: the `train`, `probe` and `output` sections;
//! - [`grid`]: the `sweep` section ([`Grid`]) and `--set` overrides;
//! - [`check`]: validation ([`Checker`], [`Validate`]);
//! - here: the whole [`Config`], loading with `extends`, `--set` and typing ([`load`]).
//!
//! `crate::sweep` turns the grid into one typed, validated config per run; the config as actually run is saved
//! with every run.
pub mod check;
pub mod grid;
pub mod model;
pub mod train;

pub use check::{Checker, Validate};
pub use grid::{apply_override, set_path, Axis, AxisValue, Grid};
pub use model::*;
pub use train::*;

use anyhow::{bail, Context, Result};
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml::Value;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

/// An experiment's own config section, under the key `KEY` (none: `()`).
pub trait Options: Serialize + DeserializeOwned + Default + Clone + fmt::Debug + Validate {
    /// The section's key in the YAML file (empty: the experiment has no section of its own).
    const KEY: &'static str;
}

impl Options for () {
    const KEY: &'static str = "";
}

/// Every experiment's config: its data section `D`, the shared sections, the runs to make (`sweep`), and its own
/// section `X` under the key `X::KEY`.
#[derive(Clone, Debug, Default)]
pub struct Config<D, X = ()> {
    pub data: D,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub probe: ProbeConfig,
    pub output: OutputConfig,
    pub own: X,
    pub sweep: Grid,
}

const SECTIONS: [&str; 6] = ["data", "model", "train", "probe", "output", "sweep"];

impl<D: Serialize, X: Options> Serialize for Config<D, X> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("data", &self.data)?;
        m.serialize_entry("model", &self.model)?;
        m.serialize_entry("train", &self.train)?;
        m.serialize_entry("probe", &self.probe)?;
        m.serialize_entry("output", &self.output)?;
        if !X::KEY.is_empty() {
            m.serialize_entry(X::KEY, &self.own)?;
        }
        if !self.sweep.is_empty() {
            m.serialize_entry("sweep", &self.sweep)?;
        }
        m.end()
    }
}

impl<'de, D: DeserializeOwned + Default, X: Options> Deserialize<'de> for Config<D, X> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> std::result::Result<Self, De::Error> {
        struct V<D, X>(PhantomData<(D, X)>);
        impl<'de, D: DeserializeOwned + Default, X: Options> Visitor<'de> for V<D, X> {
            type Value = Config<D, X>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of config sections")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
                let mut c = Config::<D, X>::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "data" => c.data = map.next_value()?,
                        "model" => c.model = map.next_value()?,
                        "train" => c.train = map.next_value()?,
                        "probe" => c.probe = map.next_value()?,
                        "output" => c.output = map.next_value()?,
                        "sweep" => c.sweep = map.next_value()?,
                        k if !X::KEY.is_empty() && k == X::KEY => c.own = map.next_value()?,
                        _ => {
                            let mut known: Vec<&str> = SECTIONS.to_vec();
                            if !X::KEY.is_empty() {
                                known.push(X::KEY);
                            }
                            let known = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
                            return Err(de::Error::custom(format!("unknown field `{key}`, expected one of {known}")));
                        }
                    }
                }
                Ok(c)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

impl<D: Validate, X: Options> Validate for Config<D, X> {
    fn validate(&self, c: &mut Checker) {
        self.data.validate(c);
        self.model.validate(c);
        self.train.validate(c);
        self.probe.validate(c);
        self.own.validate(c);
    }
}

/// A config as loaded: the typed value and the YAML tree it came from (after `--set`), from which
/// `crate::sweep` derives each run's config.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub cfg: T,
    pub tree: Value,
    /// The file (or text) it came from, for messages.
    pub origin: String,
    /// The registry entry the file says it belongs to (its top-level `experiment:` key; none: the binary's
    /// own). Not part of any run's config.
    pub experiment: Option<String>,
}

/// Reads `path`, applies `overrides` (`a.b=value`, value in YAML syntax), checks types and unknown keys, then
/// validates. Every error names the file and the key. A file may start from another: `extends: base.yaml` (a path
/// relative to the file) reads that one first and lays this file's keys over it; sections merge key by key,
/// except `sweep`, which a file replaces whole.
pub fn load<T: DeserializeOwned + Validate>(path: &Path, overrides: &[String]) -> Result<Loaded<T>> {
    let tree = read_tree(path, 0)?;
    let text = serde_yaml::to_string(&tree)?;
    from_str(&text, &path.display().to_string(), overrides)
}

/// The YAML tree of a config file with its `extends` chain resolved.
fn read_tree(path: &Path, depth: usize) -> Result<Value> {
    if depth > 8 {
        bail!("{}: `extends` goes more than 8 files deep (a loop?)", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut tree: Value =
        serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not valid YAML: {e}", path.display()))?;
    let Value::Mapping(m) = &mut tree else { return Ok(tree) };
    let Some(base) = m.remove("extends") else { return Ok(tree) };
    let Some(base) = base.as_str() else { bail!("{}: `extends` must be a file name", path.display()) };
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
    let mut merged = read_tree(&base_path, depth + 1).with_context(|| format!("{}: extends {base}", path.display()))?;
    merge(&mut merged, tree, true);
    Ok(merged)
}

/// Lays `over` on `base`: mappings merge key by key (the top level's `sweep` is replaced whole), anything else
/// is replaced.
fn merge(base: &mut Value, over: Value, top: bool) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let whole = top && k.as_str() == Some("sweep");
                match b.get_mut(&k) {
                    Some(slot) if !whole => merge(slot, v, false),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// As [`load`], from text; `origin` names the source in messages.
pub fn from_str<T: DeserializeOwned + Validate>(text: &str, origin: &str, overrides: &[String]) -> Result<Loaded<T>> {
    let mut tree: Value = serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: not valid YAML: {e}"))?;
    if tree.is_null() {
        tree = Value::Mapping(Default::default());
    }
    let experiment = match &mut tree {
        Value::Mapping(m) => match m.remove("experiment") {
            None => None,
            Some(Value::String(name)) => Some(name),
            Some(other) => bail!("{origin}: key `experiment`: expected the name of an experiment, got {other:?}"),
        },
        _ => None,
    };
    for o in overrides {
        apply_override(&mut tree, o).with_context(|| format!("{origin}: bad override --set {o}"))?;
    }
    let cfg = from_tree(tree.clone(), origin, overrides)?;
    Ok(Loaded { cfg, tree, origin: origin.to_string(), experiment })
}

/// Types and validates a YAML tree; errors name `origin` and the key (and whether `--set` gave it).
pub fn from_tree<T: DeserializeOwned + Validate>(tree: Value, origin: &str, overrides: &[String]) -> Result<T> {
    let parsed: T = serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        let from_set = overrides.iter().any(|o| o.split('=').next().is_some_and(|k| key.starts_with(k)));
        let src = if from_set { " (from --set)" } else { "" };
        if key == "." {
            anyhow::anyhow!("{origin}: {}", e.inner())
        } else {
            anyhow::anyhow!("{origin}: key `{key}`{src}: {}", e.inner())
        }
    })?;
    let mut c = Checker::default();
    parsed.validate(&mut c);
    if !c.errors().is_empty() {
        bail!("{origin}: invalid config:\n  {}", c.errors().join("\n  "));
    }
    Ok(parsed)
}

/// The config as YAML, for saving with the results.
pub fn to_yaml<T: Serialize>(cfg: &T) -> Result<String> {
    Ok(serde_yaml::to_string(cfg)?)
}

pub(crate) fn is_default<T: Default + PartialEq>(x: &T) -> bool {
    *x == T::default()
}

pub(crate) fn is_one_usize(x: &usize) -> bool {
    *x == 1
}

pub(crate) fn is_one(x: &f64) -> bool {
    *x == 1.0
}

pub(crate) fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Cfg {
        model: ModelConfig,
        train: TrainConfig,
    }
    impl Validate for Cfg {
        fn validate(&self, c: &mut Checker) {
            self.model.validate(c);
            self.train.validate(c);
        }
    }

    fn err(text: &str, sets: &[&str]) -> String {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        format!("{:#}", from_str::<Cfg>(text, "x.yaml", &sets).unwrap_err())
    }

    #[test]
    fn overrides_and_messages() {
        let c: Cfg =
            from_str("model: {hidden: 8}", "x.yaml", &["train.epochs=3".into(), "model.cell=gru".into()]).unwrap().cfg;
        assert_eq!((c.model.hidden, c.train.epochs, c.model.cell), (8, 3, CellKind::Gru));
        let e = err("train: {epocs: 3}", &[]);
        assert!(e.contains("x.yaml") && e.contains("unknown field `epocs`") && e.contains("epochs"), "{e}");
        let e = err("", &["train.epochs=many"]);
        assert!(e.contains("key `train.epochs` (from --set)") && e.contains("invalid type"), "{e}");
        let e = err("model: {cell: tanh}", &[]);
        assert!(e.contains("model.cell") && e.contains("`rnn`, `gru`, `lstm`"), "{e}");
        let e = err("model: {hidden: 0, layers: -1}", &[]);
        assert!(e.contains("model.hidden = 0: must be > 0") && e.contains("model.layers = -1: must be > 0"), "{e}");
        let e = err("", &["train"]);
        assert!(e.contains("KEY=VALUE"), "{e}");
    }

    #[test]
    fn a_config_extends_another() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.yaml"), "model: {hidden: 8, layers: 2}\ntrain: {epochs: 3}\n").unwrap();
        std::fs::write(dir.path().join("quick.yaml"), "extends: base.yaml\nmodel: {hidden: 4}\n").unwrap();
        let c: Cfg = load(&dir.path().join("quick.yaml"), &["train.lr=0.5".into()]).unwrap().cfg;
        assert_eq!((c.model.hidden, c.model.layers, c.train.epochs, c.train.lr), (4, 2, 3, 0.5));
        std::fs::write(dir.path().join("loop.yaml"), "extends: loop.yaml\n").unwrap();
        let e = format!("{:#}", load::<Cfg>(&dir.path().join("loop.yaml"), &[]).unwrap_err());
        assert!(e.contains("more than 8 files deep"), "{e}");
        std::fs::write(dir.path().join("bad.yaml"), "extends: nowhere.yaml\n").unwrap();
        let e = format!("{:#}", load::<Cfg>(&dir.path().join("bad.yaml"), &[]).unwrap_err());
        assert!(e.contains("bad.yaml: extends nowhere.yaml") && e.contains("cannot read config file"), "{e}");
    }

    #[test]
    fn one_config_shape_with_a_grid_and_an_own_section() {
        #[derive(Clone, Debug, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        struct Own {
            samples: usize,
        }
        impl Validate for Own {
            fn validate(&self, c: &mut Checker) {
                c.positive("sampling.samples", self.samples);
            }
        }
        impl Options for Own {
            const KEY: &'static str = "sampling";
        }
        #[derive(Clone, Debug, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        struct D {
            length: usize,
        }
        impl Validate for D {
            fn validate(&self, _: &mut Checker) {}
        }
        type C = Config<D, Own>;
        let text = "data: {length: 5}\nsampling: {samples: 3}\nsweep:\n  model.cell: [rnn, gru]\n  variant: {base: {}, bi: {model.bidirectional: true}}\n";
        let l = from_str::<C>(text, "x.yaml", &["sweep.train.seed=[0, 1]".into()]).unwrap();
        assert_eq!((l.cfg.data.length, l.cfg.own.samples), (5, 3));
        let axes = &l.cfg.sweep.blocks[0];
        assert_eq!(axes.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), ["model.cell", "variant", "train.seed"]);
        assert!(axes[1].named() && !axes[0].named());
        // Round trip through YAML.
        let again: C = serde_yaml::from_str(&to_yaml(&l.cfg).unwrap()).unwrap();
        assert_eq!(again.sweep, l.cfg.sweep);
        let e = format!("{:#}", from_str::<C>("sampling: {samples: 0}", "x.yaml", &[]).unwrap_err());
        assert!(e.contains("sampling.samples = 0: must be > 0"), "{e}");
        let e = format!("{:#}", from_str::<C>("samplin: {}", "x.yaml", &[]).unwrap_err());
        assert!(e.contains("unknown field `samplin`") && e.contains("`sampling`"), "{e}");
        let e = format!("{:#}", from_str::<C>("sweep: {model.cell: rnn}", "x.yaml", &[]).unwrap_err());
        assert!(e.contains("sweep.model.cell: expected a list of values"), "{e}");
        let e = format!("{:#}", from_str::<C>("sampling: {samples: 2, x: 1}", "x.yaml", &[]).unwrap_err());
        assert!(e.contains("key `sampling.x`") && e.contains("unknown field `x`"), "{e}");
    }
}
