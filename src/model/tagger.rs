//! Sequence tagger: one label per token. Word embedding (and, with `model.chars`, a character-level encoder of each
//! word) → [`Recurrent`] (bidirectional: a tag depends on the words after it too) → a linear head at every step.
use super::{token_stats, Objective, Recurrent, Stats};
use crate::config::{CharCnnConfig, ModelConfig};
use crate::data::Batch;
use tch::{nn, nn::Module, Kind, Tensor};

/// Letters → embedding → 1-d convolution → maximum over the word: `[B, T, C]` ids → `[B, T, filters]`.
#[derive(Debug)]
pub struct CharCnn {
    embed: nn::Embedding,
    conv: nn::Conv1D,
}

impl CharCnn {
    pub fn new(p: &nn::Path, cfg: &CharCnnConfig, chars: i64) -> Self {
        let ec = nn::EmbeddingConfig { padding_idx: 0, ..Default::default() };
        let cc = nn::ConvConfig { padding: cfg.width / 2, ..Default::default() };
        CharCnn {
            embed: nn::embedding(p / "embed", chars, cfg.embed_dim, ec),
            conv: nn::conv1d(p / "conv", cfg.embed_dim, cfg.filters, cfg.width, cc),
        }
    }

    pub fn forward(&self, chars: &Tensor) -> Tensor {
        let (b, t, c) = (chars.size()[0], chars.size()[1], chars.size()[2]);
        let x = self.embed.forward(&chars.view([b * t, c])).transpose(1, 2);
        let h = self.conv.forward(&x).tanh();
        // Padding letters do not count towards the maximum.
        let real = chars.view([b * t, 1, c]).gt(0);
        let h = h.masked_fill(&real.logical_not(), -1.0);
        h.amax([2].as_slice(), false).view([b, t, -1])
    }
}

#[derive(Debug)]
pub struct Tagger {
    pub cfg: ModelConfig,
    pub tags: i64,
    embedding: nn::Embedding,
    chars: Option<CharCnn>,
    pub rnn: Recurrent,
    head: nn::Linear,
}

impl Tagger {
    /// `vocab` words (padding included), `chars` letters (for the character encoder), `tags` labels.
    pub fn new(p: &nn::Path, cfg: &ModelConfig, vocab: i64, chars: i64, tags: i64) -> Self {
        let ec = nn::EmbeddingConfig { padding_idx: 0, ..Default::default() };
        let embedding = nn::embedding(p / "embed", vocab, cfg.embed_dim, ec);
        let chars = cfg.chars.as_ref().map(|c| CharCnn::new(&(p / "chars"), c, chars.max(2)));
        let width = cfg.embed_dim + cfg.chars.as_ref().map_or(0, |c| c.filters);
        let rnn = Recurrent::new(&(p / "rnn"), width, cfg);
        let head = nn::linear(p / "head", cfg.hidden * rnn.dirs(), tags, Default::default());
        Tagger { cfg: cfg.clone(), tags, embedding, chars, rnn, head }
    }

    /// Logits `[B, T, tags]` (label k is tag id k + 1).
    pub fn forward(&self, batch: &Batch, train: bool) -> Tensor {
        let mut x = self.embedding.forward(&batch.tokens);
        if let (Some(enc), Some(chars)) = (&self.chars, &batch.chars) {
            x = Tensor::cat(&[x, enc.forward(chars)], 2);
        }
        let x = x.dropout(self.cfg.dropout, train);
        let out = self.rnn.forward(&x, Some(&batch.spans), train, self.cfg.imp);
        self.head.forward(&out.dropout(self.cfg.dropout, train))
    }

    /// The predicted tag id (1-based) of every token `[B, T]` (0 at padding).
    pub fn predict(&self, batch: &Batch) -> Tensor {
        tch::no_grad(|| {
            let pred = self.forward(batch, false).argmax(-1, false) + 1;
            pred * batch.spans.mask(batch.tokens.size()[1]).to_kind(Kind::Int64)
        })
    }
}

impl Objective for Tagger {
    /// Mean cross-entropy over the real tokens; correct tags.
    fn stats(&self, batch: &Batch, train: bool) -> Stats {
        let logits = self.forward(batch, train).reshape([-1, self.tags]);
        token_stats(&logits, &(batch.targets.reshape([-1]) - 1), -1)
    }
}
