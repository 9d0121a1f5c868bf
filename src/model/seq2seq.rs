//! Encoder–decoder on the same [`Recurrent`] stacks, with or without attention.
//!
//! The encoder (optionally bidirectional) reads the source; its final state (forward direction at the last real
//! step, backward direction at the first) is the context vector c. The decoder starts from tanh(W c) and writes
//! the target one token at a time. How it sees the source:
//! - `attention: none`: c at every step (Cho et al. 2014): everything the decoder knows of the source is c;
//! - `additive`: Σ_s α_s e_s with α = softmax_s(vᵀ tanh(W_e e_s + W_d h)) (Bahdanau et al. 2015);
//! - `dot`: α = softmax_s(e_sᵀ W h) (Luong et al. 2015, "general").
//!
//! Where it attends (`model.decoder`): `bahdanau`, h is the previous state and the context enters the cell with
//! the previous token, so every training step waits for the one before; `luong`, the cell reads only the
//! previous token (and c without attention), h is its new state, so teacher-forced training runs the whole
//! target through the recurrence in one (fused) call and attends for all steps in one batched product.
//!
//! Padded source steps get α = 0. The output layer reads the decoder's state, the context and the previous
//! token (Bahdanau), or Luong's attentional state h̃ = tanh(W_c [h; context]). Training feeds the true previous token (with probability `train.teacher_forcing`, step by step when it
//! is below 1); decoding is greedy or a beam search (length-normalised).
//!
//! Target ids: 0 padding, 1 start, 2 end, then the target vocabulary.
use super::{token_stats, Objective, Recurrent, State, Stats};
use crate::config::{Attention, CellKind, DecoderKind, ModelConfig};
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

