//! Encoder–decoder on the same [`Recurrent`] stacks, with or without attention.
//!
//! The encoder (optionally bidirectional) reads the source; its final state (forward direction at the last real
//! step, backward direction at the first) is the context vector c. The decoder starts from tanh(W c) and writes
//! the target one token at a time; each step reads the previous token's embedding and a context:
//! - `attention: none`: c at every step (Cho et al. 2014): everything the decoder knows of the source is c;
//! - `additive`: Σ_s α_s e_s with α = softmax_s(vᵀ tanh(W_e e_s + W_d h_{t−1})) (Bahdanau et al. 2015);
//! - `dot`: α = softmax_s(e_sᵀ W h_{t−1}) (Luong et al. 2015, "general").
//!
//! Padded source steps get α = 0. The output layer reads the new state, the context and the previous token.
//! Training feeds the true previous token (with probability `train.teacher_forcing`); decoding is greedy or a
//! beam search.
//!
//! Target ids: 0 padding, 1 start, 2 end, then the target vocabulary.
use super::{token_stats, Objective, Recurrent, State, Stats};
use crate::config::{Attention, CellKind, ModelConfig};
use crate::data::Batch;
use tch::{nn, nn::Module, Kind, Tensor};

pub const BOS: i64 = 1;
pub const EOS: i64 = 2;

/// What the decoder reads of one batch's source.
pub struct Encoded {
    /// `[B, S, E]` encoder outputs (E = hidden × directions).
    pub out: Tensor,
    /// `[B, S]` true at real source steps.
    pub mask: Tensor,
    /// `[B, E]` the context vector c.
    pub summary: Tensor,
    /// Additive attention: W_e e_s for every step, `[B, S, A]` (computed once).
    keys: Option<Tensor>,
}

#[derive(Debug)]
pub struct Seq2Seq {
    pub cfg: ModelConfig,
    /// Target vocabulary size (ids 0..targets).
    pub targets: i64,
    src_embed: nn::Embedding,
    tgt_embed: nn::Embedding,
    pub encoder: Recurrent,
    pub decoder: Recurrent,
    bridge: nn::Linear,
    attn: Option<Attn>,
    out: nn::Linear,
    /// The teacher-forcing probability while training (`train.teacher_forcing`).
    pub teacher_forcing: std::cell::Cell<f64>,
}

#[derive(Debug)]
enum Attn {
    Additive { w_e: nn::Linear, w_d: nn::Linear, v: nn::Linear },
    Dot { w: nn::Linear },
}

impl Seq2Seq {
    /// `sources` source ids, `targets` target ids (both with padding 0).
    pub fn new(p: &nn::Path, cfg: &ModelConfig, sources: i64, targets: i64) -> Self {
        let ec = nn::EmbeddingConfig { padding_idx: 0, ..Default::default() };
        let src_embed = nn::embedding(p / "src_embed", sources, cfg.embed_dim, ec);
        let tgt_embed = nn::embedding(p / "tgt_embed", targets, cfg.embed_dim, ec);
        let encoder = Recurrent::new(&(p / "encoder"), cfg.embed_dim, cfg);
        let e = cfg.hidden * encoder.dirs();
        let dec_cfg = ModelConfig { bidirectional: false, ..cfg.clone() };
        let decoder = Recurrent::new(&(p / "decoder"), cfg.embed_dim + e, &dec_cfg);
        let bridge = nn::linear(p / "bridge", e, cfg.hidden, Default::default());
        let no_bias = nn::LinearConfig { bias: false, ..Default::default() };
        let attn = match cfg.attention {
            Attention::None => None,
            Attention::Additive => Some(Attn::Additive {
                w_e: nn::linear(p / "attn_e", e, cfg.hidden, no_bias),
                w_d: nn::linear(p / "attn_d", cfg.hidden, cfg.hidden, Default::default()),
                v: nn::linear(p / "attn_v", cfg.hidden, 1, no_bias),
            }),
            Attention::Dot => Some(Attn::Dot { w: nn::linear(p / "attn_w", cfg.hidden, e, no_bias) }),
        };
        let out = nn::linear(p / "out", cfg.hidden + e + cfg.embed_dim, targets, Default::default());
        Seq2Seq {
            cfg: cfg.clone(),
            targets,
            src_embed,
            tgt_embed,
            encoder,
            decoder,
            bridge,
            attn,
            out,
            teacher_forcing: std::cell::Cell::new(1.0),
        }
    }

