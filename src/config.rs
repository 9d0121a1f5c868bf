//! Typed YAML configs, one shape for every experiment: `data`, `model`, `train`, `probe`, `output`, `sweep`, and
//! optionally the experiment's own section (see [`Config`]). `--set key=value` overrides; validation with messages
//! that name the file, the key, the bad value and what is allowed.
//!
//! The `sweep` section ([`Grid`]) lists the runs to make; `crate::sweep` turns it into one typed, validated config
//! per run. The config as actually run is saved with every run.
use anyhow::{bail, Context, Result};
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
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

impl std::str::FromStr for CellKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        CellKind::parse(s)
    }
}

impl fmt::Display for CellKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the model is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Recurrent layers and a linear head read at one step: one label per sequence.
    #[default]
    Classifier,
    /// Bag-of-words logistic regression (no recurrence): the order-free reference.
    Bow,
    /// Recurrent next-token model (conditioned on the data's condition ids when it has them).
    Lm,
    /// Recurrent layers and a linear head at every step: one label per token (part-of-speech tagging).
    Tagger,
    /// Encoder–decoder: the encoder reads the source, the decoder writes the target token by token.
    Seq2seq,
}

/// How a decoder sees the source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attention {
    /// Only the context vector (the encoder's final state), fed at every step (Cho et al. 2014).
    #[default]
    None,
    /// Bahdanau et al. (2015): score = vᵀ tanh(W_e e_s + W_d h).
    Additive,
    /// Luong et al. (2015), "general": score = e_sᵀ W h.
    Dot,
}

/// A character-level word encoder: an embedding of each letter, a 1-d convolution over the word, the maximum
/// over its letters (Ma & Hovy 2016). Its output joins the word embedding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CharCnnConfig {
    pub embed_dim: i64,
    pub filters: i64,
    /// Letters each filter sees.
    pub width: i64,
}

impl Default for CharCnnConfig {
    fn default() -> Self {
        CharCnnConfig { embed_dim: 16, filters: 64, width: 3 }
    }
}

/// Which implementation runs the recurrence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Impl {
    /// rnnlab's fused GRU and vanilla RNN on the CPU (`model::fused`: per step one GEMM and one pass over the
    /// gates, a hand-written backward through time); libtorch's kernels for the LSTM (oneDNN) and on a GPU.
    #[default]
    Fused,
    /// libtorch's kernels (`rnn_tanh`, `gru`, `lstm`) for every cell.
    Libtorch,
    /// The textbook step loop, one step at a time (for diagnostics: gradients w.r.t. every h_t).
    Unrolled,
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

/// Initialisation. Default: PyTorch's U(±1/√hidden) for every weight and bias of all three cells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitConfig {
    /// LSTM only: initial forget-gate bias (b_ih's forget block; b_hh's is zeroed). null keeps the uniform init.
    pub forget_bias: Option<f64>,
    /// Gated cells: "chrono" init for memory over up to `chrono` steps (Tallec & Ollivier, ICLR 2018), so the cell
    /// starts with a spread of timescales and writes little. LSTM: each unit's forget bias drawn as
    /// ln U(1, chrono − 1) and its input bias the negative of it. GRU: each unit's update-gate bias drawn as
    /// ln U(1, chrono − 1), so a unit keeps 1 − 1/(1 + u) of its state per step. b_hh's blocks are zeroed. The
    /// vanilla RNN has no gate to set. Replaces `forget_bias` (set that to null).
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
    pub kind: ModelKind,
    pub cell: CellKind,
    /// Implementation of the recurrence.
    #[serde(rename = "impl")]
    pub imp: Impl,
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
    /// Taggers: a character-level encoder of each word beside its embedding (null: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chars: Option<CharCnnConfig>,
    /// Encoder–decoders: how the decoder sees the source (the encoder is bidirectional with `bidirectional`).
    #[serde(skip_serializing_if = "is_default")]
    pub attention: Attention,
    /// Encoder–decoders: beam width when decoding (1: greedy).
    #[serde(skip_serializing_if = "is_one_usize")]
    pub beam: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kind: ModelKind::Classifier,
            cell: CellKind::Lstm,
            imp: Impl::Fused,
            input: InputKind::Embedding,
            embed_dim: 32,
            hidden: 64,
            layers: 1,
            bidirectional: false,
            dropout: 0.0,
            init: InitConfig::default(),
            readout: Readout::LastReal,
            chars: None,
            attention: Attention::None,
            beam: 1,
        }
    }
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
        }
    }
}

