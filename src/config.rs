//! Typed YAML configs: shared sections (model, train, probe, output), `--set key=value` overrides, validation
//! with messages that name the file, the key, the bad value and what is allowed.
//!
//! Each experiment defines its top-level struct from these sections plus its own (`data`, `sweep`...), all with
//! `deny_unknown_fields`, and loads it with [`load`]. The config as actually run is saved with every run.
use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    Rnn,
    Gru,
    Lstm,
}

impl CellKind {
    pub const ALL: [CellKind; 3] = [CellKind::Rnn, CellKind::Gru, CellKind::Lstm];
    /// Lower-case name used in CSVs and run folders.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn => "rnn",
            CellKind::Gru => "gru",
            CellKind::Lstm => "lstm",
        }
    }
    /// Name for chart legends.
    pub fn label(self) -> &'static str {
        match self {
            CellKind::Rnn => "RNN",
            CellKind::Gru => "GRU",
            CellKind::Lstm => "LSTM",
        }
    }
    /// Gate blocks stacked in the weight matrices (PyTorch layout).
    pub fn gates(self) -> i64 {
        match self {
            CellKind::Rnn => 1,
            CellKind::Gru => 3,
            CellKind::Lstm => 4,
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "rnn" => Ok(CellKind::Rnn),
            "gru" => Ok(CellKind::Gru),
            "lstm" => Ok(CellKind::Lstm),
            _ => bail!("unknown cell kind `{s}`: expected one of rnn, gru, lstm"),
        }
    }
}

impl fmt::Display for CellKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How tokens enter the recurrent layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// A learned embedding of `embed_dim` (index 0 is padding and maps to zeros).
    Embedding,
    /// One-hot vectors of the vocabulary size (padding is the zero vector).
    Onehot,
}

/// Which output step the classifier reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Readout {
    /// Each sequence's last real step (padding never decides the output).
    LastReal,
    /// The last step of the padded batch, whatever it holds (to show what padding does).
    LastPadded,
    /// The last real step concatenated with the maximum and the mean of the outputs over the real steps.
    Pool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    Sgd,
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

/// Initialisation. Default: PyTorch's U(±1/√hidden) for every weight and bias of all three cells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitConfig {
    /// LSTM only: initial forget-gate bias (b_ih's forget block; b_hh's is zeroed). null keeps the uniform init.
    pub forget_bias: Option<f64>,
    /// LSTM only: "chrono" init for memory over up to `chrono` steps (Tallec & Ollivier, ICLR 2018): each unit's
    /// forget bias drawn as ln U(1, chrono - 1) and its input bias the negative of it (b_hh's blocks zeroed), so
    /// the cell starts with a spread of timescales and writes little. Replaces `forget_bias` (set that to null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chrono: Option<f64>,
    /// Multiplies the recurrent weights W_hh after init (> 1 makes gradients explode).
    pub recurrent_gain: f64,
}