    /// Reads the source of `batch`.
    pub fn encode(&self, batch: &Batch, train: bool) -> Encoded {
        let x = self.src_embed.forward(&batch.tokens).dropout(self.cfg.dropout, train);
        let out = self.encoder.forward(&x, Some(&batch.spans), train, self.cfg.imp);
        let (b, s, h) = (out.size()[0], out.size()[1], self.cfg.hidden);
        let at = |idx: &Tensor, part: i64| {
            out.narrow(2, part * h, h).gather(1, &idx.view([b, 1, 1]).expand([b, 1, h], false), false).squeeze_dim(1)
        };
        let fwd = at(&batch.spans.last(), 0);
        let summary = if self.encoder.bidirectional { Tensor::cat(&[fwd, at(&batch.spans.start, 1)], 1) } else { fwd };
        let keys = match &self.attn {
            Some(Attn::Additive { w_e, .. }) => Some(w_e.forward(&out)),
            _ => None,
        };
        Encoded { mask: batch.spans.mask(s), out, summary, keys }
    }

    /// The decoder's first state: tanh(W c) in every layer (the LSTM's cell starts at 0).
    pub fn start(&self, enc: &Encoded) -> State {
        let h0 = self.bridge.forward(&enc.summary).tanh();
        let h = Tensor::stack(&(0..self.cfg.layers).map(|_| h0.shallow_clone()).collect::<Vec<_>>(), 0);
        let c = (self.cfg.cell == CellKind::Lstm).then(|| h.zeros_like());
        State { h, c }
    }

    /// The context for the next step from the decoder's last state `[B, H]`: (context `[B, E]`, weights `[B, S]`
    /// when attending).
    pub fn context(&self, h: &Tensor, enc: &Encoded) -> (Tensor, Option<Tensor>) {
        let scores = match &self.attn {
            None => return (enc.summary.shallow_clone(), None),
            Some(Attn::Additive { w_d, v, .. }) => {
                let keys = enc.keys.as_ref().expect("additive keys");
                v.forward(&(keys + w_d.forward(h).unsqueeze(1)).tanh()).squeeze_dim(2)
            }
            Some(Attn::Dot { w }) => enc.out.bmm(&w.forward(h).unsqueeze(2)).squeeze_dim(2),
        };
        let alpha = scores.masked_fill(&enc.mask.logical_not(), f64::NEG_INFINITY).softmax(-1, Kind::Float);
        (alpha.unsqueeze(1).bmm(&enc.out).squeeze_dim(1), Some(alpha))
    }

    /// One decoder step from the previous tokens `[B]`: (logits `[B, targets]`, new state, attention weights).
    pub fn step(&self, prev: &Tensor, state: &State, enc: &Encoded, train: bool) -> (Tensor, State, Option<Tensor>) {
        let emb = self.tgt_embed.forward(prev).dropout(self.cfg.dropout, train);
        let (ctx, alpha) = self.context(&state.h.get(self.cfg.layers - 1), enc);
        let (h, state) = self.decoder.step(&Tensor::cat(&[&emb, &ctx], 1), state, train);
        let logits = self.out.forward(&Tensor::cat(&[h, ctx, emb], 1).dropout(self.cfg.dropout, train));
        (logits, state, alpha)
    }

    /// Logits `[B, T, targets]` for the batch's targets `[B, T]` (id sequences ending with the end id), feeding
    /// the true previous token with probability `teacher_forcing`, else the decoder's own guess.
    pub fn forward(&self, batch: &Batch, train: bool, teacher_forcing: f64) -> Tensor {
        let enc = self.encode(batch, train);
        let mut state = self.start(&enc);
        let (b, t_len) = (batch.targets.size()[0], batch.targets.size()[1]);
        let mut prev = Tensor::full([b], BOS, (Kind::Int64, batch.tokens.device()));
        let mut logits = Vec::with_capacity(t_len as usize);
        for t in 0..t_len {
            let (l, s, _) = self.step(&prev, &state, &enc, train);
            state = s;
            let truth = batch.targets.select(1, t);
            prev = if teacher_forcing >= 1.0 {
                truth
            } else {
                let guess = tch::no_grad(|| l.argmax(-1, false));
                let keep = Tensor::rand([b], (Kind::Float, truth.device())).lt(teacher_forcing);
                truth.where_self(&keep, &guess)
            };
            logits.push(l);
        }
        Tensor::stack(&logits, 1)
    }

