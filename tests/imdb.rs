//! IMDB: readers, tokeniser, vocabulary, min_len counts on the real data, sweep resume and sharding.
mod common;
use rnnlab::config;
use rnnlab::data::imdb::{self, check_official_counts, read_reviews, Encoded, ImdbConfig, Mode};
use rnnlab::data::Refused;
use rnnlab::experiments::sweep_imdb::SweepImdb;
use rnnlab::results::read_meta;
use rnnlab::sweep::{run, Cfg, RunOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A small aclImdb-layout folder and the same as .tar.gz: `n` reviews per (split, label).
fn fixture(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let root = dir.join("aclImdb");
    for split in ["train", "test"] {
        for (label, words) in [("pos", "good great fine loved"), ("neg", "bad awful boring hated")] {
            let d = root.join(split).join(label);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                let w: Vec<&str> = words.split(' ').collect();
                let text = format!(
                    "The film<br />was {} and {}, {} again! Plot {i}.",
                    w[i % 4],
                    w[(i + 1) % 4],
                    w[(i + 2) % 4]
                );
                std::fs::write(d.join(format!("{i}_{}.txt", if label == "pos" { 8 } else { 2 })), text).unwrap();
            }
        }
    }
    std::fs::write(root.join("README"), "not a review").unwrap();
    let archive = dir.join("fixture.tar.gz");
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(&archive).unwrap(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all("aclImdb", &root).unwrap();
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
    (root, archive)
}

#[test]
fn archive_and_folder_readers_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, archive) = fixture(dir.path(), 7);
    let a = read_reviews(&archive).unwrap();
    let f = read_reviews(&folder).unwrap();
    assert_eq!(a.len(), 28);
    assert_eq!(a, f);
    assert_eq!(read_reviews(dir.path()).unwrap(), f, "the parent of aclImdb/ works too");
    assert!(a.iter().filter(|r| r.test && r.label == 1).all(|r| r.rating == 8));
    let e = format!("{:#}", check_official_counts(&a, &archive).unwrap_err());
    assert!(e.contains("train split has 14 reviews") && e.contains("25000"), "{e}");
}

#[test]
fn truncated_or_corrupt_archives_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, archive) = fixture(dir.path(), 30);
    let bytes = std::fs::read(&archive).unwrap();
    let cut = dir.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = format!("{:#}", read_reviews(&cut).unwrap_err());
    assert!(e.contains("cut.tar.gz") && e.contains("truncated or corrupt"), "{e}");
    let junk = dir.path().join("junk.tar.gz");
    std::fs::write(&junk, b"this is not gzip at all").unwrap();
    let e = format!("{:#}", read_reviews(&junk).unwrap_err());
    assert!(e.contains("junk.tar.gz") && e.contains("truncated or corrupt"), "{e}");
    let e = format!("{:#}", read_reviews(Path::new("/nonexistent/aclImdb_v1.tar.gz")).unwrap_err());
    assert!(e.contains("/nonexistent/aclImdb_v1.tar.gz") && e.contains("make data"), "{e}");
}

#[test]
fn vocabulary_is_deterministic_and_from_the_training_split_only() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, _) = fixture(dir.path(), 9);
    let mut reviews = read_reviews(&folder).unwrap();
    let a = Encoded::from_reviews(&reviews);
    reviews.reverse();
    reviews.sort_by_key(|r| (r.test, r.label, r.id));
    assert_eq!(a, Encoded::from_reviews(&reviews));
    // "again", "and", "film", "plot", "the", "was" occur once in every review: ties in alphabetical order.
    assert_eq!(&a.words[..6], ["again", "and", "film", "plot", "the", "was"]);
    // A word seen only in the test split is never in the vocabulary.
    let mut extra = reviews.clone();
    extra.iter_mut().filter(|r| r.test).for_each(|r| r.text.push_str(" zyzzyva"));
    let b = Encoded::from_reviews(&extra);
    let doc = b.docs.iter().find(|d| d.test).unwrap();
    assert_eq!(*b.ids(doc, 1_000_000, 0).last().unwrap(), imdb::UNK);
}