fn is_default<T: Default + PartialEq>(x: &T) -> bool {
    *x == T::default()
}

fn is_one_usize(x: &usize) -> bool {
    *x == 1
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
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
    /// Results root; runs go to `<dir>/<name>/<run>/`.
    pub dir: PathBuf,
    /// The experiment's folder under `dir` (empty: the experiment's own name).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { dir: PathBuf::from("results"), name: String::new() }
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
    /// Validates a section that sits at `prefix` in this config although it reports its keys under `section`
    /// (e.g. a data section checked as `data.length`, nested at `data.synthetic`).
    pub fn nested(&mut self, section: &str, prefix: &str, v: &dyn Validate) {
        let mut sub = Checker::default();
        v.validate(&mut sub);
        self.errors.extend(sub.errors.into_iter().map(|e| match e.strip_prefix(section) {
            Some(rest) => format!("{prefix}{rest}"),
            None => format!("{prefix}.{e}"),
        }));
    }

    /// The errors so far, one per line.
    pub fn errors(&self) -> &[String] {
        &self.errors
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
        c.positive("model.beam", self.beam);
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
    }
}

impl Validate for ProbeConfig {
    fn validate(&self, c: &mut Checker) {
        if self.enabled {
            c.positive("probe.batch_size", self.batch_size);
        }
    }
}

/// An experiment's own config section, under the key `KEY` (none: `()`).
pub trait Options: Serialize + DeserializeOwned + Default + Clone + fmt::Debug + Validate {
    /// The section's key in the YAML file (empty: the experiment has no section of its own).
    const KEY: &'static str;
}

impl Validate for () {
    fn validate(&self, _: &mut Checker) {}
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

/// One swept key and its values. A config key (`model.cell`) takes plain values that replace it; a name that is
/// not a config key (`variant`) maps labels to patches (`bi: {model.bidirectional: true}`), each a mapping of
/// config keys (dotted, or nested) to values.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<AxisValue>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AxisValue {
    /// The key's value.
    Plain(Value),
    /// A label and the config keys it sets.
    Named(String, Mapping),
}

impl Axis {
    /// Whether the values are labelled patches.
    pub fn named(&self) -> bool {
        matches!(self.values.first(), Some(AxisValue::Named(..)))
    }
}

/// The `sweep` section: the runs to make. A mapping of axes is a grid (one run per combination, the first axis
/// outermost); a list of such mappings is the union of their grids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grid {
    pub blocks: Vec<Vec<Axis>>,
}

impl Grid {
    pub fn is_empty(&self) -> bool {
        self.blocks.iter().all(Vec::is_empty)
    }

    /// Whether some block sweeps `key`.
    pub fn sweeps(&self, key: &str) -> bool {
        self.blocks.iter().flatten().any(|a| a.key == key)
    }

    /// Parses the YAML form; errors name the axis.
    pub fn from_value(v: &Value) -> Result<Grid> {
        let block = |m: &Mapping| -> Result<Vec<Axis>> {
            m.iter()
                .map(|(k, v)| {
                    let key = k.as_str().with_context(|| format!("sweep: key {k:?} is not a string"))?.to_string();
                    let values = match v {
                        Value::Sequence(s) => s.iter().cloned().map(AxisValue::Plain).collect::<Vec<_>>(),
                        Value::Mapping(named) => named
                            .iter()
                            .map(|(label, patch)| {
                                let label = match label {
                                    Value::String(s) => s.clone(),
                                    Value::Number(n) => n.to_string(),
                                    Value::Bool(b) => b.to_string(),
                                    other => bail!("sweep.{key}: label {other:?} is not a string"),
                                };
                                let patch = match patch {
                                    Value::Mapping(p) => p.clone(),
                                    Value::Null => Mapping::new(),
                                    other => bail!(
                                        "sweep.{key}.{label}: expected a mapping of config keys to values, got {}",
                                        kind_name(other)
                                    ),
                                };
                                Ok(AxisValue::Named(label, patch))
                            })
                            .collect::<Result<_>>()?,
                        other => bail!(
                            "sweep.{key}: expected a list of values (`[a, b]`) or a mapping of labels to config keys, \
                             got a {}",
                            kind_name(other)
                        ),
                    };
                    if values.is_empty() {
                        bail!("sweep.{key}: must list at least one value");
                    }
                    Ok(Axis { key, values })
                })
                .collect()
        };
        let blocks = match v {
            Value::Null => vec![],
            Value::Mapping(m) => vec![block(m)?],
            Value::Sequence(s) => s
                .iter()
                .enumerate()
                .map(|(i, b)| match b {
                    Value::Mapping(m) => block(m),
                    other => bail!("sweep[{i}]: expected a mapping of axes, got a {}", kind_name(other)),
                })
                .collect::<Result<_>>()?,
            other => bail!("sweep: expected a mapping of axes (or a list of them), got a {}", kind_name(other)),
        };
        Ok(Grid { blocks })
    }

