//! BLEU and chrF equal sacreBLEU 2.5.1's on a committed fixture (tests/fixtures/make_bleu_reference.py made it,
//! the command is in its docstring): the 13a tokenisation of tricky strings, and corpus scores of damaged
//! translations, lower-cased, short (brevity penalty), identical, without 4-gram matches, with empty hypotheses.
use rnnlab::bleu::{bleu_stats, corpus_bleu, corpus_chrf, tokenize_13a, BleuStats};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    lowercase: bool,
    hyps: Vec<String>,
    refs: Vec<String>,
    bleu: f64,
    counts: Vec<usize>,
    totals: Vec<usize>,
    sys_len: usize,
    ref_len: usize,
    chrf: f64,
}

#[derive(Deserialize)]
struct Fixture {
    sacrebleu: String,
    cases: Vec<Case>,
    tokenize_13a: Vec<(String, String)>,
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bleu_reference.json"))
        .expect("tests/fixtures/bleu_reference.json");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn tokenisation_is_mteval_13a() {
    let f = fixture();
    assert!(f.sacrebleu.starts_with("2."), "made with sacreBLEU {}", f.sacrebleu);
    for (input, want) in &f.tokenize_13a {
        assert_eq!(&tokenize_13a(input), want, "13a of {input:?}");
    }
}

#[test]
fn corpus_bleu_and_chrf_equal_sacrebleu() {
    let f = fixture();
    assert_eq!(f.cases.len(), 7);
    for c in &f.cases {
        let mut st = BleuStats::default();
        for (h, r) in c.hyps.iter().zip(&c.refs) {
            st += bleu_stats(h, r, c.lowercase);
        }
        assert_eq!((st.sys_len, st.ref_len), (c.sys_len, c.ref_len), "{}: lengths", c.name);
        assert_eq!(st.correct.to_vec(), c.counts, "{}: matched n-grams", c.name);
        assert_eq!(st.total.to_vec(), c.totals, "{}: hypothesis n-grams", c.name);
        let bleu = corpus_bleu(&c.hyps, &c.refs, c.lowercase);
        assert!((bleu - c.bleu).abs() < 1e-9, "{}: BLEU {bleu} vs sacreBLEU {}", c.name, c.bleu);
        let chrf = corpus_chrf(&c.hyps, &c.refs, c.lowercase);
        assert!((chrf - c.chrf).abs() < 1e-9, "{}: chrF {chrf} vs sacreBLEU {}", c.name, c.chrf);
    }
}