#[test]
fn min_len_counts_on_the_real_data_match_the_readme() {
    let cache = tempfile::tempdir().unwrap();
    let path = common::test_data().join("aclImdb_labeled.tar.gz");
    let (enc, hit) = imdb::load_encoded(&path, Some(cache.path())).unwrap();
    assert!(!hit);
    check_official_counts(&read_reviews(&path).unwrap(), &path).unwrap();
    let at_least = |l: usize| enc.docs.iter().filter(|d| d.words.len() >= l).count();
    // ../shared/data/README.md: >= 100 words: 43,916; >= 200: 20,591; >= 300: 11,177; >= 500: 3,902;
    // >= 800: 883; >= 1000: 112.
    assert_eq!([100, 200, 300, 500, 800, 1000].map(at_least), [43_916, 20_591, 11_177, 3_902, 883, 112]);
    let (again, hit) = imdb::load_encoded(&path, Some(cache.path())).unwrap();
    assert!(hit && again == enc, "the cache must return the same corpus");
    let cfg = ImdbConfig { path, mode: Mode::MinLen, length: 1000, min_examples: 500, ..Default::default() };
    let err = cfg.dataset(&enc, 0).unwrap_err();
    let r = err.downcast_ref::<Refused>().expect("a Refused error");
    assert!(
        r.n_train < 100 && r.message.contains("min_len L = 1000") && r.message.contains("minimum 500"),
        "{}",
        r.message
    );
    let cfg = ImdbConfig { length: 500, ..cfg };
    let ds = cfg.dataset(&enc, 0).unwrap();
    assert!(ds.train.lengths.iter().all(|&l| l == 500) && ds.train.len() + ds.val.unwrap().len() > 1500);
}

/// The IMDB sweep through the library on the fixture: RNN and the bag of words, two modes, L = 5 and 12,
/// 1 epoch; `extra` overrides, `shard`/`merge_only` as the CLI passes them.
fn sweep(
    out: &Path,
    data: &Path,
    extra: &[&str],
    shard: Option<(usize, usize)>,
    merge_only: bool,
) -> anyhow::Result<()> {
    let mut sets: Vec<String> = [
        format!("data.path={}", data.display()),
        format!("data.cache_dir={}", out.join("cache").display()),
        "sweep.data.length=[5,12]".into(),
        "sweep.train.seed=[0]".into(),
        "sweep.model={rnn: {model.cell: rnn}, bow: {model.kind: bow, train.lr: 0.05}}".into(),
        "sweep.mode={truncate: {data.mode: truncate}, min_len: {data.mode: min_len}}".into(),
        "data.min_examples=10".into(),
        "train.epochs=1".into(),
    ]
    .to_vec();
    sets.extend(extra.iter().map(|e| e.to_string()));
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/sweep-imdb.yaml"));
    let loaded = config::load::<Cfg<SweepImdb>>(path, &sets)?;
    let opts = RunOptions { shard, merge_only, ..Default::default() };
    let d = rnnlab::sweep::entry(rnnlab::experiments::REGISTRY, "sweep-imdb")?;
    run(&SweepImdb, d, &loaded, &sets, out, &opts)
}

