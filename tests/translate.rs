//! Translation: the Bible split holds out whole books with no test source seen in training, the readers reject
//! bad files naming them, a tiny parallel set is learned to BLEU > 90, and `seq2seq predict` answers inputs of
//! one's own (unknown words named, an empty input refused, a 500-word input translated).
mod common;
use rnnlab::config;
use rnnlab::data::parallel::{Tokens, TranslateConfig};
use rnnlab::experiments::seq2seq::predict::{draw_attention, predict};
use rnnlab::experiments::seq2seq::Seq2seq;
use rnnlab::results::read_meta;
use rnnlab::sweep::{run, Cfg, RunOptions};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use tch::Device;

fn bible() -> std::path::PathBuf {
    common::test_data().join("bible-parallel.tsv.gz")
}

#[test]
fn held_out_books_are_whole_and_no_test_source_is_seen_in_training() {
    for tokens in [Tokens::Bpe, Tokens::Words] {
        let cfg =
            TranslateConfig { path: bible(), tokens, source_vocab: 2000, target_vocab: 2000, ..Default::default() };
        let p = cfg.parallel(3).unwrap();
        let r = &p.report;
        let books = |v: &[u32]| v.iter().copied().collect::<HashSet<u32>>();
        let (train, val, test) = (books(&r.train_books), books(&r.val_books), books(&r.test_books));
        assert!(train.is_disjoint(&test) && train.is_disjoint(&val) && val.is_disjoint(&test), "{r:?}");
        assert_eq!(train.len() + val.len() + test.len(), 66, "every book in one split");
        let share = r.n_test as f64 / 31083.0;
        assert!((0.07..0.2).contains(&share), "test share {share}");
        assert_eq!(p.test.len(), r.n_test);
        // The test set was cleaned of sources that occur in training: none is left.
        let data = cfg.parallel(3).unwrap();
        let seen: HashSet<String> = rnnlab::data::parallel::read_pairs(&cfg.path, "en", "fr")
            .unwrap()
            .iter()
            .filter(|q| train.contains(&q.book))
            .map(|q| q.source.clone())
            .collect();
        assert!(data.test.iter().all(|q| !seen.contains(&q.source)), "a test source occurs in training");
        assert!(r.test_sources_in_train > 0, "parallel passages repeat across books: some are dropped ({r:?})");
        // Another seed holds out other books.
        assert_ne!(cfg.parallel(4).unwrap().report.test_books, r.test_books);
        assert_eq!(data.data.shape.source_tokens.len() as i64, data.data.shape.vocab);
    }
}

#[test]
fn bad_parallel_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let err = |path: &Path, source: &str| -> String {
        let cfg = TranslateConfig { path: path.to_path_buf(), source: source.into(), ..Default::default() };
        format!("{:#}", cfg.parallel(0).unwrap_err())
    };
    let wrong = write("wrong.tsv", b"book\tchapter\tverse\ten\tde\n1\t1\t1\ta\tb\n");
    let e = err(&wrong, "en");
    assert!(
        e.contains("wrong.tsv") && e.contains("no column `fr`") && e.contains("book, chapter, verse, en, de"),
        "{e}"
    );
    let short = write("short.tsv", b"book\tchapter\tverse\ten\tfr\n1\t1\t1\tonly english\n");
    let e = err(&short, "en");
    assert!(e.contains("short.tsv:2") && e.contains("4 columns, 5 expected"), "{e}");
    let full = std::fs::read(bible()).unwrap();
    let cut = write("cut.tsv.gz", &full[..full.len() / 3]);
    let e = err(&cut, "en");
    assert!(e.contains("cut.tsv.gz") && e.contains("truncated or corrupt"), "{e}");
    let e = err(&dir.path().join("nowhere.tsv.gz"), "en");
    assert!(e.contains("nowhere.tsv.gz") && e.contains("make data"), "{e}");
    let empty = write("empty.txt", b"");
    assert!(err(&empty, "en").contains("empty file"));
}

