//! The gradient probe: finite differences, an exactly solvable recurrence, the CSV schema, clipping logs.
mod common;
use rnnlab::config::Impl;
use rnnlab::config::{CellKind, ModelConfig};
use rnnlab::data::{Example, Pad, Spans, Split};
use rnnlab::model::Classifier;
use rnnlab::probe::{self, grads_wrt, norms_by_distance, probe_loss};
use rnnlab::stats::decay_fit;
use tch::{nn, Device, Kind, Tensor};

#[test]
fn input_gradients_match_finite_differences_in_f64() {
    for cell in CellKind::ALL {
        let _seeded = rnnlab::rng::torch_seed(5);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig { cell, embed_dim: 3, hidden: 4, layers: 2, bidirectional: true, ..Default::default() };
        let model = Classifier::new(&vs.root(), &cfg, 6, 3);
        vs.double();
        let ex = [Example { tokens: vec![1, 2, 3, 4, 5], label: 2 }, Example { tokens: vec![5, 4, 1], label: 0 }];
        let split = Split::new("x", &ex, Pad::Post);
        let batch = split.batch(&[0, 1], Device::Cpu);
        let g = probe::input_grad(&model, &batch);
        assert_eq!(g.size(), vec![2, 5, 3]);
        let x = model.embed(&batch.tokens).detach();
        let loss_at = |x: &Tensor| {
            probe_loss(&model.logits_from(x, &batch, false, Impl::Libtorch), &batch.targets).double_value(&[])
        };
        let eps = 1e-6;
        for (b, t, f) in [(0, 0, 0), (0, 2, 1), (0, 4, 2), (1, 0, 1), (1, 2, 0)] {
            let bump = |s: f64| {
                let xp = x.copy();
                let _ = xp.get(b).get(t).get(f).fill_(x.double_value(&[b, t, f]) + s);
                loss_at(&xp)
            };
            let fd = (bump(eps) - bump(-eps)) / (2.0 * eps);
            let an = g.double_value(&[b, t, f]);
            assert!(
                (fd - an).abs() <= 1e-6 * (1.0 + an.abs()),
                "{cell} ({b},{t},{f}): finite difference {fd} vs probe {an}"
            );
        }
        // Padding steps of the short sequence get no gradient.
        assert_eq!(g.get(1).narrow(0, 3, 2).abs().sum(Kind::Double).double_value(&[]), 0.0);
    }
}

#[test]
fn linear_recurrence_gives_powers_of_w() {
    // h_t = w h_{t-1} + x_t, L = h_T  ⇒  ∂L/∂h_t = w^(T-t).
    let (w, t_len) = (0.8f64, 12i64);
    let x = Tensor::randn([1, t_len, 1], (Kind::Double, Device::Cpu));
    let mut h = Tensor::zeros([1, 1], (Kind::Double, Device::Cpu)).set_requires_grad(true);
    let mut hs = Vec::new();
    for t in 0..t_len {
        h = &h * w + x.select(1, t);
        hs.push(h.shallow_clone());
    }
    let loss = h.sum(Kind::Double);
    let g = grads_wrt(&loss, &hs);
    let batch_spans = Spans { start: Tensor::from_slice(&[0i64]), len: Tensor::from_slice(&[t_len]) };
    let batch = rnnlab::data::Batch {
        tokens: Tensor::zeros([1, t_len], (Kind::Int64, Device::Cpu)),
        spans: batch_spans,
        targets: Tensor::from_slice(&[0i64]),
        cond: None,
        chars: None,
    };
    for (d, norm) in norms_by_distance(&g, &batch) {
        let expected = w.powi(d as i32);
        assert!((norm - expected).abs() < 1e-12, "distance {d}: {norm} vs w^{d} = {expected}");
    }
    assert_eq!(norms_by_distance(&g, &batch).len(), t_len as usize);
    let (slope, r2) = decay_fit(&norms_by_distance(&g, &batch));
    assert!((slope - w.log10()).abs() < 1e-12 && (r2 - 1.0).abs() < 1e-12);
}

#[test]
fn grad_norms_csv_schema_and_clipping_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = common::point("r", CellKind::Gru, 2, true);
    (p.cfg.data.length, p.cfg.data.n_train, p.cfg.data.n_val, p.cfg.data.n_test) = (8, 200, 50, 50);
    (p.cfg.train.lr, p.cfg.train.clip, p.cfg.probe.every) = (0.05, Some(0.5), 7);
    let meta = common::train(dir.path(), &p, false).unwrap();
    assert!(meta.result["probe_s"] > 0.0);
    let text = std::fs::read_to_string(dir.path().join("t/r/grad_norms.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("step,model,layer,t,distance_to_readout,quantity,norm"));
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(String::from).collect()).collect();
    let steps: std::collections::BTreeSet<usize> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    // 7 steps per epoch × 2: probes at 0, every 7 steps, and the end — the last step only once.
    assert_eq!(steps.into_iter().collect::<Vec<_>>(), vec![0, 7, 14]);
    for q in ["dl_dx", "dl_dh"] {
        assert_eq!(
            rows.iter().filter(|r| r[0] == "14" && r[5] == q).count(),
            8,
            "{q}: the final probe is written twice"
        );
        let at0: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "0" && r[5] == q).collect();
        assert_eq!(at0.len(), 8, "{q}: one row per distance 0..7");
        assert!(at0
            .iter()
            .all(|r| r[1] == "gru" && r[2] == "0" && r[3].parse::<i64>().unwrap() + r[4].parse::<i64>().unwrap() == 7));
        assert!(at0.iter().all(|r| r[6].parse::<f64>().unwrap() > 0.0));
    }
    let steps = std::fs::read_to_string(dir.path().join("t/r/steps.csv")).unwrap();
    let mut clipped = 0;
    for l in steps.lines().skip(1) {
        let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
        let (before, after) = (v[3], v[4]);
        assert!(after <= 0.5 + 1e-5, "clipped norm {after} above 0.5");
        if before > 0.5 {
            clipped += 1;
        } else {
            assert!((before - after).abs() < 1e-6);
        }
    }
    assert!(clipped > 0, "no step needed clipping; the test does not test clipping");
}
