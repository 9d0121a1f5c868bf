//! Encoder–decoders: attention weights sum to 1 and are 0 on padding, decoding a batch equals decoding one by
//! one (greedy and beam), a beam of width 1 is greedy, and a tiny copy task is learned.
use rnnlab::config::{Attention, CellKind, ModelConfig, ModelKind, TrainConfig};
use rnnlab::data::{Batch, Dataset, Shape, Split};
use rnnlab::model::seq2seq::EOS;
use rnnlab::model::{Objective, Seq2Seq};
use rnnlab::results::{Opened, RunDir};
use rnnlab::rng::Rng;
use rnnlab::train::fit;
use std::collections::BTreeMap;
use tch::{nn, Device, Kind};

fn model(cell: CellKind, attention: Attention, vs: &nn::VarStore) -> Seq2Seq {
    let cfg = ModelConfig {
        kind: ModelKind::Seq2seq,
        cell,
        embed_dim: 12,
        hidden: 24,
        bidirectional: true,
        attention,
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
    for (cell, attention) in
        [(CellKind::Gru, Attention::Additive), (CellKind::Lstm, Attention::Dot), (CellKind::Rnn, Attention::None)]
    {
        let _seeded = rnnlab::rng::torch_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = model(cell, attention, &vs);
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
    let _seeded = rnnlab::rng::torch_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = model(CellKind::Gru, Attention::Additive, &vs);
    let dir = tempfile::tempdir().unwrap();
    let Opened::New(mut run) = RunDir::open(dir.path(), "t", "copy", "x", 3, BTreeMap::new(), false).unwrap() else {
        panic!()
    };
    let cfg = TrainConfig { epochs: 12, batch_size: 32, lr: 0.01, seed: 3, ..Default::default() };
    let out = fit(&m as &dyn Objective, &vs, &data, &cfg, cfg.lr, &mut run, None).unwrap();
    assert!(out.result["test_acc"] > 0.99, "teacher-forced token accuracy {}", out.result["test_acc"]);
    let test = data.test.unwrap();
    let batch = test.batch(&(0..200).collect::<Vec<i64>>(), Device::Cpu);
    let (ids, _) = m.greedy(&batch, 10);
    let exact = vy.iter().enumerate().filter(|(i, y)| {
        let row: Vec<i64> = Vec::try_from(ids.get(*i as i64)).unwrap();
        row.len() >= y.len() && row[..y.len()] == y[..]
    });
    let exact = exact.count();
    assert!(exact >= 195, "only {exact} of 200 copied exactly by greedy decoding");
}