#[test]
fn sweep_resumes_skips_finished_runs_and_merges_shards() {
    let dir = tempfile::tempdir().unwrap();
    let (_, archive) = fixture(dir.path(), 20);
    let out = dir.path().join("results");
    sweep(&out, &archive, &[], None, false).unwrap();
    let runs = out.join("sweep-imdb");
    let csv = std::fs::read_to_string(runs.join("summary.csv")).unwrap();
    // 2 modes × 2 lengths × (rnn + bow); reviews have 12-13 tokens, so min_len at L=12 keeps all, L=5 too.
    assert_eq!(csv.lines().count(), 1 + 8, "{csv}");
    assert!(csv.lines().next().unwrap().contains("n_train") && csv.contains("min_len"), "{csv}");
    assert_eq!(csv.matches(",bow,").count(), 4, "the bag-of-words runs are labelled bow: {csv}");
    // Interrupt one run: it is redone, the others are reused untouched.
    let victim = runs.join("truncate-rnn-L12-s0/meta.yaml");
    let before = std::fs::read_to_string(runs.join("truncate-rnn-L5-s0/meta.yaml")).unwrap();
    let text = std::fs::read_to_string(&victim).unwrap().replace("status: finished", "status: running");
    std::fs::write(&victim, text).unwrap();
    let started = read_meta(victim.parent().unwrap()).unwrap().started;
    sweep(&out, &archive, &[], None, false).unwrap();
    let redone = read_meta(victim.parent().unwrap()).unwrap();
    assert!(redone.status.is_complete() && redone.pid == std::process::id());
    assert!(std::fs::read_to_string(&victim).unwrap().contains("status: finished"), "{started}");
    assert_eq!(before, std::fs::read_to_string(runs.join("truncate-rnn-L5-s0/meta.yaml")).unwrap());
    // Shards on two "machines", then merged.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    sweep(&a, &archive, &[], Some((1, 2)), false).unwrap();
    sweep(&b, &archive, &[], Some((2, 2)), false).unwrap();
    let merged = dir.path().join("merged/sweep-imdb");
    std::fs::create_dir_all(&merged).unwrap();
    for part in [&a, &b] {
        for e in std::fs::read_dir(part.join("sweep-imdb")).unwrap() {
            let p = e.unwrap().path();
            // Run folders (not the run locks, .locks/, which stay with each machine).
            if p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                std::fs::rename(&p, merged.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    sweep(&dir.path().join("merged"), &archive, &[], None, true).unwrap();
    let merged_csv = std::fs::read_to_string(merged.join("summary.csv")).unwrap();
    assert_eq!(merged_csv.lines().count(), 1 + 8);
    assert!(merged.join("accuracy_vs_length_truncate.png").exists());
}

#[test]
fn min_len_points_below_the_minimum_are_refused_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (_, archive) = fixture(dir.path(), 20);
    let out = dir.path().join("results");
    sweep(&out, &archive, &["sweep.data.length=[40]", "sweep.mode={min_len: {data.mode: min_len}}"], None, false)
        .unwrap();
    let csv = std::fs::read_to_string(out.join("sweep-imdb/summary.csv")).unwrap();
    assert!(csv.lines().skip(1).all(|l| l.contains(",refused,")), "{csv}");
    let meta = read_meta(&out.join("sweep-imdb/min_len-rnn-L40-s0")).unwrap();
    assert!(meta.message.unwrap().contains("only 0 training"));
}

#[test]
fn distance_sweep_a_gated_cell_carries_the_evidence_the_vanilla_rnn_loses() {
    // 200 training reviews of 13 tokens whose label words sit in the middle, then filler up to L = 120.
    let dir = tempfile::tempdir().unwrap();
    let (_, archive) = fixture(dir.path(), 100);
    let out = dir.path().join("results");
    let sets = [
        "sweep.mode={distance: {data.mode: distance, data.train_gaps: mixed, probe.enabled: true}}",
        "sweep.data.length=[120]",
        "sweep.model={rnn: {model.cell: rnn}, gru: {model.cell: gru}, bow: {model.kind: bow, train.lr: 0.05}}",
        "data.val_fraction=0.2",
        "model.embed_dim=8",
        "model.hidden=16",
        "model.dropout=0",
        "model.init={chrono: 120, forget_bias: null}",
        "train.epochs=12",
        "train.lr=0.01",
        "train.batch_size=16",
        "probe.hidden=false",
    ];
    sweep(&out, &archive, &sets, None, false).unwrap();
    let runs = out.join("sweep-imdb");
    let meta = |m: &str| read_meta(&runs.join(format!("distance-{m}-L120-s0"))).unwrap();
    let (rnn, gru) = (meta("rnn"), meta("gru"));
    let acc = |m: &rnnlab::results::Meta| m.result["test_acc"];
    assert!(acc(&gru) >= 0.9, "the GRU should carry the label words across ~110 filler steps: {}", acc(&gru));
    assert!(acc(&rnn) <= 0.7, "the vanilla RNN should lose them: {}", acc(&rnn));
    // Mixed gaps: training sequences are shorter on average than the test's L.
    assert!(gru.result["train_len_mean"] < 100.0 && gru.result["train_len_max"] == 120.0, "{:?}", gru.result);
    // The gradient at the evidence tokens after training: the GRU's is orders of magnitude larger.
    let (g_rnn, g_gru) = (rnn.result["grad_evidence"], gru.result["grad_evidence"]);
    assert!(g_gru > 1e3 * g_rnn, "‖∂L/∂x‖ at the evidence: GRU {g_gru:e}, RNN {g_rnn:e}");
    assert!(runs.join("story.png").exists() && runs.join("story.svg").exists());
}

#[test]
fn the_story_figure_reads_sweep_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("summary.csv");
    let mut text = String::from(
        "experiment,run,status,model,mode,seq_len,seed,test_acc,grad_evidence,grad_evidence_init,wall_s\n",
    );
    for (model, seed, l, acc, g) in [
        ("rnn", 0, 50, 0.70, 1e-2),
        ("rnn", 1, 50, 0.68, 2e-2),
        ("rnn", 0, 500, 0.50, 1e-30),
        ("rnn", 1, 500, 0.52, 3e-30),
        ("gru", 0, 50, 0.72, 1e-2),
        ("gru", 1, 50, 0.70, 1e-2),
        ("gru", 0, 500, 0.71, 1e-3),
        ("gru", 1, 500, 0.73, 3e-3),
    ] {
        let init = g * 1e-3;
        text += &format!("sweep-imdb,{model}-{l}-s{seed},finished,{model},distance,{l},{seed},{acc},{g},{init},1.0\n");
    }
    text += "sweep-imdb,bow-500,finished,bow,distance,500,0,0.74,,,1.0\n";
    text += "sweep-imdb,gru-t,finished,gru,truncate,500,0,0.99,1,1,1.0\n";
    std::fs::write(&csv, text).unwrap();
    let fig = rnnlab::experiments::sweep_imdb::story(&csv, 50).unwrap();
    let [acc, grad] = &fig.panels[..] else { panic!("two panels") };
    let series = |p: &rnnlab::plot::Panel, label: &str| {
        p.series.iter().find(|s| s.label.starts_with(label)).unwrap_or_else(|| panic!("no {label}")).clone()
    };
    // Means over the seeds; the truncate row is not part of the distance story.
    let gru = series(acc, "GRU");
    assert_eq!(gru.points.len(), 2);
    assert!((gru.points[1].1 - 0.72).abs() < 1e-12 && gru.band.len() == 2, "{:?}", gru.points);
    assert!((series(acc, "RNN").points[1].1 - 0.51).abs() < 1e-12);
    assert_eq!(series(acc, "bag of words").points, vec![(500.0, 0.74)]);
    assert_eq!(series(acc, "chance").points, vec![(50.0, 0.5), (500.0, 0.5)]);
    let g = series(grad, "RNN");
    assert!((g.points[1].1 - 2e-30).abs() < 1e-42 && g.band[1].1 == 1e-30 && g.band[1].2 == 3e-30, "{:?}", g);
    // The gradient at init beside it, dashed, in the cell's colour.
    let init = series(grad, "GRU, at init");
    assert!((init.points[1].1 - 2e-6).abs() < 1e-18 && init.dash != rnnlab::plot::Dash::Solid, "{:?}", init);
    assert_eq!(init.color, series(grad, "GRU").color);
    assert_eq!(acc.title, "test accuracy (mean ± std over 2 seeds)");
    assert!(grad.log_y && acc.log_x && grad.log_x);
    fig.save(&dir.path().join("story")).unwrap();
    assert!(dir.path().join("story.png").exists());
}