    /// Greedy decoding of every source in the batch, up to `max_len` tokens: (ids `[B, T]` with 0 after the end
    /// id, attention weights `[B, T, S]` when attending).
    pub fn greedy(&self, batch: &Batch, max_len: i64) -> (Tensor, Option<Tensor>) {
        tch::no_grad(|| {
            let enc = self.encode(batch, false);
            let mut state = self.start(&enc);
            let b = batch.tokens.size()[0];
            let device = batch.tokens.device();
            let mut prev = Tensor::full([b], BOS, (Kind::Int64, device));
            let mut done = Tensor::zeros([b], (Kind::Bool, device));
            let (mut out, mut alphas) = (Vec::new(), Vec::new());
            for _ in 0..max_len {
                let (l, s, a) = self.step(&prev, &state, &enc, false);
                state = s;
                let next = never_special(&l).argmax(-1, false).masked_fill(&done, 0);
                done = done.logical_or(&next.eq(EOS));
                alphas.extend(a);
                out.push(next.shallow_clone());
                prev = next;
                if bool::try_from(done.all()).unwrap_or(false) {
                    break;
                }
            }
            let alphas = (!alphas.is_empty()).then(|| Tensor::stack(&alphas, 1));
            (Tensor::stack(&out, 1), alphas)
        })
    }

    /// Beam search over one source (row `i` of the batch), `width` hypotheses, up to `max_len` tokens: the
    /// hypothesis with the best mean log-probability per token, with its attention weights `[T, S]`.
    pub fn beam(&self, batch: &Batch, i: i64, width: usize, max_len: i64) -> (Vec<i64>, Option<Tensor>) {
        tch::no_grad(|| {
            let one = Batch {
                tokens: batch.tokens.narrow(0, i, 1),
                spans: crate::data::Spans {
                    start: batch.spans.start.narrow(0, i, 1),
                    len: batch.spans.len.narrow(0, i, 1),
                },
                targets: batch.targets.narrow(0, i, 1),
                cond: None,
                chars: None,
            };
            let enc = self.encode(&one, false);
            let start = self.start(&enc);
            // (tokens, sum of log-probabilities, state, attention rows)
            let mut live: Vec<(Vec<i64>, f64, State, Vec<Tensor>)> = vec![(vec![], 0.0, start, vec![])];
            let mut finished: Vec<(Vec<i64>, f64, Vec<Tensor>)> = Vec::new();
            for _ in 0..max_len {
                let mut cand: Vec<(Vec<i64>, f64, State, Vec<Tensor>)> = Vec::new();
                for (toks, score, state, att) in &live {
                    let prev = Tensor::from_slice(&[*toks.last().unwrap_or(&BOS)]).to_device(batch.tokens.device());
                    let (l, s, a) = self.step(&prev, state, &enc, false);
                    let logp = never_special(&l).log_softmax(-1, Kind::Double).get(0);
                    let (vals, idx) = logp.topk(width as i64, -1, true, true);
                    let (vals, idx): (Vec<f64>, Vec<i64>) =
                        (Vec::try_from(vals).unwrap_or_default(), Vec::try_from(idx).unwrap_or_default());
                    for (v, t) in vals.into_iter().zip(idx) {
                        let mut next = toks.clone();
                        next.push(t);
                        let mut att: Vec<Tensor> = att.iter().map(Tensor::shallow_clone).collect();
                        att.extend(a.as_ref().map(|a| a.get(0)));
                        let s2 = State { h: s.h.shallow_clone(), c: s.c.as_ref().map(Tensor::shallow_clone) };
                        cand.push((next, score + v, s2, att));
                    }
                }
                // The `width` best continuations by total log-probability; those that end are set aside.
                cand.sort_by(|a, b| b.1.total_cmp(&a.1));
                live.clear();
                for c in cand.into_iter().take(width) {
                    if *c.0.last().unwrap_or(&EOS) == EOS {
                        finished.push((c.0, c.1, c.3));
                    } else {
                        live.push(c);
                    }
                }
                if live.is_empty() || finished.len() >= width {
                    break;
                }
            }
            finished.extend(live.into_iter().map(|(t, s, _, a)| (t, s, a)));
            let best =
                finished.into_iter().max_by(|a, b| (a.1 / a.0.len() as f64).total_cmp(&(b.1 / b.0.len() as f64)));
            let (toks, _, att) = best.unwrap_or_default();
            let att = (!att.is_empty()).then(|| Tensor::stack(&att, 0));
            (toks, att)
        })
    }
}

/// Logits with padding and the start id ruled out (a decoder never writes them).
fn never_special(logits: &Tensor) -> Tensor {
    let l = logits.copy();
    let _ = l.narrow(1, 0, BOS + 1).fill_(f64::NEG_INFINITY);
    l
}

impl Objective for Seq2Seq {
    /// Mean cross-entropy per target token (teacher-forced while training with `train.teacher_forcing`, always
    /// when evaluating); next-token accuracy.
    fn stats(&self, batch: &Batch, train: bool) -> Stats {
        let tf = if train { self.teacher_forcing.get() } else { 1.0 };
        let logits = self.forward(batch, train, tf).reshape([-1, self.targets]);
        token_stats(&logits, &batch.targets.reshape([-1]), 0)
    }

    fn recurrent(&self) -> Vec<&Recurrent> {
        vec![&self.encoder, &self.decoder]
    }
}
