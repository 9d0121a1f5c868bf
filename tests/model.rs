//! The recurrent layers: fused = libtorch = unrolled, agreement with PyTorch, shapes, and the last-real-step
//! readout.
use rnnlab::config::{CellKind, Impl, InitConfig, InputKind, ModelConfig};

fn spec(cell: CellKind, hidden: i64, layers: i64, bidirectional: bool) -> ModelConfig {
    ModelConfig { cell, hidden, layers, bidirectional, ..Default::default() }
}
use rnnlab::data::{Batch, Example, Pad, Spans, Split};
use rnnlab::model::{backward, Classifier, Recurrent};
use serde::Deserialize;
use std::collections::HashMap;
use tch::{nn, Device, Kind, Tensor};

fn spans(lengths: &[i64]) -> Spans {
    Spans { start: Tensor::zeros([lengths.len() as i64], (Kind::Int64, Device::Cpu)), len: Tensor::from_slice(lengths) }
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// Output and parameter gradients of `loss = sum(out * probe)` for one implementation.
fn run(vs: &nn::VarStore, r: &Recurrent, x: &Tensor, s: &Spans, probe: &Tensor, imp: Impl) -> (Tensor, Vec<Tensor>) {
    for v in vs.trainable_variables() {
        let mut g = v.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    // Training mode (the configs have no dropout), so that the fused path records its calls for the backward.
    let out = r.forward(x, Some(s), true, imp);
    backward(&(&out * probe).sum(Kind::Double)).unwrap();
    let grads = r.weights.iter().flatten().map(|w| w.grad().copy()).collect();
    (out.detach(), grads)
}

#[test]
fn fused_libtorch_and_unrolled_agree_for_every_cell_and_shape() {
    for kind in [Kind::Float, Kind::Double] {
        let tol = if kind == Kind::Float { 1e-5 } else { 1e-11 };
        for cell in CellKind::ALL {
            for (layers, bi) in [(1, false), (2, false), (1, true), (2, true)] {
                let _seeded = rnnlab::rng::torch_seed(1);
                let mut vs = nn::VarStore::new(Device::Cpu);
                let r = Recurrent::new(&vs.root(), 5, &spec(cell, 6, layers, bi));
                if kind == Kind::Double {
                    vs.double();
                }
                let x = Tensor::randn([3, 7, 5], (kind, Device::Cpu));
                let s = spans(&[7, 4, 1]);
                let dirs = if bi { 2 } else { 1 };
                let probe = Tensor::randn([3, 7, 6 * dirs], (kind, Device::Cpu));
                // The unrolled textbook loop is the reference; libtorch's kernels and the fused path must agree.
                let (ou, gu) = run(&vs, &r, &x, &s, &probe, Impl::Unrolled);
                assert_eq!(ou.size(), vec![3, 7, 6 * dirs]);
                assert_eq!(gu.len(), (4 * layers * dirs) as usize);
                for imp in [Impl::Libtorch, Impl::Fused] {
                    let (o, g) = run(&vs, &r, &x, &s, &probe, imp);
                    let what = format!("{cell} {imp:?} layers={layers} bi={bi} {kind:?}");
                    assert!(max_abs(&o, &ou) < tol, "{what}: outputs differ by {}", max_abs(&o, &ou));
                    for (i, (a, b)) in g.iter().zip(&gu).enumerate() {
                        let d = max_abs(a, b);
                        assert!(d < tol, "{what}: gradient of weight {i} differs from the unrolled loop by {d}");
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct Flat {
    shape: Vec<i64>,
    data: Vec<f64>,
}

impl Flat {
    fn tensor(&self) -> Tensor {
        Tensor::from_slice(&self.data).view(self.shape.as_slice())
    }
}

#[derive(Deserialize)]
struct Case {
    cell: String,
    name: String,
    layers: i64,
    bidirectional: bool,
    hidden: i64,
    lengths: Vec<i64>,
    x: Flat,
    probe: Flat,
    output: Flat,
    h_n: Flat,
    params: HashMap<String, Flat>,
    grads: HashMap<String, Flat>,
}

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[test]
fn outputs_and_gradients_equal_pytorch() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pytorch_reference.json")).unwrap();
    let reference: Reference = serde_json::from_str(&text).unwrap();
    assert_eq!(reference.cases.len(), 6);
    for c in &reference.cases {
        let cell = CellKind::parse(&c.cell).unwrap();
        let x = c.x.tensor();
        let input = x.size()[2];
        let mut vs = nn::VarStore::new(Device::Cpu);
        let r = Recurrent::new(&(vs.root() / "rnn"), input, &spec(cell, c.hidden, c.layers, c.bidirectional));
        vs.double();
        let vars = vs.variables();
        tch::no_grad(|| {
            for (name, p) in &c.params {
                vars[&format!("rnn.{name}")].shallow_clone().copy_(&p.tensor());
            }
        });
        assert_eq!(vars.len(), c.params.len(), "{} {}: parameter count", c.cell, c.name);
        let t_len = x.size()[1];
        let lens = Tensor::from_slice(&c.lengths);
        let mask = Tensor::arange(t_len, (Kind::Int64, Device::Cpu))
            .unsqueeze(0)
            .lt_tensor(&lens.unsqueeze(1))
            .to_kind(Kind::Double)
            .unsqueeze(2);
        // Every implementation, the default fused path first (training mode: it records its calls for backward).
        for imp in [Impl::Fused, Impl::Libtorch, Impl::Unrolled] {
            for v in vs.trainable_variables() {
                let mut g = v.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
            }
            let out = r.forward(&x, Some(&spans(&c.lengths)), true, imp) * &mask;
            let d = max_abs(&out, &c.output.tensor());
            assert!(d < 1e-10, "{} {} {imp:?}: output differs from PyTorch by {d}", c.cell, c.name);
            // PyTorch's h_n of the last layer = our output at the last real step (forward) and at step 0 (backward).
            let hn = c.h_n.tensor();
            let h = c.hidden;
            let b = x.size()[0];
            let last = (&lens - 1).view([b, 1, 1]).expand([b, 1, h], false);
            let fwd = out.narrow(2, 0, h).gather(1, &last, false).squeeze_dim(1);
            let dirs = if c.bidirectional { 2 } else { 1 };
            let top = hn.size()[0] - dirs;
            assert!(max_abs(&fwd, &hn.get(top)) < 1e-10, "{} {}: last real step != h_n", c.cell, c.name);
            if c.bidirectional {
                let bwd = out.narrow(2, h, h).select(1, 0);
                assert!(max_abs(&bwd, &hn.get(top + 1)) < 1e-10, "{} {}: backward step 0 != h_n", c.cell, c.name);
            }
            backward(&(out * c.probe.tensor()).sum(Kind::Double)).unwrap();
            for (name, g) in &c.grads {
                let d = max_abs(&vars[&format!("rnn.{name}")].grad(), &g.tensor());
                assert!(d < 1e-10, "{} {} {imp:?}: gradient of {name} differs from PyTorch by {d}", c.cell, c.name);
            }
        }
    }
}

fn batch_of(split: &Split) -> Batch {
    let idx: Vec<i64> = (0..split.len() as i64).collect();
    split.batch(&idx, Device::Cpu)
}

#[test]
fn padding_after_a_sequence_never_changes_its_logits() {
    use rnnlab::config::Readout;
    let seqs = [vec![3, 1, 4, 1, 5, 9, 2], vec![6, 5, 3], vec![5]];
    for cell in CellKind::ALL {
        for (layers, bi, input, readout) in [
            (1, false, InputKind::Embedding, Readout::LastReal),
            (2, true, InputKind::Onehot, Readout::LastReal),
            (1, false, InputKind::Embedding, Readout::Pool),
            (1, true, InputKind::Onehot, Readout::Pool),
        ] {
            let _seeded = rnnlab::rng::torch_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = ModelConfig {
                cell,
                input,
                embed_dim: 4,
                hidden: 5,
                layers,
                bidirectional: bi,
                readout,
                ..Default::default()
            };
            let m = Classifier::new(&vs.root(), &cfg, 10, 3);
            // Post-padding: the padding comes after the readout, so it cannot matter. (Pre-padding is the
            // configurable alternative in which the forward direction reads the padding first.)
            let ex: Vec<Example> = seqs.iter().map(|t| Example { tokens: t.clone(), label: 0 }).collect();
            let together = m.forward(&batch_of(&Split::new("x", &ex, Pad::Post)), false);
            assert_eq!(together.size(), vec![3, 3]);
            for (i, e) in ex.iter().enumerate() {
                let alone = m.forward(&batch_of(&Split::new("x", std::slice::from_ref(e), Pad::Post)), false);
                let d = max_abs(&together.get(i as i64), &alone.get(0));
                assert!(
                    d < 1e-5,
                    "{cell} layers={layers} bi={bi} {readout:?}: padding changed the logits of sequence {i} by {d}"
                );
            }
        }
    }
}

#[test]
fn last_padded_readout_does_see_padding() {
    let _seeded = rnnlab::rng::torch_seed(4);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = ModelConfig { cell: CellKind::Gru, readout: rnnlab::config::Readout::LastPadded, ..Default::default() };
    let m = Classifier::new(&vs.root(), &cfg, 10, 2);
    let short = Example { tokens: vec![4, 2], label: 0 };
    let long = Example { tokens: vec![1; 20], label: 0 };
    let padded = m.forward(&batch_of(&Split::new("x", &[short.clone(), long], Pad::Post)), false);
    let alone = m.forward(&batch_of(&Split::new("x", &[short], Pad::Post)), false);
    assert!(max_abs(&padded.get(0), &alone.get(0)) > 1e-4, "18 padding steps should change the readout");
}

#[test]
fn stacked_shapes_and_parameter_counts() {
    for cell in CellKind::ALL {
        for layers in [1, 3] {
            for bi in [false, true] {
                let vs = nn::VarStore::new(Device::Cpu);
                let r = Recurrent::new(&vs.root(), 7, &spec(cell, 8, layers, bi));
                let dirs = if bi { 2 } else { 1 };
                let out = r.forward(&Tensor::zeros([2, 9, 7], (Kind::Float, Device::Cpu)), None, false, Impl::Libtorch);
                assert_eq!(out.size(), vec![2, 9, 8 * dirs]);
                let g = cell.gates() * 8;
                let per_dir = |inp: i64| g * inp + g * 8 + 2 * g;
                let expected = dirs * per_dir(7) + (layers - 1) * dirs * per_dir(8 * dirs);
                assert_eq!(rnnlab::model::n_params(&vs), expected, "{cell} layers={layers} bi={bi}");
            }
        }
    }
}

#[test]
fn init_options_change_the_weights_as_documented() {
    let h = 16;
    let vs = nn::VarStore::new(Device::Cpu);
    let init = InitConfig { forget_bias: Some(1.0), recurrent_gain: 3.0, ..Default::default() };
    let r = Recurrent::new(&vs.root(), 4, &ModelConfig { init, ..spec(CellKind::Lstm, h, 1, false) });
    let [w_ih, w_hh, b_ih, b_hh] = &r.weights[0];
    let k = 1.0 / (h as f64).sqrt();
    assert!(w_ih.abs().max().double_value(&[]) <= k);
    let m = w_hh.abs().max().double_value(&[]);
    assert!(m > k && m <= 3.0 * k, "recurrent_gain 3 should scale W_hh beyond 1/sqrt(H): max {m}");
    assert_eq!(b_ih.narrow(0, h, h).mean(Kind::Float).double_value(&[]), 1.0);
    assert_eq!(b_hh.narrow(0, h, h).abs().sum(Kind::Float).double_value(&[]), 0.0);
}

#[test]
fn chrono_init_spreads_gate_biases_and_closes_the_lstm_input_gate() {
    let (h, t_max) = (64, 200.0);
    let _seeded = rnnlab::rng::torch_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let init = InitConfig { chrono: Some(t_max), ..Default::default() };
    let r = Recurrent::new(&vs.root(), 4, &ModelConfig { init: init.clone(), ..spec(CellKind::Lstm, h, 1, false) });
    let [_, _, b_ih, b_hh] = &r.weights[0];
    let forget = Vec::<f64>::try_from(b_ih.narrow(0, h, h).to_kind(Kind::Double)).unwrap();
    let input = Vec::<f64>::try_from(b_ih.narrow(0, 0, h).to_kind(Kind::Double)).unwrap();
    let (lo, hi) = (0.0, (t_max - 1.0).ln());
    assert!(forget.iter().all(|b| (lo..=hi).contains(b)), "forget biases outside [0, ln(T-1)]: {forget:?}");
    // ln U(1, 199): the median unit remembers ~100 steps, and the units differ (a spread of timescales).
    let spread =
        forget.iter().cloned().fold(f64::NEG_INFINITY, f64::max) - forget.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(spread > 1.0, "forget biases barely differ: spread {spread}");
    assert!(forget.iter().zip(&input).all(|(f, i)| *i == -*f), "input bias is not minus the forget bias");
    assert_eq!(b_hh.narrow(0, 0, 2 * h).abs().sum(Kind::Float).double_value(&[]), 0.0);
    // Cell and output gates keep the uniform init.
    let k = 1.0 / (h as f64).sqrt();
    assert!(b_ih.narrow(0, 2 * h, 2 * h).abs().max().double_value(&[]) <= k);
    // GRU: the update gate (second block) gets the same spread of ln U(1, T − 1); reset and new blocks do not.
    let vs = nn::VarStore::new(Device::Cpu);
    let r = Recurrent::new(&vs.root(), 4, &ModelConfig { init: init.clone(), ..spec(CellKind::Gru, h, 1, false) });
    let [_, _, b_ih, b_hh] = &r.weights[0];
    let update = Vec::<f64>::try_from(b_ih.narrow(0, h, h).to_kind(Kind::Double)).unwrap();
    assert!(update.iter().all(|b| (lo..=hi).contains(b)), "update biases outside [0, ln(T-1)]: {update:?}");
    let mean = update.iter().sum::<f64>() / h as f64;
    assert!(mean > 3.0, "update biases too small to keep the state: mean {mean}");
    assert_eq!(b_hh.narrow(0, h, h).abs().sum(Kind::Float).double_value(&[]), 0.0);
    for block in [0, 2] {
        assert!(b_ih.narrow(0, block * h, h).abs().max().double_value(&[]) <= k, "GRU block {block} changed");
    }
    // The vanilla RNN has no gate: the option leaves it as it is.
    let vs = nn::VarStore::new(Device::Cpu);
    let r = Recurrent::new(&vs.root(), 4, &ModelConfig { init: init.clone(), ..spec(CellKind::Rnn, h, 1, false) });
    assert!(r.weights[0][2].abs().max().double_value(&[]) <= k, "rnn: chrono changed its biases");
}