    fn to_value(&self) -> Value {
        let block = |axes: &Vec<Axis>| -> Value {
            let mut m = Mapping::new();
            for a in axes {
                let v = if a.named() {
                    let mut named = Mapping::new();
                    for v in &a.values {
                        if let AxisValue::Named(l, p) = v {
                            named.insert(Value::String(l.clone()), Value::Mapping(p.clone()));
                        }
                    }
                    Value::Mapping(named)
                } else {
                    Value::Sequence(
                        a.values
                            .iter()
                            .filter_map(|v| match v {
                                AxisValue::Plain(x) => Some(x.clone()),
                                AxisValue::Named(..) => None,
                            })
                            .collect(),
                    )
                };
                m.insert(Value::String(a.key.clone()), v);
            }
            Value::Mapping(m)
        };
        match &self.blocks[..] {
            [] => Value::Mapping(Mapping::new()),
            [one] => block(one),
            many => Value::Sequence(many.iter().map(block).collect()),
        }
    }
}

impl Serialize for Grid {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Grid {
    fn deserialize<De: Deserializer<'de>>(d: De) -> std::result::Result<Self, De::Error> {
        let v = Value::deserialize(d)?;
        Grid::from_value(&v).map_err(|e| de::Error::custom(format!("{e:#}")))
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
    for o in overrides {
        apply_override(&mut tree, o).with_context(|| format!("{origin}: bad override --set {o}"))?;
    }
    let cfg = from_tree(tree.clone(), origin, overrides)?;
    Ok(Loaded { cfg, tree, origin: origin.to_string() })
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
    if !c.errors.is_empty() {
        bail!("{origin}: invalid config:\n  {}", c.errors.join("\n  "));
    }
    Ok(parsed)
}

/// Sets `a.b.c=value` in a YAML tree, creating mappings on the way. Under `sweep`, the rest of the key is one
/// axis (`sweep.model.cell=[gru]` replaces the axis `model.cell`, in every grid of a list that has it).
pub fn apply_override(root: &mut Value, spec: &str) -> Result<()> {
    let Some((key, raw)) = spec.split_once('=') else {
        bail!("expected KEY=VALUE, e.g. train.epochs=3");
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        bail!("empty key in `{spec}`: expected dotted keys like train.epochs");
    }
    let value: Value = serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    if let Some(axis) = key.strip_prefix("sweep.") {
        let Value::Mapping(top) = root else { bail!("the config is not a mapping") };
        let axis_key = Value::String(axis.to_string());
        match top.entry(Value::String("sweep".into())).or_insert(Value::Mapping(Mapping::new())) {
            Value::Mapping(m) => {
                m.insert(axis_key, value);
            }
            Value::Sequence(blocks) => {
                let mut hit = false;
                for b in blocks.iter_mut() {
                    if let Value::Mapping(m) = b {
                        if let Some(slot) = m.get_mut(&axis_key) {
                            *slot = value.clone();
                            hit = true;
                        }
                    }
                }
                if !hit {
                    bail!("`{key}`: no grid of the sweep list has the axis `{axis}`");
                }
            }
            Value::Null => {
                let mut m = Mapping::new();
                m.insert(axis_key, value);
                top.insert(Value::String("sweep".into()), Value::Mapping(m));
            }
            other => bail!("`sweep` is a {}, not a mapping of axes", kind_name(other)),
        }
        return Ok(());
    }
    set_path(root, key, value)
}

/// Sets the dotted `key` to `value` in `root`, creating mappings on the way.
pub fn set_path(root: &mut Value, key: &str, value: Value) -> Result<()> {
    let mut node = root;
    for part in key.split('.') {
        let map = match node {
            Value::Mapping(m) => m,
            Value::Null => {
                *node = Value::Mapping(Mapping::new());
                let Value::Mapping(m) = node else { unreachable!() };
                m
            }
            other => bail!("`{key}`: `{part}` is inside a {}, not a section", kind_name(other)),
        };
        node = map.entry(Value::String(part.to_string())).or_insert(Value::Null);
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
