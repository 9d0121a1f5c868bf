//! The fused vanilla RNN, GRU and LSTM (`model.impl: fused`) against libtorch's kernels: outputs and every gradient
//! (weights, inputs, initial state) on random sizes and lengths, 1-2 layers, one or two directions; 1e-5 relative
//! in float32, 1e-10 in float64.
use rnnlab::config::{CellKind, Impl, InputKind, ModelConfig};
use rnnlab::data::{Example, Pad, Spans, Split};
use rnnlab::model::{backward, build, rows, Recurrent, State};
use rnnlab::rng::Rng;
use tch::{nn, Device, Kind, Tensor};

/// max |a − b| / max |b| (0 when both vanish).
fn rel(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a - b).abs().max().double_value(&[]);
    let m = b.abs().max().double_value(&[]);
    if m == 0.0 {
        d
    } else {
        d / m
    }
}

fn tolerance(kind: Kind) -> f64 {
    if kind == Kind::Float {
        1e-5
    } else {
        1e-10
    }
}

/// Zeroes every gradient of the store (and of `extra`).
fn zero(vs: &nn::VarStore, extra: &[&Tensor]) {
    for v in vs.trainable_variables().iter().chain(extra.iter().copied()) {
        let mut g = v.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
}

/// Fused against libtorch on random shapes (batches of 1..=max_b), 1-2 layers, 1-2 directions, both cells and
/// floats, with the batch's rows split into `groups` (None: the default for the thread count).
fn fused_agrees_with_libtorch(groups: Option<usize>, max_b: u64, seed: u64) {
    rows::set_groups(groups);
    let mut rng = Rng::new(seed);
    for kind in [Kind::Float, Kind::Double] {
        for cell in [CellKind::Gru, CellKind::Rnn, CellKind::Lstm] {
            for (layers, bi) in [(1, false), (2, false), (1, true), (2, true)] {
                for _ in 0..3 {
                    let (b, t) = (1 + rng.below(max_b) as i64, 1 + rng.below(25) as i64);
                    let (input, hidden) = (1 + rng.below(12) as i64, 1 + rng.below(24) as i64);
                    let lengths: Vec<i64> =
                        (0..b).map(|i| if i == 0 { t } else { 1 + rng.below(t as u64) as i64 }).collect();
                    let spans = Spans {
                        start: Tensor::zeros([b], (Kind::Int64, Device::Cpu)),
                        len: Tensor::from_slice(&lengths),
                    };
                    let _seeded = rnnlab::rng::torch_seed(rng.below(1000) as i64);
                    let mut vs = nn::VarStore::new(Device::Cpu);
                    let cfg = ModelConfig { cell, hidden, layers, bidirectional: bi, ..Default::default() };
                    let r = Recurrent::new(&vs.root(), input, &cfg);
                    if kind == Kind::Double {
                        vs.double();
                    }
                    let x = Tensor::randn([b, t, input], (kind, Device::Cpu)).set_requires_grad(true);
                    let dirs = if bi { 2 } else { 1 };
                    let probe = Tensor::randn([b, t, hidden * dirs], (kind, Device::Cpu));
                    let run = |imp: Impl| -> (Tensor, Vec<Tensor>, Tensor) {
                        zero(&vs, &[&x]);
                        let out = r.forward(&x, Some(&spans), true, imp);
                        // The fused path really ran: one recorded call per layer and direction.
                        let fused = if imp == Impl::Fused { layers * dirs } else { 0 };
                        assert_eq!(r.tape.len() as i64, fused, "{cell} {imp:?}: calls on the fused tape");
                        let loss = (&out * &probe).sum(Kind::Double);
                        backward(&loss).unwrap();
                        assert!(r.tape.is_empty(), "the tape is consumed by backward");
                        let grads = r.weights.iter().flatten().map(|w| w.grad().copy()).collect();
                        (out.detach(), grads, x.grad().copy())
                    };
                    let (of, gf, xf) = run(Impl::Fused);
                    let (ol, gl, xl) = run(Impl::Libtorch);
                    let what = format!(
                        "{cell} {kind:?} B={b} T={t} I={input} H={hidden} layers={layers} bi={bi} groups={groups:?}"
                    );
                    let tol = tolerance(kind);
                    assert!(rel(&of, &ol) < tol, "{what}: outputs differ by {:e}", rel(&of, &ol));
                    for (i, (a, l)) in gf.iter().zip(&gl).enumerate() {
                        assert!(rel(a, l) < tol, "{what}: gradient of weight {i} differs by {:e}", rel(a, l));
                    }
                    assert!(rel(&xf, &xl) < tol, "{what}: input gradients differ by {:e}", rel(&xf, &xl));
                }
            }
        }
    }
    rows::set_groups(None);
}

#[test]
fn fused_forward_and_gradients_equal_libtorch() {
    // Libtorch's GEMM at every step (the path without BLAS symbols), and BLAS called directly in one group.
    fused_agrees_with_libtorch(Some(0), 7, 11);
    fused_agrees_with_libtorch(Some(1), 7, 14);
}

#[test]
fn rows_split_over_threads_equal_libtorch() {
    // The batch's rows in 2 and 3 groups, each carried through every step by its own thread with direct BLAS calls.
    assert!(rows::available(), "the loaded libtorch exports MKL's sgemm_/dgemm_ (the PyPI wheel does)");
    fused_agrees_with_libtorch(Some(2), 40, 12);
    fused_agrees_with_libtorch(Some(3), 40, 13);
}

#[test]
fn fused_state_path_carries_the_initial_state_gradient() {
    // forward_state (language models, truncated BPTT) from a given state, 2 layers: the final state is used too.
    for (kind, groups) in [(Kind::Float, 0), (Kind::Double, 0), (Kind::Float, 2), (Kind::Double, 3)] {
        rows::set_groups(Some(groups));
        for cell in [CellKind::Gru, CellKind::Rnn, CellKind::Lstm] {
            let _seeded = rnnlab::rng::torch_seed(3);
            let mut vs = nn::VarStore::new(Device::Cpu);
            let mut r =
                Recurrent::new(&vs.root(), 4, &ModelConfig { cell, hidden: 5, layers: 2, ..Default::default() });
            if kind == Kind::Double {
                vs.double();
            }
            let x = Tensor::randn([3, 9, 4], (kind, Device::Cpu)).set_requires_grad(true);
            let h0 = Tensor::randn([2, 3, 5], (kind, Device::Cpu)).set_requires_grad(true);
            // The LSTM carries its cell state too: from a given c_0, and the final c used by the loss.
            let c0 = Tensor::randn([2, 3, 5], (kind, Device::Cpu)).set_requires_grad(true);
            let (p1, p2, p3) = (
                Tensor::randn([3, 9, 5], (kind, Device::Cpu)),
                Tensor::randn([2, 3, 5], (kind, Device::Cpu)),
                Tensor::randn([2, 3, 5], (kind, Device::Cpu)),
            );
            let lstm = cell == CellKind::Lstm;
            let state = State { h: h0.shallow_clone(), c: lstm.then(|| c0.shallow_clone()) };
            let mut results = Vec::new();
            for imp in [Impl::Fused, Impl::Libtorch] {
                zero(&vs, &[&x, &h0, &c0]);
                r.imp = imp;
                let (out, s) = r.forward_state(&x, Some(&state), true);
                let mut loss = (&out * &p1).sum(Kind::Double) + (&s.h * &p2).sum(Kind::Double);
                if let Some(c) = &s.c {
                    loss += (c * &p3).sum(Kind::Double);
                }
                backward(&loss).unwrap();
                let mut got: Vec<Tensor> = vec![out.detach(), s.h.detach(), x.grad().copy(), h0.grad().copy()];
                if lstm {
                    got.extend([s.c.as_ref().unwrap().detach(), c0.grad().copy()]);
                }
                got.extend(r.weights.iter().flatten().map(|w| w.grad().copy()));
                results.push(got);
            }
            for (i, (a, l)) in results[0].iter().zip(&results[1]).enumerate() {
                assert!(
                    rel(a, l) < tolerance(kind),
                    "{cell} {kind:?} groups {groups}: item {i} differs by {:e}",
                    rel(a, l)
                );
            }
        }
    }
    rows::set_groups(None);
}

#[test]
fn work_buffers_reused_step_after_step_are_never_shared() {
    // Work buffers are reused from step to step, a longer batch's serving a shorter one. The RNN's and LSTM's
    // hidden-side gate gradients alias their input side's, and were once recycled twice: from the third step two
    // buffers shared memory and the gradients went wrong (the 2-layer Shakespeare RNN's validation loss read 2.38
    // where it is 2.05). Each step here is checked against libtorch, with the weights moved in between; the lengths
    // repeat, shrink (a buffer's front serves) and grow (new buffers).
    for cell in [CellKind::Rnn, CellKind::Gru, CellKind::Lstm] {
        for bidirectional in [false, true] {
            let _seeded = rnnlab::rng::torch_seed(5);
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = ModelConfig { cell, hidden: 6, layers: 2, bidirectional, ..Default::default() };
            let mut r = Recurrent::new(&vs.root(), 6, &cfg);
            let dirs = if bidirectional { 2 } else { 1 };
            for (step, t_len) in [7, 7, 7, 3, 9, 5, 9].into_iter().enumerate() {
                let x = Tensor::randn([4, t_len, 6], (Kind::Float, Device::Cpu)).set_requires_grad(true);
                let p = Tensor::randn([4, t_len, 6 * dirs], (Kind::Float, Device::Cpu));
                let mut results = Vec::new();
                for imp in [Impl::Fused, Impl::Libtorch] {
                    zero(&vs, &[&x]);
                    r.imp = imp;
                    let out = r.forward(&x, None, true, imp);
                    backward(&(&out * &p).sum(Kind::Double)).unwrap();
                    let mut got = vec![out.detach(), x.grad().copy()];
                    got.extend(r.weights.iter().flatten().map(|w| w.grad().copy()));
                    results.push(got);
                }
                for (i, (a, l)) in results[0].iter().zip(&results[1]).enumerate() {
                    let e = rel(a, l);
                    assert!(e < 1e-5, "{cell} bidirectional {bidirectional}, step {step}: item {i} differs by {e:e}");
                }
                tch::no_grad(|| {
                    for w in vs.trainable_variables() {
                        let _ = w.shallow_clone().g_add_(&(w.randn_like() * 0.1));
                    }
                });
            }
        }
    }
}

#[test]
fn work_buffers_stay_within_the_longest_step_s_as_lengths_change() {
    // Bucketed batches change length every step: a longer batch's buffers serve the shorter ones, so the pool
    // holds one step's worth at the longest length, not a set per length seen (imdb GRU: 780 → 365 MB peak).
    let _seeded = rnnlab::rng::torch_seed(6);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = ModelConfig { cell: CellKind::Gru, hidden: 32, ..Default::default() };
    let r = Recurrent::new(&vs.root(), 8, &cfg);
    let mut pooled = Vec::new();
    for t_len in [400, 10, 300, 400, 50, 399, 400] {
        let x = Tensor::randn([16, t_len, 8], (Kind::Float, Device::Cpu));
        let out = r.forward(&x, None, true, Impl::Fused);
        backward(&out.sum(Kind::Double)).unwrap();
        pooled.push(r.tape.pooled_bytes());
    }
    assert!(pooled[0] >= 400 * 16 * 96 * 4, "the pool keeps the step's buffers ([400·16, 3·32] floats…): {pooled:?}");
    assert!(pooled.iter().all(|&p| p == pooled[0]), "the pool grew past the longest step's buffers: {pooled:?}");
}

#[test]
fn a_classifier_trains_the_same_with_either_implementation() {
    // The whole step (embedding, dropout-free recurrence, pool readout, head): every variable's gradient.
    for cell in [CellKind::Gru, CellKind::Rnn, CellKind::Lstm] {
        let ex: Vec<Example> = (0..6)
            .map(|i| Example { tokens: (1..=(3 + i)).map(|t| 1 + (t * 7 + i) % 9).collect(), label: i % 3 })
            .collect();
        let split = Split::new("x", &ex, Pad::Post);
        let batch = split.batch(&[0, 1, 2, 3, 4, 5], Device::Cpu);
        let shape = rnnlab::data::Shape::classes(10, vec!["a".into(), "b".into(), "c".into()]);
        let grads = |imp: Impl| -> (f64, Vec<Tensor>) {
            let _seeded = rnnlab::rng::torch_seed(4);
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = ModelConfig {
                cell,
                imp,
                input: InputKind::Embedding,
                embed_dim: 5,
                hidden: 7,
                bidirectional: true,
                readout: rnnlab::config::Readout::Pool,
                ..Default::default()
            };
            let m = build(&vs.root(), &cfg, &shape);
            let s = m.objective().stats(&batch, true);
            backward(&s.loss).unwrap();
            let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            (s.loss.double_value(&[]), vars.iter().map(|(_, v)| v.grad().copy()).collect())
        };
        let ((lf, gf), (ll, gl)) = (grads(Impl::Fused), grads(Impl::Libtorch));
        assert!((lf - ll).abs() < 1e-6, "{cell}: losses {lf} vs {ll}");
        for (i, (a, b)) in gf.iter().zip(&gl).enumerate() {
            assert!(a.defined() && rel(a, b) < 1e-5, "{cell}: variable {i} gradient differs by {:e}", rel(a, b));
        }
    }
}

#[test]
fn row_groups_give_the_same_bits_whatever_their_number() {
    // Rows never interact, and MKL computes a row the same way whatever the group's size: splitting the batch
    // over threads (or calling BLAS directly) must not change a single bit of the outputs and of the chain through
    // time, so results do not depend on threads. The weight gradients are split over their rows, each value one
    // GEMM over all steps on one thread: the same bits for any number of groups, and within rounding of libtorch's
    // product (which splits the steps over threads and adds the partial sums).
    for cell in [CellKind::Gru, CellKind::Rnn, CellKind::Lstm] {
        let _seeded = rnnlab::rng::torch_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let r = Recurrent::new(&vs.root(), 64, &ModelConfig { cell, hidden: 128, ..Default::default() });
        let x = Tensor::randn([64, 30, 64], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let probe = Tensor::randn([64, 30, 128], (Kind::Float, Device::Cpu));
        let run = |groups: usize| -> Vec<Tensor> {
            rows::set_groups(Some(groups));
            zero(&vs, &[&x]);
            let out = r.forward(&x, None, true, Impl::Fused);
            backward(&(&out * &probe).sum(Kind::Double)).unwrap();
            let mut v = vec![out.detach(), x.grad().copy()];
            v.extend(r.weights.iter().flatten().map(|w| w.grad().copy()));
            v
        };
        // Items: the output, ∂L/∂x, then ∂L/∂[w_ih, w_hh, b_ih, b_hh].
        let reference = run(1);
        for groups in [2, 3] {
            for (i, (a, b)) in reference.iter().zip(run(groups)).enumerate() {
                assert!(a.equal(&b), "{cell}, {groups} groups: item {i} differs from 1 group's");
            }
        }
        for (i, (a, b)) in reference.iter().zip(run(0)).enumerate() {
            if i == 2 || i == 3 {
                assert!(rel(a, &b) < 1e-6, "{cell}: weight gradient {i} differs by {:e}", rel(a, &b));
            } else {
                assert!(a.equal(&b), "{cell}: item {i} differs from libtorch's per-step GEMM");
            }
        }
    }
    rows::set_groups(None);
}

#[test]
fn a_panic_in_a_thread_of_the_recurrence_is_an_error_and_bad_buffers_are_refused() {
    use rnnlab::model::fused::rows::{forward, in_groups, Dims, ForwardBuffers};
    assert!(rows::available());
    // A group that panics inside libtorch's OpenMP region: the others finish, the caller gets an error naming it,
    // and the process goes on (a panic unwinding through the OpenMP runtime would abort it).
    let done = std::sync::atomic::AtomicUsize::new(0);
    let err = in_groups(64, 2, |r0, r1| {
        if r0 > 0 {
            panic!("boom in rows {r0}..{r1}");
        }
        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("boom in rows 32..64"), "{err:#}");
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(in_groups(64, 2, |_, _| {}).is_ok(), "the pool still works after a caught panic");
    // Buffers that do not match the sizes are refused before any thread starts, naming the buffer.
    let d = Dims { t: 3, b: 2, h: 4 };
    let (gx, w_hh, b_hh) = (vec![0f32; 3 * 2 * 12], vec![0f32; 12 * 4], vec![0f32; 12]);
    let (mut hs, mut saved) = (vec![0f32; 4 * 2 * 4 - 1], vec![0f32; 3 * 2 * 16]);
    let buf = ForwardBuffers { gx: &gx, w_hh: &w_hh, b_hh: &b_hh, hs: &mut hs, saved: &mut saved, cs: None };
    let err = format!("{:#}", forward(CellKind::Gru, d, 2, buf).unwrap_err());
    assert!(err.contains("hs holds 31 values, 32 expected"), "{err}");
}

#[test]
fn the_default_runs_the_fused_kernels_for_every_cell() {
    // `model.impl: auto` (the default): docs/performance.md measured the fused kernels faster in training than
    // libtorch's, the LSTM's oneDNN kernel included, on AVX2 and AVX-512 CPUs.
    assert_eq!(ModelConfig::default().imp, Impl::Auto);
    assert_eq!(Impl::Auto.resolve(), Impl::Fused);
    for cell in [CellKind::Rnn, CellKind::Gru, CellKind::Lstm] {
        let _seeded = rnnlab::rng::torch_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let r = Recurrent::new(&vs.root(), 3, &ModelConfig { cell, hidden: 4, ..Default::default() });
        let x = Tensor::randn([2, 5, 3], (Kind::Float, Device::Cpu));
        // The calls stay on the tape while their graph (the output) lives.
        let out = r.forward(&x, None, true, r.imp);
        assert!(!r.tape.is_empty(), "{cell}: the fused kernels ran");
        drop(out);
        assert!(r.tape.is_empty(), "{cell}: a dropped graph frees its calls");
    }
}
