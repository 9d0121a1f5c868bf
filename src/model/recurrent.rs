//! One recurrent layer stack for the three cells, in PyTorch's parameter layout, with three implementations:
//! `Fused` runs rnnlab's own kernels for the three cells on the CPU ([`super::fused`]); `Libtorch` calls
//! libtorch's kernels (`rnn_tanh`, `gru`, `lstm`); `Unrolled` is the textbook step loop
//! (`h = tanh(W_ih x + b_ih + W_hh h + b_hh)` and the gated equivalents) for diagnostics. Tests check that all
//! agree, and agree with PyTorch.
//!
//! Variable lengths without packing: each sequence occupies a span `[start, start + len)` of the padded batch.
//! The forward direction reads it left to right (post-padding comes after the readout); the backward direction
//! runs on a copy whose spans are reversed in place, so it also starts at the sequence's real last token.
use super::fused::{self, Layer, Tape};
use crate::config::{CellKind, Impl, ModelConfig};
use crate::data::Spans;
use tch::{nn, Tensor};

/// Stacked (optionally bidirectional) recurrent layers: `[B, T, input] -> [B, T, dirs * hidden]`.
#[derive(Debug)]
pub struct Recurrent {
    pub cell: CellKind,
    pub input: i64,
    pub hidden: i64,
    pub layers: i64,
    pub bidirectional: bool,
    pub dropout: f64,
    /// `[w_ih, w_hh, b_ih, b_hh]` per layer and direction, in PyTorch's order (l0, l0_reverse, l1, ...).
    pub weights: Vec<[Tensor; 4]>,
    /// The implementation [`forward_state`](Self::forward_state) uses (`model.impl`).
    pub imp: Impl,
    /// The work buffers of this stack's fused calls, reused from step to step.
    pub tape: Tape,
}

/// One layer's states over one sequence, step by step ([`Recurrent::trace`]).
#[derive(Debug)]
pub struct LayerTrace {
    /// `[T, H]` h_1 .. h_T.
    pub h: Tensor,
    /// LSTM: `[T, H]` the cell states c_1 .. c_T.
    pub c: Option<Tensor>,
    /// The gates' activations `[T, H]` by name: GRU `r` (reset) and `z` (update), LSTM `i`, `f`, `o`; none for
    /// the vanilla RNN.
    pub gates: Vec<(&'static str, Tensor)>,
}

/// Initial and final hidden state of a unidirectional stack: `h` (and `c` for LSTM), each `[layers, B, H]`.
#[derive(Debug)]
pub struct State {
    pub h: Tensor,
    pub c: Option<Tensor>,
}

impl Recurrent {
    /// Registers the weights under `p` with PyTorch's names (`weight_ih_l0`, `bias_hh_l1_reverse`, ...), for
    /// inputs of width `input`, with the cell, sizes, dropout and init of `m`.
    pub fn new(p: &nn::Path, input: i64, m: &ModelConfig) -> Self {
        let (cell, hidden, layers, bidirectional, dropout) = (m.cell, m.hidden, m.layers, m.bidirectional, m.dropout);
        let init = &m.init;
        let dirs = if bidirectional { 2 } else { 1 };
        let g = cell.gates() * hidden;
        let k = 1.0 / (hidden as f64).sqrt();
        let u = nn::Init::Uniform { lo: -k, up: k };
        let mut weights = Vec::new();
        for l in 0..layers {
            let in_l = if l == 0 { input } else { hidden * dirs };
            for d in 0..dirs {
                let sfx = if d == 1 { format!("l{l}_reverse") } else { format!("l{l}") };
                let w = [
                    p.var(&format!("weight_ih_{sfx}"), &[g, in_l], u),
                    p.var(&format!("weight_hh_{sfx}"), &[g, hidden], u),
                    p.var(&format!("bias_ih_{sfx}"), &[g], u),
                    p.var(&format!("bias_hh_{sfx}"), &[g], u),
                ];
                tch::no_grad(|| {
                    if init.recurrent_gain != 1.0 {
                        let _ = w[1].shallow_clone().g_mul_scalar_(init.recurrent_gain);
                    }
                    // PyTorch's GRU gate order: reset, update, new; h' = (1 − z) n + z h, so z near 1 keeps h.
                    if let (CellKind::Gru, Some(t_max)) = (cell, init.chrono) {
                        let _ = w[2].narrow(0, hidden, hidden).uniform_(1.0, t_max - 1.0).log_();
                        let _ = w[3].narrow(0, hidden, hidden).fill_(0.0);
                    }
                    // PyTorch's LSTM gate order: input, forget, cell, output.
                    if cell == CellKind::Lstm {
                        let (mut input_b, mut forget_b) = (w[2].narrow(0, 0, hidden), w[2].narrow(0, hidden, hidden));
                        if let Some(t_max) = init.chrono {
                            let _ = forget_b.uniform_(1.0, t_max - 1.0).log_();
                            input_b.copy_(&-&forget_b);
                            let _ = w[3].narrow(0, 0, 2 * hidden).fill_(0.0);
                        } else if let Some(b) = init.forget_bias {
                            let _ = forget_b.fill_(b);
                            let _ = w[3].narrow(0, hidden, hidden).fill_(0.0);
                        }
                    }
                });
                weights.push(w);
            }
        }
        Recurrent { cell, input, hidden, layers, bidirectional, dropout, weights, imp: m.imp, tape: Tape::default() }
    }

