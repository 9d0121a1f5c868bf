//! The `model` section: which cell, which model around it, sizes, initialisation, and the implementation that
//! runs the recurrence.
use super::check::{Checker, Validate};
use super::{is_default, is_one_usize};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

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

/// Where an encoder–decoder's decoder attends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// Before its recurrence (Bahdanau et al. 2015): the context from the previous state enters the cell, so
    /// training runs step by step.
    #[default]
    Bahdanau,
    /// After its recurrence (Luong et al. 2015, without input feeding): the cell reads only the previous token
    /// (and, without attention, the context vector), so teacher-forced training runs all target steps in one
    /// fused call and attends in one batched product.
    Luong,
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
    /// What trains fastest where it runs (`make bench`, docs/performance.md): rnnlab's fused kernels for the three
    /// cells on the CPU (the LSTM's 1.03–1.2× libtorch's oneDNN LSTM in training on an AVX-512 Xeon, 1.15–1.4× on
    /// AVX2); libtorch on a GPU.
    #[default]
    Auto,
    /// rnnlab's fused kernels on the CPU (`model::fused`: per step one GEMM and one pass over the gates, a
    /// hand-written backward through time), for the three cells; libtorch's kernels on a GPU.
    Fused,
    /// libtorch's kernels (`rnn_tanh`, `gru`, `lstm`) for every cell.
    Libtorch,
    /// The textbook step loop, one step at a time (for diagnostics: gradients w.r.t. every h_t).
    Unrolled,
}

impl Impl {
    /// The implementation `Auto` stands for (the others stand for themselves).
    pub fn resolve(self) -> Impl {
        match self {
            Impl::Auto => Impl::Fused,
            other => other,
        }
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
    /// Encoder–decoders: where the decoder attends (before or after its recurrence).
    #[serde(skip_serializing_if = "is_default")]
    pub decoder: DecoderKind,
    /// Encoder–decoders: beam width when decoding (1: greedy).
    #[serde(skip_serializing_if = "is_one_usize")]
    pub beam: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kind: ModelKind::Classifier,
            cell: CellKind::Lstm,
            imp: Impl::Auto,
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
            decoder: DecoderKind::Bahdanau,
            beam: 1,
        }
    }
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