impl Default for InitConfig {
    fn default() -> Self {
        InitConfig { forget_bias: None, chrono: None, recurrent_gain: 1.0 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub cell: CellKind,
    pub input: InputKind,
    /// Embedding width (input: embedding).
    pub embed_dim: i64,
    pub hidden: i64,
    pub layers: i64,
    pub bidirectional: bool,
    /// Dropout on the recurrent layer's inputs, between recurrent layers, and before the head.
    pub dropout: f64,
    pub init: InitConfig,
    pub readout: Readout,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            cell: CellKind::Lstm,
            input: InputKind::Embedding,
            embed_dim: 32,
            hidden: 64,
            layers: 1,
            bidirectional: false,
            dropout: 0.0,
            init: InitConfig::default(),
            readout: Readout::LastReal,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Fixes data split, init, dropout and batch order.
    pub seed: u64,
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
    /// Group sequences of similar length into batches (less padding, same data).
    pub bucket: bool,
    /// Shuffle the training batches every epoch (false: keep their order, as truncated backpropagation
    /// through time needs).
    pub shuffle: bool,
    /// Steps between progress updates and divergence checks (one host sync each).
    pub log_every: usize,
    /// Evaluate the test split after every epoch (else only once, at the best epoch).
    pub test_each_epoch: bool,
    /// Save the best weights as `model.safetensors` in the run folder.
    pub checkpoint: bool,
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
            bucket: true,
            shuffle: true,
            log_every: 20,
            test_each_epoch: true,
            checkpoint: false,
        }
    }
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl TrainConfig {
    pub fn lr_for(&self, cell: CellKind) -> f64 {
        self.lr_by_cell.get(&cell).copied().unwrap_or(self.lr)
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

/// Collects validation errors as `key = value: what is allowed`.
#[derive(Default)]
pub struct Checker {
    errors: Vec<String>,
}

impl Checker {
    pub fn check(&mut self, ok: bool, key: &str, value: impl fmt::Debug, allowed: &str) {
        if !ok {
            self.errors.push(format!("{key} = {value:?}: {allowed}"));
        }
    }
    pub fn positive<T: PartialOrd + Default + fmt::Debug>(&mut self, key: &str, v: T) {
        let ok = v > T::default();
        self.check(ok, key, v, "must be > 0");
    }
    pub fn fraction(&mut self, key: &str, v: f64) {
        self.check((0.0..1.0).contains(&v), key, v, "must be in [0, 1)");
    }
    pub fn nonempty<T: fmt::Debug>(&mut self, key: &str, v: &[T]) {
        self.check(!v.is_empty(), key, v, "must list at least one value");
    }
    /// Validates a nested section whose keys then read `<prefix>.<key>` (e.g. `synthetic.model.hidden`).
    pub fn nested(&mut self, prefix: &str, v: &dyn Validate) {
        let mut sub = Checker::default();
        v.validate(&mut sub);
        self.errors.extend(sub.errors.into_iter().map(|e| format!("{prefix}.{e}")));
    }
}

/// Implemented by every config struct: adds one error per bad value.
pub trait Validate {
    fn validate(&self, c: &mut Checker);
}

impl Validate for ModelConfig {
    fn validate(&self, c: &mut Checker) {
        if self.input == InputKind::Embedding {
            c.positive("model.embed_dim", self.embed_dim);
        }
        c.positive("model.hidden", self.hidden);
        c.positive("model.layers", self.layers);
        c.fraction("model.dropout", self.dropout);
        let g = self.init.recurrent_gain;
        c.check(g.is_finite() && g > 0.0, "model.init.recurrent_gain", g, "must be a finite number > 0");
        if let Some(b) = self.init.forget_bias {
            c.check(b.is_finite(), "model.init.forget_bias", b, "must be finite or null");
        }
        if let Some(t) = self.init.chrono {
            c.check(t.is_finite() && t > 2.0, "model.init.chrono", t, "must be a number of steps > 2, or null");
            if let Some(b) = self.init.forget_bias {
                c.check(false, "model.init.forget_bias", b, "must be null when model.init.chrono is set");
            }
        }
    }
}

impl Validate for TrainConfig {
    fn validate(&self, c: &mut Checker) {
        c.positive("train.epochs", self.epochs);
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
        if let Some(clip) = self.clip {
            c.check(clip > 0.0, "train.clip", clip, "must be > 0, or null for no clipping");
        }
        if let Some(p) = self.patience {
            c.positive("train.patience", p);
        }
        c.positive("train.log_every", self.log_every);
    }
}

impl Validate for ProbeConfig {
    fn validate(&self, c: &mut Checker) {
        if self.enabled {
            c.positive("probe.batch_size", self.batch_size);
        }
    }
}

/// The sections of most experiments' configs: their data, the model, training, the probe, output, and their own
/// `sweep` section (which values of what to run), checked against the data section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Experiment<D, S> {
    pub data: D,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub probe: ProbeConfig,
    pub output: OutputConfig,
    pub sweep: S,
}

/// Configs that say where results go (`output.dir`).
pub trait Outputs {
    fn output(&self) -> &OutputConfig;
}

impl<D, S> Outputs for Experiment<D, S> {
    fn output(&self) -> &OutputConfig {
        &self.output
    }
}

/// An experiment's own section, validated with its data section in view.
pub trait SweepSection<D> {
    fn validate(&self, data: &D, c: &mut Checker);
}

impl<D: Validate, S: SweepSection<D>> Validate for Experiment<D, S> {
    fn validate(&self, c: &mut Checker) {
        self.data.validate(c);
        self.model.validate(c);
        self.train.validate(c);
        self.probe.validate(c);
        self.sweep.validate(&self.data, c);
    }
}

/// Reads `path`, applies `overrides` (`a.b=value`, value in YAML syntax), checks types and unknown keys, then
/// validates. Every error names the file and the key.
pub fn load<T: DeserializeOwned + Validate>(path: &Path, overrides: &[String]) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    from_str(&text, &path.display().to_string(), overrides)
}

/// As [`load`], from text; `origin` names the source in messages.
pub fn from_str<T: DeserializeOwned + Validate>(text: &str, origin: &str, overrides: &[String]) -> Result<T> {
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: not valid YAML: {e}"))?;
    if value.is_null() {
        value = Value::Mapping(Default::default());
    }
    for o in overrides {
        apply_override(&mut value, o).with_context(|| format!("{origin}: bad override --set {o}"))?;
    }
    let de = value;
    let parsed: T = serde_path_to_error::deserialize(de).map_err(|e| {
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
    if !c.errors.is_empty() {
        bail!("{origin}: invalid config:\n  {}", c.errors.join("\n  "));
    }
    Ok(parsed)
}

/// Sets `a.b.c=value` in a YAML tree, creating mappings on the way.
pub fn apply_override(root: &mut Value, spec: &str) -> Result<()> {
    let Some((key, raw)) = spec.split_once('=') else {
        bail!("expected KEY=VALUE, e.g. train.epochs=3");
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        bail!("empty key in `{spec}`: expected dotted keys like train.epochs");
    }
    let value: Value = serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    let mut node = root;
    for part in key.split('.') {
        let map = match node {
            Value::Mapping(m) => m,
            other => bail!("`{key}`: `{part}` is inside a {}, not a section", kind_name(other)),
        };
        node = map.entry(Value::String(part.to_string())).or_insert(Value::Mapping(Default::default()));
    }
    *node = value;
    Ok(())
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "list",
        Value::Mapping(_) => "mapping",
        Value::Tagged(_) => "tagged value",
    }
}

/// The config as YAML, for saving with the results.
pub fn to_yaml<T: Serialize>(cfg: &T) -> Result<String> {
    Ok(serde_yaml::to_string(cfg)?)
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
            from_str("model: {hidden: 8}", "x.yaml", &["train.epochs=3".into(), "model.cell=gru".into()]).unwrap();
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
}
