//! Next-token language models: tokens (and, optionally, a per-sequence condition such as a language, fed at
//! every step) → [`Recurrent`] → a linear layer over the vocabulary.
//!
//! Stateless on padded batches of separate sequences (names), or stateful for truncated backpropagation through
//! time (a character stream cut into windows: the final state of one batch, detached, starts the next).
use super::classifier::{embed_with, input_layer};
use super::{token_stats, Objective, Recurrent, State, Stats};
use crate::config::ModelConfig;
use crate::data::Batch;
use crate::rng::Rng;
use std::cell::RefCell;
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug)]
pub struct LanguageModel {
    pub cfg: ModelConfig,
    pub vocab: i64,
    /// Number of condition values (0: unconditioned).
    pub n_cond: i64,
    embedding: Option<nn::Embedding>,
    pub rnn: Recurrent,
    head: nn::Linear,
    /// Carry the state from batch to batch (truncated BPTT).
    pub stateful: bool,
    state: RefCell<Option<State>>,
}

impl LanguageModel {
    /// `vocab` counts the padding id 0.
    pub fn new(p: &nn::Path, cfg: &ModelConfig, vocab: i64, n_cond: i64, stateful: bool) -> Self {
        let (embedding, width) = input_layer(p, cfg, vocab);
        let cfg = ModelConfig { bidirectional: false, ..cfg.clone() };
        let rnn = Recurrent::new(&(p / "rnn"), width + n_cond, &cfg);
        // Padding (id 0) is never predicted: the output layer covers ids 1..vocab-1.
        let head = nn::linear(p / "head", cfg.hidden, vocab - 1, Default::default());
        LanguageModel { cfg, vocab, n_cond, embedding, rnn, head, stateful, state: RefCell::new(None) }
    }

    /// `[B, T, width + n_cond]`: the token's embedding or one-hot vector, then the condition's one-hot vector.
    pub fn inputs(&self, tokens: &Tensor, cond: Option<&Tensor>) -> Tensor {
        let x = embed_with(&self.embedding, self.vocab, tokens);
        match cond {
            Some(c) if self.n_cond > 0 => {
                let t = tokens.size()[1];
                let c = c.one_hot(self.n_cond).to_kind(Kind::Float).unsqueeze(1).expand([-1, t, -1], false);
                Tensor::cat(&[x, c], 2)
            }
            _ => x,
        }
    }

    /// Logits `[B, T, vocab - 1]` (class k = token id k + 1) from state `state` (zeros when None), and the final state.
    pub fn run(&self, tokens: &Tensor, cond: Option<&Tensor>, state: Option<&State>, train: bool) -> (Tensor, State) {
        let x = self.inputs(tokens, cond).dropout(self.cfg.dropout, train);
        let (out, s) = self.rnn.forward_state(&x, state, train);
        (self.head.forward(&out.dropout(self.cfg.dropout, train)), s)
    }

    /// Logits of a batch; a stateful model starts from (and keeps) the carried state.
    pub fn logits(&self, batch: &Batch, train: bool) -> Tensor {
        if !self.stateful {
            return self.run(&batch.tokens, batch.cond.as_ref(), None, train).0;
        }
        let prev = self.state.borrow_mut().take();
        let (logits, s) = self.run(&batch.tokens, batch.cond.as_ref(), prev.as_ref(), train);
        *self.state.borrow_mut() = Some(State { h: s.h.detach(), c: s.c.map(|c| c.detach()) });
        logits
    }
}

impl LanguageModel {
    /// The state carried from batch to batch, taken out (put it back with [`put_state`](Self::put_state)).
    pub fn take_state(&self) -> Option<State> {
        self.state.borrow_mut().take()
    }

    pub fn put_state(&self, s: Option<State>) {
        *self.state.borrow_mut() = s;
    }
}

impl Objective for LanguageModel {
    /// Mean cross-entropy (natural log) over the real targets (id 0 = none); next-token accuracy.
    fn stats(&self, batch: &Batch, train: bool) -> Stats {
        let logits = self.logits(batch, train).reshape([-1, self.vocab - 1]);
        token_stats(&logits, &(batch.targets.reshape([-1]) - 1), -1)
    }

    fn reset(&self) {
        *self.state.borrow_mut() = None;
    }
}

/// How the next token is picked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pick {
    Greedy,
    /// Sample from softmax(logits / temperature), optionally among the `top_k` most likely.
    Sample {
        temperature: f64,
        top_k: Option<i64>,
    },
}

/// The next token id from the `[vocab - 1]` logits of one step. Sampling draws from `rng` (not libtorch's
/// global generator), so a seed gives the same samples whatever else runs in the process.
pub fn pick(logits: &Tensor, how: Pick, rng: &mut Rng) -> i64 {
    1 + match how {
        Pick::Greedy => logits.argmax(-1, false).int64_value(&[]),
        Pick::Sample { temperature, top_k } => {
            let l = Vec::<f64>::try_from(logits.to_kind(Kind::Double).to_device(tch::Device::Cpu)).expect("logits");
            let mut order: Vec<usize> = (0..l.len()).collect();
            order.sort_by(|a, b| l[*b].total_cmp(&l[*a]));
            let keep = top_k.filter(|&k| k > 0).map_or(l.len(), |k| (k as usize).min(l.len()));
            let t = temperature.max(1e-12);
            let top = l[order[0]];
            let w: Vec<f64> = order[..keep].iter().map(|&i| ((l[i] - top) / t).exp()).collect();
            let mut u = rng.uniform() * w.iter().sum::<f64>();
            let mut chosen = order[0];
            for (&i, &wi) in order[..keep].iter().zip(&w) {
                chosen = i;
                if u < wi {
                    break;
                }
                u -= wi;
            }
            chosen as i64
        }
    }
}