    pub fn dirs(&self) -> i64 {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Output of the last layer, `[B, T, dirs * hidden]`. `spans` = None treats every step as real.
    pub fn forward(&self, x: &Tensor, spans: Option<&Spans>, train: bool, imp: Impl) -> Tensor {
        self.forward_traced(x, spans, train, imp).0
    }

    /// As [`forward`](Self::forward), also returning the first layer's forward-direction hidden states h_1..h_T
    /// when unrolled (each a separate `[B, H]` tensor in the graph, so gradients can be taken w.r.t. them).
    pub fn forward_traced(&self, x: &Tensor, spans: Option<&Spans>, train: bool, imp: Impl) -> (Tensor, Vec<Tensor>) {
        let t_len = x.size()[1];
        let rev = if self.bidirectional { spans.map(|s| s.reverse_index(t_len)) } else { None };
        let flip = |t: &Tensor| match &rev {
            Some(idx) => t.gather(1, &idx.unsqueeze(2).expand(t.size(), false), false),
            None => t.flip([1]),
        };
        let mut input = x.shallow_clone();
        let mut trace = Vec::new();
        let imp = imp.resolve();
        for l in 0..self.layers as usize {
            if l > 0 {
                input = input.dropout(self.dropout, train);
            }
            let dirs = self.dirs() as usize;
            let mut outs = Vec::with_capacity(dirs);
            for d in 0..dirs {
                let w = &self.weights[l * dirs + d];
                let xin = if d == 0 { input.shallow_clone() } else { flip(&input) };
                let (out, hs) = match imp {
                    Impl::Fused if fused::covers(self.cell, &xin) => {
                        (self.fused(w, &xin, (None, None), train).0, Vec::new())
                    }
                    Impl::Auto | Impl::Fused | Impl::Libtorch => (self.libtorch(&xin, w, None, train).0, Vec::new()),
                    Impl::Unrolled => self.unrolled(&xin, w),
                };
                if l == 0 && d == 0 {
                    trace = hs;
                }
                outs.push(if d == 0 { out } else { flip(&out) });
            }
            input = if dirs == 1 { outs.pop().unwrap() } else { Tensor::cat(&outs, 2) };
        }
        (input, trace)
    }

    /// Unidirectional run from a given state (zeros when None), returning the final state: for step-by-step
    /// generation and truncated backpropagation through time.
    pub fn forward_state(&self, x: &Tensor, state: Option<&State>, train: bool) -> (Tensor, State) {
        assert!(!self.bidirectional, "forward_state needs a unidirectional model");
        let mut input = x.shallow_clone();
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        for (l, w) in self.weights.iter().enumerate() {
            if l > 0 {
                input = input.dropout(self.dropout, train);
            }
            let s0 = state.map(|s| (s.h.get(l as i64), s.c.as_ref().map(|c| c.get(l as i64))));
            let (out, h, c) = if self.imp.resolve() == Impl::Fused && fused::covers(self.cell, &input) {
                let s0 = s0.as_ref().map_or((None, None), |(h, c)| (Some(h), c.as_ref()));
                self.fused(w, &input, s0, train)
            } else {
                self.libtorch(&input, w, s0, train)
            };
            hs.push(h);
            cs.extend(c);
            input = out;
        }
        let c = (!cs.is_empty()).then(|| Tensor::stack(&cs, 0));
        (input, State { h: Tensor::stack(&hs, 0), c })
    }

    /// One time step of a unidirectional stack: input `[B, input]`, state `h` (and `c`) `[layers, B, H]`. Returns
    /// the last layer's output `[B, H]` and the new state (libtorch's cell functions: a decoder's step).
    pub fn step(&self, x: &Tensor, state: &State, train: bool) -> (Tensor, State) {
        assert!(!self.bidirectional, "step needs a unidirectional model");
        let mut input = x.shallow_clone();
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        for (l, w) in self.weights.iter().enumerate() {
            if l > 0 {
                input = input.dropout(self.dropout, train);
            }
            let h = state.h.get(l as i64);
            let (b_ih, b_hh) = (Some(&w[2]), Some(&w[3]));
            input = match self.cell {
                CellKind::Rnn => input.rnn_tanh_cell(&h, &w[0], &w[1], b_ih, b_hh),
                CellKind::Gru => input.gru_cell(&h, &w[0], &w[1], b_ih, b_hh),
                CellKind::Lstm => {
                    let c = state.c.as_ref().expect("an LSTM state has c").get(l as i64);
                    let (h, c) = input.lstm_cell(&[&h, &c], &w[0], &w[1], b_ih, b_hh);
                    cs.push(c);
                    h
                }
            };
            hs.push(input.shallow_clone());
        }
        let c = (!cs.is_empty()).then(|| Tensor::stack(&cs, 0));
        (input, State { h: Tensor::stack(&hs, 0), c })
    }

    /// One layer, one direction, through the fused kernels (recorded on the tape when training), from the state
    /// (h_0, c_0) (zeros where None). Returns (output, h_T, c_T). A kernel error (caught in its threads) panics
    /// here, outside them: the run that hit it ends as failed.
    fn fused(
        &self,
        w: &[Tensor; 4],
        x: &Tensor,
        s0: (Option<&Tensor>, Option<&Tensor>),
        train: bool,
    ) -> (Tensor, Tensor, Option<Tensor>) {
        let l = Layer { cell: self.cell, w };
        self.tape.forward(l, x, s0, train).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// One layer, one direction, through libtorch's kernel. Returns (output, h_T, c_T).
    fn libtorch(
        &self,
        x: &Tensor,
        w: &[Tensor; 4],
        s0: Option<(Tensor, Option<Tensor>)>,
        train: bool,
    ) -> (Tensor, Tensor, Option<Tensor>) {
        let zeros = || Tensor::zeros([1, x.size()[0], self.hidden], (x.kind(), x.device()));
        let (h0, c0) = match s0 {
            Some((h, c)) => (h.unsqueeze(0), c.map(|c| c.unsqueeze(0))),
            None => (zeros(), None),
        };
        match self.cell {
            CellKind::Rnn => {
                let (o, h) = x.rnn_tanh(&h0, w, true, 1, 0.0, train, false, true);
                (o, h.squeeze_dim(0), None)
            }
            CellKind::Gru => {
                let (o, h) = x.gru(&h0, w, true, 1, 0.0, train, false, true);
                (o, h.squeeze_dim(0), None)
            }
            CellKind::Lstm => {
                let c0 = c0.unwrap_or_else(zeros);
                let (o, h, c) = x.lstm(&[&h0, &c0], &[&w[0], &w[1], &w[2], &w[3]], true, 1, 0.0, train, false, true);
                (o, h.squeeze_dim(0), Some(c.squeeze_dim(0)))
            }
        }
    }

    /// Every layer's states and gates over one sequence `x` `[1, T, input]` of a unidirectional stack, by the
    /// textbook equations one step at a time, without dropout: what interpretability studies read.
    pub fn trace(&self, x: &Tensor) -> Vec<LayerTrace> {
        assert!(!self.bidirectional, "trace needs a unidirectional model");
        tch::no_grad(|| {
            let mut input = x.get(0);
            let mut out = Vec::new();
            for [w_ih, w_hh, b_ih, b_hh] in &self.weights {
                let gx = input.matmul(&w_ih.tr()) + b_ih;
                let mut h = Tensor::zeros([self.hidden], (x.kind(), x.device()));
                let mut c = h.zeros_like();
                let (mut hs, mut cs) = (Vec::new(), Vec::new());
                let mut gates: Vec<(&'static str, Vec<Tensor>)> = match self.cell {
                    CellKind::Rnn => vec![],
                    CellKind::Gru => vec![("r", vec![]), ("z", vec![])],
                    CellKind::Lstm => vec![("i", vec![]), ("f", vec![]), ("o", vec![])],
                };
                for t in 0..gx.size()[0] {
                    let gh = w_hh.mv(&h) + b_hh;
                    let gx_t = gx.get(t);
                    h = match self.cell {
                        CellKind::Rnn => (gx_t + gh).tanh(),
                        CellKind::Gru => {
                            let (xs, hh) = (gx_t.chunk(3, 0), gh.chunk(3, 0));
                            let r = (&xs[0] + &hh[0]).sigmoid();
                            let z = (&xs[1] + &hh[1]).sigmoid();
                            let n = (&xs[2] + &r * &hh[2]).tanh();
                            let next = &n + &z * (&h - &n);
                            gates[0].1.push(r);
                            gates[1].1.push(z);
                            next
                        }
                        CellKind::Lstm => {
                            let g = (gx_t + gh).chunk(4, 0);
                            let (i, f, gg, o) = (g[0].sigmoid(), g[1].sigmoid(), g[2].tanh(), g[3].sigmoid());
                            c = &f * &c + &i * gg;
                            let next = &o * c.tanh();
                            cs.push(c.shallow_clone());
                            gates[0].1.push(i);
                            gates[1].1.push(f);
                            gates[2].1.push(o);
                            next
                        }
                    };
                    hs.push(h.shallow_clone());
                }
                let h_all = Tensor::stack(&hs, 0);
                input = h_all.shallow_clone();
                out.push(LayerTrace {
                    h: h_all,
                    c: (!cs.is_empty()).then(|| Tensor::stack(&cs, 0)),
                    gates: gates.into_iter().map(|(n, v)| (n, Tensor::stack(&v, 0))).collect(),
                });
            }
            out
        })
    }

    /// One layer, one direction, step by step. Returns the stacked output and every h_t.
    fn unrolled(&self, x: &Tensor, w: &[Tensor; 4]) -> (Tensor, Vec<Tensor>) {
        let (b, t_len) = (x.size()[0], x.size()[1]);
        let [w_ih, w_hh, b_ih, b_hh] = w;
        // The input projection of all steps at once; the recurrence itself is one step at a time.
        let gx = x.matmul(&w_ih.tr()) + b_ih;
        let mut h = Tensor::zeros([b, self.hidden], (x.kind(), x.device()));
        let mut c = h.zeros_like();
        let mut hs = Vec::with_capacity(t_len as usize);
        for t in 0..t_len {
            let gx_t = gx.select(1, t);
            let gh = h.matmul(&w_hh.tr()) + b_hh;
            h = match self.cell {
                CellKind::Rnn => (gx_t + gh).tanh(),
                CellKind::Gru => {
                    let xs = gx_t.chunk(3, 1);
                    let hh = gh.chunk(3, 1);
                    let r = (&xs[0] + &hh[0]).sigmoid();
                    let z = (&xs[1] + &hh[1]).sigmoid();
                    let n = (&xs[2] + r * &hh[2]).tanh();
                    &n + z * (&h - &n)
                }
                CellKind::Lstm => {
                    let g = (gx_t + gh).chunk(4, 1);
                    let (i, f, gg, o) = (g[0].sigmoid(), g[1].sigmoid(), g[2].tanh(), g[3].sigmoid());
                    c = f * &c + i * gg;
                    o * c.tanh()
                }
            };
            hs.push(h.shallow_clone());
        }
        (Tensor::stack(&hs, 1), hs)
    }
}
