//! Encoder–decoders: attention weights sum to 1 and are 0 on padding, decoding a batch equals decoding one by
//! one (greedy and beam), a beam of width 1 is greedy, a Luong decoder's one-call teacher-forced pass equals its
//! step-by-step decoding and its fused gradients equal libtorch's, and a tiny copy task is learned (both
//! decoders).
use rnnlab::config::{Attention, CellKind, DecoderKind, Impl, ModelConfig, ModelKind, TrainConfig};
use rnnlab::data::{Batch, Dataset, Shape, Split};
use rnnlab::model::seq2seq::EOS;
use rnnlab::model::{Objective, Seq2Seq};
use rnnlab::results::{Opened, RunDir};
use rnnlab::rng::Rng;
use rnnlab::train::fit;
use tch::{nn, Device, Kind};

fn model(cell: CellKind, attention: Attention, vs: &nn::VarStore) -> Seq2Seq {
    model_with(cell, attention, DecoderKind::Bahdanau, Impl::Fused, vs)
}

fn model_with(cell: CellKind, attention: Attention, decoder: DecoderKind, imp: Impl, vs: &nn::VarStore) -> Seq2Seq {
    let cfg = ModelConfig {
        kind: ModelKind::Seq2seq,
        cell,
        imp,
        embed_dim: 12,
        hidden: 24,
        bidirectional: true,
        attention,
        decoder,
        ..Default::default()
    };
    Seq2Seq::new(&vs.root(), &cfg, 13, 13)
}

/// Copy pairs: a random string of symbols 2..12 and the same string as targets (ids + 1, then the end id).
fn pairs(n: usize, lens: (u64, u64), rng: &mut Rng) -> (Vec<Vec<i64>>, Vec<Vec<i64>>) {
    (0..n)
        .map(|_| {
            let len = lens.0 + rng.below(lens.1 - lens.0 + 1);
            let x: Vec<i64> = (0..len).map(|_| 2 + rng.below(10) as i64).collect();
            let y: Vec<i64> = x.iter().map(|t| t + 1).chain([EOS]).collect();
            (x, y)
        })
        .unzip()
}

fn batch_of(xs: &[Vec<i64>], ys: &[Vec<i64>]) -> Batch {
    let s = Split::pairs("x", xs, ys);
    let idx: Vec<i64> = (0..xs.len() as i64).collect();
    s.batch(&idx, Device::Cpu)
}

#[test]
fn attention_weights_sum_to_one_and_skip_padding() {
    for attention in [Attention::Additive, Attention::Dot] {
        let _seeded = rnnlab::rng::torch_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = model(CellKind::Gru, attention, &vs);
        let (xs, ys) = pairs(4, (2, 9), &mut Rng::new(3));
        let batch = batch_of(&xs, &ys);
        let (_, alphas) = m.greedy(&batch, 6);
        let a = alphas.expect("attention weights");
        let sums = a.sum_dim_intlist([2].as_slice(), false, Kind::Double);
        assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-6, "{attention:?}: rows do not sum to 1");
        let s = a.size()[2];
        for (i, x) in xs.iter().enumerate() {
            let pad = a.get(i as i64).narrow(1, x.len() as i64, s - x.len() as i64);
            assert_eq!(pad.abs().sum(Kind::Double).double_value(&[]), 0.0, "{attention:?}: weight on padding");
        }
    }
}

#[test]
fn decoding_a_batch_equals_decoding_one_by_one() {
    for (cell, attention, decoder) in [
        (CellKind::Gru, Attention::Additive, DecoderKind::Bahdanau),
        (CellKind::Lstm, Attention::Dot, DecoderKind::Bahdanau),
        (CellKind::Rnn, Attention::None, DecoderKind::Bahdanau),
        (CellKind::Gru, Attention::Dot, DecoderKind::Luong),
        (CellKind::Lstm, Attention::Additive, DecoderKind::Luong),
    ] {
        let _seeded = rnnlab::rng::torch_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = model_with(cell, attention, decoder, Impl::Fused, &vs);
        let (xs, ys) = pairs(5, (1, 10), &mut Rng::new(4));
        let batch = batch_of(&xs, &ys);
        let (together, _) = m.greedy(&batch, 8);
        for i in 0..xs.len() {
            let single = batch_of(&xs[i..=i], &ys[i..=i]);
            let (alone, _) = m.greedy(&single, 8);
            let n = alone.size()[1];
            let mut row: Vec<i64> = Vec::try_from(together.get(i as i64)).unwrap();
            row.truncate(n as usize);
            assert_eq!(row, Vec::<i64>::try_from(alone.get(0)).unwrap(), "{cell} {attention:?} row {i}");
            // The beam search of one row alone and in a batch agree, and width 1 is greedy.
            let beam1 = m.beam(&batch, i as i64, 1, 8).0;
            assert!(row.iter().all(|&t| t != 1), "the start id is never written");
            let greedy: Vec<i64> = row.iter().copied().take_while(|&t| t != 0).collect();
            let upto = greedy.iter().position(|&t| t == EOS).map_or(greedy.len(), |p| p + 1);
            assert_eq!(beam1, greedy[..upto].to_vec(), "{cell} {attention:?}: beam 1 vs greedy, row {i}");
            assert_eq!(m.beam(&batch, i as i64, 3, 8).0, m.beam(&single, 0, 3, 8).0);
        }
    }
}