impl Encoded {
    /// The rows `idx` of the batch (a beam's hypotheses all read one source).
    fn rows(&self, idx: &Tensor) -> Encoded {
        Encoded {
            out: self.out.index_select(0, idx),
            mask: self.mask.index_select(0, idx),
            summary: self.summary.index_select(0, idx),
            keys: self.keys.as_ref().map(|k| k.index_select(0, idx)),
        }
    }
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
    /// Luong: the attentional state h̃ = tanh(W_c [h; context]) that the output layer reads.
    combine: Option<nn::Linear>,
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
        // The cell reads the context too, except a Luong decoder that attends (after the cell).
        let reads_context = cfg.decoder == DecoderKind::Bahdanau || cfg.attention == Attention::None;
        let decoder = Recurrent::new(&(p / "decoder"), cfg.embed_dim + if reads_context { e } else { 0 }, &dec_cfg);
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
        // Bahdanau: the output layer reads the state, the context and the previous token; Luong: h̃ only (a
        // narrower output layer: it is most of the cost with a large vocabulary).
        let (combine, out) = match cfg.decoder {
            DecoderKind::Bahdanau => {
                (None, nn::linear(p / "out", cfg.hidden + e + cfg.embed_dim, targets, Default::default()))
            }
            DecoderKind::Luong => (
                Some(nn::linear(p / "combine", cfg.hidden + e, cfg.hidden, Default::default())),
                nn::linear(p / "out", cfg.hidden, targets, Default::default()),
            ),
        };
        Seq2Seq {
            cfg: cfg.clone(),
            targets,
            src_embed,
            tgt_embed,
            encoder,
            decoder,
            bridge,
            attn,
            combine,
            out,
            teacher_forcing: std::cell::Cell::new(1.0),
        }
    }

    fn luong(&self) -> bool {
        self.cfg.decoder == DecoderKind::Luong
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

    /// The context for decoder state(s) `h` — `[B, H]`, or `[B, T, H]` for every step at once: (context `[B, E]`
    /// or `[B, T, E]`, weights `[B, S]` or `[B, T, S]` when attending).
    pub fn context(&self, h: &Tensor, enc: &Encoded) -> (Tensor, Option<Tensor>) {
        let steps = h.dim() == 3;
        let scores = match &self.attn {
            None if steps => return (enc.summary.unsqueeze(1).expand([-1, h.size()[1], -1], false), None),
            None => return (enc.summary.shallow_clone(), None),
            Some(Attn::Additive { w_d, v, .. }) => {
                let keys = enc.keys.as_ref().expect("additive keys");
                if steps {
                    let q = w_d.forward(h).unsqueeze(2);
                    v.forward(&(keys.unsqueeze(1) + q).tanh()).squeeze_dim(3)
                } else {
                    v.forward(&(keys + w_d.forward(h).unsqueeze(1)).tanh()).squeeze_dim(2)
                }
            }
            Some(Attn::Dot { w }) if steps => w.forward(h).bmm(&enc.out.transpose(1, 2)),
            Some(Attn::Dot { w }) => enc.out.bmm(&w.forward(h).unsqueeze(2)).squeeze_dim(2),
        };
        let pad = if steps { enc.mask.logical_not().unsqueeze(1) } else { enc.mask.logical_not() };
        let alpha = scores.masked_fill(&pad, f64::NEG_INFINITY).softmax(-1, Kind::Float);
        let ctx = if steps { alpha.bmm(&enc.out) } else { alpha.unsqueeze(1).bmm(&enc.out).squeeze_dim(1) };
        (ctx, Some(alpha))
    }

    /// One decoder step from the previous tokens `[B]`: (logits `[B, targets]`, new state, attention weights).
    pub fn step(&self, prev: &Tensor, state: &State, enc: &Encoded, train: bool) -> (Tensor, State, Option<Tensor>) {
        let emb = self.tgt_embed.forward(prev).dropout(self.cfg.dropout, train);
        if self.luong() {
            let x = if self.attn.is_none() { Tensor::cat(&[&emb, &enc.summary], 1) } else { emb.shallow_clone() };
            let (h, state) = self.decoder.step(&x, state, train);
            let (ctx, alpha) = self.context(&h, enc);
            return (self.luong_logits(&h, &ctx, 1, train), state, alpha);
        }
        let (ctx, alpha) = self.context(&state.h.get(self.cfg.layers - 1), enc);
        let (h, state) = self.decoder.step(&Tensor::cat(&[&emb, &ctx], 1), state, train);
        let logits = self.out.forward(&Tensor::cat(&[h, ctx, emb], 1).dropout(self.cfg.dropout, train));
        (logits, state, alpha)
    }

    /// Logits `[B, T, targets]` for the batch's targets `[B, T]` (id sequences ending with the end id), feeding
    /// the true previous token with probability `teacher_forcing`, else the decoder's own guess.
    pub fn forward(&self, batch: &Batch, train: bool, teacher_forcing: f64) -> Tensor {
        let enc = self.encode(batch, train);
        if self.luong() && teacher_forcing >= 1.0 {
            return self.teacher_forced(batch, &enc, train);
        }
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

    /// A Luong decoder on the true previous tokens: every target step through the recurrence in one call, then
    /// attention and the output layer for all steps at once.
    fn teacher_forced(&self, batch: &Batch, enc: &Encoded, train: bool) -> Tensor {
        let (b, t_len) = (batch.targets.size()[0], batch.targets.size()[1]);
        let bos = Tensor::full([b, 1], BOS, (Kind::Int64, batch.tokens.device()));
        let prev = Tensor::cat(&[bos, batch.targets.narrow(1, 0, t_len - 1)], 1);
        let emb = self.tgt_embed.forward(&prev).dropout(self.cfg.dropout, train);
        let x = match self.attn {
            None => Tensor::cat(&[&emb, &enc.summary.unsqueeze(1).expand([-1, t_len, -1], false)], 2),
            Some(_) => emb.shallow_clone(),
        };
        let (h, _) = self.decoder.forward_state(&x, Some(&self.start(enc)), train);
        let (ctx, _) = self.context(&h, enc);
        self.luong_logits(&h, &ctx, 2, train)
    }

    /// Luong's output: logits of h̃ = tanh(W_c [h; context]), the pair concatenated along `dim`.
    fn luong_logits(&self, h: &Tensor, ctx: &Tensor, dim: i64, train: bool) -> Tensor {
        let combine = self.combine.as_ref().expect("a Luong decoder has its combining layer");
        let ht = combine.forward(&Tensor::cat(&[h, ctx], dim).dropout(self.cfg.dropout, train)).tanh();
        self.out.forward(&ht.dropout(self.cfg.dropout, train))
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

    /// Beam search over one source (row `i` of the batch), `width` hypotheses decoded side by side as one batch,
    /// up to `max_len` tokens: the finished hypothesis with the best mean log-probability per token (the live
    /// ones when none finished), with its attention weights `[T, S]`.
    pub fn beam(&self, batch: &Batch, i: i64, width: usize, max_len: i64) -> (Vec<i64>, Option<Tensor>) {
        tch::no_grad(|| {
            let device = batch.tokens.device();
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
            let enc1 = self.encode(&one, false);
            let mut state = self.start(&enc1);
            // Live hypotheses: tokens, summed log-probability, attention rows.
            let mut live: Vec<(Vec<i64>, f64, Vec<Tensor>)> = vec![(vec![], 0.0, vec![])];
            let mut finished: Vec<(Vec<i64>, f64, Vec<Tensor>)> = Vec::new();
            for _ in 0..max_len {
                let k = live.len() as i64;
                let enc = enc1.rows(&Tensor::zeros([k], (Kind::Int64, device)));
                let prev: Vec<i64> = live.iter().map(|h| *h.0.last().unwrap_or(&BOS)).collect();
                let (l, s, a) = self.step(&Tensor::from_slice(&prev).to_device(device), &state, &enc, false);
                let scores = Tensor::from_slice(&live.iter().map(|h| h.1).collect::<Vec<f64>>()).to_device(device);
                let logp = never_special(&l).log_softmax(-1, Kind::Double) + scores.unsqueeze(1);
                let v = logp.size()[1];
                let (vals, idx) = logp.flatten(0, -1).topk((width as i64).min(k * v), -1, true, true);
                let (vals, idx): (Vec<f64>, Vec<i64>) =
                    (Vec::try_from(vals).unwrap_or_default(), Vec::try_from(idx).unwrap_or_default());
                let mut next_live = Vec::new();
                let mut keep_rows = Vec::new();
                for (score, flat) in vals.into_iter().zip(idx) {
                    let (row, token) = ((flat / v) as usize, flat % v);
                    let mut toks = live[row].0.clone();
                    toks.push(token);
                    let mut att: Vec<Tensor> = live[row].2.iter().map(Tensor::shallow_clone).collect();
                    att.extend(a.as_ref().map(|a| a.get(row as i64)));
                    if token == EOS {
                        finished.push((toks, score, att));
                    } else {
                        next_live.push((toks, score, att));
                        keep_rows.push(row as i64);
                    }
                }
                if next_live.is_empty() || finished.len() >= width {
                    live = next_live;
                    break;
                }
                let rows = Tensor::from_slice(&keep_rows).to_device(device);
                state = State { h: s.h.index_select(1, &rows), c: s.c.as_ref().map(|c| c.index_select(1, &rows)) };
                live = next_live;
            }
            if finished.is_empty() {
                finished = live;
            }
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
}