/// A tiny parallel "language": sentences of a few words and their word-by-word translation with the adjective
/// after the noun, in 10 books.
fn tiny_corpus(path: &Path) {
    let nouns = [("cat", "chat"), ("dog", "chien"), ("bird", "oiseau"), ("horse", "cheval"), ("fish", "poisson")];
    let adjs = [("big", "grand"), ("small", "petit"), ("red", "rouge"), ("old", "vieux")];
    let verbs = [("sees", "voit"), ("eats", "mange"), ("likes", "aime")];
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "book\tchapter\tverse\ten\tfr").unwrap();
    let mut k = 0;
    for (n1, m1) in nouns {
        for (a, b) in adjs {
            for (v, w) in verbs {
                for (n2, m2) in nouns {
                    k += 1;
                    let (en, fr) = (format!("the {a} {n1} {v} the {n2} ."), format!("le {m1} {b} {w} le {m2} ."));
                    writeln!(f, "{}\t1\t{k}\t{en}\t{fr}", 1 + k % 10).unwrap();
                }
            }
        }
    }
}

#[test]
fn a_tiny_parallel_set_is_learned_and_predict_answers() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("tiny.tsv");
    tiny_corpus(&corpus);
    let sets: Vec<String> = [
        format!("data.translate.path={}", corpus.display()),
        "data.translate.tokens=words".into(),
        "data.translate.test_share=0.2".into(),
        "data.translate.val_share=0.1".into(),
        "sweep=[{model.cell: [gru], model.attention: [dot]}]".into(),
        "model.embed_dim=32".into(),
        "model.hidden=64".into(),
        "model.dropout=0".into(),
        "model.beam=1".into(),
        "train.epochs=25".into(),
        "train.lr=0.005".into(),
        "train.batch_size=16".into(),
    ]
    .to_vec();
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/translate.yaml"));
    let loaded = config::load::<Cfg<Seq2seq>>(path, &sets).unwrap();
    let out = dir.path().join("results");
    let d = rnnlab::sweep::entry(rnnlab::experiments::REGISTRY, "translate").unwrap();
    run(&Seq2seq, d, &loaded, &sets, &out, &RunOptions::default()).unwrap();
    let run_dir = out.join("translate/gru-dot-s0");
    let meta = read_meta(&run_dir).unwrap();
    assert!(meta.result["bleu"] > 90.0, "BLEU {} on the held-out books", meta.result["bleu"]);
    for f in ["by_length.csv", "translations.txt", "attention.csv", "split.yaml"] {
        assert!(run_dir.join(f).exists(), "{f}");
    }
    assert!(out.join("translate/bleu_vs_length.png").exists());
    // predict: a sentence typed as people type it (the adjective moves), unknown words named, empty refused, 500
    // words answered.
    let a = predict(&run_dir, "The small dog likes the fish.", None, Device::Cpu).unwrap();
    assert_eq!(a.output, "le chien petit aime le poisson .", "{a:?}");
    assert!(a.notes.is_empty(), "{:?}", a.notes);
    let a = predict(&run_dir, "the big zebra sees the cat", Some(3), Device::Cpu).unwrap();
    assert!(a.notes.iter().any(|n| n.contains("zebra")), "{:?}", a.notes);
    let e = format!("{:#}", predict(&run_dir, "   ", None, Device::Cpu).unwrap_err());
    assert!(e.contains("nothing to answer"), "{e}");
    let long = vec!["the old horse eats the bird ."; 72].join(" ");
    let a = predict(&run_dir, &long, None, Device::Cpu).unwrap();
    assert!(a.notes.iter().any(|n| n.contains("longer than any training source")), "{:?}", a.notes);
    assert!(!a.output.is_empty());
    let stem = dir.path().join("att");
    draw_attention(&predict(&run_dir, "the cat sees the dog .", None, Device::Cpu).unwrap(), &stem).unwrap();
    assert!(stem.with_extension("png").exists());
}