#[test]
fn a_luong_decoder_in_one_call_equals_its_steps_and_its_fused_gradients_equal_libtorchs() {
    for (cell, attention) in
        [(CellKind::Gru, Attention::Dot), (CellKind::Rnn, Attention::Additive), (CellKind::Gru, Attention::None)]
    {
        let (xs, ys) = pairs(6, (1, 9), &mut Rng::new(8));
        let batch = batch_of(&xs, &ys);
        let grads = |imp: Impl| -> (tch::Tensor, Vec<(String, tch::Tensor)>) {
            let _seeded = rnnlab::rng::torch_seed(4);
            let vs = nn::VarStore::new(Device::Cpu);
            let m = model_with(cell, attention, DecoderKind::Luong, imp, &vs);
            // Teacher-forced in one call against step by step on the true previous tokens (no dropout: eval).
            let one = m.forward(&batch, false, 1.0);
            let enc = m.encode(&batch, false);
            let mut state = m.start(&enc);
            let mut prev = tch::Tensor::full([xs.len() as i64], 1, (Kind::Int64, Device::Cpu));
            for t in 0..batch.targets.size()[1] {
                let (l, s, _) = m.step(&prev, &state, &enc, false);
                let d = (&l - one.select(1, t)).abs().max().double_value(&[]);
                assert!(d < 1e-5, "{cell} {attention:?}: step {t} differs from the one-call pass by {d}");
                state = s;
                prev = batch.targets.select(1, t);
            }
            let s = m.stats(&batch, true);
            rnnlab::model::backward(&s.loss).unwrap();
            let mut v: Vec<(String, tch::Tensor)> =
                vs.variables().into_iter().map(|(k, t)| (k, t.grad().copy())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            (s.loss.detach(), v)
        };
        let ((lf, gf), (ll, gl)) = (grads(Impl::Fused), grads(Impl::Libtorch));
        assert!((&lf - &ll).abs().double_value(&[]) < 1e-6, "{cell}: losses differ");
        for ((name, a), (_, b)) in gf.iter().zip(&gl) {
            assert!(a.defined(), "{cell} {attention:?}: no gradient for {name}");
            let d = (a - b).abs().max().double_value(&[]) / b.abs().max().double_value(&[]).max(1e-12);
            assert!(d < 1e-4, "{cell} {attention:?}: gradient of {name} differs by {d:e} (fused vs libtorch)");
        }
    }
}

#[test]
fn a_tiny_copy_task_is_learned() {
    let mut rng = Rng::new(5);
    let (xs, ys) = pairs(1500, (3, 7), &mut rng);
    let (vx, vy) = pairs(200, (3, 7), &mut rng);
    let shape = Shape::classes(13, (0..13).map(|i| i.to_string()).collect());
    let data = Dataset {
        train: Split::pairs("train", &xs, &ys),
        val: None,
        test: Some(Split::pairs("test", &vx, &vy)),
        shape,
    };
    for decoder in [DecoderKind::Bahdanau, DecoderKind::Luong] {
        let _seeded = rnnlab::rng::torch_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = model_with(CellKind::Gru, Attention::Additive, decoder, Impl::Fused, &vs);
        let dir = tempfile::tempdir().unwrap();
        let Opened::New(mut run) = RunDir::open(dir.path(), "t", "copy", "x", 3, Default::default(), false).unwrap()
        else {
            panic!()
        };
        let cfg = TrainConfig { epochs: 12, batch_size: 32, lr: 0.01, seed: 3, ..Default::default() };
        let out = fit(&m as &dyn Objective, &vs, &data, &cfg, cfg.lr, &mut run, None).unwrap();
        assert!(out.result["test_acc"] > 0.99, "{decoder:?}: teacher-forced token accuracy {}", out.result["test_acc"]);
        let test = data.test.as_ref().unwrap();
        let batch = test.batch(&(0..200).collect::<Vec<i64>>(), Device::Cpu);
        let (ids, _) = m.greedy(&batch, 10);
        let exact = vy.iter().enumerate().filter(|(i, y)| {
            let row: Vec<i64> = Vec::try_from(ids.get(*i as i64)).unwrap();
            row.len() >= y.len() && row[..y.len()] == y[..]
        });
        let exact = exact.count();
        assert!(exact >= 195, "{decoder:?}: only {exact} of 200 copied exactly by greedy decoding");
    }
}
