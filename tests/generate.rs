//! Language models and sampling: perplexity of a uniform model, temperature → 0 is greedy, seeded samples,
//! language errors.
mod common;
use rnnlab::config::{CellKind, InputKind, ModelConfig};
use rnnlab::data::names::{self, NamesConfig};
use rnnlab::data::text::{self, NAME_VOCAB};
use rnnlab::model::lm::Pick;
use rnnlab::model::{LanguageModel, Objective};
use rnnlab::rng::Rng;
use rnnlab::sample::{language_id, sample_name};
use tch::{nn, Device, Tensor};

fn names_data() -> rnnlab::data::Dataset {
    let cfg = NamesConfig { dir: common::test_data().join("names"), ..Default::default() };
    text::names_lm(&cfg, 0).unwrap().0
}

#[test]
fn a_uniform_model_has_the_alphabet_size_as_perplexity() {
    let ds = names_data();
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = ModelConfig { cell: CellKind::Gru, input: InputKind::Onehot, hidden: 8, ..Default::default() };
    let lm = LanguageModel::new(&vs.root(), &cfg, NAME_VOCAB, 18, false);
    tch::no_grad(|| {
        for (name, v) in vs.variables() {
            if name.starts_with("head.") {
                let _ = v.shallow_clone().zero_();
            }
        }
    });
    let val = ds.val.unwrap();
    let idx: Vec<i64> = (0..200).collect();
    let s = lm.stats(&val.batch(&idx, Device::Cpu), false);
    let ppl = s.loss.double_value(&[]).exp();
    // The model can emit every symbol but padding: 57 letters, start and end.
    let alphabet = (NAME_VOCAB - 1) as f64;
    assert!((ppl - alphabet).abs() < 1e-3, "uniform perplexity {ppl}, alphabet {alphabet}");
    let chars: i64 = val.lengths[..200].iter().sum();
    assert_eq!(s.count, chars, "every character and every end symbol is a target");
}

fn model(seed: i64) -> (nn::VarStore, LanguageModel) {
    let _seeded = rnnlab::rng::torch_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = ModelConfig { cell: CellKind::Lstm, input: InputKind::Onehot, hidden: 32, ..Default::default() };
    let lm = LanguageModel::new(&vs.root(), &cfg, NAME_VOCAB, 18, false);
    (vs, lm)
}

#[test]
fn temperature_towards_zero_is_greedy() {
    let (_vs, lm) = model(1);
    for lang in [0, 7, 14] {
        let greedy = sample_name(&lm, lang, "Ka", Pick::Greedy, &mut Rng::new(0)).unwrap();
        for seed in 0..3 {
            let cold =
                sample_name(&lm, lang, "Ka", Pick::Sample { temperature: 1e-6, top_k: None }, &mut Rng::new(seed))
                    .unwrap();
            assert_eq!(cold, greedy, "language {lang}, seed {seed}");
        }
        // The same name decoded by hand: the whole prefix rerun at every step (no carried state), the most likely
        // letter each time, until the end symbol. Catches a wrong condition, a lost state or an id off by one.
        let cond = Tensor::from_slice(&[lang]);
        let mut ids: Vec<i64> = [text::NAME_BOS].into_iter().chain(names::encode("Ka").unwrap()).collect();
        while ids.len() <= rnnlab::sample::MAX_NAME {
            let x = Tensor::from_slice(&ids).view([1, -1]);
            let logits = tch::no_grad(|| lm.run(&x, Some(&cond), None, false).0);
            // Logit k is id k + 1; the start symbol is never written.
            let last =
                logits.get(0).get(-1).index_fill(0, &Tensor::from_slice(&[text::NAME_BOS - 1]), f64::NEG_INFINITY);
            let next = last.argmax(0, false).int64_value(&[]) + 1;
            if next == text::NAME_EOS {
                break;
            }
            ids.push(next);
        }
        assert_eq!(greedy, text::decode_name(&ids[1..]), "language {lang}: greedy sampling against decoding by hand");
    }
}

#[test]
fn seeded_samples_are_reproducible() {
    let (_vs, lm) = model(2);
    let draw = |seed: u64| -> Vec<String> {
        let mut rng = Rng::new(seed);
        (0..8)
            .map(|_| sample_name(&lm, 3, "", Pick::Sample { temperature: 1.0, top_k: None }, &mut rng).unwrap())
            .collect()
    };
    assert_eq!(draw(5), draw(5));
    assert_ne!(draw(5), draw(6));
    // top-k 1 is greedy too.
    let top1 = sample_name(&lm, 3, "", Pick::Sample { temperature: 1.0, top_k: Some(1) }, &mut Rng::new(9)).unwrap();
    assert_eq!(top1, sample_name(&lm, 3, "", Pick::Greedy, &mut Rng::new(0)).unwrap());
}

#[test]
fn unknown_languages_and_letters_are_clear_errors() {
    let classes: Vec<String> = ["Arabic", "Chinese", "Russian"].map(String::from).to_vec();
    assert_eq!(language_id(&classes, "Russian").unwrap(), 2);
    let e = language_id(&classes, "Klingon").unwrap_err().to_string();
    assert!(e.contains("\"Klingon\"") && e.contains("valid: Arabic, Chinese, Russian"), "{e}");
    let (_vs, lm) = model(3);
    let e = format!("{:#}", sample_name(&lm, 0, "R2", Pick::Greedy, &mut Rng::new(0)).unwrap_err());
    assert!(e.contains("'2'") && e.contains("not in the alphabet"), "{e}");
}

#[test]
fn a_name_has_at_least_one_letter_and_never_the_start_symbol() {
    let (vs, lm) = model(3);
    // Bias the head towards the end symbol, then the start symbol (logit i is id i + 1).
    tch::no_grad(|| {
        for (name, v) in vs.variables() {
            if name == "head.bias" {
                let _ = v.get(text::NAME_EOS - 1).fill_(50.0);
                let _ = v.get(text::NAME_BOS - 1).fill_(40.0);
            }
        }
    });
    let alphabet = rnnlab::data::names::ALPHABET;
    let greedy = sample_name(&lm, 0, "", Pick::Greedy, &mut Rng::new(0)).unwrap();
    assert_eq!(greedy.chars().count(), 1, "one letter, then the end symbol: {greedy:?}");
    let mut rng = Rng::new(1);
    for _ in 0..50 {
        let n = sample_name(&lm, 0, "", Pick::Sample { temperature: 5.0, top_k: None }, &mut rng).unwrap();
        assert!(!n.is_empty() && n.chars().all(|c| alphabet.contains(c)), "{n:?}");
    }
}
